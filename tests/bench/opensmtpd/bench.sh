#!/bin/bash
# tests/bench/opensmtpd/bench.sh - by hand, not in run.sh: OpenSMTPD 6.8
# delivering through danests-relay against the same smtpd delivering
# directly (opportunistic TLS) to the same receiver, same run; then the
# relay's memory under 100 concurrent LMTP transactions.
#
#   bench.sh BUILD_DIR [N]      N messages per path (default 200)
#
# Needs the test bed up (tests/testbed/up.sh).  Prints msgs/s and mean
# added latency per path, and the relay's peak RSS.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../../e2e/lib.sh
. "$here/../../e2e/lib.sh"
top=$E2E_TOP
build=$(cd "${1:-$top/build}" && pwd)
N=${2:-200}
OSVER=6.8.0p2
CACHE=/var/cache/danests-e2e
ROOT=$CACHE/opensmtpd-$OSVER
INST=$build/bench-opensmtpd
ADDR=127.10.6.2
PORT=2525
RELAY_PORT=18466
ME=sender.opensmtpd-bench.test
relay=$build/opensmtpd/danests-relay
smtpd_pid= relay_pid= ns_pid=

fatal() { echo "bench: $*" >&2; cleanup; exit 1; }
stop_pid() {
	local p=$1 i
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null || return 0
	for i in $(seq 50); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
	kill -9 "$p" 2>/dev/null
}
cleanup() {
	stop_pid "$smtpd_pid"; smtpd_pid=
	stop_pid "$ns_pid"; ns_pid=
	stop_pid "$relay_pid"; relay_pid=
}
trap cleanup EXIT
ctl() { nsenter -t "$smtpd_pid" -m "$INST/smtpctl" "$@"; }

# fetch - OpenSMTPD from its Debian package, unpacked once into ROOT
fetch() {
	[ -x "$ROOT/usr/sbin/smtpd" ] && return 0
	local tmp
	tmp=$(mktemp -d) || return 1
	(cd "$tmp" && apt-get download -q "opensmtpd=$OSVER*" >/dev/null 2>&1 ||
	    apt-get download -q opensmtpd >/dev/null 2>&1) || { rm -rf "$tmp"; return 1; }
	mkdir -p "$ROOT" && dpkg -x "$tmp"/opensmtpd_*.deb "$ROOT" || { rm -rf "$tmp"; return 1; }
	rm -rf "$tmp"
	[ -x "$ROOT/usr/sbin/smtpd" ]
}

# ctl ARGS - smtpctl inside smtpd's mount namespace
ctl() {
	nsenter -t "$smtpd_pid" -m "$INST/smtpctl" "$@"
}

[ "$(id -u)" = 0 ] || { echo "skip opensmtpd (needs root)"; exit 0; }
[ -x "$relay" ] || fatal "no $relay (build first)"
[ -f "$E2E_CA" ] || fatal "test bed not up (no $E2E_CA)"
fetch || fatal "cannot fetch opensmtpd $OSVER"

rm -rf "$INST"
mkdir -p "$INST/spool" "$INST/etc" "$INST/cache" "$INST/libexec" || fatal mkdir
chmod 711 "$INST/spool"
chown nobody "$INST/cache"
cp -a "$ROOT/usr/libexec/opensmtpd/." "$INST/libexec/"
# smtpctl must be setgid opensmtpq (the package's postinst does that)
cp "$ROOT/usr/sbin/smtpctl" "$INST/smtpctl" && chgrp 64002 "$INST/smtpctl" &&
    chmod 2555 "$INST/smtpctl" || fatal smtpctl
# its users, in the namespace only
cp /etc/passwd "$INST/etc/passwd" && cp /etc/group "$INST/etc/group" || fatal users
grep -q '^opensmtpd:' "$INST/etc/passwd" || {
	echo 'opensmtpd:x:64001:64001::/var/lib/opensmtpd/empty:/usr/sbin/nologin'
	echo 'opensmtpq:x:64002:64002::/var/lib/opensmtpd/empty:/usr/sbin/nologin'
} >>"$INST/etc/passwd"
grep -q '^opensmtpd:' "$INST/etc/group" || {
	echo 'opensmtpd:x:64001:'
	echo 'opensmtpq:x:64002:'
} >>"$INST/etc/group"

cat >"$INST/relay.conf" <<EOF
listen 127.0.0.1:$RELAY_PORT
user nobody
helo_name $ME
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $INST/cache
tmpdir /tmp
transaction_timeout 120
max_sessions 400
connect_timeout 10
greeting_timeout 20
tls_timeout 20
EOF
cat >"$INST/smtpd.conf" <<EOF
listen on $ADDR port $PORT hostname $ME tag RELAY
listen on $ADDR port $((PORT + 1)) hostname $ME tag DIRECT
action "out" relay host "lmtp://127.0.0.1:$RELAY_PORT" helo $ME
action "direct" relay helo $ME
match from any tag RELAY for any action "out"
match from any tag DIRECT for any action "direct"
EOF
chmod 644 "$INST/smtpd.conf"

"$relay" -d -f "$INST/relay.conf" >"$INST/relay.log" 2>&1 &
relay_pid=$!
e2e_wait 10 sh -c "ss -Hltn 'src 127.0.0.1:$RELAY_PORT' | grep -q LISTEN" ||
    fatal "danests-relay did not start: $(tail -3 "$INST/relay.log")"

# the namespace: resolver (lib.sh), then smtpd's own paths
E2E_ROOT=$ROOT E2E_INST=$INST e2e_in_testbed sh -c '
	set -e
	mount -t tmpfs -o mode=755 tmpfs /run
	mount -t tmpfs -o mode=755 tmpfs /var/lib
	mkdir -p /var/lib/opensmtpd/empty
	mount -t tmpfs -o mode=755 tmpfs /usr/libexec
	mkdir /usr/libexec/opensmtpd
	mount --bind "$E2E_INST/libexec" /usr/libexec/opensmtpd
	mount -t tmpfs -o mode=755 tmpfs /var/spool
	mkdir -m 711 /var/spool/smtpd
	mount --bind "$E2E_INST/spool" /var/spool/smtpd
	mount --bind "$E2E_INST/etc/passwd" /etc/passwd
	mount --bind "$E2E_INST/etc/group" /etc/group
	exec "$E2E_ROOT/usr/sbin/smtpd" -d -f "$E2E_INST/smtpd.conf"
' >"$INST/smtpd.log" 2>&1 &
ns_pid=$!
e2e_wait 15 sh -c "ss -Hltn 'src $ADDR:$PORT' | grep -q LISTEN" ||
    fatal "smtpd did not start: $(tail -5 "$INST/smtpd.log")"
# the master smtpd (inside the namespace), for smtpctl and the end
smtpd_pid=$(pgrep -n -f "usr/sbin/smtpd -d -f $INST/smtpd.conf")
[ -n "$smtpd_pid" ] || fatal "cannot find the smtpd master"
ctl show status >"$INST/ctl.out" 2>&1 || fatal "smtpctl cannot reach smtpd: $(cat "$INST/ctl.out")"

# blast PORT LOCALPART - N messages to LOCALPART@insecure.test over 10
# connections; prints "start_epoch"
blast() {
	/usr/bin/python3 - "$ADDR" "$1" "$2" "$N" <<'PY'
import smtplib, sys, time, threading
host, port, lp, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
t0 = time.time()
def worker(k):
    with smtplib.SMTP(host, port, timeout=60) as s:
        for i in range(k, n, 10):
            msg = "Subject: bench %s %d %.6f\r\n\r\nbench\r\n" % (lp, i, time.time())
            s.sendmail("bench@insecure.test", ["%s@insecure.test" % lp], msg)
ts = [threading.Thread(target=worker, args=(k,)) for k in range(10)]
[t.start() for t in ts]; [t.join() for t in ts]
print("%.3f" % t0)
PY
}
# measure LOCALPART START - wait for N arrivals; msgs/s and mean latency
measure() {
	/usr/bin/python3 - "$E2E_MAIL" "$1" "$2" "$N" <<'PY'
import glob, os, re, sys, time
root, lp, t0, n = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4])
end = time.time() + 300
while True:
    got = []
    for f in glob.glob(os.path.join(root, "*", "insecure.test", "*.eml")):
        try:
            d = open(f, "rb").read(4096).decode("latin1")
        except OSError:
            continue
        m = re.search(r"Subject: bench %s \d+ ([0-9.]+)" % re.escape(lp), d)
        if m:
            got.append((float(m.group(1)), os.path.getmtime(f)))
    if len(got) >= n or time.time() > end:
        break
    time.sleep(0.2)
last = max(t for _, t in got) if got else t0
lat = sum(t - s for s, t in got) / max(len(got), 1)
print("%-6s %4d/%d msgs in %6.2f s = %7.1f msgs/s, mean latency %6.1f ms"
      % (lp, len(got), n, last - t0, len(got) / max(last - t0, 1e-3), lat * 1000))
PY
}

e2e_mail_reset
echo "== $N messages per path, smtpd -> receiver 127.10.2.1 (insecure.test, may)"
t=$(blast $((PORT + 1)) direct); measure direct "$t"
t=$(blast $PORT relay); measure relay "$t"
grep -c "status=250" "$INST/relay.log" | sed 's/^/relay: recipients delivered: /'

echo "== relay RSS under 100 concurrent LMTP transactions (direct to the relay)"
rss0=$(awk '/VmRSS/ {print $2}' /proc/$relay_pid/status)
/usr/bin/python3 - "$RELAY_PORT" <<'PY' &
import socket, sys, threading, time
port = int(sys.argv[1])
def one(i):
    s = socket.create_connection(("127.0.0.1", port), timeout=120)
    f = s.makefile("rb")
    def rd():
        while True:
            l = f.readline()
            if not l or l[3:4] != b"-": return l
    rd()
    for c in [b"LHLO b", b"MAIL FROM:<b@insecure.test>",
              b"RCPT TO:<rss%d@insecure.test>" % i,
              b"RCPT TO:<rss%d@dane-ee.test>" % i,
              b"RCPT TO:<rss%d@sts-enforce.test>" % i, b"DATA"]:
        s.sendall(c + b"\r\n"); rd()
    s.sendall(b"Subject: rss\r\n\r\n" + b"z" * 200000 + b"\r\n.\r\n")
    for _ in range(3): rd()
    s.close()
ts = [threading.Thread(target=one, args=(i,)) for i in range(100)]
[t.start() for t in ts]; [t.join() for t in ts]
PY
load=$!
peak=0
while kill -0 $load 2>/dev/null; do
	r=$(awk '/VmRSS/ {print $2}' /proc/$relay_pid/status)
	[ "$r" -gt "$peak" ] && peak=$r
	sleep 0.05
done
hwm=$(awk '/VmHWM/ {print $2}' /proc/$relay_pid/status)
thr=$(awk '/Threads/ {print $2}' /proc/$relay_pid/status)
echo "relay RSS idle ${rss0} kB, peak sampled ${peak} kB, VmHWM ${hwm} kB, threads now $thr"
cleanup
