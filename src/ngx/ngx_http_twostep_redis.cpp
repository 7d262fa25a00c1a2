// twostep_redis: the state several nginx hosts share, in Redis, spoken over
// nginx connections on the event loop (hiredis only formats commands and
// parses replies). Each worker keeps two connections: one for commands,
// pipelined, and one subscribed to revocations, which it copies into the
// local zone so a signed-in request never waits on the network. rediss://
// runs both over nginx's own TLS (ngx_ssl_*), the server's certificate
// checked against twostep_redis_trusted_certificate and the host's name.

#include "ngx_http_twostep.h"

#include <hiredis/hiredis.h>
#include <openssl/crypto.h>

#include <arpa/inet.h>

#include <deque>

#include "core/approval.h"
#include "core/shared_redis.h"


// Replies are small (an integer, a list of revocations); more than this
// waiting unparsed is a server speaking something else.
#define NGX_HTTP_TWOSTEP_REDIS_MAX_BUFFERED  (1024 * 1024)
#define NGX_HTTP_TWOSTEP_REDIS_MAX_BACKOFF   3000
// The subscribed connection is idle by nature: a PING this often tells a
// dead one (a silent network, a stuck Redis) from a quiet channel.
#define NGX_HTTP_TWOSTEP_REDIS_KEEPALIVE     5000
// Revocations kept for Redis while it cannot take them.
#define NGX_HTTP_TWOSTEP_REDIS_MAX_RETRIES   4096
// Intermediate CAs allowed between the server's certificate and a trusted
// one (nginx's proxy_ssl_verify_depth is 1: a private CA; managed Redis
// services chain through one or two intermediates).
#define NGX_HTTP_TWOSTEP_REDIS_VERIFY_DEPTH  4


struct ngx_http_twostep_redis_conf_s {
    std::string               url;        // as configured, for messages
    twostep::redis::Target    target;
    ngx_addr_t               *addr = nullptr;
    std::string               password;   // read by the master; never logged
    ngx_str_t                 password_file = ngx_null_string;
    ngx_msec_t                timeout = 1000;
    std::string               prefix = "twostep:";
    // rediss://: the CAs (default: the system's) and a client certificate.
    ngx_str_t                 trusted_certificate = ngx_null_string;
    ngx_str_t                 certificate = ngx_null_string;
    ngx_str_t                 certificate_key = ngx_null_string;
#if (NGX_OPENSSL)
    ngx_ssl_t                *ssl = nullptr;
#endif

    ~ngx_http_twostep_redis_conf_s()
    {
        OPENSSL_cleanse(password.data(), password.size());
    }
};


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

struct ngx_http_twostep_redis_command_t {
    std::shared_ptr<ngx_http_twostep_redis_waiter_t>  waiter;
    // Commands of the worker itself (handshake, revocations): nullptr
    // reply when the link failed.
    std::function<void(const redisReply *)>           internal;
    ngx_msec_t                                        deadline = 0;
};

struct ngx_http_twostep_redis_link_t {
    const char                                   *name;
    bool                                          subscriber;
    ngx_peer_connection_t                         peer;
    ngx_connection_t                             *c = nullptr;
    bool                                          connected = false;
    bool                                          ready = false;
    redisReader                                  *reader = nullptr;
    std::string                                   out;
    std::deque<ngx_http_twostep_redis_command_t>  waiting;
    ngx_event_t                                   deadline;
    ngx_event_t                                   reconnect;
    ngx_event_t                                   keepalive;
    ngx_msec_t                                    backoff = 0;
};


static ngx_http_twostep_redis_conf_t  *ngx_http_twostep_redis_conf;
static ngx_http_twostep_main_conf_t   *ngx_http_twostep_redis_mcf;
static ngx_log_t                      *ngx_http_twostep_redis_log;
// For the connections: nginx's own connect()/recv() errors would repeat at
// every reconnect; ngx_http_twostep_redis_error() says it once a second.
static ngx_log_t                       ngx_http_twostep_redis_quiet;
static ngx_http_twostep_redis_link_t  *ngx_http_twostep_redis_commands;
static ngx_http_twostep_redis_link_t  *ngx_http_twostep_redis_events;
// Revocations written locally that Redis has not taken yet.
static std::deque<twostep::redis::Revocation>
                                      *ngx_http_twostep_redis_retries;
static bool                            ngx_http_twostep_redis_catch_up;
static time_t                          ngx_http_twostep_redis_logged;


static void ngx_http_twostep_redis_connect(ngx_http_twostep_redis_link_t *l);
static void ngx_http_twostep_redis_fail(ngx_http_twostep_redis_link_t *l,
    const char *why);
static void ngx_http_twostep_redis_flush(ngx_http_twostep_redis_link_t *l);
static void ngx_http_twostep_redis_read(ngx_event_t *rev) noexcept;
static void ngx_http_twostep_redis_write(ngx_event_t *wev) noexcept;
static void ngx_http_twostep_redis_send_retries();
static void ngx_http_twostep_redis_send_catch_up();


// At most one error line a second per worker: a Redis that is down must not
// flood the log. The password is never part of a message.
static void
ngx_http_twostep_redis_error(const char *what, const char *detail)
{
    if (ngx_http_twostep_redis_logged == ngx_time()) {
        return;
    }

    ngx_http_twostep_redis_logged = ngx_time();

    ngx_log_error(NGX_LOG_ERR, ngx_http_twostep_redis_log, 0,
                  "twostep: redis %s: %s%s%s", what,
                  ngx_http_twostep_redis_conf->url.c_str(),
                  detail ? ": " : "", detail ? detail : "");
}


// -- configuration ---------------------------------------------------------

static ngx_http_twostep_redis_conf_t *
ngx_http_twostep_redis_conf_of(ngx_conf_t *cf,
    ngx_http_twostep_main_conf_t *mcf)
{
    if (mcf->redis == NULL) {
        mcf->redis = ngx_http_twostep_pool_new<ngx_http_twostep_redis_conf_t>(
                         cf->pool);
    }

    return mcf->redis;
}


static char *
ngx_http_twostep_redis_address(ngx_conf_t *cf,
    ngx_http_twostep_redis_conf_t *rc, ngx_str_t *value)
{
    std::string  error;

    rc->url.assign(reinterpret_cast<char *>(value->data), value->len);

    auto target = twostep::redis::parse_target(rc->url, error);
    if (!target) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "twostep_redis \"%V\": %s", value, error.c_str());
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    rc->target = *target;

    ngx_url_t  u;
    ngx_memzero(&u, sizeof(ngx_url_t));

    std::string address = target->unix_socket ? "unix:" + target->address
                                              : target->address;
    u.url.len = address.size();
    u.url.data = static_cast<u_char *>(ngx_pnalloc(cf->pool, u.url.len));
    if (u.url.data == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }
    ngx_memcpy(u.url.data, address.data(), u.url.len);
    u.default_port = 6379;

    // Resolved once here, as nginx resolves upstream servers' names.
    if (ngx_parse_url(cf->pool, &u) != NGX_OK || u.naddrs == 0) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "twostep_redis \"%V\": %s",
                           value, u.err ? u.err : "host not found");
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    rc->addr = &u.addrs[0];

    return NGX_CONF_OK;
}


static char *
ngx_http_twostep_redis_password(ngx_conf_t *cf,
    ngx_http_twostep_redis_conf_t *rc, ngx_str_t *value)
{
    rc->password_file = *value;

    if (ngx_conf_full_name(cf->cycle, &rc->password_file, 1) != NGX_OK) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    std::string content;
    std::string error;

    ngx_fd_t fd = ngx_open_file(rc->password_file.data, NGX_FILE_RDONLY,
                                NGX_FILE_OPEN, 0);
    if (fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           "twostep_redis_password_file \"%V\": cannot open",
                           &rc->password_file);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    u_char buf[1024];
    ssize_t n;

    while ((n = read(fd, buf, sizeof(buf))) > 0 && content.size() < 4096) {
        content.append(reinterpret_cast<char *>(buf), n);
    }

    OPENSSL_cleanse(buf, sizeof(buf));
    ngx_close_file(fd);

    if (n < 0) {
        error = "cannot be read";

    } else if (content.size() >= 4096) {
        error = "is too long for a password";

    } else {
        rc->password = twostep::redis::password_from_file(content, error);
    }

    OPENSSL_cleanse(content.data(), content.size());

    if (!error.empty()) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "twostep_redis_password_file \"%V\": %s",
                           &rc->password_file, error.c_str());
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
}


// A file named by twostep_redis_trusted_certificate, _certificate or
// _certificate_key: relative to the configuration's directory, as nginx's.
static char *
ngx_http_twostep_redis_file(ngx_conf_t *cf, ngx_str_t *field,
    ngx_str_t *value)
{
    if (field->len) {
        return const_cast<char *>("is duplicate");
    }

    *field = *value;

    if (ngx_conf_full_name(cf->cycle, field, 1) != NGX_OK) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
}


// twostep_redis, twostep_redis_password_file, twostep_redis_timeout,
// twostep_redis_prefix and the TLS files (http level).
char *
ngx_http_twostep_redis(ngx_conf_t *cf, ngx_command_t *cmd, void *conf)
try {
    auto mcf = static_cast<ngx_http_twostep_main_conf_t *>(conf);
    auto rc = ngx_http_twostep_redis_conf_of(cf, mcf);
    if (rc == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);
    std::string_view name = ngx_http_twostep_sv(cmd->name);

    if (name == "twostep_redis") {
        if (!rc->url.empty()) {
            return const_cast<char *>("is duplicate");
        }
        return ngx_http_twostep_redis_address(cf, rc, &value[1]);
    }

    if (name == "twostep_redis_password_file") {
        if (rc->password_file.len) {
            return const_cast<char *>("is duplicate");
        }
        return ngx_http_twostep_redis_password(cf, rc, &value[1]);
    }

    if (name == "twostep_redis_trusted_certificate") {
        return ngx_http_twostep_redis_file(cf, &rc->trusted_certificate,
                                           &value[1]);
    }

    if (name == "twostep_redis_certificate") {
        return ngx_http_twostep_redis_file(cf, &rc->certificate, &value[1]);
    }

    if (name == "twostep_redis_certificate_key") {
        return ngx_http_twostep_redis_file(cf, &rc->certificate_key,
                                           &value[1]);
    }

    if (name == "twostep_redis_timeout") {
        ngx_msec_t ms = ngx_parse_time(&value[1], 0);
        if (ms == static_cast<ngx_msec_t>(NGX_ERROR) || ms == 0) {
            return const_cast<char *>("is not a valid time");
        }
        rc->timeout = ms;
        return NGX_CONF_OK;
    }

    // twostep_redis_prefix: printable, no spaces (it starts every key
    // and the channel's name).
    for (size_t i = 0; i < value[1].len; i++) {
        if (value[1].data[i] <= ' ' || value[1].data[i] >= 0x7f) {
            return const_cast<char *>("must be printable, without spaces");
        }
    }
    rc->prefix.assign(reinterpret_cast<char *>(value[1].data), value[1].len);
    return NGX_CONF_OK;

} catch (...) {
    return static_cast<char *>(NGX_CONF_ERROR);
}


// rediss://: one client context for the connections of every worker, made
// once here as nginx makes proxy_ssl's. The server's certificate is checked
// after the handshake (ngx_http_twostep_redis_handshaked), as nginx's
// proxy_ssl_verify does, so that a refusal is logged with its reason.
static ngx_int_t
ngx_http_twostep_redis_ssl(ngx_conf_t *cf, ngx_http_twostep_redis_conf_t *rc)
{
    bool files = rc->trusted_certificate.len || rc->certificate.len
                 || rc->certificate_key.len;

    if (!rc->target.tls) {
        if (files) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "twostep_redis \"%s\": the TLS certificates "
                               "need a rediss:// address", rc->url.c_str());
            return NGX_ERROR;
        }
        return NGX_OK;
    }

    if ((rc->certificate.len == 0) != (rc->certificate_key.len == 0)) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "twostep_redis_certificate and "
                           "twostep_redis_certificate_key go together");
        return NGX_ERROR;
    }

#if (NGX_OPENSSL)
    rc->ssl = static_cast<ngx_ssl_t *>(ngx_pcalloc(cf->pool,
                                                   sizeof(ngx_ssl_t)));
    if (rc->ssl == NULL) {
        return NGX_ERROR;
    }

    rc->ssl->log = cf->log;

    // TLS 1.2 and 1.3 only (what Redis 6 and later speak).
    if (ngx_ssl_create(rc->ssl, NGX_SSL_TLSv1_2 | NGX_SSL_TLSv1_3, NULL)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    ngx_pool_cleanup_t *cln = ngx_pool_cleanup_add(cf->pool, 0);
    if (cln == NULL) {
        ngx_ssl_cleanup_ctx(rc->ssl);
        return NGX_ERROR;
    }

    cln->handler = ngx_ssl_cleanup_ctx;
    cln->data = rc->ssl;

    // Commands are appended to the buffer while a write waits to be
    // retried: OpenSSL must accept the retry from where the bytes are now.
    SSL_CTX_set_mode(rc->ssl->ctx, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);

    if (rc->certificate.len
        && ngx_ssl_certificate(cf, rc->ssl, &rc->certificate,
                               &rc->certificate_key, NULL)
           != NGX_OK)
    {
        return NGX_ERROR;  // nginx named the file and the problem
    }

    if (ngx_ssl_trusted_certificate(cf, rc->ssl, &rc->trusted_certificate,
                                    NGX_HTTP_TWOSTEP_REDIS_VERIFY_DEPTH)
        != NGX_OK)
    {
        return NGX_ERROR;
    }

    if (rc->trusted_certificate.len == 0
        && SSL_CTX_set_default_verify_paths(rc->ssl->ctx) != 1)
    {
        ngx_ssl_error(NGX_LOG_EMERG, cf->log, 0,
                      const_cast<char *>("twostep_redis \"%s\": the "
                          "system's CA certificates cannot be read; name "
                          "them with twostep_redis_trusted_certificate"),
                      rc->url.c_str());
        return NGX_ERROR;
    }

    return NGX_OK;
#else
    ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                       "twostep_redis \"%s\": rediss:// needs nginx built "
                       "with OpenSSL", rc->url.c_str());
    return NGX_ERROR;
#endif
}


ngx_int_t
ngx_http_twostep_redis_check(ngx_conf_t *cf,
    ngx_http_twostep_main_conf_t *mcf)
{
    if (mcf->redis == NULL) {
        return NGX_OK;
    }

    if (mcf->redis->url.empty()) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "twostep_redis_* is set but twostep_redis is not");
        return NGX_ERROR;
    }

    return ngx_http_twostep_redis_ssl(cf, mcf->redis);
}


// -- connections ------------------------------------------------------------

static void
ngx_http_twostep_redis_arm(ngx_http_twostep_redis_link_t *l)
{
    if (l->waiting.empty()) {
        if (l->deadline.timer_set) {
            ngx_del_timer(&l->deadline);
        }
        return;
    }

    ngx_msec_t now = ngx_current_msec;
    ngx_msec_t due = l->waiting.front().deadline;
    ngx_msec_t left = static_cast<ngx_msec_int_t>(due - now) > 0
                      ? due - now : 1;

    ngx_add_timer(&l->deadline, left);
}


// Queues a command; it is written as soon as the connection takes it.
static bool
ngx_http_twostep_redis_queue(ngx_http_twostep_redis_link_t *l,
    const twostep::redis::Argv &argv, ngx_http_twostep_redis_command_t cmd)
{
    std::vector<const char *>  args;
    std::vector<size_t>        lens;
    char                      *formatted = nullptr;

    for (const auto &a : argv) {
        args.push_back(a.data());
        lens.push_back(a.size());
    }

    int len = redisFormatCommandArgv(&formatted, args.size(), args.data(),
                                     lens.data());
    if (len < 0 || formatted == nullptr) {
        return false;
    }

    try {
        l->out.append(formatted, len);
        OPENSSL_cleanse(formatted, len);  // AUTH carries the password
        free(formatted);

    } catch (...) {
        free(formatted);
        throw;
    }

    cmd.deadline = ngx_current_msec + ngx_http_twostep_redis_conf->timeout;
    l->waiting.push_back(std::move(cmd));

    if (l->waiting.size() == 1) {
        ngx_http_twostep_redis_arm(l);
    }

    if (l->connected) {
        ngx_http_twostep_redis_flush(l);
    }

    return true;
}


static void
ngx_http_twostep_redis_answer(ngx_http_twostep_redis_command_t &cmd,
    const redisReply *reply)
{
    if (cmd.internal) {
        cmd.internal(reply);
        return;
    }

    if (!cmd.waiter || cmd.waiter->r == nullptr) {
        return;  // the request ended meanwhile
    }

    ngx_http_request_t *r = cmd.waiter->r;
    ngx_connection_t *c = r->connection;
    ngx_int_t rc;

    std::optional<int64_t> value;
    bool text = false;
    if (reply && reply->type == REDIS_REPLY_INTEGER) {
        value = reply->integer;

    } else if (reply && reply->type == REDIS_REPLY_STRING
               && cmd.waiter->text)
    {
        text = true;

    } else if (reply) {
        ngx_http_twostep_redis_error("answered something unexpected",
            reply->type == REDIS_REPLY_ERROR ? reply->str : nullptr);
    }

    auto finish = std::move(cmd.waiter->finish);
    auto finish_text = std::move(cmd.waiter->text);
    cmd.waiter->r = nullptr;

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


static void
ngx_http_twostep_redis_close(ngx_http_twostep_redis_link_t *l)
{
    if (l->c) {
#if (NGX_OPENSSL)
        if (l->c->ssl) {
            // Redis needs no close_notify; waiting for one could leave the
            // SSL object behind the closed socket.
            l->c->ssl->no_wait_shutdown = 1;
            l->c->ssl->no_send_shutdown = 1;
            (void) ngx_ssl_shutdown(l->c);
        }
#endif
        ngx_pool_t *pool = l->c->pool;
        ngx_close_connection(l->c);
        l->c = nullptr;
        if (pool) {
            ngx_destroy_pool(pool);
        }
    }

    if (l->reader) {
        redisReaderFree(l->reader);
        l->reader = nullptr;
    }

    for (ngx_event_t *ev : {&l->deadline, &l->keepalive}) {
        if (ev->timer_set) {
            ngx_del_timer(ev);
        }
    }

    l->connected = false;
    l->ready = false;
    OPENSSL_cleanse(l->out.data(), l->out.size());
    l->out.clear();
}


// The link is unusable: every command waiting on it fails (its request gets
// the unavailable page), and it reconnects after a growing pause.
static void
ngx_http_twostep_redis_fail(ngx_http_twostep_redis_link_t *l,
    const char *why)
{
    ngx_http_twostep_redis_error(why, l->name);
    ngx_http_twostep_redis_close(l);

    std::deque<ngx_http_twostep_redis_command_t> failed;
    failed.swap(l->waiting);

    for (auto &cmd : failed) {
        ngx_http_twostep_redis_answer(cmd, nullptr);
    }

    if (ngx_exiting || ngx_terminate || ngx_quit) {
        return;
    }

    l->backoff = l->backoff ? ngx_min(l->backoff * 2,
                                      NGX_HTTP_TWOSTEP_REDIS_MAX_BACKOFF)
                            : 100;
    if (!l->reconnect.timer_set) {
        ngx_add_timer(&l->reconnect, l->backoff);
    }
}


static void
ngx_http_twostep_redis_flush(ngx_http_twostep_redis_link_t *l)
{
    while (!l->out.empty()) {
        ssize_t n = l->c->send(l->c, reinterpret_cast<u_char *>(
                                   l->out.data()), l->out.size());
        if (n == NGX_AGAIN) {
            break;
        }

        if (n == NGX_ERROR || n <= 0) {
            ngx_http_twostep_redis_fail(l, "connection failed");
            return;
        }

        OPENSSL_cleanse(l->out.data(), n);
        l->out.erase(0, n);
    }

    if (ngx_handle_write_event(l->c->write, 0) != NGX_OK) {
        ngx_http_twostep_redis_fail(l, "connection failed");
    }
}


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


// A message on the revocations channel: ["message", channel, payload].
static void
ngx_http_twostep_redis_event(const redisReply *reply)
{
    if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 3
        || reply->element[2]->type != REDIS_REPLY_STRING)
    {
        return;  // a pong, or nothing of ours
    }

    auto rev = twostep::redis::parse_revocation_message(
        std::string_view(reply->element[2]->str, reply->element[2]->len));
    if (rev) {
        ngx_http_twostep_redis_apply(*rev);
    }
}


static bool
ngx_http_twostep_redis_is_message(const redisReply *reply)
{
    return reply->type == REDIS_REPLY_ARRAY && reply->elements == 3
           && reply->element[0]->type == REDIS_REPLY_STRING
           && std::string_view(reply->element[0]->str,
                               reply->element[0]->len) == "message";
}


// A parsed reply: (subscribed) a message, or the oldest command's.
static bool
ngx_http_twostep_redis_reply(ngx_http_twostep_redis_link_t *l,
    redisReply *reply)
{
    if (l->subscriber && l->ready
        && ngx_http_twostep_redis_is_message(reply))
    {
        ngx_http_twostep_redis_event(reply);
        return true;
    }

    if (l->waiting.empty()) {
        return false;  // an answer nobody asked for
    }

    ngx_http_twostep_redis_command_t cmd = std::move(l->waiting.front());
    l->waiting.pop_front();
    ngx_http_twostep_redis_arm(l);

    ngx_http_twostep_redis_answer(cmd, reply);
    return true;
}


static void
ngx_http_twostep_redis_read(ngx_event_t *rev) noexcept
{
    auto c = static_cast<ngx_connection_t *>(rev->data);
    auto l = static_cast<ngx_http_twostep_redis_link_t *>(c->data);

    try {
        u_char buf[4096];

        for (;;) {
            ssize_t n = c->recv(c, buf, sizeof(buf));

            if (n == NGX_AGAIN) {
                break;
            }

            if (n == 0 || n == NGX_ERROR) {
                ngx_http_twostep_redis_fail(l, "closed the connection");
                return;
            }

            if (redisReaderFeed(l->reader, reinterpret_cast<char *>(buf), n)
                != REDIS_OK
                || l->reader->len - l->reader->pos
                   > NGX_HTTP_TWOSTEP_REDIS_MAX_BUFFERED)
            {
                ngx_http_twostep_redis_fail(l, "answered something unreadable");
                return;
            }

            for (;;) {
                void *reply = nullptr;

                if (redisReaderGetReply(l->reader, &reply) != REDIS_OK) {
                    ngx_http_twostep_redis_fail(l,
                        "answered something unreadable");
                    return;
                }

                if (reply == nullptr) {
                    break;
                }

                std::unique_ptr<redisReply, void (*)(void *)> owned(
                    static_cast<redisReply *>(reply), freeReplyObject);

                if (!ngx_http_twostep_redis_reply(l, owned.get())) {
                    ngx_http_twostep_redis_fail(l,
                        "answered something unexpected");
                    return;
                }

                if (l->c == nullptr) {
                    return;  // a handshake reply failed the link
                }
            }
        }

        if (ngx_handle_read_event(c->read, 0) != NGX_OK) {
            ngx_http_twostep_redis_fail(l, "connection failed");
        }

    } catch (...) {
        ngx_http_twostep_redis_fail(l, "failed (out of memory)");
    }
}


#if (NGX_OPENSSL)

// The TLS handshake ended (nginx's handshake handler, or at once): the
// link is usable only with a certificate chained to a trusted CA that names
// the host of twostep_redis (fail closed on anything else).
static void
ngx_http_twostep_redis_handshaked(ngx_connection_t *c) noexcept
{
    auto l = static_cast<ngx_http_twostep_redis_link_t *>(c->data);

    try {
        if (!c->ssl->handshaked) {
            ngx_http_twostep_redis_fail(l, "failed the TLS handshake");
            return;
        }

        long rv = SSL_get_verify_result(c->ssl->connection);
        X509 *cert = SSL_get_peer_certificate(c->ssl->connection);
        bool sent = cert != NULL;
        X509_free(cert);

        if (rv != X509_V_OK || !sent) {
            std::string why = "sent a certificate that is not trusted (";
            why += sent ? X509_verify_cert_error_string(rv)
                        : "no certificate";
            why += ")";
            ngx_http_twostep_redis_fail(l, why.c_str());
            return;
        }

        // nginx's handshake handler stood in for these.
        c->read->handler = ngx_http_twostep_redis_read;
        c->write->handler = ngx_http_twostep_redis_write;
        l->connected = true;

        ngx_http_twostep_redis_flush(l);

    } catch (...) {
        ngx_http_twostep_redis_fail(l, "failed (out of memory)");
    }
}


static void
ngx_http_twostep_redis_tls(ngx_http_twostep_redis_link_t *l)
{
    ngx_http_twostep_redis_conf_t *rc = ngx_http_twostep_redis_conf;
    ngx_connection_t *c = l->c;

    // A peer connection has no pool; nginx's TLS state lives in one (as
    // ngx_http_upstream_connect() gives its connections), freed at close.
    c->pool = ngx_create_pool(256, c->log);
    if (c->pool == NULL
        || ngx_ssl_create_connection(rc->ssl, c, NGX_SSL_CLIENT) != NGX_OK)
    {
        ngx_http_twostep_redis_fail(l, "failed to start TLS");
        return;
    }

    // The certificate must name the host as twostep_redis writes it: a
    // DNS name (also sent as SNI) or an IP address.
    const char *host = rc->target.host.c_str();
    X509_VERIFY_PARAM *param = SSL_get0_param(c->ssl->connection);
    unsigned char ip[16];
    bool address = inet_pton(AF_INET, host, ip) == 1
                   || inet_pton(AF_INET6, host, ip) == 1;

    int ok = address
        ? X509_VERIFY_PARAM_set1_ip_asc(param, host)
        : X509_VERIFY_PARAM_set1_host(param, host, 0)
          && SSL_set_tlsext_host_name(c->ssl->connection,
                                      const_cast<char *>(host));
    if (ok != 1) {
        ngx_http_twostep_redis_fail(l, "failed to start TLS");
        return;
    }

    ngx_int_t rv = ngx_ssl_handshake(c);

    if (rv == NGX_AGAIN) {
        // The deadline of the handshake's first command bounds the wait.
        c->ssl->handler = ngx_http_twostep_redis_handshaked;
        return;
    }

    ngx_http_twostep_redis_handshaked(c);
}

#endif


// TCP (or the unix socket) is connected: TLS first for rediss://, then
// what is queued goes out.
static void
ngx_http_twostep_redis_established(ngx_http_twostep_redis_link_t *l)
{
#if (NGX_OPENSSL)
    if (ngx_http_twostep_redis_conf->ssl) {
        ngx_http_twostep_redis_tls(l);
        return;
    }
#endif

    l->connected = true;
    ngx_http_twostep_redis_flush(l);
}


static void
ngx_http_twostep_redis_write(ngx_event_t *wev) noexcept
{
    auto c = static_cast<ngx_connection_t *>(wev->data);
    auto l = static_cast<ngx_http_twostep_redis_link_t *>(c->data);

    if (!l->connected) {
        int        err = 0;
        socklen_t  len = sizeof(int);

        if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR,
                       reinterpret_cast<char *>(&err), &len) == -1)
        {
            err = ngx_socket_errno;
        }

        if (err) {
            ngx_http_twostep_redis_fail(l, "cannot be reached");
            return;
        }
    }

    try {
        if (!l->connected) {
            ngx_http_twostep_redis_established(l);
            return;
        }

        ngx_http_twostep_redis_flush(l);

    } catch (...) {
        ngx_http_twostep_redis_fail(l, "failed (out of memory)");
    }
}


static void
ngx_http_twostep_redis_expired(ngx_event_t *ev) noexcept
{
    auto l = static_cast<ngx_http_twostep_redis_link_t *>(ev->data);

    // Replies come in order: one overdue means the connection is stuck.
    bool tls = false;
#if (NGX_OPENSSL)
    tls = l->c && l->c->ssl;
#endif

    ngx_http_twostep_redis_fail(l,
        l->connected ? "did not answer in time"
        : tls ? "did not finish the TLS handshake in time"
        : "cannot be reached in time");
}


static void
ngx_http_twostep_redis_ping(ngx_event_t *ev) noexcept
{
    auto l = static_cast<ngx_http_twostep_redis_link_t *>(ev->data);

    if (!l->ready) {
        return;
    }

    try {
        // No answer within the timeout fails the link (then it reconnects
        // and reads the revocations it may have missed).
        ngx_http_twostep_redis_command_t cmd;
        cmd.internal = [](const redisReply *) {};
        ngx_http_twostep_redis_queue(l, {"PING"}, std::move(cmd));

        if (l->c) {
            ngx_add_timer(&l->keepalive, NGX_HTTP_TWOSTEP_REDIS_KEEPALIVE);
        }

    } catch (...) {
        ngx_http_twostep_redis_fail(l, "failed (out of memory)");
    }
}


static void
ngx_http_twostep_redis_retry(ngx_event_t *ev) noexcept
{
    auto l = static_cast<ngx_http_twostep_redis_link_t *>(ev->data);

    try {
        ngx_http_twostep_redis_connect(l);

    } catch (...) {
        ngx_http_twostep_redis_fail(l, "failed (out of memory)");
    }
}


// A handshake step (AUTH, SELECT, SUBSCRIBE): anything but the expected
// answer fails the link, naming what was refused (never the password).
static ngx_http_twostep_redis_command_t
ngx_http_twostep_redis_step(ngx_http_twostep_redis_link_t *l,
    const char *what, bool last)
{
    ngx_http_twostep_redis_command_t  cmd;

    cmd.internal = [l, what, last](const redisReply *reply) {
        if (reply == nullptr) {
            return;
        }

        bool ok = l->subscriber && last
                  ? reply->type == REDIS_REPLY_ARRAY
                  : reply->type == REDIS_REPLY_STATUS;
        if (!ok) {
            ngx_http_twostep_redis_fail(l, what);
            return;
        }

        if (!last) {
            return;
        }

        l->ready = true;
        l->backoff = 0;

        // Back on the channel: fetch what was revoked while away; the
        // command link also sends what this worker could not.
        if (l->subscriber) {
            ngx_http_twostep_redis_catch_up = true;
            ngx_add_timer(&l->keepalive, NGX_HTTP_TWOSTEP_REDIS_KEEPALIVE);
        }
        ngx_http_twostep_redis_send_retries();
        ngx_http_twostep_redis_send_catch_up();
    };

    return cmd;
}


static void
ngx_http_twostep_redis_connect(ngx_http_twostep_redis_link_t *l)
{
    ngx_http_twostep_redis_conf_t *rc = ngx_http_twostep_redis_conf;

    ngx_http_twostep_redis_close(l);

    l->reader = redisReaderCreate();
    if (l->reader == nullptr) {
        ngx_http_twostep_redis_fail(l, "failed (out of memory)");
        return;
    }

    ngx_memzero(&l->peer, sizeof(ngx_peer_connection_t));
    l->peer.sockaddr = rc->addr->sockaddr;
    l->peer.socklen = rc->addr->socklen;
    l->peer.name = &rc->addr->name;
    l->peer.get = ngx_event_get_peer;
    l->peer.log = &ngx_http_twostep_redis_quiet;
    l->peer.log_error = NGX_ERROR_ERR;

    ngx_int_t rv = ngx_event_connect_peer(&l->peer);

    if (rv == NGX_ERROR || rv == NGX_BUSY || rv == NGX_DECLINED) {
        // nginx closed the socket already (and said nothing: quiet log).
        ngx_http_twostep_redis_fail(l, "cannot be reached");
        return;
    }

    l->c = l->peer.connection;
    l->c->data = l;
    l->c->read->handler = ngx_http_twostep_redis_read;
    l->c->write->handler = ngx_http_twostep_redis_write;
    l->c->log = &ngx_http_twostep_redis_quiet;
    l->c->read->log = l->c->log;
    l->c->write->log = l->c->log;
    l->connected = false;

    // The handshake goes first in the pipeline; commands queue behind it.
    std::deque<ngx_http_twostep_redis_command_t> queued;
    queued.swap(l->waiting);

    bool have_auth = !rc->password.empty();
    bool have_db = rc->target.db != 0 && !l->subscriber;

    if (have_auth) {
        ngx_http_twostep_redis_queue(l, {"AUTH", rc->password},
            ngx_http_twostep_redis_step(l, "refused the password",
                                        !have_db && !l->subscriber));
    }

    if (have_db) {
        ngx_http_twostep_redis_queue(l,
            {"SELECT", std::to_string(rc->target.db)},
            ngx_http_twostep_redis_step(l, "refused the database", true));
    }

    if (l->subscriber) {
        ngx_http_twostep_redis_queue(l,
            {"SUBSCRIBE", twostep::redis::revocations_channel(rc->prefix)},
            ngx_http_twostep_redis_step(l, "refused to subscribe", true));
    }

    if (!have_auth && !have_db && !l->subscriber) {
        l->ready = true;
        l->backoff = 0;
    }

    for (auto &cmd : queued) {
        l->waiting.push_back(std::move(cmd));
    }
    ngx_http_twostep_redis_arm(l);

    if (rv == NGX_OK) {
        ngx_http_twostep_redis_established(l);
    }
}


static void
ngx_http_twostep_redis_send_retries()
{
    auto l = ngx_http_twostep_redis_commands;
    auto &retries = *ngx_http_twostep_redis_retries;

    while (l->ready && !retries.empty()) {
        twostep::redis::Revocation rev = retries.front();
        retries.pop_front();

        ngx_http_twostep_redis_command_t cmd;
        cmd.internal = [rev](const redisReply *reply) {
            if (reply == nullptr || reply->type != REDIS_REPLY_INTEGER) {
                if (ngx_http_twostep_redis_retries->size()
                    < NGX_HTTP_TWOSTEP_REDIS_MAX_RETRIES)
                {
                    ngx_http_twostep_redis_retries->push_back(rev);
                }
            }
        };

        ngx_http_twostep_redis_queue(l,
            twostep::redis::revoke(ngx_http_twostep_redis_conf->prefix, rev,
                                   ngx_time()),
            std::move(cmd));
    }
}


static void
ngx_http_twostep_redis_send_catch_up()
{
    auto l = ngx_http_twostep_redis_commands;

    if (!ngx_http_twostep_redis_catch_up || !l->ready) {
        return;
    }

    ngx_http_twostep_redis_catch_up = false;

    ngx_http_twostep_redis_command_t cmd;
    cmd.internal = [](const redisReply *reply) {
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

    ngx_http_twostep_redis_queue(l,
        twostep::redis::revocations_since(ngx_http_twostep_redis_conf->prefix,
                                          ngx_time()),
        std::move(cmd));
}


static ngx_http_twostep_redis_link_t *
ngx_http_twostep_redis_link(ngx_cycle_t *cycle, const char *name,
    bool subscriber)
{
    auto l = ngx_http_twostep_pool_new<ngx_http_twostep_redis_link_t>(
                 cycle->pool);
    if (l == NULL) {
        return NULL;
    }

    l->name = name;
    l->subscriber = subscriber;

    for (ngx_event_t *ev : {&l->deadline, &l->reconnect, &l->keepalive}) {
        ngx_memzero(ev, sizeof(ngx_event_t));
        ev->data = l;
        ev->log = cycle->log;
        // Neither keeps a worker that is shutting down alive.
        ev->cancelable = 1;
    }
    l->deadline.handler = ngx_http_twostep_redis_expired;
    l->reconnect.handler = ngx_http_twostep_redis_retry;
    l->keepalive.handler = ngx_http_twostep_redis_ping;

    return l;
}


ngx_int_t
ngx_http_twostep_redis_init(ngx_cycle_t *cycle,
    ngx_http_twostep_main_conf_t *mcf)
{
    if (mcf->redis == NULL) {
        return NGX_OK;
    }

    ngx_http_twostep_redis_conf = mcf->redis;
    ngx_http_twostep_redis_mcf = mcf;
    ngx_http_twostep_redis_log = cycle->log;
    ngx_http_twostep_redis_quiet = *cycle->log;
    // ALERT: nginx logs some TLS handshake failures as "crit", at every
    // reconnect; ngx_http_twostep_redis_error() names them once a second.
    ngx_http_twostep_redis_quiet.log_level = NGX_LOG_ALERT;

    ngx_http_twostep_redis_retries =
        ngx_http_twostep_pool_new<std::deque<twostep::redis::Revocation>>(
            cycle->pool);
    ngx_http_twostep_redis_commands =
        ngx_http_twostep_redis_link(cycle, "(commands)", false);
    ngx_http_twostep_redis_events =
        ngx_http_twostep_redis_link(cycle, "(revocations)", true);

    if (ngx_http_twostep_redis_retries == NULL
        || ngx_http_twostep_redis_commands == NULL
        || ngx_http_twostep_redis_events == NULL)
    {
        return NGX_ERROR;
    }

    ngx_http_twostep_redis_connect(ngx_http_twostep_redis_commands);
    ngx_http_twostep_redis_connect(ngx_http_twostep_redis_events);

    return NGX_OK;
}


void
ngx_http_twostep_redis_exit(ngx_cycle_t *cycle)
{
    for (auto l : {ngx_http_twostep_redis_commands,
                   ngx_http_twostep_redis_events})
    {
        if (l == NULL) {
            continue;
        }

        ngx_http_twostep_redis_close(l);
        if (l->reconnect.timer_set) {
            ngx_del_timer(&l->reconnect);
        }
        l->waiting.clear();
    }
}


// -- what the flow asks ------------------------------------------------------

bool
ngx_http_twostep_redis_on()
{
    return ngx_http_twostep_redis_commands != NULL;
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
    auto l = ngx_http_twostep_redis_commands;

    if (l->c == nullptr) {
        // Between reconnects: the unavailable page now, not a wait.
        ngx_http_twostep_redis_error("is unavailable", nullptr);
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

    ngx_http_twostep_redis_command_t cmd;
    cmd.waiter = hold->waiter;

    if (!ngx_http_twostep_redis_queue(l, argv, std::move(cmd))) {
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
    return twostep::redis::counters(ngx_http_twostep_redis_conf->prefix, user,
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
                        ngx_http_twostep_redis_conf->prefix, key);

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
        twostep::redis::claim_transaction(ngx_http_twostep_redis_conf->prefix,
                                          txid, expires - ngx_time()),
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
        twostep::redis::claim_totp_step(ngx_http_twostep_redis_conf->prefix,
                                        user, step, expires),
        std::move(then));
}


// A command nobody waits for: what it would have changed only expires
// later if Redis does not take it.
static void
ngx_http_twostep_redis_send(const twostep::redis::Argv &argv)
{
    auto l = ngx_http_twostep_redis_commands;

    if (l == NULL || l->c == nullptr) {
        return;
    }

    ngx_http_twostep_redis_command_t cmd;
    cmd.internal = [](const redisReply *) {};

    ngx_http_twostep_redis_queue(l, argv, std::move(cmd));
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
        twostep::redis::open_approval(ngx_http_twostep_redis_conf->prefix,
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
        twostep::redis::decide_approval(ngx_http_twostep_redis_conf->prefix,
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
            ngx_http_twostep_redis_conf->prefix, txid,
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
        twostep::redis::approval_state(ngx_http_twostep_redis_conf->prefix,
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


ngx_int_t
ngx_http_twostep_start_out_of_band(ngx_http_request_t *r,
    std::string_view user, bool replace,
    std::function<ngx_int_t(twostep::Start, int64_t)> then)
{
    time_t                 now = ngx_time();
    twostep::OutOfBandRule rule;
    std::string            name(user);

    ngx_http_twostep_zone_state state(r);

    if (replace) {
        twostep::end_out_of_band(state, user, now);
    }

    twostep::Start start = twostep::start_out_of_band(state, rule, user,
                                                      now);

    if (start != twostep::Start::ok || !ngx_http_twostep_redis_on()) {
        return then(start, start == twostep::Start::too_many
                           ? twostep::out_of_band_retry(state, rule, user,
                                                        now)
                           : 0);
    }

    return ngx_http_twostep_redis_call(r,
        twostep::redis::start_out_of_band(ngx_http_twostep_redis_conf->prefix,
                                          user, rule.max_starts, rule.window,
                                          rule.pending_for, replace),
        [r, then, name, rule](std::optional<int64_t> shared) {
            if (shared && *shared == 0) {
                return then(twostep::Start::ok, 0);
            }

            // Refused by another host's request: this host's stops
            // waiting (its count stays, the stricter).
            time_t now = ngx_time();
            ngx_http_twostep_zone_state here(r);
            twostep::end_out_of_band(here, name, now);

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
    twostep::end_out_of_band(state, user, ngx_time());

    if (ngx_http_twostep_redis_on()) {
        ngx_http_twostep_redis_send(twostep::redis::end_out_of_band(
            ngx_http_twostep_redis_conf->prefix, user, txid));
    }
}


void
ngx_http_twostep_bind_out_of_band(std::string_view user,
    std::string_view txid)
{
    if (ngx_http_twostep_redis_on()) {
        ngx_http_twostep_redis_send(twostep::redis::bind_out_of_band(
            ngx_http_twostep_redis_conf->prefix, user, txid));
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
