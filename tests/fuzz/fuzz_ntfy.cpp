// ntfy's answers to a publish, and the number typed on the approval page:
// the parser never crashes and lets through only a clean id; only the one
// right number approves.
#include <string>

#include "core/ntfy.h"

#include "fuzz.h"

using namespace twostep;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    if (size < 1) {
        return 0;
    }
    // The first byte picks the HTTP status and the expected number.
    static const long statuses[] = {200, 200, 200, 201, 400, 403, 429, 500};
    long status = statuses[data[0] % 8];
    int expected = 10 + data[0] % 90;
    std::string_view body = fuzz::view(data + 1, size - 1);

    ntfy::Result r = ntfy::parse_publish(status, body);
    CHECK(r.message.size() <= ntfy::max_text_bytes);
    for (unsigned char c : r.message) {
        CHECK(c >= 0x20 && c != 0x7f);
    }
    if (r.failure != ntfy::Failure::none) {
        CHECK(r.id.empty());
    } else {
        CHECK(status >= 200 && status < 300);
        CHECK(ntfy::valid_topic(r.id));
    }

    ntfy::Match m = ntfy::check_match(expected, body);
    if (m == ntfy::Match::approve) {
        std::string want = std::to_string(expected);
        CHECK(body.find(want) != std::string_view::npos);
        CHECK(body.find_first_not_of(" " + want) == std::string_view::npos);
    }
    return 0;
}
