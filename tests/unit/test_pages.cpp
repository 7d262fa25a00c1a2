// The portal pages: required fields and labels, and nothing echoed raw.
#include <string>
#include <type_traits>
#include <vector>

#include "core/enroll.h"
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


// The text of the first <form>...</form> that carries the hidden
// action=`action` and a button showing `button`, or "".
std::string form_for(const std::string &html, const std::string &action,
                     const std::string &button)
{
    for (std::size_t at = html.find("<form"); at != std::string::npos;
         at = html.find("<form", at + 1)) {
        std::size_t end = html.find("</form>", at);
        if (end == std::string::npos) {
            return "";
        }
        std::string form = html.substr(at, end + 7 - at);
        if (contains(form, "<input type=\"hidden\" name=\"action\" value=\""
                               + action + "\">")
            && contains(form, ">" + button + "</button>")) {
            return form;
        }
    }
    return "";
}

// The <option>s of the page's <select>: their values, and which is
// selected ("-" when none is, "+" when more than one is).
struct Options {
    std::vector<std::string> values;
    std::string selected = "-";
};

Options select_options(const std::string &html)
{
    Options out;
    std::size_t open = html.find("<select");
    std::size_t close = html.find("</select>");
    ck_assert(open != std::string::npos && close > open);
    for (std::size_t at = html.find("<option", open);
         at != std::string::npos && at < close;
         at = html.find("<option", at + 1)) {
        std::string value = attribute(html, at, "value");
        out.values.push_back(value);
        std::size_t end = html.find('>', at);
        if (html.substr(at, end - at).find(" selected") != std::string::npos) {
            out.selected = out.selected == "-" ? value : "+";
        }
    }
    return out;
}

// A stand-in for qr_svg(): trusted markup the page inserts as is.
const std::string fake_svg =
    "<svg viewBox=\"0 0 21 21\" role=\"img\" aria-label=\"QR code\">"
    "<rect width=\"21\" height=\"21\" fill=\"#fff\"/>"
    "<path fill=\"#000\" d=\"M2 2h7v1h-7z\"/></svg>";

EnrollPage enroll_page()
{
    EnrollPage page;
    page.paths = paths();
    page.enroll = "/.twostep/enroll";
    page.user = "alice";
    page.qr_svg = fake_svg;
    page.secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    page.return_to = "/app?x=1&y=2";
    page.methods = "totp,sms";
    page.form_token = "tok.en";
    return page;
}

SecurityInfoPage info_page()
{
    SecurityInfoPage page;
    page.paths = paths();
    page.manage = "/.twostep/security-info";
    page.enroll = "/.twostep/enroll";
    page.user = "alice";
    page.form_token = "tok.en";
    return page;
}

// Whether a page struct has a member of a name: SecurityInfoPage must not
// carry secrets, so it must never grow one.
#define MEMBER_DETECTOR(member)                                             \
    template <class T, class = void>                                        \
    struct has_##member : std::false_type {};                               \
    template <class T>                                                      \
    struct has_##member<T, std::void_t<decltype(&T::member)>>               \
        : std::true_type {};
MEMBER_DETECTOR(secret)
MEMBER_DETECTOR(totp_secret)
MEMBER_DETECTOR(key)
MEMBER_DETECTOR(password)
MEMBER_DETECTOR(password_hash)
MEMBER_DETECTOR(recovery)
MEMBER_DETECTOR(recovery_hashes)
MEMBER_DETECTOR(phone)
MEMBER_DETECTOR(totp)
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
    std::string html = render_signin(PageContext(), page);
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
    std::string html = render_signin(PageContext(), page);
    check_page(html);
    expect_has(html, "role=\"alert\">Wrong user name or password.</p>");
    std::size_t user = html.find("id=\"username\"");
    ck_assert(attribute(html, user, "value") == "bob");
    // The name is kept: the focus goes to the password, and both fields
    // say they are in error and where the error is (WCAG 3.3.1).
    std::size_t pass = html.find("id=\"password\"");
    ck_assert_uint_eq(count(html, " autofocus"), 1);
    ck_assert(html.find(" autofocus") > pass);
    ck_assert(attribute(html, user, "aria-invalid") == "true");
    ck_assert(attribute(html, pass, "aria-invalid") == "true");
    ck_assert(attribute(html, user, "aria-describedby") == "error");
    ck_assert(attribute(html, pass, "aria-describedby") == "error");
    expect_has(html, "id=\"error\" role=\"alert\"");
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
    std::string html = render_signin(PageContext(), page);
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
    std::string html = render_code(PageContext(), code_page(Method::totp, bit(Method::totp)));
    check_page(html);
    expect_has(html, "<title>Enter code</title>");
    expect_has(html, "<h1>Enter code</h1>");
    expect_has(html, "Signing in as <strong>alice</strong>");
    expect_has(html, "Enter the code displayed in the authenticator app on "
                     "your mobile device.");
    expect_has(html, "<form method=\"post\" action=\"/.twostep/verify\">");
    expect_has(html, "<label for=\"code\">Code</label>");
    std::size_t code = html.find("<input class=\"field\" id=\"code\"");
    ck_assert(code != std::string::npos);
    ck_assert(attribute(html, code, "name") == "code");
    ck_assert(attribute(html, code, "inputmode") == "numeric");
    // No pattern: the server says what is wrong with a code, in words a
    // screen reader reads, not a browser's "match the requested format".
    expect_lacks(html, "pattern=");
    expect_lacks(html, "aria-invalid");
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
    expect_lacks(render_code(PageContext(), code_page(Method::totp, 0)),
                 "Sign in another way");
}
END_TEST

START_TEST(code_page_other_ways)
{
    std::string html = render_code(PageContext(), code_page(Method::totp, all_methods));
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

    html = render_code(PageContext(), code_page(Method::totp,
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
    std::string before = render_code(PageContext(), code_page(Method::sms,
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
    std::string html = render_code(PageContext(), sent);
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
    expect_lacks(render_code(PageContext(), alone), "Sign in another way");
}
END_TEST

START_TEST(code_page_later_methods)
{
    for (Method m : {Method::push, Method::call}) {
        std::string html = render_code(PageContext(), code_page(m, all_methods));
        check_page(html);
        expect_has(html, "Signing in as <strong>alice</strong>");
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
    std::string html = render_wait(PageContext(), page);
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

    // "I've approved it" says it was pressed; the refresh does not.
    expect_has(html, "check=1&amp;approved=1\">I&#39;ve approved it</a>");
    expect_lacks(html, "class=\"notice\"");
    page.notice = "wait.not_yet";
    html = render_wait(PageContext(), page);
    expect_has(html, "<p class=\"notice\" role=\"status\">No approval has "
                     "arrived yet.");
    page.notice.clear();

    // The call's key, as the provider's call asks for it: any key (Duo),
    // the pound key (Twilio).
    page.method = Method::call;
    page.number.clear();
    html = render_wait(PageContext(), page);
    expect_has(html, "<h1>Answer the call and press any key</h1>");
    expect_has(html, "Answer it and press any key to approve.");
    expect_lacks(html, "pound");
    expect_lacks(html, "class=\"number\"");
    page.call_pound = true;
    html = render_wait(PageContext(), page);
    expect_has(html, "<h1>Answer the call and press the pound key (#)</h1>");
    expect_has(html, "Answer it and press the pound key (#) to approve.");
    expect_lacks(html, "any key");
}
END_TEST

START_TEST(call_page_names_the_key)
{
    CodePage page = code_page(Method::call, all_methods);
    std::string html = render_code(PageContext(), page);
    expect_has(html, "Answer it and press any key to approve.");
    page.call_pound = true;
    html = render_code(PageContext(), page);
    expect_has(html, "Answer it and press the pound key (#) to approve.");
    expect_lacks(html, "any key");
}
END_TEST

START_TEST(minutes_to_wait)
{
    PageContext ctx;
    // Rounded up: never a promise of a retry that would still be refused.
    std::string one = minutes_text(ctx, "error.too_many_requests", 1);
    ck_assert_str_eq(one.c_str(),
                     "Too many requests were sent to your phone. Try again "
                     "in 1 minute, or sign in another way.");
    ck_assert(contains(minutes_text(ctx, "error.too_many_requests", 60),
                       "in 1 minute,"));
    ck_assert(contains(minutes_text(ctx, "error.too_many_requests", 61),
                       "in 2 minutes,"));
    ck_assert(contains(minutes_text(ctx, "error.too_many_requests", 420),
                       "in 7 minutes,"));
    ck_assert(contains(minutes_text(ctx, "error.paused", 899),
                       "in 15 minutes,"));
    ck_assert(contains(minutes_text(ctx, "msg.locked.text", 300),
                       "in 5 minutes."));
    ctx.lang = PageTheme::builtin().language("de");
    ck_assert_ptr_nonnull(ctx.lang);
    ck_assert(contains(minutes_text(ctx, "error.too_many_requests", 420),
                       "in 7 Minuten erneut"));
    ck_assert(contains(minutes_text(ctx, "error.too_many_requests", 30),
                       "in 1 Minute erneut"));
}
END_TEST

START_TEST(locked_page)
{
    std::string html = render_locked(PageContext(), paths(),
                                     "Try again in 5 minutes.", "tok.en");
    check_page(html);
    expect_has(html, "<h1>Too many attempts</h1>");
    expect_has(html, "<p>Try again in 5 minutes.</p>");
    expect_has(html, "<form method=\"post\" action=\"/.twostep/logout\">");
    expect_has(html, "name=\"form_token\" value=\"tok.en\"");
    expect_has(html, ">Sign out</button>");

    PortalPaths evil = paths();
    evil.logout = hostile;
    html = render_locked(PageContext(), evil, hostile, hostile_single);
    expect_lacks(html, hostile);
    expect_lacks(html, hostile_single);

    // Other message pages have no sign-out form.
    expect_lacks(render_message(PageContext(), "T", "x"), "<form");
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
    std::string html = render_code(PageContext(), page);
    check_page(html);
    expect_lacks(html, hostile);
    expect_lacks(html, hostile_single);
    expect_lacks(html, "alert(1)</script>");
    expect_has(html, "Signing in as <strong>" + hostile_escaped + "</strong>");
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
    std::string html = render_message(PageContext(), "Access denied", "You may not pass.");
    check_page(html);
    expect_has(html, "<title>Access denied</title>");
    expect_has(html, "<h1>Access denied</h1>");
    expect_has(html, "<p>You may not pass.</p>");
    expect_lacks(html, "<a ");

    html = render_message(PageContext(), "T", "x", "/back");
    expect_has(html, "<a href=\"/back\">/back</a>");

    html = render_message(PageContext(), hostile, hostile_single, hostile, hostile_single);
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
    std::string html = render_signed_out(PageContext(), paths());
    check_page(html);
    expect_has(html, "<h1>You have signed out</h1>");
    expect_has(html, "<a href=\"/.twostep/signin\">Sign in again</a>");

    PortalPaths evil = paths();
    evil.signin = hostile;
    html = render_signed_out(PageContext(), evil);
    expect_lacks(html, hostile);
    expect_has(html, "<a href=\"" + hostile_escaped + "\">Sign in again</a>");
}
END_TEST

START_TEST(enroll_page_contents)
{
    std::string html = render_enroll(PageContext(), enroll_page());
    check_page(html);
    expect_has(html, "<title>Set up your authenticator app</title>");
    expect_has(html, "<h1>Set up your authenticator app</h1>");
    expect_has(html, "Signed in as <strong>alice</strong>");
    expect_has(html, "<li>Install an authenticator app on your phone "
                     "(Microsoft Authenticator, Google Authenticator, "
                     "FreeOTP, ...).</li>");
    expect_has(html, "<li>In the app, add an account and scan this QR "
                     "code.</li>");
    expect_has(html, "<li id=\"code-help\">Enter the 6-digit code the app "
                     "shows.</li>");
    // The svg as is, in its sizing box.
    expect_has(html, "<div class=\"qr\">" + fake_svg + "</div>");
    // The key for typing, in groups of four, and only that way.
    expect_has(html, "<summary>Can&#39;t scan the code?</summary>");
    expect_has(html, "Enter this key in the app, as a time-based key.");
    expect_has(html, "<code class=\"key\">JBSW Y3DP EHPK 3PXP JBSW Y3DP "
                     "EHPK 3PXP</code>");
    expect_lacks(html, "JBSWY3DP");
    std::size_t details = html.find("<details>");
    std::size_t key = html.find("<code class=\"key\">");
    ck_assert(details != std::string::npos);
    ck_assert(key > details && key < html.find("</details>"));
    // The code box.
    expect_has(html, "<form method=\"post\" action=\"/.twostep/enroll\">");
    expect_has(html, "<label for=\"code\">Code</label>");
    std::size_t code = html.find("<input class=\"field\" id=\"code\"");
    ck_assert(code != std::string::npos);
    ck_assert(attribute(html, code, "name") == "code");
    ck_assert(attribute(html, code, "inputmode") == "numeric");
    ck_assert(attribute(html, code, "autocomplete") == "one-time-code");
    ck_assert(attribute(html, code, "aria-describedby") == "code-help");
    ck_assert_uint_eq(count(html, " autofocus"), 1);
    ck_assert(html.find(" autofocus") > code);
    ck_assert(html.find(" autofocus") < html.find('>', code));
    expect_has(html, "<input type=\"hidden\" name=\"return_to\" "
                     "value=\"/app?x=1&amp;y=2\">");
    expect_has(html, "<input type=\"hidden\" name=\"methods\" "
                     "value=\"totp,sms\">");
    expect_has(html, "<input type=\"hidden\" name=\"form_token\" "
                     "value=\"tok.en\">");
    // The hidden fields belong to the code form.
    ck_assert(html.find("name=\"form_token\"") > code);
    ck_assert(html.find("name=\"form_token\"") < html.find("</form>"));
    expect_has(html, "<button type=\"submit\">Verify</button>");
    expect_lacks(html, "role=\"alert\"");

    // A key that is not a multiple of four long keeps its tail.
    EnrollPage odd = enroll_page();
    odd.secret = "ABCDEFGHIJ";
    expect_has(render_enroll(PageContext(), odd), "<code class=\"key\">ABCD EFGH IJ</code>");
}
END_TEST

START_TEST(enroll_page_error)
{
    EnrollPage page = enroll_page();
    page.error = "That code didn't work.";
    std::string html = render_enroll(PageContext(), page);
    check_page(html);
    expect_has(html, "<p class=\"alert\" id=\"error\" role=\"alert\">That "
                     "code didn&#39;t work.</p>");
    std::size_t code = html.find("<input class=\"field\" id=\"code\"");
    ck_assert(attribute(html, code, "aria-describedby") == "code-help error");
    // The error is in the form, before the box.
    ck_assert(html.find("role=\"alert\"") > html.find("<form"));
    ck_assert(html.find("role=\"alert\"") < code);
}
END_TEST

START_TEST(enroll_page_real_qr)
{
    std::string svg = qr_svg("otpauth://totp/nginx-twostep:alice?secret="
                             "JBSWY3DPEHPK3PXP&issuer=nginx-twostep");
    EnrollPage page = enroll_page();
    page.qr_svg = svg;
    std::string html = render_enroll(PageContext(), page);
    expect_has(html, "<div class=\"qr\">" + svg + "</div>");
    // The SVG namespace is a name, not something loaded; without it the
    // page passes every check.
    const std::string ns = " xmlns=\"http://www.w3.org/2000/svg\"";
    std::size_t at = html.find(ns);
    ck_assert(at != std::string::npos);
    check_page(html.erase(at, ns.size()));
}
END_TEST

START_TEST(enroll_page_escapes_everything)
{
    EnrollPage page = enroll_page();
    page.paths = {hostile, hostile, hostile, hostile, hostile};
    page.enroll = hostile;
    page.user = hostile;
    page.secret = "<b>&\"'x";
    page.return_to = hostile_single;
    page.methods = hostile;
    page.form_token = hostile_single;
    page.error = hostile;
    std::string html = render_enroll(PageContext(), page);
    check_page(html);
    expect_lacks(html, hostile);
    expect_lacks(html, hostile_single);
    expect_lacks(html, "<b>");
    expect_has(html, "Signed in as <strong>" + hostile_escaped + "</strong>");
    expect_has(html, "<code class=\"key\">&lt;b&gt;&amp; &quot;&#39;x</code>");
    expect_has(html, "role=\"alert\">" + hostile_escaped + "</p>");
    expect_has(html, "<form method=\"post\" action=\"" + hostile_escaped
                         + "\">");
    expect_has(html, "name=\"return_to\" value=\"" + hostile_single_escaped
                         + "\"");
    expect_has(html, "name=\"methods\" value=\"" + hostile_escaped + "\"");
    expect_has(html, "name=\"form_token\" value=\"" + hostile_single_escaped
                         + "\"");
}
END_TEST

START_TEST(security_info_page_basics)
{
    SecurityInfoPage page = info_page();
    page.totp = true;
    page.available = bit(Method::totp);
    page.recovery_left = 7;
    std::string html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "<title>Security info</title>");
    expect_has(html, "<h1>Security info</h1>");
    expect_has(html, "Signed in as <strong>alice</strong>");
    expect_has(html, "<a href=\"/.twostep/logout\">Sign out</a>");
    for (const char *h2 : {"Sign-in methods", "Default sign-in method",
                           "Recovery codes"}) {
        expect_has(html, "\">" + std::string(h2) + "</h2>");
    }
    expect_lacks(html, "role=\"alert\"");
    expect_lacks(html, "role=\"status\"");

    // Every form posts to the manage URL with the form token.
    std::size_t forms = count(html, "<form");
    ck_assert_uint_ge(forms, 5);  // replace, remove, phone, default, recovery
    ck_assert_uint_eq(count(html, "<form method=\"post\" "
                                  "action=\"/.twostep/security-info\">"),
                      forms);
    ck_assert_uint_eq(count(html, "<input type=\"hidden\" name=\"form_token\" "
                                  "value=\"tok.en\">"),
                      forms);
    ck_assert_uint_eq(count(html, "<input type=\"hidden\" name=\"action\" "),
                      forms);
    ck_assert_uint_eq(count(html, "</form>"), forms);

    // Recovery codes: how many are left, and new ones with a warning.
    expect_has(html, "<p>7 left</p>");
    std::string recovery = form_for(html, "recovery", "Get new codes");
    ck_assert(!recovery.empty());
    expect_has(html, "New codes replace the old ones: the old codes stop "
                     "working.");

    // The select has a bound label.
    std::size_t select = html.find("<select");
    ck_assert(select != std::string::npos);
    std::string id = attribute(html, select, "id");
    ck_assert(!id.empty());
    expect_has(html, "<label for=\"" + id + "\">");
    ck_assert(attribute(html, select, "name") == "method");
    ck_assert(!form_for(html, "default", "Set default").empty());
    ck_assert(contains(form_for(html, "default", "Set default"), "<select"));
}
END_TEST

START_TEST(security_info_totp)
{
    SecurityInfoPage page = info_page();
    std::string html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "<h3>Authenticator app</h3>\n<p class=\"state\">Not set "
                     "up</p>");
    ck_assert(!form_for(html, "totp", "Add authenticator app").empty());
    expect_lacks(html, ">Replace</button>");
    expect_lacks(html, "value=\"remove-totp\"");

    page.totp = true;
    html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "<h3>Authenticator app</h3>\n<p class=\"state\">Set "
                     "up</p>");
    expect_lacks(html, "Add authenticator app");
    ck_assert(!form_for(html, "totp", "Replace").empty());
    ck_assert(!form_for(html, "remove-totp", "Remove").empty());
}
END_TEST

START_TEST(security_info_phone)
{
    SecurityInfoPage page = info_page();
    std::string html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "<h3>Phone</h3>\n<p class=\"state\">Not set up</p>");
    std::string save = form_for(html, "phone", "Save phone");
    ck_assert(!save.empty());
    std::size_t input = save.find("<input class=\"field\" id=\"phone\"");
    ck_assert(input != std::string::npos);
    ck_assert(attribute(save, input, "name") == "phone");
    ck_assert(attribute(save, input, "type") == "tel");
    ck_assert(attribute(save, input, "autocomplete") == "tel");
    ck_assert(attribute(save, input, "placeholder") == "+15551234567");
    expect_has(save, "<label for=\"phone\">");
    // Nothing to remove.
    ck_assert(form_for(html, "phone", "Remove").empty());
    expect_lacks(html, "name=\"phone\" value=\"\"");

    page.phone_masked = "+1 *** *** 4567";
    html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "<h3>Phone</h3>\n<p class=\"state\">+1 *** *** 4567</p>");
    ck_assert(!form_for(html, "phone", "Save phone").empty());
    std::string remove = form_for(html, "phone", "Remove");
    ck_assert(!remove.empty());
    expect_has(remove, "<input type=\"hidden\" name=\"phone\" value=\"\">");
    expect_lacks(remove, "type=\"tel\"");
}
END_TEST

START_TEST(security_info_available_methods)
{
    SecurityInfoPage page = info_page();
    page.available = bit(Method::totp);
    std::string html = render_security_info(PageContext(), page);
    expect_lacks(html, push_label);
    expect_lacks(html, call_label);
    expect_lacks(html, sms_label);

    page.available = bit(Method::call) | bit(Method::sms);
    html = render_security_info(PageContext(), page);
    check_page(html);
    expect_lacks(html, push_label);
    expect_has(html, "<h3>" + std::string(call_label) + "</h3>\n"
                         "<p class=\"state\">Available</p>");
    expect_has(html, "<h3>" + std::string(sms_label) + "</h3>");

    page.available = all_methods;
    html = render_security_info(PageContext(), page);
    for (const char *label : {push_label, call_label, sms_label}) {
        expect_has(html, "<h3>" + std::string(label) + "</h3>");
    }
    // totp has its own row, not a second one; recovery codes their own
    // section.
    expect_lacks(html, "<h3>" + std::string(totp_label) + "</h3>");
    expect_lacks(html, "<h3>Use a recovery code</h3>");
    expect_has(html, "Recovery codes</h2>");
}
END_TEST

// Push set up in security info: its own row posting to the set-up page,
// and push no longer repeated among the methods others provide.
START_TEST(security_info_push_row)
{
    SecurityInfoPage page = info_page();
    page.available = all_methods;
    page.push_setup = "/.twostep/push-setup";
    std::string html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "<h3>Push notifications</h3>\n"
                     "<p class=\"state\">Not set up</p>");
    expect_has(html, "<form method=\"post\" action=\"/.twostep/push-setup\">");
    expect_has(html, ">Set up push notifications</button>");
    expect_lacks(html, "<h3>" + std::string(push_label) + "</h3>");
    expect_lacks(html, "value=\"remove\"");
    page.push = true;
    html = render_security_info(PageContext(), page);
    expect_has(html, "<h3>Push notifications</h3>\n"
                     "<p class=\"state\">Set up</p>");
    expect_has(html, "aria-label=\"Remove push notifications\"");
    expect_has(html, "aria-label=\"Replace push notifications\"");
}
END_TEST

// "Set up push notifications": how to subscribe, then the test push's
// number; the topic and server escaped, only the QR code as markup.
START_TEST(push_setup_page)
{
    PushSetupPage page;
    page.setup = "/.twostep/push-setup";
    page.manage = "/.twostep/security-info";
    page.user = "<alice>";
    page.server = "https://ntfy.example.com/?a=<b>";
    page.topic = "Xk3_9aZ-0bQvLm2PqR7sTuWy";
    page.topic_url = "https://ntfy.example.com/Xk3_9aZ-0bQvLm2PqR7sTuWy";
    page.qr_svg = qr_svg("ntfy://ntfy.example.com/Xk3_9aZ-0bQvLm2PqR7sTuWy",
                         "QR code");
    page.form_token = "tok\"en";
    std::string html = render_push_setup(PageContext(), page);
    expect_has(html, "<h1>Set up push notifications</h1>");
    expect_has(html, "<svg");
    expect_has(html, "<code class=\"key\">Xk3_9aZ-0bQvLm2PqR7sTuWy</code>");
    expect_has(html, "https://ntfy.example.com/?a=&lt;b&gt;");
    expect_has(html, "&lt;alice&gt;");
    expect_has(html, "value=\"tok&quot;en\"");
    expect_has(html, "<input type=\"hidden\" name=\"action\" value=\"send\">");
    expect_lacks(html, "<script");
    expect_lacks(html, "http-equiv=\"refresh\"");

    page.waiting = true;
    page.number = "42";
    html = render_push_setup(PageContext(), page);
    expect_has(html, "<h1>Approve the test notification</h1>");
    expect_has(html, "<strong class=\"number\">42</strong>");
    expect_has(html, "content=\"3;url=/.twostep/push-setup?check=1\"");
    expect_has(html, "data-status=\"/.twostep/push-setup?status=1\"");
    ck_assert_uint_eq(count(html, "<script"), 1);
    expect_has(html, ">Send a new test notification</button>");
    // While it waits, the topic is not shown again.
    expect_lacks(html, "Xk3_9aZ-0bQvLm2PqR7sTuWy");
}
END_TEST

// A refused default says why beside the choice; Duo not answering is said
// in the section, whether or not anything else can be chosen.
START_TEST(security_info_default_refused)
{
    SecurityInfoPage page = info_page();
    page.available = bit(Method::totp);
    std::string html = render_security_info(PageContext(), page);
    expect_lacks(html, "aria-invalid");
    expect_lacks(html, "id=\"default-unchecked\"");

    page.default_error = "info.error.default_unusable";
    page.provider_unchecked = true;
    html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "<p class=\"alert\" id=\"method-error\" role=\"alert\">"
                     "That method can");
    expect_has(html, "id=\"method\" name=\"method\" autofocus "
                     "aria-invalid=\"true\" aria-describedby=\"method-error\">");
    expect_has(html, "<p class=\"state\" id=\"default-unchecked\">Push, "
                     "call and text can");

    // Nothing to choose from: the error and the reason still show.
    page.available = 0;
    html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "id=\"method-error\" role=\"alert\">");
    expect_has(html, "id=\"default-unchecked\"");
}
END_TEST

START_TEST(security_info_default_select)
{
    using Values = std::vector<std::string>;
    SecurityInfoPage page = info_page();
    page.available = bit(Method::totp) | bit(Method::sms);
    page.default_method = Method::sms;
    std::string html = render_security_info(PageContext(), page);
    check_page(html);
    Options opts = select_options(html);
    ck_assert(opts.values == (Values{"", "totp", "sms"}));
    ck_assert(opts.selected == "sms");
    expect_has(html, "<option value=\"\">(none)</option>");
    expect_has(html, "<option value=\"sms\" selected>" + std::string(sms_label)
                         + "</option>");
    expect_has(html, "<option value=\"totp\">" + std::string(totp_label)
                         + "</option>");

    // No default: "(none)" is selected.
    page.default_method.reset();
    opts = select_options(render_security_info(PageContext(), page));
    ck_assert(opts.values == (Values{"", "totp", "sms"}));
    ck_assert(opts.selected == "");

    // A default that is not available is neither listed nor selected.
    page.default_method = Method::push;
    opts = select_options(render_security_info(PageContext(), page));
    ck_assert(opts.values == (Values{"", "totp", "sms"}));
    ck_assert(opts.selected == "");

    // Every method, a recovery code too: that one is never the default.
    page.available = all_methods;
    page.default_method = Method::call;
    opts = select_options(render_security_info(PageContext(), page));
    ck_assert(opts.values
              == (Values{"", "totp", "push", "call", "sms", "webauthn"}));
    ck_assert(opts.selected == "call");
    page.default_method = Method::recovery;
    opts = select_options(render_security_info(PageContext(), page));
    ck_assert(opts.values
              == (Values{"", "totp", "push", "call", "sms", "webauthn"}));
    ck_assert(opts.selected == "");

    // Nothing available, or only recovery codes: nothing to choose from.
    for (MethodSet none : {0u, bit(Method::recovery)}) {
        page.available = none;
        html = render_security_info(PageContext(), page);
        check_page(html);
        expect_lacks(html, "<select");
        ck_assert(form_for(html, "default", "Set default").empty());
        expect_has(html, "Default sign-in method</h2>\n"
                         "<p>Set up a sign-in method first.</p>");
    }
}
END_TEST

START_TEST(security_info_recovery_codes)
{
    SecurityInfoPage page = info_page();
    page.recovery_left = 0;
    std::string html = render_security_info(PageContext(), page);
    expect_has(html, "<p>0 left</p>");
    expect_lacks(html, "class=\"codes\"");
    expect_lacks(html, "Save these codes somewhere safe.");
    expect_lacks(html, "<code>");

    page.recovery_left = 2;
    page.new_recovery_codes = {"aaaaa-bbbbb-ccccc-ddddd-eeeee",
                               "fffff-ggggg-hhhhh-iiiii-jjjjj"};
    page.notice = "New recovery codes made.";
    html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "<p>2 left</p>");
    std::size_t box = html.find("<section class=\"codes\"");
    ck_assert(box != std::string::npos);
    expect_has(html, "Save these codes somewhere safe. Each works once, and "
                     "they will not be shown again.");
    ck_assert_uint_eq(count(html, "<li><code>"), 2);
    std::size_t a = html.find("<li><code>aaaaa-bbbbb-ccccc-ddddd-eeeee"
                              "</code></li>");
    std::size_t f = html.find("<li><code>fffff-ggggg-hhhhh-iiiii-jjjjj"
                              "</code></li>");
    ck_assert(a > box && f > a);
    ck_assert(f < html.find("</section>", box));
    // First: before the list of methods, after the notice.
    ck_assert(box < html.find("Sign-in methods</h2>"));
    ck_assert(html.find("role=\"status\">New recovery codes made.</p>") < box);
}
END_TEST

START_TEST(security_info_escapes_everything)
{
    SecurityInfoPage page = info_page();
    page.paths = {hostile, hostile, hostile, hostile, hostile};
    page.manage = hostile;
    page.enroll = hostile;
    page.user = hostile;
    page.totp = true;
    page.phone_masked = hostile_single;
    page.available = all_methods;
    page.default_method = Method::totp;
    page.new_recovery_codes = {hostile, hostile_single};
    page.form_token = hostile_single;
    page.notice = hostile;
    page.error = hostile_single;
    page.app = hostile;
    page.phone_typed = hostile;
    page.phone_error = hostile_single;
    std::string html = render_security_info(PageContext(), page);
    check_page(html);
    expect_has(html, "<p class=\"back\"><a href=\"" + hostile_escaped
                     + "\">");
    expect_has(html, "required value=\"" + hostile_escaped + "\"");
    expect_has(html, "id=\"phone-error\" role=\"alert\">"
                     + hostile_single_escaped + "</p>");
    // With codes to download the page carries the copy script, once.
    SecurityInfoPage codes = page;
    codes.codes_token = hostile;
    std::string with_codes = render_security_info(PageContext(), codes);
    expect_lacks(with_codes, hostile);
    expect_has(with_codes, "name=\"codes\" value=\"" + hostile_escaped
                           + "\">");
    ck_assert_uint_eq(count(with_codes, "<script>"), 1);
    expect_has(with_codes, "navigator.clipboard.writeText");
    expect_lacks(html, hostile);
    expect_lacks(html, hostile_single);
    expect_lacks(html, "alert(1)</script>");
    expect_has(html, "Signed in as <strong>" + hostile_escaped + "</strong>");
    expect_has(html, "role=\"alert\">" + hostile_single_escaped + "</p>");
    expect_has(html, "role=\"status\">" + hostile_escaped + "</p>");
    expect_has(html, "<p class=\"state\">" + hostile_single_escaped + "</p>");
    expect_has(html, "<li><code>" + hostile_escaped + "</code></li>");
    expect_has(html, "<li><code>" + hostile_single_escaped + "</code></li>");
    expect_has(html, "<a href=\"" + hostile_escaped + "\">Sign out</a>");
    std::size_t forms = count(html, "<form");
    ck_assert_uint_ge(forms, 6);
    ck_assert_uint_eq(count(html, "<form method=\"post\" action=\""
                                      + hostile_escaped + "\">"),
                      forms);
    ck_assert_uint_eq(count(html, "name=\"form_token\" value=\""
                                      + hostile_single_escaped + "\">"),
                      forms);
}
END_TEST

START_TEST(security_info_holds_no_secrets)
{
    // The detector works: EnrollPage has a secret, by design.
    ck_assert(has_secret<EnrollPage>::value);
    ck_assert(has_totp<SecurityInfoPage>::value);
    // SecurityInfoPage has nothing that could leak one.
    ck_assert(!has_secret<SecurityInfoPage>::value);
    ck_assert(!has_totp_secret<SecurityInfoPage>::value);
    ck_assert(!has_key<SecurityInfoPage>::value);
    ck_assert(!has_password<SecurityInfoPage>::value);
    ck_assert(!has_password_hash<SecurityInfoPage>::value);
    ck_assert(!has_recovery<SecurityInfoPage>::value);
    ck_assert(!has_recovery_hashes<SecurityInfoPage>::value);
    ck_assert(!has_phone<SecurityInfoPage>::value);  // only phone_masked
    // And totp is only a flag.
    ck_assert((std::is_same<decltype(SecurityInfoPage::totp), bool>::value));
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
    tcase_add_test(tc, call_page_names_the_key);
    tcase_add_test(tc, minutes_to_wait);
    tcase_add_test(tc, locked_page);
    tcase_add_test(tc, enroll_page_contents);
    tcase_add_test(tc, enroll_page_error);
    tcase_add_test(tc, enroll_page_real_qr);
    tcase_add_test(tc, enroll_page_escapes_everything);
    tcase_add_test(tc, security_info_page_basics);
    tcase_add_test(tc, security_info_totp);
    tcase_add_test(tc, security_info_phone);
    tcase_add_test(tc, security_info_available_methods);
    tcase_add_test(tc, security_info_default_select);
    tcase_add_test(tc, security_info_default_refused);
    tcase_add_test(tc, security_info_push_row);
    tcase_add_test(tc, push_setup_page);
    tcase_add_test(tc, security_info_recovery_codes);
    tcase_add_test(tc, security_info_escapes_everything);
    tcase_add_test(tc, security_info_holds_no_secrets);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
