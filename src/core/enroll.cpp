#include "enroll.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <qrencode.h>

#include <cerrno>
#include <cstdio>
#include <memory>
#include <stdexcept>

#include "base32.h"
#include "session.h"

namespace twostep {

namespace {

// RFC 4226 section 4 (R6) recommends a 160-bit shared secret.
constexpr std::size_t totp_secret_bytes = 20;
constexpr int qr_margin = 2;     // quiet zone, in modules
constexpr int svg_scale = 4;     // default rendered size: 4 px a module
constexpr char base32_lower[] = "abcdefghijklmnopqrstuvwxyz234567";

struct QrDeleter {
    void operator()(QRcode *code) const { QRcode_free(code); }
};
using QrPtr = std::unique_ptr<QRcode, QrDeleter>;

std::string random_bytes(std::size_t n)
{
    std::string buf(n, '\0');
    if (RAND_bytes(reinterpret_cast<unsigned char *>(buf.data()),
                   static_cast<int>(n))
        != 1) {
        throw std::runtime_error("RAND_bytes failed");
    }
    return buf;
}

// RFC 3986: everything but the unreserved characters as %XX, so ':' can
// only be the issuer/account separator in the label and '&' '=' '#' never
// end a parameter early.
std::string percent_encode(std::string_view text)
{
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(text.size() * 3);
    for (char ch : text) {
        auto c = static_cast<unsigned char>(ch);
        bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
            || (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_'
            || c == '~';
        if (unreserved) {
            out += ch;
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 0xf];
        }
    }
    return out;
}

QrPtr encode_qr(std::string_view text)
{
    if (text.find('\0') != std::string_view::npos) {
        throw std::invalid_argument("QR code text holds a NUL byte");
    }
    std::string copy(text);
    // Case-sensitive, with libqrencode choosing the most compact mode per
    // segment, as the qrencode command does.
    QrPtr code(QRcode_encodeString(copy.c_str(), 0, QR_ECLEVEL_M, QR_MODE_8,
                                   1));
    if (!code) {
        if (errno == ERANGE) {
            throw std::invalid_argument("text too long for a QR code");
        }
        throw std::runtime_error("libqrencode failed to encode");
    }
    return code;
}

// Whether the module at (x, y) of the code with its quiet zone is dark.
bool dark(const QRcode &code, int x, int y)
{
    x -= qr_margin;
    y -= qr_margin;
    if (x < 0 || y < 0 || x >= code.width || y >= code.width) {
        return false;
    }
    return (code.data[y * code.width + x] & 1) != 0;
}

std::string xml_escape(std::string_view text)
{
    std::string out;
    for (char c : text) {
        switch (c) {
        case '&': out += "&amp;"; break;
        case '<': out += "&lt;"; break;
        case '>': out += "&gt;"; break;
        case '"': out += "&quot;"; break;
        case '\'': out += "&#39;"; break;
        default: out += c;
        }
    }
    return out;
}

}  // namespace

std::string new_totp_secret()
{
    std::string raw = random_bytes(totp_secret_bytes);
    std::string secret = base32_encode(raw);
    OPENSSL_cleanse(raw.data(), raw.size());
    return secret;
}

std::string otpauth_uri(std::string_view issuer, std::string_view account,
                        const TotpParams &params)
{
    std::string uri = "otpauth://totp/";
    if (!issuer.empty()) {
        uri += percent_encode(issuer);
        uri += ':';
    }
    uri += percent_encode(account);
    uri += "?secret=";
    uri += base32_encode(params.secret);
    if (!issuer.empty()) {
        uri += "&issuer=";
        uri += percent_encode(issuer);
    }
    // Only non-defaults: some apps ignore these parameters, and a URI
    // without them is what those apps can scan correctly.
    if (params.alg != HashAlg::sha1) {
        uri += "&algorithm=";
        uri += hash_alg_name(params.alg);
    }
    if (params.digits != 6) {
        uri += "&digits=" + std::to_string(params.digits);
    }
    if (params.period != 30) {
        uri += "&period=" + std::to_string(params.period);
    }
    return uri;
}

std::string qr_terminal(std::string_view text)
{
    static constexpr const char *cell[2][2] = {
        // [top dark][bottom dark]: light modules are drawn
        {"\u2588", "\u2580"},  // both light: full; bottom dark: upper half
        {"\u2584", " "},       // top dark: lower half; both dark: blank
    };
    QrPtr code = encode_qr(text);
    int size = code->width + 2 * qr_margin;
    std::string out;
    for (int y = 0; y < size; y += 2) {
        for (int x = 0; x < size; x++) {
            out += cell[dark(*code, x, y)][dark(*code, x, y + 1)];
        }
        out += '\n';
    }
    return out;
}

std::string qr_svg(std::string_view text, std::string_view label)
{
    QrPtr code = encode_qr(text);
    int size = code->width + 2 * qr_margin;
    std::string n = std::to_string(size);
    std::string px = std::to_string(size * svg_scale);
    std::string out = "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 "
        + n + " " + n + "\" width=\"" + px + "\" height=\"" + px
        + "\" shape-rendering=\"crispEdges\" role=\"img\" aria-label=\""
        + xml_escape(label) + "\"><rect width=\"" + n + "\" height=\"" + n
        + "\" fill=\"#fff\"/><path fill=\"#000\" d=\"";
    // One rectangle per horizontal run of dark modules.
    for (int y = 0; y < size; y++) {
        for (int x = 0; x < size;) {
            if (!dark(*code, x, y)) {
                x++;
                continue;
            }
            int start = x;
            while (x < size && dark(*code, x, y)) {
                x++;
            }
            std::string run = std::to_string(x - start);
            out += "M" + std::to_string(start) + " " + std::to_string(y) + "h"
                + run + "v1h-" + run + "z";
        }
    }
    out += "\"/></svg>";
    return out;
}

std::vector<std::string> new_recovery_codes(int n)
{
    if (n < 1 || static_cast<std::size_t>(n) > max_recovery_codes) {
        throw std::invalid_argument("new_recovery_codes: bad count");
    }
    std::vector<std::string> codes;
    while (codes.size() < static_cast<std::size_t>(n)) {
        // One byte a character, 5 bits of it used: 256 is a multiple of 32,
        // so every character is uniform.
        std::string raw = random_bytes(recovery_code_chars);
        std::string code;
        for (std::size_t i = 0; i < raw.size(); i++) {
            if (i > 0 && i % 5 == 0) {
                code += '-';
            }
            code += base32_lower[static_cast<unsigned char>(raw[i]) & 31];
        }
        OPENSSL_cleanse(raw.data(), raw.size());
        bool repeated = false;
        for (const std::string &seen : codes) {
            repeated = repeated || seen == code;
        }
        if (!repeated) {
            codes.push_back(std::move(code));
        }
    }
    return codes;
}

std::string normalize_recovery_code(std::string_view typed)
{
    std::string out;
    out.reserve(typed.size());
    for (char c : typed) {
        if (c == '-' || c == ' ') {
            continue;
        }
        out += (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    }
    return out;
}

std::string recovery_hash(std::string_view code)
{
    std::string normal = normalize_recovery_code(code);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    if (EVP_Digest(normal.data(), normal.size(), md, &len, EVP_sha256(),
                   nullptr)
        != 1) {
        OPENSSL_cleanse(normal.data(), normal.size());
        throw std::runtime_error("SHA-256 failed");
    }
    OPENSSL_cleanse(normal.data(), normal.size());
    static constexpr char hex[] = "0123456789abcdef";
    std::string out;
    for (unsigned int i = 0; i < len; i++) {
        out += hex[md[i] >> 4];
        out += hex[md[i] & 0xf];
    }
    return out;
}

namespace {

constexpr std::string_view codes_kind = "rc";

}  // namespace

std::string recovery_codes_token(const KeyRing &keys, std::string_view sid,
                                 std::int64_t expires,
                                 const std::vector<std::string> &codes)
{
    std::string payload(sid);
    payload += '|';
    payload += std::to_string(expires);
    for (const std::string &code : codes) {
        payload += '|';
        payload += code;
    }
    return keys.sign(codes_kind, payload);
}

std::optional<std::vector<std::string>> read_recovery_codes_token(
    const KeyRing &keys, std::string_view token, std::string_view sid,
    std::int64_t now)
{
    // sid|expires|code..., no version: at least one code.
    auto fields = fields_of(keys, codes_kind, token, {}, 3,
                            2 + max_recovery_codes);
    if (!fields || sid.empty()) {
        return std::nullopt;
    }
    const TokenFields &parts = *fields;
    auto expires = parse_time(parts[1]);
    if (parts[0] != sid || !expires || *expires < now) {
        return std::nullopt;
    }
    std::vector<std::string> codes;
    for (std::size_t i = 2; i < parts.size(); i++) {
        codes.emplace_back(parts[i]);
    }
    return codes;
}

std::string recovery_codes_file(std::string_view heading,
                                const std::vector<std::string> &codes)
{
    std::string out(heading);
    out += "\r\n\r\n";
    for (const std::string &code : codes) {
        out += code;
        out += "\r\n";
    }
    return out;
}

namespace {

constexpr std::string_view change_kind = "ch";

}  // namespace

std::string encode_change(const KeyRing &keys, const PendingChange &c)
{
    // Text fields travel base64url'd: a key's name may hold a '|'.
    std::string payload = base64url_encode(c.user) + "|"
                          + std::to_string(c.session_issued) + "|"
                          + std::to_string(c.asked) + "|"
                          + std::to_string(c.expires) + "|"
                          + base64url_encode(c.action) + "|"
                          + base64url_encode(c.value) + "|"
                          + base64url_encode(c.name);
    return keys.sign(change_kind, payload);
}

std::optional<PendingChange> decode_change(const KeyRing &keys,
                                           std::string_view token,
                                           std::int64_t now)
{
    // No version; the text fields are base64url.
    auto fields = fields_of(keys, change_kind, token, {}, 7);
    if (!fields) {
        return std::nullopt;
    }
    const TokenFields &parts = *fields;
    auto user = base64url_decode(parts[0]);
    auto issued = parse_time(parts[1]);
    auto asked = parse_time(parts[2]);
    auto expires = parse_time(parts[3]);
    auto action = base64url_decode(parts[4]);
    auto value = base64url_decode(parts[5]);
    auto name = base64url_decode(parts[6]);
    if (!user || !issued || !asked || !expires || !action || !value
        || !name || user->empty() || action->empty() || *expires < now) {
        return std::nullopt;
    }
    PendingChange c;
    c.user = std::move(*user);
    c.session_issued = *issued;
    c.asked = *asked;
    c.expires = *expires;
    c.action = std::move(*action);
    c.value = std::move(*value);
    c.name = std::move(*name);
    return c;
}

}  // namespace twostep

