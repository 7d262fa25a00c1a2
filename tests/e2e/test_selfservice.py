"""Security info, as a user sees it (twostep_enroll on): setting up the
authenticator app at the first sign-in, and /.twostep/security-info for
signed-in users (recovery codes, phone, default method, replacing the app),
with the rules that keep it safe: a password alone never adds or replaces a
second step, anonymous visitors and forged forms change nothing, a stale
second step must be renewed first, and concurrent changes from two workers
never lose one another.

With twostep_enroll on the workers (user nobody: the master runs as root
without a `user` directive) write the user store, so each site here keeps
it in a directory of its own owned by nobody:nogroup (0770, file 0660), as
the README tells administrators to do for www-data.

The step-up test does not wait out the module's fixed 300 s freshness
bound: the browser holds a session cookie signed with the site's own key
(the test is its administrator) whose second step is 310 s old, next to one
made the same way but fresh, so only the age differs."""

import base64
import grp
import hashlib
import hmac
import html
import json
import os
import pwd
import re
import tempfile
import time
from pathlib import Path
from urllib.parse import urlsplit

import requests

from conftest import POOL_PASSWORD
from harness import (PORTAL, SIGNIN, VERIFY, WORKER_HEADER,
                     WORKER_HEADER_CONF, Browser, Page, User, free_port,
                     hammer, location, page_links, password_hash, proxy_to,
                     query, remember_sensitive, set_cookies, snippet,
                     totp_code, write_key, write_users)

ENROLL = PORTAL + "enroll"
SECURITY = PORTAL + "security-info"

ENROLL_HEADING = "Set up your authenticator app"
NOT_SET_UP = "Two-step verification is not set up"
SETUP_REFUSED = "Set-up is not available"
EXPIRED = "This page has expired"
WRONG_CODE = "That code didn't work"
ONLY_APP = ("Your authenticator app is your only way to sign in: set up "
            "another before you remove it.")

# Not the page's example number (+15551234567), which is on every page.
PHONE = "+4915112345678"


def masked(phone):
    """How security-info shows a number: the first two and last two
    characters."""
    return phone[:2] + "*" * (len(phone) - 4) + phone[-2:]


# ------------------------------------------------------------- the site

class SelfServiceSite:
    """An nginx of its own with twostep_enroll on (unless enroll=False):
    one server, `/` protected and proxied to the legacy app, every response
    naming its worker (X-Worker), `listen ... reuseport` so that fresh
    connections spread over the workers. The user store lives in
    store/users.json, directory and file owned by nobody:nogroup."""

    def __init__(self, factory, workdir, app, name, users, extra=None,
                 enroll=True, workers=1, server_extra=""):
        self.dir = Path(tempfile.mkdtemp(prefix=name + "-site-",
                                         dir=workdir))
        self.dir.chmod(0o755)
        nobody = pwd.getpwnam("nobody").pw_uid
        nogroup = grp.getgrnam("nogroup").gr_gid
        store = self.dir / "store"
        store.mkdir()
        os.chown(store, nobody, nogroup)
        store.chmod(0o770)
        self.users_file = write_users(store / "users.json", users,
                                      extra=extra, mode=0o660)
        os.chown(self.users_file, nobody, nogroup)
        self.key_file = write_key(self.dir / "cookie.key")
        self.port = free_port()
        body = """
    twostep_users {users};
    {enroll}
    server {{
        listen 127.0.0.1:{port} reuseport;
        twostep_cookie_key {key};
        {worker_header}
        {server_extra}
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(users=self.users_file, port=self.port, key=self.key_file,
           enroll="twostep_enroll on;" if enroll else "",
           worker_header=WORKER_HEADER_CONF, server_extra=server_extra,
           proxy=proxy_to(app.port))
        self.nginx = factory(name, body, [self.port], workers=workers)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def browser(self, **kw):
        return Browser(self.url, **kw)

    def store_bytes(self):
        return self.users_file.read_bytes()

    def store(self):
        return json.loads(self.users_file.read_text())

    def user_entry(self, name):
        return self.store()["users"][name]


def new_user(name, secret=None):
    return User(name, POOL_PASSWORD, secret=secret,
                pw_hash=password_hash(POOL_PASSWORD))


def password_only(name):
    """users.json "extra" for a user with a password and nothing else."""
    return {name: {"password": password_hash(POOL_PASSWORD)}}


def path_and_query(split):
    return split.path + ("?" + split.query if split.query else "")


def message(r):
    """The <h1> and text of a portal page."""
    page = Page(r)
    return page.heading, page.text


def password_to_verify(b, target, name):
    """GET target, the sign-in page, the password: returns the 303 of the
    password step (to the second step)."""
    r = b.get(target)
    assert r.status_code == 302, snippet(r)
    assert location(r).path == SIGNIN, r.headers["Location"]
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    r = b.submit_password(r, name, POOL_PASSWORD)
    assert r.status_code == 303, "password step: " + snippet(r)
    assert location(r).path == VERIFY, r.headers["Location"]
    return r


def enroll_key(r):
    """The key of an enroll page, from <code class="key">, checked to be
    shown in groups of four."""
    m = re.search(r'<code class="key">([^<]*)</code>', r.text)
    assert m, "no key on the page: " + snippet(r, 3000)
    groups = m.group(1).split(" ")
    assert all(len(g) == 4 for g in groups[:-1]), m.group(1)
    assert 1 <= len(groups[-1]) <= 4, m.group(1)
    key = "".join(groups)
    # 160 bits (RFC 4226 section 4): 32 base32 characters.
    assert re.fullmatch(r"[A-Z2-7]{32}", key), key
    remember_sensitive("secret", key)
    return key


def assert_enroll_page(r):
    page = Page(r)
    assert page.heading == ENROLL_HEADING, snippet(r)
    assert page.title == ENROLL_HEADING
    # The QR code inline, as SVG (no image from elsewhere).
    m = re.search(r'<div class="qr">(<svg .*?</svg>)</div>', r.text, re.S)
    assert m, "no inline <svg> QR code: " + snippet(r, 3000)
    assert re.search(r'<path [^>]*d="M\d', m.group(1)), m.group(1)[:300]
    assert "Can't scan the code?" in page.text
    form = page.form(ENROLL)
    assert "code" in [n for n, _, _ in form.inputs]
    return enroll_key(r)


def alert_text(r):
    """The text of a page's error box (role="alert"), or None."""
    m = re.search(r'<p class="alert"[^>]*>([^<]*)</p>', r.text)
    return html.unescape(m.group(1)) if m else None


def wrong_code_for(secret):
    """A 6-digit code that no step near now has for `secret`."""
    near = {totp_code(secret, time.time() + s * 30) for s in range(-2, 3)}
    return next(c for c in ("000000", "999999", "135791") if c not in near)


def enroll_code(key, after_step=None):
    """The code an app set up with `key` shows now; if a code of this step
    or later was already used for the user, the next step's (the server
    keeps one step of drift, and refuses a step used before)."""
    step = int(time.time()) // 30
    if after_step is not None and step <= after_step:
        step = after_step + 1
    return step, totp_code(key, step * 30)


def recovery_link(r):
    """The "Use a recovery code" link of a second-step page."""
    links = [href for href, text in page_links(r)
             if text == "Use a recovery code"]
    assert len(links) == 1, snippet(r, 4000)
    assert query(urlsplit(links[0]))["method"] == "recovery", links[0]
    return links[0]


def security_page(b):
    r = b.get(SECURITY)
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Security info", snippet(r)
    return r


def manage_token(r):
    """The form_token of a security-info page's forms (all the same)."""
    tokens = {f.fields.get("form_token") for f in Page(r).forms
              if urlsplit(html.unescape(f.action)).path == SECURITY}
    assert len(tokens) == 1 and None not in tokens, tokens
    return tokens.pop()


def change(b, token, **fields):
    """POST a change to security-info as its forms do."""
    return b.post(SECURITY, dict(fields, form_token=token))


def signed_in(site, user, target="/app/"):
    """A browser signed in as `user` (password, then a fresh code)."""
    b = site.browser()
    r = b.sign_in(target, user)
    assert path_and_query(location(r)) == target
    return b


# ------------------------------------------ 1, 2: first-time enrollment

def test_first_sign_in_sets_up_the_app_and_it_persists(
        nginx_factory, workdir, app):
    name = "enroll-first"
    site = SelfServiceSite(nginx_factory, workdir, app, "enroll-first", [],
                           extra=password_only(name))
    stat_before = site.users_file.stat()
    b = site.browser()
    target = "/app/first?x=1&y=two"

    r = password_to_verify(b, target, name)
    # No second step yet: the second-step page sends the user to set one up.
    r = b.follow(r)
    assert r.status_code == 303, snippet(r)
    loc = location(r)
    assert loc.path == ENROLL, r.headers["Location"]
    assert query(loc)["return_to"] == target
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    key = assert_enroll_page(r)
    assert "Signed in as %s" % name in Page(r).text

    # Not signed in yet: the protected page still asks for sign-in.
    probe = b.get("/app/probe")
    assert probe.status_code == 302 and location(probe).path == SIGNIN

    step, code = enroll_code(key)
    form = Page(r).form(ENROLL)
    r = b.post(ENROLL, dict(form.fields, code=code))
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == target
    assert "twostep_session" in set_cookies(r), r.headers
    seen = b.app_view(target)
    assert seen["headers"]["X-Remote-User"] == name
    assert seen["headers"]["X-Twostep-Method"] == "totp"

    entry = site.user_entry(name)
    assert entry["totp"] == key
    assert entry["password"] == password_hash(POOL_PASSWORD)
    # The writer keeps the file's owner, group and mode.
    st = site.users_file.stat()
    assert (st.st_uid, st.st_gid) == (stat_before.st_uid,
                                      stat_before.st_gid)
    assert st.st_mode & 0o7777 == 0o660

    # A restart (stop, start: the master reads the store anew) keeps it.
    site.nginx.restart()
    user = new_user(name, secret=key)
    user.last_step = step          # that code is used up
    b2 = site.browser()
    r = b2.sign_in(target, user)
    assert path_and_query(location(r)) == target
    assert b2.app_view(target)["headers"]["X-Remote-User"] == name


def test_wrong_confirmation_code_saves_nothing(nginx_factory, workdir, app):
    name = "enroll-wrong"
    site = SelfServiceSite(nginx_factory, workdir, app, "enroll-wrong", [],
                           extra=password_only(name))
    before = site.store_bytes()
    b = site.browser()
    r = b.follow(b.follow(password_to_verify(b, "/app/", name)))
    assert r.status_code == 200, snippet(r)
    key = assert_enroll_page(r)

    form = Page(r).form(ENROLL)
    r = b.post(ENROLL, dict(form.fields, code=wrong_code_for(key)))
    assert r.status_code == 403, snippet(r)
    # The same set-up page again, with the same key and an error.
    assert assert_enroll_page(r) == key
    assert WRONG_CODE in (alert_text(r) or ""), snippet(r, 3000)
    assert "twostep_session" not in set_cookies(r)

    assert site.store_bytes() == before
    probe = b.get("/app/")
    assert probe.status_code == 302 and location(probe).path == SIGNIN


# ----------------------------------------- 3: twostep_enroll off (default)

def test_without_enroll_nothing_is_offered(nginx_factory, workdir, app):
    name = "noenroll-pw"
    haver = new_user("noenroll-totp")
    site = SelfServiceSite(nginx_factory, workdir, app, "noenroll", [haver],
                           extra=password_only(name), enroll=False)
    before = site.store_bytes()
    b = site.browser()

    r = b.follow(password_to_verify(b, "/app/", name))
    assert r.status_code == 403, snippet(r)
    heading, text = message(r)
    assert heading == NOT_SET_UP, snippet(r)
    assert "Ask your administrator" in text
    assert "<svg" not in r.text and 'class="key"' not in r.text

    # The set-up page refuses, even right after the password.
    r = b.get(ENROLL + "?return_to=/app/")
    assert r.status_code == 403, snippet(r)
    assert message(r)[0] == SETUP_REFUSED
    assert "<svg" not in r.text and 'class="key"' not in r.text

    # No security-info page at all, for anyone.
    r = b.get(SECURITY)
    assert r.status_code == 404, snippet(r)
    assert "Security info" not in r.text
    signed = signed_in(site, haver)
    r = signed.get(SECURITY)
    assert r.status_code == 404, snippet(r)
    assert "Security info" not in r.text
    r = signed.post(SECURITY, {"action": "phone", "phone": PHONE})
    assert r.status_code == 404, snippet(r)

    assert site.store_bytes() == before


# ------------------ 4: a password alone never replaces a second step

def test_password_alone_cannot_reach_enrollment(nginx_factory, workdir, app):
    haver = new_user("has-totp")
    recovery_only = "has-recovery"
    code = "abcde-fghij-klmno-pqrst-uvwxy"
    extra = {recovery_only: {
        "password": password_hash(POOL_PASSWORD),
        "recovery": [hashlib.sha256(b"abcdefghijklmnopqrstuvwxy")
                     .hexdigest()]}}
    remember_sensitive("code", code)
    site = SelfServiceSite(nginx_factory, workdir, app, "noreplace",
                           [haver], extra=extra)
    before = site.store_bytes()

    for name in (haver.name, recovery_only):
        b = site.browser()
        r = b.follow(password_to_verify(b, "/app/", name))
        # The second step the user has, not a set-up page.
        assert r.status_code == 200, snippet(r)
        assert Page(r).heading == "Enter code", snippet(r)
        verify_form = Page(r).form(VERIFY)

        r = b.get(ENROLL + "?return_to=/app/")
        assert r.status_code == 403, "%s: %s" % (name, snippet(r))
        assert message(r)[0] == SETUP_REFUSED
        assert "<svg" not in r.text and 'class="key"' not in r.text

        # Nor by posting a code with this pending sign-in's own token.
        r = b.post(ENROLL, {"code": "123456", "return_to": "/app/",
                            "methods": verify_form.fields["methods"],
                            "form_token": verify_form.fields["form_token"]})
        assert r.status_code == 403, "%s: %s" % (name, snippet(r))
        assert message(r)[0] == SETUP_REFUSED
        assert "twostep_session" not in set_cookies(r)

        # And no security info with only the password.
        r = b.get(SECURITY)
        assert r.status_code == 303, snippet(r)
        assert location(r).path == SIGNIN
        assert "Security info" not in r.text

    assert site.store_bytes() == before


# ------------------------------------- 5: anonymous visitors and forgeries

def test_security_info_needs_a_session_and_its_own_form(
        nginx_factory, workdir, app):
    alice, bob = new_user("si-alice"), new_user("si-bob")
    site = SelfServiceSite(nginx_factory, workdir, app, "anon",
                           [alice, bob])
    before = site.store_bytes()

    # Anonymous: sent to sign in, and back here afterwards.
    anon = site.browser()
    r = anon.get(SECURITY)
    assert r.status_code == 303, snippet(r)
    loc = location(r)
    assert loc.path == SIGNIN
    assert query(loc)["return_to"] == SECURITY
    assert "Security info" not in r.text
    r = anon.follow(r)
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Sign in"
    assert "Security info" not in r.text

    # alice signs in through that redirect and lands on her page.
    r = anon.submit_password(r, alice.name, alice.password)
    assert r.status_code == 303, snippet(r)
    r = anon.follow(r)
    assert r.status_code == 200, snippet(r)
    r = anon.submit_code(r, alice.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == SECURITY
    r = anon.follow(r)
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Security info"
    assert "Signed in as %s" % alice.name in Page(r).text
    alice_token = manage_token(r)

    # A POST without a session (even with a real token of alice's).
    for data in ({"action": "phone", "phone": PHONE},
                 {"action": "phone", "phone": PHONE,
                  "form_token": alice_token},
                 {"action": "recovery", "form_token": alice_token}):
        r = site.browser().post(SECURITY, data)
        assert r.status_code == 303, snippet(r)
        assert location(r).path == SIGNIN
        assert "Security info" not in r.text
        assert "<code>" not in r.text

    # Signed in, but the token is missing, made up, or another session's.
    bob_browser = signed_in(site, bob)
    bob_token = manage_token(security_page(bob_browser))
    forged = base64.urlsafe_b64encode(os.urandom(32)).decode().rstrip("=")
    for token in (None, "", forged, bob_token):
        data = {"action": "phone", "phone": PHONE}
        if token is not None:
            data["form_token"] = token
        r = anon.post(SECURITY, data)
        assert r.status_code == 403, "token %r: %s" % (token, snippet(r))
        assert message(r)[0] == EXPIRED
        r = anon.post(SECURITY, dict(data, action="recovery"))
        assert r.status_code == 403, "token %r: %s" % (token, snippet(r))
        assert "<code>" not in r.text

    assert site.store_bytes() == before
    # alice's own token still works: the refusals were about the token.
    r = change(anon, alice_token, action="phone", phone=PHONE)
    assert r.status_code == 303, snippet(r)
    assert site.user_entry(alice.name)["phone"] == PHONE
    assert "phone" not in site.user_entry(bob.name)


def test_security_info_post_from_another_origin_is_refused(
        nginx_factory, workdir, app):
    """README, Security notes: posts with a foreign Origin are refused
    (ASVS 4.2.2), as the sign-in, code, set-up and sign-out forms are --
    even when the form carries a valid token."""
    alice = new_user("origin-alice")
    site = SelfServiceSite(nginx_factory, workdir, app, "origin", [alice])
    b = signed_in(site, alice)
    token = manage_token(security_page(b))
    before = site.store_bytes()
    for origin in ("http://evil.example", "null"):
        r = b.post(SECURITY, {"action": "phone", "phone": PHONE,
                              "form_token": token},
                   headers={"Origin": origin})
        assert r.status_code == 403, "Origin %s: %s" % (origin, snippet(r))
        assert message(r)[0] == EXPIRED
    assert site.store_bytes() == before
    # The same form from the site itself goes through.
    r = b.post(SECURITY, {"action": "phone", "phone": PHONE,
                          "form_token": token},
               headers={"Origin": site.url})
    assert r.status_code == 303, snippet(r)
    assert site.user_entry(alice.name)["phone"] == PHONE


# ---------------------------------------------- 6: managing security info

def test_signed_in_user_manages_security_info(nginx_factory, workdir, app):
    user = new_user("manage")
    site = SelfServiceSite(nginx_factory, workdir, app, "manage", [user])
    old_key = user.secret
    b = signed_in(site, user)

    # The page lists methods, never a secret.
    r = security_page(b)
    page = Page(r)
    assert re.search(r'<h3>Authenticator app</h3>\s*<p class="state">Set up'
                     r'</p>', r.text), snippet(r, 6000)
    assert re.search(r'<h3>Phone</h3>\s*<p class="state">Not set up</p>',
                     r.text), snippet(r, 6000)
    assert "0 left" in page.text
    assert old_key not in r.text
    assert [f for f in page.forms if f.fields.get("action") == "totp"]
    token = manage_token(r)

    # New recovery codes: shown once.
    r = change(b, token, action="recovery")
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert "Your new recovery codes" in page.text
    codes = re.findall(r"<li><code>([^<]+)</code></li>", r.text)
    for c in codes:
        remember_sensitive("code", c)
    assert len(codes) == 10 and len(set(codes)) == 10, codes
    assert all(re.fullmatch(r"[a-z2-7]{5}(-[a-z2-7]{5})+", c)
               for c in codes), codes
    hashes = site.user_entry(user.name)["recovery"]
    assert len(hashes) == 10
    for h in hashes:
        assert h not in r.text
    assert old_key not in r.text
    assert "10 left" in page.text

    r = security_page(b)
    assert "Your new recovery codes" not in r.text
    assert not any(c in r.text for c in codes)
    assert not any(h in r.text for h in hashes)
    assert "10 left" in Page(r).text

    # A phone: masked on the page, in full in the file.
    r = change(b, token, action="phone", phone=PHONE)
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == SECURITY + "?done=phone"
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    assert "Your phone number was saved." in Page(r).text
    # No Twilio or Duo here: the phone is no way to sign in yet.
    assert "Not usable yet: this site cannot send texts" in Page(r).text
    assert "Text my phone" not in Page(r).text
    assert masked(PHONE) in r.text
    assert PHONE not in r.text and PHONE[1:] not in r.text
    assert site.user_entry(user.name)["phone"] == PHONE

    # A number that is not E.164 is refused and changes nothing.
    before = site.store_bytes()
    r = change(b, token, action="phone", phone="555-1234")
    assert r.status_code == 400, snippet(r)
    # A number without its country code is told so (beside the field).
    assert "Start with + and the country code" in Page(r).text
    assert site.store_bytes() == before

    # "Remove" (an empty number) takes it out of the file.
    r = change(b, token, action="phone", phone="")
    assert r.status_code == 303, snippet(r)
    assert "phone" not in site.user_entry(user.name)
    r = b.follow(r)
    assert masked(PHONE) not in r.text
    r = change(b, token, action="phone", phone=PHONE)
    assert r.status_code == 303, snippet(r)
    assert site.user_entry(user.name)["phone"] == PHONE

    # The default method (no Duo here: the app is the only choice).
    r = change(b, token, action="default", method="totp")
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == SECURITY + "?done=default"
    assert site.user_entry(user.name)["default"] == "totp"
    r = b.follow(r)
    assert "Your default sign-in method was saved." in Page(r).text
    assert re.search(r'<option value="totp" selected>', r.text), \
        snippet(r, 6000)

    # Replacing the app goes through the set-up page with a new key.
    r = change(b, token, action="totp")
    assert r.status_code == 303, snippet(r)
    assert location(r).path == ENROLL
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    new_key = assert_enroll_page(r)
    assert new_key != old_key
    _, code = enroll_code(new_key, after_step=user.last_step)
    form = Page(r).form(ENROLL)
    r = b.post(ENROLL, dict(form.fields, code=code))
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == SECURITY + "?done=totp"
    r = b.follow(r)
    assert "Your authenticator app is set up." in Page(r).text
    assert new_key not in r.text and old_key not in r.text
    assert site.user_entry(user.name)["totp"] == new_key

    # The old key's codes stop working (a wrong code, not a used one).
    other = site.browser()
    r = other.follow(password_to_verify(other, "/app/recovered", user.name))
    assert r.status_code == 200 and Page(r).heading == "Enter code", \
        snippet(r)
    r = other.submit_code(r, totp_code(old_key, time.time()))
    assert r.status_code == 403, snippet(r)
    assert WRONG_CODE in Page(r).text, snippet(r)
    assert "twostep_session" not in set_cookies(r)

    # A recovery code signs in ("Use a recovery code"), once.
    r = other.get(recovery_link(r))
    assert r.status_code == 200, snippet(r)
    assert Page(r).form(VERIFY).fields["method"] == "recovery"
    r = other.submit_code(r, codes[3])
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == "/app/recovered"
    seen = other.app_view("/app/recovered")
    assert seen["headers"]["X-Remote-User"] == user.name
    assert len(site.user_entry(user.name)["recovery"]) == 9

    third = site.browser()
    r = third.follow(password_to_verify(third, "/app/", user.name))
    r = third.get(recovery_link(r))
    assert r.status_code == 200, snippet(r)
    r = third.submit_code(r, codes[3])
    assert r.status_code == 403, snippet(r)
    assert "That recovery code didn't work" in Page(r).text
    assert "twostep_session" not in set_cookies(r)
    assert len(site.user_entry(user.name)["recovery"]) == 9

    # The only authenticator app cannot be removed. (The new app renewed
    # this browser's session, and with it the page's form token.)
    token = manage_token(security_page(b))
    before = site.store_bytes()
    r = change(b, token, action="remove-totp")
    assert r.status_code == 403, snippet(r)
    assert Page(r).heading == "Security info"
    assert alert_text(r) == ONLY_APP, snippet(r, 3000)
    assert site.store_bytes() == before


def test_user_with_only_recovery_codes_is_asked_for_one(
        nginx_factory, workdir, app):
    """A user whose only second step is recovery codes (the app removed
    where Duo is configured, or codes made by twostep-user) is asked for a
    recovery code, not for an authenticator app code they cannot have."""
    name = "only-recovery"
    code = "bcdef-ghijk-lmnop-qrstu-vwxyz"
    remember_sensitive("code", code)
    extra = {name: {"password": password_hash(POOL_PASSWORD),
                    "recovery": [hashlib.sha256(
                        code.replace("-", "").encode()).hexdigest()]}}
    site = SelfServiceSite(nginx_factory, workdir, app, "onlyrec", [],
                           extra=extra)
    b = site.browser()
    r = b.follow(password_to_verify(b, "/app/", name))
    assert r.status_code == 200, snippet(r)
    form = Page(r).form(VERIFY)
    assert form.fields["method"] == "recovery", snippet(r, 3000)
    assert "authenticator app" not in Page(r).text
    r = b.submit_code(r, code)
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Remote-User"] == name


def test_default_method_is_offered_first(nginx_factory, workdir, app,
                                         duo_normal, duo_pool):
    """With Duo, the default chosen on security-info is the method the next
    sign-in's second-step page starts with (nothing is sent until the user
    presses the button)."""
    user = duo_pool.take("auth")
    site = SelfServiceSite(nginx_factory, workdir, app, "default", [user],
                           server_extra=duo_normal.nginx_conf("2s"))

    def second_step_page():
        b = site.browser()
        r = b.follow(password_to_verify(b, "/app/", user.name))
        assert r.status_code == 200, snippet(r)
        return r

    r = second_step_page()
    assert Page(r).heading == "Enter code"
    assert Page(r).form(VERIFY).fields["method"] == "totp"

    b = signed_in(site, user)
    r = security_page(b)
    options = re.findall(r'<option value="([a-z]*)"', r.text)
    assert options == ["", "totp", "push", "call", "sms"], options
    r = change(b, manage_token(r), action="default", method="push")
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == SECURITY + "?done=default"
    assert site.user_entry(user.name)["default"] == "push"
    r = b.follow(r)
    assert re.search(r'<option value="push" selected>', r.text)

    sent_before = len(duo_normal.transactions(user.name))
    r = second_step_page()
    page = Page(r)
    assert page.heading == "Verify your identity", snippet(r)
    form = page.form(VERIFY)
    assert form.fields["method"] == "push"
    assert form.fields["action"] == "send"
    assert "Send request" in page.text
    # The app is one click away, under "Sign in another way".
    assert "Use a verification code from my authenticator app" in page.text
    assert len(duo_normal.transactions(user.name)) == sent_before


# ----------------------------------------------------------- 7: step-up

def token_key(raw):
    # keyring.cpp: the HMAC key is HMAC-SHA256(file bytes, label).
    return hmac.new(raw, b"nginx-twostep token key v1",
                    hashlib.sha256).digest()


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def credential_tag(entry):
    """user_store.cpp credential_tag(): 16 base64url characters of SHA-256
    over the password hash and the app secret with its parameters."""
    data = entry.get("password", "").encode() + b"\n"
    totp = entry.get("totp")
    if totp:
        if isinstance(totp, str):
            secret, alg, digits, period = totp, "SHA1", 6, 30
        else:
            secret = totp["secret"]
            alg = totp.get("algorithm", "SHA1").upper()
            digits, period = totp.get("digits", 6), totp.get("period", 30)
        secret = secret.replace(" ", "").upper()
        raw = base64.b32decode(secret + "=" * (-len(secret) % 8))
        data += raw + b"\n" + ("%s %d %d" % (alg, digits, period)).encode()
    return b64url(hashlib.sha256(data).digest()[:12])


def session_cookie(site, user, auth_time, credentials, method="totp",
                   ttl=3600):
    """A session cookie signed with the site's own key, exactly as the
    module writes one (session.cpp: 3|sid|user|method|auth_time|expires|
    credentials|via|issued, keyring.cpp: kind.payload.tag, the key bound to
    the server's audience, here its listen address): what the browser would
    hold if its password and second step had been passed at `auth_time`."""
    payload = "3|%s|%s|%s|%d|%d|%s|password|%d" % (
        b64url(os.urandom(16)), user, method, auth_time,
        int(time.time()) + ttl, credentials, auth_time)
    signed = "s." + b64url(payload.encode())
    key = hmac.new(token_key(Path(site.key_file).read_bytes()),
                   b"audience|listen:127.0.0.1:%d" % site.port,
                   hashlib.sha256).digest()
    tag = hmac.new(key, signed.encode(), hashlib.sha256).digest()
    value = signed + "." + b64url(tag)
    remember_sensitive("cookie", value)
    return value


def test_stale_second_step_must_be_renewed_before_a_change(
        nginx_factory, workdir, app):
    """The freshness bound is 300 s, fixed in the module. Instead of
    waiting, the browser holds a session signed with the site's key whose
    second step is 310 s old; a fresh one made the same way shows that
    only the age differs."""
    user = new_user("stepup")
    site = SelfServiceSite(nginx_factory, workdir, app, "stepup", [user])

    # Control: made the same way, second step just now: changes work.
    fresh = site.browser()
    tag = credential_tag(site.user_entry(user.name))
    fresh.set_cookie("twostep_session",
                     session_cookie(site, user.name,
                                    int(time.time()), tag))
    assert fresh.app_view("/app/")["headers"]["X-Remote-User"] == user.name
    r = change(fresh, manage_token(security_page(fresh)), action="phone",
               phone="+15550000001")
    assert r.status_code == 303, snippet(r)
    assert location(r).query == "done=phone"
    assert site.user_entry(user.name)["phone"] == "+15550000001"

    # 310 s old: the session still opens the app and shows the page ...
    stale = site.browser()
    stale.set_cookie("twostep_session",
                     session_cookie(site, user.name,
                                    int(time.time()) - 310, tag))
    seen = stale.app_view("/app/")
    assert seen["headers"]["X-Remote-User"] == user.name
    r = security_page(stale)
    token = manage_token(r)

    # ... but every change asks for the second step again first.
    before = site.store_bytes()
    step_up = None
    for data in ({"action": "phone", "phone": PHONE},
                 {"action": "phone", "phone": ""},
                 {"action": "recovery"},
                 {"action": "default", "method": "totp"},
                 {"action": "totp"},
                 {"action": "remove-totp"}):
        r = change(stale, token, **data)
        assert r.status_code == 303, "%r: %s" % (data, snippet(r))
        loc = location(r)
        assert loc.path == SIGNIN, "%r: %s" % (data, r.headers["Location"])
        assert query(loc)["return_to"] == SECURITY
        assert "<code>" not in r.text
        step_up = r
    assert site.store_bytes() == before
    # No set-up page either: "totp" above started none.
    r = stale.get(ENROLL + "?return_to=" + SECURITY)
    assert r.status_code in (303, 403), snippet(r)
    assert 'class="key"' not in r.text

    # The step-up: the code only (no password), back to security info,
    # and now the change goes through.
    r = stale.follow(step_up)
    assert r.status_code == 303, snippet(r)
    assert location(r).path == VERIFY
    r = stale.follow(r)
    assert r.status_code == 200, snippet(r)
    assert "password" not in [n for n, _, _ in Page(r).form(VERIFY).inputs]
    r = stale.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert path_and_query(location(r)) == SECURITY
    r = change(stale, manage_token(stale.follow(r)), action="phone",
               phone=PHONE)
    assert r.status_code == 303, snippet(r)
    assert location(r).query == "done=phone"
    assert site.user_entry(user.name)["phone"] == PHONE


# ------------------------------------------ 8: two workers, concurrent

def test_concurrent_changes_from_two_workers_are_all_kept(
        nginx_factory, workdir, app):
    alice, bob = new_user("conc-alice"), new_user("conc-bob")
    site = SelfServiceSite(nginx_factory, workdir, app, "concurrent",
                           [alice, bob], workers=2)
    rounds = 25
    clients = []
    for i, u in enumerate((alice, bob)):
        b = site.browser(fresh=True)
        b.sign_in("/app/", u)
        clients.append((u, b, manage_token(security_page(b)),
                        ["+1555%d%06d" % (i + 1, n) for n in range(rounds)]))

    def run(i):
        u, b, token, phones = clients[i]
        out = []
        for phone in phones:
            r = change(b, token, action="phone", phone=phone)
            out.append((r.status_code, r.headers.get("Location"),
                        r.headers.get(WORKER_HEADER), phone))
        return out

    results = hammer(run, 2)
    workers = set()
    for (u, _, _, _), res in zip(clients, results):
        assert not isinstance(res, BaseException), repr(res)
        for status, loc, worker, phone in res:
            assert status == 303 and loc and loc.endswith("?done=phone"), \
                "%s %s: %s %s" % (u.name, phone, status, loc)
            workers.add(worker)
    assert len(workers) == 2, "only worker(s) %s answered" % workers

    store = json.loads(site.users_file.read_text())   # it parses
    for u, _, _, phones in clients:
        entry = store["users"][u.name]
        assert entry["phone"] == phones[-1], (u.name, entry.get("phone"))
        assert entry["totp"] == u.secret
        assert entry["password"] == u.pw_hash
    assert sorted(store["users"]) == sorted([alice.name, bob.name])
    # Whichever worker answers shows the final numbers.
    for u, b, _, phones in clients:
        for _ in range(4):
            r = security_page(b)
            assert masked(phones[-1]) in r.text, snippet(r, 4000)


def test_replaced_app_ends_a_copied_session_on_every_worker(
        nginx_factory, workdir, app):
    """OWASP ASVS 3.3.3: a user who replaces their authenticator app
    (because someone may have copied their session) ends the old session
    on every worker within about a second, not only on the worker that
    wrote the store; their own browser keeps a renewed one."""
    user = new_user("replace-everywhere")
    site = SelfServiceSite(nginx_factory, workdir, app, "replace-all",
                           [user], workers=2)
    b = signed_in(site, user)
    copied = b.cookie("twostep_session")

    def answers(cookie, n=40):
        statuses, workers = {}, set()
        for _ in range(n):
            r = requests.get(site.url + "/app/", allow_redirects=False,
                             headers={"Cookie": "twostep_session=" + cookie,
                                      "Connection": "close"}, timeout=15)
            statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
            workers.add(r.headers.get(WORKER_HEADER))
        return statuses, workers

    statuses, workers = answers(copied)
    assert statuses == {200: 40} and len(workers) == 2, (statuses, workers)

    r = change(b, manage_token(security_page(b)), action="totp")
    assert r.status_code == 303 and location(r).path == ENROLL, snippet(r)
    r = b.follow(r)
    new_key = assert_enroll_page(r)
    _, code = enroll_code(new_key, after_step=user.last_step)
    r = b.post(ENROLL, dict(Page(r).form(ENROLL).fields, code=code))
    assert r.status_code == 303, snippet(r)
    assert site.user_entry(user.name)["totp"] == new_key
    time.sleep(2)   # the workers look at the file at most once a second

    statuses, workers = answers(copied)
    assert statuses == {302: 40} and len(workers) == 2, (statuses, workers)
    renewed = b.cookie("twostep_session")
    assert renewed != copied
    statuses, _ = answers(renewed, n=10)
    assert statuses == {200: 10}, statuses


def test_store_that_cannot_be_written_is_a_503_not_the_users_fault(
        nginx_factory, workdir, app):
    """A change refused because of the visitor is a 400 with the reason;
    one the store's directory does not let the workers write is ours: 503,
    "could not be saved", and the file as it was."""
    user = new_user("unwritable")
    site = SelfServiceSite(nginx_factory, workdir, app, "unwritable", [user])
    site.nginx.allow_log(r"security info change \"recovery\" for "
                         r"\"unwritable\" refused")
    b = signed_in(site, user)
    token = manage_token(security_page(b))

    r = change(b, token, action="phone", phone="555-1234")
    assert r.status_code == 400, snippet(r)
    # A number without its country code is told so (beside the field).
    assert "Start with + and the country code" in Page(r).text

    before = site.store_bytes()
    store = site.users_file.parent
    os.chown(store, 0, 0)          # the workers (nobody) cannot write here
    store.chmod(0o755)
    try:
        r = change(b, token, action="recovery")
    finally:
        os.chown(store, pwd.getpwnam("nobody").pw_uid,
                 grp.getgrnam("nogroup").gr_gid)
        store.chmod(0o770)
    assert r.status_code == 503, snippet(r)
    assert alert_text(r) == ("The change could not be saved. Please try "
                             "again later."), snippet(r)
    assert "Your new recovery codes" not in Page(r).text
    assert site.store_bytes() == before
