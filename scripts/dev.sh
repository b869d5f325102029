#!/usr/bin/env bash
# The local development loop: the pinned emulator on 127.0.0.1:5000 holding the local tables and the fleet
# policy (from infra/template.yaml), `cargo lambda watch` serving every function on 127.0.0.1:9000,
# rebuilt when the code changes, and the local IoT gateway (MQTT over TLS on localhost:8883, its data
# plane on 127.0.0.1:8088, log target/gateway.log) running the template's rules and connect functions
# against them. In another terminal, replay any fixture:
#   .venv/bin/cargo-lambda lambda invoke provisioner --data-file tests/fixtures/jitr-registered.json
# or connect an MQTT client (README, "Local IoT gateway"). FLEETGUARD_DEVICE_CA_IDS: the device CAs
# the handshake validator lets through for JITR (default: the local fleet CA). Ctrl-C stops all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
fleetctl=(cargo run --quiet -p fleetctl --)
# shellcheck source=scripts/local-stack.sh
source scripts/local-stack.sh
# The functions answer through the gateway's data plane; the validator knows the device CAs.
export AWS_ENDPOINT_URL_IOT_DATA_PLANE=http://127.0.0.1:8088
export FLEETGUARD_CA_CERTIFICATE_IDS=${FLEETGUARD_DEVICE_CA_IDS:-$FLEETGUARD_CA_CERTIFICATE_ID}
cargo build --quiet -p fleetguard-gateway
FLEETGUARD_LAMBDA_ENDPOINT=http://127.0.0.1:9000 "${CARGO_TARGET_DIR:-target}/debug/fleetguard-gateway" > target/gateway.log 2>&1 &
gateway=$!
trap 'kill "$gateway" "$emulator" 2>/dev/null || true' EXIT
echo "==> local IoT gateway: mqtts://localhost:8883 (trust target/gateway-server.pem), data plane http://127.0.0.1:8088"
echo "==> cargo lambda watch on 127.0.0.1:9000 (functions: provisioner provisioning-hook delete-record revoker authorizer handshake-validator rotator certificate-watch)"
PATH=$root/.venv/bin:$PATH cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000
