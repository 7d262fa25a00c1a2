// Safe edits of the users file (user_store.h), for twostep-user and the
// self-service pages: the JSON document is edited in place, so members this
// code does not know about are kept, and written back atomically.
//
//   std::string error;
//   auto file = StoreFile::open("/etc/nginx/twostep/users.json", error);
//   if (!file || !file->set_phone("alice", "+15551234567", error)
//       || !file->commit(error)) { report(error); }
//
// open() takes an exclusive flock(2) on the sibling "<path>.lock" and reads
// the file under it; commit() (or destroying the object) releases it. So
// concurrent writers - the tool and nginx workers - take turns, and each
// edits what the one before it wrote: no update is lost. The lock file is
// never removed: a writer holding a lock on an unlinked file would not
// exclude the next one.
//
// commit() writes a temporary file in the same directory, fsyncs it, renames
// it over the store and fsyncs the directory, so a reader (nginx loading the
// store at reload) sees the old file or the new one, never a mix, and a
// crash loses at most the edit in progress. The new file keeps the old
// one's mode, and its owner and group where the writer may set them (root
// may; anyone may keep their own); a new store is 0600. A file that does
// not parse, or that UserStore::load would refuse, is reported by open()
// and never replaced.
//
// Blocking (flock, fsync): in nginx, call this from the thread pool only.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "methods.h"
#include "totp.h"
#include "user_store.h"

namespace twostep {

// A key as list() tells it: its name, id and when it was added.
struct KeySummary {
    std::string id;          // base64url credential id
    std::string name;
    std::int64_t created = 0;
    std::uint32_t sign_count = 0;
    const char *algorithm = "";  // "ES256", "RS256", "EdDSA"
};

// What set_sign_count() found.
enum class CounterUpdate {
    saved,      // the new count is stored (or both were 0: no counter)
    went_back,  // not above the stored one: possibly a cloned key
                // (WebAuthn Level 2 §6.1.1); nothing changed
    no_key,     // the user or the key is gone
};

// What list() tells about a user: never a secret, a hash or a full phone
// number.
struct UserSummary {
    std::string name;
    bool password = false;
    bool totp = false;
    MethodSet methods = 0;                 // User::methods()
    std::string phone_masked;              // mask_phone(); empty: no phone
    std::optional<Method> default_method;
    std::size_t recovery_codes = 0;        // unused codes left
    std::vector<KeySummary> keys;          // security keys and passkeys
};

class StoreFile {
public:
    // Locks and reads `path`. With `create`, a missing file is first
    // written as {"users": {}} (mode 0600). nullopt and `error` (starting
    // with the file name) if the file is missing, unreadable, not valid
    // JSON or not a valid store, or the lock cannot be taken.
    static std::optional<StoreFile> open(const std::string &path,
                                         std::string &error,
                                         bool create = false);

    StoreFile(StoreFile &&) noexcept;
    StoreFile &operator=(StoreFile &&) noexcept;
    ~StoreFile();  // releases the lock; uncommitted edits are dropped

    // The file written: `path` with symbolic links resolved.
    const std::string &path() const;
    bool has_user(std::string_view name) const;

    // Every edit below is checked with the rules of UserStore::parse before
    // it is made; on failure the document is unchanged and `error` says why
    // (naming the user and member as nginx -t would). Editing a user that
    // does not exist fails with `no user "NAME"`.

    // A new user with a crypt(3) hash (supported_password_hash()), or
    // without a password if `password_hash` is empty (twostep_identity
    // only); refuses an existing name.
    bool add_user(std::string_view name, std::string_view password_hash,
                  std::string &error);
    bool set_password(std::string_view name, std::string_view password_hash,
                      std::string &error);
    bool remove_user(std::string_view name, std::string &error);

    // Replaces the user's TOTP credential: the plain "BASE32" form when
    // algorithm, digits and period are the defaults, else the object form.
    bool set_totp(std::string_view name, const TotpParams &params,
                  std::string &error);
    bool set_totp(std::string_view name, std::string_view base32_secret,
                  std::string &error);

    // Drops the user's authenticator app secret; the rest stays.
    bool remove_totp(std::string_view name, std::string &error);

    // "+E164" (valid_phone()); an empty `phone` removes the number.
    bool set_phone(std::string_view name, std::string_view phone,
                   std::string &error);
    // An ntfy topic (ntfy::valid_topic()) for push; empty removes it.
    bool set_ntfy_topic(std::string_view name, std::string_view topic,
                        std::string &error);
    bool set_default(std::string_view name, Method method,
                     std::string &error);

    // "Forget remembered devices": device cookies issued up to `now` no
    // longer stand for the second step (User::devices_forgotten).
    bool forget_devices(std::string_view name, std::int64_t now,
                        std::string &error);

    // A reset: drops "totp", "phone", "ntfy_topic", "default", "recovery"
    // and "webauthn" (the user enrolls again); password and other members
    // stay.
    bool clear_second_factors(std::string_view name, std::string &error);

    // Replaces the user's recovery hashes (recovery_hash() of each code).
    bool set_recovery(std::string_view name,
                      const std::vector<std::string> &hashes,
                      std::string &error);

    // A security key or passkey (WebAuthn Level 2 §7.1 step 22): refused
    // when its credential id is registered to anyone already, or the user
    // has max_webauthn_keys.
    bool add_key(std::string_view name, const WebauthnKey &key,
                 std::string &error);
    // `key` is a credential id or a key's name (refused when two keys
    // share it: then the id says which).
    bool rename_key(std::string_view name, std::string_view key,
                    std::string_view new_name, std::string &error);
    bool remove_key(std::string_view name, std::string_view key,
                    std::string &error);
    // After a verified assertion: stores `count` if it is above the stored
    // one (under the file's lock, so two workers cannot both accept one
    // count); both 0 means the key keeps no counter.
    CounterUpdate set_sign_count(std::string_view name, std::string_view id,
                                 std::uint32_t count, std::string &error);

    // True, and the code's hash removed from the document, if `code` is
    // one of the user's unused recovery codes; commit() makes the use
    // final. Every stored hash is compared, in constant time (OWASP ASVS
    // 2.6.1: a look-up secret is usable once).
    bool use_recovery_code(std::string_view name, std::string_view code);

    // The users as they would be loaded now (edits included), by name.
    std::vector<UserSummary> list() const;

    // The parsed user as UserStore would load it now, or nullopt.
    std::optional<User> user(std::string_view name) const;

    // Writes the document if it was edited, then releases the lock; the
    // object can do nothing more afterwards. On failure the file on disk is
    // unchanged and `error` says why.
    bool commit(std::string &error);

private:
    struct State;
    explicit StoreFile(std::unique_ptr<State> state);
    bool set_text(std::string_view name, const char *member,
                  std::string_view value, const char *what,
                  std::string &error);
    std::unique_ptr<State> s_;
};

// "+4*******89": the first and the last two digits, '*' for the others.
std::string mask_phone(std::string_view phone);

}  // namespace twostep
