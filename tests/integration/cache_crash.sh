#!/bin/bash
# cache_crash.sh - the policy cache survives writers killed at any point
#
# Each round starts two writers on one cache (cache_writer ... write),
# lets them run for a random time and kills both with SIGKILL, so one is
# often killed inside a commit and the other while waiting for the write
# lock.  Then a fresh process (cache_writer ... check) must open the cache
# without a rebuild, decode every entry, find every commit the writers
# reported, find nothing they could not have written, and write itself.
#
# Usage: cache_crash.sh [BUILD_DIR]   (or BUILD_DIR in the environment)
# Prints "ok cache-crash" or "not ok cache-crash"; details as "# ..." lines.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${BUILD_DIR:-$top/build}}
writer=$build/tests/integration/cache_writer
rounds=${CACHE_CRASH_ROUNDS:-20}
count=100000			# per writer and round: never reached in time
tmp=$(mktemp -d)
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$tmp"
}
trap cleanup EXIT

if [ ! -x "$writer" ]; then
	echo "# $writer: not built"
	echo "not ok cache-crash"
	exit 1
fi

# last_index FILE - the last complete index a writer reported, or -1
last_index() {
	local l
	l=$(grep -E '^[0-9]+$' "$1" | tail -n 1)
	echo "${l:--1}"
}

dir=$tmp/cache
fail=0
total=0
for r in $(seq 1 "$rounds"); do
	"$writer" "$dir" write "$r" "$count" a >"$tmp/a.out" 2>"$tmp/a.err" &
	pa=$!
	"$writer" "$dir" write "$r" "$count" b >"$tmp/b.out" 2>"$tmp/b.err" &
	pb=$!
	pids=("$pa" "$pb")
	# 20-600 ms; the first rounds are short, to kill during set-up too
	ms=$(( (RANDOM % 580) + 20 ))
	[ "$r" -le 2 ] && ms=$(( RANDOM % 15 ))
	sleep "$(printf '0.%03d' "$ms")"
	kill -9 "$pa" "$pb" 2>/dev/null
	wait "$pa" 2>/dev/null
	ra=$?
	wait "$pb" 2>/dev/null
	rb=$?
	pids=()
	# a writer must die by the signal (137), never stop on an error
	for x in "a $ra" "b $rb"; do
		set -- $x
		if [ "$2" -ne 137 ]; then
			echo "# round $r: writer $1 exited $2 before the kill:" \
			    "$(head -c 300 "$tmp/$1.err")"
			fail=1
		fi
	done
	la=$(last_index "$tmp/a.out")
	lb=$(last_index "$tmp/b.out")
	total=$((total + la + lb + 2))
	if ! out=$(timeout 60 "$writer" "$dir" check "$r" "$count" \
	    a "$la" b "$lb" 2>&1); then
		echo "# round $r (after ${ms} ms): check failed:"
		echo "$out" | sed 's/^/#   /'
		fail=1
		break
	fi
	echo "# round $r (killed after ${ms} ms): $(echo "$out" | tr '\n' ' ')"
done
echo "# $total reported commits checked over $rounds rounds"
if [ "$total" -eq 0 ]; then
	echo "# the writers never committed anything"
	fail=1
fi
if [ "$fail" -eq 0 ]; then
	echo "ok cache-crash"
	exit 0
fi
echo "not ok cache-crash"
exit 1
