#!/bin/bash
# cache_full.sh - a full file system gives "cache unavailable", never a
# signal
#
# LMDB maps lock.mdb and writes its reader table through the map: on a
# full file system a sparse lock file turned that write into SIGBUS, and
# every adapter opens the cache the same way (a daemon would crash-loop).
# In a private mount namespace a small tmpfs is filled to several levels,
# each catching another step of the creation (lock file, data file meta
# pages, the first commit); then `danests cache list`, `danests check`, a
# writer and a recorder of TLS reporting results must end with exit 0 or
# the documented 75 and a reason, never a signal.  Last, a writer fills the
# rest until its writes fail: it must stop with an error, and the cache
# must stay readable; then a recorder of results fills what is left of
# another one: it stops with 75, and every result it counted is there.
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
inject=$build/tests/integration/report_inject

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
	out=$(printf 'a.test sts ok\na.test sts certificate-expired ip=192.0.2.1\n' |
	    "$inject" --cache-dir "$mnt/c4" 2>&1 >/dev/null)
	verdict "report-${free}k-free" $? "$out"
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

# TLS reporting results until the disk is full: the recorder stops with
# 75 and a reason, and `danests report list` shows exactly what it said
# it recorded (no count lost, none half written)
mount -t tmpfs -o size=512k,mode=0755 tmpfs "$mnt" || exit 1
lines=$(mktemp)
reason=$(printf 'r%.0s' $(seq 200))
for i in $(seq 5000); do
	echo "d$i.test sts validation-failure ip=192.0.2.$((i % 250)) reason=$reason"
done >"$lines"
dd if=/dev/zero of="$mnt/fill" bs=1k count=128 2>/dev/null
out=$("$inject" --cache-dir "$mnt/r" "$lines" 2>&1)
rc=$?
recorded=$(sed -n 's/^recorded //p' <<<"$out")
n=$((n + 1))
if [ $rc -eq 75 ] && grep -qiE 'no space|input/output' <<<"$out" &&
    [ "${recorded:-0}" -gt 0 ] && [ "$recorded" -lt 5000 ]; then
	echo "ok $n report-until-full ($recorded recorded)"
else
	echo "not ok $n report-until-full"
	echo "# exit $rc: $out"
	fail=1
fi
rm -f "$mnt/fill"	# room for the reader's verdict
: >"$lines"		# an empty configuration
out=$("$danests" report list --json --cache-dir "$mnt/r" \
    --config "$lines" 2>&1)
rm -f "$lines"
listed=$(jq '[.[].failed] | add' <<<"$out" 2>/dev/null)
n=$((n + 1))
if [ -n "$recorded" ] && [ "$listed" = "$recorded" ]; then
	echo "ok $n report-after-full ($listed listed)"
else
	echo "not ok $n report-after-full"
	echo "# recorded $recorded, listed $listed: $out"
	fail=1
fi
umount "$mnt"

[ "$fail" -eq 0 ]
