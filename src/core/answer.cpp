#include "answer.h"

#include <cstdint>

namespace twostep {

namespace {

// Replaced in anything shown or logged: besides C0, DEL and C1, the
// invisible marks and overrides that reorder text on screen or in a
// terminal (Unicode TR 9), and line separators that split a log line.
bool control_character(std::uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7f && cp <= 0x9f) || cp == 0x061c
        || cp == 0x200e || cp == 0x200f || (cp >= 0x2028 && cp <= 0x202e)
        || (cp >= 0x2066 && cp <= 0x2069);
}

// Length of the UTF-8 sequence at in[i] and its code point, or 0 if it is
// malformed (jansson only hands out valid UTF-8; this guards our own text).
std::size_t utf8_char(std::string_view in, std::size_t i, std::uint32_t &cp)
{
    auto c = static_cast<unsigned char>(in[i]);
    std::size_t len = c < 0x80 ? 1 : c >= 0xf8 ? 0 : c >= 0xf0 ? 4
        : c >= 0xe0 ? 3 : c >= 0xc2 ? 2 : 0;
    if (len == 0 || in.size() - i < len)
        return 0;
    cp = len == 1 ? c : c & (0x7f >> len);
    for (std::size_t k = 1; k < len; k++) {
        auto cont = static_cast<unsigned char>(in[i + k]);
        if ((cont & 0xc0) != 0x80)
            return 0;
        cp = cp << 6 | (cont & 0x3f);
    }
    return len;
}

}  // namespace

JsonPtr load_json(std::string_view body, json_error_t &err)
{
    if (body.empty()) {
        err.line = 0;
        err.column = 0;
        return nullptr;
    }
    return JsonPtr(
        json_loadb(body.data(), body.size(), JSON_REJECT_DUPLICATES, &err));
}

std::string_view json_text(const json_t *string)
{
    return {json_string_value(string), json_string_length(string)};
}

const char *answer_failure_name(AnswerFailure f)
{
    switch (f) {
    case AnswerFailure::none:
        return "none";
    case AnswerFailure::http_status:
        return "http_status";
    case AnswerFailure::rate_limited:
        return "rate_limited";
    case AnswerFailure::not_json:
        return "not_json";
    case AnswerFailure::bad_shape:
        return "bad_shape";
    }
    return "unknown";
}

std::string error_description(const json_t *root, const char *text_member,
                              const char *detail_member)
{
    std::string out;
    const json_t *code = json_object_get(root, "code");
    if (json_is_integer(code))
        out = std::to_string(json_integer_value(code));
    const json_t *text = json_object_get(root, text_member);
    if (json_is_string(text)) {
        if (!out.empty())
            out += ' ';
        out += json_text(text);
    }
    const json_t *detail =
        detail_member ? json_object_get(root, detail_member) : nullptr;
    if (json_is_string(detail)) {
        if (!out.empty())
            out += ": ";
        out += json_text(detail);
    }
    return out;
}

JsonAnswer open_json_answer(long http_status, std::string_view body,
                            std::size_t max_bytes, const char *text_member,
                            const char *detail_member)
{
    JsonAnswer a;
    json_error_t err;
    if (http_status == 429 || http_status < 200 || http_status > 299) {
        a.failure = http_status == 429 ? AnswerFailure::rate_limited
                                       : AnswerFailure::http_status;
        a.message = "HTTP " + std::to_string(http_status);
        if (body.size() <= max_bytes) {
            JsonPtr root = load_json(body, err);
            std::string detail = json_is_object(root.get())
                ? error_description(root.get(), text_member, detail_member)
                : std::string();
            if (!detail.empty())
                a.message += ": " + detail;
        }
        return a;
    }
    if (body.size() > max_bytes) {
        a.failure = AnswerFailure::bad_shape;
        a.message = "response larger than " + std::to_string(max_bytes)
            + " bytes";
        return a;
    }
    a.root = load_json(body, err);
    if (!a.root) {
        a.failure = AnswerFailure::not_json;
        a.message = "response is not JSON (line " + std::to_string(err.line)
            + ", column " + std::to_string(err.column) + ")";
    } else if (!json_is_object(a.root.get())) {
        a.failure = AnswerFailure::bad_shape;
        a.message = "response is not a JSON object";
        a.root.reset();
    }
    return a;
}

std::string clean_text(std::string_view in, std::size_t max)
{
    std::string out;
    for (std::size_t i = 0; i < in.size();) {
        std::uint32_t cp = 0;
        std::size_t len = utf8_char(in, i, cp);
        std::string_view piece = len == 0 ? "?"
            : control_character(cp)       ? " "
                                          : in.substr(i, len);
        if (out.size() + piece.size() > max)
            break;
        out += piece;
        i += len == 0 ? 1 : len;
    }
    return out;
}

}  // namespace twostep
