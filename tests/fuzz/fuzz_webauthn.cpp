// The WebAuthn parsers and checks on what a browser posts: authenticator
// data, clientDataJSON, COSE keys, attestation objects, and whole
// assertions against the recorded ES256 credential
// (tests/unit/webauthn_vectors/es256-none.json, read once at start; run
// from the top of the repository, as tests/fuzz/run.sh does). The first
// byte of the input picks the target, the rest is the input.
#include <jansson.h>
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/keyring.h"
#include "core/webauthn.h"
#include "fuzz.h"

using namespace twostep;
using namespace twostep::webauthn;

namespace {

constexpr const char *vector_file =
    "tests/unit/webauthn_vectors/es256-none.json";

struct Recorded {
    Expected reg_expected;
    std::string reg_client_data;
    Expected expected;  // for the first assertion
    Credential credential;
    std::string auth_data;
    std::string client_data;
    std::string signature;
};

std::string member(const json_t *obj, const char *key, bool binary)
{
    const json_t *v = json_object_get(obj, key);
    if (!json_is_string(v)) {
        std::fprintf(stderr, "%s: no %s\n", vector_file, key);
        std::abort();
    }
    if (!binary)
        return json_string_value(v);
    auto raw = base64url_decode(json_string_value(v));
    CHECK(raw.has_value());
    return *raw;
}

Recorded load()
{
    json_error_t err;
    json_t *root = json_load_file(vector_file, 0, &err);
    if (!root) {
        std::fprintf(stderr, "%s: %s (run from the repository's top)\n",
                     vector_file, err.text);
        std::abort();
    }
    const json_t *reg = json_object_get(root, "registration");
    const json_t *as = json_array_get(json_object_get(root, "assertions"), 0);
    Recorded r;
    r.reg_expected.rp_id = member(root, "rp_id", false);
    r.reg_expected.origin = member(root, "origin", false);
    r.reg_expected.challenge = member(reg, "challenge", false);
    r.reg_client_data = member(reg, "clientDataJSON", true);
    r.expected = r.reg_expected;
    r.expected.challenge = member(as, "challenge", false);
    r.expected.user_verification = true;
    Registration made = verify_registration(
        r.reg_expected, member(reg, "attestationObject", true),
        r.reg_client_data, {});
    CHECK(made.failure == Failure::none);
    r.credential = made.credential;
    r.auth_data = member(as, "authenticatorData", true);
    r.client_data = member(as, "clientDataJSON", true);
    r.signature = member(as, "signature", true);
    json_decref(root);
    CHECK(verify_assertion(r.expected, r.credential, r.auth_data,
                           r.client_data, r.signature)
              .failure
          == Failure::none);
    return r;
}

const Recorded &recorded()
{
    static const Recorded r = load();
    return r;
}

void check_spki(const std::string &spki)
{
    const unsigned char *p =
        reinterpret_cast<const unsigned char *>(spki.data());
    EVP_PKEY *pkey = d2i_PUBKEY(nullptr, &p, static_cast<long>(spki.size()));
    CHECK(pkey != nullptr);
    EVP_PKEY_free(pkey);
}

void check_auth_data(std::string_view in)
{
    AuthData ad;
    Failure f = parse_auth_data(in, ad);
    if (f != Failure::none) {
        CHECK(f == Failure::auth_data_malformed || f == Failure::too_large);
        return;
    }
    CHECK(ad.rp_id_hash.size() == 32);
    if (ad.flags & flag::at) {
        CHECK(ad.aaguid.size() == 16);
        CHECK(!ad.credential_id.empty()
              && ad.credential_id.size() <= max_credential_id_bytes);
        CHECK(!ad.cose_key.empty());
        PublicKey pk;
        if (parse_cose_key(ad.cose_key, pk) == Failure::none)
            check_spki(pk.spki);
    } else {
        CHECK(ad.aaguid.empty() && ad.credential_id.empty()
              && ad.cose_key.empty());
    }
    CHECK((ad.flags & flag::ed) || ad.extensions.empty());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    const Recorded &r = recorded();
    if (size < 1)
        return 0;
    std::string_view in = fuzz::view(data + 1, size - 1);

    switch (data[0] % 6) {
    case 0:
        check_auth_data(in);
        break;
    case 1: {
        ClientData cd;
        if (parse_client_data(in, cd) != Failure::none)
            CHECK(cd.type.empty() && cd.challenge.empty()
                  && cd.origin.empty());
        break;
    }
    case 2: {
        PublicKey pk;
        if (parse_cose_key(in, pk) == Failure::none)
            check_spki(pk.spki);
        break;
    }
    case 3: {
        // Attestation none signs nothing, so a made-up object can pass; what
        // passes is a usable credential.
        Registration reg = verify_registration(r.reg_expected, in,
                                               r.reg_client_data, {"usb"});
        if (reg.failure == Failure::none) {
            CHECK(reg.fmt == "none" || reg.fmt == "packed");
            auto spki = base64url_decode(reg.credential.public_key);
            CHECK(spki.has_value());
            check_spki(*spki);
            CHECK(!reg.credential.id.empty());
        }
        break;
    }
    case 4: {
        // The signature covers authData: no other bytes verify.
        Assertion as = verify_assertion(r.expected, r.credential, in,
                                        r.client_data, r.signature);
        CHECK(as.failure != Failure::none || in == r.auth_data);
        break;
    }
    case 5: {
        // Nor any other clientDataJSON (the signature covers its hash).
        Assertion as = verify_assertion(r.expected, r.credential,
                                        r.auth_data, in, r.signature);
        CHECK(as.failure != Failure::none || in == r.client_data);
        break;
    }
    }
    return 0;
}
