#include "shared_redis.h"

#include <string>

#include "session.h"
#include "user_store.h"

namespace twostep {
namespace redis {

namespace {

constexpr std::string_view scheme = "redis://";
constexpr std::string_view tls_scheme = "rediss://";
constexpr std::string_view unix_prefix = "unix:";

// Each script touches only the keys it is given (KEYS), so it runs as one
// atomic step on any Redis 5 or later (and in a cluster's single slot when
// the prefix is a hash tag).

// KEYS: the counters; ARGV: now. The longest lock in force.
constexpr std::string_view lock_check_lua =
    "local now = tonumber(ARGV[1]) local left = 0 "
    "for _, k in ipairs(KEYS) do "
    "local u = tonumber(redis.call('HGET', k, 'u') or '0') "
    "if u > now and u - now > left then left = u - now end end "
    "return left";

// KEYS: the counters; ARGV: now, lock time, then each counter's maximum.
// Mirrors guard.cpp's count_failure(): a lock runs its course; reaching
// the maximum locks and starts the count again; the count is forgotten
// lock_time after the last failure.
constexpr std::string_view record_failure_lua =
    "local now = tonumber(ARGV[1]) local lock = tonumber(ARGV[2]) "
    "local left = 0 "
    "for i, k in ipairs(KEYS) do "
    "local u = tonumber(redis.call('HGET', k, 'u') or '0') "
    "if u <= now then "
    "local c = redis.call('HINCRBY', k, 'c', 1) "
    "if c >= tonumber(ARGV[2 + i]) then "
    "redis.call('HSET', k, 'c', 0) redis.call('HSET', k, 'u', now + lock) "
    "u = now + lock end "
    "redis.call('EXPIRE', k, lock) end "
    "if u > now and u - now > left then left = u - now end end "
    "return left";

// KEYS: the counters; ARGV: now.
constexpr std::string_view record_success_lua =
    "local now = tonumber(ARGV[1]) "
    "for _, k in ipairs(KEYS) do "
    "local u = tonumber(redis.call('HGET', k, 'u') or '0') "
    "if u <= now then redis.call('DEL', k) end end "
    "return 0";

// KEYS: the user's last step; ARGV: step, expiry (unix time).
constexpr std::string_view claim_step_lua =
    "local last = redis.call('GET', KEYS[1]) "
    "if last and tonumber(last) >= tonumber(ARGV[1]) then return 0 end "
    "redis.call('SET', KEYS[1], ARGV[1]) "
    "redis.call('EXPIREAT', KEYS[1], ARGV[2]) "
    "return 1";

// KEYS: the key; ARGV: the value, seconds to keep it. Set only if absent.
constexpr std::string_view set_once_lua =
    "if redis.call('SET', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) "
    "then return 1 end return 0";

// KEYS: the transaction; ARGV: the answer, its expiry (unix time). Only a
// waiting one (1, Approval::waiting) is decided: the first answer wins.
constexpr std::string_view decide_lua =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v then return 0 end "
    "if v ~= '1' then return 2 end "
    "redis.call('SET', KEYS[1], ARGV[1]) "
    "redis.call('EXPIREAT', KEYS[1], ARGV[2]) "
    "return 1";

// KEYS: the transaction. 0 (absent) and 1 (waiting) as integers; a
// decided record as it is, for the reader to verify its MAC (never here:
// whoever can write to Redis can change a script's verdict too).
constexpr std::string_view approval_lua =
    "local v = redis.call('GET', KEYS[1]) "
    "if not v then return 0 end "
    "if v == '1' then return 1 end "
    "return v";

// KEYS: the user's waiting request ("1" until bound to its transaction),
// the user's count in the window; ARGV: maximum, window, how long one
// request blocks the next, the transaction whose waiting request gives
// way ("": none; only that one, OWASP ASVS 2.8.x), the transaction the
// new one is ("1" when not known yet). Mirrors guard.cpp's
// start_out_of_band(): busy before too many; the window starts at its
// first request; a waiting request given way to stays if over the limit.
constexpr std::string_view start_oob_lua =
    "local held = redis.call('GET', KEYS[1]) "
    "if held and (held == '1' or held ~= ARGV[4]) then return -1 end "
    "local c = tonumber(redis.call('GET', KEYS[2]) or '0') "
    "if c >= tonumber(ARGV[1]) then "
    "local t = redis.call('TTL', KEYS[2]) "
    "if t < 1 then t = tonumber(ARGV[2]) "
    "redis.call('EXPIRE', KEYS[2], t) end "
    "return t end "
    "if redis.call('INCR', KEYS[2]) == 1 then "
    "redis.call('EXPIRE', KEYS[2], ARGV[2]) end "
    "redis.call('SET', KEYS[1], ARGV[5], 'EX', ARGV[3]) "
    "return 0";

// KEYS: the user's waiting request; ARGV: its transaction id. Only one
// not bound yet, kept as long as it was (PTTL: Redis 5 has no KEEPTTL).
constexpr std::string_view bind_oob_lua =
    "local t = redis.call('PTTL', KEYS[1]) "
    "if t > 0 and redis.call('GET', KEYS[1]) == '1' then "
    "redis.call('SET', KEYS[1], ARGV[1], 'PX', t) "
    "return 1 end return 0";

// KEYS: the user's waiting request; ARGV: the transaction that finished.
constexpr std::string_view end_oob_lua =
    "if redis.call('GET', KEYS[1]) == ARGV[1] then "
    "return redis.call('DEL', KEYS[1]) end return 0";

// KEYS: the revocations; ARGV: member, expiry, now, channel, message.
constexpr std::string_view revoke_lua =
    "redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1]) "
    "redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', '(' .. ARGV[3]) "
    "redis.call('PUBLISH', ARGV[4], ARGV[5]) "
    "return 1";

std::string join(std::string_view a, std::string_view b)
{
    std::string s(a);
    s += b;
    return s;
}

Argv eval(std::string_view script, const Counters &c)
{
    return {"EVAL", std::string(script), "3", c.keys[0], c.keys[1],
            c.keys[2]};
}

bool split_pair(std::string_view text, std::string_view &first,
                std::string_view &second)
{
    std::size_t space = text.find(' ');
    if (space == std::string_view::npos) {
        return false;
    }
    first = text.substr(0, space);
    second = text.substr(space + 1);
    return true;
}

}  // namespace

std::optional<Target> parse_target(std::string_view url, std::string &error)
{
    Target t;

    if (url.substr(0, unix_prefix.size()) == unix_prefix) {
        t.unix_socket = true;
        t.address = std::string(url.substr(unix_prefix.size()));
        if (t.address.empty() || t.address[0] != '/') {
            error = "a unix socket needs an absolute path (unix:/path)";
            return std::nullopt;
        }
        return t;
    }

    if (url.substr(0, tls_scheme.size()) == tls_scheme) {
        t.tls = true;
        url.remove_prefix(tls_scheme.size());

    } else if (url.substr(0, scheme.size()) == scheme) {
        url.remove_prefix(scheme.size());

    } else {
        error = "the address must start with redis://, rediss:// or unix:";
        return std::nullopt;
    }

    std::size_t slash = url.find('/');
    std::string_view host = url.substr(0, slash);
    if (slash != std::string_view::npos) {
        std::string_view db = url.substr(slash + 1);
        auto n = parse_time(db);
        if (!n || *n > 1000000) {
            error = "the database after \"/\" must be a number";
            return std::nullopt;
        }
        t.db = *n;
    }

    if (host.empty() || host.find('@') != std::string_view::npos
        || host.find_first_of("?#") != std::string_view::npos)
    {
        error = "a host is needed (redis://host:port/db); the password "
                "goes in twostep_redis_password_file, not the address";
        return std::nullopt;
    }

    // "[::1]" or "host" without a port: Redis's own.
    std::size_t colon = host.rfind(':');
    std::size_t bracket = host.rfind(']');
    bool has_port = colon != std::string_view::npos
                    && (bracket == std::string_view::npos || colon > bracket);
    t.address = std::string(host);
    if (!has_port) {
        t.address += ":6379";
    }

    std::string_view name = has_port ? host.substr(0, colon) : host;
    if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
        name = name.substr(1, name.size() - 2);
    }
    if (name.empty()) {
        error = "a host is needed (redis://host:port/db)";
        return std::nullopt;
    }
    t.host = std::string(name);
    return t;
}

std::string password_from_file(std::string_view content, std::string &error)
{
    if (!content.empty() && content.back() == '\n') {
        content.remove_suffix(1);
    }
    if (!content.empty() && content.back() == '\r') {
        content.remove_suffix(1);
    }
    if (content.empty()) {
        error = "the password file is empty";
        return {};
    }
    if (content.find_first_of("\r\n") != std::string_view::npos) {
        error = "the password file has more than one line";
        return {};
    }
    error.clear();
    return std::string(content);
}

Counters counters(std::string_view prefix, std::string_view user,
                  std::string_view address, std::int64_t max_failures,
                  std::int64_t max_address_failures,
                  std::int64_t max_account_failures)
{
    // The same three counters, in the same order, as guard.cpp's.
    Counters c;
    c.keys[0] = join(prefix, "a:") + std::string(address);
    c.keys[1] = join(prefix, "f:") + std::string(user) + " "
                + std::string(address);
    c.keys[2] = join(prefix, "u:") + std::string(user);
    c.max[0] = max_address_failures;
    c.max[1] = max_failures;
    c.max[2] = max_account_failures;
    return c;
}

Counters pause_counters(std::string_view prefix, std::string_view key)
{
    // The scripts take three keys: the same one three times (the second
    // and third find it locked by the first and leave it).
    Counters c;
    for (int i = 0; i < 3; i++) {
        c.keys[i] = join(prefix, key);
        c.max[i] = 1;
    }
    return c;
}

Argv lock_check(const Counters &c, std::int64_t now)
{
    Argv argv = eval(lock_check_lua, c);
    argv.push_back(std::to_string(now));
    return argv;
}

Argv record_failure(const Counters &c, std::int64_t lock_time,
                    std::int64_t now)
{
    Argv argv = eval(record_failure_lua, c);
    argv.push_back(std::to_string(now));
    argv.push_back(std::to_string(lock_time));
    for (std::int64_t max : c.max) {
        argv.push_back(std::to_string(max));
    }
    return argv;
}

Argv record_success(const Counters &c, std::int64_t now)
{
    Argv argv = eval(record_success_lua, c);
    argv.push_back(std::to_string(now));
    return argv;
}

Argv claim_totp_step(std::string_view prefix, std::string_view user,
                     std::int64_t step, std::int64_t expires)
{
    return {"EVAL", std::string(claim_step_lua), "1",
            join(prefix, "t:") + std::string(user), std::to_string(step),
            std::to_string(expires)};
}

Argv claim_transaction(std::string_view prefix, std::string_view txid,
                       std::int64_t ttl)
{
    return {"EVAL", std::string(set_once_lua), "1",
            join(prefix, "d:") + std::string(txid), "1",
            std::to_string(ttl > 0 ? ttl : 1)};
}

Argv open_approval(std::string_view prefix, std::string_view txid,
                   std::int64_t ttl)
{
    // "1": Approval::waiting (approval.h; never renumbered).
    return {"EVAL", std::string(set_once_lua), "1",
            join(prefix, "x:") + std::string(txid), "1",
            std::to_string(ttl > 0 ? ttl : 1)};
}

Argv decide_approval(std::string_view prefix, std::string_view txid,
                     std::string_view record, std::int64_t expires)
{
    return {"EVAL", std::string(decide_lua), "1",
            join(prefix, "x:") + std::string(txid), std::string(record),
            std::to_string(expires)};
}

Argv approval_state(std::string_view prefix, std::string_view txid)
{
    return {"EVAL", std::string(approval_lua), "1",
            join(prefix, "x:") + std::string(txid)};
}

Argv start_out_of_band(std::string_view prefix, std::string_view user,
                       std::int64_t max_starts, std::int64_t window,
                       std::int64_t pending_for, std::string_view replacing,
                       std::string_view txid)
{
    return {"EVAL", std::string(start_oob_lua), "2",
            join(prefix, "o:") + std::string(user),
            join(prefix, "n:") + std::string(user),
            std::to_string(max_starts), std::to_string(window),
            std::to_string(pending_for), std::string(replacing),
            txid.empty() ? "1" : std::string(txid)};
}

Argv bind_out_of_band(std::string_view prefix, std::string_view user,
                      std::string_view txid)
{
    return {"EVAL", std::string(bind_oob_lua), "1",
            join(prefix, "o:") + std::string(user), std::string(txid)};
}

Argv end_out_of_band(std::string_view prefix, std::string_view user,
                     std::string_view txid)
{
    if (txid.empty()) {
        return {"DEL", join(prefix, "o:") + std::string(user)};
    }
    return {"EVAL", std::string(end_oob_lua), "1",
            join(prefix, "o:") + std::string(user), std::string(txid)};
}

std::string revocations_key(std::string_view prefix)
{
    return join(prefix, "revoked");
}

std::string revocations_channel(std::string_view prefix)
{
    return join(prefix, "revocations");
}

std::string revocation_member(const Revocation &rev)
{
    // Session ids are base64url and user names have no ':', so the two
    // kinds cannot be taken for each other.
    return (rev.sid.empty() ? "U:" + rev.user : rev.sid) + " "
           + std::to_string(rev.auth_time);
}

std::string revocation_message(const Revocation &rev)
{
    return revocation_member(rev) + " " + std::to_string(rev.expires);
}

Argv revoke(std::string_view prefix, const Revocation &rev, std::int64_t now)
{
    return {"EVAL", std::string(revoke_lua), "1", revocations_key(prefix),
            revocation_member(rev), std::to_string(rev.expires),
            std::to_string(now), revocations_channel(prefix),
            revocation_message(rev)};
}

Argv revocations_since(std::string_view prefix, std::int64_t now)
{
    return {"ZRANGEBYSCORE", revocations_key(prefix), std::to_string(now),
            "+inf", "WITHSCORES"};
}

std::optional<Revocation> parse_revocation_member(std::string_view member,
                                                  std::string_view score)
{
    std::string_view id, auth_time;
    if (!split_pair(member, id, auth_time)) {
        return std::nullopt;
    }
    auto at = parse_time(auth_time);
    auto expires = parse_time(score);
    if (!at || !expires) {
        return std::nullopt;
    }
    if (id.substr(0, 2) == "U:") {
        id.remove_prefix(2);
        if (!valid_user_name(id)) {
            return std::nullopt;
        }
        return Revocation{"", *expires, *at, std::string(id)};
    }
    if (!valid_id(id)) {
        return std::nullopt;
    }
    return Revocation{std::string(id), *expires, *at, ""};
}

std::optional<Revocation> parse_revocation_message(std::string_view msg)
{
    std::size_t last = msg.rfind(' ');
    if (last == std::string_view::npos) {
        return std::nullopt;
    }
    return parse_revocation_member(msg.substr(0, last), msg.substr(last + 1));
}

}  // namespace redis
}  // namespace twostep
