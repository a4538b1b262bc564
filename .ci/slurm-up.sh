#!/usr/bin/env bash
# Start a single-node Slurm cluster for the workflow's Slurm test (tests/workflow/test_slurm.py).
#
#   bash .ci/slurm-up.sh [start]   install Debian packages if missing, configure, start; idempotent
#   bash .ci/slurm-up.sh stop      stop the daemons this script started (by pid file)
#   bash .ci/slurm-up.sh status    daemons and sinfo
#
# Exit codes: 0 cluster up (or stopped / status shown), 3 cannot run on this machine (the reason is
# printed: not root, no apt-get/dpkg, packages missing and not installable), 1 anything else.
#
# The cluster: munged + slurmctld + slurmd started directly (no systemd, no cgroups), no accounting
# database, one node (this machine, addressed as 127.0.0.1) in two partitions named like the
# placeholders in profiles/slurm/config.yaml: `cpu` (default) and `gpu`. The node advertises two
# stand-in GPUs (generic resources backed by /dev/null and /dev/zero), so `--gpus=1` requests are
# scheduled and counted like on a real GPU partition (no real GPU: jobs still run on the CPU).
# Without slurmdbd `sacct` does not work: run the slurm executor with `--slurm-status-command squeue`
# (the plugin otherwise never sees jobs finish) and look jobs up with `scontrol show job <id>`
# (kept for MinJobAge = 1 h after they end). Traps and timings: ../shared/cluster/README.md.
set -euo pipefail

PARTITION_CPU=${MWORK_SLURM_CPU_PARTITION:-cpu}
PARTITION_GPU=${MWORK_SLURM_GPU_PARTITION:-gpu}
FAKE_GPUS=2  # as many as gres.conf lists below
CLUSTER=mwork-ci
PKGS=(slurmctld slurmd slurm-client munge)
RUN=/run/slurm
CONF=/etc/slurm/slurm.conf
GRES=/etc/slurm/gres.conf

say() { printf 'slurm-up: %s\n' "$*" >&2; }
cannot() { say "cannot run here: $*"; exit 3; }

# running <pidfile>: the pid in the file is a live process
running() { [[ -s $1 ]] && kill -0 "$(cat "$1")" 2>/dev/null; }

# retry <seconds> <command...>: rerun every 0.25 s until it succeeds or time runs out
retry() {
  local deadline=$((SECONDS + $1)); shift
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || return 1
    sleep 0.25
  done
}

missing_packages() {
  local p
  for p in "${PKGS[@]}"; do
    dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null | grep -q 'install ok installed' || echo "$p"
  done
}

preflight() {
  [[ $(id -u) -eq 0 ]] || cannot "needs root (uid is $(id -u)); run it with sudo or as root"
  command -v dpkg-query >/dev/null || cannot "no dpkg: this script uses Debian/Ubuntu packages"
  local missing; missing=$(missing_packages)
  [[ -z $missing ]] && return 0
  command -v apt-get >/dev/null || cannot "packages missing ($(echo $missing)) and no apt-get"
  say "installing $(echo $missing) (apt-get, --no-install-recommends)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq || cannot "apt-get update failed (no package mirror reachable?)"
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $missing >/dev/null \
    || cannot "apt-get install $(echo $missing) failed"
  # Ubuntu's packages start their systemd units: stop them, the daemons below are started by hand
  if command -v systemctl >/dev/null && [[ -d /run/systemd/system ]]; then
    systemctl stop slurmd slurmctld 2>/dev/null || true
  fi
}

# write_if_changed <dest> <mode>: install stdin at dest when its content differs; prints 1 if so
write_if_changed() {
  local tmp; tmp=$(mktemp)
  cat >"$tmp"
  if cmp -s "$tmp" "$1"; then rm -f "$tmp"; echo 0; else install -m "$2" "$tmp" "$1"; rm -f "$tmp"; echo 1; fi
}

configure() {
  local node cpus mem
  node=$(hostname -s)
  cpus=$(nproc)
  mem=$(awk '/MemTotal/ {printf "%d", $2 / 1024 * 0.8}' /proc/meminfo)  # 80 %: slurmd refuses more
  install -d -m 755 /etc/slurm
  local c1 c2
  c1=$(write_if_changed "$CONF" 644 <<EOF
# Written by .ci/slurm-up.sh: one node, two partitions, no accounting database, no cgroups.
ClusterName=$CLUSTER
SlurmctldHost=$node(127.0.0.1)
SlurmUser=slurm
AuthType=auth/munge
CryptoType=crypto/munge
MpiDefault=none
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
ReturnToService=2
SlurmctldPidFile=$RUN/slurmctld.pid
SlurmdPidFile=$RUN/slurmd.pid
StateSaveLocation=/var/lib/slurm/slurmctld
SlurmdSpoolDir=/var/lib/slurm/slurmd
SlurmctldLogFile=/var/log/slurm/slurmctld.log
SlurmdLogFile=/var/log/slurm/slurmd.log
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=500
# finished jobs stay visible to squeue/scontrol this long (no accounting database keeps them):
# longer than a whole test run, and >= 3 x the plugin's status interval for squeue status checks
MinJobAge=3600
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
GresTypes=gpu
NodeName=$node NodeAddr=127.0.0.1 CPUs=$cpus RealMemory=$mem Gres=gpu:$FAKE_GPUS State=UNKNOWN
PartitionName=$PARTITION_CPU Nodes=ALL Default=YES MaxTime=INFINITE State=UP
PartitionName=$PARTITION_GPU Nodes=ALL Default=NO MaxTime=INFINITE State=UP
EOF
)
  # two stand-in GPUs: slurmd needs a device file per GPU, any character device will do
  c2=$(write_if_changed "$GRES" 644 <<EOF
AutoDetect=off
NodeName=$node Name=gpu File=/dev/null Count=1
NodeName=$node Name=gpu File=/dev/zero Count=1
EOF
)
  CHANGED=$((c1 + c2))
}

start_munge() {
  install -d -o munge -g munge -m 755 /run/munge
  install -d -o munge -g munge -m 700 /etc/munge /var/log/munge
  install -d -o munge -g munge -m 711 /var/lib/munge
  if [[ ! -s /etc/munge/munge.key ]]; then
    if command -v mungekey >/dev/null; then mungekey --create --keyfile=/etc/munge/munge.key
    else /usr/sbin/create-munge-key -f; fi
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 400 /etc/munge/munge.key
  running /run/munge/munged.pid || runuser -u munge -- /usr/sbin/munged
  retry 10 sh -c 'munge -n | unmunge' || { say "munged does not answer"; exit 1; }
}

stop_daemon() { # stop_daemon <pidfile> <name>
  running "$1" || { rm -f "$1"; return 0; }
  local pid; pid=$(cat "$1")
  say "stopping $2 (pid $pid)"
  kill "$pid"
  retry 15 sh -c "! kill -0 $pid" || kill -9 "$pid" 2>/dev/null || true
  rm -f "$1"
}

node_ready() { sinfo -h -N -o '%t' | grep -Eq '^(idle|mix|alloc)'; }

start() {
  local t0=$SECONDS
  preflight
  install -d -o slurm -g slurm -m 755 "$RUN" /var/lib/slurm /var/lib/slurm/slurmctld /var/log/slurm
  install -d -m 755 /var/lib/slurm/slurmd
  configure
  start_munge
  if ((CHANGED)); then
    say "configuration changed: restarting slurm daemons"
    stop_daemon "$RUN/slurmd.pid" slurmd
    stop_daemon "$RUN/slurmctld.pid" slurmctld
  fi
  running "$RUN/slurmctld.pid" || /usr/sbin/slurmctld
  retry 15 scontrol ping || {
    tail -n 5 /var/log/slurm/slurmctld.log >&2 || true; say "slurmctld does not answer"; exit 1; }
  running "$RUN/slurmd.pid" || /usr/sbin/slurmd
  if ! retry 30 node_ready; then
    scontrol update nodename="$(hostname -s)" state=resume 2>/dev/null || true
    retry 30 node_ready || {
      sinfo -N -l >&2 || true
      tail -n 20 /var/log/slurm/slurmctld.log /var/log/slurm/slurmd.log >&2 || true
      say "node never became idle"; exit 1; }
  fi
  srun -p "$PARTITION_GPU" --gpus=1 -N1 -n1 -t 1 true || { say "a test job (srun --gpus=1) failed"; exit 1; }
  say "up in $((SECONDS - t0)) s: partitions $PARTITION_CPU (default) and $PARTITION_GPU, $FAKE_GPUS stand-in GPUs"
  sinfo >&2
}

stop() {
  [[ $(id -u) -eq 0 ]] || cannot "needs root (uid is $(id -u))"
  stop_daemon "$RUN/slurmd.pid" slurmd
  stop_daemon "$RUN/slurmctld.pid" slurmctld
  stop_daemon /run/munge/munged.pid munged
}

status() {
  local f
  for f in /run/munge/munged.pid "$RUN/slurmctld.pid" "$RUN/slurmd.pid"; do
    if running "$f"; then echo "running $(cat "$f") $f"; else echo "stopped - $f"; fi
  done
  sinfo 2>/dev/null || echo "sinfo: no cluster answers"
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *) echo "usage: bash .ci/slurm-up.sh [start|stop|status]" >&2; exit 2 ;;
esac
