#!/usr/bin/env bash
# The whole test suite: formatting, lints, unit tests, and integration tests against the local emulator
# (each test binary starts its own emulator on 127.0.0.1).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
scripts/setup.sh
echo "==> cargo fmt --check"
cargo fmt --all -- --check
scripts/feature-set.sh
echo "==> cargo clippy"
cargo clippy --workspace --all-targets -- -D warnings
echo "==> cfn-lint infra/template.yaml"
AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} .venv/bin/cfn-lint infra/template.yaml
echo "==> cargo test"
cargo test --workspace
echo "==> all tests passed"
