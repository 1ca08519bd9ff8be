#!/usr/bin/env bash
# The test suite, set-up included. Services (SLURM, munge, MariaDB, mlflow server) are started
# and stopped by the pytest session fixtures themselves; nothing is left running.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
export RAY_AUTH_MODE=disabled PYTHONUNBUFFERED=1
# As root (CI) the SLURM tests and the report's Chromium render must run, not skip: they fail
# if they cannot start a cluster or find the browser (setup.sh installs both as root).
if [[ $(id -u) == 0 ]]; then
  export VTP_REQUIRE_SLURM=${VTP_REQUIRE_SLURM:-1} VTP_REQUIRE_CHROMIUM=${VTP_REQUIRE_CHROMIUM:-1}
fi
.venv/bin/ruff check vtp cluster analysis tests benchmarks
exec .venv/bin/python -m pytest -q -ra --durations=20 "$@"  # the slowest 20: where CI time goes
