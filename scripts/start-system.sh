#!/usr/bin/env bash
# Install what is missing, then run the whole system locally (vidqueue dev):
# its own redis-server and S3 server unless VIDQUEUE_REDIS_URL /
# VIDQUEUE_S3_ENDPOINT point elsewhere, the API, the poller and a worker.
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${VIDQUEUE_VENV:-$ROOT/.venv}"
cd "$ROOT"

bash scripts/bootstrap.sh
exec "$VENV/bin/vidqueue" dev "$@"
