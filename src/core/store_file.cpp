#include "store_file.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>
#include <utility>

#include "base32.h"
#include "enroll.h"
#include "json.h"
#include "ntfy.h"
#include "password.h"

namespace twostep {

namespace {

// A file descriptor closed on destruction.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) : fd_(fd) {}
    Fd(Fd &&other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd &operator=(Fd &&other) noexcept
    {
        reset(std::exchange(other.fd_, -1));
        return *this;
    }
    ~Fd() { reset(); }
    int get() const { return fd_; }
    explicit operator bool() const { return fd_ >= 0; }
    void reset(int fd = -1)
    {
        if (fd_ >= 0) {
            ::close(fd_);
        }
        fd_ = fd;
    }
    // close(2) with its error, for files whose contents must be on disk.
    bool close()
    {
        int fd = std::exchange(fd_, -1);
        return fd < 0 || ::close(fd) == 0;
    }

private:
    int fd_ = -1;
};

// A users file bigger than this is refused rather than read into memory.
constexpr off_t max_file_bytes = 64 << 20;

std::string quoted(std::string_view text)
{
    std::string out = "\"";
    for (char c : text) {
        auto u = static_cast<unsigned char>(c);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += c;
        } else if (u < 0x20 || u == 0x7f) {
            out += '?';
        } else {
            out += c;
        }
    }
    return out + "\"";
}

std::string sys_error(std::string_view what, const std::string &path)
{
    return quoted(path) + ": " + std::string(what) + ": "
        + std::strerror(errno);
}

bool write_all(int fd, std::string_view data)
{
    while (!data.empty()) {
        ssize_t n = ::write(fd, data.data(), data.size());
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        data.remove_prefix(static_cast<std::size_t>(n));
    }
    return true;
}

bool read_all(int fd, std::string &out)
{
    char buf[65536];
    for (;;) {
        ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            return false;
        }
        if (n == 0) {
            return true;
        }
        out.append(buf, static_cast<std::size_t>(n));
        if (out.size() > static_cast<std::size_t>(max_file_bytes)) {
            errno = EFBIG;
            return false;
        }
    }
}

std::string dir_of(const std::string &path)
{
    std::size_t slash = path.rfind('/');
    if (slash == std::string::npos) {
        return ".";
    }
    return slash == 0 ? "/" : path.substr(0, slash);
}

// The real name of `path`, so that the lock, the temporary file and the
// rename all happen next to the file itself, and a symbolic link to the
// store is followed rather than replaced by a regular file. A missing file
// gets its directory resolved.
bool resolve(const std::string &path, std::string &out, std::string &error)
{
    CharPtr real(::realpath(path.c_str(), nullptr));
    if (real) {
        out = real.get();
        return true;
    }
    struct stat link;
    if (errno != ENOENT || ::lstat(path.c_str(), &link) == 0) {
        // A dangling symbolic link is not replaced by a new file either.
        error = sys_error("cannot resolve", path);
        return false;
    }
    std::size_t slash = path.rfind('/');
    std::string base = slash == std::string::npos ? path
                                                  : path.substr(slash + 1);
    CharPtr dir(::realpath(dir_of(path).c_str(), nullptr));
    if (!dir || base.empty() || base == "." || base == "..") {
        error = sys_error("cannot resolve", path);
        return false;
    }
    out = std::string(dir.get()) + (dir.get()[1] ? "/" : "") + base;
    return true;
}

// Writes `text` to `path` atomically: temporary file in the same directory,
// fsync, rename over, fsync of the directory. With `keep`, the new file
// gets its mode, and its owner and group as far as this process may set
// them; without, mode 0600. The temporary file never outlives a failure.
bool write_atomic(const std::string &path, std::string_view text,
                  const struct stat *keep, std::string &error)
{
    std::string dir = dir_of(path);
    std::string tmp = dir + "/." + path.substr(dir.size() + 1) + ".XXXXXX";
    Fd fd(::mkostemp(tmp.data(), O_CLOEXEC));
    if (!fd) {
        error = sys_error("cannot create a temporary file in its "
                          "directory",
                          path);
        return false;
    }
    bool ok = write_all(fd.get(), text);
    if (!ok) {
        error = sys_error("cannot write " + quoted(tmp), path);
    }
    if (ok && keep) {
        // Root keeps the owner and group, so nginx's workers can still
        // read the store; others may only keep a group they belong to,
        // and otherwise the file becomes theirs.
        if ((keep->st_uid != ::geteuid() || keep->st_gid != ::getegid())
            && ::fchown(fd.get(), keep->st_uid, keep->st_gid) != 0) {
            (void)!::fchown(fd.get(), static_cast<uid_t>(-1),
                            keep->st_gid);
        }
    }
    mode_t mode = keep ? (keep->st_mode & 07777) : 0600;
    if (ok && ::fchmod(fd.get(), mode) != 0) {
        ok = false;
        error = sys_error("cannot set the mode of " + quoted(tmp), path);
    }
    if (ok && ::fsync(fd.get()) != 0) {
        ok = false;
        error = sys_error("cannot sync " + quoted(tmp), path);
    }
    if (!fd.close() && ok) {
        ok = false;
        error = sys_error("cannot close " + quoted(tmp), path);
    }
    if (ok && ::rename(tmp.c_str(), path.c_str()) != 0) {
        ok = false;
        error = sys_error("cannot rename " + quoted(tmp) + " over it", path);
    }
    if (!ok) {
        ::unlink(tmp.c_str());
        return false;
    }
    // The rename itself is only durable once the directory is.
    Fd dirfd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
    if (!dirfd || ::fsync(dirfd.get()) != 0) {
        error = sys_error("written, but cannot sync its directory", path);
        return false;
    }
    return true;
}

// Opens (creating it if needed) and locks "<path>.lock". The lock file
// gets the store's owner, group and mode whenever this process may set
// them (root may; an owner may set the mode), also when it exists already:
// after `chgrp www-data users.json; chmod 0660 users.json` the next
// twostep-user run lets nginx's workers take the lock too. A lock file
// this process may only read still serves: flock(2) needs no write access.
bool take_lock(const std::string &path, const struct stat *store, Fd &out,
               std::string &error)
{
    std::string lock = path + ".lock";
    int flags = O_CLOEXEC | O_NOFOLLOW;
    Fd fd(::open(lock.c_str(), O_RDWR | O_CREAT | O_EXCL | flags, 0600));
    if (!fd && errno == EEXIST) {
        fd.reset(::open(lock.c_str(), O_RDWR | flags));
        if (!fd && errno == EACCES) {
            fd.reset(::open(lock.c_str(), O_RDONLY | flags));
        }
    }
    if (!fd) {
        error = sys_error("cannot open the lock file " + quoted(lock), path);
        return false;
    }
    struct stat st;
    if (store && ::fstat(fd.get(), &st) == 0) {
        if (st.st_uid != store->st_uid || st.st_gid != store->st_gid) {
            (void)!::fchown(fd.get(), store->st_uid, store->st_gid);
        }
        if ((st.st_mode & 07777) != (store->st_mode & 0666)) {
            (void)!::fchmod(fd.get(), store->st_mode & 0666);
        }
    }
    while (::flock(fd.get(), LOCK_EX) != 0) {
        if (errno != EINTR) {
            error = sys_error("cannot lock " + quoted(lock), path);
            return false;
        }
    }
    out = std::move(fd);
    return true;
}

std::string dump(const json_t *root)
{
    CharPtr text(json_dumps(root, JSON_INDENT(2) | JSON_REAL_PRECISION(17)));
    if (!text) {
        throw std::bad_alloc();
    }
    return std::string(text.get()) + "\n";
}

// jansson stores a NUL inside a string, but the loader refuses "\u0000":
// such values are refused here with a plain message.
bool nul_free(std::string_view name, const char *member,
              std::string_view value, std::string &error)
{
    if (value.find('\0') == std::string_view::npos) {
        return true;
    }
    error = "user " + quoted(name) + ": \"" + member
        + "\" must not contain a NUL byte";
    return false;
}

}  // namespace

struct StoreFile::State {
    std::string path;
    Fd lock;
    JsonPtr root;
    json_t *users = nullptr;     // borrowed from root
    struct stat st {};           // of the file as read
    bool dirty = false;
    bool done = false;

    json_t *find(std::string_view name) const
    {
        // Also keeps "alice\0x" from finding "alice" through c_str().
        if (!users || !valid_user_name(name)) {
            return nullptr;
        }
        return json_object_get(users, std::string(name).c_str());
    }

    // The user's object, or nullptr with `error` set.
    json_t *user(std::string_view name, std::string &error) const
    {
        if (done) {
            error = "the store file was already committed";
            return nullptr;
        }
        json_t *u = find(name);
        if (!u) {
            error = "no user " + quoted(name);
        }
        return u;
    }

    // Checks `candidate` as user `name` with the loader's rules, and puts
    // it in place of the user (or adds it).
    bool replace(std::string_view name, JsonPtr candidate,
                 std::string &error)
    {
        JsonPtr doc(json_pack("{s:{s:O}}", "users",
                              std::string(name).c_str(), candidate.get()));
        if (!doc) {
            error = "out of memory";
            return false;
        }
        if (!UserStore::parse(dump(doc.get()), error)) {
            return false;
        }
        std::string key(name);
        if (json_object_set(users, key.c_str(), candidate.get()) != 0) {
            error = "out of memory";
            return false;
        }
        dirty = true;
        return true;
    }

    // A deep copy of the user's object to edit, or nullptr with `error`.
    JsonPtr copy(std::string_view name, std::string &error) const
    {
        json_t *u = user(name, error);
        if (!u) {
            return nullptr;
        }
        JsonPtr c(json_deep_copy(u));
        if (!c) {
            error = "out of memory";
        }
        return c;
    }

    std::shared_ptr<const UserStore> parsed() const
    {
        std::string error;
        return UserStore::parse(dump(root.get()), error);
    }
};

StoreFile::StoreFile(std::unique_ptr<State> state) : s_(std::move(state)) {}
StoreFile::StoreFile(StoreFile &&) noexcept = default;
StoreFile &StoreFile::operator=(StoreFile &&) noexcept = default;
StoreFile::~StoreFile() = default;

std::optional<StoreFile> StoreFile::open(const std::string &path,
                                         std::string &error, bool create)
{
    auto s = std::make_unique<State>();
    if (!resolve(path, s->path, error)) {
        return std::nullopt;
    }
    const std::string &real = s->path;
    struct stat st;
    bool exists = ::stat(real.c_str(), &st) == 0;
    if (!exists && errno != ENOENT) {
        error = sys_error("cannot stat", real);
        return std::nullopt;
    }
    if (!exists && !create) {
        error = sys_error("cannot open", real);
        return std::nullopt;
    }
    if (!take_lock(real, exists ? &st : nullptr, s->lock, error)) {
        return std::nullopt;
    }
    // Under the lock: another writer may have created it meanwhile.
    if (::stat(real.c_str(), &st) != 0) {
        if (errno != ENOENT || !create) {
            error = sys_error("cannot open", real);
            return std::nullopt;
        }
        if (!write_atomic(real, "{\n  \"users\": {}\n}\n", nullptr, error)) {
            return std::nullopt;
        }
    }

    Fd fd(::open(real.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd || ::fstat(fd.get(), &s->st) != 0) {
        error = sys_error("cannot open", real);
        return std::nullopt;
    }
    if (!S_ISREG(s->st.st_mode)) {
        error = quoted(real) + ": is not a regular file";
        return std::nullopt;
    }
    std::string text;
    if (!read_all(fd.get(), text)) {
        error = sys_error("cannot read", real);
        return std::nullopt;
    }
    // Exactly what nginx would say about it; such a file is never written.
    if (!UserStore::parse(text, error)) {
        error = quoted(real) + ": " + error
            + " (the file was left as it is)";
        return std::nullopt;
    }
    json_error_t jerr;
    s->root.reset(json_loadb(text.data(), text.size(),
                             JSON_REJECT_DUPLICATES, &jerr));
    s->users = s->root ? json_object_get(s->root.get(), "users") : nullptr;
    if (!s->users) {
        error = quoted(real) + ": cannot parse: " + jerr.text;
        return std::nullopt;
    }
    return StoreFile(std::move(s));
}

const std::string &StoreFile::path() const
{
    return s_->path;
}

bool StoreFile::has_user(std::string_view name) const
{
    return s_->find(name) != nullptr;
}

bool StoreFile::add_user(std::string_view name,
                         std::string_view password_hash, std::string &error)
{
    if (s_->done) {
        error = "the store file was already committed";
        return false;
    }
    if (!valid_user_name(name)) {
        error = "user name " + quoted(name)
            + " is not valid: use 1 to 64 characters of A-Z a-z 0-9 . _ @ "
              "+ -";
        return false;
    }
    if (s_->find(name)) {
        error = "user " + quoted(name) + " already exists";
        return false;
    }
    if (!nul_free(name, "password", password_hash, error)) {
        return false;
    }
    JsonPtr u(json_object());
    if (!u
        || (!password_hash.empty()
            && json_object_set_new(u.get(), "password",
                                   json_stringn(password_hash.data(),
                                                password_hash.size()))
                != 0)) {
        error = "user " + quoted(name) + ": \"password\" must be a crypt(3) "
                                         "hash";
        return false;
    }
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::set_password(std::string_view name,
                             std::string_view password_hash,
                             std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u || !nul_free(name, "password", password_hash, error)) {
        return false;
    }
    if (json_object_set_new(u.get(), "password",
                            json_stringn(password_hash.data(),
                                         password_hash.size()))
        != 0) {
        error = "user " + quoted(name) + ": \"password\" must be a crypt(3) "
                                         "hash";
        return false;
    }
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::remove_user(std::string_view name, std::string &error)
{
    if (!s_->user(name, error)) {
        return false;
    }
    if (json_object_del(s_->users, std::string(name).c_str()) != 0) {
        error = "cannot remove user " + quoted(name);
        return false;
    }
    s_->dirty = true;
    return true;
}

bool StoreFile::set_totp(std::string_view name, const TotpParams &params,
                         std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u) {
        return false;
    }
    std::string secret = base32_encode(params.secret);
    json_t *value;
    if (params.alg == HashAlg::sha1 && params.digits == 6
        && params.period == 30) {
        value = json_stringn(secret.data(), secret.size());
    } else {
        value = json_pack("{s:s#,s:s,s:i,s:i}", "secret", secret.data(),
                          secret.size(), "algorithm",
                          hash_alg_name(params.alg), "digits", params.digits,
                          "period", params.period);
    }
    OPENSSL_cleanse(secret.data(), secret.size());
    if (json_object_set_new(u.get(), "totp", value) != 0) {
        error = "out of memory";
        return false;
    }
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::set_totp(std::string_view name, std::string_view base32_secret,
                         std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u || !nul_free(name, "totp", base32_secret, error)) {
        return false;
    }
    if (json_object_set_new(u.get(), "totp",
                            json_stringn(base32_secret.data(),
                                         base32_secret.size()))
        != 0) {
        error = "user " + quoted(name) + ": \"totp\" must be a base32 string";
        return false;
    }
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::set_phone(std::string_view name, std::string_view phone,
                          std::string &error)
{
    return set_text(name, "phone", phone, "an E.164 number", error);
}

bool StoreFile::set_ntfy_topic(std::string_view name, std::string_view topic,
                               std::string &error)
{
    if (!topic.empty() && !ntfy::valid_topic(topic)) {
        error = "user " + quoted(name) + ": \"ntfy_topic\" must be 1 to 64 "
                                         "of [A-Za-z0-9_-]";
        return false;
    }
    return set_text(name, "ntfy_topic", topic, "an ntfy topic", error);
}

// Sets (or, when empty, removes) one string member of a user.
bool StoreFile::set_text(std::string_view name, const char *member,
                         std::string_view value, const char *what,
                         std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u || !nul_free(name, member, value, error)) {
        return false;
    }
    if (value.empty()) {
        json_object_del(u.get(), member);
    } else if (json_object_set_new(u.get(), member,
                                   json_stringn(value.data(), value.size()))
               != 0) {
        error = "user " + quoted(name) + ": \"" + member + "\" must be "
                + what;
        return false;
    }
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::remove_totp(std::string_view name, std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u) {
        return false;
    }
    json_object_del(u.get(), "totp");
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::set_default(std::string_view name, Method method,
                            std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u) {
        return false;
    }
    json_object_set_new(u.get(), "default", json_string(method_name(method)));
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::forget_devices(std::string_view name, std::int64_t now,
                               std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u) {
        return false;
    }
    json_object_set_new(u.get(), "devices_forgotten",
                        json_integer(static_cast<json_int_t>(now)));
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::clear_second_factors(std::string_view name,
                                     std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u) {
        return false;
    }
    for (const char *member : {"totp", "phone", "ntfy_topic", "default",
                               "recovery", "webauthn"}) {
        json_object_del(u.get(), member);
    }
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::set_recovery(std::string_view name,
                             const std::vector<std::string> &hashes,
                             std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u) {
        return false;
    }
    JsonPtr list(json_array());
    bool ok = list != nullptr;
    for (const std::string &hash : hashes) {
        ok = ok
            && json_array_append_new(list.get(),
                                     json_stringn(hash.data(), hash.size()))
                == 0;
    }
    if (!ok || json_object_set(u.get(), "recovery", list.get()) != 0) {
        error = "user " + quoted(name) + ": \"recovery\" must hold "
                                         "SHA-256 hex strings";
        return false;
    }
    return s_->replace(name, std::move(u), error);
}

namespace {

// The index in the user's "webauthn" array of the key whose id, or else
// whose name, is `key`; -1 with `error` set when there is none or the name
// is ambiguous.
long find_key(json_t *u, std::string_view user, std::string_view key,
              std::string &error)
{
    json_t *list = json_object_get(u, "webauthn");
    long by_name = -1;
    int names = 0;
    std::size_t index;
    json_t *item;
    json_array_foreach(list, index, item) {
        const char *id = json_string_value(json_object_get(item, "id"));
        const char *name = json_string_value(json_object_get(item, "name"));
        if (id && key == id) {
            return static_cast<long>(index);
        }
        if (name && key == name) {
            by_name = static_cast<long>(index);
            names++;
        }
    }
    if (names == 1) {
        return by_name;
    }
    error = "user " + quoted(user) + ": "
        + (names > 1 ? "more than one key is called " + quoted(key)
                           + "; name it by its id"
                     : "no key " + quoted(key));
    return -1;
}

}  // namespace

bool StoreFile::add_key(std::string_view name, const WebauthnKey &key,
                        std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u) {
        return false;
    }
    const char *other;
    json_t *user;
    json_object_foreach(s_->users, other, user) {
        json_t *list = json_object_get(user, "webauthn");
        std::size_t index;
        json_t *item;
        json_array_foreach(list, index, item) {
            const char *id = json_string_value(json_object_get(item, "id"));
            if (id && key.credential.id == id) {
                error = "user " + quoted(name) + ": this key is registered "
                                                 "already";
                return false;
            }
        }
    }
    json_t *list = json_object_get(u.get(), "webauthn");
    if (!json_is_array(list)) {
        list = json_array();
        if (!list || json_object_set_new(u.get(), "webauthn", list) != 0) {
            error = "out of memory";
            return false;
        }
    }
    if (json_array_size(list) >= max_webauthn_keys) {
        error = "user " + quoted(name) + ": has "
            + std::to_string(max_webauthn_keys) + " keys already";
        return false;
    }
    JsonPtr transports(json_array());
    for (const std::string &t : key.credential.transports) {
        if (!transports
            || json_array_append_new(transports.get(),
                                     json_string(t.c_str())) != 0) {
            error = "out of memory";
            return false;
        }
    }
    const webauthn::Credential &c = key.credential;
    json_t *entry = json_pack(
        "{s:s%, s:s%, s:I, s:I, s:s%, s:I, s:O}",
        "id", c.id.data(), c.id.size(),
        "public_key", c.public_key.data(), c.public_key.size(),
        "algorithm", static_cast<json_int_t>(c.algorithm),
        "sign_count", static_cast<json_int_t>(c.sign_count),
        "name", key.name.data(), key.name.size(),
        "created", static_cast<json_int_t>(key.created),
        "transports", transports.get());
    if (!entry || json_array_append_new(list, entry) != 0) {
        error = "user " + quoted(name) + ": the key's name must be UTF-8";
        return false;
    }
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::rename_key(std::string_view name, std::string_view key,
                           std::string_view new_name, std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u) {
        return false;
    }
    long at = find_key(u.get(), name, key, error);
    if (at < 0) {
        return false;
    }
    json_t *item = json_array_get(json_object_get(u.get(), "webauthn"), at);
    if (json_object_set_new(item, "name",
                            json_stringn(new_name.data(), new_name.size()))
        != 0) {
        error = "user " + quoted(name) + ": the key's name must be UTF-8";
        return false;
    }
    return s_->replace(name, std::move(u), error);
}

bool StoreFile::remove_key(std::string_view name, std::string_view key,
                           std::string &error)
{
    JsonPtr u = s_->copy(name, error);
    if (!u) {
        return false;
    }
    long at = find_key(u.get(), name, key, error);
    if (at < 0) {
        return false;
    }
    json_t *list = json_object_get(u.get(), "webauthn");
    json_array_remove(list, at);
    if (json_array_size(list) == 0) {
        json_object_del(u.get(), "webauthn");
    }
    return s_->replace(name, std::move(u), error);
}

CounterUpdate StoreFile::set_sign_count(std::string_view name,
                                        std::string_view id,
                                        std::uint32_t count,
                                        std::string &error)
{
    json_t *u = s_->user(name, error);
    json_t *list = u ? json_object_get(u, "webauthn") : nullptr;
    std::size_t index;
    json_t *item;
    json_array_foreach(list, index, item) {
        const char *stored_id = json_string_value(json_object_get(item, "id"));
        if (stored_id == nullptr || id != stored_id) {
            continue;
        }
        json_int_t stored = json_integer_value(
            json_object_get(item, "sign_count"));
        if (count == 0 && stored == 0) {
            return CounterUpdate::saved;  // an authenticator without one
        }
        if (static_cast<json_int_t>(count) <= stored) {
            error = "user " + quoted(name) + ": the sign count of key "
                + quoted(id) + " went from " + std::to_string(stored)
                + " to " + std::to_string(count);
            return CounterUpdate::went_back;
        }
        if (json_object_set_new(item, "sign_count",
                                json_integer(count)) != 0) {
            error = "out of memory";
            return CounterUpdate::no_key;
        }
        s_->dirty = true;
        return CounterUpdate::saved;
    }
    if (error.empty()) {
        error = "user " + quoted(name) + ": no key " + quoted(id);
    }
    return CounterUpdate::no_key;
}

bool StoreFile::use_recovery_code(std::string_view name,
                                  std::string_view code)
{
    // Hashed before the user is looked up, so an unknown user costs the
    // same.
    std::string hash = recovery_hash(code);
    std::string error;
    json_t *u = s_->user(name, error);
    json_t *list = u ? json_object_get(u, "recovery") : nullptr;
    if (!json_is_array(list)) {
        return false;
    }
    // No early exit: every entry is compared (OWASP ASVS 2.6.1 use-once,
    // 2.9.x constant-time comparison), the match removed afterwards.
    std::size_t found = SIZE_MAX;
    std::size_t index;
    json_t *item;
    json_array_foreach(list, index, item) {
        bool same = json_is_string(item)
            && json_string_length(item) == hash.size()
            && CRYPTO_memcmp(json_string_value(item), hash.data(),
                             hash.size())
                == 0;
        found = same ? index : found;
    }
    if (found == SIZE_MAX) {
        return false;
    }
    json_array_remove(list, found);
    s_->dirty = true;
    return true;
}

std::vector<UserSummary> StoreFile::list() const
{
    std::vector<UserSummary> out;
    auto store = s_->parsed();
    if (!store) {
        return out;
    }
    for (const User *user : store->users()) {
        UserSummary sum;
        sum.name = user->name;
        sum.password = !user->password_hash.empty();
        sum.totp = user->totp.has_value();
        sum.methods = user->methods();
        sum.phone_masked = mask_phone(user->phone);
        sum.default_method = user->default_method;
        sum.recovery_codes = user->recovery.size();
        for (const WebauthnKey &key : user->keys) {
            sum.keys.push_back({key.credential.id, key.name, key.created,
                                key.credential.sign_count,
                                webauthn::algorithm_name(
                                    key.credential.algorithm)});
        }
        out.push_back(std::move(sum));
    }
    return out;
}

std::optional<User> StoreFile::user(std::string_view name) const
{
    auto store = s_->parsed();
    const User *user = store ? store->find(name) : nullptr;
    if (!user) {
        return std::nullopt;
    }
    return *user;
}

bool StoreFile::commit(std::string &error)
{
    if (s_->done) {
        error = "the store file was already committed";
        return false;
    }
    s_->done = true;
    bool ok = true;
    if (s_->dirty) {
        std::string text = dump(s_->root.get());
        // Never write what the loader would refuse.
        std::string why;
        if (!UserStore::parse(text, why)) {
            error = quoted(s_->path) + ": not written: " + why;
            ok = false;
        } else {
            ok = write_atomic(s_->path, text, &s_->st, error);
        }
    }
    s_->lock.reset();
    s_->root.reset();
    s_->users = nullptr;
    return ok;
}

std::string mask_phone(std::string_view phone)
{
    if (phone.size() < 4) {
        return std::string(phone.empty() ? "" : "+***");
    }
    std::string out(phone.substr(0, 2));
    out.append(phone.size() - 4, '*');
    out.append(phone.substr(phone.size() - 2));
    return out;
}

}  // namespace twostep
