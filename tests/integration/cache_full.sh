#!/bin/bash
# cache_full.sh - a full file system gives "cache unavailable", never a
# signal
#
# LMDB maps lock.mdb and writes its reader table through the map: on a
# full file system a sparse lock file turned that write into SIGBUS, and
# every adapter opens the cache the same way (a daemon would crash-loop).
# In a private mount namespace a small tmpfs is filled to several levels,
# each catching another step of the creation (lock file, data file meta
# pages, the first commit); then `danests cache list`, `danests check` and
# a writer must end with exit 0 or the documented 75 and a reason, never a
# signal.  Last, a writer fills the rest until its writes fail: it must
# stop with an error, and the cache must stay readable.
#
# Needs root (unshare -m, mount).  Usage: cache_full.sh [BUILD_DIR]
# Prints "ok N NAME" / "not ok N NAME".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
inside=0
if [ "${1:-}" = --inside ]; then
	inside=1
	shift
fi
build=${1:-${BUILD_DIR:-$top/build}}
danests=$build/core/danests
writer=$build/tests/integration/cache_writer

if [ "$(id -u)" -ne 0 ]; then
	echo "ok 1 cache-full # SKIP needs root"
	exit 0
fi
if [ ! -x "$danests" ] || [ ! -x "$writer" ]; then
	echo "# $danests or $writer: not built"
	echo "not ok 1 cache-full"
	exit 1
fi

[ $inside -eq 1 ] ||
    exec unshare -m --propagation private "$0" --inside "$build"
mnt=$(mktemp -d)
trap 'umount "$mnt" 2>/dev/null; rmdir "$mnt"' EXIT
n=0
fail=0

# verdict NAME RC OUT - exit 0, or 75 with a reason; a signal fails
verdict() {
	local name=$1 rc=$2 out=$3
	n=$((n + 1))
	if [ "$rc" -eq 0 ] || { [ "$rc" -eq 75 ] &&
	    grep -qiE 'no space|cannot allocate|input/output' <<<"$out"; }; then
		echo "ok $n $name"
	else
		echo "not ok $n $name"
		[ "$rc" -gt 128 ] && echo "# killed by signal $((rc - 128))"
		echo "# exit $rc: $out"
		fail=1
	fi
}

size=256
for free in 0 4 8 12 16 24 32 48 64 68 72 76 80 96 128; do
	mount -t tmpfs -o size=${size}k,mode=0755 tmpfs "$mnt" || exit 1
	fill=$((size - free))
	[ "$fill" -gt 0 ] &&
	    dd if=/dev/zero of="$mnt/fill" bs=1k count="$fill" 2>/dev/null
	out=$("$danests" cache --cache-dir "$mnt/c1" list 2>&1)
	verdict "list-${free}k-free" $? "$out"
	out=$("$danests" check --cache-dir "$mnt/c2" --resolver 127.0.0.1 \
	    --timeout 1 invalid.test 2>&1 >/dev/null)
	rc=$?
	# check: 75 is also "could not be decided" (no resolver here);
	# the cache must not be the reason it died
	n=$((n + 1))
	if [ $rc -le 128 ]; then
		echo "ok $n check-${free}k-free"
	else
		echo "not ok $n check-${free}k-free"
		echo "# killed by signal $((rc - 128)): $out"
		fail=1
	fi
	out=$("$writer" "$mnt/c3" write 1 5 a 2>&1 >/dev/null)
	rc=$?
	[ $rc -eq 1 ] && rc=75	# the writer's "cannot write" exit
	verdict "write-${free}k-free" $rc "$out"
	umount "$mnt"
done

# a cache that fills up while in use: writes fail, reads go on
mount -t tmpfs -o size=512k,mode=0755 tmpfs "$mnt" || exit 1
"$writer" "$mnt/c" write 1 3 keep >/dev/null 2>&1
out=$("$writer" "$mnt/c" write 2 100000 big 2>&1 >/dev/null)
rc=$?
[ $rc -eq 1 ] && rc=75
verdict write-until-full $rc "$out"
out=$("$danests" cache --cache-dir "$mnt/c" show keep2.example 2>&1)
verdict read-after-full $? "$out"
umount "$mnt"

[ "$fail" -eq 0 ]
