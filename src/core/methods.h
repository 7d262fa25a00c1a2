// Second-step methods: the one table every list, parser and page uses, and
// the per-location decision.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace twostep {

// recovery: one of the user's one-time recovery codes, for when the phone
// is lost (NIST SP 800-63B 5.1.2 look-up secrets). webauthn: a security key
// or passkey (WebAuthn Level 2; NIST SP 800-63B 5.1.7, 5.1.8). remembered:
// no second step was asked, the password was typed on a device the user
// chose to remember (twostep_remember). The values are bits of a MethodSet,
// which travels as a number in signed tokens: never renumber.
enum class Method : unsigned {
    totp = 1, push = 2, call = 4, sms = 8, recovery = 16, webauthn = 32,
    remembered = 64
};
using MethodSet = unsigned;  // bit mask of Method values

// How a method proves possession (NIST SP 800-63B 5.1):
//   code         the user types a secret the module checks itself
//   out_of_band  a provider reaches the user's phone (a code it sends, or
//                an approval it reports)
//   key          a cryptographic authenticator answers a challenge
//   device       no authenticator: a signed device cookie from an earlier
//                second step stands in for one (not an SP 800-63B AAL2
//                authentication, so twostep_methods can refuse it)
enum class MethodKind { code, out_of_band, key, device };

struct MethodInfo {
    Method       method;
    const char  *name;        // in twostep_methods, tokens, the store
    const char  *label_key;   // its label in the language files
    MethodKind   kind;
    bool         typed;       // the user types a code on our page
    bool         waits;       // a provider transaction the page waits on
    bool         usual;       // may be the user's default (not a fallback)
};

// Every method, in the order lists and pages show them. Adding a method is
// a row here and a factor file in src/ngx/ (README, "How it is built").
inline constexpr MethodInfo method_table[] = {
    //  method          name        label key          kind
    //                                                 typed  waits  usual
    {Method::totp,     "totp",     "method.totp",     MethodKind::code,
                                                       true,  false, true},
    {Method::push,     "push",     "method.push",     MethodKind::out_of_band,
                                                       false, true,  true},
    {Method::call,     "call",     "method.call",     MethodKind::out_of_band,
                                                       false, true,  true},
    {Method::sms,      "sms",      "method.sms",      MethodKind::out_of_band,
                                                       true,  false, true},
    {Method::webauthn, "webauthn", "method.webauthn", MethodKind::key,
                                                       false, false, true},
    // A way back in, never the usual way.
    {Method::recovery, "recovery", "method.recovery", MethodKind::code,
                                                       true,  false, false},
    // Never offered on a page: the password on a remembered device.
    {Method::remembered, "remembered", "method.remembered", MethodKind::device,
                                                       false, false, false},
};

constexpr MethodSet method_bit(Method m)
{
    return static_cast<MethodSet>(m);
}

// The methods of one kind; all of them.
constexpr MethodSet methods_of_kind(MethodKind kind)
{
    MethodSet set = 0;
    for (const MethodInfo &info : method_table) {
        if (info.kind == kind)
            set |= method_bit(info.method);
    }
    return set;
}

constexpr MethodSet all_methods = methods_of_kind(MethodKind::code)
                                  | methods_of_kind(MethodKind::out_of_band)
                                  | methods_of_kind(MethodKind::key)
                                  | methods_of_kind(MethodKind::device);

const MethodInfo &method_info(Method m);

std::optional<Method> method_from_name(std::string_view name);  // "totp"
const char *method_name(Method m);
inline bool has_method(MethodSet set, Method m)
{
    return (set & static_cast<unsigned>(m)) != 0;
}

// Which of `available` a user may choose as their default: the usual
// ones (a recovery code is a way back in, never the usual way).
constexpr MethodSet default_choices(MethodSet available)
{
    MethodSet set = 0;
    for (const MethodInfo &info : method_table) {
        if (info.usual)
            set |= available & method_bit(info.method);
    }
    return set;
}

// The names joined for people, e.g. "totp, push, call, sms or recovery".
std::string method_names_for_people();

// Comma-separated names as they travel in a portal query ("totp,sms");
// nullopt on an unknown or empty name.
std::optional<MethodSet> methods_from_list(std::string_view list);
std::string methods_to_list(MethodSet set);

enum class Verdict {
    allow,    // valid session that satisfies the location
    sign_in,  // no usable session: full sign-in
    step_up,  // valid session, but the second step is too old or of a
              // method this location does not accept: second step only
              // (a remembered session never counts as fresh for max_age)
};

struct Session;

// `session` is a decoded, unexpired session or nullptr. max_age <= 0 means
// no freshness rule. needs_password: the location takes no identity from
// another auth module, so a session opened by one is no sign-in there.
Verdict decide(const Session *session, MethodSet allowed,
               std::int64_t max_age, std::int64_t now, bool needs_password);

}  // namespace twostep
