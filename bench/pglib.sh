# shellcheck shell=bash
# pglib.sh: helpers for the PostgreSQL benchmarks (bench/pg-cdc.sh), next
# to bench/lib.sh, which the caller sources first. Sourced, not run.
# The caller sets: work (its temp dir), server_pid (opendts serve, from
# start_opendts), and defines note; servers started here are listed in
# pg_started, which pg_stop_everything stops.

pg_started=()

# pg_bin sets PGBIN to the newest installed PostgreSQL's bin directory,
# installing PostgreSQL 15 (scripts/pgtestdb.sh install) when there is none.
pg_bin() {
	PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	if [ ! -x "$PGBIN/postgres" ]; then
		scripts/pgtestdb.sh install >/dev/null || die "could not install PostgreSQL (scripts/pgtestdb.sh install)"
		PGBIN=$(printf '%s\n' /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
	fi
	local t
	for t in psql pgbench pg_dump; do
		[ -x "$PGBIN/$t" ] || die "$PGBIN/$t is missing"
	done
}

# start_pg NAME PORT [-c NAME=VALUE...]: a throw-away cluster in $work/NAME
# (scripts/pgtestdb.sh: wal_level=logical, superuser postgres trusted on
# loopback). It is stopped by pg_stop_everything, or by pgtestdb's watcher
# if this shell dies without cleaning up.
start_pg() {
	pg_started+=("$work/$1")
	OPENDTS_TESTDB_OWNER=$$ scripts/pgtestdb.sh start "$work/$1" "$2" "${@:3}" >"$work/$1.start.log" 2>&1 || {
		cat "$work/$1.start.log" >&2
		die "could not start the $1 PostgreSQL on port $2"
	}
}

# pg_pid NAME: the postmaster's pid of the cluster started as NAME.
pg_pid() { head -n 1 "$work/$1/data/postmaster.pid"; }

# pg PORT DB ARGS...: psql as postgres, unaligned, tuples only, tab
# separated, stopping at the first error, in UTC.
pg() {
	local port=$1 db=$2
	shift 2
	PGTZ=UTC "$PGBIN/psql" -X -q -A -t -F $'\t' -v ON_ERROR_STOP=1 \
		-h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

# proc_ticks PID: utime + stime of a process in clock ticks (0 if gone).
proc_ticks() {
	[ -n "$1" ] || {
		echo 0
		return
	}
	awk '{ sub(/^.*\) /, ""); print $12 + $13 }' "/proc/$1/stat" 2>/dev/null || echo 0
}

# pg_cluster_ticks NAME: CPU of a whole cluster in clock ticks: the
# postmaster's own and that of its children it has reaped (cutime,
# cstime: backends that have exited) plus its live children's.
pg_cluster_ticks() {
	local pm c sum kids=()
	pm=$(pg_pid "$1")
	sum=$(awk '{ sub(/^.*\) /, ""); print $12 + $13 + $14 + $15 }' "/proc/$pm/stat" 2>/dev/null || echo 0)
	read -r -a kids 2>/dev/null <"/proc/$pm/task/$pm/children" || true
	for c in "${kids[@]}"; do
		sum=$((sum + $(proc_ticks "$c")))
	done
	echo "$sum"
}

# peak_rss_mib PID: VmHWM of a process in MiB; reset_peak_rss PID starts
# it over from the current RSS (/proc/PID/clear_refs, same user or root).
peak_rss_mib() { awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$1/status" 2>/dev/null || echo 0; }
reset_peak_rss() { echo 5 >"/proc/$1/clear_refs" 2>/dev/null || true; }

# pg_table_sums PORT DB TABLE...: "table rows md5" per table; the md5 is
# of the sorted md5s of the rows' text forms, so it needs no key and is
# the same on any server holding the same rows (in UTC).
pg_table_sums() {
	local port=$1 db=$2 t out
	shift 2
	for t in "$@"; do
		out=$(pg "$port" "$db" -c "SELECT count(*), coalesce(md5(string_agg(h, '' ORDER BY h)), 'empty')
			FROM (SELECT md5(x::text) AS h FROM $t x) s" 2>/dev/null) || out="missing	missing"
		printf '%s %s\n' "$t" "${out//$'\t'/ }"
	done
}

# create_pg_job NAME MIGRATE_OPTION SRC_PORT DST_PORT DATABASE_INFO:
# CreateMigrateJob between two loopback clusters as postgres without a
# password; sets job.
create_pg_job() {
	local out
	out=$(dts CreateMigrateJob --JobName "$1" --MigrateOption "$2" \
		--SrcDatabaseType postgresql --SrcAccessType extranet \
		--SrcInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$3,\"User\":\"postgres\",\"Password\":\"\"}" \
		--DstDatabaseType postgresql --DstAccessType extranet \
		--DstInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$4,\"User\":\"postgres\",\"Password\":\"\",\"Region\":\"ap-guangzhou\"}" \
		--DatabaseInfo "$5")
	job=$(jq -r .JobId <<<"$out")
	case "$job" in '' | null) die "CreateMigrateJob returned no JobId: $out" ;; esac
}

# job_info JOB: the job's entry of DescribeMigrateJobs, one line of JSON.
job_info() { dts DescribeMigrateJobs --JobId "$1" | jq -c '.JobList[0]'; }

# job_failed INFO: prints a failed job's ErrorInfo and opendts's last
# WARN/ERROR log lines, and exits.
job_failed() {
	note "opendts job FAILED (status 10): $(jq -r '[.ErrorInfo[]? | .ErrorLog] | join("; ")' <<<"$1")"
	grep -E 'level=(WARN|ERROR)' "$work/opendts.log" | tail -n 10 | sed 's/^/   log: /' >&2 || true
	die "the opendts job failed"
}

# wait_status JOB WANT TIMEOUT_S: polls every 0.2 s until the job is at
# WANT; status 10 or a dead opendts fails the run.
wait_status() {
	local info status="" n=$(($3 * 5))
	while [ "$n" -gt 0 ]; do
		info=$(job_info "$1")
		status=$(jq -r .Status <<<"$info")
		[ "$status" = "$2" ] && return 0
		[ "$status" = 10 ] && job_failed "$info"
		kill -0 "$server_pid" 2>/dev/null || {
			tail -n 30 "$work/opendts.log" >&2
			die "opendts serve died (log above)"
		}
		n=$((n - 1))
		sleep 0.2
	done
	die "job $1 did not reach status $2 within $3 s (status $status)"
}

# pg_stop_everything: opendts serve first (so that it does not log the
# servers going away), then the clusters in pg_started, then lib.sh's
# stop_everything (the temp dir, KEEP=1).
pg_stop_everything() {
	if [ -n "${server_pid:-}" ] && kill -0 "$server_pid" 2>/dev/null; then
		kill -TERM "$server_pid" 2>/dev/null
		for _ in $(seq 100); do
			kill -0 "$server_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL "$server_pid" 2>/dev/null
		wait "$server_pid" 2>/dev/null
	fi
	local d
	for d in "${pg_started[@]}"; do
		scripts/pgtestdb.sh stop "$d" >/dev/null 2>&1 &
	done
	wait
	stop_everything
}
