// What the pages look like and say: the templates, the stylesheet and
// logo, and one translation per language; built in (src/core/pages/,
// embedded at build time by scripts/embed-pages) and optionally overridden
// file by file from an administrator's directory (twostep_templates).
#pragma once

#include <cstddef>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "page_template.h"

namespace twostep {

// One file of src/core/pages/, e.g. {"lang/nl.json", "{...}"}.
struct EmbeddedFile {
    const char *name;
    std::string_view data;
};
extern const EmbeddedFile embedded_page_files[];
extern const std::size_t embedded_page_file_count;

// A broken template, translation or asset; what() names the file first.
struct ThemeError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// One language's texts, keyed like "signin.button" or "method.totp".
struct Language {
    std::string code;   // "nl"
    bool rtl = false;   // written right to left ("lang.dir": "rtl")
    std::map<std::string, std::string, std::less<>> texts;

    // The text of `key` with its {placeholders} taken from `scope`; throws
    // std::out_of_range for an unknown key.
    std::string text(std::string_view key,
                     const std::vector<const PageData *> &scope = {}) const;
};

class PageTheme {
public:
    // The built-in pages; the first call parses them (at configuration
    // time: the module calls it from its configuration).
    static const PageTheme &builtin();

    // The built-in pages with the files of `dir` in their place: any of
    // the templates (*.html), style.css, logo.svg, and lang/CODE.json for a
    // language to replace or add. Throws ThemeError naming the file.
    static std::unique_ptr<PageTheme> load(const std::string &dir);

    const Language *language(std::string_view code) const;
    const Language &english() const { return *language("en"); }

    // The language a visitor asked for in Accept-Language (RFC 9110
    // 12.5.4: highest q first, q=0 never, "nl-NL" matches "nl", "*" any),
    // or English.
    const Language &negotiate(std::string_view accept_language) const;

    // Every language's code, sorted.
    std::vector<std::string> languages() const;

    // The Content-Security-Policy the pages are sent with: nothing but
    // the pages' own stylesheet and script, allowed by their SHA-256.
    const std::string &security_policy() const { return policy_; }

    // Renders template `name` ("signin") with `data`, inside the layout
    // with `title`. `data` gains the layout's values.
    std::string render(std::string_view name, PageData &data,
                       const Language &lang, std::string_view site_name,
                       std::string_view title) const;

    // Every value name a template may use, and whether `name` is one.
    static bool known_name(std::string_view name);

private:
    PageTheme() = default;
    void add_file(const std::string &name, std::string_view data,
                  const std::string &where);
    // Parses the templates; every language must have the texts of `base`'s
    // English (nullptr: its own).
    void finish(const std::string &where, const PageTheme *base);

    std::map<std::string, Template, std::less<>> templates_;
    std::map<std::string, Language, std::less<>> languages_;
    std::map<std::string, std::string, std::less<>> sources_;  // unparsed
    std::map<std::string, std::string, std::less<>> origin_;   // file names
    std::string style_;
    std::string script_;           // wait.js: the waiting page polls
    std::string webauthn_script_;  // webauthn.js: security keys, passkeys
    std::string copy_script_;      // copy.js: "Copy codes"
    std::string logo_;
    std::string policy_;
};

// What one response's pages are rendered with: the theme, the visitor's
// language and the site's name.
struct PageContext {
    const PageTheme *theme = &PageTheme::builtin();
    const Language *lang = &PageTheme::builtin().english();
    std::string site_name;

    // A translated text; `key_or_text` that is no key is shown as given
    // (texts from older callers), so a page never fails over wording.
    std::string text(std::string_view key,
                     const PageData &args = PageData()) const;
    std::string text_or_literal(std::string_view key_or_text) const;
};

}  // namespace twostep
