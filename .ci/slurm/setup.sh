#!/usr/bin/env bash
# A one-node SLURM cluster on localhost for CI (issue 6): Debian's slurm-wlm and
# munge, started as plain background daemons (no systemd), no accounting.
# Idempotent: rerunning it reuses the packages, key and configuration, and
# restarts nothing that is already up. Needs root (apt-get, /etc, /run).
#   .ci/slurm/setup.sh      # then: sinfo; squeue; .ci/slurm/teardown.sh
set -euo pipefail

STATE=${SLURM_CI_STATE:-/var/lib/sepher-ci-slurm}   # spool, state, daemon logs
CONF=/etc/slurm/slurm.conf
WAIT_S=${SLURM_CI_WAIT_S:-60}
export DEBIAN_FRONTEND=noninteractive

say() { echo "[slurm-ci] $*"; }

if [[ $(id -u) -ne 0 ]]; then
    echo "[slurm-ci] needs root (apt-get, /etc/slurm, /run/munge)" >&2
    exit 1
fi

# 1. Packages (Debian's: slurmctld + slurmd + client tools, munge).
if ! command -v slurmctld >/dev/null || ! command -v slurmd >/dev/null \
    || ! command -v munged >/dev/null || ! command -v sinfo >/dev/null; then
    say "installing slurm-wlm munge"
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends slurm-wlm munge >/dev/null
fi

# 2. Munge: a key readable by the munge user only, then munged as that user.
install -d -m 0700 -o munge -g munge /etc/munge /var/lib/munge /var/log/munge
install -d -m 0755 -o munge -g munge /run/munge
if [[ ! -s /etc/munge/munge.key ]]; then
    say "creating the munge key"
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
fi
chown munge:munge /etc/munge/munge.key
chmod 0400 /etc/munge/munge.key
if ! munge -n 2>/dev/null | unmunge >/dev/null 2>&1; then
    say "starting munged"
    runuser -u munge -- /usr/sbin/munged --force
    for _ in $(seq 1 20); do
        munge -n 2>/dev/null | unmunge >/dev/null 2>&1 && break
        sleep 0.5
    done
    munge -n | unmunge >/dev/null
fi

# 3. slurm.conf: one node, this machine's real CPUs and memory (slurmd -C),
#    all traffic on localhost, no cgroups, no accounting database.
install -d -m 0755 /etc/slurm "$STATE" "$STATE/ctld" "$STATE/d" "$STATE/log"
node_line=$(slurmd -C | grep '^NodeName=' | head -n 1)
cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node_line")
boards=$(sed -n 's/.*Boards=\([0-9]*\).*/\1/p' <<<"$node_line")
sockets=$(sed -n 's/.*SocketsPerBoard=\([0-9]*\).*/\1/p' <<<"$node_line")
cores=$(sed -n 's/.*CoresPerSocket=\([0-9]*\).*/\1/p' <<<"$node_line")
threads=$(sed -n 's/.*ThreadsPerCore=\([0-9]*\).*/\1/p' <<<"$node_line")
memory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node_line")
new_conf=$(cat <<CONF
# Written by .ci/slurm/setup.sh: a one-node cluster on localhost for CI.
ClusterName=sepher-ci
SlurmctldHost=localhost(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
CredType=cred/munge
SlurmctldPort=6817
SlurmdPort=6818
StateSaveLocation=$STATE/ctld
SlurmdSpoolDir=$STATE/d
SlurmctldPidFile=$STATE/slurmctld.pid
SlurmdPidFile=$STATE/slurmd.pid
SlurmctldLogFile=$STATE/log/slurmctld.log
SlurmdLogFile=$STATE/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SwitchType=switch/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MinJobAge=300
InactiveLimit=0
KillWait=30
Waittime=0
SlurmctldTimeout=120
SlurmdTimeout=300
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus Boards=$boards SocketsPerBoard=$sockets CoresPerSocket=$cores ThreadsPerCore=$threads RealMemory=$memory State=UNKNOWN
PartitionName=debug Nodes=localhost Default=YES MaxTime=INFINITE State=UP
CONF
)
if [[ ! -f $CONF ]] || [[ "$(cat "$CONF")" != "$new_conf" ]]; then
    say "writing $CONF (CPUs=$cpus RealMemory=${memory}MB)"
    printf '%s\n' "$new_conf" >"$CONF"
fi

# 4. The daemons, unless already running (pid file names a live process).
running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }
if ! running "$STATE/slurmctld.pid"; then
    say "starting slurmctld"
    slurmctld -f "$CONF"          # daemonises, writes SlurmctldPidFile
fi
if ! running "$STATE/slurmd.pid"; then
    say "starting slurmd"
    slurmd -f "$CONF" -N localhost
fi

# 5. Wait until the node is idle (or mixed/allocated by an earlier run).
for _ in $(seq 1 "$WAIT_S"); do
    state=$(sinfo -h -N -n localhost -o '%t' 2>/dev/null || true)
    case $state in
        idle | mix | alloc) break ;;
        down* | drain* | fail*) scontrol update NodeName=localhost State=RESUME 2>/dev/null || true ;;
    esac
    sleep 1
done
state=$(sinfo -h -N -n localhost -o '%t' 2>/dev/null || true)
if [[ $state != idle && $state != mix && $state != alloc ]]; then
    echo "[slurm-ci] node not idle after ${WAIT_S}s (state '$state'); daemon logs:" >&2
    tail -n 30 "$STATE/log/slurmctld.log" "$STATE/log/slurmd.log" >&2 || true
    exit 1
fi
say "cluster up: $(sinfo -h -N -o '%N %P %t cpus=%c mem=%mMB')"
