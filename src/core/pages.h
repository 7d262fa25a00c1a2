// The portal's HTML pages: small, accessible, work without JavaScript, and
// escape everything they echo. The markup is in src/core/pages/*.html and
// the wording in src/core/pages/lang/*.json (page_theme.h); every render_*
// takes the PageContext of the response: theme, language and site name.
// `error` and `notice` fields hold a text key ("error.code_wrong") or, for
// older callers, a text shown as given.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "methods.h"
#include "page_theme.h"

namespace twostep {

// The Content-Security-Policy of the built-in pages: no framing, forms only
// to this origin, and only the pages' own stylesheet and script (allowed
// by their SHA-256 hashes). A theme's own: PageTheme::security_policy().
const std::string &page_security_policy();

// "Try again in 7 minutes": the text `key` (or `key`_one for a single
// minute) with {minutes}, the seconds to wait rounded up to whole
// minutes, so a page never promises a retry that would still be refused.
std::string minutes_text(const PageContext &ctx, std::string_view key,
                         std::int64_t seconds);

struct PortalPaths {
    std::string signin;   // e.g. "/.twostep/signin"
    std::string verify;   // e.g. "/.twostep/verify"
    std::string logout;   // e.g. "/.twostep/logout"
    std::string wait;     // e.g. "/.twostep/wait"
    std::string status;   // e.g. "/.twostep/status"
};

struct SigninPage {
    PortalPaths paths;
    std::string return_to;
    std::string methods;     // methods_to_list() of the location, carried on
    std::string form_token;
    std::string username;    // refilled after a failed attempt
    std::string error;       // empty, or e.g. "Wrong user name or password."
    // Passkey sign-in (twostep_passkey_signin): where it posts, the
    // options for webauthn.js and the signed challenge; empty: not offered.
    std::string passkey_url;
    std::string webauthn;
    std::string challenge;
};

// Form: POST paths.signin with fields username, password, return_to,
// methods, form_token.
std::string render_signin(const PageContext &ctx, const SigninPage &page);

struct CodePage {
    PortalPaths paths;
    std::string user;
    Method method = Method::totp;   // the method this page asks for
    MethodSet offered = 0;          // all methods the user may pick from
    std::string return_to;
    std::string methods;
    std::string form_token;
    std::string error;
    std::string notice;             // e.g. "We texted a code to ..."
    bool sms_sent = false;          // sms: a code is on its way
    bool call_pound = false;        // call: the pound key (#) approves
                                    // (Twilio); else any key (Duo)
    int remember_days = 0;          // > 0: offer "Don't ask again for N
                                    // days on this device" (twostep_remember)
    std::string webauthn;           // webauthn: options for webauthn.js
    std::string challenge;          // webauthn: the signed challenge token
};

// For totp, and sms once sent: "Enter code" box (field `code`, inputmode=numeric,
// autocomplete=one-time-code) posting to paths.verify with method,
// return_to, methods, form_token. For push and call, and sms before a code
// was sent: a button posting method and action=send. When `offered` has
// other methods, a "Sign in another way" list of links
// (paths.verify?method=...&return_to=...)
std::string render_code(const PageContext &ctx, const CodePage &page);

struct WaitPage {
    PortalPaths paths;
    std::string user;
    Method method = Method::push;   // push or call
    MethodSet offered = 0;
    std::string return_to;
    std::string methods;
    std::string number;             // number matching, if the provider
                                    // gave one
    bool call_pound = false;        // as CodePage::call_pound
    std::string notice;             // e.g. "wait.not_yet"
};

// "Approve the sign-in request on your phone" / "Answer the call and press
// the pound key (#)" (or any key, as the provider's call asks). Moves on by
// itself: without JavaScript a meta refresh to paths.wait?check=1, with
// JavaScript a script that long-polls paths.status and then goes there.
// "I've approved it" goes to paths.wait?check=1&approved=1, so the page can
// say that nothing has arrived yet.
std::string render_wait(const PageContext &ctx, const WaitPage &page);

struct ApprovePage {
    std::string action;   // e.g. "/.twostep/approve": where the forms post
    std::string token;    // the push's capability (approval.h)
    std::string user;
    std::string site;     // the site's name, or its host
    std::string address;  // the client address signing in
    std::string time;     // when the push was sent, "2026-12-02 04:10 UTC"
    std::string error;
    bool test = false;    // the test push of "Set up push notifications"
};

// The page a push's Approve button opens on the phone, without a session
// or JavaScript: who signs in to what, from where and when; a box for the
// number the sign-in screen shows (field `number`) and an Approve button,
// and a Deny button (action=deny); both forms post t=token to `action`.
std::string render_approve(const PageContext &ctx, const ApprovePage &page);

struct PushSetupPage {
    std::string setup;       // e.g. "/.twostep/push-setup": where the form
                             // posts and the waiting page polls
    std::string manage;      // security info, to go back to
    std::string user;
    std::string server;      // the ntfy server's URL
    std::string topic;       // the topic offered (a secret of the user's)
    std::string topic_url;   // ntfy::topic_url()
    std::string qr_svg;      // qr_svg() of ntfy::subscribe_link(): trusted
                             // markup, inserted as is
    std::string form_token;
    bool waiting = false;    // the test push is out
    std::string number;      // number matching, while waiting
    std::string error;
};

// "Set up push notifications": how to subscribe (the QR code, the server
// and the topic) and a "Send a test notification" button (action=send);
// once sent, the number to type on the phone, and like the waiting page
// it moves on by itself (setup?check=1; the script polls setup?status=1).
std::string render_push_setup(const PageContext &ctx,
                              const PushSetupPage &page);

struct EnrollPage {
    PortalPaths paths;
    std::string enroll;      // e.g. "/.twostep/enroll": where the form posts
    std::string user;
    std::string qr_svg;      // qr_svg() of the otpauth:// URI: trusted
                             // markup, inserted as is
    std::string secret;      // base32, shown for "can't scan?"
    std::string return_to;
    std::string methods;
    std::string form_token;
    std::string error;
    std::string cancel;      // replacing from security info: where
                             // "Cancel" goes back to, nothing changed
};

// "Set up your authenticator app": the QR code, the key as text in groups
// of four for typing, and an "Enter code" box (field `code`) posting to
// page.enroll with return_to, methods, form_token; button "Verify".
std::string render_enroll(const PageContext &ctx, const EnrollPage &page);

struct SecurityInfoPage {
    PortalPaths paths;
    std::string manage;          // e.g. "/.twostep/security-info"
    std::string enroll;          // e.g. "/.twostep/enroll"
    std::string user;
    std::string app;             // "Back to the application": a path
    bool totp = false;           // an authenticator app is set up
    std::string phone_masked;    // empty: no phone
    bool phone_usable = true;    // a provider can text and call it
    std::string push_setup;      // "Set up push notifications" posts here
                                 // (ntfy configured); empty: not offered
    bool push = false;           // an ntfy topic is set up
    std::string phone_typed;     // a refused number, kept in the field
    std::string phone_error;     // why, beside the field
    MethodSet available = 0;     // methods the user can sign in with
                                 // (Duo's: those its preauth confirmed)
    bool provider_unchecked = false;  // Duo did not answer: its methods
                                      // are not offered as the default
    std::optional<Method> default_method;
    std::string default_error;   // why a default was refused, beside it
    std::size_t recovery_left = 0;
    std::vector<std::string> new_recovery_codes;  // shown once, now
    std::string codes_token;     // posts back for the codes as a file
    std::string form_token;
    bool devices = false;        // twostep_remember is on: "Forget
                                 // remembered devices"
    std::string notice;          // what just changed
    std::string error;
    // A change asked before a step-up, shown again to confirm: the action
    // and fields its form posts, and what it does, in words.
    std::string confirm_action;
    std::string confirm_text;
    std::vector<std::pair<std::string, std::string>> confirm_fields;
    // Security keys and passkeys: offered when `webauthn` (the options for
    // webauthn.js) is set.
    struct Key {
        std::string id;          // base64url credential id
        std::string name;
        std::int64_t created = 0;
    };
    std::vector<Key> keys;
    std::string webauthn;
    std::string challenge;       // the signed registration challenge
};

// "Security info": the user's sign-in methods (never secrets), each with
// what can be done to it. Forms post to page.manage with form_token and
// action = "default" (+ method), "remove-totp", "phone" (+ phone, empty
// removes), "recovery" (new codes), "forget-devices" (when `devices`),
// "signout-everywhere"; "Add authenticator app" / "Replace" is
// a form posting action "totp" to page.manage. New recovery codes, when
// given, are listed once with a warning to store them.
std::string render_security_info(const PageContext &ctx,
                                 const SecurityInfoPage &page);

// A plain page: a heading, a paragraph, and optionally a link; each text a
// key ("msg.expired.title") or a text shown as given.
std::string render_message(const PageContext &ctx, std::string_view title,
                           std::string_view text,
                           std::string_view link_href = {},
                           std::string_view link_text = {});

// "Too many attempts": `text` (minutes_text() of msg.locked.text), and a
// "Sign out" button posting form_token (the session's sign-out token, or
// empty for a pending sign-in) to paths.logout, which ends this browser's
// sign-in: while the lock lasts every way in from here waits as well (a
// recovery code or a key is a guess like any other), so that and the
// time are what the page can offer.
std::string render_locked(const PageContext &ctx, const PortalPaths &paths,
                          std::string_view text,
                          std::string_view form_token);

// The signed-out confirmation with a "Sign in again" link.
std::string render_signed_out(const PageContext &ctx,
                              const PortalPaths &paths);

// "Sign out" for a signed-in user: a button posting form_token to
// paths.logout.
std::string render_signout(const PageContext &ctx, const PortalPaths &paths,
                           std::string_view user,
                           std::string_view form_token);

}  // namespace twostep
