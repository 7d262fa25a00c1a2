#!/usr/bin/python3
"""An ntfy stand-in on loopback: push notifications with action buttons
without an ntfy server or phone, written from ntfy's public documentation
(docs.ntfy.sh: publishing, subscribing via the API, access tokens).

    /usr/bin/python3 examples/ntfy_standin.py --port 9400 [--token-file F]

Then open http://127.0.0.1:9400/ for the notifications that arrived, with
their buttons: "view" actions are links, "http" actions are sent by the
stand-in as the ntfy app would send them.

It speaks plain HTTP (no TLS) and answers like an ntfy server:

  POST /                 publish as JSON: {"topic", "message", "title",
                         "priority" 1..5, "tags": [...], "click",
                         "actions": [{"action": "view"|"http", "label",
                         "url", "method", "headers", "body", "clear"}]}
  PUT|POST /{topic}      publish the body as the message, with the X-Title
                         (Title, t), X-Priority (Priority, p), X-Tags (Tags,
                         ta), X-Click and X-Actions (Actions) headers; actions
                         in the short form "view, Label, URL[, clear=true];
                         http, Label, URL[, method=POST]" or as JSON
  GET  /{topic}/json     subscribe: one JSON object a line ("open", then
                         "message"s as they come, "keepalive"s between);
                         with ?poll=1 the cached messages, then the end;
                         ?since=all|<message id>|<unix time>

With --token-file, publishing and subscribing need "Authorization: Bearer
<token>" (an access token): none gives 403 (ntfy's 40301 forbidden), a wrong
one 401 (40101 unauthorized). A topic is 1 to 64 of [-_A-Za-z0-9]. Errors
are ntfy's error object {"code", "http", "error", "link"}; the codes for
bad input are plausible, not ntfy's own. A published message is answered
200 with the message as JSON and a newline.

Beyond ntfy (loopback peers only):
  GET  /                      the page: notifications and their buttons
  GET  /standin/messages?topic=   {"messages": [...]} newest last
  POST /standin/action        {"id": message id, "label": button label}
                              view -> {"url"}; http -> the stand-in sends
                              it -> {"status": HTTP status, "body": text}
  POST /standin/mode          fault injection (examples/standin_base.py)
  POST /standin/reset         forget messages, mode normal
  POST /phone/action          the page's buttons (form-encoded: id, label)
Access tokens are never logged or shown.
"""

import argparse
import hmac
import json
import re
import secrets
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import parse_qs, parse_qsl, urlsplit

sys.path.insert(0, str(Path(__file__).resolve().parent))
import standin_base as base  # noqa: E402

TOPIC = re.compile(r"[-_A-Za-z0-9]{1,64}")
ID_CHARS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
PRIORITIES = {"1": 1, "min": 1, "2": 2, "low": 2, "3": 3, "default": 3,
              "4": 4, "high": 4, "5": 5, "max": 5, "urgent": 5}
CACHE_SECONDS = 12 * 3600      # ntfy's default cache duration
MAX_KEPT = 200                 # messages kept
MAX_ACTIONS = 3
KEEPALIVE_SECONDS = 25


class NtfyError(Exception):
    def __init__(self, status, code, error):
        super().__init__(error)
        self.status, self.code, self.error = status, code, error

    def body(self):
        return {"code": self.code, "http": self.status, "error": self.error,
                "link": "https://ntfy.sh/docs/publish/"}


def bad(error, code=40000):
    return NtfyError(400, code, "invalid request: " + error)


def check_actions(actions):
    """ntfy's action list, checked; each gets an id as ntfy gives one."""
    if not isinstance(actions, list) or len(actions) > MAX_ACTIONS:
        raise bad("actions invalid", 40018)
    out = []
    for a in actions:
        if not isinstance(a, dict) or a.get("action") not in (
                "view", "http", "broadcast") or not a.get("label"):
            raise bad("actions invalid", 40018)
        a = dict(a)
        if a["action"] in ("view", "http"):
            scheme = urlsplit(str(a.get("url", ""))).scheme
            if scheme not in ("http", "https"):
                raise bad("action url invalid", 40018)
        if a["action"] == "http":
            a.setdefault("method", "POST")
        a.setdefault("clear", False)
        a["id"] = "".join(secrets.choice(ID_CHARS) for _ in range(10))
        out.append(a)
    return out


def short_actions(text):
    """The header form: "view, Label, URL, clear=true; http, ..."."""
    actions = []
    for part in filter(None, (p.strip() for p in text.split(";"))):
        fields = [f.strip() for f in part.split(",")]
        if len(fields) < 3:
            raise bad("actions invalid", 40018)
        action = {"action": fields[0], "label": fields[1], "url": fields[2]}
        for extra in fields[3:]:
            key, _, value = extra.partition("=")
            if key == "clear":
                action["clear"] = value == "true"
            elif key in ("method", "body"):
                action[key] = value
            elif key.startswith("headers."):
                action.setdefault("headers", {})[key[8:]] = value
        actions.append(action)
    return actions


def header(headers, *names):
    for name in names:
        if headers.get(name) is not None:
            return headers.get(name)
    return None


class Topics:
    """Published messages, and the subscribers waiting for them."""

    def __init__(self, token):
        self.token = token
        self.cond = threading.Condition()
        self.messages = []

    def reset(self):
        with self.cond:
            self.messages.clear()

    def check_auth(self, authorization):
        if not self.token:
            return
        if not authorization:
            raise NtfyError(403, 40301, "forbidden")
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() != "bearer" \
                or not hmac.compare_digest(value.strip(), self.token):
            raise NtfyError(401, 40101, "unauthorized")

    def publish(self, req):
        topic = req.get("topic")
        if not isinstance(topic, str) or not TOPIC.fullmatch(topic):
            raise bad("topic invalid", 40009)
        message = req.get("message") or "triggered"
        title = req.get("title")
        priority = req.get("priority", 3)
        if isinstance(priority, str):
            priority = PRIORITIES.get(priority.lower())
        if isinstance(priority, bool) or priority not in range(1, 6):
            raise bad("priority invalid", 40007)
        tags = req.get("tags", [])
        if not isinstance(tags, list) or not all(isinstance(t, str)
                                                 for t in tags):
            raise bad("tags invalid", 40000)
        if not all(isinstance(v, str) for v in (message, title or "")):
            raise bad("request body must be message JSON", 40017)
        now = int(time.time())
        msg = {"id": "".join(secrets.choice(ID_CHARS) for _ in range(12)),
               "time": now, "expires": now + CACHE_SECONDS,
               "event": "message", "topic": topic, "message": message}
        if title:
            msg["title"] = title
        if priority != 3:
            msg["priority"] = priority
        if tags:
            msg["tags"] = tags
        if req.get("click"):
            msg["click"] = str(req["click"])
        if req.get("actions"):
            msg["actions"] = check_actions(req["actions"])
        with self.cond:
            self.messages.append({"msg": msg, "taps": []})
            del self.messages[:-MAX_KEPT]
            self.cond.notify_all()
        return msg

    def since(self, topic, since):
        """Cached messages of `topic` after `since` (all, an id, a time)."""
        now = time.time()
        with self.cond:
            msgs = [m["msg"] for m in self.messages
                    if m["msg"]["topic"] == topic
                    and m["msg"]["expires"] > now]
        if since in (None, "all"):
            return msgs
        ids = [m["id"] for m in msgs]
        if since in ids:
            return msgs[ids.index(since) + 1:]
        if since.isdigit():
            return [m for m in msgs if m["time"] >= int(since)]
        raise bad("since parameter invalid", 40008)

    def listing(self, topic=None):
        with self.cond:
            return [dict(m["msg"], taps=list(m["taps"]))
                    for m in self.messages
                    if topic is None or m["msg"]["topic"] == topic]

    def tap(self, msg_id, label):
        """A button is tapped, as in the ntfy app."""
        with self.cond:
            entry = next((m for m in self.messages
                          if m["msg"]["id"] == msg_id), None)
        if entry is None:
            raise LookupError("no such message")
        action = next((a for a in entry["msg"].get("actions", [])
                       if a["label"] == label), None)
        if action is None:
            raise LookupError("the message has no button %r" % label)
        if action["action"] == "view":
            out = {"url": action["url"]}
        elif action["action"] == "http":
            body = action.get("body", "").encode()
            req = urllib.request.Request(
                action["url"], data=body or None,
                headers=dict(action.get("headers") or {},
                             **{"User-Agent": "ntfy-standin"}),
                method=action.get("method", "POST"))
            try:
                with urllib.request.urlopen(req, timeout=15) as resp:
                    out = {"status": resp.status,
                           "body": resp.read(64 * 1024).decode(
                               "utf-8", "replace")}
            except urllib.error.HTTPError as e:
                out = {"status": e.code, "body": e.read(64 * 1024).decode(
                    "utf-8", "replace")}
            except OSError as e:
                out = {"status": None, "body": str(e)}
        else:
            out = {"broadcast": True}
        with self.cond:
            entry["taps"].append(dict(out, label=label))
        return out


class NtfyHandler(base.Handler):
    NAME = "ntfy-standin"
    server_version = "NtfyStandin/1.0"

    def is_api(self, path):
        if path == "/":
            return self.command != "GET"
        parts = path.strip("/").split("/")
        return bool(TOPIC.fullmatch(parts[0])) and parts[0] != "standin" \
            and parts[0] != "phone"

    def api_error(self, status, message):
        self.send_json(status, NtfyError(status, status * 100,
                                         message).body())

    def truncated_body(self):
        return (b'{"id":"trunc0000000","time":1700000000,"event":"message",'
                b'"topic":"t","message":"m"}\n')

    def api(self, method, url, body):
        topics = self.server.state
        try:
            topics.check_auth(self.headers.get("Authorization"))
            parts = url.path.strip("/").split("/")
            if method == "GET" and len(parts) == 2 and parts[1] == "json":
                self.subscribe(parts[0], parse_qs(url.query))
                return
            if method not in ("PUT", "POST") or len(parts) != 1:
                raise NtfyError(404, 40401, "page not found")
            if url.path == "/":
                try:
                    req = json.loads(body)
                except ValueError:
                    req = None
                if not isinstance(req, dict):
                    raise bad("request body must be message JSON", 40017)
            else:
                req = self.header_request(parts[0], body)
            msg = topics.publish(req)
            self.log_result = "topic=%s" % base.clean(msg["topic"], 12)
            self.send_json(200, msg)
        except NtfyError as e:
            self.log_result = (self.log_result + " %d" % e.code).strip()
            self.send_json(e.status, e.body())

    def header_request(self, topic, body):
        try:
            message = body.decode("utf-8")
        except UnicodeDecodeError:
            raise bad("message must be UTF-8", 40000)
        h = self.headers
        req = {"topic": topic, "message": message,
               "title": header(h, "X-Title", "Title", "ti", "t"),
               "click": header(h, "X-Click", "Click")}
        priority = header(h, "X-Priority", "Priority", "prio", "p")
        if priority is not None:
            req["priority"] = priority
        tags = header(h, "X-Tags", "Tags", "Tag", "ta")
        if tags:
            req["tags"] = [t.strip() for t in tags.split(",") if t.strip()]
        actions = header(h, "X-Actions", "Actions", "Action")
        if actions:
            if actions.lstrip().startswith("["):
                try:
                    req["actions"] = json.loads(actions)
                except ValueError:
                    raise bad("actions invalid", 40018)
            else:
                req["actions"] = short_actions(actions)
        return req

    def subscribe(self, topic, query):
        topics = self.server.state
        since = query.get("since", [None])[0]
        poll = query.get("poll", ["0"])[0] in ("1", "true", "yes")
        if poll:
            lines = b"".join(json.dumps(m).encode() + b"\n"
                             for m in topics.since(topic, since or "all"))
            self.send_bytes(200, lines, "application/x-ndjson; charset=utf-8")
            return
        # A stream: chunked, until the subscriber goes away.
        self.log_status = 200
        self.close_connection = True
        self.send_response(200)
        self.send_header("Content-Type", "application/x-ndjson; charset=utf-8")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()

        def chunk(obj):
            data = json.dumps(obj).encode() + b"\n"
            self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
            self.wfile.flush()

        chunk({"id": "open", "time": int(time.time()), "event": "open",
               "topic": topic})
        # Without ?since only what is published from now on; with it, the
        # cached messages it names first.
        seen = {m["id"] for m in topics.since(topic, "all")}
        for m in topics.since(topic, since) if since else []:
            chunk(m)
        while True:
            with topics.cond:
                topics.cond.wait(KEEPALIVE_SECONDS)
            fresh = [m for m in topics.since(topic, "all")
                     if m["id"] not in seen]
            for m in fresh:
                chunk(m)
                seen.add(m["id"])
            if not fresh:
                chunk({"id": "keepalive", "time": int(time.time()),
                       "event": "keepalive", "topic": topic})

    def control(self, method, url):
        topics = self.server.state
        if url.path == "/standin/messages" and method == "GET":
            topic = parse_qs(url.query).get("topic", [None])[0]
            self.send_json(200, {"messages": topics.listing(topic)})
        elif url.path == "/standin/reset" and method == "POST":
            if self.read_json() is not None:
                topics.reset()
                self.server.faults.set({"mode": "normal"})
                self.send_json(200, {"reset": True})
        elif url.path == "/standin/action" and method == "POST":
            req = self.read_json()
            if req is not None:
                try:
                    self.send_json(200, topics.tap(req.get("id"),
                                                   req.get("label")))
                except LookupError as e:
                    self.send_json(409, {"error": str(e)})
        elif url.path == "/phone/action" and method == "POST":
            form = dict(parse_qsl((self.read_body() or b"").decode(
                "utf-8", "replace")))
            try:
                topics.tap(form.get("id"), form.get("label"))
            except LookupError as e:
                self.log_result = str(e)
            self.redirect_home()
        else:
            self.send_text(404, "not found\n")

    def index(self):
        parts = []
        for msg in reversed(self.server.state.listing()):
            buttons = []
            for a in msg.get("actions", []):
                if a["action"] == "view":
                    buttons.append('<a href="%s" rel="noreferrer">%s</a>'
                                   % (base.esc(a["url"]),
                                      base.esc(a["label"])))
                else:
                    buttons.append(
                        '<form method="post" action="/phone/action">'
                        '<input type="hidden" name="id" value="%s">'
                        '<button name="label" value="%s">%s</button></form>'
                        % (base.esc(msg["id"]), base.esc(a["label"]),
                           base.esc(a["label"])))
            taps = "".join('<p class="meta">Tapped %s: %s</p>' % (
                base.esc(t["label"]), base.esc(t.get("status", t.get("url"))))
                for t in msg["taps"])
            parts.append(
                '<section><h2>%s</h2><p class="meta">topic %s&hellip;, %s</p>'
                '<p>%s</p><div>%s</div>%s</section>' % (
                    base.esc(msg.get("title") or msg["topic"]),
                    base.esc(msg["topic"][:6]),
                    time.strftime("%H:%M:%S", time.localtime(msg["time"])),
                    base.esc(msg["message"]).replace("\n", "<br>"),
                    " ".join(buttons), taps))
        body = "".join(parts) or '<p class="empty">No notifications yet.</p>'
        return base.page("ntfy stand-in: notifications",
                         "Notifications published to this stand-in, newest "
                         "first.", body)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=9400)
    parser.add_argument("--bind", default="127.0.0.1",
                        help="address to listen on (default 127.0.0.1); "
                             "/, /standin and /phone answer loopback only")
    parser.add_argument("--token-file",
                        help="file holding the access token publishers and "
                             "subscribers must present (default: none)")
    args = parser.parse_args(argv)
    token = base.read_secret(args.token_file, "access token") \
        if args.token_file else None
    server = base.Server((args.bind, args.port), NtfyHandler, Topics(token))
    return base.serve(server, "ntfy-standin: listening on http://%s:%d/ (%s)"
                      % (args.bind, server.server_address[1],
                         "access token required" if token else "open"))


if __name__ == "__main__":
    sys.exit(main())
