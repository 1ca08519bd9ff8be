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

# The stamp records what was installed, so a re-run with an unchanged pyproject costs nothing.
stamp=".venv/.vtp-installed-$(cat pyproject.toml | sha1sum | cut -c1-12)"
if [[ ! -f "$stamp" ]]; then
    [[ -x .venv/bin/python ]] || python3 -m venv .venv
    echo "[setup] installing the project into .venv (first time: a few minutes)"
    # --no-cache-dir: where the wheels come over the network, pip's cache would keep a second copy
    # of torch's CUDA libraries (~4 GB) beside the venv.
    .venv/bin/python -m pip install -q --no-cache-dir --upgrade pip
    # One command, so pip resolves torch and torchvision together (see shared notes).
    # shellcheck disable=SC2086
    .venv/bin/python -m pip install -q --no-cache-dir $VTP_TORCH -e '.[dev]'
    rm -f .venv/.vtp-installed-*
    touch "$stamp"
fi
