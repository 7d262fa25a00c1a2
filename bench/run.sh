#!/bin/sh
# `make bench`: unprotected vs twostep vs auth_request forward-auth, with wrk.
# See bench/bench.py for what is measured and the knobs (BENCH_ROUNDS,
# BENCH_DURATION, BENCH_CONNECTIONS, BENCH_POLL_DURATION). Takes about
# 100 s with the defaults. Then bench/hotpath.py counts what a signed-in
# request costs the worker: heap allocations and zone locks.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
: "${TWOSTEP_MODULE:?set TWOSTEP_MODULE to the built module (make bench does)}"
/usr/bin/python3 "$here/bench.py" "$@"
exec /usr/bin/python3 "$here/hotpath.py"
