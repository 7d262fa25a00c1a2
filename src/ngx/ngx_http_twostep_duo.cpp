// The out-of-band factor: push, phone call and text message through a
// provider (twostep::OutOfBandProvider, src/core/provider.h; Duo's Auth API
// v2 is the first).
//
//   verify GET    offer: which of push, call, text the user has
//   verify POST   push/call: start a transaction, then the waiting page
//                 text: send a code, then check the code typed
//   wait GET      the waiting page; with check=1, its status decides
//   status GET    JSON for the waiting page's script (status)
//
// Every call goes out through the event loop (ngx_http_twostep_curl.cpp);
// the request waits parked and is finished by the answer. Anything but a
// well-formed answer is "the service is unavailable", never access.

#include "ngx_http_twostep_factor.h"

#include "core/provider.h"
#include "core/guard.h"


enum ngx_http_twostep_duo_step_e {
    NGX_HTTP_TWOSTEP_DUO_OFFER,
    NGX_HTTP_TWOSTEP_DUO_AUTH,
    NGX_HTTP_TWOSTEP_DUO_SMS,
    NGX_HTTP_TWOSTEP_DUO_PASSCODE,
    NGX_HTTP_TWOSTEP_DUO_WAIT,
    NGX_HTTP_TWOSTEP_DUO_STATUS
};


// A call to Duo in flight, with what its answer needs to finish the page.
struct ngx_http_twostep_duo_call_t {
    ngx_http_twostep_duo_step_e                step;
    ngx_http_twostep_page_t                    page;
    twostep::PendingSignin                     pending;
    std::shared_ptr<const twostep::UserStore>  users;
    std::string                                user;
    twostep::Method                            method;
    bool                                       attempt_open = false;

    ~ngx_http_twostep_duo_call_t();
};


// Runs when the request's pool is destroyed (r is still readable then).
// A passcode check whose client left before Duo answered never reaches
// ngx_http_twostep_duo_finish(): the attempt it reserved is released here,
// uncounted, since nobody saw the outcome; kept, five such posts would
// lock the account.
ngx_http_twostep_duo_call_t::~ngx_http_twostep_duo_call_t()
{
    if (!attempt_open) {
        return;
    }

    try {
        ngx_http_twostep_zone_state state(page.r);
        twostep::cancel_attempt(state, ngx_http_twostep_lockout(page.scf),
                                user, ngx_http_twostep_address(page.r),
                                ngx_time());

    } catch (...) {
        // bad_alloc making a key: the reservation expires with its record
    }
}


static void ngx_http_twostep_duo_done(ngx_http_request_t *r,
    ngx_http_twostep_fetch_t *fetch, long status, const std::string &body)
    noexcept;


static ngx_int_t
ngx_http_twostep_duo_unavailable(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method)
{
    twostep::MethodSet offered = ngx_http_twostep_offered(p, pending, user);

    twostep::CodePage page = ngx_http_twostep_code_form(p, pending, user,
                                                        method, offered);
    page.error = "error.service_down";

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_SERVICE_UNAVAILABLE,
               twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                    page));
}


static void
ngx_http_twostep_duo_log_failure(ngx_http_request_t *r, const char *call,
    twostep::ProviderFailure failure, const std::string &message)
{
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "twostep: verification service: %s failed: %s%s%s",
                  call, twostep::failure_name(failure),
                  message.empty() ? "" : ": ", message.c_str());
}


// Sends a signed request and parks the request until the answer.
static ngx_int_t
ngx_http_twostep_duo_send(ngx_http_twostep_page_t &p,
    ngx_http_twostep_duo_step_e step, const twostep::PendingSignin &pending,
    const twostep::User &user, twostep::Method method,
    const twostep::ProviderRequest &req)
{
    ngx_http_request_t  *r = p.r;

    auto call = ngx_http_twostep_pool_new<ngx_http_twostep_duo_call_t>(
                    r->pool);
    if (call == NULL) {
        if (step == NGX_HTTP_TWOSTEP_DUO_PASSCODE) {
            ngx_http_twostep_zone_state state(r);
            twostep::cancel_attempt(state, ngx_http_twostep_lockout(p.scf),
                                    user.name, ngx_http_twostep_address(r),
                                    ngx_time());
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->step = step;
    call->page = p;
    call->pending = pending;
    call->users = p.scf->store->users;
    call->user = user.name;
    call->method = method;
    // From here on, however the request ends, the attempt is released.
    call->attempt_open = step == NGX_HTTP_TWOSTEP_DUO_PASSCODE;

    ngx_http_twostep_fetch_req_t fetch;

    fetch.url = req.url;
    fetch.post = req.post;
    fetch.body = req.body;
    fetch.headers = req.headers;

    // auth_status long-polls: give it its own time on top.
    fetch.timeout_ms = p.scf->duo_timeout;
    if (step == NGX_HTTP_TWOSTEP_DUO_WAIT
        || step == NGX_HTTP_TWOSTEP_DUO_STATUS)
    {
        fetch.timeout_ms += 30000;
    }

    if (ngx_http_twostep_fetch(r, fetch, ngx_http_twostep_duo_done)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: could not start a request to the "
                      "verification service");
        return ngx_http_twostep_duo_unavailable(p, pending, user, method);
    }

    ngx_http_twostep_get_ctx(r)->duo_call = call;

    // A visitor who leaves ends the request, and with it the transfer.
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;
}


static ngx_int_t
ngx_http_twostep_duo_offer(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user)
{
    auto req = p.scf->provider->offer(user, ngx_time());

    return ngx_http_twostep_duo_send(p, NGX_HTTP_TWOSTEP_DUO_OFFER, pending,
                                     user, twostep::Method::push, req);
}


static ngx_int_t
ngx_http_twostep_duo_offered(ngx_http_twostep_duo_call_t &call,
    const twostep::User &user, long status, const std::string &body)
{
    ngx_http_twostep_page_t &p = call.page;

    auto res = p.scf->provider->read_offer(status, body);
    twostep::MethodSet local = ngx_http_twostep_local_methods(p, user);
    twostep::MethodSet offered = local;
    std::string notice;

    if (res.failure != twostep::ProviderFailure::none) {
        ngx_http_twostep_duo_log_failure(p.r, "preauth", res.failure,
                                         res.message);
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_PROVIDER_ERROR, user.name,
                               "", NGX_HTTP_TWOSTEP_ERROR);
        if (local == 0) {
            return ngx_http_twostep_send_message(p.r,
                       NGX_HTTP_SERVICE_UNAVAILABLE,
                       "msg.service_down.title",
                       "msg.service_down.text");
        }

        notice = "notice.provider_down";

    } else if (res.result == "deny") {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "denied by the verification service",
                             user.name);
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                   "msg.denied.title",
                   "msg.denied.provider");

    } else if (res.result == "auth") {
        offered |= res.methods & ngx_http_twostep_provider_methods(p);

        // Remembered, signed: a later post may only use what Duo confirmed
        // here (so a forged method cannot reach a bypassed or unenrolled
        // user's phone).
        twostep::PendingSignin pending = call.pending;
        pending.confirmed = res.methods & ngx_http_twostep_provider_methods(p);
        call.pending = pending;

        if (ngx_http_twostep_save_pending(p, pending) != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

    } else if (res.result == "enroll" && local == 0) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "not enrolled with the verification service",
                             user.name);
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                   "msg.not_set_up.title",
                   "msg.not_set_up.provider");
    }

    // "allow" (a bypass configured at Duo) is not honoured: the location
    // asked for a second step, so only a second step opens it.

    if (offered == 0) {
        return ngx_http_twostep_not_set_up(p, user);
    }

    twostep::Method method = ngx_http_twostep_pick_method(offered,
                                 twostep::field(p.query, "method"), user);

    twostep::CodePage page = ngx_http_twostep_code_form(p, call.pending,
                                                        user, method,
                                                        offered);
    page.notice = notice;

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
               twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                    page));
}


static ngx_int_t
ngx_http_twostep_duo_verify(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method)
{
    time_t  now = ngx_time();

    const twostep::OutOfBandProvider &provider = *p.scf->provider;
    bool send = twostep::field(p.form, "action") == "send";

    if (!twostep::has_method(pending.confirmed, method)) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "a method the provider did not offer",
                             user.name);
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                   "msg.method.title",
                   "msg.method.account");
    }

    // Push, call and text reach a phone: one at a time, only so many, and
    // only when the user presses the button (MFA fatigue, SMS pumping).
    bool typed = twostep::method_info(method).typed;
    bool reaches_phone = !typed || send;
    ngx_http_twostep_zone_state state(p.r);

    // This browser's own request still waiting: it gives way to the new
    // one ("Sign in another way" from the waiting page).
    if (reaches_phone && !pending.txid.empty()) {
        twostep::end_out_of_band(state, user.name, now);
    }
    twostep::OutOfBandRule rule;
    const char *error = nullptr;
    ngx_uint_t status = NGX_HTTP_TOO_MANY_REQUESTS;

    switch (reaches_phone
            ? twostep::start_out_of_band(state, rule, user.name, now)
            : twostep::Start::ok)
    {

    case twostep::Start::ok:
        break;

    case twostep::Start::busy:
        error = "error.request_waiting";
        break;

    case twostep::Start::too_many:
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "too many requests to the phone", user.name);
        error = "error.too_many_requests";
        break;

    default: /* twostep::Start::unavailable */
        error = "error.try_later";
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        break;
    }

    if (error) {
        twostep::CodePage page = ngx_http_twostep_code_form(p, pending, user,
            method, ngx_http_twostep_offered(p, pending, user));
        page.error = error;

        return ngx_http_twostep_send_page(p.r, status,
                   twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                        page));
    }

    if (typed) {
        if (send) {
            return ngx_http_twostep_duo_send(p, NGX_HTTP_TWOSTEP_DUO_SMS,
                       pending, user, method, provider.send_code(user, now));
        }

        // Texted codes are 6 to 8 digits; anything else is a wrong code
        // without asking.
        auto code = twostep::normalize_code(twostep::field(p.form, "code"),
                                            6);
        if (!code) {
            code = twostep::normalize_code(twostep::field(p.form, "code"),
                                           7);
        }

        if (!code) {
            code = twostep::normalize_code(twostep::field(p.form, "code"),
                                           8);
        }

        if (!code) {
            int64_t locked = twostep::record_failure(state,
                                 ngx_http_twostep_lockout(p.scf), user.name,
                                 ngx_http_twostep_address(p.r), now);
            if (locked > 0) {
                return ngx_http_twostep_locked(p.r, user.name, locked,
                                               "sms");
            }

            ngx_http_twostep_log(p.r, NGX_LOG_WARN, "wrong code", user.name);
            ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user.name,
                                   "sms", NGX_HTTP_TWOSTEP_FAILED);

            twostep::CodePage page = ngx_http_twostep_code_form(p, pending,
                user, method, ngx_http_twostep_offered(p, pending, user));
            page.sms_sent = true;
            page.error = "error.code_wrong";

            return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
                       twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                            page));
        }

        int64_t locked = twostep::begin_attempt(state,
                             ngx_http_twostep_lockout(p.scf), user.name,
                             ngx_http_twostep_address(p.r), now);
        if (locked > 0) {
            return ngx_http_twostep_locked(p.r, user.name, locked, "sms");
        }

        return ngx_http_twostep_duo_send(p, NGX_HTTP_TWOSTEP_DUO_PASSCODE,
                   pending, user, method,
                   provider.check_code(user, *code, now));
    }

    return ngx_http_twostep_duo_send(p, NGX_HTTP_TWOSTEP_DUO_AUTH, pending,
               user, method,
               provider.start(user, method, ngx_http_twostep_address(p.r),
                              now));
}


static std::string
ngx_http_twostep_wait_url(ngx_http_twostep_page_t &p)
{
    return ngx_http_twostep_paths(p.scf).wait + "?return_to="
           + twostep::url_encode(p.return_to) + "&methods="
           + twostep::url_encode(twostep::methods_to_list(p.methods));
}


static ngx_int_t
ngx_http_twostep_wait_page(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user)
{
    twostep::WaitPage page;

    page.paths = ngx_http_twostep_paths(p.scf);
    page.user = user.name;
    page.method = pending.txid_method;
    page.offered = ngx_http_twostep_offered(p, pending, user);
    page.return_to = p.return_to;
    page.methods = twostep::methods_to_list(p.methods);

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
               twostep::render_wait(ngx_http_twostep_page_ctx(p.r),
                                    page));
}


static ngx_int_t
ngx_http_twostep_duo_wait(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    bool json)
{
    if (p.scf->provider == NULL) {
        return ngx_http_twostep_nothing_waits(p, json);
    }

    if (!json && twostep::field(p.query, "check") != "1") {
        return ngx_http_twostep_wait_page(p, pending, user);
    }

    return ngx_http_twostep_duo_send(p,
               json ? NGX_HTTP_TWOSTEP_DUO_STATUS : NGX_HTTP_TWOSTEP_DUO_WAIT,
               pending, user, pending.txid_method,
               p.scf->provider->status(pending.txid, ngx_time()));
}


// The answer to a push or call: sign in, keep waiting, or say why not.
static ngx_int_t
ngx_http_twostep_duo_answered(ngx_http_twostep_duo_call_t &call,
    const twostep::User &user, const twostep::ProviderAnswer &res)
{
    ngx_http_twostep_page_t &p = call.page;
    twostep::PendingSignin pending = call.pending;
    time_t now = ngx_time();

    ngx_http_twostep_zone_state state(p.r);

    if (res.result == "waiting") {
        return ngx_http_twostep_wait_page(p, pending, user);
    }

    twostep::end_out_of_band(state, user.name, now);

    if (res.result == "allow") {
        // A transaction finishes one sign-in, whoever holds a copy of
        // this browser's pending token.
        switch (twostep::claim_transaction(state, pending.txid, now,
                                           pending.expires))
        {
        case twostep::Claim::fresh:
            return ngx_http_twostep_finish_signin(p, pending, user,
                                                  pending.txid_method);

        case twostep::Claim::replayed:
            return ngx_http_twostep_expired(p);

        default:
            return ngx_http_twostep_send_message(p.r,
                       NGX_HTTP_SERVICE_UNAVAILABLE,
                       "msg.unavailable.title",
                       "msg.unavailable.text");
        }
    }

    const char *error = "error.denied";

    if (res.status == "fraud") {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN, "sign-in reported as fraud",
                             user.name);
        error = "error.fraud";

    } else if (res.status == "timeout") {
        error = "error.timeout";

    } else {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN, "request denied on the phone",
                             user.name);
    }

    // The transaction is over: the next attempt starts a new one.
    twostep::Method method = pending.txid_method;
    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user.name, method,
                           NGX_HTTP_TWOSTEP_FAILED);
    pending.txid.clear();

    if (ngx_http_twostep_save_pending(p, pending) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    twostep::CodePage page = ngx_http_twostep_code_form(p, pending, user,
        method, ngx_http_twostep_offered(p, pending, user));
    page.error = error;

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
               twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                    page));
}


static ngx_int_t
ngx_http_twostep_duo_finish(ngx_http_twostep_duo_call_t &call, long status,
    const std::string &body)
{
    ngx_http_twostep_page_t &p = call.page;
    time_t now = ngx_time();

    const twostep::User *user = call.users->find(call.user);
    if (user == nullptr) {
        return NGX_HTTP_FORBIDDEN;
    }

    if (call.step == NGX_HTTP_TWOSTEP_DUO_OFFER) {
        return ngx_http_twostep_duo_offered(call, *user, status, body);
    }

    bool polled = call.step == NGX_HTTP_TWOSTEP_DUO_WAIT
                  || call.step == NGX_HTTP_TWOSTEP_DUO_STATUS;

    const twostep::OutOfBandProvider &provider = *p.scf->provider;

    auto res = polled ? provider.read_status(status, body)
        : call.step == NGX_HTTP_TWOSTEP_DUO_SMS
            ? provider.read_send_code(status, body)
        : call.step == NGX_HTTP_TWOSTEP_DUO_PASSCODE
            ? provider.read_check_code(status, body)
            : provider.read_start(status, body);

    if (call.step == NGX_HTTP_TWOSTEP_DUO_STATUS) {
        // The script only learns whether to move on; the page decides.
        bool waiting = res.failure == twostep::ProviderFailure::none
                       && res.result == "waiting";
        return ngx_http_twostep_send_json(p.r,
                   waiting ? "{\"state\":\"waiting\"}"
                           : "{\"state\":\"done\"}");
    }

    ngx_http_twostep_zone_state state(p.r);

    if (call.step == NGX_HTTP_TWOSTEP_DUO_PASSCODE) {
        call.attempt_open = false;

        bool passed = res.failure == twostep::ProviderFailure::none
                      && res.result == "allow";
        bool refused = res.failure == twostep::ProviderFailure::none
                       && !passed;
        int64_t locked = twostep::end_attempt(state,
                             ngx_http_twostep_lockout(p.scf), user->name,
                             ngx_http_twostep_address(p.r), refused, now);
        if (refused && locked > 0) {
            return ngx_http_twostep_locked(p.r, user->name, locked, "sms");
        }
    }

    if (res.failure != twostep::ProviderFailure::none) {
        ngx_http_twostep_duo_log_failure(p.r,
            polled ? "auth_status" : "auth", res.failure, res.message);
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_PROVIDER_ERROR, user->name,
                               call.method, NGX_HTTP_TWOSTEP_ERROR);

        if (call.step == NGX_HTTP_TWOSTEP_DUO_AUTH
            || call.step == NGX_HTTP_TWOSTEP_DUO_SMS || polled)
        {
            twostep::end_out_of_band(state, user->name, now);
        }

        return ngx_http_twostep_duo_unavailable(p, call.pending, *user,
                                                call.method);
    }

    switch (call.step) {

    case NGX_HTTP_TWOSTEP_DUO_AUTH:
        if (!res.txid.empty()) {
            twostep::PendingSignin pending = call.pending;
            pending.txid = res.txid;
            pending.txid_method = call.method;

            if (ngx_http_twostep_save_pending(p, pending) != NGX_OK) {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_twostep_redirect(p.r,
                                             ngx_http_twostep_wait_url(p));
        }

        {
            // Decided at once, without a transaction: a denied user, or a
            // bypass, which is not honoured either.
            twostep::ProviderAnswer denied = res;
            denied.result = "deny";
            call.pending.txid_method = call.method;
            return ngx_http_twostep_duo_answered(call, *user, denied);
        }

    case NGX_HTTP_TWOSTEP_DUO_WAIT:
        return ngx_http_twostep_duo_answered(call, *user, res);

    case NGX_HTTP_TWOSTEP_DUO_SMS:
        {
            twostep::end_out_of_band(state, user->name, now);

            twostep::CodePage page = ngx_http_twostep_code_form(p,
                call.pending, *user, call.method,
                ngx_http_twostep_offered(p, call.pending, *user));

            if (res.status != "sent") {
                page.error = "error.sms_failed";
                return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
                           twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                                page));
            }

            page.sms_sent = true;
            page.notice = "notice.sms_sent";
            return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
                       twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                            page));
        }

    default: /* NGX_HTTP_TWOSTEP_DUO_PASSCODE */
        if (res.result == "allow") {
            return ngx_http_twostep_finish_signin(p, call.pending, *user,
                                                  twostep::Method::sms);
        }

        {
            ngx_http_twostep_log(p.r, NGX_LOG_WARN, "wrong code", user->name);
            ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user->name,
                                   "sms", NGX_HTTP_TWOSTEP_FAILED);

            twostep::CodePage page = ngx_http_twostep_code_form(p,
                call.pending, *user, call.method,
                ngx_http_twostep_offered(p, call.pending, *user));
            page.sms_sent = true;
            page.error = "error.code_wrong";

            return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
                       twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                            page));
        }
    }
}


static void
ngx_http_twostep_duo_done(ngx_http_request_t *r,
    ngx_http_twostep_fetch_t *fetch, long status, const std::string &body)
    noexcept
{
    ngx_int_t  rc;

    r->read_event_handler = ngx_http_block_reading;

    auto ctx = static_cast<ngx_http_twostep_ctx_t *>(
                   ngx_http_get_module_ctx(r->main, ngx_http_twostep_module));

    if (ctx == NULL || ctx->duo_call == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    ngx_http_twostep_duo_call_t *call = ctx->duo_call;
    ctx->duo_call = NULL;

    try {
        rc = ngx_http_twostep_duo_finish(*call, status, body);

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: verification step failed: %s", e.what());
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } catch (...) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: verification step failed");
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    ngx_http_finalize_request(r, rc);
}


const ngx_http_twostep_factor_t  ngx_http_twostep_duo_factor = {
    "out-of-band",
    twostep::methods_of_kind(twostep::MethodKind::out_of_band),
    ngx_http_twostep_duo_offer,
    ngx_http_twostep_duo_verify,
    ngx_http_twostep_duo_wait
};
