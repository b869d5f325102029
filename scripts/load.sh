#!/usr/bin/env bash
# The bounded load run: many instances of the real delete-record and revoker binaries (debug builds,
# served by `cargo lambda watch --concurrency`) against the emulator, with throttling injected on
# DynamoDB and the AWS IoT control plane. Prints throughput, p50/p99 and the invariants it checked
# (tests/load.rs). Figures are printed, never asserted; they are bound by the emulator (one DynamoDB
# request at a time), not by the functions.
#   scripts/load.sh                                              # 500 devices x 10 records, 50 revokes
#   FLEETGUARD_LOAD_DEVICES=50 FLEETGUARD_LOAD_RECORDS=4 FLEETGUARD_LOAD_REVOKES=5 scripts/load.sh
# Other knobs: FLEETGUARD_LOAD_INSTANCES (20), FLEETGUARD_LOAD_THROTTLE_EVERY (25; 0: no throttling),
# FLEETGUARD_LOAD_REPLAY_PERCENT (2).
#   scripts/load.sh expiry                                       # the expiry watch over 100,000 devices
#   FLEETGUARD_EXPIRY_N=10000 scripts/load.sh expiry             # (tests/integration/expiry_scale.rs)
#   scripts/load.sh gateway                                      # 200 MQTT devices through the local
#   FLEETGUARD_GATEWAY_LOAD_DEVICES=50 scripts/load.sh gateway   # gateway (gateway/tests/broker/load.rs)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d)"
if [ "${1:-}" = expiry ]; then
  cargo test -q -p fleetguard-tests --test integration -- --ignored --nocapture expiry_scale::
elif [ "${1:-}" = gateway ]; then
  cargo test -q -p fleetguard-gateway --test broker -- --ignored --nocapture load::
else
  cargo test -q -p fleetguard-tests --test load -- --ignored --nocapture load_run
fi
