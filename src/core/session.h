// The two cookies: the session (both steps done) and the pending sign-in
// (password or identity done, second step still owed; opens nothing), and
// the capability in a self-hosted push's or call's links.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "keyring.h"
#include "methods.h"

namespace twostep {

// How the first factor of a sign-in was passed: none yet, the password, an
// identity another nginx auth module verified, or (a step-up) the session.
// passkey: a discoverable credential with user verification, standing for
// the password and the second step at once (WebAuthn Level 2; NIST SP
// 800-63B 5.1.9 multi-factor cryptographic authenticators).
enum class FirstFactor { none, password, identity, session, passkey };

// What a location that asks for the password accepts as its first factor.
inline bool stands_for_password(FirstFactor f)
{
    return f == FirstFactor::password || f == FirstFactor::passkey;
}

struct Session {
    std::string sid;             // random id, for revocation
    std::string user;
    Method method = Method::totp;  // how the second step was passed
    std::int64_t auth_time = 0;  // when the second step was passed (unix s)
    std::int64_t expires = 0;    // absolute expiry (unix s)
    std::string credentials;     // User::credential_tag at sign-in: a new
                                 // password or app secret ends the session
    FirstFactor via = FirstFactor::password;  // password, passkey or
                                 // identity only:
                                 // an identity session never stands in
                                 // for the password
    std::int64_t issued = 0;     // when the session began (a step-up
                                 // keeps it), for the current TTL
};

std::string encode_session(const KeyRing &keys, const Session &s);

// Whether `s` is still within `ttl` seconds of its start and its own
// expiry at `now`: a lifetime lowered since the sign-in applies to it too.
bool session_within(const Session &s, std::int64_t ttl, std::int64_t now);
// nullopt if forged, malformed, signed by an unknown key, or expired at `now`.
// A session id or nonce as random_token() makes them: base64url, bounded.
bool valid_id(std::string_view id);
// A time as the cookies write it: plain decimal, no sign, no leading zero.
std::optional<std::int64_t> parse_time(std::string_view text);

// A signed token's payload split at its '|' (no field holds one), the
// version first for the kinds that have one. Safe to copy: the fields are
// positions in its own copy of the payload.
class TokenFields {
public:
    explicit TokenFields(std::string payload);

    std::size_t size() const { return fields_.size(); }
    std::string_view operator[](std::size_t i) const
    {
        return std::string_view(payload_).substr(fields_[i].first,
                                                 fields_[i].second);
    }

private:
    std::string payload_;
    std::vector<std::pair<std::size_t, std::size_t>> fields_;  // at, length
};

// What every decoder checks first: `token` signed for `kind` by a key of
// `keys`, `version` as its first field (none when empty), and from `least`
// to `most` fields in all, the version included. nullopt otherwise.
std::optional<TokenFields> fields_of(const KeyRing &keys,
                                     std::string_view kind,
                                     std::string_view token,
                                     std::string_view version,
                                     std::size_t least, std::size_t most);

inline std::optional<TokenFields> fields_of(const KeyRing &keys,
                                            std::string_view kind,
                                            std::string_view token,
                                            std::string_view version,
                                            std::size_t count)
{
    return fields_of(keys, kind, token, version, count, count);
}

std::optional<Session> decode_session(const KeyRing &keys,
                                      std::string_view token,
                                      std::int64_t now);

struct PendingSignin {
    std::string nonce;          // random; binds the form tokens (anti-CSRF)
    std::string user;           // empty until the first factor is passed
    FirstFactor via = FirstFactor::none;
    std::int64_t expires = 0;
    std::string txid;           // a push or call waiting at the provider
    Method txid_method = Method::push;  // which, when txid is set
    MethodSet methods = all_methods;    // what the protected location
                                        // accepts (a form cannot widen it)
    MethodSet confirmed = 0;            // push/call/sms the provider said
                                        // this user has (its preauth)
    bool remember = false;              // "Don't ask again on this
                                        // device" ticked (twostep_remember)
    std::string code;           // a texted code's record (oob.h) while
                                // one is out; empty otherwise
};

std::string encode_pending(const KeyRing &keys, const PendingSignin &p);
std::optional<PendingSignin> decode_pending(const KeyRing &keys,
                                            std::string_view token,
                                            std::int64_t now);

// "Don't ask again on this device" (twostep_remember): a cookie of its own,
// apart from the session, that lets the password alone sign `user` in on
// this browser. Bound to the user's credentials at the time, so a new
// password or authenticator forgets it, and to its issue time, so
// "Forget remembered devices" (User::devices_forgotten) does.
struct RememberedDevice {
    std::string user;
    std::string credentials;     // User::credential_tag when remembered
    std::int64_t issued = 0;     // when remembered (unix s)
    std::int64_t expires = 0;    // issued + twostep_remember then
};

std::string encode_device(const KeyRing &keys, const RememberedDevice &d);
// nullopt if forged, malformed or expired at `now`.
std::optional<RememberedDevice> decode_device(const KeyRing &keys,
                                              std::string_view token,
                                              std::int64_t now);

struct User;

// Whether `d` still stands for the second step of `user` at `now`: same
// user and credentials, not forgotten since, and within the current
// twostep_remember `ttl` (a lowered one applies to devices remembered
// before).
bool device_remembers(const RememberedDevice &d, const User &user,
                      std::int64_t ttl, std::int64_t now);
// The capability in an approval, deny or call-back link: the transaction,
// whose it is and until when, signed with the server's keys (KeyRing
// kind "x"), so that only the portal can make one and each is bound to
// one transaction. Single use comes from decide_approval().
struct Capability {
    std::string txid;
    std::string user;
    Method method = Method::push;
    std::int64_t expires = 0;
    std::string address;  // the client signing in, for the approval page
    bool test = false;    // the test push of "Set up push notifications":
                          // approving it saves a topic, signs nobody in
};
std::string capability_token(const KeyRing &keys, const Capability &c);
// nullopt if forged, malformed or expired at `now`.
std::optional<Capability> read_capability(const KeyRing &keys,
                                          std::string_view token,
                                          std::int64_t now);

// "Set up push notifications" (security info) while it lasts: the random
// ntfy topic offered to the session that asked (bound to its sid and
// user) and, once sent, the test push's transaction. A cookie of its own
// (KeyRing kind "u"), never a URL: whoever knows a topic can read it.
struct PushSetup {
    std::string sid;
    std::string user;
    std::string topic;         // ntfy::valid_topic()
    std::string txid;          // the test push out; empty before
    std::int64_t expires = 0;  // the whole set-up's end
};
std::string encode_push_setup(const KeyRing &keys, const PushSetup &s);
// nullopt if forged, malformed or expired at `now`.
std::optional<PushSetup> decode_push_setup(const KeyRing &keys,
                                           std::string_view token,
                                           std::int64_t now);

// Anti-forgery token for forms, bound to the pending sign-in's nonce.
std::string form_token(const KeyRing &keys, const PendingSignin &p);
bool form_token_ok(const KeyRing &keys, const PendingSignin &p,
                   std::string_view token);

}  // namespace twostep
