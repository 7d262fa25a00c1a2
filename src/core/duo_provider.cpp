// Duo Auth API v2 as an out-of-band provider (provider.h).
#include "duo.h"

#include "user_store.h"

namespace twostep::duo {

namespace {

// The name Duo knows the user by.
std::string duo_user(const User &user)
{
    return user.duo_username.empty() ? user.name : user.duo_username;
}

}  // namespace

Provider::Provider(Credentials credentials, std::string_view base_url)
    : credentials_(std::move(credentials)), base_url_(base_url)
{
}

ProviderRequest Provider::to_provider(const Request &req) const
{
    ProviderRequest out;
    out.post = req.method == "POST";
    out.url = base_url_ + req.path;
    if (!req.query.empty())
        out.url += "?" + req.query;
    out.body = req.body;
    out.headers.push_back("Date: " + req.date);
    out.headers.push_back("Authorization: " + req.authorization);
    if (out.post)
        out.headers.push_back(
            "Content-Type: application/x-www-form-urlencoded");
    return out;
}

MethodSet Provider::methods() const
{
    return method_bit(Method::push) | method_bit(Method::call)
           | method_bit(Method::sms);
}

ProviderRequest Provider::offer(const User &user, std::int64_t now) const
{
    return to_provider(preauth(credentials_, duo_user(user), now));
}

ProviderOffer Provider::read_offer(long http_status,
                                   std::string_view body) const
{
    return parse_preauth(http_status, body);
}

// Duo says what it says: the portal's texts are not used.
ProviderRequest Provider::start(const User &user, Method m,
                                std::string_view client_ip,
                                const OutOfBandMessage &,
                                std::int64_t now) const
{
    return to_provider(auth_async(credentials_, duo_user(user), m, client_ip,
                                  now));
}

ProviderAnswer Provider::read_start(long http_status,
                                    std::string_view body) const
{
    return parse_auth(http_status, body);
}

ProviderRequest Provider::status(std::string_view txid,
                                 std::int64_t now) const
{
    return to_provider(auth_status(credentials_, txid, now));
}

ProviderAnswer Provider::read_status(long http_status,
                                     std::string_view body) const
{
    return parse_auth_status(http_status, body);
}

ProviderRequest Provider::send_code(const User &user,
                                    const OutOfBandMessage &,
                                    std::int64_t now) const
{
    return to_provider(send_sms(credentials_, duo_user(user), now));
}

ProviderAnswer Provider::read_send_code(long http_status,
                                        std::string_view body) const
{
    return parse_auth(http_status, body);
}

ProviderRequest Provider::check_code(const User &user, std::string_view code,
                                     std::int64_t now) const
{
    return to_provider(passcode(credentials_, duo_user(user), code, now));
}

ProviderAnswer Provider::read_check_code(long http_status,
                                         std::string_view body) const
{
    return parse_auth(http_status, body);
}

}  // namespace twostep::duo
