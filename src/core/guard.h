// Abuse resistance on state shared by every worker: TOTP codes used once,
// lockout after repeated failures, sessions revoked at sign-out.
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

#include "session.h"

namespace twostep {

// The value kept per key.
struct StateRecord {
    std::int64_t count = 0;
    std::int64_t until = 0;
    std::int64_t inflight = 0;   // attempts being checked right now
};

// Key-value state with expiry that all workers see: nginx shared memory in
// the module (src/ngx), a std::map in unit tests; a networked store (Redis)
// can implement it for several nginx hosts.
class SharedState {
public:
    virtual ~SharedState() = default;

    // Atomically hands `change` the record under `key` (zeroed when absent
    // or expired at `now`); if `change` returns true the result is kept
    // until `expires`. Returns false when it could not be kept (store
    // full): callers then fail closed. Updating a record that exists never
    // fails, and neither does a read (`change` returning false).
    // `change` must not throw. A full store may drop the least recently
    // used empty records (all zero: what a probe leaves) to make room, but
    // never one that is `pinned` or holds anything (a count, an attempt in
    // flight, a time) before it expires: counters that could be pushed out
    // would reset themselves. When only such records are left, storing a
    // new key fails and callers fail closed.
    virtual bool update(std::string_view key, std::int64_t now,
                        std::int64_t expires,
                        const std::function<bool(StateRecord &)> &change,
                        bool pinned = false) = 0;

    // A number that only grows, by one at each revoke_session() and
    // revoke_user_sessions(), read
    // without a lock: a worker that found a session not revoked while it
    // had one value need not look again until it changes.
    virtual std::uint64_t revocation_epoch() = 0;
    virtual void next_revocation_epoch() = 0;
};

// What keeps a record from being dropped by a full store (see update()).
inline bool holds_state(const StateRecord &r)
{
    return r.count != 0 || r.until != 0 || r.inflight != 0;
}

// The record that stands in for revocations the store had no room for.
constexpr std::string_view revoked_before_key = "R";

// Creates what the guard needs to exist before any request (the
// revoked-before record), so later updates of it cannot fail.
bool prepare_state(SharedState &state, std::int64_t now);

// NIST SP 800-63B 5.2.2 allows at most 100 consecutive failures per
// account. They are counted three ways, so that someone who knows a user
// name cannot lock its owner out from everywhere with a few guesses:
// per account from one client address (max_failures: that address is
// refused for the account), per account from every address together
// (max_account_failures, higher: a distributed guess still hits a
// ceiling, and then the account is refused everywhere), and per address
// over every account (max_address_failures: password spraying).
struct LockoutRule {
    std::int64_t max_failures = 5;            // per account and address
    std::int64_t lock_time = 300;             // seconds
    std::int64_t max_address_failures = 50;   // per client address
    std::int64_t max_account_failures = 20;   // per account, all addresses
};

// The account a name typed at sign-in is counted under when it is not in
// the user store: one of a fixed set of shared buckets, so that random
// names cannot fill the store with counters ("?" and hex digits: never a
// valid user name). Names in the store are counted under their own name.
std::string unknown_account(std::string_view name);

// Seconds until the account may try again from this client address; 0
// when it may try now. A store that could not count a failure for them
// (full, or unusable) counts as locked (fail closed).
std::int64_t locked_for(SharedState &state, const LockoutRule &rule,
                        std::string_view user, std::string_view address,
                        std::int64_t now);

// A wrong password or code: counts for the account and the address, and
// returns locked_for() afterwards, or lock_time if it could not be counted.
// A lock in force is pinned: a full store never drops it early.
std::int64_t record_failure(SharedState &state, const LockoutRule &rule,
                            std::string_view user, std::string_view address,
                            std::int64_t now);

// For checks that take time (a password hash, a code checked by the
// provider): begin_attempt() reserves the attempt before the check, so
// guesses sent all at once cannot outrun the count; it returns seconds to
// wait (0: go ahead). end_attempt() reports the outcome (a failure counts)
// and returns locked_for() afterwards.
std::int64_t begin_attempt(SharedState &state, const LockoutRule &rule,
                           std::string_view user, std::string_view address,
                           std::int64_t now);
std::int64_t end_attempt(SharedState &state, const LockoutRule &rule,
                         std::string_view user, std::string_view address,
                         bool failed, std::int64_t now);

// A check that ended without an answer (the client left while the
// provider checked the code): the attempt is released without counting,
// since nobody saw its outcome.
void cancel_attempt(SharedState &state, const LockoutRule &rule,
                    std::string_view user, std::string_view address,
                    std::int64_t now);

// A passed second step resets the counts of the account and the address
// (not a lock in force).
void record_success(SharedState &state, const LockoutRule &rule,
                    std::string_view user, std::string_view address,
                    std::int64_t now);

enum class Claim { fresh, replayed, unavailable };

// RFC 6238 section 5.2: a code's time step is accepted once per user, and
// no older step after it. Pinned until the step can no longer verify.
Claim claim_totp_step(SharedState &state, std::string_view user,
                      std::int64_t step, std::int64_t period,
                      std::int64_t now);

// Push and call (MFA fatigue, OWASP ASVS 2.8.x / NIST SP 800-63B 5.2.2):
// one request waiting per user at a time, and only so many in a window.
struct OutOfBandRule {
    std::int64_t max_starts = 3;    // requests per user per window
    std::int64_t window = 600;      // seconds
    std::int64_t pending_for = 60;  // how long one request blocks the next
};

enum class Start { ok, busy, too_many, unavailable };

// The owner of the slot a transaction holds (never 0): a 64-bit hash of
// its id, so that only that transaction can release or replace it.
std::int64_t out_of_band_owner(std::string_view txid);

// `owner` (not 0) is the transaction the waiting request is (a push
// set-up's test push knows it before it starts; a sign-in's push gets it
// from bind_out_of_band() once the provider names it): end_out_of_band()
// with another owner leaves it, so a request that never took the slot, or
// whose turn ended, cannot free the one another push holds. A slot held
// by `replacing` (not 0; "send another" from the browser whose request
// waits) counts as free and passes to `owner`, only if the start
// succeeds: a stale or copied pending sign-in names a transaction that no
// longer holds the slot, and replaces nothing (one waiting at a time,
// OWASP ASVS 2.8.x).
Start start_out_of_band(SharedState &state, const OutOfBandRule &rule,
                        std::string_view user, std::int64_t now,
                        std::int64_t owner = 0, std::int64_t replacing = 0);

// The waiting request of `user`, started without an owner, is `owner`'s
// from now on; false if none waits, or it has an owner already.
bool bind_out_of_band(SharedState &state, std::string_view user,
                      std::int64_t now, std::int64_t owner);

// The request was answered (or failed): the next one may go out. With an
// `owner`, only if the waiting request is that one's.
void end_out_of_band(SharedState &state, std::string_view user,
                     std::int64_t now, std::int64_t owner = 0);

// Seconds until start_out_of_band() stops answering too_many for `user`:
// the end of the window in which the requests were counted; 0 when one
// may go out now (busy or not).
std::int64_t out_of_band_retry(SharedState &state, const OutOfBandRule &rule,
                               std::string_view user, std::int64_t now);

// Fraud reported from the phone (Duo's "fraud", 0 on a call, "Report" on
// the approval page): pushes and calls for the user pause until `until`
// (twostep_fraud_pause), so whoever holds the password cannot keep the
// phone ringing (NIST SP 800-63B 5.1.3.1, OWASP ASVS 2.8.x). The key is
// pause_key(): a new password or second step lifts it. Pinned; false when
// it could not be kept (the caller fails closed).
std::string pause_key(std::string_view user, std::string_view credentials);
bool pause_out_of_band(SharedState &state, std::string_view key,
                       std::int64_t now, std::int64_t until);
// Seconds the pause of `key` still lasts, 0 when none (a read never
// fails).
std::int64_t out_of_band_paused_for(SharedState &state, std::string_view key,
                                    std::int64_t now);

// A provider transaction finishes a sign-in once: a second use of the same
// transaction id is refused.
Claim claim_transaction(SharedState &state, std::string_view txid,
                        std::int64_t now, std::int64_t expires);

// Sign-out: the session stops working everywhere at once, until it would
// have expired anyway. If the store is full, every session issued up to
// this one is revoked instead (fail closed).
bool revoke_session(SharedState &state, const Session &session,
                    std::int64_t now);

// "Sign out everywhere": every session of `user` that began up to `now`
// (in that second too: which came first cannot be told) stops working on
// every worker, and on every host that shares `state`. The record is
// pinned until `keep_until` (now + the session lifetime: no older session
// outlives it). If the store is full, every session of everyone issued
// up to now is revoked instead (fail closed).
bool revoke_user_sessions(SharedState &state, std::string_view user,
                          std::int64_t now, std::int64_t keep_until);

// Whether sign-out (revoke_session) or "Sign out everywhere"
// (revoke_user_sessions) ended `session`; true if the store cannot say.
bool session_revoked(SharedState &state, const Session &session,
                     std::int64_t now);

}  // namespace twostep
