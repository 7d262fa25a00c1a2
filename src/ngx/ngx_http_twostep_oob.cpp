// The out-of-band factor: push, phone call and text message through any
// provider (twostep::OutOfBandProvider, src/core/provider.h): Duo's Auth
// API v2, or for a user with a phone or an ntfy topic the self-hosted ones,
// Twilio (text, call) and ntfy (push). With those the module makes the
// texted code itself (NIST SP 800-63B 5.1.3.2: random, 10 minutes, bound to
// this pending sign-in, used once) and learns a push's or call's answer
// from ngx_http_twostep_approval.cpp through the zone (twostep::Approval).
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
//
// This file is the flow: which method, the limits and pauses, the texted
// codes and transactions the module keeps itself, the waiting page and
// what an answer means. Sending a request to the provider and reading its
// answer is ngx_http_twostep_provider_call.cpp's
// (ngx_http_twostep_call_provider(), and the offer,
// ngx_http_twostep_duo_offer()); a push's or call's answer comes back to
// ngx_http_twostep_oob_answered().

#include "ngx_http_twostep_factor.h"
#include "ngx_http_twostep_provider_call.h"

#include <algorithm>

#include "core/approval.h"
#include "core/guard.h"
#include "core/oob.h"
#include "core/provider.h"


static ngx_int_t ngx_http_twostep_oob_reach(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, const twostep::OutOfBandProvider &provider);
static ngx_int_t ngx_http_twostep_phone_held(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, const char *key, int64_t seconds);
static ngx_int_t ngx_http_twostep_fraud_reported(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &answered, const twostep::User &user);

static ngx_int_t ngx_http_twostep_oob_answered(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &answered, const twostep::User &user,
    const twostep::ProviderAnswer &res);


// A request to the provider (ngx_http_twostep_provider_call.cpp) whose
// answer to a push or call comes back to this flow.
static ngx_int_t
ngx_http_twostep_oob_send(ngx_http_twostep_page_t &p,
    ngx_http_twostep_call_step_e step, const twostep::PendingSignin &pending,
    const twostep::User &user, twostep::Method method,
    const twostep::OutOfBandProvider &provider,
    const twostep::ProviderRequest &req)
{
    return ngx_http_twostep_call_provider(p, step, pending, user, method,
                                          provider, req,
                                          ngx_http_twostep_oob_answered);
}


// What a self-hosted provider's messages say, in the visitor's language,
// naming the site (twostep_site_name, else the public URL's host).
static twostep::PageData
ngx_http_twostep_oob_args(ngx_http_twostep_page_t &p,
    const twostep::PageContext &ctx, const twostep::User &user)
{
    twostep::PageData args;
    std::string_view site = ngx_http_twostep_sv(p.scf->public_url);

    site.remove_prefix(site.find("//") + 2);
    args.text("site_name", ctx.site_name.empty() ? std::string(site)
                                                 : ctx.site_name);
    args.text("user", user.name);
    args.text("address", std::string(ngx_http_twostep_address(p.r)));

    u_char    buf[sizeof("1970-01-01 00:00 UTC")];
    ngx_tm_t  tm;

    ngx_gmtime(ngx_time(), &tm);
    u_char *last = ngx_sprintf(buf, "%4d-%02d-%02d %02d:%02d UTC", tm.ngx_tm_year,
                       tm.ngx_tm_mon, tm.ngx_tm_mday, tm.ngx_tm_hour,
                       tm.ngx_tm_min);
    args.text("time", std::string(reinterpret_cast<char *>(buf),
                                  last - buf));
    return args;
}


// The link back to the portal a phone opens or Twilio posts to.
static std::string
ngx_http_twostep_public_link(ngx_http_twostep_page_t &p,
    std::string_view page, std::string_view capability)
{
    return std::string(ngx_http_twostep_sv(p.scf->public_url))
           + std::string(ngx_http_twostep_sv(p.scf->portal_uri))
           + std::string(page) + "?t=" + std::string(capability);
}


// A texted code's binding: this pending sign-in and its user, so that a
// code works nowhere else (another browser, another user).
static std::string
ngx_http_twostep_code_binding(const twostep::PendingSignin &pending,
    const twostep::User &user)
{
    return pending.nonce + "|" + user.name;
}


// A texted code that is wrong, expired or used already: counted (not an
// expired one) here and on every host, then the lock or the form again.
static ngx_int_t
ngx_http_twostep_self_hosted_wrong(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, twostep::OobCheck check)
{
    time_t now = ngx_time();
    ngx_http_twostep_zone_state state(p.r);

    ngx_http_twostep_log(p.r, NGX_LOG_WARN, "wrong code", user.name);
    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user.name, "sms",
                           NGX_HTTP_TWOSTEP_FAILED);

    bool expired = check == twostep::OobCheck::expired;
    const char *error = expired ? "error.code_expired" : "error.code_wrong";
    std::string_view address = ngx_http_twostep_address(p.r);

    // Counted like any wrong code (OWASP ASVS 2.2.1), here and with
    // twostep_redis on every host; an expired code is no guess.
    int64_t locked = expired ? 0
        : twostep::record_failure(state, ngx_http_twostep_lockout(p.scf),
                                  user.name, address, now);

    return ngx_http_twostep_shared_locked(p.r, p.scf, user.name, address,
                                          !expired,
        [p, pending, method, error, locked, expired](int64_t left) mutable {
            if (left < 0) {
                return ngx_http_twostep_unavailable(p.r);
            }

            ngx_int_t rc = NGX_OK;
            const twostep::User *u = ngx_http_twostep_pending_user(p,
                                                                   pending,
                                                                   &rc);
            if (u == nullptr) {
                return rc;
            }

            if (std::max(locked, left) > 0) {
                return ngx_http_twostep_locked(p.r, u->name,
                                               std::max(locked, left), "sms");
            }

            twostep::CodePage page = ngx_http_twostep_code_form(p, pending,
                *u, method, ngx_http_twostep_offered(p, pending, *u));
            page.sms_sent = !expired && !pending.code.empty();
            page.error = error;

            return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
                       twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                            page));
        });
}


// A texted code typed on our page: right once, within its 10 minutes.
static ngx_int_t
ngx_http_twostep_self_hosted_code(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method)
{
    time_t now = ngx_time();

    twostep::OobCheck check = pending.code.empty()
        ? twostep::OobCheck::malformed
        : twostep::check_oob_code(*p.scf->keys, pending.code,
                                  ngx_http_twostep_code_binding(pending,
                                                                user),
                                  twostep::field(p.form, "code"), now);

    if (check != twostep::OobCheck::ok) {
        return ngx_http_twostep_self_hosted_wrong(p, pending, user, method,
                                                  check);
    }

    // Single use, whoever holds a copy of the pending token.
    std::string_view record = pending.code;
    std::string id(record.substr(record.find('.') + 1));

    return ngx_http_twostep_claim_once(p.r, id, "text " + id,
               now + twostep::oob_code_lifetime,
        [p, pending, method](twostep::Claim claim) mutable {
            ngx_int_t rc = NGX_OK;
            const twostep::User *u = ngx_http_twostep_pending_user(p,
                                                                   pending,
                                                                   &rc);
            if (u == nullptr) {
                return rc;
            }

            if (claim == twostep::Claim::fresh) {
                return ngx_http_twostep_finish_signin(p, pending, *u,
                                                      method);
            }

            if (claim == twostep::Claim::replayed) {
                return ngx_http_twostep_self_hosted_wrong(p, pending, *u,
                           method, twostep::OobCheck::wrong);
            }

            return ngx_http_twostep_unavailable(p.r);
        });
}


// After a wait (Redis): the user as they are now, and the provider that
// serves them `method` now (nullptr: none any more).
static ngx_int_t
ngx_http_twostep_with_provider(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, twostep::Method method,
    const std::function<ngx_int_t(const twostep::User &,
                                  const twostep::OutOfBandProvider *)> &next)
{
    return ngx_http_twostep_with_user(p, pending,
        [&](const twostep::User &u) {
            return next(u, ngx_http_twostep_provider_for(p.scf, u, method));
        });
}


static ngx_int_t ngx_http_twostep_self_hosted_ring(
    ngx_http_twostep_page_t &p, const twostep::PendingSignin &pending,
    const twostep::User &user, twostep::Method method,
    const twostep::OutOfBandProvider &provider, const std::string &txid,
    time_t expires);


// Twilio or ntfy: a fresh code to text, or a transaction the approval
// page or the call's callback decides.
static ngx_int_t
ngx_http_twostep_self_hosted_send(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, const twostep::OutOfBandProvider &provider)
{
    time_t now = ngx_time();
    twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
    twostep::PageData args = ngx_http_twostep_oob_args(p, ctx, user);
    twostep::PendingSignin next = pending;
    twostep::OutOfBandMessage msg;

    next.code.clear();
    next.txid.clear();

    if (method == twostep::Method::sms) {
        twostep::OobCode code = twostep::issue_oob_code(*p.scf->keys,
            ngx_http_twostep_code_binding(pending, user), now);
        args.text("code", code.code);
        msg.text = ctx.text("phone.sms.body", args);
        OPENSSL_cleanse(code.code.data(), code.code.size());
        next.code = code.record;

        return ngx_http_twostep_oob_send(p, NGX_HTTP_TWOSTEP_CALL_SMS, next,
                   user, method, provider,
                   provider.send_code(user, msg, now));
    }

    // As long as the pending sign-in lasts, at most the zone's window.
    time_t expires = ngx_min(now + NGX_HTTP_TWOSTEP_OOB_TTL,
                             pending.expires);
    std::string txid = twostep::new_transaction_id();

    // Opened before anything goes out (with twostep_redis in Redis, where
    // the host the answer reaches decides it).
    return ngx_http_twostep_open_approval(p.r, txid, expires,
        [p, next, method, txid, expires](bool opened) mutable {
            return ngx_http_twostep_with_provider(p, next, method,
                [&](const twostep::User &u,
                    const twostep::OutOfBandProvider *provider)
                {
                    if (!opened || provider == nullptr) {
                        ngx_http_twostep_end_out_of_band(p.r, u.name);
                        return ngx_http_twostep_unavailable(p.r);
                    }

                    ngx_http_twostep_bind_out_of_band(p.r, u.name, txid);

                    return ngx_http_twostep_self_hosted_ring(p, next, u,
                               method, *provider, txid, expires);
                });
        });
}


// The push or call of an open transaction: its capability in the links.
static ngx_int_t
ngx_http_twostep_self_hosted_ring(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, const twostep::OutOfBandProvider &provider,
    const std::string &txid, time_t expires)
{
    twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
    twostep::PageData args = ngx_http_twostep_oob_args(p, ctx, user);
    twostep::PendingSignin next = pending;
    twostep::OutOfBandMessage msg;

    twostep::Capability cap;
    cap.txid = txid;
    cap.user = user.name;
    cap.method = method;
    cap.expires = expires;
    cap.address = std::string(ngx_http_twostep_address(p.r));
    std::string token = twostep::capability_token(*p.scf->keys, cap);

    if (method == twostep::Method::push) {
        msg.title = ctx.text("phone.push.title", args);
        msg.text = ctx.text("phone.push.message", args);
        msg.approve_label = ctx.text("phone.push.approve");
        msg.approve_url = ngx_http_twostep_public_link(p, "approve", token);
        msg.deny_label = ctx.text("phone.push.deny");
        msg.deny_url = ngx_http_twostep_public_link(p, "deny", token);

    } else {
        msg.text = ctx.text("phone.call.text", args);
        msg.prompt = ctx.text("phone.call.prompt", args);
        msg.language = ctx.text("phone.call.language");
        msg.callback_url = ngx_http_twostep_public_link(p, "call", token);
    }

    next.txid = txid;
    next.txid_method = method;

    return ngx_http_twostep_oob_send(p, NGX_HTTP_TWOSTEP_CALL_AUTH, next,
               user, method, provider,
               provider.start(user, method, ngx_http_twostep_address(p.r),
                              msg, ngx_time()));
}


static ngx_int_t
ngx_http_twostep_oob_verify(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method)
{
    time_t  now = ngx_time();

    const twostep::OutOfBandProvider *found =
        ngx_http_twostep_provider_for(p.scf, user, method);
    if (found == nullptr) {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                   "msg.method.title", "msg.method.account");
    }

    const twostep::OutOfBandProvider &provider = *found;

    if (!provider.self_hosted()
        && !twostep::has_method(pending.confirmed, method))
    {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "a method the provider did not offer",
                             user.name);
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                   "msg.method.title",
                   "msg.method.account");
    }

    // After a fraud report pushes and calls wait (twostep_fraud_pause):
    // this host's zone, then with twostep_redis every host's.
    bool rings = twostep::method_info(method).waits;

    if (!rings || p.scf->fraud_pause <= 0) {
        return ngx_http_twostep_oob_reach(p, pending, user, method,
                                          provider);
    }

    std::string key = twostep::pause_key(user.name, user.credential_tag);
    ngx_http_twostep_zone_state state(p.r);

    int64_t paused = twostep::out_of_band_paused_for(state, key, now);
    if (paused > 0) {
        return ngx_http_twostep_phone_held(p, pending, user, method,
                                           "error.paused", paused);
    }

    return ngx_http_twostep_shared_pause(p.r, key, 0,
        [p, pending, method, key](int64_t left) mutable {
            if (left < 0) {
                return ngx_http_twostep_unavailable(p.r);
            }

            return ngx_http_twostep_with_provider(p, pending, method,
                [&](const twostep::User &u,
                    const twostep::OutOfBandProvider *again)
                {
                    if (again == nullptr) {
                        return ngx_http_twostep_send_message(p.r,
                                   NGX_HTTP_FORBIDDEN, "msg.method.title",
                                   "msg.method.account");
                    }

                    if (left > 0) {
                        // Learnt from another host: kept here too, so
                        // this host's pages stop offering them.
                        time_t now = ngx_time();
                        ngx_http_twostep_zone_state here(p.r);
                        twostep::pause_out_of_band(here, key, now,
                                                   now + left);
                        return ngx_http_twostep_phone_held(p, pending, u,
                                   method, "error.paused", left);
                    }

                    return ngx_http_twostep_oob_reach(p, pending, u, method,
                                                      *again);
                });
        });
}


// Push, call or text refused for a while, the same way for others of
// them (too many requests, a fraud pause): the page says how long, in
// whole minutes, and leads with a method that is not refused.
static ngx_int_t
ngx_http_twostep_phone_held(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, const char *key, int64_t seconds)
{
    twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
    twostep::MethodSet offered = ngx_http_twostep_offered(p, pending, user);
    twostep::Method next = twostep::has_method(offered, method)
        ? method : ngx_http_twostep_pick_method(offered, "", user);

    twostep::CodePage page = ngx_http_twostep_code_form(p, pending, user,
                                                        next, offered);
    std::string text = twostep::minutes_text(ctx, key, seconds);

    // On another method's form it is news, not an error of that field.
    if (next == method) {
        page.error = text;
    } else {
        page.notice = text;
    }

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_TOO_MANY_REQUESTS,
               twostep::render_code(ctx, page));
}


static ngx_int_t ngx_http_twostep_oob_started(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, const twostep::OutOfBandProvider &provider,
    twostep::Start start, int64_t retry);


// Reaches the phone (or checks a texted code) once no pause holds.
static ngx_int_t
ngx_http_twostep_oob_reach(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, const twostep::OutOfBandProvider &provider)
{
    bool  send = twostep::field(p.form, "action") == "send";

    // Push, call and text reach a phone: one at a time, only so many, and
    // only when the user presses the button (MFA fatigue, SMS pumping),
    // here and with twostep_redis on every host.
    if (twostep::method_info(method).typed && !send) {
        return ngx_http_twostep_oob_started(p, pending, user, method,
                                            provider, twostep::Start::ok, 0);
    }

    // This browser's own request still waiting gives way to the new one
    // ("Sign in another way" from the waiting page); only if it still
    // holds the place: an old copy of the pending sign-in replaces no
    // other browser's request (OWASP ASVS 2.8.x).
    return ngx_http_twostep_start_out_of_band(p.r, user.name, pending.txid,
        [p, pending, method](twostep::Start start, int64_t retry) mutable {
            return ngx_http_twostep_with_provider(p, pending, method,
                [&](const twostep::User &u,
                    const twostep::OutOfBandProvider *again)
                {
                    if (again == nullptr) {
                        if (start == twostep::Start::ok) {
                            ngx_http_twostep_end_out_of_band(p.r, u.name);
                        }
                        return ngx_http_twostep_send_message(p.r,
                                   NGX_HTTP_FORBIDDEN, "msg.method.title",
                                   "msg.method.account");
                    }

                    return ngx_http_twostep_oob_started(p, pending, u,
                               method, *again, start, retry);
                });
        });
}


// The limits answered: the phone is reached, or the page says why not.
static ngx_int_t
ngx_http_twostep_oob_started(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, const twostep::OutOfBandProvider &provider,
    twostep::Start start, int64_t retry)
{
    time_t  now = ngx_time();
    bool    send = twostep::field(p.form, "action") == "send";
    bool    typed = twostep::method_info(method).typed;
    ngx_http_twostep_zone_state state(p.r);

    const char *error = nullptr;
    ngx_uint_t status = NGX_HTTP_TOO_MANY_REQUESTS;

    switch (start) {

    case twostep::Start::ok:
        break;

    case twostep::Start::busy:
        error = "error.request_waiting";
        break;

    case twostep::Start::too_many:
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "too many requests to the phone", user.name);
        return ngx_http_twostep_phone_held(p, pending, user, method,
                   "error.too_many_requests", retry);

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

    if (provider.self_hosted()) {
        if (typed && !send) {
            return ngx_http_twostep_self_hosted_code(p, pending, user,
                                                     method);
        }

        return ngx_http_twostep_self_hosted_send(p, pending, user, method,
                                                 provider);
    }

    if (typed) {
        if (send) {
            return ngx_http_twostep_oob_send(p, NGX_HTTP_TWOSTEP_CALL_SMS,
                       pending, user, method, provider,
                       provider.send_code(user, {}, now));
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

        return ngx_http_twostep_oob_send(p, NGX_HTTP_TWOSTEP_CALL_PASSCODE,
                   pending, user, method, provider,
                   provider.check_code(user, *code, now));
    }

    return ngx_http_twostep_oob_send(p, NGX_HTTP_TWOSTEP_CALL_AUTH, pending,
               user, method, provider,
               provider.start(user, method, ngx_http_twostep_address(p.r),
                              {}, now));
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
    page.call_pound = ngx_http_twostep_call_pound(p.scf, user);

    // "I've approved it" pressed before the answer arrived.
    if (twostep::field(p.query, "approved") == "1") {
        page.notice = "wait.not_yet";
    }

    // Number matching (push through ntfy): the approval page asks for it.
    const twostep::OutOfBandProvider *provider =
        ngx_http_twostep_provider_for(p.scf, user, pending.txid_method);
    if (pending.txid_method == twostep::Method::push && provider != nullptr
        && provider->self_hosted())
    {
        page.number = std::to_string(twostep::match_number(*p.scf->keys,
                                                           pending.txid));
    }

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
               twostep::render_wait(ngx_http_twostep_page_ctx(p.r),
                                    page));
}


static ngx_int_t ngx_http_twostep_self_hosted_read(
    ngx_http_twostep_page_t &p, const twostep::PendingSignin &pending,
    const twostep::User &user, bool json, twostep::Approval a);


// Twilio or ntfy: the zone (with twostep_redis, Redis) knows whether the
// approval page or the call's callback decided, on whichever host; nothing
// is asked of the provider.
static ngx_int_t
ngx_http_twostep_self_hosted_wait(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    bool json)
{
    return ngx_http_twostep_read_approval(p.r, pending.txid,
        [p, pending, json](std::optional<twostep::Approval> read) mutable {
            if (!read) {
                // Redis could not say: neither "waiting" nor an answer.
                return ngx_http_twostep_unavailable(p.r);
            }

            return ngx_http_twostep_with_user(p, pending,
                [&](const twostep::User &u) {
                    return ngx_http_twostep_self_hosted_read(p, pending, u,
                                                             json, *read);
                });
        });
}


// What the transaction says, for the script or the waiting page.
static ngx_int_t
ngx_http_twostep_self_hosted_read(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    bool json, twostep::Approval a)
{
    if (json) {
        return ngx_http_twostep_send_json(p.r,
                   a == twostep::Approval::waiting
                       ? "{\"state\":\"waiting\"}"
                       : "{\"state\":\"done\"}");
    }

    twostep::ProviderAnswer res;

    switch (a) {
    case twostep::Approval::waiting:
        res.result = "waiting";
        break;
    case twostep::Approval::approved:
        res.result = "allow";
        break;
    case twostep::Approval::missing:
        res.result = "deny";
        res.status = "timeout";
        break;
    default:
        res.result = "deny";
        res.status = twostep::approval_name(a);
        break;
    }

    return ngx_http_twostep_oob_answered(p, pending, user, res);
}


static ngx_int_t
ngx_http_twostep_oob_wait(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    bool json)
{
    const twostep::OutOfBandProvider *provider =
        ngx_http_twostep_provider_for(p.scf, user, pending.txid_method);

    if (provider == NULL) {
        return ngx_http_twostep_nothing_waits(p, json);
    }

    if (!json && twostep::field(p.query, "check") != "1") {
        return ngx_http_twostep_wait_page(p, pending, user);
    }

    if (provider->self_hosted()) {
        return ngx_http_twostep_self_hosted_wait(p, pending, user, json);
    }

    return ngx_http_twostep_oob_send(p,
               json ? NGX_HTTP_TWOSTEP_CALL_STATUS : NGX_HTTP_TWOSTEP_CALL_WAIT,
               pending, user, pending.txid_method, *provider,
               provider->status(pending.txid, ngx_time()));
}


// After a fraud report: the browser learns only that the sign-in was
// refused (whoever sits there may be the one reported). It may go on with
// what the phone does not answer (an app code, a key, a recovery code);
// with none of those, the pending sign-in ends.
static ngx_int_t
ngx_http_twostep_refused(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user)
{
    twostep::MethodSet offered = ngx_http_twostep_offered(p, pending, user);

    if (offered == 0) {
        if (ngx_http_twostep_cookie_header(p.r,
                NGX_HTTP_TWOSTEP_COOKIE_PENDING, {}, 0) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
                   twostep::render_message(ngx_http_twostep_page_ctx(p.r),
                       "msg.signin_refused.title", "msg.signin_refused.text",
                       ngx_http_twostep_paths(p.scf).signin,
                       "msg.signin_refused.link"));
    }

    if (ngx_http_twostep_save_pending(p, pending) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    twostep::CodePage page = ngx_http_twostep_code_form(p, pending, user,
        ngx_http_twostep_pick_method(offered, "", user), offered);
    page.error = "error.fraud";

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
               twostep::render_code(ngx_http_twostep_page_ctx(p.r), page));
}


// The phone reported this sign-in as fraud (Duo's "fraud", 0 on a call):
// pushes and calls for the user pause (twostep_fraud_pause), and this
// pending sign-in loses push, call and text for good.
static ngx_int_t
ngx_http_twostep_fraud_reported(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &answered, const twostep::User &user)
{
    const twostep::OutOfBandProvider *provider =
        ngx_http_twostep_provider_for(p.scf, user, answered.txid_method);

    twostep::PendingSignin pending = answered;
    pending.txid.clear();
    pending.methods &= ~twostep::methods_of_kind(
                           twostep::MethodKind::out_of_band);
    p.methods &= pending.methods;

    // Refused, with what is left of `keep` (the app code, keys, recovery
    // codes) offered for this sign-in.
    auto refuse = [p, pending](twostep::MethodSet keep) mutable {
        p.methods &= keep;
        return ngx_http_twostep_with_user(p, pending,
            [&](const twostep::User &u) {
                return ngx_http_twostep_refused(p, pending, u);
            });
    };
    auto refused = [refuse]() mutable {
        return refuse(twostep::all_methods);
    };

    // A self-hosted report was logged and counted where the phone's
    // answer arrived, and paused there unless Redis timed out after
    // keeping it: paused here too (a pause in force runs its course), so
    // a report in Redis always pauses.
    if (provider != nullptr && provider->self_hosted()) {
        return ngx_http_twostep_pause_phone(p.r, p.scf, user, refused);
    }

    ngx_http_twostep_log(p.r, NGX_LOG_WARN, "sign-in reported as fraud",
                         user.name);
    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_FRAUD, user.name,
                           answered.txid_method, NGX_HTTP_TWOSTEP_FAILED);

    // The pause could not be kept: this sign-in ends here, with no way in
    // from it (the refused page of a user with nothing else).
    auto ended = [refuse]() mutable {
        return refuse(0);
    };

    return ngx_http_twostep_pause_phone(p.r, p.scf, user, refused, ended);
}


// The answer to a push or call: sign in, keep waiting, or say why not.
static ngx_int_t
ngx_http_twostep_oob_answered(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &answered, const twostep::User &user,
    const twostep::ProviderAnswer &res)
{
    twostep::PendingSignin pending = answered;

    if (res.result == "waiting") {
        return ngx_http_twostep_wait_page(p, pending, user);
    }

    // Only this transaction's place: the pending cookie read may be an old
    // copy while another push waits.
    ngx_http_twostep_end_out_of_band(p.r, user.name, pending.txid);

    if (res.result == "allow") {
        // A transaction finishes one sign-in, whoever holds a copy of
        // this browser's pending token, on any host: the push may have
        // been started on another one.
        return ngx_http_twostep_claim_once(p.r, pending.txid, pending.txid,
                   pending.expires,
            [p, pending](twostep::Claim claim) mutable {
                if (claim == twostep::Claim::replayed) {
                    return ngx_http_twostep_expired(p);
                }
                if (claim != twostep::Claim::fresh) {
                    return ngx_http_twostep_unavailable(p.r);
                }

                return ngx_http_twostep_with_user(p, pending,
                    [&](const twostep::User &u) {
                        return ngx_http_twostep_finish_signin(p, pending, u,
                                   pending.txid_method);
                    });
            });
    }

    if (res.status == "fraud") {
        return ngx_http_twostep_fraud_reported(p, pending, user);
    }

    const char *error = "error.denied";

    if (res.status == "wrong_number") {
        error = "error.wrong_number";

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

    // Leads with a method that may still be used (the window of requests
    // may be spent now), saying what became of this one.
    twostep::MethodSet offered = ngx_http_twostep_offered(p, pending, user);
    twostep::Method next = twostep::has_method(offered, method)
        ? method : ngx_http_twostep_pick_method(offered, "", user);

    twostep::CodePage page = ngx_http_twostep_code_form(p, pending, user,
                                                        next, offered);
    if (next == method) {
        page.error = error;
    } else {
        page.notice = error;
    }

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
               twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                    page));
}


const ngx_http_twostep_factor_t  ngx_http_twostep_oob_factor = {
    "out-of-band",
    twostep::methods_of_kind(twostep::MethodKind::out_of_band),
    ngx_http_twostep_duo_offer,
    ngx_http_twostep_oob_verify,
    ngx_http_twostep_oob_wait
};
