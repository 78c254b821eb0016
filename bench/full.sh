#!/usr/bin/env bash
# full.sh: full migration (MigrateType 2) benchmark, opendts against
# mydumper + myloader, side by side in one run on the same machine.
#
#   bench/full.sh [--tables N] [--rows N] [--threads N] [--chunk-rows N] [--keep]
#   bench/full.sh --tables 3000 --rows 3      # many small tables
#
# Environment (flags win): TABLES (default 4), ROWS (250000 rows per table),
# THREADS (4), CHUNK_ROWS (mydumper --rows; default max(5000, 0.9 x ROWS/THREADS)),
# MYLOADER_BINLOG (1: both tools write the target's binlog like any client,
# opendts's default; 0: neither does: myloader's own default SQL_LOG_BIN=0,
# and opendts's ExternParams {"TargetBinlog":"off"}), KEEP (1 = --keep),
# OPENDTS_BIN (use this binary instead of building bin/opendts),
# OPENDTS_COPY_WORKERS (opendts serve's parallel chunk copies; default THREADS),
# OPENDTS_CHUNK_ROWS (opendts's rows per chunk; default opendts's own),
# FILL (sysbench: sysbench's tables, filled by sysbench prepare; small:
# `id INT PRIMARY KEY, v VARCHAR(50), k INT, KEY(k)` created and filled by
# THREADS mariadb clients, one CREATE and one INSERT per table; default
# small above 64 tables, sysbench otherwise), REFERENCE (0: skip mydumper
# and myloader, for a quick look at opendts alone; no ratio).
#
# It installs what it lacks from Debian's packages (sysbench, mydumper, jq,
# curl, time, MariaDB), starts a source and two fresh targets with
# scripts/testdb.sh on free loopback ports under a temp dir, fills the source
# with sysbench, then times
#   1. mydumper (consistent snapshot, tables chunked) to a directory and
#      myloader from it into target A, each separately and their sum;
#   2. opendts: a full job created, checked and started through its API
#      (bin/opendts dts), from StartMigrateJob to status 9, into target B;
# checks that both targets hold what the source holds (CHECKSUM TABLE and
# row counts of every sbtest table on all three servers) and prints a summary.
# Exit status: 0 all done and equal, 1 a step failed or the data differ,
# 2 usage. Everything it starts is stopped on exit, ctrl-C included; the temp
# dir is removed unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

TABLES=${TABLES:-4}
ROWS=${ROWS:-250000}
THREADS=${THREADS:-4}
CHUNK_ROWS=${CHUNK_ROWS:-}
MYLOADER_BINLOG=${MYLOADER_BINLOG:-1}
KEEP=${KEEP:-0}
FILL=${FILL:-}
REFERENCE=${REFERENCE:-1}

while [ $# -gt 0 ]; do
	arg=$1
	shift
	val=""
	case "$arg" in
	--*=*)
		val=${arg#*=}
		arg=${arg%%=*}
		;;
	--tables | --rows | --threads | --chunk-rows)
		[ $# -gt 0 ] || {
			echo "full.sh: $arg needs a value" >&2
			exit 2
		}
		val=$1
		shift
		;;
	esac
	case "$arg" in
	--tables) TABLES=$val ;;
	--rows) ROWS=$val ;;
	--threads) THREADS=$val ;;
	--chunk-rows) CHUNK_ROWS=$val ;;
	--keep) KEEP=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "full.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

for v in TABLES ROWS THREADS; do
	case "${!v}" in
	'' | *[!0-9]* | 0)
		echo "full.sh: $v must be a positive integer, not '${!v}'" >&2
		exit 2
		;;
	esac
done
if [ -z "$FILL" ]; then
	FILL=sysbench
	[ "$TABLES" -le 64 ] || FILL=small
fi
case "$FILL" in sysbench | small) ;; *)
	echo "full.sh: FILL must be sysbench or small, not '$FILL'" >&2
	exit 2
	;;
esac
if [ -z "$CHUNK_ROWS" ]; then
	# About THREADS pieces per table, so that one table alone keeps every
	# thread busy (mydumper counts pieces from EXPLAIN's estimate).
	CHUNK_ROWS=$((ROWS * 9 / 10 / THREADS))
	[ "$CHUNK_ROWS" -ge 5000 ] || CHUNK_ROWS=5000
fi
case "$CHUNK_ROWS" in '' | *[!0-9]* | 0)
	echo "full.sh: CHUNK_ROWS must be a positive integer" >&2
	exit 2
	;;
esac

# ---------------------------------------------------------------- install

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo -n"
fi
missing=()
command -v sysbench >/dev/null 2>&1 || missing+=(sysbench)
{ command -v mydumper >/dev/null 2>&1 && command -v myloader >/dev/null 2>&1; } || missing+=(mydumper)
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]} (apt-get)"
	if [ -n "$sudo" ] && ! command -v sudo >/dev/null 2>&1; then
		die "installing ${missing[*]} needs root (or sudo)"
	fi
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
		die "apt-get update failed"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi
scripts/testdb.sh install >/dev/null || die "could not install MariaDB (scripts/testdb.sh install)"
MYSQL=$(command -v mariadb || command -v mysql) || die "no mariadb client found"

# ---------------------------------------------------------------- cleanup

work=$(mktemp -d "${TMPDIR:-/tmp}/opendts-bench.XXXXXX")
server_pid="" # opendts serve
child_pid=""  # the tool running now (its own process group)
started=()    # testdb dirs
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	if [ -n "$child_pid" ] && kill -0 "$child_pid" 2>/dev/null; then
		kill -TERM -- "-$child_pid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$child_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$child_pid" 2>/dev/null
		wait "$child_pid" 2>/dev/null
	fi
	stop_everything
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "full.sh: interrupted" >&2; exit 130' INT
trap 'echo "full.sh: terminated" >&2; exit 143' TERM

# run LOG CMD... runs CMD under GNU time in its own process group (so
# cleanup can end it and all it started), its output to LOG; sets
# elapsed (seconds) and maxrss (KiB). Waiting in the background lets a
# signal reach the traps at once.
elapsed="" maxrss=""
run() {
	local log=$1 rc=0 t0 t1
	shift
	t0=$EPOCHREALTIME
	setsid /usr/bin/time -f '%M' -o "$log.rss" "$@" >"$log" 2>&1 </dev/null &
	child_pid=$!
	wait "$child_pid" || rc=$?
	child_pid=""
	t1=$EPOCHREALTIME
	elapsed=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	maxrss=$(tail -n 1 "$log.rss" 2>/dev/null || echo 0)
	return "$rc"
}


sql() { # sql PORT ARGS...
	local port=$1
	shift
	"$MYSQL" --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -uroot -N -B "$@"
}


# ---------------------------------------------------------------- servers

say "rows: $TABLES x $ROWS   threads: $THREADS   work dir: $work"
src_port=$(free_port 24306)
start_db source "$src_port" 301
dst_a_port=$(free_port $((src_port + 1)))
start_db target-mydumper "$dst_a_port" 302
dst_b_port=$(free_port $((dst_a_port + 1)))
start_db target-opendts "$dst_b_port" 303
note "source 127.0.0.1:$src_port, target A (mydumper) 127.0.0.1:$dst_a_port, target B (opendts) 127.0.0.1:$dst_b_port"
note "$("$(command -v mariadbd || echo /usr/sbin/mariadbd)" --version)"

sql "$src_port" -e 'CREATE DATABASE sbtest'
if [ "$FILL" = sysbench ]; then
	say "filling the source: sysbench oltp_read_write prepare, $TABLES tables x $ROWS rows"
	if ! run "$work/sysbench.log" sysbench oltp_read_write --db-driver=mysql \
		--mysql-host=127.0.0.1 --mysql-port="$src_port" --mysql-user=root --mysql-password= \
		--mysql-db=sbtest --tables="$TABLES" --table-size="$ROWS" --threads="$THREADS" prepare; then
		tail -n 20 "$work/sysbench.log" >&2
		die "sysbench prepare failed (log above)"
	fi
	note "prepared in $elapsed s ($(sysbench --version))"
else
	# Many small tables: one CREATE (with its secondary index) and one
	# INSERT ... SELECT from MariaDB's sequence engine per table, THREADS
	# clients at once, each on every THREADS-th table.
	say "filling the source: $TABLES tables x $ROWS rows (id INT PRIMARY KEY, v VARCHAR(50), k INT, KEY(k)), $THREADS clients"
	t0=$EPOCHREALTIME
	for c in $(seq 0 $((THREADS - 1))); do
		awk -v n="$TABLES" -v r="$ROWS" -v c="$c" -v t="$THREADS" 'BEGIN {
			for (i = 1 + c; i <= n; i += t) {
				printf "CREATE TABLE sbtest.sbtest%d (id INT PRIMARY KEY, v VARCHAR(50), k INT, KEY k_%d (k));\n", i, i
				printf "INSERT INTO sbtest.sbtest%d SELECT seq, CONCAT(\"value \", seq), seq %% 97 FROM seq_1_to_%d;\n", i, r
			}
		}' | sql "$src_port" sbtest >"$work/fill.$c.log" 2>&1 &
	done
	wait || die "filling the source failed (see $work/fill.*.log)"
	note "filled in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"
fi
tables=()
for i in $(seq 1 "$TABLES"); do tables+=("sbtest.sbtest$i"); done
# Fresh statistics, so that row estimates (mydumper's chunking) are right;
# in batches, so that one statement stays short at 20,000 tables.
printf '%s\n' "${tables[@]}" | awk '{ l = l (l == "" ? "" : ",") $0 } NR % 500 == 0 { print "ANALYZE TABLE " l ";"; l = "" }
	END { if (l != "") print "ANALYZE TABLE " l ";" }' | sql "$src_port" >/dev/null

# fingerprint PORT: one line per table, "name count checksum", in order.
# One client session per server reads every count and checksum (a client
# per table would cost minutes at 20,000 tables); a table missing on the
# server makes its line "name missing missing".
fingerprint() {
	local port=$1
	sql "$port" -e "SELECT CONCAT(TABLE_SCHEMA, '.', TABLE_NAME) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'sbtest'" \
		>"$work/present.$port" 2>/dev/null || : >"$work/present.$port"
	printf '%s\n' "${tables[@]}" | awk -v f="$work/present.$port" '
		BEGIN { while ((getline line < f) > 0) have[line] = 1 }
		have[$0] { print "SELECT \"" $0 "\", COUNT(*) FROM " $0 ";"; list[++k] = $0 }
		END {
			l = ""
			for (i = 1; i <= k; i++) {
				l = l (l == "" ? "" : ",") list[i]
				if (i % 500 == 0 || i == k) { print "CHECKSUM TABLE " l ";"; l = "" }
			}
		}' | sql "$port" 2>/dev/null >"$work/fingerprint.$port" || true
	printf '%s\n' "${tables[@]}" | awk -v f="$work/fingerprint.$port" '
		BEGIN {
			while ((getline line < f) > 0) {
				split(line, a, "\t")
				if (a[1] in count) sum[a[1]] = a[2]; else count[a[1]] = a[2]
			}
		}
		{ print $0, ($0 in count ? count[$0] : "missing"), ($0 in sum && sum[$0] != "" ? sum[$0] : "missing") }'
}
src_print=$(fingerprint "$src_port")
awk -v want="$ROWS" '$2 != want { bad = 1 } END { exit bad }' <<<"$src_print" ||
	die "the source does not hold $ROWS rows in every table:
$src_print"

# ---------------------------------------------------------------- mydumper

if [ "$REFERENCE" = 1 ]; then
	say "mydumper + myloader into target A"
	note "$(mydumper --version 2>&1 | head -1); $(myloader --version 2>&1 | head -1)"
	# Default (consistent) mode: FLUSH TABLES WITH READ LOCK while every thread
	# opens a REPEATABLE READ snapshot, then the lock goes; no --no-locks. No
	# compression. --rows splits each table into primary-key ranges.
	dump_cmd=(mydumper -h 127.0.0.1 -P "$src_port" -u root -B sbtest -o "$work/dump"
		-t "$THREADS" -r "$CHUNK_ROWS" -v 3)
	load_cmd=(myloader -h 127.0.0.1 -P "$dst_a_port" -u root -d "$work/dump"
		-t "$THREADS" -o -v 3)
	[ "$MYLOADER_BINLOG" = 1 ] && load_cmd+=(-e)
	note "${dump_cmd[*]}"
	if ! run "$work/mydumper.log" "${dump_cmd[@]}"; then
		tail -n 30 "$work/mydumper.log" >&2
		die "mydumper failed (log above)"
	fi
	dump_s=$elapsed dump_rss=$maxrss
	dump_files=$(find "$work/dump" -name 'sbtest.sbtest*.sql' ! -name '*-schema.sql' | wc -l)
	dump_mib=$(du -sm "$work/dump" | awk '{ print $1 }')
	note "dumped in $dump_s s: $dump_files data files, $dump_mib MiB, peak RSS $((dump_rss / 1024)) MiB"
	note "${load_cmd[*]}"
	if ! run "$work/myloader.log" "${load_cmd[@]}"; then
		tail -n 30 "$work/myloader.log" >&2
		die "myloader failed (log above)"
	fi
	load_s=$elapsed load_rss=$maxrss
	dl_s=$(awk -v a="$dump_s" -v b="$load_s" 'BEGIN { printf "%.2f", a + b }')
	note "loaded in $load_s s, peak RSS $((load_rss / 1024)) MiB; total $dl_s s"
	a_print=$(fingerprint "$dst_a_port")
	if [ "$a_print" = "$src_print" ]; then
		verdict="source = mydumper target"
		note "target A matches the source (counts and CHECKSUM TABLE)"
	else
		verdict="source != mydumper target"
		note "target A DIFFERS from the source (compared at the end)"
	fi
	rm -rf "$work/dump" # no need to keep a second copy of the data on disk
else
	# Only opendts, for a quick look at its own figures: no ratio.
	dump_s=n/a load_s=n/a dl_s="" a_print=$src_print verdict="source (mydumper not run)"
fi

# ---------------------------------------------------------------- opendts

opendts_s="" opendts_rss="" opendts_err=""

summary() {
	say "summary"
	printf '    rows: %s x %s (%s)   threads: %s   (mydumper --rows %s)   target binlog: %s\n' "$TABLES" "$ROWS" "$FILL" "$THREADS" "$CHUNK_ROWS" \
		"$([ "$MYLOADER_BINLOG" = 1 ] && echo "on for both" || echo "off for both")"
	printf '    mydumper: %s s   myloader: %s s   total: %s s\n' "$dump_s" "$load_s" "$dl_s"
	if [ -n "$opendts_s" ]; then
		printf '    opendts:  %s s   peak RSS: %s MiB\n' "$opendts_s" "$opendts_rss"
		[ -z "$dl_s" ] || printf '    ratio opendts / (mydumper+myloader): %s  (goal <= 0.70)\n' \
			"$(awk -v a="$opendts_s" -v b="$dl_s" 'BEGIN { printf "%.2f", a / b }')"
		printf '    per table: opendts %s ms   mydumper+myloader %s ms\n' \
			"$(awk -v a="$opendts_s" -v n="$TABLES" 'BEGIN { printf "%.2f", 1000 * a / n }')" \
			"$(awk -v a="${dl_s:-0}" -v n="$TABLES" 'BEGIN { printf "%.2f", 1000 * a / n }')"
	else
		printf '    opendts:  FAILED%s\n' "${opendts_rss:+   peak RSS: $opendts_rss MiB}"
		printf '    ratio opendts / (mydumper+myloader): n/a\n'
	fi
	printf '    checksums: %s\n' "$verdict"
}

say "opendts into target B"
opendts_binary
# The same parallelism as mydumper/myloader -t. Environment rather than
# flags, so that a binary without the setting still starts. Its chunk size
# stays opendts's own unless OPENDTS_CHUNK_ROWS is set.
export OPENDTS_COPY_WORKERS=${OPENDTS_COPY_WORKERS:-$THREADS}
note "OPENDTS_COPY_WORKERS=$OPENDTS_COPY_WORKERS${OPENDTS_CHUNK_ROWS:+ OPENDTS_CHUNK_ROWS=$OPENDTS_CHUNK_ROWS}"
start_opendts

peak_rss_mib() {
	awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$server_pid/status" 2>/dev/null || echo "?"
}

extern='{}'
[ "$MYLOADER_BINLOG" = 1 ] || extern='{\"TargetBinlog\":\"off\"}'
create_job "bench-full-$TABLES-x-$ROWS" "{\"RunMode\":1,\"MigrateType\":2,\"MigrateObject\":2,\"ConsistencyType\":5,\"ExternParams\":\"$extern\"}" "$dst_b_port"
note "CreateMigrateJob: $job"
if ! check_job "$job"; then
	verdict+=", opendts target not compared"
	summary
	die "the opendts pre-migration check failed (items above)"
fi

t0=$EPOCHREALTIME
dts StartMigrateJob --JobId "$job" >/dev/null
last=""
while :; do
	info=$(dts DescribeMigrateJobs --JobId "$job" | jq -c '.JobList[0]')
	status=$(jq -r .Status <<<"$info")
	case "$status" in 9 | 10) break ;; esac
	# Progress: in place on a terminal, one line per step in a log.
	if [ -t 1 ]; then
		now=$(jq -r '"status \(.Status), step \(.Detail.StepNow)/\(.Detail.StepAll), \(.Detail.Progress)%"' <<<"$info" 2>/dev/null || true)
		[ "$now" = "$last" ] || printf '\r   %-60s' "$now"
	else
		now=$(jq -r '"status \(.Status), step \(.Detail.StepNow)/\(.Detail.StepAll)"' <<<"$info" 2>/dev/null || true)
		[ "$now" = "$last" ] || note "$now (at $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s)"
	fi
	last=$now
	kill -0 "$server_pid" 2>/dev/null || {
		tail -n 30 "$work/opendts.log" >&2
		die "opendts serve died during the migration (log above)"
	}
	sleep 0.2
done
t1=$EPOCHREALTIME
if [ -t 1 ] && [ -n "$last" ]; then printf '\r%-70s\r' ''; fi
opendts_rss=$(peak_rss_mib)
if [ "$status" = 10 ]; then
	opendts_err=$(jq -r '[.ErrorInfo[]? | .ErrorLog + (if (.HelpDoc // "") != "" then " (" + .HelpDoc + ")" else "" end)] | join("; ")' <<<"$info")
	note "opendts job $job FAILED (status 10): ${opendts_err:-no ErrorInfo}"
	grep -E 'level=(WARN|ERROR)' "$work/opendts.log" | tail -n 5 | sed 's/^/   log: /' >&2 || true
	verdict+=", opendts target not compared"
	summary
	die "opendts failed: ${opendts_err:-status 10 without ErrorInfo}"
fi
opendts_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
note "opendts: status 9 after $opendts_s s, peak RSS $opendts_rss MiB"

# ---------------------------------------------------------------- verify

say "verifying: row counts and CHECKSUM TABLE on all three servers"
b_print=$(fingerprint "$dst_b_port")
if [ "$TABLES" -le 64 ]; then
	printf '   %-18s %10s %12s %12s %12s\n' table rows source "target A" "target B"
	paste -d' ' <(echo "$src_print") <(echo "$a_print") <(echo "$b_print") |
		awk '{ printf "   %-18s %10s %12s %12s %12s\n", $1, $2, $3, $6, $9 }'
else
	# Too many lines to read: the tables that differ, if any.
	paste -d' ' <(echo "$src_print") <(echo "$a_print") <(echo "$b_print") |
		awk '$2 != $5 || $3 != $6 || $2 != $8 || $3 != $9 { bad++; if (bad <= 10) printf "   differs: %s\n", $0 }
			END { printf "   %d tables compared, %d differ\n", NR, bad }'
fi
rc=0
[ "$a_print" = "$src_print" ] || rc=1
if [ "$b_print" = "$src_print" ]; then verdict+=" = opendts target"; else
	verdict+=" != opendts target"
	rc=1
fi
summary
[ "$rc" = 0 ] || die "the targets do not all match the source"
