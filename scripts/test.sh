#!/usr/bin/env bash
# Install what is missing, then run the linters and the whole test suite.
# Extra arguments go to pytest, e.g. scripts/test.sh tests/unit -x
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VIDQUEUE_VENV:-$ROOT/.venv}"
cd "$ROOT"

VIDQUEUE_WITH_BROWSER="${VIDQUEUE_WITH_BROWSER:-1}" bash scripts/bootstrap.sh
if [[ -z "${VIDQUEUE_TF_PLUGIN_DIR:-}" ]]; then mirror="$(find / -maxdepth 4 -type d -name registry.terraform.io -not -path '*/.terraform/*' 2>/dev/null | head -1 || true)"; [[ -z "$mirror" ]] || export VIDQUEUE_TF_PLUGIN_DIR="${mirror%/*}"; fi  # offline terraform providers

"$VENV/bin/ruff" check .
"$VENV/bin/ruff" format --check .
exec "$VENV/bin/pytest" "$@"
