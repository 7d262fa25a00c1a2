// base32, HOTP (RFC 4226) and TOTP (RFC 6238), checked against the RFC
// test vectors and the independent oathtool implementation.
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>

#include "core/base32.h"
#include "core/totp.h"
#include "unit.h"

using namespace twostep;

namespace {

const std::string seed20 = "12345678901234567890";
const std::string seed32 = "12345678901234567890123456789012";
const std::string seed64 =
    "1234567890123456789012345678901234567890123456789012345678901234";

TotpParams params(const std::string &secret, HashAlg alg, int digits,
                  int period = 30)
{
    TotpParams p;
    p.secret = secret;
    p.alg = alg;
    p.digits = digits;
    p.period = period;
    return p;
}

// The trimmed first line oathtool prints, or "" if it fails.
std::string oathtool(const std::string &args)
{
    std::string cmd = "oathtool " + args + " 2>/dev/null";
    FILE *pipe = popen(cmd.c_str(), "r");
    if (!pipe)
        return "";
    char line[64] = {0};
    std::string out;
    if (fgets(line, sizeof line, pipe))
        out = line;
    int status = pclose(pipe);
    if (status != 0)
        return "";
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r'))
        out.pop_back();
    return out;
}

}  // namespace

// ---- base32 ----

START_TEST(base32_rfc4648_vectors)
{
    // RFC 4648 section 10, without padding.
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"",      "MY",       "MZXQ",      "MZXW6",
                           "MZXW6YQ", "MZXW6YTB", "MZXW6YTBOI"};
    for (int i = 0; i < 7; i++) {
        ck_assert_string_eq(base32_encode(plain[i]), coded[i]);
        auto back = base32_decode(coded[i]);
        ck_assert(back.has_value());
        ck_assert_string_eq(back.value_or("-"), plain[i]);
    }
}
END_TEST

START_TEST(base32_lenient_forms)
{
    auto a = base32_decode("mzxw6ytboi");
    ck_assert(a.has_value());
    ck_assert_string_eq(a.value_or("-"), "foobar");
    auto b = base32_decode("MZXW 6YTB OI");
    ck_assert(b.has_value());
    ck_assert_string_eq(b.value_or("-"), "foobar");
    auto c = base32_decode("MZXW6YQ=");
    ck_assert(c.has_value());
    ck_assert_string_eq(c.value_or("-"), "foob");
    auto d = base32_decode("MY======");
    ck_assert(d.has_value());
    ck_assert_string_eq(d.value_or("-"), "f");
}
END_TEST

START_TEST(base32_round_trip_all_bytes)
{
    std::string all;
    for (int i = 0; i < 256; i++)
        all.push_back(static_cast<char>(i));
    for (std::size_t len = 0; len <= all.size(); len += 7) {
        std::string part = all.substr(all.size() - len);
        auto back = base32_decode(base32_encode(part));
        ck_assert(back.has_value());
        ck_assert(*back == part);
    }
    ck_assert_string_eq(base32_encode(seed20),
                        "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ");
}
END_TEST

START_TEST(base32_rejects)
{
    const char *bad[] = {
        "MZXW6YTB1",   // '1' is not in the alphabet
        "MZXW6YTB0",   // nor '0'
        "MZXW6YTB8",   // nor '8'
        "MZ=XQ",       // data after padding
        "MZXQ====MZXQ",
        "M",           // dangling 5 bits
        "MZX",         // 3 characters never end a quantum
        "MZXW6Y",      // 6 neither
        "MZ",          // 'Z' leaves non-zero unused bits
        "MZXW6YTB\n",  // only ASCII spaces are ignored
        "MZXW\t6YTB",
        "MZXW-6YTB",
        "MZXW6YT\xc3\xa9",
    };
    for (const char *text : bad)
        ck_assert_msg(!base32_decode(text).has_value(), "accepted %s", text);
    ck_assert(!base32_decode(std::string("MY\0", 3)).has_value());
}
END_TEST

// ---- HOTP / TOTP ----

START_TEST(hotp_rfc4226_appendix_d)
{
    const char *expected[] = {"755224", "287082", "359152", "969429",
                              "338314", "254676", "287922", "162583",
                              "399871", "520489"};
    for (std::uint64_t c = 0; c < 10; c++)
        ck_assert_string_eq(hotp(seed20, HashAlg::sha1, c, 6), expected[c]);
}
END_TEST

START_TEST(totp_rfc6238_appendix_b)
{
    struct Vector {
        std::int64_t time;
        const char *sha1, *sha256, *sha512;
    };
    const Vector vectors[] = {
        {59, "94287082", "46119246", "90693936"},
        {1111111109, "07081804", "68084774", "25091201"},
        {1111111111, "14050471", "67062674", "99943326"},
        {1234567890, "89005924", "91819424", "93441116"},
        {2000000000, "69279037", "90698825", "38618901"},
        {20000000000, "65353130", "77737706", "47863826"},
    };
    for (const Vector &v : vectors) {
        std::uint64_t step = static_cast<std::uint64_t>(v.time / 30);
        ck_assert_string_eq(hotp(seed20, HashAlg::sha1, step, 8), v.sha1);
        ck_assert_string_eq(hotp(seed32, HashAlg::sha256, step, 8), v.sha256);
        ck_assert_string_eq(hotp(seed64, HashAlg::sha512, step, 8), v.sha512);

        auto r1 = totp_verify(params(seed20, HashAlg::sha1, 8), v.sha1,
                              v.time, 0);
        auto r256 = totp_verify(params(seed32, HashAlg::sha256, 8),
                                v.sha256, v.time, 0);
        auto r512 = totp_verify(params(seed64, HashAlg::sha512, 8),
                                v.sha512, v.time, 0);
        ck_assert(r1 && r256 && r512);
        ck_assert_int_eq(*r1, v.time / 30);
        ck_assert_int_eq(*r256, v.time / 30);
        ck_assert_int_eq(*r512, v.time / 30);
        // The SHA1 code is not valid under the other algorithms.
        ck_assert(!totp_verify(params(seed20, HashAlg::sha256, 8), v.sha1,
                               v.time, 0));
    }
}
END_TEST

START_TEST(totp_window)
{
    const std::int64_t now = 1111111111;
    const std::int64_t t = now / 30;
    TotpParams p = params(seed20, HashAlg::sha1, 6);
    std::string code[5];
    for (int k = -2; k <= 2; k++)
        code[k + 2] = hotp(seed20, HashAlg::sha1,
                           static_cast<std::uint64_t>(t + k), 6);
    for (int i = 0; i < 5; i++)
        for (int j = i + 1; j < 5; j++)
            ck_assert(code[i] != code[j]);  // else the test proves nothing

    for (int k = -1; k <= 1; k++) {
        auto r = totp_verify(p, code[k + 2], now, 1);
        ck_assert(r.has_value());
        ck_assert_int_eq(*r, t + k);
    }
    ck_assert(!totp_verify(p, code[0], now, 1));
    ck_assert(!totp_verify(p, code[4], now, 1));
    // Window 0 takes only the current step; window 2 takes t +- 2.
    ck_assert(!totp_verify(p, code[1], now, 0));
    ck_assert(!totp_verify(p, code[3], now, 0));
    ck_assert_int_eq(*totp_verify(p, code[2], now, 0), t);
    ck_assert_int_eq(*totp_verify(p, code[0], now, 2), t - 2);
    ck_assert_int_eq(*totp_verify(p, code[4], now, 2), t + 2);
    // The code still matches at the very edges of its own step.
    ck_assert_int_eq(*totp_verify(p, code[2], t * 30, 0), t);
    ck_assert_int_eq(*totp_verify(p, code[2], t * 30 + 29, 0), t);
    ck_assert(!totp_verify(p, code[2], t * 30 + 30, 0));
    // Typed with a space, as apps display it.
    std::string spaced = code[2].substr(0, 3) + " " + code[2].substr(3);
    ck_assert_int_eq(*totp_verify(p, spaced, now, 1), t);
    // Steps 910737 and 910738 share the code 911617: the step closest to
    // now is returned, whichever side it is on.
    ck_assert_string_eq(hotp(seed20, HashAlg::sha1, 910737, 6), "911617");
    ck_assert_string_eq(hotp(seed20, HashAlg::sha1, 910738, 6), "911617");
    ck_assert_int_eq(*totp_verify(p, "911617", 910737 * 30, 1), 910737);
    ck_assert_int_eq(*totp_verify(p, "911617", 910738 * 30, 1), 910738);
    // Wrong code.
    std::string wrong = code[2];
    wrong[5] = wrong[5] == '9' ? '0' : static_cast<char>(wrong[5] + 1);
    ck_assert(!totp_verify(p, wrong, now, 0));
}
END_TEST

START_TEST(totp_period_and_digits)
{
    const std::int64_t now = 1234567890;
    std::string c60 = hotp(seed20, HashAlg::sha1, now / 60, 7);
    ck_assert_int_eq(c60.size(), 7);
    ck_assert_int_eq(*totp_verify(params(seed20, HashAlg::sha1, 7, 60), c60,
                                  now, 0),
                     now / 60);
    ck_assert(!totp_verify(params(seed20, HashAlg::sha1, 7, 30), c60, now,
                           0));
    // Bad parameters are refused, never a crash or a division by zero.
    std::string c6 = hotp(seed20, HashAlg::sha1, now / 30, 6);
    ck_assert(totp_verify(params(seed20, HashAlg::sha1, 6, 30), c6, now));
    ck_assert(!totp_verify(params(seed20, HashAlg::sha1, 6, 0), c6, now));
    ck_assert(!totp_verify(params(seed20, HashAlg::sha1, 6, -30), c6, now));
    ck_assert(!totp_verify(params(seed20, HashAlg::sha1, 5, 30),
                           c6.substr(1), now));
    ck_assert(!totp_verify(params(seed20, HashAlg::sha1, 9, 30),
                           c6 + "000", now));
    ck_assert(!totp_verify(params(seed20, HashAlg::sha1, 6, 30), c6, now,
                           -1));

    bool threw = false;
    try {
        hotp(seed20, HashAlg::sha1, 0, 5);
    } catch (const std::invalid_argument &) {
        threw = true;
    }
    ck_assert(threw);
}
END_TEST

START_TEST(totp_extreme_times)
{
    TotpParams p = params(seed20, HashAlg::sha1, 6, 1);
    std::string step0 = hotp(seed20, HashAlg::sha1, 0, 6);
    // Before the epoch only step 0 (within the window) can match.
    ck_assert_int_eq(*totp_verify(p, step0, -1, 1), 0);
    ck_assert(!totp_verify(p, step0, -2, 1));
    ck_assert(!totp_verify(p, step0, INT64_MIN, 1));
    // T is floor(now / period): -1 s and -29 s are in step -1, not 0.
    TotpParams p30 = params(seed20, HashAlg::sha1, 6, 30);
    std::string step1 = hotp(seed20, HashAlg::sha1, 1, 6);
    ck_assert(!totp_verify(p30, step0, -1, 0));
    ck_assert_int_eq(*totp_verify(p30, step0, -1, 1), 0);
    ck_assert(!totp_verify(p30, step1, -29, 1));
    ck_assert_int_eq(*totp_verify(p30, step1, 0, 1), 1);
    // A negative step is never fed to HOTP as a huge unsigned counter.
    std::string wrapped = hotp(seed20, HashAlg::sha1, UINT64_MAX, 6);
    ck_assert(wrapped != step0);
    ck_assert(!totp_verify(p30, wrapped, -1, 0));
    ck_assert(!totp_verify(params(seed20, HashAlg::sha1, 6, 30), step0,
                           INT64_MIN, 1));
    // At the end of time the step after T would overflow: skipped.
    std::string last = hotp(seed20, HashAlg::sha1,
                            static_cast<std::uint64_t>(INT64_MAX), 6);
    ck_assert_int_eq(*totp_verify(p, last, INT64_MAX, 1), INT64_MAX);
    ck_assert_int_eq(*totp_verify(p, last, INT64_MAX - 1, 1), INT64_MAX);
    const std::int64_t tmax = INT64_MAX / 30;
    std::string c30 = hotp(seed20, HashAlg::sha1,
                           static_cast<std::uint64_t>(tmax), 6);
    ck_assert_int_eq(*totp_verify(params(seed20, HashAlg::sha1, 6, 30), c30,
                                  INT64_MAX, 3),
                     tmax);
}
END_TEST

START_TEST(normalize_code_cases)
{
    auto norm = [](const char *typed, int digits) {
        return normalize_code(typed, digits).value_or("(refused)");
    };
    ck_assert_string_eq(norm("123456", 6), "123456");
    ck_assert_string_eq(norm("123 456", 6), "123456");
    ck_assert_string_eq(norm(" 12 34 56 ", 6), "123456");
    ck_assert_string_eq(norm("1234 5678", 8), "12345678");
    ck_assert_string_eq(norm("0000000", 7), "0000000");
    const char *bad6[] = {
        "",
        "12345",
        "1234567",
        "12345a",
        "123-456",
        "123\t456",
        "123456\n",
        "+12345",
        "\xd9\xa1\xd9\xa2\xd9\xa3\xd9\xa4\xd9\xa5\xd9\xa6",  // Arabic-Indic
        "\xef\xbc\x91\xef\xbc\x92\xef\xbc\x93"
        "\xef\xbc\x94\xef\xbc\x95\xef\xbc\x96",  // fullwidth 123456
        "12345\xef\xbc\x96",
    };
    for (const char *typed : bad6)
        ck_assert_msg(!normalize_code(typed, 6).has_value(), "accepted %s",
                      typed);
    ck_assert(!normalize_code(std::string("123\0" "456", 7), 6));
    ck_assert(!normalize_code("12345", 5));
    ck_assert(!normalize_code("123456789", 9));
}
END_TEST

// Letters and other signs are "not a code"; a wrong number of digits is
// a wrong code, said differently.
START_TEST(codes_with_letters)
{
    for (const char *typed : {"12345O", "abcdef", "123-456", "1234 5l",
                              "\xef\xbc\x91\xef\xbc\x92"})
        ck_assert_msg(code_not_digits(typed), "%s", typed);
    for (const char *typed : {"", "123456", "123 456", "12", "123456789"})
        ck_assert_msg(!code_not_digits(typed), "%s", typed);
}
END_TEST

START_TEST(hash_alg_names)
{
    ck_assert(hash_alg_from_name("SHA1") == HashAlg::sha1);
    ck_assert(hash_alg_from_name("SHA256") == HashAlg::sha256);
    ck_assert(hash_alg_from_name("SHA512") == HashAlg::sha512);
    ck_assert(hash_alg_from_name("sha256") == HashAlg::sha256);
    ck_assert(!hash_alg_from_name("MD5"));
    ck_assert(!hash_alg_from_name("SHA-1"));
    ck_assert(!hash_alg_from_name(""));
    ck_assert_string_eq(hash_alg_name(HashAlg::sha1), "SHA1");
    ck_assert_string_eq(hash_alg_name(HashAlg::sha256), "SHA256");
    ck_assert_string_eq(hash_alg_name(HashAlg::sha512), "SHA512");
}
END_TEST

START_TEST(cross_check_oathtool)
{
    struct Case {
        const char *flag;
        HashAlg alg;
        std::string secret;
    };
    std::string odd;  // 13 bytes: base32 with a partial final quantum
    for (int i = 0; i < 13; i++)
        odd.push_back(static_cast<char>(0xa5 ^ (i * 37)));
    const Case cases[] = {
        {"--totp", HashAlg::sha1, seed20},
        {"--totp", HashAlg::sha1, odd},
        {"--totp=sha256", HashAlg::sha256, seed32},
        {"--totp=sha512", HashAlg::sha512, seed64},
    };
    const std::int64_t times[] = {0, 59, 1111111111, 1700000000, 4102444800};
    int checked = 0;
    for (const Case &c : cases) {
        std::string b32 = base32_encode(c.secret);
        for (int digits : {6, 8}) {
            for (std::int64_t t : times) {
                std::string args = std::string(c.flag) + " -b -d "
                                   + std::to_string(digits) + " -N @"
                                   + std::to_string(t) + " " + b32;
                std::string theirs = oathtool(args);
                ck_assert_msg(theirs.size() == std::size_t(digits),
                              "oathtool %s gave '%s'", args.c_str(),
                              theirs.c_str());
                auto step_u = static_cast<std::uint64_t>(t / 30);
                ck_assert_string_eq(hotp(c.secret, c.alg, step_u, digits),
                                    theirs);
                auto step = totp_verify(params(c.secret, c.alg, digits),
                                        theirs, t, 0);
                ck_assert(step.has_value());
                ck_assert_int_eq(*step, t / 30);
                checked++;
            }
        }
    }
    // A 60-second period.
    std::string theirs = oathtool("--totp -s 60 -b -d 6 -N @1234567890 "
                                  + base32_encode(seed20));
    ck_assert_string_eq(theirs,
                        hotp(seed20, HashAlg::sha1, 1234567890 / 60, 6));
    ck_assert_int_eq(checked, 40);
}
END_TEST

int main()
{
    Suite *suite = suite_create("totp");
    TCase *b32 = tcase_create("base32");
    tcase_add_test(b32, base32_rfc4648_vectors);
    tcase_add_test(b32, base32_lenient_forms);
    tcase_add_test(b32, base32_round_trip_all_bytes);
    tcase_add_test(b32, base32_rejects);
    suite_add_tcase(suite, b32);

    TCase *otp = tcase_create("otp");
    tcase_add_test(otp, hotp_rfc4226_appendix_d);
    tcase_add_test(otp, totp_rfc6238_appendix_b);
    tcase_add_test(otp, totp_window);
    tcase_add_test(otp, totp_period_and_digits);
    tcase_add_test(otp, totp_extreme_times);
    tcase_add_test(otp, normalize_code_cases);
    tcase_add_test(otp, codes_with_letters);
    tcase_add_test(otp, hash_alg_names);
    suite_add_tcase(suite, otp);

    TCase *oath = tcase_create("oathtool");
    tcase_add_test(oath, cross_check_oathtool);
    tcase_set_timeout(oath, 30);
    suite_add_tcase(suite, oath);
    return run_suite(suite);
}
