#!/usr/bin/env bash
# Runs every cargo-fuzz target for a bounded time and prints a table: runs, coverage, findings.
# Not part of CI (needs the nightly toolchain and cargo-fuzz; the seeds are replayed on stable by
# tests/integration/hostile.rs in every run). Usage:
#   scripts/fuzz.sh [seconds per target, default 60] [target ...]
# Needs: `rustup toolchain install nightly`; cargo-fuzz on PATH, or it is installed once into
# target/tools (a few minutes of compiling). Inputs found go to target/fuzz-corpus/<target>, never
# into the repository's small seed corpus (fuzz/corpus); crashes go to fuzz/artifacts/<target>.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
secs=${1:-60}
shift || true

if ! cargo +nightly --version >/dev/null 2>&1; then
    echo "fuzz.sh: needs the nightly toolchain (rustup toolchain install nightly)" >&2
    exit 2
fi
if ! command -v cargo-fuzz >/dev/null 2>&1; then
    if [ ! -x target/tools/bin/cargo-fuzz ]; then
        echo "installing cargo-fuzz 0.13.2 into target/tools ..." >&2
        cargo install --locked --quiet --root target/tools cargo-fuzz --version 0.13.2
    fi
    export PATH="$root/target/tools/bin:$PATH"
fi

targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
    mapfile -t targets < <(cd fuzz && cargo +nightly fuzz list)
fi

(cd fuzz && cargo +nightly fuzz build -O)

status=0
printf '%-22s %10s %8s %8s  %s\n' target runs cov corpus result
for t in "${targets[@]}"; do
    work="target/fuzz-corpus/$t"
    mkdir -p "$work" "fuzz/artifacts/$t"
    cp -n fuzz/corpus/"$t"/* "$work"/ 2>/dev/null || true
    log="target/fuzz-$t.log"
    set +e
    (cd fuzz && cargo +nightly fuzz run -O "$t" "$root/$work" -- \
        -max_total_time="$secs" -rss_limit_mb=2048 -max_len=65536 -print_final_stats=1 \
        -artifact_prefix="$root/fuzz/artifacts/$t/") >"$log" 2>&1
    rc=$?
    set -e
    runs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
    cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 | grep -o '[0-9]*' || echo "?")
    files=$(find "$work" -type f | wc -l)
    if [ $rc -eq 0 ]; then
        result="ok, 0 panics"
    else
        result="FINDING (exit $rc): see $log and fuzz/artifacts/$t/"
        status=1
    fi
    printf '%-22s %10s %8s %8s  %s\n' "$t" "$runs" "$cov" "$files" "$result"
done
exit $status
