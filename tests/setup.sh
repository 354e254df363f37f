#!/bin/sh
# tests/setup.sh - install what building and testing danests needs on
# Debian 12 (run as root), then configure the build directory.
# Idempotent: packages already present are not downloaded again.
set -eu
cd "$(dirname "$0")/.."

PKGS="build-essential meson ninja-build pkg-config clang libclang-rt-14-dev
 libgetdns-dev libevent-dev libssl-dev libcurl4-openssl-dev libjansson-dev
 liblmdb-dev lmdb-utils libbsd-dev libcmocka-dev exim4-dev
 nsd unbound ldnsutils bind9-dnsutils getdns-utils nginx-light openssl jq
 python3 python3-aiosmtpd swaks valgrind iproute2 procps psmisc
 libdb5.3 libgnutls-dane0 libidn12 libldap-2.5-0 libmariadb3 libnsl2
 libpam0g libpcre2-8-0 libperl5.36 libpq5 libsasl2-2 libspf2-2 libsqlite3-0"
# (The libdb5.3 ... libsqlite3-0 line: the libraries of Debian's
# exim4-daemon-heavy, which tests/e2e/exim unpacks without installing.)

missing=""
for p in $PKGS; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
	    missing="$missing $p"
done
if [ -n "$missing" ]; then
	echo "setup: installing:$missing"
	# Packaged services must not start on the machine's own ports.
	export DEBIAN_FRONTEND=noninteractive
	if [ ! -e /usr/sbin/policy-rc.d ]; then
		printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d
		chmod 755 /usr/sbin/policy-rc.d
		trap 'rm -f /usr/sbin/policy-rc.d' EXIT
	fi
	apt-get update -q >/dev/null
	# shellcheck disable=SC2086
	apt-get install -y -q --no-install-recommends $missing >/dev/null
fi

[ -d build ] || meson setup build >/dev/null
ninja -C build >/dev/null
