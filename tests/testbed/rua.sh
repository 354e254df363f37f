#!/bin/sh
# tests/testbed/rua.sh - the TLS report receiver of the loopback test bed
# (https://rua.reports.test/, see rua/receiver.py).
#
#   rua.sh up       start it on 127.10.1.6:443 (good cert); restart if up
#   rua.sh down     stop it (no error when nothing runs)
#   rua.sh status   say whether it runs
#   rua.sh reset    forget the reports received, answer 201 again
#   rua.sh mode M   answer "ok" (201), "500", or "stall" (never answer)
#
# Reports land in run/rua/NNNN.headers and NNNN.body.  Needs run/pki from
# pki.sh.  Waits are bounded (at most TRIES x 0.1 s).
set -eu

TB=$(cd "$(dirname "$0")" && pwd)
RUN=$TB/run
R=$RUN/rua
PIDFILE=$RUN/rua.pid
TRIES=100

die() {
	echo "rua.sh: $*" >&2
	exit 1
}

# running - is the receiver of PIDFILE alive?
running() {
	[ -f "$PIDFILE" ] || return 1
	pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
	    grep -q rua/receiver.py "/proc/$pid/cmdline" 2>/dev/null
}

listening() {
	ss -Hltn "src 127.10.1.6:443" 2>/dev/null | grep -q LISTEN
}

down() {
	if running; then
		pid=$(cat "$PIDFILE")
		kill "$pid" 2>/dev/null || true
		i=0
		while kill -0 "$pid" 2>/dev/null && [ $i -lt $TRIES ]; do
			sleep 0.1
			i=$((i + 1))
		done
		kill -9 "$pid" 2>/dev/null || true
	fi
	rm -f "$PIDFILE"
}

up() {
	[ -f "$RUN/pki/good.key" ] && [ -f "$RUN/pki/good-chain.crt" ] ||
	    die "no test PKI under $RUN/pki (run pki.sh)"
	down
	rm -rf "$R"
	mkdir -p "$R"
	rm -f "$RUN/rua.ready"
	/usr/bin/python3 "$TB/rua/receiver.py" --dir "$R" --pki "$RUN/pki" \
	    --ready "$RUN/rua.ready" >"$RUN/rua.log" 2>&1 &
	started=$!
	echo "$started" > "$PIDFILE"
	i=0
	until [ -f "$RUN/rua.ready" ] && listening; do
		if ! kill -0 "$started" 2>/dev/null; then
			cat "$RUN/rua.log" >&2
			rm -f "$PIDFILE"
			die "report receiver did not start"
		fi
		i=$((i + 1))
		[ $i -lt $TRIES ] || { down; die "receiver not listening in time"; }
		sleep 0.1
	done
	echo "rua: report receiver on 127.10.1.6:443, reports in $R"
}

case ${1:-} in
up)	up ;;
down)	down ;;
status)	if running; then echo "rua: up (pid $(cat "$PIDFILE"))";
	else echo "rua: down"; fi ;;
reset)	rm -f "$R"/*.headers "$R"/*.body "$R"/mode ;;
mode)	case ${2:-} in
	ok)	rm -f "$R/mode" ;;
	500|stall) echo "$2" > "$R/mode" ;;
	*)	die "usage: rua.sh mode ok|500|stall" ;;
	esac ;;
*)	die "usage: rua.sh up|down|status|reset|mode M" ;;
esac
