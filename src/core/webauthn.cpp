// WebAuthn Level 2 registration and assertion checks (W3C Recommendation,
// 8 April 2021). Section numbers below are that document's.
#include "webauthn.h"

#include <cbor.h>
#include <fido.h>
#include <fido/eddsa.h>
#include <fido/es256.h>
#include <fido/rs256.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <stdexcept>

namespace twostep::webauthn {

namespace {

// CTAP2 canonical CBOR nests shallowly: an attestation object is three
// levels deep, a COSE key one.
constexpr std::size_t max_cbor_depth = 8;
constexpr std::size_t rp_id_hash_bytes = 32;
constexpr std::size_t aaguid_bytes = 16;
constexpr std::size_t es256_coord_bytes = 32;
constexpr std::size_t rs256_modulus_bytes = 256;  // libfido2: RSA-2048 only
constexpr std::size_t rs256_exponent_bytes = 3;
constexpr std::size_t ed25519_key_bytes = 32;

constexpr std::string_view create_kind = "wacreate";
constexpr std::string_view get_kind = "waget";
constexpr std::string_view challenge_version = "v1";
constexpr std::size_t challenge_bytes = 32;

struct CborFree {
    void operator()(cbor_item_t *item) const { cbor_decref(&item); }
};
using CborPtr = std::unique_ptr<cbor_item_t, CborFree>;
struct JsonFree {
    void operator()(json_t *json) const { json_decref(json); }
};
using JsonPtr = std::unique_ptr<json_t, JsonFree>;
struct PkeyFree {
    void operator()(EVP_PKEY *pkey) const { EVP_PKEY_free(pkey); }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, PkeyFree>;
struct CredFree {
    void operator()(fido_cred_t *cred) const { fido_cred_free(&cred); }
};
struct AssertFree {
    void operator()(fido_assert_t *a) const { fido_assert_free(&a); }
};
struct Es256Free {
    void operator()(es256_pk_t *pk) const { es256_pk_free(&pk); }
};
struct Rs256Free {
    void operator()(rs256_pk_t *pk) const { rs256_pk_free(&pk); }
};
struct EddsaFree {
    void operator()(eddsa_pk_t *pk) const { eddsa_pk_free(&pk); }
};

const unsigned char *bytes(std::string_view s)
{
    return reinterpret_cast<const unsigned char *>(s.data());
}

std::string sha256(std::string_view data)
{
    unsigned char out[SHA256_DIGEST_LENGTH];
    SHA256(bytes(data), data.size(), out);
    return std::string(reinterpret_cast<const char *>(out), sizeof out);
}

bool same(std::string_view a, std::string_view b)
{
    return a.size() == b.size()
           && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

// ------------------------------------------------------------------ CBOR

// One item header as libcbor's streaming decoder saw it.
struct CborHeader {
    enum { scalar, array, map, refused } kind = scalar;
    std::size_t size = 0;
};

void on_array(void *ctx, std::size_t size)
{
    auto *h = static_cast<CborHeader *>(ctx);
    h->kind = CborHeader::array;
    h->size = size;
}

void on_map(void *ctx, std::size_t size)
{
    auto *h = static_cast<CborHeader *>(ctx);
    h->kind = CborHeader::map;
    h->size = size;
}

void on_refused(void *ctx)
{
    static_cast<CborHeader *>(ctx)->kind = CborHeader::refused;
}

void on_refused_tag(void *ctx, std::uint64_t)
{
    static_cast<CborHeader *>(ctx)->kind = CborHeader::refused;
}

// Length of the CBOR item at the start of `data`, or 0 if it is cut short,
// uses indefinite lengths or tags (CTAP2 canonical CBOR has neither), nests
// deeper than max_cbor_depth, or declares more items than bytes remain.
// Run before cbor_load(), which allocates what a header declares: five
// bytes could otherwise ask for gigabytes.
std::size_t cbor_item_length(std::string_view data)
{
    cbor_callbacks cb = cbor_empty_callbacks;
    cb.array_start = on_array;
    cb.map_start = on_map;
    cb.indef_array_start = on_refused;
    cb.indef_map_start = on_refused;
    cb.byte_string_start = on_refused;  // indefinite byte string
    cb.string_start = on_refused;       // indefinite text string
    cb.indef_break = on_refused;
    cb.tag = on_refused_tag;

    std::vector<std::size_t> owed{1};  // items still due per open container
    std::size_t total_owed = 1;
    std::size_t pos = 0;
    while (!owed.empty()) {
        CborHeader h;
        cbor_decoder_result r = cbor_stream_decode(
            bytes(data) + pos, data.size() - pos, &cb, &h);
        if (r.status != CBOR_DECODER_FINISHED || r.read == 0
            || h.kind == CborHeader::refused)
            return 0;
        pos += r.read;
        --owed.back();
        --total_owed;
        std::size_t items = h.size;
        if (h.kind == CborHeader::map) {
            if (items > SIZE_MAX / 2)
                return 0;
            items *= 2;
        }
        // Every item still due takes at least one byte.
        std::size_t remaining = data.size() - pos;
        if (total_owed > remaining)
            return 0;
        if (h.kind != CborHeader::scalar && items > 0) {
            if (owed.size() >= max_cbor_depth
                || items > remaining - total_owed)
                return 0;
            owed.push_back(items);
            total_owed += items;
        }
        while (!owed.empty() && owed.back() == 0)
            owed.pop_back();
    }
    return pos;
}

// The whole of `data` as one CBOR item, or null.
CborPtr cbor_parse(std::string_view data)
{
    if (data.empty() || cbor_item_length(data) != data.size())
        return nullptr;
    cbor_load_result res;
    CborPtr item(cbor_load(bytes(data), data.size(), &res));
    if (!item || res.error.code != CBOR_ERR_NONE || res.read != data.size())
        return nullptr;
    return item;
}

// Each of these is nullopt for a missing (null) item or one of another type.
std::optional<std::string_view> cbor_bytes(const cbor_item_t *item)
{
    if (!item || !cbor_isa_bytestring(item) || !cbor_bytestring_is_definite(item))
        return std::nullopt;
    return std::string_view(
        reinterpret_cast<const char *>(cbor_bytestring_handle(item)),
        cbor_bytestring_length(item));
}

std::optional<std::string_view> cbor_text(const cbor_item_t *item)
{
    if (!item || !cbor_isa_string(item) || !cbor_string_is_definite(item))
        return std::nullopt;
    return std::string_view(
        reinterpret_cast<const char *>(cbor_string_handle(item)),
        cbor_string_length(item));
}

std::optional<std::int64_t> cbor_int(const cbor_item_t *item)
{
    if (!item)
        return std::nullopt;
    if (cbor_isa_uint(item)) {
        std::uint64_t v = cbor_get_int(item);
        if (v > INT64_MAX)
            return std::nullopt;
        return static_cast<std::int64_t>(v);
    }
    if (cbor_isa_negint(item)) {
        std::uint64_t v = cbor_get_int(item);  // the value is -1 - v
        if (v > INT64_MAX)
            return std::nullopt;
        return -1 - static_cast<std::int64_t>(v);
    }
    return std::nullopt;
}

// The value under a text or integer key of a map. `dup` is set if the key
// is there twice (canonical CBOR never repeats one).
struct MapKey {
    std::optional<std::string_view> text;
    std::optional<std::int64_t> number;
};

const cbor_item_t *cbor_lookup(const cbor_item_t *map, MapKey key,
                               bool &dup)
{
    const cbor_item_t *found = nullptr;
    const cbor_pair *pairs = cbor_map_handle(map);
    for (std::size_t i = 0; i < cbor_map_size(map); ++i) {
        bool match = false;
        if (key.text) {
            auto t = cbor_text(pairs[i].key);
            match = t && *t == *key.text;
        } else {
            auto n = cbor_int(pairs[i].key);
            match = n && *n == *key.number;
        }
        if (match) {
            if (found)
                dup = true;
            found = pairs[i].value;
        }
    }
    return found;
}

// libfido2 verifies only if told exactly which extension outputs the
// authenticator data carries (those it knows; it skips the others).
int fido_extensions(const AuthData &ad)
{
    int mask = 0;
    for (const std::string &name : ad.extensions) {
        if (name == "hmac-secret")
            mask |= FIDO_EXT_HMAC_SECRET;
        else if (name == "credProtect")
            mask |= FIDO_EXT_CRED_PROTECT;
        else if (name == "credBlob")
            mask |= FIDO_EXT_CRED_BLOB;
        else if (name == "minPinLength")
            mask |= FIDO_EXT_MINPINLEN;
    }
    return mask;
}

// -------------------------------------------------------------- keys

Failure spki_of(EVP_PKEY *pkey, std::string &spki)
{
    if (!pkey)
        return Failure::internal;
    int len = i2d_PUBKEY(pkey, nullptr);
    if (len <= 0)
        return Failure::internal;
    spki.assign(static_cast<std::size_t>(len), '\0');
    auto *p = reinterpret_cast<unsigned char *>(spki.data());
    if (i2d_PUBKEY(pkey, &p) != len)
        return Failure::internal;
    return Failure::none;
}

// The libfido2 key for a stored SubjectPublicKeyInfo: one slot is set, and
// ptr points to it.
struct FidoKey {
    std::unique_ptr<es256_pk_t, Es256Free> es256;
    std::unique_ptr<rs256_pk_t, Rs256Free> rs256;
    std::unique_ptr<eddsa_pk_t, EddsaFree> eddsa;
    const void *ptr = nullptr;
};

// One of FidoKey's slots from an OpenSSL key of the expected type.
template <typename Pk, typename Free>
Failure fill_key(std::unique_ptr<Pk, Free> &slot, Pk *(*make)(),
                 int (*from)(Pk *, const EVP_PKEY *), int pkey_type,
                 const EVP_PKEY *pkey, const void *&ptr)
{
    slot.reset(make());
    if (!slot)
        return Failure::internal;
    if (EVP_PKEY_base_id(pkey) != pkey_type
        || from(slot.get(), pkey) != FIDO_OK)
        return Failure::credential_mismatch;
    ptr = slot.get();
    return Failure::none;
}

Failure fido_key_of(Algorithm alg, std::string_view spki, FidoKey &key)
{
    const unsigned char *p = bytes(spki);
    PkeyPtr pkey(d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size())));
    if (!pkey || p != bytes(spki) + spki.size())
        return Failure::credential_mismatch;
    switch (alg) {
    case Algorithm::es256:
        return fill_key(key.es256, es256_pk_new, es256_pk_from_EVP_PKEY,
                        EVP_PKEY_EC, pkey.get(), key.ptr);
    case Algorithm::rs256:
        return fill_key(key.rs256, rs256_pk_new, rs256_pk_from_EVP_PKEY,
                        EVP_PKEY_RSA, pkey.get(), key.ptr);
    case Algorithm::eddsa:
        return fill_key(key.eddsa, eddsa_pk_new, eddsa_pk_from_EVP_PKEY,
                        EVP_PKEY_ED25519, pkey.get(), key.ptr);
    }
    return Failure::credential_mismatch;
}

// --------------------------------------------------------- client data

Failure check_client_data(std::string_view json, std::string_view type,
                          const Expected &expected)
{
    if (json.size() > max_client_data_bytes)
        return Failure::too_large;
    ClientData cd;
    Failure f = parse_client_data(json, cd);
    if (f != Failure::none)
        return f;
    // §7.1 steps 7-10, §7.2 steps 11-14.
    if (cd.type != type)
        return Failure::wrong_type;
    if (expected.challenge.empty() || !same(cd.challenge, expected.challenge))
        return Failure::wrong_challenge;
    if (expected.origin.empty() || cd.origin != expected.origin)
        return Failure::wrong_origin;
    // The portal is never framed (it sends frame-ancestors 'none').
    if (cd.cross_origin)
        return Failure::cross_origin;
    return Failure::none;
}

// §7.1 steps 13-15, §7.2 steps 15-17.
Failure check_auth_flags(const AuthData &ad, const Expected &expected)
{
    if (!same(ad.rp_id_hash, sha256(expected.rp_id)))
        return Failure::rp_id_hash;
    if (!(ad.flags & flag::up))
        return Failure::user_not_present;
    if (expected.user_verification && !(ad.flags & flag::uv))
        return Failure::user_not_verified;
    return Failure::none;
}

// ------------------------------------------------------- attestation

// §8.2: packed, self attestation (no x5c: signed by the new credential) or
// with an x5c certificate, whose signature libfido2 checks.
Failure verify_packed(const Expected &expected, Algorithm alg,
                      std::string_view auth_data, int extensions,
                      std::string_view att_stmt,
                      bool has_x5c, std::string_view client_data_json)
{
    std::unique_ptr<fido_cred_t, CredFree> cred(fido_cred_new());
    if (!cred)
        return Failure::internal;
    if (fido_cred_set_type(cred.get(), static_cast<int>(alg)) != FIDO_OK
        || fido_cred_set_extensions(cred.get(), extensions) != FIDO_OK
        || fido_cred_set_rp(cred.get(), expected.rp_id.c_str(), nullptr)
               != FIDO_OK
        || fido_cred_set_uv(cred.get(), expected.user_verification
                                            ? FIDO_OPT_TRUE
                                            : FIDO_OPT_OMIT)
               != FIDO_OK
        || fido_cred_set_fmt(cred.get(), "packed") != FIDO_OK)
        return Failure::internal;
    if (fido_cred_set_clientdata(cred.get(), bytes(client_data_json),
                                 client_data_json.size())
            != FIDO_OK
        || fido_cred_set_authdata_raw(cred.get(), bytes(auth_data),
                                      auth_data.size())
               != FIDO_OK
        || fido_cred_set_attstmt(cred.get(), bytes(att_stmt),
                                 att_stmt.size())
               != FIDO_OK)
        return Failure::attestation_invalid;
    int rc = has_x5c ? fido_cred_verify(cred.get())
                     : fido_cred_verify_self(cred.get());
    return rc == FIDO_OK ? Failure::none : Failure::attestation_invalid;
}

std::string cbor_serialized(const cbor_item_t *item)
{
    unsigned char *buf = nullptr;
    std::size_t buf_size = 0;
    std::size_t len = cbor_serialize_alloc(item, &buf, &buf_size);
    std::string out;
    if (len > 0 && buf)
        out.assign(reinterpret_cast<const char *>(buf), len);
    std::free(buf);
    return out;
}

Registration registration_checked(const Expected &expected,
                                  std::string_view attestation_object,
                                  std::string_view client_data_json,
                                  const std::vector<std::string> &transports)
{
    Registration reg;
    if (attestation_object.size() > max_attestation_bytes) {
        reg.failure = Failure::too_large;
        return reg;
    }
    reg.failure = check_client_data(client_data_json, "webauthn.create",
                                    expected);
    if (reg.failure != Failure::none)
        return reg;

    // §7.1 step 12: fmt, attStmt and authData.
    reg.failure = Failure::cbor_malformed;
    CborPtr att = cbor_parse(attestation_object);
    if (!att || !cbor_isa_map(att.get()))
        return reg;
    bool dup = false;
    const cbor_item_t *fmt_item = cbor_lookup(att.get(), {"fmt", {}}, dup);
    const cbor_item_t *stmt = cbor_lookup(att.get(), {"attStmt", {}}, dup);
    const cbor_item_t *ad_item = cbor_lookup(att.get(), {"authData", {}}, dup);
    if (dup || !fmt_item || !stmt || !ad_item || !cbor_isa_map(stmt))
        return reg;
    auto fmt = cbor_text(fmt_item);
    auto raw_auth_data = cbor_bytes(ad_item);
    if (!fmt || !raw_auth_data)
        return reg;

    AuthData ad;
    reg.failure = parse_auth_data(*raw_auth_data, ad);
    if (reg.failure != Failure::none)
        return reg;
    reg.failure = check_auth_flags(ad, expected);
    if (reg.failure != Failure::none)
        return reg;
    if (!(ad.flags & flag::at)) {
        reg.failure = Failure::no_credential;
        return reg;
    }
    PublicKey key;
    reg.failure = parse_cose_key(ad.cose_key, key);
    if (reg.failure != Failure::none)
        return reg;

    // §7.1 steps 18-19; attestation trust (step 21) is not evaluated.
    if (*fmt == "none") {
        // §8.7: the statement is an empty map.
        if (cbor_map_size(stmt) != 0) {
            reg.failure = Failure::cbor_malformed;
            return reg;
        }
    } else if (*fmt == "packed") {
        bool dup_stmt = false;
        const cbor_item_t *alg = cbor_lookup(stmt, {"alg", {}}, dup_stmt);
        const cbor_item_t *sig = cbor_lookup(stmt, {"sig", {}}, dup_stmt);
        const cbor_item_t *x5c = cbor_lookup(stmt, {"x5c", {}}, dup_stmt);
        if (dup_stmt || !alg || !sig || !cbor_int(alg) || !cbor_bytes(sig)
            || (x5c && (!cbor_isa_array(x5c) || cbor_array_size(x5c) == 0))) {
            reg.failure = Failure::attestation_invalid;
            return reg;
        }
        std::string stmt_bytes = cbor_serialized(stmt);
        if (stmt_bytes.empty()) {
            reg.failure = Failure::internal;
            return reg;
        }
        reg.failure = verify_packed(expected, key.algorithm, *raw_auth_data,
                                    fido_extensions(ad), stmt_bytes, x5c != nullptr,
                                    client_data_json);
        if (reg.failure != Failure::none)
            return reg;
    } else {
        reg.failure = Failure::attestation_unsupported;
        return reg;
    }

    reg.fmt = std::string(*fmt);
    reg.aaguid = ad.aaguid;
    reg.user_verified = (ad.flags & flag::uv) != 0;
    reg.credential.id = base64url_encode(ad.credential_id);
    reg.credential.algorithm = key.algorithm;
    reg.credential.public_key = base64url_encode(key.spki);
    reg.credential.sign_count = ad.sign_count;
    reg.credential.transports = known_transports(transports);
    reg.failure = Failure::none;
    return reg;
}

Assertion assertion_checked(const Expected &expected,
                            const Credential &credential,
                            std::string_view authenticator_data,
                            std::string_view client_data_json,
                            std::string_view signature)
{
    Assertion as;
    if (authenticator_data.size() > max_auth_data_bytes
        || signature.size() > max_signature_bytes) {
        as.failure = Failure::too_large;
        return as;
    }
    as.failure = check_client_data(client_data_json, "webauthn.get",
                                   expected);
    if (as.failure != Failure::none)
        return as;
    AuthData ad;
    as.failure = parse_auth_data(authenticator_data, ad);
    if (as.failure != Failure::none)
        return as;
    // An assertion never carries a new credential.
    if (ad.flags & flag::at) {
        as.failure = Failure::auth_data_malformed;
        return as;
    }
    as.failure = check_auth_flags(ad, expected);
    if (as.failure != Failure::none)
        return as;

    auto spki = base64url_decode(credential.public_key);
    if (!spki) {
        as.failure = Failure::credential_mismatch;
        return as;
    }
    FidoKey key;
    as.failure = fido_key_of(credential.algorithm, *spki, key);
    if (as.failure != Failure::none)
        return as;

    // §7.2 steps 19-20: libfido2 hashes clientDataJSON, checks rpIdHash and
    // the flags again, and verifies the signature over authData || hash.
    std::unique_ptr<fido_assert_t, AssertFree> fa(fido_assert_new());
    if (!fa) {
        as.failure = Failure::internal;
        return as;
    }
    if (fido_assert_set_rp(fa.get(), expected.rp_id.c_str()) != FIDO_OK
        || fido_assert_set_count(fa.get(), 1) != FIDO_OK
        || fido_assert_set_extensions(fa.get(), fido_extensions(ad))
               != FIDO_OK
        || fido_assert_set_up(fa.get(), FIDO_OPT_TRUE) != FIDO_OK
        || fido_assert_set_uv(fa.get(), expected.user_verification
                                            ? FIDO_OPT_TRUE
                                            : FIDO_OPT_OMIT)
               != FIDO_OK
        || fido_assert_set_clientdata(fa.get(), bytes(client_data_json),
                                      client_data_json.size())
               != FIDO_OK) {
        as.failure = Failure::internal;
        return as;
    }
    if (fido_assert_set_authdata_raw(fa.get(), 0, bytes(authenticator_data),
                                     authenticator_data.size())
        != FIDO_OK) {
        as.failure = Failure::auth_data_malformed;
        return as;
    }
    if (signature.empty()
        || fido_assert_set_sig(fa.get(), 0, bytes(signature),
                               signature.size())
               != FIDO_OK
        || fido_assert_verify(fa.get(), 0, static_cast<int>(
                                  credential.algorithm), key.ptr)
               != FIDO_OK) {
        as.failure = Failure::bad_signature;
        return as;
    }

    // §6.1.1, §7.2 step 21: a counter that did not move forward while
    // either side counts means two copies of the key are in use.
    if ((ad.sign_count != 0 || credential.sign_count != 0)
        && ad.sign_count <= credential.sign_count) {
        as.failure = Failure::sign_count;
        return as;
    }
    as.sign_count = ad.sign_count;
    as.user_verified = (ad.flags & flag::uv) != 0;
    as.failure = Failure::none;
    return as;
}

std::string_view kind_of(Ceremony c)
{
    return c == Ceremony::create ? create_kind : get_kind;
}

std::optional<std::int64_t> parse_decimal(std::string_view s)
{
    if (s.empty() || s.size() > 18 || (s.size() > 1 && s[0] == '0'))
        return std::nullopt;
    std::int64_t v = 0;
    for (char c : s) {
        if (c < '0' || c > '9')
            return std::nullopt;
        v = v * 10 + (c - '0');
    }
    return v;
}

}  // namespace

std::optional<Algorithm> algorithm_from_cose(std::int64_t alg)
{
    switch (alg) {
    case static_cast<int>(Algorithm::es256):
        return Algorithm::es256;
    case static_cast<int>(Algorithm::rs256):
        return Algorithm::rs256;
    case static_cast<int>(Algorithm::eddsa):
        return Algorithm::eddsa;
    default:
        return std::nullopt;
    }
}

const char *algorithm_name(Algorithm alg)
{
    switch (alg) {
    case Algorithm::es256:
        return "ES256";
    case Algorithm::rs256:
        return "RS256";
    case Algorithm::eddsa:
        return "EdDSA";
    }
    return "unknown";
}

const char *failure_name(Failure f)
{
    switch (f) {
    case Failure::none: return "none";
    case Failure::too_large: return "too_large";
    case Failure::client_data_malformed: return "client_data_malformed";
    case Failure::wrong_type: return "wrong_type";
    case Failure::wrong_challenge: return "wrong_challenge";
    case Failure::wrong_origin: return "wrong_origin";
    case Failure::cross_origin: return "cross_origin";
    case Failure::cbor_malformed: return "cbor_malformed";
    case Failure::auth_data_malformed: return "auth_data_malformed";
    case Failure::rp_id_hash: return "rp_id_hash";
    case Failure::user_not_present: return "user_not_present";
    case Failure::user_not_verified: return "user_not_verified";
    case Failure::no_credential: return "no_credential";
    case Failure::public_key_malformed: return "public_key_malformed";
    case Failure::algorithm_unsupported: return "algorithm_unsupported";
    case Failure::attestation_unsupported: return "attestation_unsupported";
    case Failure::attestation_invalid: return "attestation_invalid";
    case Failure::credential_mismatch: return "credential_mismatch";
    case Failure::bad_signature: return "bad_signature";
    case Failure::sign_count: return "sign_count";
    case Failure::internal: return "internal";
    }
    return "unknown";
}

Failure parse_auth_data(std::string_view raw, AuthData &out)
{
    out = AuthData();
    if (raw.size() > max_auth_data_bytes)
        return Failure::too_large;
    // rpIdHash (32), flags (1), signCount (4, big-endian).
    constexpr std::size_t fixed = rp_id_hash_bytes + 1 + 4;
    if (raw.size() < fixed)
        return Failure::auth_data_malformed;
    out.rp_id_hash = std::string(raw.substr(0, rp_id_hash_bytes));
    out.flags = static_cast<std::uint8_t>(raw[rp_id_hash_bytes]);
    const unsigned char *c = bytes(raw) + rp_id_hash_bytes + 1;
    out.sign_count = (std::uint32_t{c[0]} << 24) | (std::uint32_t{c[1]} << 16)
                     | (std::uint32_t{c[2]} << 8) | std::uint32_t{c[3]};
    std::string_view rest = raw.substr(fixed);

    if (out.flags & flag::at) {
        // aaguid (16), credentialIdLength (2, big-endian), credentialId,
        // credentialPublicKey (one COSE_Key).
        if (rest.size() < aaguid_bytes + 2)
            return Failure::auth_data_malformed;
        out.aaguid = std::string(rest.substr(0, aaguid_bytes));
        const unsigned char *l = bytes(rest) + aaguid_bytes;
        std::size_t id_len = (std::size_t{l[0]} << 8) | l[1];
        rest = rest.substr(aaguid_bytes + 2);
        if (id_len == 0 || id_len > max_credential_id_bytes
            || id_len > rest.size())
            return Failure::auth_data_malformed;
        out.credential_id = std::string(rest.substr(0, id_len));
        rest = rest.substr(id_len);
        std::size_t key_len = cbor_item_length(rest);
        if (key_len == 0)
            return Failure::auth_data_malformed;
        out.cose_key = std::string(rest.substr(0, key_len));
        rest = rest.substr(key_len);
    }
    if (out.flags & flag::ed) {
        // One CBOR map of extension outputs, to the end, keyed by name.
        CborPtr ext = cbor_parse(rest);
        if (!ext || !cbor_isa_map(ext.get()))
            return Failure::auth_data_malformed;
        const cbor_pair *pairs = cbor_map_handle(ext.get());
        for (std::size_t i = 0; i < cbor_map_size(ext.get()); ++i) {
            auto name = cbor_text(pairs[i].key);
            if (!name)
                return Failure::auth_data_malformed;
            out.extensions.emplace_back(*name);
        }
        rest = {};
    }
    if (!rest.empty())
        return Failure::auth_data_malformed;
    return Failure::none;
}

Failure parse_client_data(std::string_view json, ClientData &out)
{
    out = ClientData();
    if (json.size() > max_client_data_bytes)
        return Failure::too_large;
    json_error_t err;
    JsonPtr root(json_loadb(json.data(), json.size(), JSON_REJECT_DUPLICATES,
                            &err));
    if (!root || !json_is_object(root.get()))
        return Failure::client_data_malformed;
    const json_t *type = json_object_get(root.get(), "type");
    const json_t *challenge = json_object_get(root.get(), "challenge");
    const json_t *origin = json_object_get(root.get(), "origin");
    const json_t *cross = json_object_get(root.get(), "crossOrigin");
    if (!json_is_string(type) || !json_is_string(challenge)
        || !json_is_string(origin) || (cross && !json_is_boolean(cross)))
        return Failure::client_data_malformed;
    out.type.assign(json_string_value(type), json_string_length(type));
    out.challenge.assign(json_string_value(challenge),
                         json_string_length(challenge));
    out.origin.assign(json_string_value(origin), json_string_length(origin));
    out.cross_origin = cross && json_is_true(cross);
    return Failure::none;
}

Failure parse_cose_key(std::string_view cose, PublicKey &out)
{
    out = PublicKey();
    CborPtr key = cbor_parse(cose);
    if (!key || !cbor_isa_map(key.get()))
        return Failure::public_key_malformed;
    bool dup = false;
    auto get = [&](std::int64_t label) {
        return cbor_lookup(key.get(), {{}, label}, dup);
    };
    const cbor_item_t *kty_item = get(1);
    const cbor_item_t *alg_item = get(3);
    const cbor_item_t *p1 = get(-1);  // crv, or n for RSA
    const cbor_item_t *p2 = get(-2);  // x, or e for RSA
    const cbor_item_t *p3 = get(-3);  // y
    if (dup || !kty_item || !alg_item)
        return Failure::public_key_malformed;
    auto kty = cbor_int(kty_item);
    auto alg_value = cbor_int(alg_item);
    if (!kty || !alg_value)
        return Failure::public_key_malformed;
    auto alg = algorithm_from_cose(*alg_value);
    if (!alg)
        return Failure::algorithm_unsupported;
    out.algorithm = *alg;

    PkeyPtr pkey;
    switch (*alg) {
    case Algorithm::es256: {
        auto crv = cbor_int(p1);
        auto x = cbor_bytes(p2);
        auto y = cbor_bytes(p3);
        if (*kty != COSE_KTY_EC2 || !crv || !x || !y)
            return Failure::public_key_malformed;
        if (*crv != COSE_P256)
            return Failure::algorithm_unsupported;
        if (x->size() != es256_coord_bytes || y->size() != es256_coord_bytes)
            return Failure::public_key_malformed;
        std::string point = "\x04";
        point.append(*x).append(*y);
        std::unique_ptr<es256_pk_t, Es256Free> pk(es256_pk_new());
        if (!pk)
            return Failure::internal;
        // Refuses a point that is not on P-256.
        if (es256_pk_from_ptr(pk.get(), point.data(), point.size())
            != FIDO_OK)
            return Failure::public_key_malformed;
        pkey.reset(es256_pk_to_EVP_PKEY(pk.get()));
        break;
    }
    case Algorithm::rs256: {
        auto n = cbor_bytes(p1);
        auto e = cbor_bytes(p2);
        if (*kty != COSE_KTY_RSA || !n || !e || e->empty()
            || e->size() > rs256_exponent_bytes || (*n)[0] == '\0')
            return Failure::public_key_malformed;
        if (n->size() != rs256_modulus_bytes)
            return Failure::algorithm_unsupported;
        std::string raw(*n);
        raw.append(rs256_exponent_bytes - e->size(), '\0').append(*e);
        std::unique_ptr<rs256_pk_t, Rs256Free> pk(rs256_pk_new());
        if (!pk)
            return Failure::internal;
        if (rs256_pk_from_ptr(pk.get(), raw.data(), raw.size()) != FIDO_OK)
            return Failure::public_key_malformed;
        pkey.reset(rs256_pk_to_EVP_PKEY(pk.get()));
        break;
    }
    case Algorithm::eddsa: {
        auto crv = cbor_int(p1);
        auto x = cbor_bytes(p2);
        if (*kty != COSE_KTY_OKP || !crv || !x)
            return Failure::public_key_malformed;
        if (*crv != COSE_ED25519)
            return Failure::algorithm_unsupported;
        if (x->size() != ed25519_key_bytes)
            return Failure::public_key_malformed;
        std::unique_ptr<eddsa_pk_t, EddsaFree> pk(eddsa_pk_new());
        if (!pk)
            return Failure::internal;
        if (eddsa_pk_from_ptr(pk.get(), x->data(), x->size()) != FIDO_OK)
            return Failure::public_key_malformed;
        pkey.reset(eddsa_pk_to_EVP_PKEY(pk.get()));
        break;
    }
    }
    if (!pkey)
        return Failure::public_key_malformed;
    return spki_of(pkey.get(), out.spki);
}

std::vector<std::string> known_transports(
    const std::vector<std::string> &transports)
{
    static const char *const known[] = {"usb",      "nfc",    "ble",
                                        "internal", "hybrid", "smart-card"};
    std::vector<std::string> out;
    for (const auto &t : transports) {
        for (const char *k : known) {
            if (t == k && std::find(out.begin(), out.end(), t) == out.end())
                out.push_back(t);
        }
    }
    return out;
}

Registration verify_registration(const Expected &expected,
                                 std::string_view attestation_object,
                                 std::string_view client_data_json,
                                 const std::vector<std::string> &transports)
{
    try {
        return registration_checked(expected, attestation_object,
                                    client_data_json, transports);
    } catch (...) {
        Registration reg;
        reg.failure = Failure::internal;
        return reg;
    }
}

Assertion verify_assertion(const Expected &expected,
                           const Credential &credential,
                           std::string_view authenticator_data,
                           std::string_view client_data_json,
                           std::string_view signature)
{
    try {
        return assertion_checked(expected, credential, authenticator_data,
                                 client_data_json, signature);
    } catch (...) {
        Assertion as;
        as.failure = Failure::internal;
        return as;
    }
}

Challenge issue_challenge(const KeyRing &keys, Ceremony ceremony,
                          std::string_view binding, std::int64_t now)
{
    Challenge c;
    c.challenge = random_token(challenge_bytes);
    c.expires = now + challenge_lifetime;
    std::string payload(challenge_version);
    payload += '|';
    payload += std::to_string(c.expires);
    payload += '|';
    payload += c.challenge;
    payload += '|';
    payload += binding;  // last: it may contain anything
    c.token = keys.sign(kind_of(ceremony), payload);
    return c;
}

std::optional<Challenge> open_challenge(const KeyRing &keys,
                                        Ceremony ceremony,
                                        std::string_view binding,
                                        std::string_view token,
                                        std::int64_t now)
{
    auto payload = keys.verify(kind_of(ceremony), token);
    if (!payload)
        return std::nullopt;
    std::string_view p = *payload;
    std::size_t a = p.find('|');
    if (a == std::string_view::npos || p.substr(0, a) != challenge_version)
        return std::nullopt;
    std::size_t b = p.find('|', a + 1);
    if (b == std::string_view::npos)
        return std::nullopt;
    std::size_t c = p.find('|', b + 1);
    if (c == std::string_view::npos)
        return std::nullopt;
    auto expires = parse_decimal(p.substr(a + 1, b - a - 1));
    if (!expires || now >= *expires || *expires - now > challenge_lifetime)
        return std::nullopt;
    if (!same(p.substr(c + 1), binding))
        return std::nullopt;
    Challenge out;
    out.challenge = std::string(p.substr(b + 1, c - b - 1));
    out.expires = *expires;
    out.token = std::string(token);
    if (out.challenge.empty())
        return std::nullopt;
    return out;
}

namespace {

json_t *id_list(const std::vector<std::string> &ids)
{
    json_t *list = json_array();
    for (const std::string &id : ids) {
        if (list == nullptr
            || json_array_append_new(list, json_stringn(id.data(), id.size()))
                   != 0) {
            json_decref(list);
            return nullptr;
        }
    }
    return list;
}

std::string dumped(json_t *object)
{
    if (object == nullptr) {
        throw std::bad_alloc();
    }
    char *text = json_dumps(object, JSON_COMPACT);
    json_decref(object);
    if (text == nullptr) {
        throw std::bad_alloc();
    }
    std::string out(text);
    std::free(text);
    return out;
}

}  // namespace

std::string get_options(std::string_view challenge, std::string_view rp_id,
                        const std::vector<std::string> &allow,
                        bool require_uv)
{
    return dumped(json_pack("{s:s, s:s%, s:s%, s:o*, s:s}",
        "mode", "get",
        "challenge", challenge.data(), challenge.size(),
        "rpId", rp_id.data(), rp_id.size(),
        "allow", id_list(allow),
        "userVerification", require_uv ? "required" : "preferred"));
}

std::string create_options(std::string_view challenge, std::string_view rp_id,
                           std::string_view rp_name,
                           std::string_view user_handle,
                           std::string_view user_name,
                           const std::vector<std::string> &exclude)
{
    return dumped(json_pack("{s:s, s:s%, s:s%, s:s%, s:s%, s:s%, s:o*}",
        "mode", "create",
        "challenge", challenge.data(), challenge.size(),
        "rpId", rp_id.data(), rp_id.size(),
        "rpName", rp_name.data(), rp_name.size(),
        "userId", user_handle.data(), user_handle.size(),
        "userName", user_name.data(), user_name.size(),
        "exclude", id_list(exclude)));
}

}  // namespace twostep::webauthn
