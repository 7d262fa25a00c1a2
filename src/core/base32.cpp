// RFC 4648 section 6 base32.
#include "base32.h"

#include <cstdint>

namespace twostep {

namespace {

constexpr char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

// The 5-bit value of `c`, or -1.
int digit_value(char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a';
    if (c >= '2' && c <= '7')
        return c - '2' + 26;
    return -1;
}

}  // namespace

std::optional<std::string> base32_decode(std::string_view text)
{
    std::string out;
    out.reserve(text.size() * 5 / 8);
    std::uint32_t buffer = 0;
    int bits = 0;
    bool padding = false;

    for (char c : text) {
        if (c == ' ')
            continue;
        if (c == '=') {
            padding = true;
            continue;
        }
        int v = digit_value(c);
        if (v < 0 || padding)  // data after '=' is not trailing padding
            return std::nullopt;
        buffer = (buffer << 5) | static_cast<std::uint32_t>(v);
        bits += 5;
        if (bits >= 8) {
            bits -= 8;
            out.push_back(static_cast<char>((buffer >> bits) & 0xff));
        }
        buffer &= (1u << bits) - 1;
    }
    // Leftover bits must be zero padding (RFC 4648 section 3.5), and a
    // leftover of 5 bits or more is a whole unused character: malformed.
    if (bits >= 5 || buffer != 0)
        return std::nullopt;
    return out;
}

std::string base32_encode(std::string_view bytes)
{
    std::string out;
    out.reserve((bytes.size() * 8 + 4) / 5);
    std::uint32_t buffer = 0;
    int bits = 0;

    for (char c : bytes) {
        buffer = (buffer << 8) | static_cast<unsigned char>(c);
        bits += 8;
        while (bits >= 5) {
            bits -= 5;
            out.push_back(alphabet[(buffer >> bits) & 0x1f]);
        }
        buffer &= (1u << bits) - 1;
    }
    if (bits > 0)
        out.push_back(alphabet[(buffer << (5 - bits)) & 0x1f]);
    return out;
}

}  // namespace twostep
