// The per-worker cache of verified session cookies.
#include "core/session_cache.h"

#include <map>
#include <string>

#include "core/guard.h"
#include "core/keyring.h"
#include "core/user_store.h"
#include "unit.h"

using namespace twostep;

namespace {

constexpr std::int64_t now = 1700000000;

std::shared_ptr<const UserStore> parse(const std::string &json)
{
    std::string error;
    auto store = UserStore::parse(json, error);
    ck_assert_msg(store != nullptr, "%s", error.c_str());
    return store;
}

// The users the sessions below name, each with an authenticator (parsed
// in the first test that asks: Check cannot report a failure before).
const UserStore *users()
{
    static const auto store = parse(R"({"users": {
        "alice": {"totp": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"},
        "bob": {"totp": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ"},
        "carol": {"totp": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXR"}}})");
    return store.get();
}

Session session(const std::string &user, std::int64_t expires)
{
    Session s;
    if (const User *u = users()->find(user)) {
        s.credentials = u->credential_tag;
    }
    s.sid = "sid-" + user;
    s.user = user;
    s.method = Method::push;
    s.auth_time = now - 10;
    s.expires = expires;
    return s;
}

// Shared state that counts its look-ups (no capacity, no expiry).
class CountingState : public SharedState {
public:
    bool update(std::string_view key, std::int64_t, std::int64_t,
                const std::function<bool(StateRecord &)> &change,
                bool) override
    {
        ++lookups;
        StateRecord &r = records[std::string(key)];
        StateRecord copy = r;
        if (change(copy)) {
            r = copy;
        }
        return true;
    }
    std::uint64_t revocation_epoch() override { return epoch; }
    void next_revocation_epoch() override { ++epoch; }

    std::map<std::string, StateRecord> records;
    int lookups = 0;
    std::uint64_t epoch = 0;
};

}  // namespace

// A signed-in request looks in the shared state only when a session was
// revoked since the cookie was last checked (no zone lock on the hot path).
START_TEST(verified_looks_up_only_after_a_revocation)
{
    KeyRing keys;
    ck_assert(keys.add(std::string(32, 'k')));
    CountingState state;
    SessionCache cache(64);
    std::string a = encode_session(keys, session("alice", now + 100));
    Session bs = session("bob", now + 100);
    std::string b = encode_session(keys, bs);

    auto s = cache.verified(keys, state, users(), a, now);
    ck_assert(s != nullptr);
    ck_assert_str_eq(s->user.c_str(), "alice");
    int first = state.lookups;
    ck_assert_int_gt(first, 0);
    for (int i = 0; i < 10; ++i)
        ck_assert(cache.verified(keys, state, users(), a, now) == s);
    ck_assert_int_eq(state.lookups, first);

    // Bob signs out: alice's cookie is looked up once more, then not.
    ck_assert(cache.verified(keys, state, users(), b, now) != nullptr);
    ck_assert(revoke_session(state, bs, now));
    ck_assert(cache.verified(keys, state, users(), b, now) == nullptr);
    int after = state.lookups;
    ck_assert(cache.verified(keys, state, users(), a, now) == s);
    ck_assert_int_gt(state.lookups, after);
    after = state.lookups;
    ck_assert(cache.verified(keys, state, users(), a, now) == s);
    ck_assert_int_eq(state.lookups, after);
    ck_assert(cache.verified(keys, state, users(), b, now) == nullptr);

    // Forged or expired: nothing, and nothing cached.
    ck_assert(cache.verified(keys, state, users(), a + "x", now)
              == nullptr);
    ck_assert(cache.verified(keys, state, users(), a, now + 100)
              == nullptr);
    // What verified() handed out outlives the slot being reused.
    SessionCache one(1);
    auto kept = one.verified(keys, state, users(), a, now);
    one.put("s.other.mac", session("carol", now + 100));
    ck_assert_str_eq(kept->user.c_str(), "alice");
}
END_TEST

// The session's user must still be in the store with the password and
// authenticator the session was made with (ASVS 3.3.3); a reloaded store
// is asked again, the same store is not.
START_TEST(verified_asks_each_store_for_the_user)
{
    KeyRing keys;
    ck_assert(keys.add(std::string(32, 'k')));
    CountingState state;
    SessionCache cache(64);
    std::string a = encode_session(keys, session("alice", now + 100));

    ck_assert(cache.verified(keys, state, users(), a, now) != nullptr);
    ck_assert(cache.verified(keys, state, users(), a, now) != nullptr);

    // A new authenticator for alice: the same cookie opens nothing.
    auto replaced = parse(R"({"users": {
        "alice": {"totp": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXA"}}})");
    ck_assert(cache.verified(keys, state, replaced.get(), a, now) == nullptr);
    ck_assert(cache.verified(keys, state, replaced.get(), a, now) == nullptr);
    // alice removed: nothing either.
    auto removed = parse(R"({"users": {
        "bob": {"totp": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXQ"}}})");
    ck_assert(cache.verified(keys, state, removed.get(), a, now) == nullptr);
    // The same store as at first, loaded anew: alice again.
    auto again = parse(R"({"users": {
        "alice": {"totp": "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP"}}})");
    ck_assert(again->generation() != users()->generation());
    ck_assert(cache.verified(keys, state, again.get(), a, now) != nullptr);
    // No store (it changed and does not load): nothing.
    ck_assert(cache.verified(keys, state, nullptr, a, now) == nullptr);
}
END_TEST

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

    // The same tail (the same slot) and length, one byte off at the start
    // or in the middle: still not the cached one.
    std::string token = "s." + std::string(100, 'p') + ".mac-mac-mac-mac-mac";
    cache.put(token, session("alice", now + 100));
    ck_assert(cache.find(token, now) != nullptr);
    for (std::size_t at : {std::size_t(0), std::size_t(9), std::size_t(60)}) {
        std::string other = token;
        other[at] = 'q';
        ck_assert(cache.find(other, now) == nullptr);
    }

    // Every length around the comparison's 16-byte steps, one byte off
    // anywhere outside the tail the slot is chosen by: not found.
    for (std::size_t len = 1; len <= 70; len++) {
        std::string t = std::string(len, 'p') + "mac-mac-";
        cache.put(t, session("alice", now + 100));
        ck_assert(cache.find(t, now) != nullptr);
        for (std::size_t at = 0; at < len; at++) {
            std::string other = t;
            other[at] = 'q';
            ck_assert_msg(cache.find(other, now) == nullptr,
                          "length %zu, byte %zu", t.size(), at);
        }
    }
}
END_TEST

// A cookie whose payload was changed but whose MAC (the tail the slot is
// chosen by) was kept lands on the cached cookie's slot and is refused.
START_TEST(a_changed_payload_with_the_cached_mac_is_refused)
{
    KeyRing keys;
    ck_assert(keys.add(std::string(32, 'k')));
    CountingState state;
    SessionCache cache(64);
    std::string a = encode_session(keys, session("alice", now + 100));
    ck_assert(cache.verified(keys, state, users(), a, now) != nullptr);
    std::string forged = a;
    forged[3] = forged[3] == 'A' ? 'B' : 'A';
    ck_assert(cache.verified(keys, state, users(), forged, now)
              == nullptr);
    ck_assert(cache.verified(keys, state, users(), a, now) != nullptr);
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
    tcase_add_test(tc, a_changed_payload_with_the_cached_mac_is_refused);
    tcase_add_test(tc, expired_is_not_found);
    tcase_add_test(tc, a_slot_holds_one_token);
    tcase_add_test(tc, verified_looks_up_only_after_a_revocation);
    tcase_add_test(tc, verified_asks_each_store_for_the_user);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
