#!/usr/bin/env bash
# Start a private single-host SLURM cluster (with accounting, so `sacct` works) from nothing.
#
#   sudo cluster/slurm/start.sh STATE_DIR [--max-array-size N] [--nodes K] [--cpus N]
#                                         [--gpus N] [--timeout SECONDS]
#   source STATE_DIR/cluster.env        # exports SLURM_CONF; then sinfo, sbatch, sacct, submitit...
#   sudo cluster/slurm/stop.sh STATE_DIR
#
# Everything lives in STATE_DIR: its own munged (own key and socket), its own MariaDB (own datadir,
# socket and port), slurmdbd, slurmctld and K slurmd's (virtual nodes vtp1..vtpK, partition `debug`).
# Nothing system-wide is touched, so several such clusters (and a real one) can run side by side;
# ports are drawn at random in 20000-31999 (below Linux's ephemeral range, away from SLURM's
# defaults 6817-6819) and checked free. Every daemon runs as root (SlurmUser root), which also
# lets STATE_DIR sit in a folder other users cannot enter (e.g. pytest's 0700 tmp dirs).
# ClusterName is drawn once per STATE_DIR and remembered (slurmctld refuses a renamed cluster), so
# the same STATE_DIR can be stopped and started again with its job history.
#
# Needs root and Debian's packages: munge slurmctld slurmd slurm-client slurmdbd mariadb-server.
# Waits (bounded by --timeout, default 90 s) until the nodes are idle and sacct answers; on failure
# prints the log tails, stops what it started and exits 1. Starting an already running STATE_DIR
# is a no-op.
set -euo pipefail

usage() { sed -n '2,8p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
die() { echo "[slurm] error: $*" >&2; exit 1; }

[[ $# -ge 1 && $1 != -* ]] || usage
state_arg=$1; shift
max_array_size=1001 nodes=1 cpus=$(nproc) gpus=0 timeout=90
while [[ $# -gt 0 ]]; do
    case $1 in
        --max-array-size) max_array_size=$2; shift 2 ;;
        --nodes) nodes=$2; shift 2 ;;
        --cpus) cpus=$2; shift 2 ;;
        --gpus) gpus=$2; shift 2 ;;
        --timeout) timeout=$2; shift 2 ;;
        *) usage ;;
    esac
done
for v in max_array_size nodes cpus gpus timeout; do
    [[ ${!v} =~ ^[0-9]+$ ]] || die "--${v//_/-} must be a non-negative integer, got '${!v}'"
done
((nodes >= 1 && cpus >= 1 && max_array_size >= 1)) || die "--nodes, --cpus, --max-array-size must be >= 1"

[[ $(id -u) == 0 ]] || die "must run as root (slurmd and the job steps run as root)"
for bin in munged munge mariadbd mariadb-install-db mariadb slurmdbd slurmctld slurmd sinfo sacct sacctmgr scontrol; do
    command -v "$bin" >/dev/null || die "'$bin' not found; install: apt-get install munge slurmctld slurmd slurm-client slurmdbd mariadb-server"
done

mkdir -p "$state_arg"
S=$(cd "$state_arg" && pwd -P)
# Unix socket names (munge, MariaDB) are limited to 107 bytes.
((${#S} <= 80)) || die "STATE_DIR path is too long for the sockets inside it (${#S} > 80 chars): $S"
here=$(cd "$(dirname "$0")" && pwd -P)
# shellcheck source=cluster/slurm/lib.sh
source "$here/lib.sh"

if all_running "$S"; then
    echo "[slurm] already running in $S (source $S/cluster.env)"
    exit 0
fi
if any_running "$S"; then
    die "some daemons of $S are running and some are not; run: $here/stop.sh $S"
fi

mkdir -p "$S"/{etc,pids,run,log,ctld,spool,munge,db}
chmod 711 "$S/munge"  # munged insists that its socket's folder is searchable by all
rm -f "$S"/pids/*.pid

deadline=$((SECONDS + timeout))
launched=()
exec 3>&2  # fail() reports on the real stderr even when called from inside wait_for's redirection
fail() {
    {
        echo "[slurm] error: $*"
        for f in "$S"/munge/munged.log "$S"/db/mariadb.log "$S"/log/*.log "$S"/log/*.out; do
            [[ -s $f ]] || continue
            echo "----- tail $f"
            tail -n 15 "$f"
        done
        "$here/stop.sh" "$S" || true
    } >&3 2>&1
    exit 1
}
trap 'fail "interrupted"' INT TERM
wait_for() {  # wait_for WHAT CMD...: retry CMD until it succeeds or the deadline passes
    local what=$1 name; shift
    until "$@" >/dev/null 2>&1; do
        ((SECONDS < deadline)) || fail "timed out after ${timeout}s waiting for $what"
        for name in "${launched[@]}"; do  # a daemon that died (e.g. port taken) is reported at once
            pid_alive "$S" "$S/pids/$name.pid" || fail "$name exited during start-up (see $S/log/$name.out)"
        done
        sleep 0.25
    done
}
# launch NAME CMD...: run a daemon in the foreground of its own session, record its PID.
launch() {
    local name=$1; shift
    setsid "$@" </dev/null >>"$S/log/$name.out" 2>&1 3>&- &
    echo $! >"$S/pids/$name.pid"
    launched+=("$name")
}

# ---- identity, ports, secrets (the name and DB password are kept across restarts)
[[ -s $S/cluster_name ]] || echo "vtp$(head -c 4 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$S/cluster_name"
cluster=$(cat "$S/cluster_name")
[[ -s $S/db/password ]] || (umask 077 && head -c 18 /dev/urandom | base64 | tr -d '/+=' >"$S/db/password")
db_password=$(cat "$S/db/password")
read -r db_port dbd_port ctld_port node_ports < <(free_ports $((3 + nodes)))
read -ra node_ports <<<"$node_ports"

# ---- munged: a private one, with its own key and socket
munge_sock=$S/munge/munge.sock
if [[ ! -s $S/munge/munge.key ]]; then
    (umask 077 && head -c 1024 /dev/urandom >"$S/munge/munge.key")
fi
chmod 400 "$S/munge/munge.key"
# --force: munged as root warns about (and otherwise refuses) a socket path others cannot reach.
launch munged munged --foreground --force --socket="$munge_sock" --key-file="$S/munge/munge.key" \
    --pid-file="$S/run/munged.pid" --seed-file="$S/munge/munged.seed" --log-file="$S/munge/munged.log"
wait_for munged munge -S "$munge_sock" -n

# ---- MariaDB: private datadir, socket and port; runs as root so STATE_DIR's permissions never matter
if [[ ! -d $S/db/data/mysql ]]; then
    mariadb-install-db --no-defaults --user=root --datadir="$S/db/data" --skip-test-db \
        --auth-root-authentication-method=socket >"$S/log/mariadb-install.out" 2>&1 ||
        fail "mariadb-install-db failed (see $S/log/mariadb-install.out)"
fi
launch mariadb mariadbd --no-defaults --user=root --datadir="$S/db/data" --socket="$S/db/mysql.sock" \
    --port="$db_port" --bind-address=127.0.0.1 --skip-name-resolve --pid-file="$S/run/mariadb.pid" \
    --log-error="$S/db/mariadb.log" --innodb-buffer-pool-size=32M --innodb-log-file-size=16M \
    --max-connections=50 --performance-schema=OFF
wait_for mariadb mariadb --no-defaults --socket="$S/db/mysql.sock" -u root -e 'select 1'
mariadb --no-defaults --socket="$S/db/mysql.sock" -u root -e "
    CREATE USER IF NOT EXISTS 'slurm'@'127.0.0.1' IDENTIFIED BY '$db_password';
    GRANT ALL ON slurm_acct_db.* TO 'slurm'@'127.0.0.1';" || fail "could not create the slurm DB user"

# ---- configuration files
write_configs "$S" "$cluster" "$db_port" "$dbd_port" "$ctld_port" "$max_array_size" "$cpus" "$gpus" \
    "$db_password" "${node_ports[@]}"
export SLURM_CONF=$S/etc/slurm.conf
printf 'export SLURM_CONF=%q\n' "$SLURM_CONF" >"$S/cluster.env"

# ---- slurmdbd, then slurmctld (which registers the cluster in slurmdbd), then the nodes
launch slurmdbd slurmdbd -D
wait_for slurmdbd sacctmgr -n -P show cluster
launch slurmctld slurmctld -D -i -f "$SLURM_CONF"
wait_for slurmctld scontrol ping
for ((i = 1; i <= nodes; i++)); do
    mkdir -p "$S/spool/vtp$i"
    launch "slurmd-vtp$i" slurmd -D -N "vtp$i" -f "$SLURM_CONF"
done
nodes_idle() {
    local states
    states=$(sinfo -h -N -p debug -o '%t') || return 1
    if grep -qE 'drain|drng|inval|fail' <<<"$states"; then
        # A node refused at registration never becomes idle: say why now instead of timing out.
        fail "node(s) not usable: $(sinfo -h -N -R -o '%N: %E' | tr '\n' ';')"
    fi
    [[ $(grep -c '^idle$' <<<"$states") == "$nodes" ]]
}
wait_for "$nodes idle node(s) in sinfo" nodes_idle
cluster_known() { sacctmgr -n -P show cluster format=cluster | grep -qx "$cluster"; }
wait_for "cluster $cluster registered in slurmdbd" cluster_known
wait_for sacct sacct -n -X -a

echo "[slurm] cluster $cluster up in ${SECONDS}s: $nodes node(s) x $cpus cpu(s), MaxArraySize=$max_array_size"
echo "[slurm] source $S/cluster.env   # SLURM_CONF=$SLURM_CONF"
