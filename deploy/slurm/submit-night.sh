#!/usr/bin/env bash
# submit-night.sh: submit one night of batchmatch to Slurm, an array of N
# shard tasks (batchmatch-night.sbatch), and print the array's job id.
#
#   submit-night.sh --profiles PATH --out OUT --shards N [--as-of YYYY-MM-DD]
#                   [--bin BATCHMATCH] [--log-dir DIR] [--args "RUN FLAGS"]
#                   [-- SBATCH OPTIONS...]
#
# --as-of defaults to today (UTC) at submission: run this from cron at the
# night's scheduled time (README.md). The date travels in the job's
# environment, so every task, and every requeue of a task after midnight,
# computes the same partition. Task logs go to DIR/batchmatch-night-<job>_<task>.log
# (default: the current directory), appended to across requeues.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
profiles= out= shards= asof= bin= logdir=. args=
while [ $# -gt 0 ]; do
  case $1 in
  --profiles) profiles=$2; shift 2 ;;
  --out) out=$2; shift 2 ;;
  --shards) shards=$2; shift 2 ;;
  --as-of) asof=$2; shift 2 ;;
  --bin) bin=$2; shift 2 ;;
  --log-dir) logdir=$2; shift 2 ;;
  --args) args=$2; shift 2 ;;
  --) shift; break ;;
  *) echo "submit-night.sh: unknown option $1" >&2; exit 64 ;;
  esac
done
if [ -z "$profiles" ] || [ -z "$out" ] || ! [[ $shards =~ ^[1-9][0-9]*$ ]]; then
  echo "usage: submit-night.sh --profiles PATH --out OUT --shards N [--as-of DATE] [--bin PATH] [--log-dir DIR] [--args FLAGS] [-- SBATCH OPTIONS]" >&2
  exit 64
fi
asof=${asof:-$(date -u +%F)}
[[ $asof =~ ^[0-9]{4}-[0-9]{2}-[0-9]{2}$ ]] || { echo "submit-night.sh: --as-of must be YYYY-MM-DD" >&2; exit 64; }
export BATCHMATCH_PROFILES=$profiles BATCHMATCH_OUT=$out BATCHMATCH_AS_OF=$asof BATCHMATCH_ARGS=$args
[ -z "$bin" ] || export BATCHMATCH_BIN=$bin
mkdir -p "$logdir"
exec sbatch --parsable --array="0-$((shards - 1))" --export=ALL \
  --output="$logdir/batchmatch-night-%A_%a.log" "$@" "$here/batchmatch-night.sbatch"
