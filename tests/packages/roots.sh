#!/bin/sh
# tests/packages/roots.sh - cached clean Debian roots for the package suite.
#
#   roots.sh build RELEASE      a root with build-essential, lintian and the
#                               Build-Depends of debian/control installed
#   roots.sh mta RELEASE MTA    a root with the MTA package (postfix,
#                               exim4-daemon-heavy or opensmtpd) installed
#                               as Debian does, plus systemd (for
#                               systemd-analyze verify) and ca-certificates
#
# Prints the path of the root.  Roots are made with mmdebstrap from
# http://deb.debian.org/debian and kept under /var/cache/danests-test/roots,
# keyed by release, kind and a hash of what goes into them (debian/control
# for the build root), rebuilt when older than 7 days (the package lists in
# them must still match the mirror).  A lock (flock) per root makes
# concurrent runs wait for each other instead of building it twice.
# Callers never modify a cached root: they mount an overlay on top of it.
set -eu
top=$(cd "$(dirname "$0")/../.." && pwd)
CACHE=${DANESTS_ROOT_CACHE:-/var/cache/danests-test/roots}
MIRROR=${DANESTS_MIRROR:-http://deb.debian.org/debian}
MAXAGE_DAYS=7

die() { echo "roots.sh: $*" >&2; exit 1; }

kind=${1:-}
release=${2:-}
case $release in bookworm|trixie) ;; *) die "release: bookworm or trixie" ;; esac

# Tools every root gets: apt lists and the downloaded archives stay, so that
# "apt-get install ./x.deb" later resolves dependencies from the same lists.
base_pkgs="ca-certificates,adduser,procps,iproute2"
case $kind in
build)
	pkgs="$base_pkgs,build-essential,lintian,fakeroot"
	key="build $release $pkgs $(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$top/debian/control")"
	name=$release-build
	;;
mta)
	mta=${3:-}
	case $mta in
	postfix|exim4-daemon-heavy|opensmtpd) ;;
	*) die "mta: postfix, exim4-daemon-heavy or opensmtpd" ;;
	esac
	pkgs="$base_pkgs,systemd"
	key="mta $release $pkgs $mta"
	name=$release-$mta
	;;
*) die "usage: roots.sh build RELEASE | mta RELEASE MTA" ;;
esac
hash=$(printf '%s' "$key" | sha256sum | cut -c1-12)
root=$CACHE/$name-$hash

mkdir -p "$CACHE"
exec 9>"$CACHE/$name.lock"
flock -w 3600 9 || die "timed out waiting for the lock of $name"

if [ -f "$root/.danests-root-ok" ] &&
    [ -z "$(find "$root/.danests-root-ok" -mtime +$MAXAGE_DAYS)" ]; then
	echo "$root"
	exit 0
fi
command -v mmdebstrap >/dev/null || die "mmdebstrap missing (tests/setup.sh installs it)"
rm -rf "$root" "$root.tmp"
# Older roots of the same name (another hash) go.
for old in "$CACHE/$name"-*; do
	[ -d "$old" ] && rm -rf "$old"
done

# The MTA is installed in a customize hook, after its debconf answers:
# an internet site for Postfix and Exim (the defaults of a mail server; Exim's
# own default, "local delivery only", sends nothing out).
hook=$CACHE/$name.hook
cat >"$hook" <<'EOT'
#!/bin/sh
set -eu
r=$1 kind=$2 mta=$3
printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
chmod 755 "$r/usr/sbin/policy-rc.d"
echo danests-test.example >"$r/etc/mailname"
if [ "$kind" = build ]; then
	mkdir -p "$r/tmp/src"
	cp -r "$DANESTS_TOP/debian" "$r/tmp/src/"
	chroot "$r" env DEBIAN_FRONTEND=noninteractive apt-get build-dep -y -q /tmp/src
	rm -rf "$r/tmp/src"
else
	chroot "$r" debconf-set-selections <<EOD
postfix postfix/main_mailer_type select Internet Site
postfix postfix/mailname string danests-test.example
exim4-config exim4/dc_eximconfig_configtype select internet site; mail is sent and received directly using SMTP
exim4-config exim4/mailname string danests-test.example
EOD
	chroot "$r" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$mta"
fi
rm -f "$r/usr/sbin/policy-rc.d"
EOT
chmod 755 "$hook"

echo "roots.sh: creating $name (downloads from $MIRROR)" >&2
# shellcheck disable=SC2086
DANESTS_TOP=$top mmdebstrap --variant=minbase --mode=root \
    --include="$pkgs" \
    --skip=cleanup/apt/lists --skip=cleanup/apt/cache \
    --customize-hook="$hook \"\$1\" $kind ${mta:-none}" \
    "$release" "$root.tmp" "deb $MIRROR $release main" >&2 ||
    die "mmdebstrap $name failed"
# The MTA's package may have written files outside its own (keys, aliases):
# they belong to the cached root like everything else.
touch "$root.tmp/.danests-root-ok"
mv "$root.tmp" "$root"
echo "$root"
