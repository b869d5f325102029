#!/usr/bin/env bash
# The local development loop: the pinned emulator on 127.0.0.1:5000 holding the local tables and the fleet
# policy (from infra/template.yaml), and `cargo lambda watch` serving every function on 127.0.0.1:9000,
# rebuilt when the code changes. In another terminal, replay any fixture:
#   .venv/bin/cargo-lambda lambda invoke provisioner --data-file tests/fixtures/jitr-registered.json
# Ctrl-C stops both.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
fleetctl=(cargo run --quiet -p fleetctl --)
# shellcheck source=scripts/local-stack.sh
source scripts/local-stack.sh
echo "==> cargo lambda watch on 127.0.0.1:9000 (functions: provisioner provisioning-hook delete-record revoker authorizer handshake-validator rotator certificate-watch)"
PATH=$root/.venv/bin:$PATH cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000
