// The JSON user store named by twostep_users:
//   {"users": {"alice": {"password": "$y$...", "totp": "BASE32"}}}
// "totp" may also be {"secret": "...", "algorithm": "SHA1|SHA256|SHA512",
// "digits": 6|7|8, "period": 30}. Optional per user: "phone": "+E164",
// "default": "totp|push|call|sms", "recovery": ["<sha256 hex>", ...] (the
// hashes of unused one-time recovery codes, see enroll.h),
// "devices_forgotten": UNIX-TIME, "duo_username", "ntfy_topic" (the
// user's ntfy topic for push) and "webauthn": the user's security keys
// and passkeys, public data only:
//   [{"id": "<base64url credential id>", "public_key": "<base64url DER
//     SubjectPublicKeyInfo>", "algorithm": -7|-257|-8, "sign_count": N,
//     "name": "Work laptop", "created": <unix time>, "transports": [...]}]
// A credential id belongs to one key of one user in the whole store
// (WebAuthn Level 2 §7.1 step 22). Unknown members are kept out of the way
// (later features add them), never an error.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "methods.h"
#include "totp.h"
#include "webauthn.h"

namespace twostep {

// A security key or passkey of a user (WebAuthn Level 2).
struct WebauthnKey {
    webauthn::Credential credential;  // id, public key, counter, transports
    std::string name;                 // what the user called it
    std::int64_t created = 0;         // unix time it was registered
};

struct User {
    std::string name;
    std::string password_hash;        // crypt(3) string; empty: no password
    std::optional<TotpParams> totp;
    std::string phone;                // "+" and 8..15 digits; empty: none
    std::optional<Method> default_method;  // preferred second step
    std::vector<std::string> recovery;     // SHA-256 hex of unused codes
    std::string duo_username;         // empty: the user name is used
    // "Forget remembered devices": device cookies issued up to this time
    // (Unix seconds) sign nobody in. In the store, so a restart or
    // another worker cannot bring them back.
    std::int64_t devices_forgotten = 0;
    std::string ntfy_topic;           // ntfy::valid_topic(); empty: none
    std::vector<WebauthnKey> keys;    // security keys and passkeys
    // A digest of the password hash and the app secret: sessions carry it,
    // so a new password or a reset authenticator ends them (OWASP ASVS
    // 3.3.3). Set when the store is read.
    std::string credential_tag;

    MethodSet methods() const;        // second-step methods this user has

    // The key with this credential id (base64url), or nullptr.
    const WebauthnKey *key(std::string_view id) const;
};

class UserStore {
public:
    UserStore();
    // A store is made whole by parse() or load() and then only read: a copy
    // would share its generation(), so there is none.
    UserStore(const UserStore &) = delete;
    UserStore &operator=(const UserStore &) = delete;

    const User *find(std::string_view name) const;
    // A number no other store of this process had: what a cache of answers
    // about one store compares (an address can be reused once a reloaded
    // store is freed; this cannot).
    std::uint64_t generation() const { return generation_; }
    std::size_t size() const { return users_.size(); }
    // Every user, ordered by name.
    std::vector<const User *> users() const;

    // What checking a name that is not in the store costs: the
    // password_setting() of one user's hash, chosen by a keyed hash of the
    // name, so unknown names cost what the store's users cost, scheme and
    // cost alike and in the same proportions (OWASP ASVS 2.2.1). The same
    // name always gets the same one. Empty when no user has a password.
    std::string_view dummy_setting(std::string_view name) const;

    // The user who registered the credential id (base64url), or nullptr:
    // how a passkey names its user.
    const User *key_owner(std::string_view credential_id) const;

    // Parses JSON text; on failure returns nullptr and sets `error` to a
    // message naming the position (line:column) or the user and member at
    // fault, e.g. `user "bob": "totp.digits" must be 6, 7 or 8`.
    static std::shared_ptr<const UserStore> parse(std::string_view json,
                                                  std::string &error);
    // Reads and parses a file; errors start with the file name.
    static std::shared_ptr<const UserStore> load(const std::string &path,
                                                 std::string &error);

private:
    void prepare_dummy_settings();

    std::uint64_t generation_;
    std::map<std::string, User, std::less<>> users_;
    std::vector<std::string> dummy_settings_;  // one per user's password
    std::map<std::string, std::string, std::less<>> key_owners_;  // id: name
};

// User names: 1..64 of [A-Za-z0-9._@+-], so they are safe in tokens, logs
// and headers.
bool valid_user_name(std::string_view name);

// What User::credential_tag holds: 16 base64url characters of SHA-256 over
// the password hash and the TOTP parameters.
std::string credential_tag(const User &user);

// "+" then 8 to 15 digits: an E.164 number (ITU-T E.164 allows at most 15).
bool valid_phone(std::string_view phone);

// 64 lower-case hex digits, as recovery_hash() makes them.
bool valid_recovery_hash(std::string_view hash);

// 1 to 128 printable ASCII characters without spaces: what Duo accepts as
// a user name or alias, bounded so it is safe in API requests and logs.
bool valid_duo_username(std::string_view name);

// At most this many recovery hashes per user.
constexpr std::size_t max_recovery_codes = 100;

// At most this many security keys and passkeys per user.
constexpr std::size_t max_webauthn_keys = 32;

// A key's name: 1 to 64 bytes of UTF-8 without control characters.
bool valid_key_name(std::string_view name);

// The WebAuthn user handle (user.id) of a user: 16 bytes of SHA-256 over
// the user name, base64url. It names no one on its own (WebAuthn Level 2
// §14.6.1) and needs no storage; a passkey sign-in checks the handle the
// authenticator returns against the key's owner.
std::string webauthn_user_handle(std::string_view user_name);

}  // namespace twostep
