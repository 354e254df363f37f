#!/bin/bash
# report.sh - "danests report send" against the live test bed (RFC 8460)
#
# Results are injected into a fresh cache per case (report_inject, as the
# adapters record them), then `danests report send` runs with the test
# resolver, the test CA, and report_sendmail set to a capturing script
# (the real MTAs are exercised by the e2e suites).  Checked:
#  - not configured (tls_reports no; no report_from): nothing sent, exit 0;
#  - --dry-run: targets and sizes printed, nothing sent, nothing kept;
#  - the https receiver (rua.reports.test) gets a gzip body whose JSON
#    matches RFC 8460 4 field by field with the injected counts;
#  - the mail parses (python3 email) as multipart/report; report-type=
#    tlsrpt with the headers of RFC 8460 5.3 and TLS-Required: No, the
#    attachment named submitter!domain!begin!end.json.gz holding the same
#    JSON; sendmail ran as "-i -f FROM -- RCPT";
#  - today is never sent; a second run sends nothing; the malformed
#    TLSRPT record of mixed.test: nothing sent, logged;
#  - a stalled https host ends within report_timeout, the attempt is kept
#    and retried (exit 75, then 0); a failing sendmail likewise;
#  - a target failing 3 times in a row is suppressed; report_attempts
#    failed attempts: given up;
#  - report_only_failures; report_keep_days; the spreading window;
#  - the size of a report for 10,000 failed sessions over 100 details.
# Usage: report.sh BUILD_DIR    Prints "ok N NAME" / "not ok N NAME".
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
tb=$top/tests/testbed/run
rua=$top/tests/testbed/rua.sh
danests=$build/core/danests
inject=$build/tests/integration/report_inject
tmp=$(mktemp -d)
status=0
n=0

[ -x "$inject" ] || { echo "not ok 1 setup # no $inject"; exit 1; }
[ -f "$tb/pki/ca.crt" ] || { echo "not ok 1 setup # test bed not up"; exit 1; }

cleanup() {
	"$rua" mode ok >/dev/null 2>&1
	rm -rf "$tmp"
}
trap cleanup EXIT

ok() {
	n=$((n + 1))
	echo "ok $n $1"
}
notok() {
	n=$((n + 1))
	echo "not ok $n $1 # $2"
	status=1
}
# check NAME CMD... - ok when CMD succeeds
check() {
	local name=$1
	shift
	if "$@" >"$tmp/check.out" 2>&1; then
		ok "$name"
	else
		notok "$name" "$(head -c 800 "$tmp/check.out" | tr '\n' ' ')"
	fi
}

Y=$(date -u -d yesterday +%F)
T=$(date -u +%F)
YNOON=$(date -u -d "$Y 12:00:00" +%s)
YBEGIN=$(date -u -d "$Y 00:00:00" +%s)
OLD=$(date -u -d "10 days ago 12:00:00" +%s)

# The capturing sendmail: NNNN.args and NNNN.eml under $tmp/mail; the
# file $tmp/sendmail.mode says "fail" (exit 75) or "stall" (never ends).
mkdir -p "$tmp/mail"
cat >"$tmp/sendmail" <<EOF
#!/bin/sh
mode=\$(cat "$tmp/sendmail.mode" 2>/dev/null)
[ "\$mode" = stall ] && exec sleep 119.7
i=\$(ls "$tmp/mail" | grep -c '\.eml\$')
f=$tmp/mail/\$(printf %04d \$((i + 1)))
cat >"\$f.tmp"
[ "\$mode" = fail ] && { echo "sendmail: queue file write error" >&2; exit 75; }
printf '%s\n' "\$@" >"\$f.args"
mv "\$f.tmp" "\$f.eml"
EOF
chmod 755 "$tmp/sendmail"

# conf NAME [KEY VALUE]... - a configuration with its own cache; a KEY
# given replaces the default, VALUE "-" removes it
conf() {
	local name=$1 f=$tmp/$1.conf
	shift
	cat >"$f" <<EOC
resolver 127.10.0.2
ca_file $tb/pki/ca.crt
cache_dir $tmp/$name.cache
tls_reports yes
report_organization Example Sender Org
report_contact postmaster@sender.test
report_from tlsrpt-noreply@sender.test
report_submitter mx.sender.test
report_sendmail $tmp/sendmail
report_timeout 3
EOC
	while [ $# -ge 2 ]; do
		sed -i "/^$1 /d" "$f"
		[ "$2" = - ] || echo "$1 $2" >>"$f"
		shift 2
	done
}
# send NAME [ARGS] - danests report send with NAME's configuration
send() {
	local name=$1
	shift
	"$danests" report send --config "$tmp/$name.conf" "$@"
}
posts() { ls "$tb/rua" 2>/dev/null | grep -c '\.body$'; }
mails() { ls "$tmp/mail" | grep -c '\.eml$'; }
reset_all() {
	"$rua" reset >/dev/null
	rm -f "$tmp/mail"/* "$tmp/sendmail.mode"
}

# --- not configured: exit 0, nothing sent ---
reset_all
conf off tls_reports no
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" | "$inject" --cache-dir "$tmp/off.cache" >/dev/null
send off --now >"$tmp/off.out" 2>&1
rc=$?
check not-enabled-exit-0-nothing-sent test $rc = 0 -a "$(posts)" = 0 -a \
    "$(mails)" = 0
conf nofrom report_from - report_organization -
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" | "$inject" --cache-dir "$tmp/nofrom.cache" >/dev/null
send nofrom --now >"$tmp/nofrom.out" 2>&1
rc=$?
check no-report-from-says-so-exit-0 sh -c "test $rc = 0 &&
    grep -q 'report_from and report_organization' '$tmp/nofrom.out' &&
    test $(posts) = 0 -a $(mails) = 0"

# --- usage and configuration errors: 64, one line ---
for args in "--bogus" "--day 2026-02-30" "--day" "extra" "--domain a..b"; do
	# shellcheck disable=SC2086
	send off $args >"$tmp/use.out" 2>"$tmp/use.err"
	rc=$?
	check "usage: send $args" sh -c "test $rc = 64 -a ! -s '$tmp/use.out' &&
	    test \$(wc -l <'$tmp/use.err') = 1"
done
printf 'tls_reports yes\nreport_from not-an-address\n' >"$tmp/bad.conf"
"$danests" report send --config "$tmp/bad.conf" >"$tmp/use.out" 2>"$tmp/use.err"
rc=$?
check config-error-64-names-line sh -c "test $rc = 64 &&
    grep -q 'bad.conf:2' '$tmp/use.err'"

# --- the main case ---
reset_all
conf main
cat >"$tmp/main.in" <<EOF
dane-ee.test tlsa ok mx=mx.dane-ee.test policy=3~1~1~aabbcc when=$YNOON count=5
dane-ee.test tlsa validation-failure mx=mx.dane-ee.test ip=127.10.2.1 from=127.0.0.1 policy=3~1~1~aabbcc when=$YNOON count=3
dane-ee.test tlsa certificate-expired mx=mx.dane-ee.test ip=127.10.2.1 policy=3~1~1~aabbcc when=$YNOON count=2
sts-testing.test sts ok mx=mx.sts-testing.test policy=version:~STSv1|mode:~testing|mx:~mx.sts-testing.test|max_age:~86400 mxhost=mx.sts-testing.test when=$YNOON count=4
sts-testing.test sts certificate-not-trusted mx=mx.sts-testing.test ip=127.10.2.2 policy=version:~STSv1|mode:~testing|mx:~mx.sts-testing.test|max_age:~86400 mxhost=mx.sts-testing.test when=$YNOON count=2
insecure.test no-policy-found ok mx=mx.insecure.test when=$YNOON count=7
mixed.test tlsa validation-failure mx=mx.mixed.test when=$YNOON
dane-ee.test tlsa ok mx=mx.dane-ee.test policy=3~1~1~aabbcc count=1
EOF
"$inject" --cache-dir "$tmp/main.cache" "$tmp/main.in" >"$tmp/inject.out" 2>&1 ||
    notok inject "$(cat "$tmp/inject.out")"

send main --dry-run --now >"$tmp/dry.out" 2>&1
rc=$?
check dry-run-lists-targets-and-sizes sh -c "test $rc = 0 &&
    grep -q '^$Y dane-ee.test: report .* bytes JSON, [0-9]* bytes gzip' '$tmp/dry.out' &&
    grep -q '^  mailto:tlsrpt@reports.test\$' '$tmp/dry.out' &&
    grep -q '^  https://rua.reports.test/tlsrpt\$' '$tmp/dry.out'"
check dry-run-sends-nothing test "$(posts)" = 0 -a "$(mails)" = 0

start=$(date +%s)
send main --now >"$tmp/main.out" 2>&1
rc=$?
check send-exit-0 sh -c "test $rc = 0 || { cat '$tmp/main.out'; false; }"
check three-reports-each-way sh -c "test $(posts) = 3 -a $(mails) = 3 ||
    { echo posts $(posts) mails $(mails); cat '$tmp/main.out'; false; }"
check malformed-record-nothing-sent-logged sh -c "
    grep -q 'mixed.test: nothing sent: .*malformed TLSRPT record' '$tmp/main.out' &&
    ! grep -l 'mixed.test' '$tb/rua/'*.headers '$tmp/mail/'*.eml 2>/dev/null | grep -q ."

# The https reports, field by field (RFC 8460 4.4)
cat >"$tmp/check_json.py" <<'EOF'
import glob, gzip, json, sys
rua, Y, T = sys.argv[1], sys.argv[2], sys.argv[3]
got = {}
for b in sorted(glob.glob(rua + "/*.body")):
    hdr = open(b[:-5] + ".headers").read().lower()
    assert hdr.startswith("post /tlsrpt "), hdr
    assert "content-type: application/tlsrpt+gzip\n" in hdr, hdr
    r = json.loads(gzip.decompress(open(b, "rb").read()))
    got[r["policies"][0]["policy"]["policy-domain"]] = r
assert sorted(got) == ["dane-ee.test", "insecure.test", "sts-testing.test"], sorted(got)
for d, r in got.items():
    assert r["organization-name"] == "Example Sender Org", r
    assert r["contact-info"] == "postmaster@sender.test", r
    assert r["date-range"] == {"start-datetime": Y + "T00:00:00Z",
                               "end-datetime": Y + "T23:59:59Z"}, r
    assert r["report-id"] == "%s.%s@mx.sender.test" % (Y, d), r
    assert len(r["policies"]) == 1, r
p = got["dane-ee.test"]["policies"][0]
assert p["policy"]["policy-type"] == "tlsa", p
assert p["policy"]["policy-string"] == ["3 1 1 aabbcc"], p
assert p["summary"] == {"total-successful-session-count": 5,
                        "total-failure-session-count": 5}, p
fd = {f["result-type"]: f for f in p["failure-details"]}
assert sorted(fd) == ["certificate-expired", "validation-failure"], fd
v = fd["validation-failure"]
assert v["failed-session-count"] == 3, v
assert v["receiving-mx-hostname"] == "mx.dane-ee.test", v
assert v["receiving-ip"] == "127.10.2.1", v
assert v["sending-mta-ip"] == "127.0.0.1", v
assert fd["certificate-expired"]["failed-session-count"] == 2, fd
p = got["sts-testing.test"]["policies"][0]
assert p["policy"]["policy-type"] == "sts", p
assert p["policy"]["policy-string"] == ["version: STSv1", "mode: testing",
    "mx: mx.sts-testing.test", "max_age: 86400"], p
assert p["policy"]["mx-host"] == ["mx.sts-testing.test"], p
assert p["summary"] == {"total-successful-session-count": 4,
                        "total-failure-session-count": 2}, p
assert p["failure-details"][0]["result-type"] == "certificate-not-trusted", p
assert p["failure-details"][0]["failed-session-count"] == 2, p
p = got["insecure.test"]["policies"][0]
assert p["policy"]["policy-type"] == "no-policy-found", p
assert p["summary"] == {"total-successful-session-count": 7,
                        "total-failure-session-count": 0}, p
assert p.get("failure-details", []) == [], p
print("ok")
EOF
check https-json-field-by-field python3 "$tmp/check_json.py" "$tb/rua" "$Y" "$T"

# The mails (RFC 8460 5.3, RFC 6522, RFC 8689)
cat >"$tmp/check_mail.py" <<'EOF'
import email, email.policy, glob, gzip, json, re, sys
mdir, rua, Y, begin = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
posted = {}
for b in glob.glob(rua + "/*.body"):
    j = gzip.decompress(open(b, "rb").read())
    posted[json.loads(j)["policies"][0]["policy"]["policy-domain"]] = j
seen = set()
for f in sorted(glob.glob(mdir + "/*.eml")):
    args = open(f[:-4] + ".args").read().split("\n")[:-1]
    assert args == ["-i", "-f", "tlsrpt-noreply@sender.test", "--",
                    "tlsrpt@reports.test"], args
    m = email.message_from_bytes(open(f, "rb").read(), policy=email.policy.default)
    d = m["TLS-Report-Domain"]
    seen.add(d)
    assert m["TLS-Report-Submitter"] == "mx.sender.test", m["TLS-Report-Submitter"]
    assert m["TLS-Required"] == "No", m["TLS-Required"]
    assert m["From"] == "tlsrpt-noreply@sender.test", m["From"]
    assert m["To"] == "tlsrpt@reports.test", m["To"]
    assert m["MIME-Version"] == "1.0"
    assert m["Date"] is not None and m["Message-ID"] is not None
    subj = " ".join(str(m["Subject"]).split())
    assert subj == "Report Domain: %s Submitter: mx.sender.test Report-ID: <%s.%s@mx.sender.test>" % (d, Y, d), subj
    assert m.get_content_type() == "multipart/report", m.get_content_type()
    assert m.get_param("report-type") == "tlsrpt", m.get_param("report-type")
    parts = list(m.iter_parts())
    assert len(parts) == 2, len(parts)
    assert parts[0].get_content_type() == "text/plain"
    assert "aggregate TLS report" in parts[0].get_content()
    a = parts[1]
    assert a.get_content_type() == "application/tlsrpt+gzip", a.get_content_type()
    assert a.get_content_disposition() == "attachment"
    fn = a.get_filename()
    assert fn == "mx.sender.test!%s!%d!%d.json.gz" % (d, begin, begin + 86399), fn
    assert re.fullmatch(r"[a-z0-9.-]+![a-z0-9.-]+![0-9]{1,12}![0-9]{1,12}\.json\.gz", fn)
    j = gzip.decompress(a.get_content())
    assert j == posted[d], (j, posted[d])
assert seen == set(posted), (seen, set(posted))
print("ok")
EOF
check mail-multipart-report-headers-filename python3 "$tmp/check_mail.py" \
    "$tmp/mail" "$tb/rua" "$Y" "$YBEGIN"

check today-never-sent python3 -c '
import glob, gzip, json, sys
for b in glob.glob(sys.argv[1] + "/*.body"):
    r = json.loads(gzip.decompress(open(b, "rb").read()))
    assert r["date-range"]["start-datetime"] == sys.argv[2] + "T00:00:00Z", r
' "$tb/rua" "$Y"
send main --day "$T" --now >"$tmp/today.out" 2>&1
rc=$?
check today-refused-by-day sh -c "test $rc = 0 && grep -q 'not a finished UTC day' '$tmp/today.out'"

"$danests" report list --json --config "$tmp/main.conf" >"$tmp/list.json" 2>&1
check list-shows-sending-state python3 -c '
import json, sys
rows = {(r["day"], r["domain"]): r for r in json.load(open(sys.argv[1]))}
Y, T = sys.argv[2], sys.argv[3]
for d in ("dane-ee.test", "sts-testing.test", "insecure.test"):
    assert rows[(Y, d)]["sent"] is not None and rows[(Y, d)]["attempts"] == 1, rows[(Y, d)]
assert rows[(Y, "mixed.test")]["sent"] is None, rows[(Y, "mixed.test")]
assert rows[(T, "dane-ee.test")]["sent"] is None, rows[(T, "dane-ee.test")]
' "$tmp/list.json" "$Y" "$T"

p0=$(posts) m0=$(mails)
send main --now >"$tmp/again.out" 2>&1
rc=$?
check second-run-sends-nothing test $rc = 0 -a "$(posts)" = "$p0" -a \
    "$(mails)" = "$m0"

# --- a stalled https host: bounded, kept, retried ---
reset_all
conf stall report_timeout 3
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" | "$inject" --cache-dir "$tmp/stall.cache" >/dev/null
"$rua" mode stall
t0=$(date +%s)
send stall --now >"$tmp/stall.out" 2>&1
rc=$?
t1=$(date +%s)
check stalled-https-ends-within-timeout sh -c "test $rc = 75 -a $((t1 - t0)) -le 8 &&
    grep -q 'https://rua.reports.test/tlsrpt: .*timed out' '$tmp/stall.out' &&
    grep -q 'attempt 1 failed' '$tmp/stall.out' || { cat '$tmp/stall.out'; echo $((t1 - t0)) s; false; }"
"$rua" mode ok
send stall --dry-run >"$tmp/stall.dry" 2>&1
check stalled-retry-scheduled grep -q "^$Y dane-ee.test: next attempt in [0-9]* s" "$tmp/stall.dry"
p0=$(posts)
send stall --now >"$tmp/stall2.out" 2>&1
rc=$?
check stalled-retried-later sh -c "test $rc = 0 -a $(posts) = $((p0 + 1)) ||
    { cat '$tmp/stall2.out'; false; }"
# the mail went out in the stalled attempt: the retry sends none
check stalled-retry-no-second-mail sh -c "test $(mails) = 1 || { cat '$tmp/stall2.out'; false; }"

# --- a failing sendmail: logged, kept, retried ---
reset_all
conf smfail
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" | "$inject" --cache-dir "$tmp/smfail.cache" >/dev/null
echo fail >"$tmp/sendmail.mode"
send smfail --now >"$tmp/smfail.out" 2>&1
rc=$?
p1=$(posts)
check failing-sendmail-logged sh -c "test $rc = 75 -a $p1 = 1 &&
    grep -q 'mailto:tlsrpt@reports.test: .*exit status 75: sendmail: queue file write error' '$tmp/smfail.out'"
rm -f "$tmp/sendmail.mode"
send smfail --now >"$tmp/smfail2.out" 2>&1
rc=$?
check failing-sendmail-retried sh -c "test $rc = 0 -a $(mails) = 1 || { cat '$tmp/smfail2.out'; false; }"
# the https receiver took the report in the failed attempt: not again
check retry-leaves-out-who-took-it sh -c "test $(posts) = $p1 || { cat '$tmp/smfail2.out'; false; }"

# --- a stalled sendmail: killed at report_timeout ---
reset_all
conf smstall report_timeout 2
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" | "$inject" --cache-dir "$tmp/smstall.cache" >/dev/null
echo stall >"$tmp/sendmail.mode"
t0=$(date +%s)
send smstall --now >"$tmp/smstall.out" 2>&1
rc=$?
t1=$(date +%s)
check stalled-sendmail-killed sh -c "test $rc = 75 -a $((t1 - t0)) -le 6 &&
    grep -q 'no answer within 2 s, killed' '$tmp/smstall.out' &&
    ! pgrep -f '^sleep 119[.]7' >/dev/null || { cat '$tmp/smstall.out'; false; }"
rm -f "$tmp/sendmail.mode"

# --- one sender at a time: a second run while the first one works ---
reset_all
conf lock report_timeout 3
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" | "$inject" --cache-dir "$tmp/lock.cache" >/dev/null
echo stall >"$tmp/sendmail.mode"
send lock --now >"$tmp/lock1.out" 2>&1 &
first=$!
sleep 1
rm -f "$tmp/sendmail.mode"
send lock --now >"$tmp/lock2.out" 2>&1
rc=$?
wait $first
check second-sender-waits-its-turn sh -c "test $rc = 0 &&
    grep -q 'another danests report send is running' '$tmp/lock2.out' &&
    test $(mails) = 0 -a $(posts) = 1 || { cat '$tmp/lock1.out' '$tmp/lock2.out'; false; }"

# --- suppression of a target that keeps failing ---
reset_all
conf supp report_attempts 10
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" | "$inject" --cache-dir "$tmp/supp.cache" >/dev/null
"$rua" mode 500
for i in 1 2 3; do
	send supp --now >"$tmp/supp$i.out" 2>&1
done
check suppressed-after-3-failures sh -c "
    grep -q 'HTTP status 500' '$tmp/supp1.out' &&
    grep -q 'https://rua.reports.test/tlsrpt: 3 failures in a row: suppressed for 7 days' '$tmp/supp3.out' &&
    test $(posts) = 3"
"$rua" mode ok
send supp --now >"$tmp/supp4.out" 2>&1
rc=$?
# (the mail target took the report in the first attempt, and only then)
check suppressed-target-not-tried sh -c "test $rc = 0 -a $(posts) = 3 &&
    grep -q 'https://rua.reports.test/tlsrpt: suppressed until' '$tmp/supp4.out' &&
    test $(mails) = 1 || { cat '$tmp/supp4.out'; false; }"

# --- report_attempts failed attempts: given up ---
reset_all
conf giveup report_attempts 2
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" | "$inject" --cache-dir "$tmp/giveup.cache" >/dev/null
echo fail >"$tmp/sendmail.mode"
send giveup --now >"$tmp/giveup1.out" 2>&1
send giveup --now >"$tmp/giveup2.out" 2>&1
rm -f "$tmp/sendmail.mode"
p0=$(posts)
send giveup --now >"$tmp/giveup3.out" 2>&1
rc=$?
check gives-up-after-report-attempts sh -c "
    grep -q 'giving up after 2 attempts' '$tmp/giveup2.out' &&
    test $rc = 0 -a $(posts) = $p0 -a $(mails) = 0"

# --- report_only_failures ---
reset_all
conf onlyfail report_only_failures yes
printf 'insecure.test no-policy-found ok mx=mx.insecure.test when=%s count=9\ndane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" "$YNOON" | "$inject" --cache-dir "$tmp/onlyfail.cache" >/dev/null
send onlyfail --now >"$tmp/onlyfail.out" 2>&1
rc=$?
check only-failures-skips-clean-days sh -c "test $rc = 0 -a $(posts) = 1 -a $(mails) = 1 &&
    gzip -dc '$tb/rua/'*.body | grep -q '\"dane-ee.test\"' &&
    ! grep -q 'insecure.test' '$tmp/mail/'*.eml"

# --- every finished day still kept is reported, oldest first ---
reset_all
conf days
D3=$(date -u -d "3 days ago" +%F)
printf 'dane-ee.test tlsa ok mx=mx.dane-ee.test when=%s\ndane-ee.test tlsa ok mx=mx.dane-ee.test when=%s\n' \
    "$(date -u -d "$D3 12:00:00" +%s)" "$YNOON" | "$inject" --cache-dir "$tmp/days.cache" >/dev/null
send days --now >"$tmp/days.out" 2>&1
rc=$?
check every-kept-day-oldest-first python3 -c '
import glob, gzip, json, sys
days = [json.loads(gzip.decompress(open(b, "rb").read()))["date-range"]["start-datetime"][:10]
        for b in sorted(glob.glob(sys.argv[1] + "/*.body"))]
assert days == [sys.argv[2], sys.argv[3]], days
assert sys.argv[4] == "0", sys.argv[4]
' "$tb/rua" "$D3" "$Y" "$rc"

# --- report_keep_days: old counters are forgotten, not sent ---
reset_all
conf keep report_keep_days 8
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$OLD" | "$inject" --cache-dir "$tmp/keep.cache" >/dev/null
send keep --now >"$tmp/keep.out" 2>&1
rc=$?
check keep-days-forgets-old-days sh -c "test $rc = 0 -a $(posts) = 0 -a $(mails) = 0 &&
    grep -q 'forgot 1 reports of days before' '$tmp/keep.out'"

# --- the spreading window: each domain at its own offset ---
reset_all
conf window report_window 86399
printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\n' \
    "$YNOON" | "$inject" --cache-dir "$tmp/window.cache" >/dev/null
send window --dry-run >"$tmp/window.out" 2>&1
# FNV-1a of the name, modulo the window: due when the day is that old
due=$(python3 -c '
import sys, time
h = 2166136261
for c in b"dane-ee.test":
    h = ((h ^ c) * 16777619) & 0xffffffff
off = h % 86399
print("wait" if time.time() % 86400 < off else "due")')
if [ "$due" = wait ]; then
	check window-spreads-sending grep -q "^$Y dane-ee.test: due in [0-9]* s (spreading window)" "$tmp/window.out"
else
	check window-spreads-sending grep -q "^$Y dane-ee.test: report " "$tmp/window.out"
fi

# --- no invalid access, no leak: a success and a failure under valgrind ---
if command -v valgrind >/dev/null; then
	reset_all
	conf vg
	printf 'dane-ee.test tlsa validation-failure mx=mx.dane-ee.test when=%s\nsts-testing.test sts ok when=%s\n' \
	    "$YNOON" "$YNOON" | "$inject" --cache-dir "$tmp/vg.cache" >/dev/null
	vg="valgrind -q --leak-check=full --errors-for-leak-kinds=definite,indirect --error-exitcode=9 --child-silent-after-fork=yes"
	$vg "$danests" report send --config "$tmp/vg.conf" --now --domain dane-ee.test >"$tmp/vg1.out" 2>&1
	rc1=$?
	"$rua" mode 500
	$vg "$danests" report send --config "$tmp/vg.conf" --now >"$tmp/vg2.out" 2>&1
	rc2=$?
	"$rua" mode ok
	check valgrind-send-clean sh -c "test $rc1 = 0 -a $rc2 = 75 &&
	    ! grep -q '^==' '$tmp/vg1.out' '$tmp/vg2.out' ||
	    { cat '$tmp/vg1.out' '$tmp/vg2.out'; false; }"
fi

# --- the size of a big report: 10,000 failed sessions, 100 details ---
conf big
for i in $(seq 0 99); do
	echo "dane-ee.test tlsa validation-failure mx=mx$i.dane-ee.test ip=192.0.2.$i from=198.51.100.1 reason=X509_V_ERR_$i policy=3~1~1~aabbccddeeff00112233445566778899aabbccddeeff00112233445566778899 when=$YNOON count=100"
done | "$inject" --cache-dir "$tmp/big.cache" >/dev/null
send big --dry-run --now >"$tmp/big.out" 2>&1
sz=$(grep -o '[0-9]* bytes JSON, [0-9]* bytes gzip, 0 successful and 10000 failed' "$tmp/big.out")
if [ -n "$sz" ]; then
	ok "size-10000-failures-100-details ($sz)"
else
	notok size-10000-failures-100-details "$(head -c 400 "$tmp/big.out")"
fi

exit $status
