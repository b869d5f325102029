#!/usr/bin/env bash
# The local development loop: the pinned emulator on 127.0.0.1:5000 holding the local tables and the fleet
# policy (from infra/template.yaml), `cargo lambda watch` serving every function on 127.0.0.1:9000,
# rebuilt when the code changes, and the local IoT gateway (MQTT over TLS on localhost:8883, the default
# endpoint; 8884 the devices' validated domain; 8885 X.509 custom authentication; its data
# plane on 127.0.0.1:8088, log target/gateway.log) running the template's rules and connect functions
# against them. In another terminal, replay any fixture:
#   .venv/bin/cargo-lambda lambda invoke --invoke-address 127.0.0.1 provisioner --data-file tests/fixtures/jitr-registered.json
# or connect an MQTT client (README, "Local IoT gateway"). FLEETGUARD_DEVICE_CA_ID: the device CA (the
# template's CaCertificateId: JITR and the handshake validator; default: the local fleet CA). In another
# terminal, `source target/local-env.sh` points fleetctl at this stack. Ctrl-C stops all.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
fleetctl=(cargo run --quiet -p fleetctl --)
# The template's parameters for this stack: the functions answer through the gateway's data plane.
setup_local_args=(--data-plane http://127.0.0.1:8088)
[ -n "${FLEETGUARD_DEVICE_CA_ID:-}" ] && setup_local_args+=(--device-ca "$FLEETGUARD_DEVICE_CA_ID")
# shellcheck source=scripts/local-stack.sh
source scripts/local-stack.sh
cargo build --quiet -p fleetguard-gateway
FLEETGUARD_LAMBDA_ENDPOINT=http://127.0.0.1:9000 "${CARGO_TARGET_DIR:-target}/debug/fleetguard-gateway" > target/gateway.log 2>&1 &
gateway=$!
trap 'kill "$gateway" "$emulator" 2>/dev/null || true' EXIT
echo "==> local IoT gateway: mqtts://localhost:8884 devices, :8883 operators and password devices, :8885 X.509 custom auth (trust target/gateway-server.pem), data plane http://127.0.0.1:8088"
echo "==> cargo lambda watch on 127.0.0.1:9000 (functions: provisioner provisioning-hook delete-record revoker authorizer handshake-validator rotator certificate-watch)"
# Each function signs with its own role's key (its crate's [package.metadata.lambda.env]), not the
# deployer's key this shell holds for fleetctl.
PATH=$root/.venv/bin:$PATH env -u AWS_ACCESS_KEY_ID cargo lambda watch --invoke-address 127.0.0.1 --invoke-port 9000
