// Audit log lines: valid JSON with every field, escaping, names not written.
#include <jansson.h>

#include <string>

#include "core/audit.h"
#include "unit.h"

using namespace twostep;

namespace {

AuditEvent sample()
{
    AuditEvent e;
    e.time = "2026-12-02T01:02:03+00:00";
    e.event = "signin";
    e.user = "alice";
    e.method = "totp";
    e.result = "failure";
    e.address = "192.0.2.7";
    e.host = "app.example.com";
    e.uri = "/.twostep/verify";
    e.request_id = "0123456789abcdef0123456789abcdef";
    return e;
}

std::string member(const std::string &line, const char *key)
{
    json_error_t err;
    json_t *obj = json_loads(line.c_str(), 0, &err);
    ck_assert_msg(obj != nullptr, "not JSON: %s (%s)", line.c_str(),
                  err.text);
    json_t *v = json_object_get(obj, key);
    std::string out = json_is_string(v) ? json_string_value(v)
                      : json_is_null(v) ? "<null>"
                                         : "<missing>";
    json_decref(obj);
    return out;
}

}  // namespace

START_TEST(every_field_in_one_line)
{
    std::string line = audit_line(sample());
    ck_assert(!line.empty() && line.back() == '\n');
    ck_assert(line.find('\n') == line.size() - 1);
    ck_assert_string_eq(line.substr(0, 9), "{\"time\":\"");
    ck_assert_string_eq(member(line, "time"), "2026-12-02T01:02:03+00:00");
    ck_assert_string_eq(member(line, "event"), "signin");
    ck_assert_string_eq(member(line, "user"), "alice");
    ck_assert_string_eq(member(line, "method"), "totp");
    ck_assert_string_eq(member(line, "result"), "failure");
    ck_assert_string_eq(member(line, "address"), "192.0.2.7");
    ck_assert_string_eq(member(line, "host"), "app.example.com");
    ck_assert_string_eq(member(line, "uri"), "/.twostep/verify");
    ck_assert_string_eq(member(line, "request_id"),
                        "0123456789abcdef0123456789abcdef");
}
END_TEST

START_TEST(empty_fields_are_null)
{
    AuditEvent e = sample();
    e.method = "";
    e.user = "";
    std::string line = audit_line(e);
    ck_assert_string_eq(member(line, "method"), "<null>");
    ck_assert_string_eq(member(line, "user"), "<null>");
}
END_TEST

START_TEST(invalid_user_names_are_not_written)
{
    AuditEvent e = sample();
    e.user = "hunter2 \"correct horse\"";   // a password in the name field
    std::string line = audit_line(e);
    ck_assert_string_eq(member(line, "user"), "(unknown)");
    ck_assert(line.find("hunter2") == std::string::npos);
}
END_TEST

START_TEST(quotes_controls_and_bytes_are_escaped)
{
    AuditEvent e = sample();
    e.uri = "/a\"b\\c\n{\"x\":1}\xff\xc3\xa9%";
    e.host = "h\r\nInjected: 1";
    std::string line = audit_line(e);
    ck_assert(line.find('\n') == line.size() - 1);
    ck_assert(line.find('\r') == std::string::npos);
    ck_assert_string_eq(member(line, "uri"),
                        "/a\"b\\c%0A{\"x\":1}%FF%C3%A9%25");
    ck_assert_string_eq(member(line, "host"), "h%0D%0AInjected: 1");
}
END_TEST

int main()
{
    Suite *suite = suite_create("audit");
    TCase *tc = tcase_create("line");
    tcase_add_test(tc, every_field_in_one_line);
    tcase_add_test(tc, empty_fields_are_null);
    tcase_add_test(tc, invalid_user_names_are_not_written);
    tcase_add_test(tc, quotes_controls_and_bytes_are_escaped);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
