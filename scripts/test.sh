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
# Clippy lints the workspace while the tests build: clippy-driver compiles our crates (lints, then
# code) and plain rustc the dependencies, so the dependencies (the AWS SDK) compile once, not once in
# check mode for `cargo clippy` and again for the tests. Same lints as `cargo clippy --workspace
# --all-targets -- -D warnings` (the test build covers every target); a lint fails the build.
# Without clippy-driver on this toolchain, the separate `cargo clippy` runs instead.
if driver=$(rustup which clippy-driver 2>/dev/null) && [ -x "$driver" ]; then
  export RUSTC_WORKSPACE_WRAPPER=$driver
  export CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
else
  echo "==> cargo clippy"
  cargo clippy --workspace --all-targets -- -D warnings
fi
# The build starts now, beside the Python tools' install; the tests run once both are done.
echo "==> cargo build of every target (linted by clippy as it builds)"
cargo test --workspace --all-targets --no-run
if ! wait "$setup"; then
  cat target/setup.log >&2
  exit 1
fi
cat target/setup.log
echo "==> cfn-lint infra/template.yaml"
AWS_DEFAULT_REGION=${AWS_DEFAULT_REGION:-us-east-1} .venv/bin/cfn-lint infra/template.yaml
echo "==> cargo test (every target, linted by clippy as it builds)"
# Each test binary's emulator records what every function's role used and was refused here.
rm -rf target/iam-usage
cargo test --workspace --all-targets
cargo test --workspace --doc
echo "==> IAM: each role's grants against what the suite used (scripts/iam-report.sh)"
scripts/iam-report.sh --check
echo "==> all tests passed"
