#!/usr/bin/env bash
# redistestdb.sh: throw-away Redis servers for opendts tests and benchmarks.
#
#   scripts/redistestdb.sh install                 install redis-server and redis-tools
#   scripts/redistestdb.sh start DIR PORT [REDIS_ARG...]
#                                                  start a standalone server in DIR
#   scripts/redistestdb.sh cluster DIR PORT1 PORT2 PORT3 [REDIS_ARG...]
#                                                  start three masters in DIR/PORTn and
#                                                  join them into one cluster
#   scripts/redistestdb.sh stop DIR                stop the server(s) started in DIR
#
# A started server listens on 127.0.0.1:PORT only, keeps everything (RDB,
# log, pid file) under its directory and reads no configuration file, so
# the distro's /etc/redis cannot leak in. With OPENDTS_TESTDB_OWNER set to a
# pid, a watcher stops the server once that process is gone, so a test
# binary that died without its cleanup leaves nothing behind.
set -euo pipefail

die() {
	echo "redistestdb.sh: $*" >&2
	exit 1
}

cmd_install() {
	if command -v redis-server >/dev/null && command -v redis-cli >/dev/null; then
		echo "redistestdb.sh: redis-server already installed at $(command -v redis-server)"
		return 0
	fi
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || die "installing Redis needs root (or sudo)"
		sudo="sudo -n"
	fi
	# Debian starts the packaged service unless policy-rc.d says no; the
	# tests never use it.
	local policy=/usr/sbin/policy-rc.d made_policy=""
	if [ ! -e "$policy" ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee "$policy" >/dev/null
		$sudo chmod 755 "$policy"
		made_policy=1
	fi
	local rc=0
	{
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
				--no-install-recommends redis-server redis-tools
	} || rc=$?
	if [ -n "$made_policy" ]; then
		$sudo rm -f "$policy"
	fi
	[ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet redis-server 2>/dev/null; then
		$sudo systemctl stop redis-server || true
		$sudo systemctl disable redis-server >/dev/null 2>&1 || true
	fi
	command -v redis-server >/dev/null || die "redis-server still missing after apt-get install"
}

# start_one DIR PORT ARGS... starts one server and waits until it answers.
start_one() {
	local dir=$1 port=$2
	shift 2
	case "$port" in *[!0-9]*) die "PORT must be a number" ;; esac
	command -v redis-server >/dev/null || die "redis-server not found: run 'scripts/redistestdb.sh install'"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -e "$dir/redis.pid" ] && kill -0 "$(cat "$dir/redis.pid")" 2>/dev/null; then
		die "a server is already running in $dir"
	fi
	# Persistence is off unless a test asks for it: the data dies with
	# the test, and a SAVE or a replica's sync still writes dir/dump.rdb.
	setsid redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" \
		--pidfile "$dir/redis.pid" --logfile "$dir/redis.log" --daemonize no \
		--save "" --appendonly no --protected-mode no --enable-debug-command yes \
		--cluster-config-file "$dir/nodes.conf" "$@" </dev/null >"$dir/redis.out" 2>&1 &
	local pid=$!
	echo "$pid" >"$dir/redis.pid"
	for _ in $(seq 1 100); do
		if redis-cli -h 127.0.0.1 -p "$port" --no-auth-warning ping 2>/dev/null | grep -q -e PONG -e NOAUTH; then
			break
		fi
		kill -0 "$pid" 2>/dev/null || {
			tail -n 20 "$dir/redis.log" "$dir/redis.out" >&2 || true
			die "redis-server exited during start-up (see $dir/redis.log)"
		}
		sleep 0.05
	done
	if [ -n "${OPENDTS_TESTDB_OWNER:-}" ]; then
		local self
		self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
		# shellcheck disable=SC2016 # expanded by the watcher's bash
		setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
			if kill -0 "$2" 2>/dev/null; then exec bash "$3" stop "$4"; fi' \
			_ "$OPENDTS_TESTDB_OWNER" "$pid" "$self" "$dir" </dev/null >/dev/null 2>&1 &
	fi
	echo "redistestdb.sh: redis-server pid $pid listening on 127.0.0.1:$port (dir $dir)"
}

cmd_cluster() {
	[ $# -ge 4 ] || die "usage: redistestdb.sh cluster DIR PORT1 PORT2 PORT3 [REDIS_ARG...]"
	local dir=$1 p1=$2 p2=$3 p3=$4
	shift 4
	for p in "$p1" "$p2" "$p3"; do
		start_one "$dir/$p" "$p" --cluster-enabled yes --cluster-node-timeout 5000 "$@"
	done
	local auth=()
	# A password among the server arguments is the cluster's too.
	local prev=""
	for a in "$@"; do
		if [ "$prev" = "--requirepass" ]; then auth=(-a "$a" --no-auth-warning); fi
		prev=$a
	done
	redis-cli "${auth[@]}" --cluster create "127.0.0.1:$p1" "127.0.0.1:$p2" "127.0.0.1:$p3" \
		--cluster-replicas 0 --cluster-yes >"$dir/create.log" 2>&1 || {
		cat "$dir/create.log" >&2
		die "redis-cli --cluster create failed"
	}
	for _ in $(seq 1 200); do
		local ok=0
		for p in "$p1" "$p2" "$p3"; do
			redis-cli "${auth[@]}" -p "$p" cluster info | grep -q 'cluster_state:ok' && ok=$((ok + 1))
		done
		[ "$ok" -eq 3 ] && return 0
		sleep 0.05
	done
	die "the cluster did not reach cluster_state:ok"
}

cmd_stop() {
	[ $# -eq 1 ] || die "usage: redistestdb.sh stop DIR"
	local dir=$1 pidfile pid
	for pidfile in "$dir/redis.pid" "$dir"/*/redis.pid; do
		[ -e "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 1 100); do
			kill -0 "$pid" 2>/dev/null || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
}

case "${1:-}" in
install) shift && cmd_install "$@" ;;
start) shift && start_one "$@" ;;
cluster) shift && cmd_cluster "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) die "usage: redistestdb.sh install | start DIR PORT | cluster DIR P1 P2 P3 | stop DIR" ;;
esac
