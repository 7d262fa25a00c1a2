// ntfy push notifications as an out-of-band provider (provider.h).
#include "ntfy.h"

#include <stdexcept>

#include "user_store.h"

namespace twostep::ntfy {

Provider::Provider(Server server) : server_(std::move(server))
{
}

MethodSet Provider::methods() const
{
    return method_bit(Method::push);
}

ProviderRequest Provider::start(const User &user, Method m,
                                std::string_view, const OutOfBandMessage &msg,
                                std::int64_t) const
{
    if (m != Method::push)
        throw std::logic_error("ntfy sends only pushes");
    Notification n;
    n.topic = user.ntfy_topic;
    n.title = msg.title;
    n.message = msg.text;
    n.tags = {"lock"};
    n.actions = approval_actions(msg.approve_label, msg.approve_url,
                                 msg.deny_label, msg.deny_url);
    Request req = publish(server_, n);
    ProviderRequest out;
    out.post = req.method == "POST";
    out.url = req.url;
    out.body = req.body;
    out.headers.push_back("Content-Type: " + req.content_type);
    if (!req.authorization.empty())
        out.headers.push_back("Authorization: " + req.authorization);
    return out;
}

ProviderAnswer Provider::read_start(long http_status,
                                    std::string_view body) const
{
    Result res = parse_publish(http_status, body);
    ProviderAnswer out;
    out.failure = provider_failure(res.failure);
    if (out.failure == ProviderFailure::none) {
        out.status = "sent";
        out.txid = res.id;
        return out;
    }
    out.message = res.message;
    return out;
}

ProviderRequest Provider::send_code(const User &, const OutOfBandMessage &,
                                    std::int64_t) const
{
    throw std::logic_error("ntfy sends no codes");
}

ProviderAnswer Provider::read_send_code(long, std::string_view) const
{
    ProviderAnswer out;
    out.failure = ProviderFailure::bad_shape;
    out.message = "ntfy sends no codes";
    return out;
}

}  // namespace twostep::ntfy
