// nginx-twostep: two-step verification in front of any location.
//
// Directives, configuration, the access check and the variables; the
// directives' setters are in src/ngx/ngx_http_twostep_conf.cpp. The rest
// of the nginx glue is in src/ngx/, one file a concern (the sign-in pages,
// Duo, self-service, libcurl on the event loop, the thread pool, the shared
// zone, the user store file), and all logic that does not need nginx is in
// src/core/.

#include "ngx/ngx_http_twostep.h"
#include "ngx/ngx_http_twostep_audit.h"
#include "ngx/ngx_http_twostep_conf.h"

#include "core/return_to.h"


static ngx_int_t ngx_http_twostep_access_handler(ngx_http_request_t *r)
    noexcept;
static ngx_int_t ngx_http_twostep_subrequest_handler(ngx_http_request_t *r)
    noexcept;
static ngx_int_t ngx_http_twostep_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data) noexcept;
static void *ngx_http_twostep_create_main_conf(ngx_conf_t *cf) noexcept;
static void *ngx_http_twostep_create_srv_conf(ngx_conf_t *cf) noexcept;
static char *ngx_http_twostep_merge_pages(ngx_conf_t *cf,
    ngx_http_twostep_srv_conf_t *prev, ngx_http_twostep_srv_conf_t *conf);
static char *ngx_http_twostep_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child) noexcept;
static void *ngx_http_twostep_create_loc_conf(ngx_conf_t *cf) noexcept;
static char *ngx_http_twostep_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child) noexcept;
static char *ngx_http_twostep_identity_verified(ngx_conf_t *cf,
    ngx_http_twostep_loc_conf_t *conf, ngx_http_core_loc_conf_t *clcf);
static char *ngx_http_twostep_merge_self_hosted(ngx_conf_t *cf,
    ngx_http_twostep_srv_conf_t *prev, ngx_http_twostep_srv_conf_t *conf);
static ngx_int_t ngx_http_twostep_init_process(ngx_cycle_t *cycle) noexcept;
static void ngx_http_twostep_exit_process(ngx_cycle_t *cycle) noexcept;
static ngx_int_t ngx_http_twostep_add_variables(ngx_conf_t *cf) noexcept;
static ngx_int_t ngx_http_twostep_init(ngx_conf_t *cf) noexcept;


enum ngx_http_twostep_var_e {
    NGX_HTTP_TWOSTEP_VAR_USER,
    NGX_HTTP_TWOSTEP_VAR_METHOD,
    NGX_HTTP_TWOSTEP_VAR_AUTH_TIME
};


static ngx_command_t  ngx_http_twostep_commands[] = {

    { ngx_string("twostep"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_twostep_loc_conf_t, enable),
      NULL },

    { ngx_string("twostep_methods"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_1MORE,
      ngx_http_twostep_methods,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_max_age"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_LOC_CONF_OFFSET,
      offsetof(ngx_http_twostep_loc_conf_t, max_age),
      NULL },

    { ngx_string("twostep_identity"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_HTTP_LOC_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_identity,
      NGX_HTTP_LOC_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_users"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_users,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_enroll"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, enroll),
      NULL },

    { ngx_string("twostep_cookie_key"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_cookie_key,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_session_ttl"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, session_ttl),
      NULL },

    { ngx_string("twostep_remember"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_remember,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, remember),
      NULL },

    { ngx_string("twostep_fraud_pause"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_sec_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, fraud_pause),
      NULL },

    { ngx_string("twostep_session_audience"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, session_audience),
      NULL },

    { ngx_string("twostep_portal_uri"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_portal_uri,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, portal_uri),
      NULL },

    { ngx_string("twostep_zone"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_size_slot,
      NGX_HTTP_MAIN_CONF_OFFSET,
      offsetof(ngx_http_twostep_main_conf_t, zone_size),
      NULL },

    { ngx_string("twostep_redis"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_redis_password_file"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_redis_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_redis_prefix"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_redis_trusted_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_redis_certificate"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_redis_certificate_key"),
      NGX_HTTP_MAIN_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_redis,
      NGX_HTTP_MAIN_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_lockout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE2|NGX_CONF_TAKE3|NGX_CONF_TAKE4,
      ngx_http_twostep_lockout_rule,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_duo_api"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_duo_api,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, duo_api),
      NULL },

    { ngx_string("twostep_duo_ikey"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, duo_ikey),
      NULL },

    { ngx_string("twostep_duo_skey_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_duo_skey_file,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, duo_skey),
      NULL },

    { ngx_string("twostep_duo_timeout"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_msec_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, duo_timeout),
      NULL },

    { ngx_string("twostep_twilio_api"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_duo_api,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, twilio_api),
      NULL },

    { ngx_string("twostep_twilio_account"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_twilio_value,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, twilio_account),
      NULL },

    { ngx_string("twostep_twilio_token_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_token_file,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, twilio_token),
      NULL },

    { ngx_string("twostep_twilio_from"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_twilio_value,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, twilio_from),
      NULL },

    { ngx_string("twostep_ntfy_server"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_duo_api,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, ntfy_server),
      NULL },

    { ngx_string("twostep_ntfy_token_file"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_token_file,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, ntfy_token),
      NULL },

    { ngx_string("twostep_public_url"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_duo_api,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, public_url),
      NULL },

    { ngx_string("twostep_language"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, language_name),
      NULL },

    { ngx_string("twostep_site_name"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, site_name),
      NULL },

    { ngx_string("twostep_webauthn_rp_id"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_webauthn_rp_id,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, webauthn_rp_id),
      NULL },

    { ngx_string("twostep_passkey_signin"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_FLAG,
      ngx_conf_set_flag_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, passkey_signin),
      NULL },

    { ngx_string("twostep_templates"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_templates,
      NGX_HTTP_SRV_CONF_OFFSET,
      0,
      NULL },

    { ngx_string("twostep_audit_log"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_http_twostep_audit_log,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, audit_log),
      NULL },

    { ngx_string("twostep_metrics"),
      NGX_HTTP_LOC_CONF|NGX_CONF_NOARGS,
      ngx_http_twostep_metrics,
      0,
      0,
      NULL },

    { ngx_string("twostep_thread_pool"),
      NGX_HTTP_MAIN_CONF|NGX_HTTP_SRV_CONF|NGX_CONF_TAKE1,
      ngx_conf_set_str_slot,
      NGX_HTTP_SRV_CONF_OFFSET,
      offsetof(ngx_http_twostep_srv_conf_t, thread_pool_name),
      NULL },

      ngx_null_command
};


static ngx_http_module_t  ngx_http_twostep_module_ctx = {
    ngx_http_twostep_add_variables,        /* preconfiguration */
    ngx_http_twostep_init,                 /* postconfiguration */

    ngx_http_twostep_create_main_conf,     /* create main configuration */
    NULL,                                  /* init main configuration */

    ngx_http_twostep_create_srv_conf,      /* create server configuration */
    ngx_http_twostep_merge_srv_conf,       /* merge server configuration */

    ngx_http_twostep_create_loc_conf,      /* create location configuration */
    ngx_http_twostep_merge_loc_conf        /* merge location configuration */
};


ngx_module_t  ngx_http_twostep_module = {
    NGX_MODULE_V1,
    &ngx_http_twostep_module_ctx,          /* module context */
    ngx_http_twostep_commands,             /* module directives */
    NGX_HTTP_MODULE,                       /* module type */
    NULL,                                  /* init master */
    NULL,                                  /* init module */
    ngx_http_twostep_init_process,         /* init process */
    NULL,                                  /* init thread */
    NULL,                                  /* exit thread */
    ngx_http_twostep_exit_process,         /* exit process */
    NULL,                                  /* exit master */
    NGX_MODULE_V1_PADDING
};


static ngx_http_variable_t  ngx_http_twostep_vars[] = {

    { ngx_string("twostep_user"), NULL, ngx_http_twostep_variable,
      NGX_HTTP_TWOSTEP_VAR_USER, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("twostep_method"), NULL, ngx_http_twostep_variable,
      NGX_HTTP_TWOSTEP_VAR_METHOD, NGX_HTTP_VAR_NOCACHEABLE, 0 },

    { ngx_string("twostep_auth_time"), NULL, ngx_http_twostep_variable,
      NGX_HTTP_TWOSTEP_VAR_AUTH_TIME, NGX_HTTP_VAR_NOCACHEABLE, 0 },

      ngx_http_null_variable
};


/*
 * The user name twostep_identity names, as the auth module of this location
 * verified it. NGX_OK, or the status to answer with: auth_basic's realm
 * turned "off" at run time has verified nobody.
 */

static ngx_int_t
ngx_http_twostep_identity_value(ngx_http_request_t *r,
    ngx_http_twostep_loc_conf_t *lcf, std::string_view *name)
{
    ngx_str_t                   realm;
    ngx_http_variable_value_t  *v;

    if (lcf->identity_realm) {
        if (ngx_http_complex_value(r, lcf->identity_realm, &realm) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        if (realm.len == 3 && ngx_strncmp(realm.data, "off", 3) == 0) {
            ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                          "twostep: \"auth_basic\" is off for this "
                          "request, so \"twostep_identity $%V\" is not "
                          "verified: access denied",
                          &lcf->identity->name);
            return NGX_HTTP_FORBIDDEN;
        }
    }

    v = ngx_http_get_indexed_variable(r, lcf->identity->index);
    if (v == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *name = v->not_found ? std::string_view()
                         : std::string_view(reinterpret_cast<char *>(v->data),
                                            v->len);

    return NGX_OK;
}


/*
 * The access check. A valid session that satisfies this location's methods
 * and freshness passes; anything else is sent to the portal, never through.
 */

static ngx_int_t
ngx_http_twostep_access_handler(ngx_http_request_t *r) noexcept
{
    ngx_http_twostep_loc_conf_t  *lcf;
    ngx_http_twostep_srv_conf_t  *scf;

    lcf = static_cast<ngx_http_twostep_loc_conf_t *>(
              ngx_http_get_module_loc_conf(r, ngx_http_twostep_module));

    if (!lcf->enable) {
        return NGX_DECLINED;
    }

    scf = static_cast<ngx_http_twostep_srv_conf_t *>(
              ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));

    // The portal answers these in the precontent phase, whatever location
    // nginx chose for them: sending them to the portal would loop.
    if (ngx_http_twostep_is_portal(r, scf)) {
        return NGX_DECLINED;
    }

    try {
        auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                       ngx_http_get_module_main_conf(r,
                                                     ngx_http_twostep_module));

        // The session the $twostep_* variables name later in the request
        // (proxy_set_header, the access log) must be the one allowed here,
        // even if it is revoked or expires meanwhile: kept in the request's
        // context when the configuration uses them, else not even counted.
        const twostep::Session *session =
            mcf->variables ? ngx_http_twostep_session(r)
                           : ngx_http_twostep_session_now(r);
        std::string_view name;

        if (lcf->identity) {
            ngx_int_t rc = ngx_http_twostep_identity_value(r, lcf, &name);

            if (rc != NGX_OK) {
                return rc;
            }

            // Someone else authenticated to the other module: the session
            // in this browser is not theirs.
            if (session && session->user != name) {
                session = nullptr;
            }
        }

        twostep::Verdict verdict = twostep::decide(session, lcf->methods,
                                                   lcf->max_age, ngx_time(),
                                                   lcf->identity == NULL);

        if (verdict == twostep::Verdict::allow) {
            return NGX_OK;
        }

        // The request target as the client sent it, query included, so the
        // visitor returns to the exact URL; anything odd falls back to "/".
        std::string_view target = ngx_http_twostep_sv(r->unparsed_uri);
        if (!twostep::safe_return_to(target)) {
            target = "/";
        }

        std::string location;

        if (verdict == twostep::Verdict::sign_in && lcf->identity) {
            if (name.empty() || !twostep::valid_user_name(name)
                || scf->store->users->find(name) == nullptr)
            {
                ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                              "twostep: identity from \"twostep_identity\" "
                              "is empty, malformed or not in the user "
                              "store");
                // In the access phase NGX_OK would mean "allowed": finish
                // the request here and tell the phase engine it is done.
                ngx_http_finalize_request(r,
                    ngx_http_twostep_send_message(r, NGX_HTTP_FORBIDDEN,
                        "msg.denied.title",
                        "msg.denied.not_set_up"));
                return NGX_DONE;
            }

            // The other module has authenticated the user: only the second
            // step is owed, carried in a short-lived token that opens nothing.
            twostep::PendingSignin pending;
            pending.nonce = twostep::random_token(16);
            pending.user = std::string(name);
            pending.via = twostep::FirstFactor::identity;
            pending.expires = ngx_time() + NGX_HTTP_TWOSTEP_PENDING_TTL;
            pending.methods = lcf->methods;

            if (ngx_http_twostep_cookie_header(r,
                    NGX_HTTP_TWOSTEP_COOKIE_PENDING,
                    twostep::encode_pending(*scf->keys, pending),
                    NGX_HTTP_TWOSTEP_PENDING_TTL) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            location = ngx_http_twostep_portal_url(scf, "verify", target,
                                                   lcf->methods);

        } else {
            // The methods this location accepts, signed, for the portal;
            // a sign-in already under way (another tab, the favicon the
            // browser asks for) is left alone.
            std::string_view current = ngx_http_twostep_find_cookie(r,
                                           NGX_HTTP_TWOSTEP_COOKIE_PENDING);

            if (current.empty()
                || !twostep::decode_pending(*scf->keys, current, ngx_time()))
            {
                twostep::PendingSignin pending;
                pending.nonce = twostep::random_token(16);
                pending.expires = ngx_time() + NGX_HTTP_TWOSTEP_PENDING_TTL;
                pending.methods = lcf->methods;

                if (ngx_http_twostep_cookie_header(r,
                        NGX_HTTP_TWOSTEP_COOKIE_PENDING,
                        twostep::encode_pending(*scf->keys, pending),
                        NGX_HTTP_TWOSTEP_PENDING_TTL) != NGX_OK)
                {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }
            }

            location = ngx_http_twostep_portal_url(scf, "signin", target,
                                                   lcf->methods);

            // A session opened by another module's identity does not stand
            // in for the password here: the portal asks for it.
            if (session && verdict == twostep::Verdict::sign_in) {
                location += "&first=password";
            }
        }

        if (ngx_http_twostep_set_location(r, location) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        // A redirected POST would be replayed as POST by 307; 303 makes the
        // browser come back with GET after signing in.
        if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
            return NGX_HTTP_MOVED_TEMPORARILY;
        }

        return NGX_HTTP_SEE_OTHER;

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: access check failed: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    } catch (...) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: access check failed: %s",
                      ngx_http_twostep_what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


/*
 * Subrequests (SSI include virtual, auth_request, mirror) never run the
 * access phase (ngx_http_core_access_phase skips them), so a protected
 * location reached by one is checked here, in the location rewrite phase,
 * before "return" or a content handler can answer it: the browser's
 * session must satisfy the location as it would for its own request. A
 * subrequest cannot sign anyone in, so anything less is a 403.
 */

static ngx_int_t
ngx_http_twostep_subrequest_handler(ngx_http_request_t *r) noexcept
{
    ngx_http_twostep_loc_conf_t  *lcf;

    if (r == r->main) {
        return NGX_DECLINED;
    }

    lcf = static_cast<ngx_http_twostep_loc_conf_t *>(
              ngx_http_get_module_loc_conf(r, ngx_http_twostep_module));

    if (!lcf->enable) {
        return NGX_DECLINED;
    }

    try {
        const twostep::Session *session = ngx_http_twostep_session(r);

        if (session && lcf->identity) {
            std::string_view name;
            ngx_int_t rc = ngx_http_twostep_identity_value(r, lcf, &name);

            if (rc != NGX_OK) {
                return rc;
            }

            if (session->user != name) {
                session = nullptr;
            }
        }

        if (twostep::decide(session, lcf->methods, lcf->max_age, ngx_time(),
                            lcf->identity == NULL)
            == twostep::Verdict::allow)
        {
            return NGX_DECLINED;
        }

        ngx_log_error(NGX_LOG_WARN, r->connection->log, 0,
                      "twostep: subrequest \"%V\" to a protected location "
                      "refused: the request has no session that satisfies "
                      "it", &r->uri);

        return NGX_HTTP_FORBIDDEN;

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: subrequest check failed: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;

    } catch (...) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: subrequest check failed: %s",
                      ngx_http_twostep_what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static ngx_int_t
ngx_http_twostep_variable(ngx_http_request_t *r,
    ngx_http_variable_value_t *v, uintptr_t data) noexcept
{
    const twostep::Session  *session;
    u_char                  *p;
    size_t                   len;

    try {
        session = ngx_http_twostep_session(r);

    } catch (...) {
        session = nullptr;
    }

    if (session == nullptr) {
        v->not_found = 1;
        return NGX_OK;
    }

    switch (data) {

    case NGX_HTTP_TWOSTEP_VAR_USER:
        // The session object lives in the request ctx for the request's life.
        p = (u_char *) session->user.data();
        len = session->user.size();
        break;

    case NGX_HTTP_TWOSTEP_VAR_METHOD:
        p = (u_char *) twostep::method_name(session->method);
        len = ngx_strlen(p);
        break;

    default: /* NGX_HTTP_TWOSTEP_VAR_AUTH_TIME */
        p = static_cast<u_char *>(ngx_pnalloc(r->pool, NGX_TIME_T_LEN));
        if (p == NULL) {
            return NGX_ERROR;
        }

        len = ngx_sprintf(p, "%T", (time_t) session->auth_time) - p;
        break;
    }

    v->data = p;
    v->len = len;
    v->valid = 1;
    v->no_cacheable = 0;
    v->not_found = 0;

    return NGX_OK;
}


static void *
ngx_http_twostep_create_main_conf(ngx_conf_t *cf) noexcept
{
    ngx_http_twostep_main_conf_t  *conf;

    conf = static_cast<ngx_http_twostep_main_conf_t *>(
               ngx_pcalloc(cf->pool, sizeof(ngx_http_twostep_main_conf_t)));
    if (conf == NULL) {
        return NULL;
    }

    conf->zone_size = NGX_CONF_UNSET_SIZE;

    return conf;
}


static void *
ngx_http_twostep_create_srv_conf(ngx_conf_t *cf) noexcept
{
    ngx_http_twostep_srv_conf_t  *conf;

    conf = static_cast<ngx_http_twostep_srv_conf_t *>(
               ngx_pcalloc(cf->pool, sizeof(ngx_http_twostep_srv_conf_t)));
    if (conf == NULL) {
        return NULL;
    }

    /*
     * set by ngx_pcalloc():
     *
     *     conf->store = NULL;
     *     conf->keys = NULL;
     *     conf->sessions = NULL;
     *     conf->portal_uri = { 0, NULL };
     *     conf->session_audience = { 0, NULL };
     *     conf->thread_pool_name = { 0, NULL };
     *     conf->thread_pool = NULL;
     *     conf->duo = NULL;
     *     conf->provider = NULL;
     *     conf->duo_api = { 0, NULL };
     *     conf->duo_ikey = { 0, NULL };
     *     conf->duo_skey = { 0, NULL };
     *     conf->twilio = NULL;
     *     conf->ntfy = NULL;
     *     conf->twilio_api = { 0, NULL };
     *     conf->twilio_account = { 0, NULL };
     *     conf->twilio_token = { 0, NULL };
     *     conf->twilio_from = { 0, NULL };
     *     conf->ntfy_server = { 0, NULL };
     *     conf->ntfy_token = { 0, NULL };
     *     conf->public_url = { 0, NULL };
     *     conf->protects = 0;
     *     conf->accepted = 0;
     *     conf->theme = NULL;
     *     conf->language = NULL;
     *     conf->language_name = { 0, NULL };
     *     conf->site_name = { 0, NULL };
     *     conf->webauthn_rp_id = { 0, NULL };
     */

    conf->session_ttl = NGX_CONF_UNSET;
    conf->remember = NGX_CONF_UNSET;
    conf->fraud_pause = NGX_CONF_UNSET;
    conf->enroll = NGX_CONF_UNSET;
    conf->passkey_signin = NGX_CONF_UNSET;
    conf->duo_timeout = NGX_CONF_UNSET_MSEC;
    conf->lockout_failures = NGX_CONF_UNSET;
    conf->lockout_time = NGX_CONF_UNSET;
    conf->lockout_address_failures = NGX_CONF_UNSET;
    conf->lockout_account_failures = NGX_CONF_UNSET;
    conf->audit_log = static_cast<ngx_http_twostep_audit_log_t *>(
                          NGX_CONF_UNSET_PTR);

    return conf;
}


// The first address the server listens on ("127.0.0.1:8080"), as nginx
// has recorded it while parsing; servers are merged before nginx sorts
// the addresses, so the order is that of the configuration.
static std::string
ngx_http_twostep_listen_of(ngx_conf_t *cf, ngx_http_core_srv_conf_t *cscf)
{
    auto cmcf = static_cast<ngx_http_core_main_conf_t *>(
                    ngx_http_conf_get_module_main_conf(cf,
                                                       ngx_http_core_module));

    if (cmcf->ports == NULL) {
        return {};
    }

    auto port = static_cast<ngx_http_conf_port_t *>(cmcf->ports->elts);

    for (ngx_uint_t p = 0; p < cmcf->ports->nelts; p++) {
        auto addr = static_cast<ngx_http_conf_addr_t *>(port[p].addrs.elts);

        for (ngx_uint_t a = 0; a < port[p].addrs.nelts; a++) {
            auto server = static_cast<ngx_http_core_srv_conf_t **>(
                              addr[a].servers.elts);

            for (ngx_uint_t s = 0; s < addr[a].servers.nelts; s++) {
                if (server[s] == cscf) {
                    return std::string(
                               ngx_http_twostep_sv(addr[a].opt.addr_text));
                }
            }
        }
    }

    return {};
}


// Every token a server signs (sessions, sign-ins, form tokens) is bound to
// its audience: twostep_session_audience, else the server's first
// server_name, else its first listen address. So a cookie from one server
// opens no other, even with one key for all of them; servers that should
// share sessions name the same audience. "_" names no host (nginx's
// catch-all convention), so such a server is known by its listen address:
// a browser sends a host's cookies to every port of it.
static twostep::KeyRing *
ngx_http_twostep_bind_keys(ngx_conf_t *cf, ngx_http_twostep_srv_conf_t *conf)
{
    std::string audience(ngx_http_twostep_sv(conf->session_audience));

    if (audience.empty()) {
        auto cscf = static_cast<ngx_http_core_srv_conf_t *>(
                        ngx_http_conf_get_module_srv_conf(cf,
                                                      ngx_http_core_module));
        std::string_view name = ngx_http_twostep_sv(cscf->server_name);

        if (name.empty() || name == "_") {
            audience = "listen:" + ngx_http_twostep_listen_of(cf, cscf);

        } else {
            audience = "name:" + std::string(name);
        }

    } else {
        audience.insert(0, "audience:");
    }

    return ngx_http_twostep_pool_new<twostep::KeyRing>(cf->pool,
               conf->keys->for_audience(audience));
}


static char *
ngx_http_twostep_merge_srv_conf(ngx_conf_t *cf, void *parent,
    void *child) noexcept
try {
    auto prev = static_cast<ngx_http_twostep_srv_conf_t *>(parent);
    auto conf = static_cast<ngx_http_twostep_srv_conf_t *>(child);

    if (conf->store == NULL) {
        conf->store = prev->store;
    }

    ngx_conf_merge_value(conf->enroll, prev->enroll, 0);
    ngx_conf_merge_str_value(conf->webauthn_rp_id, prev->webauthn_rp_id, "");
    ngx_conf_merge_value(conf->passkey_signin, prev->passkey_signin, 0);

    if (conf->store) {
        ngx_http_twostep_check_store_access(cf, conf->store, conf->enroll);
    }

    if (conf->keys == NULL) {
        conf->keys = prev->keys;
    }

    ngx_conf_merge_str_value(conf->session_audience, prev->session_audience,
                             "");

    if (conf->keys) {
        conf->keys = ngx_http_twostep_bind_keys(cf, conf);
        if (conf->keys == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    ngx_conf_merge_ptr_value(conf->audit_log, prev->audit_log, NULL);

    // NIST SP 800-63B 4.2.3 (AAL2): re-authenticate at least every 12 hours.
    ngx_conf_merge_sec_value(conf->session_ttl, prev->session_ttl,
                             12 * 60 * 60);
    ngx_conf_merge_sec_value(conf->remember, prev->remember, 0);
    // Pushes and calls pause this long after the phone reports fraud.
    ngx_conf_merge_sec_value(conf->fraud_pause, prev->fraud_pause, 900);
    ngx_conf_merge_str_value(conf->portal_uri, prev->portal_uri,
                             "/.twostep/");
    ngx_conf_merge_str_value(conf->thread_pool_name, prev->thread_pool_name,
                             "default");

    // Well inside NIST SP 800-63B 5.2.2's limit of 100 consecutive failures.
    ngx_conf_merge_value(conf->lockout_failures, prev->lockout_failures, 5);
    ngx_conf_merge_sec_value(conf->lockout_time, prev->lockout_time, 300);
    ngx_conf_merge_value(conf->lockout_address_failures,
                         prev->lockout_address_failures, 50);
    // FAILURES counts per account and address; the account as a whole
    // locks at four times that (20 by default), still within NIST's 100.
    ngx_conf_merge_value(conf->lockout_account_failures,
                         prev->lockout_account_failures,
                         ngx_min(100, 4 * conf->lockout_failures));

    ngx_conf_merge_str_value(conf->duo_api, prev->duo_api, "");
    ngx_conf_merge_str_value(conf->duo_ikey, prev->duo_ikey, "");
    ngx_conf_merge_str_value(conf->duo_skey, prev->duo_skey, "");
    ngx_conf_merge_msec_value(conf->duo_timeout, prev->duo_timeout, 10000);

    if (conf->duo_api.len || conf->duo_ikey.len || conf->duo_skey.len) {
        if (!conf->duo_api.len || !conf->duo_ikey.len || !conf->duo_skey.len)
        {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "Duo needs all of \"twostep_duo_api\", "
                               "\"twostep_duo_ikey\" and "
                               "\"twostep_duo_skey_file\"");
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        // The host the requests are signed for: the URL without scheme.
        ngx_str_t host = conf->duo_api;
        size_t scheme = ngx_strncmp(host.data, "https://", 8) == 0 ? 8 : 7;

        conf->duo = ngx_http_twostep_pool_new<twostep::duo::Credentials>(
                        cf->pool);
        if (conf->duo == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        try {
            conf->duo->ikey = std::string(ngx_http_twostep_sv(conf->duo_ikey));
            conf->duo->skey = std::string(ngx_http_twostep_sv(conf->duo_skey));
            conf->duo->host = std::string(ngx_http_twostep_sv(host)
                                              .substr(scheme));

        } catch (...) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        // Requests go to the configured URL, signed for its host.
        conf->provider = ngx_http_twostep_pool_new<twostep::duo::Provider>(
                             cf->pool, *conf->duo,
                             ngx_http_twostep_sv(conf->duo_api));
        if (conf->provider == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                       ngx_http_conf_get_module_main_conf(cf,
                                                   ngx_http_twostep_module));
        mcf->duo = 1;
    }

    if (ngx_http_twostep_merge_self_hosted(cf, prev, conf) != NGX_CONF_OK) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (conf->session_ttl < 1) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_session_ttl\" must be at least 1s");
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return ngx_http_twostep_merge_pages(cf, prev, conf);
} catch (...) {
    return ngx_http_twostep_conf_failed(cf);
}


// The pages' theme, language and site name: a server without its own
// takes the http block's.
static char *
ngx_http_twostep_merge_pages(ngx_conf_t *cf,
    ngx_http_twostep_srv_conf_t *prev, ngx_http_twostep_srv_conf_t *conf)
{
    if (conf->theme == NULL) {
        conf->theme = prev->theme;
    }

    if (conf->theme == NULL) {
        try {
            conf->theme = &twostep::PageTheme::builtin();

        } catch (const std::exception &e) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "the built-in pages are broken: %s", e.what());
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    ngx_conf_merge_str_value(conf->site_name, prev->site_name, "");
    ngx_conf_merge_str_value(conf->language_name, prev->language_name,
                             "auto");

    std::string_view code = ngx_http_twostep_sv(conf->language_name);
    conf->language = NULL;

    if (code != "auto") {
        conf->language = conf->theme->language(code);

        if (conf->language == NULL) {
            std::string have;
            for (const std::string &c : conf->theme->languages()) {
                have += have.empty() ? c : ", " + c;
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"twostep_language\" is \"auto\" or one of "
                               "the pages' languages (%s), not \"%V\"",
                               have.c_str(), &conf->language_name);
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    return NGX_CONF_OK;
}


static void *
ngx_http_twostep_create_loc_conf(ngx_conf_t *cf) noexcept
{
    ngx_http_twostep_loc_conf_t  *conf;

    conf = static_cast<ngx_http_twostep_loc_conf_t *>(
               ngx_pcalloc(cf->pool, sizeof(ngx_http_twostep_loc_conf_t)));
    if (conf == NULL) {
        return NULL;
    }

    conf->enable = NGX_CONF_UNSET;
    conf->methods = NGX_CONF_UNSET_UINT;
    conf->max_age = NGX_CONF_UNSET;
    conf->identity = static_cast<ngx_http_twostep_identity_t *>(
                         NGX_CONF_UNSET_PTR);

    /*
     * set by ngx_pcalloc():
     *
     *     conf->identity_realm = NULL;
     */

    return conf;
}


static char *
ngx_http_twostep_merge_loc_conf(ngx_conf_t *cf, void *parent,
    void *child) noexcept
try {
    auto prev = static_cast<ngx_http_twostep_loc_conf_t *>(parent);
    auto conf = static_cast<ngx_http_twostep_loc_conf_t *>(child);

    ngx_http_core_loc_conf_t     *clcf;
    ngx_http_twostep_srv_conf_t  *scf;

    // Methods listed here or above (the default, all, offers only what a
    // provider confirms, so it needs no provider).
    bool listed = conf->methods != NGX_CONF_UNSET_UINT
                  || (prev->methods != NGX_CONF_UNSET_UINT
                      && prev->methods != twostep::all_methods);

    ngx_conf_merge_value(conf->enable, prev->enable, 0);
    ngx_conf_merge_uint_value(conf->methods, prev->methods,
                              twostep::all_methods);
    ngx_conf_merge_sec_value(conf->max_age, prev->max_age, 0);
    ngx_conf_merge_ptr_value(conf->identity, prev->identity, NULL);

    if (!conf->enable) {
        return NGX_CONF_OK;
    }

    // During merging, the context is that of the server being merged.
    scf = static_cast<ngx_http_twostep_srv_conf_t *>(
              ngx_http_conf_get_module_srv_conf(cf, ngx_http_twostep_module));
    clcf = static_cast<ngx_http_core_loc_conf_t *>(
               ngx_http_conf_get_module_loc_conf(cf, ngx_http_core_module));

    if (scf->store == NULL || scf->keys == NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep\" is on in location \"%V\" but "
                           "\"twostep_users\" and \"twostep_cookie_key\" "
                           "are not both set for its server", &clcf->name);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    // Push needs Duo or ntfy, call and text Duo or Twilio: a location that
    // lists one with neither would offer what nobody can use.
    twostep::MethodSet served = 0;
    for (const twostep::OutOfBandProvider *provider :
         {scf->provider, scf->twilio, scf->ntfy})
    {
        served |= provider ? provider->methods() : 0;
    }

    twostep::MethodSet missing =
        conf->methods & twostep::methods_of_kind(
                            twostep::MethodKind::out_of_band) & ~served;

    if (listed && missing) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "location \"%V\" allows %s, but its server has "
                           "no provider for them (\"twostep_duo_api\", "
                           "\"twostep_twilio_account\" or "
                           "\"twostep_ntfy_server\")",
                           &clcf->name,
                           twostep::methods_to_list(missing).c_str());
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (conf->identity
        && ngx_http_twostep_identity_verified(cf, conf, clcf) != NGX_CONF_OK)
    {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    // With "satisfy any" the first access module that allows a request ends
    // the access phase, so an "allow" or a good auth_basic password skips
    // our check: the second factor becomes optional there (NIST SP 800-63B
    // 4.2, AAL2 needs both). A choice some make ("the office, or two-step"),
    // so said rather than refused.
    if (clcf->satisfy == NGX_HTTP_SATISFY_ANY) {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"satisfy any\" in location \"%V\": a request "
                           "that \"allow\", \"auth_basic\" or "
                           "\"auth_request\" lets in skips \"twostep\"",
                           &clcf->name);
    }

#if (NGX_THREADS)
    // Password hashing is slow by design and runs off the event loop; the
    // pool is made only for servers that protect something.
    if (scf->thread_pool == NULL) {
        scf->thread_pool = ngx_thread_pool_add(cf, &scf->thread_pool_name);
        if (scf->thread_pool == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"twostep\" needs nginx built with threads "
                       "(--with-threads) to check passwords off the event "
                       "loop");
    return static_cast<char *>(NGX_CONF_ERROR);
#endif

    scf->protects = 1;
    scf->accepted |= conf->methods;

    auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                   ngx_http_conf_get_module_main_conf(cf,
                                                      ngx_http_twostep_module));
    mcf->protects = 1;

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf);
}


/*
 * The location configuration of another HTTP module for the location being
 * merged, found by name so that nginx built without it still loads us; NULL
 * when it is not there. Modules merge in their order, and ours is loaded
 * after nginx's own, so theirs are merged already.
 */

static void *
ngx_http_twostep_other_loc_conf(ngx_conf_t *cf, const char *name)
{
    ngx_uint_t     i;
    ngx_module_t  *m;

    for (i = 0; cf->cycle->modules[i]; i++) {
        m = cf->cycle->modules[i];

        if (m->type == NGX_HTTP_MODULE && ngx_strcmp(m->name, name) == 0) {
            return static_cast<ngx_http_conf_ctx_t *>(cf->ctx)
                       ->loc_conf[m->ctx_index];
        }
    }

    return NULL;
}


/*
 * nginx's modules keep their configuration private; these mirror the
 * layouts of the nginx the module is built against (1.22, as in nginx's
 * later releases). Only read, never written.
 */

struct ngx_http_twostep_auth_basic_conf_t {
    ngx_http_complex_value_t  *realm;
    ngx_http_complex_value_t  *user_file;
};

struct ngx_http_twostep_auth_request_conf_t {
    ngx_str_t                  uri;
    ngx_array_t               *vars;
};

struct ngx_http_twostep_auth_request_var_t {
    ngx_int_t                  index;
    ngx_http_complex_value_t   value;
    ngx_http_set_variable_pt   set_handler;
};


/*
 * twostep_identity trusts a user name only where an auth module of the same
 * location has verified it before our access check runs: $remote_user with
 * auth_basic (realm and user file set, not "off"), or a variable that
 * auth_request_set fills from the auth_request answer. Anything else is the
 * client's own claim (a Basic header nobody checked, a request header), and
 * is refused here rather than trusted at run time.
 */

static char *
ngx_http_twostep_identity_verified(ngx_conf_t *cf,
    ngx_http_twostep_loc_conf_t *conf, ngx_http_core_loc_conf_t *clcf)
{
    ngx_uint_t  i;

    // With "satisfy any" a failed auth_basic still reaches us, and
    // $remote_user would be whatever the client claimed.
    if (clcf->satisfy == NGX_HTTP_SATISFY_ANY) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_identity\" cannot be used with "
                           "\"satisfy any\" in location \"%V\": the identity "
                           "would not be verified", &clcf->name);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    auto basic = static_cast<ngx_http_twostep_auth_basic_conf_t *>(
                     ngx_http_twostep_other_loc_conf(cf,
                                                 "ngx_http_auth_basic_module"));
    auto request = static_cast<ngx_http_twostep_auth_request_conf_t *>(
                       ngx_http_twostep_other_loc_conf(cf,
                                               "ngx_http_auth_request_module"));

    if ((basic && (basic->realm == NGX_CONF_UNSET_PTR
                   || basic->user_file == NGX_CONF_UNSET_PTR))
        || (request && request->vars == NGX_CONF_UNSET_PTR))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_identity\" cannot tell whether the "
                           "auth modules of location \"%V\" are on: load "
                           "the twostep module after them", &clcf->name);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    ngx_str_t  *name = &conf->identity->name;

    if (name->len == sizeof("remote_user") - 1
        && ngx_strncmp(name->data, "remote_user", name->len) == 0)
    {
        bool on = basic && basic->realm && basic->user_file;

        if (on && basic->realm->lengths == NULL) {
            on = !(basic->realm->value.len == 3
                   && ngx_strncmp(basic->realm->value.data, "off", 3) == 0);

        } else if (on) {
            // A realm from variables may say "off" per request.
            conf->identity_realm = basic->realm;
        }

        if (on) {
            return NGX_CONF_OK;
        }

        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_identity $remote_user\" in location "
                           "\"%V\" without \"auth_basic\" and "
                           "\"auth_basic_user_file\": $remote_user would be "
                           "the client's unverified Authorization header; "
                           "use \"twostep_identity off\" where auth_basic "
                           "is off", &clcf->name);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (request && request->uri.len && request->vars) {
        auto vars = static_cast<ngx_http_twostep_auth_request_var_t *>(
                        request->vars->elts);

        for (i = 0; i < request->vars->nelts; i++) {
            if (vars[i].index == conf->identity->index) {
                return NGX_CONF_OK;
            }
        }
    }

    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "\"twostep_identity $%V\" in location \"%V\" is not "
                       "set by an auth module there: use $remote_user with "
                       "\"auth_basic\", or a variable of \"auth_request_set\" "
                       "with \"auth_request\", or \"twostep_identity off\"",
                       name, &clcf->name);
    return static_cast<char *>(NGX_CONF_ERROR);
}


// Twilio (text and call) and ntfy (push): complete or absent, and with
// the public URL their callbacks and approval links lead back to.
static char *
ngx_http_twostep_merge_self_hosted(ngx_conf_t *cf,
    ngx_http_twostep_srv_conf_t *prev, ngx_http_twostep_srv_conf_t *conf)
{
    ngx_conf_merge_str_value(conf->twilio_api, prev->twilio_api,
                             "https://api.twilio.com");
    ngx_conf_merge_str_value(conf->twilio_account, prev->twilio_account, "");
    ngx_conf_merge_str_value(conf->twilio_token, prev->twilio_token, "");
    ngx_conf_merge_str_value(conf->twilio_from, prev->twilio_from, "");
    ngx_conf_merge_str_value(conf->ntfy_server, prev->ntfy_server, "");
    ngx_conf_merge_str_value(conf->ntfy_token, prev->ntfy_token, "");
    ngx_conf_merge_str_value(conf->public_url, prev->public_url, "");

    bool twilio = conf->twilio_account.len || conf->twilio_token.len
                  || conf->twilio_from.len;
    bool ntfy = conf->ntfy_server.len || conf->ntfy_token.len;

    if (twilio && (!conf->twilio_account.len || !conf->twilio_token.len
                   || !conf->twilio_from.len))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "Twilio needs all of \"twostep_twilio_account\", "
                           "\"twostep_twilio_token_file\" and "
                           "\"twostep_twilio_from\"");
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (ntfy && !conf->ntfy_server.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_ntfy_token_file\" needs "
                           "\"twostep_ntfy_server\"");
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if ((twilio || ntfy) && !conf->public_url.len) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "Twilio and ntfy need \"twostep_public_url\": "
                           "the address phones and Twilio reach the portal "
                           "at, for approval links and call-backs");
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (twilio) {
        twostep::twilio::Credentials c;
        c.api = std::string(ngx_http_twostep_sv(conf->twilio_api));
        c.account = std::string(ngx_http_twostep_sv(conf->twilio_account));
        c.token = std::string(ngx_http_twostep_sv(conf->twilio_token));

        conf->twilio = ngx_http_twostep_pool_new<twostep::twilio::Provider>(
                           cf->pool, std::move(c),
                           std::string(ngx_http_twostep_sv(
                               conf->twilio_from)));
        if (conf->twilio == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    if (ntfy) {
        twostep::ntfy::Server server;
        server.url = std::string(ngx_http_twostep_sv(conf->ntfy_server));
        server.token = std::string(ngx_http_twostep_sv(conf->ntfy_token));

        conf->ntfy = ngx_http_twostep_pool_new<twostep::ntfy::Provider>(
                         cf->pool, std::move(server));
        if (conf->ntfy == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    if (twilio || ntfy) {
        auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                       ngx_http_conf_get_module_main_conf(cf,
                                                   ngx_http_twostep_module));
        mcf->duo = 1;
    }

    return NGX_CONF_OK;
}


static ngx_int_t
ngx_http_twostep_add_variables(ngx_conf_t *cf) noexcept
try {
    ngx_http_variable_t  *var, *v;

    for (v = ngx_http_twostep_vars; v->name.len; v++) {
        var = ngx_http_add_variable(cf, &v->name, v->flags);
        if (var == NULL) {
            return NGX_ERROR;
        }

        var->get_handler = v->get_handler;
        var->data = v->data;
    }

    return NGX_OK;
} catch (...) {
    ngx_http_twostep_conf_failed(cf);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_twostep_init(ngx_conf_t *cf) noexcept
try {
    ngx_http_handler_pt        *h;
    ngx_array_t                *handlers;
    ngx_http_core_main_conf_t  *cmcf;

    if (ngx_http_twostep_check_factors(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    cmcf = static_cast<ngx_http_core_main_conf_t *>(
               ngx_http_conf_get_module_main_conf(cf, ngx_http_core_module));

    // Handlers of the other phases run last added first: ours go before
    // those of nginx's own modules. The portal answers in the precontent
    // phase, so the location chosen for its URI applies its limit_req,
    // allow/deny and other access rules first, and try_files after it
    // cannot send it elsewhere; it needs no location block of its own.
    h = static_cast<ngx_http_handler_pt *>(ngx_array_push(
            &cmcf->phases[NGX_HTTP_PRECONTENT_PHASE].handlers));
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_twostep_portal_handler;

    // Before the rewrite module's "return": a subrequest skips the access
    // phase, so this is where it meets the protected location.
    h = static_cast<ngx_http_handler_pt *>(ngx_array_push(
            &cmcf->phases[NGX_HTTP_REWRITE_PHASE].handlers));
    if (h == NULL) {
        return NGX_ERROR;
    }

    *h = ngx_http_twostep_subrequest_handler;

    // Access handlers run last to first: putting ours first makes it run
    // after auth_basic and friends, so twostep_identity sees a verified user.
    handlers = &cmcf->phases[NGX_HTTP_ACCESS_PHASE].handlers;

    h = static_cast<ngx_http_handler_pt *>(ngx_array_push(handlers));
    if (h == NULL) {
        return NGX_ERROR;
    }

    h = static_cast<ngx_http_handler_pt *>(handlers->elts);
    ngx_memmove(h + 1, h, (handlers->nelts - 1) * sizeof(ngx_http_handler_pt));
    *h = ngx_http_twostep_access_handler;

    auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                   ngx_http_conf_get_module_main_conf(cf,
                                                      ngx_http_twostep_module));

    // Every variable a directive named is indexed by now (nginx resolves
    // them after the postconfiguration handlers): does one of ours appear?
    // A variable only looked up at run time by name (SSI's echo, njs) is
    // not indexed; it checks the cookie again when it is read.
    auto v = static_cast<ngx_http_variable_t *>(cmcf->variables.elts);

    for (ngx_uint_t i = 0; i < cmcf->variables.nelts; i++) {
        if (v[i].name.len > sizeof("twostep_") - 1
            && ngx_strncmp(v[i].name.data, "twostep_",
                           sizeof("twostep_") - 1) == 0)
        {
            mcf->variables = 1;
        }
    }

    // The built-in pages are parsed here, once, in the master: workers
    // inherit them, and a broken build fails "nginx -t".
    try {
        twostep::PageTheme::builtin();

    } catch (const std::exception &e) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "twostep: the built-in pages are broken: %s",
                           e.what());
        return NGX_ERROR;
    }

    if (mcf->protects) {
        ngx_conf_init_size_value(mcf->zone_size, 1024 * 1024);

        if (mcf->zone_size < 8 * ngx_pagesize) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "\"twostep_zone\" of %uz bytes is too small, "
                               "at least %uz are needed",
                               mcf->zone_size, 8 * ngx_pagesize);
            return NGX_ERROR;
        }

        if (ngx_http_twostep_add_zone(cf, mcf) != NGX_OK) {
            return NGX_ERROR;
        }
    }

    if (ngx_http_twostep_redis_check(cf, mcf) != NGX_OK) {
        return NGX_ERROR;
    }

    if (ngx_http_twostep_audit_init(cf) != NGX_OK) {
        return NGX_ERROR;
    }

    if ((mcf->protects || mcf->metrics)
        && ngx_http_twostep_add_metrics_zone(cf, mcf) != NGX_OK)
    {
        return NGX_ERROR;
    }

    return NGX_OK;
} catch (...) {
    ngx_http_twostep_conf_failed(cf);
    return NGX_ERROR;
}


static ngx_int_t
ngx_http_twostep_init_process(ngx_cycle_t *cycle) noexcept
try {
    auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                   ngx_http_cycle_get_module_main_conf(cycle,
                                                   ngx_http_twostep_module));

    if (mcf == NULL) {
        return NGX_OK;  // no http block
    }

    if (mcf->duo && ngx_http_twostep_curl_init(cycle) != NGX_OK) {
        return NGX_ERROR;
    }

    try {
        if (ngx_http_twostep_prepare_zone(cycle, mcf) != NGX_OK) {
            return NGX_ERROR;
        }

        // The connections to Redis, for a worker that checks sign-ins.
        return mcf->zone ? ngx_http_twostep_redis_init(cycle, mcf) : NGX_OK;

    } catch (...) {
        return NGX_ERROR;
    }
} catch (...) {
    ngx_log_error(NGX_LOG_EMERG, cycle->log, 0, "twostep: %s",
                  ngx_http_twostep_what());
    return NGX_ERROR;
}


static void
ngx_http_twostep_exit_process(ngx_cycle_t *cycle) noexcept
try {
    auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(
                   ngx_http_cycle_get_module_main_conf(cycle,
                                                   ngx_http_twostep_module));

    if (mcf && mcf->duo) {
        ngx_http_twostep_curl_exit(cycle);
    }

    ngx_http_twostep_redis_exit(cycle);
} catch (...) {
    ngx_log_error(NGX_LOG_ALERT, cycle->log, 0, "twostep: %s",
                  ngx_http_twostep_what());
}
