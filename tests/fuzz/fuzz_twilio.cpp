// What Twilio sends is attacker input too: its answers (a misbehaving
// service or network path) and, above all, the keypress callback, which
// anyone can POST. The parsers never crash, only a correctly signed
// callback verifies, and what they let through is bounded and clean. The
// same bytes are also tried as a phone number a user typed.
#include <string>

#include "core/form.h"
#include "core/phone.h"
#include "core/twilio.h"

#include "fuzz.h"

using namespace twostep;

namespace {

constexpr std::string_view account = "AC0123456789abcdef0123456789abcdef";
constexpr std::string_view token = "f00dfeedf00dfeedf00dfeedf00dfeed";
constexpr std::string_view url = "https://login.example.com/twostep/call?t=x";

bool sid_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
        || (c >= '0' && c <= '9') || c == '-';
}

void check_result(const twilio::Result &r, long status)
{
    CHECK(r.message.size() <= twilio::max_text_bytes);
    for (unsigned char c : r.message) {
        CHECK(c >= 0x20 && c != 0x7f);
    }
    if (r.failure != twilio::Failure::none) {
        CHECK(r.sid.empty() && r.status.empty());
        return;
    }
    CHECK(status >= 200 && status < 300);
    CHECK(!r.sid.empty() && r.sid.size() <= 64);
    for (char c : r.sid) {
        CHECK(sid_char(c));
    }
    CHECK(!r.status.empty() && r.status.size() <= 32);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t *data,
                                      std::size_t size)
{
    if (size < 1) {
        return 0;
    }
    // The first byte picks the HTTP status, the rest is the body.
    static const long statuses[] = {200, 201, 201, 201, 400, 401, 429, 500};
    long status = statuses[data[0] % 8];
    std::string_view body = fuzz::view(data + 1, size - 1);

    check_result(twilio::parse_message(status, body), status);
    check_result(twilio::parse_call(status, body), status);

    std::string error;
    if (auto form = parse_form(body, error)) {
        twilio::Keypress k = twilio::parse_keypress(*form, account);
        if (k.answer != twilio::Answer::malformed) {
            CHECK(field(*form, "AccountSid") == account);
            CHECK(!k.call_sid.empty() && k.call_sid.size() <= 64);
            CHECK(field(*form, "Digits").size() <= 1);
            CHECK((k.answer == twilio::Answer::approve)
                  == (field(*form, "Digits") == "#"));
        } else {
            CHECK(k.call_sid.empty() && !k.error.empty());
        }
        // The fuzzer cannot forge a signature: a header it made up never
        // verifies, and the real one always does.
        std::string sig = twilio::signature(token, url, *form);
        CHECK(twilio::signature_ok(token, url, *form, sig));
        std::string_view forged = field(*form, "Signature");
        CHECK(forged == sig || !twilio::signature_ok(token, url, *form,
                                                     forged));
    }

    if (auto phone = normalize_phone(body)) {
        CHECK(phone->size() >= 9 && phone->size() <= 16);
        CHECK((*phone)[0] == '+' && (*phone)[1] != '0');
        CHECK(normalize_phone(*phone) == phone);
        std::string masked = phone_hint(*phone);
        // Only the country code and the last two digits stay visible.
        std::size_t shown = 0;
        for (char c : masked) {
            shown += c >= '0' && c <= '9';
        }
        CHECK(shown >= 3 && shown <= 5);
        CHECK(masked.substr(masked.size() - 2) == phone->substr(
                  phone->size() - 2));
    }
    return 0;
}
