// Session cookies one worker has verified recently: a cookie seen again is
// neither decoded nor its MAC recomputed, and not looked up in the shared
// state unless a session was revoked since, so a signed-in request costs
// about what an unprotected one does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "guard.h"
#include "keyring.h"
#include "session.h"
#include "user_store.h"

namespace twostep {

class SessionCache {
public:
    // `slots` is rounded up to a power of two.
    explicit SessionCache(std::size_t slots = 4096);

    // The session `token` stands for if it verifies under `keys`, has not
    // expired at `now`, is not revoked in `state`, and its user is in
    // `users` with the password and authenticator the session was made
    // with (ASVS 3.3.3: a new password ends the sessions before it);
    // nullptr otherwise, and always without `users`. A token seen before
    // costs a constant-time comparison; only when
    // state.revocation_epoch() moved since it was last found not revoked,
    // a look-up in `state`; only when `users` is another store than last
    // time (a reload), a look-up of the user; no allocation either way.
    // The result is the cache's own pointer, valid until the next
    // verified() or put(): a caller that keeps the session longer copies
    // it (the copy outlives the slot being reused); one that only decides,
    // like the access check, spends no atomic reference count on it.
    const std::shared_ptr<const Session> &verified(const KeyRing &keys,
                                                   SharedState &state,
                                                   const UserStore *users,
                                                   std::string_view token,
                                                   std::int64_t now);

    // The session `token` decoded to when it was verified, if it is still
    // in the cache and not expired at `now`. The token is compared in
    // constant time. Says nothing about revocation.
    const Session *find(std::string_view token, std::int64_t now) const;

    // Remembers a token that decode_session() accepted (same key ring).
    void put(std::string_view token, const Session &session);

private:
    struct Slot {
        std::string token;
        std::shared_ptr<const Session> session;
        bool checked = false;         // found not revoked at `epoch`
        std::uint64_t epoch = 0;
        std::uint64_t user_found = 0; // generation() of the store that
                                      // had the user, credentials alike
    };

    Slot &slot_of(std::string_view token);
    static bool holds(const Slot &slot, std::string_view token,
                      std::int64_t now);

    std::vector<Slot> slots_;
};

}  // namespace twostep
