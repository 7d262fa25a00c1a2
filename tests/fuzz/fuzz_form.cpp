// parse_form over a request body and over a query string (what follows the
// first '?' of a request target, as nginx hands $args to the portal).
// Accepted fields must respect the documented limits and survive
// url_encode() and parsing back unchanged.
#include <cstddef>
#include <cstdint>
#include <string>

#include "core/form.h"
#include "core/return_to.h"
#include "fuzz.h"

using namespace twostep;

namespace {

// Error texts never echo the input: one printable log line.
void check_error(const std::string &error)
{
    CHECK(!error.empty());
    for (char ch : error) {
        auto c = static_cast<unsigned char>(ch);
        CHECK(c >= 0x20 && c < 0x7f);
    }
}

void check_form(std::string_view text)
{
    std::string error;
    auto fields = parse_form(text, error);
    if (!fields) {
        check_error(error);
        return;
    }
    CHECK(fields->size() <= 32);
    std::string encoded;
    for (const auto &[name, value] : *fields) {
        CHECK(name.size() <= 64);
        CHECK(value.size() <= 4096);
        CHECK(name.find('\0') == std::string::npos);
        CHECK(value.find('\0') == std::string::npos);
        CHECK(field(*fields, name) == value);

        // One value on its own.
        std::string one_error;
        auto one = parse_form("v=" + url_encode(value), one_error);
        CHECK(one && one->size() == 1 && field(*one, "v") == value);

        if (!encoded.empty())
            encoded += '&';
        encoded += url_encode(name);
        encoded += '=';
        encoded += url_encode(value);
    }
    // The whole form, re-encoded.
    std::string again_error;
    auto again = parse_form(encoded, again_error);
    CHECK(again && *again == *fields);

    // What the portal does with a return_to field: must not crash.
    safe_return_to(field(*fields, "return_to"));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    std::string_view input = fuzz::view(data, size);
    check_form(input);  // as a body
    std::size_t q = input.find('?');
    if (q != std::string_view::npos)
        check_form(input.substr(q + 1));  // as the query of a target
    return 0;
}
