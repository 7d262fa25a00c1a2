// The boundary between nginx and the twostep core: the only header that
// includes nginx, and the declarations the module file and src/ngx/ share.
#pragma once

extern "C" {
#include <ngx_config.h>
#include <ngx_core.h>
#include <ngx_http.h>
#if (NGX_THREADS)
#include <ngx_thread_pool.h>
#endif
}

#include <functional>
#include <memory>
#include <new>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/approval.h"
#include "core/duo.h"
#include "core/guard.h"
#include "core/keyring.h"
#include "core/methods.h"
#include "core/metrics.h"
#include "core/ntfy.h"
#include "core/page_theme.h"
#include "core/session.h"
#include "core/session_cache.h"
#include "core/twilio.h"
#include "core/user_store.h"

extern ngx_module_t ngx_http_twostep_module;

// Body of a portal form post; larger ones are refused with 413.
#define NGX_HTTP_TWOSTEP_MAX_BODY  8192

// A password-only sign-in expires quickly (NIST SP 800-63B 4.2.3: the
// second factor follows within the same authentication event).
#define NGX_HTTP_TWOSTEP_PENDING_TTL  600


struct ngx_http_twostep_redis_conf_s;
typedef struct ngx_http_twostep_redis_conf_s  ngx_http_twostep_redis_conf_t;

struct ngx_http_twostep_main_conf_t {
    size_t                       zone_size;
    ngx_shm_zone_t              *zone;
    ngx_flag_t                   protects;  // some location has twostep on
    ngx_flag_t                   duo;       // some server uses Duo,
                                            // Twilio or ntfy (libcurl)
    ngx_shm_zone_t              *metrics_zone;
    ngx_flag_t                   metrics;   // a location serves them
    ngx_http_twostep_redis_conf_t *redis;   // twostep_redis, or NULL
    ngx_flag_t                   variables; // the configuration names a
                                            // $twostep_* variable
};


// src/ngx/ngx_http_twostep_store.cpp.
// A server's user store: loaded with the configuration, and again by a
// worker that sees the file changed (twostep-user, the security-info pages).
struct ngx_http_twostep_store_t {
    std::shared_ptr<const twostep::UserStore>  users;
    std::string                                path;
    struct stat                                seen;  // when last loaded
    time_t                                     looked = 0;  // last stat
    bool                                       stale = false;  // changed,
                                                   // and does not load
};


struct ngx_http_twostep_audit_log_t;

struct ngx_http_twostep_srv_conf_t {
    ngx_http_twostep_store_t                   *store;
    twostep::KeyRing                           *keys;
    twostep::SessionCache                      *sessions;  // per worker,
                                                           // made on use
    ngx_flag_t                                  enroll;
    ngx_http_twostep_audit_log_t               *audit_log;  // or NULL
    ngx_str_t                                   portal_uri;
    ngx_str_t                                   session_audience;
    time_t                                      session_ttl;
    time_t                                      remember;  // 0: off
    time_t                                      fraud_pause;  // 0: off
#if (NGX_THREADS)
    ngx_thread_pool_t                          *thread_pool;
#endif
    ngx_str_t                                   thread_pool_name;
    twostep::duo::Credentials                  *duo;
    // push, call and text: Duo's, when configured
    const twostep::OutOfBandProvider           *provider;
    ngx_str_t                                   duo_api;
    ngx_str_t                                   duo_ikey;
    ngx_str_t                                   duo_skey;
    ngx_msec_t                                  duo_timeout;
    // text and call through Twilio, push through ntfy, for users with a
    // phone or a topic (self-hosted; Duo serves the others)
    const twostep::OutOfBandProvider           *twilio;
    const twostep::OutOfBandProvider           *ntfy;
    ngx_str_t                                   twilio_api;
    ngx_str_t                                   twilio_account;
    ngx_str_t                                   twilio_token;
    ngx_str_t                                   twilio_from;
    ngx_str_t                                   ntfy_server;
    ngx_str_t                                   ntfy_token;
    ngx_str_t                                   public_url;  // no '/' at
                                                             // the end
    ngx_int_t                                   lockout_failures;
    time_t                                      lockout_time;
    ngx_int_t                                   lockout_address_failures;
    ngx_int_t                                   lockout_account_failures;
    ngx_flag_t                                  protects;  // a location
                                                           // has twostep on
    ngx_uint_t                                  accepted;  // the methods
                                                           // its locations
                                                           // accept
    const twostep::PageTheme                   *theme;
    const twostep::Language                    *language;  // NULL: the
                                                           // visitor's
    ngx_str_t                                   language_name;
    ngx_str_t                                   site_name;
    ngx_str_t                                   webauthn_rp_id;  // empty:
                                                           // the request's
                                                           // host name
    ngx_flag_t                                  passkey_signin;
};


// twostep_identity $variable: a variable another auth module of the same
// location sets once it has verified the user.
struct ngx_http_twostep_identity_t {
    ngx_str_t                    name;     // without the "$"
    ngx_int_t                    index;
};


struct ngx_http_twostep_loc_conf_t {
    ngx_flag_t                   enable;
    ngx_uint_t                   methods;
    time_t                       max_age;
    ngx_http_twostep_identity_t *identity;        // NULL: the password
    ngx_http_complex_value_t    *identity_realm;  // auth_basic's realm when
                                                  // it has variables: "off"
                                                  // at run time verifies
                                                  // nobody
};


struct ngx_http_twostep_offload_t;
struct ngx_http_twostep_provider_call_t;
struct ngx_http_twostep_push_setup_call_t;
struct ngx_http_twostep_offer_call_t;

// Per-request state: the session seen (for the access check and the
// variables) and a password check running in the thread pool.
struct ngx_http_twostep_ctx_t {
    std::shared_ptr<const twostep::Session>  session;  // valid, or null
    bool                         session_checked = false;
    ngx_http_twostep_offload_t  *offload = nullptr;
    ngx_http_twostep_provider_call_t *provider_call = nullptr;
    ngx_http_twostep_push_setup_call_t *push_setup_call = nullptr;
    ngx_http_twostep_offer_call_t *offer_call = nullptr;
};

ngx_http_twostep_ctx_t *ngx_http_twostep_get_ctx(ngx_http_request_t *r);


// Constructs a T owned by `pool`: its destructor runs when the pool is
// destroyed (configuration cycle or request). nullptr on allocation
// failure or if the constructor throws.
template <typename T, typename... Args>
T *
ngx_http_twostep_pool_new(ngx_pool_t *pool, Args &&...args) noexcept
{
    ngx_pool_cleanup_t *cln = ngx_pool_cleanup_add(pool, sizeof(T));
    if (cln == nullptr) {
        return nullptr;
    }

    try {
        T *obj = new (cln->data) T(std::forward<Args>(args)...);
        cln->handler = [](void *data) { static_cast<T *>(data)->~T(); };
        return obj;

    } catch (...) {
        cln->handler = nullptr;
        return nullptr;
    }
}


inline std::string_view
ngx_http_twostep_sv(const ngx_str_t &s)
{
    return std::string_view(reinterpret_cast<const char *>(s.data), s.len);
}


inline twostep::LockoutRule
ngx_http_twostep_lockout(const ngx_http_twostep_srv_conf_t *scf)
{
    twostep::LockoutRule rule;
    rule.max_failures = scf->lockout_failures;
    rule.lock_time = scf->lockout_time;
    rule.max_address_failures = scf->lockout_address_failures;
    rule.max_account_failures = scf->lockout_account_failures;
    return rule;
}


// Reloads the store if its file changed since it was loaded (portal pages
// look every time). A changed file that does not load (unreadable by the
// workers, or broken) leaves the store `stale` until it loads: then no
// session is honoured.
void ngx_http_twostep_refresh_store(ngx_http_twostep_store_t *store,
    ngx_log_t *log);
// The same at most once a second, for the access path.
void ngx_http_twostep_watch_store(ngx_http_twostep_store_t *store,
    ngx_log_t *log);
// nginx -t: warnings when the workers could not read the store (or, with
// twostep_enroll on, write it).
void ngx_http_twostep_check_store_access(ngx_conf_t *cf,
    const ngx_http_twostep_store_t *store, bool enroll);


// src/ngx/ngx_http_twostep_http.cpp: requests and responses.
// Our cookies, each with its own name (__Host- prefixed on https).
enum ngx_http_twostep_cookie_e {
    NGX_HTTP_TWOSTEP_COOKIE_SESSION = 0,
    // A sign-in under way (twostep::PendingSignin).
    NGX_HTTP_TWOSTEP_COOKIE_PENDING,
    // "Don't ask again on this device" (twostep_remember): outlives the
    // browser session, for as long as the device is remembered.
    NGX_HTTP_TWOSTEP_COOKIE_DEVICE,
    // "Set up push notifications" in progress (twostep::PushSetup): a
    // cookie of its own, so the topic never appears in a URL.
    NGX_HTTP_TWOSTEP_COOKIE_SETUP,
    // A security-info change asked with a stale second step, kept for
    // after the step-up (twostep::PendingChange).
    NGX_HTTP_TWOSTEP_COOKIE_CHANGE,
    NGX_HTTP_TWOSTEP_COOKIES
};

// The cookie's value, or empty when it is absent or sent twice (fail
// closed: which copy is ours cannot be told).
std::string_view ngx_http_twostep_find_cookie(ngx_http_request_t *r,
    ngx_http_twostep_cookie_e which);
// Set-Cookie for it: max_age < 0 a browser-session cookie, 0 clears it.
ngx_int_t ngx_http_twostep_cookie_header(ngx_http_request_t *r,
    ngx_http_twostep_cookie_e which, std::string_view value, time_t max_age);
// The pending sign-in's cookie for NGX_HTTP_TWOSTEP_PENDING_TTL, or the
// session's for the browser session (its token carries its own expiry):
// the one place either lifetime is chosen.
ngx_int_t ngx_http_twostep_set_cookie(ngx_http_request_t *r, bool pending,
    std::string_view value);
ngx_int_t ngx_http_twostep_set_location(ngx_http_request_t *r,
    std::string_view location);
// What this response's pages are rendered with: the server's theme and
// site name, and the language the visitor asked for.
twostep::PageContext ngx_http_twostep_page_ctx(ngx_http_request_t *r);
ngx_int_t ngx_http_twostep_send_page(ngx_http_request_t *r,
    ngx_uint_t status, const std::string &html);
ngx_int_t ngx_http_twostep_send_json(ngx_http_request_t *r,
    const std::string &json);
ngx_int_t ngx_http_twostep_send_text(ngx_http_request_t *r,
    std::string_view type, const std::string &text);
// A file the browser saves (Content-Disposition: attachment), never cached.
ngx_int_t ngx_http_twostep_send_download(ngx_http_request_t *r,
    std::string_view filename, const std::string &text);
ngx_int_t ngx_http_twostep_send_message(ngx_http_request_t *r,
    ngx_uint_t status, std::string_view title, std::string_view text);
std::string_view ngx_http_twostep_request_header(ngx_http_request_t *r,
    std::string_view name);

// The session cookie of this request, checked once and kept in the
// request's context (for the portal, subrequests and the variables);
// nullptr when there is none or it opens nothing.
const twostep::Session *ngx_http_twostep_session(ngx_http_request_t *r);
// The same without keeping it in the request's context: no allocation,
// for a handler that decides at once (the access check). The pointer is
// valid only until the handler returns to nginx.
const twostep::Session *ngx_http_twostep_session_now(ngx_http_request_t *r);

// src/ngx/ngx_http_twostep_thread.cpp: `work` in the thread pool (no nginx
// calls, no pool allocations there), then `finish` on the event loop, whose
// result finalizes the request. Returns NGX_DONE while it runs.
// `abandoned`, when given, answers instead of `finish` if the work never
// ran to its end (the pool's queue full: thread_pool max_queue, no memory,
// the work threw): right away, or on the event loop.
#if !(NGX_THREADS)
typedef void  ngx_thread_pool_t;
#endif
ngx_int_t ngx_http_twostep_offload(ngx_http_request_t *r,
    ngx_thread_pool_t *pool, std::function<void()> work,
    std::function<ngx_int_t()> finish,
    std::function<ngx_int_t()> abandoned = nullptr);

// src/ngx/ngx_http_twostep_zone.cpp: the state all workers share.
struct ngx_http_twostep_zone_ctx_t;

class ngx_http_twostep_zone_state : public twostep::SharedState {
public:
    explicit ngx_http_twostep_zone_state(ngx_http_request_t *r);
    ngx_http_twostep_zone_state(ngx_http_twostep_zone_ctx_t *ctx,
                                ngx_log_t *log);

    bool update(std::string_view key, int64_t now, int64_t expires,
                const std::function<bool(twostep::StateRecord &)> &change,
                bool pinned = false) override;
    std::uint64_t revocation_epoch() override;
    void next_revocation_epoch() override;

private:
    ngx_http_twostep_zone_ctx_t  *ctx_;
    ngx_log_t                    *log_;
};

ngx_int_t ngx_http_twostep_add_zone(ngx_conf_t *cf,
    ngx_http_twostep_main_conf_t *mcf);
ngx_int_t ngx_http_twostep_prepare_zone(ngx_cycle_t *cycle,
    ngx_http_twostep_main_conf_t *mcf);
// Records in the zone now, and those a full zone dropped before they
// expired (since the zone was made), for the metrics.
void ngx_http_twostep_zone_stats(ngx_http_twostep_main_conf_t *mcf,
    ngx_uint_t *records, ngx_uint_t *evictions);

// src/ngx/ngx_http_twostep_redis.cpp: state shared by several hosts.
// Without twostep_redis the zone alone holds it and every call below
// answers at once as the zone-only flow expects. The directives, _check,
// _exit and _on are the connections' (ngx_http_twostep_redis_conn.cpp).
char *ngx_http_twostep_redis(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
ngx_int_t ngx_http_twostep_redis_check(ngx_conf_t *cf,
    ngx_http_twostep_main_conf_t *mcf);
ngx_int_t ngx_http_twostep_redis_init(ngx_cycle_t *cycle,
    ngx_http_twostep_main_conf_t *mcf);
void ngx_http_twostep_redis_exit(ngx_cycle_t *cycle);
bool ngx_http_twostep_redis_on();

// The lockout of every host (twostep::LockoutRule, counted in Redis):
// `then` gets the seconds the attempt must wait, 0 to go on, or -1 when
// Redis could not answer (fail closed). With `failed`, a failure is
// counted first. Returns `then`'s result, or NGX_DONE while Redis answers
// (the request finalizes with `then`'s result).
ngx_int_t ngx_http_twostep_shared_locked(ngx_http_request_t *r,
    ngx_http_twostep_srv_conf_t *scf, std::string_view user,
    std::string_view address, bool failed,
    std::function<ngx_int_t(int64_t)> then);
// The fraud pause of every host (twostep::pause_key(), kept in Redis like
// a lock): with `seconds` > 0 it is set for that long, else only read.
// `then` gets the seconds it lasts, 0 when none, -1 when Redis could not
// answer (fail closed); without twostep_redis, 0 at once.
ngx_int_t ngx_http_twostep_shared_pause(ngx_http_request_t *r,
    std::string_view key, int64_t seconds,
    std::function<ngx_int_t(int64_t)> then);
// RFC 6238 section 5.2 across hosts: the TOTP step is claimed in Redis.
ngx_int_t ngx_http_twostep_shared_claim_step(ngx_http_request_t *r,
    std::string_view user, int64_t step, int64_t period,
    std::function<ngx_int_t(twostep::Claim)> then);
// A provider transaction finishes one sign-in on any host (Redis).
ngx_int_t ngx_http_twostep_shared_claim_transaction(ngx_http_request_t *r,
    std::string_view txid, int64_t expires,
    std::function<ngx_int_t(twostep::Claim)> then);
// Used once, whoever holds a copy of the cookie that names it (a
// transaction, a texted code): claimed as `id` in this host's zone, then
// with twostep_redis as `shared_id` in Redis, where a copy works as well.
// `then` gets fresh only if both were; replayed or unavailable otherwise
// (the callers fail closed).
ngx_int_t ngx_http_twostep_claim_once(ngx_http_request_t *r,
    std::string_view id, std::string_view shared_id, int64_t expires,
    std::function<ngx_int_t(twostep::Claim)> then);
// A passed second step clears the counts in Redis too (not waited for:
// counts left behind only expire later).
void ngx_http_twostep_shared_success(ngx_http_twostep_srv_conf_t *scf,
    std::string_view user, std::string_view address);
// A self-hosted push's or call's transaction (twostep::Approval): in the
// zone, or with twostep_redis in Redis alone, so that any host may decide
// it and any host read it. Each runs `then` with the outcome and returns
// its result, or NGX_DONE while Redis answers (the request finalizes with
// `then`'s result). Redis failing is false, Decided::unavailable or
// nullopt: fail closed.
ngx_int_t ngx_http_twostep_open_approval(ngx_http_request_t *r,
    std::string_view txid, time_t expires,
    std::function<ngx_int_t(bool)> then);
ngx_int_t ngx_http_twostep_decide_approval(ngx_http_request_t *r,
    std::string_view txid, twostep::Approval to, time_t expires,
    std::function<ngx_int_t(twostep::Decided)> then);
ngx_int_t ngx_http_twostep_read_approval(ngx_http_request_t *r,
    std::string_view txid,
    std::function<ngx_int_t(std::optional<twostep::Approval>)> then);
// Denies a transaction nobody will wait on (the push may have gone out
// all the same), not waited for: the browser never got its id.
void ngx_http_twostep_close_approval(ngx_http_request_t *r,
    std::string_view txid, time_t expires);
// Push, call and text limits (twostep::OutOfBandRule) here and, with
// twostep_redis, on every host: `then` gets how the start went and, when
// too many, the seconds to wait (the longer of this host's and Redis's).
// The user's waiting request gives way only if it is transaction
// `replacing` (the one this browser's pending sign-in or set-up waits
// on), here and in Redis; the new one is transaction `txid` when known
// before it starts (else bound later). Redis failing is
// Start::unavailable.
ngx_int_t ngx_http_twostep_start_out_of_band(ngx_http_request_t *r,
    std::string_view user, std::string_view replacing,
    std::function<ngx_int_t(twostep::Start, int64_t)> then,
    std::string_view txid = {});
// The request was answered or failed, here and on every host (not waited
// for: Redis's mark expires with twostep::OutOfBandRule::pending_for).
// With `txid` the waiting request ends only if it is that transaction
// (bound at the start or by ngx_http_twostep_bind_out_of_band()): an old
// pending sign-in or set-up frees no other push's place. Without, the
// one waiting ends (a request that failed before it had a transaction).
void ngx_http_twostep_end_out_of_band(ngx_http_request_t *r,
    std::string_view user, std::string_view txid = {});
// The user's waiting request, started without a transaction, is `txid`
// from now on, here and with twostep_redis on every host (not waited
// for).
void ngx_http_twostep_bind_out_of_band(ngx_http_request_t *r,
    std::string_view user, std::string_view txid);
// Ends `session` on this host at once and, with twostep_redis, on every
// host (published; kept and sent again while Redis is unavailable). The
// one place a session is revoked: "sign out everywhere" builds on it.
// False if this host could not record it (logged by the caller).
bool ngx_http_twostep_revoke_session(ngx_http_request_t *r,
    const twostep::Session &session);
// "Sign out everywhere": every session of `user` begun up to now ends on
// this host at once (twostep::revoke_user_sessions, kept until
// `keep_until`) and, with twostep_redis, on every host, as single
// sessions do. False if this host could not record it (logged by the
// caller).
bool ngx_http_twostep_revoke_user_sessions(ngx_http_request_t *r,
    std::string_view user, time_t keep_until);

// src/ngx/ngx_http_twostep_metrics.cpp: counters every worker adds to, in
// a small zone of their own (atomic adds, no lock), and twostep_metrics.
ngx_int_t ngx_http_twostep_add_metrics_zone(ngx_conf_t *cf,
    ngx_http_twostep_main_conf_t *mcf);
char *ngx_http_twostep_metrics(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
// Adds one to counter `slot` (twostep::metrics layout); nothing without
// the zone.
void ngx_http_twostep_count(std::size_t slot);
// A provider request ended after `ms` with an HTTP `status` (0: none).
void ngx_http_twostep_count_provider(twostep::metrics::Provider provider,
    long status, ngx_msec_t ms);

// src/ngx/ngx_http_twostep_curl.cpp: outbound HTTP on the event loop.
struct ngx_http_twostep_fetch_s;
typedef struct ngx_http_twostep_fetch_s  ngx_http_twostep_fetch_t;

struct ngx_http_twostep_fetch_req_t {
    std::string                url;
    bool                       post = false;
    std::string                body;
    std::vector<std::string>   headers;
    ngx_msec_t                 connect_timeout_ms = 5000;
    ngx_msec_t                 timeout_ms = 10000;
    twostep::metrics::Provider provider = twostep::metrics::Provider::duo;
};

// Called on the event loop when the transfer ends: status 0 means it
// failed (the reason is logged). The handler finishes the request; `body`
// lives in the request's pool and is gone once the request is finalized.
typedef void (*ngx_http_twostep_fetch_done_pt)(ngx_http_request_t *r,
    ngx_http_twostep_fetch_t *fetch, long status, const std::string &body);

ngx_int_t ngx_http_twostep_curl_init(ngx_cycle_t *cycle);
void ngx_http_twostep_curl_exit(ngx_cycle_t *cycle);
ngx_int_t ngx_http_twostep_fetch(ngx_http_request_t *r,
    const ngx_http_twostep_fetch_req_t &req,
    ngx_http_twostep_fetch_done_pt done);

// src/ngx/ngx_http_twostep_factors.cpp: every method has its factor.
ngx_int_t ngx_http_twostep_check_factors(ngx_conf_t *cf);

// src/ngx/ngx_http_twostep_portal.cpp: the sign-in pages.
ngx_int_t ngx_http_twostep_portal_handler(ngx_http_request_t *r) noexcept;
// A request the portal answers: the browser's own, under twostep_portal_uri
// of a server that protects something.
bool ngx_http_twostep_is_portal(ngx_http_request_t *r,
    const ngx_http_twostep_srv_conf_t *scf);
// src/ngx/ngx_http_twostep_flow.cpp: a portal page's address.
std::string ngx_http_twostep_portal_url(ngx_http_twostep_srv_conf_t *scf,
    std::string_view page, std::string_view return_to,
    twostep::MethodSet methods);
