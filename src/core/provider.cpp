// Names of the provider failures, for the log.
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

}  // namespace twostep
