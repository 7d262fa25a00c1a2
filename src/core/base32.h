// RFC 4648 base32, as authenticator apps use it for TOTP secrets.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace twostep {

// Case-insensitive; ignores ASCII spaces and trailing '=' padding.
// Returns nullopt on any other character or a dangling partial quantum
// that carries non-zero bits.
std::optional<std::string> base32_decode(std::string_view text);

// Upper case, no padding (the form otpauth:// URIs use).
std::string base32_encode(std::string_view bytes);

}  // namespace twostep
