"""The Duo simulator (examples/duo_simulator.py) itself, run as a real process
on a free loopback port. No nginx here: these tests pin down what the module's
Duo client will be tested against.

Requests are signed by the few lines of `duo_headers` below, written from
Duo's description of the v2 signature, independently of both the simulator
and the module's C++ signer.
"""

import base64
import email.utils
import hashlib
import hmac
import html.parser
import json
import secrets
import socket
import string
import subprocess
import threading
import time
from pathlib import Path
from urllib.parse import quote, urljoin

import pytest
import requests

REPO = Path(__file__).resolve().parents[2]
SIMULATOR = REPO / "examples" / "duo_simulator.py"
PYTHON = "/usr/bin/python3"

IKEY = "DITESTSIMULATOR00001"
SKEY = "".join(secrets.choice(string.ascii_letters + string.digits)
               for _ in range(40))
LONG_POLL = 1.0        # auth_status long-poll, seconds
SHORT_TIMEOUT = 1.5    # user "tim": pushes time out after this

ALICE_DEVICE = "DPFZRS9FB0D46QFTM891"
CONFIG = {
    "ikey": IKEY,
    # no skey here: it comes from --skey-file
    "unknown_users": "enroll",
    "tx_timeout_seconds": 30,
    "users": {
        "alice": {"status": "auth", "devices": [{
            "device": ALICE_DEVICE, "type": "phone", "number": "+1 555-0100",
            "display_name": "Alice's phone",
            "capabilities": ["push", "phone", "sms"]}]},
        "dave": {"status": "auth", "number_matching": True, "devices": [{
            "device": "DPDAVE00000000000001", "number": "+1 555-0104",
            "capabilities": ["push"]}]},
        "erin": {"status": "auth", "auto": {"push": "approve", "delay": 0.3},
                 "devices": [{"device": "DPERIN00000000000001",
                              "capabilities": ["push"]}]},
        "tim": {"status": "auth", "tx_timeout_seconds": SHORT_TIMEOUT,
                "devices": [{"device": "DPTIM000000000000001",
                             "capabilities": ["push", "phone"]}]},
        "smsonly": {"status": "auth", "user_id": "DUSMSONLY00000000001",
                    "devices": [{"device": "DPSMS000000000000001",
                                 "number": "+1 555-0199",
                                 "capabilities": ["sms"]}]},
        "bob": {"status": "enroll"},
        "carol": {"status": "deny"},
        "frank": {"status": "allow"},
    },
}

PASSCODES_SEEN = []     # must never show up in the simulator's log


# ------------------------------------------------------------ the signer

def duo_headers(method, host, path, params, date=None, ikey=IKEY, skey=SKEY):
    """Duo Auth API v2 request signature: HMAC-SHA512 (hex) with the skey
    over date, METHOD, host, path and the sorted RFC 3986-encoded params."""
    date = date or email.utils.formatdate()
    encoded = sorted((quote(k, safe="~"), quote(v, safe="~"))
                     for k, v in params.items())
    canon = "\n".join([date, method.upper(), host.lower(), path,
                       "&".join("%s=%s" % kv for kv in encoded)])
    sig = hmac.new(skey.encode(), canon.encode(), hashlib.sha512).hexdigest()
    token = base64.b64encode(("%s:%s" % (ikey, sig)).encode()).decode()
    return {"Date": date, "Authorization": "Basic " + token}


# ------------------------------------------------------------ the process

def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Simulator:
    def __init__(self, directory, config=CONFIG):
        self.port = free_port()
        self.host = "127.0.0.1:%d" % self.port
        self.base = "http://" + self.host
        self.config = directory / "config.json"
        self.config.write_text(json.dumps(config))
        self.skey_file = directory / "skey"
        self.skey_file.write_text(SKEY + "\n")
        self.log = directory / "simulator.log"
        self.proc = None

    def start(self):
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(
                [PYTHON, str(SIMULATOR), "--port", str(self.port),
                 "--config", str(self.config), "--skey-file",
                 str(self.skey_file), "--long-poll", str(LONG_POLL)],
                stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=log)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log.read_text()
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                time.sleep(0.02)
        raise RuntimeError("the simulator did not start")

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()

    # -- Duo calls, signed

    def call(self, method, path, params=None, host=None, timeout=10, **kw):
        params = dict(params or {})
        headers = duo_headers(method, host or self.host, path, params, **kw)
        if method == "GET":
            return requests.get(self.base + path, params=params,
                                headers=headers, timeout=timeout)
        return requests.post(self.base + path, data=params, headers=headers,
                             timeout=timeout)

    def ok(self, method, path, params=None, **kw):
        r = self.call(method, path, params, **kw)
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["stat"] == "OK", body
        return body["response"]

    def preauth(self, username):
        return self.ok("POST", "/auth/v2/preauth", {"username": username})

    def auth(self, username, factor, **params):
        params.update(username=username, factor=factor)
        return self.ok("POST", "/auth/v2/auth", params)

    def push(self, username, **params):
        params.setdefault("device", "auto")
        return self.auth(username, "push", **{"async": "1"}, **params)

    def status(self, txid, timeout=10):
        return self.ok("GET", "/auth/v2/auth_status", {"txid": txid},
                       timeout=timeout)

    def wait_done(self, txid, limit=10):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            out = self.status(txid)
            if out["result"] != "waiting":
                return out
        raise AssertionError("transaction %s still waiting" % txid)

    # -- control API

    def control(self, path, body=None):
        r = requests.post(self.base + path, json=body or {}, timeout=10)
        return r

    def respond(self, user, action, **extra):
        r = self.control("/sim/respond", dict(user=user, action=action,
                                              **extra))
        assert r.status_code == 200, r.text
        return r.json()["response"]

    def last_sms(self, user):
        r = requests.get(self.base + "/sim/last_sms", params={"user": user},
                         timeout=10)
        assert r.status_code == 200, r.text
        out = r.json()["response"]
        PASSCODES_SEEN.append(out["passcode"])
        return out

    def mode(self, mode, **extra):
        r = self.control("/sim/mode", dict(mode=mode, **extra))
        assert r.status_code == 200, r.text


@pytest.fixture(scope="module")
def sim(tmp_path_factory):
    s = Simulator(tmp_path_factory.mktemp("duo-simulator")).start()
    yield s
    s.stop()


@pytest.fixture(autouse=True)
def fresh(sim):
    r = sim.control("/sim/reset")
    assert r.status_code == 200, r.text
    yield


def fail_code(r):
    body = r.json()
    assert body["stat"] == "FAIL", body
    assert r.status_code == body["code"] // 100, (r.status_code, body)
    return body["code"]


# ------------------------------------------------------------ signatures

def test_ping_unsigned_check_signed(sim):
    r = requests.get(sim.base + "/auth/v2/ping", timeout=5)
    assert r.status_code == 200
    assert abs(r.json()["response"]["time"] - time.time()) < 5
    assert abs(sim.ok("GET", "/auth/v2/check")["time"] - time.time()) < 5


def test_signature_refused_when_missing_wrong_or_old(sim):
    url = sim.base + "/auth/v2/preauth"
    data = {"username": "alice"}
    headers = duo_headers("POST", sim.host, "/auth/v2/preauth", data)

    r = requests.post(url, data=data, timeout=5)                 # missing
    assert r.status_code == 401 and fail_code(r) == 40101
    r = requests.post(url, data=data, timeout=5,
                      headers={"Authorization": "Basic !!!"})
    assert fail_code(r) == 40101
    r = requests.post(url, data=data, timeout=5,                 # no date
                      headers={"Authorization": headers["Authorization"]})
    assert fail_code(r) == 40104

    assert fail_code(sim.call("POST", "/auth/v2/preauth", data,
                              skey="x" * 40)) == 40103           # wrong skey
    assert fail_code(sim.call("POST", "/auth/v2/preauth", data,
                              ikey="DIWRONGWRONGWRONG000")) == 40102
    old = email.utils.formatdate(time.time() - 6 * 60)
    r = sim.call("POST", "/auth/v2/preauth", data, date=old)
    assert r.status_code == 401 and fail_code(r) == 40105
    future = email.utils.formatdate(time.time() + 6 * 60)
    assert fail_code(sim.call("POST", "/auth/v2/preauth", data,
                              date=future)) == 40105
    assert sim.call("POST", "/auth/v2/preauth", data,            # 4 min: ok
                    date=email.utils.formatdate(time.time() - 240)
                    ).status_code == 200

    # A signature over other parameters or another host does not do.
    r = requests.post(url, data={"username": "carol"}, headers=headers,
                      timeout=5)
    assert fail_code(r) == 40103
    r = requests.post(url, data={"username": "alice", "ipaddr": "10.1.2.3"},
                      headers=headers, timeout=5)
    assert fail_code(r) == 40103
    assert fail_code(sim.call("POST", "/auth/v2/preauth", data,
                              host="api-abc.duosecurity.com")) == 40103
    # Signing the host without the port, as real Duo sees it, is accepted;
    # so is any case in the host.
    assert sim.call("POST", "/auth/v2/preauth", data,
                    host="127.0.0.1").status_code == 200
    assert sim.call("POST", "/auth/v2/preauth", data,
                    host=sim.host.upper()).status_code == 200
    # Errors of the request itself come after the signature.
    r = sim.call("POST", "/auth/v2/preauth", {})
    assert fail_code(r) == 40001 and r.json()["message_detail"] == "username"


def test_signature_covers_encoding_and_x_duo_date(sim):
    # Characters RFC 3986 encodes, and a tilde it does not; sorted params.
    params = {"username": "alice", "ipaddr": "10.0.0.1",
              "hostname": "wks 01@example~x/ü+&=", "a_b": "1", "a": "2"}
    assert sim.ok("POST", "/auth/v2/preauth", params)["result"] == "auth"
    # X-Duo-Date, when sent, is the date that is signed.
    date = email.utils.formatdate()
    h = duo_headers("POST", sim.host, "/auth/v2/preauth",
                    {"username": "alice"}, date=date)
    h["X-Duo-Date"] = h.pop("Date")
    h["Date"] = email.utils.formatdate(time.time() - 3600)
    r = requests.post(sim.base + "/auth/v2/preauth",
                      data={"username": "alice"}, headers=h, timeout=5)
    assert r.status_code == 200, r.text
    # GET parameters are signed too.
    assert sim.call("GET", "/auth/v2/auth_status", {"txid": "nope"},
                    skey="y" * 40).status_code == 401


# ------------------------------------------------------------ preauth

def test_preauth_for_each_kind_of_user(sim):
    alice = sim.preauth("alice")
    assert alice["result"] == "auth"
    assert alice["status_msg"]
    (dev,) = alice["devices"]
    assert dev["device"] == ALICE_DEVICE
    assert dev["type"] == "phone"
    assert dev["display_name"] == "Alice's phone"
    assert set(dev["capabilities"]) == {"auto", "push", "phone", "sms"}

    bob = sim.preauth("bob")
    assert bob["result"] == "enroll"
    assert bob["enroll_portal_url"].startswith("http")
    assert "devices" not in bob
    assert sim.preauth("carol")["result"] == "deny"
    assert sim.preauth("frank")["result"] == "allow"
    assert sim.preauth("nobody-knows-me")["result"] == "enroll"

    by_id = sim.ok("POST", "/auth/v2/preauth",
                   {"user_id": "DUSMSONLY00000000001"})
    assert by_id["result"] == "auth"
    assert by_id["devices"][0]["capabilities"] == ["sms"]


def test_unknown_users_can_be_denied(tmp_path):
    other = Simulator(tmp_path, dict(CONFIG, unknown_users="deny")).start()
    try:
        assert other.preauth("nobody-knows-me")["result"] == "deny"
        assert other.preauth("bob")["result"] == "enroll"
    finally:
        other.stop()


def test_auth_for_users_who_may_not_use_devices(sim):
    assert sim.auth("frank", "push", device="auto")["status"] == "bypass"
    for user in ("bob", "carol", "nobody-knows-me"):
        out = sim.auth(user, "push", device="auto")
        assert out["result"] == "deny", (user, out)
    r = sim.call("POST", "/auth/v2/auth",
                 {"username": "smsonly", "factor": "push", "device": "auto"})
    assert fail_code(r) == 40002 and r.json()["message_detail"] == "device"
    r = sim.call("POST", "/auth/v2/auth", {"username": "alice",
                                           "factor": "push"})
    assert fail_code(r) == 40001 and r.json()["message_detail"] == "device"
    r = sim.call("POST", "/auth/v2/auth", {"username": "alice",
                                           "factor": "carrier-pigeon"})
    assert fail_code(r) == 40002


# ------------------------------------------------------------ push

def test_push_long_polls_then_allows_on_approve(sim):
    txid = sim.push("alice", type="Legacy App")["txid"]

    t0 = time.monotonic()                   # the new status: at once
    out = sim.status(txid)
    assert (out["result"], out["status"]) == ("waiting", "pushed")
    assert time.monotonic() - t0 < LONG_POLL / 2

    t0 = time.monotonic()                   # nothing new: a long poll
    out = sim.status(txid)
    took = time.monotonic() - t0
    assert out["result"] == "waiting"
    assert LONG_POLL * 0.8 <= took < LONG_POLL + 1.0, took

    # Approving during a long poll ends it at once.
    timer = threading.Timer(0.2, sim.respond, ("alice", "approve"))
    timer.start()
    t0 = time.monotonic()
    out = sim.status(txid)
    took = time.monotonic() - t0
    timer.join()
    assert (out["result"], out["status"]) == ("allow", "allow"), out
    assert took < LONG_POLL * 0.8, took
    assert sim.status(txid)["result"] == "allow"     # and stays so


def test_push_deny_and_fraud(sim):
    txid = sim.push("alice")["txid"]
    sim.respond("alice", "deny")
    out = sim.wait_done(txid)
    assert (out["result"], out["status"]) == ("deny", "deny")

    txid = sim.push("alice")["txid"]
    sim.respond("alice", "fraud")
    out = sim.wait_done(txid)
    assert (out["result"], out["status"]) == ("deny", "fraud")


def test_push_times_out(sim):
    t0 = time.monotonic()
    txid = sim.push("tim")["txid"]
    out = sim.wait_done(txid)
    took = time.monotonic() - t0
    assert (out["result"], out["status"]) == ("deny", "timeout")
    assert SHORT_TIMEOUT * 0.9 <= took < SHORT_TIMEOUT + 1.0, took
    r = sim.control("/sim/respond", {"user": "tim", "action": "approve"})
    assert r.status_code == 409       # nothing left to approve


def test_push_without_async_waits_for_the_answer(sim):
    timer = threading.Timer(0.3, sim.respond, ("alice", "approve"))
    timer.start()
    out = sim.auth("alice", "push", device=ALICE_DEVICE)
    timer.join()
    assert (out["result"], out["status"]) == ("allow", "allow")


def test_auto_approve(sim):
    t0 = time.monotonic()
    out = sim.auth("erin", "auto")
    assert out["result"] == "allow"
    assert 0.2 <= time.monotonic() - t0 < 2


def test_number_matching(sim):
    out = sim.push("dave")
    number = out["number"]                      # simulator extension
    assert 10 <= number <= 99
    status = sim.status(out["txid"])
    assert status["result"] == "waiting" and status["number"] == number

    page = PhonePage(sim, "dave")
    assert sorted(page.choices) == sorted(set(page.choices))
    assert number in page.choices and len(page.choices) == 3
    wrong = next(n for n in page.choices if n != number)
    sim.respond("dave", "approve", number=wrong)
    assert sim.wait_done(out["txid"])["result"] == "deny"

    out = sim.push("dave")
    page = PhonePage(sim, "dave")
    r = page.submit(choice=str(out["number"]))
    assert r.status_code == 303
    assert sim.wait_done(out["txid"])["result"] == "allow"


# ------------------------------------------------------------ phone call

def test_phone_call_answer_then_press_1(sim):
    txid = sim.auth("alice", "phone", device="auto", **{"async": "1"})["txid"]
    assert sim.status(txid)["status"] == "calling"
    sim.respond("alice", "answer")
    out = sim.status(txid)
    assert (out["result"], out["status"]) == ("waiting", "answered")
    sim.respond("alice", "press1")
    out = sim.wait_done(txid)
    assert (out["result"], out["status"]) == ("allow", "allow")

    txid = sim.auth("alice", "phone", device="auto", **{"async": "1"})["txid"]
    r = sim.control("/sim/respond", {"user": "alice", "action": "fraud",
                                     "factor": "push"})
    assert r.status_code == 409               # no pending push
    sim.respond("alice", "deny")              # declined
    assert sim.wait_done(txid)["result"] == "deny"


# ------------------------------------------------------------ sms

def test_sms_passcode_once(sim):
    out = sim.auth("alice", "sms", device="auto")
    assert out == {"result": "deny", "status": "sent",
                   "status_msg": "New SMS passcodes sent."}
    sms = sim.last_sms("alice")
    code = sms["passcode"]
    assert code.isdigit() and code in sms["text"]
    dev = sim.preauth("alice")["devices"][0]
    assert dev["sms_nextcode"] == code[0]

    wrong = str((int(code) + 1) % 10 ** len(code)).zfill(len(code))
    out = sim.auth("alice", "passcode", passcode=wrong)
    assert (out["result"], out["status"]) == ("deny", "deny")
    out = sim.auth("alice", "passcode", passcode=code)
    assert (out["result"], out["status"]) == ("allow", "allow")
    out = sim.auth("alice", "passcode", passcode=code)       # reused
    assert out["result"] == "deny"
    assert sim.last_sms("alice")["used"] is True

    # Each text brings a fresh passcode; async answers the same via a txid.
    txid = sim.auth("alice", "sms", device="auto", **{"async": "1"})["txid"]
    assert sim.status(txid)["status"] == "sent"
    assert sim.last_sms("alice")["passcode"] != code


# ------------------------------------------------------------ faults

def raw_request(sim, path="/auth/v2/check"):
    """The bytes the simulator sends back, up to its closing."""
    with socket.create_connection(("127.0.0.1", sim.port), timeout=5) as s:
        s.sendall(("GET %s HTTP/1.1\r\nHost: %s\r\n\r\n"
                   % (path, sim.host)).encode())
        data = b""
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    return data


def test_fault_down(sim):
    sim.mode("down")
    assert raw_request(sim) == b""
    with pytest.raises(requests.ConnectionError):
        sim.call("POST", "/auth/v2/preauth", {"username": "alice"})
    # The control API and phone pages keep working.
    r = requests.get(sim.base + "/phone/alice", timeout=5)
    assert r.status_code == 200


def test_fault_garbage(sim):
    sim.mode("garbage")
    r = sim.call("POST", "/auth/v2/preauth", {"username": "alice"})
    assert r.status_code == 200
    with pytest.raises(ValueError):
        json.loads(r.text)


def test_fault_slow(sim):
    sim.mode("slow", seconds=1)
    t0 = time.monotonic()
    assert sim.preauth("alice")["result"] == "auth"
    assert 0.9 <= time.monotonic() - t0 < 3


@pytest.mark.parametrize("mode,status,code", [
    ("http500", 500, None), ("http429", 429, 42901), ("stat_fail", 200, None)])
def test_fault_error_answers(sim, mode, status, code):
    sim.mode(mode)
    r = sim.call("POST", "/auth/v2/preauth", {"username": "alice"})
    assert r.status_code == status
    body = r.json()
    assert body["stat"] == "FAIL" and body["message"]
    if code:
        assert body["code"] == code


def test_fault_truncated(sim):
    sim.mode("truncated")
    data = raw_request(sim)
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200")
    length = int([line.split(b":")[1] for line in head.split(b"\r\n")
                  if line.lower().startswith(b"content-length:")][0])
    assert body.startswith(b'{"stat"') and 0 < len(body) < length
    with pytest.raises(ValueError):
        json.loads(body)


def test_fault_count_and_path(sim):
    sim.mode("http500", count=1, path="/auth/v2/preauth")
    assert sim.call("GET", "/auth/v2/check").status_code == 200
    assert sim.call("POST", "/auth/v2/preauth",
                    {"username": "alice"}).status_code == 500
    assert sim.preauth("alice")["result"] == "auth"     # back to normal
    r = sim.control("/sim/mode", {"mode": "sideways"})
    assert r.status_code == 400


# ------------------------------------------------------------ phone page

class FormParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.forms, self.form, self.meta_refresh = [], None, None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "form":
            self.form = {"action": a.get("action"), "fields": {},
                         "buttons": []}
            self.forms.append(self.form)
        elif tag == "input" and self.form is not None:
            self.form["fields"][a["name"]] = a.get("value", "")
        elif tag == "button" and self.form is not None:
            self.form["buttons"].append((a.get("name"), a.get("value")))
        elif tag == "meta" and a.get("http-equiv") == "refresh":
            self.meta_refresh = a.get("content")

    def handle_endtag(self, tag):
        if tag == "form":
            self.form = None


class PhonePage:
    def __init__(self, sim, user):
        self.sim, self.user = sim, user
        self.url = sim.base + "/phone/" + quote(user, safe="")
        r = requests.get(self.url, timeout=5)
        assert r.status_code == 200
        self.text = r.text
        p = FormParser()
        p.feed(r.text)
        self.forms, self.meta_refresh = p.forms, p.meta_refresh
        self.choices = [int(v) for f in self.forms
                        for n, v in f["buttons"] if n == "choice"]

    def submit(self, **button):
        """Post the form holding the button, as a browser without JS."""
        (name, value), = button.items()
        for form in self.forms:
            if (name, value) in form["buttons"]:
                data = dict(form["fields"], **{name: value})
                return requests.post(urljoin(self.url, form["action"]),
                                     data=data, allow_redirects=False,
                                     timeout=5)
        raise AssertionError("no button %s=%s on the page" % (name, value))


def test_phone_page_approve_without_javascript(sim):
    evil = '<script>alert("x")</script>'
    txid = sim.push("alice", display_username=evil,
                    pushinfo="from=" + quote(evil))["txid"]
    page = PhonePage(sim, "alice")
    assert page.meta_refresh == "2"
    assert txid in page.text
    assert "Approve" in page.text and "Report as fraud" in page.text
    assert "<script>alert" not in page.text
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page.text
    for name in ("phone.js", "phone.css"):
        r = requests.get(sim.base + "/static/" + name, timeout=5)
        assert r.status_code == 200 and r.content

    r = page.submit(action="approve")
    assert r.status_code == 303
    assert r.headers["Location"].endswith("/phone/alice")
    out = sim.wait_done(txid)
    assert (out["result"], out["status"]) == ("allow", "allow")
    assert "Success" in PhonePage(sim, "alice").text     # in "Recent"


def test_phone_page_call_and_texts(sim):
    sim.auth("alice", "sms", device="auto")
    txid = sim.auth("alice", "phone", device="auto", **{"async": "1"})["txid"]
    page = PhonePage(sim, "alice")
    assert "Press any key to approve" in page.text
    code = sim.last_sms("alice")["passcode"]
    assert code in page.text
    assert page.submit(action="press1").status_code == 303
    assert sim.wait_done(txid)["result"] == "allow"


def test_phone_page_refuses_forged_posts(sim):
    txid = sim.push("alice")["txid"]
    r = requests.post(sim.base + "/phone/alice/respond", timeout=5,
                      data={"txid": txid, "action": "approve",
                            "token": "guess"}, allow_redirects=False)
    assert r.status_code == 403
    r = requests.post(sim.base + "/sim/respond", timeout=5,
                      data=json.dumps({"user": "alice", "action": "approve"}),
                      headers={"Content-Type": "text/plain"})
    assert r.status_code == 415
    assert sim.status(txid)["result"] == "waiting"
    assert requests.get(sim.base + "/phone/nobody",
                        timeout=5).status_code == 404


# ------------------------------------------------------------ control API

def test_transactions_and_reset(sim):
    txid = sim.push("alice")["txid"]
    sim.auth("alice", "sms", device="auto")
    r = requests.get(sim.base + "/sim/transactions", timeout=5)
    txs = r.json()["response"]["transactions"]
    assert [t["factor"] for t in txs] == ["push", "sms"]
    assert txs[0]["txid"] == txid and txs[0]["result"] == "waiting"
    assert sim.last_sms("alice")["passcode"] not in json.dumps(txs)
    assert sim.control("/sim/reset").status_code == 200
    r = requests.get(sim.base + "/sim/transactions", timeout=5)
    assert r.json()["response"]["transactions"] == []
    assert sim.call("GET", "/auth/v2/auth_status",
                    {"txid": txid}).status_code == 400
    r = requests.get(sim.base + "/sim/last_sms", params={"user": "alice"},
                     timeout=5)
    assert r.status_code == 404


def test_log_one_line_per_request_without_secrets(sim):
    sim.preauth("alice")
    time.sleep(0.2)
    log = sim.log.read_text()
    assert SKEY not in log
    for code in PASSCODES_SEEN:
        assert code not in log
    lines = [line for line in log.splitlines() if "/auth/v2/preauth" in line]
    assert lines and "POST" in lines[-1] and "user=alice" in lines[-1] \
        and "auth" in lines[-1]
