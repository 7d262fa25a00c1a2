// Shared main() for the Check suites: one binary per area.
#pragma once

#include <check.h>
#include <cstdlib>
#include <string>

// ck_assert_str_eq keeps a pointer past the end of the full expression, so
// a .c_str() of a temporary would dangle: compare copies instead.
#define ck_assert_string_eq(got, want)                                      \
    do {                                                                    \
        const std::string got_ = std::string(got);                          \
        const std::string want_ = std::string(want);                        \
        ck_assert_msg(got_ == want_, "%s: got '%s', want '%s'", #got,       \
                      got_.c_str(), want_.c_str());                         \
    } while (0)

// Two values of an enum, named by `name_of` (failure_name, ...) when they
// differ.
#define ck_assert_named(got, want, name_of)                                 \
    do {                                                                    \
        const auto got_ = (got);                                            \
        const decltype(got_) want_ = (want);                                \
        ck_assert_msg(got_ == want_, "%s: got %s, want %s", #got,           \
                      name_of(got_), name_of(want_));                       \
    } while (0)

inline int run_suite(Suite *suite)
{
    SRunner *runner = srunner_create(suite);
    srunner_run_all(runner, CK_NORMAL);
    int failed = srunner_ntests_failed(runner);
    srunner_free(runner);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
