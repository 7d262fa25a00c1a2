// Security keys and passkeys (WebAuthn Level 2): verify POST with
// method=webauthn checks an assertion as the second step, and
// passkey POST (twostep_passkey_signin on) signs in with a discoverable
// credential and user verification instead of the password and the second
// step. The checks are core/webauthn.cpp's; the signature is verified on
// the event loop (one public-key operation, like a TLS handshake's), the
// new sign count is saved in the thread pool under the store's lock.

#include "ngx_http_twostep_factor.h"

#include "core/store_file.h"


namespace {

// The base64url fields of a posted assertion, decoded; nullopt when one is
// missing, not base64url or over its limit (a 400: nothing was asserted).
struct posted_assertion {
    std::string  id;                  // base64url, as stored
    std::string  client_data;
    std::string  authenticator_data;
    std::string  signature;
    std::string  user_handle;         // base64url; may be empty
};

}  // namespace


static std::optional<posted_assertion>
ngx_http_twostep_posted_assertion(ngx_http_twostep_page_t &p)
{
    namespace wa = twostep::webauthn;

    posted_assertion a;

    auto decode = [&p](const char *name, std::size_t limit,
                       std::string &out)
    {
        std::string_view text = twostep::field(p.form, name);
        auto raw = twostep::base64url_decode(text);
        if (text.empty() || !raw || raw->size() > limit) {
            return false;
        }
        out = std::move(*raw);
        return true;
    };

    std::string raw_id;

    if (!decode("credential_id", wa::max_credential_id_bytes, raw_id)
        || !decode("client_data", wa::max_client_data_bytes, a.client_data)
        || !decode("authenticator_data", wa::max_auth_data_bytes,
                   a.authenticator_data)
        || !decode("signature", wa::max_signature_bytes, a.signature))
    {
        return std::nullopt;
    }

    // The id as the store keeps it: canonical base64url of its bytes.
    a.id = twostep::base64url_encode(raw_id);
    a.user_handle = std::string(twostep::field(p.form, "user_handle"));

    return a;
}


// After a verified assertion: the new sign count is saved, or refused if
// another sign-in stored a count as high meanwhile (a clone racing the
// original). `finish` answers with what the file said.
static ngx_int_t
ngx_http_twostep_save_sign_count(ngx_http_twostep_page_t &p,
    const std::string &user, const std::string &id, std::uint32_t count,
    std::function<ngx_int_t(ngx_http_twostep_page_t &,
                            twostep::CounterUpdate)> finish)
{
    struct outcome {
        twostep::CounterUpdate  update = twostep::CounterUpdate::no_key;
        std::string             error;
    };

    auto result = std::make_shared<outcome>();
    std::string path = p.scf->store->path;

    ngx_http_twostep_page_t page = p;
    page.form.clear();

    return ngx_http_twostep_offload(p.r, p.scf->thread_pool,
        [result, path, user, id, count] {
            auto file = twostep::StoreFile::open(path, result->error);
            if (!file) {
                return;
            }

            result->update = file->set_sign_count(user, id, count,
                                                   result->error);
            if (result->update == twostep::CounterUpdate::saved
                && !file->commit(result->error))
            {
                result->update = twostep::CounterUpdate::no_key;
            }
        },
        [result, page, finish]() mutable -> ngx_int_t {
            ngx_http_twostep_refresh_store(page.scf->store,
                                           page.r->connection->log);

            if (result->update == twostep::CounterUpdate::no_key) {
                ngx_log_error(NGX_LOG_ERR, page.r->connection->log, 0,
                              "twostep: saving a security key's sign count "
                              "failed: %s", result->error.c_str());
            }

            return finish(page, result->update);
        });
}


static void
ngx_http_twostep_log_cloned(ngx_http_request_t *r, std::string_view user,
    std::string_view id)
{
    // §6.1.1: a counter that did not move forward is a sign that the
    // credential was copied; the sign-in is refused and the key named.
    ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                  "twostep: security key \"%*s\" of user \"%*s\" sent a "
                  "sign count that did not increase: possibly a cloned "
                  "key, sign-in refused",
                  id.size(), id.data(), user.size(), user.data());
}


// §7.2 steps 10-21 against this request's RP ID and origin; a refusal is
// logged with its reason (a stale counter as an error: possibly cloned).
static twostep::webauthn::Assertion
ngx_http_twostep_check_assertion(ngx_http_twostep_page_t &p,
    const twostep::webauthn::Challenge &challenge,
    const posted_assertion &posted, const std::string &user,
    const twostep::webauthn::Credential &credential, bool require_uv)
{
    namespace wa = twostep::webauthn;

    wa::Expected expected = ngx_http_twostep_webauthn_party(p);
    expected.challenge = challenge.challenge;
    expected.user_verification = require_uv;

    wa::Assertion as = wa::verify_assertion(expected, credential,
                           posted.authenticator_data, posted.client_data,
                           posted.signature);

    if (as.failure == wa::Failure::sign_count) {
        ngx_http_twostep_log_cloned(p.r, user, posted.id);

    } else if (as.failure != wa::Failure::none) {
        ngx_log_error(NGX_LOG_WARN, p.r->connection->log, 0,
                      "twostep: %s refused (%s), user: \"%s\"",
                      require_uv ? "passkey" : "security key",
                      wa::failure_name(as.failure), user.c_str());
    }

    return as;
}


static ngx_int_t
ngx_http_twostep_key_refused(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    const char *error)
{
    ngx_http_twostep_zone_state state(p.r);

    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user.name,
                           "webauthn", NGX_HTTP_TWOSTEP_FAILED);

    int64_t locked = twostep::record_failure(state,
                         ngx_http_twostep_lockout(p.scf), user.name,
                         ngx_http_twostep_address(p.r), ngx_time());
    if (locked > 0) {
        return ngx_http_twostep_locked(p.r, user.name, locked, "webauthn");
    }

    twostep::CodePage page = ngx_http_twostep_code_form(p, pending, user,
        twostep::Method::webauthn, ngx_http_twostep_offered(p, pending, user));
    page.error = error;

    return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
               twostep::render_code(ngx_http_twostep_page_ctx(p.r), page));
}


// verify POST with method=webauthn (§7.2): the assertion must answer the
// challenge of this pending sign-in with one of the user's keys.
static ngx_int_t
ngx_http_twostep_webauthn_verify(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method)
{
    namespace wa = twostep::webauthn;

    auto posted = ngx_http_twostep_posted_assertion(p);

    if (!posted) {
        // No JavaScript, or a broken post: nothing was asserted.
        twostep::CodePage page = ngx_http_twostep_code_form(p, pending, user,
            twostep::Method::webauthn,
            ngx_http_twostep_offered(p, pending, user));
        page.error = "key.unsupported";

        return ngx_http_twostep_send_page(p.r, NGX_HTTP_BAD_REQUEST,
                   twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                        page));
    }

    auto challenge = ngx_http_twostep_webauthn_claim(p, wa::Ceremony::get,
                                                     "verify|"
                                                     + pending.nonce);
    if (!challenge) {
        return ngx_http_twostep_expired(p);
    }

    const twostep::WebauthnKey *key = user.key(posted->id);

    if (key == nullptr) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "security key not registered", user.name);
        return ngx_http_twostep_key_refused(p, pending, user,
                                            "error.key_wrong");
    }

    wa::Assertion as = ngx_http_twostep_check_assertion(p, *challenge,
                           *posted, user.name, key->credential, false);

    if (as.failure != wa::Failure::none) {
        return ngx_http_twostep_key_refused(p, pending, user,
                   as.failure == wa::Failure::sign_count ? "error.key_cloned"
                                                         : "error.key_wrong");
    }

    twostep::PendingSignin signin = pending;
    std::string name = user.name;
    std::string id = posted->id;

    return ngx_http_twostep_save_sign_count(p, name, id, as.sign_count,
        [signin, name, id](ngx_http_twostep_page_t &page,
                           twostep::CounterUpdate update) -> ngx_int_t
        {
            const twostep::User *user = page.scf->store->users->find(name);
            if (user == nullptr) {
                return NGX_HTTP_FORBIDDEN;
            }

            switch (update) {
            case twostep::CounterUpdate::saved:
                return ngx_http_twostep_finish_signin(page, signin, *user,
                           twostep::Method::webauthn);

            case twostep::CounterUpdate::went_back:
                ngx_http_twostep_log_cloned(page.r, name, id);
                return ngx_http_twostep_key_refused(page, signin, *user,
                                                    "error.key_cloned");

            default: /* no_key: removed meanwhile, or not saved */
                return ngx_http_twostep_key_refused(page, signin, *user,
                                                    "error.key_wrong");
            }
        });
}


const ngx_http_twostep_factor_t  ngx_http_twostep_webauthn_factor = {
    "webauthn",
    twostep::method_bit(twostep::Method::webauthn),
    NULL,
    ngx_http_twostep_webauthn_verify,
    NULL
};


// The sign-in page again after a refused passkey, with a new challenge.
static ngx_int_t
ngx_http_twostep_passkey_refused(ngx_http_twostep_page_t &p,
    std::string_view account, ngx_uint_t status)
{
    twostep::PendingSignin  pending;

    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, account, "webauthn",
                           NGX_HTTP_TWOSTEP_FAILED);

    if (status == NGX_HTTP_FORBIDDEN) {
        ngx_http_twostep_zone_state state(p.r);
        int64_t locked = twostep::record_failure(state,
                             ngx_http_twostep_lockout(p.scf), account,
                             ngx_http_twostep_address(p.r), ngx_time());
        if (locked > 0) {
            return ngx_http_twostep_locked(p.r, account, locked, "webauthn");
        }
    }

    if (ngx_http_twostep_start_pending(p, pending, "",
                                       twostep::FirstFactor::none)
        != NGX_OK)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_signin_page(p, pending, status, "",
                                        "error.passkey_wrong");
}


// passkey POST (§7.2 with a discoverable credential): the credential id
// names the user, the user handle must be that user's, and the
// authenticator must have verified the user (UV): possession and a PIN or
// biometric, two factors in one (NIST SP 800-63B 5.1.9).
ngx_int_t
ngx_http_twostep_passkey(ngx_http_twostep_page_t &p)
{
    namespace wa = twostep::webauthn;

    if (!p.scf->passkey_signin
        || !twostep::has_method(p.methods, twostep::Method::webauthn))
    {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_NOT_FOUND,
                   "msg.not_found.title", "msg.not_found.text");
    }

    if (p.r->method != NGX_HTTP_POST) {
        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "signin", p.return_to,
                                               p.methods));
    }

    auto pending = ngx_http_twostep_posted_pending(p);

    if (!pending) {
        return ngx_http_twostep_expired(p);
    }

    auto posted = ngx_http_twostep_posted_assertion(p);

    if (!posted) {
        return ngx_http_twostep_passkey_refused(p, "",
                                                NGX_HTTP_BAD_REQUEST);
    }

    auto challenge = ngx_http_twostep_webauthn_claim(p, wa::Ceremony::get,
                                                     "passkey|"
                                                     + pending->nonce);
    if (!challenge) {
        return ngx_http_twostep_expired(p);
    }

    const twostep::User *user = p.scf->store->users->key_owner(posted->id);

    if (user == nullptr) {
        // Counted like an unknown user name: a shared bucket per id, and
        // the client address.
        ngx_http_twostep_log(p.r, NGX_LOG_WARN, "passkey not registered",
                             "");
        return ngx_http_twostep_passkey_refused(p,
                   twostep::unknown_account(posted->id),
                   NGX_HTTP_FORBIDDEN);
    }

    ngx_http_twostep_zone_state state(p.r);
    int64_t locked = twostep::locked_for(state,
                                         ngx_http_twostep_lockout(p.scf),
                                         user->name,
                                         ngx_http_twostep_address(p.r),
                                         ngx_time());
    if (locked > 0) {
        return ngx_http_twostep_locked(p.r, user->name, locked, "webauthn");
    }

    // §7.2 step 6: the user handle the authenticator stored at
    // registration names the key's owner.
    if (posted->user_handle != twostep::webauthn_user_handle(user->name)) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "passkey with another user handle", user->name);
        return ngx_http_twostep_passkey_refused(p, user->name,
                                                NGX_HTTP_FORBIDDEN);
    }

    const twostep::WebauthnKey *key = user->key(posted->id);

    wa::Assertion as = ngx_http_twostep_check_assertion(p, *challenge,
                           *posted, user->name, key->credential, true);

    if (as.failure != wa::Failure::none) {
        return ngx_http_twostep_passkey_refused(p, user->name,
                                                NGX_HTTP_FORBIDDEN);
    }

    twostep::PendingSignin signin = *pending;
    signin.user = user->name;
    signin.via = twostep::FirstFactor::passkey;
    std::string name = user->name;
    std::string id = posted->id;

    return ngx_http_twostep_save_sign_count(p, name, id, as.sign_count,
        [signin, name, id](ngx_http_twostep_page_t &page,
                           twostep::CounterUpdate update) -> ngx_int_t
        {
            const twostep::User *user = page.scf->store->users->find(name);

            if (user != nullptr
                && update == twostep::CounterUpdate::saved)
            {
                ngx_http_twostep_audit(page.r, NGX_HTTP_TWOSTEP_SIGNIN, name,
                                       "passkey", NGX_HTTP_TWOSTEP_PASSED);
                return ngx_http_twostep_finish_signin(page, signin, *user,
                           twostep::Method::webauthn);
            }

            if (update == twostep::CounterUpdate::went_back) {
                ngx_http_twostep_log_cloned(page.r, name, id);
            }

            return ngx_http_twostep_passkey_refused(page, name,
                                                    NGX_HTTP_FORBIDDEN);
        });
}
