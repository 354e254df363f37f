#!/bin/bash
# tests/packages/overlay.sh - a throw-away root of another Debian release
# with a few of its packages, for running that release's programs (its
# libtlsrpt, its postfix-mta-sts-resolver) next to the test bed.
#
#   overlay.sh RELEASE DIR [PACKAGE...]
#
# Mounts an overlay on the cached build root of RELEASE (roots.sh build
# RELEASE) at DIR/root, with /proc, a minimal /dev and a /tmp, and
# installs PACKAGE... there with apt (downloads cached under
# /var/cache/danests-test/apt/RELEASE, shared by concurrent runs).  Prints
# DIR/root.  The caller's mount namespace must be private (unshare -m
# --propagation private): the mounts stay until `umount -R DIR/root` or
# the namespace ends.  Nothing in the cached root changes.
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
rel=${1:-} w=${2:-}
[ -n "$rel" ] && [ -d "$w" ] || { echo "usage: overlay.sh RELEASE DIR [PACKAGE...]" >&2; exit 64; }
shift 2
mkdir -p "$top/build/test-logs/packages"
base=$("$here/roots.sh" build "$rel" 2>>"$top/build/test-logs/packages/root-$rel-build.log") ||
    { echo "overlay.sh: roots.sh build $rel failed" >&2; exit 1; }
r=$w/root
mkdir -p "$w/upper" "$w/work" "$r"
mount -t overlay overlay -o "lowerdir=$base,upperdir=$w/upper,workdir=$w/work" "$r" ||
    { echo "overlay.sh: overlay mount failed" >&2; exit 1; }
mount -t proc proc "$r/proc"
mount -t tmpfs -o mode=755 tmpfs "$r/dev"
for n in null zero random urandom; do
	touch "$r/dev/$n" && mount --bind "/dev/$n" "$r/dev/$n"
done
mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
if [ $# -gt 0 ]; then
	apt_cache=/var/cache/danests-test/apt/$rel
	mkdir -p "$apt_cache/partial"
	mount --bind "$apt_cache" "$r/var/cache/apt/archives"
	# (nothing may start: no init system here, and no network of its own)
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"
	if ! flock -w 600 "$apt_cache/partial" chroot "$r" env -i PATH=/usr/sbin:/usr/bin:/sbin:/bin \
	    DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "$@" \
	    >"$w/apt.log" 2>&1; then
		echo "overlay.sh: apt-get install $* failed:" >&2
		tail -n 5 "$w/apt.log" >&2
		exit 1
	fi
	rm -f "$r/usr/sbin/policy-rc.d"
fi
echo "$r"
