# shellcheck shell=bash
# lib.sh: what bench/full.sh and bench/cdc.sh share. Sourced, not run.
# The caller sets: work (its temp dir), root (the repository), started (an
# array of server dirs its cleanup stops), and defines note.

die() {
	printf '\n%s: %s\n' "${0##*/}" "$*" >&2
	exit 1
}

# free_port FROM prints the first loopback port from FROM that nothing
# listens on. Callers start below 32768, where Linux picks the local ports
# of outgoing connections: a port free a moment ago can be taken there.
free_port() {
	local p
	for p in $(seq "$1" $(($1 + 500))); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port near $1"
}

start_db() { # start_db NAME PORT SERVER_ID [MARIADBD_ARG...]
	started+=("$work/$1")
	scripts/testdb.sh start "$work/$1" "$2" "$3" "${@:4}" >"$work/$1.start.log" 2>&1 || {
		cat "$work/$1.start.log" >&2
		die "could not start the $1 MariaDB on port $2"
	}
}

# opendts_binary sets opendts to OPENDTS_BIN or a fresh build.
opendts_binary() {
	if [ -n "${OPENDTS_BIN:-}" ]; then
		opendts=$OPENDTS_BIN
		[ -x "$opendts" ] || die "OPENDTS_BIN=$opendts is not an executable"
	else
		# shellcheck disable=SC2154 # root is the caller's
		opendts=$root/bin/opendts
		note "go build -o bin/opendts ./cmd/opendts (version and commit stamped)"
		go build -ldflags "-X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo dev) -X main.commit=$(git rev-parse HEAD 2>/dev/null)" -o bin/opendts ./cmd/opendts || die "go build failed"
	fi
}

# start_opendts starts `opendts serve` on a free port (server_pid, api_port,
# OPENDTS_ENDPOINT and the credentials exported) and waits for /healthz.
start_opendts() {
	api_port=$(free_port 25988)
	export OPENDTS_SECRET_ID=AKIDopendtsBench OPENDTS_SECRET_KEY=bench-secret-key
	export OPENDTS_ENDPOINT="127.0.0.1:$api_port"
	setsid "$opendts" serve -listen "127.0.0.1:$api_port" -data-dir "$work/opendts-data" \
		>"$work/opendts.log" 2>&1 </dev/null &
	server_pid=$!
	for _ in $(seq 100); do
		curl -fsS "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 && break
		kill -0 "$server_pid" 2>/dev/null || {
			cat "$work/opendts.log" >&2
			die "opendts serve exited during start-up (log above)"
		}
		sleep 0.1
	done
	curl -fsS "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 || die "opendts did not answer /healthz within 10 s"
	note "opendts serve pid $server_pid on http://127.0.0.1:$api_port (log $work/opendts.log)"
}

# dts ACTION ARGS... calls the API; on an API error prints it and fails.
dts() {
	local out
	if ! out=$("$opendts" dts "$@" 2>&1); then
		echo "$out" >&2
		die "opendts dts $1 failed (above)"
	fi
	echo "$out"
}

# stop_everything ends opendts serve (server_pid), stops the servers in
# started and removes work unless KEEP=1; the scripts' cleanup calls it
# after stopping their own background work.
stop_everything() {
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
	for d in "${started[@]}"; do
		scripts/testdb.sh stop "$d" >/dev/null 2>&1 &
	done
	wait
	if [ "${KEEP:-0}" = 1 ]; then
		echo "${0##*/}: kept $work (servers stopped)" >&2
	else
		rm -rf "$work"
	fi
}

# create_job NAME MIGRATE_OPTION DST_PORT: CreateMigrateJob of the database
# sbtest from the source (src_port) to the server on DST_PORT, as root
# without a password; sets job.
create_job() {
	local out
	# shellcheck disable=SC2154 # src_port is the caller's
	out=$(dts CreateMigrateJob --JobName "$1" --MigrateOption "$2" \
		--SrcDatabaseType mariadb --SrcAccessType extranet \
		--SrcInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$src_port,\"User\":\"root\",\"Password\":\"\"}" \
		--DstDatabaseType mariadb --DstAccessType extranet \
		--DstInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$3,\"User\":\"root\",\"Password\":\"\",\"Region\":\"ap-guangzhou\"}" \
		--DatabaseInfo '[{"Database":"sbtest"}]')
	job=$(jq -r .JobId <<<"$out")
	case "$job" in '' | null) die "CreateMigrateJob returned no JobId: $out" ;; esac
}

# check_job JOB runs the pre-migration check and waits for its end: notes
# a pass (and its warnings); prints the failed items and their advice on
# stderr and returns 1 for a failed check; dies when it does not end
# within 120 s.
check_job() {
	local status="" check
	dts CreateMigrateCheckJob --JobId "$1" >/dev/null
	for _ in $(seq 600); do
		status=$(dts DescribeMigrateJobs --JobId "$1" | jq -r '.JobList[0].Status')
		case "$status" in 4 | 5) break ;; esac
		sleep 0.2
	done
	check=$(dts DescribeMigrateCheckJob --JobId "$1")
	case "$status" in
	4)
		note "check passed$(jq -r '[.CheckItems[] | select(.Result == "warning") | .Name] |
			if length > 0 then " with warnings: " + join(", ") else "" end' <<<"$check")"
		;;
	5)
		jq -r '"check failed: " + .ErrorMessage,
			(.CheckItems[] | select(.Result != "pass") |
			"  [\(.Result)] \(.Name): \(.Message)" + (if .Advice != "" then "\n         advice: \(.Advice)" else "" end))' \
			<<<"$check" >&2
		return 1
		;;
	*)
		echo "$check" >&2
		die "the opendts check did not finish within 120 s (job status $status)"
		;;
	esac
}
