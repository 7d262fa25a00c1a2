// The strict application/x-www-form-urlencoded parser and url_encode().
#include <string>

#include "core/form.h"
#include "unit.h"

using namespace twostep;

namespace {

Fields parse_ok(const std::string &body)
{
    std::string error;
    auto fields = parse_form(body, error);
    ck_assert_msg(fields.has_value(), "parse_form(\"%s\") failed: %s",
                  body.c_str(), error.c_str());
    return *fields;
}

// Fails the test unless `body` is refused with an error containing `why`.
void parse_fails(const std::string &body, const std::string &why)
{
    std::string error;
    auto fields = parse_form(body, error);
    ck_assert_msg(!fields.has_value(), "parse_form accepted \"%s\"",
                  body.c_str());
    ck_assert_msg(error.find(why) != std::string::npos,
                  "error \"%s\" lacks \"%s\"", error.c_str(), why.c_str());
}

}  // namespace

START_TEST(simple_fields)
{
    Fields f = parse_ok("username=alice&password=s3cret&return_to=%2Fapp");
    ck_assert_uint_eq(f.size(), 3);
    ck_assert_string_eq(field(f, "username"), "alice");
    ck_assert_string_eq(field(f, "password"), "s3cret");
    ck_assert_string_eq(field(f, "return_to"), "/app");
    ck_assert_string_eq(field(f, "missing"), "");
}
END_TEST

START_TEST(decoding)
{
    Fields f = parse_ok("a=hello+world&b=%41%62%2b%25%26%3D&c%20d=%e2%82%AC");
    ck_assert_string_eq(field(f, "a"), "hello world");
    ck_assert_string_eq(field(f, "b"), "Ab+%&=");
    ck_assert_string_eq(field(f, "c d"), "\xe2\x82\xac");
    f = parse_ok("q=a=b=c");  // only the first '=' separates
    ck_assert_string_eq(field(f, "q"), "a=b=c");
}
END_TEST

START_TEST(empty_values_and_pieces)
{
    ck_assert_uint_eq(parse_ok("").size(), 0);
    Fields f = parse_ok("a=&b=1");
    ck_assert_uint_eq(f.size(), 2);
    ck_assert(f.count("a") == 1);
    ck_assert_string_eq(field(f, "a"), "");
    ck_assert_string_eq(field(f, "b"), "1");
    f = parse_ok("flag&b=2");  // no '=': a name with an empty value
    ck_assert_uint_eq(f.size(), 2);
    ck_assert(f.count("flag") == 1);
    ck_assert_string_eq(field(f, "flag"), "");
    f = parse_ok("&a=1&&b=2&");  // empty pieces are skipped
    ck_assert_uint_eq(f.size(), 2);
    ck_assert_string_eq(field(f, "b"), "2");
}
END_TEST

START_TEST(duplicates)
{
    parse_fails("a=1&a=2", "repeats a name");
    parse_fails("a=1&a=1", "repeats a name");
    parse_fails("a=1&%61=2", "repeats a name");  // equal once decoded
    parse_fails("flag&flag", "repeats a name");
    parse_fails("a=1&b=2&a=", "repeats a name");
}
END_TEST

START_TEST(bad_escapes)
{
    parse_fails("a=%zz", "bad %-escape");
    parse_fails("a=%", "bad %-escape");
    parse_fails("a=x%", "bad %-escape");
    parse_fails("a=%4", "bad %-escape");
    parse_fails("a=%4&b=1", "bad %-escape");
    parse_fails("a=%g0", "bad %-escape");
    parse_fails("%zz=1", "bad %-escape");
    parse_fails("a=%%41", "bad %-escape");
}
END_TEST

START_TEST(nul_bytes)
{
    parse_fails(std::string("a=x\0y", 5), "NUL");
    parse_fails(std::string("a\0=1", 4), "NUL");
    parse_fails("a=x%00y", "NUL");
    parse_fails("%00=1", "NUL");
}
END_TEST

START_TEST(limits)
{
    std::string body;
    for (int i = 0; i < 32; i++) {
        body += (i ? "&f" : "f") + std::to_string(i) + "=v";
    }
    ck_assert_uint_eq(parse_ok(body).size(), 32);
    parse_fails(body + "&f32=v", "more than 32 fields");

    std::string name64(64, 'n');
    ck_assert_uint_eq(parse_ok(name64 + "=1").size(), 1);
    parse_fails(name64 + "n=1", "name longer than 64 bytes");
    parse_fails(name64 + "n", "name longer than 64 bytes");

    std::string value4096(4096, 'v');
    Fields f = parse_ok("a=" + value4096);
    ck_assert_uint_eq(field(f, "a").size(), 4096);
    parse_fails("a=" + value4096 + "v", "value longer than 4096 bytes");
    parse_fails("a=" + std::string(1000000, 'v'),
                "value longer than 4096 bytes");
    // The limits apply to decoded lengths: 4096 escapes make 4096 bytes.
    std::string escaped;
    for (int i = 0; i < 4096; i++) {
        escaped += "%41";
    }
    ck_assert_uint_eq(field(parse_ok("a=" + escaped), "a").size(), 4096);
}
END_TEST

START_TEST(error_does_not_echo_input)
{
    std::string error;
    ck_assert(!parse_form("evil\n=1&evil\n=2", error));
    ck_assert(error.find("evil") == std::string::npos);
}
END_TEST

START_TEST(url_encode_cases)
{
    ck_assert_string_eq(url_encode(""), "");
    ck_assert_string_eq(url_encode("AZaz09-._~"), "AZaz09-._~");
    ck_assert_string_eq(url_encode("/app?x=1&y=a b"),
                        "%2Fapp%3Fx%3D1%26y%3Da%20b");
    ck_assert_string_eq(url_encode("+%#\\\""), "%2B%25%23%5C%22");
    ck_assert_string_eq(url_encode("\xe2\x82\xac"), "%E2%82%AC");
    ck_assert_string_eq(url_encode(std::string("\0\x7f\xff", 3)),
                        "%00%7F%FF");
}
END_TEST

START_TEST(url_encode_round_trip)
{
    std::string all;
    for (int c = 1; c < 256; c++) {  // every byte except NUL
        all.push_back(static_cast<char>(c));
    }
    for (const std::string &text :
         {all, std::string("/a/b?c=d&e=f#g"), std::string("a+b c")}) {
        Fields f = parse_ok("v=" + url_encode(text));
        ck_assert_uint_eq(f.size(), 1);
        ck_assert(field(f, "v") == text);
    }
    std::string name = "n &=+%;\xc3\xa9";
    Fields f = parse_ok(url_encode(name) + "=1&b=2");
    ck_assert_uint_eq(f.size(), 2);
    ck_assert_string_eq(field(f, name), "1");
}
END_TEST

START_TEST(cookie_names_are_exact)
{
    std::string_view v;
    ck_assert_uint_eq(find_cookie("a=1; twostep_session=tok; b=2",
                                  "twostep_session", v), 1);
    ck_assert_string_eq(v, "tok");
    ck_assert_uint_eq(find_cookie("twostep_session=\"tok\"",
                                  "twostep_session", v), 1);
    ck_assert_string_eq(v, "\"tok\"");
    ck_assert_uint_eq(find_cookie("  twostep_session = x.y ;",
                                  "twostep_session", v), 1);
    ck_assert_string_eq(v, "x.y");
    // Other case, other prefix, a longer or shorter name: not ours.
    for (const char *h : {"TWOSTEP_SESSION=a", "__HOST-twostep_session=a",
                          "twostep_session2=a", "xtwostep_session=a",
                          "twostep_session", "twostep_sessio=a", ""}) {
        ck_assert_uint_eq(find_cookie(h, "twostep_session", v), 0);
        ck_assert_uint_eq(find_cookie(h, "__Host-twostep_session", v), 0);
    }
    ck_assert_uint_eq(find_cookie("__Host-twostep_session=h",
                                  "__Host-twostep_session", v), 1);
    ck_assert_string_eq(v, "h");
    // Two of them are counted, whatever their values.
    ck_assert_uint_eq(find_cookie("twostep_session=a; twostep_session=b",
                                  "twostep_session", v), 2);
    ck_assert_uint_eq(find_cookie("twostep_session=a;twostep_session=a",
                                  "twostep_session", v), 2);
}
END_TEST

int main()
{
    Suite *suite = suite_create("form");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, simple_fields);
    tcase_add_test(tc, decoding);
    tcase_add_test(tc, empty_values_and_pieces);
    tcase_add_test(tc, duplicates);
    tcase_add_test(tc, bad_escapes);
    tcase_add_test(tc, nul_bytes);
    tcase_add_test(tc, limits);
    tcase_add_test(tc, error_does_not_echo_input);
    tcase_add_test(tc, url_encode_cases);
    tcase_add_test(tc, url_encode_round_trip);
    tcase_add_test(tc, cookie_names_are_exact);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
