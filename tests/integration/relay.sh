#!/bin/bash
# tests/integration/relay.sh - danests-relay against bad input and failing
# peers, on the loopback test bed: malformed LMTP, huge lines, SIZE, a
# client vanishing mid-DATA, receivers that stall or drop the connection
# mid-TLS, a MITM certificate, a receiver without STARTTLS.  After each,
# the relay must still serve, and nothing may reach a receiver in the clear
# or unauthenticated when the decision forbids it.
#
#   relay.sh BUILD_DIR        prints "ok NAME" / "not ok NAME"
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
# shellcheck source=../e2e/lib.sh
. "$top/tests/e2e/lib.sh"
relay=$build/opensmtpd/danests-relay
W=$build/relay-it
PORT=18464
PORT2=18465		# second relay: MX port of the misbehaving peers
PEER=127.10.2.1		# misbehaving peers: the MX address, other ports
STALL_PORT=2601
DROP_PORT=2602
PY=/usr/bin/python3
pids=()

cleanup() {
	local p
	for p in "${pids[@]}"; do
		kill "$p" 2>/dev/null
	done
	for p in "${pids[@]}"; do
		wait "$p" 2>/dev/null
	done
	pids=()
}
trap cleanup EXIT

[ -x "$relay" ] || { echo "not ok relay-build # no $relay"; exit 1; }
[ -f "$E2E_CA" ] || { echo "skip relay (test bed not up)"; exit 0; }
rm -rf "$W"
mkdir -p "$W/cache" "$W/tmp"
chown nobody "$W/cache" "$W/tmp" 2>/dev/null

# conf FILE PORT SMTP_PORT - a relay configuration
conf() {
	cat >"$1" <<EOF
listen 127.0.0.1:$2
user nobody
helo_name relay-it.test
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/cache
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
EOF
}
conf "$W/relay.conf" $PORT 25
conf "$W/relay2.conf" $PORT2 $STALL_PORT
"$relay" -d -f "$W/relay.conf" >"$W/relay.log" 2>&1 &
pids+=($!)
"$relay" -d -f "$W/relay2.conf" >"$W/relay2.log" 2>&1 &
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

e2e_wait 10 sh -c "ss -Hltn 'src 127.0.0.1:$PORT' | grep -q LISTEN && ss -Hltn 'src 127.0.0.1:$PORT2' | grep -q LISTEN && ss -Hltn 'src $PEER:$DROP_PORT' | grep -q LISTEN" ||
    { echo "not ok relay-start # $(tail -3 "$W/relay.log")"; exit 1; }

# lmtp PORT - run an LMTP dialogue from stdin: lines "> TEXT" are sent,
# "< N" reads N replies, "! N" sends N raw bytes of 'x' plus CRLF,
# "= BYTES" sends a message body of BYTES bytes, "close" hangs up;
# prints each reply's first line.
cat >"$W/lmtp.py" <<'EOF'
import socket, sys
s = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=60)
f = s.makefile("rb")
def reply():
    while True:
        l = f.readline()
        if not l:
            print("EOF"); return
        l = l.decode("latin1").rstrip("\r\n")
        if len(l) < 4 or l[3] != "-":
            print(l); return
reply()
for line in sys.stdin:
    line = line.rstrip("\n")
    if line.startswith("> "):
        s.sendall(line[2:].encode() + b"\r\n")
    elif line.startswith("< "):
        for _ in range(int(line[2:])): reply()
    elif line.startswith("! "):
        s.sendall(b"x" * int(line[2:]) + b"\r\n")
    elif line.startswith("= "):
        n = int(line[2:])
        body = b"Subject: relay-it\r\n\r\n" + (b"y" * 70 + b"\r\n") * (n // 72 + 1)
        s.sendall(body + b".\r\n")
    elif line == "close":
        s.close(); sys.exit(0)
s.close()
EOF
lmtp() {
	"$PY" "$W/lmtp.py" "$1"
}

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
out=$(lmtp $PORT <<'EOF'
> LHLO it.test
< 1
> MAIL FROM:<s@relay-it.test>
< 1
> RCPT TO:<big@dane-ee.test>
< 1
> DATA
< 1
= 100000
< 1
> QUIT
< 1
EOF
)
expect spill-to-file '354 .*\|250 2\.0\.0 delivered to mx\.dane-ee\.test' "$out"

# MITM certificate, no STARTTLS, DANE mismatch: 4xx, nothing delivered
out=$(lmtp $PORT <<'EOF'
> LHLO it.test
< 1
> MAIL FROM:<s@relay-it.test>
< 1
> RCPT TO:<postmaster@dane-mitm.test>
< 1
> RCPT TO:<postmaster@dane-nostarttls.test>
< 1
> RCPT TO:<postmaster@sts-certbad.test>
< 1
> RCPT TO:<postmaster@dane-ee.test>
< 1
> DATA
< 1
= 500
< 4
> QUIT
< 1
EOF
)
expect mitm-cert '354 [^|]*\|451 4\.7\.5 [^|]*tlsa-invalid' "$out"
expect no-starttls '\|451 4\.7\.4 [^|]*STARTTLS not offered' "$out"
expect sts-certbad '\|451 4\.7\.5 [^|]*(certificate|validation)' "$out"
expect still-serving '\|250 2\.0\.0 delivered to mx\.dane-ee\.test[^|]*\|221' "$out"
bad=""
for d in dane-mitm.test dane-nostarttls.test sts-certbad.test; do
	[ "$(e2e_mail_count $d)" = 0 ] || bad="$bad $d"
done
[ -z "$bad" ] && e2e_ok never-downgraded || e2e_notok never-downgraded "delivered to:$bad"

# stalling receiver: the relay answers 4xx within its bounds
t0=$(date +%s)
out=$(sed "s/@PEER@/$PEER/" <<'EOF' | lmtp $PORT2
> LHLO it.test
< 1
> MAIL FROM:<s@relay-it.test>
< 1
> RCPT TO:<postmaster@insecure.test>
< 1
> DATA
< 1
= 500
< 1
> QUIT
< 1
EOF
)
t1=$(date +%s)
expect stalling-receiver '\|451 4\.4\.1 [^|]*timed out' "$out"
[ $((t1 - t0)) -lt 20 ] && e2e_ok stalling-bounded || e2e_notok stalling-bounded "$((t1 - t0)) s"

# a receiver that drops the connection at STARTTLS: 4xx, not cleartext
# (the relay's MX port is DROP_PORT for this one)
conf "$W/relay3.conf" $((PORT2 + 1)) $DROP_PORT
"$relay" -d -f "$W/relay3.conf" >"$W/relay3.log" 2>&1 &
pids+=($!)
e2e_wait 10 sh -c "ss -Hltn 'src 127.0.0.1:$((PORT2 + 1))' | grep -q LISTEN"
out=$(lmtp $((PORT2 + 1)) <<'EOF'
> LHLO it.test
< 1
> MAIL FROM:<s@relay-it.test>
< 1
> RCPT TO:<postmaster@dane-ee.test>
< 1
> DATA
< 1
= 500
< 1
> QUIT
< 1
EOF
)
expect drop-mid-tls '\|451 4\.7\.5 [^|]*TLS handshake failed' "$out"

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

cleanup
[ "$E2E_FAILS" = 0 ]
