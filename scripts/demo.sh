#!/usr/bin/env bash
# Sets up the local stack (pinned emulator and cargo-lambda in .venv) and runs the fleetguard story, step by
# step, through the real functions served by `cargo lambda watch` (the Lambda runtime API).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
cargo run -p fleetguard-tests --bin demo
