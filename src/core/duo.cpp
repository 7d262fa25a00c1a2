#include "duo.h"

#include <jansson.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cstdio>
#include <initializer_list>
#include <memory>
#include <stdexcept>

#include "answer.h"
#include "form.h"
#include "keyring.h"

namespace twostep::duo {

namespace {

constexpr std::size_t max_status_bytes = 32;

struct MacFree {
    void operator()(EVP_MAC *mac) const { EVP_MAC_free(mac); }
};
struct MacCtxFree {
    void operator()(EVP_MAC_CTX *ctx) const { EVP_MAC_CTX_free(ctx); }
};

char ascii_upper(char c)
{
    return c >= 'a' && c <= 'z' ? static_cast<char>(c - 'a' + 'A') : c;
}

char ascii_lower(char c)
{
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}

bool is_token(std::string_view s, std::size_t max, bool (*allowed)(char))
{
    return !s.empty() && s.size() <= max
        && std::all_of(s.begin(), s.end(), allowed);
}

bool status_char(char c)
{
    return (c >= 'a' && c <= 'z') || c == '_';
}

bool txid_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '-';
}

// "40002 Invalid request parameters: username" from Duo's error object.
std::string duo_error(const json_t *root)
{
    return error_description(root, "message", "message_detail");
}

// The checks every answer shares: HTTP status, size, JSON object,
// "stat": "OK" and a "response" object.
struct Envelope {
    Failure failure = Failure::none;
    std::string message;
    JsonPtr root;
    const json_t *response = nullptr;
};

Envelope open(long http_status, std::string_view body)
{
    Envelope env;
    JsonAnswer answer = open_json_answer(http_status, body, max_body_bytes,
                                         "message", "message_detail");
    if (answer.failure != AnswerFailure::none) {
        env.failure = as_failure<Failure>(answer.failure);
        env.message = std::move(answer.message);
        return env;
    }
    env.root = std::move(answer.root);
    const json_t *stat = json_object_get(env.root.get(), "stat");
    if (!json_is_string(stat)) {
        env.failure = Failure::bad_shape;
        env.message = "\"stat\" missing or not a string";
        return env;
    }
    if (json_text(stat) != "OK") {
        env.failure = Failure::stat_fail;
        env.message = duo_error(env.root.get());
        if (env.message.empty())
            env.message = "\"stat\" is not \"OK\"";
        return env;
    }
    env.response = json_object_get(env.root.get(), "response");
    if (!json_is_object(env.response)) {
        env.failure = Failure::bad_shape;
        env.message = "\"response\" missing or not an object";
    }
    return env;
}

template <class Result>
Result failed(Failure failure, std::string_view message)
{
    Result r;
    r.failure = failure;
    r.message = clean_text(message, max_text_bytes);
    return r;
}

bool one_of(std::string_view value,
            std::initializer_list<std::string_view> known)
{
    return std::find(known.begin(), known.end(), value) != known.end();
}

std::string quoted(std::string_view value)
{
    return "\"" + clean_text(value, max_status_bytes) + "\"";
}

// Adds the methods a device's "capabilities" offer; false if the device or
// its capabilities are malformed.
bool add_capabilities(const json_t *device, MethodSet &methods)
{
    if (!json_is_object(device))
        return false;
    const json_t *caps = json_object_get(device, "capabilities");
    if (caps == nullptr)
        return true;  // tokens and some phones have none
    if (!json_is_array(caps))
        return false;
    std::size_t i;
    const json_t *cap;
    json_array_foreach(caps, i, cap) {
        if (!json_is_string(cap))
            return false;
        std::string_view name = json_text(cap);
        if (name == "push")
            methods |= static_cast<MethodSet>(Method::push);
        else if (name == "phone")
            methods |= static_cast<MethodSet>(Method::call);
        else if (name == "sms")
            methods |= static_cast<MethodSet>(Method::sms);
    }
    return true;
}

// result, status and status_msg of a finished or pending authentication.
AuthResult parse_outcome(const json_t *response,
                         std::initializer_list<std::string_view> results)
{
    const json_t *result = json_object_get(response, "result");
    const json_t *status = json_object_get(response, "status");
    const json_t *status_msg = json_object_get(response, "status_msg");
    if (!json_is_string(result))
        return failed<AuthResult>(Failure::bad_shape,
                                  "\"result\" missing or not a string");
    if (!one_of(json_text(result), results))
        return failed<AuthResult>(Failure::unknown_value,
                                  "unknown result " + quoted(json_text(result)));
    if (!json_is_string(status)
        || !is_token(json_text(status), max_status_bytes, status_char))
        return failed<AuthResult>(Failure::bad_shape,
                                  "\"status\" missing or malformed");
    if (!json_is_string(status_msg))
        return failed<AuthResult>(Failure::bad_shape,
                                  "\"status_msg\" missing or not a string");
    AuthResult out;
    out.result = json_text(result);
    out.status = json_text(status);
    out.status_msg = clean_text(json_text(status_msg), max_text_bytes);
    return out;
}

}  // namespace

std::string canonical_params(const Params &params)
{
    std::vector<std::pair<std::string, std::string>> encoded;
    encoded.reserve(params.size());
    for (const auto &[key, value] : params)
        encoded.emplace_back(url_encode(key), url_encode(value));
    // Duo's reference client sorts the encoded pairs; raw and encoded byte
    // order differ for keys such as "a0" and "a:".
    std::sort(encoded.begin(), encoded.end());
    std::string out;
    for (const auto &[key, value] : encoded) {
        if (!out.empty())
            out += '&';
        out += key;
        out += '=';
        out += value;
    }
    return out;
}

std::string canonical_request(std::string_view date, std::string_view method,
                              std::string_view host, std::string_view path,
                              std::string_view params)
{
    std::string out;
    out.reserve(date.size() + method.size() + host.size() + path.size()
                + params.size() + 4);
    out += date;
    out += '\n';
    for (char c : method)
        out += ascii_upper(c);
    out += '\n';
    for (char c : host)
        out += ascii_lower(c);
    out += '\n';
    out += path;
    out += '\n';
    out += params;
    return out;
}

std::string sign(const Credentials &c, std::string_view canonical)
{
    std::unique_ptr<EVP_MAC, MacFree> hmac(
        EVP_MAC_fetch(nullptr, "HMAC", nullptr));
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(
        hmac ? EVP_MAC_CTX_new(hmac.get()) : nullptr);
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         const_cast<char *>("SHA512"), 0),
        OSSL_PARAM_construct_end()
    };
    unsigned char mac[EVP_MAX_MD_SIZE];
    std::size_t mac_len = 0;
    if (!ctx
        || !EVP_MAC_init(ctx.get(),
                         reinterpret_cast<const unsigned char *>(
                             c.skey.data()),
                         c.skey.size(), params)
        || !EVP_MAC_update(ctx.get(),
                           reinterpret_cast<const unsigned char *>(
                               canonical.data()),
                           canonical.size())
        || !EVP_MAC_final(ctx.get(), mac, &mac_len, sizeof mac)
        || mac_len != 64)
        throw std::runtime_error("HMAC-SHA512 failed");
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    out.reserve(2 * mac_len);
    for (std::size_t i = 0; i < mac_len; i++) {
        out += hex[mac[i] >> 4];
        out += hex[mac[i] & 0x0f];
    }
    return out;
}

std::string rfc2822_date(std::int64_t unix_time)
{
    static constexpr const char *days[] = {"Sun", "Mon", "Tue", "Wed",
                                           "Thu", "Fri", "Sat"};
    static constexpr const char *months[] = {"Jan", "Feb", "Mar", "Apr",
                                             "May", "Jun", "Jul", "Aug",
                                             "Sep", "Oct", "Nov", "Dec"};
    // Floor division, then the proleptic Gregorian calendar from a day
    // count (H. Hinnant, "chrono-Compatible Low-Level Date Algorithms"),
    // so no time_t range or locale is involved.
    std::int64_t day = unix_time / 86400;
    std::int64_t secs = unix_time % 86400;
    if (secs < 0) {
        secs += 86400;
        day -= 1;
    }
    std::int64_t weekday = (day % 7 + 11) % 7;  // 1970-01-01 was a Thursday
    std::int64_t z = day + 719468;
    std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    std::int64_t doe = z - era * 146097;
    std::int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    std::int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    std::int64_t mp = (5 * doy + 2) / 153;
    std::int64_t mday = doy - (153 * mp + 2) / 5 + 1;
    std::int64_t month = mp < 10 ? mp + 3 : mp - 9;
    std::int64_t year = yoe + era * 400 + (month <= 2 ? 1 : 0);

    char buf[64];
    std::snprintf(buf, sizeof buf, "%s, %02d %s %04lld %02d:%02d:%02d -0000",
                  days[weekday], static_cast<int>(mday), months[month - 1],
                  static_cast<long long>(year), static_cast<int>(secs / 3600),
                  static_cast<int>(secs / 60 % 60),
                  static_cast<int>(secs % 60));
    return buf;
}

Request make_request(const Credentials &c, std::string_view method,
                     std::string_view path, Params params, std::int64_t now)
{
    Request r;
    for (char ch : method)
        r.method += ascii_upper(ch);
    r.path = path;
    r.date = rfc2822_date(now);
    std::string canon = canonical_params(params);
    std::string sig =
        sign(c, canonical_request(r.date, r.method, c.host, r.path, canon));
    r.authorization = "Basic " + base64_encode(c.ikey + ":" + sig);
    if (r.method == "GET")
        r.query = std::move(canon);
    else
        r.body = std::move(canon);
    return r;
}

Request preauth(const Credentials &c, std::string_view username,
                std::int64_t now)
{
    return make_request(c, "POST", "/auth/v2/preauth",
                        {{"username", std::string(username)}}, now);
}

Request auth_async(const Credentials &c, std::string_view username, Method m,
                   std::string_view client_ip, std::int64_t now)
{
    const char *factor = m == Method::push ? "push"
        : m == Method::call                ? "phone"
                                           : nullptr;
    if (factor == nullptr)
        throw std::invalid_argument("Duo async auth is push or call only");
    // No "type" or "pushinfo": Duo's default wording and the location it
    // derives from ipaddr are what users are taught to check.
    Params params = {{"username", std::string(username)},
                     {"factor", factor},
                     {"device", "auto"},
                     {"async", "1"}};
    if (!client_ip.empty())
        params.emplace_back("ipaddr", std::string(client_ip));
    return make_request(c, "POST", "/auth/v2/auth", std::move(params), now);
}

Request send_sms(const Credentials &c, std::string_view username,
                 std::int64_t now)
{
    return make_request(c, "POST", "/auth/v2/auth",
                        {{"username", std::string(username)},
                         {"factor", "sms"},
                         {"device", "auto"}},
                        now);
}

Request passcode(const Credentials &c, std::string_view username,
                 std::string_view code, std::int64_t now)
{
    return make_request(c, "POST", "/auth/v2/auth",
                        {{"username", std::string(username)},
                         {"factor", "passcode"},
                         {"passcode", std::string(code)}},
                        now);
}

Request auth_status(const Credentials &c, std::string_view txid,
                    std::int64_t now)
{
    return make_request(c, "GET", "/auth/v2/auth_status",
                        {{"txid", std::string(txid)}}, now);
}

PreauthResult parse_preauth(long http_status, std::string_view body)
{
    Envelope env = open(http_status, body);
    if (env.failure != Failure::none)
        return failed<PreauthResult>(env.failure, env.message);
    const json_t *result = json_object_get(env.response, "result");
    const json_t *status_msg = json_object_get(env.response, "status_msg");
    const json_t *devices = json_object_get(env.response, "devices");
    if (!json_is_string(result))
        return failed<PreauthResult>(Failure::bad_shape,
                                     "\"result\" missing or not a string");
    std::string_view r = json_text(result);
    if (!one_of(r, {"auth", "allow", "deny", "enroll"}))
        return failed<PreauthResult>(Failure::unknown_value,
                                     "unknown result " + quoted(r));
    if (!json_is_string(status_msg))
        return failed<PreauthResult>(Failure::bad_shape,
                                     "\"status_msg\" missing or not a string");
    if (r == "auth" && devices == nullptr)
        return failed<PreauthResult>(Failure::bad_shape,
                                     "\"devices\" missing");
    MethodSet methods = 0;
    if (devices != nullptr) {
        if (!json_is_array(devices))
            return failed<PreauthResult>(Failure::bad_shape,
                                         "\"devices\" is not an array");
        std::size_t i;
        const json_t *device;
        json_array_foreach(devices, i, device) {
            if (!add_capabilities(device, methods))
                return failed<PreauthResult>(
                    Failure::bad_shape,
                    "device " + std::to_string(i) + " is malformed");
        }
    }
    PreauthResult out;
    out.result = r;
    out.methods = r == "auth" ? methods : 0;
    out.status_msg = clean_text(json_text(status_msg), max_text_bytes);
    return out;
}

AuthResult parse_auth(long http_status, std::string_view body)
{
    Envelope env = open(http_status, body);
    if (env.failure != Failure::none)
        return failed<AuthResult>(env.failure, env.message);
    if (const json_t *txid = json_object_get(env.response, "txid")) {
        if (!json_is_string(txid)
            || !is_token(json_text(txid), max_txid_bytes, txid_char))
            return failed<AuthResult>(Failure::bad_shape,
                                      "\"txid\" malformed");
        AuthResult out;
        out.txid = json_text(txid);
        return out;
    }
    return parse_outcome(env.response, {"allow", "deny"});
}

AuthResult parse_auth_status(long http_status, std::string_view body)
{
    Envelope env = open(http_status, body);
    if (env.failure != Failure::none)
        return failed<AuthResult>(env.failure, env.message);
    return parse_outcome(env.response, {"allow", "deny", "waiting"});
}

}  // namespace twostep::duo
