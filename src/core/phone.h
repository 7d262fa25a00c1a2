// Phone numbers for text messages and calls: E.164 (ITU-T E.164: '+', a
// country code, at most 15 digits in all, valid_phone() in user_store.h)
// from what users type, and a masked form for pages.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace twostep {

// What a user typed -> "+31612345678". Spaces, '-', '.', '/' and
// parentheses are dropped, a leading "00" counts as '+', and a "(0)" trunk
// prefix after the country code ("+31 (0)6 ...") is removed. The number
// must be international (no country is assumed), the country code cannot
// start with 0, and 8 to 15 digits remain; anything else gives nullopt.
std::optional<std::string> normalize_phone(std::string_view typed);

// Why normalize_phone() refused what was typed, for the message beside the
// field: a letter in it, no country code ('+' or "00"), fewer than 8 or
// more than 15 digits, or anything else (a stray sign, a country code 0).
// none when it is a number.
enum class PhoneProblem { none, letters, no_country_code, too_short,
                          too_long, invalid };
PhoneProblem phone_problem(std::string_view typed);

// An E.164 number (as normalize_phone() gives) as a page shows it, "We
// sent a code to +31 •• ••• •• 78": the country code and the last two
// digits, the rest as bullets in small groups. Anything that is not E.164
// gives "•••". (mask_phone() in store_file.h is the one-word form for
// twostep-user's table.)
std::string phone_hint(std::string_view e164);

}  // namespace twostep
