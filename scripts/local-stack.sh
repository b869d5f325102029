# Sourced by scripts/dev.sh and scripts/bench.sh (needs `fleetctl` as an array holding the command to run
# fleetctl): starts the pinned emulator on 127.0.0.1:$FLEETGUARD_EMULATOR_PORT (5000), creates the local
# tables and the fleet policy (from infra/template.yaml), and exports what the functions read. The emulator
# logs to target/emulator-<port>.log.
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
"${fleetctl[@]}" --stack "$stack" setup-local
# The fleet policy exactly as the template deploys it, and a throwaway operator JWKS (public key only;
# the demo shows the operator flow with a key of its own).
jwks=$(.venv/bin/python - "$stack" <<'PY'
import base64, json, sys, boto3, yaml
from cryptography.hazmat.primitives.asymmetric import ec

def resolve(v):
    # Fn::Sub of the template's pseudo parameters, as the emulator's default account would get it.
    if isinstance(v, dict) and list(v) == ["Fn::Sub"]:
        return (v["Fn::Sub"].replace("${AWS::Partition}", "aws").replace("${AWS::Region}", "us-east-1")
                .replace("${AWS::AccountId}", "123456789012").replace("${!", "${"))
    if isinstance(v, dict):
        return {k: resolve(x) for k, x in v.items()}
    if isinstance(v, list):
        return [resolve(x) for x in v]
    return v

doc = yaml.safe_load(open("infra/template.yaml"))
policy = resolve(doc["Resources"]["FleetDevicePolicy"]["Properties"]["PolicyDocument"])
iot = boto3.client("iot")
try:
    iot.create_policy(policyName=sys.argv[1] + "-fleet-device", policyDocument=json.dumps(policy))
except iot.exceptions.ResourceAlreadyExistsException:
    pass
n = ec.generate_private_key(ec.SECP256R1()).public_key().public_numbers()
b = lambda i: base64.urlsafe_b64encode(i.to_bytes(32, "big")).rstrip(b"=").decode()
print(json.dumps({"keys": [{"kty": "EC", "crv": "P-256", "kid": "dev", "alg": "ES256", "use": "sig", "x": b(n.x), "y": b(n.y)}]}))
PY
)
export FLEETGUARD_REGISTRY_TABLE=$stack-registry FLEETGUARD_AUDIT_TABLE=$stack-audit \
  FLEETGUARD_RECORDS_TABLE=$stack-records FLEETGUARD_FLEET_POLICY=$stack-fleet-device \
  FLEETGUARD_SECURITY_TOPIC=fleetguard/security FLEETGUARD_QUARANTINE_GROUP=$stack-quarantine \
  FLEETGUARD_ACCOUNT_ID=123456789012 FLEETGUARD_JWT_ISSUER=https://login.fleetguard.test \
  FLEETGUARD_JWT_AUDIENCE=fleetguard FLEETGUARD_JWKS="$jwks" RUST_LOG=info \
  MALLOC_MMAP_THRESHOLD_=1048576  # as the template sets it for the authorizer (argon2 memory)
