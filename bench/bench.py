#!/usr/bin/python3
"""`make bench`: what two-step verification costs per request once signed in.

Three nginx processes (1 worker each) serve the same small static file,
and wrk loads each location in turn, every request carrying a valid
session cookie for that nginx:

  main nginx
    unprotected    location /unguarded/  nothing in front (the same length
                                         as /protected/: nginx parses and
                                         matches a URI per byte)
    twostep        location /protected/  `twostep on`, valid session cookie
    forward-auth   location /fwd/        `auth_request` to a keepalive upstream
                                         that answers 204 (a second server in
                                         the same nginx): the shape of
                                         Authelia / oauth2-proxy set-ups
  full nginx       /unguarded/ and /protected/ again, with its own
                   users.json and `twostep_zone FILL_ZONE`, the zone filled before the
                   rounds with failure records: wrong passwords, one each,
                   for FILL_NAMES names in its store (cheap sha512crypt
                   hashes so the fill takes seconds), far more records than
                   fit. The fill's statuses and what the error log says
                   about the zone are printed. The cookie path should not
                   notice: it takes no zone lock.
  redis nginx      /unguarded/ and /protected/ again, with `twostep_redis`
                   pointed at Debian's redis-server on loopback (with a
                   password): the cookie path should not notice Redis
                   either, since revocations reach the worker by pub/sub.

Each protected location is compared with the unprotected one of the same
nginx process in one wrk run that alternates the two paths in blocks of
BLOCK requests (bench/alternate.lua): a few milliseconds each, so both
paths see the same machine. On this shared VM a CPU's speed drifts by
20 % from one second to the next, and separate runs of each path (what
this bench did before) differed by more than the module costs. Each block
is timed by the wall clock (req/s) and by the nginx worker's own CPU time
(/proc/PID/schedstat): a ratio of each per run, the median over ROUNDS
runs, with the range of the req/s ratios beside it.

Then sign-in latency without and with Redis: SIGNINS users each sign in
(password, then an oathtool code) on the plain nginx and on the Redis one;
p50/p99 of the password step (yescrypt in the thread pool, then one Redis
script) and of the code step (two Redis round trips: the lockout check and
the code's one-time claim) are printed side by side.

Then, in the same nginx, the event loop while Duo calls are parked: a
second server uses examples/duo_simulator.py (auth_status long-poll 2 s) for
push, four clients each start a push and sit on /.twostep/status (every
poll parked in the module for the simulator's 2 s), and wrk loads the
unprotected file again; its p50/p99 are printed next to an idle run made
just before. A worker that waited for Duo would stall for seconds.

Environment: TWOSTEP_MODULE (required), BENCH_ROUNDS (5), BENCH_DURATION
(8, seconds per run; the two long-poll runs take BENCH_POLL_DURATION, 6),
BENCH_BLOCK (2000 requests),
BENCH_CONNECTIONS (32), BENCH_PIN=1 (nginx on CPU 0, wrk on CPU 1),
BENCH_KEEP=1 keeps the files, BENCH_FILL_ZONE (512k), BENCH_FILL_NAMES (3000),
BENCH_SIGNINS (40).
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from harness import (ALERT_RE, Browser, DuoSimulator, Nginx,  # noqa: E402
                     Page, RedisServer, User, child_pids, duo_phone,
                     free_port, main_conf, make_workdir,
                     password_hash, start_push, tally,
                     wait_status_url, write_key, write_users)

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "5"))
DURATION = int(os.environ.get("BENCH_DURATION", "8"))
BLOCK = int(os.environ.get("BENCH_BLOCK", "2000"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))
POLL_DURATION = int(os.environ.get("BENCH_POLL_DURATION", "6"))
FILL_ZONE = os.environ.get("BENCH_FILL_ZONE", "512k")
FILL_NAMES = int(os.environ.get("BENCH_FILL_NAMES", "3000"))
SIGNINS = int(os.environ.get("BENCH_SIGNINS", "40"))
FILL_THREADS = 8
POLLERS = 4             # clients parked in Duo long-polls
LONG_POLL = 2.0         # the simulator's auth_status long-poll, seconds

OPEN, PROTECTED = "/unguarded/index.html", "/protected/index.html"
# (name, nginx, path, the same nginx's unprotected run it is compared with)
VARIANTS = [
    ("unprotected", "main", OPEN, None),
    ("twostep", "main", PROTECTED, "unprotected"),
    ("forward-auth", "main", "/fwd/index.html", "unprotected"),
    ("unprotected-full", "full", OPEN, None),
    ("twostep-full", "full", PROTECTED, "unprotected-full"),
    ("unprotected-redis", "redis", OPEN, None),
    ("twostep-redis", "redis", PROTECTED, "unprotected-redis"),
]
LABELS = {
    "twostep": "twostep on, valid session",
    "forward-auth": "auth_request -> keepalive 204",
    "twostep-full": "twostep on, session, full zone",
    "twostep-redis": "twostep on, session, redis",
}
# A round runs these pairs (the unprotected run, then the other, or the
# other way round on odd rounds), the pairs in a rotating order.
PAIRS = [("unprotected", "twostep"), ("unprotected-full", "twostep-full"),
         ("unprotected-redis", "twostep-redis"),
         ("unprotected", "forward-auth")]


PAGE = ("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        "<title>bench</title></head>\n<body><h1>A small static page</h1>\n"
        + "<p>" + "Lorem ipsum dolor sit amet. " * 16 + "</p>\n"
        + "</body></html>\n")


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


def have_cpus(*cpus):
    try:
        return set(cpus) <= os.sched_getaffinity(0)
    except AttributeError:
        return False


def nginx_body(d, port, auth_port, duo_port, duo_conf):
    return """
    access_log off;
    twostep_users {d}/users.json;

    upstream forward_auth {{
        server 127.0.0.1:{auth_port};
        keepalive 32;
    }}

    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {d}/cookie.key;
        root {d}/www;

        location /unguarded/ {{
        }}

        location /protected/ {{
            twostep on;
        }}

        location /fwd/ {{
            auth_request /.forward-auth;
        }}

        location = /.forward-auth {{
            internal;
            proxy_pass http://forward_auth/check;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_pass_request_body off;
            proxy_set_header Content-Length "";
            proxy_set_header X-Original-URI $request_uri;
        }}
    }}

    # The "auth service": as fast as one can be.
    server {{
        listen 127.0.0.1:{auth_port};
        location = /check {{
            return 204;
        }}
    }}

    # Push through the Duo simulator, for the long-poll run.
    server {{
        listen 127.0.0.1:{duo_port};
        twostep_cookie_key {d}/cookie.key;
        {duo_conf}
        root {d}/www;
        location / {{
            twostep on;
            twostep_methods push;
        }}
    }}
""".format(d=d, port=port, auth_port=auth_port, duo_port=duo_port,
           duo_conf=duo_conf)


def protected_body(d, port, http_conf):
    """Another nginx serving /unguarded/ and /protected/ (`twostep on`)
    with the main one's key and files, and `http_conf` in its own http
    block."""
    return """
    access_log off;
    {http_conf}

    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {d}/cookie.key;
        root {d}/www;
        location /unguarded/ {{
        }}
        location /protected/ {{
            twostep on;
        }}
    }}
""".format(d=d, port=port, http_conf=http_conf)


def full_zone_body(d, port):
    # Its own http block, so its own zone: the fill cannot touch the main
    # nginx's. The address limit is out of reach so every wrong password
    # leaves a record for its name rather than one lock for 127.0.0.1.
    return protected_body(d, port, """twostep_users {d}/full-users.json;
    twostep_zone {zone};
    twostep_lockout 5 5m address=100000000 account=100;""".format(
        d=d, zone=FILL_ZONE))


def redis_body(d, port, redis):
    """The main nginx's users, sharing their state in Redis."""
    return protected_body(d, port, """twostep_users {d}/users.json;
    twostep_redis {url};
    twostep_redis_password_file {d}/redis.pw;""".format(d=d, url=redis.url()))


def signin_latency(base, users):
    """Each user signs in once: (password step seconds, code step seconds)
    lists. Users sign in on one nginx at most once per time step."""
    password, code = [], []
    for user in users:
        b = Browser(base)
        page = b.follow(b.get("/protected/index.html"))
        form = dict(Page(page).form(b.signin_path).fields,
                    username=user.name, password=user.password)
        t = time.monotonic()
        r = b.post(b.signin_path, form)
        password.append(time.monotonic() - t)
        if r.status_code != 303:
            die("sign-in password step answered %d" % r.status_code)
        page = b.follow(r)
        form = dict(Page(page).form(b.verify_path).fields,
                    code=user.fresh_code())
        t = time.monotonic()
        r = b.post(b.verify_path, form)
        code.append(time.monotonic() - t)
        if r.status_code != 303:
            die("sign-in code step answered %d" % r.status_code)
    return password, code


def percentile(values, q):
    values = sorted(values)
    return values[min(len(values) - 1, int(q * len(values)))]


def fill_zone(base, names):
    """One wrong password for each name (each in the store), FILL_THREADS
    clients at once. Returns ({status: count}, errors, seconds)."""
    def step(b, name):
        page = b.follow(b.get("/protected/index.html"))
        r = b.submit_password(page, name, "wrong-password")
        if "twostep_session" in r.headers.get("Set-Cookie", ""):
            raise AssertionError("a session for a wrong password")
        return r.status_code

    t = time.monotonic()
    statuses, errors = tally([names[i::FILL_THREADS]
                              for i in range(FILL_THREADS)],
                             lambda _: Browser(base), step)
    return statuses, errors, time.monotonic() - t


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError("unexpected wrk latency %r" % text)
    return float(m.group(1)) * UNITS[m.group(2)]


def worker_of(nginx):
    workers = child_pids(nginx.proc.pid)
    if len(workers) != 1:
        die("expected one nginx worker, found %d" % len(workers))
    return workers.pop()


def run_pair(base, paths, cookie, worker, pin):
    """One wrk run on `base` that alternates the two `paths` in blocks of
    BLOCK requests (bench/alternate.lua). Returns [(req/s, worker CPU
    microseconds per request)] for each path, and the share of the run
    the worker spent on a CPU."""
    cmd = ["wrk", "-t1", "-c%d" % CONNECTIONS, "-d%ds" % DURATION,
           "-s", str(Path(__file__).resolve().parent / "alternate.lua"),
           "-H", "Cookie: twostep_session=" + cookie, base,
           "--", paths[0], paths[1], str(BLOCK), str(worker)]
    if pin:
        cmd = ["taskset", "-c", "1"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=DURATION + 30)
    m = re.search(r"alternate blocks (\d+) (\d+) wall_ns (\S+) (\S+) "
                  r"cpu_ns (\S+) (\S+) non200 (\d+)", out.stdout)
    if out.returncode != 0 or not m:
        die("wrk failed:\n" + out.stdout + out.stderr)
    blocks = [int(m.group(1)), int(m.group(2))]
    wall = [float(m.group(3)), float(m.group(4))]
    cpu = [float(m.group(5)), float(m.group(6))]
    if int(m.group(7)):
        die("%s answered %s non-200 responses under load:\n%s"
            % (base, m.group(7), out.stdout))
    if min(blocks) < 10:
        die("too few blocks of %d requests in %d s (%s): lower BENCH_BLOCK"
            % (BLOCK, DURATION, blocks))
    errors = re.search(r"Socket errors: (.*)", out.stdout)
    if errors:
        die("wrk had socket errors on %s: %s" % (base, errors.group(1)))
    got = [(n * BLOCK / (w / 1e9), c / (n * BLOCK) / 1e3)
           for n, w, c in zip(blocks, wall, cpu)]
    return got, sum(cpu) / sum(wall)


def run_wrk(url, cookie, pin, duration=POLL_DURATION):
    """wrk's req/s, p50 and p99 (ms) and socket errors on one path."""
    cmd = ["wrk", "-t1", "-c%d" % CONNECTIONS, "-d%ds" % duration,
           "--latency", "-H", "Cookie: twostep_session=" + cookie, url]
    if pin:
        cmd = ["taskset", "-c", "1"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=duration + 30)
    if out.returncode != 0:
        die("wrk failed:\n" + out.stdout + out.stderr)
    text = out.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p50 = re.search(r"^\s+50%\s+(\S+)", text, re.M)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if not rps or not p50 or not p99:
        die("cannot read wrk's output:\n" + text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    if bad:
        die("%s answered %s non-2xx responses under load:\n%s"
            % (url, bad.group(1), text))
    return float(rps.group(1)), to_ms(p50.group(1)), to_ms(p99.group(1)), \
        errors.group(1) if errors else ""


def main():
    module = os.environ.get("TWOSTEP_MODULE", "")
    if not module or not os.path.isfile(module):
        die("TWOSTEP_MODULE must name the built module (make bench sets it)")
    for tool in ("wrk", "oathtool", "mkpasswd"):
        if shutil.which(tool) is None:
            die(tool + " is missing")

    d = make_workdir("twostep-bench-")
    try:
        return bench(d, os.path.abspath(module))
    finally:
        if os.environ.get("BENCH_KEEP"):
            print("bench: files kept in %s" % d)
        else:
            shutil.rmtree(d, ignore_errors=True)


def bench(d, module):
    user = User("bench", "bench-pw-" + os.urandom(6).hex())
    # Users who sign in with push through the Duo simulator, for the
    # long-poll run.
    pollers = [User("bench-push-%d" % i, user.password, pw_hash=user.pw_hash)
               for i in range(POLLERS)]
    # Who signs in for the latency runs: once on each nginx.
    signers = {kind: [User("bench-%s-%d" % (kind, i), user.password,
                           pw_hash=user.pw_hash) for i in range(SIGNINS)]
               for kind in ("plain", "redis")}
    # Its session on the Redis nginx (a TOTP step signs in once per user,
    # and `user` signs in on the other two).
    redis_user = User("bench-r", user.password, pw_hash=user.pw_hash)
    write_users(d / "users.json", [user, redis_user] + pollers
                + signers["plain"] + signers["redis"])
    # The filled nginx's store: the bench user and FILL_NAMES accounts with
    # a cheap hash, so each wrong password costs a millisecond, not 50.
    cheap = password_hash("fill-" + os.urandom(6).hex(), 1000, "sha512crypt")
    fill_names = ["fill%05d" % i for i in range(FILL_NAMES)]
    write_users(d / "full-users.json", [user],
                extra={n: {"password": cheap, "totp": user.secret}
                       for n in fill_names})
    write_key(d / "cookie.key")
    sim = DuoSimulator(d / "duo-sim", {
        u.name: {"status": "auth",
                 "devices": [duo_phone("DPBENCH%013d" % i, ["push"])]}
        for i, u in enumerate(pollers)}, long_poll=LONG_POLL)
    for sub in ("unguarded", "protected", "fwd"):
        (d / "www" / sub).mkdir(parents=True)
        (d / "www" / sub / "index.html").write_text(PAGE)
        (d / "www" / sub).chmod(0o755)
    (d / "www").chmod(0o755)

    # Pinning made this 2-vCPU VM three times slower (cross-CPU wake-ups),
    # so it is opt-in.
    pin = os.environ.get("BENCH_PIN") == "1" and have_cpus(0, 1)
    port, auth_port, duo_port = free_port(), free_port(), free_port()
    full_port = free_port()
    redis_port = free_port()
    redis = RedisServer(d / "redis")
    redis.password_file(d / "redis.pw")
    with_redis = Nginx(d / "nginx-redis", main_conf(
        d / "nginx-redis", module, redis_body(d, redis_port, redis),
        workers=1, main_extra="worker_cpu_affinity 01;" if pin else ""),
        ports=[redis_port])
    full = Nginx(d / "nginx-full", main_conf(
        d / "nginx-full", module, full_zone_body(d, full_port), workers=1,
        main_extra="worker_cpu_affinity 01;" if pin else ""),
        ports=[full_port])
    nginx = Nginx(d / "nginx", main_conf(
        d / "nginx", module,
        nginx_body(d, port, auth_port, duo_port, sim.nginx_conf("5s")),
        workers=1, main_extra="worker_cpu_affinity 01;" if pin else ""),
        ports=[port, auth_port, duo_port])
    full.start()
    sim.start()
    nginx.start()
    redis.start()
    with_redis.start()
    polled = None
    latency = None
    try:
        base = nginx.url()
        full_base = full.url()
        redis_base = with_redis.url()
        # A real sign-in (password + oathtool code) for the session cookie,
        # on each nginx (each has its own zone, where the code is spent).
        cookies = {}
        for b_url in (base, full_base, redis_base):
            browser = Browser(b_url)
            browser.sign_in("/protected/index.html",
                            redis_user if b_url == redis_base else user)
            cookies[b_url] = browser.cookie("twostep_session")
            if not cookies[b_url]:
                die("sign-in gave no session cookie")
        cookie = cookies[base]
        bases = {"main": base, "full": full_base, "redis": redis_base}
        workers = {"main": worker_of(nginx), "full": worker_of(full),
                   "redis": worker_of(with_redis)}
        runs = {name: (bases[where], path, workers[where])
                for name, where, path, _ in VARIANTS}

        # Fill the second nginx's zone, then check that it says so.
        mark = full.log_size()
        statuses, errors, took = fill_zone(full_base, fill_names)
        if errors:
            die("the zone fill failed: %s" % errors[:5])
        fill_log = full.log_text(mark)
        print("zone fill: %d sign-in POSTs with a wrong password for names "
              "in the store (twostep_zone %s), %d clients, %.1f s; "
              "statuses %s; error log: %d \"zone is full\" warning(s), "
              "%d \"must be kept\" error(s)"
              % (len(fill_names), FILL_ZONE, FILL_THREADS, took,
                 dict(sorted(statuses.items())),
                 fill_log.count("zone is full, dropping"),
                 fill_log.count("zone is full of records that must be kept")),
              flush=True)
        if "zone is full" not in fill_log:
            die("the fill did not fill the zone (raise BENCH_FILL_NAMES "
                "or lower BENCH_FILL_ZONE)")

        # Each variant must serve the page, and twostep must really guard.
        import requests
        for b_url in (base, full_base, redis_base):
            r = requests.get(b_url + "/protected/index.html",
                             allow_redirects=False)
            if r.status_code != 302:
                die("/protected/ without a session answered %d, not 302"
                    % r.status_code)
        for name, (b_url, path, _) in runs.items():
            r = requests.get(b_url + path, allow_redirects=False,
                             headers={"Cookie": "twostep_session="
                                      + cookies[b_url]})
            if r.status_code != 200 or r.text != PAGE:
                die("%s (%s) answered %d" % (name, path, r.status_code))

        print("nginx-twostep bench: 1 nginx worker%s; per pair one wrk -t1 "
              "-c%d -d%ds run\nalternating the two paths in blocks of %d "
              "requests; %d round(s); %d-byte static file"
              % (" (CPU 0, wrk on CPU 1)" if pin else "", CONNECTIONS,
                 DURATION, BLOCK, ROUNDS, len(PAGE)))
        results = {name: [] for name, _, _, _ in VARIANTS}
        paired = {other: [] for _, other in PAIRS}   # (open run, its run)
        busy = {other: [] for _, other in PAIRS}
        for rnd in range(ROUNDS):
            k = rnd % len(PAIRS)
            for pair in PAIRS[k:] + PAIRS[:k]:
                order = pair if rnd % 2 == 0 else pair[::-1]
                b_url, _, worker = runs[pair[0]]
                got, share = run_pair(b_url, [runs[n][1] for n in order],
                                      cookies[b_url], worker, pin)
                got = dict(zip(order, got))
                for name in order:
                    results[name].append(got[name])
                    print("  round %d  %-17s %10.0f req/s  %6.2f us CPU/req"
                          % (rnd + 1, name, got[name][0], got[name][1]),
                          flush=True)
                paired[pair[1]].append((got[pair[0]], got[pair[1]]))
                busy[pair[1]].append(share)

        latency = {"plain": signin_latency(base, signers["plain"]),
                   "redis": signin_latency(redis_base, signers["redis"])}
        polled = long_poll_runs(base, "http://127.0.0.1:%d" % duo_port,
                                pollers, cookie, pin)
    finally:
        full.stop()
        nginx.stop()
        with_redis.stop()
        redis.stop()
        sim.stop()

    alerts = [line for text in (nginx.log_text(), full.log_text(),
                                with_redis.log_text())
              for line in text.splitlines() if ALERT_RE.search(line)]

    print()
    print("Each row against the unprotected file on the same nginx, "
          "paired within each round\n(median over %d rounds of the "
          "per-round ratios):" % ROUNDS)
    print("%-32s %10s %10s %9s %10s %13s %6s"
          % ("", "req/s", "CPU/req", "req/s", "CPU/req", "req/s range",
             "busy"))
    print("%-32s %10s %10s %9s %10s %13s %6s"
          % ("", "", "", "vs open", "open vs it", "over rounds", ""))
    ratios = {}
    for name, _, _, versus in VARIANTS:
        if versus is None:
            continue
        mine = results[name]
        per_round = [m[0] / o[0] for o, m in paired[name]]
        rps = statistics.median(per_round)
        cpu = statistics.median(o[1] / m[1] for o, m in paired[name])
        ratios[name] = (rps, cpu)
        print("%-32s %10.0f %7.2f us %9.3f %10.3f %6.3f-%.3f %5.0f%%"
              % (LABELS[name], statistics.median(m[0] for m in mine),
                 statistics.median(m[1] for m in mine), rps, cpu,
                 min(per_round), max(per_round),
                 statistics.median(busy[name]) * 100))
    for name in ("unprotected", "unprotected-full", "unprotected-redis"):
        runs_ = results[name]
        print("%-32s %10.0f %7.2f us"
              % ("unprotected (%s nginx)" % (name.split("-")[1]
                                             if "-" in name else "main"),
                 statistics.median(m[0] for m in runs_),
                 statistics.median(m[1] for m in runs_)))
    print("(busy: the share of the run the nginx worker spent on a CPU; "
          "below about 90 %\nwrk, not nginx, set the pace part of the time "
          "and the req/s ratio is nearer 1\nthan the cost; the CPU/req "
          "ratio is not affected)")
    print()
    for name, label in (("twostep", ""), ("twostep-full", " (zone full)"),
                        ("twostep-redis", " (twostep_redis)"),
                        ("forward-auth", "")):
        print("%-26s %.3f of the throughput, %.3f of the cost per request%s"
              % (name + "/unprotected:", ratios[name][0], ratios[name][1],
                 label))
    print()
    print("Note: the forward-auth service here is nginx answering 204 on a "
          "kept-alive\nupstream connection, the cheapest one possible. A "
          "real one (Authelia,\noauth2-proxy) parses the cookie and looks "
          "the session up, often over the\nnetwork: it would be slower. "
          "wrk shares the machine with nginx, so absolute\nnumbers are "
          "low; compare the ratios.")
    print_signin_latency(latency)
    print_long_polls(polled)
    if alerts:
        print("\nbench: the error log has alerts:\n  " + "\n  ".join(alerts))
        return 1
    return 0


def print_signin_latency(latency):
    print()
    print("sign-in latency, %d sign-ins each, sequential (ms):" % SIGNINS)
    print("%-28s %9s %9s %9s %9s" % ("", "pw p50", "pw p99", "code p50",
                                      "code p99"))
    for kind, label in (("plain", "twostep (zone only)"),
                        ("redis", "twostep_redis")):
        pw, code = latency[kind]
        print("%-28s %9.1f %9.1f %9.1f %9.1f"
              % (label, percentile(pw, 0.5) * 1e3, percentile(pw, 0.99) * 1e3,
                 percentile(code, 0.5) * 1e3, percentile(code, 0.99) * 1e3))


def long_poll_runs(base, duo_base, pollers, cookie, pin):
    """wrk on the unprotected file idle, then while POLLERS clients each
    sit on /.twostep/status with a push waiting (each poll parked in the
    module for the simulator's LONG_POLL seconds)."""
    url = base + OPEN
    idle = run_wrk(url, cookie, pin)

    browsers = []
    for u in pollers:
        b = Browser(duo_base)
        wait = start_push(b, "/index.html", u)
        status = wait_status_url(wait)
        b.get(status)            # hears "pushed" at once; then held
        browsers.append((b, status))

    stop = threading.Event()
    polls = [[] for _ in pollers]
    errors = []

    def poll(i):
        b, status = browsers[i]
        while not stop.is_set():
            t = time.monotonic()
            try:
                state = b.get(status).json()["state"]
            except Exception as e:   # noqa: reported below
                errors.append(repr(e))
                return
            polls[i].append((time.monotonic() - t, state))

    threads = [threading.Thread(target=poll, args=(i,))
               for i in range(len(pollers))]
    for t in threads:
        t.start()
    time.sleep(0.3)
    parked = run_wrk(url, cookie, pin)
    stop.set()
    for t in threads:
        t.join(LONG_POLL * 3 + 15)
    if errors:
        die("a long-poll failed: %s" % errors)
    held = [took for runs in polls for took, state in runs
            if state == "waiting"]
    if len(held) < len(pollers) * max(1, int(POLL_DURATION / LONG_POLL)) \
            or min(held) < LONG_POLL * 0.9:
        die("the clients were not parked in long-polls: %r" % polls)
    return idle, parked, len(held)


def print_long_polls(polled):
    if polled is None:
        return
    idle, parked, n = polled
    print()
    print("Event loop while Duo calls are parked: wrk -c%d -d%ds on the "
          "unprotected file,\n1 worker; idle, then with %d clients each in "
          "%.0f s /.twostep/status long-polls\n(%d polls, every one held "
          "%.0f s in the module waiting on the simulator):"
          % (CONNECTIONS, POLL_DURATION, POLLERS, LONG_POLL, n, LONG_POLL))
    print("%-32s %12s %10s %10s" % ("", "req/s", "p50", "p99"))
    for label, (rps, p50, p99, errors) in (
            ("idle", idle),
            ("%d clients in long-polls" % POLLERS, parked)):
        print("%-32s %12.0f %7.2f ms %7.2f ms%s"
              % (label, rps, p50, p99,
                 "  socket errors: " + errors if errors else ""))
    print("(a worker that waited for Duo would stall up to %.0f s per poll)"
          % LONG_POLL)


if __name__ == "__main__":
    sys.exit(main())
