// Second-step methods and the per-location decision.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace twostep {

// recovery: one of the user's one-time recovery codes, for when the phone
// is lost (NIST SP 800-63B 5.1.2 look-up secrets).
enum class Method : unsigned {
    totp = 1, push = 2, call = 4, sms = 8, recovery = 16
};
using MethodSet = unsigned;  // bit mask of Method values
constexpr MethodSet all_methods = 1 | 2 | 4 | 8 | 16;

std::optional<Method> method_from_name(std::string_view name);  // "totp"
const char *method_name(Method m);
inline bool has_method(MethodSet set, Method m)
{
    return (set & static_cast<unsigned>(m)) != 0;
}

// Comma-separated names as they travel in a portal query ("totp,sms");
// nullopt on an unknown or empty name.
std::optional<MethodSet> methods_from_list(std::string_view list);
std::string methods_to_list(MethodSet set);

enum class Verdict {
    allow,    // valid session that satisfies the location
    sign_in,  // no usable session: full sign-in
    step_up,  // valid session, but the second step is too old or of a
              // method this location does not accept: second step only
};

struct Session;

// `session` is a decoded, unexpired session or nullptr. max_age <= 0 means
// no freshness rule.
Verdict decide(const Session *session, MethodSet allowed,
               std::int64_t max_age, std::int64_t now);

}  // namespace twostep
