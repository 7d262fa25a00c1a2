// Twilio's REST API (text messages and phone calls) without I/O: requests to
// hand to an HTTP client, the TwiML a call speaks, fail-closed parsing of
// Twilio's answers and of the callback a call's keypress sends, and the
// X-Twilio-Signature check (https://www.twilio.com/docs/usage/security).
// SignalWire's compatibility API and other Twilio-compatible services speak
// the same protocol under another base URL.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "form.h"
#include "provider.h"

namespace twostep::twilio {

struct Credentials {
    std::string api;      // "https://api.twilio.com", no trailing '/'
    std::string account;  // Account SID ("AC" + 32 hex digits at Twilio)
    std::string token;    // Auth Token: the Basic password and the HMAC key
};

// SIDs (accounts, messages, calls): 2 to 64 of [A-Za-z0-9-]. Twilio's are
// "AC"/"SM"/"CA" and 32 hex digits; compatible services use other shapes
// (SignalWire: UUIDs), so only what is safe in a URL and a log is checked.
bool valid_account(std::string_view account);

struct Request {
    std::string method;         // "POST"
    std::string url;            // {api}/2010-04-01/Accounts/{account}/...
    std::string content_type;   // application/x-www-form-urlencoded
    std::string body;           // the form
    std::string authorization;  // "Basic " base64(account:token)
};

// POST .../Messages.json with To, From and Body.
Request send_message(const Credentials &c, std::string_view from,
                     std::string_view to, std::string_view body);
// POST .../Calls.json with To, From and the call's TwiML inline (Twiml).
Request start_call(const Credentials &c, std::string_view from,
                   std::string_view to, std::string_view twiml);

// What a call says; the texts come from the caller, translated.
struct CallScript {
    std::string language;    // Say's language ("en-US"); empty: Twilio's
    std::string greeting;    // "Alice is signing in to Example Portal."
    std::string prompt;      // "To approve, press the pound key. ..."
    std::string action_url;  // where Twilio POSTs the keypress
};
// <Gather numDigits="1" finishOnKey=""> so that '#' arrives as a digit
// instead of ending the input, actionOnEmptyResult so that silence is
// reported too, the greeting and prompt said twice, all XML-escaped.
std::string call_twiml(const CallScript &script);
// The answer to the keypress callback: say `text`, then hang up.
std::string goodbye_twiml(std::string_view language, std::string_view text);

// html_escape() (OWASP ASVS 5.3.1), after dropping every control character
// but tab and newline (XML 1.0 cannot carry them).
std::string xml_escape(std::string_view text);

enum class Failure {
    none,
    http_status,     // not 2xx (and not 429)
    rate_limited,    // HTTP 429 (Twilio's 20429 and friends)
    not_json,        // unparsable (duplicates, NUL, invalid UTF-8 included)
    bad_shape,       // too large, not an object, missing or malformed sid
                     // or status
    provider_error,  // 2xx but the message or call already failed
};
const char *failure_name(Failure f);

constexpr std::size_t max_body_bytes = 64 * 1024;
constexpr std::size_t max_text_bytes = 200;

// The parsers never throw (beyond std::bad_alloc). On a failure only
// `failure` and `message` are set; `message` (clean, at most
// max_text_bytes) is for the log and carries Twilio's error code and text.
struct Result {
    Failure failure = Failure::none;
    std::string sid;     // see valid_account()
    std::string status;  // [a-z-]+: "queued", "accepted", "ringing", ...
    std::string message;
};
Result parse_message(long http_status, std::string_view body);
Result parse_call(long http_status, std::string_view body);

// Base64 HMAC-SHA1, keyed with the Auth Token, over `url` followed by each
// POST parameter's name and value, sorted by name. Throws
// std::runtime_error if OpenSSL fails.
std::string signature(std::string_view token, std::string_view url,
                      const Fields &params);
// True if `header` (X-Twilio-Signature) is signature(token, url, params),
// compared in constant time. An empty token or header never verifies.
bool signature_ok(std::string_view token, std::string_view url,
                  const Fields &params, std::string_view header);

// The keypress callback of call_twiml()'s Gather. '#' approves, '0'
// reports fraud, any other key denies, nothing pressed is no_input.
enum class Answer { malformed, approve, deny, fraud, no_input };
const char *answer_name(Answer a);

struct Keypress {
    Answer answer = Answer::malformed;
    std::string call_sid;  // see valid_account()
    std::string error;     // why it is malformed, for the log
};
// Checks AccountSid against `account` and the shape of CallSid and Digits;
// anything else gives Answer::malformed and a reason. The signature is
// checked separately, on the same fields, before this is believed.
Keypress parse_keypress(const Fields &form, std::string_view account);

// Text messages and calls as an out-of-band provider (provider.h): a
// text carries msg.text (which holds the portal's code); a call says
// msg.text and msg.prompt and POSTs the keypress to msg.callback_url.
class Provider final : public SelfHostedProvider {
public:
    Provider(Credentials credentials, std::string from);

    MethodSet methods() const override;
    ProviderRequest start(const User &user, Method m,
                          std::string_view client_ip,
                          const OutOfBandMessage &msg,
                          std::int64_t now) const override;
    ProviderAnswer read_start(long http_status,
                              std::string_view body) const override;
    ProviderRequest send_code(const User &user, const OutOfBandMessage &msg,
                              std::int64_t now) const override;
    ProviderAnswer read_send_code(long http_status,
                                  std::string_view body) const override;

    const Credentials &credentials() const { return credentials_; }

private:
    Credentials credentials_;
    std::string from_;
};

}  // namespace twostep::twilio
