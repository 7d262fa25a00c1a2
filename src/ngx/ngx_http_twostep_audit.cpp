// Security events: the metrics they move (and, with twostep_audit_log, the
// audit log line they make).

#include "ngx_http_twostep_audit.h"


static void
ngx_http_twostep_count_event(ngx_http_twostep_event_e event,
    std::string_view method, twostep::metrics::Result result)
{
    using namespace twostep::metrics;

    std::size_t step = step_index(method);
    bool known = step < steps().size();

    switch (event) {

    case NGX_HTTP_TWOSTEP_SIGNIN:
        break;

    case NGX_HTTP_TWOSTEP_LOCKOUT:
        ngx_http_twostep_count(single_slot(Counter::lockouts));
        result = Result::locked;
        break;

    // A replayed code is a failed step too.
    case NGX_HTTP_TWOSTEP_REPLAY:
        ngx_http_twostep_count(single_slot(Counter::replays));
        result = Result::failure;
        break;

    case NGX_HTTP_TWOSTEP_SIGNOUT:
    case NGX_HTTP_TWOSTEP_REVOKED:
        ngx_http_twostep_count(single_slot(Counter::sessions_revoked));
        return;

    // A provider failure during a step leaves that step undecided.
    case NGX_HTTP_TWOSTEP_PROVIDER_ERROR:
        result = Result::error;
        break;

    default:
        return;
    }

    if (known) {
        ngx_http_twostep_count(signin_slot(step, result));
    }
}


void
ngx_http_twostep_audit(ngx_http_request_t *r, ngx_http_twostep_event_e event,
    std::string_view user, std::string_view method,
    twostep::metrics::Result result) noexcept
{
    try {
        ngx_http_twostep_count_event(event, method, result);

    } catch (...) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "twostep: could not record a security event");
    }

    (void) user;
}
