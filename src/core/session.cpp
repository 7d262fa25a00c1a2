// Session and pending sign-in cookies: a versioned '|'-separated payload,
// signed by the KeyRing.
//   session (kind "s"):
//     3|sid|user|method|auth_time|expires|credentials|via|issued
//   (via: "password" or "identity"; issued: when the session began, for the
//   current TTL; versions 1 and 2 lacked one of them and are refused)
//   pending (kind "p"):
//     2|nonce|user|via|expires|txid|method|methods|confirmed|remember[|code]
//   (txid and method empty unless a push or call is waiting; methods: those
//   the protected location accepts, as methods_to_list() writes them;
//   confirmed: the provider's methods for the user, as a decimal bit mask;
//   remember: "1" if "Don't ask again" was ticked, else "0"; version 1
//   lacked it and is refused: a sign-in in progress starts again; code: a
//   texted code's "<expiry>.<MAC>" record, present only while one is out)
//   remembered device (kind "d"): 1|user|credentials|issued|expires
//   capability (kind "x"): txid|user|method|expires|address[|test]
//   (a self-hosted push's or call's links; approval.h)
//   push set-up (kind "u"): version|sid|user|topic|txid|expires
#include "session.h"

#include <cstdint>
#include <stdexcept>
#include <vector>

#include "ntfy.h"
#include "user_store.h"

namespace twostep {

namespace {

constexpr std::string_view session_kind = "s";
constexpr std::string_view pending_kind = "p";
constexpr std::string_view device_kind = "d";
constexpr std::string_view capability_kind = "x";
constexpr std::string_view push_setup_kind = "u";
constexpr std::string_view push_setup_version = "1";
constexpr std::string_view test_push = "test";
constexpr std::string_view payload_version = "2";
constexpr std::string_view device_version = "1";
constexpr std::string_view session_version = "3";
constexpr std::size_t max_id_bytes = 128;

constexpr FirstFactor first_factors[] = {
    FirstFactor::none, FirstFactor::password, FirstFactor::identity,
    FirstFactor::session, FirstFactor::passkey};

const char *first_factor_name(FirstFactor f)
{
    switch (f) {
    case FirstFactor::none:
        return "none";
    case FirstFactor::password:
        return "password";
    case FirstFactor::identity:
        return "identity";
    case FirstFactor::session:
        return "session";
    case FirstFactor::passkey:
        return "passkey";
    }
    throw std::invalid_argument("unknown first factor");
}

std::optional<FirstFactor> first_factor_from_name(std::string_view name)
{
    for (FirstFactor f : first_factors) {
        if (name == first_factor_name(f))
            return f;
    }
    return std::nullopt;
}

// A client address as nginx prints it (IPv4, IPv6): printable ASCII,
// bounded, no separator.
bool valid_address(std::string_view address)
{
    if (address.size() > 64)
        return false;
    for (char c : address) {
        if (c <= 0x20 || c >= 0x7f || c == '|')
            return false;
    }
    return true;
}

// issue_oob_code()'s record: "<expiry>.<MAC>", digits then base64url.
bool valid_code_record(std::string_view record)
{
    std::size_t dot = record.find('.');
    if (dot == std::string_view::npos || dot == 0 || dot > 18)
        return false;
    for (char c : record.substr(0, dot)) {
        if (c < '0' || c > '9')
            return false;
    }
    return valid_id(record.substr(dot + 1));
}

// Fields never contain '|', so the payload splits back unambiguously.
void append(std::string &payload, std::string_view field)
{
    if (field.find('|') != std::string_view::npos)
        throw std::invalid_argument("cookie field contains '|'");
    payload += '|';
    payload += field;
}

void append_time(std::string &payload, std::int64_t t)
{
    if (t < 0)
        throw std::invalid_argument("cookie time is negative");
    append(payload, std::to_string(t));
}

}  // namespace

// sid and nonce come from random_token(): base64url, non-empty, bounded.
bool valid_id(std::string_view id)
{
    if (id.empty() || id.size() > max_id_bytes)
        return false;
    for (char c : id) {
        bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z')
                  || (c >= '0' && c <= '9') || c == '-' || c == '_';
        if (!ok)
            return false;
    }
    return true;
}

// Plain decimal, as encoding writes it: no sign, no leading zero, in range.
std::optional<std::int64_t> parse_time(std::string_view text)
{
    if (text.empty() || (text.size() > 1 && text[0] == '0'))
        return std::nullopt;
    std::int64_t value = 0;
    for (char c : text) {
        if (c < '0' || c > '9')
            return std::nullopt;
        if (__builtin_mul_overflow(value, 10, &value)
            || __builtin_add_overflow(value, c - '0', &value))
            return std::nullopt;
    }
    return value;
}

TokenFields::TokenFields(std::string payload) : payload_(std::move(payload))
{
    std::size_t at = 0;
    for (;;) {
        std::size_t bar = payload_.find('|', at);
        if (bar == std::string::npos) {
            fields_.emplace_back(at, payload_.size() - at);
            return;
        }
        fields_.emplace_back(at, bar - at);
        at = bar + 1;
    }
}

std::optional<TokenFields> fields_of(const KeyRing &keys,
                                     std::string_view kind,
                                     std::string_view token,
                                     std::string_view version,
                                     std::size_t least, std::size_t most)
{
    auto payload = keys.verify(kind, token);
    if (!payload)
        return std::nullopt;
    TokenFields f(std::move(*payload));
    if (f.size() < least || f.size() > most
        || (!version.empty() && f[0] != version))
        return std::nullopt;
    return f;
}

// A session was opened by a password or by a verified identity; a step-up
// keeps what the session it replaces had.
bool session_first_factor(FirstFactor f)
{
    return f == FirstFactor::password || f == FirstFactor::identity
           || f == FirstFactor::passkey;
}

std::string encode_session(const KeyRing &keys, const Session &s)
{
    std::string payload(session_version);
    append(payload, s.sid);
    append(payload, s.user);
    append(payload, method_name(s.method));
    append_time(payload, s.auth_time);
    append_time(payload, s.expires);
    append(payload, s.credentials);
    append(payload, first_factor_name(s.via));
    append_time(payload, s.issued);
    if (!valid_id(s.sid) || !valid_user_name(s.user)
        || !method_from_name(method_name(s.method))
        || (!s.credentials.empty() && !valid_id(s.credentials))
        || !session_first_factor(s.via))
        throw std::invalid_argument("session would not decode");
    return keys.sign(session_kind, payload);
}

std::optional<Session> decode_session(const KeyRing &keys,
                                      std::string_view token,
                                      std::int64_t now)
{
    auto fields = fields_of(keys, session_kind, token, session_version, 9);
    if (!fields)
        return std::nullopt;
    const TokenFields &f = *fields;
    auto method = method_from_name(f[3]);
    auto auth_time = parse_time(f[4]);
    auto expires = parse_time(f[5]);
    auto via = first_factor_from_name(f[7]);
    auto issued = parse_time(f[8]);
    if (!valid_id(f[1]) || !valid_user_name(f[2]) || !method || !auth_time
        || !expires || !issued || *expires <= now
        || (!f[6].empty() && !valid_id(f[6]))
        || !via || !session_first_factor(*via))
        return std::nullopt;

    Session s;
    s.sid = f[1];
    s.user = f[2];
    s.method = *method;
    s.auth_time = *auth_time;
    s.expires = *expires;
    s.credentials = f[6];
    s.via = *via;
    s.issued = *issued;
    return s;
}

bool session_within(const Session &s, std::int64_t ttl, std::int64_t now)
{
    return now < s.expires && now - s.issued < ttl;
}

std::string encode_pending(const KeyRing &keys, const PendingSignin &p)
{
    std::string payload(payload_version);
    append(payload, p.nonce);
    append(payload, p.user);
    append(payload, first_factor_name(p.via));
    append_time(payload, p.expires);
    append(payload, p.txid);
    append(payload, p.txid.empty() ? "" : method_name(p.txid_method));
    append(payload, methods_to_list(p.methods));
    append(payload, std::to_string(p.confirmed));
    append(payload, p.remember ? "1" : "0");
    if (!p.code.empty())
        append(payload, p.code);
    // A user name exactly when a first factor has been passed.
    bool user_ok = p.via == FirstFactor::none ? p.user.empty()
                                               : valid_user_name(p.user);
    bool txid_ok = p.txid.empty()
                   || (valid_id(p.txid) && !p.user.empty()
                       && method_info(p.txid_method).waits);
    if (!valid_id(p.nonce) || !user_ok || !txid_ok
        || methods_from_list(methods_to_list(p.methods)) != p.methods
        || (p.confirmed & ~methods_of_kind(MethodKind::out_of_band)) != 0
        || (!p.code.empty() && (!valid_code_record(p.code) || p.user.empty())))
        throw std::invalid_argument("pending sign-in would not decode");
    return keys.sign(pending_kind, payload);
}

std::optional<PendingSignin> decode_pending(const KeyRing &keys,
                                            std::string_view token,
                                            std::int64_t now)
{
    // The texted code's record is the optional 11th field.
    auto fields = fields_of(keys, pending_kind, token, payload_version, 10,
                            11);
    if (!fields)
        return std::nullopt;
    const TokenFields &f = *fields;
    if (f[9] != "0" && f[9] != "1")
        return std::nullopt;
    auto methods = methods_from_list(f[7]);
    auto confirmed = parse_time(f[8]);
    // Only a provider confirms methods: push, call, text.
    if (!methods || !confirmed || *confirmed < 0
        || (static_cast<std::uint64_t>(*confirmed)
            & ~std::uint64_t{methods_of_kind(MethodKind::out_of_band)}) != 0)
        return std::nullopt;
    auto via = first_factor_from_name(f[3]);
    auto expires = parse_time(f[4]);
    if (!valid_id(f[1]) || !via || !expires || *expires <= now)
        return std::nullopt;
    bool user_ok = *via == FirstFactor::none ? f[2].empty()
                                              : valid_user_name(f[2]);
    if (!user_ok)
        return std::nullopt;

    PendingSignin p;
    if (!f[5].empty()) {
        auto m = method_from_name(f[6]);
        if (!valid_id(f[5]) || f[2].empty() || !m
            || !method_info(*m).waits)
            return std::nullopt;
        p.txid = f[5];
        p.txid_method = *m;
    } else if (!f[6].empty()) {
        return std::nullopt;
    }
    p.nonce = f[1];
    p.user = f[2];
    p.via = *via;
    p.expires = *expires;
    p.methods = *methods;
    p.confirmed = static_cast<MethodSet>(*confirmed);
    p.remember = f[9] == "1";
    if (f.size() == 11) {
        if (!valid_code_record(f[10]) || p.user.empty())
            return std::nullopt;
        p.code = f[10];
    }
    return p;
}

std::string encode_device(const KeyRing &keys, const RememberedDevice &d)
{
    std::string payload(device_version);
    append(payload, d.user);
    append(payload, d.credentials);
    append_time(payload, d.issued);
    append_time(payload, d.expires);
    if (!valid_user_name(d.user) || !valid_id(d.credentials))
        throw std::invalid_argument("remembered device would not decode");
    return keys.sign(device_kind, payload);
}

std::optional<RememberedDevice> decode_device(const KeyRing &keys,
                                              std::string_view token,
                                              std::int64_t now)
{
    auto fields = fields_of(keys, device_kind, token, device_version, 5);
    if (!fields)
        return std::nullopt;
    const TokenFields &f = *fields;
    auto issued = parse_time(f[3]);
    auto expires = parse_time(f[4]);
    if (!valid_user_name(f[1]) || !valid_id(f[2]) || !issued || !expires
        || *expires <= now)
        return std::nullopt;

    RememberedDevice d;
    d.user = f[1];
    d.credentials = f[2];
    d.issued = *issued;
    d.expires = *expires;
    return d;
}

bool device_remembers(const RememberedDevice &d, const User &user,
                      std::int64_t ttl, std::int64_t now)
{
    // Forgotten at time T: devices remembered up to and within that
    // second are refused (one cannot tell which came first).
    return d.user == user.name && d.credentials == user.credential_tag
           && d.issued > user.devices_forgotten && now < d.expires
           && now - d.issued < ttl;
}

std::string capability_token(const KeyRing &keys, const Capability &c)
{
    if (!valid_id(c.txid) || !valid_user_name(c.user) || c.expires <= 0
        || !valid_address(c.address) || !method_info(c.method).waits)
        throw std::invalid_argument("capability would not decode");
    std::string payload(c.txid);
    append(payload, c.user);
    append(payload, method_name(c.method));
    append_time(payload, c.expires);
    append(payload, c.address);
    if (c.test)
        append(payload, test_push);
    return keys.sign(capability_kind, payload);
}

std::optional<Capability> read_capability(const KeyRing &keys,
                                          std::string_view token,
                                          std::int64_t now)
{
    // No version; a test push's links have a 6th field.
    auto fields = fields_of(keys, capability_kind, token, {}, 5, 6);
    if (!fields)
        return std::nullopt;
    const TokenFields &f = *fields;
    if (f.size() == 6 && f[5] != test_push)
        return std::nullopt;
    auto method = method_from_name(f[2]);
    auto expires = parse_time(f[3]);
    if (!valid_id(f[0]) || !valid_user_name(f[1]) || !valid_address(f[4])
        || !method
        || !method_info(*method).waits || !expires || *expires <= now)
        return std::nullopt;
    Capability c;
    c.txid = f[0];
    c.user = f[1];
    c.method = *method;
    c.expires = *expires;
    c.address = f[4];
    c.test = f.size() == 6;
    return c;
}

std::string encode_push_setup(const KeyRing &keys, const PushSetup &s)
{
    if (!valid_id(s.sid) || !valid_user_name(s.user)
        || !ntfy::valid_topic(s.topic) || (!s.txid.empty()
                                           && !valid_id(s.txid))
        || s.expires <= 0)
        throw std::invalid_argument("push set-up would not decode");
    std::string payload(push_setup_version);
    append(payload, s.sid);
    append(payload, s.user);
    append(payload, s.topic);
    append(payload, s.txid);
    append_time(payload, s.expires);
    return keys.sign(push_setup_kind, payload);
}

std::optional<PushSetup> decode_push_setup(const KeyRing &keys,
                                           std::string_view token,
                                           std::int64_t now)
{
    auto fields = fields_of(keys, push_setup_kind, token, push_setup_version,
                            6);
    if (!fields)
        return std::nullopt;
    const TokenFields &f = *fields;
    auto expires = parse_time(f[5]);
    if (!valid_id(f[1]) || !valid_user_name(f[2])
        || !ntfy::valid_topic(f[3]) || (!f[4].empty() && !valid_id(f[4]))
        || !expires || *expires <= now)
        return std::nullopt;
    PushSetup s;
    s.sid = f[1];
    s.user = f[2];
    s.topic = f[3];
    s.txid = f[4];
    s.expires = *expires;
    return s;
}

std::string form_token(const KeyRing &keys, const PendingSignin &p)
{
    return keys.mac("form|" + p.nonce);
}

bool form_token_ok(const KeyRing &keys, const PendingSignin &p,
                   std::string_view token)
{
    return !p.nonce.empty() && keys.mac_ok("form|" + p.nonce, token);
}

}  // namespace twostep
