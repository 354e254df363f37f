#!/bin/sh
# tests/testbed/up.sh - start the loopback test bed: test PKI, DNS (nsd,
# unbound, sink), then the HTTPS policy hosts and the SMTP receivers when
# their scripts are present.  When already up, everything restarts from
# scratch (fresh keys, certificates and zones).  On failure nothing is
# left running.
set -eu
TB=$(cd "$(dirname "$0")" && pwd)

die() {
	echo "up.sh: $*" >&2
	"$TB/down.sh" >/dev/null 2>&1 || true
	exit 1
}

[ "$(id -u)" = 0 ] || die "must run as root (servers bind port 53, 25, 443)"
# 127.0.0.0/8 is routed to lo on Linux: any 127.10.x.y can be bound
ip -4 route show table local 2>/dev/null | grep -q '127.0.0.0/8' ||
    die "127.0.0.0/8 is not a local route: cannot bind 127.10.x.y"

"$TB/down.sh" >/dev/null 2>&1 || true
mkdir -p "$TB/run"
"$TB/pki.sh" || die "pki.sh failed"
"$TB/dns.sh" up || die "dns.sh up failed"
for part in https smtp rua; do
	if [ -x "$TB/$part.sh" ]; then
		"$TB/$part.sh" up || die "$part.sh up failed"
	fi
done
echo "up.sh: test bed up (resolver 127.10.0.2, vars in $TB/run/vars)"
