// Reading what a provider sends back (Duo, Twilio, ntfy): JSON that refuses
// duplicate names, and text made safe to log or show.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>

#include "json.h"

namespace twostep {

// The parsed body, or nullptr with err set; an empty body is not JSON.
// Duplicate names are refused: two parsers could pick different ones.
JsonPtr load_json(std::string_view body, json_error_t &err);

// A JSON string's bytes (jansson keeps them valid UTF-8, NUL allowed).
std::string_view json_text(const json_t *string);

// The failures every provider's answer can have before its own checks.
// Each provider's Failure enum begins with these members in this order
// (checked there with as_failure()).
enum class AnswerFailure { none, http_status, rate_limited, not_json,
                           bad_shape };

// "none", "http_status", "rate_limited", "not_json", "bad_shape".
const char *answer_failure_name(AnswerFailure f);

template <class Failure>
constexpr Failure as_failure(AnswerFailure f)
{
    static_assert(static_cast<int>(Failure::http_status) == 1
                      && static_cast<int>(Failure::rate_limited) == 2
                      && static_cast<int>(Failure::not_json) == 3
                      && static_cast<int>(Failure::bad_shape) == 4
                      && static_cast<int>(AnswerFailure::bad_shape) == 4,
                  "Failure must begin with AnswerFailure's members");
    return static_cast<Failure>(static_cast<int>(f));
}

// The name of a provider's failure that is one of AnswerFailure's, else
// nullptr.
template <class Failure>
const char *shared_failure_name(Failure f)
{
    int n = static_cast<int>(f);
    return n <= static_cast<int>(AnswerFailure::bad_shape)
        ? answer_failure_name(static_cast<AnswerFailure>(n))
        : nullptr;
}

struct JsonAnswer {
    AnswerFailure failure = AnswerFailure::none;
    std::string message;  // for the log, not yet clean_text()ed
    JsonPtr root;         // a JSON object if failure is none
};

// The checks every answer shares: a 2xx status (429 is rate_limited; for
// any other the error object's description is added to the message), at
// most max_bytes, JSON, an object.
JsonAnswer open_json_answer(long http_status, std::string_view body,
                            std::size_t max_bytes, const char *text_member,
                            const char *detail_member = nullptr);

// "40002 Invalid request parameters: username" from an error object: its
// integer "code", its `text_member` string and, if given, its
// `detail_member` string; "" if it has none of them.
std::string error_description(const json_t *root, const char *text_member,
                              const char *detail_member = nullptr);

// At most `max` bytes of `in`, cut between characters, with every control
// character (C0, DEL, C1, bidirectional marks and overrides, line
// separators) as a space and every malformed UTF-8 byte as '?'.
std::string clean_text(std::string_view in, std::size_t max);

}  // namespace twostep
