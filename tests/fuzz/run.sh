#!/bin/bash
# Runs each libFuzzer target given on the command line for FUZZ_SECONDS
# (default 20) on a scratch copy of its seeds, build/fuzz/corpus-<target>;
# the committed tests/fuzz/corpus/<target>/ is only read. Crashing inputs
# land in build/fuzz/artifacts-<target>/. Fails if any target fails.
set -u
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-20}
failed=""
for bin in "$@"; do
    name=$(basename "$bin")
    out=build/fuzz
    corpus=$out/corpus-$name
    artifacts=$out/artifacts-$name
    log=$out/$name.log
    rm -rf "$corpus"
    mkdir -p "$corpus" "$artifacts"
    if [ -d tests/fuzz/corpus/"$name" ]; then
        cp tests/fuzz/corpus/"$name"/* "$corpus"/
    fi
    echo "== $name (${seconds}s, log $log)"
    if "$bin" -max_total_time="$seconds" -max_len=4096 -timeout=10 \
            -print_final_stats=1 -artifact_prefix="$artifacts"/ \
            "$corpus" >"$log" 2>&1; then
        runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
        speed=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
        cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
        echo "   ok: $runs runs, $speed/s, $cov, $(ls "$corpus" | wc -l) inputs"
    else
        tail -n 40 "$log"
        echo "   FAILED: $name; inputs in $artifacts/"
        failed="$failed $name"
    fi
done
if [ -n "$failed" ]; then
    echo "fuzz: failed:$failed"
    exit 1
fi
