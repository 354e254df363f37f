#!/bin/bash
# tests/packages/tlsrpt.sh - libtlsrpt itself, as Debian 13 ships it (the
# library its Postfix 3.10 sends TLSRPT results through), against the
# datagram parser of danests-postfix.
#
#   tlsrpt.sh record DIR     write the datagrams of each scenario of
#                            tests/bench/tlsrpt_peer.c, as libtlsrpt sends
#                            them, to DIR/NAME.json
#   tlsrpt.sh check          record into a temporary directory and compare
#                            with tests/unit/data/tlsrpt (the datagrams the
#                            unit test reads): prints ok / not ok
#   tlsrpt.sh peer           print the path of a root where
#                            /usr/local/bin/tlsrpt_peer runs (for
#                            tests/bench/tlsrpt.sh; the caller's mount
#                            namespace must be private: the overlay stays
#                            mounted)
#
# The peer is built in an overlay on the cached trixie build root
# (roots.sh build trixie) with Debian's libtlsrpt0-dev installed by apt
# (downloads cached under /var/cache/danests-test/apt/trixie).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
cmd=${1:-}

[ "$(id -u)" = 0 ] || { echo "not ok tlsrpt # must run as root (chroot, mounts)"; exit 1; }

# peer_root W - overlay on the trixie build root under W/root with
# tlsrpt_peer built against Debian's libtlsrpt; prints the root
peer_root() {
	local w=$1 r
	r=$("$here/overlay.sh" trixie "$w" libtlsrpt0-dev) || return 1
	cp "$top/tests/bench/tlsrpt_peer.c" "$r/tmp/"
	if ! chroot "$r" env -i PATH=/usr/bin:/bin cc -O2 -Wall -Wextra -o /usr/local/bin/tlsrpt_peer \
	    /tmp/tlsrpt_peer.c -ltlsrpt >"$w/cc.log" 2>&1; then
		echo "tlsrpt.sh: building tlsrpt_peer failed:" >&2
		cat "$w/cc.log" >&2
		return 1
	fi
	echo "$r"
}

case $cmd in
record|check)
	if [ "${TLSRPT_INNER:-}" != 1 ]; then
		TLSRPT_INNER=1 exec unshare -m --propagation private "$0" "$@"
	fi
	w=$(mktemp -d /var/tmp/danests-tlsrpt.XXXXXX)
	trap 'umount -R "$w/root" 2>/dev/null; rm -rf "$w"' EXIT
	r=$(peer_root "$w") || { echo "not ok tlsrpt-record # no peer root"; exit 1; }
	mkdir -p "$r/tmp/out"
	if ! chroot "$r" /usr/local/bin/tlsrpt_peer record /tmp/out; then
		echo "not ok tlsrpt-record # tlsrpt_peer record failed"
		exit 1
	fi
	v=$(chroot "$r" dpkg-query -W -f '${Version}' libtlsrpt0)
	if [ "$cmd" = record ]; then
		mkdir -p "$2"
		cp "$r"/tmp/out/*.json "$2/"
		echo "ok tlsrpt-record ($(ls "$r/tmp/out" | wc -l) datagrams of libtlsrpt $v in $2)"
		exit 0
	fi
	if diff -r "$r/tmp/out" "$top/tests/unit/data/tlsrpt" >"$w/diff" 2>&1; then
		echo "ok tlsrpt-datagrams (libtlsrpt $v sends what tests/unit/data/tlsrpt holds)"
	else
		echo "not ok tlsrpt-datagrams # libtlsrpt $v sends other datagrams: $(head -c 300 "$w/diff" | tr '\n' ' ')"
		exit 1
	fi
	;;
peer)
	w=$(mktemp -d /var/tmp/danests-tlsrpt.XXXXXX)
	peer_root "$w"
	;;
*)
	echo "usage: tlsrpt.sh record DIR | check | peer" >&2
	exit 2
	;;
esac
