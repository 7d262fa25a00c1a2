// Twilio: X-Twilio-Signature against Twilio's documented vector and
// tampered variants, the request builders, the call's TwiML, and the
// parsers on Twilio's answers, on its keypress callback and on everything
// malformed.
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/form.h"
#include "core/twilio.h"
#include "core/user_store.h"
#include "unit.h"

using namespace twostep;
using namespace twostep::twilio;

#define ck_assert_failure(got, want) ck_assert_named(got, want, failure_name)
#define ck_assert_answer(got, want) ck_assert_named(got, want, answer_name)

namespace {

// https://www.twilio.com/docs/usage/security#validating-requests: the auth
// token 12345, this URL and these parameters give this signature.
const std::string doc_token = "12345";
const std::string doc_url = "https://mycompany.com/myapp.php?foo=1&bar=2";
const Fields doc_params = {{"CallSid", "CA1234567890ABCDE"},
                           {"Caller", "+14158675310"},
                           {"Digits", "1234"},
                           {"From", "+14158675310"},
                           {"To", "+18005551212"}};
const std::string doc_signature = "GvWf1cFY/Q7PnoempGyD5oXAezc=";

const std::string account = "AC0123456789abcdef0123456789abcdef";
const std::string token = "f00dfeedf00dfeedf00dfeedf00dfeed";
const Credentials creds = {"https://api.twilio.com", account, token};
const std::string call_sid = "CAfedcba9876543210fedcba9876543210";

// A keypress callback as Twilio sends it, and its signature computed by
// Python's hmac and base64 modules, independently of this code.
const std::string callback_url =
    "https://login.example.com/twostep/call?t=Zm9vYmFy";
const std::string callback_body =
    "AccountSid=AC0123456789abcdef0123456789abcdef&CallSid=CAfedcba98765432"
    "10fedcba9876543210&Digits=%23&From=%2B15550001111&To=%2B31612345678&"
    "CallStatus=in-progress&Direction=outbound-api&ApiVersion=2010-04-01";
const std::string callback_signature = "ihjwkeAMag9q0QscYf7cEsExL+Y=";

Fields form(const std::string &body)
{
    std::string error;
    auto fields = parse_form(body, error);
    ck_assert_msg(fields.has_value(), "parse_form: %s", error.c_str());
    return *fields;
}

Fields keypress(std::string_view digits)
{
    Fields f = {{"AccountSid", account}, {"CallSid", call_sid},
                {"CallStatus", "in-progress"}};
    f.emplace("Digits", std::string(digits));
    return f;
}

// A Message resource as Twilio answers POST .../Messages.json (trimmed).
const std::string message_created = R"({
  "account_sid": "AC0123456789abcdef0123456789abcdef",
  "api_version": "2010-04-01",
  "body": "Your Example sign-in code is 123456. Never share it.",
  "date_created": "Thu, 24 Aug 2023 05:01:45 +0000",
  "date_sent": null,
  "direction": "outbound-api",
  "error_code": null,
  "error_message": null,
  "from": "+15550001111",
  "num_segments": "1",
  "price": null,
  "sid": "SM1f0e8ae6ade43cb3c0ce4525424e404f",
  "status": "queued",
  "to": "+31612345678",
  "uri": "/2010-04-01/Accounts/AC0123456789abcdef0123456789abcdef/Messages/SM1f0e8ae6ade43cb3c0ce4525424e404f.json"
})";

const std::string call_created = R"({
  "account_sid": "AC0123456789abcdef0123456789abcdef",
  "answered_by": null,
  "direction": "outbound-api",
  "from": "+15550001111",
  "sid": "CAfedcba9876543210fedcba9876543210",
  "status": "queued",
  "to": "+31612345678"
})";

}  // namespace

START_TEST(signature_documented_vector)
{
    ck_assert_string_eq(signature(doc_token, doc_url, doc_params),
                        doc_signature);
    ck_assert(signature_ok(doc_token, doc_url, doc_params, doc_signature));
}
END_TEST

START_TEST(signature_independent_vector)
{
    Fields params = form(callback_body);
    ck_assert_string_eq(signature(token, callback_url, params),
                        callback_signature);
    ck_assert(signature_ok(token, callback_url, params, callback_signature));
}
END_TEST

START_TEST(signature_tampered)
{
    // Every part of what is signed matters.
    Fields digits = doc_params;
    digits["Digits"] = "1235";
    ck_assert(!signature_ok(doc_token, doc_url, digits, doc_signature));
    Fields extra = doc_params;
    extra["Extra"] = "";
    ck_assert(!signature_ok(doc_token, doc_url, extra, doc_signature));
    Fields fewer = doc_params;
    fewer.erase("Caller");
    ck_assert(!signature_ok(doc_token, doc_url, fewer, doc_signature));
    // Twilio's scheme has no separators: a name moved into its
    // neighbour's value signs the same. Harmless for the keypress, whose
    // Digits must stay one key (parse_keypress), but worth knowing.
    Fields moved = doc_params;
    moved.erase("To");
    moved["From"] = "+14158675310To+18005551212";
    ck_assert_string_eq(signature(doc_token, doc_url, moved), doc_signature);

    for (std::string url : {"http://mycompany.com/myapp.php?foo=1&bar=2",
                            "https://mycompany.com/myapp.php?foo=1&bar=3",
                            "https://mycompany.com:443/myapp.php?foo=1&bar=2",
                            "https://mycompany.com/myapp.php"})
        ck_assert_msg(!signature_ok(doc_token, url, doc_params,
                                    doc_signature),
                      "%s verified", url.c_str());
    ck_assert(!signature_ok("12346", doc_url, doc_params, doc_signature));
    ck_assert(!signature_ok("", doc_url, doc_params, doc_signature));

    for (std::string header : {"", "GvWf1cFY/Q7PnoempGyD5oXAezc",
                               "GvWf1cFY/Q7PnoempGyD5oXAezc==",
                               "gvWf1cFY/Q7PnoempGyD5oXAezc=",
                               "GvWf1cFY_Q7PnoempGyD5oXAezc=",
                               " GvWf1cFY/Q7PnoempGyD5oXAezc=",
                               "HvWf1cFY/Q7PnoempGyD5oXAezc="})
        ck_assert_msg(!signature_ok(doc_token, doc_url, doc_params, header),
                      "'%s' verified", header.c_str());
}
END_TEST

START_TEST(build_message)
{
    Request r = send_message(creds, "+15550001111", "+31612345678",
                             "Your code is 123456 & never share it");
    ck_assert_string_eq(r.method, "POST");
    ck_assert_string_eq(r.url,
                        "https://api.twilio.com/2010-04-01/Accounts/"
                        "AC0123456789abcdef0123456789abcdef/Messages.json");
    ck_assert_string_eq(r.content_type, "application/x-www-form-urlencoded");
    ck_assert_string_eq(r.body,
                        "To=%2B31612345678&From=%2B15550001111&Body=Your%20"
                        "code%20is%20123456%20%26%20never%20share%20it");
    // base64 of account:token by Python's base64 module.
    ck_assert_string_eq(r.authorization,
                        "Basic QUMwMTIzNDU2Nzg5YWJjZGVmMDEyMzQ1Njc4OWFiY2Rl"
                        "ZjpmMDBkZmVlZGYwMGRmZWVkZjAwZGZlZWRmMDBkZmVlZA==");
    // The body parses back to exactly what was meant.
    Fields f = form(r.body);
    ck_assert_uint_eq(f.size(), 3);
    ck_assert_string_eq(field(f, "Body"),
                        "Your code is 123456 & never share it");
}
END_TEST

START_TEST(build_call)
{
    Credentials other = {"http://127.0.0.1:9300", account, token};
    Request r = start_call(other, "+15550001111", "+31612345678",
                           "<Response><Say>Hi</Say></Response>");
    ck_assert_string_eq(r.url,
                        "http://127.0.0.1:9300/2010-04-01/Accounts/"
                        "AC0123456789abcdef0123456789abcdef/Calls.json");
    Fields f = form(r.body);
    ck_assert_string_eq(field(f, "To"), "+31612345678");
    ck_assert_string_eq(field(f, "From"), "+15550001111");
    ck_assert_string_eq(field(f, "Twiml"),
                        "<Response><Say>Hi</Say></Response>");

    Credentials bad = {"https://api.twilio.com", "AC/../../x", token};
    ck_assert(!valid_account(bad.account));
    bool threw = false;
    try {
        send_message(bad, "+1", "+2", "x");
    } catch (const std::invalid_argument &) {
        threw = true;
    }
    ck_assert(threw);
    ck_assert(valid_account(account));
    ck_assert(valid_account("b3877c40-da60-4998-90ad-b792e98472af"));
    ck_assert(!valid_account(""));
    ck_assert(!valid_account("AC?x=1"));
    ck_assert(!valid_account(std::string(65, 'a')));
}
END_TEST

START_TEST(twiml_call)
{
    CallScript s;
    s.language = "en-US";
    s.greeting = "alice is signing in to <Example & \"Co\">.";
    s.prompt = "To approve, press the pound key. Otherwise, press any "
               "other key.";
    s.action_url = "https://login.example.com/twostep/call?t=a&u=b";
    std::string speech =
        "<Say language=\"en-US\">alice is signing in to &lt;Example &amp; "
        "&quot;Co&quot;&gt;.</Say><Say language=\"en-US\">To approve, press "
        "the pound key. Otherwise, press any other key.</Say>";
    ck_assert_string_eq(
        call_twiml(s),
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
        "<Gather input=\"dtmf\" numDigits=\"1\" finishOnKey=\"\" "
        "actionOnEmptyResult=\"true\" method=\"POST\" "
        "action=\"https://login.example.com/twostep/call?t=a&amp;u=b\">"
            + speech + speech + "</Gather></Response>");

    s.language.clear();
    ck_assert(call_twiml(s).find("<Say>alice is") != std::string::npos);

    ck_assert_string_eq(goodbye_twiml("de-DE", "Danke. Auf Wiederhören."),
                        "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
                        "<Say language=\"de-DE\">Danke. Auf Wiederhören."
                        "</Say><Hangup/></Response>");
}
END_TEST

START_TEST(xml_escaping)
{
    ck_assert_string_eq(xml_escape("a&b<c>d\"e'f"),
                        "a&amp;b&lt;c&gt;d&quot;e&#39;f");
    ck_assert_string_eq(xml_escape(std::string("x\0y\x01z\tq\n", 9)),
                        "xyz\tq\n");
    ck_assert_string_eq(xml_escape("&amp;"), "&amp;amp;");
    ck_assert_string_eq(xml_escape("Zoë"), "Zoë");
}
END_TEST

START_TEST(message_good)
{
    Result r = parse_message(201, message_created);
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.sid, "SM1f0e8ae6ade43cb3c0ce4525424e404f");
    ck_assert_string_eq(r.status, "queued");
    ck_assert_string_eq(r.message, "");

    // SignalWire's compatibility API: UUIDs, same shape.
    r = parse_message(201, R"({"sid": "b3877c40-da60-4998-90ad-b792e98472af",
        "status": "queued", "error_code": null})");
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.sid, "b3877c40-da60-4998-90ad-b792e98472af");
}
END_TEST

START_TEST(message_bad)
{
    struct Case {
        long status;
        std::string body;
        Failure failure;
        std::string message;
    };
    const Case cases[] = {
        {400,
         R"({"code": 21211, "message": "The 'To' number +3161 is not a valid phone number.", "more_info": "https://www.twilio.com/docs/errors/21211", "status": 400})",
         Failure::http_status,
         "HTTP 400: 21211 The 'To' number +3161 is not a valid phone "
         "number."},
        {401,
         R"({"code": 20003, "detail": "Your AccountSid or AuthToken was incorrect.", "message": "Authenticate", "more_info": "https://www.twilio.com/docs/errors/20003", "status": 401})",
         Failure::http_status, "HTTP 401: 20003 Authenticate"},
        {429, R"({"code": 20429, "message": "Too Many Requests"})",
         Failure::rate_limited, "HTTP 429: 20429 Too Many Requests"},
        {503, "<html>Service Unavailable</html>", Failure::http_status,
         "HTTP 503"},
        {302, "", Failure::http_status, "HTTP 302"},
        {201, "", Failure::not_json, "response is not JSON (line 0, column 0)"},
        {201, "{\"sid\": \"SM1\"", Failure::not_json, ""},
        {201, "[]", Failure::bad_shape, "response is not a JSON object"},
        {201, "\"queued\"", Failure::not_json, ""},
        {201, R"({"status": "queued"})", Failure::bad_shape,
         "\"sid\" missing or malformed"},
        {201, R"({"sid": 12, "status": "queued"})", Failure::bad_shape,
         "\"sid\" missing or malformed"},
        {201, R"({"sid": "SM/../x", "status": "queued"})", Failure::bad_shape,
         "\"sid\" missing or malformed"},
        {201, R"({"sid": "SMab", "status": "queued", "sid": "SMcd"})",
         Failure::not_json, ""},
        {201, R"({"sid": "SMab"})", Failure::bad_shape,
         "\"status\" missing or malformed"},
        {201, R"({"sid": "SMab", "status": "Queued!"})", Failure::bad_shape,
         "\"status\" missing or malformed"},
        {201,
         R"({"sid": "SMab", "status": "failed", "error_code": 30006, "error_message": "Landline or unreachable carrier"})",
         Failure::provider_error,
         "status failed, error 30006: Landline or unreachable carrier"},
        {201, R"({"sid": "SMab", "status": "undelivered"})",
         Failure::provider_error, "status undelivered"},
        {201, R"({"sid": "SMab", "status": "queued", "error_code": "21610"})",
         Failure::provider_error, "status queued, error 21610"},
    };
    for (const Case &c : cases) {
        Result r = parse_message(c.status, c.body);
        ck_assert_msg(r.failure == c.failure, "%s: got %s, want %s",
                      c.body.c_str(), failure_name(r.failure),
                      failure_name(c.failure));
        if (!c.message.empty())
            ck_assert_string_eq(r.message, c.message);
        else
            ck_assert(!r.message.empty());
        ck_assert_string_eq(r.sid, "");
        ck_assert_string_eq(r.status, "");
    }
}
END_TEST

START_TEST(call_good_and_bad)
{
    Result r = parse_call(201, call_created);
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.sid, call_sid);
    ck_assert_string_eq(r.status, "queued");
    r = parse_call(201, R"({"sid": "CAab", "status": "in-progress"})");
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.status, "in-progress");
    for (const char *dead : {"failed", "canceled", "busy", "no-answer"}) {
        r = parse_call(201, std::string(R"({"sid": "CAab", "status": ")")
                                + dead + "\"}");
        ck_assert_failure(r.failure, Failure::provider_error);
        ck_assert_string_eq(r.sid, "");
    }
    ck_assert_failure(parse_call(200, "{}").failure, Failure::bad_shape);
    ck_assert_failure(parse_call(500, call_created).failure,
                      Failure::http_status);
}
END_TEST

START_TEST(text_is_cleaned_and_bounded)
{
    Result r = parse_message(
        400, "{\"code\": 1, \"message\": \"a\\u0001b\\nc\\u202ed\\u2028e\"}");
    ck_assert_string_eq(r.message, "HTTP 400: 1 a b c d e");
    std::string big(1000, 'x');
    r = parse_message(400, "{\"message\": \"" + big + "\"}");
    ck_assert_uint_eq(r.message.size(), max_text_bytes);
    std::string huge = "{\"sid\": \"SMab\", \"status\": \"queued\", \"p\": \""
        + std::string(max_body_bytes, ' ') + "\"}";
    ck_assert_failure(parse_message(201, huge).failure, Failure::bad_shape);
    ck_assert_failure(parse_message(400, huge).failure, Failure::http_status);
}
END_TEST

START_TEST(keypress_answers)
{
    ck_assert_answer(parse_keypress(keypress("#"), account).answer,
                     Answer::approve);
    ck_assert_answer(parse_keypress(keypress("0"), account).answer,
                     Answer::fraud);
    for (const char *key : {"1", "2", "5", "9", "*"})
        ck_assert_answer(parse_keypress(keypress(key), account).answer,
                         Answer::deny);
    ck_assert_answer(parse_keypress(keypress(""), account).answer,
                     Answer::no_input);
    Fields none = keypress("");
    none.erase("Digits");
    ck_assert_answer(parse_keypress(none, account).answer, Answer::no_input);

    Keypress k = parse_keypress(form(callback_body), account);
    ck_assert_answer(k.answer, Answer::approve);
    ck_assert_string_eq(k.call_sid, call_sid);
    ck_assert_string_eq(k.error, "");
}
END_TEST

START_TEST(keypress_malformed)
{
    for (const char *digits : {"##", "12", "a", "#1", " ", "+", "\xd9\xa1"}) {
        Keypress k = parse_keypress(keypress(digits), account);
        ck_assert_answer(k.answer, Answer::malformed);
        ck_assert_string_eq(k.call_sid, "");
        ck_assert_string_eq(k.error, "Digits is not one key");
    }
    Keypress k = parse_keypress(keypress("#"),
                                "AC00000000000000000000000000000000");
    ck_assert_answer(k.answer, Answer::malformed);
    ck_assert_string_eq(k.error, "AccountSid is not this account");
    ck_assert_answer(parse_keypress(keypress("#"), "").answer,
                     Answer::malformed);
    Fields f = keypress("#");
    f.erase("AccountSid");
    ck_assert_answer(parse_keypress(f, account).answer, Answer::malformed);
    f = keypress("#");
    f["CallSid"] = "CA<script>";
    k = parse_keypress(f, account);
    ck_assert_answer(k.answer, Answer::malformed);
    ck_assert_string_eq(k.error, "CallSid missing or malformed");
    f.erase("CallSid");
    ck_assert_answer(parse_keypress(f, account).answer, Answer::malformed);
}
END_TEST

START_TEST(names)
{
    ck_assert_string_eq(failure_name(Failure::provider_error),
                        "provider_error");
    ck_assert_string_eq(failure_name(Failure::rate_limited), "rate_limited");
    ck_assert_string_eq(answer_name(Answer::fraud), "fraud");
    ck_assert_string_eq(answer_name(Answer::no_input), "no_input");
}
END_TEST

// Texts and calls through the provider interface: the portal's texts go
// out as they are, to the user's phone, from the configured number.
START_TEST(provider_requests)
{
    Provider twilio(creds, "+15550001111");
    const OutOfBandProvider &provider = twilio;
    ck_assert(provider.self_hosted());
    ck_assert_uint_eq(provider.methods(),
                      method_bit(Method::call) | method_bit(Method::sms));
    User alice;
    alice.name = "alice";
    alice.phone = "+31612345678";
    OutOfBandMessage msg;
    msg.text = "Example code: 123456";
    ProviderRequest text = provider.send_code(alice, msg, 0);
    Request direct = send_message(creds, "+15550001111", "+31612345678",
                                  "Example code: 123456");
    ck_assert(text.post);
    ck_assert_string_eq(text.url, direct.url);
    ck_assert_string_eq(text.body, direct.body);
    ck_assert_uint_eq(text.headers.size(), 2);
    ck_assert_string_eq(text.headers[0],
                        "Authorization: " + direct.authorization);

    msg.text = "alice is signing in.";
    msg.prompt = "Press the pound key.";
    msg.language = "en-US";
    msg.callback_url = "https://login.example.com/.twostep/call?t=x";
    ProviderRequest call = provider.start(alice, Method::call, "", msg, 0);
    CallScript script{"en-US", msg.text, msg.prompt, msg.callback_url};
    ck_assert_string_eq(call.body,
                        start_call(creds, "+15550001111", "+31612345678",
                                   call_twiml(script)).body);
    ck_assert_int_eq(0, [&] {
        try {
            provider.start(alice, Method::push, "", msg, 0);
            return 1;
        } catch (const std::logic_error &) {
            return 0;
        }
    }());

    // Accepted: "sent"; Twilio's errors fail closed, never "allow".
    ProviderAnswer ok = provider.read_send_code(201, message_created);
    ck_assert(ok.failure == ProviderFailure::none);
    ck_assert_string_eq(ok.status, "sent");
    ck_assert(ok.result.empty());
    ck_assert(provider.read_start(201, call_created).failure
              == ProviderFailure::none);
    ck_assert(provider.read_send_code(429, "{}").failure
              == ProviderFailure::rate_limited);
    ck_assert(provider.read_send_code(500, "{}").failure
              == ProviderFailure::http_status);
    ck_assert(provider.read_start(201, "nope").failure
              == ProviderFailure::not_json);
    // Never asked what a user has, for a status or to check a code.
    ck_assert(provider.offer(alice, 0).url.empty());
    ck_assert(provider.read_status(200, "{}").failure
              != ProviderFailure::none);
    ck_assert(provider.read_check_code(200, "{}").failure
              != ProviderFailure::none);
    ck_assert(provider.read_offer(200, "{}").failure
              != ProviderFailure::none);
}
END_TEST

int main()
{
    Suite *suite = suite_create("twilio");
    TCase *signing = tcase_create("signature");
    tcase_add_test(signing, signature_documented_vector);
    tcase_add_test(signing, signature_independent_vector);
    tcase_add_test(signing, signature_tampered);
    suite_add_tcase(suite, signing);

    TCase *builders = tcase_create("builders");
    tcase_add_test(builders, build_message);
    tcase_add_test(builders, build_call);
    tcase_add_test(builders, twiml_call);
    tcase_add_test(builders, xml_escaping);
    suite_add_tcase(suite, builders);

    TCase *parsing = tcase_create("parsing");
    tcase_add_test(parsing, message_good);
    tcase_add_test(parsing, message_bad);
    tcase_add_test(parsing, call_good_and_bad);
    tcase_add_test(parsing, text_is_cleaned_and_bounded);
    tcase_add_test(parsing, keypress_answers);
    tcase_add_test(parsing, keypress_malformed);
    tcase_add_test(parsing, names);
    tcase_add_test(parsing, provider_requests);
    suite_add_tcase(suite, parsing);
    return run_suite(suite);
}
