#!/usr/bin/env bash
# slurm-local.sh: a one-machine Slurm cluster (munged, slurmctld, slurmd on
# localhost, all as root) for the tests of deploy/slurm, and for trying the
# nightly array by hand. Debian packages: slurm-wlm, munge (Slurm 22.05 on
# Debian 12). No systemd needed.
#
#   slurm-local.sh start [DIR]   write DIR/slurm.conf, start the daemons, wait
#                                until the node is idle; prints the SLURM_CONF
#                                line to export
#   slurm-local.sh stop  [DIR]   cancel every job, stop the daemons this script
#                                started (by the pids in their pid files)
#   slurm-local.sh logs  [DIR]   print the daemons' logs (for a failed test)
#   slurm-local.sh status [DIR]  sinfo and squeue
#
# DIR defaults to $BATCHMATCH_SLURM_DIR or /tmp/batchmatch-slurm; it holds the
# configuration, state, spool, logs and pid files, so nothing under
# /etc/slurm is touched. Clients find the cluster with SLURM_CONF=DIR/slurm.conf.
# Ports: $BATCHMATCH_SLURM_PORT (slurmctld, default 6817) and the next one
# (slurmd). The node has the machine's CPUs, at least $BATCHMATCH_SLURM_CPUS
# (default 2: the test runs two tasks side by side). Every wait has a
# timeout; a failure prints the logs and exits 1.
set -euo pipefail

cmd=${1:-}
dir=${2:-${BATCHMATCH_SLURM_DIR:-/tmp/batchmatch-slurm}}
port=${BATCHMATCH_SLURM_PORT:-6817}
conf=$dir/slurm.conf
export SLURM_CONF=$conf

log() { printf 'slurm-local: %s\n' "$*" >&2; }

# wait_for SECONDS DESCRIPTION COMMAND...: poll COMMAND every 0.2 s.
wait_for() {
  local secs=$1 what=$2; shift 2
  local deadline=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    if ((SECONDS >= deadline)); then
      log "timed out after ${secs}s waiting for $what"
      return 1
    fi
    sleep 0.2
  done
}

munge_ok() { munge -n | unmunge >/dev/null; }

start_munge() {
  if munge_ok 2>/dev/null; then
    log "munged already running; using it"
    return
  fi
  install -d -o munge -g munge -m 0700 /var/log/munge /var/lib/munge /etc/munge
  install -d -o munge -g munge -m 0755 /run/munge
  if [ ! -s /etc/munge/munge.key ]; then
    dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1 status=none
  fi
  chown munge:munge /etc/munge/munge.key
  chmod 0400 /etc/munge/munge.key
  runuser -u munge -- /usr/sbin/munged
  wait_for 10 "munged" munge_ok
  cp /run/munge/munged.pid "$dir/munged.pid" # ours to stop
}

write_conf() {
  local host node
  host=$(hostname -s)
  # the machine's real CPUs and memory, as slurmd sees them (a node that
  # reports less than it is configured with is drained) ...
  node=$(slurmd -C | head -1)
  local cpus min=${BATCHMATCH_SLURM_CPUS:-2} overrides=
  cpus=$(sed -n 's/.*CPUs=\([0-9]*\).*/\1/p' <<<"$node")
  if [ "${cpus:-0}" -lt "$min" ]; then
    # ... unless that is fewer CPUs than the tests run side by side: then
    # the configuration wins (the CPUs are shared, not drained)
    node="NodeName=$host CPUs=$min RealMemory=$(sed -n 's/.*RealMemory=\([0-9]*\).*/\1/p' <<<"$node")"
    overrides=SlurmdParameters=config_overrides
  fi
  cat >"$conf" <<CONF
# written by deploy/slurm/slurm-local.sh: one node, everything as root
ClusterName=batchmatch
SlurmctldHost=$host(127.0.0.1)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
SlurmctldDebug=info
SlurmdDebug=info
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
ReturnToService=2
MpiDefault=none
MailProg=/bin/true
# completed jobs stay visible to scontrol for an hour (no accounting here)
MinJobAge=3600
KillWait=10
JobRequeue=1
$overrides
$node NodeAddr=127.0.0.1 State=UNKNOWN
PartitionName=batch Nodes=$host Default=YES MaxTime=INFINITE State=UP
CONF
}

node_idle() { [ "$(sinfo -h -o %T 2>/dev/null | tr -d '*~#')" = idle ]; }

stop_pid() { # stop_pid NAME PIDFILE
  local f=$2 pid
  [ -s "$f" ] || return 0
  pid=$(cat "$f")
  if kill -0 "$pid" 2>/dev/null; then
    kill -TERM "$pid" 2>/dev/null || true
    local deadline=$((SECONDS + 15))
    while kill -0 "$pid" 2>/dev/null && ((SECONDS < deadline)); do sleep 0.2; done
    if kill -0 "$pid" 2>/dev/null; then
      log "$1 (pid $pid) did not stop in 15 s: SIGKILL"
      kill -KILL "$pid" 2>/dev/null || true
    fi
  fi
  rm -f "$f"
}

print_logs() {
  local f
  for f in "$dir"/log/*.log /var/log/munge/munged.log; do
    [ -f "$f" ] || continue
    echo "===== $f (last 80 lines)"
    tail -n 80 "$f"
  done
}

case $cmd in
start)
  for b in munge unmunge munged slurmctld slurmd sinfo; do
    command -v "$b" >/dev/null || PATH=$PATH:/usr/sbin command -v "$b" >/dev/null ||
      { log "$b not found: apt-get install -y slurm-wlm munge"; exit 1; }
  done
  export PATH=$PATH:/usr/sbin
  if [ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    log "already running in $dir (stop it first)"; exit 1
  fi
  rm -rf "$dir/state" "$dir/spool" "$dir/log"
  mkdir -p "$dir/state" "$dir/spool" "$dir/log"
  write_conf
  start_munge || { print_logs; exit 1; }
  # -c: a fresh controller state (no jobs left from an earlier cluster)
  slurmctld -c -f "$conf" || { print_logs; exit 1; }
  slurmd -f "$conf" || { print_logs; exit 1; }
  if ! wait_for 60 "the node to become idle" node_idle; then
    sinfo -N -l || true
    print_logs
    exit 1
  fi
  log "node $(hostname -s) idle ($(grep '^NodeName' "$conf" | grep -o 'CPUs=[0-9]*'))"
  echo "export SLURM_CONF=$conf"
  ;;
stop)
  export PATH=$PATH:/usr/sbin
  if [ -s "$dir/slurmctld.pid" ] && kill -0 "$(cat "$dir/slurmctld.pid")" 2>/dev/null; then
    scancel --full --quiet --user=root 2>/dev/null || true
    wait_for 20 "jobs to end" bash -c '[ -z "$(squeue -h -o %i)" ]' || true
  fi
  stop_pid slurmd "$dir/slurmd.pid"
  stop_pid slurmctld "$dir/slurmctld.pid"
  stop_pid munged "$dir/munged.pid"
  ;;
logs) print_logs ;;
status)
  sinfo
  squeue
  ;;
*)
  echo "usage: $0 start|stop|logs|status [DIR]" >&2
  exit 64
  ;;
esac
