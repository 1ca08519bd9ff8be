#!/usr/bin/env bash
# One-time set-up, safe to re-run: system packages (when root) and the project venv in .venv.
#   VTP_TORCH   pip requirement(s) for torch; default pins the CPU-capable build used in CI.
#               On a GPU cluster install your CUDA torch into .venv first and set VTP_TORCH="".
#   VTP_SYSTEM  "1" (default when root) installs Debian's slurm/munge/mariadb/chromium for tests.
set -euo pipefail
cd "$(dirname "$0")/.."

VTP_TORCH=${VTP_TORCH-"torch==2.14.1 torchvision==0.29.1"}
want_system=${VTP_SYSTEM:-auto}

system_packages=(munge slurmctld slurmd slurm-client slurmdbd mariadb-server chromium)
if [[ "$want_system" == 1 || ( "$want_system" == auto && $(id -u) == 0 ) ]]; then
    missing=()
    for p in "${system_packages[@]}"; do
        dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
    done
    if ((${#missing[@]})); then
        echo "[setup] apt-get install ${missing[*]}"
        apt-get update -q >/dev/null
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null
    fi
fi

# uv installs the same resolution as pip in a fraction of the time (measured on a 2-core machine from
# local wheel mirrors: 1.5 min against pip's 3.3 min; the demo's 30-minute budget includes set-up). It
# does not read pip's configuration, so pip's sources (index-url, extra-index-url, find-links,
# constraint: a cluster's mirror, a torch cap) are handed to it, and `unsafe-best-match` makes it pick,
# as pip does, the best version over all of them rather than the first index that has the package.
# --compile-bytecode as pip does: without .pyc files (and with PYTHONDONTWRITEBYTECODE set, as on
# some machines) every job would compile torch and mlflow again (`import torch` 6.5 s instead of 2.2 s).
pip_setting() {  # the value of one pip setting (global/install section or PIP_* variable), or nothing
    .venv/bin/python -m pip config list 2>/dev/null | sed -n "s/^[^.]*\.$1='\(.*\)'\$/\1/p" | tail -1
}
install_with_uv() {
    .venv/bin/python -m pip install -q --no-cache-dir uv >/dev/null 2>&1 || return 1
    local args=(--python .venv/bin/python --no-cache --index-strategy unsafe-best-match) v
    v=$(pip_setting index-url); [[ -n "$v" ]] && args+=(--index-url "$v")
    for v in $(pip_setting extra-index-url); do args+=(--extra-index-url "$v"); done
    for v in $(pip_setting find-links); do args+=(--find-links "$v"); done
    for v in $(pip_setting constraint); do args+=(--constraint "$v"); done
    v=$(pip_setting cert); [[ -n "$v" ]] && export SSL_CERT_FILE="$v"
    .venv/bin/uv pip install -q --compile-bytecode "${args[@]}" "$@"
}

# The stamp records what was installed, so a re-run with an unchanged pyproject costs nothing.
stamp=".venv/.vtp-installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [[ ! -f "$stamp" ]]; then
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    echo "[setup] installing the project into .venv (first time: about a minute)"
    # shellcheck disable=SC2086
    if ! install_with_uv $VTP_TORCH -e '.[dev]'; then
        echo "[setup] uv was not available or failed; installing with pip (a few minutes)"
        # --no-cache-dir: where the wheels come over the network, pip's cache would keep a second copy
        # of torch's CUDA libraries (~4 GB) beside the venv.
        .venv/bin/python -m pip install -q --no-cache-dir --upgrade pip
        # One command, so pip resolves torch and torchvision together (see shared notes).
        # shellcheck disable=SC2086
        .venv/bin/python -m pip install -q --no-cache-dir $VTP_TORCH -e '.[dev]'
    fi
    rm -f .venv/.vtp-installed-*
    touch "$stamp"
fi
