// twostep_redis_conn: the connections to Redis, on nginx's event loop
// (hiredis only formats commands and parses replies). Each worker keeps
// two: one for commands, pipelined, and one subscribed to a channel whose
// messages it hands on. rediss:// runs both over nginx's own TLS
// (ngx_ssl_*), the server's certificate checked against
// twostep_redis_trusted_certificate and the host's name. What is sent and
// what the replies mean is ngx_http_twostep_redis.cpp's business.

#include "ngx_http_twostep_redis_conn.h"
#include "ngx_http_twostep_conf.h"

#include <openssl/crypto.h>

#include <arpa/inet.h>

#include <deque>


// Replies are small (an integer, a short list); more than this
// waiting unparsed is a server speaking something else.
#define NGX_HTTP_TWOSTEP_REDIS_MAX_BUFFERED  (1024 * 1024)
#define NGX_HTTP_TWOSTEP_REDIS_MAX_BACKOFF   3000
// The subscribed connection is idle by nature: a PING this often tells a
// dead one (a silent network, a stuck Redis) from a quiet channel.
#define NGX_HTTP_TWOSTEP_REDIS_KEEPALIVE     5000
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


struct ngx_http_twostep_redis_command_t {
    ngx_http_twostep_redis_reply_pt  on_reply;  // nullptr: the link failed
    ngx_msec_t                       deadline = 0;
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
static ngx_log_t                      *ngx_http_twostep_redis_log;
// For the connections: nginx's own connect()/recv() errors would repeat at
// every reconnect; ngx_http_twostep_redis_conn_error() says it once a
// second.
static ngx_log_t                       ngx_http_twostep_redis_quiet;
static ngx_http_twostep_redis_link_t  *ngx_http_twostep_redis_commands;
static ngx_http_twostep_redis_link_t  *ngx_http_twostep_redis_events;
static ngx_http_twostep_redis_conn_handlers_t
                                      *ngx_http_twostep_redis_handlers;
static time_t                          ngx_http_twostep_redis_logged;


static void ngx_http_twostep_redis_connect(ngx_http_twostep_redis_link_t *l);
static void ngx_http_twostep_redis_fail(ngx_http_twostep_redis_link_t *l,
    const char *why);
static void ngx_http_twostep_redis_flush(ngx_http_twostep_redis_link_t *l);
static void ngx_http_twostep_redis_read(ngx_event_t *rev) noexcept;
static void ngx_http_twostep_redis_write(ngx_event_t *wev) noexcept;


void
ngx_http_twostep_redis_conn_error(const char *what, const char *detail)
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
ngx_http_twostep_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
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
    return ngx_http_twostep_conf_failed(cf, cmd);
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
    ngx_http_twostep_redis_conn_error(why, l->name);
    ngx_http_twostep_redis_close(l);

    std::deque<ngx_http_twostep_redis_command_t> failed;
    failed.swap(l->waiting);

    for (auto &cmd : failed) {
        cmd.on_reply(nullptr);
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
        // ["message", channel, payload]; a payload that is not a string is
        // nothing of ours.
        const redisReply *payload = reply->element[2];
        if (payload->type == REDIS_REPLY_STRING) {
            ngx_http_twostep_redis_handlers->message(
                std::string_view(payload->str, payload->len));
        }
        return true;
    }

    if (l->waiting.empty()) {
        return false;  // an answer nobody asked for
    }

    ngx_http_twostep_redis_command_t cmd = std::move(l->waiting.front());
    l->waiting.pop_front();
    ngx_http_twostep_redis_arm(l);

    cmd.on_reply(reply);
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
        cmd.on_reply = [](const redisReply *) {};
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

    cmd.on_reply = [l, what, last](const redisReply *reply) {
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

        if (l->subscriber) {
            ngx_add_timer(&l->keepalive, NGX_HTTP_TWOSTEP_REDIS_KEEPALIVE);
        }
        ngx_http_twostep_redis_handlers->ready(l->subscriber);
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
            {"SUBSCRIBE", ngx_http_twostep_redis_handlers->channel},
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
ngx_http_twostep_redis_conn_start(ngx_cycle_t *cycle,
    ngx_http_twostep_redis_conf_t *rc,
    const ngx_http_twostep_redis_conn_handlers_t &handlers)
{
    ngx_http_twostep_redis_conf = rc;
    ngx_http_twostep_redis_log = cycle->log;
    ngx_http_twostep_redis_quiet = *cycle->log;
    // ALERT: nginx logs some TLS handshake failures as "crit", at every
    // reconnect; ngx_http_twostep_redis_conn_error() names them once a
    // second.
    ngx_http_twostep_redis_quiet.log_level = NGX_LOG_ALERT;

    ngx_http_twostep_redis_handlers =
        ngx_http_twostep_pool_new<ngx_http_twostep_redis_conn_handlers_t>(
            cycle->pool, handlers);
    ngx_http_twostep_redis_commands =
        ngx_http_twostep_redis_link(cycle, "(commands)", false);
    ngx_http_twostep_redis_events =
        ngx_http_twostep_redis_link(cycle, handlers.subscriber_name, true);

    if (ngx_http_twostep_redis_handlers == NULL
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




// -- what the commands (ngx_http_twostep_redis.cpp) see ----------------------

bool
ngx_http_twostep_redis_on()
{
    return ngx_http_twostep_redis_commands != NULL;
}


std::string_view
ngx_http_twostep_redis_conn_prefix(const ngx_http_twostep_redis_conf_t *rc)
{
    return rc->prefix;
}


bool
ngx_http_twostep_redis_conn_open()
{
    return ngx_http_twostep_redis_commands != NULL
           && ngx_http_twostep_redis_commands->c != nullptr;
}


bool
ngx_http_twostep_redis_conn_ready()
{
    return ngx_http_twostep_redis_commands != NULL
           && ngx_http_twostep_redis_commands->ready;
}


bool
ngx_http_twostep_redis_conn_send(const twostep::redis::Argv &argv,
    ngx_http_twostep_redis_reply_pt on_reply)
{
    ngx_http_twostep_redis_command_t  cmd;

    cmd.on_reply = std::move(on_reply);

    return ngx_http_twostep_redis_queue(ngx_http_twostep_redis_commands, argv,
                                        std::move(cmd));
}
