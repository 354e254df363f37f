#!/bin/bash
# tests/integration/tlsrpt_collect.sh - the TLSRPT collector of
# danests-postfix (tlsrpt_socket): the datagrams Debian 13's libtlsrpt sent
# (tests/unit/data/tlsrpt) are counted into the cache and shown by
# `danests report show --json`; malformed and oversized datagrams are
# dropped, counted and logged at most once a minute, and a flood of them
# never keeps the socketmap from answering; the socket is owned as
# configured, a live one is not taken over, and it is removed at exit.
# Needs the test bed (tests/testbed/up.sh) and root.  Usage:
# tlsrpt_collect.sh BUILD_DIR
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
# shellcheck source=../e2e/lib.sh
. "$top/tests/e2e/lib.sh"
pf=$build/postfix-tlsproxy/danests-postfix
danests=$build/core/danests
W=$build/tlsrpt-it
DATA=$top/tests/unit/data/tlsrpt
PY=/usr/bin/python3
PORT=18469
n=0 fails=0 pid=

ok() { n=$((n + 1)); echo "ok $n $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n $1${2:+ # $2}"; }

cleanup() { [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null; }
trap cleanup EXIT

[ -x "$pf" ] || { echo "not ok 1 build # no $pf"; exit 1; }
[ -f "$E2E_CA" ] || { echo "skip tlsrpt_collect (test bed not up)"; exit 0; }
[ "$(id -u)" = 0 ] || { echo "skip tlsrpt_collect (needs root)"; exit 0; }
rm -rf "$W"
mkdir -p "$W/cache" "$W/run"
chown nobody "$W/cache" "$W/run"
chgrp nogroup "$W/run" && chmod 2750 "$W/run"
cat >"$W/pf.conf" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $W/cache
tls_reports yes
[postfix]
user nobody
listen inet:127.0.0.1:$PORT
tlsrpt_socket $W/run/tlsrpt
EOF

# send FILE... - each file as one datagram to the collector
send() {
	"$PY" - "$W/run/tlsrpt" "$@" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
for f in sys.argv[2:]:
    s.sendto(open(f, "rb").read(), sys.argv[1])
EOF
}
# query DOMAIN - one socketmap request; prints the answer
query() {
	"$PY" - "$PORT" "$1" <<'EOF'
import socket, sys
c = socket.create_connection(("127.0.0.1", int(sys.argv[1])), timeout=25)
q = ("postfix " + sys.argv[2]).encode()
c.sendall(str(len(q)).encode() + b":" + q + b",")
print(c.recv(4096).decode().split(":", 1)[1].rstrip(","))
EOF
}
# dn ARGS - danests as the daemon's user (the owner of the cache)
dn() { setpriv --reuid=nobody --regid=nogroup --clear-groups "$danests" "$@"; }
# counts DOMAIN - "SUCCESSES FAILURES TYPES" from danests report show --json
counts() {
	dn report show "$1" --json --cache-dir "$W/cache" 2>/dev/null | jq -rs '
		[.[].policies[]] as $p |
		"\([$p[].summary."total-successful-session-count"] | add // 0) \([$p[].summary."total-failure-session-count"] | add // 0) \([$p[]."failure-details"[]?."result-type"] | sort | join(","))"'
}

# -n: what the start would fail on, and a note when nothing would be
# recorded
nconf() { sed "s|^tlsrpt_socket .*|tlsrpt_socket $1|; s|^tls_reports .*|tls_reports $2|" "$W/pf.conf" >"$W/n.conf"; }
nconf rel/tlsrpt yes
out=$("$pf" -n -c "$W/n.conf" 2>&1)
rc=$?
if [ $rc = 78 ] && echo "$out" | grep -q "n.conf:8: tlsrpt_socket: expected an absolute path"; then
	ok "-n refuses a relative tlsrpt_socket, naming file, line and key"
else
	notok "-n relative tlsrpt_socket" "status $rc: $out"
fi
nconf /nonexistent/tlsrpt yes
out=$("$pf" -n -c "$W/n.conf" 2>&1)
rc=$?
if [ $rc = 78 ] && echo "$out" | grep -q "directory /nonexistent"; then
	ok "-n refuses a tlsrpt_socket in a missing directory"
else
	notok "-n missing directory" "status $rc: $out"
fi
nconf "$W/run/tlsrpt" no
out=$("$pf" -n -c "$W/n.conf" 2>&1)
rc=$?
if [ $rc = 0 ] && echo "$out" | grep -q "note: tlsrpt_socket is set but tls_reports is off"; then
	ok "-n notes that tls_reports is off"
else
	notok "-n tls_reports off" "status $rc: $out"
fi

"$pf" -d -c "$W/pf.conf" 2>"$W/pf.log" &
pid=$!
e2e_wait 10 test -S "$W/run/tlsrpt" || { notok "start" "$(tail -n 3 "$W/pf.log")"; exit 1; }
st=$(stat -c '%U:%G %a' "$W/run/tlsrpt")
if [ "$st" = "root:nogroup 660" ]; then
	ok "socket bound as root, group of its setgid directory, mode 0660 ($st)"
else
	notok "socket owner and mode" "$st"
fi
# a second instance does not take the socket over
sed "s/$PORT/$((PORT + 1))/" "$W/pf.conf" >"$W/pf2.conf"
if ! timeout 10 "$pf" -d -c "$W/pf2.conf" >"$W/pf2.log" 2>&1 &&
    grep -q "listens there" "$W/pf2.log" && [ -S "$W/run/tlsrpt" ]; then
	ok "a second instance refuses the socket in use"
else
	notok "a second instance" "$(tail -n 2 "$W/pf2.log")"
fi

# what libtlsrpt sent, each datagram once
send "$DATA"/*.json
want() {
	local got
	got=$(counts "$1")
	if [ "$got" = "$2" ]; then
		ok "$1 counted: $got"
	else
		notok "$1 counted" "got \"$got\", want \"$2\""
	fi
}
three() { [ "$(counts example.test)" = "1 3 certificate-expired,sts-policy-fetch-error,sts-policy-invalid" ]; }
e2e_wait 10 three
want sts-enforce.test "1 0 "
want sts-certbad.test "0 1 certificate-host-mismatch"
want sts-testing.test "0 1 starttls-not-supported"
want dane-ee.test "1 0 "
want dane-mismatch.test "0 1 validation-failure"
want insecure.test "1 0 "
want example.test "1 3 certificate-expired,sts-policy-fetch-error,sts-policy-invalid"

# a flood of malformed and oversized datagrams while a lookup is asked
for i in $(seq 1 200); do printf '{"d": "x.test", "policies": %d}' "$i" >"$W/bad$i"; done
head -c 40000 /dev/zero | tr '\0' ' ' >"$W/big"
send "$W"/bad* "$W/big" "$W/big" "$W/bad1" &
spid=$!
t0=$(date +%s%N)
a=$(query dane-ee.test)
t1=$(date +%s%N)
wait "$spid"
if [ "$a" = "OK dane-only" ]; then
	ok "socketmap answered during the flood ($(((t1 - t0) / 1000000)) ms): $a"
else
	notok "socketmap during the flood" "answer \"$a\""
fi
sleep 1
if kill -0 "$pid" 2>/dev/null; then ok "daemon alive after the flood"; else notok "daemon alive"; fi
nlog=$(grep -c "dropped a malformed datagram" "$W/pf.log")
nbig=$(grep -c "dropped a datagram of 40000 bytes" "$W/pf.log")
if [ "$nlog" = 1 ] && [ "$nbig" = 1 ]; then
	ok "drops logged once a minute per kind (malformed $nlog, oversized $nbig)"
else
	notok "drops logged once a minute" "malformed $nlog, oversized $nbig lines"
fi
# nothing of them was counted
want x.test "0 0 "

kill "$pid"
wait "$pid"
rc=$?
pid=
line=$(grep "tlsrpt: .* datagrams" "$W/pf.log" | tail -n 1)
case $line in
*"212 datagrams, 10 results recorded, 0 not recorded, 201 malformed and 2 oversized"*)
	ok "exit status $rc, counters logged: ${line#*tlsrpt: }" ;;
*) notok "counters at exit" "status $rc: $line" ;;
esac
if [ ! -e "$W/run/tlsrpt" ]; then ok "socket removed at exit"; else notok "socket removed at exit"; fi

# reporting off: the results are dropped and that is said
sed -i 's/^tls_reports yes/tls_reports no/' "$W/pf.conf"
"$pf" -d -c "$W/pf.conf" 2>"$W/pf3.log" &
pid=$!
e2e_wait 10 test -S "$W/run/tlsrpt"
send "$DATA/sts-success.json" "$DATA/sts-success.json"
e2e_wait 5 grep -q "tls_reports is off" "$W/pf3.log"
if grep -q "results not recorded: tls_reports is off" "$W/pf3.log" &&
    [ "$(counts sts-enforce.test)" = "1 0 " ]; then
	ok "tls_reports no: nothing recorded, logged"
else
	notok "tls_reports no" "$(counts sts-enforce.test); $(tail -n 2 "$W/pf3.log")"
fi
kill "$pid"
wait "$pid" 2>/dev/null
pid=
[ $fails = 0 ]
