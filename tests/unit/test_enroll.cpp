// Enrollment: TOTP secrets, otpauth:// URIs, QR codes and recovery codes.
#include <cstdio>
#include <set>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/base32.h"
#include "core/enroll.h"
#include "core/keyring.h"
#include "core/user_store.h"
#include "unit.h"

using namespace twostep;

namespace {

// 20 bytes: "Hello!\xde\xad\xbe\xef" twice.
const std::string secret_raw = "Hello!\xde\xad\xbe\xefHello!\xde\xad\xbe\xef";
const std::string secret_b32 = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";

TotpParams params(HashAlg alg = HashAlg::sha1, int digits = 6,
                  int period = 30)
{
    TotpParams p;
    p.secret = secret_raw;
    p.alg = alg;
    p.digits = digits;
    p.period = period;
    return p;
}

bool contains(const std::string &text, const std::string &part)
{
    return text.find(part) != std::string::npos;
}

std::size_t count(const std::string &text, const std::string &part)
{
    std::size_t n = 0;
    for (auto at = text.find(part); at != std::string::npos;
         at = text.find(part, at + 1)) {
        n++;
    }
    return n;
}

using Grid = std::vector<std::vector<bool>>;  // [y][x], true: dark

// The modules qr_terminal() drew, two rows per line.
Grid grid_from_terminal(const std::string &text)
{
    Grid grid;
    std::size_t pos = 0;
    while (pos < text.size()) {
        std::size_t end = text.find('\n', pos);
        ck_assert(end != std::string::npos);
        std::vector<bool> top, bottom;
        for (std::size_t i = pos; i < end;) {
            std::string cell = text[i] == ' ' ? " " : text.substr(i, 3);
            i += cell.size();
            if (cell == "\u2588") {
                top.push_back(false), bottom.push_back(false);
            } else if (cell == "\u2580") {
                top.push_back(false), bottom.push_back(true);
            } else if (cell == "\u2584") {
                top.push_back(true), bottom.push_back(false);
            } else {
                ck_assert_msg(cell == " ", "unexpected cell");
                top.push_back(true), bottom.push_back(true);
            }
        }
        grid.push_back(top);
        grid.push_back(bottom);
        pos = end + 1;
    }
    return grid;
}

// The modules of qr_svg()'s path "Mx yhNv1h-Nz...".
Grid grid_from_svg(const std::string &svg, std::size_t size)
{
    Grid grid(size, std::vector<bool>(size, false));
    std::size_t at = svg.find(" d=\"");
    ck_assert(at != std::string::npos);
    const char *p = svg.c_str() + at + 4;
    while (*p == 'M') {
        unsigned x, y, n, m;
        int used = 0;
        ck_assert_msg(std::sscanf(p, "M%u %uh%uv1h-%uz%n", &x, &y, &n, &m,
                                  &used)
                          == 4,
                      "bad path at %.20s", p);
        ck_assert_uint_eq(n, m);
        ck_assert(x + n <= size && y < size);
        for (unsigned i = 0; i < n; i++) {
            grid[y][x + i] = true;
        }
        p += used;
    }
    ck_assert_int_eq(*p, '"');
    return grid;
}

}  // namespace

START_TEST(totp_secret)
{
    std::string a = new_totp_secret(), b = new_totp_secret();
    ck_assert_uint_eq(a.size(), 32);
    auto raw = base32_decode(a);
    ck_assert(raw.has_value());
    ck_assert_uint_eq(raw->size(), 20);
    ck_assert_string_eq(base32_encode(*raw), a);
    ck_assert(a != b);
    for (char c : a) {
        ck_assert((c >= 'A' && c <= 'Z') || (c >= '2' && c <= '7'));
    }
}
END_TEST

START_TEST(uri_defaults)
{
    ck_assert_string_eq(otpauth_uri("nginx-twostep", "alice", params()),
                        "otpauth://totp/nginx-twostep:alice?secret="
                            + secret_b32 + "&issuer=nginx-twostep");
    // Without an issuer: the account alone, and no issuer parameter.
    ck_assert_string_eq(otpauth_uri("", "alice", params()),
                        "otpauth://totp/alice?secret=" + secret_b32);
    // A secret whose length is not a multiple of 5 bytes: no '=' padding.
    TotpParams p = params();
    p.secret = std::string(16, '\x5a');
    std::string uri = otpauth_uri("I", "a", p);
    ck_assert(!contains(uri, "=&") && !contains(uri, "%3D"));
    ck_assert_string_eq(uri,
                        "otpauth://totp/I:a?secret="
                            + base32_encode(p.secret) + "&issuer=I");
}
END_TEST

START_TEST(uri_escaping)
{
    ck_assert_string_eq(
        otpauth_uri("Acme Co: Ops", "bob.smith@example.com", params()),
        "otpauth://totp/Acme%20Co%3A%20Ops:bob.smith%40example.com?secret="
            + secret_b32 + "&issuer=Acme%20Co%3A%20Ops");
    // UTF-8 bytes as %XX, upper-case hex.
    ck_assert_string_eq(otpauth_uri("Caf\xc3\xa9", "j\xc3\xbcrgen", params()),
                        "otpauth://totp/Caf%C3%A9:j%C3%BCrgen?secret="
                            + secret_b32 + "&issuer=Caf%C3%A9");
    // Nothing that could end the label or a parameter survives.
    std::string uri = otpauth_uri("a&b=c#d?e/f%g+h", "x:y", params());
    ck_assert_string_eq(uri,
                        "otpauth://totp/a%26b%3Dc%23d%3Fe%2Ff%25g%2Bh:x%3Ay"
                        "?secret="
                            + secret_b32
                            + "&issuer=a%26b%3Dc%23d%3Fe%2Ff%25g%2Bh");
    ck_assert_uint_eq(count(uri, ":"), 2);  // "otpauth:" and the separator
    // RFC 3986 unreserved characters stay as they are.
    ck_assert_string_eq(otpauth_uri("A-z.0_9~", "u", params()),
                        "otpauth://totp/A-z.0_9~:u?secret=" + secret_b32
                            + "&issuer=A-z.0_9~");
}
END_TEST

START_TEST(uri_parameters)
{
    ck_assert_string_eq(otpauth_uri("I", "u", params(HashAlg::sha256, 8, 60)),
                        "otpauth://totp/I:u?secret=" + secret_b32
                            + "&issuer=I&algorithm=SHA256&digits=8"
                              "&period=60");
    ck_assert_string_eq(otpauth_uri("I", "u", params(HashAlg::sha512)),
                        "otpauth://totp/I:u?secret=" + secret_b32
                            + "&issuer=I&algorithm=SHA512");
    ck_assert_string_eq(otpauth_uri("I", "u", params(HashAlg::sha1, 7)),
                        "otpauth://totp/I:u?secret=" + secret_b32
                            + "&issuer=I&digits=7");
    ck_assert_string_eq(
        otpauth_uri("I", "u", params(HashAlg::sha1, 6, 15)),
        "otpauth://totp/I:u?secret=" + secret_b32 + "&issuer=I&period=15");
}
END_TEST

START_TEST(recovery_code_format)
{
    std::vector<std::string> codes = new_recovery_codes();
    ck_assert_uint_eq(codes.size(), 10);
    std::set<std::string> seen;
    std::set<char> chars;
    for (int round = 0; round < 10; round++) {
        for (const std::string &code : new_recovery_codes(100)) {
            ck_assert_uint_eq(code.size(), 29);
            for (std::size_t i = 0; i < code.size(); i++) {
                char c = code[i];
                if (i % 6 == 5) {
                    ck_assert_int_eq(c, '-');
                } else {
                    ck_assert_msg((c >= 'a' && c <= 'z')
                                      || (c >= '2' && c <= '7'),
                                  "%s", code.c_str());
                    chars.insert(c);
                }
            }
            ck_assert_uint_eq(normalize_recovery_code(code).size(),
                              recovery_code_chars);
            ck_assert_msg(seen.insert(code).second, "repeated %s",
                          code.c_str());
        }
    }
    // 25000 characters: every one of the 32 shows up.
    ck_assert_uint_eq(chars.size(), 32);
    ck_assert_uint_eq(new_recovery_codes(1).size(), 1);
    ck_assert_uint_eq(new_recovery_codes(100).size(), 100);
}
END_TEST

START_TEST(recovery_code_count_bounds)
{
    for (int n : {0, -1, 101}) {
        bool thrown = false;
        try {
            new_recovery_codes(n);
        } catch (const std::invalid_argument &) {
            thrown = true;
        }
        ck_assert_msg(thrown, "n = %d", n);
    }
}
END_TEST

START_TEST(recovery_hashing)
{
    // sha256("abcdefghijabcdefghijabcde")
    const std::string want =
        "a6c6cd202e031f1fb621201ce2c53bc75a30810bc07dea280708d0b8325102a1";
    for (const char *typed :
         {"abcde-fghij-abcde-fghij-abcde", "ABCDE-FGHIJ-ABCDE-FGHIJ-ABCDE",
          "abcde fghij abcde fghij abcde", "abcdefghijabcdefghijabcde",
          " AbCdE-fGhIj - abcde fghij-abcde ", "--abcdefghijabcdefghijabcde"}) {
        ck_assert_string_eq(recovery_hash(typed), want);
    }
    ck_assert_string_eq(normalize_recovery_code("AB-c d"), "abcd");
    ck_assert(recovery_hash("abcde-fghij-abcde-fghij-abcdf") != want);
    // Only ASCII letters are folded; other characters are kept.
    ck_assert(recovery_hash("abcde_fghij_abcde_fghij_abcde") != want);
    ck_assert(recovery_hash("\xc3\x81") != recovery_hash("\xc3\xa1"));

    for (const std::string &code : new_recovery_codes()) {
        std::string hash = recovery_hash(code);
        ck_assert_msg(valid_recovery_hash(hash), "%s", hash.c_str());
    }
}
END_TEST

START_TEST(qr_svg_shape)
{
    std::string uri = otpauth_uri("nginx-twostep", "alice", params());
    std::string svg = qr_svg(uri);
    ck_assert(svg.rfind("<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
    ck_assert(svg.size() > 6
              && svg.compare(svg.size() - 6, 6, "</svg>") == 0);
    ck_assert_uint_eq(count(svg, "<svg"), 1);
    ck_assert_uint_eq(count(svg, "<path"), 1);
    ck_assert_uint_eq(count(svg, "<rect"), 1);
    ck_assert_uint_eq(count(svg, "<"), 4);  // svg, rect, path, /svg
    for (const char *part : {"viewBox=\"0 0 ", "shape-rendering=\"crispEdges\"",
                             "role=\"img\"", "aria-label=\"QR code\"",
                             "fill=\"#fff\"", "fill=\"#000\""}) {
        ck_assert_msg(contains(svg, part), "no %s in %s", part, svg.c_str());
    }
    for (const char *bad : {"script", " on", "href", "url(", "style",
                            "javascript", "foreignObject", "\n"}) {
        ck_assert_msg(!contains(svg, bad), "%s in the svg", bad);
    }
    // Nothing of the text itself is in the markup.
    ck_assert(!contains(svg, secret_b32));
    ck_assert(!contains(svg, "alice"));
}
END_TEST

START_TEST(qr_svg_label)
{
    std::string svg = qr_svg("x", "Scan <me> & \"you\" 'too'");
    ck_assert(contains(svg, "aria-label=\"Scan &lt;me&gt; &amp; &quot;you"
                            "&quot; &#39;too&#39;\""));
    ck_assert_uint_eq(count(svg, "<"), 4);
}
END_TEST

START_TEST(qr_terminal_and_svg_agree)
{
    for (const std::string &text :
         {std::string("hello"),
          otpauth_uri("Acme Co", "bob@example.com",
                      params(HashAlg::sha256, 8, 60)),
          std::string(300, 'A')}) {
        std::string term = qr_terminal(text);
        Grid drawn = grid_from_terminal(term);
        std::size_t size = drawn[0].size();
        // Versions are 21 + 4k modules wide, plus the quiet zone of 2.
        ck_assert_uint_ge(size, 25);
        ck_assert_uint_eq((size - 4 - 21) % 4, 0);
        ck_assert_uint_eq(drawn.size(), size + 1);  // odd rows: one spare
        std::string svg = qr_svg(text);
        std::string box = "viewBox=\"0 0 " + std::to_string(size) + " "
            + std::to_string(size) + "\"";
        ck_assert_msg(contains(svg, box), "no %s", box.c_str());
        Grid path = grid_from_svg(svg, size);
        for (std::size_t y = 0; y < size; y++) {
            for (std::size_t x = 0; x < size; x++) {
                ck_assert_msg(drawn[y][x] == path[y][x], "module %zu,%zu",
                              x, y);
                bool quiet = x < 2 || y < 2 || x >= size - 2
                    || y >= size - 2;
                ck_assert(!(quiet && path[y][x]));
            }
        }
        // The spare half row and the quiet zone are light.
        for (std::size_t x = 0; x < size; x++) {
            ck_assert(!drawn[size][x]);
        }
        // Finder pattern, top left: a dark 7x7 ring around a light ring.
        for (std::size_t i = 0; i < 7; i++) {
            ck_assert(path[2][2 + i] && path[8][2 + i]);
            ck_assert(path[2 + i][2] && path[2 + i][8]);
        }
        ck_assert(!path[3][3] && path[4][4] && path[5][5]);
    }
}
END_TEST

START_TEST(qr_bad_text)
{
    bool thrown = false;
    try {
        qr_terminal(std::string("a\0b", 3));
    } catch (const std::invalid_argument &) {
        thrown = true;
    }
    ck_assert(thrown);
    thrown = false;
    try {
        qr_svg(std::string(8000, 'x'));
    } catch (const std::invalid_argument &) {
        thrown = true;
    }
    ck_assert(thrown);
}
END_TEST

// "Download as a text file": the codes come back only for the session
// that made them and only until the token expires.
START_TEST(recovery_codes_download_token)
{
    KeyRing keys, other;
    ck_assert(keys.add(std::string(32, 'k')));
    ck_assert(other.add(std::string(32, 'o')));
    std::vector<std::string> codes = new_recovery_codes(3);
    std::string token = recovery_codes_token(keys, "sid-1", 1000, codes);

    auto back = read_recovery_codes_token(keys, token, "sid-1", 1000);
    ck_assert(back && *back == codes);
    ck_assert(!read_recovery_codes_token(keys, token, "sid-1", 1001));
    ck_assert(!read_recovery_codes_token(keys, token, "sid-2", 999));
    ck_assert(!read_recovery_codes_token(keys, token, "", 999));
    ck_assert(!read_recovery_codes_token(other, token, "sid-1", 999));
    ck_assert(!read_recovery_codes_token(keys, token + "x", "sid-1", 999));
    ck_assert(!read_recovery_codes_token(
        keys, recovery_codes_token(keys, "sid-1", 1000, {}), "sid-1", 999));

    std::string file = recovery_codes_file("Codes for alice", codes);
    std::string head = file.substr(0, 19);
    ck_assert_str_eq(head.c_str(), "Codes for alice\r\n\r\n");
    ck_assert(file.find(codes[0] + "\r\n" + codes[1] + "\r\n" + codes[2]
                        + "\r\n") == 19);
    ck_assert_uint_eq(file.size(), 19 + 3 * (29 + 2));
}
END_TEST

// A change kept across a step-up: back exactly as made, and only signed
// by us, unaltered and unexpired.
START_TEST(pending_change_token)
{
    KeyRing keys, other;
    ck_assert(keys.add(std::string(32, 'k')));
    ck_assert(other.add(std::string(32, 'o')));
    PendingChange c;
    c.user = "alice";
    c.session_issued = 1700000000;
    c.asked = 1700000400;
    c.expires = 1700000700;
    c.action = "rename-key";
    c.value = "AbC_-123";
    c.name = "Work | laptop";
    std::string token = encode_change(keys, c);

    auto back = decode_change(keys, token, 1700000700);
    ck_assert(back);
    ck_assert_str_eq(back->user.c_str(), "alice");
    ck_assert_int_eq(back->session_issued, 1700000000);
    ck_assert_int_eq(back->asked, 1700000400);
    ck_assert_int_eq(back->expires, 1700000700);
    ck_assert_str_eq(back->action.c_str(), "rename-key");
    ck_assert_str_eq(back->value.c_str(), "AbC_-123");
    ck_assert_str_eq(back->name.c_str(), "Work | laptop");

    ck_assert(!decode_change(keys, token, 1700000701));
    ck_assert(!decode_change(other, token, 1700000000));
    ck_assert(!decode_change(keys, token + "A", 1700000000));
    // Not a recovery-codes token, nor a session's, though signed by us.
    ck_assert(!decode_change(keys, recovery_codes_token(keys, "s", 1, {"a"}),
                             0));
    ck_assert(!decode_change(keys, keys.sign("ch", "a|1|2|3|YQ|"), 0));
    ck_assert(!decode_change(keys, keys.sign("ch", "|1|2|3|YQ||"), 0));
    ck_assert(!decode_change(keys, keys.sign("ch", "YQ|1|2|-3|YQ||"), 0));
    ck_assert(!decode_change(keys, keys.sign("ch", "YQ|1|2|3|YQ|||"), 0));
    ck_assert(decode_change(keys, keys.sign("ch", "YQ|1|2|3|YQ||"), 0));
}
END_TEST

int main()
{
    Suite *suite = suite_create("enroll");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, totp_secret);
    tcase_add_test(tc, uri_defaults);
    tcase_add_test(tc, uri_escaping);
    tcase_add_test(tc, uri_parameters);
    tcase_add_test(tc, recovery_code_format);
    tcase_add_test(tc, recovery_code_count_bounds);
    tcase_add_test(tc, recovery_hashing);
    tcase_add_test(tc, qr_svg_shape);
    tcase_add_test(tc, qr_svg_label);
    tcase_add_test(tc, qr_terminal_and_svg_agree);
    tcase_add_test(tc, qr_bad_text);
    tcase_add_test(tc, recovery_codes_download_token);
    tcase_add_test(tc, pending_change_token);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
