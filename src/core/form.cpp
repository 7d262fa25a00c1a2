#include "form.h"

#include <cstddef>

namespace twostep {

namespace {

constexpr std::size_t max_name_bytes = 64;
constexpr std::size_t max_value_bytes = 4096;
constexpr std::size_t max_fields = 32;

// Decodes one name or value; false on a bad escape or a NUL byte. Stops
// early once `limit` is passed, so a huge field costs no more than a small
// one.
bool decode(std::string_view in, std::size_t limit, std::string &out,
            bool &too_long, std::string &error)
{
    out.clear();
    too_long = false;
    for (std::size_t i = 0; i < in.size(); i++) {
        char c = in[i];
        if (c == '+') {
            c = ' ';
        } else if (c == '%') {
            int hi = in.size() - i >= 3 ? hex_digit(in[i + 1]) : -1;
            int lo = in.size() - i >= 3 ? hex_digit(in[i + 2]) : -1;
            if (hi < 0 || lo < 0) {
                error = "bad %-escape";
                return false;
            }
            c = static_cast<char>(hi * 16 + lo);
            i += 2;
        }
        if (c == '\0') {
            error = "NUL byte";
            return false;
        }
        if (out.size() == limit) {
            too_long = true;
            return true;
        }
        out.push_back(c);
    }
    return true;
}

bool unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
        || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
        || c == '~';
}

}  // namespace

// Follows the WHATWG urlencoded parser (empty pieces between '&' are
// skipped, a piece without '=' is a name with an empty value), but refuses
// what no browser sends: ambiguity that a second parser in front of or
// behind nginx could resolve differently (repeated names, bad escapes) and
// NUL bytes that C strings would truncate (OWASP ASVS 5.1.1, 5.1.3).
// Error texts never echo the input, so they are safe to log (ASVS 7.3.1).
std::optional<Fields> parse_form(std::string_view body, std::string &error)
{
    Fields fields;
    std::string name;
    std::string value;
    std::size_t count = 0;
    while (!body.empty()) {
        std::size_t amp = body.find('&');
        std::string_view piece = body.substr(0, amp);
        body = amp == std::string_view::npos ? std::string_view()
                                             : body.substr(amp + 1);
        if (piece.empty()) {
            continue;
        }
        if (++count > max_fields) {
            error = "more than " + std::to_string(max_fields) + " fields";
            return std::nullopt;
        }
        std::size_t eq = piece.find('=');
        std::string_view raw_name = piece.substr(0, eq);
        std::string_view raw_value = eq == std::string_view::npos
                                         ? std::string_view()
                                         : piece.substr(eq + 1);
        bool too_long = false;
        std::string why;
        if (!decode(raw_name, max_name_bytes, name, too_long, why)) {
            error = why + " in field " + std::to_string(count) + " name";
            return std::nullopt;
        }
        if (too_long) {
            error = "field " + std::to_string(count) + " name longer than "
                + std::to_string(max_name_bytes) + " bytes";
            return std::nullopt;
        }
        if (!decode(raw_value, max_value_bytes, value, too_long, why)) {
            error = why + " in field " + std::to_string(count) + " value";
            return std::nullopt;
        }
        if (too_long) {
            error = "field " + std::to_string(count) + " value longer than "
                + std::to_string(max_value_bytes) + " bytes";
            return std::nullopt;
        }
        if (!fields.emplace(name, value).second) {
            error = "field " + std::to_string(count) + " repeats a name";
            return std::nullopt;
        }
    }
    return fields;
}

std::size_t find_cookie(std::string_view header, std::string_view name,
                        std::string_view &value)
{
    auto blank = [](char c) { return c == ' ' || c == '\t'; };
    std::size_t found = 0;
    while (!header.empty()) {
        std::size_t end = header.find(';');
        std::string_view pair = header.substr(0, end);
        header.remove_prefix(end == std::string_view::npos ? header.size()
                                                           : end + 1);
        // The name, blanks, '=': a pair that is anything else is another
        // cookie (every signed-in request reads the header once, so one
        // pass).
        std::size_t i = 0;
        while (i < pair.size() && blank(pair[i]))
            i++;
        if (pair.compare(i, name.size(), name) != 0)
            continue;
        i += name.size();
        while (i < pair.size() && blank(pair[i]))
            i++;
        if (i == pair.size() || pair[i] != '=')
            continue;
        pair.remove_prefix(i + 1);
        while (!pair.empty() && blank(pair.front()))
            pair.remove_prefix(1);
        while (!pair.empty() && blank(pair.back()))
            pair.remove_suffix(1);
        value = pair;
        found++;
    }
    return found;
}

std::string url_encode(std::string_view text)
{
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size());
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        if (unreserved(c)) {
            out.push_back(ch);
        } else {
            out.push_back('%');
            out.push_back(hex[c >> 4]);
            out.push_back(hex[c & 0x0f]);
        }
    }
    return out;
}

int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

std::string_view field(const Fields &fields, std::string_view name)
{
    auto it = fields.find(name);
    return it == fields.end() ? std::string_view() : it->second;
}

}  // namespace twostep
