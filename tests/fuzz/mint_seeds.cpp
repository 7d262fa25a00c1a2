// Writes the cookie seeds of tests/fuzz/corpus/fuzz_cookie/, minted with
// the fuzz targets' fixed key and clock. Not part of `make fuzz`; rerun by
// hand if the token format changes (see tests/fuzz/README.md).
#include <cstdio>
#include <fstream>
#include <string>

#include "core/keyring.h"
#include "core/session.h"
#include "fuzz.h"

using namespace twostep;

namespace {

void write(const std::string &dir, const std::string &name,
           const std::string &text)
{
    std::ofstream out(dir + "/" + name, std::ios::binary);
    out << text;
    if (!out) {
        std::perror(name.c_str());
        std::exit(1);
    }
}

}  // namespace

int main(int argc, char **argv)
{
    if (argc != 2) {
        std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
        return 2;
    }
    std::string dir = argv[1];
    KeyRing keys;
    keys.add(fuzz::test_key);

    Session s;
    s.sid = "Qm9vdGg0Y29va2llNnNpZA";
    s.user = "alice";
    s.method = Method::totp;
    s.auth_time = fuzz::now - 60;
    s.expires = fuzz::now + 3600;
    s.issued = fuzz::now - 60;
    write(dir, "session", encode_session(keys, s));

    // Another user's payload under alice's MAC: must never decode.
    std::string token = encode_session(keys, s);
    std::string forged_payload = "3|Qm9vdGg0Y29va2llNnNpZA|root|totp|"
                                 "1699999940|1700003600||password|"
                                 "1699999940";
    write(dir, "session-forged",
          "s." + base64url_encode(forged_payload)
              + token.substr(token.rfind('.')));

    Session sms = s;
    sms.user = "bob.smith+x@example.org";
    sms.method = Method::sms;
    write(dir, "session-sms", encode_session(keys, sms));

    Session expired = s;
    expired.auth_time = fuzz::now - 7200;
    expired.expires = fuzz::now - 3600;
    write(dir, "session-expired", encode_session(keys, expired));

    PendingSignin fresh;
    fresh.nonce = "bm9uY2UtZm9yLWZ1enppbmc";
    fresh.expires = fuzz::now + 300;
    write(dir, "pending-none", encode_pending(keys, fresh));
    write(dir, "form-token", form_token(keys, fresh));

    PendingSignin passed = fresh;
    passed.user = "alice";
    passed.via = FirstFactor::password;
    write(dir, "pending-password", encode_pending(keys, passed));

    // Payloads, which the target also signs and decodes.
    write(dir, "payload-session", "1|Qm9vdGg0Y29va2llNnNpZA|alice|totp|"
                                  "1699999940|1700003600");
    write(dir, "payload-pending", "1|bm9uY2UtZm9yLWZ1enppbmc|alice|identity|"
                                  "1700000300||");
    write(dir, "payload-pending-push",
          "1|bm9uY2UtZm9yLWZ1enppbmc|alice|password|1700000300|"
          "RFVPLXR4aWQtMTIzNDU2|push");
    write(dir, "payload-pending-code",
          "2|bm9uY2UtZm9yLWZ1enppbmc|alice|password|1700000300|||totp|0|0|"
          "1700000600.c2lnbmVkLWNvZGU");
    write(dir, "payload-capability",
          "RFVPLXR4aWQtMTIzNDU2|alice|push|1700000120|203.0.113.7");

    Capability cap;
    cap.txid = "RFVPLXR4aWQtMTIzNDU2";
    cap.user = "alice";
    cap.method = Method::call;
    cap.expires = fuzz::now + 120;
    cap.address = "2001:db8::7";
    write(dir, "capability-call", capability_token(keys, cap));
    return 0;
}
