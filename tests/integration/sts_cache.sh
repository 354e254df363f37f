#!/bin/bash
# sts_cache.sh - the MTA-STS policy cache against the live test bed
#
#  - sts-cache.test: after a first fetch the policy host goes away and the
#    TXT id changes (forcing a refetch that fails): the cached policy stays
#    in force (source cache, error recorded); without the cache there is
#    no policy at all.
#  - sts-idchange.test: a new TXT id brings the new policy in.
#  - sts-expire.test (max_age 2): once expired and unfetchable, it is gone.
#  - a refresh killed with SIGKILL mid-run leaves a readable cache with
#    every policy still there.
#  - a corrupt cache is moved aside and rebuilt; a domain whose policy
#    can't be fetched is then deferred (it may have had one), not sent
#    without a policy.
# Usage: sts_cache.sh BUILD_DIR    Prints "ok NAME" / "not ok NAME".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
tb=$top/tests/testbed/run
www=$tb/https/www
danests=$build/core/danests
tmp=$(mktemp -d)
status=0

restore() {
	[ -f "$tmp/cache.policy" ] &&
	    cp "$tmp/cache.policy" "$www/sts-cache.test/.well-known/mta-sts.txt"
	[ -f "$tmp/idchange.policy" ] &&
	    cp "$tmp/idchange.policy" "$www/sts-idchange.test/.well-known/mta-sts.txt"
	[ -f "$tmp/expire.policy" ] &&
	    cp "$tmp/expire.policy" "$www/sts-expire.test/.well-known/mta-sts.txt"
	"$top/tests/testbed/dnsedit.sh" sts-cache.test >/dev/null 2>&1
	"$top/tests/testbed/dnsedit.sh" sts-idchange.test >/dev/null 2>&1
	rm -rf "$tmp"
}
trap restore EXIT

cp "$www/sts-cache.test/.well-known/mta-sts.txt" "$tmp/cache.policy"
cp "$www/sts-idchange.test/.well-known/mta-sts.txt" "$tmp/idchange.policy"
cp "$www/sts-expire.test/.well-known/mta-sts.txt" "$tmp/expire.policy"

# Re-check TXT ids at every lookup and never reuse whole decisions, so
# that each step below sees the current DNS and policy hosts.
cat >"$tmp/conf" <<EOC
resolver 127.10.0.2
ca_file $tb/pki/ca.crt
cache_dir $tmp/cache
sts_recheck 0
decision_ttl 0
decision_timeout 12
EOC

check() {	# check DOMAIN [extra options] -> JSON line on stdout
	local d=$1
	shift
	"$danests" check --json --config "$tmp/conf" "$@" "$d" 2>>"$tmp/err"
}

# expect NAME JQ-EXPR JSON - the JQ boolean expression holds for JSON
expect() {
	if printf '%s\n' "$3" | jq -e "$2" >/dev/null 2>&1; then
		echo "ok $1"
	else
		echo "not ok $1 # $2 on: $(printf '%s' "$3" | head -c 600)"
		status=1
	fi
}

# --- policy host goes away after the first fetch ---
j=$(check sts-cache.test)
expect cache-first-fetch '.sts.source == "fetched" and .sts.mode == "enforce" and .hosts[0].policy == "sts-enforce"' "$j"
rm -f "$www/sts-cache.test/.well-known/mta-sts.txt"
"$top/tests/testbed/dnsedit.sh" sts-cache.test TXT_ID=20261124b >/dev/null
j=$(check sts-cache.test)
expect cache-host-gone-still-enforced '.sts.source == "cache" and .sts.mode == "enforce" and .hosts[0].policy == "sts-enforce" and (.sts.error | test("sts-policy-fetch-error"))' "$j"
j=$(check sts-cache.test --no-cache)
expect cache-host-gone-without-cache '.sts == null and .hosts[0].policy == "may" and (.sts_error | test("sts-policy-fetch-error"))' "$j"
out=$("$danests" cache --cache-dir "$tmp/cache" show sts-cache.test 2>&1)
if printf '%s' "$out" | grep -q "enforce" && printf '%s' "$out" | grep -q "404"; then
	echo "ok cache-show-records-error"
else
	echo "not ok cache-show-records-error # $out"
	status=1
fi

# --- TXT id changes: the new policy is fetched and used ---
j=$(check sts-idchange.test)
expect idchange-first '.sts.mode == "enforce" and .sts.id == "20261123a"' "$j"
cp "$tb/https/alt/sts-idchange.test" "$www/sts-idchange.test/.well-known/mta-sts.txt"
j=$(check sts-idchange.test)
expect idchange-same-id-keeps-cache '.sts.mode == "enforce" and .sts.source == "cache"' "$j"
"$top/tests/testbed/dnsedit.sh" sts-idchange.test TXT_ID=20261124b >/dev/null
j=$(check sts-idchange.test)
expect idchange-new-policy '.sts.mode == "testing" and .sts.id == "20261124b" and .sts.source == "fetched" and .hosts[0].policy == "sts-testing"' "$j"

# --- expiry: max_age 2, host gone, after expiry no policy ---
j=$(check sts-expire.test)
expect expire-first '.sts.mode == "enforce" and .sts.max_age == 2' "$j"
rm -f "$www/sts-expire.test/.well-known/mta-sts.txt"
sleep 3
j=$(check sts-expire.test)
expect expire-gone '.sts == null and .hosts[0].policy == "may"' "$j"
if "$danests" cache --cache-dir "$tmp/cache" show sts-expire.test >/dev/null 2>&1; then
	echo "not ok expire-removed-from-cache"
	status=1
else
	echo "ok expire-removed-from-cache"
fi

# --- SIGKILL of a refresh in progress ---
good="sts-enforce.test sts-wild.test sts-testing.test sts-none.test sts-crlf.test sts-dane.test sts-certbad.test sts-nostarttls.test sts-mismatch.test"
"$danests" check --json --config "$tmp/conf" $good >/dev/null 2>>"$tmp/err"
before=$("$danests" cache --cache-dir "$tmp/cache" list 2>/dev/null | grep -c '\.test')
killed=0
for i in 1 2 3 4 5; do
	"$danests" cache --cache-dir "$tmp/cache" refresh --window 999999 \
	    --resolver 127.10.0.2 --ca-file "$tb/pki/ca.crt" >/dev/null 2>&1 &
	pid=$!
	sleep "0.0$((i * 2))"
	kill -9 $pid 2>/dev/null && killed=$((killed + 1))
	wait $pid 2>/dev/null
done
after=$("$danests" cache --cache-dir "$tmp/cache" list 2>/dev/null | grep -c '\.test')
if [ "$before" -ge 9 ] && [ "$after" -eq "$before" ] &&
    "$danests" check --json --config "$tmp/conf" sts-enforce.test | jq -e '.sts.mode == "enforce"' >/dev/null; then
	echo "ok refresh-sigkill-cache-intact ($killed kills, $after entries)"
else
	echo "not ok refresh-sigkill-cache-intact # before $before after $after"
	status=1
fi
# sts-cache.test can't be refreshed (its host is gone): every other
# policy must be.
"$danests" cache --cache-dir "$tmp/cache" refresh --window 999999 \
    --resolver 127.10.0.2 --ca-file "$tb/pki/ca.crt" >"$tmp/refresh.out" 2>&1
refreshed=$(sed -n 's/.* \([0-9]*\) refreshed.*/\1/p' "$tmp/refresh.out")
if [ "${refreshed:-0}" -ge 9 ]; then
	echo "ok refresh-completes ($(cat "$tmp/refresh.out"))"
else
	echo "not ok refresh-completes # $(cat "$tmp/refresh.out")"
	status=1
fi

# --- a corrupt cache is rebuilt, and a domain whose policy may have been
#     lost with it is deferred instead of losing its protection ---
head -c 65536 /dev/urandom >"$tmp/cache/data.mdb"
j=$(check sts-cache.test 2>"$tmp/corrupt.err")
expect corrupt-cache-defers-unfetchable '.verdict == "tempfail" and .hosts[0].policy == "skip" and .hosts[0].reason == "cache-error"' "$j"
j=$(check sts-enforce.test)
expect corrupt-cache-fetchable-still-enforced '.sts.source == "fetched" and .hosts[0].policy == "sts-enforce"' "$j"
if ls "$tmp/cache"/data.mdb.corrupt-* >/dev/null 2>&1; then
	echo "ok corrupt-cache-moved-aside"
else
	echo "not ok corrupt-cache-moved-aside # $(ls "$tmp/cache")"
	status=1
fi
exit $status
