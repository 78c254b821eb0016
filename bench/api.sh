#!/usr/bin/env bash
# api.sh: how the API's cost grows with the jobs stored. For each job count
# (JOBS, then SMALL), it stores that many jobs (bench/apiload fill, straight
# into a fresh data dir), starts `opendts serve` on it, sends open-loop
# TC3-signed DescribeMigrateJobs at fixed rates from KEYS SecretIds (a mix:
# first page, JobId lookup, JobName filter, Order=Status, a TagFilter, a
# page 90 % deep), printing per rate p50/p99/max latency, errors by code,
# opendts's CPU seconds and peak RSS; then finds the highest rate whose p99
# stays under 50 ms (FIND_MAX=1), and times CREATES CreateMigrateJob calls
# made one after another.
#
#   bench/api.sh [--jobs N] [--small N] [--rates LIST] [--duration D] [--keep]
#
# Environment (flags win): JOBS (10000), SMALL (100), RATES (500,1000,2000),
# DURATION (10s per rate), FIND_MAX (1), STEP (500), KEYS (200 SecretIds),
# CREATES (50), PROFILE (1: a 5 s CPU profile of opendts during the
# 1,000/s rate, printed with go tool pprof -top), KEEP (1 = --keep),
# OPENDTS_BIN (use this binary instead of building bin/opendts), APILOAD_BIN
# (this apiload instead of building bench/apiload; its fill writes the
# store, so to measure an older opendts, build apiload in that tree).
# Needs Go and curl. Everything it starts is stopped on exit.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)
export PATH="$PATH:/usr/local/go/bin"

JOBS=${JOBS:-10000} SMALL=${SMALL:-100} RATES=${RATES:-500,1000,2000} DURATION=${DURATION:-10s}
FIND_MAX=${FIND_MAX:-1} STEP=${STEP:-500} KEYS=${KEYS:-200} CREATES=${CREATES:-50} PROFILE=${PROFILE:-0} KEEP=${KEEP:-0}
while [ $# -gt 0 ]; do
	case "$1" in
	--jobs) JOBS=$2; shift 2 ;;
	--small) SMALL=$2; shift 2 ;;
	--rates) RATES=$2; shift 2 ;;
	--duration) DURATION=$2; shift 2 ;;
	--keep) KEEP=1; shift ;;
	*) sed -n '2,/^set -euo/p' "$0" | sed -e '/^set -euo/d' -e 's/^# \{0,1\}//' >&2; exit 2 ;;
	esac
done

note() { printf '%s\n' "$*" >&2; }
work=$(mktemp -d /tmp/opendts-api-bench.XXXXXX)
started=()
# shellcheck source=bench/lib.sh
. bench/lib.sh
trap 'stop_everything' EXIT
trap 'exit 1' INT TERM

opendts_binary
if [ -n "${APILOAD_BIN:-}" ]; then
	cp "$APILOAD_BIN" "$work/apiload"
else
	go build -o "$work/apiload" ./bench/apiload || die "go build ./bench/apiload failed"
fi

creds=$work/credentials
for i in $(seq "$KEYS"); do printf 'AKIDapiload%04d key-%04d-%s\n' "$i" "$i" "$RANDOM$RANDOM"; done >"$creds"
chmod 600 "$creds"

# run_for N: one data dir of N jobs, one server, the whole series.
run_for() {
	local n=$1 dir=$work/data-$1 prof_pid=
	mkdir -p "$dir"
	"$work/apiload" fill -data-dir "$dir" -jobs "$n" || die "fill $n jobs failed"
	api_port=$(free_port 26988)
	local debug_port
	debug_port=$(free_port $((api_port + 1)))
	setsid "$opendts" serve -listen "127.0.0.1:$api_port" -data-dir "$dir" -credentials-file "$creds" \
		-max-unused-jobs $((n + CREATES + 1000)) -debug-listen "127.0.0.1:$debug_port" -log-level warn \
		>"$work/opendts-$n.log" 2>&1 </dev/null &
	server_pid=$!
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 && break
		sleep 0.1
	done
	curl -fsS "http://127.0.0.1:$api_port/healthz" >/dev/null || { cat "$work/opendts-$n.log" >&2; die "opendts did not start"; }
	if [ "$PROFILE" = 1 ]; then
		# The 1,000/s rate starts after the 2 s warm-up and the rates before it.
		local before=0 r
		for r in ${RATES//,/ }; do [ "$r" -lt 1000 ] && before=$((before + ${DURATION%s})); done
		(sleep $((2 + before + 2)) && curl -fsS -o "$work/cpu-$n.pprof" "http://127.0.0.1:$debug_port/debug/pprof/profile?seconds=5") &
		prof_pid=$!
	fi
	local max_flag=()
	[ "$FIND_MAX" = 1 ] && max_flag=(-find-max -step "$STEP")
	"$work/apiload" load -endpoint "127.0.0.1:$api_port" -credentials "$creds" -jobs "$n" -rates "$RATES" \
		-duration "$DURATION" -pid "$server_pid" -label "$n" "${max_flag[@]}"
	"$work/apiload" create -endpoint "127.0.0.1:$api_port" -credentials "$creds" -n "$CREATES" -label "$n"
	[ -n "${prof_pid:-}" ] && wait "$prof_pid" || true
	if [ "$PROFILE" = 1 ] && [ -s "$work/cpu-$n.pprof" ]; then
		echo "-- CPU profile at 1,000 requests/s, $n jobs (cumulative, top 25)"
		go tool pprof -top -cum -nodecount 25 "$opendts" "$work/cpu-$n.pprof" 2>/dev/null | tail -n +5
	fi
	kill -TERM "$server_pid"
	wait "$server_pid" 2>/dev/null || true
	server_pid=
}

echo "== opendts $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo '?'), $(nproc) cores, $KEYS SecretIds, $DURATION per rate"
run_for "$JOBS"
run_for "$SMALL"
