#include "session_cache.h"

#include <algorithm>
#include <cstring>

#include <openssl/crypto.h>

namespace twostep {

namespace {

// A power of two, so that a slot is a mask away, not a division.
std::size_t round_up(std::size_t n)
{
    std::size_t p = 1;
    while (p < n)
        p <<= 1;
    return p;
}

// The slot comes from the token's tail, its MAC (base64url): random to
// anyone without the key, so its last eight characters, spread over the
// bits by one multiplication (Fibonacci hashing: base64url leaves the
// bytes' high bits alike), are as good a hash as any, and hashing all of a
// cookie costs more than the rest of the signed-in request's check.
// Tokens made to collide only push each other out of the cache (the next
// request verifies the MAC again).
std::size_t slot_hash(std::string_view token)
{
    std::uint64_t tail = 0;
    std::size_t n = std::min(token.size(), sizeof tail);
    std::memcpy(&tail, token.data() + token.size() - n, n);
    return static_cast<std::size_t>((tail * 0x9e3779b97f4a7c15u) >> 32);
}

// Constant time like CRYPTO_memcmp (no early exit, so a cached cookie
// cannot be found byte by byte through timing), sixteen bytes a step in a
// vector register (GCC's and Clang's vector extension: SSE2 on x86-64,
// NEON on arm64), the last step overlapping the one before: every
// signed-in request compares its whole cookie, about two hundred bytes.
bool same_token(std::string_view a, std::string_view b)
{
    typedef std::uint64_t u64x2 __attribute__((vector_size(16)));
    constexpr std::size_t step = sizeof(u64x2);

    if (a.size() != b.size())
        return false;
    if (a.size() < step)
        return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;

    u64x2 diff = {0, 0};
    auto differ = [&](std::size_t at) {
        u64x2 x, y;
        std::memcpy(&x, a.data() + at, step);
        std::memcpy(&y, b.data() + at, step);
        diff |= x ^ y;
    };
    for (std::size_t i = 0; i + step < a.size(); i += step)
        differ(i);
    differ(a.size() - step);
    return (diff[0] | diff[1]) == 0;
}

}  // namespace

SessionCache::SessionCache(std::size_t slots) : slots_(round_up(slots)) {}

SessionCache::Slot &SessionCache::slot_of(std::string_view token)
{
    return slots_[slot_hash(token) & (slots_.size() - 1)];
}

bool SessionCache::holds(const Slot &slot, std::string_view token,
                         std::int64_t now)
{
    return slot.session && same_token(slot.token, token)
        && slot.session->expires > now;
}

const std::shared_ptr<const Session> &
SessionCache::verified(const KeyRing &keys, SharedState &state,
                       const UserStore *users, std::string_view token,
                       std::int64_t now)
{
    static const std::shared_ptr<const Session> none;

    if (users == nullptr) {
        return none;
    }

    // Read before the look-up: a revocation after this read moves the
    // epoch again, so the next request looks.
    std::uint64_t epoch = state.revocation_epoch();
    Slot &slot = slot_of(token);

    if (!holds(slot, token, now)) {
        auto decoded = decode_session(keys, token, now);
        if (!decoded) {
            return none;
        }
        put(token, *decoded);
    }

    if (!slot.checked || slot.epoch != epoch) {
        if (session_revoked(state, *slot.session, now)) {
            return none;
        }
        slot.checked = true;
        slot.epoch = epoch;
    }

    if (slot.user_found != users->generation()) {
        const User *user = users->find(slot.session->user);
        if (user == nullptr
            || user->credential_tag != slot.session->credentials) {
            return none;
        }
        slot.user_found = users->generation();
    }

    return slot.session;
}

const Session *SessionCache::find(std::string_view token,
                                  std::int64_t now) const
{
    const Slot &slot = slots_[slot_hash(token) & (slots_.size() - 1)];
    return holds(slot, token, now) ? slot.session.get() : nullptr;
}

void SessionCache::put(std::string_view token, const Session &session)
{
    Slot &slot = slot_of(token);
    slot.token.assign(token.data(), token.size());
    slot.session = std::make_shared<const Session>(session);
    slot.checked = false;
    slot.user_found = 0;
}

}  // namespace twostep
