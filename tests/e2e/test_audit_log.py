"""twostep_audit_log: one JSON object per line for every security event, in
a file nginx reopens on `nginx -s reopen`, or to syslog; never a password,
code or cookie."""

import json
import re
import signal
import socket
import tempfile
import time
from pathlib import Path

from harness import (LOGOUT, Page, location, snippet,
                     wait_off_step_boundary)

FIELDS = {"time", "event", "user", "method", "result", "address", "host",
          "uri", "request_id"}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d[+-]\d\d:\d\d$")


def audit_dir(workdir):
    d = Path(tempfile.mkdtemp(prefix="audit-", dir=workdir))
    d.chmod(0o755)
    return d


def read_events(path):
    events = []
    for line in Path(path).read_text().splitlines():
        e = json.loads(line)
        assert set(e) == FIELDS, e
        assert RFC3339.match(e["time"]), e
        assert re.fullmatch(r"[0-9a-f]{32}", e["request_id"]), e
        assert e["address"] == "127.0.0.1", e
        events.append(e)
    return events


def wait_for_events(path, n, timeout=10):
    deadline = time.time() + timeout
    while True:
        events = read_events(path) if Path(path).exists() else []
        if len(events) >= n or time.time() > deadline:
            return events
        time.sleep(0.1)


def find(events, **want):
    return [e for e in events
            if all(e.get(k) == v for k, v in want.items())]


def test_audit_log_records_every_step(guarded, workdir):
    log = audit_dir(workdir) / "audit.log"
    site = guarded("audit", users=3, lockout="3 60s address=1000",
                   http_extra="twostep_audit_log %s;" % log)
    ok, locked, _ = site.users
    secrets = {ok.password, ok.secret}

    wait_off_step_boundary(margin=5)
    code = ok.code()
    secrets.add(code)
    b = site.browser()
    r = b.sign_in("/app/", ok, code=code)
    assert location(r).path == "/app/"
    secrets.add(b.cookie("twostep_session"))

    # The same code again: a replay.
    b2 = site.browser()
    r = b2.follow(b2.get("/app/"))
    r = b2.follow(b2.submit_password(r, ok.name, ok.password))
    secrets.add(b2.cookie("twostep_pending"))
    r = b2.submit_code(r, code)
    assert r.status_code == 403, snippet(r)

    # A password typed into the user name field, then a lockout.
    b3 = site.browser()
    r = b3.follow(b3.get("/app/"))
    r = b3.submit_password(r, ok.password, "not the password either")
    for _ in range(3):
        r = b3.follow(b3.get("/app/"))
        r = b3.submit_password(r, locked.name, "wrong " + locked.password)
    assert r.status_code == 429, snippet(r)

    form = Page(b.get(LOGOUT)).form(LOGOUT)
    r = b.post(LOGOUT, dict(form.fields))
    assert Page(r).heading == "You have signed out", snippet(r)

    events = wait_for_events(log, 11)
    assert find(events, event="signin", user=ok.name, method="password",
                result="success")
    signed_in = find(events, event="signin", user=ok.name, method="totp",
                     result="success")
    assert len(signed_in) == 1
    assert signed_in[0]["uri"] == "/.twostep/verify"
    assert signed_in[0]["host"] == "127.0.0.1"
    assert find(events, event="replay", user=ok.name, method="totp",
                result="failure")
    assert find(events, event="signin", user="(unknown)",
                method="password", result="failure")
    assert len(find(events, event="signin", user=locked.name,
                    result="failure")) == 3
    assert find(events, event="lockout", user=locked.name,
                method="password", result="locked")
    assert find(events, event="signout", user=ok.name, method="totp")
    # Distinct requests, distinct ids.
    ids = [e["request_id"] for e in events]
    assert len(set(ids)) >= len(ids) - 2

    text = log.read_text()
    for s in secrets:
        assert s and s not in text, "a secret reached the audit log"


def test_audit_log_reopened(guarded, workdir):
    log = audit_dir(workdir) / "audit.log"
    site = guarded("audit-reopen", users=2,
                   http_extra="twostep_audit_log %s;" % log)
    first, second = site.users

    def wrong_password(user):
        b = site.browser()
        r = b.follow(b.get("/app/"))
        return b.submit_password(r, user.name, "not the password")

    wrong_password(first)
    assert find(wait_for_events(log, 1), user=first.name)

    rotated = log.with_name("audit.log.1")
    log.rename(rotated)
    site.nginx.proc.send_signal(signal.SIGUSR1)   # nginx -s reopen
    deadline = time.time() + 10
    while not log.exists() and time.time() < deadline:
        time.sleep(0.1)
    assert log.exists(), "nginx did not reopen the audit log"

    wrong_password(second)
    events = wait_for_events(log, 1)
    assert [e["user"] for e in events] == [second.name]
    assert [e["user"] for e in read_events(rotated)] == [first.name]


def test_audit_log_to_syslog(guarded, workdir):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("127.0.0.1", 0))
    sock.settimeout(10)
    port = sock.getsockname()[1]
    try:
        site = guarded("audit-syslog", users=1, http_extra=(
            "twostep_audit_log syslog:server=127.0.0.1:%d,tag=twostep;"
            % port))
        user = site.users[0]
        b = site.browser()
        r = b.follow(b.get("/app/"))
        b.submit_password(r, user.name, "not the password")
        data = sock.recv(65536).decode()
    finally:
        sock.close()
    assert re.match(r"<\d+>\w{3} [ \d]\d \d\d:\d\d:\d\d \S+ twostep: \{",
                    data), data
    event = json.loads(data[data.index("{"):])
    assert event["event"] == "signin" and event["user"] == user.name
    assert event["result"] == "failure"


def test_audit_log_off_in_a_server(guarded, workdir):
    log = audit_dir(workdir) / "audit.log"
    site = guarded("audit-off", users=1,
                   http_extra="twostep_audit_log %s;" % log,
                   server_extra="twostep_audit_log off;")
    user = site.users[0]
    b = site.browser()
    r = b.follow(b.get("/app/"))
    r = b.submit_password(r, user.name, "not the password")
    assert "Wrong user name or password" in Page(r).text
    assert log.read_text() == ""
