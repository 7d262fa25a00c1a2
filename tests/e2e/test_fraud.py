"""Fraud reported from the phone, end to end: the real nginx with the
module, examples/duo_simulator.py as Duo (its control API plays the phone
and reports the push as fraud), the legacy app behind. What the browser is
told, which methods this sign-in and the next ones keep, and what the
administrator sees (error log, audit log, metrics). The call's key 0
(Twilio) is in test_selfhosted.py, the pause across hosts in
test_redis.py."""

import json
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import DuoSite, check_log
from harness import (REPO, VERIFY, Page, choose_method, location,
                     offered_methods, page_links, password_step, press_send,
                     refresh_url, snippet, start_push)

TOOL = Path(os.environ.get("TWOSTEP_TOOL", REPO / "build" / "twostep-user"))
PAUSED = "Requests to your phone are paused for now."
REFUSED = "This sign-in was refused."


class FraudSite(DuoSite):
    """The Duo site with `extra` in its server (twostep_fraud_pause), an
    audit log and /metrics."""

    def __init__(self, workdir, app, sim, pool, extra, name):
        self.extra = extra
        self.audit = Path(workdir) / ("%s-audit.log" % name)
        super().__init__(workdir, app, sim, pool, name=name)

    def body(self):
        return super().body().replace(
            "twostep_lockout 3 60s address=1000;",
            "twostep_lockout 3 60s address=1000;\n"
            "        twostep_audit_log %s;\n        %s\n"
            "        location = /metrics { twostep_metrics; }"
            % (self.audit, self.extra))

    def audit_events(self, user):
        if not self.audit.exists():
            return []
        return [e for e in map(json.loads,
                               self.audit.read_text().splitlines())
                if e["user"] == user.name]

    def metric(self, name):
        text = requests.get(self.url + "/metrics", timeout=10).text
        m = re.search(r"^%s (\d+)$" % re.escape(name), text, re.M)
        assert m, text
        return int(m.group(1))


def make_site(workdir, app, duo_sim, duo_pool, extra, name):
    s = FraudSite(workdir, app, duo_sim, duo_pool, extra, name)
    s.nginx.start()
    return s


@pytest.fixture(scope="module")
def fsite(workdir, app, duo_sim, duo_pool):
    s = make_site(workdir, app, duo_sim, duo_pool,
                  "twostep_fraud_pause 10m;", "fraud")
    yield s
    mark = s.nginx.log_size()
    s.nginx.stop()
    check_log(s.nginx, mark)


def check(browser, wait_page):
    return browser.get(refresh_url(wait_page))


def report_fraud(site, user):
    """Password, "Send request", and the phone reports it: the page the
    browser then gets."""
    b = site.browser()
    r = start_push(b, "/app/", user)
    site.sim.respond(user.name, "fraud")
    return b, check(b, r)


def test_fraud_refuses_without_blame_and_keeps_the_app_code(
        fsite, duo_pool, duo_normal):
    user = duo_pool.take("auth")
    reports = fsite.metric("twostep_fraud_reports_total")
    mark = fsite.nginx.log_size()
    b, r = report_fraud(fsite, user)

    # Whoever sits at this browser may be the one reported: no blame, no
    # "you reported", only that it was refused; the app code is left.
    page = Page(r)
    assert r.status_code == 403, snippet(r)
    assert REFUSED in page.text, snippet(r, 3000)
    assert "report" not in page.text.lower() and \
        "fraud" not in page.text.lower()
    assert page.heading == "Enter code"
    assert offered_methods(r) == {"totp"}
    assert b.cookie("twostep_session") is None

    # This pending sign-in cannot reach the phone again, by link or post.
    again = b.get(VERIFY + "?method=push&return_to=/app/")
    assert offered_methods(again) == {"totp"}, snippet(again, 3000)
    before = len(fsite.sim.transactions(user.name))
    fields = dict(page.form(VERIFY).fields)
    fields.update(method="push", action="send")
    refused = b.post(VERIFY, fields)
    assert refused.status_code == 403, snippet(refused)
    fields.update(method="sms")
    assert b.post(VERIFY, fields).status_code == 403
    assert len(fsite.sim.transactions(user.name)) == before

    # The administrator sees it: error log, audit log, metrics.
    assert 'sign-in reported as fraud, user: "%s"' % user.name in \
        fsite.nginx.log_text(mark)
    events = [e for e in fsite.audit_events(user)
              if e["event"] == "fraud_report"]
    assert [(e["method"], e["result"]) for e in events] == \
        [("push", "failure")], events
    assert fsite.metric("twostep_fraud_reports_total") == reports + 1

    # The app code still signs this sign-in in.
    r = b.submit_code(again, user.code())
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Twostep-Method"] == "totp"


def test_fraud_pauses_pushes_and_calls_for_the_user(
        fsite, duo_pool, duo_normal):
    user = duo_pool.take("auth")
    report_fraud(fsite, user)

    # A new sign-in (the password is known to whoever was reported): push
    # and call are not offered, the app code and a text still are.
    b = fsite.browser()
    r = password_step(b, "/app/", user)
    assert offered_methods(r) == {"totp", "sms"}, snippet(r, 3000)

    # Posted all the same: refused with how long, nothing reaches Duo.
    before = len(fsite.sim.transactions(user.name))
    sms = choose_method(b, r, "sms")
    for method in ("push", "call"):
        held = press_send(b, sms, method=method)
        assert held.status_code == 429, snippet(held)
        text = Page(held).text
        assert PAUSED in text, snippet(held, 3000)
        # 10 minutes, less the seconds this test took so far.
        assert re.search(r"Try again in (9|10) minutes", text), text
        assert offered_methods(held) == {"totp", "sms"}
    assert len(fsite.sim.transactions(user.name)) == before

    # Another user is not affected.
    other = duo_pool.take("auth")
    b = fsite.browser()
    r = start_push(b, "/app/", other)
    assert Page(r).heading == "Approve the sign-in request on your phone"


def test_fraud_without_another_way_ends_the_signin(
        fsite, duo_pool, duo_normal):
    """A user whose only ways are on the phone: the sign-in ends with a
    page that leads back to the start, and no pending sign-in is left."""
    user = duo_pool.take("notp")
    b, r = report_fraud(fsite, user)
    page = Page(r)
    assert r.status_code == 403, snippet(r)
    assert page.heading == "Sign-in refused"
    assert REFUSED in page.text
    assert "fraud" not in page.text.lower()
    assert any(text == "Back to sign-in" for _, text in page_links(r)), \
        page_links(r)
    assert not b.cookie("twostep_pending")
    r = b.get(VERIFY)
    assert r.status_code == 303 and location(r).path.endswith("/signin")


def test_reset_lifts_the_pause(fsite, duo_pool, duo_normal):
    """The pause is tied to the user's credentials: after `twostep-user
    reset` (or passwd) pushes go out again at once."""
    user = duo_pool.take("auth")
    report_fraud(fsite, user)
    b = fsite.browser()
    assert "push" not in offered_methods(password_step(b, "/app/", user))

    r = subprocess.run([str(TOOL), "--users", str(fsite.users_file),
                        "reset", user.name], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    # Every worker reads the changed store within about a second.
    deadline = time.monotonic() + 10
    while True:
        b = fsite.browser()
        page = password_step(b, "/app/", user)
        if "push" in offered_methods(page) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    r = start_push(b, "/app/", user)
    assert Page(r).heading == "Approve the sign-in request on your phone"


def test_fraud_pause_zero_turns_the_pause_off(
        workdir, app, duo_sim, duo_pool, duo_normal):
    """twostep_fraud_pause 0: the reported sign-in still loses the phone,
    the next one may push again."""
    s = make_site(workdir, app, duo_sim, duo_pool,
                  "twostep_fraud_pause 0;", "fraud-off")
    try:
        user = duo_pool.take("auth")
        b, r = report_fraud(s, user)
        assert r.status_code == 403 and REFUSED in Page(r).text
        assert offered_methods(r) == {"totp"}
        r = start_push(s.browser(), "/app/", user)
        assert Page(r).heading == "Approve the sign-in request on your phone"
        assert s.metric("twostep_fraud_reports_total") == 1
    finally:
        mark = s.nginx.log_size()
        s.nginx.stop()
        check_log(s.nginx, mark)


@pytest.mark.parametrize("value", ["soon", "-5m"])
def test_nginx_t_checks_the_fraud_pause(nginx_factory, value):
    inst = nginx_factory("fraud-conf", "twostep_fraud_pause %s;" % value,
                         [], start=False)
    rc, out = inst.test_config()
    assert rc != 0, out
    assert "twostep_fraud_pause" in out, out
