#!/usr/bin/env bash
# test.sh: the whole test suite, as a newcomer and CI run it.
#
# Installs what the tests need when it is missing (MariaDB, PostgreSQL,
# redis-server, etcd-server and etcd-client, Chromium and ChromeDriver
# from Debian's packages, the Go modules, the npm packages of tests/node:
# the Node.js SDK and axe-core), then vets and
# runs every test with the race detector, then the demo. Tests start their
# own MariaDB servers on free loopback ports and remove what they create
# (servers, data directories, built binaries), whether they pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"

scripts/testdb.sh install
scripts/pgtestdb.sh install
scripts/redistestdb.sh install
scripts/etcdtestdb.sh install
# Debian's Chromium and its driver, for the web console's browser test
# (cmd/opendts TestConsole*), when they are missing. Debian must not start a
# packaged service during the install (policy-rc.d says no), as testdb.sh
# does for MariaDB. Where Chromium cannot be installed, OPENDTS_SKIP_BROWSER=1
# skips that test.
if [ "${OPENDTS_SKIP_BROWSER:-}" != 1 ] && ! { command -v chromium >/dev/null && command -v chromedriver >/dev/null; }; then
	sudo=""
	[ "$(id -u)" -eq 0 ] || sudo="sudo -n"
	made_policy=""
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
		$sudo chmod 755 /usr/sbin/policy-rc.d
		made_policy=1
	fi
	rc=0
	{
		$sudo env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
			$sudo env DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium chromium-driver
	} || rc=$?
	[ -z "$made_policy" ] || $sudo rm -f /usr/sbin/policy-rc.d
	[ "$rc" -eq 0 ] || { echo "apt-get could not install chromium (exit $rc); set OPENDTS_SKIP_BROWSER=1 to skip the browser test" >&2; exit 1; }
fi
go mod download
# The official Node.js SDK at the version tests/node pins, for the API tests
# that use it as a client (they fail, not skip, when node is here and the
# packages are not).
if command -v node >/dev/null; then
	(cd tests/node && npm ci --no-audit --no-fund --loglevel=error)
else
	echo "node is not installed: the Node.js SDK tests will be skipped" >&2
fi
unformatted=$(gofmt -l $(git ls-files '*.go' 2>/dev/null || find . -name '*.go'))
if [ -n "$unformatted" ]; then
	echo "gofmt would change: $unformatted" >&2
	exit 1
fi
go vet ./...
go test -race -count=1 -timeout 15m "$@" ./...
# The README's first command, end to end, as a newcomer runs it. Its output
# is kept only to show it when it fails; the file goes either way.
demo_log=$(mktemp "${TMPDIR:-/tmp}/opendts-demo.XXXXXX.log")
trap 'rm -f "$demo_log"' EXIT
scripts/demo.sh >"$demo_log" 2>&1 || { tail -n 60 "$demo_log" >&2; echo "scripts/demo.sh failed" >&2; exit 1; }
echo "scripts/demo.sh: ok ($(grep -c ' same$' "$demo_log") tables the same on both sides)"
