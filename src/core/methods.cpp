// Second-step method names and the per-location access decision.
#include "methods.h"

#include <cstdint>
#include <iterator>
#include <stdexcept>

#include "session.h"

namespace twostep {

namespace {

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

const MethodInfo &method_info(Method m)
{
    for (const MethodInfo &info : method_table) {
        if (info.method == m)
            return info;
    }
    throw std::invalid_argument("not a method");
}

std::optional<Method> method_from_name(std::string_view name)
{
    for (const MethodInfo &info : method_table) {
        if (name == info.name)
            return info.method;
    }
    return std::nullopt;
}

const char *method_name(Method m)
{
    for (const MethodInfo &info : method_table) {
        if (info.method == m)
            return info.name;
    }
    return "unknown";
}

std::string method_names_for_people()
{
    std::string text;
    constexpr std::size_t count = std::size(method_table);
    for (std::size_t i = 0; i < count; i++) {
        if (i > 0)
            text += i + 1 == count ? " or " : ", ";
        text += method_table[i].name;
    }
    return text;
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
    for (const MethodInfo &info : method_table) {
        if (!has_method(set, info.method))
            continue;
        if (!list.empty())
            list += ',';
        list += info.name;
    }
    return list;
}

Verdict decide(const Session *session, MethodSet allowed,
               std::int64_t max_age, std::int64_t now, bool needs_password)
{
    if (!session)
        return Verdict::sign_in;
    // Checked first so a session from the future fails closed whatever
    // else is wrong with it.
    if (saturating_sub(session->auth_time, now) > max_future_skew)
        return Verdict::sign_in;
    // Whoever passed another module's check has not shown the password
    // this location is configured to ask for.
    if (needs_password && !stands_for_password(session->via))
        return Verdict::sign_in;
    if (!has_method(allowed, session->method))
        return Verdict::step_up;
    if (max_age > 0 && saturating_sub(now, session->auth_time) > max_age)
        return Verdict::step_up;
    // twostep_max_age asks for a second step this recent; a remembered
    // device passed none at this sign-in.
    if (max_age > 0 && session->method == Method::remembered)
        return Verdict::step_up;
    return Verdict::allow;
}

}  // namespace twostep
