#!/bin/sh
#
# cli_usage.sh - command line of danests(1): help, version, usage errors
# and their exit status.  Needs no network: every case fails or ends
# before the first lookup, but for the -f cases, which ask a resolver
# address where nothing listens (127.0.0.1 port 1) for a second.
#
# usage: cli_usage.sh PATH-TO-danests | BUILD_DIR
# Prints "ok NAME" or "not ok NAME" per case; exits 1 when any failed.

bin=${1:?usage: cli_usage.sh PATH-TO-danests}
[ -d "$bin" ] && bin=$bin/core/danests
[ -x "$bin" ] || { echo "cli_usage.sh: $bin: not executable" >&2; exit 1; }

tmp=$(mktemp -d) || exit 1
trap 'rm -rf "$tmp"' EXIT INT TERM
failed=0

# run NAME - run "$bin $@" (after NAME), keep stdout, stderr and status
run() {
	"$bin" "$@" >"$tmp/out" 2>"$tmp/err"
	rc=$?
}

# report NAME OK? DETAIL
report() {
	if [ "$2" = 0 ]; then
		echo "ok $1"
	else
		echo "not ok $1: $3"
		failed=1
	fi
}

# usage_case NAME ARGS... - must exit 64 with nothing on stdout and one
# line "danests: ..." on stderr that points at --help
usage_case() {
	name=$1
	shift
	run "$@"
	why=""
	[ "$rc" = 64 ] || why="exit $rc, want 64"
	[ -s "$tmp/out" ] && why="$why; output on stdout"
	[ "$(wc -l <"$tmp/err")" = 1 ] || why="$why; stderr not one line"
	grep -q '^danests: .*--help' "$tmp/err" || why="$why; stderr: $(head -c 200 "$tmp/err")"
	report "$name" "$([ -z "$why" ]; echo $?)" "$why"
}

# help_case NAME PATTERN ARGS... - must exit 0, print PATTERN on stdout
help_case() {
	name=$1
	pat=$2
	shift 2
	run "$@"
	why=""
	[ "$rc" = 0 ] || why="exit $rc, want 0"
	grep -q -e "$pat" "$tmp/out" || why="$why; no '$pat' on stdout"
	[ -s "$tmp/err" ] && why="$why; stderr: $(head -c 200 "$tmp/err")"
	report "$name" "$([ -z "$why" ]; echo $?)" "$why"
}

help_case help SYNOPSIS --help
help_case help_short 'COMMAND \[ARGS\]' -h
help_case help_lists_check '^ *check DOMAIN' --help
help_case help_lists_cache '^ *cache list' --help
help_case version '^danests [0-9][0-9.]*$' --version
help_case check_help '--timeout SECONDS' check --help
help_case check_help_exit_status '^EXIT STATUS' check --help
help_case check_help_short '--no-cache' check -h
help_case help_command_check '--cache-dir DIR' help check

# "help check" says exactly what "check --help" says
"$bin" check --help >"$tmp/a" 2>&1
"$bin" help check >"$tmp/b" 2>&1
cmp -s "$tmp/a" "$tmp/b"
report help_command_same $? "danests help check differs from check --help"

usage_case no_command
usage_case unknown_command frobnicate
usage_case unknown_global_option --frobnicate check example.org
usage_case unknown_global_short -z
usage_case global_option_with_value --version=1
usage_case check_no_domain check
usage_case check_no_domain_json check --json
usage_case check_unknown_option check --bogus example.org
usage_case check_unknown_short check -x example.org
usage_case check_flag_with_value check --json=yes example.org
usage_case check_missing_value check example.org --timeout
usage_case check_timeout_zero check --timeout 0 example.org
usage_case check_timeout_big check --timeout 301 example.org
usage_case check_timeout_unit check --timeout 5s example.org
usage_case check_timeout_negative check --timeout -1 example.org
usage_case check_timeout_empty check --timeout '' example.org
usage_case check_cache_and_nocache check --no-cache --cache-dir "$tmp" example.org
usage_case check_nocache_and_cache check --cache-dir "$tmp" --no-cache example.org
usage_case check_empty_cache_dir check --cache-dir '' example.org
usage_case check_bad_resolver check --resolver not-an-address example.org
usage_case check_bad_resolver_port check --resolver 127.0.0.1@99999 example.org
usage_case check_missing_ca_file check --ca-file "$tmp/none.pem" example.org
usage_case check_domain_empty_label check 'bad..example.org'
usage_case check_domain_bad_char check 'ex ample.org'
usage_case check_domain_hyphen check '-'
usage_case check_domain_too_long check "$(printf 'a%.0s' $(seq 1 64)).example.org"
usage_case check_one_bad_of_many check example.org 'bad..example.org' example.net
usage_case help_too_many help check cache
usage_case check_file_missing check -f "$tmp/none.txt"
usage_case check_file_no_value check -f
usage_case check_file_twice check -f /dev/null -f /dev/null
usage_case check_file_empty check -f /dev/null
printf 'ok.example\nbad..example.org\n' >"$tmp/bad.txt"
usage_case check_file_bad_domain check -f "$tmp/bad.txt"
printf '%02000d\n' 0 >"$tmp/long.txt"
usage_case check_file_long_line check -f "$tmp/long.txt"
help_case check_help_file '-f FILE' check --help

# -f FILE and -f - (standard input): the domains of the file after those
# of the command line, comments, blank lines and blanks around a name
# skipped; the output is what the same domains as arguments give: one
# JSON line per domain, in order.
printf '# batch\n\n  b.example  \nC.Example.\r\n' >"$tmp/list.txt"
nores="--no-cache --resolver 127.0.0.1@1 --timeout 1"
# shellcheck disable=SC2086
"$bin" check --json $nores a.example b.example c.example >"$tmp/args" 2>&1
rc_args=$?
# shellcheck disable=SC2086
"$bin" check --json $nores -f "$tmp/list.txt" a.example >"$tmp/file" 2>&1
rc_file=$?
# shellcheck disable=SC2086
"$bin" check --json $nores a.example -f - <"$tmp/list.txt" >"$tmp/stdin" 2>&1
rc_stdin=$?
why=""
for f in args file stdin; do
	got=$(jq -r '"\(.domain) \(.verdict)"' "$tmp/$f" 2>/dev/null | tr '\n' ' ')
	[ "$got" = "a.example tempfail b.example tempfail c.example tempfail " ] ||
	    why="$why; $f: got '$got' ($(head -c 200 "$tmp/$f"))"
done
[ "$rc_args$rc_file$rc_stdin" = 757575 ] ||
    why="$why; exit $rc_args $rc_file $rc_stdin, want 75"
report check_file_stdin_order "$([ -z "$why" ]; echo $?)" "$why"

# A context that cannot be made (the cache path is a file): exit 75 with
# the library's reason, before any lookup.
: >"$tmp/file"
run check --resolver 127.0.0.1 --cache-dir "$tmp/file" example.org
why=""
[ "$rc" = 75 ] || why="exit $rc, want 75"
[ -s "$tmp/out" ] && why="$why; output on stdout"
grep -q '^danests: .*cache' "$tmp/err" || why="$why; stderr: $(head -c 200 "$tmp/err")"
report check_cache_unusable "$([ -z "$why" ]; echo $?)" "$why"

exit $failed
