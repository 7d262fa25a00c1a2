#include "page_template.h"

namespace twostep {

struct Template::Node {
    enum Kind { text, value, section, inverted, translation } kind = text;
    std::string str;              // the text, name or key
    std::vector<Node> children;   // of a section
};

PageData &PageData::text(const std::string &name, std::string value)
{
    Value &v = values_[name];
    v.kind = Value::text;
    v.str = std::move(value);
    return *this;
}

PageData &PageData::markup(const std::string &name, std::string trusted_html)
{
    Value &v = values_[name];
    v.kind = Value::markup;
    v.str = std::move(trusted_html);
    return *this;
}

PageData &PageData::flag(const std::string &name, bool on)
{
    Value &v = values_[name];
    v.kind = Value::flag;
    v.on = on;
    return *this;
}

PageData &PageData::list(const std::string &name)
{
    Value &v = values_[name];
    v.kind = Value::list;
    return *this;
}

PageData &PageData::item(const std::string &list)
{
    Value &v = values_[list];
    v.kind = Value::list;
    v.items.emplace_back();
    return v.items.back();
}

const PageData::Value *PageData::find(std::string_view name) const
{
    auto it = values_.find(name);
    return it == values_.end() ? nullptr : &it->second;
}

const PageData::Value *scope_find(const std::vector<const PageData *> &scope,
                                  std::string_view name)
{
    for (auto it = scope.rbegin(); it != scope.rend(); ++it) {
        if (const PageData::Value *v = (*it)->find(name)) {
            return v;
        }
    }
    return nullptr;
}

void html_escape_to(std::string &out, std::string_view text)
{
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
}

std::string html_escape(std::string_view text)
{
    std::string out;
    out.reserve(text.size());
    html_escape_to(out, text);
    return out;
}

namespace {

bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
           || (c >= '0' && c <= '9') || c == '_' || c == '.' || c == '-';
}

bool blank(char c)
{
    return c == ' ' || c == '\t' || c == '\r';
}

}  // namespace

Template::Template(std::string_view src,
                   const std::function<bool(std::string_view)> &known,
                   const std::function<bool(std::string_view)> &has_key)
{
    // Open sections, innermost last, with the line each opened on.
    std::vector<std::pair<Node *, std::size_t>> open;
    std::vector<Node> *into = &nodes_;
    std::size_t line = 1;
    std::size_t pos = 0;

    auto fail = [&](const std::string &what) {
        throw TemplateError("line " + std::to_string(line) + ": " + what);
    };
    auto add_text = [&](std::string_view text) {
        if (text.empty()) {
            return;
        }
        if (!into->empty() && into->back().kind == Node::text) {
            into->back().str += text;
        } else {
            into->push_back({Node::text, std::string(text), {}});
        }
    };

    bool ate_newline = false;   // by the last tag, alone on its line

    while (pos < src.size()) {
        line += ate_newline;
        ate_newline = false;
        std::size_t at = src.find("{{", pos);
        if (at == std::string_view::npos) {
            at = src.size();
        }
        std::string_view text = src.substr(pos, at - pos);
        if (at == src.size()) {
            add_text(text);
            break;
        }
        std::size_t end = src.find("}}", at + 2);
        if (end == std::string_view::npos) {
            fail("{{ without }}");
        }
        std::string_view tag = src.substr(at + 2, end - at - 2);
        char sigil = tag.empty() ? '\0' : tag[0];
        bool structural = sigil == '#' || sigil == '^' || sigil == '/'
                          || sigil == '!';

        // A section or comment tag alone on its line takes the line with
        // it, so templates can put them on lines of their own.
        std::size_t after = end + 2;
        if (structural) {
            std::size_t k = at;
            while (k > pos && blank(src[k - 1])) {
                k--;
            }
            bool alone_before = k == 0 || src[k - 1] == '\n';
            std::size_t eol = after;
            while (eol < src.size() && blank(src[eol])) {
                eol++;
            }
            if (alone_before && (eol == src.size() || src[eol] == '\n')) {
                text = src.substr(pos, k - pos);
                after = eol < src.size() ? eol + 1 : eol;
            }
        }
        add_text(text);
        for (char c : src.substr(pos, at - pos)) {
            line += c == '\n';   // now the line of the tag
        }
        ate_newline = after > end + 2 && src[after - 1] == '\n';
        pos = after;

        if (sigil == '!') {
            continue;
        }
        std::string_view name = structural || sigil == '@' ? tag.substr(1)
                                                           : tag;
        if (name.empty()) {
            fail("empty {{}}");
        }
        for (char c : name) {
            if (!name_char(c)) {
                fail("bad name {{" + std::string(tag) + "}}");
            }
        }
        if (sigil == '@') {
            if (!has_key(name)) {
                fail("unknown text {{" + std::string(tag) + "}}");
            }
            keys_.emplace_back(name);
            into->push_back({Node::translation, std::string(name), {}});
            continue;
        }
        if (!known(name)) {
            fail("unknown value {{" + std::string(tag) + "}}");
        }
        if (sigil == '/') {
            if (open.empty() || open.back().first->str != name) {
                fail("{{" + std::string(tag) + "}} closes nothing open");
            }
            open.pop_back();
            into = open.empty() ? &nodes_ : &open.back().first->children;
            continue;
        }
        if (sigil == '#' || sigil == '^') {
            into->push_back({sigil == '#' ? Node::section : Node::inverted,
                             std::string(name), {}});
            open.emplace_back(&into->back(), line);
            into = &into->back().children;
            continue;
        }
        into->push_back({Node::value, std::string(name), {}});
    }
    if (!open.empty()) {
        line = open.back().second;
        fail("{{#" + open.back().first->str + "}} is never closed");
    }
}

Template::~Template() = default;
Template::Template(Template &&) noexcept = default;
Template &Template::operator=(Template &&) noexcept = default;

namespace {

bool truthy(const PageData::Value *v)
{
    if (v == nullptr) {
        return false;
    }
    switch (v->kind) {
    case PageData::Value::flag:
        return v->on;
    case PageData::Value::list:
        return !v->items.empty();
    default:
        return !v->str.empty();
    }
}

void render_nodes(std::string &out, const std::vector<Template::Node> &nodes,
                  std::vector<const PageData *> &scope,
                  const Translate &translate)
{
    for (const Template::Node &n : nodes) {
        switch (n.kind) {
        case Template::Node::text:
            out += n.str;
            break;

        case Template::Node::translation:
            html_escape_to(out, translate(n.str, scope));
            break;

        case Template::Node::value: {
            const PageData::Value *v = scope_find(scope, n.str);
            if (v == nullptr || v->kind == PageData::Value::flag
                || v->kind == PageData::Value::list) {
                break;
            }
            if (v->kind == PageData::Value::markup) {
                out += v->str;
            } else {
                html_escape_to(out, v->str);
            }
            break;
        }

        case Template::Node::inverted:
            if (!truthy(scope_find(scope, n.str))) {
                render_nodes(out, n.children, scope, translate);
            }
            break;

        case Template::Node::section: {
            const PageData::Value *v = scope_find(scope, n.str);
            if (!truthy(v)) {
                break;
            }
            if (v->kind != PageData::Value::list) {
                render_nodes(out, n.children, scope, translate);
                break;
            }
            for (const PageData &item : v->items) {
                scope.push_back(&item);
                render_nodes(out, n.children, scope, translate);
                scope.pop_back();
            }
            break;
        }
        }
    }
}

}  // namespace

void Template::render(std::string &out, const PageData &data,
                      const Translate &translate) const
{
    std::vector<const PageData *> scope{&data};
    render_nodes(out, nodes_, scope, translate);
}

}  // namespace twostep
