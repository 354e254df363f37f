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
RELAY_EXTRA="max_sessions 400"
# shellcheck source=../../e2e/opensmtpd/smtpd.sh
. "$here/../../e2e/opensmtpd/smtpd.sh"

fatal() { echo "bench: $*" >&2; osmtpd_cleanup; exit 1; }
trap osmtpd_cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "skip opensmtpd (needs root)"; exit 0; }
osmtpd_prepare
cat >"$INST/smtpd.conf" <<EOF
listen on $ADDR port $PORT hostname $ME tag RELAY
listen on $ADDR port $((PORT + 1)) hostname $ME tag DIRECT
action "out" relay host "lmtp://127.0.0.1:$RELAY_PORT" helo $ME
action "direct" relay helo $ME
match from any tag RELAY for any action "out"
match from any tag DIRECT for any action "direct"
EOF
osmtpd_start

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
osmtpd_cleanup
