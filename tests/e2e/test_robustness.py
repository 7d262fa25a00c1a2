"""Robustness: no C++ exception ever unwinds through nginx's C frames (every
allocation of the module failing in turn while nginx reads its
configuration gives a clean `nginx -t` failure, never an abort), and
self-service saving works with the README's permission steps, the lock
file included (workers as nobody)."""

import grp
import os
import pwd
import re
import subprocess
import time
from pathlib import Path

import pytest

import harness
from conftest import MODULE
from harness import (Browser, Page, location, main_conf, proxy_to,
                     remember_sensitive, snippet, totp_code, write_key)

REPO = Path(__file__).resolve().parents[2]
TOOL = Path(os.environ.get("TWOSTEP_TOOL", REPO / "build" / "twostep-user"))
SHIM = Path(__file__).resolve().parent / "fault" / "fail_new.cpp"
PASSWORD = "robust-pw-Jx7!q 2m"


def tool(users, *args, stdin=None):
    r = subprocess.run([str(TOOL), "--users", str(users)] + list(args),
                       input=stdin, capture_output=True, text=True,
                       timeout=60)
    assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


@pytest.fixture(scope="module")
def tool_built():
    if not TOOL.is_file():
        subprocess.run(["make", "-C", str(REPO), "--no-print-directory",
                        "tool"], check=True, capture_output=True)
    return TOOL


@pytest.mark.skipif(harness.ASAN, reason="ASan replaces operator new itself")
def test_failed_allocations_while_configuring_never_abort(workdir, app):
    """Every C++ allocation the module makes while nginx reads the
    configuration (directives, merging, the checks of nginx -t) fails in
    turn: `nginx -t` then fails with an [emerg] naming the problem, and
    never dies of an exception thrown through nginx's C code. Every
    directive with a setter of its own is there (Redis, the audit log,
    metrics, ...), so each setter's failure is seen."""
    d = harness.make_workdir("twostep-faults-")
    shim = d / "fail_new.so"
    subprocess.run(["g++", "-shared", "-fPIC", "-O1", "-o", str(shim),
                    str(SHIM)], check=True)
    users = harness.write_users(d / "users.json",
                                [harness.User("faulty", PASSWORD)])
    key = write_key(d / "key")
    body = """
    twostep_users {users};
    twostep_cookie_key {key};
    twostep_enroll on;
    twostep_portal_uri /sign-in/;
    twostep_redis redis://127.0.0.1:{redis_port}/0;
    twostep_redis_timeout 2s;
    twostep_redis_prefix faulty:;
    twostep_audit_log {audit};
    twostep_remember 30d;
    twostep_webauthn_rp_id example.com;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            twostep on;
            twostep_methods totp;
            {proxy}
        }}
        location = /metrics {{
            twostep_metrics;
        }}
    }}
""".format(users=users, key=key, port=harness.free_port(),
           redis_port=harness.free_port(), audit=d / "audit.log",
           proxy=proxy_to(app.port))
    conf = d / "nginx.conf"
    conf.write_text(main_conf(d, MODULE, body, workers=1))
    (d / "tmp").mkdir()

    failures = 0
    for n in range(5000):
        env = dict(os.environ, LD_PRELOAD=str(shim), TWOSTEP_FAIL_NEW=str(n))
        r = subprocess.run([harness.NGINX, "-p", str(d) + "/", "-c",
                            str(conf), "-t"], capture_output=True, text=True,
                           timeout=60, env=env)
        out = r.stdout + r.stderr
        assert "terminate called" not in out and r.returncode in (0, 1), \
            "allocation %d: exit %d\n%s" % (n, r.returncode, out)
        if r.returncode == 0:
            break
        assert re.search(r"\[emerg\].*(bad_alloc|twostep)", out), \
            "allocation %d:\n%s" % (n, out)
        failures += 1
    else:
        pytest.fail("nginx -t never succeeded")
    # The configuration does allocate: the sweep failed something.
    assert failures > 10, failures


def test_enroll_saves_with_the_readme_permission_steps(
        tool_built, nginx_factory, workdir, app):
    """README, "Letting users manage their security info", step by step
    with nobody's group for www-data: the store made by twostep-user, the
    directory and file given to the workers' group, then twostep-user run
    once more. The lock file users.json.lock, made root-only by the first
    twostep-user run, then has the store's group and mode, so a user who
    scans the QR code and types a correct code gets their app saved rather
    than "Could not save". Until that last step nginx -t names the lock
    file the workers cannot open."""
    group = grp.getgrgid(pwd.getpwnam("nobody").pw_gid).gr_name
    base = harness.make_workdir("twostep-readme-")
    store_dir = base / "twostep"
    users = store_dir / "users.json"
    lock = store_dir / "users.json.lock"
    subprocess.run(["install", "-d", "-o", "root", "-g", group, "-m",
                    "0770", str(store_dir)], check=True)
    remember_sensitive("password", PASSWORD)
    tool(users, "add", "newcomer", stdin=PASSWORD + "\n")
    assert lock.stat().st_mode & 0o777 == 0o600
    subprocess.run(["chgrp", group, str(users)], check=True)
    subprocess.run(["chmod", "0660", str(users)], check=True)

    port = harness.free_port()
    body = """
    twostep_users {users};
    twostep_enroll on;
    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {key};
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(users=users, port=port, key=write_key(base / "cookie.key"),
           proxy=proxy_to(app.port))
    nginx = nginx_factory("readme", body, [port], start=False)
    rc, out = nginx.test_config()
    assert rc == 0, out
    assert re.search(r'\[warn\].*cannot open the lock file "%s"'
                     % re.escape(str(lock)), out), out

    tool(users, "list")     # the README's last step
    st, lst = users.stat(), lock.stat()
    assert (lst.st_gid, lst.st_mode & 0o777) == (st.st_gid, 0o660)
    rc, out = nginx.test_config()
    assert rc == 0 and "lock file" not in out, out
    nginx.start()

    b = Browser(nginx.url())
    r = b.follow(b.get("/app/"))
    r = b.submit_password(r, "newcomer", PASSWORD)
    assert r.status_code == 303, snippet(r)
    r = b.follow(b.follow(r))       # the second step, then set-up
    assert r.status_code == 200, snippet(r)
    m = re.search(r'<code class="key">([^<]*)</code>', r.text)
    assert m, snippet(r, 3000)
    key = m.group(1).replace(" ", "")
    remember_sensitive("secret", key)
    form = Page(r).form("/.twostep/enroll")
    r = b.post("/.twostep/enroll",
               dict(form.fields, code=totp_code(key, time.time())))
    assert r.status_code == 303, snippet(r)
    assert location(r).path == "/app/"
    assert b.app_view("/app/")["headers"]["X-Remote-User"] == "newcomer"
