#include "oob.h"

#include <openssl/rand.h>

#include <stdexcept>

#include "keyring.h"
#include "totp.h"

namespace twostep {

namespace {

// The label keeps these MACs apart from form and logout tokens, which
// KeyRing::mac() also makes.
std::string code_mac_input(std::string_view binding, std::int64_t expiry,
                           std::string_view code)
{
    std::string in = "oob-code|";
    in += std::to_string(expiry);
    in += '|';
    in += code;
    in += '|';
    in += binding;
    return in;
}

}  // namespace

std::uint32_t random_below(std::uint32_t bound)
{
    if (bound == 0 || bound > (1u << 31))
        throw std::invalid_argument("random_below: bound out of range");
    // The largest multiple of bound that fits: values at or above it
    // would make the low residues likelier, so they are drawn again.
    const std::uint64_t range = std::uint64_t{1} << 32;
    const std::uint64_t limit = range - range % bound;
    for (;;) {
        unsigned char buf[4];
        if (RAND_bytes(buf, sizeof buf) != 1)
            throw std::runtime_error("RAND_bytes failed");
        std::uint32_t v = std::uint32_t{buf[0]} << 24
            | std::uint32_t{buf[1]} << 16 | std::uint32_t{buf[2]} << 8
            | buf[3];
        if (v < limit)
            return v % bound;
    }
}

OobCode issue_oob_code(const KeyRing &keys, std::string_view binding,
                       std::int64_t now, std::int64_t lifetime)
{
    if (keys.empty() || binding.empty() || lifetime <= 0)
        throw std::invalid_argument("issue_oob_code: no key or binding");
    OobCode out;
    std::uint32_t n = random_below(1000000);
    out.code = std::to_string(n);
    out.code.insert(0, oob_code_digits - out.code.size(), '0');
    std::int64_t expiry = now + lifetime;
    out.record = std::to_string(expiry) + "."
        + keys.mac(code_mac_input(binding, expiry, out.code));
    return out;
}

const char *oob_check_name(OobCheck c)
{
    switch (c) {
    case OobCheck::ok:
        return "ok";
    case OobCheck::wrong:
        return "wrong";
    case OobCheck::expired:
        return "expired";
    case OobCheck::malformed:
        return "malformed";
    }
    return "unknown";
}

OobCheck check_oob_code(const KeyRing &keys, std::string_view record,
                        std::string_view binding, std::string_view typed,
                        std::int64_t now)
{
    std::size_t dot = record.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot > 18
        || binding.empty())
        return OobCheck::malformed;
    std::int64_t expiry = 0;
    for (char c : record.substr(0, dot)) {
        if (c < '0' || c > '9')
            return OobCheck::malformed;
        expiry = expiry * 10 + (c - '0');
    }
    if (now >= expiry)
        return OobCheck::expired;
    std::optional<std::string> code = normalize_code(typed, oob_code_digits);
    if (!code)
        return OobCheck::wrong;
    return keys.mac_ok(code_mac_input(binding, expiry, *code),
                       record.substr(dot + 1))
        ? OobCheck::ok
        : OobCheck::wrong;
}

}  // namespace twostep
