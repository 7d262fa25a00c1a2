#include "return_to.h"

#include <cstddef>
#include <string>
#include <utility>

#include "form.h"

namespace twostep {

namespace {

constexpr std::size_t max_return_to_bytes = 2048;
// Deeper nesting than "%25252F" has no honest use.
constexpr int max_decode_rounds = 4;

bool valid_escape(std::string_view s, std::size_t i)
{
    return s.size() - i >= 3 && hex_digit(s[i + 1]) >= 0
        && hex_digit(s[i + 2]) >= 0;
}

// One round of percent-decoding; malformed escapes are kept as they are.
std::string percent_decode(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); i++) {
        if (s[i] == '%' && valid_escape(s, i)) {
            out.push_back(static_cast<char>(hex_digit(s[i + 1]) * 16
                                            + hex_digit(s[i + 2])));
            i += 2;
        } else {
            out.push_back(s[i]);
        }
    }
    return out;
}

}  // namespace

// An open redirect check (OWASP ASVS 5.1.5): the target must stay a path on
// this origin however it is read. Browsers treat '\' as '/' and drop tabs
// and newlines (WHATWG URL), and a proxy or application on the way may
// percent-decode once or more, so the path is also checked after repeated
// decoding. Fragments ("/a#b") are accepted: they are part of where the
// visitor was going, and a fragment cannot change the origin.
bool safe_return_to(std::string_view target)
{
    if (target.empty() || target.size() > max_return_to_bytes
        || target[0] != '/') {
        return false;
    }
    for (std::size_t i = 0; i < target.size(); i++) {
        auto c = static_cast<unsigned char>(target[i]);
        if (c < 0x21 || c >= 0x7f || c == '\\') {
            return false;
        }
        if (c == '%' && !valid_escape(target, i)) {
            return false;
        }
    }

    std::string path(target.substr(0, target.find_first_of("?#")));
    for (int round = 0;; round++) {
        if (path.size() >= 2 && (path[1] == '/' || path[1] == '\\')) {
            return false;
        }
        for (char ch : path) {
            auto c = static_cast<unsigned char>(ch);
            if (c < 0x20 || c == 0x7f) {
                return false;
            }
        }
        std::string decoded = percent_decode(path);
        if (decoded == path) {
            return true;
        }
        if (round == max_decode_rounds) {
            return false;
        }
        path = std::move(decoded);
    }
}

std::string same_origin_target(std::string_view url, std::string_view origin,
                               std::string_view portal)
{
    if (origin.empty() || url.size() <= origin.size()
        || url.compare(0, origin.size(), origin) != 0) {
        return {};
    }
    std::string_view target = url.substr(origin.size());
    if (!safe_return_to(target) || portal.empty()
        || target.compare(0, portal.size(), portal) == 0) {
        return {};
    }
    return std::string(target);
}

}  // namespace twostep
