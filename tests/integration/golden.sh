#!/bin/bash
# golden.sh - decide every scenario domain of the test bed with
# `danests check --json` and compare with tests/scenarios/golden/DOMAIN.json
#
# The comparison keeps only the keys present in the golden file (so the
# output may grow new fields) and substitutes @VAR@ placeholders from the
# test bed's run/vars (TLSA data made fresh at every start).  A golden may
# pin "sts_error_reason", the reason code that starts "sts_error".
# Usage: golden.sh BUILD_DIR     Prints "ok NAME" / "not ok NAME" lines.
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
build=${1:-$top/build}
tb=$top/tests/testbed/run
list=$top/tests/scenarios/list
golden=$top/tests/scenarios/golden
danests=$build/core/danests
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT

[ -x "$danests" ] || { echo "not ok golden-setup # no $danests"; exit 1; }
[ -f "$tb/vars" ] || { echo "not ok golden-setup # test bed not up"; exit 1; }

# shellcheck disable=SC1091
. "$tb/vars"
sedargs=()
while IFS='=' read -r k _; do
	case $k in [A-Z]*) sedargs+=(-e "s|@$k@|${!k}|g") ;; esac
done < <(grep -E '^[A-Z_0-9]+=' "$tb/vars")

domains=$(awk '!/^#/ && NF { print $1 }' "$list")
# One invocation decides every domain concurrently.
"$danests" check --json --no-cache --resolver 127.10.0.2 \
    --ca-file "$tb/pki/ca.crt" --timeout 12 $domains >"$out/all.jsonl" 2>"$out/err"
rc=$?
case $rc in 0|69|75) ;; *) echo "not ok golden-run # exit $rc: $(head -c 300 "$out/err")"; exit 1 ;; esac

proj='def proj($t):
  if ($t|type) == "object" and type == "object" then
    . as $o | reduce ($t|keys[]) as $k ({}; .[$k] = ($o[$k] | proj($t[$k])))
  elif ($t|type) == "array" and type == "array" and ($t|length) > 0 then
    map(proj($t[0]))
  else . end;'

status=0
for d in $domains; do
	g=$golden/$d.json
	if [ ! -f "$g" ]; then
		echo "not ok golden-$d # no golden file"
		status=1
		continue
	fi
	sed "${sedargs[@]}" "$g" | jq -S . >"$out/$d.want" || { echo "not ok golden-$d # bad golden"; status=1; continue; }
	jq -c --arg d "$d" 'select(.domain == $d)' "$out/all.jsonl" >"$out/$d.got.raw"
	if [ ! -s "$out/$d.got.raw" ]; then
		echo "not ok golden-$d # no decision printed"
		status=1
		continue
	fi
	# sts_error_reason: the reason code that starts sts_error, so that
	# goldens can pin it without the transport's wording.
	jq -S --slurpfile t "$out/$d.want" "$proj"' .sts_error_reason =
	    (if .sts_error then (.sts_error | split(":")[0]) else null end)
	    | proj($t[0])' "$out/$d.got.raw" >"$out/$d.got"
	if diff -u "$out/$d.want" "$out/$d.got" >"$out/$d.diff"; then
		echo "ok golden-$d"
	else
		echo "not ok golden-$d"
		sed 's/^/#   /' "$out/$d.diff"
		status=1
	fi
done
exit $status
