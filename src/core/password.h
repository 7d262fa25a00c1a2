// Password checks against crypt(3) hashes through libcrypt. Slow on purpose
// (yescrypt ~14 ms): callers run this off nginx's event loop.
#pragma once

#include <string>
#include <string_view>

namespace twostep {

// Hash schemes accepted in the store: yescrypt ($y$, $gy$), scrypt ($7$),
// bcrypt ($2b$, $2a$, $2y$), sha512crypt ($6$), sha256crypt ($5$).
bool supported_password_hash(std::string_view hash);

// Thread-safe (crypt_rn with a private buffer); constant-time comparison.
// An empty or unsupported hash never matches.
bool password_matches(std::string_view password, std::string_view hash);

// The part of a supported hash that decides what a check costs: scheme,
// cost parameters and salt, without the hash itself ("$6$rounds=N$salt",
// "$2b$10$" and 22 characters of salt, "$y$j9T$salt"). Empty otherwise.
std::string password_setting(std::string_view hash);

// Spends the work of a real check against `setting` (a password_setting()
// of a store's hash), for unknown users, so timing does not reveal which
// names exist. An empty or unusable setting costs a yescrypt check at the
// default cost instead; returns false then.
bool password_dummy_check(std::string_view password,
                          std::string_view setting = {});

}  // namespace twostep
