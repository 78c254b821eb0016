#!/usr/bin/env bash
# cdc.sh: full + incremental (MigrateType 3) benchmark: how far opendts's
# incremental phase trails a source under sysbench write load, next to a
# MariaDB native replica of the same source, in one run on the same machine.
#
#   bench/cdc.sh [--rows N] [--duration S] [--threads N] [--tables N] [--keep]
#
# Environment (flags win): ROWS (100000 rows per table), DURATION (60 s of
# sysbench run), THREADS (4 sysbench threads), TABLES (4), KEEP (1 = --keep),
# CATCHUP_TIMEOUT (300 s to wait for each target after the load),
# REPLICA_PARALLEL_THREADS (the replica's slave_parallel_threads; default 0,
# MariaDB's own default: one applier thread, as opendts has one connection),
# OPENDTS_BIN (use this binary instead of building bin/opendts).
#
# It installs what it lacks from Debian's packages (sysbench, jq, curl,
# MariaDB), starts three servers with scripts/testdb.sh on free loopback
# ports under a temp dir: the source, target A (opendts) and target B (a
# MariaDB replica of the source, set up from mariadb-dump --master-data).
# It fills the source with sysbench, brings an opendts full + incremental
# job to status 8 (caught up), then runs sysbench oltp_write_only on the
# source while a heartbeat row is written on the source every 100 ms and
# read on both targets every 200 ms. It reports the lag of each target
# during the load (p50/p99/max), the catch-up time of each after the load,
# the lag the API reported (SecondsBehindMaster, MasterSlaveDistance),
# completes the job and checks that all three servers hold the same rows
# (CHECKSUM TABLE of every sbtest table).
# Exit status: 0 done and equal (goals met or not: the summary says),
# 1 a step failed or the data differ, 2 usage. Everything it starts is
# stopped on exit, ctrl-C included; the temp dir is removed unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"
export LC_ALL=C # EPOCHREALTIME and printf with a decimal point

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"

ROWS=${ROWS:-100000}
DURATION=${DURATION:-60}
THREADS=${THREADS:-4}
TABLES=${TABLES:-4}
KEEP=${KEEP:-0}
CATCHUP_TIMEOUT=${CATCHUP_TIMEOUT:-300}
REPLICA_PARALLEL_THREADS=${REPLICA_PARALLEL_THREADS:-0}

while [ $# -gt 0 ]; do
	arg=$1
	shift
	val=""
	case "$arg" in
	--*=*)
		val=${arg#*=}
		arg=${arg%%=*}
		;;
	--rows | --duration | --threads | --tables)
		[ $# -gt 0 ] || {
			echo "cdc.sh: $arg needs a value" >&2
			exit 2
		}
		val=$1
		shift
		;;
	esac
	case "$arg" in
	--rows) ROWS=$val ;;
	--duration) DURATION=$val ;;
	--threads) THREADS=$val ;;
	--tables) TABLES=$val ;;
	--keep) KEEP=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "cdc.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

for v in ROWS DURATION THREADS TABLES CATCHUP_TIMEOUT; do
	case "${!v}" in
	'' | *[!0-9]* | 0)
		echo "cdc.sh: $v must be a positive integer, not '${!v}'" >&2
		exit 2
		;;
	esac
done
case "$REPLICA_PARALLEL_THREADS" in '' | *[!0-9]*)
	echo "cdc.sh: REPLICA_PARALLEL_THREADS must be a number" >&2
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
command -v jq >/dev/null 2>&1 || missing+=(jq)
command -v curl >/dev/null 2>&1 || missing+=(curl)
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
DUMP=$(command -v mariadb-dump || command -v mysqldump) || die "no mariadb-dump found"

# ---------------------------------------------------------------- cleanup

work=$(mktemp -d "${TMPDIR:-/tmp}/opendts-cdc.XXXXXX")
server_pid="" # opendts serve
bg_pids=()    # background helpers, each the leader of its own process group
started=()    # testdb dirs
cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	set +e
	local p
	for p in "${bg_pids[@]}"; do
		kill -TERM -- "-$p" 2>/dev/null
	done
	for p in "${bg_pids[@]}"; do
		for _ in $(seq 30); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -KILL -- "-$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	stop_everything
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "cdc.sh: interrupted" >&2; exit 130' INT
trap 'echo "cdc.sh: terminated" >&2; exit 143' TERM

# spawn LOG CMD... runs CMD in the background in its own process group (so
# cleanup can end it and all it started), output to LOG; sets spawned.
spawned=""
spawn() {
	local log=$1
	shift
	setsid "$@" >"$log" 2>&1 </dev/null &
	spawned=$!
	bg_pids+=("$spawned")
}


# Every client session runs in UTC, as opendts's do.
client_opts=(--no-defaults --protocol=tcp -h127.0.0.1 -uroot -N -B "--init-command=SET time_zone='+00:00'")
sql() { # sql PORT ARGS...
	local port=$1
	shift
	"$MYSQL" "${client_opts[@]}" -P"$port" "$@"
}


# now_us: the wall clock in microseconds (an integer, for bash arithmetic).
now_us() { us=${EPOCHREALTIME/./}; }
secs() { # secs MICROSECONDS: prints seconds with 2 decimals
	printf '%d.%02d' $(($1 / 1000000)) $((($1 % 1000000) / 10000))
}

# ---------------------------------------------------------------- servers

say "load: $TABLES x $ROWS rows, $THREADS threads, $DURATION s   work dir: $work"
src_port=$(free_port 24406)
start_db source "$src_port" 401
dst_a_port=$(free_port $((src_port + 1)))
start_db target-opendts "$dst_a_port" 402
dst_b_port=$(free_port $((dst_a_port + 1)))
start_db target-replica "$dst_b_port" 403
note "source 127.0.0.1:$src_port, target A (opendts) 127.0.0.1:$dst_a_port, target B (replica) 127.0.0.1:$dst_b_port"
note "$("$(command -v mariadbd || echo /usr/sbin/mariadbd)" --version)"

say "filling the source: sysbench oltp_write_only prepare, $TABLES tables x $ROWS rows"
sysbench_opts=(--db-driver=mysql --mysql-host=127.0.0.1 --mysql-port="$src_port" --mysql-user=root
	--mysql-password= --mysql-db=sbtest --tables="$TABLES" --table-size="$ROWS")
sql "$src_port" -e 'CREATE DATABASE sbtest'
t0=$EPOCHREALTIME
sysbench oltp_write_only "${sysbench_opts[@]}" --threads="$THREADS" prepare >"$work/prepare.log" 2>&1 || {
	tail -n 20 "$work/prepare.log" >&2
	die "sysbench prepare failed (log above)"
}
note "prepared in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s ($(sysbench --version))"
tables=()
for i in $(seq 1 "$TABLES"); do tables+=("sbtest.sbtest$i"); done
table_list=$(
	IFS=,
	echo "${tables[*]}"
)
sql "$src_port" -e "ANALYZE TABLE $table_list" >/dev/null
# The heartbeat: one row, rewritten on the source every 100 ms during the
# load; each target's copy of it says how far behind that target is.
sql "$src_port" -e "CREATE TABLE sbtest.heartbeat (id INT PRIMARY KEY, ts DATETIME(6) NOT NULL);
	INSERT INTO sbtest.heartbeat VALUES (1, NOW(6))"

# ---------------------------------------------------------------- replica

say "target B: a MariaDB replica of the source"
# --master-data=2 writes the position as a comment: a CHANGE MASTER that
# names the host resets the file and position, so they go in one statement.
"$DUMP" --no-defaults --protocol=tcp -h127.0.0.1 -P"$src_port" -uroot \
	--single-transaction --master-data=2 --databases sbtest >"$work/replica.sql" 2>"$work/dump.err" ||
	{
		cat "$work/dump.err" >&2
		die "mariadb-dump of the source failed"
	}
change=$(grep -m1 -o "CHANGE MASTER TO MASTER_LOG_FILE='[^']*', MASTER_LOG_POS=[0-9]*" "$work/replica.sql") ||
	die "no binlog position in the dump (mariadb-dump --master-data=2)"
b_file=${change#*MASTER_LOG_FILE=\'}
b_file=${b_file%%\'*}
b_pos=${change##*MASTER_LOG_POS=}
t0=$EPOCHREALTIME
sql "$dst_b_port" <"$work/replica.sql" || die "loading the dump into target B failed"
rm -f "$work/replica.sql"
sql "$dst_b_port" -e "SET GLOBAL slave_parallel_threads = $REPLICA_PARALLEL_THREADS;
	CHANGE MASTER TO MASTER_HOST='127.0.0.1', MASTER_PORT=$src_port, MASTER_USER='root',
		MASTER_PASSWORD='', MASTER_LOG_FILE='$b_file', MASTER_LOG_POS=$b_pos, MASTER_USE_GTID=no;
	START SLAVE" || die "could not start replication on target B"
slave_field() { # slave_field NAME: a field of SHOW SLAVE STATUS on target B
	sql "$dst_b_port" --column-names -e 'SHOW SLAVE STATUS\G' | awk -v f="$1:" '$1 == f { $1 = ""; sub(/^ /, ""); print; exit }'
}
io="" sqlt=""
for _ in $(seq 100); do
	io=$(slave_field Slave_IO_Running)
	sqlt=$(slave_field Slave_SQL_Running)
	[ "$io" = Yes ] && [ "$sqlt" = Yes ] && break
	sleep 0.1
done
if [ "$io" != Yes ] || [ "$sqlt" != Yes ]; then
	die "replication on target B is not running (IO: $io, SQL: $sqlt): $(slave_field Last_IO_Error) $(slave_field Last_SQL_Error)"
fi
note "loaded from mariadb-dump in $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s; replicating from $b_file:$b_pos, Slave_IO_Running=Yes Slave_SQL_Running=Yes"
note "slave_parallel_threads=$(sql "$dst_b_port" -e 'SELECT @@slave_parallel_threads'), log_slave_updates=$(sql "$dst_b_port" -e 'SELECT @@log_slave_updates')"

# ---------------------------------------------------------------- opendts

say "target A: opendts full + incremental job"
opendts_binary
start_opendts

job_info() { dts DescribeMigrateJobs --JobId "$1" | jq -c '.JobList[0]'; }
job_failed() { # job_failed INFO: prints the ErrorInfo of a failed job and exits
	note "opendts job FAILED (status 10): $(jq -r '[.ErrorInfo[]? | .ErrorLog] | join("; ")' <<<"$1")"
	grep -E 'level=(WARN|ERROR)' "$work/opendts.log" | tail -n 5 | sed 's/^/   log: /' >&2 || true
	die "the opendts job failed"
}
# wait_status JOB WANT TIMEOUT_S: polls every 0.2 s until the job is at
# WANT; status 10 fails the run.
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

create_job "bench-cdc-$TABLES-x-$ROWS" '{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":5}' "$dst_a_port"
note "CreateMigrateJob: $job (MigrateType 3, DatabaseInfo [{\"Database\":\"sbtest\"}])"
check_job "$job" || die "the opendts pre-migration check failed (items above)"

t0=$EPOCHREALTIME
dts StartMigrateJob --JobId "$job" >/dev/null
wait_status "$job" 8 1800
ready_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
note "status 8 (ready to complete: full copy done, binlog caught up) $ready_s s after StartMigrateJob"

# ---------------------------------------------------------------- load

# One persistent client per server for the sampler, fed through FIFOs:
# no process start per sample. conn NAME PORT sets NAME_in and NAME_out.
conn() {
	mkfifo "$work/$1.in" "$work/$1.out"
	# shellcheck disable=SC2016 # expanded by the inner bash
	spawn "$work/$1.client.err" bash -c '"$@" <"$0.in" >"$0.out"' "$work/$1" \
		"$MYSQL" "${client_opts[@]}" -P"$2" -n --force
	local fin fout
	exec {fin}>"$work/$1.in"
	exec {fout}<"$work/$1.out"
	printf -v "$1_in" '%s' "$fin"
	printf -v "$1_out" '%s' "$fout"
}
# answer FD N: sets val to the second column of the answer whose first
# column is N (earlier answers a timeout left behind are skipped); fails
# after 5 s without it.
val=""
answer() {
	local line
	val=""
	while IFS= read -r -t 5 -u "$1" line; do
		if [ "${line%%$'\t'*}" = "$2" ]; then
			val=${line#*$'\t'}
			return 0
		fi
	done
	return 1
}
src_in="" src_out="" dsta_in="" dsta_out="" dstb_in="" dstb_out=""
conn src "$src_port"
conn dsta "$dst_a_port"
conn dstb "$dst_b_port"
hb_sql="COALESCE((SELECT UNIX_TIMESTAMP(ts) FROM sbtest.heartbeat WHERE id = 1), 'NA')"

export MYSQL opendts
# heartbeat STOP_FILE PORT: rewrites the heartbeat on the source every
# 100 ms through one client until STOP_FILE exists.
heartbeat() {
	while [ ! -e "$1" ]; do
		echo "UPDATE sbtest.heartbeat SET ts = NOW(6) WHERE id = 1;"
		sleep 0.1
	done | "$MYSQL" --no-defaults --protocol=tcp -h127.0.0.1 -P"$2" -uroot -N -B \
		"--init-command=SET time_zone='+00:00'"
}
# api_lag STOP_FILE JOB: every second, "time status SecondsBehindMaster
# MasterSlaveDistance" from DescribeMigrateJobs until STOP_FILE exists.
api_lag() {
	while [ ! -e "$1" ]; do
		"$opendts" dts DescribeMigrateJobs --JobId "$2" 2>/dev/null |
			jq -r --arg t "$EPOCHREALTIME" '.JobList[0] | "\($t) \(.Status) \(.Detail.SecondsBehindMaster) \(.Detail.MasterSlaveDistance)"' || true
		sleep 1
	done
}
# load: sysbench run, then the time it ended in $work/load.end.
load() {
	sysbench oltp_write_only "$@"
	local rc=$?
	echo "$EPOCHREALTIME" >"$0.tmp"
	mv "$0.tmp" "$0"
	exit "$rc"
}
export -f heartbeat api_lag load

say "load: sysbench oltp_write_only, $THREADS threads, $DURATION s, heartbeat every 100 ms"
spawn "$work/heartbeat.log" bash -c 'heartbeat "$@"' _ "$work/load.end" "$src_port"
hb_pid=$spawned
spawn "$work/api.samples" bash -c 'api_lag "$@"' _ "$work/api.stop" "$job"
api_pid=$spawned
sleep 1
# CPU each process uses from here to the end of the catch-up: what
# replicating costs opendts and its target, next to the replica.
cpu_ticks() { # cpu_ticks PID: utime + stime in clock ticks
	awk '{ print $14 + $15 }' "/proc/$1/stat" 2>/dev/null || echo 0
}
src_pid=$(cat "$work/source/mariadbd.pid")
dst_a_pid=$(cat "$work/target-opendts/mariadbd.pid")
dst_b_pid=$(cat "$work/target-replica/mariadbd.pid")
cpu0=("$(cpu_ticks "$server_pid")" "$(cpu_ticks "$dst_a_pid")" "$(cpu_ticks "$dst_b_pid")" "$(cpu_ticks "$src_pid")")
now_us
load_start_us=$us
spawn "$work/sysbench.log" bash -c 'load "$@"' "$work/load.end" "${sysbench_opts[@]}" \
	--threads="$THREADS" --time="$DURATION" --report-interval=10 run
load_pid=$spawned

# The sampler: every 200 ms the source's NOW(6) and each target's heartbeat,
# asked at once of the three servers; "seconds-since-start now tsA tsB".
: >"$work/lag.samples"
n=0
sample_fail=0
while [ ! -e "$work/load.end" ]; do
	now_us
	next=$((us + 200000))
	n=$((n + 1))
	echo "SELECT $n, UNIX_TIMESTAMP(NOW(6));" >&"$src_in"
	echo "SELECT $n, $hb_sql;" >&"$dsta_in"
	echo "SELECT $n, $hb_sql;" >&"$dstb_in"
	s_now=NA s_a=NA s_b=NA
	answer "$src_out" "$n" && s_now=$val
	answer "$dsta_out" "$n" && s_a=$val
	answer "$dstb_out" "$n" && s_b=$val
	[ "$s_now" != NA ] && [ "$s_a" != NA ] && [ "$s_b" != NA ] || sample_fail=$((sample_fail + 1))
	echo "$(secs $((us - load_start_us))) $s_now $s_a $s_b" >>"$work/lag.samples"
	now_us
	if [ "$us" -lt "$next" ]; then
		sleep "$(printf '0.%06d' $((next - us)))"
	fi
done
load_rc=0
wait "$load_pid" || load_rc=$?
end_us=$(tr -d . <"$work/load.end")
# The writer stops at the end file (within 100 ms); its last value is what
# the source's heartbeat holds once it has exited.
wait "$hb_pid" || true
echo "SELECT 0, UNIX_TIMESTAMP(ts) FROM sbtest.heartbeat WHERE id = 1;" >&"$src_in"
answer "$src_out" 0 || die "cannot read the source's last heartbeat"
last=$val
last_int=${last/./}
grep -E '^\[ *[0-9]+s \]' "$work/sysbench.log" | sed 's/^/   /' || true
[ "$load_rc" = 0 ] || {
	tail -n 20 "$work/sysbench.log" >&2
	die "sysbench run failed (log above)"
}
tps=$(awk '/transactions:/ { gsub(/[(]/, "", $3); print $3; exit }' "$work/sysbench.log")
[ -n "$tps" ] || die "no tps in the sysbench output ($work/sysbench.log)"
note "sysbench: $tps tps; $n lag samples ($sample_fail incomplete)"

# ---------------------------------------------------------------- catch-up

say "catch-up: waiting for both targets to hold the last heartbeat (at most $CATCHUP_TIMEOUT s)"
catch_a="" catch_b=""
deadline=$((end_us + CATCHUP_TIMEOUT * 1000000))
k=0
while :; do
	k=$((k + 1))
	q="SELECT $((n + k)), $hb_sql;"
	[ -n "$catch_a" ] || echo "$q" >&"$dsta_in"
	[ -n "$catch_b" ] || echo "$q" >&"$dstb_in"
	if [ -z "$catch_a" ] && answer "$dsta_out" $((n + k)) && [ "$val" != NA ] && [ "${val/./}" -ge "$last_int" ]; then
		now_us
		catch_a=$(secs $((us - end_us)))
		note "opendts target: caught up $catch_a s after the load"
	fi
	if [ -z "$catch_b" ] && answer "$dstb_out" $((n + k)) && [ "$val" != NA ] && [ "${val/./}" -ge "$last_int" ]; then
		now_us
		catch_b=$(secs $((us - end_us)))
		note "replica target: caught up $catch_b s after the load"
	fi
	[ -n "$catch_a" ] && [ -n "$catch_b" ] && break
	now_us
	[ "$us" -lt "$deadline" ] || break
	sleep 0.05
done
[ -n "$catch_a" ] || note "opendts target: did not catch up within $CATCHUP_TIMEOUT s"
[ -n "$catch_b" ] || note "replica target: did not catch up within $CATCHUP_TIMEOUT s"
cpu1=("$(cpu_ticks "$server_pid")" "$(cpu_ticks "$dst_a_pid")" "$(cpu_ticks "$dst_b_pid")" "$(cpu_ticks "$src_pid")")
hz=$(getconf CLK_TCK)
cpu_s() { awk -v a="$1" -v b="$2" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) / hz }'; }
cpu_opendts=$(cpu_s "${cpu0[0]}" "${cpu1[0]}")
cpu_target_a=$(cpu_s "${cpu0[1]}" "${cpu1[1]}")
cpu_target_b=$(cpu_s "${cpu0[2]}" "${cpu1[2]}")
cpu_source=$(cpu_s "${cpu0[3]}" "${cpu1[3]}")
touch "$work/api.stop"
wait "$api_pid" || true

# ---------------------------------------------------------------- complete

say "CompleteMigrateJob, stop the replica, verify"
t0=$EPOCHREALTIME
dts CompleteMigrateJob --JobId "$job" >/dev/null
wait_status "$job" 9 1800
note "status 9 $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s after CompleteMigrateJob"
read -r m_file m_pos _ < <(sql "$src_port" -e 'SHOW MASTER STATUS')
waited=$(sql "$dst_b_port" -e "SELECT MASTER_POS_WAIT('$m_file', $m_pos, 600)")
case "$waited" in NULL | -1 | '')
	die "the replica did not reach the source's position $m_file:$m_pos (MASTER_POS_WAIT: $waited): $(slave_field Last_SQL_Error)"
	;;
esac
sql "$dst_b_port" -e 'STOP SLAVE'
note "replica stopped at the source's position $m_file:$m_pos"

fingerprint() { # fingerprint PORT: "table count checksum" per sbtest table
	local port=$1 t count sum
	for t in "${tables[@]}"; do
		count=$(sql "$port" -e "SELECT COUNT(*) FROM $t" 2>/dev/null) || count=missing
		sum=$(sql "$port" -e "CHECKSUM TABLE $t" 2>/dev/null | awk '{ print $2 }') || sum=missing
		echo "$t $count ${sum:-missing}"
	done
}
src_print=$(fingerprint "$src_port")
a_print=$(fingerprint "$dst_a_port")
b_print=$(fingerprint "$dst_b_port")
printf '   %-16s %10s %12s %12s %12s\n' table rows source replica opendts
paste -d' ' <(echo "$src_print") <(echo "$b_print") <(echo "$a_print") |
	awk '{ printf "   %-16s %10s %12s %12s %12s\n", $1, $2, $3, $6, $9 }'
hb_cmp() { sql "$1" -e 'SELECT ts FROM sbtest.heartbeat WHERE id = 1' 2>/dev/null || echo missing; }
note "heartbeat: source $(hb_cmp "$src_port"), replica $(hb_cmp "$dst_b_port"), opendts $(hb_cmp "$dst_a_port")"
rc=0
verdict="source"
if [ "$b_print" = "$src_print" ]; then verdict+=" = replica"; else
	verdict+=" != replica"
	rc=1
fi
if [ "$a_print" = "$src_print" ]; then verdict+=" = opendts"; else
	verdict+=" != opendts"
	rc=1
fi

# ---------------------------------------------------------------- summary

# Lag per sample and target: the source's NOW(6) minus the target's heartbeat.
awk '$2 != "NA" && $3 != "NA" { printf "%.6f\n", $2 - $3 }' "$work/lag.samples" | sort -g >"$work/lag.opendts"
awk '$2 != "NA" && $4 != "NA" { printf "%.6f\n", $2 - $4 }' "$work/lag.samples" | sort -g >"$work/lag.replica"
pct() { # pct FILE: "p50 p99 max" of sorted values
	awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a n/a n/a"; exit }
		i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
		i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
		printf "%.2f %.2f %.2f\n", v[i50], v[i99], v[NR] }' "$1"
}
read -r a50 a99 amax <<<"$(pct "$work/lag.opendts")"
read -r b50 b99 bmax <<<"$(pct "$work/lag.replica")"
end_rel=$(secs $((end_us - load_start_us)))
read -r api_s api_mb api_statuses <<<"$(awk -v a="$(secs "$load_start_us")" -v b="$(secs "$end_us")" '
	$1 >= a && $1 <= b { if ($3 > s) s = $3; if ($4 > m) m = $4; st[$2] = 1 }
	END { l = ""; for (k in st) l = l (l == "" ? "" : ",") k; printf "%d %d %s\n", s, m, (l == "" ? "none" : l) }' "$work/api.samples")"
api_n=$(awk -v a="$(secs "$load_start_us")" -v b="$(secs "$end_us")" '$1 >= a && $1 <= b' "$work/api.samples" | wc -l)
note "lag samples: opendts $(wc -l <"$work/lag.opendts"), replica $(wc -l <"$work/lag.replica") over $end_rel s; API samples: $api_n, job status during the load: $api_statuses"
errs=$(grep -cE 'level=(WARN|ERROR)' "$work/opendts.log" || true)
[ "$errs" = 0 ] || {
	note "opendts log: $errs WARN/ERROR lines, the last ones:"
	grep -E 'level=(WARN|ERROR)' "$work/opendts.log" | tail -n 5 | sed 's/^/   log: /'
}

say "summary"
printf '    load: sysbench oltp_write_only %s threads, %s x %s rows, %s s: %s tps\n' "$THREADS" "$TABLES" "$ROWS" "$DURATION" "$tps"
printf '    lag during load (p50 / p99 / max, seconds):  opendts %s / %s / %s   replica %s / %s / %s\n' \
	"$a50" "$a99" "$amax" "$b50" "$b99" "$bmax"
caught() { # caught SECONDS: "1.23 s" or that it did not catch up
	if [ -n "$1" ]; then echo "$1 s"; else echo "did not catch up in $CATCHUP_TIMEOUT s"; fi
}
printf '    catch-up after load:  opendts %s   replica %s\n' "$(caught "$catch_a")" "$(caught "$catch_b")"
printf '    CPU seconds, load and catch-up:  opendts %s + its target %s   replica %s   (source %s)\n' \
	"$cpu_opendts" "$cpu_target_a" "$cpu_target_b" "$cpu_source"
printf '    API lag during load (max): SecondsBehindMaster %s  MasterSlaveDistance %s MB\n' "$api_s" "$api_mb"
printf '    checksums: %s\n' "$verdict"
goal1="missed"
[ "$a99" != n/a ] && awk -v p="$a99" 'BEGIN { exit !(p < 1) }' && goal1="met"
goal2="missed"
if [ -n "$catch_a" ] && { [ -z "$catch_b" ] || awk -v a="$catch_a" -v b="$catch_b" 'BEGIN { exit !(a <= b) }'; }; then
	goal2="met"
fi
printf '    goal opendts lag p99 < 1 s: %s (%s s)\n' "$goal1" "$a99"
printf '    goal catch-up no slower than the replica: %s (opendts %s, replica %s)\n' "$goal2" "${catch_a:-none}" "${catch_b:-none}"
[ "$rc" = 0 ] || die "the targets do not all match the source"
