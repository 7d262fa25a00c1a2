// WebAuthn Level 2 relying-party checks for security keys and passkeys:
// registration (§7.1) and assertion (§7.2) verification, and challenges
// bound to a pending sign-in. Signatures are verified by libfido2, CBOR is
// split by libcbor, clientDataJSON is read with jansson. Nothing here throws
// across its boundary: every failure is a distinct Failure for the log.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyring.h"

namespace twostep::webauthn {

// COSE algorithm identifiers (RFC 9053) that libfido2 verifies.
enum class Algorithm : int { es256 = -7, rs256 = -257, eddsa = -8 };
std::optional<Algorithm> algorithm_from_cose(std::int64_t alg);
const char *algorithm_name(Algorithm alg);  // "ES256", "RS256", "EdDSA"

enum class Failure {
    none,
    too_large,              // an input over its size limit
    client_data_malformed,  // not a JSON object, or a member ill-typed
    wrong_type,             // "type" is not webauthn.create / webauthn.get
    wrong_challenge,        // "challenge" is not the one issued
    wrong_origin,           // "origin" is not exactly the expected one
    cross_origin,           // "crossOrigin": true (made inside an iframe)
    cbor_malformed,         // attestation object is not canonical CBOR
                            // of the expected shape
    auth_data_malformed,    // authenticator data truncated or with bytes
                            // to spare, or attested data where none is due
    rp_id_hash,             // made for another relying party
    user_not_present,       // UP flag clear
    user_not_verified,      // UV flag clear where verification is required
    no_credential,          // registration without attested credential data
    public_key_malformed,   // COSE key unreadable, or not on its curve
    algorithm_unsupported,  // not ES256, RS256 (2048 bits) or EdDSA
    attestation_unsupported,// a format other than none and packed
    attestation_invalid,    // packed attestation statement does not verify
    credential_mismatch,    // stored record unreadable or of another type
    bad_signature,          // the assertion signature does not verify
    sign_count,             // counter did not increase: possibly cloned
    internal,               // allocation or library failure
};
const char *failure_name(Failure f);

// Authenticator data flags (WebAuthn L2 §6.1).
namespace flag {
constexpr std::uint8_t up = 0x01;  // user present
constexpr std::uint8_t uv = 0x04;  // user verified
constexpr std::uint8_t at = 0x40;  // attested credential data included
constexpr std::uint8_t ed = 0x80;  // extension data included
}  // namespace flag

// Size limits on what a browser posts; real ones are far smaller.
constexpr std::size_t max_client_data_bytes = 8192;
constexpr std::size_t max_attestation_bytes = 16384;
constexpr std::size_t max_auth_data_bytes = 8192;
constexpr std::size_t max_signature_bytes = 1024;
constexpr std::size_t max_credential_id_bytes = 1023;  // WebAuthn L3 §5.8.3

struct AuthData {
    std::string rp_id_hash;  // 32 bytes: SHA-256 of the RP ID
    std::uint8_t flags = 0;
    std::uint32_t sign_count = 0;
    // With flag::at only:
    std::string aaguid;         // 16 bytes
    std::string credential_id;  // raw bytes
    std::string cose_key;       // the credential public key, raw COSE_Key
    // With flag::ed only: the names of the extension outputs.
    std::vector<std::string> extensions;
};

// §6.1: rpIdHash, flags, signCount, then attested credential data when AT
// is set and the extensions map when ED is set, and nothing after them.
Failure parse_auth_data(std::string_view raw, AuthData &out);

struct ClientData {
    std::string type;
    std::string challenge;  // base64url, as the browser wrote it
    std::string origin;
    bool cross_origin = false;
};

// §5.8.1: a JSON object with string type, challenge and origin and an
// optional boolean crossOrigin; other members are ignored (browsers add
// some on purpose), duplicate members refused.
Failure parse_client_data(std::string_view json, ClientData &out);

struct PublicKey {
    Algorithm algorithm = Algorithm::es256;
    std::string spki;  // DER SubjectPublicKeyInfo
};

// A COSE_Key (RFC 9052 §7) for ES256 (EC2, P-256), RS256 (RSA, 2048 bits)
// or EdDSA (OKP, Ed25519), checked by libfido2 (points on their curve).
Failure parse_cose_key(std::string_view cose, PublicKey &out);

// What the relying party asked for.
struct Expected {
    std::string rp_id;      // "example.com" (never an IP address)
    std::string origin;     // "https://example.com", exact
    std::string challenge;  // base64url, as issued
    bool user_verification = false;  // UV flag required
};

// The stored record: public data only.
struct Credential {
    std::string id;          // base64url of the credential id
    Algorithm algorithm = Algorithm::es256;
    std::string public_key;  // base64url of the DER SubjectPublicKeyInfo
                             // (what the browser's getPublicKey() returns)
    std::uint32_t sign_count = 0;
    std::vector<std::string> transports;
};

struct Registration {
    Failure failure = Failure::internal;
    Credential credential;   // set when failure is none
    std::string fmt;         // "none" or "packed"
    std::string aaguid;      // 16 bytes (all zero for attestation none)
    bool user_verified = false;
};

// §7.1 steps 5-19 for attestation formats none and packed (self or x5c).
// The x5c certificate is not chained to a trusted root: like Chrome's
// default (attestation "none"), any authenticator model is accepted.
// `transports` is what getTransports() said; unknown names are dropped.
Registration verify_registration(const Expected &expected,
                                 std::string_view attestation_object,
                                 std::string_view client_data_json,
                                 const std::vector<std::string> &transports);

struct Assertion {
    Failure failure = Failure::internal;
    std::uint32_t sign_count = 0;  // to store when failure is none
    bool user_verified = false;
};

// §7.2 steps 10-21 for a credential the caller looked up by its id (and,
// for a discoverable credential, whose userHandle it matched to the user).
// The sign count is checked last, after the signature, so only a genuine
// signature with a stale counter reports Failure::sign_count.
Assertion verify_assertion(const Expected &expected,
                           const Credential &credential,
                           std::string_view authenticator_data,
                           std::string_view client_data_json,
                           std::string_view signature);

// The transports a browser may report (§5.8.4); others are dropped.
std::vector<std::string> known_transports(
    const std::vector<std::string> &transports);

// Challenges (§13.4.3): 32 random bytes, base64url. The token binds one
// to a ceremony and to a pending sign-in (its nonce) for 5 minutes, so the
// server keeps no state until the answer comes. A token is replayable
// until it expires: the caller makes it single use, by consuming the
// pending sign-in or by remembering the challenge until `expires`.
enum class Ceremony { create, get };
constexpr std::int64_t challenge_lifetime = 300;  // seconds

struct Challenge {
    std::string challenge;  // for navigator.credentials.create()/get()
    std::string token;      // signed; travels with the page's form
    std::int64_t expires = 0;
};

// Throws std::runtime_error if the RNG or the MAC fails (the caller's
// try/catch answers 500).
Challenge issue_challenge(const KeyRing &keys, Ceremony ceremony,
                          std::string_view binding, std::int64_t now);

// The challenge the token carries, if it is for this ceremony and binding,
// verifies under the KeyRing and has not expired at `now`.
std::optional<Challenge> open_challenge(const KeyRing &keys,
                                        Ceremony ceremony,
                                        std::string_view binding,
                                        std::string_view token,
                                        std::int64_t now);

// The options the pages' script (webauthn.js) hands to the browser, as a
// JSON object; binary values base64url. §5.5 (get): allowCredentials the
// user's keys (none: a discoverable credential, a passkey), and
// userVerification "required" or "preferred".
std::string get_options(std::string_view challenge, std::string_view rp_id,
                        const std::vector<std::string> &allow,
                        bool require_uv);
// §5.4 (create): the user handle, excludeCredentials the user's keys (one
// authenticator is registered once), residentKey and userVerification
// "preferred", attestation "none".
std::string create_options(std::string_view challenge, std::string_view rp_id,
                           std::string_view rp_name,
                           std::string_view user_handle,
                           std::string_view user_name,
                           const std::vector<std::string> &exclude);

}  // namespace twostep::webauthn
