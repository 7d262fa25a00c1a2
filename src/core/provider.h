// Out-of-band providers (push, phone call, text message) behind one
// interface, without I/O: a provider builds the HTTP requests and reads the
// answers; the nginx side sends them through the libcurl bridge. Duo is the
// first (duo.h); Twilio and ntfy plug in the same way.
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

    // A method the page waits on (method_info(m).waits): a transaction.
    virtual ProviderRequest start(const User &user, Method m,
                                  std::string_view client_ip,
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
                                      std::int64_t now) const = 0;
    virtual ProviderAnswer read_send_code(long http_status,
                                          std::string_view body) const = 0;
    virtual ProviderRequest check_code(const User &user,
                                       std::string_view code,
                                       std::int64_t now) const = 0;
    virtual ProviderAnswer read_check_code(long http_status,
                                           std::string_view body) const = 0;
};

}  // namespace twostep
