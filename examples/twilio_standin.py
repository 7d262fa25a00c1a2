#!/usr/bin/python3
"""A Twilio stand-in on loopback: text messages and phone calls without a
Twilio account, written from Twilio's public REST API documentation.

    /usr/bin/python3 examples/twilio_standin.py --port 9300 \\
        --account AC0123456789abcdef0123456789abcdef --token-file TOKEN

Then open http://127.0.0.1:9300/ for the texts that arrived and the calls
in progress, with a keypad to answer them.

It speaks plain HTTP (no TLS) and answers like Twilio's 2010-04-01 API:

  POST /2010-04-01/Accounts/{AccountSid}/Messages.json   To, From, Body
  POST /2010-04-01/Accounts/{AccountSid}/Calls.json      To, From, Twiml|Url
  GET  /2010-04-01/Accounts/{AccountSid}/Messages/{Sid}.json
  GET  /2010-04-01/Accounts/{AccountSid}/Calls/{Sid}.json

Every API request needs HTTP Basic authentication with the Account SID as
the user name and the Auth Token as the password, for the account in the
path; otherwise 401 with Twilio's error 20003. Parameters are form-encoded.
A missing or malformed parameter gives 400 and Twilio's error object
{"code", "message", "more_info", "status"}; the codes are Twilio's, the
wording of some messages is plausible rather than Twilio's own. A created
message or call is 201 and the resource, status "queued".

A call's TwiML (inline Twiml; a Url is recorded but not fetched) is read for
its <Say> texts and its <Gather>. Pressing a key (on the page, or POST
/standin/press) does what Twilio does when the person called presses it:
it POSTs the Gather's action URL with AccountSid, CallSid, Digits, From,
To, ... and an X-Twilio-Signature header (base64 HMAC-SHA1 with the Auth
Token over the URL followed by the parameters sorted by name, each name and
value appended). The finishOnKey key (default '#') ends the input instead
of being a digit, as at Twilio. The TwiML the action URL answers is read
for what the call says next.

Beyond Twilio (loopback peers only):
  GET  /                       the page: texts, calls, keypads
  GET  /standin/messages?to=   {"messages": [...]} newest last
  GET  /standin/calls?to=      {"calls": [...]} newest last
  POST /standin/press          {"call": sid, "digits": "#" | "" | ...,
                               "signature": "valid" | "wrong" | "omit"}
                               -> {"status": HTTP status of the callback,
                               "said": [...], "call": {...}}
  POST /standin/mode           fault injection (examples/standin_base.py)
  POST /standin/reset          forget messages and calls, mode normal
  POST /phone/press            the page's keypad (form-encoded)
The Auth Token is never logged or shown.
"""

import argparse
import base64
import hashlib
import hmac
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET
from email.utils import formatdate
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlencode

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standin_base as base  # noqa: E402

API_VERSION = "2010-04-01"
E164 = re.compile(r"\+[1-9][0-9]{7,14}")
SID_PATH = re.compile(r"/2010-04-01/Accounts/([^/]+)/(Messages|Calls)"
                      r"(?:/([A-Za-z0-9]+))?\.json")
MAX_BODY_CHARS = 1600          # Twilio's limit for a message body
MAX_TWIML_CHARS = 4000         # and for inline TwiML
MAX_KEPT = 200                 # messages and calls kept
KEYS = "123456789*0#"


def twilio_signature(token, url, params):
    data = url + "".join(k + v for k, v in sorted(params.items()))
    mac = hmac.new(token.encode(), data.encode(), hashlib.sha1).digest()
    return base64.b64encode(mac).decode()


def new_sid(prefix):
    return prefix + secrets.token_hex(16)


class ApiError(Exception):
    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self):
        return {"code": self.code, "message": self.message,
                "more_info": "https://www.twilio.com/docs/errors/%d"
                             % self.code,
                "status": self.status}


def read_twiml(text):
    """(texts said, the Gather's attributes or None, hangs up?) of a TwiML
    document; ValueError if it is not TwiML."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as e:
        raise ValueError("TwiML is not XML: %s" % e)
    if root.tag != "Response":
        raise ValueError("TwiML must be a <Response>")
    said, gather, hangup = [], None, False
    for verb in root:
        if verb.tag == "Say":
            said.append((verb.text or "").strip())
        elif verb.tag == "Gather":
            gather = dict(verb.attrib)
            said.extend((say.text or "").strip() for say in verb
                        if say.tag == "Say")
            break              # what follows runs only without input
        elif verb.tag == "Hangup":
            hangup = True
            break
    return said, gather, hangup


class Phones:
    """Messages sent and calls made, as the phones called see them."""

    def __init__(self, account, token):
        self.account = account
        self.token = token
        self.lock = threading.Lock()
        self.messages = []
        self.calls = []

    def reset(self):
        with self.lock:
            self.messages.clear()
            self.calls.clear()

    def check_auth(self, header, account):
        """Twilio's Basic authentication, for the account in the path."""
        ok = False
        if header and header.startswith("Basic "):
            try:
                user, _, password = base64.b64decode(
                    header[6:], validate=True).decode().partition(":")
                ok = (hmac.compare_digest(user, self.account)
                      and hmac.compare_digest(password, self.token)
                      and user == account)
            except (ValueError, UnicodeDecodeError):
                ok = False
        if not ok:
            raise ApiError(401, 20003, "Authenticate")

    def resource(self, kind, item):
        now = formatdate(item["created"]).replace("-0000", "+0000")
        out = {"account_sid": self.account, "api_version": API_VERSION,
               "date_created": now, "date_updated": now,
               "direction": "outbound-api", "from": item["from"],
               "sid": item["sid"], "status": item["status"], "to": item["to"],
               "uri": "/%s/Accounts/%s/%s/%s.json" % (
                   API_VERSION, self.account, kind, item["sid"])}
        if kind == "Messages":
            out.update(body=item["body"], error_code=None, error_message=None,
                       num_segments=str(1 + len(item["body"]) // 160),
                       num_media="0", price=None, price_unit="USD",
                       date_sent=None)
        else:
            out.update(answered_by=None, duration=None, price=None,
                       price_unit="USD", start_time=None, end_time=None)
        return out

    def send_message(self, params):
        to, frm, body = (params.get(k) for k in ("To", "From", "Body"))
        if not to:
            raise ApiError(400, 21604, "A 'To' phone number is required.")
        if not frm:
            raise ApiError(400, 21603, "A 'From' phone number is required.")
        if not body:
            raise ApiError(400, 21602, "Message body is required.")
        if not E164.fullmatch(to):
            raise ApiError(400, 21211, "Invalid 'To' Phone Number: %s" % to)
        if len(body) > MAX_BODY_CHARS:
            raise ApiError(400, 21617, "The concatenated message body "
                                       "exceeds the 1600 character limit.")
        item = {"sid": new_sid("SM"), "to": to, "from": frm, "body": body,
                "status": "queued", "created": time.time()}
        with self.lock:
            self.messages.append(item)
            del self.messages[:-MAX_KEPT]
        return self.resource("Messages", item)

    def start_call(self, params):
        to, frm = params.get("To"), params.get("From")
        twiml, url = params.get("Twiml"), params.get("Url")
        if not to:
            raise ApiError(400, 21201, "No 'To' number is specified")
        if not frm:
            raise ApiError(400, 21213, "No 'From' number is specified")
        if not E164.fullmatch(to):
            raise ApiError(400, 21211, "Invalid 'To' Phone Number: %s" % to)
        if not twiml and not url:
            raise ApiError(400, 21205, "Url parameter is required.")
        item = {"sid": new_sid("CA"), "to": to, "from": frm,
                "status": "queued", "created": time.time(), "said": [],
                "gather": None, "presses": [], "url": url}
        if twiml:
            if len(twiml) > MAX_TWIML_CHARS:
                raise ApiError(400, 21236, "Twiml exceeds 4000 characters.")
            try:
                said, gather, _ = read_twiml(twiml)
            except ValueError as e:
                raise ApiError(400, 12100, "Document parse failure: %s" % e)
            item.update(said=said, gather=gather, status="in-progress")
        with self.lock:
            self.calls.append(item)
            del self.calls[:-MAX_KEPT]
        return self.resource("Calls", item)

    def find(self, kind, sid):
        with self.lock:
            items = self.messages if kind == "Messages" else self.calls
            for item in items:
                if item["sid"] == sid:
                    return item
        return None

    def listing(self, kind, to=None):
        with self.lock:
            items = self.messages if kind == "messages" else self.calls
            return [self.public(item) for item in items
                    if to is None or item["to"] == to]

    @staticmethod
    def public(item):
        return {k: v for k, v in item.items()}

    def press(self, sid, digits, signature="valid"):
        """The person called presses `digits`: Twilio's Gather callback."""
        call = self.find("Calls", sid)
        if call is None:
            raise LookupError("no such call")
        if not isinstance(digits, str) or any(d not in KEYS for d in digits):
            raise ValueError("digits must be keys of a phone keypad")
        if signature not in ("valid", "wrong", "omit"):
            raise ValueError("signature must be valid, wrong or omit")
        with self.lock:
            gather = call["gather"]
            if call["status"] != "in-progress" or gather is None:
                raise LookupError("the call is not waiting for a key")
            call["gather"] = None        # one Gather, one answer
        finish = gather.get("finishOnKey", "#")
        finished_on = ""
        if finish and finish in digits:
            finished_on = finish
            digits = digits[:digits.index(finish)]
        num = int(gather.get("numDigits") or 0)
        if num:
            digits = digits[:num]
        action = gather.get("action")
        if not action:
            raise LookupError("the Gather has no action URL")
        if not digits and gather.get("actionOnEmptyResult") != "true" \
                and not finished_on:
            with self.lock:
                call["status"] = "completed"
            return {"status": None, "said": [], "call": self.public(call)}
        params = {"AccountSid": self.account, "ApiVersion": API_VERSION,
                  "CallSid": sid, "CallStatus": "in-progress",
                  "Called": call["to"], "Caller": call["from"],
                  "Digits": digits, "Direction": "outbound-api",
                  "FinishedOnKey": finished_on, "From": call["from"],
                  "To": call["to"]}
        headers = {"Content-Type": "application/x-www-form-urlencoded",
                   "User-Agent": "TwilioProxy/1.1"}
        if signature == "valid":
            headers["X-Twilio-Signature"] = twilio_signature(
                self.token, action, params)
        elif signature == "wrong":
            headers["X-Twilio-Signature"] = twilio_signature(
                self.token + "x", action, params)
        req = urllib.request.Request(action, data=urlencode(params).encode(),
                                     headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=15) as resp:
                status, text = resp.status, resp.read(64 * 1024)
        except urllib.error.HTTPError as e:
            status, text = e.code, e.read(64 * 1024)
        except OSError as e:
            status, text = None, str(e).encode()
        said = []
        with self.lock:
            call["presses"].append({"digits": digits, "status": status})
            if status == 200:
                try:
                    said, gather, hangup = read_twiml(text.decode())
                except (ValueError, UnicodeDecodeError):
                    said, gather, hangup = ["(an application error)"], None, True
                call["said"].extend(said)
                call["gather"] = gather
                if hangup or gather is None:
                    call["status"] = "completed"
            else:
                call["said"].append("We are sorry, an application error has "
                                    "occurred. Goodbye.")
                call["status"] = "completed"
        return {"status": status, "said": said, "call": self.public(call)}


class TwilioHandler(base.Handler):
    NAME = "twilio-standin"
    server_version = "TwilioStandin/1.0"

    def is_api(self, path):
        return path.startswith("/2010-04-01/")

    def api_error(self, status, message):
        self.send_json(status, ApiError(status, status * 100,
                                        message.capitalize()).body())

    def truncated_body(self):
        return (b'{"sid": "SM' + b"0" * 32 + b'", "status": "queued", '
                b'"error_code": null}')

    def api(self, method, url, body):
        phones = self.server.state
        try:
            m = SID_PATH.fullmatch(url.path)
            if not m:
                raise ApiError(404, 20404, "The requested resource %s was "
                                           "not found" % url.path)
            account, kind, sid = m.groups()
            phones.check_auth(self.headers.get("Authorization"), account)
            if sid is not None:
                if method != "GET":
                    raise ApiError(405, 20004, "Method not allowed")
                item = phones.find(kind, sid)
                if item is None:
                    raise ApiError(404, 20404, "The requested resource was "
                                               "not found")
                self.send_json(200, phones.resource(kind, item))
                return
            if method != "POST":
                raise ApiError(405, 20004, "Method not allowed")
            try:
                pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True,
                                  strict_parsing=bool(body))
            except (UnicodeDecodeError, ValueError):
                raise ApiError(400, 20001, "Invalid form body")
            params = dict(pairs)
            if kind == "Messages":
                out = phones.send_message(params)
                self.log_result = "sms to %s" % base.clean(out["to"])
            else:
                out = phones.start_call(params)
                self.log_result = "call to %s" % base.clean(out["to"])
            self.send_json(201, out)
        except ApiError as e:
            self.log_result = (self.log_result + " %d" % e.code).strip()
            extra = ((("WWW-Authenticate", 'Basic realm="Twilio API"'),)
                     if e.status == 401 else ())
            self.send_json(e.status, e.body(), extra)

    def control(self, method, url):
        phones = self.server.state
        query = parse_qs(url.query)
        to = query.get("to", [None])[0]
        if url.path in ("/standin/messages", "/standin/calls") \
                and method == "GET":
            kind = url.path.rsplit("/", 1)[1]
            self.send_json(200, {kind: phones.listing(kind, to)})
        elif url.path == "/standin/reset" and method == "POST":
            if self.read_json() is not None:
                phones.reset()
                self.server.faults.set({"mode": "normal"})
                self.send_json(200, {"reset": True})
        elif url.path == "/standin/press" and method == "POST":
            req = self.read_json()
            if req is not None:
                try:
                    self.send_json(200, phones.press(
                        req.get("call"), req.get("digits"),
                        req.get("signature", "valid")))
                except LookupError as e:
                    self.send_json(409, {"error": str(e)})
                except ValueError as e:
                    self.send_json(400, {"error": str(e)})
        elif url.path == "/phone/press" and method == "POST":
            form = dict(parse_qsl((self.read_body() or b"").decode(
                "utf-8", "replace")))
            try:
                phones.press(form.get("call"), form.get("digits", ""))
            except (LookupError, ValueError) as e:
                self.log_result = str(e)
            self.redirect_home()
        else:
            self.send_text(404, "not found\n")

    def index(self):
        phones = self.server.state
        parts = []
        calls = phones.listing("calls")
        for call in reversed(calls):
            said = "".join("<p>&ldquo;%s&rdquo;</p>" % base.esc(s)
                           for s in call["said"]) or "<p>(silence)</p>"
            keypad = ""
            if call["status"] == "in-progress" and call["gather"]:
                keys = "".join(
                    '<button name="digits" value="%s">%s</button>'
                    % (base.esc(k), base.esc(k)) for k in KEYS)
                keypad = ('<form method="post" action="/phone/press">'
                          '<input type="hidden" name="call" value="%s">'
                          '<div class="keypad">%s</div>'
                          '<p><button name="digits" value="">Press nothing'
                          '</button></p></form>' % (base.esc(call["sid"]),
                                                    keys))
            parts.append('<section><h2>Call to %s</h2><p class="meta">from %s,'
                         ' %s, %s</p>%s%s</section>' % (
                             base.esc(call["to"]), base.esc(call["from"]),
                             base.esc(call["status"]),
                             time.strftime("%H:%M:%S", time.localtime(
                                 call["created"])), said, keypad))
        for msg in reversed(phones.listing("messages")):
            parts.append('<section><h2>Text to %s</h2><p class="meta">from %s,'
                         ' %s</p><p>%s</p></section>' % (
                             base.esc(msg["to"]), base.esc(msg["from"]),
                             time.strftime("%H:%M:%S", time.localtime(
                                 msg["created"])), base.esc(msg["body"])))
        body = "".join(parts) or '<p class="empty">No texts or calls yet.</p>'
        return base.page("Twilio stand-in: phones",
                         "Texts and calls sent through this stand-in, newest "
                         "first.", body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9300)
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1); "
                             "/, /standin and /phone answer loopback only")
    parser.add_argument("--account", required=True, help="the Account SID")
    parser.add_argument("--token-file", required=True,
                        help="file holding the Auth Token")
    args = parser.parse_args(argv)
    token = base.read_secret(args.token_file, "Auth Token")
    server = base.Server((args.bind, args.port), TwilioHandler,
                         Phones(args.account, token))
    return base.serve(server, "twilio-standin: listening on http://%s:%d/ "
                              "(account %s)" % (args.bind,
                                                server.server_address[1],
                                                args.account))


if __name__ == "__main__":
    sys.exit(main())
