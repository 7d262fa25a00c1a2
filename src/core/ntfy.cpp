#include "ntfy.h"

#include <openssl/crypto.h>

#include <algorithm>
#include <stdexcept>

#include "answer.h"
#include "keyring.h"
#include "oob.h"

namespace twostep::ntfy {

namespace {

constexpr std::size_t max_topic_bytes = 64;
constexpr std::size_t max_actions = 3;

bool topic_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '-' || c == '_';
}

// Adds `value` under `name`, taking the reference; false if jansson
// could not (no memory, or text that is not UTF-8).
bool put(json_t *object, const char *name, json_t *value)
{
    return value != nullptr && json_object_set_new(object, name, value) == 0;
}

json_t *text(std::string_view s)
{
    return json_stringn(s.data(), s.size());
}

Result failed(Failure failure, std::string_view message)
{
    Result r;
    r.failure = failure;
    r.message = clean_text(message, max_text_bytes);
    return r;
}

}  // namespace

Request publish(const Server &s, const Notification &n)
{
    if (!valid_topic(n.topic))
        throw std::invalid_argument("ntfy topic is malformed");
    if (n.priority < 1 || n.priority > 5)
        throw std::invalid_argument("ntfy priority must be 1 to 5");
    if (n.actions.size() > max_actions)
        throw std::invalid_argument("ntfy allows at most 3 actions");
    JsonPtr root(json_object());
    bool ok = root && put(root.get(), "topic", text(n.topic))
        && put(root.get(), "title", text(n.title))
        && put(root.get(), "message", text(n.message))
        && put(root.get(), "priority", json_integer(n.priority));
    json_t *tags = json_array();
    ok = ok && put(root.get(), "tags", tags);
    for (const std::string &tag : n.tags)
        ok = ok && json_array_append_new(tags, text(tag)) == 0;
    json_t *actions = json_array();
    ok = ok && put(root.get(), "actions", actions);
    for (const Action &a : n.actions) {
        if ((a.kind != "view" && a.kind != "http") || a.label.empty()
            || a.url.empty() || (a.kind == "http") == a.method.empty())
            throw std::invalid_argument("ntfy action is malformed");
        json_t *action = json_object();
        ok = ok && json_array_append_new(actions, action) == 0
            && put(action, "action", text(a.kind))
            && put(action, "label", text(a.label))
            && put(action, "url", text(a.url))
            && put(action, "clear", json_boolean(a.clear))
            && (a.method.empty() || put(action, "method", text(a.method)));
    }
    if (!ok)
        throw std::invalid_argument("ntfy notification is not valid UTF-8");
    CharPtr body(
        json_dumps(root.get(), JSON_COMPACT | JSON_SORT_KEYS));
    if (!body)
        throw std::runtime_error("cannot encode the ntfy notification");
    Request r;
    r.method = "POST";
    r.url = s.url + "/";
    r.content_type = "application/json";
    r.body = body.get();
    if (!s.token.empty())
        r.authorization = "Bearer " + s.token;
    return r;
}

std::vector<Action> approval_actions(std::string_view approve_label,
                                     std::string_view approve_url,
                                     std::string_view deny_label,
                                     std::string_view deny_url)
{
    return {{"view", std::string(approve_label), std::string(approve_url),
             "", true},
            {"http", std::string(deny_label), std::string(deny_url), "POST",
             true}};
}

bool valid_topic(std::string_view topic)
{
    return !topic.empty() && topic.size() <= max_topic_bytes
        && std::all_of(topic.begin(), topic.end(), topic_char);
}

std::string new_topic()
{
    return random_token(18);
}

namespace {

// The part of `server_url` after the scheme, and whether it is https.
std::string_view server_host(std::string_view server_url, bool &secure)
{
    constexpr std::string_view https = "https://", http = "http://";
    secure = server_url.substr(0, https.size()) == https;
    if (!secure && server_url.substr(0, http.size()) != http)
        throw std::invalid_argument("ntfy server URL is not http(s)");
    server_url.remove_prefix(secure ? https.size() : http.size());
    while (!server_url.empty() && server_url.back() == '/')
        server_url.remove_suffix(1);
    if (server_url.empty())
        throw std::invalid_argument("ntfy server URL has no host");
    return server_url;
}

}  // namespace

std::string subscribe_link(std::string_view server_url,
                           std::string_view topic)
{
    bool secure = false;
    std::string_view host = server_host(server_url, secure);
    if (!valid_topic(topic))
        throw std::invalid_argument("ntfy topic is malformed");
    std::string link = "ntfy://" + std::string(host) + "/"
        + std::string(topic);
    return secure ? link : link + "?secure=false";
}

std::string topic_url(std::string_view server_url, std::string_view topic)
{
    bool secure = false;
    std::string_view host = server_host(server_url, secure);
    if (!valid_topic(topic))
        throw std::invalid_argument("ntfy topic is malformed");
    return (secure ? "https://" : "http://") + std::string(host) + "/"
        + std::string(topic);
}

std::string new_capability()
{
    return random_token(24);
}

bool capability_ok(std::string_view expected, std::string_view presented)
{
    return !expected.empty() && presented.size() == expected.size()
        && CRYPTO_memcmp(expected.data(), presented.data(),
                         expected.size()) == 0;
}

int new_match_number()
{
    return 10 + static_cast<int>(random_below(90));
}

const char *match_name(Match m)
{
    switch (m) {
    case Match::approve:
        return "approve";
    case Match::wrong_number:
        return "wrong_number";
    case Match::unreadable:
        return "unreadable";
    }
    return "unknown";
}

Match check_match(int expected, std::string_view typed)
{
    while (!typed.empty() && typed.front() == ' ')
        typed.remove_prefix(1);
    while (!typed.empty() && typed.back() == ' ')
        typed.remove_suffix(1);
    if (typed.size() != 2 || typed[0] < '1' || typed[0] > '9'
        || typed[1] < '0' || typed[1] > '9')
        return Match::unreadable;
    int number = (typed[0] - '0') * 10 + (typed[1] - '0');
    return expected >= 10 && expected <= 99 && number == expected
        ? Match::approve
        : Match::wrong_number;
}

const char *failure_name(Failure f)
{
    const char *name = shared_failure_name(f);
    return name ? name : "unknown";
}

Result parse_publish(long http_status, std::string_view body)
{
    JsonAnswer answer = open_json_answer(http_status, body, max_body_bytes,
                                         "error");
    if (answer.failure != AnswerFailure::none)
        return failed(as_failure<Failure>(answer.failure), answer.message);
    const JsonPtr &root = answer.root;
    const json_t *id = json_object_get(root.get(), "id");
    if (!json_is_string(id) || !valid_topic(json_text(id)))
        return failed(Failure::bad_shape, "\"id\" missing or malformed");
    const json_t *event = json_object_get(root.get(), "event");
    if (!json_is_string(event) || json_text(event) != "message")
        return failed(Failure::bad_shape, "\"event\" is not \"message\"");
    Result out;
    out.id = json_text(id);
    return out;
}

}  // namespace twostep::ntfy
