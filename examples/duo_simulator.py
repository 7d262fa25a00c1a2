#!/usr/bin/python3
"""A Duo Auth API v2 simulator on loopback: push, phone call, SMS and passcodes
without a Duo account.

    /usr/bin/python3 examples/duo_simulator.py --port 8443 \\
        --config examples/duo_simulator/config.sample.json

Then open http://127.0.0.1:8443/ for each user's simulated phone.

It speaks plain HTTP (no TLS) and answers like Duo's Auth API v2 with the
documented envelope, {"stat": "OK", "response": {...}} or {"stat": "FAIL",
"code": NNNNN, "message": "...", "message_detail": "..."}, HTTP status = the
first three digits of the code:

  GET  /auth/v2/ping         unsigned liveness check -> {"time": ...}
  GET  /auth/v2/check        signed check of ikey/skey/signature
  POST /auth/v2/preauth      username|user_id -> result auth|allow|deny|enroll
  POST /auth/v2/auth         factor auto|push|phone|sms|passcode, async=1
  GET  /auth/v2/auth_status  txid -> long-polls, result waiting|allow|deny

Every /auth/v2 request but ping must carry a Duo v2 signature (HMAC-SHA512):
Authorization: Basic base64(ikey:hex(HMAC-SHA512(skey, canon))) where canon is
the lines date (X-Duo-Date, else Date), METHOD, lower-cased host, path, and the
parameters (query string, and for POST the form-urlencoded body) RFC 3986
encoded, sorted and joined with '&'. The host is taken from the Host header
as sent; the same host without its :port is accepted too (Duo's own clients
differ there, and real Duo never sees a port). Dates more than
sig_window_seconds (300) away from now are refused.

Beyond Duo (loopback peers only):
  GET  /                     index: users, links to their phones
  GET  /phone/<user>         the user's "phone": push requests, calls, texts
  POST /phone/<user>/respond form actions of that page (no JavaScript needed)
  GET  /phone/<user>/version JSON {"version": n}, polled by the page's script
  POST /sim/respond          {"user", "action": approve|deny|fraud|answer|
                             press1, "txid"?, "number"?, "factor"?}
  GET  /sim/last_sms?user=   the latest SMS passcode sent to the user
  GET  /sim/transactions     all transactions (?user= to filter)
  GET|POST /sim/mode         fault injection for /auth/v2/*: {"mode": normal|
                             down|garbage|slow|http500|http429|stat_fail|
                             truncated, "seconds": N, "count": N, "path": P}
  POST /sim/reset            forget transactions and texts, mode normal
POST bodies to /sim/* are JSON (Content-Type: application/json), which a
foreign web page cannot send without CORS, so it cannot drive the simulator.

The configuration format is described in examples/duo_simulator/README.md.
One line per request goes to stderr; the skey, passcodes and signatures are
never logged.
"""

import argparse
import base64
import binascii
import email.utils
import hashlib
import hmac
import html
import json
import random
import secrets
import signal
import socket
import sys
import threading
import time
import uuid
from http.server import ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, quote, unquote, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
from standin_base import Faults, Plumbing, clean, is_loopback  # noqa: E402

STATIC_DIR = Path(__file__).resolve().parent / "duo_simulator"
STATIC_FILES = {"phone.css": "text/css; charset=utf-8",
                "phone.js": "text/javascript; charset=utf-8"}

MAX_BODY = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_TXS = 1000          # finished transactions beyond this are forgotten
MAX_TEXTS = 50          # text messages kept per user
USER_STATUSES = ("auth", "allow", "deny", "enroll")
CAPABILITIES = ("auto", "push", "phone", "sms", "mobile_otp")
FAULT_MODES = ("normal", "down", "garbage", "slow", "http500", "http429",
               "stat_fail", "truncated")
SIM_ACTIONS = ("approve", "deny", "fraud", "answer", "press1")
AUTO_ACTIONS = ("approve", "deny", "fraud", "none")

DEFAULTS = {
    "unknown_users": "enroll",
    "long_poll_seconds": 2.0,
    "tx_timeout_seconds": 60.0,
    "sig_window_seconds": 300.0,
    "slow_seconds": 5.0,
}

# status_msg texts. Those Duo is known to send are Duo's; the others are
# plausible wording (see README.md).
MSG = {
    "auth": "Account is active",
    "allow": "Two-factor authentication is bypassed for this user",
    "deny": "Login denied for this user",
    "enroll": "Enroll an authentication device to proceed",
    "pushed": "Pushed a login request to your device...",
    "calling": "Dialing %s...",
    "answered": "Answered. Press any key on your phone to log in.",
    "success": "Success. Logging you in...",
    "denied": "Login request denied.",
    "wrong_number": "Login request denied: the wrong number was picked.",
    "fraud": "Login request reported as fraud.",
    "timeout": "Login request timed out.",
    "sent": "New SMS passcodes sent.",
    "bad_passcode": "Invalid passcode, please try again.",
    "bypass": "Authentication bypassed for this user.",
    "not_enrolled": "The user must enroll before authenticating.",
}


class ConfigError(Exception):
    pass


class ApiError(Exception):
    """A Duo error answer: HTTP status is the first three digits of code."""

    def __init__(self, code, message, detail=None):
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail

    def body(self):
        out = {"stat": "FAIL", "code": self.code, "message": self.message}
        if self.detail:
            out["message_detail"] = self.detail
        return out


def missing(name):
    return ApiError(40001, "Missing required request parameters", name)


def invalid(name):
    return ApiError(40002, "Invalid request parameters", name)


# ------------------------------------------------------------ configuration

def _number(cfg, key, where):
    value = cfg[key]
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or value < 0:
        raise ConfigError("%s: %s must be a number >= 0" % (where, key))
    return float(value)


def load_config(path, ikey=None, skey_file=None):
    """The configuration file, checked, with defaults filled in."""
    try:
        raw = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as e:
        raise ConfigError("cannot read %s: %s" % (path, e))
    if not isinstance(raw, dict):
        raise ConfigError("%s: the top level must be an object" % path)
    cfg = dict(DEFAULTS)
    cfg.update(raw)
    if ikey:
        cfg["ikey"] = ikey
    if skey_file:
        try:
            cfg["skey"] = Path(skey_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError("cannot read the skey file: %s" % e)
    for key in ("ikey", "skey"):
        if not isinstance(cfg.get(key), str) or not cfg[key]:
            raise ConfigError("%s: %s is missing (a string)" % (path, key))
    if cfg["unknown_users"] not in ("enroll", "deny"):
        raise ConfigError('unknown_users must be "enroll" or "deny"')
    for key in ("long_poll_seconds", "tx_timeout_seconds",
                "sig_window_seconds", "slow_seconds"):
        cfg[key] = _number(cfg, key, path)
    users = cfg.get("users", {})
    if not isinstance(users, dict):
        raise ConfigError("users must be an object of name -> user")
    cfg["users"] = {name: check_user(name, user)
                    for name, user in users.items()}
    ids = {}
    for name, user in cfg["users"].items():
        if user["user_id"] in ids:
            raise ConfigError("users %s and %s have the same user_id"
                              % (ids[user["user_id"]], name))
        ids[user["user_id"]] = name
    return cfg


def check_user(name, user):
    where = "user %r" % name
    if not name or not isinstance(user, dict):
        raise ConfigError("%s: must be a non-empty name and an object" % where)
    out = dict(user)
    out.setdefault("status", "auth")
    if out["status"] not in USER_STATUSES:
        raise ConfigError("%s: status must be one of %s"
                          % (where, ", ".join(USER_STATUSES)))
    out.setdefault("user_id",
                   "DU" + hashlib.sha1(name.encode()).hexdigest()[:18].upper())
    out["number_matching"] = bool(out.get("number_matching", False))
    if "tx_timeout_seconds" in out:
        out["tx_timeout_seconds"] = _number(out, "tx_timeout_seconds", where)
    codes = out.get("passcodes", [])
    if not isinstance(codes, list) or not all(isinstance(c, str) and c
                                              for c in codes):
        raise ConfigError("%s: passcodes must be a list of strings" % where)
    out["passcodes"] = list(codes)
    devices = []
    for i, dev in enumerate(out.get("devices", [])):
        if not isinstance(dev, dict) or not isinstance(dev.get("device"), str):
            raise ConfigError('%s: device %d needs a "device" id'
                              % (where, i))
        dev = dict(dev)
        dev.setdefault("type", "phone")
        dev.setdefault("number", "")
        dev.setdefault("name", "")
        caps = dev.get("capabilities", [])
        if not isinstance(caps, list) or any(c not in CAPABILITIES
                                             for c in caps):
            raise ConfigError("%s: capabilities must be a list of %s"
                              % (where, ", ".join(CAPABILITIES)))
        # Duo lists "auto" first for any device it can push to or call.
        if "auto" not in caps and ("push" in caps or "phone" in caps):
            caps = ["auto"] + caps
        dev["capabilities"] = caps
        dev.setdefault("display_name", default_display_name(dev))
        devices.append(dev)
    out["devices"] = devices
    auto = out.get("auto", {})
    if not isinstance(auto, dict):
        raise ConfigError("%s: auto must be an object" % where)
    for factor in ("push", "phone"):
        if auto.get(factor, "none") not in AUTO_ACTIONS:
            raise ConfigError("%s: auto.%s must be one of %s"
                              % (where, factor, ", ".join(AUTO_ACTIONS)))
    out["auto"] = {"push": auto.get("push", "none"),
                   "phone": auto.get("phone", "none"),
                   "delay": _number(dict(auto, delay=auto.get("delay", 1)),
                                    "delay", where + " auto")}
    return out


def mask_number(number):
    digits = [c for c in number if c.isdigit()]
    if len(digits) < 4:
        return number
    return "XXX-XXX-" + "".join(digits[-4:])


def default_display_name(dev):
    label = "Phone" if dev["type"] == "phone" else "Token"
    return "%s (%s)" % (label, mask_number(dev["number"])) \
        if dev["number"] else label


# ------------------------------------------------------------ signatures

def canon_params(pairs):
    """Duo v2: RFC 3986-encode names and values (all but A-Z a-z 0-9 - . _ ~),
    sort, join with '&'."""
    return "&".join("%s=%s" % kv for kv in sorted(
        (quote(k, safe="~"), quote(v, safe="~")) for k, v in pairs))


def host_variants(host):
    """The Host header lower-cased, and the same without a :port."""
    host = host.strip().lower()
    out = [host]
    if host.startswith("["):
        bare = host.split("]", 1)[0] + "]"
    elif host.count(":") == 1:
        bare = host.split(":", 1)[0]
    else:
        bare = host
    if bare != host:
        out.append(bare)
    return out


def sign_canon(skey, date, method, host, path, pairs):
    canon = "\n".join([date, method.upper(), host, path, canon_params(pairs)])
    return hmac.new(skey.encode("utf-8"), canon.encode("utf-8"),
                    hashlib.sha512).hexdigest()


def verify_request(cfg, headers, method, path, pairs, now=None):
    """Raises ApiError (HTTP 401) unless the request is signed as Duo v2
    wants it."""
    auth = headers.get("Authorization")
    if not auth:
        raise ApiError(40101, "Missing request credentials")
    scheme, _, blob = auth.strip().partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError
        decoded = base64.b64decode(blob.strip(), validate=True).decode("utf-8")
        ikey, sep, sig = decoded.partition(":")
        if not sep:
            raise ValueError
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise ApiError(40101, "Missing request credentials")
    date = headers.get("X-Duo-Date") or headers.get("Date")
    if not date:
        raise ApiError(40104, "Missing request timestamp")
    if not hmac.compare_digest(ikey.encode("utf-8"),
                               cfg["ikey"].encode("utf-8")):
        raise ApiError(40102, "Invalid integration key in request credentials")
    try:
        when = email.utils.mktime_tz(email.utils.parsedate_tz(date))
    except (TypeError, ValueError, OverflowError):
        raise ApiError(40105, "Invalid request timestamp")
    now = time.time() if now is None else now
    if abs(now - when) > cfg["sig_window_seconds"]:
        raise ApiError(40105, "Request timestamp is too old or too far "
                              "in the future")
    for host in host_variants(headers.get("Host") or ""):
        want = sign_canon(cfg["skey"], date, method, host, path, pairs)
        if hmac.compare_digest(want.encode(), sig.encode("utf-8")):
            return
    raise ApiError(40103, "Invalid signature in request credentials")


# ------------------------------------------------------------ state

class Tx:
    """One authentication attempt (push, call, text or passcode)."""

    def __init__(self, user, factor, device=None, timeout=60.0, info=None):
        self.txid = str(uuid.uuid4())
        self.user = user
        self.factor = factor
        self.device = device
        self.created = time.time()
        self.expires = time.monotonic() + timeout
        self.result = "waiting"
        self.status = ""
        self.status_msg = ""
        self.finished = None
        self.version = 0          # bumped on every status change
        self.reported = 0         # the version auth_status last answered
        self.number = None        # number matching: the right answer
        self.choices = []
        self.answered = False     # phone: picked up
        self.info = info or {}

    def public(self):
        return {
            "txid": self.txid, "user": self.user, "factor": self.factor,
            "device": self.device, "result": self.result,
            "status": self.status, "status_msg": self.status_msg,
            "created": round(self.created, 3),
            "finished": round(self.finished, 3) if self.finished else None,
            "number": self.number, "choices": self.choices,
            "answered": self.answered, "info": self.info,
        }

    def status_response(self):
        out = {"result": self.result, "status": self.status,
               "status_msg": self.status_msg}
        if self.number is not None and self.result == "waiting":
            out["number"] = self.number     # simulator extension
        return out


class Sim:
    """All mutable state, behind one lock; waiters use its condition."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.cond = threading.Condition(threading.RLock())
        self.rng = random.SystemRandom()
        self.form_token = secrets.token_urlsafe(24)
        self.faults = Faults(FAULT_MODES, cfg["slow_seconds"])
        self.timers = []
        self.reset()

    # -- bookkeeping

    def reset(self):
        with self.cond:
            for t in self.timers:
                t.cancel()
            self.timers = []
            # Whoever still waits on a forgotten transaction hears "deny".
            for tx in getattr(self, "txs", {}).values():
                if tx.result == "waiting":
                    self.change(tx, "deny", "deny", MSG["denied"])
            self.txs = {}                       # txid -> Tx, in order
            self.texts = {u: [] for u in self.cfg["users"]}
            self.used_static = {u: set() for u in self.cfg["users"]}
            self.versions = {u: 0 for u in self.cfg["users"]}
            self.faults.reset()
            self.cond.notify_all()

    def user(self, name=None, user_id=None):
        users = self.cfg["users"]
        if name is not None:
            return users.get(name)
        for uname, u in users.items():
            if u["user_id"] == user_id:
                return uname
        return None

    def bump(self, user):
        if user in self.versions:
            self.versions[user] += 1
        self.cond.notify_all()

    def change(self, tx, result, status, msg):
        tx.result, tx.status, tx.status_msg = result, status, msg
        tx.version += 1
        if result != "waiting" and tx.finished is None:
            tx.finished = time.time()
        self.bump(tx.user)

    def expire_due(self):
        now = time.monotonic()
        for tx in self.txs.values():
            if tx.result == "waiting" and tx.expires <= now:
                self.change(tx, "deny", "timeout", MSG["timeout"])

    def add(self, tx):
        """Keep a new transaction; forget the oldest finished ones beyond
        MAX_TXS."""
        self.txs[tx.txid] = tx
        if len(self.txs) > MAX_TXS:
            for old in [t for t in self.txs.values()
                        if t.result != "waiting"][:len(self.txs) - MAX_TXS]:
                del self.txs[old.txid]

    def pending(self, user):
        self.expire_due()
        return [tx for tx in self.txs.values()
                if tx.user == user and tx.result == "waiting"]

    # -- fault injection

    # -- Duo endpoints

    def preauth(self, params):
        name = params.get("username")
        if name is None and params.get("user_id") is not None:
            name = self.user(user_id=params["user_id"])
            if name is None:
                raise invalid("user_id")
        if name is None:
            raise missing("username")
        user = self.user(name)
        if user is None:
            status = self.cfg["unknown_users"]
            out = {"result": status, "status_msg": MSG[status]}
        else:
            status = user["status"]
            out = {"result": status,
                   "status_msg": user.get("status_msg", MSG[status])}
        if status == "enroll":
            out["enroll_portal_url"] = "%s/portal?code=%s" % (
                params["_base"], secrets.token_hex(8))
        if status == "auth":
            with self.cond:
                out["devices"] = [self.device_view(name, d)
                                  for d in user["devices"]]
        return name, out

    def device_view(self, name, dev):
        out = {k: dev[k] for k in ("device", "type", "number", "name",
                                   "display_name", "capabilities")}
        if "sms" in dev["capabilities"]:
            unused = [t for t in self.texts.get(name, [])
                      if not t["used"] and t["device"] == dev["device"]]
            if unused:
                out["sms_nextcode"] = unused[-1]["passcode"][0]
        return out

    def pick_device(self, user, wanted, capability):
        for dev in user["devices"]:
            if (wanted in (None, "auto") or dev["device"] == wanted) \
                    and capability in dev["capabilities"]:
                return dev
        return None

    def start_auth(self, params):
        """A new transaction for /auth, finished already unless it waits
        for the phone (push, call)."""
        factor = params.get("factor")
        if not factor:
            raise missing("factor")
        if factor not in ("auto", "push", "phone", "sms", "passcode"):
            raise invalid("factor")
        name = params.get("username")
        if name is None and params.get("user_id") is not None:
            name = self.user(user_id=params["user_id"])
            if name is None:
                raise invalid("user_id")
        if name is None:
            raise missing("username")
        if factor in ("push", "phone", "sms") and not params.get("device"):
            raise missing("device")
        if factor == "passcode" and not params.get("passcode"):
            raise missing("passcode")
        user = self.user(name)
        info = {k: params[k] for k in ("type", "display_username", "ipaddr",
                                       "hostname", "pushinfo")
                if params.get(k)}
        with self.cond:
            self.expire_due()
            timeout = (user or {}).get("tx_timeout_seconds",
                                       self.cfg["tx_timeout_seconds"])
            if user is None or user["status"] != "auth":
                status = user["status"] if user else self.cfg["unknown_users"]
                tx = Tx(name, factor, timeout=timeout, info=info)
                self.add(tx)
                if status == "allow":
                    self.change(tx, "allow", "bypass", MSG["bypass"])
                elif status == "enroll":
                    self.change(tx, "deny", "deny", MSG["not_enrolled"])
                else:
                    self.change(tx, "deny", "deny", MSG["denied"])
                return tx
            if factor == "passcode":
                return self.check_passcode(name, user, params["passcode"],
                                           timeout)
            if factor == "auto":
                wanted = params.get("device", "auto")
                dev = self.pick_device(user, wanted, "push")
                factor = "push" if dev else "phone"
                dev = dev or self.pick_device(user, wanted, "phone")
            else:
                dev = self.pick_device(user, params["device"], factor)
            if dev is None:
                raise invalid("device")
            tx = Tx(name, factor, dev["device"], timeout, info)
            self.add(tx)
            if factor == "sms":
                code = "%d%06d" % (self.rng.randint(1, 9),
                                   self.rng.randint(0, 999999))
                del self.texts[name][:-MAX_TEXTS + 1]
                self.texts[name].append({
                    "time": time.time(), "device": dev["device"],
                    "passcode": code, "used": False,
                    "text": "Duo passcode: %s" % code})
                self.change(tx, "deny", "sent", MSG["sent"])
                return tx
            if factor == "push":
                if user["number_matching"]:
                    tx.number = self.rng.randint(10, 99)
                    others = self.rng.sample(
                        [n for n in range(10, 100) if n != tx.number], 2)
                    tx.choices = sorted(others + [tx.number],
                                        key=lambda _: self.rng.random())
                self.change(tx, "waiting", "pushed", MSG["pushed"])
            else:
                self.change(tx, "waiting", "calling",
                            MSG["calling"] % mask_number(dev["number"]))
            action = user["auto"][factor]
            if action != "none":
                timer = threading.Timer(user["auto"]["delay"], self.auto_act,
                                        (tx.txid, action))
                timer.daemon = True
                self.timers = [t for t in self.timers if t.is_alive()]
                self.timers.append(timer)
                timer.start()
            return tx

    def check_passcode(self, name, user, code, timeout):
        tx = Tx(name, "passcode", timeout=timeout)
        self.add(tx)
        for text in self.texts[name]:
            if not text["used"] and hmac.compare_digest(
                    text["passcode"].encode(), code.encode("utf-8")):
                text["used"] = True
                tx.device = text["device"]
                self.change(tx, "allow", "allow", MSG["success"])
                return tx
        for static in user["passcodes"]:
            if static not in self.used_static[name] and hmac.compare_digest(
                    static.encode("utf-8"), code.encode("utf-8")):
                self.used_static[name].add(static)
                self.change(tx, "allow", "allow", MSG["success"])
                return tx
        self.change(tx, "deny", "deny", MSG["bad_passcode"])
        return tx

    def auto_act(self, txid, action):
        with self.cond:
            tx = self.txs.get(txid)
            if tx is not None and tx.result == "waiting":
                self.act(tx, "press1" if action == "approve"
                         and tx.factor == "phone" else action)

    def act(self, tx, action, number=None):
        """What the user does on the phone. Returns None, or why not."""
        self.expire_due()
        if tx.result != "waiting":
            return "the transaction is over (%s)" % tx.status
        if action in ("answer", "press1") and tx.factor != "phone":
            return "%s is for phone calls, this is a %s" % (action, tx.factor)
        if action == "answer":
            if tx.answered:
                return "the call is answered already"
            tx.answered = True
            self.change(tx, "waiting", "answered", MSG["answered"])
        elif action in ("approve", "press1"):
            tx.answered = tx.answered or tx.factor == "phone"
            if tx.number is not None and number is not None \
                    and str(number) != str(tx.number):
                self.change(tx, "deny", "deny", MSG["wrong_number"])
            else:
                self.change(tx, "allow", "allow", MSG["success"])
        elif action == "deny":
            self.change(tx, "deny", "deny", MSG["denied"])
        elif action == "fraud":
            self.change(tx, "deny", "fraud", MSG["fraud"])
        else:
            return "unknown action"
        return None

    def wait_status(self, tx, seconds):
        """auth_status: the next status change, or the present one after
        `seconds` of waiting."""
        deadline = time.monotonic() + seconds
        with self.cond:
            while True:
                self.expire_due()
                if tx.result != "waiting" or tx.version > tx.reported:
                    break
                now = time.monotonic()
                if now >= deadline:
                    break
                self.cond.wait(min(deadline, tx.expires) - now + 0.005)
            tx.reported = tx.version
            return tx.status_response()

    def wait_final(self, tx):
        """Synchronous /auth: until the user answers or it times out."""
        with self.cond:
            while True:
                self.expire_due()
                if tx.result != "waiting":
                    tx.reported = tx.version
                    return tx.status_response()
                self.cond.wait(max(0.0, tx.expires - time.monotonic()) + 0.005)


# ------------------------------------------------------------ HTTP

def peek_user(query, body):
    """The username a request names, for the log only (before any check)."""
    try:
        pairs = parse_qsl(query) + parse_qsl(body.decode("utf-8", "replace"))
    except ValueError:
        return "-"
    params = dict(pairs)
    return params.get("username") or params.get("user_id") or "-"


class SimHandler(Plumbing):
    NAME = "duo-sim"
    server_version = "DuoSimulator/1.0"

    # -- plumbing

    @property
    def sim(self):
        return self.server.sim

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def dispatch(self, method):
        self.log_user = "-"
        self.log_result = ""
        self.log_status = "-"
        url = urlsplit(self.path)
        path = url.path
        try:
            if path.startswith("/auth/v2/"):
                self.handle_api(method, url)
            elif not is_loopback(self.client_address[0]):
                self.send_text(403, "loopback only\n")
            elif path.startswith("/sim/"):
                self.handle_sim(method, url)
            elif path.startswith("/phone/"):
                self.handle_phone(method, url)
            elif path == "/" and method == "GET":
                self.send_html(200, self.render_index())
            elif path.startswith("/static/") and method == "GET":
                self.send_static(path[len("/static/"):])
            elif path == "/portal" and method == "GET":
                self.send_html(200, PORTAL_PAGE)
            else:
                self.send_text(404, "not found\n")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.log_result = (self.log_result + " client-gone").strip()
        finally:
            sys.stderr.write("%s duo-sim %s %s user=%s -> %s %s\n" % (
                time.strftime("%H:%M:%S"), method, clean(path),
                clean(self.log_user, 64), self.log_status,
                self.log_result))
            sys.stderr.flush()

    def send_html(self, status, page):
        self.send_bytes(status, page.encode(), "text/html; charset=utf-8", (
            ("Content-Security-Policy",
             "default-src 'none'; style-src 'self'; script-src 'self'; "
             "connect-src 'self'; form-action 'self'; base-uri 'none'; "
             "frame-ancestors 'none'"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer")))

    def send_static(self, name):
        if name not in STATIC_FILES:
            self.send_text(404, "not found\n")
            return
        try:
            body = (STATIC_DIR / name).read_bytes()
        except OSError:
            self.send_text(404, "not found\n")
            return
        self.send_bytes(200, body, STATIC_FILES[name],
                        (("X-Content-Type-Options", "nosniff"),))

    # -- the Duo API

    API = {"/auth/v2/ping": "GET", "/auth/v2/check": "GET",
           "/auth/v2/preauth": "POST", "/auth/v2/auth": "POST",
           "/auth/v2/auth_status": "GET"}

    def handle_api(self, method, url):
        body = self.read_body()
        if body is None:
            self.send_json(413, {"stat": "FAIL", "code": 41300,
                                 "message": "Request entity too large"})
            return
        self.log_user = peek_user(url.query, body)
        fault = self.sim.faults.take(url.path)
        if fault:
            self.log_result = "fault=" + fault["mode"]
            if fault["mode"] == "slow":
                time.sleep(fault["seconds"])
            elif self.inject(fault):
                return
        try:
            self.api(method, url, body)
        except ApiError as e:
            self.log_result = (self.log_result + " %d" % e.code).strip()
            self.send_json(e.code // 100, e.body())

    def inject(self, fault):
        """Misbehave as told; True if the request is answered (or not)."""
        mode = fault["mode"]
        if mode == "down":
            self.close_connection = True
            self.log_status = "dropped"
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        elif mode == "garbage":
            self.send_bytes(200, b"<html><body>Gateway says hello; this is "
                                 b"not JSON</body></html>\n",
                            "application/json")
        elif mode == "http500":
            self.send_json(500, {"stat": "FAIL", "code": 50000,
                                 "message": "Internal server error"})
        elif mode == "http429":
            self.send_json(429, {"stat": "FAIL", "code": 42901,
                                 "message": "Too Many Requests"})
        elif mode == "stat_fail":
            self.send_json(200, {"stat": "FAIL", "code": 50000,
                                 "message": "Simulated failure"})
        elif mode == "truncated":
            body = json.dumps({"stat": "OK", "response": {
                "result": "allow", "status": "allow",
                "status_msg": MSG["success"]}}).encode()
            self.log_status = "200-truncated"
            self.close_connection = True
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        else:
            return False
        return True

    def api(self, method, url, body):
        path = url.path
        if path not in self.API:
            raise ApiError(40401, "Resource not found")
        if method != self.API[path]:
            raise ApiError(40501, "Method not allowed")
        if path == "/auth/v2/ping":
            self.send_json(200, {"stat": "OK",
                                 "response": {"time": int(time.time())}})
            return
        try:
            pairs = parse_qsl(url.query, keep_blank_values=True,
                              errors="strict")
            if method == "POST" and body:
                ctype = (self.headers.get("Content-Type") or "").split(";")[0]
                if ctype.strip().lower() != FORM_TYPE:
                    raise ApiError(40002, "Invalid request parameters",
                                   "Content-Type must be " + FORM_TYPE)
                pairs += parse_qsl(body.decode("utf-8"),
                                   keep_blank_values=True, errors="strict")
        except (UnicodeDecodeError, ValueError):
            raise ApiError(40002, "Invalid request parameters",
                           "parameters are not UTF-8")
        params = dict(pairs)
        verify_request(self.sim.cfg, self.headers, method, path, pairs)
        if path == "/auth/v2/check":
            self.log_result = "ok"
            self.send_json(200, {"stat": "OK",
                                 "response": {"time": int(time.time())}})
        elif path == "/auth/v2/preauth":
            params["_base"] = "http://%s" % (self.headers.get("Host")
                                             or "127.0.0.1")
            name, out = self.sim.preauth(params)
            self.log_user = name
            self.log_result = out["result"]
            self.send_json(200, {"stat": "OK", "response": out})
        elif path == "/auth/v2/auth":
            tx = self.sim.start_auth(params)
            self.log_user = tx.user
            if params.get("async") == "1":
                out = {"txid": tx.txid}
                if tx.number is not None:
                    out["number"] = tx.number       # simulator extension
                self.log_result = "factor=%s txid=%s %s" % (
                    tx.factor, tx.txid, tx.status)
            else:
                out = self.sim.wait_final(tx)
                self.log_result = "factor=%s %s/%s" % (
                    tx.factor, out["result"], out["status"])
            self.send_json(200, {"stat": "OK", "response": out})
        else:                                       # auth_status
            txid = params.get("txid")
            if not txid:
                raise missing("txid")
            with self.sim.cond:
                tx = self.sim.txs.get(txid)
            if tx is None:
                raise invalid("txid")
            self.log_user = tx.user
            out = self.sim.wait_status(tx, self.sim.cfg["long_poll_seconds"])
            self.log_result = "txid=%s %s/%s" % (txid, out["result"],
                                                 out["status"])
            self.send_json(200, {"stat": "OK", "response": out})

    # -- control API

    def sim_json(self):
        body = self.read_body()
        if body is None:
            raise ValueError("body too large")
        ctype = (self.headers.get("Content-Type") or "").split(";")[0]
        if ctype.strip().lower() != "application/json":
            raise PermissionError("Content-Type must be application/json")
        if not body.strip():
            return {}
        req = json.loads(body.decode("utf-8"))
        if not isinstance(req, dict):
            raise ValueError("the body must be a JSON object")
        return req

    def sim_ok(self, response):
        self.send_json(200, {"stat": "OK", "response": response})

    def sim_fail(self, status, message):
        self.log_result = message
        self.send_json(status, {"stat": "FAIL", "message": message})

    def handle_sim(self, method, url):
        sim = self.sim
        query = dict(parse_qsl(url.query, keep_blank_values=True))
        route = (method, url.path)
        try:
            req = self.sim_json() if method == "POST" else {}
        except PermissionError as e:
            self.sim_fail(415, str(e))
            return
        except (ValueError, UnicodeDecodeError) as e:
            self.sim_fail(400, "bad request body: %s" % e)
            return
        if route == ("POST", "/sim/respond"):
            user, action = req.get("user"), req.get("action")
            self.log_user = user or "-"
            if not isinstance(user, str) or sim.user(user) is None:
                self.sim_fail(404, "no such user")
                return
            if action not in SIM_ACTIONS:
                self.sim_fail(400, "action must be one of "
                              + ", ".join(SIM_ACTIONS))
                return
            with sim.cond:
                txs = sim.pending(user)
                if req.get("txid"):
                    txs = [t for t in txs if t.txid == req["txid"]]
                if req.get("factor"):
                    txs = [t for t in txs if t.factor == req["factor"]]
                if not txs:
                    self.sim_fail(409, "no pending transaction")
                    return
                tx = txs[0]
                why = sim.act(tx, action, req.get("number"))
                if why:
                    self.sim_fail(409, why)
                    return
                self.log_result = "%s txid=%s -> %s" % (action, tx.txid,
                                                        tx.status)
                self.sim_ok(tx.public())
        elif route == ("GET", "/sim/last_sms"):
            user = query.get("user", "")
            self.log_user = user or "-"
            with sim.cond:
                texts = sim.texts.get(user)
                if not texts:
                    self.sim_fail(404, "no text message for this user")
                    return
                last = dict(texts[-1])
            self.log_result = "found"
            self.sim_ok({"user": user, **last})
        elif route == ("GET", "/sim/transactions"):
            with sim.cond:
                sim.expire_due()
                txs = [t.public() for t in sim.txs.values()
                       if "user" not in query or t.user == query["user"]]
            self.sim_ok({"transactions": txs})
        elif url.path == "/sim/mode" and method in ("GET", "POST"):
            if method == "POST":
                try:
                    mode = sim.faults.set(req)
                except ValueError as e:
                    self.sim_fail(400, str(e))
                    return
                self.log_result = "mode=" + mode["mode"]
            self.sim_ok(sim.faults.current())
        elif route == ("POST", "/sim/reset"):
            sim.reset()
            self.log_result = "reset"
            self.sim_ok({})
        else:
            self.sim_fail(404, "no such control endpoint")

    # -- the phone page

    def handle_phone(self, method, url):
        parts = url.path[len("/phone/"):].split("/")
        name = unquote(parts[0])
        sub = "/".join(parts[1:])
        user = self.sim.user(name)
        self.log_user = name or "-"
        if user is None:
            self.send_text(404, "no such user\n")
            return
        if method == "GET" and sub == "":
            self.send_html(200, self.render_phone(name, user))
        elif method == "GET" and sub == "version":
            with self.sim.cond:
                self.sim.expire_due()
                version = self.sim.versions[name]
            self.send_json(200, {"version": version})
        elif method == "POST" and sub == "respond":
            body = self.read_body()
            form = dict(parse_qsl((body or b"").decode("utf-8", "replace"),
                                  keep_blank_values=True))
            if not hmac.compare_digest(form.get("token", "").encode(),
                                       self.sim.form_token.encode()):
                self.send_text(403, "bad form token; reload the page\n")
                return
            with self.sim.cond:
                tx = self.sim.txs.get(form.get("txid", ""))
                action = form.get("action", "")
                if tx is None or tx.user != name or action not in SIM_ACTIONS:
                    why = "no such request"
                else:
                    why = self.sim.act(tx, action, form.get("choice"))
            self.log_result = "%s: %s" % (action, why or "done")
            self.log_status = 303
            self.send_response(303)
            self.send_header("Location", phone_url(name))
            self.send_header("Content-Length", "0")
            self.end_headers()
        else:
            self.send_text(404, "not found\n")

    def render_phone(self, name, user):
        e = html.escape
        sim = self.sim
        with sim.cond:
            pending = sim.pending(name)
            version = sim.versions[name]
            texts = [dict(t) for t in sim.texts[name]][::-1][:10]
            recent = [t for t in sim.txs.values()
                      if t.user == name and t.result != "waiting"
                      and t.factor in ("push", "phone")][::-1][:5]
        token = '<input type="hidden" name="token" value="%s">' % e(
            sim.form_token)
        action_url = e(phone_url(name) + "/respond")

        def form(tx, inner):
            return ('<form method="post" action="%s">%s'
                    '<input type="hidden" name="txid" value="%s">%s</form>'
                    % (action_url, token, e(tx.txid), inner))

        def details(tx):
            rows = [("When", time.strftime("%H:%M:%S",
                                           time.localtime(tx.created))),
                    ("Expires in", "%d s" % max(0, tx.expires
                                                - time.monotonic()))]
            labels = {"display_username": "User", "type": "Type",
                      "ipaddr": "From IP", "hostname": "Host"}
            rows += [(labels[k], tx.info[k]) for k in labels if k in tx.info]
            if "pushinfo" in tx.info:
                rows += list(parse_qsl(tx.info["pushinfo"]))[:20]
            return "<dl>%s</dl>" % "".join(
                "<dt>%s</dt><dd>%s</dd>" % (e(str(k)), e(str(v)))
                for k, v in rows)

        pushes, calls = [], []
        for tx in pending:
            if tx.factor == "push":
                if tx.number is not None:
                    picks = "".join(
                        '<button class="pick" name="choice" value="%d">%d'
                        '</button>' % (n, n) for n in tx.choices)
                    buttons = (
                        "<p>Tap the number shown on the login screen:</p>"
                        + form(tx, '<input type="hidden" name="action" '
                               'value="approve"><div class="picks">%s</div>'
                               % picks)
                        + form(tx, '<button name="action" value="deny" '
                               'class="deny">Deny</button> <button '
                               'name="action" value="fraud" class="fraud">'
                               'Report as fraud</button>'))
                else:
                    buttons = form(
                        tx, '<button name="action" value="approve" '
                        'class="approve">Approve</button> <button '
                        'name="action" value="deny" class="deny">Deny'
                        '</button> <button name="action" value="fraud" '
                        'class="fraud">Report as fraud</button>')
                pushes.append('<article class="card push" id="tx-%s">'
                              '<h3>Login request</h3>%s%s</article>'
                              % (e(tx.txid), details(tx), buttons))
            else:
                if tx.answered:
                    say = "Call in progress: press any key to approve."
                    buttons = form(tx, '<button name="action" value="press1" '
                                   'class="approve">Press a key</button> <button '
                                   'name="action" value="deny" class="deny">'
                                   'Hang up</button>')
                else:
                    say = ("Incoming call from Duo: &ldquo;Press any key "
                           "to approve.&rdquo;")
                    buttons = form(tx, '<button name="action" value="press1" '
                                   'class="approve">Answer + press a key</button> '
                                   '<button name="action" value="answer">'
                                   'Answer</button> <button name="action" '
                                   'value="deny" class="deny">Decline'
                                   '</button>')
                calls.append('<article class="card call" id="tx-%s">'
                             '<h3>%s</h3>%s%s</article>'
                             % (e(tx.txid), say, details(tx), buttons))
        sms = "".join(
            '<li%s><time>%s</time> %s%s</li>' % (
                ' class="used"' if t["used"] else "",
                e(time.strftime("%H:%M:%S", time.localtime(t["time"]))),
                e(t["text"]), " (used)" if t["used"] else "")
            for t in texts)
        history = "".join(
            "<li><time>%s</time> %s: %s</li>" % (
                e(time.strftime("%H:%M:%S", time.localtime(t.finished))),
                e(t.factor), e(t.status_msg))
            for t in recent)
        devices = ", ".join(d["display_name"] for d in user["devices"])
        return PHONE_PAGE % {
            "title": e("%s's phone" % name),
            "user": e(name),
            "version": version,
            "devices": e(devices or "no devices"),
            "status": e(user["status"]),
            "matching": " &middot; number matching on"
                        if user["number_matching"] else "",
            "pushes": "".join(pushes) or '<p class="empty">No login '
                                         'requests.</p>',
            "calls": "".join(calls) or '<p class="empty">No calls.</p>',
            "sms": "<ul>%s</ul>" % sms if sms else '<p class="empty">No '
                                                    'messages.</p>',
            "history": "<ul>%s</ul>" % history if history
                       else '<p class="empty">Nothing yet.</p>',
        }

    def render_index(self):
        e = html.escape
        with self.sim.cond:
            mode = self.sim.faults.current()
            pending = {u: len(self.sim.pending(u))
                       for u in self.sim.cfg["users"]}
        rows = "".join(
            '<li><a href="%s">%s</a> (%s)%s</li>' % (
                e(phone_url(u)), e(u), e(cfg["status"]),
                " &mdash; %d pending" % pending[u] if pending[u] else "")
            for u, cfg in self.sim.cfg["users"].items())
        return INDEX_PAGE % {"users": rows or "<li>(none)</li>",
                             "mode": e(mode["mode"])}


def phone_url(name):
    return "/phone/" + quote(name, safe="")


PHONE_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>%(title)s</title>
<noscript><meta http-equiv="refresh" content="2"></noscript>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/phone.css">
</head>
<body data-user="%(user)s" data-version="%(version)d">
<main class="phone">
<header><h1>%(title)s</h1>
<p class="sub">%(devices)s &middot; Duo status %(status)s%(matching)s</p>
</header>
<section><h2>Push</h2>%(pushes)s</section>
<section><h2>Calls</h2>%(calls)s</section>
<section><h2>Messages</h2>%(sms)s</section>
<section><h2>Recent</h2>%(history)s</section>
<footer><a href="/">All phones</a></footer>
</main>
<script src="/static/phone.js"></script>
</body>
</html>
"""

INDEX_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Duo simulator</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<link rel="stylesheet" href="/static/phone.css">
</head>
<body><main class="phone">
<h1>Duo simulator</h1>
<p>Simulated phones:</p>
<ul>%(users)s</ul>
<p>Fault mode: %(mode)s. <a href="/sim/transactions">Transactions</a>
(JSON).</p>
</main></body>
</html>
"""

PORTAL_PAGE = """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Duo enrollment (simulated)</title></head>
<body><h1>Enrollment is not simulated</h1>
<p>Duo would let the user enroll a phone here. In the simulator, give the
user <code>"status": "auth"</code> and a device in the configuration file,
then restart it.</p></body>
</html>
"""


class SimServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, sim):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, SimHandler)
        self.sim = sim


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1); "
                             "/sim, /phone and / answer loopback peers only")
    parser.add_argument("--config", required=True, help="JSON configuration")
    parser.add_argument("--ikey", help="integration key (overrides config)")
    parser.add_argument("--skey-file",
                        help="file holding the secret key (overrides config)")
    parser.add_argument("--long-poll", type=float, metavar="SECONDS",
                        help="auth_status long-poll (long_poll_seconds)")
    parser.add_argument("--tx-timeout", type=float, metavar="SECONDS",
                        help="push/call timeout (tx_timeout_seconds)")
    args = parser.parse_args(argv)
    try:
        cfg = load_config(args.config, args.ikey, args.skey_file)
    except ConfigError as e:
        print("duo-sim: %s" % e, file=sys.stderr)
        return 2
    if args.long_poll is not None:
        cfg["long_poll_seconds"] = max(0.0, args.long_poll)
    if args.tx_timeout is not None:
        cfg["tx_timeout_seconds"] = max(0.0, args.tx_timeout)
    server = SimServer((args.bind, args.port), Sim(cfg))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("duo-sim: listening on http://%s:%d/ (ikey %s, %d users, "
          "long-poll %gs, timeout %gs)"
          % (args.bind, server.server_address[1], cfg["ikey"],
             len(cfg["users"]), cfg["long_poll_seconds"],
             cfg["tx_timeout_seconds"]), file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
