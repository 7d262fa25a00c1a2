#include "user_store.h"

#include <sys/stat.h>

#include <openssl/evp.h>
#include <openssl/rand.h>

#include <jansson.h>

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <utility>

#include "base32.h"
#include "json.h"
#include "keyring.h"
#include "ntfy.h"
#include "password.h"

namespace twostep {

namespace {

// RFC 4226 section 4, requirement R6: a shared secret of at least 128 bits.
constexpr std::size_t min_secret_bytes = 16;
constexpr json_int_t min_period = 15;
constexpr json_int_t max_period = 300;

// `text` in double quotes, with anything unprintable as \xNN, so an
// error message is one safe log line whatever the file holds.
std::string quote(std::string_view text, std::size_t max_shown = 80)
{
    std::string out = "\"";
    for (std::size_t i = 0; i < text.size() && i < max_shown; i++) {
        auto c = static_cast<unsigned char>(text[i]);
        if (c == '"' || c == '\\') {
            out += '\\';
            out += static_cast<char>(c);
        } else if (c < 0x20 || c >= 0x7f) {
            char hex[8];
            std::snprintf(hex, sizeof hex, "\\x%02x", c);
            out += hex;
        } else {
            out += static_cast<char>(c);
        }
    }
    if (text.size() > max_shown) {
        out += "...";
    }
    out += '"';
    return out;
}

std::string syntax_error(const json_error_t &err)
{
    if (err.line < 1) {
        return err.text;
    }
    return "line " + std::to_string(err.line) + ", column "
        + std::to_string(err.column) + ": " + err.text;
}

class UserError {
public:
    explicit UserError(std::string_view user)
        : prefix_("user " + quote(user) + ": ")
    {
    }
    std::string member(std::string_view name, std::string_view what) const
    {
        return prefix_ + "\"" + std::string(name) + "\" " + std::string(what);
    }
    std::string whole(std::string_view what) const
    {
        return prefix_ + std::string(what);
    }

private:
    std::string prefix_;
};

bool parse_secret(const json_t *value, const char *member,
                  const UserError &err, TotpParams &totp, std::string &error)
{
    if (!json_is_string(value)) {
        error = err.member(member, "must be a base32 string");
        return false;
    }
    std::string_view text(json_string_value(value), json_string_length(value));
    auto secret = base32_decode(text);
    if (!secret) {
        error = err.member(member, "is not valid base32 (RFC 4648)");
        return false;
    }
    if (secret->size() < min_secret_bytes) {
        error = err.member(member,
                           "is too short: " + std::to_string(secret->size())
                               + " bytes, but RFC 4226 (section 4, R6) "
                                 "requires at least 16 bytes (128 bits, "
                                 "26 base32 characters)");
        return false;
    }
    totp.secret = std::move(*secret);
    return true;
}

bool parse_totp(const json_t *value, const UserError &err, TotpParams &totp,
                std::string &error)
{
    if (json_is_string(value)) {
        return parse_secret(value, "totp", err, totp, error);
    }
    if (!json_is_object(value)) {
        error = err.member("totp", "must be a base32 string or an object");
        return false;
    }

    const json_t *secret = json_object_get(value, "secret");
    if (secret == nullptr) {
        error = err.member("totp.secret", "is missing");
        return false;
    }
    if (!parse_secret(secret, "totp.secret", err, totp, error)) {
        return false;
    }

    if (const json_t *alg = json_object_get(value, "algorithm")) {
        std::optional<HashAlg> parsed;
        if (json_is_string(alg)) {
            parsed = hash_alg_from_name(std::string_view(
                json_string_value(alg), json_string_length(alg)));
        }
        if (!parsed) {
            error = err.member("totp.algorithm",
                               "must be \"SHA1\", \"SHA256\" or \"SHA512\"");
            return false;
        }
        totp.alg = *parsed;
    }

    if (const json_t *digits = json_object_get(value, "digits")) {
        json_int_t n = json_is_integer(digits) ? json_integer_value(digits)
                                               : 0;
        if (n < 6 || n > 8) {
            error = err.member("totp.digits", "must be 6, 7 or 8");
            return false;
        }
        totp.digits = static_cast<int>(n);
    }

    if (const json_t *period = json_object_get(value, "period")) {
        json_int_t n = json_is_integer(period) ? json_integer_value(period)
                                               : 0;
        if (n < min_period || n > max_period) {
            error = err.member("totp.period",
                               "must be a whole number of seconds from "
                               + std::to_string(min_period) + " to "
                               + std::to_string(max_period));
            return false;
        }
        totp.period = static_cast<int>(n);
    }
    return true;
}

// "recovery": an array of distinct SHA-256 hex strings, one per unused code.
bool parse_recovery(const json_t *value, const UserError &err,
                    std::vector<std::string> &out, std::string &error)
{
    if (!json_is_array(value)) {
        error = err.member("recovery", "must be an array of SHA-256 hashes");
        return false;
    }
    if (json_array_size(value) > max_recovery_codes) {
        error = err.member("recovery",
                           "has more than "
                               + std::to_string(max_recovery_codes)
                               + " entries");
        return false;
    }
    std::size_t index;
    const json_t *item;
    json_array_foreach(value, index, item) {
        std::string_view hash;
        if (json_is_string(item)) {
            hash = std::string_view(json_string_value(item),
                                    json_string_length(item));
        }
        if (!valid_recovery_hash(hash)) {
            error = err.member("recovery[" + std::to_string(index) + "]",
                               "must be 64 lower-case hex digits (the "
                               "SHA-256 of a recovery code)");
            return false;
        }
        for (const std::string &seen : out) {
            if (seen == hash) {
                error = err.member("recovery[" + std::to_string(index) + "]",
                                   "is a duplicate");
                return false;
            }
        }
        out.emplace_back(hash);
    }
    return true;
}

// "webauthn": the user's keys, public data only (user_store.h).
bool parse_keys(const json_t *value, const UserError &err,
                std::vector<WebauthnKey> &out, std::string &error)
{
    if (!json_is_array(value)) {
        error = err.member("webauthn", "must be an array of keys");
        return false;
    }
    if (json_array_size(value) > max_webauthn_keys) {
        error = err.member("webauthn", "has more than "
                                           + std::to_string(max_webauthn_keys)
                                           + " keys");
        return false;
    }
    std::size_t index;
    const json_t *item;
    json_array_foreach(value, index, item) {
        std::string at = "webauthn[" + std::to_string(index) + "]";
        if (!json_is_object(item)) {
            error = err.member(at, "must be an object");
            return false;
        }
        auto string_of = [item](const char *member) -> std::string_view {
            const json_t *v = json_object_get(item, member);
            return json_is_string(v)
                ? std::string_view(json_string_value(v), json_string_length(v))
                : std::string_view();
        };
        WebauthnKey key;
        std::string_view id = string_of("id");
        auto raw_id = base64url_decode(id);
        if (!raw_id || raw_id->empty()
            || raw_id->size() > webauthn::max_credential_id_bytes) {
            error = err.member(at + ".id", "must be a base64url credential "
                                           "id of 1 to 1023 bytes");
            return false;
        }
        for (const WebauthnKey &seen : out) {
            if (seen.credential.id == id) {
                error = err.member(at + ".id", "is a duplicate");
                return false;
            }
        }
        key.credential.id = std::string(id);
        std::string_view public_key = string_of("public_key");
        auto spki = base64url_decode(public_key);
        if (!spki || spki->empty()) {
            error = err.member(at + ".public_key",
                               "must be a base64url public key (DER)");
            return false;
        }
        key.credential.public_key = std::string(public_key);
        const json_t *alg = json_object_get(item, "algorithm");
        auto algorithm = json_is_integer(alg)
            ? webauthn::algorithm_from_cose(json_integer_value(alg))
            : std::nullopt;
        if (!algorithm) {
            error = err.member(at + ".algorithm",
                               "must be -7 (ES256), -257 (RS256) or "
                               "-8 (EdDSA)");
            return false;
        }
        key.credential.algorithm = *algorithm;
        const json_t *count = json_object_get(item, "sign_count");
        json_int_t n = json_is_integer(count) ? json_integer_value(count) : -1;
        if (n < 0 || n > static_cast<json_int_t>(UINT32_MAX)) {
            error = err.member(at + ".sign_count",
                               "must be a whole number from 0 to 4294967295");
            return false;
        }
        key.credential.sign_count = static_cast<std::uint32_t>(n);
        key.name = std::string(string_of("name"));
        if (!valid_key_name(key.name)) {
            error = err.member(at + ".name", "must be 1 to 64 bytes without "
                                             "control characters");
            return false;
        }
        const json_t *created = json_object_get(item, "created");
        if (created != nullptr) {
            if (!json_is_integer(created) || json_integer_value(created) < 0) {
                error = err.member(at + ".created", "must be a unix time");
                return false;
            }
            key.created = json_integer_value(created);
        }
        if (const json_t *list = json_object_get(item, "transports")) {
            std::vector<std::string> names;
            std::size_t i;
            const json_t *t;
            bool ok = json_is_array(list) && json_array_size(list) <= 8;
            json_array_foreach(list, i, t) {
                ok = ok && json_is_string(t);
                if (ok) {
                    names.emplace_back(json_string_value(t));
                }
            }
            if (!ok) {
                error = err.member(at + ".transports",
                                   "must be an array of at most 8 names");
                return false;
            }
            key.credential.transports = webauthn::known_transports(names);
        }
        out.push_back(std::move(key));
    }
    return true;
}

// One entry of "users"; members not named here are left for later features.
bool parse_user(const char *name, const json_t *value, User &user,
                std::string &error)
{
    if (!valid_user_name(name)) {
        error = "user name " + quote(name)
            + " is not valid: use 1 to 64 characters of A-Z a-z 0-9 . _ @ + -";
        return false;
    }
    UserError err(name);
    if (!json_is_object(value)) {
        error = err.whole("must be an object");
        return false;
    }
    user.name = name;

    if (const json_t *password = json_object_get(value, "password")) {
        if (!json_is_string(password)) {
            error = err.member("password", "must be a string");
            return false;
        }
        std::string_view hash(json_string_value(password),
                              json_string_length(password));
        // Only salted, deliberately slow schemes (OWASP ASVS 2.4.1).
        if (!supported_password_hash(hash)) {
            error = err.member("password",
                               "is not a supported crypt(3) hash; use "
                               "yescrypt ($y$, $gy$), scrypt ($7$), bcrypt "
                               "($2b$, $2a$, $2y$), sha512crypt ($6$) or "
                               "sha256crypt ($5$), e.g. from "
                               "`mkpasswd -m yescrypt`");
            return false;
        }
        user.password_hash = hash;
    }

    if (const json_t *totp = json_object_get(value, "totp")) {
        TotpParams params;
        if (!parse_totp(totp, err, params, error)) {
            return false;
        }
        user.totp = std::move(params);
    }

    if (const json_t *phone = json_object_get(value, "phone")) {
        if (!json_is_string(phone)
            || !valid_phone(std::string_view(json_string_value(phone),
                                             json_string_length(phone)))) {
            error = err.member("phone",
                               "must be an E.164 number: \"+\" and 8 to 15 "
                               "digits, e.g. \"+15551234567\"");
            return false;
        }
        user.phone = json_string_value(phone);
    }

    if (const json_t *topic = json_object_get(value, "ntfy_topic")) {
        if (!json_is_string(topic)
            || !ntfy::valid_topic(std::string_view(
                   json_string_value(topic), json_string_length(topic)))) {
            error = err.member("ntfy_topic",
                               "must be an ntfy topic: 1 to 64 of "
                               "[A-Za-z0-9_-]");
            return false;
        }
        user.ntfy_topic = json_string_value(topic);
    }

    if (const json_t *def = json_object_get(value, "default")) {
        std::optional<Method> method;
        if (json_is_string(def)) {
            method = method_from_name(std::string_view(
                json_string_value(def), json_string_length(def)));
        }
        // A remembered device is no method one can choose.
        if (!method || method_info(*method).kind == MethodKind::device) {
            error = err.member("default", "must be \"totp\", \"push\", "
                                          "\"call\", \"sms\" or "
                                          "\"webauthn\"");
            return false;
        }
        user.default_method = method;
    }

    if (const json_t *recovery = json_object_get(value, "recovery")) {
        if (!parse_recovery(recovery, err, user.recovery, error)) {
            return false;
        }
    }

    if (const json_t *forgot = json_object_get(value, "devices_forgotten")) {
        if (!json_is_integer(forgot) || json_integer_value(forgot) < 0) {
            error = err.member("devices_forgotten",
                               "must be a time in Unix seconds");
            return false;
        }
        user.devices_forgotten = json_integer_value(forgot);
    }

    if (const json_t *duo = json_object_get(value, "duo_username")) {
        if (!json_is_string(duo)
            || !valid_duo_username(std::string_view(
                json_string_value(duo), json_string_length(duo)))) {
            error = err.member("duo_username",
                               "must be 1 to 128 printable ASCII characters "
                               "without spaces");
            return false;
        }
        user.duo_username = json_string_value(duo);
    }

    if (const json_t *keys = json_object_get(value, "webauthn")) {
        if (!parse_keys(keys, err, user.keys, error)) {
            return false;
        }
    }
    return true;
}

// The checks after JSON syntax, shared by parse() and load().
bool read_users(json_t *root, std::map<std::string, User, std::less<>> &out,
                std::map<std::string, std::string, std::less<>> &key_owners,
                std::string &error)
{
    json_t *users = json_is_object(root) ? json_object_get(root, "users")
                                         : nullptr;
    if (!json_is_object(users)) {
        error = "the top level must be an object with an object \"users\"";
        return false;
    }
    const char *name;
    json_t *value;
    json_object_foreach(users, name, value) {
        User user;
        if (!parse_user(name, value, user, error)) {
            return false;
        }
        // One credential, one account (WebAuthn Level 2 §7.1 step 22).
        for (const WebauthnKey &key : user.keys) {
            auto [owner, added] = key_owners.emplace(key.credential.id,
                                                     user.name);
            if (!added) {
                error = UserError(name).member("webauthn", "holds a key of "
                                               "user " + quote(owner->second));
                return false;
            }
        }
        user.credential_tag = credential_tag(user);
        out.emplace(user.name, std::move(user));
    }
    return true;
}

}  // namespace

// Only totp for now: "phone" and "duo_username" will add push, call and
// sms once the provider is wired in; recovery codes are a fallback, not a
// method a location can ask for.
MethodSet User::methods() const
{
    MethodSet set = 0;
    if (totp) {
        set |= static_cast<MethodSet>(Method::totp);
    }
    if (!recovery.empty()) {
        set |= static_cast<MethodSet>(Method::recovery);
    }
    if (!keys.empty()) {
        set |= static_cast<MethodSet>(Method::webauthn);
    }
    return set;
}

const WebauthnKey *User::key(std::string_view id) const
{
    for (const WebauthnKey &k : keys) {
        if (k.credential.id == id) {
            return &k;
        }
    }
    return nullptr;
}

const User *UserStore::key_owner(std::string_view credential_id) const
{
    auto it = key_owners_.find(credential_id);
    return it == key_owners_.end() ? nullptr : find(it->second);
}

std::vector<const User *> UserStore::users() const
{
    std::vector<const User *> out;
    out.reserve(users_.size());
    for (const auto &entry : users_) {
        out.push_back(&entry.second);
    }
    return out;
}

UserStore::UserStore()
{
    static std::atomic<std::uint64_t> made{0};
    generation_ = ++made;
}

const User *UserStore::find(std::string_view name) const
{
    auto it = users_.find(name);
    return it == users_.end() ? nullptr : &it->second;
}

namespace {

// The key that spreads unknown names over the settings: random, made once
// per process. The master makes it when it loads the store, so the workers
// it forks agree on what each name costs.
const unsigned char *dummy_key()
{
    static const std::array<unsigned char, 32> key = [] {
        std::array<unsigned char, 32> k{};
        if (RAND_bytes(k.data(), k.size()) != 1) {
            throw std::runtime_error("RAND_bytes failed");
        }
        return k;
    }();
    return key.data();
}

}  // namespace

void UserStore::prepare_dummy_settings()
{
    dummy_key();
    for (const auto &entry : users_) {
        std::string setting = password_setting(entry.second.password_hash);
        if (!setting.empty()) {
            dummy_settings_.push_back(std::move(setting));
        }
    }
}

std::string_view UserStore::dummy_setting(std::string_view name) const
{
    if (dummy_settings_.empty()) {
        return {};
    }
    unsigned char mac[EVP_MAX_MD_SIZE];
    size_t len = 0;
    if (EVP_Q_mac(nullptr, "HMAC", nullptr, "SHA256", nullptr, dummy_key(),
                  32, reinterpret_cast<const unsigned char *>(name.data()),
                  name.size(), mac, sizeof mac, &len) == nullptr
        || len < 8) {
        throw std::runtime_error("HMAC failed");
    }
    std::uint64_t pick = 0;
    for (int i = 0; i < 8; i++) {
        pick = pick << 8 | mac[i];
    }
    return dummy_settings_[pick % dummy_settings_.size()];
}

std::shared_ptr<const UserStore> UserStore::parse(std::string_view json,
                                                  std::string &error)
{
    json_error_t err;
    // A repeated key would leave it to the parser which entry wins.
    JsonPtr root(json_loadb(json.data(), json.size(), JSON_REJECT_DUPLICATES,
                            &err));
    if (!root) {
        error = syntax_error(err);
        return nullptr;
    }
    auto store = std::make_shared<UserStore>();
    if (!read_users(root.get(), store->users_, store->key_owners_, error)) {
        return nullptr;
    }
    store->prepare_dummy_settings();
    return store;
}

std::shared_ptr<const UserStore> UserStore::load(const std::string &path,
                                                 std::string &error)
{
    struct stat st;
    if (stat(path.c_str(), &st) == 0 && !S_ISREG(st.st_mode)) {
        error = quote(path, path.size()) + ": is not a regular file";
        return nullptr;
    }
    json_error_t err;
    JsonPtr root(json_load_file(path.c_str(), JSON_REJECT_DUPLICATES, &err));
    auto store = std::make_shared<UserStore>();
    if (!root) {
        error = quote(path, path.size()) + ": " + syntax_error(err);
        return nullptr;
    }
    if (!read_users(root.get(), store->users_, store->key_owners_, error)) {
        error = quote(path, path.size()) + ": " + error;
        return nullptr;
    }
    store->prepare_dummy_settings();
    return store;
}

std::string credential_tag(const User &user)
{
    std::string input = user.password_hash;
    input += '\n';
    if (user.totp) {
        input += user.totp->secret;
        input += '\n';
        input += hash_alg_name(user.totp->alg);
        input += ' ' + std::to_string(user.totp->digits) + ' '
                 + std::to_string(user.totp->period);
    }
    // A key added or removed changes the tag; its counter does not (it
    // moves at every sign-in). Users without keys keep their old tags.
    for (const WebauthnKey &key : user.keys) {
        input += "\nkey " + key.credential.id;
    }

    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(),
                    nullptr))
        throw std::runtime_error("SHA-256 failed");

    return base64url_encode(std::string_view(
        reinterpret_cast<const char *>(digest), 12));
}

bool valid_user_name(std::string_view name)
{
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (char c : name) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '@'
            || c == '+' || c == '-';
        if (!ok) {
            return false;
        }
    }
    return true;
}

bool valid_phone(std::string_view phone)
{
    if (phone.size() < 9 || phone.size() > 16 || phone[0] != '+') {
        return false;
    }
    for (char c : phone.substr(1)) {
        if (c < '0' || c > '9') {
            return false;
        }
    }
    return true;
}

bool valid_recovery_hash(std::string_view hash)
{
    if (hash.size() != 64) {
        return false;
    }
    for (char c : hash) {
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            return false;
        }
    }
    return true;
}

bool valid_key_name(std::string_view name)
{
    if (name.empty() || name.size() > 64) {
        return false;
    }
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u < 0x20 || u == 0x7f) {
            return false;
        }
    }
    return true;
}

std::string webauthn_user_handle(std::string_view user_name)
{
    std::string input = "nginx-twostep webauthn user\n";
    input += user_name;
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (!EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(),
                    nullptr))
        throw std::runtime_error("SHA-256 failed");
    return base64url_encode(std::string_view(
        reinterpret_cast<const char *>(digest), 16));
}

bool valid_duo_username(std::string_view name)
{
    if (name.empty() || name.size() > 128) {
        return false;
    }
    for (char c : name) {
        auto u = static_cast<unsigned char>(c);
        if (u <= ' ' || u >= 0x7f) {
            return false;
        }
    }
    return true;
}

}  // namespace twostep
