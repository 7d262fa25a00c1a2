// ntfy: the publish request with its action buttons, the parser on ntfy's
// answers and on everything malformed, topics and capability tokens, and
// number matching.
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/ntfy.h"
#include "core/user_store.h"
#include "unit.h"

using namespace twostep;
using namespace twostep::ntfy;

#define ck_assert_failure(got, want) ck_assert_named(got, want, failure_name)
#define ck_assert_match(got, want) ck_assert_named(got, want, match_name)

namespace {

bool url_safe(const std::string &s)
{
    for (char c : s) {
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-' || c == '_'))
            return false;
    }
    return true;
}

Notification sign_in_push()
{
    Notification n;
    n.topic = "Xk3_9aZ-0bQvLm2PqR7sTuWy";
    n.title = "Sign-in to Example Portal";
    n.message = "alice is signing in from 203.0.113.7 at 14:05 UTC.\n"
                "Not you? Tap \"Deny\".";
    n.tags = {"key"};
    n.actions = approval_actions(
        "Approve", "https://login.example.com/twostep/push?t=APPROVE",
        "Deny", "https://login.example.com/twostep/push/deny?t=DENY");
    return n;
}

bool throws(const Server &s, const Notification &n)
{
    try {
        publish(s, n);
    } catch (const std::invalid_argument &) {
        return true;
    }
    return false;
}

}  // namespace

START_TEST(publish_request)
{
    Server s = {"https://ntfy.example.com", "tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2"};
    Request r = publish(s, sign_in_push());
    ck_assert_string_eq(r.method, "POST");
    ck_assert_string_eq(r.url, "https://ntfy.example.com/");
    ck_assert_string_eq(r.content_type, "application/json");
    ck_assert_string_eq(r.authorization,
                        "Bearer tk_AgQdq7mVBoFD37zQVN29RhuMzNIz2");
    // ntfy's JSON publishing format (docs.ntfy.sh/publish/#publish-as-json),
    // with the action buttons as objects; keys sorted, so stable.
    ck_assert_string_eq(
        r.body,
        "{\"actions\":[{\"action\":\"view\",\"clear\":true,\"label\":"
        "\"Approve\",\"url\":\"https://login.example.com/twostep/push?t="
        "APPROVE\"},{\"action\":\"http\",\"clear\":true,\"label\":\"Deny\","
        "\"method\":\"POST\",\"url\":\"https://login.example.com/twostep/"
        "push/deny?t=DENY\"}],\"message\":\"alice is signing in from "
        "203.0.113.7 at 14:05 UTC.\\nNot you? Tap \\\"Deny\\\".\","
        "\"priority\":4,\"tags\":[\"key\"],\"title\":\"Sign-in to Example "
        "Portal\",\"topic\":\"Xk3_9aZ-0bQvLm2PqR7sTuWy\"}");

    s.token.clear();
    ck_assert_string_eq(publish(s, sign_in_push()).authorization, "");
}
END_TEST

START_TEST(publish_refuses)
{
    Server s = {"https://ntfy.example.com", ""};
    Notification n = sign_in_push();
    n.topic = "a/b";
    ck_assert(throws(s, n));
    n = sign_in_push();
    n.priority = 6;
    ck_assert(throws(s, n));
    n = sign_in_push();
    n.actions.push_back(n.actions[0]);
    n.actions.push_back(n.actions[0]);
    ck_assert(throws(s, n));
    n = sign_in_push();
    n.actions[0].kind = "broadcast";
    ck_assert(throws(s, n));
    n = sign_in_push();
    n.actions[1].method.clear();  // an http action needs its method
    ck_assert(throws(s, n));
    n = sign_in_push();
    n.message = "\xff\xfe";  // not UTF-8
    ck_assert(throws(s, n));
}
END_TEST

START_TEST(topics_and_tokens)
{
    std::set<std::string> seen;
    for (int i = 0; i < 100; i++) {
        std::string topic = new_topic();
        ck_assert_uint_eq(topic.size(), 24);  // 144 bits
        ck_assert(valid_topic(topic));
        std::string cap = new_capability();
        ck_assert_uint_eq(cap.size(), capability_chars);  // 192 bits
        ck_assert(url_safe(cap));
        ck_assert(seen.insert(topic).second);
        ck_assert(seen.insert(cap).second);
    }
    ck_assert(valid_topic("mytopic"));
    ck_assert(valid_topic(std::string(64, 'a')));
    ck_assert(!valid_topic(std::string(65, 'a')));
    ck_assert(!valid_topic(""));
    ck_assert(!valid_topic("my topic"));
    ck_assert(!valid_topic("a.b"));

    std::string cap = new_capability();
    ck_assert(capability_ok(cap, cap));
    ck_assert(!capability_ok(cap, cap.substr(1)));
    ck_assert(!capability_ok(cap, cap + "x"));
    std::string other = cap;
    other[5] = other[5] == 'A' ? 'B' : 'A';
    ck_assert(!capability_ok(cap, other));
    ck_assert(!capability_ok("", ""));
}
END_TEST

// The set-up page's QR code: the ntfy app's own link (docs.ntfy.sh,
// "ntfy:// links"), secure=false only for a plain-http server.
START_TEST(subscribe_links)
{
    std::string link = subscribe_link("https://ntfy.example.com", "abc_D-9");
    ck_assert_str_eq(link.c_str(), "ntfy://ntfy.example.com/abc_D-9");
    link = subscribe_link("http://127.0.0.1:9400/", "t");
    ck_assert_str_eq(link.c_str(), "ntfy://127.0.0.1:9400/t?secure=false");
    link = topic_url("https://ntfy.example.com/", "abc");
    ck_assert_str_eq(link.c_str(), "https://ntfy.example.com/abc");
    link = topic_url("http://127.0.0.1:9400", "abc");
    ck_assert_str_eq(link.c_str(), "http://127.0.0.1:9400/abc");
    for (const char *bad_url : {"ftp://x", "https://", "ntfy.example.com"}) {
        try {
            subscribe_link(bad_url, "abc");
            ck_abort_msg("accepted %s", bad_url);
        } catch (const std::invalid_argument &) {
        }
    }
    for (const char *bad_topic : {"", "a/b", "a?b", "a b"}) {
        try {
            topic_url("https://ntfy.example.com", bad_topic);
            ck_abort_msg("accepted topic %s", bad_topic);
        } catch (const std::invalid_argument &) {
        }
    }
}
END_TEST

START_TEST(match_numbers)
{
    // 9000 draws from 90 values: each value shows up (a value missing has
    // a chance of about 90 * e^-100), and none is outside 10..99.
    std::vector<int> count(100, 0);
    for (int i = 0; i < 9000; i++) {
        int n = new_match_number();
        ck_assert_int_ge(n, 10);
        ck_assert_int_le(n, 99);
        count[n]++;
    }
    for (int n = 10; n <= 99; n++)
        ck_assert_msg(count[n] > 0, "%d never drawn", n);
}
END_TEST

START_TEST(match_check)
{
    ck_assert_match(check_match(42, "42"), Match::approve);
    ck_assert_match(check_match(42, " 42 "), Match::approve);
    ck_assert_match(check_match(10, "10"), Match::approve);
    ck_assert_match(check_match(99, "99"), Match::approve);
    ck_assert_match(check_match(42, "24"), Match::wrong_number);
    ck_assert_match(check_match(42, "43"), Match::wrong_number);
    for (const char *typed : {"", "4", "042", "4 2", "+42", "4a", "09",
                              "\xd9\xa4\xd9\xa2", "42\n"})
        ck_assert_match(check_match(42, typed), Match::unreadable);
    // An expected number out of range never approves.
    ck_assert_match(check_match(0, "00"), Match::unreadable);
    ck_assert_match(check_match(100, "10"), Match::wrong_number);
}
END_TEST

START_TEST(publish_answer_good)
{
    // As ntfy answers a publish, newline included.
    Result r = parse_publish(200,
                             "{\"id\":\"sPs71M8A2T\",\"time\":1643935928,"
                             "\"expires\":1643979128,\"event\":\"message\","
                             "\"topic\":\"mytopic\",\"message\":\"hi\"}\n");
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.id, "sPs71M8A2T");
}
END_TEST

START_TEST(publish_answer_bad)
{
    struct Case {
        long status;
        std::string body;
        Failure failure;
        std::string message;
    };
    const Case cases[] = {
        {403,
         R"({"code":40301,"http":403,"error":"forbidden","link":"https://ntfy.sh/docs/publish/#authentication"})",
         Failure::http_status, "HTTP 403: 40301 forbidden"},
        {401, R"({"code":40101,"http":401,"error":"unauthorized"})",
         Failure::http_status, "HTTP 401: 40101 unauthorized"},
        {429,
         R"({"code":42901,"http":429,"error":"limit reached: too many requests"})",
         Failure::rate_limited,
         "HTTP 429: 42901 limit reached: too many requests"},
        {502, "Bad Gateway", Failure::http_status, "HTTP 502"},
        {200, "", Failure::not_json, "response is not JSON (line 0, column 0)"},
        {200, "{\"id\":", Failure::not_json, ""},
        {200, "[1]", Failure::bad_shape, "response is not a JSON object"},
        {200, R"({"event":"message"})", Failure::bad_shape,
         "\"id\" missing or malformed"},
        {200, R"({"id":"a b","event":"message"})", Failure::bad_shape,
         "\"id\" missing or malformed"},
        {200, R"({"id":"abc","event":"keepalive"})", Failure::bad_shape,
         "\"event\" is not \"message\""},
        {200, R"({"id":"abc"})", Failure::bad_shape,
         "\"event\" is not \"message\""},
        {200, R"({"id":"abc","event":"message","id":"def"})",
         Failure::not_json, ""},
    };
    for (const Case &c : cases) {
        Result r = parse_publish(c.status, c.body);
        ck_assert_msg(r.failure == c.failure, "%s: got %s, want %s",
                      c.body.c_str(), failure_name(r.failure),
                      failure_name(c.failure));
        if (!c.message.empty())
            ck_assert_string_eq(r.message, c.message);
        else
            ck_assert(!r.message.empty());
        ck_assert_string_eq(r.id, "");
    }
    std::string huge = "{\"id\":\"abc\",\"event\":\"message\",\"m\":\""
        + std::string(max_body_bytes, 'x') + "\"}";
    ck_assert_failure(parse_publish(200, huge).failure, Failure::bad_shape);
    Result r = parse_publish(
        400, "{\"code\":1,\"error\":\"" + std::string(500, 'e') + "\\u001b[31m\"}");
    ck_assert_uint_eq(r.message.size(), max_text_bytes);
}
END_TEST

// Push through the provider interface: to the user's topic, with the
// portal's texts and links as the Approve and Deny buttons.
START_TEST(provider_requests)
{
    Provider ntfy(Server{"https://ntfy.example.com", "tk_secret"});
    const OutOfBandProvider &provider = ntfy;
    ck_assert(provider.self_hosted());
    ck_assert_uint_eq(provider.methods(), method_bit(Method::push));
    User alice;
    alice.name = "alice";
    alice.ntfy_topic = "Xk3_9aZ-0bQvLm2PqR7sTuWy";
    OutOfBandMessage msg;
    msg.title = "Sign in to Example?";
    msg.text = "alice is signing in.";
    msg.approve_label = "Approve";
    msg.approve_url = "https://login.example.com/.twostep/approve?t=A";
    msg.deny_label = "Deny";
    msg.deny_url = "https://login.example.com/.twostep/deny?t=A";
    ProviderRequest r = provider.start(alice, Method::push, "", msg, 0);
    Notification n;
    n.topic = alice.ntfy_topic;
    n.title = msg.title;
    n.message = msg.text;
    n.tags = {"lock"};
    n.actions = approval_actions("Approve", msg.approve_url, "Deny",
                                 msg.deny_url);
    ck_assert(r.post);
    ck_assert_string_eq(r.url, "https://ntfy.example.com/");
    ck_assert_string_eq(r.body,
                        publish(Server{"https://ntfy.example.com", ""}, n)
                            .body);
    ck_assert_uint_eq(r.headers.size(), 2);
    ck_assert_string_eq(r.headers[1], "Authorization: Bearer tk_secret");

    alice.ntfy_topic = "bad topic";
    ck_assert_int_eq(0, [&] {
        try {
            provider.start(alice, Method::push, "", msg, 0);
            return 1;
        } catch (const std::invalid_argument &) {
            return 0;
        }
    }());

    ProviderAnswer ok = provider.read_start(200,
        R"({"id":"hwQ2YpKdmg","time":1,"event":"message","topic":"t"})");
    ck_assert(ok.failure == ProviderFailure::none);
    ck_assert_string_eq(ok.status, "sent");
    ck_assert(ok.result.empty());
    ck_assert(provider.read_start(429, "{}").failure
              == ProviderFailure::rate_limited);
    ck_assert(provider.read_start(200, "[]").failure
              == ProviderFailure::bad_shape);
    ck_assert(provider.read_send_code(200, "{}").failure
              != ProviderFailure::none);
}
END_TEST

int main()
{
    Suite *suite = suite_create("ntfy");
    TCase *building = tcase_create("publish");
    tcase_add_test(building, publish_request);
    tcase_add_test(building, publish_refuses);
    suite_add_tcase(suite, building);

    TCase *secrets = tcase_create("secrets");
    tcase_add_test(secrets, topics_and_tokens);
    tcase_add_test(secrets, match_numbers);
    tcase_add_test(secrets, subscribe_links);
    tcase_add_test(secrets, match_check);
    suite_add_tcase(suite, secrets);

    TCase *parsing = tcase_create("parsing");
    tcase_add_test(parsing, publish_answer_good);
    tcase_add_test(parsing, publish_answer_bad);
    tcase_add_test(parsing, provider_requests);
    suite_add_tcase(suite, parsing);
    return run_suite(suite);
}
