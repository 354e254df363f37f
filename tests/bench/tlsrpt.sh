#!/bin/bash
# tests/bench/tlsrpt.sh - throughput of the TLSRPT collector of
# danests-postfix (tlsrpt_socket), driven by libtlsrpt's own sending API:
# tests/bench/tlsrpt_peer.c built against Debian 13's libtlsrpt in a
# trixie root (tests/packages/tlsrpt.sh peer) sends COUNT datagrams (MTA-STS
# successes and failures alternating, over DOMAINS domains) in blocking
# mode to a danests-postfix built in BUILD_DIR; the collector records each
# into its cache.  Prints the peer's send rate and the rate at which
# results were recorded (until `danests report list` counts all of them),
# as "tlsrpt COUNT datagrams: sent R/s, recorded N in S s: R/s".  A measurement, not
# a test: nothing is asserted beyond every datagram being counted.
#
#   tests/bench/tlsrpt.sh BUILD_DIR [COUNT [DOMAINS]]
#
# With TLSRPT_BENCH_RECORD=no the collector runs with "tls_reports no": it
# receives and parses every datagram and records none, which measures the
# socket and the parser without the cache's write transactions (the peer
# sends in blocking mode, so its rate is the collector's).
#
# Needs root (chroot, mounts); the trixie root is cached (roots.sh).
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
COUNT=${2:-20000}
DOMAINS=${3:-100}
pf=$build/postfix-tlsproxy/danests-postfix
danests=$build/core/danests

[ "$(id -u)" = 0 ] || { echo "tlsrpt.sh: needs root" >&2; exit 1; }
[ -x "$pf" ] || { echo "tlsrpt.sh: no $pf" >&2; exit 1; }
if [ "${TLSRPT_BENCH_INNER:-}" != 1 ]; then
	TLSRPT_BENCH_INNER=1 exec unshare -m --propagation private "$0" "$@"
fi

W=$(mktemp -d /var/tmp/danests-tlsrpt-bench.XXXXXX)
pid=
cleanup() {
	[ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null
	umount -R "$r" 2>/dev/null
	rm -rf "$W" "$(dirname "$r")"
}
r=$("$top/tests/packages/tlsrpt.sh" peer) || { echo "tlsrpt.sh: no peer root" >&2; exit 1; }
trap cleanup EXIT
chmod 755 "$W" "$(dirname "$r")"	# the collector runs as nobody
mkdir -p "$W/cache" "$r/tmp/rpt"
chown nobody "$W/cache" "$r/tmp/rpt"
cat >"$W/pf.conf" <<EOF
resolver 127.0.0.1
cache_dir $W/cache
tls_reports ${TLSRPT_BENCH_RECORD:-yes}
[postfix]
user nobody
listen inet:127.0.0.1:18470
tlsrpt_socket $r/tmp/rpt/tlsrpt
tlsrpt_mode 0666
EOF
"$pf" -d -c "$W/pf.conf" 2>"$W/pf.log" &
pid=$!
for _ in $(seq 1 50); do [ -S "$r/tmp/rpt/tlsrpt" ] && break; sleep 0.1; done
[ -S "$r/tmp/rpt/tlsrpt" ] || { echo "tlsrpt.sh: collector did not start" >&2; cat "$W/pf.log" >&2; exit 1; }

total() {	# as the collector's user, the owner of the cache
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$danests" report list --json --cache-dir "$W/cache" 2>/dev/null |
	    jq '[.[] | .successful + .failed] | add // 0'
}
kill -0 "$pid" 2>/dev/null || { echo "tlsrpt.sh: collector died" >&2; cat "$W/pf.log" >&2; exit 1; }
t0=$(date +%s%N)
peer=$(chroot "$r" /usr/local/bin/tlsrpt_peer bench /tmp/rpt/tlsrpt "$COUNT" "$DOMAINS")
t1=$(date +%s%N)
n=0
for _ in $(seq 1 600); do
	if [ "${TLSRPT_BENCH_RECORD:-yes}" = no ]; then
		n=$COUNT	# received and parsed: the peer blocked until then
		break
	fi
	n=$(total)
	[ "$n" -ge "$COUNT" ] && break
	sleep 0.1
done
t2=$(date +%s%N)
kill "$pid"
wait "$pid"
pid=
echo "# peer (libtlsrpt $(chroot "$r" dpkg-query -W -f '${Version}' libtlsrpt0)): $peer"
echo "# collector: $(grep 'tlsrpt: .* datagrams' "$W/pf.log" | sed 's/.*tlsrpt: //')"
what=recorded
[ "${TLSRPT_BENCH_RECORD:-yes}" = no ] && what="parsed (tls_reports no)"
awk -v c="$COUNT" -v n="$n" -v w="$what" -v s=$(((t1 - t0) / 1000)) -v a=$(((t2 - t0) / 1000)) 'BEGIN {
	printf "tlsrpt %d datagrams: sent %.0f/s, %s %d in %.2f s: %.0f/s\n", c, c / (s / 1e6), w, n, a / 1e6, n / (a / 1e6)
}'
[ "$n" -ge "$COUNT" ]
