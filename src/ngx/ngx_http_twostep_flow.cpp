// The flow kit: what every sign-in step shares. Pending-sign-in and form
// tokens, the Origin check, lockout pages, the page that offers the
// methods, and finishing a sign-in. Factors and the portal call it; it
// calls none of them (README, "How it is built").

#include "ngx_http_twostep_flow.h"

#include "core/guard.h"
#include "core/pages.h"


twostep::PortalPaths
ngx_http_twostep_paths(ngx_http_twostep_srv_conf_t *scf)
{
    std::string base(ngx_http_twostep_sv(scf->portal_uri));

    return { base + "signin", base + "verify", base + "logout",
             base + "wait", base + "status" };
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
void
ngx_http_twostep_log(ngx_http_request_t *r, ngx_uint_t level,
    const char *event, std::string_view user)
{
    if (user.empty()) {
        ngx_log_error(level, r->connection->log, 0, "twostep: %s", event);
        return;
    }

    std::string name = twostep::valid_user_name(user) ? std::string(user)
                                                       : "(unknown)";

    ngx_log_error(level, r->connection->log, 0, "twostep: %s, user: \"%s\"",
                  event, name.c_str());
}


std::string_view
ngx_http_twostep_address(ngx_http_request_t *r)
{
    return ngx_http_twostep_sv(r->connection->addr_text);
}


ngx_int_t
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
bool
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


ngx_int_t
ngx_http_twostep_unavailable(ngx_http_request_t *r)
{
    return ngx_http_twostep_send_message(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                                         "msg.unavailable.title",
                                         "msg.unavailable.text");
}


ngx_int_t
ngx_http_twostep_release_attempt(ngx_http_request_t *r,
    ngx_http_twostep_srv_conf_t *scf, std::string_view account)
{
    ngx_http_twostep_zone_state state(r);
    twostep::cancel_attempt(state, ngx_http_twostep_lockout(scf), account,
                            ngx_http_twostep_address(r), ngx_time());

    return ngx_http_twostep_unavailable(r);
}


ngx_int_t
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

    // A passkey must verify the user (UV): it stands for the password too.
    twostep::webauthn::Expected party = ngx_http_twostep_webauthn_party(p);

    if (p.scf->passkey_signin && !party.rp_id.empty()
        && twostep::has_method(p.methods, twostep::Method::webauthn))
    {
        auto challenge = twostep::webauthn::issue_challenge(*p.scf->keys,
            twostep::webauthn::Ceremony::get, "passkey|" + pending.nonce,
            ngx_time());

        page.passkey_url = std::string(ngx_http_twostep_sv(
                               p.scf->portal_uri)) + "passkey";
        page.challenge = challenge.token;
        page.webauthn = twostep::webauthn::get_options(challenge.challenge,
                                                       party.rp_id, {}, true);
    }

    return ngx_http_twostep_send_page(p.r, status,
               twostep::render_signin(ngx_http_twostep_page_ctx(p.r),
                                      page));
}


ngx_int_t
ngx_http_twostep_expired(ngx_http_twostep_page_t &p)
{
    ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                         "form without a valid token or from another origin",
                         "");

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
               twostep::render_message(ngx_http_twostep_page_ctx(p.r),
                   "msg.expired.title",
                   "msg.expired.text",
                   ngx_http_twostep_portal_url(p.scf, "signin", p.return_to,
                                               p.methods),
                   "msg.expired.link"));
}


std::string
ngx_http_twostep_logout_token(ngx_http_twostep_srv_conf_t *scf,
    const twostep::Session &session)
{
    return scf->keys->mac("logout|" + session.sid);
}


// Too many failures for this account or this address (OWASP ASVS 2.2.1).
ngx_int_t
ngx_http_twostep_locked(ngx_http_request_t *r, std::string_view user,
    int64_t seconds, std::string_view method)
{
    ngx_http_twostep_log(r, NGX_LOG_WARN, "locked out", user);
    ngx_http_twostep_audit(r, NGX_HTTP_TWOSTEP_LOCKOUT, user, method,
                           NGX_HTTP_TWOSTEP_LOCKED);

    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(
                   ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));
    const twostep::Session *session = ngx_http_twostep_session(r);
    twostep::PageContext ctx = ngx_http_twostep_page_ctx(r);

    return ngx_http_twostep_send_page(r, NGX_HTTP_TOO_MANY_REQUESTS,
               twostep::render_locked(ctx, ngx_http_twostep_paths(scf),
                   twostep::minutes_text(ctx, "msg.locked.text", seconds),
                   session ? ngx_http_twostep_logout_token(scf, *session)
                           : ""));
}


std::optional<twostep::PendingSignin>
ngx_http_twostep_pending(ngx_http_twostep_page_t &p)
{
    std::string_view token = ngx_http_twostep_find_cookie(p.r,
                                 NGX_HTTP_TWOSTEP_COOKIE_PENDING);

    if (token.empty()) {
        return std::nullopt;
    }

    return twostep::decode_pending(*p.scf->keys, token, ngx_time());
}


// The posted form is genuine: same origin, and its token matches the
// pending sign-in this browser holds.
std::optional<twostep::PendingSignin>
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


ngx_int_t
ngx_http_twostep_start_pending(ngx_http_twostep_page_t &p,
    twostep::PendingSignin &pending, std::string_view user,
    twostep::FirstFactor via)
{
    pending.nonce = twostep::random_token(16);
    pending.user = std::string(user);
    pending.via = via;
    pending.expires = ngx_time() + NGX_HTTP_TWOSTEP_PENDING_TTL;
    pending.txid.clear();
    pending.methods = p.methods;
    pending.confirmed = 0;

    return ngx_http_twostep_save_pending(p, pending);
}


ngx_int_t
ngx_http_twostep_save_pending(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending)
{
    return ngx_http_twostep_set_cookie(p.r, true,
               twostep::encode_pending(*p.scf->keys, pending));
}


// The user a pending sign-in names, if it still exists; otherwise a page
// saying so.
const twostep::User *
ngx_http_twostep_pending_user(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, ngx_int_t *rc)
{
    const twostep::User *user = (p.scf->store->users)->find(pending.user);

    if (user == nullptr) {
        *rc = ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                  "msg.denied.title",
                  "msg.denied.account_gone");
        return nullptr;
    }

    return user;
}


ngx_int_t
ngx_http_twostep_with_user(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending,
    const std::function<ngx_int_t(const twostep::User &)> &next)
{
    ngx_int_t  rc = NGX_OK;

    const twostep::User *user = ngx_http_twostep_pending_user(p, pending,
                                                              &rc);
    return user ? next(*user) : rc;
}


// The second steps the module checks itself (the authenticator app code).
twostep::MethodSet
ngx_http_twostep_local_methods(ngx_http_twostep_page_t &p,
    const twostep::User &user)
{
    return ((user.methods()
             & ~twostep::methods_of_kind(twostep::MethodKind::out_of_band))
            | ngx_http_twostep_self_hosted_methods(p.scf, user))
           & p.methods;
}


// Text and call through Twilio for a user with a phone, push through ntfy
// for one with a topic: the store says what they have, no provider is
// asked.
twostep::MethodSet
ngx_http_twostep_self_hosted_methods(ngx_http_twostep_srv_conf_t *scf,
    const twostep::User &user)
{
    twostep::MethodSet set = 0;

    if (scf->twilio && !user.phone.empty()) {
        set |= scf->twilio->methods();
    }

    if (scf->ntfy && !user.ntfy_topic.empty()) {
        set |= scf->ntfy->methods();
    }

    return set;
}


// Who reaches this user's phone for `method`: Twilio or ntfy when the
// user has what they need, else Duo (or nobody).
const twostep::OutOfBandProvider *
ngx_http_twostep_provider_for(ngx_http_twostep_srv_conf_t *scf,
    const twostep::User &user, twostep::Method method)
{
    for (const twostep::OutOfBandProvider *provider : {scf->twilio, scf->ntfy})
    {
        if (provider != NULL
            && twostep::has_method(provider->methods(), method)
            && twostep::has_method(
                   ngx_http_twostep_self_hosted_methods(scf, user), method))
        {
            return provider;
        }
    }

    return scf->provider;
}


// Twilio's call asks for the pound key (#); Duo's for any key: every page
// says what the call will.
bool
ngx_http_twostep_call_pound(ngx_http_twostep_srv_conf_t *scf,
    const twostep::User &user)
{
    const twostep::OutOfBandProvider *caller =
        ngx_http_twostep_provider_for(scf, user, twostep::Method::call);

    return caller != nullptr && caller->self_hosted();
}


// Those a provider checks (push, call, text), if one is configured.
twostep::MethodSet
ngx_http_twostep_provider_methods(ngx_http_twostep_page_t &p)
{
    if (p.scf->provider == NULL) {
        return 0;
    }

    return p.methods
           & twostep::methods_of_kind(twostep::MethodKind::out_of_band);
}


twostep::MethodSet
ngx_http_twostep_held_back(ngx_http_twostep_page_t &p,
    const twostep::User &user)
{
    time_t              now = ngx_time();
    twostep::MethodSet  held = 0;

    ngx_http_twostep_zone_state state(p.r);

    if (twostep::out_of_band_retry(state, twostep::OutOfBandRule(),
                                   user.name, now) > 0)
    {
        held |= twostep::methods_of_kind(twostep::MethodKind::out_of_band);
    }

    if (p.scf->fraud_pause > 0
        && twostep::out_of_band_paused_for(state,
               twostep::pause_key(user.name, user.credential_tag), now) > 0)
    {
        held |= ngx_http_twostep_ringing_methods();
    }

    return held;
}


twostep::MethodSet
ngx_http_twostep_ringing_methods()
{
    twostep::MethodSet set = 0;

    for (const twostep::MethodInfo &info : twostep::method_table) {
        if (info.kind == twostep::MethodKind::out_of_band && info.waits) {
            set |= twostep::method_bit(info.method);
        }
    }

    return set;
}


twostep::MethodSet
ngx_http_twostep_usable(ngx_http_twostep_page_t &p,
    const twostep::User &user, twostep::MethodSet offered)
{
    twostep::MethodSet usable = offered & ~ngx_http_twostep_held_back(p, user);

    // Nothing else left: the page keeps the method and says how long.
    return usable ? usable : offered;
}


twostep::MethodSet
ngx_http_twostep_offered(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user)
{
    return ngx_http_twostep_usable(p, user,
               ngx_http_twostep_local_methods(p, user)
               | (pending.confirmed & ngx_http_twostep_provider_methods(p)));
}


twostep::Method
ngx_http_twostep_pick_method(twostep::MethodSet offered,
    std::string_view wanted, const twostep::User &user)
{
    auto m = twostep::method_from_name(wanted);
    if (m && twostep::has_method(offered, *m)) {
        return *m;
    }

    // The user's default comes first; "Sign in another way" has the rest.
    if (user.default_method
        && twostep::has_method(offered, *user.default_method))
    {
        return *user.default_method;
    }

    for (const twostep::MethodInfo &each : twostep::method_table) {
        if (twostep::has_method(offered, each.method)) {
            return each.method;
        }
    }

    return twostep::Method::totp;
}


twostep::CodePage
ngx_http_twostep_code_form(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, twostep::MethodSet offered)
{
    twostep::CodePage page;

    page.paths = ngx_http_twostep_paths(p.scf);
    page.user = user.name;
    page.method = method;
    page.offered = offered;
    page.return_to = p.return_to;
    page.methods = twostep::methods_to_list(p.methods);
    page.form_token = twostep::form_token(*p.scf->keys, pending);

    // A step-up on its way back to security info is for a change: say why
    // the code is asked again (as work accounts do).
    std::string manage = std::string(ngx_http_twostep_sv(p.scf->portal_uri))
                         + "security-info";
    if (pending.via == twostep::FirstFactor::session
        && p.return_to.compare(0, manage.size(), manage) == 0)
    {
        page.notice = "notice.confirm_change";
    }

    if (ngx_http_twostep_may_remember(p, pending)) {
        page.remember_days = static_cast<int>(p.scf->remember / 86400);
    }

    page.call_pound = ngx_http_twostep_call_pound(p.scf, user);

    // A key answers a fresh challenge for this pending sign-in only; UV is
    // preferred, not required: the password came first (§5.8.6).
    if (method == twostep::Method::webauthn) {
        twostep::webauthn::Expected party =
            ngx_http_twostep_webauthn_party(p);
        auto challenge = twostep::webauthn::issue_challenge(*p.scf->keys,
            twostep::webauthn::Ceremony::get, "verify|" + pending.nonce,
            ngx_time());

        page.challenge = challenge.token;
        if (!party.rp_id.empty()) {
            page.webauthn = twostep::webauthn::get_options(
                challenge.challenge, party.rp_id,
                ngx_http_twostep_key_ids(user), false);
        }
    }

    return page;
}


twostep::webauthn::Expected
ngx_http_twostep_webauthn_party(ngx_http_twostep_page_t &p)
{
    twostep::webauthn::Expected party;

    if (p.r->headers_in.host == NULL) {
        return party;
    }

#if (NGX_HTTP_SSL)
    party.origin = p.r->connection->ssl ? "https://" : "http://";
#else
    party.origin = "http://";
#endif
    party.origin += ngx_http_twostep_sv(p.r->headers_in.host->value);

    // headers_in.server: the Host header without its port, lower case
    // as nginx validated it.
    party.rp_id = p.scf->webauthn_rp_id.len
                  ? std::string(ngx_http_twostep_sv(p.scf->webauthn_rp_id))
                  : std::string(ngx_http_twostep_sv(p.r->headers_in.server));

    return party;
}


std::optional<twostep::webauthn::Challenge>
ngx_http_twostep_webauthn_claim(ngx_http_twostep_page_t &p,
    twostep::webauthn::Ceremony ceremony, std::string_view binding)
{
    time_t  now = ngx_time();

    auto challenge = twostep::webauthn::open_challenge(*p.scf->keys,
                         ceremony, binding,
                         twostep::field(p.form, "challenge"), now);
    if (!challenge) {
        return std::nullopt;
    }

    ngx_http_twostep_zone_state state(p.r);

    if (twostep::claim_transaction(state, "webauthn " + challenge->challenge,
                                   now, challenge->expires)
        != twostep::Claim::fresh)
    {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "webauthn challenge used again", "");
        return std::nullopt;
    }

    return challenge;
}


std::vector<std::string>
ngx_http_twostep_key_ids(const twostep::User &user)
{
    std::vector<std::string> ids;

    for (const twostep::WebauthnKey &key : user.keys) {
        ids.push_back(key.credential.id);
    }

    return ids;
}


bool
ngx_http_twostep_may_remember(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending)
{
    return p.scf->remember > 0
           && pending.via == twostep::FirstFactor::password
           && twostep::has_method(p.methods, twostep::Method::remembered);
}


std::optional<twostep::RememberedDevice>
ngx_http_twostep_remembered(ngx_http_twostep_page_t &p,
    const twostep::User &user)
{
    if (p.scf->remember <= 0) {
        return std::nullopt;
    }

    std::string_view token = ngx_http_twostep_find_cookie(p.r,
                                 NGX_HTTP_TWOSTEP_COOKIE_DEVICE);
    if (token.empty()) {
        return std::nullopt;
    }

    time_t now = ngx_time();
    auto device = twostep::decode_device(*p.scf->keys, token, now);

    if (!device
        || !twostep::device_remembers(*device, user, p.scf->remember, now))
    {
        return std::nullopt;
    }

    return device;
}


// A remembered device passed no second step at this sign-in: never fresh.
bool
ngx_http_twostep_fresh(const twostep::Session *session)
{
    return session && session->method != twostep::Method::remembered
           && ngx_time() - session->auth_time <= NGX_HTTP_TWOSTEP_FRESH;
}


// Who may enroll now: a signed-in user whose second step is fresh (adding
// or replacing), or a user who passed the password and has no second step
// at all (first set-up). A password alone never replaces a second step.
bool
ngx_http_twostep_may_enroll(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user)
{
    if (!p.scf->enroll) {
        return false;
    }

    if (pending.via == twostep::FirstFactor::session) {
        const twostep::Session *session = ngx_http_twostep_session(p.r);
        return ngx_http_twostep_fresh(session) && session->user == user.name;
    }

    return user.methods() == 0 && p.scf->provider == NULL
           && ngx_http_twostep_self_hosted_methods(p.scf, user) == 0;
}


ngx_int_t
ngx_http_twostep_enroll_offer(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user)
{
    if (!ngx_http_twostep_may_enroll(p, pending, user)) {
        return NGX_DECLINED;
    }

    return ngx_http_twostep_redirect(p.r,
               ngx_http_twostep_portal_url(p.scf, "enroll", p.return_to,
                                           p.methods));
}


ngx_int_t
ngx_http_twostep_not_set_up(ngx_http_twostep_page_t &p,
    const twostep::User &user)
{
    // With self-service on, a first sign-in sets up the app instead.
    auto pending = ngx_http_twostep_pending(p);
    if (pending && pending->user == user.name) {
        ngx_int_t rc = ngx_http_twostep_enroll_offer(p, *pending, user);
        if (rc != NGX_DECLINED) {
            return rc;
        }
    }

    ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                         "no second step this location accepts", user.name);

    return ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
               "msg.not_set_up.title",
               "msg.not_set_up.text");
}


// The second step is passed: a new session, back to the URL.
ngx_int_t
ngx_http_twostep_finish_signin(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, int64_t passed_at)
{
    time_t  now = ngx_time();

    ngx_http_twostep_zone_state state(p.r);

    twostep::Session session;
    session.sid = twostep::random_token(16);
    session.user = user.name;
    session.method = method;
    session.auth_time = passed_at > 0 ? passed_at : now;
    session.expires = now + p.scf->session_ttl;
    session.credentials = user.credential_tag;
    session.via = pending.via;
    session.issued = now;

    // A step-up refreshes the second step, not the session's lifetime:
    // the absolute limit still counts from the password (NIST SP 800-63B
    // 4.2.3).
    if (pending.via == twostep::FirstFactor::session) {
        const twostep::Session *old = ngx_http_twostep_session(p.r);

        if (old == nullptr || old->user != user.name) {
            return ngx_http_twostep_expired(p);
        }

        session.expires = old->expires;
        session.via = old->via;
        session.issued = old->issued;

        // The cookie being replaced stops working too, on every host.
        ngx_http_twostep_revoke_session(p.r, *old);
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_REVOKED, old->user,
                               old->method, NGX_HTTP_TWOSTEP_PASSED);
    }

    twostep::record_success(state, ngx_http_twostep_lockout(p.scf),
                            user.name, ngx_http_twostep_address(p.r),
                            now);
    ngx_http_twostep_shared_success(p.scf, user.name,
                                    ngx_http_twostep_address(p.r));

    ngx_http_twostep_log(p.r, NGX_LOG_NOTICE, "signed in", user.name);
    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user.name, method,
                           NGX_HTTP_TWOSTEP_PASSED);

    // "Don't ask again": a device cookie bound to the credentials the
    // second step was just passed with.
    if (pending.remember && method != twostep::Method::remembered
        && ngx_http_twostep_may_remember(p, pending))
    {
        twostep::RememberedDevice device;
        device.user = user.name;
        device.credentials = user.credential_tag;
        device.issued = now;
        device.expires = now + p.scf->remember;

        if (ngx_http_twostep_cookie_header(p.r,
                NGX_HTTP_TWOSTEP_COOKIE_DEVICE,
                twostep::encode_device(*p.scf->keys, device),
                p.scf->remember) != NGX_OK)
        {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        ngx_http_twostep_log(p.r, NGX_LOG_NOTICE, "device remembered",
                             user.name);
    }

    // A new session id at every sign-in (OWASP ASVS 3.2.1).
    if (ngx_http_twostep_set_cookie(p.r, false,
            twostep::encode_session(*p.scf->keys, session)) != NGX_OK
        || ngx_http_twostep_cookie_header(p.r,
               NGX_HTTP_TWOSTEP_COOKIE_PENDING, {}, 0) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_redirect(p.r, p.return_to);
}


ngx_int_t
ngx_http_twostep_sign_out_everywhere(ngx_http_twostep_page_t &p,
    const twostep::Session &session)
{
    time_t  now = ngx_time();

    // No session of the user outlives the current lifetime from now.
    if (!ngx_http_twostep_revoke_user_sessions(p.r, session.user,
                                               now + p.scf->session_ttl))
    {
        ngx_log_error(NGX_LOG_ALERT, p.r->connection->log, 0,
                      "twostep: could not revoke the sessions of a user");
    }

    ngx_http_twostep_log(p.r, NGX_LOG_NOTICE, "signed out everywhere",
                         session.user);
    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNOUT, session.user,
                           "everywhere", NGX_HTTP_TWOSTEP_PASSED);

    if (ngx_http_twostep_cookie_header(p.r,
            NGX_HTTP_TWOSTEP_COOKIE_SESSION, {}, 0) != NGX_OK
        || ngx_http_twostep_cookie_header(p.r,
               NGX_HTTP_TWOSTEP_COOKIE_PENDING, {}, 0) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_OK,
               twostep::render_message(ngx_http_twostep_page_ctx(p.r),
                   "signed_out.title", "signed_out.everywhere",
                   ngx_http_twostep_paths(p.scf).signin,
                   "signed_out.link"));
}


// A fraud pause here and on every host (flow.h).
ngx_int_t
ngx_http_twostep_pause_phone(ngx_http_request_t *r,
    ngx_http_twostep_srv_conf_t *scf, const twostep::User &user,
    std::function<ngx_int_t()> then, std::function<ngx_int_t()> not_kept)
{
    time_t  now = ngx_time();

    if (scf->fraud_pause <= 0) {
        return then();
    }

    std::string key = twostep::pause_key(user.name, user.credential_tag);

    ngx_http_twostep_zone_state state(r);

    bool kept = twostep::pause_out_of_band(state, key, now,
                                           now + scf->fraud_pause);
    if (!kept) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "twostep: the zone could not keep a fraud pause");
    }

    // Told to Redis all the same: the other hosts pause even if this one
    // could not.
    return ngx_http_twostep_shared_pause(r, key, scf->fraud_pause,
        [r, then, not_kept, kept](int64_t left) {
            if (left < 0) {
                ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                              "twostep: a fraud pause holds on this host "
                              "only: redis did not take it");
            }

            // NIST SP 800-63B 5.1.3.1: without the pause the phone could
            // be made to ring again; fail closed (guard.h).
            if ((!kept || left < 0) && not_kept) {
                return not_kept();
            }

            return then();
        });
}


// The waiting page asked, but nothing waits (any more): its script stops,
// the page goes back to the methods.
ngx_int_t
ngx_http_twostep_nothing_waits(ngx_http_twostep_page_t &p, bool json)
{
    if (json) {
        return ngx_http_twostep_send_json(p.r, "{\"state\":\"done\"}");
    }

    return ngx_http_twostep_redirect(p.r,
               ngx_http_twostep_portal_url(p.scf, "verify", p.return_to,
                                           p.methods));
}
