// The portal pages: required fields and labels, and nothing echoed raw.
#include <string>

#include "core/pages.h"
#include "unit.h"

using namespace twostep;

namespace {

const std::string hostile = "\"><script>alert(1)</script>";
const std::string hostile_escaped =
    "&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;";
const std::string hostile_single = "' onfocus='alert(2)' x='";
const std::string hostile_single_escaped =
    "&#39; onfocus=&#39;alert(2)&#39; x=&#39;";

bool contains(const std::string &text, const std::string &part)
{
    return text.find(part) != std::string::npos;
}

std::size_t count(const std::string &text, const std::string &part)
{
    std::size_t n = 0;
    for (std::size_t at = text.find(part); at != std::string::npos;
         at = text.find(part, at + part.size())) {
        n++;
    }
    return n;
}

#define expect_has(html, part)                                              \
    ck_assert_msg(contains((html), (part)), "page lacks %s",                \
                  std::string(part).c_str())
#define expect_lacks(html, part)                                            \
    ck_assert_msg(!contains((html), (part)), "page has %s",                 \
                  std::string(part).c_str())

// The value of attribute `name` in the tag at `at`, or "" .
std::string attribute(const std::string &html, std::size_t at,
                      const std::string &name)
{
    std::size_t end = html.find('>', at);
    std::size_t pos = html.find(" " + name + "=\"", at);
    if (pos == std::string::npos || pos > end) {
        return "";
    }
    pos += name.size() + 3;
    return html.substr(pos, html.find('"', pos) - pos);
}

// What every page must be: a small standalone HTML5 document, every
// attribute value double-quoted, no script and nothing loaded from
// elsewhere, every visible input with a label.
void check_page(const std::string &html)
{
    ck_assert(html.compare(0, 15, "<!DOCTYPE html>") == 0);
    expect_has(html, "<html lang=\"en\">");
    expect_has(html, "<meta charset=\"utf-8\">");
    expect_has(html, "<meta name=\"viewport\" "
                     "content=\"width=device-width, initial-scale=1\">");
    expect_has(html, "<title>");
    ck_assert_uint_eq(count(html, "<main>"), 1);
    ck_assert_uint_eq(count(html, "</main>"), 1);
    ck_assert_uint_eq(count(html, "<h1>"), 1);
    ck_assert_uint_eq(count(html, "<style>"), 1);
    expect_has(html, "</html>\n");
    for (const char *bad : {"<script", "<link", "<img", "<iframe", " src=",
                            "http:", "https:", "javascript:", "url(",
                            "@import"}) {
        expect_lacks(html, bad);
    }

    // Attribute values: after '=' inside a tag comes '"'.
    std::size_t style_end = html.find("</style>");
    std::size_t style_start = html.find("<style>");
    for (std::size_t i = 0; i < html.size(); i++) {
        if (i == style_start) {
            i = style_end;
        }
        if (html[i] != '<') {
            continue;
        }
        bool quoted = false;
        std::size_t j = i + 1;
        for (; j < html.size() && (quoted || html[j] != '>'); j++) {
            ck_assert_msg(quoted || html[j] != '<', "'<' inside a tag at %zu",
                          j);
            if (html[j] == '"') {
                quoted = !quoted;
            } else if (!quoted && html[j] == ' ') {
                ck_assert_msg(html.compare(j + 1, 2, "on") != 0,
                              "event handler at %zu", j);
            } else if (!quoted && html[j] == '=') {
                ck_assert_msg(html[j + 1] == '"', "unquoted value at %s",
                              html.substr(i, j + 10 - i).c_str());
            }
        }
        ck_assert_msg(j < html.size(), "unclosed tag");
        i = j;
    }

    // Every visible input has a <label for=...> with its id.
    for (std::size_t at = html.find("<input"); at != std::string::npos;
         at = html.find("<input", at + 1)) {
        if (attribute(html, at, "type") == "hidden") {
            continue;
        }
        std::string id = attribute(html, at, "id");
        ck_assert_msg(!id.empty(), "input without id");
        ck_assert_msg(contains(html, "<label for=\"" + id + "\">"),
                      "no label for %s", id.c_str());
    }
}

PortalPaths paths()
{
    return {"/.twostep/signin", "/.twostep/verify", "/.twostep/logout",
            "/.twostep/wait", "/.twostep/status"};
}

CodePage code_page(Method method, MethodSet offered)
{
    CodePage page;
    page.paths = paths();
    page.user = "alice";
    page.method = method;
    page.offered = offered;
    page.return_to = "/app?x=1&y=2";
    page.methods = "totp,sms";
    page.form_token = "tok.en";
    return page;
}

constexpr MethodSet bit(Method m)
{
    return static_cast<MethodSet>(m);
}

const char *const totp_label =
    "Use a verification code from my authenticator app";
const char *const push_label = "Approve a request on my authenticator app";
const char *const call_label = "Call my phone";
const char *const sms_label = "Text my phone";

}  // namespace

START_TEST(html_escape_cases)
{
    ck_assert(html_escape("") == "");
    ck_assert(html_escape("plain text 123") == "plain text 123");
    ck_assert(html_escape("&<>\"'") == "&amp;&lt;&gt;&quot;&#39;");
    ck_assert(html_escape("&amp;") == "&amp;amp;");
    ck_assert(html_escape(hostile) == hostile_escaped);
    ck_assert(html_escape("caf\xc3\xa9") == "caf\xc3\xa9");
}
END_TEST

START_TEST(signin_page)
{
    SigninPage page;
    page.paths = paths();
    page.return_to = "/app?x=1";
    page.methods = "totp";
    page.form_token = "tok.en";
    std::string html = render_signin(page);
    check_page(html);
    expect_has(html, "<title>Sign in</title>");
    expect_has(html, "<h1>Sign in</h1>");
    expect_has(html, "<form method=\"post\" action=\"/.twostep/signin\">");
    expect_has(html, "<label for=\"username\">User name</label>");
    expect_has(html, "<label for=\"password\">Password</label>");
    std::size_t user = html.find("<input class=\"field\" id=\"username\"");
    ck_assert(user != std::string::npos);
    ck_assert(attribute(html, user, "name") == "username");
    ck_assert(attribute(html, user, "type") == "text");
    ck_assert(attribute(html, user, "autocomplete") == "username");
    ck_assert(attribute(html, user, "value") == "");
    std::size_t pass = html.find("<input class=\"field\" id=\"password\"");
    ck_assert(pass != std::string::npos);
    ck_assert(attribute(html, pass, "name") == "password");
    ck_assert(attribute(html, pass, "type") == "password");
    ck_assert(attribute(html, pass, "autocomplete") == "current-password");
    // Autofocus once, on the first field.
    ck_assert_uint_eq(count(html, " autofocus"), 1);
    ck_assert(html.find(" autofocus") > user);
    ck_assert(html.find(" autofocus") < pass);
    expect_has(html, "<input type=\"hidden\" name=\"return_to\" "
                     "value=\"/app?x=1\">");
    expect_has(html, "<input type=\"hidden\" name=\"methods\" "
                     "value=\"totp\">");
    expect_has(html, "<input type=\"hidden\" name=\"form_token\" "
                     "value=\"tok.en\">");
    expect_has(html, "<button type=\"submit\">Sign in</button>");
    expect_lacks(html, "role=\"alert\"");
}
END_TEST

START_TEST(signin_error_and_refill)
{
    SigninPage page;
    page.paths = paths();
    page.username = "bob";
    page.error = "Wrong user name or password.";
    std::string html = render_signin(page);
    check_page(html);
    expect_has(html, "role=\"alert\">Wrong user name or password.</p>");
    std::size_t user = html.find("id=\"username\"");
    ck_assert(attribute(html, user, "value") == "bob");
}
END_TEST

START_TEST(signin_escapes_everything)
{
    SigninPage page;
    page.paths = {hostile, hostile, hostile, hostile, hostile};
    page.return_to = hostile;
    page.methods = hostile_single;
    page.form_token = hostile;
    page.username = hostile_single;
    page.error = hostile + "&amp;";
    std::string html = render_signin(page);
    check_page(html);
    expect_lacks(html, hostile);
    expect_lacks(html, hostile_single);
    expect_lacks(html, "alert(1)</script>");
    expect_has(html, "role=\"alert\">" + hostile_escaped + "&amp;amp;</p>");
    expect_has(html, "action=\"" + hostile_escaped + "\"");
    expect_has(html, "name=\"return_to\" value=\"" + hostile_escaped + "\"");
    expect_has(html, "name=\"methods\" value=\"" + hostile_single_escaped
                         + "\"");
    expect_has(html, "value=\"" + hostile_single_escaped + "\"");
}
END_TEST

START_TEST(code_page_totp)
{
    std::string html = render_code(code_page(Method::totp, bit(Method::totp)));
    check_page(html);
    expect_has(html, "<title>Enter code</title>");
    expect_has(html, "<h1>Enter code</h1>");
    expect_has(html, "Signed in as <strong>alice</strong>");
    expect_has(html, "Enter the code displayed in the authenticator app on "
                     "your mobile device.");
    expect_has(html, "<form method=\"post\" action=\"/.twostep/verify\">");
    expect_has(html, "<label for=\"code\">Code</label>");
    std::size_t code = html.find("<input class=\"field\" id=\"code\"");
    ck_assert(code != std::string::npos);
    ck_assert(attribute(html, code, "name") == "code");
    ck_assert(attribute(html, code, "inputmode") == "numeric");
    ck_assert(attribute(html, code, "pattern") == "[0-9 ]*");
    ck_assert(attribute(html, code, "autocomplete") == "one-time-code");
    ck_assert_uint_eq(count(html, " autofocus"), 1);
    ck_assert(html.find(" autofocus") > code);
    expect_has(html, "<input type=\"hidden\" name=\"method\" value=\"totp\">");
    expect_has(html, "<input type=\"hidden\" name=\"return_to\" "
                     "value=\"/app?x=1&amp;y=2\">");
    expect_has(html, "<input type=\"hidden\" name=\"methods\" "
                     "value=\"totp,sms\">");
    expect_has(html, "<input type=\"hidden\" name=\"form_token\" "
                     "value=\"tok.en\">");
    expect_has(html, "<button type=\"submit\">Verify</button>");
    expect_lacks(html, "role=\"alert\"");
    expect_lacks(html, "Sign in another way");
    expect_lacks(html, totp_label);

    // Nothing else offered, or nothing at all: no list either.
    expect_lacks(render_code(code_page(Method::totp, 0)),
                 "Sign in another way");
}
END_TEST

START_TEST(code_page_other_ways)
{
    std::string html = render_code(code_page(Method::totp, all_methods));
    check_page(html);
    expect_has(html, "<h2 id=\"other-ways\">Sign in another way</h2>");
    expect_lacks(html, totp_label);
    const std::string base = "<a href=\"/.twostep/verify?method=";
    const std::string tail =
        "&amp;return_to=%2Fapp%3Fx%3D1%26y%3D2&amp;methods=totp%2Csms\">";
    std::size_t push = html.find(base + "push" + tail + push_label + "</a>");
    std::size_t call = html.find(base + "call" + tail + call_label + "</a>");
    std::size_t sms = html.find(base + "sms" + tail + sms_label + "</a>");
    ck_assert(push != std::string::npos);
    ck_assert(call != std::string::npos);
    ck_assert(sms != std::string::npos);
    ck_assert(push < call && call < sms);
    // The list comes after the form.
    ck_assert(html.find("</form>") < push);

    html = render_code(code_page(Method::totp,
                                 bit(Method::totp) | bit(Method::sms)));
    expect_has(html, "Sign in another way");
    expect_has(html, sms_label);
    expect_lacks(html, push_label);
    expect_lacks(html, call_label);
}
END_TEST

START_TEST(code_page_sms)
{
    // Before a code is sent: a button that sends it, no code box.
    std::string before = render_code(code_page(Method::sms,
                                               bit(Method::sms)));
    check_page(before);
    expect_has(before, "<button type=\"submit\" autofocus>Send code");
    expect_has(before, "<input type=\"hidden\" name=\"action\" "
                       "value=\"send\">");
    expect_lacks(before, "name=\"code\"");

    CodePage sent = code_page(Method::sms,
                              bit(Method::totp) | bit(Method::sms));
    sent.sms_sent = true;
    sent.notice = "We texted a code to <you>";
    std::string html = render_code(sent);
    check_page(html);
    expect_has(html, "We texted a code to &lt;you&gt;");
    expect_has(html, "<h1>Enter code</h1>");
    expect_has(html, "Enter the code we texted to your phone.");
    expect_lacks(html, "authenticator app on your mobile device");
    expect_has(html, "<input type=\"hidden\" name=\"method\" value=\"sms\">");
    expect_has(html, "Sign in another way");
    expect_has(html, "?method=totp&amp;return_to=");
    expect_has(html, totp_label);
    expect_lacks(html, sms_label);

    // sms alone: no other way to offer.
    CodePage alone = code_page(Method::sms, bit(Method::sms));
    alone.sms_sent = true;
    expect_lacks(render_code(alone), "Sign in another way");
}
END_TEST

START_TEST(code_page_later_methods)
{
    for (Method m : {Method::push, Method::call}) {
        std::string html = render_code(code_page(m, all_methods));
        check_page(html);
        expect_has(html, "Signed in as <strong>alice</strong>");
        expect_lacks(html, "name=\"code\"");
        expect_has(html, m == Method::push ? "Send request</button>"
                                           : "Call me</button>");
        expect_has(html, "Sign in another way");
        expect_has(html, totp_label);
        expect_has(html, sms_label);
    }
}
END_TEST

START_TEST(wait_page)
{
    WaitPage page;
    page.paths = paths();
    page.user = "alice";
    page.method = Method::push;
    page.offered = all_methods;
    page.return_to = "/app?x=1&y=<2>";
    page.methods = "totp,push";
    page.number = "42";
    std::string html = render_wait(page);
    // Exactly one inline script (the one the CSP allows by hash); the rest
    // of the page passes the same checks as every other.
    ck_assert_uint_eq(count(html, "<script"), 1);
    std::size_t open = html.find("<script>");
    std::size_t close = html.find("</script>");
    ck_assert(open != std::string::npos && close > open);
    std::string without = html.substr(0, open)
                          + html.substr(close + sizeof("</script>") - 1);
    check_page(without);
    expect_has(html, "<h1>Approve the sign-in request on your phone</h1>");
    expect_has(html, "<strong class=\"number\">42</strong>");
    // Moves on without JavaScript, and with it.
    expect_has(html, "<noscript><meta http-equiv=\"refresh\" "
                     "content=\"3;url=/.twostep/wait?return_to=%2Fapp%3Fx"
                     "%3D1%26y%3D%3C2%3E&amp;methods=totp%2Cpush&amp;"
                     "check=1\"></noscript>");
    expect_has(html, "data-status=\"/.twostep/status?return_to=");
    expect_has(html, "<script>");
    expect_lacks(html, "<2>");
    expect_has(html, call_label);

    page.method = Method::call;
    page.number.clear();
    html = render_wait(page);
    expect_has(html, "<h1>Answer the call and press the key</h1>");
    expect_lacks(html, "class=\"number\"");
}
END_TEST

START_TEST(code_page_escapes_everything)
{
    CodePage page = code_page(Method::totp, all_methods);
    page.paths = {hostile, hostile, hostile, hostile, hostile};
    page.user = hostile;
    page.return_to = hostile_single;
    page.methods = hostile;
    page.form_token = hostile_single;
    page.error = hostile;
    std::string html = render_code(page);
    check_page(html);
    expect_lacks(html, hostile);
    expect_lacks(html, hostile_single);
    expect_lacks(html, "alert(1)</script>");
    expect_has(html, "Signed in as <strong>" + hostile_escaped + "</strong>");
    expect_has(html, "role=\"alert\">" + hostile_escaped + "</p>");
    expect_has(html, "action=\"" + hostile_escaped + "\"");
    expect_has(html, "name=\"return_to\" value=\"" + hostile_single_escaped
                         + "\"");
    // In links, return_to and methods are URL-encoded, then HTML-escaped.
    expect_has(html, "<a href=\"" + hostile_escaped + "?method=sms&amp;"
                         "return_to=%27%20onfocus%3D%27alert%282%29%27%20x%3D"
                         "%27&amp;methods=%22%3E%3Cscript%3Ealert%281%29%3C"
                         "%2Fscript%3E\">");
}
END_TEST

START_TEST(message_page)
{
    std::string html = render_message("Access denied", "You may not pass.");
    check_page(html);
    expect_has(html, "<title>Access denied</title>");
    expect_has(html, "<h1>Access denied</h1>");
    expect_has(html, "<p>You may not pass.</p>");
    expect_lacks(html, "<a ");

    html = render_message("T", "x", "/back");
    expect_has(html, "<a href=\"/back\">/back</a>");

    html = render_message(hostile, hostile_single, hostile, hostile_single);
    check_page(html);
    expect_lacks(html, hostile);
    expect_lacks(html, hostile_single);
    expect_has(html, "<title>" + hostile_escaped + "</title>");
    expect_has(html, "<h1>" + hostile_escaped + "</h1>");
    expect_has(html, "<p>" + hostile_single_escaped + "</p>");
    expect_has(html, "<a href=\"" + hostile_escaped + "\">"
                         + hostile_single_escaped + "</a>");
}
END_TEST

START_TEST(signed_out_page)
{
    std::string html = render_signed_out(paths());
    check_page(html);
    expect_has(html, "<h1>You have signed out</h1>");
    expect_has(html, "<a href=\"/.twostep/signin\">Sign in again</a>");

    PortalPaths evil = paths();
    evil.signin = hostile;
    html = render_signed_out(evil);
    expect_lacks(html, hostile);
    expect_has(html, "<a href=\"" + hostile_escaped + "\">Sign in again</a>");
}
END_TEST

int main()
{
    Suite *suite = suite_create("pages");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, html_escape_cases);
    tcase_add_test(tc, signin_page);
    tcase_add_test(tc, signin_error_and_refill);
    tcase_add_test(tc, signin_escapes_everything);
    tcase_add_test(tc, code_page_totp);
    tcase_add_test(tc, code_page_other_ways);
    tcase_add_test(tc, code_page_sms);
    tcase_add_test(tc, code_page_later_methods);
    tcase_add_test(tc, code_page_escapes_everything);
    tcase_add_test(tc, message_page);
    tcase_add_test(tc, signed_out_page);
    tcase_add_test(tc, wait_page);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
