#!/bin/bash
# tests/e2e/postfix/run.sh - Debian's real Postfix enforcing the
# decisions of danests-postfix, end to end on the loopback test bed.
#
#   run.sh BUILD_DIR
#
# Postfix (the release's: 3.7 on Debian 12, 3.10 on Debian 13) is
# unpacked from its Debian package into a prefix (downloads cached under
# /var/cache/danests-e2e; with E2E_FETCH_ONLY=1 the suite only downloads
# and unpacks it and installs its libraries, then exits), runs as its own
# instance (config, queue and log under BUILD_DIR/e2e-postfix, smtpd on
# 127.10.5.1:2525, outgoing from 127.10.5.1) in a private mount namespace
# whose resolver is the test bed's validating unbound, with
#   smtp_dns_support_level = dnssec
#   smtp_tls_security_level = dane
#   smtp_tls_dane_insecure_mx_policy = dane
#   smtp_tls_policy_maps = socketmap:inet:127.0.0.1:PORT:postfix
# One message goes to postmaster@DOMAIN for every domain of
# tests/scenarios/list; the outcome is checked against the list's e2e
# column from the receivers' mailboxes, Postfix's log and its queue
# (postqueue -j).  A second smtpd (127.10.5.1:2587) has Postfix's own
# submission checks (reject_unknown_recipient_domain,
# reject_unknown_sender_domain, unknown_address_reject_code = 550):
# swaks gets 556 5.1.10 / 550 5.1.2 / 550 5.7.27 for null-mx.test and
# nxdomain.test, 450 for bogus-mx.test, and dane-ee.test is delivered.
# TLS reports: yesterday's counters, injected into a cache of their own
# (report_inject), go out with `danests report send` to the test bed's
# https receiver and through this Postfix's sendmail to
# tlsrpt@reports.test, checked field by field (tests/e2e/report_check.py).
# Prints "ok NAME" / "not ok NAME" per scenario.
#
# Environment: E2E_WAIT (seconds to wait for first attempts, default 150).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
top=$E2E_TOP
build=$(cd "${1:-$top/build}" && pwd)
CACHE=/var/cache/danests-e2e
PFVER=		# the release's (install_postfix)
ROOT=		# $CACHE/postfix-$PFVER
INST=$build/e2e-postfix
ADDR=127.10.5.1
SMTPD_PORT=2525
SUB_PORT=2587	# smtpd with the submission checks (README.md, Postfix)
MAP_PORT=18462
ME=sender.postfix-e2e.test
E2E_SENDER=e2e@$ME	# lib.sh: only this suite's messages count
WAIT=${E2E_WAIT:-150}
PY=/usr/bin/python3
daemon=$build/postfix-tlsproxy/danests-postfix
pf_started=0 map_pid=

fatal() {
	echo "not ok postfix-setup # $*"
	exit 1
}

cleanup() {
	if [ "$pf_started" = 1 ]; then
		pf postfix -c "$INST/conf" stop >/dev/null 2>&1
		# bounded: the master exits within a few seconds
		for _ in $(seq 50); do
			[ -f "$INST/queue/pid/master.pid" ] &&
			    kill -0 "$(tr -d ' ' <"$INST/queue/pid/master.pid")" 2>/dev/null ||
			    break
			sleep 0.1
		done
		if [ -f "$INST/queue/pid/master.pid" ]; then
			p=$(tr -d ' ' <"$INST/queue/pid/master.pid")
			kill -0 "$p" 2>/dev/null && kill -9 "$p" 2>/dev/null
		fi
	fi
	if [ -n "$map_pid" ]; then
		kill "$map_pid" 2>/dev/null
		for _ in $(seq 50); do
			kill -0 "$map_pid" 2>/dev/null || break
			sleep 0.1
		done
		kill -9 "$map_pid" 2>/dev/null
	fi
}
trap cleanup EXIT

# pf CMD... - a Postfix command from the prefix, in the test bed namespace
pf() {
	local cmd=$1
	shift
	LD_LIBRARY_PATH=$ROOT/usr/lib/postfix e2e_in_testbed "$ROOT/usr/sbin/$cmd" "$@"
}

# --- Postfix from the Debian package ---------------------------------
install_postfix() {
	local deb
	deb=$(e2e_deb_fetch postfix "$CACHE") || fatal "cannot download postfix"
	PFVER=$(dpkg-deb -f "$deb" Version)
	ROOT=$CACHE/postfix-$PFVER
	e2e_deb_unpack "$deb" "$ROOT" || fatal "dpkg -x $deb failed"
	# Debian's post-install (3.10) runs its chroot helper by absolute
	# path: the one of the prefix (a no-op here: nothing is chrooted).
	sed -i 's@\([ 	]\)/usr/lib/postfix/\(configure-instance\.sh\|syncfiles\.pl\)@\1'"$ROOT"'/usr/lib/postfix/\2@' \
	    "$ROOT/usr/lib/postfix/sbin/post-install" \
	    "$ROOT/usr/lib/postfix/configure-instance.sh" 2>/dev/null
	# Its libraries (not Postfix itself: it conflicts with the other
	# MTAs of the test machine), as this release names them.
	e2e_deb_libs "$deb" netbase || fatal "cannot install Postfix's libraries"
	v=$(LD_LIBRARY_PATH=$ROOT/usr/lib/postfix "$ROOT/usr/sbin/postconf" \
	    -c "$ROOT/usr/share/postfix" -d mail_version 2>/dev/null)
	case $v in
	"mail_version = ${PFVER%%-*}"*) ;;
	*) fatal "postconf from $ROOT does not run ($v)" ;;
	esac
	# The accounts the package would create.
	getent group postdrop >/dev/null || groupadd --system postdrop ||
	    fatal "cannot create group postdrop"
	getent passwd postfix >/dev/null ||
	    useradd --system --user-group --no-create-home \
	    --home-dir /var/spool/postfix --shell /usr/sbin/nologin postfix ||
	    fatal "cannot create user postfix"
	# The queue tools stay without set-gid (the package's postinst would
	# set it): the loader ignores LD_LIBRARY_PATH for set-gid programs,
	# and root needs no privilege to reach the queue.
	chmod 755 "$ROOT/usr/sbin/postqueue" "$ROOT/usr/sbin/postdrop"
}

# --- one Postfix instance ----------------------------------------------
configure_postfix() {
	rm -rf "$INST"
	mkdir -p "$INST/conf" "$INST/queue" "$INST/data" "$INST/cache"
	chown postfix "$INST/data"
	cp "$ROOT/etc/postfix/postfix-files" "$INST/conf/"
	: >"$INST/conf/dynamicmaps.cf"
	mkdir -p "$INST/conf/dynamicmaps.cf.d" "$INST/conf/postfix-files.d"
	cat >"$INST/conf/main.cf" <<EOF
# e2e instance of Postfix $PFVER (written by tests/e2e/postfix/run.sh)
compatibility_level = 3.6
queue_directory = $INST/queue
data_directory = $INST/data
meta_directory = $INST/conf
daemon_directory = $ROOT/usr/lib/postfix/sbin
command_directory = $ROOT/usr/sbin
shlib_directory = $ROOT/usr/lib/postfix
sendmail_path = $ROOT/usr/sbin/sendmail
newaliases_path = $ROOT/usr/bin/newaliases
mailq_path = $ROOT/usr/bin/mailq
html_directory = no
manpage_directory = /usr/share/man
readme_directory = no
mail_owner = postfix
setgid_group = postdrop
import_environment = MAIL_CONFIG MAIL_DEBUG MAIL_LOGTAG TZ LANG=C LD_LIBRARY_PATH=$ROOT/usr/lib/postfix
# sendmail runs postdrop with these: the prefix's libraries too
export_environment = TZ MAIL_CONFIG LANG LD_LIBRARY_PATH
maillog_file = $INST/maillog
maillog_file_prefixes = $INST
myhostname = $ME
mydomain = postfix-e2e.test
myorigin = \$myhostname
mydestination = \$myhostname
# bounces come back to the local sender and are discarded
local_transport = discard:local
local_recipient_maps =
alias_maps =
alias_database =
# Postfix wants configured interface addresses here; smtpd binds $ADDR
# (master.cf) and the client binds smtp_bind_address, both in 127/8.
inet_interfaces = 127.0.0.1
inet_protocols = ipv4
smtp_bind_address = $ADDR
mynetworks = 127.0.0.0/8
smtpd_relay_restrictions = permit_mynetworks, reject
relay_domains =
append_dot_mydomain = no
biff = no
smtputf8_enable = no
delay_warning_time = 0
notify_classes =

# What this suite is about.
smtp_dns_support_level = dnssec
smtp_tls_security_level = dane
smtp_tls_dane_insecure_mx_policy = dane
smtp_tls_policy_maps = socketmap:inet:127.0.0.1:$MAP_PORT:postfix
smtp_tls_CAfile = $E2E_CA
smtp_tls_loglevel = 1
smtp_tls_session_cache_database =

# Fast retries, short timeouts: the suite takes minutes, not hours.
queue_run_delay = 5s
minimal_backoff_time = 5s
maximal_backoff_time = 10s
maximal_queue_lifetime = 1h
bounce_queue_lifetime = 1h
smtp_connect_timeout = 5s
smtp_helo_timeout = 15s
smtp_starttls_timeout = 15s
smtp_data_done_timeout = 30s
default_destination_concurrency_limit = 10
EOF
	cat >"$INST/conf/master.cf" <<EOF
$ADDR:$SMTPD_PORT inet n - n - - smtpd
$ADDR:$SUB_PORT inet n - n - - smtpd
  -o smtpd_sender_restrictions=reject_unknown_sender_domain
  -o smtpd_recipient_restrictions=reject_unknown_recipient_domain,permit_mynetworks,reject
  -o unknown_address_reject_code=550
pickup    unix  n       -       n       60      1       pickup
cleanup   unix  n       -       n       -       0       cleanup
qmgr      unix  n       -       n       300     1       qmgr
tlsmgr    unix  -       -       n       1000?   1       tlsmgr
rewrite   unix  -       -       n       -       -       trivial-rewrite
bounce    unix  -       -       n       -       0       bounce
defer     unix  -       -       n       -       0       bounce
trace     unix  -       -       n       -       0       bounce
verify    unix  -       -       n       -       1       verify
flush     unix  n       -       n       1000?   0       flush
proxymap  unix  -       -       n       -       -       proxymap
proxywrite unix -       -       n       -       1       proxymap
smtp      unix  -       -       n       -       -       smtp
relay     unix  -       -       n       -       -       smtp
showq     unix  n       -       n       -       -       showq
error     unix  -       -       n       -       -       error
retry     unix  -       -       n       -       -       error
discard   unix  -       -       n       -       -       discard
local     unix  -       n       n       -       -       local
anvil     unix  -       -       n       -       1       anvil
scache    unix  -       -       n       -       1       scache
postlog   unix-dgram n  -       n       -       1       postlogd
EOF
}

start_map() {
	cat >"$INST/conf/danests-postfix.conf" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $INST/cache
decision_timeout 10

[postfix]
listen inet:127.0.0.1:$MAP_PORT
user nobody
lookup_timeout 20
verbose yes
EOF
	chown nobody "$INST/cache" || fatal "chown $INST/cache"
	[ -x "$daemon" ] || fatal "no $daemon (build first)"
	"$daemon" -d -c "$INST/conf/danests-postfix.conf" \
	    2>"$INST/danests-postfix.log" &
	map_pid=$!
	e2e_wait 10 sh -c "ss -Hltn 'src 127.0.0.1:$MAP_PORT' | grep -q LISTEN" ||
	    fatal "danests-postfix did not listen: $(tail -3 "$INST/danests-postfix.log")"
}

start_postfix() {
	script -qc "LD_LIBRARY_PATH=$ROOT/usr/lib/postfix $ROOT/usr/sbin/postfix -c $INST/conf check" /dev/null >"$INST/check.log" 2>&1 && ! grep -q fatal "$INST/check.log" ||
	    fatal "postfix check: $(tail -3 "$INST/check.log")"
	pf postfix -c "$INST/conf" start >"$INST/start.log" 2>&1 ||
	    fatal "postfix start: $(tail -3 "$INST/start.log")"
	pf_started=1
	e2e_wait 15 sh -c "ss -Hltn 'src $ADDR:$SMTPD_PORT' | grep -q LISTEN" ||
	    fatal "Postfix smtpd not listening: $(tail -3 "$INST/maillog" 2>/dev/null)"
}

# send_all - one message per scenario domain through Postfix's smtpd
send_all() {
	e2e_scenarios | awk '{ print $1 }' >"$INST/domains"
	"$PY" - "$ADDR" "$SMTPD_PORT" "e2e@$ME" "$INST/domains" <<'EOF' >"$INST/sent" 2>&1
import smtplib, sys, time
addr, port, sender, dfile = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
doms = [l.strip() for l in open(dfile) if l.strip()]
s = smtplib.SMTP(addr, port, timeout=60)
s.ehlo("e2e.postfix-e2e.test")
for d in doms:
    msg = ("From: <%s>\r\nTo: <postmaster@%s>\r\nSubject: danests e2e postfix %s\r\n"
           "Message-ID: <%s.%d@e2e.postfix-e2e.test>\r\n\r\nscenario %s\r\n") % (
        sender, d, d, d, int(time.time()), d)
    s.sendmail(sender, ["postmaster@%s" % d], msg)
    print(d, "queued")
s.quit()
EOF
	[ "$(grep -c queued "$INST/sent")" -eq "$(wc -l <"$INST/domains")" ] ||
	    fatal "injection failed: $(tail -3 "$INST/sent")"
}

# log_status DOMAIN - every status= Postfix logged for postmaster@DOMAIN
log_status() {
	grep -F "to=<postmaster@$1>" "$INST/maillog" 2>/dev/null |
	    sed -n 's/.* status=\([a-z]*\).*/\1/p' | sort -u | tr '\n' ' '
}

# in_queue DOMAIN - is a message for postmaster@DOMAIN still queued?
in_queue() {
	grep -qF "\"postmaster@$1\"" "$INST/queue.json"
}

# settled DOMAIN EXPECT - has the first attempt shown its outcome?
settled() {
	local s
	s=$(log_status "$1")
	case $2 in
	delivered|delivered-may) e2e_delivered_any "$1" || [ -n "$s" ] ;;
	bounced) case $s in *bounced*) return 0 ;; esac; return 1 ;;
	deferred) [ -n "$s" ] ;;
	*) return 0 ;;
	esac
}

all_settled() {
	local d x
	while read -r d x; do
		settled "$d" "$x" || return 1
	done < <(e2e_scenarios)
	return 0
}

# requires_tls DOMAIN - did danests-postfix answer a level that forbids
# cleartext (DANE for every host, encrypt, or an MTA-STS enforce policy)?
requires_tls() {
	grep -F " postfix $1: OK " "$INST/danests-postfix.log" |
	    grep -qE 'OK (dane-only|encrypt|secure)'
}

check_one() {
	local d=$1 x=$2 s why=""
	s=$(log_status "$d")
	if requires_tls "$d" && e2e_cleartext "$d"; then
		e2e_notok "postfix-$d" "delivered in the clear to a DANE/enforce domain"
		return
	fi
	case $x in
	delivered)
		if e2e_delivered_tls "$d"; then
			e2e_ok "postfix-$d"
			return
		fi
		why="want good receiver over TLS; mail: $(e2e_mail_summary "$d" | tr '\n' ' ') log: $s"
		;;
	delivered-may)
		if e2e_delivered_any "$d" && ! in_queue "$d"; then
			e2e_ok "postfix-$d"
			return
		fi
		why="want delivered; mail: $(e2e_mail_summary "$d" | tr '\n' ' ') log: $s"
		;;
	deferred)
		if ! e2e_delivered_any "$d" && in_queue "$d" &&
		    case $s in *deferred*) true ;; *) false ;; esac &&
		    ! case $s in *sent*|*bounced*) true ;; *) false ;; esac; then
			e2e_ok "postfix-$d"
			return
		fi
		why="want deferred and queued; mail: $(e2e_mail_summary "$d" | tr '\n' ' ') log: $s queued: $(in_queue "$d" && echo yes || echo no)"
		;;
	bounced)
		if ! e2e_delivered_any "$d" && ! in_queue "$d" &&
		    case $s in *bounced*) true ;; *) false ;; esac; then
			e2e_ok "postfix-$d"
			return
		fi
		why="want bounced; mail: $(e2e_mail_summary "$d" | tr '\n' ' ') log: $s"
		;;
	*)	why="unknown e2e outcome $x" ;;
	esac
	e2e_notok "postfix-$d" "$why"
}

# --- main ---------------------------------------------------------------
[ "$(id -u)" = 0 ] || fatal "must run as root"
if [ "${E2E_FETCH_ONLY:-}" = 1 ]; then
	install_postfix
	echo "ok postfix-fetch $PFVER"
	exit 0
fi
[ -f "$E2E_RUN/vars" ] && [ -f "$E2E_CA" ] || fatal "test bed not up (tests/testbed/up.sh)"
ss -Hlun "src $E2E_RESOLVER:53" | grep -q . || fatal "no resolver on $E2E_RESOLVER"
ss -Hltn "src 127.10.2.1:25" | grep -q LISTEN || fatal "no SMTP receivers (tests/testbed/smtp.sh up)"
command -v jq >/dev/null || fatal "jq not installed"

install_postfix
configure_postfix
e2e_mail_reset
start_map
start_postfix
t0=$(date +%s)
send_all

# First attempts: every domain shows its outcome (bounded).
e2e_wait "$WAIT" all_settled || echo "# not every domain settled within $WAIT s"
# One more queue run for the deferred ones: still deferred afterwards.
pf postqueue -c "$INST/conf" -f >/dev/null 2>&1
sleep 8
pf postqueue -c "$INST/conf" -j >"$INST/queue.json" 2>/dev/null
echo "# Postfix e2e: $(($(date +%s) - t0)) s after injection, $(jq -s length "$INST/queue.json") message(s) queued"

while read -r d x; do
	check_one "$d" "$x"
done < <(e2e_scenarios)

# Postfix's own answers at submission (the second smtpd, SUB_PORT):
# reject_unknown_recipient_domain and reject_unknown_sender_domain with
# unknown_address_reject_code = 550, the settings README.md documents.
# sub FROM TO [SWAKS-ARGS] - swaks's transcript
sub() {
	local from=$1 to=$2
	shift 2
	timeout 60 swaks --server "$ADDR" --port "$SUB_PORT" --helo e2e.test \
	    --from "$from" --to "$to" --body "postfix submission e2e to $to" "$@" 2>&1
}
# sub_reply NAME FROM TO CODE - the first refusal carries CODE
sub_reply() {
	local t
	t=$(sub "$2" "$3" --quit-after RCPT)
	if grep '^<\*\*' <<<"$t" | head -1 | grep -q "^<\*\* *$4 "; then
		e2e_ok "$1"
	else
		e2e_notok "$1" "$(grep '^<' <<<"$t" | tail -2 | tr '\n' ' ')"
	fi
}
sub_reply postfix-submission-rcpt-null-mx "$E2E_SENDER" sub@null-mx.test "556 5.1.10"
sub_reply postfix-submission-rcpt-nxdomain "$E2E_SENDER" sub@nxdomain.test "550 5.1.2"
# smtpd_delay_reject = yes (the default): the sender's refusal comes at RCPT
sub_reply postfix-submission-mail-from-null-mx sender@null-mx.test sub@dane-ee.test "550 5.7.27"
# a DNS failure is not a refusal: 450, the client keeps the message
sub_reply postfix-submission-rcpt-tempfail "$E2E_SENDER" sub@bogus-mx.test "450 4.1.2"
t=$(sub "$E2E_SENDER" sub@dane-ee.test)
if [ "$(grep -c '^<- *250 ' <<<"$t")" -ge 4 ] && ! grep -q '^<\*\*' <<<"$t"; then
	e2e_ok postfix-submission-accepts-dane-ee.test
else
	e2e_notok postfix-submission-accepts-dane-ee.test "$(grep '^<' <<<"$t" | tail -3 | tr '\n' ' ')"
fi
sub_sent() { grep -q 'to=<sub@dane-ee.test>.*status=sent' "$INST/maillog"; }
if e2e_wait 60 sub_sent; then
	e2e_ok postfix-submission-dane-ee-delivered
else
	e2e_notok postfix-submission-dane-ee-delivered "$(grep 'sub@dane-ee.test' "$INST/maillog" | tail -1)"
fi

# The map was really asked: every scenario domain got a lookup.
n=$(grep -c ' postfix [a-z0-9.-]*: ' "$INST/danests-postfix.log")
if [ "$n" -gt 0 ]; then
	e2e_ok "postfix-map-consulted"
else
	e2e_notok "postfix-map-consulted" "no lookups in $INST/danests-postfix.log"
fi

# TLS reports (RFC 8460 5) through Postfix's own sendmail: this instance
# records no sessions (Postfix 3.7 has no TLSRPT hook; 3.10's libtlsrpt
# datagrams would go to danests-postfix's collector, not set up here), so
# yesterday's counters are injected into a cache of their own
# (report_inject, as an adapter records them); "danests report send"
# posts them to https://rua.reports.test/tlsrpt and hands them to this
# instance's sendmail (report_sendmail), which delivers them over DANE to
# tlsrpt@reports.test.  One report each way per domain, field by field
# (tests/e2e/report_check.py).
inject=$build/tests/integration/report_inject
rcache=$INST/rcache
rday=$(date -u -d yesterday +%F)
rnoon=$(date -u -d "$rday 12:00:00" +%s)
# stspol DOMAIN MODE - the policy of DOMAIN's MTA-STS result lines
stspol() {
	echo "mx=mx.$1 ip=127.10.2.1 from=$ADDR policy=version:~STSv1|mode:~$2|mx:~mx.$1|max_age:~86400 mxhost=mx.$1 when=$rnoon"
}
rexpect="dane-ee.test tlsa 3 0
dane-mismatch.test tlsa 0 2 validation-failure=2
sts-enforce.test sts 4 0
sts-testing.test sts 1 2 certificate-not-trusted=2
sts-certbad.test sts 0 3 certificate-not-trusted=1 certificate-expired=2
insecure.test no-policy-found 5 0"
mkdir -p "$rcache"
{
	echo "dane-ee.test tlsa ok mx=mx.dane-ee.test policy=3~1~1~aabbcc when=$rnoon count=3"
	echo "dane-mismatch.test tlsa validation-failure mx=mx.dane-mismatch.test ip=127.10.2.1 from=$ADDR policy=3~1~1~ddeeff when=$rnoon count=2"
	echo "sts-enforce.test sts ok $(stspol sts-enforce.test enforce) count=4"
	echo "sts-testing.test sts ok $(stspol sts-testing.test testing)"
	echo "sts-testing.test sts certificate-not-trusted $(stspol sts-testing.test testing) count=2"
	echo "sts-certbad.test sts certificate-not-trusted $(stspol sts-certbad.test enforce)"
	echo "sts-certbad.test sts certificate-expired $(stspol sts-certbad.test enforce) count=2"
	echo "insecure.test no-policy-found ok mx=mx.insecure.test when=$rnoon count=5"
} >"$INST/inject.in"
if ! "$inject" --cache-dir "$rcache" "$INST/inject.in" >"$INST/inject.out" 2>&1 ||
    [ "$(cat "$INST/inject.out")" != "recorded 20" ]; then
	e2e_notok postfix-report-inject "$(tr '\n' ' ' <"$INST/inject.out")"
fi
cat >"$INST/sendmail" <<EOF
#!/bin/sh
MAIL_CONFIG=$INST/conf LD_LIBRARY_PATH=$ROOT/usr/lib/postfix exec $ROOT/usr/sbin/sendmail "\$@"
EOF
chmod 755 "$INST/sendmail"
cat >"$INST/report.conf" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $rcache
tls_reports yes
report_organization danests e2e postfix
report_contact postmaster@$ME
report_from tlsrpt-noreply@$ME
report_submitter $ME
report_sendmail $INST/sendmail
report_timeout 20
EOF
"$E2E_TB/rua.sh" reset >/dev/null
grep -l "^TLS-Report-Submitter: $ME" "$E2E_MAIL"/*/reports.test/*.eml 2>/dev/null |
    xargs -r rm -f
t_send=$(date +%s)
"$build/core/danests" report send --now --config "$INST/report.conf" >"$INST/send.out" 2>&1
rc=$?
if [ $rc = 0 ]; then
	e2e_ok "postfix-report-sent ($(($(date +%s) - t_send)) s)"
else
	e2e_notok postfix-report-sent "exit $rc: $(head -c 600 "$INST/send.out" | tr '\n' '|')"
fi
e2e_wait 60 sh -c "[ \$(grep -l '^TLS-Report-Submitter: $ME' $E2E_MAIL/*/reports.test/*.eml 2>/dev/null | wc -l) -ge 6 ]"
sleep 1	# a seventh would be a duplicate: give it a moment
if out=$("$PY" "$top/tests/e2e/report_check.py" \
    --rua "$E2E_RUN/rua" --mail "$E2E_MAIL" --day "$rday" \
    --submitter "$ME" --from "tlsrpt-noreply@$ME" \
    --org "danests e2e postfix" --contact "postmaster@$ME" <<<"$rexpect" 2>&1) &&
    [ "$(grep -c 'to=<tlsrpt@reports.test>, relay=mx.reports.test.*status=sent' "$INST/maillog")" = 6 ]; then
	e2e_ok "postfix-report-https-and-mail-through-postfix ($(grep -c '^ok' <<<"$out") domains, $(($(date +%s) - t_send)) s)"
else
	e2e_notok postfix-report-https-and-mail-through-postfix "$(tr '\n' '|' <<<"$out" | cut -c1-600); $(grep 'tlsrpt@reports.test' "$INST/maillog" | tail -2 | cut -c1-300)"
fi
[ "$E2E_FAILS" -eq 0 ] || {
	echo "# logs: $INST/maillog $INST/danests-postfix.log"
	exit 1
}
exit 0
