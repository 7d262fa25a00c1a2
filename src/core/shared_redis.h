// What the nginx hosts of one site share through Redis (twostep_redis):
// the address syntax, the keys, the scripts that make each guard step one
// atomic command, and the revocation messages. Pure: what sends them is
// src/ngx/ngx_http_twostep_redis.cpp, over ngx_http_twostep_redis_conn.cpp.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twostep {
namespace redis {

// twostep_redis: redis://host[:port][/db], rediss://host[:port][/db] (TLS)
// or unix:/path (database 0).
struct Target {
    bool unix_socket = false;
    bool tls = false;
    std::string address;  // "host:port" (port defaulted) or the socket path
    std::string host;     // the name (or address) the certificate must have
    std::int64_t db = 0;
};

// Parses the directive's value; nullopt with `error` set when it is not
// one of the forms above.
std::optional<Target> parse_target(std::string_view url, std::string &error);

// The password file's content without its final line break; empty
// `error` when it is usable.
std::string password_from_file(std::string_view content, std::string &error);

// A command ready to format (redisFormatCommandArgv).
using Argv = std::vector<std::string>;

// One failure or check covers the three counters of an attempt
// (twostep::LockoutRule): the address, the account at that address, the
// account everywhere. Keys are prefixed by twostep_redis_prefix.
struct Counters {
    std::string keys[3];
    std::int64_t max[3];
};
Counters counters(std::string_view prefix, std::string_view user,
                  std::string_view address, std::int64_t max_failures,
                  std::int64_t max_address_failures,
                  std::int64_t max_account_failures);

// A fraud pause (guard.h, pause_key()) kept like a lock: one counter whose
// first "failure" locks it, so lock_check() reads it and record_failure()
// with the pause as lock time sets it, with the same scripts.
Counters pause_counters(std::string_view prefix, std::string_view key);

// EVAL: seconds the attempt must wait (0: none), without counting.
Argv lock_check(const Counters &c, std::int64_t now);
// EVAL: counts a failure on each counter not locked, locks those that
// reach their maximum for `lock_time`, then answers as lock_check().
Argv record_failure(const Counters &c, std::int64_t lock_time,
                    std::int64_t now);
// EVAL: a passed second step clears the counts (not a lock in force).
Argv record_success(const Counters &c, std::int64_t now);

// EVAL (RFC 6238 section 5.2): 1 when `step` is newer than every step of
// `user` claimed on any host (it is now claimed, until `expires`), 0 when
// it was used already.
Argv claim_totp_step(std::string_view prefix, std::string_view user,
                     std::int64_t step, std::int64_t expires);

// EVAL: 1 when the provider transaction `txid` is first used to finish a
// sign-in on any host (kept for `ttl` seconds), 0 when it was used.
Argv claim_transaction(std::string_view prefix, std::string_view txid,
                       std::int64_t ttl);

// A self-hosted push's or call's transaction (approval.h), kept in Redis
// alone so that the host the phone's answer reaches decides it and the
// host the browser polls reads it. The value is "1" (waiting) or the
// decided answer with its MAC (approval_record() in approval.h).
//
// EVAL: 1 when `txid` is opened as waiting (for `ttl` seconds), 0 when it
// was opened already.
Argv open_approval(std::string_view prefix, std::string_view txid,
                   std::int64_t ttl);
// EVAL: waiting -> `record` once, kept until `expires` (unix time): 1
// decided, 0 unknown or expired, 2 decided already (a replayed answer).
Argv decide_approval(std::string_view prefix, std::string_view txid,
                     std::string_view record, std::int64_t expires);
// EVAL: 0 when unknown or expired, 1 waiting, else the stored record (a
// string, for approval_from_record()).
Argv approval_state(std::string_view prefix, std::string_view txid);

// Push, call and text limits across hosts (guard.h, OutOfBandRule): one
// request waiting per user and so many per window, in one script. EVAL:
// 0 the request may go out (it is counted and waits now, as transaction
// `txid` if known), -1 another waits, n > 0 the window is spent for n
// more seconds. A waiting request bound to transaction `replacing` (not
// empty) gives way if the new one may go out; no other does.
Argv start_out_of_band(std::string_view prefix, std::string_view user,
                       std::int64_t max_starts, std::int64_t window,
                       std::int64_t pending_for,
                       std::string_view replacing = {},
                       std::string_view txid = {});
// EVAL: the waiting request is transaction `txid` (once the provider or
// this host named it), for the rest of its time; nothing if none waits or
// it is bound already.
Argv bind_out_of_band(std::string_view prefix, std::string_view user,
                      std::string_view txid);
// The request was answered; the next may go out. With `txid`, an EVAL
// that ends the waiting request only if it is that transaction: reading a
// finished one (an old pending cookie) frees no other push's place. Else
// DEL (a request that failed as it was sent).
Argv end_out_of_band(std::string_view prefix, std::string_view user,
                     std::string_view txid = {});

// A sign-out as every host learns it: the session id, when the session
// would have expired, and when it was signed in. Or "sign out everywhere":
// `user` (sid empty), every session of it begun up to `auth_time`, kept
// until `expires`.
struct Revocation {
    std::string sid;
    std::int64_t expires = 0;
    std::int64_t auth_time = 0;
    std::string user;
};

std::string revocations_key(std::string_view prefix);   // a sorted set
std::string revocations_channel(std::string_view prefix);

// EVAL: records the revocation (kept until the session would have
// expired; older ones are dropped) and publishes it.
Argv revoke(std::string_view prefix, const Revocation &rev, std::int64_t now);
// The revocations still in force at `now`, after a (re)connect:
// ZRANGEBYSCORE ... WITHSCORES.
Argv revocations_since(std::string_view prefix, std::int64_t now);

// A message on the channel, or a member of the sorted set ("sid auth_time"
// or "U:user time") with its score: nullopt when it is not one we wrote
// (never trusted).
std::string revocation_member(const Revocation &rev);
std::string revocation_message(const Revocation &rev);
std::optional<Revocation> parse_revocation_message(std::string_view msg);
std::optional<Revocation> parse_revocation_member(std::string_view member,
                                                  std::string_view score);

}  // namespace redis
}  // namespace twostep
