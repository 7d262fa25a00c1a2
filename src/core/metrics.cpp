// The counter layout and its Prometheus text exposition
// (https://prometheus.io/docs/instrumenting/exposition_formats/).
#include "metrics.h"

#include <cinttypes>
#include <cstdio>

#include "methods.h"

namespace twostep::metrics {

namespace {

constexpr const char *result_names[result_count] = {
    "success", "failure", "locked", "error"};
constexpr const char *provider_names[provider_count] = {"duo", "twilio",
                                                          "ntfy"};
constexpr const char *provider_result_names[provider_result_count] = {
    "success", "failure", "error"};

// Layout: sign-ins, single counters, provider requests, then per provider
// the duration buckets and the sum.
std::size_t signin_total() { return steps().size() * result_count; }

std::size_t provider_base() { return signin_total() + single_count; }

std::size_t duration_base()
{
    return provider_base() + provider_count * provider_result_count;
}

constexpr std::size_t duration_stride = duration_bucket_count + 1;

void header(std::string &out, const char *name, const char *type,
            const char *help)
{
    out += "# HELP ";
    out += name;
    out += ' ';
    out += help;
    out += "\n# TYPE ";
    out += name;
    out += ' ';
    out += type;
    out += '\n';
}

void sample(std::string &out, const std::string &series, std::uint64_t v)
{
    out += series;
    out += ' ';
    out += std::to_string(v);
    out += '\n';
}

std::string seconds(std::uint64_t ms)
{
    char buf[32];
    std::snprintf(buf, sizeof(buf), "%" PRIu64 ".%03" PRIu64, ms / 1000,
                  ms % 1000);
    return buf;
}

}  // namespace

const char *result_name(Result r)
{
    return result_names[static_cast<std::size_t>(r)];
}

const char *provider_name(Provider p)
{
    return provider_names[static_cast<std::size_t>(p)];
}

const std::vector<std::string> &steps()
{
    static const std::vector<std::string> names = [] {
        std::vector<std::string> v{"password"};
        for (const MethodInfo &info : method_table)
            v.emplace_back(info.name);
        return v;
    }();
    return names;
}

std::size_t step_index(std::string_view name)
{
    const auto &v = steps();
    for (std::size_t i = 0; i < v.size(); i++) {
        if (v[i] == name)
            return i;
    }
    return v.size();
}

std::size_t counter_count()
{
    return duration_base() + provider_count * duration_stride;
}

std::size_t signin_slot(std::size_t step, Result r)
{
    return step * result_count + static_cast<std::size_t>(r);
}

std::size_t single_slot(Counter c)
{
    return signin_total() + static_cast<std::size_t>(c);
}

std::size_t provider_slot(Provider p, ProviderResult r)
{
    return provider_base()
           + static_cast<std::size_t>(p) * provider_result_count
           + static_cast<std::size_t>(r);
}

std::size_t duration_slot(Provider p, std::uint64_t ms)
{
    std::size_t b = 0;
    while (b < duration_bucket_count - 1 && ms > duration_buckets_ms[b])
        b++;
    return duration_base() + static_cast<std::size_t>(p) * duration_stride
           + b;
}

std::size_t duration_sum_slot(Provider p)
{
    return duration_base() + static_cast<std::size_t>(p) * duration_stride
           + duration_bucket_count;
}

std::string render(const std::vector<std::uint64_t> &c, const Gauges &gauges)
{
    std::string out;

    if (c.size() != counter_count())
        return out;

    header(out, "twostep_signins_total", "counter",
           "Sign-in steps by method and result.");
    for (std::size_t s = 0; s < steps().size(); s++) {
        for (std::size_t r = 0; r < result_count; r++) {
            sample(out,
                   "twostep_signins_total{method=\"" + steps()[s]
                       + "\",result=\"" + result_names[r] + "\"}",
                   c[signin_slot(s, static_cast<Result>(r))]);
        }
    }

    header(out, "twostep_lockouts_total", "counter",
           "Sign-in attempts refused because an account or address is "
           "locked.");
    sample(out, "twostep_lockouts_total", c[single_slot(Counter::lockouts)]);

    header(out, "twostep_replays_total", "counter",
           "Codes refused because they were used before.");
    sample(out, "twostep_replays_total", c[single_slot(Counter::replays)]);

    header(out, "twostep_sessions_revoked_total", "counter",
           "Sessions revoked at sign-out or step-up.");
    sample(out, "twostep_sessions_revoked_total",
           c[single_slot(Counter::sessions_revoked)]);

    header(out, "twostep_fraud_reports_total", "counter",
           "Sign-ins the phone reported as fraud (pushes and calls then "
           "pause for the user).");
    sample(out, "twostep_fraud_reports_total",
           c[single_slot(Counter::fraud_reports)]);

    header(out, "twostep_provider_requests_total", "counter",
           "Requests to verification providers by result.");
    for (std::size_t p = 0; p < provider_count; p++) {
        for (std::size_t r = 0; r < provider_result_count; r++) {
            sample(out,
                   std::string("twostep_provider_requests_total{provider=\"")
                       + provider_names[p] + "\",result=\""
                       + provider_result_names[r] + "\"}",
                   c[provider_slot(static_cast<Provider>(p),
                                   static_cast<ProviderResult>(r))]);
        }
    }

    header(out, "twostep_provider_request_duration_seconds", "histogram",
           "Time until a verification provider answered.");
    for (std::size_t p = 0; p < provider_count; p++) {
        auto provider = static_cast<Provider>(p);
        std::string label = std::string("provider=\"") + provider_names[p]
                            + "\"";
        std::size_t first = duration_slot(provider, 0);
        std::uint64_t cumulative = 0;

        for (std::size_t b = 0; b < duration_bucket_count; b++) {
            cumulative += c[first + b];
            std::string le = b + 1 < duration_bucket_count
                                 ? seconds(duration_buckets_ms[b])
                                 : "+Inf";
            sample(out,
                   "twostep_provider_request_duration_seconds_bucket{"
                       + label + ",le=\"" + le + "\"}",
                   cumulative);
        }

        out += "twostep_provider_request_duration_seconds_sum{" + label
               + "} " + seconds(c[duration_sum_slot(provider)]) + "\n";
        sample(out,
               "twostep_provider_request_duration_seconds_count{" + label
                   + "}",
               cumulative);
    }

    header(out, "twostep_zone_records", "gauge",
           "Records in the shared zone (used codes, failure counts, "
           "pending requests, revoked sessions).");
    sample(out, "twostep_zone_records", gauges.zone_records);

    header(out, "twostep_zone_evictions_total", "counter",
           "Live records dropped because the shared zone was full.");
    sample(out, "twostep_zone_evictions_total",
           c[single_slot(Counter::zone_evictions)]);

    return out;
}

}  // namespace twostep::metrics
