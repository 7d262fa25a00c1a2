// The JSON user store: what it accepts, and an error naming the place for
// everything it refuses.
#include <cstdio>
#include <cstdlib>
#include <initializer_list>
#include <string>
#include <unistd.h>

#include "core/base32.h"
#include "core/keyring.h"
#include "core/user_store.h"
#include "unit.h"

using namespace twostep;

namespace {

// mkpasswd -m yescrypt secret
const std::string yescrypt_hash =
    "$y$j9T$PvNvAbWZCMvTVtA0ebyWb0$BlwutcBWkjy69x.yn5ymfkzuz1tXHrs.ydUnV.L02e3";
// 20 bytes: "Hello!\xde\xad\xbe\xef" twice.
const std::string secret_b32 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
const std::string secret_raw = "Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef";

bool contains(const std::string &text, const std::string &part)
{
    return text.find(part) != std::string::npos;
}

// Fails unless `json` is refused with an error containing every one of
// `parts`.
void parse_fails(const std::string &json,
                 std::initializer_list<std::string> parts)
{
    std::string error;
    auto store = UserStore::parse(json, error);
    ck_assert_msg(store == nullptr, "accepted: %s", json.c_str());
    for (const std::string &part : parts) {
        ck_assert_msg(contains(error, part), "error '%s' lacks '%s' for %s",
                      error.c_str(), part.c_str(), json.c_str());
    }
}

std::shared_ptr<const UserStore> parse_ok(const std::string &json)
{
    std::string error;
    auto store = UserStore::parse(json, error);
    ck_assert_msg(store != nullptr, "refused: %s: %s", json.c_str(),
                  error.c_str());
    return store;
}

// {"users": {"u": <user>}}
std::string one_user(const std::string &user)
{
    return R"({"users": {"u": )" + user + "}}";
}

// Loads `text` from a temporary file, removed before anything is checked
// (a failed check ends the test at once). Sets `path` to the file's name.
std::shared_ptr<const UserStore> load_text(const std::string &text,
                                           std::string &path,
                                           std::string &error)
{
    char name[] = "/tmp/twostep-users-XXXXXX";
    int fd = mkstemp(name);
    bool written = fd >= 0
        && write(fd, text.data(), text.size())
               == static_cast<ssize_t>(text.size());
    if (fd >= 0) {
        close(fd);
    }
    path = name;
    auto store = written ? UserStore::load(path, error) : nullptr;
    remove(name);
    ck_assert_msg(written, "cannot write %s", name);
    return store;
}

}  // namespace

START_TEST(valid_store)
{
    auto store = parse_ok(R"({
  "comment": "unknown top-level members are ignored",
  "users": {
    "alice": {"password": ")" + yescrypt_hash + R"(", "totp": ")"
                          + secret_b32 + R"("},
    "bob.smith@example.com": {
      "totp": {"secret": "jbsw y3dp ehpk 3pxp jbsw y3dp ehpk 3pxp",
               "algorithm": "SHA256", "digits": 8, "period": 60,
               "label": "ignored"},
      "phone": "+15551234567", "duo_username": "bob", "default": "push"
    },
    "carol": {},
    "dave+x_y-z": {"password": ")" + yescrypt_hash + R"("},
    "erin": {"totp": {"secret": ")" + secret_b32 + R"("}}
  }
})");
    ck_assert_uint_eq(store->size(), 5);

    const User *alice = store->find("alice");
    ck_assert(alice != nullptr);
    ck_assert_string_eq(alice->name, "alice");
    ck_assert_string_eq(alice->password_hash, yescrypt_hash);
    ck_assert(alice->totp.has_value());
    ck_assert(alice->totp->secret == secret_raw);
    ck_assert(alice->totp->alg == HashAlg::sha1);
    ck_assert_int_eq(alice->totp->digits, 6);
    ck_assert_int_eq(alice->totp->period, 30);

    const User *bob = store->find("bob.smith@example.com");
    ck_assert(bob != nullptr);
    ck_assert(bob->password_hash.empty());
    ck_assert(bob->totp.has_value());
    ck_assert(bob->totp->secret == secret_raw);
    ck_assert(bob->totp->alg == HashAlg::sha256);
    ck_assert_int_eq(bob->totp->digits, 8);
    ck_assert_int_eq(bob->totp->period, 60);

    const User *carol = store->find("carol");
    ck_assert(carol != nullptr);
    ck_assert(carol->password_hash.empty());
    ck_assert(!carol->totp.has_value());

    const User *dave = store->find("dave+x_y-z");
    ck_assert(dave != nullptr);
    ck_assert_string_eq(dave->password_hash, yescrypt_hash);
    ck_assert(!dave->totp.has_value());

    const User *erin = store->find("erin");
    ck_assert(erin != nullptr);
    ck_assert(erin->totp->alg == HashAlg::sha1);
    ck_assert_int_eq(erin->totp->digits, 6);
    ck_assert_int_eq(erin->totp->period, 30);

    ck_assert(store->find("nobody") == nullptr);
    ck_assert(store->find("Alice") == nullptr);
    ck_assert(store->find("") == nullptr);
    ck_assert(store->find("alic") == nullptr);
}
END_TEST

START_TEST(empty_store)
{
    ck_assert_uint_eq(parse_ok(R"({"users": {}})")->size(), 0);
}
END_TEST

START_TEST(methods_of_user)
{
    auto store = parse_ok(R"({"users": {
        "t": {"totp": ")" + secret_b32 + R"("},
        "p": {"password": ")" + yescrypt_hash + R"("},
        "n": {}}})");
    MethodSet t = store->find("t")->methods();
    ck_assert_uint_eq(t, static_cast<MethodSet>(Method::totp));
    ck_assert(has_method(t, Method::totp));
    ck_assert(!has_method(t, Method::sms));
    ck_assert_uint_eq(store->find("p")->methods(), 0);
    ck_assert_uint_eq(store->find("n")->methods(), 0);
}
END_TEST

START_TEST(totp_boundaries)
{
    std::string s16 = base32_encode(std::string(16, '\x5a'));
    std::string s15 = base32_encode(std::string(15, '\x5a'));
    auto store = parse_ok(one_user(R"({"totp": ")" + s16 + R"("})"));
    ck_assert_uint_eq(store->find("u")->totp->secret.size(), 16);
    parse_fails(one_user(R"({"totp": ")" + s15 + R"("})"),
                {R"(user "u")", R"("totp")", "too short", "15 bytes",
                 "16 bytes", "128 bits", "RFC 4226"});
    parse_fails(one_user(R"({"totp": {"secret": ")" + s15 + R"("}})"),
                {R"(user "u")", R"("totp.secret")", "too short"});

    for (int digits : {6, 7, 8}) {
        store = parse_ok(one_user(R"({"totp": {"secret": ")" + secret_b32
                                  + R"(", "digits": )"
                                  + std::to_string(digits) + "}}"));
        ck_assert_int_eq(store->find("u")->totp->digits, digits);
    }
    for (int period : {15, 30, 300}) {
        store = parse_ok(one_user(R"({"totp": {"secret": ")" + secret_b32
                                  + R"(", "period": )"
                                  + std::to_string(period) + "}}"));
        ck_assert_int_eq(store->find("u")->totp->period, period);
    }
    const std::pair<const char *, HashAlg> algs[] = {
        {"SHA1", HashAlg::sha1},
        {"SHA256", HashAlg::sha256},
        {"SHA512", HashAlg::sha512},
    };
    for (const auto &[name, alg] : algs) {
        store = parse_ok(one_user(R"({"totp": {"secret": ")" + secret_b32
                                  + R"(", "algorithm": ")" + name + "\"}}"));
        ck_assert(store->find("u")->totp->alg == alg);
    }
}
END_TEST

START_TEST(bad_totp)
{
    const std::string pre = R"({"totp": {"secret": ")" + secret_b32 + "\", ";
    parse_fails(one_user(R"({"totp": 5})"),
                {R"(user "u")", R"("totp")", "base32 string or an object"});
    parse_fails(one_user(R"({"totp": null})"),
                {R"(user "u")", R"("totp")", "base32 string or an object"});
    parse_fails(one_user(R"({"totp": "not base32!"})"),
                {R"(user "u")", R"("totp")", "not valid base32"});
    parse_fails(one_user(R"({"totp": ""})"),
                {R"(user "u")", R"("totp")", "too short"});
    parse_fails(one_user(R"({"totp": {}})"),
                {R"(user "u")", R"("totp.secret")", "missing"});
    parse_fails(one_user(R"({"totp": {"algorithm": "SHA1"}})"),
                {R"(user "u")", R"("totp.secret")", "missing"});
    parse_fails(one_user(R"({"totp": {"secret": 12345}})"),
                {R"(user "u")", R"("totp.secret")", "base32 string"});
    parse_fails(one_user(R"({"totp": {"secret": "1111"}})"),
                {R"(user "u")", R"("totp.secret")", "not valid base32"});

    for (const char *alg : {R"("MD5")", R"("SHA-1")", R"("")", "1", "null"}) {
        parse_fails(one_user(pre + R"("algorithm": )" + alg + "}}"),
                    {R"(user "u")", R"("totp.algorithm")", "SHA1", "SHA256",
                     "SHA512"});
    }
    for (const char *digits : {"5", "9", "0", "-6", R"("6")", "6.0", "null",
                               "true", "4294967302"}) {
        parse_fails(one_user(pre + R"("digits": )" + digits + "}}"),
                    {R"(user "u")", R"("totp.digits")", "6, 7 or 8"});
    }
    for (const char *period : {"14", "301", "0", "-30", R"("30")", "30.5",
                               "null", "4294967326"}) {
        parse_fails(one_user(pre + R"("period": )" + period + "}}"),
                    {R"(user "u")", R"("totp.period")", "15 to 300"});
    }
}
END_TEST

START_TEST(bad_password)
{
    parse_fails(one_user(R"({"password": 5})"),
                {R"(user "u")", R"("password")", "must be a string"});
    parse_fails(one_user(R"({"password": null})"),
                {R"(user "u")", R"("password")", "must be a string"});
    const char *unsupported[] = {
        "",
        "$1$imJj0tsl$cyyu7Y74bSlnxnjLJKpfk.",  // md5crypt
        ".XRH5mmC0uTZQ",                      // DES
        "plaintext",
        ("!$y$j9T$PvNvAbWZCMvTVtA0ebyWb0$BlwutcBWkjy69x.yn5ymfkzuz1tXHrs.ydUnV"
         ".L02e3"),
    };
    for (const char *hash : unsupported) {
        parse_fails(one_user(R"({"password": ")" + std::string(hash)
                             + "\"}"),
                    {R"(user "u")", R"("password")", "not a supported",
                     "yescrypt", "$y$", "bcrypt", "$2b$", "sha512crypt",
                     "$6$", "scrypt", "$7$", "sha256crypt", "$5$"});
    }
}
END_TEST

START_TEST(bad_structure)
{
    parse_fails("[]", {"top level", R"("users")"});
    parse_fails("\"users\"", {"line 1, column ", "expected"});
    parse_fails("{}", {"top level", R"("users")"});
    parse_fails(R"({"users": []})", {R"("users")", "object"});
    parse_fails(R"({"users": null})", {R"("users")", "object"});
    parse_fails(R"({"users": {"u": "x"}})",
                {R"(user "u")", "must be an object"});
    parse_fails(R"({"users": {"u": []}})",
                {R"(user "u")", "must be an object"});
    // The first bad user is named, not the first user.
    parse_fails(R"({"users": {"good": {}, "bad": {"totp": 1}}})",
                {R"(user "bad")", R"("totp")"});
}
END_TEST

START_TEST(bad_user_names)
{
    for (const char *name : {"", "a b", "a/b", "a:b", "a\\\"b", "caf\xc3\xa9",
                             "a\\u0001b", "a,b", "a;b", "<a>"}) {
        parse_fails(R"({"users": {")" + std::string(name) + R"(": {}}})",
                    {"user name", "not valid", "A-Z a-z 0-9 . _ @ + -"});
    }
    parse_fails(R"({"users": {")" + std::string(65, 'a') + R"(": {}}})",
                {"user name", "not valid"});
    ck_assert_uint_eq(
        parse_ok(R"({"users": {")" + std::string(64, 'a') + R"(": {}}})")
            ->size(),
        1);

    // An unprintable name is shown escaped, so the message stays one line.
    std::string error;
    ck_assert(!UserStore::parse(R"({"users": {"a\nb\"c": {}}})", error));
    ck_assert_msg(contains(error, R"("a\x0ab\"c")"), "%s", error.c_str());
    ck_assert(!contains(error, "\n"));
}
END_TEST

START_TEST(valid_user_name_cases)
{
    for (const char *name : {"a", "alice", "Bob.Smith", "bob_smith",
                             "bob-smith", "bob+tag@example.com", "0", "..",
                             "@", "-"}) {
        ck_assert_msg(valid_user_name(name), "%s", name);
    }
    ck_assert(valid_user_name(std::string(64, 'z')));
    ck_assert(!valid_user_name(std::string(65, 'z')));
    for (const char *name : {"", " ", "a b", "a\tb", "a/b", "a\\b", "a:b",
                             "a=b", "a,b", "a\"b", "a'b", "a<b", "a%b",
                             "caf\xc3\xa9", "a\x7f"}) {
        ck_assert_msg(!valid_user_name(name), "%s", name);
    }
    ck_assert(!valid_user_name(std::string("a\0b", 3)));
}
END_TEST

START_TEST(syntax_errors)
{
    parse_fails("{\n  \"users\": {\n    \"a\": {,}\n  }\n}",
                {"line 3, column "});
    parse_fails("", {"line 1, column "});
    parse_fails("{\"users\": {}", {"line 1, column "});
    parse_fails("{\"users\": {}} trailing", {"line 1, column "});
    parse_fails("{\"users\": {\"a\": {\"password\": \"a\\u0000b\"}}}",
                {"line 1, column "});
}
END_TEST

START_TEST(duplicate_keys)
{
    parse_fails("{\"users\": {\n\"a\": {},\n\"a\": {}}}",
                {"line 3, column ", "duplicate"});
    parse_fails(one_user(R"({"password": ")" + yescrypt_hash
                         + R"(", "password": ")" + yescrypt_hash + "\"}"),
                {"line 1, column ", "duplicate"});
    parse_fails(R"({"users": {}, "users": {}})", {"duplicate"});
    parse_fails(one_user(R"({"totp": {"secret": ")" + secret_b32
                         + R"(", "digits": 6, "digits": 8}})"),
                {"duplicate"});
}
END_TEST

START_TEST(load_file)
{
    std::string path, error;
    auto store = load_text(R"({"users": {"alice": {"totp": ")" + secret_b32
                               + "\"}}}\n",
                           path, error);
    ck_assert_msg(store != nullptr, "%s", error.c_str());
    ck_assert_uint_eq(store->size(), 1);
    ck_assert(store->find("alice")->totp->secret == secret_raw);
}
END_TEST

START_TEST(load_errors_name_the_file)
{
    std::string path, error, prefix;
    ck_assert(load_text("{\n  \"users\": {\n    \"a\": {\"totp\" 1}\n  }\n}\n",
                        path, error)
              == nullptr);
    prefix = "\"" + path + "\": line 3, column ";
    ck_assert_msg(error.compare(0, prefix.size(), prefix) == 0, "%s",
                  error.c_str());

    ck_assert(load_text("{\"users\": {\"a\": {},\n\"a\": {}}}", path, error)
              == nullptr);
    prefix = "\"" + path + "\": line 2, column ";
    ck_assert_msg(error.compare(0, prefix.size(), prefix) == 0, "%s",
                  error.c_str());
    ck_assert_msg(contains(error, "duplicate"), "%s", error.c_str());

    ck_assert(load_text(one_user(R"({"totp": {"secret": ")" + secret_b32
                                 + R"(", "digits": 9}})"),
                        path, error)
              == nullptr);
    ck_assert_string_eq(error, "\"" + path
                                   + R"(": user "u": "totp.digits" must be )"
                                     "6, 7 or 8");

    std::string missing = "/nonexistent/twostep/users.json";
    ck_assert(UserStore::load(missing, error) == nullptr);
    prefix = "\"" + missing + "\": ";
    ck_assert_msg(error.compare(0, prefix.size(), prefix) == 0, "%s",
                  error.c_str());
    ck_assert_msg(contains(error, "No such file"), "%s", error.c_str());
}
END_TEST

START_TEST(security_members)
{
    const std::string hash_a(64, 'a'), hash_b = "0123456789abcdef"
                                                 "0123456789abcdef"
                                                 "0123456789abcdef"
                                                 "0123456789abcdef";
    auto store = parse_ok(R"({"users": {
        "full": {"totp": ")" + secret_b32 + R"(", "phone": "+15551234567",
                 "default": "sms", "recovery": [")" + hash_a + R"(", ")"
                          + hash_b + R"("],
                 "duo_username": "DOMAIN\\full@example.com"},
        "none": {},
        "empty_list": {"recovery": []},
        "shortest": {"phone": "+12345678"},
        "longest": {"phone": "+123456789012345"},
        "pushes": {"ntfy_topic": "Ab3_-x9Yq2Lr7Tz0Wv5KpQ8n"}}})");
    ck_assert_string_eq(store->find("pushes")->ntfy_topic,
                        "Ab3_-x9Yq2Lr7Tz0Wv5KpQ8n");
    ck_assert(store->find("full")->ntfy_topic.empty());
    // A topic alone is no method the module checks itself.
    ck_assert_uint_eq(store->find("pushes")->methods(), 0);
    for (const char *bad : {"\"\"", "\"has space\"", "\"a/b\"", "42",
                            "\"x12345678901234567890123456789012345678901234"
                            "567890123456789012345\""}) {
        std::string error;
        ck_assert(!UserStore::parse(std::string(R"({"users": {"u": )")
                                        + R"({"ntfy_topic": )" + bad + "}}}",
                                    error));
        ck_assert_msg(error.find("ntfy_topic") != std::string::npos, "%s",
                      error.c_str());
    }
    const User *full = store->find("full");
    ck_assert_string_eq(full->phone, "+15551234567");
    ck_assert(full->default_method == Method::sms);
    ck_assert_uint_eq(full->recovery.size(), 2);
    ck_assert_string_eq(full->recovery[0], hash_a);
    ck_assert_string_eq(full->recovery[1], hash_b);
    ck_assert_string_eq(full->duo_username, "DOMAIN\\full@example.com");
    // What the module checks itself: the app code and recovery codes (the
    // phone methods come from the provider).
    ck_assert_uint_eq(full->methods(),
                      static_cast<MethodSet>(Method::totp)
                          | static_cast<MethodSet>(Method::recovery));
    ck_assert_uint_eq(store->find("empty_list")->methods(), 0);

    const User *none = store->find("none");
    ck_assert(none->phone.empty());
    ck_assert(!none->default_method);
    ck_assert(none->recovery.empty());
    ck_assert(none->duo_username.empty());
    ck_assert_uint_eq(none->methods(), 0);
    ck_assert(store->find("empty_list")->recovery.empty());
    ck_assert_string_eq(store->find("shortest")->phone, "+12345678");
    ck_assert_string_eq(store->find("longest")->phone, "+123456789012345");

    for (const char *name : {"totp", "push", "call", "sms"}) {
        store = parse_ok(one_user(R"({"default": ")" + std::string(name)
                                  + "\"}"));
        ck_assert(store->find("u")->default_method == method_from_name(name));
    }
    std::string many = "[";
    for (int i = 0; i < 100; i++) {
        char hex[65];
        std::snprintf(hex, sizeof hex, "%064x", i);
        many += std::string(i ? "," : "") + "\"" + hex + "\"";
    }
    ck_assert_uint_eq(
        parse_ok(one_user(R"({"recovery": )" + many + "]}"))
            ->find("u")->recovery.size(),
        100);
    parse_fails(one_user(R"({"recovery": )" + many + ",\"" + hash_a
                         + "\"]}"),
                {R"(user "u")", R"("recovery")", "more than 100"});
}
END_TEST

START_TEST(bad_security_members)
{
    for (const char *phone :
         {R"("15551234567")", R"("+1234567")", R"("+1234567890123456")",
          R"("+1 5551234567")", R"("+1-555-123-4567")", R"("")", R"("+")",
          R"("++15551234567")", R"("+15551234567 ")", "15551234567", "null",
          R"(["+15551234567"])", R"("+\u0661\u0662\u0663\u0664\u0665\u0666)"
                                 R"(\u0667\u0668\u0669")"}) {
        parse_fails(one_user(R"({"phone": )" + std::string(phone) + "}"),
                    {R"(user "u")", R"("phone")", "E.164", "8 to 15"});
    }
    for (const char *def : {R"("email")", R"("")", R"("TOTP")", R"("sms ")",
                            "1", "null", R"(["totp"])"}) {
        parse_fails(one_user(R"({"default": )" + std::string(def) + "}"),
                    {R"(user "u")", R"("default")", "totp", "push", "call",
                     "sms"});
    }
    for (const char *list : {R"("abc")", "{}", "null", "5"}) {
        parse_fails(one_user(R"({"recovery": )" + std::string(list) + "}"),
                    {R"(user "u")", R"("recovery")", "array"});
    }
    const std::string a64(64, 'a');
    const char *bad_items[] = {"1", "null", R"("")", "[]"};
    for (const char *item : bad_items) {
        parse_fails(one_user(R"({"recovery": [")" + a64 + "\", "
                             + std::string(item) + "]}"),
                    {R"(user "u")", R"("recovery[1]")", "64 lower-case hex"});
    }
    for (const std::string &item :
         {std::string(63, 'a'), std::string(65, 'a'), std::string(64, 'A'),
          std::string(63, 'a') + "g", std::string(63, 'a') + " "}) {
        parse_fails(one_user(R"({"recovery": [")" + item + "\"]}"),
                    {R"(user "u")", R"("recovery[0]")", "SHA-256"});
    }
    parse_fails(one_user(R"({"recovery": [")" + a64 + R"(", ")" + a64
                         + "\"]}"),
                {R"(user "u")", R"("recovery[1]")", "duplicate"});
    for (const std::string &duo :
         {std::string("\"\""), std::string("\"a b\""), std::string("5"),
          std::string("null"), std::string("\"a\\tb\""),
          std::string("\"caf\u00e9\""),
          "\"" + std::string(129, 'd') + "\""}) {
        parse_fails(one_user(R"({"duo_username": )" + duo + "}"),
                    {R"(user "u")", R"("duo_username")", "1 to 128"});
    }
    ck_assert_uint_eq(parse_ok(one_user(R"({"duo_username": ")"
                                        + std::string(128, 'd') + "\"}"))
                          ->find("u")->duo_username.size(),
                      128);
}
END_TEST

START_TEST(validators)
{
    for (const char *ok : {"+12345678", "+15551234567", "+491511234567",
                           "+123456789012345"}) {
        ck_assert_msg(valid_phone(ok), "%s", ok);
    }
    for (const char *bad : {"", "+", "+1234567", "+1234567890123456",
                            "12345678", "+1234567a", "+ 12345678",
                            "+12345678\n"}) {
        ck_assert_msg(!valid_phone(bad), "%s", bad);
    }
    ck_assert(!valid_phone(std::string("+1234\0" "5678", 10)));
    ck_assert(valid_recovery_hash(std::string(64, '0')));
    ck_assert(valid_recovery_hash(std::string(32, 'f') + std::string(32, '9')));
    ck_assert(!valid_recovery_hash(std::string(64, 'F')));
    ck_assert(!valid_recovery_hash(std::string(64, 'g')));
    ck_assert(!valid_recovery_hash(""));
    ck_assert(valid_duo_username("a"));
    ck_assert(valid_duo_username("DOMAIN\\user@example.com"));
    ck_assert(!valid_duo_username(""));
    ck_assert(!valid_duo_username("a b"));
    ck_assert(!valid_duo_username("a\x7f"));
    ck_assert(!valid_duo_username("caf\xc3\xa9"));
    ck_assert(!valid_duo_username(std::string(129, 'x')));
}
END_TEST

START_TEST(users_in_order)
{
    auto store = parse_ok(R"({"users": {"carol": {}, "alice": {},
                                        "bob": {}}})");
    auto users = store->users();
    ck_assert_uint_eq(users.size(), 3);
    ck_assert_string_eq(users[0]->name, "alice");
    ck_assert_string_eq(users[1]->name, "bob");
    ck_assert_string_eq(users[2]->name, "carol");
    ck_assert(users[0] == store->find("alice"));
    ck_assert(parse_ok(R"({"users": {}})")->users().empty());
}
END_TEST

// Unknown names cost what the store's users cost: their dummy check runs
// the setting of one of the users' hashes, in the proportions of the store,
// the same one for the same name.
START_TEST(dummy_setting_follows_the_store)
{
    std::string sha = "$6$rounds=9000$salt%d$" + std::string(86, 'a');
    std::string bcrypt = "$2b$10$" + std::string(22, 'S')
                         + std::string(31, 'h');
    std::string json = "{\"users\": {";
    for (int i = 0; i < 3; i++) {
        std::string hash = sha;
        hash.replace(hash.find("%d"), 2, std::to_string(i));
        json += "\"sha" + std::to_string(i) + "\": {\"password\": \"" + hash
                + "\"}, ";
    }
    json += "\"bcrypt\": {\"password\": \"" + bcrypt + "\"}, ";
    json += "\"identity-only\": {}}}";
    auto store = parse_ok(json);

    int by_sha = 0, by_bcrypt = 0;
    for (int i = 0; i < 4000; i++) {
        std::string name = "nobody-" + std::to_string(i);
        std::string setting(store->dummy_setting(name));
        ck_assert_string_eq(store->dummy_setting(name), setting);
        if (setting == bcrypt.substr(0, 29)) {
            by_bcrypt++;
        } else {
            ck_assert_msg(setting.compare(0, 19, "$6$rounds=9000$salt") == 0
                          && setting.size() == 20, "%s", setting.c_str());
            by_sha++;
        }
    }
    // Three of four users have sha512crypt: about 3000 of 4000 names.
    ck_assert_msg(by_sha > 2700 && by_sha < 3300, "%d sha512crypt", by_sha);
    ck_assert_msg(by_bcrypt > 700 && by_bcrypt < 1300, "%d bcrypt",
                  by_bcrypt);

    // No user with a password: the built-in yescrypt dummy.
    ck_assert(parse_ok(R"({"users": {"a": {}}})")->dummy_setting("x")
              .empty());
}
END_TEST

START_TEST(credential_tag_follows_the_factors)
{
    std::string secret_a = "GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ";
    std::string secret_b = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    auto tag = [](const std::string &json, const char *name) {
        std::string error;
        auto store = UserStore::parse(json, error);
        ck_assert_msg(store != nullptr, "%s", error.c_str());
        return store->find(name)->credential_tag;
    };
    std::string pw1 = "$6$saltsalt$" + std::string(86, 'a');
    std::string pw2 = "$6$saltsalt$" + std::string(86, 'b');
    auto doc = [](const std::string &pw, const std::string &totp,
                  const std::string &extra) {
        return "{\"users\": {\"u\": {\"password\": \"" + pw
               + "\", \"totp\": \"" + totp + "\"" + extra + "}}}";
    };
    std::string base = tag(doc(pw1, secret_a, ""), "u");
    ck_assert_uint_eq(base.size(), 16);
    // Stable, and unmoved by what is not a credential. (Check's string
    // asserts must not get c_str() of a temporary: compare std::strings.)
    ck_assert(tag(doc(pw1, secret_a, ""), "u") == base);
    ck_assert(tag(doc(pw1, secret_a, ", \"phone\": \"+15551234567\""), "u")
              == base);
    // A new password or a new secret changes it.
    ck_assert(tag(doc(pw2, secret_a, ""), "u") != base);
    ck_assert(tag(doc(pw1, secret_b, ""), "u") != base);
    // So does dropping the app (a reset).
    std::string error;
    auto reset = UserStore::parse("{\"users\": {\"u\": {\"password\": \""
                                  + pw1 + "\"}}}", error);
    ck_assert(reset != nullptr);
    ck_assert(reset->find("u")->credential_tag != base);
    // A key added or removed changes it; its counter (every sign-in) and
    // its name do not.
    auto with_key = [&](const char *id, int count, const char *name) {
        return doc(pw1, secret_a,
                   std::string(", \"webauthn\": [{\"id\": \"") + id
                   + "\", \"public_key\": \"AAEC\", \"algorithm\": -7, "
                   "\"sign_count\": " + std::to_string(count)
                   + ", \"name\": \"" + name + "\"}]");
    };
    std::string keyed = tag(with_key("AAEC", 1, "a"), "u");
    ck_assert(keyed != base);
    ck_assert(tag(with_key("AAEC", 9, "b"), "u") == keyed);
    ck_assert(tag(with_key("AAED", 1, "a"), "u") != keyed);
}
END_TEST

namespace {

// A key as the store keeps it (public data only), with `id` and `name`.
std::string key_json(const std::string &id, const std::string &name,
                     const std::string &extra = "")
{
    return R"({"id": ")" + id + R"(", "public_key": "MFkwEwYHKoZIzj0CAQ",)"
           R"( "algorithm": -7, "sign_count": 3, "name": ")" + name
           + R"(", "created": 1700000000, "transports": ["usb", "nfc",)"
           R"( "smoke-signal"])" + extra + "}";
}

}  // namespace

START_TEST(webauthn_keys)
{
    auto store = parse_ok(one_user(R"({"webauthn": [)" + key_json("AAEC", "A")
                                   + ", " + key_json("AAED", "B") + "]}"));
    const User *u = store->find("u");
    ck_assert_uint_eq(u->keys.size(), 2);
    ck_assert(has_method(u->methods(), Method::webauthn));
    ck_assert_string_eq(u->keys[0].credential.id, "AAEC");
    ck_assert_string_eq(u->keys[1].name, "B");
    ck_assert_uint_eq(u->keys[0].credential.sign_count, 3);
    ck_assert_int_eq(u->keys[0].created, 1700000000);
    ck_assert(u->keys[0].credential.algorithm == webauthn::Algorithm::es256);
    // Unknown transports are dropped, not an error.
    ck_assert(u->keys[0].credential.transports
              == (std::vector<std::string>{"usb", "nfc"}));
    ck_assert(u->key("AAED") == &u->keys[1]);
    ck_assert(u->key("AAEE") == nullptr);
    ck_assert(store->key_owner("AAEC") == u);
    ck_assert(store->key_owner("AAEE") == nullptr);

    // No keys: no method, and an empty list is no key.
    store = parse_ok(one_user(R"({"webauthn": []})"));
    ck_assert(!has_method(store->find("u")->methods(), Method::webauthn));
}
END_TEST

START_TEST(bad_webauthn_keys)
{
    auto with = [](const std::string &keys) {
        return one_user(R"({"webauthn": )" + keys + "}");
    };
    parse_fails(with("{}"), {R"(user "u")", R"("webauthn")", "array"});
    parse_fails(with("[5]"), {R"("webauthn[0]")", "object"});
    parse_fails(with("[" + key_json("", "A") + "]"),
                {R"("webauthn[0].id")", "base64url"});
    parse_fails(with("[" + key_json("AA+C", "A") + "]"),
                {R"("webauthn[0].id")"});
    parse_fails(with("[" + key_json("AAEC", "A") + ", "
                     + key_json("AAEC", "B") + "]"),
                {R"("webauthn[1].id")", "duplicate"});
    parse_fails(with("[" + key_json("AAEC", "") + "]"),
                {R"("webauthn[0].name")"});
    parse_fails(with("[" + key_json("AAEC", "tab\\there") + "]"),
                {R"("webauthn[0].name")", "control"});
    parse_fails(with("[" + key_json("AAEC", std::string(65, 'x')) + "]"),
                {R"("webauthn[0].name")"});
    std::string no_alg = R"([{"id": "AAEC", "public_key": "AAEC",)"
                         R"( "sign_count": 0, "name": "A"}])";
    parse_fails(with(no_alg), {R"("webauthn[0].algorithm")", "-7"});
    std::string bad_alg = R"([{"id": "AAEC", "public_key": "AAEC",)"
                          R"( "algorithm": -36, "sign_count": 0,)"
                          R"( "name": "A"}])";
    parse_fails(with(bad_alg), {R"("webauthn[0].algorithm")"});
    for (const char *count : {"-1", "4294967296", "\"3\"", "null"}) {
        std::string k = R"([{"id": "AAEC", "public_key": "AAEC",)"
                        R"( "algorithm": -7, "name": "A", "sign_count": )"
                        + std::string(count) + "}]";
        parse_fails(with(k), {R"("webauthn[0].sign_count")"});
    }
    std::string no_key = R"([{"id": "AAEC", "algorithm": -7,)"
                         R"( "sign_count": 0, "name": "A"}])";
    parse_fails(with(no_key), {R"("webauthn[0].public_key")"});
    std::string many = "[";
    for (std::size_t i = 0; i <= max_webauthn_keys; i++) {
        many += (i ? ", " : "") + key_json("AAE" + std::string(1, 'A' + i % 26)
                                           + std::string(1, 'a' + i / 26),
                                           "k");
    }
    parse_fails(with(many + "]"), {R"("webauthn")", "more than 32"});

    // One credential, one account (WebAuthn Level 2 §7.1 step 22).
    parse_fails(R"({"users": {"a": {"webauthn": [)" + key_json("AAEC", "A")
                + R"(]}, "b": {"webauthn": [)" + key_json("AAEC", "B")
                + "]}}}",
                {R"(user "b")", R"("webauthn")", R"(user "a")"});
}
END_TEST

START_TEST(webauthn_user_handles)
{
    std::string alice = webauthn_user_handle("alice");
    ck_assert_uint_eq(base64url_decode(alice)->size(), 16);
    ck_assert_string_eq(alice, webauthn_user_handle("alice"));
    ck_assert(alice != webauthn_user_handle("alicf"));
    ck_assert(alice.find("alice") == std::string::npos);
    ck_assert(valid_key_name("Work laptop"));
    ck_assert(valid_key_name("Clé USB \xe2\x9c\x93"));
    ck_assert(!valid_key_name(""));
    ck_assert(!valid_key_name("a\nb"));
    ck_assert(!valid_key_name(std::string(65, 'a')));
}
END_TEST

int main()
{
    Suite *suite = suite_create("user_store");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, valid_store);
    tcase_add_test(tc, empty_store);
    tcase_add_test(tc, methods_of_user);
    tcase_add_test(tc, totp_boundaries);
    tcase_add_test(tc, bad_totp);
    tcase_add_test(tc, bad_password);
    tcase_add_test(tc, bad_structure);
    tcase_add_test(tc, bad_user_names);
    tcase_add_test(tc, valid_user_name_cases);
    tcase_add_test(tc, syntax_errors);
    tcase_add_test(tc, duplicate_keys);
    tcase_add_test(tc, load_file);
    tcase_add_test(tc, load_errors_name_the_file);
    tcase_add_test(tc, security_members);
    tcase_add_test(tc, bad_security_members);
    tcase_add_test(tc, validators);
    tcase_add_test(tc, users_in_order);
    tcase_add_test(tc, credential_tag_follows_the_factors);
    tcase_add_test(tc, dummy_setting_follows_the_store);
    tcase_add_test(tc, webauthn_keys);
    tcase_add_test(tc, bad_webauthn_keys);
    tcase_add_test(tc, webauthn_user_handles);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
