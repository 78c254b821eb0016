#!/usr/bin/env bash
# failover.sh: cluster-mode failover benchmark (issue 15). Three
# `opendts serve` nodes on a three-member etcd run one full + incremental
# job (MigrateType 3) under a throttled sysbench write load; the job's
# owner is killed with SIGKILL KILLS times in a row, and each failover is
# timed from the kill to the first change the new owner applies to the
# target.
#
#   bench/failover.sh [--kills N] [--ttl S] [--rows N] [--tables N] [--rate TPS]
#                     [--threads N] [--settle S] [--no-copy-kill] [--keep]
#
# Environment (flags win): KILLS (10 kills), TTL (10: every node's
# -lease-ttl, in seconds), ROWS (100000 rows per table), TABLES (4),
# RATE (200: sysbench --rate, transactions per second over all threads),
# THREADS (4 sysbench threads), SETTLE (5 s of normal running once the
# three nodes are up again, before the next kill), COPY_KILL (1: the first
# kill lands during the full copy; 0 = --no-copy-kill: every kill in the
# incremental phase), CHUNK_ROWS (10000: the nodes' -chunk-rows, so that
# the copy has many chunks), COPY_WORKERS (2: the nodes' -copy-workers),
# FAILOVER_TIMEOUT (max(120, 10 x TTL) s for one failover), READY_TIMEOUT
# (600 s for the job to reach status 8 or 9), CATCHUP_TIMEOUT (300 s for
# the target to reach the source's binlog position after the load),
# KEEP (1 = --keep), OPENDTS_BIN (use this binary instead of building
# bin/opendts).
#
# It installs what it lacks from Debian's packages (sysbench, jq, curl,
# MariaDB through scripts/testdb.sh install, etcd through
# scripts/etcdtestdb.sh install) and starts, on free loopback ports under
# a temp dir: a MariaDB source and target (scripts/testdb.sh), a
# three-member etcd (scripts/etcdtestdb.sh start DIR 3) and three nodes
# n1, n2, n3 (own -listen, -data-dir and -node-name; the same API key and
# OPENDTS_MASTER_KEY). It fills the source with sysbench, starts
# `sysbench oltp_write_only --rate RATE` for the whole experiment, creates,
# checks and starts the job over the database sbtest. Then, KILLS times:
# the owner (DescribeMigrateJobs JobList[0].Node) gets kill -9; the
# takeover is when Node first names another node, the first apply when
# the job's row in the target's __opendts.binlog_positions (or, during
# the copy, its count of __opendts.migrate_chunks) first differs from
# what it was after the killed process exited; the killed node is started
# again (same name and data dir) and, with three nodes up and the job at
# status 8, runs SETTLE s before the next kill. Last: the load stops, the
# target catches up, CompleteMigrateJob (sent to a node that is not the
# owner) until status 9, and COUNT(*) and CHECKSUM TABLE of every sbtest
# table must be equal on both servers. It prints every failover, p50 and
# max, and whether every failover was within 2 x TTL + 5 s.
# Exit status: 0 done and equal (goal met or not: the summary says),
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

KILLS=${KILLS:-10}
TTL=${TTL:-10}
ROWS=${ROWS:-100000}
TABLES=${TABLES:-4}
RATE=${RATE:-200}
THREADS=${THREADS:-4}
SETTLE=${SETTLE:-5}
COPY_KILL=${COPY_KILL:-1}
CHUNK_ROWS=${CHUNK_ROWS:-10000}
COPY_WORKERS=${COPY_WORKERS:-2}
READY_TIMEOUT=${READY_TIMEOUT:-600}
CATCHUP_TIMEOUT=${CATCHUP_TIMEOUT:-300}
KEEP=${KEEP:-0}

while [ $# -gt 0 ]; do
	arg=$1
	shift
	val=""
	case "$arg" in
	--*=*)
		val=${arg#*=}
		arg=${arg%%=*}
		;;
	--kills | --ttl | --rows | --tables | --rate | --threads | --settle)
		[ $# -gt 0 ] || {
			echo "failover.sh: $arg needs a value" >&2
			exit 2
		}
		val=$1
		shift
		;;
	esac
	case "$arg" in
	--kills) KILLS=$val ;;
	--ttl) TTL=$val ;;
	--rows) ROWS=$val ;;
	--tables) TABLES=$val ;;
	--rate) RATE=$val ;;
	--threads) THREADS=$val ;;
	--settle) SETTLE=$val ;;
	--copy-kill) COPY_KILL=1 ;;
	--no-copy-kill) COPY_KILL=0 ;;
	--keep) KEEP=1 ;;
	-h | --help)
		usage
		exit 0
		;;
	*)
		echo "failover.sh: unknown argument $arg (try --help)" >&2
		exit 2
		;;
	esac
done

FAILOVER_TIMEOUT=${FAILOVER_TIMEOUT:-$((TTL > 12 ? 10 * TTL : 120))}
for v in KILLS TTL ROWS TABLES RATE THREADS CHUNK_ROWS COPY_WORKERS READY_TIMEOUT CATCHUP_TIMEOUT FAILOVER_TIMEOUT; do
	case "${!v}" in
	'' | *[!0-9]* | 0)
		echo "failover.sh: $v must be a positive integer, not '${!v}'" >&2
		exit 2
		;;
	esac
done
case "$SETTLE" in '' | *[!0-9]*)
	echo "failover.sh: SETTLE must be a number of seconds, not '$SETTLE'" >&2
	exit 2
	;;
esac
case "$COPY_KILL" in 0 | 1) ;; *)
	echo "failover.sh: COPY_KILL must be 0 or 1, not '$COPY_KILL'" >&2
	exit 2
	;;
esac
[ "$TTL" -ge 2 ] || {
	echo "failover.sh: TTL must be at least 2 (opendts refuses shorter leases)" >&2
	exit 2
}
goal_s=$((2 * TTL + 5))

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
scripts/etcdtestdb.sh install >/dev/null || die "could not install etcd (scripts/etcdtestdb.sh install)"
MYSQL=$(command -v mariadb || command -v mysql) || die "no mariadb client found"

# ---------------------------------------------------------------- cleanup

work=$(mktemp -d "${TMPDIR:-/tmp}/opendts-failover.XXXXXX")
server_pid="" # lib.sh's single server: unused, the nodes are below
bg_pids=()    # background helpers, each the leader of its own process group
started=()    # testdb dirs
etcd_dir=""
node_name=(n1 n2 n3)
node_port=("" "" "")
node_pid=("" "" "")

# alive PID: the process exists and is not a zombie.
alive() {
	[ -n "$1" ] || return 1
	kill -0 "$1" 2>/dev/null || return 1
	local st
	st=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
	st=${st##*) }
	[ "${st:0:1}" != Z ]
}

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
			alive "$p" || break
			sleep 0.1
		done
		kill -KILL -- "-$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	# SIGTERM to every node at once: each hands its jobs over as it
	# leaves, nothing is waited for.
	for p in "${node_pid[@]}"; do
		alive "$p" && kill -TERM "$p" 2>/dev/null
	done
	for p in "${node_pid[@]}"; do
		alive "$p" || continue
		for _ in $(seq 100); do
			alive "$p" || break
			sleep 0.1
		done
		kill -KILL "$p" 2>/dev/null
		wait "$p" 2>/dev/null
	done
	[ -z "$etcd_dir" ] || scripts/etcdtestdb.sh stop "$etcd_dir" >/dev/null 2>&1
	stop_everything
	exit "$rc"
}
trap cleanup EXIT
trap 'echo "failover.sh: interrupted" >&2; exit 130' INT
trap 'echo "failover.sh: terminated" >&2; exit 143' TERM

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
us=0
now_us() { us=${EPOCHREALTIME/./}; }
secs() { # secs MICROSECONDS: prints seconds with 2 decimals
	printf '%d.%02d' $(($1 / 1000000)) $((($1 % 1000000) / 10000))
}

# ---------------------------------------------------------------- servers

say "$KILLS kills, -lease-ttl ${TTL}s, $TABLES x $ROWS rows, sysbench $THREADS threads at $RATE tps   work dir: $work"
src_port=$(free_port 24506)
start_db source "$src_port" 501
dst_port=$(free_port $((src_port + 1)))
start_db target "$dst_port" 502
note "source 127.0.0.1:$src_port, target 127.0.0.1:$dst_port ($("$(command -v mariadbd || echo /usr/sbin/mariadbd)" --version | awk '{ print $3 }'))"

etcd_dir=$work/etcd
OPENDTS_TESTDB_OWNER=$$ scripts/etcdtestdb.sh start "$etcd_dir" 3 >"$work/etcd.start.log" 2>&1 || {
	cat "$work/etcd.start.log" >&2
	die "could not start the etcd cluster (scripts/etcdtestdb.sh start)"
}
etcd_endpoints=$(scripts/etcdtestdb.sh endpoints "$etcd_dir")
note "etcd: 3 members at $etcd_endpoints ($(etcd --version 2>/dev/null | awk 'NR == 1 { print $3 }'))"

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

# ---------------------------------------------------------------- nodes

opendts_binary
export OPENDTS_SECRET_ID=AKIDopendtsBench OPENDTS_SECRET_KEY=bench-secret-key
OPENDTS_MASTER_KEY=$(od -An -tx1 -N32 /dev/urandom | tr -d ' \n')
export OPENDTS_MASTER_KEY

# start_node I starts node I (name, port and data dir fixed at its first
# start) and waits for its /healthz. A restart refused because etcd still
# holds the name (the killed process's lease not yet expired) is tried
# again every second, for up to 2 x TTL + 10 s.
start_node() {
	local i=$1 name=${node_name[$1]} pid deadline log
	log=$work/$name.log
	[ -n "${node_port[i]}" ] || node_port[i]=$(free_port $((25981 + i)))
	now_us
	deadline=$((us + (2 * TTL + 10) * 1000000))
	while :; do
		echo "--- failover.sh: start $(date -u '+%F %T') UTC" >>"$log"
		setsid "$opendts" serve -listen "127.0.0.1:${node_port[i]}" -data-dir "$work/$name" \
			-node-name "$name" -etcd-endpoints "$etcd_endpoints" -lease-ttl "${TTL}s" \
			-chunk-rows "$CHUNK_ROWS" -copy-workers "$COPY_WORKERS" >>"$log" 2>&1 </dev/null &
		pid=$!
		node_pid[i]=$pid
		for _ in $(seq 150); do
			if curl -fsS "http://127.0.0.1:${node_port[i]}/healthz" >/dev/null 2>&1; then
				return 0
			fi
			alive "$pid" || break
			sleep 0.1
		done
		alive "$pid" && die "node $name did not answer /healthz within 15 s (log $log)"
		wait "$pid" 2>/dev/null || true
		node_pid[i]=""
		now_us
		if tail -n 5 "$log" | grep -q 'already registered' && [ "$us" -lt "$deadline" ]; then
			sleep 1
			continue
		fi
		tail -n 20 "$log" >&2
		die "node $name exited during start-up (log above)"
	done
}

# use_node I: the API calls that follow (lib.sh's dts, create_job,
# check_job) go to node I.
use_node() { export OPENDTS_ENDPOINT="127.0.0.1:${node_port[$1]}"; }

# node_index NAME prints the index of node NAME.
node_index() {
	local i
	for i in 0 1 2; do
		[ "${node_name[i]}" = "$1" ] && {
			echo "$i"
			return 0
		}
	done
	die "the job's owner '$1' is none of ${node_name[*]}"
}

# check_nodes: every node this script has started still runs.
check_nodes() {
	local i
	for i in 0 1 2; do
		[ -z "${node_pid[i]}" ] || alive "${node_pid[i]}" || {
			tail -n 30 "$work/${node_name[i]}.log" >&2
			die "node ${node_name[i]} died (log above: $work/${node_name[i]}.log)"
		}
	done
}

# wait_nodes N: DescribeNodes lists N live nodes, within 2 x TTL + 30 s
# (a killed node's registration lasts until its lease expires).
wait_nodes() {
	local n="" out deadline
	now_us
	deadline=$((us + (2 * TTL + 30) * 1000000))
	while :; do
		out=$("$opendts" dts DescribeNodes 2>/dev/null) && n=$(jq -r .TotalCount <<<"$out")
		[ "$n" = "$1" ] && return 0
		check_nodes
		now_us
		[ "$us" -lt "$deadline" ] || die "DescribeNodes lists ${n:-no} nodes, not $1, after $((2 * TTL + 30)) s: ${out:-}"
		sleep 0.2
	done
}

say "cluster: 3 nodes, -lease-ttl ${TTL}s, -chunk-rows $CHUNK_ROWS, -copy-workers $COPY_WORKERS"
for i in 0 1 2; do
	start_node "$i"
	note "node ${node_name[i]} pid ${node_pid[i]} on http://127.0.0.1:${node_port[i]} (log $work/${node_name[i]}.log)"
done
use_node 0
wait_nodes 3
"$opendts" dts DescribeNodes | jq -r '"   DescribeNodes: " + ([.Nodes[] | "\(.Name) \(.Address)"] | join(", "))'

# ---------------------------------------------------------------- job

job=""
job_info() { dts DescribeMigrateJobs --JobId "$job" | jq -c '.JobList[0]'; }
job_failed() { # job_failed INFO: prints the ErrorInfo of a failed job and exits
	note "opendts job FAILED (status 10): $(jq -r '[.ErrorInfo[]? | .ErrorLog] | join("; ")' <<<"$1")"
	local i
	for i in 0 1 2; do
		grep -E 'level=(WARN|ERROR)' "$work/${node_name[i]}.log" | tail -n 3 | sed "s/^/   ${node_name[i]}: /" >&2 || true
	done
	die "the opendts job failed"
}
# wait_status WANT TIMEOUT_S: polls every 0.2 s until the job is at WANT;
# status 10 fails the run, and so does a node that died.
wait_status() {
	local info status="" n=$(($2 * 5))
	while [ "$n" -gt 0 ]; do
		info=$(job_info)
		status=$(jq -r .Status <<<"$info")
		[ "$status" = "$1" ] && return 0
		[ "$status" = 10 ] && job_failed "$info"
		check_nodes
		n=$((n - 1))
		sleep 0.2
	done
	die "job $job did not reach status $1 within $2 s (status $status)"
}

# progress prints what the job has committed on the target:
# "chunks:N pos:FILE:POS" (its copy's chunk marks and its binlog position
# row; "-" for what does not exist yet).
progress() {
	local c p
	c=$(sql "$dst_port" -e "SELECT COUNT(*) FROM __opendts.migrate_chunks WHERE job_id = '$job'" 2>/dev/null) || c=-
	p=$(sql "$dst_port" -e "SELECT CONCAT(file, ':', pos) FROM __opendts.binlog_positions WHERE job_id = '$job'" 2>/dev/null) || p=""
	echo "chunks:${c:--} pos:${p:--}"
}

create_job "bench-failover-$TABLES-x-$ROWS" '{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":5}' "$dst_port"
note "CreateMigrateJob: $job (MigrateType 3, DatabaseInfo [{\"Database\":\"sbtest\"}])"
check_job "$job" || die "the opendts pre-migration check failed (items above)"

# ---------------------------------------------------------------- load

# load: sysbench run until stopped (no time limit); cleanup or the end of
# the experiment stops it.
say "load: sysbench oltp_write_only, $THREADS threads, --rate $RATE, from now until the last failover"
spawn "$work/sysbench.log" sysbench oltp_write_only "${sysbench_opts[@]}" \
	--threads="$THREADS" --rate="$RATE" --time=0 --events=0 --report-interval=10 run
load_pid=$spawned
now_us
load_start_us=$us
sleep 1
alive "$load_pid" || {
	tail -n 20 "$work/sysbench.log" >&2
	die "sysbench run exited at once (log above)"
}
check_load() {
	alive "$load_pid" || {
		tail -n 20 "$work/sysbench.log" >&2
		die "sysbench run ended during the experiment (log above)"
	}
}

t0=$EPOCHREALTIME
dts StartMigrateJob --JobId "$job" >/dev/null
note "StartMigrateJob through ${node_name[0]}"

# ---------------------------------------------------------------- kills

r_phase=() r_killed=() r_new=() r_takeover=() r_apply=() r_poll=() r_status=()

# failover K: kill -9 the job's owner, time the takeover and the first
# apply, start the killed node again and wait for three live nodes.
failover() {
	local k=$1 info owner oi via phase before now t_kill deadline n st
	local takeover="" applied="" new_owner="" after="" polls=0 seen=""
	info=$(job_info)
	owner=$(jq -r '.Node // ""' <<<"$info")
	[ -n "$owner" ] || die "round $k: the job has no owner (Node is empty): $info"
	oi=$(node_index "$owner")
	via=$(((oi + 1) % 3))
	use_node "$via"
	# The phase: the step running at the kill.
	phase=$(jq -r '[.Detail.StepInfo[]? | select(.Status == 3) | .StepId] | first // "?"' <<<"$info")
	case "$phase" in
	loader) phase=copy ;;
	objects) phase=indexes ;;
	sinker) phase=incremental ;;
	esac
	alive "${node_pid[oi]}" || die "round $k: the owner $owner is not running"
	now_us
	t_kill=$us
	kill -KILL "${node_pid[oi]}"
	wait "${node_pid[oi]}" 2>/dev/null || true
	node_pid[oi]=""
	# A commit already sent when the process died may still end on the
	# server: the reference is read a moment later (no new owner can
	# claim the job within a lease TTL of at least 2 s).
	sleep 0.3
	before=$(progress)
	deadline=$((t_kill + FAILOVER_TIMEOUT * 1000000))
	while [ -z "$takeover" ] || [ -z "$applied" ]; do
		polls=$((polls + 1))
		if [ -z "$applied" ]; then
			now=$(progress)
			if [ "$now" != "$before" ]; then
				now_us
				applied=$((us - t_kill))
				after=$now
			fi
		fi
		if [ -z "$takeover" ]; then
			# Not lib.sh's dts: a failed call here is retried, not fatal.
			if info=$("$opendts" dts DescribeMigrateJobs --JobId "$job" 2>/dev/null | jq -ce '.JobList[0]'); then
				n=$(jq -r '.Node // ""' <<<"$info")
				st=$(jq -r .Status <<<"$info")
				[ "$st" = 10 ] && job_failed "$info"
				case ",$seen," in *",$st,"*) ;; *) seen+="${seen:+,}$st" ;; esac
				if [ -n "$n" ] && [ "$n" != "$owner" ]; then
					now_us
					takeover=$((us - t_kill))
					new_owner=$n
				fi
			fi
		fi
		check_nodes
		check_load
		now_us
		if [ "$us" -ge "$deadline" ]; then
			note "round $k: after $FAILOVER_TIMEOUT s: Node ${n:-?}, target ${now:-?} (at the kill: $before)"
			die "round $k: no failover within $FAILOVER_TIMEOUT s of killing $owner"
		fi
		sleep 0.1
	done
	r_phase+=("$phase")
	r_killed+=("$owner")
	r_new+=("$new_owner")
	r_takeover+=("$takeover")
	r_apply+=("$applied")
	r_status+=("$seen")
	now_us
	r_poll+=($(((us - t_kill) / polls)))
	note "round $k ($phase): killed $owner; $new_owner took over after $(secs "$takeover") s, first apply after $(secs "$applied") s ($before -> $after); job status until the takeover: $seen"
	start_node "$oi"
	wait_nodes 3
}

round=0
if [ "$COPY_KILL" = 1 ]; then
	say "kill 1, aimed at the full copy"
	# The kill waits for the copy's first chunk on the target.
	copy_seen=""
	deadline=$(($(date +%s) + READY_TIMEOUT))
	while [ "$(date +%s)" -lt "$deadline" ]; do
		p=$(progress)
		case "$p" in
		*pos:-) ;;
		*)
			note "the copy ended before a kill could land in it ($p): every kill is in the incremental phase (make it longer: --rows)"
			break
			;;
		esac
		case "$p" in
		'chunks:- '* | 'chunks:0 '*) ;;
		*)
			copy_seen=1
			break
			;;
		esac
		st=$(job_info | jq -r .Status)
		[ "$st" = 10 ] && job_failed "$(job_info)"
		check_nodes
		sleep 0.1
	done
	if [ -n "$copy_seen" ]; then
		# The owner must be known before it is killed.
		for _ in $(seq 50); do
			[ -n "$(job_info | jq -r '.Node // ""')" ] && break
			sleep 0.1
		done
		note "the copy has committed ${p%% *} at $(date -u +%T.%N | cut -c1-12) UTC"
		round=1
		failover 1
	fi
fi

wait_status 8 "$READY_TIMEOUT"
ready_s=$(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
note "status 8 (full copy done, binlog caught up) $ready_s s after StartMigrateJob"
case "$(progress)" in *pos:-)
	die "the target has no row of $job in __opendts.binlog_positions at status 8: the failover cannot be timed"
	;;
esac

while [ "$round" -lt "$KILLS" ]; do
	round=$((round + 1))
	say "kill $round of $KILLS (incremental phase)"
	wait_status 8 "$READY_TIMEOUT"
	sleep "$SETTLE"
	check_load
	failover "$round"
done

# ---------------------------------------------------------------- complete

say "stopping the load; catch-up; CompleteMigrateJob"
kill -TERM -- "-$load_pid" 2>/dev/null || true
wait "$load_pid" 2>/dev/null || true
now_us
end_us=$us
load_s=$(secs $((end_us - load_start_us)))
read -r m_file m_pos _ < <(sql "$src_port" -e 'SHOW MASTER STATUS') || die "SHOW MASTER STATUS failed on the source"
caught=""
while :; do
	p=$(progress)
	p=${p#*pos:}
	if [ "$p" != - ]; then
		t_file=${p%:*}
		t_pos=${p##*:}
		if [[ "$t_file" > "$m_file" ]] || { [ "$t_file" = "$m_file" ] && [ "$t_pos" -ge "$m_pos" ]; }; then
			now_us
			caught=$(secs $((us - end_us)))
			break
		fi
	fi
	now_us
	[ "$us" -lt $((end_us + CATCHUP_TIMEOUT * 1000000)) ] || break
	sleep 0.1
done
if [ -n "$caught" ]; then
	note "the target reached the source's $m_file:$m_pos $caught s after the load stopped"
else
	note "the target did not reach the source's $m_file:$m_pos within $CATCHUP_TIMEOUT s (at $p)"
fi

owner=$(job_info | jq -r '.Node // ""')
via=0
[ -z "$owner" ] || via=$((($(node_index "$owner") + 1) % 3))
use_node "$via"
t0=$EPOCHREALTIME
dts CompleteMigrateJob --JobId "$job" >/dev/null
wait_status 9 "$READY_TIMEOUT"
note "status 9 $(awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }') s after CompleteMigrateJob (sent to ${node_name[via]}, owner ${owner:-none})"

fingerprint() { # fingerprint PORT: "table count checksum" per sbtest table
	local port=$1 t count sum
	for t in "${tables[@]}"; do
		count=$(sql "$port" -e "SELECT COUNT(*) FROM $t" 2>/dev/null) || count=missing
		sum=$(sql "$port" -e "CHECKSUM TABLE $t" 2>/dev/null | awk '{ print $2 }') || sum=missing
		echo "$t $count ${sum:-missing}"
	done
}
src_print=$(fingerprint "$src_port")
dst_print=$(fingerprint "$dst_port")
printf '   %-16s %10s %10s %12s %12s\n' table 'rows src' 'rows dst' 'sum src' 'sum dst'
paste -d' ' <(echo "$src_print") <(echo "$dst_print") |
	awk '{ printf "   %-16s %10s %10s %12s %12s%s\n", $1, $2, $5, $3, $6, ($2 == $5 && $3 == $6) ? "" : "   DIFFERENT" }'
rc=0
verdict="source = target ($TABLES tables: row counts and CHECKSUM TABLE)"
if [ "$src_print" != "$dst_print" ]; then
	verdict="source != target"
	rc=1
fi

# ---------------------------------------------------------------- summary

tps=$(awk '/^\[ *[0-9]+s \]/ { for (i = 1; i <= NF; i++) if ($i == "tps:") { s += $(i + 1); n++ } }
	END { if (n) printf "%.1f", s / n; else print "n/a" }' "$work/sysbench.log")
errs=$(awk '/^\[ *[0-9]+s \]/ { for (i = 1; i <= NF; i++) if ($i == "err/s:") s += $(i + 1) } END { printf "%g", s * 10 }' "$work/sysbench.log")
pct() { # pct: "p50 max" of the microsecond values on stdin, in seconds
	sort -n | awk '{ v[NR] = $1 } END {
		if (NR == 0) { print "n/a n/a"; exit }
		i50 = int(NR * 0.50); if (i50 < NR * 0.50) i50++
		# truncated to 1/100 s, as secs prints each value
		printf "%.2f %.2f\n", int(v[i50] / 1e4) / 100, int(v[NR] / 1e4) / 100 }'
}
read -r take50 takemax <<<"$(printf '%s\n' "${r_takeover[@]}" | pct)"
read -r apply50 applymax <<<"$(printf '%s\n' "${r_apply[@]}" | pct)"
for i in 0 1 2; do
	n=$(grep -cE 'level=(WARN|ERROR)' "$work/${node_name[i]}.log" || true)
	[ "$n" = 0 ] || {
		note "${node_name[i]}'s log: $n WARN/ERROR lines, the last ones:"
		grep -E 'level=(WARN|ERROR)' "$work/${node_name[i]}.log" | tail -n 3 | cut -c1-300 | sed 's/^/   log: /'
	}
done

say "summary"
printf '    cluster: 3 nodes on a 3-member etcd, -lease-ttl %ss; job %s (MigrateType 3), %s x %s rows, status 8 %s s after StartMigrateJob\n' \
	"$TTL" "$job" "$TABLES" "$ROWS" "$ready_s"
printf '    load: sysbench oltp_write_only %s threads --rate %s for %s s: %s tps (mean of the 10 s reports), %s errors\n' \
	"$THREADS" "$RATE" "$load_s" "$tps" "$errs"
printf '    %5s  %-11s  %-6s  %-9s  %10s  %13s  %s\n' round phase killed 'new owner' 'takeover s' 'first apply s' 'status until takeover'
for i in "${!r_apply[@]}"; do
	printf '    %5d  %-11s  %-6s  %-9s  %10s  %13s  %s\n' $((i + 1)) "${r_phase[i]}" "${r_killed[i]}" "${r_new[i]}" \
		"$(secs "${r_takeover[i]}")" "$(secs "${r_apply[i]}")" "${r_status[i]}"
done
printf '    takeover (Node names the new owner) p50 / max: %s / %s s\n' "$take50" "$takemax"
printf '    failover (kill to first apply) p50 / max: %s / %s s\n' "$apply50" "$applymax"
printf '    resolution: the polls after a kill came every %s s on average\n' \
	"$(printf '%s\n' "${r_poll[@]}" | awk '{ s += $1 } END { printf "%.2f", s / NR / 1e6 }')"
printf '    catch-up after the load: %s\n' "${caught:-not within $CATCHUP_TIMEOUT} s"
printf '    checksums: %s\n' "$verdict"
goal="missed"
awk -v m="$applymax" -v g="$goal_s" 'BEGIN { exit !(m != "n/a" && m <= g) }' && goal="met"
printf '    goal every failover within 2 x TTL + 5 s = %s s: %s (max %s s, %s kills)\n' "$goal_s" "$goal" "$applymax" "${#r_apply[@]}"
[ "$rc" = 0 ] || die "the target does not match the source"
