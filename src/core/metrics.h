// What the module counts, and the Prometheus text exposition of it. The
// counters themselves live in nginx shared memory (src/ngx); here they are
// a flat array of numbers with a fixed layout, so this can be tested alone.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace twostep::metrics {

// How a sign-in step ended: passed, wrong, refused by a lockout, or not
// checkable (the provider or the shared state failed).
enum class Result { success, failure, locked, error };
constexpr std::size_t result_count = 4;
const char *result_name(Result r);

// The steps counted: "password", then every second-step method in the
// order of the method list (so a new method gets its series).
const std::vector<std::string> &steps();
// Index of a step name in steps(); steps().size() for an unknown name.
std::size_t step_index(std::string_view name);

// Outbound providers.
enum class Provider { duo, twilio, ntfy };
constexpr std::size_t provider_count = 3;
const char *provider_name(Provider p);

// A provider request: an HTTP 2xx answer, another HTTP status, or none
// (time-out, connection, TLS, oversized answer).
enum class ProviderResult { success, failure, error };
constexpr std::size_t provider_result_count = 3;

// Upper bounds of the duration histogram, in milliseconds (Duo's
// auth_status long-polls run up to the timeout plus 30 s).
constexpr std::uint64_t duration_buckets_ms[] = {
    50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000};
constexpr std::size_t duration_bucket_count =
    sizeof(duration_buckets_ms) / sizeof(duration_buckets_ms[0]) + 1;

// Single counters.
enum class Counter {
    lockouts, replays, sessions_revoked, zone_evictions, fraud_reports
};
constexpr std::size_t single_count = 5;

// Positions in the counter array.
std::size_t counter_count();
std::size_t signin_slot(std::size_t step, Result r);
std::size_t single_slot(Counter c);
std::size_t provider_slot(Provider p, ProviderResult r);
// The histogram bucket a duration falls in (the last one is +Inf), and the
// running sum of milliseconds.
std::size_t duration_slot(Provider p, std::uint64_t ms);
std::size_t duration_sum_slot(Provider p);

// Gauges read when the metrics are served.
struct Gauges {
    std::uint64_t zone_records = 0;
};

// The Prometheus text format, version 0.0.4, of counters laid out as
// above (counters.size() == counter_count()).
std::string render(const std::vector<std::uint64_t> &counters,
                   const Gauges &gauges);

}  // namespace twostep::metrics
