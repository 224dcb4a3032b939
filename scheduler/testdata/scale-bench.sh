#!/usr/bin/env bash
# Scheduler scale benchmark (issue 4): N in-process simulated agents (default
# 10,000) and the real scheduler as separate processes, so the scheduler's
# CPU and peak RSS are its own. Needs a built binary:
#   go build -o /tmp/dcos-consul ./cmd/dcos-consul
#   B=/tmp/dcos-consul N=10000 scheduler/testdata/scale-bench.sh
# Uses 127.2.99.1 (master, ports 25050/25080) and 127.2.100.1+ (agents).
set -u
B=${B:-/tmp/dcos-consul}
W=${W:-$(mktemp -d)}
N=${N:-10000}
rm -rf $W/sim $W/state
$B sim --in-process --agents $N --master-ip 127.2.99.1 --master-port 25050 --first-agent-ip 127.2.100.1 --agent-port 0 --work-dir "" --log-level warn > $W/sim.log 2>&1 &
SIM=$!
for i in $(seq 1 300); do n=$(curl -s 127.2.99.1:25050/master/state | python3 -c 'import json,sys; print(len(json.load(sys.stdin)["slaves"]))' 2>/dev/null); [ "$n" = "$N" ] && break; sleep 1; done
echo "sim up with $n agents after ${i}s"
sleep 2
runsched() {
  env SERVICE_NAME=consul FRAMEWORK_USER=root MESOS_MASTER=http://127.2.99.1:25050 STATE_DIR=$W/state PORT_API=25080 \
    EXECUTOR_URI=http://127.2.99.1:1/dcos-consul LOG_LEVEL=warn /usr/bin/time -v $B scheduler > $W/sched$1.log 2> $W/sched$1.err &
  echo $!
}
T0=$(date +%s.%N)
runsched 1 > $W/pid1; S=$(cat $W/pid1)
running() { curl -s 127.2.99.1:25080/metrics 2>/dev/null | awk '/^dcos_consul_scheduler_tasks\{.*TASK_RUNNING/ {s+=$2} END {print s+0}'; }
until [ "$(running)" = "$N" ]; do sleep 0.2; done
T1=$(date +%s.%N)
echo "all $N tasks RUNNING after $(echo "$T1 - $T0" | bc) s"
curl -s 127.2.99.1:25080/metrics | grep -E '^dcos_consul_scheduler_offers_(received|declined|accepted)_total|^process_(cpu_seconds_total|resident_memory_bytes|max)'
pkill -TERM -P $S; while kill -0 $S 2>/dev/null; do sleep 0.2; done
grep -E 'Maximum resident|User time|System time|Elapsed' $W/sched1.err
T2=$(date +%s.%N)
runsched 2 > $W/pid2; S=$(cat $W/pid2)
sleep 0.5
until curl -s 127.2.99.1:25080/metrics 2>/dev/null | grep -q '^dcos_consul_scheduler_subscribed 1' && curl -s 127.2.99.1:25080/metrics | grep -q '^dcos_consul_scheduler_reconciliation_pending_tasks 0' && [ "$(curl -s -o /dev/null -w '%{http_code}' 127.2.99.1:25080/v1/health)" = "200" ]; do sleep 0.2; done
T3=$(date +%s.%N)
echo "restarted scheduler: $N tasks reconciled, deploy COMPLETE after $(echo "$T3 - $T2" | bc) s"
curl -s 127.2.99.1:25080/metrics | grep -E '^dcos_consul_scheduler_tasks'
pkill -TERM -P $S; while kill -0 $S 2>/dev/null; do sleep 0.2; done
grep -E 'Maximum resident|User time|System time|Elapsed' $W/sched2.err
kill -INT $SIM; wait $SIM
