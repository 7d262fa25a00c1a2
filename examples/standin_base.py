"""What the Twilio and ntfy stand-ins (examples/twilio_standin.py,
examples/ntfy_standin.py) share: an HTTP handler with bounded bodies and one
log line per request, loopback-only control endpoints, fault injection, and
the small HTML page each shows. Python 3 standard library only.

Fault injection (POST /standin/mode, JSON): {"mode": normal|down|garbage|
slow|http500|http429|truncated, "seconds": N (slow), "count": N (then back
to normal), "path": P (only requests to P)}.
"""

import base64
import hashlib
import html
import ipaddress
import json
import signal
import socket
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

MAX_BODY = 64 * 1024
FAULT_MODES = ("normal", "down", "garbage", "slow", "http500", "http429",
               "truncated")

STYLE = """
body { font: 16px/1.4 system-ui, sans-serif; margin: 1.5em auto;
       max-width: 40em; padding: 0 1em; color: #1b1b1b; }
section { border: 1px solid #ccc; border-radius: 8px; padding: .75em 1em;
          margin: 1em 0; }
h2 { font-size: 1.05em; margin: 0 0 .4em; }
.meta { color: #555; font-size: .9em; }
.keypad { display: grid; grid-template-columns: repeat(3, 3.5em);
          gap: .4em; margin-top: .6em; }
button { font: inherit; padding: .45em .9em; }
.keypad button { padding: .6em 0; }
p.empty { color: #555; }
"""
# The page allows exactly this style (CSP level 2 hash), no other.
STYLE_HASH = "'sha256-%s'" % base64.b64encode(
    hashlib.sha256(STYLE.encode()).digest()).decode()

PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta http-equiv="refresh" content="5">
<title>%(title)s</title>
<style>%(style)s</style></head>
<body><h1>%(title)s</h1>
<p class="meta">%(intro)s This page reloads every 5 seconds.</p>
%(body)s
</body></html>
"""


def is_loopback(addr):
    try:
        ip = ipaddress.ip_address(addr.split("%", 1)[0])
    except ValueError:
        return False
    if ip.version == 6 and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_loopback


def clean(value, limit=80):
    """A value fit for a one-line log: printable, bounded."""
    text = "".join(c if c.isprintable() and c != " " else "?"
                   for c in str(value))
    return text[:limit] + ("..." if len(text) > limit else "")


def esc(value):
    return html.escape(str(value), quote=True)


def page(title, intro, body):
    return PAGE % {"title": esc(title), "intro": esc(intro), "body": body,
                   "style": STYLE}


class Faults:
    """The current fault mode, counted down request by request."""

    def __init__(self, modes=FAULT_MODES, slow_seconds=5):
        self.lock = threading.Lock()
        self.modes = modes
        self.slow_seconds = slow_seconds
        self.mode = {"mode": "normal"}

    def current(self):
        with self.lock:
            return dict(self.mode)

    def reset(self):
        with self.lock:
            self.mode = {"mode": "normal"}

    def set(self, req):
        if not isinstance(req, dict):
            raise ValueError("the body must be a JSON object")
        mode = req.get("mode")
        if mode not in self.modes:
            raise ValueError("mode must be one of " + ", ".join(self.modes))
        seconds = req.get("seconds", self.slow_seconds)
        count = req.get("count")
        path = req.get("path")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) \
                or not 0 <= seconds <= 600:
            raise ValueError("seconds must be a number from 0 to 600")
        if count is not None and (isinstance(count, bool)
                                  or not isinstance(count, int) or count < 1):
            raise ValueError("count must be a whole number >= 1")
        if path is not None and not isinstance(path, str):
            raise ValueError("path must be a string")
        out = {"mode": mode}
        if mode != "normal":
            out.update(seconds=seconds, count=count, path=path)
        with self.lock:
            self.mode = out
            return dict(out)

    def take(self, path):
        """The fault for a request to `path`, if any (counts it down)."""
        with self.lock:
            mode = self.mode
            if mode["mode"] == "normal":
                return None
            if mode.get("path") and mode["path"] != path:
                return None
            taken = dict(mode)
            if mode.get("count") is not None:
                mode["count"] -= 1
                if mode["count"] <= 0:
                    self.mode = {"mode": "normal"}
            return taken


class Plumbing(BaseHTTPRequestHandler):
    """Bounded bodies, answers and a log prefix; the Duo simulator's
    handler is one too."""

    NAME = "standin"
    protocol_version = "HTTP/1.1"

    def log_request(self, code="-", size="-"):
        pass                                 # our own line, see dispatch

    def log_message(self, fmt, *args):
        sys.stderr.write("%s: %s - %s\n" % (self.NAME, self.address_string(),
                                            clean(fmt % args, 200)))

    def read_body(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.close_connection = True
            return None
        return self.rfile.read(length) if length else b""

    def send_bytes(self, status, body, ctype, extra=()):
        self.log_status = status
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for name, value in extra:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def send_json(self, status, obj, extra=()):
        self.send_bytes(status, json.dumps(obj).encode() + b"\n",
                        "application/json", extra)

    def send_text(self, status, text):
        self.send_bytes(status, text.encode(), "text/plain; charset=utf-8")


class Handler(Plumbing):
    """Subclasses set NAME and implement is_api(), api(), api_error(),
    truncated_body(), control() and index(); self.server.state is theirs."""

    def do_GET(self):
        self.dispatch("GET")

    def do_POST(self):
        self.dispatch("POST")

    def do_PUT(self):
        self.dispatch("PUT")

    def is_api(self, path):
        raise NotImplementedError

    def dispatch(self, method):
        self.log_result = ""
        self.log_status = "-"
        url = urlsplit(self.path)
        try:
            if self.is_api(url.path):
                body = self.read_body()
                if body is None:
                    self.api_error(413, "request body too large")
                    return
                fault = self.server.faults.take(url.path)
                if fault:
                    self.log_result = "fault=" + fault["mode"]
                    if fault["mode"] == "slow":
                        time.sleep(fault["seconds"])
                    elif self.inject(fault):
                        return
                self.api(method, url, body)
            elif not is_loopback(self.client_address[0]):
                self.send_text(403, "loopback only\n")
            elif url.path == "/standin/mode" and method == "POST":
                req = self.read_json()
                if req is not None:
                    try:
                        self.send_json(200, self.server.faults.set(req))
                    except ValueError as e:
                        self.send_json(400, {"error": str(e)})
            elif url.path == "/" and method == "GET":
                self.send_html(200, self.index())
            else:
                self.control(method, url)
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True
            self.log_result = (self.log_result + " client-gone").strip()
        finally:
            sys.stderr.write("%s %s %s %s -> %s %s\n" % (
                time.strftime("%H:%M:%S"), self.NAME, method, clean(url.path),
                self.log_status, self.log_result))
            sys.stderr.flush()

    # -- bodies

    def read_json(self):
        """A control request's JSON object, or None (answered 400/415).
        JSON only: a foreign web page cannot send it without CORS."""
        if (self.headers.get("Content-Type") or "").split(";")[0].strip() \
                != "application/json":
            self.send_json(415, {"error": "send application/json"})
            return None
        body = self.read_body()
        try:
            req = json.loads(body or b"null")
        except ValueError:
            req = None
        if not isinstance(req, dict):
            self.send_json(400, {"error": "the body must be a JSON object"})
            return None
        return req

    def send_html(self, status, text):
        self.send_bytes(status, text.encode(), "text/html; charset=utf-8", (
            ("Content-Security-Policy",
             "default-src 'none'; style-src " + STYLE_HASH + "; "
             "form-action 'self'; base-uri 'none'; frame-ancestors 'none'"),
            ("X-Content-Type-Options", "nosniff"),
            ("Referrer-Policy", "no-referrer")))

    def redirect_home(self):
        self.log_status = 303
        self.send_response(303)
        self.send_header("Location", "/")
        self.send_header("Content-Length", "0")
        self.end_headers()

    # -- faults

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
            self.api_error(500, "internal server error")
        elif mode == "http429":
            self.api_error(429, "too many requests")
        elif mode == "truncated":
            body = self.truncated_body()
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


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, state):
        if ":" in addr[0]:
            self.address_family = socket.AF_INET6
        super().__init__(addr, handler)
        self.state = state
        self.faults = Faults()


def serve(server, banner):
    """Runs until SIGTERM or ^C."""
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print(banner, file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
    return 0


def read_secret(path, what):
    """The first line of a secret file, or exit with a message."""
    try:
        with open(path, encoding="utf-8") as f:
            value = f.readline().strip()
    except OSError as e:
        sys.exit("cannot read the %s file: %s" % (what, e))
    if not value:
        sys.exit("the %s file %s is empty" % (what, path))
    return value
