#!/bin/bash
# tests/e2e/opensmtpd/run.sh - Debian's real OpenSMTPD 6.8 relaying through
# danests-relay, end to end on the loopback test bed.
#
#   run.sh BUILD_DIR
#
# OpenSMTPD is unpacked from its Debian package into a prefix (download
# cached under /var/cache/danests-e2e) and runs in a private mount
# namespace (tests/e2e/lib.sh) where its compiled-in paths exist only
# there: /var/spool/smtpd (queue under BUILD_DIR/e2e-opensmtpd),
# /usr/libexec/opensmtpd, /var/lib/opensmtpd/empty, /run (its control
# socket), and /etc/passwd + /etc/group copies that add its opensmtpd and
# opensmtpq users.  Its resolver is the test bed's validating unbound.
# smtpd.conf:
#   listen on 127.10.6.1 port 2525
#   action "out" relay host "lmtp://127.0.0.1:18463"
#   match from any for any action "out"
# One message goes to postmaster@DOMAIN for every domain of
# tests/scenarios/list, and one to three domains at once; outcomes are
# checked against the list's e2e column from the receivers' mailboxes,
# `smtpctl show queue` and smtpd's log.  Bounces go back to the sender,
# e2e-sender@insecure.test.  A second listener, port 2526, runs
# filter-danests (as the build made it, in smtpd's libexec directory):
# swaks submissions get 556 5.1.10 / 550 5.1.2 / 550 5.7.27 at RCPT or
# MAIL time for null-mx.test and nxdomain.test, and bogus-mx.test
# (tempfail) and dane-ee.test are accepted, then deferred and delivered
# as through the first listener.  The relay runs with tls_reports yes:
# `danests report show DOMAIN --json` must count one result per session
# the relay made with the six domains that publish _smtp._tls, per result
# type; a message with "TLS-Required: No" to dane-mismatch.test is
# delivered and counts nothing.  Then `danests report send`, a day later
# under faketime, posts those reports to the test bed's https receiver and
# mails them through smtpd's own sendmail (smtpctl) to
# tlsrpt@reports.test; tests/e2e/report_check.py checks them field by
# field against the counts above, and the report mails count nothing.
# Then load.sh: many multi-recipient messages
# under load, no recipient delivered twice.  Prints "ok NAME" / "not ok
# NAME".
#
# Environment: E2E_WAIT (seconds to wait for first attempts, default 150).
set -u
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=../lib.sh
. "$here/../lib.sh"
top=$E2E_TOP
build=$(cd "${1:-$top/build}" && pwd)
OSVER=6.8.0p2
CACHE=/var/cache/danests-e2e
ROOT=$CACHE/opensmtpd-$OSVER
INST=$build/e2e-opensmtpd
ADDR=127.10.6.1
PORT=2525
RELAY_PORT=18463
ME=sender.opensmtpd-e2e.test
SENDER=e2e-sender@insecure.test
WAIT=${E2E_WAIT:-150}
relay=$build/opensmtpd/danests-relay
filter=$build/opensmtpd/filter-danests
FPORT=2526
# shellcheck source=smtpd.sh
. "$here/smtpd.sh"

fatal() {
	echo "not ok opensmtpd-setup # $*"
	osmtpd_cleanup
	exit 1
}

trap osmtpd_cleanup EXIT

[ "$(id -u)" = 0 ] || { echo "skip opensmtpd (needs root)"; exit 0; }
if [ "${E2E_FETCH_ONLY:-}" = 1 ]; then	# tests/run.sh, with the network
	osmtpd_fetch || fatal "cannot fetch opensmtpd"
	echo "ok opensmtpd-fetch"
	exit 0
fi
# TLS reporting on: the relay counts its sessions (checked at the end)
RELAY_CORE_EXTRA="tls_reports yes"
osmtpd_prepare
[ -x "$filter" ] || fatal "no $filter (build first)"
cp "$filter" "$INST/libexec/filter-danests" || fatal "cannot copy the filter"
cat >"$INST/filter.conf" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
cache_dir $INST/cache

[filter]
timeout 20
EOF
chmod 644 "$INST/filter.conf"
cat >"$INST/smtpd.conf" <<EOF
filter "danests" proc-exec "/usr/libexec/opensmtpd/filter-danests -c $INST/filter.conf" user nobody group nogroup
listen on $ADDR port $PORT hostname $ME
listen on $ADDR port $FPORT hostname $ME filter "danests"
action "out" relay host "lmtp://127.0.0.1:$RELAY_PORT" helo $ME
match from any for any action "out"
EOF
osmtpd_start
echo "ok opensmtpd-setup"

e2e_mail_reset
# send RCPT... - one message from SENDER through smtpd
send() {
	local args=() r
	for r in "$@"; do args+=(--to "$r"); done
	/usr/bin/python3 - "$ADDR" "$PORT" "$SENDER" "$@" <<'EOF'
import smtplib, sys
host, port, sender, rcpts = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4:]
msg = ("From: %s\r\nTo: %s\r\nSubject: danests e2e %s\r\n\r\nopensmtpd e2e\r\n"
       % (sender, ", ".join(rcpts), " ".join(rcpts)))
with smtplib.SMTP(host, port, timeout=30) as s:
    s.sendmail(sender, rcpts, msg)
EOF
}

scen=$(e2e_scenarios | grep -v '^sts-\(cache\|idchange\|expire\)\.test ')
sent_fail=0
while read -r d _; do
	send "postmaster@$d" || { e2e_notok "send-$d"; sent_fail=1; }
done <<<"$scen"
MULTI="multi@dane-ee.test multi@null-mx.test multi@bogus-mx.test"
# shellcheck disable=SC2086
send $MULTI || e2e_notok "send-multi"

# final - has RCPT reached its first outcome in smtpd's log?
final() {
	grep -q "to=<$1>.*result=\"\?\(Ok\|TempFail\|PermFail\)" "$INST/smtpd.log"
}
# outcome RCPT - Ok / TempFail / PermFail of its first attempt
outcome() {
	grep "to=<$1>" "$INST/smtpd.log" | grep -o 'result="\?[A-Za-z]*' |
	    head -1 | sed 's/result="\?//'
}
all_final() {
	local d
	while read -r d _; do
		final "postmaster@$d" || return 1
	done <<<"$scen"
	for d in $MULTI; do final "$d" || return 1; done
}
e2e_wait "$WAIT" all_final || echo "# not every first attempt finished in $WAIT s"
queue=$(ctl show queue 2>&1) || echo "# smtpctl show queue failed: $queue (pid $smtpd_pid: $(tr '\0' ' ' </proc/$smtpd_pid/cmdline 2>&1))"
echo "$queue" >"$INST/queue.txt"
in_queue() { grep -qi "|$1|" <<<"$queue" || grep -qi "$1" <<<"$queue"; }
bounce_for() {
	grep -l "$1" "$E2E_MAIL"/*/insecure.test/*.eml 2>/dev/null |
	    xargs -r grep -l -i "Delivery Status\|MAILER-DAEMON\|mailer-daemon\|Delivery failed\|could not be delivered" >/dev/null 2>&1
}

# check NAME RCPT DOMAIN EXPECT
check() {
	local name=$1 rcpt=$2 d=$3 want=$4 res why=""
	res=$(outcome "$rcpt")
	case $want in
	delivered)
		[ "$res" = Ok ] || why="smtpd result '$res'"
		e2e_delivered_tls "$d" || why="$why; not on the good receiver over TLS: $(e2e_mail_summary "$d" | tr '\n' ' ')"
		;;
	delivered-may)
		[ "$res" = Ok ] || why="smtpd result '$res'"
		e2e_delivered_any "$d" || why="$why; nothing arrived"
		;;
	deferred)
		[ "$res" = TempFail ] || why="smtpd result '$res'"
		in_queue "$rcpt" || why="$why; not in smtpctl show queue"
		[ "$(e2e_mail_count "$d")" = 0 ] || why="$why; a message arrived: $(e2e_mail_summary "$d" | tr '\n' ' ')"
		;;
	bounced)
		[ "$res" = PermFail ] || why="smtpd result '$res'"
		in_queue "$rcpt" && why="$why; still queued"
		[ "$(e2e_mail_count "$d")" = 0 ] || why="$why; a message arrived"
		;;
	*)
		why="unknown expectation $want"
		;;
	esac
	# never in the clear to a DANE or enforce domain
	case $want in
	delivered|deferred)
		if e2e_cleartext "$d"; then why="$why; CLEARTEXT delivery"; fi
		;;
	esac
	if [ -z "$why" ]; then e2e_ok "$name"; else e2e_notok "$name" "${why#; }"; fi
}

while read -r d want; do
	check "$d" "postmaster@$d" "$d" "$want"
done <<<"$scen"

# three domains, one message: three independent outcomes
why=""
[ "$(outcome multi@dane-ee.test)" = Ok ] || why="dane-ee: $(outcome multi@dane-ee.test)"
[ "$(outcome multi@null-mx.test)" = PermFail ] || why="$why null-mx: $(outcome multi@null-mx.test)"
[ "$(outcome multi@bogus-mx.test)" = TempFail ] || why="$why bogus-mx: $(outcome multi@bogus-mx.test)"
in_queue multi@bogus-mx.test || why="$why; bogus-mx not queued"
in_queue multi@null-mx.test && why="$why; null-mx still queued"
grep -l "multi@dane-ee.test" "$E2E_MAIL"/good/dane-ee.test/*.eml >/dev/null 2>&1 ||
    why="$why; dane-ee copy missing"
if [ -z "$why" ]; then e2e_ok multi-domain; else e2e_notok multi-domain "$why"; fi

# bounces came back to the sender (through the relay, as any mail)
if e2e_wait 30 bounce_for "postmaster@null-mx.test"; then
	e2e_ok bounce-returned
else
	e2e_notok bounce-returned "no bounce for null-mx.test at $SENDER"
fi

# the relay logged TLS and verification per recipient
if grep -q 'domain=dane-ee.test rcpt=<postmaster@dane-ee.test>.*verified=yes status=250' "$INST/relay.log"; then
	e2e_ok relay-log-verified
else
	e2e_notok relay-log-verified
fi

# filter-danests on the second listener: refusals at RCPT / MAIL time
FNONCE=filter-$$-$(date +%s)
# fswaks FROM TO [SWAKS-ARGS] - one submission through the filtered
# listener; prints swaks's transcript
fswaks() {
	local from=$1 to=$2
	shift 2
	timeout 60 swaks --server "$ADDR" --port "$FPORT" --helo e2e.test \
	    --from "$from" --to "$to" --add-header "X-Filter-E2E: $FNONCE" \
	    --body "filter-danests e2e to $to" "$@" 2>&1
}
# frefused NAME FROM TO CODE - refused with CODE (e.g. "556 5.1.10")
frefused() {
	local t
	t=$(fswaks "$2" "$3" --quit-after RCPT)
	if grep -q "^<\*\* *$4 " <<<"$t"; then
		e2e_ok "$1"
	else
		e2e_notok "$1" "$(grep '^<' <<<"$t" | tail -2 | tr '\n' ' ')"
	fi
}
frefused filter-rcpt-null-mx "$SENDER" filter@null-mx.test "556 5.1.10"
frefused filter-rcpt-nxdomain "$SENDER" filter@nxdomain.test "550 5.1.2"
frefused filter-mail-from-null-mx sender@null-mx.test filter@dane-ee.test "550 5.7.27"
for d in bogus-mx.test dane-ee.test; do
	t=$(fswaks "$SENDER" "filter@$d")
	if [ "$(grep -c '^<- *250 ' <<<"$t")" -ge 4 ] && ! grep -q '^<\*\*' <<<"$t"; then
		e2e_ok "filter-accepts-$d"
	else
		e2e_notok "filter-accepts-$d" "$(grep '^<' <<<"$t" | tail -3 | tr '\n' ' ')"
	fi
done
# the accepted ones go on as through the first listener
fdelivered() {
	grep -l "X-Filter-E2E: $FNONCE" "$E2E_MAIL"/good/dane-ee.test/*.eml >/dev/null 2>&1
}
e2e_wait 60 final filter@bogus-mx.test
if e2e_wait 60 fdelivered && ! grep -l "X-Filter-E2E: $FNONCE" "$E2E_MAIL"/*/dane-ee.test/*.eml 2>/dev/null |
    xargs -r grep -L '^X-Danests-TLS: yes' | grep -q .; then
	e2e_ok filter-dane-ee-delivered
else
	e2e_notok filter-dane-ee-delivered "no copy at the good receiver over TLS"
fi
queue=$(ctl show queue 2>&1)
if [ "$(outcome filter@bogus-mx.test)" = TempFail ] && in_queue filter@bogus-mx.test; then
	e2e_ok filter-bogus-mx-deferred
else
	e2e_notok filter-bogus-mx-deferred "result '$(outcome filter@bogus-mx.test)'"
fi
# the refused recipients never entered the queue
if grep -q 'to=<filter@\(null-mx\|nxdomain\)\.test>.*result=' "$INST/smtpd.log"; then
	e2e_notok filter-refused-not-queued
else
	e2e_ok filter-refused-not-queued
fi
if grep -q 'filter-danests: .*rcpt-to domain=null-mx.test reason=null-mx: 556 5.1.10' "$INST/smtpd.log"; then
	e2e_ok filter-logged
else
	e2e_notok filter-logged "no refusal line in smtpd's log"
fi

# TLS reporting (RFC 8460 4.3): one result per TLS negotiation attempt.
# A message with "TLS-Required: No" (RFC 8689) to dane-mismatch.test is
# delivered over TLS to the good receiver, not deferred, and not counted.
t_rpt=$(date +%s)
TRNONCE=tlsreq-$$-$(date +%s)
/usr/bin/python3 - "$ADDR" "$PORT" "$SENDER" "$TRNONCE" <<'EOF' || e2e_notok send-tls-required
import smtplib, sys
host, port, sender, nonce = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
msg = ("From: %s\r\nTo: tlsreq@dane-mismatch.test\r\nSubject: report\r\n"
       "TLS-Required: No\r\nX-Tlsreq: %s\r\n\r\nTLS-Required: No\r\n" % (sender, nonce))
with smtplib.SMTP(host, port, timeout=30) as s:
    s.sendmail(sender, ["tlsreq@dane-mismatch.test"], msg)
EOF
e2e_wait 60 final tlsreq@dane-mismatch.test
# no more deliveries while counting (smtpd retries deferred mail)
ctl pause mta >/dev/null 2>&1
sleep 1
tlsreq_file=$(grep -l "X-Tlsreq: $TRNONCE" "$E2E_MAIL"/good/dane-mismatch.test/*.eml 2>/dev/null | head -1)
if [ "$(outcome tlsreq@dane-mismatch.test)" = Ok ] && [ -n "$tlsreq_file" ] &&
    grep -q '^X-Danests-TLS: yes' "$tlsreq_file" &&
    grep -q 'domain=dane-mismatch.test TLS-Required: No: DANE and MTA-STS not enforced' "$INST/relay.log"; then
	e2e_ok tls-required-delivered
else
	e2e_notok tls-required-delivered "result '$(outcome tlsreq@dane-mismatch.test)', file '${tlsreq_file:-none}'"
fi
danests=$build/core/danests
printf 'cache_dir %s\ntls_reports yes\n' "$INST/cache" >"$INST/report.conf"
# DOMAIN POLICY-TYPE EXPECT: ok (every session a success) or the RFC 8460
# result type of every session; the sessions are the relay's deliveries
# to DOMAIN (one recipient per domain and message), bar TLS-Required: No
rday=$(date -u +%F)
rexpect=""	# the same as lines for report_check.py, below
while read -r d ptype want; do
	n=$(grep "domain=$d rcpt=<.* status=" "$INST/relay.log" | grep -vc ' tls_required=no ')
	# as the relay's user, who owns the cache
	json=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$danests" report show "$d" --json --config "$INST/report.conf" 2>"$INST/report-$d.err")
	echo "$json" >"$INST/report-$d.json"
	got=$(jq -rs --arg t "$ptype" '
	    [.. | objects | select(has("summary"))] as $p |
	    [$p[] | select(.policy["policy-type"] == $t)] as $q |
	    [($p | length) - ($q | length),
	     ([$q[].summary["total-successful-session-count"]] | add // 0),
	     ([$q[].summary["total-failure-session-count"]] | add // 0),
	     ([$q[]["failure-details"][]? | .["result-type"]] | unique | join(",")),
	     ([$q[]["failure-details"][]? | .["failed-session-count"]] | add // 0),
	     ([$q[]["failure-details"][]? | select((.["receiving-mx-hostname"] // "") == "" or
	         (.["receiving-ip"] // "") == "" or (.["sending-mta-ip"] // "") == "")] | length)]
	    | map(tostring) | join(" ")' <<<"$json" 2>&1)
	if [ "$want" = ok ]; then
		exp="0 $n 0  0 0"
		rexpect="$rexpect$d $ptype $n 0
"
	else
		exp="0 0 $n $want $n 0"
		rexpect="$rexpect$d $ptype 0 $n $want=$n
"
	fi
	if [ "$n" -gt 0 ] && [ "$got" = "$exp" ]; then
		e2e_ok "tls-report-$d"
	else
		e2e_notok "tls-report-$d" "sessions $n; want '$exp' (other-policies ok fail types detail-count detail-without-addresses), got '$got' $(head -c 300 "$INST/report-$d.err")"
	fi
done <<'EOF'
dane-ee.test tlsa ok
insecure.test no-policy-found ok
sts-enforce.test sts ok
dane-mismatch.test tlsa tlsa-invalid
sts-testing.test sts certificate-not-trusted
sts-certbad.test sts certificate-not-trusted
EOF
# Sending the reports (RFC 8460 5), while smtpd's mta is still paused (no
# new session changes today's counts): "danests report send" a day later
# (faketime: a day's report is due only once the UTC day is over) posts
# them to https://rua.reports.test/tlsrpt and hands them to smtpd's own
# sendmail interface (report_sendmail: smtpctl called "sendmail", as
# Debian installs it); once the mta resumes, smtpd relays them through
# danests-relay over DANE to tlsrpt@reports.test.  "danests report send"
# runs in smtpd's namespace (where smtpctl reaches smtpd), as the user
# who owns the cache.  One report each way per domain above, with the
# counts of its sessions (tests/e2e/report_check.py); the report mails
# carry TLS-Required: No: no counter for reports.test appears.
ln -sf smtpctl "$INST/sendmail"
cat >>"$INST/report.conf" <<EOF
resolver $E2E_RESOLVER
ca_file $E2E_CA
report_organization danests e2e opensmtpd
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
nsenter -t "$smtpd_pid" -m -r setpriv --reuid=nobody --regid=nogroup --clear-groups \
    faketime -f +1d "$danests" report send --now --config "$INST/report.conf" \
    >"$INST/send.out" 2>&1
rc=$?
if [ $rc = 0 ]; then
	e2e_ok "tls-report-sent ($(($(date +%s) - t_send)) s)"
else
	e2e_notok tls-report-sent "exit $rc: $(head -c 600 "$INST/send.out" | tr '\n' '|')"
fi
ctl resume mta >/dev/null 2>&1
e2e_wait 60 sh -c "[ \$(grep -l '^TLS-Report-Submitter: $ME' $E2E_MAIL/*/reports.test/*.eml 2>/dev/null | wc -l) -ge 6 ]"
sleep 1	# a seventh would be a duplicate: give it a moment
if out=$(python3 "$E2E_TOP/tests/e2e/report_check.py" \
    --rua "$E2E_RUN/rua" --mail "$E2E_MAIL" --day "$rday" \
    --submitter "$ME" --from "tlsrpt-noreply@$ME" \
    --org "danests e2e opensmtpd" --contact "postmaster@$ME" <<<"$rexpect" 2>&1) &&
    [ "$(grep -c 'domain=reports.test rcpt=<tlsrpt@reports.test> .* verified=yes tls_required=no status=250 ' "$INST/relay.log")" = 6 ]; then
	e2e_ok "tls-report-https-and-mail-through-smtpd ($(grep -c '^ok' <<<"$out") domains, $(($(date +%s) - t_send)) s)"
else
	e2e_notok tls-report-https-and-mail-through-smtpd "$(tr '\n' '|' <<<"$out" | cut -c1-600); $(grep 'tlsrpt@reports.test' "$INST/relay.log" | tail -2 | cut -c1-300)"
fi
out=$(setpriv --reuid=nobody --regid=nogroup --clear-groups \
    "$danests" report list --json --config "$INST/report.conf" 2>&1)
if jq -e 'type == "array" and length > 0 and all(.[]; .domain != "reports.test")' >/dev/null 2>&1 <<<"$out"; then
	e2e_ok tls-report-mails-not-counted
else
	e2e_notok tls-report-mails-not-counted "$(head -c 400 <<<"$out")"
fi
echo "# TLS reporting part: $(($(date +%s) - t_rpt)) s"

osmtpd_cleanup

# under load: no recipient delivered twice (its own smtpd instance)
"$here/load.sh" "$build" || E2E_FAILS=$((E2E_FAILS + 1))
[ "$E2E_FAILS" = 0 ]
