// The JSON user store named by twostep_users:
//   {"users": {"alice": {"password": "$y$...", "totp": "BASE32"}}}
// "totp" may also be {"secret": "...", "algorithm": "SHA1|SHA256|SHA512",
// "digits": 6|7|8, "period": 30}. Unknown members are kept out of the way
// (later features add them), never an error.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "methods.h"
#include "totp.h"

namespace twostep {

struct User {
    std::string name;
    std::string password_hash;        // crypt(3) string; empty: no password
    std::optional<TotpParams> totp;

    MethodSet methods() const;        // second-step methods this user has
};

class UserStore {
public:
    const User *find(std::string_view name) const;
    std::size_t size() const { return users_.size(); }

    // Parses JSON text; on failure returns nullptr and sets `error` to a
    // message naming the position (line:column) or the user and member at
    // fault, e.g. `user "bob": "totp.digits" must be 6, 7 or 8`.
    static std::shared_ptr<const UserStore> parse(std::string_view json,
                                                  std::string &error);
    // Reads and parses a file; errors start with the file name.
    static std::shared_ptr<const UserStore> load(const std::string &path,
                                                 std::string &error);

private:
    std::map<std::string, User, std::less<>> users_;
};

// User names: 1..64 of [A-Za-z0-9._@+-], so they are safe in tokens, logs
// and headers.
bool valid_user_name(std::string_view name);

}  // namespace twostep
