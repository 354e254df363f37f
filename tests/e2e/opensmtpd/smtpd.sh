# tests/e2e/opensmtpd/smtpd.sh - sourced: Debian's OpenSMTPD 6.8 and
# danests-relay started on the test bed, for the e2e suite and the
# benchmark.
#
# The caller sets OSVER ROOT INST ADDR PORT RELAY_PORT ME relay, defines
# fatal MESSAGE, writes "$INST/smtpd.conf" between osmtpd_prepare and
# osmtpd_start, and calls osmtpd_cleanup on exit.  RELAY_EXTRA adds lines (of the [relay] section)
# to the relay's configuration, RELAY_CORE_EXTRA core keys.
smtpd_pid= relay_pid= ns_pid=

# stop_pid PID - SIGTERM, then SIGKILL after 5 s
stop_pid() {
	local p=$1 i
	[ -n "$p" ] || return 0
	kill "$p" 2>/dev/null || return 0
	for i in $(seq 50); do
		kill -0 "$p" 2>/dev/null || return 0
		sleep 0.1
	done
	kill -9 "$p" 2>/dev/null
}

# osmtpd_cleanup - stop smtpd, its namespace and the relay
osmtpd_cleanup() {
	stop_pid "$smtpd_pid"
	smtpd_pid=
	stop_pid "$ns_pid"
	ns_pid=
	stop_pid "$relay_pid"
	relay_pid=
}

# osmtpd_fetch - OpenSMTPD from its Debian package, unpacked once into ROOT
# (OSVER when that is the release's, else ROOT follows the release's
# version), and its libraries
osmtpd_fetch() {
	local deb
	deb=$(e2e_deb_fetch opensmtpd "$CACHE") || return 1
	case $(dpkg-deb -f "$deb" Version) in
	"$OSVER"*) ;;
	*) ROOT=$CACHE/opensmtpd-$(dpkg-deb -f "$deb" Version) ;;
	esac
	e2e_deb_unpack "$deb" "$ROOT" || return 1
	e2e_deb_libs "$deb" || return 1
	[ -x "$ROOT/usr/sbin/smtpd" ]
}

# ctl ARGS - smtpctl inside smtpd's mount namespace
ctl() {
	nsenter -t "$smtpd_pid" -m -r "$INST/smtpctl" "$@"	# -r: its root too (a chroot)
}

# osmtpd_prepare - a fresh instance under INST and the relay's config
osmtpd_prepare() {
	[ -x "$relay" ] || fatal "no $relay (build first)"
	[ -f "$E2E_CA" ] || fatal "test bed not up (no $E2E_CA)"
	osmtpd_fetch || fatal "cannot fetch opensmtpd $OSVER"
	rm -rf "$INST"
	mkdir -p "$INST/spool" "$INST/etc" "$INST/cache" "$INST/libexec" || fatal mkdir
	chmod 711 "$INST/spool"
	chown nobody "$INST/cache"
	cp -a "$ROOT/usr/libexec/opensmtpd/." "$INST/libexec/"
	# smtpctl must be setgid opensmtpq (the package's postinst does that)
	cp "$ROOT/usr/sbin/smtpctl" "$INST/smtpctl" && chgrp 64002 "$INST/smtpctl" &&
	    chmod 2555 "$INST/smtpctl" || fatal smtpctl
	# its users, in the namespace only
	cp /etc/passwd "$INST/etc/passwd" && cp /etc/group "$INST/etc/group" || fatal users
	grep -q '^opensmtpd:' "$INST/etc/passwd" || {
		echo 'opensmtpd:x:64001:64001::/var/lib/opensmtpd/empty:/usr/sbin/nologin'
		echo 'opensmtpq:x:64002:64002::/var/lib/opensmtpd/empty:/usr/sbin/nologin'
	} >>"$INST/etc/passwd"
	grep -q '^opensmtpd:' "$INST/etc/group" || {
		echo 'opensmtpd:x:64001:'
		echo 'opensmtpq:x:64002:'
	} >>"$INST/etc/group"
	cat >"$INST/relay.conf" <<EOC
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $INST/cache
${RELAY_CORE_EXTRA:-}

[relay]
listen 127.0.0.1:$RELAY_PORT
user nobody
helo_name $ME
tmpdir /tmp
transaction_timeout 120
connect_timeout 10
greeting_timeout 20
tls_timeout 20
${RELAY_EXTRA:-}
EOC
}

# osmtpd_start - the relay, then smtpd in its namespace with the test bed
# resolver (lib.sh) and its compiled-in paths
osmtpd_start() {
	chmod 644 "$INST/smtpd.conf"
	"$relay" -d -c "$INST/relay.conf" >"$INST/relay.log" 2>&1 &
	relay_pid=$!
	e2e_wait 10 sh -c "ss -Hltn 'src 127.0.0.1:$RELAY_PORT' | grep -q LISTEN" ||
	    fatal "danests-relay did not start: $(tail -3 "$INST/relay.log")"
	E2E_ROOT=$ROOT E2E_INST=$INST e2e_in_testbed sh -c '
		set -e
		mount -t tmpfs -o mode=755 tmpfs /run
		mount -t tmpfs -o mode=755 tmpfs /var/lib
		mkdir -p /var/lib/opensmtpd/empty
		mount -t tmpfs -o mode=755 tmpfs /usr/libexec
		mkdir /usr/libexec/opensmtpd
		mount --bind "$E2E_INST/libexec" /usr/libexec/opensmtpd
		mount -t tmpfs -o mode=755 tmpfs /var/spool
		mkdir -m 711 /var/spool/smtpd
		mount --bind "$E2E_INST/spool" /var/spool/smtpd
		mount --bind "$E2E_INST/etc/passwd" /etc/passwd
		mount --bind "$E2E_INST/etc/group" /etc/group
		exec "$E2E_ROOT/usr/sbin/smtpd" -d -f "$E2E_INST/smtpd.conf"
	' >"$INST/smtpd.log" 2>&1 &
	ns_pid=$!
	e2e_wait 15 sh -c "ss -Hltn 'src $ADDR:$PORT' | grep -q LISTEN" ||
	    fatal "smtpd did not start: $(tail -5 "$INST/smtpd.log")"
	# the master smtpd (inside the namespace), for smtpctl and the end
	smtpd_pid=$(pgrep -n -f "usr/sbin/smtpd -d -f $INST/smtpd.conf")
	[ -n "$smtpd_pid" ] || fatal "cannot find the smtpd master"
	ctl show status >"$INST/ctl.out" 2>&1 ||
	    fatal "smtpctl cannot reach smtpd: $(cat "$INST/ctl.out")"
}
