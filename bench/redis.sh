#!/usr/bin/env bash
# redis.sh: Redis → Redis benchmark: opendts's full + incremental job next
# to a native Redis replica (REPLICAOF) of the same source, in one run on
# the same machine.
#
#   bench/redis.sh [--keys N] [--rate N] [--duration S] [--keep]
#
# Environment (flags win): KEYS (2000000 keys of mixed types), RATE (20000
# writes/s during the load), DURATION (60 s of load), KEEP (1 = --keep),
# OPENDTS_BIN (use this binary instead of building bin/opendts).
#
# It starts three redis-server with scripts/redistestdb.sh on free loopback
# ports under a temp dir: the source, the native replica and opendts's
# target. bench/redisbench fills the source (60% strings, 40% hashes,
# lists, sets and sorted sets), times the native replica's full sync
# (REPLICAOF until master_link_status is up and the sync done) and an
# opendts MigrateType 3 job through the API from StartMigrateJob to status
# 8, then writes RATE commands/s for DURATION with a heartbeat key set on
# the source every 100 ms and read on both targets every 2 ms: lag
# p50/p99/max, catch-up after the load, the lag the API reported; then
# Complete, and the key counts of the three servers.
# The source starts a diskless sync at once (repl-diskless-sync-delay 0)
# for both, rather than after Redis's default 5 s wait for more replicas.
# Goals: full sync at least 200,000 keys/s and at most 1.5x the native
# replica's time; lag p99 under 250 ms.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"

note() { printf '   %s\n' "$*"; }
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

KEYS=${KEYS:-2000000}
RATE=${RATE:-20000}
DURATION=${DURATION:-60}
KEEP=${KEEP:-0}
while [ $# -gt 0 ]; do
	case "$1" in
	--keys) KEYS=$2 && shift 2 ;;
	--rate) RATE=$2 && shift 2 ;;
	--duration) DURATION=$2 && shift 2 ;;
	--keep) KEEP=1 && shift ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*) die "unknown argument $1 (see --help)" ;;
	esac
done

scripts/redistestdb.sh install >/dev/null
command -v curl >/dev/null || die "curl is needed"
work=$(mktemp -d "${TMPDIR:-/tmp}/opendts-bench-redis.XXXXXX")
started=()
cleanup() {
	set +e # everything is stopped, whatever fails on the way
	for d in "${started[@]}"; do
		scripts/redistestdb.sh stop "$d" >/dev/null 2>&1 || true
	done
	started=()
	stop_everything
}
trap cleanup EXIT

start_redis() { # start_redis NAME PORT [REDIS_ARG...]
	started+=("$work/$1")
	scripts/redistestdb.sh start "$work/$1" "$2" "${@:3}" >"$work/$1.start.log" 2>&1 || {
		cat "$work/$1.start.log" >&2
		die "could not start redis $1 on port $2"
	}
}
src_port=$(free_port 16400)
# No 5 s wait for more replicas before a diskless sync: both syncs measure
# the transfer itself.
start_redis source "$src_port" --repl-diskless-sync-delay 0
native_port=$(free_port $((src_port + 1)))
start_redis native "$native_port"
dst_port=$(free_port $((native_port + 1)))
start_redis target "$dst_port"
note "source :$src_port, native replica :$native_port, opendts target :$dst_port ($(redis-server --version | cut -d' ' -f3))"

opendts_binary
start_opendts
go build -o "$work/redisbench" ./bench/redisbench || die "go build ./bench/redisbench failed"
"$work/redisbench" -src "127.0.0.1:$src_port" -native "127.0.0.1:$native_port" -target "127.0.0.1:$dst_port" \
	-keys "$KEYS" -rate "$RATE" -duration "${DURATION}s"
