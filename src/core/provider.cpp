// Names of the provider failures, for the log; what self-hosted providers
// are never asked.
#include "provider.h"

namespace twostep {

const char *failure_name(ProviderFailure f)
{
    switch (f) {
    case ProviderFailure::none:
        return "none";
    case ProviderFailure::http_status:
        return "http_status";
    case ProviderFailure::rate_limited:
        return "rate_limited";
    case ProviderFailure::not_json:
        return "not_json";
    case ProviderFailure::bad_shape:
        return "bad_shape";
    case ProviderFailure::stat_fail:
        return "stat_fail";
    case ProviderFailure::unknown_value:
        return "unknown_value";
    }
    return "unknown";
}

namespace {

ProviderAnswer not_asked()
{
    ProviderAnswer a;
    a.failure = ProviderFailure::bad_shape;
    a.message = "a self-hosted provider is not asked this";
    return a;
}

}  // namespace

ProviderRequest SelfHostedProvider::offer(const User &, std::int64_t) const
{
    return {};
}

ProviderOffer SelfHostedProvider::read_offer(long, std::string_view) const
{
    ProviderOffer o;
    o.failure = ProviderFailure::bad_shape;
    o.message = not_asked().message;
    return o;
}

ProviderRequest SelfHostedProvider::status(std::string_view,
                                           std::int64_t) const
{
    return {};
}

ProviderAnswer SelfHostedProvider::read_status(long, std::string_view) const
{
    return not_asked();
}

ProviderRequest SelfHostedProvider::check_code(const User &, std::string_view,
                                               std::int64_t) const
{
    return {};
}

ProviderAnswer SelfHostedProvider::read_check_code(long,
                                                   std::string_view) const
{
    return not_asked();
}

}  // namespace twostep
