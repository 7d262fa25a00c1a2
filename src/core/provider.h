// Out-of-band providers (push, phone call, text message) behind one
// interface, without I/O: a provider builds the HTTP requests and reads the
// answers; the nginx side sends them through the libcurl bridge. Duo is the
// first (duo.h); Twilio (twilio.h: text and call) and ntfy (ntfy.h: push)
// are self-hosted ones: the portal makes the code, the texts and the links
// back to itself, and learns the answer from a callback, not a poll.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "methods.h"

namespace twostep {

struct User;

// What to send, and where.
struct ProviderRequest {
    bool post = false;
    std::string url;                   // base URL, path and query
    std::string body;
    std::vector<std::string> headers;  // "Name: value"
};

enum class ProviderFailure {
    none,
    http_status,    // not 2xx (and not 429)
    rate_limited,   // HTTP 429
    not_json,       // unparsable (duplicate names, NUL and invalid UTF-8
                    // included), or a bare JSON scalar
    bad_shape,      // too large, not an object, or a missing, ill-typed or
                    // malformed member
    stat_fail,      // the provider reported an error
    unknown_value,  // a result this client does not know
};
const char *failure_name(ProviderFailure f);

// A provider's own Failure enum (answer.h: it begins with AnswerFailure's
// members, in the same order as ProviderFailure's) as a ProviderFailure;
// any further member is the provider reporting an error.
template <class Failure>
ProviderFailure provider_failure(Failure f)
{
    static_assert(static_cast<int>(ProviderFailure::bad_shape) == 4,
                  "ProviderFailure must begin like AnswerFailure");
    int n = static_cast<int>(f);
    return n <= static_cast<int>(ProviderFailure::bad_shape)
        ? static_cast<ProviderFailure>(n)
        : ProviderFailure::stat_fail;
}

// What the portal hands a self-hosted provider for one request to the
// phone: the texts (translated, naming the site), a texted code, and the
// links back to the portal. Duo sends its own texts and ignores it.
struct OutOfBandMessage {
    std::string text;           // sms: the body; push: the message; call:
                                // the greeting
    std::string title;          // push
    std::string prompt;         // call: which key to press
    std::string language;       // call: Say's language, e.g. "en-US"
    std::string approve_label;  // push: the button opening approve_url
    std::string approve_url;
    std::string deny_label;     // push: the button POSTing deny_url
    std::string deny_url;
    std::string callback_url;   // call: where the keypress is POSTed
};

// The answer to offer(). On a failure only `failure` and `message` (for
// the log) are set.
struct ProviderOffer {
    ProviderFailure failure = ProviderFailure::none;
    std::string result;      // "auth", "allow", "deny" or "enroll"
    MethodSet methods = 0;   // for "auth": which of methods() the user has
    std::string status_msg;
    std::string message;
};

// The answer to start(), status(), send_code() and check_code().
struct ProviderAnswer {
    ProviderFailure failure = ProviderFailure::none;
    std::string result;  // "allow", "deny", "waiting"; empty with a txid
    std::string status;  // [a-z_]+, e.g. "sent" (a code), "fraud", "timeout"
    std::string status_msg;
    std::string txid;    // [A-Za-z0-9-]+: the transaction start() began
    std::string message;
};

// The readers never throw (beyond std::bad_alloc) and fail closed: any
// answer that is not exactly right is a failure, never "allow".
class OutOfBandProvider {
public:
    virtual ~OutOfBandProvider() = default;

    // The methods it can serve at most (kind out_of_band).
    virtual MethodSet methods() const = 0;

    // Which of them this user has: the second-step page offers those.
    virtual ProviderRequest offer(const User &user,
                                  std::int64_t now) const = 0;
    virtual ProviderOffer read_offer(long http_status,
                                     std::string_view body) const = 0;

    // True for Twilio and ntfy: the user store says what a user has (no
    // offer()), the portal checks texted codes itself (no check_code())
    // and learns a push's or call's answer from its own approval page or
    // callback (no status()).
    virtual bool self_hosted() const { return false; }

    // A method the page waits on (method_info(m).waits): a transaction.
    virtual ProviderRequest start(const User &user, Method m,
                                  std::string_view client_ip,
                                  const OutOfBandMessage &msg,
                                  std::int64_t now) const = 0;
    virtual ProviderAnswer read_start(long http_status,
                                      std::string_view body) const = 0;
    virtual ProviderRequest status(std::string_view txid,
                                   std::int64_t now) const = 0;
    virtual ProviderAnswer read_status(long http_status,
                                       std::string_view body) const = 0;

    // A code sent to the phone (status "sent"), then the code typed
    // ("allow" when right).
    virtual ProviderRequest send_code(const User &user,
                                      const OutOfBandMessage &msg,
                                      std::int64_t now) const = 0;
    virtual ProviderAnswer read_send_code(long http_status,
                                          std::string_view body) const = 0;
    virtual ProviderRequest check_code(const User &user,
                                       std::string_view code,
                                       std::int64_t now) const = 0;
    virtual ProviderAnswer read_check_code(long http_status,
                                           std::string_view body) const = 0;
};

// What Twilio and ntfy share: none of them is asked what a user has, for a
// status or to check a code (self_hosted()); asking gives a request with
// no URL, and reading an answer to one fails closed.
class SelfHostedProvider : public OutOfBandProvider {
public:
    bool self_hosted() const override { return true; }
    ProviderRequest offer(const User &user,
                          std::int64_t now) const override;
    ProviderOffer read_offer(long http_status,
                             std::string_view body) const override;
    ProviderRequest status(std::string_view txid,
                           std::int64_t now) const override;
    ProviderAnswer read_status(long http_status,
                               std::string_view body) const override;
    ProviderRequest check_code(const User &user, std::string_view code,
                               std::int64_t now) const override;
    ProviderAnswer read_check_code(long http_status,
                                   std::string_view body) const override;
};

}  // namespace twostep
