#!/bin/bash
# tests/integration/daemons.sh - danests-postfix and danests-relay as
# daemons: clients that hold their slots (slowloris), a low descriptor
# limit, `danests cache purge` reaching a running daemon, privileges (the
# pid file written as the service user, sockets removed at exit, root and
# foreign directories refused), SIGHUP while a lookup is in flight (one
# cache environment per process: LMDB's locks on lock.mdb survive the old
# context), and `systemd-analyze verify` of the units.
# Needs the test bed (tests/testbed/up.sh) and root.  Usage: daemons.sh
# BUILD_DIR
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
pf=$build/postfix-tlsproxy/danests-postfix
relay=$build/opensmtpd/danests-relay
danests=$build/core/danests
W=$build/daemons-it
# shellcheck source=lib.sh
. "$top/tests/integration/lib.sh"
CLIENTS=$top/tests/integration/slowclients.py


[ -x "$pf" ] || { echo "not ok 1 build # no $pf"; exit 1; }
[ -f "$E2E_CA" ] || { echo "skip daemons (test bed not up)"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "skip daemons (needs root)"; exit 0; }
rm -rf "$W"
mkdir -p "$W/cache" "$W/run" "$W/rootdir"
chown nobody "$W/cache" "$W/run"
chmod 755 "$W/rootdir"

# pfconf NAME KEY-VALUE... - $W/NAME.conf: the test bed's core settings,
# then [postfix] with user nobody and the given lines
pfconf() {
	local name=$1 l
	shift
	{
		echo "resolver $E2E_RESOLVER"
		echo "ca_file $E2E_CA"
		echo "cache_dir $W/cache"
		echo "[postfix]"
		echo "user nobody"
		for l in "$@"; do echo "$l"; done
	} >"$W/$name.conf"
	echo "$W/$name.conf"
}

# start_pf NAME PORT LINES... - danests-postfix as nobody on 127.0.0.1:PORT
start_pf() {
	local name=$1 port=$2
	shift 2
	"$pf" -d -c "$(pfconf "$name" "listen inet:127.0.0.1:$port" "$@")" \
	    2>"$W/$name.log" &
	pid=$!
	pids+=("$pid")
	listening 127.0.0.1:$port ||
	    { echo "# $name did not start: $(tail -3 "$W/$name.log")"; return 1; }
}

# cpu_ticks PID - user + system clock ticks of a process
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }

# ask PORT DOMAIN - one socketmap request; prints the answer's first word
ask() {
	"$PY" - "$1" "$2" <<'EOP' 2>&1
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=15)
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

# --- 9.5: slow clients must not lock good ones out -----------------------
start_pf slow 18470 "max_clients 40" || notok slow-start
out=$("$PY" "$CLIENTS" 127.0.0.1 18470 60 25 dane-ee.test slow 2>&1)
good=$(sed -n 's/^good //p' <<<"$out")
echo "# slowloris (60 slow clients, max_clients 40): good sent/answered: $good"
sent=${good% *} answered=${good#* }
check slowloris-good-answered '[ -n "$good" ] && [ "$sent" -ge 20 ] && [ "$sent" = "$answered" ]' \
    "$(grep -v '^good' <<<"$out" | sort | uniq -c | head -3 | tr '\n' ' ')"
check slowloris-room-made 'grep -q "to make room" "$W/slow.log"'
# a client that never finishes its request is closed at its deadline
exec 7<>/dev/tcp/127.0.0.1/18470
printf '30:postfix exa' >&7
t0=$(date +%s)
timeout 20 cat <&7 >/dev/null
t1=$(date +%s)
exec 7>&-
check slowloris-deadline '[ $((t1 - t0)) -ge 9 ] && [ $((t1 - t0)) -le 13 ]' "closed after $((t1 - t0)) s"

# --- issue: cache purge reaches the daemon's memory ----------------------
resolutions() { grep -c "]: dane-ee.test: deliver (" "$W/slow.log"; }
# A decision is kept no longer than its DNS TTLs allow (the test bed's
# resolver caches 60 s at most, counting down): ask once, then again at
# once; a TTL that ran out just between the two makes the first of them
# resolve afresh, so up to three tries, each a pair.
for try in 1 2 3; do
	ask 18470 dane-ee.test >/dev/null
	r0=$(resolutions)
	a=$(ask 18470 dane-ee.test)
	r1=$(resolutions)
	[ "$r1" = "$r0" ] && break
done
check purge-before-reused '[ "$a" = OK ] && [ "$r1" = "$r0" ]' "answer $a, resolutions $r0 -> $r1"
# as the daemons' user: the cache refuses a directory of another user
setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$danests" cache --cache-dir "$W/cache" purge dane-ee.test >/dev/null
a=$(ask 18470 dane-ee.test)
r2=$(resolutions)
check purge-reaches-daemon '[ "$a" = OK ] && [ "$r2" = $((r1 + 1)) ]' "answer $a, resolutions $r1 -> $r2"
kill -HUP "$pid"
sleep 0.5
a=$(ask 18470 dane-ee.test)
r3=$(resolutions)
check sighup-drops-memory '[ "$a" = OK ] && [ "$r3" -gt "$r2" ]' "answer $a, resolutions $r2 -> $r3"
# a tempfail is kept tempfail_memory_ttl seconds (default 5), then asked
# again: a domain that just failed is not resolved for every request
tempfails() { grep -c "]: bogus-mx.test: tempfail (" "$W/slow.log"; }
t0=$(tempfails)
a1=$(ask 18470 bogus-mx.test)
a2=$(ask 18470 bogus-mx.test)
t1=$(tempfails)
check tempfail-kept-briefly '[ "${a1%% *}" = TEMP ] && [ "${a2%% *}" = TEMP ] && [ "$t1" = $((t0 + 1)) ]' \
    "answers $a1 / $a2, resolutions $t0 -> $t1"
sleep 6
a3=$(ask 18470 bogus-mx.test)
t2=$(tempfails)
check tempfail-asked-again '[ "${a3%% *}" = TEMP ] && [ "$t2" = $((t1 + 1)) ]' \
    "answer $a3, resolutions $t1 -> $t2"
cleanup

# --- 9.6: more clients than descriptors ----------------------------------
f=$(pfconf nofile "listen inet:127.0.0.1:18471" "max_clients 1000")
(ulimit -n 200 && exec "$pf" -d -c "$f" 2>"$W/nofile.log") &
pid=$!
pids+=("$pid")
listening 127.0.0.1:18471 ||
    notok nofile-start "$(tail -3 "$W/nofile.log")"
check nofile-fitted 'grep -q "max_clients lowered from 1000 to 72" "$W/nofile.log"'
c0=$(cpu_ticks "$pid")
l0=$(wc -l <"$W/nofile.log")
out=$("$PY" "$CLIENTS" 127.0.0.1 18471 400 15 dane-ta.test idle 2>&1)
c1=$(cpu_ticks "$pid")
l1=$(wc -l <"$W/nofile.log")
good=$(sed -n 's/^good //p' <<<"$out")
hz=$(getconf CLK_TCK)
echo "# nofile (ulimit -n 200, 400 idle clients, 15 s): good $good, cpu $((c1 - c0)) ticks, $((l1 - l0)) log lines"
check nofile-cpu-bounded '[ $((c1 - c0)) -lt $((3 * hz)) ]' "$((c1 - c0)) ticks"
check nofile-log-bounded '[ $((l1 - l0)) -lt 100 ]' "$((l1 - l0)) lines"
check nofile-good-answered '[ -n "$good" ] && [ "${good% *}" = "${good#* }" ]' "$good"
a=$(ask 18471 dane-ee-full.test)
check nofile-after-clients '[ "$a" = OK ]' "answer $a"
cleanup

# --- every slot waits on a lookup: a new client waits, is not closed ---
# max_clients 2, both clients waiting on sts-slow.test (its policy host
# sends a byte a second: the lookup runs to lookup_timeout); a third
# client must be answered once a slot frees, never closed unanswered
start_pf full 18472 "max_clients 2" "lookup_timeout 3" || notok full-start
(ask 18472 sts-slow.test >"$W/full.1") &
j1=$!
(ask 18472 sts-slow.test >"$W/full.2") &
j2=$!
sleep 0.5
t0=$(date +%s)
a=$(ask 18472 dane-ee.test)
t1=$(date +%s)
wait "$j1" "$j2"
check full-waits-in-queue '[ "$a" = OK ] && [ $((t1 - t0)) -ge 2 ]' \
    "answer $a after $((t1 - t0)) s; the slow ones: $(cat "$W/full.1" "$W/full.2" | tr '\n' ' ')"
check full-slow-answered 'grep -q TEMP "$W/full.1" && grep -q TEMP "$W/full.2"' \
    "$(cat "$W/full.1" "$W/full.2" | tr '\n' ' ')"
cleanup

# --- 9.8: privileges -----------------------------------------------------
"$pf" -d -c "$(pfconf privs "listen unix:$W/run/policy" "pidfile $W/run/pid")" \
    2>"$W/privs.log" &
pid=$!
pids+=("$pid")
e2e_wait 10 test -S "$W/run/policy" -a -s "$W/run/pid"
check pf-runs-as-user '[ "$(ps -o user= -p "$pid")" = nobody ]'
check pf-pidfile-as-user '[ "$(stat -c %U "$W/run/pid" 2>/dev/null)" = nobody ] && [ "$(cat "$W/run/pid")" = "$pid" ]'
kill "$pid"
wait "$pid"
check pf-clean-exit '[ ! -e "$W/run/policy" ] && [ ! -e "$W/run/pid" ]' "$(ls "$W/run")"
pids=()
f=$(pfconf root "user root")
check pf-refuses-root '! "$pf" -n -c "$f" 2>/dev/null && ! timeout 10 "$pf" -d -c "$f" 2>/dev/null'
f=$(pfconf foreign "listen unix:$W/rootdir/policy")
check pf-refuses-foreign-dir '! "$pf" -n -c "$f" 2>"$W/n.err" && grep -q "not writable by user nobody" "$W/n.err"'
f=$(pfconf foreign-pid "pidfile $W/rootdir/pid")
check pf-refuses-foreign-piddir '! "$pf" -n -c "$f" 2>"$W/n.err" && grep -q "not writable by user nobody" "$W/n.err"'
echo keep >"$W/run/file"
chown nobody "$W/run/file"
f=$(pfconf keep "listen unix:$W/run/file")
check pf-keeps-non-socket '! timeout 10 "$pf" -d -c "$f" 2>/dev/null && [ "$(cat "$W/run/file")" = keep ]'

cat >"$W/relay.conf" <<EOC
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/cache
[relay]
listen unix:$W/run/lmtp
user nobody
helo_name relay-it.test
tmpdir $W/run
EOC
"$relay" -d -c "$W/relay.conf" 2>"$W/relay.log" &
pid=$!
pids+=("$pid")
e2e_wait 10 test -S "$W/run/lmtp"
check relay-runs-as-user '[ "$(ps -o user= -p "$pid")" = nobody ]'
kill "$pid"
wait "$pid"
pids=()
check relay-socket-removed '[ ! -e "$W/run/lmtp" ]'
sed -i "s|^listen .*|listen unix:$W/rootdir/lmtp|" "$W/relay.conf"
check relay-refuses-foreign-dir '! "$relay" -n -c "$W/relay.conf" 2>/dev/null'
sed -i "s|^listen .*|listen 127.0.0.1:18472|; s|^user .*|user root|" "$W/relay.conf"
check relay-refuses-root '! "$relay" -n -c "$W/relay.conf" 2>/dev/null'
sed -i "s|^user .*|user nobody|" "$W/relay.conf"
(ulimit -n 300 && exec "$relay" -d -c "$W/relay.conf" 2>"$W/relay-nofile.log") &
pid=$!
pids+=("$pid")
listening 127.0.0.1:18472
check relay-nofile-fitted 'grep -q "max_sessions lowered from 200 to 36" "$W/relay-nofile.log"'
c0=$(cpu_ticks "$pid")
"$PY" - <<'EOP'
import socket, time
s = []
for _ in range(300):
    try:
        s.append(socket.create_connection(("127.0.0.1", 18472), timeout=2))
    except OSError:
        pass
time.sleep(5)
EOP
c1=$(cpu_ticks "$pid")
check relay-nofile-cpu-bounded '[ $((c1 - c0)) -lt $((2 * hz)) ]' "$((c1 - c0)) ticks"
greet=$(timeout 5 "$PY" -c 'import socket; s = socket.create_connection(("127.0.0.1", 18472), timeout=3); print(s.recv(512).decode().strip())' 2>&1)
check relay-nofile-serves-after '[ "${greet#220 }" != "$greet" ]' "$greet"
cleanup

# --- SIGHUP: the relay checks MX certificates against the new ca_file ---
# The policy of sts-enforce.test is cached first; the relay starts with a
# CA store that lacks the test CA (the MX certificate check fails: 4xx),
# then ca_file is fixed and SIGHUP must reach the deliveries too.
mkdir -p "$W/rcache"
"$danests" check --resolver "$E2E_RESOLVER" --ca-file "$E2E_CA" \
    --cache-dir "$W/rcache" sts-enforce.test >/dev/null 2>&1
chown -R nobody "$W/rcache"
openssl req -x509 -newkey rsa:2048 -nodes -keyout "$W/other.key" \
    -out "$W/other.crt" -subj /CN=other-ca -days 2 >/dev/null 2>&1
cat >"$W/relay-ca.conf" <<EOC
resolver $E2E_RESOLVER
ca_file $W/other.crt
cache_dir $W/rcache
[relay]
listen 127.0.0.1:18473
user nobody
helo_name relay-it.test
tmpdir $W/run
connect_timeout 5
tls_timeout 5
EOC
"$relay" -d -c "$W/relay-ca.conf" 2>"$W/relay-ca.log" &
pid=$!
pids+=("$pid")
listening 127.0.0.1:18473
# deliver_one - one message to postmaster@sts-enforce.test; the replies
deliver_one() { lmtp_one 18473 sts-enforce.test; }
e2e_mail_reset
out=$(deliver_one)
check relay-ca-old-refused 'grep -Eq "\|354 [^|]*\|4[0-9]{2} 4\.7\.[0-9]" <<<"$out" && [ "$(e2e_mail_count sts-enforce.test)" = 0 ]' "$out"
sed -i "s|^ca_file .*|ca_file $E2E_CA|" "$W/relay-ca.conf"
kill -HUP "$pid"
e2e_wait 10 grep -q "configuration reloaded" "$W/relay-ca.log"
out=$(deliver_one)
check relay-ca-reloaded 'grep -Eq "\|354 [^|]*\|250 2\.0\.0 delivered" <<<"$out" && [ "$(e2e_mail_count sts-enforce.test)" = 1 ]' "$out"
cleanup

# --- SIGHUP while a lookup is in flight: one cache environment ----------
# Two reloads in a row keep both earlier contexts until they are idle
# (core/daemon's list of retired contexts), then free both.
# A reload makes a new core context while the old one finishes a lookup
# (sts-slow.test: its policy host sends one byte a second until
# fetch_timeout).  Both contexts use the cache; the process must hold one
# LMDB environment, so that freeing the old context does not drop the
# process's fcntl locks on lock.mdb under the new one.
# lock_fds PID FILE - descriptors of PID open on FILE
lock_fds() { find "/proc/$1/fd" -lname "$2" 2>/dev/null | wc -l; }
# lmdb_locked PID FILE - PID holds an fcntl (POSIX) lock on FILE
lmdb_locked() {
	local ino
	ino=$(stat -c %i "$2") || return 1
	awk -v p="$1" -v i="$ino" '$2 == "POSIX" && $5 == p &&
	    $6 ~ (":" i "$") { f = 1 } END { exit !f }' /proc/locks
}
# delivered REPLIES... - every LMTP exchange ended in 250 after DATA
delivered() {
	local r
	for r; do
		grep -Eq "\|354 [^|]*\|250 " <<<"$r" || return 1
	done
}
# hup_conf FILE SECTION LINES... - core settings with a short fetch bound
hup_conf() {
	local f=$1 sect=$2 l
	shift 2
	{
		echo "resolver $E2E_RESOLVER"
		echo "ca_file $E2E_CA"
		echo "cache_dir $W/hcache"
		echo "fetch_timeout 3"
		echo "[$sect]"
		echo "user nobody"
		for l in "$@"; do echo "$l"; done
	} >"$f"
}
lk=$W/hcache/lock.mdb
for who in postfix relay; do
	rm -rf "$W/hcache"
	mkdir -p "$W/hcache"
	chown nobody "$W/hcache"
	if [ $who = postfix ]; then
		port=18474
		hup_conf "$W/hup-pf.conf" postfix "listen inet:127.0.0.1:$port"
		"$pf" -d -c "$W/hup-pf.conf" 2>"$W/hup-$who.log" &
	else
		port=18475
		hup_conf "$W/hup-relay.conf" relay "listen 127.0.0.1:$port" \
		    "helo_name relay-it.test" "tmpdir $W/run"
		"$relay" -d -c "$W/hup-relay.conf" 2>"$W/hup-$who.log" &
	fi
	pid=$!
	pids+=("$pid")
	listening 127.0.0.1:$port ||
	    notok "$who-hup-start" "$(tail -3 "$W/hup-$who.log")"
	# lookup - one lookup through this daemon; its answer
	lookup() {
		if [ $who = postfix ]; then ask $port "$1"; else lmtp_one $port "$1"; fi
	}
	first=$(lookup dane-ee.test)
	(lookup sts-slow.test >"$W/hup-$who.slow") &
	slow=$!
	sleep 1
	kill -HUP "$pid"
	e2e_wait 10 grep -q "configuration reloaded" "$W/hup-$who.log"
	# two contexts now, the old one waiting for sts-slow.test
	fds=$(lock_fds "$pid" "$lk")
	inflight=$(kill -0 "$slow" 2>/dev/null && echo yes || echo no)
	check "$who-hup-one-env" '[ "$fds" = 1 ] && [ $inflight = yes ]' \
	    "descriptors on lock.mdb: $fds, lookup still in flight: $inflight"
	# a second reload while the lookup is still in flight: both earlier
	# contexts are kept, the busy one is not freed under its lookup
	kill -HUP "$pid"
	e2e_wait 10 sh -c "[ \$(grep -c 'configuration reloaded' '$W/hup-$who.log') = 2 ]"
	inflight=$(kill -0 "$slow" 2>/dev/null && echo yes || echo no)
	freed=$(grep -c "context of an earlier configuration freed" "$W/hup-$who.log")
	check "$who-hup-twice-kept" '[ $inflight = yes ] && [ "$freed" -le 1 ]' \
	    "lookup still in flight: $inflight, contexts freed: $freed"
	wait "$slow"
	# the old contexts are freed once idle (relay: 0.2 s, postfix: 5 s)
	sleep 6
	check "$who-hup-slow-answered" '[ -n "$(cat "$W/hup-$who.slow")" ] && ! grep -q cancelled "$W/hup-$who.slow" "$W/hup-$who.log"' \
	    "$(cat "$W/hup-$who.slow"; grep cancelled "$W/hup-$who.log" | head -2)"
	freed=$(grep -c "context of an earlier configuration freed" "$W/hup-$who.log")
	check "$who-hup-twice-freed" '[ "$freed" = 2 ] && grep -q "freed (0 still busy)" "$W/hup-$who.log"' \
	    "contexts freed: $freed"
	check "$who-hup-lock-kept" 'lmdb_locked "$pid" "$lk" && [ "$(lock_fds "$pid" "$lk")" = 1 ]' \
	    "$(grep -c " $pid " /proc/locks) locks of $pid, $(lock_fds "$pid" "$lk") descriptors"
	list=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$danests" cache --cache-dir "$W/hcache" list 2>&1)
	check "$who-hup-list" 'grep -q dane-ee.test <<<"$list" && grep -q sts-slow.test <<<"$list"' "$list"
	again=$(lookup dane-ee.test)
	other=$(lookup dane-ee-full.test)
	if [ $who = postfix ]; then
		check "$who-hup-lookups" '[ "$first" = OK ] && [ "$again" = OK ] && [ "$other" = OK ]' \
		    "$first $again $other"
	else
		check "$who-hup-lookups" 'delivered "$first" "$again" "$other"' \
		    "$first / $again / $other"
	fi
	check "$who-hup-lock-after" 'lmdb_locked "$pid" "$lk"'
	cleanup
done

# --- 9.8: the units ------------------------------------------------------
if command -v systemd-analyze >/dev/null; then
	mkdir -p "$W/units"
	for u in "$top/postfix-tlsproxy/danests-postfix.service" \
	    "$top/opensmtpd/danests-relay.service"; do
		b=$(basename "$u")
		# the installed binaries are the build's here
		sed "s|/usr/sbin/danests-postfix|$pf|g; s|/usr/sbin/danests-relay|$relay|g" \
		    "$u" >"$W/units/$b"
		out=$(cd "$W/units" && systemd-analyze verify --man=no "$b" 2>&1)
		rc=$?
		check "unit-verify-$b" '[ $rc = 0 ] && [ -z "$out" ]' "$out"
		check "unit-sandbox-$b" 'grep -q "^NoNewPrivileges=yes" "$u" && grep -q "^ProtectSystem=strict" "$u" && grep -q "^PrivateTmp=yes" "$u" && grep -q "^LimitNOFILE=" "$u" && grep -q "^CapabilityBoundingSet=" "$u" && ! grep -q "^StateDirectory" "$u"'
	done
else
	notok unit-verify "systemd-analyze missing (tests/setup.sh installs systemd)"
fi
[ $fails = 0 ]
