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
# The tables, the fleet policy, the quarantine group, the fleet CA and each function's role (from
# infra/template.yaml, enforced by the emulator), then the functions' environment as the template sets it,
# with a throwaway operator JWKS (public key only; the demo brings a key of its own). `setup_local_args`
# (an array, optional) passes the template parameters the caller sets (dev.sh: the gateway's data plane).
env_lines=$("${fleetctl[@]}" --stack "$stack" setup-local --env ${setup_local_args[@]+"${setup_local_args[@]}"})
eval "$env_lines"
# The same for another terminal: `source target/local-env.sh`, then fleetctl runs as an operator, under
# the template's OperatorPolicy (the emulator maps the key FGLOCALFLEETCTL and this stack's session
# token to it), as it would with an operator's own AWS credentials.
{
  echo "$env_lines"
  echo "export AWS_ENDPOINT_URL=$AWS_ENDPOINT_URL AWS_REGION=us-east-1 AWS_DEFAULT_REGION=us-east-1 \\"
  echo "  AWS_ACCESS_KEY_ID=FGLOCALFLEETCTL AWS_SECRET_ACCESS_KEY=testing AWS_EC2_METADATA_DISABLED=true \\"
  echo "  FLEETGUARD_STACK=$stack"
} > target/local-env.sh
