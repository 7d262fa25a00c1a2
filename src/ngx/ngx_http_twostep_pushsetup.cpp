// "Set up push notifications" (security info, ntfy): a random topic the
// user's phone subscribes to, a test push approved on the approval page
// with number matching, and only then the topic in the user's store entry.
//
//   push-setup POST action=start   a new topic (needs a fresh second step)
//              GET                 how to subscribe: QR code, server, topic
//              POST action=send    the test push, then the waiting page
//              GET  check=1        approved: saved; denied, a wrong number
//                                  or too late: nothing saved, say why
//              GET  status=1       JSON for the waiting page's script
//              POST action=remove  no more push (needs a fresh second step)
//
// The set-up lives in a cookie of its own (twostep::PushSetup: the topic,
// the session it belongs to, the test push's transaction, ten minutes),
// never in a URL, which access logs keep: whoever knows a topic can read
// it. The test push's transaction is opened, decided and claimed like a
// sign-in's (approval.h), so its approval saves once (NIST SP 800-63B
// 5.1.3.1: the out-of-band device proves it is bound before it counts).

#include "ngx_http_twostep_flow.h"

#include "core/approval.h"
#include "core/enroll.h"
#include "core/guard.h"
#include "core/ntfy.h"
#include "core/store_file.h"


// How long a set-up may take, from "Set up push notifications" to the
// approved test push.
#define NGX_HTTP_TWOSTEP_PUSH_SETUP_TTL  600


// The test push in flight to ntfy, with what its answer needs.
struct ngx_http_twostep_push_setup_call_t {
    ngx_http_twostep_page_t  page;
    twostep::PushSetup       setup;
};


static std::string
ngx_http_twostep_setup_url(ngx_http_twostep_page_t &p)
{
    return std::string(ngx_http_twostep_sv(p.scf->portal_uri))
           + "push-setup";
}


static std::string
ngx_http_twostep_info_url(ngx_http_twostep_page_t &p)
{
    return std::string(ngx_http_twostep_sv(p.scf->portal_uri))
           + "security-info";
}


// The set-up of this browser, if it belongs to this session.
static std::optional<twostep::PushSetup>
ngx_http_twostep_current_setup(ngx_http_twostep_page_t &p,
    const twostep::Session &session)
{
    auto setup = twostep::decode_push_setup(*p.scf->keys,
                     ngx_http_twostep_find_cookie(p.r,
                         NGX_HTTP_TWOSTEP_COOKIE_SETUP),
                     ngx_time());

    if (!setup || setup->sid != session.sid
        || setup->user != session.user)
    {
        return std::nullopt;
    }

    return setup;
}


static ngx_int_t
ngx_http_twostep_save_setup(ngx_http_twostep_page_t &p,
    const twostep::PushSetup &setup)
{
    return ngx_http_twostep_cookie_header(p.r, NGX_HTTP_TWOSTEP_COOKIE_SETUP,
               twostep::encode_push_setup(*p.scf->keys, setup),
               setup.expires - ngx_time());
}


// A page with a way back to security info.
static ngx_int_t
ngx_http_twostep_setup_message(ngx_http_twostep_page_t &p, ngx_uint_t status,
    std::string_view title, std::string_view text)
{
    return ngx_http_twostep_send_page(p.r, status,
               twostep::render_message(ngx_http_twostep_page_ctx(p.r), title,
                                       text, ngx_http_twostep_info_url(p),
                                       "push_setup.back"));
}


static ngx_int_t
ngx_http_twostep_setup_expired(ngx_http_twostep_page_t &p)
{
    return ngx_http_twostep_setup_message(p, NGX_HTTP_FORBIDDEN,
                                          "msg.push_setup_expired.title",
                                          "msg.push_setup_expired.text");
}


static ngx_int_t
ngx_http_twostep_setup_page(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::PushSetup &setup,
    ngx_uint_t status, std::string_view error)
{
    twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
    std::string_view server = ngx_http_twostep_sv(p.scf->ntfy_server);
    twostep::PushSetupPage page;

    page.setup = ngx_http_twostep_setup_url(p);
    page.manage = ngx_http_twostep_info_url(p);
    page.user = setup.user;
    page.server = std::string(server);
    page.topic = setup.topic;
    page.topic_url = twostep::ntfy::topic_url(server, setup.topic);
    page.qr_svg = twostep::qr_svg(twostep::ntfy::subscribe_link(server,
                                                                setup.topic),
                                  ctx.text("push_setup.qr_label"));
    // The security-info page's own form token: its buttons post here.
    page.form_token = p.scf->keys->mac("manage|" + session.sid);
    page.waiting = !setup.txid.empty();
    page.error = std::string(error);

    if (page.waiting) {
        page.number = std::to_string(twostep::match_number(*p.scf->keys,
                                                           setup.txid));
    }

    return ngx_http_twostep_send_page(p.r, status,
               twostep::render_push_setup(ctx, page));
}


// "Set up push notifications" pressed: a fresh topic (144 random bits,
// ntfy::new_topic()) for this session, shown until it is approved.
static ngx_int_t
ngx_http_twostep_setup_start(ngx_http_twostep_page_t &p,
    const twostep::Session &session)
{
    twostep::PushSetup setup;

    setup.sid = session.sid;
    setup.user = session.user;
    setup.topic = twostep::ntfy::new_topic();
    setup.expires = ngx_time() + NGX_HTTP_TWOSTEP_PUSH_SETUP_TTL;

    if (ngx_http_twostep_save_setup(p, setup) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_redirect(p.r, ngx_http_twostep_setup_url(p));
}


static void ngx_http_twostep_setup_sent(ngx_http_request_t *r,
    ngx_http_twostep_fetch_t *fetch, long status, const std::string &body)
    noexcept;


// The link a phone opens or POSTs to, with the test push's capability.
static std::string
ngx_http_twostep_setup_link(ngx_http_twostep_page_t &p,
    std::string_view page, std::string_view token)
{
    return std::string(ngx_http_twostep_sv(p.scf->public_url))
           + std::string(ngx_http_twostep_sv(p.scf->portal_uri))
           + std::string(page) + "?t=" + std::string(token);
}


// After a wait on Redis: the session and the user, as they are now.
static ngx_int_t
ngx_http_twostep_setup_again(ngx_http_twostep_page_t &p,
    const twostep::PushSetup &setup,
    const std::function<ngx_int_t(const twostep::Session &,
                                  const twostep::User &)> &next)
{
    const twostep::Session *session = ngx_http_twostep_session(p.r);
    if (session == nullptr || session->sid != setup.sid) {
        return NGX_HTTP_FORBIDDEN;
    }

    const twostep::User *user = p.scf->store->users->find(session->user);
    if (user == nullptr) {
        return NGX_HTTP_FORBIDDEN;
    }

    return next(*session, *user);
}


static ngx_int_t ngx_http_twostep_setup_publish(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::PushSetup setup, const std::string &txid, time_t expires);
static ngx_int_t ngx_http_twostep_setup_started(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::PushSetup setup, const std::string &txid, twostep::Start start);


// "Send a test notification": within the limits of every push (one at a
// time, three per ten minutes; with twostep_redis on every host), a
// transaction the approval page decides.
static ngx_int_t
ngx_http_twostep_setup_send(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::PushSetup setup)
{
    std::string txid = twostep::new_transaction_id();

    // The one-push-at-a-time slot a test push takes is its transaction's
    // from the start: a test still out gives way to a new one (whose link
    // then dies) by handing it its slot; if none may go out, it stays and
    // can still be approved. Any other push waiting (a sign-in's) keeps
    // the slot, whatever a stale or replayed set-up cookie names (OWASP
    // ASVS 2.8.x: one request waiting).
    return ngx_http_twostep_start_out_of_band(p.r, user.name, setup.txid,
        [p, setup, txid](twostep::Start start, int64_t) mutable {
            return ngx_http_twostep_setup_again(p, setup,
                [&](const twostep::Session &s, const twostep::User &u) {
                    return ngx_http_twostep_setup_started(p, s, u, setup,
                                                          txid, start);
                });
        },
        txid);
}


static ngx_int_t
ngx_http_twostep_setup_started(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::PushSetup setup, const std::string &txid, twostep::Start start)
{
    time_t now = ngx_time();

    const char *error = nullptr;
    ngx_uint_t status = NGX_HTTP_TOO_MANY_REQUESTS;

    switch (start) {
    case twostep::Start::ok:
        break;

    case twostep::Start::busy:
        error = "push_setup.error.waiting";
        break;

    case twostep::Start::too_many:
        ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                             "too many requests to the phone", user.name);
        error = "push_setup.error.too_many";
        break;

    default: /* twostep::Start::unavailable */
        error = "error.try_later";
        status = NGX_HTTP_SERVICE_UNAVAILABLE;
        break;
    }

    if (error) {
        return ngx_http_twostep_setup_page(p, session, setup, status, error);
    }

    if (!setup.txid.empty()) {
        ngx_http_twostep_close_approval(p.r, setup.txid, setup.expires);
        setup.txid.clear();
    }

    time_t expires = ngx_min(now + NGX_HTTP_TWOSTEP_OOB_TTL, setup.expires);

    return ngx_http_twostep_open_approval(p.r, txid, expires,
        [p, setup, txid, expires](bool opened) mutable {
            return ngx_http_twostep_setup_again(p, setup,
                [&](const twostep::Session &s, const twostep::User &u) {
                    if (!opened) {
                        ngx_http_twostep_end_out_of_band(p.r, u.name, txid);
                        return ngx_http_twostep_unavailable(p.r);
                    }

                    return ngx_http_twostep_setup_publish(p, s, u, setup,
                                                          txid, expires);
                });
        });
}


// The test push of an open transaction, to the topic being set up.
static ngx_int_t
ngx_http_twostep_setup_publish(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::PushSetup setup, const std::string &txid, time_t expires)
{
    time_t now = ngx_time();

    twostep::Capability cap;
    cap.txid = txid;
    cap.user = user.name;
    cap.method = twostep::Method::push;
    cap.expires = expires;
    cap.address = std::string(ngx_http_twostep_address(p.r));
    cap.test = true;
    std::string token = twostep::capability_token(*p.scf->keys, cap);

    twostep::PageContext ctx = ngx_http_twostep_page_ctx(p.r);
    std::string_view site = ngx_http_twostep_sv(p.scf->public_url);
    site.remove_prefix(site.find("//") + 2);

    twostep::PageData args;
    args.text("site_name", ctx.site_name.empty() ? std::string(site)
                                                 : ctx.site_name);
    args.text("user", user.name);

    twostep::OutOfBandMessage msg;
    msg.title = ctx.text("phone.push.test_title", args);
    msg.text = ctx.text("phone.push.test_message", args);
    msg.approve_label = ctx.text("phone.push.approve");
    msg.approve_url = ngx_http_twostep_setup_link(p, "approve", token);
    msg.deny_label = ctx.text("phone.push.deny");
    msg.deny_url = ngx_http_twostep_setup_link(p, "deny", token);

    // The ntfy provider builds the publish as for a sign-in, to the topic
    // being set up instead of the user's own.
    twostep::User phone = user;
    phone.ntfy_topic = setup.topic;
    twostep::ProviderRequest req = p.scf->ntfy->start(phone,
        twostep::Method::push, cap.address, msg, now);

    setup.txid = txid;

    auto call = ngx_http_twostep_pool_new<ngx_http_twostep_push_setup_call_t>(
                    p.r->pool);
    if (call == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    call->page = p;
    call->page.form.clear();
    call->setup = setup;

    ngx_http_twostep_fetch_req_t fetch;
    fetch.url = req.url;
    fetch.post = req.post;
    fetch.body = req.body;
    fetch.headers = req.headers;
    fetch.provider = twostep::metrics::Provider::ntfy;
    fetch.timeout_ms = p.scf->duo_timeout;

    if (ngx_http_twostep_fetch(p.r, fetch, ngx_http_twostep_setup_sent)
        != NGX_OK)
    {
        ngx_log_error(NGX_LOG_ERR, p.r->connection->log, 0,
                      "twostep: could not start a request to ntfy");
        ngx_http_twostep_close_approval(p.r, txid, expires);
        ngx_http_twostep_end_out_of_band(p.r, user.name, txid);
        setup.txid.clear();
        return ngx_http_twostep_setup_page(p, session, setup,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "push_setup.error.unavailable");
    }

    ngx_http_twostep_get_ctx(p.r)->push_setup_call = call;

    // A visitor who leaves ends the request, and with it the transfer.
    p.r->read_event_handler = ngx_http_test_reading;
    p.r->write_event_handler = ngx_http_request_empty_handler;

    return NGX_DONE;
}


// ntfy answered the test push's publish.
static ngx_int_t
ngx_http_twostep_setup_published(ngx_http_twostep_push_setup_call_t &call,
    long status, const std::string &body)
{
    ngx_http_twostep_page_t &p = call.page;
    twostep::PushSetup setup = call.setup;

    const twostep::Session *session = ngx_http_twostep_session(p.r);
    if (session == nullptr || session->sid != setup.sid) {
        return NGX_HTTP_FORBIDDEN;
    }

    twostep::ProviderAnswer res = p.scf->ntfy->read_start(status, body);

    if (res.failure != twostep::ProviderFailure::none) {
        ngx_log_error(NGX_LOG_ERR, p.r->connection->log, 0,
                      "twostep: ntfy: the test notification failed: %s%s%s",
                      twostep::failure_name(res.failure),
                      res.message.empty() ? "" : ": ", res.message.c_str());
        ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_PROVIDER_ERROR,
                               setup.user, "push", NGX_HTTP_TWOSTEP_ERROR);

        // It may have gone out all the same: its approval saves nothing.
        ngx_http_twostep_close_approval(p.r, setup.txid, setup.expires);
        ngx_http_twostep_end_out_of_band(p.r, setup.user, setup.txid);
        setup.txid.clear();

        return ngx_http_twostep_setup_page(p, *session, setup,
                                           NGX_HTTP_SERVICE_UNAVAILABLE,
                                           "push_setup.error.unavailable");
    }

    if (ngx_http_twostep_save_setup(p, setup) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_redirect(p.r, ngx_http_twostep_setup_url(p));
}


static void
ngx_http_twostep_setup_sent(ngx_http_request_t *r,
    ngx_http_twostep_fetch_t *fetch, long status, const std::string &body)
    noexcept
{
    ngx_http_twostep_fetch_answered(r,
        &ngx_http_twostep_ctx_t::push_setup_call, "test notification",
        [&](ngx_http_twostep_push_setup_call_t &call) {
            return ngx_http_twostep_setup_published(call, status, body);
        });
}


// Writes `topic` ("" removes it) as the user's ntfy topic, in the thread
// pool, then sends the browser back to security info with `done`.
static ngx_int_t
ngx_http_twostep_setup_store(ngx_http_twostep_page_t &p,
    const twostep::Session &session, std::string topic, std::string done)
{
    struct outcome {
        bool         saved = false;
        std::string  error;
    };

    auto result = std::make_shared<outcome>();
    std::string path = p.scf->store->path;
    std::string name = session.user;
    std::string sid = session.sid;

    ngx_http_twostep_page_t page = p;
    page.form.clear();

    return ngx_http_twostep_offload(p.r, p.scf->thread_pool,
        [result, path, name, topic] {
            auto file = twostep::StoreFile::open(path, result->error);
            if (!file) {
                return;
            }

            result->saved = file->set_ntfy_topic(name, topic, result->error)
                            && file->commit(result->error);
        },
        [result, page, sid, name, done]() mutable -> ngx_int_t {
            ngx_http_twostep_refresh_store(page.scf->store,
                                           page.r->connection->log);

            const twostep::Session *session =
                ngx_http_twostep_session(page.r);
            if (session == nullptr || session->sid != sid) {
                return NGX_HTTP_FORBIDDEN;
            }

            if (!result->saved) {
                ngx_log_error(NGX_LOG_WARN, page.r->connection->log, 0,
                              "twostep: security info change \"%s\" for "
                              "\"%s\" refused: %s", done.c_str(),
                              name.c_str(), result->error.c_str());
                ngx_http_twostep_audit(page.r, NGX_HTTP_TWOSTEP_SECURITY_INFO,
                                       name, done, NGX_HTTP_TWOSTEP_FAILED);
                return ngx_http_twostep_setup_message(page,
                           NGX_HTTP_SERVICE_UNAVAILABLE,
                           "msg.not_saved.title", "msg.not_saved.text");
            }

            ngx_log_error(NGX_LOG_NOTICE, page.r->connection->log, 0,
                          "twostep: security info changed (%s), "
                          "user: \"%s\"", done.c_str(), name.c_str());
            ngx_http_twostep_audit(page.r, NGX_HTTP_TWOSTEP_SECURITY_INFO,
                                   name, done, NGX_HTTP_TWOSTEP_PASSED);

            // The set-up is over, whatever it was.
            if (ngx_http_twostep_cookie_header(page.r,
                    NGX_HTTP_TWOSTEP_COOKIE_SETUP, {}, 0) != NGX_OK)
            {
                return NGX_HTTP_INTERNAL_SERVER_ERROR;
            }

            return ngx_http_twostep_redirect(page.r,
                       ngx_http_twostep_info_url(page) + "?done=" + done);
        });
}


static ngx_int_t ngx_http_twostep_setup_answered(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::PushSetup setup, bool json, twostep::Approval a);


// The waiting page asks: the test's answer, from whichever host the phone
// reached (twostep_redis).
static ngx_int_t
ngx_http_twostep_setup_check(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::PushSetup setup, bool json)
{
    if (setup.txid.empty()) {
        return ngx_http_twostep_setup_answered(p, session, user, setup, json,
                                               twostep::Approval::missing);
    }

    return ngx_http_twostep_read_approval(p.r, setup.txid,
        [p, setup, json](std::optional<twostep::Approval> a) mutable {
            if (!a) {
                return ngx_http_twostep_unavailable(p.r);
            }

            return ngx_http_twostep_setup_again(p, setup,
                [&](const twostep::Session &s, const twostep::User &u) {
                    return ngx_http_twostep_setup_answered(p, s, u, setup,
                                                           json, *a);
                });
        });
}


// Approved saves the topic, once; anything else saves nothing and lets the
// user send another test.
static ngx_int_t
ngx_http_twostep_setup_answered(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user,
    twostep::PushSetup setup, bool json, twostep::Approval a)
{
    if (json) {
        return ngx_http_twostep_send_json(p.r,
                   a == twostep::Approval::waiting
                       ? "{\"state\":\"waiting\"}"
                       : "{\"state\":\"done\"}");
    }

    if (setup.txid.empty()) {
        return ngx_http_twostep_redirect(p.r, ngx_http_twostep_setup_url(p));
    }

    if (a == twostep::Approval::waiting) {
        return ngx_http_twostep_setup_page(p, session, setup, NGX_HTTP_OK,
                                           "");
    }

    // Answered, or gone: its slot, if it still holds it, is free.
    ngx_http_twostep_end_out_of_band(p.r, user.name, setup.txid);

    if (a == twostep::Approval::approved) {
        // A new way to sign in is saved only within the freshness window,
        // like every other change (ASVS 4.0.3 V3.7.1): the set-up outlives
        // it, and someone at a browser left open must not add their phone.
        if (!ngx_http_twostep_fresh(&session)) {
            return ngx_http_twostep_setup_expired(p);
        }

        // Saved once, on any host (the set-up cookie works on every
        // one), so two hosts never both accept one confirmation; Redis not
        // answering saves nothing (503; NIST SP 800-63B 5.1.3.1, a device
        // is bound once).
        return ngx_http_twostep_claim_once(p.r, setup.txid,
                   "setup " + setup.txid, setup.expires,
            [p, setup](twostep::Claim claim) mutable {
                if (claim == twostep::Claim::replayed) {
                    return ngx_http_twostep_setup_expired(p);
                }

                if (claim != twostep::Claim::fresh) {
                    return ngx_http_twostep_unavailable(p.r);
                }

                return ngx_http_twostep_setup_again(p, setup,
                    [&](const twostep::Session &s, const twostep::User &) {
                        return ngx_http_twostep_setup_store(p, s,
                                                            setup.topic,
                                                            "push");
                    });
            });
    }

    const char *error = a == twostep::Approval::wrong_number
                        ? "push_setup.error.wrong_number"
                        : a == twostep::Approval::missing
                        ? "push_setup.error.timeout"
                        : "push_setup.error.denied";

    ngx_http_twostep_log(p.r, NGX_LOG_WARN,
                         "test notification not approved: nothing saved",
                         user.name);
    ngx_http_twostep_audit(p.r, NGX_HTTP_TWOSTEP_SECURITY_INFO, user.name,
                           "push", NGX_HTTP_TWOSTEP_FAILED);

    setup.txid.clear();

    if (ngx_http_twostep_save_setup(p, setup) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_setup_page(p, session, setup, NGX_HTTP_FORBIDDEN,
                                       error);
}


// "Remove": the last way to sign in stays (as for the other methods: the
// next sign-in would let whoever has the password set up their own).
static ngx_int_t
ngx_http_twostep_setup_remove(ngx_http_twostep_page_t &p,
    const twostep::Session &session, const twostep::User &user)
{
    twostep::MethodSet others =
        (user.methods() & ~twostep::method_bit(twostep::Method::recovery))
        | (ngx_http_twostep_self_hosted_methods(p.scf, user)
           & ~twostep::method_bit(twostep::Method::push));

    if (user.ntfy_topic.empty()) {
        return ngx_http_twostep_redirect(p.r, ngx_http_twostep_info_url(p));
    }

    if (p.scf->provider == NULL && others == 0) {
        return ngx_http_twostep_setup_message(p, NGX_HTTP_FORBIDDEN,
                                              "info.push.remove_label",
                                              "info.error.last_method");
    }

    return ngx_http_twostep_setup_store(p, session, "", "push-removed");
}


ngx_int_t
ngx_http_twostep_push_setup(ngx_http_twostep_page_t &p)
{
    if (!p.scf->enroll || p.scf->ntfy == NULL
        || !twostep::has_method(p.scf->accepted, twostep::Method::push))
    {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_NOT_FOUND,
                   "msg.not_found.title", "msg.not_found.text");
    }

    std::string info = ngx_http_twostep_info_url(p);
    const twostep::Session *session = ngx_http_twostep_session(p.r);

    if (session == nullptr) {
        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "signin", info,
                                               twostep::all_methods));
    }

    const twostep::User *user = p.scf->store->users->find(session->user);
    if (user == nullptr) {
        return NGX_HTTP_FORBIDDEN;
    }

    if (p.r->method != NGX_HTTP_POST) {
        auto setup = ngx_http_twostep_current_setup(p, *session);
        if (!setup) {
            return ngx_http_twostep_setup_expired(p);
        }

        bool json = twostep::field(p.query, "status") == "1";
        if (json || twostep::field(p.query, "check") == "1") {
            return ngx_http_twostep_setup_check(p, *session, *user, *setup,
                                                json);
        }

        return ngx_http_twostep_setup_page(p, *session, *setup, NGX_HTTP_OK,
                                           "");
    }

    if (!ngx_http_twostep_same_origin(p.r)
        || !p.scf->keys->mac_ok("manage|" + session->sid,
                                twostep::field(p.form, "form_token")))
    {
        return ngx_http_twostep_expired(p);
    }

    std::string_view action = twostep::field(p.form, "action");

    if (action == "send") {
        auto setup = ngx_http_twostep_current_setup(p, *session);
        if (!setup) {
            return ngx_http_twostep_setup_expired(p);
        }

        return ngx_http_twostep_setup_send(p, *session, *user, *setup);
    }

    if (action != "start" && action != "remove") {
        return ngx_http_twostep_send_message(p.r, NGX_HTTP_BAD_REQUEST,
                   "msg.bad_request.title", "msg.bad_request.change");
    }

    // A new topic or none: a change of security info, which needs a fresh
    // second step (step-up, OWASP ASVS 3.7.1) like every other.
    if (!ngx_http_twostep_fresh(session)) {
        return ngx_http_twostep_redirect(p.r,
                   ngx_http_twostep_portal_url(p.scf, "signin", info,
                                               twostep::all_methods));
    }

    return action == "start"
           ? ngx_http_twostep_setup_start(p, *session)
           : ngx_http_twostep_setup_remove(p, *session, *user);
}
