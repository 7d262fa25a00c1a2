// Security events: the metrics they move and, with twostep_audit_log, one
// JSON line each in a file or to syslog, through nginx's own log machinery
// (a file opened by ngx_conf_open_file is reopened on `nginx -s reopen`).

#include "ngx_http_twostep_audit.h"
#include "ngx_http_twostep_conf.h"

#include "core/audit.h"


struct ngx_http_twostep_audit_log_t {
    ngx_open_file_t     *file;
    ngx_syslog_peer_t   *syslog;
};


static const char *ngx_http_twostep_event_names[] = {
    "signin", "lockout", "replay", "signout", "session_revoked", "enroll",
    "security_info", "provider_error", "fraud_report"
};


static ngx_int_t  ngx_http_twostep_request_id_index = NGX_ERROR;


char *
ngx_http_twostep_audit_log(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
try {
    auto field = reinterpret_cast<ngx_http_twostep_audit_log_t **>(
                     static_cast<char *>(conf) + cmd->offset);
    auto value = static_cast<ngx_str_t *>(cf->args->elts);

    if (*field != NGX_CONF_UNSET_PTR) {
        return const_cast<char *>("is duplicate");
    }

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *field = NULL;
        return NGX_CONF_OK;
    }

    auto log = static_cast<ngx_http_twostep_audit_log_t *>(
                   ngx_pcalloc(cf->pool,
                               sizeof(ngx_http_twostep_audit_log_t)));
    if (log == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    if (ngx_strncmp(value[1].data, "syslog:", 7) == 0) {
        log->syslog = static_cast<ngx_syslog_peer_t *>(
                          ngx_pcalloc(cf->pool, sizeof(ngx_syslog_peer_t)));
        if (log->syslog == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        if (ngx_syslog_process_conf(cf, log->syslog) != NGX_CONF_OK) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }

    } else {
        // Opened (as root, by the master) with the cycle's other logs, and
        // reopened with them on USR1.
        log->file = ngx_conf_open_file(cf->cycle, &value[1]);
        if (log->file == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    *field = log;

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// $request_id indexed, so the audit log and the access log show the same.
ngx_int_t
ngx_http_twostep_audit_init(ngx_conf_t *cf)
{
    static ngx_str_t  name = ngx_string("request_id");

    ngx_http_twostep_request_id_index = ngx_http_get_variable_index(cf,
                                                                    &name);

    return ngx_http_twostep_request_id_index == NGX_ERROR ? NGX_ERROR
                                                          : NGX_OK;
}


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

    // A reported sign-in is a refused step too.
    case NGX_HTTP_TWOSTEP_FRAUD:
        ngx_http_twostep_count(single_slot(Counter::fraud_reports));
        result = Result::failure;
        break;

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


static void
ngx_http_twostep_write_audit(ngx_http_request_t *r,
    ngx_http_twostep_audit_log_t *log, ngx_http_twostep_event_e event,
    std::string_view user, std::string_view method,
    twostep::metrics::Result result)
{
    twostep::AuditEvent e;

    // The cached time is volatile: a copy of this second's string.
    std::string time(reinterpret_cast<const char *>(
                         ngx_cached_http_log_iso8601.data),
                     ngx_cached_http_log_iso8601.len);

    e.time = time;
    e.event = ngx_http_twostep_event_names[event];
    e.user = user;
    e.method = method;
    e.result = twostep::metrics::result_name(result);
    e.address = ngx_http_twostep_sv(r->connection->addr_text);
    e.uri = ngx_http_twostep_sv(r->uri);

    if (r->headers_in.server.len) {
        e.host = ngx_http_twostep_sv(r->headers_in.server);

    } else {
        auto cscf = static_cast<ngx_http_core_srv_conf_t *>(
                        ngx_http_get_module_srv_conf(r, ngx_http_core_module));
        e.host = ngx_http_twostep_sv(cscf->server_name);
    }

    ngx_http_variable_value_t *id = ngx_http_get_indexed_variable(r,
                                        ngx_http_twostep_request_id_index);
    if (id && !id->not_found) {
        e.request_id = std::string_view(
                           reinterpret_cast<const char *>(id->data),
                           id->len);
    }

    std::string line = twostep::audit_line(e);
    if (line.empty()) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "twostep: could not format an audit log line");
        return;
    }

    if (log->file) {
        // One write() of a whole line to an O_APPEND file: the workers'
        // lines never interleave.
        if (ngx_write_fd(log->file->fd, const_cast<char *>(line.data()),
                         line.size())
            != static_cast<ssize_t>(line.size()))
        {
            ngx_log_error(NGX_LOG_ALERT, r->connection->log, ngx_errno,
                          ngx_write_fd_n " to audit log \"%s\" failed",
                          log->file->name.data);
        }

        return;
    }

    // The syslog header (PRI, time, host name, tag), then the line without
    // its newline.
    size_t len = sizeof("<255>Jan 01 00:00:00 ") - 1
                 + ngx_cycle->hostname.len + 1 + log->syslog->tag.len + 2
                 + line.size();

    auto buf = static_cast<u_char *>(ngx_pnalloc(r->pool, len));
    if (buf == NULL) {
        return;
    }

    u_char *p = ngx_syslog_add_header(log->syslog, buf);
    p = ngx_cpymem(p, line.data(), line.size() - 1);

    (void) ngx_syslog_send(log->syslog, buf, p - buf);
}


void
ngx_http_twostep_audit(ngx_http_request_t *r, ngx_http_twostep_event_e event,
    std::string_view user, std::string_view method,
    twostep::metrics::Result result) noexcept
{
    try {
        ngx_http_twostep_count_event(event, method, result);

        auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(
                       ngx_http_get_module_srv_conf(r,
                                                    ngx_http_twostep_module));

        if (scf->audit_log) {
            ngx_http_twostep_write_audit(r, scf->audit_log, event, user,
                                         method, result);
        }

    } catch (...) {
        ngx_log_error(NGX_LOG_ALERT, r->connection->log, 0,
                      "twostep: could not record a security event");
    }
}
