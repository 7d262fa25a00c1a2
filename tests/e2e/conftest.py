"""Fixtures for the end-to-end tests: a real nginx with the twostep module in
front of examples/legacy_app.py, all on loopback.

Run with `make e2e`, or by hand:
    cd tests/e2e && TWOSTEP_MODULE=$PWD/../../build/ngx_http_twostep_module.so \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider .
TWOSTEP_KEEP=1 keeps the temporary directories (configs, logs) for a look.

TWOSTEP_ASAN=1 (`make test-asan`, with TWOSTEP_MODULE the ASan+UBSan build):
nginx runs with libasan preloaded, and any sanitizer report fails the test
during which it appeared (and the session, if it appeared in a teardown).
"""

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))

import harness  # noqa: E402
from harness import (Browser, LegacyApp, Nginx, User, free_port,  # noqa
                     log_problems, main_conf, make_workdir, password_hash,
                     proxy_to, write_htpasswd, write_key, write_users)

MODULE = os.environ.get("TWOSTEP_MODULE", "")


def pytest_configure(config):
    # Nothing is skipped: without the module or the tools there is no test.
    if not MODULE:
        pytest.exit("TWOSTEP_MODULE is not set. Run `make e2e`, or set "
                    "TWOSTEP_MODULE to the absolute path of "
                    "build/ngx_http_twostep_module.so", returncode=2)
    if not os.path.isabs(MODULE) or not os.path.isfile(MODULE):
        pytest.exit("TWOSTEP_MODULE=%s is not an absolute path of an "
                    "existing file (build it with `make module`)" % MODULE,
                    returncode=2)
    missing = [tool for tool in (harness.NGINX, "oathtool", "mkpasswd")
               if shutil.which(tool) is None]
    if missing:
        pytest.exit("missing tools: %s (apt-get install nginx oathtool "
                    "whois)" % " ".join(missing), returncode=2)
    if harness.ASAN:
        try:
            harness.asan_preload()
        except (OSError, RuntimeError, subprocess.CalledProcessError) as e:
            pytest.exit("TWOSTEP_ASAN=1 but no libasan: %s" % e,
                        returncode=2)
        harness.sanitizer_setup(make_workdir("twostep-sanitizers-"))


REPORTED = set()   # sanitizer reports a test has already failed on


def format_reports(reports):
    """The start of each report (the error and its stack), and its
    SUMMARY line."""
    out = []
    for name, text in sorted(reports.items()):
        head = text if len(text) <= 5000 else text[:5000] + "\n[...]"
        summary = [l for l in text.splitlines() if l.startswith("SUMMARY")]
        if summary and summary[0] not in head:
            head += "\n" + summary[0]
        out.append("--- %s/%s\n%s" % (harness.SANITIZER_DIR, name, head))
    return "\n".join(out)


def new_sanitizer_reports():
    reports = {k: v for k, v in harness.sanitizer_reports().items()
               if k not in REPORTED}
    REPORTED.update(reports)
    return reports


def pytest_sessionfinish(session, exitstatus):
    if not harness.ASAN:
        return
    late = new_sanitizer_reports()
    if late:
        sys.stderr.write("\nsanitizer reports after the last test:\n%s\n"
                         % format_reports(late))
    if REPORTED:
        sys.stderr.write("\n%d sanitizer report(s) in %s: FAILED\n"
                         % (len(REPORTED), harness.SANITIZER_DIR))
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
    elif not os.environ.get("TWOSTEP_KEEP"):
        shutil.rmtree(harness.SANITIZER_DIR, ignore_errors=True)


# ------------------------------------------------------------ basics

@pytest.fixture(scope="session")
def workdir(request):
    path = make_workdir()
    yield path
    if os.environ.get("TWOSTEP_KEEP") or request.session.testsfailed:
        sys.stderr.write("\ne2e work files kept in %s\n" % path)
    else:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def app(workdir):
    legacy = LegacyApp(workdir).start()
    yield legacy
    legacy.stop()


POOL_PASSWORD = "pool-pw-Kq8!vX2 z"


class UserPool:
    """Accounts for the tests: each test that signs in takes users no other
    test has used, so a server that refuses a code's reuse (per user and
    time step) never sees the same user twice in one step."""

    def __init__(self, size=80):
        shared = password_hash(POOL_PASSWORD)   # one hash, many accounts
        self.users = [User("user%02d" % i, POOL_PASSWORD, pw_hash=shared)
                      for i in range(size)]
        self.users += [
            User("sha256-%d" % i, POOL_PASSWORD, pw_hash=shared,
                 algorithm="SHA256", digits=8, period=30) for i in range(2)]
        self.users += [
            User("sha512-%d" % i, POOL_PASSWORD, pw_hash=shared,
                 algorithm="SHA512", digits=7, period=30) for i in range(2)]
        self.taken = set()

    def take(self, prefix="user"):
        for u in self.users:
            if u.name.startswith(prefix) and u.name not in self.taken:
                self.taken.add(u.name)
                return u
        raise RuntimeError("user pool exhausted (%s*): make UserPool bigger"
                           % prefix)


@pytest.fixture(scope="session")
def pool():
    return UserPool()


@pytest.fixture
def user(pool):
    """A user nobody has signed in as yet."""
    return pool.take()


# ------------------------------------------------------------- main site

class Site:
    """The nginx most tests talk to. Servers (one port each):
      main      keys [new, old]; locations / (protected), /public/,
                /static/ (unprotected), /fresh/ (max_age 3s), /sso/
                (auth_basic + twostep_identity)
      short     twostep_session_ttl 2s, key new
      other     signs with an unrelated key
      oldkey    only the old key
      portal    twostep_portal_uri /auth/
    main and oldkey share twostep_session_audience "main": one's sessions
    open the other (key rotation across servers); the others' do not.
    """

    def __init__(self, workdir, app, pool):
        self.dir = workdir / "site"
        self.dir.mkdir()
        self.dir.chmod(0o755)
        self.app = app
        self.ports = {name: free_port()
                      for name in ("main", "short", "other", "oldkey",
                                   "portal")}
        self.users_file = write_users(self.dir / "users.json", pool.users)
        self.key_new = write_key(self.dir / "key-new")
        self.key_old = write_key(self.dir / "key-old")
        self.key_other = write_key(self.dir / "key-other")
        self.sso_users = [pool.take() for _ in range(4)]
        self.basic_pw = {u.name: "basic-" + u.secret[:10].lower()
                         for u in self.sso_users}
        self.htpasswd = write_htpasswd(self.dir / "htpasswd", self.basic_pw)
        www = self.dir / "www"
        (www / "static").mkdir(parents=True)
        (www / "static" / "hello.txt").write_text("hello, static\n")
        for p in (www, www / "static"):
            p.chmod(0o755)
        self.www = www
        self.nginx = Nginx(self.dir / "nginx", self.conf(),
                           ports=list(self.ports.values()))

    def conf(self):
        app = self.app.port
        body = """
    twostep_users {users};

    server {{
        listen 127.0.0.1:{main};
        twostep_cookie_key {key_new};
        twostep_cookie_key {key_old};
        twostep_session_audience main;

        location / {{
            twostep on;
            {proxy}
        }}
        location /public/ {{
            twostep off;
            {proxy}
        }}
        location /static/ {{
            twostep off;
            root {www};
        }}
        location /fresh/ {{
            twostep on;
            twostep_max_age 3s;
            {proxy}
        }}
        location /sso/ {{
            auth_basic "SSO";
            auth_basic_user_file {htpasswd};
            twostep on;
            twostep_identity $remote_user;
            {proxy}
        }}
    }}

    server {{
        listen 127.0.0.1:{short};
        twostep_cookie_key {key_new};
        twostep_session_ttl 2s;
        location / {{
            twostep on;
            {proxy}
        }}
    }}

    server {{
        listen 127.0.0.1:{other};
        twostep_cookie_key {key_other};
        location / {{
            twostep on;
            {proxy}
        }}
    }}

    server {{
        listen 127.0.0.1:{oldkey};
        twostep_cookie_key {key_old};
        twostep_session_audience main;
        location / {{
            twostep on;
            {proxy}
        }}
    }}

    server {{
        listen 127.0.0.1:{portal};
        twostep_cookie_key {key_new};
        twostep_portal_uri /auth/;
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(users=self.users_file, key_new=self.key_new,
           key_old=self.key_old, key_other=self.key_other,
           htpasswd=self.htpasswd, www=self.www, proxy=proxy_to(app),
           **self.ports)
        return main_conf(self.dir / "nginx", MODULE, body, workers=2)

    def url(self, server="main"):
        return "http://127.0.0.1:%d" % self.ports[server]

    def browser(self, server="main"):
        if server == "portal":
            return Browser(self.url(server), portal="/auth/")
        return Browser(self.url(server))


def check_log(instance, start):
    problems = log_problems(instance.log_text(start), harness.SENSITIVE,
                            instance.allowed)
    if problems:
        pytest.fail("%s:\n  %s" % (instance.error_log,
                                   "\n  ".join(problems)), pytrace=False)


@pytest.fixture(scope="session")
def site(workdir, app, pool):
    s = Site(workdir, app, pool)
    s.nginx.start()
    yield s
    mark = s.nginx.log_size()
    s.nginx.stop()
    check_log(s.nginx, mark)


@pytest.fixture
def browser(site):
    """A fresh browser (no cookies) pointed at the main server."""
    return site.browser("main")


# ------------------------------------------------- extra nginx instances

@pytest.fixture
def nginx_factory(workdir):
    """Makes extra nginx instances (own dir, config, logs) for one test and
    stops them afterwards. factory(name, http_body, ports, workers=1,
    main_extra="") -> started Nginx; it has .reload(conf) and .restart()."""
    made = []

    def factory(name, http_body, ports, workers=1, main_extra="",
                start=True):
        prefix = Path(tempfile.mkdtemp(prefix=name + "-", dir=workdir))
        inst = Nginx(prefix, main_conf(prefix, MODULE, http_body, workers,
                                       main_extra), ports=ports)
        inst.conf_for = lambda body, w=workers, m=main_extra: main_conf(
            prefix, MODULE, body, w, m)
        made.append(inst)
        return inst.start() if start else inst

    yield factory
    # Their logs, shutdown included, are checked by error_log_guard, which
    # tears down after this fixture.
    for inst in made:
        inst.stop()


# ------------------------------------------ abuse tests: own nginx each

class GuardedSite:
    """An nginx of its own for one abuse-resistance test: two workers that
    share the twostep zone, `listen ... reuseport` so that new connections
    spread over both, every response naming its worker (X-Worker), a user
    store of fresh users, and its own lockout/zone settings. Locations:
    / (protected, to the legacy app) and /fresh/ (twostep_max_age 2s),
    unless `locations` replaces them."""

    def __init__(self, factory, workdir, app, name, users=3,
                 lockout="3 3s address=1000", zone=None, locations=None,
                 http_extra="", server_extra="", extra_users=None,
                 keys=("a",), workers=2, lockout_in="server",
                 main_extra=""):
        self.name = name
        self.app = app
        self.dir = Path(tempfile.mkdtemp(prefix=name + "-site-", dir=workdir))
        self.dir.chmod(0o755)
        shared = password_hash(POOL_PASSWORD)
        self.users = [User("%s-u%d" % (name, i), POOL_PASSWORD,
                           pw_hash=shared) for i in range(users)]
        self.users_file = write_users(self.dir / "users.json", self.users,
                                      extra=extra_users)
        self.key_files = {}
        self.port = free_port()
        self.lockout = lockout          # None: the module's default
        self.lockout_in = lockout_in    # "server" or "http"
        self.zone = zone
        self.locations = locations
        self.http_extra = http_extra
        self.server_extra = server_extra
        self.nginx = factory(name, self.body(keys), [self.port],
                             workers=workers, main_extra=main_extra)

    def key(self, name):
        if name not in self.key_files:
            self.key_files[name] = write_key(self.dir / ("key-" + name))
        return self.key_files[name]

    def body(self, keys=("a",)):
        proxy = proxy_to(self.app.port)
        lockout = "twostep_lockout %s;" % self.lockout if self.lockout \
            else ""
        locations = self.locations or """
        location / {{
            twostep on;
            {proxy}
        }}
        location /fresh/ {{
            twostep on;
            twostep_max_age 2s;
            {proxy}
        }}"""
        return """
    twostep_users {users};
    {zone}
    {http_lockout}
    {http_extra}
    server {{
        listen 127.0.0.1:{port} reuseport;
        {keys}
        {server_lockout}
        {worker_header}
        {server_extra}
{locations}
    }}
""".format(users=self.users_file, port=self.port,
           zone="twostep_zone %s;" % self.zone if self.zone else "",
           http_lockout=lockout if self.lockout_in == "http" else "",
           server_lockout=lockout if self.lockout_in == "server" else "",
           keys="\n        ".join("twostep_cookie_key %s;" % self.key(k)
                                 for k in keys),
           worker_header=harness.WORKER_HEADER_CONF,
           http_extra=self.http_extra, server_extra=self.server_extra,
           locations=locations.format(proxy=proxy))

    def reload(self, keys):
        self.nginx.reload(self.nginx.conf_for(self.body(keys)))

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def browser(self, fresh=True, source=None):
        """A browser opening a new connection for every request."""
        return Browser(self.url, fresh=fresh, source=source)

    def get_with_session(self, value, path="/app/?format=json"):
        return harness.get_with_cookie(self.url, path,
                                       "twostep_session=" + value)


@pytest.fixture
def guarded(nginx_factory, workdir, app):
    """guarded(name, **settings) -> a started GuardedSite."""
    def make(name, **kw):
        kw.setdefault("app", app)
        return GuardedSite(nginx_factory, workdir, name=name, **kw)
    return make


# ------------------------------------------------ Duo: push, call, text

# Simulator users of each kind; the same names are in the site's users.json
# (with a TOTP secret unless the kind says "notp"). Each test takes users no
# other test has used: the module allows 3 pushes/calls per user per 10
# minutes and one waiting at a time, and the simulator keeps transactions.
DUO_KINDS = {
    "auth": 128,       # push, call and sms; has TOTP too
    "notp": 16,        # push, call and sms; no TOTP secret
    "tout": 3,         # pushes and calls time out after DUO_TX_TIMEOUT s
    "pushonly": 2,     # a device that can only take pushes
    "nopush": 2,       # a device that takes calls and texts, no pushes
}
DUO_TX_TIMEOUT = 1.5
DUO_LONG_POLL = 2.0    # the simulator's auth_status long-poll, seconds
DUO_TIMEOUT = "2s"     # twostep_duo_timeout on the Duo site
DUO_SLOW = 3           # seconds a "slow" fault waits: beyond DUO_TIMEOUT


class DuoPool:
    """The Duo site's accounts. take(kind) -> a User nobody used yet.
    Fixed accounts for what Duo decides about a user: duo-deny, duo-enroll,
    duo-allow (each also as *-notp), duo-unknown[-notp] (unknown to Duo),
    duo-mapped (users.json "duo_username": "duo-remote")."""

    def __init__(self):
        shared = password_hash(POOL_PASSWORD)
        self.shared = shared
        self.users = {}        # name -> User
        self.no_totp = set()
        self.sim_users = {}    # the simulator's "users"
        n = 0
        for kind, count in DUO_KINDS.items():
            for i in range(count):
                n += 1
                name = "duo-%s-%02d" % (kind, i)
                caps = ["push"] if kind == "pushonly" \
                    else ["phone", "sms"] if kind == "nopush" \
                    else ["push", "phone", "sms"]
                entry = {"status": "auth", "devices": [harness.duo_phone(
                    "DP%018d" % n, caps, "+1 555-%04d" % n)]}
                if kind == "tout":
                    entry["tx_timeout_seconds"] = DUO_TX_TIMEOUT
                self.sim_users[name] = entry
                self.users[name] = User(name, POOL_PASSWORD, pw_hash=shared)
                if kind == "notp":
                    self.no_totp.add(name)
        for status in ("deny", "enroll", "allow"):
            for suffix in ("", "-notp"):
                name = "duo-%s%s" % (status, suffix)
                self.sim_users[name] = {"status": status}
                self.users[name] = User(name, POOL_PASSWORD, pw_hash=shared)
                if suffix:
                    self.no_totp.add(name)
        for name in ("duo-unknown", "duo-unknown-notp"):
            self.users[name] = User(name, POOL_PASSWORD, pw_hash=shared)
        self.no_totp.add("duo-unknown-notp")
        n += 1
        self.sim_users["duo-remote"] = {"status": "auth", "devices": [
            harness.duo_phone("DP%018d" % n, ["push", "phone", "sms"])]}
        self.users["duo-mapped"] = User("duo-mapped", POOL_PASSWORD,
                                        pw_hash=shared)
        self.taken = set()

    def take(self, kind="auth"):
        for name, u in self.users.items():
            if name.startswith("duo-%s-" % kind) and name not in self.taken:
                self.taken.add(name)
                return u
        raise RuntimeError("Duo user pool exhausted (%s): raise DUO_KINDS"
                           % kind)

    def __getitem__(self, name):
        return self.users[name]

    def write_users(self, path):
        with_totp = [u for n, u in self.users.items()
                     if n not in self.no_totp]
        extra = {n: {"password": self.shared} for n in self.no_totp}
        write_users(path, with_totp, extra=extra)
        # duo-mapped is "duo-remote" at Duo.
        data = json.loads(Path(path).read_text())
        data["users"]["duo-mapped"]["duo_username"] = "duo-remote"
        Path(path).write_text(json.dumps(data, indent=2) + "\n")
        return path


@pytest.fixture(scope="session")
def duo_pool():
    return DuoPool()


@pytest.fixture(scope="session")
def duo_sim(workdir, duo_pool):
    """examples/duo_simulator.py on a free port, for the whole session:
    long-poll DUO_LONG_POLL s, "slow" faults DUO_SLOW s."""
    sim = harness.DuoSimulator(workdir / "duo-sim", duo_pool.sim_users,
                               long_poll=DUO_LONG_POLL,
                               slow_seconds=DUO_SLOW).start()
    yield sim
    sim.stop()


class DuoSite:
    """An nginx (one worker) whose main server uses the Duo simulator:
      /           twostep on, every method, to the legacy app
      /limited/   twostep_methods totp push
      /static/    unprotected file (hello.txt)
    twostep_duo_timeout DUO_TIMEOUT, twostep_lockout 3 60s address=1000."""

    def __init__(self, workdir, app, sim, pool, factory=None, name="duo",
                 workers=1, log_level="info"):
        self.dir = Path(tempfile.mkdtemp(prefix=name + "-site-",
                                         dir=workdir))
        self.dir.chmod(0o755)
        self.app = app
        self.sim = sim
        self.pool = pool
        self.port = free_port()
        self.users_file = pool.write_users(self.dir / "users.json")
        self.key = write_key(self.dir / "cookie.key")
        www = self.dir / "www"
        (www / "static").mkdir(parents=True)
        (www / "static" / "hello.txt").write_text("hello, static\n")
        for p in (www, www / "static"):
            p.chmod(0o755)
        self.www = www
        conf_body = self.body()
        if factory is not None:
            self.nginx = factory(name, conf_body, [self.port],
                                 workers=workers)
        else:
            prefix = self.dir / "nginx"
            self.nginx = Nginx(prefix, main_conf(prefix, MODULE, conf_body,
                                                 workers),
                               ports=[self.port])
        if log_level != "info":
            self.nginx.write_conf(self.nginx.conf_path.read_text().replace(
                "error.log info;", "error.log %s;" % log_level))

    def body(self):
        proxy = proxy_to(self.app.port)
        return """
    twostep_users {users};

    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {key};
        twostep_lockout 3 60s address=1000;
        {duo}
        location / {{
            twostep on;
            {proxy}
        }}
        location /limited/ {{
            twostep on;
            twostep_methods totp push;
            {proxy}
        }}
        location /static/ {{
            twostep off;
            root {www};
        }}
    }}
""".format(users=self.users_file, port=self.port, key=self.key,
           duo=self.sim.nginx_conf(DUO_TIMEOUT), proxy=proxy, www=self.www)

    @property
    def url(self):
        return "http://127.0.0.1:%d" % self.port

    def browser(self, **kw):
        return Browser(self.url, **kw)


@pytest.fixture(scope="session")
def duo_site(workdir, app, duo_sim, duo_pool):
    s = DuoSite(workdir, app, duo_sim, duo_pool)
    s.nginx.start()
    yield s
    mark = s.nginx.log_size()
    s.nginx.stop()
    check_log(s.nginx, mark)


@pytest.fixture
def duo_normal(duo_sim):
    """The simulator answers normally before and after the test, whatever
    fault mode the test set."""
    duo_sim.set_mode("normal")
    yield duo_sim
    duo_sim.set_mode("normal")


# ---------------------------------------------------- error log guard

@pytest.fixture(autouse=True)
def error_log_guard():
    """After every test: no sanitizer report (TWOSTEP_ASAN=1), no
    [alert]/[emerg]/[crit] in any running nginx's error log, and no
    password, TOTP secret, submitted code or cookie value."""
    marks = {id(inst): inst.log_size() for inst in Nginx.instances}
    yield
    reports = new_sanitizer_reports()
    if reports:
        pytest.fail("sanitizer report(s) during this test:\n"
                    + format_reports(reports), pytrace=False)
    for inst in Nginx.instances:
        check_log(inst, marks.get(id(inst), 0))
