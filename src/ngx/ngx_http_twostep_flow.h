// The flow kit (ngx_http_twostep_flow.cpp): what the portal, the factors
// and security info share. It calls none of them back.
#pragma once

#include "ngx_http_twostep.h"
#include "ngx_http_twostep_audit.h"

#include <optional>

#include "core/form.h"
#include "core/pages.h"
#include "core/webauthn.h"


// Changes need a second step this recent (step-up, OWASP ASVS 3.7.1).
#define NGX_HTTP_TWOSTEP_FRESH  300

// How long a self-hosted push or call waits for its answer.
#define NGX_HTTP_TWOSTEP_OOB_TTL  120


// What every portal page needs to know about the request.
struct ngx_http_twostep_page_t {
    ngx_http_request_t           *r;
    ngx_http_twostep_srv_conf_t  *scf;
    std::string                   page;      // "signin", "verify", ...
    twostep::Fields               query;
    twostep::Fields               form;
    std::string                   return_to;
    twostep::MethodSet            methods = twostep::all_methods;
};


twostep::PortalPaths ngx_http_twostep_paths(ngx_http_twostep_srv_conf_t *scf);
void ngx_http_twostep_log(ngx_http_request_t *r, ngx_uint_t level,
    const char *event, std::string_view user);
std::string_view ngx_http_twostep_address(ngx_http_request_t *r);
bool ngx_http_twostep_same_origin(ngx_http_request_t *r);

ngx_int_t ngx_http_twostep_redirect(ngx_http_request_t *r,
    std::string_view location);
// The password form (with "Sign in with a passkey" when
// twostep_passkey_signin is on), for this pending sign-in.
ngx_int_t ngx_http_twostep_signin_page(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, ngx_uint_t status,
    std::string_view username, std::string_view error);
ngx_int_t ngx_http_twostep_expired(ngx_http_twostep_page_t &p);
// 503 "sign-in is unavailable right now": the shared state (the zone, or
// Redis) could not record what this step needs; nothing is granted.
ngx_int_t ngx_http_twostep_unavailable(ngx_http_request_t *r);
// The check an attempt was reserved for (twostep::begin_attempt) never ran
// (the thread pool's queue full, no memory): no guess was made, so the
// attempt is released uncounted (NIST SP 800-63B 5.2.2: the limit counts
// failed guesses; kept, a busy server would lock its users out), and the
// user gets the 503 "try again" page.
ngx_int_t ngx_http_twostep_release_attempt(ngx_http_request_t *r,
    ngx_http_twostep_srv_conf_t *scf, std::string_view account);
// The token "Sign out" posts for `session` (OWASP ASVS 3.3.1: a sign-out
// another site cannot trigger).
std::string ngx_http_twostep_logout_token(ngx_http_twostep_srv_conf_t *scf,
    const twostep::Session &session);
// "Too many attempts, try again in N minutes", with "Sign out".
// `method`: the step refused, for the audit log and the metrics.
ngx_int_t ngx_http_twostep_locked(ngx_http_request_t *r,
    std::string_view user, int64_t seconds,
    std::string_view method = "password");
// Nothing this location accepts is set up: first set-up, or a page.
ngx_int_t ngx_http_twostep_not_set_up(ngx_http_twostep_page_t &p,
    const twostep::User &user);

std::optional<twostep::PendingSignin> ngx_http_twostep_pending(
    ngx_http_twostep_page_t &p);
std::optional<twostep::PendingSignin> ngx_http_twostep_posted_pending(
    ngx_http_twostep_page_t &p);
ngx_int_t ngx_http_twostep_start_pending(ngx_http_twostep_page_t &p,
    twostep::PendingSignin &pending, std::string_view user,
    twostep::FirstFactor via);
ngx_int_t ngx_http_twostep_save_pending(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending);
const twostep::User *ngx_http_twostep_pending_user(
    ngx_http_twostep_page_t &p, const twostep::PendingSignin &pending,
    ngx_int_t *rc);

// After a wait (Redis, a provider), with the user as the store has it now
// (it may have been reloaded meanwhile): next(user), or the page
// ngx_http_twostep_pending_user() answers when the account is gone.
ngx_int_t ngx_http_twostep_with_user(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending,
    const std::function<ngx_int_t(const twostep::User &)> &next);

twostep::MethodSet ngx_http_twostep_local_methods(ngx_http_twostep_page_t &p,
    const twostep::User &user);
twostep::MethodSet ngx_http_twostep_provider_methods(
    ngx_http_twostep_page_t &p);
twostep::MethodSet ngx_http_twostep_self_hosted_methods(
    ngx_http_twostep_srv_conf_t *scf, const twostep::User &user);
const twostep::OutOfBandProvider *ngx_http_twostep_provider_for(
    ngx_http_twostep_srv_conf_t *scf, const twostep::User &user,
    twostep::Method method);
// Push and call: the methods that ring the phone and wait for an answer.
twostep::MethodSet ngx_http_twostep_ringing_methods();
// Push, call and text that would be refused now, the same way for every
// one of them: the requests-per-window rule (all three) and a fraud pause
// on this host (push and call; twostep_fraud_pause).
twostep::MethodSet ngx_http_twostep_held_back(ngx_http_twostep_page_t &p,
    const twostep::User &user);
// `offered` without what is held back, unless nothing would be left.
twostep::MethodSet ngx_http_twostep_usable(ngx_http_twostep_page_t &p,
    const twostep::User &user, twostep::MethodSet offered);
// Whether the user's call asks for the pound key (Twilio) or any key (Duo).
bool ngx_http_twostep_call_pound(ngx_http_twostep_srv_conf_t *scf,
    const twostep::User &user);
// What a second-step page offers: the local methods, and those the
// provider confirmed for this sign-in, less what is held back.
twostep::MethodSet ngx_http_twostep_offered(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user);
twostep::Method ngx_http_twostep_pick_method(twostep::MethodSet offered,
    std::string_view wanted, const twostep::User &user);
twostep::CodePage ngx_http_twostep_code_form(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, twostep::MethodSet offered);

// Security keys and passkeys (WebAuthn Level 2): the relying party this
// request is for, and a fresh challenge for a ceremony bound to `binding`
// ("verify|" + pending nonce, "passkey|" + pending nonce, "manage|" + sid).
// The RP ID is twostep_webauthn_rp_id or the request's host name; the
// origin is exact: the request's scheme and Host (§7.1 step 9, §7.2 step
// 13). Empty rp_id: no Host, so no ceremony.
twostep::webauthn::Expected ngx_http_twostep_webauthn_party(
    ngx_http_twostep_page_t &p);
// The challenge the posted form carries (field "challenge"), if it is one
// we issued for this ceremony and binding, unexpired and not used before
// (claimed once in the zone, §13.4.3). nullopt: expired or replayed.
std::optional<twostep::webauthn::Challenge> ngx_http_twostep_webauthn_claim(
    ngx_http_twostep_page_t &p, twostep::webauthn::Ceremony ceremony,
    std::string_view binding);
// The user's credential ids (allowCredentials, excludeCredentials).
std::vector<std::string> ngx_http_twostep_key_ids(const twostep::User &user);

// The second step is passed: a new session, back to the URL. passed_at:
// when it was passed, if not now (a remembered device: when remembered).
// With pending.remember, this device is remembered (twostep_remember).
ngx_int_t ngx_http_twostep_finish_signin(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, int64_t passed_at = 0);

// Whether this sign-in may offer "Don't ask again on this device": the
// password was typed (not a step-up, not another module's identity) and
// the location accepts a remembered device.
bool ngx_http_twostep_may_remember(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending);
// The device cookie of this request, if it stands for `user`'s second step
// now (same credentials, not forgotten, within twostep_remember).
std::optional<twostep::RememberedDevice> ngx_http_twostep_remembered(
    ngx_http_twostep_page_t &p, const twostep::User &user);

// "Sign out everywhere": every session of the session's user ends, on
// every worker and every host sharing the state (twostep::
// revoke_user_sessions), this browser's cookies are cleared, and the
// signed-out page says so.
ngx_int_t ngx_http_twostep_sign_out_everywhere(ngx_http_twostep_page_t &p,
    const twostep::Session &session);

ngx_int_t ngx_http_twostep_nothing_waits(ngx_http_twostep_page_t &p,
    bool json);

// A request parked on an outbound call (ngx_http_twostep_fetch) gets its
// answer: `answer()` runs with what it throws caught (a log line naming
// `what`, then 500: fail closed), and the request is finalized with its
// result unless a further wait took it over (NGX_DONE). A template, so
// that nothing is allocated on the way from a noexcept callback.
template <typename Answer>
void
ngx_http_twostep_resume(ngx_http_request_t *r, const char *what,
    Answer &&answer) noexcept
{
    ngx_int_t  rc;

    try {
        rc = answer();

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: %s failed: %s", what, e.what());
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;

    } catch (...) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: %s failed", what);
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
}

// The answer to an outbound call whose state the request keeps in its
// context (`slot`: one of ngx_http_twostep_ctx_t's call pointers): taken
// out, so that a second answer finds none and fails closed (500), and
// given to `answered(call)` through ngx_http_twostep_resume(). What each
// fetch's done callback does.
template <typename Call, typename Answered>
void
ngx_http_twostep_fetch_answered(ngx_http_request_t *r,
    Call *ngx_http_twostep_ctx_t::*slot, const char *what,
    Answered &&answered) noexcept
{
    r->read_event_handler = ngx_http_block_reading;

    auto ctx = static_cast<ngx_http_twostep_ctx_t *>(
                   ngx_http_get_module_ctx(r->main, ngx_http_twostep_module));

    if (ctx == NULL || ctx->*slot == NULL) {
        ngx_http_finalize_request(r, NGX_HTTP_INTERNAL_SERVER_ERROR);
        return;
    }

    Call *call = ctx->*slot;
    ctx->*slot = NULL;

    ngx_http_twostep_resume(r, what, [&] { return answered(*call); });
}

// The phone reported fraud: pushes and calls for `user` pause for
// twostep_fraud_pause (twostep::pause_key(), so a new password or second
// step lifts it) on every worker and, with twostep_redis, on every host;
// then `then`, whose result finalizes the request. A pause that cannot be
// kept (the zone full, Redis not taking it) is logged, and `not_kept`
// answers instead when given: guard.h's callers fail closed, so a sign-in
// then ends with no way in from it.
ngx_int_t ngx_http_twostep_pause_phone(ngx_http_request_t *r,
    ngx_http_twostep_srv_conf_t *scf, const twostep::User &user,
    std::function<ngx_int_t()> then,
    std::function<ngx_int_t()> not_kept = nullptr);

// First set-up: who may enroll an authenticator app now (a fresh second
// step, or a password and no second step at all). enroll_offer answers
// NGX_DECLINED when the user may not set one up here.
bool ngx_http_twostep_fresh(const twostep::Session *session);
bool ngx_http_twostep_may_enroll(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user);
ngx_int_t ngx_http_twostep_enroll_offer(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user);

// ngx_http_twostep_approval.cpp: what the phone opens or Twilio posts,
// without a session or a pending sign-in (its capability token instead).
ngx_int_t ngx_http_twostep_approve(ngx_http_twostep_page_t &p);
ngx_int_t ngx_http_twostep_deny(ngx_http_twostep_page_t &p);
ngx_int_t ngx_http_twostep_call_answered(ngx_http_twostep_page_t &p);

// ngx_http_twostep_selfservice.cpp.
ngx_int_t ngx_http_twostep_enroll(ngx_http_twostep_page_t &p);
ngx_int_t ngx_http_twostep_security_info(ngx_http_twostep_page_t &p);

// ngx_http_twostep_pushsetup.cpp: "Set up push notifications" (ntfy).
ngx_int_t ngx_http_twostep_push_setup(ngx_http_twostep_page_t &p);
