// A small logic-less template language for the portal's pages (a subset of
// Mustache): {{name}} a value, {{#name}}..{{/name}} a section (once for a
// true flag or a non-empty value, once per item for a list),
// {{^name}}..{{/name}} its inverse, {{@key}} a translated text, {{! ..}} a
// comment. Every value and text is HTML-escaped; only values the code
// marks as trusted markup (the QR code, the page body inside the layout)
// are inserted as they are, so a template cannot unescape anything.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace twostep {

// A template that does not parse or uses an unknown name; what() says
// where ("line 3: unknown value {{usr}}").
struct TemplateError : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The values a template is rendered with. A name not set here is looked
// up in the enclosing data (a list item sees its page's values).
class PageData {
public:
    PageData &text(const std::string &name, std::string value);
    PageData &markup(const std::string &name, std::string trusted_html);
    PageData &flag(const std::string &name, bool on);
    PageData &item(const std::string &list);   // appends and returns one
    PageData &list(const std::string &list);   // an empty list if unset

    struct Value {
        enum Kind { text, markup, flag, list } kind = text;
        std::string str;
        bool on = false;
        std::vector<PageData> items;
    };
    const Value *find(std::string_view name) const;

private:
    std::map<std::string, Value, std::less<>> values_;
};

// Looks up a translated text by key with its {placeholders} filled in
// from the data (escaping is the renderer's): throws for an unknown key.
using Translate = std::function<std::string(
    std::string_view key, const std::vector<const PageData *> &scope)>;

class Template {
public:
    // Parses `source`; `known` says whether a value or section name
    // exists and `has_key` whether a translation key does. Throws
    // TemplateError.
    Template(std::string_view source,
             const std::function<bool(std::string_view)> &known,
             const std::function<bool(std::string_view)> &has_key);
    ~Template();
    Template(Template &&) noexcept;
    Template &operator=(Template &&) noexcept;

    void render(std::string &out, const PageData &data,
                const Translate &translate) const;

    // The translation keys the template uses.
    const std::vector<std::string> &keys() const { return keys_; }

    struct Node;

private:
    std::vector<Node> nodes_;
    std::vector<std::string> keys_;
};

// Output encoding for HTML text and double-quoted attributes (OWASP ASVS
// 5.3.1).
std::string html_escape(std::string_view text);
void html_escape_to(std::string &out, std::string_view text);

// Looks `name` up in the innermost scope that has it, or nullptr.
const PageData::Value *scope_find(const std::vector<const PageData *> &scope,
                                  std::string_view name);

}  // namespace twostep
