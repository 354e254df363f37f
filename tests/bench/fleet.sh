#!/bin/bash
# tests/bench/fleet.sh - a warm decision through the shared store (Redis)
# against the local cache alone (LMDB) and against Debian's
# postfix-mta-sts-resolver with its Redis cache, all answering the same
# socketmap lookups for the same domains.
#
#   fleet.sh [BUILD_DIR] [SECONDS]
#
# Servers (one redis-server on 127.0.0.1:16399, a database each):
#   danests-lmdb   danests-postfix, local cache only;
#   danests-redis  danests-postfix with store redis://...: every decision
#                  reads the local cache and the store;
#   peer-redis     mta-sts-daemon, cache: redis; when that backend does
#                  not start (Debian 12's python3-aioredis 1.3 lacks the
#                  from_url its Redis cache calls), cache: internal, and
#                  the table says peer-internal.
# danests-postfix keeps no decision here (decision_memory_ttl 0,
# decision_ttl 0) and rechecks the TXT id every time (sts_recheck 0),
# both servers alike, so each request is a whole decision (MX, TLSA and
# TXT asked of the test bed's warm resolver) with the policy read from
# LMDB (and Redis); the count of Redis reads is printed at the end.  Needs the loopback test bed up
# (tests/testbed/up.sh), redis-server, and the postfix-mta-sts-resolver
# package installed beforehand (outside the test bed's network namespace:
# apt-get install postfix-mta-sts-resolver).  Prints queries per second
# and p50/p99 latency at 1, 16 and 64 clients.  A benchmark, not a test:
# run by hand; not part of tests/run.sh.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../e2e/lib.sh
. "$here/../e2e/lib.sh"
build=$(cd "${1:-$E2E_TOP/build}" && pwd)
SECS=${2:-5}
PY=/usr/bin/python3
LM_PORT=18475 RD_PORT=18476 PEER_PORT=18477 RPORT=16399
work=$(mktemp -d /tmp/danests-fleetbench.XXXXXX)
pids=()
smbench=$build/tests/bench/postfix/smbench
daemon=$build/postfix-tlsproxy/danests-postfix

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		for _ in $(seq 50); do
			kill -0 "$p" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null
	done
	rm -rf "$work"
}
trap cleanup EXIT

die() {
	echo "bench: $*" >&2
	exit 1
}

[ -x "$smbench" ] && [ -x "$daemon" ] || die "build first ($build)"
ss -Hlun | grep -q "$E2E_RESOLVER:53" || die "test bed not up"
command -v mta-sts-daemon >/dev/null ||
    die "install postfix-mta-sts-resolver first (outside the network namespace)"
command -v redis-server >/dev/null || die "no redis-server"

# the domains: every scenario domain with a valid MTA-STS policy that
# does not expire during the run (as tests/bench/postfix/run.sh)
e2e_scenarios | awk '{ print $1 }' |
    grep -E '^sts-(enforce|wild|crlf|cache|idchange|certbad|nostarttls|testing|dane)\.test$' \
    >"$work/domains"
n=$(wc -l <"$work/domains")

mkdir -p "$work/redis"
redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$work/redis" --logfile "$work/redis/log" &
pids+=($!)
e2e_wait 10 sh -c "[ \"\$(redis-cli -p $RPORT ping 2>/dev/null)\" = PONG ]" ||
    die "redis-server did not start"

# peer_start TYPE OPTIONS - mta-sts-daemon with that cache
peer_start() {
	cat >"$work/peer.yml" <<YML
host: 127.0.0.1
port: $PEER_PORT
reuse_port: true
shutdown_timeout: 1
cache:
  type: $1
  options:
    $2
default_zone:
  strict_testing: false
  timeout: 4
YML
	E2E_CA_BUNDLE=1 e2e_in_testbed mta-sts-daemon -v warn \
	    -c "$work/peer.yml" >"$work/peer.log" 2>&1 &
	peer_pid=$!
	pids+=($!)
	e2e_wait 10 sh -c "ss -Hltn | grep -q '127.0.0.1:$PEER_PORT '"
}
peer=peer-redis
if ! peer_start redis "url: \"redis://127.0.0.1:$RPORT/1\""; then
	echo "# mta-sts-daemon with cache: redis did not start:" \
	    "$(grep -m1 Error "$work/peer.log")"
	kill "$peer_pid" 2>/dev/null
	peer=peer-internal
	peer_start internal "cache_size: 10000" ||
	    die "mta-sts-daemon did not start: $(tail -n 3 "$work/peer.log")"
fi
for s in lmdb redis; do
	mkdir -p "$work/cache-$s" && chown nobody "$work/cache-$s" ||
	    die "cache directory"
done
chmod 755 "$work"
cat >"$work/lmdb.conf" <<CONF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $work/cache-lmdb
decision_memory_ttl 0
decision_ttl 0
sts_recheck 0

[postfix]
listen inet:127.0.0.1:$LM_PORT
user nobody
CONF
sed -e "s|cache-lmdb|cache-redis|" -e "s|:$LM_PORT|:$RD_PORT|" \
    -e "s|^sts_recheck 0|sts_recheck 0\nstore redis://127.0.0.1:$RPORT/2\nstore_timeout 1000|" \
    "$work/lmdb.conf" >"$work/redis.conf"
for s in lmdb redis; do
	E2E_CA_BUNDLE=1 e2e_in_testbed "$daemon" -d -c "$work/$s.conf" \
	    >"$work/$s.log" 2>&1 &
	pids+=($!)
done
e2e_wait 20 sh -c "for p in $PEER_PORT $LM_PORT $RD_PORT; do ss -Hltn | grep -q \"127.0.0.1:\$p \" || exit 1; done" ||
    die "servers did not start: $(tail -n 3 "$work"/*.log)"

# Warm every server: every domain asked until answers stop changing.
for port in $PEER_PORT $LM_PORT $RD_PORT; do
	# shellcheck disable=SC2046
	"$PY" "$E2E_TOP/tests/e2e/postfix/smquery.py" "127.0.0.1:$port" postfix \
	    $(cat "$work/domains") >"$work/warm1.$port" 2>&1
	sleep 1
	# shellcheck disable=SC2046
	"$PY" "$E2E_TOP/tests/e2e/postfix/smquery.py" "127.0.0.1:$port" postfix \
	    $(cat "$work/domains") >"$work/warm.$port" 2>&1
done
echo "# $n domains, $SECS s per point; answers (peer | danests-lmdb | danests-redis):"
paste "$work/warm.$PEER_PORT" "$work/warm.$LM_PORT" "$work/warm.$RD_PORT" |
    awk -F'\t' '{ printf "#   %-22s %-30s | %-30s | %s\n", $1, $2, $4, $6 }'
echo "# keys in Redis: peer $(redis-cli -p $RPORT -n 1 dbsize), danests $(redis-cli -p $RPORT -n 2 dbsize)"

printf '%-16s %8s %10s %10s %10s %8s\n' server clients qps p50_us p99_us errors
for c in 1 16 64; do
	for s in $peer danests-lmdb danests-redis; do
		case $s in
		peer-*) port=$PEER_PORT ;;
		danests-lmdb) port=$LM_PORT ;;
		*) port=$RD_PORT ;;
		esac
		out=$("$smbench" 127.0.0.1 "$port" postfix "$c" "$SECS" "$work/domains")
		eval "$(echo "$out" | tr ' ' '\n' | grep -E '^(qps|p50_us|p99_us|errors)=')"
		printf '%-16s %8s %10s %10s %10s %8s\n' "$s" "$c" "$qps" \
		    "$p50_us" "$p99_us" "$errors"
	done
done
echo "# Redis reads by danests-redis (HGET calls): $(redis-cli -p $RPORT info commandstats |
    tr -d '\r' | sed -n 's/^cmdstat_hget:calls=\([0-9]*\),.*/\1/p')"
