"""`make demo` as a new user tries it: examples/demo.sh with the built module,
on free ports and in its own directory. alice signs in with her
authenticator code, bob with a push to the ntfy stand-in approved on its
approval page with the number, carol (no authenticator yet) with a code
texted to the Twilio stand-in and then changes her security info (the
workers can write the store) and sets up push notifications, and Ctrl-C
ends it with a quiet "demo: stopped", not with what reads like a crash.
"""

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import pytest
import requests

from conftest import MODULE
from harness import (ASAN, PORTAL, Browser, Page, User, choose_method,
                     free_port, make_workdir, password_step, press_send,
                     refresh_url, remember_sensitive, snippet, start_push)

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo.sh"
SECURITY = PORTAL + "security-info"


def read_until(proc, marker, timeout=60):
    """The demo's output up to the line containing `marker`."""
    lines = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        if marker in line:
            return "".join(lines)
    raise AssertionError("the demo did not print %r:\n%s"
                         % (marker, "".join(lines)))


def approve_on_phone(ntfy, topic, number, says):
    """The newest push on `topic` at the ntfy stand-in: its Approve link
    opened, `number` typed; the page must say `says`."""
    msgs = requests.get(ntfy + "/standin/messages", params={"topic": topic},
                        timeout=10).json()["messages"]
    url = requests.post(ntfy + "/standin/action",
                        json={"id": msgs[-1]["id"], "label": "Approve"},
                        timeout=10).json()["url"]
    phone = requests.Session()
    form = dict(Page(phone.get(url, timeout=10)).forms[0].fields)
    form["number"] = number
    done = phone.post(url.split("?")[0], data=form, timeout=10)
    assert Page(done).heading == says, snippet(done)


# The demo starts nginx itself, without the sanitizers' run-time.
@pytest.mark.skipif(ASAN, reason="the demo runs nginx without ASan's preload")
def test_demo_signs_in_manages_security_info_and_stops_quietly():
    d = make_workdir("twostep-demo-")
    d.chmod(0o755)
    ports = {name: free_port() for name in
             ("DEMO_PORT", "DEMO_APP_PORT", "DEMO_DUO_PORT",
              "DEMO_TWILIO_PORT", "DEMO_NTFY_PORT")}
    env = dict(os.environ, TWOSTEP_MODULE=MODULE, DEMO_DIR=str(d / "state"),
               **{k: str(v) for k, v in ports.items()})
    proc = subprocess.Popen(["bash", str(DEMO)], env=env, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            start_new_session=True,
                            # As from a terminal: a shell started in the
                            # background (CI) ignores SIGINT, and bash
                            # cannot trap a signal ignored on entry.
                            preexec_fn=lambda: signal.signal(
                                signal.SIGINT, signal.SIG_DFL))
    try:
        banner = read_until(proc, "Ctrl-C stops")
        password = re.search(r"Password\s+(\S+)", banner).group(1)
        remember_sensitive("password", password)
        assert "sign in as carol" in banner, banner
        assert "three per ten minutes" in banner, banner
        assert "Set up push notifications" in banner, banner
        secret = (d / "state" / "totp-secret").read_text().strip()
        base = "http://127.0.0.1:%d" % ports["DEMO_PORT"]

        # alice: password and her authenticator's code.
        alice = User("alice", password, secret=secret, pw_hash="unused")
        b = Browser(base)
        r = b.sign_in("/", alice)
        assert r.status_code == 303, snippet(r)
        assert b.get("/").status_code == 200

        # bob: a push to the ntfy stand-in, approved on the approval page
        # its Approve button opens, with the number the sign-in page shows.
        ntfy = "http://127.0.0.1:%d" % ports["DEMO_NTFY_PORT"]
        bob = User("bob", password, secret=secret, pw_hash="unused")
        b = Browser(base)
        r = start_push(b, "/", bob)
        number = re.search(r'class="number">(\d\d)<', r.text).group(1)
        topic = (d / "state" / "ntfy-topic").read_text().strip()
        approve_on_phone(ntfy, topic, number, "Sign-in approved")
        r = b.get(refresh_url(r))
        assert r.status_code == 303, snippet(r)
        assert b.get("/").status_code == 200

        # carol: password, then a code texted to the Twilio stand-in.
        carol = User("carol", password, pw_hash="unused")
        b = Browser(base)
        r = choose_method(b, password_step(b, "/", carol), "sms")
        assert r.status_code == 200, snippet(r)
        r = press_send(b, r)
        assert r.status_code == 200, snippet(r)
        texts = requests.get(
            "http://127.0.0.1:%d/standin/messages" % ports["DEMO_TWILIO_PORT"],
            params={"to": "+15550100333"}, timeout=10).json()["messages"]
        code = re.search(r"\b(\d{6})\b", texts[-1]["body"]).group(1)
        remember_sensitive("code", code)
        r = b.submit_code(r, code, method="sms")
        assert r.status_code == 303, snippet(r)

        # Security info: no authenticator yet, offered; and a change is
        # saved (the demo made the store writable for the workers).
        r = b.get(SECURITY)
        assert r.status_code == 200, snippet(r)
        page = Page(r)
        assert "Add authenticator app" in page.text, snippet(r, 4000)
        token = next(f.fields["form_token"] for f in page.forms
                     if f.fields.get("action") == "recovery")
        r = b.post(SECURITY, {"action": "recovery", "form_token": token})
        assert r.status_code == 200, snippet(r)
        assert "Your new recovery codes" in Page(r).text, snippet(r)

        # Push notifications: a new topic, its test push approved on the
        # ntfy stand-in, and carol has push.
        r = b.post(PORTAL + "push-setup", {"action": "start",
                                           "form_token": token})
        assert r.status_code == 303, snippet(r)
        r = b.follow(r)
        topic = re.search(r'<code class="key">([^<]+)</code>', r.text).group(1)
        send = next(f for f in Page(r).forms
                    if f.fields.get("action") == "send")
        r = b.follow(b.post(PORTAL + "push-setup", dict(send.fields)))
        number = re.search(r'class="number">(\d\d)<', r.text).group(1)
        approve_on_phone(ntfy, topic, number, "Test notification approved")
        r = b.follow(b.get(refresh_url(r)))
        assert "Push notifications are set up" in Page(r).text, snippet(r)
    finally:
        # Ctrl-C in a terminal: SIGINT to the whole foreground group.
        os.killpg(proc.pid, signal.SIGINT)
        out, _ = proc.communicate(timeout=30)

    assert out.rstrip().endswith("demo: stopped"), out
    assert "Traceback" not in out and "has stopped" not in out, out
    assert proc.returncode == 130
