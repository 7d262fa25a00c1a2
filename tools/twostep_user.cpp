// twostep-user: the administrators' tool for the user store, on the same
// core as the module (store_file.h for safe edits, enroll.h for secrets).
#include <crypt.h>
#include <openssl/crypto.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <exception>
#include <iostream>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/base32.h"
#include "core/enroll.h"
#include "core/methods.h"
#include "core/ntfy.h"
#include "core/password.h"
#include "core/store_file.h"
#include "core/user_store.h"

using namespace twostep;

namespace {

constexpr int exit_failure = 1;
constexpr int exit_usage = 2;
constexpr const char *default_issuer = "nginx-twostep";
constexpr int recovery_code_count = 10;
// NIST SP 800-63B 5.1.1.1: user-chosen memorized secrets of at least 8
// characters.
constexpr std::size_t min_password_chars = 8;
// libxcrypt refuses longer passphrases.
constexpr std::size_t max_password_bytes = CRYPT_MAX_PASSPHRASE_SIZE - 1;

constexpr const char usage_text[] =
    "Usage: twostep-user --users FILE COMMAND [ARGUMENTS]\n"
    "\n"
    "Edits the nginx-twostep user store (the file named by twostep_users).\n"
    "nginx reads the store when it loads its configuration: run\n"
    "`nginx -s reload` to apply changes.\n"
    "\n"
    "Commands:\n"
    "  add USER                  add a user; the password is read from\n"
    "                            standard input (asked twice on a "
    "terminal).\n"
    "                            Creates FILE if it does not exist\n"
    "  passwd USER               set a new password, read like add\n"
    "  remove USER               delete a user\n"
    "  list                      users, methods, masked phone, default "
    "method,\n"
    "                            then their security keys and passkeys\n"
    "  enroll-totp USER [--issuer NAME]\n"
    "                            new authenticator app secret (replaces the\n"
    "                            old one): prints the otpauth:// URI and a "
    "QR\n"
    "                            code to scan; issuer: nginx-twostep\n"
    "  set-phone USER +E164      phone number, e.g. +15551234567\n"
    "  set-ntfy USER [TOPIC]     ntfy topic for push (random, 144 bits,\n"
    "                            when not given): prints the topic to\n"
    "                            subscribe to in the ntfy app\n"
    "  set-default USER METHOD   preferred second step: totp, push, call, "
    "sms\n"
    "  reset USER                drop the authenticator, phone, default "
    "method\n"
    "                            and recovery codes: the user enrolls again\n"
    "  recovery-codes USER       10 new one-time recovery codes (replacing\n"
    "                            the old ones), shown only this once\n"
    "  remove-key USER NAME|ID   remove a security key or passkey (by the\n"
    "                            name or the id `list` shows)\n"
    "\n"
    "Options:\n"
    "  --users FILE              the user store (required)\n"
    "  -h, --help                show this help\n"
    "\n"
    "Exit status: 0 done, 1 failed (unknown or existing user, invalid or\n"
    "unwritable store: an invalid store is reported and left as it is),\n"
    "2 wrong usage.\n";

class UsageError : public std::exception {
public:
    explicit UsageError(std::string what) : what_(std::move(what)) {}
    const char *what() const noexcept override { return what_.c_str(); }

private:
    std::string what_;
};

class Failure : public std::exception {
public:
    explicit Failure(std::string what) : what_(std::move(what)) {}
    const char *what() const noexcept override { return what_.c_str(); }

private:
    std::string what_;
};

// A string wiped when it goes away: passwords.
class Secret {
public:
    Secret() = default;
    Secret(const Secret &) = delete;
    Secret &operator=(const Secret &) = delete;
    ~Secret() { OPENSSL_cleanse(text.data(), text.size()); }
    std::string text;
};

// ------------------------------------------------------------- passwords

// Echo off while a password is typed, and back on however the tool ends.
struct termios saved_termios;
volatile std::sig_atomic_t echo_off = 0;

void restore_echo()
{
    if (echo_off) {
        tcsetattr(STDIN_FILENO, TCSAFLUSH, &saved_termios);
        echo_off = 0;
    }
}

extern "C" void on_signal(int sig)
{
    restore_echo();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

class NoEcho {
public:
    NoEcho()
    {
        if (tcgetattr(STDIN_FILENO, &saved_termios) != 0) {
            throw Failure("cannot read the terminal settings");
        }
        struct termios quiet = saved_termios;
        quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
        quiet.c_lflag |= ECHONL;
        std::signal(SIGINT, on_signal);
        std::signal(SIGTERM, on_signal);
        std::signal(SIGHUP, on_signal);
        echo_off = 1;
        if (tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
            echo_off = 0;
            throw Failure("cannot turn off echo on the terminal");
        }
    }
    ~NoEcho() { restore_echo(); }
    NoEcho(const NoEcho &) = delete;
    NoEcho &operator=(const NoEcho &) = delete;
};

// One line of standard input without its line end; false at end of input.
bool read_line(Secret &out)
{
    out.text.clear();
    bool any = false;
    int c;
    while ((c = std::getchar()) != EOF) {
        any = true;
        if (c == '\n') {
            break;
        }
        out.text += static_cast<char>(c);
    }
    if (!out.text.empty() && out.text.back() == '\r') {
        out.text.pop_back();
    }
    return any;
}

std::size_t utf8_chars(std::string_view text)
{
    std::size_t n = 0;
    for (char c : text) {
        n += (static_cast<unsigned char>(c) & 0xc0) != 0x80;
    }
    return n;
}

void check_password(const std::string &password)
{
    if (password.find('\0') != std::string::npos) {
        throw Failure("the password contains a NUL byte");
    }
    if (utf8_chars(password) < min_password_chars) {
        throw Failure("the password is too short: use at least "
                      + std::to_string(min_password_chars) + " characters");
    }
    if (password.size() > max_password_bytes) {
        throw Failure("the password is too long: at most "
                      + std::to_string(max_password_bytes) + " bytes");
    }
}

// From a terminal: asked twice, echo off. Otherwise: the first line.
void read_password(Secret &password)
{
    if (!isatty(STDIN_FILENO)) {
        if (!read_line(password)) {
            throw Failure("no password on standard input");
        }
        check_password(password.text);
        return;
    }
    Secret again;
    {
        NoEcho quiet;
        std::fputs("New password: ", stderr);
        std::fflush(stderr);
        bool got = read_line(password);
        std::fputs("Retype new password: ", stderr);
        std::fflush(stderr);
        got = got && read_line(again);
        if (!got) {
            throw Failure("no password entered");
        }
    }
    if (password.text != again.text) {
        throw Failure("the passwords do not match; nothing was changed");
    }
    check_password(password.text);
}

// yescrypt with libxcrypt's default cost, Debian's default for
// /etc/shadow: a salted, deliberately slow hash (OWASP ASVS 2.4.1).
std::string hash_password(const std::string &password)
{
    char setting[CRYPT_GENSALT_OUTPUT_SIZE];
    if (!crypt_gensalt_rn("$y$", 0, nullptr, 0, setting, sizeof setting)) {
        throw Failure(std::string("cannot make a yescrypt salt: ")
                      + std::strerror(errno));
    }
    auto data = std::make_unique<crypt_data>();
    const char *hash = crypt_rn(password.c_str(), setting, data.get(),
                                sizeof *data);
    std::string out = hash && hash[0] != '*' ? hash : "";
    OPENSSL_cleanse(data.get(), sizeof *data);
    if (!supported_password_hash(out)) {
        throw Failure("yescrypt hashing failed");
    }
    return out;
}

// ---------------------------------------------------------------- store

StoreFile open_store(const std::string &path, bool create = false)
{
    std::string error;
    auto file = StoreFile::open(path, error, create);
    if (!file) {
        throw Failure(error);
    }
    return std::move(*file);
}

void check(bool ok, const std::string &error)
{
    if (!ok) {
        throw Failure(error);
    }
}

void commit(StoreFile &file)
{
    std::string error;
    check(file.commit(error), error);
}

void need_user_name(std::string_view name)
{
    if (!valid_user_name(name)) {
        throw UsageError("not a valid user name: use 1 to 64 characters of "
                         "A-Z a-z 0-9 . _ @ + -");
    }
}

// ------------------------------------------------------------- commands

struct Args {
    std::string users;
    std::string command;
    std::vector<std::string> rest;   // positional arguments
    std::optional<std::string> issuer;
};

void expect_args(const Args &args, std::size_t n, const char *synopsis)
{
    if (args.rest.size() != n) {
        throw UsageError(std::string("usage: twostep-user --users FILE ")
                         + synopsis);
    }
    if (args.issuer && args.command != "enroll-totp") {
        throw UsageError("--issuer is only for enroll-totp");
    }
}

int cmd_add(const Args &args)
{
    expect_args(args, 1, "add USER");
    const std::string &name = args.rest[0];
    need_user_name(name);
    {
        // Refused before a password is asked for; checked again below,
        // under the lock. Only a missing store is created.
        std::string error;
        auto file = StoreFile::open(args.users, error);
        struct stat st;
        if (!file && (::stat(args.users.c_str(), &st) == 0
                      || errno != ENOENT)) {
            throw Failure(error);
        }
        if (file && file->has_user(name)) {
            throw Failure("user \"" + name + "\" already exists");
        }
    }
    Secret password;
    read_password(password);
    std::string hash = hash_password(password.text);
    StoreFile file = open_store(args.users, true);
    std::string error;
    check(file.add_user(name, hash, error), error);
    commit(file);
    std::printf("added user %s\n", name.c_str());
    return 0;
}

int cmd_passwd(const Args &args)
{
    expect_args(args, 1, "passwd USER");
    const std::string &name = args.rest[0];
    if (!open_store(args.users).has_user(name)) {
        throw Failure("no user \"" + name + "\"");
    }
    Secret password;
    read_password(password);
    std::string hash = hash_password(password.text);
    StoreFile file = open_store(args.users);
    std::string error;
    check(file.set_password(name, hash, error), error);
    commit(file);
    std::printf("changed the password of %s\n", name.c_str());
    return 0;
}

int cmd_remove(const Args &args)
{
    expect_args(args, 1, "remove USER");
    StoreFile file = open_store(args.users);
    std::string error;
    check(file.remove_user(args.rest[0], error), error);
    commit(file);
    std::printf("removed user %s\n", args.rest[0].c_str());
    return 0;
}

std::string pad(std::string text, std::size_t width)
{
    text.resize(std::max(text.size(), width), ' ');
    return text;
}

int cmd_list(const Args &args)
{
    expect_args(args, 0, "list");
    StoreFile file = open_store(args.users);
    std::vector<UserSummary> users = file.list();
    std::string error;
    file.commit(error);  // nothing to write: releases the lock

    std::vector<std::vector<std::string>> rows = {
        {"USER", "PASSWORD", "METHODS", "PHONE", "DEFAULT", "RECOVERY"}};
    for (const UserSummary &u : users) {
        std::string methods = methods_to_list(u.methods);
        rows.push_back({u.name, u.password ? "yes" : "no",
                        methods.empty() ? "-" : methods,
                        u.phone_masked.empty() ? "-" : u.phone_masked,
                        u.default_method ? method_name(*u.default_method)
                                         : "-",
                        u.recovery_codes ? std::to_string(u.recovery_codes)
                                               + " left"
                                         : "-"});
    }
    std::vector<std::size_t> width(rows[0].size(), 0);
    for (const auto &row : rows) {
        for (std::size_t i = 0; i < row.size(); i++) {
            width[i] = std::max(width[i], row[i].size());
        }
    }
    for (const auto &row : rows) {
        std::string line;
        for (std::size_t i = 0; i < row.size(); i++) {
            line += i + 1 < row.size() ? pad(row[i], width[i] + 2) : row[i];
        }
        std::printf("%s\n", line.c_str());
    }
    if (users.empty()) {
        std::printf("(no users)\n");
    }

    // Keys after the table: public data only (WebAuthn stores no secret).
    bool heading = false;
    for (const UserSummary &u : users) {
        for (const KeySummary &k : u.keys) {
            if (!heading) {
                std::printf("\nSecurity keys and passkeys:\n");
                heading = true;
            }
            char added[32] = "-";
            std::time_t t = static_cast<std::time_t>(k.created);
            std::tm tm;
            if (k.created > 0 && gmtime_r(&t, &tm)) {
                std::strftime(added, sizeof(added), "%Y-%m-%d", &tm);
            }
            std::printf("  %s  \"%s\"  id %s  %s  added %s  sign count %u\n",
                        u.name.c_str(), k.name.c_str(), k.id.c_str(),
                        k.algorithm, added, k.sign_count);
        }
    }
    return 0;
}

int cmd_remove_key(const Args &args)
{
    expect_args(args, 2, "remove-key USER NAME|ID");
    StoreFile file = open_store(args.users);
    std::string error;
    check(file.remove_key(args.rest[0], args.rest[1], error), error);
    commit(file);
    std::printf("removed the key \"%s\" of %s\n", args.rest[1].c_str(),
                args.rest[0].c_str());
    return 0;
}

int cmd_enroll_totp(const Args &args)
{
    expect_args(args, 1, "enroll-totp USER [--issuer NAME]");
    const std::string &name = args.rest[0];
    std::string issuer = args.issuer.value_or(default_issuer);
    if (issuer.empty() || issuer.size() > 64) {
        throw UsageError("the issuer must be 1 to 64 bytes");
    }
    StoreFile file = open_store(args.users);
    std::optional<User> before = file.user(name);
    if (!before) {
        throw Failure("no user \"" + name + "\"");
    }
    std::string secret = new_totp_secret();
    TotpParams params;
    params.secret = *base32_decode(secret);
    std::string error;
    check(file.set_totp(name, params, error), error);
    commit(file);

    std::string uri = otpauth_uri(issuer, name, params);
    std::printf("%s\n", qr_terminal(uri).c_str());
    std::printf("Scan the QR code with %s's authenticator app, or open:\n"
                "  %s\n"
                "To type it in instead: account %s, key %s (time-based)\n",
                name.c_str(), uri.c_str(), name.c_str(), secret.c_str());
    if (before->totp) {
        std::printf("The previous authenticator secret no longer works.\n");
    }
    OPENSSL_cleanse(secret.data(), secret.size());
    OPENSSL_cleanse(uri.data(), uri.size());
    return 0;
}

int cmd_set_phone(const Args &args)
{
    expect_args(args, 2, "set-phone USER +E164");
    if (!valid_phone(args.rest[1])) {
        throw UsageError("not an E.164 phone number: \"+\" and 8 to 15 "
                         "digits, e.g. +15551234567");
    }
    StoreFile file = open_store(args.users);
    std::string error;
    check(file.set_phone(args.rest[0], args.rest[1], error), error);
    commit(file);
    std::printf("set the phone of %s to %s\n", args.rest[0].c_str(),
                mask_phone(args.rest[1]).c_str());
    return 0;
}

int cmd_set_ntfy(const Args &args)
{
    if (args.rest.size() != 1 && args.rest.size() != 2) {
        throw UsageError("usage: twostep-user --users FILE set-ntfy USER "
                         "[TOPIC]");
    }
    std::string topic = args.rest.size() == 2 ? args.rest[1]
                                              : ntfy::new_topic();
    if (!ntfy::valid_topic(topic)) {
        throw UsageError("not an ntfy topic: 1 to 64 of [A-Za-z0-9_-]");
    }
    if (topic.size() < 22) {
        std::fprintf(stderr, "warning: whoever knows a topic can read and "
                             "answer its pushes: a short one can be "
                             "guessed\n");
    }
    StoreFile file = open_store(args.users);
    std::string error;
    check(file.set_ntfy_topic(args.rest[0], topic, error), error);
    commit(file);
    std::printf("set the ntfy topic of %s to %s\nSubscribe to it in the "
                "ntfy app (keep it secret).\n", args.rest[0].c_str(),
                topic.c_str());
    return 0;
}

int cmd_set_default(const Args &args)
{
    expect_args(args, 2, "set-default USER METHOD");
    auto method = method_from_name(args.rest[1]);
    if (!method) {
        throw UsageError("unknown method: use totp, push, call or sms");
    }
    StoreFile file = open_store(args.users);
    std::string error;
    check(file.set_default(args.rest[0], *method, error), error);
    commit(file);
    std::printf("set the default method of %s to %s\n",
                args.rest[0].c_str(), method_name(*method));
    return 0;
}

int cmd_reset(const Args &args)
{
    expect_args(args, 1, "reset USER");
    StoreFile file = open_store(args.users);
    std::string error;
    check(file.clear_second_factors(args.rest[0], error), error);
    commit(file);
    std::printf("reset %s: no authenticator, phone, default method or "
                "recovery codes left\n",
                args.rest[0].c_str());
    return 0;
}

int cmd_recovery_codes(const Args &args)
{
    expect_args(args, 1, "recovery-codes USER");
    const std::string &name = args.rest[0];
    std::vector<std::string> codes = new_recovery_codes(recovery_code_count);
    std::vector<std::string> hashes;
    for (const std::string &code : codes) {
        hashes.push_back(recovery_hash(code));
    }
    StoreFile file = open_store(args.users);
    std::string error;
    check(file.set_recovery(name, hashes, error), error);
    commit(file);
    std::printf("Recovery codes for %s, each usable once. They are shown "
                "only now;\nthe old ones no longer work.\n\n",
                name.c_str());
    for (std::string &code : codes) {
        std::printf("  %s\n", code.c_str());
        OPENSSL_cleanse(code.data(), code.size());
    }
    return 0;
}

// Options may come before or after the command: --users FILE,
// --users=FILE, --issuer NAME, --issuer=NAME, -h/--help; "--" ends them.
std::optional<Args> parse_args(int argc, char **argv)
{
    Args args;
    bool users_given = false;
    bool options = true;
    for (int i = 1; i < argc; i++) {
        std::string_view arg = argv[i];
        auto value = [&](std::string_view option) -> std::optional<
                                                      std::string> {
            if (arg == option) {
                if (i + 1 >= argc) {
                    throw UsageError(std::string(option) + " needs a value");
                }
                return std::string(argv[++i]);
            }
            if (arg.substr(0, option.size() + 1) == std::string(option) + "=") {
                return std::string(arg.substr(option.size() + 1));
            }
            return std::nullopt;
        };
        if (options && (arg == "-h" || arg == "--help")) {
            return std::nullopt;
        }
        if (options && arg == "--") {
            options = false;
            continue;
        }
        if (options) {
            if (auto v = value("--users")) {
                args.users = *v;
                users_given = true;
                continue;
            }
            if (auto v = value("--issuer")) {
                args.issuer = *v;
                continue;
            }
            if (arg.size() > 1 && arg[0] == '-') {
                throw UsageError("unknown option " + std::string(arg));
            }
        }
        if (args.command.empty()) {
            args.command = arg;
        } else {
            args.rest.emplace_back(arg);
        }
    }
    if (!users_given || args.users.empty()) {
        throw UsageError("--users FILE is required");
    }
    if (args.command.empty()) {
        throw UsageError("no command given");
    }
    return args;
}

int run(int argc, char **argv)
{
    std::optional<Args> args = parse_args(argc, argv);
    if (!args) {
        std::fputs(usage_text, stdout);
        return 0;
    }
    using Command = int (*)(const Args &);
    static const std::pair<const char *, Command> commands[] = {
        {"add", cmd_add},
        {"passwd", cmd_passwd},
        {"remove", cmd_remove},
        {"list", cmd_list},
        {"enroll-totp", cmd_enroll_totp},
        {"set-phone", cmd_set_phone},
        {"set-ntfy", cmd_set_ntfy},
        {"set-default", cmd_set_default},
        {"reset", cmd_reset},
        {"recovery-codes", cmd_recovery_codes},
        {"remove-key", cmd_remove_key},
    };
    for (const auto &[name, fn] : commands) {
        if (args->command == name) {
            return fn(*args);
        }
    }
    throw UsageError("unknown command \"" + args->command + "\"");
}

}  // namespace

int main(int argc, char **argv)
{
    try {
        return run(argc, argv);
    } catch (const UsageError &e) {
        std::fprintf(stderr, "twostep-user: %s\n", e.what());
        std::fprintf(stderr, "Try 'twostep-user --help'.\n");
        return exit_usage;
    } catch (const Failure &e) {
        std::fprintf(stderr, "twostep-user: %s\n", e.what());
        return exit_failure;
    } catch (const std::exception &e) {
        std::fprintf(stderr, "twostep-user: %s\n", e.what());
        return exit_failure;
    }
}
