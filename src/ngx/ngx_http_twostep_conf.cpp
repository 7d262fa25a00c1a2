// The directive setters (ngx_http_twostep_conf.h): each directive's
// arguments checked as nginx reads them, so "nginx -t" names a bad value.
// What only makes sense once a block is complete (a provider with all its
// parts, twostep_identity next to its auth module) is checked at merge
// time, in the module file.

#include "ngx_http_twostep_conf.h"

#include <cstdio>

#include "core/return_to.h"


// Inside a catch (...): what was thrown, for the log.
const char *
ngx_http_twostep_what() noexcept
{
    try {
        throw;

    } catch (const std::exception &e) {
        return e.what();

    } catch (...) {
        return "unknown exception";
    }
}


// A configuration callback that threw fails nginx -t with the reason,
// never unwinds through nginx's C frames.
char *
ngx_http_twostep_conf_failed(ngx_conf_t *cf, ngx_command_t *cmd) noexcept
{
    if (cmd != NULL) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "twostep: \"%V\": %s",
                           &cmd->name, ngx_http_twostep_what());

    } else {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "twostep: %s",
                           ngx_http_twostep_what());
    }

    return static_cast<char *>(NGX_CONF_ERROR);
}


// twostep_webauthn_rp_id NAME: the domain security keys and passkeys are
// registered for (WebAuthn Level 2 §5.1.2: a registrable domain suffix of
// the origin's host, never an IP address).
char *
ngx_http_twostep_webauthn_rp_id(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
try {
    char *rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    auto value = static_cast<ngx_str_t *>(cf->args->elts);
    std::string_view name = ngx_http_twostep_sv(value[1]);

    bool letter = false;
    bool ok = !name.empty() && name.size() <= 253 && name.front() != '.'
              && name.back() != '.' && name.front() != '-';

    for (char c : name) {
        letter |= (c >= 'a' && c <= 'z') || c == '-';
        ok = ok && ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
                    || c == '.' || c == '-');
    }

    if (!ok || !letter) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be a lower-case domain name such as "
                           "\"example.com\", not \"%V\" (an IP address "
                           "cannot be a WebAuthn RP ID)", &cmd->name,
                           &value[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// twostep_templates DIR: the built-in pages with the administrator's files
// in their place, loaded and checked now so that "nginx -t" names a broken
// file (unknown placeholders, missing texts, unreadable files).
char *
ngx_http_twostep_templates(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
try {
    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(conf);
    auto value = static_cast<ngx_str_t *>(cf->args->elts);

    if (scf->theme != NULL) {
        return const_cast<char *>("is duplicate");
    }

    ngx_str_t dir = value[1];
    if (ngx_conf_full_name(cf->cycle, &dir, 1) != NGX_OK) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    auto owner = ngx_http_twostep_pool_new<
                     std::unique_ptr<twostep::PageTheme>>(cf->pool);
    if (owner == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    try {
        *owner = twostep::PageTheme::load(
                     std::string(ngx_http_twostep_sv(dir)));

    } catch (const std::exception &e) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "%V: %s", &cmd->name,
                           e.what());
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    scf->theme = owner->get();
    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


char *
ngx_http_twostep_users(ngx_conf_t *cf, ngx_command_t *cmd, void *conf) noexcept
try {
    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(conf);

    ngx_str_t  *value;

    if (scf->store != NULL) {
        return const_cast<char *>("is duplicate");
    }

    value = static_cast<ngx_str_t *>(cf->args->elts);

    if (ngx_conf_full_name(cf->cycle, &value[1], 1) != NGX_OK) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    scf->store = ngx_http_twostep_pool_new<ngx_http_twostep_store_t>(
                     cf->pool);
    if (scf->store == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    try {
        std::string error;

        scf->store->path = std::string(ngx_http_twostep_sv(value[1]));

        // What was loaded, so a worker can tell when the file changes.
        if (stat(scf->store->path.c_str(), &scf->store->seen) != 0) {
            ngx_memzero(&scf->store->seen, sizeof(struct stat));
        }

        scf->store->users = twostep::UserStore::load(scf->store->path, error);
        if (scf->store->users == nullptr) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "twostep_users %s", error.c_str());
            return static_cast<char *>(NGX_CONF_ERROR);
        }

    } catch (const std::exception &e) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "twostep_users \"%V\": %s",
                           &value[1], e.what());
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// Keys are read by the master process as root: nobody else, the workers
// included, has any business reading them.
static void
ngx_http_twostep_check_private(ngx_conf_t *cf, ngx_fd_t fd, ngx_str_t *name)
{
    ngx_file_info_t  fi;

    if (ngx_fd_info(fd, &fi) == NGX_FILE_ERROR
        || (fi.st_mode & (S_IRWXG|S_IRWXO)) == 0)
    {
        return;
    }

    char mode[8];
    std::snprintf(mode, sizeof(mode), "%04o",
                  static_cast<unsigned>(fi.st_mode & 07777));

    ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                       "secret file \"%V\" is readable by other users "
                       "(mode %s): make it readable by its owner only "
                       "(chmod 600)", name, mode);
}


// Reads a key file into `buf` (by the master process, so it may be
// readable by root only); the name is resolved against the prefix. The
// number of bytes read, or NGX_ERROR with the reason logged.
static ssize_t
ngx_http_twostep_read_secret(ngx_conf_t *cf, ngx_str_t *name, u_char *buf,
    size_t size)
{
    ngx_file_t  file;
    ssize_t     n;

    if (ngx_conf_full_name(cf->cycle, name, 1) != NGX_OK) {
        return NGX_ERROR;
    }

    ngx_memzero(&file, sizeof(ngx_file_t));
    file.name = *name;
    file.log = cf->log;

    file.fd = ngx_open_file(name->data, NGX_FILE_RDONLY, NGX_FILE_OPEN, 0);
    if (file.fd == NGX_INVALID_FILE) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, ngx_errno,
                           ngx_open_file_n " \"%V\" failed", name);
        return NGX_ERROR;
    }

    ngx_http_twostep_check_private(cf, file.fd, name);

    n = ngx_read_file(&file, buf, size, 0);

    if (ngx_close_file(file.fd) == NGX_FILE_ERROR) {
        ngx_log_error(NGX_LOG_ALERT, cf->log, ngx_errno,
                      ngx_close_file_n " \"%V\" failed", name);
    }

    return n;
}


char *
ngx_http_twostep_cookie_key(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf) noexcept
try {
    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(conf);

    ngx_str_t   *value;
    u_char       buf[1024];
    ssize_t      n;

    value = static_cast<ngx_str_t *>(cf->args->elts);

    if (scf->keys == NULL) {
        scf->keys = ngx_http_twostep_pool_new<twostep::KeyRing>(cf->pool);
        if (scf->keys == NULL) {
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    n = ngx_http_twostep_read_secret(cf, &value[1], buf, sizeof(buf));
    if (n == NGX_ERROR) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    bool added;

    try {
        added = scf->keys->add(
            std::string_view(reinterpret_cast<char *>(buf), n));

    } catch (...) {
        added = false;
    }

    ngx_explicit_memzero(buf, sizeof(buf));

    if (!added) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "twostep_cookie_key \"%V\" is %z bytes long, "
                           "it must be at least %uz random bytes "
                           "(openssl rand -out FILE 32)",
                           &value[1], n, twostep::min_key_bytes);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


char *
ngx_http_twostep_methods(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf) noexcept
try {
    auto lcf = static_cast<ngx_http_twostep_loc_conf_t *>(conf);

    ngx_str_t   *value;
    ngx_uint_t   i;

    if (lcf->methods != NGX_CONF_UNSET_UINT) {
        return const_cast<char *>("is duplicate");
    }

    value = static_cast<ngx_str_t *>(cf->args->elts);
    lcf->methods = 0;

    for (i = 1; i < cf->args->nelts; i++) {
        auto method = twostep::method_from_name(
                          ngx_http_twostep_sv(value[i]));

        if (!method) {
            std::string names;
            try {
                names = twostep::method_names_for_people();
            } catch (...) {
                // out of memory: the message without the list
            }

            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "unknown twostep method \"%V\", "
                               "expected %s", &value[i], names.c_str());
            return static_cast<char *>(NGX_CONF_ERROR);
        }

        lcf->methods |= static_cast<unsigned>(*method);
    }

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// twostep_identity $variable | off
char *
ngx_http_twostep_identity(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
try {
    auto lcf = static_cast<ngx_http_twostep_loc_conf_t *>(conf);

    ngx_str_t                    *value, name;
    ngx_uint_t                    i;
    ngx_http_twostep_identity_t  *identity;

    if (lcf->identity != NGX_CONF_UNSET_PTR) {
        return const_cast<char *>("is duplicate");
    }

    value = static_cast<ngx_str_t *>(cf->args->elts);

    // "off" stops the inheritance, e.g. in a nested location that turns
    // the other auth module off.
    if (value[1].len == 3 && ngx_strncmp(value[1].data, "off", 3) == 0) {
        lcf->identity = NULL;
        return NGX_CONF_OK;
    }

    // One variable and nothing else: what is checked at merge time is
    // which module sets it.
    name.data = value[1].data + 1;
    name.len = value[1].len - 1;

    bool ok = value[1].len > 1 && value[1].data[0] == '$';

    for (i = 0; ok && i < name.len; i++) {
        u_char ch = name.data[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
             || (ch >= '0' && ch <= '9') || ch == '_';
    }

    if (!ok) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_identity\" takes one variable, such "
                           "as $remote_user, or \"off\", not \"%V\"",
                           &value[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    identity = static_cast<ngx_http_twostep_identity_t *>(
                   ngx_palloc(cf->pool, sizeof(ngx_http_twostep_identity_t)));
    if (identity == NULL) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    identity->name = name;
    identity->index = ngx_http_get_variable_index(cf, &name);
    if (identity->index == NGX_ERROR) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    lcf->identity = identity;

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


char *
ngx_http_twostep_portal_uri(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf) noexcept
try {
    char       *rv;
    ngx_str_t  *uri;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    uri = reinterpret_cast<ngx_str_t *>(static_cast<u_char *>(conf)
                                        + cmd->offset);

    if (uri->len < 2 || uri->data[0] != '/' || uri->data[uri->len - 1] != '/'
        || !twostep::safe_return_to(ngx_http_twostep_sv(*uri)))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_portal_uri\" must be a path that "
                           "starts and ends with \"/\", not \"%V\"", uri);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// twostep_remember TIME | off: whole days, as the page offers "Don't ask
// again for N days".
char *
ngx_http_twostep_remember(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
try {
    time_t     *remember;
    ngx_str_t  *value;

    remember = reinterpret_cast<time_t *>(static_cast<u_char *>(conf)
                                          + cmd->offset);
    if (*remember != NGX_CONF_UNSET) {
        return const_cast<char *>("is duplicate");
    }

    value = static_cast<ngx_str_t *>(cf->args->elts);

    if (ngx_strcmp(value[1].data, "off") == 0) {
        *remember = 0;
        return NGX_CONF_OK;
    }

    *remember = ngx_parse_time(&value[1], 1);

    if (*remember == (time_t) NGX_ERROR || *remember < 86400
        || *remember % 86400 != 0)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_remember\" must be \"off\" or whole "
                           "days, at least 1d (e.g. 30d), not \"%V\"",
                           &value[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// twostep_lockout FAILURES TIME [address=FAILURES] [account=FAILURES]
char *
ngx_http_twostep_lockout_rule(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf) noexcept
try {
    auto scf = static_cast<ngx_http_twostep_srv_conf_t *>(conf);

    ngx_str_t  *value;

    if (scf->lockout_failures != NGX_CONF_UNSET) {
        return const_cast<char *>("is duplicate");
    }

    value = static_cast<ngx_str_t *>(cf->args->elts);

    scf->lockout_failures = ngx_atoi(value[1].data, value[1].len);
    scf->lockout_time = ngx_parse_time(&value[2], 1);

    if (scf->lockout_failures < 1 || scf->lockout_failures > 100
        || scf->lockout_time == (time_t) NGX_ERROR || scf->lockout_time < 1)
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_lockout\" takes a number of failures "
                           "from 1 to 100 (NIST SP 800-63B) and a time, "
                           "not \"%V %V\"", &value[1], &value[2]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    for (ngx_uint_t i = 3; i < cf->args->nelts; i++) {
        ngx_int_t  n = NGX_ERROR;

        if (value[i].len > 8
            && ngx_strncmp(value[i].data, "address=", 8) == 0)
        {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            scf->lockout_address_failures = n;

        } else if (value[i].len > 8
                   && ngx_strncmp(value[i].data, "account=", 8) == 0)
        {
            n = ngx_atoi(value[i].data + 8, value[i].len - 8);
            scf->lockout_account_failures = n;
        }

        if (n < 1) {
            ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                               "invalid parameter \"%V\", expected "
                               "\"address=FAILURES\" or "
                               "\"account=FAILURES\"", &value[i]);
            return static_cast<char *>(NGX_CONF_ERROR);
        }
    }

    // NIST SP 800-63B 5.2.2: at most 100 consecutive failures per account;
    // the account as a whole at least as many as one address may make.
    if (scf->lockout_account_failures != NGX_CONF_UNSET
        && (scf->lockout_account_failures > 100
            || scf->lockout_account_failures < scf->lockout_failures))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"twostep_lockout\" account=%i must be from "
                           "FAILURES (%i) to 100 (NIST SP 800-63B)",
                           scf->lockout_account_failures,
                           scf->lockout_failures);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// twostep_duo_api https://api-XXXXXXXX.duosecurity.com, and the same for
// twostep_twilio_api, twostep_ntfy_server and twostep_public_url.
char *
ngx_http_twostep_duo_api(ngx_conf_t *cf,
    ngx_command_t *cmd, void *conf) noexcept
try {
    char       *rv;
    ngx_str_t  *url;
    size_t      scheme;

    rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    url = reinterpret_cast<ngx_str_t *>(static_cast<u_char *>(conf)
                                        + cmd->offset);

    if (url->len > 8 && ngx_strncmp(url->data, "https://", 8) == 0) {
        scheme = 8;

    } else if (url->len > 7 && ngx_strncmp(url->data, "http://", 7) == 0) {
        scheme = 7;
        ngx_conf_log_error(NGX_LOG_WARN, cf, 0,
                           "\"%V\" uses plain http: only for a local "
                           "simulator, never for the real service",
                           &cmd->name);

    } else {
        scheme = 0;
    }

    bool ok = scheme != 0;

    for (size_t i = scheme; ok && i < url->len; i++) {
        u_char ch = url->data[i];
        ok = (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z')
             || (ch >= '0' && ch <= '9') || ch == '.' || ch == '-'
             || ch == ':' || (ch == '[' || ch == ']');
    }

    if (!ok || url->len == scheme) {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" must be https://HOST[:PORT] without a "
                           "path, not \"%V\"", &cmd->name, url);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// Secrets stay out of nginx.conf: read from a file, like the cookie key,
// by the master process; at least `min` bytes, trailing newlines dropped.
static char *
ngx_http_twostep_secret_slot(ngx_conf_t *cf, ngx_command_t *cmd, void *conf,
    ssize_t min, const char *what)
{
    ngx_str_t   *value, *secret;
    u_char       buf[256];
    ssize_t      n;

    secret = reinterpret_cast<ngx_str_t *>(static_cast<u_char *>(conf)
                                           + cmd->offset);
    if (secret->data) {
        return const_cast<char *>("is duplicate");
    }

    value = static_cast<ngx_str_t *>(cf->args->elts);

    n = ngx_http_twostep_read_secret(cf, &value[1], buf, sizeof(buf));
    if (n == NGX_ERROR) {
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    while (n > 0 && (buf[n - 1] == '\n' || buf[n - 1] == '\r'
                     || buf[n - 1] == ' '))
    {
        n--;
    }

    bool printable = true;
    for (ssize_t i = 0; i < n; i++) {
        printable = printable && buf[i] > 0x20 && buf[i] < 0x7f;
    }

    if (n < min || n == (ssize_t) sizeof(buf) || !printable) {
        ngx_explicit_memzero(buf, sizeof(buf));
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0,
                           "\"%V\" \"%V\" does not hold %s",
                           &cmd->name, &value[1], what);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    secret->data = static_cast<u_char *>(ngx_pnalloc(cf->pool, n));
    if (secret->data == NULL) {
        ngx_explicit_memzero(buf, sizeof(buf));
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    secret->len = n;
    ngx_memcpy(secret->data, buf, n);
    ngx_explicit_memzero(buf, sizeof(buf));

    return NGX_CONF_OK;
}


char *
ngx_http_twostep_duo_skey_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
try {
    return ngx_http_twostep_secret_slot(cf, cmd, conf, 20,
                                        "a Duo secret key");
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// twostep_twilio_token_file, twostep_ntfy_token_file.
char *
ngx_http_twostep_token_file(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
try {
    return ngx_http_twostep_secret_slot(cf, cmd, conf, 8, "an access token");
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}


// twostep_twilio_account SID, twostep_twilio_from +E164.
char *
ngx_http_twostep_twilio_value(ngx_conf_t *cf, ngx_command_t *cmd,
    void *conf) noexcept
try {
    char *rv = ngx_conf_set_str_slot(cf, cmd, conf);
    if (rv != NGX_CONF_OK) {
        return rv;
    }

    ngx_str_t *value = static_cast<ngx_str_t *>(cf->args->elts);
    bool from = cmd->offset == offsetof(ngx_http_twostep_srv_conf_t,
                                        twilio_from);
    std::string_view v = ngx_http_twostep_sv(value[1]);

    if (from ? !twostep::valid_phone(v) : !twostep::twilio::valid_account(v))
    {
        ngx_conf_log_error(NGX_LOG_EMERG, cf, 0, "\"%V\" must be %s, not "
                           "\"%V\"", &cmd->name,
                           from ? "an E.164 number like +15550001111"
                                : "an account SID (2 to 64 of [A-Za-z0-9-])",
                           &value[1]);
        return static_cast<char *>(NGX_CONF_ERROR);
    }

    return NGX_CONF_OK;
} catch (...) {
    return ngx_http_twostep_conf_failed(cf, cmd);
}
