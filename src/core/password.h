// Password checks against crypt(3) hashes through libcrypt. Slow on purpose
// (yescrypt ~14 ms): callers run this off nginx's event loop.
#pragma once

#include <string_view>

namespace twostep {

// Hash schemes accepted in the store: yescrypt ($y$, $gy$), scrypt ($7$),
// bcrypt ($2b$, $2a$, $2y$), sha512crypt ($6$), sha256crypt ($5$).
bool supported_password_hash(std::string_view hash);

// Thread-safe (crypt_rn with a private buffer); constant-time comparison.
// An empty or unsupported hash never matches.
bool password_matches(std::string_view password, std::string_view hash);

// Spends the same work as a real check against a yescrypt hash, for
// unknown users, so timing does not reveal which names exist.
void password_dummy_check(std::string_view password);

}  // namespace twostep
