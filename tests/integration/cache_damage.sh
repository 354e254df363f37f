#!/bin/bash
# cache_damage.sh - damaged data pages never crash a reader
#
# A cache of 300 policies and decisions is damaged at random offsets past
# LMDB's two meta pages (1-4 runs of 1-32 bytes, from fixed seeds), then:
#  - damage-cli: `danests cache list --json` in a fresh process (what a
#    daemon, the tool or an Exim delivery does at open);
#  - damage-live: a process that had the cache open when it was damaged
#    walks it as the daemons' refresh does;
#  - damage-live-get: such a process looks each entry up, as a decision
#    does.
# No run may die from a signal, and each must give the right answer (the
# damage hit unused bytes) or take the rebuild path (moved aside, rebuilt
# empty, known as rebuilt); a wrong answer or a bare error fails.
#
# Usage: cache_damage.sh [BUILD_DIR]   (CACHE_DAMAGE_RUNS, default 60)
# Prints "ok N NAME" / "not ok N NAME"; details as "# ..." lines.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${BUILD_DIR:-$top/build}}
danests=$build/core/danests
writer=$build/tests/integration/cache_writer
runs=${CACHE_DAMAGE_RUNS:-60}
count=300
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ ! -x "$danests" ] || [ ! -x "$writer" ]; then
	echo "# $danests or $writer: not built"
	echo "not ok 1 cache-damage"
	exit 1
fi
if ! "$writer" "$tmp/pristine" write 1 "$count" a >/dev/null ||
    ! golden=$("$danests" cache --cache-dir "$tmp/pristine" list --json) ||
    [ "$(jq '.sts | length' <<<"$golden")" -lt "$count" ]; then
	echo "# cannot build the pristine cache"
	echo "not ok 1 cache-damage"
	exit 1
fi

fail=0
n=0
# report NAME RIGHT REBUILT BAD
report() {
	n=$((n + 1))
	if [ "$4" -eq 0 ]; then
		echo "ok $n $1 ($runs runs: $2 right, $3 rebuilt)"
	else
		echo "not ok $n $1 ($runs runs: $2 right, $3 rebuilt, $4 bad)"
		fail=1
	fi
}

right=0 rebuilt=0 bad=0
for seed in $(seq 1 "$runs"); do
	rm -rf "$tmp/d"
	cp -a "$tmp/pristine" "$tmp/d"
	"$writer" "$tmp/d" damage "$seed" >"$tmp/damage" || exit 1
	out=$("$danests" cache --cache-dir "$tmp/d" list --json 2>"$tmp/err")
	rc=$?
	if [ $rc -eq 0 ] && [ "$out" = "$golden" ]; then
		right=$((right + 1))
	elif [ $rc -eq 0 ] && grep -q "moved aside" "$tmp/err" &&
	    jq -e '.rebuilt_at != null and (.sts | length) == 0 and
	    (.decisions | length) == 0' <<<"$out" >/dev/null; then
		rebuilt=$((rebuilt + 1))
	else
		bad=$((bad + 1))
		[ $rc -gt 128 ] && echo "# seed $seed: killed by signal" \
		    "$((rc - 128))" || echo "# seed $seed: exit $rc," \
		    "$(head -c 200 "$tmp/err" | tr -cd "[:print:]")"
		sed 's/^/#   /' "$tmp/damage"
	fi
done
report damage-cli $right $rebuilt $bad

for mode in live live-get; do
	right=0 rebuilt=0 bad=0
	for seed in $(seq 1 "$runs"); do
		rm -rf "$tmp/d"
		cp -a "$tmp/pristine" "$tmp/d"
		"$writer" "$tmp/d" "$mode" "$seed" "$count" a >"$tmp/out" 2>"$tmp/err"
		rc=$?
		if [ $rc -eq 0 ] && grep -q "every entry right" "$tmp/out"; then
			right=$((right + 1))
		elif [ $rc -eq 0 ] && grep -q "rebuilt" "$tmp/out"; then
			rebuilt=$((rebuilt + 1))
		else
			bad=$((bad + 1))
			[ $rc -gt 128 ] && echo "# seed $seed: killed by signal" \
			    "$((rc - 128))" || echo "# seed $seed: exit $rc," \
			    "$(head -c 200 "$tmp/err" | tr -cd "[:print:]")"
			grep '^# damaged' "$tmp/out" | sed 's/^/#   /'
		fi
	done
	report "damage-$mode" $right $rebuilt $bad
done

[ "$fail" -eq 0 ]
