#!/usr/bin/env bash
# etcdtestdb.sh: throw-away etcd clusters for opendts tests and benchmarks.
#
#   scripts/etcdtestdb.sh install              install etcd-server and etcd-client from Debian packages
#   scripts/etcdtestdb.sh start DIR N [CLIENT_PORT PEER_PORT]...
#                                              start an N-member cluster in DIR (ports picked
#                                              when not given) and wait until it answers; a
#                                              cluster stopped in DIR starts again on its data
#   scripts/etcdtestdb.sh stop DIR             stop every member started in DIR
#   scripts/etcdtestdb.sh kill DIR I           SIGKILL member I (0-based), as a crash would
#   scripts/etcdtestdb.sh restart DIR I        start member I again on its data
#                                              (--initial-cluster-state existing)
#   scripts/etcdtestdb.sh endpoints DIR        print the client URLs, comma-separated
#   scripts/etcdtestdb.sh build VERSION DIR    build etcd VERSION (3.5 or later) from its Go
#                                              module into DIR/etcd, to run the tests against a
#                                              newer etcd than Debian's: PATH=DIR:$PATH go test ...
#
# Members listen on 127.0.0.1 only, each under DIR/mI (data, etcd.pid,
# etcd.log), with short election timeouts (heartbeat 50 ms, election
# 500 ms) so that a lost leader is replaced quickly, and compact the
# history older than an hour as docs/cluster.md asks of a real cluster. DIR/endpoints holds
# the client URLs for scripts (OPENDTS_ETCD_ENDPOINTS). No ETCD_*
# variable of the caller's environment and no /etc/default/etcd reach the
# members: every setting is on the command line. With
# OPENDTS_TESTDB_OWNER set to a pid, a watcher stops the cluster once
# that process is gone, so a test binary that died without its cleanup
# leaves nothing behind.
set -euo pipefail

die() {
	echo "etcdtestdb.sh: $*" >&2
	exit 1
}

find_bin() {
	local name dir
	for name in "$@"; do
		if command -v "$name" >/dev/null 2>&1; then
			command -v "$name"
			return 0
		fi
		for dir in /usr/bin /usr/local/bin /usr/sbin; do
			if [ -x "$dir/$name" ]; then
				echo "$dir/$name"
				return 0
			fi
		done
	done
	return 1
}

cmd_install() {
	if find_bin etcd >/dev/null && find_bin etcdctl >/dev/null; then
		echo "etcdtestdb.sh: etcd already installed at $(find_bin etcd)"
		return 0
	fi
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || die "installing etcd needs root (or sudo)"
		sudo="sudo -n"
	fi
	# Debian starts the packaged etcd service (on port 2379) unless
	# policy-rc.d says no; the tests never use it.
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
				--no-install-recommends etcd-server etcd-client
	} || rc=$?
	if [ -n "$made_policy" ]; then
		$sudo rm -f "$policy"
	fi
	[ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet etcd 2>/dev/null; then
		$sudo systemctl stop etcd || true
		$sudo systemctl disable etcd >/dev/null 2>&1 || true
	fi
	find_bin etcd >/dev/null || die "etcd still missing after apt-get install"
	echo "etcdtestdb.sh: installed $(find_bin etcd)"
}

# port_free PORT: nothing accepts connections on 127.0.0.1:PORT.
port_free() {
	! (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null
}

# pick_ports N prints 2N free ports (client and peer of each member), from
# a random base below the kernel's ephemeral range: a port in it may be
# the local end of some outgoing connection, which a connect test cannot
# see and which makes etcd's bind fail.
pick_ports() {
	local want=$(($1 * 2)) got=0 p lo=10000 hi=32767 eph used=""
	if [ -r /proc/sys/net/ipv4/ip_local_port_range ]; then
		read -r eph _ </proc/sys/net/ipv4/ip_local_port_range
		if [ "$eph" -gt $((lo + 1000)) ]; then hi=$((eph - 1)); fi
	fi
	if command -v ss >/dev/null 2>&1; then
		used=" $(ss -Htan 2>/dev/null | awk '{ n = split($4, a, ":"); print a[n] }' | sort -u | tr '\n' ' ') "
	fi
	p=$((lo + RANDOM % (hi - lo)))
	while [ "$got" -lt "$want" ]; do
		if [[ "$used" != *" $p "* ]] && port_free "$p"; then
			echo "$p"
			got=$((got + 1))
		fi
		p=$((p + 1))
		[ "$p" -le "$hi" ] || p=$lo
	done
}

# member_field DIR I FIELD prints FIELD (1 name, 2 client port, 3 peer port)
# of member I from DIR/members.
member_field() {
	awk -v i="$(($2 + 1))" -v f="$3" 'NR == i { print $f }' "$1/members"
}

# alive PID: the process exists and is not a zombie (a killed member whose
# parent, init in a container, has not reaped it yet).
alive() {
	kill -0 "$1" 2>/dev/null || return 1
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st:0:1}" != Z ]
}

log_tail() {
	local log=$1
	if [ -e "$log" ]; then
		echo "--- last lines of $log:" >&2
		tail -n 25 "$log" >&2 || true
	fi
}

# start_member DIR I STATE starts member I in the background and waits until
# its client port accepts connections (not until the cluster has a leader:
# a member restarted while the majority is down has none).
start_member() {
	local dir=$1 i=$2 state=$3 etcd name cport pport mdir pid
	etcd=$(find_bin etcd) || die "etcd not found: run 'scripts/etcdtestdb.sh install'"
	name=$(member_field "$dir" "$i" 1)
	cport=$(member_field "$dir" "$i" 2)
	pport=$(member_field "$dir" "$i" 3)
	[ -n "$name" ] || die "no member $i in $dir/members"
	mdir="$dir/$name"
	mkdir -p "$mdir"
	if [ -e "$mdir/etcd.pid" ] && alive "$(cat "$mdir/etcd.pid")"; then
		die "member $i is already running in $mdir"
	fi
	# env -i: no ETCD_* variable (which etcd reads as flags) leaks in.
	env -i PATH="$PATH" HOME="$mdir" setsid "$etcd" \
		--name "$name" \
		--data-dir "$mdir/data" \
		--listen-client-urls "http://127.0.0.1:$cport" \
		--advertise-client-urls "http://127.0.0.1:$cport" \
		--listen-peer-urls "http://127.0.0.1:$pport" \
		--initial-advertise-peer-urls "http://127.0.0.1:$pport" \
		--initial-cluster "$(cat "$dir/initial-cluster")" \
		--initial-cluster-token "$(cat "$dir/token")" \
		--initial-cluster-state "$state" \
		--heartbeat-interval 50 \
		--election-timeout 500 \
		--snapshot-count 10000 \
		--auto-compaction-mode periodic --auto-compaction-retention 1h \
		--logger zap --log-outputs stderr \
		</dev/null >>"$mdir/etcd.log" 2>&1 &
	pid=$!
	echo "$pid" >"$mdir/etcd.pid"
	for _ in $(seq 1 200); do
		if ! port_free "$cport"; then
			return 0
		fi
		if ! alive "$pid"; then
			log_tail "$mdir/etcd.log"
			die "etcd member $i exited during start-up (see $mdir/etcd.log)"
		fi
		sleep 0.05
	done
	log_tail "$mdir/etcd.log"
	die "etcd member $i did not listen on 127.0.0.1:$cport within 10 s"
}

# new_cluster DIR N PORT... writes the files of a new cluster in DIR.
new_cluster() {
	local dir=$1 n=$2 i
	shift 2
	local ports=("$@")
	[ "${#ports[@]}" -eq $((n * 2)) ] || die "give a client and a peer port for each of the $n members"
	for p in "${ports[@]}"; do
		case "$p" in '' | *[!0-9]*) die "ports must be numbers" ;; esac
	done
	local initial="" endpoints=""
	: >"$dir/members"
	for ((i = 0; i < n; i++)); do
		local cport=${ports[$((i * 2))]} pport=${ports[$((i * 2 + 1))]}
		echo "m$i $cport $pport" >>"$dir/members"
		initial+="${initial:+,}m$i=http://127.0.0.1:$pport"
		endpoints+="${endpoints:+,}http://127.0.0.1:$cport"
	done
	echo "$initial" >"$dir/initial-cluster"
	echo "$endpoints" >"$dir/endpoints"
	# A token of its own: members of another test's cluster that reuse a
	# port cannot join this one.
	echo "opendts-test-$$-$RANDOM$RANDOM" >"$dir/token"
}

# start_members DIR N STATE starts every member; a subshell, so that a
# member's failure (die) returns here.
start_members() {
	local dir=$1 n=$2 state=$3
	(
		for ((i = 0; i < n; i++)); do
			start_member "$dir" "$i" "$state"
		done
	)
}

cmd_start() {
	[ $# -ge 2 ] || die "usage: etcdtestdb.sh start DIR N [CLIENT_PORT PEER_PORT]..."
	local dir=$1 n=$2
	shift 2
	case "$n" in '' | *[!0-9]*) die "N must be a number" ;; esac
	[ "$n" -ge 1 ] || die "N must be at least 1"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	local i
	if [ -e "$dir/members" ]; then
		# A cluster stopped earlier in DIR starts again on its data and
		# ports (a bench run's second half, say).
		[ -e "$dir/stopped" ] || die "$dir holds a cluster that was not stopped"
		[ "$(wc -l <"$dir/members")" -eq "$n" ] || die "$dir holds a cluster of $(wc -l <"$dir/members") members, not $n"
		rm -f "$dir/stopped"
		start_members "$dir" "$n" existing || {
			cmd_stop "$dir"
			die "the cluster in $dir did not start again"
		}
	elif [ $# -gt 0 ]; then
		new_cluster "$dir" "$n" "$@"
		start_members "$dir" "$n" new || {
			cmd_stop "$dir"
			die "the cluster did not start"
		}
	else
		# Ports picked here can still be taken before etcd binds them:
		# then again with others.
		local attempt
		for attempt in 1 2 3; do
			local ports=()
			mapfile -t ports < <(pick_ports "$n")
			new_cluster "$dir" "$n" "${ports[@]}"
			if start_members "$dir" "$n" new; then
				break
			fi
			cmd_stop "$dir"
			[ "$attempt" -lt 3 ] || die "the cluster did not start"
			rm -rf "$dir"/m* "$dir/members" "$dir/stopped"
		done
	fi
	if [ -n "${OPENDTS_TESTDB_OWNER:-}" ]; then
		local self
		self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
		# shellcheck disable=SC2016 # expanded by the watcher's bash
		setsid bash -c 'while kill -0 "$1" 2>/dev/null && [ ! -e "$3/stopped" ]; do sleep 1; done
			if [ ! -e "$3/stopped" ]; then exec bash "$2" stop "$3"; fi' \
			_ "$OPENDTS_TESTDB_OWNER" "$self" "$dir" </dev/null >/dev/null 2>&1 &
	fi
	wait_healthy "$dir" || {
		for ((i = 0; i < n; i++)); do log_tail "$dir/m$i/etcd.log"; done
		cmd_stop "$dir"
		die "the etcd cluster in $dir did not answer a linearizable read within 30 s"
	}
	echo "etcdtestdb.sh: $n-member etcd cluster at $(cat "$dir/endpoints") (dir $dir)"
}

# wait_healthy DIR: a linearizable read (which needs a leader and a
# majority) succeeds.
wait_healthy() {
	local dir=$1 etcdctl
	etcdctl=$(find_bin etcdctl) || {
		sleep 2 # without etcdctl, give the election its time
		return 0
	}
	for _ in $(seq 1 150); do
		if env -i PATH="$PATH" ETCDCTL_API=3 "$etcdctl" --endpoints "$(cat "$dir/endpoints")" \
			--command-timeout 1s get --consistency=l opendts-health >/dev/null 2>&1; then
			return 0
		fi
		sleep 0.2
	done
	return 1
}

cmd_stop() {
	[ $# -eq 1 ] || die "usage: etcdtestdb.sh stop DIR"
	local dir=$1 pidfile pid
	[ -d "$dir" ] || return 0
	touch "$dir/stopped"
	for pidfile in "$dir"/*/etcd.pid; do
		[ -e "$pidfile" ] || continue
		pid=$(cat "$pidfile")
		kill -TERM "$pid" 2>/dev/null || continue
		for _ in $(seq 1 100); do
			alive "$pid" || break
			sleep 0.05
		done
		kill -KILL "$pid" 2>/dev/null || true
	done
}

cmd_kill() {
	[ $# -eq 2 ] || die "usage: etcdtestdb.sh kill DIR I"
	local dir=$1 name pid
	name=$(member_field "$dir" "$2" 1)
	[ -n "$name" ] || die "no member $2 in $dir/members"
	[ -e "$dir/$name/etcd.pid" ] || return 0
	pid=$(cat "$dir/$name/etcd.pid")
	kill -KILL "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 100); do
		alive "$pid" || return 0
		sleep 0.05
	done
	die "member $2 (pid $pid) survived SIGKILL for 5 s"
}

cmd_restart() {
	[ $# -eq 2 ] || die "usage: etcdtestdb.sh restart DIR I"
	local dir
	dir=$(cd "$1" && pwd)
	start_member "$dir" "$2" existing
}

# cmd_build builds the etcd server of a release from go.etcd.io/etcd/server/v3
# (whose own go.mod cannot be installed with go install) in a module of its
# own: a main that calls etcdmain.Main.
cmd_build() {
	[ $# -eq 2 ] || die "usage: etcdtestdb.sh build VERSION DIR (e.g. build v3.7.3 /tmp/etcd37)"
	local version=$1 out src
	mkdir -p "$2"
	out=$(cd "$2" && pwd)
	src=$(mktemp -d)
	trap 'rm -rf "$src"' RETURN
	cat >"$src/main.go" <<'GO'
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO
	(
		cd "$src"
		go mod init etcdbuild >/dev/null 2>&1
		go get "go.etcd.io/etcd/server/v3@$version" >/dev/null
		go mod tidy >/dev/null
		go build -o "$out/etcd" .
	) || die "could not build etcd $version"
	"$out/etcd" --version | head -1
}

case "${1:-}" in
install) shift && cmd_install "$@" ;;
build) shift && cmd_build "$@" ;;
start) shift && cmd_start "$@" ;;
stop) shift && cmd_stop "$@" ;;
kill) shift && cmd_kill "$@" ;;
restart) shift && cmd_restart "$@" ;;
endpoints) shift && cat "$1/endpoints" ;;
*) die "usage: etcdtestdb.sh install | build VERSION DIR | start DIR N [CLIENT_PORT PEER_PORT]... | stop DIR | kill DIR I | restart DIR I | endpoints DIR" ;;
esac
