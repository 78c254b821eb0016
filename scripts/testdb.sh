#!/usr/bin/env bash
# testdb.sh: throw-away MariaDB servers for opendts tests and benchmarks.
#
#   scripts/testdb.sh install                    install MariaDB from Debian packages
#   scripts/testdb.sh start DIR PORT SERVER_ID [MARIADBD_ARG...]
#                                                start a server with its own datadir in DIR
#   scripts/testdb.sh stop DIR                   stop the server started in DIR
#
# A started server listens on 127.0.0.1:PORT only, takes no password for root
# over TCP, writes a ROW/FULL binlog and keeps everything (data, socket, pid
# file, logs) under DIR, so several can run side by side and a test can throw
# the directory away. It never reads /etc/mysql: every setting is on the
# command line (--no-defaults), so the distro's configuration cannot leak in.
set -euo pipefail

die() {
	echo "testdb.sh: $*" >&2
	exit 1
}

# find_bin NAME... prints the first of the names found on PATH or in the
# sbin directories, which a non-login root shell may lack on PATH.
find_bin() {
	local name dir
	for name in "$@"; do
		if command -v "$name" >/dev/null 2>&1; then
			command -v "$name"
			return 0
		fi
		for dir in /usr/sbin /usr/local/sbin /usr/bin /usr/local/bin; do
			if [ -x "$dir/$name" ]; then
				echo "$dir/$name"
				return 0
			fi
		done
	done
	return 1
}

cmd_install() {
	if find_bin mariadbd >/dev/null; then
		echo "testdb.sh: mariadbd already installed at $(find_bin mariadbd)"
		return 0
	fi
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || die "installing MariaDB needs root (or sudo)"
		sudo="sudo -n"
	fi
	# Debian starts a packaged service unless policy-rc.d says no (101). The
	# tests never use that service, so forbid it for the duration of the
	# install, unless the machine already has a policy (as containers do).
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
				--no-install-recommends mariadb-server mariadb-client
	} || rc=$?
	if [ -n "$made_policy" ]; then
		$sudo rm -f "$policy"
	fi
	[ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
	# Where a service did start anyway (systemd ignores policy-rc.d on some
	# setups), stop it: it would only hold memory and port 3306.
	if command -v systemctl >/dev/null 2>&1 && systemctl is-active --quiet mariadb 2>/dev/null; then
		$sudo systemctl stop mariadb || true
		$sudo systemctl disable mariadb >/dev/null 2>&1 || true
	elif [ -e /run/mysqld/mysqld.pid ]; then
		$sudo kill "$(cat /run/mysqld/mysqld.pid)" 2>/dev/null || true
	fi
	find_bin mariadbd >/dev/null || die "mariadbd still missing after apt-get install"
	echo "testdb.sh: installed $(find_bin mariadbd)"
}

# admin DIR ARGS... runs mariadb-admin against the server in DIR over its socket.
admin() {
	local dir=$1
	shift
	"$(find_bin mariadb-admin mysqladmin)" --no-defaults --protocol=socket \
		--socket="$dir/mariadbd.sock" --user=root "$@"
}

cmd_start() {
	[ $# -ge 3 ] || die "usage: testdb.sh start DIR PORT SERVER_ID [MARIADBD_ARG...]"
	local dir=$1 port=$2 server_id=$3
	shift 3
	# Anything after SERVER_ID goes to mariadbd as is (a test's own
	# settings, such as --lower-case-table-names=1).
	local extra=("$@")
	case "$port$server_id" in
	*[!0-9]*) die "PORT and SERVER_ID must be numbers" ;;
	esac
	[ "$server_id" -gt 0 ] || die "SERVER_ID must be positive: a binlog source needs one"
	local mariadbd install_db
	mariadbd=$(find_bin mariadbd mysqld) || die "mariadbd not found: run 'scripts/testdb.sh install'"
	install_db=$(find_bin mariadb-install-db mysql_install_db) || die "mariadb-install-db not found"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ -e "$dir/mariadbd.pid" ] && kill -0 "$(cat "$dir/mariadbd.pid")" 2>/dev/null; then
		die "a server is already running in $dir"
	fi

	local as_root=()
	if [ "$(id -u)" -eq 0 ]; then
		# mariadbd refuses to run as root unless told to.
		as_root=(--user=root)
	fi

	# Each server has its own tmpdir: bootstraps running side by side in
	# the shared /tmp have clobbered each other's temporary tables.
	mkdir -p "$dir/tmp"
	if [ ! -d "$dir/data/mysql" ]; then
		mkdir -p "$dir/data"
		if ! "$install_db" --no-defaults "${as_root[@]}" --datadir="$dir/data" --tmpdir="$dir/tmp" \
			--auth-root-authentication-method=normal --skip-test-db \
			--skip-name-resolve >"$dir/install.log" 2>&1; then
			cat "$dir/install.log" >&2
			rm -rf "$dir/data" # a half-made datadir would be taken as ready next time
			die "mariadb-install-db failed in $dir"
		fi
	fi

	# Durability is traded for speed everywhere: the data dies with the test.
	setsid "$mariadbd" --no-defaults "${as_root[@]}" \
		--datadir="$dir/data" \
		--tmpdir="$dir/tmp" \
		--socket="$dir/mariadbd.sock" \
		--pid-file="$dir/mariadbd.pid" \
		--log-error="$dir/error.log" \
		--port="$port" \
		--bind-address=127.0.0.1 \
		--server-id="$server_id" \
		--log-bin=binlog \
		--binlog-format=ROW \
		--binlog-row-image=FULL \
		--character-set-server=utf8mb4 \
		--collation-server=utf8mb4_general_ci \
		--skip-name-resolve \
		--innodb-buffer-pool-size=64M \
		--innodb-log-file-size=32M \
		--innodb-flush-log-at-trx-commit=2 \
		--innodb-doublewrite=0 \
		--innodb-use-native-aio=0 \
		--innodb-fast-shutdown=2 \
		--sync-binlog=0 \
		--performance-schema=OFF \
		--max-connections=300 \
		"${extra[@]}" \
		</dev/null >"$dir/mariadbd.out" 2>&1 &
	local pid=$!

	for _ in $(seq 1 300); do
		if admin "$dir" --connect-timeout=1 ping >/dev/null 2>&1; then
			break
		fi
		if ! kill -0 "$pid" 2>/dev/null; then
			tail -n 30 "$dir/error.log" >&2 || true
			die "mariadbd exited during start-up (see $dir/error.log)"
		fi
		sleep 0.1
	done
	admin "$dir" --connect-timeout=1 ping >/dev/null 2>&1 || {
		tail -n 30 "$dir/error.log" >&2 || true
		cmd_stop "$dir"
		die "mariadbd did not accept connections within 30 s"
	}

	# Root over TCP comes from 127.0.0.1, which skip-name-resolve never turns
	# into 'localhost'; anonymous accounts would shadow test users.
	"$(find_bin mariadb mysql)" --no-defaults --protocol=socket --socket="$dir/mariadbd.sock" \
		--user=root -e "
		CREATE USER IF NOT EXISTS 'root'@'127.0.0.1';
		GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
		DELETE FROM mysql.global_priv WHERE User = '';
		FLUSH PRIVILEGES;" || {
		cmd_stop "$dir"
		die "could not set up root@127.0.0.1"
	}
	# OPENDTS_TESTDB_OWNER is the pid of the process the server is for: a
	# watcher stops the server once that process is gone, so a test binary
	# that panicked or timed out (and never ran its cleanup) leaves no
	# server behind.
	if [ -n "${OPENDTS_TESTDB_OWNER:-}" ]; then
		local self
		self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
		# shellcheck disable=SC2016 # expanded by the watcher's bash
		setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
			if kill -0 "$2" 2>/dev/null; then exec bash "$3" stop "$4"; fi' \
			_ "$OPENDTS_TESTDB_OWNER" "$pid" "$self" "$dir" </dev/null >/dev/null 2>&1 &
	fi
	echo "testdb.sh: mariadbd pid $pid listening on 127.0.0.1:$port (dir $dir)"
}

cmd_stop() {
	[ $# -eq 1 ] || die "usage: testdb.sh stop DIR"
	local dir=$1 pid
	[ -e "$dir/mariadbd.pid" ] || return 0
	pid=$(cat "$dir/mariadbd.pid")
	kill -TERM "$pid" 2>/dev/null || return 0
	for _ in $(seq 1 300); do
		kill -0 "$pid" 2>/dev/null || return 0
		sleep 0.1
	done
	echo "testdb.sh: mariadbd $pid ignored SIGTERM for 30 s; killing it" >&2
	kill -KILL "$pid" 2>/dev/null || true
}

case "${1:-}" in
install) shift && cmd_install "$@" ;;
start) shift && cmd_start "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) die "usage: testdb.sh install | start DIR PORT SERVER_ID | stop DIR" ;;
esac
