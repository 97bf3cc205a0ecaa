#!/bin/bash
# Integration test: a real single-node Slurm cluster on localhost runs a 4-task array sweep
# with deploy/slurm/sweep.sbatch; the shards are merged and compared with a local run.
# Skips (exit 0) when not root or apt is unavailable; fails loudly when results differ.
# The cluster is torn down from an EXIT trap, also on failure.
#   BLASTRADIUS_BIN  the binary (default target/release/blastradius, else target/debug/blastradius)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
cd "$ROOT"
BIN=${BLASTRADIUS_BIN:-}
if [ -z "$BIN" ]; then
    for c in target/release/blastradius target/debug/blastradius; do
        [ -x "$c" ] && BIN="$ROOT/$c" && break
    done
fi
[ -n "$BIN" ] && [ -x "$BIN" ] || { echo "FAIL: no blastradius binary (set BLASTRADIUS_BIN)"; exit 1; }
BIN=$(readlink -f "$BIN")
if [ "$(id -u)" != 0 ] || ! command -v apt-get >/dev/null; then
    echo "SKIP: slurm integration test needs root and apt-get"; exit 0
fi
T0=$(date +%s)
if ! command -v slurmctld >/dev/null || ! command -v munged >/dev/null; then
    apt-get update -qq >/dev/null 2>&1 || { echo "SKIP: apt-get update failed (no network?)"; exit 0; }
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \
        slurmctld slurmd slurm-client munge >/dev/null 2>&1 \
        || { echo "SKIP: could not install slurm from Debian packages"; exit 0; }
fi
BASE=$(mktemp -d /tmp/br-slurm.XXXXXX)
chmod 755 "$BASE"
NAME=$(hostname -s)
export SLURM_CONF=$BASE/slurm.conf
teardown() {
    rc=$?
    scontrol shutdown >/dev/null 2>&1 || true
    for pf in "$BASE"/slurmctld.pid "$BASE"/slurmd.pid "$BASE"/munged.pid; do
        [ -f "$pf" ] || continue
        pid=$(cat "$pf" 2>/dev/null || true)
        [ -n "$pid" ] || continue
        case "$pf" in *munged.pid) kill "$pid" 2>/dev/null || true ;; esac
        for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null || true
    done
    if [ $rc -ne 0 ]; then
        echo "--- slurm logs ---"; tail -n 20 "$BASE"/*.log "$BASE"/out/*.out 2>/dev/null || true
    fi
    rm -rf "$BASE"
    exit $rc
}
trap teardown EXIT
mkdir -p "$BASE"/{munge,state,spool,out}
mkdir -m 755 "$BASE/mungerun"
chmod 700 "$BASE/munge"
mungekey --create --keyfile="$BASE/munge/munge.key" >/dev/null 2>&1
munged --key-file="$BASE/munge/munge.key" --socket="$BASE/mungerun/munge.socket" \
    --pid-file="$BASE/munged.pid" --log-file="$BASE/munged.log" --seed-file="$BASE/munge/seed"
cat > "$SLURM_CONF" <<CONF
ClusterName=brtest
SlurmctldHost=$NAME(127.0.0.1)
SlurmUser=root
AuthType=auth/munge
AuthInfo=socket=$BASE/mungerun/munge.socket
CredType=cred/munge
CommunicationParameters=NoCtldInAddrAny,NoInAddrAny
SlurmctldPort=16817
SlurmdPort=16818
StateSaveLocation=$BASE/state
SlurmdSpoolDir=$BASE/spool
SlurmctldPidFile=$BASE/slurmctld.pid
SlurmdPidFile=$BASE/slurmd.pid
SlurmctldLogFile=$BASE/slurmctld.log
SlurmdLogFile=$BASE/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
ReturnToService=2
MailProg=/bin/true
NodeName=$NAME NodeAddr=127.0.0.1 CPUs=2 RealMemory=1000 State=UNKNOWN
PartitionName=debug Nodes=$NAME Default=YES MaxTime=INFINITE State=UP
CONF
slurmctld
slurmd -N "$NAME"
for _ in $(seq 100); do
    scontrol ping 2>/dev/null | grep -q UP && [ "$(sinfo -h -n "$NAME" -o %t 2>/dev/null)" = idle ] && break
    sleep 0.2
done
[ "$(sinfo -h -n "$NAME" -o %t)" = idle ] || { echo "FAIL: slurm node not idle"; exit 1; }

SCEN="retry-storm dime-retry-storm"; POL="noop oracle"; SEEDS=0..4
OUT=$BASE/out/sweep
JOB=$(cd "$BASE/out" && BLASTRADIUS_BIN=$BIN SCENARIOS=$SCEN POLICIES=$POL SEEDS=$SEEDS OUT=$OUT \
    sbatch --parsable --array=0-3 --cpus-per-task=1 --mem-per-cpu=200 \
    --output="$BASE/out/task-%a.out" "$ROOT/deploy/slurm/sweep.sbatch")
JOB=${JOB%%;*}
for _ in $(seq 600); do
    [ -z "$(squeue -h -j "$JOB" 2>/dev/null)" ] && break
    sleep 0.5
done
[ -z "$(squeue -h -j "$JOB")" ] || { echo "FAIL: job $JOB did not finish"; exit 1; }
ok=$(scontrol -o show job "$JOB" | grep -c "JobState=COMPLETED .*ExitCode=0:0" || true)
[ "$ok" = 4 ] || { echo "FAIL: array tasks not all COMPLETED: $(scontrol -o show job "$JOB" | grep -o 'JobState=[A-Z]* .*ExitCode=[0-9:]*' | cut -c1-80)"; exit 1; }
"$BIN" sweep merge "$OUT" --out "$OUT" >/dev/null
# shellcheck disable=SC2086
"$BIN" sweep --scenario $SCEN --policy $POL --seeds "$SEEDS" --out "$BASE/local" \
    --no-auto-shard --progress off >/dev/null
if ! "$BIN" sweep compare "$BASE/local" "$OUT"; then
    echo "FAIL: merged Slurm sweep differs from the local sweep"; exit 1
fi
echo "PASS: slurm 4-task array sweep merged equals the local sweep ($(( $(date +%s) - T0 )) s)"
