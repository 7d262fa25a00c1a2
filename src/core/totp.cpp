// HOTP (RFC 4226) and TOTP (RFC 6238).
#include "totp.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <climits>
#include <stdexcept>

namespace twostep {

namespace {

bool valid_digits(int digits) { return digits >= 6 && digits <= 8; }

const EVP_MD *digest_of(HashAlg alg)
{
    switch (alg) {
    case HashAlg::sha1:
        return EVP_sha1();
    case HashAlg::sha256:
        return EVP_sha256();
    case HashAlg::sha512:
        return EVP_sha512();
    }
    throw std::invalid_argument("unknown hash algorithm");
}

bool iequals(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); i++) {
        char c = a[i];
        if (c >= 'a' && c <= 'z')
            c = static_cast<char>(c - 'a' + 'A');
        if (c != b[i])
            return false;
    }
    return true;
}

}  // namespace

std::optional<HashAlg> hash_alg_from_name(std::string_view name)
{
    for (HashAlg alg : {HashAlg::sha1, HashAlg::sha256, HashAlg::sha512}) {
        if (iequals(name, hash_alg_name(alg)))
            return alg;
    }
    return std::nullopt;
}

const char *hash_alg_name(HashAlg alg)
{
    switch (alg) {
    case HashAlg::sha1:
        return "SHA1";
    case HashAlg::sha256:
        return "SHA256";
    case HashAlg::sha512:
        return "SHA512";
    }
    return "unknown";
}

std::string hotp(std::string_view key, HashAlg alg, std::uint64_t counter,
                 int digits)
{
    if (!valid_digits(digits))
        throw std::invalid_argument("HOTP digits must be 6, 7 or 8");
    if (key.size() > INT_MAX)
        throw std::invalid_argument("HOTP key too long");

    // RFC 4226 section 5.2: the counter is an 8-byte big-endian value.
    unsigned char msg[8];
    for (int i = 7; i >= 0; i--) {
        msg[i] = static_cast<unsigned char>(counter & 0xff);
        counter >>= 8;
    }

    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(digest_of(alg), key.data(), static_cast<int>(key.size()), msg,
              sizeof msg, mac, &mac_len)
        || mac_len < 20)
        throw std::runtime_error("HMAC failed");

    // RFC 4226 section 5.3: dynamic truncation.
    unsigned offset = mac[mac_len - 1] & 0x0f;
    std::uint32_t bin = (std::uint32_t{mac[offset]} & 0x7f) << 24
                        | std::uint32_t{mac[offset + 1]} << 16
                        | std::uint32_t{mac[offset + 2]} << 8
                        | std::uint32_t{mac[offset + 3]};
    std::uint32_t modulus = 1;
    for (int i = 0; i < digits; i++)
        modulus *= 10;
    bin %= modulus;

    std::string code(static_cast<std::size_t>(digits), '0');
    for (int i = digits - 1; i >= 0; i--) {
        code[static_cast<std::size_t>(i)] = static_cast<char>('0' + bin % 10);
        bin /= 10;
    }
    return code;
}

std::optional<std::string> normalize_code(std::string_view typed, int digits)
{
    if (!valid_digits(digits))
        return std::nullopt;
    std::string code;
    for (char c : typed) {
        if (c == ' ')
            continue;
        // Byte-wise, so any non-ASCII digit (UTF-8 lead byte) is refused.
        if (c < '0' || c > '9')
            return std::nullopt;
        if (code.size() == static_cast<std::size_t>(digits))
            return std::nullopt;
        code.push_back(c);
    }
    if (code.size() != static_cast<std::size_t>(digits))
        return std::nullopt;
    return code;
}

bool code_not_digits(std::string_view typed)
{
    for (char c : typed) {
        if (c != ' ' && (c < '0' || c > '9'))
            return true;
    }
    return false;
}

std::optional<std::int64_t> totp_verify(const TotpParams &params,
                                        std::string_view typed,
                                        std::int64_t now, int window)
{
    if (params.period <= 0 || !valid_digits(params.digits) || window < 0)
        return std::nullopt;
    auto code = normalize_code(typed, params.digits);
    if (!code)
        return std::nullopt;

    // RFC 6238 section 4.2: T = floor((now - T0) / X), T0 = 0. C++ division
    // truncates toward zero, so round negative times down by hand.
    std::int64_t t = now / params.period;
    if (now % params.period != 0 && now < 0)
        t--;

    // Every candidate is computed and compared; the closest match wins.
    std::optional<std::int64_t> found;
    for (std::int64_t i = 0; i <= 2 * std::int64_t{window}; i++) {
        // Order 0, -1, +1, -2, +2, ...: the first match is the closest.
        std::int64_t k = (i % 2 == 0) ? i / 2 : -(i + 1) / 2;
        std::int64_t step;
        if (__builtin_add_overflow(t, k, &step) || step < 0)
            continue;
        std::string expected = hotp(params.secret, params.alg,
                                    static_cast<std::uint64_t>(step),
                                    params.digits);
        bool match = CRYPTO_memcmp(expected.data(), code->data(),
                                   code->size()) == 0;
        if (match && !found)
            found = step;
    }
    return found;
}

}  // namespace twostep
