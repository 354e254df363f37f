#!/bin/bash
# tests/packages/build.sh - build the Debian packages of this tree in a
# clean root of RELEASE and run lintian on them.
#
#   build.sh RELEASE OUTDIR
#
# The root (tests/packages/roots.sh build RELEASE: build-essential, lintian
# and the Build-Depends of debian/control, nothing else) is used through
# an overlay, in a private mount namespace and without network, so the
# build can reach nothing but what the Build-Depends installed.  The
# tree is copied in as git sees it (tracked and untracked files, without
# what .gitignore excludes).  OUTDIR gets the .deb files, build.log and
# lintian.log.  Prints "ok build-RELEASE" / "ok lintian-RELEASE" (or
# "not ok ...").
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
rel=$1
out=$2
mkdir -p "$out"
out=$(cd "$out" && pwd)
rm -f "$out"/*.deb "$out"/*.changes "$out"/*.buildinfo

mkdir -p "$top/build/test-logs/packages"
broot=$("$here/roots.sh" build "$rel" 2>"$top/build/test-logs/packages/root-$rel-build.log") || { echo "not ok build-$rel # no build root"; exit 1; }
w=$(mktemp -d /var/tmp/danests-pkgbuild.XXXXXX)
trap 'rm -rf "$w"' EXIT
mkdir -p "$w/upper" "$w/work" "$w/root"
version=$(dpkg-parsechangelog -l "$top/debian/changelog" -S Version 2>/dev/null ||
    sed -n '1s/.*(\(.*\)).*/\1/p' "$top/debian/changelog")

(cd "$top" && git ls-files -z --cached --others --exclude-standard |
    xargs -0 -r sh -c 'for f; do [ -e "$f" ] && printf "%s\0" "$f"; done' sh |
    tar --null -T - -cf "$w/src.tar") || { echo "not ok build-$rel # cannot pack the tree"; exit 1; }

# shellcheck disable=SC2016
unshare -m -n --propagation private bash -c '
	set -e
	w=$1 broot=$2 version=$3
	mount -t overlay overlay -o "lowerdir=$broot,upperdir=$w/upper,workdir=$w/work" "$w/root"
	mount -t proc proc "$w/root/proc"
	mount --bind /dev "$w/root/dev"
	mount -t tmpfs tmpfs "$w/root/tmp"
	mkdir -p "$w/root/build/danests-$version"
	tar -xf "$w/src.tar" -C "$w/root/build/danests-$version"
	chroot "$w/root" sh -c "cd /build/danests-$version && dpkg-buildpackage -us -uc -b" \
	    >"$w/build.log" 2>&1 || { echo "build failed" >>"$w/build.log"; exit 1; }
	cp "$w/root/build/"*.deb "$w/root/build/"*.changes "$w/root/build/"*.buildinfo "$w/"
	chroot "$w/root" sh -c "cd /build && lintian --fail-on error --display-info --tag-display-limit 0 *.changes" \
	    >"$w/lintian.log" 2>&1 || { echo "lintian failed" >>"$w/lintian.log"; lint=2; }
	# A plain meson build without the test dependencies (no cmocka in
	# this root): the programs build, install where the shared layout
	# says, and each adapter option leaves the others out.
	chroot "$w/root" sh -c "cd /build/danests-$version &&
	    for v in all postfix exim opensmtpd; do
		case \$v in
		all) o=\"-Dexim=auto -Dpostfix=true -Dopensmtpd=true\" ;;
		postfix) o=\"-Dexim=disabled -Dpostfix=true -Dopensmtpd=false\" ;;
		exim) o=\"-Dexim=auto -Dpostfix=false -Dopensmtpd=false\" ;;
		opensmtpd) o=\"-Dexim=disabled -Dpostfix=false -Dopensmtpd=true\" ;;
		esac
		if [ \$v = all ]; then
			meson setup /tmp/plain -Dprefix=/usr >/dev/null
		else
			meson configure /tmp/plain \$o >/dev/null
		fi &&
		    ninja -C /tmp/plain >/dev/null &&
		    DESTDIR=/tmp/inst-\$v meson install -C /tmp/plain >/dev/null &&
		    (cd /tmp/inst-\$v && find . ! -type d | sort | sed \"s|^|\$v |\") || echo \"\$v FAILED\"
	    done" >"$w/meson.log" 2>&1
	exit ${lint:-0}
' danests-build "$w" "$broot" "$version"
rc=$?
cp "$w"/*.deb "$w"/*.changes "$w"/*.buildinfo "$out/" 2>/dev/null
cp "$w/build.log" "$out/build.log" 2>/dev/null
cp "$w/lintian.log" "$out/lintian.log" 2>/dev/null
cp "$w/meson.log" "$out/meson.log" 2>/dev/null
if [ $rc = 0 ] || [ $rc = 2 ]; then
	echo "ok build-$rel $(cd "$out" && echo *.deb)"
else
	echo "not ok build-$rel # see $out/build.log"
	tail -n 30 "$out/build.log"
	exit 1
fi
# meson-plain-RELEASE: the installed files of each variant, exactly.
expect_meson() {
	local v=$1 f
	shift
	for f in "$@"; do echo "$v .$f"; done
}
{
	expect_meson all /usr/bin/danests /usr/sbin/danests-postfix /usr/sbin/danests-relay \
	    /usr/libexec/opensmtpd/filter-danests \
	    /usr/lib/danests/danests_exim.so \
	    /lib/systemd/system/danests-postfix.service /lib/systemd/system/danests-relay.service \
	    /lib/systemd/system/danests-refresh.service /lib/systemd/system/danests-refresh.timer \
	    /lib/systemd/system/danests-report.service /lib/systemd/system/danests-report.timer
	for v in postfix exim opensmtpd; do
		expect_meson $v /usr/bin/danests /lib/systemd/system/danests-refresh.service \
		    /lib/systemd/system/danests-refresh.timer \
		    /lib/systemd/system/danests-report.service \
		    /lib/systemd/system/danests-report.timer
	done
	expect_meson postfix /usr/sbin/danests-postfix /lib/systemd/system/danests-postfix.service
	expect_meson exim /usr/lib/danests/danests_exim.so
	expect_meson opensmtpd /usr/sbin/danests-relay /lib/systemd/system/danests-relay.service \
	    /usr/libexec/opensmtpd/filter-danests
} | sort >"$w/meson.expect"
# Man pages and samples are listed as installed, not checked one by one.
grep -v ' ./usr/share/' "$out/meson.log" | sort >"$w/meson.got"
if diff -u "$w/meson.expect" "$w/meson.got" >"$out/meson.diff" &&
    grep -q '^all ./usr/share/man/man1/danests.1' "$out/meson.log" &&
    ! grep -q ' ./etc/' "$out/meson.log"; then
	echo "ok meson-plain-$rel (no cmocka; install layout and per-adapter options)"
else
	echo "not ok meson-plain-$rel # see $out/meson.log"
	cat "$out/meson.diff"
fi
if [ $rc = 0 ]; then
	echo "ok lintian-$rel ($(grep -c '^[EWIP]: ' "$out/lintian.log") tags, no errors)"
else
	echo "not ok lintian-$rel # errors, see $out/lintian.log"
	grep '^E: ' "$out/lintian.log"
	exit 1
fi
