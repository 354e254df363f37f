#!/bin/bash
# tests/bench/postfix/run.sh - danests-postfix against Debian's
# postfix-mta-sts-resolver (mta-sts-daemon, cache: internal), both
# answering the same socketmap lookups for the same domains, warm.
#
#   run.sh [BUILD_DIR] [SECONDS]
#
# Needs the loopback test bed up (tests/testbed/up.sh) and installs the
# postfix-mta-sts-resolver package when missing (its service is not
# started).  Both servers resolve through the test bed (private mount
# namespace, resolv.conf -> 127.10.0.2, CA bundle with the test CA).
# Prints queries per second and p50/p99 latency at 1, 16 and 64
# concurrent clients, and the resident memory of each server.  Run by
# hand; not part of tests/run.sh.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../e2e/lib.sh
. "$here/../../e2e/lib.sh"
build=$(cd "${1:-$E2E_TOP/build}" && pwd)
SECS=${2:-5}
PY=/usr/bin/python3
DP_PORT=18472
PEER_PORT=18471
work=$(mktemp -d /tmp/danests-bench.XXXXXX)
dp_pid= peer_pid=
smbench=$build/tests/bench/postfix/smbench
daemon=$build/postfix-tlsproxy/danests-postfix

cleanup() {
	for p in $dp_pid $peer_pid; do
		kill "$p" 2>/dev/null
	done

	for p in $dp_pid $peer_pid; do
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
if ! command -v mta-sts-daemon >/dev/null; then
	[ -e /usr/sbin/policy-rc.d ] ||
	    { printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d; }
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends postfix-mta-sts-resolver >/dev/null ||
	    die "cannot install postfix-mta-sts-resolver"
fi

# The domains: every scenario domain with a valid MTA-STS policy that
# does not expire during the run (the peer caches only those), so that
# both servers answer every request from their caches (a tempfail such as
# sts-mismatch.test is never reused by danests-postfix: every request
# asks again).
e2e_scenarios | awk '{ print $1 }' |
    grep -E '^sts-(enforce|wild|crlf|cache|idchange|certbad|nostarttls|testing|dane)\.test$' \
    >"$work/domains"
n=$(wc -l <"$work/domains")

cat >"$work/peer.yml" <<YML
host: 127.0.0.1
port: $PEER_PORT
reuse_port: true
shutdown_timeout: 1
cache:
  type: internal
  options:
    cache_size: 10000
default_zone:
  strict_testing: false
  timeout: 4
YML

E2E_CA_BUNDLE=1 e2e_in_testbed mta-sts-daemon -v warn -c "$work/peer.yml" \
    >"$work/peer.log" 2>&1 &
peer_pid=$!
mkdir -p "$work/cache" && chown nobody "$work/cache" && chmod 755 "$work" ||
    die "cache directory"
cat >"$work/dp.conf" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $work/cache
decision_memory_ttl 3600

[postfix]
listen inet:127.0.0.1:$DP_PORT
user nobody
EOF
E2E_CA_BUNDLE=1 e2e_in_testbed "$daemon" -d -c "$work/dp.conf" \
    >"$work/dp.log" 2>&1 &
dp_pid=$!
e2e_wait 20 sh -c "ss -Hltn | grep -q '127.0.0.1:$PEER_PORT ' && ss -Hltn | grep -q '127.0.0.1:$DP_PORT '" ||
    die "servers did not start: $(tail -3 "$work/peer.log" "$work/dp.log")"
# A backgrounded shell function runs in a subshell: the server (unshare
# execs sh, which execs the server) is that subshell's child.
child() {
	local c i
	for i in $(seq 50); do
		c=$(pgrep -P "$1" | head -1)
		[ -n "$c" ] && { echo "$c"; return; }
		sleep 0.1
	done
	echo "$1"
}
peer_sub=$peer_pid dp_sub=$dp_pid
peer_pid=$(child "$peer_sub")
dp_pid=$(child "$dp_sub")
rss() { awk '/^VmRSS/ { print $2 }' "/proc/$1/status" 2>/dev/null; }

# Warm both: every domain asked until answers stop changing.
for port in $PEER_PORT $DP_PORT; do
	"$PY" "$E2E_TOP/tests/e2e/postfix/smquery.py" "127.0.0.1:$port" postfix \
	    $(cat "$work/domains") >"$work/warm1.$port" 2>&1
	sleep 1
	"$PY" "$E2E_TOP/tests/e2e/postfix/smquery.py" "127.0.0.1:$port" postfix \
	    $(cat "$work/domains") >"$work/warm.$port" 2>&1
done
echo "# $n domains, $SECS s per point; answers (peer | danests-postfix):"
paste "$work/warm.$PEER_PORT" "$work/warm.$DP_PORT" | awk -F'\t' '{ printf "#   %-22s %-45s | %s\n", $1, $2, $4 }'

printf '%-16s %8s %10s %10s %10s %8s\n' server clients qps p50_us p99_us errors
for c in 1 16 64; do
	for s in peer danests; do
		if [ $s = peer ]; then port=$PEER_PORT; else port=$DP_PORT; fi
		out=$("$smbench" 127.0.0.1 "$port" postfix "$c" "$SECS" "$work/domains")
		eval "$(echo "$out" | tr ' ' '\n' | grep -E '^(qps|p50_us|p99_us|errors)=')"
		printf '%-16s %8s %10s %10s %10s %8s\n' \
		    "$([ $s = peer ] && echo mta-sts-daemon || echo danests-postfix)" \
		    "$c" "$qps" "$p50_us" "$p99_us" "$errors"
		echo "$out" >>"$work/raw"
	done
done
echo "# RSS kB: mta-sts-daemon $(rss "$peer_pid") danests-postfix $(rss "$dp_pid")"
sed 's/^/# /' "$work/raw"
