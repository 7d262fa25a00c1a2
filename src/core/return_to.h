// Where to send a visitor after sign-in: only ever a path on this server.
#pragma once

#include <string_view>

namespace twostep {

// True for an origin-form target ("/path?query") that every browser resolves
// to this server: starts with a single '/', no "//" or "/\" at the start
// (also when percent-encoded), no backslash, no control characters,
// spaces or non-ASCII bytes, at most 2048 bytes.
bool safe_return_to(std::string_view target);

}  // namespace twostep
