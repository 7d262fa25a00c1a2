// What enrolling a second factor hands the user: a fresh TOTP secret, the
// otpauth:// URI their authenticator app scans (as a QR code for a terminal
// or a web page), and one-time recovery codes with the hashes the store
// keeps of them.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "keyring.h"
#include "totp.h"
#include "user_store.h"

namespace twostep {

// 160 random bits (RAND_bytes), base32 without padding: 32 characters.
// RFC 4226 section 4 (R6) recommends 160 bits. Throws std::runtime_error if
// the RNG fails.
std::string new_totp_secret();

// The Key URI Format of Google Authenticator, which every common app reads:
//   otpauth://totp/ISSUER:ACCOUNT?secret=BASE32&issuer=ISSUER
// with issuer and account percent-encoded (RFC 3986 unreserved characters
// are kept, everything else, ':' '@' ' ' and UTF-8 bytes included, is
// %XX), the secret in base32 without padding, and algorithm, digits and
// period only when they differ from SHA1, 6 and 30. An empty issuer gives
// the label ACCOUNT and no issuer parameter.
std::string otpauth_uri(std::string_view issuer, std::string_view account,
                        const TotpParams &params);

// `text` as a QR code (ECC level M, quiet zone of 2 modules) drawn with
// UTF-8 half blocks, two module rows per line, like `qrencode -t UTF8`:
// light modules are drawn, dark ones are blank, for a terminal with a dark
// background. Throws std::invalid_argument if `text` holds a NUL byte or is
// too long for a QR code, std::runtime_error if libqrencode fails.
std::string qr_terminal(std::string_view text);

// The same code as one self-contained <svg>: a white background <rect> and
// one <path> of the dark modules, with viewBox, shape-rendering crispEdges,
// role="img" and aria-label=`label` (escaped); no scripts, no external
// references, safe to inline into a page. Throws like qr_terminal().
std::string qr_svg(std::string_view text,
                   std::string_view label = "QR code");

// `n` distinct one-time recovery codes "xxxxx-xxxxx-xxxxx-xxxxx-xxxxx":
// 25 characters of the lower-case RFC 4648 base32 alphabet, 125 random bits
// each (RAND_bytes). 125 bits, not fewer, so that an unsalted SHA-256 is a
// sufficient way to store them (NIST SP 800-63B 5.1.2.2; see
// recovery_hash()). Throws std::runtime_error if the RNG fails,
// std::invalid_argument unless 1 <= n <= max_recovery_codes.
std::vector<std::string> new_recovery_codes(int n = 10);

constexpr std::size_t recovery_code_chars = 25;  // without the dashes

// What the user typed, normalised: ASCII letters lower-cased, '-' and
// spaces dropped ("ABCDE-fghij" and "abcde fghij" are "abcdefghij").
std::string normalize_recovery_code(std::string_view typed);

// SHA-256 of the normalised code, 64 lower-case hex digits: what the store
// keeps. A fast unsalted hash is enough because the codes are random
// look-up secrets of 125 bits, not user-chosen: NIST SP 800-63B 5.1.2.2
// requires an approved one-way function for look-up secrets of at least
// 112 bits (fewer would need a salted, slow KDF), and 5.1.2.1 that they
// come from an approved RBG. A code of the wrong shape still hashes, and
// simply matches nothing.
std::string recovery_hash(std::string_view code);

// New codes as a file to download, right after they were made and never
// later (the store keeps only their hashes): the page's "Download" form
// carries them in a token signed for the session `sid` that made them,
// until `expires`. read_recovery_codes_token() gives them back only for
// that session and before then; nullopt otherwise (forged, another
// session's, expired, malformed).
std::string recovery_codes_token(const KeyRing &keys, std::string_view sid,
                                 std::int64_t expires,
                                 const std::vector<std::string> &codes);
std::optional<std::vector<std::string>> read_recovery_codes_token(
    const KeyRing &keys, std::string_view token, std::string_view sid,
    std::int64_t now);
// A change to security info asked with a second step too old to make it
// (OWASP ASVS 4.0.3 V3.7.1: a fresh authentication before a sensitive
// change), kept across the step-up that asks for a new one: signed, bound
// to the user and their sign-in (Session::issued, which a step-up keeps),
// asked at `asked`, until `expires`. It is never applied by itself: after a
// second step passed at or after `asked`, security info shows it again to
// confirm, with the form the change would have posted.
struct PendingChange {
    std::string user;
    std::int64_t session_issued = 0;
    std::int64_t asked = 0;
    std::int64_t expires = 0;
    std::string action;  // as the form posted it: "default", "phone", ...
    std::string value;   // its field: a method, a number, a key's id
    std::string name;    // rename-key: the new name
};

std::string encode_change(const KeyRing &keys, const PendingChange &c);
// nullopt if forged, malformed or expired at `now`.
std::optional<PendingChange> decode_change(const KeyRing &keys,
                                           std::string_view token,
                                           std::int64_t now);

// The file: `heading` (whose codes, for which site), a blank line, and the
// codes one a line, with CRLF line ends so that every editor shows lines.
std::string recovery_codes_file(std::string_view heading,
                                const std::vector<std::string> &codes);

}  // namespace twostep
