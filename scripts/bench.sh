#!/usr/bin/env bash
# Prints, for each function binary: release size (stripped), cold init time (process start until its
# first poll of the Lambda runtime API, SDK clients built; median of $COLD runs), warm invocation
# latency p50/p99 through a local runtime API ($WARM invocations of a fixture event, against the
# emulator), and the AWS API calls per invocation counted by the emulator. Then the criterion benches
# (`cargo bench`) unless BENCH_CRITERION=0. Figures are printed, never asserted.
#   scripts/bench.sh            # host target (x86_64 here); Lambda runs arm64, see README
#   BENCH_FUNCTIONS="authorizer handshake-validator" BENCH_CRITERION=0 scripts/bench.sh   # a subset
#   BENCH_ROLLBACK=1000 scripts/bench.sh   # also time a rollback of that many deletes by one principal
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
COLD=${COLD:-7}
WARM=${WARM:-2000}
read -r -a functions <<< "${BENCH_FUNCTIONS:-provisioner provisioning-hook delete-record revoker authorizer handshake-validator rotator certificate-watch}"
# The functions in one build and fleetctl in another, as `sam build` does (infra/Makefile): fleetctl
# turns on aws-config's SSO providers, and a shared build would link them into every function.
echo "==> cargo build --release (${functions[*]}; then fleetctl)"
cargo build --release --quiet $(printf -- '-p %s ' "${functions[@]}")
cargo build --release --quiet -p fleetctl
fleetctl=("$root/target/release/fleetctl")
# shellcheck source=scripts/local-stack.sh
source scripts/local-stack.sh
FLEETGUARD_EMULATOR_PORT=${FLEETGUARD_EMULATOR_PORT:-5000}

declare -A event=(
  [provisioner]=tests/fixtures/jitr-registered.json
  [provisioning-hook]=tests/fixtures/pre-provisioning-hook.json
  [delete-record]=tests/fixtures/delete-record.json
  [revoker]=tests/fixtures/tamper.json
  [authorizer]=tests/fixtures/authorizer-mqtt.json
  [handshake-validator]=tests/fixtures/client-certificate-validation.json
  [rotator]=tests/fixtures/rotate-certificate.json
  [certificate-watch]=tests/fixtures/scheduled-event.json
)
echo
echo "machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%d)"
printf '%-18s %9s %10s %9s %9s %8s %15s  %s\n' function "size MB" "init ms" "p50 ms" "p99 ms" "inv/s" "RSS KB start>end" "AWS calls per invocation (event)"
for f in "${functions[@]}"; do
  size=$(stat -c %s "target/release/$f")
  out=$(.venv/bin/python scripts/bench_runtime.py --binary "target/release/$f" --event "${event[$f]}" \
        --cold "$COLD" --warm "$WARM")
  .venv/bin/python - "$f" "$size" "$out" <<'PY'
import json, sys
f, size, out = sys.argv[1], int(sys.argv[2]), json.loads(sys.argv[3])
calls = ", ".join(f"{k} {v:g}" for k, v in sorted(out["aws_calls_per_invocation"].items())) or "none"
rss = f"{out['rss_kb_start']}>{out['rss_kb_end']}"
print(f"{f:<18} {size / 1e6:>9.1f} {out['cold_init_ms_median']:>10} {out['warm_ms_p50']:>9} {out['warm_ms_p99']:>9} {out['throughput_per_s']:>8} {rss:>15}  {calls} ({out['event']}; errors {out['errors']})")
PY
done
if [ -n "${BENCH_ROLLBACK:-}" ]; then
  echo
  echo "==> rollback of $BENCH_ROLLBACK deletes by one principal (against the emulator: measures moto's transactions)"
  FLEETGUARD_ROLLBACK_N=$BENCH_ROLLBACK cargo test -q -p fleetguard-tests --test integration -- \
    --ignored --nocapture revocation::rollback_of_many 2>&1 | grep 'rollback of'
fi
if [ "${BENCH_CRITERION:-1}" != 0 ]; then
  echo
  echo "==> cargo bench (criterion)"
  cargo bench -p fleetguard-tests --bench authorizer
  cargo bench -p fleetguard-tests --bench decisions
  cargo bench -p fleetguard-gateway --bench per_message
fi
