// A push or call the portal itself waits on (ntfy, Twilio; provider.h
// self_hosted()): the transaction's state in SharedState, decided once by
// the approval page, the Deny button or the call's keypress callback, and
// the capability token in the links that reach the phone.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "guard.h"
#include "keyring.h"
#include "session.h"
#include "methods.h"

namespace twostep {

// The values kept in the record's count; never renumber (the zone and a
// networked store outlive a reload).
enum class Approval {
    missing = 0,       // unknown, expired, or lost with the store
    waiting = 1,
    approved = 2,
    denied = 3,        // Deny, a key other than '#', hung up silent
    fraud = 4,         // '0' on the call: reported as not the user's
    wrong_number = 5,  // number matching failed: possible push fatigue
};
const char *approval_name(Approval a);
// A stored value as an Approval; nullopt for a number out of range.
std::optional<Approval> approval_of(std::int64_t value);

// With twostep_redis a decided answer is kept as "<value>.<MAC>": the MAC
// (the server's cookie keys, over "approval|<txid>|<value>") is made by
// the host that decides and checked by the host that reads, so whoever
// can write to Redis but has not the key cannot approve a sign-in (a bare
// or forged value is no answer: the sign-in fails closed; OWASP ASVS 4.0.3
// V3.5.3, a second factor nobody outside the server can mint). It binds
// the answer to its transaction: an approval cannot be copied to another.
// A waiting transaction is "1", unauthenticated: it opens nothing.
std::string approval_record(const KeyRing &keys, std::string_view txid,
                            Approval a);
// The decided answer in `record` if its MAC verifies under any key
// (constant time) for `txid`; nullopt for anything else, waiting included.
std::optional<Approval> approval_from_record(const KeyRing &keys,
                                             std::string_view txid,
                                             std::string_view record);

// A fresh transaction id: 128 random bits, base64url.
std::string new_transaction_id();

// Records `txid` as waiting until `expires`. False when the store could
// not keep it (full): the caller fails closed and sends nothing.
bool open_approval(SharedState &state, std::string_view txid,
                   std::int64_t now, std::int64_t expires);

enum class Decided { ok, already, missing, unavailable };

// waiting -> `to`, once, kept until `expires` (the transaction's, from
// its capability): a second decision (a replayed callback, a reused link)
// is `already` and changes nothing; an unknown or expired transaction is
// `missing`. (`unavailable`: a networked store, Redis, could not answer;
// the shared zone never does.)
Decided decide_approval(SharedState &state, std::string_view txid,
                        Approval to, std::int64_t now,
                        std::int64_t expires);

// What the waiting page sees.
Approval approval_state(SharedState &state, std::string_view txid,
                        std::int64_t now);

// The capability in the links: Capability, capability_token() and
// read_capability() in session.h.

// The two-digit number (10..99) the sign-in page shows for a push and the
// approval page asks for: derived from the transaction id with the
// server's key, so that neither page stores it and nobody without the key
// can tell it from the link (number matching against push fatigue).
int match_number(const KeyRing &keys, std::string_view txid);

}  // namespace twostep
