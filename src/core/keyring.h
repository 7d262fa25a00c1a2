// Signing keys for cookies and form tokens: the first key signs, every key
// verifies, so an administrator can rotate keys without signing anyone out.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace twostep {

constexpr std::size_t min_key_bytes = 32;

class KeyRing {
public:
    // Derives the MAC key from the raw file contents (HMAC-SHA256 of a fixed
    // label, once, at configuration time). Returns false if raw is shorter
    // than min_key_bytes.
    bool add(std::string_view raw);
    bool empty() const { return keys_.empty(); }

    // "<kind>.<base64url(payload)>.<base64url(HMAC-SHA256)>", signed with the
    // first key; the MAC covers kind and payload, so a token of one kind is
    // never accepted as another.
    std::string sign(std::string_view kind, std::string_view payload) const;

    // The payload if `token` is of `kind` and verifies under any key
    // (constant-time comparison), else nullopt.
    std::optional<std::string> verify(std::string_view kind,
                                      std::string_view token) const;

    // The same keys, each derived anew for `audience` (HMAC of "audience|"
    // + audience under it): what one audience signed, token or MAC, no
    // other verifies (a server's sessions open no other server).
    KeyRing for_audience(std::string_view audience) const;

    // HMAC of "mac|" + `data` under the first key, base64url (for form
    // tokens); the label keeps these from ever passing as a token MAC.
    std::string mac(std::string_view data) const;
    // True if `tag` equals mac(data) under any key (constant time).
    bool mac_ok(std::string_view data, std::string_view tag) const;

private:
    struct MacCtxFree {
        void operator()(EVP_MAC_CTX *ctx) const;
    };

    // One HMAC context per key, keyed once: each MAC then costs a copy of
    // it instead of a fresh key schedule (the hot path of every request).
    std::vector<std::unique_ptr<EVP_MAC_CTX, MacCtxFree>> keys_;

    static std::string mac_with(const EVP_MAC_CTX *key,
                                std::string_view data);
    void add_derived(std::string &key);
};

// `bytes` random bytes from RAND_bytes, base64url without padding.
// Throws std::runtime_error if the RNG fails.
std::string random_token(std::size_t bytes);

std::string base64url_encode(std::string_view bytes);
// RFC 4648 section 4, with padding (HTTP Basic credentials, signatures).
std::string base64_encode(std::string_view bytes);
std::optional<std::string> base64url_decode(std::string_view text);

}  // namespace twostep
