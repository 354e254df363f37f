#!/bin/sh
# tests/e2e/exim/prefix.sh DIR - unpack Debian's Exim (exim4-daemon-heavy,
# exim4-base, exim4-config) into DIR/root without installing it: the
# packages are fetched with apt-get download (once; kept in DIR/pkg) and
# unpacked with dpkg -x; the libraries exim4-daemon-heavy depends on are
# installed (as this release names them) when missing.
# Prints the path of the exim binary.
set -eu
dir=$1
# shellcheck source=../lib.sh
. "$(cd "$(dirname "$0")/.." && pwd)/lib.sh"
mkdir -p "$dir/pkg"
cd "$dir/pkg"
for p in exim4-daemon-heavy exim4-base exim4-config; do
	ls ${p}_*.deb >/dev/null 2>&1 && continue
	timeout 300 apt-get download -q "$p" >/dev/null 2>&1 ||
	    { apt-get update -q >/dev/null 2>&1 &&
	      timeout 300 apt-get download -q "$p" >/dev/null 2>&1; } ||
	    { echo "prefix.sh: cannot download $p" >&2; exit 1; }
done
if [ ! -x "$dir/root/usr/sbin/exim4" ]; then
	rm -rf "$dir/root"
	for f in exim4-daemon-heavy_*.deb exim4-base_*.deb exim4-config_*.deb; do
		dpkg -x "$f" "$dir/root"
	done
fi
set -- exim4-daemon-heavy_*.deb
e2e_deb_libs "$1" ||
    { echo "prefix.sh: cannot install Exim's libraries" >&2; exit 1; }
missing=$(ldd "$dir/root/usr/sbin/exim4" | grep 'not found' || true)
if [ -n "$missing" ]; then
	echo "prefix.sh: libraries missing:" >&2
	echo "$missing" >&2
	exit 1
fi
echo "$dir/root/usr/sbin/exim4"
