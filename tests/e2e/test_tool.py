"""twostep-user, the administrators' tool: the real binary editing a users
file, the secret it prints checked against oathtool, and a user it made
signing in through the real nginx and module."""

import base64
import hashlib
import hmac
import json
import os
import re
import select
import shutil
import struct
import subprocess
import time
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

import pytest

from harness import (REPO, Browser, Page, User, free_port, proxy_to,
                     remember_sensitive, snippet, totp_code, write_key)

TOOL = Path(os.environ.get("TWOSTEP_TOOL", REPO / "build" / "twostep-user"))
PASSWORD = "tool-pw-Zq4!t 9x"


@pytest.fixture(scope="module", autouse=True)
def tool_built():
    if not TOOL.is_file():
        subprocess.run(["make", "-C", str(REPO), "--no-print-directory",
                        "tool"], check=True, capture_output=True)
    assert os.access(TOOL, os.X_OK), "no %s: run `make tool`" % TOOL


@pytest.fixture
def tdir(workdir, request):
    d = Path(workdir) / ("tool-" + request.node.name)
    d.mkdir()
    d.chmod(0o755)
    return d


def tool(users, *args, stdin=None, check=None):
    """Runs twostep-user; returns the CompletedProcess (text). With `check`,
    asserts that exit status."""
    r = subprocess.run([str(TOOL), "--users", str(users)] + list(args),
                       input=stdin, capture_output=True, text=True,
                       timeout=60)
    if check is not None:
        assert r.returncode == check, \
            "exit %d, want %d: %s %s\nstdout: %s\nstderr: %s" % (
                r.returncode, check, TOOL.name, " ".join(args), r.stdout,
                r.stderr)
    return r


def add(users, name, password=PASSWORD):
    remember_sensitive("password", password)
    return tool(users, "add", name, stdin=password + "\n", check=0)


def listing(users):
    """`list` as {user: {column: value}}."""
    lines = tool(users, "list", check=0).stdout.splitlines()
    header = lines[0].split()
    assert header == ["USER", "PASSWORD", "METHODS", "PHONE", "DEFAULT",
                      "RECOVERY"], lines
    rows = {}
    for line in lines[1:]:
        if line == "":          # the security keys follow
            break
        if line == "(no users)":
            continue
        cols = line.split(None, 5)
        rows[cols[0]] = dict(zip(header, cols))
    return rows


def store(users):
    return json.loads(Path(users).read_text())


def enroll(users, name, *extra):
    """enroll-totp; returns (uri, parsed query, full output)."""
    out = tool(users, "enroll-totp", name, *extra, check=0).stdout
    uris = re.findall(r"otpauth://\S+", out)
    assert len(uris) == 1, out
    uri = uris[0]
    q = {k: v[0] for k, v in parse_qs(urlsplit(uri).query).items()}
    remember_sensitive("secret", q["secret"])
    return uri, q, out


def python_totp(secret, at, digits=6, period=30):
    """RFC 6238 with SHA-1, independently of the module and oathtool."""
    key = base64.b32decode(secret + "=" * (-len(secret) % 8))
    mac = hmac.new(key, struct.pack(">Q", int(at) // period),
                   hashlib.sha1).digest()
    off = mac[-1] & 0x0F
    value = struct.unpack(">I", mac[off:off + 4])[0] & 0x7FFFFFFF
    return str(value % 10 ** digits).zfill(digits)


# ------------------------------------------------------------- the CLI

def test_help_and_usage_errors(tdir):
    r = subprocess.run([str(TOOL), "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    assert r.stdout.startswith("Usage: twostep-user --users FILE COMMAND")
    for command in ("add USER", "passwd USER", "remove USER", "list",
                    "enroll-totp USER [--issuer NAME]",
                    "set-phone USER +E164", "set-default USER METHOD",
                    "reset USER", "recovery-codes USER",
                    "remove-key USER NAME|ID"):
        assert command in r.stdout, command

    users = tdir / "users.json"
    bad = [
        [],                                     # no --users, no command
        ["list"],                               # no --users
        ["--users", str(users)],                # no command
        ["--users", str(users), "frobnicate"],
        ["--users", str(users), "add"],
        ["--users", str(users), "add", "a", "b"],
        ["--users", str(users), "add", "bad name"],
        ["--users", str(users), "set-phone", "alice", "5551234567"],
        ["--users", str(users), "set-phone", "alice", "+1234"],
        ["--users", str(users), "set-default", "alice", "email"],
        ["--users", str(users), "list", "--issuer", "x"],
        ["--users", str(users), "--bogus", "list"],
        ["--users"],
    ]
    for args in bad:
        r = subprocess.run([str(TOOL)] + args, capture_output=True,
                           text=True, input="")
        assert r.returncode == 2, (args, r.stdout, r.stderr)
        assert r.stderr.startswith("twostep-user: "), (args, r.stderr)
        assert "--help" in r.stderr, (args, r.stderr)
        assert r.stdout == "", args
    assert not users.exists()


def test_lifecycle(tdir):
    users = tdir / "users.json"
    add(users, "alice")
    # A new store: 0600, and the hash is yescrypt.
    assert os.stat(users).st_mode & 0o7777 == 0o600
    doc = store(users)
    assert list(doc["users"]) == ["alice"]
    assert doc["users"]["alice"]["password"].startswith("$y$")
    row = listing(users)["alice"]
    assert row["PASSWORD"] == "yes"
    assert row["METHODS"] == "-" and row["PHONE"] == "-"

    uri, q, out = enroll(users, "alice", "--issuer", "Acme Co")
    split = urlsplit(uri)
    assert split.scheme == "otpauth" and split.netloc == "totp"
    assert unquote(split.path) == "/Acme Co:alice"
    assert split.path == "/Acme%20Co:alice"
    assert q["issuer"] == "Acme Co"
    assert set(q) == {"secret", "issuer"}      # defaults are left out
    secret = q["secret"]
    assert re.fullmatch(r"[A-Z2-7]{32}", secret), secret
    assert store(users)["users"]["alice"]["totp"] == secret
    # A terminal QR code, and no code to type.
    assert "\u2588" in out and "\u2584" in out
    assert not re.search(r"(?<![0-9A-Za-z])\d{6}(?![0-9A-Za-z])", out), out

    # The printed secret makes the codes oathtool makes (and RFC 6238).
    now = int(time.time())
    for at in (now, now - 30, now + 30, 1111111109):
        assert totp_code(secret, at) == python_totp(secret, at)

    assert listing(users)["alice"]["METHODS"] == "totp"

    tool(users, "set-phone", "alice", "+15551234567", check=0)
    # An ntfy topic: a fresh random one (144 bits), or the one given.
    out = tool(users, "set-ntfy", "alice", check=0).stdout
    topic = store(users)["users"]["alice"]["ntfy_topic"]
    assert re.fullmatch(r"[A-Za-z0-9_-]{24}", topic) and topic in out, out
    assert tool(users, "set-ntfy", "alice", check=0).stdout != out
    tool(users, "set-ntfy", "alice", "Xk3_9aZ-0bQvLm2PqR7sTuWy", check=0)
    assert store(users)["users"]["alice"]["ntfy_topic"] == \
        "Xk3_9aZ-0bQvLm2PqR7sTuWy"
    r = tool(users, "set-ntfy", "alice", "no/topic", check=2)
    assert "ntfy topic" in r.stderr
    tool(users, "set-ntfy", "alice", "a", "b", check=2)
    tool(users, "set-default", "alice", "sms", check=0)
    r = tool(users, "list", check=0)
    assert "+15551234567" not in r.stdout
    row = listing(users)["alice"]
    assert row["PHONE"] == "+1********67"
    assert row["DEFAULT"] == "sms"
    # Nothing secret in the listing.
    for never in (secret, doc["users"]["alice"]["password"]):
        assert never not in r.stdout

    out = tool(users, "recovery-codes", "alice", check=0).stdout
    codes = re.findall(r"^  ([a-z2-7]{5}(?:-[a-z2-7]{5}){4})$", out, re.M)
    assert len(codes) == 10 and len(set(codes)) == 10, out
    hashes = store(users)["users"]["alice"]["recovery"]
    assert hashes == [hashlib.sha256(c.replace("-", "").encode()).hexdigest()
                      for c in codes]
    assert listing(users)["alice"]["RECOVERY"] == "10 left"

    password_hash = store(users)["users"]["alice"]["password"]
    tool(users, "reset", "alice", check=0)
    alice = store(users)["users"]["alice"]
    assert alice == {"password": password_hash}
    row = listing(users)["alice"]
    assert (row["METHODS"], row["PHONE"], row["DEFAULT"],
            row["RECOVERY"]) == ("-", "-", "-", "-")

    # A new password: a new hash.
    tool(users, "passwd", "alice", stdin="another-pw-123\n", check=0)
    assert store(users)["users"]["alice"]["password"] != password_hash

    tool(users, "remove", "alice", check=0)
    assert store(users) == {"users": {}}
    assert listing(users) == {}
    r = tool(users, "remove", "alice", check=1)
    assert 'no user "alice"' in r.stderr
    for cmd in (["enroll-totp", "alice"],
                ["set-phone", "alice", "+15551234567"],
                ["set-default", "alice", "totp"], ["reset", "alice"],
                ["recovery-codes", "alice"]):
        r = tool(users, *cmd, check=1)
        assert 'no user "alice"' in r.stderr, cmd
    r = tool(users, "passwd", "alice", stdin="whatever-123\n", check=1)
    assert 'no user "alice"' in r.stderr
    # Only the store and its lock file: no temporary files left behind.
    assert sorted(p.name for p in tdir.iterdir()) == ["users.json",
                                                      "users.json.lock"]


def test_refusals_leave_the_file_alone(tdir):
    users = tdir / "users.json"
    add(users, "alice")
    before = users.read_bytes()
    r = tool(users, "add", "alice", stdin=PASSWORD + "\n", check=1)
    assert 'user "alice" already exists' in r.stderr
    r = tool(users, "add", "bob", stdin="short\n", check=1)
    assert "too short" in r.stderr
    r = tool(users, "add", "bob", stdin="", check=1)
    assert "no password" in r.stderr
    assert users.read_bytes() == before

    # A file that does not parse is reported, and never replaced.
    for text, why in (('{"users": {"a": {,}}}', "line 1, column"),
                      ('{"users": {"a": {"totp": 5}}}', '"totp"'),
                      ('{"users": {"a": {"phone": "555"}}}', '"phone"'),
                      ('', "line 1")):
        users.write_text(text)
        inode = os.stat(users).st_ino
        for cmd, stdin in ((["add", "carol"], PASSWORD + "\n"),
                           (["list"], None), (["reset", "a"], None),
                           (["set-phone", "a", "+15551234567"], None)):
            r = tool(users, *cmd, stdin=stdin, check=1)
            assert str(users) in r.stderr and why in r.stderr, r.stderr
            assert "left as it is" in r.stderr
        assert users.read_text() == text
        assert os.stat(users).st_ino == inode
    assert sorted(p.name for p in tdir.iterdir()) == ["users.json",
                                                      "users.json.lock"]

    r = tool(tdir / "missing.json", "list", check=1)
    assert "missing.json" in r.stderr
    assert not (tdir / "missing.json").exists()


def test_edits_keep_unknown_members_mode_and_owner(tdir):
    users = tdir / "users.json"
    doc = {"comment": "by hand",
           "users": {"alice": {"password": "$y$j9T$PvNvAbWZCMvTVtA0ebyWb0$"
                                           "BlwutcBWkjy69x.yn5ymfkzuz1tXHrs."
                                           "ydUnV.L02e3",
                               "x-team": {"name": "ops", "ids": [1, 2]}}}}
    users.write_text(json.dumps(doc, indent=4))
    users.chmod(0o640)
    if os.geteuid() == 0:
        os.chown(users, 65534, 65534)   # e.g. owned by nginx's worker user
    before = os.stat(users)
    tool(users, "set-phone", "alice", "+4915112345689", check=0)
    # Replaced by a rename. (Checked after one edit only: a second one may
    # get the first file's freed inode number again.)
    assert os.stat(users).st_ino != before.st_ino
    enroll(users, "alice")
    after = os.stat(users)
    assert (after.st_mode, after.st_uid, after.st_gid) == \
        (before.st_mode, before.st_uid, before.st_gid)
    new = store(users)
    assert new["comment"] == "by hand"
    assert new["users"]["alice"]["x-team"] == {"name": "ops", "ids": [1, 2]}
    assert new["users"]["alice"]["phone"] == "+4915112345689"
    assert listing(users)["alice"]["PHONE"] == "+4**********89"


def test_concurrent_tool_runs_lose_nothing(tdir):
    users = tdir / "users.json"
    add(users, "seed")
    names = ["u%02d" % i for i in range(12)]
    procs = [subprocess.Popen([str(TOOL), "--users", str(users), "add", n],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True)
             for n in names]
    procs += [subprocess.Popen([str(TOOL), "--users", str(users),
                                "set-phone", "seed", "+1555000%04d" % i],
                               stdin=subprocess.DEVNULL,
                               stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
              for i in range(12)]
    for p in procs:
        out, err = p.communicate(PASSWORD + "\n" if p.stdin else None,
                                 timeout=120)
        assert p.returncode == 0, err
    assert set(store(users)["users"]) == set(names) | {"seed"}


def test_password_from_a_terminal(tdir):
    users = tdir / "users.json"
    remember_sensitive("password", PASSWORD)

    def run(first, second):
        master, slave = os.openpty()
        p = subprocess.Popen([str(TOOL), "--users", str(users), "add",
                              "tty-user"], stdin=slave,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        os.close(slave)
        err = b""
        for answer, prompt in ((first, b"New password: "),
                               (second, b"Retype new password: ")):
            deadline = time.monotonic() + 30
            while not err.endswith(prompt):
                assert time.monotonic() < deadline, err
                ready, _, _ = select.select([p.stderr], [], [], 1)
                if ready:
                    chunk = os.read(p.stderr.fileno(), 256)
                    assert chunk, err
                    err += chunk
            os.write(master, answer.encode() + b"\n")
            time.sleep(0.05)
        out, rest = p.communicate(timeout=60)
        os.close(master)
        return p.returncode, out.decode(), (err + rest).decode()

    rc, out, err = run(PASSWORD, PASSWORD + "x")
    assert rc == 1 and "do not match" in err, err
    assert not users.exists() or "tty-user" not in store(users)["users"]
    rc, out, err = run(PASSWORD, PASSWORD)
    assert rc == 0, err
    assert PASSWORD not in out + err           # not echoed
    assert "tty-user" in store(users)["users"]


def test_terminal_qr_matches_qrencode(tdir):
    users = tdir / "users.json"
    add(users, "qr-user")
    uri, q, out = enroll(users, "qr-user")
    block = out[:out.index("\n\n") + 1]
    if shutil.which("qrencode"):
        want = subprocess.run(["qrencode", "-t", "UTF8", "-l", "M", "-m",
                               "2", "-o", "-", uri], capture_output=True,
                              text=True, check=True).stdout
        assert block == want
    lines = block.splitlines()
    assert len({len(line) for line in lines}) == 1
    assert len(lines) == (len(lines[0]) + 1) // 2


# ------------------------------------------------- signing in through nginx

def test_tool_user_signs_in(tdir, nginx_factory, app):
    users = tdir / "users.json"
    add(users, "carol.tool@example.com")
    uri, q, _ = enroll(users, "carol.tool@example.com")
    assert urlsplit(uri).path == "/nginx-twostep:carol.tool%40example.com"
    secret = q["secret"]
    key = write_key(tdir / "key")
    port = free_port()
    body = """
    twostep_users {users};
    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {key};
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(users=users, port=port, key=key, proxy=proxy_to(app.port))
    nginx = nginx_factory("tool", body, [port])

    pw_hash = store(users)["users"]["carol.tool@example.com"]["password"]
    carol = User("carol.tool@example.com", PASSWORD, secret=secret,
                 pw_hash=pw_hash)
    browser = Browser(nginx.url())
    # The code oathtool computes from the printed secret.
    code = totp_code(secret, time.time())
    r = browser.sign_in("/app/tool?x=1", carol, code=code)
    assert r.headers["Location"].endswith("/app/tool?x=1")
    seen = browser.app_view("/app/tool")
    assert seen["headers"].get("X-Remote-User") == carol.name, seen
    assert seen["headers"].get("X-Twostep-Method") == "totp", seen

    # Removed by the tool, then reloaded: the password opens nothing.
    tool(users, "remove", carol.name, check=0)
    nginx.reload()
    other = Browser(nginx.url())
    r = other.follow(other.get("/app/tool"))
    r = other.submit_password(r, carol.name, PASSWORD)
    assert r.status_code == 403, snippet(r)
    assert "Wrong user name or password" in Page(r).text


# ------------------------- sessions end on every worker, without a reload

def answers(site, cookie, n=40):
    """n requests with this session cookie, each on a new connection (so
    both workers answer): {status: count} and the workers seen."""
    statuses, workers = {}, set()
    for _ in range(n):
        r = site.get_with_session(cookie)
        statuses[r.status_code] = statuses.get(r.status_code, 0) + 1
        workers.add(r.headers.get("X-Worker"))
        if r.status_code == 302:
            assert urlsplit(r.headers["Location"]).path == \
                "/.twostep/signin", r.headers["Location"]
    return statuses, workers


@pytest.mark.parametrize("command", ["passwd", "remove", "reset"])
def test_tool_change_ends_sessions_on_every_worker(guarded, command):
    """OWASP ASVS 3.3.3 without `nginx -s reload`: after twostep-user
    changes a user's password, removes the user or resets their second
    steps, a copied session cookie stops opening pages on both workers
    within about a second, though no sign-in page was asked for; another
    user's session goes on."""
    site = guarded("watch-" + command, users=2)
    victim, bystander = site.users
    cookies = {}
    for user in site.users:
        b = site.browser()
        b.sign_in("/app/", user)
        cookies[user.name] = b.cookie("twostep_session")

    statuses, workers = answers(site, cookies[victim.name])
    assert statuses == {200: 40} and len(workers) == 2, (statuses, workers)

    stdin = "another-pw-123\n" if command == "passwd" else None
    if stdin:
        remember_sensitive("password", stdin.strip())
    tool(site.users_file, command, victim.name, stdin=stdin, check=0)
    time.sleep(2)   # the workers look at the file at most once a second

    statuses, workers = answers(site, cookies[victim.name])
    assert statuses == {302: 40} and len(workers) == 2, (statuses, workers)
    statuses, workers = answers(site, cookies[bystander.name], n=10)
    assert statuses == {200: 10}, statuses
