#!/usr/bin/env bash
# demo.sh: opendts end to end on this machine, through its API.
#
# Builds opendts, starts a throw-away source and target MariaDB (installing
# MariaDB from Debian's packages if it is missing), fills the source with
# sample data, starts `opendts serve`, and drives a full + incremental job
# with `opendts dts` the way a cloud script would: create, check, start,
# watch it copy and catch up while the source keeps taking writes, complete
# it, and show the consistency check and a comparison of both sides.
# Everything it starts it stops at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"

# Bold headings on a terminal, plain ones in a log.
if [ -t 1 ]; then
	say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
else
	say() { printf '\n== %s\n' "$*"; }
fi

free_port() {
	local p
	for p in $(seq "$1" $(($1 + 200))); do
		if ! (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null; then
			echo "$p"
			return
		fi
	done
	echo "no free port near $1" >&2
	exit 1
}

say "building opendts"
go build -ldflags "-X main.version=$(git describe --tags --always --dirty 2>/dev/null || echo dev) -X main.commit=$(git rev-parse HEAD 2>/dev/null)" -o bin/opendts ./cmd/opendts
scripts/testdb.sh install >/dev/null

work=$(mktemp -d /tmp/opendts-demo.XXXXXX)
server_pid=""
cleanup() {
	[ -n "${writer_pid:-}" ] && kill "$writer_pid" 2>/dev/null || true
	[ -n "$server_pid" ] && kill "$server_pid" 2>/dev/null && wait "$server_pid" 2>/dev/null || true
	scripts/testdb.sh stop "$work/source" >/dev/null 2>&1 || true
	scripts/testdb.sh stop "$work/target" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

src_port=$(free_port 23306)
scripts/testdb.sh start "$work/source" "$src_port" 101 >/dev/null
dst_port=$(free_port $((src_port + 1)))
scripts/testdb.sh start "$work/target" "$dst_port" 102 >/dev/null
say "source MariaDB on 127.0.0.1:$src_port, target on 127.0.0.1:$dst_port"

mysql_src() { "$(command -v mariadb || command -v mysql)" --no-defaults --default-character-set=utf8mb4 -h127.0.0.1 -P"$src_port" -uroot "$@"; }
mysql_src <<'SQL'
CREATE DATABASE shop CHARACTER SET utf8mb4;
CREATE TABLE shop.customers (id BIGINT UNSIGNED PRIMARY KEY AUTO_INCREMENT, name VARCHAR(100) NOT NULL, city VARCHAR(50));
CREATE TABLE shop.orders (id BIGINT PRIMARY KEY AUTO_INCREMENT, customer_id BIGINT UNSIGNED NOT NULL,
  total DECIMAL(12,2) NOT NULL, placed_at DATETIME(6) NOT NULL, INDEX (customer_id));
CREATE TABLE shop.audit_log (at TIMESTAMP(3) NOT NULL DEFAULT CURRENT_TIMESTAMP(3), what TEXT);
INSERT INTO shop.customers (name, city) VALUES ('Zoë 😀', 'Lyon'), ('Ana', 'Porto'), ('李雷', '广州');
INSERT INTO shop.orders (customer_id, total, placed_at) SELECT c.id, 19.90 * seq, NOW(6) FROM shop.customers c JOIN shop.seq_1_to_100;
INSERT INTO shop.audit_log (what) VALUES ('demo data loaded');
SQL
say "source filled: shop.customers (3 rows), shop.orders (300 rows), shop.audit_log (no key)"

api_port=$(free_port 29988)
export OPENDTS_SECRET_ID=AKIDopendtsDemo OPENDTS_SECRET_KEY=demo-secret-key
export OPENDTS_ENDPOINT="127.0.0.1:$api_port"
bin/opendts serve -listen "127.0.0.1:$api_port" -data-dir "$work/opendts-data" >"$work/opendts.log" 2>&1 &
server_pid=$!
for _ in $(seq 50); do
	curl -fsS "http://127.0.0.1:$api_port/healthz" >/dev/null 2>&1 && break
	sleep 0.1
done
say "opendts serving on http://127.0.0.1:$api_port (log: $work/opendts.log)"

dts() { bin/opendts dts "$@"; }
# field NAME prints the first value of NAME in the JSON on stdin; jobfield
# NAME the job's own field in a DescribeMigrateJobs answer (its steps have
# a Status too).
field() { sed -n "s/.*\"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" | head -1; }
jobfield() { sed -n "s/^      \"$1\": *\"\{0,1\}\([^\",]*\)\"\{0,1\}.*/\1/p" | head -1; }

# On a terminal progress is redrawn in place; in a log (scripts/test.sh) it
# is one plain line per change.
tty=0
[ -t 1 ] && tty=1

say "CreateMigrateJob"
out=$(dts CreateMigrateJob --JobName demo \
	--MigrateOption '{"RunMode":1,"MigrateType":3,"MigrateObject":2,"ConsistencyType":2}' \
	--SrcDatabaseType mariadb --SrcAccessType extranet \
	--SrcInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$src_port,\"User\":\"root\",\"Password\":\"\"}" \
	--DstDatabaseType mariadb --DstAccessType extranet \
	--DstInfo "{\"Ip\":\"127.0.0.1\",\"Port\":$dst_port,\"User\":\"root\",\"Password\":\"\",\"Region\":\"ap-guangzhou\"}" \
	--DatabaseInfo '[{"Database":"shop"}]')
job=$(echo "$out" | field JobId)
echo "   job $job created (status 1)"

say "CreateMigrateCheckJob $job"
dts CreateMigrateCheckJob --JobId "$job" >/dev/null
last=""
for _ in $(seq 100); do
	check=$(dts DescribeMigrateCheckJob --JobId "$job")
	[ "$(echo "$check" | field Status)" = finished ] && break
	line="   check progress: $(echo "$check" | field Progress)%"
	if [ "$tty" = 1 ]; then printf '\r%s' "$line"; elif [ "$line" != "$last" ]; then echo "$line"; fi
	last=$line
	sleep 0.2
done
[ "$tty" = 1 ] && printf '\r\033[K'
if [ "$(echo "$check" | field CheckFlag)" != 1 ]; then
	bin/opendts job "$job"
	echo "the check failed" >&2
	exit 1
fi
echo "   check passed (CheckFlag 1); the items are listed at the end"

say "StartMigrateJob $job (the source keeps taking orders meanwhile)"
writer_pid=""
(
	i=0
	while true; do
		i=$((i + 1))
		mysql_src -e "INSERT INTO shop.orders (customer_id, total, placed_at) VALUES (1 + $i % 3, $i.50, NOW(6)); UPDATE shop.customers SET city = CONCAT('City ', $i) WHERE id = 2" 2>/dev/null || exit 0
		sleep 0.1
	done
) &
writer_pid=$!
dts StartMigrateJob --JobId "$job" >/dev/null
# opendts watch: until status 8, ready to complete (exit 1 if the job fails).
bin/opendts watch "$job" --until-ready || true
status=$(dts DescribeMigrateJobs --JobId "$job" | jobfield Status)
if [ "$status" = 8 ]; then
	echo "   caught up; the source keeps writing for 3 s more"
	sleep 3
	kill "$writer_pid" 2>/dev/null || true
	wait "$writer_pid" 2>/dev/null || true
	say "writes stopped: CompleteMigrateJob $job (cut-over)"
	dts CompleteMigrateJob --JobId "$job" >/dev/null
	bin/opendts watch "$job" || true
	status=$(dts DescribeMigrateJobs --JobId "$job" | jobfield Status)
fi
kill "$writer_pid" 2>/dev/null || true
wait "$writer_pid" 2>/dev/null || true

say "the job (opendts job $job): steps, consistency check, check items"
bin/opendts job "$job"
if [ "$status" != 9 ]; then
	echo "the migration did not succeed (status $status)" >&2
	exit 1
fi

say "comparing source and target"
mysql_dst() { "$(command -v mariadb || command -v mysql)" --no-defaults --default-character-set=utf8mb4 -h127.0.0.1 -P"$dst_port" -uroot "$@"; }
same=1
for t in customers orders audit_log; do
	a=$(mysql_src -N -e "CHECKSUM TABLE shop.$t EXTENDED" | cut -f2)
	b=$(mysql_dst -N -e "CHECKSUM TABLE shop.$t EXTENDED" | cut -f2)
	printf '   shop.%-10s source %-12s target %-12s %s\n' "$t" "$a" "$b" "$([ "$a" = "$b" ] && echo same || echo DIFFERENT)"
	[ "$a" = "$b" ] || same=0
done
mysql_dst -e "SELECT name, city FROM shop.customers"
[ "$same" = 1 ] || { echo "source and target differ" >&2; exit 1; }
say "done; stopping opendts and both databases"
