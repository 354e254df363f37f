#!/bin/bash
# tests/bench/burst.sh - a burst of 1,000 new domains (500 DANE, 500
# MTA-STS enforce, all with a secure MX) behind a validating unbound with
# Debian's defaults, cold and warm, against the floor of the same queries
# sent by dnsperf and the same policies fetched by one parallel curl.
#
#   tests/bench/burst.sh [BUILD_DIR [OTHER_DANESTS]]
#
# Reports, cold (unbound just started) and warm (the same run again):
# `danests check -f` over the batch (seconds, verdicts, and the number of
# domains whose decision differs from the one a run for that domain
# alone gives); dnsperf over the same queries, at most 200 outstanding
# as danests (dns_max_queries); curl --parallel over the same policies,
# 64 at once.  BENCH_CONF adds lines to danests's configuration (e.g.
# "dns_max_queries 100"); BENCH_N sets the domains of each kind (500).
# Then danests-postfix (when built; not with BENCH_POSTFIX=0): a fresh
# daemon asked every domain once over 64 and 256 connections
# (tests/bench/smburst.py), cold and warm; then, when installed (not with
# BENCH_PEER=0), postfix-mta-sts-resolver's mta-sts-daemon and
# danests-postfix each asked the MTA-STS half the same way.  OTHER_DANESTS (another
# build's danests, e.g. an older one) is measured as danests check.
#
# Bench-only servers, nothing of the test bed (tests/testbed/up.sh is not
# needed and not touched), in a network namespace of its own
# (tests/testbed/isolate.sh):
#   127.10.0.6:53   unbound, Debian's defaults (num-threads 1,
#                   num-queries-per-thread 1024, outgoing-range 4096) but
#                   for the addresses, the stub zone and its trust anchor
#                   (and logging: every SERVFAIL and validation failure
#                   is logged and counted per run)
#   127.10.0.7:53   nsd, authoritative for bench.test (signed)
#   127.10.1.8:443  nginx, every mta-sts.sts-NNN.bench.test
# The zone, its key, the CA and the policy hosts' certificate are made
# once and kept in tests/testbed/run/bench-burst/ (remade after 3 days:
# signatures last 5).  Run by hand; not part of tests/run.sh.
set -eu
cd "$(dirname "$0")/../.."
top=$PWD
build=$(cd "${1:-build}" && pwd)
other=${2:-}
if [ -z "${DANESTS_TEST_TOP:-}" ]; then
	exec tests/testbed/isolate.sh tests/bench/burst.sh "$build" $other
fi
danests=$build/core/danests
cache=$top/tests/testbed/run/bench-burst
N=${BENCH_N:-500}		# domains of each kind
RES=127.10.0.6 NSD=127.10.0.7 WEB=127.10.1.8
work=$(mktemp -d /tmp/danests-burst.XXXXXX)
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
	[ -f "$work/nginx.pid" ] && kill "$(cat "$work/nginx.pid")" 2>/dev/null
	[ -f "$work/unbound.pid" ] && kill "$(cat "$work/unbound.pid")" 2>/dev/null
	cp "$work/unbound.log" "$cache/unbound.log" 2>/dev/null
	rm -rf "$work"
}
trap cleanup EXIT

# --- generation, cached ---------------------------------------------------
gen() {
	local i d
	rm -rf "$cache"
	mkdir -p "$cache"
	(
	cd "$cache"
	openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout ca.key -out ca.crt -days 30 -subj "/CN=danests bench CA" \
	    2>/dev/null
	echo "subjectAltName=$(seq -w 1 "$N" |
	    sed 's/.*/DNS:mta-sts.sts-&.bench.test/' | paste -sd,)" >san.ext
	openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
	    -keyout web.key -out web.csr -subj "/CN=bench policy hosts" \
	    2>/dev/null
	openssl x509 -req -in web.csr -CA ca.crt -CAkey ca.key \
	    -CAcreateserial -days 30 -extfile san.ext -out web.crt 2>/dev/null
	spki=$(openssl x509 -in web.crt -pubkey -noout |
	    openssl pkey -pubin -outform DER | openssl dgst -sha256 -r |
	    cut -d' ' -f1)
	{
		echo '$ORIGIN bench.test.'
		echo '$TTL 3600'
		echo "@ SOA ns.bench.test. hostmaster.bench.test. 1 3600 600 86400 60"
		echo "@ NS ns.bench.test."
		echo "ns A $NSD"
		for i in $(seq -w 1 "$N"); do
			d=dane-$i
			echo "$d MX 10 mx.$d"
			echo "mx.$d A 127.10.2.1"
			echo "_25._tcp.mx.$d TLSA 3 1 1 $spki"
			d=sts-$i
			echo "$d MX 10 mx.$d"
			echo "mx.$d A 127.10.2.1"
			echo "_mta-sts.$d TXT \"v=STSv1; id=1\""
			echo "mta-sts.$d A $WEB"
		done
	} >bench.test.zone
	k=$(ldns-keygen -a ECDSAP256SHA256 -k bench.test)
	now=$(date +%s)
	ldns-signzone -i $((now - 3600)) -e $((now + 5 * 86400)) -o bench.test. \
	    bench.test.zone "$k"
	ldns-key2ds -n -2 "$k.key" >ds
	for i in $(seq -w 1 "$N"); do echo "dane-$i.bench.test"; done >dane
	for i in $(seq -w 1 "$N"); do echo "sts-$i.bench.test"; done >sts
	cat dane sts >domains
	date +%s >made
	)
}
if [ ! -f "$cache/made" ] || [ "$(cat "$cache/domains" 2>/dev/null | wc -l)" != $((2 * N)) ] ||
    [ $(( $(date +%s) - $(cat "$cache/made") )) -gt $((3 * 86400)) ]; then
	t0=$(date +%s.%N)
	gen
	echo "# generated the zone and certificates in $(echo "$(date +%s.%N) - $t0" | bc | cut -c1-5) s"
fi

# --- servers --------------------------------------------------------------
cat >"$work/nsd.conf" <<EOF
server:
	ip-address: $NSD
	port: 53
	do-ip6: no
	username: ""
	chroot: ""
	database: ""
	server-count: 1
	zonelistfile: "$work/nsd.zonelist"
	xfrdfile: "$work/nsd.xfrd"
	pidfile: "$work/nsd.pid"
	logfile: "$work/nsd.log"
remote-control:
	control-enable: no
zone:
	name: "bench.test."
	zonefile: "$cache/bench.test.zone.signed"
EOF
nsd -c "$work/nsd.conf"
for _ in $(seq 100); do [ -s "$work/nsd.pid" ] && break; sleep 0.1; done
pids+=("$(cat "$work/nsd.pid")")

unbound_up() {
	local p
	if [ -s "$work/unbound.pid" ]; then
		p=$(cat "$work/unbound.pid")
		kill "$p" 2>/dev/null || true
		for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -f "$work/unbound.pid"
	cat >"$work/unbound.conf" <<EOF
server:
	interface: $RES
	do-ip6: no
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	username: ""
	chroot: ""
	directory: "$work"
	pidfile: "$work/unbound.pid"
	logfile: "$work/unbound.log"
	use-syslog: no
	local-zone: "test." nodefault
	val-log-level: 2
	log-servfail: yes
	trust-anchor-file: "$cache/ds"
stub-zone:
	name: "bench.test."
	stub-addr: $NSD
EOF
	unbound -c "$work/unbound.conf"
	for _ in $(seq 100); do
		dig +time=1 +tries=1 @$RES bench.test SOA >/dev/null 2>&1 && break
		sleep 0.1
	done
	# cold: only the zone's apex and keys are known now
}

cat >"$work/nginx.conf" <<EOF
worker_processes 1;
daemon on;
pid $work/nginx.pid;
error_log $work/nginx.err notice;
events { worker_connections 1024; }
http {
	access_log off;
	client_body_temp_path $work/t1;
	proxy_temp_path $work/t2;
	fastcgi_temp_path $work/t3;
	uwsgi_temp_path $work/t4;
	scgi_temp_path $work/t5;
	default_type text/plain;
	server {
		listen $WEB:443 ssl;
		server_name ~^mta-sts\.(?<d>[a-z0-9.-]+)\$;
		ssl_certificate $cache/web.crt;
		ssl_certificate_key $cache/web.key;
		location = /.well-known/mta-sts.txt {
			return 200 "version: STSv1\nmode: enforce\nmx: mx.\$d\nmax_age: 86400\n";
		}
	}
}
EOF
nginx -c "$work/nginx.conf" -e "$work/nginx.err"

cat >"$work/danests.conf" <<EOF
resolver $RES
ca_file $cache/ca.crt
cache_dir none
${BENCH_CONF:-}
EOF
nd=$(wc -l <"$cache/domains")
proj='{domain, verdict, reason, sts: (.sts.mode // null),
    hosts: [.hosts[] | {name, policy, reason}]}'

# The queries danests asks per domain, for dnsperf.
while read -r d; do
	echo "$d MX"; echo "mx.$d A"; echo "mx.$d AAAA"
	echo "_25._tcp.mx.$d TLSA"; echo "_mta-sts.$d TXT"
	case $d in sts-*) echo "mta-sts.$d A"; echo "mta-sts.$d AAAA" ;; esac
done <"$cache/domains" >"$work/queries"
nq=$(wc -l <"$work/queries")
# The policies, for curl --parallel.
while read -r d; do
	echo "url = \"https://mta-sts.$d/.well-known/mta-sts.txt\""
	echo "resolve = \"mta-sts.$d:443:$WEB\""
	echo 'output = "/dev/null"'
done <"$cache/sts" >"$work/curl.cfg"

# Reference: every domain decided alone (kept with the zone).
unbound_up
if [ ! -s "$cache/single" ] || [ "$cache/single" -ot "$cache/made" ]; then
	t0=$(date +%s.%N)
	while read -r d; do
		"$danests" check --json --config "$work/danests.conf" "$d" \
		    2>/dev/null
	done <"$cache/domains" | jq -c "$proj" >"$cache/single"
	echo "# single-domain runs: $nd in $(echo "$(date +%s.%N) - $t0" |
	    bc | cut -c1-6) s"
fi
cp "$cache/single" "$work/single"
echo "# single-domain verdicts: $(jq -r .verdict "$work/single" | sort |
    uniq -c | tr -s ' \n' ' ')"

# servfails - SERVFAILs unbound has logged so far (log-servfail)
servfails() {
	awk '/SERVFAIL </ { n++ } END { print n + 0 }' "$work/unbound.log" \
	    2>/dev/null || echo 0
}

# A warm run starts after unbound's cache of failed lookups (the
# SERVFAILs of upstream timeouts during a cold burst) has expired.
settle=${BENCH_SETTLE:-6}
warm=0

# batch LABEL DANESTS [old] - one run over every domain, compared; "old":
# an older danests has no -f, the domains go on its command line
batch() {
	local label=$1 bin=$2 t0 t1 rc diffs sf
	[ "$warm" = 1 ] && sleep "$settle"
	sf=$(servfails)
	t0=$(date +%s.%N)
	if [ "${3:-}" = old ]; then
		# shellcheck disable=SC2046
		"$bin" check --json --config "$work/danests.conf" \
		    $(cat "$cache/domains") >"$work/out" 2>/dev/null && rc=0 || rc=$?
	else
		"$bin" check --json --config "$work/danests.conf" \
		    -f "$cache/domains" >"$work/out" 2>/dev/null && rc=0 || rc=$?
	fi
	t1=$(date +%s.%N)
	jq -c "$proj" "$work/out" >"$work/batch"
	diff "$work/single" "$work/batch" >"$cache/diff-${label//[^a-z]/}" || true
	grep -v '"verdict":"deliver"' "$work/out" >"$cache/notdeliver-${label//[^a-z]/}" || true
	diffs=$(grep -c '^>' "$cache/diff-${label//[^a-z]/}" || true)
	printf '%-28s %7s s  exit %-3s differ %-4s %s\n' "$label" \
	    "$(echo "$t1 - $t0" | bc | cut -c1-6)" "$rc" "$diffs" \
	    "$(jq -r '"\(.verdict)/\(.reason)"' "$work/out" | sort | uniq -c |
	    awk '{ printf "%s:%s ", $2, $1 }')"
	echo "    unbound SERVFAILs meanwhile: $(( $(servfails) - sf ))"
}

floor() {
	local label=$1 t0 t1 out
	if command -v dnsperf >/dev/null; then
		out=$(dnsperf -s $RES -d "$work/queries" -n 1 -c 1 -q 200 -t 5 -D 2>&1)
		printf '%-28s %7s s  %s queries, %s lost, %s\n' "dnsperf $label" \
		    "$(echo "$out" | awk '/Run time \(s\)/ { print $4 }')" "$nq" \
		    "$(echo "$out" | awk '/Queries lost/ { print $3 }')" \
		    "$(echo "$out" | sed -n 's/^ *Response codes: *//p')"
	fi
	t0=$(date +%s.%N)
	curl -s --no-progress-meter --parallel --parallel-max 64 --cacert "$cache/ca.crt" \
	    -K "$work/curl.cfg" || true
	t1=$(date +%s.%N)
	printf '%-28s %7s s  %s policies\n' "curl --parallel $label" \
	    "$(echo "$t1 - $t0" | bc | cut -c1-6)" "$(wc -l <"$cache/sts")"
}

echo "# $nd domains ($N DANE, $N MTA-STS), $nq DNS queries, unbound defaults"
printf '%-28s %9s  %s\n' run time result
unbound_up; batch "danests check -f, cold" "$danests"
warm=1 batch "danests check -f, warm" "$danests"
if [ -n "$other" ]; then
	unbound_up; batch "other danests, cold" "$other" old
	warm=1 batch "other danests, warm" "$other" old
fi
unbound_up; floor cold
sleep "$settle"; floor warm

# danests-postfix: every domain asked once over C connections, a fresh
# daemon each time (nothing in its memory), unbound cold then warm.
dp=$build/postfix-tlsproxy/danests-postfix
[ -x "$dp" ] && [ "${BENCH_POSTFIX:-1}" != 0 ] || exit 0
printf 'include %s\n\n[postfix]\nlisten inet:127.0.0.1:18473\nuser nobody\n' \
    "$work/danests.conf" >"$work/dp.conf"
# sm_run LABEL CLIENTS DOMAINFILE PORT CMD... - start a server, ask
# every domain once, stop it
sm_run() {
	local label=$1 c=$2 file=$3 port=$4 p sf out
	shift 4
	[ "$warm" = 1 ] && sleep "$settle"
	"$@" >"$work/sm.log" 2>&1 &
	p=$!
	for _ in $(seq 100); do
		python3 -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" \
		    2>/dev/null && break
		sleep 0.1
	done
	sf=$(servfails)
	out=$(python3 tests/bench/smburst.py "127.0.0.1:$port" postfix "$c" \
	    "$file")
	printf '%-28s %s, unbound SERVFAILs %s\n' "$label" "$out" \
	    "$(( $(servfails) - sf ))"
	kill "$p"
	wait "$p" 2>/dev/null || true
}
for c in 64 256; do
	unbound_up
	sm_run "danests-postfix $c, cold" "$c" "$cache/domains" 18473 \
	    "$dp" -d -c "$work/dp.conf"
	warm=1 sm_run "danests-postfix $c, warm" "$c" "$cache/domains" 18473 \
	    "$dp" -d -c "$work/dp.conf"
done

# The peer, postfix-mta-sts-resolver (only the TXT lookup and the fetch),
# on the MTA-STS half, and danests-postfix on the same half.  The peer
# reads /etc/resolv.conf and the system CA bundle: both are replaced in
# a mount namespace of its own.
command -v mta-sts-daemon >/dev/null && [ "${BENCH_PEER:-1}" != 0 ] || exit 0
printf 'nameserver %s\n' $RES >"$work/resolv.conf"
cat /etc/ssl/certs/ca-certificates.crt "$cache/ca.crt" >"$work/bundle.crt"
printf 'host: 127.0.0.1\nport: 18471\nreuse_port: true\nshutdown_timeout: 1\ncache:\n  type: internal\n  options:\n    cache_size: 10000\ndefault_zone:\n  strict_testing: false\n  timeout: 4\n' \
    >"$work/peer.yml"
# unshare, sh and the daemon are one process (exec): sm_run can stop it
peer=(unshare -m --propagation private sh -c 'mount --bind "$1" /etc/resolv.conf &&
    mount --bind "$2" /etc/ssl/certs/ca-certificates.crt &&
    exec mta-sts-daemon -v warn -c "$3"' peer
    "$work/resolv.conf" "$work/bundle.crt" "$work/peer.yml")
for c in 64 256; do
	unbound_up
	sm_run "peer $c, MTA-STS, cold" "$c" "$cache/sts" 18471 "${peer[@]}"
	warm=1 sm_run "peer $c, MTA-STS, warm" "$c" "$cache/sts" 18471 "${peer[@]}"
	unbound_up
	sm_run "danests-postfix $c, STS, cold" "$c" "$cache/sts" 18473 \
	    "$dp" -d -c "$work/dp.conf"
	warm=1 sm_run "danests-postfix $c, STS, warm" "$c" "$cache/sts" 18473 \
	    "$dp" -d -c "$work/dp.conf"
done
