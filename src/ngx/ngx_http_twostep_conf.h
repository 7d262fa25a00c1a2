// The directive setters of ngx_http_twostep_module.cpp's table, one per
// directive that needs more than nginx's own ngx_conf_set_*_slot: each
// checks its arguments so "nginx -t" names a bad value, and is noexcept
// with a catch that fails the configuration (nothing unwinds through
// nginx's C frames). Defined in src/ngx/ngx_http_twostep_conf.cpp.
#pragma once

#include "ngx_http_twostep.h"


// Inside a catch (...): what was thrown, for the log.
const char *ngx_http_twostep_what() noexcept;
// A configuration callback that threw fails nginx -t with the reason (and
// the directive's name, for a directive setter).
char *ngx_http_twostep_conf_failed(ngx_conf_t *cf,
    ngx_command_t *cmd = nullptr) noexcept;

// twostep_methods, twostep_identity (location).
char *ngx_http_twostep_methods(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_identity(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;

// twostep_users, twostep_cookie_key, twostep_remember, twostep_portal_uri,
// twostep_lockout, twostep_webauthn_rp_id, twostep_templates (server).
char *ngx_http_twostep_users(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_cookie_key(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_remember(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_portal_uri(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_lockout_rule(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_webauthn_rp_id(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_templates(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;

// Providers (server): twostep_duo_api and the other service URLs,
// the secret files, twostep_twilio_account and twostep_twilio_from.
char *ngx_http_twostep_duo_api(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_duo_skey_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_token_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
char *ngx_http_twostep_twilio_value(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept;
