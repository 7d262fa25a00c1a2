"""Text message, phone call and push without Duo, end to end: the real
nginx with the module, examples/twilio_standin.py as Twilio and
examples/ntfy_standin.py as ntfy (processes of their own, written from the
public docs, checking Basic auth and Bearer tokens), the legacy app behind.
The stand-ins play the phone: their control API reads the texts, presses
the call's keys (Twilio's signed callback) and taps the push's buttons.
Each test asserts what the user sees and what the application gets.
"""

import base64
import hashlib
import hmac
import json
import re
import secrets
import tempfile
from pathlib import Path

import pytest
import requests

from conftest import MODULE, check_log
from harness import (VERIFY, Browser, Nginx, Page, User, choose_method, free_port,
                     location, main_conf, ntfy_standin, offered_methods,
                     password_hash, password_step, press_send, proxy_to,
                     refresh_url, remember_sensitive, snippet, start_push,
                     twilio_standin, wait_status_url, write_key, write_users)

ACCOUNT = "AC" + secrets.token_hex(16)
TOKEN = secrets.token_hex(16)
NTFY_TOKEN = "tk_" + secrets.token_hex(14)
FROM = "+15550001111"
PASSWORD = "correct horse " + secrets.token_hex(4)
SITE = "Example Portal"
KINDS = {"sms": 16, "call": 12, "push": 12}


class Pool:
    """Users of one kind each: sms-N and call-N have a phone, push-N an
    ntfy topic; every one also has an authenticator app."""

    def __init__(self):
        shared = password_hash(PASSWORD)
        self.users, self.extra, self.taken = {}, {}, set()
        for kind, n in KINDS.items():
            for i in range(n):
                name = "%s-%d" % (kind, i)
                self.users[name] = User(name, PASSWORD, pw_hash=shared)
                if kind == "push":
                    self.extra[name] = {"ntfy_topic": secrets.token_urlsafe(18)}
                else:
                    digits = 1 if kind == "sms" else 2
                    self.extra[name] = {"phone": "+316%d%07d" % (digits, i)}
        # A phone for Duo's users only: no Twilio here, so never offered.

    def take(self, kind):
        for name, u in self.users.items():
            if name.startswith(kind + "-") and name not in self.taken:
                self.taken.add(name)
                u.phone = self.extra[name].get("phone")
                u.topic = self.extra[name].get("ntfy_topic")
                return u
        raise RuntimeError("pool exhausted: raise KINDS[%r]" % kind)

    def write(self, path):
        write_users(path, list(self.users.values()))
        doc = json.loads(Path(path).read_text())
        for name, members in self.extra.items():
            doc["users"][name].update(members)
        Path(path).write_text(json.dumps(doc, indent=2) + "\n")
        return path


def site_conf(d, users, key, port, app, twilio, ntfy):
    (d / "twilio.token").write_text(TOKEN + "\n")
    (d / "ntfy.token").write_text(NTFY_TOKEN + "\n")
    body = """
    twostep_users {users};
    twostep_site_name "{site}";
    twostep_twilio_api {twilio};
    twostep_twilio_account {account};
    twostep_twilio_token_file {d}/twilio.token;
    twostep_twilio_from {sender};
    twostep_ntfy_server {ntfy};
    twostep_ntfy_token_file {d}/ntfy.token;
    twostep_public_url http://127.0.0.1:{port};
    twostep_duo_timeout 3s;

    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {key};
        twostep_lockout 3 60s address=1000;
        twostep_enroll on;
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(users=users, site=SITE, twilio=twilio.base, account=ACCOUNT,
           d=d, sender=FROM, ntfy=ntfy.base, port=port, key=key,
           proxy=proxy_to(app.port))
    return main_conf(d / "nginx", MODULE, body, workers=2)


@pytest.fixture(scope="module")
def twilio(workdir):
    s = twilio_standin(Path(tempfile.mkdtemp(prefix="twilio-", dir=workdir)),
                       ACCOUNT, TOKEN)
    yield s
    s.stop()
    assert TOKEN not in s.log_text()


@pytest.fixture(scope="module")
def ntfy(workdir):
    s = ntfy_standin(Path(tempfile.mkdtemp(prefix="ntfy-", dir=workdir)),
                     NTFY_TOKEN)
    yield s
    s.stop()
    assert NTFY_TOKEN not in s.log_text()


@pytest.fixture(scope="module")
def pool():
    return Pool()


@pytest.fixture(scope="module")
def site(workdir, app, pool, twilio, ntfy):
    remember_sensitive("secret", TOKEN)
    remember_sensitive("secret", NTFY_TOKEN)
    d = Path(tempfile.mkdtemp(prefix="selfhosted-", dir=workdir))
    d.chmod(0o755)
    port = free_port()
    users = pool.write(d / "users.json")
    key = write_key(d / "cookie.key")
    nginx = Nginx(d / "nginx", site_conf(d, users, key, port, app, twilio,
                                         ntfy), ports=[port])
    nginx.start()
    nginx.base = "http://127.0.0.1:%d" % port
    yield nginx
    mark = nginx.log_size()
    nginx.stop()
    check_log(nginx, mark)
    log = nginx.log_text()
    assert TOKEN not in log and NTFY_TOKEN not in log


@pytest.fixture(autouse=True)
def normal(request):
    """Each stand-in the test uses answers normally before and after it."""
    used = [request.getfixturevalue(n) for n in ("twilio", "ntfy")
            if n in request.fixturenames]
    for s in used:
        assert s.control("/standin/mode", {"mode": "normal"}).ok
    yield
    for s in used:
        s.control("/standin/mode", {"mode": "normal"})


def browser(site):
    return Browser(site.base)


def assert_signed_in(b, r, method, user, path="/app/"):
    assert r.status_code == 303, snippet(r)
    assert location(r).path == path, snippet(r)
    seen = b.app_view(path)
    assert seen["headers"]["X-Remote-User"] == user.name
    assert seen["headers"]["X-Twostep-Method"] == method


def assert_not_signed_in(b):
    assert b.cookie("twostep_session") is None
    assert b.get("/app/").status_code == 302


# ------------------------------------------------------------ text message

def texts(twilio, user):
    r = requests.get(twilio.base + "/standin/messages",
                     params={"to": user.phone}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def texted_code(twilio, user):
    body = texts(twilio, user)[-1]["body"]
    m = re.search(r"\b(\d{6})\b", body)
    assert m, body
    remember_sensitive("code", m.group(1))
    return m.group(1)


def send_text(b, user):
    """Password, "Text my phone", "Send code": the code page."""
    r = choose_method(b, password_step(b, "/app/", user), "sms")
    assert r.status_code == 200, snippet(r)
    assert Page(r).heading == "Verify your identity", snippet(r)
    return press_send(b, r)


def test_phone_offers_text_and_call_when_twilio_is_configured(site, pool):
    user = pool.take("sms")
    r = password_step(browser(site), "/app/", user)
    assert offered_methods(r) == {"totp", "sms", "call"}
    push_user = pool.take("push")
    r = password_step(browser(site), "/app/", push_user)
    assert offered_methods(r) == {"totp", "push"}


def test_security_info_lists_text_and_call_with_twilio(site, pool):
    user = pool.take("sms")
    b = browser(site)
    b.sign_in("/app/", user)
    r = b.get("/.twostep/security-info")
    assert r.status_code == 200, snippet(r)
    text = Page(r).text
    assert "Text my phone" in text and "Call my phone" in text
    assert "Not usable yet" not in text
    assert user.phone not in r.text


def test_texted_code_signs_in(site, pool, twilio):
    user = pool.take("sms")
    b = browser(site)
    r = send_text(b, user)
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert page.heading == "Enter code"
    # The masked number, never the whole of it.
    assert "We texted a code to +31" in page.text, page.text
    assert user.phone[-2:] in page.text and user.phone not in r.text
    assert "Send a new code" in page.text

    sent = texts(twilio, user)
    assert len(sent) == 1
    assert sent[0]["from"] == FROM and sent[0]["to"] == user.phone
    assert SITE in sent[0]["body"] and "Never share" in sent[0]["body"]
    r = b.submit_code(r, texted_code(twilio, user), method="sms")
    assert_signed_in(b, r, "sms", user)


def test_wrong_code_is_refused_and_counted(site, pool, twilio):
    user = pool.take("sms")
    b = browser(site)
    r = send_text(b, user)
    code = texted_code(twilio, user)
    wrong = "%06d" % ((int(code) + 1) % 1000000)
    r = b.submit_code(r, wrong, method="sms")
    assert r.status_code == 403, snippet(r)
    assert "That code didn't work" in Page(r).text
    assert_not_signed_in(b)
    # Still within the lockout: the right code works.
    r = b.submit_code(r, code, method="sms")
    assert_signed_in(b, r, "sms", user)


def test_wrong_codes_lock_the_account(site, pool, twilio):
    user = pool.take("sms")
    b = browser(site)
    page = send_text(b, user)
    code = texted_code(twilio, user)
    for i in range(3):
        r = b.submit_code(page, "%06d" % ((int(code) + 1 + i) % 1000000),
                          method="sms")
    assert r.status_code == 429, snippet(r)
    assert Page(r).heading == "Too many attempts"
    # Locked: even the right code does not open now.
    r = b.submit_code(page, code, method="sms")
    assert r.status_code == 429, snippet(r)
    assert_not_signed_in(b)


def test_code_works_once(site, pool, twilio):
    """A copy of the pending sign-in cannot use a code again."""
    user = pool.take("sms")
    b = browser(site)
    r = send_text(b, user)
    code = texted_code(twilio, user)
    thief = browser(site)
    thief.set_cookie("twostep_pending", b.cookie("twostep_pending"))
    form = dict(Page(r).form(VERIFY).fields)
    assert_signed_in(b, b.submit_code(r, code, method="sms"), "sms", user)
    form.update(code=code, method="sms")
    r = thief.post(VERIFY, form)
    assert r.status_code == 403, snippet(r)
    assert_not_signed_in(thief)


def test_other_users_code_is_refused(site, pool, twilio):
    alice, bob = pool.take("sms"), pool.take("sms")
    a, b = browser(site), browser(site)
    send_text(a, alice)
    r = send_text(b, bob)
    r = b.submit_code(r, texted_code(twilio, alice), method="sms")
    assert r.status_code == 403, snippet(r)
    assert_not_signed_in(b)


def test_resend_replaces_the_code(site, pool, twilio):
    user = pool.take("sms")
    b = browser(site)
    r = send_text(b, user)
    first = texted_code(twilio, user)
    resend = [f for f in Page(r).forms if f.fields.get("action") == "send"]
    assert len(resend) == 1, Page(r).forms
    r = b.post(VERIFY, dict(resend[0].fields))
    assert r.status_code == 200, snippet(r)
    second = texted_code(twilio, user)
    assert len(texts(twilio, user)) == 2
    if first != second:
        bad = b.submit_code(r, first, method="sms")
        assert bad.status_code == 403, snippet(bad)
    assert_signed_in(b, b.submit_code(r, second, method="sms"), "sms", user)


@pytest.mark.parametrize("mode", ["http500", "http429", "garbage", "down"])
def test_twilio_failing_fails_closed(site, pool, twilio, mode):
    user = pool.take("sms")
    b = browser(site)
    assert twilio.control("/standin/mode", {"mode": mode, "count": 1}).ok
    r = send_text(b, user)
    assert r.status_code == 503, snippet(r)
    assert "The verification service is unavailable right now" in \
        Page(r).text
    assert_not_signed_in(b)
    assert "verification service" in site.log_text()


# ------------------------------------------------------------------ push

def pushes(ntfy, user):
    r = requests.get(ntfy.base + "/standin/messages",
                     params={"topic": user.topic}, timeout=10)
    assert r.status_code == 200, r.text
    return r.json()["messages"]


def tap(ntfy, msg, label):
    r = ntfy.control("/standin/action", {"id": msg["id"], "label": label})
    assert r.status_code == 200, r.text
    return r.json()


def shown_number(wait_page):
    m = re.search(r'class="number">(\d\d)<', wait_page.text)
    assert m, snippet(wait_page, 3000)
    return m.group(1)


def approval_link(ntfy, user):
    msgs = pushes(ntfy, user)
    assert len(msgs) == 1, msgs
    return msgs[0], tap(ntfy, msgs[0], "Approve")["url"]


def check(b, wait_page):
    return b.get(refresh_url(wait_page))


def test_push_approved_with_the_right_number(site, pool, ntfy):
    user = pool.take("push")
    b = browser(site)
    r = start_push(b, "/app/", user)
    number = shown_number(r)
    msg, url = approval_link(ntfy, user)
    assert msg["title"] == "Sign in to %s?" % SITE
    assert user.name in msg["message"] and "127.0.0.1" in msg["message"]
    assert [a["label"] for a in msg["actions"]] == ["Approve", "Deny"]

    status = b.get(wait_status_url(r))
    assert status.json() == {"state": "waiting"}

    # The phone: no cookies, no script.
    phone = requests.Session()
    page = phone.get(url, timeout=10)
    assert page.status_code == 200, snippet(page)
    p = Page(page)
    assert p.heading == "Approve sign-in?"
    assert user.name in p.text and SITE in p.text
    assert "<script" not in page.text
    form = dict(p.forms[0].fields)
    form["number"] = number
    done = phone.post(url.split("?")[0], data=form, timeout=10)
    assert done.status_code == 200, snippet(done)
    assert Page(done).heading == "Sign-in approved"

    assert b.get(wait_status_url(r)).json() == {"state": "done"}
    assert_signed_in(b, check(b, r), "push", user)

    # The link worked once.
    again = phone.get(url, timeout=10)
    assert again.status_code == 403
    assert "This link no longer works" in Page(again).text
    again = phone.post(url.split("?")[0], data=form, timeout=10)
    assert again.status_code == 403


def test_push_wrong_number_refuses_and_logs(site, pool, ntfy):
    user = pool.take("push")
    b = browser(site)
    r = start_push(b, "/app/", user)
    number = int(shown_number(r))
    _, url = approval_link(ntfy, user)
    phone = requests.Session()
    form = dict(Page(phone.get(url, timeout=10)).forms[0].fields)
    form["number"] = str(10 + (number - 10 + 1) % 90)
    mark = site.log_size()
    done = phone.post(url.split("?")[0], data=form, timeout=10)
    assert done.status_code == 403, snippet(done)
    assert "That was not the number" in Page(done).text
    assert "possible push fatigue" in site.log_text(mark)
    r = check(b, r)
    assert r.status_code == 403, snippet(r)
    assert "did not match" in Page(r).text
    assert_not_signed_in(b)
    # The right number afterwards changes nothing.
    form["number"] = str(number)
    assert phone.post(url.split("?")[0], data=form,
                      timeout=10).status_code == 403
    assert_not_signed_in(b)


def test_push_unreadable_number_asks_again(site, pool, ntfy):
    user = pool.take("push")
    b = browser(site)
    r = start_push(b, "/app/", user)
    _, url = approval_link(ntfy, user)
    phone = requests.Session()
    form = dict(Page(phone.get(url, timeout=10)).forms[0].fields)
    form["number"] = "x"
    again = phone.post(url.split("?")[0], data=form, timeout=10)
    assert again.status_code == 400
    assert "two-digit number" in Page(again).text
    form["number"] = shown_number(r)
    assert phone.post(url.split("?")[0], data=form,
                      timeout=10).status_code == 200
    assert_signed_in(b, check(b, r), "push", user)


def test_push_denied_on_the_phone(site, pool, ntfy):
    user = pool.take("push")
    b = browser(site)
    r = start_push(b, "/app/", user)
    msgs = pushes(ntfy, user)
    res = tap(ntfy, msgs[0], "Deny")
    assert res["status"] == 200, res
    r = check(b, r)
    assert r.status_code == 403, snippet(r)
    assert "denied" in Page(r).text
    assert_not_signed_in(b)
    # Deny again: refused, and the approval link is dead too.
    assert tap(ntfy, msgs[0], "Deny")["status"] == 403
    url = tap(ntfy, msgs[0], "Approve")["url"]
    assert requests.get(url, timeout=10).status_code == 403


def test_push_reported_on_the_approval_page_refuses_and_pauses(site, pool,
                                                               ntfy):
    """"I didn't try to sign in" on the approval page does what 0 does on
    a call: the browser is told only that the sign-in was refused and
    keeps the app code; pushes pause for the user (twostep_fraud_pause),
    so a new sign-in offers no push and a posted one reaches no phone."""
    user = pool.take("push")
    b = browser(site)
    mark = site.log_size()
    r = start_push(b, "/app/", user)
    _, url = approval_link(ntfy, user)
    phone = requests.Session()
    page = phone.get(url, timeout=10)
    assert "I didn&#39;t try to sign in" in page.text or \
        "I didn't try to sign in" in page.text, snippet(page, 3000)
    report = [f for f in Page(page).forms
              if f.fields.get("action") == "fraud"]
    assert len(report) == 1, snippet(page, 3000)
    done = phone.post(url.split("?")[0], data=dict(report[0].fields),
                      timeout=10)
    assert done.status_code == 403, snippet(done)
    assert Page(done).heading == "Sign-in reported"
    assert "change it" in Page(done).text
    assert 'sign-in reported as fraud on the approval page, user: "%s"' \
        % user.name in site.log_text(mark)

    r = check(b, r)
    assert r.status_code == 403, snippet(r)
    text = Page(r).text
    assert "This sign-in was refused" in text and "fraud" not in text
    assert offered_methods(r) == {"totp"}
    assert_not_signed_in(b)

    # The link is used, whatever is pressed next.
    assert phone.post(url.split("?")[0], data=dict(report[0].fields),
                      timeout=10).status_code == 403

    b = browser(site)
    r = password_step(b, "/app/", user)
    assert offered_methods(r) == {"totp"}, snippet(r, 3000)
    data = dict(Page(r).form(VERIFY).fields)
    data.pop("code", None)
    data.update(action="send", method="push")
    held = b.post(VERIFY, data)
    assert held.status_code == 429, snippet(held)
    assert "Try again in 15 minutes" in Page(held).text or \
        "Try again in 14 minutes" in Page(held).text, snippet(held, 3000)
    assert len(pushes(ntfy, user)) == 1
    assert_not_signed_in(b)


def test_stale_pending_cookie_replaces_no_other_browsers_push(site, pool,
                                                             ntfy):
    """"Send request" again from a copy of a pending sign-in whose push was
    answered (a second browser with the same password), while another
    browser's push waits: refused, no second push reaches the phone (one
    at a time, OWASP ASVS 2.8.x); the waiting browser's own "send another"
    still replaces its push."""
    user = pool.take("push")
    first = browser(site)
    page = choose_method(first, password_step(first, "/app/", user), "push")
    r = first.follow(press_send(first, page))
    old = first.cookie("twostep_pending")
    assert tap(ntfy, pushes(ntfy, user)[0], "Deny")["status"] == 200
    assert check(first, r).status_code == 403

    second = browser(site)
    again = choose_method(second, password_step(second, "/app/", user),
                          "push")
    waiting = second.follow(press_send(second, again))
    assert waiting.status_code == 200, snippet(waiting)
    assert len(pushes(ntfy, user)) == 2

    stale = browser(site)
    stale.set_cookie("twostep_pending", old)
    held = press_send(stale, page)
    assert held.status_code == 429, snippet(held)
    assert "A request is already waiting on your phone" in Page(held).text, \
        snippet(held, 3000)
    assert len(pushes(ntfy, user)) == 2
    assert second.get(wait_status_url(waiting)).json() == \
        {"state": "waiting"}

    mine = press_send(second, again)
    assert mine.status_code == 303, snippet(mine)
    assert len(pushes(ntfy, user)) == 3


def test_forged_approval_links_are_refused(site, pool, ntfy):
    user = pool.take("push")
    b = browser(site)
    r = start_push(b, "/app/", user)
    _, url = approval_link(ntfy, user)
    base, token = url.split("?t=")
    forged = token[:-3] + ("AAA" if not token.endswith("AAA") else "BBB")
    for t in (forged, "", "x.y.z"):
        assert requests.get(base + "?t=" + t, timeout=10).status_code == 403
        assert requests.post(base.replace("approve", "deny") + "?t=" + t,
                             timeout=10).status_code == 403
    assert b.get(wait_status_url(r)).json() == {"state": "waiting"}


@pytest.mark.parametrize("mode", ["http500", "http429", "garbage"])
def test_ntfy_failing_fails_closed(site, pool, ntfy, mode):
    user = pool.take("push")
    b = browser(site)
    assert ntfy.control("/standin/mode", {"mode": mode, "count": 1}).ok
    r = choose_method(b, password_step(b, "/app/", user), "push")
    r = press_send(b, r)
    assert r.status_code == 503, snippet(r)
    assert "The verification service is unavailable right now" in \
        Page(r).text
    assert_not_signed_in(b)


# ------------------------------------------------------------- phone call

def twilio_signature(token, url, params):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(),
                                     hashlib.sha1).digest()).decode()


def the_call(twilio, user):
    r = requests.get(twilio.base + "/standin/calls",
                     params={"to": user.phone}, timeout=10)
    calls = r.json()["calls"]
    assert len(calls) == 1, calls
    return calls[0]


def press(twilio, call, digits, signature="valid"):
    r = twilio.control("/standin/press", {"call": call["sid"],
                                          "digits": digits,
                                          "signature": signature})
    assert r.status_code == 200, r.text
    return r.json()


def test_call_pound_key_signs_in(site, pool, twilio):
    user = pool.take("call")
    b = browser(site)
    r = start_push(b, "/app/", user, method="call")
    call = the_call(twilio, user)
    assert call["from"] == FROM
    said = " ".join(call["said"])
    assert SITE in said and user.name in said and "pound key" in said
    res = press(twilio, call, "#")
    assert res["status"] == 200, res
    assert "Goodbye" in " ".join(res["said"])
    assert_signed_in(b, check(b, r), "call", user)


def test_call_pages_and_the_call_name_the_pound_key(site, pool, twilio):
    """Twilio's call asks for the pound key: the "Call me" page, the
    waiting page and the call itself say the same; "I've approved it"
    before the key is pressed says nothing has arrived yet."""
    user = pool.take("call")
    b = browser(site)
    page = choose_method(b, password_step(b, "/app/", user), "call")
    assert "Answer it and press the pound key (#) to approve." in \
        Page(page).text, snippet(page, 3000)
    wait = b.follow(press_send(b, page))
    assert Page(wait).heading == "Answer the call and press the pound key (#)"
    assert "press the pound key (#) to approve" in Page(wait).text
    assert "any key" not in wait.text
    said = " ".join(the_call(twilio, user)["said"])
    assert "press the pound key" in said and "any key" not in said

    early = b.get(re.search(r'href="([^"]*approved=1)"',
                            wait.text).group(1).replace("&amp;", "&"))
    assert early.status_code == 200, snippet(early)
    assert "No approval has arrived yet." in Page(early).text
    press(twilio, the_call(twilio, user), "#")
    assert_signed_in(b, check(b, wait), "call", user)


@pytest.mark.parametrize("digits,text", [("1", "denied"),
                                         ("0", "This sign-in was refused")])
def test_call_other_keys_refuse(site, pool, twilio, digits, text):
    user = pool.take("call")
    b = browser(site)
    r = start_push(b, "/app/", user, method="call")
    res = press(twilio, the_call(twilio, user), digits)
    assert res["status"] == 200, res
    r = check(b, r)
    assert r.status_code == 403, snippet(r)
    assert text in Page(r).text
    assert_not_signed_in(b)


def test_call_key_0_reports_fraud_and_pauses_calls(site, pool, twilio):
    """0 on the call: the browser is told only that the sign-in was
    refused and keeps the app code; the call-back itself pauses calls for
    the user (twostep_fraud_pause, 15 minutes by default), so a new
    sign-in offers no call and a posted one reaches no phone."""
    user = pool.take("call")
    b = browser(site)
    mark = site.log_size()
    r = start_push(b, "/app/", user, method="call")
    res = press(twilio, the_call(twilio, user), "0")
    assert res["status"] == 200, res
    assert "refused" in " ".join(res["said"])
    assert 'sign-in reported as fraud on the call, user: "%s"' % user.name \
        in site.log_text(mark)

    r = check(b, r)
    assert r.status_code == 403, snippet(r)
    text = Page(r).text
    assert "This sign-in was refused" in text and "fraud" not in text
    assert offered_methods(r) == {"totp"}

    b = browser(site)
    r = password_step(b, "/app/", user)
    assert offered_methods(r) == {"totp", "sms"}, snippet(r, 3000)
    held = press_send(b, choose_method(b, r, "sms"), method="call")
    assert held.status_code == 429, snippet(held)
    assert "Try again in 15 minutes" in Page(held).text or \
        "Try again in 14 minutes" in Page(held).text, snippet(held, 3000)
    the_call(twilio, user)   # still the one call
    assert_not_signed_in(b)


@pytest.mark.parametrize("signature", ["wrong", "omit"])
def test_forged_or_unsigned_callback_changes_nothing(site, pool, twilio,
                                                     signature):
    user = pool.take("call")
    b = browser(site)
    r = start_push(b, "/app/", user, method="call")
    res = press(twilio, the_call(twilio, user), "#", signature=signature)
    assert res["status"] == 403, res
    assert b.get(wait_status_url(r)).json() == {"state": "waiting"}
    assert_not_signed_in(b)


def test_replayed_callback_is_refused(site, pool, twilio):
    user = pool.take("call")
    b = browser(site)
    r = start_push(b, "/app/", user, method="call")
    call = the_call(twilio, user)
    action = call["gather"]["action"]
    # Deny first, signed as Twilio would...
    params = {"AccountSid": ACCOUNT, "CallSid": call["sid"], "Digits": "1",
              "From": FROM, "To": user.phone}
    headers = {"X-Twilio-Signature": twilio_signature(TOKEN, action, params)}
    first = requests.post(action, data=params, headers=headers, timeout=10)
    assert first.status_code == 200, first.text
    # ...then the same request again, and a signed '#' for the same link.
    assert requests.post(action, data=params, headers=headers,
                         timeout=10).status_code == 403
    params["Digits"] = "#"
    headers = {"X-Twilio-Signature": twilio_signature(TOKEN, action, params)}
    assert requests.post(action, data=params, headers=headers,
                         timeout=10).status_code == 403
    r = check(b, r)
    assert r.status_code == 403
    assert_not_signed_in(b)


def test_callback_for_another_account_is_refused(site, pool, twilio):
    user = pool.take("call")
    b = browser(site)
    r = start_push(b, "/app/", user, method="call")
    call = the_call(twilio, user)
    action = call["gather"]["action"]
    params = {"AccountSid": "AC" + "0" * 32, "CallSid": call["sid"],
              "Digits": "#", "From": FROM, "To": user.phone}
    headers = {"X-Twilio-Signature": twilio_signature(TOKEN, action, params)}
    res = requests.post(action, data=params, headers=headers, timeout=10)
    assert res.status_code == 400
    assert b.get(wait_status_url(r)).json() == {"state": "waiting"}


def test_call_failing_fails_closed(site, pool, twilio):
    user = pool.take("call")
    b = browser(site)
    assert twilio.control("/standin/mode", {"mode": "http500",
                                            "count": 1}).ok
    r = choose_method(b, password_step(b, "/app/", user), "call")
    r = press_send(b, r)
    assert r.status_code == 503, snippet(r)
    assert "The verification service is unavailable right now" in \
        Page(r).text
    assert_not_signed_in(b)
