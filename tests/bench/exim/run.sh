#!/bin/bash
# tests/bench/exim/run.sh [BUILD_DIR] - benchmarks of the Exim module, by
# hand (not part of tests/run.sh): needs the test bed up.
#
#  1. cost of one module call from a warm cache: "exim -be" processes (1, 4
#     and 8 at once) each expanding CALLS lines of
#     ${dlfunc{...}{decision}{DOMAIN}{...}} over the scenario domains in
#     turn (so that every call reads the shared LMDB cache, not the
#     process's own memo), against the same lines with ${lc:DOMAIN}
#     (Exim's own cost per line); and one domain repeated (memo hits);
#  2. delivery of a batch of BATCH messages (sts-enforce.test, dane-ee.test,
#     insecure.test in turn), one "exim -M" per message, 8 at once, with
#     the danests routers and without them (-DNO_DANESTS=1), same run.
#
# Environment: CALLS (default 2000), BATCH (default 150).
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
BUILD=${1:-$TOP/build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
export CALLS=${CALLS:-2000} BATCH=${BATCH:-150} BENCH_TOP=$TOP
EXIM_E2E_EXEC=$HERE/inner.sh exec "$TOP/tests/e2e/exim/run.sh" "$BUILD"
