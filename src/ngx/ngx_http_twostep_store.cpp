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


// At most one stat a second per worker on the access path, so a new
// password or a removed user ends sessions on every worker within about a
// second (OWASP ASVS 3.3.3) at the cost of one system call, no lock and no
// allocation while the file stays the same.
void
ngx_http_twostep_watch_store(ngx_http_twostep_store_t *store,
    ngx_log_t *log)
{
    if (store->looked != ngx_time()) {
        ngx_http_twostep_refresh_store(store, log);
    }
}


void
ngx_http_twostep_refresh_store(ngx_http_twostep_store_t *store,
    ngx_log_t *log)
{
    struct stat  now;

    store->looked = ngx_time();

    // One stat per portal request: the file is small and local, like a
    // static file nginx serves.
    if (stat(store->path.c_str(), &now) != 0) {
        if (ngx_errno != NGX_ENOENT && ngx_errno != NGX_ENOTDIR) {
            return;  // cannot look (nginx -t warned): reload picks it up
        }

        ngx_memzero(&now, sizeof(struct stat));  // removed: a change
    }

    if (ngx_http_twostep_same_file(now, store->seen)) {
        return;
    }

    std::string error;
    auto users = twostep::UserStore::load(store->path, error);

    store->seen = now;

    if (users == nullptr) {
        // Whatever changed may have ended sessions: honour none until the
        // file loads again (it is looked at again when it changes).
        store->stale = true;
        ngx_log_error(NGX_LOG_ERR, log, 0,
                      "twostep: the user store changed but does not load, "
                      "no session is accepted until it does or nginx is "
                      "reloaded: %s", error.c_str());
        return;
    }

    store->users = std::move(users);
    store->stale = false;

    ngx_log_error(NGX_LOG_NOTICE, log, 0,
                  "twostep: reloaded the user store \"%s\"",
                  store->path.c_str());
}


// Whether a process of `uid`/`gid` may access a file of `st` as `bits`
// (S_IRUSR or S_IWUSR), by the file's permission bits.
static bool
ngx_http_twostep_may(const struct stat &st, uid_t uid, gid_t gid,
    mode_t bits)
{
    if (uid == 0) {
        return true;
    }

    if (st.st_uid == uid) {
        return st.st_mode & bits;
    }

    if (st.st_gid == gid) {
        return st.st_mode & (bits >> 3);
    }

    return st.st_mode & (bits >> 6);
}


// The user and group nginx's workers will run as: the "user" directive, or
// nobody when the master is root and says nothing. False when they are
// this process's own (not root) or cannot be told.
static bool
ngx_http_twostep_worker_user(ngx_conf_t *cf, uid_t *uid, gid_t *gid)
{
    ngx_core_conf_t  *ccf;

    if (geteuid() != 0) {
        return false;  // workers run as this same user
    }

    ccf = reinterpret_cast<ngx_core_conf_t *>(
              ngx_get_conf(cf->cycle->conf_ctx, ngx_core_module));

    if (ccf->user != (ngx_uid_t) NGX_CONF_UNSET_UINT) {
        *uid = ccf->user;
        *gid = ccf->group;
        return true;
    }

    struct passwd *pw = getpwnam(NGX_USER);
    if (pw == NULL) {
        return false;
    }

    struct group *gr = getgrnam(NGX_GROUP);
    *uid = pw->pw_uid;
    *gid = gr ? gr->gr_gid : pw->pw_gid;
    return true;
}


// nginx -t. The workers look at the store to notice changes, and with
// twostep_enroll on they write it: warn when they could not.
void
ngx_http_twostep_check_store_access(ngx_conf_t *cf,
    const ngx_http_twostep_store_t *store, bool enroll)
{
    uid_t        uid;
    gid_t        gid;
    struct stat  file, dir;

    std::string directory = store->path.substr(0,
                                store->path.find_last_of('/') + 1);

    if (!ngx_http_twostep_worker_user(cf, &uid, &gid)
        || stat(store->path.c_str(), &file) != 0
        || stat(directory.c_str(), &dir) != 0)
    {
        return;
    }

    if (!ngx_http_twostep_may(file, uid, gid, S_IRUSR)
        || !ngx_http_twostep_may(dir, uid, gid, S_IXUSR))
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "nginx's worker user (uid %d) cannot read "
                           "\"%s\": changes to it end no session until "
                           "nginx is reloaded, and none is accepted "
                           "meanwhile (see the README: the user store)",
                           (int) uid, store->path.c_str());
    }

    if (!enroll) {
        return;
    }

    if (!ngx_http_twostep_may(file, uid, gid, S_IWUSR)
        || !ngx_http_twostep_may(dir, uid, gid, S_IWUSR))
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"twostep_enroll\" is on but nginx's worker "
                           "user (uid %d) cannot write \"%s\" and its "
                           "directory: users cannot save their security "
                           "info (see the README: the user store)",
                           (int) uid, store->path.c_str());
        return;
    }

    // Writers take turns with a lock on this file (store_file.h): one the
    // workers cannot open refuses every save with "Could not save".
    std::string lock = store->path + ".lock";
    struct stat  lst;

    if (stat(lock.c_str(), &lst) == 0
        && !ngx_http_twostep_may(lst, uid, gid, S_IRUSR))
    {
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"twostep_enroll\" is on but nginx's worker "
                           "user (uid %d) cannot open the lock file "
                           "\"%s\": users cannot save their security "
                           "info; give it the store's group and mode, or "
                           "run twostep-user as root once (see the README: "
                           "the user store)", (int) uid, lock.c_str());
    }
}
