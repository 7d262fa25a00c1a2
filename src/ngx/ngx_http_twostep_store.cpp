// The user store file on a running nginx: workers reload it when it
// changes, and the self-service pages write it (in the thread pool, since
// StoreFile locks and fsyncs).

#include "ngx_http_twostep.h"

#include <pwd.h>
#include <grp.h>


static bool
ngx_http_twostep_same_file(const struct stat &a, const struct stat &b)
{
    return a.st_ino == b.st_ino && a.st_dev == b.st_dev
           && a.st_size == b.st_size
           && a.st_mtim.tv_sec == b.st_mtim.tv_sec
           && a.st_mtim.tv_nsec == b.st_mtim.tv_nsec;
}


void
ngx_http_twostep_refresh_store(ngx_http_twostep_store_t *store,
    ngx_log_t *log)
{
    struct stat  now;

    // One stat per portal request: the file is small and local, like a
    // static file nginx serves; protected requests never come here.
    if (stat(store->path.c_str(), &now) != 0
        || ngx_http_twostep_same_file(now, store->seen))
    {
        return;
    }

    std::string error;
    auto users = twostep::UserStore::load(store->path, error);

    store->seen = now;

    if (users == nullptr) {
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "twostep: the changed user store does not load, "
                      "keeping the previous one: %s", error.c_str());
        return;
    }

    store->users = std::move(users);

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "twostep: reloaded the user store \"%s\"",
                  store->path.c_str());
}


static bool
ngx_http_twostep_can_write(const struct stat &st, uid_t uid, gid_t gid)
{
    if (uid == 0) {
        return true;
    }

    if (st.st_uid == uid) {
        return st.st_mode & S_IWUSR;
    }

    if (st.st_gid == gid) {
        return st.st_mode & S_IWGRP;
    }

    return st.st_mode & S_IWOTH;
}


// nginx -t: self-service writes the store from the workers, which run as
// the "user" directive says (nobody when the master is root and says
// nothing). Warn when they could not write the file or its directory.
void
ngx_http_twostep_check_writable(ngx_conf_t *cf,
    const ngx_http_twostep_store_t *store)
{
    uid_t             uid;
    gid_t             gid;
    ngx_core_conf_t  *ccf;
    struct stat       file, dir;

    ccf = reinterpret_cast<ngx_core_conf_t *>(
              ngx_get_conf(cf->cycle->conf_ctx, ngx_core_module));

    if (geteuid() != 0) {
        return;  // workers run as this same user
    }

    if (ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        uid = ccf->user;
        gid = ccf->group;

    } else {
        struct passwd *pw = getpwnam(NGX_USER);
        if (pw == NULL) {
            return;
        }

        uid = pw->pw_uid;
        struct group *gr = getgrnam(NGX_GROUP);
        gid = gr ? gr->gr_gid : pw->pw_gid;
    }

    std::string directory = store->path.substr(0,
                                store->path.find_last_of('/') + 1);

    if (stat(store->path.c_str(), &file) != 0
        || stat(directory.c_str(), &dir) != 0)
    {
        return;
    }

    if (!ngx_http_twostep_can_write(file, uid, gid)
        || !ngx_http_twostep_can_write(dir, uid, gid))
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"twostep_enroll\" is on but nginx's worker "
                           "user (uid %d) cannot write \"%s\" and its "
                           "directory: users cannot save their security "
                           "info (see the README: the user store)",
                           (int) uid, store->path.c_str());
    }
}
