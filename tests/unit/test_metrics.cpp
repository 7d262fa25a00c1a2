// The metrics layout (every slot distinct) and its Prometheus text.
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/methods.h"
#include "core/metrics.h"
#include "unit.h"

using namespace twostep::metrics;

namespace {

bool has_line(const std::string &text, const std::string &line)
{
    return text.find("\n" + line + "\n") != std::string::npos
           || text.rfind(line + "\n", 0) == 0;
}

}  // namespace

START_TEST(steps_follow_the_method_list)
{
    const auto &s = steps();
    ck_assert_string_eq(s.front(), "password");
    ck_assert_uint_eq(s.size(), 8);
    for (const char *m : {"totp", "push", "call", "sms", "webauthn",
                          "recovery", "remembered"}) {
        ck_assert_uint_lt(step_index(m), s.size());
        ck_assert(twostep::method_from_name(m).has_value());
    }
    ck_assert_uint_eq(step_index("password"), 0);
    ck_assert_uint_eq(step_index("bogus"), s.size());
    ck_assert_uint_eq(step_index(""), s.size());
}
END_TEST

START_TEST(slots_are_distinct_and_in_range)
{
    std::set<std::size_t> seen;
    auto take = [&](std::size_t slot) {
        ck_assert_uint_lt(slot, counter_count());
        ck_assert_msg(seen.insert(slot).second, "slot %zu twice", slot);
    };
    for (std::size_t s = 0; s < steps().size(); s++) {
        for (std::size_t r = 0; r < result_count; r++)
            take(signin_slot(s, static_cast<Result>(r)));
    }
    for (std::size_t c = 0; c < single_count; c++)
        take(single_slot(static_cast<Counter>(c)));
    for (Provider p : {Provider::duo, Provider::twilio, Provider::ntfy}) {
        for (std::size_t r = 0; r < provider_result_count; r++)
            take(provider_slot(p, static_cast<ProviderResult>(r)));
        take(duration_slot(p, 0));
        for (std::uint64_t ms : duration_buckets_ms)
            take(duration_slot(p, ms + 1));
        take(duration_sum_slot(p));
    }
    ck_assert_uint_eq(seen.size(), counter_count());
}
END_TEST

START_TEST(durations_fall_in_their_bucket)
{
    std::size_t first = duration_slot(Provider::duo, 0);
    ck_assert_uint_eq(duration_slot(Provider::duo, 50), first);
    ck_assert_uint_eq(duration_slot(Provider::duo, 51), first + 1);
    ck_assert_uint_eq(duration_slot(Provider::duo, 60000), first + 9);
    ck_assert_uint_eq(duration_slot(Provider::duo, 60001), first + 10);
    ck_assert_uint_eq(duration_slot(Provider::duo, UINT64_MAX), first + 10);
}
END_TEST

START_TEST(render_counts)
{
    std::vector<std::uint64_t> c(counter_count(), 0);
    c[signin_slot(step_index("totp"), Result::failure)] = 3;
    c[signin_slot(step_index("password"), Result::success)] = 7;
    c[single_slot(Counter::lockouts)] = 2;
    c[single_slot(Counter::zone_evictions)] = 5;
    c[single_slot(Counter::fraud_reports)] = 3;
    c[provider_slot(Provider::duo, ProviderResult::error)] = 1;
    c[duration_slot(Provider::duo, 40)] += 1;
    c[duration_slot(Provider::duo, 700)] += 2;
    c[duration_slot(Provider::duo, 90000)] += 1;
    c[duration_sum_slot(Provider::duo)] = 40 + 700 + 700 + 90000;
    Gauges g;
    g.zone_records = 11;

    std::string text = render(c, g);
    ck_assert(has_line(text, "# TYPE twostep_signins_total counter"));
    ck_assert(has_line(text,
        "twostep_signins_total{method=\"totp\",result=\"failure\"} 3"));
    ck_assert(has_line(text,
        "twostep_signins_total{method=\"password\",result=\"success\"} 7"));
    ck_assert(has_line(text,
        "twostep_signins_total{method=\"recovery\",result=\"locked\"} 0"));
    ck_assert(has_line(text, "twostep_lockouts_total 2"));
    ck_assert(has_line(text, "twostep_fraud_reports_total 3"));
    ck_assert(has_line(text, "twostep_replays_total 0"));
    ck_assert(has_line(text, "twostep_zone_evictions_total 5"));
    ck_assert(has_line(text, "twostep_zone_records 11"));
    ck_assert(has_line(text, "twostep_provider_requests_total"
                             "{provider=\"duo\",result=\"error\"} 1"));
    // Buckets are cumulative and end with +Inf == _count.
    ck_assert(has_line(text, "twostep_provider_request_duration_seconds_"
                             "bucket{provider=\"duo\",le=\"0.050\"} 1"));
    ck_assert(has_line(text, "twostep_provider_request_duration_seconds_"
                             "bucket{provider=\"duo\",le=\"0.500\"} 1"));
    ck_assert(has_line(text, "twostep_provider_request_duration_seconds_"
                             "bucket{provider=\"duo\",le=\"1.000\"} 3"));
    ck_assert(has_line(text, "twostep_provider_request_duration_seconds_"
                             "bucket{provider=\"duo\",le=\"60.000\"} 3"));
    ck_assert(has_line(text, "twostep_provider_request_duration_seconds_"
                             "bucket{provider=\"duo\",le=\"+Inf\"} 4"));
    ck_assert(has_line(text, "twostep_provider_request_duration_seconds_"
                             "sum{provider=\"duo\"} 91.440"));
    ck_assert(has_line(text, "twostep_provider_request_duration_seconds_"
                             "count{provider=\"duo\"} 4"));
    ck_assert(text.back() == '\n');
}
END_TEST

START_TEST(render_refuses_a_wrong_layout)
{
    std::vector<std::uint64_t> c(counter_count() - 1, 0);
    ck_assert_string_eq(render(c, Gauges{}), "");
}
END_TEST

int main()
{
    Suite *suite = suite_create("metrics");
    TCase *tc = tcase_create("metrics");
    tcase_add_test(tc, steps_follow_the_method_list);
    tcase_add_test(tc, slots_are_distinct_and_in_range);
    tcase_add_test(tc, durations_fall_in_their_bucket);
    tcase_add_test(tc, render_counts);
    tcase_add_test(tc, render_refuses_a_wrong_layout);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
