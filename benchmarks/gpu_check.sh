#!/usr/bin/env bash
# The GPU path in one run that finishes within 8 minutes on one GPU (see benchmarks/gpu_check.py):
# preset-B tokenizer bf16 step over measured GEMM and datasheet peak, a DiT-B step, the resume of a
# GPU checkpoint, a 1-process NCCL data-parallel smoke run. `--quick`: the same on the CPU, tiny.
#   bash benchmarks/gpu_check.sh [--quick]
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PYTHON:-$([ -x .venv/bin/python ] && echo .venv/bin/python || echo python3)}"
PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" exec timeout 480 "$PY" benchmarks/gpu_check.py "$@"
