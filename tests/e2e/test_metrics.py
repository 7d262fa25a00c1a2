"""twostep_metrics serves Prometheus text that promtool accepts, and the
counters move with sign-ins, failures, lockouts, replays and sign-outs,
whichever of the two workers served them or is asked."""

import re
import subprocess

import requests

from conftest import DuoSite
from harness import (HTTP_TIMEOUT, LOGOUT, Page, location,
                     on_both_workers, password_step, refresh_url, snippet,
                     start_push, wait_off_step_boundary)

METRICS_LOCATION = """
        location / {{
            twostep on;
            {proxy}
        }}
        location = /metrics {{
            twostep_metrics;
        }}"""

SAMPLE_RE = re.compile(r"^([a-z_]+(?:\{[^}]*\})?) (\S+)$")


def scrape(url):
    r = requests.get(url + "/metrics", timeout=HTTP_TIMEOUT,
                     headers={"Connection": "close"})
    assert r.status_code == 200, snippet(r)
    return r


def samples(text):
    out = {}
    for line in text.splitlines():
        if line.startswith("#") or not line:
            continue
        m = SAMPLE_RE.match(line)
        assert m, "not a sample line: %r" % line
        out[m.group(1)] = float(m.group(2))
    return out


def promtool_check(text):
    r = subprocess.run(["promtool", "check", "metrics"], input=text,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    return r


def signins(method, result):
    return 'twostep_signins_total{method="%s",result="%s"}' % (method,
                                                               result)


def test_metrics_format_and_counters_across_workers(guarded):
    site = guarded("metrics", users=4, lockout="3 60s address=1000",
                   locations=METRICS_LOCATION)
    ok, wrong, locked, replay = site.users

    r = scrape(site.url)
    assert r.headers["Content-Type"] == "text/plain; version=0.0.4"
    promtool_check(r.text)
    before = samples(r.text)
    # Every method of the method list has its series, starting at zero.
    for method in ("password", "totp", "push", "call", "sms", "recovery"):
        for result in ("success", "failure", "locked", "error"):
            assert before[signins(method, result)] == 0
    assert before["twostep_lockouts_total"] == 0

    # A full sign-in, and a sign-out.
    wait_off_step_boundary(margin=5)
    code = ok.code()
    b = site.browser()
    r = b.sign_in("/app/", ok, code=code)
    assert location(r).path == "/app/"
    form = Page(b.get(LOGOUT)).form(LOGOUT)
    r = b.post(LOGOUT, dict(form.fields))
    assert Page(r).heading == "You have signed out", snippet(r)

    # The same code again, after the right password.
    b2 = site.browser()
    r = b2.follow(b2.get("/app/"))
    r = b2.follow(b2.submit_password(r, ok.name, ok.password))
    r = b2.submit_code(r, code)
    assert r.status_code == 403 and "already been used" in Page(r).text

    # One wrong password.
    b3 = site.browser()
    r = b3.follow(b3.get("/app/"))
    r = b3.submit_password(r, wrong.name, "not the password")
    assert "Wrong user name or password" in Page(r).text, snippet(r)

    # Three wrong passwords lock the account (the third is answered with
    # the lock already); the right one is then refused too.
    b4 = site.browser()
    for _ in range(3):
        r = b4.follow(b4.get("/app/"))
        b4.submit_password(r, locked.name, "not the password")
    r = b4.follow(b4.get("/app/"))
    r = b4.submit_password(r, locked.name, locked.password)
    assert r.status_code == 429, snippet(r)

    # Both workers report the same counts: they share them.
    seen = on_both_workers(
        lambda: requests.get(site.url + "/metrics", timeout=HTTP_TIMEOUT,
                             headers={"Connection": "close"}),
        lambda r: r.status_code == 200)
    texts = [r.text for r in seen.values()]
    assert texts[0] == texts[1], "the workers disagree"
    promtool_check(texts[0])
    after = samples(texts[0])

    def delta(name):
        return after[name] - before.get(name, 0)

    assert delta(signins("password", "success")) == 2
    assert delta(signins("totp", "success")) == 1
    assert delta(signins("totp", "failure")) == 1      # the replay
    assert delta("twostep_replays_total") == 1
    assert delta(signins("password", "failure")) == 4  # 1 + 3
    assert delta(signins("password", "locked")) == 2
    assert delta("twostep_lockouts_total") == 2
    assert delta("twostep_sessions_revoked_total") == 1
    assert after["twostep_zone_records"] > 0

    # No user names or addresses in any label.
    for u in site.users:
        assert u.name not in texts[0]
    assert "127.0.0.1" not in texts[0]


def test_metrics_only_get_and_head(guarded):
    site = guarded("metrics-methods", users=1, locations=METRICS_LOCATION)
    r = requests.post(site.url + "/metrics", data="x", timeout=HTTP_TIMEOUT)
    assert r.status_code == 405
    r = requests.head(site.url + "/metrics", timeout=HTTP_TIMEOUT)
    assert r.status_code == 200 and r.text == ""


def test_metrics_directive_takes_no_arguments(nginx_factory, tmp_path):
    inst = nginx_factory("metrics-conf", """
    server {
        listen 127.0.0.1:1;
        location /metrics { twostep_metrics on; }
    }""", [], start=False)
    rc, out = inst.test_config()
    assert rc != 0
    assert 'invalid number of arguments in "twostep_metrics"' in out
    assert str(inst.conf_path) in out


class MetricsDuoSite(DuoSite):
    """The Duo site with a metrics location."""

    def body(self):
        return super().body().replace(
            "location /static/ {",
            "location = /metrics {\n            twostep_metrics;\n"
            "        }\n        location /static/ {", 1)


def provider(result):
    return ('twostep_provider_requests_total{provider="duo",result="%s"}'
            % result)


def test_metrics_count_provider_requests(nginx_factory, workdir, app,
                                         duo_sim, duo_pool, duo_normal):
    site = MetricsDuoSite(workdir, app, duo_sim, duo_pool,
                          factory=nginx_factory, name="duo-metrics")
    before = samples(scrape(site.url).text)

    # An approved push, and a denied one.
    ok, denied = duo_pool.take("auth"), duo_pool.take("auth")
    b = site.browser()
    r = start_push(b, "/app/", ok)
    duo_sim.respond(ok.name, "approve")
    r = b.get(refresh_url(r))
    assert r.status_code == 303 and b.cookie("twostep_session"), snippet(r)

    b2 = site.browser()
    r = start_push(b2, "/app/", denied)
    duo_sim.respond(denied.name, "deny")
    r = b2.get(refresh_url(r))
    assert "The request was denied" in Page(r).text, snippet(r)

    # Duo down: preauth gets no usable answer.
    duo_normal.set_mode("down")
    b3 = site.browser()
    r = password_step(b3, "/app/", duo_pool.take("auth"))
    assert "Push, call and text are unavailable" in Page(r).text
    duo_normal.set_mode("normal")

    text = scrape(site.url).text
    promtool_check(text)
    after = samples(text)

    def delta(name):
        return after[name] - before.get(name, 0)

    assert delta(signins("push", "success")) == 1
    assert delta(signins("push", "failure")) == 1
    # preauth, auth and at least one auth_status for each push
    assert delta(provider("success")) >= 6
    assert delta(provider("failure")) + delta(provider("error")) >= 1
    requests_total = sum(delta(provider(r))
                         for r in ("success", "failure", "error"))
    count = ('twostep_provider_request_duration_seconds_count'
             '{provider="duo"}')
    assert delta(count) == requests_total
    assert after['twostep_provider_request_duration_seconds_sum'
                 '{provider="duo"}'] > 0
