// UserStore::parse over the input (the users.json an administrator, or a
// tool writing it from user input, produces). A store that parses holds
// exactly the members of "users", each within the documented limits; the
// members are listed with jansson here, since UserStore has no iterator.
#include <jansson.h>

#include <cstddef>
#include <cstdint>
#include <string>

#include "core/password.h"
#include "core/totp.h"
#include "core/user_store.h"
#include "fuzz.h"

using namespace twostep;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    std::string_view json = fuzz::view(data, size);
    std::string error;
    auto store = UserStore::parse(json, error);
    if (!store) {
        CHECK(!error.empty());
        return 0;
    }

    json_error_t err;
    json_t *root = json_loadb(json.data(), json.size(),
                              JSON_REJECT_DUPLICATES, &err);
    CHECK(root != nullptr);
    json_t *users = json_object_get(root, "users");
    CHECK(json_is_object(users));
    CHECK(store->size() == json_object_size(users));

    const char *name;
    json_t *value;
    json_object_foreach(users, name, value) {
        const User *user = store->find(name);
        CHECK(user != nullptr);
        CHECK(user->name == name);
        CHECK(valid_user_name(user->name));
        CHECK(user->password_hash.empty()
              || supported_password_hash(user->password_hash));
        if (user->totp) {
            const TotpParams &t = *user->totp;
            CHECK(t.digits >= 6 && t.digits <= 8);
            CHECK(t.secret.size() >= 16);
            CHECK(t.period >= 15 && t.period <= 300);
            CHECK(hash_alg_from_name(hash_alg_name(t.alg)) == t.alg);
            CHECK(user->methods() != 0);
            // The store's parameters always make a usable verifier.
            std::string code = hotp(t.secret, t.alg,
                                    static_cast<std::uint64_t>(
                                        fuzz::now / t.period),
                                    t.digits);
            CHECK(totp_verify(t, code, fuzz::now).has_value());
        } else {
            CHECK(user->methods() == 0);
        }
    }
    json_decref(root);
    return 0;
}
