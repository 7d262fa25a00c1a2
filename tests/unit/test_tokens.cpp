// Signed tokens: the key ring, base64url, and the session and pending
// sign-in cookies built on them.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <stdexcept>
#include <string>

#include "core/keyring.h"
#include "core/session.h"
#include "core/user_store.h"
#include "unit.h"

using namespace twostep;

namespace {

const std::string key_a(32, 'a');
const std::string key_b = "0123456789abcdef0123456789abcdef-b";
const std::string key_c(64, 'c');

KeyRing ring(std::initializer_list<std::string> raws)
{
    KeyRing keys;
    for (const std::string &raw : raws)
        ck_assert(keys.add(raw));
    return keys;
}

std::string hmac256(const std::string &key, const std::string &data)
{
    unsigned char out[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
         reinterpret_cast<const unsigned char *>(data.data()), data.size(),
         out, &len);
    return std::string(reinterpret_cast<const char *>(out), len);
}

// The index of the second '.', where the MAC starts.
std::size_t mac_start(const std::string &token)
{
    return token.find('.', token.find('.') + 1) + 1;
}

Session sample_session()
{
    Session s;
    s.sid = "sid-1_Ab";
    s.user = "alice@example.org";
    s.method = Method::sms;
    s.auth_time = 1700000000;
    s.expires = 1700003600;
    s.issued = 1699999990;
    return s;
}

PendingSignin sample_pending()
{
    PendingSignin p;
    p.nonce = "nonce_XYZ-0";
    p.user = "bob.smith+x";
    p.via = FirstFactor::password;
    p.expires = 1700000300;
    return p;
}

template <typename F>
bool throws_invalid(F f)
{
    try {
        f();
    } catch (const std::invalid_argument &) {
        return true;
    }
    return false;
}

}  // namespace

// ---- base64url ----

START_TEST(base64url_vectors)
{
    // RFC 4648 section 10, unpadded, plus the two URL-safe characters.
    const char *plain[] = {"", "f", "fo", "foo", "foob", "fooba", "foobar"};
    const char *coded[] = {"", "Zg", "Zm8", "Zm9v", "Zm9vYg", "Zm9vYmE",
                           "Zm9vYmFy"};
    for (int i = 0; i < 7; i++) {
        ck_assert_string_eq(base64url_encode(plain[i]), coded[i]);
        ck_assert_string_eq(base64url_decode(coded[i]).value_or("(none)"),
                            plain[i]);
    }
    ck_assert_string_eq(base64url_encode("\xfb\xff"), "-_8");
    ck_assert_string_eq(base64url_decode("-_8").value_or("(none)"),
                        "\xfb\xff");

    std::string all;
    for (int i = 0; i < 256; i++)
        all.push_back(static_cast<char>(i));
    for (std::size_t len = 0; len <= 6; len++) {
        std::string part = all.substr(100, len);
        ck_assert(base64url_decode(base64url_encode(part)) == part);
    }
    ck_assert(base64url_decode(base64url_encode(all)) == all);
}
END_TEST

START_TEST(base64url_strict)
{
    const char *bad[] = {
        "Zg==",    // padding
        "Zg=",
        "Zm9vYg=", // padding
        "Z",       // impossible length (6 bits)
        "Zm9vY",   // likewise
        "Zh",      // non-zero unused bits: not the canonical "Zg"
        "Zm9",     // likewise ("Zm8")
        "Zm9v+",   // standard base64, not base64url
        "Zm9v/w",
        "Zm 9v",
        "Zm9v\n",
        "Zm9v.",
        "Zm9v\xc3\xa9",
    };
    for (const char *text : bad)
        ck_assert_msg(!base64url_decode(text).has_value(), "accepted '%s'",
                      text);
    ck_assert(!base64url_decode(std::string("Zg\0", 3)));
}
END_TEST

START_TEST(random_tokens)
{
    std::string a = random_token(32), b = random_token(32);
    ck_assert_int_eq(a.size(), 43);
    ck_assert(a != b);
    auto raw = base64url_decode(a);
    ck_assert(raw.has_value());
    ck_assert_int_eq(raw->size(), 32);
    ck_assert_int_eq(random_token(16).size(), 22);
}
END_TEST

// ---- KeyRing ----

START_TEST(keyring_short_key)
{
    KeyRing keys;
    ck_assert(keys.empty());
    ck_assert(!keys.add(std::string(31, 'k')));
    ck_assert(!keys.add(""));
    ck_assert(keys.empty());
    ck_assert(!keys.verify("s", "s.eA.AAAA"));
    ck_assert(!keys.mac_ok("x", "AAAA"));
    ck_assert(keys.add(std::string(32, 'k')));
    ck_assert(!keys.empty());

    bool threw = false;
    try {
        KeyRing().sign("s", "x");
    } catch (const std::logic_error &) {
        threw = true;
    }
    ck_assert(threw);
}
END_TEST

START_TEST(keyring_round_trip)
{
    KeyRing keys = ring({key_a});
    const std::string payloads[] = {"", "x", "1|a.b|c", std::string(300, 'z'),
                                    std::string("\0\xff.|", 4)};
    for (const std::string &payload : payloads) {
        std::string token = keys.sign("s", payload);
        ck_assert_string_eq(keys.verify("s", token).value_or("(none)"),
                            payload);
    }
    std::string token = keys.sign("session", "hello");
    ck_assert_string_eq(token.substr(0, 16), "session.aGVsbG8.");
    ck_assert_int_eq(token.size() - mac_start(token), 43);
}
END_TEST

START_TEST(keyring_key_derivation)
{
    // The MAC key is HMAC-SHA256(raw file bytes, "nginx-twostep token key
    // v1"), and the token MAC covers "<kind>.<base64url(payload)>".
    KeyRing keys = ring({key_b});
    std::string derived = hmac256(key_b, "nginx-twostep token key v1");
    std::string token = keys.sign("p", "payload");
    std::string body = "p." + base64url_encode("payload");
    ck_assert_string_eq(token,
                        body + "." + base64url_encode(hmac256(derived, body)));
    // The raw bytes themselves are not the MAC key.
    ck_assert(token
              != body + "." + base64url_encode(hmac256(key_b, body)));
}
END_TEST

START_TEST(keyring_audiences)
{
    KeyRing keys = ring({key_a});
    KeyRing a = keys.for_audience("a.example");
    KeyRing b = keys.for_audience("b.example");
    std::string token = a.sign("s", "payload");
    ck_assert(a.verify("s", token));
    ck_assert(keys.for_audience("a.example").verify("s", token));
    // Another audience, or none, verifies nothing of a's; nor a theirs.
    ck_assert(!b.verify("s", token));
    ck_assert(!keys.verify("s", token));
    ck_assert(!a.verify("s", keys.sign("s", "payload")));
    ck_assert(!b.mac_ok("form|n", a.mac("form|n")));
    // Rotation still works: every key is derived.
    ck_assert(ring({key_b, key_a}).for_audience("a.example")
                  .verify("s", token));
    // The derived key: HMAC-SHA256(token key, "audience|" + audience).
    std::string derived = hmac256(
        hmac256(key_a, "nginx-twostep token key v1"), "audience|a.example");
    std::string body = "p." + base64url_encode("x");
    ck_assert_string_eq(a.sign("p", "x"),
                        body + "." + base64url_encode(hmac256(derived, body)));
}
END_TEST

START_TEST(keyring_tampering)
{
    KeyRing keys = ring({key_a});
    std::string token = keys.sign("s", "1|sid|alice|totp|1|2|");
    ck_assert(keys.verify("s", token));

    // Payload: another valid base64url character in the middle.
    std::string t1 = token;
    t1[4] = t1[4] == 'A' ? 'B' : 'A';
    ck_assert(!keys.verify("s", t1));
    // MAC: a character in the middle (so the encoding stays canonical).
    std::string t2 = token;
    std::size_t m = mac_start(token) + 10;
    t2[m] = t2[m] == 'A' ? 'B' : 'A';
    ck_assert(!keys.verify("s", t2));
    // Truncated anywhere.
    for (std::size_t len = 0; len < token.size(); len++)
        ck_assert_msg(!keys.verify("s", token.substr(0, len)),
                      "accepted a %zu-byte prefix", len);
    // Extended.
    ck_assert(!keys.verify("s", token + "A"));
    ck_assert(!keys.verify("s", token + "."));
    ck_assert(!keys.verify("s", token + ".AAAA"));
    // Payload swapped for another valid token's payload.
    std::string other = keys.sign("s", "1|sid|admin|totp|1|2|");
    std::string spliced = other.substr(0, mac_start(other))
                          + token.substr(mac_start(token));
    ck_assert(!keys.verify("s", spliced));
}
END_TEST

START_TEST(keyring_kinds)
{
    KeyRing keys = ring({key_a});
    std::string token = keys.sign("s", "data");
    ck_assert(keys.verify("s", token));
    ck_assert(!keys.verify("p", token));
    ck_assert(!keys.verify("ss", token));
    // Relabelled: the MAC covers the kind.
    ck_assert(!keys.verify("p", "p" + token.substr(1)));
    // Kinds are short [a-z] words.
    ck_assert(throws_invalid([&] { keys.sign("S", "x"); }));
    ck_assert(throws_invalid([&] { keys.sign("", "x"); }));
    ck_assert(throws_invalid([&] { keys.sign("a.b", "x"); }));
    ck_assert(throws_invalid([&] { keys.sign("a|b", "x"); }));
    ck_assert(throws_invalid([&] { keys.sign(std::string(17, 'a'), "x"); }));
    ck_assert(keys.verify("abcdefghijklmnop",
                          keys.sign("abcdefghijklmnop", "x")));
    ck_assert(!keys.verify("", "." + token.substr(2)));
}
END_TEST

START_TEST(keyring_unknown_key_and_rotation)
{
    KeyRing old_ring = ring({key_a});
    KeyRing new_ring = ring({key_b});
    KeyRing rotated = ring({key_b, key_a});
    std::string old_token = old_ring.sign("s", "payload");

    ck_assert(!new_ring.verify("s", old_token));
    ck_assert_string_eq(rotated.verify("s", old_token).value_or("(none)"),
                        "payload");
    // The rotated ring signs with its first key, which the old ring lacks.
    std::string new_token = rotated.sign("s", "payload");
    ck_assert(new_token != old_token);
    ck_assert(new_ring.verify("s", new_token));
    ck_assert(!old_ring.verify("s", new_token));
    // A third key anywhere in the ring does not matter.
    ck_assert(ring({key_c, key_b, key_a}).verify("s", old_token));
    ck_assert(!ring({key_c}).verify("s", old_token));
}
END_TEST

START_TEST(keyring_size_limit)
{
    KeyRing keys = ring({key_a});
    // 3000 bytes -> a 4046-byte token; 3100 -> 4180 bytes, over 4096.
    std::string fits = keys.sign("s", std::string(3000, 'x'));
    std::string too_long = keys.sign("s", std::string(3100, 'x'));
    ck_assert_int_le(fits.size(), 4096);
    ck_assert_int_gt(too_long.size(), 4096);
    ck_assert(keys.verify("s", fits));
    ck_assert(!keys.verify("s", too_long));
}
END_TEST

START_TEST(keyring_mac)
{
    KeyRing keys = ring({key_a});
    std::string tag = keys.mac("form|n1");
    ck_assert_int_eq(tag.size(), 43);
    ck_assert(keys.mac_ok("form|n1", tag));
    ck_assert(!keys.mac_ok("form|n2", tag));
    ck_assert(!keys.mac_ok("form|n1", ""));
    ck_assert(!keys.mac_ok("form|n1", tag.substr(0, 42)));
    ck_assert(!keys.mac_ok("form|n1", tag + "A"));
    std::string flipped = tag;
    flipped[5] = flipped[5] == 'A' ? 'B' : 'A';
    ck_assert(!keys.mac_ok("form|n1", flipped));
    ck_assert(!ring({key_b}).mac_ok("form|n1", tag));
    ck_assert(ring({key_b, key_a}).mac_ok("form|n1", tag));
    // mac() can never serve as a token MAC (separate domains).
    std::string body = "s." + base64url_encode("1|x|admin|totp|1|9999999999|");
    ck_assert(!keys.verify("s", body + "." + keys.mac(body)));
}
END_TEST

// ---- Session and pending sign-in ----

START_TEST(session_round_trip)
{
    KeyRing keys = ring({key_a});
    const Method methods[] = {Method::totp, Method::push, Method::call,
                              Method::sms};
    for (Method m : methods) {
        Session s = sample_session();
        s.method = m;
        std::string token = encode_session(keys, s);
        ck_assert_string_eq(token.substr(0, 2), "s.");
        auto d = decode_session(keys, token, s.auth_time);
        ck_assert(d.has_value());
        ck_assert_string_eq(d->sid, s.sid);
        ck_assert_string_eq(d->user, s.user);
        ck_assert(d->method == m);
        ck_assert_int_eq(d->auth_time, s.auth_time);
        ck_assert_int_eq(d->expires, s.expires);
        ck_assert_int_eq(d->issued, s.issued);
    }
    // The documented payload layout.
    std::string token = encode_session(keys, sample_session());
    ck_assert_string_eq(keys.verify("s", token).value_or("(none)"),
                        "3|sid-1_Ab|alice@example.org|sms|1700000000|"
                        "1700003600||password|1699999990");
    // How the first factor was passed travels signed.
    Session identity = sample_session();
    identity.via = FirstFactor::identity;
    auto d = decode_session(keys, encode_session(keys, identity), 0);
    ck_assert(d.has_value());
    ck_assert(d->via == FirstFactor::identity);
    ck_assert(decode_session(keys, token, 0)->via == FirstFactor::password);
    ck_assert(decode_session(keys, token, 0)->issued == 1699999990);
    // A session is not a pending sign-in, and vice versa.
    ck_assert(!decode_pending(keys, token, 0));
    ck_assert(!decode_session(keys, encode_pending(keys, sample_pending()),
                              0));
    // Nor valid under an unknown key.
    ck_assert(!decode_session(ring({key_b}), token, 0));
}
END_TEST

START_TEST(session_expiry)
{
    KeyRing keys = ring({key_a});
    Session s = sample_session();
    std::string token = encode_session(keys, s);
    ck_assert(decode_session(keys, token, s.expires - 1));
    ck_assert(!decode_session(keys, token, s.expires));
    ck_assert(!decode_session(keys, token, s.expires + 1));
    ck_assert(!decode_session(keys, token, INT64_MAX));
}
END_TEST

START_TEST(session_lifetime_is_the_current_ttl)
{
    Session s = sample_session();   // began 1699999990, expires +3610
    ck_assert(session_within(s, 3600, 1700000000));
    ck_assert(session_within(s, 3600, s.issued + 3599));
    ck_assert(!session_within(s, 3600, s.issued + 3600));
    // A lower TTL now: the session ends that much after its start.
    ck_assert(session_within(s, 5, s.issued + 4));
    ck_assert(!session_within(s, 5, s.issued + 5));
    ck_assert(!session_within(s, 5, s.issued + 7));
    // A higher one never extends the expiry it was made with.
    ck_assert(!session_within(s, 86400, s.expires));
}
END_TEST

START_TEST(session_encode_refuses)
{
    KeyRing keys = ring({key_a});
    Session s = sample_session();
    s.user = "ali|ce";
    ck_assert(throws_invalid([&] { encode_session(keys, s); }));
    s = sample_session();
    s.sid = "a|b";
    ck_assert(throws_invalid([&] { encode_session(keys, s); }));
    s = sample_session();
    s.user = "";
    ck_assert(throws_invalid([&] { encode_session(keys, s); }));
    s = sample_session();
    s.auth_time = -1;
    ck_assert(throws_invalid([&] { encode_session(keys, s); }));
    // A session is opened by a password or an identity, nothing else.
    s = sample_session();
    s.via = FirstFactor::none;
    ck_assert(throws_invalid([&] { encode_session(keys, s); }));
    s.via = FirstFactor::session;
    ck_assert(throws_invalid([&] { encode_session(keys, s); }));

    PendingSignin p = sample_pending();
    p.user = "b|ob";
    ck_assert(throws_invalid([&] { encode_pending(keys, p); }));
    p = sample_pending();
    p.nonce = "n|1";
    ck_assert(throws_invalid([&] { encode_pending(keys, p); }));
    p = sample_pending();
    p.via = FirstFactor::none;  // a user without a first factor
    ck_assert(throws_invalid([&] { encode_pending(keys, p); }));
}
END_TEST

START_TEST(session_malformed_payloads)
{
    KeyRing keys = ring({key_a});
    auto decodes = [&](const std::string &payload) {
        return decode_session(keys, keys.sign("s", payload), 1000)
            .has_value();
    };
    // The well-formed baseline, so the refusals below mean something.
    ck_assert(decodes("3|abc|alice|totp|100|2000||password|100"));
    ck_assert(decodes("3|abc|alice|totp|100|2000|Cred_tag-1|password|100"));
    ck_assert(decodes("3|abc|alice|call|0|2000||identity|100"));
    const char *bad[] = {
        "3|abc|alice|totp|100|2000||password|100|x",  // extra field
        "3|abc|alice|totp|100|2000||password|100|",   // extra empty field
        "3|abc|alice|totp|100|2000||password|",       // no start
        "3|abc|alice|totp|100|2000||password",
        "3|abc|alice|totp|100|2000||password|1e2",
        "3|abc|alice|totp|2000|password|100",         // missing field
        "3|abc|alice|totp|100",
        "",
        "1|abc|alice|totp|100|2000||100",      // version 1: no first factor
        "1|abc|alice|totp|100|2000|",
        "2|abc|alice|totp|100|2000||password",  // version 2: no start
        "2|abc|alice|totp|100|2000||password|100",
        "4|abc|alice|totp|100|2000||password|100",  // unknown version
        "03|abc|alice|totp|100|2000||password|100",
        "3|abc|alice|totp|100|2000|||100",         // no first factor
        "3|abc|alice|totp|100|2000||none|100",
        "3|abc|alice|totp|100|2000||session|100",  // a step-up's
        "3|abc|alice|totp|100|2000||Password|100",
        "3|abc|alice|totp|100|2000||identity |100",
        "3||alice|totp|100|2000||password|100",    // empty sid
        "3|a b|alice|totp|100|2000||password|100",  // sid not base64url
        "3|abc|alice|totp|1x0|2000||password|100",  // non-numeric times
        "3|abc|alice|totp|100|2000s||password|100",
        "3|abc|alice|totp||2000||password|100",
        "3|abc|alice|totp|-5|2000||password|100",
        "3|abc|alice|totp|+100|2000||password|100",
        "3|abc|alice|totp| 100|2000||password|100",
        "3|abc|alice|totp|0100|2000||password|100",  // leading zero
        "3|abc|alice|totp|100|0x7d0||password|100",
        "3|abc|alice|totp|100|99999999999999999999||password|100",
        "3|abc|alice|totp|100|9223372036854775808||password|100",
        "3|abc|alice|otp|100|2000||password|100",   // unknown method
        "3|abc|alice|TOTP|100|2000||password|100",
        "3|abc|alice||100|2000||password|100",
        "3|abc||totp|100|2000||password|100",       // no user
        "3|abc|al ice|totp|100|2000||password|100",  // bad user
        "3|abc|alice<script>|totp|100|2000||password|100",
        "3|abc|alice|totp|100|2000|a b|password|100",  // bad credentials
        "3|abc|alice|totp|100|2000|password|100",   // no credentials field
    };
    for (const char *payload : bad)
        ck_assert_msg(!decodes(payload), "accepted '%s'", payload);
    ck_assert(!decodes("3|abc|" + std::string(65, 'u')
                       + "|totp|100|2000||password|100"));
    ck_assert(decodes("3|abc|" + std::string(64, 'u')
                      + "|totp|100|2000||password|100"));
    ck_assert(decodes("3|abc|alice|totp|100|9223372036854775807||password|100"));
}
END_TEST

START_TEST(pending_round_trip)
{
    KeyRing keys = ring({key_a});
    const FirstFactor vias[] = {FirstFactor::password, FirstFactor::identity,
                                FirstFactor::session};
    for (FirstFactor via : vias) {
        PendingSignin p = sample_pending();
        p.via = via;
        std::string token = encode_pending(keys, p);
        ck_assert_string_eq(token.substr(0, 2), "p.");
        auto d = decode_pending(keys, token, p.expires - 1);
        ck_assert(d.has_value());
        ck_assert_string_eq(d->nonce, p.nonce);
        ck_assert_string_eq(d->user, p.user);
        ck_assert(d->via == via);
        ck_assert_int_eq(d->expires, p.expires);
        ck_assert(!d->remember);
        ck_assert(!decode_pending(keys, token, p.expires));
        p.remember = true;
        d = decode_pending(keys, encode_pending(keys, p), p.expires - 1);
        ck_assert(d && d->remember);
    }
    PendingSignin fresh;
    fresh.nonce = "n0";
    fresh.expires = 500;
    std::string token = encode_pending(keys, fresh);
    ck_assert_string_eq(keys.verify("p", token).value_or("(none)"),
                        "2|n0||none|500|||totp,push,call,sms,webauthn,"
                        "recovery,remembered|0|0");
    auto d = decode_pending(keys, token, 499);
    ck_assert(d.has_value());
    ck_assert(d->user.empty());
    ck_assert(d->via == FirstFactor::none);
    ck_assert(!decode_pending(keys, token, 500));

    // A texted code's record rides along while one is out.
    PendingSignin texted = sample_pending();
    texted.code = "1700000600.abc-DEF_123";
    d = decode_pending(keys, encode_pending(keys, texted),
                       texted.expires - 1);
    ck_assert(d.has_value());
    ck_assert_string_eq(d->code, texted.code);
    ck_assert(d->code.find('|') == std::string::npos);
    for (const char *bad : {"x.abc", "1700000600.", ".abc", "17|00.abc"}) {
        texted.code = bad;
        ck_assert(throws_invalid([&] { encode_pending(keys, texted); }));
        ck_assert(!decode_pending(keys,
            keys.sign("p", "2|n0|alice|password|999999999999|||totp|0|0|"
                           + std::string(bad)), 1));
    }
    ck_assert(decode_pending(keys,
        keys.sign("p", "2|n0|alice|password|999999999999|||totp|0|0|"
                       "1700000600.abc"), 1).has_value());
    // No code for a pending sign-in without a user.
    ck_assert(!decode_pending(keys,
        keys.sign("p", "2|n0||none|999999999999|||totp|0|0|1700000600.abc"),
        1));
}
END_TEST

START_TEST(pending_malformed_payloads)
{
    KeyRing keys = ring({key_a});
    auto decodes = [&](const std::string &payload) {
        return decode_pending(keys, keys.sign("p", payload), 1000)
            .has_value();
    };
    ck_assert(decodes("2|n|bob|password|2000|||totp|0|0"));
    ck_assert(decodes("2|n||none|2000|||totp,sms|0|0"));
    ck_assert(decodes("2|n|bob|password|2000|tx-1|push|push|2|0"));
    ck_assert(decodes("2|n|bob|identity|2000|tx-1|call|totp,call|14|0"));
    const char *bad[] = {
        "2|n|bob|password|2000|||totp|0|0|x",  // extra field
        "2|n|bob|password|2000",     // missing fields
        "2|n|bob|password",
        "2|n|bob|2000|||totp",
        "9|n|bob|password|2000|||totp|0|0",   // unknown version
        "2||bob|password|2000|||totp|0|0",  // empty nonce
        "2|n|bob|password|2e3|||totp|0|0",    // non-numeric time
        "2|n|bob|password||||totp|0|0",
        "2|n|bob|password|-1|||totp|0|0",
        "2|n|bob|passwd|2000|||totp|0|0",     // unknown first factor
        "2|n|bob|Password|2000|||totp|0|0",
        "2|n|bob||2000|||totp|0|0",
        "2|n|b\xc3\xb6" "b|password|2000|||totp|0|0",  // bad user
        "2|n|bob|none|2000|||totp|0|0",       // a user without a first factor
        "2|n||password|2000|||totp|0|0",      // a first factor without a user
        "2|n|bob|password|1000|||totp|0|0",   // expired (expires == now)
        "2|n|bob|password|2000|tx 1|push|totp|0|0",  // malformed txid
        "2|n|bob|password|2000|tx|sms|totp|0|0",     // only push and call wait
        "2|n|bob|password|2000|tx||totp|0|0",        // a txid without its method
        "2|n|bob|password|2000||push|totp|0|0",      // a method without a txid
        "2|n||none|2000|tx|push|totp|0|0",           // a txid without a user
        "2|n|bob|password|2000||||0|0",         // no methods
        "2|n|bob|password|2000|||fax|0|0",      // unknown method
        "2|n|bob|password|2000||",          // a field short
        "2|n|bob|password|2000|||totp||0",     // no provider set
        "2|n|bob|password|2000|||totp|32|0",   // not a provider's method
        "2|n|bob|password|2000|||totp|128|0",  // unknown bits
        "2|n|bob|password|2000|||totp|0|",     // no remember flag
        "2|n|bob|password|2000|||totp|0|yes",
        "1|n|bob|password|2000|||totp|0",      // version 1: no flag
        "2|n|bob|password|2000|||totp|-1|0",
    };
    for (const char *payload : bad)
        ck_assert_msg(!decodes(payload), "accepted '%s'", payload);
}
END_TEST

// "Don't ask again": the device cookie round-trips, is its own kind, and
// stands for the second step only for the same user and credentials,
// after the last "Forget remembered devices", within the current TTL.
START_TEST(remembered_devices)
{
    KeyRing keys = ring({key_a});
    RememberedDevice d;
    d.user = "bob";
    d.credentials = "cred-1";
    d.issued = 1000;
    d.expires = 1000 + 86400;
    std::string token = encode_device(keys, d);
    ck_assert_string_eq(token.substr(0, 2), "d.");
    auto back = decode_device(keys, token, 1001);
    ck_assert(back.has_value());
    ck_assert_string_eq(back->user, "bob");
    ck_assert_string_eq(back->credentials, "cred-1");
    ck_assert_int_eq(back->issued, 1000);
    ck_assert(!decode_device(keys, token, d.expires));
    ck_assert(!decode_session(keys, token, 1001));
    ck_assert(!decode_pending(keys, token, 1001));
    ck_assert(!decode_device(keys, keys.sign("d", "1|bob|cred-1|1000"), 0));
    ck_assert(!decode_device(keys, keys.sign("d", "1|bob||1000|2000"), 0));
    ck_assert(!decode_device(keys, keys.sign("d", "2|bob|c|1000|2000"), 0));

    User bob;
    bob.name = "bob";
    bob.credential_tag = "cred-1";
    ck_assert(device_remembers(*back, bob, 86400, 1001));
    ck_assert(!device_remembers(*back, bob, 86400, d.expires));
    ck_assert(!device_remembers(*back, bob, 3600, 1000 + 3600));  // lowered
    User other = bob;
    other.name = "alice";
    ck_assert(!device_remembers(*back, other, 86400, 1001));
    User changed = bob;
    changed.credential_tag = "cred-2";  // new password or authenticator
    ck_assert(!device_remembers(*back, changed, 86400, 1001));
    User forgot = bob;
    forgot.devices_forgotten = 1000;    // the same second counts
    ck_assert(!device_remembers(*back, forgot, 86400, 1001));
    forgot.devices_forgotten = 999;
    ck_assert(device_remembers(*back, forgot, 86400, 1001));
}
END_TEST

START_TEST(form_tokens)
{
    KeyRing keys = ring({key_a});
    PendingSignin p = sample_pending();
    std::string token = form_token(keys, p);
    ck_assert(form_token_ok(keys, p, token));
    // It is the keyring MAC of "form|<nonce>".
    ck_assert_string_eq(token, keys.mac("form|" + p.nonce));

    PendingSignin other = p;
    other.nonce = "another-nonce";
    ck_assert(!form_token_ok(keys, other, token));
    ck_assert(form_token_ok(keys, other, form_token(keys, other)));
    ck_assert(!form_token_ok(keys, p, ""));
    ck_assert(!form_token_ok(keys, p, "garbage"));
    ck_assert(!form_token_ok(keys, p, token.substr(1)));
    ck_assert(!form_token_ok(keys, p, form_token(ring({key_b}), p)));
    ck_assert(form_token_ok(ring({key_b, key_a}), p, token));
    // Not usable as a MAC of anything else.
    ck_assert(!keys.mac_ok(p.nonce, token));
    PendingSignin empty;
    ck_assert(!form_token_ok(keys, empty, form_token(keys, empty)));
}
END_TEST

// What every decoder checks first: the kind's MAC, the version, how many
// fields; the fields themselves, empty ones included, in order.
START_TEST(token_fields)
{
    KeyRing keys = ring({key_a});
    std::string token = keys.sign("t", "2|a||ccc");
    auto f = fields_of(keys, "t", token, "2", 4);
    ck_assert(f.has_value());
    ck_assert_uint_eq(f->size(), 4);
    ck_assert((*f)[0] == "2" && (*f)[1] == "a" && (*f)[2].empty()
              && (*f)[3] == "ccc");
    // A copy reads its own payload, the original's gone.
    TokenFields copy = *f;
    f.reset();
    ck_assert(copy[3] == "ccc");

    ck_assert(fields_of(keys, "t", token, "2", 3, 4));
    ck_assert(fields_of(keys, "t", token, "", 4));      // no version
    ck_assert(!fields_of(keys, "t", token, "1", 4));    // another version
    ck_assert(!fields_of(keys, "t", token, "2", 3));    // too many
    ck_assert(!fields_of(keys, "t", token, "2", 5, 6)); // too few
    ck_assert(!fields_of(keys, "u", token, "2", 4));    // another kind
    ck_assert(!fields_of(ring({key_b}), "t", token, "2", 4));
    ck_assert(!fields_of(keys, "t", token + "x", "2", 4));
    auto one = fields_of(keys, "t", keys.sign("t", ""), "", 1);
    ck_assert(one && one->size() == 1 && (*one)[0].empty());
}
END_TEST

int main()
{
    Suite *suite = suite_create("tokens");
    TCase *b64 = tcase_create("base64url");
    tcase_add_test(b64, base64url_vectors);
    tcase_add_test(b64, base64url_strict);
    tcase_add_test(b64, random_tokens);
    suite_add_tcase(suite, b64);

    TCase *kr = tcase_create("keyring");
    tcase_add_test(kr, keyring_short_key);
    tcase_add_test(kr, keyring_round_trip);
    tcase_add_test(kr, keyring_key_derivation);
    tcase_add_test(kr, keyring_audiences);
    tcase_add_test(kr, keyring_tampering);
    tcase_add_test(kr, keyring_kinds);
    tcase_add_test(kr, keyring_unknown_key_and_rotation);
    tcase_add_test(kr, keyring_size_limit);
    tcase_add_test(kr, keyring_mac);
    suite_add_tcase(suite, kr);

    TCase *cookies = tcase_create("cookies");
    tcase_add_test(cookies, token_fields);
    tcase_add_test(cookies, session_round_trip);
    tcase_add_test(cookies, session_expiry);
    tcase_add_test(cookies, session_lifetime_is_the_current_ttl);
    tcase_add_test(cookies, session_encode_refuses);
    tcase_add_test(cookies, session_malformed_payloads);
    tcase_add_test(cookies, pending_round_trip);
    tcase_add_test(cookies, pending_malformed_payloads);
    tcase_add_test(cookies, remembered_devices);
    tcase_add_test(cookies, form_tokens);
    suite_add_tcase(suite, cookies);
    return run_suite(suite);
}
