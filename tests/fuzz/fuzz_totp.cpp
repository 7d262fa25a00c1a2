// base32 secrets, typed codes and TOTP verification. The input is split
// with FuzzedDataProvider into parameters (digits, algorithm, period,
// window, clock), a base32 text and a typed code; the key is fixed, as a
// store's secret would be.
#include <fuzzer/FuzzedDataProvider.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/base32.h"
#include "core/totp.h"
#include "fuzz.h"

using namespace twostep;

namespace {

// RFC 6238 appendix B's SHA1 seed.
const std::string test_secret = "12345678901234567890";

// `text` upper-cased without spaces and '=': what base32_encode() gives
// back for a text base32_decode() accepts.
std::string canonical_base32(std::string_view text)
{
    std::string out;
    for (char c : text) {
        if (c == ' ' || c == '=')
            continue;
        out.push_back(c >= 'a' && c <= 'z' ? static_cast<char>(c - 32) : c);
    }
    return out;
}

void check_base32(std::string_view text)
{
    auto bytes = base32_decode(text);
    if (bytes) {
        CHECK(base32_encode(*bytes) == canonical_base32(text));
        CHECK(base32_decode(base32_encode(*bytes)) == *bytes);
    }
}

void check_normalize(std::string_view typed, int digits)
{
    auto code = normalize_code(typed, digits);
    if (!code)
        return;
    CHECK(digits >= 6 && digits <= 8);
    CHECK(code->size() == static_cast<std::size_t>(digits));
    for (char c : *code)
        CHECK(c >= '0' && c <= '9');
    std::string typed_digits;
    for (char c : typed) {
        if (c != ' ')
            typed_digits.push_back(c);
    }
    CHECK(*code == typed_digits);
}

// floor(now / period), as RFC 6238 defines T.
std::int64_t time_step(std::int64_t now, int period)
{
    std::int64_t t = now / period;
    if (now % period != 0 && now < 0)
        t--;
    return t;
}

void check_verify(const TotpParams &params, std::string_view typed,
                  std::int64_t now, int window)
{
    auto step = totp_verify(params, typed, now, window);
    bool valid = params.period > 0 && params.digits >= 6
                 && params.digits <= 8 && window >= 0;
    if (!valid) {
        CHECK(!step);
        return;
    }
    std::int64_t t = time_step(now, params.period);
    if (step) {
        // The code really is the one for that step, within the window.
        CHECK(*step >= 0);
        __int128 drift = static_cast<__int128>(*step) - t;
        CHECK(drift >= -window && drift <= window);
        auto code = normalize_code(typed, params.digits);
        CHECK(code);
        CHECK(hotp(params.secret, params.alg,
                   static_cast<std::uint64_t>(*step), params.digits)
              == *code);
    }
    // The right code for the current step always passes, as that step.
    if (t >= 0) {
        std::string right = hotp(params.secret, params.alg,
                                 static_cast<std::uint64_t>(t),
                                 params.digits);
        CHECK(totp_verify(params, right, now, window) == t);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    FuzzedDataProvider in(data, size);
    TotpParams params;
    params.secret = test_secret;
    params.digits = in.ConsumeIntegralInRange<int>(4, 10);
    params.alg = in.PickValueInArray(
        {HashAlg::sha1, HashAlg::sha256, HashAlg::sha512});
    params.period = in.ConsumeBool() ? 30 : in.ConsumeIntegralInRange<int>(
                                                -2, 600);
    int window = in.ConsumeIntegralInRange<int>(-1, 5);
    std::int64_t now = in.ConsumeBool() ? fuzz::now
                                        : in.ConsumeIntegral<std::int64_t>();
    std::string secret_text = in.ConsumeRandomLengthString(256);
    std::string typed = in.ConsumeRemainingBytesAsString();

    check_base32(secret_text);
    check_base32(typed);
    check_normalize(typed, params.digits);
    check_verify(params, typed, now, window);

    // A decoded secret as long as the store requires is a key too.
    auto secret = base32_decode(secret_text);
    if (secret && secret->size() >= 16) {
        params.secret = *secret;
        check_verify(params, typed, now, window);
    }
    return 0;
}
