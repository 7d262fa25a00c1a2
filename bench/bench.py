#!/usr/bin/python3
"""`make bench`: what two-step verification costs per request once signed in.

One nginx (1 worker) serves the same small static file three ways, and wrk
loads each in turn, every request carrying the same session cookie:

  unprotected    location /open/       nothing in front
  twostep        location /protected/  `twostep on`, valid session cookie
  forward-auth   location /fwd/        `auth_request` to a keepalive upstream
                                       that answers 204 (a second server in
                                       the same nginx): the shape of
                                       Authelia / oauth2-proxy set-ups

Rounds are interleaved (each round runs all three, in a rotating order) so
drift on a shared machine hits all alike; the table shows the median over
rounds of req/s and of p99 latency.

Environment: TWOSTEP_MODULE (required), BENCH_ROUNDS (3), BENCH_DURATION
(8, seconds per run), BENCH_CONNECTIONS (32), BENCH_PIN=1 (nginx on CPU 0,
wrk on CPU 1),
BENCH_KEEP=1 keeps the files.
"""

import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "e2e"))

from harness import (ALERT_RE, Browser, Nginx, User, free_port,  # noqa: E402
                     main_conf, make_workdir, write_key, write_users)

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "3"))
DURATION = int(os.environ.get("BENCH_DURATION", "8"))
CONNECTIONS = int(os.environ.get("BENCH_CONNECTIONS", "32"))

VARIANTS = [
    ("unprotected", "/open/index.html"),
    ("twostep", "/protected/index.html"),
    ("forward-auth", "/fwd/index.html"),
]
LABELS = {
    "unprotected": "unprotected (static file)",
    "twostep": "twostep on, valid session",
    "forward-auth": "auth_request -> keepalive 204",
}

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


def nginx_body(d, port, auth_port):
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

        location /open/ {{
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
""".format(d=d, port=port, auth_port=auth_port)


UNITS = {"us": 1e-3, "ms": 1.0, "s": 1e3, "m": 60e3}


def to_ms(text):
    m = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if not m:
        raise ValueError("unexpected wrk latency %r" % text)
    return float(m.group(1)) * UNITS[m.group(2)]


def run_wrk(url, cookie, pin):
    cmd = ["wrk", "-t1", "-c%d" % CONNECTIONS, "-d%ds" % DURATION,
           "--latency", "-H", "Cookie: twostep_session=" + cookie, url]
    if pin:
        cmd = ["taskset", "-c", "1"] + cmd
    out = subprocess.run(cmd, capture_output=True, text=True,
                         timeout=DURATION + 30)
    if out.returncode != 0:
        die("wrk failed:\n" + out.stdout + out.stderr)
    text = out.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", text)
    p99 = re.search(r"^\s+99%\s+(\S+)", text, re.M)
    if not rps or not p99:
        die("cannot read wrk's output:\n" + text)
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", text)
    errors = re.search(r"Socket errors: (.*)", text)
    if bad:
        die("%s answered %s non-2xx responses under load:\n%s"
            % (url, bad.group(1), text))
    return float(rps.group(1)), to_ms(p99.group(1)), \
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
    write_users(d / "users.json", [user])
    write_key(d / "cookie.key")
    for sub in ("open", "protected", "fwd"):
        (d / "www" / sub).mkdir(parents=True)
        (d / "www" / sub / "index.html").write_text(PAGE)
        (d / "www" / sub).chmod(0o755)
    (d / "www").chmod(0o755)

    # Pinning made this 2-vCPU VM three times slower (cross-CPU wake-ups),
    # so it is opt-in.
    pin = os.environ.get("BENCH_PIN") == "1" and have_cpus(0, 1)
    port, auth_port = free_port(), free_port()
    nginx = Nginx(d / "nginx", main_conf(
        d / "nginx", module, nginx_body(d, port, auth_port), workers=1,
        main_extra="worker_cpu_affinity 01;" if pin else ""),
        ports=[port, auth_port])
    nginx.start()
    try:
        base = nginx.url()
        # A real sign-in (password + oathtool code) for the session cookie.
        browser = Browser(base)
        browser.sign_in("/protected/index.html", user)
        cookie = browser.cookie("twostep_session")
        if not cookie:
            die("sign-in gave no session cookie")

        # Each variant must serve the page, and twostep must really guard.
        import requests
        r = requests.get(base + "/protected/index.html",
                         allow_redirects=False)
        if r.status_code != 302:
            die("/protected/ without a session answered %d, not 302"
                % r.status_code)
        for name, path in VARIANTS:
            r = requests.get(base + path, allow_redirects=False,
                             headers={"Cookie": "twostep_session=" + cookie})
            if r.status_code != 200 or r.text != PAGE:
                die("%s (%s) answered %d" % (name, path, r.status_code))

        print("nginx-twostep bench: 1 nginx worker%s; wrk -t1 -c%d -d%ds "
              "per run; %d round(s), interleaved; %d-byte static file"
              % (" (CPU 0, wrk on CPU 1)" if pin else "", CONNECTIONS,
                 DURATION, ROUNDS, len(PAGE)))
        results = {name: [] for name, _ in VARIANTS}
        for rnd in range(ROUNDS):
            order = VARIANTS[rnd % 3:] + VARIANTS[:rnd % 3]
            for name, path in order:
                rps, p99, errors = run_wrk(base + path, cookie, pin)
                results[name].append((rps, p99))
                print("  round %d  %-13s %10.0f req/s  p99 %7.2f ms%s"
                      % (rnd + 1, name, rps, p99,
                         "  socket errors: " + errors if errors else ""),
                      flush=True)
    finally:
        nginx.stop()

    alerts = [line for line in nginx.log_text().splitlines()
              if ALERT_RE.search(line)]

    med = {name: (statistics.median(r for r, _ in runs),
                  statistics.median(p for _, p in runs))
           for name, runs in results.items()}
    base_rps, base_p99 = med["unprotected"]
    print()
    print("%-32s %12s %10s %14s %12s" % ("", "req/s", "p99",
                                         "req/s vs open", "p99 vs open"))
    for name, _ in VARIANTS:
        rps, p99 = med[name]
        print("%-32s %12.0f %7.2f ms %14.2f %12.2f"
              % (LABELS[name], rps, p99, rps / base_rps, p99 / base_p99))
    print()
    print("twostep/unprotected:      %.2f of the throughput"
          % (med["twostep"][0] / base_rps))
    print("forward-auth/unprotected: %.2f of the throughput"
          % (med["forward-auth"][0] / base_rps))
    print("forward-auth/twostep:     %.2f" % (med["forward-auth"][0]
                                              / med["twostep"][0]))
    print()
    print("Note: the forward-auth service here is nginx answering 204 on a "
          "kept-alive\nupstream connection, the cheapest one possible. A "
          "real one (Authelia,\noauth2-proxy) parses the cookie and looks "
          "the session up, often over the\nnetwork: it would be slower. "
          "wrk shares the machine with nginx, so absolute\nnumbers are "
          "low; compare the ratios.")
    if alerts:
        print("\nbench: the error log has alerts:\n  " + "\n  ".join(alerts))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
