"""Security info that tells the truth (issue 14): what a signed-in user
sees and may do on /.twostep/security-info.

- the default method is one the user can sign in with here now; another is
  a 400 that changes nothing, and a default that stopped working is not
  what sign-in opens on;
- "Back to the application" goes where the user came from (a return_to or
  the Referer of this site), never elsewhere, and survives the page's own
  forms;
- "Replace" (the authenticator app) has a Cancel that changes nothing;
- new recovery codes can be downloaded as a text file, right after they
  were made and only by the session that made them, and copied (a button
  its script shows; the codes are plain text);
- phone numbers are typed as people type them and saved as E.164; a refusal
  says why beside the field, keeps (escaped) what was typed, and saves
  nothing."""

import html
import re
import time
from urllib.parse import quote, urlsplit

import pytest

from harness import (VERIFY, Page, location, page_links, query,
                     remember_sensitive, snippet)
from test_selfservice import (ENROLL, SECURITY, SelfServiceSite,
                              assert_enroll_page, change, manage_token,
                              new_user, password_to_verify, path_and_query,
                              security_page, signed_in)

DEFAULT_UNUSABLE = ("That method can't be your default: it isn't set up for "
                    "your account, or this site can't use it.")
UNCHECKED = ("Push, call and text can't be checked right now, so they "
             "can't be chosen as your default. Try again later.")


def options(r):
    return re.findall(r'<option value="([a-z]*)"', r.text)


def back_link(r):
    links = [href for href, text in page_links(r)
             if text == "Back to the application"]
    assert len(links) == 1, snippet(r, 4000)
    return html.unescape(links[0])


def phone_field(r):
    """The phone <input>'s attributes, as the browser reads them."""
    m = re.search(r'<input [^>]*id="phone"[^>]*>', r.text)
    assert m, snippet(r, 6000)
    return {k: html.unescape(v) for k, v in
            re.findall(r'([a-z-]+)="([^"]*)"', m.group(0))}


# ------------------------------------------------------ the default method

def test_default_can_only_be_a_method_the_user_has(
        nginx_factory, workdir, app):
    user = new_user("default-usable")
    site = SelfServiceSite(nginx_factory, workdir, app, "defusable", [user])
    b = signed_in(site, user)

    # Recovery codes are a way back in, never the default.
    r = change(b, manage_token(security_page(b)), action="recovery")
    assert r.status_code == 200, snippet(r)

    r = security_page(b)
    assert options(r) == ["", "totp"], options(r)
    token = manage_token(r)
    before = site.store_bytes()
    for method in ("sms", "call", "push", "webauthn", "recovery",
                   "remembered"):
        r = change(b, token, action="default", method=method)
        assert r.status_code == 400, "%s: %s" % (method, snippet(r))
        assert Page(r).heading == "Security info"
        assert DEFAULT_UNUSABLE in Page(r).text, snippet(r, 4000)
        assert site.store_bytes() == before, method
    assert "default" not in site.user_entry(user.name)

    r = change(b, token, action="default", method="totp")
    assert r.status_code == 303, snippet(r)
    assert site.user_entry(user.name)["default"] == "totp"


def test_a_default_that_cannot_be_used_is_not_what_sign_in_opens_on(
        nginx_factory, workdir, app):
    """A store whose default is a text message (set by hand, or before the
    site's Twilio went away): sign-in opens on what the user has."""
    user = new_user("default-stale")
    site = SelfServiceSite(nginx_factory, workdir, app, "defstale", [user])
    store = site.store()
    store["users"][user.name].update(default="sms", phone="+4915112345678")
    site.users_file.write_text(__import__("json").dumps(store))
    time.sleep(1.1)  # the workers look at the file's time once a second

    b = site.browser()
    r = b.follow(password_to_verify(b, "/app/", user.name))
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Enter code", snippet(r)
    assert Page(r).form("/.twostep/verify").fields["method"] == "totp"
    assert "Text my phone" not in Page(r).text

    b = signed_in(site, user)
    r = security_page(b)
    # Listed as it is: not usable, so not offered, and not shown chosen.
    assert options(r) == ["", "totp"], options(r)
    assert '<option value="" selected>' in r.text


def method_select(r):
    """The default choice's <select>, its attributes as the browser reads
    them, and the text of the error tied to it (aria-describedby)."""
    m = re.search(r'<select [^>]*id="method"[^>]*>', r.text)
    assert m, snippet(r, 6000)
    attrs = {k: html.unescape(v) for k, v in
             re.findall(r'([a-z-]+)="([^"]*)"', m.group(0))}
    said = ""
    if "aria-describedby" in attrs:
        e = re.search(r'<p [^>]*id="%s"[^>]*>([^<]*)</p>'
                      % attrs["aria-describedby"], r.text)
        said = html.unescape(e.group(1)) if e else ""
    return attrs, said


def duo_info_site(nginx_factory, workdir, app, duo_sim, name, users):
    """Security info on a site whose push, call and text are Duo's (the
    simulator the e2e suite runs)."""
    return SelfServiceSite(nginx_factory, workdir, app, name, users,
                           server_extra=duo_sim.nginx_conf("2s"))


def test_duo_default_is_what_preauth_confirms(
        nginx_factory, workdir, app, duo_sim, duo_pool, duo_normal):
    """Duo's preauth says which of push, call and text the user's devices
    take: only those are offered as the default, or accepted; sign-in
    opens on the one chosen."""
    nopush, full = duo_pool.take("nopush"), duo_pool.take("auth")
    site = duo_info_site(nginx_factory, workdir, app, duo_sim, "defduo",
                         [nopush, full])

    b = signed_in(site, full)
    assert options(security_page(b)) == ["", "totp", "push", "call", "sms"]

    b = signed_in(site, nopush)
    r = security_page(b)
    assert options(r) == ["", "totp", "call", "sms"], options(r)
    assert "Push notification" not in Page(r).text, snippet(r, 6000)
    before = site.store_bytes()
    r = change(b, manage_token(r), action="default", method="push")
    assert r.status_code == 400, snippet(r)
    attrs, said = method_select(r)
    assert attrs.get("aria-invalid") == "true" and said == DEFAULT_UNUSABLE, \
        (attrs, snippet(r, 6000))
    assert site.store_bytes() == before

    r = change(b, manage_token(r), action="default", method="call")
    assert r.status_code == 303, snippet(r)
    assert site.user_entry(nopush.name)["default"] == "call"
    r = b.follow(r)
    assert '<option value="call" selected>' in r.text, snippet(r, 6000)

    # Sign-in honours it.
    other = site.browser()
    r = other.follow(password_to_verify(other, "/app/", nopush.name))
    assert r.status_code == 200, snippet(r)
    assert Page(r).form(VERIFY).fields["method"] == "call", snippet(r, 4000)


@pytest.mark.parametrize("fault", ["http500", "slow"])
def test_duo_default_fails_closed_when_preauth_fails(
        nginx_factory, workdir, app, duo_sim, duo_pool, duo_normal, fault):
    """Duo answering an error, or too late (twostep_duo_timeout): none of
    its methods is offered or accepted as the default, and the page says
    why; the app code still is."""
    user = duo_pool.take("auth")
    site = duo_info_site(nginx_factory, workdir, app, duo_sim,
                         "defduo" + fault, [user])
    b = signed_in(site, user)
    token = manage_token(security_page(b))
    mark = site.nginx.log_size()

    duo_sim.set_mode(fault)
    r = security_page(b)
    assert options(r) == ["", "totp"], options(r)
    assert UNCHECKED in Page(r).text, snippet(r, 6000)
    before = site.store_bytes()
    r = change(b, token, action="default", method="push")
    assert r.status_code == 400, snippet(r)
    attrs, said = method_select(r)
    assert attrs.get("aria-invalid") == "true" and said == UNCHECKED, \
        (attrs, snippet(r, 6000))
    assert site.store_bytes() == before
    assert "preauth for security info failed" in site.nginx.log_text(mark)

    r = change(b, token, action="default", method="totp")
    assert r.status_code == 303, snippet(r)
    assert site.user_entry(user.name)["default"] == "totp"

    # Duo back: push can be chosen again.
    duo_sim.set_mode("normal")
    r = security_page(b)
    assert "push" in options(r) and UNCHECKED not in Page(r).text
    r = change(b, token, action="default", method="push")
    assert r.status_code == 303, snippet(r)
    assert site.user_entry(user.name)["default"] == "push"


def test_a_key_the_browser_did_not_make_is_refused_once(
        nginx_factory, workdir, app):
    """"Add a security key" posted without what the authenticator makes
    (no script, or a forged form): one 400 page that says so, nothing
    written, and no second answer ("header already sent") after it."""
    user = new_user("key-unverified")
    site = SelfServiceSite(nginx_factory, workdir, app, "keyunverified",
                           [user])
    b = signed_in(site, user)
    before = site.store_bytes()
    mark = site.nginx.log_size()
    r = change(b, manage_token(security_page(b)), action="add-key",
               name="Laptop")
    assert r.status_code == 400, snippet(r)
    assert Page(r).heading == "Security info"
    time.sleep(0.5)
    log = site.nginx.log_text(mark)
    assert "header already sent" not in log and "refused" not in log, log
    assert site.store_bytes() == before


# ------------------------------------------- back to the application

def test_back_to_the_application(nginx_factory, workdir, app):
    user = new_user("back-link")
    site = SelfServiceSite(nginx_factory, workdir, app, "back", [user])
    b = signed_in(site, user)

    # Without a hint: the site's root.
    assert back_link(security_page(b)) == "/"

    # A return_to, as an application links it; the forms keep it, and so
    # does the answer to a change.
    r = b.get(SECURITY + "?return_to=" + quote("/app/reports?y=2026", ""))
    assert r.status_code == 200, snippet(r)
    assert back_link(r) == "/app/reports?y=2026"
    actions = {html.unescape(f.action) for f in Page(r).forms}
    assert actions == {SECURITY + "?return_to=%2Fapp%2Freports%3Fy%3D2026"}, \
        actions
    r = b.post(SECURITY + "?return_to=" + quote("/app/reports?y=2026", ""),
               {"action": "default", "method": "totp",
                "form_token": manage_token(security_page(b))})
    assert r.status_code == 303, snippet(r)
    loc = location(r)
    assert loc.path == SECURITY
    assert query(loc) == {"return_to": "/app/reports?y=2026",
                          "done": "default"}, loc
    r = b.follow(r)
    assert "Your default sign-in method was saved." in Page(r).text
    assert back_link(r) == "/app/reports?y=2026"

    # The page of this site the browser came from (its Referer).
    r = b.get(SECURITY, headers={"Referer": site.url + "/app/inbox?n=3"})
    assert back_link(r) == "/app/inbox?n=3"

    # Never another site, and never the sign-in pages themselves.
    for target, referer in (
            ("//evil.example/", None), ("https://evil.example/", None),
            ("/\\evil.example", None), ("/.twostep/signin", None),
            (None, "https://evil.example/app/"),
            (None, site.url.replace("127.0.0.1", "localhost") + "/app/"),
            (None, site.url + "//evil.example/"),
            (None, site.url + "/.twostep/security-info")):
        path = SECURITY + ("?return_to=" + quote(target, "")
                           if target else "")
        r = b.get(path, headers={"Referer": referer} if referer else {})
        assert r.status_code == 200, snippet(r)
        assert back_link(r) == "/", (target, referer)


# ---------------------------------------------------- Cancel on Replace

def test_cancel_on_replace_changes_nothing(nginx_factory, workdir, app):
    user = new_user("replace-cancel")
    site = SelfServiceSite(nginx_factory, workdir, app, "cancel", [user])
    b = signed_in(site, user)
    before = site.store_bytes()

    r = b.get(SECURITY + "?return_to=/app/x")
    r = b.post(SECURITY + "?return_to=/app/x",
               {"action": "totp", "form_token": manage_token(r)})
    assert r.status_code == 303, snippet(r)
    assert location(r).path == ENROLL
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    assert_enroll_page(r)
    cancel = [href for href, text in page_links(r) if text == "Cancel"]
    assert len(cancel) == 1, snippet(r, 4000)
    target = urlsplit(html.unescape(cancel[0]))
    assert target.path == SECURITY and query(target) == {
        "return_to": "/app/x"}, cancel

    r = b.get(html.unescape(cancel[0]))
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Security info"
    assert back_link(r) == "/app/x"
    assert site.store_bytes() == before

    # The app the user has still signs them in.
    other = site.browser()
    r = other.sign_in("/app/", user)
    assert path_and_query(location(r)) == "/app/"

    # A first set-up (no app yet) has nothing to go back to: no Cancel.
    assert "Cancel" not in [t for _, t in page_links(
        b.get(SECURITY))]


# ------------------------------------------------------- recovery codes

def new_codes(b):
    r = change(b, manage_token(security_page(b)), action="recovery")
    assert r.status_code == 200, snippet(r)
    codes = re.findall(r"<li><code>([^<]+)</code></li>", r.text)
    for c in codes:
        remember_sensitive("code", c)
    assert len(codes) == 10, codes
    return r, codes


def test_new_recovery_codes_download_as_a_text_file(
        nginx_factory, workdir, app):
    user = new_user("codes-file")
    site = SelfServiceSite(nginx_factory, workdir, app, "codesfile", [user])
    b = signed_in(site, user)
    r, codes = new_codes(b)

    # Copy: a button the script shows (hidden without it), codes as text.
    assert re.search(r'<button type="button" class="secondary" '
                     r'id="copy-codes" hidden>Copy codes</button>', r.text)
    assert "navigator.clipboard.writeText" in r.text
    form = [f for f in Page(r).forms
            if f.fields.get("action") == "download-codes"]
    assert len(form) == 1, Page(r).forms
    fields = form[0].fields
    remember_sensitive("cookie", fields["codes"])

    got = b.post(SECURITY, fields)
    assert got.status_code == 200, snippet(got)
    assert got.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert got.headers["Content-Disposition"] == \
        'attachment; filename="recovery-codes.txt"'
    assert got.headers["Cache-Control"] == "no-store"
    lines = got.text.split("\r\n")
    assert lines[0] == ("Recovery codes for %s at 127.0.0.1. Each code "
                        "works once; keep them somewhere safe." % user.name)
    assert lines[2:] == codes + [""], lines

    # The same session can download it again while the page is fresh; no
    # other session can, however it got the form.
    assert b.post(SECURITY, fields).status_code == 200
    other = signed_in(site, user)
    refused = other.post(SECURITY, dict(fields, form_token=manage_token(
        security_page(other))))
    assert refused.status_code == 400, snippet(refused)
    assert "These codes can no longer be downloaded" in Page(refused).text
    assert not any(c in refused.text for c in codes)

    # A token changed by hand is refused.
    forged = fields["codes"][:-2] + ("AA" if not fields["codes"].endswith(
        "AA") else "BB")
    refused = b.post(SECURITY, dict(fields, codes=forged))
    assert refused.status_code == 400, snippet(refused)
    assert not any(c in refused.text for c in codes)

    # The page shown later has no codes and nothing to download.
    r = security_page(b)
    assert not any(c in r.text for c in codes)
    assert "download-codes" not in r.text and "copy-codes" not in r.text


# --------------------------------------------------------- phone numbers

def test_phone_numbers_as_people_type_them(nginx_factory, workdir, app):
    user = new_user("phone-typed")
    site = SelfServiceSite(nginx_factory, workdir, app, "phonetyped", [user])
    b = signed_in(site, user)
    token = manage_token(security_page(b))

    for typed, saved in (("+49 (151) 123-456.78", "+4915112345678"),
                         ("0044 20 7946 0958", "+442079460958"),
                         ("+1 555.000.1111", "+15550001111")):
        r = change(b, token, action="phone", phone=typed)
        assert r.status_code == 303, "%s: %s" % (typed, snippet(r))
        assert site.user_entry(user.name)["phone"] == saved

    before = site.store_bytes()
    for typed, why in (
            ("+49 151 CALL-ME", "A phone number has only digits, spaces, "
                                "dashes, dots and parentheses: remove the "
                                "letters."),
            ('<b>"0151"</b>', "A phone number has only digits"),
            ("(0151) 123 4567", "Start with + and the country code"),
            ("+1 555 01", "That number is too short"),
            ("+44 20 7946 0958 12345", "That number is too long"),
            ("+31612345678;", "That phone number was not saved")):
        r = change(b, token, action="phone", phone=typed)
        assert r.status_code == 400, "%s: %s" % (typed, snippet(r))
        assert site.store_bytes() == before, typed
        field = phone_field(r)
        # Beside the field, tied to it, with what was typed kept.
        assert field["aria-invalid"] == "true", field
        assert field["aria-describedby"].split() == ["phone-error",
                                                     "phone-help"], field
        assert field["value"] == typed, field
        m = re.search(r'<p class="alert" id="phone-error" role="alert">'
                      r'([^<]*)</p>', r.text)
        assert m and html.unescape(m.group(1)).startswith(why), \
            "%s: %s" % (typed, snippet(r, 6000))
        # The error sits right above the field, not at the page's top.
        assert r.text.index('id="phone-error"') < r.text.index('id="phone"')
        assert r.text.index('id="phone-help"') < r.text.index(
            'id="phone-error"')
        assert "<b>" not in r.text

    # Without an error the field is empty and carries no error state.
    field = phone_field(security_page(b))
    assert "aria-invalid" not in field and field["value"] == ""
    assert field["aria-describedby"] == "phone-help"


# ----------------------------- a change that needs a fresh second step

def stale_browser(site, user, age=310):
    """A browser whose session's second step is `age` seconds old (signed
    with the site's key, as test_selfservice's step-up test does)."""
    from test_selfservice import credential_tag, session_cookie
    b = site.browser()
    b.set_cookie("twostep_session", session_cookie(
        site, user.name, int(time.time()) - age,
        credential_tag(site.user_entry(user.name))))
    return b


def confirm_box(r):
    """The kept change's form on security info, or None."""
    forms = [f for f in Page(r).forms
             if f.fields.get("action") and 'id="confirm-heading"' in r.text
             and r.text.index('id="confirm-heading"')
             < r.text.index('name="action" value="%s"'
                            % f.fields["action"])]
    return forms[0] if forms else None


def test_a_change_asked_with_a_stale_step_is_kept_for_after_the_step_up(
        nginx_factory, workdir, app):
    """OWASP ASVS 4.0.3 V3.7.1: the change waits for a fresh second step,
    the code page says why it is asked, and afterwards security info shows
    the change again to confirm; nothing is saved before that."""
    user = new_user("kept-change")
    site = SelfServiceSite(nginx_factory, workdir, app, "kept", [user])
    b = stale_browser(site, user)
    before = site.store_bytes()

    r = b.get(SECURITY + "?return_to=/app/mail")
    r = b.post(SECURITY + "?return_to=/app/mail",
               {"action": "phone", "phone": "+49 (151) 123-456.78",
                "form_token": manage_token(r)})
    assert r.status_code == 303, snippet(r)
    assert location(r).path == "/.twostep/signin"
    kept = [c for c in b.http.cookies if c.name == "twostep_change"]
    assert len(kept) == 1, list(b.http.cookies)
    remember_sensitive("cookie", kept[0].value)
    assert site.store_bytes() == before

    # The second step says why it is asked.
    r = b.follow(b.follow(r))
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Enter code"
    assert "To change your security info, confirm it's you." in \
        Page(r).text, snippet(r, 4000)
    r = b.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == \
        SECURITY + "?return_to=%2Fapp%2Fmail"
    assert site.store_bytes() == before

    # Back on security info: the change, to confirm; still nothing saved.
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    form = confirm_box(r)
    assert form is not None, snippet(r, 6000)
    assert "Confirm your change" in Page(r).text
    assert "Save +49 (151) 123-456.78 as your phone number." in Page(r).text
    assert form.fields["action"] == "phone"
    assert form.fields["phone"] == "+49 (151) 123-456.78"
    assert site.store_bytes() == before
    # Once: the cookie is cleared and a reload shows no box.
    assert not [c for c in b.http.cookies if c.name == "twostep_change"]
    r2 = security_page(b)
    assert confirm_box(r2) is None and "Confirm your change" not in r2.text

    r = b.post(SECURITY + "?return_to=/app/mail", form.fields)
    assert r.status_code == 303, snippet(r)
    assert site.user_entry(user.name)["phone"] == "+4915112345678"
    assert back_link(b.follow(r)) == "/app/mail"


def test_a_kept_change_needs_its_own_session_and_a_new_step(
        nginx_factory, workdir, app):
    """The kept change opens nothing by itself: not in another session of
    the user, not without the step-up, not after it expired."""
    user = new_user("kept-bound")
    site = SelfServiceSite(nginx_factory, workdir, app, "keptbound", [user])
    b = stale_browser(site, user)
    r = b.post(SECURITY, {"action": "default", "method": "totp",
                          "form_token": manage_token(security_page(b))})
    assert r.status_code == 303, snippet(r)
    kept = [c for c in b.http.cookies if c.name == "twostep_change"][0]
    remember_sensitive("cookie", kept.value)

    # Without the step-up (still stale): no box, and the cookie is used up.
    r = security_page(b)
    assert confirm_box(r) is None, snippet(r, 6000)

    # Carried to another session of the same user (a fresh sign-in): no
    # box, since it belongs to the sign-in it was asked in.
    other = signed_in(site, user)
    other.set_cookie("twostep_change", kept.value)
    r = security_page(other)
    assert confirm_box(r) is None, snippet(r, 6000)
    assert "default" not in site.user_entry(user.name)

    # A changed token: nothing either.
    other.set_cookie("twostep_change", kept.value[:-3] + "AAA")
    assert confirm_box(security_page(other)) is None
