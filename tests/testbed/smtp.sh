#!/bin/sh
# tests/testbed/smtp.sh - the SMTP receivers of the loopback test bed.
#
#   smtp.sh up      start the receivers (see smtp/receiver.py) on
#                   127.10.2.1:25 (good cert), 127.10.2.2:25 (bad cert),
#                   127.10.2.3:25 (no STARTTLS); when already up, restart
#   smtp.sh down    stop them (no error when nothing runs)
#   smtp.sh status  say whether they run
#   smtp.sh reset   empty the mailboxes
#
# Mail lands in run/smtp/mail/<receiver>/<rcpt-domain>/<n>.eml.  Needs
# run/pki from pki.sh.  Waits are bounded (at most TRIES x 0.1 s).
set -eu

TB=$(cd "$(dirname "$0")" && pwd)
RUN=$TB/run
S=$RUN/smtp
PIDFILE=$S/receiver.pid
TRIES=100

die() {
	echo "smtp.sh: $*" >&2
	exit 1
}

# running - is the receiver of PIDFILE alive?
running() {
	[ -f "$PIDFILE" ] || return 1
	pid=$(cat "$PIDFILE" 2>/dev/null) || return 1
	[ -n "$pid" ] && kill -0 "$pid" 2>/dev/null &&
	    grep -q receiver.py "/proc/$pid/cmdline" 2>/dev/null
}

# listening - do all three receivers accept connections?
listening() {
	for a in 127.10.2.1 127.10.2.2 127.10.2.3; do
		ss -Hltn "src $a:25" 2>/dev/null | grep -q LISTEN || return 1
	done
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
	PY=/usr/bin/python3
	[ -x "$PY" ] || die "$PY not found"
	"$PY" -c 'import aiosmtpd' 2>/dev/null ||
	    die "python3-aiosmtpd not installed (run tests/setup.sh)"
	[ -f "$RUN/pki/good.key" ] && [ -f "$RUN/pki/bad.key" ] ||
	    die "no test PKI under $RUN/pki (run pki.sh)"
	down
	mkdir -p "$S/mail"
	rm -f "$S/ready"
	"$PY" "$TB/smtp/receiver.py" --mail-dir "$S/mail" --pki "$RUN/pki" \
	    --ready "$S/ready" >"$S/receiver.log" 2>&1 &
	started=$!
	echo "$started" > "$PIDFILE"
	i=0
	until [ -f "$S/ready" ] && listening; do
		# kill -0, not running(): until the child has exec'd python3
		# its command line is still the shell's
		if ! kill -0 "$started" 2>/dev/null; then
			cat "$S/receiver.log" >&2
			rm -f "$PIDFILE"
			die "receivers did not start"
		fi
		i=$((i + 1))
		[ $i -lt $TRIES ] || { down; die "receivers not listening in time"; }
		sleep 0.1
	done
	echo "smtp: receivers on 127.10.2.1-3:25, mail in $S/mail"
}

case ${1:-} in
up)	up ;;
down)	down ;;
status)	if running; then echo "smtp: up (pid $(cat "$PIDFILE"))";
	else echo "smtp: down"; fi ;;
reset)	rm -rf "$S/mail"; mkdir -p "$S/mail" ;;
*)	die "usage: smtp.sh up|down|status|reset" ;;
esac
