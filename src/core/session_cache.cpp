#include "session_cache.h"

#include <cstring>
#include <functional>

namespace twostep {

SessionCache::SessionCache(std::size_t slots) : slots_(slots ? slots : 1) {}

namespace {

// The slot comes from the token's tail, its MAC: random to anyone without
// the key, and hashing all of a cookie costs more than the rest of the
// signed-in request's check. Tokens made to collide only push each other
// out of the cache (the next request verifies the MAC again).
std::size_t slot_hash(std::string_view token)
{
    constexpr std::size_t tail = 16;
    return std::hash<std::string_view>{}(
        token.size() > tail ? token.substr(token.size() - tail) : token);
}

// Constant time like CRYPTO_memcmp (no early exit, so a cached cookie
// cannot be found byte by byte through timing), eight bytes a step:
// every signed-in request compares its whole cookie.
bool same_token(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    std::uint64_t diff = 0;
    std::size_t i = 0;
    for (; i + 8 <= a.size(); i += 8) {
        std::uint64_t x, y;
        std::memcpy(&x, a.data() + i, 8);
        std::memcpy(&y, b.data() + i, 8);
        diff |= x ^ y;
    }
    for (; i < a.size(); i++)
        diff |= static_cast<unsigned char>(a[i] ^ b[i]);
    return diff == 0;
}

}  // namespace

SessionCache::Slot &SessionCache::slot_of(std::string_view token)
{
    return slots_[slot_hash(token) % slots_.size()];
}

bool SessionCache::holds(const Slot &slot, std::string_view token,
                         std::int64_t now)
{
    return slot.session && same_token(slot.token, token)
        && slot.session->expires > now;
}

std::shared_ptr<const Session> SessionCache::verified(const KeyRing &keys,
                                                      SharedState &state,
                                                      std::string_view token,
                                                      std::int64_t now)
{
    // Read before the look-up: a revocation after this read moves the
    // epoch again, so the next request looks.
    std::uint64_t epoch = state.revocation_epoch();
    Slot &slot = slot_of(token);

    if (!holds(slot, token, now)) {
        auto decoded = decode_session(keys, token, now);
        if (!decoded) {
            return nullptr;
        }
        put(token, *decoded);
    }

    if (!slot.checked || slot.epoch != epoch) {
        if (session_revoked(state, *slot.session, now)) {
            return nullptr;
        }
        slot.checked = true;
        slot.epoch = epoch;
    }

    return slot.session;
}

const Session *SessionCache::find(std::string_view token,
                                  std::int64_t now) const
{
    const Slot &slot = slots_[slot_hash(token) % slots_.size()];
    return holds(slot, token, now) ? slot.session.get() : nullptr;
}

void SessionCache::put(std::string_view token, const Session &session)
{
    Slot &slot = slot_of(token);
    slot.token.assign(token.data(), token.size());
    slot.session = std::make_shared<const Session>(session);
    slot.checked = false;
}

}  // namespace twostep
