#!/bin/bash
# tests/integration/metrics.sh - metrics_listen of danests-postfix and
# danests-relay on the loopback test bed: the counts a scrape shows move
# with the requests made (socketmap replies by type, decisions by verdict
# and reason, the context's memory, policy fetches, relay deliveries by
# result), 404 and 405, HEAD, an oversized request refused and closed, a
# client that never ends its request closed at its deadline, clients
# beyond the cap served once a slot frees, counts kept across SIGHUP, the
# shared store's lookups (a miss on one node, a hit on the next, an error
# when Redis is gone), the TLSRPT collector's datagrams, -n warning of a
# non-loopback address, a unix: spec refused, `danests stats` with nothing
# stored, the README's configuration blocks, promtool (Debian's prometheus
# package) finding nothing to say of the text, and a real Prometheus
# scraping both daemons.  Needs the test bed (tests/testbed/up.sh) and
# root.
#
#   metrics.sh BUILD_DIR        prints "ok N NAME" / "not ok N NAME"
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
pf=$build/postfix-tlsproxy/danests-postfix
relay=$build/opensmtpd/danests-relay
W=$build/metrics-it
# shellcheck source=lib.sh
. "$top/tests/integration/lib.sh"
PF_PORT=18480 PF_M=18481 RELAY_PORT=18482 RELAY_M=18483


[ -x "$pf" ] || { echo "not ok 1 build # no $pf"; exit 1; }
[ -f "$E2E_CA" ] || { echo "skip metrics (test bed not up)"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "skip metrics (needs root)"; exit 0; }
command -v promtool >/dev/null || { echo "not ok 1 promtool # tests/setup.sh installs prometheus"; exit 1; }
rm -rf "$W"
mkdir -p "$W/pfcache" "$W/relaycache" "$W/tmp"
chown nobody "$W/pfcache" "$W/relaycache" "$W/tmp"

# scrape PORT - the text of GET /metrics
scrape() { curl -sS --max-time 10 "http://127.0.0.1:$1/metrics"; }
# value TEXT SAMPLE - the value of one sample line (name{labels}), or 0
value() {
	awk -v s="$2" '$1 == s { print $2; f = 1 } END { if (!f) print 0 }' <<<"$1"
}
# delta NAME SAMPLE - the sample's value now minus in $before
delta() { echo $(( $(value "$after" "$2") - $(value "$before" "$2") )); }

# --- danests-postfix ------------------------------------------------------
cat >"$W/pf.conf" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/pfcache
[postfix]
user nobody
listen inet:127.0.0.1:$PF_PORT
metrics_listen inet:127.0.0.1:$PF_M   # loopback only
EOF
"$pf" -d -c "$W/pf.conf" 2>"$W/pf.log" &
pids+=($!)
listening 127.0.0.1:$PF_PORT 127.0.0.1:$PF_M ||
    { notok pf-start "$(tail -3 "$W/pf.log")"; exit 1; }

# ask DOMAIN - one socketmap request (to PF_PORT); the reply's first word
ask() {
	"$PY" - "$PF_PORT" "$1" <<'EOP' 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=30)
q = ("postfix " + sys.argv[2]).encode()
s.sendall(str(len(q)).encode() + b":" + q + b",")
buf = b""
while not buf.endswith(b","):
    chunk = s.recv(4096)
    if not chunk:
        break
    buf += chunk
print(buf.split(b":", 1)[-1].decode().split(" ")[0])
EOP
}

hdr=$(curl -sS -D - -o /dev/null --max-time 10 "http://127.0.0.1:$PF_M/metrics" | tr -d '\r')
check pf-200 'grep -q "^HTTP/1.1 200 OK$" <<<"$hdr" &&
    grep -q "^Content-Type: text/plain; version=0.0.4; charset=utf-8$" <<<"$hdr" &&
    grep -q "^Connection: close$" <<<"$hdr"' "$hdr"
before=$(scrape $PF_M)
check pf-families 'grep -q "^# TYPE danests_decisions_total counter$" <<<"$before" &&
    grep -q "^# TYPE danests_decision_duration_seconds histogram$" <<<"$before" &&
    grep -q "^# TYPE danests_postfix_replies_total counter$" <<<"$before" &&
    grep -q "^danests_decision_reasons_total{reason=\"nxdomain\"} 0$" <<<"$before"' \
    "$(head -5 <<<"$before")"

# the text as Prometheus's own linter reads it
lint=$(scrape $PF_M | promtool check metrics 2>&1); rc=$?
check pf-promtool '[ $rc = 0 ] && [ -z "$lint" ]' "rc $rc: $(head -c 300 <<<"$lint")"

a1=$(ask dane-ee.test) a2=$(ask dane-ee.test) a3=$(ask bogus-mx.test)
a4=$(ask sts-enforce.test) a5=$(ask nxdomain.test)
after=$(scrape $PF_M)
echo "# replies: dane-ee.test $a1 $a2, bogus-mx.test $a3, sts-enforce.test $a4, nxdomain.test $a5"
d_ok=$(delta x 'danests_postfix_replies_total{type="OK"}')
d_temp=$(delta x 'danests_postfix_replies_total{type="TEMP"}')
d_nf=$(delta x 'danests_postfix_replies_total{type="NOTFOUND"}')
d_req=$(delta x danests_postfix_requests_total)
check pf-replies-ok '[ "$a1 $a2 $a4" = "OK OK OK" ] && [ "$d_ok" = 3 ]' "OK +$d_ok"
check pf-replies-temp '[ "$a3" = TEMP ] && [ "$d_temp" = 1 ]' "TEMP +$d_temp ($a3)"
check pf-replies-notfound '[ "$d_nf" = 1 ]' "NOTFOUND +$d_nf ($a5)"
check pf-requests '[ "$d_req" = 5 ]' "requests +$d_req"
d_del=$(delta x 'danests_decisions_total{verdict="deliver"}')
d_tf=$(delta x 'danests_decisions_total{verdict="tempfail"}')
d_pf=$(delta x 'danests_decisions_total{verdict="permfail"}')
check pf-verdicts '[ "$d_del $d_tf $d_pf" = "3 1 1" ]' "deliver/tempfail/permfail +$d_del/+$d_tf/+$d_pf"
d_nx=$(delta x 'danests_decision_reasons_total{reason="nxdomain"}')
d_dane=$(delta x 'danests_decision_hosts_total{policy="dane"}')
d_sts=$(delta x 'danests_decision_hosts_total{policy="sts-enforce"}')
check pf-reasons-hosts '[ "$d_nx" = 1 ] && [ "$d_dane" -ge 2 ] && [ "$d_sts" -ge 1 ]' \
    "nxdomain +$d_nx, dane hosts +$d_dane, sts-enforce hosts +$d_sts"
d_hit=$(delta x 'danests_cache_requests_total{layer="memory",kind="decision",result="hit"}')
d_miss=$(delta x 'danests_cache_requests_total{layer="memory",kind="decision",result="miss"}')
check pf-memory '[ "$d_hit" = 1 ] && [ "$d_miss" = 4 ]' "memory hit +$d_hit miss +$d_miss"
d_fetch=$(delta x 'danests_sts_fetches_total{result="ok"}')
check pf-sts-fetch '[ "$d_fetch" = 1 ]' "fetches ok +$d_fetch"
d_cnt=$(delta x danests_decision_duration_seconds_count)
d_inf=$(delta x 'danests_decision_duration_seconds_bucket{le="+Inf"}')
check pf-latency '[ "$d_cnt" = 5 ] && [ "$d_inf" = 5 ]' "count +$d_cnt +Inf +$d_inf"

# --- the listener's refusals ---------------------------------------------
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$PF_M/")
check http-404 '[ "$code" = 404 ]' "$code"
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 -X POST "http://127.0.0.1:$PF_M/metrics")
allow=$(curl -s -D - -o /dev/null --max-time 10 -X PUT "http://127.0.0.1:$PF_M/metrics" | tr -d '\r' | grep '^Allow:')
check http-405 '[ "$code" = 405 ] && [ "$allow" = "Allow: GET, HEAD" ]' "$code $allow"
head_out=$(curl -s -I --max-time 10 "http://127.0.0.1:$PF_M/metrics" | tr -d '\r')
clen=$(sed -n 's/^Content-Length: //p' <<<"$head_out")
check http-head 'grep -q "^HTTP/1.1 200 OK$" <<<"$head_out" && [ "${clen:-0}" -gt 1000 ]' "$head_out"
# a request line and header fields over 8 KiB: 431, then closed
big=$("$PY" - "$PF_M" <<'EOP'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=10)
s.sendall(b"GET /metrics HTTP/1.1\r\nHost: h\r\nX-Big: " + b"a" * 9000)
buf = b""
try:
    while True:
        c = s.recv(4096)
        if not c:
            break
        buf += c
    print(buf.split(b"\r\n")[0].decode(), "closed")
except ConnectionResetError:
    print(buf.split(b"\r\n")[0].decode(), "reset")
EOP
)
check http-oversized 'grep -Eq "^HTTP/1.1 431 .* (closed|reset)$" <<<"$big"' "$big"
# a client that never ends its request is closed at its deadline (5 s)
exec 7<>/dev/tcp/127.0.0.1/$PF_M
printf 'GET /metrics HTTP/1.1\r\nHost: h\r\n' >&7
t0=$(date +%s)
timeout 20 cat <&7 >/dev/null
t1=$(date +%s)
exec 7>&-
check http-deadline '[ $((t1 - t0)) -ge 4 ] && [ $((t1 - t0)) -le 7 ]' "closed after $((t1 - t0)) s"
# four clients that hold every slot: a fifth waits in the listen queue
# and is served once their deadline frees them, not refused
for fd in 3 4 5 6; do
	eval "exec $fd<>/dev/tcp/127.0.0.1/$PF_M"
done
t0=$(date +%s)
code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 15 "http://127.0.0.1:$PF_M/metrics")
t1=$(date +%s)
for fd in 3 4 5 6; do
	eval "exec $fd>&-"
done
check http-cap '[ "$code" = 200 ] && [ $((t1 - t0)) -ge 3 ]' "$code after $((t1 - t0)) s"
check pf-still-serves '[ "$(ask dane-ee.test)" = OK ]'
# SIGHUP makes a new core context: the counts go on from where they were
before=$(scrape $PF_M)
kill -HUP "${pids[0]}"
e2e_wait 10 grep -q "configuration reloaded" "$W/pf.log"
a6=$(ask nxdomain.test)
after=$(scrape $PF_M)
d_pf=$(delta x 'danests_decisions_total{verdict="permfail"}')
d_nf=$(delta x 'danests_postfix_replies_total{type="NOTFOUND"}')
check pf-reload-keeps '[ "$d_pf" = 1 ] && [ "$d_nf" = 1 ] &&
    [ "$(value "$after" "danests_decisions_total{verdict=\"deliver\"}")" -ge 4 ]' \
    "after SIGHUP: permfail +$d_pf NOTFOUND +$d_nf ($a6)"

# --- the shared store (store redis://...): lookups by result, errors -----
RPORT=16390 S1_PORT=18484 S1_M=18485 S2_PORT=18486 S2_M=18487
mkdir -p "$W/s1cache" "$W/s2cache" "$W/redis"
chown nobody "$W/s1cache" "$W/s2cache"
redis-server --port $RPORT --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$W/redis" --logfile "$W/redis/log" &
rpid=$!
pids+=("$rpid")
e2e_wait 5 sh -c "[ \"\$(redis-cli -p $RPORT ping 2>/dev/null)\" = PONG ]"
# snode NAME PORT MPORT - a danests-postfix of the fleet
snode() {
	cat >"$W/$1.conf" <<EOC
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/$1cache
store redis://127.0.0.1:$RPORT
store_prefix m:
[postfix]
user nobody
listen inet:127.0.0.1:$2
metrics_listen inet:127.0.0.1:$3
EOC
	"$pf" -d -c "$W/$1.conf" 2>"$W/$1.log" &
	pids+=($!)
	listening 127.0.0.1:$2 127.0.0.1:$3
}
snode s1 $S1_PORT $S1_M && snode s2 $S2_PORT $S2_M ||
    notok store-nodes-start "$(tail -2 "$W/s1.log" "$W/s2.log")"
sample_store() { echo "danests_cache_requests_total{layer=\"store\",kind=\"${2:-policy}\",result=\"$1\"}"; }
PF_PORT=$S1_PORT ask sts-enforce.test >/dev/null
s1=$(scrape $S1_M)
PF_PORT=$S2_PORT ask sts-enforce.test >/dev/null
s2=$(scrape $S2_M)
# a first contact reads the store more than once (before and after taking
# the fetch lock): at least one miss on s1, for the decision and for the
# policy; s2 finds s1's decision at once (and so needs no policy)
check store-miss-then-hit '[ "$(value "$s1" "$(sample_store miss)")" -ge 1 ] &&
    [ "$(value "$s1" "$(sample_store miss decision)")" = 1 ] &&
    [ "$(value "$s1" "$(sample_store hit)")" = 0 ] &&
    [ "$(value "$s2" "$(sample_store hit decision)")" = 1 ] &&
    [ "$(value "$s2" "$(sample_store miss decision)")" = 0 ] &&
    [ "$(value "$s2" "$(sample_store miss)")" = 0 ] &&
    [ "$(value "$s1" danests_store_errors_total)" = 0 ]' \
    "s1 miss $(value "$s1" "$(sample_store miss)")/$(value "$s1" "$(sample_store miss decision)"), s2 hit $(value "$s2" "$(sample_store hit decision)")"
kill "$rpid"; wait "$rpid" 2>/dev/null
a=$(PF_PORT=$S1_PORT ask sts-wild.test)
s1=$(scrape $S1_M)
# with the store gone, every read of that lookup is an error (the first,
# then the fast failures of the outage pause)
check store-error-counted '[ "$a" = OK ] && [ "$(value "$s1" "$(sample_store error)")" -ge 1 ] &&
    [ "$(value "$s1" danests_store_errors_total)" -ge 1 ]' \
    "$a; read errors $(value "$s1" "$(sample_store error)"), errors $(value "$s1" danests_store_errors_total)"

# --- the TLSRPT collector's datagrams (tlsrpt_socket) ---------------------
T_PORT=18488 T_M=18489
mkdir -p "$W/tcache" "$W/trun"
chown nobody "$W/tcache" "$W/trun"
cat >"$W/t.conf" <<EOC
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/tcache
tls_reports yes
[postfix]
user nobody
listen inet:127.0.0.1:$T_PORT
metrics_listen inet:127.0.0.1:$T_M
tlsrpt_socket $W/trun/tlsrpt
EOC
"$pf" -d -c "$W/t.conf" 2>"$W/t.log" &
pids+=($!)
listening 127.0.0.1:$T_PORT 127.0.0.1:$T_M || notok tlsrpt-node-start "$(tail -2 "$W/t.log")"
# one good datagram, one malformed, one over the 32 KiB cap
"$PY" - "$W/trun/tlsrpt" "$top/tests/unit/data/tlsrpt/tlsa-success.json" <<'EOP'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.sendto(open(sys.argv[2], "rb").read(), sys.argv[1])
s.sendto(b"{not json", sys.argv[1])
s.sendto(b"x" * 40000, sys.argv[1])
EOP
tdg() { value "$t" "danests_postfix_tlsrpt_datagrams_total{result=\"$1\"}"; }
e2e_wait 10 sh -c "curl -s http://127.0.0.1:$T_M/metrics | grep -q '^danests_postfix_tlsrpt_datagrams_total{result=\"oversized\"} 1$'"
t=$(scrape $T_M)
check tlsrpt-datagrams '[ "$(tdg accepted) $(tdg malformed) $(tdg oversized)" = "1 1 1" ] &&
    [ "$(value "$t" "danests_postfix_tlsrpt_results_total{result=\"recorded\"}")" = 1 ]' \
    "accepted/malformed/oversized $(tdg accepted)/$(tdg malformed)/$(tdg oversized), recorded $(value "$t" "danests_postfix_tlsrpt_results_total{result=\"recorded\"}")"
check tlsrpt-families-absent-when-off '! grep -q "^danests_postfix_tlsrpt" <<<"$(scrape $PF_M)"'

# --- danests stats: the daemons serve their counters, they store none -----
# (read as nobody, the owner of the daemon's cache here)
out=$(runuser -u nobody -- "$build/core/danests" stats --cache-dir "$W/pfcache" 2>&1); rc=$?
check stats-none-stored '[ $rc = 0 ] && [ "$out" = "no counters stored in $W/pfcache (the Exim module stores its counters there with metrics yes in [exim]; the daemons serve theirs on metrics_listen)" ]' "$rc $out"
"$build/core/danests" stats --bogus >/dev/null 2>&1; rc=$?
check stats-usage '[ $rc = 64 ]' "exit $rc"

# --- -n and the key's syntax ----------------------------------------------
sed "s/^metrics_listen .*/metrics_listen inet:0.0.0.0:$PF_M/" "$W/pf.conf" >"$W/pf-any.conf"
out=$("$pf" -n -c "$W/pf-any.conf" 2>&1)
check pf-n-warns 'grep -q "warning: metrics_listen inet:0.0.0.0:$PF_M is not a loopback address" <<<"$out"' "$out"
out=$("$pf" -n -c "$W/pf.conf" 2>&1)
check pf-n-loopback-quiet '! grep -q warning <<<"$out"' "$out"
sed "s|^metrics_listen .*|metrics_listen unix:$W/m.sock|" "$W/pf.conf" >"$W/pf-unix.conf"
out=$("$pf" -n -c "$W/pf-unix.conf" 2>&1); rc=$?
check pf-unix-refused '[ $rc = 78 ] && grep -q "pf-unix.conf:7: metrics_listen: expected inet:" <<<"$out"' "$rc $out"

# --- danests-relay --------------------------------------------------------
if [ -x "$relay" ]; then
	cat >"$W/relay.conf" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/relaycache
[relay]
listen 127.0.0.1:$RELAY_PORT
metrics_listen inet:127.0.0.1:$RELAY_M
user nobody
helo_name relay-it.test
tmpdir $W/tmp
reply_gap 0
EOF
	"$relay" -d -c "$W/relay.conf" 2>"$W/relay.log" &
	pids+=($!)
	listening 127.0.0.1:$RELAY_PORT 127.0.0.1:$RELAY_M ||
	    { notok relay-start "$(tail -3 "$W/relay.log")"; exit 1; }
	before=$(scrape $RELAY_M)
	r1=$(lmtp_one $RELAY_PORT dane-ee.test)
	r2=$(lmtp_one $RELAY_PORT bogus-mx.test)
	r3=$(lmtp_one $RELAY_PORT nxdomain.test)
	after=$(scrape $RELAY_M)
	echo "# relay replies: $r1 / $r2 / $r3"
	d1=$(delta x 'danests_relay_deliveries_total{result="delivered"}')
	d2=$(delta x 'danests_relay_deliveries_total{result="deferred"}')
	d3=$(delta x 'danests_relay_deliveries_total{result="bounced"}')
	check relay-deliveries '[ "$d1 $d2 $d3" = "1 1 1" ]' "delivered/deferred/bounced +$d1/+$d2/+$d3"
	d_s=$(delta x danests_relay_sessions_total)
	check relay-sessions '[ "$d_s" = 3 ]' "sessions +$d_s"
	d_del=$(delta x 'danests_decisions_total{verdict="deliver"}')
	d_tf=$(delta x 'danests_decisions_total{verdict="tempfail"}')
	d_pf=$(delta x 'danests_decisions_total{verdict="permfail"}')
	check relay-verdicts '[ "$d_del $d_tf $d_pf" = "1 1 1" ]' "+$d_del/+$d_tf/+$d_pf"
	lint=$(scrape $RELAY_M | promtool check metrics 2>&1); rc=$?
	check relay-promtool '[ $rc = 0 ] && [ -z "$lint" ]' "rc $rc: $(head -c 300 <<<"$lint")"
	code=$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "http://127.0.0.1:$RELAY_M/x")
	check relay-404 '[ "$code" = 404 ]' "$code"
	sed "s/^metrics_listen .*/metrics_listen inet:[::]:$RELAY_M/" "$W/relay.conf" >"$W/relay-any.conf"
	out=$("$relay" -n -c "$W/relay-any.conf" 2>&1)
	check relay-n-warns 'grep -q "warning: metrics_listen inet:\[::\]:$RELAY_M is not a loopback address" <<<"$out"' "$out"

	# a real Prometheus scrapes both daemons every second
	PROM=19090
	cat >"$W/prometheus.yml" <<EOC
global:
  scrape_interval: 1s
scrape_configs:
  - job_name: danests
    static_configs:
      - targets: ['127.0.0.1:$PF_M', '127.0.0.1:$RELAY_M']
EOC
	prometheus --config.file="$W/prometheus.yml" --storage.tsdb.path="$W/prom" \
	    --web.listen-address=127.0.0.1:$PROM >"$W/prometheus.log" 2>&1 &
	pids+=($!)
	# promq QUERY - the values of an instant query, one line each
	promq() {
		curl -sS --max-time 5 "http://127.0.0.1:$PROM/api/v1/query" \
		    --data-urlencode "query=$1" 2>/dev/null |
		    jq -r '.data.result[].value[1]' 2>/dev/null
	}
	e2e_wait 30 sh -c "[ \"\$(curl -s 'http://127.0.0.1:$PROM/api/v1/query?query=up%3D%3D1' | jq '.data.result | length' 2>/dev/null)\" = 2 ]"
	up=$(promq 'up{job="danests"}' | sort | tr '\n' ' ')
	okr=$(promq 'danests_postfix_replies_total{type="OK"}')
	del=$(promq 'danests_relay_deliveries_total{result="delivered"}')
	check prometheus-scrapes '[ "$up" = "1 1 " ] && [ "${okr:-0}" -ge 4 ] && [ "$del" = 1 ]' \
	    "up: $up; OK replies: $okr; delivered: $del; $(tail -2 "$W/prometheus.log" | cut -c1-200)"
else
	echo "# no $relay: relay checks not run"
fi

# --- the README's configuration blocks load -------------------------------
# readme_block FILE - the README block for FILE (```FILE) that sets
# metrics_listen, the test bed's core keys first
readme_block() {
	awk -v tag="\`\`\`$1" '
		$0 == tag { f = 1; b = ""; next }
		f && /^```$/ { f = 0; if (b ~ /metrics_listen/) { printf "%s", b; exit } next }
		f { b = b $0 "\n" }
	' "$top/README.md" | sed "s|^include /etc/danests/danests.conf$|include $W/core.conf|"
}
printf 'resolver %s\nca_file %s\ncache_dir %s\n' "$E2E_RESOLVER" "$E2E_CA" "$W/pfcache" >"$W/core.conf"
{ readme_block danests-postfix.conf; echo "user nobody"; } >"$W/readme-pf.conf"
{ readme_block danests-relay.conf; echo "user nobody"; echo "tmpdir $W/tmp"; } >"$W/readme-relay.conf"
out=$("$pf" -n -c "$W/readme-pf.conf" 2>&1); rc=$?
out2=$("$relay" -n -c "$W/readme-relay.conf" 2>&1); rc2=$?
check readme-config '[ $rc = 0 ] && [ $rc2 = 0 ] && grep -q "^metrics_listen inet:127.0.0.1:" "$W/readme-pf.conf" &&
    grep -q "^metrics_listen inet:127.0.0.1:" "$W/readme-relay.conf" && ! grep -q warning <<<"$out$out2"' \
    "$rc $out / $rc2 $out2"

cleanup
echo "# $n checks, $fails failed"
[ "$fails" = 0 ]
