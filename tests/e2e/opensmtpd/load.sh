#!/bin/bash
# tests/e2e/opensmtpd/load.sh - Debian's OpenSMTPD 6.8 under load through
# danests-relay: does any recipient get the message twice?
#
#   load.sh BUILD_DIR [MESSAGES]       (default 150; run by run.sh)
#
# OpenSMTPD's mta reads its LMTP peer with one read(2) per event and, after
# taking one reply out of what it read, fails the rest of the transaction
# when more bytes are left ("Remote host sent too much data"); the
# recipients whose replies were in those bytes were already delivered by
# the relay and are retried: duplicates.  This script sends MESSAGES
# messages, each to two recipients in each of LOAD_DOMAINS (6) domains,
# over eight SMTP connections at once, keeps smtpd's mta off the CPU
# LOAD_STALL_MS (60) of every 100 ms as on a busy host, forces every retry
# at once (smtpctl schedule all) until the queue is empty, and counts at
# the receivers how often each recipient arrived.  Bounded: LOAD_WAIT
# seconds (default 300) for the queue to drain.  Prints "ok NAME" /
# "not ok NAME".
#
# Environment: LOAD_RELAY_EXTRA adds lines to the relay's configuration.
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
top=$E2E_TOP
build=$(cd "${1:-$top/build}" && pwd)
N=${2:-150}
DOMS=${LOAD_DOMAINS:-6}	# domains per message (of 6), two recipients each
STALL_MS=${LOAD_STALL_MS:-60}	# smtpd's pony off the CPU, ms of every 100
WAIT=${LOAD_WAIT:-300}
OSVER=6.8.0p2
CACHE=/var/cache/danests-e2e
ROOT=$CACHE/opensmtpd-$OSVER
INST=$build/e2e-opensmtpd-load
ADDR=127.10.6.3
PORT=2525
RELAY_PORT=18467
ME=sender.opensmtpd-load.test
LOAD_SENDER=load-sender@insecure.test
relay=$build/opensmtpd/danests-relay
RELAY_EXTRA=${LOAD_RELAY_EXTRA:-}
# shellcheck source=smtpd.sh
. "$here/smtpd.sh"

fatal() {
	echo "not ok opensmtpd-load-setup # $*"
	osmtpd_cleanup
	exit 1
}
trap osmtpd_cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "skip opensmtpd-load (needs root)"; exit 0; }
osmtpd_prepare
cat >"$INST/smtpd.conf" <<EOF
listen on $ADDR port $PORT hostname $ME
action "out" relay host "lmtp://127.0.0.1:$RELAY_PORT" helo $ME
match from any for any action "out"
EOF
osmtpd_start
# only this script's messages, so other suites' mail is left alone
E2E_SENDER=$LOAD_SENDER e2e_mail_reset

# N messages, 2 recipients in each of DOMS domains, over 8 connections;
# prints the number of recipients sent
t0=$(date +%s)
sent=$(/usr/bin/python3 - "$ADDR" "$PORT" "$LOAD_SENDER" "$N" "$DOMS" <<'PY'
import smtplib, sys, threading
host, port, sender, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], int(sys.argv[4])
per = int(sys.argv[5])
doms = ["dane-ee.test", "insecure.test", "sts-enforce.test",
        "dane-ta.test", "mixed.test", "dane-ee-full.test"]
count, lock = [0], threading.Lock()
def worker(k):
    with smtplib.SMTP(host, port, timeout=60) as s:
        for i in range(k, n, 8):
            ds = [doms[(i + j) % 6] for j in range(per)]
            rcpts = ["load%d%s@%s" % (i, x, d) for d in ds for x in "ab"]
            msg = ("From: %s\r\nSubject: load %d\r\n\r\nload\r\n" % (sender, i))
            s.sendmail(sender, rcpts, msg)
            with lock:
                count[0] += len(rcpts)
ts = [threading.Thread(target=worker, args=(k,)) for k in range(8)]
[t.start() for t in ts]; [t.join() for t in ts]
print(count[0])
PY
) || fatal "sending failed"
[ "$sent" = $((N * DOMS * 2)) ] || fatal "sent $sent of $((N * DOMS * 2)) recipients"
echo "ok opensmtpd-load-sent # $N messages, $sent recipients in $(($(date +%s) - t0)) s"

# A busy host: smtpd's pony process (its mta, the LMTP client) gets no CPU
# for STALL_MS of every 100 ms (SIGSTOP/SIGCONT), so it reads its LMTP
# connections late, as when it waits for a CPU.  A relay that only pauses
# between replies then has several of them read at once.
pony=
for p in $(pgrep -P "$smtpd_pid"); do
	tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q 'pony' && pony=$p
done
[ -n "$pony" ] || fatal "cannot find smtpd's pony process"
stall_pid=
if [ "$STALL_MS" -gt 0 ]; then
	/usr/bin/python3 - "$pony" "$STALL_MS" <<'PY' &
import os, signal, sys, time
pid, ms = int(sys.argv[1]), int(sys.argv[2])
def end(*_):
    try:
        os.kill(pid, signal.SIGCONT)
    finally:
        sys.exit(0)
signal.signal(signal.SIGTERM, end)
while True:
    try:
        os.kill(pid, signal.SIGSTOP)
        time.sleep(ms / 1000)
        os.kill(pid, signal.SIGCONT)
        time.sleep((100 - ms) / 1000)
    except ProcessLookupError:
        sys.exit(0)
PY
	stall_pid=$!
fi
stall_end() {
	[ -n "$stall_pid" ] && kill "$stall_pid" 2>/dev/null && wait "$stall_pid" 2>/dev/null
	stall_pid=
	[ -n "$pony" ] && kill -CONT "$pony" 2>/dev/null
	return 0
}
trap 'stall_end; osmtpd_cleanup' EXIT

# queue_empty - nothing left in smtpd's queue; every retry forced now
queue_empty() {
	local q
	q=$(ctl show queue 2>/dev/null) || return 1
	[ -z "$q" ] && return 0
	ctl schedule all >/dev/null 2>&1
	return 1
}
drained=yes
e2e_wait "$WAIT" queue_empty || drained=no
stall_end
echo "# queue drained: $drained after $(($(date +%s) - t0)) s"

# count deliveries per recipient at the receivers
counts=$(/usr/bin/python3 - "$E2E_MAIL" "$LOAD_SENDER" "$((N * DOMS * 2))" <<'PY'
import collections, glob, os, re, sys
root, sender, want = sys.argv[1], sys.argv[2], int(sys.argv[3])
seen = collections.Counter()
for f in glob.glob(os.path.join(root, "*", "*", "*.eml")):
    try:
        head = open(f, "rb").read(8192).decode("latin1").split("\r\n\r\n")[0]
    except OSError:
        continue
    if "X-Danests-Mail-From: <%s>" % sender not in head:
        continue
    m = re.search(r"^X-Danests-Rcpt-To: (.*)$", head, re.M)
    for r in re.findall(r"<([^>]*)>", m.group(1) if m else ""):
        seen[r.lower()] += 1
dup = sorted(r for r, c in seen.items() if c > 1)
print("recipients %d arrived %d deliveries %d duplicated %d %s" % (
    want, len(seen), sum(seen.values()), len(dup), " ".join(dup[:5])))
PY
)
read -r _ want _ arrived _ deliveries _ ndup rest <<<"$counts"
tmd=$(grep -c 'Error on session.*too much data\|mta error reason=Remote host sent too much data' "$INST/smtpd.log")
echo "# $counts; smtpd 'too much data' errors: $tmd; queue drained: $drained"
if [ "$ndup" = 0 ] && [ "$tmd" = 0 ]; then
	e2e_ok opensmtpd-load-no-duplicates
else
	e2e_notok opensmtpd-load-no-duplicates "$ndup recipients delivered more than once ($rest), $tmd transactions failed with 'too much data'"
fi
if [ "$drained" = yes ] && [ "$arrived" = "$want" ]; then
	e2e_ok opensmtpd-load-all-delivered
else
	e2e_notok opensmtpd-load-all-delivered "$arrived of $want recipients arrived; queue drained: $drained"
fi
# the relay saw smtpd read each reply (it is on this host), no guessing
if grep -q 'cannot see whether the LMTP client' "$INST/relay.log"; then
	e2e_notok opensmtpd-load-reads-seen "the relay paced replies by time"
else
	e2e_ok opensmtpd-load-reads-seen
fi
osmtpd_cleanup
[ "$E2E_FAILS" = 0 ]
