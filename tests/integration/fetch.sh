#!/bin/sh
# fetch.sh - run fetch_test against the test bed's policy hosts
#
# usage: fetch.sh BUILD_DIR [domain ...]
#
# Starts nothing: the test bed (tests/testbed/up.sh, or https.sh up) must
# be running.  Exits 77 (skip) when the policy hosts do not answer.
# Environment: TESTBED_RUN (default tests/testbed/run), HTTPS_PORT (443),
# VALGRIND=1 to run under valgrind (leaks are errors).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
BUILD=${1:?usage: fetch.sh BUILD_DIR [domain ...]}
shift
RUN=${TESTBED_RUN:-$HERE/../testbed/run}
PORT=${HTTPS_PORT:-443}
CA=$RUN/pki/ca.crt
EXE=$BUILD/tests/integration/fetch_test

[ -x "$EXE" ] || { echo "fetch.sh: no $EXE (build first)" >&2; exit 1; }
if [ ! -f "$CA" ] || ! curl -s -o /dev/null --max-time 2 --cacert "$CA" \
    --resolve "mta-sts.sts-enforce.test:$PORT:127.10.1.1" \
    "https://mta-sts.sts-enforce.test:$PORT/.well-known/mta-sts.txt"; then
	echo "fetch.sh: policy hosts not up (tests/testbed/https.sh up)" >&2
	exit 77
fi

if [ "${VALGRIND:-0}" = 1 ]; then
	# TLS handshakes under valgrind need a longer fetch timeout.
	exec valgrind -q --error-exitcode=3 --leak-check=full \
	    --show-leak-kinds=definite,indirect \
	    --errors-for-leak-kinds=definite,indirect \
	    "$EXE" -c "$CA" -p "$PORT" -t 10000 "$@"
fi
exec "$EXE" -c "$CA" -p "$PORT" -t 2000 "$@"
