#!/usr/bin/env bash
# Stop the one-node CI cluster started by .ci/slurm/setup.sh: slurmd,
# slurmctld, then munged, each by the pid in its own pid file (nothing else
# is signalled). Safe to run when nothing is up. Packages stay; the
# slurm.conf that setup.sh wrote is removed: with a config naming a
# controller that is down, `scontrol show config` waits 9 s before failing,
# and the SLURM executor plugin runs it each time Snakemake starts (any
# executor), so every later `snakemake` on this machine would start 9 s late.
set -uo pipefail

STATE=${SLURM_CI_STATE:-/var/lib/sepher-ci-slurm}

stop() { # name pidfile
    local pid
    [[ -s $2 ]] || return 0
    pid=$(cat "$2")
    if kill -0 "$pid" 2>/dev/null; then
        echo "[slurm-ci] stopping $1 ($pid)"
        kill -TERM "$pid"
        for _ in $(seq 1 30); do
            kill -0 "$pid" 2>/dev/null || break
            sleep 0.5
        done
        kill -0 "$pid" 2>/dev/null && kill -KILL "$pid"
    fi
    rm -f "$2"
}

# Jobs still queued or running are cancelled first (a failed test may leave some).
command -v scancel >/dev/null && scancel --quiet --user "$(id -un)" 2>/dev/null
stop slurmd "$STATE/slurmd.pid"
stop slurmctld "$STATE/slurmctld.pid"
stop munged /run/munge/munged.pid
CONF=/etc/slurm/slurm.conf
if [[ -f $CONF ]] && head -n 1 "$CONF" | grep -q 'Written by .ci/slurm/setup.sh'; then
    rm -f "$CONF"
fi
exit 0
