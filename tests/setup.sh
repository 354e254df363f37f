#!/bin/sh
# tests/setup.sh - install what building and testing danests needs on
# Debian 12 or 13 (run as root), then configure the build directory.
# Idempotent: packages already present are not downloaded again.  Package
# names that differ between releases are chosen by what the release has
# (the compiler runtime of the installed clang); the e2e suites install
# the libraries of the MTAs they unpack themselves (tests/e2e/lib.sh).
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential meson ninja-build pkg-config clang
 libgetdns-dev libevent-dev libssl-dev libcurl4-openssl-dev libjansson-dev
 liblmdb-dev lmdb-utils libbsd-dev zlib1g-dev libcmocka-dev exim4-dev
 libhiredis-dev redis-server
 nsd unbound ldnsutils bind9-dnsutils getdns-utils nginx-light openssl jq
 python3 python3-aiosmtpd swaks valgrind iproute2 procps psmisc curl
 ca-certificates util-linux mount bc"
# systemd: systemd-analyze verify of the shipped units (daemons.sh).
PKGS="$PKGS systemd"
# mmdebstrap: the clean Debian roots of the package suite (tests/packages).
PKGS="$PKGS mmdebstrap"
# prometheus: promtool checks what metrics_listen serves (metrics.sh).
PKGS="$PKGS prometheus"
# faketime: `danests report send` a day ahead in the e2e suites.
PKGS="$PKGS faketime"

updated=0
# install PKG... - apt-get install those of PKG... not installed yet
install() {
	missing=""
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		    missing="$missing $p"
	done
	[ -n "$missing" ] || return 0
	echo "setup: installing:$missing"
	# Packaged services must not start on the machine's own ports.
	export DEBIAN_FRONTEND=noninteractive
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	if [ $updated = 0 ]; then
		apt-get update -q >/dev/null
		updated=1
	fi
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null
}

# shellcheck disable=SC2086
install $PKGS
# libFuzzer and the sanitizers' runtime of the installed clang
# (libclang-rt-14-dev on Debian 12, libclang-rt-19-dev on Debian 13)
v=$(clang -dumpversion | cut -d. -f1)
install "libclang-rt-$v-dev"

# The test build turns warnings into errors (the project's own builds
# stay warning-free); a plain "meson setup" does not, so that a newer
# compiler's new warning never breaks a user's build.
if [ -d build ]; then
	meson configure build -Dwerror=true >/dev/null
else
	meson setup build -Dwerror=true >/dev/null
fi
ninja -C build >/dev/null
