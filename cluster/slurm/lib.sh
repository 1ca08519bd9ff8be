# Helpers shared by start.sh and stop.sh (sourced, not run).

# pid_alive STATE PIDFILE: the recorded process exists, is not a zombie, and belongs to STATE
# (its command line or environment names STATE), so a recycled PID is never mistaken for ours.
pid_alive() {
    local S=$1 pidfile=$2 pid state
    [[ -s $pidfile ]] || return 1
    pid=$(<"$pidfile")
    [[ $pid =~ ^[0-9]+$ && -r /proc/$pid/stat ]] || return 1
    state=$(sed 's/^.*) //' 2>/dev/null "/proc/$pid/stat" | cut -d' ' -f1) || return 1
    [[ $state != Z && $state != X ]] || return 1
    tr '\0' '\n' 2>/dev/null <"/proc/$pid/cmdline" | grep -qF "$S" && return 0
    tr '\0' '\n' 2>/dev/null <"/proc/$pid/environ" | grep -qF "$S"
}

any_running() {
    local f
    for f in "$1"/pids/*.pid; do
        pid_alive "$1" "$f" && return 0
    done
    return 1
}

all_running() {
    local f n=0
    for f in "$1"/pids/*.pid; do
        [[ -e $f ]] || continue
        pid_alive "$1" "$f" || return 1
        n=$((n + 1))
    done
    ((n > 0))
}

# free_ports N: N distinct TCP ports in 20000-31999 that nothing listens on now.
free_ports() {
    local want=$1 used p out=()
    used=$(ss -Htan 2>/dev/null | awk '{n = split($4, a, ":"); print a[n]}' | sort -u)
    while ((${#out[@]} < want)); do
        p=$((20000 + (RANDOM * 32768 + RANDOM) % 12000))
        grep -qx "$p" <<<"$used" && continue
        [[ " ${out[*]} " == *" $p "* ]] && continue
        out+=("$p")
    done
    echo "${out[@]}"
}

# render TEMPLATE OUT KEY=VALUE...: copy TEMPLATE to OUT replacing each @KEY@ by VALUE.
render() {
    local template=$1 out=$2 kv script=()
    shift 2
    for kv in "$@"; do
        local v=${kv#*=}
        v=${v//\\/\\\\}; v=${v//|/\\|}; v=${v//&/\\&}
        script+=(-e "s|@${kv%%=*}@|$v|g")
    done
    sed "${script[@]}" "$template" >"$out"
    ! grep -n '@[A-Z_]*@' "$out" >&2 || { echo "[slurm] unfilled placeholder in $out" >&2; return 1; }
}

# write_configs STATE CLUSTER DB_PORT DBD_PORT CTLD_PORT MAX_ARRAY CPUS GPUS DB_PASSWORD NODE_PORT...
write_configs() {
    local S=$1 cluster=$2 db_port=$3 dbd_port=$4 ctld_port=$5 max_array=$6 cpus=$7 gpus=$8 pw=$9
    shift 9
    local here mem_mb names=() gres_line="" i=1 port
    here=$(dirname "${BASH_SOURCE[0]}")
    # Each virtual node claims most of the host's memory: they share it, like they share the cores.
    mem_mb=$(awk '/^MemTotal:/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)
    if ((gpus > 0)); then
        gres_line=" Gres=gpu:$gpus"
    fi
    local nodes_conf=""
    for port in "$@"; do
        nodes_conf+="NodeName=vtp$i NodeHostname=localhost NodeAddr=127.0.0.1 Port=$port CPUs=$cpus RealMemory=$mem_mb$gres_line State=UNKNOWN"$'\n'
        names+=("vtp$i")
        i=$((i + 1))
    done
    local node_list
    node_list=$(IFS=,; echo "${names[*]}")
    render "$here/slurm.conf.in" "$S/etc/slurm.conf" STATE="$S" CLUSTER="$cluster" \
        CTLD_PORT="$ctld_port" DBD_PORT="$dbd_port" MAX_ARRAY_SIZE="$max_array"
    if ((gpus > 0)); then
        printf 'GresTypes=gpu\nAccountingStorageTRES=gres/gpu\n' >>"$S/etc/slurm.conf"
    fi
    printf '%s' "$nodes_conf" >>"$S/etc/slurm.conf"
    echo "PartitionName=debug Nodes=$node_list Default=YES MaxTime=INFINITE State=UP" >>"$S/etc/slurm.conf"
    (umask 077 && render "$here/slurmdbd.conf.in" "$S/etc/slurmdbd.conf" STATE="$S" \
        DBD_PORT="$dbd_port" DB_PORT="$db_port" DB_PASSWORD="$pw")
    chmod 600 "$S/etc/slurmdbd.conf"  # slurmdbd refuses a config others can read
    : >"$S/etc/plugstack.conf"       # no SPANK plugins from the host's /etc/slurm
    : >"$S/etc/gres.conf"
    if ((gpus > 0)); then
        # Stand-in GPUs: SLURM drops file-less GPUs, so each gets a character device that is really
        # /dev/null (1,3). Schedulable and accounted (AllocTRES gres/gpu); no hardware behind them.
        mkdir -p "$S/dev"
        for ((i = 0; i < gpus; i++)); do
            [[ -c $S/dev/gpu$i ]] || mknod "$S/dev/gpu$i" c 1 3
        done
        for port in "${names[@]}"; do
            echo "NodeName=$port Name=gpu File=$S/dev/gpu[0-$((gpus - 1))]" >>"$S/etc/gres.conf"
        done
    fi
}
