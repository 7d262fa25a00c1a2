// application/x-www-form-urlencoded bodies and query strings.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace twostep {

using Fields = std::map<std::string, std::string, std::less<>>;

// Strict: a repeated name, a bad %-escape, a NUL byte (raw or %00), a name
// longer than 64 bytes, a value longer than 4096 bytes or more than 32
// fields gives nullopt and a reason in `error`. '+' decodes to a space.
std::optional<Fields> parse_form(std::string_view body, std::string &error);

// Percent-encodes everything outside RFC 3986 unreserved characters.
std::string url_encode(std::string_view text);

// The value of one hexadecimal digit (either case), or -1.
int hex_digit(char c);

// The value of `name` or an empty view.
std::string_view field(const Fields &fields, std::string_view name);

// How many cookies named exactly `name` one Cookie header carries (names
// compare octet by octet, RFC 6265 section 5.4, unlike nginx's $cookie_*),
// and in `value` the last one's value, without the whitespace around it
// (quotes are kept: no token of ours has any, so a quoted one is refused).
std::size_t find_cookie(std::string_view header, std::string_view name,
                        std::string_view &value);

}  // namespace twostep
