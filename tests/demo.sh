#!/bin/bash
# tests/demo.sh - build danests, start the loopback test bed and show the
# decision table of the demo domains; the test bed stops on exit.  It runs
# in a network namespace of its own (tests/testbed/isolate.sh), so the
# machine's own services on ports 25/53/443 do not matter.
set -eu
cd "$(dirname "$0")/.."
if [ -z "${DANESTS_TEST_TOP:-}" ]; then
	tests/setup.sh
	exec tests/testbed/isolate.sh tests/demo.sh "$@"
fi
trap 'tests/testbed/down.sh >/dev/null 2>&1 || true' EXIT
tests/testbed/up.sh >/dev/null
DOMAINS=${*:-"dane-ee.test dane-ta.test unusable.test bogus-tlsa.test
 bogus-mx.test insecure.test insecure-mx.test cname-mx.test null-mx.test
 nxdomain.test implicit.test sts-enforce.test sts-wild.test sts-mismatch.test
 sts-testing.test sts-dane.test sts-404.test"}
echo "danests check, resolver 127.10.0.2 (validating, test trust anchor)"
echo
# shellcheck disable=SC2086
build/core/danests check --no-cache --resolver 127.10.0.2 \
    --ca-file tests/testbed/run/pki/ca.crt --timeout 10 $DOMAINS || true
