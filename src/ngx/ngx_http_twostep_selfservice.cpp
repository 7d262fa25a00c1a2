// Security info: users set up and manage their own sign-in methods.
//
//   enroll          GET: "Set up your authenticator app" (QR code, key)
//                   POST: the first code from the app saves it
//   security-info   GET: the user's methods     POST: change one, or add,
//                                                     rename or remove a
//                                                     security key or passkey
//
// All of it needs twostep_enroll on. Writes go through StoreFile (locked,
// atomic) in the thread pool; every worker reloads the changed file.

#include "ngx_http_twostep_provider_call.h"

#include "core/base32.h"
#include "core/keyring.h"
#include "core/enroll.h"
#include "core/phone.h"
#include "core/return_to.h"
#include "core/store_file.h"
#include "core/totp.h"


// Security info's address. On its own pages p.return_to is where "Back to
// the application" goes: carried along ("/" needs no parameter), so the
// forms, their answers and a step-up keep it. `done` names what changed.
static std::string
ngx_http_twostep_manage_url(ngx_http_twostep_page_t &p,
    std::string_view done = {})
{
    std::string url = std::string(ngx_http_twostep_sv(p.scf->portal_uri))
                      + "security-info";
    char sep = '?';

    if (p.return_to != "/") {
        url += "?return_to=" + twostep::url_encode(p.return_to);
        sep = '&';
    }

    if (!done.empty()) {
        url += sep;
        url += "done=";
        url += done;
    }

    return url;
}


// The set-up page's way back when it replaces the app from security info:
// its return_to, which security info made, or security info itself.
static std::string
ngx_http_twostep_enroll_back(ngx_http_twostep_page_t &p,
    std::string_view done = {})
{
    std::string base = std::string(ngx_http_twostep_sv(p.scf->portal_uri))
                       + "security-info";
    std::string url = p.return_to.compare(0, base.size(), base) == 0
                      ? p.return_to : base;

    if (!done.empty()) {
        url += url.find('?') == std::string::npos ? "?done=" : "&done=";
        url += done;
    }

    return url;
}


// Where "Back to the application" goes: the return_to security info was
// opened with, else the page of this site the browser came from (its
// Referer), else the site's root; never the sign-in pages (OWASP ASVS
// 5.1.5: only paths of this origin, as safe_return_to() checks).
static std::string
ngx_http_twostep_app_url(ngx_http_twostep_page_t &p)
{
    std::string_view portal = ngx_http_twostep_sv(p.scf->portal_uri);
    std::string_view wanted = twostep::field(p.query, "return_to");

    if (twostep::safe_return_to(wanted)
        && wanted.compare(0, portal.size(), portal) != 0)
    {
        return std::string(wanted);
    }

    if (p.r->method != NGX_HTTP_POST && p.r->headers_in.referer != NULL) {
        std::string app = twostep::same_origin_target(
            ngx_http_twostep_sv(p.r->headers_in.referer->value),
            ngx_http_twostep_webauthn_party(p).origin, portal);

        if (!app.empty()) {
            return app;
        }
    }

    return "/";
}


// What this user can sign in with here now: their app, keys and recovery
// codes, text and call where Twilio can reach their phone, push where ntfy
// can, what Duo confirmed at preauth; and of those only what some location
// accepts. The page lists these, and a default must be one of them: the
// next sign-in offers only what preauth confirms, so a default Duo cannot
// serve would be no default.
static twostep::MethodSet
ngx_http_twostep_usable_methods(ngx_http_twostep_srv_conf_t *scf,
    const twostep::User &user, const ngx_http_twostep_confirmed_t &confirmed)
{
    twostep::MethodSet set = user.methods()
                             | ngx_http_twostep_self_hosted_methods(scf,
                                                                    user)
                             | confirmed.methods;

    return set & scf->accepted;
}


// The secret offered for enrollment follows from the pending sign-in, so
// the page and its confirmation agree without storing anything, and a new
// sign-in gets a new secret.
static twostep::TotpParams
ngx_http_twostep_enroll_params(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending)
{
    auto raw = twostep::base64url_decode(
                   p.scf->keys->mac("enroll|" + pending.nonce + "|"
                                    + pending.user));

    twostep::TotpParams params;
    params.secret = raw->substr(0, 20);  // 160 bits, RFC 4226 section 4

    return params;
}


static ngx_int_t
ngx_http_twostep_enroll_page(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    ngx_uint_t status, std::string_view error)
{
    twostep::TotpParams params = ngx_http_twostep_enroll_params(p, pending);

    // The issuer the app lists the account under: the site's name, or
    // its host name.
    twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
    std::string issuer = ctx.site_name;
    if (issuer.empty()) {
        issuer = p.r->headers_in.server.len
                 ? std::string(ngx_http_twostep_sv(p.r->headers_in.server))
                 : "nginx-twostep";
    }

    twostep::EnrollPage page;
    page.paths = ngx_http_twostep_paths(p.scf);
    page.enroll = std::string(ngx_http_twostep_sv(p.scf->portal_uri))
                  + "enroll";
    page.user = user.name;
    page.secret = twostep::base32_encode(params.secret);
    page.qr_svg = twostep::qr_svg(twostep::otpauth_uri(issuer, user.name,
                                                       params),
                                  ctx.text("enroll.qr_label"));
    page.return_to = p.return_to;
    page.methods = twostep::methods_to_list(p.methods);
    page.form_token = twostep::form_token(*p.scf->keys, pending);
    page.error = std::string(error);

    // Replacing the app: "Cancel" goes back, the old app keeps working.
    if (pending.via == twostep::FirstFactor::session) {
        page.cancel = ngx_http_twostep_enroll_back(p);
    }

    return ngx_http_twostep_send_page(p.r, status,
               twostep::render_enroll(ngx_http_twostep_page_ctx(p.r),
                                      page));
}


ngx_int_t
ngx_http_twostep_enroll(ngx_http_twostep_page_t &p)
{
    ngx_int_t  rc = NGX_OK;
    bool       post = (p.r->method == NGX_HTTP_POST);
    time_t     now = ngx_time();

    auto pending = post ? ngx_http_twostep_posted_pending(p)
                        : ngx_http_twostep_pending(p);

    if (!pending || pending->user.empty()) {
        return post ? ngx_http_twostep_expired(p)
                    : ngx_http_twostep_redirect(p.r,
                          ngx_http_twostep_portal_url(p.scf, "signin",
                                                      p.return_to,
                                                      p.methods));
    }

    const twostep::User *user = ngx_http_twostep_pending_user(p, *pending,
                                                              &rc);
    if (user == nullptr) {
        return rc;
    }

    if (!ngx_http_twostep_may_enroll(p, *pending, *user)) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN, "enrollment refused",
                             user->name);
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
                   "msg.enroll_off.title",
                   "msg.enroll_off.text");
    }

    if (!post) {
        return ngx_http_twostep_enroll_page(p, *pending, *user, NGX_HTTP_OK,
                                            "");
    }

    ngx_http_twostep_zone_state state(p.r);
    twostep::LockoutRule rule = ngx_http_twostep_lockout(p.scf);
    std::string_view address = ngx_http_twostep_address(p.r);

    int64_t locked = twostep::locked_for(state, rule, user->name, address,
                                         now);
    if (locked > 0) {
        return ngx_http_twostep_locked(p.r, user->name, locked, "totp");
    }

    if (twostep::code_not_digits(twostep::field(p.form, "code"))) {
        return ngx_http_twostep_enroll_page(p, *pending, *user,
                                            NGX_HTTP_BAD_REQUEST,
                                            "error.code_digits");
    }

    // Only a correct code from the app saves the secret: the user has it.
    twostep::TotpParams params = ngx_http_twostep_enroll_params(p, *pending);
    auto step = twostep::totp_verify(params, twostep::field(p.form, "code"),
                                     now);

    if (!step
        || twostep::claim_totp_step(state, user->name, *step, params.period,
                                    now) != twostep::Claim::fresh)
    {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN, "wrong code at set-up",
                             user->name);
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_ENROLL, user->name, "totp",
                               NGX_HTTP_TWOSTEP_FAILED);

        locked = twostep::record_failure(state, rule, user->name, address,
                                         now);
        if (locked > 0) {
            return ngx_http_twostep_locked(p.r, user->name, locked,
                                           "totp");
        }

        return ngx_http_twostep_enroll_page(p, *pending, *user,
                   NGX_HTTP_FORBIDDEN,
                   "That code didn't work. Check the code in the app and "
                   "try again.");
    }

    struct outcome {
        bool         saved = false;
        std::string  error;
    };

    auto result = std::make_shared<outcome>();
    std::string path = p.scf->store->path;
    std::string name = user->name;
    std::string secret = twostep::base32_encode(params.secret);
    bool first = pending->via != twostep::FirstFactor::session;

    ngx_http_twostep_page_t page = p;
    page.form.clear();
    twostep::PendingSignin signin = *pending;

    return ngx_http_twostep_offload(p.r, p.scf->thread_pool,
        [result, path, name, secret, first] {
            auto file = twostep::StoreFile::open(path, result->error);
            if (!file) {
                return;
            }

            // Checked again under the lock: another tab or the
            // administrator may have set one up meanwhile.
            auto current = file->user(name);
            if (!current || (first && current->methods() != 0)) {
                result->error = "the user changed meanwhile";
                return;
            }

            result->saved = file->set_totp(name, secret, result->error)
                            && file->commit(result->error);
        },
        [result, page, signin, name, first]() mutable -> ngx_int_t {
            if (!result->saved) {
                ngx_log_error(NGX_LOG_ERR, page.r->connection->log, 0,
                              "twostep: saving an authenticator app for "
                              "\"%s\" failed: %s", name.c_str(),
                              result->error.c_str());
                return ngx_http_twostep_send_message(page.r,
                           NGX_HTTP_SERVICE_UNAVAILABLE,
                           "msg.not_saved.title",
                           "msg.not_saved.text");
            }

            ngx_http_twostep_refresh_store(page.scf->store,
                                           page.r->connection->log);
            ngx_http_twostep_log(page.r, NGX_LOG_NOTICE,
                                 "authenticator app set up", name);
            ngx_http_twostep_audit(page.r, NGX_HTTP_TWOSTEP_ENROLL, name,
                                   "totp", NGX_HTTP_TWOSTEP_PASSED);

            const twostep::User *user = page.scf->store->users->find(name);
            if (user == nullptr) {
                return NGX_HTTP_FORBIDDEN;
            }

            // A new secret ends every session made with the old one; this
            // browser's is renewed (the step-up path of finish_signin).
            if (!first) {
                page.return_to = ngx_http_twostep_enroll_back(page, "totp");
            }

            return ngx_http_twostep_finish_signin(page, signin, *user,
                                                  twostep::Method::totp);
        });
}


static std::string
ngx_http_twostep_manage_token(ngx_http_twostep_page_t &p,
    const twostep::Session &session)
{
    return p.scf->keys->mac("manage|" + session.sid);
}


// A refused phone number: what was typed, kept in the field, and why.
struct ngx_http_twostep_phone_refusal_t {
    std::string  typed;
    std::string  error;
};


// What a security-info page shows besides the user's methods.
struct ngx_http_twostep_manage_view_t {
    ngx_uint_t                        status = NGX_HTTP_OK;
    std::string                       notice;
    std::string                       error;
    std::vector<std::string>          codes;          // new recovery codes
    ngx_http_twostep_phone_refusal_t  phone;
    std::string                       default_error;  // beside the choice
    bool                              kept_change = false;
};


static ngx_int_t ngx_http_twostep_kept_change(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::SecurityInfoPage &page);


// Why `method` cannot be the default, beside the choice: Duo did not
// answer (`unchecked`: push, call and text cannot be confirmed now), or it
// is not one this user has here.
static const char *
ngx_http_twostep_default_refusal(bool unchecked, twostep::Method method)
{
    return unchecked
           && twostep::method_info(method).kind
              == twostep::MethodKind::out_of_band
           ? "info.default.unchecked" : "info.error.default_unusable";
}


static ngx_int_t
ngx_http_twostep_manage_render(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    ngx_http_twostep_manage_view_t &view,
    const ngx_http_twostep_confirmed_t &confirmed)
{
    twostep::SecurityInfoPage page;

    page.paths = ngx_http_twostep_paths(p.scf);
    page.manage = ngx_http_twostep_manage_url(p);
    page.app = p.return_to;
    page.phone_typed = view.phone.typed;
    page.phone_error = view.phone.error;
    page.enroll = std::string(ngx_http_twostep_sv(p.scf->portal_uri))
                  + "enroll";
    page.user = user.name;
    page.totp = user.totp.has_value();
    page.phone_masked = user.phone.empty() ? ""
                                           : twostep::mask_phone(user.phone);
    // A phone is a way to sign in only once Twilio (or Duo) can reach it.
    page.available = ngx_http_twostep_usable_methods(p.scf, user, confirmed);
    page.phone_usable = p.scf->provider != NULL || p.scf->twilio != NULL;
    page.provider_unchecked = confirmed.failed;
    page.default_error = view.default_error;

    // Push through ntfy is set up here (ngx_http_twostep_pushsetup.cpp).
    if (p.scf->ntfy != NULL
        && twostep::has_method(p.scf->accepted, twostep::Method::push))
    {
        page.push_setup = std::string(ngx_http_twostep_sv(p.scf->portal_uri))
                          + "push-setup";
        page.push = !user.ntfy_topic.empty();
    }
    page.default_method = user.default_method;
    page.recovery_left = user.recovery.size();

    // "Download as a text file" works for this session, for as long as a
    // change would without a new second step, and is never offered again.
    if (!view.codes.empty()) {
        page.codes_token = twostep::recovery_codes_token(*p.scf->keys,
                               session.sid,
                               ngx_time() + NGX_HTTP_TWOSTEP_FRESH,
                               view.codes);
    }

    page.new_recovery_codes = std::move(view.codes);
    page.form_token = ngx_http_twostep_manage_token(p, session);
    page.devices = p.scf->remember > 0;
    page.notice = view.notice;
    page.error = view.error;

    for (const twostep::WebauthnKey &key : user.keys) {
        page.keys.push_back({key.credential.id, key.name, key.created});
    }

    // After page.available: a kept default is confirmed only if usable.
    if (view.kept_change
        && ngx_http_twostep_kept_change(p, session, user, page) != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    // Keys are offered where some location takes them (§5.4: the user
    // handle, and excludeCredentials so one authenticator is added once).
    twostep::webauthn::Expected party = ngx_http_twostep_webauthn_party(p);

    if (twostep::has_method(p.scf->accepted, twostep::Method::webauthn)
        && !party.rp_id.empty())
    {
        auto challenge = twostep::webauthn::issue_challenge(*p.scf->keys,
            twostep::webauthn::Ceremony::create, "manage|" + session.sid,
            ngx_time());

        twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
        std::string rp_name = ctx.site_name.empty() ? party.rp_id
                                                    : ctx.site_name;

        page.challenge = challenge.token;
        page.webauthn = twostep::webauthn::create_options(
            challenge.challenge, party.rp_id, rp_name,
            twostep::webauthn_user_handle(user.name), user.name,
            ngx_http_twostep_key_ids(user));
    }

    return ngx_http_twostep_send_page(p.r, view.status,
               twostep::render_security_info(ngx_http_twostep_page_ctx(p.r),
                                             page));
}


// What Duo confirms `user` has now (ngx_http_twostep_duo_preauth), then
// `then` with this session and user, looked up again after the wait: the
// store may have been reloaded, the session must still be this one.
typedef std::function<ngx_int_t(ngx_http_twostep_page_t &,
                                const twostep::Session &,
                                const twostep::User &,
                                const ngx_http_twostep_confirmed_t &)>
    ngx_http_twostep_manage_pt;

static ngx_int_t
ngx_http_twostep_with_confirmed(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    ngx_http_twostep_manage_pt then)
{
    std::string sid = session.sid;

    return ngx_http_twostep_duo_preauth(p, user,
        [sid, then](ngx_http_twostep_page_t &page,
                    const ngx_http_twostep_confirmed_t &confirmed)
            -> ngx_int_t
        {
            const twostep::Session *session =
                ngx_http_twostep_session(page.r);
            if (session == nullptr || session->sid != sid) {
                return NGX_HTTP_FORBIDDEN;
            }

            const twostep::User *user =
                page.scf->store->users->find(session->user);
            if (user == nullptr) {
                return NGX_HTTP_FORBIDDEN;
            }

            return then(page, *session, *user, confirmed);
        });
}


// Security info for this session: with Duo, once its preauth says which
// of push, call and text the user has now.
static ngx_int_t
ngx_http_twostep_manage_show(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    ngx_http_twostep_manage_view_t view)
{
    return ngx_http_twostep_with_confirmed(p, session, user,
        [view](ngx_http_twostep_page_t &page,
               const twostep::Session &session, const twostep::User &user,
               const ngx_http_twostep_confirmed_t &confirmed) mutable
        {
            return ngx_http_twostep_manage_render(page, session, user, view,
                                                  confirmed);
        });
}


static ngx_int_t
ngx_http_twostep_manage_page(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    ngx_uint_t status, std::string_view notice, std::string_view error,
    std::vector<std::string> codes = {},
    const ngx_http_twostep_phone_refusal_t &phone = {},
    bool kept_change = false)
{
    ngx_http_twostep_manage_view_t view;

    view.status = status;
    view.notice = std::string(notice);
    view.error = std::string(error);
    view.codes = std::move(codes);
    view.phone = phone;
    view.kept_change = kept_change;

    return ngx_http_twostep_manage_show(p, session, user, std::move(view));
}


static std::string_view
ngx_http_twostep_done_notice(std::string_view done)
{
    if (done == "totp") {
        return "info.done.totp";
    }

    if (done == "remove-totp") {
        return "info.done.remove_totp";
    }

    if (done == "phone") {
        return "info.done.phone";
    }

    if (done == "phone-removed") {
        return "info.done.phone_removed";
    }

    if (done == "push") {
        return "info.done.push";
    }

    if (done == "push-removed") {
        return "info.done.push_removed";
    }

    if (done == "default") {
        return "info.done.default";
    }

    if (done == "forget-devices") {
        return "info.done.devices";
    }

    if (done == "add-key") {
        return "info.done.key_added";
    }

    if (done == "rename-key") {
        return "info.done.key_renamed";
    }

    if (done == "remove-key") {
        return "info.done.key_removed";
    }

    return "";
}


// "Add a security key or passkey" (WebAuthn Level 2 §7.1): the
// registration must answer this session's challenge, once, for our RP ID
// and origin. NGX_OK and `key` set, or the page that says why not.
static ngx_int_t
ngx_http_twostep_new_key(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::WebauthnKey &key)
{
    namespace wa = twostep::webauthn;

    if (!twostep::has_method(p.scf->accepted, twostep::Method::webauthn)) {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_BAD_REQUEST,
                   "msg.bad_request.title", "msg.bad_request.change");
    }

    auto client_data = twostep::base64url_decode(
                           twostep::field(p.form, "client_data"));
    auto attestation = twostep::base64url_decode(
                           twostep::field(p.form, "attestation_object"));

    if (!client_data || !attestation || client_data->empty()
        || attestation->empty())
    {
        // No JavaScript, or nothing came from the authenticator.
        return ngx_http_twostep_manage_page(p, session, user,
                   NGX_HTTP_BAD_REQUEST, "", "info.error.key");
    }

    auto challenge = ngx_http_twostep_webauthn_claim(p, wa::Ceremony::create,
                                                     "manage|" + session.sid);
    if (!challenge) {
        return ngx_http_twostep_expired(p);
    }

    std::vector<std::string> transports;
    std::string_view list = twostep::field(p.form, "transports");

    while (!list.empty() && transports.size() < 8) {
        std::size_t comma = list.find(',');
        transports.emplace_back(list.substr(0, comma));
        list = comma == std::string_view::npos ? std::string_view()
                                               : list.substr(comma + 1);
    }

    wa::Expected expected = ngx_http_twostep_webauthn_party(p);
    expected.challenge = challenge->challenge;

    wa::Registration reg = wa::verify_registration(expected, *attestation,
                                                   *client_data, transports);

    if (reg.failure != wa::Failure::none) {
        ngx_log_error(NGX_LOG_WARN, p.r->connection->log, 0,
                      "twostep: security key not added (%s), user: \"%s\"",
                      wa::failure_name(reg.failure), user.name.c_str());
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SECURITY_INFO,
                               user.name, "add-key", NGX_HTTP_TWOSTEP_FAILED);
        return ngx_http_twostep_manage_page(p, session, user,
                   NGX_HTTP_BAD_REQUEST, "", "info.error.key");
    }

    if (user.key(reg.credential.id) != nullptr) {
        return ngx_http_twostep_manage_page(p, session, user,
                   NGX_HTTP_BAD_REQUEST, "", "info.error.key_registered");
    }

    key.credential = std::move(reg.credential);
    key.created = ngx_time();

    return NGX_OK;
}


// The changes a step-up keeps (adding a key is a new ceremony, asked for
// again): the field each posts besides the action.
static bool
ngx_http_twostep_keeps_change(std::string_view action)
{
    return action == "default" || action == "phone" || action == "recovery"
           || action == "totp" || action == "remove-totp"
           || action == "rename-key" || action == "remove-key";
}


// A change asked before the step-up, back on security info for the user
// to confirm (never applied here: a GET changes nothing). Only for the
// session's user and sign-in, after a second step passed since it was
// asked (OWASP ASVS 4.0.3 V3.7.1), and once: the cookie is cleared.
static ngx_int_t
ngx_http_twostep_kept_change(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::SecurityInfoPage &page)
{
    std::string_view token = ngx_http_twostep_find_cookie(p.r,
                                 NGX_HTTP_TWOSTEP_COOKIE_CHANGE);
    if (token.empty()) {
        return NGX_OK;
    }

    if (ngx_http_twostep_cookie_header(p.r, NGX_HTTP_TWOSTEP_COOKIE_CHANGE,
                                       {}, 0) != NGX_OK)
    {
        return NGX_ERROR;
    }

    auto change = twostep::decode_change(*p.scf->keys, token, ngx_time());

    if (!change || change->user != session.user
        || change->session_issued != session.issued
        || !ngx_http_twostep_fresh(&session)
        || session.auth_time < change->asked)
    {
        return NGX_OK;
    }

    twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
    twostep::PageData args;
    std::string key;
    const std::string &action = change->action;
    const twostep::WebauthnKey *stored = user.key(change->value);

    if (action == "default") {
        auto method = twostep::method_from_name(change->value);
        if (!method) {
            return NGX_OK;
        }

        // Offered again only if it works now (Duo's preauth said so for
        // push, call, text); else the choice says why not.
        if (!twostep::has_method(twostep::default_choices(page.available),
                                 *method))
        {
            page.default_error = ngx_http_twostep_default_refusal(
                                     page.provider_unchecked, *method);
            return NGX_OK;
        }

        key = "info.confirm.default";
        args.text("label",
                  ctx.text(twostep::method_info(*method).label_key));
        page.confirm_fields.emplace_back("method", change->value);

    } else if (action == "phone") {
        key = change->value.empty() ? "info.confirm.phone_remove"
                                    : "info.confirm.phone";
        args.text("phone", change->value);
        page.confirm_fields.emplace_back("phone", change->value);

    } else if (action == "recovery") {
        key = "info.confirm.recovery";

    } else if (action == "totp") {
        key = user.totp ? "info.confirm.totp_replace"
                        : "info.confirm.totp_add";

    } else if (action == "remove-totp") {
        key = "info.confirm.remove_totp";

    } else if ((action == "rename-key" || action == "remove-key")
               && stored != nullptr)
    {
        key = action == "rename-key" ? "info.confirm.rename_key"
                                     : "info.confirm.remove_key";
        args.text("key_name", stored->name);
        args.text("label", change->name);
        page.confirm_fields.emplace_back("key", change->value);
        if (action == "rename-key") {
            page.confirm_fields.emplace_back("name", change->name);
        }

    } else {
        return NGX_OK;
    }

    page.confirm_action = action;
    page.confirm_text = ctx.text(key, args);

    return NGX_OK;
}


// A change to save: the action and what it needs.
struct ngx_http_twostep_change_t {
    std::string           action;
    std::string           phone;     // E.164, or empty to remove
    twostep::Method       chosen = twostep::Method::totp;  // "default"
    std::string           key_id;
    std::string           key_name;
    twostep::WebauthnKey  new_key;
};


static ngx_int_t ngx_http_twostep_manage_save(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    ngx_http_twostep_change_t change);
static ngx_int_t ngx_http_twostep_set_default(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    std::optional<twostep::Method> method);


ngx_int_t
ngx_http_twostep_security_info(ngx_http_twostep_page_t &p)
{
    ngx_int_t  rc = NGX_OK;

    if (!p.scf->enroll) {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_NOT_FOUND,
                   "msg.not_found.title", "msg.not_found.text");
    }

    p.return_to = ngx_http_twostep_app_url(p);

    std::string manage = ngx_http_twostep_manage_url(p);
    const twostep::Session *session = ngx_http_twostep_session(p.r);

    // Anonymous visitors sign in first, and come back here.
    if (session == nullptr) {
        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "signin", manage,
                                               twostep::all_methods));
    }

    const twostep::User *user = p.scf->store->users->find(session->user);
    if (user == nullptr) {
        return NGX_HTTP_FORBIDDEN;
    }

    if (p.r->method != NGX_HTTP_POST) {
        return ngx_http_twostep_manage_page(p, *session, *user, NGX_HTTP_OK,
                   ngx_http_twostep_done_notice(
                       twostep::field(p.query, "done")), "", {}, {}, true);
    }

    std::string sid = session->sid;

    if (!ngx_http_twostep_same_origin(p.r)
        || !p.scf->keys->mac_ok("manage|" + sid,
                                twostep::field(p.form, "form_token")))
    {
        return ngx_http_twostep_expired(p);
    }

    std::string action(twostep::field(p.form, "action"));

    // Taking access away needs no fresh second step.
    if (action == "signout-everywhere") {
        return ngx_http_twostep_sign_out_everywhere(p, *session);
    }

    // The codes just made, as a file: only for the session that made
    // them and only shortly after (the store has their hashes only).
    if (action == "download-codes") {
        auto codes = twostep::read_recovery_codes_token(*p.scf->keys,
                         twostep::field(p.form, "codes"), sid, ngx_time());
        if (!codes) {
            return ngx_http_twostep_manage_page(p, *session, *user,
                       NGX_HTTP_BAD_REQUEST, "", "info.error.codes_gone");
        }

        twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
        twostep::PageData args;
        args.text("user", user->name);
        args.text("site", !ctx.site_name.empty() ? ctx.site_name
                          : p.r->headers_in.server.len
                          ? std::string(ngx_http_twostep_sv(
                                            p.r->headers_in.server))
                          : std::string("nginx-twostep"));

        return ngx_http_twostep_send_download(p.r, "recovery-codes.txt",
                   twostep::recovery_codes_file(
                       ctx.text("info.new_codes.file", args), *codes));
    }

    bool forget = action == "forget-devices" && p.scf->remember > 0;

    // Changing security info needs a fresh second step. What was asked is
    // kept for after it, to confirm then (twostep::PendingChange).
    if (!forget && !ngx_http_twostep_fresh(session)) {
        if (ngx_http_twostep_keeps_change(action)) {
            twostep::PendingChange change;
            change.user = user->name;
            change.session_issued = session->issued;
            change.asked = ngx_time();
            change.expires = change.asked + NGX_HTTP_TWOSTEP_PENDING_TTL;
            change.action = action;
            change.value = std::string(twostep::field(p.form,
                               action == "default" ? "method"
                               : action == "phone" ? "phone" : "key"));
            change.name = std::string(twostep::field(p.form, "name"));

            if (ngx_http_twostep_cookie_header(p.r,
                    NGX_HTTP_TWOSTEP_COOKIE_CHANGE,
                    twostep::encode_change(*p.scf->keys, change),
                    NGX_HTTP_TWOSTEP_PENDING_TTL)
                != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }
        }

        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "signin", manage,
                                               twostep::all_methods));
    }

    if (action == "totp") {
        twostep::PendingSignin pending;
        p.return_to = manage;
        p.methods = twostep::all_methods;

        rc = ngx_http_twostep_start_pending(p, pending, user->name,
                                            twostep::FirstFactor::session);
        if (rc != NGX_OK) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }

        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "enroll", manage,
                                               twostep::all_methods));
    }

    // The last way to sign in is not removed: the next sign-in would let
    // whoever has the password set up their own (first set-up).
    if (action == "remove-totp" && p.scf->provider == NULL
        && ngx_http_twostep_self_hosted_methods(p.scf, *user) == 0)
    {
        return ngx_http_twostep_manage_page(p, *session, *user,
                   NGX_HTTP_FORBIDDEN, "",
                   "info.error.only_totp");
    }

    // Security keys: a new one is verified here (§7.1), before the thread
    // saves it; a name is what the user typed, trimmed.
    bool key_action = action == "add-key" || action == "rename-key"
                      || action == "remove-key";
    std::string key_name;
    std::string key_id(twostep::field(p.form, "key"));
    twostep::WebauthnKey new_key;

    if (action == "add-key" || action == "rename-key") {
        std::string_view typed = twostep::field(p.form, "name");
        while (!typed.empty() && (typed.front() == ' '
                                  || typed.front() == '\t'))
        {
            typed.remove_prefix(1);
        }
        while (!typed.empty() && (typed.back() == ' '
                                  || typed.back() == '\t'))
        {
            typed.remove_suffix(1);
        }

        key_name = std::string(typed);

        if (!twostep::valid_key_name(key_name)) {
            return ngx_http_twostep_manage_page(p, *session, *user,
                       NGX_HTTP_BAD_REQUEST, "", "info.error.key_name");
        }
    }

    if (action == "add-key") {
        rc = ngx_http_twostep_new_key(p, *session, *user, new_key);

        // A refusal has sent its page, and sending returns NGX_OK too:
        // only a verified key goes on (else a second page, and a write).
        if (rc != NGX_OK || new_key.credential.id.empty()) {
            return rc;
        }

        new_key.name = key_name;
    }

    // Removing the last key of a user with nothing else to sign in with
    // would leave the account to whoever has the password (first set-up).
    if (action == "remove-key" && p.scf->provider == NULL
        && (user->methods() & ~twostep::method_bit(twostep::Method::recovery)
            & ~twostep::method_bit(twostep::Method::webauthn)) == 0
        && user->keys.size() == 1)
    {
        return ngx_http_twostep_manage_page(p, *session, *user,
                   NGX_HTTP_FORBIDDEN, "", "info.error.last_method");
    }

    std::string phone(twostep::field(p.form, "phone"));
    auto method = twostep::method_from_name(twostep::field(p.form, "method"));

    if (action == "default") {
        return ngx_http_twostep_set_default(p, *session, *user, method);
    }

    // What people type ("+1 (555) 000-1111", "0031 6 ...") is saved as
    // E.164; a refusal says why, beside the field, with the number kept.
    if (action == "phone" && !phone.empty()) {
        static const char *const problems[] = {
            "", "info.error.phone_letters", "info.error.phone_country",
            "info.error.phone_short", "info.error.phone_long",
            "info.error.phone"
        };

        twostep::PhoneProblem problem = twostep::phone_problem(phone);

        if (problem != twostep::PhoneProblem::none) {
            return ngx_http_twostep_manage_page(p, *session, *user,
                       NGX_HTTP_BAD_REQUEST, "", "", {},
                       {phone, problems[static_cast<int>(problem)]});
        }

        phone = *twostep::normalize_phone(phone);
    }

    if (action != "remove-totp" && action != "phone"
        && action != "recovery" && !forget && !key_action)
    {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_BAD_REQUEST,
                   "msg.bad_request.title", "msg.bad_request.change");
    }

    ngx_http_twostep_change_t change;
    change.action = action;
    change.phone = std::move(phone);
    change.key_id = std::move(key_id);
    change.key_name = std::move(key_name);
    change.new_key = std::move(new_key);

    return ngx_http_twostep_manage_save(p, *session, *user,
                                        std::move(change));
}
// Saves a change to the user's entry in the thread pool (StoreFile:
// locked, atomic), then shows what changed, or why nothing did.
static ngx_int_t
ngx_http_twostep_manage_save(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    ngx_http_twostep_change_t change)
{
    struct outcome {
        bool                      saved = false;
        bool                      refused = false;  // not I/O: the change
        std::string               error;
        std::vector<std::string>  codes;
    };

    auto result = std::make_shared<outcome>();
    std::string path = p.scf->store->path;
    std::string name = user.name;
    std::string sid = session.sid;
    std::string action = change.action;
    std::string phone = change.phone;
    twostep::Method chosen = change.chosen;
    std::string key_id = change.key_id;
    std::string key_name = change.key_name;
    twostep::WebauthnKey new_key = change.new_key;
    int64_t now = ngx_time();

    ngx_http_twostep_page_t page = p;
    page.form.clear();

    return ngx_http_twostep_offload(p.r, p.scf->thread_pool,
        [result, path, name, action, phone, chosen, now, key_id,
         key_name, new_key] {
            auto file = twostep::StoreFile::open(path, result->error);
            if (!file) {
                return;
            }

            bool ok;

            if (action == "add-key") {
                ok = file->add_key(name, new_key, result->error);

            } else if (action == "rename-key") {
                ok = file->rename_key(name, key_id, key_name, result->error);

            } else if (action == "remove-key") {
                ok = file->remove_key(name, key_id, result->error);

            } else if (action == "remove-totp") {
                ok = file->remove_totp(name, result->error);

            } else if (action == "phone") {
                ok = file->set_phone(name, phone, result->error);

            } else if (action == "default") {
                ok = file->set_default(name, chosen, result->error);

            } else if (action == "forget-devices") {
                ok = file->forget_devices(name, now, result->error);

            } else {
                result->codes = twostep::new_recovery_codes(10);
                std::vector<std::string> hashes;
                for (const std::string &code : result->codes) {
                    hashes.push_back(twostep::recovery_hash(code));
                }

                ok = file->set_recovery(name, hashes, result->error);
            }

            result->refused = !ok;
            result->saved = ok && file->commit(result->error);
        },
        [result, page, sid, name, action]() mutable -> ngx_int_t {
            ngx_http_twostep_refresh_store(page.scf->store,
                                           page.r->connection->log);

            const twostep::User *user = page.scf->store->users->find(name);
            const twostep::Session *session =
                ngx_http_twostep_session(page.r);

            if (user == nullptr || session == nullptr
                || session->sid != sid)
            {
                return NGX_HTTP_FORBIDDEN;
            }

            if (!result->saved) {
                ngx_log_error(NGX_LOG_WARN, page.r->connection->log, 0,
                              "twostep: security info change \"%s\" for "
                              "\"%s\" refused: %s", action.c_str(),
                              name.c_str(), result->error.c_str());
                ngx_http_twostep_audit(page.r, NGX_HTTP_TWOSTEP_SECURITY_INFO,
                                       name, action, NGX_HTTP_TWOSTEP_FAILED);
                // A refused change is the visitor's (400); a store that
                // cannot be opened or written is ours (503).
                return ngx_http_twostep_manage_page(page, *session, *user,
                           result->refused ? NGX_HTTP_BAD_REQUEST
                                           : NGX_HTTP_SERVICE_UNAVAILABLE,
                           "",
                           action == "phone" && result->refused
                           ? "info.error.phone"
                           : action == "add-key" && result->refused
                           ? "info.error.key"
                           : "info.error.not_saved");
            }

            ngx_log_error(NGX_LOG_NOTICE, page.r->connection->log, 0,
                          "twostep: security info changed (%s), "
                          "user: \"%s\"", action.c_str(), name.c_str());
            ngx_http_twostep_audit(page.r, NGX_HTTP_TWOSTEP_SECURITY_INFO, name,
                                   action, NGX_HTTP_TWOSTEP_PASSED);

            if (action == "recovery") {
                return ngx_http_twostep_manage_page(page, *session, *user,
                           NGX_HTTP_OK, "info.done.recovery", "",
                           std::move(result->codes));
            }

            std::string done = action == "phone" && user->phone.empty()
                               ? "phone-removed" : action;

            // This browser's device cookie opens nothing any more: drop it.
            if (action == "forget-devices"
                && ngx_http_twostep_cookie_header(page.r,
                       NGX_HTTP_TWOSTEP_COOKIE_DEVICE, {}, 0) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            if (action == "remove-totp" || action == "add-key"
                || action == "remove-key")
            {
                // Credentials changed: other sessions end, this one goes on.
                twostep::PendingSignin renew;
                renew.user = name;
                renew.via = twostep::FirstFactor::session;
                page.return_to = ngx_http_twostep_manage_url(page, done);

                return ngx_http_twostep_finish_signin(page, renew, *user,
                                                      session->method);
            }

            return ngx_http_twostep_redirect(page.r,
                       ngx_http_twostep_manage_url(page, done));
        });
}


// "Set default": only a method this user can sign in with here now; for
// push, call and text that is what Duo's preauth confirms (asked here, as
// the second-step page asks it). If Duo does not answer, none of them
// (fail closed). A refusal is a 400 with the reason beside the choice.
static ngx_int_t
ngx_http_twostep_set_default(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    std::optional<twostep::Method> method)
{
    ngx_http_twostep_manage_view_t view;
    view.status = NGX_HTTP_BAD_REQUEST;

    if (!method) {
        view.default_error = "info.error.choose_method";
        return ngx_http_twostep_manage_show(p, session, user,
                                            std::move(view));
    }

    twostep::Method chosen = *method;

    return ngx_http_twostep_with_confirmed(p, session, user,
        [chosen, view](ngx_http_twostep_page_t &page,
                       const twostep::Session &session,
                       const twostep::User &user,
                       const ngx_http_twostep_confirmed_t &confirmed)
            mutable -> ngx_int_t
        {
            // A default the next sign-in could not offer is no default.
            if (!twostep::has_method(twostep::default_choices(
                        ngx_http_twostep_usable_methods(page.scf, user,
                                                        confirmed)),
                                     chosen))
            {
                view.default_error = ngx_http_twostep_default_refusal(
                                         confirmed.failed, chosen);
                return ngx_http_twostep_manage_render(page, session, user,
                                                      view, confirmed);
            }

            ngx_http_twostep_change_t change;
            change.action = "default";
            change.chosen = chosen;

            return ngx_http_twostep_manage_save(page, session, user,
                                                std::move(change));
        });
}
