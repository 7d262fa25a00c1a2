#include "password.h"

#include <crypt.h>
#include <openssl/crypto.h>

#include <cstddef>
#include <memory>
#include <string>

namespace twostep {

namespace {

// Longer passwords never match: libxcrypt refuses them (ERANGE), and the
// bound keeps sha-crypt's per-round cost, linear in the length, from being
// a denial of service. OWASP ASVS 2.1.2 asks for at least 64.
constexpr std::size_t max_password_bytes = CRYPT_MAX_PASSPHRASE_SIZE - 1;
constexpr std::size_t max_hash_bytes = 256;

// A real yescrypt hash (default cost "j9T") of a random, discarded password:
// password_dummy_check() costs what a check of a store entry costs.
constexpr const char dummy_hash[] =
    "$y$j9T$ZUPXUpwekzow9B6bcVtNp1$irfUwHzqw/w5QttIcBLieg2jC4F..ZWzivYVNe9j6W/";

// struct crypt_data is ~32 KiB: too big for a stack in nginx's thread pool.
// Wiped afterwards since it holds state derived from the password.
struct CryptBuffer {
    crypt_data data{};  // zeroed, as crypt_rn requires
    ~CryptBuffer() { OPENSSL_cleanse(&data, sizeof data); }
};

// A NUL-terminated copy of the password, wiped on destruction.
class SecretCopy {
public:
    explicit SecretCopy(std::string_view text) : text_(text) {}
    ~SecretCopy() { OPENSSL_cleanse(text_.data(), text_.size()); }
    SecretCopy(const SecretCopy &) = delete;
    SecretCopy &operator=(const SecretCopy &) = delete;
    const char *c_str() const { return text_.c_str(); }

private:
    std::string text_;
};

bool hash_char(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9') || c == '.' || c == '/' || c == '$'
        || c == '=';
}

enum class Outcome { match, mismatch, failed };

// One crypt(3) run, compared with `hash` in constant time.
Outcome crypt_compare(std::string_view password, std::string_view hash)
{
    SecretCopy phrase(password);
    std::string setting(hash);
    auto buffer = std::make_unique<CryptBuffer>();
    const char *out = crypt_rn(phrase.c_str(), setting.c_str(),
                               &buffer->data, sizeof buffer->data);
    // libxcrypt signals failure with NULL or a "*0"/"*1" token.
    if (out == nullptr || out[0] == '*') {
        return Outcome::failed;
    }
    std::string_view result(out);
    bool equal = result.size() == hash.size()
        && CRYPTO_memcmp(result.data(), hash.data(), hash.size()) == 0;
    return equal ? Outcome::match : Outcome::mismatch;
}

// Only salted, slow schemes (OWASP ASVS 2.4.1): no md5crypt, DES or NT.
bool supported_scheme(std::string_view hash)
{
    static constexpr std::string_view prefixes[] = {
        "$y$", "$gy$", "$7$", "$2b$", "$2a$", "$2y$", "$6$", "$5$",
    };
    if (hash.size() > max_hash_bytes) {
        return false;
    }
    for (std::string_view prefix : prefixes) {
        if (hash.substr(0, prefix.size()) == prefix) {
            return true;
        }
    }
    return false;
}

}  // namespace

bool supported_password_hash(std::string_view hash)
{
    if (!supported_scheme(hash)) {
        return false;
    }
    for (char c : hash) {
        if (!hash_char(c)) {
            return false;
        }
    }
    // Every accepted scheme ends in "$" and at least 43 characters of hash
    // (bcrypt: 53 of salt and hash), so a bare setting such as "$6$salt$"
    // is not taken for a hash.
    std::size_t last = hash.rfind('$');
    return hash.size() - last - 1 >= 43;
}

bool password_matches(std::string_view password, std::string_view hash)
{
    // crypt(3) stops at a NUL, so "a\0b" would pass as "a".
    if (password.size() > max_password_bytes
        || password.find('\0') != std::string_view::npos
        || !supported_password_hash(hash)) {
        password_dummy_check(password);
        return false;
    }
    switch (crypt_compare(password, hash)) {
    case Outcome::match:
        return true;
    case Outcome::mismatch:
        return false;
    case Outcome::failed:
        break;
    }
    // A hash libcrypt cannot use fails at once: spend the time anyway.
    password_dummy_check(password);
    return false;
}

std::string password_setting(std::string_view hash)
{
    if (!supported_password_hash(hash)) {
        return {};
    }
    // bcrypt: "$2b$NN$" and 22 characters of salt run into the hash.
    if (hash[1] == '2') {
        return std::string(hash.substr(0, 29));
    }
    // The others: the hash is the last "$"-separated field.
    return std::string(hash.substr(0, hash.rfind('$')));
}

bool password_dummy_check(std::string_view password, std::string_view setting)
{
    // Same work as a real check, so response time does not tell whether a
    // user exists (OWASP Authentication Cheat Sheet, "Authentication and
    // Error Messages"). The password is cut to what crypt accepts, or the
    // check would fail at once. A setting never equals a hash, so the
    // outcome is always a mismatch unless crypt refused the setting.
    std::string_view head = password.substr(0, max_password_bytes);
    head = head.substr(0, head.find('\0'));
    if (supported_scheme(setting)
        && crypt_compare(head, setting) != Outcome::failed) {
        return true;
    }
    crypt_compare(head, dummy_hash);
    return false;
}

}  // namespace twostep
