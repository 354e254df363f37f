#!/bin/bash
# tests/packages/mta.sh - the installed packages next to one MTA of one
# Debian release, set up only as README.Debian says, against the loopback
# test bed.
#
#   mta.sh RELEASE MTA DEBDIR
#
# MTA is postfix, exim4-daemon-heavy or opensmtpd; DEBDIR holds the .deb
# files built for RELEASE (tests/packages/build.sh).  In a private mount
# namespace, an overlay on the cached root of RELEASE with the MTA
# (roots.sh mta) gets "apt-get install MTA ./danests_*.deb
# ./danests-ADAPTER_*.deb" (dependencies from the mirror; downloads cached
# under /var/cache/danests-test/apt/RELEASE).  Then, in a network
# namespace of its own: the test bed (tests/testbed/up.sh, on the host side
# of the same network namespace), the danests daemon started from the
# ExecStart line of its installed unit (systemd is not PID 1 in a chroot:
# tests/packages/systemctl stands in for it), the commands of the "Set up"
# section of the installed README.Debian (for Exim: the unsplit
# configuration on bookworm, the split one on trixie), one message to
# postmaster@ each of dane-ee.test, dane-mismatch.test, sts-enforce.test,
# sts-certbad.test and null-mx.test, and the outcomes the scenario list
# expects, read from the receivers and from the MTA's queue and log.
#
# Test plumbing, not administrator steps: /etc/resolv.conf of the root names
# the test bed's resolver (with "options trust-ad"), the test CA joins the
# root's trust store (update-ca-certificates), syslog of the root goes to a
# file, and for Exim DANESTS_IGNORE_TARGET_HOSTS lets the routers use the
# test bed's 127.10.0.0/16 addresses (Debian's default ignores loopback).
#
# With Debian 13's Postfix (3.10, built with libtlsrpt) also the set-up
# lines of README.md "TLS reporting with Postfix" (the collector of
# danests-postfix): Postfix's log of what it reported must match
# `danests report show --json` for the TLSA and MTA-STS scenarios that
# publish a TLSRPT record; and a message with "TLS-Required: No" to
# dane-mitm.test is delivered (RFC 8689, tls_required_enable).
set -u
here=$(cd "$(dirname "$0")" && pwd)
top=$(cd "$here/../.." && pwd)
rel=$1 mta=$2 debs=$(cd "$3" && pwd)
DOMAINS="dane-ee.test dane-mismatch.test sts-enforce.test sts-certbad.test null-mx.test"
WAIT=${PKG_WAIT:-90}

case $mta in
postfix) pkg=danests-postfix unit=danests-postfix svc=postfix ;;
exim4-daemon-heavy) pkg=danests-exim unit= svc=exim4 ;;
opensmtpd) pkg=danests-opensmtpd unit=danests-relay svc=opensmtpd ;;
*) echo "not ok usage # mta.sh RELEASE postfix|exim4-daemon-heavy|opensmtpd DEBDIR"; exit 1 ;;
esac
name=$rel-$svc

# --- outer part: a private mount namespace ---------------------------
if [ "${1:-}" != --inner ] && [ "${PKG_INNER:-}" != 1 ]; then
	mkdir -p "$top/build/test-logs/packages"
	mroot=$("$here/roots.sh" mta "$rel" "$mta" 2>"$top/build/test-logs/packages/root-$name.log") ||
	    { echo "not ok root-$name # roots.sh mta $rel $mta failed"; exit 1; }
	w=$(mktemp -d /var/tmp/danests-pkgtest.XXXXXX)
	chmod 755 "$w"	# the test bed's servers drop privileges and read run/
	logs=$top/build/test-logs/packages/$name
	rm -rf "$logs"
	mkdir -p "$logs"
	trap 'cp "$w"/*.log "$logs/" 2>/dev/null; rm -rf "$w"' EXIT
	trap 'exit 143' TERM INT
	PKG_INNER=1 PKG_W=$w PKG_MROOT=$mroot unshare -m --propagation private "$0" "$@"
	exit $?
fi

w=$PKG_W
r=$w/root
fails=0
ok() { echo "ok $1"; }
notok() { fails=$((fails + 1)); echo "not ok $1${2:+ # $2}"; }
in_root() { chroot "$r" env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    HOME=/root LANG=C.UTF-8 "$@"; }

# --- the root: overlay, /proc, a minimal /dev, /run, /tmp ---------------
if [ "${PKG_NET:-}" != 1 ]; then
	mkdir -p "$w/upper" "$w/work" "$r"
	mount -t overlay overlay -o "lowerdir=$PKG_MROOT,upperdir=$w/upper,workdir=$w/work" "$r" ||
	    { notok "root-$name" "overlay mount failed"; exit 1; }
	mount -t proc proc "$r/proc"
	mount -t sysfs sysfs "$r/sys"
	mount -t tmpfs -o mode=755 tmpfs "$r/dev"
	for n in null zero full random urandom tty; do
		touch "$r/dev/$n" && mount --bind "/dev/$n" "$r/dev/$n"
	done
	mkdir -p "$r/dev/pts" "$r/dev/shm"
	ln -s /proc/self/fd "$r/dev/fd"
	mount -t tmpfs -o mode=755 tmpfs "$r/run"
	mkdir -p "$r/run/lock"
	mount -t tmpfs -o mode=1777 tmpfs "$r/tmp"
	apt_cache=/var/cache/danests-test/apt/$rel
	mkdir -p "$apt_cache/partial"
	mount --bind "$apt_cache" "$r/var/cache/apt/archives"

	# --- apt-get install of the MTA and the packages ------------------
	mkdir -p "$r/tmp/debs"
	cp "$debs"/danests_*.deb "$debs/${pkg}"_*.deb "$r/tmp/debs/" ||
	    { notok "install-$name" "no .deb files in $debs"; exit 1; }
	# Nothing may start during the installation (no systemd here; init
	# scripts would start daemons in the host's network namespace).
	printf '#!/bin/sh\nexit 101\n' >"$r/usr/sbin/policy-rc.d"
	chmod 755 "$r/usr/sbin/policy-rc.d"
	# (Debian 13's Postfix root: also a redis-server, the shared store
	# reached over TLS with Debian 13's hiredis)
	extra=
	[ "$rel-$mta" = trixie-postfix ] && extra=redis-server
	# shellcheck disable=SC2046,SC2086
	# (flock: runs at once share the download cache)
	if flock -w 600 "$apt_cache/partial" chroot "$r" env -i \
	    PATH=/usr/sbin:/usr/bin:/sbin:/bin DEBIAN_FRONTEND=noninteractive apt-get install -y -q "$mta" $extra \
	    $(cd "$r" && ls tmp/debs/*.deb | sed 's|^|/|') >"$w/apt.log" 2>&1; then
		ok "install-$name ($(cd "$r/tmp/debs" && echo *.deb))"
	else
		notok "install-$name" "apt-get install failed, see apt.log"
		tail -n 20 "$w/apt.log"
		exit 1
	fi
	rm -f "$r/usr/sbin/policy-rc.d"

	# --- what the packages set up ------------------------------------
	st=$(in_root stat -c '%U:%G %a' /var/lib/danests)
	if in_root getent passwd _danests >/dev/null && [ "$st" = "_danests:_danests 2770" ]; then
		ok "account-$name (_danests, /var/lib/danests $st)"
	else
		notok "account-$name" "/var/lib/danests is $st"
	fi
	if [ "$svc" = exim4 ]; then
		if in_root id -nG Debian-exim | tr ' ' '\n' | grep -qx _danests; then
			ok "exim-group-$name (Debian-exim in _danests)"
		else
			notok "exim-group-$name" "Debian-exim not in group _danests"
		fi
	fi
	units=$(in_root dpkg -L danests "$pkg" | grep -E '/systemd/system/[^/]+\.(service|timer)$' | sort -u)
	# shellcheck disable=SC2086
	if in_root systemd-analyze verify --man=no $units >"$w/units.log" 2>&1 &&
	    ! grep -q . "$w/units.log"; then
		ok "units-$name (systemd-analyze verify: $(echo $units | wc -w) units)"
	else
		notok "units-$name" "systemd-analyze verify: $(head -n 3 "$w/units.log" | tr '\n' ' ')"
	fi
	for u in danests-refresh.timer danests-report.timer ${unit:+$unit.service}; do
		if ls "$r"/etc/systemd/system/*.target.wants/"$u" >/dev/null 2>&1; then
			ok "enabled-$name-$u"
		else
			notok "enabled-$name-$u" "not enabled by the package"
		fi
	done
	cp "$here/systemctl" "$r/usr/local/sbin/systemctl"

	PKG_NET=1 unshare -n "$0" "$@"
	rc=$?
	[ $fails = 0 ] && exit $rc
	exit 1
fi

# --- inner part: a network namespace of its own --------------------
. "$top/tests/e2e/lib.sh"
E2E_SENDER=pkg-$name@danests-test.example
ip link set lo up
sink_pid= pids_started=0
cleanup() {
	if [ "$pids_started" = 1 ]; then
		in_root systemctl stop "$svc" >/dev/null 2>&1
		[ -n "$unit" ] && in_root systemctl stop "$unit" >/dev/null 2>&1
	fi
	# whatever still runs from the root (bounded)
	for p in $(ls -l /proc/*/root 2>/dev/null | awk -v r="$r" '$NF == r { split($(NF-2), a, "/"); print a[3] }'); do
		kill -TERM "$p" 2>/dev/null
	done
	sleep 0.5
	for p in $(ls -l /proc/*/root 2>/dev/null | awk -v r="$r" '$NF == r { split($(NF-2), a, "/"); print a[3] }'); do
		kill -KILL "$p" 2>/dev/null
	done
	[ -n "$sink_pid" ] && kill "$sink_pid" 2>/dev/null
	[ -n "${tb:-}" ] && "$tb/down.sh" >/dev/null 2>&1
}
trap cleanup EXIT
trap 'exit 143' TERM INT	# so that cleanup runs

# A copy of the test bed of its own (its run/ directory holds keys, zones
# and mailboxes), so that a test bed of the machine's own network namespace
# is never touched.
tb=$w/tb/tests/testbed
mkdir -p "$w/tb/tests"
cp -r "$top/tests/testbed" "$tb" && rm -rf "$tb/run"
ln -s "$top/tests/scenarios" "$w/tb/tests/scenarios"
E2E_TB=$tb E2E_RUN=$tb/run E2E_MAIL=$tb/run/smtp/mail E2E_CA=$tb/run/pki/ca.crt
if ! "$tb/up.sh" >"$w/testbed.log" 2>&1; then
	notok "testbed-$name" "up.sh failed"
	tail -n 20 "$w/testbed.log"
	exit 1
fi
e2e_mail_reset

# syslog of the root, into syslog.log (the daemons and Postfix and
# OpenSMTPD log there)
python3 -c '
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(sys.argv[1])
import os; os.chmod(sys.argv[1], 0o666)
with open(sys.argv[2], "ab", buffering=0) as f:
    while True:
        f.write(s.recv(65536) + b"\n")
' "$r/dev/log" "$w/syslog.log" &
sink_pid=$!

# test plumbing: resolver, test CA, Exim's loopback addresses
rm -f "$r/etc/resolv.conf"
printf 'nameserver %s\noptions trust-ad\n' "$E2E_RESOLVER" >"$r/etc/resolv.conf"
mkdir -p "$r/usr/local/share/ca-certificates"
cp "$E2E_CA" "$r/usr/local/share/ca-certificates/danests-test-ca.crt"
in_root update-ca-certificates >"$w/ca.log" 2>&1 || notok "ca-$name" "update-ca-certificates failed"
section="Set up"
# The test bed's receivers hold port 25 of 127.10.2.x: Postfix must not
# bind the wildcard address (Exim and OpenSMTPD listen on localhost only).
if [ "$svc" = postfix ]; then
	in_root postconf -e 'inet_interfaces = loopback-only' ||
	    notok "plumbing-$name" "postconf inet_interfaces failed"
fi
if [ "$svc" = exim4 ]; then
	ign='DANESTS_IGNORE_TARGET_HOSTS = <; 0.0.0.0 ; 255.255.255.255'
	if [ "$rel" = bookworm ]; then
		section=Unsplit
		echo "$ign" >>"$r/etc/exim4/exim4.conf.localmacros"
	else
		section=Split
		sed -i "s/^dc_use_split_config=.*/dc_use_split_config='true'/" \
		    "$r/etc/exim4/update-exim4.conf.conf"
		echo "$ign" >"$r/etc/exim4/conf.d/main/00_danests-testbed"
	fi
	# the test bed's receivers hold port 25 of 127.10.2.x
	sed -i "s/^dc_local_interfaces=.*/dc_local_interfaces='127.0.0.1'/" \
	    "$r/etc/exim4/update-exim4.conf.conf"
fi

# The daemon, as systemd starts the enabled unit (ExecStartPre, ExecStart)
pids_started=1
if [ -n "$unit" ]; then
	if in_root systemctl start "$unit" >"$w/start.log" 2>&1; then
		ok "start-$name ($unit from its unit file)"
	else
		notok "start-$name" "$(tail -n 3 "$w/start.log" | tr '\n' ' ')"
		cat "$r/var/log/$unit.shim.log" 2>/dev/null | tail -n 10
	fi
fi

# README.Debian, section by section, command by command
readme=$r/usr/share/doc/$pkg/README.Debian
[ -f "$readme" ] || { zcat "$readme.gz" >"$w/README.Debian" && readme=$w/README.Debian; }
n=0 bad=0
while IFS= read -r cmd; do
	n=$((n + 1))
	echo "# $cmd" >>"$w/readme.log"
	if ! in_root sh -ec "$cmd" >>"$w/readme.log" 2>&1; then
		bad=1
		notok "readme-$name" "step $n failed: $cmd"
		tail -n 10 "$w/readme.log"
		break
	fi
done < <("$here/steps.sh" "$readme" "$section")
[ $bad = 0 ] && [ $n -gt 0 ] && ok "readme-$name ($n commands of \"$section\")"
[ $bad = 0 ] || exit 1

# Postfix >= 3.10 reports each TLS attempt through libtlsrpt: the set-up
# lines of README.md, "TLS reporting with Postfix", command by command
tlsrpt=0
[ "$rel-$svc" = trixie-postfix ] && tlsrpt=1
if [ $tlsrpt = 1 ]; then
	n=0
	while IFS= read -r cmd; do
		n=$((n + 1))
		echo "# $cmd" >>"$w/readme.log"
		if ! in_root sh -ec "$cmd" >>"$w/readme.log" 2>&1; then
			notok "tlsrpt-readme-$name" "step $n failed: $cmd"
			tail -n 10 "$w/readme.log"
			exit 1
		fi
	done < <(awk '/^### / { sec = $0; next }
	    sec == "### TLS reporting with Postfix" && /^```/ { code = !code; next }
	    sec == "### TLS reporting with Postfix" && code && /^# / { print substr($0, 3) }' "$top/README.md")
	if [ $n -gt 0 ]; then
		ok "tlsrpt-readme-$name ($n commands of README.md \"TLS reporting with Postfix\")"
	else
		notok "tlsrpt-readme-$name" "no commands in README.md"
	fi
fi

# The MTA accepts mail once its daemon is up (what systemd's readiness
# would wait for; OpenSMTPD's sendmail fails while smtpd is starting).
mta_ready() {
	case $svc in
	postfix) in_root postfix status >/dev/null 2>&1 ;;
	exim4) in_root sh -c 'kill -0 "$(cat /run/exim4/exim.pid)"' 2>/dev/null ;;
	opensmtpd) in_root smtpctl show status >/dev/null 2>&1 ;;
	esac
}
if ! e2e_wait 30 mta_ready; then
	notok "ready-$name" "$svc not running 30 s after the README.Debian steps"
	exit 1
fi

# --- mail ----------------------------------------------------------
for d in $DOMAINS; do
	printf 'From: <%s>\nTo: <postmaster@%s>\nSubject: danests package test %s\n\nto %s\n' \
	    "$E2E_SENDER" "$d" "$name" "$d" |
	    in_root /usr/sbin/sendmail -f "$E2E_SENDER" "postmaster@$d" >>"$w/sendmail.log" 2>&1 ||
	    notok "send-$name-$d" "sendmail failed"
done

# RFC 8689: Postfix 3.10 sends a message with "TLS-Required: No" at level
# may (tls_required_enable), so it reaches a domain whose DANE fails
# (dane-mitm.test: a host that does not match the TLSA records)
if [ $tlsrpt = 1 ]; then
	printf 'From: <%s>\nTo: <postmaster@dane-mitm.test>\nTLS-Required: No\nSubject: danests package test %s\n\nTLS-Required: No\n' \
	    "$E2E_SENDER" "$name" |
	    in_root /usr/sbin/sendmail -f "$E2E_SENDER" postmaster@dane-mitm.test >>"$w/sendmail.log" 2>&1 ||
	    notok "send-$name-tls-required" "sendmail failed"
fi

# queued D - the MTA still holds the message for postmaster@D, after
# at least one failed attempt (the reason is recorded)
queued() {
	local a=postmaster@$1
	case $svc in
	postfix)
		# (-s: jq -e alone answers for the last message only)
		in_root postqueue -j 2>/dev/null | jq -e -s --arg a "$a" \
		    'any(.[] | select(.queue_name == "deferred") | .recipients[];
		         .address == $a and (.delay_reason // "") != "")' >/dev/null
		;;
	exim4)
		in_root exim -bp 2>/dev/null | grep -qF "$a" &&
		    grep -qF "== $a " "$r/var/log/exim4/mainlog" 2>/dev/null
		;;
	opensmtpd)
		in_root smtpctl show queue 2>/dev/null | grep -F "|$a|" |
		    awk -F'|' '$NF != "" { f = 1 } END { exit !f }'
		;;
	esac
}
# inqueue D - any message for postmaster@D in the MTA's queue
inqueue() {
	local a=postmaster@$1
	case $svc in
	postfix) in_root postqueue -j 2>/dev/null | grep -qF "\"$a\"" ;;
	exim4) in_root exim -bp 2>/dev/null | grep -qF "$a" ;;
	opensmtpd) in_root smtpctl show queue 2>/dev/null | grep -qF "|$a|" ;;
	esac
}
# bounced D - the MTA returned the message for postmaster@D
bounced() {
	local a=postmaster@$1
	inqueue "$1" && return 1
	case $svc in
	postfix) grep -F "to=<$a>" "$w/syslog.log" | grep -q 'status=bounced' ;;
	exim4) grep -qF "** $a" "$r/var/log/exim4/mainlog" 2>/dev/null ;;
	opensmtpd) grep -F "$a" "$w/syslog.log" | grep -q 'PermFail' ;;
	esac
}

for d in $DOMAINS; do
	exp=$(e2e_expect "$d")
	case $exp in
	delivered)
		if e2e_wait "$WAIT" e2e_delivered_tls "$d"; then
			ok "$name-$d delivered over verified TLS"
		else
			notok "$name-$d" "expected delivered, got: $(e2e_mail_summary "$d" | tr '\n' ' ')$(inqueue "$d" && echo queued)"
		fi
		;;
	deferred)
		if e2e_wait "$WAIT" queued "$d" && ! e2e_delivered_any "$d"; then
			ok "$name-$d deferred (in the queue, nothing delivered)"
		else
			notok "$name-$d" "expected deferred, got: $(e2e_mail_summary "$d" | tr '\n' ' ')$(inqueue "$d" && echo queued)"
		fi
		;;
	bounced)
		if e2e_wait "$WAIT" bounced "$d" && ! e2e_delivered_any "$d"; then
			ok "$name-$d bounced"
		else
			notok "$name-$d" "expected bounced, got: $(e2e_mail_summary "$d" | tr '\n' ' ')$(inqueue "$d" && echo queued)"
		fi
		;;
	*) notok "$name-$d" "unexpected e2e column \"$exp\"" ;;
	esac
done
if [ $tlsrpt = 1 ]; then
	if e2e_wait "$WAIT" e2e_delivered_any dane-mitm.test; then
		ok "$name-tls-required: \"TLS-Required: No\" delivered to dane-mitm.test ($(e2e_mail_summary dane-mitm.test | tr '\n' ' '))"
	else
		notok "$name-tls-required" "TLS-Required: No to dane-mitm.test not delivered$(inqueue dane-mitm.test && echo ', queued')"
	fi
fi

# pf_results D - what Postfix logged it reported for D: "SUCCESSES
# FAILURES TYPE:N..." (TLSRPT: status=success|failure, domain=D, ...)
pf_results() {
	local l s f t
	l=$(grep -F "TLSRPT: status=" "$w/syslog.log" | grep -F "domain=$1,")
	s=$(printf '%s\n' "$l" | grep -c 'status=success')
	f=$(printf '%s\n' "$l" | grep -c 'status=failure')
	# (Postfix writes the RFC 8460 result types with "_" for "-")
	t=$(printf '%s\n' "$l" | sed -n 's/.*status=failure.*failure_type=\([a-z_-]*\).*/\1/p' |
	    tr _ - | sort | uniq -c | awk '{ printf " %s:%s", $2, $1 }')
	echo "$s $f$t"
}
# dn_results D - the same, from `danests report show D --json`, and the
# policy types counted
dn_results() {
	in_root danests report show "$1" --json 2>/dev/null | jq -rs '
		[.[].policies[]] as $p |
		"\([$p[].summary."total-successful-session-count"] | add // 0) \([$p[].summary."total-failure-session-count"] | add // 0)" +
		([$p[]."failure-details"[]? | {(."result-type"): ."failed-session-count"}] |
		    reduce .[] as $x ({}; reduce ($x | to_entries[]) as $e (.; .[$e.key] += $e.value)) |
		    to_entries | sort_by(.key) | map(" \(.key):\(.value)") | join(""))'
}
# dn_types D - the policy types counted for D; an sts policy also with
# the policy's version and mode lines (policy_string attributes of the
# postfix-tlsrpt answers, as Postfix passed them on)
dn_types() {
	in_root danests report show "$1" --json 2>/dev/null |
	    jq -rs '[.[].policies[].policy | ."policy-type" +
		(if ."policy-type" == "sts" then
		    (if (."policy-string" // []) | (index(["version: STSv1"]) != null and
			any(startswith("mode: "))) then "+lines" else "-lines" end)
		 else "" end)] | unique | join(",")'
}
tlsrpt_same() { [ "$(pf_results "$1")" = "$(dn_results "$1")" ]; }
if [ $tlsrpt = 1 ]; then
	# the result types each scenario reports (RFC 8460 4.4)
	for dt in dane-ee.test:tlsa dane-mismatch.test:tlsa sts-enforce.test:sts+lines sts-certbad.test:sts+lines; do
		d=${dt%%:*} t=${dt#*:}
		if e2e_wait 15 tlsrpt_same "$d" && [ "$(pf_results "$d")" != "0 0" ] &&
		    [ "$(dn_types "$d")" = "$t" ]; then
			ok "$name-tlsrpt-$d Postfix reported and danests counted the same: $(pf_results "$d") ($t)"
		else
			notok "$name-tlsrpt-$d" "Postfix logged \"$(pf_results "$d")\", danests counted \"$(dn_results "$d")\" ($(dn_types "$d"), want $t)"
		fi
	done
fi

# The timer's service, as the timer starts it (User=_danests): the policy
# of sts-enforce.test is in the shared cache now and must refresh, and the
# cache stays usable by every adapter (group _danests).
if in_root systemctl start danests-refresh.service >"$w/refresh.log" 2>&1 &&
    [ -z "$(in_root find /var/lib/danests ! -group _danests)" ]; then
	ok "refresh-$name (danests-refresh.service as _danests; cache group _danests)"
else
	notok "refresh-$name" "$(tail -n 3 "$r/var/log/danests-refresh.shim.log" 2>/dev/null | tr '\n' ' ')$(in_root find /var/lib/danests ! -group _danests | tr '\n' ' ')"
fi

# The shared store over TLS (rediss://), with Debian 13's hiredis: a
# redis-server that asks for client certificates, the keys of
# danests.conf(5) "SHARED STORE KEYS", a policy fetched by `danests check`
# written there; a server whose certificate names another address is
# refused (logged), and the decision is the same without it.
if [ $tlsrpt = 1 ]; then
	sd=$r/etc/danests/store
	mkdir -p "$sd"
	# cert NAME SAN - a key and a certificate of the test bed's CA
	cert() {
		openssl req -new -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
		    -keyout "$sd/$1.key" -subj "/CN=$1" -out "$w/$1.csr" 2>/dev/null &&
		    openssl x509 -req -in "$w/$1.csr" -CA "$E2E_CA" -CAkey "${E2E_CA%.crt}.key" \
			-CAcreateserial -CAserial "$w/ca.srl" -days 2 -out "$sd/$1.crt" \
			-extfile <(printf 'subjectAltName=%s\nextendedKeyUsage=serverAuth,clientAuth\n' "$2") 2>/dev/null
	}
	cert redis IP:127.0.0.1 && cert other IP:127.0.0.9 && cert node DNS:node.test &&
	    cp "$E2E_CA" "$sd/ca.crt" || notok "store-tls-$name" "cannot make certificates"
	chgrp _danests "$sd"/node.key && chmod 640 "$sd"/*.key
	# redisd PORT CERT - a TLS-only redis-server of the root
	redisd() {
		in_root redis-server --port 0 --tls-port "$1" --bind 127.0.0.1 --save '' \
		    --appendonly no --dir /tmp --tls-cert-file "/etc/danests/store/$2.crt" \
		    --tls-key-file "/etc/danests/store/$2.key" --tls-ca-cert-file /etc/danests/store/ca.crt \
		    --tls-auth-clients yes >"$w/redis-$1.log" 2>&1 &
	}
	rcli() {
		in_root redis-cli --tls --cacert /etc/danests/store/ca.crt --cert /etc/danests/store/node.crt \
		    --key /etc/danests/store/node.key -h 127.0.0.1 -p "$@"
	}
	redisd 16380 redis && redisd 16381 other
	# (the conf: the administrator's lines, after the package's include)
	for p in 16380 16381; do
		{
			echo "include /etc/danests/danests.conf"
			echo "store rediss://127.0.0.1:$p"
			echo "store_ca_file /etc/danests/store/ca.crt"
			echo "store_cert_file /etc/danests/store/node.crt"
			echo "store_key_file /etc/danests/store/node.key"
			echo "store_prefix t:"
			echo "store_timeout 2000"
		} >"$r/etc/danests/store-$p.conf"
	done
	pong() { [ "$(rcli 16380 ping 2>/dev/null)" = PONG ]; }
	if e2e_wait 10 pong; then
		j=$(in_root timeout 30 danests check --json --config /etc/danests/store-16380.conf sts-testing.test 2>"$w/store-tls.log")
		if [ "$(rcli 16380 exists t:sts:sts-testing.test 2>&1)" = 1 ] &&
		    jq -e '.verdict' <<<"$j" >/dev/null; then
			ok "store-tls-$name (policy of sts-testing.test written over rediss:// with a client certificate)"
		else
			notok "store-tls-$name" "key not in the store: $(tr '\n' ' ' <"$w/store-tls.log" | head -c 300)"
		fi
		# (a domain met for the first time: the store is asked first)
		j2=$(in_root timeout 30 danests check --json --config /etc/danests/store-16381.conf sts-mismatch.test 2>"$w/store-tls-other.log")
		j3=$(in_root timeout 30 danests check --json sts-mismatch.test 2>/dev/null)
		if grep -q "certificate of 127.0.0.1 not verified" "$w/store-tls-other.log" &&
		    [ "$(rcli 16381 --insecure dbsize 2>&1 | tail -n 1)" = 0 ] && [ -n "$j2" ] &&
		    [ "$(jq -c '[.verdict, .reason, .hosts]' <<<"$j2")" = "$(jq -c '[.verdict, .reason, .hosts]' <<<"$j3")" ]; then
			ok "store-tls-wrong-name-$name (a server certified for another address refused; same decision)"
		else
			notok "store-tls-wrong-name-$name" "$(tr '\n' ' ' <"$w/store-tls-other.log" | head -c 300)"
		fi
	else
		notok "store-tls-$name" "redis-server did not start: $(tail -n 3 "$w/redis-16380.log")"
	fi
	# a client certificate without its key: a configuration error
	grep -v store_key_file "$r/etc/danests/store-16380.conf" >"$r/etc/danests/store-nokey.conf"
	e=$(in_root timeout 30 danests check --config /etc/danests/store-nokey.conf sts-testing.test 2>&1 >/dev/null)
	rc=$?
	if [ $rc = 64 ] || [ $rc = 75 ] && grep -q "store_cert_file and store_key_file go together" <<<"$e"; then
		ok "store-tls-config-$name (exit $rc: $e)"
	else
		notok "store-tls-config-$name" "exit $rc: $e"
	fi
	# a CA file that holds no certificate: an error naming key and file
	sed 's|^store_ca_file .*|store_ca_file /etc/danests/store/node.key|' \
	    "$r/etc/danests/store-16380.conf" >"$r/etc/danests/store-badca.conf"
	e=$(in_root timeout 30 danests check --config /etc/danests/store-badca.conf sts-testing.test 2>&1 >/dev/null)
	rc=$?
	if [ $rc != 0 ] && grep -q "store_ca_file /etc/danests/store/node.key: " <<<"$e"; then
		ok "store-tls-bad-ca-$name (exit $rc: $e)"
	else
		notok "store-tls-bad-ca-$name" "exit $rc: $e"
	fi
fi

case $svc in
postfix) in_root postqueue -j >"$w/queue.log" 2>&1 ;;
exim4) in_root exim -bp >"$w/queue.log" 2>&1 ;;
opensmtpd) in_root smtpctl show queue >"$w/queue.log" 2>&1 ;;
esac
cp "$r/var/log/exim4/mainlog" "$w/exim-mainlog.log" 2>/dev/null
cp "$r"/var/log/*.shim.log "$w/" 2>/dev/null
[ $fails = 0 ]
