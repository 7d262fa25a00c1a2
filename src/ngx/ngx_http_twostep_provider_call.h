// A call to a provider over the libcurl bridge
// (ngx_http_twostep_provider_call.cpp), as the out-of-band flow
// (ngx_http_twostep_oob.cpp) uses it: Duo's preauth on the second-step
// page, and every request the flow makes of a provider (Duo's auth,
// auth_status and passcodes; Twilio's texts and calls; ntfy's pushes);
// and Duo's preauth for security info (ngx_http_twostep_selfservice.cpp).
// Those files include this header; the call knows neither and hands its
// answers back through callbacks.
#pragma once

#include "ngx_http_twostep_flow.h"


// What a call asks of the provider, and so how its answer is read.
enum ngx_http_twostep_call_step_e {
    NGX_HTTP_TWOSTEP_CALL_OFFER,
    NGX_HTTP_TWOSTEP_CALL_AUTH,
    NGX_HTTP_TWOSTEP_CALL_SMS,
    NGX_HTTP_TWOSTEP_CALL_PASSCODE,
    NGX_HTTP_TWOSTEP_CALL_WAIT,
    NGX_HTTP_TWOSTEP_CALL_STATUS
};


// The flow's continuation for the answer to a push or call (AUTH decided
// at once, and WAIT): sign in, keep waiting, or say why not.
typedef ngx_int_t (*ngx_http_twostep_call_answered_pt)(
    ngx_http_twostep_page_t &p, const twostep::PendingSignin &pending,
    const twostep::User &user, const twostep::ProviderAnswer &res);


// Sends a signed request and parks the request until the answer, which
// finishes the page (through `answered` for a push's or call's answer;
// NULL only for OFFER, which has none). NGX_DONE while it waits.
ngx_int_t ngx_http_twostep_call_provider(ngx_http_twostep_page_t &p,
    ngx_http_twostep_call_step_e step, const twostep::PendingSignin &pending,
    const twostep::User &user, twostep::Method method,
    const twostep::OutOfBandProvider &provider,
    const twostep::ProviderRequest &req,
    ngx_http_twostep_call_answered_pt answered);

// The out-of-band factor's offer (ngx_http_twostep_factor_t): Duo's
// preauth says which of push, call and text the user has.
ngx_int_t ngx_http_twostep_duo_offer(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user);


// What the provider that must be asked (Duo: its preauth) confirmed this
// user has now. `failed`: it gave no usable answer (an error, a timeout,
// anything malformed), so none of its methods count (fail closed).
struct ngx_http_twostep_confirmed_t {
    twostep::MethodSet  methods = 0;
    bool                failed = false;
};

// What security info does with the answer.
typedef std::function<ngx_int_t(ngx_http_twostep_page_t &,
                                const ngx_http_twostep_confirmed_t &)>
    ngx_http_twostep_confirmed_pt;

// Asks Duo which of its methods `user` has now (preauth, the call the
// second-step page makes), then `then` with the answer. Through the event
// loop (the libcurl bridge): the request waits parked. Without Duo, or
// when no location takes its methods, `then` runs at once with none.
ngx_int_t ngx_http_twostep_duo_preauth(ngx_http_twostep_page_t &p,
    const twostep::User &user, ngx_http_twostep_confirmed_pt then);
