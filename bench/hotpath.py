#!/usr/bin/python3
"""`make bench`, part two: what a signed-in request costs the worker.

One nginx (1 worker) with a valid session; N keep-alive requests each to
the unprotected and to the `twostep on` location, in turn. For each:

  allocations   heap allocations per request in the worker (malloc,
                calloc, realloc, posix_memalign), counted by an LD_PRELOAD
                shim (bench/count_allocs.c) read before and after;
  zone locks    calls of ngx_shmtx_lock/ngx_shmtx_trylock in the worker,
                counted by perf with uprobes on nginx's binary (skipped,
                with the reason, where perf or uprobes are unavailable).

Then a wrong password, to show the lock probe does count.

Then where the worker's CPU time goes: perf samples the worker (the
software cpu-clock event, which a VM has too) while wrk loads each
location for BENCH_HOTPATH_SECONDS, and the share of the samples in the
module, and in the libraries its hot path calls, is printed for both. The
module's share on the unprotected file is its phase handlers declining;
the difference is what a signed-in request costs on top.

Last, what the worker executes per request, counted exactly: the same
nginx in one process (`master_process off`) under valgrind's callgrind,
BENCH_HOTPATH_REQUESTS keep-alive requests to each location after a
warm-up, the counters zeroed before and dumped after each. Instructions
are not seconds (the kernel's part of a request, most of it, is not
counted), but they do not move with whatever else the machine runs.

Environment: TWOSTEP_MODULE (required), BENCH_HOTPATH_REQUESTS (2000),
BENCH_HOTPATH_SECONDS (5).
"""

import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "tests" / "e2e"))

from harness import (Browser, Nginx, User, child_pids,  # noqa: E402
                     free_port, main_conf, make_workdir, nginx_env,
                     wait_for_port, write_key, write_users)

import requests  # noqa: E402

REQUESTS = int(os.environ.get("BENCH_HOTPATH_REQUESTS", "2000"))
SECONDS = int(os.environ.get("BENCH_HOTPATH_SECONDS", "5"))
# Where the cookie path's time can go besides nginx and the kernel.
DSOS = ("ngx_http_twostep_module.so", "libstdc++.so.6.0.30",
        "libcrypto.so.3", "libc.so.6")
NGINX = "/usr/sbin/nginx"
PROBES = ("ngx_shmtx_lock", "ngx_shmtx_trylock")


def die(msg):
    print("bench: " + msg, file=sys.stderr)
    sys.exit(1)


def build_shim(d):
    out = d / "count_allocs.so"
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", "-o", str(out),
                    str(HERE / "count_allocs.c")], check=True)
    out.chmod(0o755)
    return out


def add_probes():
    """The perf events to count, or (None, why not)."""
    events = []
    del_probes()   # left by an interrupted run
    for fn in PROBES:
        try:
            r = subprocess.run(["perf", "probe", "-x", NGINX, fn],
                               capture_output=True, text=True)
        except FileNotFoundError:
            return None, "perf is not installed"
        if r.returncode != 0:
            del_probes()
            return None, (r.stderr.strip().splitlines() or ["failed"])[-1]
        events.append("probe_nginx:" + fn)
    return events, None


def del_probes():
    for fn in PROBES:
        try:
            subprocess.run(["perf", "probe", "-d", "probe_nginx:" + fn],
                           capture_output=True)
        except FileNotFoundError:
            return


class Counter:
    """Counts, in the worker, allocations and (if it can) zone locks
    while the `with` body runs."""

    def __init__(self, nginx, worker, events):
        self.nginx, self.worker, self.events = nginx, worker, events

    def allocs(self):
        mark = self.nginx.log_size()
        os.kill(self.worker, signal.SIGRTMIN + 3)
        pattern = re.compile(r"allocs %d (\d+)" % self.worker)
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:
            found = pattern.findall(self.nginx.log_text(mark))
            if found:
                return int(found[-1])
            time.sleep(0.05)
        die("the worker did not report its allocations")

    def __enter__(self):
        self.perf = None
        if self.events:
            self.perf = subprocess.Popen(
                ["perf", "stat", "-x,", "-e", ",".join(self.events),
                 "-p", str(self.worker)],
                stderr=subprocess.PIPE, text=True)
            time.sleep(1)   # perf attaches
        self.before = self.allocs()
        return self

    def __exit__(self, *exc):
        self.after = self.allocs()
        self.locks = None
        if self.perf:
            self.perf.send_signal(signal.SIGINT)
            out = self.perf.communicate()[1]
            counts = [int(line.split(",")[0]) for line in out.splitlines()
                      if line.split(",")[0].isdigit()]
            if len(counts) == len(self.events):
                self.locks = sum(counts)
        return False


def cpu_shares(d, worker, url, cookie):
    """{dso: percent of the worker's cpu-clock samples} and the number of
    samples while wrk loads `url`; (None, why) without perf."""
    data = d / ("perf-%d.data" % time.monotonic_ns())
    try:
        perf = subprocess.Popen(["perf", "record", "-q", "-e", "cpu-clock",
                                 "-F", "2999", "-o", str(data),
                                 "-p", str(worker)],
                                stdout=subprocess.DEVNULL,
                                stderr=subprocess.PIPE, text=True)
    except FileNotFoundError:
        return None, "perf is not installed"
    time.sleep(1)   # perf attaches
    wrk = subprocess.run(["wrk", "-t1", "-c32", "-d%ds" % SECONDS,
                          "-H", "Cookie: twostep_session=" + cookie, url],
                         capture_output=True, text=True, timeout=SECONDS + 30)
    perf.send_signal(signal.SIGINT)
    err = perf.communicate()[1]
    if wrk.returncode != 0 or "Non-2xx" in wrk.stdout:
        die("wrk on %s failed:\n%s%s" % (url, wrk.stdout, wrk.stderr))
    if not data.exists():
        return None, (err.strip().splitlines() or ["perf record failed"])[-1]
    report = subprocess.run(["perf", "report", "-i", str(data), "--stdio",
                             "--sort", "dso", "-g", "none"],
                            capture_output=True, text=True)
    shares = {m.group(2): float(m.group(1)) for m in re.finditer(
        r"^\s+([\d.]+)%\s+(\S+)\s*$", report.stdout, re.M)}
    total = re.search(r"^# Samples: (\S+)", report.stdout, re.M)
    if not shares or not total:
        return None, "cannot read perf report"
    return shares, total.group(1)


def instructions(nginx, port, cookie):
    """{path: user-space instructions per request} of the worker, under
    callgrind; (None, why) without valgrind."""
    out = nginx.prefix / "callgrind.out"
    try:
        vg = subprocess.Popen(
            ["valgrind", "--tool=callgrind", "--callgrind-out-file=%s" % out]
            + nginx.cmd("-g", "daemon off; master_process off;"),
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
            stderr=open(nginx.prefix / "valgrind.log", "ab"),
            env=nginx_env())
    except FileNotFoundError:
        return None, "valgrind is not installed"
    counts = {}
    try:
        wait_for_port(port, vg, 120, what="nginx under valgrind")
        s = requests.Session()
        s.cookies.set("twostep_session", cookie)
        url = "http://127.0.0.1:%d" % port
        for n, path in enumerate(("/unguarded/index.html",
                                  "/protected/index.html")):
            for _ in range(50):    # the connection, the session cache
                s.get(url + path, timeout=30)
            subprocess.run(["callgrind_control", "-z", str(vg.pid)],
                           capture_output=True, check=True, timeout=60)
            for _ in range(REQUESTS):
                r = s.get(url + path, allow_redirects=False, timeout=30)
                if r.status_code != 200:
                    die("%s answered %d under valgrind"
                        % (path, r.status_code))
            subprocess.run(["callgrind_control", "-d", "phase%d" % n,
                            str(vg.pid)],
                           capture_output=True, check=True, timeout=60)
            dump = "%s.%d" % (out, n + 1)
            text = Path(dump).read_text()
            total = re.search(r"^(?:summary|totals):\s+(\d+)", text, re.M)
            if not total or "phase%d" % n not in text:
                die("cannot read callgrind's dump %s" % dump)
            counts[path] = int(total.group(1)) / REQUESTS
    finally:
        vg.terminate()
        vg.wait(60)
    return counts, None


def main():
    module = os.environ.get("TWOSTEP_MODULE") or die("set TWOSTEP_MODULE")
    d = make_workdir("twostep-hotpath-")
    shim = build_shim(d)
    user = User("bench", "bench-pw-" + os.urandom(6).hex())
    write_users(d / "users.json", [user])
    write_key(d / "cookie.key")
    for sub in ("unguarded", "protected"):
        (d / "www" / sub).mkdir(parents=True)
        (d / "www" / sub / "index.html").write_text("x" * 594)
        (d / "www" / sub).chmod(0o755)
    (d / "www").chmod(0o755)
    port = free_port()
    body = """
    access_log off;
    twostep_users {d}/users.json;
    server {{
        listen 127.0.0.1:{port};
        twostep_cookie_key {d}/cookie.key;
        root {d}/www;
        location /unguarded/ {{ }}
        location /protected/ {{ twostep on; }}
    }}
""".format(d=d, port=port)
    os.environ["LD_PRELOAD"] = str(shim)   # for nginx, which inherits it
    nginx = Nginx(d / "nginx", main_conf(d / "nginx", module, body,
                                         workers=1), ports=[port])
    nginx.start()
    del os.environ["LD_PRELOAD"]
    events, why = add_probes()
    try:
        base = nginx.url()
        browser = Browser(base)
        browser.sign_in("/protected/index.html", user)
        cookie = browser.cookie("twostep_session")
        if not cookie:
            die("sign-in gave no session cookie")
        worker = min(child_pids(nginx.proc.pid))

        print("\nPer signed-in request, in the worker (%d keep-alive requests "
              "each):" % REQUESTS)
        print("%-40s %12s %12s" % ("", "allocations", "zone locks"))
        for label, path in (("unprotected (static file)",
                             "/unguarded/index.html"),
                            ("twostep on, valid session",
                             "/protected/index.html")):
            s = requests.Session()
            s.cookies.set("twostep_session", cookie)
            s.get(base + path)   # the connection and the session cache
            with Counter(nginx, worker, events) as c:
                for _ in range(REQUESTS):
                    r = s.get(base + path, allow_redirects=False)
                    if r.status_code != 200:
                        die("%s answered %d" % (path, r.status_code))
            locks = ("%12.3f" % (c.locks / REQUESTS) if c.locks is not None
                     else "%12s" % "n/a")
            print("%-40s %12.3f %s" % (label, (c.after - c.before) / REQUESTS,
                                       locks))

        # The probe sees locks where there are some: a wrong password.
        other = Browser(base)
        page = other.follow(other.get("/protected/index.html"))
        with Counter(nginx, worker, events) as c:
            r = other.submit_password(page, user.name, "wrong-password")
        print("%-40s %12s %12s" % ("one wrong password (%d)" % r.status_code,
                                   c.after - c.before,
                                   c.locks if c.locks is not None else "n/a"))
        if why:
            print("(zone locks not counted: perf probe: %s)" % why)

        print("\nShare of the worker's CPU samples (perf cpu-clock, wrk -t1 "
              "-c32 -d%ds each):" % SECONDS)
        print("%-32s %9s %10s %10s %8s %9s" % ("", "module", "libstdc++",
                                               "libcrypto", "libc",
                                               "samples"))
        for label, path in (("unprotected (static file)",
                             "/unguarded/index.html"),
                            ("twostep on, valid session",
                             "/protected/index.html")):
            shares, total = cpu_shares(d, worker, base + path, cookie)
            if shares is None:
                print("(not sampled: %s)" % total)
                break
            print("%-32s %s %9s" % (label, " ".join(
                "%8.2f%%" % shares.get(dso, 0.0) for dso in DSOS), total))
    finally:
        nginx.stop()
        if events:
            del_probes()

    counts, why = instructions(nginx, port, cookie)
    print("\nInstructions per request in the worker, user space (callgrind, "
          "%d keep-alive\nrequests each, exact):" % REQUESTS)
    if counts is None:
        print("(not counted: %s)" % why)
        return
    opened = counts["/unguarded/index.html"]
    guarded = counts["/protected/index.html"]
    print("%-40s %12.0f" % ("unprotected (static file)", opened))
    print("%-40s %12.0f  (+%.0f, +%.1f %%)"
          % ("twostep on, valid session", guarded, guarded - opened,
             (guarded - opened) / opened * 100))


if __name__ == "__main__":
    main()
