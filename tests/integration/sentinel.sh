#!/bin/bash
# tests/integration/sentinel.sh - the shared store found through Redis
# Sentinel (store sentinel://...), against a real primary, replica and
# sentinel (redis-server --sentinel) on loopback ports of this network
# namespace, and a danests-postfix node whose first sentinel is down:
#  - the node asks the next sentinel, writes a fetched policy to the
#    primary it names, and logs which primary that is;
#  - the primary killed: the sentinel promotes the replica; meanwhile the
#    node answers as before (from its local cache); after the outage's
#    pause it asks the sentinel again and writes to the new primary;
#  - a master name no sentinel knows: logged, decisions made without the
#    store; sentinel:// for store_read is refused.
# Needs the test bed (tests/testbed/up.sh) and root.
#
#   sentinel.sh BUILD_DIR     prints "ok N NAME" / "not ok N NAME"
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
pf=$build/postfix-tlsproxy/danests-postfix
danests=$build/core/danests
W=$build/sentinel-it
# shellcheck source=lib.sh
. "$top/tests/integration/lib.sh"
RP=16421 RR=16422 RS=26421 DEAD=26499 PORT=18495


[ -x "$pf" ] || { echo "not ok 1 build # no $pf"; exit 1; }
[ -f "$E2E_CA" ] || { echo "skip sentinel (test bed not up)"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "skip sentinel (needs root)"; exit 0; }
for p in redis-server redis-cli; do
	command -v $p >/dev/null || { echo "not ok 1 $p # tests/setup.sh installs redis-server"; exit 1; }
done
rm -rf "$W"
mkdir -p "$W/cache" "$W/rp" "$W/rr" "$W/rs"
chown nobody "$W/cache"

# (a sentinel rewrites its configuration file: one of its own)
cat >"$W/rs/sentinel.conf" <<EOC
sentinel monitor tm 127.0.0.1 $RP 1
sentinel down-after-milliseconds tm 1000
sentinel failover-timeout tm 10000
EOC
redis $RP "$W/rp" && rp_pid=$rpid &&
    redis $RR "$W/rr" --replicaof 127.0.0.1 $RP &&
    e2e_wait 10 sh -c "redis-cli -p $RR info replication | grep -q master_link_status:up" &&
    redis $RS "$W/rs" "$W/rs/sentinel.conf" --sentinel &&
    e2e_wait 10 sh -c "redis-cli -p $RS sentinel get-master-addr-by-name tm | grep -qx $RP" ||
    { notok redis-start "$(tail -n 3 "$W"/r?/log)"; exit 1; }
ok "primary, replica and sentinel (ports $RP, $RR, $RS)"

cat >"$W/node.conf" <<EOC
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/cache
decision_ttl 0
sts_recheck 0
store sentinel://127.0.0.1:$DEAD,127.0.0.1:$RS/tm
store_prefix s:
store_timeout 1000
fetch_timeout 3
[postfix]
user nobody
listen inet:127.0.0.1:$PORT
EOC
"$pf" -d -c "$W/node.conf" 2>"$W/node.log" &
pids+=($!)
listening 127.0.0.1:$PORT || { notok node-start "$(tail -n 3 "$W/node.log")"; exit 1; }

# ask DOMAIN... - the node's socketmap replies, "DOMAIN<TAB>REPLY" lines
ask() { "$PY" "$top/tests/e2e/postfix/smquery.py" "127.0.0.1:$PORT" postfix "$@" 2>&1; }

r1=$(ask sts-enforce.test)
check primary-found-past-a-dead-sentinel '[[ "$r1" == *"	OK "* ]] &&
    [ "$(rcli $RP exists s:sts:sts-enforce.test)" = 1 ] &&
    grep -q "store tm: sentinel 127.0.0.1:$RS names 127.0.0.1:$RP the primary" "$W/node.log"' \
    "$r1; $(grep store "$W/node.log" | head -c 300)"

# --- failover ---
kill -9 "$rp_pid"
wait "$rp_pid" 2>/dev/null
r2=$(ask sts-enforce.test)
check primary-down-same-reply '[ "$r2" = "$r1" ]' "before: $r1; now: $r2"
e2e_wait 30 sh -c "redis-cli -p $RS sentinel get-master-addr-by-name tm | grep -qx $RR" ||
    { notok failover "the sentinel did not promote the replica in 30 s"; exit 1; }
ok "failover (the sentinel names 127.0.0.1:$RR)"
# after the outage's pause (5 s) the next store call asks the sentinel
# again; a policy fetched then lands on the new primary
got=
for d in sts-testing.test sts-wild.test sts-crlf.test sts-cache.test; do
	sleep 2
	ask "$d" >/dev/null
	if [ "$(rcli $RR exists s:sts:$d)" = 1 ]; then got=$d; break; fi
done
check writes-follow-the-new-primary '[ -n "$got" ] &&
    grep -q "names 127.0.0.1:$RR the primary" "$W/node.log"' \
    "$(grep store "$W/node.log" | tail -n 4 | tr '\n' ' ' | head -c 400)"
r3=$(ask sts-enforce.test)
check new-primary-same-reply '[ "$r3" = "$r1" ]' "before: $r1; now: $r3"

# --- configuration mistakes ---
sed -e "s|/tm$|/nosuch|" -e "s|^cache_dir .*|cache_dir $W/cache2|" \
    -e '/^\[postfix\]/,$d' "$W/node.conf" >"$W/nosuch.conf"
j=$(timeout 30 "$danests" check --json --config "$W/nosuch.conf" sts-enforce.test 2>"$W/nosuch.err")
check unknown-master-logged-decided 'grep -q "knows no master nosuch" "$W/nosuch.err" &&
    jq -e ".verdict == \"deliver\" and .sts.mode == \"enforce\"" <<<"$j" >/dev/null' \
    "$(head -c 300 "$W/nosuch.err"); $(head -c 200 <<<"$j")"
{ grep -v '^\[postfix\]' "$W/nosuch.conf"; echo "store_read sentinel://127.0.0.1:$RS/tm"; } >"$W/read.conf"
e=$(timeout 30 "$danests" check --config "$W/read.conf" sts-enforce.test 2>&1 >/dev/null)
check store-read-sentinel-refused 'grep -q "store_read takes a replica" <<<"$e"' "$e"

echo "1..$n"
[ $fails = 0 ]
