#!/usr/bin/env bash
# bigtxn.sh: one huge source transaction through a full + incremental job:
# opendts's peak memory, and how long it takes to apply next to a MariaDB
# replica applying the same transaction, in one run on the same machine.
#
#   bench/bigtxn.sh [--rows N] [--blobs N] [--blob-mb M] [--keep]
#
# Environment (flags win): ROWS (5000000 rows of about 250 bytes), BLOBS
# (4 rows of BLOB_MB, copied by the job's full phase), BLOB_MB (16; at 48
# the test servers' 64 MiB buffer pool and 32 MiB redo log stall the
# target's LOAD DATA of such rows past the 30 s write timeout, with the
# code of before this script too), KEEP
# (1 = --keep), OPENDTS_BIN (use this binary instead of building
# bin/opendts).
#
# It starts three MariaDB servers with scripts/testdb.sh on free loopback
# ports: the source, target A (opendts) and target B (a replica of the
# source, one applier thread, log_slave_updates on: both targets binlog
# what they apply). With the table still empty it brings an
# opendts job to status 8 (its full phase copies BLOBS rows of BLOB_MB MB
# LONGBLOBs: the peak RSS then is the copy's with large values) and starts
# the replica, then on the source:
#   1. fills the table in one INSERT ... SELECT transaction of ROWS rows,
#   2. updates every row in one UPDATE transaction,
#   3. inserts a row of BLOB_MB MB and updates the value of another,
# and after each writes a marker row in a transaction of its own. A target
# has applied the big transaction when the marker arrives; the time from
# the source's commit to that is the apply time. It prints both targets'
# apply times, opendts's peak RSS (VmHWM) and its RSS sampled during the
# update, completes the job and compares the three servers (CHECKSUM
# TABLE). Exit status 0 when done and equal, 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"
export LC_ALL=C

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROWS=${ROWS:-5000000}
BLOBS=${BLOBS:-4}
BLOB_MB=${BLOB_MB:-16}
KEEP=${KEEP:-0}
while [ $# -gt 0 ]; do
	case "$1" in
	--rows)
		ROWS=${2:?--rows needs a value}
		shift 2
		;;
	--rows=*)
		ROWS=${1#*=}
		shift
		;;
	--blobs)
		BLOBS=${2:?--blobs needs a value}
		shift 2
		;;
	--blob-mb)
		BLOB_MB=${2:?--blob-mb needs a value}
		shift 2
		;;
	--keep)
		KEEP=1
		shift
		;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "bigtxn.sh: unknown argument $1" >&2
		exit 2
		;;
	esac
done
case "$ROWS" in '' | *[!0-9]* | 0)
	echo "bigtxn.sh: ROWS must be a positive integer" >&2
	exit 2
	;;
esac
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"
scripts/testdb.sh install >/dev/null || die "could not install MariaDB"
MYSQL=$(command -v mariadb || command -v mysql) || die "no mariadb client found"

work=$(mktemp -d "${TMPDIR:-/tmp}/opendts-bigtxn.XXXXXX")
server_pid=""
started=()
sampler=""
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	[ -n "$sampler" ] && kill "$sampler" 2>/dev/null
	stop_everything
	exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

client_opts=(--no-defaults --protocol=tcp -h127.0.0.1 -uroot -N -B)
sql() { # sql PORT ARGS...
	local port=$1
	shift
	"$MYSQL" "${client_opts[@]}" -P"$port" "$@"
}
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

say "$ROWS rows of about 250 bytes   work dir: $work"
src_port=$(free_port 24506)
start_db source "$src_port" 501
dst_a_port=$(free_port $((src_port + 1)))
start_db target-opendts "$dst_a_port" 502
dst_b_port=$(free_port $((dst_a_port + 1)))
# The replica writes what it applies to its own binlog, as opendts's
# target does: the two targets do the same work.
start_db target-replica "$dst_b_port" 503 --log-slave-updates
note "source :$src_port, target A (opendts) :$dst_a_port, target B (replica) :$dst_b_port"
for p in "$src_port" "$dst_a_port" "$dst_b_port"; do
	# Room for the big transaction's binlog cache and row images.
	sql "$p" -e "SET GLOBAL max_binlog_cache_size = 64*1024*1024*1024; SET GLOBAL innodb_lock_wait_timeout = 3600;
		SET GLOBAL max_allowed_packet = 1024*1024*1024" ||
		die "could not set the servers up"
done
sql "$src_port" -e "CREATE DATABASE sbtest;
	CREATE TABLE sbtest.big (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(100) NOT NULL);
	CREATE TABLE sbtest.marker (id INT PRIMARY KEY, at DOUBLE NOT NULL);
	CREATE TABLE sbtest.blobs (id INT PRIMARY KEY, b LONGBLOB)"
# The replica starts from here: it applies the large rows from the binlog.
read -r b_file b_pos < <(sql "$src_port" -e 'SHOW MASTER STATUS' | awk '{ print $1, $2 }')
for i in $(seq 1 "$BLOBS"); do
	sql "$src_port" -e "INSERT INTO sbtest.blobs VALUES ($i, REPEAT(CHAR(48 + $i, 0, 92, 9, 10), $BLOB_MB * 1024 * 1024 / 5))"
done
note "$BLOBS rows of $BLOB_MB MB in sbtest.blobs (bytes that LOAD DATA escapes among them)"

say "target B: a MariaDB replica of the empty source"
sql "$dst_b_port" -e "CREATE DATABASE sbtest;
	CREATE TABLE sbtest.big (id INT PRIMARY KEY, k INT NOT NULL, c CHAR(120) NOT NULL, pad CHAR(100) NOT NULL);
	CREATE TABLE sbtest.marker (id INT PRIMARY KEY, at DOUBLE NOT NULL);
	CREATE TABLE sbtest.blobs (id INT PRIMARY KEY, b LONGBLOB);
	CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$src_port, MASTER_USER='root',
		MASTER_PASSWORD='', MASTER_LOG_FILE='$b_file', MASTER_LOG_POS=$b_pos, MASTER_USE_GTID=no;
	START SLAVE" || die "could not start the replica"

say "target A: opendts full + incremental job"
opendts_binary
start_opendts
create_job "bench-bigtxn-$ROWS" '{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":5}' "$dst_a_port"
check_job "$job" || die "the check failed (items above)"
dts StartMigrateJob --JobId "$job" >/dev/null
for _ in $(seq 600); do
	status=$(dts DescribeMigrateJobs --JobId "$job" | jq -r '.JobList[0].Status')
	[ "$status" = 8 ] && break
	[ "$status" = 10 ] && die "the job failed: $(dts DescribeMigrateJobs --JobId "$job" | jq -c '.JobList[0].ErrorInfo')"
	sleep 0.2
done
[ "$status" = 8 ] || die "the job did not reach status 8"
note "job $job at status 8; opendts pid $server_pid"
note "opendts peak RSS through the full phase (VmHWM), with $BLOBS rows of $BLOB_MB MB: $(($(awk '/^VmHWM/ { print $2 }' "/proc/$server_pid/status") / 1024)) MiB"

rss_kib() { awk '/^VmRSS/ { print $2 }' "/proc/$server_pid/status"; }
hwm_kib() { awk '/^VmHWM/ { print $2 }' "/proc/$server_pid/status"; }

# big NAME MARKER SQL: runs SQL as one transaction on the source, then
# the marker, and times each target until the marker arrives.
big() {
	local name=$1 marker=$2 stmt=$3 t0 t1 ta="" tb="" a b
	say "$name"
	: >"$work/rss.$marker"
	(while :; do
		rss_kib >>"$work/rss.$marker"
		sleep 0.5
	done) &
	sampler=$!
	t0=$EPOCHREALTIME
	sql "$src_port" -e "$stmt" || die "$name failed on the source"
	t1=$EPOCHREALTIME
	sql "$src_port" -e "INSERT INTO sbtest.marker VALUES ($marker, UNIX_TIMESTAMP(NOW(6)))"
	note "source: $(elapsed "$t0" "$t1") s to run and commit"
	while [ -z "$ta" ] || [ -z "$tb" ]; do
		if [ -z "$ta" ]; then
			a=$(sql "$dst_a_port" -e "SELECT COUNT(*) FROM sbtest.marker WHERE id = $marker" 2>/dev/null || echo 0)
			[ "$a" = 1 ] && ta=$EPOCHREALTIME
		fi
		if [ -z "$tb" ]; then
			b=$(sql "$dst_b_port" -e "SELECT COUNT(*) FROM sbtest.marker WHERE id = $marker" 2>/dev/null || echo 0)
			[ "$b" = 1 ] && tb=$EPOCHREALTIME
		fi
		kill -0 "$server_pid" 2>/dev/null || die "opendts serve died: $(tail -n 5 "$work/opendts.log")"
		status=$(dts DescribeMigrateJobs --JobId "$job" | jq -r '.JobList[0].Status')
		[ "$status" = 10 ] && die "the job failed: $(dts DescribeMigrateJobs --JobId "$job" | jq -c '.JobList[0].ErrorInfo')"
		sleep 0.2
	done
	kill "$sampler" 2>/dev/null
	wait "$sampler" 2>/dev/null || true
	sampler=""
	local max_rss
	max_rss=$(sort -n "$work/rss.$marker" | tail -n 1)
	note "applied after the source's commit: opendts $(elapsed "$t1" "$ta") s, replica $(elapsed "$t1" "$tb") s (ratio $(awk -v a="$(elapsed "$t1" "$ta")" -v b="$(elapsed "$t1" "$tb")" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'))"
	note "opendts RSS during it: max $((max_rss / 1024)) MiB sampled; peak so far (VmHWM) $(($(hwm_kib) / 1024)) MiB"
}

big "one INSERT ... SELECT of $ROWS rows" 1 \
	"INSERT INTO sbtest.big SELECT seq, seq % 1000, REPEAT(CHAR(97 + seq % 26), 120), REPEAT('x', 100) FROM sbtest.seq_1_to_$ROWS"
big "one UPDATE of every row" 2 \
	"UPDATE sbtest.big SET k = k + 1, c = REPEAT(CHAR(98 + id % 24), 120)"

big "one row of $BLOB_MB MB inserted, another's value updated" 3 \
	"BEGIN; INSERT INTO sbtest.blobs VALUES (1000, REPEAT('z', $BLOB_MB * 1024 * 1024)); UPDATE sbtest.blobs SET b = REPEAT('y', $BLOB_MB * 1024 * 1024) WHERE id = 1; COMMIT"

say "complete and compare"
dts CompleteMigrateJob --JobId "$job" >/dev/null
for _ in $(seq 600); do
	status=$(dts DescribeMigrateJobs --JobId "$job" | jq -r '.JobList[0].Status')
	case "$status" in 9 | 10) break ;; esac
	sleep 0.2
done
note "job status $status; opendts peak RSS (VmHWM) $(($(hwm_kib) / 1024)) MiB"
sums=()
for p in "$src_port" "$dst_a_port" "$dst_b_port"; do
	sums+=("$(sql "$p" -e 'CHECKSUM TABLE sbtest.big, sbtest.marker, sbtest.blobs EXTENDED' | awk '{ printf "%s ", $2 }')")
done
note "CHECKSUM TABLE: source ${sums[0]}| opendts ${sums[1]}| replica ${sums[2]}"
[ "$status" = 9 ] || die "the job did not succeed"
[ "${sums[0]}" = "${sums[1]}" ] && [ "${sums[0]}" = "${sums[2]}" ] || die "the targets differ from the source"
note "equal"
