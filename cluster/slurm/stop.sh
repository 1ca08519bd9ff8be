#!/usr/bin/env bash
# Stop the private cluster that cluster/slurm/start.sh started in STATE_DIR.
#
#   sudo cluster/slurm/stop.sh STATE_DIR
#
# Cancels the cluster's jobs (so no job step outlives its slurmd), then stops each daemon by the
# PID recorded in STATE_DIR/pids -- never by name, other clusters may be running -- in reverse
# start order, and waits for each to exit (SIGKILL after 15 s). STATE_DIR is kept: start.sh on it
# again brings back the same cluster with its job history. Safe to run twice.
set -euo pipefail

[[ $# == 1 && $1 != -* ]] || { sed -n '2,4p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
[[ -d $1 ]] || { echo "[slurm] no such state folder: $1" >&2; exit 1; }
S=$(cd "$1" && pwd -P)
here=$(cd "$(dirname "$0")" && pwd -P)
# shellcheck source=cluster/slurm/lib.sh
source "$here/lib.sh"

stop_pid() {  # stop_pid NAME: SIGTERM, wait up to 15 s, then SIGKILL
    local name=$1 pidfile=$S/pids/$1.pid i
    pid_alive "$S" "$pidfile" || { rm -f "$pidfile"; return 0; }
    kill -TERM "$(<"$pidfile")" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
        pid_alive "$S" "$pidfile" || { rm -f "$pidfile"; return 0; }
        sleep 0.25
    done
    echo "[slurm] $name did not stop on SIGTERM within 15 s; killing it" >&2
    kill -KILL "$(<"$pidfile")" 2>/dev/null || true
    for ((i = 0; i < 20; i++)); do
        pid_alive "$S" "$pidfile" || { rm -f "$pidfile"; return 0; }
        sleep 0.25
    done
    echo "[slurm] $name (pid $(<"$pidfile")) is still alive" >&2
    return 1
}

if pid_alive "$S" "$S/pids/slurmctld.pid" && [[ -f $S/etc/slurm.conf ]]; then
    export SLURM_CONF=$S/etc/slurm.conf
    jobs=$(squeue -h -o %A 2>/dev/null | tr '\n' ' ') || jobs=""
    if [[ -n ${jobs// /} ]]; then
        # shellcheck disable=SC2086  # one job id per word
        scancel $jobs 2>/dev/null || true
        for ((i = 0; i < 60; i++)); do
            [[ -z $(squeue -h -t R,CG -o %A 2>/dev/null) ]] && break
            sleep 0.25
        done
    fi
fi

status=0
for f in "$S"/pids/slurmd-*.pid; do
    [[ -e $f ]] || continue
    name=$(basename "$f" .pid)
    stop_pid "$name" || status=1
done
for name in slurmctld slurmdbd mariadb munged; do
    stop_pid "$name" || status=1
done
((status == 0)) && echo "[slurm] stopped $S"
exit $status
