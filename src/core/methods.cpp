// Second-step method names and the per-location access decision.
#include "methods.h"

#include <cstdint>

#include "session.h"

namespace twostep {

namespace {

// The fixed order of methods_to_list().
constexpr Method method_order[] = {Method::totp, Method::push, Method::call,
                                   Method::sms, Method::recovery};

// Tolerated clock skew between the worker that issued a session and the
// one checking it; beyond this a future auth_time is treated as forged.
constexpr std::int64_t max_future_skew = 60;

// a - b, saturated to the int64 range.
std::int64_t saturating_sub(std::int64_t a, std::int64_t b)
{
    std::int64_t d;
    if (!__builtin_sub_overflow(a, b, &d))
        return d;
    return b < 0 ? INT64_MAX : INT64_MIN;
}

}  // namespace

std::optional<Method> method_from_name(std::string_view name)
{
    for (Method m : method_order) {
        if (name == method_name(m))
            return m;
    }
    return std::nullopt;
}

const char *method_name(Method m)
{
    switch (m) {
    case Method::totp:
        return "totp";
    case Method::push:
        return "push";
    case Method::call:
        return "call";
    case Method::sms:
        return "sms";
    case Method::recovery:
        return "recovery";
    }
    return "unknown";
}

std::optional<MethodSet> methods_from_list(std::string_view list)
{
    MethodSet set = 0;
    for (;;) {
        std::size_t comma = list.find(',');
        auto m = method_from_name(list.substr(0, comma));
        if (!m)
            return std::nullopt;
        set |= static_cast<MethodSet>(*m);
        if (comma == std::string_view::npos)
            return set;
        list.remove_prefix(comma + 1);
    }
}

std::string methods_to_list(MethodSet set)
{
    std::string list;
    for (Method m : method_order) {
        if (!has_method(set, m))
            continue;
        if (!list.empty())
            list += ',';
        list += method_name(m);
    }
    return list;
}

Verdict decide(const Session *session, MethodSet allowed,
               std::int64_t max_age, std::int64_t now)
{
    if (!session)
        return Verdict::sign_in;
    // Checked first so a session from the future fails closed whatever
    // else is wrong with it.
    if (saturating_sub(session->auth_time, now) > max_future_skew)
        return Verdict::sign_in;
    if (!has_method(allowed, session->method))
        return Verdict::step_up;
    if (max_age > 0 && saturating_sub(now, session->auth_time) > max_age)
        return Verdict::step_up;
    return Verdict::allow;
}

}  // namespace twostep
