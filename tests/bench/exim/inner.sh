#!/bin/bash
# tests/bench/exim/inner.sh - the Exim benchmarks proper; run by run.sh
# inside the Exim e2e namespace (EXIM, CONF, RUN, SO exported).
set -u
DCONF=$RUN/danests.conf
ex() { timeout 300 "$EXIM" -C "$CONF" "$@"; }
now() { date +%s.%N; }

domains=$(awk '!/^[ \t]*(#|$)/ && $2 == "deliver" && $1 !~ /^sts-(cache|idchange|expire)/ { print $1 }' \
    "$BENCH_TOP/tests/scenarios/list")
nd=$(echo "$domains" | wc -l)

# Warm the shared cache (one resolution per domain).
for d in $domains; do
	echo "\${dlfunc{$SO}{decision}{$d}{$DCONF}}"
done | ex -be >"$RUN/warm.out" 2>&1
echo "warm-up: $nd domains: $(grep -c cached "$RUN/warm.out") already cached"

# lines KIND FILE - CALLS expansion lines
lines() {
	local i=0 d
	while [ $i -lt "$CALLS" ]; do
		for d in $domains; do
			case $1 in
			cache) echo "\${dlfunc{$SO}{decision}{$d}{$DCONF}}" ;;
			memo) echo "\${dlfunc{$SO}{decision}{dane-ee.test}{$DCONF}}" ;;
			base) echo "\${lc:$d}" ;;
			esac
			i=$((i + 1))
			[ $i -ge "$CALLS" ] && break
		done
	done >"$2"
}

for k in base cache memo; do
	lines $k "$RUN/bench-$k.in"
done
printf '%-6s %5s %10s %12s\n' kind procs seconds lines/s
for p in 1 4 8; do
	for k in base cache memo; do
		t0=$(now)
		for i in $(seq "$p"); do
			ex -be <"$RUN/bench-$k.in" >"$RUN/bench-$k.$i.out" 2>&1 &
		done
		wait
		t1=$(now)
		bad=$(cat "$RUN"/bench-$k.*.out | grep -c -i 'fail' || true)
		awk -v k=$k -v p=$p -v a=$t0 -v b=$t1 -v n="$CALLS" -v bad="$bad" \
		    'BEGIN { printf "%-6s %5d %10.3f %12.0f%s\n", k, p, b - a,
		        p * n / (b - a), (bad > 0 ? "  (" bad " failed)" : "") }'
	done
done

# Batch delivery, with and without the module.
msg="$RUN/bench.msg"
printf 'Subject: bench\n\nbench\n' >"$msg"
batch() {
	local i d ids t0 t1 n=0
	# The batch is alone in the queue.
	ex -bp | awk '/^ *[0-9]+[smhdw] / { print $3 }' |
	    xargs -r "$EXIM" -C "$CONF" -Mrm >/dev/null 2>&1
	for i in $(seq "$BATCH"); do
		case $((i % 3)) in
		0) d=sts-enforce.test ;; 1) d=dane-ee.test ;; 2) d=insecure.test ;;
		esac
		ex -odq -f sender@exim.e2e.test "postmaster@$d" <"$msg"
	done
	ids=$(ex -bp | awk '/^ *[0-9]+[smhdw] / { print $3 }')
	t0=$(now)
	for id in $ids; do
		timeout 120 "$EXIM" -C "$CONF" "$@" -M "$id" >/dev/null 2>&1 &
		n=$((n + 1))
		[ $((n % 8)) -eq 0 ] && wait
	done
	wait
	t1=$(now)
	left=$(ex -bpc)
	awk -v a=$t0 -v b=$t1 -v n=$n -v l="$left" -v w="$1" \
	    'BEGIN { printf "%-22s %4d messages %7.2f s %7.1f msg/s, %s left in queue\n",
	        w, n, b - a, n / (b - a), l }'
}
for round in 1 2 3; do
	batch "-DNO_DANESTS=1" | sed 's/^-DNO_DANESTS=1 */without module  /'
	batch "-DDANESTS_BENCH=1" | sed 's/^-DDANESTS_BENCH=1 */with module     /'
done
