#include "approval.h"

#include <stdexcept>


namespace twostep {

namespace {

std::string approval_key(std::string_view txid)
{
    std::string key = "x:";
    key += txid;
    return key;
}

bool valid_txid(std::string_view id)
{
    return id.size() <= 64 && valid_id(id);
}

}  // namespace

const char *approval_name(Approval a)
{
    switch (a) {
    case Approval::missing:
        return "missing";
    case Approval::waiting:
        return "waiting";
    case Approval::approved:
        return "approved";
    case Approval::denied:
        return "denied";
    case Approval::fraud:
        return "fraud";
    case Approval::wrong_number:
        return "wrong_number";
    }
    return "unknown";
}

std::optional<Approval> approval_of(std::int64_t value)
{
    if (value < 0 || value > static_cast<std::int64_t>(Approval::wrong_number))
        return std::nullopt;
    return static_cast<Approval>(value);
}

namespace {

std::string record_mac_input(std::string_view txid, char value)
{
    std::string data = "approval|";
    data += txid;
    data += '|';
    data += value;
    return data;
}

}  // namespace

std::string approval_record(const KeyRing &keys, std::string_view txid,
                            Approval a)
{
    char value = static_cast<char>('0' + static_cast<int>(a));
    return std::string(1, value) + "."
           + keys.mac(record_mac_input(txid, value));
}

std::optional<Approval> approval_from_record(const KeyRing &keys,
                                             std::string_view txid,
                                             std::string_view record)
{
    if (record.size() < 3 || record[1] != '.' || record[0] < '2'
        || record[0] > '5' || !valid_txid(txid)
        || !keys.mac_ok(record_mac_input(txid, record[0]),
                        record.substr(2)))
        return std::nullopt;
    return static_cast<Approval>(record[0] - '0');
}

std::string new_transaction_id()
{
    return random_token(16);
}

bool open_approval(SharedState &state, std::string_view txid,
                   std::int64_t now, std::int64_t expires)
{
    if (!valid_txid(txid) || expires <= now)
        return false;
    bool fresh = false;
    bool kept = state.update(approval_key(txid), now, expires,
                             [&](StateRecord &r) {
        fresh = r.count == 0;
        if (!fresh)
            return false;
        r.count = static_cast<std::int64_t>(Approval::waiting);
        r.until = expires;
        return true;
    }, true);
    return kept && fresh;
}

Decided decide_approval(SharedState &state, std::string_view txid,
                        Approval to, std::int64_t now, std::int64_t expires)
{
    if (!valid_txid(txid) || to == Approval::missing
        || to == Approval::waiting || expires <= now)
        return Decided::missing;
    Decided out = Decided::missing;
    state.update(approval_key(txid), now, expires, [&](StateRecord &r) {
        if (r.count == static_cast<std::int64_t>(Approval::waiting)) {
            r.count = static_cast<std::int64_t>(to);
            out = Decided::ok;
            return true;
        }
        out = r.count == 0 ? Decided::missing : Decided::already;
        return false;
    }, true);
    return out;
}

Approval approval_state(SharedState &state, std::string_view txid,
                        std::int64_t now)
{
    if (!valid_txid(txid))
        return Approval::missing;
    std::int64_t seen = 0;
    state.update(approval_key(txid), now, now + 1, [&](StateRecord &r) {
        seen = r.count;
        return false;
    });
    return approval_of(seen).value_or(Approval::missing);
}

int match_number(const KeyRing &keys, std::string_view txid)
{
    auto mac = base64url_decode(keys.mac("match|" + std::string(txid)));
    if (!mac || mac->size() < 4)
        throw std::runtime_error("match_number: no MAC");
    std::uint32_t v = 0;
    for (int i = 0; i < 4; i++)
        v = v << 8 | static_cast<unsigned char>((*mac)[i]);
    // 2^32 mod 90 is 16: a bias below 4e-9, nothing a guess can use.
    return 10 + static_cast<int>(v % 90);
}

}  // namespace twostep
