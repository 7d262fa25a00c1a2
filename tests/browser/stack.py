#!/usr/bin/python3
"""Starts what the browser test drives, all on loopback: the legacy app, the
Duo simulator (user alice: push, phone and sms; number matching off), the
Twilio and ntfy stand-ins (user bob, same password: text and call to his
phone, push with number matching to his ntfy topic) and nginx with the
module in a fresh temporary directory, with self-service and passkey
sign-in on. Reuses the e2e harness (tests/e2e/harness.py).

Prints one line of JSON on stdout when everything listens:
  {"base": "http://127.0.0.1:N", "sim": "http://127.0.0.1:M",
   "user": "alice", "password": "...", "secret": "BASE32",
   "store": ".../store/users.json", "dir": "...",
   "twilio": "http://127.0.0.1:T", "ntfy": "http://127.0.0.1:F",
   "user2": "bob", "secret2": "BASE32", "phone": "+1...", "topic": "...",
   "user3": "carol", "secret3": "BASE32"}
(carol has her authenticator app alone: she sets up push in security
info.)
then runs until its stdin closes or it gets SIGTERM/SIGINT, and stops the
three processes (and removes the directory unless TWOSTEP_KEEP=1).

Environment: TWOSTEP_MODULE (default build/ngx_http_twostep_module.so).
"""

import grp
import json
import os
import pwd
import secrets
import shutil
import signal
import string
import subprocess
import sys
import threading
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parents[1]
sys.path.insert(0, str(REPO / "tests" / "e2e"))

import harness  # noqa: E402
from harness import (LegacyApp, Nginx, User, free_port, main_conf,  # noqa
                     make_workdir, proxy_to, stop_process, wait_for_port,
                     write_key, write_users)

SIMULATOR = REPO / "examples" / "duo_simulator.py"
MODULE = os.environ.get("TWOSTEP_MODULE") or \
    str(REPO / "build" / "ngx_http_twostep_module.so")
IKEY = "DIBROWSERTEST0000001"
TWILIO_ACCOUNT = "AC" + "0" * 28 + "b70e"
BOB_PHONE = "+15550100222"


def simulator_config():
    return {
        "ikey": IKEY,
        "unknown_users": "enroll",
        "long_poll_seconds": 2,
        "tx_timeout_seconds": 60,
        "users": {
            "alice": {
                "status": "auth",
                "number_matching": False,
                "devices": [{
                    "device": "DPBROWSERALICE000001",
                    "type": "phone",
                    "number": "+1 555-0100",
                    "display_name": "Alice's phone",
                    "capabilities": ["push", "phone", "sms"],
                }],
            },
        },
    }


class Simulator:
    def __init__(self, workdir, skey_file):
        self.port = free_port()
        self.config = Path(workdir) / "duo-sim.json"
        self.config.write_text(json.dumps(simulator_config(), indent=2))
        self.skey_file = skey_file
        self.log_path = Path(workdir) / "duo-sim.log"
        self.proc = None

    def start(self):
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [harness.PYTHON, "-u", str(SIMULATOR), "--port", str(self.port),
             "--config", str(self.config), "--skey-file",
             str(self.skey_file)],
            stdin=subprocess.DEVNULL, stdout=self.log, stderr=self.log)
        wait_for_port(self.port, self.proc, what="Duo simulator")
        return self

    def stop(self):
        if self.proc:
            stop_process(self.proc)
            self.log.close()
            self.proc = None


def nginx_conf(prefix, d, app_port, sim_port, port, twilio, ntfy):
    # Self-service (security keys) and passkey sign-in: the browser opens
    # http://localhost:PORT, whose host name is the RP ID.
    body = """
    twostep_users {d}/store/users.json;
    twostep_cookie_key {d}/cookie.key;
    twostep_enroll on;
    twostep_passkey_signin on;
    twostep_duo_api http://127.0.0.1:{sim};
    twostep_duo_ikey {ikey};
    twostep_duo_skey_file {d}/duo.skey;
    twostep_twilio_api {twilio};
    twostep_twilio_account {account};
    twostep_twilio_token_file {d}/twilio/twilio.token;
    twostep_twilio_from +15550001111;
    twostep_ntfy_server {ntfy};
    twostep_ntfy_token_file {d}/ntfy/ntfy.token;
    twostep_public_url http://127.0.0.1:{port};

    server {{
        listen 127.0.0.1:{port};
        twostep_remember 30d;
        location / {{
            twostep on;
            {proxy}
        }}
    }}
""".format(d=d, sim=sim_port, ikey=IKEY, port=port,
           proxy=proxy_to(app_port), twilio=twilio.base,
           account=TWILIO_ACCOUNT, ntfy=ntfy.base)
    return main_conf(prefix, MODULE, body, workers=1)


def main():
    if not os.path.isfile(MODULE):
        sys.exit("stack.py: no module at %s (make module)" % MODULE)

    work = make_workdir("twostep-browser-")
    procs = []
    done = threading.Event()

    def stop(*_):
        done.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)

    try:
        # Files are world-readable: nginx's workers run as nobody.
        password = "browser-" + secrets.token_hex(6)
        alice = User("alice", password)
        bob = User("bob", password)
        carol = User("carol", password)
        topic = secrets.token_urlsafe(18)
        # The workers (nobody) write the store: a directory of its own,
        # as the README's permission steps say.
        store = work / "store"
        store.mkdir()
        write_users(store / "users.json", [alice, bob, carol],
                    mode=0o660)
        doc = json.loads((store / "users.json").read_text())
        doc["users"]["bob"].update(phone=BOB_PHONE, ntfy_topic=topic)
        (store / "users.json").write_text(json.dumps(doc, indent=2))
        nobody = pwd.getpwnam("nobody").pw_uid
        nogroup = grp.getgrnam("nogroup").gr_gid
        for f in (store, store / "users.json"):
            os.chown(f, nobody, nogroup)
        store.chmod(0o770)
        write_key(work / "cookie.key")
        skey = "".join(secrets.choice(string.ascii_letters + string.digits)
                       for _ in range(40))
        (work / "duo.skey").write_text(skey + "\n")
        os.chmod(work / "duo.skey", 0o644)

        app = LegacyApp(work).start()
        procs.append(app)
        sim = Simulator(work, work / "duo.skey").start()
        procs.append(sim)
        for name in ("twilio", "ntfy"):
            (work / name).mkdir()
            (work / name).chmod(0o755)
        twilio = harness.twilio_standin(work / "twilio", TWILIO_ACCOUNT,
                                        secrets.token_hex(16))
        procs.append(twilio)
        ntfy = harness.ntfy_standin(work / "ntfy",
                                    "tk_" + secrets.token_hex(14))
        procs.append(ntfy)

        port = free_port()
        nginx = Nginx(work / "nginx",
                      nginx_conf(work / "nginx", work, app.port, sim.port,
                                 port, twilio, ntfy), ports=[port])
        rc, out = nginx.test_config()
        if rc != 0:
            raise RuntimeError("nginx -t failed:\n" + out)
        nginx.start()
        procs.append(nginx)

        print(json.dumps({"base": nginx.url(), "sim": "http://127.0.0.1:%d"
                          % sim.port, "user": alice.name,
                          "store": str(store / "users.json"),
                          "password": password, "secret": alice.secret,
                          "dir": str(work), "twilio": twilio.base,
                          "ntfy": ntfy.base, "user2": bob.name,
                          "secret2": bob.secret, "phone": BOB_PHONE,
                          "topic": topic, "user3": carol.name,
                          "secret3": carol.secret}), flush=True)

        # Until the test closes our stdin (or dies), or signals us.
        def watch_stdin():
            try:
                sys.stdin.buffer.read()
            finally:
                done.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        while not done.wait(0.5):
            for p in procs:
                if p.proc is not None and p.proc.poll() is not None:
                    sys.stderr.write("stack.py: %s exited (status %s)\n"
                                     % (type(p).__name__, p.proc.returncode))
                    done.set()
    finally:
        for p in reversed(procs):
            try:
                p.stop()
            except Exception as e:   # noqa: stop the others anyway
                sys.stderr.write("stack.py: stopping %s: %s\n"
                                 % (type(p).__name__, e))
        if os.environ.get("TWOSTEP_KEEP"):
            sys.stderr.write("stack.py: files kept in %s\n" % work)
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
