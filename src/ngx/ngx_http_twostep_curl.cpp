// Outbound HTTP on nginx's event loop: libcurl's multi-socket interface with
// curl's sockets as nginx connections and curl's timer as an nginx timer.
// One multi handle per worker; a request waiting for an answer is parked,
// and a request that goes away takes its transfer with it.

#include "ngx_http_twostep.h"

#include <curl/curl.h>

#include <unistd.h>

#include <unordered_map>


// Provider answers are small JSON documents; anything larger is refused.
#define NGX_HTTP_TWOSTEP_MAX_RESPONSE  65536


struct ngx_http_twostep_fetch_s {
    CURL                          *easy = nullptr;
    curl_slist                    *headers = nullptr;
    std::string                    body;
    std::string                    response;
    bool                           running = false;
    bool                           too_large = false;
    ngx_http_request_t            *r = nullptr;
    ngx_http_twostep_fetch_done_pt done = nullptr;
    char                           error[CURL_ERROR_SIZE] = {};
    twostep::metrics::Provider     provider;
    ngx_msec_t                     started = 0;

    ~ngx_http_twostep_fetch_s();
};


static CURLM       *ngx_http_twostep_multi;
static ngx_event_t  ngx_http_twostep_curl_timer;
static ngx_log_t   *ngx_http_twostep_curl_log;


static void ngx_http_twostep_curl_check(void);


ngx_http_twostep_fetch_s::~ngx_http_twostep_fetch_s()
{
    if (easy) {
        if (running) {
            // The request ended first (client gone, nginx shutting down).
            curl_multi_remove_handle(ngx_http_twostep_multi, easy);
        }

        curl_easy_cleanup(easy);
    }

    curl_slist_free_all(headers);
}


static void
ngx_http_twostep_curl_event(ngx_event_t *ev) noexcept
{
    int                running;
    ngx_connection_t  *c;

    c = static_cast<ngx_connection_t *>(ev->data);

    curl_multi_socket_action(ngx_http_twostep_multi, c->fd,
                             ev->write ? CURL_CSELECT_OUT : CURL_CSELECT_IN,
                             &running);

    // c may be gone now: curl removes sockets from inside socket_action.
    ngx_http_twostep_curl_check();
}


static void
ngx_http_twostep_curl_timeout(ngx_event_t *ev) noexcept
{
    int  running;

    curl_multi_socket_action(ngx_http_twostep_multi, CURL_SOCKET_TIMEOUT, 0,
                             &running);
    ngx_http_twostep_curl_check();
}


static void
ngx_http_twostep_curl_watch(ngx_event_t *ev, ngx_int_t event, bool want)
{
    if (want && !ev->active) {
        ngx_add_event(ev, event, NGX_LEVEL_EVENT);

    } else if (!want && ev->active) {
        ngx_del_event(ev, event, 0);
    }
}


// The nginx connection of each curl socket. curl's socket callback is not
// told of every close (a transfer removed while its connection dies), so
// closing goes through ngx_http_twostep_curl_close, which always finds it.
static std::unordered_map<curl_socket_t, ngx_connection_t *>
    ngx_http_twostep_curl_conns;


static void
ngx_http_twostep_curl_forget(curl_socket_t s, bool closing)
{
    auto it = ngx_http_twostep_curl_conns.find(s);
    if (it == ngx_http_twostep_curl_conns.end()) {
        return;
    }

    ngx_connection_t *c = it->second;
    ngx_http_twostep_curl_conns.erase(it);

    // NGX_CLOSE_EVENT: the descriptor is about to close, which removes it
    // from epoll; no epoll_ctl on it.
    ngx_uint_t flags = closing ? NGX_CLOSE_EVENT : 0;

    if (c->read->active) {
        ngx_del_event(c->read, NGX_READ_EVENT, flags);
    }

    if (c->write->active) {
        ngx_del_event(c->write, NGX_WRITE_EVENT, flags);
    }

    if (c->read->posted) {
        ngx_delete_posted_event(c->read);
    }

    if (c->write->posted) {
        ngx_delete_posted_event(c->write);
    }

    ngx_free_connection(c);
    c->fd = (ngx_socket_t) -1;
}


static int
ngx_http_twostep_curl_close(void *clientp, curl_socket_t s) noexcept
{
    ngx_http_twostep_curl_forget(s, true);
    return close(s);
}


// curl tells which sockets to watch for what; each becomes an nginx
// connection so the worker's event loop wakes curl up.
static int
ngx_http_twostep_curl_socket(CURL *easy, curl_socket_t s, int what,
    void *userp, void *socketp) noexcept
{
    if (what == CURL_POLL_REMOVE) {
        ngx_http_twostep_curl_forget(s, false);
        return 0;
    }

    ngx_connection_t *c;
    auto it = ngx_http_twostep_curl_conns.find(s);

    if (it != ngx_http_twostep_curl_conns.end()) {
        c = it->second;

    } else {
        c = ngx_get_connection(s, ngx_http_twostep_curl_log);
        if (c == NULL) {
            return -1;
        }

        c->read->handler = ngx_http_twostep_curl_event;
        c->write->handler = ngx_http_twostep_curl_event;
        c->read->log = ngx_http_twostep_curl_log;
        c->write->log = ngx_http_twostep_curl_log;

        try {
            ngx_http_twostep_curl_conns.emplace(s, c);

        } catch (...) {
            ngx_free_connection(c);
            c->fd = (ngx_socket_t) -1;
            return -1;
        }
    }

    ngx_http_twostep_curl_watch(c->read, NGX_READ_EVENT,
                                (what & CURL_POLL_IN) != 0);
    ngx_http_twostep_curl_watch(c->write, NGX_WRITE_EVENT,
                                (what & CURL_POLL_OUT) != 0);

    return 0;
}


static int
ngx_http_twostep_curl_set_timer(CURLM *multi, long timeout_ms, void *userp)
    noexcept
{
    if (timeout_ms < 0) {
        if (ngx_http_twostep_curl_timer.timer_set) {
            ngx_del_timer(&ngx_http_twostep_curl_timer);
        }

        return 0;
    }

    // socket_action must not be called from inside this callback: even a
    // zero timeout goes through the timer.
    ngx_add_timer(&ngx_http_twostep_curl_timer,
                  static_cast<ngx_msec_t>(timeout_ms ? timeout_ms : 1));

    return 0;
}


static size_t
ngx_http_twostep_curl_write(char *data, size_t size, size_t n, void *userp)
    noexcept
{
    auto fetch = static_cast<ngx_http_twostep_fetch_t *>(userp);
    size_t len = size * n;

    if (fetch->response.size() + len > NGX_HTTP_TWOSTEP_MAX_RESPONSE) {
        fetch->too_large = true;
        return 0;  // aborts the transfer
    }

    try {
        fetch->response.append(data, len);

    } catch (...) {
        return 0;
    }

    return len;
}


static void
ngx_http_twostep_curl_check(void)
{
    int                      left;
    long                     status;
    CURLMsg                 *msg;
    ngx_connection_t        *c;
    ngx_http_request_t      *r;
    ngx_http_twostep_fetch_t  *fetch;

    while ((msg = curl_multi_info_read(ngx_http_twostep_multi, &left))) {

        if (msg->msg != CURLMSG_DONE) {
            continue;
        }

        CURL *easy = msg->easy_handle;
        CURLcode result = msg->data.result;

        fetch = NULL;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, &fetch);
        curl_multi_remove_handle(ngx_http_twostep_multi, easy);

        if (fetch == NULL) {
            continue;
        }

        fetch->running = false;
        status = 0;

        if (result == CURLE_OK) {
            curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);

        } else {
            ngx_log_error(NGX_LOG_ERR, fetch->r->connection->log, 0,
                          "twostep: verification service request failed: "
                          "%s%s", fetch->too_large ? "answer too large, "
                                                   : "",
                          fetch->error[0] ? fetch->error
                                          : curl_easy_strerror(result));
        }

        ngx_http_twostep_count_provider(fetch->provider,
                                        result == CURLE_OK ? status : 0,
                                        ngx_current_msec - fetch->started);

        r = fetch->r;
        c = r->connection;

        ngx_http_set_log_request(c->log, r);

        // The handler finishes the request; fetch lives in its pool and
        // must not be touched afterwards.
        fetch->done(r, fetch, result == CURLE_OK ? status : 0,
                    fetch->response);

        ngx_http_run_posted_requests(c);
    }
}


ngx_int_t
ngx_http_twostep_curl_init(ngx_cycle_t *cycle)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "twostep: curl_global_init() failed");
        return NGX_ERROR;
    }

    ngx_http_twostep_multi = curl_multi_init();
    if (ngx_http_twostep_multi == NULL) {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "twostep: curl_multi_init() failed");
        return NGX_ERROR;
    }

    ngx_http_twostep_curl_log = cycle->log;

    ngx_http_twostep_curl_timer.handler = ngx_http_twostep_curl_timeout;
    ngx_http_twostep_curl_timer.log = cycle->log;
    ngx_http_twostep_curl_timer.data = &ngx_http_twostep_curl_timer;
    // A pending transfer does not hold up a graceful shutdown.
    ngx_http_twostep_curl_timer.cancelable = 1;

    if (curl_multi_setopt(ngx_http_twostep_multi, CURLMOPT_SOCKETFUNCTION,
                          ngx_http_twostep_curl_socket) != CURLM_OK
        || curl_multi_setopt(ngx_http_twostep_multi, CURLMOPT_TIMERFUNCTION,
                             ngx_http_twostep_curl_set_timer) != CURLM_OK)
    {
        ngx_log_error(NGX_LOG_EMERG, cycle->log, 0,
                      "twostep: curl_multi_setopt() failed");
        return NGX_ERROR;
    }

    return NGX_OK;
}


void
ngx_http_twostep_curl_exit(ngx_cycle_t *cycle)
{
    if (ngx_http_twostep_multi) {
        curl_multi_cleanup(ngx_http_twostep_multi);
        ngx_http_twostep_multi = NULL;
    }

    curl_global_cleanup();
}


#define ngx_http_twostep_setopt(easy, opt, value)                             \
    if (curl_easy_setopt(easy, opt, value) != CURLE_OK) {                     \
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,                     \
                      "twostep: curl_easy_setopt(" #opt ") failed");          \
        return NGX_ERROR;                                                     \
    }


ngx_int_t
ngx_http_twostep_fetch(ngx_http_request_t *r,
    const ngx_http_twostep_fetch_req_t &req, ngx_http_twostep_fetch_done_pt done)
{
    ngx_http_twostep_fetch_t  *fetch;

    if (ngx_http_twostep_multi == NULL) {
        return NGX_ERROR;
    }

    fetch = ngx_http_twostep_pool_new<ngx_http_twostep_fetch_t>(r->pool);
    if (fetch == NULL) {
        return NGX_ERROR;
    }

    fetch->r = r;
    fetch->done = done;
    fetch->body = req.body;

    fetch->easy = curl_easy_init();
    if (fetch->easy == NULL) {
        return NGX_ERROR;
    }

    CURL *easy = fetch->easy;

    for (const std::string &header : req.headers) {
        curl_slist *list = curl_slist_append(fetch->headers, header.c_str());
        if (list == NULL) {
            return NGX_ERROR;
        }

        fetch->headers = list;
    }

    // Only http and https, certificates verified, bounded in time and size
    // (fail closed: anything else is "the service is unavailable").
    ngx_http_twostep_setopt(easy, CURLOPT_URL, req.url.c_str());
    ngx_http_twostep_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
    ngx_http_twostep_setopt(easy, CURLOPT_FOLLOWLOCATION, 0L);
    ngx_http_twostep_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
    ngx_http_twostep_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
    ngx_http_twostep_setopt(easy, CURLOPT_NOSIGNAL, 1L);
    ngx_http_twostep_setopt(easy, CURLOPT_CONNECTTIMEOUT_MS,
                            static_cast<long>(req.connect_timeout_ms));
    ngx_http_twostep_setopt(easy, CURLOPT_TIMEOUT_MS,
                            static_cast<long>(req.timeout_ms));
    ngx_http_twostep_setopt(easy, CURLOPT_MAXFILESIZE_LARGE,
                            static_cast<curl_off_t>(
                                NGX_HTTP_TWOSTEP_MAX_RESPONSE));
    ngx_http_twostep_setopt(easy, CURLOPT_HTTPHEADER, fetch->headers);
    ngx_http_twostep_setopt(easy, CURLOPT_WRITEFUNCTION,
                            ngx_http_twostep_curl_write);
    ngx_http_twostep_setopt(easy, CURLOPT_WRITEDATA, fetch);
    ngx_http_twostep_setopt(easy, CURLOPT_PRIVATE, fetch);
    ngx_http_twostep_setopt(easy, CURLOPT_ERRORBUFFER, fetch->error);
    ngx_http_twostep_setopt(easy, CURLOPT_USERAGENT, "nginx-twostep");
    ngx_http_twostep_setopt(easy, CURLOPT_CLOSESOCKETFUNCTION,
                            ngx_http_twostep_curl_close);

    if (req.post) {
        // A POST is not repeated on another connection if a kept-alive one
        // dies under it: a push must not reach the phone twice.
        ngx_http_twostep_setopt(easy, CURLOPT_FRESH_CONNECT, 1L);
        ngx_http_twostep_setopt(easy, CURLOPT_POST, 1L);
        ngx_http_twostep_setopt(easy, CURLOPT_POSTFIELDSIZE,
                                static_cast<long>(fetch->body.size()));
        ngx_http_twostep_setopt(easy, CURLOPT_POSTFIELDS,
                                fetch->body.c_str());
    }

    if (curl_multi_add_handle(ngx_http_twostep_multi, easy) != CURLM_OK) {
        return NGX_ERROR;
    }

    fetch->running = true;
    fetch->provider = req.provider;
    fetch->started = ngx_current_msec;

    return NGX_OK;
}
