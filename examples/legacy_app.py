#!/usr/bin/python3
"""A legacy web app with no login of its own, to put nginx-twostep in front of.

Every GET or POST renders a "Legacy App" page that shows the request it got
and the identity headers nginx passed on (X-Remote-User, X-Twostep-Method,
X-Twostep-Auth-Time). For tests, `?format=json` on any path, or the path
/whoami, returns the same as JSON.

    /usr/bin/python3 examples/legacy_app.py --port 8081
"""

import argparse
import html
import json
import signal
import sys
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

IDENTITY_HEADERS = ("X-Remote-User", "X-Twostep-Method", "X-Twostep-Auth-Time")
MAX_BODY = 64 * 1024


class LegacyAppHandler(BaseHTTPRequestHandler):
    server_version = "LegacyApp/1.0"
    protocol_version = "HTTP/1.1"   # keep-alive, as nginx upstreams like it

    def do_GET(self):
        self.respond(body_bytes=0)

    def do_HEAD(self):
        self.respond(body_bytes=0, head=True)

    def do_POST(self):
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if length < 0 or length > MAX_BODY:
            self.send_error(413 if length > 0 else 400)
            return
        self.rfile.read(length)
        self.respond(body_bytes=length)

    def request_info(self, body_bytes):
        return {
            "app": "legacy",
            "method": self.command,
            "path": self.path,
            "headers": {name: self.headers.get(name)
                        for name in IDENTITY_HEADERS},
            "body_bytes": body_bytes,
        }

    def respond(self, body_bytes, head=False):
        info = self.request_info(body_bytes)
        url = urlsplit(self.path)
        want_json = (url.path == "/whoami"
                     or "json" in parse_qs(url.query).get("format", []))
        if want_json:
            body = json.dumps(info, indent=1).encode() + b"\n"
            ctype = "application/json"
        else:
            body = render_page(info).encode()
            ctype = "text/html; charset=utf-8"
        self.send_response(200)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)

    def log_message(self, fmt, *args):
        if not self.server.quiet:
            sys.stderr.write("legacy_app: %s - %s\n"
                             % (self.address_string(), fmt % args))


def render_page(info):
    def cell(value):
        if value is None:
            return "<em>(not sent)</em>"
        return "<code>%s</code>" % html.escape(value)

    rows = "\n".join(
        "<tr><th scope=\"row\">%s</th><td>%s</td></tr>"
        % (html.escape(name), cell(value))
        for name, value in info["headers"].items())
    auth_time = info["headers"].get("X-Twostep-Auth-Time")
    when = ""
    if auth_time and auth_time.isdigit():
        when = ("<p>Second step passed at %s (%d s ago).</p>"
                % (html.escape(time.strftime("%Y-%m-%d %H:%M:%S %Z",
                                             time.localtime(int(auth_time)))),
                   max(0, int(time.time()) - int(auth_time))))
    return """<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Legacy App</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>body{font-family:sans-serif;max-width:42rem;margin:2rem auto;padding:0 1rem}
th{text-align:left;padding-right:1rem}code{background:#eee;padding:0 .2rem}</style>
</head>
<body>
<h1>Legacy App</h1>
<p>This app has no login of its own. nginx-twostep decides who gets here and
tells it who they are in request headers.</p>
<p>You asked for <code>%s %s</code>.</p>
<table>
%s
</table>
%s
<nav><p><a href="/">Home</a> &middot; <a href="/public/">Public page</a>
&middot; <a href="/admin/">Admin (asks for a fresh code after 5 minutes)</a>
&middot; <a href="/.twostep/logout">Sign out</a></p></nav>
</body>
</html>
""" % (html.escape(info["method"]), html.escape(info["path"]), rows, when)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8081)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--quiet", action="store_true",
                        help="do not log requests")
    args = parser.parse_args()

    server = ThreadingHTTPServer((args.host, args.port), LegacyAppHandler)
    server.daemon_threads = True
    server.quiet = args.quiet
    # SIGTERM (from demo.sh or the tests) ends the server like Ctrl-C.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    print("legacy app listening on http://%s:%d/" % (args.host, args.port),
          file=sys.stderr, flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
