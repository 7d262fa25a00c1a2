// Duo's answers are attacker input too (a compromised network path, a
// misbehaving service): the three parsers never crash, and what they let
// through is bounded and clean.
#include "core/duo.h"

#include "fuzz.h"

using namespace twostep;

namespace {

void check_text(const std::string &text)
{
    CHECK(text.size() <= duo::max_text_bytes);
    for (unsigned char c : text) {
        CHECK(c >= 0x20 && c != 0x7f);
    }
}

void check_auth(const duo::AuthResult &r)
{
    check_text(r.status_msg);
    check_text(r.message);
    if (r.failure != duo::Failure::none) {
        CHECK(r.result.empty() && r.txid.empty() && r.status.empty());
        return;
    }
    CHECK(r.txid.size() <= duo::max_txid_bytes);
    for (char c : r.txid) {
        CHECK((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
              || (c >= '0' && c <= '9') || c == '-');
    }
    CHECK(r.result.empty() || r.result == "allow" || r.result == "deny"
          || r.result == "waiting");
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    if (size < 1) {
        return 0;
    }

    // The first byte picks the HTTP status, the rest is the body.
    static const long statuses[] = {200, 200, 200, 201, 400, 401, 429, 500};
    long status = statuses[data[0] % 8];
    std::string_view body = fuzz::view(data + 1, size - 1);

    duo::PreauthResult pre = duo::parse_preauth(status, body);
    check_text(pre.status_msg);
    check_text(pre.message);
    if (pre.failure != duo::Failure::none) {
        CHECK(pre.result.empty() && pre.methods == 0);
    } else {
        CHECK(pre.result == "auth" || pre.result == "allow"
              || pre.result == "deny" || pre.result == "enroll");
        CHECK((pre.methods & ~all_methods) == 0);
        CHECK(status >= 200 && status < 300);
    }

    check_auth(duo::parse_auth(status, body));

    duo::AuthResult st = duo::parse_auth_status(status, body);
    check_auth(st);
    if (st.failure == duo::Failure::none) {
        CHECK(!st.result.empty());
    }

    return 0;
}
