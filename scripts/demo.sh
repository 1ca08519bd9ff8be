#!/usr/bin/env bash
# The main job on the embedded default: local executor, MLflow SQLite store in the sweep folder,
# the built-in offline dataset. Set-up included; re-running skips every finished run.
#   bash scripts/demo.sh [SPEC] [key=value overrides...]   (default spec: sweeps/mini.yaml; 15.5 min measured on 2 cores, ~34 projected on a 2x slower machine: README)
# It launches the sweep and waits (a live table per stage, a progress bar per running run), exports
# the MLflow store to a Parquet snapshot, fits the laws, writes the report, prints its summary and
# path. Killed, it is simply run again: finished runs are skipped, the others resume or restart.
#   VTP_REPORT=DIR   write the report there instead of <sweep folder>/report
set -euo pipefail
cd "$(dirname "$0")/.."
VTP_SYSTEM=${VTP_SYSTEM:-0} bash scripts/setup.sh   # the local path needs no system services
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1
spec=${1:-sweeps/mini.yaml}
shift || true
.venv/bin/vtp-sweep launch --wait "$spec" "$@"
folder=$(.venv/bin/vtp-sweep folder "$spec" "$@")
.venv/bin/vtp-analyze export "$folder" -o "$folder/runs.parquet"
report=${VTP_REPORT:-$folder/report}   # docs/mini is regenerated with VTP_REPORT=docs/mini
.venv/bin/vtp-analyze report "$folder/runs.parquet" -o "$report"
echo "report: $report/report.html"
