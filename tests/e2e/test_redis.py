"""Several nginx hosts, one shared state (twostep_redis): two nginx
instances (two workers each, the same users and cookie key) and Debian's
redis-server with a password on loopback. What one host learns (a used
code, a failure, a sign-out) holds on the other; when Redis is away,
stuck, refuses the password or answers nonsense, sign-in fails closed
with a 503 while signed-in visitors keep working."""

import re
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from harness import (LOGOUT, REDIS_SERVER, Page, RedisServer, location,
                     set_cookies, snippet, wait_for_port,
                     wait_off_step_boundary)

UNAVAILABLE = "Sign-in cannot be completed right now"
USED = "already been used"


@pytest.fixture
def redis(workdir):
    server = RedisServer(workdir / ("redis-%d" % time.monotonic_ns()))
    server.start()
    yield server
    server.kill()


class Hosts:
    """Host A (a GuardedSite) and host B: another nginx with A's users,
    key and settings, on its own port."""

    def __init__(self, guarded, nginx_factory, name, redis_conf,
                 lockout="3 30s address=1000"):
        # One site behind a load balancer: the same audience on each host.
        self.a = guarded(name, http_extra=redis_conf, lockout=lockout,
                         server_extra="twostep_session_audience %s;" % name)
        port = harness_free_port()
        body = self.a.body().replace(":%d " % self.a.port, ":%d " % port)
        self.b_port = port
        self.b_nginx = nginx_factory(name + "-b", body, [port], workers=2)
        self.users = self.a.users

    def browser(self, host):
        from harness import Browser
        if host == "a":
            return self.a.browser()
        return Browser("http://127.0.0.1:%d" % self.b_port, fresh=True)

    def url(self, host):
        return self.a.url if host == "a" else \
            "http://127.0.0.1:%d" % self.b_port

    def logs(self):
        return self.a.nginx.log_text() + self.b_nginx.log_text()


def harness_free_port():
    from harness import free_port
    return free_port()


def redis_conf(redis, pwfile, timeout="1s", url=None):
    return """twostep_redis %s;
    twostep_redis_password_file %s;
    twostep_redis_timeout %s;
    twostep_redis_prefix "t%d:";""" % (url or redis.url(), pwfile, timeout,
                                       redis.port)


@pytest.fixture
def hosts(guarded, nginx_factory, redis, workdir):
    def make(name, **kw):
        pw = redis.password_file(workdir / ("%s.pw" % name))
        return Hosts(guarded, nginx_factory, name, redis_conf(redis, pw), **kw)
    return make


def code_page(b, user, path="/app/"):
    r = b.follow(b.get(path))
    r = b.submit_password(r, user.name, user.password)
    assert r.status_code == 303, snippet(r)
    r = b.follow(r)
    assert r.status_code == 200 and Page(r).heading == "Enter code", \
        snippet(r)
    return r


def signin_page(b, path="/app/"):
    r = b.follow(b.get(path))
    assert r.status_code == 200, snippet(r)
    return r


def password_step_once_back(b, user, within=10):
    """The password step, tried until Redis is back (503 until then; the
    workers reconnect with a backoff of at most 3 s): (browser, 303)."""
    deadline = time.monotonic() + within
    while True:
        r = b.submit_password(signin_page(b), user.name, user.password)
        if r.status_code == 303:
            return b, r
        assert r.status_code == 503 and time.monotonic() < deadline, \
            snippet(r)
        time.sleep(0.3)


def test_code_used_on_one_host_is_refused_on_the_other(hosts):
    h = hosts("rreplay")
    user = h.users[0]
    wait_off_step_boundary(margin=5)
    code = user.code()

    a = h.browser("a")
    r = a.sign_in("/app/", user, code=code)
    assert location(r).path == "/app/"

    # The same code, typed on host B a moment later (RFC 6238 5.2).
    b = h.browser("b")
    r = b.submit_code(code_page(b, user), code)
    assert r.status_code == 403, snippet(r)
    assert USED in Page(r).text, snippet(r)
    assert "twostep_session" not in set_cookies(r), r.headers
    assert b.get("/app/").status_code == 302

    # The next step's code works on B.
    r = b.submit_code(r, user.code(steps=1))
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Remote-User"] == user.name


def test_failures_spread_over_hosts_lock_the_account(hosts):
    # 3 wrong passwords per account and address, wherever they land.
    h = hosts("rlock", lockout="3 30s address=1000")
    user = h.users[0]

    statuses = []
    for host in ("a", "b", "a"):
        b = h.browser(host)
        r = b.submit_password(signin_page(b), user.name, "wrong-" + host)
        statuses.append(r.status_code)
    assert statuses == [403, 403, 429], statuses

    # Locked on both hosts now, even with the right password.
    for host in ("a", "b"):
        b = h.browser(host)
        r = b.submit_password(signin_page(b), user.name, user.password)
        assert r.status_code == 429, snippet(r)

    # Another account is not affected.
    b = h.browser("b")
    b.sign_in("/app/", h.users[1])


def test_wrong_codes_spread_over_hosts_lock_the_account(hosts):
    h = hosts("rlockcode", lockout="3 30s address=1000")
    user = h.users[0]
    a, b = h.browser("a"), h.browser("b")
    page_a, page_b = code_page(a, user), code_page(b, user)

    r = a.submit_code(page_a, "000000")
    assert r.status_code == 403, snippet(r)
    r = b.submit_code(page_b, "000000")
    assert r.status_code == 403, snippet(r)
    r = a.submit_code(page_a, "000000")
    assert r.status_code == 429, snippet(r)

    # Host B refuses the right code now too.
    r = b.submit_code(page_b, user.fresh_code())
    assert r.status_code == 429, snippet(r)


def test_signout_on_one_host_ends_the_cookie_on_the_other(hosts):
    h = hosts("rsignout")
    user = h.users[0]
    a = h.browser("a")
    a.sign_in("/app/", user)
    value = a.cookie("twostep_session")

    from harness import get_with_cookie
    on_b = lambda: get_with_cookie(h.url("b"), "/app/?format=json",  # noqa
                                   "twostep_session=" + value)
    # Both of B's workers have it cached as valid.
    for _ in range(6):
        r = on_b()
        assert r.status_code == 200, snippet(r)

    r = a.get(LOGOUT)
    form = Page(r).form(LOGOUT)
    r = a.post(LOGOUT, data=dict(form.fields),
               headers={"Origin": h.url("a")})
    assert r.status_code == 200, snippet(r)

    deadline = time.monotonic() + 2.0
    while True:
        answers = [on_b().status_code for _ in range(6)]
        if all(s == 302 for s in answers):
            break
        assert time.monotonic() < deadline, answers
        time.sleep(0.1)


def test_stuck_redis_fails_signin_closed_and_sessions_keep_working(
        hosts, redis):
    h = hosts("rstuck")
    user, other = h.users[0], h.users[1]
    a = h.browser("a")
    a.sign_in("/app/", user)

    b = h.browser("b")
    page = signin_page(b)
    redis.pause()
    try:
        started = time.monotonic()
        r = b.submit_password(page, other.name, other.password)
        took = time.monotonic() - started
        assert r.status_code == 503, snippet(r)
        assert UNAVAILABLE in Page(r).text
        assert took < 4, took            # about twostep_redis_timeout (1s)
        assert "twostep_session" not in set_cookies(r)

        # Signed-in visitors are not held up.
        started = time.monotonic()
        assert a.app_view("/app/")["headers"]["X-Remote-User"] == user.name
        assert time.monotonic() - started < 1
    finally:
        redis.resume()

    # Back: sign-in works again, without a reload.
    password_step_once_back(h.browser("b"), other)


def test_redis_restarted_empty_signin_works_again(hosts, redis):
    h = hosts("rrestart")
    user = h.users[0]
    redis.kill()

    b = h.browser("a")
    r = b.submit_password(signin_page(b), user.name, user.password)
    assert r.status_code == 503, snippet(r)
    assert UNAVAILABLE in Page(r).text

    redis.start()   # same port, nothing in it
    b, r = password_step_once_back(h.browser("a"), user)
    r = b.follow(r)
    r = b.submit_code(r, user.fresh_code())
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Remote-User"] == user.name


def test_wrong_redis_password_fails_closed_without_logging_it(
        guarded, redis, workdir):
    wrong = "not-the-redis-pw-" + str(redis.port)
    from harness import remember_sensitive
    remember_sensitive("password", wrong)
    pw = redis.password_file(workdir / "wrongpw.pw", password=wrong)
    site = guarded("rwrongpw", http_extra=redis_conf(redis, pw))
    user = site.users[0]

    b = site.browser()
    r = b.submit_password(signin_page(b), user.name, user.password)
    assert r.status_code == 503, snippet(r)
    assert UNAVAILABLE in Page(r).text
    log = site.nginx.log_text()
    assert "refused the password" in log, log[-2000:]
    assert wrong not in log and redis.password not in log


class GarbageServer:
    """Answers every connection with `answer` (not Redis's protocol, or
    Redis's but not what was asked)."""

    def __init__(self, answer):
        self.answer = answer
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.running = True
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        while self.running:
            try:
                c, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self.talk, args=(c,), daemon=True).start()

    def talk(self, c):
        with c:
            c.settimeout(5)
            try:
                while self.running and c.recv(4096):
                    c.sendall(self.answer)
            except OSError:
                pass

    def close(self):
        self.running = False
        self.sock.close()


def signin_fails_closed(site, logged):
    """The password step gets the 503 page within about the timeout, and
    the reason (a regular expression) is logged."""
    user = site.users[0]
    b = site.browser()
    started = time.monotonic()
    r = b.submit_password(signin_page(b), user.name, user.password)
    assert r.status_code == 503, snippet(r)
    assert UNAVAILABLE in Page(r).text
    assert "twostep_session" not in set_cookies(r)
    assert time.monotonic() - started < 4
    deadline = time.monotonic() + 5
    while not re.search(logged, site.nginx.log_text()):
        assert time.monotonic() < deadline, site.nginx.log_text()[-2000:]
        time.sleep(0.2)


@pytest.mark.parametrize("answer", [b"HTTP/1.1 200 OK\r\n\r\nhello",
                                    b"+OK\r\n", b"$99999\r\nabc"])
def test_garbage_answers_fail_closed(guarded, redis, workdir, answer):
    fake = GarbageServer(answer)
    try:
        pw = redis.password_file(workdir / "garbage.pw")
        site = guarded("rgarbage",
                       http_extra=redis_conf(redis, pw, url="redis://"
                                             "127.0.0.1:%d" % fake.port))
        signin_fails_closed(site, r"twostep: redis (answered|did not "
                                  r"answer|refused)")
    finally:
        fake.close()


@pytest.mark.parametrize("value,message", [
    ("http://127.0.0.1:6379", "must start with redis://, rediss:// or unix:"),
    ("redis://127.0.0.1:6379/x", "database after \"/\" must be a number"),
    ("redis://user:pw@127.0.0.1", "goes in twostep_redis_password_file"),
    ("unix:relative.sock", "absolute path"),
])
def test_nginx_t_checks_the_address(nginx_factory, value, message):
    inst = nginx_factory("rconf", "twostep_redis %s;" % value,
                         [], start=False)
    rc, out = inst.test_config()
    assert rc != 0 and message in out, out


def test_nginx_t_checks_the_password_file(nginx_factory, workdir):
    missing = workdir / "no-such.pw"
    inst = nginx_factory("rconfpw", """twostep_redis redis://127.0.0.1:1/2;
        twostep_redis_password_file %s;""" % missing, [], start=False)
    rc, out = inst.test_config()
    assert rc != 0 and str(missing) in out and "cannot open" in out, out

    empty = workdir / "empty.pw"
    empty.write_text("\n")
    inst.write_conf(inst.conf_for("""twostep_redis redis://127.0.0.1:1/2;
        twostep_redis_password_file %s;""" % empty))
    rc, out = inst.test_config()
    assert rc != 0 and "empty" in out, out

    # A Redis that is not running is no configuration error.
    good = workdir / "good.pw"
    good.write_text("s3cret-pw-for-nginx-t\n")
    inst.write_conf(inst.conf_for("""twostep_redis redis://127.0.0.1:1/2;
        twostep_redis_password_file %s;""" % good))
    rc, out = inst.test_config()
    assert rc == 0, out
    assert "s3cret-pw-for-nginx-t" not in out



def duo_hosts(name, workdir, app, duo_sim, duo_pool, nginx_factory, redis):
    """Host A (a DuoSite) and host B (A's users, key and Duo, behind the
    same load balancer), their state in Redis, one audience: (A, B's
    port)."""
    from conftest import DuoSite
    from harness import free_port
    pw = redis.password_file(workdir / ("%s.pw" % name))

    def shared(body):
        return redis_conf(redis, pw) + body.replace(
            "twostep_cookie_key", "twostep_session_audience %s;\n"
            "        twostep_cookie_key" % name)

    a = DuoSite(workdir, app, duo_sim, duo_pool, name=name + "-a", workers=2,
                factory=lambda n, body, ports, workers: nginx_factory(
                    n, shared(body), ports, workers=workers))
    port = free_port()
    nginx_factory(name + "-b", shared(a.body()).replace(
        ":%d;" % a.port, ":%d;" % port), [port], workers=2)
    return a, port


def test_push_started_on_one_host_finishes_on_the_other_once(
        workdir, app, duo_sim, duo_pool, duo_normal, nginx_factory, redis):
    from harness import Browser, refresh_url, start_push, wait_status_url
    a, port = duo_hosts("rduo", workdir, app, duo_sim, duo_pool,
                        nginx_factory, redis)
    user = duo_pool.take("auth")

    on_a = a.browser()
    r = start_push(on_a, "/app/", user)
    duo_sim.respond(user.name, "approve")

    # The browser's next polls land on B.
    on_b = Browser("http://127.0.0.1:%d" % port)
    on_b.set_cookie("twostep_pending", on_a.cookie("twostep_pending"))
    s = on_b.get(wait_status_url(r))
    assert s.status_code == 200 and s.json() == {"state": "done"}, snippet(s)
    done = on_b.get(refresh_url(r))
    assert done.status_code == 303, snippet(done)
    assert on_b.app_view("/app/")["headers"]["X-Remote-User"] == user.name

    # The same pending sign-in on host A finds the push used.
    again = on_a.get(refresh_url(r))
    assert again.status_code == 403, snippet(again)
    assert "This page has expired" in Page(again).text
    assert not on_a.cookie("twostep_session")


def test_sign_out_everywhere_on_one_host_ends_sessions_on_the_other(
        nginx_factory, workdir, app, redis):
    from harness import Browser, free_port, get_with_cookie
    from test_selfservice import (SelfServiceSite, new_user, security_page)
    pw = redis.password_file(workdir / "reverywhere.pw")
    amy, ben = new_user("rall-amy"), new_user("rall-ben")
    made = {}

    def shared(name, body, ports, workers=1):
        made["body"] = redis_conf(redis, pw) + body
        return nginx_factory(name, made["body"], ports, workers=workers)

    a = SelfServiceSite(shared, workdir, app, "reverywhere", [amy, ben],
                        workers=2,
                        server_extra="twostep_session_audience rall;")
    port = free_port()
    nginx_factory("reverywhere-b", made["body"].replace(
        ":%d " % a.port, ":%d " % port), [port], workers=2)
    b_url = "http://127.0.0.1:%d" % port

    laptop = a.browser()
    laptop.sign_in("/app/", amy)
    phone = Browser(b_url, fresh=True)
    phone.sign_in("/app/", amy)
    other = Browser(b_url, fresh=True)
    other.sign_in("/app/", ben)
    on_b = {name: b.cookie("twostep_session")
            for name, b in (("amy", phone), ("ben", other))}

    def status_on_b(name):
        return get_with_cookie(b_url, "/app/?format=json",
                               "twostep_session=" + on_b[name]).status_code

    assert status_on_b("amy") == 200

    # "Sign out everywhere" in the laptop's security info, on host A.
    page = Page(security_page(laptop))
    form = [f for f in page.forms
            if f.fields.get("action") == "signout-everywhere"]
    r = laptop.post("/.twostep/security-info", dict(form[0].fields))
    assert r.status_code == 200, snippet(r)

    deadline = time.monotonic() + 2.0
    while True:
        answers = [status_on_b("amy") for _ in range(6)]
        if all(s == 302 for s in answers):
            break
        assert time.monotonic() < deadline, answers
        time.sleep(0.1)
    assert all(status_on_b("ben") == 200 for _ in range(6))


def test_fraud_reported_on_one_host_pauses_pushes_on_the_other(
        workdir, app, duo_sim, duo_pool, duo_normal, nginx_factory, redis):
    """The phone reports a push started on host A as fraud: host B, which
    shares Redis, refuses pushes and calls for the user too, then stops
    offering them."""
    from harness import (Browser, choose_method, offered_methods,
                         password_step, press_send, refresh_url, start_push)
    a, port = duo_hosts("rfraud", workdir, app, duo_sim, duo_pool,
                        nginx_factory, redis)
    user = duo_pool.take("auth")

    on_a = a.browser()
    r = start_push(on_a, "/app/", user)
    duo_sim.respond(user.name, "fraud")
    r = on_a.get(refresh_url(r))
    assert r.status_code == 403 and "This sign-in was refused" in \
        Page(r).text, snippet(r)

    on_b = Browser("http://127.0.0.1:%d" % port)
    page = password_step(on_b, "/app/", user)
    before = len(duo_sim.transactions(user.name))
    held = press_send(on_b, choose_method(on_b, page, "sms"), method="push")
    assert held.status_code == 429, snippet(held)
    assert "Requests to your phone are paused for now" in Page(held).text
    assert len(duo_sim.transactions(user.name)) == before
    # B keeps what Redis told it: its pages stop offering push and call.
    again = password_step(Browser("http://127.0.0.1:%d" % port), "/app/",
                          user)
    assert offered_methods(again) == {"totp", "sms"}, snippet(again, 3000)


def test_fraud_pause_redis_cannot_keep_ends_the_signin(
        workdir, app, duo_sim, duo_pool, duo_normal, nginx_factory, redis):
    """guard.h: a pause that cannot be kept fails closed. Redis hangs when
    the phone reports the push as fraud: the pause would hold on this host
    only, so this sign-in ends there (refused, the app code no longer
    offered, no pending sign-in left) and the error log says why."""
    from harness import VERIFY, offered_methods, refresh_url, start_push
    a, port = duo_hosts("rfraudkeep", workdir, app, duo_sim, duo_pool,
                        nginx_factory, redis)
    user = duo_pool.take("auth")

    b = a.browser()
    wait = start_push(b, "/app/", user)
    duo_sim.respond(user.name, "fraud")
    mark = a.nginx.log_size()
    redis.pause()
    try:
        r = b.get(refresh_url(wait))
    finally:
        redis.resume()

    page = Page(r)
    assert r.status_code == 403, snippet(r)
    assert page.heading == "Sign-in refused", snippet(r, 3000)
    assert "This sign-in was refused" in page.text
    assert offered_methods(r) == set(), snippet(r, 3000)
    assert not b.cookie("twostep_pending") and \
        not b.cookie("twostep_session")
    assert "redis did not take it" in a.nginx.log_text(mark)
    # The app code does not finish it either: the sign-in is gone.
    again = b.get(VERIFY)
    assert again.status_code == 303 and \
        location(again).path.endswith("/signin"), snippet(again)


# ------------------------------------------------- rediss:// (TLS)

def openssl(*args):
    subprocess.run(["openssl"] + list(args), check=True,
                   capture_output=True, timeout=60)


class CertAuthority:
    """A CA made with openssl for one test, and certificates it signs."""

    def __init__(self, directory, name):
        self.dir = Path(directory)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.name = name
        self.key = self.dir / (name + "-ca.key")
        self.cert = self.dir / (name + "-ca.pem")
        openssl("req", "-x509", "-newkey", "ec", "-pkeyopt",
                "ec_paramgen_curve:P-256", "-nodes", "-days", "2",
                "-subj", "/CN=twostep test CA " + name,
                "-keyout", str(self.key), "-out", str(self.cert))

    def issue(self, name, san, client=False):
        """(certificate, key) for `san` ("IP:127.0.0.1,DNS:localhost")."""
        key, csr = self.dir / (name + ".key"), self.dir / (name + ".csr")
        cert, ext = self.dir / (name + ".pem"), self.dir / (name + ".ext")
        ext.write_text("subjectAltName=%s\nextendedKeyUsage=%s\n"
                       % (san, "clientAuth" if client else "serverAuth"))
        openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
                "-nodes", "-subj", "/CN=" + name, "-keyout", str(key),
                "-out", str(csr))
        openssl("x509", "-req", "-in", str(csr), "-CA", str(self.cert),
                "-CAkey", str(self.key), "-CAcreateserial", "-days", "2",
                "-extfile", str(ext), "-out", str(cert))
        return cert, key


class TlsRedisServer(RedisServer):
    """Debian's redis-server speaking TLS only (--tls-port, --port 0), with
    `cert` as its certificate, asking clients for one signed by `ca`."""

    def __init__(self, directory, ca, cert, key):
        super().__init__(directory)
        self.ca, self.cert, self.key = ca, cert, key

    def start(self):
        log = open(self.dir / "redis.log", "ab")
        self.proc = subprocess.Popen(
            [REDIS_SERVER, "--port", "0", "--tls-port", str(self.port),
             "--tls-cert-file", str(self.cert),
             "--tls-key-file", str(self.key),
             "--tls-ca-cert-file", str(self.ca.cert),
             "--bind", "127.0.0.1", "--requirepass", self.password,
             "--save", "", "--appendonly", "no", "--dir", str(self.dir),
             "--daemonize", "no"],
            stdin=subprocess.DEVNULL, stdout=log, stderr=log)
        wait_for_port(self.port, self.proc, what="redis-server (TLS)")
        return self

    def url(self, db=0):
        return "rediss://127.0.0.1:%d/%d" % (self.port, db)


@pytest.fixture
def tls(workdir):
    """A CA, a client certificate it signs, and TLS Redis servers made
    with a certificate of one's choosing: make(cert, key)."""
    d = workdir / ("tls-%d" % time.monotonic_ns())
    ca = CertAuthority(d, "good")
    client = ca.issue("nginx-client", "DNS:nginx.test", client=True)
    servers = []

    def make(cert=None, key=None):
        if cert is None:
            cert, key = ca.issue("redis-%d" % len(servers),
                                 "IP:127.0.0.1,DNS:localhost")
        server = TlsRedisServer(d / ("redis-%d" % len(servers)), ca, cert,
                                key)
        servers.append(server)
        return server.start()

    make.ca, make.client, make.dir = ca, client, d
    yield make
    for server in servers:
        server.kill()


def tls_conf(redis, pwfile, ca, client, url=None):
    return redis_conf(redis, pwfile, url=url) + """
    twostep_redis_trusted_certificate %s;
    twostep_redis_certificate %s;
    twostep_redis_certificate_key %s;""" % (ca.cert, client[0], client[1])


def test_tls_code_used_on_one_host_is_refused_on_the_other(
        guarded, nginx_factory, workdir, tls):
    redis = tls()
    pw = redis.password_file(workdir / "rtls.pw")
    h = Hosts(guarded, nginx_factory, "rtls",
              tls_conf(redis, pw, tls.ca, tls.client))
    user = h.users[0]
    wait_off_step_boundary(margin=5)
    code = user.code()

    r = h.browser("a").sign_in("/app/", user, code=code)
    assert location(r).path == "/app/"

    # Redis listens for TLS only: B learnt of the code through it.
    b = h.browser("b")
    r = b.submit_code(code_page(b, user), code)
    assert r.status_code == 403, snippet(r)
    assert USED in Page(r).text, snippet(r)
    r = b.submit_code(r, user.code(steps=1))
    assert r.status_code == 303, snippet(r)
    assert b.app_view("/app/")["headers"]["X-Remote-User"] == user.name
    assert "twostep: redis" not in h.logs()


@pytest.mark.parametrize("case,expect", [
    ("other-ca", "sent a certificate that is not trusted "
                 "(unable to verify the first certificate)"),
    ("wrong-name", "sent a certificate that is not trusted "
                   "(IP address mismatch)"),
])
def test_tls_untrusted_server_fails_closed(guarded, workdir, tls, case,
                                           expect):
    if case == "other-ca":
        cert = CertAuthority(tls.dir, "rogue").issue("rogue-redis",
                                              "IP:127.0.0.1,DNS:localhost")
    else:
        cert = tls.ca.issue("elsewhere", "DNS:redis.example")
    redis = tls(*cert)
    pw = redis.password_file(workdir / "rtlsbad.pw")
    site = guarded("rtls" + case, http_extra=tls_conf(redis, pw, tls.ca,
                                                      tls.client))
    signin_fails_closed(site, re.escape("twostep: redis " + expect))


def test_plain_redis_url_on_a_tls_port_fails_closed(guarded, workdir, tls):
    redis = tls()
    pw = redis.password_file(workdir / "rtlsplain.pw")
    site = guarded("rtlsplain", http_extra=redis_conf(
        redis, pw, url="redis://127.0.0.1:%d" % redis.port))
    signin_fails_closed(site, "twostep: redis closed the connection")


def test_tls_url_on_a_plain_port_fails_closed(guarded, redis, workdir, tls):
    pw = redis.password_file(workdir / "rtlsonplain.pw")
    site = guarded("rtlsonplain", http_extra=tls_conf(
        redis, pw, tls.ca, tls.client,
        url="rediss://127.0.0.1:%d" % redis.port))
    # Redis waits for the rest of a command that never ends.
    signin_fails_closed(site, "twostep: redis did not finish the TLS "
                              "handshake in time")


def test_nginx_t_checks_the_tls_files(nginx_factory, workdir, tls):
    missing = workdir / "no-such-ca.pem"
    inst = nginx_factory("rtlsconf", """twostep_redis rediss://127.0.0.1:1;
        twostep_redis_trusted_certificate %s;""" % missing, [], start=False)
    rc, out = inst.test_config()
    assert rc != 0 and str(missing) in out, out

    cert, key = tls.client
    for body, message in [
        ("""twostep_redis rediss://127.0.0.1:1;
            twostep_redis_certificate %s;""" % cert,
         "twostep_redis_certificate_key go together"),
        ("""twostep_redis redis://127.0.0.1:1;
            twostep_redis_trusted_certificate %s;""" % tls.ca.cert,
         "need a rediss:// address"),
    ]:
        inst.write_conf(inst.conf_for(body))
        rc, out = inst.test_config()
        assert rc != 0 and message in out, out

    # A Redis that is not running is no configuration error.
    inst.write_conf(inst.conf_for("""twostep_redis rediss://127.0.0.1:1/2;
        twostep_redis_trusted_certificate %s;
        twostep_redis_certificate %s;
        twostep_redis_certificate_key %s;""" % (tls.ca.cert, cert, key)))
    rc, out = inst.test_config()
    assert rc == 0, out


def test_recovery_code_used_on_one_host_is_refused_on_the_other(
        nginx_factory, workdir, app, redis):
    """Each host has its own copy of the store file (as with a file synced
    from configuration management): a recovery code used on host A is
    refused on host B before B's copy learns of it."""
    import hashlib
    import shutil
    from conftest import POOL_PASSWORD
    from harness import (Browser, free_port, password_hash,
                         remember_sensitive)
    from test_selfservice import SelfServiceSite, password_to_verify
    pw = redis.password_file(workdir / "rrecovery.pw")
    name = "rrec-user"
    codes = ["bcdef-ghijk-lmnop-qrstu-vwxy%s" % c for c in "abc"]
    for code in codes:
        remember_sensitive("code", code)
    extra = {name: {"password": password_hash(POOL_PASSWORD),
                    "recovery": [hashlib.sha256(c.replace("-", "").encode())
                                 .hexdigest() for c in codes]}}
    made = {}

    def shared(name_, body, ports, workers=1):
        made["body"] = redis_conf(redis, pw) + body
        return nginx_factory(name_, made["body"], ports, workers=workers)

    a = SelfServiceSite(shared, workdir, app, "rrecovery", [], extra=extra,
                        workers=2,
                        server_extra="twostep_session_audience rrec;")
    copy = a.users_file.parent.parent / "store-b"
    shutil.copytree(a.users_file.parent, copy)
    shutil.chown(copy, "nobody", "nogroup")
    shutil.chown(copy / "users.json", "nobody", "nogroup")
    port = free_port()
    nginx_factory("rrecovery-b", made["body"].replace(
        ":%d " % a.port, ":%d " % port).replace(
        str(a.users_file), str(copy / "users.json")), [port], workers=2)

    def use(browser, code):
        r = browser.follow(password_to_verify(browser, "/app/", name))
        assert r.status_code == 200, snippet(r)
        return browser.submit_code(r, code)

    r = use(a.browser(), codes[0])
    assert r.status_code == 303, snippet(r)

    on_b = Browser("http://127.0.0.1:%d" % port, fresh=True)
    r = use(on_b, codes[0])
    assert r.status_code == 403, snippet(r)
    assert "twostep_session" not in set_cookies(r)
    assert on_b.get("/app/").status_code == 302
    # Another code of the user still works on B.
    r = on_b.submit_code(r, codes[1])
    assert r.status_code == 303, snippet(r)
    assert on_b.app_view("/app/")["headers"]["X-Remote-User"] == name
    # Redis holds a keyed hash, not the code nor its hash in the store.
    keys = redis.cli("--scan", "--pattern", "t%d:*" % redis.port)
    assert "recovery " in keys, keys
    for code in codes:
        plain = code.replace("-", "")
        assert plain not in keys and code not in keys
        assert hashlib.sha256(plain.encode()).hexdigest() not in keys


class SelfHostedHosts:
    """Twilio and ntfy without Duo on two hosts behind one load balancer:
    the same users, key, audience and public URL (host A's: the links the
    phone gets and Twilio's call-backs go there; a test sends them to host
    B by its own port instead), their state in Redis."""

    def __init__(self, workdir, app, redis, name):
        import tempfile
        from harness import (Nginx, free_port, ntfy_standin, twilio_standin,
                             write_key)
        from test_selfhosted import ACCOUNT, NTFY_TOKEN, TOKEN, Pool, \
            site_conf
        self.tw = twilio_standin(Path(tempfile.mkdtemp(
            prefix="twilio-", dir=workdir)), ACCOUNT, TOKEN)
        self.nt = ntfy_standin(Path(tempfile.mkdtemp(
            prefix="ntfy-", dir=workdir)), NTFY_TOKEN)
        self.pool = Pool()
        self.hosts = []
        pw = redis.password_file(workdir / ("%s.pw" % name))
        shared = redis_conf(redis, pw)
        users = key = public = None
        for host in ("a", "b"):
            d = Path(tempfile.mkdtemp(prefix="%s-%s-" % (name, host),
                                      dir=workdir))
            d.chmod(0o755)
            if users is None:
                users = self.pool.write(d / "users.json")
                key = write_key(d / "cookie.key")
            port = free_port()
            public = public or "http://127.0.0.1:%d" % port
            conf = site_conf(d, users, key, port, app, self.tw,
                             self.nt).replace(
                "twostep_users", shared + "\n    twostep_users", 1).replace(
                "twostep_cookie_key", "twostep_session_audience %s;\n"
                "        twostep_cookie_key" % name, 1).replace(
                "twostep_public_url http://127.0.0.1:%d;" % port,
                "twostep_public_url %s;" % public, 1)
            nginx = Nginx(d / "nginx", conf, ports=[port])
            nginx.start()
            nginx.base = "http://127.0.0.1:%d" % port
            self.hosts.append(nginx)
        self.a, self.b = self.hosts
        self.users = Path(users)
        self.key_file = key
        self.audience = "audience:" + name

    def on(self, host, url):
        """`url` (a link to host A) sent to `host` instead."""
        return url.replace(self.a.base, host.base, 1)

    def stop(self):
        for h in self.hosts:
            h.stop()
        self.tw.stop()
        self.nt.stop()


@pytest.fixture
def selfhosted(workdir, app, redis):
    made = []

    def make(name):
        made.append(SelfHostedHosts(workdir, app, redis, name))
        return made[-1]
    yield make
    for h in made:
        h.stop()


def test_texted_code_used_on_one_host_is_refused_on_the_other(selfhosted):
    """Twilio text without Duo: the pending sign-in (and the code in it)
    works on either host, so a copy of it cannot use the code again on
    the other host."""
    from harness import VERIFY, Browser
    from test_selfhosted import (assert_not_signed_in, assert_signed_in,
                                 send_text, texted_code)
    h = selfhosted("rtext")
    user = h.pool.take("sms")
    on_a = Browser(h.a.base)
    r = send_text(on_a, user)
    code = texted_code(h.tw, user)
    form = dict(Page(r).form(VERIFY).fields)
    pending = on_a.cookie("twostep_pending")
    assert pending
    assert_signed_in(on_a, on_a.submit_code(r, code, method="sms"),
                     "sms", user)

    # A copy of the pending sign-in, with the same code, on host B.
    thief = Browser(h.b.base)
    thief.set_cookie("twostep_pending", pending)
    form.update(code=code, method="sms")
    r = thief.post(VERIFY, form)
    assert r.status_code == 403, snippet(r)
    assert Page(r).heading == "Enter code", snippet(r)
    assert_not_signed_in(thief)


def approval_page(h, host, user):
    """The push's Approve link, opened on `host`: (session, URL, form)."""
    import requests
    from test_selfhosted import approval_link
    _, url = approval_link(h.nt, user)
    url = h.on(host, url)
    phone = requests.Session()
    page = phone.get(url, timeout=10)
    assert page.status_code == 200, snippet(page)
    return phone, url, dict(Page(page).forms[0].fields)


def test_push_from_one_host_approved_on_the_other_signs_in(selfhosted):
    """ntfy without Duo: the push goes out from host A, the phone's
    approval page is served by host B, the browser polling host A signs
    in; the same answer again, on either host, is refused."""
    from harness import Browser, wait_status_url
    from test_selfhosted import (assert_signed_in, check, pushes,
                                 shown_number, tap)
    h = selfhosted("rpush")
    user = h.pool.take("push")
    on_a = Browser(h.a.base)
    r = start_push(on_a, user)
    phone, url, form = approval_page(h, h.b, user)
    assert on_a.get(wait_status_url(r)).json() == {"state": "waiting"}

    form["number"] = shown_number(r)
    done = phone.post(url.split("?")[0], data=form, timeout=10)
    assert done.status_code == 200, snippet(done)
    assert Page(done).heading == "Sign-in approved"

    assert on_a.get(wait_status_url(r)).json() == {"state": "done"}
    assert_signed_in(on_a, check(on_a, r), "push", user)

    # Used: on host A's page, by its Deny button, and on B again.
    for host in (h.a, h.b):
        again = phone.post(h.on(host, url).split("?")[0], data=form,
                           timeout=10)
        assert again.status_code == 403, snippet(again)
        assert "This link no longer works" in Page(again).text
    assert tap(h.nt, pushes(h.nt, user)[0], "Deny")["status"] == 403


def test_push_denied_on_one_host_is_not_approved_on_the_other(selfhosted):
    """The ntfy app's Deny reaches host A (the public URL): the approval
    link then fails on host B too, and the browser on B is refused."""
    import requests
    from harness import Browser
    from test_selfhosted import (approval_link, assert_not_signed_in, check,
                                 pushes, tap)
    h = selfhosted("rdeny")
    user = h.pool.take("push")
    on_b = Browser(h.b.base)
    r = start_push(on_b, user)
    assert tap(h.nt, pushes(h.nt, user)[0], "Deny")["status"] == 200
    _, url = approval_link(h.nt, user)
    assert requests.get(h.on(h.b, url), timeout=10).status_code == 403
    r = check(on_b, r)
    assert r.status_code == 403 and "denied" in Page(r).text, snippet(r)
    assert_not_signed_in(on_b)


def start_push(b, user, method="push"):
    from harness import start_push as start
    return start(b, "/app/", user, method=method)


def test_call_answered_on_the_other_host_signs_in(selfhosted):
    """Twilio without Duo: the call goes out from host A, Twilio's
    keypress call-back reaches host B, the browser polling host A signs
    in; the call-back replayed to host A is refused."""
    import requests
    from harness import Browser
    from test_selfhosted import (ACCOUNT, FROM, TOKEN, assert_signed_in,
                                 check, the_call, twilio_signature)
    h = selfhosted("rcall")
    user = h.pool.take("call")
    on_a = Browser(h.a.base)
    r = start_push(on_a, user, method="call")
    call = the_call(h.tw, user)
    action = call["gather"]["action"]
    assert action.startswith(h.a.base)
    # Signed as Twilio signs it: over the public URL it was given.
    params = {"AccountSid": ACCOUNT, "CallSid": call["sid"], "Digits": "#",
              "From": FROM, "To": user.phone}
    headers = {"X-Twilio-Signature": twilio_signature(TOKEN, action, params)}
    first = requests.post(h.on(h.b, action), data=params, headers=headers,
                          timeout=10)
    assert first.status_code == 200, first.text
    assert "Goodbye" in first.text

    assert_signed_in(on_a, check(on_a, r), "call", user)

    for host in (h.a, h.b):
        again = requests.post(h.on(host, action), data=params,
                              headers=headers, timeout=10)
        assert again.status_code == 403, again.text
    assert 'call-back replayed, user: "%s"' % user.name in \
        h.a.log_text() + h.b.log_text()


def test_push_limits_count_across_hosts(selfhosted):
    """Three pushes per user per ten minutes, wherever they start: two
    hosts do not allow six. The fourth, on the host that sent only one,
    is refused and the page says how long to wait."""
    from harness import (Browser, choose_method, password_step,
                         press_send)
    from test_selfhosted import check, pushes, tap
    h = selfhosted("rlimit")
    user = h.pool.take("push")
    for i, host in enumerate((h.a, h.b, h.a)):
        b = Browser(host.base)
        r = start_push(b, user)
        assert len(pushes(h.nt, user)) == i + 1
        assert tap(h.nt, pushes(h.nt, user)[-1], "Deny")["status"] == 200
        assert check(b, r).status_code == 403

    b = Browser(h.b.base)
    page = choose_method(b, password_step(b, "/app/", user), "push")
    held = press_send(b, page)
    assert held.status_code == 429, snippet(held)
    text = Page(held).text
    assert "Try again in 10 minutes" in text or \
        "Try again in 9 minutes" in text, snippet(held, 3000)
    assert len(pushes(h.nt, user)) == 3


def push_is_held(h, b, user, sent):
    """A push for `user` from browser `b` is held while another waits
    (`sent` pushes went out): the page to send it from."""
    from harness import choose_method, password_step, press_send
    from test_selfhosted import pushes
    page = choose_method(b, password_step(b, "/app/", user), "push")
    held = press_send(b, page)
    assert held.status_code == 429, snippet(held)
    assert "already waiting" in Page(held).text, snippet(held, 3000)
    assert len(pushes(h.nt, user)) == sent
    return page


def test_one_push_at_a_time_across_hosts(selfhosted):
    """A push waiting (started on host A) holds the next one on host B
    until it is answered."""
    from harness import Browser, press_send
    from test_selfhosted import check, pushes, tap
    h = selfhosted("rbusy")
    user = h.pool.take("push")
    on_a = Browser(h.a.base)
    r = start_push(on_a, user)

    b = Browser(h.b.base)
    page = push_is_held(h, b, user, sent=1)

    # Answered and seen on A: B may send one now.
    assert tap(h.nt, pushes(h.nt, user)[0], "Deny")["status"] == 200
    assert check(on_a, r).status_code == 403
    sent = press_send(b, page)
    assert sent.status_code == 303, snippet(sent)
    assert len(pushes(h.nt, user)) == 2


def waiting_fails_closed(b, r):
    """The waiting page of `r`, polled and checked: 503, nobody in."""
    from harness import wait_status_url
    from test_selfhosted import assert_not_signed_in, check
    polled = b.get(wait_status_url(r))
    assert polled.status_code == 503, snippet(polled)
    checked = check(b, r)
    assert checked.status_code == 503, snippet(checked)
    assert UNAVAILABLE in Page(checked).text
    assert_not_signed_in(b)


def test_redis_down_fails_push_and_answers_closed(selfhosted, redis):
    """Redis away: the phone's answer is not recorded (the approval page
    says so), the waiting page is a clear 503, a new push is refused with
    503, and nobody signs in."""
    from harness import (Browser, choose_method, password_step,
                         press_send)
    from test_selfhosted import (assert_not_signed_in, pushes,
                                 shown_number)
    h = selfhosted("rdown")
    user, other = h.pool.take("push"), h.pool.take("push")
    on_a = Browser(h.a.base)
    r = start_push(on_a, user)
    phone, url, form = approval_page(h, h.b, user)
    later = Browser(h.b.base)
    page = choose_method(later, password_step(later, "/app/", other), "push")

    redis.kill()
    form["number"] = shown_number(r)
    done = phone.post(url.split("?")[0], data=form, timeout=10)
    assert done.status_code == 503, snippet(done)
    assert Page(done).heading == "Your answer may not have been recorded"
    assert "may not count" in Page(done).text

    waiting_fails_closed(on_a, r)

    sent = press_send(later, page)
    assert sent.status_code == 503, snippet(sent)
    assert "try again" in Page(sent).text.lower(), snippet(sent, 3000)
    assert pushes(h.nt, other) == []
    assert_not_signed_in(later)


def approved_set_up(h):
    """"Set up push notifications" on host A, its test push approved on
    host B's approval page: the browser (the store writable by the
    workers), its waiting page, the user and the topic."""
    import grp
    import os
    import pwd
    import requests
    from harness import Browser
    from test_push_setup import pushes, start_setup, waiting_page
    from test_selfhosted import tap
    # The workers (nobody) write the store, as the README asks.
    users = h.users
    nobody = pwd.getpwnam("nobody").pw_uid, grp.getgrnam("nogroup").gr_gid
    for path in (users.parent, users):
        os.chown(path, *nobody)
    user = h.pool.take("sms")
    b = Browser(h.a.base)
    b.sign_in("/app/", user)
    page, topic = start_setup(b)
    wait, number = waiting_page(b, page)

    url = tap(h.nt, pushes(h.nt, topic)[0], "Approve")["url"]
    phone = requests.Session()
    form = dict(Page(phone.get(h.on(h.b, url), timeout=10)).forms[0].fields)
    form["number"] = number
    done = phone.post(h.on(h.b, url).split("?")[0], data=form, timeout=10)
    assert done.status_code == 200, snippet(done)
    assert Page(done).heading == "Test notification approved"
    return b, wait, user, topic


def test_push_set_up_test_approved_on_the_other_host_saves(selfhosted):
    """"Set up push notifications" on host A: its test push approved on
    host B's approval page saves the topic on A (one store file)."""
    import json
    from harness import location, refresh_url
    from test_push_setup import SECURITY
    h = selfhosted("rsetup")
    b, wait, user, topic = approved_set_up(h)

    r = b.get(refresh_url(wait))
    assert r.status_code == 303, snippet(r)
    assert location(r).path == SECURITY and location(r).query == "done=push"
    assert json.loads(h.users.read_text())["users"][user.name][
        "ntfy_topic"] == topic


def test_push_set_up_saves_once_across_hosts(selfhosted):
    """The approved test push saves on one host only: a copy of the
    browser's cookies checking it on host B after host A saved it is
    refused (the claim is in Redis), and B writes nothing."""
    from harness import Browser, refresh_url
    h = selfhosted("rsetuponce")
    b, wait, user, _ = approved_set_up(h)
    copy = Browser(h.b.base)
    for c in b.http.cookies:
        copy.set_cookie(c.name, c.value)

    assert b.get(refresh_url(wait)).status_code == 303
    mark = h.b.log_size()
    r = copy.get(refresh_url(wait))
    assert r.status_code == 403, snippet(r)
    assert "security info changed" not in h.b.log_text(mark)


def test_approval_written_into_redis_signs_nobody_in(selfhosted, redis):
    """Whoever can write to Redis and knows a password starts a push and
    sets its answer to "approved" (a bare 2, or with a made-up MAC): the
    answer carries no MAC by the server's key, so the browser is refused
    (503) and the forgery logged; a phone's real approval signs in."""
    from harness import Browser
    from test_selfhosted import assert_signed_in, check, shown_number
    h = selfhosted("rforge")
    h.a.allow_log("this server did not write")
    user, honest = h.pool.take("push"), h.pool.take("push")
    prefix = "t%d:" % redis.port
    on_a = Browser(h.a.base)
    r = start_push(on_a, user)
    keys = redis.cli("KEYS", prefix + "x:*").split()
    assert len(keys) == 1 and redis.cli("GET", keys[0]) == "1"

    for forged in ("2", "2.AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"):
        assert redis.cli("SET", keys[0], forged, "KEEPTTL") == "OK"
        waiting_fails_closed(on_a, r)
    assert "this server did not write" in h.a.log_text()

    on_b = Browser(h.b.base)
    r = start_push(on_b, honest)
    phone, url, form = approval_page(h, h.a, honest)
    form["number"] = shown_number(r)
    done = phone.post(url.split("?")[0], data=form, timeout=10)
    assert done.status_code == 200, snippet(done)
    stored = [k for k in redis.cli("KEYS", prefix + "x:*").split()
              if k != keys[0]]
    assert redis.cli("GET", stored[0]).startswith("2.")
    assert_signed_in(on_b, check(on_b, r), "push", honest)


def approval_record(h, txid, value):
    """A decided answer as a host stores it (approval.cpp: "<value>.<MAC>",
    the MAC by the site's cookie key over the transaction and answer)."""
    import base64
    import hashlib
    import hmac
    raw = Path(h.key_file).read_bytes()
    key = hmac.new(raw, b"nginx-twostep token key v1",
                   hashlib.sha256).digest()
    key = hmac.new(key, b"audience|" + h.audience.encode(),
                   hashlib.sha256).digest()
    mac = hmac.new(key, b"mac|approval|%s|%d" % (txid.encode(), value),
                   hashlib.sha256).digest()
    return "%d.%s" % (value, base64.urlsafe_b64encode(mac).decode()
                      .rstrip("="))


def test_fraud_in_redis_pauses_on_the_browsers_host(selfhosted, redis):
    """"I didn't try to sign in" kept in Redis while the phone's host
    timed out (so it never paused): the browser's host reads the report,
    refuses the sign-in and pauses pushes and calls for the user itself,
    on every host."""
    from harness import Browser, choose_method, password_step, press_send
    from test_selfhosted import assert_not_signed_in, check, pushes
    h = selfhosted("rfraud2")
    user = h.pool.take("push")
    prefix = "t%d:" % redis.port
    on_a = Browser(h.a.base)
    r = start_push(on_a, user)
    keys = redis.cli("KEYS", prefix + "x:*").split()
    assert len(keys) == 1
    txid = keys[0][len(prefix) + 2:]
    assert redis.cli("SET", keys[0], approval_record(h, txid, 4),
                     "KEEPTTL") == "OK"

    refused = check(on_a, r)
    assert refused.status_code == 403, snippet(refused)
    assert "This sign-in was refused" in Page(refused).text
    assert_not_signed_in(on_a)

    b = Browser(h.b.base)
    page = choose_method(b, password_step(b, "/app/", user), "push")
    held = press_send(b, page)
    assert held.status_code == 429, snippet(held)
    assert "Requests to your phone are paused for now" in Page(held).text
    assert len(pushes(h.nt, user)) == 1


def test_fraud_reported_while_redis_is_down_still_pauses(selfhosted, redis):
    """"I didn't try to sign in" while Redis does not answer (it may have
    kept the report all the same): the phone is told its answer may not
    have been recorded, and the report is logged and pauses pushes and
    calls for the user on the host it reached."""
    from harness import Browser, offered_methods
    h = selfhosted("rfraud3")
    user = h.pool.take("push")
    on_a = Browser(h.a.base)
    start_push(on_a, user)
    phone, url, _ = approval_page(h, h.b, user)
    report = [f for f in Page(phone.get(url, timeout=10)).forms
              if f.fields.get("action") == "fraud"]
    assert len(report) == 1

    redis.kill()
    done = phone.post(url.split("?")[0], data=dict(report[0].fields),
                      timeout=10)
    assert done.status_code == 503, snippet(done)
    assert Page(done).heading == "Your answer may not have been recorded"
    assert 'sign-in reported as fraud on the approval page, user: "%s"' \
        % user.name in h.b.log_text()

    # Redis back (empty): host B kept the pause in its zone.
    redis.start()
    b, r = password_step_once_back(Browser(h.b.base), user)
    assert "push" not in offered_methods(b.follow(r))


def test_old_pending_cookie_frees_no_other_push(selfhosted, redis):
    """A copy of a pending sign-in whose push was answered, polled again
    while another push for the user waits, does not free that push's
    place: one push at a time still holds on every host."""
    from harness import Browser
    from test_selfhosted import check, pushes, tap
    h = selfhosted("rstale")
    user = h.pool.take("push")
    first = Browser(h.a.base)
    r = start_push(first, user)
    old = first.cookie("twostep_pending")
    assert tap(h.nt, pushes(h.nt, user)[0], "Deny")["status"] == 200
    assert check(first, r).status_code == 403

    second = Browser(h.b.base)
    start_push(second, user)
    assert len(pushes(h.nt, user)) == 2
    prefix = "t%d:" % redis.port
    assert redis.cli("GET", prefix + "o:" + user.name) != ""

    stale = Browser(h.a.base)
    stale.set_cookie("twostep_pending", old)
    assert check(stale, r).status_code == 403
    assert redis.cli("GET", prefix + "o:" + user.name) != ""

    push_is_held(h, Browser(h.a.base), user, sent=2)


def test_stale_pending_cookie_replaces_no_push_across_hosts(selfhosted):
    """"Send request" again from a copy of a pending sign-in whose push was
    answered, while another browser's push (started on host B) waits:
    refused on host A, no second push reaches the phone; the waiting
    browser's own "send another" still replaces its push, from either
    host."""
    from harness import Browser, choose_method, password_step, press_send
    from test_selfhosted import check, pushes, tap
    h = selfhosted("rreplace")
    user = h.pool.take("push")
    first = Browser(h.a.base)
    page = choose_method(first, password_step(first, "/app/", user), "push")
    r = first.follow(press_send(first, page))
    old = first.cookie("twostep_pending")
    assert tap(h.nt, pushes(h.nt, user)[0], "Deny")["status"] == 200
    assert check(first, r).status_code == 403

    second = Browser(h.b.base)
    again = choose_method(second, password_step(second, "/app/", user),
                          "push")
    assert press_send(second, again).status_code == 303
    assert len(pushes(h.nt, user)) == 2

    stale = Browser(h.a.base)
    stale.set_cookie("twostep_pending", old)
    held = press_send(stale, page)
    assert held.status_code == 429, snippet(held)
    assert "already waiting" in Page(held).text, snippet(held, 3000)
    assert len(pushes(h.nt, user)) == 2

    moved = Browser(h.a.base)
    moved.set_cookie("twostep_pending", second.cookie("twostep_pending"))
    mine = press_send(moved, again)
    assert mine.status_code == 303, snippet(mine)
    assert len(pushes(h.nt, user)) == 3
