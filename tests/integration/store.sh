#!/bin/bash
# store.sh - the shared store of a fleet (store redis://...) against a real
# redis-server and the live test bed.  Two nodes (two cache directories,
# one Redis on a loopback port of this network namespace):
#  - node A fetches sts-enforce.test's policy: it is stored with its fetch
#    time, TXT id and a TTL of the remaining max_age;
#  - the policy host goes away: node B, which never saw the domain, still
#    enforces the policy (from the store), never "no policy";
#  - the newest policy wins: an older policy offered after a newer one
#    does not replace it; offered to an empty store it is written;
#  - Redis stopped: node B keeps enforcing from its local cache, within a
#    bounded time, and logs the outage; Redis back: the next refresh
#    writes the local policies again (resynchronisation);
#  - two nodes refreshing at once fetch the policy once (nginx's log);
#  - a new TXT id met by two nodes at once: the new policy is fetched once,
#    never replaced by the store's older policy;
#  - a store's host name is resolved within store_timeout;
#  - decisions: one node's decision serves another until it expires (a
#    tempfail never); `danests cache purge` deletes the store's copies;
#  - first contact: a node meeting a new domain whose fetch lock another
#    node holds waits (half of decision_timeout at most, longer than
#    fetch_timeout, which the holder may spend waiting its turn before
#    it even fetches) and adopts that node's
#    policy; a lock released without a policy, or held too long, makes it
#    fetch itself; two nodes meeting a new domain at once fetch it once;
#    Redis down: a new domain is fetched as without a store.
# Every program run is bounded (timeout), so that a store call without
# its bound fails the test instead of hanging it.
# Usage: store.sh BUILD_DIR    Prints "ok N NAME" / "not ok N NAME".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
tb=$top/tests/testbed/run
www=$tb/https/www
danests=$build/core/danests
tmp=$(mktemp -d)
port=16379
n=0
status=0
rpid=

ok() { n=$((n + 1)); echo "ok $n $1"; }
notok() { n=$((n + 1)); echo "not ok $n $1 # $2"; status=1; }

restore() {
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	[ -f "$tmp/enforce.policy" ] &&
	    cp "$tmp/enforce.policy" "$www/sts-enforce.test/.well-known/mta-sts.txt"
	if [ -f "$tmp/idchange.policy" ]; then
		cp "$tmp/idchange.policy" "$www/sts-idchange.test/.well-known/mta-sts.txt"
		"$top/tests/testbed/dnsedit.sh" sts-idchange.test >/dev/null 2>&1
	fi
	rm -rf "$tmp"
}
trap restore EXIT

for p in redis-server redis-cli jq; do
	command -v $p >/dev/null 2>&1 || {
		notok store-prerequisites "$p missing (tests/setup.sh installs it)"
		exit 1
	}
done
[ -x "$danests" ] && [ -d "$www/sts-enforce.test" ] || {
	notok store-prerequisites "no danests build or test bed (tests/testbed/up.sh)"
	exit 1
}
cp "$www/sts-enforce.test/.well-known/mta-sts.txt" "$tmp/enforce.policy"

rcli() { timeout 5 redis-cli -h 127.0.0.1 -p $port "$@"; }

# redis_start - a fresh redis-server without persistence; bounded wait
redis_start() {
	redis-server --port $port --bind 127.0.0.1 --save '' \
	    --appendonly no --dir "$tmp" --logfile "$tmp/redis.log" &
	rpid=$!
	for _ in $(seq 50); do
		[ "$(rcli ping 2>/dev/null)" = PONG ] && return 0
		sleep 0.1
	done
	return 1
}
redis_stop() {
	kill "$rpid" 2>/dev/null
	wait "$rpid" 2>/dev/null
	rpid=
}

# node N - the configuration of node N (its own cache directory)
for node in a b c d; do
	cat >"$tmp/$node.conf" <<EOC
resolver 127.10.0.2
ca_file $tb/pki/ca.crt
cache_dir $tmp/cache-$node
sts_recheck 0
decision_ttl 0
decision_timeout 12
store redis://127.0.0.1:$port
store_prefix t:
store_timeout 1000
fetch_timeout 3
EOC
# (1 s rather than the default 200 ms: a loaded test machine must not
# read as an outage; the bounds below are checked against it)
done
# node c before it joins the fleet: the same cache, no store
grep -v '^store' "$tmp/c.conf" >"$tmp/c-alone.conf"
# node d: a fleet of its own (prefix u:), to make policies to hand over
sed -i 's/^store_prefix t:/store_prefix u:/' "$tmp/d.conf"

check() {	# check NODE DOMAIN -> JSON line on stdout
	timeout 30 "$danests" check --json --config "$tmp/$1.conf" "$2" \
	    2>>"$tmp/err-$1"
}
refresh() {	# refresh NODE [options]
	local node=$1
	shift
	timeout 60 "$danests" cache --cache-dir "$tmp/cache-$node" refresh \
	    --config "$tmp/$node.conf" "$@"
}
expect() {	# expect NAME JQ-EXPR JSON
	if printf '%s\n' "$3" | jq -e "$2" >/dev/null 2>&1; then
		ok "$1"
	else
		notok "$1" "$2 on: $(printf '%s' "$3" | head -c 400)"
	fi
}
key=t:sts:sts-enforce.test
fetches() { grep -c 'mta-sts.sts-enforce.test.*mta-sts.txt' "$tb/https/logs/access.log"; }

redis_start || { notok redis-start "$(tail -5 "$tmp/redis.log")"; exit 1; }

# --- node C fetches first, alone: its policy is the oldest ---
j=$(check c-alone sts-enforce.test)
expect node-c-alone-fetches '.sts.source == "fetched"' "$j"
sleep 1.1

# --- node A fetches; the store holds the policy, TTL = max_age ---
j=$(check a sts-enforce.test)
expect node-a-fetches '.sts.source == "fetched" and .sts.mode == "enforce"' "$j"
fa=$(rcli hget $key fetched)
ttl=$(rcli ttl $key)
if [ "$(rcli hget $key id)" = 20261123a ] && [ -n "$fa" ] &&
    [ "$ttl" -gt 86000 ] && [ "$ttl" -le 86400 ]; then
	ok "store-holds-policy (fetched $fa, ttl $ttl)"
else
	notok store-holds-policy "id $(rcli hget $key id) fetched $fa ttl $ttl"
fi

# --- the policy host goes away: node B enforces from the store ---
rm -f "$www/sts-enforce.test/.well-known/mta-sts.txt"
j=$(check b sts-enforce.test)
expect node-b-enforces-from-store '.sts.mode == "enforce" and .hosts[0].policy == "sts-enforce" and .sts.id == "20261123a"' "$j"
if "$danests" cache --cache-dir "$tmp/cache-b" show sts-enforce.test 2>&1 |
    grep -q enforce; then
	ok node-b-adopted-into-local-cache
else
	notok node-b-adopted-into-local-cache "not in node B's cache"
fi

# --- newest wins: node C joins; its older policy does not replace A's ---
out=$(refresh c --window 0 2>&1)
if [ "$(rcli hget $key fetched)" = "$fa" ]; then
	ok "older-does-not-replace-newer ($out)"
else
	notok older-does-not-replace-newer "fetched $(rcli hget $key fetched), A's $fa"
fi
rcli del $key >/dev/null
refresh c --window 0 >/dev/null 2>&1
fc=$(rcli hget $key fetched)
if [ -n "$fc" ] && [ -n "$fa" ] && [ "$fc" -lt "$fa" ]; then
	ok "older-written-to-empty-store (C's $fc < A's $fa)"
else
	notok older-written-to-empty-store "fetched '$fc', A's $fa"
fi
# A's newer policy replaces C's (A's refresh offers it again)
refresh a --window 0 >/dev/null 2>&1
if [ "$(rcli hget $key fetched)" = "$fa" ]; then
	ok newer-replaces-older
else
	notok newer-replaces-older "fetched $(rcli hget $key fetched), A's $fa"
fi

# --- Redis stopped: node B answers from its cache, bounded, logged ---
redis_stop
: >"$tmp/err-b"
t0=$(date +%s%N)
j=$(check b sts-enforce.test)
t1=$(date +%s%N)
ms=$(( (t1 - t0) / 1000000 ))
expect redis-down-still-enforced '.sts.mode == "enforce" and .hosts[0].policy == "sts-enforce"' "$j"
if [ $ms -lt 5000 ]; then
	ok "redis-down-bounded (${ms} ms)"
else
	notok redis-down-bounded "${ms} ms"
fi
if grep -q 'store 127.0.0.1:16379: .*serving from the local cache' "$tmp/err-b"; then
	ok redis-down-logged
else
	notok redis-down-logged "$(head -c 300 "$tmp/err-b")"
fi

# --- Redis back (empty): node A's refresh writes its policies again ---
redis_start || { notok redis-restart "$(tail -5 "$tmp/redis.log")"; exit 1; }
[ "$(rcli exists $key)" = 0 ] || notok redis-restart-empty "key survived"

# --- Redis hangs (stopped with SIGSTOP: connections accepted by the
# kernel, no reply): node B's answer is bounded by store_timeout ---
kill -STOP "$rpid"
: >"$tmp/err-b"
t0=$(date +%s%N)
j=$(check b sts-enforce.test)
t1=$(date +%s%N)
kill -CONT "$rpid"
ms=$(( (t1 - t0) / 1000000 ))
if printf '%s\n' "$j" | jq -e '.sts.mode == "enforce"' >/dev/null 2>&1 &&
    [ $ms -lt 5000 ] && grep -q 'store 127.0.0.1:16379: ' "$tmp/err-b"; then
	ok "redis-hung-bounded-still-enforced (${ms} ms)"
else
	notok redis-hung-bounded-still-enforced "${ms} ms: $(printf '%s' "$j" | head -c 200) $(head -c 200 "$tmp/err-b")"
fi
refresh a --window 0 >/dev/null 2>&1
if [ "$(rcli hget $key fetched)" = "$fa" ]; then
	ok redis-back-resync
else
	notok redis-back-resync "fetched '$(rcli hget $key fetched)'"
fi

# --- two nodes refresh at once: one fetch ---
cp "$tmp/enforce.policy" "$www/sts-enforce.test/.well-known/mta-sts.txt"
# both caches hold the policy fetched a few seconds ago; a window just
# under max_age makes it due, and a policy fetched now not due
sleep 2
before=$(fetches)
refresh a --window 86397 >"$tmp/ra" 2>&1 &
pa=$!
refresh b --window 86397 >"$tmp/rb" 2>&1 &
pb=$!
wait $pa; sa=$?
wait $pb; sb=$?
after=$(fetches)
if [ $sa = 0 ] && [ $sb = 0 ] && [ $((after - before)) = 1 ]; then
	ok "concurrent-refresh-one-fetch (A: $(cat "$tmp/ra"); B: $(cat "$tmp/rb"))"
else
	notok concurrent-refresh-one-fetch "$((after - before)) fetches; A $sa: $(cat "$tmp/ra"); B $sb: $(cat "$tmp/rb")"
fi
# the lock is released: none is left behind
if [ -z "$(rcli --scan --pattern 't:lock:*')" ]; then
	ok refresh-locks-released
else
	notok refresh-locks-released "$(rcli --scan --pattern 't:lock:*')"
fi

# --- first contact: another node holds the fetch lock ---
dfetches() { grep -c "mta-sts.$1.*mta-sts.txt" "$tb/https/logs/access.log"; }
msnow() { echo $(( $(date +%s%N) / 1000000 )); }
# node A waits while "another node" (the lock set here) fetches; the
# policy appears in the store (node D's, renamed into this fleet): A
# adopts it, with no fetch of its own
d=sts-testing.test
before=$(dfetches $d)
rcli set t:lock:fetch:$d other px 10000 >/dev/null
t0=$(msnow)
check a $d >"$tmp/ja" &
pa=$!
sleep 0.5
jd=$(check d $d)
rcli rename u:sts:$d t:sts:$d >/dev/null
wait $pa
ms=$(( $(msnow) - t0 ))
j=$(cat "$tmp/ja")
after=$(dfetches $d)
if printf '%s\n' "$j" | jq -e '.sts.mode == "testing" and .sts.source != "fetched"' >/dev/null 2>&1 &&
    printf '%s\n' "$jd" | jq -e '.sts.source == "fetched"' >/dev/null 2>&1 &&
    [ $((after - before)) = 1 ]; then
	ok "first-contact-waits-and-adopts (${ms} ms, 1 fetch)"
else
	notok first-contact-waits-and-adopts "$((after - before)) fetches: $(printf '%s' "$j" | head -c 300)"
fi
rcli del t:lock:fetch:$d >/dev/null

# the lock holder fails (releases with no policy): the waiter fetches
# itself at once, not after the whole wait
d=sts-dane.test
rcli set t:lock:fetch:$d other px 10000 >/dev/null
t0=$(msnow)
check a $d >"$tmp/ja" &
pa=$!
sleep 0.5
rcli del t:lock:fetch:$d >/dev/null
wait $pa
ms=$(( $(msnow) - t0 ))
j=$(cat "$tmp/ja")
if printf '%s\n' "$j" | jq -e '.sts.source == "fetched" and .sts.mode == "enforce"' >/dev/null 2>&1 &&
    [ $ms -lt 2500 ]; then
	ok "first-contact-holder-failed-fetches-itself (${ms} ms)"
else
	notok first-contact-holder-failed-fetches-itself "${ms} ms: $(printf '%s' "$j" | head -c 300)"
fi

# the lock holder is too slow: after half of decision_timeout (6 s, not
# fetch_timeout, 3 s) the waiter fetches itself; never "no policy"
d=sts-wild.test
rcli set t:lock:fetch:$d other px 60000 >/dev/null
t0=$(msnow)
j=$(check a $d)
ms=$(( $(msnow) - t0 ))
if printf '%s\n' "$j" | jq -e '.sts.source == "fetched" and .sts.mode != null' >/dev/null 2>&1 &&
    [ $ms -ge 5900 ] && [ $ms -lt 11000 ]; then
	ok "first-contact-slow-holder-bounded-wait (${ms} ms)"
else
	notok first-contact-slow-holder-bounded-wait "${ms} ms: $(printf '%s' "$j" | head -c 300)"
fi
rcli del t:lock:fetch:$d >/dev/null

# the fetch lock a node takes lasts as long as its lookup may
# (decision_timeout, 12 s), not fetch_timeout (3 s): a holder whose fetch
# still waits its turn (max_fetches) keeps it; sts-slow's policy host
# sends a byte a second, so the lock is held for the whole fetch
d=sts-slow.test
check a $d >/dev/null &
pa=$!
t=
for _ in $(seq 50); do
	t=$(rcli pttl t:lock:fetch:$d)
	[ "${t:-0}" -gt 0 ] 2>/dev/null && break
	sleep 0.1
done
wait $pa
if [ "${t:-0}" -gt 3000 ] 2>/dev/null &&
    [ -z "$(rcli --scan --pattern "t:lock:fetch:$d")" ]; then
	ok "first-contact-lock-lasts-decision-timeout (${t} ms left)"
else
	notok first-contact-lock-lasts-decision-timeout "lock ttl '${t}' ms"
fi

# two nodes meet new domains at the same moment: one fetch each
ds="sts-crlf.test sts-mismatch.test sts-cache.test sts-nostarttls.test"
declare -A b0
for d in $ds; do b0[$d]=$(dfetches $d); done
pids=
for d in $ds; do
	check a $d >"$tmp/ca-$d" &
	pids="$pids $!"
	check b $d >"$tmp/cb-$d" &
	pids="$pids $!"
done
for p in $pids; do wait $p; done
bad=
for d in $ds; do
	c=$(( $(dfetches $d) - b0[$d] ))
	[ "$c" = 1 ] || bad="$bad $d:$c fetches"
	for f in "$tmp/ca-$d" "$tmp/cb-$d"; do
		jq -e '.sts.mode == "enforce"' "$f" >/dev/null 2>&1 ||
		    bad="$bad $d:$(head -c 120 "$f")"
	done
done
if [ -z "$bad" ]; then
	ok "first-contact-two-nodes-one-fetch ($ds)"
else
	notok first-contact-two-nodes-one-fetch "$bad"
fi
if [ -z "$(rcli --scan --pattern 't:lock:*')" ]; then
	ok fetch-locks-released
else
	notok fetch-locks-released "$(rcli --scan --pattern 't:lock:*')"
fi

# a new TXT id: two nodes holding the old policy meet the new id at the
# same moment; the new policy is fetched once, and neither node takes
# the store's old policy for it
d=sts-idchange.test
ja=$(check a $d) jb=$(check b $d)
cp "$www/$d/.well-known/mta-sts.txt" "$tmp/idchange.policy"
cp "$tb/https/alt/$d" "$www/$d/.well-known/mta-sts.txt"
"$top/tests/testbed/dnsedit.sh" $d TXT_ID=20261124b >/dev/null
i0=$(dfetches $d)
check a $d >"$tmp/ia" &
pa=$!
check b $d >"$tmp/ib" &
pb=$!
wait $pa $pb
c=$(( $(dfetches $d) - i0 ))
new='.sts.id == "20261124b" and .sts.mode == "testing"'
if printf '%s\n%s\n' "$ja" "$jb" | jq -se 'all(.sts.id == "20261123a")' >/dev/null 2>&1 &&
    jq -e "$new" "$tmp/ia" >/dev/null 2>&1 && jq -e "$new" "$tmp/ib" >/dev/null 2>&1 &&
    [ "$c" = 1 ] && [ "$(rcli hget t:sts:$d id)" = 20261124b ]; then
	ok "new-txt-id-two-nodes-one-fetch"
else
	notok new-txt-id-two-nodes-one-fetch "$c fetches; before $(jq -c .sts.id <<<"$ja") $(jq -c .sts.id <<<"$jb"); after $(jq -c '[.sts.id, .sts.mode]' "$tmp/ia" "$tmp/ib" | tr '\n' ' ')"
fi

# while node A waits for another node's fetch of a new id, the store gets
# a policy newer than A's but with the old id (a late refresh elsewhere,
# node D's here): A does not take it for the new policy; the holder then
# fails, and A fetches the new one itself
sleep 1
jd=$(check d $d)
"$top/tests/testbed/dnsedit.sh" $d TXT_ID=20261125c >/dev/null
rcli set t:lock:fetch:$d other px 10000 >/dev/null
check a $d >"$tmp/ia" &
pa=$!
sleep 0.5
rcli rename u:sts:$d t:sts:$d >/dev/null
sleep 0.5
rcli del t:lock:fetch:$d >/dev/null
wait $pa
if jq -e '.sts.id == "20261124b"' <<<"$jd" >/dev/null 2>&1 &&
    jq -e '.sts.id == "20261125c" and .sts.source == "fetched"' "$tmp/ia" >/dev/null 2>&1; then
	ok "new-txt-id-old-policy-in-store-not-taken"
else
	notok new-txt-id-old-policy-in-store-not-taken "D: $(jq -c .sts.id <<<"$jd"); A: $(jq -c '[.sts.id, .sts.source]' "$tmp/ia")"
fi

# --- decisions: one node's decision serves the others until it expires ---
for node in e f; do
	sed -e "s|cache-a|cache-$node|" -e 's/^decision_ttl 0/decision_ttl 300/' \
	    "$tmp/a.conf" >"$tmp/$node.conf"
done
je=$(check e dane-ee.test)
ttl=$(rcli pttl t:dec:dane-ee.test)
jf=$(check f dane-ee.test)
if jq -e '.verdict == "deliver" and .from_cache == false' <<<"$je" >/dev/null 2>&1 &&
    [ "${ttl:-0}" -gt 0 ] && [ "$ttl" -le 300000 ] &&
    jq -e --argjson e "$je" '.from_cache == true and .decided == $e.decided and
	.hosts == $e.hosts' <<<"$jf" >/dev/null 2>&1; then
	ok "decision-shared (node F answers node E's decision; TTL ${ttl} ms)"
else
	notok decision-shared "TTL $ttl; E: $(head -c 200 <<<"$je"); F: $(head -c 200 <<<"$jf")"
fi
# a tempfail is never shared
j=$(check e bogus-mx.test)
if jq -e '.verdict == "tempfail"' <<<"$j" >/dev/null 2>&1 &&
    [ "$(rcli exists t:dec:bogus-mx.test)" = 0 ]; then
	ok decision-tempfail-not-shared
else
	notok decision-tempfail-not-shared "$(rcli exists t:dec:bogus-mx.test): $(head -c 200 <<<"$j")"
fi
# purge with the store: the fleet's copies go too, so node F does not
# take them back; node F's own cache keeps its copy until purged there
printf 'store redis://127.0.0.1:%s\nstore_prefix t:\n' $port >"$tmp/purge.conf"
out=$(timeout 30 "$danests" cache --cache-dir "$tmp/cache-e" purge dane-ee.test --config "$tmp/purge.conf" 2>&1)
rc=$?
timeout 30 "$danests" cache --cache-dir "$tmp/cache-f" purge dane-ee.test --config "$tmp/purge.conf" >/dev/null 2>&1
jf=$(check f dane-ee.test)
if [ $rc = 0 ] && [ "$out" = "purged dane-ee.test: decision; shared store: decision" ] &&
    jq -e '.from_cache == false' <<<"$jf" >/dev/null 2>&1; then
	ok "purge-with-store ($out)"
else
	notok purge-with-store "exit $rc: $out; F: $(head -c 200 <<<"$jf")"
fi

# a store named by a host name whose resolver never answers (the test
# bed's sink, with resolv.conf's own timeouts of 5 s x 2): the lookup is
# bounded by store_timeout (500 ms), logged, and the decision made
printf 'nameserver 127.10.0.3\noptions timeout:5 attempts:2\n' >"$tmp/resolv.sink"
sed -e "s|cache-a|cache-g|" -e "s|^store redis://.*|store redis://store.example:$port|" \
    -e 's/^store_timeout .*/store_timeout 500/' "$tmp/a.conf" >"$tmp/g.conf"
t0=$(date +%s%N)
j=$(unshare -m sh -c "mount --bind '$tmp/resolv.sink' /etc/resolv.conf &&
    exec timeout 60 '$danests' check --json --config '$tmp/g.conf' dane-ee.test" 2>"$tmp/err-g")
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
if jq -e '.verdict == "deliver"' <<<"$j" >/dev/null 2>&1 && [ $ms -lt 4000 ] &&
    grep -q "store store.example:$port: resolving store.example: no answer within 500 ms" "$tmp/err-g"; then
	ok "store-name-resolution-bounded (${ms} ms)"
else
	notok store-name-resolution-bounded "${ms} ms: $(head -c 300 "$tmp/err-g"); $(head -c 100 <<<"$j")"
fi

# Redis down: a new domain is fetched as without a store
redis_stop
j=$(check a sts-dane-insecure.test)
expect redis-down-first-contact-fetches '.sts.source == "fetched"' "$j"
# a purge cannot reach the store: the local one is done, exit 75
out=$(timeout 30 "$danests" cache --cache-dir "$tmp/cache-a" purge sts-dane-insecure.test --config "$tmp/purge.conf" 2>&1)
rc=$?
if [ $rc = 75 ] && grep -q "^purged sts-dane-insecure.test: policy" <<<"$out" &&
    grep -q "shared store is unreachable" <<<"$out"; then
	ok "purge-store-down-exit-75"
else
	notok purge-store-down-exit-75 "exit $rc: $out"
fi

exit $status
