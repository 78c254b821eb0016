#!/usr/bin/env bash
# jobs.sh: many full + incremental jobs at once on one opendts node.
#
#   bench/jobs.sh [--jobs N] [--tables N] [--rows N] [--duration S] [--max-copy-workers N] [--keep]
#
# Environment (flags win): JOBS (default 20), TABLES (tables per job, 4),
# ROWS (rows per table, 50000), DURATION (seconds of write load once every
# job is ready, 30), MAX_COPY_WORKERS (opendts serve -max-copy-workers, 8),
# COPY_WORKERS (workers per job, 4), KEEP (1 = --keep), OPENDTS_BIN.
#
# One source holds JOBS databases (db1..dbN, TABLES tables of ROWS rows
# each, plus a heartbeat row); one target receives them. JOBS full +
# incremental jobs (MigrateType 3, one database each) are created, checked
# and started at once. A light write load runs on every database from the
# start: its heartbeat row rewritten every 0.2 s and one row updated in
# each table. The script samples about every 0.5 s (plus the time the
# samples take)
#   - each job's status (the copy time is from StartMigrateJob to status 8)
#     and whether it waits for a copy worker (Detail.WaitingForWorker);
#   - each job's lag, the age of its heartbeat on the target (now minus the
#     heartbeat's time as it arrived), once the job is at status 8;
#   - the node: opendts serve's RSS and CPU time, and the connections each
#     server has open (Threads_connected).
# After DURATION s of load with every job ready, every job is completed
# (CompleteMigrateJob waitForSync), and each database is compared by
# CHECKSUM TABLE on both servers. Prints per job: copy time, lag p99 and max,
# the samples spent waiting for a worker; for the node: peak RSS, peak
# connections per server, mean CPU.
# Exit status: 0 all jobs succeeded and every database is equal; 1 otherwise.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

JOBS=${JOBS:-20}
TABLES=${TABLES:-4}
ROWS=${ROWS:-50000}
DURATION=${DURATION:-30}
MAX_COPY_WORKERS=${MAX_COPY_WORKERS:-8}
COPY_WORKERS=${COPY_WORKERS:-4}
KEEP=${KEEP:-0}
while [ $# -gt 0 ]; do
	arg=$1
	shift
	case "$arg" in
	--jobs) JOBS=$1 && shift ;;
	--tables) TABLES=$1 && shift ;;
	--rows) ROWS=$1 && shift ;;
	--duration) DURATION=$1 && shift ;;
	--max-copy-workers) MAX_COPY_WORKERS=$1 && shift ;;
	--keep) KEEP=1 ;;
	-h | --help)
		sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
		exit 0
		;;
	*)
		echo "jobs.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done
for v in JOBS TABLES ROWS DURATION COPY_WORKERS; do
	case "${!v}" in '' | *[!0-9]* | 0)
		echo "jobs.sh: $v must be a positive integer, not '${!v}'" >&2
		exit 2
		;;
	esac
done

scripts/testdb.sh install >/dev/null || die "could not install MariaDB (scripts/testdb.sh install)"
MYSQL=$(command -v mariadb || command -v mysql) || die "no mariadb client found"
command -v jq >/dev/null || die "jq is needed (apt-get install jq)"

work=$(mktemp -d "${TMPDIR:-/tmp}/opendts-jobs.XXXXXX")
server_pid=""
started=()
bg_pids=()
cleanup() {
	local rc=$? p
	trap - EXIT INT TERM
	set +e
	for p in "${bg_pids[@]}"; do
		kill -TERM -- "-$p" 2>/dev/null || kill "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	stop_everything
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "jobs.sh: interrupted" >&2; exit 130' INT
trap 'echo "jobs.sh: terminated" >&2; exit 143' TERM

sql() { # sql PORT ARGS...: a client session in UTC
	local port=$1
	shift
	"$MYSQL" --no-defaults --protocol=tcp -h127.0.0.1 -P"$port" -uroot -N -B "--init-command=SET time_zone='+00:00'" "$@"
}

say "$JOBS jobs x $TABLES tables x $ROWS rows, max-copy-workers $MAX_COPY_WORKERS, copy-workers $COPY_WORKERS   work dir: $work"
src_port=$(free_port 24506)
start_db source "$src_port" 601
dst_port=$(free_port $((src_port + 1)))
start_db target "$dst_port" 602
note "source 127.0.0.1:$src_port, target 127.0.0.1:$dst_port"

say "filling the source"
t0=$EPOCHREALTIME
for j in $(seq 1 "$JOBS"); do
	{
		echo "CREATE DATABASE db$j;"
		echo "CREATE TABLE db$j.heartbeat (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL);"
		echo "INSERT INTO db$j.heartbeat VALUES (1, NOW(6));"
		for t in $(seq 1 "$TABLES"); do
			echo "CREATE TABLE db$j.t$t (id INT PRIMARY KEY, v VARCHAR(50), k INT, KEY k (k));"
			echo "INSERT INTO db$j.t$t SELECT seq, CONCAT('value ', seq), seq % 97 FROM db$j.seq_1_to_$ROWS;"
		done
	} | sql "$src_port" &
	# Four clients at a time.
	[ $((j % 4)) -ne 0 ] || wait
done
wait
note "filled in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s"

say "opendts"
opendts_binary
export OPENDTS_MAX_COPY_WORKERS=$MAX_COPY_WORKERS OPENDTS_COPY_WORKERS=$COPY_WORKERS
start_opendts
jobs=()
for j in $(seq 1 "$JOBS"); do
	out=$(dts CreateMigrateJob --JobName "bench-jobs-db$j" \
		--MigrateOption '{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":5}' \
		--SrcDatabaseType mariadb --SrcAccessType extranet \
		--SrcInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$src_port,\"User\":\"root\",\"Password\":\"\"}" \
		--DstDatabaseType mariadb --DstAccessType extranet \
		--DstInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$dst_port,\"User\":\"root\",\"Password\":\"\",\"Region\":\"ap-guangzhou\"}" \
		--DatabaseInfo "[{\"Database\":\"db$j\"}]")
	jobs+=("$(jq -r .JobId <<<"$out")")
done
for id in "${jobs[@]}"; do dts CreateMigrateCheckJob --JobId "$id" >/dev/null; done
for id in "${jobs[@]}"; do check_job "$id" >/dev/null || die "the check of $id failed (items above)"; done
note "$JOBS jobs created and checked"

# The load: every 0.2 s, each database's heartbeat and one row of each of
# its tables, through one client session.
load() {
	local n=0 j t
	while :; do
		for j in $(seq 1 "$JOBS"); do
			echo "UPDATE db$j.heartbeat SET ts = NOW(6) WHERE id = 1;"
			for t in $(seq 1 "$TABLES"); do
				echo "UPDATE db$j.t$t SET k = k + 1 WHERE id = $((n % ROWS + 1));"
			done
		done
		n=$((n + 1))
		sleep 0.2
	done | sql "$src_port" --force
}
setsid bash -c "$(declare -f load sql); MYSQL=$MYSQL JOBS=$JOBS TABLES=$TABLES ROWS=$ROWS src_port=$src_port load" >"$work/load.log" 2>&1 </dev/null &
bg_pids+=($!)

# lag_sql: the age of every job's heartbeat on the target, in ms.
lag_sql=""
for j in $(seq 1 "$JOBS"); do
	[ -z "$lag_sql" ] || lag_sql+=" UNION ALL "
	lag_sql+="SELECT $j, TIMESTAMPDIFF(MICROSECOND, (SELECT ts FROM db$j.heartbeat WHERE id = 1), NOW(6)) DIV 1000"
done

clk=$(getconf CLK_TCK)
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$server_pid/stat"; }
cpu0=$(cpu_ticks)
t0=$EPOCHREALTIME
for id in "${jobs[@]}"; do dts StartMigrateJob --JobId "$id" >/dev/null; done
note "started $JOBS jobs"
declare -A ready_at=() waited=()
prev=""
all_ready_at=""
samples="$work/samples" # kind job value
: >"$samples"
peak_src=0 peak_dst=0 peak_rss=0
while :; do
	now=$EPOCHREALTIME
	dt_ms=$(((${now/./} - ${prev:-${t0/./}}) / 1000))
	prev=${now/./}
	el=$(awk -v a="$t0" -v b="$now" 'BEGIN { printf "%.1f", b - a }')
	list=$(dts DescribeMigrateJobs --Limit 100 | jq -r '.JobList[] | "\(.JobId) \(.Status) \(.Detail.WaitingForWorker // false)"')
	n_ready=0 n_wait=0
	while read -r id status waiting; do
		[ "$status" = 10 ] && die "job $id failed: $(dts DescribeMigrateJobs --JobId "$id" | jq -r '[.JobList[0].ErrorInfo[]? | .ErrorLog] | join("; ")')"
		if [ "$waiting" = true ]; then
			waited[$id]=$((${waited[$id]:-0} + dt_ms))
			n_wait=$((n_wait + 1))
		fi
		if [ "$status" = 8 ]; then
			n_ready=$((n_ready + 1))
			[ -n "${ready_at[$id]:-}" ] || ready_at[$id]=$el
		fi
	done <<<"$list"
	if [ "$n_ready" -gt 0 ]; then
		# The lag of the jobs ready (status 8); before, a job is copying.
		sql "$dst_port" -e "$lag_sql" 2>/dev/null | while read -r j ms; do
			[ "$ms" = NULL ] || [ -z "${ready_at[${jobs[$((j - 1))]}]:-}" ] || echo "lag db$j $ms"
		done >>"$samples" || true
	fi
	c=$(sql "$src_port" -e "SHOW GLOBAL STATUS LIKE 'Threads_connected'" | awk '{ print $2 }')
	[ "$c" -le "$peak_src" ] || peak_src=$c
	c=$(sql "$dst_port" -e "SHOW GLOBAL STATUS LIKE 'Threads_connected'" | awk '{ print $2 }')
	[ "$c" -le "$peak_dst" ] || peak_dst=$c
	rss=$(awk '/^VmRSS:/ { printf "%d", $2 / 1024 }' "/proc/$server_pid/status")
	[ "$rss" -le "$peak_rss" ] || peak_rss=$rss
	printf '\r   %6.1f s: %2d of %d ready, %2d waiting for a worker, RSS %d MiB   ' "$el" "$n_ready" "$JOBS" "$n_wait" "$rss"
	if [ "$n_ready" = "$JOBS" ] && [ -z "$all_ready_at" ]; then
		all_ready_at=$el
		printf '\n'
		note "every job ready after $el s; $DURATION s of load from now"
	fi
	if [ -n "$all_ready_at" ] && awk -v a="$el" -v b="$all_ready_at" -v d="$DURATION" 'BEGIN { exit !(a - b >= d) }'; then
		break
	fi
	awk -v a="$el" 'BEGIN { exit !(a > 3600) }' && die "not every job was ready within an hour"
	sleep 0.5
done
printf '\n'
cpu_s=$(awk -v a="$cpu0" -v b="$(cpu_ticks)" -v hz="$clk" 'BEGIN { printf "%.1f", (b - a) / hz }')
wall_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
peak_hwm=$(awk '/^VmHWM:/ { printf "%d", $2 / 1024 }' "/proc/$server_pid/status")
kill -TERM -- "-${bg_pids[0]}" 2>/dev/null || true

say "completing"
for id in "${jobs[@]}"; do dts CompleteMigrateJob --JobId "$id" --CompleteMode waitForSync >/dev/null; done
for id in "${jobs[@]}"; do
	for _ in $(seq 600); do
		st=$(dts DescribeMigrateJobs --JobId "$id" | jq -r '.JobList[0].Status')
		case "$st" in 9 | 10) break ;; esac
		sleep 0.2
	done
	[ "$st" = 9 ] || die "job $id ended at status $st"
done
note "every job succeeded (status 9)"
rc=0
differ=0
for j in $(seq 1 "$JOBS"); do
	list=$(for t in $(seq 1 "$TABLES"); do printf 'db%d.t%d,' "$j" "$t"; done)
	list=${list%,}
	if [ "$(sql "$src_port" -e "CHECKSUM TABLE $list")" != "$(sql "$dst_port" -e "CHECKSUM TABLE $list")" ]; then
		note "db$j differs"
		differ=$((differ + 1))
		rc=1
	fi
done

say "summary"
printf '    %d jobs x %d tables x %d rows, max-copy-workers %s, copy-workers %s, %s s of load after all ready\n' \
	"$JOBS" "$TABLES" "$ROWS" "$MAX_COPY_WORKERS" "$COPY_WORKERS" "$DURATION"
printf '    %-14s %8s %10s %10s %12s\n' job "copy s" "lag p99 s" "lag max s" "waited s"
for j in $(seq 1 "$JOBS"); do
	id=${jobs[$((j - 1))]}
	read -r p99 mx < <(awk -v k="db$j" '$1 == "lag" && $2 == k { print $3 }' "$samples" | sort -n |
		awk '{ v[NR] = $1 } END { if (NR == 0) { print "n/a n/a"; exit } i = int(NR * 0.99 + 0.999); if (i > NR) i = NR; printf "%.2f %.2f\n", v[i] / 1000, v[NR] / 1000 }')
	printf '    %-14s %8s %10s %10s %12s\n' "db$j" "${ready_at[$id]}" "$p99" "$mx" "$(awk -v n="${waited[$id]:-0}" 'BEGIN { printf "%.1f", n / 1000 }')"
done
all_p99=$(awk '$1 == "lag" { print $3 }' "$samples" | sort -n | awk '{ v[NR] = $1 } END { i = int(NR * 0.99 + 0.999); if (i > NR) i = NR; if (NR) printf "%.2f", v[i] / 1000; else print "n/a" }')
printf '    every job ready after %s s; lag p99 over all jobs %s s (goal < 2 s)\n' "$all_ready_at" "$all_p99"
printf '    node: peak RSS %s MiB (goal < 1024), CPU %s s in %s s (%s cores on average)\n' "$peak_hwm" "$cpu_s" "$wall_s" \
	"$(awk -v c="$cpu_s" -v w="$wall_s" 'BEGIN { printf "%.2f", c / w }')"
printf '    connections at most: source %s, target %s (Threads_connected, the sampler and the load included)\n' "$peak_src" "$peak_dst"
printf '    checksums: %s\n' "$([ "$differ" = 0 ] && echo "every database equal" || echo "$differ databases differ")"
exit "$rc"
