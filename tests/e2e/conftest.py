"""Fixtures for the end-to-end tests: a real nginx with the twostep module in
front of examples/legacy_app.py, all on loopback.

Run with `make e2e`, or by hand:
    cd tests/e2e && TWOSTEP_MODULE=$PWD/../../build/ngx_http_twostep_module.so \
        /usr/bin/python3 -m pytest -q -p no:cacheprovider .
TWOSTEP_KEEP=1 keeps the temporary directories (configs, logs) for a look.
"""

import os
import shutil
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


# ---------------------------------------------------- error log guard

@pytest.fixture(autouse=True)
def error_log_guard():
    """After every test: no [alert]/[emerg]/[crit] in any running nginx's
    error log, and no password, TOTP secret or submitted code."""
    marks = {id(inst): inst.log_size() for inst in Nginx.instances}
    yield
    for inst in Nginx.instances:
        check_log(inst, marks.get(id(inst), 0))
