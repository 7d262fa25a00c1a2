// twostep_redis_conn: a worker's connections to Redis on nginx's event loop,
// as ngx_http_twostep_redis.cpp (the commands twostep sends) sees them:
// "send this argv, call me back with the reply or nullptr". What the
// connections do inside (TLS, AUTH/SELECT, pipelining, timeouts,
// reconnecting, the subscription's PING) stays in
// ngx_http_twostep_redis_conn.cpp, which knows no twostep command.

#pragma once

#include "ngx_http_twostep.h"

#include <hiredis/hiredis.h>

#include "core/shared_redis.h"


// A reply of Redis, or nullptr: the connection failed, timed out or closed
// before the reply came (fail closed). The reply is freed after the call.
typedef std::function<void(const redisReply *reply)>
    ngx_http_twostep_redis_reply_pt;


// What the second connection, the subscribed one, reports.
struct ngx_http_twostep_redis_conn_handlers_t {
    std::string    channel;                     // SUBSCRIBEd at each connect
    const char    *subscriber_name = "";        // in its error lines
    // A message published on `channel`.
    void         (*message)(std::string_view payload) = nullptr;
    // A connection finished its handshake (AUTH, SELECT, SUBSCRIBE): the
    // subscribed one may have missed messages while it was away.
    void         (*ready)(bool subscriber) = nullptr;
};


// Opens both connections of this worker (ngx_http_twostep_redis_exit()
// closes them).
ngx_int_t ngx_http_twostep_redis_conn_start(ngx_cycle_t *cycle,
    ngx_http_twostep_redis_conf_t *rc,
    const ngx_http_twostep_redis_conn_handlers_t &handlers);

// twostep_redis_prefix: it starts every key and the channel's name.
std::string_view ngx_http_twostep_redis_conn_prefix(
    const ngx_http_twostep_redis_conf_t *rc);

// The command connection has a socket (connecting or connected): a command
// sent now is answered or fails within twostep_redis_timeout.
bool ngx_http_twostep_redis_conn_open();

// The command connection finished its handshake.
bool ngx_http_twostep_redis_conn_ready();

// Queues `argv` on the command connection, pipelined; `on_reply` runs once,
// with the reply or nullptr. False: the command could not be formatted
// (then `on_reply` never runs).
bool ngx_http_twostep_redis_conn_send(const twostep::redis::Argv &argv,
    ngx_http_twostep_redis_reply_pt on_reply);

// At most one error line a second per worker: a Redis that is down must not
// flood the log. The password is never part of a message.
void ngx_http_twostep_redis_conn_error(const char *what, const char *detail);
