// Session cookies one worker has verified recently: a cookie seen again is
// neither decoded nor its MAC recomputed, so a signed-in request costs
// about what an unprotected one does.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "session.h"

namespace twostep {

class SessionCache {
public:
    explicit SessionCache(std::size_t slots = 4096);

    // The session `token` decoded to when it was verified, if it is still
    // in the cache and not expired at `now`. The token is compared in
    // constant time. Revocation is not the cache's business: callers check
    // it on every request.
    const Session *find(std::string_view token, std::int64_t now) const;

    // Remembers a token that decode_session() accepted (same key ring).
    void put(std::string_view token, const Session &session);

private:
    struct Slot {
        std::string token;
        Session session;
    };

    std::size_t slot_of(std::string_view token) const;

    std::vector<Slot> slots_;
};

}  // namespace twostep
