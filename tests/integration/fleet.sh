#!/bin/bash
# tests/integration/fleet.sh - a fleet of two danests-postfix daemons
# sharing MTA-STS policies through a real redis-server and a replica
# (redis-server --replicaof) on loopback ports of this network namespace.
# Each node has its own cache directory; node A reads and writes the
# primary, node B writes the primary and reads the replica (store_read):
#  - node A learns sts-enforce.test's policy; the policy host goes away;
#    node B, which never saw the domain, enforces it from the store (its
#    socketmap reply is node A's, not NOTFOUND); so does node C, a
#    danests-relay reading the replica (its delivery counted under the
#    sts-enforce host policy);
#  - a node waiting for another node's first fetch of a domain answers
#    other requests meanwhile (the wait is a timer, not a sleep);
#  - both nodes asked at the same moment about MTA-STS domains neither
#    has seen fetch each policy once (requests counted in the policy
#    host's access log): 8 scenario domains; node B's replica lagging
#    behind (a first contact, and a refresh by danests cache refresh);
#    then 1,000 domains (bulk.test) over 200 connections each;
#  - the store killed (primary and replica) while both nodes answer:
#    every reply equals the reply given with the store up; the primary
#    back: a policy fetched afterwards is written to it.
# Needs the test bed (tests/testbed/up.sh) and root.
#
#   fleet.sh BUILD_DIR        prints "ok N NAME" / "not ok N NAME"
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
pf=$build/postfix-tlsproxy/danests-postfix
relay=$build/opensmtpd/danests-relay
W=$build/fleet-it
# shellcheck source=lib.sh
. "$top/tests/integration/lib.sh"
RP=16395 RR=16396 A_PORT=18490 B_PORT=18491 C_PORT=18492 C_M=18493
www=$E2E_RUN/https/www
log=$E2E_RUN/https/logs/access.log


[ -x "$pf" ] || { echo "not ok 1 build # no $pf"; exit 1; }
[ -f "$E2E_CA" ] || { echo "skip fleet (test bed not up)"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "skip fleet (needs root)"; exit 0; }
for p in redis-server redis-cli jq; do
	command -v $p >/dev/null || { echo "not ok 1 $p # tests/setup.sh installs redis-server"; exit 1; }
done
rm -rf "$W"
mkdir -p "$W/acache" "$W/bcache" "$W/ccache" "$W/ctmp" "$W/rp" "$W/rr"
chown nobody "$W/acache" "$W/bcache" "$W/ccache" "$W/ctmp"
pol=$www/sts-enforce.test/.well-known/mta-sts.txt
cp "$pol" "$W/enforce.policy"
fleet_end() {
	cleanup
	cp "$W/enforce.policy" "$pol"
}
trap fleet_end EXIT

redis $RP "$W/rp" && rp_pid=$rpid &&
    redis $RR "$W/rr" --replicaof 127.0.0.1 $RP && rr_pid=$rpid &&
    e2e_wait 10 sh -c "redis-cli -p $RR info replication | grep -q master_link_status:up" ||
    { notok redis-start "$(tail -3 "$W/rp/log" "$W/rr/log")"; exit 1; }
ok "redis-primary-and-replica (ports $RP, $RR)"

# node NAME PORT [store_read URL] - a danests-postfix of the fleet
node() {
	cat >"$W/$1.conf" <<EOC
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/$1cache
decision_ttl 0
sts_recheck 0
store redis://127.0.0.1:$RP
store_prefix f:
store_timeout 1000
fetch_timeout 3
decision_timeout 30
${3:+store_read $3}
[postfix]
user nobody
listen inet:127.0.0.1:$2
# (b) at scale holds 200 connections per node at once (plus a few of
# the other checks): max_clients must stay above that, or the daemon
# closes clients to make room
max_clients 1000
# there each node has some 200 lookups running, queued behind one
# another (DNS, max_fetches), for seconds; a node waits for the other's
# fetch at most half of decision_timeout, so that is raised from 15 s
# (then fetching the policy a second time would be right), and
# lookup_timeout stays above it
lookup_timeout 40
EOC
	"$pf" -d -c "$W/$1.conf" 2>"$W/$1.log" &
	pids+=($!)
	listening 127.0.0.1:$2
}
node a $A_PORT && node b $B_PORT redis://127.0.0.1:$RR ||
    { notok nodes-start "$(tail -2 "$W/a.log" "$W/b.log")"; exit 1; }

# ask PORT DOMAIN... - socketmap requests, all at once, to one or more
# nodes (PORT may be "A_PORT,B_PORT"); prints "PORT DOMAIN REPLY" lines
# (a domain named twice is asked twice)
ask() {
	"$PY" - "$@" <<'EOP' 2>&1
import socket, sys, threading
ports = [int(p) for p in sys.argv[1].split(",")]
out = []
def one(port, d):
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=30)
        q = ("postfix " + d).encode()
        s.sendall(str(len(q)).encode() + b":" + q + b",")
        buf = b""
        while not buf.endswith(b","):
            c = s.recv(4096)
            if not c:
                break
            buf += c
        out.append((port, d, buf.split(b":", 1)[-1][:-1].decode()))
    except Exception as e:
        out.append((port, d, "ERROR " + str(e)))
ts = [threading.Thread(target=one, args=(p, d)) for d in sys.argv[2:] for p in ports]
for t in ts: t.start()
for t in ts: t.join()
for p, d, r in out:
    print(p, d, r)
EOP
}
# reply PORT DOMAIN OUTPUT - the distinct replies of PORT for DOMAIN
reply() { awk -v p="$1" -v d="$2" '$1 == p && $2 == d { $1 = $2 = ""; sub(/^  /, ""); print }' <<<"$3" | sort -u; }
fetches() { grep -c "mta-sts\.$1.*mta-sts.txt" "$log"; }

# --- (a) node A learns a policy; it goes away; node B enforces it ---
r=$(ask $A_PORT sts-enforce.test)
ra=$(reply $A_PORT sts-enforce.test "$r")
check node-a-learns '[[ "$ra" == OK* ]] && rcli $RP exists f:sts:sts-enforce.test | grep -qx 1' "$ra"
rm -f "$pol"
e2e_wait 5 sh -c "[ \"\$(redis-cli -p $RR exists f:sts:sts-enforce.test)\" = 1 ]"
r=$(ask $B_PORT sts-enforce.test)
rb=$(reply $B_PORT sts-enforce.test "$r")
check node-b-enforces-from-replica '[ "$rb" = "$ra" ]' "A: $ra; B: $rb"
if [ -x "$relay" ]; then
	cat >"$W/c.conf" <<EOC
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/ccache
store redis://127.0.0.1:$RP
store_read redis://127.0.0.1:$RR
store_prefix f:
store_timeout 1000
[relay]
listen 127.0.0.1:$C_PORT
metrics_listen inet:127.0.0.1:$C_M
user nobody
helo_name relay-it.test
tmpdir $W/ctmp
reply_gap 0
EOC
	"$relay" -d -c "$W/c.conf" 2>"$W/c.log" &
	pids+=($!)
	if listening 127.0.0.1:$C_PORT 127.0.0.1:$C_M; then
		rc=$(lmtp_one $C_PORT sts-enforce.test)
		m=$(curl -sS --max-time 10 "http://127.0.0.1:$C_M/metrics")
		h=$(awk '$1 == "danests_decision_hosts_total{policy=\"sts-enforce\"}" { print $2 }' <<<"$m")
		dl=$(awk '$1 == "danests_relay_deliveries_total{result=\"delivered\"}" { print $2 }' <<<"$m")
		check relay-node-enforces-from-replica '[ "${h:-0}" -ge 1 ] && [ "${dl:-0}" = 1 ] &&
		    grep -q "|250 " <<<"$rc"' "$rc; sts-enforce hosts ${h:-0}, delivered ${dl:-0}"
	else
		notok relay-node-start "$(tail -3 "$W/c.log")"
	fi
else
	echo "# no $relay: relay node not run"
fi
cp "$W/enforce.policy" "$pol"

# --- a node waiting for another node's fetch keeps serving ---
# (the fetch lock of a new domain held here for 3 s, as by a node that
# died: node A polls the store from its event loop until the lock
# expires, then takes it and fetches, and answers the rest at once)
msnow() { echo $(( $(date +%s%N) / 1000000 )); }
rcli $RP set f:lock:fetch:sts-untrusted.test other px 3000 >/dev/null
t0=$(msnow)
ask $A_PORT sts-untrusted.test >"$W/waited" &
wpid=$!
sleep 0.3
t1=$(msnow)
r=$(ask $A_PORT sts-enforce.test)
t2=$(msnow)
wait $wpid
t3=$(msnow)
x=$(reply $A_PORT sts-enforce.test "$r")
check waiting-node-keeps-serving '[ "$x" = "$ra" ] && [ $((t2 - t1)) -lt 1000 ] &&
    [ $((t3 - t0)) -ge 2900 ] && [ -s "$W/waited" ]' \
    "other domain in $((t2 - t1)) ms ($x); waiting one in $((t3 - t0)) ms"
rcli $RP del f:lock:fetch:sts-untrusted.test >/dev/null

# --- (b) both nodes meet new MTA-STS domains at once: one fetch each ---
new="sts-testing.test sts-crlf.test sts-mismatch.test sts-cache.test
    sts-nostarttls.test sts-dane.test sts-wild.test sts-idchange.test"
declare -A f0
for d in $new; do f0[$d]=$(fetches "$d"); done
# shellcheck disable=SC2086
up=$(ask $A_PORT,$B_PORT $new)
bad=
for d in $new; do
	c=$(( $(fetches "$d") - f0[$d] ))
	[ "$c" = 1 ] || bad="$bad $d:$c"
	x=$(reply $A_PORT "$d" "$up") y=$(reply $B_PORT "$d" "$up")
	[ -n "$x" ] && [ "$x" = "$y" ] &&
	    { [ "$d" = sts-testing.test ] || [[ "$x" != NOTFOUND* ]]; } || bad="$bad $d:[$x|$y]"
done
check "burst-one-fetch-per-policy ($(wc -w <<<"$new") domains, 2 nodes)" \
    '[ -z "$bad" ]' "$bad"

# --- (b) node B's replica behind the primary: no second fetch ---
# Node A fetches a policy while the replica has stopped following the
# primary (so it lags for good); the policy is set aside and its fetch
# lock taken, as if node A still fetched; node B, asked meanwhile, waits;
# then the policy comes back and the lock goes, as a holder that is done.
# Node B takes the free lock and must read the primary, not its replica,
# before it fetches: it adopts node A's policy (one fetch in all).
d=sts-dane-insecure-mitm.test
g0=$(fetches "$d")
rcli $RR replicaof no one >/dev/null
r=$(ask $A_PORT $d)
ra2=$(reply $A_PORT $d "$r")
rcli $RP rename f:sts:$d f:aside >/dev/null
rcli $RP set f:lock:fetch:$d other px 20000 >/dev/null
ask $B_PORT $d >"$W/lagged" &
wpid=$!
sleep 0.5
rcli $RP rename f:aside f:sts:$d >/dev/null
rcli $RP del f:lock:fetch:$d >/dev/null
wait $wpid
rb2=$(reply $B_PORT $d "$(cat "$W/lagged")")
c=$(( $(fetches "$d") - g0 ))
check replica-behind-one-fetch '[[ "$ra2" == OK* ]] && [ "$rb2" = "$ra2" ] &&
    [ "$c" = 1 ]' "fetches $c; A: $ra2; B: $rb2"
# The same for a refresh (danests cache refresh, two more caches of the
# fleet, R2 reading the lagging replica): R1 and R2 learn a policy while
# the replica follows; later R1 refreshes it (a newer fetch, on the
# primary only); R2's refresh then takes the free lock and must adopt
# R1's policy from the primary, not fetch it again.
rcli $RR replicaof 127.0.0.1 $RP >/dev/null
e2e_wait 10 sh -c "redis-cli -p $RR info replication | grep -q master_link_status:up"
d=sts-certbad.test
for rn in r1 r2; do
	sed -e "s|^cache_dir .*|cache_dir $W/$rn|" -e '/^\[postfix\]/,$d' \
	    "$W/$([ $rn = r1 ] && echo a || echo b).conf" >"$W/$rn.conf"
done
rcheck() { timeout 30 "$build/core/danests" check --json --config "$W/$1.conf" "$d" 2>&1; }
rrefresh() { timeout 30 "$build/core/danests" cache --cache-dir "$W/$1" refresh \
    --config "$W/$1.conf" --window 86396 2>&1; }
g0=$(fetches "$d")
rcheck r1 >/dev/null
e2e_wait 5 sh -c "[ \"\$(redis-cli -p $RR exists f:sts:$d)\" = 1 ]"
j2=$(rcheck r2)
rcli $RR replicaof no one >/dev/null
sleep 5			# both copies due within the window; a new fetch not
x1=$(rrefresh r1)
f1=$(fetches "$d")
x2=$(rrefresh r2)
f2=$(fetches "$d")
check replica-behind-refresh-adopts '[ $((f1 - g0)) = 2 ] && [ "$f2" = "$f1" ] &&
    jq -e ".sts.source != \"fetched\"" <<<"$j2" >/dev/null' \
    "fetches: first contact and R1 $((f1 - g0)) (2), R2 $((f2 - f1)) (0); R1: $x1; R2: $x2; $(head -c 200 <<<"$j2")"
rcli $RR replicaof 127.0.0.1 $RP >/dev/null
e2e_wait 10 sh -c "redis-cli -p $RR info replication | grep -q master_link_status:up" ||
    notok replica-rejoins "$(tail -3 "$W/rr/log")"

# --- (b) the same at scale: 1,000 new domains at once ---
# d0001 to d1000.bulk.test (tests/testbed/zones/bulk.test.zone), one
# policy host each.  Both nodes are asked about every domain in the same
# order over CONNS connections each (smfleet.py), so both meet each domain
# at about the same moment; bounded: 2 x CONNS sockets, 120 s in all.
BULK=1000 CONNS=200
seq -f 'd%04g.bulk.test' 1 $BULK >"$W/bulk"
l0=$(wc -l <"$log")
"$PY" "$top/tests/integration/smfleet.py" "$A_PORT,$B_PORT" postfix \
    $CONNS 120 "$W/bulk" >"$W/bulk.out" 2>&1
secs=$(sed -n 's/^# seconds=//p' "$W/bulk.out")
# requests for each policy host in nginx's log since the burst began
tail -n +$((l0 + 1)) "$log" | awk '$3 ~ /^mta-sts\.d[0-9]+\.bulk\.test$/ &&
    /mta-sts\.txt/ { print substr($3, 9) }' | sort | uniq -c >"$W/bulk.fetches"
# every domain: fetched once; A's reply and B's equal, and a policy's
bad=$(awk -v a="$A_PORT" -v b="$B_PORT" '
	FILENAME ~ /fetches$/ { f[$2] = $1; next }
	FILENAME ~ /out$/ {
		if ($1 != a && $1 != b) next
		p = $1; d = $2; $1 = $2 = ""; sub(/^ +/, ""); r[p, d] = $0; next
	}
	{
		d = $1; x = r[a, d]; y = r[b, d]
		if (f[d] != 1) { nf++; if (nb++ < 8) printf " %s:fetched-%d", d, f[d] }
		if (x == "" || x != y || x !~ /^OK /) {
			nr++; if (nb++ < 8) printf " %s:[%s|%s]", d, x, y
		}
	}
	END { if (nf + nr) printf " (%d not fetched once, %d replies bad)", nf, nr }
	' "$W/bulk.fetches" "$W/bulk.out" "$W/bulk")
check "burst-$BULK-domains-one-fetch-each (2 nodes, $CONNS connections each, ${secs:-?} s)" \
    '[ -z "$bad" ] && [ -n "$secs" ]' "$bad"

# --- (c) the store killed while both nodes answer ---
# shellcheck disable=SC2086
ask $A_PORT,$B_PORT $new $new $new $new $new sts-enforce.test >"$W/during" &
apid=$!
sleep 0.1
kill "$rp_pid" "$rr_pid"
wait "$rp_pid" "$rr_pid" 2>/dev/null
wait "$apid"
# shellcheck disable=SC2086
ask $A_PORT,$B_PORT $new sts-enforce.test >"$W/after"
bad=
for d in $new; do
	for p in $A_PORT $B_PORT; do
		x=$(reply $p "$d" "$up")
		for f in during after; do
			y=$(reply $p "$d" "$(cat "$W/$f")")
			[ "$x" = "$y" ] || bad="$bad $f:$p:$d:[$y]"
		done
	done
done
check redis-killed-no-weaker-reply '[ -z "$bad" ]' "$bad"
# (the reason is hiredis's message, intact)
why="(Server closed the connection|Connection refused); serving from the local cache"
check redis-killed-logged 'grep -aEq "store 127.0.0.1:$RP: $why" "$W/a.log" &&
    grep -aEq "store 127.0.0.1:$RR: $why" "$W/b.log" &&
    ! grep -aPq "[^\\x20-\\x7e]" "$W/a.log" "$W/b.log"' \
    "$(grep -a store "$W/a.log" "$W/b.log" | cat -v | head -c 300)"

# the primary back (empty): after the outage's pause (5 s) a policy
# fetched by node A is written again
redis $RP "$W/rp" || { notok redis-restart "$(tail -3 "$W/rp/log")"; exit 1; }
sleep 5.5
r=$(ask $A_PORT sts-dane-insecure.test)
x=$(reply $A_PORT sts-dane-insecure.test "$r")
check redis-back-writes-resume '[[ "$x" == OK* ]] &&
    [ "$(rcli $RP exists f:sts:sts-dane-insecure.test)" = 1 ]' "$x"

echo "1..$n"
[ $fails = 0 ]
