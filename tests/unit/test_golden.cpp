// Golden pages: each page, rendered from fixed input, must equal the file
// in tests/unit/golden/ byte for byte, so any change to the markup or the
// wording shows up in review. UPDATE_GOLDEN=1 rewrites the files instead.
#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>

#include "core/pages.h"
#include "unit.h"

using namespace twostep;

#define GOLDEN_RENDER(fn, ...) fn(PageContext(), __VA_ARGS__)

namespace {

std::string golden_dir()
{
    std::string file = __FILE__;
    return file.substr(0, file.rfind('/') + 1) + "golden/";
}

// What a golden file holds: the whole page for "signin" (the layout and the
// stylesheet, the same for every page), for the others the <title> and
// what follows <main>.
std::string golden_part(const std::string &name, const std::string &html)
{
    if (name == "signin") {
        return html;
    }
    std::size_t title = html.find("<title>");
    std::size_t title_end = html.find('\n', title) + 1;
    std::size_t main = html.find("<main>");
    ck_assert(title != std::string::npos && main != std::string::npos);
    return html.substr(title, title_end - title) + html.substr(main);
}

void expect_golden(const std::string &name, const std::string &page)
{
    std::string html = golden_part(name, page);
    std::string path = golden_dir() + name + ".html";
    if (std::getenv("UPDATE_GOLDEN") != nullptr) {
        std::ofstream(path, std::ios::binary) << html;
        return;
    }
    std::ifstream in(path, std::ios::binary);
    ck_assert_msg(in.good(), "no golden file %s (UPDATE_GOLDEN=1 makes it)",
                  path.c_str());
    std::stringstream want;
    want << in.rdbuf();
    if (want.str() != html) {
        std::ofstream(path + ".got", std::ios::binary) << html;
    }
    ck_assert_msg(want.str() == html, "%s differs: see %s.got", path.c_str(),
                  path.c_str());
}

PortalPaths paths()
{
    return {"/.twostep/signin", "/.twostep/verify", "/.twostep/logout",
            "/.twostep/wait", "/.twostep/status"};
}

const MethodSet every = all_methods;

CodePage code_page(Method method)
{
    CodePage page;
    page.paths = paths();
    page.user = "alice";
    page.method = method;
    page.offered = every;
    page.return_to = "/app?x=1&y=2";
    page.methods = "totp,push,call,sms,recovery";
    page.form_token = "tok.en";
    return page;
}

}  // namespace

START_TEST(golden_signin)
{
    SigninPage page;
    page.paths = paths();
    page.return_to = "/app?x=1&y=2";
    page.methods = "totp,sms";
    page.form_token = "tok.en";
    expect_golden("signin", GOLDEN_RENDER(render_signin, page));
    page.username = "alice";
    page.error = "Wrong user name or password.";
    expect_golden("signin-error", GOLDEN_RENDER(render_signin, page));
}
END_TEST

// One page in each other language, and with a site name: the wording and
// the header, as a reviewer reads them.
START_TEST(golden_languages_and_site_name)
{
    SigninPage page;
    page.paths = paths();
    page.return_to = "/app";
    page.form_token = "tok.en";
    page.error = "error.wrong_password";
    for (const char *code : {"nl", "de", "fr", "es"}) {
        PageContext ctx;
        ctx.lang = PageTheme::builtin().language(code);
        expect_golden(std::string("signin-") + code,
                      render_signin(ctx, page));
        expect_golden(std::string("code-totp-") + code,
                      render_code(ctx, code_page(Method::totp)));
    }
    PageContext ctx;
    ctx.site_name = "Contoso Intranet";
    expect_golden("signin-site-name", render_signin(ctx, page));
}
END_TEST

START_TEST(golden_code)
{
    expect_golden("code-totp",
                  GOLDEN_RENDER(render_code, code_page(Method::totp)));
    CodePage page = code_page(Method::totp);
    page.offered = static_cast<MethodSet>(Method::totp);
    page.error = "That code didn't work. Check the code and try again.";
    expect_golden("code-totp-error", GOLDEN_RENDER(render_code, page));
    expect_golden("code-recovery",
                  GOLDEN_RENDER(render_code, code_page(Method::recovery)));
    expect_golden("code-push",
                  GOLDEN_RENDER(render_code, code_page(Method::push)));
    expect_golden("code-call",
                  GOLDEN_RENDER(render_code, code_page(Method::call)));
    expect_golden("code-sms",
                  GOLDEN_RENDER(render_code, code_page(Method::sms)));
    page = code_page(Method::sms);
    page.sms_sent = true;
    page.notice = "We texted a code to your phone.";
    expect_golden("code-sms-sent", GOLDEN_RENDER(render_code, page));
    page = code_page(Method::totp);
    page.remember_days = 30;
    expect_golden("code-totp-remember", GOLDEN_RENDER(render_code, page));
    page = code_page(Method::push);
    page.remember_days = 1;
    expect_golden("code-push-remember", GOLDEN_RENDER(render_code, page));
}
END_TEST

START_TEST(golden_wait)
{
    WaitPage page;
    page.paths = paths();
    page.user = "alice";
    page.method = Method::push;
    page.offered = every;
    page.return_to = "/app?x=1&y=2";
    page.methods = "totp,push";
    page.number = "42";
    expect_golden("wait-push", GOLDEN_RENDER(render_wait, page));
    page.method = Method::call;
    page.number.clear();
    expect_golden("wait-call", GOLDEN_RENDER(render_wait, page));
}
END_TEST

START_TEST(golden_enroll)
{
    EnrollPage page;
    page.paths = paths();
    page.enroll = "/.twostep/enroll";
    page.user = "alice";
    page.qr_svg = "<svg viewBox=\"0 0 21 21\" role=\"img\" "
                  "aria-label=\"QR code\"><path d=\"M2 2h7v1h-7z\"/></svg>";
    page.secret = "JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP";
    page.return_to = "/app?x=1&y=2";
    page.methods = "totp";
    page.form_token = "tok.en";
    expect_golden("enroll", GOLDEN_RENDER(render_enroll, page));
    page.error = "That code didn't work. Check the code and try again.";
    expect_golden("enroll-error", GOLDEN_RENDER(render_enroll, page));
}
END_TEST

START_TEST(golden_security_info)
{
    SecurityInfoPage page;
    page.paths = paths();
    page.manage = "/.twostep/security-info";
    page.enroll = "/.twostep/enroll";
    page.user = "alice";
    page.form_token = "tok.en";
    expect_golden("security-info-empty",
                  GOLDEN_RENDER(render_security_info, page));
    page.totp = true;
    page.phone_masked = "+1 ••• ••• 4567";
    page.available = every;
    page.default_method = Method::push;
    page.recovery_left = 8;
    page.new_recovery_codes = {"abcd-efgh", "ijkl-mnop"};
    page.notice = "New recovery codes were made.";
    page.devices = true;
    expect_golden("security-info-full",
                  GOLDEN_RENDER(render_security_info, page));
}
END_TEST

START_TEST(golden_messages)
{
    expect_golden("signed-out", GOLDEN_RENDER(render_signed_out, paths()));
    expect_golden("signout", GOLDEN_RENDER(render_signout, paths(), "alice",
                                           "tok.en"));
    expect_golden("message", GOLDEN_RENDER(render_message, "This page has expired",
                  "Your sign-in took too long or came from another page. "
                  "Please start again.", "/.twostep/signin?return_to=%2F",
                  "Start again"));
}
END_TEST

int main()
{
    Suite *suite = suite_create("golden");
    TCase *tc = tcase_create("pages");
    tcase_add_test(tc, golden_signin);
    tcase_add_test(tc, golden_code);
    tcase_add_test(tc, golden_wait);
    tcase_add_test(tc, golden_enroll);
    tcase_add_test(tc, golden_security_info);
    tcase_add_test(tc, golden_messages);
    tcase_add_test(tc, golden_languages_and_site_name);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
