// The guard on shared state: lockout, TOTP steps used once, revocation at
// sign-out, all against an in-memory SharedState that keeps the contract
// documented in core/guard.h (expiry, capacity, LRU, pinned records).
#include <cstdint>
#include <functional>
#include <map>
#include <set>
#include <stdexcept>
#include <string>
#include <string_view>

#include "core/approval.h"
#include "core/guard.h"
#include "core/keyring.h"
#include "core/ntfy.h"
#include "core/session.h"
#include "unit.h"

using namespace twostep;

namespace {

constexpr std::int64_t now = 1700000000;
constexpr std::int64_t period = 30;

// SharedState as guard.h describes it. A record is expired at `now` when
// its expiry is <= now (as for sessions). With a capacity, storing a new
// key in a full store first drops every expired record, then the least
// recently used record that is not pinned; if that frees nothing the
// update fails. Reads and updates of a key already held never fail.
class MemState : public SharedState {
public:
    struct Entry {
        StateRecord record;
        std::int64_t expires = 0;
        bool pinned = false;
        std::uint64_t used = 0;  // LRU clock
    };

    explicit MemState(std::size_t capacity = 0) : capacity_(capacity) {}

    bool update(std::string_view key, std::int64_t now_, std::int64_t expires,
                const std::function<bool(StateRecord &)> &change,
                bool pinned = false) override
    {
        ++updates;
        auto it = entries_.find(std::string(key));
        StateRecord record;
        if (it != entries_.end() && it->second.expires > now_) {
            record = it->second.record;
        }
        bool keep = change(record);
        if (it != entries_.end()) {
            it->second.used = ++clock_;
        }
        if (!keep) {
            return true;
        }
        if (it == entries_.end()) {
            if (!make_room(now_)) {
                return false;
            }
            it = entries_.emplace(std::string(key), Entry{}).first;
        }
        it->second.record = record;
        it->second.expires = expires;
        it->second.pinned = pinned || holds_state(record);
        it->second.used = ++clock_;
        return true;
    }

    std::uint64_t revocation_epoch() override { return epoch; }
    void next_revocation_epoch() override { ++epoch; }

    std::size_t size() const { return entries_.size(); }
    bool has(const std::string &key) const { return entries_.count(key); }
    const Entry &at(const std::string &key) const { return entries_.at(key); }

    int updates = 0;
    std::uint64_t epoch = 0;

private:
    bool make_room(std::int64_t now_)
    {
        if (capacity_ == 0 || entries_.size() < capacity_) {
            return true;
        }
        for (auto it = entries_.begin(); it != entries_.end();) {
            it = it->second.expires <= now_ ? entries_.erase(it) : ++it;
        }
        if (entries_.size() < capacity_) {
            return true;
        }
        auto victim = entries_.end();
        for (auto it = entries_.begin(); it != entries_.end(); ++it) {
            if (!it->second.pinned
                && (victim == entries_.end()
                    || it->second.used < victim->second.used)) {
                victim = it;
            }
        }
        if (victim == entries_.end()) {
            return false;
        }
        entries_.erase(victim);
        return true;
    }

    std::size_t capacity_;
    std::uint64_t clock_ = 0;
    std::map<std::string, Entry> entries_;
};

// A store that cannot answer at all (say, Redis unreachable).
class DownState : public SharedState {
public:
    bool update(std::string_view, std::int64_t, std::int64_t,
                const std::function<bool(StateRecord &)> &, bool) override
    {
        return false;
    }
    std::uint64_t revocation_epoch() override { return 0; }
    void next_revocation_epoch() override {}
};

Session session(const std::string &sid, std::int64_t auth_time,
                std::int64_t expires = now + 3600)
{
    Session s;
    s.sid = sid;
    s.user = "alice";
    s.auth_time = auth_time;
    s.expires = expires;
    return s;
}

// A store of `capacity` records filled with pinned ones only: "R" and
// revocations of unrelated sessions that outlive every test.
void fill_pinned(MemState &state, std::size_t capacity)
{
    ck_assert(prepare_state(state, now));
    for (std::size_t i = 1; i < capacity; ++i) {
        ck_assert(revoke_session(
            state, session("fill" + std::to_string(i), now - 1, now + 86400),
            now));
    }
    ck_assert_uint_eq(state.size(), capacity);
    ck_assert(!state.has("R") || state.at("R").record.count == 0);
}

const LockoutRule rule{3, 300, 50};

}  // namespace

// ---- the test double itself: the guard's tests rely on it --------------

START_TEST(memstate_contract)
{
    MemState state(2);
    auto set = [](std::int64_t v) {
        return [v](StateRecord &r) {
            r.count = v;
            return true;
        };
    };
    auto read = [](std::int64_t &out) {
        return [&out](StateRecord &r) {
            out = r.count;
            return false;
        };
    };
    std::int64_t got = -1;
    ck_assert(state.update("a", now, now + 10, read(got)));
    ck_assert_int_eq(got, 0);
    ck_assert_uint_eq(state.size(), 0);  // a read stores nothing
    ck_assert(state.update("a", now, now + 10, set(0)));  // empty
    ck_assert(state.update("b", now, now + 10, set(2)));  // holds a count
    // Full: the LRU empty record ("a") makes room for "c"; "b" is kept
    // although not pinned.
    ck_assert(state.update("c", now, now + 10, set(0)));
    ck_assert(!state.has("a"));
    ck_assert(state.has("b"));
    // "c" is the only evictable one; after it, nothing is.
    ck_assert(state.update("d", now, now + 10, set(4), true));
    ck_assert(!state.has("c"));
    ck_assert(!state.update("e", now, now + 10, set(5)));
    ck_assert(!state.has("e"));
    // Updating a held key never fails; a read sees the value until expiry.
    ck_assert(state.update("b", now, now + 10, set(7), true));
    ck_assert(state.update("b", now + 9, 0, read(got)));
    ck_assert_int_eq(got, 7);
    ck_assert(state.update("b", now + 10, 0, read(got)));
    ck_assert_int_eq(got, 0);
    // Expired records, even pinned, go first.
    ck_assert(state.update("e", now + 10, now + 20, set(5)));
    ck_assert(state.has("e"));
    ck_assert_uint_eq(state.size(), 1);
}
END_TEST

START_TEST(memstate_lru_order)
{
    MemState state(2);
    auto put = [](StateRecord &) { return true; };
    auto get = [](StateRecord &) { return false; };
    ck_assert(state.update("old", now, now + 10, put));
    ck_assert(state.update("new", now, now + 10, put));
    ck_assert(state.update("old", now, 0, get));  // a read is a use
    ck_assert(state.update("third", now, now + 10, put));
    ck_assert(state.has("old"));
    ck_assert(!state.has("new"));
}
END_TEST

// ---- prepare_state ------------------------------------------------------

START_TEST(prepare_creates_revoked_before)
{
    MemState state;
    ck_assert_uint_eq(state.size(), 0);
    ck_assert(prepare_state(state, now));
    ck_assert_uint_eq(state.size(), 1);
    ck_assert(state.has(std::string(revoked_before_key)));
    const auto &r = state.at("R");
    ck_assert(r.pinned);
    ck_assert_int_eq(r.expires, INT64_MAX);
    ck_assert_int_eq(r.record.count, 0);
    ck_assert_int_eq(r.record.until, 0);
    // Preparing again keeps what the record holds.
    ck_assert(state.update("R", now, INT64_MAX,
                           [](StateRecord &rec) {
                               rec.count = 42;
                               return true;
                           },
                           true));
    ck_assert(prepare_state(state, now + 1000));
    ck_assert_uint_eq(state.size(), 1);
    ck_assert_int_eq(state.at("R").record.count, 42);
}
END_TEST

START_TEST(prepare_full_store)
{
    MemState state(1);
    ck_assert(revoke_session(state, session("x", now), now));
    ck_assert(!prepare_state(state, now));
    ck_assert(!state.has("R"));
    DownState down;
    ck_assert(!prepare_state(down, now));
}
END_TEST

// ---- lockout ------------------------------------------------------------

START_TEST(lockout_nth_failure_locks)
{
    MemState state;
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", now), 0);
    for (int i = 1; i < rule.max_failures; ++i) {
        ck_assert_int_eq(
            record_failure(state, rule, "alice", "10.0.0.1", now + i), 0);
        ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", now + i),
                         0);
    }
    const std::int64_t t = now + rule.max_failures;
    ck_assert_int_eq(record_failure(state, rule, "alice", "10.0.0.1", t),
                     rule.lock_time);
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", t),
                     rule.lock_time);
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", t + 100),
                     rule.lock_time - 100);
    ck_assert_int_eq(
        locked_for(state, rule, "alice", "10.0.0.1", t + rule.lock_time - 1),
        1);
    // Only from that address: its owner elsewhere may still sign in (the
    // account as a whole locks at max_account_failures). Other accounts
    // are not locked.
    ck_assert_int_eq(locked_for(state, rule, "alice", "192.0.2.7", t + 100),
                     0);
    ck_assert_int_eq(locked_for(state, rule, "bob", "10.0.0.1", t + 100), 0);
    // Failing during the lock does not extend it.
    ck_assert_int_eq(record_failure(state, rule, "alice", "10.0.0.1", t + 100),
                     rule.lock_time - 100);
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", t + 200),
                     rule.lock_time - 200);
}
END_TEST

START_TEST(lockout_ends)
{
    MemState state;
    for (int i = 0; i < rule.max_failures; ++i)
        record_failure(state, rule, "alice", "10.0.0.1", now);
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", now),
                     rule.lock_time);
    const std::int64_t after = now + rule.lock_time;
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", after), 0);
    // The count starts over: N-1 failures are allowed again, the Nth locks.
    for (int i = 1; i < rule.max_failures; ++i)
        ck_assert_int_eq(
            record_failure(state, rule, "alice", "10.0.0.1", after), 0);
    ck_assert_int_eq(record_failure(state, rule, "alice", "10.0.0.1", after),
                     rule.lock_time);
}
END_TEST

START_TEST(lockout_success_resets)
{
    MemState state;
    for (int i = 1; i < rule.max_failures; ++i)
        ck_assert_int_eq(
            record_failure(state, rule, "alice", "10.0.0.1", now), 0);
    ck_assert_int_eq(state.at("u:alice").record.count, rule.max_failures - 1);
    record_success(state, rule, "alice", "10.0.0.1", now + 1);
    ck_assert_int_eq(state.at("u:alice").record.count, 0);
    // Had the count survived, the first of these would lock.
    for (int i = 1; i < rule.max_failures; ++i)
        ck_assert_int_eq(
            record_failure(state, rule, "alice", "10.0.0.1", now + 2), 0);
    ck_assert_int_eq(record_failure(state, rule, "alice", "10.0.0.1", now + 2),
                     rule.lock_time);
}
END_TEST

START_TEST(lockout_success_does_not_lift)
{
    MemState state;
    for (int i = 0; i < rule.max_failures; ++i)
        record_failure(state, rule, "alice", "10.0.0.1", now);
    record_success(state, rule, "alice", "10.0.0.1", now + 10);
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", now + 10),
                     rule.lock_time - 10);
    ck_assert_int_eq(state.at("f:alice 10.0.0.1").record.until,
                     now + rule.lock_time);
}
END_TEST

START_TEST(lockout_address_spray)
{
    MemState state;
    const LockoutRule spray{3, 300, 5};
    for (int i = 0; i < spray.max_address_failures - 1; ++i) {
        const std::string user = "user" + std::to_string(i);
        ck_assert_int_eq(record_failure(state, spray, user, "203.0.113.9", now),
                         0);
    }
    ck_assert_int_eq(locked_for(state, spray, "victim", "203.0.113.9", now), 0);
    // No user has more than one failure, yet the address is now locked.
    ck_assert_int_eq(record_failure(state, spray, "last", "203.0.113.9", now),
                     spray.lock_time);
    ck_assert_int_eq(
        locked_for(state, spray, "victim", "203.0.113.9", now + 50),
        spray.lock_time - 50);
    ck_assert_int_eq(locked_for(state, spray, "user0", "203.0.113.9", now),
                     spray.lock_time);
    // The accounts themselves are not locked from elsewhere.
    ck_assert_int_eq(locked_for(state, spray, "user0", "198.51.100.1", now), 0);
    ck_assert_int_eq(locked_for(state, spray, "last", "198.51.100.1", now), 0);
    ck_assert_int_eq(
        locked_for(state, spray, "victim", "203.0.113.9",
                   now + spray.lock_time),
        0);
}
END_TEST

START_TEST(lockout_full_store_fails_closed)
{
    MemState state(3);
    fill_pinned(state, 3);
    // No room to count: the failure reports the account locked.
    ck_assert_int_eq(record_failure(state, rule, "alice", "10.0.0.1", now),
                     rule.lock_time);
    ck_assert(!state.has("u:alice"));
    ck_assert(!state.has("a:10.0.0.1"));
    ck_assert_uint_eq(state.size(), 3);
    // And the next attempt is refused before the guess, not allowed
    // because the failure before left no record.
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", now + 1),
                     rule.lock_time);
    // A store that cannot answer counts as locked everywhere.
    DownState down;
    ck_assert_int_eq(locked_for(down, rule, "alice", "10.0.0.1", now),
                     rule.lock_time);
    ck_assert_int_eq(record_failure(down, rule, "alice", "10.0.0.1", now),
                     rule.lock_time);
}
END_TEST

START_TEST(lockout_held_lock_survives_full_store)
{
    // A lock already recorded is an update of a held key: it still reads
    // and still blocks after the store fills up.
    MemState state(4);
    ck_assert(prepare_state(state, now));
    for (int i = 0; i < rule.max_failures; ++i)
        record_failure(state, rule, "alice", "10.0.0.1", now);
    ck_assert(revoke_session(state, session("p", now - 1, now + 86400), now));
    ck_assert_uint_eq(state.size(), 4);
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", now + 1),
                     rule.lock_time - 1);
    ck_assert_int_eq(record_failure(state, rule, "alice", "10.0.0.1", now + 1),
                     rule.lock_time - 1);
}
END_TEST

// Someone who knows a user name locks it out from their own address only;
// failures from many addresses together still hit the account's ceiling
// (NIST SP 800-63B 5.2.2: at most 100).
START_TEST(lockout_attacker_does_not_lock_out_the_owner)
{
    MemState state;
    const LockoutRule r{3, 300, 50, 7};
    for (int i = 0; i < r.max_failures; ++i)
        record_failure(state, r, "alice", "203.0.113.9", now);
    ck_assert_int_eq(locked_for(state, r, "alice", "203.0.113.9", now + 1),
                     r.lock_time - 1);
    ck_assert_int_gt(begin_attempt(state, r, "alice", "203.0.113.9", now + 1),
                     0);
    // The owner, from their address, still gets in, and that resets the
    // account's count, not the attacker's lock.
    ck_assert_int_eq(begin_attempt(state, r, "alice", "10.0.0.1", now + 1), 0);
    ck_assert_int_eq(end_attempt(state, r, "alice", "10.0.0.1", false,
                                 now + 1), 0);
    record_success(state, r, "alice", "10.0.0.1", now + 1);
    ck_assert_int_eq(state.at("u:alice").record.count, 0);
    ck_assert_int_eq(locked_for(state, r, "alice", "203.0.113.9", now + 2),
                     r.lock_time - 2);
}
END_TEST

START_TEST(lockout_account_ceiling)
{
    MemState state;
    const LockoutRule r{3, 300, 50, 7};
    // One failure each from seven addresses: no address reaches 3, the
    // account reaches 7 and is refused from everywhere, new addresses too.
    for (int i = 0; i < r.max_account_failures - 1; ++i) {
        std::string address = "198.51.100." + std::to_string(i);
        ck_assert_int_eq(record_failure(state, r, "alice", address, now), 0);
    }
    ck_assert_int_eq(locked_for(state, r, "alice", "10.0.0.1", now), 0);
    ck_assert_int_eq(record_failure(state, r, "alice", "198.51.100.99", now),
                     r.lock_time);
    ck_assert_int_eq(locked_for(state, r, "alice", "10.0.0.1", now + 5),
                     r.lock_time - 5);
    ck_assert_int_eq(locked_for(state, r, "bob", "10.0.0.1", now + 5), 0);
}
END_TEST

START_TEST(unknown_names_share_buckets)
{
    std::set<std::string> buckets;
    for (int i = 0; i < 20000; ++i) {
        std::string name = "random-" + std::to_string(i);
        std::string account = unknown_account(name);
        ck_assert_string_eq(unknown_account(name), account);
        ck_assert(account.size() == 4 && account[0] == '?');
        buckets.insert(account);
    }
    // A fixed set, never one counter per name.
    ck_assert_uint_le(buckets.size(), 1024);
    ck_assert_uint_gt(buckets.size(), 1000);
}
END_TEST

// Counters below the lock are state: a flood of new records (probes of
// other accounts and addresses) cannot push them out to reset them; a
// store that is full of counters refuses new ones (fail closed).
START_TEST(counters_are_never_evicted)
{
    MemState state(8);
    ck_assert(prepare_state(state, now));
    for (int i = 0; i < rule.max_failures - 1; ++i)
        ck_assert_int_eq(record_failure(state, rule, "alice", "10.0.0.1",
                                        now), 0);
    ck_assert_uint_eq(state.size(), 4);  // R, a:, f:, u:
    for (int i = 0; i < 500; ++i) {
        std::string name = unknown_account("x" + std::to_string(i));
        locked_for(state, rule, name, "10.9." + std::to_string(i), now + 1);
    }
    ck_assert_int_eq(state.at("u:alice").record.count, rule.max_failures - 1);
    ck_assert_int_eq(state.at("f:alice 10.0.0.1").record.count,
                     rule.max_failures - 1);
    // The next failure still locks.
    ck_assert_int_eq(record_failure(state, rule, "alice", "10.0.0.1",
                                    now + 2), rule.lock_time);
    // Failures elsewhere fill the rest with counters; then a new counter
    // cannot be kept and the attempt is refused.
    std::int64_t refused = 0;
    for (int i = 0; i < 10 && !refused; ++i)
        refused = record_failure(state, rule, "bob",
                                 "192.0.2." + std::to_string(i), now + 3);
    ck_assert_int_eq(refused, rule.lock_time);
    ck_assert_int_eq(state.at("u:alice").record.count, rule.max_failures);
    ck_assert_int_gt(state.at("f:alice 10.0.0.1").record.until, now);
}
END_TEST

START_TEST(cancelled_attempt_is_released_uncounted)
{
    MemState state;
    for (int i = 0; i < 10; ++i) {
        ck_assert_int_eq(begin_attempt(state, rule, "alice", "10.0.0.1", now),
                         0);
        cancel_attempt(state, rule, "alice", "10.0.0.1", now);
    }
    for (const char *key : {"u:alice", "f:alice 10.0.0.1", "a:10.0.0.1"}) {
        ck_assert_int_eq(state.at(key).record.inflight, 0);
        ck_assert_int_eq(state.at(key).record.count, 0);
    }
    ck_assert_int_eq(locked_for(state, rule, "alice", "10.0.0.1", now), 0);
}
END_TEST

// ---- TOTP steps ---------------------------------------------------------

START_TEST(totp_claims)
{
    MemState state;
    const std::int64_t s = now / period;
    ck_assert(claim_totp_step(state, "alice", s, period, now) == Claim::fresh);
    ck_assert(claim_totp_step(state, "alice", s, period, now)
              == Claim::replayed);
    ck_assert(claim_totp_step(state, "alice", s - 1, period, now)
              == Claim::replayed);
    ck_assert(claim_totp_step(state, "alice", s + 1, period, now)
              == Claim::fresh);
    ck_assert(claim_totp_step(state, "alice", s + 1, period, now + 1)
              == Claim::replayed);
    ck_assert(claim_totp_step(state, "alice", s, period, now + 1)
              == Claim::replayed);
    // Users are independent.
    ck_assert(claim_totp_step(state, "bob", s, period, now + 1)
              == Claim::fresh);
    ck_assert(claim_totp_step(state, "bob", s, period, now + 1)
              == Claim::replayed);
    ck_assert(claim_totp_step(state, "alice", s + 2, period, now + 2)
              == Claim::fresh);
    ck_assert(claim_totp_step(state, "bob", s + 1, period, now + 2)
              == Claim::fresh);
}
END_TEST

START_TEST(totp_step_zero)
{
    MemState state;
    ck_assert(claim_totp_step(state, "alice", 0, period, 5) == Claim::fresh);
    ck_assert(claim_totp_step(state, "alice", 0, period, 6)
              == Claim::replayed);
    ck_assert(claim_totp_step(state, "alice", 1, period, 31) == Claim::fresh);
    ck_assert(claim_totp_step(state, "alice", 0, period, 32)
              == Claim::replayed);
}
END_TEST

START_TEST(totp_record_expiry)
{
    MemState state;
    const std::int64_t s = now / period;
    ck_assert(claim_totp_step(state, "alice", s, period, now) == Claim::fresh);
    // Step s verifies (one step of drift) until (s+2)*period: the claim
    // must be remembered at least that long.
    const std::int64_t last = (s + 2) * period - 1;
    ck_assert(claim_totp_step(state, "alice", s, period, last)
              == Claim::replayed);
    ck_assert(claim_totp_step(state, "alice", s, period, last + 1)
              == Claim::replayed);
    // Once the record has expired, a newer step is fresh and recorded.
    const std::int64_t later = (s + 2) * period + 1;
    ck_assert(claim_totp_step(state, "alice", s + 3, period, later)
              == Claim::fresh);
    ck_assert_int_eq(state.at("t:alice").record.count, s + 3);
    ck_assert(claim_totp_step(state, "alice", s + 3, period, later)
              == Claim::replayed);
    ck_assert(claim_totp_step(state, "alice", s + 2, period, later)
              == Claim::replayed);
}
END_TEST

START_TEST(totp_full_store)
{
    MemState state(2);
    fill_pinned(state, 1);
    const std::int64_t s = now / period;
    ck_assert(claim_totp_step(state, "alice", s, period, now) == Claim::fresh);
    // Full now (R + t:alice); alice's record is held, so it updates.
    ck_assert(claim_totp_step(state, "alice", s + 1, period, now)
              == Claim::fresh);
    ck_assert(claim_totp_step(state, "alice", s + 1, period, now)
              == Claim::replayed);
    // Claims are pinned: bob's cannot push alice's out (that would let her
    // used code work again), so it is refused instead (fail closed).
    ck_assert(state.at("t:alice").pinned);
    ck_assert(claim_totp_step(state, "bob", s, period, now)
              == Claim::unavailable);
    ck_assert(state.has("t:alice"));

    MemState pinned(2);
    fill_pinned(pinned, 2);
    ck_assert(claim_totp_step(pinned, "alice", s, period, now)
              == Claim::unavailable);
    ck_assert(!pinned.has("t:alice"));
    DownState down;
    ck_assert(claim_totp_step(down, "alice", s, period, now)
              == Claim::unavailable);
}
END_TEST

// ---- attempts checked concurrently ---------------------------------------

START_TEST(attempts_in_flight_count)
{
    MemState state;
    // rule: 3 failures lock. Three guesses in flight at once use up the
    // allowance: a fourth must wait, whatever the three turn out to be.
    for (int i = 0; i < 3; ++i)
        ck_assert_int_eq(begin_attempt(state, rule, "alice", "10.0.0.1", now),
                         0);
    ck_assert_int_gt(begin_attempt(state, rule, "alice", "10.0.0.1", now), 0);
    // Two turn out wrong, one right: the right one does not count.
    ck_assert_int_eq(end_attempt(state, rule, "alice", "10.0.0.1", true, now),
                     0);
    ck_assert_int_eq(end_attempt(state, rule, "alice", "10.0.0.1", false,
                                 now), 0);
    ck_assert_int_eq(end_attempt(state, rule, "alice", "10.0.0.1", true, now),
                     0);
    ck_assert_int_eq(state.at("u:alice").record.count, 2);
    ck_assert_int_eq(state.at("u:alice").record.inflight, 0);
    // One more try is allowed; if it is wrong the account locks, and even
    // a right password afterwards reports the lock.
    ck_assert_int_eq(begin_attempt(state, rule, "alice", "10.0.0.1", now), 0);
    ck_assert_int_eq(end_attempt(state, rule, "alice", "10.0.0.1", true, now),
                     rule.lock_time);
    ck_assert_int_eq(begin_attempt(state, rule, "alice", "10.0.0.1", now + 1),
                     rule.lock_time - 1);
}
END_TEST

START_TEST(attempts_unavailable_store)
{
    DownState down;
    ck_assert_int_eq(begin_attempt(down, rule, "alice", "10.0.0.1", now),
                     rule.lock_time);
}
END_TEST

// ---- push and call -------------------------------------------------------

START_TEST(out_of_band_one_at_a_time)
{
    MemState state;
    const OutOfBandRule oob{3, 600, 60};
    ck_assert(start_out_of_band(state, oob, "alice", now) == Start::ok);
    // A second request while the first waits on the phone: refused.
    ck_assert(start_out_of_band(state, oob, "alice", now + 1) == Start::busy);
    // Another user is not affected.
    ck_assert(start_out_of_band(state, oob, "bob", now + 1) == Start::ok);
    // Answered: the next may go out at once.
    end_out_of_band(state, "alice", now + 2);
    ck_assert(start_out_of_band(state, oob, "alice", now + 3) == Start::ok);
    // Unanswered: it stops blocking after pending_for.
    ck_assert(start_out_of_band(state, oob, "alice", now + 62)
              == Start::busy);
    ck_assert(start_out_of_band(state, oob, "alice", now + 63) == Start::ok);
    // That was the third in the window: the fourth is one too many, also
    // after the one before was answered, until the window ends.
    end_out_of_band(state, "alice", now + 64);
    ck_assert(start_out_of_band(state, oob, "alice", now + 65)
              == Start::too_many);
    ck_assert(start_out_of_band(state, oob, "alice", now + 599)
              == Start::too_many);
    ck_assert(start_out_of_band(state, oob, "alice", now + 600) == Start::ok);
    // The pending record is pinned: a flood cannot lift "one at a time".
    ck_assert(state.at("o:alice").pinned);
}
END_TEST

// A push set-up's test push holds the slot as its owner: only it frees
// the slot, and a new test takes the slot over only when it may start.
START_TEST(out_of_band_owned_slot)
{
    MemState state;
    const OutOfBandRule oob{3, 600, 60};
    // A sign-in's push waits (no owner): a test that never started, or
    // whose turn ended, frees nothing, and cannot take its place.
    ck_assert(start_out_of_band(state, oob, "alice", now) == Start::ok);
    end_out_of_band(state, "alice", now + 1, 7);
    ck_assert(start_out_of_band(state, oob, "alice", now + 2) == Start::busy);
    ck_assert(start_out_of_band(state, oob, "alice", now + 2, 8, 7)
              == Start::busy);
    end_out_of_band(state, "alice", now + 3);

    // A test (owner 7) replaced by the next (8), and that by the next (9):
    // an owner no longer waiting frees nothing.
    ck_assert(start_out_of_band(state, oob, "bob", now, 7) == Start::ok);
    ck_assert(start_out_of_band(state, oob, "bob", now + 1) == Start::busy);
    ck_assert(start_out_of_band(state, oob, "bob", now + 1, 8, 7)
              == Start::ok);
    end_out_of_band(state, "bob", now + 2, 7);
    ck_assert(start_out_of_band(state, oob, "bob", now + 3) == Start::busy);
    ck_assert(start_out_of_band(state, oob, "bob", now + 3, 9, 8)
              == Start::ok);
    // Over the limit: the waiting test keeps its slot.
    ck_assert(start_out_of_band(state, oob, "bob", now + 4, 10, 9)
              == Start::too_many);
    ck_assert(start_out_of_band(state, oob, "bob", now + 4) == Start::busy);
    end_out_of_band(state, "bob", now + 5, 9);
    ck_assert(start_out_of_band(state, oob, "bob", now + 6)
              == Start::too_many);
}
END_TEST

// A sign-in's push gets its transaction once the provider names it: only
// the browser waiting on that transaction may replace it ("send another"),
// and only its end frees the slot; a stale or copied pending sign-in
// naming an older transaction does neither.
START_TEST(out_of_band_bound_slot)
{
    MemState state;
    const OutOfBandRule oob{3, 600, 60};
    const std::int64_t old_tx = out_of_band_owner("TX_old");
    const std::int64_t tx = out_of_band_owner("TX_now");
    ck_assert(tx != 0 && old_tx != 0 && tx != old_tx);
    ck_assert_int_eq(out_of_band_owner("TX_now"), tx);

    // Nothing waits: nothing to bind.
    ck_assert(!bind_out_of_band(state, "alice", now, tx));
    ck_assert(start_out_of_band(state, oob, "alice", now) == Start::ok);
    ck_assert(bind_out_of_band(state, "alice", now, tx));
    // Bound once: another transaction cannot take it over.
    ck_assert(!bind_out_of_band(state, "alice", now, old_tx));

    // The stale cookie replaces nothing, and its end frees nothing.
    ck_assert(start_out_of_band(state, oob, "alice", now + 1, 0, old_tx)
              == Start::busy);
    end_out_of_band(state, "alice", now + 1, old_tx);
    ck_assert(start_out_of_band(state, oob, "alice", now + 2) == Start::busy);

    // The browser's own "send another": the slot passes to the new
    // request (unbound until its provider answers), and the old
    // transaction's end no longer frees it.
    ck_assert(start_out_of_band(state, oob, "alice", now + 3, 0, tx)
              == Start::ok);
    end_out_of_band(state, "alice", now + 4, tx);
    ck_assert(start_out_of_band(state, oob, "alice", now + 5, 0, tx)
              == Start::busy);
    const std::int64_t next = out_of_band_owner("TX_next");
    ck_assert(bind_out_of_band(state, "alice", now + 5, next));
    end_out_of_band(state, "alice", now + 6, next);
    ck_assert(start_out_of_band(state, oob, "alice", now + 7) == Start::ok);

    // The binding keeps the slot's time: it still ends after pending_for.
    ck_assert(start_out_of_band(state, oob, "bob", now) == Start::ok);
    ck_assert(bind_out_of_band(state, "bob", now + 30, tx));
    ck_assert(start_out_of_band(state, oob, "bob", now + 59) == Start::busy);
    ck_assert(start_out_of_band(state, oob, "bob", now + 60) == Start::ok);
}
END_TEST

START_TEST(out_of_band_full_store)
{
    MemState pinned(2);
    fill_pinned(pinned, 2);
    const OutOfBandRule oob{3, 600, 60};
    ck_assert(start_out_of_band(pinned, oob, "alice", now)
              == Start::unavailable);
    DownState down;
    ck_assert(start_out_of_band(down, oob, "alice", now)
              == Start::unavailable);
}
END_TEST

START_TEST(out_of_band_retry_after)
{
    MemState state;
    const OutOfBandRule oob{3, 600, 60};
    // Nothing sent yet, or fewer than the maximum: no wait.
    ck_assert_int_eq(out_of_band_retry(state, oob, "alice", now), 0);
    for (int i = 0; i < 3; i++) {
        ck_assert(start_out_of_band(state, oob, "alice", now + i) == Start::ok);
        end_out_of_band(state, "alice", now + i);
    }
    // The window began with the first request: it ends 600 s after it.
    ck_assert_int_eq(out_of_band_retry(state, oob, "alice", now + 100), 500);
    ck_assert_int_eq(out_of_band_retry(state, oob, "alice", now + 599), 1);
    ck_assert_int_eq(out_of_band_retry(state, oob, "alice", now + 600), 0);
    ck_assert_int_eq(out_of_band_retry(state, oob, "bob", now + 100), 0);
    // A read stores nothing for a user who never asked.
    ck_assert(!state.has("n:carol") );
    out_of_band_retry(state, oob, "carol", now);
    ck_assert(!state.has("n:carol"));
}
END_TEST

START_TEST(fraud_pause)
{
    MemState state;
    std::string key = pause_key("alice", "tag1");
    ck_assert_int_eq(out_of_band_paused_for(state, key, now), 0);
    ck_assert(pause_out_of_band(state, key, now, now + 900));
    ck_assert_int_eq(out_of_band_paused_for(state, key, now + 1), 899);
    // Pinned: a flood of other records cannot lift it.
    ck_assert(state.at(key).pinned);
    // A second report extends it, an earlier one never shortens it.
    ck_assert(pause_out_of_band(state, key, now + 100, now + 1000));
    ck_assert(pause_out_of_band(state, key, now + 101, now + 200));
    ck_assert_int_eq(out_of_band_paused_for(state, key, now + 900), 100);
    ck_assert_int_eq(out_of_band_paused_for(state, key, now + 1000), 0);
    // New credentials (a reset) are another key: no pause.
    ck_assert_int_eq(out_of_band_paused_for(state, pause_key("alice", "tag2"),
                                            now + 1),
                     0);
    ck_assert_int_eq(out_of_band_paused_for(state, pause_key("bob", "tag1"),
                                            now + 1),
                     0);
    // twostep_fraud_pause 0: nothing is kept.
    ck_assert(pause_out_of_band(state, pause_key("bob", "t"), now, now));
    ck_assert(!state.has(pause_key("bob", "t")));
    // A store that cannot keep it says so (the caller fails closed).
    MemState pinned(2);
    fill_pinned(pinned, 2);
    ck_assert(!pause_out_of_band(pinned, key, now, now + 900));
}
END_TEST

START_TEST(transactions_finish_once)
{
    MemState state;
    ck_assert(claim_transaction(state, "tx-1", now, now + 600)
              == Claim::fresh);
    ck_assert(claim_transaction(state, "tx-1", now + 1, now + 600)
              == Claim::replayed);
    ck_assert(claim_transaction(state, "tx-2", now + 1, now + 600)
              == Claim::fresh);
    ck_assert(state.at("d:tx-1").pinned);
    DownState down;
    ck_assert(claim_transaction(down, "tx-3", now, now + 600)
              == Claim::unavailable);
}
END_TEST

// ---- revocation ---------------------------------------------------------

START_TEST(revoke_one_session)
{
    MemState state;
    ck_assert(prepare_state(state, now));
    Session a = session("sid-a", now - 100, now + 3600);
    Session b = session("sid-b", now - 200, now + 3600);
    ck_assert(!session_revoked(state, a, now));
    ck_assert(!session_revoked(state, b, now));
    ck_assert(revoke_session(state, a, now));
    ck_assert(session_revoked(state, a, now));
    ck_assert(!session_revoked(state, b, now));
    ck_assert(session_revoked(state, a, now + 3599));
    ck_assert(state.has("r:sid-a"));
    ck_assert(state.at("r:sid-a").pinned);
    ck_assert_int_eq(state.at("r:sid-a").expires, a.expires);
    // Not by the fallback: "R" is untouched.
    ck_assert_int_eq(state.at("R").record.count, 0);
    // Past its expiry the session is refused anyway; the record goes.
    ck_assert(!session_revoked(state, a, a.expires));
}
END_TEST

START_TEST(revocation_is_not_evicted)
{
    MemState state(3);
    ck_assert(prepare_state(state, now));
    Session a = session("sid-a", now - 100);
    ck_assert(revoke_session(state, a, now));
    // Failures for many accounts churn through the one free slot.
    const LockoutRule loose{100, 300, 1000};
    for (int i = 0; i < 20; ++i)
        record_failure(state, loose, "u" + std::to_string(i), "10.0.0.1",
                       now + 1);
    ck_assert_uint_eq(state.size(), 3);
    ck_assert(session_revoked(state, a, now + 2));
    ck_assert_int_eq(state.at("R").record.count, 0);
}
END_TEST

// "Sign out everywhere": every session of the user that began up to the
// second it was asked for ends (a step-up keeps when its session began);
// other users' sessions and later sign-ins go on; the record is pinned
// for the session lifetime, and the epoch moves so caches look again.
START_TEST(revoke_every_session_of_a_user)
{
    MemState state;
    ck_assert(prepare_state(state, now));
    Session a = session("sid-a", now - 100);
    a.issued = now - 5000;
    Session b = session("sid-b", now - 10);
    b.issued = now;                       // began in the same second
    Session bob = session("sid-bob", now - 10);
    bob.user = "bob";
    bob.issued = now - 10;
    std::uint64_t epoch = state.revocation_epoch();
    ck_assert(revoke_user_sessions(state, "alice", now, now + 43200));
    ck_assert(state.revocation_epoch() != epoch);
    ck_assert(session_revoked(state, a, now));
    ck_assert(session_revoked(state, b, now));
    ck_assert(!session_revoked(state, bob, now));
    Session later = session("sid-later", now + 1);
    later.issued = now + 1;
    ck_assert(!session_revoked(state, later, now + 1));
    ck_assert(state.at("U:alice").pinned);
    ck_assert_int_eq(state.at("U:alice").expires, now + 43200);
    ck_assert_int_eq(state.at("R").record.count, 0);
    // Asked again later: the line moves forward, never back.
    ck_assert(revoke_user_sessions(state, "alice", now + 20, now + 43220));
    ck_assert(session_revoked(state, later, now + 20));
    ck_assert(revoke_user_sessions(state, "alice", now + 1, now + 43201));
    ck_assert(session_revoked(state, later, now + 21));
}
END_TEST

// No room for the user's record: everyone's sessions up to now end.
START_TEST(revoke_user_full_store_falls_back)
{
    MemState state(3);
    fill_pinned(state, 3);
    Session bob = session("sid-bob", now);
    bob.user = "bob";
    ck_assert(revoke_user_sessions(state, "alice", now, now + 43200));
    ck_assert(!state.has("U:alice"));
    ck_assert(session_revoked(state, session("sid-a", now), now));
    ck_assert(session_revoked(state, bob, now));
    ck_assert(!session_revoked(state, session("sid-c", now + 1), now + 1));
}
END_TEST

START_TEST(revoke_full_store_falls_back)
{
    MemState state(3);
    fill_pinned(state, 3);
    const std::int64_t t = now - 100;
    Session a = session("sid-a", t);
    ck_assert(revoke_session(state, a, now));
    ck_assert(!state.has("r:sid-a"));
    ck_assert_uint_eq(state.size(), 3);
    ck_assert(session_revoked(state, a, now));
    ck_assert(session_revoked(state, session("older", t - 50), now));
    ck_assert(session_revoked(state, session("same-second", t), now));
    ck_assert(!session_revoked(state, session("later", t + 1), now));
    // Revoking an older session later does not move the line back.
    ck_assert(revoke_session(state, session("oldest", t - 1000), now + 1));
    ck_assert(session_revoked(state, session("same-second", t), now + 1));
    ck_assert(!session_revoked(state, session("later", t + 1), now + 1));
    // A newer one moves it forward.
    ck_assert(revoke_session(state, session("newer", t + 10), now + 2));
    ck_assert(session_revoked(state, session("later", t + 1), now + 2));
    ck_assert(!session_revoked(state, session("newest", t + 11), now + 2));
}
END_TEST

START_TEST(revoke_without_prepare)
{
    // Without "R" prepared, a full store leaves nowhere to record it.
    MemState state(1);
    ck_assert(revoke_session(state, session("x", now - 1, now + 86400), now));
    ck_assert(!revoke_session(state, session("y", now - 1), now));
    DownState down;
    ck_assert(!revoke_session(down, session("y", now - 1), now));
    ck_assert(session_revoked(down, session("y", now - 1), now));
}
END_TEST

// ---- record_success -----------------------------------------------------

START_TEST(success_stores_nothing_new)
{
    MemState state;
    record_success(state, rule, "alice", "192.0.2.1", now);
    ck_assert_uint_eq(state.size(), 0);
    ck_assert_int_eq(state.updates, 3);  // account, address, both
    // A failure during a lock neither counts nor extends it.
    for (int i = 0; i < rule.max_failures; ++i)
        record_failure(state, rule, "alice", "10.0.0.1", now);
    record_failure(state, rule, "alice", "10.0.0.1", now + 100);
    const std::string pair = "f:alice 10.0.0.1";
    ck_assert_int_eq(state.at(pair).expires, now + rule.lock_time);
    const std::size_t size = state.size();
    const auto before = state.at(pair);
    record_success(state, rule, "alice", "10.0.0.1", now + rule.lock_time);
    ck_assert_uint_eq(state.size(), size);
    ck_assert_int_eq(state.at(pair).expires, before.expires);
    ck_assert_int_eq(state.at(pair).record.until, before.record.until);
}
END_TEST

// Self-hosted push and call (approval.h): decided once, by the first
// answer; a second one (a replayed callback, a reused link) changes nothing.
START_TEST(approval_decided_once)
{
    MemState state;
    std::string txid = new_transaction_id();
    ck_assert_uint_ge(txid.size(), 22);  // 128 bits
    ck_assert_named(approval_state(state, txid, now), Approval::missing,
                    approval_name);
    ck_assert(open_approval(state, txid, now, now + 120));
    ck_assert(!open_approval(state, txid, now, now + 120));  // not twice
    ck_assert_named(approval_state(state, txid, now + 1), Approval::waiting,
                    approval_name);
    ck_assert(decide_approval(state, txid, Approval::denied, now + 2,
                              now + 120) == Decided::ok);
    ck_assert(decide_approval(state, txid, Approval::approved, now + 3,
                              now + 120) == Decided::already);
    ck_assert_named(approval_state(state, txid, now + 4), Approval::denied,
                    approval_name);
    // Kept as long as the transaction, then gone.
    ck_assert_named(approval_state(state, txid, now + 119), Approval::denied,
                    approval_name);
    ck_assert_named(approval_state(state, txid, now + 120),
                    Approval::missing, approval_name);
    ck_assert(decide_approval(state, txid, Approval::approved, now + 121,
                              now + 200) == Decided::missing);
    // Never decided into waiting or missing; unknown ids are missing.
    ck_assert(open_approval(state, "other", now, now + 10));
    ck_assert(decide_approval(state, "other", Approval::waiting, now,
                              now + 10) == Decided::missing);
    ck_assert(decide_approval(state, "bad|id", Approval::approved, now,
                              now + 10) == Decided::missing);
    DownState down;
    ck_assert(!open_approval(down, txid, now, now + 10));
    // What a networked store answers is taken only if this code wrote it.
    ck_assert(approval_of(4) == Approval::fraud);
    ck_assert(approval_of(1) == Approval::waiting);
    ck_assert(!approval_of(-1) && !approval_of(6));
}
END_TEST

// With twostep_redis (approval.h): a decided answer counts only with the
// server's MAC, for its own transaction; Redis write access alone (a bare
// "2", another key's MAC, another transaction's record) approves nothing.
START_TEST(approval_records_need_the_server_mac)
{
    KeyRing keys, other, rotated;
    ck_assert(keys.add(std::string(32, 'k')));
    ck_assert(other.add(std::string(32, 'o')));
    ck_assert(rotated.add(std::string(32, 'n')));
    ck_assert(rotated.add(std::string(32, 'k')));
    std::string txid = new_transaction_id();
    std::string tx2 = new_transaction_id();

    for (Approval a : {Approval::approved, Approval::denied, Approval::fraud,
                       Approval::wrong_number}) {
        std::string rec = approval_record(keys, txid, a);
        ck_assert(approval_from_record(keys, txid, rec) == a);
        ck_assert(approval_from_record(rotated, txid, rec) == a);
        ck_assert(!approval_from_record(other, txid, rec));
        ck_assert(!approval_from_record(keys, tx2, rec));
    }
    std::string denied = approval_record(keys, txid, Approval::denied);
    std::string forged = denied;
    forged[0] = '2';  // the denial's MAC on an approval
    ck_assert(!approval_from_record(keys, txid, forged));
    for (const char *bare : {"2", "2.", "1", "0", "", "2.x", "9.abc"})
        ck_assert(!approval_from_record(keys, txid, bare));
    ck_assert(!approval_from_record(keys, "bad|id",
                                    approval_record(keys, "bad|id",
                                                    Approval::approved)));
}
END_TEST

START_TEST(approval_capabilities)
{
    KeyRing keys, other;
    ck_assert(keys.add(std::string(32, 'k')));
    ck_assert(other.add(std::string(32, 'o')));
    Capability c;
    c.txid = new_transaction_id();
    c.user = "alice";
    c.method = Method::call;
    c.expires = now + 120;
    c.address = "2001:db8::1";
    std::string token = capability_token(keys, c);
    auto got = read_capability(keys, token, now);
    ck_assert(got.has_value());
    ck_assert_string_eq(got->txid, c.txid);
    ck_assert_string_eq(got->user, "alice");
    ck_assert(got->method == Method::call);
    ck_assert_int_eq(got->expires, now + 120);
    ck_assert_string_eq(got->address, "2001:db8::1");
    ck_assert(!read_capability(keys, token, now + 120));    // expired
    ck_assert(!read_capability(other, token, now));         // other keys
    std::string forged = token;
    forged[forged.size() / 2] ^= 1;
    ck_assert(!read_capability(keys, forged, now));
    ck_assert(!read_capability(keys, "", now));
    // A form token or a session never passes for a capability.
    ck_assert(!read_capability(keys, keys.sign("p", "x|alice|call|1|"),
                               now));
    // Nothing waits on a text; no field may hold the separator.
    auto refused = [&](const Capability &bad) {
        try {
            capability_token(keys, bad);
            return false;
        } catch (const std::invalid_argument &) {
            return true;
        }
    };
    Capability bad = c;
    bad.method = Method::sms;
    ck_assert(refused(bad));
    ck_assert(!read_capability(keys, keys.sign("x", c.txid + "|alice|sms|"
                                               + std::to_string(now + 9)
                                               + "|"), now));
    bad = c;
    bad.address = "a|b";
    ck_assert(refused(bad));
    // What capability_token() refuses, read_capability() refuses too
    // (found by fuzz_cookie: an address with NUL bytes).
    ck_assert(!read_capability(keys, keys.sign("x", c.txid + "|alice|push|"
                                               + std::to_string(now + 9)
                                               + std::string("|20\0\0.1", 8)),
                               now));
}
END_TEST

// A set-up's test push says so in its links; a sign-in's never does, and
// the flag cannot be added or be anything else.
START_TEST(approval_test_capabilities)
{
    KeyRing keys;
    ck_assert(keys.add(std::string(32, 'k')));
    Capability c;
    c.txid = new_transaction_id();
    c.user = "alice";
    c.method = Method::push;
    c.expires = now + 120;
    c.address = "192.0.2.1";
    auto plain = read_capability(keys, capability_token(keys, c), now);
    ck_assert(plain && !plain->test);
    c.test = true;
    auto test = read_capability(keys, capability_token(keys, c), now);
    ck_assert(test && test->test);
    std::string payload = c.txid + "|alice|push|" + std::to_string(now + 9)
                          + "|192.0.2.1|";
    ck_assert(!read_capability(keys, keys.sign("x", payload + "yes"), now));
    ck_assert(!read_capability(keys, keys.sign("x", payload + "test|test"),
                               now));
    ck_assert(read_capability(keys, keys.sign("x", payload + "test"), now));
}
END_TEST

// "Set up push notifications": the topic offered travels in a cookie of
// its own, bound to the session, unforgeable and short-lived.
START_TEST(push_setup_tokens)
{
    KeyRing keys, other;
    ck_assert(keys.add(std::string(32, 'k')));
    ck_assert(other.add(std::string(32, 'o')));
    PushSetup s;
    s.sid = random_token(18);
    s.user = "alice";
    s.topic = ntfy::new_topic();
    s.expires = now + 600;
    std::string token = encode_push_setup(keys, s);
    auto got = decode_push_setup(keys, token, now);
    ck_assert(got.has_value());
    ck_assert_string_eq(got->sid, s.sid);
    ck_assert_string_eq(got->user, "alice");
    ck_assert_string_eq(got->topic, s.topic);
    ck_assert_str_eq(got->txid.c_str(), "");
    ck_assert_int_eq(got->expires, now + 600);
    s.txid = new_transaction_id();
    got = decode_push_setup(keys, encode_push_setup(keys, s), now);
    ck_assert(got && got->txid == s.txid);
    ck_assert(!decode_push_setup(keys, token, now + 600));   // expired
    ck_assert(!decode_push_setup(other, token, now));        // other keys
    std::string forged = token;
    forged[forged.size() / 2] ^= 1;
    ck_assert(!decode_push_setup(keys, forged, now));
    ck_assert(!decode_push_setup(keys, "", now));
    // No other token passes for one, nor one for a session or capability.
    ck_assert(!decode_push_setup(keys, keys.sign("x", "1|" + s.sid
        + "|alice|" + s.topic + "||" + std::to_string(now + 9)), now));
    ck_assert(!decode_session(keys, token, now));
    ck_assert(!read_capability(keys, token, now));
    ck_assert(!decode_push_setup(keys, keys.sign("u", "1|" + s.sid
        + "|alice|bad topic||" + std::to_string(now + 9)), now));
    PushSetup bad = s;
    bad.topic = "a|b";
    try {
        encode_push_setup(keys, bad);
        ck_abort_msg("a bad topic was encoded");
    } catch (const std::invalid_argument &) {
    }
}
END_TEST

// The number to match: 10..99, the same on both pages, apart per
// transaction and per key.
START_TEST(approval_match_numbers)
{
    KeyRing keys, other;
    ck_assert(keys.add(std::string(32, 'k')));
    ck_assert(other.add(std::string(32, 'o')));
    std::set<int> seen;
    int differs = 0;
    for (int i = 0; i < 400; i++) {
        std::string txid = new_transaction_id();
        int n = match_number(keys, txid);
        ck_assert_int_ge(n, 10);
        ck_assert_int_le(n, 99);
        ck_assert_int_eq(n, match_number(keys, txid));
        differs += n != match_number(other, txid);
        seen.insert(n);
    }
    ck_assert_int_gt(seen.size(), 60);
    ck_assert_int_gt(differs, 300);
}
END_TEST


int main()
{
    Suite *suite = suite_create("guard");
    TCase *store = tcase_create("memstate");
    tcase_add_test(store, memstate_contract);
    tcase_add_test(store, memstate_lru_order);
    suite_add_tcase(suite, store);

    TCase *prepare = tcase_create("prepare");
    tcase_add_test(prepare, prepare_creates_revoked_before);
    tcase_add_test(prepare, prepare_full_store);
    suite_add_tcase(suite, prepare);

    TCase *lockout = tcase_create("lockout");
    tcase_add_test(lockout, lockout_nth_failure_locks);
    tcase_add_test(lockout, lockout_ends);
    tcase_add_test(lockout, lockout_success_resets);
    tcase_add_test(lockout, lockout_success_does_not_lift);
    tcase_add_test(lockout, lockout_address_spray);
    tcase_add_test(lockout, lockout_attacker_does_not_lock_out_the_owner);
    tcase_add_test(lockout, lockout_account_ceiling);
    tcase_add_test(lockout, unknown_names_share_buckets);
    tcase_add_test(lockout, counters_are_never_evicted);
    tcase_add_test(lockout, cancelled_attempt_is_released_uncounted);
    tcase_add_test(lockout, lockout_full_store_fails_closed);
    tcase_add_test(lockout, lockout_held_lock_survives_full_store);
    tcase_add_test(lockout, success_stores_nothing_new);
    suite_add_tcase(suite, lockout);

    TCase *totp = tcase_create("totp");
    tcase_add_test(totp, totp_claims);
    tcase_add_test(totp, totp_step_zero);
    tcase_add_test(totp, totp_record_expiry);
    tcase_add_test(totp, totp_full_store);
    suite_add_tcase(suite, totp);

    TCase *revoke = tcase_create("revocation");
    TCase *attempts = tcase_create("attempts");
    tcase_add_test(attempts, attempts_in_flight_count);
    tcase_add_test(attempts, attempts_unavailable_store);
    suite_add_tcase(suite, attempts);

    TCase *oob = tcase_create("out_of_band");
    tcase_add_test(oob, out_of_band_one_at_a_time);
    tcase_add_test(oob, out_of_band_owned_slot);
    tcase_add_test(oob, out_of_band_bound_slot);
    tcase_add_test(oob, out_of_band_full_store);
    tcase_add_test(oob, out_of_band_retry_after);
    tcase_add_test(oob, fraud_pause);
    tcase_add_test(oob, transactions_finish_once);
    tcase_add_test(oob, approval_decided_once);
    tcase_add_test(oob, approval_records_need_the_server_mac);
    tcase_add_test(oob, approval_capabilities);
    tcase_add_test(oob, approval_test_capabilities);
    tcase_add_test(oob, push_setup_tokens);
    tcase_add_test(oob, approval_match_numbers);
    suite_add_tcase(suite, oob);

    tcase_add_test(revoke, revoke_one_session);
    tcase_add_test(revoke, revocation_is_not_evicted);
    tcase_add_test(revoke, revoke_full_store_falls_back);
    tcase_add_test(revoke, revoke_every_session_of_a_user);
    tcase_add_test(revoke, revoke_user_full_store_falls_back);
    tcase_add_test(revoke, revoke_without_prepare);
    suite_add_tcase(suite, revoke);
    return run_suite(suite);
}
