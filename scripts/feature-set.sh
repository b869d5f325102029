#!/usr/bin/env bash
# Checks that every build that links the AWS SDK (one function, as `sam build` and `cargo lambda`
# build it; fleetctl; the test harness) resolves the same features as the whole workspace (as
# `cargo test --workspace` does), so the SDK is compiled once. Prints any crate whose features differ
# (add it to shared/feature-set/Cargo.toml) and fails.
set -euo pipefail
cd "$(dirname "$0")/.."
tree() { cargo tree --offline "$@" --prefix none -f '{p}|{f}' 2>/dev/null | sed 's/ (\*)//g' | sort -u; }
all=$(tree --workspace -e normal,build,dev)
status=0
for pkg in provisioner provisioning-hook delete-record revoker authorizer handshake-validator fleetctl fleetguard-aws; do
  diff=$(comm -23 <(tree -p "$pkg" -e normal,build) <(echo "$all") || true)
  if [ -n "$diff" ]; then
    echo "$pkg: features differ from the workspace's (add them to shared/feature-set):" >&2
    echo "$diff" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "==> one feature set: every build of the AWS SDK reuses the workspace's artifacts"
exit "$status"
