#!/usr/bin/env bash
# Per function: the actions its role in infra/template.yaml grants against those the test suite used
# (recorded by the emulator in target/iam-usage/ while scripts/test.sh runs). --check fails on a grant
# the suite never used without an `# untested:` reason in the template, or on a refused action.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
exec "$root/.venv/bin/python" "$root/scripts/iam_report.py" "$@"
