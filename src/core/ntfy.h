// ntfy push notifications (https://docs.ntfy.sh/publish/) without I/O: the
// publish request with Approve/Deny action buttons, fail-closed parsing of
// the server's answer, random topics and single-use capability tokens, and
// number matching against push fatigue.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "provider.h"

namespace twostep::ntfy {

struct Server {
    std::string url;    // "https://ntfy.example.com", no trailing '/'
    std::string token;  // access token ("tk_..."); empty: anonymous
};

// A button under the notification (ntfy's "action buttons"). "view" opens
// `url` on the phone; "http" makes the ntfy app send `method` to `url`.
struct Action {
    std::string kind;    // "view" or "http"
    std::string label;   // "Approve", "Deny"
    std::string url;
    std::string method;  // "http" only: "POST"
    bool clear = true;   // dismiss the notification once tapped
};

struct Notification {
    std::string topic;
    std::string title;
    std::string message;
    int priority = 4;  // 1 (min) .. 5 (max); 4 is "high"
    std::vector<std::string> tags;
    std::vector<Action> actions;  // at most 3 (ntfy's limit)
};

struct Request {
    std::string method;         // "POST"
    std::string url;            // the server root
    std::string content_type;   // application/json
    std::string body;
    std::string authorization;  // "Bearer <token>", or empty
};

// A JSON publish to the server root. JSON rather than X-Title/X-Actions
// headers: it carries any UTF-8 text, and no value can add a header or
// break the action list's own syntax. Throws std::invalid_argument for a
// bad topic, priority, action or more than 3 actions.
Request publish(const Server &s, const Notification &n);

// A Deny button and an Approve link for one sign-in (the texts from the
// caller, translated): Approve opens the approval page, where the number
// is typed; Deny is POSTed by the app without opening anything.
std::vector<Action> approval_actions(std::string_view approve_label,
                                     std::string_view approve_url,
                                     std::string_view deny_label,
                                     std::string_view deny_url);

// ntfy's topic names: 1 to 64 of [A-Za-z0-9_-].
bool valid_topic(std::string_view topic);
// A fresh topic: 144 random bits, base64url (24 characters). Whoever
// knows a topic can read it, so it is a secret of the user's.
std::string new_topic();
// How a phone subscribes to `topic` of the server at `server_url`
// ("https://ntfy.example.com"): the ntfy app's link ntfy://HOST/TOPIC,
// with "?secure=false" for an http:// server (docs.ntfy.sh, "ntfy://
// links"), which the set-up page shows as a QR code; and the topic's web
// address, SERVER_URL/TOPIC, for the web app or typing. Throws
// std::invalid_argument for a bad topic or a URL that is not http(s).
std::string subscribe_link(std::string_view server_url,
                           std::string_view topic);
std::string topic_url(std::string_view server_url, std::string_view topic);
// A fresh single-use token for an approval or deny link: 192 random bits,
// base64url (32 characters). Throws std::runtime_error if the RNG fails.
std::string new_capability();
constexpr std::size_t capability_chars = 32;
// `presented` equals `expected` (constant time in the expected length);
// an empty `expected` matches nothing.
bool capability_ok(std::string_view expected, std::string_view presented);

// Number matching: the sign-in page shows a number 10..99 and the approval
// page asks for it, so an approval tapped without looking (push fatigue,
// an attacker's sign-in) does not approve.
int new_match_number();
enum class Match {
    approve,       // the right number
    wrong_number,  // a different number: deny, and log a possible attack
    unreadable,    // not a number 10..99: ask again, nothing changes
};
const char *match_name(Match m);
Match check_match(int expected, std::string_view typed);

enum class Failure {
    none,
    http_status,   // not 2xx (and not 429)
    rate_limited,  // HTTP 429 (ntfy's visitor limits)
    not_json,
    bad_shape,     // too large, not an object, no id, or not a message
};
const char *failure_name(Failure f);

constexpr std::size_t max_body_bytes = 64 * 1024;
constexpr std::size_t max_text_bytes = 200;

// Never throws (beyond std::bad_alloc). On a failure only `failure` and
// `message` are set; `message` (clean, at most max_text_bytes) carries
// ntfy's own code and error text, for the log.
struct Result {
    Failure failure = Failure::none;
    std::string id;  // 1 to 64 of [A-Za-z0-9_-]
    std::string message;
};
Result parse_publish(long http_status, std::string_view body);

// Push as an out-of-band provider (provider.h): a notification to the
// user's topic with msg.title and msg.text, an Approve button opening
// msg.approve_url and a Deny button POSTing msg.deny_url.
class Provider final : public SelfHostedProvider {
public:
    explicit Provider(Server server);

    MethodSet methods() const override;
    ProviderRequest start(const User &user, Method m,
                          std::string_view client_ip,
                          const OutOfBandMessage &msg,
                          std::int64_t now) const override;
    ProviderAnswer read_start(long http_status,
                              std::string_view body) const override;
    // Push sends no code: throws std::logic_error.
    ProviderRequest send_code(const User &user, const OutOfBandMessage &msg,
                              std::int64_t now) const override;
    ProviderAnswer read_send_code(long http_status,
                                  std::string_view body) const override;

    const Server &server() const { return server_; }

private:
    Server server_;
};

}  // namespace twostep::ntfy
