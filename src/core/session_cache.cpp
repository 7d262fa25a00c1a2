#include "session_cache.h"

#include <openssl/crypto.h>

#include <functional>

namespace twostep {

SessionCache::SessionCache(std::size_t slots) : slots_(slots ? slots : 1) {}

std::size_t SessionCache::slot_of(std::string_view token) const
{
    return std::hash<std::string_view>{}(token) % slots_.size();
}

const Session *SessionCache::find(std::string_view token,
                                  std::int64_t now) const
{
    const Slot &slot = slots_[slot_of(token)];

    if (slot.token.empty() || slot.token.size() != token.size()
        || CRYPTO_memcmp(slot.token.data(), token.data(), token.size()) != 0
        || slot.session.expires <= now)
    {
        return nullptr;
    }

    return &slot.session;
}

void SessionCache::put(std::string_view token, const Session &session)
{
    Slot &slot = slots_[slot_of(token)];
    slot.token.assign(token.data(), token.size());
    slot.session = session;
}

}  // namespace twostep
