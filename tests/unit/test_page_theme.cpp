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
    tcase_add_test(tc, site_name_in_title_and_header);
    tcase_add_test(tc, override_a_template);
    tcase_add_test(tc, override_errors_name_the_file);
    tcase_add_test(tc, override_adds_a_language);
    suite_add_tcase(suite, tc);
    return run_suite(suite);
}
