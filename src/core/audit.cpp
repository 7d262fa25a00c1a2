// Audit log lines, built with jansson so that everything is JSON-escaped.
#include "audit.h"

#include <jansson.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "json.h"
#include "user_store.h"

namespace twostep {

namespace {

// Printable ASCII as it is, anything else as %XX: a URI or a Host header
// may carry any byte, and jansson takes only UTF-8.
std::string printable(std::string_view s)
{
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        if (c >= 0x20 && c < 0x7f && c != '%') {
            out += static_cast<char>(c);
        } else {
            char buf[4];
            std::snprintf(buf, sizeof(buf), "%%%02X", c);
            out += buf;
        }
    }
    return out;
}

bool set(json_t *obj, const char *key, std::string_view value)
{
    json_t *v = value.empty() ? json_null()
                              : json_string(printable(value).c_str());
    return v != nullptr && json_object_set_new(obj, key, v) == 0;
}

}  // namespace

std::string audit_line(const AuditEvent &e)
{
    JsonPtr obj(json_object());
    if (!obj)
        return {};

    std::string_view user = e.user.empty() || valid_user_name(e.user)
                                ? e.user
                                : std::string_view("(unknown)");

    if (!set(obj.get(), "time", e.time) || !set(obj.get(), "event", e.event)
        || !set(obj.get(), "user", user)
        || !set(obj.get(), "method", e.method)
        || !set(obj.get(), "result", e.result)
        || !set(obj.get(), "address", e.address)
        || !set(obj.get(), "host", e.host) || !set(obj.get(), "uri", e.uri)
        || !set(obj.get(), "request_id", e.request_id))
    {
        return {};
    }

    CharPtr text(
        json_dumps(obj.get(), JSON_COMPACT | JSON_PRESERVE_ORDER));
    if (!text)
        return {};

    std::string line(text.get());
    line += '\n';
    return line;
}

}  // namespace twostep
