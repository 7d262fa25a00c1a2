// Out-of-band codes (text messages): fresh, unbiased, stored only as a
// keyed hash bound to one pending sign-in, valid ten minutes.
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/keyring.h"
#include "core/oob.h"
#include "unit.h"

using namespace twostep;

#define ck_assert_check(got, want) ck_assert_named(got, want, oob_check_name)

namespace {

constexpr std::int64_t now = 1700000000;
const std::string binding = "pending-sid-1|alice";

KeyRing keys(std::string_view raw)
{
    KeyRing k;
    ck_assert(k.add(raw));
    return k;
}

}  // namespace

START_TEST(codes_are_fresh_digits)
{
    KeyRing k = keys("0123456789abcdef0123456789abcdef");
    std::set<std::string> codes;
    for (int i = 0; i < 200; i++) {
        OobCode c = issue_oob_code(k, binding, now);
        ck_assert_uint_eq(c.code.size(), 6);
        ck_assert(c.code.find_first_not_of("0123456789") == std::string::npos);
        ck_assert_string_eq(c.record.substr(0, c.record.find('.')),
                            std::to_string(now + oob_code_lifetime));
        codes.insert(c.code);
    }
    // 200 draws from a million: a repeat has a chance of about 2%, so
    // allow one, but not a generator stuck on few values.
    ck_assert_uint_ge(codes.size(), 199);
}
END_TEST

START_TEST(code_checks)
{
    KeyRing k = keys("0123456789abcdef0123456789abcdef");
    OobCode c = issue_oob_code(k, binding, now);
    ck_assert_check(check_oob_code(k, c.record, binding, c.code, now),
                    OobCheck::ok);
    std::string spaced = c.code.substr(0, 3) + " " + c.code.substr(3);
    ck_assert_check(check_oob_code(k, c.record, binding, spaced, now + 599),
                    OobCheck::ok);
    // Ten minutes (SP 800-63B 5.1.3.2), then never again.
    ck_assert_check(check_oob_code(k, c.record, binding, c.code, now + 600),
                    OobCheck::expired);
    ck_assert_check(check_oob_code(k, c.record, binding, "000000", now + 600),
                    OobCheck::expired);
    // Bound to the pending sign-in and the user.
    ck_assert_check(
        check_oob_code(k, c.record, "pending-sid-2|alice", c.code, now),
        OobCheck::wrong);
    ck_assert_check(
        check_oob_code(k, c.record, "pending-sid-1|bob", c.code, now),
        OobCheck::wrong);
    // Another code, or not a code.
    std::string other = c.code;
    other[5] = other[5] == '9' ? '0' : static_cast<char>(other[5] + 1);
    ck_assert_check(check_oob_code(k, c.record, binding, other, now),
                    OobCheck::wrong);
    for (const char *typed : {"", "12345", "1234567", "abcdef", "12345x"})
        ck_assert_check(check_oob_code(k, c.record, binding, typed, now),
                        OobCheck::wrong);
    // A record from another key, or with its expiry moved, is worthless.
    KeyRing other_keys = keys("fedcba9876543210fedcba9876543210");
    ck_assert_check(check_oob_code(other_keys, c.record, binding, c.code, now),
                    OobCheck::wrong);
    std::string mac = c.record.substr(c.record.find('.'));
    ck_assert_check(check_oob_code(k, std::to_string(now + 100000) + mac,
                                   binding, c.code, now),
                    OobCheck::wrong);
}
END_TEST

START_TEST(records_survive_key_rotation)
{
    KeyRing old_keys = keys("0123456789abcdef0123456789abcdef");
    OobCode c = issue_oob_code(old_keys, binding, now);
    KeyRing rotated;
    ck_assert(rotated.add("fedcba9876543210fedcba9876543210"));
    ck_assert(rotated.add("0123456789abcdef0123456789abcdef"));
    ck_assert_check(check_oob_code(rotated, c.record, binding, c.code, now),
                    OobCheck::ok);
}
END_TEST

START_TEST(malformed_records)
{
    KeyRing k = keys("0123456789abcdef0123456789abcdef");
    for (const char *record : {"", ".", "abc", ".mac", "12a.mac",
                               "-5.mac", "9999999999999999999.mac"})
        ck_assert_check(check_oob_code(k, record, binding, "123456", now),
                        OobCheck::malformed);
    OobCode c = issue_oob_code(k, binding, now);
    ck_assert_check(check_oob_code(k, c.record, "", c.code, now),
                    OobCheck::malformed);
    bool threw = false;
    try {
        issue_oob_code(k, "", now);
    } catch (const std::invalid_argument &) {
        threw = true;
    }
    ck_assert(threw);
}
END_TEST

START_TEST(random_below_is_uniform_enough)
{
    std::vector<int> count(10, 0);
    for (int i = 0; i < 10000; i++)
        count[random_below(10)]++;
    // Each digit 1000 times on average; 800 is more than six standard
    // deviations away, so a fair generator never fails this.
    for (int d = 0; d < 10; d++)
        ck_assert_int_gt(count[d], 800);
    ck_assert_uint_eq(random_below(1), 0);
    ck_assert_uint_lt(random_below(1u << 31), 1u << 31);
    for (std::uint32_t bad : {0u, (1u << 31) + 1})
        try {
            random_below(bad);
            ck_abort_msg("random_below(%u) did not throw", bad);
        } catch (const std::invalid_argument &) {
        }
}
END_TEST

int main()
{
    Suite *suite = suite_create("oob");
    TCase *tc = tcase_create("codes");
    tcase_add_test(tc, codes_are_fresh_digits);
    tcase_add_test(tc, code_checks);
    tcase_add_test(tc, records_survive_key_rotation);
    tcase_add_test(tc, malformed_records);
    tcase_add_test(tc, random_below_is_uniform_enough);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
