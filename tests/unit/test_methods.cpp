// Second-step method names and lists, and every branch of decide().
#include <cstdint>
#include <string>

#include "core/methods.h"
#include "core/session.h"
#include "unit.h"

using namespace twostep;

namespace {

constexpr std::int64_t now = 1700000000;

Session session(Method m, std::int64_t auth_time)
{
    Session s;
    s.sid = "sid";
    s.user = "alice";
    s.method = m;
    s.auth_time = auth_time;
    s.expires = INT64_MAX;  // decide() is given unexpired sessions
    return s;
}

const char *verdict_name(Verdict v)
{
    switch (v) {
    case Verdict::allow:
        return "allow";
    case Verdict::sign_in:
        return "sign_in";
    case Verdict::step_up:
        return "step_up";
    }
    return "?";
}

}  // namespace

#define ck_assert_verdict(got, want)                                        \
    ck_assert_string_eq(verdict_name(got), verdict_name(want))

START_TEST(method_names)
{
    struct Pair {
        Method m;
        const char *name;
        unsigned bit;
    };
    const Pair pairs[] = {{Method::totp, "totp", 1}, {Method::push, "push", 2},
                          {Method::call, "call", 4}, {Method::sms, "sms", 8},
                          {Method::recovery, "recovery", 16},
                          {Method::remembered, "remembered", 64}};
    for (const Pair &p : pairs) {
        ck_assert_string_eq(method_name(p.m), p.name);
        auto m = method_from_name(p.name);
        ck_assert(m.has_value());
        ck_assert(*m == p.m);
        ck_assert_uint_eq(static_cast<unsigned>(p.m), p.bit);
        ck_assert(has_method(all_methods, p.m));
        ck_assert(has_method(p.bit, p.m));
        ck_assert(!has_method(all_methods & ~p.bit, p.m));
    }
    const char *unknown[] = {"", "TOTP", "Totp", "otp", "totp ", " sms",
                             "email", "totp,sms"};
    for (const char *name : unknown)
        ck_assert_msg(!method_from_name(name), "accepted '%s'", name);
    ck_assert(!method_from_name(std::string("sms\0", 4)));
}
END_TEST

// The table is the one list: names, label keys and bits agree, every kind
// is one of three, and the names for people list every row.
START_TEST(method_table_rows)
{
    MethodSet seen = 0;
    std::string names;
    for (const MethodInfo &info : method_table) {
        unsigned bit = method_bit(info.method);
        ck_assert_msg(bit != 0 && (bit & (bit - 1)) == 0, "%s", info.name);
        ck_assert_msg((seen & bit) == 0, "%s twice", info.name);
        seen |= bit;
        ck_assert_string_eq(info.label_key,
                            ("method." + std::string(info.name)).c_str());
        ck_assert(&method_info(info.method) == &info);
        ck_assert(method_from_name(info.name) == info.method);
        // A transaction to wait on is a provider's, and typed codes are
        // not waited on.
        ck_assert(!info.waits || info.kind == MethodKind::out_of_band);
        ck_assert(!(info.waits && info.typed));
        names += names.empty() ? "" : " ";
        names += info.name;
    }
    ck_assert_uint_eq(seen, all_methods);
    ck_assert_uint_eq(methods_of_kind(MethodKind::code)
                      | methods_of_kind(MethodKind::out_of_band)
                      | methods_of_kind(MethodKind::key)
                      | methods_of_kind(MethodKind::device), all_methods);
    ck_assert_uint_eq(methods_of_kind(MethodKind::device),
                      method_bit(Method::remembered));
    ck_assert_uint_eq(methods_of_kind(MethodKind::out_of_band),
                      method_bit(Method::push) | method_bit(Method::call)
                      | method_bit(Method::sms));
    ck_assert_string_eq(method_names_for_people(),
                        "totp, push, call, sms, webauthn, recovery or "
                        "remembered");
    ck_assert_string_eq(names,
                        "totp push call sms webauthn recovery remembered");
    ck_assert(!method_info(Method::remembered).usual);
    ck_assert(!method_info(Method::remembered).typed);
    ck_assert_uint_eq(methods_of_kind(MethodKind::key),
                      method_bit(Method::webauthn));
    ck_assert(method_info(Method::webauthn).usual);
    ck_assert(!method_info(Method::webauthn).typed);
    ck_assert(!method_info(Method::recovery).usual);
    ck_assert(method_info(Method::push).waits);
    ck_assert(method_info(Method::sms).typed);
}
END_TEST

START_TEST(method_lists)
{
    auto parse = [](const char *list) {
        return methods_from_list(list).value_or(0xdead);
    };
    ck_assert_uint_eq(parse("totp"), 1);
    ck_assert_uint_eq(parse("sms"), 8);
    ck_assert_uint_eq(parse("totp,sms"), 9);
    ck_assert_uint_eq(parse("sms,totp"), 9);
    ck_assert_uint_eq(parse("push,call"), 6);
    ck_assert_uint_eq(parse("totp,push,call,sms,webauthn,recovery,"
                            "remembered"),
                      all_methods);
    ck_assert_uint_eq(parse("webauthn"), 32);
    ck_assert_uint_eq(parse("sms,sms"), 8);

    const char *bad[] = {"", ",", "totp,", ",totp", "totp,,sms",
                         "totp, sms", " totp", "totp;sms", "totp,fax",
                         "TOTP", "totp sms"};
    for (const char *list : bad)
        ck_assert_msg(!methods_from_list(list), "accepted '%s'", list);

    ck_assert_string_eq(methods_to_list(0), "");
    ck_assert_string_eq(methods_to_list(1), "totp");
    ck_assert_string_eq(methods_to_list(9), "totp,sms");
    ck_assert_string_eq(methods_to_list(12), "call,sms");
    ck_assert_string_eq(methods_to_list(all_methods),
                        "totp,push,call,sms,webauthn,recovery,remembered");
    // Bits that name no method are left out.
    ck_assert_string_eq(methods_to_list(0x80 | 2), "push");
    for (MethodSet set = 1; set <= all_methods; set++) {
        if ((set & ~all_methods) == 0)
            ck_assert_uint_eq(parse(methods_to_list(set).c_str()), set);
    }
}
END_TEST

// A default is a usual way to sign in the user has: never a recovery
// code, a remembered device, or a method they do not have.
START_TEST(default_choices_are_usual_methods)
{
    ck_assert_uint_eq(default_choices(0), 0);
    ck_assert_uint_eq(default_choices(all_methods),
                      method_bit(Method::totp) | method_bit(Method::push)
                      | method_bit(Method::call) | method_bit(Method::sms)
                      | method_bit(Method::webauthn));
    ck_assert_uint_eq(default_choices(method_bit(Method::recovery)
                                      | method_bit(Method::remembered)), 0);
    ck_assert_uint_eq(default_choices(method_bit(Method::totp)
                                      | method_bit(Method::recovery)),
                      method_bit(Method::totp));
}
END_TEST

START_TEST(decide_no_session)
{
    ck_assert_verdict(decide(nullptr, all_methods, 0, now, false),
                      Verdict::sign_in);
    ck_assert_verdict(decide(nullptr, all_methods, 3600, now, false),
                      Verdict::sign_in);
}
END_TEST

START_TEST(decide_allow)
{
    Session s = session(Method::totp, now - 100);
    ck_assert_verdict(decide(&s, all_methods, 0, now, false), Verdict::allow);
    ck_assert_verdict(decide(&s, 1, 0, now, false), Verdict::allow);
    ck_assert_verdict(decide(&s, 1, 3600, now, false), Verdict::allow);
    Session sms = session(Method::sms, now);
    ck_assert_verdict(decide(&sms, 9, 60, now, false), Verdict::allow);
}
END_TEST

START_TEST(decide_method_not_allowed)
{
    Session s = session(Method::sms, now - 100);
    ck_assert_verdict(decide(&s, 1, 0, now, false), Verdict::step_up);
    ck_assert_verdict(decide(&s, 1 | 2 | 4, 3600, now, false),
                      Verdict::step_up);
    ck_assert_verdict(decide(&s, 0, 0, now, false), Verdict::step_up);
    ck_assert_verdict(decide(&s, 8, 0, now, false), Verdict::allow);
}
END_TEST

START_TEST(decide_max_age)
{
    Session s = session(Method::totp, now - 600);
    ck_assert_verdict(decide(&s, 1, 599, now, false), Verdict::step_up);
    ck_assert_verdict(decide(&s, 1, 600, now, false),
                      Verdict::allow);  // boundary
    ck_assert_verdict(decide(&s, 1, 601, now, false), Verdict::allow);
    // max_age <= 0: no freshness rule, however old.
    Session ancient = session(Method::totp, 0);
    ck_assert_verdict(decide(&ancient, 1, 0, now, false), Verdict::allow);
    ck_assert_verdict(decide(&ancient, 1, -5, now, false), Verdict::allow);
    ck_assert_verdict(decide(&ancient, 1, 1, now, false), Verdict::step_up);
}
END_TEST

// A remembered device opens what accepts it, but never a location that
// wants a recent second step, and not one whose methods leave it out.
START_TEST(decide_remembered)
{
    Session s = session(Method::remembered, now);
    ck_assert_verdict(decide(&s, all_methods, 0, now, false), Verdict::allow);
    ck_assert_verdict(decide(&s, all_methods, 3600, now, false),
                      Verdict::step_up);
    ck_assert_verdict(decide(&s, all_methods & ~method_bit(Method::remembered),
                             0, now, false),
                      Verdict::step_up);
}
END_TEST

START_TEST(decide_future_auth_time)
{
    Session skewed = session(Method::totp, now + 60);
    ck_assert_verdict(decide(&skewed, 1, 0, now, false), Verdict::allow);
    ck_assert_verdict(decide(&skewed, 1, 30, now, false), Verdict::allow);
    Session future = session(Method::totp, now + 61);
    ck_assert_verdict(decide(&future, 1, 0, now, false), Verdict::sign_in);
    ck_assert_verdict(decide(&future, 1, 3600, now, false), Verdict::sign_in);
    // Fails closed even when it would otherwise be a step-up.
    Session future_sms = session(Method::sms, now + 3600);
    ck_assert_verdict(decide(&future_sms, 1, 0, now, false), Verdict::sign_in);
}
END_TEST

START_TEST(decide_extreme_values)
{
    Session s = session(Method::totp, INT64_MAX);
    ck_assert_verdict(decide(&s, 1, 10, INT64_MIN, false), Verdict::sign_in);
    ck_assert_verdict(decide(&s, 1, 10, INT64_MAX, false), Verdict::allow);
    Session old = session(Method::totp, INT64_MIN);
    // The age overflows int64 and saturates: older than any max_age.
    ck_assert_verdict(decide(&old, 1, INT64_MAX - 1, INT64_MAX, false),
                      Verdict::step_up);
    ck_assert_verdict(decide(&old, 1, 0, INT64_MAX, false), Verdict::allow);
}
END_TEST

START_TEST(decide_first_factor)
{
    Session password = session(Method::totp, now - 100);
    Session identity = password;
    identity.via = FirstFactor::identity;
    // Where another module's identity is taken, either session opens it.
    ck_assert_verdict(decide(&password, 1, 0, now, false), Verdict::allow);
    ck_assert_verdict(decide(&identity, 1, 0, now, false), Verdict::allow);
    // Where the password is the first factor, only a password session.
    ck_assert_verdict(decide(&password, 1, 0, now, true), Verdict::allow);
    ck_assert_verdict(decide(&identity, 1, 0, now, true), Verdict::sign_in);
    // A sign-in, not a step-up, even when the second step would not do.
    Session identity_sms = session(Method::sms, now - 100);
    identity_sms.via = FirstFactor::identity;
    ck_assert_verdict(decide(&identity_sms, 1, 60, now, true),
                      Verdict::sign_in);
    ck_assert_verdict(decide(&identity_sms, 1, 60, now, false),
                      Verdict::step_up);
    // A passkey (UV) stands for the password and a key as the second
    // step; where the key is not taken, a step-up to what is.
    Session passkey = session(Method::webauthn, now - 100);
    passkey.via = FirstFactor::passkey;
    MethodSet key = method_bit(Method::webauthn);
    ck_assert_verdict(decide(&passkey, key, 0, now, true), Verdict::allow);
    ck_assert_verdict(decide(&passkey, key, 0, now, false), Verdict::allow);
    ck_assert_verdict(decide(&passkey, 1, 0, now, true), Verdict::step_up);
    ck_assert(stands_for_password(FirstFactor::passkey));
    ck_assert(!stands_for_password(FirstFactor::identity));
}
END_TEST

int main()
{
    Suite *suite = suite_create("methods");
    TCase *names = tcase_create("names");
    tcase_add_test(names, method_names);
    tcase_add_test(names, method_table_rows);
    tcase_add_test(names, method_lists);
    tcase_add_test(names, default_choices_are_usual_methods);
    suite_add_tcase(suite, names);

    TCase *decision = tcase_create("decide");
    tcase_add_test(decision, decide_no_session);
    tcase_add_test(decision, decide_allow);
    tcase_add_test(decision, decide_method_not_allowed);
    tcase_add_test(decision, decide_max_age);
    tcase_add_test(decision, decide_remembered);
    tcase_add_test(decision, decide_future_auth_time);
    tcase_add_test(decision, decide_extreme_values);
    tcase_add_test(decision, decide_first_factor);
    suite_add_tcase(suite, decision);
    return run_suite(suite);
}
