#!/usr/bin/env bash
# Sets up the local stack (pinned emulator and cargo-lambda in .venv) and runs the fleetguard story, step by
# step, through the real functions served by `cargo lambda watch` (the Lambda runtime API). The demo's
# build starts beside the Python tools' install (scripts/setup.sh, logged to target/setup.log).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p target
echo "==> scripts/setup.sh (in the background: target/setup.log)"
scripts/setup.sh > target/setup.log 2>&1 &
setup=$!
trap 'kill "$setup" 2>/dev/null || true' EXIT
echo "==> cargo build (the demo; the functions build when it starts them)"
cargo build -p fleetguard-tests --bin demo
if ! wait "$setup"; then
  cat target/setup.log >&2
  exit 1
fi
tail -n 1 target/setup.log
cargo run -q -p fleetguard-tests --bin demo -- "$@"
