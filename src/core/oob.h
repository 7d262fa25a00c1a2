// Out-of-band secrets (NIST SP 800-63B 5.1.3): the code a text message
// carries, kept only as a keyed hash bound to one pending sign-in, and the
// unbiased random numbers behind it and behind push number matching.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace twostep {

class KeyRing;

// Uniform in [0, bound) from RAND_bytes, by rejection so that no value is
// likelier than another (no modulo bias). bound must be 1 to 2^31; throws
// std::invalid_argument otherwise and std::runtime_error if the RNG fails.
std::uint32_t random_below(std::uint32_t bound);

constexpr int oob_code_digits = 6;
// SP 800-63B 5.1.3.2: an out-of-band secret is valid for 10 minutes.
constexpr std::int64_t oob_code_lifetime = 600;

struct OobCode {
    std::string code;    // six digits to send; never stored
    std::string record;  // "<expiry>.<MAC>": what the pending sign-in keeps
};

// A fresh code, valid `lifetime` seconds from `now`, bound to `binding`
// (the pending sign-in's id, and the user): the record verifies only for
// that binding, under the keys of `keys`.
OobCode issue_oob_code(const KeyRing &keys, std::string_view binding,
                       std::int64_t now,
                       std::int64_t lifetime = oob_code_lifetime);

enum class OobCheck { ok, wrong, expired, malformed };
const char *oob_check_name(OobCheck c);

// `typed` (spaces allowed, as normalize_code() takes it) against `record`
// for `binding` at `now`, in constant time. Expiry is checked first, so an
// expired record says nothing about the code. The caller makes it single
// use: it forgets the record on ok, and counts every wrong one in the
// lockout.
OobCheck check_oob_code(const KeyRing &keys, std::string_view record,
                        std::string_view binding, std::string_view typed,
                        std::int64_t now);

}  // namespace twostep
