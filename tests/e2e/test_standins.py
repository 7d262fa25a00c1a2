"""The Twilio and ntfy stand-ins (examples/twilio_standin.py,
examples/ntfy_standin.py), each run as a real process on a free loopback
port. No nginx here: these tests pin down, against what Twilio's and ntfy's
public documentation describe, what the module's Twilio and ntfy clients
will be tested against.

Twilio's callback signature is checked by the few lines of
`twilio_signature` below, written from Twilio's description
(twilio.com/docs/usage/security), independently of the stand-in and of the
module's C++ verifier; the documented example vector pins it down first.
"""

import base64
import hashlib
import hmac
import json
import secrets
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qsl

import pytest
import requests

from harness import ntfy_standin, twilio_standin

ACCOUNT = "AC" + secrets.token_hex(16)
TOKEN = secrets.token_hex(16)
NTFY_TOKEN = "tk_" + secrets.token_hex(14)
FROM = "+15550001111"
TO = "+31612345678"


def twilio_signature(token, url, params):
    """Base64 HMAC-SHA1 over the URL, then each POST parameter's name and
    value, sorted by name."""
    data = url + "".join(k + v for k, v in sorted(params.items()))
    return base64.b64encode(hmac.new(token.encode(), data.encode(),
                                      hashlib.sha1).digest()).decode()


def test_signature_helper_matches_twilios_documented_example():
    params = {"CallSid": "CA1234567890ABCDE", "Caller": "+14158675310",
              "Digits": "1234", "From": "+14158675310", "To": "+18005551212"}
    assert twilio_signature("12345",
                            "https://mycompany.com/myapp.php?foo=1&bar=2",
                            params) == "GvWf1cFY/Q7PnoempGyD5oXAezc="


# ------------------------------------------------------------ processes

class Portal:
    """Where callbacks and action buttons land: records each request and
    answers with `answer` (TwiML by default)."""

    def __init__(self):
        self.requests = []
        self.status = 200
        self.answer = ('<?xml version="1.0" encoding="UTF-8"?><Response>'
                       '<Say>Thank you. Goodbye.</Say><Hangup/></Response>')
        portal = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                n = int(self.headers.get("Content-Length") or 0)
                portal.requests.append({
                    "path": self.path, "headers": dict(self.headers),
                    "body": self.rfile.read(n).decode()})
                body = portal.answer.encode()
                self.send_response(portal.status)
                self.send_header("Content-Type", "text/xml")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = "http://127.0.0.1:%d" % self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever,
                         daemon=True).start()


@pytest.fixture(scope="module")
def twilio(tmp_path_factory):
    s = twilio_standin(tmp_path_factory.mktemp("twilio-standin"), ACCOUNT,
                       TOKEN)
    yield s
    s.stop()
    assert TOKEN not in s.log_text()


@pytest.fixture(scope="module")
def ntfy(tmp_path_factory):
    s = ntfy_standin(tmp_path_factory.mktemp("ntfy-standin"), NTFY_TOKEN)
    yield s
    s.stop()
    assert NTFY_TOKEN not in s.log_text()


@pytest.fixture(scope="module")
def portal():
    p = Portal()
    yield p
    p.server.shutdown()


@pytest.fixture(autouse=True)
def fresh(request):
    for name in ("twilio", "ntfy"):
        if name in request.fixturenames:
            s = request.getfixturevalue(name)
            assert s.control("/standin/reset").status_code == 200
    if "portal" in request.fixturenames:
        request.getfixturevalue("portal").requests.clear()
    yield


# ------------------------------------------------------------ Twilio

def api(twilio, resource, data, auth=(ACCOUNT, TOKEN), account=ACCOUNT):
    return requests.post("%s/2010-04-01/Accounts/%s/%s" % (
        twilio.base, account, resource), data=data, auth=auth, timeout=20)


def call_twiml(action, finish=' finishOnKey=""'):
    return ('<?xml version="1.0" encoding="UTF-8"?><Response>'
            '<Gather input="dtmf" numDigits="1"%s actionOnEmptyResult="true"'
            ' method="POST" action="%s"><Say>alice is signing in to Example.'
            '</Say><Say>To approve, press the pound key.</Say></Gather>'
            '</Response>' % (finish, action.replace("&", "&amp;")))


def start_call(twilio, action, **kw):
    r = api(twilio, "Calls.json", {"To": TO, "From": FROM,
                                   "Twiml": call_twiml(action, **kw)})
    assert r.status_code == 201, r.text
    return r.json()


def twilio_error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["status"] == status, body
    assert body["more_info"] == "https://www.twilio.com/docs/errors/%d" % code
    return body


def test_twilio_message_sent_and_recorded(twilio):
    r = api(twilio, "Messages.json",
            {"To": TO, "From": FROM, "Body": "Your code is 123456"})
    assert r.status_code == 201, r.text
    msg = r.json()
    assert msg["sid"].startswith("SM") and len(msg["sid"]) == 34
    assert msg["status"] == "queued"
    assert (msg["to"], msg["from"], msg["body"]) == (TO, FROM,
                                                     "Your code is 123456")
    assert msg["account_sid"] == ACCOUNT
    assert msg["error_code"] is None and msg["error_message"] is None
    assert msg["date_created"].endswith(" +0000")

    fetched = requests.get("%s/2010-04-01/Accounts/%s/Messages/%s.json" % (
        twilio.base, ACCOUNT, msg["sid"]), auth=(ACCOUNT, TOKEN), timeout=20)
    assert fetched.status_code == 200 and fetched.json()["sid"] == msg["sid"]

    listed = requests.get(twilio.base + "/standin/messages",
                          params={"to": TO}, timeout=20).json()["messages"]
    assert [m["body"] for m in listed] == ["Your code is 123456"]
    assert requests.get(twilio.base + "/standin/messages",
                        params={"to": "+15559999999"},
                        timeout=20).json()["messages"] == []


@pytest.mark.parametrize("auth", [None, (ACCOUNT, "wrong"),
                                  (ACCOUNT, TOKEN + "x"), ("AC" + "0" * 32,
                                                           TOKEN)])
def test_twilio_refuses_wrong_credentials(twilio, auth):
    r = api(twilio, "Messages.json", {"To": TO, "From": FROM, "Body": "x"},
            auth=auth)
    body = twilio_error(r, 401, 20003)
    assert body["message"] == "Authenticate"
    assert r.headers["WWW-Authenticate"].startswith("Basic")
    assert TOKEN not in r.text
    assert requests.get(twilio.base + "/standin/messages",
                        timeout=20).json()["messages"] == []


def test_twilio_credentials_are_for_the_account_in_the_path(twilio):
    other = "AC" + secrets.token_hex(16)
    r = api(twilio, "Messages.json", {"To": TO, "From": FROM, "Body": "x"},
            account=other)
    twilio_error(r, 401, 20003)


@pytest.mark.parametrize("data,code", [
    ({"From": FROM, "Body": "x"}, 21604),
    ({"To": TO, "Body": "x"}, 21603),
    ({"To": TO, "From": FROM}, 21602),
    ({"To": TO, "From": FROM, "Body": ""}, 21602),
    ({"To": "0612345678", "From": FROM, "Body": "x"}, 21211),
    ({"To": TO, "From": FROM, "Body": "x" * 1601}, 21617),
])
def test_twilio_message_missing_or_bad_fields(twilio, data, code):
    twilio_error(api(twilio, "Messages.json", data), 400, code)


@pytest.mark.parametrize("data,code", [
    ({"From": FROM, "Twiml": "<Response/>"}, 21201),
    ({"To": TO, "Twiml": "<Response/>"}, 21213),
    ({"To": TO, "From": FROM}, 21205),
    ({"To": TO, "From": FROM, "Twiml": "<Response><Say>"}, 12100),
])
def test_twilio_call_missing_or_bad_fields(twilio, data, code):
    twilio_error(api(twilio, "Calls.json", data), 400, code)


def test_twilio_call_pound_key_posts_signed_callback(twilio, portal):
    action = portal.base + "/twostep/call?t=abc&u=1"
    call = start_call(twilio, action)
    assert call["sid"].startswith("CA") and len(call["sid"]) == 34
    assert call["status"] == "in-progress"

    r = twilio.control("/standin/press", {"call": call["sid"], "digits": "#"})
    assert r.status_code == 200, r.text
    out = r.json()
    assert out["status"] == 200
    assert out["said"] == ["Thank you. Goodbye."]
    assert out["call"]["status"] == "completed"
    assert out["call"]["said"] == ["alice is signing in to Example.",
                                   "To approve, press the pound key.",
                                   "Thank you. Goodbye."]

    [cb] = portal.requests
    assert cb["path"] == "/twostep/call?t=abc&u=1"
    assert cb["headers"]["Content-Type"] == "application/x-www-form-urlencoded"
    params = dict(parse_qsl(cb["body"], keep_blank_values=True))
    assert params["Digits"] == "#"
    assert params["AccountSid"] == ACCOUNT
    assert params["CallSid"] == call["sid"]
    assert (params["From"], params["To"]) == (FROM, TO)
    assert params["CallStatus"] == "in-progress"
    assert cb["headers"]["X-Twilio-Signature"] == twilio_signature(
        TOKEN, action, params)

    # One Gather, one answer: the call is over.
    again = twilio.control("/standin/press",
                           {"call": call["sid"], "digits": "#"})
    assert again.status_code == 409
    assert len(portal.requests) == 1


@pytest.mark.parametrize("digits,sent", [("1", "1"), ("0", "0"), ("*", "*"),
                                         ("", ""), ("12", "1")])
def test_twilio_call_other_keys_and_silence(twilio, portal, digits, sent):
    action = portal.base + "/twostep/call"
    call = start_call(twilio, action)
    r = twilio.control("/standin/press", {"call": call["sid"],
                                          "digits": digits})
    assert r.status_code == 200, r.text
    [cb] = portal.requests
    params = dict(parse_qsl(cb["body"], keep_blank_values=True))
    assert params["Digits"] == sent
    assert cb["headers"]["X-Twilio-Signature"] == twilio_signature(
        TOKEN, action, params)


def test_twilio_default_finish_key_swallows_the_pound_key(twilio, portal):
    # Without finishOnKey="" Twilio takes '#' as the end of input, not as a
    # digit: the reason the module's TwiML sets it.
    call = start_call(twilio, portal.base + "/cb", finish="")
    twilio.control("/standin/press", {"call": call["sid"], "digits": "#"})
    [cb] = portal.requests
    params = dict(parse_qsl(cb["body"], keep_blank_values=True))
    assert params["Digits"] == "" and params["FinishedOnKey"] == "#"


@pytest.mark.parametrize("mode", ["wrong", "omit"])
def test_twilio_forged_callbacks_on_request(twilio, portal, mode):
    action = portal.base + "/cb"
    call = start_call(twilio, action)
    twilio.control("/standin/press", {"call": call["sid"], "digits": "#",
                                      "signature": mode})
    [cb] = portal.requests
    params = dict(parse_qsl(cb["body"], keep_blank_values=True))
    if mode == "omit":
        assert "X-Twilio-Signature" not in cb["headers"]
    else:
        assert cb["headers"]["X-Twilio-Signature"] != twilio_signature(
            TOKEN, action, params)


def test_twilio_callback_refused_ends_the_call(twilio, portal):
    portal.status = 403
    try:
        call = start_call(twilio, portal.base + "/cb")
        out = twilio.control("/standin/press", {"call": call["sid"],
                                                "digits": "#"}).json()
    finally:
        portal.status = 200
    assert out["status"] == 403
    assert out["call"]["status"] == "completed"
    assert "application error" in out["call"]["said"][-1]


def test_twilio_press_refuses_unknown_calls_and_keys(twilio, portal):
    r = twilio.control("/standin/press", {"call": "CA" + "0" * 32,
                                          "digits": "#"})
    assert r.status_code == 409
    call = start_call(twilio, portal.base + "/cb")
    r = twilio.control("/standin/press", {"call": call["sid"], "digits": "a"})
    assert r.status_code == 400
    assert portal.requests == []


def test_twilio_page_lists_texts_and_calls_escaped(twilio, portal):
    api(twilio, "Messages.json", {"To": TO, "From": FROM,
                                  "Body": "<script>alert(1)</script> 654321"})
    call = start_call(twilio, portal.base + "/cb")
    page = requests.get(twilio.base + "/", timeout=20)
    assert page.status_code == 200
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'none'" in csp and "unsafe-inline" not in csp
    # The one style block is allowed by its hash, nothing else is.
    style = page.text.split("<style>", 1)[1].split("</style>", 1)[0]
    assert "style-src 'sha256-%s'" % base64.b64encode(
        hashlib.sha256(style.encode()).digest()).decode() in csp
    assert "<script>" not in page.text
    assert "&lt;script&gt;alert(1)&lt;/script&gt; 654321" in page.text
    assert "alice is signing in to Example." in page.text
    assert 'name="call" value="%s"' % call["sid"] in page.text
    assert page.text.count('name="digits"') == 13   # 12 keys and silence

    # The keypad is a plain form: pressing '#' there sends the callback.
    r = requests.post(twilio.base + "/phone/press",
                      data={"call": call["sid"], "digits": "#"},
                      allow_redirects=False, timeout=20)
    assert r.status_code == 303
    [cb] = portal.requests
    assert dict(parse_qsl(cb["body"]))["Digits"] == "#"


# ------------------------------------------------------------ faults

def fault(standin, mode, **kw):
    r = standin.control("/standin/mode", dict(mode=mode, **kw))
    assert r.status_code == 200, r.text


def send_text(twilio, timeout=20):
    return requests.post(
        "%s/2010-04-01/Accounts/%s/Messages.json" % (twilio.base, ACCOUNT),
        data={"To": TO, "From": FROM, "Body": "x"}, auth=(ACCOUNT, TOKEN),
        timeout=timeout)


def publish(ntfy, obj, token=NTFY_TOKEN, timeout=20):
    headers = {"Authorization": "Bearer " + token} if token else {}
    return requests.post(ntfy.base + "/", data=json.dumps(obj),
                         headers=headers, timeout=timeout)


SENDERS = {"twilio": send_text,
           "ntfy": lambda s, timeout=20: publish(
               s, {"topic": "faults", "message": "x"}, timeout=timeout)}


@pytest.mark.parametrize("name", ["twilio", "ntfy"])
def test_faults(request, name):
    standin = request.getfixturevalue(name)
    send = SENDERS[name]

    fault(standin, "http500", count=1)
    r = send(standin)
    assert r.status_code == 500 and "code" in r.json()
    assert send(standin).status_code in (200, 201)   # count ran out

    fault(standin, "http429", count=1)
    assert send(standin).status_code == 429

    fault(standin, "garbage", count=1)
    r = send(standin)
    assert r.status_code == 200
    with pytest.raises(ValueError):
        r.json()

    fault(standin, "down", count=1)
    with pytest.raises(requests.ConnectionError):
        send(standin)

    # Half the promised body, then the connection closes (urllib3 1.x
    # hands the half over, 2.x raises).
    fault(standin, "truncated", count=1)
    try:
        r = send(standin)
        assert len(r.content) < int(r.headers["Content-Length"])
        with pytest.raises(ValueError):
            r.json()
    except requests.RequestException:
        pass

    fault(standin, "slow", seconds=3, count=1)
    with pytest.raises(requests.Timeout):
        send(standin, timeout=0.5)

    fault(standin, "http500", path="/elsewhere")
    assert send(standin).status_code in (200, 201)
    fault(standin, "normal")

    assert standin.control("/standin/mode",
                           {"mode": "melt"}).status_code == 400
    r = requests.post(standin.base + "/standin/mode", data="mode=down",
                      headers={"Content-Type":
                               "application/x-www-form-urlencoded"},
                      timeout=20)
    assert r.status_code == 415


# ------------------------------------------------------------ ntfy

def push(topic, deny_url, approve_url="https://login.example.com/approve"):
    return {"topic": topic, "title": "Sign-in to Example",
            "message": "alice is signing in from 203.0.113.7",
            "priority": 4, "tags": ["key"],
            "actions": [{"action": "view", "label": "Approve",
                         "url": approve_url, "clear": True},
                        {"action": "http", "label": "Deny", "url": deny_url,
                         "method": "POST", "clear": True}]}


def poll(ntfy, topic, token=NTFY_TOKEN, **params):
    headers = {"Authorization": "Bearer " + token} if token else {}
    r = requests.get("%s/%s/json" % (ntfy.base, topic),
                     params=dict(poll="1", **params), headers=headers,
                     timeout=20)
    return r


def ntfy_error(r, status, code):
    assert r.status_code == status, r.text
    body = r.json()
    assert body["code"] == code and body["http"] == status, body
    assert body["error"]
    return body


@pytest.mark.parametrize("token,status,code", [
    (None, 403, 40301), ("tk_wrong", 401, 40101), (NTFY_TOKEN + "x", 401,
                                                    40101)])
def test_ntfy_access_token(ntfy, token, status, code):
    ntfy_error(publish(ntfy, {"topic": "t1", "message": "x"}, token=token),
               status, code)
    ntfy_error(poll(ntfy, "t1", token=token), status, code)
    assert poll(ntfy, "t1").text == ""       # nothing was published


def test_ntfy_json_publish_and_poll(ntfy, portal):
    topic = secrets.token_urlsafe(18)
    r = publish(ntfy, push(topic, portal.base + "/deny"))
    assert r.status_code == 200, r.text
    assert r.text.endswith("}\n")
    msg = r.json()
    assert msg["event"] == "message" and msg["topic"] == topic
    assert len(msg["id"]) == 12 and msg["id"].isalnum()
    assert msg["expires"] > msg["time"] >= int(time.time()) - 5
    assert msg["title"] == "Sign-in to Example" and msg["priority"] == 4
    assert msg["tags"] == ["key"]
    assert [(a["action"], a["label"]) for a in msg["actions"]] == [
        ("view", "Approve"), ("http", "Deny")]
    assert all(a["id"] for a in msg["actions"])

    lines = poll(ntfy, topic).text.splitlines()
    assert [json.loads(line) for line in lines] == [msg]
    assert poll(ntfy, topic, since=msg["id"]).text == ""
    assert poll(ntfy, "other-topic").text == ""


def test_ntfy_header_publish(ntfy):
    r = requests.put(ntfy.base + "/hdr-topic", data="Backup done".encode(),
                     headers={"Authorization": "Bearer " + NTFY_TOKEN,
                              "X-Title": "Backups", "Priority": "high",
                              "Tags": "warning,skull",
                              "Actions": "view, Open, https://example.com, "
                                         "clear=true; http, Deny, "
                                         "https://example.com/deny, "
                                         "method=PUT"},
                     timeout=20)
    assert r.status_code == 200, r.text
    msg = r.json()
    assert (msg["title"], msg["message"], msg["priority"], msg["tags"]) == (
        "Backups", "Backup done", 4, ["warning", "skull"])
    assert msg["actions"][0]["clear"] is True
    assert msg["actions"][1]["method"] == "PUT"


@pytest.mark.parametrize("obj,code", [
    ({"topic": "a/b", "message": "x"}, 40009),
    ({"topic": "", "message": "x"}, 40009),
    ({"topic": "x" * 65, "message": "x"}, 40009),
    ({"topic": "t", "priority": 9}, 40007),
    ({"topic": "t", "actions": [{"action": "view", "label": "a",
                                 "url": "https://x"}] * 4}, 40018),
    ({"topic": "t", "actions": [{"action": "view", "label": "a",
                                 "url": "javascript:alert(1)"}]}, 40018),
])
def test_ntfy_bad_publish(ntfy, obj, code):
    ntfy_error(publish(ntfy, obj), 400, code)


def test_ntfy_not_json(ntfy):
    r = requests.post(ntfy.base + "/", data="{not json",
                      headers={"Authorization": "Bearer " + NTFY_TOKEN},
                      timeout=20)
    ntfy_error(r, 400, 40017)


def test_ntfy_deny_button_posts_like_the_app(ntfy, portal):
    topic = secrets.token_urlsafe(18)
    msg = publish(ntfy, push(topic, portal.base + "/deny?t=cap")).json()
    r = ntfy.control("/standin/action", {"id": msg["id"], "label": "Deny"})
    assert r.status_code == 200, r.text
    assert r.json()["status"] == 200
    [req] = portal.requests
    assert req["path"] == "/deny?t=cap"
    assert "Authorization" not in req["headers"]

    r = ntfy.control("/standin/action", {"id": msg["id"], "label": "Approve"})
    assert r.json() == {"url": "https://login.example.com/approve"}
    assert len(portal.requests) == 1         # a view opens, it sends nothing

    assert ntfy.control("/standin/action", {"id": msg["id"],
                                            "label": "Other"}).status_code \
        == 409
    listed = requests.get(ntfy.base + "/standin/messages",
                          params={"topic": topic}, timeout=20).json()
    assert [t["label"] for t in listed["messages"][0]["taps"]] == [
        "Deny", "Approve"]


def test_ntfy_subscribe_stream(ntfy):
    topic = secrets.token_urlsafe(18)
    with requests.get("%s/%s/json" % (ntfy.base, topic), stream=True,
                      headers={"Authorization": "Bearer " + NTFY_TOKEN},
                      timeout=20) as r:
        assert r.status_code == 200
        lines = r.iter_lines()
        assert json.loads(next(lines))["event"] == "open"
        publish(ntfy, {"topic": topic, "message": "hello"})
        msg = json.loads(next(lines))
        assert (msg["event"], msg["message"]) == ("message", "hello")


def test_ntfy_page_lists_pushes_with_buttons(ntfy, portal):
    topic = secrets.token_urlsafe(18)
    obj = push(topic, portal.base + "/deny")
    obj["message"] = "<img src=x onerror=alert(1)> from 203.0.113.7"
    msg = publish(ntfy, obj).json()
    page = requests.get(ntfy.base + "/", timeout=20)
    assert page.status_code == 200
    assert "<img" not in page.text
    assert "&lt;img src=x onerror=alert(1)&gt;" in page.text
    assert '<a href="https://login.example.com/approve"' in page.text
    assert topic not in page.text            # the topic is the user's secret
    r = requests.post(ntfy.base + "/phone/action",
                      data={"id": msg["id"], "label": "Deny"},
                      allow_redirects=False, timeout=20)
    assert r.status_code == 303
    assert [req["path"] for req in portal.requests] == ["/deny"]
