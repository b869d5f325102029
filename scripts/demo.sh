#!/usr/bin/env bash
# Sets up the local stack (pinned emulator in .venv) and runs the fleetguard story against it, step by step.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
cargo run --quiet -p fleetguard-tests --bin demo
