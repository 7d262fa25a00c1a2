// The sign-in portal under twostep_portal_uri ("/.twostep/" by default):
//
//   signin   GET: the password form        POST: check it (thread pool)
//   verify   GET: the second-step form     POST: check the code, issue the
//                                                session, back to the URL
//   passkey  POST: sign in with a passkey (twostep_passkey_signin)
//   logout   GET: a "info.sign_out" button      POST: clear the session
//   enroll, security-info: self-service (ngx_http_twostep_selfservice.cpp)
//   push-setup: "Set up push notifications" (ngx_http_twostep_pushsetup.cpp)
//   wait     GET: "Approve the request on your phone" (push and call)
//   status   GET: JSON for the waiting page's script
//
// Each method's checks are in its factor file (ngx_http_twostep_factor.h);
// what the steps share is the flow kit (ngx_http_twostep_flow.cpp).
//
// Between the steps the browser holds a pending-sign-in token that names the
// user but opens nothing; every form carries a token bound to it.

#include "ngx_http_twostep_factor.h"

#include <openssl/crypto.h>

#include "core/form.h"
#include "core/pages.h"
#include "core/password.h"
#include "core/return_to.h"


// A password check in flight: what the thread reads and what it answers.
struct ngx_http_twostep_signin_t {
    std::shared_ptr<const twostep::UserStore>  users;
    std::string                                username;
    std::string                                password;
    std::string                                account;  // counted under
    bool                                       known = false;
    bool                                       matched = false;

    ~ngx_http_twostep_signin_t() {
        OPENSSL_cleanse(password.data(), password.size());
    }
};


static ngx_int_t ngx_http_twostep_dispatch(ngx_http_twostep_page_t &p);
static void ngx_http_twostep_body_handler(ngx_http_request_t *r) noexcept;


static ngx_int_t
ngx_http_twostep_signin_get(ngx_http_twostep_page_t &p)
{
    twostep::PendingSignin  pending;

    // Signed in already but sent here: the location wants a fresher or
    // another second step. The session stands for the password, unless
    // the location asks for the password and the session was opened by
    // another module's identity (the step-up would keep it one).
    const twostep::Session *session = ngx_http_twostep_session(p.r);

    if (session && !twostep::stands_for_password(session->via)
        && twostep::field(p.query, "first") == "password")
    {
        session = nullptr;
    }

    if (session) {
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


// A name typed into the sign-in form reaches the log only if it is in the
// store: a password typed into the name field must not (OWASP ASVS 7.1.1).
static std::string_view
ngx_http_twostep_typed_name(const ngx_http_twostep_signin_t &signin)
{
    bool exists = twostep::valid_user_name(signin.username)
                  && signin.users->find(signin.username) != nullptr;

    return exists ? std::string_view(signin.username) : "(unknown)";
}


static void ngx_http_twostep_check_password(ngx_http_twostep_signin_t &signin);
static ngx_int_t ngx_http_twostep_signin_answer(ngx_http_twostep_page_t &p,
    const ngx_http_twostep_signin_t &signin);


static ngx_int_t
ngx_http_twostep_signin_post(ngx_http_twostep_page_t &p)
{
    ngx_http_request_t  *r = p.r;

    if (!ngx_http_twostep_posted_pending(p)) {
        return ngx_http_twostep_expired(p);
    }

    auto signin = ngx_http_twostep_pool_new<ngx_http_twostep_signin_t>(
                      r->pool);
    if (signin == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    signin->users = p.scf->store->users;
    signin->username = std::string(twostep::field(p.form, "username"));
    signin->password = std::string(twostep::field(p.form, "password"));

    const twostep::User *user = nullptr;

    if (twostep::valid_user_name(signin->username)) {
        user = signin->users->find(signin->username);
    }

    // Names not in the store share a fixed set of counters, so random
    // names cannot crowd real accounts' counters out of the zone.
    signin->account = user ? signin->username
                           : twostep::unknown_account(signin->username);

    // The attempt is counted before the hash runs, so guesses sent all at
    // once cannot outrun the lockout.
    ngx_http_twostep_zone_state state(r);
    int64_t locked = twostep::begin_attempt(state,
                                            ngx_http_twostep_lockout(p.scf),
                                            signin->account,
                                            ngx_http_twostep_address(r),
                                            ngx_time());
    if (locked > 0) {
        return ngx_http_twostep_locked(r,
                   ngx_http_twostep_typed_name(*signin), locked);
    }

    signin->known = user != nullptr && !user->password_hash.empty();

    // What the answer needs of the page, without the posted password.
    ngx_http_twostep_page_t page = p;
    page.form.clear();

    return ngx_http_twostep_offload(r, p.scf->thread_pool,
               [signin] { ngx_http_twostep_check_password(*signin); },
               [signin, page]() mutable {
                   return ngx_http_twostep_signin_answer(page, *signin);
               },
               [signin, r, scf = p.scf] {
                   return ngx_http_twostep_release_attempt(r, scf,
                                                           signin->account);
               });
}


// In a pool thread.
static void
ngx_http_twostep_check_password(ngx_http_twostep_signin_t &signin)
{
    if (signin.known) {
        const twostep::User *user = signin.users->find(signin.username);
        signin.matched = twostep::password_matches(signin.password,
                                                   user->password_hash);

    } else {
        // Unknown users cost what the store's users cost (OWASP ASVS
        // 2.2.1: no account enumeration through timing).
        twostep::password_dummy_check(signin.password,
            signin.users->dummy_setting(signin.username));
        signin.matched = false;
    }
}


static ngx_int_t ngx_http_twostep_signin_result(ngx_http_twostep_page_t &p,
    const ngx_http_twostep_signin_t &signin, int64_t locked);


static ngx_int_t
ngx_http_twostep_signin_answer(ngx_http_twostep_page_t &p,
    const ngx_http_twostep_signin_t &signin)
{
    ngx_http_twostep_zone_state state(p.r);
    int64_t locked = twostep::end_attempt(state,
                         ngx_http_twostep_lockout(p.scf), signin.account,
                         ngx_http_twostep_address(p.r), !signin.matched,
                         ngx_time());

    // Counted on every host too (twostep_redis): the longer lock holds.
    return ngx_http_twostep_shared_locked(p.r, p.scf, signin.account,
                                          ngx_http_twostep_address(p.r),
                                          !signin.matched,
        [p, &signin, locked](int64_t left) mutable {
            if (left < 0) {
                return ngx_http_twostep_unavailable(p.r);
            }
            return ngx_http_twostep_signin_result(p, signin,
                                                  std::max(locked, left));
        });
}


static ngx_int_t
ngx_http_twostep_signin_result(ngx_http_twostep_page_t &p,
    const ngx_http_twostep_signin_t &signin, int64_t locked)
{
    ngx_int_t               rc;
    twostep::PendingSignin  pending;

    // A right password while a lock is in force opens nothing either.
    if (signin.matched && locked > 0) {
        return ngx_http_twostep_locked(p.r, signin.username, locked);
    }

    if (signin.matched) {
        ngx_http_twostep_log(p.r, NGX_LOG_NOTICE, "password accepted",
                             signin.username);
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, signin.username,
                               "password", NGX_HTTP_TWOSTEP_PASSED);

        // "Don't ask again on this device": the password alone signs in.
        const twostep::User *user = signin.users->find(signin.username);
        const ngx_http_twostep_factor_t *device =
            ngx_http_twostep_factor(twostep::Method::remembered);

        if (user != nullptr && device != nullptr) {
            twostep::PendingSignin remembered;
            remembered.user = signin.username;
            remembered.via = twostep::FirstFactor::password;

            rc = device->verify(p, remembered, *user,
                                twostep::Method::remembered);
            if (rc != NGX_DECLINED) {
                return rc;
            }
        }

        // A fresh token after the password: nothing minted before sign-in
        // carries over (no fixation, OWASP ASVS 3.2.1).
        rc = ngx_http_twostep_start_pending(p, pending, signin.username,
                                            twostep::FirstFactor::password);
        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "verify", p.return_to,
                                               p.methods));
    }

    ngx_http_twostep_log(p.r, NGX_LOG_WARN, "wrong user name or password",
                         ngx_http_twostep_typed_name(signin));
    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN,
                           ngx_http_twostep_typed_name(signin), "password",
                           NGX_HTTP_TWOSTEP_FAILED);

    rc = ngx_http_twostep_start_pending(p, pending, "",
                                        twostep::FirstFactor::none);
    if (rc != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (locked > 0) {
        return ngx_http_twostep_locked(p.r,
                   ngx_http_twostep_typed_name(signin), locked);
    }

    return ngx_http_twostep_signin_page(p, pending, NGX_HTTP_FORBIDDEN,
                                        signin.username,
                                        "error.wrong_password");
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

    // Push, call and text: ask the provider what this user has first.
    const ngx_http_twostep_factor_t *offering =
        ngx_http_twostep_offering_factor(
            ngx_http_twostep_provider_methods(p));
    if (offering != nullptr) {
        return offering->offer(p, *pending, *user);
    }

    twostep::MethodSet offered = ngx_http_twostep_usable(p, *user,
                                     ngx_http_twostep_local_methods(p, *user));
    if (offered == 0) {
        return ngx_http_twostep_not_set_up(p, *user);
    }

    twostep::Method method = ngx_http_twostep_pick_method(offered,
                                 twostep::field(p.query, "method"), *user);

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
               twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                    ngx_http_twostep_code_form(
                   p, *pending, *user, method, offered)));
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

    auto method = twostep::method_from_name(twostep::field(p.form,
                                                           "method"));
    twostep::MethodSet local = ngx_http_twostep_local_methods(p, *user);
    twostep::MethodSet remote = ngx_http_twostep_provider_methods(p);

    if (!method || !twostep::has_method(local | remote, *method)) {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                   "msg.method.title",
                   "msg.method.text");
    }

    ngx_http_twostep_zone_state state(p.r);
    twostep::LockoutRule rule = ngx_http_twostep_lockout(p.scf);
    std::string_view address = ngx_http_twostep_address(p.r);

    int64_t locked = twostep::locked_for(state, rule, user->name, address,
                                         now);
    if (locked > 0) {
        return ngx_http_twostep_locked(p.r, user->name, locked,
                                       twostep::method_name(*method));
    }

    // "Don't ask again on this device", as ticked on this form; it travels
    // in the pending token while a push or call waits.
    pending->remember = ngx_http_twostep_may_remember(p, *pending)
                        && twostep::field(p.form, "remember") == "1";

    const ngx_http_twostep_factor_t *factor = ngx_http_twostep_factor(*method);
    if (factor == nullptr) {
        return NGX_HTTP_FORBIDDEN;
    }

    // Then the lockout of every host (twostep_redis): the factor runs once
    // Redis said the account may try.
    twostep::PendingSignin waiting = *pending;
    twostep::Method m = *method;
    std::string name = user->name;

    return ngx_http_twostep_shared_locked(p.r, p.scf, user->name, address,
                                          false,
        [p, factor, waiting, m, name](int64_t left) mutable {
            if (left < 0) {
                return ngx_http_twostep_unavailable(p.r);
            }
            if (left > 0) {
                return ngx_http_twostep_locked(p.r, name, left,
                                               twostep::method_name(m));
            }

            return ngx_http_twostep_with_user(p, waiting,
                [&](const twostep::User &u) {
                    return factor->verify(p, waiting, u, m);
                });
        });
}


static ngx_int_t
ngx_http_twostep_logout(ngx_http_twostep_page_t &p)
{
    const twostep::Session *session = ngx_http_twostep_session(p.r);

    if (p.r->method & (NGX_HTTP_GET|NGX_HTTP_HEAD)) {
        if (session == nullptr) {
            return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
                   twostep::render_signed_out(ngx_http_twostep_page_ctx(p.r),
                                              ngx_http_twostep_paths(p.scf)));
        }

        return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
                   twostep::render_signout(ngx_http_twostep_page_ctx(p.r),
                       ngx_http_twostep_paths(p.scf), session->user,
                       ngx_http_twostep_logout_token(p.scf, *session)));
    }

    if (session != nullptr) {
        if (!ngx_http_twostep_same_origin(p.r)
            || !p.scf->keys->mac_ok("logout|" + session->sid,
                                    twostep::field(p.form, "form_token")))
        {
            return ngx_http_twostep_expired(p);
        }

        if (!ngx_http_twostep_revoke_session(p.r, *session)) {
            ngx_log_error(NGX_LOG_ALERT, p.r->connection->log, 0,
                          "twostep: could not revoke a session at sign-out");
        }

        ngx_http_twostep_log(p.r, NGX_LOG_NOTICE, "signed out",
                             session->user);
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNOUT, session->user,
                               session->method, NGX_HTTP_TWOSTEP_PASSED);
    }

    if (ngx_http_twostep_cookie_header(p.r, NGX_HTTP_TWOSTEP_COOKIE_SESSION,
                                       {}, 0) != NGX_OK
        || ngx_http_twostep_cookie_header(p.r,
                                          NGX_HTTP_TWOSTEP_COOKIE_PENDING,
                                          {}, 0) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
               twostep::render_signed_out(ngx_http_twostep_page_ctx(p.r),
                                          ngx_http_twostep_paths(p.scf)));
}


// wait and status: the factor whose transaction this browser waits on.
static ngx_int_t
ngx_http_twostep_wait(ngx_http_twostep_page_t &p, bool json)
{
    ngx_int_t  rc = NGX_OK;

    auto pending = ngx_http_twostep_pending(p);

    const ngx_http_twostep_factor_t *factor = nullptr;
    if (pending && !pending->txid.empty()) {
        factor = ngx_http_twostep_factor(pending->txid_method);
    }

    if (factor == nullptr || factor->wait == NULL) {
        return ngx_http_twostep_nothing_waits(p, json);
    }

    const twostep::User *user = ngx_http_twostep_pending_user(p, *pending,
                                                              &rc);
    if (user == nullptr) {
        return rc;
    }

    return factor->wait(p, *pending, *user, json);
}


static ngx_int_t
ngx_http_twostep_dispatch(ngx_http_twostep_page_t &p)
{
    std::string  error;
    bool         post = (p.r->method == NGX_HTTP_POST);

    auto query = twostep::parse_form(ngx_http_twostep_sv(p.r->args), error);
    if (!query) {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_BAD_REQUEST,
                   "msg.bad_request.title", "msg.bad_request.address");
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
                       "msg.bad_request.title", "msg.bad_request.method");
        }

        p.methods = *methods;
    }

    // What the protected location accepts travels signed in the pending
    // token: a link or form can narrow it, never widen it; and never
    // beyond what some location of this server accepts (no text goes out
    // where nothing takes one).
    if (auto pending = ngx_http_twostep_pending(p)) {
        p.methods &= pending->methods;
    }

    p.methods &= p.scf->accepted;

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

    if (p.page == "enroll") {
        return ngx_http_twostep_enroll(p);
    }

    if (p.page == "passkey") {
        return ngx_http_twostep_passkey(p);
    }

    if (p.page == "security-info") {
        return ngx_http_twostep_security_info(p);
    }

    if (p.page == "push-setup") {
        return ngx_http_twostep_push_setup(p);
    }

    if (p.page == "approve") {
        return ngx_http_twostep_approve(p);
    }

    if (p.page == "deny") {
        return ngx_http_twostep_deny(p);
    }

    if (p.page == "call") {
        return ngx_http_twostep_call_answered(p);
    }

    if (p.page == "wait" && !post) {
        return ngx_http_twostep_wait(p, false);
    }

    if (p.page == "status" && !post) {
        return ngx_http_twostep_wait(p, true);
    }

    if (p.page.empty() && !post) {
        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "signin", p.return_to,
                                               p.methods));
    }

    return ngx_http_twostep_send_message(p.r, NGX_HTTP_NOT_FOUND,
               "msg.not_found.title", "msg.not_found.text");
}


static ngx_int_t
ngx_http_twostep_run(ngx_http_request_t *r, std::string_view body) noexcept
{
    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(
                   ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));

    try {
        ngx_http_twostep_refresh_store(scf->store, r->connection->log);

        if (scf->store->stale) {
            return ngx_http_twostep_send_message(r,
                       NGX_HTTP_SERVICE_UNAVAILABLE,
                       "Sign-in is unavailable",
                       "Sign-in is not possible right now. Please try "
                       "again later.");
        }

        ngx_http_twostep_page_t p;
        p.r = r;
        p.scf = scf;
        p.page = ngx_http_twostep_sv(r->uri).substr(scf->portal_uri.len);

        if (r->method == NGX_HTTP_POST) {
            std::string error;
            auto form = twostep::parse_form(body, error);

            if (!form) {
                return ngx_http_twostep_send_message(r, NGX_HTTP_BAD_REQUEST,
                           "msg.bad_request.title", "msg.bad_request.form");
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

    } catch (...) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: portal request failed");
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


bool
ngx_http_twostep_is_portal(ngx_http_request_t *r,
    const ngx_http_twostep_srv_conf_t *scf)
{
    // Subrequests (SSI, auth_request) never get the portal: its pages and
    // cookies are for the browser's own requests.
    return r == r->main
           && scf->protects
           && r->uri.len >= scf->portal_uri.len
           && ngx_strncmp(r->uri.data, scf->portal_uri.data,
                          scf->portal_uri.len) == 0;
}


static ngx_int_t
ngx_http_twostep_portal_start(ngx_http_request_t *r) noexcept
{
    ngx_int_t  rc;

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

    // No phase checker finalizes on NGX_DONE: balance the count taken by
    // reading the body ourselves (as the mirror module does).
    ngx_http_finalize_request(r, NGX_DONE);

    return NGX_DONE;
}


// Precontent phase: requests under the portal URI are answered here, after
// the preaccess and access modules of the location nginx chose for them
// (limit_req, allow/deny, ...) and before try_files or its content handler.
ngx_int_t
ngx_http_twostep_portal_handler(ngx_http_request_t *r) noexcept
{
    ngx_int_t                     rc;
    ngx_http_twostep_srv_conf_t  *scf;

    scf = static_cast<ngx_http_twostep_srv_conf_t *>(
              ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));

    if (!ngx_http_twostep_is_portal(r, scf)) {
        return NGX_DECLINED;
    }

    rc = ngx_http_twostep_portal_start(r);

    if (rc == NGX_DONE) {
        return NGX_DONE;  // a body, a thread or the provider answers later
    }

    // This phase's checker would run the content handler on NGX_OK and
    // never finish on NGX_AGAIN: the answer is complete, finalize it here.
    ngx_http_finalize_request(r, rc);

    return NGX_DONE;
}
