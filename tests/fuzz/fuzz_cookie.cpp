// The session, pending sign-in and push set-up cookies and the capability in a
// self-hosted push's or call's links: the raw input as a cookie, and
// the input signed as a payload, so the fuzzer reaches the payload parser
// behind the MAC. Whatever decodes must be a cookie encode_* could have
// written, and re-encoding it must give back the very same token.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/keyring.h"
#include "core/methods.h"
#include "core/ntfy.h"
#include "core/session.h"
#include "core/user_store.h"
#include "fuzz.h"

using namespace twostep;

namespace {

const KeyRing &keys()
{
    static const KeyRing ring = [] {
        KeyRing k;
        CHECK(k.add(fuzz::test_key));
        return k;
    }();
    return ring;
}

// What random_token() produces: base64url, non-empty, at most 128 bytes.
bool valid_id(const std::string &id)
{
    if (id.empty() || id.size() > 128)
        return false;
    for (char c : id) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

void check_session(const Session &s, std::string_view token)
{
    CHECK(valid_id(s.sid));
    CHECK(valid_user_name(s.user));
    CHECK(method_from_name(method_name(s.method)) == s.method);
    CHECK(s.auth_time >= 0);
    CHECK(s.expires > fuzz::now);
    // Canonical: one session, one token (no malleable encodings).
    CHECK(encode_session(keys(), s) == token);
    decide(&s, all_methods, 300, fuzz::now, true);
}

void check_pending(const PendingSignin &p, std::string_view token)
{
    CHECK(valid_id(p.nonce));
    if (p.via == FirstFactor::none)
        CHECK(p.user.empty());
    else
        CHECK(valid_user_name(p.user));
    CHECK(p.expires > fuzz::now);
    CHECK(encode_pending(keys(), p) == token);
    CHECK(form_token_ok(keys(), p, form_token(keys(), p)));
}

void check_capability(const Capability &c, std::string_view token)
{
    CHECK(valid_id(c.txid));
    CHECK(valid_user_name(c.user));
    CHECK(method_info(c.method).waits);
    CHECK(c.expires > fuzz::now);
    CHECK(c.address.find('|') == std::string::npos);
    CHECK(capability_token(keys(), c) == token);
}

// What decodes as a push set-up encodes back to the same token.
void check_push_setup(const PushSetup &u, std::string_view token)
{
    CHECK(valid_id(u.sid));
    CHECK(valid_user_name(u.user));
    CHECK(ntfy::valid_topic(u.topic));
    CHECK(u.txid.empty() || valid_id(u.txid));
    CHECK(u.expires > fuzz::now);
    CHECK(encode_push_setup(keys(), u) == token);
}

// The token as a cookie or a link of any kind.
void decode_both(std::string_view token)
{
    auto s = decode_session(keys(), token, fuzz::now);
    auto p = decode_pending(keys(), token, fuzz::now);
    auto c = read_capability(keys(), token, fuzz::now);
    auto u = decode_push_setup(keys(), token, fuzz::now);
    CHECK(int(bool(s)) + int(bool(p)) + int(bool(c)) + int(bool(u))
          <= 1);  // one kind
    if (u)
        check_push_setup(*u, token);
    if (s)
        check_session(*s, token);
    if (p)
        check_pending(*p, token);
    if (c)
        check_capability(*c, token);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    std::string_view input = fuzz::view(data, size);

    // 1. The input as the cookie value.
    decode_both(input);

    // 2. The input as a payload, correctly signed.
    for (std::string_view kind : {"s", "p", "x", "u"}) {
        std::string token = keys().sign(kind, input);
        // verify() returns exactly the signed payload, for this kind only
        // (tokens over 4096 bytes are refused outright).
        auto payload = keys().verify(kind, token);
        if (token.size() <= 4096)
            CHECK(payload && *payload == input);
        else
            CHECK(!payload);
        for (std::string_view other : {"s", "p", "x"}) {
            CHECK(other == kind || !keys().verify(other, token));
        }
        decode_both(token);
    }

    // 3. The input as a form token for a fixed pending sign-in: only the
    // one canonical MAC passes.
    PendingSignin fixed;
    fixed.nonce = "fuzz-nonce_0";
    fixed.expires = fuzz::now + 300;
    CHECK(form_token_ok(keys(), fixed, input)
          == (input == form_token(keys(), fixed)));
    return 0;
}
