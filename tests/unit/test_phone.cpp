// Phone numbers: E.164 from what users type, and the masked form pages show.
#include <optional>
#include <string>

#include "core/phone.h"
#include "unit.h"

using namespace twostep;

namespace {

std::string normal(const std::string &typed)
{
    std::optional<std::string> n = normalize_phone(typed);
    return n ? *n : "(none)";
}

}  // namespace

START_TEST(normalizes)
{
    ck_assert_string_eq(normal("+31612345678"), "+31612345678");
    ck_assert_string_eq(normal("+31 6 12 34 56 78"), "+31612345678");
    ck_assert_string_eq(normal("+31 (0)6-1234 5678"), "+31612345678");
    ck_assert_string_eq(normal("0031 6 1234 5678"), "+31612345678");
    ck_assert_string_eq(normal("+1 (555) 000-1111"), "+15550001111");
    ck_assert_string_eq(normal("+1.555.000.1111"), "+15550001111");
    ck_assert_string_eq(normal("  +44 20 7946 0958"), "+442079460958");
    ck_assert_string_eq(normal("+49 30/1234567"), "+49301234567");
    ck_assert_string_eq(normal("+123456789012345"), "+123456789012345");
}
END_TEST

START_TEST(refuses)
{
    for (const char *typed :
         {"", "+", "0612345678", "612345678", "+0612345678",
          "+1234567", "+1234567890123456", "+31 6 1234 5678 ext 9",
          "+31612345678;", "+31\t612345678", "++31612345678",
          "tel:+31612345678", "+31 6 1234 567\xd9\xa8", "(0)31612345678",
          "+31612345678\n", "+(0)31612345678", "00 0612345678"})
        ck_assert_msg(!normalize_phone(typed), "'%s' accepted", typed);
}
END_TEST

// What the field's message says: each refusal names its reason.
START_TEST(says_why)
{
    ck_assert(phone_problem("+1 (555) 000-1111") == PhoneProblem::none);
    ck_assert(phone_problem("+31 6 1234 5678 ext 9")
              == PhoneProblem::letters);
    ck_assert(phone_problem("+31 6 CALL ME") == PhoneProblem::letters);
    ck_assert(phone_problem("tel:+31612345678") == PhoneProblem::letters);
    ck_assert(phone_problem("06 1234 5678") == PhoneProblem::no_country_code);
    ck_assert(phone_problem("(555) 000-1111")
              == PhoneProblem::no_country_code);
    ck_assert(phone_problem("+1 555 01") == PhoneProblem::too_short);
    ck_assert(phone_problem("0031 612") == PhoneProblem::too_short);
    ck_assert(phone_problem("") == PhoneProblem::too_short);
    ck_assert(phone_problem("   ") == PhoneProblem::too_short);
    ck_assert(phone_problem("+44 20 7946 0958 12345")
              == PhoneProblem::too_long);
    ck_assert(phone_problem("+31612345678;") == PhoneProblem::invalid);
    ck_assert(phone_problem("+0612345678") == PhoneProblem::invalid);
}
END_TEST

START_TEST(masks)
{
    ck_assert_string_eq(phone_hint("+31612345678"),
                        "+31 •• ••• •• 78");
    ck_assert_string_eq(phone_hint("+15550001111"),
                        "+1 •• ••• ••• 11");
    ck_assert_string_eq(phone_hint("+442079460958"),
                        "+44 •• ••• ••• 58");
    // A lone last bullet joins its group.
    ck_assert_string_eq(phone_hint("+35312345678"), "+353 •• •••• 78");
    // Every digit but the country code and the last two is hidden.
    std::string m = phone_hint("+35312345678");
    ck_assert_string_eq(m.substr(0, 5), "+353 ");
    ck_assert_string_eq(m.substr(m.size() - 3), " 78");
    ck_assert(m.find_first_of("0123456789", 5) == m.size() - 2);
    ck_assert_string_eq(phone_hint("0612345678"), "•••");
    ck_assert_string_eq(phone_hint(""), "•••");
    ck_assert_string_eq(phone_hint("+31 6 12345678"), "•••");
}
END_TEST

int main()
{
    Suite *suite = suite_create("phone");
    TCase *tc = tcase_create("phone");
    tcase_add_test(tc, normalizes);
    tcase_add_test(tc, refuses);
    tcase_add_test(tc, says_why);
    tcase_add_test(tc, masks);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
