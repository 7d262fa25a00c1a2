// HOTP (RFC 4226) and TOTP (RFC 6238) verification.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace twostep {

enum class HashAlg { sha1, sha256, sha512 };

std::optional<HashAlg> hash_alg_from_name(std::string_view name);  // "SHA1"
const char *hash_alg_name(HashAlg alg);                             // "SHA1"

struct TotpParams {
    std::string secret;  // raw key bytes (already base32-decoded)
    HashAlg alg = HashAlg::sha1;
    int digits = 6;      // 6..8
    int period = 30;     // seconds
};

// RFC 4226 section 5.3: the zero-padded decimal code for one counter value.
std::string hotp(std::string_view key, HashAlg alg, std::uint64_t counter,
                 int digits);

// What the user typed -> exactly `digits` ASCII digits. ASCII spaces are
// dropped (apps show "123 456"); anything else, including non-ASCII digits,
// gives nullopt.
std::optional<std::string> normalize_code(std::string_view typed, int digits);

// Whether what the user typed has something other than ASCII digits and
// spaces (a letter, "O" for "0"): no code at all, which the page says as
// such rather than "wrong code".
bool code_not_digits(std::string_view typed);

// RFC 6238: accepts the code for the current time step or `window` steps
// either side (clock drift, section 5.2). Returns the matching time step
// (T = floor(now / period)) so a caller can refuse its reuse, or nullopt.
// Codes are compared in constant time.
std::optional<std::int64_t> totp_verify(const TotpParams &params,
                                        std::string_view typed,
                                        std::int64_t now, int window = 1);

}  // namespace twostep
