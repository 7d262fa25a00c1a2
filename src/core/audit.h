// The audit log's line: one JSON object per security event, for a SIEM or
// fail2ban. Only what is passed here is written, and nothing passed here is
// a secret (no password, code, token or cookie ever reaches it).
#pragma once

#include <string>
#include <string_view>

namespace twostep {

struct AuditEvent {
    std::string_view time;        // RFC 3339
    std::string_view event;       // "signin", "lockout", ...
    std::string_view user;        // as typed: written only if a valid name
    std::string_view method;      // "password", "totp", ... or empty
    std::string_view result;      // "success", "failure", "locked", "error"
    std::string_view address;
    std::string_view host;
    std::string_view uri;
    std::string_view request_id;
};

// A compact JSON object and a newline. Empty fields are null; a user name
// that is not a valid one (which may be a mistyped password) is written as
// "(unknown)"; bytes that are not printable ASCII are written as
// %XX, so every line is valid JSON and UTF-8.
std::string audit_line(const AuditEvent &e);

}  // namespace twostep
