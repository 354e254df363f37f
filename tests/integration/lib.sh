# tests/integration/lib.sh - what the integration scripts that start
# daemons share: the e2e library (test bed settings, e2e_wait, e2e_ok,
# mail counts), numbered TAP lines, the daemons a script started and their
# end, redis-servers, waiting for a listener, and LMTP dialogues with
# danests-relay.
#
# Source it once top (the source tree) and W (the work directory) are
# set.  A script adds the pid of each daemon it starts to pids; they are
# stopped at exit, or earlier with cleanup.
# shellcheck shell=bash
# shellcheck source=../e2e/lib.sh disable=SC2154
. "$top/tests/e2e/lib.sh"
PY=/usr/bin/python3
pids=()

# cleanup - stop the daemons started so far and wait for them
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

# ok NAME, notok NAME [WHY], check NAME EXPR [WHY] - one numbered TAP line
# each (check evaluates EXPR); fails counts the "not ok"
n=0 fails=0
ok() { n=$((n + 1)); echo "ok $n $1"; }
notok() { n=$((n + 1)); fails=$((fails + 1)); echo "not ok $n $1${2:+ # $2}"; }
check() { if eval "$2"; then ok "$1"; else notok "$1" "${3:-}"; fi; }

# redis PORT DIR [ARGS] - a redis-server on 127.0.0.1:PORT without
# persistence (ARGS first: a configuration file may lead), a daemon of
# the script; its pid in rpid; rcli PORT ARGS - redis-cli, bounded
redis() {
	redis-server "${@:3}" --port "$1" --bind 127.0.0.1 --save '' \
	    --appendonly no --dir "$2" --logfile "$2/log" &
	rpid=$!
	pids+=("$rpid")
	e2e_wait 5 sh -c "[ \"\$(redis-cli -p $1 ping 2>/dev/null)\" = PONG ]"
}
rcli() { timeout 5 redis-cli -h 127.0.0.1 -p "$1" "${@:2}"; }

# listening ADDR:PORT... - within 10 s, each TCP ADDR:PORT listens
listening() {
	local a
	for a; do
		e2e_wait 10 sh -c "ss -Hltn 'src $a' | grep -q LISTEN" || return 1
	done
}

# lmtp PORT - an LMTP dialogue from stdin with 127.0.0.1:PORT: lines
# "> TEXT" are sent, "< N" reads N replies, "! N" sends N raw bytes of 'x'
# plus CRLF, "= BYTES" sends a message body of BYTES bytes, "close" hangs
# up; prints the last line of each reply, the greeting first.
lmtp() {
	"$PY" -c '
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
' "$1"
}

# lmtp_msg PORT BYTES RCPT... - one message of BYTES bytes from
# s@relay-it.test to every RCPT, then QUIT; the replies as lmtp prints
# them (one per recipient after the body)
lmtp_msg() {
	local port=$1 bytes=$2 r
	shift 2
	{
		printf '> LHLO it.test\n< 1\n> MAIL FROM:<s@relay-it.test>\n< 1\n'
		for r; do printf '> RCPT TO:<%s>\n< 1\n' "$r"; done
		printf '> DATA\n< 1\n= %s\n< %s\n> QUIT\n< 1\n' "$bytes" $#
	} | lmtp "$port"
}

# lmtp_one PORT DOMAIN - one message to postmaster@DOMAIN; the replies
# joined by "|"
lmtp_one() {
	lmtp_msg "$1" 300 "postmaster@$2" | paste -sd'|'
}
