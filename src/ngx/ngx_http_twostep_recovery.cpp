// Recovery codes (NIST SP 800-63B 5.1.2 look-up secrets): verify POST
// with method=recovery.

#include "ngx_http_twostep_factor.h"

#include "core/enroll.h"
#include "core/store_file.h"

#include <algorithm>


// How long a used recovery code is remembered in Redis: longer than any
// copy of the store file should lag behind (OWASP ASVS 2.6.1: used once).
#define NGX_HTTP_TWOSTEP_RECOVERY_USED_TTL  (366 * 86400)


// A wrong recovery code: the lock page (the longer lock of this host's
// and every host's), the form again, or 503 when Redis could not count it.
static ngx_int_t
ngx_http_twostep_recovery_wrong(ngx_http_twostep_page_t &page,
    const twostep::PendingSignin &signin, const std::string &name,
    int64_t locked, int64_t shared_locked)
{
    if (shared_locked < 0) {
        return ngx_http_twostep_unavailable(page.r);
    }

    locked = std::max(locked, shared_locked);

    if (locked > 0) {
        return ngx_http_twostep_locked(page.r, name, locked, "recovery");
    }

    const twostep::User *user = page.scf->store->users->find(name);
    if (user == nullptr) {
        return NGX_HTTP_FORBIDDEN;
    }

    ngx_http_twostep_log(page.r, NGX_LOG_WARN, "wrong recovery code", name);
    ngx_http_twostep_audit(page.r, NGX_HTTP_TWOSTEP_SIGNIN, name, "recovery",
                           NGX_HTTP_TWOSTEP_FAILED);

    twostep::CodePage form = ngx_http_twostep_code_form(page, signin, *user,
        twostep::Method::recovery,
        ngx_http_twostep_offered(page, signin, *user));
    form.error = "error.recovery_wrong";

    return ngx_http_twostep_send_page(page.r, NGX_HTTP_FORBIDDEN,
               twostep::render_code(ngx_http_twostep_page_ctx(page.r), form));
}


// A wrong code, counted on this host (`locked`): counted on every host
// too (twostep_redis), then the lock or the form again.
static ngx_int_t
ngx_http_twostep_recovery_counted(ngx_http_twostep_page_t &page,
    const twostep::PendingSignin &signin, const std::string &name,
    int64_t locked)
{
    return ngx_http_twostep_shared_locked(page.r, page.scf, name,
               ngx_http_twostep_address(page.r), true,
        [page, signin, name, locked](int64_t left) mutable {
            return ngx_http_twostep_recovery_wrong(page, signin, name,
                                                   locked, left);
        });
}


// verify POST with method=recovery: the code is used up in the file, under
// its lock, so no other worker accepts it again (OWASP ASVS 2.6.1).
static ngx_int_t
ngx_http_twostep_recovery_verify(ngx_http_twostep_page_t &p,
    const twostep::PendingSignin &pending, const twostep::User &user,
    twostep::Method)
{
    ngx_http_twostep_zone_state state(p.r);
    int64_t locked = twostep::begin_attempt(state,
                                            ngx_http_twostep_lockout(p.scf),
                                            user.name,
                                            ngx_http_twostep_address(p.r),
                                            ngx_time());
    if (locked > 0) {
        return ngx_http_twostep_locked(p.r, user.name, locked, "recovery");
    }

    auto matched = std::make_shared<bool>(false);
    std::string path = p.scf->store->path;
    std::string name = user.name;
    std::string code(twostep::field(p.form, "code"));

    ngx_http_twostep_page_t page = p;
    page.form.clear();
    twostep::PendingSignin signin = pending;

    return ngx_http_twostep_offload(p.r, p.scf->thread_pool,
        [matched, path, name, code] {
            std::string error;
            auto file = twostep::StoreFile::open(path, error);
            *matched = file && file->use_recovery_code(name, code)
                       && file->commit(error);
        },
        [matched, page, signin, name, code]() mutable -> ngx_int_t {
            std::string code_hash = twostep::recovery_hash(code);
            ngx_http_twostep_refresh_store(page.scf->store,
                                           page.r->connection->log);

            const twostep::User *user = page.scf->store->users->find(name);
            if (user == nullptr) {
                return NGX_HTTP_FORBIDDEN;
            }

            ngx_http_twostep_zone_state state(page.r);
            int64_t locked = twostep::end_attempt(state,
                                 ngx_http_twostep_lockout(page.scf), name,
                                 ngx_http_twostep_address(page.r), !*matched,
                                 ngx_time());

            if (!*matched) {
                return ngx_http_twostep_recovery_counted(page, signin, name,
                                                         locked);
            }

            // Used once on every host too (twostep_redis): another host's
            // copy of the store file may hold the code a while longer.
            // Redis gets a keyed hash of user and code, never the code.
            return ngx_http_twostep_shared_claim_transaction(page.r,
                "recovery " + page.scf->keys->mac("recovery-used|" + name
                                                  + "|" + code_hash),
                ngx_time() + NGX_HTTP_TWOSTEP_RECOVERY_USED_TTL,
                [page, signin, name](twostep::Claim claim) mutable {
                    const twostep::User *user =
                        page.scf->store->users->find(name);
                    if (user == nullptr) {
                        return static_cast<ngx_int_t>(NGX_HTTP_FORBIDDEN);
                    }

                    if (claim == twostep::Claim::fresh) {
                        ngx_http_twostep_log(page.r, NGX_LOG_NOTICE,
                                             "recovery code used", name);
                        return ngx_http_twostep_finish_signin(page, signin,
                                   *user, twostep::Method::recovery);
                    }

                    if (claim != twostep::Claim::replayed) {
                        return ngx_http_twostep_unavailable(page.r);
                    }

                    // Used on another host: a wrong code here.
                    ngx_http_twostep_zone_state state(page.r);
                    int64_t locked = twostep::record_failure(state,
                        ngx_http_twostep_lockout(page.scf), name,
                        ngx_http_twostep_address(page.r), ngx_time());
                    return ngx_http_twostep_recovery_counted(page, signin,
                                                             name, locked);
                });
        },
        [r = p.r, scf = p.scf, name] {
            return ngx_http_twostep_release_attempt(r, scf, name);
        });
}


const ngx_http_twostep_factor_t  ngx_http_twostep_recovery_factor = {
    "recovery",
    twostep::method_bit(twostep::Method::recovery),
    NULL,
    ngx_http_twostep_recovery_verify,
    NULL
};
