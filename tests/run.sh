#!/bin/bash
# tests/run.sh - build danests and run every test suite:
#   unit (cmocka), fuzz (libFuzzer, bounded time), integration (against the
#   loopback test bed), e2e (real MTAs) and packages (the Debian packages
#   built and used next to each MTA in clean Debian 12 and 13 roots:
#   tests/packages/run.sh, which makes its own namespaces), then print
#   "N passed, N failed, N skipped" and exit non-zero on any failure.
#
# tests/setup.sh (which may need the network for apt) and the downloads of
# the e2e suites run first, in the machine's namespaces; the suites that
# start servers (the test bed, integration, e2e) then run through
# tests/testbed/isolate.sh: in a network namespace of their own, so two
# runs at once, or the machine's own services on ports 25/53/443, never
# disturb each other, and with the checkout seen at a path that the
# daemons can read after dropping privileges.  The "isolation" suite
# proves it (tests/testbed/isolate-test.sh).
#
# Environment:
#   FUZZ_SECONDS   seconds per fuzz target (default 30; 0 skips fuzzing)
#   SUITES         space-separated subset of:
#                  unit fuzz isolation integration e2e packages
#   INTEGRATION    space-separated names of tests/integration scripts to
#                  run (default: all), e.g. "golden fetch"
#   TEST_LOGDIR    where the logs go (default build/test-logs)
set -u
cd "$(dirname "$0")/.." || exit 1
top=$PWD
FUZZ_SECONDS=${FUZZ_SECONDS:-30}
SUITES=${SUITES:-"unit fuzz isolation integration e2e packages"}
logdir=${TEST_LOGDIR:-$top/build/test-logs}
pass=0 fail=0 skip=0
failed_names=()

want() { case " $SUITES " in *" $1 "*) return 0 ;; esac; return 1; }

note() { printf '== %s\n' "$*"; }

# record RESULT NAME - count one result
record() {
	case $1 in
	ok) pass=$((pass + 1)) ;;
	skip) skip=$((skip + 1)) ;;
	*) fail=$((fail + 1)); failed_names+=("$2") ;;
	esac
}

# run_tap NAME CMD... - run a script that prints "ok X" / "not ok X" /
# "skip X" lines; a non-zero exit without a "not ok" line is one failure.
run_tap() {
	local name=$1 log rc line n=0 nf=0
	shift
	log=$logdir/$name.log
	"$@" >"$log" 2>&1
	rc=$?
	while IFS= read -r line; do
		case $line in
		"not ok "*) record fail "$name: ${line#not ok }"; n=$((n + 1)); nf=$((nf + 1)) ;;
		"ok "*"# SKIP"*|"skip "*) record skip "$name"; n=$((n + 1)) ;;
		"ok "*) record ok "$name"; n=$((n + 1)) ;;
		esac
	done <"$log"
	if [ $rc -ne 0 ] && [ $nf -eq 0 ]; then
		record fail "$name (exit $rc)"
	fi
	if [ $rc -ne 0 ] || [ $nf -ne 0 ]; then
		echo "-- $name: FAILED (exit $rc), log $log:"
		tail -n 40 "$log"
	else
		echo "-- $name: $n results"
	fi
}

# servers - the test bed, the integration and e2e suites (run inside
# tests/testbed/isolate.sh by "run.sh --servers")
servers() {
	local s n
	note "test bed"
	trap 'tests/testbed/down.sh >/dev/null 2>&1' EXIT
	if ! tests/testbed/up.sh >"$logdir/testbed-up.log" 2>&1; then
		record fail "testbed up"
		tail -n 40 "$logdir/testbed-up.log"
		return
	fi
	if want integration; then
		note "integration tests"
		for s in tests/integration/*.sh; do
			n=$(basename "$s" .sh)
			[ "$n" = lib ] && continue	# sourced by the others
			case " ${INTEGRATION:-$n} " in *" $n "*) ;; *) continue ;; esac
			run_tap "$n" "$s" "$top/build"
		done
	fi
	if want e2e; then
		note "e2e tests (real MTAs)"
		for s in tests/e2e/*/run.sh; do
			[ -x "$s" ] || continue
			run_tap "e2e-$(basename "$(dirname "$s")")" "$s" "$top/build"
		done
	fi
}

if [ "${1:-}" = --servers ]; then
	mkdir -p "$logdir"
	servers
	{
		echo "$pass $fail $skip"
		[ $fail -gt 0 ] && printf '%s\n' "${failed_names[@]}"
	} >"$logdir/servers.result"
	exit 0
fi

note "setup and build"
if ! tests/setup.sh; then
	echo "setup failed"
	echo "0 passed, 1 failed, 0 skipped"
	exit 1
fi
mkdir -p "$logdir"

if want unit; then
	note "unit tests"
	meson test -C build --suite unit --print-errorlogs >"$logdir/unit.log" 2>&1
	if [ -f build/meson-logs/testlog.json ]; then
		# Count the cmocka test cases of each executable; an executable
		# that failed without a failed case counts as one failure.
		while IFS=$'\t' read -r tname tres; do
			out=$(jq -r --arg n "$tname" 'select(.name == $n) | .stdout // ""' \
			    build/meson-logs/testlog.json)
			nok=$(grep -c '^\[       OK \]' <<<"$out")
			nbad=$(grep '^\[  \(FAILED\|ERROR\) *\] [a-z]' <<<"$out" | sort -u | wc -l)
			case $tres in
			SKIP) record skip "$tname" ;;
			*)
				for _ in $(seq "$nok"); do record ok "$tname"; done
				for _ in $(seq "$nbad"); do record fail "unit: $tname"; done
				if [ "$tres" != OK ] && [ "$nbad" -eq 0 ]; then
					record fail "unit: $tname ($tres)"
				fi
				;;
			esac
			echo "-- unit $tname: $tres ($nok cases passed, $nbad failed)"
		done < <(jq -r 'select(.name != null) | [.name, .result] | @tsv' build/meson-logs/testlog.json)
	else
		record fail "unit: no test log"
	fi
	grep -q "^Fail: *0" "$logdir/unit.log" || tail -n 60 "$logdir/unit.log"
fi

if want fuzz && [ "$FUZZ_SECONDS" != 0 ]; then
	note "fuzzers ($FUZZ_SECONDS s each, ASan+UBSan)"
	# Warnings are errors here too (clang sees what gcc does not).
	if [ ! -d build-fuzz ]; then
		CC=clang meson setup build-fuzz -Dfuzz=true -Dwerror=true \
		    -Db_sanitize=address,undefined -Db_lundef=false \
		    >"$logdir/fuzz-setup.log" 2>&1
	else
		meson configure build-fuzz -Dwerror=true \
		    >"$logdir/fuzz-setup.log" 2>&1
	fi
	if ninja -C build-fuzz >"$logdir/fuzz-build.log" 2>&1; then
		for t in build-fuzz/tests/fuzz/fuzz_*; do
			[ -f "$t" ] && [ -x "$t" ] || continue
			n=$(basename "$t")
			corpus=$(mktemp -d)
			[ -d "tests/fuzz/corpus/$n" ] && cp -r "tests/fuzz/corpus/$n/." "$corpus/"
			if UBSAN_OPTIONS=halt_on_error=1 "$t" -max_total_time="$FUZZ_SECONDS" \
			    -timeout=10 -rss_limit_mb=1024 "$corpus" >"$logdir/$n.log" 2>&1; then
				record ok "$n"
				echo "-- $n: $(grep -o 'Done [0-9]* runs' "$logdir/$n.log" | tail -1)"
			else
				record fail "$n"
				echo "-- $n: FAILED, log $logdir/$n.log"
				tail -n 30 "$logdir/$n.log"
			fi
			rm -rf "$corpus"
		done
	else
		record fail "fuzz build"
		tail -n 30 "$logdir/fuzz-build.log"
	fi
fi

if want isolation; then
	note "isolation (server suites in their own network namespace)"
	run_tap isolation tests/testbed/isolate-test.sh
fi

if want integration || want e2e; then
	if want e2e; then
		# Downloads need the network: here, before the namespace.
		note "e2e downloads"
		for s in tests/e2e/*/run.sh; do
			[ -x "$s" ] || continue
			run_tap "e2e-$(basename "$(dirname "$s")")-fetch" \
			    env E2E_FETCH_ONLY=1 "$s" "$top/build"
		done
	fi
	rm -f "$logdir/servers.result"
	tests/testbed/isolate.sh tests/run.sh --servers
	if [ -f "$logdir/servers.result" ] && read -r p f k <"$logdir/servers.result"; then
		pass=$((pass + p)) fail=$((fail + f)) skip=$((skip + k))
		while IFS= read -r line; do
			failed_names+=("$line")
		done < <(tail -n +2 "$logdir/servers.result")
	else
		record fail "server suites (no result; isolate.sh failed)"
	fi
fi

if want packages; then
	# Needs the network (the roots, apt) before each root gets a network
	# namespace of its own, with its own copy of the test bed.
	note "packages (Debian 12 and 13 roots, every MTA)"
	run_tap packages tests/packages/run.sh
	grep '^# packages: wall time' "$logdir/packages.log"
fi

if [ $fail -gt 0 ]; then
	echo "failures:"
	printf '  %s\n' "${failed_names[@]}"
fi
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]
