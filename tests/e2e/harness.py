"""Drives a real nginx with the twostep module, the example legacy app and a
browser-like HTTP client on loopback. Used by the e2e tests (conftest.py) and
by bench/bench.py.

Everything an nginx instance needs lives in its own directory (config, pid,
logs, temp paths, users file, keys), so instances never share state.
"""

import base64
import html
import html.parser
import json
import os
import re
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from urllib.parse import parse_qs, urljoin, urlsplit

import requests

REPO = Path(__file__).resolve().parents[2]
NGINX = os.environ.get("TWOSTEP_NGINX", "/usr/sbin/nginx")
PYTHON = "/usr/bin/python3"
LEGACY_APP = REPO / "examples" / "legacy_app.py"

PORTAL = "/.twostep/"
SIGNIN = PORTAL + "signin"
VERIFY = PORTAL + "verify"
LOGOUT = PORTAL + "logout"

HTTP_TIMEOUT = 15

# TWOSTEP_ASAN=1 (make test-asan): the module under test is built with
# AddressSanitizer and UBSan. nginx itself is not instrumented, so it is
# started with libasan preloaded (the ASan runtime must come first in the
# library list), and every sanitizer report goes to a file in
# SANITIZER_DIR, which the tests turn into a failure (sanitizer_reports).
ASAN = os.environ.get("TWOSTEP_ASAN") == "1"

# Bounds on event-loop latency are multiplied by this under the sanitizers.
# The hashing itself is in libcrypt, not instrumented, and costs the same;
# but with libasan in the process every allocation of the event loop goes
# through ASan's allocator (fresh memory, quarantine) while 8 threads churn
# through 512 MiB yescrypt regions. Measured on this 2-core machine
# (test_nonblocking, T1 = one sign-in = 640-800 ms): the slowest GET during
# the burst took 155-212 ms with the ASan build against 20-52 ms with the
# plain one, about 4 times as long. 1.6 turns test_nonblocking's bound of
# T1/2 into 0.8*T1: still under the T1 or more that a GET waits when the
# hashing runs in the event loop, so the test still tells the two apart.
ASAN_LATENCY_FACTOR = 1.6 if ASAN else 1.0

SANITIZER_DIR = None
_LIBASAN = None

# What must never reach a log: passwords (User, Browser.post), codes
# (totp_code, Browser.post), TOTP secrets (User) and the values of the
# twostep cookies and form tokens a Browser was given.
SENSITIVE_LOCK = threading.Lock()
SENSITIVE = {"password": set(), "code": set(), "secret": set(),
             "cookie": set()}


def remember_sensitive(kind, value):
    if value:
        with SENSITIVE_LOCK:
            SENSITIVE[kind].add(value)


# --------------------------------------------------------------- sanitizers

def sanitizer_setup(directory):
    """Where ASan and UBSan write their reports (log_path): a directory the
    workers (user nobody) can create files in."""
    global SANITIZER_DIR
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    d.chmod(0o1777)
    SANITIZER_DIR = d
    return d


def gcc_library(name, package):
    """`gcc -print-file-name=NAME`, resolved and checked."""
    out = subprocess.run(["gcc", "-print-file-name=" + name], check=True,
                         capture_output=True, text=True).stdout.strip()
    if not os.path.isabs(out) or not os.path.exists(out):
        raise RuntimeError("gcc does not know %s (%r): install %s"
                           % (name, out, package))
    return os.path.realpath(out)


def asan_preload():
    """The libraries preloaded into nginx: libasan first, as it must be, then
    libstdc++. nginx is C, so without it the C++ runtime arrives only with
    the dlopen()ed module, after ASan has looked for the real __cxa_throw,
    and the first exception the module throws (and catches) aborts in
    ASan's interceptor."""
    global _LIBASAN
    if _LIBASAN is None:
        _LIBASAN = "%s %s" % (
            gcc_library("libasan.so", "gcc's libasan (libasan8)"),
            gcc_library("libstdc++.so.6", "libstdc++6"))
    return _LIBASAN


def nginx_env():
    """The environment nginx (and `nginx -t`) runs with."""
    env = dict(os.environ)
    if ASAN:
        if SANITIZER_DIR is None:
            sanitizer_setup(make_workdir("twostep-sanitizers-"))
        env["LD_PRELOAD"] = asan_preload()
        env["ASAN_OPTIONS"] = ("detect_leaks=0:abort_on_error=1:"
                               "log_path=%s/asan" % SANITIZER_DIR)
        env["UBSAN_OPTIONS"] = ("print_stacktrace=1:halt_on_error=1:"
                                "log_path=%s/ubsan" % SANITIZER_DIR)
    return env


def sanitizer_reports():
    """{file name: text} of every report ASan or UBSan has written."""
    if SANITIZER_DIR is None or not SANITIZER_DIR.is_dir():
        return {}
    out = {}
    for f in sorted(SANITIZER_DIR.iterdir()):
        if f.is_file():
            out[f.name] = f.read_text(errors="replace")
    return out


# ---------------------------------------------------------------- processes

def free_port():
    """A loopback TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(port, host="127.0.0.1"):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def wait_for_port(port, proc=None, timeout=10.0, what="server"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError("%s exited with status %s before listening on "
                               "port %d" % (what, proc.returncode, port))
        if port_open(port):
            return
        time.sleep(0.02)
    raise RuntimeError("%s did not listen on port %d within %.0f s"
                       % (what, port, timeout))


def stop_process(proc, sig=signal.SIGTERM, timeout=10.0):
    """Signals `proc`, waits for it, kills it if it hangs. Returns rc."""
    if proc.poll() is None:
        try:
            proc.send_signal(sig)
        except ProcessLookupError:
            pass
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
    return proc.returncode


def make_workdir(prefix="twostep-e2e-"):
    """A fresh directory nginx's workers (user nobody when we are root) can
    traverse: pytest's own tmp dirs are mode 700."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path


def proc_stat(pid):
    """The fields of /proc/PID/stat after "pid (comm)": [0] the state,
    [1] the parent's pid, [11] and [12] utime and stime in clock ticks.
    OSError when the process is gone."""
    with open("/proc/%s/stat" % pid) as f:
        stat = f.read()
    # pid (comm) state ppid ...; comm may contain spaces and parens.
    return stat[stat.rfind(")") + 2:].split()


def child_pids(ppid):
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = proc_stat(entry)
        except OSError:
            continue
        if len(fields) > 1 and int(fields[1]) == ppid:
            pids.append(int(entry))
    return set(pids)


class LegacyApp:
    """examples/legacy_app.py as a subprocess."""

    def __init__(self, logdir, quiet=True, name="legacy_app"):
        self.port = free_port()
        self.log_path = Path(logdir) / (name + ".log")
        self.quiet = quiet   # False: every request it gets is logged
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-u", str(LEGACY_APP), "--port", str(self.port)]
            + (["--quiet"] if self.quiet else []),
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        wait_for_port(self.port, self.proc, what="legacy app")
        return self

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.log.close()
            self.proc = None

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def requests_seen(self):
        """The request lines ("GET /path HTTP/1.0") the app has logged so
        far (only when started with quiet=False)."""
        assert not self.quiet, "a quiet app logs no requests"
        text = self.log_path.read_text(errors="replace")
        return re.findall(r'^legacy_app: [^ ]+ - "([^"]*)"', text, re.M)


# ------------------------------------------------------------ users, keys

def new_secret(nbytes=20):
    """Like `head -c 20 /dev/urandom | base32`: 160 bits, 32 characters."""
    return base64.b32encode(os.urandom(nbytes)).decode().rstrip("=")


_HASHES = {}
_HASHES_LOCK = threading.Lock()


def password_hash(password, rounds=None, scheme="yescrypt"):
    """A crypt(3) hash from `mkpasswd -m SCHEME [-R rounds]` (yescrypt by
    default), cached because expensive ones take a while."""
    key = (password, rounds, scheme)
    with _HASHES_LOCK:
        if key in _HASHES:
            return _HASHES[key]
    cmd = ["mkpasswd", "--stdin", "-m", scheme]
    if rounds is not None:
        cmd += ["-R", str(rounds)]
    out = subprocess.run(cmd, input=password.encode(), check=True,
                         capture_output=True).stdout.decode().strip()
    assert out.startswith("$"), out
    with _HASHES_LOCK:
        _HASHES[key] = out
    return out


class User:
    """One account in a users.json."""

    def __init__(self, name, password, secret=None, algorithm=None,
                 digits=None, period=None, pw_hash=None, rounds=None):
        self.name = name
        self.password = password
        self.secret = secret or new_secret()
        self.algorithm = algorithm      # None: plain "totp": "SECRET" form
        self.digits = digits
        self.period = period
        self.pw_hash = pw_hash or password_hash(password, rounds)
        self.last_step = None
        remember_sensitive("password", password)
        remember_sensitive("secret", self.secret)

    def totp_json(self):
        if self.algorithm is None and self.digits is None \
                and self.period is None:
            return self.secret
        obj = {"secret": self.secret}
        if self.algorithm:
            obj["algorithm"] = self.algorithm
        if self.digits:
            obj["digits"] = self.digits
        if self.period:
            obj["period"] = self.period
        return obj

    def fresh_code(self):
        """The code a user would type now, but never one of a time step
        already used (servers may refuse a code's reuse, RFC 6238 5.2):
        then the next step's code, which the drift window accepts."""
        period = self.period or 30
        step = int(time.time()) // period
        if self.last_step is not None and step <= self.last_step:
            step = self.last_step + 1
        self.last_step = step
        return self.code(at=step * period)

    def code(self, at=None, steps=0):
        """The code an authenticator app shows at unix time `at` (default:
        now) shifted by `steps` time steps."""
        at = time.time() if at is None else at
        return totp_code(self.secret, int(at) + steps * (self.period or 30),
                         self.algorithm or "SHA1", self.digits or 6,
                         self.period or 30)

    def __repr__(self):
        return "User(%s)" % self.name


def totp_code(secret, at, algorithm="SHA1", digits=6, period=30):
    """The code for unix time `at`, computed by oathtool."""
    mode = "--totp" if algorithm.upper() == "SHA1" \
        else "--totp=" + algorithm.upper()
    out = subprocess.run(
        ["oathtool", mode, "-b", "-d", str(digits), "-s", "%ds" % period,
         "-N", "@%d" % int(at), secret],
        check=True, capture_output=True).stdout.decode().strip()
    assert re.fullmatch(r"\d{%d}" % digits, out), out
    remember_sensitive("code", out)
    return out


def write_users(path, users, extra=None, mode=0o644):
    doc = {"users": {u.name: {"password": u.pw_hash, "totp": u.totp_json()}
                     for u in users}}
    if extra:
        doc["users"].update(extra)
    Path(path).write_text(json.dumps(doc, indent=2) + "\n")
    os.chmod(path, mode)
    return path


def write_key(path, nbytes=32, mode=0o644):
    """Like `openssl rand -out FILE 32`."""
    Path(path).write_bytes(os.urandom(nbytes))
    os.chmod(path, mode)
    return path


def write_htpasswd(path, entries, mode=0o644):
    """entries: {user: password}; sha512-crypt hashes nginx checks with
    crypt(3)."""
    lines = []
    for name, password in entries.items():
        h = subprocess.run(["mkpasswd", "--stdin", "-m", "sha512crypt"],
                           input=password.encode(), check=True,
                           capture_output=True).stdout.decode().strip()
        lines.append("%s:%s\n" % (name, h))
        remember_sensitive("password", password)
    Path(path).write_text("".join(lines))
    os.chmod(path, mode)
    return path


# ------------------------------------------------------------------ nginx

def main_conf(prefix, module, http_body, workers=2, main_extra=""):
    """A complete nginx.conf with everything inside `prefix`."""
    p = str(prefix)
    load = "load_module %s;\n" % module if module else ""
    return """{load}worker_processes {workers};
pid {p}/nginx.pid;
error_log {p}/error.log info;
{main_extra}
events {{
    worker_connections 1024;
}}

http {{
    access_log {p}/access.log;
    client_body_temp_path {p}/tmp/client_body;
    proxy_temp_path {p}/tmp/proxy;
    fastcgi_temp_path {p}/tmp/fastcgi;
    uwsgi_temp_path {p}/tmp/uwsgi;
    scgi_temp_path {p}/tmp/scgi;
    types {{
        text/html html;
        text/plain txt;
    }}
    default_type application/octet-stream;

{http_body}
}}
""".format(load=load, workers=workers, p=p, main_extra=main_extra,
           http_body=http_body)


def proxy_to(app_port, extra=""):
    """proxy_pass to the legacy app, passing on who signed in and how."""
    return """proxy_pass http://127.0.0.1:{port};
            proxy_set_header X-Remote-User $twostep_user;
            proxy_set_header X-Twostep-Method $twostep_method;
            proxy_set_header X-Twostep-Auth-Time $twostep_auth_time;
            {extra}""".format(port=app_port, extra=extra)


ALERT_RE = re.compile(r"\[(alert|emerg|crit)\]")


class Nginx:
    """One nginx master in the foreground (daemon off) as a subprocess."""

    instances = []   # every instance ever started, for the error-log guard

    def __init__(self, prefix, conf_text=None, ports=()):
        self.prefix = Path(prefix)
        self.prefix.mkdir(parents=True, exist_ok=True)
        self.prefix.chmod(0o755)
        (self.prefix / "tmp").mkdir(exist_ok=True)
        (self.prefix / "tmp").chmod(0o755)
        self.conf_path = self.prefix / "nginx.conf"
        self.error_log = self.prefix / "error.log"
        self.ports = list(ports)
        self.proc = None
        self.allowed = []    # regexes of [emerg] etc. lines a test caused
        if conf_text is not None:
            self.write_conf(conf_text)

    def allow_log(self, regex):
        """Tells the error-log guard that lines matching `regex` are
        expected (e.g. the [emerg] of a reload refused on purpose)."""
        self.allowed.append(regex)

    def write_conf(self, text):
        self.conf_path.write_text(text)
        self.conf_path.chmod(0o644)

    def cmd(self, *extra):
        return [NGINX, "-p", str(self.prefix) + "/", "-c",
                str(self.conf_path)] + list(extra)

    def test_config(self):
        """`nginx -t`: (exit status, everything it printed)."""
        r = subprocess.run(self.cmd("-t"), capture_output=True, text=True,
                           timeout=60, env=nginx_env())
        return r.returncode, r.stdout + r.stderr

    def start(self, timeout=15.0):
        assert self.proc is None, "already running"
        self.stderr = open(self.prefix / "stderr.log", "ab")
        self.proc = subprocess.Popen(self.cmd("-g", "daemon off;"),
                                     stdin=subprocess.DEVNULL,
                                     stdout=self.stderr, stderr=self.stderr,
                                     env=nginx_env())
        if self not in Nginx.instances:
            Nginx.instances.append(self)
        try:
            for port in self.ports:
                wait_for_port(port, self.proc, timeout, what="nginx")
            self.wait_workers()
        except RuntimeError as e:
            self.stop()
            raise RuntimeError("%s\n--- stderr:\n%s\n--- error.log:\n%s"
                               % (e, self.read("stderr.log")[-4000:],
                                  self.log_text()[-4000:]))
        return self

    def workers(self):
        return child_pids(self.proc.pid) if self.proc else set()

    def wait_workers(self, old=(), timeout=15.0):
        """Waits until the master has at least one worker and none of the
        pids in `old` is still around (after a reload)."""
        old = set(old)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError("nginx exited with status %s"
                                   % self.proc.returncode)
            pids = self.workers()
            if pids and not (pids & old):
                return pids
            time.sleep(0.02)
        raise RuntimeError("nginx workers did not (re)start in time")

    def reload(self, conf_text=None, timeout=15.0):
        """Rewrites the config (if given), sends SIGHUP and waits until only
        new workers are left. Raises if nginx refused the new config."""
        if conf_text is not None:
            self.write_conf(conf_text)
        mark = self.log_size()
        old = self.workers()
        self.proc.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            new = self.log_text(mark)
            if "[emerg]" in new:
                raise RuntimeError("nginx refused the new config:\n" + new)
            if re.search(r"start worker process", new):
                break
            time.sleep(0.02)
        else:
            raise RuntimeError("nginx did not reload:\n" + self.log_text(mark))
        self.wait_workers(old, timeout)

    def stop(self, graceful=True):
        if self.proc is None:
            return None
        rc = stop_process(self.proc,
                          signal.SIGQUIT if graceful else signal.SIGTERM)
        self.proc = None
        self.stderr.close()
        return rc

    def restart(self, conf_text=None):
        self.stop()
        if conf_text is not None:
            self.write_conf(conf_text)
        return self.start()

    def read(self, name):
        try:
            return (self.prefix / name).read_text(errors="replace")
        except FileNotFoundError:
            return ""

    def log_size(self):
        try:
            return self.error_log.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, start=0):
        try:
            with open(self.error_log, "rb") as f:
                f.seek(start)
                return f.read().decode(errors="replace")
        except FileNotFoundError:
            return ""

    def url(self, port=None):
        return "http://127.0.0.1:%d" % (port or self.ports[0])


def log_problems(text, sensitive, allowed=()):
    """What in an error-log excerpt must not be there: alert/emerg/crit
    lines (except those matching a regex in `allowed`, which a test
    provoked) and anything secret the client sent or the store holds."""
    problems = []
    for line in text.splitlines():
        if ALERT_RE.search(line) and \
                not any(re.search(a, line) for a in allowed):
            problems.append("error log has: " + line.strip())
    for kind in ("password", "secret", "cookie"):
        for value in sensitive[kind]:
            if value in text:
                problems.append("error log contains a %s (%r)"
                                % (kind, value))
    for value in sensitive["code"]:
        if re.search(r"(?<!\d)%s(?!\d)" % re.escape(value), text):
            problems.append("error log contains a submitted code (%s)"
                            % value)
    return problems


# ----------------------------------------------------------------- browser

class Form:
    def __init__(self, action, method):
        self.action = action
        self.method = method.lower()
        self.fields = {}     # name -> value (first occurrence)
        self.inputs = []     # (name, type, value) in order

    def __repr__(self):
        return "Form(%s %s %r)" % (self.method, self.action, self.inputs)


class PageParser(html.parser.HTMLParser):
    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.forms = []
        self.h1 = []
        self.title = []
        self.text = []
        self._in = []
        self._form = None

    def handle_starttag(self, tag, attrs):
        a = dict((k, v if v is not None else "") for k, v in attrs)
        if tag == "form":
            self._form = Form(a.get("action", ""), a.get("method", "get"))
            self.forms.append(self._form)
        elif tag in ("input", "button", "textarea", "select") \
                and self._form is not None and a.get("name"):
            t = a.get("type", "text").lower() if tag == "input" else tag
            self._form.inputs.append((a["name"], t, a.get("value", "")))
            # An unticked checkbox is not sent, as in a browser.
            sent = t not in ("submit", "button", "checkbox") \
                or (t == "checkbox" and "checked" in a)
            if sent and tag != "button":
                self._form.fields.setdefault(a["name"], a.get("value", ""))
        if tag in ("h1", "title"):
            self._in.append(tag)

    def handle_endtag(self, tag):
        if tag == "form":
            self._form = None
        if self._in and self._in[-1] == tag:
            self._in.pop()

    def handle_data(self, data):
        self.text.append(data)
        if "h1" in self._in:
            self.h1.append(data)
        if "title" in self._in:
            self.title.append(data)


class Page:
    """What a user sees of an HTML response."""

    def __init__(self, response):
        self.response = response
        p = PageParser()
        p.feed(response.text)
        p.close()
        self.forms = p.forms
        self.heading = " ".join("".join(p.h1).split())
        self.title = " ".join("".join(p.title).split())
        self.text = " ".join(" ".join(p.text).split())

    def form(self, action_path):
        """The form posting to `action_path` (matched on the URL's path)."""
        for f in self.forms:
            target = urljoin(self.response.url, f.action or
                             self.response.url)
            if urlsplit(target).path == action_path:
                return f
        raise AssertionError("no form posting to %s on this page (%s %s); "
                             "forms: %r; text: %.500s"
                             % (action_path, self.response.status_code,
                                self.response.url, self.forms, self.text))


def set_cookies(response):
    """The Set-Cookie headers of `response`: {name: (value, {attr: val})}
    with attribute names lower-cased; flags map to True."""
    out = {}
    for header in response.raw.headers.getlist("Set-Cookie"):
        parts = [p.strip() for p in header.split(";")]
        name, _, value = parts[0].partition("=")
        attrs = {}
        for p in parts[1:]:
            if not p:
                continue
            k, eq, v = p.partition("=")
            attrs[k.strip().lower()] = v.strip() if eq else True
        out[name.strip()] = (value.strip(), attrs)
    return out


def cookie_cleared(value, attrs):
    """True if a Set-Cookie removes the cookie."""
    if attrs.get("max-age") not in (None, True):
        try:
            if int(attrs["max-age"]) <= 0:
                return True
        except ValueError:
            pass
    if attrs.get("expires") not in (None, True):
        from email.utils import parsedate_to_datetime
        try:
            if parsedate_to_datetime(attrs["expires"]).timestamp() \
                    < time.time():
                return True
        except (TypeError, ValueError):
            pass
    return False


def location(response):
    """The Location header resolved against the request URL, split."""
    loc = response.headers.get("Location")
    assert loc, "no Location header (status %d)" % response.status_code
    return urlsplit(urljoin(response.url, loc))


def query(split_url):
    """Query parameters of a split URL as {name: single value}."""
    q = parse_qs(split_url.query, keep_blank_values=True)
    for k, v in q.items():
        assert len(v) == 1, "repeated query parameter %s in %s" % (k, q)
    return {k: v[0] for k, v in q.items()}


def snippet(response, n=600):
    return "%d %s\n%s" % (response.status_code, response.url,
                          response.text[:n])


class SourceAddressAdapter(requests.adapters.HTTPAdapter):
    """Connects from a given local address: anything in 127.0.0.0/8 reaches
    a server on 127.0.0.1, so tests can be several clients."""

    def __init__(self, source, **kw):
        self.source = source
        super().__init__(**kw)

    def init_poolmanager(self, *args, **kw):
        kw["source_address"] = (self.source, 0)
        return super().init_poolmanager(*args, **kw)


class Browser:
    """A cookie-keeping HTTP client that never follows redirects on its own
    (so tests see every step) and remembers what was typed into it.

    fresh=True: a new connection for every request (Connection: close), so
    that with several workers each request may land on another one.
    source: the local address to connect from (default 127.0.0.1)."""

    def __init__(self, base, portal=PORTAL, fresh=False, source=None):
        self.base = base.rstrip("/")
        self.http = requests.Session()
        if fresh:
            self.http.headers["Connection"] = "close"
        if source:
            self.http.mount("http://", SourceAddressAdapter(source))
        self.signin_path = portal + "signin"
        self.verify_path = portal + "verify"

    @staticmethod
    def _remember(response):
        # Cookie values and form tokens must never reach the error log.
        for value, _ in set_cookies(response).values():
            remember_sensitive("cookie", value)
        if "text/html" in response.headers.get("Content-Type", ""):
            for token in re.findall(r'name="form_token"[^>]*value="([^"]+)"',
                                    response.text):
                remember_sensitive("cookie", token)
        return response

    def url(self, path):
        if path.startswith("http://") or path.startswith("https://"):
            return path
        return self.base + path

    def get(self, path, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        return self._remember(self.http.get(self.url(path),
                                            allow_redirects=False, **kw))

    def post(self, path, data=None, **kw):
        kw.setdefault("timeout", HTTP_TIMEOUT)
        if isinstance(data, dict):
            for k in ("password",):
                remember_sensitive("password", data.get(k))
            remember_sensitive("code", data.get("code"))
        return self._remember(self.http.post(self.url(path), data=data,
                                             allow_redirects=False, **kw))

    def follow(self, response):
        """GET the Location of a redirect, as a browser would."""
        assert response.status_code in (301, 302, 303, 307), \
            snippet(response)
        return self.get(urljoin(response.url, response.headers["Location"]))

    def cookie(self, name):
        return self.http.cookies.get(name)

    def set_cookie(self, name, value):
        host = urlsplit(self.base).hostname
        self.http.cookies.set(name, value, domain=host, path="/")

    def drop_cookie(self, name):
        for c in list(self.http.cookies):
            if c.name == name:
                self.http.cookies.clear(c.domain, c.path, c.name)

    def fresh_connections(self):
        """Drop pooled keep-alive connections (after a reload)."""
        self.http.close()

    def app_view(self, path):
        """GET `path` (must reach the legacy app) as JSON: what it got."""
        sep = "&" if "?" in path else "?"
        r = self.get(path + sep + "format=json")
        assert r.status_code == 200, snippet(r)
        assert r.headers.get("Content-Type", "").startswith(
            "application/json"), snippet(r)
        return r.json()

    # The whole sign-in, each step checked; returns the final response (the
    # 303 back to the page that asked for sign-in).
    def sign_in(self, path, user, code=None):
        r = self.get(path)
        assert r.status_code == 302, "expected 302 to sign-in: " + \
            snippet(r)
        r = self.follow(r)
        assert r.status_code == 200, snippet(r)
        r = self.submit_password(r, user.name, user.password)
        assert r.status_code == 303, "password step: " + snippet(r)
        r = self.follow(r)
        assert r.status_code == 200, "code page: " + snippet(r)
        r = self.submit_code(r, code or user.fresh_code())
        assert r.status_code == 303, "code step: " + snippet(r)
        return r

    def submit_password(self, signin_page, username, password, **override):
        form = Page(signin_page).form(self.signin_path)
        data = dict(form.fields)
        data.update(username=username, password=password)
        data.update(override)
        return self.post(urljoin(signin_page.url, form.action), data)

    def submit_code(self, code_page, code, **override):
        form = Page(code_page).form(self.verify_path)
        data = dict(form.fields)
        data["code"] = code
        data.setdefault("method", "totp")
        data.update(override)
        return self.post(urljoin(code_page.url, form.action), data)


def tally(chunks, start, step):
    """One thread per chunk: state = start(i) for chunk i, then
    step(state, item) for
    each item of the chunk. Returns ({step's result: count}, [errors]);
    a thread stops at its first error."""
    counts, errors = {}, []
    lock = threading.Lock()

    def run(i, chunk):
        try:
            state = start(i)
            for item in chunk:
                result = step(state, item)
                with lock:
                    counts[result] = counts.get(result, 0) + 1
        except Exception as e:   # noqa: returned to the caller
            with lock:
                errors.append(repr(e))

    threads = [threading.Thread(target=run, args=(i, c))
               for i, c in enumerate(chunks)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return counts, errors


def hammer(fn, n):
    """Runs fn(i) in n threads released at once; returns results in order
    (exceptions are returned, not raised)."""
    results = [None] * n
    barrier = threading.Barrier(n)

    def run(i):
        try:
            barrier.wait()
            results[i] = fn(i)
        except BaseException as e:   # noqa: report, don't lose it
            results[i] = e

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


# ------------------------------------------------ several workers, raw HTTP

WORKER_HEADER = "X-Worker"
# In a server block, makes every response say which worker answered it.
WORKER_HEADER_CONF = "add_header %s $pid always;" % WORKER_HEADER


def on_both_workers(request, check, tries=32):
    """Calls request() (which must open a new connection each time) until
    two different workers have answered (told by WORKER_HEADER, with
    `listen ... reuseport` spreading connections over the workers);
    check(response) must accept every answer. Returns {pid: response}."""
    seen = {}
    for _ in range(tries):
        r = request()
        check(r)
        worker = r.headers.get(WORKER_HEADER)
        assert worker, "no %s header: %s" % (WORKER_HEADER, snippet(r))
        seen.setdefault(worker, r)
        if len(seen) >= 2:
            return seen
    raise AssertionError("in %d requests only worker(s) %s answered"
                         % (tries, sorted(seen)))


def get_with_cookie(base, path, cookie, **kw):
    """GET base+path on a new connection with exactly this Cookie header
    (no cookie jar, whose expiry handling would hide the server's)."""
    headers = {"Connection": "close"}
    if cookie is not None:
        headers["Cookie"] = cookie
    headers.update(kw.pop("headers", {}))
    return requests.get(base + path, headers=headers, allow_redirects=False,
                        timeout=HTTP_TIMEOUT, **kw)


class RawResponse:
    def __init__(self, data):
        head, _, self.body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        self.status_line = lines[0]
        parts = lines[0].split(" ", 2)
        self.status = int(parts[1]) if len(parts) > 1 and \
            parts[1].isdigit() else 0
        self.headers = {}
        for line in lines[1:]:
            k, _, v = line.partition(":")
            self.headers.setdefault(k.strip().lower(), v.strip())

    def header(self, name):
        return self.headers.get(name.lower())

    def __repr__(self):
        return "%s\n%s" % (self.status_line,
                           self.body[:300].decode("latin-1"))


def raw_request(port, target, headers=(), method="GET", body=b"",
                source=None, host="127.0.0.1"):
    """Sends one request exactly as given (the target and header bytes are
    not normalized or checked by any client library) on a new connection,
    and reads the answer until the server closes. `headers`: a sequence of
    (name, value) str pairs, sent in order, repeats allowed (latin-1)."""
    req = "%s %s HTTP/1.1\r\nHost: %s:%d\r\nConnection: close\r\n" % (
        method, target, host, port)
    for k, v in headers:
        req += "%s: %s\r\n" % (k, v)
    if body or method == "POST":
        req += "Content-Length: %d\r\n" % len(body)
    data = req.encode("latin-1") + b"\r\n" + body
    s = socket.create_connection(("127.0.0.1", port), timeout=HTTP_TIMEOUT,
                                 source_address=(source, 0) if source
                                 else None)
    try:
        s.sendall(data)
        chunks = []
        while True:
            c = s.recv(65536)
            if not c:
                break
            chunks.append(c)
    finally:
        s.close()
    return RawResponse(b"".join(chunks))


def wait_off_step_boundary(period=30, margin=2):
    """Tests that use the code of the current time step must not straddle
    a step boundary: waits (at most margin + 1 s) if one is near."""
    while True:
        pos = time.time() % period
        if margin <= pos <= period - margin:
            return
        time.sleep(0.2)


# ------------------------------------------------------- the Duo simulator

DUO_SIMULATOR = REPO / "examples" / "duo_simulator.py"


def duo_skey():
    """A made-up 40-character Duo secret key (the simulator needs no real
    one). Remembered as a secret: it must never reach nginx's error log."""
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
    key = "".join(alphabet[b % len(alphabet)] for b in os.urandom(40))
    remember_sensitive("secret", key)
    return key


def duo_phone(device, capabilities=("push", "phone", "sms"),
              number="+1 555-0100"):
    """One simulator device entry."""
    return {"device": device, "type": "phone", "number": number,
            "capabilities": list(capabilities)}


class DuoSimulator:
    """examples/duo_simulator.py as a real process on a free loopback port,
    with a configuration written here and the skey in its own file (mode
    644, read by nginx's master). `users` is the simulator's "users" object;
    `settings` goes to the top level (long_poll_seconds, ...).

    nginx_conf() is what a server block needs to use it."""

    def __init__(self, directory, users, ikey="DITWOSTEPE2E00000001",
                 long_poll=2.0, tx_timeout=60.0, unknown_users="enroll",
                 **settings):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.dir.chmod(0o755)
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.ikey = ikey
        self.skey = duo_skey()
        self.skey_file = self.dir / "duo.skey"
        self.skey_file.write_text(self.skey + "\n")
        self.skey_file.chmod(0o644)
        self.config = dict(ikey=ikey, unknown_users=unknown_users,
                           long_poll_seconds=long_poll,
                           tx_timeout_seconds=tx_timeout, users=users,
                           **settings)
        self.config_file = self.dir / "duo-sim.json"
        # The skey only in its file (--skey-file), never in the config.
        self.config_file.write_text(json.dumps(
            dict(self.config, skey="replaced-by-the-skey-file"), indent=2))
        self.config_file.chmod(0o644)
        self.log_path = self.dir / "duo-sim.log"
        self.http = requests.Session()
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [PYTHON, "-u", str(DUO_SIMULATOR), "--port", str(self.port),
             "--config", str(self.config_file),
             "--skey-file", str(self.skey_file)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        wait_for_port(self.port, self.proc, what="Duo simulator")
        return self

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.log.close()
            self.proc = None
        self.http.close()

    def nginx_conf(self, timeout=None):
        """The Duo directives for an nginx server (or http) block."""
        conf = ("twostep_duo_api http://127.0.0.1:%d;\n"
                "        twostep_duo_ikey %s;\n"
                "        twostep_duo_skey_file %s;\n"
                % (self.port, self.ikey, self.skey_file))
        if timeout:
            conf += "        twostep_duo_timeout %s;\n" % timeout
        return conf

    # -- the control API (README: "The phone, and the control API")

    def _call(self, method, path, body=None, params=None):
        r = self.http.request(method, self.base + path, json=body,
                              params=params, timeout=HTTP_TIMEOUT)
        return r

    def respond(self, user, action, **extra):
        """What the user does on the phone: approve, deny, fraud, answer,
        press1. Returns the transaction; raises unless 200."""
        r = self._call("POST", "/sim/respond",
                       dict(extra, user=user, action=action))
        assert r.status_code == 200, "sim/respond %s %s: %d %s" % (
            user, action, r.status_code, r.text)
        return r.json()["response"]

    def try_respond(self, user, action, **extra):
        """Like respond(), but returns the HTTP status (409: nothing
        pending)."""
        return self._call("POST", "/sim/respond",
                          dict(extra, user=user, action=action)).status_code

    def last_sms(self, user):
        """The latest text to `user` ({"passcode", "used", ...}) or None."""
        r = self._call("GET", "/sim/last_sms", params={"user": user})
        if r.status_code == 404:
            return None
        assert r.status_code == 200, r.text
        sms = r.json()["response"]
        remember_sensitive("code", sms["passcode"])
        return sms

    def transactions(self, user=None):
        r = self._call("GET", "/sim/transactions",
                       params={"user": user} if user else None)
        assert r.status_code == 200, r.text
        return r.json()["response"]["transactions"]

    def pending(self, user):
        return [t for t in self.transactions(user)
                if t["result"] == "waiting"]

    def set_mode(self, mode, **options):
        r = self._call("POST", "/sim/mode", dict(options, mode=mode))
        assert r.status_code == 200, r.text
        return r.json()["response"]

    def mode(self):
        return self._call("GET", "/sim/mode").json()["response"]

    def reset(self):
        r = self._call("POST", "/sim/reset", {})
        assert r.status_code == 200, r.text

    def log_size(self):
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_text(self, start=0):
        with open(self.log_path, "rb") as f:
            f.seek(start)
            return f.read().decode(errors="replace")

    def settle(self, quiet=0.2, limit=3.0):
        """Waits until the log has not grown for `quiet` seconds: the
        simulator writes a request's line just after answering it, so
        nginx (and the test) may be done before the line is there."""
        deadline = time.monotonic() + limit
        size = self.log_size()
        stable_since = time.monotonic()
        while time.monotonic() < deadline:
            time.sleep(0.02)
            now_size = self.log_size()
            if now_size != size:
                size, stable_since = now_size, time.monotonic()
            elif time.monotonic() - stable_since >= quiet:
                return

    def api_calls(self, start=0, settle=True):
        """(method, endpoint, user, outcome) of every /auth/v2 request
        logged since byte `start`, from the simulator's own log lines
        (after settle())."""
        if settle:
            self.settle()
        out = []
        for line in self.log_text(start).splitlines():
            m = re.match(r"\S+ duo-sim (GET|POST) (/auth/v2/\S+) user=(\S+)"
                         r" -> (.*)$", line)
            if m:
                out.append(m.groups())
        return out


# ------------------------------------------- Duo flows, as a browser does

WAIT = PORTAL + "wait"
STATUS = PORTAL + "status"

METHOD_LINKS = {
    "totp": "Use a verification code from my authenticator app",
    "push": "Approve a request on my authenticator app",
    "call": "Call my phone",
    "sms": "Text my phone",
}


class LinkParser(html.parser.HTMLParser):
    """<a href> targets and their text."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.links = []      # (href, text)
        self._href = None
        self._text = []

    def handle_starttag(self, tag, attrs):
        if tag == "a":
            self._href = dict(attrs).get("href", "")
            self._text = []

    def handle_data(self, data):
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag):
        if tag == "a" and self._href is not None:
            self.links.append((self._href, " ".join("".join(
                self._text).split())))
            self._href = None


def page_links(response):
    p = LinkParser()
    p.feed(response.text)
    p.close()
    return p.links


def offered_methods(response):
    """The methods a second-step page offers: the one shown (the form's
    hidden "method") and those under "Sign in another way"."""
    out = set()
    for f in Page(response).forms:
        if f.fields.get("method"):
            out.add(f.fields["method"])
    for href, _ in page_links(response):
        target = urlsplit(href)
        if target.path.endswith("/verify"):
            m = parse_qs(target.query).get("method")
            if m:
                out.add(m[0])
    return out


def method_link(response, method):
    """The "Sign in another way" link to `method` on this page, or None."""
    for href, text in page_links(response):
        target = urlsplit(href)
        if target.path.endswith("/verify") and \
                parse_qs(target.query).get("method") == [method]:
            assert text == METHOD_LINKS[method], (href, text)
            return href
    return None


def refresh_url(response):
    """The URL of a page's <noscript> meta refresh."""
    m = re.search(r'<meta http-equiv="refresh" content="\d+;url=([^"]+)"',
                  response.text)
    assert m, "no meta refresh on this page: " + snippet(response)
    return html.unescape(m.group(1))


def wait_status_url(response):
    """The long-poll URL the waiting page's script fetches."""
    m = re.search(r'data-status="([^"]+)"', response.text)
    assert m, "no status URL on this page: " + snippet(response)
    return html.unescape(m.group(1))


def password_step(browser, path, user):
    """GET `path`, sign in with the password; returns the response to the
    GET of the second-step page (the module asked Duo's preauth for it)."""
    r = browser.get(path)
    assert r.status_code == 302, "expected 302 to sign-in: " + snippet(r)
    r = browser.follow(r)
    assert r.status_code == 200, snippet(r)
    r = browser.submit_password(r, user.name, user.password)
    assert r.status_code == 303, "password step: " + snippet(r)
    assert location(r).path == browser.verify_path, snippet(r)
    return browser.follow(r)


def choose_method(browser, page, method):
    """Follows the "Sign in another way" link to `method`, or returns the
    page if it is already that method's (a user without an app code starts
    on push)."""
    for f in Page(page).forms:
        if f.fields.get("method") == method:
            return page
    href = method_link(page, method)
    assert href, "%s is not offered: %s" % (method, snippet(page, 3000))
    return browser.get(href)


def send_form(page):
    """The fields of the "Send request" / "Call me" / "Send code" form."""
    form = Page(page).form(VERIFY)
    assert form.fields.get("action") == "send", form
    return dict(form.fields)


def press_send(browser, page, **override):
    """Presses the page's "Send ..." button."""
    data = send_form(page)
    data.update(override)
    return browser.post(VERIFY, data)


def start_push(browser, path, user, method="push"):
    """Password, then "Send request" (push) or "Call me" (call): returns
    the waiting page (after the 303 to it)."""
    r = choose_method(browser, password_step(browser, path, user), method)
    assert r.status_code == 200, snippet(r)
    r = press_send(browser, r)
    assert r.status_code == 303, "send: " + snippet(r)
    assert location(r).path == WAIT, snippet(r)
    r = browser.follow(r)
    assert r.status_code == 200, snippet(r)
    return r


# ------------------------------------------------------------------ Redis

REDIS_SERVER = "/usr/bin/redis-server"


class RedisServer:
    """Debian's redis-server on a random loopback port, with a password
    (requirepass), no persistence, everything in its own directory.
    stop()/kill() and start() again on the same port make a restarted,
    empty Redis; pause()/resume() a hung one (SIGSTOP)."""

    def __init__(self, directory, password=None):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.password = password or new_secret(12).lower()
        remember_sensitive("password", self.password)
        self.proc = None

    def start(self):
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", str(self.port), "--bind", "127.0.0.1",
             "--requirepass", self.password, "--save", "",
             "--appendonly", "no", "--dir", str(self.dir),
             "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_for_port(self.port, self.proc, what="redis-server")
        return self

    def password_file(self, path, password=None):
        """A password file as an operator writes it (root-only is enough:
        the master reads it)."""
        Path(path).write_text((password or self.password) + "\n")
        os.chmod(path, 0o600)
        return str(path)

    def url(self, db=0):
        return "redis://127.0.0.1:%d/%d" % (self.port, db)

    def cli(self, *args):
        r = subprocess.run(["redis-cli", "-p", str(self.port),
                            "--no-auth-warning", "-a", self.password]
                           + list(args), capture_output=True, text=True,
                           timeout=10)
        return r.stdout.strip()

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def kill(self):
        if self.proc:
            self.proc.send_signal(signal.SIGCONT)
            stop_process(self.proc, signal.SIGKILL)
            self.proc = None

    def stop(self):
        if self.proc:
            self.proc.send_signal(signal.SIGCONT)
            stop_process(self.proc)
            self.proc = None


class Standin:
    """A stand-in of examples/ (twilio_standin, ntfy_standin) as a process
    of its own on a free loopback port; control() posts to its API."""

    def __init__(self, directory, script, args):
        self.port = free_port()
        self.base = "http://127.0.0.1:%d" % self.port
        self.log = directory / (script + ".log")
        self.argv = ["/usr/bin/python3",
                     str(REPO / "examples" / (script + ".py")),
                     "--port", str(self.port)] + args
        self.proc = None

    def start(self):
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL,
                                         stdout=subprocess.DEVNULL,
                                         stderr=log)
        wait_for_port(self.port, self.proc, what=self.argv[1])
        return self

    def stop(self):
        assert stop_process(self.proc) in (0, -15), self.log.read_text()

    def control(self, path, obj=None):
        return requests.post(self.base + path, json=obj or {}, timeout=20)

    def log_text(self):
        return self.log.read_text()


def twilio_standin(directory, account, token):
    """examples/twilio_standin.py for `account`, its Auth Token in a file."""
    (directory / "twilio.token").write_text(token + "\n")
    return Standin(directory, "twilio_standin",
                   ["--account", account, "--token-file",
                    str(directory / "twilio.token")]).start()


def ntfy_standin(directory, token):
    """examples/ntfy_standin.py requiring the access token `token`."""
    (directory / "ntfy.token").write_text(token + "\n")
    return Standin(directory, "ntfy_standin",
                   ["--token-file", str(directory / "ntfy.token")]).start()
