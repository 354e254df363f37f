#!/bin/bash
# valgrind_check.sh - `danests check` over every scenario domain of the test
# bed under valgrind: no invalid access, no leak, through getdns, curl,
# OpenSSL and the cache.  Usage: valgrind_check.sh BUILD_DIR
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
tb=$top/tests/testbed/run
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
domains=$(awk '!/^#/ && NF { print $1 }' "$top/tests/scenarios/list")
# the cache walks its file in a forked child, which exits with the
# parent's heap: its leak report would be the parent's, not its own
vg="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9 --child-silent-after-fork=yes"
status=0
for mode in no-cache cache cache-warm; do
	case $mode in
	no-cache) opts="--no-cache" ;;
	*) opts="--cache-dir $tmp/cache" ;;
	esac
	# shellcheck disable=SC2086
	$vg "$build/core/danests" check --json $opts --resolver 127.10.0.2 \
	    --ca-file "$tb/pki/ca.crt" --timeout 20 $domains >"$tmp/out" 2>"$tmp/err"
	rc=$?
	n=$(grep -c '"domain"' "$tmp/out")
	if [ $rc -ne 9 ] && [ ! -s "$tmp/err" ] && [ "$n" -eq "$(echo $domains | wc -w)" ]; then
		echo "ok valgrind-check-$mode ($n decisions, exit $rc)"
	else
		echo "not ok valgrind-check-$mode # exit $rc, $n decisions"
		sed 's/^/#   /' "$tmp/err" | head -40
		status=1
	fi
done
exit $status
