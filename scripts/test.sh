#!/usr/bin/env bash
# test.sh: the whole test suite, as a newcomer and CI run it.
#
# Installs what the tests need when it is missing (MariaDB from Debian's
# packages, the Go modules, the npm packages of tests/node), then vets and
# runs every test with the race detector, then the demo. Tests start their
# own MariaDB servers on free loopback ports and remove what they create
# (servers, data directories, built binaries), whether they pass or fail.
set -euo pipefail
cd "$(dirname "$0")/.."
export PATH="$PATH:/usr/local/go/bin:/usr/sbin:/usr/local/sbin"

scripts/testdb.sh install
scripts/redistestdb.sh install
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
