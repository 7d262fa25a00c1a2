// Where to send a visitor after sign-in: only ever a path on this server.
#pragma once

#include <string>
#include <string_view>

namespace twostep {

// True for an origin-form target ("/path?query") that every browser resolves
// to this server: starts with a single '/', no "//" or "/\" at the start
// (also when percent-encoded), no backslash, no control characters,
// spaces or non-ASCII bytes, at most 2048 bytes.
bool safe_return_to(std::string_view target);

// Where a visitor came from, as a return target: the path of `url` (a
// Referer) when it starts with exactly `origin` ("https://host:port") and
// the rest passes safe_return_to() and is not under `portal` (the sign-in
// pages are no application to go back to). Empty otherwise.
std::string same_origin_target(std::string_view url, std::string_view origin,
                               std::string_view portal);

}  // namespace twostep
