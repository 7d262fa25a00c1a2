"""When Duo misbehaves: every fault mode of the simulator's /sim/mode, on
preauth, on auth (push and text) and on auth_status, and slower than
twostep_duo_timeout (2 s on the Duo site; the "slow" fault waits 3 s).

What the user must see: "The verification service is unavailable right
now" (503), or on the second-step page the app code with the notice "Push,
call and text are unavailable right now." -- never a session, never another
5xx, no worker crash and no [alert] (the error-log guard checks every
test). Also: the skey never reaches nginx's error log, even at debug level,
and a client that goes away while its request waits on Duo breaks nothing.
"""

import socket
import time
from urllib.parse import urlencode

import pytest

from conftest import DUO_SLOW, DuoSite
from harness import (ALERT_RE, VERIFY, WAIT, Nginx, Page, choose_method,
                     offered_methods, password_step, press_send,
                     refresh_url, send_form, snippet, start_push,
                     wait_status_url)

FAULTS = ["down", "garbage", "http500", "http429", "stat_fail",
          "truncated", "slow"]

UNAVAILABLE = "The verification service is unavailable right now"


def assert_unavailable_page(b, r):
    """503 with the notice, the methods to try again, and no session."""
    assert r.status_code == 503, snippet(r)
    page = Page(r)
    assert UNAVAILABLE in page.text, snippet(r, 3000)
    assert b.cookie("twostep_session") is None
    assert b.get("/app/").status_code == 302


@pytest.fixture(autouse=True)
def same_worker(duo_site):
    """No fault may cost the Duo site's worker its life."""
    before = duo_site.nginx.workers()
    yield
    assert duo_site.nginx.workers() == before, "the nginx worker was replaced"


class fault:
    """`with fault(sim, mode, path):` -- requests to `path` misbehave as
    `mode` inside the block, and normal after it. The block must have
    reached Duo: a test that never got a fault proves nothing.

    (No `count`: for "down" on a reused keep-alive connection libcurl
    retries the request once on a new one, as it does for any connection
    that dies before answering, so a fault limited to one request would
    be absorbed by the retry.)"""

    def __init__(self, sim, mode, path, **options):
        self.sim, self.mode, self.path = sim, mode, path
        self.options = options

    def __enter__(self):
        self.mark = self.sim.log_size()
        self.sim.set_mode(self.mode, path=self.path, **self.options)
        return self

    def hits(self):
        # A slow request answered after nginx gave up is logged by its
        # outcome and "client-gone" (the simulator's log line then no
        # longer says "fault=slow").
        return [c for c in self.sim.api_calls(self.mark, settle=False)
                if c[1] == self.path and (
                    "fault=" + self.mode in c[3]
                    or (self.mode == "slow" and "client-gone" in c[3]))]

    def __exit__(self, *exc):
        self.sim.set_mode("normal")
        if exc[0] is None:
            # The simulator logs a request when it is done with it: a slow
            # one after its wait, which nginx did not sit out.
            deadline = time.monotonic() + (DUO_SLOW + 2 if self.mode == "slow"
                                           else 2)
            while not self.hits() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert self.hits(), "the %s fault on %s was never hit: %r" % (
                self.mode, self.path, self.sim.api_calls(self.mark))
        return False


# ---------------------------------------------------------------- preauth

@pytest.mark.parametrize("mode", FAULTS)
def test_preauth_fault_user_with_app_code(duo_site, duo_pool, duo_normal,
                                          mode):
    """Preauth fails: the second-step page still comes, with the app code
    only and the notice; the code signs in."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    with fault(duo_normal, mode, "/auth/v2/preauth"):
        t = time.monotonic()
        r = password_step(b, "/app/", user)
        took = time.monotonic() - t
    assert r.status_code == 200, snippet(r)
    page = Page(r)
    assert "Push, call and text are unavailable right now." in page.text
    assert offered_methods(r) == {"totp"}
    if mode == "slow":
        # twostep_duo_timeout 2s, not the simulator's 4 s.
        assert 1.8 < took < DUO_SLOW, took
    r = b.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Twostep-Method"] == "totp"


@pytest.mark.parametrize("mode", FAULTS)
def test_preauth_fault_user_without_app_code(duo_site, duo_pool, duo_normal,
                                             mode):
    """Preauth fails for a user who has nothing but Duo: 503
    "Verification service unavailable"."""
    user = duo_pool.take("notp")
    b = duo_site.browser()
    with fault(duo_normal, mode, "/auth/v2/preauth"):
        r = password_step(b, "/app/", user)
    assert r.status_code == 503, snippet(r)
    page = Page(r)
    assert page.heading == "Verification service unavailable"
    assert UNAVAILABLE in page.text
    assert b.cookie("twostep_session") is None


# ------------------------------------------------------------------- auth

@pytest.mark.parametrize("mode", FAULTS)
def test_auth_fault_on_push(duo_site, duo_pool, duo_normal, mode):
    """"Send request" while /auth fails: 503 with the notice, no session,
    and the failed attempt does not leave the user "waiting" (a new push
    can go at once)."""
    user = duo_pool.take("notp")
    sim = duo_normal
    b = duo_site.browser()
    page = choose_method(b, password_step(b, "/app/", user), "push")
    with fault(sim, mode, "/auth/v2/auth"):
        t = time.monotonic()
        r = press_send(b, page)
        took = time.monotonic() - t
    assert_unavailable_page(b, r)
    # The page lets the user try again: the same send form.
    assert send_form(r)["method"] == "push"
    if mode == "slow":
        assert 1.8 < took < DUO_SLOW, took
        # The simulator got the push late (after nginx gave up on it): it
        # may be waiting on the phone, but nginx holds no transaction, so
        # approving it signs nobody in.
        time.sleep(DUO_SLOW - took + 0.5)
        if sim.try_respond(user.name, "approve") == 200:
            assert b.get(WAIT + "?return_to=%2Fapp%2F&check=1") \
                .status_code in (302, 303)
            assert b.cookie("twostep_session") is None
    # Retry once Duo is back: it works, and signs in.
    wait = start_push(b, "/app/", user)
    sim.respond(user.name, "approve")
    r = b.get(refresh_url(wait))
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Twostep-Method"] == "push"


@pytest.mark.parametrize("mode", ["down", "garbage", "http500", "truncated",
                                  "slow"])
def test_auth_fault_on_text(duo_site, duo_pool, duo_normal, mode):
    """"Send code" while /auth fails, then the code check failing: 503
    each time, no session."""
    user = duo_pool.take("auth")
    sim = duo_normal
    b = duo_site.browser()
    page = choose_method(b, password_step(b, "/app/", user), "sms")
    with fault(sim, mode, "/auth/v2/auth"):
        r = press_send(b, page)
    assert_unavailable_page(b, r)

    r = press_send(b, r)
    assert r.status_code == 200, snippet(r)
    code = sim.last_sms(user.name)["passcode"]
    with fault(sim, mode, "/auth/v2/auth"):
        r = b.submit_code(r, code, method="sms")
    assert_unavailable_page(b, r)


# ------------------------------------------------------------ auth_status

@pytest.mark.parametrize("mode", ["down", "garbage", "http500", "http429",
                                  "stat_fail", "truncated"])
def test_auth_status_fault(duo_site, duo_pool, duo_normal, mode):
    """The push was approved, but the check that would find out fails: no
    session (503), the page's script is told to move on ("done"), and a
    later check, with Duo back, signs in."""
    user = duo_pool.take("auth")
    sim = duo_normal
    b = duo_site.browser()
    wait = start_push(b, "/app/", user)
    sim.respond(user.name, "approve")
    with fault(sim, mode, "/auth/v2/auth_status"):
        status = b.get(wait_status_url(wait))
    assert status.status_code == 200, snippet(status)
    assert status.json() == {"state": "done"}

    with fault(sim, mode, "/auth/v2/auth_status"):
        r = b.get(refresh_url(wait))
    assert_unavailable_page(b, r)


def test_an_answer_that_says_allow_but_is_cut_short(duo_site, duo_pool,
                                                    duo_normal):
    """"truncated" sends the first half of {"stat": "OK", "response":
    {"result": "allow", ...}} with the full Content-Length: on the code
    check that must not be taken for an allow."""
    user = duo_pool.take("auth")
    b = duo_site.browser()
    page = choose_method(b, password_step(b, "/app/", user), "sms")
    r = press_send(b, page)
    with fault(duo_normal, "truncated", "/auth/v2/auth"):
        r = b.submit_code(r, "1234567", method="sms")
    assert_unavailable_page(b, r)


def test_every_endpoint_down_at_once(duo_site, duo_pool, duo_normal):
    """Duo down for good (every request, no count): the user with an app
    code still gets in with it; the one without gets the 503 page."""
    duo_normal.set_mode("down")
    user = duo_pool.take("auth")
    b = duo_site.browser()
    r = password_step(b, "/app/", user)
    assert "Push, call and text are unavailable right now." in \
        Page(r).text
    # A push forced anyway (the page did not offer it): refused, and
    # nothing is sent for it.
    mark = duo_normal.log_size()
    data = dict(Page(r).form(VERIFY).fields, method="push", action="send")
    r2 = b.post(VERIFY, data)
    assert r2.status_code in (403, 503), snippet(r2)
    assert b.cookie("twostep_session") is None
    assert not [c for c in duo_normal.api_calls(mark)
                if c[1] == "/auth/v2/auth"]
    r = b.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    other = duo_pool.take("notp")
    b = duo_site.browser()
    r = password_step(b, "/app/", other)
    assert r.status_code == 503, snippet(r)


# ------------------------------------------------------------------ skey

def test_skey_never_in_the_error_log(duo_site, duo_pool, duo_normal,
                                     workdir, app):
    """A run through push, text, and failures, on an nginx logging at
    debug level (Debian's nginx is built --with-debug): neither the skey
    nor the Authorization headers signed with it appear in the error log.
    (At debug level nginx itself logs request headers, cookies included,
    so this instance is checked here and not by the error-log guard.)"""
    sim = duo_normal
    site = DuoSite(workdir, app, sim, duo_pool, name="duo-debug",
                   log_level="debug")
    site.nginx.start()
    try:
        user = duo_pool.take("auth")
        b = site.browser()
        wait = start_push(b, "/app/", user)
        sim.respond(user.name, "approve")
        assert b.get(refresh_url(wait)).status_code == 303
        user = duo_pool.take("auth")
        b = site.browser()
        r = press_send(b, choose_method(b, password_step(b, "/app/", user),
                                        "sms"))
        r = b.submit_code(r, "7654321", method="sms")
        assert r.status_code == 403
        for mode in ("garbage", "http500", "down"):
            with fault(sim, mode, "/auth/v2/preauth"):
                password_step(site.browser(), "/app/",
                              duo_pool.take("auth"))
    finally:
        site.nginx.stop()
        Nginx.instances.remove(site.nginx)
    log = site.nginx.log_text()
    assert "[debug]" in log, "not a debug log: nginx without --with-debug?"
    assert "twostep: verification service: preauth failed" in log
    assert sim.skey not in log
    assert sim.skey[:16] not in log and sim.skey[-16:] not in log
    assert "Basic " + sim.ikey not in log
    assert "Authorization:" not in log
    alerts = [l for l in log.splitlines() if ALERT_RE.search(l)]
    assert not alerts, alerts
    assert sim.skey not in sim.log_text()


# ------------------------------------------------- clients that go away

def raw_send(port, method, target, cookie, body=b""):
    """Opens a connection, sends one request, and returns the socket
    without reading the answer."""
    s = socket.create_connection(("127.0.0.1", port), timeout=10)
    req = ("%s %s HTTP/1.1\r\nHost: 127.0.0.1:%d\r\nCookie: %s\r\n"
           % (method, target, port, cookie))
    if method == "POST":
        req += ("Content-Type: application/x-www-form-urlencoded\r\n"
                "Content-Length: %d\r\n" % len(body))
    s.sendall(req.encode() + b"\r\n" + body)
    return s


def test_client_gone_while_parked_on_a_slow_provider(duo_site, duo_pool,
                                                     duo_normal):
    """Three clients leave while their requests wait on Duo (preauth slow,
    auth slow, and a long-polled status): the worker stays up, answers
    everyone after, no [alert], and the user can carry on."""
    sim = duo_normal
    workers = duo_site.nginx.workers()
    port = duo_site.port
    mark = duo_site.nginx.log_size()

    # 1. The push page's "Send request", with /auth slow.
    user = duo_pool.take("auth")
    b = duo_site.browser()
    page = choose_method(b, password_step(b, "/app/", user), "push")
    body = urlencode(send_form(page)).encode()
    cookie = "twostep_pending=" + b.cookie("twostep_pending")
    sim.set_mode("slow", seconds=DUO_SLOW, path="/auth/v2/auth", count=1)
    s1 = raw_send(port, "POST", VERIFY, cookie, body)

    # 2. The second-step page, with preauth slow (another user).
    other = duo_pool.take("auth")
    b2 = duo_site.browser()
    r = b2.follow(b2.get("/app/"))
    r = b2.submit_password(r, other.name, other.password)
    assert r.status_code == 303, snippet(r)
    time.sleep(0.3)    # the first request is parked and has used the fault
    sim.set_mode("slow", seconds=DUO_SLOW, path="/auth/v2/preauth", count=1)
    s2 = raw_send(port, "GET", r.headers["Location"],
                  "twostep_pending=" + b2.cookie("twostep_pending"))

    # 3. A status long-poll (a third user, push waiting).
    third = duo_pool.take("auth")
    b3 = duo_site.browser()
    wait = start_push(b3, "/app/", third)
    b3.get(wait_status_url(wait))          # hears "pushed" at once
    s3 = raw_send(port, "GET", wait_status_url(wait),
                  "twostep_pending=" + b3.cookie("twostep_pending"))

    time.sleep(0.5)
    for s in (s1, s2, s3):
        s.close()                      # the clients leave
    time.sleep(DUO_SLOW + 0.5)         # every Duo answer has come (or not)

    # Nothing broke: the same worker, unrelated requests fine.
    assert duo_site.nginx.workers() == workers
    for _ in range(5):
        r = duo_site.browser().get("/static/hello.txt")
        assert r.status_code == 200 and r.text == "hello, static\n"
    # And the users carry on: the third approves and signs in.
    sim.respond(third.name, "approve")
    r = b3.get(refresh_url(wait))
    assert r.status_code == 303, snippet(r)
    assert b3.app_view("/app/")["headers"]["X-Twostep-Method"] == "push"
    # The second sees the page again.
    r = b2.get(VERIFY + "?return_to=%2Fapp%2F")
    assert r.status_code == 200, snippet(r)
    assert "push" in offered_methods(r)
    log = duo_site.nginx.log_text(mark)
    assert "exited on signal" not in log, log


def test_many_clients_leave_during_long_polls(duo_site, duo_pool,
                                              duo_normal):
    """Ten status long-polls for one waiting push, all abandoned at once
    while Duo holds them: the worker carries on and the push still
    signs in."""
    sim = duo_normal
    workers = duo_site.nginx.workers()
    user = duo_pool.take("auth")
    b = duo_site.browser()
    wait = start_push(b, "/app/", user)
    b.get(wait_status_url(wait))
    cookie = "twostep_pending=" + b.cookie("twostep_pending")
    socks = [raw_send(duo_site.port, "GET", wait_status_url(wait), cookie)
             for _ in range(10)]
    time.sleep(0.5)
    for s in socks:
        s.close()
    time.sleep(0.2)
    assert duo_site.nginx.workers() == workers
    sim.respond(user.name, "approve")
    r = b.get(refresh_url(wait))
    assert r.status_code == 303, snippet(r)
    time.sleep(2)                     # the abandoned polls finish at Duo
    assert duo_site.nginx.workers() == workers
    assert duo_site.browser().get("/static/hello.txt").status_code == 200


def test_text_code_checks_abandoned_while_duo_answers_release_their_attempt(
        duo_site, duo_pool, duo_normal):
    """A text-message code check reserves a lockout attempt while Duo
    decides; a client that leaves before Duo answers never sees the
    outcome, so the request's cleanup gives the attempt back. Six such
    abandoned posts (twostep_lockout 3 on this site: without the release
    the fourth would already be refused) leave the account unlocked: the
    texted code still signs in."""
    sim = duo_normal
    user = duo_pool.take("auth")
    b = duo_site.browser()
    page = choose_method(b, password_step(b, "/app/", user), "sms")
    r = press_send(b, page)
    assert r.status_code == 200, snippet(r)
    right = sim.last_sms(user.name)["passcode"]
    # A wrong code in the abandoned posts: Duo may still check them after
    # nginx gave up, and must not spend the right one.
    wrong = "1000000" if right != "1000000" else "2000000"
    form = Page(r).form(VERIFY)
    body = urlencode(dict(form.fields, code=wrong, method="sms")).encode()
    cookie = "twostep_pending=" + b.cookie("twostep_pending")
    mark = sim.log_size()
    workers = duo_site.nginx.workers()

    sim.set_mode("slow", seconds=DUO_SLOW, path="/auth/v2/auth")
    try:
        for _ in range(6):
            s = raw_send(duo_site.port, "POST", VERIFY, cookie, body)
            time.sleep(1)     # parked on Duo, which sits on it for 3 s
            s.close()         # the client leaves before the answer
            time.sleep(0.2)
    finally:
        sim.set_mode("normal")
    time.sleep(DUO_SLOW + 0.5)         # the slow checks are over at Duo
    checks = [c for c in sim.api_calls(mark) if c[1] == "/auth/v2/auth"]
    assert len(checks) == 6, checks    # every post did reach Duo
    assert all("fault=slow" in c[3] or "client-gone" in c[3]
               for c in checks), checks
    assert duo_site.nginx.workers() == workers

    # Not locked: the right code signs in.
    r = b.submit_code(r, right, method="sms")
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Twostep-Method"] == "sms"
