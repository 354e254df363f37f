#!/bin/sh
# tests/testbed/down.sh - stop everything up.sh started, in reverse order.
# No error when nothing runs; run/ stays for the logs.
set -eu
TB=$(cd "$(dirname "$0")" && pwd)
rc=0
for part in rua smtp https dns; do
	if [ -x "$TB/$part.sh" ]; then
		"$TB/$part.sh" down || {
			echo "down.sh: $part.sh down failed" >&2
			rc=1
		}
	fi
done
exit $rc
