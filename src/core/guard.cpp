#include "guard.h"

#include <algorithm>
#include <functional>
#include <limits>
#include <string>

namespace twostep {

namespace {

constexpr std::int64_t forever = std::numeric_limits<std::int64_t>::max();

std::string key_of(std::string_view kind, std::string_view name)
{
    std::string key(kind);
    key += name;
    return key;
}

// Seconds left on a lock under `key`, 0 if none; -1 when the store could
// not count a failure there. The probe stores an empty record (a write
// per attempt), so a full store is noticed before the guess, not after.
std::int64_t lock_left(SharedState &state, const std::string &key,
                       std::int64_t lock_time, std::int64_t now)
{
    std::int64_t until = 0;
    bool ok = state.update(key, now, now + lock_time, [&](StateRecord &r) {
        until = r.until;
        // store only if absent
        return r.count == 0 && r.until == 0 && r.inflight == 0;
    });
    if (!ok) {
        return -1;
    }
    return until > now ? until - now : 0;
}

// Counts one failure under `key`; locks when `max` is reached. The record
// then holds a count or a lock, so a full store never drops it early.
bool count_failure(SharedState &state, const std::string &key,
                   std::int64_t max, std::int64_t lock_time,
                   std::int64_t now)
{
    return state.update(key, now, now + lock_time, [&](StateRecord &r) {
        if (r.until > now) {
            return false;  // already locked: the lock runs its course
        }
        if (++r.count >= max) {
            r.until = now + lock_time;
            r.count = 0;
        }
        return true;
    });
}

// Reserves one attempt under `key`: refused while locked, or while the
// failures so far plus the attempts still being checked reach `max`.
std::int64_t reserve(SharedState &state, const std::string &key,
                     std::int64_t max, std::int64_t lock_time,
                     std::int64_t now)
{
    std::int64_t wait = 0;
    bool ok = state.update(key, now, now + lock_time, [&](StateRecord &r) {
        if (r.until > now) {
            wait = r.until - now;
            return false;
        }
        if (r.count + r.inflight >= max) {
            wait = 1;  // a moment: the checks under way decide
            return false;
        }
        r.inflight++;
        return true;
    });
    return ok ? wait : lock_time;
}

void release(SharedState &state, const std::string &key,
             std::int64_t lock_time, std::int64_t now)
{
    state.update(key, now, now + lock_time, [&](StateRecord &r) {
        if (r.inflight == 0) {
            return false;
        }
        r.inflight--;
        return true;
    });
}

bool reset_count(SharedState &state, const std::string &key,
                 std::int64_t now)
{
    return state.update(key, now, now + 1, [&](StateRecord &r) {
        if (r.count == 0 || r.until > now) {
            return false;  // nothing to reset, or a lock in force
        }
        r.count = 0;
        return true;
    });
}

// The three counters of an attempt (see LockoutRule), the address first:
// a locked address is refused before anything is stored for the account.
struct Counters {
    struct Counter {
        std::string key;
        std::int64_t max;
    };
    Counter all[3];

    Counters(const LockoutRule &rule, std::string_view user,
             std::string_view address)
        : all{{key_of("a:", address), rule.max_address_failures},
              {key_of("f:", user) + " " + std::string(address),
               rule.max_failures},
              {key_of("u:", user), rule.max_account_failures}}
    {
    }
};

}  // namespace

bool prepare_state(SharedState &state, std::int64_t now)
{
    return state.update(revoked_before_key, now, forever,
                        [](StateRecord &) { return true; }, true);
}

std::string unknown_account(std::string_view name)
{
    // A fixed hash (every worker must agree): which bucket an unknown name
    // falls into is no secret, and a collision only shares a count.
    static const char hex[] = "0123456789abcdef";
    std::size_t h = std::hash<std::string_view>{}(name) % 1024;
    return {'?', hex[h >> 8], hex[(h >> 4) & 15], hex[h & 15]};
}

std::int64_t locked_for(SharedState &state, const LockoutRule &rule,
                        std::string_view user, std::string_view address,
                        std::int64_t now)
{
    for (const auto &c : Counters(rule, user, address).all) {
        std::int64_t left = lock_left(state, c.key, rule.lock_time, now);
        if (left != 0) {
            return left < 0 ? rule.lock_time : left;
        }
    }
    return 0;
}

std::int64_t record_failure(SharedState &state, const LockoutRule &rule,
                            std::string_view user, std::string_view address,
                            std::int64_t now)
{
    bool counted = true;
    for (const auto &c : Counters(rule, user, address).all) {
        counted = count_failure(state, c.key, c.max, rule.lock_time, now)
                  && counted;
    }
    if (!counted) {
        return rule.lock_time;
    }
    return locked_for(state, rule, user, address, now);
}

std::int64_t begin_attempt(SharedState &state, const LockoutRule &rule,
                           std::string_view user, std::string_view address,
                           std::int64_t now)
{
    Counters counters(rule, user, address);
    std::size_t reserved = 0;
    for (const auto &c : counters.all) {
        std::int64_t wait = reserve(state, c.key, c.max, rule.lock_time, now);
        if (wait > 0) {
            while (reserved > 0) {
                release(state, counters.all[--reserved].key, rule.lock_time,
                        now);
            }
            return wait;
        }
        reserved++;
    }
    return 0;
}

void cancel_attempt(SharedState &state, const LockoutRule &rule,
                    std::string_view user, std::string_view address,
                    std::int64_t now)
{
    for (const auto &c : Counters(rule, user, address).all) {
        release(state, c.key, rule.lock_time, now);
    }
}

std::int64_t end_attempt(SharedState &state, const LockoutRule &rule,
                         std::string_view user, std::string_view address,
                         bool failed, std::int64_t now)
{
    cancel_attempt(state, rule, user, address, now);

    if (failed) {
        return record_failure(state, rule, user, address, now);
    }
    return locked_for(state, rule, user, address, now);
}

void record_success(SharedState &state, const LockoutRule &rule,
                    std::string_view user, std::string_view address,
                    std::int64_t now)
{
    for (const auto &c : Counters(rule, user, address).all) {
        reset_count(state, c.key, now);
    }
}

Claim claim_totp_step(SharedState &state, std::string_view user,
                      std::int64_t step, std::int64_t period,
                      std::int64_t now)
{
    bool replayed = false;
    // Kept until the step can no longer verify (one step of drift).
    std::int64_t expires = (step + 2) * period + 1;
    bool ok = state.update(key_of("t:", user), now, std::max(expires, now + 1),
                           [&](StateRecord &r) {
        if (r.until != 0 && step <= r.count) {
            replayed = true;
            return false;
        }
        r.count = step;
        r.until = 1;  // marks a claimed step (step 0 is a valid value)
        return true;
    }, true);
    if (replayed) {
        return Claim::replayed;
    }
    return ok ? Claim::fresh : Claim::unavailable;
}

std::int64_t out_of_band_owner(std::string_view txid)
{
    std::uint64_t h = 14695981039346656037ULL;  // FNV-1a: every worker
                                                // and host agrees
    for (unsigned char c : txid) {
        h = (h ^ c) * 1099511628211ULL;
    }
    return static_cast<std::int64_t>(h >> 1) | 1;
}

Start start_out_of_band(SharedState &state, const OutOfBandRule &rule,
                        std::string_view user, std::int64_t now,
                        std::int64_t owner, std::int64_t replacing)
{
    std::string pending_key = key_of("o:", user);

    // The waiting request (its owner in `inflight`) is the one replaced.
    auto replaced = [&](const StateRecord &r) {
        return replacing != 0 && r.inflight == replacing;
    };

    // One waiting already: refused without counting it.
    std::int64_t waiting = lock_left(state, pending_key, rule.pending_for,
                                     now);
    if (waiting < 0) {
        return Start::unavailable;
    }
    if (waiting > 0) {
        bool mine = false;
        state.update(pending_key, now, now + rule.pending_for,
                     [&](StateRecord &r) {
            mine = replaced(r);
            return false;  // a read
        });
        if (!mine) {
            return Start::busy;
        }
    }

    bool too_many = false;
    bool ok = state.update(key_of("n:", user), now, now + rule.window,
                           [&](StateRecord &r) {
        if (r.until <= now) {
            r = StateRecord{};
            r.until = now + rule.window;  // a new window starts
        }
        if (r.count >= rule.max_starts) {
            too_many = true;
            return false;
        }
        r.count++;
        return true;
    });
    if (too_many) {
        return Start::too_many;
    }
    if (!ok) {
        return Start::unavailable;
    }

    bool busy = false;
    ok = state.update(pending_key, now, now + rule.pending_for,
                      [&](StateRecord &r) {
        if (r.until > now && !replaced(r)) {
            busy = true;  // another worker was quicker
            return false;
        }
        r.until = now + rule.pending_for;
        r.inflight = owner;
        return true;
    }, true);
    if (busy) {
        return Start::busy;
    }
    return ok ? Start::ok : Start::unavailable;
}

bool bind_out_of_band(SharedState &state, std::string_view user,
                      std::int64_t now, std::int64_t owner)
{
    std::string key = key_of("o:", user);
    std::int64_t until = 0;
    state.update(key, now, now + 1, [&](StateRecord &r) {
        until = r.until;
        return false;  // a read: the slot keeps its time
    });
    if (until <= now || owner == 0) {
        return false;
    }

    bool bound = false;
    state.update(key, now, until, [&](StateRecord &r) {
        if (r.until != until || r.inflight != 0) {
            return false;  // taken over or ended meanwhile
        }
        r.inflight = owner;
        bound = true;
        return true;
    }, true);
    return bound;
}

void end_out_of_band(SharedState &state, std::string_view user,
                     std::int64_t now, std::int64_t owner)
{
    state.update(key_of("o:", user), now, now + 1, [&](StateRecord &r) {
        if (r.until <= now || (owner != 0 && r.inflight != owner)) {
            return false;
        }
        r.until = 0;
        r.inflight = 0;
        return true;
    });
}

std::int64_t out_of_band_retry(SharedState &state, const OutOfBandRule &rule,
                               std::string_view user, std::int64_t now)
{
    std::int64_t left = 0;
    state.update(key_of("n:", user), now, now + rule.window,
                 [&](StateRecord &r) {
        if (r.until > now && r.count >= rule.max_starts) {
            left = r.until - now;
        }
        return false;  // a read
    });
    return left;
}

std::string pause_key(std::string_view user, std::string_view credentials)
{
    std::string key = key_of("p:", user);
    key += ' ';
    key += credentials;
    return key;
}

bool pause_out_of_band(SharedState &state, std::string_view key,
                       std::int64_t now, std::int64_t until)
{
    if (until <= now) {
        return true;
    }
    // The record is kept as long as its longest pause: an earlier report's
    // end may lie beyond this one's.
    std::int64_t keep = std::max(until,
                                 now + out_of_band_paused_for(state, key,
                                                              now));
    return state.update(key, now, keep, [&](StateRecord &r) {
        r.until = std::max(r.until, until);  // a later report extends it
        return true;
    }, true);
}

std::int64_t out_of_band_paused_for(SharedState &state, std::string_view key,
                                    std::int64_t now)
{
    std::int64_t until = 0;
    state.update(key, now, now + 1, [&](StateRecord &r) {
        until = r.until;
        return false;  // a read: nothing stored
    });
    return until > now ? until - now : 0;
}

Claim claim_transaction(SharedState &state, std::string_view txid,
                        std::int64_t now, std::int64_t expires)
{
    bool replayed = false;
    bool ok = state.update(key_of("d:", txid), now, std::max(expires, now + 1),
                           [&](StateRecord &r) {
        if (r.until != 0) {
            replayed = true;
            return false;
        }
        r.until = 1;
        return true;
    }, true);
    if (replayed) {
        return Claim::replayed;
    }
    return ok ? Claim::fresh : Claim::unavailable;
}

bool revoke_session(SharedState &state, const Session &session,
                    std::int64_t now)
{
    if (session.expires <= now) {
        return true;  // it opens nothing already
    }
    bool ok = state.update(key_of("r:", session.sid), now, session.expires,
                           [](StateRecord &r) {
                               r.until = 1;  // marks the revocation
                               return true;
                           }, true)
        || state.update(revoked_before_key, now, forever,
                        [&](StateRecord &r) {
                            std::int64_t after = session.auth_time
                                < forever ? session.auth_time + 1 : forever;
                            r.count = std::max(r.count, after);
                            return true;
                        }, true);
    // After the record: a worker that sees the new epoch finds it.
    state.next_revocation_epoch();
    return ok;
}

bool revoke_user_sessions(SharedState &state, std::string_view user,
                          std::int64_t now, std::int64_t keep_until)
{
    bool ok = state.update(key_of("U:", user), now,
                           std::max(keep_until, now + 1),
                           [&](StateRecord &r) {
                               r.count = std::max(r.count, now);
                               return true;
                           }, true)
        || state.update(revoked_before_key, now, forever,
                        [&](StateRecord &r) {
                            r.count = std::max(r.count, now + 1);
                            return true;
                        }, true);
    // After the record: a worker that sees the new epoch finds it.
    state.next_revocation_epoch();
    return ok;
}

bool session_revoked(SharedState &state, const Session &session,
                     std::int64_t now)
{
    bool revoked = false;
    // Reads only: `change` returns false, so nothing is stored.
    bool ok = state.update(key_of("r:", session.sid), now, 0,
                           [&](StateRecord &r) {
                               revoked = r.until != 0;
                               return false;
                           });
    ok = state.update(revoked_before_key, now, 0, [&](StateRecord &r) {
             revoked = revoked || session.auth_time < r.count;
             return false;
         }) && ok;
    ok = state.update(key_of("U:", session.user), now, 0,
                      [&](StateRecord &r) {
             revoked = revoked || (r.count != 0 && session.issued <= r.count);
             return false;
         }) && ok;
    return revoked || !ok;
}

}  // namespace twostep
