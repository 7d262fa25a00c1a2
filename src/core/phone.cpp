#include "phone.h"

#include <algorithm>

#include "user_store.h"

namespace twostep {

namespace {

constexpr std::size_t max_digits = 15;  // ITU-T E.164 section 6.2.1

bool digit(char c) { return c >= '0' && c <= '9'; }

bool separator(char c)
{
    return c == ' ' || c == '-' || c == '.' || c == '/' || c == '(' || c == ')';
}

// valid_phone(), and no country code starts with 0.
bool e164(std::string_view n)
{
    return valid_phone(n) && n[1] != '0';
}

// Length of the country code at the start of `digits`, from the ITU's
// assignment: 1 and 7 are one digit, the listed ones two, all others three.
std::size_t country_code_length(std::string_view digits)
{
    if (digits[0] == '1' || digits[0] == '7')
        return 1;
    static constexpr std::string_view two_digit[] = {
        "20", "27", "30", "31", "32", "33", "34", "36", "39", "40", "41",
        "43", "44", "45", "46", "47", "48", "49", "51", "52", "53", "54",
        "55", "56", "57", "58", "60", "61", "62", "63", "64", "65", "66",
        "81", "82", "84", "86", "90", "91", "92", "93", "94", "95", "98"};
    std::string_view head = digits.substr(0, 2);
    for (std::string_view cc : two_digit) {
        if (head == cc)
            return 2;
    }
    return 3;
}

}  // namespace

std::optional<std::string> normalize_phone(std::string_view typed)
{
    std::string out;
    std::size_t i = 0;
    while (i < typed.size() && typed[i] == ' ')
        i++;
    if (typed.substr(i, 1) == "+")
        i++;
    else if (typed.substr(i, 2) == "00")
        i += 2;
    else
        return std::nullopt;
    out += '+';
    for (; i < typed.size(); i++) {
        char c = typed[i];
        if (typed.substr(i, 3) == "(0)" && out.size() > 1) {
            i += 2;
        } else if (digit(c)) {
            out += c;
        } else if (!separator(c)) {
            return std::nullopt;
        }
        if (out.size() > 1 + max_digits)
            return std::nullopt;
    }
    if (!e164(out))
        return std::nullopt;
    return out;
}

PhoneProblem phone_problem(std::string_view typed)
{
    if (normalize_phone(typed))
        return PhoneProblem::none;
    std::size_t digits = 0;
    for (char c : typed) {
        if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
            return PhoneProblem::letters;
        digits += digit(c);
    }
    std::size_t i = typed.find_first_not_of(' ');
    if (i == std::string_view::npos)
        return PhoneProblem::too_short;
    if (typed[i] != '+' && typed.substr(i, 2) != "00")
        return PhoneProblem::no_country_code;
    if (typed[i] != '+')
        digits -= 2;  // the "00" stands for '+'
    if (digits < 8)
        return PhoneProblem::too_short;
    if (digits > max_digits)
        return PhoneProblem::too_long;
    return PhoneProblem::invalid;
}

std::string phone_hint(std::string_view e164_number)
{
    static constexpr std::string_view bullet = "\xe2\x80\xa2";  // U+2022
    if (!e164(e164_number))
        return "\xe2\x80\xa2\xe2\x80\xa2\xe2\x80\xa2";
    std::string_view digits = e164_number.substr(1);
    std::size_t cc = country_code_length(digits);
    std::string out = "+" + std::string(digits.substr(0, cc));
    std::size_t hidden = digits.size() - cc - 2;
    // Groups of two and three in turn; a lone last bullet joins its group.
    std::size_t group = 2;
    while (hidden > 0) {
        std::size_t n = hidden == group + 1 ? hidden
                                            : std::min(group, hidden);
        out += ' ';
        for (std::size_t k = 0; k < n; k++)
            out += bullet;
        hidden -= n;
        group = group == 2 ? 3 : 2;
    }
    out += ' ';
    out += digits.substr(digits.size() - 2);
    return out;
}

}  // namespace twostep
