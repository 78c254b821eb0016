#!/usr/bin/env bash
# pg-cdc.sh: PostgreSQL full + incremental (MigrateType 3) benchmark: how
# far opendts's incremental phase trails a source under pgbench write load,
# next to PostgreSQL's own logical replication subscriber of the same
# source, in one run on the same machine (issue 13).
#
#   bench/pg-cdc.sh [--scale N] [--rate TPS] [--duration S] [--unthrottled S] [--keep]
#
# Environment (flags win): SCALE (10: pgbench -i -s, 1,000,000 accounts),
# RATE (500 transactions/s for the first pass, pgbench -R; 0 skips that
# pass), DURATION (60 s of the first pass), UNTHROTTLED (30 s of a second
# pass without -R; 0 skips it), CLIENTS (4, pgbench -c), THREADS (2,
# pgbench -j), KEEP (1 = --keep), CATCHUP_TIMEOUT (300 s to wait for each
# target after a pass), OPENDTS_BIN (use this binary instead of building
# bin/opendts).
#
# It starts three PostgreSQL clusters with scripts/pgtestdb.sh on free
# loopback ports under a temp dir: the source, target A (opendts) and
# target B (a subscriber: PostgreSQL's own logical replication). It fills
# database bench on the source with pgbench -i (pgbench_history, which has
# no key, gets REPLICA IDENTITY FULL) and a heartbeat table hb, brings an
# opendts full + incremental job for database bench to status 8, then sets
# up target B: the tables' schema with pg_dump --schema-only, a publication
# of the pgbench tables and hb on the source, and a subscription with
# copy_data = true, until every table is synchronized. Then, per pass,
# pgbench -N runs on the source while the heartbeat row is updated on the
# source every 100 ms and read on both targets every 200 ms. Per pass it
# reports both targets' lag (p50/p99/max), their catch-up time after the
# load, the CPU seconds of opendts, of the subscriber's apply worker, of
# each cluster and of each walsender, opendts's peak RSS and the lag the
# API reported. Finally it completes the job, waits for the subscriber to
# reach the source's position, drops the subscription and checks that the
# three clusters hold the same rows (count and md5 of every table).
# Exit status: 0 done and equal (goals met or not: the summary says),
# 1 a step failed, the data differ or a replication slot was left on the
# source, 2 usage. Everything it starts is stopped on exit, ctrl-C
# included; the temp dir is removed unless --keep.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"
export LC_ALL=C PGTZ=UTC

usage() {
	sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//'
}

say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
note() { printf '   %s\n' "$*"; }
# shellcheck source=bench/lib.sh
. "$(dirname "$0")/lib.sh"
# shellcheck source=bench/pglib.sh
. "$(dirname "$0")/pglib.sh"

SCALE=${SCALE:-10}
RATE=${RATE:-500}
DURATION=${DURATION:-60}
UNTHROTTLED=${UNTHROTTLED:-30}
CLIENTS=${CLIENTS:-4}
THREADS=${THREADS:-2}
KEEP=${KEEP:-0}
CATCHUP_TIMEOUT=${CATCHUP_TIMEOUT:-300}

while [ $# -gt 0 ]; do
	arg=$1
	shift
	val=""
	case "$arg" in
	--*=*)
		val=${arg#*=}
		arg=${arg%%=*}
		;;
	--scale | --rate | --duration | --unthrottled)
		[ $# -gt 0 ] || {
			echo "pg-cdc.sh: $arg needs a value" >&2
			exit 2
		}
		val=$1
		shift
		;;
	esac
	case "$arg" in
	--scale) SCALE=$val ;;
	--rate) RATE=$val ;;
	--duration) DURATION=$val ;;
	--unthrottled) UNTHROTTLED=$val ;;
	--keep) KEEP=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "pg-cdc.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

for v in SCALE DURATION CLIENTS THREADS CATCHUP_TIMEOUT; do
	case "${!v}" in
	'' | *[!0-9]* | 0)
		echo "pg-cdc.sh: $v must be a positive integer, not '${!v}'" >&2
		exit 2
		;;
	esac
done
for v in RATE UNTHROTTLED; do
	case "${!v}" in '' | *[!0-9]*)
		echo "pg-cdc.sh: $v must be a number (0 skips its pass), not '${!v}'" >&2
		exit 2
		;;
	esac
done
[ "$RATE" != 0 ] || [ "$UNTHROTTLED" != 0 ] || {
	echo "pg-cdc.sh: RATE=0 and UNTHROTTLED=0 leave no pass to run" >&2
	exit 2
}

# ---------------------------------------------------------------- install

sudo=""
if [ "$(id -u)" -ne 0 ]; then
	sudo="sudo -n"
fi
missing=()
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
PGBIN=""
pg_bin

# ---------------------------------------------------------------- cleanup

work=$(mktemp -d "${TMPDIR:-/tmp}/opendts-pg-cdc.XXXXXX")
server_pid="" # opendts serve
bg_pids=()    # background helpers, each the leader of its own process group
started=()    # lib.sh's MariaDB dirs: none here
sub_made=""   # the subscription exists on target B
src_port="" dst_b_port=""
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
	# The subscription goes before the servers: DROP SUBSCRIPTION drops
	# its slot on the source too. If the source cannot be reached, the
	# subscription is detached from its slot first (the source is thrown
	# away anyway).
	if [ -n "$sub_made" ]; then
		PGCONNECT_TIMEOUT=5 timeout 30 "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$dst_b_port" -U postgres -d bench \
			-c 'DROP SUBSCRIPTION IF EXISTS bench_sub' >/dev/null 2>&1 ||
			PGCONNECT_TIMEOUT=5 timeout 30 "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$dst_b_port" -U postgres -d bench \
				-c 'ALTER SUBSCRIPTION bench_sub DISABLE' -c 'ALTER SUBSCRIPTION bench_sub SET (slot_name = NONE)' \
				-c 'DROP SUBSCRIPTION bench_sub' >/dev/null 2>&1
	fi
	pg_stop_everything
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "pg-cdc.sh: interrupted" >&2; exit 130' INT
trap 'echo "pg-cdc.sh: terminated" >&2; exit 143' TERM

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

# now_us: the wall clock in microseconds (an integer, for bash arithmetic).
us=0
now_us() { us=${EPOCHREALTIME/./}; }
secs() { # secs MICROSECONDS: prints seconds with 2 decimals
	printf '%d.%02d' $(($1 / 1000000)) $((($1 % 1000000) / 10000))
}
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

# ---------------------------------------------------------------- servers

passes=""
[ "$RATE" = 0 ] || passes="$DURATION s at $RATE tps"
[ "$UNTHROTTLED" = 0 ] || passes="${passes:+$passes, then }$UNTHROTTLED s unthrottled"
say "pgbench scale $SCALE, $CLIENTS clients, $THREADS threads: $passes   work dir: $work"
src_port=$(free_port 25432)
start_pg source "$src_port"
dst_a_port=$(free_port $((src_port + 1)))
start_pg target-opendts "$dst_a_port"
dst_b_port=$(free_port $((dst_a_port + 1)))
start_pg target-subscriber "$dst_b_port"
note "source 127.0.0.1:$src_port, target A (opendts) 127.0.0.1:$dst_a_port, target B (subscriber) 127.0.0.1:$dst_b_port"
note "$("$PGBIN/postgres" --version); $("$PGBIN/pgbench" --version)"

say "filling the source: pgbench -i -s $SCALE bench"
pg "$src_port" postgres -c 'CREATE DATABASE bench'
t0=$EPOCHREALTIME
"$PGBIN/pgbench" -i -s "$SCALE" -h 127.0.0.1 -p "$src_port" -U postgres bench >"$work/pgbench-init.log" 2>&1 || {
	tail -n 20 "$work/pgbench-init.log" >&2
	die "pgbench -i failed (log above)"
}
note "initialized in $(since "$t0") s"
tables=(pgbench_accounts pgbench_branches pgbench_tellers pgbench_history hb)
# pgbench_history has no key: logical replication (opendts's and
# PostgreSQL's alike) needs a replica identity to publish updates and
# deletes, and opendts's check requires one on every table. The heartbeat:
# one row, rewritten on the source every 100 ms during a pass; each
# target's copy of it says how far behind that target is.
pg "$src_port" bench -c 'ALTER TABLE pgbench_history REPLICA IDENTITY FULL' \
	-c 'CREATE TABLE hb (id int PRIMARY KEY, ts timestamptz NOT NULL)' \
	-c 'INSERT INTO hb VALUES (1, clock_timestamp())' -c 'ANALYZE'
note "pgbench_history: REPLICA IDENTITY FULL (it has no key); heartbeat table hb (id int primary key, ts timestamptz)"
note "rows: $(for t in "${tables[@]}"; do printf '%s %s  ' "$t" "$(pg "$src_port" bench -c "SELECT count(*) FROM $t")"; done)"

# ---------------------------------------------------------------- opendts

say "target A: opendts full + incremental job for database bench"
opendts_binary
start_opendts
opendts_version=$("$opendts" version 2>/dev/null | head -n 1 || true)
[ -z "$opendts_version" ] || note "$opendts_version"

create_pg_job "bench-pg-cdc-scale-$SCALE" '{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":5}' \
	"$src_port" "$dst_a_port" '[{"Database":"bench"}]'
note "CreateMigrateJob: $job (MigrateType 3, postgresql -> postgresql, users postgres, DatabaseInfo [{\"Database\":\"bench\"}])"
check_job "$job" || die "the opendts pre-migration check failed (items above)"
t0=$EPOCHREALTIME
dts StartMigrateJob --JobId "$job" >/dev/null
wait_status "$job" 8 1800
ready_s=$(since "$t0")
full_rss=$(peak_rss_mib "$server_pid")
note "status 8 (full copy done, stream caught up) $ready_s s after StartMigrateJob; opendts peak RSS so far $full_rss MiB"

# ---------------------------------------------------------------- subscriber

say "target B: PostgreSQL's own subscriber (CREATE PUBLICATION / CREATE SUBSCRIPTION)"
t0=$EPOCHREALTIME
pg "$dst_b_port" postgres -c 'CREATE DATABASE bench'
# The tables only (-t): no schema, and not opendts's DDL capture (its
# schema _opendts and event trigger in the source database).
dump_tables=()
for t in "${tables[@]}"; do dump_tables+=(-t "public.$t"); done
"$PGBIN/pg_dump" --schema-only "${dump_tables[@]}" -h 127.0.0.1 -p "$src_port" -U postgres bench \
	>"$work/schema.sql" 2>"$work/pg_dump.err" || {
	cat "$work/pg_dump.err" >&2
	die "pg_dump --schema-only of the source failed"
}
pg "$dst_b_port" bench -f "$work/schema.sql" >/dev/null || die "loading the schema into target B failed"
table_list=$(
	IFS=,
	echo "${tables[*]}"
)
pg "$src_port" bench -c "CREATE PUBLICATION bench_pub FOR TABLE $table_list"
sub_made=1
pg "$dst_b_port" bench -c "CREATE SUBSCRIPTION bench_sub
	CONNECTION 'host=127.0.0.1 port=$src_port user=postgres dbname=bench application_name=bench_sub'
	PUBLICATION bench_pub WITH (copy_data = true)"
state=""
for _ in $(seq 9000); do # 30 min
	state=$(pg "$dst_b_port" bench -c "SELECT count(*) FILTER (WHERE srsubstate = 'r') || '/' || count(*)
		FROM pg_subscription_rel r JOIN pg_subscription s ON s.oid = r.srsubid WHERE s.subname = 'bench_sub'")
	[ "$state" = "${#tables[@]}/${#tables[@]}" ] && break
	sleep 0.2
done
[ "$state" = "${#tables[@]}/${#tables[@]}" ] || die "the subscription's tables are not all synchronized after 30 min ($state ready)"
sub_s=$(since "$t0")
note "publication bench_pub FOR TABLE $table_list; subscription bench_sub WITH (copy_data = true)"
note "all ${#tables[@]} tables synchronized (srsubstate 'r') $sub_s s after CREATE DATABASE (schema dump and load included)"

# ---------------------------------------------------------------- passes

# One persistent client per server for the sampler, fed through FIFOs:
# no process start per sample. conn NAME PORT sets NAME_in and NAME_out.
conn() {
	mkfifo "$work/$1.in" "$work/$1.out"
	# shellcheck disable=SC2016 # expanded by the inner bash
	spawn "$work/$1.client.err" bash -c '"$@" <"$0.in" >"$0.out"' "$work/$1" \
		"$PGBIN/psql" -X -q -A -t -F $'\t' -h 127.0.0.1 -p "$2" -U postgres -d bench
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
# Times are integer microseconds since the epoch.
hb_sql="COALESCE((SELECT (extract(epoch FROM ts) * 1000000)::bigint::text FROM hb WHERE id = 1), 'NA')"
now_sql="(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

export PGBIN opendts
# heartbeat STOP_FILE PORT: rewrites the heartbeat on the source every
# 100 ms through one client until STOP_FILE exists.
heartbeat() {
	while [ ! -e "$1" ]; do
		echo "UPDATE hb SET ts = clock_timestamp() WHERE id = 1;"
		sleep 0.1
	done | "$PGBIN/psql" -X -q -h 127.0.0.1 -p "$2" -U postgres -d bench
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
# load END_FILE PGBENCH_ARGS...: pgbench, then the time it ended in END_FILE.
load() {
	local end=$1
	shift
	"$PGBIN/pgbench" "$@"
	local rc=$?
	echo "$EPOCHREALTIME" >"$end.tmp"
	mv "$end.tmp" "$end"
	exit "$rc"
}
export -f heartbeat api_lag load

# walsender PORT APPLICATION_NAME: the pid of the source's walsender for
# that client (empty if none).
walsender() {
	pg "$src_port" postgres -c "SELECT pid FROM pg_stat_replication WHERE application_name = '$1' ORDER BY pid LIMIT 1"
}
# apply_worker: the pid of the subscriber's apply worker on target B.
apply_worker() {
	pg "$dst_b_port" bench -c "SELECT pid FROM pg_stat_subscription WHERE subname = 'bench_sub' AND relid IS NULL"
}
hz=$(getconf CLK_TCK)
cpu_s() { awk -v a="$1" -v b="$2" -v hz="$hz" 'BEGIN { printf "%.1f", (b - a) / hz }'; }
pct() { # pct FILE: "p50 p99 max" of sorted values
	awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a n/a n/a"; exit }
		i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
		i99 = int(NR * 0.99); if (i99 < NR * 0.99) i99++
		printf "%.2f %.2f %.2f\n", v[i50], v[i99], v[NR] }' "$1"
}
caught() { # caught SECONDS: "1.23 s" or that it did not catch up
	if [ -n "$1" ]; then echo "$1 s"; else echo "did not catch up in $CATCHUP_TIMEOUT s"; fi
}

summary=() # lines for the final summary
goals=()   # goal lines
k=0        # sample number, across passes
# run_pass NAME RATE SECONDS: one load pass (RATE 0: unthrottled) with its
# lag samples, catch-up, CPU and RSS; appends its lines to summary.
run_pass() {
	local name=$1 rate=$2 dur=$3
	local d="$work/$name"
	mkdir -p "$d"
	local rate_args=() label="unthrottled"
	if [ "$rate" != 0 ]; then
		rate_args=(-R "$rate")
		label="-R $rate"
	fi
	say "pass $name: pgbench -N $label -c $CLIENTS -j $THREADS -T $dur, heartbeat every 100 ms"
	spawn "$d/heartbeat.log" bash -c 'heartbeat "$@"' _ "$d/load.end" "$src_port"
	local hb_pid=$spawned
	spawn "$d/api.samples" bash -c 'api_lag "$@"' _ "$d/api.stop" "$job"
	local api_pid=$spawned
	sleep 1
	local ws_a ws_b aw
	ws_a=$(walsender opendts)
	ws_b=$(walsender bench_sub)
	aw=$(apply_worker)
	[ -n "$ws_a" ] || note "no walsender for opendts on the source (pg_stat_replication)"
	[ -n "$aw" ] || note "no apply worker for bench_sub on target B (pg_stat_subscription)"
	reset_peak_rss "$server_pid"
	# CPU each process uses from here to the end of the catch-up.
	local cpu0 cpu1
	cpu0=("$(proc_ticks "$server_pid")" "$(pg_cluster_ticks target-opendts)" "$(proc_ticks "$aw")"
		"$(pg_cluster_ticks target-subscriber)" "$(proc_ticks "$ws_a")" "$(proc_ticks "$ws_b")" "$(pg_cluster_ticks source)")
	now_us
	local load_start_us=$us
	spawn "$d/pgbench.log" bash -c 'load "$@"' _ "$d/load.end" -N "${rate_args[@]}" -c "$CLIENTS" -j "$THREADS" \
		-T "$dur" -P 10 -h 127.0.0.1 -p "$src_port" -U postgres bench
	local load_pid=$spawned

	# The sampler: every 200 ms the source's clock and each target's
	# heartbeat, asked at once of the three servers;
	# "seconds-since-start now tsA tsB" (microseconds).
	: >"$d/lag.samples"
	local n=0 sample_fail=0 next s_now s_a s_b
	while [ ! -e "$d/load.end" ]; do
		now_us
		next=$((us + 200000))
		k=$((k + 1))
		n=$((n + 1))
		echo "SELECT $k, $now_sql;" >&"$src_in"
		echo "SELECT $k, $hb_sql;" >&"$dsta_in"
		echo "SELECT $k, $hb_sql;" >&"$dstb_in"
		s_now=NA s_a=NA s_b=NA
		answer "$src_out" "$k" && s_now=$val
		answer "$dsta_out" "$k" && s_a=$val
		answer "$dstb_out" "$k" && s_b=$val
		[ "$s_now" != NA ] && [ "$s_a" != NA ] && [ "$s_b" != NA ] || sample_fail=$((sample_fail + 1))
		echo "$(secs $((us - load_start_us))) $s_now $s_a $s_b" >>"$d/lag.samples"
		now_us
		if [ "$us" -lt "$next" ]; then
			sleep "$(printf '0.%06d' $((next - us)))"
		fi
	done
	local load_rc=0
	wait "$load_pid" || load_rc=$?
	local end_us
	end_us=$(tr -d . <"$d/load.end")
	# The writer stops at the end file (within 100 ms); its last value is
	# what the source's heartbeat holds once it has exited.
	wait "$hb_pid" || true
	k=$((k + 1))
	echo "SELECT $k, $hb_sql;" >&"$src_in"
	answer "$src_out" "$k" || die "cannot read the source's last heartbeat"
	local last=$val
	grep -E '^progress:' "$d/pgbench.log" | sed 's/^/   /' || true
	[ "$load_rc" = 0 ] || {
		tail -n 20 "$d/pgbench.log" >&2
		die "pgbench failed (log above)"
	}
	# How busy the machine was: CPU pressure over the last minute (the
	# share of time a runnable task waited for a CPU, this run's own
	# processes included) and the load average.
	local psi
	psi=$(awk '/^some/ { sub(/avg60=/, "", $3); print $3 "%"; exit }' /proc/pressure/cpu 2>/dev/null || echo n/a)
	psi="cpu pressure (some, avg60) $psi, load average $(cut -d' ' -f1-3 /proc/loadavg)"
	local tps xacts
	tps=$(awk '/^tps = / { print $3; exit }' "$d/pgbench.log")
	xacts=$(awk '/^number of transactions actually processed:/ { print $NF; exit }' "$d/pgbench.log")
	[ -n "$tps" ] || die "no tps in the pgbench output ($d/pgbench.log)"
	note "pgbench: $tps tps, $xacts transactions; $n lag samples ($sample_fail incomplete)"

	say "pass $name: catch-up: waiting for both targets to hold the last heartbeat (at most $CATCHUP_TIMEOUT s)"
	local catch_a="" catch_b="" deadline=$((end_us + CATCHUP_TIMEOUT * 1000000)) q
	while :; do
		k=$((k + 1))
		q="SELECT $k, $hb_sql;"
		[ -n "$catch_a" ] || echo "$q" >&"$dsta_in"
		[ -n "$catch_b" ] || echo "$q" >&"$dstb_in"
		if [ -z "$catch_a" ] && answer "$dsta_out" "$k" && [ "$val" != NA ] && [ "$val" -ge "$last" ]; then
			now_us
			catch_a=$(secs $((us - end_us)))
			note "opendts target: caught up $catch_a s after the load"
		fi
		if [ -z "$catch_b" ] && answer "$dstb_out" "$k" && [ "$val" != NA ] && [ "$val" -ge "$last" ]; then
			now_us
			catch_b=$(secs $((us - end_us)))
			note "subscriber target: caught up $catch_b s after the load"
		fi
		[ -n "$catch_a" ] && [ -n "$catch_b" ] && break
		now_us
		[ "$us" -lt "$deadline" ] || break
		sleep 0.05
	done
	[ -n "$catch_a" ] || note "opendts target: did not catch up within $CATCHUP_TIMEOUT s"
	[ -n "$catch_b" ] || note "subscriber target: did not catch up within $CATCHUP_TIMEOUT s"
	cpu1=("$(proc_ticks "$server_pid")" "$(pg_cluster_ticks target-opendts)" "$(proc_ticks "$aw")"
		"$(pg_cluster_ticks target-subscriber)" "$(proc_ticks "$ws_a")" "$(proc_ticks "$ws_b")" "$(pg_cluster_ticks source)")
	local rss
	rss=$(peak_rss_mib "$server_pid")
	touch "$d/api.stop"
	wait "$api_pid" || true
	local aw_end
	aw_end=$(apply_worker)
	[ "$aw_end" = "$aw" ] || note "the apply worker changed during the pass ($aw -> $aw_end): its CPU figure is partial"

	# Lag per sample and target: the source's clock minus the target's heartbeat.
	awk '$2 != "NA" && $3 != "NA" { printf "%.6f\n", ($2 - $3) / 1e6 }' "$d/lag.samples" | sort -g >"$d/lag.opendts"
	awk '$2 != "NA" && $4 != "NA" { printf "%.6f\n", ($2 - $4) / 1e6 }' "$d/lag.samples" | sort -g >"$d/lag.subscriber"
	local a50 a99 amax b50 b99 bmax
	read -r a50 a99 amax <<<"$(pct "$d/lag.opendts")"
	read -r b50 b99 bmax <<<"$(pct "$d/lag.subscriber")"
	local api_s api_mb api_statuses
	read -r api_s api_mb api_statuses <<<"$(awk -v a="$(secs "$load_start_us")" -v b="$(secs "$end_us")" '
		$1 >= a && $1 <= b { if ($3 > s) s = $3; if ($4 > m) m = $4; st[$2] = 1 }
		END { l = ""; for (k in st) l = l (l == "" ? "" : ",") k; printf "%d %d %s\n", s, m, (l == "" ? "none" : l) }' "$d/api.samples")"
	note "lag samples: opendts $(wc -l <"$d/lag.opendts"), subscriber $(wc -l <"$d/lag.subscriber"); job status during the load: $api_statuses"

	summary+=("pass $name: pgbench -N $label -c $CLIENTS -j $THREADS, $dur s: $tps tps ($xacts transactions)")
	summary+=("  machine at the end of the load: $psi")
	summary+=("  lag during load (p50 / p99 / max, s):  opendts $a50 / $a99 / $amax   subscriber $b50 / $b99 / $bmax")
	summary+=("  catch-up after load:  opendts $(caught "$catch_a")   subscriber $(caught "$catch_b")")
	summary+=("  CPU s, load + catch-up:  opendts $(cpu_s "${cpu0[0]}" "${cpu1[0]}") + its target cluster $(cpu_s "${cpu0[1]}" "${cpu1[1]}")   subscriber apply worker $(cpu_s "${cpu0[2]}" "${cpu1[2]}") (its cluster $(cpu_s "${cpu0[3]}" "${cpu1[3]}"))")
	summary+=("  CPU s on the source:  walsender to opendts $(cpu_s "${cpu0[4]}" "${cpu1[4]}")   to the subscriber $(cpu_s "${cpu0[5]}" "${cpu1[5]}")   whole source cluster $(cpu_s "${cpu0[6]}" "${cpu1[6]}")")
	summary+=("  opendts peak RSS: $rss MiB   API lag during load (max): SecondsBehindMaster $api_s  MasterSlaveDistance $api_mb MB")
	local g1=missed g2=missed
	[ "$a99" != n/a ] && awk -v p="$a99" 'BEGIN { exit !(p < 1) }' && g1=met
	if [ -n "$catch_a" ] && { [ -z "$catch_b" ] || awk -v a="$catch_a" -v b="$catch_b" 'BEGIN { exit !(a <= b) }'; }; then
		g2=met
	fi
	goals+=("pass $name: goal opendts lag p99 < 1 s: $g1 ($a99 s)")
	goals+=("pass $name: goal catch-up no slower than the subscriber: $g2 (opendts ${catch_a:-none}, subscriber ${catch_b:-none})")
}

[ "$RATE" = 0 ] || run_pass fixed "$RATE" "$DURATION"
[ "$UNTHROTTLED" = 0 ] || run_pass unthrottled 0 "$UNTHROTTLED"

# ---------------------------------------------------------------- complete

say "CompleteMigrateJob, stop the subscriber, verify"
# Everything the source committed (pgbench has stopped): the subscriber
# has it once its slot's confirmed position passes the source's WAL end.
end_lsn=$(pg "$src_port" bench -c 'SELECT pg_current_wal_lsn()')
t0=$EPOCHREALTIME
dts CompleteMigrateJob --JobId "$job" >/dev/null
wait_status "$job" 9 1800
note "status 9 $(since "$t0") s after CompleteMigrateJob"
reached=""
for _ in $(seq 3000); do # 10 min
	reached=$(pg "$src_port" bench -c "SELECT confirmed_flush_lsn >= '$end_lsn' FROM pg_replication_slots WHERE slot_name = 'bench_sub'")
	[ "$reached" = t ] && break
	sleep 0.2
done
[ "$reached" = t ] || die "the subscriber did not confirm the source's position $end_lsn within 10 min"
pg "$dst_b_port" bench -c 'DROP SUBSCRIPTION bench_sub'
sub_made=""
pg "$src_port" bench -c 'DROP PUBLICATION bench_pub'
note "subscriber confirmed $end_lsn; subscription dropped (and its slot)"
rc=0
slots=$(pg "$src_port" postgres -c "SELECT string_agg(slot_name || ' (' || database || ', ' || pg_size_pretty(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)) || ')', ', ') FROM pg_replication_slots")
if [ -n "$slots" ]; then
	note "replication slots LEFT on the source: $slots"
	rc=1
else
	note "no replication slot left on the source (opendts's was dropped at Complete)"
fi

src_print=$(pg_table_sums "$src_port" bench "${tables[@]}")
a_print=$(pg_table_sums "$dst_a_port" bench "${tables[@]}")
b_print=$(pg_table_sums "$dst_b_port" bench "${tables[@]}")
printf '   %-17s %9s  %-32s %-10s %-10s\n' table rows "md5 (source)" subscriber opendts
paste -d' ' <(echo "$src_print") <(echo "$b_print") <(echo "$a_print") |
	awk '{ printf "   %-17s %9s  %-32s %-10s %-10s\n", $1, $2, $3,
		($5 == $2 && $6 == $3) ? "same" : "DIFFERS(" $5 ")", ($8 == $2 && $9 == $3) ? "same" : "DIFFERS(" $8 ")" }'
verdict="source"
if [ "$b_print" = "$src_print" ]; then verdict+=" = subscriber"; else
	verdict+=" != subscriber"
	rc=1
fi
if [ "$a_print" = "$src_print" ]; then verdict+=" = opendts"; else
	verdict+=" != opendts"
	rc=1
fi
errs=$(grep -cE 'level=(WARN|ERROR)' "$work/opendts.log" || true)
[ "$errs" = 0 ] || {
	note "opendts log: $errs WARN/ERROR lines, the last ones:"
	grep -E 'level=(WARN|ERROR)' "$work/opendts.log" | tail -n 5 | sed 's/^/   log: /'
}

# ---------------------------------------------------------------- summary

say "summary"
printf '    pgbench scale %s; opendts to status 8: %s s (peak RSS %s MiB); subscriber synchronized: %s s\n' \
	"$SCALE" "$ready_s" "$full_rss" "$sub_s"
printf '    %s\n' "${summary[@]}"
printf '    checksums: %s\n' "$verdict"
printf '    %s\n' "${goals[@]}"
[ "$b_print" = "$src_print" ] || die "the subscriber's target does not match the source"
[ "$a_print" = "$src_print" ] || die "opendts's target does not match the source"
[ "$rc" = 0 ] || die "a replication slot was left on the source"
