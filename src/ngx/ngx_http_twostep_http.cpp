// Requests and responses: cookies, redirects, pages, the session seen.

#include "ngx_http_twostep.h"

#include "core/form.h"
#include "core/pages.h"


// One name per ngx_http_twostep_cookie_e. On https the names carry the
// __Host- prefix: Secure, Path=/ and no Domain are then enforced by the
// browser, so a sibling subdomain cannot plant one (OWASP ASVS 3.4.4).
static ngx_str_t  ngx_http_twostep_cookie_names[] = {
    ngx_string("twostep_session"),
    ngx_string("twostep_pending"),
    ngx_string("twostep_device"),
    ngx_string("twostep_setup"),
    ngx_string("twostep_change"),
    ngx_string("__Host-twostep_session"),
    ngx_string("__Host-twostep_pending"),
    ngx_string("__Host-twostep_device"),
    ngx_string("__Host-twostep_setup"),
    ngx_string("__Host-twostep_change"),
};


static ngx_uint_t
ngx_http_twostep_cookie_slot(ngx_http_request_t *r,
    ngx_http_twostep_cookie_e which)
{
    ngx_uint_t  slot = which;

#if (NGX_HTTP_SSL)
    if (r->connection->ssl) {
        slot += NGX_HTTP_TWOSTEP_COOKIES;
    }
#endif

    return slot;
}


// Read from the Cookie headers with the exact name: nginx's $cookie_*
// ignore case, so "__HOST-twostep_session" would pass for ours. Two
// cookies of the name (one may be planted, and which one is ours cannot be
// told) count as none: the request fails closed.
std::string_view
ngx_http_twostep_find_cookie(ngx_http_request_t *r,
    ngx_http_twostep_cookie_e which)
{
    std::string_view  value;
    size_t            found = 0;

    std::string_view name = ngx_http_twostep_sv(
        ngx_http_twostep_cookie_names[ngx_http_twostep_cookie_slot(r,
                                                                   which)]);

#if (nginx_version >= 1023000)
    for (ngx_table_elt_t *h = r->headers_in.cookie; h; h = h->next) {
        found += twostep::find_cookie(ngx_http_twostep_sv(h->value), name,
                                      value);
    }
#else
    auto h = static_cast<ngx_table_elt_t **>(r->headers_in.cookies.elts);

    for (ngx_uint_t i = 0; i < r->headers_in.cookies.nelts; i++) {
        found += twostep::find_cookie(ngx_http_twostep_sv(h[i]->value), name,
                                      value);
    }
#endif

    return found == 1 ? value : std::string_view();
}


static ngx_table_elt_t *
ngx_http_twostep_add_header(ngx_http_request_t *r, std::string_view key,
    std::string_view value)
{
    ngx_table_elt_t  *h;
    u_char           *p;

    h = static_cast<ngx_table_elt_t *>(
            ngx_list_push(&r->headers_out.headers));
    if (h == NULL) {
        return NULL;
    }

    p = static_cast<u_char *>(ngx_pnalloc(r->pool, key.size() + value.size()));
    if (p == NULL) {
        h->hash = 0;
        return NULL;
    }

    h->hash = 1;
    h->key.data = p;
    h->key.len = key.size();
    p = ngx_cpymem(p, key.data(), key.size());
    h->value.data = p;
    h->value.len = value.size();
    ngx_memcpy(p, value.data(), value.size());
#if (nginx_version >= 1023000)
    h->next = NULL;
#endif

    return h;
}


// HttpOnly keeps scripts away from the tokens, SameSite=Lax keeps other
// sites' forms from carrying them (OWASP ASVS 3.4.2, 3.4.3). max_age < 0:
// a browser-session cookie; 0 clears it.
ngx_int_t
ngx_http_twostep_cookie_header(ngx_http_request_t *r,
    ngx_http_twostep_cookie_e which, std::string_view value, time_t max_age)
{
    ngx_uint_t   slot = ngx_http_twostep_cookie_slot(r, which);
    std::string  cookie(ngx_http_twostep_sv(
                            ngx_http_twostep_cookie_names[slot]));

    cookie += '=';
    cookie += value;
    cookie += "; Path=/; HttpOnly; SameSite=Lax";

    if (max_age >= 0) {
        cookie += "; Max-Age=" + std::to_string(max_age);
    }

    if (slot >= NGX_HTTP_TWOSTEP_COOKIES) {
        cookie += "; Secure";
    }

    return ngx_http_twostep_add_header(r, "Set-Cookie", cookie) ? NGX_OK
                                                                 : NGX_ERROR;
}


ngx_int_t
ngx_http_twostep_set_cookie(ngx_http_request_t *r, bool pending,
    std::string_view value)
{
    if (pending) {
        return ngx_http_twostep_cookie_header(r,
                   NGX_HTTP_TWOSTEP_COOKIE_PENDING, value,
                   NGX_HTTP_TWOSTEP_PENDING_TTL);
    }

    return ngx_http_twostep_cookie_header(r, NGX_HTTP_TWOSTEP_COOKIE_SESSION,
                                          value, -1);
}


ngx_int_t
ngx_http_twostep_set_location(ngx_http_request_t *r,
    std::string_view location)
{
    ngx_table_elt_t  *h;

    ngx_http_clear_location(r);

    h = ngx_http_twostep_add_header(r, "Location", location);
    if (h == NULL) {
        return NGX_ERROR;
    }

    r->headers_out.location = h;

    return NGX_OK;
}


static ngx_int_t
ngx_http_twostep_send_body(ngx_http_request_t *r, ngx_uint_t status,
    std::string_view type, const std::string &body)
{
    ngx_int_t     rc;
    ngx_buf_t    *b;
    ngx_chain_t   out;

    if (ngx_http_discard_request_body(r) != NGX_OK) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    // Pages carry form tokens: never cached, never framed (clickjacking),
    // no scripts at all, and no Referer that would leak return targets.
    static const std::pair<std::string_view, std::string_view> headers[] = {
        { "Cache-Control", "no-store" },
        { "X-Frame-Options", "DENY" },
        { "X-Content-Type-Options", "nosniff" },
        // same-origin, not no-referrer: with no-referrer browsers send
        // "Origin: null" on the pages' own form posts.
        { "Referrer-Policy", "same-origin" },
    };

    for (const auto &[key, value] : headers) {
        if (ngx_http_twostep_add_header(r, key, value) == NULL) {
            return NGX_HTTP_INTERNAL_SERVER_ERROR;
        }
    }

    // The stylesheet and script the server's theme sends, by their hashes.
    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(
                   ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));
    const std::string &policy = scf != NULL && scf->theme != NULL
                                ? scf->theme->security_policy()
                                : twostep::page_security_policy();

    if (ngx_http_twostep_add_header(r, "Content-Security-Policy", policy)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    r->headers_out.status = status;
    r->headers_out.content_length_n = body.size();
    r->headers_out.content_type.data = (u_char *) type.data();
    r->headers_out.content_type.len = type.size();
    r->headers_out.content_type_len = type.find(';') == std::string_view::npos
                                      ? type.size() : type.find(';');
    r->headers_out.content_type_lowcase = NULL;

    rc = ngx_http_send_header(r);

    if (rc == NGX_ERROR || rc > NGX_OK || r->header_only) {
        return rc;
    }

    b = ngx_create_temp_buf(r->pool, body.size());
    if (b == NULL) {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    b->last = ngx_cpymem(b->last, body.data(), body.size());
    b->last_buf = (r == r->main) ? 1 : 0;
    b->last_in_chain = 1;

    out.buf = b;
    out.next = NULL;

    return ngx_http_output_filter(r, &out);
}


twostep::PageContext
ngx_http_twostep_page_ctx(ngx_http_request_t *r)
{
    twostep::PageContext ctx;

    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(
                   ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));
    if (scf == NULL || scf->theme == NULL) {
        return ctx;
    }

    ctx.theme = scf->theme;
    ctx.lang = scf->language != NULL
               ? scf->language
               : &scf->theme->negotiate(
                     ngx_http_twostep_request_header(r, "Accept-Language"));
    ctx.site_name = std::string(ngx_http_twostep_sv(scf->site_name));
    return ctx;
}


ngx_int_t
ngx_http_twostep_send_page(ngx_http_request_t *r, ngx_uint_t status,
    const std::string &html)
{
    return ngx_http_twostep_send_body(r, status, "text/html; charset=utf-8",
                                      html);
}


ngx_int_t
ngx_http_twostep_send_json(ngx_http_request_t *r, const std::string &json)
{
    return ngx_http_twostep_send_body(r, NGX_HTTP_OK, "application/json",
                                      json);
}


ngx_int_t
ngx_http_twostep_send_text(ngx_http_request_t *r, std::string_view type,
    const std::string &text)
{
    return ngx_http_twostep_send_body(r, NGX_HTTP_OK, type, text);
}


// `filename` is ours, never the visitor's: a plain name needing no quoting.
ngx_int_t
ngx_http_twostep_send_download(ngx_http_request_t *r,
    std::string_view filename, const std::string &text)
{
    std::string disposition = "attachment; filename=\"";
    disposition += filename;
    disposition += '"';

    if (ngx_http_twostep_add_header(r, "Content-Disposition", disposition)
        == NULL)
    {
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }

    return ngx_http_twostep_send_body(r, NGX_HTTP_OK,
                                      "text/plain; charset=utf-8", text);
}


ngx_int_t
ngx_http_twostep_send_message(ngx_http_request_t *r, ngx_uint_t status,
    std::string_view title, std::string_view text)
{
    try {
        return ngx_http_twostep_send_page(r, status,
                   twostep::render_message(ngx_http_twostep_page_ctx(r),
                                           title, text));

    } catch (const std::exception &e) {
        ngx_log_error(NGX_LOG_ERR, r->connection->log, 0,
                      "twostep: rendering a page failed: %s", e.what());
        return NGX_HTTP_INTERNAL_SERVER_ERROR;
    }
}


std::string_view
ngx_http_twostep_request_header(ngx_http_request_t *r, std::string_view name)
{
    ngx_list_part_t  *part;
    ngx_table_elt_t  *h;
    ngx_uint_t        i;

    part = &r->headers_in.headers.part;
    h = static_cast<ngx_table_elt_t *>(part->elts);

    for (i = 0; /* void */; i++) {

        if (i >= part->nelts) {
            if (part->next == NULL) {
                break;
            }

            part = part->next;
            h = static_cast<ngx_table_elt_t *>(part->elts);
            i = 0;
        }

        if (h[i].key.len == name.size()
            && ngx_strncasecmp(h[i].key.data, (u_char *) name.data(),
                               name.size()) == 0)
        {
            return ngx_http_twostep_sv(h[i].value);
        }
    }

    return {};
}


// Throws std::bad_alloc if the pool is exhausted.
ngx_http_twostep_ctx_t *
ngx_http_twostep_get_ctx(ngx_http_request_t *r)
{
    ngx_http_twostep_ctx_t  *ctx;

    ctx = static_cast<ngx_http_twostep_ctx_t *>(
              ngx_http_get_module_ctx(r->main, ngx_http_twostep_module));

    if (ctx == NULL) {
        ctx = ngx_http_twostep_pool_new<ngx_http_twostep_ctx_t>(
                  r->main->pool);
        if (ctx == NULL) {
            throw std::bad_alloc();
        }

        ngx_http_set_ctx(r->main, ctx, ngx_http_twostep_module);
    }

    return ctx;
}


/*
 * The session the request's cookie stands for, if it opens anything now: the
 * worker's session cache's own pointer (no reference counted, no
 * allocation), valid until this worker verifies another cookie, so only
 * within the handler that asked.
 */

static const std::shared_ptr<const twostep::Session> &
ngx_http_twostep_cookie_session(ngx_http_request_t *r)
{
    static const std::shared_ptr<const twostep::Session>  none;

    ngx_http_twostep_srv_conf_t  *scf;

    scf = static_cast<ngx_http_twostep_srv_conf_t *>(
              ngx_http_get_module_srv_conf(r, ngx_http_twostep_module));

    std::string_view cookie = ngx_http_twostep_find_cookie(r,
                                  NGX_HTTP_TWOSTEP_COOKIE_SESSION);

    if (scf->keys == NULL || cookie.empty()) {
        return none;
    }

    // Each worker keeps the cookies it verified lately (in its own copy of
    // the configuration, made on first use); without it nothing is trusted.
    if (scf->sessions == NULL) {
        scf->sessions = ngx_http_twostep_pool_new<twostep::SessionCache>(
                            ngx_cycle->pool);
        if (scf->sessions == NULL) {
            return none;
        }
    }

    time_t now = ngx_time();

    // A cheap stat at most once a second notices a store another process
    // changed (ASVS 3.3.3), without a portal request.
    if (scf->store) {
        ngx_http_twostep_watch_store(scf->store, r->connection->log);
    }

    // No zone lock unless a session was revoked since this worker last
    // looked, no user look-up unless the store was reloaded since, and no
    // allocation: the hot path. Removed from the store, or a new password
    // or authenticator since: the cookie opens nothing (and so with a
    // store that changed and does not load).
    ngx_http_twostep_zone_state state(r);
    const auto &session = scf->sessions->verified(
        *scf->keys, state,
        scf->store && !scf->store->stale ? scf->store->users.get() : nullptr,
        cookie, now);

    // Past the current twostep_session_ttl: the cookie opens nothing
    // either. (Sign-outs elsewhere: verified().)
    if (session && twostep::session_within(*session, scf->session_ttl, now)) {
        return session;
    }

    return none;
}


const twostep::Session *
ngx_http_twostep_session(ngx_http_request_t *r)
{
    ngx_http_twostep_ctx_t  *ctx;

    ctx = ngx_http_twostep_get_ctx(r);

    if (!ctx->session_checked) {
        ctx->session_checked = true;
        ctx->session = ngx_http_twostep_cookie_session(r);
    }

    return ctx->session.get();
}


const twostep::Session *
ngx_http_twostep_session_now(ngx_http_request_t *r)
{
    auto ctx = static_cast<ngx_http_twostep_ctx_t *>(
                   ngx_http_get_module_ctx(r->main, ngx_http_twostep_module));

    if (ctx && ctx->session_checked) {
        return ctx->session.get();
    }

    return ngx_http_twostep_cookie_session(r).get();
}
