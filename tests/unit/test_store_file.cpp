// StoreFile: edits of the users file that keep what they do not know, are
// written atomically, never replace a broken file and lose no update when
// two processes write at once.
#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <memory>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "core/base32.h"
#include "core/enroll.h"
#include "core/store_file.h"
#include "core/user_store.h"
#include "unit.h"

using namespace twostep;

namespace {

// mkpasswd -m yescrypt secret
const std::string yescrypt_hash =
    "$y$j9T$PvNvAbWZCMvTVtA0ebyWb0$BlwutcBWkjy69x.yn5ymfkzuz1tXHrs.ydUnV.L02e3";
const std::string other_hash =
    "$y$j9T$ZUPXUpwekzow9B6bcVtNp1$irfUwHzqw/w5QttIcBLieg2jC4F..ZWzivYVNe9j6W/";
const std::string secret_b32 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

struct JsonDeleter {
    void operator()(json_t *json) const { json_decref(json); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

bool contains(const std::string &text, const std::string &part)
{
    return text.find(part) != std::string::npos;
}

// A scratch directory per test (Check forks each test), removed at exit.
class Scratch {
public:
    Scratch()
    {
        char name[] = "/tmp/twostep-store-XXXXXX";
        ck_assert(mkdtemp(name) != nullptr);
        dir = name;
    }
    ~Scratch()
    {
        std::string cmd = "rm -rf '" + dir + "'";
        (void)!std::system(cmd.c_str());
    }
    std::string path(const std::string &name) const
    {
        return dir + "/" + name;
    }
    std::set<std::string> entries() const
    {
        std::set<std::string> out;
        std::unique_ptr<DIR, int (*)(DIR *)> d(opendir(dir.c_str()),
                                               closedir);
        ck_assert(d != nullptr);
        while (dirent *e = readdir(d.get())) {
            std::string name = e->d_name;
            if (name != "." && name != "..") {
                out.insert(name);
            }
        }
        return out;
    }
    std::string dir;
};

void write_file(const std::string &path, const std::string &text,
                mode_t mode = 0644)
{
    std::ofstream(path, std::ios::binary | std::ios::trunc) << text;
    ck_assert_int_eq(chmod(path.c_str(), mode), 0);
}

std::string read_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    std::stringstream out;
    out << in.rdbuf();
    return out.str();
}

struct stat stat_of(const std::string &path)
{
    struct stat st;
    ck_assert_msg(stat(path.c_str(), &st) == 0, "stat %s", path.c_str());
    return st;
}

JsonPtr load_json(const std::string &path)
{
    json_error_t err;
    JsonPtr root(json_load_file(path.c_str(), JSON_REJECT_DUPLICATES, &err));
    ck_assert_msg(root != nullptr, "%s: %s", path.c_str(), err.text);
    return root;
}

json_t *user_json(const JsonPtr &root, const char *name)
{
    return json_object_get(json_object_get(root.get(), "users"), name);
}

StoreFile open_ok(const std::string &path, bool create = false)
{
    std::string error;
    auto file = StoreFile::open(path, error, create);
    ck_assert_msg(file.has_value(), "open %s: %s", path.c_str(),
                  error.c_str());
    return std::move(*file);
}

void commit_ok(StoreFile &file)
{
    std::string error;
    ck_assert_msg(file.commit(error), "commit: %s", error.c_str());
}

std::shared_ptr<const UserStore> load_ok(const std::string &path)
{
    std::string error;
    auto store = UserStore::load(path, error);
    ck_assert_msg(store != nullptr, "load: %s", error.c_str());
    return store;
}

// A store with members the core does not know, at every level.
const std::string rich_store = R"({
  "comment": "kept",
  "users": {
    "alice": {
      "password": ")" + yescrypt_hash + R"(",
      "totp": {"secret": ")" + secret_b32 + R"(", "label": "phone 1"},
      "x-team": {"name": "ops", "ids": [1, 2.5, true, null]}
    },
    "bob": {"password": ")" + yescrypt_hash + R"(", "x-note": "unchanged"}
  },
  "x-version": 3
}
)";

}  // namespace

START_TEST(remove_totp_keeps_the_rest)
{
    Scratch s;
    std::string path = s.path("users.json");
    write_file(path, rich_store);

    StoreFile file = open_ok(path);
    std::string error;
    ck_assert(file.set_phone("alice", "+15551234567", error));
    ck_assert(file.user("alice")->totp.has_value());
    ck_assert(file.remove_totp("alice", error));
    ck_assert(!file.remove_totp("nobody", error));
    commit_ok(file);

    JsonPtr after = load_json(path);
    json_t *alice = user_json(after, "alice");
    ck_assert(json_object_get(alice, "totp") == nullptr);
    ck_assert(json_object_get(alice, "password") != nullptr);
    ck_assert_string_eq(json_string_value(json_object_get(alice, "phone")),
                        "+15551234567");
    ck_assert(json_object_get(alice, "x-team") != nullptr);
}
END_TEST

START_TEST(edits_keep_unknown_members)
{
    Scratch s;
    std::string path = s.path("users.json");
    write_file(path, rich_store);
    JsonPtr before = load_json(path);

    StoreFile file = open_ok(path);
    std::string error;
    ck_assert(file.set_phone("alice", "+15551234567", error));
    ck_assert(file.set_default("alice", Method::totp, error));
    commit_ok(file);

    JsonPtr after = load_json(path);
    ck_assert_string_eq(json_string_value(json_object_get(after.get(),
                                                          "comment")),
                        "kept");
    ck_assert_int_eq(json_integer_value(json_object_get(after.get(),
                                                        "x-version")),
                     3);
    json_t *alice = user_json(after, "alice");
    ck_assert(json_equal(json_object_get(alice, "x-team"),
                         json_object_get(user_json(before, "alice"),
                                         "x-team")));
    ck_assert(json_equal(json_object_get(alice, "totp"),
                         json_object_get(user_json(before, "alice"),
                                         "totp")));
    ck_assert_string_eq(json_string_value(json_object_get(alice, "phone")),
                        "+15551234567");
    ck_assert_string_eq(json_string_value(json_object_get(alice, "default")),
                        "totp");
    ck_assert(json_equal(user_json(after, "bob"), user_json(before, "bob")));

    // Order of members is kept: "comment" still comes first.
    std::string text = read_file(path);
    ck_assert(text.find("\"comment\"") < text.find("\"users\""));
    ck_assert(text.find("\"users\"") < text.find("\"x-version\""));
    ck_assert(text.find("\"password\"") < text.find("\"phone\""));

    auto store = load_ok(path);
    ck_assert_string_eq(store->find("alice")->phone, "+15551234567");
    ck_assert(store->find("alice")->default_method == Method::totp);
}
END_TEST

START_TEST(add_passwd_remove)
{
    Scratch s;
    std::string path = s.path("users.json");
    write_file(path, rich_store);
    std::string error;

    StoreFile file = open_ok(path);
    ck_assert(file.add_user("carol", yescrypt_hash, error));
    ck_assert(file.has_user("carol"));
    ck_assert(!file.add_user("carol", other_hash, error));
    ck_assert_msg(contains(error, "\"carol\" already exists"), "%s",
                  error.c_str());
    ck_assert(!file.add_user("alice", yescrypt_hash, error));
    ck_assert(!file.add_user("bad name", yescrypt_hash, error));
    ck_assert_msg(contains(error, "not valid"), "%s", error.c_str());
    ck_assert(!file.add_user("dave", "plaintext", error));
    ck_assert_msg(contains(error, "user \"dave\"")
                      && contains(error, "\"password\"")
                      && contains(error, "not a supported"),
                  "%s", error.c_str());
    ck_assert(!file.has_user("dave"));
    ck_assert(!file.add_user("dave", std::string("$y$\0x", 5), error));
    ck_assert_msg(contains(error, "NUL"), "%s", error.c_str());
    // Without a password: twostep_identity only.
    ck_assert(file.add_user("sso", "", error));

    ck_assert(file.set_password("bob", other_hash, error));
    ck_assert(!file.set_password("bob", "$1$imJj0tsl$cyyu7Y74bSlnxnjLJKpfk.",
                                 error));
    ck_assert(!file.set_password("nobody", other_hash, error));
    ck_assert_msg(contains(error, "no user \"nobody\""), "%s",
                  error.c_str());
    ck_assert(!file.remove_user(std::string("alice\0x", 7), error));
    ck_assert(!file.use_recovery_code(std::string("alice\0x", 7), "x"));
    ck_assert(file.remove_user("alice", error));
    ck_assert(!file.has_user("alice"));
    ck_assert(!file.remove_user("alice", error));
    ck_assert_msg(contains(error, "no user \"alice\""), "%s", error.c_str());
    commit_ok(file);

    auto store = load_ok(path);
    ck_assert_uint_eq(store->size(), 3);
    ck_assert(store->find("alice") == nullptr);
    ck_assert_string_eq(store->find("carol")->password_hash, yescrypt_hash);
    ck_assert(store->find("sso")->password_hash.empty());
    ck_assert_string_eq(store->find("bob")->password_hash, other_hash);
    JsonPtr after = load_json(path);
    ck_assert_string_eq(json_string_value(json_object_get(
                            user_json(after, "bob"), "x-note")),
                        "unchanged");
}
END_TEST

START_TEST(totp_phone_default_reset)
{
    Scratch s;
    std::string path = s.path("users.json");
    write_file(path, rich_store);
    std::string error;

    StoreFile file = open_ok(path);
    TotpParams plain;
    plain.secret = std::string(20, '\x42');
    ck_assert(file.set_totp("bob", plain, error));
    TotpParams fancy = plain;
    fancy.alg = HashAlg::sha512;
    fancy.digits = 8;
    fancy.period = 60;
    ck_assert(file.set_totp("alice", fancy, error));
    TotpParams short_secret;
    short_secret.secret = std::string(15, 'x');
    ck_assert(!file.set_totp("alice", short_secret, error));
    ck_assert_msg(contains(error, "too short"), "%s", error.c_str());
    fancy.digits = 9;
    ck_assert(!file.set_totp("alice", fancy, error));
    ck_assert_msg(contains(error, "\"totp.digits\""), "%s", error.c_str());
    ck_assert(!file.set_totp("bob", "not base32!", error));
    ck_assert_msg(contains(error, "not valid base32"), "%s", error.c_str());
    ck_assert(!file.set_totp("nobody", secret_b32, error));

    ck_assert(!file.set_phone("bob", "5551234567", error));
    ck_assert_msg(contains(error, "\"phone\"") && contains(error, "E.164"),
                  "%s", error.c_str());
    ck_assert(file.set_phone("bob", "+15551234567", error));
    ck_assert(file.set_default("bob", Method::sms, error));
    ck_assert(file.set_recovery("bob", {std::string(64, 'a')}, error));
    ck_assert(!file.set_recovery("bob", {"ABC"}, error));
    ck_assert_msg(contains(error, "\"recovery[0]\""), "%s", error.c_str());
    commit_ok(file);

    JsonPtr root = load_json(path);
    ck_assert_string_eq(json_string_value(json_object_get(
                            user_json(root, "bob"), "totp")),
                        base32_encode(plain.secret));
    json_t *totp = json_object_get(user_json(root, "alice"), "totp");
    ck_assert(json_is_object(totp));
    ck_assert_string_eq(json_string_value(json_object_get(totp, "algorithm")),
                        "SHA512");
    ck_assert_int_eq(json_integer_value(json_object_get(totp, "digits")), 8);
    ck_assert_int_eq(json_integer_value(json_object_get(totp, "period")), 60);
    // A new credential: members of the old "totp" object go with it.
    ck_assert(json_object_get(totp, "label") == nullptr);

    auto store = load_ok(path);
    const User *bob = store->find("bob");
    ck_assert(bob->totp->secret == plain.secret);
    ck_assert_string_eq(bob->phone, "+15551234567");
    ck_assert(bob->default_method == Method::sms);
    ck_assert_uint_eq(bob->recovery.size(), 1);
    ck_assert(store->find("alice")->totp->alg == HashAlg::sha512);

    // Reset: second factors go, password and unknown members stay.
    file = open_ok(path);
    ck_assert(file.clear_second_factors("bob", error));
    ck_assert(file.set_phone("alice", "+15550000000", error));
    ck_assert(file.set_phone("alice", "", error));
    ck_assert(!file.clear_second_factors("nobody", error));
    commit_ok(file);
    root = load_json(path);
    json_t *b = user_json(root, "bob");
    for (const char *gone : {"totp", "phone", "default", "recovery"}) {
        ck_assert_msg(json_object_get(b, gone) == nullptr, "%s", gone);
    }
    ck_assert_string_eq(json_string_value(json_object_get(b, "password")),
                        yescrypt_hash);
    ck_assert_string_eq(json_string_value(json_object_get(b, "x-note")),
                        "unchanged");
    ck_assert(json_object_get(user_json(root, "alice"), "phone") == nullptr);
    ck_assert(json_object_get(user_json(root, "alice"), "x-team") != nullptr);
}
END_TEST

START_TEST(recovery_codes_use_once)
{
    Scratch s;
    std::string path = s.path("users.json");
    write_file(path, rich_store);
    std::vector<std::string> codes = new_recovery_codes();
    std::vector<std::string> hashes;
    for (const std::string &code : codes) {
        hashes.push_back(recovery_hash(code));
    }
    std::string error;
    StoreFile file = open_ok(path);
    ck_assert(file.set_recovery("alice", hashes, error));
    ck_assert(!file.use_recovery_code("bob", codes[0]));
    commit_ok(file);

    // Typed in upper case with spaces: still the code.
    std::string typed;
    for (char c : codes[3]) {
        typed += c == '-' ? ' ' : static_cast<char>(std::toupper(c));
    }
    file = open_ok(path);
    ck_assert(file.use_recovery_code("alice", typed));
    ck_assert(!file.use_recovery_code("alice", typed));
    ck_assert(!file.use_recovery_code("alice",
                                      "aaaaa-aaaaa-aaaaa-aaaaa-aaaaa"));
    ck_assert(!file.use_recovery_code("alice", ""));
    ck_assert(!file.use_recovery_code("nobody", codes[0]));
    ck_assert(!file.use_recovery_code("bob", codes[0]));
    commit_ok(file);

    auto store = load_ok(path);
    const auto &left = store->find("alice")->recovery;
    ck_assert_uint_eq(left.size(), 9);
    for (std::size_t i = 0; i < hashes.size(); i++) {
        bool kept = false;
        for (const std::string &h : left) {
            kept = kept || h == hashes[i];
        }
        ck_assert_msg(kept == (i != 3), "code %zu", i);
    }
    // Used once, in another open: gone for good.
    file = open_ok(path);
    ck_assert(!file.use_recovery_code("alice", codes[3]));
    ck_assert(file.use_recovery_code("alice", codes[9]));
    commit_ok(file);
    file = open_ok(path);
    ck_assert(!file.use_recovery_code("alice", codes[9]));
    ck_assert_uint_eq(file.user("alice")->recovery.size(), 8);
    commit_ok(file);
}
END_TEST

START_TEST(list_shows_no_secrets)
{
    Scratch s;
    std::string path = s.path("users.json");
    write_file(path, rich_store);
    std::string error;
    StoreFile file = open_ok(path);
    ck_assert(file.set_phone("alice", "+4915112345689", error));
    ck_assert(file.set_default("alice", Method::push, error));
    ck_assert(file.set_recovery("alice",
                                {std::string(64, 'a'), std::string(64, 'b')},
                                error));
    ck_assert(file.add_user("zed", "", error));
    std::vector<UserSummary> users = file.list();
    ck_assert_uint_eq(users.size(), 3);
    ck_assert_string_eq(users[0].name, "alice");
    ck_assert(users[0].password && users[0].totp);
    ck_assert_uint_eq(users[0].methods,
                      static_cast<MethodSet>(Method::totp)
                          | static_cast<MethodSet>(Method::recovery));
    ck_assert_string_eq(users[0].phone_masked, "+4**********89");
    ck_assert(users[0].default_method == Method::push);
    ck_assert_uint_eq(users[0].recovery_codes, 2);
    ck_assert_string_eq(users[1].name, "bob");
    ck_assert(!users[1].totp && users[1].phone_masked.empty());
    ck_assert(!users[1].default_method);
    ck_assert_string_eq(users[2].name, "zed");
    ck_assert(!users[2].password);
    commit_ok(file);

    ck_assert_string_eq(mask_phone("+15551234567"), "+1********67");
    ck_assert_string_eq(mask_phone("+12345678"), "+1*****78");
    ck_assert_string_eq(mask_phone(""), "");
}
END_TEST

START_TEST(broken_file_is_not_replaced)
{
    Scratch s;
    const std::pair<std::string, std::string> broken[] = {
        {"{\n  \"users\": {\n    \"a\": {,}\n  }\n}\n", "line 3"},
        {"", "line 1"},
        {"{\"users\": {\"a\": {}, \"a\": {}}}", "duplicate"},
        {"{\"users\": {\"a\": {\"totp\": 5}}}", "\"totp\""},
        {"{\"users\": {\"a\": {\"phone\": \"555\"}}}", "\"phone\""},
        {"[]", "top level"},
    };
    for (const auto &[text, why] : broken) {
        std::string path = s.path("users.json");
        write_file(path, text, 0640);
        struct stat before = stat_of(path);
        std::string error;
        for (bool create : {false, true}) {
            auto file = StoreFile::open(path, error, create);
            ck_assert(!file.has_value());
            ck_assert_msg(contains(error, "\"" + path + "\": ")
                              && contains(error, why)
                              && contains(error, "left as it is"),
                          "%s", error.c_str());
        }
        ck_assert_string_eq(read_file(path), text);
        struct stat after = stat_of(path);
        ck_assert_uint_eq(after.st_ino, before.st_ino);
        ck_assert_uint_eq(after.st_mode, before.st_mode);
        std::set<std::string> want = {"users.json", "users.json.lock"};
        ck_assert(s.entries() == want);
    }
}
END_TEST

START_TEST(missing_and_new_files)
{
    Scratch s;
    std::string path = s.path("users.json");
    std::string error;
    ck_assert(!StoreFile::open(path, error).has_value());
    ck_assert_msg(contains(error, path) && contains(error, "No such file"),
                  "%s", error.c_str());
    ck_assert(s.entries().empty());
    ck_assert(!StoreFile::open(s.path("no/such/dir.json"), error, true));
    ck_assert(s.entries().empty());
    ck_assert(!StoreFile::open(s.dir, error).has_value());
    ck_assert_msg(contains(error, "not a regular file"), "%s", error.c_str());

    umask(022);
    StoreFile file = open_ok(path, true);
    ck_assert_uint_eq(stat_of(path).st_mode & 07777, 0600);
    ck_assert_string_eq(read_file(path), "{\n  \"users\": {}\n}\n");
    ck_assert(file.add_user("alice", yescrypt_hash, error));
    commit_ok(file);
    ck_assert_uint_eq(stat_of(path).st_mode & 07777, 0600);
    ck_assert_uint_eq(stat_of(path + ".lock").st_mode & 07777, 0600);
    ck_assert_uint_eq(load_ok(path)->size(), 1);
    // "create" on an existing file just opens it.
    file = open_ok(path, true);
    ck_assert(file.has_user("alice"));
    commit_ok(file);
}
END_TEST

START_TEST(mode_owner_kept_no_temp_files)
{
    Scratch s;
    std::string path = s.path("users.json");
    write_file(path, rich_store, 0640);
    bool root = geteuid() == 0;
    if (root) {
        // What a tool run as root must keep: nginx's worker owns the file.
        ck_assert_int_eq(chown(path.c_str(), 65534, 65534), 0);
    }
    struct stat before = stat_of(path);
    std::string error;

    // An open without edits writes nothing.
    StoreFile file = open_ok(path);
    commit_ok(file);
    ck_assert_uint_eq(stat_of(path).st_ino, before.st_ino);

    file = open_ok(path);
    ck_assert(file.set_phone("bob", "+15551234567", error));
    commit_ok(file);
    struct stat after = stat_of(path);
    ck_assert_uint_ne(after.st_ino, before.st_ino);  // a new file, renamed
    ck_assert_uint_eq(after.st_mode & 07777, 0640);
    ck_assert_uint_eq(after.st_uid, before.st_uid);
    ck_assert_uint_eq(after.st_gid, before.st_gid);
    if (root) {
        // The lock file, made by this first writer, is the store's too.
        struct stat lock = stat_of(path + ".lock");
        ck_assert_uint_eq(lock.st_uid, 65534);
        ck_assert_uint_eq(lock.st_gid, 65534);
        ck_assert_uint_eq(lock.st_mode & 07777, 0640);
    }
    std::set<std::string> want = {"users.json", "users.json.lock"};
    ck_assert(s.entries() == want);

    // A write that fails (here: the file size limit, which binds root
    // too) leaves the file as it was, and nothing behind.
    file = open_ok(path);
    ck_assert(file.set_phone("bob", "+15550000000", error));
    struct rlimit saved;
    ck_assert_int_eq(getrlimit(RLIMIT_FSIZE, &saved), 0);
    struct rlimit tiny = {100, saved.rlim_max};
    std::signal(SIGXFSZ, SIG_IGN);
    // No ck_assert until the limit is lifted: Check writes its own file.
    int limited = setrlimit(RLIMIT_FSIZE, &tiny);
    bool committed = file.commit(error);
    int restored = setrlimit(RLIMIT_FSIZE, &saved);
    ck_assert(limited == 0 && restored == 0);
    ck_assert(!committed);
    ck_assert_msg(contains(error, "cannot write"), "%s", error.c_str());
    ck_assert_uint_eq(stat_of(path).st_ino, after.st_ino);
    ck_assert(s.entries() == want);
    ck_assert(load_ok(path)->find("bob")->phone == "+15551234567");

    // Committed once: nothing more can be done with it.
    ck_assert(!file.commit(error));
    ck_assert(!file.set_phone("bob", "+15551234567", error));
    ck_assert_msg(contains(error, "already committed"), "%s", error.c_str());
}
END_TEST

START_TEST(symlink_is_followed)
{
    Scratch s;
    std::string real = s.path("real.json"), link = s.path("users.json");
    write_file(real, rich_store, 0600);
    ck_assert_int_eq(symlink("real.json", link.c_str()), 0);
    std::string error;
    StoreFile file = open_ok(link);
    ck_assert_string_eq(file.path(), real);
    ck_assert(file.add_user("carol", yescrypt_hash, error));
    commit_ok(file);
    struct stat st;
    ck_assert_int_eq(lstat(link.c_str(), &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
    ck_assert(load_ok(link)->find("carol") != nullptr);
    std::set<std::string> want = {"real.json", "real.json.lock",
                                  "users.json"};
    ck_assert(s.entries() == want);

    // A dangling link is not replaced by a new file.
    ck_assert_int_eq(symlink("gone.json", s.path("dangling.json").c_str()), 0);
    ck_assert(!StoreFile::open(s.path("dangling.json"), error, true));
    ck_assert_int_eq(lstat(s.path("dangling.json").c_str(), &st), 0);
    ck_assert(S_ISLNK(st.st_mode));
}
END_TEST

START_TEST(lock_is_held_until_commit)
{
    Scratch s;
    std::string path = s.path("users.json");
    write_file(path, rich_store);
    auto locked = [&] {
        int fd = open((path + ".lock").c_str(), O_RDONLY);
        ck_assert(fd >= 0);
        bool busy = flock(fd, LOCK_EX | LOCK_NB) != 0;
        close(fd);
        return busy;
    };
    {
        StoreFile file = open_ok(path);
        ck_assert(locked());
        StoreFile moved = std::move(file);
        ck_assert(locked());
        commit_ok(moved);
        ck_assert(!locked());
    }
    {
        StoreFile file = open_ok(path);
        ck_assert(locked());
    }
    ck_assert(!locked());  // dropped without commit: released, unchanged
}
END_TEST

START_TEST(concurrent_writers_lose_nothing)
{
    Scratch s;
    std::string path = s.path("users.json");
    write_file(path, rich_store, 0640);
    constexpr int writers = 3, rounds = 20;
    pid_t pids[writers];
    for (int w = 0; w < writers; w++) {
        pids[w] = fork();
        ck_assert(pids[w] >= 0);
        if (pids[w] == 0) {
            for (int i = 0; i < rounds; i++) {
                std::string error;
                auto file = StoreFile::open(path, error);
                std::string name = "w" + std::to_string(w) + "-"
                    + std::to_string(i);
                if (!file || !file->add_user(name, yescrypt_hash, error)
                    || !file->set_phone("bob",
                                        "+1555000" + std::to_string(w)
                                            + std::to_string(1000 + i),
                                        error)
                    || !file->commit(error)) {
                    std::fprintf(stderr, "writer %d: %s\n", w,
                                 error.c_str());
                    _exit(1);
                }
            }
            _exit(0);
        }
    }
    for (pid_t pid : pids) {
        int status = 0;
        ck_assert_int_eq(waitpid(pid, &status, 0), pid);
        ck_assert(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    }
    auto store = load_ok(path);
    ck_assert_uint_eq(store->size(), 2 + writers * rounds);
    for (int w = 0; w < writers; w++) {
        for (int i = 0; i < rounds; i++) {
            std::string name = "w" + std::to_string(w) + "-"
                + std::to_string(i);
            ck_assert_msg(store->find(name) != nullptr, "lost %s",
                          name.c_str());
        }
    }
    JsonPtr root = load_json(path);
    ck_assert_string_eq(json_string_value(json_object_get(root.get(),
                                                          "comment")),
                        "kept");
    ck_assert_uint_eq(stat_of(path).st_mode & 07777, 0640);
    std::set<std::string> want = {"users.json", "users.json.lock"};
    ck_assert(s.entries() == want);
}
END_TEST

START_TEST(loader_reads_what_is_written)
{
    Scratch s;
    std::string path = s.path("users.json");
    std::string error;
    StoreFile file = open_ok(path, true);
    ck_assert(file.add_user("alice", yescrypt_hash, error));
    ck_assert(file.set_totp("alice", secret_b32, error));
    ck_assert(file.set_phone("alice", "+15551234567", error));
    ck_assert(file.set_default("alice", Method::call, error));
    ck_assert(file.set_recovery("alice", {recovery_hash("abc")}, error));
    auto before = file.user("alice");
    commit_ok(file);
    auto store = load_ok(path);
    const User *alice = store->find("alice");
    ck_assert(alice != nullptr && before.has_value());
    ck_assert_string_eq(alice->password_hash, before->password_hash);
    ck_assert(alice->totp->secret == *base32_decode(secret_b32));
    ck_assert_string_eq(alice->phone, "+15551234567");
    ck_assert(alice->default_method == Method::call);
    ck_assert_uint_eq(alice->recovery.size(), 1);
    ck_assert_string_eq(alice->recovery[0], recovery_hash("ABC"));
}
END_TEST

WebauthnKey test_key(const std::string &id, const std::string &name)
{
    WebauthnKey key;
    key.credential.id = id;
    key.credential.public_key = "MFkwEwYHKoZIzj0CAQ";
    key.credential.sign_count = 5;
    key.credential.transports = {"internal"};
    key.name = name;
    key.created = 1700000000;
    return key;
}

START_TEST(security_keys)
{
    Scratch s;
    std::string path = s.path("users.json");
    std::string error;
    StoreFile file = open_ok(path, true);
    ck_assert(file.add_user("alice", yescrypt_hash, error));
    ck_assert(file.add_user("bob", yescrypt_hash, error));
    ck_assert_msg(file.add_key("alice", test_key("AAEC", "Laptop"), error),
                  "%s", error.c_str());
    ck_assert(file.add_key("alice", test_key("AAED", "Phone"), error));
    // §7.1 step 22: an id registered to anyone is refused.
    ck_assert(!file.add_key("alice", test_key("AAEC", "Again"), error));
    ck_assert(contains(error, "registered already"));
    ck_assert(!file.add_key("bob", test_key("AAEC", "Stolen"), error));
    ck_assert(!file.add_key("alice", test_key("AAEE", "bad\nname"), error));
    ck_assert(!file.add_key("carol", test_key("AAEF", "X"), error));

    // Renamed and removed by id or by name; an unknown one is an error.
    ck_assert(file.rename_key("alice", "AAED", "My phone", error));
    ck_assert(!file.rename_key("alice", "AAED", "", error));
    ck_assert(!file.rename_key("alice", "Nope", "X", error));
    ck_assert(contains(error, "no key"));
    ck_assert(file.add_key("alice", test_key("AAEG", "My phone"), error));
    ck_assert(!file.remove_key("alice", "My phone", error));
    ck_assert(contains(error, "more than one key"));
    ck_assert(file.remove_key("alice", "AAEG", error));
    ck_assert(file.remove_key("alice", "Laptop", error));

    // The counter only goes up; both 0 is an authenticator without one.
    ck_assert(file.set_sign_count("alice", "AAED", 6, error)
              == CounterUpdate::saved);
    ck_assert(file.set_sign_count("alice", "AAED", 6, error)
              == CounterUpdate::went_back);
    ck_assert(contains(error, "from 6 to 6"));
    ck_assert(file.set_sign_count("alice", "AAED", 2, error)
              == CounterUpdate::went_back);
    ck_assert(file.set_sign_count("alice", "AAEC", 9, error)
              == CounterUpdate::no_key);
    ck_assert(file.set_sign_count("carol", "AAED", 9, error)
              == CounterUpdate::no_key);

    auto listed = file.list();
    ck_assert_uint_eq(listed[0].keys.size(), 1);
    ck_assert_string_eq(listed[0].keys[0].id, "AAED");
    ck_assert_string_eq(listed[0].keys[0].name, "My phone");
    ck_assert_uint_eq(listed[0].keys[0].sign_count, 6);
    ck_assert_string_eq(listed[0].keys[0].algorithm, "ES256");
    commit_ok(file);

    auto store = load_ok(path);
    const User *alice = store->find("alice");
    ck_assert_uint_eq(alice->keys.size(), 1);
    ck_assert_uint_eq(alice->keys[0].credential.sign_count, 6);
    ck_assert(store->key_owner("AAED") == alice);

    // The last key removed: no "webauthn" member left behind; a reset
    // drops keys too.
    file = open_ok(path);
    ck_assert(file.remove_key("alice", "AAED", error));
    ck_assert(file.add_key("bob", test_key("AAEH", "K"), error));
    ck_assert(file.clear_second_factors("bob", error));
    commit_ok(file);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    ck_assert(!contains(text.str(), "webauthn"));

    // Both at 0: accepted without a write.
    file = open_ok(path);
    WebauthnKey zero = test_key("AAEI", "Z");
    zero.credential.sign_count = 0;
    ck_assert(file.add_key("alice", zero, error));
    commit_ok(file);
    file = open_ok(path);
    ck_assert(file.set_sign_count("alice", "AAEI", 0, error)
              == CounterUpdate::saved);
    ck_assert(file.set_sign_count("alice", "AAEI", 1, error)
              == CounterUpdate::saved);
    ck_assert(file.set_sign_count("alice", "AAEI", 0, error)
              == CounterUpdate::went_back);
}
END_TEST

int main()
{
    Suite *suite = suite_create("store_file");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, edits_keep_unknown_members);
    tcase_add_test(tc, remove_totp_keeps_the_rest);
    tcase_add_test(tc, add_passwd_remove);
    tcase_add_test(tc, totp_phone_default_reset);
    tcase_add_test(tc, recovery_codes_use_once);
    tcase_add_test(tc, list_shows_no_secrets);
    tcase_add_test(tc, broken_file_is_not_replaced);
    tcase_add_test(tc, missing_and_new_files);
    tcase_add_test(tc, mode_owner_kept_no_temp_files);
    tcase_add_test(tc, symlink_is_followed);
    tcase_add_test(tc, lock_is_held_until_commit);
    tcase_add_test(tc, concurrent_writers_lose_nothing);
    tcase_add_test(tc, loader_reads_what_is_written);
    tcase_add_test(tc, security_keys);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
