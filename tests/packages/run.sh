#!/bin/bash
# tests/packages/run.sh - the Debian packages, built and used as an
# administrator would: for each release (Debian 12 bookworm, Debian 13
# trixie) build the packages in a clean root (build.sh: dpkg-buildpackage,
# lintian, a plain meson build), then for each MTA (Postfix, Exim,
# OpenSMTPD) install them next to Debian's MTA in a clean root and prove
# five scenarios with only the README.Debian steps (mta.sh).
#
# Environment:
#   PKG_RELEASES   releases (default "bookworm trixie")
#   PKG_MTAS       MTA packages (default "postfix exim4-daemon-heavy opensmtpd")
#
# Roots are cached under /var/cache/danests-test/roots (roots.sh), apt
# downloads under /var/cache/danests-test/apt; the first run creates them
# (downloads from deb.debian.org), later runs take minutes.  Logs:
# build/test-logs/packages/.  Prints "ok ..." / "not ok ..." lines and the
# wall time.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
RELEASES=${PKG_RELEASES:-"bookworm trixie"}
MTAS=${PKG_MTAS:-"postfix exim4-daemon-heavy opensmtpd"}
out=$top/build/packages
start=$(date +%s)
rc=0

[ "$(id -u)" = 0 ] || { echo "not ok packages # must run as root (chroot, namespaces)"; exit 1; }
command -v mmdebstrap >/dev/null ||
    { echo "not ok packages # mmdebstrap missing (tests/setup.sh installs it)"; exit 1; }

for rel in $RELEASES; do
	t0=$(date +%s)
	if ! "$here/build.sh" "$rel" "$out/$rel"; then
		rc=1
		continue
	fi
	echo "# $rel: packages built in $(($(date +%s) - t0)) s"
	for mta in $MTAS; do
		t0=$(date +%s)
		"$here/mta.sh" "$rel" "$mta" "$out/$rel" || rc=1
		echo "# $rel $mta: $(($(date +%s) - t0)) s"
	done
done
# Debian 13's libtlsrpt (what its Postfix 3.10 sends TLSRPT results
# through) still sends the datagrams the collector's unit test reads.
case " $RELEASES " in
*" trixie "*) "$here/tlsrpt.sh" check || rc=1 ;;
esac
echo "# packages: wall time $(($(date +%s) - start)) s"
exit $rc
