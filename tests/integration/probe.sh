#!/bin/bash
# probe.sh - `danests probe --json` over every scenario domain of the test
# bed: the probe must agree with the e2e column of tests/scenarios/list
# (the outcome a correct MTA reaches), and every failed host must carry an
# RFC 8460 result type that explains it.  Usage: probe.sh BUILD_DIR
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
tb=$top/tests/testbed/run
danests=$build/core/danests
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
status=0

# probe DOMAIN -> $tmp/DOMAIN.json, exit status in $rc
run_probe() {
	"$danests" probe --json --no-cache --resolver 127.10.0.2 \
	    --ca-file "$tb/pki/ca.crt" --timeout 15 --helo probe.danests.test \
	    "$1" >"$tmp/$1.json" 2>"$tmp/$1.err"
	rc=$?
}

while read -r d verdict e2e _; do
	case $d in ""|\#*) continue ;; esac
	case $d in sts-cache.test|sts-idchange.test|sts-expire.test) continue ;; esac
	run_probe "$d"
	j=$tmp/$d.json
	case $e2e in
	delivered|delivered-may)
		want=0
		check='.reachable == true and ([.probe[] | select(.status == "ok")] | length) > 0'
		# delivered: over TLS, authenticated unless the host's TLSA
		# records are all unusable (RFC 7672 2.2: encrypt)
		[ "$e2e" = delivered ] &&
		    check="$check and ([.probe[] | select(.status == \"ok\" and .tls == true and (.verified == true or .policy == \"encrypt\"))] | length) > 0"
		;;
	deferred)
		want=75
		if [ "$verdict" = tempfail ]; then
			check='.verdict == "tempfail"'
		else
			check='.reachable == false and ([.probe[] | select(.status == "fail" and .result_type == null)] | length) == 0'
		fi
		;;
	bounced)
		want=69
		check='.verdict == "permfail"'
		;;
	*) continue ;;
	esac
	if [ "$rc" -eq "$want" ] && jq -e "$check" "$j" >/dev/null 2>&1; then
		echo "ok probe-$d"
	else
		echo "not ok probe-$d # exit $rc (want $want), check: $check"
		sed 's/^/#   /' "$j" "$tmp/$d.err" | head -c 1500
		echo
		status=1
	fi
done <"$top/tests/scenarios/list"
exit $status
