// The table of factors: which file serves each row of twostep::method_table.
// A new method is a row there, a factor file, and a line here.

#include "ngx_http_twostep_factor.h"


static const ngx_http_twostep_factor_t  *ngx_http_twostep_factors[] = {
    &ngx_http_twostep_totp_factor,
    &ngx_http_twostep_recovery_factor,
    &ngx_http_twostep_oob_factor,
    &ngx_http_twostep_remember_factor,
    &ngx_http_twostep_webauthn_factor,
};


const ngx_http_twostep_factor_t *
ngx_http_twostep_factor(twostep::Method method)
{
    for (const ngx_http_twostep_factor_t *f : ngx_http_twostep_factors) {
        if (twostep::has_method(f->methods, method)) {
            return f;
        }
    }

    return nullptr;
}


const ngx_http_twostep_factor_t *
ngx_http_twostep_offering_factor(twostep::MethodSet methods)
{
    for (const ngx_http_twostep_factor_t *f : ngx_http_twostep_factors) {
        if (f->offer != NULL && (f->methods & methods) != 0) {
            return f;
        }
    }

    return nullptr;
}


// Every method has exactly one factor: a table row without its file fails
// `nginx -t` instead of a sign-in.
ngx_int_t
ngx_http_twostep_check_factors(ngx_conf_t *cf)
{
    for (const twostep::MethodInfo &info : twostep::method_table) {
        int  served = 0;

        for (const ngx_http_twostep_factor_t *f : ngx_http_twostep_factors) {
            served += twostep::has_method(f->methods, info.method);
        }

        if (served != 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "twostep method \"%s\" is served by %d "
                               "factors, expected one", info.name, served);
            return NGX_ERROR;
        }
    }

    return NGX_OK;
}
