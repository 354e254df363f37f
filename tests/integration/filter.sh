#!/bin/bash
# tests/integration/filter.sh - filter-danests on the loopback test bed,
# driven as smtpd drives it (a socket on stdin and stdout, the 0.6 and 0.7
# exchanges): the replies for null-MX, nonexistent, tempfail and DANE
# domains; the bound on the time an event waits (timeout.test never
# answers) while other sessions are answered meanwhile; malformed lines,
# unknown events and an over-long line; the cache warmed for the relay;
# a protocol it cannot answer; -n.
#
#   filter.sh BUILD_DIR        prints "ok NAME" / "not ok NAME"
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
build=$(cd "${1:-$top/build}" && pwd)
# shellcheck source=../e2e/lib.sh
. "$top/tests/e2e/lib.sh"
filter=$build/opensmtpd/filter-danests
danests=$build/core/danests
W=$build/filter-it
fails=0

ok() { echo "ok $1"; }
notok() { echo "not ok $1${2:+ # $2}"; fails=$((fails + 1)); }

[ -x "$filter" ] || { echo "not ok filter-build # no $filter"; exit 1; }
[ -f "$E2E_CA" ] || { echo "skip filter (test bed not up)"; exit 0; }
rm -rf "$W"
mkdir -p "$W/cache"
cat >"$W/danests.conf" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/cache
dns_timeout 5
decision_timeout 10

[filter]
timeout 2
EOF

# drive VERSION LINES... - run the filter with a socket as smtpd does,
# write the handshake then LINES (a line "sleep N" waits), print every
# line it answers with the seconds since the first event; wait for every
# event to be answered (20 s at most)
drive() {
	/usr/bin/python3 - "$filter" "$W/danests.conf" "$@" <<'EOF'
import os, socket, subprocess, sys, time
prog, conf, version, lines = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
a, b = socket.socketpair()
err = open(os.environ.get("FILTER_ERR", "/dev/null"), "ab")
p = subprocess.Popen([prog, "-c", conf], stdin=b, stdout=b, stderr=err)
b.close()
a.settimeout(20)
hello = ["config|smtpd-version|%s" % ("6.8.0p2" if version == "0.6" else "7.6.0")]
if version != "0.6":
    hello.append("config|protocol|%s" % version)
hello += ["config|smtp-session-timeout|300", "config|subsystem|smtp-in",
          "config|admd|filter-it.test", "config|ready"]
a.sendall(("\n".join(hello) + "\n").encode())
buf = b""
def readline():
    global buf
    while b"\n" not in buf:
        d = a.recv(65536)
        if not d:
            raise EOFError
        buf += d
    l, buf = buf.split(b"\n", 1)
    return l.decode()
for _ in range(3):
    print(readline())
t0 = time.time()
events = 0
for l in lines:
    if l.startswith("sleep "):
        time.sleep(float(l[6:]))
        continue
    if l.startswith("filter|"):
        events += 1
    a.sendall(l.encode() + b"\n")
try:
    for _ in range(events):
        l = readline()
        print("%.1f %s" % (time.time() - t0, l))
except (EOFError, socket.timeout):
    print("EOF")
a.close()
try:
    print("exit %d" % p.wait(timeout=15))
except subprocess.TimeoutExpired:
    p.kill()
    print("exit hung")
EOF
}

ev() {	# ev VERSION PHASE TOKEN PARAM
	echo "filter|$1|1732812345.000001|smtp-in|$2|00000000000000a1|$3|$4"
}

# --- the replies, protocol 0.6 (Debian 12's OpenSMTPD 6.8) ---
out=$(FILTER_ERR=$W/err-06.log drive 0.6 \
    "$(ev 0.6 mail-from 0000000000000001 '<sender@null-mx.test> SIZE=100')" \
    "$(ev 0.6 rcpt-to 0000000000000002 '<postmaster@null-mx.test>')" \
    "$(ev 0.6 rcpt-to 0000000000000003 '<postmaster@nxdomain.test>')" \
    "$(ev 0.6 rcpt-to 0000000000000004 '<postmaster@bogus-mx.test>')" \
    "$(ev 0.6 rcpt-to 0000000000000005 '<postmaster@dane-ee.test>')" \
    "$(ev 0.6 mail-from 0000000000000006 '<sender@nxdomain.test>')" \
    "$(ev 0.6 mail-from 0000000000000007 '<>')" \
    "$(ev 0.6 rcpt-to 0000000000000008 '<postmaster@[127.10.2.1]>')")
echo "$out" >"$W/out-06.txt"
# want TOKEN REPLY-PREFIX NAME
want() {
	if grep -q "filter-result|00000000000000a1|$1|$2" <<<"$out"; then
		ok "$3"
	else
		notok "$3" "$(grep "|$1|" <<<"$out" || echo 'no answer')"
	fi
}
if [ "$(sed -n 1,3p <<<"$out" | tr '\n' ' ')" = "register|filter|smtp-in|mail-from register|filter|smtp-in|rcpt-to register|ready " ]; then
	ok filter-register
else
	notok filter-register "$(head -3 <<<"$out" | tr '\n' ' ')"
fi
want 0000000000000001 'reject|550 5.7.27 ' filter-mail-from-null-mx
want 0000000000000002 'reject|556 5.1.10 ' filter-rcpt-null-mx
want 0000000000000003 'reject|550 5.1.2 ' filter-rcpt-nxdomain
want 0000000000000004 'proceed$' filter-rcpt-tempfail-proceeds
want 0000000000000005 'proceed$' filter-rcpt-dane-proceeds
want 0000000000000006 'reject|550 5.1.8 ' filter-mail-from-nxdomain
want 0000000000000007 'proceed$' filter-null-sender
want 0000000000000008 'proceed$' filter-address-literal
grep -q '^exit 0$' <<<"$out" && ok filter-exit-at-eof || notok filter-exit-at-eof "$(tail -1 <<<"$out")"

# --- the cache is warm for the relay: the decisions are there ---
cached() {
	"$danests" check --resolver "$E2E_RESOLVER" --ca-file "$E2E_CA" \
	    --cache-dir "$W/cache" --json "$1" 2>/dev/null | grep -q '"from_cache": *true'
}
if cached null-mx.test && cached dane-ee.test; then
	ok filter-cache-warm
else
	notok filter-cache-warm "null-mx.test or dane-ee.test not from the cache"
fi

# --- protocol 0.7 (OpenSMTPD 7.x), and the bound on waiting: timeout.test
# never answers; a null-MX event sent after it is answered first, and the
# timeout.test event proceeds after the [filter] timeout (2 s) ---
out=$(FILTER_ERR=$W/err-07.log drive 0.7 \
    "$(ev 0.7 rcpt-to 0000000000000011 '<postmaster@timeout.test>')" \
    "$(ev 0.7 rcpt-to 0000000000000012 '<postmaster@null-mx.test>')" \
    "$(ev 0.7 rcpt-to 0000000000000013 '<postmaster@nxdomain.test>')")
echo "$out" >"$W/out-07.txt"
want 0000000000000012 'reject|556 5.1.10 ' filter-07-rcpt-null-mx
want 0000000000000013 'reject|550 5.1.2 ' filter-07-rcpt-nxdomain
first=$(grep -n '|0000000000000011|' <<<"$out" | cut -d: -f1)
other=$(grep -n '|0000000000000012|' <<<"$out" | cut -d: -f1)
t=$(grep '|0000000000000011|' <<<"$out" | cut -d' ' -f1)
if grep -q '|0000000000000011|proceed$' <<<"$out" && [ -n "$other" ] &&
    [ "$other" -lt "$first" ] &&
    awk -v t="$t" 'BEGIN { exit !(t >= 1.5 && t < 5) }'; then
	ok filter-timeout-proceeds
else
	notok filter-timeout-proceeds "$(tr '\n' ' ' <<<"$out")"
fi
grep -q 'timeout.test: no decision within 2 s, proceeding' "$W/err-07.log" &&
    ok filter-timeout-logged || notok filter-timeout-logged "$(cat "$W/err-07.log")"

# --- malformed lines, unknown events, an over-long line: logged, the
# filter stays up and answers every event it can read ---
long=$(head -c 100000 /dev/zero | tr '\0' 'A')
out=$(FILTER_ERR=$W/err-bad.log drive 0.6 \
    "garbage" "" "filter|0.6|x|smtp-in|rcpt-to|a1|b1|<x@null-mx.test>" \
    "report|0.6|1.1|smtp-in|link-connect|a1|x" \
    "$(ev 0.6 helo 0000000000000021 client.test)" \
    "$(ev 0.6 rcpt-to 0000000000000022 "<postmaster@null-mx.test> $long")" \
    "config|admd|$long" \
    "$(ev 0.6 rcpt-to 0000000000000023 '<postmaster@null-mx.test>')")
echo "$out" >"$W/out-bad.txt"
want 0000000000000021 'proceed$' filter-unknown-event
want 0000000000000022 'proceed$' filter-long-line-proceeds
want 0000000000000023 'reject|556 5.1.10 ' filter-after-bad-lines
grep -q '^exit 0$' <<<"$out" && grep -q 'unknown message type' "$W/err-bad.log" &&
    grep -q 'malformed timestamp' "$W/err-bad.log" &&
    ok filter-bad-lines-logged || notok filter-bad-lines-logged "$(cat "$W/err-bad.log")"

# --- protocol 0.4 answered TOKEN|SESSION: the filter stops, saying why ---
out=$(FILTER_ERR=$W/err-04.log drive 0.6 \
    "$(ev 0.4 rcpt-to 0000000000000031 '<postmaster@null-mx.test>')")
if grep -q '^exit 1$' <<<"$out" && ! grep -q 'filter-result' <<<"$out" &&
    grep -q 'filter protocol 0.4 is not supported' "$W/err-04.log"; then
	ok filter-old-protocol
else
	notok filter-old-protocol "$(tr '\n' ' ' <<<"$out") $(cat "$W/err-04.log")"
fi

# --- configuration: -n, a bad timeout, an unknown key ---
if "$filter" -n -c "$W/danests.conf" >/dev/null 2>&1; then ok filter-check; else notok filter-check; fi
sed 's/^timeout 2$/timeout 0/' "$W/danests.conf" >"$W/bad1.conf"
sed 's/^timeout 2$/timeouts 2/' "$W/danests.conf" >"$W/bad2.conf"
e1=$("$filter" -n -c "$W/bad1.conf" 2>&1); r1=$?
e2=$("$filter" -n -c "$W/bad2.conf" 2>&1); r2=$?
if [ $r1 = 78 ] && [ $r2 = 78 ] && grep -q 'bad1.conf:8: timeout' <<<"$e1" &&
    grep -q 'bad2.conf:8: timeouts' <<<"$e2"; then
	ok filter-config-errors
else
	notok filter-config-errors "$r1 $e1 / $r2 $e2"
fi

[ "$fails" = 0 ]
