// Duo Auth API v2: the signer against Duo's published vectors, the request
// builders, and the parsers on Duo's answers and on everything malformed.
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <ctime>
#include <functional>
#include <numeric>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/duo.h"
#include "core/user_store.h"
#include "unit.h"

using namespace twostep;
using namespace twostep::duo;

#define ck_assert_failure(got, want) ck_assert_named(got, want, failure_name)

namespace {

// Vectors from Duo's official clients, which share them:
// duosecurity/duo_client_python tests/test_client.py (TestQueryParameters,
// TestCanonicalize.test_v2, TestSign.test_hmac_sha512; commit 05cb207c) and
// duosecurity/duo_client_java duo-client/src/test/java/com/duosecurity/
// client/HttpCanonRequestTest.java and HttpSignHMACTest.java.
const std::string vector_date = "Fri, 07 Dec 2012 17:18:00 -0000";
constexpr std::int64_t vector_time = 1354900680;
const std::string vector_skey = "gtdfxv9YgVBYcF6dl2Eq17KUQJN2PLM2ODVTkvoT";

const Params fuzz_values = {
    {"bar", u8"\u2815\uaaa3\u37cf\u4bb7\u36e9\ucc05\u668e\u8162\uc2bd\ua1f1"},
    {"baz", u8"\u0df3\u84bd\u5669\u9985\ub8a4\uac3a\u7be7\u6f69\u934a\ub91c"},
    {"foo", u8"\ud4ce\ud6d6\u7938\u50c0\u8a20\u8f15\ufd0b\u8024\u5cb3\uc655"},
    {"qux", u8"\u8b97\uc846-\u828e\u831a\uccca\ua2d4\u8c3e\ub8b2\u99be"},
};

const std::string fuzz_values_canon =
    "bar=%E2%A0%95%EA%AA%A3%E3%9F%8F%E4%AE%B7%E3%9B%A9%EC%B0%85%E6%9A%8E%E8"
    "%85%A2%EC%8A%BD%EA%87%B1&baz=%E0%B7%B3%E8%92%BD%E5%99%A9%E9%A6%85%EB%A"
    "2%A4%EA%B0%BA%E7%AF%A7%E6%BD%A9%E9%8D%8A%EB%A4%9C&foo=%ED%93%8E%ED%9B%"
    "96%E7%A4%B8%E5%83%80%E8%A8%A0%E8%BC%95%EF%B4%8B%E8%80%A4%E5%B2%B3%EC%9"
    "9%95&qux=%E8%AE%97%EC%A1%86-%E8%8A%8E%E8%8C%9A%EC%B3%8A%EA%8B%94%E8%B0"
    "%BE%EB%A2%B2%E9%A6%BE";

const Params fuzz_keys = {
    {u8"\u469a\u287b\u35d0\u8ef3\u6727\u502a\u0810\ud091\u00c8\uc170",
     u8"\u0f45\u1a76\u341a\u654c\uc23f\u9b09\uabe2\u8343\u1b27\u60d0"},
    {u8"\u7449\u7e4b\uccfb\u59ff\ufe5f\u83b7\uadcc\u900c\ucfd1\u7813",
     u8"\u8db7\u5022\u92d3\u42ef\u207d\u8730\uacfe\u5617\u0946\u4e30"},
    {u8"\u7470\u9314\u901c\u9eae\u40d8\u4201\u82d8\u8c70\u1d31\ua042",
     u8"\u17d9\u0ba8\u9358\uaadf\ua42a\u48be\ufb96\u6fe9\ub7ff\u32f3"},
    {u8"\uc2c5\u2c1d\u2620\u3617\u96b3F\u8605\u20e8\uac21\u5934",
     u8"\ufba9\u41aa\ubd83\u840b\u2615\u3e6e\u652d\ua8b5\ud56bU"},
};

const std::string fuzz_keys_canon =
    "%E4%9A%9A%E2%A1%BB%E3%97%90%E8%BB%B3%E6%9C%A7%E5%80%AA%E0%A0%90%ED%82%"
    "91%C3%88%EC%85%B0=%E0%BD%85%E1%A9%B6%E3%90%9A%E6%95%8C%EC%88%BF%E9%AC%"
    "89%EA%AF%A2%E8%8D%83%E1%AC%A7%E6%83%90&%E7%91%89%E7%B9%8B%EC%B3%BB%E5%"
    "A7%BF%EF%B9%9F%E8%8E%B7%EA%B7%8C%E9%80%8C%EC%BF%91%E7%A0%93=%E8%B6%B7%"
    "E5%80%A2%E9%8B%93%E4%8B%AF%E2%81%BD%E8%9C%B0%EA%B3%BE%E5%98%97%E0%A5%8"
    "6%E4%B8%B0&%E7%91%B0%E9%8C%94%E9%80%9C%E9%BA%AE%E4%83%98%E4%88%81%E8%8"
    "B%98%E8%B1%B0%E1%B4%B1%EA%81%82=%E1%9F%99%E0%AE%A8%E9%8D%98%EA%AB%9F%E"
    "A%90%AA%E4%A2%BE%EF%AE%96%E6%BF%A9%EB%9F%BF%E3%8B%B3&%EC%8B%85%E2%B0%9"
    "D%E2%98%A0%E3%98%97%E9%9A%B3F%E8%98%85%E2%83%A8%EA%B0%A1%E5%A4%B4=%EF%"
    "AE%A9%E4%86%AA%EB%B6%83%E8%90%8B%E2%98%95%E3%B9%AE%E6%94%AD%EA%A2%B5%E"
    "D%95%ABU";

const Params printable = {
    {"digits", "0123456789"},
    {"letters", "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"},
    {"punctuation", "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"},
    {"whitespace", "\t\n\x0b\x0c\r "},
};

const std::string printable_canon =
    "digits=0123456789&letters=abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQR"
    "STUVWXYZ&punctuation=%21%22%23%24%25%26%27%28%29%2A%2B%2C-.%2F%3A%3B%3"
    "C%3D%3E%3F%40%5B%5C%5D%5E_%60%7B%7C%7D~&whitespace=%09%0A%0B%0C%0D%20";

const std::string sha512_sig =
    "0508065035a03b2a1de2f453e629e791d180329e157f65df6b3e0f08299d4321e1c5c7"
    "a7c7ee6b9e5fc80d1fb6fbf3ad5eb7c44dd3b3985a02c37aca53ec3698";

// "Basic " + base64("test_ikey:" + sha512_sig), as test_hmac_sha512 builds
// its expected header.
const std::string sha512_auth =
    "Basic dGVzdF9pa2V5OjA1MDgwNjUwMzVhMDNiMmExZGUyZjQ1M2U2MjllNzkxZDE4MDMy"
    "OWUxNTdmNjVkZjZiM2UwZjA4Mjk5ZDQzMjFlMWM1YzdhN2M3ZWU2YjllNWZjODBkMWZiNm"
    "ZiZjNhZDVlYjdjNDRkZDNiMzk4NWEwMmMzN2FjYTUzZWMzNjk4";

const Credentials creds = {"DIWJ8X6AEYOR5OMC6TQ1",
                           "Zh5eGmUq9zpfQnyUIu5OL9iWoMMv5ZNmk3zLJ4Ep",
                           "api-XXXXXXXX.duosecurity.com"};
constexpr std::int64_t now = 1345570158;  // Tue, 21 Aug 2012 17:29:18

// A push to alice from 203.0.113.7 with `creds` at `now`, signed
// independently of this code by Python's hmac and base64 modules.
const std::string push_auth =
    "Basic RElXSjhYNkFFWU9SNU9NQzZUUTE6OGE5ZDM1NzZkZGUxNzhlODExYzgwMDAzYTJk"
    "YjYxMjE2NTg5NGI4NTIyMGFjNWFjMDc4MTRmNTEwYzMyNmE2YzIwZjk1OTNkZDE5YjQ2Yz"
    "AyNjRkODNhMDU1YWRlOGExYmFkMjMwNzIwZmQ0NmM3NGY2NzE1ZTRkYzZlZWNiMDY=";

// Every order of `params` gives `want`, as the Java client checks.
void check_canon_all_orders(const Params &params, const std::string &want)
{
    std::vector<std::size_t> order(params.size());
    std::iota(order.begin(), order.end(), 0);
    do {
        Params shuffled;
        for (std::size_t i : order)
            shuffled.push_back(params[i]);
        ck_assert_string_eq(canonical_params(shuffled), want);
    } while (std::next_permutation(order.begin(), order.end()));
}

std::string base64_decode(const std::string &text)
{
    std::string out(text.size(), '\0');
    int n = EVP_DecodeBlock(reinterpret_cast<unsigned char *>(out.data()),
                            reinterpret_cast<const unsigned char *>(
                                text.data()),
                            static_cast<int>(text.size()));
    ck_assert_int_ge(n, 0);
    std::size_t pad = 0;
    for (auto it = text.rbegin(); it != text.rend() && *it == '='; ++it)
        pad++;
    out.resize(static_cast<std::size_t>(n) - pad);
    return out;
}

std::string hmac_sha512_hex(const std::string &key, const std::string &data)
{
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    ck_assert_ptr_nonnull(HMAC(EVP_sha512(), key.data(),
                               static_cast<int>(key.size()),
                               reinterpret_cast<const unsigned char *>(
                                   data.data()),
                               data.size(), mac, &len));
    std::string hex;
    char buf[3];
    for (unsigned int i = 0; i < len; i++) {
        std::snprintf(buf, sizeof buf, "%02x", mac[i]);
        hex += buf;
    }
    return hex;
}

// The checks every built request must pass: dated `now`, params where the
// method puts them, and an Authorization header whose signature, checked
// with OpenSSL's one-shot HMAC rather than duo::sign, covers exactly what
// is sent, with the host lower-cased.
void check_request(const Request &r, const std::string &method,
                   const std::string &path, const std::string &params)
{
    ck_assert_string_eq(r.method, method);
    ck_assert_string_eq(r.path, path);
    ck_assert_string_eq(r.date, "Tue, 21 Aug 2012 17:29:18 -0000");
    ck_assert_string_eq(method == "GET" ? r.query : r.body, params);
    ck_assert_string_eq(method == "GET" ? r.body : r.query, "");
    const std::string prefix = "Basic ";
    ck_assert_string_eq(r.authorization.substr(0, prefix.size()), prefix);
    std::string user_pass =
        base64_decode(r.authorization.substr(prefix.size()));
    ck_assert_string_eq(user_pass.substr(0, creds.ikey.size() + 1),
                        creds.ikey + ":");
    std::string canon = r.date + "\n" + method
        + "\napi-xxxxxxxx.duosecurity.com\n" + path + "\n" + params;
    ck_assert_string_eq(user_pass.substr(creds.ikey.size() + 1),
                        hmac_sha512_hex(creds.skey, canon));
}

std::string ok(const std::string &response)
{
    return R"({"stat": "OK", "response": )" + response + "}";
}

}  // namespace

START_TEST(canon_params_published)
{
    check_canon_all_orders({}, "");
    check_canon_all_orders({{"realname", "First Last"}},
                           "realname=First%20Last");
    check_canon_all_orders({{"realname", "First Last"}, {"username", "root"}},
                           "realname=First%20Last&username=root");
    check_canon_all_orders(printable, printable_canon);
    check_canon_all_orders(fuzz_values, fuzz_values_canon);
    check_canon_all_orders(fuzz_keys, fuzz_keys_canon);
    check_canon_all_orders({{"foo_bar", "2"}, {"foo", "1"}},
                           "foo=1&foo_bar=2");
}
END_TEST

START_TEST(canon_params_order_and_encoding)
{
    // Sorted after encoding, as duo_client_python's canon_params does:
    // raw byte order would put "a0" before "a:".
    check_canon_all_orders({{"a0", "1"}, {"a:", "2"}}, "a%3A=2&a0=1");
    check_canon_all_orders({{"k", "b"}, {"k", "a"}, {"j", "c"}},
                           "j=c&k=a&k=b");
    ck_assert_string_eq(canonical_params({{"k", ""}}), "k=");
    ck_assert_string_eq(canonical_params({{"", "v"}}), "=v");
    ck_assert_string_eq(canonical_params({{"u", "a+b c~d"}}),
                        "u=a%2Bb%20c~d");
    ck_assert_string_eq(canonical_params({{"u", std::string("a\0b", 3)}}),
                        "u=a%00b");
    ck_assert_string_eq(canonical_params({{"u", "\xff\x80"}}), "u=%FF%80");
    ck_assert_string_eq(canonical_params({{"u", u8"j\u00f6rg"}}),
                        "u=j%C3%B6rg");
    ck_assert_string_eq(canonical_params({{"U", "1"}, {"u", "2"}}),
                        "U=1&u=2");
}
END_TEST

START_TEST(canonical_request_published)
{
    // TestCanonicalize.test_v2: method and host case-folded, path kept.
    ck_assert_string_eq(canonical_request(vector_date, "PoSt",
                                          "foO.BAr52.cOm", "/Foo/BaR2/qux",
                                          canonical_params(fuzz_keys)),
                        vector_date + "\nPOST\nfoo.bar52.com\n/Foo/BaR2/qux\n"
                            + fuzz_keys_canon);
    ck_assert_string_eq(canonical_request("D", "get", "127.0.0.1:9443",
                                          "/auth/v2/check", ""),
                        "D\nGET\n127.0.0.1:9443\n/auth/v2/check\n");
}
END_TEST

START_TEST(sign_published)
{
    Credentials c{"test_ikey", vector_skey, "foO.BAr52.cOm"};
    // HttpSignHMACTest.testSignHMACSHA512: the canonical string as given.
    std::string msg = vector_date + "\nPOST\nfoo.bar52.com\n/Foo/BaR2/qux\n"
        + fuzz_keys_canon;
    ck_assert_string_eq(sign(c, msg), sha512_sig);
    // RFC 4231 test case 2.
    Credentials jefe{"", "Jefe", ""};
    ck_assert_string_eq(
        sign(jefe, "what do ya want for nothing?"),
        "164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
        "9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737");
}
END_TEST

START_TEST(full_request_published)
{
    // duo_client_python TestSign.test_hmac_sha512 end to end: the same
    // params, mixed-case method and host, date and keys give its header.
    Credentials c{"test_ikey", vector_skey, "foO.BAr52.cOm"};
    Request r = make_request(c, "PoSt", "/Foo/BaR2/qux", fuzz_keys,
                             vector_time);
    ck_assert_string_eq(r.date, vector_date);
    ck_assert_string_eq(r.method, "POST");
    ck_assert_string_eq(r.path, "/Foo/BaR2/qux");
    ck_assert_string_eq(r.body, fuzz_keys_canon);
    ck_assert_string_eq(r.query, "");
    ck_assert_string_eq(r.authorization, sha512_auth);

    Request g = make_request(c, "get", "/x", {{"a", "b c"}}, vector_time);
    ck_assert_string_eq(g.method, "GET");
    ck_assert_string_eq(g.query, "a=b%20c");
    ck_assert_string_eq(g.body, "");
}
END_TEST

START_TEST(date_format)
{
    struct Case {
        std::int64_t t;
        const char *want;
    };
    const Case cases[] = {
        {0, "Thu, 01 Jan 1970 00:00:00 -0000"},
        {-1, "Wed, 31 Dec 1969 23:59:59 -0000"},
        {vector_time, "Fri, 07 Dec 2012 17:18:00 -0000"},
        {now, "Tue, 21 Aug 2012 17:29:18 -0000"},
        {951782400, "Tue, 29 Feb 2000 00:00:00 -0000"},
        {951868799, "Tue, 29 Feb 2000 23:59:59 -0000"},
        {1709208000, "Thu, 29 Feb 2024 12:00:00 -0000"},
        {4107542400, "Mon, 01 Mar 2100 00:00:00 -0000"},
        {2147483648, "Tue, 19 Jan 2038 03:14:08 -0000"},
        {253402300799, "Fri, 31 Dec 9999 23:59:59 -0000"},
    };
    for (const Case &c : cases)
        ck_assert_string_eq(rfc2822_date(c.t), c.want);

    // Against the C library over ~400 years of irregular steps.
    const std::int64_t step = 86400 * 37 + 4111;
    for (std::int64_t t = -2208988800; t < 10000000000; t += step) {
        std::time_t tt = static_cast<std::time_t>(t);
        std::tm tm{};
        ck_assert_ptr_nonnull(gmtime_r(&tt, &tm));
        char want[64];
        std::strftime(want, sizeof want, "%a, %d %b %Y %H:%M:%S -0000", &tm);
        ck_assert_string_eq(rfc2822_date(t), want);
    }
    // Far beyond time_t's usual range, still whole and well-formed.
    ck_assert_string_eq(rfc2822_date(INT64_MAX),
                        "Sun, 04 Dec 292277026596 15:30:07 -0000");
    std::string min = rfc2822_date(INT64_MIN);
    ck_assert_string_eq(min.substr(min.size() - 6), " -0000");
}
END_TEST

START_TEST(build_preauth)
{
    check_request(preauth(creds, "alice", now), "POST", "/auth/v2/preauth",
                  "username=alice");
    check_request(preauth(creds, u8"j.d\u00f6e+x@example.com", now), "POST",
                  "/auth/v2/preauth", "username=j.d%C3%B6e%2Bx%40example.com");
}
END_TEST

START_TEST(build_auth_async)
{
    Request push = auth_async(creds, "alice", Method::push, "203.0.113.7",
                              now);
    check_request(push, "POST", "/auth/v2/auth",
                  "async=1&device=auto&factor=push&ipaddr=203.0.113.7"
                  "&username=alice");
    ck_assert_string_eq(push.authorization, push_auth);
    check_request(auth_async(creds, "alice", Method::call, "2001:db8::1", now),
                  "POST", "/auth/v2/auth",
                  "async=1&device=auto&factor=phone&ipaddr=2001%3Adb8%3A%3A1"
                  "&username=alice");
    check_request(auth_async(creds, "alice", Method::push, "", now), "POST",
                  "/auth/v2/auth",
                  "async=1&device=auto&factor=push&username=alice");
    for (Method m : {Method::totp, Method::sms}) {
        bool threw = false;
        try {
            auth_async(creds, "alice", m, "203.0.113.7", now);
        } catch (const std::invalid_argument &) {
            threw = true;
        }
        ck_assert_msg(threw, "auth_async accepted %s", method_name(m));
    }
}
END_TEST

START_TEST(build_sms_passcode_status)
{
    check_request(send_sms(creds, "alice", now), "POST", "/auth/v2/auth",
                  "device=auto&factor=sms&username=alice");
    check_request(passcode(creds, "alice", "123456", now), "POST",
                  "/auth/v2/auth",
                  "factor=passcode&passcode=123456&username=alice");
    check_request(passcode(creds, "alice", "12 &=34", now), "POST",
                  "/auth/v2/auth",
                  "factor=passcode&passcode=12%20%26%3D34&username=alice");
    check_request(auth_status(creds, "45f7c92b-f45f-4862-8545-e0f58e78075a",
                              now),
                  "GET", "/auth/v2/auth_status",
                  "txid=45f7c92b-f45f-4862-8545-e0f58e78075a");
}
END_TEST

// Bodies shaped as the Auth API documentation's examples.
START_TEST(preauth_good)
{
    PreauthResult r = parse_preauth(200, ok(R"j({
        "devices": [
            {"device": "DPFZRS9FB0D46QFTM899",
             "display_name": "iOS (XXX-XXX-0100)", "name": "",
             "number": "XXX-XXX-0100", "type": "phone",
             "capabilities": ["auto", "push", "sms", "phone", "mobile_otp"]},
            {"device": "DHEKH0JJIYC1LX3AZWO4", "name": "0", "type": "token"}
        ],
        "result": "auth",
        "status_msg": "Account is active"})j"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.result, "auth");
    ck_assert_uint_eq(r.methods, static_cast<MethodSet>(Method::push)
                                     | static_cast<MethodSet>(Method::call)
                                     | static_cast<MethodSet>(Method::sms));
    ck_assert_string_eq(r.status_msg, "Account is active");
    ck_assert_string_eq(r.message, "");

    r = parse_preauth(200, ok(R"({"result": "allow",
                                  "status_msg": "Allowing unknown user"})"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.result, "allow");
    ck_assert_uint_eq(r.methods, 0);
    ck_assert_string_eq(r.status_msg, "Allowing unknown user");

    r = parse_preauth(200, ok(R"({"result": "deny",
                                  "status_msg": "Login denied"})"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.result, "deny");

    r = parse_preauth(200, ok(R"({
        "enroll_portal_url": "https://api-xxxxxxxx.duosecurity.com/portal?x",
        "result": "enroll",
        "status_msg": "Enroll an authentication device to proceed"})"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.result, "enroll");
    ck_assert_uint_eq(r.methods, 0);
    ck_assert_string_eq(r.status_msg,
                        "Enroll an authentication device to proceed");
}
END_TEST

START_TEST(preauth_methods)
{
    struct Case {
        const char *devices;
        MethodSet want;
    };
    const MethodSet push = static_cast<MethodSet>(Method::push);
    const MethodSet call = static_cast<MethodSet>(Method::call);
    const MethodSet sms = static_cast<MethodSet>(Method::sms);
    const Case cases[] = {
        {"[]", 0},
        {R"([{"capabilities": []}])", 0},
        {R"([{"capabilities": ["auto", "mobile_otp", "webauthn"]}])", 0},
        {R"([{"capabilities": ["push"]}])", push},
        {R"([{"capabilities": ["phone"]}])", call},
        {R"([{"capabilities": ["sms"]}])", sms},
        {R"([{"capabilities": ["Push", "SMS", "call", "totp"]}])", 0},
        {R"([{"capabilities": ["sms"]}, {"capabilities": ["push"]}])",
         sms | push},
        {R"([{"type": "token"}, {"capabilities": ["phone", "phone"]}])",
         call},
    };
    for (const Case &c : cases) {
        PreauthResult r = parse_preauth(
            200, ok(std::string(R"({"result": "auth", "status_msg": "ok",
                                    "devices": )") + c.devices + "}"));
        ck_assert_failure(r.failure, Failure::none);
        ck_assert_msg(r.methods == c.want, "%s: got %u, want %u", c.devices,
                      r.methods, c.want);
    }
    // Only "auth" offers methods.
    PreauthResult r = parse_preauth(
        200, ok(R"({"result": "deny", "status_msg": "no",
                    "devices": [{"capabilities": ["push"]}]})"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_uint_eq(r.methods, 0);
}
END_TEST

START_TEST(preauth_bad)
{
    struct Case {
        const char *response;
        Failure want;
    };
    const Case cases[] = {
        {R"({"status_msg": "x"})", Failure::bad_shape},
        {R"({"result": 1, "status_msg": "x"})", Failure::bad_shape},
        {R"({"result": null, "status_msg": "x"})", Failure::bad_shape},
        {R"({"result": ["auth"], "status_msg": "x"})", Failure::bad_shape},
        {R"({"result": "AUTH", "status_msg": "x"})", Failure::unknown_value},
        {R"({"result": "bypass", "status_msg": "x"})", Failure::unknown_value},
        {R"({"result": "", "status_msg": "x"})", Failure::unknown_value},
        {R"({"result": "allow "})", Failure::unknown_value},
        {R"({"result": "allow"})", Failure::bad_shape},
        {R"({"result": "allow", "status_msg": 5})", Failure::bad_shape},
        {R"({"result": "allow", "status_msg": null})", Failure::bad_shape},
        {R"({"result": "auth", "status_msg": "x"})", Failure::bad_shape},
        {R"({"result": "auth", "status_msg": "x", "devices": {}})",
         Failure::bad_shape},
        {R"({"result": "auth", "status_msg": "x", "devices": null})",
         Failure::bad_shape},
        {R"({"result": "auth", "status_msg": "x", "devices": [1]})",
         Failure::bad_shape},
        {R"({"result": "auth", "status_msg": "x", "devices": ["push"]})",
         Failure::bad_shape},
        {R"({"result": "auth", "status_msg": "x",
             "devices": [{"capabilities": "push"}]})",
         Failure::bad_shape},
        {R"({"result": "auth", "status_msg": "x",
             "devices": [{"capabilities": null}]})",
         Failure::bad_shape},
        {R"({"result": "auth", "status_msg": "x",
             "devices": [{"capabilities": ["push", 2]}]})",
         Failure::bad_shape},
        {R"({"result": "allow", "status_msg": "x", "devices": 7})",
         Failure::bad_shape},
    };
    for (const Case &c : cases) {
        PreauthResult r = parse_preauth(200, ok(c.response));
        ck_assert_msg(r.failure == c.want, "%s: got %s, want %s", c.response,
                      failure_name(r.failure), failure_name(c.want));
        ck_assert_msg(!r.message.empty(), "%s: no message", c.response);
        ck_assert_string_eq(r.result, "");
        ck_assert_string_eq(r.status_msg, "");
    }
    // A malformed device after a good one leaves no methods behind.
    PreauthResult r = parse_preauth(
        200, ok(R"({"result": "auth", "status_msg": "x",
                    "devices": [{"capabilities": ["push"]}, 3]})"));
    ck_assert_failure(r.failure, Failure::bad_shape);
    ck_assert_uint_eq(r.methods, 0);
    ck_assert_string_eq(r.message, "device 1 is malformed");
}
END_TEST

START_TEST(auth_good)
{
    AuthResult r = parse_auth(200, ok(R"({"result": "allow",
        "status": "allow", "status_msg": "Success. Logging you in..."})"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.result, "allow");
    ck_assert_string_eq(r.status, "allow");
    ck_assert_string_eq(r.status_msg, "Success. Logging you in...");
    ck_assert_string_eq(r.txid, "");
    ck_assert_string_eq(r.message, "");

    r = parse_auth(200, ok(R"({"result": "deny", "status": "deny",
        "status_msg": "Incorrect passcode. Please try again."})"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.result, "deny");
    ck_assert_string_eq(r.status, "deny");

    r = parse_auth(200, ok(R"({"result": "deny", "status": "sent",
        "status_msg": "New SMS passcodes sent"})"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.result, "deny");
    ck_assert_string_eq(r.status, "sent");
    ck_assert_string_eq(r.status_msg, "New SMS passcodes sent");

    r = parse_auth(200,
                   ok(R"({"txid": "45f7c92b-f45f-4862-8545-e0f58e78075a"})"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.txid, "45f7c92b-f45f-4862-8545-e0f58e78075a");
    ck_assert_string_eq(r.result, "");
    ck_assert_string_eq(r.status, "");

    const std::string longest(max_txid_bytes, 'A');
    r = parse_auth(200, ok(R"({"txid": ")" + longest + "\"}"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.txid, longest);
}
END_TEST

START_TEST(auth_bad)
{
    struct Case {
        std::string response;
        Failure want;
    };
    const Case cases[] = {
        {R"({})", Failure::bad_shape},
        {R"({"status": "allow", "status_msg": "x"})", Failure::bad_shape},
        {R"({"result": true, "status": "allow", "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"result": "waiting", "status": "pushed", "status_msg": "x"})",
         Failure::unknown_value},
        {R"({"result": "Allow", "status": "allow", "status_msg": "x"})",
         Failure::unknown_value},
        {R"({"result": "allow", "status_msg": "x"})", Failure::bad_shape},
        {R"({"result": "allow", "status": 1, "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"result": "allow", "status": "", "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"result": "allow", "status": "Allow!", "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"result": "allow", "status": "al\nlow", "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"result": "allow", "status": ")" + std::string(33, 'a')
             + R"(", "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"result": "allow", "status": "allow"})", Failure::bad_shape},
        {R"({"result": "allow", "status": "allow", "status_msg": {}})",
         Failure::bad_shape},
        {R"({"txid": 12345})", Failure::bad_shape},
        {R"({"txid": null, "result": "allow", "status": "allow",
             "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"txid": ""})", Failure::bad_shape},
        {R"({"txid": "abc def"})", Failure::bad_shape},
        {R"({"txid": "../../admin"})", Failure::bad_shape},
        {R"({"txid": "abc\r\nSet-Cookie: x"})", Failure::bad_shape},
        {R"({"txid": "abc_def"})", Failure::bad_shape},
        {R"({"txid": ")" + std::string(max_txid_bytes + 1, 'a') + "\"}",
         Failure::bad_shape},
    };
    for (const Case &c : cases) {
        AuthResult r = parse_auth(200, ok(c.response));
        ck_assert_msg(r.failure == c.want, "%s: got %s, want %s",
                      c.response.c_str(), failure_name(r.failure),
                      failure_name(c.want));
        ck_assert_msg(!r.message.empty(), "%s: no message",
                      c.response.c_str());
        ck_assert_string_eq(r.result, "");
        ck_assert_string_eq(r.status, "");
        ck_assert_string_eq(r.txid, "");
    }
}
END_TEST

START_TEST(auth_status_good)
{
    struct Case {
        const char *response;
        const char *result;
        const char *status;
        const char *status_msg;
    };
    const Case cases[] = {
        {R"({"auth_delayed": false, "result": "waiting", "status": "pushed",
             "status_msg": "Pushed a login request to your device..."})",
         "waiting", "pushed", "Pushed a login request to your device..."},
        {R"({"result": "waiting", "status": "calling",
             "status_msg": "Calling your phone..."})",
         "waiting", "calling", "Calling your phone..."},
        {R"({"result": "waiting", "status": "answered",
             "status_msg": "Answered. Press any key to log in."})",
         "waiting", "answered", "Answered. Press any key to log in."},
        {R"({"result": "allow", "status": "allow",
             "status_msg": "Success. Logging you in...",
             "trusted_device_token": "RlhkY2"})",
         "allow", "allow", "Success. Logging you in..."},
        {R"({"result": "deny", "status": "fraud",
             "status_msg": "Login request reported as fraudulent."})",
         "deny", "fraud", "Login request reported as fraudulent."},
        {R"({"result": "deny", "status": "timeout",
             "status_msg": "Login timed out."})",
         "deny", "timeout", "Login timed out."},
        {R"({"result": "deny", "status": "push_failed", "status_msg": ""})",
         "deny", "push_failed", ""},
    };
    for (const Case &c : cases) {
        AuthResult r = parse_auth_status(200, ok(c.response));
        ck_assert_failure(r.failure, Failure::none);
        ck_assert_string_eq(r.result, c.result);
        ck_assert_string_eq(r.status, c.status);
        ck_assert_string_eq(r.status_msg, c.status_msg);
        ck_assert_string_eq(r.txid, "");
        ck_assert_string_eq(r.message, "");
    }
}
END_TEST

START_TEST(auth_status_bad)
{
    struct Case {
        const char *response;
        Failure want;
    };
    const Case cases[] = {
        {R"({})", Failure::bad_shape},
        {R"({"result": 0, "status": "pushed", "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"result": "maybe", "status": "pushed", "status_msg": "x"})",
         Failure::unknown_value},
        {R"({"result": "WAITING", "status": "pushed", "status_msg": "x"})",
         Failure::unknown_value},
        {R"({"result": "waiting", "status_msg": "x"})", Failure::bad_shape},
        {R"({"result": "waiting", "status": ["pushed"], "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"result": "waiting", "status": "push-ed", "status_msg": "x"})",
         Failure::bad_shape},
        {R"({"result": "waiting", "status": "pushed"})", Failure::bad_shape},
        {R"({"result": "allow", "status": "allow", "status_msg": false})",
         Failure::bad_shape},
        // A txid does not make an auth_status answer.
        {R"({"txid": "45f7c92b"})", Failure::bad_shape},
    };
    for (const Case &c : cases) {
        AuthResult r = parse_auth_status(200, ok(c.response));
        ck_assert_msg(r.failure == c.want, "%s: got %s, want %s", c.response,
                      failure_name(r.failure), failure_name(c.want));
        ck_assert_msg(!r.message.empty(), "%s: no message", c.response);
        ck_assert_string_eq(r.result, "");
        ck_assert_string_eq(r.status, "");
    }
}
END_TEST

// The envelope is shared: every parser must reject each of these the same
// way, whatever the response would have held.
START_TEST(envelope_failures)
{
    struct Case {
        long http_status;
        std::string body;
        Failure want;
        std::string message;  // exact, or "" to only require one
    };
    const std::string good_auth = ok(R"({"result": "allow",
        "status": "allow", "status_msg": "x", "devices": []})");
    const Case cases[] = {
        {500, "<html>Internal Server Error</html>", Failure::http_status,
         "HTTP 500"},
        {500, good_auth, Failure::http_status, "HTTP 500"},
        {401,
         R"({"code": 40103, "message": "Invalid signature in request )"
         R"(credentials", "stat": "FAIL"})",
         Failure::http_status,
         "HTTP 401: 40103 Invalid signature in request credentials"},
        {400,
         R"({"code": 40002, "message": "Invalid request parameters",)"
         R"( "message_detail": "username", "stat": "FAIL"})",
         Failure::http_status,
         "HTTP 400: 40002 Invalid request parameters: username"},
        {429, R"({"code": 42901, "message": "Too Many Requests",)"
              R"( "stat": "FAIL"})",
         Failure::rate_limited, "HTTP 429: 42901 Too Many Requests"},
        {429, "", Failure::rate_limited, "HTTP 429"},
        {429, good_auth, Failure::rate_limited, "HTTP 429"},
        {0, good_auth, Failure::http_status, "HTTP 0"},
        {-1, good_auth, Failure::http_status, "HTTP -1"},
        {199, good_auth, Failure::http_status, "HTTP 199"},
        {300, good_auth, Failure::http_status, "HTTP 300"},
        {302, good_auth, Failure::http_status, "HTTP 302"},
        {200, "", Failure::not_json, ""},
        {200, "<html>hello</html>", Failure::not_json, ""},
        {200, R"({"stat": "OK", "response": {"result": "allow")",
         Failure::not_json, ""},
        {200, good_auth.substr(0, good_auth.size() - 1), Failure::not_json,
         ""},
        {200, good_auth + " x", Failure::not_json, ""},
        {200, good_auth + good_auth, Failure::not_json, ""},
        {200, "42", Failure::not_json, ""},
        {200, R"("OK")", Failure::not_json, ""},
        {200, "null", Failure::not_json, ""},
        {200, std::string("{\"stat\": \"OK\"\0}", 15), Failure::not_json, ""},
        {200, R"({"stat": "OK", "response": {"status_msg": "a\u0000b"}})",
         Failure::not_json, ""},
        {200, "{\"stat\": \"OK\", \"x\": \"\xff\"}", Failure::not_json, ""},
        {200, R"({"stat": "FAIL", "stat": "OK", "response": {}})",
         Failure::not_json, ""},
        {200, "[]", Failure::bad_shape, "response is not a JSON object"},
        {200, "[" + good_auth + "]", Failure::bad_shape,
         "response is not a JSON object"},
        {200, R"({"response": {}})", Failure::bad_shape,
         "\"stat\" missing or not a string"},
        {200, R"({"stat": 1, "response": {}})", Failure::bad_shape,
         "\"stat\" missing or not a string"},
        {200, R"({"stat": true, "response": {}})", Failure::bad_shape,
         "\"stat\" missing or not a string"},
        {200,
         R"({"stat": "FAIL", "code": 40002, "message": "Invalid request )"
         R"(parameters", "message_detail": "username"})",
         Failure::stat_fail, "40002 Invalid request parameters: username"},
        {200, R"({"stat": "FAIL", "message": "Nope"})", Failure::stat_fail,
         "Nope"},
        {200, R"({"stat": "FAIL"})", Failure::stat_fail,
         "\"stat\" is not \"OK\""},
        {200, R"({"stat": "ok", "response": {}})", Failure::stat_fail, ""},
        {200, R"({"stat": "OK "})", Failure::stat_fail, ""},
        {200, R"({"stat": "OK"})", Failure::bad_shape,
         "\"response\" missing or not an object"},
        {200, R"({"stat": "OK", "response": null})", Failure::bad_shape,
         "\"response\" missing or not an object"},
        {200, R"({"stat": "OK", "response": []})", Failure::bad_shape,
         "\"response\" missing or not an object"},
        {200, R"({"stat": "OK", "response": "allow"})", Failure::bad_shape,
         "\"response\" missing or not an object"},
    };
    using Parser = std::function<std::pair<Failure, std::string>(
        long, std::string_view)>;
    const std::pair<const char *, Parser> parsers[] = {
        {"preauth",
         [](long s, std::string_view b) {
             PreauthResult r = parse_preauth(s, b);
             ck_assert_string_eq(r.result, "");
             ck_assert_uint_eq(r.methods, 0);
             ck_assert_string_eq(r.status_msg, "");
             return std::make_pair(r.failure, r.message);
         }},
        {"auth",
         [](long s, std::string_view b) {
             AuthResult r = parse_auth(s, b);
             ck_assert_string_eq(r.result, "");
             ck_assert_string_eq(r.status, "");
             ck_assert_string_eq(r.status_msg, "");
             ck_assert_string_eq(r.txid, "");
             return std::make_pair(r.failure, r.message);
         }},
        {"auth_status",
         [](long s, std::string_view b) {
             AuthResult r = parse_auth_status(s, b);
             ck_assert_string_eq(r.result, "");
             ck_assert_string_eq(r.status, "");
             ck_assert_string_eq(r.status_msg, "");
             return std::make_pair(r.failure, r.message);
         }},
    };
    for (const auto &[name, parse] : parsers) {
        for (const Case &c : cases) {
            auto [failure, message] = parse(c.http_status, c.body);
            ck_assert_msg(failure == c.want, "%s(%ld, %s): got %s, want %s",
                          name, c.http_status, c.body.c_str(),
                          failure_name(failure), failure_name(c.want));
            if (c.message.empty())
                ck_assert_msg(!message.empty(), "%s(%s): no message", name,
                              c.body.c_str());
            else
                ck_assert_string_eq(message, c.message);
        }
    }
}
END_TEST

START_TEST(body_size_limit)
{
    const std::string head =
        R"({"stat": "OK", "response": {"result": "allow", )"
        R"("status": "allow", "status_msg": "x"})";
    std::string body = head + std::string(max_body_bytes - head.size() - 1,
                                          ' ') + "}";
    ck_assert_uint_eq(body.size(), max_body_bytes);
    ck_assert_failure(parse_auth(200, body).failure, Failure::none);

    body.insert(body.size() - 1, " ");
    AuthResult r = parse_auth(200, body);
    ck_assert_failure(r.failure, Failure::bad_shape);
    ck_assert_string_eq(r.message, "response larger than 65536 bytes");
    ck_assert_failure(parse_preauth(200, body).failure, Failure::bad_shape);
    ck_assert_failure(parse_auth_status(200, body).failure,
                      Failure::bad_shape);

    // A huge error page is still reported by its status, unread.
    const std::string huge(4 * max_body_bytes, 'x');
    r = parse_auth(503, huge);
    ck_assert_failure(r.failure, Failure::http_status);
    ck_assert_string_eq(r.message, "HTTP 503");
    ck_assert_failure(parse_auth(429, huge).failure, Failure::rate_limited);
    ck_assert_failure(parse_auth(200, huge).failure, Failure::bad_shape);

    // 2xx other than 200 is an answer like any other.
    ck_assert_failure(parse_auth(201, body.substr(0, head.size()) + "}")
                          .failure,
                      Failure::none);
}
END_TEST

START_TEST(text_is_cleaned)
{
    // C0 (ESC, NL, TAB), DEL, C1 (NEL), bidi override and isolate, and a
    // line separator each become a space.
    AuthResult r = parse_auth_status(200, ok(R"({"result": "deny",
        "status": "deny", "status_msg":
        "a\nb\u001b[31mc\td\u007fe\u0085f\u202eg\u2066h\u2028i\u00e9"})"));
    ck_assert_failure(r.failure, Failure::none);
    ck_assert_string_eq(r.status_msg, u8"a b [31mc d e f g h i\u00e9");

    PreauthResult p = parse_preauth(200, ok(R"({"result": "deny",
        "status_msg": "\r\nInjected: yes"})"));
    ck_assert_failure(p.failure, Failure::none);
    ck_assert_string_eq(p.status_msg, "  Injected: yes");

    // Duo's own error text is cleaned too before it reaches a log.
    r = parse_auth(400, R"({"stat": "FAIL", "code": 40002,
        "message": "bad\nline", "message_detail": "x\u001by"})");
    ck_assert_failure(r.failure, Failure::http_status);
    ck_assert_string_eq(r.message, "HTTP 400: 40002 bad line: x y");
    r = parse_auth(200, R"({"stat": "FAIL", "message": "\u009b2J"})");
    ck_assert_failure(r.failure, Failure::stat_fail);
    ck_assert_string_eq(r.message, " 2J");

    // An unknown result is quoted in the message, cleaned and short.
    r = parse_auth(200, ok(R"({"result": "al\nlow", "status": "allow",
        "status_msg": "x"})"));
    ck_assert_failure(r.failure, Failure::unknown_value);
    ck_assert_string_eq(r.message, "unknown result \"al low\"");
    r = parse_auth(200, ok(R"({"result": ")" + std::string(500, 'z')
                           + R"(", "status": "allow", "status_msg": "x"})"));
    ck_assert_failure(r.failure, Failure::unknown_value);
    ck_assert_string_eq(r.message,
                        "unknown result \"" + std::string(32, 'z') + "\"");
}
END_TEST

START_TEST(text_is_bounded)
{
    auto status_msg = [](const std::string &text) {
        return parse_auth_status(200, ok(R"({"result": "deny",
            "status": "deny", "status_msg": ")" + text + "\"}"))
            .status_msg;
    };
    ck_assert_string_eq(status_msg(std::string(max_text_bytes, 'a')),
                        std::string(max_text_bytes, 'a'));
    ck_assert_string_eq(status_msg(std::string(5000, 'a')),
                        std::string(max_text_bytes, 'a'));
    // Cut between characters: a two-byte character that would end past
    // the limit is left out whole.
    ck_assert_string_eq(
        status_msg(std::string(max_text_bytes - 1, 'a') + u8"\u00e9b"),
        std::string(max_text_bytes - 1, 'a'));
    ck_assert_string_eq(
        status_msg(std::string(max_text_bytes - 2, 'a') + u8"\u00e9b"),
        std::string(max_text_bytes - 2, 'a') + u8"\u00e9");
    ck_assert_string_eq(
        status_msg(std::string(max_text_bytes - 3, 'a') + u8"\U0001f600"),
        std::string(max_text_bytes - 3, 'a'));

    AuthResult r = parse_auth(
        400, R"({"stat": "FAIL", "code": 40002, "message": ")"
                 + std::string(1000, 'm') + "\"}");
    ck_assert_failure(r.failure, Failure::http_status);
    ck_assert_uint_eq(r.message.size(), max_text_bytes);
    ck_assert_string_eq(r.message.substr(0, 16), "HTTP 400: 40002 ");
}
END_TEST

START_TEST(failure_names)
{
    const std::pair<Failure, const char *> names[] = {
        {Failure::none, "none"},
        {Failure::http_status, "http_status"},
        {Failure::rate_limited, "rate_limited"},
        {Failure::not_json, "not_json"},
        {Failure::bad_shape, "bad_shape"},
        {Failure::stat_fail, "stat_fail"},
        {Failure::unknown_value, "unknown_value"},
    };
    for (const auto &[f, name] : names)
        ck_assert_string_eq(failure_name(f), name);
}
END_TEST

// Duo through the provider interface: the same signed requests, addressed
// to the configured URL, for the user's Duo name.
START_TEST(provider_requests)
{
    Provider duo(creds, "http://127.0.0.1:9443");
    const OutOfBandProvider &provider = duo;
    ck_assert_uint_eq(provider.methods(),
                      methods_of_kind(MethodKind::out_of_band));

    User alice;
    alice.name = "alice";
    ProviderRequest offer = provider.offer(alice, now);
    ck_assert(offer.post);
    ck_assert_string_eq(offer.url, "http://127.0.0.1:9443/auth/v2/preauth");
    ck_assert_string_eq(offer.body, "username=alice");
    ck_assert_uint_eq(offer.headers.size(), 3);
    Request direct = preauth(creds, "alice", now);
    ck_assert_string_eq(offer.headers[0], ("Date: " + direct.date).c_str());
    ck_assert_string_eq(offer.headers[1],
                        ("Authorization: " + direct.authorization).c_str());
    ck_assert_string_eq(offer.headers[2],
                        "Content-Type: application/x-www-form-urlencoded");

    User mapped;
    mapped.name = "bob";
    mapped.duo_username = "bob.smith";
    ck_assert_string_eq(provider.start(mapped, Method::push, "", {}, now).body,
                        "async=1&device=auto&factor=push"
                        "&username=bob.smith");
    ck_assert_string_eq(provider.send_code(mapped, {}, now).body,
                        send_sms(creds, "bob.smith", now).body.c_str());
    ck_assert_string_eq(provider.check_code(mapped, "1234567", now).body,
                        passcode(creds, "bob.smith", "1234567", now)
                            .body.c_str());

    ProviderRequest status = provider.status("tx-1", now);
    ck_assert(!status.post);
    ck_assert_string_eq(status.body, "");
    ck_assert_string_eq(status.url,
                        ("http://127.0.0.1:9443/auth/v2/auth_status?"
                         + auth_status(creds, "tx-1", now).query).c_str());
    ck_assert_uint_eq(status.headers.size(), 2);

    // The readers are Duo's parsers, failing closed the same way.
    ck_assert_failure(provider.read_offer(500, "").failure,
                      Failure::http_status);
    ck_assert_failure(provider.read_status(200, "{").failure,
                      Failure::not_json);
    ck_assert_failure(provider.read_check_code(429, "").failure,
                      Failure::rate_limited);
}
END_TEST

int main()
{
    Suite *suite = suite_create("duo");
    TCase *signing = tcase_create("signing");
    tcase_add_test(signing, canon_params_published);
    tcase_add_test(signing, canon_params_order_and_encoding);
    tcase_add_test(signing, canonical_request_published);
    tcase_add_test(signing, sign_published);
    tcase_add_test(signing, full_request_published);
    tcase_add_test(signing, date_format);
    suite_add_tcase(suite, signing);

    TCase *builders = tcase_create("builders");
    tcase_add_test(builders, build_preauth);
    tcase_add_test(builders, build_auth_async);
    tcase_add_test(builders, build_sms_passcode_status);
    tcase_add_test(builders, provider_requests);
    suite_add_tcase(suite, builders);

    TCase *parsing = tcase_create("parsing");
    tcase_add_test(parsing, preauth_good);
    tcase_add_test(parsing, preauth_methods);
    tcase_add_test(parsing, preauth_bad);
    tcase_add_test(parsing, auth_good);
    tcase_add_test(parsing, auth_bad);
    tcase_add_test(parsing, auth_status_good);
    tcase_add_test(parsing, auth_status_bad);
    tcase_add_test(parsing, envelope_failures);
    tcase_add_test(parsing, body_size_limit);
    tcase_add_test(parsing, text_is_cleaned);
    tcase_add_test(parsing, text_is_bounded);
    tcase_add_test(parsing, failure_names);
    suite_add_tcase(suite, parsing);
    return run_suite(suite);
}
