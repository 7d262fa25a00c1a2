// What reaches the portal from the phone for a self-hosted push or call,
// with neither a session nor a pending sign-in: each carries the
// transaction's capability token (twostep::Capability, signed with the
// server's keys) in its URL, and each decides the transaction once
// (twostep::decide_approval; with twostep_redis in Redis, so the answer
// may reach any host); the waiting page then moves on.
//
//   approve GET   the page a push's Approve button opens: who signs in to
//                 what, a box for the number the sign-in screen shows
//   approve POST  number=NN approves (the right one) or refuses (a wrong
//                 one, logged as possible push fatigue); action=deny;
//                 action=fraud ("I didn't try to sign in") refuses and
//                 pauses pushes and calls, as 0 on a call does
//   deny POST     the push's Deny button, sent by the ntfy app
//   (a push-setup's test push, Capability::test, is approved the same way;
//   its answer saves a topic in ngx_http_twostep_pushsetup.cpp and signs
//   nobody in)
//   call POST     Twilio's keypress callback: X-Twilio-Signature checked
//                 in constant time over public URL + URI and the form
//
// A forged, expired or reused token, or a bad signature, is 403 and
// changes nothing (OWASP ASVS 4.0.3 3.5.x, NIST SP 800-63B 5.1.3.1).

#include "ngx_http_twostep_flow.h"

#include "core/approval.h"
#include "core/ntfy.h"
#include "core/twilio.h"


static std::optional<twostep::Capability>
ngx_http_twostep_capability(ngx_http_twostep_page_t &p,
    const twostep::Fields &fields, twostep::Method method)
{
    auto cap = twostep::read_capability(*p.scf->keys,
                                        twostep::field(fields, "t"),
                                        ngx_time());
    if (!cap || cap->method != method) {
        return std::nullopt;
    }

    return cap;
}


static ngx_int_t
ngx_http_twostep_link_used(ngx_http_twostep_page_t &p)
{
    return ngx_http_twostep_send_message(p.r, NGX_HTTP_FORBIDDEN,
               "msg.link_used.title", "msg.link_used.text");
}


static ngx_int_t
ngx_http_twostep_approve_page(ngx_http_twostep_page_t &p,
    const twostep::Capability &cap, std::string_view token,
    ngx_uint_t status, std::string_view error)
{
    twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
    twostep::ApprovePage page;

    std::string_view host = ngx_http_twostep_sv(p.scf->public_url);
    host.remove_prefix(host.find("//") + 2);

    page.action = ngx_http_twostep_paths(p.scf).signin;
    page.action.resize(page.action.size() - (sizeof("signin") - 1));
    page.action += "approve";
    page.token = std::string(token);
    page.user = cap.user;
    page.site = ctx.site_name.empty() ? std::string(host) : ctx.site_name;
    page.error = std::string(error);

    // When the push went out: its transaction's expiry minus its life.
    ngx_tm_t  tm;
    u_char    buf[sizeof("1970-01-01 00:00 UTC")];
    ngx_gmtime(cap.expires - NGX_HTTP_TWOSTEP_OOB_TTL, &tm);
    u_char *last = ngx_sprintf(buf, "%4d-%02d-%02d %02d:%02d UTC",
                               tm.ngx_tm_year, tm.ngx_tm_mon, tm.ngx_tm_mday,
                               tm.ngx_tm_hour, tm.ngx_tm_min);
    page.time = std::string(reinterpret_cast<char *>(buf), last - buf);
    page.address = cap.address;
    page.test = cap.test;

    return ngx_http_twostep_send_page(p.r, status,
               twostep::render_approve(ctx, page));
}


static ngx_int_t ngx_http_twostep_phone_fraud(ngx_http_twostep_page_t &p,
    const twostep::Capability &cap, std::function<ngx_int_t()> then);


// The phone's answer may not have been kept (twostep_redis did not
// answer, or timed out after it was written): the phone is told so, not
// that it worked. A report of fraud is logged and paused all the same, on
// this host (and in Redis if it takes it): never lost to a slow Redis.
static ngx_int_t
ngx_http_twostep_not_recorded(ngx_http_twostep_page_t &p,
    const twostep::Capability &cap)
{
    ngx_http_request_t *r = p.r;
    auto told = [r]() {
        return ngx_http_twostep_send_message(r, NGX_HTTP_SERVICE_UNAVAILABLE,
                   "msg.not_recorded.title", "msg.not_recorded.text");
    };

    if (cap.test || twostep::field(p.form, "action") != "fraud") {
        return told();
    }

    return ngx_http_twostep_phone_fraud(p, cap, told);
}


// The phone reported the sign-in ("I didn't try to sign in", 0 on a
// call): logged, counted, and pushes and calls pause for the user (NIST
// SP 800-63B 5.1.3.1), whether or not the browser ever asks again.
static ngx_int_t
ngx_http_twostep_phone_fraud(ngx_http_twostep_page_t &p,
    const twostep::Capability &cap, std::function<ngx_int_t()> then)
{
    ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                         cap.method == twostep::Method::call
                         ? "sign-in reported as fraud on the call"
                         : "sign-in reported as fraud on the approval page",
                         cap.user);
    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_FRAUD, cap.user, cap.method,
                           NGX_HTTP_TWOSTEP_FAILED);

    const twostep::User *user = p.scf->store->users->find(cap.user);
    if (user == nullptr) {
        return then();  // gone: nothing of theirs can ring
    }

    return ngx_http_twostep_pause_phone(p.r, p.scf, *user, std::move(then));
}


static ngx_int_t ngx_http_twostep_approve_answer(ngx_http_twostep_page_t &p,
    const twostep::Capability &cap, std::string_view token);


ngx_int_t
ngx_http_twostep_approve(ngx_http_twostep_page_t &p)
{
    bool post = p.r->method == NGX_HTTP_POST;
    const twostep::Fields &fields = post ? p.form : p.query;

    auto cap = ngx_http_twostep_capability(p, fields, twostep::Method::push);
    if (!cap) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "approval link forged or expired", "");
        return ngx_http_twostep_link_used(p);
    }

    std::string token(twostep::field(fields, "t"));

    // With twostep_redis the push may have gone out from another host.
    return ngx_http_twostep_read_approval(p.r, cap->txid,
        [p, cap, token, post](std::optional<twostep::Approval> a) mutable {
            if (!a) {
                if (!post) {
                    return ngx_http_twostep_unavailable(p.r);
                }

                return ngx_http_twostep_not_recorded(p, *cap);
            }

            if (*a != twostep::Approval::waiting) {
                ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                                     "approval link used again", cap->user);
                return ngx_http_twostep_link_used(p);
            }

            if (!post) {
                return ngx_http_twostep_approve_page(p, *cap, token,
                                                     NGX_HTTP_OK, "");
            }

            return ngx_http_twostep_approve_answer(p, *cap, token);
        });
}


// Approve with the number, Deny, or "I didn't try to sign in".
static ngx_int_t
ngx_http_twostep_approve_answer(ngx_http_twostep_page_t &p,
    const twostep::Capability &cap, std::string_view token)
{
    twostep::Approval to = twostep::Approval::denied;
    bool test = cap.test;
    const char *title = test ? "msg.test_refused.title" : "msg.refused.title";
    const char *text = test ? "msg.test_refused.text" : "msg.refused.text";
    std::string_view action = twostep::field(p.form, "action");

    if (action == "fraud" && !test) {
        to = twostep::Approval::fraud;
        title = "msg.fraud_reported.title";
        text = "msg.fraud_reported.text";

    } else if (action != "deny" && action != "fraud") {
        switch (twostep::ntfy::check_match(
                    twostep::match_number(*p.scf->keys, cap.txid),
                    twostep::field(p.form, "number")))
        {
        case twostep::ntfy::Match::approve:
            to = twostep::Approval::approved;
            title = test ? "msg.test_approved.title" : "msg.approved.title";
            text = test ? "msg.test_approved.text" : "msg.approved.text";
            break;

        case twostep::ntfy::Match::wrong_number:
            to = twostep::Approval::wrong_number;
            text = test ? "msg.test_wrong_number.text"
                        : "msg.wrong_number.text";
            break;

        default: /* unreadable: ask again, nothing changes */
            return ngx_http_twostep_approve_page(p, cap, token,
                       NGX_HTTP_BAD_REQUEST,
                       test ? "approve.test.error.number"
                            : "approve.error.number");
        }
    }

    // The first answer wins, on whichever host it arrives.
    return ngx_http_twostep_decide_approval(p.r, cap.txid, to, cap.expires,
        [p, cap, to, title, text](twostep::Decided decided) mutable {
            if (decided == twostep::Decided::already
                || decided == twostep::Decided::missing)
            {
                ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                                     "approval link used again", cap.user);
                return ngx_http_twostep_link_used(p);
            }

            if (decided != twostep::Decided::ok) {
                return ngx_http_twostep_not_recorded(p, cap);
            }

            ngx_http_request_t *r = p.r;
            auto answered = [r, to, title, text]() {
                return ngx_http_twostep_send_message(r,
                           to == twostep::Approval::approved
                           ? NGX_HTTP_OK : NGX_HTTP_FORBIDDEN,
                           title, text);
            };

            if (cap.test) {
                // The set-up page learns the answer and says what was
                // saved.
                if (to != twostep::Approval::approved) {
                    ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                        to == twostep::Approval::wrong_number
                        ? "wrong number on a test notification"
                        : "test notification denied on the phone",
                        cap.user);
                }

            } else if (to == twostep::Approval::fraud) {
                return ngx_http_twostep_phone_fraud(p, cap, answered);

            } else if (to == twostep::Approval::wrong_number) {
                ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                                     "wrong number on the approval page: "
                                     "possible push fatigue attack",
                                     cap.user);
                ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SIGNIN, cap.user,
                                       "push", NGX_HTTP_TWOSTEP_FAILED);

            } else if (to == twostep::Approval::denied) {
                ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                                     "push denied on the phone", cap.user);
            }

            return answered();
        });
}


ngx_int_t
ngx_http_twostep_deny(ngx_http_twostep_page_t &p)
{
    if (p.r->method != NGX_HTTP_POST) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    auto cap = ngx_http_twostep_capability(p, p.query, twostep::Method::push);
    if (!cap) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "deny link forged, expired or used again", "");
        return NGX_HTTP_FORBIDDEN;
    }

    return ngx_http_twostep_decide_approval(p.r, cap->txid,
                                            twostep::Approval::denied,
                                            cap->expires,
        [p, cap](twostep::Decided decided) {
            if (decided == twostep::Decided::unavailable) {
                return static_cast<ngx_int_t>(NGX_HTTP_SERVICE_UNAVAILABLE);
            }

            if (decided != twostep::Decided::ok) {
                ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                                     "deny link forged, expired or used "
                                     "again", cap->user);
                return static_cast<ngx_int_t>(NGX_HTTP_FORBIDDEN);
            }

            ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                                 cap->test
                                 ? "test notification denied on the phone"
                                 : "push denied on the phone",
                                 cap->user);
            return ngx_http_twostep_send_text(p.r, "text/plain",
                                              "denied\n");
        });
}


ngx_int_t
ngx_http_twostep_call_answered(ngx_http_twostep_page_t &p)
{
    if (p.r->method != NGX_HTTP_POST || p.scf->twilio == NULL) {
        return NGX_HTTP_NOT_ALLOWED;
    }

    // Twilio signs the URL it was given: the public URL, then the
    // request target exactly as sent (path and query).
    std::string url = std::string(ngx_http_twostep_sv(p.scf->public_url))
                      + std::string(ngx_http_twostep_sv(p.r->unparsed_uri));
    std::string_view token = ngx_http_twostep_sv(p.scf->twilio_token);

    if (!twostep::twilio::signature_ok(token, url, p.form,
            ngx_http_twostep_request_header(p.r, "X-Twilio-Signature")))
    {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "call-back without a valid Twilio signature",
                             "");
        return NGX_HTTP_FORBIDDEN;
    }

    auto cap = ngx_http_twostep_capability(p, p.query, twostep::Method::call);
    if (!cap) {
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "call-back token forged or expired", "");
        return NGX_HTTP_FORBIDDEN;
    }

    twostep::twilio::Keypress key = twostep::twilio::parse_keypress(p.form,
        ngx_http_twostep_sv(p.scf->twilio_account));

    twostep::Approval to = twostep::Approval::denied;

    switch (key.answer) {
    case twostep::twilio::Answer::approve:
        to = twostep::Approval::approved;
        break;

    case twostep::twilio::Answer::fraud:
        to = twostep::Approval::fraud;
        break;

    case twostep::twilio::Answer::malformed:
        ngx_log_error(NGX_LOG_WARN, p.r->connection->log, 0,
                      "twostep: malformed call-back: %s", key.error.c_str());
        return NGX_HTTP_BAD_REQUEST;

    default: /* deny, no_input */
        break;
    }

    // The first answer wins, on whichever host Twilio reaches: a replayed
    // call-back is refused.
    return ngx_http_twostep_decide_approval(p.r, cap->txid, to, cap->expires,
        [p, cap, to](twostep::Decided decided) mutable {
            if (decided == twostep::Decided::already) {
                ngx_http_twostep_log(p.r, NGX_LOG_WARN, "call-back replayed",
                                     cap->user);
            }

            if (decided == twostep::Decided::unavailable) {
                if (to != twostep::Approval::fraud) {
                    return static_cast<ngx_int_t>(
                               NGX_HTTP_SERVICE_UNAVAILABLE);
                }

                // Key 0 is paused and logged even so (Redis may have kept
                // it: a time-out after the write).
                return ngx_http_twostep_phone_fraud(p, *cap, []() {
                    return static_cast<ngx_int_t>(
                               NGX_HTTP_SERVICE_UNAVAILABLE);
                });
            }

            if (decided != twostep::Decided::ok) {
                return static_cast<ngx_int_t>(NGX_HTTP_FORBIDDEN);
            }

            ngx_http_request_t *r = p.r;
            auto goodbye = [r, to]() {
                twostep::PageContext ctx = ngx_http_twostep_page_ctx(r);

                return ngx_http_twostep_send_text(r, "text/xml",
                           twostep::twilio::goodbye_twiml(
                               ctx.text("phone.call.language"),
                               ctx.text(to == twostep::Approval::approved
                                            ? "phone.call.approved"
                                            : "phone.call.denied")));
            };

            if (to != twostep::Approval::fraud) {
                return goodbye();
            }

            return ngx_http_twostep_phone_fraud(p, *cap, goodbye);
        });
}
