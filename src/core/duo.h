// Duo Auth API v2 client logic without I/O: signed requests to hand to an
// HTTP client, and fail-closed parsing of Duo's answers
// (https://duo.com/docs/authapi).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "methods.h"
#include "provider.h"

namespace twostep::duo {

using Params = std::vector<std::pair<std::string, std::string>>;

struct Credentials {
    std::string ikey;
    std::string skey;
    std::string host;  // "api-xxxx.duosecurity.com" or "127.0.0.1:9443"
};

struct Request {
    std::string method;         // "GET" or "POST"
    std::string path;           // "/auth/v2/preauth"
    std::string body;           // POST: canonical params; GET: empty
    std::string query;          // GET: canonical params; POST: empty
    std::string date;           // the Date header
    std::string authorization;  // the Authorization header
};

// Signature v2. Each key and value percent-encoded (RFC 3986 unreserved
// characters kept, everything else %XX upper case), pairs sorted by
// encoded key then encoded value, joined with '&'.
std::string canonical_params(const Params &params);
// date \n upper(method) \n lower(host) \n path \n params
std::string canonical_request(std::string_view date, std::string_view method,
                              std::string_view host, std::string_view path,
                              std::string_view params);
// Lower-case hex HMAC-SHA512 of `canonical` keyed with c.skey. Throws
// std::runtime_error if OpenSSL fails.
std::string sign(const Credentials &c, std::string_view canonical);
// "Tue, 21 Aug 2012 17:29:18 -0000": RFC 2822 in UTC, English names
// whatever the locale.
std::string rfc2822_date(std::int64_t unix_time);

// A request dated `now` and signed; "GET" carries the params in the query,
// any other method in the body.
Request make_request(const Credentials &c, std::string_view method,
                     std::string_view path, Params params, std::int64_t now);

// The calls the module makes. auth_async() takes Method::push or
// Method::call and throws std::invalid_argument for any other; an empty
// client_ip is left out.
Request preauth(const Credentials &c, std::string_view username,
                std::int64_t now);
Request auth_async(const Credentials &c, std::string_view username, Method m,
                   std::string_view client_ip, std::int64_t now);
Request send_sms(const Credentials &c, std::string_view username,
                 std::int64_t now);
Request passcode(const Credentials &c, std::string_view username,
                 std::string_view code, std::int64_t now);
Request auth_status(const Credentials &c, std::string_view txid,
                    std::int64_t now);

// The answers are the provider interface's (provider.h).
using Failure = ProviderFailure;
using PreauthResult = ProviderOffer;
using AuthResult = ProviderAnswer;
using twostep::failure_name;


// The parsers never throw (beyond std::bad_alloc). On a failure only
// `failure` and `message` are set. Text copied out of a response holds no
// control characters (C0, DEL, C1, bidirectional overrides: each becomes a
// space) and is cut at a character boundary to max_text_bytes. `message`
// describes a failure for the log: Duo's own code and message when it sent
// one.
constexpr std::size_t max_body_bytes = 64 * 1024;
constexpr std::size_t max_text_bytes = 200;
constexpr std::size_t max_txid_bytes = 64;

PreauthResult parse_preauth(long http_status, std::string_view body);

// /auth: either {"txid"} (async: result, status, status_msg empty) or
// {"result": "allow" | "deny", "status", "status_msg"} (sync: txid empty).
AuthResult parse_auth(long http_status, std::string_view body);
// /auth_status: {"result": "allow" | "deny" | "waiting", "status",
// "status_msg"}.
AuthResult parse_auth_status(long http_status, std::string_view body);

// Duo as an out-of-band provider: the requests above, signed, for
// base_url (twostep_duo_api); a user's "duo_username" if set, else the name.
class Provider final : public OutOfBandProvider {
public:
    Provider(Credentials credentials, std::string_view base_url);

    MethodSet methods() const override;
    ProviderRequest offer(const User &user, std::int64_t now) const override;
    ProviderOffer read_offer(long http_status,
                             std::string_view body) const override;
    ProviderRequest start(const User &user, Method m,
                          std::string_view client_ip,
                          const OutOfBandMessage &msg,
                          std::int64_t now) const override;
    ProviderAnswer read_start(long http_status,
                              std::string_view body) const override;
    ProviderRequest status(std::string_view txid,
                           std::int64_t now) const override;
    ProviderAnswer read_status(long http_status,
                               std::string_view body) const override;
    ProviderRequest send_code(const User &user,
                              const OutOfBandMessage &msg,
                              std::int64_t now) const override;
    ProviderAnswer read_send_code(long http_status,
                                  std::string_view body) const override;
    ProviderRequest check_code(const User &user, std::string_view code,
                               std::int64_t now) const override;
    ProviderAnswer read_check_code(long http_status,
                                   std::string_view body) const override;

private:
    ProviderRequest to_provider(const Request &req) const;

    Credentials credentials_;
    std::string base_url_;
};

}  // namespace twostep::duo
