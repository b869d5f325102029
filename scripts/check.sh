#!/usr/bin/env bash
# The loop without the emulator: format, clippy on every target (as scripts/test.sh lints: clippy-driver
# compiles our crates while the tests build, so the dependencies compile once, in the same target dir),
# and the tests that need no AWS stand-in (the domain over its fakes, the policy engine, the test kit,
# fleetctl's unit tests with the documentation checks). scripts/test.sh runs everything.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all -- --check
if driver=$(rustup which clippy-driver 2>/dev/null) && [ -x "$driver" ]; then
  export RUSTC_WORKSPACE_WRAPPER=$driver
  export CLIPPY_ARGS=-D__CLIPPY_HACKERY__warnings__CLIPPY_HACKERY__
  cargo test --workspace --all-targets --no-run
else
  cargo clippy --workspace --all-targets -- -D warnings
fi
cargo test -p fleetguard-domain -p iot-policy -p fleetguard-testkit
cargo test -p fleetctl --bin fleetctl
