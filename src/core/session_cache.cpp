#include "session_cache.h"

#include <openssl/crypto.h>

#include <functional>

namespace twostep {

SessionCache::SessionCache(std::size_t slots) : slots_(slots ? slots : 1) {}

SessionCache::Slot &SessionCache::slot_of(std::string_view token)
{
    return slots_[std::hash<std::string_view>{}(token) % slots_.size()];
}

bool SessionCache::holds(const Slot &slot, std::string_view token,
                         std::int64_t now)
{
    return slot.session && slot.token.size() == token.size()
        && CRYPTO_memcmp(slot.token.data(), token.data(), token.size()) == 0
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
    const Slot &slot =
        slots_[std::hash<std::string_view>{}(token) % slots_.size()];
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
