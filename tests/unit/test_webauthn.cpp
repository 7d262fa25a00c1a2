// WebAuthn: registrations and assertions recorded from Chromium's virtual
// authenticator (tests/unit/webauthn_vectors/, README.md there) verify, and
// every tampered variant is refused with its own reason.
#include <jansson.h>
#include <openssl/sha.h>

#include <cstdint>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "core/keyring.h"
#include "core/webauthn.h"
#include "unit.h"

using namespace twostep;
using namespace twostep::webauthn;

#define ck_assert_failure(got, want) \
    ck_assert_named(got, want, failure_name)

namespace {

struct RecordedAssertion {
    std::string challenge;
    std::string id;
    std::string authenticator_data;
    std::string client_data;
    std::string signature;
    std::string user_handle;
    bool uv_asked = false;
};

struct Vector {
    std::string name;
    std::string rp_id;
    std::string origin;
    int algorithm = 0;
    std::string attestation;  // "none" or "direct"
    std::string reg_challenge;
    std::string reg_id;
    std::string attestation_object;
    std::string reg_client_data;
    std::string browser_public_key;  // getPublicKey(), base64url
    std::vector<std::string> transports;
    std::vector<RecordedAssertion> assertions;
};

const std::string vector_dir = [] {
    std::string f = __FILE__;
    return f.substr(0, f.rfind('/') + 1) + "webauthn_vectors/";
}();

const char *const vector_names[] = {"es256-none", "es256-packed",
                                    "rs256-none", "eddsa-none"};

std::string str(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    ck_assert_msg(json_is_string(v), "vector member %s", key);
    return json_string_value(v);
}

std::string b64(const json_t *obj, const char *key)
{
    auto raw = base64url_decode(str(obj, key));
    ck_assert_msg(raw.has_value(), "vector member %s not base64url", key);
    return *raw;
}

Vector load(const std::string &name)
{
    std::ifstream in(vector_dir + name + ".json");
    ck_assert_msg(in.good(), "cannot read %s%s.json", vector_dir.c_str(),
                  name.c_str());
    std::stringstream text;
    text << in.rdbuf();
    json_error_t err;
    json_t *root = json_loads(text.str().c_str(), 0, &err);
    ck_assert_msg(root, "%s: %s", name.c_str(), err.text);
    Vector v;
    v.name = name;
    v.rp_id = str(root, "rp_id");
    v.origin = str(root, "origin");
    v.algorithm = static_cast<int>(
        json_integer_value(json_object_get(root, "algorithm")));
    v.attestation = str(root, "attestation");
    const json_t *reg = json_object_get(root, "registration");
    v.reg_challenge = str(reg, "challenge");
    v.reg_id = str(reg, "id");
    v.attestation_object = b64(reg, "attestationObject");
    v.reg_client_data = b64(reg, "clientDataJSON");
    v.browser_public_key = str(reg, "publicKey");
    std::size_t i;
    json_t *t;
    json_array_foreach(json_object_get(reg, "transports"), i, t)
        v.transports.push_back(json_string_value(t));
    json_array_foreach(json_object_get(root, "assertions"), i, t) {
        RecordedAssertion a;
        a.challenge = str(t, "challenge");
        a.id = str(t, "id");
        a.authenticator_data = b64(t, "authenticatorData");
        a.client_data = b64(t, "clientDataJSON");
        a.signature = b64(t, "signature");
        a.user_handle = b64(t, "userHandle");
        a.uv_asked = str(t, "user_verification") == "required";
        v.assertions.push_back(a);
    }
    json_decref(root);
    ck_assert_uint_eq(v.assertions.size(), 4);
    return v;
}

Expected expect(const Vector &v, const std::string &challenge, bool uv)
{
    Expected e;
    e.rp_id = v.rp_id;
    e.origin = v.origin;
    e.challenge = challenge;
    e.user_verification = uv;
    return e;
}

Registration register_vector(const Vector &v)
{
    return verify_registration(expect(v, v.reg_challenge, true),
                               v.attestation_object, v.reg_client_data,
                               v.transports);
}

Credential credential_of(const Vector &v)
{
    Registration reg = register_vector(v);
    ck_assert_failure(reg.failure, Failure::none);
    return reg.credential;
}

Assertion assert_vector(const Vector &v, const Credential &c, std::size_t i,
                        bool uv)
{
    const RecordedAssertion &a = v.assertions[i];
    return verify_assertion(expect(v, a.challenge, uv), c,
                            a.authenticator_data, a.client_data,
                            a.signature);
}

// The attestation object's authData: the last member (canonical CBOR sorts
// "authData" after "fmt" and "attStmt"), found by its rpIdHash.
std::size_t auth_data_offset(const Vector &v)
{
    unsigned char hash[SHA256_DIGEST_LENGTH];
    SHA256(reinterpret_cast<const unsigned char *>(v.rp_id.data()),
           v.rp_id.size(), hash);
    std::size_t at = v.attestation_object.rfind(
        std::string(reinterpret_cast<const char *>(hash), sizeof hash));
    ck_assert(at != std::string::npos);
    AuthData ad;
    ck_assert_failure(parse_auth_data(v.attestation_object.substr(at), ad),
                      Failure::none);
    return at;
}

// The registration's authenticator data, parsed.
AuthData registered_auth_data(const Vector &v)
{
    AuthData ad;
    ck_assert_failure(parse_auth_data(v.attestation_object.substr(
                                          auth_data_offset(v)),
                                      ad),
                      Failure::none);
    return ad;
}

std::string replace(std::string s, const std::string &from,
                    const std::string &to)
{
    std::size_t at = s.find(from);
    ck_assert_msg(at != std::string::npos, "'%s' not found", from.c_str());
    return s.replace(at, from.size(), to);
}

// Offsets in authenticator data (§6.1).
constexpr std::size_t flags_at = 32;
constexpr std::size_t count_at = 33;

}  // namespace

START_TEST(recorded_registrations_verify)
{
    for (const char *name : vector_names) {
        Vector v = load(name);
        Registration reg = register_vector(v);
        ck_assert_msg(reg.failure == Failure::none, "%s: %s", name,
                      failure_name(reg.failure));
        ck_assert_int_eq(static_cast<int>(reg.credential.algorithm),
                         v.algorithm);
        ck_assert_string_eq(reg.credential.id, v.reg_id);
        // The stored key is what Chromium itself gives as getPublicKey().
        ck_assert_string_eq(reg.credential.public_key, v.browser_public_key);
        ck_assert_uint_eq(reg.credential.sign_count, 1);
        ck_assert_uint_eq(reg.credential.transports.size(), 1);
        ck_assert_string_eq(reg.credential.transports[0], "internal");
        ck_assert(reg.user_verified);
        ck_assert_string_eq(reg.fmt, v.attestation == "direct" ? "packed"
                                                               : "none");
        ck_assert_uint_eq(reg.aaguid.size(), 16);
    }
}
END_TEST

START_TEST(recorded_assertions_verify)
{
    for (const char *name : vector_names) {
        Vector v = load(name);
        Credential c = credential_of(v);
        for (std::size_t i = 0; i < v.assertions.size(); ++i) {
            const RecordedAssertion &a = v.assertions[i];
            ck_assert_string_eq(a.id, c.id);
            ck_assert_string_eq(a.user_handle, "alice-user-handle");
            Assertion as = assert_vector(v, c, i, a.uv_asked);
            ck_assert_msg(as.failure == Failure::none, "%s #%zu: %s", name,
                          i, failure_name(as.failure));
            ck_assert_uint_gt(as.sign_count, c.sign_count);
            ck_assert(as.user_verified == a.uv_asked);
            c.sign_count = as.sign_count;
        }
    }
}
END_TEST

START_TEST(auth_data_fields)
{
    Vector v = load("es256-packed");
    AuthData ad = registered_auth_data(v);
    ck_assert_uint_eq(ad.flags, flag::up | flag::uv | flag::at);
    ck_assert_uint_eq(ad.sign_count, 1);
    ck_assert_string_eq(base64url_encode(ad.credential_id), v.reg_id);
    PublicKey pk;
    ck_assert_failure(parse_cose_key(ad.cose_key, pk), Failure::none);
    ck_assert(pk.algorithm == Algorithm::es256);

    ck_assert_failure(parse_auth_data(v.assertions[0].authenticator_data, ad),
                      Failure::none);
    ck_assert_uint_eq(ad.flags, flag::up | flag::uv);
    ck_assert_uint_eq(ad.sign_count, 2);
    ck_assert(ad.credential_id.empty() && ad.cose_key.empty());
}
END_TEST

START_TEST(registration_tampered)
{
    for (const char *name : vector_names) {
        Vector v = load(name);
        Expected e = expect(v, v.reg_challenge, true);
        auto reg = [&](const Expected &ex, const std::string &att,
                       const std::string &cd) {
            return verify_registration(ex, att, cd, v.transports).failure;
        };
        const std::string &att = v.attestation_object;
        const std::string &cd = v.reg_client_data;

        Expected other = e;
        other.challenge = v.assertions[0].challenge;
        ck_assert_failure(reg(other, att, cd), Failure::wrong_challenge);
        other = e;
        other.challenge = "";
        ck_assert_failure(reg(other, att, cd), Failure::wrong_challenge);
        other = e;
        other.origin = "http://localhost:1";
        ck_assert_failure(reg(other, att, cd), Failure::wrong_origin);
        other.origin = v.origin + "/";
        ck_assert_failure(reg(other, att, cd), Failure::wrong_origin);
        other.origin = "https" + v.origin.substr(4);
        ck_assert_failure(reg(other, att, cd), Failure::wrong_origin);
        other = e;
        other.rp_id = "example.com";
        ck_assert_failure(reg(other, att, cd), Failure::rp_id_hash);

        ck_assert_failure(reg(e, att, replace(cd, "webauthn.create",
                                              "webauthn.get")),
                          Failure::wrong_type);
        ck_assert_failure(reg(e, att, v.assertions[0].client_data),
                          Failure::wrong_type);
        ck_assert_failure(reg(e, att, replace(cd, "\"crossOrigin\":false",
                                              "\"crossOrigin\":true")),
                          Failure::cross_origin);
        ck_assert_failure(reg(e, att, replace(cd, "\"crossOrigin\":false",
                                              "\"crossOrigin\":1")),
                          Failure::client_data_malformed);
        ck_assert_failure(reg(e, att, "{\"type\":\"webauthn.create\"," +
                                          cd.substr(1)),
                          Failure::client_data_malformed);
        ck_assert_failure(reg(e, att, cd.substr(0, cd.size() - 1)),
                          Failure::client_data_malformed);
        ck_assert_failure(reg(e, att, ""), Failure::client_data_malformed);
        ck_assert_failure(reg(e, att, std::string(8193, ' ')),
                          Failure::too_large);

        std::size_t ad = auth_data_offset(v);
        std::string up_clear = att;
        up_clear[ad + flags_at] &= ~flag::up;
        ck_assert_failure(reg(e, up_clear, cd), Failure::user_not_present);
        std::string uv_clear = att;
        uv_clear[ad + flags_at] &= ~flag::uv;
        ck_assert_failure(reg(e, uv_clear, cd), Failure::user_not_verified);
        Expected no_uv = e;
        no_uv.user_verification = false;
        // Attestation none signs nothing: only packed notices the change.
        ck_assert_failure(reg(no_uv, uv_clear, cd),
                          v.attestation == "direct"
                              ? Failure::attestation_invalid
                              : Failure::none);
        std::string at_clear = att;
        at_clear[ad + flags_at] &= ~flag::at;
        ck_assert_failure(reg(e, at_clear, cd), Failure::auth_data_malformed);
        std::string hash = att;
        hash[ad] ^= 1;
        ck_assert_failure(reg(e, hash, cd), Failure::rp_id_hash);

        // Every truncation, and the CBOR framing broken.
        for (std::size_t n = 0; n < att.size(); ++n) {
            Failure f = reg(e, att.substr(0, n), cd);
            ck_assert_msg(f == Failure::cbor_malformed,
                          "%s cut at %zu: %s", name, n, failure_name(f));
        }
        ck_assert_failure(reg(e, att + '\0', cd), Failure::cbor_malformed);
        ck_assert_failure(reg(e, "\xbf" + att.substr(1) + "\xff", cd),
                          Failure::cbor_malformed);
        ck_assert_failure(reg(e, std::string(16385, '\xa0'), cd),
                          Failure::too_large);
        // The fmt string: "none" -> "nond", "packed" -> "packee".
        std::string fmt = att;
        std::size_t f = fmt.find(v.attestation == "direct" ? "packed"
                                                           : "none");
        ck_assert(f != std::string::npos);
        fmt[f + (v.attestation == "direct" ? 5 : 3)] ^= 1;
        ck_assert_failure(reg(e, fmt, cd), Failure::attestation_unsupported);
    }
}
END_TEST

START_TEST(packed_attestation_tampered)
{
    Vector v = load("es256-packed");
    Expected e = expect(v, v.reg_challenge, true);
    auto reg = [&](const std::string &att, const std::string &cd) {
        return verify_registration(e, att, cd, v.transports).failure;
    };
    std::size_t ad = auth_data_offset(v);
    std::string count = v.attestation_object;
    count[ad + count_at + 3] ^= 1;
    ck_assert_failure(reg(count, v.reg_client_data),
                      Failure::attestation_invalid);
    // The signature is the byte string after "sig" (0x63 's' 'i' 'g').
    std::string sig = v.attestation_object;
    std::size_t s = sig.find("\x63sig");
    ck_assert(s != std::string::npos);
    sig[s + 4 + 2 + 10] ^= 0x10;
    ck_assert_failure(reg(sig, v.reg_client_data),
                      Failure::attestation_invalid);
    // clientDataJSON is signed too (through its hash).
    ck_assert_failure(reg(v.attestation_object,
                          replace(v.reg_client_data, "}", ",\"x\":1}")),
                      Failure::attestation_invalid);
}
END_TEST

START_TEST(assertion_tampered)
{
    for (const char *name : vector_names) {
        Vector v = load(name);
        Credential c = credential_of(v);
        const RecordedAssertion &a = v.assertions[0];
        Expected e = expect(v, a.challenge, true);
        auto check = [&](const Expected &ex, const std::string &ad,
                         const std::string &cd, const std::string &sig) {
            return verify_assertion(ex, c, ad, cd, sig).failure;
        };
        const std::string &ad = a.authenticator_data;
        const std::string &cd = a.client_data;
        const std::string &sig = a.signature;
        ck_assert_failure(check(e, ad, cd, sig), Failure::none);

        Expected other = e;
        other.challenge = v.assertions[1].challenge;
        ck_assert_failure(check(other, ad, cd, sig),
                          Failure::wrong_challenge);
        other = e;
        other.origin = "http://evil.localhost" +
                       v.origin.substr(v.origin.rfind(':'));
        ck_assert_failure(check(other, ad, cd, sig), Failure::wrong_origin);
        other = e;
        other.rp_id = "evil.localhost";
        ck_assert_failure(check(other, ad, cd, sig), Failure::rp_id_hash);
        ck_assert_failure(check(e, ad, replace(cd, "webauthn.get",
                                               "webauthn.create"),
                                sig),
                          Failure::wrong_type);
        ck_assert_failure(check(e, ad, replace(cd, "\"crossOrigin\":false",
                                               "\"crossOrigin\":true"),
                                sig),
                          Failure::cross_origin);
        // Still well-formed, but not what was signed.
        ck_assert_failure(check(e, ad, replace(cd, "}", ",\"x\":1}"), sig),
                          Failure::bad_signature);

        std::string flags = ad;
        flags[flags_at] &= ~flag::up;
        ck_assert_failure(check(e, flags, cd, sig),
                          Failure::user_not_present);
        flags = ad;
        flags[flags_at] &= ~flag::uv;
        ck_assert_failure(check(e, flags, cd, sig),
                          Failure::user_not_verified);
        Expected no_uv = e;
        no_uv.user_verification = false;
        ck_assert_failure(check(no_uv, flags, cd, sig),
                          Failure::bad_signature);
        flags = ad;
        flags[flags_at] |= flag::at;
        ck_assert_failure(check(e, flags, cd, sig),
                          Failure::auth_data_malformed);
        std::string count = ad;
        count[count_at + 3] ^= 0x40;
        ck_assert_failure(check(e, count, cd, sig), Failure::bad_signature);
        std::string hash = ad;
        hash[0] ^= 1;
        ck_assert_failure(check(e, hash, cd, sig), Failure::rp_id_hash);

        // Recorded without user verification: fine unless it is required.
        const RecordedAssertion &plain = v.assertions[2];
        ck_assert(!plain.uv_asked);
        ck_assert_failure(
            verify_assertion(expect(v, plain.challenge, true), c,
                             plain.authenticator_data, plain.client_data,
                             plain.signature)
                .failure,
            Failure::user_not_verified);

        for (std::size_t i : {std::size_t{0}, sig.size() / 2,
                              sig.size() - 1}) {
            std::string flipped = sig;
            flipped[i] ^= 0x01;
            ck_assert_msg(check(e, ad, cd, flipped) == Failure::bad_signature,
                          "%s: flipped signature byte %zu", name, i);
        }
        ck_assert_failure(check(e, ad, cd, ""), Failure::bad_signature);
        ck_assert_failure(check(e, ad, cd, sig.substr(1)),
                          Failure::bad_signature);
        ck_assert_failure(check(e, ad, cd, std::string(1025, 'x')),
                          Failure::too_large);
        // Another assertion's signature over this data.
        ck_assert_failure(check(e, ad, cd, v.assertions[1].signature),
                          Failure::bad_signature);

        for (std::size_t n = 0; n < ad.size(); ++n) {
            Failure f = check(e, ad.substr(0, n), cd, sig);
            ck_assert_msg(f == Failure::auth_data_malformed,
                          "%s authData cut at %zu: %s", name, n,
                          failure_name(f));
        }
        ck_assert_failure(check(e, ad + 'x', cd, sig),
                          Failure::auth_data_malformed);
        std::string ext = ad;
        ext[flags_at] |= flag::ed;
        ck_assert_failure(check(e, ext, cd, sig),
                          Failure::auth_data_malformed);
        ck_assert_failure(check(e, ext + "\xa0", cd, sig),
                          Failure::bad_signature);
    }
}
END_TEST

START_TEST(sign_count_rule)
{
    Vector v = load("es256-none");
    Credential c = credential_of(v);
    // Recorded counts: registration 1, assertions 2, 3, 4, 5.
    c.sign_count = 3;
    ck_assert_failure(assert_vector(v, c, 0, true).failure,
                      Failure::sign_count);  // went backwards
    ck_assert_failure(assert_vector(v, c, 1, true).failure,
                      Failure::sign_count);  // did not move
    Assertion next = assert_vector(v, c, 3, true);
    ck_assert_failure(next.failure, Failure::none);
    ck_assert_uint_eq(next.sign_count, 5);
    // A forged signature with a stale counter is a bad signature, not a
    // clone report.
    std::string sig = v.assertions[0].signature;
    sig[sig.size() / 2] ^= 1;
    ck_assert_failure(
        verify_assertion(expect(v, v.assertions[0].challenge, true), c,
                         v.assertions[0].authenticator_data,
                         v.assertions[0].client_data, sig)
            .failure,
        Failure::bad_signature);
    // A stored count of 0 (an authenticator that did not count at
    // registration) accepts any count above it.
    c.sign_count = 0;
    ck_assert_failure(assert_vector(v, c, 0, true).failure, Failure::none);
    c.sign_count = 0xffffffff;
    ck_assert_failure(assert_vector(v, c, 3, true).failure,
                      Failure::sign_count);
}
END_TEST

START_TEST(stored_credential_checked)
{
    Vector v = load("es256-none");
    Credential c = credential_of(v);
    Credential other = credential_of(load("es256-packed"));
    c.public_key = other.public_key;
    ck_assert_failure(assert_vector(v, c, 0, true).failure,
                      Failure::bad_signature);  // another key of the type
    c = credential_of(v);
    c.algorithm = Algorithm::rs256;
    ck_assert_failure(assert_vector(v, c, 0, true).failure,
                      Failure::credential_mismatch);
    c.algorithm = Algorithm::eddsa;
    ck_assert_failure(assert_vector(v, c, 0, true).failure,
                      Failure::credential_mismatch);
    c = credential_of(v);
    c.public_key = "not base64url!";
    ck_assert_failure(assert_vector(v, c, 0, true).failure,
                      Failure::credential_mismatch);
    c.public_key = base64url_encode("garbage");
    ck_assert_failure(assert_vector(v, c, 0, true).failure,
                      Failure::credential_mismatch);
    c.public_key = "";
    ck_assert_failure(assert_vector(v, c, 0, true).failure,
                      Failure::credential_mismatch);
    // An RS256 key stored as ES256.
    Credential rsa = credential_of(load("rs256-none"));
    c = credential_of(v);
    c.public_key = rsa.public_key;
    ck_assert_failure(assert_vector(v, c, 0, true).failure,
                      Failure::credential_mismatch);
}
END_TEST

START_TEST(cose_keys)
{
    Vector v = load("es256-none");
    AuthData ad = registered_auth_data(v);
    PublicKey pk;
    ck_assert_failure(parse_cose_key(ad.cose_key, pk), Failure::none);
    // y, off the curve: the last byte of the key.
    std::string off = ad.cose_key;
    off.back() ^= 1;
    ck_assert_failure(parse_cose_key(off, pk), Failure::public_key_malformed);
    // alg ES384 (-35): {1: 2, 3: -35, -1: 2}
    ck_assert_failure(parse_cose_key(std::string("\xa3\x01\x02\x03\x38\x22"
                                                 "\x20\x02", 8),
                                     pk),
                      Failure::algorithm_unsupported);
    // ES256 on P-384: {1: 2, 3: -7, -1: 2, -2: h'00', -3: h'00'}
    ck_assert_failure(parse_cose_key(std::string("\xa5\x01\x02\x03\x26\x20"
                                                 "\x02\x21\x41\x00\x22\x41"
                                                 "\x00", 13),
                                     pk),
                      Failure::algorithm_unsupported);
    // No alg: {1: 2}
    ck_assert_failure(parse_cose_key("\xa1\x01\x02", pk),
                      Failure::public_key_malformed);
    // The same key twice: {1: 2, 1: 2, 3: -7}
    ck_assert_failure(parse_cose_key("\xa3\x01\x02\x01\x02\x03\x26", pk),
                      Failure::public_key_malformed);
    ck_assert_failure(parse_cose_key("", pk), Failure::public_key_malformed);
    ck_assert_failure(parse_cose_key("\x80", pk),
                      Failure::public_key_malformed);
    // Declares 2^32-1 pairs in five bytes: refused before any allocation.
    ck_assert_failure(parse_cose_key("\xba\xff\xff\xff\xff", pk),
                      Failure::public_key_malformed);
    ck_assert_failure(parse_cose_key(std::string("\xbb\x0f\xff\xff\xff\xff"
                                                 "\xff\xff\xff\x01\x02", 11),
                                     pk),
                      Failure::public_key_malformed);
    // The same inside an array whose other item never comes.
    ck_assert_failure(parse_cose_key(std::string("\x82\xbb\x00\x00\x00\x00"
                                                 "\x10\x00\x00\x00", 10),
                                     pk),
                      Failure::public_key_malformed);
    // Nested deeper than any COSE key.
    ck_assert_failure(parse_cose_key(std::string(64, '\x81') + '\x01', pk),
                      Failure::public_key_malformed);
    // A tag.
    ck_assert_failure(parse_cose_key("\xc1\xa1\x01\x02", pk),
                      Failure::public_key_malformed);
}
END_TEST

START_TEST(transports_filtered)
{
    auto t = known_transports({"usb", "internal", "usb", "<script>", "",
                               "hybrid", "smart-card", "NFC"});
    ck_assert_uint_eq(t.size(), 4);
    ck_assert_string_eq(t[0], "usb");
    ck_assert_string_eq(t[1], "internal");
    ck_assert_string_eq(t[2], "hybrid");
    ck_assert_string_eq(t[3], "smart-card");
}
END_TEST

START_TEST(challenges)
{
    KeyRing keys;
    ck_assert(keys.add(std::string(32, 'k')));
    const std::int64_t now = 1700000000;
    Challenge c = issue_challenge(keys, Ceremony::get, "nonce-1", now);
    auto raw = base64url_decode(c.challenge);
    ck_assert(raw && raw->size() == 32);
    ck_assert_int_eq(c.expires, now + 300);
    ck_assert_str_ne(c.challenge.c_str(),
                     issue_challenge(keys, Ceremony::get, "nonce-1", now)
                         .challenge.c_str());

    auto open = open_challenge(keys, Ceremony::get, "nonce-1", c.token, now);
    ck_assert(open.has_value());
    ck_assert_string_eq(open->challenge, c.challenge);
    ck_assert_int_eq(open->expires, c.expires);
    ck_assert(open_challenge(keys, Ceremony::get, "nonce-1", c.token,
                             now + 299));
    ck_assert(!open_challenge(keys, Ceremony::get, "nonce-1", c.token,
                              now + 300));
    ck_assert(!open_challenge(keys, Ceremony::create, "nonce-1", c.token,
                              now));
    ck_assert(!open_challenge(keys, Ceremony::get, "nonce-2", c.token, now));
    ck_assert(!open_challenge(keys, Ceremony::get, "nonce-", c.token, now));
    ck_assert(!open_challenge(keys, Ceremony::get, "", c.token, now));
    std::string forged = c.token;
    forged[forged.size() / 2] ^= 1;
    ck_assert(!open_challenge(keys, Ceremony::get, "nonce-1", forged, now));
    KeyRing other;
    ck_assert(other.add(std::string(32, 'o')));
    ck_assert(!open_challenge(other, Ceremony::get, "nonce-1", c.token,
                              now));
    // A binding may contain the separator.
    Challenge bar = issue_challenge(keys, Ceremony::create, "a|b", now);
    ck_assert(open_challenge(keys, Ceremony::create, "a|b", bar.token, now));
    ck_assert(!open_challenge(keys, Ceremony::create, "a", bar.token, now));
    // A token from the future (another server's clock far ahead).
    Challenge late = issue_challenge(keys, Ceremony::get, "n", now + 1000);
    ck_assert(!open_challenge(keys, Ceremony::get, "n", late.token, now));
}
END_TEST

START_TEST(page_options)
{
    using namespace twostep::webauthn;
    auto parsed = [](const std::string &text) {
        json_error_t err;
        json_t *j = json_loads(text.c_str(), 0, &err);
        ck_assert_msg(j != nullptr, "%s", text.c_str());
        return j;
    };
    json_t *get = parsed(get_options("ch\"al", "example.com",
                                     {"AAEC", "AAED"}, false));
    ck_assert_string_eq(json_string_value(json_object_get(get, "mode")),
                        "get");
    ck_assert_string_eq(json_string_value(json_object_get(get, "challenge")),
                        "ch\"al");
    ck_assert_string_eq(json_string_value(json_object_get(get, "rpId")),
                        "example.com");
    ck_assert_uint_eq(json_array_size(json_object_get(get, "allow")), 2);
    ck_assert_string_eq(json_string_value(
        json_object_get(get, "userVerification")), "preferred");
    json_decref(get);
    get = parsed(get_options("c", "example.com", {}, true));
    ck_assert_uint_eq(json_array_size(json_object_get(get, "allow")), 0);
    ck_assert_string_eq(json_string_value(
        json_object_get(get, "userVerification")), "required");
    json_decref(get);

    json_t *create = parsed(create_options("c", "example.com", "Example",
                                           "aGFuZGxl", "alice", {"AAEC"}));
    ck_assert_string_eq(json_string_value(json_object_get(create, "mode")),
                        "create");
    ck_assert_string_eq(json_string_value(json_object_get(create, "userId")),
                        "aGFuZGxl");
    ck_assert_string_eq(json_string_value(json_object_get(create, "rpName")),
                        "Example");
    ck_assert_uint_eq(json_array_size(json_object_get(create, "exclude")), 1);
    json_decref(create);
}
END_TEST

int main()
{
    Suite *suite = suite_create("webauthn");
    TCase *vectors = tcase_create("recorded");
    tcase_add_test(vectors, recorded_registrations_verify);
    tcase_add_test(vectors, recorded_assertions_verify);
    tcase_add_test(vectors, auth_data_fields);
    suite_add_tcase(suite, vectors);

    TCase *tampered = tcase_create("tampered");
    tcase_set_timeout(tampered, 30);
    tcase_add_test(tampered, registration_tampered);
    tcase_add_test(tampered, packed_attestation_tampered);
    tcase_add_test(tampered, assertion_tampered);
    tcase_add_test(tampered, sign_count_rule);
    tcase_add_test(tampered, stored_credential_checked);
    tcase_add_test(tampered, cose_keys);
    suite_add_tcase(suite, tampered);

    TCase *misc = tcase_create("challenges");
    tcase_add_test(misc, transports_filtered);
    tcase_add_test(misc, challenges);
    tcase_add_test(misc, page_options);
    suite_add_tcase(suite, misc);
    return run_suite(suite);
}
