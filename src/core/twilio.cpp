#include "twilio.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <climits>
#include <initializer_list>
#include <stdexcept>

#include "answer.h"
#include "keyring.h"
#include "page_template.h"

namespace twostep::twilio {

namespace {

constexpr std::size_t max_sid_bytes = 64;
constexpr std::size_t max_status_bytes = 32;

// Twilio's SIDs are two letters and 32 hex digits ("SM1f0e..."); those of
// compatible services differ (SignalWire's are UUIDs), so only what is
// safe in a URL path and a log is required.
bool valid_sid(std::string_view sid)
{
    return sid.size() >= 2 && sid.size() <= max_sid_bytes
        && std::all_of(sid.begin(), sid.end(), [](char c) {
               return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
                   || (c >= '0' && c <= '9') || c == '-';
           });
}

bool status_char(char c)
{
    return (c >= 'a' && c <= 'z') || c == '-' || c == '_';
}

Request make_request(const Credentials &c, std::string_view resource,
                     std::initializer_list<std::pair<std::string_view,
                                                     std::string_view>> form)
{
    if (!valid_account(c.account))
        throw std::invalid_argument("Twilio account SID is malformed");
    Request r;
    r.method = "POST";
    r.url = c.api + "/2010-04-01/Accounts/" + c.account + "/";
    r.url += resource;
    r.content_type = "application/x-www-form-urlencoded";
    for (const auto &[name, value] : form) {
        if (!r.body.empty())
            r.body += '&';
        r.body += url_encode(name);
        r.body += '=';
        r.body += url_encode(value);
    }
    r.authorization = "Basic " + base64_encode(c.account + ":" + c.token);
    return r;
}

std::string say(std::string_view language, std::string_view text)
{
    std::string out = "<Say";
    if (!language.empty())
        out += " language=\"" + xml_escape(language) + "\"";
    out += ">" + xml_escape(text) + "</Say>";
    return out;
}

Result failed(Failure failure, std::string_view message)
{
    Result r;
    r.failure = failure;
    r.message = clean_text(message, max_text_bytes);
    return r;
}

// A Message or Call resource: a sid, a known-shaped
// status, and no error; `dead` statuses mean it already failed.
Result parse_resource(long http_status, std::string_view body,
                      std::initializer_list<std::string_view> dead)
{
    JsonAnswer answer = open_json_answer(http_status, body, max_body_bytes,
                                         "message");
    if (answer.failure != AnswerFailure::none)
        return failed(as_failure<Failure>(answer.failure), answer.message);
    const JsonPtr &root = answer.root;
    const json_t *sid = json_object_get(root.get(), "sid");
    if (!json_is_string(sid) || !valid_sid(json_text(sid)))
        return failed(Failure::bad_shape, "\"sid\" missing or malformed");
    const json_t *status = json_object_get(root.get(), "status");
    std::string_view st = json_is_string(status) ? json_text(status) : "";
    if (st.empty() || st.size() > max_status_bytes
        || !std::all_of(st.begin(), st.end(), status_char))
        return failed(Failure::bad_shape, "\"status\" missing or malformed");
    // Messages carry error_code/error_message, null until something fails.
    const json_t *code = json_object_get(root.get(), "error_code");
    bool has_error = code != nullptr && !json_is_null(code);
    if (has_error || std::find(dead.begin(), dead.end(), st) != dead.end()) {
        std::string message = "status " + std::string(st);
        if (json_is_integer(code))
            message += ", error " + std::to_string(json_integer_value(code));
        else if (json_is_string(code))
            message += ", error " + std::string(json_text(code));
        const json_t *text = json_object_get(root.get(), "error_message");
        if (json_is_string(text))
            message += ": " + std::string(json_text(text));
        return failed(Failure::provider_error, message);
    }
    Result out;
    out.sid = json_text(sid);
    out.status = st;
    return out;
}

}  // namespace

bool valid_account(std::string_view account)
{
    return valid_sid(account);
}

Request send_message(const Credentials &c, std::string_view from,
                     std::string_view to, std::string_view body)
{
    return make_request(c, "Messages.json",
                        {{"To", to}, {"From", from}, {"Body", body}});
}

Request start_call(const Credentials &c, std::string_view from,
                   std::string_view to, std::string_view twiml)
{
    return make_request(c, "Calls.json",
                        {{"To", to}, {"From", from}, {"Twiml", twiml}});
}

std::string xml_escape(std::string_view text)
{
    std::string kept;
    kept.reserve(text.size());
    for (char c : text) {
        if (static_cast<unsigned char>(c) >= 0x20 || c == '\t' || c == '\n')
            kept += c;
    }
    // HTML's five entities are XML's too (&#39; for the apostrophe).
    return html_escape(kept);
}

std::string call_twiml(const CallScript &script)
{
    // The Say verbs sit inside the Gather so a key pressed while the call
    // still speaks is taken at once; saying it twice helps a user who
    // picked up late. Gather's default timeout (5 s) follows each pass.
    std::string speech = say(script.language, script.greeting)
        + say(script.language, script.prompt);
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
           "<Gather input=\"dtmf\" numDigits=\"1\" finishOnKey=\"\" "
           "actionOnEmptyResult=\"true\" method=\"POST\" action=\""
        + xml_escape(script.action_url) + "\">" + speech + speech
        + "</Gather></Response>";
}

std::string goodbye_twiml(std::string_view language, std::string_view text)
{
    return "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response>"
        + say(language, text) + "<Hangup/></Response>";
}

const char *failure_name(Failure f)
{
    if (const char *name = shared_failure_name(f))
        return name;
    switch (f) {
    case Failure::provider_error:
        return "provider_error";
    default:
        return "unknown";
    }
}

Result parse_message(long http_status, std::string_view body)
{
    return parse_resource(http_status, body,
                          {"failed", "undelivered", "canceled"});
}

Result parse_call(long http_status, std::string_view body)
{
    return parse_resource(http_status, body,
                          {"failed", "canceled", "busy", "no-answer"});
}

std::string signature(std::string_view token, std::string_view url,
                      const Fields &params)
{
    // Fields is a std::map: its names are already in byte order, which is
    // the order Twilio's own validators sort in.
    std::string data(url);
    for (const auto &[name, value] : params) {
        data += name;
        data += value;
    }
    if (token.size() > INT_MAX)
        throw std::invalid_argument("Twilio token too long");
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    if (!HMAC(EVP_sha1(), token.data(), static_cast<int>(token.size()),
              reinterpret_cast<const unsigned char *>(data.data()),
              data.size(), mac, &mac_len)
        || mac_len != 20)
        throw std::runtime_error("HMAC-SHA1 failed");
    return base64_encode(
        std::string_view(reinterpret_cast<const char *>(mac), mac_len));
}

bool signature_ok(std::string_view token, std::string_view url,
                  const Fields &params, std::string_view header)
{
    if (token.empty() || header.empty())
        return false;
    std::string want = signature(token, url, params);
    return header.size() == want.size()
        && CRYPTO_memcmp(header.data(), want.data(), want.size()) == 0;
}

const char *answer_name(Answer a)
{
    switch (a) {
    case Answer::malformed:
        return "malformed";
    case Answer::approve:
        return "approve";
    case Answer::deny:
        return "deny";
    case Answer::fraud:
        return "fraud";
    case Answer::no_input:
        return "no_input";
    }
    return "unknown";
}

Keypress parse_keypress(const Fields &form, std::string_view account)
{
    Keypress k;
    std::string_view account_sid = field(form, "AccountSid");
    std::string_view call_sid = field(form, "CallSid");
    if (account_sid.empty() || account_sid != account) {
        k.error = "AccountSid is not this account";
        return k;
    }
    if (!valid_sid(call_sid)) {
        k.error = "CallSid missing or malformed";
        return k;
    }
    std::string_view digits = field(form, "Digits");
    if (digits.size() > 1
        || (digits.size() == 1 && digits != "#" && digits != "*"
            && !(digits[0] >= '0' && digits[0] <= '9'))) {
        k.error = "Digits is not one key";
        return k;
    }
    k.call_sid = call_sid;
    k.answer = digits.empty() ? Answer::no_input
        : digits == "#"       ? Answer::approve
        : digits == "0"       ? Answer::fraud
                              : Answer::deny;
    return k;
}

}  // namespace twostep::twilio
