// safe_return_to(): only paths on this server, however a browser or a
// decoding proxy reads them.
#include <string>

#include "core/return_to.h"
#include "unit.h"

using namespace twostep;

#define expect_safe(target, want)                                           \
    do {                                                                    \
        const std::string t_ = (target);                                    \
        ck_assert_msg(safe_return_to(t_) == (want), "safe_return_to(%s)",   \
                      #target);                                             \
    } while (0)

START_TEST(accepts_paths)
{
    expect_safe("/", true);
    expect_safe("/app", true);
    expect_safe("/path?x=1&y=%2F", true);
    expect_safe("/a/b/c?q=%3F#frag", true);
    expect_safe("/a//b", true);
    expect_safe("/caf%C3%A9/menu", true);
    expect_safe("/api/group%2Fproject", true);
    expect_safe("/?next=//evil", true);  // a query is not a path
    expect_safe("/#//evil", true);       // nor is a fragment
    expect_safe("/~user/x-y_z.html;v=1", true);
}
END_TEST

START_TEST(rejects_other_origins)
{
    expect_safe("", false);
    expect_safe("relative", false);
    expect_safe("relative/path", false);
    expect_safe("http://x", false);
    expect_safe("https://evil.example/", false);
    expect_safe("javascript:alert(1)", false);
    expect_safe("//evil", false);
    expect_safe("//evil/path", false);
    expect_safe("///evil", false);
    expect_safe("/\\evil", false);
    expect_safe("\\\\evil", false);
    expect_safe("?x=1", false);
    expect_safe("#frag", false);
}
END_TEST

START_TEST(rejects_encoded_slashes)
{
    expect_safe("/%2f/evil", false);
    expect_safe("/%2F/evil", false);
    expect_safe("/%2F%2Fevil", false);
    expect_safe("/%2fevil", false);
    expect_safe("/%5cevil", false);
    expect_safe("/%5Cevil", false);
    expect_safe("/%252f/evil", false);    // decoded twice
    expect_safe("/%25252f/evil", false);  // three times
    expect_safe("/%09/evil", false);      // "/\t/evil" once decoded
    expect_safe("/%0a/evil", false);
    expect_safe("/%0d%0aSet-Cookie:x=1", false);
    expect_safe("/a%00b", false);
    expect_safe("/%252541", true);            // "/A" after three rounds
    expect_safe("/%2525252525252541", false);  // too deep to be honest
}
END_TEST

START_TEST(rejects_bad_bytes)
{
    expect_safe("/\t/evil", false);
    expect_safe("/\n/evil", false);
    expect_safe("/\r/evil", false);
    expect_safe(std::string("/a\0b", 4), false);
    expect_safe("/a b", false);
    expect_safe("/a\x7f", false);
    expect_safe("/a\x80", false);
    expect_safe("/caf\xc3\xa9", false);
    expect_safe("/a\\b", false);
    expect_safe("/a?b=\\", false);
    expect_safe("/a%zz", false);
    expect_safe("/a%4", false);
    expect_safe("/a%", false);
    expect_safe("/a?q=%", false);
}
END_TEST

// "Back to the application" from a Referer: this origin's paths only, and
// never the sign-in pages themselves.
START_TEST(same_origin_targets)
{
    const char *origin = "https://intranet.example:8443";
    ck_assert_str_eq(same_origin_target(
        "https://intranet.example:8443/app/?a=1", origin, "/.twostep/")
        .c_str(), "/app/?a=1");
    ck_assert_str_eq(same_origin_target(
        "https://intranet.example:8443/", origin, "/.twostep/").c_str(),
        "/");
    for (const char *url :
         {"https://intranet.example:8443", "https://intranet.example/app/",
          "http://intranet.example:8443/app/",
          "https://intranet.example:84430/app/",
          "https://intranet.example:8443.evil/app/",
          "https://intranet.example:8443//evil.example/",
          "https://intranet.example:8443/\\evil.example/",
          "https://intranet.example:8443/.twostep/security-info",
          "https://intranet.example:8443/a b", ""}) {
        ck_assert_msg(same_origin_target(url, origin, "/.twostep/").empty(),
                      "accepted %s", url);
    }
    ck_assert(same_origin_target("https://x/app/", "", "/.twostep/")
              .empty());
}
END_TEST

START_TEST(length_limit)
{
    std::string ok = "/" + std::string(2047, 'a');
    expect_safe(ok, true);
    expect_safe(ok + "a", false);
    expect_safe("/" + std::string(100000, 'a'), false);
}
END_TEST

int main()
{
    Suite *suite = suite_create("return_to");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, accepts_paths);
    tcase_add_test(tc, rejects_other_origins);
    tcase_add_test(tc, rejects_encoded_slashes);
    tcase_add_test(tc, rejects_bad_bytes);
    tcase_add_test(tc, length_limit);
    tcase_add_test(tc, same_origin_targets);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
