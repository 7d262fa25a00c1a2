// A remembered device (twostep_remember): after the password, a device
// cookie from an earlier second step on this browser stands for the second
// step ("Don't ask again for N days on this device"). Never offered on a
// page and never posted: verify runs only from the password's answer, and
// answers NGX_DECLINED when the device is not remembered for the user.

#include "ngx_http_twostep_factor.h"


static ngx_int_t
ngx_http_twostep_remember_verify(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method method)
{
    // Only the password, on a location that accepts a remembered device:
    // never a step-up (twostep_max_age asks for a fresh second step) and
    // never another module's identity.
    if (method != twostep::Method::remembered
        || pending.via != twostep::FirstFactor::password
        || pending.user != user.name
        || !twostep::has_method(p.methods, twostep::Method::remembered))
    {
        return NGX_DECLINED;
    }

    auto device = ngx_http_twostep_remembered(p, user);
    if (!device) {
        return NGX_DECLINED;
    }

    // The session says when the second step was really passed: a
    // remembered sign-in is never fresh for changes or twostep_max_age.
    return ngx_http_twostep_finish_signin(p, pending, user, method,
                                          device->issued);
}


const ngx_http_twostep_factor_t  ngx_http_twostep_remember_factor = {
    "remembered",
    twostep::method_bit(twostep::Method::remembered),
    NULL,
    ngx_http_twostep_remember_verify,
    NULL
};
