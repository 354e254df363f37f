#!/bin/bash
# cache_owner.sh - the shared state directory: usable by every adapter
# whoever comes first, and refused when others could write it
#
# Root (danests check, exim -bt), the daemons as _danests and Exim's
# delivery processes (another user in group _danests) all open the one
# cache.  Whoever creates the directory or a file in it, every other one
# must still read and write it, whatever its umask.  And a directory or
# file that someone else could write (world-writable, foreign owner or
# group, symbolic or hard link) is refused with the reason and the fix,
# as "cache unavailable" (exit 75), never followed.
#
# Needs root: it creates the service account _danests (as the packages
# do) and a test user danests-test in group _danests when they are absent.
#
# Usage: cache_owner.sh [BUILD_DIR]   Prints "ok N NAME" / "not ok N NAME".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-${BUILD_DIR:-$top/build}}
danests=$build/core/danests
writer=$build/tests/integration/cache_writer
n=0
fail=0

ok() { n=$((n + 1)); echo "ok $n $1"; }
nok() { n=$((n + 1)); echo "not ok $n $1"; fail=1; }
# expect NAME CONDITION-STATUS [DETAIL]
expect() { if [ "$2" -eq 0 ]; then ok "$1"; else nok "$1"; [ -n "${3:-}" ] && echo "# $3"; fi; }

if [ "$(id -u)" -ne 0 ]; then
	echo "ok 1 cache-owner # SKIP needs root"
	exit 0
fi
for f in "$danests" "$writer"; do
	if [ ! -x "$f" ]; then
		echo "# $f: not built"
		echo "not ok 1 cache-owner"
		exit 1
	fi
done

# retry - run an account tool, which fails while another holds the lock
retry() {
	local i
	for i in 1 2 3 4 5 6 7 8 9 10; do
		"$@" 2>/dev/null && return 0
		sleep 0.5
	done
	"$@"
}
getent group _danests >/dev/null || retry groupadd -r _danests ||
    getent group _danests >/dev/null
getent passwd _danests >/dev/null ||
    retry useradd -r -g _danests -M -d /var/lib/danests \
    -s /usr/sbin/nologin _danests || getent passwd _danests >/dev/null
getent passwd danests-test >/dev/null ||
    retry useradd -r -U -M -s /usr/sbin/nologin danests-test ||
    getent passwd danests-test >/dev/null
id -nG danests-test | grep -qw _danests ||
    retry usermod -a -G _danests danests-test
if ! id -nG danests-test | grep -qw _danests ||
    ! getent passwd _danests >/dev/null; then
	echo "# cannot set up the accounts _danests and danests-test"
	echo "not ok 1 cache-owner"
	exit 1
fi

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
chmod 755 "$tmp"

# as USER CMD... - run with USER's ids and groups and a private umask
as() {
	local u=$1
	shift
	if [ "$u" = root ]; then
		(umask 077; "$@")
	else
		setpriv --reuid="$u" --regid="$(id -g "$u")" --init-groups \
		    -- sh -c 'umask 077; exec "$@"' sh "$@"
	fi
}

# shared DIR - the directory and every file in it have the shared owner
shared() {
	local d=$1 bad
	[ "$(stat -c '%G %a' "$d")" = "_danests 2770" ] || return 1
	bad=$(find "$d" -mindepth 1 \( ! -type f -o ! -group _danests -o \
	    ! -perm 0660 -o -perm /0117 \) -printf '%p %u:%g %m\n')
	[ -z "$bad" ] || { echo "# not shared: $bad"; return 1; }
}

# round DIR FIRST - FIRST writes first, then every other user reads what
# the others wrote and writes its own
round() {
	local d=$1 first=$2 u i=0 prev=""
	for u in $first root _danests danests-test root; do
		i=$((i + 1))
		as "$u" "$writer" "$d" write 1 3 "p$i-" >/dev/null ||
		    { echo "# $u cannot write $d"; return 1; }
		if [ -n "$prev" ] && ! as "$u" "$danests" cache --cache-dir \
		    "$d" show "${prev}2.example" >/dev/null; then
			echo "# $u cannot read what the one before wrote"
			return 1
		fi
		prev="p$i-"
		shared "$d" || { echo "# after $u"; return 1; }
	done
}

# 1. root creates the directory and its files
d=$tmp/root-first
as root "$danests" cache --cache-dir "$d" list >/dev/null
expect root-creates-shared-dir "$([ "$(stat -c '%U:%G %a' "$d")" = \
    "_danests:_danests 2770" ]; echo $?)" "$(stat -c '%U:%G %a' "$d")"
shared "$d"
expect root-creates-shared-files $?
round "$d" root
expect root-first-then-every-user $?

# 2. the directory made by the packages, the files by an Exim delivery
# (a member of group _danests), then root and the daemon's user
for first in danests-test _danests; do
	d=$tmp/$first-first
	install -d -o _danests -g _danests -m 2770 "$d"
	round "$d" "$first"
	expect "$first-first-then-every-user" $?
	[ "$(stat -c %U "$d/data.mdb")" != root ]
	expect "$first-first-no-root-files" $?
done

# 3. a root-only cache left by an older version is handed over
d=$tmp/legacy
install -d -o _danests -g _danests -m 2770 "$d"
as root "$danests" cache --cache-dir "$d" list >/dev/null
chown root:root "$d"/*.mdb
chmod 600 "$d"/*.mdb
as root "$danests" cache --cache-dir "$d" list >/dev/null
shared "$d" && as danests-test "$writer" "$d" write 1 3 l >/dev/null
expect root-repairs-private-files $?

# refused DIR NAME PATTERN... - opening DIR fails as unavailable, naming
# it and the fault
refused() {
	local d=$1 name=$2 out rc p
	shift 2
	out=$("$danests" cache --cache-dir "$d" list 2>&1)
	rc=$?
	if [ $rc -ne 75 ]; then
		nok "$name"
		echo "# exit $rc: $out"
		return
	fi
	for p in "$@"; do
		if ! grep -qF -- "$p" <<<"$out"; then
			nok "$name"
			echo "# no \"$p\" in: $out"
			return
		fi
	done
	ok "$name"
}

mk() { rm -rf "$1"; install -d -o _danests -g _danests -m 2770 "$1"; }
d=$tmp/bad
mk "$d"; chmod 0777 "$d"
refused "$d" refuse-world-writable "$d: writable by every user" \
    "chown _danests:_danests $d; chmod 2770 $d"
mk "$d"; chmod 1777 "$d"
refused "$d" refuse-world-writable-sticky "writable by every user"
mk "$d"; chown nobody "$d"
refused "$d" refuse-foreign-owner "owned by another user"
mk "$d"; chgrp nogroup "$d"
refused "$d" refuse-foreign-group "writable by another group"
mk "$d"; ln -s "$d" "$tmp/link"
refused "$tmp/link" refuse-symlinked-dir "a symbolic link"
refused "$tmp/link/" refuse-symlinked-dir-slash "a symbolic link"

# the attack of the report: lock.mdb pointing at a file root owns
mk "$d"
printf 'precious\n' >"$tmp/victim"
ln -s "$tmp/victim" "$d/lock.mdb"
refused "$d" refuse-symlinked-lock "$d/lock.mdb: a symbolic link"
[ "$(cat "$tmp/victim")" = precious ]
expect symlink-target-untouched $?

mk "$d"
"$danests" cache --cache-dir "$d" list >/dev/null
ln "$d/data.mdb" "$tmp/second-name"
refused "$d" refuse-hard-linked-data "$d/data.mdb: hard-linked elsewhere"
rm -f "$tmp/second-name"
mk "$d"
"$danests" cache --cache-dir "$d" list >/dev/null
chown nobody "$d/lock.mdb"
refused "$d" refuse-foreign-file "$d/lock.mdb: owned by another user"
mk "$d"
"$danests" cache --cache-dir "$d" list >/dev/null
chmod 0666 "$d/data.mdb"
refused "$d" refuse-world-writable-file "writable by every user" \
    "chmod 0660 $d/data.mdb"

[ "$fail" -eq 0 ]
