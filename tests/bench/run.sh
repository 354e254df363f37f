#!/bin/bash
# tests/bench/run.sh - core benchmarks against the test bed, with a peer
# measured in the same run:
#   decisions: danests (MX + A + AAAA + TLSA + MTA-STS per domain, all
#     domains concurrently) vs dig doing the same DNS queries (no STS) in
#     one batch, sequentially;
#   policy fetches: danests's curl-multi fetcher vs the curl command line
#     fetching the same policies in parallel (xargs -P).
# Usage: tests/bench/run.sh [ROUNDS]   (starts and stops the test bed, in
# a network namespace of its own: tests/testbed/isolate.sh)
set -eu
cd "$(dirname "$0")/../.."
rounds=${1:-10}
if [ -z "${DANESTS_TEST_TOP:-}" ]; then
	tests/setup.sh
	exec tests/testbed/isolate.sh tests/bench/run.sh "$@"
fi
# Use a test bed that is already up; otherwise start one for this run.
if ! dig @127.10.0.2 +time=1 +tries=1 dane-ee.test MX >/dev/null 2>&1; then
	trap 'tests/testbed/down.sh >/dev/null 2>&1 || true' EXIT
	tests/testbed/up.sh >/dev/null
fi
ca=tests/testbed/run/pki/ca.crt
domains=$(awk '!/^#/ && NF && $2 == "deliver" { print $1 }' tests/scenarios/list |
    grep -v -e sts-slow -e sts-down -e sts-chunked)
nd=$(echo $domains | wc -w)

echo "== danests"
build/tests/bench/bench_core 127.10.0.2 "$ca" "$rounds" $domains

echo "== peer: dig, same DNS queries, one batch"
q=$(mktemp)
for r in $(seq "$rounds"); do
	for d in $domains; do
		echo "$d MX +dnssec"; echo "mx.$d A +dnssec"; echo "mx.$d AAAA +dnssec"
		echo "_25._tcp.mx.$d TLSA +dnssec"; echo "_mta-sts.$d TXT +dnssec"
	done
done >"$q"
t0=$(date +%s.%N)
dig @127.10.0.2 +tries=1 +time=5 -f "$q" >/dev/null
t1=$(date +%s.%N)
echo "dig_domains_per_s $(echo "$nd * $rounds / ($t1 - $t0)" | bc -l | cut -c1-7) domains/s (5 queries each, sequential)"
rm -f "$q"

echo "== peer: curl command line, same policies, 16 in parallel"
sts=$(echo $domains | tr ' ' '\n' | grep '^sts-')
ns=$(echo $sts | wc -w)
t0=$(date +%s.%N)
for r in $(seq "$rounds"); do echo $sts | tr ' ' '\n'; done |
    xargs -P 16 -I{} curl -s -o /dev/null --cacert "$ca" \
    --resolve "mta-sts.{}:443:127.10.1.1" "https://mta-sts.{}/.well-known/mta-sts.txt"
t1=$(date +%s.%N)
echo "curl_fetches_per_s $(echo "$ns * $rounds / ($t1 - $t0)" | bc -l | cut -c1-7) fetches/s"
