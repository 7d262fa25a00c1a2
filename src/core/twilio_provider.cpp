// Twilio's text messages and calls as an out-of-band provider (provider.h).
#include "twilio.h"

#include <stdexcept>

#include "user_store.h"

namespace twostep::twilio {

namespace {

ProviderRequest to_provider(const Request &req)
{
    ProviderRequest out;
    out.post = req.method == "POST";
    out.url = req.url;
    out.body = req.body;
    out.headers.push_back("Authorization: " + req.authorization);
    out.headers.push_back("Content-Type: " + req.content_type);
    return out;
}

// A message or call Twilio accepted is "sent": its answer comes later (a
// typed code, a keypress callback), never in this one.
ProviderAnswer to_answer(const Result &res)
{
    ProviderAnswer out;
    out.failure = provider_failure(res.failure);
    if (out.failure == ProviderFailure::none) {
        out.status = "sent";
        out.txid = res.sid;
        return out;
    }
    out.message = res.message;
    return out;
}

}  // namespace

Provider::Provider(Credentials credentials, std::string from)
    : credentials_(std::move(credentials)), from_(std::move(from))
{
}

MethodSet Provider::methods() const
{
    return method_bit(Method::call) | method_bit(Method::sms);
}

ProviderRequest Provider::start(const User &user, Method m,
                                std::string_view, const OutOfBandMessage &msg,
                                std::int64_t) const
{
    if (m != Method::call)
        throw std::logic_error("Twilio starts only calls");
    CallScript script;
    script.language = msg.language;
    script.greeting = msg.text;
    script.prompt = msg.prompt;
    script.action_url = msg.callback_url;
    return to_provider(start_call(credentials_, from_, user.phone,
                                  call_twiml(script)));
}

ProviderAnswer Provider::read_start(long http_status,
                                    std::string_view body) const
{
    return to_answer(parse_call(http_status, body));
}

ProviderRequest Provider::send_code(const User &user,
                                    const OutOfBandMessage &msg,
                                    std::int64_t) const
{
    return to_provider(send_message(credentials_, from_, user.phone,
                                    msg.text));
}

ProviderAnswer Provider::read_send_code(long http_status,
                                        std::string_view body) const
{
    return to_answer(parse_message(http_status, body));
}

}  // namespace twostep::twilio
