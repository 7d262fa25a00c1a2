// The sign-in portal under twostep_portal_uri ("/.twostep/" by default):
//
//   signin   GET: the password form        POST: check it (thread pool)
//   verify   GET: the second-step form     POST: check the code, issue the
//                                                session, back to the URL
//   logout   GET: a "Sign out" button      POST: clear the session
//
// Between the steps the browser holds a pending-sign-in token that names the
// user but opens nothing; every form carries a token bound to it.

#include "ngx_http_twostep.h"

#include <openssl/crypto.h>

#include "core/form.h"
#include "core/pages.h"
#include "core/password.h"
#include "core/return_to.h"
#include "core/totp.h"


// A password check in flight: what the thread reads and what it answers.
struct ngx_http_twostep_signin_t {
    std::shared_ptr<const twostep::UserStore>  users;
    std::string                                username;
    std::string                                password;
    std::string                                return_to;
    twostep::MethodSet                         methods = 0;
    bool                                       known = false;
    bool                                       running = false;
    bool                                       matched = false;

    ~ngx_http_twostep_signin_t() {
        OPENSSL_cleanse(password.data(), password.size());
    }
};


// What every portal page needs to know about the request.
struct ngx_http_twostep_page_t {
    ngx_http_request_t           *r;
    ngx_http_twostep_srv_conf_t  *scf;
    std::string_view              page;      // "signin", "verify", ...
    twostep::Fields               query;
    twostep::Fields               form;
    std::string                   return_to;
    twostep::MethodSet            methods = twostep::all_methods;
};


static ngx_int_t ngx_http_twostep_dispatch(ngx_http_twostep_page_t &p);
static void ngx_http_twostep_body_handler(ngx_http_request_t *r) noexcept;
#if (NGX_THREADS)
static void ngx_http_twostep_password_thread(void *data, ngx_log_t *log)
    noexcept;
static void ngx_http_twostep_password_event(ngx_event_t *ev) noexcept;
static void ngx_http_twostep_password_resume(ngx_http_request_t *r)
    noexcept;
#endif


static twostep::PortalPaths
ngx_http_twostep_paths(ngx_http_twostep_srv_conf_t *scf)
{
    std::string base(ngx_http_twostep_sv(scf->portal_uri));

    return { base + "signin", base + "verify", base + "logout" };
}


std::string
ngx_http_twostep_portal_url(ngx_http_twostep_srv_conf_t *scf,
    std::string_view page, std::string_view return_to,
    twostep::MethodSet methods)
{
    std::string url(ngx_http_twostep_sv(scf->portal_uri));

    url += page;
    url += "?return_to=";
    url += twostep::url_encode(return_to);
    url += "&methods=";
    url += twostep::url_encode(twostep::methods_to_list(methods));

    return url;
}


// Only names that pass validation reach the log (no log injection); nginx
// appends the client address and the request line.
static void
ngx_http_twostep_log(ngx_http_request_t *r, ngx_uint_t level,
    const char *event, std::string_view user)
{
    if (user.empty()) {
        ngx_log_error(level, r->connection->log, 0, "twostep: %s", event);
        return;
    }

    std::string name = twostep::valid_user_name(user) ? std::string(user)
                                                       : "(malformed name)";

    ngx_log_error(level, r->connection->log, 0, "twostep: %s, user: \"%s\"",
                  event, name.c_str());
}


static ngx_int_t
ngx_http_twostep_redirect(ngx_http_request_t *r, std::string_view location)
{
    if (ngx_http_twostep_set_location(r, location) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return NGX_HTTP_SEE_OTHER;
}


// A form from another site is refused even before its token is checked
// (OWASP ASVS 4.2.2); browsers send Origin on every POST.
static bool
ngx_http_twostep_same_origin(ngx_http_request_t *r)
{
    std::string_view origin = ngx_http_twostep_request_header(r, "Origin");

    if (origin.empty()) {
        return true;
    }

    if (r->headers_in.host == NULL) {
        return false;
    }

    std::string expected;

#if (NGX_HTTP_SSL)
    expected = r->connection->ssl ? "https://" : "http://";
#else
    expected = "http://";
#endif
    expected += ngx_http_twostep_sv(r->headers_in.host->value);

    return origin.size() == expected.size()
           && ngx_strncasecmp((u_char *) origin.data(),
                              (u_char *) expected.data(), origin.size()) == 0;
}


static ngx_int_t
ngx_http_twostep_expired(ngx_http_twostep_page_t &p)
{
    ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                         "form without a valid token or from another origin",
                         "");

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
        twostep::render_message(
            "This page has expired",
            "Your sign-in took too long or came from another page. "
            "Please start again.",
            ngx_http_twostep_portal_url(p.scf, "signin", p.return_to,
                                        p.methods),
            "Start again"));
}


static std::string_view
ngx_http_twostep_address(ngx_http_request_t *r)
{
    return ngx_http_twostep_sv(r->connection->addr_text);
}


// Too many failures for this account or this address (OWASP ASVS 2.2.1).
static ngx_int_t
ngx_http_twostep_locked(ngx_http_request_t *r, std::string_view user,
    int64_t seconds)
{
    ngx_http_twostep_log(r, NGX_LOG_WARN, "locked out", user);

    int64_t minutes = (seconds + 59) / 60;

    return ngx_http_twostep_send_message(r, NGX_HTTP_TOO_MANY_REQUESTS,
               "Too many attempts",
               "Sign-in is paused after too many wrong attempts. Try again "
               "in " + std::to_string(minutes)
               + (minutes == 1 ? " minute." : " minutes."));
}


static std::optional<twostep::PendingSignin>
ngx_http_twostep_pending(ngx_http_twostep_page_t &p)
{
    std::string_view token = ngx_http_twostep_get_cookie(p.r, true);

    if (token.empty()) {
        return std::nullopt;
    }

    return twostep::decode_pending(*p.scf->keys, token, ngx_time());
}


// The posted form is genuine: same origin, and its token matches the
// pending sign-in this browser holds.
static std::optional<twostep::PendingSignin>
ngx_http_twostep_posted_pending(ngx_http_twostep_page_t &p)
{
    if (!ngx_http_twostep_same_origin(p.r)) {
        return std::nullopt;
    }

    auto pending = ngx_http_twostep_pending(p);

    if (!pending
        || !twostep::form_token_ok(*p.scf->keys, *pending,
                                   twostep::field(p.form, "form_token")))
    {
        return std::nullopt;
    }

    return pending;
}


static ngx_int_t
ngx_http_twostep_start_pending(ngx_http_twostep_page_t &p,
    twostep::PendingSignin &pending, std::string_view user,
    twostep::FirstFactor via)
{
    pending.nonce = twostep::random_token(16);
    pending.user = std::string(user);
    pending.via = via;
    pending.expires = ngx_time() + NGX_HTTP_TWOSTEP_PENDING_TTL;

    return ngx_http_twostep_set_cookie(p.r, true,
               twostep::encode_pending(*p.scf->keys, pending));
}


static ngx_int_t
ngx_http_twostep_signin_page(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, ngx_uint_t status,
    std::string_view username, std::string_view error)
{
    twostep::SigninPage page;

    page.paths = ngx_http_twostep_paths(p.scf);
    page.return_to = p.return_to;
    page.methods = twostep::methods_to_list(p.methods);
    page.form_token = twostep::form_token(*p.scf->keys, pending);
    page.username = std::string(username);
    page.error = std::string(error);

    return ngx_http_twostep_send_page(p.r, status,
                                      twostep::render_signin(page));
}


static ngx_int_t
ngx_http_twostep_signin_get(ngx_http_twostep_page_t &p)
{
    twostep::PendingSignin  pending;

    // Signed in already but sent here: the location wants a fresher or
    // another second step. The session stands for the password.
    if (const twostep::Session *session = ngx_http_twostep_session(p.r)) {
        if (ngx_http_twostep_start_pending(p, pending, session->user,
                                           twostep::FirstFactor::session)
            != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "verify", p.return_to,
                                               p.methods));
    }

    if (ngx_http_twostep_start_pending(p, pending, "",
                                       twostep::FirstFactor::none)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_signin_page(p, pending, NGX_HTTP_OK, "", "");
}


static ngx_int_t
ngx_http_twostep_signin_post(ngx_http_twostep_page_t &p)
{
#if (NGX_THREADS)
    ngx_http_request_t  *r = p.r;
    ngx_thread_task_t   *task;

    if (!ngx_http_twostep_posted_pending(p)) {
        return ngx_http_twostep_expired(p);
    }

    ngx_http_twostep_ctx_t *ctx = ngx_http_twostep_get_ctx(r);

    auto signin = ngx_http_twostep_pool_new<ngx_http_twostep_signin_t>(
                      r->pool);
    if (signin == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    signin->users = *p.scf->users;
    signin->username = std::string(twostep::field(p.form, "username"));
    signin->password = std::string(twostep::field(p.form, "password"));
    signin->return_to = p.return_to;
    signin->methods = p.methods;

    ngx_http_twostep_zone_state state(r);
    int64_t locked = twostep::locked_for(state,
                                         ngx_http_twostep_lockout(p.scf),
                                         signin->username,
                                         ngx_http_twostep_address(r),
                                         ngx_time());
    if (locked > 0) {
        return ngx_http_twostep_locked(r, signin->username, locked);
    }

    const twostep::User *user = nullptr;

    if (twostep::valid_user_name(signin->username)) {
        user = signin->users->find(signin->username);
    }

    signin->known = user != nullptr && !user->password_hash.empty();

    task = ngx_thread_task_alloc(r->pool, sizeof(ngx_http_twostep_signin_t *));
    if (task == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    *static_cast<ngx_http_twostep_signin_t **>(task->ctx) = signin;
    task->handler = ngx_http_twostep_password_thread;
    task->event.data = r;
    task->event.handler = ngx_http_twostep_password_event;

    if (ngx_thread_task_post(p.scf->thread_pool, task) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    // The request stays alive until the thread answers, even if the client
    // goes away meanwhile (the pattern of nginx's own thread reads).
    signin->running = true;
    ctx->signin = signin;
    r->main->blocked++;
    r->aio = 1;
    r->write_event_handler = ngx_http_twostep_password_resume;

    return NGX_DONE;
#else
    return NGX_HTTP_INTERNAL_SERVER_ERROR;
#endif
}


#if (NGX_THREADS)

static void
ngx_http_twostep_password_thread(void *data, ngx_log_t *log) noexcept
{
    auto signin = *static_cast<ngx_http_twostep_signin_t **>(data);

    try {
        if (signin->known) {
            const twostep::User *user = signin->users->find(signin->username);
            signin->matched = twostep::password_matches(signin->password,
                                                        user->password_hash);

        } else {
            // Unknown users cost the same time (OWASP ASVS 2.2.1 / 3.x:
            // no account enumeration through timing).
            twostep::password_dummy_check(signin->password);
            signin->matched = false;
        }

    } catch (...) {
        signin->matched = false;
    }
}


static void
ngx_http_twostep_password_event(ngx_event_t *ev) noexcept
{
    ngx_http_request_t  *r;
    ngx_connection_t    *c;

    r = static_cast<ngx_http_request_t *>(ev->data);
    c = r->connection;

    ngx_http_set_log_request(c->log, r);

    r->main->blocked--;
    r->aio = 0;

    auto ctx = static_cast<ngx_http_twostep_ctx_t *>(
                   ngx_http_get_module_ctx(r->main, ngx_http_twostep_module));
    if (ctx && ctx->signin) {
        ctx->signin->running = false;
    }

    // If the request was terminated meanwhile, nginx swapped this handler
    // for its finalizer.
    r->write_event_handler(r);
    ngx_http_run_posted_requests(c);
}


static void
ngx_http_twostep_password_resume(ngx_http_request_t *r) noexcept
{
    ngx_int_t  rc;

    auto ctx = static_cast<ngx_http_twostep_ctx_t *>(
                   ngx_http_get_module_ctx(r->main, ngx_http_twostep_module));

    if (ctx == NULL || ctx->signin == NULL || ctx->signin->running) {
        return;
    }

    ngx_http_twostep_signin_t *signin = ctx->signin;
    ctx->signin = NULL;
    r->write_event_handler = ngx_http_request_empty_handler;

    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(
                   ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));

    try {
        ngx_http_twostep_page_t p;
        p.r = r;
        p.scf = scf;
        p.page = "signin";
        p.return_to = signin->return_to;
        p.methods = signin->methods;

        twostep::PendingSignin pending;

        if (signin->matched) {
            ngx_http_twostep_log(r, NGX_LOG_NOTICE, "password accepted",
                                 signin->username);

            // A fresh token after the password: nothing minted before
            // sign-in carries over (no fixation, OWASP ASVS 3.2.1).
            rc = ngx_http_twostep_start_pending(p, pending, signin->username,
                                                twostep::FirstFactor::password);
            if (rc == NGX_OK) {
                rc = ngx_http_twostep_redirect(r,
                         ngx_http_twostep_portal_url(scf, "verify",
                                                     p.return_to, p.methods));
            }

        } else {
            ngx_http_twostep_log(r, NGX_LOG_WARN, "wrong user name or password",
                                 signin->username);

            ngx_http_twostep_zone_state state(r);
            int64_t locked = twostep::record_failure(state,
                                 ngx_http_twostep_lockout(scf),
                                 signin->username,
                                 ngx_http_twostep_address(r), ngx_time());

            rc = ngx_http_twostep_start_pending(p, pending, "",
                                                twostep::FirstFactor::none);
            if (rc == NGX_OK && locked > 0) {
                rc = ngx_http_twostep_locked(r, signin->username, locked);

            } else if (rc == NGX_OK) {
                rc = ngx_http_twostep_signin_page(p, pending,
                         NGX_HTTP_FORBIDDEN, signin->username,
                         "Wrong user name or password.");
            }
        }

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: sign-in failed: %s", e.what());
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_finalize_request(r, rc);
}

#endif


static ngx_int_t
ngx_http_twostep_code_page(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, ngx_uint_t status, std::string_view error)
{
    twostep::CodePage page;

    page.paths = ngx_http_twostep_paths(p.scf);
    page.user = user.name;
    page.method = method;
    page.offered = user.methods() & p.methods;
    page.return_to = p.return_to;
    page.methods = twostep::methods_to_list(p.methods);
    page.form_token = twostep::form_token(*p.scf->keys, pending);
    page.error = std::string(error);

    return ngx_http_twostep_send_page(p.r, status,
                                      twostep::render_code(page));
}


// The user a pending sign-in names, if it still exists and has a second
// step this location accepts; otherwise a page saying why not.
static const twostep::User *
ngx_http_twostep_pending_user(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, ngx_int_t *rc)
{
    const twostep::User *user = (*p.scf->users)->find(pending.user);

    if (user == nullptr) {
        *rc = ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                  "Access denied",
                  "Your account is no longer available. "
                  "Ask your administrator.");
        return nullptr;
    }

    if ((user->methods() & p.methods) == 0) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "no second step this location accepts",
                             user->name);
        *rc = ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                  "Two-step verification is not set up",
                  "This page needs a second step that is not set up for "
                  "your account. Ask your administrator to set up your "
                  "security info.");
        return nullptr;
    }

    return user;
}


static twostep::Method
ngx_http_twostep_pick_method(const twostep::User &user,
    twostep::MethodSet methods, std::string_view wanted)
{
    twostep::MethodSet offered = user.methods() & methods;

    auto m = twostep::method_from_name(wanted);
    if (m && twostep::has_method(offered, *m)) {
        return *m;
    }

    for (auto each : { twostep::Method::totp, twostep::Method::push,
                       twostep::Method::call, twostep::Method::sms })
    {
        if (twostep::has_method(offered, each)) {
            return each;
        }
    }

    return twostep::Method::totp;
}


static ngx_int_t
ngx_http_twostep_verify_get(ngx_http_twostep_page_t &p)
{
    ngx_int_t  rc = NGX_OK;

    auto pending = ngx_http_twostep_pending(p);

    if (!pending || pending->user.empty()) {
        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "signin", p.return_to,
                                               p.methods));
    }

    const twostep::User *user = ngx_http_twostep_pending_user(p, *pending,
                                                              &rc);
    if (user == nullptr) {
        return rc;
    }

    twostep::Method method = ngx_http_twostep_pick_method(*user, p.methods,
                                 twostep::field(p.query, "method"));

    return ngx_http_twostep_code_page(p, *pending, *user, method,
                                      NGX_HTTP_OK, "");
}


static ngx_int_t
ngx_http_twostep_verify_post(ngx_http_twostep_page_t &p)
{
    ngx_int_t  rc = NGX_OK;
    time_t     now = ngx_time();

    auto pending = ngx_http_twostep_posted_pending(p);

    if (!pending || pending->user.empty()) {
        return ngx_http_twostep_expired(p);
    }

    const twostep::User *user = ngx_http_twostep_pending_user(p, *pending,
                                                              &rc);
    if (user == nullptr) {
        return rc;
    }

    twostep::Method method = ngx_http_twostep_pick_method(*user, p.methods,
                                 twostep::field(p.form, "method"));

    ngx_http_twostep_zone_state state(p.r);
    twostep::LockoutRule rule = ngx_http_twostep_lockout(p.scf);
    std::string_view address = ngx_http_twostep_address(p.r);

    int64_t locked = twostep::locked_for(state, rule, user->name, address,
                                         now);
    if (locked > 0) {
        return ngx_http_twostep_locked(p.r, user->name, locked);
    }

    std::optional<int64_t> step;

    if (method == twostep::Method::totp && user->totp) {
        step = twostep::totp_verify(*user->totp,
                                    twostep::field(p.form, "code"), now);
    }

    const char *error = nullptr;

    if (!step) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN, "wrong code", user->name);
        error = "That code didn't work. Check the code and try again.";

    } else {
        switch (twostep::claim_totp_step(state, user->name, *step,
                                         user->totp->period, now))
        {
        case twostep::Claim::fresh:
            break;

        case twostep::Claim::replayed:
            ngx_http_twostep_log(p.r, NGX_LOG_WARN, "code used again",
                                 user->name);
            error = "That code has already been used. Wait for the next "
                    "code and try again.";
            break;

        default: /* twostep::Claim::unavailable */
            return ngx_http_twostep_send_message(p.r,
                       NGX_HTTP_SERVICE_UNAVAILABLE,
                       "Sign-in is unavailable",
                       "Sign-in cannot be completed right now. "
                       "Please try again in a minute.");
        }
    }

    if (error) {
        locked = twostep::record_failure(state, rule, user->name, address,
                                         now);
        if (locked > 0) {
            return ngx_http_twostep_locked(p.r, user->name, locked);
        }

        return ngx_http_twostep_code_page(p, *pending, *user, method,
                                          NGX_HTTP_FORBIDDEN, error);
    }

    twostep::record_success(state, user->name, address, now);

    twostep::Session session;
    session.sid = twostep::random_token(16);
    session.user = user->name;
    session.method = method;
    session.auth_time = now;
    session.expires = now + p.scf->session_ttl;

    // A step-up refreshes the second step, not the session's lifetime:
    // the absolute limit still counts from the password (NIST SP 800-63B
    // 4.2.3).
    if (pending->via == twostep::FirstFactor::session) {
        const twostep::Session *old = ngx_http_twostep_session(p.r);

        if (old == nullptr || old->user != user->name) {
            return ngx_http_twostep_expired(p);
        }

        session.expires = old->expires;

        // The cookie being replaced stops working too.
        twostep::revoke_session(state, *old, now);
    }

    ngx_http_twostep_log(p.r, NGX_LOG_NOTICE, "signed in", user->name);

    // A new session id at every sign-in (OWASP ASVS 3.2.1).
    if (ngx_http_twostep_set_cookie(p.r, false,
            twostep::encode_session(*p.scf->keys, session)) != NGX_OK
        || ngx_http_twostep_clear_cookie(p.r, true) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_redirect(p.r, p.return_to);
}


static std::string
ngx_http_twostep_logout_token(ngx_http_twostep_page_t &p,
    const twostep::Session &session)
{
    return p.scf->keys->mac("logout|" + session.sid);
}


static ngx_int_t
ngx_http_twostep_logout(ngx_http_twostep_page_t &p)
{
    const twostep::Session *session = ngx_http_twostep_session(p.r);

    if (p.r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        if (session == nullptr) {
            return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
                       twostep::render_signed_out(
                           ngx_http_twostep_paths(p.scf)));
        }

        return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
                   twostep::render_signout(ngx_http_twostep_paths(p.scf),
                       session->user,
                       ngx_http_twostep_logout_token(p, *session)));
    }

    if (session != nullptr) {
        if (!ngx_http_twostep_same_origin(p.r)
            || !p.scf->keys->mac_ok("logout|" + session->sid,
                                    twostep::field(p.form, "form_token")))
        {
            return ngx_http_twostep_expired(p);
        }

        ngx_http_twostep_zone_state state(p.r);

        if (!twostep::revoke_session(state, *session, ngx_time())) {
            ngx_log_error(NGX_LOG_ALERT, p.r->connection->log, 0,
                          "twostep: could not revoke a session at sign-out");
        }

        ngx_http_twostep_log(p.r, NGX_LOG_NOTICE, "signed out",
                             session->user);
    }

    if (ngx_http_twostep_clear_cookie(p.r, false) != NGX_OK
        || ngx_http_twostep_clear_cookie(p.r, true) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
               twostep::render_signed_out(ngx_http_twostep_paths(p.scf)));
}


static ngx_int_t
ngx_http_twostep_dispatch(ngx_http_twostep_page_t &p)
{
    std::string  error;
    bool         post = (p.r->method == NGX_HTTP_POST);

    auto query = twostep::parse_form(ngx_http_twostep_sv(p.r->args), error);
    if (!query) {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_BAD_REQUEST,
                   "Bad request", "The address of this page is malformed.");
    }

    p.query = std::move(*query);

    const twostep::Fields &fields = post ? p.form : p.query;

    // Only same-server paths, whatever arrives (no open redirect).
    std::string_view target = twostep::field(fields, "return_to");
    p.return_to = twostep::safe_return_to(target) ? std::string(target) : "/";

    std::string_view list = twostep::field(fields, "methods");
    if (!list.empty()) {
        auto methods = twostep::methods_from_list(list);
        if (!methods) {
            return ngx_http_twostep_send_message(p.r, NGX_HTTP_BAD_REQUEST,
                       "Bad request", "Unknown sign-in method.");
        }

        p.methods = *methods;
    }

    if (p.page == "signin") {
        return post ? ngx_http_twostep_signin_post(p)
                    : ngx_http_twostep_signin_get(p);
    }

    if (p.page == "verify") {
        return post ? ngx_http_twostep_verify_post(p)
                    : ngx_http_twostep_verify_get(p);
    }

    if (p.page == "logout") {
        return ngx_http_twostep_logout(p);
    }

    if (p.page.empty() && !post) {
        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "signin", p.return_to,
                                               p.methods));
    }

    return ngx_http_twostep_send_message(p.r, NGX_HTTP_NOT_FOUND,
               "Page not found", "There is no such sign-in page.");
}


static ngx_int_t
ngx_http_twostep_run(ngx_http_request_t *r, std::string_view body) noexcept
{
    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(
                   ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));

    try {
        ngx_http_twostep_page_t p;
        p.r = r;
        p.scf = scf;
        p.page = ngx_http_twostep_sv(r->uri).substr(scf->portal_uri.len);

        if (r->method == NGX_HTTP_POST) {
            std::string error;
            auto form = twostep::parse_form(body, error);

            if (!form) {
                return ngx_http_twostep_send_message(r, NGX_HTTP_BAD_REQUEST,
                           "Bad request", "The form sent was malformed.");
            }

            p.form = std::move(*form);
        }

        ngx_int_t rc = ngx_http_twostep_dispatch(p);

        if (auto it = p.form.find("password"); it != p.form.end()) {
            OPENSSL_cleanse(it->second.data(), it->second.size());
        }

        return rc;

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: portal request failed: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


static void
ngx_http_twostep_body_handler(ngx_http_request_t *r) noexcept
{
    ngx_chain_t  *cl;
    std::string   body;

    if (r->request_body && r->request_body->temp_file) {
        ngx_http_finalize_request(r, NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
        return;
    }

    try {
        for (cl = r->request_body ? r->request_body->bufs : NULL;
             cl;
             cl = cl->next)
        {
            if (ngx_buf_size(cl->buf) == 0) {
                continue;  // an empty body is a buffer that only says "last"
            }

            if (!ngx_buf_in_memory(cl->buf)) {
                ngx_http_finalize_request(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
                return;
            }

            body.append(reinterpret_cast<char *>(cl->buf->pos),
                        cl->buf->last - cl->buf->pos);

            if (body.size() > NGX_HTTP_TWOSTEP_MAX_BODY) {
                OPENSSL_cleanse(body.data(), body.size());
                ngx_http_finalize_request(r,
                                          NGX_HTTP_REQUEST_ENTITY_TOO_LARGE);
                return;
            }
        }

    } catch (...) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_int_t rc = ngx_http_twostep_run(r, body);
    OPENSSL_cleanse(body.data(), body.size());

    if (rc == NGX_DONE) {
        return;  // the thread pool answers later
    }

    ngx_http_finalize_request(r, rc);
}


// Server-rewrite phase: requests under the portal URI are answered here.
ngx_int_t
ngx_http_twostep_portal_handler(ngx_http_request_t *r) noexcept
{
    ngx_int_t                     rc;
    ngx_http_twostep_srv_conf_t  *scf;

    scf = static_cast<ngx_http_twostep_srv_conf_t *>(
              ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));

    if (!scf->protects
        || r->uri.len < scf->portal_uri.len
        || ngx_strncmp(r->uri.data, scf->portal_uri.data,
                       scf->portal_uri.len) != 0)
    {
        return NGX_DECLINED;
    }

    if (r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        return ngx_http_twostep_run(r, {});
    }

    if (r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    if (r->headers_in.content_length_n > NGX_HTTP_TWOSTEP_MAX_BODY) {
        return NGX_HTTP_REQUEST_ENTITY_TOO_LARGE;
    }

    r->request_body_in_single_buf = 1;

    rc = ngx_http_read_client_request_body(r, ngx_http_twostep_body_handler);

    if (rc >= NGX_HTTP_SPECIAL_RESPONSE) {
        return rc;
    }

    // The rewrite phase does not finalize on NGX_DONE: balance the count
    // taken by reading the body ourselves (as the mirror module does).
    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}
