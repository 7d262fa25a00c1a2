// Shared by the libFuzzer targets: the fixed key and clock the cookie and
// code targets use, and CHECK(), which aborts (a libFuzzer crash, input
// saved) when an invariant does not hold.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

namespace fuzz {

// 32 bytes (twostep::min_key_bytes). The committed cookie seeds are minted
// with this key by tests/fuzz/mint_seeds.cpp.
constexpr std::string_view test_key = "0123456789abcdef0123456789abcdef";

// "Now" for every target: 2023-11-14T22:13:20Z. Seed cookies expire after it.
constexpr std::int64_t now = 1700000000;

inline std::string_view view(const std::uint8_t *data, std::size_t size)
{
    return std::string_view(reinterpret_cast<const char *>(data), size);
}

}  // namespace fuzz

#define CHECK(cond)                                                         \
    do {                                                                    \
        if (!(cond)) {                                                      \
            std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, \
                         __LINE__, #cond);                                  \
            std::abort();                                                   \
        }                                                                   \
    } while (0)
