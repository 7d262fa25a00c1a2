#include "page_theme.h"

#include <dirent.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

namespace twostep {

namespace {

// The pages a theme has; each is rendered inside "layout".
constexpr std::string_view page_templates[] = {
    "layout", "signin", "code", "wait", "enroll", "security-info",
    "message", "signout", "approve", "push-setup"};

// Every value the pages are rendered with (pages.cpp sets them); a
// template or a translation naming another is a typo caught at load.
const std::set<std::string, std::less<>> &value_names()
{
    static const std::set<std::string, std::less<>> names = {
        // layout.html
        "lang", "rtl", "site_name", "title", "style", "logo", "refresh",
        "script", "copy_script", "body",
        // the forms
        "signin_url", "verify_url", "enroll_url", "manage_url",
        "logout_url", "status_url", "check_url", "return_to", "methods",
        "form_token", "user", "username", "error", "notice", "method",
        "is_totp", "is_push", "is_call", "is_sms", "is_recovery",
        "code_box", "other_ways", "ways", "href", "label", "number",
        "qr_svg", "secret", "text", "link_href", "link_text",
        "is_remembered", "remember", "remember_one", "days",
        // the call's key (pound: Twilio), "I've approved it", sign out
        "pound", "approved_url", "signout_url",
        // security-info.html
        "new_codes", "codes", "code", "totp", "phone", "provided",
        "choices", "chosen", "options", "selected", "recovery_left",
        "devices", "app_url", "phone_typed", "phone_error", "codes_token",
        "cancel_url", "confirm", "confirm_action", "confirm_text",
        "confirm_fields", "field", "value", "default_error", "unchecked",
        // approve.html (and the texts a phone gets)
        "approve_url", "token", "site", "address", "time", "phone_unusable",
        "test",
        // push-setup.html, and its row in security-info.html
        "setup_url", "server", "topic", "topic_url", "waiting",
        "push_setup", "push_url", "push",
        // security keys and passkeys (webauthn.js reads "webauthn")
        "is_webauthn", "webauthn", "passkey_url", "keys", "key_id",
        "key_name", "key_added", "challenge",
        // texts only
        "minutes"};
    return names;
}

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

bool language_code(std::string_view code)
{
    if (code.size() < 2 || code.size() > 3) {
        return false;
    }
    return std::all_of(code.begin(), code.end(),
                       [](char c) { return c >= 'a' && c <= 'z'; });
}

// Calls `each` with every {placeholder} of a text.
template <class F>
void placeholders(std::string_view text, F each)
{
    for (std::size_t at = text.find('{'); at != std::string_view::npos;
         at = text.find('{', at + 1)) {
        std::size_t end = text.find('}', at);
        if (end == std::string_view::npos) {
            each(text.substr(at));
            return;
        }
        each(text.substr(at + 1, end - at - 1));
    }
}

struct JsonDeleter {
    void operator()(json_t *j) const { json_decref(j); }
};

Language parse_language(std::string_view code, std::string_view data,
                        const std::string &where)
{
    json_error_t err;
    std::unique_ptr<json_t, JsonDeleter> root(
        json_loadb(data.data(), data.size(), JSON_REJECT_DUPLICATES, &err));
    if (!root) {
        throw ThemeError(where + ": line " + std::to_string(err.line) + ": "
                         + err.text);
    }
    if (!json_is_object(root.get())) {
        throw ThemeError(where + ": not a JSON object of texts");
    }
    Language lang;
    lang.code = std::string(code);
    const char *key;
    json_t *value;
    json_object_foreach(root.get(), key, value) {
        if (!json_is_string(value)) {
            throw ThemeError(where + ": \"" + key + "\" is not a string");
        }
        lang.texts.emplace(key, json_string_value(value));
    }
    auto dir = lang.texts.find("lang.dir");
    if (dir != lang.texts.end()) {
        if (dir->second != "ltr" && dir->second != "rtl") {
            throw ThemeError(where + ": \"lang.dir\" is \"ltr\" or \"rtl\"");
        }
        lang.rtl = dir->second == "rtl";
    }
    return lang;
}

std::string read_file(const std::string &path)
{
    std::ifstream in(path, std::ios::binary);
    if (!in) {
        throw ThemeError(path + ": " + std::strerror(errno));
    }
    std::stringstream text;
    text << in.rdbuf();
    if (in.bad()) {
        throw ThemeError(path + ": could not be read");
    }
    return text.str();
}

// The regular files of `dir`, sorted; subdirectories in `dirs`.
std::vector<std::string> list_dir(const std::string &dir,
                                  std::vector<std::string> *dirs)
{
    std::unique_ptr<DIR, int (*)(DIR *)> d(opendir(dir.c_str()), closedir);
    if (!d) {
        throw ThemeError(dir + ": " + std::strerror(errno));
    }
    std::vector<std::string> files;
    while (dirent *e = readdir(d.get())) {
        std::string name = e->d_name;
        if (name == "." || name == "..") {
            continue;
        }
        struct stat st;
        std::string path = dir + "/" + name;
        if (stat(path.c_str(), &st) != 0) {
            throw ThemeError(path + ": " + std::strerror(errno));
        }
        if (S_ISDIR(st.st_mode) && dirs != nullptr) {
            dirs->push_back(name);
        } else {
            files.push_back(name);
        }
    }
    std::sort(files.begin(), files.end());
    return files;
}

}  // namespace

std::string Language::text(std::string_view key,
                           const std::vector<const PageData *> &scope) const
{
    auto it = texts.find(key);
    if (it == texts.end()) {
        throw std::out_of_range("no text \"" + std::string(key) + "\" in "
                                + code);
    }
    const std::string &text = it->second;
    if (text.find('{') == std::string::npos) {
        return text;
    }
    std::string out;
    std::size_t pos = 0;
    for (std::size_t at = text.find('{'); at != std::string::npos;
         at = text.find('{', pos)) {
        std::size_t end = text.find('}', at);
        if (end == std::string::npos) {
            break;
        }
        out.append(text, pos, at - pos);
        const PageData::Value *v =
            scope_find(scope, std::string_view(text).substr(at + 1,
                                                            end - at - 1));
        if (v != nullptr && v->kind == PageData::Value::text) {
            out += v->str;
        }
        pos = end + 1;
    }
    out.append(text, pos, std::string::npos);
    return out;
}

bool PageTheme::known_name(std::string_view name)
{
    return value_names().count(name) != 0;
}

void PageTheme::add_file(const std::string &name, std::string_view data,
                         const std::string &where)
{
    if (name.size() > 5 && name.compare(name.size() - 5, 5, ".html") == 0) {
        std::string stem = name.substr(0, name.size() - 5);
        if (std::find(std::begin(page_templates), std::end(page_templates),
                      stem) == std::end(page_templates)) {
            throw ThemeError(where + ": no page is called \"" + stem + "\"");
        }
        sources_[stem] = std::string(data);
        origin_[stem] = where;
        return;
    }
    if (name.compare(0, 5, "lang/") == 0 && name.size() > 10
        && name.compare(name.size() - 5, 5, ".json") == 0) {
        std::string code = name.substr(5, name.size() - 10);
        if (!language_code(code)) {
            throw ThemeError(where + ": a language file is named by its "
                                     "code, like nl.json");
        }
        languages_[code] = parse_language(code, data, where);
        origin_["lang/" + code] = where;
        return;
    }
    if (name == "style.css") {
        style_ = std::string(data);
    } else if (name == "logo.svg") {
        logo_ = std::string(data);
    } else if (name == "wait.js" && where.compare(0, 9, "built-in ") == 0) {
        script_ = std::string(data);
    } else if (name == "webauthn.js"
               && where.compare(0, 9, "built-in ") == 0) {
        webauthn_script_ = std::string(data);
    } else if (name == "copy.js" && where.compare(0, 9, "built-in ") == 0) {
        copy_script_ = std::string(data);
    } else {
        throw ThemeError(where + ": not a page template (*.html), "
                                 "lang/CODE.json, style.css or logo.svg");
    }
}

void PageTheme::finish(const std::string &where, const PageTheme *base)
{
    // Every language has exactly the texts English has in the module.
    const Language *reference = base == nullptr ? language("en")
                                                : &base->english();
    if (reference == nullptr) {
        throw ThemeError(where + ": no lang/en.json");
    }
    for (const auto &[code, lang] : languages_) {
        const std::string &file = origin_["lang/" + code];
        for (const auto &[key, text] : reference->texts) {
            if (lang.texts.count(key) == 0) {
                throw ThemeError(file + ": the text \"" + key
                                 + "\" is missing");
            }
        }
        for (const auto &[key, text] : lang.texts) {
            if (reference->texts.count(key) == 0) {
                throw ThemeError(file + ": \"" + key
                                 + "\" is not a text the pages use");
            }
            // C++17 lambdas cannot capture a structured binding (clang
            // refuses it, for the fuzz build): name it first.
            const std::string &text_key = key;
            placeholders(text, [&](std::string_view name) {
                if (!known_name(name)) {
                    throw ThemeError(file + ": \"" + text_key + "\" has an "
                                     "unknown placeholder {"
                                     + std::string(name) + "}");
                }
            });
        }
    }

    auto has_key = [reference](std::string_view key) {
        return reference->texts.count(key) != 0;
    };
    for (std::string_view stem : page_templates) {
        auto src = sources_.find(stem);
        if (src == sources_.end()) {
            throw ThemeError(where + ": no " + std::string(stem) + ".html");
        }
        try {
            templates_.insert_or_assign(
                std::string(stem), Template(src->second, known_name, has_key));
        } catch (const TemplateError &e) {
            throw ThemeError(origin_[std::string(stem)] + ": " + e.what());
        }
    }
    sources_.clear();

    policy_ = "default-src 'none'; style-src " + csp_hash(style_)
              + "; script-src " + csp_hash(script_) + " "
              + csp_hash(webauthn_script_) + " " + csp_hash(copy_script_)
              + "; connect-src 'self'; "
                "form-action 'self'; frame-ancestors 'none'; base-uri 'none'";
}

const PageTheme &PageTheme::builtin()
{
    static const PageTheme theme = [] {
        PageTheme t;
        for (std::size_t i = 0; i < embedded_page_file_count; i++) {
            const EmbeddedFile &f = embedded_page_files[i];
            t.add_file(f.name, f.data, std::string("built-in ") + f.name);
        }
        t.finish("built-in pages", nullptr);
        return t;
    }();
    return theme;
}

std::unique_ptr<PageTheme> PageTheme::load(const std::string &dir)
{
    std::unique_ptr<PageTheme> t(new PageTheme());
    for (std::size_t i = 0; i < embedded_page_file_count; i++) {
        const EmbeddedFile &f = embedded_page_files[i];
        t->add_file(f.name, f.data, std::string("built-in ") + f.name);
    }
    std::vector<std::string> dirs;
    for (const std::string &name : list_dir(dir, &dirs)) {
        std::string path = dir + "/" + name;
        t->add_file(name, read_file(path), path);
    }
    for (const std::string &sub : dirs) {
        if (sub != "lang") {
            throw ThemeError(dir + "/" + sub + ": only lang/ may be a "
                                               "directory here");
        }
        for (const std::string &name : list_dir(dir + "/lang", nullptr)) {
            std::string path = dir + "/lang/" + name;
            t->add_file("lang/" + name, read_file(path), path);
        }
    }
    t->finish(dir, &builtin());
    return t;
}

const Language *PageTheme::language(std::string_view code) const
{
    auto it = languages_.find(code);
    return it == languages_.end() ? nullptr : &it->second;
}

std::vector<std::string> PageTheme::languages() const
{
    std::vector<std::string> out;
    for (const auto &l : languages_) {
        out.push_back(l.first);
    }
    return out;
}

const Language &PageTheme::negotiate(std::string_view header) const
{
    struct Choice {
        double q;
        std::size_t order;
        std::string tag;
    };
    std::vector<Choice> choices;

    // A bounded number of ranges: the header comes from the visitor.
    std::size_t pos = 0;
    while (pos < header.size() && choices.size() < 32) {
        std::size_t comma = header.find(',', pos);
        if (comma == std::string_view::npos) {
            comma = header.size();
        }
        std::string_view range = header.substr(pos, comma - pos);
        pos = comma + 1;

        std::string tag;
        double q = 1.0;
        std::size_t semi = range.find(';');
        for (char c : range.substr(0, semi)) {
            if (c != ' ' && c != '\t') {
                tag += static_cast<char>(c >= 'A' && c <= 'Z' ? c + 32 : c);
            }
        }
        if (semi != std::string_view::npos) {
            std::string param;
            for (char c : range.substr(semi + 1)) {
                if (c != ' ' && c != '\t') {
                    param += c;
                }
            }
            if (param.compare(0, 2, "q=") != 0 && param.compare(0, 2, "Q=")
                != 0) {
                continue;
            }
            char *end = nullptr;
            q = std::strtod(param.c_str() + 2, &end);
            if (end == param.c_str() + 2 || *end != '\0' || !(q >= 0)
                || q > 1) {
                continue;
            }
        }
        if (tag.empty() || q <= 0) {
            continue;   // q=0 means "not this one"
        }
        choices.push_back({q, choices.size(), std::move(tag)});
    }
    std::stable_sort(choices.begin(), choices.end(),
                     [](const Choice &a, const Choice &b) {
                         return a.q > b.q;
                     });
    for (const Choice &c : choices) {
        if (c.tag == "*") {
            return english();
        }
        if (const Language *l = language(c.tag.substr(0, c.tag.find('-')))) {
            return *l;
        }
    }
    return english();
}

std::string PageTheme::render(std::string_view name, PageData &data,
                              const Language &lang,
                              std::string_view site_name,
                              std::string_view title) const
{
    Translate translate = [&lang](std::string_view key,
                                  const std::vector<const PageData *> &s) {
        return lang.text(key, s);
    };
    data.text("lang", lang.code);
    data.flag("rtl", lang.rtl);
    data.text("site_name", std::string(site_name));
    data.text("title", std::string(title));

    std::string body;
    body.reserve(4096);
    templates_.find(name)->second.render(body, data, translate);

    data.markup("body", std::move(body));
    data.markup("style", style_);
    data.markup("logo", logo_);
    // The page that refreshes itself without JavaScript polls with it.
    const PageData::Value *refresh = data.find("refresh");
    if (refresh != nullptr && !refresh->str.empty()) {
        data.markup("script", script_);
    }
    // A page that asks a security key or passkey gets that script instead.
    const PageData::Value *key = data.find("webauthn");
    if (key != nullptr && !key->str.empty()) {
        data.markup("script", webauthn_script_);
    }
    // New recovery codes get "Copy codes" (the button shows only with it).
    const PageData::Value *codes = data.find("codes_token");
    if (codes != nullptr && !codes->str.empty()) {
        data.markup("copy_script", copy_script_);
    }
    std::string out;
    out.reserve(8192);
    templates_.find("layout")->second.render(out, data, translate);
    return out;
}

std::string PageContext::text(std::string_view key,
                              const PageData &args) const
{
    return lang->text(key, {&args});
}

std::string PageContext::text_or_literal(std::string_view key_or_text) const
{
    if (lang->texts.count(key_or_text) != 0) {
        return lang->text(key_or_text);
    }
    return std::string(key_or_text);
}

}  // namespace twostep
