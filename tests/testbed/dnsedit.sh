#!/bin/sh
# tests/testbed/dnsedit.sh - change a zone of the running test bed.
#
#   dnsedit.sh ZONE [VAR=VALUE...]   re-render ZONE's template with these
#                                    variables; earlier edits are dropped,
#                                    so "dnsedit.sh ZONE" restores it
#   dnsedit.sh ZONE -t FILE [...]    render FILE instead of the template
#
# The zone is re-signed with its key when it is signed, nsd reloads it (the
# script waits until nsd serves the new serial) and unbound drops it from
# its cache.  Example: dnsedit.sh sts-idchange.test TXT_ID=20261124b
set -eu
[ $# -ge 1 ] || {
	echo "usage: dnsedit.sh ZONE [-t FILE] [VAR=VALUE...]" >&2
	exit 2
}
exec "$(dirname "$0")/dns.sh" edit "$@"
