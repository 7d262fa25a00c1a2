// A call to a provider: one request over the libcurl bridge
// (ngx_http_twostep_curl.cpp) and what its answer does to the page, for
// Duo (its sans-I/O client, src/core/duo.cpp) and the self-hosted
// providers alike (Twilio's texts and calls, ntfy's pushes):
// twostep::OutOfBandProvider makes each request and reads its answer, this
// file moves them. The flow that decides what to ask is
// ngx_http_twostep_oob.cpp: it calls ngx_http_twostep_call_provider() and
// gets a push's or call's answer back through its callback; nothing here
// calls the flow. Security info's preauth (ngx_http_twostep_duo_preauth()) is
// here too, answering ngx_http_twostep_selfservice.cpp the same way.
//
// Every call goes out through the event loop (ngx_http_twostep_curl.cpp);
// the request waits parked and is finished by the answer. Anything but a
// well-formed answer is "the service is unavailable", never access.

#include "ngx_http_twostep_provider_call.h"

#include "core/guard.h"
#include "core/phone.h"
#include "core/provider.h"


// A call to the provider (Duo, Twilio or ntfy) in flight, with what its
// answer needs to finish the page.
struct ngx_http_twostep_provider_call_t {
    ngx_http_twostep_call_step_e               step;
    ngx_http_twostep_page_t                    page;
    twostep::PendingSignin                     pending;
    std::shared_ptr<const twostep::UserStore>  users;
    std::string                                user;
    twostep::Method                            method;
    const twostep::OutOfBandProvider          *provider = nullptr;
    ngx_http_twostep_call_answered_pt          answered = nullptr;
    bool                                       attempt_open = false;

    ~ngx_http_twostep_provider_call_t();
};


// Runs when the request's pool is destroyed (r is still readable then).
// A passcode check whose client left before Duo answered never reaches
// ngx_http_twostep_call_finish(): the attempt it reserved is released here,
// uncounted, since nobody saw the outcome; kept, five such posts would
// lock the account.
ngx_http_twostep_provider_call_t::~ngx_http_twostep_provider_call_t()
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


static void ngx_http_twostep_call_done(ngx_http_request_t *r,
    ngx_http_twostep_fetch_t *fetch, long status, const std::string &body)
    noexcept;


static ngx_int_t
ngx_http_twostep_call_unavailable(ngx_http_twostep_page_t &p,
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
ngx_http_twostep_call_log_failure(ngx_http_request_t *r, const char *call,
    twostep::ProviderFailure failure, const std::string &message)
{
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "twostep: verification service: %s failed: %s%s%s",
                  call, twostep::failure_name(failure),
                  message.empty() ? "" : ": ", message.c_str());
}


ngx_int_t
ngx_http_twostep_call_provider(ngx_http_twostep_page_t &p,
    ngx_http_twostep_call_step_e step, const twostep::PendingSignin &pending,
    const twostep::User &user, twostep::Method method,
    const twostep::OutOfBandProvider &provider,
    const twostep::ProviderRequest &req,
    ngx_http_twostep_call_answered_pt answered)
{
    ngx_http_request_t  *r = p.r;

    auto call = ngx_http_twostep_pool_new<ngx_http_twostep_provider_call_t>(
                    r->pool);
    if (call == NULL) {
        if (step == NGX_HTTP_TWOSTEP_CALL_PASSCODE) {
            return ngx_http_twostep_release_attempt(r, p.scf, user.name);
        }

        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->step = step;
    call->page = p;
    call->pending = pending;
    call->users = p.scf->store->users;
    call->user = user.name;
    call->method = method;
    call->provider = &provider;
    call->answered = answered;
    // From here on, however the request ends, the attempt is released.
    call->attempt_open = step == NGX_HTTP_TWOSTEP_CALL_PASSCODE;

    ngx_http_twostep_fetch_req_t fetch;

    fetch.url = req.url;
    fetch.post = req.post;
    fetch.body = req.body;
    fetch.headers = req.headers;
    fetch.provider = &provider == p.scf->twilio
                         ? twostep::metrics::Provider::twilio
                     : &provider == p.scf->ntfy
                         ? twostep::metrics::Provider::ntfy
                         : twostep::metrics::Provider::duo;

    // auth_status long-polls: give it its own time on top.
    fetch.timeout_ms = p.scf->duo_timeout;
    if (step == NGX_HTTP_TWOSTEP_CALL_WAIT
        || step == NGX_HTTP_TWOSTEP_CALL_STATUS)
    {
        fetch.timeout_ms += 30000;
    }

    if (ngx_http_twostep_fetch(r, fetch, ngx_http_twostep_call_done)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: could not start a request to the "
                      "verification service");
        return ngx_http_twostep_call_unavailable(p, pending, user, method);
    }

    ngx_http_twostep_get_ctx(r)->provider_call = call;

    // A visitor who leaves ends the request, and with it the transfer.
    r->read_event_handler = ngx_http_test_reading;
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;
}


ngx_int_t
ngx_http_twostep_duo_offer(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user)
{
    auto req = p.scf->provider->offer(user, ngx_time());

    return ngx_http_twostep_call_provider(p, NGX_HTTP_TWOSTEP_CALL_OFFER,
                                          pending, user, twostep::Method::push,
                                          *p.scf->provider, req, nullptr);
}


static ngx_int_t
ngx_http_twostep_duo_offered(ngx_http_twostep_provider_call_t &call,
    const twostep::User &user, long status, const std::string &body)
{
    ngx_http_twostep_page_t &p = call.page;

    auto res = p.scf->provider->read_offer(status, body);
    twostep::MethodSet local = ngx_http_twostep_local_methods(p, user);
    twostep::MethodSet offered = local;
    std::string notice;

    if (res.failure != twostep::ProviderFailure::none) {
        ngx_http_twostep_call_log_failure(p.r, "preauth", res.failure,
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

    offered = ngx_http_twostep_usable(p, user, offered);

    if (offered == 0) {
        return ngx_http_twostep_not_set_up(p, user);
    }

    twostep::Method method = ngx_http_twostep_pick_method(offered,
                                 twostep::field(p.query, "method"), user);

    twostep::CodePage page = ngx_http_twostep_code_form(p, call.pending,
                                                        user, method,
                                                        offered);
    if (!notice.empty()) {
        page.notice = notice;
    }

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
               twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                    page));
}


static std::string
ngx_http_twostep_wait_url(ngx_http_twostep_page_t &p)
{
    return ngx_http_twostep_paths(p.scf).wait + "?return_to="
           + twostep::url_encode(p.return_to) + "&methods="
           + twostep::url_encode(twostep::methods_to_list(p.methods));
}


static ngx_int_t
ngx_http_twostep_call_finish(ngx_http_twostep_provider_call_t &call,
    long status, const std::string &body)
{
    ngx_http_twostep_page_t &p = call.page;
    time_t now = ngx_time();

    const twostep::User *user = call.users->find(call.user);
    if (user == nullptr) {
        return NGX_HTTP_FORBIDDEN;
    }

    if (call.step == NGX_HTTP_TWOSTEP_CALL_OFFER) {
        return ngx_http_twostep_duo_offered(call, *user, status, body);
    }

    bool polled = call.step == NGX_HTTP_TWOSTEP_CALL_WAIT
                  || call.step == NGX_HTTP_TWOSTEP_CALL_STATUS;

    const twostep::OutOfBandProvider &provider = *call.provider;

    auto res = polled ? provider.read_status(status, body)
        : call.step == NGX_HTTP_TWOSTEP_CALL_SMS
            ? provider.read_send_code(status, body)
        : call.step == NGX_HTTP_TWOSTEP_CALL_PASSCODE
            ? provider.read_check_code(status, body)
            : provider.read_start(status, body);

    if (call.step == NGX_HTTP_TWOSTEP_CALL_STATUS) {
        // The script only learns whether to move on; the page decides.
        bool waiting = res.failure == twostep::ProviderFailure::none
                       && res.result == "waiting";
        return ngx_http_twostep_send_json(p.r,
                   waiting ? "{\"state\":\"waiting\"}"
                           : "{\"state\":\"done\"}");
    }

    ngx_http_twostep_zone_state state(p.r);

    if (call.step == NGX_HTTP_TWOSTEP_CALL_PASSCODE) {
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
        ngx_http_twostep_call_log_failure(p.r,
            polled ? "auth_status" : "auth", res.failure, res.message);
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_PROVIDER_ERROR, user->name,
                               call.method, NGX_HTTP_TWOSTEP_ERROR);

        if (call.step == NGX_HTTP_TWOSTEP_CALL_AUTH
            || call.step == NGX_HTTP_TWOSTEP_CALL_SMS || polled)
        {
            ngx_http_twostep_end_out_of_band(p.r, user->name,
                polled ? std::string_view(call.pending.txid)
                       : std::string_view());
        }

        // A push or call that may have gone out all the same opens
        // nothing: its transaction is closed.
        if (provider.self_hosted() && !call.pending.txid.empty()) {
            ngx_http_twostep_close_approval(p.r, call.pending.txid,
                                            call.pending.expires);
        }

        return ngx_http_twostep_call_unavailable(p, call.pending, *user,
                                                call.method);
    }

    if ((call.step == NGX_HTTP_TWOSTEP_CALL_AUTH
         || call.step == NGX_HTTP_TWOSTEP_CALL_WAIT)
        && call.answered == nullptr)
    {
        ngx_log_error(NGX_LOG_ALERT, p.r->connection->log, 0,
                      "twostep: an answer to a push or call with nobody "
                      "to take it");
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    switch (call.step) {

    case NGX_HTTP_TWOSTEP_CALL_AUTH:
        if (!res.txid.empty()) {
            // Self-hosted: the portal's own transaction, already set.
            twostep::PendingSignin pending = call.pending;
            if (!provider.self_hosted()) {
                pending.txid = res.txid;
                pending.txid_method = call.method;
                ngx_http_twostep_bind_out_of_band(p.r, user->name,
                                                  res.txid);
            }

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
            return call.answered(p, call.pending, *user, denied);
        }

    case NGX_HTTP_TWOSTEP_CALL_WAIT:
        return call.answered(p, call.pending, *user, res);

    case NGX_HTTP_TWOSTEP_CALL_SMS:
        {
            ngx_http_twostep_end_out_of_band(p.r, user->name);

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

            if (provider.self_hosted()) {
                // The code's record travels in the pending sign-in.
                if (ngx_http_twostep_save_pending(p, call.pending) != NGX_OK) {
                    return NGX_HTTP_INTERNAL_SERVER_ERROR;
                }

                twostep::PageData args;
                args.text("phone", twostep::phone_hint(user->phone));
                page.notice = ngx_http_twostep_page_ctx(p.r).text(
                                  "notice.sms_sent_to", args);
            }

            return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
                       twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                            page));
        }

    default: /* NGX_HTTP_TWOSTEP_CALL_PASSCODE */
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
ngx_http_twostep_call_done(ngx_http_request_t *r,
    ngx_http_twostep_fetch_t *fetch, long status, const std::string &body)
    noexcept
{
    // NGX_DONE: a shared-state command took over and finalizes later.
    ngx_http_twostep_fetch_answered(r, &ngx_http_twostep_ctx_t::provider_call,
        "verification step", [&](ngx_http_twostep_provider_call_t &call) {
            return ngx_http_twostep_call_finish(call, status, body);
        });
}


// A preauth in flight for security info, with what its answer needs.
struct ngx_http_twostep_offer_call_t {
    ngx_http_twostep_page_t        page;
    std::string                    user;
    ngx_http_twostep_confirmed_pt  then;
};


static void ngx_http_twostep_offer_done(ngx_http_request_t *r,
    ngx_http_twostep_fetch_t *fetch, long status, const std::string &body)
    noexcept;


ngx_int_t
ngx_http_twostep_duo_preauth(ngx_http_twostep_page_t &p,
    const twostep::User &user, ngx_http_twostep_confirmed_pt then)
{
    const twostep::OutOfBandProvider *provider = p.scf->provider;

    if (!then) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (provider == NULL || provider->self_hosted()
        || (provider->methods() & p.scf->accepted) == 0)
    {
        return then(p, {});
    }

    auto call = ngx_http_twostep_pool_new<ngx_http_twostep_offer_call_t>(
                    p.r->pool);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->page = p;
    call->page.form.clear();
    call->user = user.name;
    call->then = std::move(then);

    twostep::ProviderRequest req = provider->offer(user, ngx_time());

    ngx_http_twostep_fetch_req_t fetch;
    fetch.url = req.url;
    fetch.post = req.post;
    fetch.body = req.body;
    fetch.headers = req.headers;
    fetch.provider = twostep::metrics::Provider::duo;
    fetch.timeout_ms = p.scf->duo_timeout;

    if (ngx_http_twostep_fetch(p.r, fetch, ngx_http_twostep_offer_done)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, p.r->connection->log, 0,
                      "twostep: could not start a request to the "
                      "verification service");
        ngx_http_twostep_confirmed_t none;
        none.failed = true;
        return call->then(p, none);
    }

    ngx_http_twostep_get_ctx(p.r)->offer_call = call;

    // A visitor who leaves ends the request, and with it the transfer.
    p.r->read_event_handler = ngx_http_test_reading;
    p.r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;
}


// Duo answered the preauth (status 0: no answer). Only "auth" confirms
// methods, and only those Duo lists for the user's devices; "allow" (a
// bypass), "deny" and "enroll" confirm none.
static ngx_int_t
ngx_http_twostep_offer_answered(ngx_http_twostep_offer_call_t &call,
    long status, const std::string &body)
{
    ngx_http_twostep_page_t &p = call.page;
    ngx_http_twostep_confirmed_t confirmed;

    twostep::ProviderOffer res = p.scf->provider->read_offer(status, body);

    if (res.failure != twostep::ProviderFailure::none) {
        ngx_log_error(NGX_LOG_ERR, p.r->connection->log, 0,
                      "twostep: verification service: preauth for security "
                      "info failed: %s%s%s",
                      twostep::failure_name(res.failure),
                      res.message.empty() ? "" : ": ", res.message.c_str());
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_PROVIDER_ERROR,
                               call.user, "", NGX_HTTP_TWOSTEP_ERROR);
        confirmed.failed = true;

    } else if (res.result == "auth") {
        confirmed.methods = res.methods & p.scf->provider->methods();
    }

    return call.then(p, confirmed);
}


static void
ngx_http_twostep_offer_done(ngx_http_request_t *r,
    ngx_http_twostep_fetch_t *fetch, long status, const std::string &body)
    noexcept
{
    ngx_http_twostep_fetch_answered(r, &ngx_http_twostep_ctx_t::offer_call,
        "security info", [&](ngx_http_twostep_offer_call_t &call) {
            return ngx_http_twostep_offer_answered(call, status, body);
        });
}
