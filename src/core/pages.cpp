#include "pages.h"

#include <openssl/evp.h>

#include <stdexcept>

#include "form.h"

namespace twostep {

namespace {

// One fixed stylesheet, so a Content-Security-Policy can allow it by hash.
constexpr std::string_view style = R"(
*{box-sizing:border-box}
body{margin:0;min-height:100vh;display:flex;align-items:center;
justify-content:center;background:#f2f2f2;color:#1b1b1b;
font:15px/1.5 system-ui,-apple-system,Segoe UI,Roboto,Helvetica,Arial,
sans-serif}
main{width:100%;max-width:440px;margin:24px 16px;padding:44px;
background:#fff;box-shadow:0 2px 6px rgba(0,0,0,.2)}
h1{margin:0 0 16px;font-size:24px;font-weight:600;line-height:1.3}
h2{margin:32px 0 4px;font-size:15px;font-weight:600}
p{margin:0 0 16px}
label{display:block;margin:16px 0 2px;font-weight:600}
.field{display:block;width:100%;padding:6px 0;border:0;
border-bottom:1px solid #666;background:transparent;color:inherit;
font:inherit}
.field:focus{border-bottom:2px solid #0067b8;margin-bottom:-1px}
.actions{margin-top:32px;text-align:right}
button{min-width:108px;padding:6px 16px;border:1px solid #0067b8;
background:#0067b8;color:#fff;font:inherit;cursor:pointer}
button:hover{background:#005a9e}
:focus-visible{outline:2px solid #1b1b1b;outline-offset:2px}
a{color:#0067b8}
.who{margin-bottom:8px;color:#595959}
.alert{padding:8px 12px;border-left:4px solid #a80000;background:#fde7e9;
color:#a80000}
.notice{padding:8px 12px;border-left:4px solid #0067b8;background:#eff6fc}
.number{font-size:32px;letter-spacing:4px}
.ways{margin:0;padding:0;list-style:none}
.ways a{display:block;padding:10px 0;border-top:1px solid #e6e6e6}
.steps{margin:0 0 16px;padding-left:20px}
.qr{max-width:220px;margin:0 auto 16px}
.qr svg{display:block;width:100%;height:auto}
summary{cursor:pointer;color:#0067b8}
.key{font:18px/1.6 ui-monospace,Menlo,Consolas,monospace;word-spacing:4px}
h3{margin:0;font-size:15px;font-weight:600}
.rows{margin:0;padding:0;list-style:none}
.rows>li{padding:12px 0;border-top:1px solid #e6e6e6}
.state{margin:0 0 8px;color:#595959}
.row-actions{display:flex;flex-wrap:wrap;gap:8px;justify-content:flex-end}
.row-actions.actions{margin-top:16px}
.rows form+.row-actions{margin-top:8px}
select.field{padding:6px 0}
.secondary{background:#fff;color:#0067b8}
button.secondary:hover{background:#eff6fc}
.codes{margin:0 0 16px;padding:12px 16px;border:2px solid #0067b8;
background:#eff6fc}
.codes h2{margin-top:0}
.codes ul{margin:0;padding:0;list-style:none}
.codes code{font:16px/1.8 ui-monospace,Menlo,Consolas,monospace}
.links{margin-top:32px}
@media (max-width:520px){body{align-items:flex-start;background:#fff}
main{margin:0;padding:24px;box-shadow:none}}
)";

// The waiting page's only script, allowed by its hash like the style: it
// long-polls the status URL and moves on when the provider has answered.
constexpr std::string_view script = R"(
(function () {
  var box = document.getElementById('wait');
  var status = box.getAttribute('data-status');
  var done = box.getAttribute('data-done');
  function poll() {
    fetch(status, {credentials: 'same-origin', cache: 'no-store'})
      .then(function (r) { return r.json(); })
      .then(function (s) {
        if (s.state === 'waiting') { poll(); } else { location.replace(done); }
      })
      .catch(function () {
        setTimeout(function () { location.replace(done); }, 3000);
      });
  }
  poll();
})();
)";

std::string csp_hash(std::string_view text)
{
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_len = 0;
    if (!EVP_Digest(text.data(), text.size(), digest, &digest_len,
                    EVP_sha256(), nullptr))
        throw std::runtime_error("SHA-256 failed");

    std::string b64(4 * ((digest_len + 2) / 3) + 1, '\0');
    int n = EVP_EncodeBlock(reinterpret_cast<unsigned char *>(b64.data()),
                            digest, static_cast<int>(digest_len));
    b64.resize(n);
    return "'sha256-" + b64 + "'";
}

std::string layout(std::string_view title, std::string_view body,
                   std::string_view head = {}, bool with_script = false)
{
    std::string out;
    out.reserve(2048 + body.size());
    out += "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n"
           "<meta charset=\"utf-8\">\n"
           "<meta name=\"viewport\" "
           "content=\"width=device-width, initial-scale=1\">\n"
           // The portal's URLs carry return_to: no Referer to other sites
           // (same-origin keeps Origin on the pages' own form posts).
           "<meta name=\"referrer\" content=\"same-origin\">\n"
           "<meta name=\"robots\" content=\"noindex, nofollow\">\n"
           "<title>";
    out += html_escape(title);
    out += "</title>\n<style>";
    out += style;
    out += "</style>\n";
    out += head;
    out += "</head>\n<body>\n<main>\n";
    out += body;
    out += "</main>\n";
    if (with_script) {
        out += "<script>";
        out += script;
        out += "</script>\n";
    }
    out += "</body>\n</html>\n";
    return out;
}

void hidden(std::string &out, std::string_view name, std::string_view value)
{
    out += "<input type=\"hidden\" name=\"";
    out += html_escape(name);
    out += "\" value=\"";
    out += html_escape(value);
    out += "\">\n";
}

void alert(std::string &out, std::string_view error)
{
    if (!error.empty()) {
        out += "<p class=\"alert\" id=\"error\" role=\"alert\">";
        out += html_escape(error);
        out += "</p>\n";
    }
}

const char *method_label(Method m)
{
    switch (m) {
    case Method::totp:
        return "Use a verification code from my authenticator app";
    case Method::push:
        return "Approve a request on my authenticator app";
    case Method::call:
        return "Call my phone";
    case Method::sms:
        return "Text my phone";
    case Method::recovery:
        return "Use a recovery code";
    }
    return "";
}

constexpr Method method_order[] = {Method::totp, Method::push, Method::call,
                                   Method::sms, Method::recovery};

void other_ways(std::string &out, const CodePage &page)
{
    MethodSet others = page.offered & ~static_cast<unsigned>(page.method);
    if (others == 0) {
        return;
    }
    out += "<section aria-labelledby=\"other-ways\">\n"
           "<h2 id=\"other-ways\">Sign in another way</h2>\n"
           "<ul class=\"ways\">\n";
    for (Method m : method_order) {
        if (!has_method(others, m)) {
            continue;
        }
        std::string href = page.paths.verify + "?method=" + method_name(m)
            + "&return_to=" + url_encode(page.return_to)
            + "&methods=" + url_encode(page.methods);
        out += "<li><a href=\"";
        out += html_escape(href);
        out += "\">";
        out += method_label(m);
        out += "</a></li>\n";
    }
    out += "</ul>\n</section>\n";
}

void notice(std::string &out, std::string_view text)
{
    if (!text.empty()) {
        out += "<p class=\"notice\" role=\"status\">";
        out += html_escape(text);
        out += "</p>\n";
    }
}

// Push, call, or an sms not sent yet: one button that starts it, so
// nothing reaches the phone without the user asking (no prefetch, no
// notification spam from merely opening the page).
void send_form(std::string &body, const CodePage &page)
{
    const char *text = "We'll text a code to your phone.";
    const char *button = "Send code";

    if (page.method == Method::push) {
        text = "We'll send a sign-in request to the authenticator app on "
               "your phone.";
        button = "Send request";

    } else if (page.method == Method::call) {
        text = "We'll call your phone. Answer it and press any key to "
               "approve.";
        button = "Call me";
    }

    body += "<h1>Verify your identity</h1>\n";
    alert(body, page.error);
    notice(body, page.notice);
    body += "<p>";
    body += text;
    body += "</p>\n<form method=\"post\" action=\"";
    body += html_escape(page.paths.verify);
    body += "\">\n";
    hidden(body, "method", method_name(page.method));
    hidden(body, "action", "send");
    hidden(body, "return_to", page.return_to);
    hidden(body, "methods", page.methods);
    hidden(body, "form_token", page.form_token);
    body += "<div class=\"actions\"><button type=\"submit\" autofocus>";
    body += button;
    body += "</button></div>\n</form>\n";
    other_ways(body, page);
}


// "Signed in as <user>", the first line of the pages for a known user.
void who(std::string &out, std::string_view user)
{
    out += "<p class=\"who\">Signed in as <strong>";
    out += html_escape(user);
    out += "</strong></p>\n";
}

// A TOTP key for typing: groups of four characters separated by spaces
// ("ABCD EFGH IJ"), whitespace in the key dropped.
std::string key_groups(std::string_view key)
{
    std::string out;
    std::size_t n = 0;
    for (char c : key) {
        if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
            continue;
        }
        if (n > 0 && n % 4 == 0) {
            out += ' ';
        }
        out += c;
        n++;
    }
    return out;
}

// The start of a security-info form: POST to page.manage with the form
// token and the action it performs. The caller closes it with "</form>".
void manage_form(std::string &out, const SecurityInfoPage &page,
                 std::string_view action)
{
    out += "<form method=\"post\" action=\"";
    out += html_escape(page.manage);
    out += "\">\n";
    hidden(out, "form_token", page.form_token);
    hidden(out, "action", action);
}

// A form that is only a button: action (and, for removing the phone, an
// empty phone), with `aria_label` naming what it acts on when the visible
// text alone ("Remove") would be ambiguous.
void button_form(std::string &out, const SecurityInfoPage &page,
                 std::string_view action, std::string_view text,
                 std::string_view aria_label = {}, bool secondary = false,
                 bool empty_phone = false)
{
    manage_form(out, page, action);
    if (empty_phone) {
        hidden(out, "phone", "");
    }
    out += "<button type=\"submit\"";
    if (secondary) {
        out += " class=\"secondary\"";
    }
    if (!aria_label.empty()) {
        out += " aria-label=\"";
        out += html_escape(aria_label);
        out += "\"";
    }
    out += ">";
    out += html_escape(text);
    out += "</button>\n</form>\n";
}

void new_codes_box(std::string &out, const std::vector<std::string> &codes)
{
    if (codes.empty()) {
        return;
    }
    out += "<section class=\"codes\" aria-labelledby=\"new-codes\">\n"
           "<h2 id=\"new-codes\">Your new recovery codes</h2>\n"
           "<p><strong>Save these codes somewhere safe. Each works once, "
           "and they will not be shown again.</strong></p>\n<ul>\n";
    for (const std::string &code : codes) {
        out += "<li><code>";
        out += html_escape(code);
        out += "</code></li>\n";
    }
    out += "</ul>\n</section>\n";
}

void methods_section(std::string &out, const SecurityInfoPage &page)
{
    out += "<section aria-labelledby=\"methods-heading\">\n"
           "<h2 id=\"methods-heading\">Sign-in methods</h2>\n"
           "<ul class=\"rows\">\n";

    // Authenticator app: add, or replace and remove.
    out += "<li>\n<h3>Authenticator app</h3>\n<p class=\"state\">";
    out += page.totp ? "Set up" : "Not set up";
    out += "</p>\n<div class=\"row-actions\">\n";
    if (page.totp) {
        button_form(out, page, "totp", "Replace",
                    "Replace authenticator app");
        button_form(out, page, "remove-totp", "Remove",
                    "Remove authenticator app", true);
    } else {
        button_form(out, page, "totp", "Add authenticator app");
    }
    out += "</div>\n</li>\n";

    // Phone: the masked number, a box for a new one, and remove.
    bool phone = !page.phone_masked.empty();
    out += "<li>\n<h3>Phone</h3>\n<p class=\"state\">";
    out += phone ? html_escape(page.phone_masked) : "Not set up";
    out += "</p>\n";
    manage_form(out, page, "phone");
    out += "<label for=\"phone\">";
    out += phone ? "New phone number" : "Phone number";
    out += "</label>\n"
           "<p class=\"state\" id=\"phone-help\">With the country code, "
           "like +15551234567.</p>\n"
           "<input class=\"field\" id=\"phone\" name=\"phone\" type=\"tel\" "
           "autocomplete=\"tel\" placeholder=\"+15551234567\" required "
           "aria-describedby=\"phone-help\">\n"
           "<div class=\"row-actions actions\">"
           "<button type=\"submit\">Save phone</button></div>\n</form>\n";
    if (phone) {
        out += "<div class=\"row-actions\">\n";
        button_form(out, page, "phone", "Remove", "Remove phone", true, true);
        out += "</div>\n";
    }
    out += "</li>\n";

    // Push, call and sms: provided by others, listed when usable.
    for (Method m : {Method::push, Method::call, Method::sms}) {
        if (!has_method(page.available, m)) {
            continue;
        }
        out += "<li>\n<h3>";
        out += method_label(m);
        out += "</h3>\n<p class=\"state\">Available</p>\n</li>\n";
    }
    out += "</ul>\n</section>\n";
}

void default_section(std::string &out, const SecurityInfoPage &page)
{
    out += "<section aria-labelledby=\"default-heading\">\n"
           "<h2 id=\"default-heading\">Default sign-in method</h2>\n";
    // A recovery code is a way back in, never the usual way.
    MethodSet choices = page.available & all_methods
                        & ~static_cast<MethodSet>(Method::recovery);
    if (choices == 0) {
        out += "<p>Set up a sign-in method first.</p>\n</section>\n";
        return;
    }
    bool chosen = page.default_method
                  && has_method(choices, *page.default_method);
    manage_form(out, page, "default");
    out += "<label for=\"method\">Sign in with</label>\n"
           "<select class=\"field\" id=\"method\" name=\"method\">\n"
           "<option value=\"\"";
    out += chosen ? "" : " selected";
    out += ">(none)</option>\n";
    for (Method m : method_order) {
        if (!has_method(choices, m)) {
            continue;
        }
        out += "<option value=\"";
        out += method_name(m);
        out += "\"";
        if (chosen && *page.default_method == m) {
            out += " selected";
        }
        out += ">";
        out += method_label(m);
        out += "</option>\n";
    }
    out += "</select>\n<div class=\"actions\">"
           "<button type=\"submit\">Set default</button></div>\n</form>\n"
           "</section>\n";
}

void recovery_section(std::string &out, const SecurityInfoPage &page)
{
    out += "<section aria-labelledby=\"recovery-heading\">\n"
           "<h2 id=\"recovery-heading\">Recovery codes</h2>\n<p>";
    out += std::to_string(page.recovery_left);
    out += " left</p>\n<p id=\"recovery-warning\">New codes replace the old "
           "ones: the old codes stop working.</p>\n";
    manage_form(out, page, "recovery");
    out += "<div class=\"actions\"><button type=\"submit\" "
           "aria-describedby=\"recovery-warning\">Get new codes</button>"
           "</div>\n</form>\n</section>\n";
}

}  // namespace

std::string render_wait(const WaitPage &page)
{
    std::string query = "?return_to=" + url_encode(page.return_to)
                        + "&methods=" + url_encode(page.methods);
    std::string check = page.paths.wait + query + "&check=1";
    std::string status = page.paths.status + query;

    // Not signed in yet: the second step is still owed.
    std::string body = "<p class=\"who\">Signing in as <strong>";
    body += html_escape(page.user);
    body += "</strong></p>\n";

    bool push = page.method == Method::push;
    const char *title = push ? "Approve the sign-in request on your phone"
                             : "Answer the call and press the key";
    body += "<h1>";
    body += title;
    body += "</h1>\n<div id=\"wait\" data-status=\"";
    body += html_escape(status);
    body += "\" data-done=\"";
    body += html_escape(check);
    body += "\" role=\"status\" aria-live=\"polite\">\n<p>";
    body += push ? "Open your authenticator app and approve the request."
                 : "We're calling your phone. Answer it and press any key "
                   "to approve.";
    body += "</p>\n";
    if (!page.number.empty()) {
        body += "<p>Enter this number in the app: "
                "<strong class=\"number\">";
        body += html_escape(page.number);
        body += "</strong></p>\n";
    }
    body += "<p class=\"who\">This page moves on by itself. <a href=\"";
    body += html_escape(check);
    body += "\">I've approved it</a></p>\n</div>\n";

    CodePage others;
    others.paths = page.paths;
    others.method = page.method;
    others.offered = page.offered;
    others.return_to = page.return_to;
    others.methods = page.methods;
    other_ways(body, others);

    // Without JavaScript the page reloads itself; with it, the script
    // moves on as soon as the provider answers.
    std::string head = "<noscript><meta http-equiv=\"refresh\" "
                       "content=\"3;url=";
    head += html_escape(check);
    head += "\"></noscript>\n";
    return layout(title, body, head, true);
}

const std::string &page_security_policy()
{
    static const std::string policy =
        "default-src 'none'; style-src " + csp_hash(style)
        + "; script-src " + csp_hash(script) + "; connect-src 'self'; "
          "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
    return policy;
}

// Output encoding for HTML text and double-quoted attributes (OWASP ASVS
// 5.3.1).
std::string html_escape(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    for (char c : text) {
        switch (c) {
        case '&':
            out += "&amp;";
            break;
        case '<':
            out += "&lt;";
            break;
        case '>':
            out += "&gt;";
            break;
        case '"':
            out += "&quot;";
            break;
        case '\'':
            out += "&#39;";
            break;
        default:
            out.push_back(c);
        }
    }
    return out;
}

std::string render_signin(const SigninPage &page)
{
    std::string body = "<h1>Sign in</h1>\n";
    body += "<form method=\"post\" action=\"";
    body += html_escape(page.paths.signin);
    body += "\">\n";
    alert(body, page.error);
    body += "<label for=\"username\">User name</label>\n"
            "<input class=\"field\" id=\"username\" name=\"username\" "
            "type=\"text\" autocomplete=\"username\" autocapitalize=\"none\" "
            "spellcheck=\"false\" required autofocus value=\"";
    body += html_escape(page.username);
    body += "\">\n"
            "<label for=\"password\">Password</label>\n"
            "<input class=\"field\" id=\"password\" name=\"password\" "
            "type=\"password\" autocomplete=\"current-password\" required>\n";
    hidden(body, "return_to", page.return_to);
    hidden(body, "methods", page.methods);
    hidden(body, "form_token", page.form_token);
    body += "<div class=\"actions\">"
            "<button type=\"submit\">Sign in</button></div>\n"
            "</form>\n";
    return layout("Sign in", body);
}

std::string render_code(const CodePage &page)
{
    std::string body = "<p class=\"who\">Signing in as <strong>";
    body += html_escape(page.user);
    body += "</strong></p>\n";

    bool code_box = page.method == Method::totp
                    || page.method == Method::recovery
                    || (page.method == Method::sms && page.sms_sent);
    if (!code_box) {
        send_form(body, page);
        return layout("Verify your identity", body);
    }

    body += "<h1>Enter code</h1>\n";
    notice(body, page.notice);
    body += "<p id=\"code-help\">";
    switch (page.method) {
    case Method::sms:
        body += "Enter the code we texted to your phone.";
        break;
    case Method::recovery:
        body += "Enter one of the recovery codes you saved when you set up "
                "your security info. Each code works once.";
        break;
    default:
        body += "Enter the code displayed in the authenticator app on your "
                "mobile device.";
        break;
    }
    body += "</p>\n<form method=\"post\" action=\"";
    body += html_escape(page.paths.verify);
    body += "\">\n";
    alert(body, page.error);
    body += "<label for=\"code\">Code</label>\n"
            "<input class=\"field\" id=\"code\" name=\"code\" type=\"text\" ";
    body += page.method == Method::recovery
        ? "autocomplete=\"off\" autocapitalize=\"none\" spellcheck=\"false\" "
        : "inputmode=\"numeric\" pattern=\"[0-9 ]*\" "
          "autocomplete=\"one-time-code\" ";
    body += "required autofocus aria-describedby=\"";
    body += page.error.empty() ? "code-help" : "code-help error";
    body += "\">\n";
    hidden(body, "method", method_name(page.method));
    hidden(body, "return_to", page.return_to);
    hidden(body, "methods", page.methods);
    hidden(body, "form_token", page.form_token);
    body += "<div class=\"actions\">"
            "<button type=\"submit\">Verify</button></div>\n"
            "</form>\n";
    other_ways(body, page);
    return layout("Enter code", body);
}

std::string render_enroll(const EnrollPage &page)
{
    std::string body;
    who(body, page.user);
    body += "<h1>Set up your authenticator app</h1>\n"
            "<ol class=\"steps\">\n"
            "<li>Install an authenticator app on your phone (Microsoft "
            "Authenticator, Google Authenticator, FreeOTP, ...).</li>\n"
            "<li>In the app, add an account and scan this QR code.</li>\n"
            "<li id=\"code-help\">Enter the 6-digit code the app shows.</li>\n"
            "</ol>\n<div class=\"qr\">";
    body += page.qr_svg;  // trusted markup from qr_svg()
    body += "</div>\n<details>\n<summary>Can't scan the code?</summary>\n"
            "<p>Enter this key in the app, as a time-based key.</p>\n"
            "<p><code class=\"key\">";
    body += html_escape(key_groups(page.secret));
    body += "</code></p>\n</details>\n<form method=\"post\" action=\"";
    body += html_escape(page.enroll);
    body += "\">\n";
    alert(body, page.error);
    body += "<label for=\"code\">Code</label>\n"
            "<input class=\"field\" id=\"code\" name=\"code\" type=\"text\" "
            "inputmode=\"numeric\" pattern=\"[0-9 ]*\" "
            "autocomplete=\"one-time-code\" required autofocus "
            "aria-describedby=\"";
    body += page.error.empty() ? "code-help" : "code-help error";
    body += "\">\n";
    hidden(body, "return_to", page.return_to);
    hidden(body, "methods", page.methods);
    hidden(body, "form_token", page.form_token);
    body += "<div class=\"actions\">"
            "<button type=\"submit\">Verify</button></div>\n"
            "</form>\n";
    return layout("Set up your authenticator app", body);
}

std::string render_security_info(const SecurityInfoPage &page)
{
    std::string body;
    who(body, page.user);
    body += "<h1>Security info</h1>\n";
    alert(body, page.error);
    notice(body, page.notice);
    new_codes_box(body, page.new_recovery_codes);
    methods_section(body, page);
    default_section(body, page);
    recovery_section(body, page);
    body += "<p class=\"links\"><a href=\"";
    body += html_escape(page.paths.logout);
    body += "\">Sign out</a></p>\n";
    return layout("Security info", body);
}

std::string render_message(std::string_view title, std::string_view text,
                           std::string_view link_href,
                           std::string_view link_text)
{
    std::string body = "<h1>";
    body += html_escape(title);
    body += "</h1>\n<p>";
    body += html_escape(text);
    body += "</p>\n";
    if (!link_href.empty()) {
        body += "<p><a href=\"";
        body += html_escape(link_href);
        body += "\">";
        body += html_escape(link_text.empty() ? link_href : link_text);
        body += "</a></p>\n";
    }
    return layout(title, body);
}

std::string render_signed_out(const PortalPaths &paths)
{
    return render_message("You have signed out", "Your session has ended.",
                          paths.signin, "Sign in again");
}

std::string render_signout(const PortalPaths &paths, std::string_view user,
                           std::string_view form_token)
{
    std::string body = "<p class=\"who\">Signed in as <strong>";
    body += html_escape(user);
    body += "</strong></p>\n<h1>Sign out</h1>\n"
            "<p>Sign out of every site behind this sign-in on this "
            "browser.</p>\n<form method=\"post\" action=\"";
    body += html_escape(paths.logout);
    body += "\">\n";
    hidden(body, "form_token", form_token);
    body += "<div class=\"actions\">"
            "<button type=\"submit\">Sign out</button></div>\n"
            "</form>\n";
    return layout("Sign out", body);
}

}  // namespace twostep
