#!/usr/bin/env bash
# Checks that every build that links the AWS SDK (one function, as `cargo lambda` builds it, and so
# the eight together, as `sam build` does; fleetctl; the test harness) resolves the same features as
# the whole workspace (as `cargo test --workspace` does), so the SDK is compiled once. Prints any
# crate whose features differ (add it to shared/feature-set/Cargo.toml) and fails. aws-config itself
# is the one exception (see shared/feature-set/Cargo.toml).
set -euo pipefail
cd "$(dirname "$0")/.."
tree() { cargo tree --locked "$@" --prefix none -f '{p}|{f}' | sed 's/ (\*)//g' | sort -u; }
all=$(tree --workspace -e normal,build,dev)
status=0
for pkg in provisioner provisioning-hook delete-record revoker authorizer handshake-validator rotator certificate-watch fleetctl fleetguard-aws; do
  one=$(tree -p "$pkg" -e normal,build)
  [ -n "$one" ] || { echo "$pkg: cargo tree printed nothing" >&2; exit 1; }
  # aws-config alone may differ: fleetctl's credential providers stay out of the functions.
  diff=$(comm -23 <(echo "$one") <(echo "$all") | grep -v '^aws-config ' || true)
  if [ -n "$diff" ]; then
    echo "$pkg: features differ from the workspace's (add them to shared/feature-set):" >&2
    echo "$diff" >&2
    status=1
  fi
done
[ "$status" = 0 ] && echo "==> one feature set: every build of the AWS SDK reuses the workspace's artifacts"
exit "$status"
