// twostep_redis: the state several nginx hosts share, in Redis: the
// lockout counters, TOTP steps already used, self-hosted push and call
// transactions and their limits, the fraud pause, and revocations, which
// every worker copies into its local zone so a signed-in request never
// waits on the network. This file says what is sent and how each answer
// continues the request; the connections that carry it are
// ngx_http_twostep_redis_conn.cpp, and the commands' texts
// src/core/shared_redis.cpp.

#include "ngx_http_twostep_redis_conn.h"

#include <deque>

#include "core/approval.h"
#include "core/shared_redis.h"


// Revocations kept for Redis while it cannot take them.
#define NGX_HTTP_TWOSTEP_REDIS_MAX_RETRIES   4096


// A request waiting for a reply; the request's pool cleanup forgets it, so
// a reply after the request ended touches nothing.
struct ngx_http_twostep_redis_waiter_t {
    ngx_http_request_t                               *r = nullptr;
    std::function<ngx_int_t(std::optional<int64_t>)>  finish;
    // Set when a string answer is expected too (a decided approval and
    // its MAC): runs instead of `finish` for one.
    std::function<ngx_int_t(std::string_view)>        text;
};

struct ngx_http_twostep_redis_hold_t {
    std::shared_ptr<ngx_http_twostep_redis_waiter_t>  waiter;

    ~ngx_http_twostep_redis_hold_t()
    {
        if (waiter) {
            waiter->r = nullptr;
        }
    }
};


static ngx_http_twostep_main_conf_t   *ngx_http_twostep_redis_mcf;
static ngx_log_t                      *ngx_http_twostep_redis_log;
// twostep_redis_prefix, for every key.
static std::string_view                ngx_http_twostep_redis_prefix;
// Revocations written locally that Redis has not taken yet.
static std::deque<twostep::redis::Revocation>
                                      *ngx_http_twostep_redis_retries;
static bool                            ngx_http_twostep_redis_catch_up;


// -- revocations from other hosts --------------------------------------------

static void
ngx_http_twostep_redis_apply(const twostep::redis::Revocation &rev)
{
    if (ngx_http_twostep_redis_mcf->zone == NULL) {
        return;
    }

    ngx_http_twostep_zone_state state(
        static_cast<ngx_http_twostep_zone_ctx_t *>(
            ngx_http_twostep_redis_mcf->zone->data),
        ngx_http_twostep_redis_log);

    bool ok;

    if (rev.sid.empty()) {
        // "Sign out everywhere" on another host, as of its clock.
        ok = twostep::revoke_user_sessions(state, rev.user, rev.auth_time,
                                           rev.expires);

    } else {
        twostep::Session session;
        session.sid = rev.sid;
        session.expires = rev.expires;
        session.auth_time = rev.auth_time;
        ok = twostep::revoke_session(state, session, ngx_time());
    }

    if (!ok) {
        ngx_log_error(NGX_LOG_ALERT, ngx_http_twostep_redis_log, 0,
                      "twostep: could not record a revocation from redis");
    }
}


// A message on the revocations channel.
static void
ngx_http_twostep_redis_message(std::string_view payload)
{
    auto rev = twostep::redis::parse_revocation_message(payload);
    if (rev) {
        ngx_http_twostep_redis_apply(*rev);
    }
}


static void
ngx_http_twostep_redis_send_retries()
{
    auto &retries = *ngx_http_twostep_redis_retries;

    while (ngx_http_twostep_redis_conn_ready() && !retries.empty()) {
        twostep::redis::Revocation rev = retries.front();
        retries.pop_front();

        auto on_reply = [rev](const redisReply *reply) {
            if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER) {
                if (ngx_http_twostep_redis_retries->size()
                    < NGX_HTTP_TWOSTEP_REDIS_MAX_RETRIES)
                {
                    ngx_http_twostep_redis_retries->push_back(rev);
                }
            }
        };

        ngx_http_twostep_redis_conn_send(
            twostep::redis::revoke(ngx_http_twostep_redis_prefix, rev,
                                   ngx_time()),
            std::move(on_reply));
    }
}


static void
ngx_http_twostep_redis_send_catch_up()
{
    if (!ngx_http_twostep_redis_catch_up
        || !ngx_http_twostep_redis_conn_ready())
    {
        return;
    }

    ngx_http_twostep_redis_catch_up = false;

    auto on_reply = [](const redisReply *reply) {
        if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY) {
            ngx_http_twostep_redis_catch_up = true;  // at the next connect
            return;
        }

        for (size_t i = 0; i + 1 < reply->elements; i += 2) {
            const redisReply *member = reply->element[i];
            const redisReply *score = reply->element[i + 1];

            if (member->type != REDIS_REPLY_STRING
                || score->type != REDIS_REPLY_STRING)
            {
                continue;
            }

            auto rev = twostep::redis::parse_revocation_member(
                std::string_view(member->str, member->len),
                std::string_view(score->str, score->len));
            if (rev) {
                ngx_http_twostep_redis_apply(*rev);
            }
        }
    };

    ngx_http_twostep_redis_conn_send(
        twostep::redis::revocations_since(ngx_http_twostep_redis_prefix,
                                          ngx_time()),
        std::move(on_reply));
}


// A connection is (back) up: the subscribed one fetches what was revoked
// while away; the command one also sends what this worker could not.
static void
ngx_http_twostep_redis_ready(bool subscriber)
{
    if (subscriber) {
        ngx_http_twostep_redis_catch_up = true;
    }
    ngx_http_twostep_redis_send_retries();
    ngx_http_twostep_redis_send_catch_up();
}


ngx_int_t
ngx_http_twostep_redis_init(ngx_cycle_t *cycle,
    ngx_http_twostep_main_conf_t *mcf)
{
    if (mcf->redis == NULL) {
        return NGX_OK;
    }

    ngx_http_twostep_redis_mcf = mcf;
    ngx_http_twostep_redis_log = cycle->log;
    ngx_http_twostep_redis_prefix = ngx_http_twostep_redis_conn_prefix(
                                        mcf->redis);

    ngx_http_twostep_redis_retries =
        ngx_http_twostep_pool_new<std::deque<twostep::redis::Revocation>>(
            cycle->pool);
    if (ngx_http_twostep_redis_retries == NULL) {
        return NGX_ERROR;
    }

    ngx_http_twostep_redis_conn_handlers_t  handlers;

    handlers.channel = twostep::redis::revocations_channel(
                           ngx_http_twostep_redis_prefix);
    handlers.subscriber_name = "(revocations)";
    handlers.message = ngx_http_twostep_redis_message;
    handlers.ready = ngx_http_twostep_redis_ready;

    return ngx_http_twostep_redis_conn_start(cycle, mcf->redis, handlers);
}


// -- what the flow asks ------------------------------------------------------

// The reply to a request's command continues the request (or, nullptr,
// fails it closed).
static void
ngx_http_twostep_redis_answer(ngx_http_twostep_redis_waiter_t &waiter,
    const redisReply *reply)
{
    if (waiter.r == nullptr) {
        return;  // the request ended meanwhile
    }

    ngx_http_request_t *r = waiter.r;
    ngx_connection_t *c = r->connection;
    ngx_int_t rc;

    std::optional<int64_t> value;
    bool text = false;
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        value = reply->integer;

    } else if (reply && reply->type == REDIS_REPLY_STRING && waiter.text) {
        text = true;

    } else if (reply) {
        ngx_http_twostep_redis_conn_error("answered something unexpected",
            reply->type == REDIS_REPLY_ERROR ? reply->str : nullptr);
    }

    auto finish = std::move(waiter.finish);
    auto finish_text = std::move(waiter.text);
    waiter.r = nullptr;

    try {
        rc = text ? finish_text(std::string_view(reply->str, reply->len))
                  : finish(value);

    } catch (...) {
        ngx_log_error(NGX_LOG_ERR, c->log, 0,
                      "twostep: a sign-in step failed after redis answered");
        rc = NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    // NGX_DONE: the next step (another command) parks the request again.
    if (rc != NGX_DONE) {
        ngx_http_finalize_request(r, rc);
    }
    ngx_http_run_posted_requests(c);
}


// Sends `argv` for request `r` and parks it; `finish` runs with the
// integer Redis answered (nullopt: failed, timed out or not an integer),
// or `text` (if given) with a string it answered, and its result
// finalizes the request.
static ngx_int_t
ngx_http_twostep_redis_call(ngx_http_request_t *r,
    const twostep::redis::Argv &argv,
    std::function<ngx_int_t(std::optional<int64_t>)> finish,
    std::function<ngx_int_t(std::string_view)> text = nullptr)
{
    if (!ngx_http_twostep_redis_conn_open()) {
        // Between reconnects: the unavailable page now, not a wait.
        ngx_http_twostep_redis_conn_error("is unavailable", nullptr);
        return finish(std::nullopt);
    }

    auto hold = ngx_http_twostep_pool_new<ngx_http_twostep_redis_hold_t>(
                    r->pool);
    if (hold == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    hold->waiter = std::make_shared<ngx_http_twostep_redis_waiter_t>();
    hold->waiter->r = r;
    hold->waiter->finish = std::move(finish);
    hold->waiter->text = std::move(text);

    auto on_reply = [waiter = hold->waiter](const redisReply *reply) {
        ngx_http_twostep_redis_answer(*waiter, reply);
    };

    if (!ngx_http_twostep_redis_conn_send(argv, std::move(on_reply))) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    // The request waits at most the timeout (then the link fails it).
    r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;
}


static twostep::redis::Counters
ngx_http_twostep_redis_counters(ngx_http_twostep_srv_conf_t *scf,
    std::string_view user, std::string_view address)
{
    return twostep::redis::counters(ngx_http_twostep_redis_prefix, user,
                                    address, scf->lockout_failures,
                                    scf->lockout_address_failures,
                                    scf->lockout_account_failures);
}


ngx_int_t
ngx_http_twostep_shared_locked(ngx_http_request_t *r,
    ngx_http_twostep_srv_conf_t *scf, std::string_view user,
    std::string_view address, bool failed,
    std::function<ngx_int_t(int64_t)> then)
{
    if (!ngx_http_twostep_redis_on()) {
        return then(0);
    }

    auto counters = ngx_http_twostep_redis_counters(scf, user, address);

    return ngx_http_twostep_redis_call(r,
        failed ? twostep::redis::record_failure(counters, scf->lockout_time,
                                                ngx_time())
               : twostep::redis::lock_check(counters, ngx_time()),
        [then](std::optional<int64_t> left) {
            return then(left && *left >= 0 ? *left : -1);
        });
}


ngx_int_t
ngx_http_twostep_shared_pause(ngx_http_request_t *r, std::string_view key,
    int64_t seconds, std::function<ngx_int_t(int64_t)> then)
{
    if (!ngx_http_twostep_redis_on()) {
        return then(0);
    }

    auto counters = twostep::redis::pause_counters(
                        ngx_http_twostep_redis_prefix, key);

    return ngx_http_twostep_redis_call(r,
        seconds > 0 ? twostep::redis::record_failure(counters, seconds,
                                                     ngx_time())
                    : twostep::redis::lock_check(counters, ngx_time()),
        [then](std::optional<int64_t> left) {
            return then(left && *left >= 0 ? *left : -1);
        });
}


// `then` gets fresh (1), replayed (0) or unavailable (anything else).
static ngx_int_t
ngx_http_twostep_redis_claim(ngx_http_request_t *r,
    const twostep::redis::Argv &argv,
    std::function<ngx_int_t(twostep::Claim)> then)
{
    return ngx_http_twostep_redis_call(r, argv,
        [then](std::optional<int64_t> fresh) {
            if (!fresh || (*fresh != 0 && *fresh != 1)) {
                return then(twostep::Claim::unavailable);
            }
            return then(*fresh ? twostep::Claim::fresh
                               : twostep::Claim::replayed);
        });
}


ngx_int_t
ngx_http_twostep_shared_claim_transaction(ngx_http_request_t *r,
    std::string_view txid, int64_t expires,
    std::function<ngx_int_t(twostep::Claim)> then)
{
    if (!ngx_http_twostep_redis_on()) {
        return then(twostep::Claim::fresh);
    }

    return ngx_http_twostep_redis_claim(r,
        twostep::redis::claim_transaction(ngx_http_twostep_redis_prefix,
                                          txid, expires - ngx_time()),
        std::move(then));
}


ngx_int_t
ngx_http_twostep_claim_once(ngx_http_request_t *r, std::string_view id,
    std::string_view shared_id, int64_t expires,
    std::function<ngx_int_t(twostep::Claim)> then)
{
    ngx_http_twostep_zone_state state(r);

    twostep::Claim here = twostep::claim_transaction(state, id, ngx_time(),
                                                     expires);
    if (here != twostep::Claim::fresh) {
        return then(here);
    }

    return ngx_http_twostep_shared_claim_transaction(r, shared_id, expires,
                                                     std::move(then));
}


ngx_int_t
ngx_http_twostep_shared_claim_step(ngx_http_request_t *r,
    std::string_view user, int64_t step, int64_t period,
    std::function<ngx_int_t(twostep::Claim)> then)
{
    if (!ngx_http_twostep_redis_on()) {
        return then(twostep::Claim::fresh);
    }

    // Kept until the step can no longer verify, as in guard.cpp.
    int64_t expires = std::max<int64_t>((step + 2) * period + 1,
                                        ngx_time() + 1);

    return ngx_http_twostep_redis_claim(r,
        twostep::redis::claim_totp_step(ngx_http_twostep_redis_prefix,
                                        user, step, expires),
        std::move(then));
}


// A command nobody waits for: what it would have changed only expires
// later if Redis does not take it.
static void
ngx_http_twostep_redis_send(const twostep::redis::Argv &argv)
{
    if (!ngx_http_twostep_redis_conn_open()) {
        return;
    }

    ngx_http_twostep_redis_conn_send(argv, [](const redisReply *) {});
}


void
ngx_http_twostep_shared_success(ngx_http_twostep_srv_conf_t *scf,
    std::string_view user, std::string_view address)
{
    if (!ngx_http_twostep_redis_on()) {
        return;
    }

    // Counts left in Redis only expire later: fail closed.
    ngx_http_twostep_redis_send(twostep::redis::record_success(
        ngx_http_twostep_redis_counters(scf, user, address), ngx_time()));
}


// -- self-hosted push and call: the transaction and the limits ---------------
//
// Without twostep_redis the zone holds both, as before. With it the
// transaction lives in Redis alone: the phone's answer (the approval page,
// the ntfy Deny button, Twilio's call-back) may reach any host and the
// browser may poll any other, so no host's zone can tell. The limits are
// counted in both; the stricter wins, as for the lockout.
//
// A decided answer carries a MAC by the server's cookie keys
// (twostep::approval_record()): Redis write access alone approves nothing.

static const twostep::KeyRing &
ngx_http_twostep_redis_keys(ngx_http_request_t *r)
{
    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(
                   ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));

    return *scf->keys;
}


// An answer in Redis this server did not write (a bare number, a wrong
// MAC): no answer at all, logged once per transaction (the browser polls).
static void
ngx_http_twostep_redis_forged(ngx_http_request_t *r, const std::string &txid)
{
    static std::string  last;

    if (last == txid) {
        return;
    }

    last = txid;
    ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                  "twostep: redis holds an answer to a push or call that "
                  "this server did not write (no valid MAC); refused: "
                  "who else can write to redis?");
}

ngx_int_t
ngx_http_twostep_open_approval(ngx_http_request_t *r, std::string_view txid,
    time_t expires, std::function<ngx_int_t(bool)> then)
{
    time_t  now = ngx_time();

    if (!ngx_http_twostep_redis_on()) {
        ngx_http_twostep_zone_state state(r);
        return then(twostep::open_approval(state, txid, now, expires));
    }

    if (expires <= now) {
        return then(false);
    }

    return ngx_http_twostep_redis_call(r,
        twostep::redis::open_approval(ngx_http_twostep_redis_prefix,
                                      txid, expires - now),
        [then](std::optional<int64_t> opened) {
            return then(opened && *opened == 1);
        });
}


ngx_int_t
ngx_http_twostep_decide_approval(ngx_http_request_t *r,
    std::string_view txid, twostep::Approval to, time_t expires,
    std::function<ngx_int_t(twostep::Decided)> then)
{
    time_t  now = ngx_time();

    if (!ngx_http_twostep_redis_on()) {
        ngx_http_twostep_zone_state state(r);
        return then(twostep::decide_approval(state, txid, to, now, expires));
    }

    if (expires <= now || to == twostep::Approval::missing
        || to == twostep::Approval::waiting)
    {
        return then(twostep::Decided::missing);
    }

    return ngx_http_twostep_redis_call(r,
        twostep::redis::decide_approval(ngx_http_twostep_redis_prefix,
            txid, twostep::approval_record(ngx_http_twostep_redis_keys(r),
                                           txid, to),
            expires),
        [then](std::optional<int64_t> decided) {
            if (!decided || *decided < 0 || *decided > 2) {
                return then(twostep::Decided::unavailable);
            }
            return then(*decided == 1 ? twostep::Decided::ok
                        : *decided == 2 ? twostep::Decided::already
                                        : twostep::Decided::missing);
        });
}


void
ngx_http_twostep_close_approval(ngx_http_request_t *r, std::string_view txid,
    time_t expires)
{
    time_t  now = ngx_time();

    if (!ngx_http_twostep_redis_on()) {
        ngx_http_twostep_zone_state state(r);
        twostep::decide_approval(state, txid, twostep::Approval::denied, now,
                                 expires);
        return;
    }

    if (expires > now) {
        ngx_http_twostep_redis_send(twostep::redis::decide_approval(
            ngx_http_twostep_redis_prefix, txid,
            twostep::approval_record(ngx_http_twostep_redis_keys(r), txid,
                                     twostep::Approval::denied),
            expires));
    }
}


ngx_int_t
ngx_http_twostep_read_approval(ngx_http_request_t *r, std::string_view txid,
    std::function<ngx_int_t(std::optional<twostep::Approval>)> then)
{
    if (!ngx_http_twostep_redis_on()) {
        ngx_http_twostep_zone_state state(r);
        return then(twostep::approval_state(state, txid, ngx_time()));
    }

    std::string id(txid);

    return ngx_http_twostep_redis_call(r,
        twostep::redis::approval_state(ngx_http_twostep_redis_prefix,
                                       txid),
        [then](std::optional<int64_t> value) {
            if (!value || *value < 0 || *value > 1) {
                return then(std::nullopt);
            }
            return then(twostep::approval_of(*value));
        },
        [r, then, id](std::string_view record) {
            auto a = twostep::approval_from_record(
                         ngx_http_twostep_redis_keys(r), id, record);
            if (!a) {
                ngx_http_twostep_redis_forged(r, id);
            }
            return then(a);
        });
}


// A transaction's slot in the zone (guard.h), 0 for none.
static int64_t
ngx_http_twostep_slot_owner(std::string_view txid)
{
    return txid.empty() ? 0 : twostep::out_of_band_owner(txid);
}


ngx_int_t
ngx_http_twostep_start_out_of_band(ngx_http_request_t *r,
    std::string_view user, std::string_view replacing,
    std::function<ngx_int_t(twostep::Start, int64_t)> then,
    std::string_view txid)
{
    time_t                 now = ngx_time();
    twostep::OutOfBandRule rule;
    std::string            name(user);
    int64_t                owner = ngx_http_twostep_slot_owner(txid);

    ngx_http_twostep_zone_state state(r);

    // Only the transaction holding the slot gives way, never one a stale
    // or copied cookie names (one waiting at a time, OWASP ASVS 2.8.x).
    twostep::Start start = twostep::start_out_of_band(state, rule, user,
                               now, owner,
                               ngx_http_twostep_slot_owner(replacing));

    if (start != twostep::Start::ok || !ngx_http_twostep_redis_on()) {
        return then(start, start == twostep::Start::too_many
                           ? twostep::out_of_band_retry(state, rule, user,
                                                        now)
                           : 0);
    }

    return ngx_http_twostep_redis_call(r,
        twostep::redis::start_out_of_band(ngx_http_twostep_redis_prefix,
                                          user, rule.max_starts, rule.window,
                                          rule.pending_for, replacing,
                                          txid),
        [r, then, name, rule, owner](std::optional<int64_t> shared) {
            if (shared && *shared == 0) {
                return then(twostep::Start::ok, 0);
            }

            // Refused by another host's request: this host's stops
            // waiting (its count stays, the stricter).
            time_t now = ngx_time();
            ngx_http_twostep_zone_state here(r);
            twostep::end_out_of_band(here, name, now, owner);

            if (!shared || *shared < -1) {
                return then(twostep::Start::unavailable, 0);
            }

            if (*shared == -1) {
                return then(twostep::Start::busy, 0);
            }

            return then(twostep::Start::too_many,
                        std::max<int64_t>(*shared,
                            twostep::out_of_band_retry(here, rule, name,
                                                       now)));
        });
}


void
ngx_http_twostep_end_out_of_band(ngx_http_request_t *r,
    std::string_view user, std::string_view txid)
{
    ngx_http_twostep_zone_state state(r);
    twostep::end_out_of_band(state, user, ngx_time(),
                             ngx_http_twostep_slot_owner(txid));

    if (ngx_http_twostep_redis_on()) {
        ngx_http_twostep_redis_send(twostep::redis::end_out_of_band(
            ngx_http_twostep_redis_prefix, user, txid));
    }
}


void
ngx_http_twostep_bind_out_of_band(ngx_http_request_t *r,
    std::string_view user, std::string_view txid)
{
    ngx_http_twostep_zone_state state(r);
    twostep::bind_out_of_band(state, user, ngx_time(),
                              ngx_http_twostep_slot_owner(txid));

    if (ngx_http_twostep_redis_on()) {
        ngx_http_twostep_redis_send(twostep::redis::bind_out_of_band(
            ngx_http_twostep_redis_prefix, user, txid));
    }
}


// To every other host (published; kept and sent again while Redis is
// unavailable).
static void
ngx_http_twostep_redis_publish(ngx_http_request_t *r,
    twostep::redis::Revocation rev)
{
    if (!ngx_http_twostep_redis_on() || rev.expires <= ngx_time()) {
        return;
    }

    auto &retries = *ngx_http_twostep_redis_retries;

    if (retries.size() < NGX_HTTP_TWOSTEP_REDIS_MAX_RETRIES) {
        retries.push_back(std::move(rev));

    } else {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "twostep: too many revocations wait for redis; this "
                      "one holds on this host only");
    }

    // Sent now if Redis is there, else once it is back.
    ngx_http_twostep_redis_send_retries();
}


bool
ngx_http_twostep_revoke_session(ngx_http_request_t *r,
    const twostep::Session &session)
{
    // This host first, whatever Redis does: the session ends here now.
    ngx_http_twostep_zone_state state(r);
    bool ok = twostep::revoke_session(state, session, ngx_time());

    ngx_http_twostep_redis_publish(r,
        {session.sid, session.expires, session.auth_time, ""});

    return ok;
}


bool
ngx_http_twostep_revoke_user_sessions(ngx_http_request_t *r,
    std::string_view user, time_t keep_until)
{
    time_t  now = ngx_time();

    ngx_http_twostep_zone_state state(r);
    bool ok = twostep::revoke_user_sessions(state, user, now, keep_until);

    ngx_http_twostep_redis_publish(r, {"", keep_until, now,
                                       std::string(user)});

    return ok;
}

