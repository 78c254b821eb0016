#!/usr/bin/env bash
# pgtestdb.sh: throw-away PostgreSQL clusters for opendts tests and benchmarks.
#
#   scripts/pgtestdb.sh install                  install PostgreSQL 15 (and pgcopydb) from Debian packages
#   scripts/pgtestdb.sh start DIR PORT [-c NAME=VALUE...]
#                                                initdb (first time) and start a cluster in DIR
#   scripts/pgtestdb.sh stop DIR                 stop the cluster started in DIR
#
# A started cluster listens on 127.0.0.1:PORT only, with wal_level=logical.
# The superuser is "postgres", trusted without a password over loopback;
# every other role authenticates with scram-sha-256, replication included.
# Everything (data, socket, log) lives under DIR. PostgreSQL refuses to run
# as root, so as root the cluster runs as the postgres system user (which
# Debian's package creates) and DIR is handed to it.
set -euo pipefail

die() {
	echo "pgtestdb.sh: $*" >&2
	exit 1
}

# bindir prints the newest installed PostgreSQL server's bin directory.
bindir() {
	local d
	d=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
	[ -n "$d" ] && [ -x "$d/postgres" ] || return 1
	echo "$d"
}

cmd_install() {
	local want=(postgresql-15 postgresql-client-15 pgcopydb) missing=()
	for p in "${want[@]}"; do
		dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p")
	done
	if [ ${#missing[@]} -eq 0 ]; then
		echo "pgtestdb.sh: PostgreSQL already installed at $(bindir)"
		return 0
	fi
	local sudo=""
	if [ "$(id -u)" -ne 0 ]; then
		command -v sudo >/dev/null 2>&1 || die "installing PostgreSQL needs root (or sudo)"
		sudo="sudo -n"
	fi
	# Debian starts (and creates) a packaged cluster unless policy-rc.d says
	# no; the tests never use it.
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
				--no-install-recommends "${missing[@]}"
	} || rc=$?
	if [ -n "$made_policy" ]; then
		$sudo rm -f "$policy"
	fi
	[ "$rc" -eq 0 ] || die "apt-get failed (exit $rc)"
	bindir >/dev/null || die "postgres still missing after apt-get install"
	echo "pgtestdb.sh: installed $(bindir)"
}

# as_owner runs a command as the cluster's owner: postgres when we are root.
as_owner() {
	if [ "$(id -u)" -eq 0 ]; then
		runuser -u postgres -- "$@"
	else
		"$@"
	fi
}

cmd_start() {
	[ $# -ge 2 ] || die "usage: pgtestdb.sh start DIR PORT [-c NAME=VALUE...]"
	local dir=$1 port=$2
	shift 2
	local extra=("$@")
	case "$port" in
	*[!0-9]*) die "PORT must be a number" ;;
	esac
	local bin
	bin=$(bindir) || die "PostgreSQL not found: run 'scripts/pgtestdb.sh install'"
	mkdir -p "$dir"
	dir=$(cd "$dir" && pwd)
	if [ "$(id -u)" -eq 0 ]; then
		# The postgres user must reach DIR: open the parents for traversal
		# (the test's own temporary directories are 0700) and hand DIR over.
		local p
		p=$(dirname "$dir")
		while [ "$p" != "/" ]; do
			chmod o+x "$p" 2>/dev/null || true
			p=$(dirname "$p")
		done
		chown postgres: "$dir"
	fi
	if [ -e "$dir/data/postmaster.pid" ] && as_owner "$bin/pg_ctl" -D "$dir/data" status >/dev/null 2>&1; then
		die "a cluster is already running in $dir"
	fi
	if [ ! -e "$dir/data/PG_VERSION" ]; then
		rm -rf "$dir/data"
		if ! as_owner "$bin/initdb" -D "$dir/data" -U postgres --encoding=UTF8 --locale=C.UTF-8 \
			--auth-local=trust --auth-host=scram-sha-256 >"$dir/initdb.log" 2>&1; then
			cat "$dir/initdb.log" >&2
			rm -rf "$dir/data"
			die "initdb failed in $dir"
		fi
		as_owner tee "$dir/data/pg_hba.conf" >/dev/null <<'EOF'
local all all trust
host all postgres 127.0.0.1/32 trust
host replication postgres 127.0.0.1/32 trust
host all all 127.0.0.1/32 scram-sha-256
host replication all 127.0.0.1/32 scram-sha-256
EOF
	fi
	# Durability is traded for speed: the data dies with the test.
	# pg_ctl hands -o to a shell: one line, no newlines.
	local opts="-c port=$port -c listen_addresses=127.0.0.1 -c unix_socket_directories=$dir"
	opts+=" -c wal_level=logical -c max_replication_slots=20 -c max_wal_senders=20"
	opts+=" -c max_connections=200 -c shared_buffers=128MB -c fsync=off"
	opts+=" -c synchronous_commit=off -c full_page_writes=off -c max_wal_size=1GB"
	opts+=" ${extra[*]}"
	if ! as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -w -t 60 start -o "$opts" >"$dir/pg_ctl.out" 2>&1; then
		cat "$dir/pg_ctl.out" >&2
		tail -n 30 "$dir/postgres.log" >&2 || true
		die "postgres did not start in $dir"
	fi
	local pid
	pid=$(head -n 1 "$dir/data/postmaster.pid")
	# OPENDTS_TESTDB_OWNER is the pid of the process the cluster is for: a
	# watcher stops it once that process is gone.
	if [ -n "${OPENDTS_TESTDB_OWNER:-}" ]; then
		local self
		self="$(cd "$(dirname "$0")" && pwd)/$(basename "$0")"
		# shellcheck disable=SC2016 # expanded by the watcher's bash
		setsid bash -c 'while kill -0 "$1" 2>/dev/null && kill -0 "$2" 2>/dev/null; do sleep 1; done
			if kill -0 "$2" 2>/dev/null; then exec bash "$3" stop "$4"; fi' \
			_ "$OPENDTS_TESTDB_OWNER" "$pid" "$self" "$dir" </dev/null >/dev/null 2>&1 &
	fi
	echo "pgtestdb.sh: postgres pid $pid listening on 127.0.0.1:$port (dir $dir)"
}

cmd_stop() {
	[ $# -eq 1 ] || die "usage: pgtestdb.sh stop DIR"
	local dir=$1 bin
	[ -e "$dir/data/postmaster.pid" ] || return 0
	bin=$(bindir) || die "PostgreSQL not found"
	as_owner "$bin/pg_ctl" -D "$dir/data" -m immediate -w -t 60 stop >/dev/null 2>&1 || true
}

case "${1:-}" in
install) shift && cmd_install "$@" ;;
start) shift && cmd_start "$@" ;;
stop) shift && cmd_stop "$@" ;;
*) die "usage: pgtestdb.sh install | start DIR PORT [-c NAME=VALUE...] | stop DIR" ;;
esac
