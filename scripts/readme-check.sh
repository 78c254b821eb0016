#!/usr/bin/env bash
# readme-check.sh: follow README.md on a fresh clone, as a newcomer would.
#
# Clones the committed branch into a temporary directory and, there, runs
# the README's commands as they are written in it, taken from the file
# rather than copied here (so the README cannot drift from what works):
#   - the first block: scripts/test.sh (its quick part by default: vet,
#     gofmt and the tests named in QUICK_TESTS, then the demo; FULL=1 runs
#     every test; TESTS=0 skips it) and so scripts/demo.sh;
#   - "Running the server": the build, version, and serve (in the
#     background, on a free port given through OPENDTS_LISTEN);
#   - every command's help;
#   - "A first job, step by step": the servers, CLI and curl blocks against
#     two throw-away MariaDB servers, and the clean-up SQL on the target;
#   - the systemd unit, checked with systemd-analyze when it is installed.
# The Go and Node.js snippets are fragments; the tests drive both SDKs.
# Everything it starts it stops, and the clone goes, also when it fails.
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"
QUICK_TESTS=${QUICK_TESTS:-'^(TestHelpAndVersion|TestREADMECurlExample|TestWrongTypesNameTheParameter|TestDuplicateJob|TestTypedCommandLine)$'}

say() { printf '\n\033[1m== readme-check: %s\033[0m\n' "$*"; }
die() { echo "readme-check: $*" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/opendts-readme-check.XXXXXX")
server_pid=""
cleanup() {
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
	[ -d "$work/clone" ] && (cd "$work/clone" && scripts/testdb.sh stop "$work/source" >/dev/null 2>&1; scripts/testdb.sh stop "$work/target" >/dev/null 2>&1) || true
	rm -rf "$work"
}
trap cleanup EXIT

# block NAME prints the code block that follows the README line
# "<!-- readme-check: NAME -->", or the first sh block after the heading
# "## NAME" / "### NAME".
block() {
	awk -v name="$1" '
		!found && ($0 == "<!-- readme-check: " name " -->" || $0 == "## " name || $0 == "### " name) { found = 1; next }
		found && !inside && /^```(sh|sql)$/ { inside = 1; next }
		inside && /^```$/ { exit }
		inside { print }
	' README.md
}

free_port() {
	local p
	for p in $(seq "$1" $(($1 + 200))); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	die "no free port near $1"
}

say "a fresh clone of $(git -C "$here" rev-parse --abbrev-ref HEAD) at $(git -C "$here" rev-parse --short HEAD)"
git clone --quiet --branch "$(git -C "$here" rev-parse --abbrev-ref HEAD)" "$here" "$work/clone"
cd "$work/clone"

first=$(awk '/^```sh$/ { inside = 1; next } inside && /^```$/ { exit } inside { print }' README.md)
echo "$first"
grep -q '^scripts/demo.sh' <<<"$first" && grep -q '^scripts/test.sh' <<<"$first" || die "the README's first block no longer runs the demo and the tests"
if [ "${TESTS:-1}" = 0 ]; then
	say "TESTS=0: scripts/test.sh and the demo skipped"
elif [ "${FULL:-0}" = 1 ]; then
	say "scripts/test.sh (every test, then the demo)"
	scripts/test.sh
else
	say "scripts/test.sh -run '$QUICK_TESTS' (vet, gofmt, the quick tests, then the demo)"
	scripts/test.sh -run "$QUICK_TESTS"
fi

say "Running the server"
run_block=$(block "Running the server")
echo "$run_block"
# The build and version lines as written; serve goes to the background.
eval "$(grep -v '^bin/opendts serve' <<<"$run_block")"
api_port=$(free_port $((20000 + RANDOM % 10000)))
export OPENDTS_LISTEN="127.0.0.1:$api_port" OPENDTS_ENDPOINT="127.0.0.1:$api_port"
eval "$(grep '^bin/opendts serve' <<<"$run_block" | sed 's/#.*//') >'$work/serve.log' 2>&1 &"
server_pid=$!
for _ in $(seq 100); do
	curl -fsS "http://$OPENDTS_LISTEN/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
curl -fsS "http://$OPENDTS_LISTEN/healthz" >/dev/null || { cat "$work/serve.log"; die "opendts serve did not start"; }

say "help"
for cmd in "bin/opendts -h" "bin/opendts serve -h" "bin/opendts dts -h" "bin/opendts dts CreateMigrateJob -h" "bin/opendts jobs -h" "bin/opendts watch -h"; do
	$cmd >"$work/help.txt" 2>&1 || die "$cmd exited $?"
	echo "$cmd: $(wc -l <"$work/help.txt") lines"
done
eval "$(block "The built-in client" | grep -v '^bin/opendts dts.*-h')" >/dev/null

say "two throw-away MariaDB servers"
scripts/testdb.sh install >/dev/null
src_port=$(free_port $((20000 + RANDOM % 10000)))
scripts/testdb.sh start "$work/source" "$src_port" 201 >/dev/null
dst_port=$(free_port $((src_port + 1)))
scripts/testdb.sh start "$work/target" "$dst_port" 202 >/dev/null
client=$(command -v mariadb || command -v mysql)
sql() { "$client" --no-defaults -h127.0.0.1 -P"$1" -uroot; }
# opendts's accounts, with passwords, as on real servers.
for port in "$src_port" "$dst_port"; do
	echo "CREATE USER dts@'%' IDENTIFIED BY 'dts-pw'; GRANT ALL ON *.* TO dts@'%' WITH GRANT OPTION;" | sql "$port"
done
sql "$src_port" <<'SQL'
CREATE DATABASE shop;
CREATE TABLE shop.orders (id INT PRIMARY KEY, total DECIMAL(10,2));
INSERT INTO shop.orders SELECT seq, seq * 1.5 FROM shop.seq_1_to_1000;
SQL
export SRC_IP=127.0.0.1 SRC_PORT=$src_port SRC_USER=dts SRC_PASSWORD=dts-pw
export DST_IP=127.0.0.1 DST_PORT=$dst_port DST_USER=dts DST_PASSWORD=dts-pw

say "A first job, step by step: the servers and the CLI"
script=$(block servers; block cli)
echo "$script"
timeout 600 bash -euo pipefail -c "$script" || die "the CLI walkthrough failed"
rows=$(echo "SELECT COUNT(*) FROM shop.orders" | sql "$dst_port" | tail -1)
[ "$rows" = 1000 ] || die "the CLI job left $rows rows on the target, not 1000"

say "A first job, step by step: curl"
block "Calling the API without an SDK" >tc3.sh
# The next job needs an empty target again.
echo "DROP DATABASE shop" | sql "$dst_port"
script=$(block servers; block curl)
timeout 600 bash -euo pipefail -c "$script" || die "the curl walkthrough failed"
rows=$(echo "SELECT COUNT(*) FROM shop.orders" | sql "$dst_port" | tail -1)
[ "$rows" = 1000 ] || die "the curl job left $rows rows on the target, not 1000"
bin/opendts jobs

say "What a job leaves on the target"
block cleanup
block cleanup | sql "$dst_port"
left=$(echo "SELECT COUNT(*) FROM information_schema.SCHEMATA WHERE SCHEMA_NAME = '__opendts'" | sql "$dst_port" | tail -1)
[ "$left" = 0 ] || die "__opendts is still on the target"

if command -v systemd-analyze >/dev/null; then
	say "deploy/opendts.service (systemd-analyze verify, with this clone's binary)"
	mkdir "$work/unit"
	sed "s#/usr/local/bin/opendts#$work/clone/bin/opendts#" deploy/opendts.service >"$work/unit/opendts.service"
	systemd-analyze verify "$work/unit/opendts.service"
fi

say "ok: every runnable command of the README ran as written"
