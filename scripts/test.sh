#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and integration tests against the local emulator
# (each test binary starts its own emulator on 127.0.0.1). The Python tools install (scripts/setup.sh)
# runs beside the formatting and lint steps, which do not need them.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
mkdir -p target
rustup component list --installed 2>/dev/null | grep -q '^clippy' || rustup component add clippy rustfmt >/dev/null 2>&1 || true
scripts/setup.sh > target/setup.log 2>&1 &
setup=$!
trap 'kill "$setup" 2>/dev/null || true' EXIT
echo "==> cargo fmt --check"
cargo fmt --all -- --check
scripts/feature-set.sh
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
if ! wait "$setup"; then
  cat target/setup.log >&2
  exit 1
fi
cat target/setup.log
echo "==> cfn-lint infra/template.yaml"
AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} .venv/bin/cfn-lint infra/template.yaml
echo "==> cargo test"
cargo test --workspace
echo "==> all tests passed"
