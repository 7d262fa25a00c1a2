// A second-step factor on the nginx side: one file per factor
// (ngx_http_twostep_totp.cpp, _recovery.cpp, _oob.cpp, _remember.cpp,
// _webauthn.cpp), each serving rows of twostep::method_table. The portal
// reaches them only through ngx_http_twostep_factor(); factors call the
// flow kit and nothing above it.
#pragma once

#include "ngx_http_twostep_flow.h"


struct ngx_http_twostep_factor_t {
    const char          *name;     // for logs and the configuration check
    twostep::MethodSet   methods;  // the method_table rows it serves

    // verify GET when the location accepts one of `methods` and the factor
    // must ask someone (a provider) what the user has: it answers the page
    // itself, or returns NGX_DONE and answers when the provider does.
    // NULL: the user store decides (User::methods()).
    ngx_int_t (*offer)(ngx_http_twostep_page_t &p,
        const twostep::PendingSignin &pending, const twostep::User &user);

    // verify POST for one of `methods`, after the lockout check: check what
    // the user sent, or start the out-of-band step.
    ngx_int_t (*verify)(ngx_http_twostep_page_t &p,
        const twostep::PendingSignin &pending, const twostep::User &user,
        twostep::Method method);

    // wait and status GET while a transaction of one of `methods` is
    // pending (json: the waiting page's script asks). NULL: nothing waits.
    ngx_int_t (*wait)(ngx_http_twostep_page_t &p,
        const twostep::PendingSignin &pending, const twostep::User &user,
        bool json);
};


extern const ngx_http_twostep_factor_t  ngx_http_twostep_totp_factor;
extern const ngx_http_twostep_factor_t  ngx_http_twostep_recovery_factor;
extern const ngx_http_twostep_factor_t  ngx_http_twostep_oob_factor;
extern const ngx_http_twostep_factor_t  ngx_http_twostep_remember_factor;
extern const ngx_http_twostep_factor_t  ngx_http_twostep_webauthn_factor;

// ngx_http_twostep_webauthn.cpp: passkey POST, the sign-in with a passkey
// alone (twostep_passkey_signin on).
ngx_int_t ngx_http_twostep_passkey(ngx_http_twostep_page_t &p);

// ngx_http_twostep_factors.cpp: the factor serving `method`; nullptr if
// none does (ngx_http_twostep_check_factors() refuses that configuration).
const ngx_http_twostep_factor_t *ngx_http_twostep_factor(
    twostep::Method method);
// The factor that asks a provider about `methods` first, if any.
const ngx_http_twostep_factor_t *ngx_http_twostep_offering_factor(
    twostep::MethodSet methods);
