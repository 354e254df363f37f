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
#   peer-redis     mta-sts-daemon, cache: redis: Debian 13's
#                  postfix-mta-sts-resolver (1.5) with its python3-redis,
#                  run from a throw-away Debian 13 root
#                  (tests/packages/overlay.sh, the cached build root of
#                  the package suite; PEER_ROOT=none runs Debian 12's
#                  instead); when the Redis cache does not start (Debian
#                  12's python3-aioredis 1.3 lacks the from_url it calls),
#                  cache: internal, and the table says peer-internal.
# danests-postfix keeps no decision here (decision_memory_ttl 0,
# decision_ttl 0) and rechecks the TXT id every time (sts_recheck 0),
# both servers alike, so each request is a whole decision (MX, TLSA and
# TXT asked of the test bed's warm resolver) with the policy read from
# LMDB (and Redis); the count of Redis reads is printed at the end.  Needs the loopback test bed up
# (tests/testbed/up.sh), redis-server, and the postfix-mta-sts-resolver
# package installed beforehand (outside the test bed's network namespace:
# apt-get install postfix-mta-sts-resolver).  Prints queries per second
# and p50/p99 latency at 1, 16 and 64 clients.
# Then fetches per domain across 2 and 4 nodes: N (each of FLEET_N,
# default "200 1000") new domains of the test bed's bulk.test asked of every node at once,
# FLEET_CONNS (100) connections per node, FLEET_DEADLINE (300) seconds at
# most per run; 2 and 4 danests-postfix sharing the store, then 2 and 4
# mta-sts-daemon (each with its internal cache when its Redis cache does
# not start); the policy host's requests per domain (mean, max), the
# replies and the time.  A benchmark, not a test: run by hand; not part
# of tests/run.sh.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# the peer's root is an overlay mount: a mount namespace of its own
if [ "${PEER_ROOT:-}" != none ] && [ "${FLEETBENCH_NS:-}" != 1 ]; then
	FLEETBENCH_NS=1 exec unshare -m --propagation private "$0" "$@"
fi
# shellcheck source=../e2e/lib.sh
. "$here/../e2e/lib.sh"
build=$(cd "${1:-$E2E_TOP/build}" && pwd)
SECS=${2:-5}
PY=/usr/bin/python3
LM_PORT=18475 RD_PORT=18476 PEER_PORT=18477 RPORT=16399
work=$(mktemp -d /tmp/danests-fleetbench.XXXXXX)
pids=()
fpids=()
smbench=$build/tests/bench/postfix/smbench
daemon=$build/postfix-tlsproxy/danests-postfix

# stop PID... - stop these processes and their children, bounded waits: a
# server started in the background through e2e_in_testbed (a shell
# function, so a subshell) is a child of the pid $! names
stop() {
	local p all=()
	for p; do
		# shellcheck disable=SC2207 # pids, one word each
		all+=($(ps -o pid= --ppid "$p" 2>/dev/null) "$p")
	done
	for p in "${all[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${all[@]}"; do
		for _ in $(seq 50); do
			# gone, or a zombie nobody reaps
			ps -o stat= -p "$p" 2>/dev/null | grep -qv Z || break
			sleep 0.1
		done
		kill -9 "$p" 2>/dev/null
	done
}

cleanup() {
	stop "${pids[@]}" "${fpids[@]}"
	[ -n "${peer_root:-}" ] && umount -R -l "$peer_root" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

die() {
	echo "bench: $*" >&2
	exit 1
}

[ -x "$smbench" ] && [ -x "$daemon" ] || die "build first ($build)"
ss -Hlun | grep -q "$E2E_RESOLVER:53" || die "test bed not up"
command -v redis-server >/dev/null || die "no redis-server"

# the peer: Debian 13's, in a root of its own (the test CA trusted, the
# test bed's resolver), else Debian 12's installed one
peer_root=
if [ "${PEER_ROOT:-}" != none ]; then
	mkdir -p "$work/peer13"
	if peer_root=$("$E2E_TOP/tests/packages/overlay.sh" trixie "$work/peer13" \
	    postfix-mta-sts-resolver python3-redis 2>"$work/peer13.log"); then
		mkdir -p "$peer_root/usr/local/share/ca-certificates"
		cp "$E2E_CA" "$peer_root/usr/local/share/ca-certificates/danests-test-ca.crt"
		chroot "$peer_root" update-ca-certificates >/dev/null 2>&1
		rm -f "$peer_root/etc/resolv.conf"
		printf 'nameserver %s\n' "$E2E_RESOLVER" >"$peer_root/etc/resolv.conf"
		echo "# peer: postfix-mta-sts-resolver" \
		    "$(chroot "$peer_root" dpkg-query -W -f '${Version}' postfix-mta-sts-resolver) (Debian 13)"
	else
		echo "# no Debian 13 root for the peer: $(tail -n 2 "$work/peer13.log" | tr '\n' ' ')"
		peer_root=
	fi
fi
if [ -z "$peer_root" ]; then
	command -v mta-sts-daemon >/dev/null ||
	    die "install postfix-mta-sts-resolver first (outside the network namespace)"
	echo "# peer: postfix-mta-sts-resolver" \
	    "$(dpkg-query -W -f '${Version}' postfix-mta-sts-resolver) (Debian 12)"
fi
# peer_exec YML - mta-sts-daemon with that configuration, in the foreground
peer_exec() {
	if [ -n "$peer_root" ]; then
		cp "$1" "$peer_root/tmp/" &&
		    exec chroot "$peer_root" mta-sts-daemon -v warn -c "/tmp/${1##*/}"
	else
		E2E_CA_BUNDLE=1 e2e_in_testbed mta-sts-daemon -v warn -c "$1"
	fi
}

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
	(peer_exec "$work/peer.yml") >"$work/peer.log" 2>&1 &
	peer_pid=$!
	pids+=($!)
	e2e_wait 10 sh -c "ss -Hltn | grep -q '127.0.0.1:$PEER_PORT '"
}
peer=peer-redis
if ! peer_start redis "url: \"redis://127.0.0.1:$RPORT/1\""; then
	echo "# mta-sts-daemon with cache: redis did not start:" \
	    "$(grep -m1 Error "$work/peer.log")"
	stop "$peer_pid"
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

# --- fetches per domain across 2 and 4 nodes -------------------------------
# N new domains of the test bed's bulk.test (d0001.bulk.test ...; N each
# of FLEET_N, default 200 and 1,000) asked of every node of a fleet at
# once, in the same order, FLEET_CONNS connections per node
# (tests/integration/smfleet.py, FLEET_DEADLINE seconds at most); the
# policy host's requests counted per domain in nginx's access log.
#   danests: 2, then 4 danests-postfix on the redis-server above (a fresh
#     database, fresh local caches): the fetch lock makes one node fetch;
#   peer: 2, then 4 mta-sts-daemon with the cache the peer ran with above
#     (Redis when its backend started, else each its internal cache).
# The domains are new to every run: each run's nodes start empty.
FNS=${FLEET_N:-200 1000} FC=${FLEET_CONNS:-100} FD=${FLEET_DEADLINE:-300}
for FN in $FNS; do
	[ "$FN" -ge 1 ] && [ "$FN" -le 1000 ] ||
	    die "FLEET_N: numbers from 1 to 1000 (bulk.test)"
done
www_log=$E2E_RUN/https/logs/access.log
[ -f "$www_log" ] && dig +short @"$E2E_RESOLVER" TXT _mta-sts.d0001.bulk.test |
    grep -q STSv1 || die "no bulk.test in the test bed (tests/testbed/up.sh)"
fleet_stop() {
	stop "${fpids[@]}"
	fpids=()
}
# fleet_run WHO K PORTS - ask, count, print a row
fleet_run() {
	local who=$1 k=$2 ports=$3 l0 out
	l0=$(wc -l <"$www_log")
	"$PY" "$E2E_TOP/tests/integration/smfleet.py" "$ports" postfix "$FC" \
	    "$FD" "$work/bulk" >"$work/fleet.out" 2>&1
	tail -n +$((l0 + 1)) "$www_log" | awk '$3 ~ /^mta-sts\.d[0-9]+\.bulk\.test$/ &&
	    /mta-sts\.txt/ { print substr($3, 9) }' | sort | uniq -c >"$work/fleet.fetches"
	out=$(awk -v n="$FN" '
		FILENAME ~ /fetches$/ { f[$2] = $1; t += $1; next }
		/^# seconds=/ { sub(/^# seconds=/, ""); s = $0; next }
		{ r = $3; sub(/ .*/, "", r); if (r == "OK") ok++; else bad++ }
		END {
			for (d in f) if (f[d] > m) m = f[d]
			printf "%.2f %d %d %d %s", t / n, m + 0, ok + 0, bad + 0, s
		}' "$work/fleet.fetches" "$work/fleet.out")
	# shellcheck disable=SC2086 # five numbers
	set -- $out
	printf '%-16s %5s %6s %9s %9s %8s %8s %9s\n' "$who" "$k" "$FN" "$1" "$2" \
	    "$3" "$4" "$5"
	# what the other replies were (first word and reason), per node
	[ "$4" = 0 ] || awk '!/^#/ && $3 != "OK" { r = $3; if (NF > 4) r = r " " $5
		n[$1 " " r]++ } END { for (k in n) printf "#   port %s: %d\n", k, n[k] }' \
	    "$work/fleet.out" | sort | head -n 8
}
mkdir -p "$work/fleet"
chown nobody "$work/fleet"
echo
echo "# fetches per domain: N new domains (bulk.test) asked of every node at once,"
echo "# $FC connections per node; fetches counted at the policy host"
case $peer in
peer-internal) echo "# peer: mta-sts-daemon's Redis cache does not start here (see above): each" \
    "instance keeps its internal cache; the peer has no fetch lock in any case" ;;
*) echo "# peer: mta-sts-daemon instances share one Redis cache (no fetch lock)" ;;
esac
printf '%-16s %5s %6s %9s %9s %8s %8s %9s\n' server nodes domains \
    fetch_mean fetch_max ok_replies other seconds
for FN in $FNS; do
	seq -f 'd%04g.bulk.test' 1 "$FN" >"$work/bulk"
	for k in 2 4; do
		redis-cli -p $RPORT -n 3 flushdb >/dev/null
		ports=
		for i in $(seq "$k"); do
			p=$((18480 + i))
			rm -rf "$work/fleet/$i" && mkdir "$work/fleet/$i" &&
			    chown nobody "$work/fleet/$i" || die "cache directory"
			# a node of the fleet: decisions kept nowhere, policies shared
			# through the store; each node has about FLEET_CONNS lookups
			# queued behind one another, so a node waits for another's
			# fetch up to half of decision_timeout (30 s here, not 15 s),
			# and lookup_timeout stays above it
			cat >"$work/fleet/$i.conf" <<CONF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $work/fleet/$i
decision_memory_ttl 0
decision_ttl 0
decision_timeout 30
store redis://127.0.0.1:$RPORT/3
store_timeout 1000

[postfix]
listen inet:127.0.0.1:$p
user nobody
lookup_timeout 40
CONF
			E2E_CA_BUNDLE=1 e2e_in_testbed "$daemon" -d -c "$work/fleet/$i.conf" \
			    >"$work/fleet/$i.log" 2>&1 &
			fpids+=($!)
			ports=$ports${ports:+,}$p
		done
		e2e_wait 20 sh -c "for p in $(echo "$ports" | tr , ' '); do ss -Hltn | grep -q \"127.0.0.1:\$p \" || exit 1; done" ||
		    die "danests-postfix nodes did not start: $(tail -n 3 "$work"/fleet/*.log)"
		fleet_run danests "$k" "$ports"
		fleet_stop
	done
	for k in 2 4; do
		redis-cli -p $RPORT -n 4 flushdb >/dev/null
		ports=
		for i in $(seq "$k"); do
			p=$((18490 + i))
			case $peer in
			peer-redis) ctype=redis
				copt="url: \"redis://127.0.0.1:$RPORT/4\"" ;;
			*) ctype=internal copt="cache_size: 10000" ;;
			esac
			cat >"$work/fleet/peer$i.yml" <<YML
host: 127.0.0.1
port: $p
shutdown_timeout: 1
cache:
  type: $ctype
  options:
    $copt
default_zone:
  strict_testing: false
  timeout: 4
YML
			(peer_exec "$work/fleet/peer$i.yml") >"$work/fleet/peer$i.log" 2>&1 &
			fpids+=($!)
			ports=$ports${ports:+,}$p
		done
		e2e_wait 20 sh -c "for p in $(echo "$ports" | tr , ' '); do ss -Hltn | grep -q \"127.0.0.1:\$p \" || exit 1; done" ||
		    die "mta-sts-daemon instances did not start: $(tail -n 3 "$work"/fleet/peer*.log)"
		fleet_run "$peer" "$k" "$ports"
		fleet_stop
	done
done
