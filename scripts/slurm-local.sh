#!/usr/bin/env bash
# A real one-node Slurm on this machine, for the Slurm launcher's integration test and for
# trying `runner sweep FILE --launcher slurm` without a cluster.
#
#   scripts/slurm-local.sh up      install (once) and start it; prints `export SLURM_CONF=...`
#   scripts/slurm-local.sh down    stop it
#   eval "$(scripts/slurm-local.sh up)"   start it and point this shell's sbatch/squeue at it
#
# Debian's slurmctld, slurmd and slurm-client (22.05 on bookworm) are installed with
# --no-install-recommends when missing (needs root or sudo). No munge: AuthType=auth/none and
# CredType=cred/none; no accounting database (squeue -t all sees finished jobs for
# MinJobAge = 1 h). One node, `localhost` at 127.0.0.1, with this machine's cores. Both daemons
# run in the foreground mode (-D), started in the background by this script, which keeps their
# PIDs (the daemonising mode leaves zombies in containers where PID 1 reaps nothing).
# Everything else lives in $SCORELAB_SLURM_DIR (default ~/.cache/scorelab-slurm): slurm.conf,
# cgroup.conf, state, spool, logs, PID files. SCORELAB_SLURM_PORT (default 6817) moves the
# controller's port; slurmd listens on the next one.
set -euo pipefail

dir="${SCORELAB_SLURM_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/scorelab-slurm}"
port="${SCORELAB_SLURM_PORT:-6817}"
conf="$dir/slurm.conf"

say() { echo "slurm-local: $*" >&2; }

as_root() {
    if [ "$(id -u)" = 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
        say "installing Slurm needs root (or sudo): $*"
        exit 1
    fi
}

install() {
    if command -v slurmctld >/dev/null && command -v slurmd >/dev/null && command -v sbatch >/dev/null; then
        return
    fi
    if ! command -v apt-get >/dev/null; then
        say "slurmctld, slurmd and sbatch are not installed and there is no apt-get to install them. Fix: install Slurm (22.05 or newer) with your package manager"
        exit 1
    fi
    say "installing slurmctld slurmd slurm-client (Debian, --no-install-recommends)"
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
        slurmctld slurmd slurm-client >&2 ||
        { as_root apt-get update -q >&2 && as_root env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y -q --no-install-recommends slurmctld slurmd slurm-client >&2; }
}

alive() { [ -f "$1" ] && kill -0 "$(cat "$1")" 2>/dev/null; }

write_config() {
    mkdir -p "$dir/state" "$dir/spool" "$dir/log"
    local cpus user
    cpus=$(nproc)
    user=$(id -un)
    cat >"$conf" <<EOF
# Written by scripts/slurm-local.sh: a one-node Slurm for tests, no munge, no accounting.
ClusterName=scorelab
SlurmctldHost=localhost(127.0.0.1)
SlurmctldPort=$port
SlurmdPort=$((port + 1))
SlurmUser=$user
SlurmdUser=$user
AuthType=auth/none
CredType=cred/none
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
SchedulerType=sched/backfill
SchedulerParameters=batch_sched_delay=0
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc=$dir/log/jobcomp.txt
MinJobAge=3600
MaxArraySize=10001
InactiveLimit=0
KillWait=5
Waittime=0
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
    cat >"$dir/cgroup.conf" <<EOF
CgroupPlugin=cgroup/v1
EOF
}

up() {
    install
    if alive "$dir/slurmctld.pid.run" && alive "$dir/slurmd.pid.run"; then
        say "already running ($dir)"
    else
        down_quietly
        write_config
        # -D: foreground (no daemonising). The state of an earlier run is recovered, so job
        # ids keep growing and results folders never see an old id given to a new job.
        nohup slurmctld -D -f "$conf" >>"$dir/log/slurmctld.out" 2>&1 </dev/null &
        echo $! >"$dir/slurmctld.pid.run"
        nohup slurmd -D -N localhost -f "$conf" >>"$dir/log/slurmd.out" 2>&1 </dev/null &
        echo $! >"$dir/slurmd.pid.run"
    fi
    export SLURM_CONF="$conf"
    local waited=0
    until sinfo -h -n localhost -o %T 2>/dev/null | grep -qx 'idle\|mixed\|allocated'; do
        if [ "$waited" -ge 300 ]; then
            say "the node did not become idle in 30 s; logs in $dir/log:"
            tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" "$dir/log/"*.out >&2 || true
            exit 1
        fi
        if ! alive "$dir/slurmctld.pid.run" || ! alive "$dir/slurmd.pid.run"; then
            say "a daemon exited; logs in $dir/log:"
            tail -n 20 "$dir/log/slurmctld.log" "$dir/log/slurmd.log" "$dir/log/"*.out >&2 || true
            exit 1
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    say "up: node localhost idle after $((waited / 10)).$((waited % 10)) s (logs in $dir/log)"
    echo "export SLURM_CONF=$conf"
}

down_quietly() {
    if [ -f "$conf" ]; then
        SLURM_CONF="$conf" timeout 10 scontrol shutdown >/dev/null 2>&1 || true
    fi
    for name in slurmctld slurmd; do
        local pidfile="$dir/$name.pid.run"
        [ -f "$pidfile" ] || continue
        local pid waited=0
        pid=$(cat "$pidfile")
        while kill -0 "$pid" 2>/dev/null && [ "$waited" -lt 100 ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            sleep 0.5
            kill -9 "$pid" 2>/dev/null || true
        fi
        # Reaped here when it was started by this shell; otherwise gone with its exit.
        wait "$pid" 2>/dev/null || true
        rm -f "$pidfile"
    done
}

case "${1:-}" in
up) up ;;
down)
    down_quietly
    say "down"
    ;;
*)
    echo "usage: $0 up|down" >&2
    exit 2
    ;;
esac
