#!/usr/bin/env bash
# .ci/isolated.sh NAME CMD...: run CMD in its own network namespace NAME (its own
# loopback, so 127.0.0.0/8 ports never collide with another run) with its
# own ZooKeeper on 127.0.0.1:2181 (data under $ISOLATED_DIR/NAME, default /tmp/isolated), which
# .ci/zookeeper.sh then finds answering and leaves alone.
set -euo pipefail
name=$1; shift
dir=${ISOLATED_DIR:-/tmp/isolated}/$name
rm -rf "$dir/zk"; mkdir -p "$dir/zk/data" "$dir/zk/conf" "$dir/zk/log"
cat > "$dir/zk/conf/zoo.cfg" <<CFG
tickTime=2000
initLimit=10
syncLimit=5
dataDir=$dir/zk/data
clientPort=2181
clientPortAddress=127.0.0.1
maxClientCnxns=0
4lw.commands.whitelist=*
admin.enableServer=false
CFG
cp /etc/zookeeper/conf/log4j.properties "$dir/zk/conf/" 2>/dev/null || true
ip netns del "$name" 2>/dev/null || true
ip netns add "$name"
ip netns exec "$name" ip link set lo up
cleanup() { [ -n "${zkpid:-}" ] && kill "$zkpid" 2>/dev/null; wait 2>/dev/null; ip netns del "$name" 2>/dev/null || true; }
trap cleanup EXIT
ip netns exec "$name" /usr/bin/java -Dzookeeper.log.dir="$dir/zk/log" -Dzookeeper.root.logger=INFO,ROLLINGFILE \
  -cp "$dir/zk/conf:/usr/share/java/zookeeper.jar" org.apache.zookeeper.server.quorum.QuorumPeerMain "$dir/zk/conf/zoo.cfg" \
  > "$dir/zk/log/stdout" 2>&1 &
zkpid=$!
for i in $(seq 1 120); do
  if ip netns exec "$name" timeout 3 bash -c 'exec 3<>/dev/tcp/127.0.0.1/2181 && printf srvr >&3 && cat <&3' 2>/dev/null | grep -q Mode; then break; fi
  sleep 0.5
done
ip netns exec "$name" "$@"
