// Security events: one call where each happens. It counts the event for
// the metrics and writes it to the audit log, so a page handler (or a
// factor's file) carries a single line per event.
#pragma once

#include "ngx_http_twostep.h"


enum ngx_http_twostep_event_e {
    NGX_HTTP_TWOSTEP_SIGNIN,          // a sign-in step passed or not
    NGX_HTTP_TWOSTEP_LOCKOUT,         // refused: too many failures
    NGX_HTTP_TWOSTEP_REPLAY,          // a code used before
    NGX_HTTP_TWOSTEP_SIGNOUT,         // the session revoked by its user
    NGX_HTTP_TWOSTEP_REVOKED,         // a session replaced at step-up
    NGX_HTTP_TWOSTEP_ENROLL,          // an authenticator app set up
    NGX_HTTP_TWOSTEP_SECURITY_INFO,   // a method changed by its user
    NGX_HTTP_TWOSTEP_PROVIDER_ERROR,  // no usable answer from a provider
    NGX_HTTP_TWOSTEP_FRAUD            // the phone reported the sign-in
};


// How the step or change ended.
#define NGX_HTTP_TWOSTEP_PASSED  twostep::metrics::Result::success
#define NGX_HTTP_TWOSTEP_FAILED  twostep::metrics::Result::failure
#define NGX_HTTP_TWOSTEP_LOCKED  twostep::metrics::Result::locked
#define NGX_HTTP_TWOSTEP_ERROR   twostep::metrics::Result::error


// twostep_audit_log FILE | syslog:... | off (http, server).
char *ngx_http_twostep_audit_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
ngx_int_t ngx_http_twostep_audit_init(ngx_conf_t *cf);


// `method`: "password", a method name ("totp", "push", ...) or "" when
// none applies. Never pass a password, code, secret, token or cookie.
void ngx_http_twostep_audit(ngx_http_request_t *r,
    ngx_http_twostep_event_e event, std::string_view user,
    std::string_view method, twostep::metrics::Result result) noexcept;

inline void
ngx_http_twostep_audit(ngx_http_request_t *r, ngx_http_twostep_event_e event,
    std::string_view user, twostep::Method method,
    twostep::metrics::Result result) noexcept
{
    ngx_http_twostep_audit(r, event, user, twostep::method_name(method),
                           result);
}
