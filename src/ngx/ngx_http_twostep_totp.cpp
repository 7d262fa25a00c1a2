// The authenticator app (RFC 6238): verify POST with method=totp checks
// the code here, once per time step across workers (RFC 6238 section 5.2).

#include "ngx_http_twostep_factor.h"

#include "core/totp.h"


static ngx_int_t
ngx_http_twostep_totp_verify(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method)
{
    time_t  now = ngx_time();

    ngx_http_twostep_zone_state state(p.r);
    twostep::LockoutRule rule = ngx_http_twostep_lockout(p.scf);
    std::string_view address = ngx_http_twostep_address(p.r);
    int64_t locked;

    std::optional<int64_t> step;

    if (user.totp) {
        step = twostep::totp_verify(*user.totp,
                                    twostep::field(p.form, "code"), now);
    }

    const char *error = nullptr;

    if (!step) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN, "wrong code", user.name);
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user.name, method,
                               NGX_HTTP_TWOSTEP_FAILED);
        error = "error.code_wrong";

    } else {
        switch (twostep::claim_totp_step(state, user.name, *step,
                                         user.totp->period, now))
        {
        case twostep::Claim::fresh:
            break;

        case twostep::Claim::replayed:
            ngx_http_twostep_log(p.r, NGX_LOG_WARN, "code used again",
                                 user.name);
            ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_REPLAY, user.name,
                                   method, NGX_HTTP_TWOSTEP_FAILED);
            error = "error.code_used";
            break;

        default: /* twostep::Claim::unavailable */
            ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user.name,
                                   method, NGX_HTTP_TWOSTEP_ERROR);
            return ngx_http_twostep_send_message(p.r,
                       NGX_HTTP_SERVICE_UNAVAILABLE,
                       "msg.unavailable.title",
                       "msg.unavailable.text");
        }
    }

    if (error) {
        locked = twostep::record_failure(state, rule, user.name, address,
                                         now);
        if (locked > 0) {
            return ngx_http_twostep_locked(p.r, user.name, locked,
                                           twostep::method_name(method));
        }

        twostep::CodePage page = ngx_http_twostep_code_form(p, pending,
            user, method, ngx_http_twostep_offered(p, pending, user));
        page.error = error;

        return ngx_http_twostep_send_page(p.r, NGX_HTTP_FORBIDDEN,
                   twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                        page));
    }

    return ngx_http_twostep_finish_signin(p, pending, user, method);
}


const ngx_http_twostep_factor_t  ngx_http_twostep_totp_factor = {
    "totp",
    twostep::method_bit(twostep::Method::totp),
    NULL,
    ngx_http_twostep_totp_verify,
    NULL
};
