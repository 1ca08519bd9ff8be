#!/usr/bin/env bash
# The main job on the embedded default: local executor, MLflow SQLite store in the sweep folder,
# the built-in offline dataset. Set-up included; re-running skips every finished run.
#   bash scripts/demo.sh [SPEC] [key=value overrides...]   (default spec: sweeps/tiny.yaml)
set -euo pipefail
cd "$(dirname "$0")/.."
VTP_SYSTEM=${VTP_SYSTEM:-0} bash scripts/setup.sh   # the local path needs no system services
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1
spec=${1:-sweeps/tiny.yaml}
shift || true
exec .venv/bin/vtp-sweep launch "$spec" --wait "$@"
