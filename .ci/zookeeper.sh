#!/usr/bin/env bash
# Debian's ZooKeeper (package zookeeperd) for the state-store tests and the
# fault tests: installs it if missing, starts it, and waits until it answers
# on 127.0.0.1:2181. Idempotent: a running ZooKeeper is left alone.
#
# No systemd needed: the package's SysV init script (start-stop-daemon) is
# called directly, falling back to /usr/share/zookeeper/bin/zkServer.sh.
#
# Usage: .ci/zookeeper.sh [start|restart|stop|status|wait]   (default: start)
# Env:   ZK_HOST (127.0.0.1), ZK_PORT (2181), ZK_WAIT_SECONDS (60)
set -euo pipefail

ZK_HOST=${ZK_HOST:-127.0.0.1}
ZK_PORT=${ZK_PORT:-2181}
WAIT=${ZK_WAIT_SECONDS:-60}
INIT=/etc/init.d/zookeeper
ZKSERVER=/usr/share/zookeeper/bin/zkServer.sh

log() { echo "zookeeper.sh: $*" >&2; }

as_root() {
	if [ "$(id -u)" = 0 ]; then
		"$@"
	elif command -v sudo >/dev/null 2>&1; then
		sudo -n "$@"
	else
		log "need root (or sudo) to run: $*"
		return 1
	fi
}

# answers succeeds when ZooKeeper serves requests: the "srvr" four-letter
# word (whitelisted by default since 3.5) reports a Mode; if four-letter
# words are disabled, an accepted TCP connection is enough.
answers() {
	local reply
	reply=$(timeout 3 bash -c "exec 3<>/dev/tcp/$ZK_HOST/$ZK_PORT && printf srvr >&3 && cat <&3" 2>/dev/null) || return 1
	case "$reply" in
	*Mode:*) return 0 ;;
	*"not in the whitelist"*) return 0 ;;
	*) return 1 ;;
	esac
}

installed() { [ -r /usr/share/java/zookeeper.jar ] && { [ -x "$INIT" ] || [ -x "$ZKSERVER" ]; }; }

install() {
	installed && return 0
	log "installing zookeeperd"
	export DEBIAN_FRONTEND=noninteractive
	if ! as_root apt-get install -y -q --no-install-recommends zookeeperd >/dev/null; then
		as_root apt-get update -q >/dev/null
		as_root apt-get install -y -q --no-install-recommends zookeeperd >/dev/null
	fi
}

wait_up() {
	local i
	for ((i = 0; i < WAIT * 2; i++)); do
		if answers; then
			log "ZooKeeper answers on $ZK_HOST:$ZK_PORT"
			return 0
		fi
		sleep 0.5
	done
	log "ZooKeeper did not answer on $ZK_HOST:$ZK_PORT within ${WAIT}s; see /var/log/zookeeper/"
	return 1
}

wait_down() {
	local i
	for ((i = 0; i < WAIT * 2; i++)); do
		answers || return 0
		sleep 0.5
	done
	log "ZooKeeper still answers after ${WAIT}s"
	return 1
}

daemon() { # start|stop|restart
	if [ -x "$INIT" ]; then
		as_root "$INIT" "$1" >/dev/null
	else
		as_root "$ZKSERVER" "$1" >/dev/null
	fi
}

cmd=${1:-start}
case "$cmd" in
start)
	if answers; then
		log "ZooKeeper already answers on $ZK_HOST:$ZK_PORT"
		exit 0
	fi
	install
	daemon start
	wait_up
	;;
restart)
	install
	daemon stop || true
	wait_down
	daemon start
	wait_up
	;;
stop)
	installed || exit 0
	daemon stop
	wait_down
	;;
status)
	if answers; then echo running; else echo stopped; exit 3; fi
	;;
wait)
	wait_up
	;;
*)
	echo "usage: $0 [start|restart|stop|status|wait]" >&2
	exit 2
	;;
esac
