// HMAC-SHA256 signed tokens and base64url (RFC 4648 section 5).
#include "keyring.h"

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <climits>
#include <cstdint>
#include <stdexcept>

namespace twostep {

namespace {

constexpr std::size_t mac_bytes = 32;
constexpr std::size_t max_token_bytes = 4096;
constexpr std::size_t max_kind_bytes = 16;
constexpr std::string_view key_label = "nginx-twostep token key v1";
// Prefixed to mac() input: a signed token's MAC input starts with a
// [a-z] word and '.', so mac() of any data can never forge a token.
constexpr std::string_view mac_label = "mac|";
constexpr std::string_view audience_label = "audience|";

constexpr char b64url_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

std::string hmac_sha256(std::string_view key, std::string_view data)
{
    if (key.empty() || key.size() > INT_MAX)
        throw std::invalid_argument("bad HMAC key length");
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int out_len = 0;
    if (!HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
              reinterpret_cast<const unsigned char *>(data.data()),
              data.size(), out, &out_len)
        || out_len != mac_bytes)
        throw std::runtime_error("HMAC-SHA256 failed");
    return std::string(reinterpret_cast<const char *>(out), out_len);
}

bool same_mac(std::string_view a, std::string_view b)
{
    return a.size() == b.size()
           && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

bool valid_kind(std::string_view kind)
{
    if (kind.empty() || kind.size() > max_kind_bytes)
        return false;
    for (char c : kind) {
        if (c < 'a' || c > 'z')
            return false;
    }
    return true;
}

int b64url_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

}  // namespace

bool KeyRing::add(std::string_view raw)
{
    if (raw.size() < min_key_bytes)
        return false;
    std::string key = hmac_sha256(raw, key_label);
    add_derived(key);
    return true;
}

// Keys an HMAC context with `key` (32 derived bytes), which is wiped.
void KeyRing::add_derived(std::string &key)
{
    static EVP_MAC *hmac = EVP_MAC_fetch(nullptr, "HMAC", nullptr);
    if (hmac == nullptr)
        throw std::runtime_error("HMAC is not available");

    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_new(hmac));
    OSSL_PARAM params[] = {
        OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
                                         const_cast<char *>("SHA256"), 0),
        OSSL_PARAM_construct_end()
    };
    bool keyed = ctx
        && EVP_MAC_init(ctx.get(),
                        reinterpret_cast<const unsigned char *>(key.data()),
                        key.size(), params);
    OPENSSL_cleanse(key.data(), key.size());
    if (!keyed)
        throw std::runtime_error("HMAC-SHA256 key setup failed");
    keys_.push_back(std::move(ctx));
}

KeyRing KeyRing::for_audience(std::string_view audience) const
{
    // "audience|" is neither a token's "<kind>." nor mac()'s "mac|": a
    // derived key is never a MAC anyone can obtain.
    std::string input(audience_label);
    input += audience;
    KeyRing ring;
    for (const auto &key : keys_) {
        std::string derived = mac_with(key.get(), input);
        ring.add_derived(derived);
    }
    return ring;
}

void KeyRing::MacCtxFree::operator()(EVP_MAC_CTX *ctx) const
{
    EVP_MAC_CTX_free(ctx);
}

std::string KeyRing::mac_with(const EVP_MAC_CTX *key, std::string_view data)
{
    std::unique_ptr<EVP_MAC_CTX, MacCtxFree> ctx(EVP_MAC_CTX_dup(key));
    unsigned char out[EVP_MAX_MD_SIZE];
    std::size_t out_len = 0;
    if (!ctx
        || !EVP_MAC_update(ctx.get(),
                           reinterpret_cast<const unsigned char *>(data.data()),
                           data.size())
        || !EVP_MAC_final(ctx.get(), out, &out_len, sizeof(out))
        || out_len != mac_bytes)
        throw std::runtime_error("HMAC-SHA256 failed");
    return std::string(reinterpret_cast<const char *>(out), out_len);
}

std::string KeyRing::sign(std::string_view kind,
                          std::string_view payload) const
{
    if (keys_.empty())
        throw std::logic_error("KeyRing::sign with no keys");
    if (!valid_kind(kind))
        throw std::invalid_argument("token kind must be a short [a-z] word");
    std::string token(kind);
    token += '.';
    token += base64url_encode(payload);
    std::string tag = mac_with(keys_.front().get(), token);
    token += '.';
    token += base64url_encode(tag);
    return token;
}

std::optional<std::string> KeyRing::verify(std::string_view kind,
                                           std::string_view token) const
{
    if (token.size() > max_token_bytes || !valid_kind(kind) || keys_.empty())
        return std::nullopt;
    if (token.size() <= kind.size() || token.substr(0, kind.size()) != kind
        || token[kind.size()] != '.')
        return std::nullopt;
    std::size_t dot = token.find('.', kind.size() + 1);
    if (dot == std::string_view::npos)
        return std::nullopt;
    std::string_view signed_part = token.substr(0, dot);
    auto tag = base64url_decode(token.substr(dot + 1));
    if (!tag || tag->size() != mac_bytes)
        return std::nullopt;

    bool ok = false;
    for (const auto &key : keys_)
        ok |= same_mac(mac_with(key.get(), signed_part), *tag);
    if (!ok)
        return std::nullopt;
    return base64url_decode(signed_part.substr(kind.size() + 1));
}

std::string KeyRing::mac(std::string_view data) const
{
    if (keys_.empty())
        throw std::logic_error("KeyRing::mac with no keys");
    std::string input(mac_label);
    input += data;
    return base64url_encode(mac_with(keys_.front().get(), input));
}

bool KeyRing::mac_ok(std::string_view data, std::string_view tag) const
{
    auto raw = base64url_decode(tag);
    if (!raw || raw->size() != mac_bytes)
        return false;
    std::string input(mac_label);
    input += data;
    bool ok = false;
    for (const auto &key : keys_)
        ok |= same_mac(mac_with(key.get(), input), *raw);
    return ok;
}

std::string random_token(std::size_t bytes)
{
    if (bytes > INT_MAX)
        throw std::invalid_argument("random_token: too many bytes");
    std::string buf(bytes, '\0');
    if (bytes > 0
        && RAND_bytes(reinterpret_cast<unsigned char *>(buf.data()),
                      static_cast<int>(bytes)) != 1)
        throw std::runtime_error("RAND_bytes failed");
    return base64url_encode(buf);
}

std::string base64url_encode(std::string_view bytes)
{
    std::string out;
    out.reserve((bytes.size() * 4 + 2) / 3);
    std::uint32_t buffer = 0;
    int bits = 0;
    for (char c : bytes) {
        buffer = (buffer << 8) | static_cast<unsigned char>(c);
        bits += 8;
        while (bits >= 6) {
            bits -= 6;
            out.push_back(b64url_alphabet[(buffer >> bits) & 0x3f]);
        }
        buffer &= (1u << bits) - 1;
    }
    if (bits > 0)
        out.push_back(b64url_alphabet[(buffer << (6 - bits)) & 0x3f]);
    return out;
}

std::string base64_encode(std::string_view bytes)
{
    std::string out(4 * ((bytes.size() + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(
                                bytes.data()),
                            static_cast<int>(bytes.size()));
    out.resize(static_cast<std::size_t>(n));
    return out;
}

std::optional<std::string> base64url_decode(std::string_view text)
{
    // A single leftover character carries only 6 bits: never valid.
    if (text.size() % 4 == 1)
        return std::nullopt;
    std::string out;
    out.reserve(text.size() * 3 / 4);
    std::uint32_t buffer = 0;
    int bits = 0;
    for (char c : text) {
        int v = b64url_value(c);
        if (v < 0)
            return std::nullopt;
        buffer = (buffer << 6) | static_cast<std::uint32_t>(v);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xff));
        }
        buffer &= (1u << bits) - 1;
    }
    // Unused trailing bits must be zero, so every byte string has exactly
    // one encoding (RFC 4648 section 3.5).
    if (buffer != 0)
        return std::nullopt;
    return out;
}

}  // namespace twostep
