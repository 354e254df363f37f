#!/bin/sh
# burst.sh - a burst of decisions far above the pacing bounds gives the
# decisions that single lookups give.
#
# Every scenario domain of the test bed (but the slow ones) is decided
# once on its own, then all together, twice over, with at most 2 DNS
# queries outstanding (dns_max_queries) and 1 policy fetch at a time
# (max_fetches): some 500 queries and 60 fetches wait in the queues.
# The decisions are compared on domain, verdict, reason, MTA-STS mode
# and every host's name, policy and reason.
#
# usage: burst.sh BUILD_DIR   Needs the test bed (tests/testbed/up.sh).
# Prints "ok N NAME" / "not ok N NAME".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
danests=$build/core/danests
tb=$top/tests/testbed/run
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
n=0
failed=0

result() {
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n $1"
	else
		echo "not ok $n $1 # $3"
		failed=1
	fi
}

[ -x "$danests" ] || { echo "not ok 1 burst-setup # no $danests"; exit 1; }
[ -f "$tb/vars" ] || { echo "not ok 1 burst-setup # test bed not up"; exit 1; }

# timeout.test waits out the DNS timeout, sts-slow the fetch timeout:
# seconds each, and they say nothing about pacing.
domains=$(awk '!/^#/ && NF { print $1 }' "$top/tests/scenarios/list" |
    grep -v -x -e timeout.test -e sts-slow.test)
proj='{domain, verdict, reason, sts: (.sts.mode // null),
    hosts: [.hosts[] | {name, policy, reason}]}'
cat >"$tmp/paced.conf" <<EOF
resolver 127.10.0.2
ca_file $tb/pki/ca.crt
cache_dir none
dns_max_queries 2
max_fetches 1
EOF

# One at a time, unpaced in effect (a domain asks at most a few queries).
: >"$tmp/single"
for d in $domains; do
	"$danests" check --json --no-cache --resolver 127.10.0.2 \
	    --ca-file "$tb/pki/ca.crt" --timeout 12 "$d" 2>>"$tmp/err" |
	    jq -c "$proj" >>"$tmp/single"
done
nd=$(echo "$domains" | wc -l)
result single-all-decided "$([ "$(wc -l <"$tmp/single")" = "$nd" ]; echo $?)" \
    "$(wc -l <"$tmp/single") decisions for $nd domains"

# All at once, each domain twice, through the tight bounds.
# shellcheck disable=SC2086
printf '%s\n' $domains $domains | "$danests" check --json --config \
    "$tmp/paced.conf" --timeout 12 -f - 2>>"$tmp/err" | jq -c "$proj" \
    >"$tmp/burst"
# the first and the second copy of every domain
head -n "$nd" "$tmp/burst" >"$tmp/burst1"
tail -n +"$((nd + 1))" "$tmp/burst" >"$tmp/burst2"
for k in 1 2; do
	if cmp -s "$tmp/single" "$tmp/burst$k"; then
		result "burst-copy$k-same-decisions" 0 ""
	else
		result "burst-copy$k-same-decisions" 1 "differs: $(diff \
		    "$tmp/single" "$tmp/burst$k" | head -c 1500 | tr '\n' ' ')"
	fi
done

echo "1..$n"
exit $failed
