"""Security info with Twilio and ntfy, end to end: "Set up push
notifications" (a random topic, the subscribe QR code, a test push approved
with number matching on the phone, the topic saved only then), removing
it, and a phone saved there becoming a way to sign in by text and call.

The real nginx with the module, examples/ntfy_standin.py and
examples/twilio_standin.py as processes of their own (access token and
Basic auth checked), the legacy app behind. The ntfy stand-in plays the
phone: it lists what reached a topic and taps its buttons as the ntfy app
would. The user store is written by the workers (twostep_enroll on), so it
lives in a directory owned by nobody:nogroup as the README says.
"""

import base64
import grp
import hashlib
import hmac
import json
import os
import pwd
import re
import secrets
import tempfile
import time
from pathlib import Path

import pytest
import requests

from conftest import MODULE, check_log
from harness import (PORTAL, Browser, Nginx, Page, User, choose_method,
                     free_port, location, main_conf, offered_methods,
                     password_step, press_send, proxy_to, refresh_url,
                     remember_sensitive, set_cookies, snippet, start_push,
                     wait_status_url, write_key, write_users)

# The stand-ins and their credentials, as test_selfhosted.py runs them
# (module-scoped fixtures: this module gets processes of its own).
from test_selfhosted import (ACCOUNT, FROM, NTFY_TOKEN, SITE,  # noqa: F401
                             TOKEN as TWILIO_TOKEN, ntfy, send_text,
                             texted_code, twilio)

SECURITY = PORTAL + "security-info"
SETUP = PORTAL + "push-setup"
NAMES = ["setup-%d" % i for i in range(24)] + ["setup-busy"]
TOPIC = re.compile(r'<code class="key">([A-Za-z0-9_-]{24})</code>')


class Store:
    """users.json in a directory the workers (nobody) may write."""

    def __init__(self, directory):
        self.dir = directory / "store"
        self.dir.mkdir()
        os.chown(self.dir, pwd.getpwnam("nobody").pw_uid,
                 grp.getgrnam("nogroup").gr_gid)
        self.dir.chmod(0o770)
        self.path = self.dir / "users.json"
        self.users = {n: User(n, "pw " + secrets.token_hex(6))
                      for n in NAMES}
        self.taken = {"setup-busy"}  # has push: taken by name only
        # Two users have push already (one with nothing else), one a
        # phone: the rest start with their authenticator app alone.
        self.extra = {"setup-0": {"ntfy_topic": secrets.token_urlsafe(18)},
                      "setup-1": {"ntfy_topic": secrets.token_urlsafe(18)},
                      "setup-busy": {
                          "ntfy_topic": secrets.token_urlsafe(18)}}
        write_users(self.path, list(self.users.values()), mode=0o660)
        doc = json.loads(self.path.read_text())
        for name, members in self.extra.items():
            doc["users"][name].update(members)
        del doc["users"]["setup-1"]["totp"]
        self.path.write_text(json.dumps(doc, indent=2) + "\n")
        os.chown(self.path, pwd.getpwnam("nobody").pw_uid,
                 grp.getgrnam("nogroup").gr_gid)

    def take(self, name=None):
        for n in ([name] if name else NAMES[2:]):
            if n not in self.taken:
                self.taken.add(n)
                return self.users[n]
        raise RuntimeError("no user left: raise NAMES")

    def entry(self, name):
        return json.loads(self.path.read_text())["users"][name]


def site_conf(d, store, key, port, app, twilio, ntfy, with_twilio=True):
    (d / "twilio.token").write_text(TWILIO_TOKEN + "\n")
    (d / "ntfy.token").write_text(NTFY_TOKEN + "\n")
    twilio_conf = """
    twostep_twilio_api {api};
    twostep_twilio_account {account};
    twostep_twilio_token_file {d}/twilio.token;
    twostep_twilio_from {sender};""".format(
        api=twilio.base, account=ACCOUNT, d=d, sender=FROM)
    body = """
    twostep_users {users};
    twostep_site_name "{site}";
    {twilio}
    twostep_ntfy_server {ntfy};
    twostep_ntfy_token_file {d}/ntfy.token;
    twostep_public_url http://127.0.0.1:{port};
    twostep_duo_timeout 3s;

    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {key};
        twostep_enroll on;
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(users=store.path, site=SITE, d=d, ntfy=ntfy.base, port=port,
           key=key, proxy=proxy_to(app.port),
           twilio=twilio_conf if with_twilio else "")
    return main_conf(d / "nginx", MODULE, body, workers=2)


def make_site(workdir, app, twilio, ntfy, with_twilio=True):
    remember_sensitive("secret", TWILIO_TOKEN)
    remember_sensitive("secret", NTFY_TOKEN)
    d = Path(tempfile.mkdtemp(prefix="pushsetup-", dir=workdir))
    d.chmod(0o755)
    port = free_port()
    store = Store(d)
    key = write_key(d / "cookie.key")
    nginx = Nginx(d / "nginx", site_conf(d, store, key, port, app, twilio,
                                         ntfy, with_twilio), ports=[port])
    nginx.start()
    nginx.base = "http://127.0.0.1:%d" % port
    nginx.store = store
    nginx.key_file = key
    nginx.port = port
    return nginx


@pytest.fixture(scope="module")
def site(workdir, app, twilio, ntfy):
    nginx = make_site(workdir, app, twilio, ntfy)
    yield nginx
    mark = nginx.log_size()
    nginx.stop()
    check_log(nginx, mark)
    log = nginx.log_text()
    assert TWILIO_TOKEN not in log and NTFY_TOKEN not in log


@pytest.fixture(autouse=True)
def normal(ntfy):
    assert ntfy.control("/standin/mode", {"mode": "normal"}).ok
    yield
    ntfy.control("/standin/mode", {"mode": "normal"})


# ----------------------------------------------------------------- steps

def signed_in(site, user):
    b = Browser(site.base)
    b.sign_in("/app/", user)
    return b


def security_page(b):
    r = b.get(SECURITY)
    assert r.status_code == 200, snippet(r)
    return r


def push_row_form(page, action):
    """The push row's form in security info posting `action`."""
    for f in Page(page).forms:
        if f.action == SETUP and f.fields.get("action") == action:
            return dict(f.fields)
    raise AssertionError("no push %s form: %s" % (action, snippet(page, 4000)))


def start_setup(b):
    """"Set up push notifications" in security info: the set-up page and
    the topic it offers."""
    r = b.post(SETUP, push_row_form(security_page(b), "start"))
    assert r.status_code == 303, snippet(r)
    assert location(r).path == SETUP and not location(r).query, snippet(r)
    cookie = set_cookies(r)["twostep_setup"]
    assert cookie[1].get("httponly") is True, cookie
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Set up push notifications"
    m = TOPIC.search(r.text)
    assert m, snippet(r, 4000)
    return r, m.group(1)


def send_test(b, page):
    form = [f for f in Page(page).forms if f.fields.get("action") == "send"]
    assert len(form) == 1, Page(page).forms
    return b.post(SETUP, dict(form[0].fields))


def waiting_page(b, page):
    """Sends the test push: the waiting page with its number."""
    r = send_test(b, page)
    assert r.status_code == 303, snippet(r)
    assert location(r).path == SETUP, snippet(r)
    r = b.follow(r)
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Approve the test notification"
    m = re.search(r'class="number">(\d\d)<', r.text)
    assert m, snippet(r, 3000)
    return r, m.group(1)


def pushes(ntfy, topic):
    r = requests.get(ntfy.base + "/standin/messages",
                     params={"topic": topic}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def tap(ntfy, msg, label):
    r = ntfy.control("/standin/action", {"id": msg["id"], "label": label})
    assert r.status_code == 200, r.text
    return r.json()


def answer_on_phone(ntfy, topic, number):
    """Taps Approve on the test push and types `number`: what the phone
    was told."""
    msgs = pushes(ntfy, topic)
    assert msgs, msgs
    url = tap(ntfy, msgs[-1], "Approve")["url"]
    phone = requests.Session()
    page = phone.get(url, timeout=10)
    assert page.status_code == 200, snippet(page)
    p = Page(page)
    assert p.heading == "Approve the test notification?"
    assert "<script" not in page.text
    # Nobody signs in with a test: nothing to report as fraud.
    assert [f.fields.get("action") for f in p.forms] == ["approve", "deny"]
    form = dict(p.forms[0].fields)
    form["number"] = number
    return phone.post(url.split("?")[0], data=form, timeout=10), url


def check(b, page):
    return b.get(refresh_url(page))


def other_number(number):
    return str(10 + (int(number) - 10 + 1) % 90)


# ----------------------------------------------------------------- tests

def test_security_info_offers_push_set_up(site):
    user = site.store.take()
    b = signed_in(site, user)
    r = security_page(b)
    text = Page(r).text
    assert "Push notifications Not set up" in text, text
    assert "Set up push notifications" in text
    push_row_form(r, "start")
    assert not [f for f in Page(r).forms
                if f.fields.get("action") == "remove" and f.action == SETUP]


def test_set_up_saves_the_topic_only_after_the_test_is_approved(site, ntfy):
    user = site.store.take()
    b = signed_in(site, user)
    page, topic = start_setup(b)
    remember_sensitive("secret", topic)
    # How to subscribe: the server, the topic and the app's link as a QR
    # code; never the topic in a URL of ours.
    assert ntfy.base in page.text
    assert '<svg' in page.text and 'aria-label="QR code to subscribe' \
        in page.text
    assert "Keep the topic to yourself" in Page(page).text
    assert "ntfy_topic" not in site.store.entry(user.name)
    assert pushes(ntfy, topic) == []

    wait, number = waiting_page(b, page)
    assert b.get(wait_status_url(wait)).json() == {"state": "waiting"}
    msgs = pushes(ntfy, topic)
    assert len(msgs) == 1
    assert msgs[0]["title"] == "Test notification from %s" % SITE
    assert user.name in msgs[0]["message"]
    assert [a["label"] for a in msgs[0]["actions"]] == ["Approve", "Deny"]
    # Still nothing saved while it waits.
    assert check(b, wait).status_code == 200
    assert "ntfy_topic" not in site.store.entry(user.name)

    done, url = answer_on_phone(ntfy, topic, number)
    assert done.status_code == 200, snippet(done)
    assert Page(done).heading == "Test notification approved"
    assert b.get(wait_status_url(wait)).json() == {"state": "done"}

    old_cookie = b.cookie("twostep_setup")
    r = check(b, wait)
    assert r.status_code == 303, snippet(r)
    assert location(r).path == SECURITY and location(r).query == "done=push"
    assert site.store.entry(user.name)["ntfy_topic"] == topic
    r = b.follow(r)
    text = Page(r).text
    assert "Push notifications are set up" in text
    assert "Push notifications Set up" in text, text
    assert topic not in r.text
    push_row_form(r, "remove")

    # The approval worked once, and the set-up saves once.
    assert requests.get(url, timeout=10).status_code == 403
    b.set_cookie("twostep_setup", old_cookie)
    again = b.get(SETUP + "?check=1")
    assert again.status_code == 403, snippet(again)
    assert Page(again).heading == "Set-up expired"

    # The topic never reached a URL (the access log) or the error log.
    logs = (site.prefix / "access.log").read_text() + site.log_text()
    assert topic not in logs

    # And it signs in: a push to the new topic, approved with the number.
    b2 = Browser(site.base)
    user_page = password_step(b2, "/app/", user)
    assert "push" in offered_methods(user_page)
    r = start_push(b2, "/app/", user)
    m = re.search(r'class="number">(\d\d)<', r.text)
    msgs = pushes(ntfy, topic)
    assert len(msgs) == 2 and msgs[-1]["title"] == "Sign in to %s?" % SITE
    url = tap(ntfy, msgs[-1], "Approve")["url"]
    phone = requests.Session()
    form = dict(Page(phone.get(url, timeout=10)).forms[0].fields)
    form["number"] = m.group(1)
    assert phone.post(url.split("?")[0], data=form,
                      timeout=10).status_code == 200
    r = b2.get(refresh_url(r))
    assert r.status_code == 303, snippet(r)
    assert b2.app_view("/app/")["headers"]["X-Twostep-Method"] == "push"


@pytest.mark.parametrize("answer", ["deny", "wrong number", "deny button"])
def test_refused_test_saves_nothing(site, ntfy, answer):
    user = site.store.take()
    b = signed_in(site, user)
    page, topic = start_setup(b)
    remember_sensitive("secret", topic)
    wait, number = waiting_page(b, page)
    mark = site.log_size()
    if answer == "deny button":
        # The notification's own Deny, POSTed by the app.
        assert tap(ntfy, pushes(ntfy, topic)[0], "Deny")["status"] == 200
        said = "The test notification was denied"
    elif answer == "deny":
        url = tap(ntfy, pushes(ntfy, topic)[0], "Approve")["url"]
        phone = requests.Session()
        form = [f for f in Page(phone.get(url, timeout=10)).forms
                if f.fields.get("action") == "deny"][0]
        done = phone.post(url.split("?")[0], data=dict(form.fields),
                          timeout=10)
        assert done.status_code == 403, snippet(done)
        assert Page(done).heading == "Test notification refused"
        said = "The test notification was denied"
    else:
        done, _ = answer_on_phone(ntfy, topic, other_number(number))
        assert done.status_code == 403, snippet(done)
        assert "not the number on the set-up page" in Page(done).text
        assert "wrong number on a test notification" in site.log_text(mark)
        said = "was not the one shown here"
    r = check(b, wait)
    assert r.status_code == 403, snippet(r)
    assert said in Page(r).text and "Nothing was saved" in Page(r).text
    assert "ntfy_topic" not in site.store.entry(user.name)
    # The same topic may be tried again with a new test.
    assert Page(r).heading == "Set up push notifications"
    assert topic in r.text


def test_set_up_belongs_to_its_session(site, ntfy):
    """Another session, of the same user or another, cannot use or finish
    a set-up's cookie."""
    user = site.store.take()
    b = signed_in(site, user)
    page, topic = start_setup(b)
    remember_sensitive("secret", topic)
    stolen = b.cookie("twostep_setup")
    for thief in (signed_in(site, user), signed_in(site, site.store.take())):
        thief.set_cookie("twostep_setup", stolen)
        r = thief.get(SETUP)
        assert r.status_code == 403, snippet(r)
        assert Page(r).heading == "Set-up expired"
        assert topic not in r.text
        form = push_row_form(security_page(thief), "start")
        form["action"] = "send"
        r = thief.post(SETUP, form)
        assert r.status_code == 403, snippet(r)
    assert pushes(ntfy, topic) == []
    # Without a session: sign in first.
    anon = Browser(site.base)
    anon.set_cookie("twostep_setup", stolen)
    r = anon.get(SETUP)
    assert r.status_code == 303 and location(r).path == PORTAL + "signin"


def test_forged_or_foreign_forms_start_nothing(site):
    user = site.store.take()
    b = signed_in(site, user)
    form = push_row_form(security_page(b), "start")
    # One character changed (not to itself: 1 token in 64 starts with x).
    first = "y" if form["form_token"].startswith("x") else "x"
    r = b.post(SETUP, dict(form, form_token=first + form["form_token"][1:]))
    assert r.status_code == 403, snippet(r)
    assert "twostep_setup" not in set_cookies(r)
    r = b.post(SETUP, form, headers={"Origin": "http://evil.example"})
    assert r.status_code == 403, snippet(r)
    assert "twostep_setup" not in set_cookies(r)
    r = b.post(SETUP, dict(form, action="frobnicate"))
    assert r.status_code == 400, snippet(r)


@pytest.mark.parametrize("mode", ["http500", "http429", "garbage", "down"])
def test_ntfy_failing_saves_nothing(site, ntfy, mode):
    user = site.store.take()
    b = signed_in(site, user)
    page, topic = start_setup(b)
    remember_sensitive("secret", topic)
    assert ntfy.control("/standin/mode", {"mode": mode, "count": 1}).ok
    r = send_test(b, page)
    assert r.status_code == 503, snippet(r)
    assert "could not be sent" in Page(r).text
    assert Page(r).heading == "Set up push notifications"
    assert "ntfy_topic" not in site.store.entry(user.name)
    # When ntfy is back, the same set-up goes on.
    ntfy.control("/standin/mode", {"mode": "normal"})
    wait, number = waiting_page(b, page)
    done, _ = answer_on_phone(ntfy, topic, number)
    assert done.status_code == 200
    assert check(b, wait).status_code == 303
    assert site.store.entry(user.name)["ntfy_topic"] == topic


def test_test_pushes_count_in_the_limits_of_every_push(site, ntfy):
    """Three pushes to the phone per ten minutes (MFA fatigue): a new test
    replaces one still out (whose link then dies), and the fourth is
    refused without reaching ntfy, the third still waiting."""
    user = site.store.take()
    b = signed_in(site, user)
    page, topic = start_setup(b)
    remember_sensitive("secret", topic)
    wait = page
    for i in range(3):
        # The waiting page offers "Send a new test notification".
        wait, number = waiting_page(b, wait)
    msgs = pushes(ntfy, topic)
    assert len(msgs) == 3
    first = tap(ntfy, msgs[0], "Approve")["url"]
    assert requests.get(first, timeout=10).status_code == 403
    r = send_test(b, wait)
    assert r.status_code == 429, snippet(r)
    assert "Too many notifications were sent to your phone" in Page(r).text
    assert Page(r).heading == "Approve the test notification"
    assert len(pushes(ntfy, topic)) == 3
    # The last one sent still saves.
    done, _ = answer_on_phone(ntfy, topic, number)
    assert done.status_code == 200, snippet(done)
    assert check(b, wait).status_code == 303
    assert site.store.entry(user.name)["ntfy_topic"] == topic


def test_replace_and_remove_push(site, ntfy):
    user = site.store.users["setup-0"]
    site.store.taken.add(user.name)
    old = site.store.entry(user.name)["ntfy_topic"]
    b = signed_in(site, user)
    r = security_page(b)
    assert "Push notifications Set up" in Page(r).text
    assert old not in r.text
    # Listed once, in its own row (and as a choice of default method).
    assert "authenticator app Available" not in Page(r).text
    # Replace: a new topic, saved once its test is approved.
    page, topic = start_setup(b)
    remember_sensitive("secret", topic)
    assert topic != old
    wait, number = waiting_page(b, page)
    answer_on_phone(ntfy, topic, number)
    assert check(b, wait).status_code == 303
    assert site.store.entry(user.name)["ntfy_topic"] == topic
    # Remove.
    r = b.post(SETUP, push_row_form(security_page(b), "remove"))
    assert r.status_code == 303, snippet(r)
    assert location(r).query == "done=push-removed"
    assert "Push notifications were removed" in Page(b.follow(r)).text
    assert "ntfy_topic" not in site.store.entry(user.name)


def test_last_way_to_sign_in_is_not_removed(site, ntfy):
    """setup-1 has push and nothing else: signed in by push, the topic
    stays."""
    user = site.store.users["setup-1"]
    site.store.taken.add(user.name)
    b = Browser(site.base)
    r = start_push(b, "/app/", user)
    m = re.search(r'class="number">(\d\d)<', r.text)
    topic = site.store.entry(user.name)["ntfy_topic"]
    url = tap(ntfy, pushes(ntfy, topic)[-1], "Approve")["url"]
    phone = requests.Session()
    form = dict(Page(phone.get(url, timeout=10)).forms[0].fields)
    form["number"] = m.group(1)
    assert phone.post(url.split("?")[0], data=form,
                      timeout=10).status_code == 200
    assert b.get(refresh_url(r)).status_code == 303
    r = b.post(SETUP, push_row_form(security_page(b), "remove"))
    assert r.status_code == 403, snippet(r)
    assert "This is your only way to sign in" in Page(r).text
    assert site.store.entry(user.name)["ntfy_topic"] == topic


# ------------------------------------------- minted cookies: age, expiry

def token_key(raw):
    # keyring.cpp: the HMAC key is HMAC-SHA256(file bytes, label).
    return hmac.new(raw, b"nginx-twostep token key v1",
                    hashlib.sha256).digest()


def b64url(data):
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def sign(site, kind, payload):
    """A token as the module signs it (keyring.cpp: kind.payload.tag, the
    key bound to the server's audience, here its listen address)."""
    signed = kind + "." + b64url(payload.encode())
    key = hmac.new(token_key(Path(site.key_file).read_bytes()),
                   b"audience|listen:127.0.0.1:%d" % site.port,
                   hashlib.sha256).digest()
    value = signed + "." + b64url(hmac.new(key, signed.encode(),
                                           hashlib.sha256).digest())
    remember_sensitive("cookie", value)
    return value


def test_a_test_push_that_is_not_out_frees_no_sign_in_push(site, ntfy):
    """One push waiting per user: a sign-in's push holds the slot, and a
    set-up whose test push never started (a transaction nobody opened, or
    a set-up cookie kept from before its test was answered) must not free
    it, by asking for its test's answer or by sending a new test."""
    user = site.store.users["setup-busy"]
    phone_topic = site.store.extra["setup-busy"]["ntfy_topic"]
    remember_sensitive("secret", phone_topic)
    b = signed_in(site, user)
    page, topic = start_setup(b)
    remember_sensitive("secret", topic)

    # A test answered (denied) and its answer seen: the set-up cookie from
    # before that names a test that is over.
    wait, _ = waiting_page(b, page)
    kept = b.cookie("twostep_setup")
    assert tap(ntfy, pushes(ntfy, topic)[0], "Deny")["status"] == 200
    assert check(b, wait).status_code == 403

    # A sign-in elsewhere sends a push to the phone: it holds the slot.
    signin = Browser(site.base)
    waiting = start_push(signin, "/app/", user)
    assert Page(waiting).heading == \
        "Approve the sign-in request on your phone", snippet(waiting)
    assert len(pushes(ntfy, phone_topic)) == 1

    sid = base64.urlsafe_b64decode(b.cookie("twostep_session").split(".")[1]
                                   + "==").decode().split("|")[1]
    never = sign(site, "u", "1|%s|%s|%s|%s|%d" % (
        sid, user.name, topic, b64url(os.urandom(16)), int(time.time()) + 300))
    for cookie in (kept, never):
        b.set_cookie("twostep_setup", cookie)
        assert b.get(SETUP + "?status=1").json() == {"state": "done"}
        r = b.get(SETUP + "?check=1")
        assert r.status_code == 403, snippet(r)

        # Still one at a time: another sign-in's push is refused...
        other = Browser(site.base)
        r = press_send(other, choose_method(
            other, password_step(other, "/app/", user), "push"))
        assert r.status_code == 429, snippet(r)
        assert "A request is already waiting on your phone" in \
            Page(r).text, snippet(r, 3000)
        assert len(pushes(ntfy, phone_topic)) == 1

        # ... and so is a new test in place of the one that is not out.
        b.set_cookie("twostep_setup", cookie)
        r = send_test(b, b.get(SETUP))
        assert r.status_code == 429, snippet(r)
        assert "A test notification is already waiting" in Page(r).text
    assert len(pushes(ntfy, topic)) == 1

    # The sign-in's push still signs in.
    msg = pushes(ntfy, phone_topic)[0]
    url = tap(ntfy, msg, "Approve")["url"]
    phone = requests.Session()
    form = dict(Page(phone.get(url, timeout=10)).forms[0].fields)
    form["number"] = re.search(r'class="number">(\d\d)<',
                               waiting.text).group(1)
    assert phone.post(url.split("?")[0], data=form,
                      timeout=10).status_code == 200
    assert check(signin, waiting).status_code == 303
    assert signin.app_view("/app/")["headers"]["X-Remote-User"] == user.name


def test_stale_second_step_must_be_renewed_first(site):
    """The freshness bound is 300 s: a session whose second step is 310 s
    old (signed with the site's key, as the administrator may) opens the
    app, but starting or removing push asks for the second step again."""
    user = site.store.take()
    b = signed_in(site, user)
    form = push_row_form(security_page(b), "start")
    now = int(time.time())
    session = b.cookie("twostep_session")
    payload = base64.urlsafe_b64decode(
        session.split(".")[1] + "==").decode().split("|")
    # 3|sid|user|method|auth_time|expires|credentials|via|issued
    payload[4] = payload[8] = str(now - 310)
    b.set_cookie("twostep_session", sign(site, "s", "|".join(payload)))
    assert b.app_view("/app/")["headers"]["X-Remote-User"] == user.name
    for action in ("start", "remove"):
        r = b.post(SETUP, dict(form, action=action))
        assert r.status_code == 303, snippet(r)
        assert location(r).path == PORTAL + "signin", snippet(r)
        assert "twostep_setup" not in set_cookies(r)


def test_approved_test_saves_nothing_once_the_second_step_is_stale(
        site, ntfy):
    """The set-up lasts ten minutes, a second step counts as fresh for
    five: a test approved on the phone after the session's second step
    went stale (the same session re-signed 310 s old) saves nothing."""
    user = site.store.take()
    b = signed_in(site, user)
    page, topic = start_setup(b)
    remember_sensitive("secret", topic)
    wait, number = waiting_page(b, page)
    payload = base64.urlsafe_b64decode(
        b.cookie("twostep_session").split(".")[1] + "==").decode().split("|")
    payload[4] = payload[8] = str(int(time.time()) - 310)
    b.set_cookie("twostep_session", sign(site, "s", "|".join(payload)))
    done, _ = answer_on_phone(ntfy, topic, number)
    assert done.status_code == 200, snippet(done)
    r = check(b, wait)
    assert r.status_code == 403, snippet(r)
    assert Page(r).heading == "Set-up expired"
    assert "ntfy_topic" not in site.store.entry(user.name)


def test_set_up_expires(site, ntfy):
    """A set-up lasts ten minutes, its test push at most as long: one made
    to end in 4 s (signed with the site's key) shows its test, but an
    approval after the end saves nothing."""
    user = site.store.take()
    b = signed_in(site, user)
    sid = base64.urlsafe_b64decode(b.cookie("twostep_session").split(".")[1]
                                   + "==").decode().split("|")[1]
    topic = b64url(os.urandom(18))
    remember_sensitive("secret", topic)
    b.set_cookie("twostep_setup", sign(site, "u", "1|%s|%s|%s||%d" % (
        sid, user.name, topic, int(time.time()) + 4)))
    page = b.get(SETUP)
    assert page.status_code == 200, snippet(page)
    assert topic in page.text
    wait, number = waiting_page(b, page)
    time.sleep(5)
    url = tap(ntfy, pushes(ntfy, topic)[0], "Approve")["url"]
    late = requests.get(url, timeout=10)
    assert late.status_code == 403, snippet(late)
    assert Page(late).heading == "This link no longer works"
    late = requests.post(url.split("?")[0], timeout=10,
                         data={"t": url.split("t=")[1], "number": number,
                               "action": "approve"})
    assert late.status_code == 403, snippet(late)
    r = check(b, wait)
    assert r.status_code == 403, snippet(r)
    assert Page(r).heading == "Set-up expired"
    assert "ntfy_topic" not in site.store.entry(user.name)


# ----------------------------------------------------------- the phone

def test_phone_saved_in_security_info_signs_in_by_text_and_call(
        site, twilio):
    user = site.store.take()
    phone = "+3161%07d" % secrets.randbelow(10 ** 7)
    b = signed_in(site, user)
    r = security_page(b)
    assert "Text my phone" not in Page(r).text
    form = [f for f in Page(r).forms if f.fields.get("action") == "phone"
            and "phone" in [i[0] for i in f.inputs]][0]
    r = b.post(SECURITY, dict(form.fields, phone=phone))
    assert r.status_code == 303, snippet(r)
    r = b.follow(r)
    text = Page(r).text
    assert "Your phone number was saved" in text
    assert "Text my phone" in text and "Call my phone" in text
    assert "Not usable yet" not in text

    # At the next sign-in: text and call are offered, and a text works.
    b2 = Browser(site.base)
    r = password_step(b2, "/app/", user)
    assert offered_methods(r) == {"totp", "sms", "call"}
    user.phone = phone
    r = send_text(b2, user)
    assert r.status_code == 200, snippet(r)
    r = b2.submit_code(r, texted_code(twilio, user), method="sms")
    assert r.status_code == 303, snippet(r)
    assert b2.app_view("/app/")["headers"]["X-Twostep-Method"] == "sms"


def test_phone_without_twilio_is_no_way_to_sign_in(workdir, app, twilio,
                                                   ntfy):
    site = make_site(workdir, app, twilio, ntfy, with_twilio=False)
    try:
        user = site.store.take()
        b = signed_in(site, user)
        r = security_page(b)
        form = [f for f in Page(r).forms if f.fields.get("action") == "phone"
                and "phone" in [i[0] for i in f.inputs]][0]
        r = b.follow(b.post(SECURITY, dict(form.fields,
                                           phone="+31612345678")))
        text = Page(r).text
        assert "Your phone number was saved" in text
        assert "Not usable yet" in text
        assert "Text my phone" not in text and "Call my phone" not in text
        r = password_step(Browser(site.base), "/app/", user)
        assert offered_methods(r) == {"totp"}
    finally:
        mark = site.log_size()
        site.stop()
        check_log(site, mark)
