#!/usr/bin/env bash
# `make demo`: the legacy app behind nginx-twostep on http://127.0.0.1:8080/,
# with the Duo simulator (examples/duo_simulator.py) on 127.0.0.1:8082 for
# push, phone call and text message: its page /phone/alice plays alice's
# phone.
#
# Keeps its state in build/demo/ (user alice's password, her authenticator
# secret, the cookie key, the simulator's secret key) so an authenticator
# app set up once keeps working; delete build/demo/ to start afresh. Ctrl-C
# stops everything it started.
#
# Environment: TWOSTEP_MODULE (the .so; default build/...), DEMO_PORT (8080),
# DEMO_APP_PORT (8081), DEMO_DUO_PORT (8082), DEMO_DIR (build/demo), NGINX
# (/usr/sbin/nginx).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
module=${TWOSTEP_MODULE:-$repo/build/ngx_http_twostep_module.so}
state=${DEMO_DIR:-$repo/build/demo}
prefix=$state/nginx
port=${DEMO_PORT:-8080}
app_port=${DEMO_APP_PORT:-8081}
duo_port=${DEMO_DUO_PORT:-8082}
twilio_port=${DEMO_TWILIO_PORT:-8083}
ntfy_port=${DEMO_NTFY_PORT:-8084}
nginx=${NGINX:-/usr/sbin/nginx}
python=/usr/bin/python3
user=alice
issuer=nginx-twostep
# The simulator's integration key: made up, like its secret key below.
duo_ikey=DIDEMOSIMULATOR00001
# bob signs in without Duo: text and call through the Twilio stand-in,
# push through the ntfy stand-in (examples/twilio_standin.py, ntfy_standin.py).
user2=bob
twilio_account=AC00000000000000000000000000de7002
bob_phone=+15550100222
# carol has a password and a phone but no authenticator yet: she signs in
# with a texted code and sets one up in security info (twostep_enroll on).
user3=carol
carol_phone=+15550100333

die() { echo "demo: $*" >&2; exit 1; }

[ -f "$module" ] || die "no module at $module (build it: make module)"
case $module in /*) ;; *) module=$(cd "$(dirname "$module")" && pwd)/$(basename "$module") ;; esac
for tool in "$nginx" "$python" mkpasswd oathtool openssl base32; do
    command -v "$tool" >/dev/null || die "$tool is missing (make demo installs it)"
done

port_busy() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
for p in "$port" "$app_port" "$duo_port" "$twilio_port" "$ntfy_port"; do
    port_busy "$p" && die "port $p is in use (set DEMO_PORT, DEMO_APP_PORT," \
        "DEMO_DUO_PORT, DEMO_TWILIO_PORT or DEMO_NTFY_PORT)"
done

# --- state kept across runs ---------------------------------------------
mkdir -p "$state" "$prefix/tmp"
chmod 755 "$state" "$prefix" "$prefix/tmp"   # nginx's workers write temp files
umask 077
if [ ! -s "$state/password" ]; then
    # 16 letters and digits; the browser may remember them.
    pw=$(openssl rand -base64 48 | tr -dc 'A-Za-z0-9')
    printf '%s' "${pw:0:16}" >"$state/password"
fi
if [ ! -s "$state/totp-secret" ]; then
    head -c 20 /dev/urandom | base32 | tr -d '=\n' >"$state/totp-secret"
fi
if [ ! -s "$state/cookie.key" ]; then
    openssl rand -out "$state/cookie.key" 32
fi
if [ ! -s "$state/duo.skey" ]; then
    # 40 letters and digits, like a Duo secret key; only the simulator and
    # nginx know it.
    skey=$(openssl rand -base64 90 | tr -dc 'A-Za-z0-9')
    printf '%s\n' "${skey:0:40}" >"$state/duo.skey"
fi
[ -s "$state/twilio.token" ] || openssl rand -hex 16 >"$state/twilio.token"
[ -s "$state/ntfy.token" ] ||
    printf 'tk_%s\n' "$(openssl rand -hex 14)" >"$state/ntfy.token"
[ -s "$state/ntfy-topic" ] ||
    openssl rand -base64 18 | tr '+/' '-_' | tr -d '=\n' >"$state/ntfy-topic"
bob_topic=$(cat "$state/ntfy-topic")
password=$(cat "$state/password")
secret=$(cat "$state/totp-secret")

# The store: rebuilt every run from the two files above (same login), so
# what carol sets up in security info lasts until the next run.
hash=$(printf '%s' "$password" | mkpasswd --stdin -m yescrypt)
printf '{"users": {"%s": {"password": "%s", "totp": "%s"},
  "%s": {"password": "%s", "totp": "%s", "phone": "%s", "ntfy_topic": "%s"},
  "%s": {"password": "%s", "phone": "%s"}}}\n' \
    "$user" "$hash" "$secret" "$user2" "$hash" "$secret" "$bob_phone" \
    "$bob_topic" "$user3" "$hash" "$carol_phone" >"$state/users.json.new"
mv "$state/users.json.new" "$state/users.json"

# The simulated Duo account, rebuilt every run: alice's phone takes pushes,
# calls and texts, and she answers them on the simulator's /phone/alice.
cat >"$state/duo-sim.json.new" <<JSON
{
  "ikey": "$duo_ikey",
  "unknown_users": "enroll",
  "long_poll_seconds": 2,
  "tx_timeout_seconds": 60,
  "users": {
    "$user": {
      "status": "auth",
      "number_matching": false,
      "devices": [{
        "device": "DPDEMOALICE000000001",
        "type": "phone",
        "number": "+1 555-0100",
        "display_name": "Alice's phone",
        "capabilities": ["push", "phone", "sms"]
      }]
    }
  }
}
JSON
mv "$state/duo-sim.json.new" "$state/duo-sim.json"

# nginx reads the store and the keys as root at start-up. A worker (user
# nobody) rereads the store when it changes and, for security info, writes
# it (a new file and a lock file beside it), through the group; the keys
# stay the owner's alone (nginx -t warns otherwise).
if [ "$(id -u)" -eq 0 ] && getent group nogroup >/dev/null; then
    rm -f "$state/users.json.lock"
    chgrp nogroup "$state" "$state/users.json"
    chmod 775 "$state"
    chmod 660 "$state/users.json"
    chmod 600 "$state/cookie.key" "$state/duo.skey" "$state/twilio.token" \
        "$state/ntfy.token"
fi
umask 022

sed -e "s|@MODULE@|$module|g" -e "s|@PREFIX@|$prefix|g" \
    -e "s|@STATE@|$state|g" -e "s|@PORT@|$port|g" \
    -e "s|@APP_PORT@|$app_port|g" -e "s|@DUO_PORT@|$duo_port|g" \
    -e "s|@DUO_IKEY@|$duo_ikey|g" -e "s|@TWILIO_PORT@|$twilio_port|g" \
    -e "s|@TWILIO_ACCOUNT@|$twilio_account|g" -e "s|@NTFY_PORT@|$ntfy_port|g" \
    "$here/nginx.conf.in" >"$prefix/nginx.conf"

nginx_cmd=("$nginx" -p "$prefix/" -c "$prefix/nginx.conf")
# Quiet unless it fails: the warning about the simulator's plain http is
# shown once, when nginx starts.
if ! check=$("${nginx_cmd[@]}" -t -q 2>&1); then
    echo "$check" >&2
    die "nginx refused $prefix/nginx.conf (see above)"
fi

# --- processes ----------------------------------------------------------
app_pid=
duo_pid=
twilio_pid=
ntfy_pid=
nginx_pid=
cleanup() {
    trap - EXIT INT TERM
    # Background jobs of a script ignore SIGINT, so Ctrl-C does not reach
    # them: stop them here, by pid, and wait for them.
    for pid in $nginx_pid $duo_pid $twilio_pid $ntfy_pid $app_pid; do
        kill -TERM "$pid" 2>/dev/null || true
    done
    for pid in $nginx_pid $duo_pid $twilio_pid $ntfy_pid $app_pid; do
        wait "$pid" 2>/dev/null || true
    done
    echo "demo: stopped"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

wait_port() {  # pid port what [log]
    for _ in $(seq 100); do
        if ! kill -0 "$1" 2>/dev/null; then
            [ -z "${4:-}" ] || tail -n 20 "$4" >&2
            die "$3 exited (see above)"
        fi
        port_busy "$2" && return 0
        sleep 0.1
    done
    die "$3 did not listen on port $2"
}

"$python" "$here/legacy_app.py" --port "$app_port" --quiet </dev/null &
app_pid=$!
wait_port "$app_pid" "$app_port" "the legacy app"

# It logs one line per request (never a key or a passcode): to a file.
duo_log=$prefix/duo-simulator.log
"$python" "$here/duo_simulator.py" --port "$duo_port" \
    --config "$state/duo-sim.json" --skey-file "$state/duo.skey" \
    </dev/null 2>>"$duo_log" &
duo_pid=$!
wait_port "$duo_pid" "$duo_port" "the Duo simulator" "$duo_log"

twilio_log=$prefix/twilio-standin.log
"$python" "$here/twilio_standin.py" --port "$twilio_port" \
    --account "$twilio_account" --token-file "$state/twilio.token" \
    </dev/null 2>>"$twilio_log" &
twilio_pid=$!
wait_port "$twilio_pid" "$twilio_port" "the Twilio stand-in" "$twilio_log"

ntfy_log=$prefix/ntfy-standin.log
"$python" "$here/ntfy_standin.py" --port "$ntfy_port" \
    --token-file "$state/ntfy.token" </dev/null 2>>"$ntfy_log" &
ntfy_pid=$!
wait_port "$ntfy_pid" "$ntfy_port" "the ntfy stand-in" "$ntfy_log"

"${nginx_cmd[@]}" -g 'daemon off;' </dev/null &
nginx_pid=$!
wait_port "$nginx_pid" "$port" "nginx"

uri="otpauth://totp/$issuer:$user?secret=$secret&issuer=$issuer"
cat <<EOF

  nginx-twostep demo: the "Legacy App" has no login; nginx asks for one.

  Open       http://127.0.0.1:$port/
  User       $user
  Password   $password

  Second step, four ways (the others are under "Sign in another way").

  Push, call and text go to a simulated phone: open
      http://127.0.0.1:$duo_port/phone/$user in another tab
  and approve there (answer the call and press a key; read the texted code).

  Without Duo: sign in as $user2 (same password and authenticator). Texts
  and calls go to the Twilio stand-in, http://127.0.0.1:$twilio_port/
  (read the code; answer the call on its keypad with #), pushes to the
  ntfy stand-in, http://127.0.0.1:$ntfy_port/ (tap Approve and type the
  number the sign-in page shows).

  Security info (add an authenticator, phone, recovery codes; sign out
  everywhere): sign in as $user3 (same password, no authenticator yet: her
  code is texted to the Twilio stand-in), then open
      http://127.0.0.1:$port/.twostep/security-info
  "Set up push notifications" there sends a test push to the ntfy stand-in:
  tap its Approve and type the number the set-up page shows.
  Texts, calls and pushes are limited to three per ten minutes per user.

  Authenticator code: add this account to an authenticator app (Google
  Authenticator, Microsoft Authenticator, FreeOTP, ...) by scanning the
  code below, or by typing the secret.

  $uri
  Secret     $(echo "$secret" | sed -e 's/..../& /g' -e 's/ $//')
EOF
if command -v qrencode >/dev/null; then
    echo
    qrencode -t ANSIUTF8 "$uri"
fi
cat <<EOF
  No phone at hand? The code right now is $(oathtool --totp -b "$secret")
  (and any time later: oathtool --totp -b \$(cat $state/totp-secret)).

  Also try   http://127.0.0.1:$port/public/  (no sign-in)
             http://127.0.0.1:$port/admin/   (a fresh second step after 5 min)
             http://127.0.0.1:$port/.twostep/logout
  Logs       $prefix/error.log, $prefix/access.log,
             $duo_log, $twilio_log, $ntfy_log
  State      $state (delete it for a new password and secret)

  Ctrl-C stops nginx, the app, the Duo simulator and the stand-ins.
EOF

# Until Ctrl-C, or until one of them dies (then the others are stopped
# too).
set +e
wait -n "$app_pid" "$duo_pid" "$twilio_pid" "$ntfy_pid" "$nginx_pid"
status=$?
# Ctrl-C reaches every process of the group at once, and nginx, which
# sets its own SIGINT handler (a fast shutdown), may end before this shell
# has run its INT trap: give the trap that moment, so that stopping the
# demo is not reported as nginx having died.
sleep 0.5
kill -0 "$nginx_pid" 2>/dev/null || echo "demo: nginx has stopped" >&2
kill -0 "$app_pid" 2>/dev/null || echo "demo: the app has stopped" >&2
kill -0 "$duo_pid" 2>/dev/null ||
    echo "demo: the Duo simulator has stopped (see $duo_log)" >&2
exit "$status"
