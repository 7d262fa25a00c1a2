// The authenticator app (RFC 6238): verify POST with method=totp checks
// the code here, once per time step across workers (RFC 6238 section 5.2).

#include "ngx_http_twostep_factor.h"

#include "core/totp.h"

#include <algorithm>


// A wrong or replayed code: counted here and (twostep_redis) on every
// host, then the lock page or the form again.
static ngx_int_t
ngx_http_twostep_totp_failed(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method, const char *error)
{
    ngx_http_twostep_zone_state state(p.r);
    std::string_view address = ngx_http_twostep_address(p.r);

    int64_t locked = twostep::record_failure(state,
                         ngx_http_twostep_lockout(p.scf), user.name, address,
                         ngx_time());

    return ngx_http_twostep_shared_locked(p.r, p.scf, user.name, address,
                                          true,
        [p, pending, method, error, locked](int64_t left) mutable {
            if (left < 0) {
                return ngx_http_twostep_unavailable(p.r);
            }

            if (std::max(locked, left) > 0) {
                return ngx_http_twostep_locked(p.r, pending.user,
                                               std::max(locked, left),
                                               twostep::method_name(method));
            }

            return ngx_http_twostep_with_user(p, pending,
                [&](const twostep::User &u) {
                    twostep::CodePage page = ngx_http_twostep_code_form(p,
                        pending, u, method,
                        ngx_http_twostep_offered(p, pending, u));
                    page.error = error;

                    return ngx_http_twostep_send_page(p.r,
                               NGX_HTTP_FORBIDDEN,
                               twostep::render_code(
                                   ngx_http_twostep_page_ctx(p.r), page));
                });
        });
}


static ngx_int_t
ngx_http_twostep_totp_replayed(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method)
{
    ngx_http_twostep_log(p.r, NGX_LOG_WARN, "code used again", user.name);
    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_REPLAY, user.name, method,
                           NGX_HTTP_TWOSTEP_FAILED);

    return ngx_http_twostep_totp_failed(p, pending, user, method,
                                        "error.code_used");
}


static ngx_int_t
ngx_http_twostep_totp_verify(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method)
{
    time_t  now = ngx_time();

    std::optional<int64_t> step;

    if (user.totp) {
        step = twostep::totp_verify(*user.totp,
                                    twostep::field(p.form, "code"), now);
    }

    // Letters are no code at all: said as such, and not a guess to count.
    if (!step && twostep::code_not_digits(twostep::field(p.form, "code"))) {
        twostep::CodePage page = ngx_http_twostep_code_form(p, pending,
            user, method, ngx_http_twostep_offered(p, pending, user));
        page.error = "error.code_digits";

        return ngx_http_twostep_send_page(p.r, NGX_HTTP_BAD_REQUEST,
                   twostep::render_code(ngx_http_twostep_page_ctx(p.r),
                                        page));
    }

    if (!step) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN, "wrong code", user.name);
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user.name, method,
                               NGX_HTTP_TWOSTEP_FAILED);

        return ngx_http_twostep_totp_failed(p, pending, user, method,
                                            "error.code_wrong");
    }

    ngx_http_twostep_zone_state state(p.r);

    switch (twostep::claim_totp_step(state, user.name, *step,
                                     user.totp->period, now))
    {
    case twostep::Claim::fresh:
        break;

    case twostep::Claim::replayed:
        return ngx_http_twostep_totp_replayed(p, pending, user, method);

    default: /* twostep::Claim::unavailable */
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, user.name,
                               method, NGX_HTTP_TWOSTEP_ERROR);
        return ngx_http_twostep_unavailable(p.r);
    }

    // Fresh on this host; with twostep_redis, it must be on every host.
    return ngx_http_twostep_shared_claim_step(p.r, user.name, *step,
                                              user.totp->period,
        [p, pending, method](twostep::Claim claim) mutable {
            if (claim == twostep::Claim::unavailable) {
                ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN,
                                       pending.user, method,
                                       NGX_HTTP_TWOSTEP_ERROR);
                return ngx_http_twostep_unavailable(p.r);
            }

            return ngx_http_twostep_with_user(p, pending,
                [&](const twostep::User &u) {
                    return claim == twostep::Claim::fresh
                        ? ngx_http_twostep_finish_signin(p, pending, u,
                                                         method)
                        : ngx_http_twostep_totp_replayed(p, pending, u,
                                                         method);
                });
        });
}


const ngx_http_twostep_factor_t  ngx_http_twostep_totp_factor = {
    "totp",
    twostep::method_bit(twostep::Method::totp),
    NULL,
    ngx_http_twostep_totp_verify,
    NULL
};
