#!/bin/bash
# tests/integration/relay.sh - danests-relay against bad input and failing
# peers, on the loopback test bed: malformed LMTP, huge lines, SIZE, a
# client vanishing mid-DATA, receivers that stall or drop the connection
# mid-TLS, a MITM certificate, a receiver without STARTTLS, TLS reporting
# that cannot record, TLS-Required: No, a cache purge
# reaching the decisions the relay keeps in memory.  After each,
# the relay must still serve, and nothing may reach a receiver in the clear
# or unauthenticated when the decision forbids it.
#
#   relay.sh BUILD_DIR        prints "ok NAME" / "not ok NAME"
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
relay=$build/opensmtpd/danests-relay
W=$build/relay-it
# shellcheck source=lib.sh
. "$here/lib.sh"
PORT=18464
PORT2=18465		# second relay: MX port of the misbehaving peers
PORT3=18469		# a relay: TLS reporting without a cache
PEER=127.10.2.1		# misbehaving peers: the MX address, other ports
STALL_PORT=2601
DROP_PORT=2602

[ -x "$relay" ] || { echo "not ok relay-build # no $relay"; exit 1; }
[ -f "$E2E_CA" ] || { echo "skip relay (test bed not up)"; exit 0; }
rm -rf "$W"
mkdir -p "$W/cache" "$W/tmp"
chown nobody "$W/cache" "$W/tmp" 2>/dev/null

# conf FILE PORT SMTP_PORT [EXTRA] - a relay configuration
conf() {
	cat >"$1" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/cache

[relay]
listen 127.0.0.1:$2
user nobody
helo_name relay-it.test
tmpdir $W/tmp
message_size_max 200000
memory_max 4096
idle_timeout 10
transaction_timeout 30
connect_timeout 3
greeting_timeout 3
tls_timeout 3
mail_timeout 3
rcpt_timeout 3
data_timeout 3
block_timeout 3
dot_timeout 5
smtp_port $3
${4:-}
EOF
}
conf "$W/relay.conf" $PORT 25
conf "$W/relay2.conf" $PORT2 $STALL_PORT "max_deliveries 2"

"$relay" -d -c "$W/relay.conf" >"$W/relay.log" 2>&1 &
pids+=($!)
"$relay" -d -c "$W/relay2.conf" >"$W/relay2.log" 2>&1 &
pids+=($!)

# misbehaving peers: STALL_PORT accepts and never greets; DROP_PORT
# greets, offers STARTTLS, says 220 and closes before the handshake
"$PY" - "$PEER" $STALL_PORT $DROP_PORT <<'EOF' >"$W/peers.log" 2>&1 &
import socket, sys, threading, time
host, stall, drop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
def serve(port, fn):
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((host, port)); s.listen(16)
    while True:
        c, _ = s.accept()
        threading.Thread(target=fn, args=(c,), daemon=True).start()
def stall_fn(c):
    time.sleep(60); c.close()
def drop_fn(c):
    f = c.makefile("rb")
    c.sendall(b"220 drop.test ESMTP\r\n")
    while True:
        l = f.readline()
        if not l: break
        v = l[:4].upper()
        if v in (b"EHLO", b"HELO"):
            c.sendall(b"250-drop.test\r\n250 STARTTLS\r\n")
        elif v == b"STAR":
            c.sendall(b"220 go ahead\r\n"); time.sleep(0.2); break
        else:
            c.sendall(b"250 ok\r\n")
    c.close()
threading.Thread(target=serve, args=(stall, stall_fn), daemon=True).start()
serve(drop, drop_fn)
EOF
pids+=($!)

listening 127.0.0.1:$PORT 127.0.0.1:$PORT2 $PEER:$DROP_PORT ||
    { echo "not ok relay-start # $(tail -3 "$W/relay.log")"; exit 1; }

# expect NAME PATTERN OUTPUT - OUTPUT (one reply per line) matches the
# extended regex PATTERN (lines joined by '|')
expect() {
	local joined
	joined=$(printf '%s' "$3" | tr '\n' '|')
	if printf '%s' "$joined" | grep -Eq "$2"; then
		e2e_ok "$1"
	else
		e2e_notok "$1" "got: $joined"
	fi
}

e2e_mail_reset

out=$(lmtp $PORT <<'EOF'
> XYZZY
< 1
> EHLO x
< 1
> MAIL FROM:<a@b.test>
< 1
> LHLO it.test
< 1
> RCPT TO:<postmaster@dane-ee.test>
< 1
> MAIL FROM:nobrackets
< 1
> MAIL FROM:<s@relay-it.test> AUTH=x
< 1
> DATA
< 1
> QUIT
< 1
EOF
)
expect malformed-lmtp '^220 .*\|500 5\.5\.1.*\|500 5\.5\.1 .*LHLO.*\|503 5\.5\.1 LHLO first\|250-?.*\|503 5\.5\.1 MAIL first\|501 5\.5\.4.*\|555 5\.5\.4.*\|503 5\.5\.1.*\|221 ' "$out"

out=$(lmtp $PORT <<'EOF'
> LHLO it.test
< 1
! 100000
< 1
> NOOP
< 1
> QUIT
< 1
EOF
)
expect huge-line '500 5\.5\.2 line too long\|250 2\.0\.0 ok\|221' "$out"

out=$(lmtp $PORT <<'EOF'
> LHLO it.test
< 1
> MAIL FROM:<s@relay-it.test> SIZE=999999999
< 1
> MAIL FROM:<s@relay-it.test> SIZE=1000
< 1
> RCPT TO:<size@insecure.test>
< 1
> DATA
< 1
= 300000
< 1
> QUIT
< 1
EOF
)
expect size-limit '552 5\.3\.4 .*\|250 2\.1\.0.*\|250 2\.1\.5.*\|354 .*\|552 5\.3\.4 ' "$out"
[ "$(e2e_mail_count insecure.test)" = 0 ] && e2e_ok size-limit-not-delivered ||
    e2e_notok size-limit-not-delivered

# vanish mid-DATA: nothing delivered, nothing acknowledged
out=$(lmtp $PORT <<'EOF'
> LHLO it.test
< 1
> MAIL FROM:<s@relay-it.test>
< 1
> RCPT TO:<vanish@dane-ee.test>
< 1
> DATA
< 1
> Subject: half a message
> 
> some text
close
EOF
)
sleep 1
if ! grep -rqs "half a message" "$E2E_MAIL"; then e2e_ok vanish-mid-data; else
	e2e_notok vanish-mid-data "a partial message was delivered"; fi

# big message spills to a file (memory_max 4096) and is delivered
out=$(lmtp_msg $PORT 100000 big@dane-ee.test)
expect spill-to-file '354 .*\|250 2\.0\.0 delivered to mx\.dane-ee\.test' "$out"

# MITM certificate, no STARTTLS, DANE mismatch: 4xx, nothing delivered
out=$(lmtp_msg $PORT 500 postmaster@dane-mitm.test \
    postmaster@dane-nostarttls.test postmaster@sts-certbad.test \
    postmaster@dane-ee.test)
expect mitm-cert '354 [^|]*\|451 4\.7\.5 [^|]*tlsa-invalid' "$out"
expect no-starttls '\|451 4\.7\.4 [^|]*STARTTLS not offered' "$out"
expect sts-certbad '\|451 4\.7\.5 [^|]*(certificate|validation)' "$out"
expect still-serving '\|250 2\.0\.0 delivered to mx\.dane-ee\.test[^|]*\|221' "$out"
bad=""
for d in dane-mitm.test dane-nostarttls.test sts-certbad.test; do
	[ "$(e2e_mail_count $d)" = 0 ] || bad="$bad $d"
done
[ -z "$bad" ] && e2e_ok never-downgraded || e2e_notok never-downgraded "delivered to:$bad"

# RFC 8689 "TLS-Required: No" (folded, lower case) holds for the whole
# message: a DANE mismatch and an MX outside the MTA-STS policy are
# delivered with TLS, not deferred; an MX RRset DNSSEC finds bogus still
# defers (no route), a null MX still bounces.  The same field in the body
# changes nothing.
out=$(lmtp $PORT <<'EOF'
> LHLO it.test
< 1
> MAIL FROM:<s@relay-it.test>
< 1
> RCPT TO:<tlsreq@dane-mismatch.test>
< 1
> RCPT TO:<tlsreq@sts-mismatch.test>
< 1
> RCPT TO:<tlsreq@bogus-mx.test>
< 1
> RCPT TO:<tlsreq@null-mx.test>
< 1
> DATA
< 1
> Subject: tlsreq header
> tls-required:
>  no
> 
> body
> .
< 4
> MAIL FROM:<s@relay-it.test>
< 1
> RCPT TO:<tlsreq-body@dane-mismatch.test>
< 1
> DATA
< 1
> Subject: tlsreq body
> 
> TLS-Required: No
> .
< 1
> QUIT
< 1
EOF
)
expect tls-required-no '354 [^|]*\|250 2\.0\.0 delivered to mx\.dane-mismatch\.test[^|]*\|250 2\.0\.0 delivered to [^|]*sts-mismatch\.test[^|]*\|451 4\.4\.3 [^|]*\|556 5\.1\.10 ' "$out"
expect tls-required-body '\|451 4\.7\.5 [^|]*tlsa-invalid[^|]*\|221' "$out"
if e2e_delivered_tls dane-mismatch.test && [ "$(e2e_mail_count dane-mismatch.test)" = 1 ] &&
    grep -q 'domain=dane-mismatch.test TLS-Required: No: DANE and MTA-STS not enforced' "$W/relay.log" &&
    grep -q 'rcpt=<tlsreq@dane-mismatch.test> .* tls_required=no status=250' "$W/relay.log"; then
	e2e_ok tls-required-tls-and-logged
else
	e2e_notok tls-required-tls-and-logged "$(e2e_mail_summary dane-mismatch.test | tr '\n' ' ')"
fi

# TLS reporting that cannot record (tls_reports yes, cache_dir none)
# delays and fails no delivery; the lost results are logged, once for
# two messages (at most one line a minute)
sed -e "s|^cache_dir .*|cache_dir none\ntls_reports yes|" "$W/relay.conf" |
    sed -e "s|^listen .*|listen 127.0.0.1:$PORT3|" >"$W/relay-rpt.conf"
"$relay" -d -c "$W/relay-rpt.conf" >"$W/relay-rpt.log" 2>&1 &
pids+=($!)
e2e_wait 10 sh -c "ss -Hltn 'src 127.0.0.1:$PORT3' | grep -q LISTEN"
out=$(lmtp $PORT3 <<'EOF'
> LHLO it.test
< 1
> MAIL FROM:<s@relay-it.test>
< 1
> RCPT TO:<rpt@dane-ee.test>
< 1
> RCPT TO:<rpt@dane-mismatch.test>
< 1
> DATA
< 1
= 500
< 2
> MAIL FROM:<s@relay-it.test>
< 1
> RCPT TO:<rpt2@dane-ee.test>
< 1
> DATA
< 1
= 500
< 1
> QUIT
< 1
EOF
)
expect report-error-no-delay '354 [^|]*\|250 2\.0\.0 delivered to mx\.dane-ee\.test[^|]*\|451 4\.7\.5 [^|]*tlsa-invalid[^|]*\|.*250 2\.0\.0 delivered to mx\.dane-ee\.test[^|]*\|221' "$out"
n=$(grep -c 'TLS report result not recorded: no cache' "$W/relay-rpt.log")
if [ "$n" = 1 ] && grep -q 'tls_reports yes without a cache' "$W/relay-rpt.log"; then
	e2e_ok report-error-logged-once
else
	e2e_notok report-error-logged-once "$n lines"
fi

# `danests cache purge` reaches the relay's memory: once dane-ee.test's
# TLSA record matches no certificate, the decision the relay keeps (from
# the delivery above) still delivers; after the purge the relay resolves
# again and defers, as the new decision says.
deliver_dane_ee() {
	lmtp_msg $PORT 300 postmaster@dane-ee.test
}
purge_dane_ee() {
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$build/core/danests" cache --cache-dir "$W/cache" purge \
	    dane-ee.test >/dev/null
}
# A kept decision lives no longer than its DNS TTLs, which count down in
# the resolver's cache: start from a fresh one (zone dropped from the
# resolver, the relay's memory purged, one delivery), so it is still kept
# when the record changes below.
"$top/tests/testbed/dnsedit.sh" dane-ee.test >/dev/null
purge_dane_ee
deliver_dane_ee >/dev/null
"$top/tests/testbed/dnsedit.sh" dane-ee.test \
    GOOD_SPKI_SHA256="$(printf '%064d' 0)" >/dev/null
out=$(deliver_dane_ee)
expect memory-before-purge '\|250 2\.0\.0 delivered to mx\.dane-ee\.test' "$out"
purge_dane_ee
out=$(deliver_dane_ee)
expect purge-reaches-relay '\|451 4\.7\.5 [^|]*tlsa-invalid' "$out"
"$top/tests/testbed/dnsedit.sh" dane-ee.test >/dev/null
purge_dane_ee

# max_deliveries 2 (relay2, every MX stalls 3 s at the greeting): session
# A delivers five domains, session B one domain half a second later.  At
# most two delivery threads run over both sessions, and B waits for one
# slot, not behind all of A's domains (sessions are served in turn).
cat >"$W/cap.py" <<'EOF'
import socket, sys, threading, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
A, B = sys.argv[3].split(","), sys.argv[4].split(",")
def threads():
    for l in open("/proc/%d/status" % pid):
        if l.startswith("Threads:"):
            return int(l.split()[1])
base = threads()
peak, stop, res = [base], [False], {}
def sample():
    while not stop[0]:
        peak[0] = max(peak[0], threads()); time.sleep(0.02)
def session(name, doms):
    t0 = time.time()
    s = socket.create_connection(("127.0.0.1", port), timeout=60)
    f = s.makefile("rb")
    def rd():
        while True:
            l = f.readline()
            if not l or l[3:4] != b"-": return l.decode().strip()
    rd()
    for c in ["LHLO cap.test", "MAIL FROM:<s@relay-it.test>"] + \
            ["RCPT TO:<cap@%s>" % d for d in doms] + ["DATA"]:
        s.sendall(c.encode() + b"\r\n"); rd()
    s.sendall(b"Subject: cap\r\n\r\ncap\r\n.\r\n")
    r = [rd() for _ in doms]
    res[name] = (time.time() - t0, r)
    s.close()
th = threading.Thread(target=sample); th.start()
a = threading.Thread(target=session, args=("A", A)); a.start()
time.sleep(0.5)
b = threading.Thread(target=session, args=("B", B)); b.start()
a.join(); b.join(); stop[0] = True; th.join()
print("base %d peak %d" % (base, peak[0]))
for n in ("A", "B"):
    t, r = res.get(n, (0, []))
    print("%s %.1f %s" % (n, t, "|".join(r)))
EOF
out=$("$PY" "$W/cap.py" $PORT2 "${pids[1]}" \
    dane-ee.test,dane-ta.test,dane-ee-full.test,insecure.test,dane-mismatch.test \
    mixed.test)
echo "$out" >"$W/cap.out"
read -r _ base _ peak <<<"$(head -1 <<<"$out")"
# main thread + two sessions + two delivery threads
if [ -n "$peak" ] && [ "$peak" -le $((base + 4)) ]; then
	e2e_ok delivery-cap
else
	e2e_notok delivery-cap "threads $base at rest, $peak under load: $(tr '\n' ' ' <<<"$out")"
fi
ta=$(awk '$1 == "A" {print $2}' <<<"$out")
tb=$(awk '$1 == "B" {print $2}' <<<"$out")
if grep -Eq '^A [0-9.]+ 451 4\.4\.1([^|]*\|451 4\.4\.1){4}' <<<"$out" &&
    grep -q '^B [0-9.]* 451 4\.4\.1' <<<"$out" &&
    awk -v a="$ta" -v b="$tb" 'BEGIN { exit !(b + 0 > 0 && b + 0 < 8.5 && b + 0 < a + 0) }'; then
	e2e_ok delivery-cap-in-turn
else
	e2e_notok delivery-cap-in-turn "$(tr '\n' ' ' <<<"$out")"
fi

# stalling receiver: the relay answers 4xx within its bounds
t0=$(date +%s)
out=$(lmtp_msg $PORT2 500 postmaster@insecure.test)
t1=$(date +%s)
expect stalling-receiver '\|451 4\.4\.1 [^|]*timed out' "$out"
[ $((t1 - t0)) -lt 20 ] && e2e_ok stalling-bounded || e2e_notok stalling-bounded "$((t1 - t0)) s"

# a receiver that drops the connection at STARTTLS: 4xx, not cleartext
# (the relay's MX port is DROP_PORT for this one)
conf "$W/relay3.conf" $((PORT2 + 1)) $DROP_PORT
"$relay" -d -c "$W/relay3.conf" >"$W/relay3.log" 2>&1 &
pids+=($!)
listening 127.0.0.1:$((PORT2 + 1))
out=$(lmtp_msg $((PORT2 + 1)) 500 postmaster@dane-ee.test)
expect drop-mid-tls '\|451 4\.7\.5 [^|]*TLS handshake failed' "$out"

# one reply per read: a client that reads late (as OpenSMTPD's mta on a
# busy host, which fails the rest of the transaction when one read holds
# more than one reply) still gets each per-recipient reply in a read of
# its own, over TCP and over a unix socket
conf "$W/relay4.conf" $((PORT2 + 2)) 25
mkdir -p "$W/sock" && chown nobody "$W/sock"	# the user removes it at exit
sed -i "s|^listen .*|listen unix:$W/sock/relay4.sock|" "$W/relay4.conf"
"$relay" -d -c "$W/relay4.conf" >"$W/relay4.log" 2>&1 &
pids+=($!)
e2e_wait 10 test -S "$W/sock/relay4.sock"
cat >"$W/reads.py" <<'EOF'
import socket, sys, time
where = sys.argv[1]
if where.startswith("/"):
    s = socket.socket(socket.AF_UNIX); s.connect(where)
else:
    s = socket.create_connection(("127.0.0.1", int(where)))
s.settimeout(30)
f = s.makefile("rb")
def rd():
    while True:
        l = f.readline()
        if not l or l[3:4] != b"-": return l
rd()
rcpts = ["r1@dane-ee.test", "r2@insecure.test", "r3@dane-ee.test",
         "r4@insecure.test", "r5@dane-ta.test"]
for c in ["LHLO reads.test", "MAIL FROM:<s@relay-it.test>"] + \
        ["RCPT TO:<%s>" % r for r in rcpts] + ["DATA"]:
    s.sendall(c.encode() + b"\r\n"); rd()
s.sendall(b"Subject: reads\r\n\r\nreads\r\n.\r\n")
got = []
for _ in rcpts:
    time.sleep(0.3)
    b = s.recv(65536)
    got.append("%d:%s" % (b.count(b"\r\n"), b.decode().split(" ")[0]))
print(" ".join(got))
s.close()
EOF
for w in $PORT "$W/sock/relay4.sock"; do
	out=$("$PY" "$W/reads.py" "$w" 2>&1)
	n=tcp; case $w in /*) n=unix ;; esac
	if [ "$out" = "1:250 1:250 1:250 1:250 1:250" ]; then
		e2e_ok "one-reply-per-read-$n"
	else
		e2e_notok "one-reply-per-read-$n" "lines:code per read: $out"
	fi
done
if grep -q 'cannot see whether' "$W/relay.log" "$W/relay4.log"; then
	e2e_notok reads-seen "the relay paced by time: $(grep -h 'cannot see' "$W"/relay*.log | head -1)"
else
	e2e_ok reads-seen
fi

# a client on another host (here: another network namespace over a veth
# pair): the relay cannot see its reads, says so once, and paces by time
ns_pid=
if ip link add rly-a type veth peer name rly-b 2>/dev/null; then
	unshare -n sleep 60 &
	ns_pid=$!
	pids+=($ns_pid)
	sleep 0.2
	ip link set rly-b netns "$ns_pid" &&
	    ip addr add 10.251.0.1/24 dev rly-a && ip link set rly-a up &&
	    nsenter -t "$ns_pid" -n ip addr add 10.251.0.2/24 dev rly-b &&
	    nsenter -t "$ns_pid" -n ip link set rly-b up || ns_pid=
fi
if [ -n "$ns_pid" ]; then
	conf "$W/relay5.conf" $((PORT2 + 3)) 25
	sed -i "s|^listen .*|listen 10.251.0.1:$((PORT2 + 3))|" "$W/relay5.conf"
	"$relay" -d -c "$W/relay5.conf" >"$W/relay5.log" 2>&1 &
	pids+=($!)
	listening 10.251.0.1:$((PORT2 + 3))
	sed 's/"127\.0\.0\.1"/"10.251.0.1"/' "$W/reads.py" >"$W/reads-remote.py"
	out=$(nsenter -t "$ns_pid" -n "$PY" "$W/reads-remote.py" $((PORT2 + 3)) 2>&1)
	n=$(grep -c 'cannot see whether the LMTP client' "$W/relay5.log")
	if [ "$n" = 1 ] && grep -q '^[0-9]:250' <<<"$out"; then
		e2e_ok remote-client-paced-by-time
	else
		e2e_notok remote-client-paced-by-time "$n warnings; reads: $out"
	fi
	ip link del rly-a 2>/dev/null
else
	e2e_notok remote-client-paced-by-time "cannot make a veth pair"
fi

# SIGHUP reloads, the relay keeps serving
kill -HUP "${pids[0]}"
sleep 0.5
out=$(lmtp $PORT <<'EOF'
> LHLO it.test
< 1
> QUIT
< 1
EOF
)
expect sighup-reload '^220 .*\|250-?.*\|221' "$out"
grep -q "configuration reloaded" "$W/relay.log" && e2e_ok sighup-logged || e2e_notok sighup-logged

# SIGTERM: exits, bounded
kill -TERM "${pids[0]}"
if e2e_wait 10 sh -c "! kill -0 ${pids[0]} 2>/dev/null"; then e2e_ok sigterm-exit; else e2e_notok sigterm-exit; fi

# SIGTERM with an idle session and a transaction in flight (relay2: the
# MX stalls 3 s): the idle session gets 421 4.3.2 at once, the transaction
# its reply, then the relay exits (0) with every thread joined
cat >"$W/stop.py" <<'EOF'
import os, signal, socket, sys, time
port, pid = int(sys.argv[1]), int(sys.argv[2])
def conn():
    s = socket.create_connection(("127.0.0.1", port), timeout=20)
    return s, s.makefile("rb")
def rd(f):
    while True:
        l = f.readline()
        if not l or l[3:4] != b"-": return l.decode().strip() or "EOF"
si, fi = conn(); rd(fi)
si.sendall(b"LHLO idle.test\r\n"); rd(fi)
st, ft = conn(); rd(ft)
for c in [b"LHLO tx.test", b"MAIL FROM:<s@relay-it.test>",
          b"RCPT TO:<stop@insecure.test>", b"DATA"]:
    st.sendall(c + b"\r\n"); rd(ft)
st.sendall(b"Subject: stop\r\n\r\nstop\r\n.\r\n")
time.sleep(1)
t0 = time.time()
os.kill(pid, signal.SIGTERM)
r = rd(fi)
print("idle %.1f %s" % (time.time() - t0, r))
r = rd(ft)
print("tx %.1f %s" % (time.time() - t0, r))
while time.time() - t0 < 30:
    try:
        os.kill(pid, 0)
    except OSError:
        break
    time.sleep(0.05)
print("exit %.1f" % (time.time() - t0))
EOF
out=$("$PY" "$W/stop.py" $PORT2 "${pids[1]}")
echo "$out" >"$W/stop.out"
wait "${pids[1]}"
rc=$?
idle=$(awk '$1 == "idle" {print $2}' <<<"$out")
if grep -q '^idle [0-9.]* 421 4\.3\.2 ' <<<"$out" &&
    awk -v t="$idle" 'BEGIN { exit !(t + 0 < 1.5) }'; then
	e2e_ok sigterm-idle-421
else
	e2e_notok sigterm-idle-421 "$(tr '\n' ' ' <<<"$out")"
fi
ex=$(awk '$1 == "exit" {print $2}' <<<"$out")
if grep -q '^tx [0-9.]* 451 4\.4\.1 ' <<<"$out" &&
    awk -v t="$ex" 'BEGIN { exit !(t + 0 < 6) }' && [ "$rc" = 0 ] &&
    ! grep -q 'still open\|still finishing' "$W/relay2.log"; then
	e2e_ok sigterm-in-flight-finishes
else
	e2e_notok sigterm-in-flight-finishes "rc $rc: $(tr '\n' ' ' <<<"$out")"
fi

cleanup
[ "$E2E_FAILS" = 0 ]
