# Sourced by scripts/dev.sh and scripts/bench.sh (needs `fleetctl` as an array holding the command to run
# fleetctl): starts the pinned emulator on 127.0.0.1:$FLEETGUARD_EMULATOR_PORT (5000), creates the local
# tables, the fleet policy (`fleetctl setup-local`, from infra/template.yaml) and the fleet CA in KMS, and
# exports what the functions read. The emulator logs to target/emulator-<port>.log.
port=${FLEETGUARD_EMULATOR_PORT:-5000}
stack=${FLEETGUARD_STACK:-fleetguard-local}
mkdir -p target
.venv/bin/python scripts/emulator.py --port "$port" --watch-parent > "target/emulator-$port.log" 2>&1 &
emulator=$!
trap 'kill "$emulator" 2>/dev/null || true' EXIT
export AWS_ENDPOINT_URL=http://127.0.0.1:$port AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \
  AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true
for _ in $(seq 100); do
  curl -fs "$AWS_ENDPOINT_URL/_fleetguard/health" >/dev/null 2>&1 && break
  sleep 0.1
done
# The tables and the fleet policy (from infra/template.yaml), then the functions' environment with a
# throwaway operator JWKS (public key only; the demo shows the operator flow with a key of its own).
env_lines=$("${fleetctl[@]}" --stack "$stack" setup-local --env)
eval "$env_lines"
