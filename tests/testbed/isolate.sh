#!/bin/sh
# tests/testbed/isolate.sh CMD [ARG...] - run CMD, a command relative to the
# top of the checkout, where the test bed and the MTAs can run without
# meeting anything else:
#
#  - a network namespace of its own, with only lo (brought up, so
#    127.0.0.0/8 is a local route): the servers on 127.10.x.y:53/443/25
#    never collide with the machine's own services or with another test
#    run, and nothing binds in the machine's namespace;
#  - a private mount namespace in which the checkout is also seen at
#    /var/tmp/danests-test.XXXXXX/top (created 0755, removed at the end;
#    not under /run, which the OpenSMTPD e2e suite replaces in its own
#    namespace): daemons that drop privileges (danests-relay, Postfix,
#    Exim) can then read the test CA, their configuration and their spool
#    even when the checkout lies under a directory they cannot search (a
#    0700 home or mktemp -d).
#
# CMD runs from that directory; DANESTS_TEST_TOP names the checkout's own
# path.  When CMD ends, every process still left in the namespace is
# stopped (SIGTERM, then SIGKILL after 5 s) and named on stderr.  Exit
# status: CMD's.  Needs root (unshare).
#
# Example: tests/testbed/isolate.sh sh -c 'tests/testbed/up.sh &&
#     tests/integration/golden.sh build; tests/testbed/down.sh'
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd -P)
if [ $# -eq 0 ]; then
	echo "usage: $0 CMD [ARG...]" >&2
	exit 2
fi
[ "$(id -u)" = 0 ] || { echo "isolate.sh: must run as root" >&2; exit 1; }

base=$(mktemp -d /var/tmp/danests-test.XXXXXX) || {
	echo "isolate.sh: cannot create a directory under /var/tmp" >&2
	exit 1
}
chmod 755 "$base"
mkdir "$base/top"
trap 'rmdir "$base/top" "$base" 2>/dev/null || true' EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

rc=0
DANESTS_TEST_TOP=$top unshare --net --mount --propagation private sh -c '
	top=$1 mnt=$2
	shift 2
	ip link set lo up || { echo "isolate.sh: cannot bring lo up" >&2; exit 1; }
	mount --bind "$top" "$mnt" || exit 1
	cd "$mnt" || exit 1
	rc=0
	"$@" || rc=$?
	# Anything left behind in this namespace (a daemon whose stop failed)
	# would live on unseen: stop it now.
	me=$(readlink /proc/$$/ns/net)
	left=""
	for d in /proc/[0-9]*; do
		p=${d#/proc/}
		[ "$p" = $$ ] && continue
		[ "$(readlink "$d/ns/net" 2>/dev/null)" = "$me" ] || continue
		left="$left $p"
	done
	if [ -n "$left" ]; then
		echo "isolate.sh: still running after $1, stopped:" >&2
		for p in $left; do
			printf "  %s %s\n" "$p" "$(tr "\0" " " <"/proc/$p/cmdline" 2>/dev/null)" >&2
		done
		kill $left 2>/dev/null
		n=0
		while [ $n -lt 50 ]; do
			alive=""
			for p in $left; do
				kill -0 "$p" 2>/dev/null && alive="$alive $p"
			done
			[ -z "$alive" ] && break
			sleep 0.1
			n=$((n + 1))
		done
		[ -n "$alive" ] && kill -9 $alive 2>/dev/null
	fi
	exit $rc
' isolate "$top" "$base/top" "$@" || rc=$?
exit $rc
