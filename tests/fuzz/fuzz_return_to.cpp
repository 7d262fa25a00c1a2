// safe_return_to: whatever it accepts must stay on this server, checked
// here with independent code (no shared helpers with return_to.cpp).
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/return_to.h"
#include "fuzz.h"

using namespace twostep;

namespace {

int hex(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    c = static_cast<char>(c | 0x20);
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

// One round of percent-decoding, leaving malformed escapes alone.
std::string unescape(const std::string &s)
{
    std::string out;
    for (std::size_t i = 0; i < s.size(); i++) {
        if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0
            && hex(s[i + 2]) >= 0) {
            out.push_back(static_cast<char>(hex(s[i + 1]) * 16
                                            + hex(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

bool leaves_origin(const std::string &path)
{
    return path.size() >= 2 && (path[1] == '/' || path[1] == '\\');
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    std::string_view target = fuzz::view(data, size);
    if (!safe_return_to(target))
        return 0;

    CHECK(target.size() >= 1 && target.size() <= 2048);
    CHECK(target[0] == '/');
    CHECK(!leaves_origin(std::string(target)));
    for (char ch : target) {
        auto c = static_cast<unsigned char>(ch);
        CHECK(c >= 0x21 && c < 0x7f);
        CHECK(c != '\\');
    }

    // However often a proxy percent-decodes the path, it stays a path on
    // this origin, and decoding settles (no endless %25 nesting).
    std::string path(target.substr(0, target.find_first_of("?#")));
    bool settled = false;
    for (int round = 0; round < 8 && !settled; round++) {
        CHECK(!leaves_origin(path));
        for (char ch : path) {
            auto c = static_cast<unsigned char>(ch);
            CHECK(c >= 0x20 && c != 0x7f);
        }
        std::string next = unescape(path);
        settled = next == path;
        path = std::move(next);
    }
    CHECK(settled);
    return 0;
}
