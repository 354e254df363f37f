#!/bin/bash
# tests/testbed/isolate-test.sh - proof that tests/run.sh keeps its servers
# to a network namespace of their own.
#
# A network namespace stands for the machine: in it, "services of the
# machine" listen where the test bed listens too (DNS on 127.10.0.2:53 UDP
# and TCP, SMTP on 127.0.0.1:25 and 127.10.2.1:25, HTTPS on
# 127.10.1.1:443) and count every datagram and connection they get.  In
# it, `SUITES=integration INTEGRATION=golden tests/run.sh` must pass (its
# test bed binds the same addresses, so it runs only if isolated), the
# services must still listen and have received nothing, and nothing else
# may listen in the machine's namespace meanwhile (sampled every 0.5 s).  Bounded: the nested
# run has 300 s.  Prints "ok NAME" / "not ok NAME".
set -u
cd "$(dirname "$0")/../.." || exit 1
top=$PWD
if [ -z "${ISOLATE_TEST_INSIDE:-}" ]; then
	ISOLATE_TEST_INSIDE=1 exec unshare --net "$0" "$@"
fi

fails=0
ok() { echo "ok $1"; }
notok() { echo "not ok $1${2:+ # $2}"; fails=$((fails + 1)); }

ip link set lo up || { notok isolation-setup "lo"; exit 1; }
work=$(mktemp -d /tmp/danests-isolate.XXXXXX)
svc_pid=
cleanup() {
	if [ -n "$svc_pid" ]; then
		kill "$svc_pid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$svc_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$svc_pid" 2>/dev/null
	fi
	rm -rf "$work"
}
trap cleanup EXIT

# The machine's services: count what reaches them, one line per event.
python3 - "$work/hits" >"$work/svc.log" 2>&1 <<'PY' &
import selectors, socket, sys
hits = open(sys.argv[1], "a", buffering=1)
sel = selectors.DefaultSelector()
u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
u.bind(("127.10.0.2", 53))
sel.register(u, selectors.EVENT_READ, "udp 127.10.0.2:53")
for a, p in (("127.10.0.2", 53), ("127.0.0.1", 25), ("127.10.2.1", 25),
             ("127.10.1.1", 443)):
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((a, p))
    t.listen(16)
    sel.register(t, selectors.EVENT_READ, "tcp %s:%d" % (a, p))
print("listening", flush=True)
while True:
    for key, _ in sel.select():
        s = key.fileobj
        if s.type == socket.SOCK_DGRAM:
            s.recvfrom(4096)
        else:
            c, _ = s.accept()
            c.close()
        hits.write(key.data + "\n")
PY
svc_pid=$!
for _ in $(seq 50); do
	grep -q listening "$work/svc.log" 2>/dev/null && break
	sleep 0.1
done
if grep -q listening "$work/svc.log"; then
	ok isolation-machine-services
else
	notok isolation-machine-services "$(tail -2 "$work/svc.log")"
	exit 1
fi
ss -Hltun | awk '{ print $1, $5 }' | sort -u >"$work/before"

# What listens in the machine's namespace, sampled every 0.5 s during
# the run (bounded by it).
( while :; do ss -Hltun | awk '{ print $1, $5 }'; sleep 0.5; done ) \
    >"$work/seen" 2>/dev/null &
sampler=$!

# A run of one small suite, its logs apart from the caller's.
timeout 300 env SUITES=integration INTEGRATION=golden FUZZ_SECONDS=0 \
    TEST_LOGDIR="$top/build/test-logs/isolation" tests/run.sh >"$work/run.out" 2>&1
rc=$?
kill "$sampler" 2>/dev/null
wait "$sampler" 2>/dev/null
last=$(tail -n 1 "$work/run.out")
case $last in
*" passed, 0 failed, "*)
	if [ "$rc" -eq 0 ] && [ "${last%% *}" -gt 0 ]; then
		ok "isolation-run-beside-services ($last)"
	else
		notok isolation-run-beside-services "exit $rc: $last"
	fi
	;;
*)
	notok isolation-run-beside-services "exit $rc: $last"
	sed 's/^/# /' "$work/run.out" | tail -n 30
	;;
esac

if kill -0 "$svc_pid" 2>/dev/null; then
	ok isolation-services-still-up
else
	notok isolation-services-still-up
fi
if [ -s "$work/hits" ]; then
	notok isolation-services-untouched "$(sort "$work/hits" | uniq -c | tr '\n' ';')"
else
	ok isolation-services-untouched
fi
ss -Hltun | awk '{ print $1, $5 }' >>"$work/seen"
sort -u "$work/seen" >"$work/after"
if [ -s "$work/before" ] && cmp -s "$work/before" "$work/after"; then
	ok isolation-nothing-else-listened
else
	notok isolation-nothing-else-listened \
	    "$(diff "$work/before" "$work/after" | grep '^[<>]' | tr '\n' ';')"
fi
[ "$fails" -eq 0 ]
