#!/bin/bash
# fleet_report.sh - the TLS-report counters of a fleet (store redis://...)
# add up to one report per policy domain per day, sent by one node.
# A real redis-server on a loopback port of this network namespace, the
# test bed's resolver and https receiver (rua.reports.test), and
# report_sendmail a capturing script.  Two nodes (node_id a and b, each
# its own cache directory) record results with report_inject, which
# pushes them to the store as a node does; `danests report send --now`
# runs a day later (faketime +1d) on both:
#  - each push is the node's totals under its own field: pushed twice,
#    the store's sum is unchanged;
#  - a node that records while Redis is away keeps counting
#    locally; a send meanwhile sends nothing (no report from a partial
#    count) and exits 75;
#  - Redis back: both nodes sending the same domain at once send one
#    report; the other node logs it sent by another node and sends
#    nothing;
#  - the reports carry the sum of both nodes, the outage's counts
#    included once, field by field;
#  - without --now, a report waits (within report_window) until every
#    node that counted the day pushed after the day ended;
#  - danests-postfix and danests-relay write their node's counts to the
#    store every store_push_interval (the relay's from a real delivery);
#  - the Exim module (driven through exim_dlfunc, as Exim's ${dlfunc}
#    calls it) writes its node's report counts and metrics totals after
#    its decisions, at most once per store_push_interval per node;
#    `danests stats` prints the sum of the nodes (--node one of them,
#    --prometheus checked by promtool); Redis stopped, or a store that
#    never answers: decisions come within store_timeout, nothing is lost
#    locally, stats falls back to the local cache, and the next push
#    after the outage writes the totals;
#  - without a store, each node sends its own counts (today's behaviour).
# Every program run is bounded (timeout).
# Usage: fleet_report.sh BUILD_DIR    Prints "ok N NAME" / "not ok N NAME".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
tb=$top/tests/testbed/run
rua=$top/tests/testbed/rua.sh
danests=$build/core/danests
inject=$build/tests/integration/report_inject
tmp=$(mktemp -d)
port=16381
n=0
status=0
rpid=

ok() { n=$((n + 1)); echo "ok $n $1"; }
notok() { n=$((n + 1)); echo "not ok $n $1 # $2"; status=1; }
# check NAME CMD... - ok when CMD succeeds
check() {
	local name=$1
	shift
	if "$@" >"$tmp/check.out" 2>&1; then
		ok "$name"
	else
		notok "$name" "$(head -c 800 "$tmp/check.out" | tr '\n' ' ')"
	fi
}

cleanup() {
	[ -n "$rpid" ] && kill "$rpid" 2>/dev/null && wait "$rpid" 2>/dev/null
	"$rua" mode ok >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

for p in redis-server redis-cli faketime python3; do
	command -v $p >/dev/null 2>&1 || {
		notok fleet-prerequisites "$p missing (tests/setup.sh installs it)"
		exit 1
	}
done
[ -x "$danests" ] && [ -x "$inject" ] && [ -f "$tb/pki/ca.crt" ] || {
	notok fleet-prerequisites "no danests build or test bed (tests/testbed/up.sh)"
	exit 1
}

rcli() { timeout 5 redis-cli -h 127.0.0.1 -p $port "$@"; }
# redis_start - redis-server on $tmp (it loads $tmp/dump.rdb, written by
# redis_stop: the outage loses nothing); bounded wait
redis_start() {
	redis-server --port $port --bind 127.0.0.1 --save '' --appendonly no \
	    --dir "$tmp" --logfile "$tmp/redis.log" &
	rpid=$!
	for _ in $(seq 50); do
		[ "$(rcli ping 2>/dev/null)" = PONG ] && return 0
		sleep 0.1
	done
	return 1
}
redis_stop() {
	rcli save >/dev/null
	kill "$rpid" 2>/dev/null
	wait "$rpid" 2>/dev/null
	rpid=
}
redis_start || { notok redis-start "no PONG"; exit 1; }

mkdir -p "$tmp/mail"
cat >"$tmp/sendmail" <<EOF
#!/bin/sh
f=\$(mktemp "$tmp/mail/m.XXXXXX")
cat >"\$f.eml"
printf '%s\n' "\$@" >"\$f.args"
rm -f "\$f"
EOF
chmod 755 "$tmp/sendmail"

# conf NODE [STORE] - node NODE's configuration (STORE "none": no store)
conf() {
	cat >"$tmp/$1.conf" <<EOC
resolver 127.10.0.2
ca_file $tb/pki/ca.crt
cache_dir $tmp/$1.cache
tls_reports yes
report_organization Example Sender Org
report_contact postmaster@sender.test
report_from tlsrpt-noreply@sender.test
report_submitter mx.sender.test
report_sendmail $tmp/sendmail
report_timeout 5
node_id $1
EOC
	[ "${2:-}" = none ] ||
	    printf 'store redis://127.0.0.1:%s\nstore_timeout 500\n' $port \
	    >>"$tmp/$1.conf"
}
for x in a b c; do conf $x; done
conf solo-a none
conf solo-b none

# rec NODE FILE - report_inject into NODE's cache, pushing with its config
rec() { timeout 30 "$inject" --cache-dir "$tmp/$1.cache" --config "$tmp/$1.conf" "$2"; }
# send NODE [ARGS] - danests report send a day later
send() {
	local node=$1
	shift
	timeout 120 faketime -f +1d "$danests" report send --now \
	    --config "$tmp/$node.conf" "$@"
}
posts() { ls "$tb/rua" 2>/dev/null | grep -c '\.body$'; }
mails() { ls "$tmp/mail" | grep -c '\.eml$'; }
T=$(date -u +%F)
PD=3~1~1~aabbcc
SP='version:~STSv1|mode:~testing|mx:~mx.sts-testing.test|max_age:~86400'

# --- both nodes count, each push writes the node's own totals ---
cat >"$tmp/a.in" <<EOF
dane-ee.test tlsa ok mx=mx.dane-ee.test policy=$PD count=5
dane-ee.test tlsa validation-failure mx=mx.dane-ee.test ip=127.10.2.1 policy=$PD count=3
sts-testing.test sts ok mx=mx.sts-testing.test policy=$SP mxhost=mx.sts-testing.test count=2
EOF
cat >"$tmp/b.in" <<EOF
dane-ee.test tlsa ok mx=mx.dane-ee.test policy=$PD count=4
dane-ee.test tlsa validation-failure mx=mx.dane-ee.test ip=127.10.2.1 policy=$PD count=1
dane-ee.test tlsa certificate-expired mx=mx.dane-ee.test ip=127.10.2.1 policy=$PD count=2
sts-testing.test sts ok mx=mx.sts-testing.test policy=$SP mxhost=mx.sts-testing.test count=6
sts-testing.test sts certificate-not-trusted mx=mx.sts-testing.test ip=127.10.2.2 policy=$SP mxhost=mx.sts-testing.test count=1
EOF
rec a "$tmp/a.in" >"$tmp/rec-a.out" 2>&1
rec b "$tmp/b.in" >"$tmp/rec-b.out" 2>&1
check record-and-push-both-nodes sh -c "grep -qx 'pushed 2' '$tmp/rec-a.out' &&
    grep -qx 'pushed 2' '$tmp/rec-b.out'"

# sums - "SUCCESS FAILURE" of domain's policies in the store, every node
sums() {
	local s=0 f=0 m k v
	for m in $(rcli smembers "danests:rpt:$T:$1" | grep '^P'); do
		while read -r k && read -r v; do
			case $k in s:*) s=$((s + v)) ;; f:*) f=$((f + v)) ;; esac
		done < <(rcli hgetall "danests:rpt:$T:$1:$m")
	done
	echo "$s $f"
}
check store-holds-both-nodes-fields sh -c "
    test \"\$(timeout 5 redis-cli -p $port hkeys danests:rpt:$T:dane-ee.test:\$(timeout 5 redis-cli -p $port smembers danests:rpt:$T:dane-ee.test | grep '^P') | grep -c '^[sf]:[ab]\$')\" = 4"
before=$(sums dane-ee.test)
rec a /dev/null >/dev/null 2>&1
rec a /dev/null >/dev/null 2>&1
rec b /dev/null >/dev/null 2>&1
check pushed-twice-sum-unchanged test "$before" = "9 6" -a "$(sums dane-ee.test)" = "9 6"

# --- Redis away: counting goes on locally, nothing is sent ---
redis_stop
printf 'dane-ee.test tlsa ok mx=mx.dane-ee.test policy=%s count=10\n' $PD >"$tmp/b2.in"
start=$(date +%s)
rec b "$tmp/b2.in" >"$tmp/rec-b2.out" 2>&1
rc=$?
check outage-record-counts-locally sh -c "test $rc = 0 &&
    grep -qx 'recorded 10' '$tmp/rec-b2.out' &&
    grep -q 'push deferred' '$tmp/rec-b2.out' &&
    test $(( $(date +%s) - start )) -le 10"
"$rua" reset >/dev/null
send a >"$tmp/send-out.out" 2>&1
rc=$?
check outage-send-defers-75-nothing-sent sh -c "test $rc = 75 &&
    grep -q 'nothing sent, deferred' '$tmp/send-out.out' &&
    test $(posts) = 0 -a $(mails) = 0 || { cat '$tmp/send-out.out'; false; }"
redis_start || notok redis-restart "no PONG"

# --- Redis back: both at once, one report of sts-testing.test ---
send a --domain sts-testing.test >"$tmp/sa.out" 2>&1 &
pa=$!
send b --domain sts-testing.test >"$tmp/sb.out" 2>&1
rcb=$?
wait $pa
rca=$?
check concurrent-senders-one-report sh -c "test $rca = 0 -a $rcb = 0 &&
    test $(posts) = 1 -a $(mails) = 1 &&
    cat '$tmp/sa.out' '$tmp/sb.out' | grep -Eq 'sts-testing.test: (sent by|being sent by) another node' ||
    { cat '$tmp/sa.out' '$tmp/sb.out'; false; }"

# --- b (it holds the outage's counts) sends; a finds it sent ---
send b >"$tmp/sb2.out" 2>&1
rcb=$?
send a >"$tmp/sa2.out" 2>&1
rca=$?
check one-report-per-domain sh -c "test $rca = 0 -a $rcb = 0 &&
    test $(posts) = 2 -a $(mails) = 2 &&
    grep -q 'dane-ee.test: sent to https://rua.reports.test/tlsrpt' '$tmp/sb2.out' &&
    grep -q 'dane-ee.test: sent by another node' '$tmp/sa2.out' &&
    ! grep -q 'sent to' '$tmp/sa2.out' ||
    { cat '$tmp/sb2.out' '$tmp/sa2.out'; false; }"
check outage-counts-pushed-once test "$(sums dane-ee.test)" = "19 6"

# The reports (https and mail), field by field: the sum of both nodes
cat >"$tmp/check.py" <<'EOF'
import email, glob, gzip, json, sys
rua, mdir = sys.argv[1], sys.argv[2]
want = {
    "dane-ee.test": (19, 6, {("validation-failure", "127.10.2.1"): 4,
                             ("certificate-expired", "127.10.2.1"): 2}),
    "sts-testing.test": (8, 1, {("certificate-not-trusted", "127.10.2.2"): 1}),
}
reps = []
for b in glob.glob(rua + "/*.body"):
    reps.append(json.loads(gzip.decompress(open(b, "rb").read())))
for m in glob.glob(mdir + "/*.eml"):
    msg = email.message_from_binary_file(open(m, "rb"))
    for part in msg.walk():
        if part.get_content_type() == "application/tlsrpt+gzip":
            reps.append(json.loads(gzip.decompress(part.get_payload(decode=True))))
seen = {}
for r in reps:
    assert len(r["policies"]) == 1, r
    p = r["policies"][0]
    d = p["policy"]["policy-domain"]
    s = p["summary"]
    ok, fail, det = want[d]
    assert s["total-successful-session-count"] == ok, (d, s)
    assert s["total-failure-session-count"] == fail, (d, s)
    got = {(x["result-type"], x["receiving-ip"]): x["failed-session-count"]
           for x in p.get("failure-details", [])}
    assert got == det, (d, got)
    seen[d] = seen.get(d, 0) + 1
assert seen == {"dane-ee.test": 2, "sts-testing.test": 2}, seen
EOF
check reports-sum-both-nodes python3 "$tmp/check.py" "$tb/rua" "$tmp/mail"

# a third node, never sending, sees the same sum (dry run)
send c --dry-run --domain dane-ee.test >"$tmp/sc.out" 2>&1
check third-node-reads-the-sum grep -q '19 successful and 6 failed sessions' "$tmp/sc.out"

# --- not --now: a report waits for every node's push after the day ---
# report_window 60: the domain is due within a minute after midnight and
# the wait for a late node ends with the window
for x in a b; do echo 'report_window 60' >>"$tmp/$x.conf"; done
printf 'insecure.test no-policy-found ok mx=mx.insecure.test count=%s\n' 3 >"$tmp/ia.in"
printf 'insecure.test no-policy-found ok mx=mx.insecure.test count=%s\n' 4 >"$tmp/ib.in"
rec a "$tmp/ia.in" >/dev/null 2>&1
rec b "$tmp/ib.in" >/dev/null 2>&1
"$rua" reset >/dev/null
rm -f "$tmp/mail"/*
T1=$(date -u -d "$T + 1 day" +%F)
# sendat NODE - danests report send at 00:00:59 UTC of the next day
sendat() {
	TZ=UTC timeout 120 faketime "$T1 00:00:59" "$danests" report send \
	    --config "$tmp/$1.conf" --domain insecure.test
}
sendat b >"$tmp/wb.out" 2>&1
rcb=$?
check waits-for-a-late-node sh -c "test $rcb = 0 -a $(posts) = 0 -a $(mails) = 0 &&
    grep -q \"insecure.test: waiting for node a's counts of the whole day\" '$tmp/wb.out' ||
    { cat '$tmp/wb.out'; false; }"
sendat a >"$tmp/wa.out" 2>&1
rca=$?
check sent-once-every-node-pushed sh -c "test $rca = 0 -a $(posts) = 1 -a $(mails) = 1 &&
    zcat '$tb/rua/'*.body | grep -q '\"total-successful-session-count\": *7' ||
    { cat '$tmp/wa.out'; zcat '$tb/rua/'*.body; false; }"

# --- a daemon pushes its node's counts every store_push_interval ---
# node d: counts in its cache only (not pushed), then danests-postfix
# with store_push_interval 1 writes them to the store under node_id d
conf d
printf 'dane-ee.test tlsa ok mx=mx.dane-ee.test policy=%s count=5\n' $PD >"$tmp/d.in"
timeout 30 "$inject" --cache-dir "$tmp/d.cache" "$tmp/d.in" >/dev/null 2>&1
chmod 755 "$tmp"
chown -R nobody "$tmp/d.cache"
dport=16482
cat >>"$tmp/d.conf" <<EOC
store_push_interval 1
[postfix]
user nobody
listen inet:127.0.0.1:$dport
EOC
"$build/postfix-tlsproxy/danests-postfix" -d -c "$tmp/d.conf" 2>"$tmp/d.log" &
dpid=$!
pm=
for _ in $(seq 100); do
	pm=$(rcli smembers "danests:rpt:$T:dane-ee.test" | grep '^P' | head -1)
	[ -n "$pm" ] && [ "$(rcli hget "danests:rpt:$T:dane-ee.test:$pm" s:d)" = 5 ] && break
	sleep 0.1
done
check daemon-tick-pushes-node-counts sh -c "test \"\$(timeout 5 redis-cli -p $port hget 'danests:rpt:$T:dane-ee.test:$pm' s:d)\" = 5 ||
    { cat '$tmp/d.log'; false; }"
kill "$dpid" 2>/dev/null
wait "$dpid" 2>/dev/null

# --- danests-relay: a delivery's TLS result reaches the store by the
# relay's push, no `report send` on its node ---
relay=$build/opensmtpd/danests-relay
rport=16483
conf r
mkdir -p "$tmp/r.cache" "$tmp/rtmp"
chown nobody "$tmp/r.cache" "$tmp/rtmp"
cat >>"$tmp/r.conf" <<EOC
store_push_interval 1
[relay]
listen 127.0.0.1:$rport
user nobody
helo_name relay-it.test
tmpdir $tmp/rtmp
reply_gap 0
EOC
# nsum NODE DOMAIN F - the sum of field F:NODE over DOMAIN's policies
nsum() {
	local m s=0 v
	for m in $(rcli smembers "danests:rpt:$T:$2" | grep '^P'); do
		v=$(rcli hget "danests:rpt:$T:$2:$m" "$3:$1")
		s=$((s + ${v:-0}))
	done
	echo $s
}
if [ -x "$relay" ]; then
	"$relay" -d -c "$tmp/r.conf" 2>"$tmp/r.log" &
	rlpid=$!
	for _ in $(seq 100); do
		ss -Hltn "src 127.0.0.1:$rport" | grep -q LISTEN && break
		sleep 0.1
	done
	# one message to postmaster@dane-ee.test over LMTP
	rreply=$(timeout 60 python3 - "$rport" <<'EOP'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=50)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline().decode("latin1").rstrip("\r\n")
        if len(l) < 4 or l[3] != "-":
            return l
reply()
for c in ("LHLO it.test", "MAIL FROM:<s@relay-it.test>",
          "RCPT TO:<postmaster@dane-ee.test>", "DATA"):
    s.sendall(c.encode() + b"\r\n")
    reply()
s.sendall(b"Subject: fleet\r\n\r\nhello\r\n.\r\n")
print(reply())
s.sendall(b"QUIT\r\n")
EOP
)
	for _ in $(seq 100); do
		[ "$(nsum r dane-ee.test s)" = 1 ] && break
		sleep 0.1
	done
	check relay-tick-pushes-node-counts sh -c "test \"$(nsum r dane-ee.test s)\" = 1 ||
	    { echo '$rreply'; cat '$tmp/r.log'; false; }"
	kill "$rlpid" 2>/dev/null
	wait "$rlpid" 2>/dev/null
else
	echo "# no $relay: relay check not run"
fi

# --- the Exim module: its node's counts reach the store after its
# decisions and recorded results, at most once per store_push_interval
# per node; danests stats adds up the nodes ---
SO=$build/exim/danests_exim.so
dl=$build/tests/integration/exim_dlfunc
# econf NODE INTERVAL [STORE-PORT] - an Exim node with metrics yes
econf() {
	conf "$1"
	[ -n "${3:-}" ] && sed -i "s|^store redis://127.0.0.1:.*|store redis://127.0.0.1:$3|" "$tmp/$1.conf"
	printf 'store_push_interval %s\n[exim]\nmetrics yes\n' "$2" >>"$tmp/$1.conf"
}
# ex NODE FUNC ARG... - one Exim process's call of the module on NODE
ex() {
	local node=$1
	shift
	timeout 30 "$dl" "$SO" "$@" "$tmp/$node.conf" 2>>"$tmp/$node.exlog"
}
# local_n NODE KEY - the node's own count of a counter (its cache)
local_n() {
	"$danests" stats --local --config "$tmp/$1.conf" |
	    awk -v k="$2" '$1 == k { v = $2 } END { print v + 0 }'
}
# store_n NODE FIELD - the node's count in the store
store_n() { v=$(rcli hget "danests:met:node:$1" "$2"); echo "${v:-0}"; }
DK='danests_decisions_total{verdict="deliver"}'
if [ -f "$SO" ] && [ -x "$dl" ]; then
	econf ea 1
	econf eb 1
	for x in ea eb; do
		ex $x decision dane-ee.test >"$tmp/$x.d1"
		ex $x tls_event tcp:connect dane-ee.test mx.dane-ee.test 127.10.2.1 127.0.0.1 "" >/dev/null
		ex $x tls_event smtp:ehlo dane-ee.test mx.dane-ee.test 127.10.2.1 127.0.0.1 1 >/dev/null
	done
	# the result was recorded within the interval of the decision's
	# push: the next call past the interval brings it
	sleep 1.1
	ex ea decision dane-ee.test >/dev/null
	ex eb decision dane-ee.test >/dev/null
	check exim-pushes-report-counts sh -c "grep -q '^OK deliver' '$tmp/ea.d1' &&
	    test \"$(nsum ea dane-ee.test s) $(nsum eb dane-ee.test s)\" = '1 1' ||
	    { cat '$tmp/ea.d1' '$tmp/ea.exlog'; false; }"
	la=$(local_n ea "$DK") lb=$(local_n eb "$DK")
	check exim-pushes-metrics-totals sh -c "test $la -ge 3 -a $lb -ge 3 &&
	    test \"$(store_n ea decisions/deliver) $(store_n eb decisions/deliver)\" = '$la $lb' &&
	    test \"$(rcli zrange danests:met:nodes 0 -1 | grep -c '^e[ab]$')\" = 2 &&
	    test \"$(rcli ttl danests:met:node:ea)\" -gt 600000 ||
	    { echo local $la $lb; timeout 5 redis-cli -p '$port' hgetall danests:met:node:ea | head; false; }"
	"$danests" stats --config "$tmp/ea.conf" >"$tmp/stats.out" 2>&1
	rc=$?
	check stats-sums-the-nodes sh -c "test $rc = 0 &&
	    head -1 '$tmp/stats.out' | grep -qx '# the sum of 2 nodes (shared store)' &&
	    grep -qxF '$DK $((la + lb))' '$tmp/stats.out' || { cat '$tmp/stats.out'; false; }"
	"$danests" stats --config "$tmp/ea.conf" --node eb >"$tmp/stats-b.out" 2>&1
	rc=$?
	check stats-one-node sh -c "test $rc = 0 && grep -qxF '$DK $lb' '$tmp/stats-b.out' &&
	    { '$danests' stats --config '$tmp/ea.conf' --node nosuch >/dev/null 2>&1; test \$? = 69; }"
	"$danests" stats --config "$tmp/eb.conf" --prometheus >"$tmp/prom.out" 2>&1
	rc=$?
	lint=$(promtool check metrics <"$tmp/prom.out" 2>&1)
	check stats-prometheus-fleet sh -c "test $rc = 0 -a -z '$lint' &&
	    grep -qx 'danests_fleet_nodes 2' '$tmp/prom.out' &&
	    grep -qxF '$DK $((la + lb))' '$tmp/prom.out' || { echo '$lint'; head -5 '$tmp/prom.out'; false; }"

	# one push per interval per node, whatever the number of processes
	econf ec 3600
	for _ in 1 2 3; do ex ec decision dane-ee.test >/dev/null; done
	check exim-push-once-per-interval sh -c "test \"$(store_n ec decisions/deliver)\" = 1 &&
	    test \"$(local_n ec "$DK")\" = 3"

	# Redis away: the decisions come in time, nothing is lost locally,
	# and the next push after it returns writes the totals
	redis_stop
	sleep 1.1
	t0=$(date +%s%N)
	ex ea decision dane-ee.test >"$tmp/ea.d2"
	t1=$(date +%s%N)
	check exim-store-down-no-delay sh -c "grep -q '^OK deliver' '$tmp/ea.d2' &&
	    test $(( (t1 - t0) / 1000000 )) -lt 2000 &&
	    grep -q 'counts not pushed to the store' '$tmp/ea.exlog' &&
	    test \"$(local_n ea "$DK")\" = $((la + 1)) ||
	    { echo $(( (t1 - t0) / 1000000 )) ms; cat '$tmp/ea.d2'; tail -3 '$tmp/ea.exlog'; false; }"
	"$danests" stats --config "$tmp/ea.conf" >"$tmp/stats-down.out" 2>"$tmp/stats-down.err"
	rc=$?
	check stats-store-down-local sh -c "test $rc = 0 &&
	    grep -q 'the counters of this node.s cache only' '$tmp/stats-down.err' &&
	    grep -qxF '$DK $((la + 1))' '$tmp/stats-down.out' ||
	    { cat '$tmp/stats-down.err' '$tmp/stats-down.out'; false; }"
	# a store that accepts and never answers: each call ends at
	# store_timeout (500 ms)
	python3 -c '
import socket, sys, time
s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind(("127.0.0.1", 16399)); s.listen(16)
conns = []
while True:
    c, _ = s.accept(); conns.append(c)
' &
bpid=$!
	econf es 1 16399
	# es: a copy of ea's cache (the decision is there), its turn due
	mkdir -p "$tmp/es.cache"
	cp -a "$tmp/ea.cache/." "$tmp/es.cache/"
	sleep 1.1
	t0=$(date +%s%N)
	ex es decision dane-ee.test >"$tmp/es.d"
	t1=$(date +%s%N)
	kill $bpid 2>/dev/null
	wait $bpid 2>/dev/null
	check exim-store-silent-bounded sh -c "grep -q '^OK deliver' '$tmp/es.d' &&
	    test $(( (t1 - t0) / 1000000 )) -lt 2500 &&
	    grep -q 'counts not pushed to the store' '$tmp/es.exlog' ||
	    { echo $(( (t1 - t0) / 1000000 )) ms; cat '$tmp/es.d'; tail -3 '$tmp/es.exlog'; false; }"
	redis_start || notok redis-restart "no PONG"
	sleep 1.1
	ex ea decision dane-ee.test >/dev/null
	check exim-push-after-outage-totals sh -c "test \"$(store_n ea decisions/deliver)\" = \"$(local_n ea "$DK")\" &&
	    test \"$(store_n ea decisions/deliver)\" = $((la + 2))"
else
	echo "# no $SO or $dl: Exim module checks not run"
fi

# --- without a store: each node sends its own counts, as before ---
"$rua" reset >/dev/null
rm -f "$tmp/mail"/*
timeout 30 "$inject" --cache-dir "$tmp/solo-a.cache" "$tmp/a.in" >/dev/null 2>&1
timeout 30 "$inject" --cache-dir "$tmp/solo-b.cache" "$tmp/b.in" >/dev/null 2>&1
send solo-a >"$tmp/so-a.out" 2>&1
rca=$?
send solo-b >"$tmp/so-b.out" 2>&1
rcb=$?
check no-store-each-node-sends-its-own sh -c "test $rca = 0 -a $rcb = 0 &&
    test $(posts) = 4 -a $(mails) = 4 || { cat '$tmp/so-a.out' '$tmp/so-b.out'; false; }"

exit $status
