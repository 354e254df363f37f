#!/bin/sh
#
# report_cli.sh - `danests report list|show` over counters recorded by
# report_inject (as the adapters record them): the text, the JSON of list,
# the RFC 8460 report of show --json field by field, the filters, the
# exit status and the usage errors.  Needs no network.
#
# usage: report_cli.sh BUILD_DIR
# Prints "ok N NAME" or "not ok N NAME" per case; exits 1 when any failed.

build=${1:?usage: report_cli.sh BUILD_DIR}
bin=$build/core/danests
inject=$build/tests/integration/report_inject
for x in "$bin" "$inject"; do
	[ -x "$x" ] || { echo "report_cli.sh: $x: not executable" >&2; exit 1; }
done
command -v jq >/dev/null || { echo "report_cli.sh: jq missing" >&2; exit 1; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
n=0
failed=0

# check NAME CONDITION-STATUS DETAIL
check() {
	n=$((n + 1))
	if [ "$2" = 0 ]; then
		echo "ok $n $1"
	else
		echo "not ok $n $1: $3"
		failed=1
	fi
}

cat >"$tmp/conf" <<CONF
cache_dir $tmp/cache
tls_reports yes
report_organization Example Sender
report_contact mailto:postmaster@sender.example
report_from tlsrpt@sender.example
CONF

# 2026-11-28T12:00:00Z, the day after, and the last second of the 28th
t28=1795867200
t29=1795953600
e28=1795910399
cat >"$tmp/lines" <<LINES
# three successes and two failures under one STS policy
example.com sts ok policy=version:~STSv1|mode:~enforce|mx:~mx.example.com|max_age:~86400 mxhost=mx.example.com when=$t28 count=3
example.com sts certificate-expired mx=mx.example.com ip=192.0.2.7 reason=expired~leaf policy=version:~STSv1|mode:~enforce|mx:~mx.example.com|max_age:~86400 mxhost=mx.example.com when=$e28 count=2
example.com tlsa validation-failure mx=mx2.example.com ip=2001:db8::2 from=198.51.100.1 policy=3~1~1~ABCD when=$t28
other.example no-policy-found ok when=$t28
example.com sts ok policy=version:~STSv1|mode:~testing|mx:~mx.example.com|max_age:~86400 mxhost=mx.example.com when=$t29
LINES
"$inject" --cache-dir "$tmp/cache" "$tmp/lines" >"$tmp/out" 2>"$tmp/err"
check "inject" $? "$(cat "$tmp/err")"
grep -qx "recorded 8" "$tmp/out"
check "inject-count" $? "$(cat "$tmp/out")"

# list, text: one line per (day, domain), in day order
"$bin" report list --config "$tmp/conf" >"$tmp/out" 2>"$tmp/err"
check "list-status" $? "$(cat "$tmp/err")"
[ "$(wc -l <"$tmp/out")" -eq 3 ]
check "list-lines" $? "$(cat "$tmp/out")"
grep -Eq '^2026-11-28  example.com +ok 3 +failed 3 +policies tlsa,sts +not sent$' "$tmp/out"
check "list-example-28" $? "$(cat "$tmp/out")"
sed -n 3p "$tmp/out" | grep -Eq '^2026-11-29  example.com +ok 1 +failed 0 '
check "list-day-order" $? "$(cat "$tmp/out")"

# list --json with --day
"$bin" report list --config "$tmp/conf" --day 2026-11-28 --json >"$tmp/out" 2>"$tmp/err"
check "list-json-status" $? "$(cat "$tmp/err")"
[ -s "$tmp/out" ] && jq -e 'length == 2 and .[0].domain == "example.com" and .[0].successful == 3
    and .[0].failed == 3 and .[0].sent == null and .[1].domain == "other.example"
    and .[1].policies == "no-policy-found"' "$tmp/out" >/dev/null
check "list-json" $? "$(cat "$tmp/out")"

# show, text
"$bin" report show example.com --day 2026-11-28 --config "$tmp/conf" >"$tmp/out" 2>"$tmp/err"
check "show-status" $? "$(cat "$tmp/err")"
grep -q '^sessions:    3 successful, 3 failed$' "$tmp/out" &&
    grep -q '^  failure:   2 certificate-expired mx=mx.example.com ip=192.0.2.7 reason=expired leaf$' "$tmp/out" &&
    grep -q '^  failure:   1 validation-failure mx=mx2.example.com ip=2001:db8::2 from=198.51.100.1$' "$tmp/out"
check "show-text" $? "$(cat "$tmp/out")"

# show --json: the report, field by field (RFC 8460 4.4)
"$bin" report show EXAMPLE.com. --day 2026-11-28 --json --config "$tmp/conf" >"$tmp/out" 2>"$tmp/err"
check "show-json-status" $? "$(cat "$tmp/err")"
[ "$(wc -l <"$tmp/out")" -eq 1 ] && jq -e '
  .["organization-name"] == "Example Sender" and
  .["contact-info"] == "mailto:postmaster@sender.example" and
  .["report-id"] == "2026-11-28.example.com@sender.example" and
  .["date-range"]["start-datetime"] == "2026-11-28T00:00:00Z" and
  .["date-range"]["end-datetime"] == "2026-11-28T23:59:59Z" and
  (.policies | length) == 2 and
  ([.policies[] | select(.policy["policy-type"] == "sts")][0] |
    .policy["policy-string"] == ["version: STSv1", "mode: enforce",
      "mx: mx.example.com", "max_age: 86400"] and
    .policy["policy-domain"] == "example.com" and
    .policy["mx-host"] == ["mx.example.com"] and
    .summary["total-successful-session-count"] == 3 and
    .summary["total-failure-session-count"] == 2 and
    .["failure-details"] == [{"result-type": "certificate-expired",
      "receiving-mx-hostname": "mx.example.com", "receiving-ip": "192.0.2.7",
      "failed-session-count": 2, "failure-reason-code": "expired leaf"}]) and
  ([.policies[] | select(.policy["policy-type"] == "tlsa")][0] |
    .policy["policy-string"] == ["3 1 1 ABCD"] and
    .policy["mx-host"] == ["mx2.example.com"] and
    .summary["total-failure-session-count"] == 1 and
    .["failure-details"][0]["sending-mta-ip"] == "198.51.100.1")
' "$tmp/out" >/dev/null
check "show-json-report" $? "$(cat "$tmp/out")"

# show without --day: one report per day
"$bin" report show example.com --json --config "$tmp/conf" >"$tmp/out" 2>"$tmp/err"
[ "$(wc -l <"$tmp/out")" -eq 2 ] &&
    sed -n 2p "$tmp/out" | jq -e '.policies[0].policy["policy-string"][1] == "mode: testing"' >/dev/null
check "show-json-days" $? "$(cat "$tmp/out")"

# nothing counted: exit 1
"$bin" report show nothing.example --config "$tmp/conf" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "nothing counted for nothing.example" "$tmp/err"
check "show-none" $? "rc=$rc $(cat "$tmp/err")"

# --cache-dir overrides the configuration's
"$bin" report list --config "$tmp/conf" --cache-dir "$tmp/empty" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 0 ] && grep -qx "nothing counted" "$tmp/out"
check "list-empty" $? "rc=$rc $(cat "$tmp/out" "$tmp/err")"

# usage errors: 64
for args in "report" "report frob" "report list extra" "report show" \
    "report show a..b" "report list --day 2026-02-30" "report list --day" \
    "report list --bogus" "report show a.example b.example"; do
	# shellcheck disable=SC2086
	"$bin" $args --config "$tmp/conf" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	[ $rc -eq 64 ] && [ ! -s "$tmp/out" ] && [ "$(wc -l <"$tmp/err")" -eq 1 ]
	check "usage: $args" $? "rc=$rc $(cat "$tmp/out" "$tmp/err")"
done
"$bin" report --help >"$tmp/out" 2>&1 && grep -q "danests report show DOMAIN" "$tmp/out"
check "help" $? "$(cat "$tmp/out")"
"$bin" help report >"$tmp/out" 2>&1 && grep -q "danests report list" "$tmp/out"
check "help-report" $? "$(cat "$tmp/out")"

# a configuration error names FILE:LINE: KEY
printf 'tls_reports maybe\n' >"$tmp/bad.conf"
"$bin" report list --config "$tmp/bad.conf" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 64 ] && grep -q "bad.conf:1: tls_reports: expected yes or no" "$tmp/err"
check "config-error" $? "rc=$rc $(cat "$tmp/err")"

# the injector refuses a malformed line and says which
printf 'example.com sts ok\nexample.com bogus ok\n' |
    "$inject" --cache-dir "$tmp/cache" >"$tmp/out" 2>"$tmp/err"
rc=$?
[ $rc -eq 1 ] && grep -q "line 2: unknown type bogus" "$tmp/err"
check "inject-refuses" $? "rc=$rc $(cat "$tmp/err")"

exit $failed
