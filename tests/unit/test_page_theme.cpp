// The page renderer, the translations and their negotiation, and
// administrators' overrides (twostep_templates).
#include <sys/stat.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "core/methods.h"
#include "core/pages.h"
#include "core/page_theme.h"
#include "unit.h"

using namespace twostep;

namespace {

bool known(std::string_view name)
{
    return name != "nope";
}

bool has_key(std::string_view key)
{
    return key == "greeting";
}

std::string render(std::string_view source, const PageData &data)
{
    Template t(source, known, has_key);
    std::string out;
    t.render(out, data, [](std::string_view key,
                           const std::vector<const PageData *> &) {
        return "<" + std::string(key) + ">";
    });
    return out;
}

// The message of the TemplateError `source` raises, or "" .
std::string parse_error(std::string_view source)
{
    try {
        Template t(source, known, has_key);
    } catch (const TemplateError &e) {
        return e.what();
    }
    return "";
}

std::string scratch;

void remove_scratch()
{
    if (!scratch.empty()) {
        std::system(("rm -rf " + scratch).c_str());
        scratch.clear();
    }
}

// A scratch directory for an override; removed by the next call and at
// the end of the test (each runs in a process of its own).
std::string scratch_dir()
{
    std::string &dir = scratch;
    remove_scratch();
    char tmpl[] = "/tmp/twostep-theme-XXXXXX";
    ck_assert(mkdtemp(tmpl) != nullptr);
    dir = tmpl;
    ck_assert(mkdir((dir + "/lang").c_str(), 0755) == 0);
    return dir;
}

void write(const std::string &path, const std::string &text)
{
    std::ofstream(path, std::ios::binary) << text;
}

std::string builtin_file(std::string_view name)
{
    for (std::size_t i = 0; i < embedded_page_file_count; i++) {
        if (name == embedded_page_files[i].name) {
            return std::string(embedded_page_files[i].data);
        }
    }
    ck_abort_msg("no built-in %s", std::string(name).c_str());
    return "";
}

// The ThemeError that loading `dir` raises, or "" .
std::string load_error(const std::string &dir)
{
    try {
        PageTheme::load(dir);
    } catch (const ThemeError &e) {
        return e.what();
    }
    return "";
}

bool contains(const std::string &text, const std::string &part)
{
    return text.find(part) != std::string::npos;
}

#define expect_has(text, part)                                              \
    ck_assert_msg(contains((text), (part)), "'%s' lacks '%s'",              \
                  std::string(text).c_str(), std::string(part).c_str())

}  // namespace

START_TEST(values_are_escaped)
{
    PageData d;
    d.text("v", "<b>\"x\" & 'y'</b>").markup("m", "<svg/>");
    ck_assert_string_eq(render("[{{v}}]", d),
                        "[&lt;b&gt;&quot;x&quot; &amp; &#39;y&#39;&lt;/b&gt;]");
    // Only the code marks markup; the template cannot ask for it raw.
    ck_assert_string_eq(render("{{m}}", d), "<svg/>");
    ck_assert_string_eq(render("{{@greeting}}", d), "&lt;greeting&gt;");
}
END_TEST

START_TEST(sections_and_lists)
{
    PageData d;
    d.flag("on", true).flag("off", false).text("empty", "").text("v", "x");
    d.item("rows").text("n", "1");
    d.item("rows").text("n", "2");
    d.list("none");
    ck_assert_string_eq(render("{{#on}}a{{/on}}{{#off}}b{{/off}}"
                               "{{^off}}c{{/off}}{{#empty}}d{{/empty}}"
                               "{{^none}}e{{/none}}", d),
                        "ace");
    // A list item sees its own values and its page's.
    ck_assert_string_eq(render("{{#rows}}<{{n}}{{v}}>{{/rows}}", d),
                        "<1x><2x>");
    // Section tags alone on a line take the line with them.
    ck_assert_string_eq(render("<ul>\n{{#rows}}\n  <li>{{n}}</li>\n"
                               "{{/rows}}\n</ul>\n{{! note }}\nend", d),
                        "<ul>\n  <li>1</li>\n  <li>2</li>\n</ul>\nend");
}
END_TEST

START_TEST(template_errors_name_the_line)
{
    ck_assert_string_eq(parse_error("a\n{{nope}}"),
                        "line 2: unknown value {{nope}}");
    ck_assert_string_eq(parse_error("{{@missing}}"),
                        "line 1: unknown text {{@missing}}");
    ck_assert_string_eq(parse_error("x\n{{#v}}\ny"),
                        "line 2: {{#v}} is never closed");
    ck_assert_string_eq(parse_error("{{#v}}{{/w}}"),
                        "line 1: {{/w}} closes nothing open");
    ck_assert_string_eq(parse_error("{{v"), "line 1: {{ without }}");
    ck_assert_string_eq(parse_error("{{v w}}"), "line 1: bad name {{v w}}");
    ck_assert_string_eq(parse_error("{{{v}}}"), "line 1: bad name {{{v}}");
}
END_TEST

START_TEST(builtin_languages_are_complete)
{
    // Loading checks every language against English, key for key; here
    // the five are there and every method has its label in each.
    const PageTheme &theme = PageTheme::builtin();
    std::vector<std::string> want = {"de", "en", "es", "fr", "nl"};
    ck_assert(theme.languages() == want);
    for (const std::string &code : want) {
        const Language *lang = theme.language(code);
        ck_assert(lang != nullptr);
        ck_assert_uint_eq(lang->texts.size(), theme.english().texts.size());
        for (Method m : {Method::totp, Method::push, Method::call,
                         Method::sms, Method::recovery}) {
            ck_assert_msg(lang->texts.count(std::string("method.")
                                            + method_name(m)),
                          "%s lacks method.%s", code.c_str(), method_name(m));
        }
        ck_assert(!lang->rtl);
    }
    ck_assert_string_eq(theme.language("nl")->text("signin.title"),
                        "Aanmelden");
    ck_assert_string_eq(theme.language("de")->text("signin.title"),
                        "Anmelden");
}
END_TEST

START_TEST(negotiation)
{
    const PageTheme &t = PageTheme::builtin();
    auto pick = [&t](const char *header) { return t.negotiate(header).code; };
    ck_assert_string_eq(pick(""), "en");
    ck_assert_string_eq(pick("nl"), "nl");
    ck_assert_string_eq(pick("nl-NL,nl;q=0.9,en-US;q=0.8,en;q=0.7"), "nl");
    ck_assert_string_eq(pick("DE-at"), "de");
    ck_assert_string_eq(pick("it, fr;q=0.5"), "fr");
    ck_assert_string_eq(pick("en;q=0.2, es;q=0.8"), "es");
    ck_assert_string_eq(pick("fr;q=0, de;q=0.1"), "de");
    ck_assert_string_eq(pick("fr;q=0"), "en");
    ck_assert_string_eq(pick("*"), "en");
    ck_assert_string_eq(pick("ja, *;q=0.5, nl;q=0.4"), "en");
    ck_assert_string_eq(pick("nl;q=abc, de"), "de");
    ck_assert_string_eq(pick("nl;q=2, es"), "es");
    ck_assert_string_eq(pick(",,;q=,  ,"), "en");
    ck_assert_string_eq(pick("zz-ZZ"), "en");
    // Equal weights keep the visitor's order.
    ck_assert_string_eq(pick("es;q=0.5, fr;q=0.5"), "es");
}
END_TEST

START_TEST(pages_in_dutch)
{
    PageContext ctx;
    ctx.lang = PageTheme::builtin().language("nl");
    SigninPage page;
    page.paths.signin = "/s";
    page.error = "error.wrong_password";
    std::string html = render_signin(ctx, page);
    expect_has(html, "<html lang=\"nl\">");
    expect_has(html, "<title>Aanmelden</title>");
    expect_has(html, ">Onjuiste gebruikersnaam of wachtwoord.</p>");
    expect_has(html, "<label for=\"password\">Wachtwoord</label>");

    // A text that is no key is shown as given (and escaped).
    page.error = "<old text>";
    expect_has(render_signin(ctx, page), ">&lt;old text&gt;</p>");
}
END_TEST

START_TEST(site_name_in_title_and_header)
{
    PageContext ctx;
    ctx.site_name = "Contoso <Intranet>";
    std::string html = render_signin(ctx, SigninPage());
    expect_has(html, "<title>Sign in – Contoso &lt;Intranet&gt;</title>");
    expect_has(html, "<header class=\"site\"><span>Contoso &lt;Intranet&gt;"
                     "</span></header>");
    ctx.site_name.clear();
    ck_assert(!contains(render_signin(ctx, SigninPage()), "<header"));
}
END_TEST

START_TEST(override_a_template)
{
    std::string dir = scratch_dir();
    write(dir + "/signin.html", "<h1>{{title}}!</h1>\n<p>{{@signin.username}}"
                                "</p>\n");
    write(dir + "/style.css", "body{color:red}");
    write(dir + "/lang/nl.json", builtin_file("lang/nl.json"));
    std::unique_ptr<PageTheme> theme = PageTheme::load(dir);

    PageContext ctx;
    ctx.theme = theme.get();
    ctx.lang = &theme->english();
    std::string html = render_signin(ctx, SigninPage());
    expect_has(html, "<h1>Sign in!</h1>\n<p>User name</p>\n</main>");
    expect_has(html, "<style>body{color:red}</style>");
    // The policy allows the stylesheet that is sent, not the built-in one.
    ck_assert(theme->security_policy() != page_security_policy());
    // Pages not overridden stay as built.
    expect_has(render_signout(ctx, PortalPaths(), "u", "t"),
               "<h1>Sign out</h1>");
    remove_scratch();
}
END_TEST

START_TEST(override_errors_name_the_file)
{
    std::string dir = scratch_dir();
    write(dir + "/code.html", "<p>{{usr}}</p>\n");
    expect_has(load_error(dir), dir + "/code.html: line 1: unknown value "
                                      "{{usr}}");

    dir = scratch_dir();
    write(dir + "/code.html", "<p>\n{{@code.nonsense}}</p>\n");
    expect_has(load_error(dir), dir + "/code.html: line 2: unknown text "
                                      "{{@code.nonsense}}");

    dir = scratch_dir();
    write(dir + "/signin.htm", "x");
    expect_has(load_error(dir), dir + "/signin.htm: not a page template");

    dir = scratch_dir();
    write(dir + "/nothing.html", "x");
    expect_has(load_error(dir), dir + "/nothing.html: no page is called");

    // A translation missing a text, with an unknown one, or a placeholder
    // the pages do not have.
    std::string nl = builtin_file("lang/nl.json");
    dir = scratch_dir();
    std::string missing = nl;
    missing.erase(missing.find("  \"signin.password\""),
                  missing.find('\n', missing.find("\"signin.password\"")) + 1
                      - missing.find("  \"signin.password\""));
    write(dir + "/lang/nl.json", missing);
    ck_assert_string_eq(load_error(dir), dir + "/lang/nl.json: the text "
                                               "\"signin.password\" is "
                                               "missing");

    dir = scratch_dir();
    std::string extra = nl;
    extra.insert(extra.find('{') + 1, "\n  \"signin.pasword\": \"x\",");
    write(dir + "/lang/nl.json", extra);
    ck_assert_string_eq(load_error(dir), dir + "/lang/nl.json: "
                                               "\"signin.pasword\" is not a "
                                               "text the pages use");

    dir = scratch_dir();
    std::string holder = nl;
    holder.replace(holder.find("Nog {recovery_left} over"), 24,
                   "Nog {left} over");
    write(dir + "/lang/nl.json", holder);
    expect_has(load_error(dir), dir + "/lang/nl.json: "
                                      "\"info.recovery.left\" has an "
                                      "unknown placeholder {left}");

    dir = scratch_dir();
    write(dir + "/lang/nl.json", "{\"a\": ");
    expect_has(load_error(dir), dir + "/lang/nl.json: line 1:");

    dir = scratch_dir();
    write(dir + "/lang/dutch.json", "{}");
    expect_has(load_error(dir), dir + "/lang/dutch.json: a language file");

    expect_has(load_error("/nonexistent/twostep"),
               "/nonexistent/twostep: No such file or directory");

    // A file nobody may read (the test runs as root: skip the check).
    if (geteuid() != 0) {
        dir = scratch_dir();
        write(dir + "/signin.html", "x");
        chmod((dir + "/signin.html").c_str(), 0);
        expect_has(load_error(dir), dir + "/signin.html: Permission denied");
    }
    remove_scratch();
}
END_TEST

START_TEST(override_adds_a_language)
{
    std::string dir = scratch_dir();
    std::string it = builtin_file("lang/en.json");
    it.replace(it.find("\"Sign in\""), 9, "\"Accedi\"");
    it.replace(it.find("\"ltr\""), 5, "\"rtl\"");
    write(dir + "/lang/it.json", it);
    std::unique_ptr<PageTheme> theme = PageTheme::load(dir);
    const Language &lang = theme->negotiate("it-IT");
    ck_assert_string_eq(lang.code, "it");
    PageContext ctx;
    ctx.theme = theme.get();
    ctx.lang = &lang;
    std::string html = render_signin(ctx, SigninPage());
    expect_has(html, "<html lang=\"it\" dir=\"rtl\">");
    expect_has(html, "<title>Accedi</title>");
    remove_scratch();
}
END_TEST

int main()
{
    Suite *suite = suite_create("page_theme");
    TCase *tc = tcase_create("core");
    tcase_add_test(tc, values_are_escaped);
    tcase_add_test(tc, sections_and_lists);
    tcase_add_test(tc, template_errors_name_the_line);
    tcase_add_test(tc, builtin_languages_are_complete);
    tcase_add_test(tc, negotiation);
    tcase_add_test(tc, pages_in_dutch);
    tcase_add_test(tc, site_name_in_title_and_header);
    tcase_add_test(tc, override_a_template);
    tcase_add_test(tc, override_errors_name_the_file);
    tcase_add_test(tc, override_adds_a_language);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
