// The per-worker cache of verified session cookies.
#include "core/session_cache.h"

#include <string>

#include "unit.h"

using namespace twostep;

namespace {

constexpr std::int64_t now = 1700000000;

Session session(const std::string &user, std::int64_t expires)
{
    Session s;
    s.sid = "sid-" + user;
    s.user = user;
    s.method = Method::push;
    s.auth_time = now - 10;
    s.expires = expires;
    return s;
}

}  // namespace

START_TEST(remembers_what_was_put)
{
    SessionCache cache(64);
    ck_assert(cache.find("s.token-a.mac", now) == nullptr);
    cache.put("s.token-a.mac", session("alice", now + 100));
    const Session *s = cache.find("s.token-a.mac", now);
    ck_assert(s != nullptr);
    ck_assert_str_eq(s->user.c_str(), "alice");
    ck_assert_str_eq(s->sid.c_str(), "sid-alice");
    ck_assert(s->method == Method::push);
}
END_TEST

START_TEST(only_the_exact_token)
{
    SessionCache cache(64);
    cache.put("s.token-a.mac", session("alice", now + 100));
    // One byte off, a prefix, a longer token, empty: not the cached one.
    ck_assert(cache.find("s.token-a.maC", now) == nullptr);
    ck_assert(cache.find("s.token-a.ma", now) == nullptr);
    ck_assert(cache.find("s.token-a.mac1", now) == nullptr);
    ck_assert(cache.find("", now) == nullptr);
}
END_TEST

START_TEST(expired_is_not_found)
{
    SessionCache cache(64);
    cache.put("s.token-a.mac", session("alice", now + 100));
    ck_assert(cache.find("s.token-a.mac", now + 99) != nullptr);
    ck_assert(cache.find("s.token-a.mac", now + 100) == nullptr);
}
END_TEST

START_TEST(a_slot_holds_one_token)
{
    // One slot: the newer token replaces the older, which then misses.
    SessionCache cache(1);
    cache.put("s.token-a.mac", session("alice", now + 100));
    cache.put("s.token-b.mac", session("bob", now + 100));
    ck_assert(cache.find("s.token-a.mac", now) == nullptr);
    const Session *s = cache.find("s.token-b.mac", now);
    ck_assert(s != nullptr);
    ck_assert_str_eq(s->user.c_str(), "bob");
}
END_TEST

int main()
{
    Suite *suite = suite_create("session_cache");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, remembers_what_was_put);
    tcase_add_test(tc, only_the_exact_token);
    tcase_add_test(tc, expired_is_not_found);
    tcase_add_test(tc, a_slot_holds_one_token);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
