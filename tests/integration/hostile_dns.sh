#!/bin/sh
# hostile_dns.sh - `danests check` against the test bed's hostile resolver
# (127.10.0.5, tests/testbed/dns.sh): every reply carries the query's ID
# but does not answer its question (no question, another name, type or
# class, two questions, junk, cut packets, TC or QR wrong, bad counts),
# most with NXDOMAIN and the AD bit.  None of them may be read as
# NXDOMAIN or "no record": each domain must be tempfail with a DNS
# reason (dns-error; dns-timeout where the reply is too short to be DNS
# at all), never permfail; a host whose TLSA or address lookup gets such
# a reply is skipped, and so is a host left without MTA-STS because the
# policy host's address lookup failed.  The control "nx" (a proper NXDOMAIN) must be
# permfail, so the resolver is known to answer.  Once more through the
# `resolver` key of a configuration file.
#
# usage: hostile_dns.sh BUILD_DIR
# Needs the test bed's DNS (tests/testbed/dns.sh up); exits 77 when the
# hostile resolver does not answer.  Prints "ok N NAME" / "not ok N NAME".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
danests=$build/core/danests
addr=127.10.0.5
tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
n=0
failed=0

[ -x "$danests" ] || { echo "hostile_dns.sh: no $danests" >&2; exit 1; }
if ! dig +tries=1 +time=2 @"$addr" nx.hostile.test MX 2>/dev/null |
    grep -q 'status: NXDOMAIN'; then
	echo "hostile_dns.sh: no hostile resolver on $addr (dns.sh up)" >&2
	exit 77
fi

# result NAME PASS DETAIL - one TAP line
result() {
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n $1"
	else
		echo "not ok $n $1 # $3"
		failed=1
	fi
}

kinds="noq-nx noq-noerror other-nx ad-other type-nx class-nx twoq-nx garbage
 short hdr-only trailing tc-nx qr0-nx ancount"
domains=""
for k in $kinds tiny nx tlsa-noq addr-noq stshost-noq stshost-tiny; do
	domains="$domains $k.hostile.test"
done

# One run for every kind, in parallel as an MTA would ask.
# shellcheck disable=SC2086
"$danests" check --json --no-cache --resolver "$addr" --timeout 10 \
    $domains >"$tmp/all.jsonl" 2>"$tmp/err"
rc=$?
result check-exit-75 "$([ $rc -eq 75 ]; echo $?)" "exit $rc"

# verdict DOMAIN - "verdict reason" of DOMAIN in the run's output
verdict() {
	jq -r --arg d "$1" 'select(.domain == $d) | "\(.verdict) \(.reason)"' \
	    "$tmp/all.jsonl" 2>/dev/null
}

for k in $kinds; do
	got=$(verdict "$k.hostile.test")
	result "hostile-$k" "$([ "$got" = "tempfail dns-error" ]; echo $?)" \
	    "got '$got', want 'tempfail dns-error'"
done
# Too short to be DNS: getdns drops it, the query times out.
got=$(verdict tiny.hostile.test)
case $got in
"tempfail dns-error"|"tempfail dns-timeout") r=0 ;;
*) r=1 ;;
esac
result hostile-tiny $r "got '$got', want tempfail dns-error or dns-timeout"
# Proper secure MX (and address), then a host lookup that misses its
# question: the host is skipped for the DNS error, never "may" (no TLSA)
# nor "no address".
for k in tlsa-noq addr-noq; do
	got=$(jq -r --arg d "$k.hostile.test" 'select(.domain == $d) |
	    "\(.verdict) \(.hosts | map("\(.name) \(.policy) \(.reason)") |
	    join(","))"' "$tmp/all.jsonl" 2>/dev/null)
	want="tempfail mx.$k.hostile.test skip dns-error"
	result "hostile-$k" "$([ "$got" = "$want" ]; echo $?)" \
	    "got '$got', want '$want'"
done
# A valid _mta-sts TXT record, then the policy host's address lookup
# misses its question or times out: a DNS failure (a policy may exist),
# so the host DANE does not protect is skipped, never "may" as for a
# policy host without address.
for k in stshost-noq:dns-error stshost-tiny:dns-timeout; do
	d=${k%%:*}.hostile.test
	got=$(jq -r --arg d "$d" 'select(.domain == $d) |
	    "\(.verdict) \(.hosts | map("\(.name) \(.policy) \(.reason)") |
	    join(","))"' "$tmp/all.jsonl" 2>/dev/null)
	want="tempfail mx.$d skip ${k#*:}"
	result "hostile-${k%%:*}" "$([ "$got" = "$want" ]; echo $?)" \
	    "got '$got', want '$want'"
done
got=$(verdict nx.hostile.test)
result hostile-control-nx "$([ "$got" = "permfail nxdomain" ]; echo $?)" \
    "got '$got', want 'permfail nxdomain'"
if [ $failed -ne 0 ]; then
	sed 's/^/#   /' "$tmp/all.jsonl" "$tmp/err" | head -c 4000
	echo
fi

# A resolver that drops every other query (as a busy one drops what
# exceeds its request lists): the query is sent again within its time
# (dns_timeout, split into tries) and the proper NXDOMAIN arrives.
"$danests" check --json --no-cache --resolver "$addr" --timeout 10 \
    drop-nx.hostile.test >"$tmp/drop.jsonl" 2>"$tmp/err"
rc=$?
got=$(jq -r '"\(.verdict) \(.reason)"' "$tmp/drop.jsonl" 2>/dev/null)
result hostile-drop-retransmit "$([ $rc -eq 69 ] &&
    [ "$got" = "permfail nxdomain" ]; echo $?)" \
    "exit $rc, got '$got', want 'permfail nxdomain'"

# The resolver from a configuration file (core key "resolver").
printf 'resolver %s\ncache_dir none\n' "$addr" >"$tmp/danests.conf"
"$danests" check --json --config "$tmp/danests.conf" --timeout 10 \
    noq-nx.hostile.test other-nx.hostile.test >"$tmp/conf.jsonl" 2>"$tmp/err"
rc=$?
got=$(jq -r '"\(.verdict) \(.reason)"' "$tmp/conf.jsonl" 2>/dev/null |
    sort -u | tr '\n' ' ')
result config-resolver "$([ $rc -eq 75 ] &&
    [ "$got" = "tempfail dns-error " ]; echo $?)" \
    "exit $rc, got '$got' ($(head -c 300 "$tmp/err"))"

echo "1..$n"
exit $failed
