// Owning pointers for what jansson and libc hand out: a json_t reference,
// and a malloc'ed string (json_dumps, realpath).
#pragma once

#include <jansson.h>

#include <cstdlib>
#include <memory>

namespace twostep {

struct JsonDeleter {
    void operator()(json_t *json) const { json_decref(json); }
};
using JsonPtr = std::unique_ptr<json_t, JsonDeleter>;

struct FreeDeleter {
    void operator()(char *p) const { std::free(p); }
};
using CharPtr = std::unique_ptr<char, FreeDeleter>;

}  // namespace twostep
