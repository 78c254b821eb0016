#!/usr/bin/env bash
# pg-full.sh: PostgreSQL full migration (MigrateType 2) benchmark: opendts
# against pg_dump + pg_restore and against pgcopydb, side by side in one run
# on the same machine, from the same source.
#
#   bench/pg-full.sh [--scale N] [--wide-rows N] [--wide-kb N] [--jobs N] [--keep]
#
# Environment (flags win): SCALE (pgbench scale, default 20: 2,000,000
# pgbench_accounts rows), WIDE_ROWS (2000) and WIDE_KB (200): a table of
# WIDE_ROWS rows of WIDE_KB KB of random text each (TOASTed, not
# compressible), JOBS (4: pg_dump -j, pg_restore -j, pgcopydb --table-jobs
# and --index-jobs, OPENDTS_COPY_WORKERS), KEEP (1 = --keep), OPENDTS_BIN
# (use this binary instead of building bin/opendts), PGCOPYDB_ARGS (more
# arguments for pgcopydb clone).
#
# It installs what it lacks from Debian's packages (PostgreSQL 15 and
# pgcopydb through scripts/pgtestdb.sh install; jq, curl, time), starts a
# source and three fresh targets with scripts/pgtestdb.sh on free loopback
# ports under a temp dir, fills the source (pgbench -i, pgbench_history,
# the wide table), then times, one after the other:
#   1. pg_dump -Fd -j JOBS to a directory and pg_restore -j JOBS from it into
#      target 1, each separately and their sum;
#   2. pgcopydb clone --table-jobs JOBS --index-jobs JOBS into target 2;
#   3. opendts: a postgresql -> postgresql full job created, checked and
#      started through its API (bin/opendts dts), from StartMigrateJob to
#      status 9, into target 3; peak RSS of opendts serve (VmHWM).
# A leg that fails is reported as FAILED and the others still run; while
# no opendts engine handles PostgreSQL, its leg says so. Then it checks
# that every target holds what the source holds (row count and an
# order-independent checksum of every table) and prints a summary.
# Exit status: 0 all three done and equal, 1 a leg failed or the data
# differ, 2 usage. Everything it starts is stopped on exit, ctrl-C
# included; the temp dir is removed unless --keep.
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

SCALE=${SCALE:-20}
WIDE_ROWS=${WIDE_ROWS:-2000}
WIDE_KB=${WIDE_KB:-200}
JOBS=${JOBS:-4}
KEEP=${KEEP:-0}
PGCOPYDB_ARGS=${PGCOPYDB_ARGS:-}

while [ $# -gt 0 ]; do
	arg=$1
	shift
	val=""
	case "$arg" in
	--*=*)
		val=${arg#*=}
		arg=${arg%%=*}
		;;
	--scale | --wide-rows | --wide-kb | --jobs)
		[ $# -gt 0 ] || {
			echo "pg-full.sh: $arg needs a value" >&2
			exit 2
		}
		val=$1
		shift
		;;
	esac
	case "$arg" in
	--scale) SCALE=$val ;;
	--wide-rows) WIDE_ROWS=$val ;;
	--wide-kb) WIDE_KB=$val ;;
	--jobs) JOBS=$val ;;
	--keep) KEEP=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "pg-full.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done
for v in SCALE WIDE_ROWS WIDE_KB JOBS; do
	case "${!v}" in
	'' | *[!0-9]* | 0)
		echo "pg-full.sh: $v must be a positive integer, not '${!v}'" >&2
		exit 2
		;;
	esac
done

# ---------------------------------------------------------------- install

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo -n"
fi
missing=()
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
[ -x /usr/bin/time ] || missing+=(time)
if [ ${#missing[@]} -gt 0 ]; then
	say "installing ${missing[*]} (apt-get)"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q >/dev/null ||
		die "apt-get update failed"
	$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
		"${missing[@]}" >/dev/null || die "apt-get install ${missing[*]} failed"
fi
scripts/pgtestdb.sh install >/dev/null || die "could not install PostgreSQL and pgcopydb (scripts/pgtestdb.sh install)"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
# pgcopydb runs pg_dump and pg_restore from PATH: the same ones as leg 1.
export PATH="$pgbin:$PATH"
command -v pgcopydb >/dev/null 2>&1 || die "pgcopydb not found after scripts/pgtestdb.sh install"

# ---------------------------------------------------------------- cleanup

work=$(mktemp -d "${TMPDIR:-/tmp}/opendts-pgbench.XXXXXX")
# The servers run as the postgres user when we are root: it must reach
# the work dir (pgtestdb.sh opens the parents for traversal).
chmod 755 "$work"
server_pid="" # opendts serve
child_pid=""  # the tool running now (its own process group)
started=()    # MariaDB dirs for lib.sh's stop_everything: none here
pg_started=() # PostgreSQL dirs
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
	# Wait for these stops by pid: a bare wait would also wait for
	# opendts serve, which stop_everything ends afterwards.
	local d stops=()
	for d in "${pg_started[@]}"; do
		scripts/pgtestdb.sh stop "$d" >/dev/null 2>&1 &
		stops+=($!)
	done
	[ ${#stops[@]} -eq 0 ] || wait "${stops[@]}"
	stop_everything
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "pg-full.sh: interrupted" >&2; exit 130' INT
trap 'echo "pg-full.sh: terminated" >&2; exit 143' TERM

# run LOG CMD... runs CMD under GNU time in its own process group (so
# cleanup can end it and all it started), its output to LOG; sets elapsed
# (seconds) and maxrss (KiB).
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

start_pg() { # start_pg NAME PORT
	pg_started+=("$work/$1")
	scripts/pgtestdb.sh start "$work/$1" "$2" >"$work/$1.start.log" 2>&1 || {
		cat "$work/$1.start.log" >&2
		die "could not start the $1 PostgreSQL on port $2"
	}
}

url() { echo "postgres://postgres@127.0.0.1:$1/${2:-bench}?sslmode=disable&connect_timeout=10"; }
psql_at() { # psql_at PORT [DB] ARGS...: quiet, unaligned, tuples only, stop on error
	local port=$1 db=$2
	shift 2
	psql -X -q -A -t -v ON_ERROR_STOP=1 -d "$(url "$port" "$db")" "$@"
}

# ---------------------------------------------------------------- servers

say "pgbench scale $SCALE + $WIDE_ROWS x $WIDE_KB KB wide rows   jobs: $JOBS   work dir: $work"
src_port=$(free_port 26432)
start_pg source "$src_port"
dump_port=$(free_port $((src_port + 1)))
start_pg target-pg_dump "$dump_port"
copydb_port=$(free_port $((dump_port + 1)))
start_pg target-pgcopydb "$copydb_port"
opendts_port=$(free_port $((copydb_port + 1)))
start_pg target-opendts "$opendts_port"
note "source 127.0.0.1:$src_port; targets: pg_dump+pg_restore 127.0.0.1:$dump_port, pgcopydb 127.0.0.1:$copydb_port, opendts 127.0.0.1:$opendts_port"
note "$("$pgbin/postgres" --version); $(pgcopydb --version 2>&1 | grep -m1 -o 'pgcopydb version .*')"

# ---------------------------------------------------------------- source

say "filling the source: pgbench -i -s $SCALE, pgbench_history, wide"
psql_at "$src_port" postgres -c 'CREATE DATABASE bench'
# Server-side generation (G): the quickest; then vacuum and primary keys.
if ! run "$work/pgbench.log" pgbench -i -s "$SCALE" -I dtGvp -h 127.0.0.1 -p "$src_port" -U postgres bench; then
	tail -n 20 "$work/pgbench.log" >&2
	die "pgbench -i failed (log above)"
fi
note "pgbench -i in $elapsed s ($(pgbench --version))"
# pgbench -i leaves pgbench_history empty; it is the table without a key,
# so it gets 25,000 rows per scale unit, every row twice (duplicates that
# a copy must keep).
t0=$EPOCHREALTIME
psql_at "$src_port" bench -c "
	INSERT INTO pgbench_history (tid, bid, aid, delta, mtime)
	SELECT 1 + (g / 2) % ($SCALE * 10), 1 + (g / 2) % $SCALE, 1 + ((g::bigint / 2) * 7919) % ($SCALE * 100000),
		(g / 2) % 10001 - 5000, TIMESTAMP '2024-01-01' + (g / 2) * interval '1.5 second'
	FROM generate_series(0, $SCALE * 25000 - 1) g"
# Random hex text: pglz finds nothing to shrink, so every value is stored
# out of line in TOAST, uncompressed.
psql_at "$src_port" bench -c "
	CREATE TABLE wide (id integer PRIMARY KEY, payload text NOT NULL);
	INSERT INTO wide
	SELECT g, (SELECT string_agg(md5(random()::text || g || s), '') FROM generate_series(1, $WIDE_KB * 1000 / 32) s)
	FROM generate_series(1, $WIDE_ROWS) g" -c "VACUUM ANALYZE"
note "pgbench_history and wide filled in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s; database size $(psql_at "$src_port" bench -c "SELECT pg_size_pretty(pg_database_size('bench'))")"

tables=$(psql_at "$src_port" bench -c "SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")

# fingerprint PORT: one line per table, "name rows checksum". The checksum
# is the sum of the first 64 bits of each row's md5 (text form, in the same
# output settings everywhere): it does not depend on row order and counts
# duplicates, and needs no memory for a whole table's text.
fingerprint() {
	local port=$1 t
	for t in $tables; do
		PGOPTIONS="-c TimeZone=UTC -c DateStyle=ISO -c extra_float_digits=1" psql_at "$port" bench -F ' ' -c "
			SELECT '$t', count(*), coalesce(sum(('x' || substr(md5(r::text), 1, 16))::bit(64)::bigint::numeric), 0)
			FROM ONLY public.$t AS r" 2>/dev/null || echo "$t missing missing"
	done
}
# schema PORT: pg_dump --schema-only without what differs between two
# dumps of equal databases (the random \restrict key, versions).
schema() {
	pg_dump --schema-only -d "$(url "$1")" 2>&1 | grep -v -e '^\\restrict ' -e '^\\unrestrict ' -e '^-- Dumped '
}
src_print=$(fingerprint "$src_port")
schema "$src_port" >"$work/schema.source.sql"

# ---------------------------------------------------------------- pg_dump + pg_restore

say "1. pg_dump -Fd -j $JOBS + pg_restore -j $JOBS into target 1"
dump_s="" restore_s="" dr_s="" dr_err=""
psql_at "$dump_port" postgres -c 'CREATE DATABASE bench'
dump_cmd=(pg_dump -Fd -j "$JOBS" -f "$work/dump" -d "$(url "$src_port")")
restore_cmd=(pg_restore -j "$JOBS" --exit-on-error -d "$(url "$dump_port")" "$work/dump")
note "${dump_cmd[*]}"
if run "$work/pg_dump.log" "${dump_cmd[@]}"; then
	dump_s=$elapsed
	note "dumped in $dump_s s: $(du -sm "$work/dump" | awk '{ print $1 }') MiB, peak RSS $((maxrss / 1024)) MiB"
	note "${restore_cmd[*]}"
	if run "$work/pg_restore.log" "${restore_cmd[@]}"; then
		restore_s=$elapsed
		dr_s=$(awk -v a="$dump_s" -v b="$restore_s" 'BEGIN { printf "%.2f", a + b }')
		note "restored in $restore_s s, peak RSS $((maxrss / 1024)) MiB; total $dr_s s"
	else
		tail -n 20 "$work/pg_restore.log" >&2
		dr_err="pg_restore failed (log above)"
	fi
else
	tail -n 20 "$work/pg_dump.log" >&2
	dr_err="pg_dump failed (log above)"
fi
[ -z "$dr_err" ] || note "FAILED: $dr_err"
rm -rf "$work/dump" # no need to keep a second copy of the data on disk

# ---------------------------------------------------------------- pgcopydb

say "2. pgcopydb clone --table-jobs $JOBS --index-jobs $JOBS into target 2"
copydb_s="" copydb_err=""
psql_at "$copydb_port" postgres -c 'CREATE DATABASE bench'
# shellcheck disable=SC2206 # PGCOPYDB_ARGS is split on purpose
copydb_cmd=(pgcopydb clone --source "$(url "$src_port")" --target "$(url "$copydb_port")"
	--table-jobs "$JOBS" --index-jobs "$JOBS" --dir "$work/pgcopydb" $PGCOPYDB_ARGS)
note "${copydb_cmd[*]}"
if run "$work/pgcopydb.log" "${copydb_cmd[@]}"; then
	copydb_s=$elapsed
	note "cloned in $copydb_s s, peak RSS $((maxrss / 1024)) MiB (one process of several)"
else
	grep -E 'ERROR|FATAL' "$work/pgcopydb.log" | head -n 20 >&2
	copydb_err="pgcopydb clone failed (log above)"
	note "FAILED: $copydb_err"
fi
rm -rf "$work/pgcopydb"

# ---------------------------------------------------------------- opendts

say "3. opendts into target 3"
opendts_s="" opendts_rss="" opendts_err=""

# try_dts ACTION ARGS...: the API call's output; on an API error, the
# error in out and status 1 (the leg fails, the script goes on).
out=""
try_dts() {
	out=$("$opendts" dts "$@" 2>&1)
}

peak_rss_mib() {
	awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$server_pid/status" 2>/dev/null || echo "?"
}

# opendts_leg runs the job; on failure sets opendts_err and returns 1.
opendts_leg() {
	local job status="" info check t0 t1 last="" now
	opendts_binary
	export OPENDTS_COPY_WORKERS=$JOBS
	note "OPENDTS_COPY_WORKERS=$OPENDTS_COPY_WORKERS"
	start_opendts
	# Database level: opendts creates bench on the target itself.
	if ! try_dts CreateMigrateJob --JobName "bench-pg-full-s$SCALE" \
		--MigrateOption '{"RunMode":1,"MigrateType":2,"MigrateObject":2,"ConsistencyType":5}' \
		--SrcDatabaseType postgresql --SrcAccessType extranet \
		--SrcInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$src_port,\"User\":\"postgres\",\"Password\":\"\"}" \
		--DstDatabaseType postgresql --DstAccessType extranet \
		--DstInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$opendts_port,\"User\":\"postgres\",\"Password\":\"\",\"Region\":\"ap-guangzhou\"}" \
		--DatabaseInfo '[{"Database":"bench"}]'; then
		opendts_err="CreateMigrateJob refused the job: $out"
		return 1
	fi
	job=$(jq -r .JobId <<<"$out")
	case "$job" in '' | null)
		opendts_err="CreateMigrateJob returned no JobId: $out"
		return 1
		;;
	esac
	note "CreateMigrateJob: $job"
	try_dts CreateMigrateCheckJob --JobId "$job" || {
		opendts_err="CreateMigrateCheckJob: $out"
		return 1
	}
	for _ in $(seq 600); do
		try_dts DescribeMigrateJobs --JobId "$job" && status=$(jq -r '.JobList[0].Status' <<<"$out")
		case "$status" in 4 | 5) break ;; esac
		sleep 0.2
	done
	try_dts DescribeMigrateCheckJob --JobId "$job" || true
	check=$out
	case "$status" in
	4)
		note "check passed$(jq -r '[.CheckItems[] | select(.Result == "warning") | .Name] |
			if length > 0 then " with warnings: " + join(", ") else "" end' <<<"$check" 2>/dev/null)"
		;;
	5)
		jq -r '"   check failed: " + .ErrorMessage,
			(.CheckItems[] | select(.Result != "pass") |
			"     [\(.Result)] \(.Name): \(.Message)" + (if .Advice != "" then "\n         advice: \(.Advice)" else "" end))' \
			<<<"$check" >&2 || echo "$check" >&2
		if jq -e '.CheckItems[] | select(.Name == "EngineSupportCheck" and .Result != "pass")' <<<"$check" >/dev/null 2>&1; then
			opendts_err="no opendts engine supports postgresql -> postgresql yet (EngineSupportCheck failed): this build predates the PostgreSQL engine"
		else
			opendts_err="the pre-migration check failed (items above)"
		fi
		return 1
		;;
	*)
		opendts_err="the check did not finish within 120 s (status $status)"
		return 1
		;;
	esac

	t0=$EPOCHREALTIME
	try_dts StartMigrateJob --JobId "$job" || {
		opendts_err="StartMigrateJob: $out"
		return 1
	}
	while :; do
		if try_dts DescribeMigrateJobs --JobId "$job"; then
			info=$(jq -c '.JobList[0]' <<<"$out")
			status=$(jq -r .Status <<<"$info")
			case "$status" in 9 | 10) break ;; esac
			now=$(jq -r '"status \(.Status), step \(.Detail.StepNow)/\(.Detail.StepAll)"' <<<"$info" 2>/dev/null || true)
			[ "$now" = "$last" ] || note "$now (at $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s)"
			last=$now
		fi
		kill -0 "$server_pid" 2>/dev/null || {
			tail -n 30 "$work/opendts.log" >&2
			opendts_err="opendts serve died during the migration (log above)"
			return 1
		}
		sleep 0.2
	done
	t1=$EPOCHREALTIME
	opendts_rss=$(peak_rss_mib)
	if [ "$status" = 10 ]; then
		opendts_err="job $job ended at status 10: $(jq -r '[.ErrorInfo[]? | .ErrorLog] | join("; ")' <<<"$info")"
		grep -E 'level=(WARN|ERROR)' "$work/opendts.log" | tail -n 5 | sed 's/^/   log: /' >&2 || true
		return 1
	fi
	opendts_s=$(awk -v a="$t0" -v b="$t1" 'BEGIN { printf "%.2f", b - a }')
	note "opendts: status 9 after $opendts_s s, peak RSS $opendts_rss MiB"
}
if ! opendts_leg; then
	note "FAILED: $opendts_err"
fi

# ---------------------------------------------------------------- verify

say "verifying: rows and checksum of every table, and the schema, on all targets"
rc=0
# verify_leg NAME PORT ERR: the target's fingerprint in $work/print.NAME
# ("-" for a failed leg), its schema compared with the source's.
verify_leg() {
	local name=$1 port=$2 err=$3 t
	if [ -n "$err" ]; then
		for t in $tables; do echo "$t - -"; done >"$work/print.$name"
		rc=1
		return
	fi
	fingerprint "$port" >"$work/print.$name"
	schema "$port" >"$work/schema.$name.sql"
	if ! diff -u "$work/schema.source.sql" "$work/schema.$name.sql" >"$work/schema.$name.diff"; then
		note "$name: the schema DIFFERS from the source's:"
		head -n 30 "$work/schema.$name.diff" | sed 's/^/      /'
		rc=1
	fi
	if [ "$(cat "$work/print.$name")" != "$src_print" ]; then
		note "$name: the rows DIFFER from the source's"
		rc=1
	fi
}
verify_leg pg_dump "$dump_port" "$dr_err"
verify_leg pgcopydb "$copydb_port" "$copydb_err"
verify_leg opendts "$opendts_port" "$opendts_err"
# A target's cell is its checksum, with its row count when that differs.
printf '   %-17s %9s  %-25s %-25s %-25s %-25s\n' table rows source pg_dump+restore pgcopydb opendts
paste -d' ' <(echo "$src_print") "$work/print.pg_dump" "$work/print.pgcopydb" "$work/print.opendts" |
	awk 'function cell(n, sum) { return n == "-" ? "(failed)" : (n == $2 ? "" : n " rows: ") sum }
		{ printf "   %-17s %9s  %-25s %-25s %-25s %-25s\n", $1, $2, $3, cell($5, $6), cell($8, $9), cell($11, $12) }'

# ---------------------------------------------------------------- summary

say "summary"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }
printf '    pgbench scale %s + wide %s x %s KB   jobs: %s\n' "$SCALE" "$WIDE_ROWS" "$WIDE_KB" "$JOBS"
if [ -n "$dr_s" ]; then
	printf '    pg_dump: %s s   pg_restore: %s s   total: %s s\n' "$dump_s" "$restore_s" "$dr_s"
else
	printf '    pg_dump + pg_restore: FAILED (%s)\n' "$dr_err"
fi
if [ -n "$copydb_s" ]; then
	printf '    pgcopydb clone: %s s\n' "$copydb_s"
else
	printf '    pgcopydb clone: FAILED (%s)\n' "$copydb_err"
fi
if [ -n "$opendts_s" ]; then
	printf '    opendts: %s s   peak RSS: %s MiB  (goal < 256)\n' "$opendts_s" "$opendts_rss"
	[ -z "$dr_s" ] || printf '    ratio opendts / (pg_dump+pg_restore): %s  (goal <= 0.70)\n' "$(ratio "$opendts_s" "$dr_s")"
	[ -z "$copydb_s" ] || printf '    ratio opendts / pgcopydb: %s  (goal <= 1.00)\n' "$(ratio "$opendts_s" "$copydb_s")"
else
	printf '    opendts: FAILED: %s\n' "$opendts_err"
	printf '    ratios: n/a\n'
fi
[ -z "$copydb_s" ] || [ -z "$dr_s" ] || printf '    (pgcopydb / (pg_dump+pg_restore): %s)\n' "$(ratio "$copydb_s" "$dr_s")"
if [ "$rc" = 0 ]; then
	printf '    data: every target equals the source (rows, checksums, schema)\n'
else
	printf '    data: NOT all targets equal the source, or a leg failed (above)\n'
fi
[ "$rc" = 0 ] || die "not every leg finished with a copy equal to the source"
