// Password checks against hashes made at test time by the independent
// mkpasswd(1), and the shape check on stored hashes.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/password.h"
#include "unit.h"

using namespace twostep;

namespace {

// mkpasswd's hash of `password`, or "" if it fails. The password travels
// on stdin, so any byte but NUL and newline is fine.
std::string mkpasswd(const std::string &method, const std::string &password,
                     const std::string &option = "")
{
    char name[] = "/tmp/twostep-pw-XXXXXX";
    int fd = mkstemp(name);
    ck_assert_msg(fd >= 0, "mkstemp failed");
    FILE *file = fdopen(fd, "w");
    ck_assert(file != nullptr);
    fwrite(password.data(), 1, password.size(), file);
    fclose(file);

    std::string cmd = "mkpasswd -s -m " + method + " " + option + " < " + name
        + " 2>/dev/null";
    FILE *pipe = popen(cmd.c_str(), "r");
    std::string out;
    if (pipe) {
        char buf[512];
        while (fgets(buf, sizeof buf, pipe)) {
            out += buf;
        }
        if (pclose(pipe) != 0) {
            out.clear();
        }
    }
    remove(name);
    while (!out.empty() && (out.back() == '\n' || out.back() == '\r')) {
        out.pop_back();
    }
    return out;
}

std::string must_hash(const std::string &method, const std::string &password)
{
    std::string hash = mkpasswd(method, password);
    ck_assert_msg(!hash.empty(), "mkpasswd -m %s failed", method.c_str());
    return hash;
}

// The fastest of three runs, in seconds: the least noisy estimate.
template <typename F>
double fastest(F &&f)
{
    double best = 1e9;
    for (int i = 0; i < 3; i++) {
        auto start = std::chrono::steady_clock::now();
        f();
        std::chrono::duration<double> took =
            std::chrono::steady_clock::now() - start;
        best = std::min(best, took.count());
    }
    return best;
}

const char *const methods[] = {
    "yescrypt",    "gost-yescrypt", "scrypt",     "bcrypt",
    "bcrypt-a",    "sha512crypt",   "sha256crypt",
};

}  // namespace

START_TEST(matches_mkpasswd_hashes)
{
    const std::string password = "correct horse battery staple";
    for (const char *method : methods) {
        std::string hash = must_hash(method, password);
        ck_assert_msg(supported_password_hash(hash), "%s: %s", method,
                      hash.c_str());
        ck_assert_msg(password_matches(password, hash), "%s", method);
        ck_assert_msg(!password_matches(password + "!", hash), "%s", method);
        ck_assert_msg(!password_matches("Correct horse battery staple", hash),
                      "%s", method);
        ck_assert_msg(!password_matches("", hash), "%s", method);
        ck_assert_msg(!password_matches(password.substr(1), hash), "%s",
                      method);
    }
}
END_TEST

START_TEST(unusual_passwords)
{
    for (const std::string &password :
         {std::string("p\xc3\xa4ssw\xc3\xb6rd \xe2\x82\xac"),
          std::string("quote'\"`$(id);\\ & %s"), std::string(" "),
          std::string(511, 'x')}) {
        std::string hash = must_hash("sha512crypt", password);
        ck_assert(password_matches(password, hash));
        ck_assert(!password_matches(password + "x", hash));
    }
}
END_TEST

START_TEST(bcrypt_2y_variant)
{
    std::string hash = must_hash("bcrypt", "hunter2");
    ck_assert(hash.compare(0, 4, "$2b$") == 0);
    hash[2] = 'y';
    ck_assert(supported_password_hash(hash));
    ck_assert(password_matches("hunter2", hash));
    ck_assert(!password_matches("hunter3", hash));
}
END_TEST

START_TEST(tampered_hash_never_matches)
{
    std::string hash = must_hash("yescrypt", "hunter2");
    ck_assert(password_matches("hunter2", hash));
    std::string changed = hash;
    changed.back() = changed.back() == 'A' ? 'B' : 'A';
    ck_assert(!password_matches("hunter2", changed));
    ck_assert(!password_matches("hunter2", hash.substr(0, hash.size() - 1)));
    ck_assert(!password_matches("hunter2", hash + "A"));
    ck_assert(!password_matches("hunter2", hash.substr(0, hash.rfind('$'))));
}
END_TEST

START_TEST(unsupported_hashes_never_match)
{
    // md5crypt and DES work in libcrypt: only our policy refuses them.
    for (const char *method : {"md5crypt", "descrypt", "sunmd5"}) {
        std::string hash = must_hash(method, "hunter2");
        ck_assert_msg(!supported_password_hash(hash), "%s", method);
        ck_assert_msg(!password_matches("hunter2", hash), "%s", method);
    }
    for (const char *hash : {"", "*", "!", "!!", "x", "*0", "*1",
                             "$y$", "not a hash at all"}) {
        ck_assert_msg(!password_matches("", hash), "\"%s\"", hash);
        ck_assert_msg(!password_matches(hash, hash), "\"%s\"", hash);
    }
    // A locked account: "!" before a valid hash.
    std::string hash = must_hash("yescrypt", "hunter2");
    ck_assert(!password_matches("hunter2", "!" + hash));
}
END_TEST

START_TEST(nul_in_password_never_matches)
{
    std::string hash = must_hash("sha256crypt", "abc");
    ck_assert(password_matches("abc", hash));
    ck_assert(!password_matches(std::string("abc\0def", 7), hash));
    ck_assert(!password_matches(std::string("abc\0", 4), hash));
}
END_TEST

START_TEST(long_passwords_never_match)
{
    // bcrypt reads only the first 72 bytes, so without the length bound a
    // longer password with the same start would match.
    std::string hash = must_hash("bcrypt", std::string(72, 'a'));
    ck_assert(password_matches(std::string(72, 'a'), hash));
    ck_assert(password_matches(std::string(511, 'a'), hash));
    ck_assert(!password_matches(std::string(512, 'a'), hash));
    ck_assert(!password_matches(std::string(1025, 'a'), hash));
    ck_assert(!password_matches(std::string(1000000, 'a'), hash));
}
END_TEST

START_TEST(supported_hash_shapes)
{
    const char *good[] = {
        "$y$j9T$ZUPXUpwekzow9B6bcVtNp1$irfUwHzqw/w5QttIcBLieg2jC4F..ZWzivYVNe"
        "9j6W/",
        "$gy$j9T$bA21YqbDIIuhIEyHgRNxh.$8DnMb0dIlIUGPn3eoG03XXRhIULgCOQnZHRRUg"
        "bUBQ0",
        "$7$CU..../....oDrstXQzLI.7jWlJML/CZ.$EsF.FbY3VTQBGNQdub8QsZMiGt08cfw1"
        "ghNP.Ue7Mu2",
        "$2b$05$EYtg664DjO8ip.19SbbVg.khPt/uK92R6devDZOWLsWWZQxH5ylIG",
        "$2a$05$K.AEuCuyaF4hgneJBCt1velq0xODI43ZsV6Hs28VR0dP/QQmIRdYe",
        "$2y$05$K.AEuCuyaF4hgneJBCt1velq0xODI43ZsV6Hs28VR0dP/QQmIRdYe",
        "$6$avvMSRUsVS04ksip$ZCSVlpdhz3YX9YH7LtPfBbCnrwozUagRKOxm8G5fwn7zzYaJL"
        "rIJ2mtfPsWCjK.tqKnZAwlvCtCMTf3fQVkCN.",
        "$6$rounds=10000$avvMSRUsVS04ksip$ZCSVlpdhz3YX9YH7LtPfBbCnrwozUagRKOxm"
        "8G5fwn7zzYaJLrIJ2mtfPsWCjK.tqKnZAwlvCtCMTf3fQVkCN.",
        "$5$6MGfnA4zEAw9h81d$EQw5apOwmHLV5oKsk8RV55bpK/F4lsP8JmSF5VBhMMC",
    };
    for (const char *hash : good) {
        ck_assert_msg(supported_password_hash(hash), "%s", hash);
    }
    const std::string y =
        "$y$j9T$ZUPXUpwekzow9B6bcVtNp1$irfUwHzqw/w5QttIcBLieg2jC4F..ZWzivYVNe"
        "9j6W/";
    const std::string bad[] = {
        "",
        "$1$imJj0tsl$cyyu7Y74bSlnxnjLJKpfk.",      // md5crypt
        ".XRH5mmC0uTZQ",                          // DES
        "_J9..CCCCXBrJUJV154M",                   // BSDi DES
        "$3$$8846f7eaee8fb117ad06bdd830b7586c",   // NT
        "$md5,rounds=904$sWDkT4Ec$$zr.ZGKb5c6XRgW2cA.bpG.",
        "$y$j9T$ZUPXUpwekzow9B6bcVtNp1$",         // setting, no hash
        "$6$salt",
        "$2b$05$",
        "!" + y,                                  // locked
        "*" + y,
        "y" + y.substr(1),
        " " + y,
        y + " ",
        y + "\n",
        y.substr(0, 10) + "\t" + y.substr(11),
        y.substr(0, 10) + std::string(1, '\0') + y.substr(11),
        y.substr(0, 10) + "\xc3\xa9" + y.substr(12),
        y.substr(0, 10) + ":" + y.substr(11),
        "$y$j9T$ZUPXUpwekzow9B6bcVtNp1$" + std::string(300, 'a'),
    };
    for (const std::string &hash : bad) {
        ck_assert_msg(!supported_password_hash(hash), "\"%s\"", hash.c_str());
    }
    // Only the scheme differs: the prefix alone must refuse these.
    for (const char *prefix : {"$1$", "$3$", "$md5$", "$sha1$", "$2$",
                               "$2x$", "$8$", "$Y$", "$", ""}) {
        std::string hash = prefix + y.substr(3);
        ck_assert_msg(!supported_password_hash(hash), "\"%s\"", hash.c_str());
    }
}
END_TEST

START_TEST(dummy_check_spends_real_work)
{
    std::string hash = must_hash("yescrypt", "hunter2");
    double real = fastest([&] { password_matches("hunter3", hash); });
    double dummy = fastest([] { password_dummy_check("hunter3"); });
    // A broken dummy hash would make crypt fail in microseconds.
    ck_assert_msg(dummy * 4 > real, "dummy %.6fs, real %.6fs", dummy, real);
    ck_assert_msg(real * 4 > dummy, "dummy %.6fs, real %.6fs", dummy, real);

    double empty = fastest([] { password_dummy_check(""); });
    double huge = fastest(
        [] { password_dummy_check(std::string(100000, 'x')); });
    ck_assert_msg(empty * 4 > real, "empty %.6fs, real %.6fs", empty, real);
    ck_assert_msg(huge * 4 > real, "huge %.6fs, real %.6fs", huge, real);
}
END_TEST

// What a dummy check runs is the scheme, cost and salt of the hash it
// stands in for: the same crypt(3) work, without comparing run times.
START_TEST(setting_keeps_scheme_cost_and_salt)
{
    const struct {
        const char *method;
        const char *option;
        const char *prefix;
    } cases[] = {
        {"yescrypt", nullptr, "$y$"},
        {"sha512crypt", "--rounds=20000", "$6$rounds=20000$"},
        {"sha512crypt", nullptr, "$6$"},
        {"sha256crypt", nullptr, "$5$"},
        {"bcrypt", "--rounds=6", "$2b$06$"},
        {"scrypt", nullptr, "$7$"},
    };
    for (const auto &c : cases) {
        std::string hash = c.option ? mkpasswd(c.method, "hunter2", c.option)
                                    : must_hash(c.method, "hunter2");
        ck_assert_msg(!hash.empty(), "mkpasswd -m %s failed", c.method);
        std::string setting = password_setting(hash);
        // The hash without its last part: scheme, cost and salt.
        ck_assert_msg(setting.size() < hash.size()
                      && hash.compare(0, setting.size(), setting) == 0
                      && setting.compare(0, strlen(c.prefix), c.prefix) == 0,
                      "%s: %s -> %s", c.method, hash.c_str(),
                      setting.c_str());
        ck_assert_msg(hash.size() - setting.size() >= 31, "%s: %s",
                      c.method, setting.c_str());
        // crypt(3) takes it as it is (no fallback to the yescrypt dummy),
        // and reproduces the hash from it.
        ck_assert_msg(password_dummy_check("hunter3", setting), "%s",
                      c.method);
        ck_assert_msg(password_matches("hunter2", hash), "%s", c.method);
    }
    ck_assert_string_eq(password_setting("$1$abc$def"), "");
    ck_assert_string_eq(password_setting(""), "");
    ck_assert(!password_dummy_check("hunter3", ""));
    ck_assert(!password_dummy_check("hunter3", "$1$abcdefgh"));
}
END_TEST

START_TEST(refused_checks_spend_real_work)
{
    std::string hash = must_hash("yescrypt", "hunter2");
    double real = fastest([&] { password_matches("hunter3", hash); });
    double no_hash = fastest([] { password_matches("hunter3", ""); });
    double too_long = fastest(
        [&] { password_matches(std::string(2000, 'x'), hash); });
    double with_nul = fastest(
        [&] { password_matches(std::string("a\0b", 3), hash); });
    ck_assert_msg(no_hash * 4 > real, "no hash %.6fs, real %.6fs", no_hash,
                  real);
    ck_assert_msg(too_long * 4 > real, "too long %.6fs, real %.6fs",
                  too_long, real);
    ck_assert_msg(with_nul * 4 > real, "NUL %.6fs, real %.6fs", with_nul,
                  real);
}
END_TEST

int main()
{
    Suite *suite = suite_create("password");
    TCase *tc = tcase_create("core");
    tcase_set_timeout(tc, 30);
    tcase_add_test(tc, matches_mkpasswd_hashes);
    tcase_add_test(tc, unusual_passwords);
    tcase_add_test(tc, bcrypt_2y_variant);
    tcase_add_test(tc, tampered_hash_never_matches);
    tcase_add_test(tc, unsupported_hashes_never_match);
    tcase_add_test(tc, nul_in_password_never_matches);
    tcase_add_test(tc, long_passwords_never_match);
    tcase_add_test(tc, supported_hash_shapes);
    tcase_add_test(tc, dummy_check_spends_real_work);
    tcase_add_test(tc, refused_checks_spend_real_work);
    tcase_add_test(tc, setting_keeps_scheme_cost_and_salt);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
