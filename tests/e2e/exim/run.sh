#!/bin/bash
# tests/e2e/exim/run.sh BUILD_DIR - Debian's real Exim (exim4-daemon-heavy,
# unpacked into BUILD_DIR/e2e-exim by prefix.sh) with the danests module
# and the shipped fragments of exim/conf.d, against the loopback test bed.
#
# Exim runs in a private mount namespace whose resolv.conf names the test
# bed's validating resolver (options trust-ad) and whose /etc/passwd has
# the Debian-exim user; its daemon listens on 127.10.4.1:25, its spool,
# logs and cache live in BUILD_DIR/e2e-exim/run.  One message per domain
# of tests/scenarios/list goes in over SMTP; each is then delivered by its
# own "exim -M" (several at once, each bounded); the outcome is read from
# the receivers' mailboxes, Exim's main log and its queue (exim -bp) and
# compared with the list's e2e column.  Port 587 runs the submission
# ACLs (exim/conf.d/acl/25_danests-submission): swaks submissions to
# null-MX and nonexistent domains are refused at RCPT or MAIL time, those
# to bogus-mx.test and dane-ee.test accepted and delivered with the rest.
# At the end, messages with "TLS-Required: No" (RFC 8689) leave even for
# dane-mismatch.test, whose TLSA records match nothing, while a null MX
# still bounces and a DNS failure still defers.  With tls_reports yes
# (a cache of its own), the counts of "danests report show" must be the
# TLS sessions those deliveries made, per domain, policy type and result
# type; a result that cannot be recorded is logged, delays nothing.
# With [exim] metrics yes the decisions' counts go to the cache; two
# nodes with a shared store (a redis-server on loopback) push theirs to
# Redis by themselves, and `danests stats` prints the sum of both.
# Then the module is broken on
# purpose (unusable cache, bad configuration, a configuration path that is
# a directory or missing, dead resolver): every
# message must stay queued, none may leave, and a later run with the good
# configuration must deliver them.
#
# Prints "ok NAME" / "not ok NAME" per check; exits non-zero on failure.
# With EXIM_E2E_EXEC=PROGRAM, runs PROGRAM in the prepared namespace (Exim
# daemon up; EXIM, CONF, RUN, SO, IFACE exported) instead of the checks.
set -u
HERE=$(cd "$(dirname "$0")" && pwd)
TOP=$(cd "$HERE/../../.." && pwd)
BUILD=${1:-$TOP/build}
case $BUILD in /*) ;; *) BUILD=$TOP/$BUILD ;; esac
. "$TOP/tests/e2e/lib.sh"

W=$BUILD/e2e-exim
RUN=$W/run
IFACE=127.10.4.1
SO=$BUILD/exim/danests_exim.so
PAR=${EXIM_E2E_PARALLEL:-8}	# deliveries at once
DELIVER_S=${EXIM_E2E_DELIVER_S:-90}	# bound on one delivery process

# Outside the namespace: prepare, then run this script again inside it.
if [ -z "${EXIM_E2E_INSIDE:-}" ]; then
	if [ ! -f "$SO" ]; then
		echo "ok exim-module # SKIP $SO not built (exim4-dev missing?)"
		exit 0
	fi
	exim=$("$HERE/prefix.sh" "$W") || {
		echo "not ok exim-prefix # Debian's Exim could not be unpacked"
		exit 1
	}
	echo "ok exim-prefix"
	# E2E_FETCH_ONLY=1 (tests/run.sh, with the network): only that.
	[ "${E2E_FETCH_ONLY:-}" = 1 ] && exit 0
	rm -rf "$RUN"
	mkdir -p "$RUN/log" "$RUN/spool" "$RUN/mail" "$RUN/cache"
	cp /etc/passwd "$RUN/passwd"
	cp /etc/group "$RUN/group"
	grep -q '^Debian-exim:' "$RUN/passwd" ||
	    echo 'Debian-exim:x:9725:9725:Exim (e2e):/nonexistent:/usr/sbin/nologin' >>"$RUN/passwd"
	grep -q '^Debian-exim:' "$RUN/group" ||
	    echo 'Debian-exim:x:9725:' >>"$RUN/group"
	# the shared state belongs to _danests; Exim's delivery processes
	# reach it as members of group _danests (as the package sets up)
	grep -q '^_danests:' "$RUN/passwd" ||
	    echo '_danests:x:9726:9726:danests (e2e):/var/lib/danests:/usr/sbin/nologin' >>"$RUN/passwd"
	grep -q '^_danests:' "$RUN/group" || echo '_danests:x:9726:' >>"$RUN/group"
	sed -i -e '/^_danests:/{/:$/s/$/Debian-exim/;/[^:]$/{/Debian-exim/!s/$/,Debian-exim/}}' \
	    "$RUN/group"
	uid=$(awk -F: '$1 == "Debian-exim" { print $3 }' "$RUN/passwd")
	gid=$(awk -F: '$1 == "Debian-exim" { print $3 }' "$RUN/group")
	duid=$(awk -F: '$1 == "_danests" { print $3 }' "$RUN/passwd")
	dgid=$(awk -F: '$1 == "_danests" { print $3 }' "$RUN/group")
	chown -R "$uid:$gid" "$RUN/spool" "$RUN/log" "$RUN/mail"
	chown "$duid:$dgid" "$RUN/cache" && chmod 2770 "$RUN/cache"
	cat >"$RUN/danests.conf" <<-EOF
	resolver 127.10.0.2
	ca_file $E2E_CA
	cache_dir $RUN/cache
	dns_timeout 2
	decision_timeout 6
	fetch_timeout 3
	EOF
	# Broken on purpose: the cache is a regular file; a mistyped key; a
	# resolver that never answers.
	: >"$RUN/not-a-dir"
	mkdir -p "$RUN/corrupt"
	head -c 65536 /dev/urandom >"$RUN/corrupt/data.mdb"
	chown -R "$duid:$dgid" "$RUN/corrupt" && chmod 2770 "$RUN/corrupt" &&
	    chmod 660 "$RUN/corrupt/data.mdb"
	sed "s|^cache_dir .*|cache_dir $RUN/corrupt|" \
	    "$RUN/danests.conf" >"$RUN/corrupt-cache.conf"
	# TLS reports (RFC 8460) recorded into a cache of their own
	mkdir -p "$RUN/rcache"
	chown "$duid:$dgid" "$RUN/rcache" && chmod 2770 "$RUN/rcache"
	{ sed "s|^cache_dir .*|cache_dir $RUN/rcache|" "$RUN/danests.conf"
	  echo "tls_reports yes"; } >"$RUN/reports.conf"
	# the module's counters ([exim] metrics yes) into a cache of their own
	mkdir -p "$RUN/mcache"
	chown "$duid:$dgid" "$RUN/mcache" && chmod 2770 "$RUN/mcache"
	{ sed "s|^cache_dir .*|cache_dir $RUN/mcache|" "$RUN/danests.conf"
	  printf '[exim]\nmetrics yes\n'; } >"$RUN/metrics.conf"
	sed "s|^cache_dir .*|cache_dir $RUN/not-a-dir/cache|" \
	    "$RUN/danests.conf" >"$RUN/broken-cache.conf"
	{ cat "$RUN/danests.conf"; echo "dns_timout 2"; } >"$RUN/bad-key.conf"
	# a configuration path that is a directory, or does not exist:
	# never the built-in defaults
	mkdir -p "$RUN/conf-dir.conf"
	rm -f "$RUN/no-conf.conf"
	sed -e 's|^resolver .*|resolver 127.10.0.3|' \
	    -e 's|^cache_dir .*|cache_dir none|' \
	    -e 's|^decision_timeout .*|decision_timeout 3|' \
	    "$RUN/danests.conf" >"$RUN/dead-resolver.conf"
	sed -e "s|@TOP@|$TOP|g" -e "s|@RUN@|$RUN|g" -e "s|@SO@|$SO|g" \
	    -e "s|@DCONF@|$RUN/danests.conf|g" -e "s|@CA@|$E2E_CA|g" \
	    -e "s|@EXIM@|$exim|g" -e "s|@IFACE@|$IFACE|g" \
	    "$HERE/exim.conf.in" >"$RUN/exim.conf"
	chmod 644 "$RUN"/*.conf
	export EXIM_E2E_INSIDE=1 EXIM_BIN=$exim
	e2e_in_testbed /bin/bash -c '
		mount --bind "$1/passwd" /etc/passwd &&
		mount --bind "$1/group" /etc/group || exit 1
		shift
		exec "$@"' e2e-exim "$RUN" "$0" "$BUILD"
	exit $?
fi

# ---- inside the namespace ------------------------------------------------
EXIM=$EXIM_BIN
CONF=$RUN/exim.conf
MAINLOG=$RUN/log/mainlog

# Watchdog: the whole suite ends within LIMIT seconds (every Exim process
# is bounded on its own too).
LIMIT=${EXIM_E2E_LIMIT:-480}
( sleep "$LIMIT" && echo "not ok exim-e2e-time-limit # over $LIMIT s" &&
    kill -TERM $$ ) 2>/dev/null &
WATCHDOG=$!

cleanup() {
	local pid
	pkill -P "$WATCHDOG" sleep 2>/dev/null; kill "$WATCHDOG" 2>/dev/null
	pid=$(cat "$RUN/exim.pid" 2>/dev/null) || return 0
	[ -n "$pid" ] && kill "$pid" 2>/dev/null
	rm -f "$RUN/exim.pid"
}
trap cleanup EXIT
trap 'cleanup; exit 1' TERM INT

ex() { timeout 30 "$EXIM" -C "$CONF" "$@"; }

if ex -bV >"$RUN/version" 2>&1 && grep -q '^Exim version 4' "$RUN/version"; then
	e2e_ok "exim-version $(sed -n 's/^Exim version \([^ ]*\).*/\1/p' "$RUN/version")"
else
	e2e_notok exim-version "$(head -3 "$RUN/version" | tr '\n' ' ')"
	exit 1
fi
if grep -qi 'dane' "$RUN/version" && grep -q 'Expand_dlfunc' "$RUN/version"; then
	e2e_ok exim-features-dane-dlfunc
else
	e2e_notok exim-features-dane-dlfunc
fi

# The module answers from a fresh process (expansion test mode).
out=$(ex -be "\${dlfunc{$SO}{decision}{dane-ee.test}{$RUN/danests.conf}}" 2>&1)
case $out in
"deliver dane=1 "*) e2e_ok "module-decision ($out)" ;;
*) e2e_notok module-decision "$out" ;;
esac
# A CNAME'd MX host: Exim names it by its target, so the lists hold both.
out=$(ex -be "\${dlfunc{$SO}{hosts}{cname-mx.test}{$RUN/danests.conf}}" 2>&1)
case $out in
'dane="mx.cname-mx.test:host.cname-mx.test" '*' nodane="" notls=""')
	e2e_ok module-hosts-cname ;;
*) e2e_notok module-hosts-cname "$out" ;;
esac
out=$(ex -be "\${dlfunc{$SO}{route}{dane-ee.test}{bogus}{$RUN/danests.conf}}" 2>&1)
case $out in
*"unknown class"*) e2e_ok module-bad-argument ;;
*) e2e_notok module-bad-argument "$out" ;;
esac

ex -bd
if e2e_wait 10 sh -c "ss -Hltn 'src $IFACE:25' | grep -q LISTEN"; then
	e2e_ok "exim-daemon-$IFACE"
else
	e2e_notok "exim-daemon-$IFACE" "$(tail -5 "$RUN/log/paniclog" 2>/dev/null)"
	exit 1
fi

# A benchmark (tests/bench/exim) runs here instead of the checks.
if [ -n "${EXIM_E2E_EXEC:-}" ]; then
	export EXIM CONF RUN SO IFACE
	"$EXIM_E2E_EXEC"
	exit $?
fi

# The receivers are shared with other suites: this run's messages are
# told apart by a header with a nonce (changed per phase).
NONCE=$$-$(date +%s)-main

# submit DOMAIN - one message to postmaster@DOMAIN over SMTP
submit() {
	timeout 30 swaks --silent 2 --server "$IFACE" --port 25 \
	    --helo e2e.test --from "sender@exim.e2e.test" \
	    --to "postmaster@$1" --header "Subject: e2e exim $1" \
	    --add-header "X-E2E-Nonce: $NONCE" \
	    --body "danests e2e message for $1" >/dev/null 2>&1
}

# files DOMAIN - this phase's stored messages for DOMAIN (one grep over
# the mailboxes per phase, kept in $RUN/index until the nonce changes)
files() {
	if [ "$(head -1 "$RUN/index" 2>/dev/null)" != "$NONCE" ]; then
		{ echo "$NONCE"
		  grep -rlF "X-E2E-Nonce: $NONCE" "$E2E_MAIL" 2>/dev/null
		} >"$RUN/index"
	fi
	grep -F "/$1/" "$RUN/index" | grep '\.eml$'
	return 0
}

# summary DOMAIN - "RECEIVER TLS" per stored message of this phase
summary() {
	files "$1" | while read -r f; do
		echo "$(sed -n 's/^X-Danests-Receiver: //p;/^\r\{0,1\}$/q' "$f" | head -1 | tr -d '\r')" \
		    "$(sed -n 's/^X-Danests-TLS: //p;/^\r\{0,1\}$/q' "$f" | head -1 | tr -d '\r')"
	done
}
count() { files "$1" | wc -l; }
delivered_any() { [ "$(count "$1")" -gt 0 ]; }
delivered_tls() { [ "$(summary "$1" | sort -u)" = "good yes" ]; }
cleartext() { summary "$1" | grep -q ' no$'; }

# queue_id DOMAIN - id of the queued message to postmaster@DOMAIN
queue_id() {
	ex -bp 2>/dev/null | awk -v r="postmaster@$1" '
	    /^ *[0-9]+[smhdw] / { id = $3 }
	    $1 == r { print id; exit }'
}

# queued DOMAIN - is a message to postmaster@DOMAIN still undelivered?
queued() {
	[ -n "$(queue_id "$1")" ]
}

# snapshot - after a queue run: forget the mailbox index, and answer
# queue_id from one "exim -bp" until the next snapshot
snapshot() {
	rm -f "$RUN/index"
	ex -bp >"$RUN/queue" 2>/dev/null
	queue_id() {
		awk -v r="postmaster@$1" '
		    /^ *[0-9]+[smhdw] / { id = $3 }
		    $1 == r { print id; exit }' "$RUN/queue"
	}
}

# deliver_all CONFIG_MACRO_ARGS... - one bounded "exim -M" per queued
# message, PAR at a time
deliver_all() {
	local ids id n=0 pids=""
	ids=$(ex -bp 2>/dev/null | awk '/^ *[0-9]+[smhdw] / { print $3 }')
	for id in $ids; do
		timeout "$DELIVER_S" "$EXIM" -C "$CONF" "$@" -M "$id" \
		    >/dev/null 2>&1 &
		pids="$pids $!"
		n=$((n + 1))
		if [ $((n % PAR)) -eq 0 ]; then
			wait $pids
			pids=""
		fi
	done
	[ -z "$pids" ] || wait $pids
	snapshot
}

domains=$(e2e_scenarios | awk '{ print $1 }')
nsub=0
ts=$(date +%s)
for d in $domains; do
	if submit "$d"; then
		nsub=$((nsub + 1))
	else
		e2e_notok "submit $d"
	fi
done
e2e_ok "submitted $nsub messages over SMTP to $IFACE ($(($(date +%s) - ts)) s)"

# Submission on port 587 (acl/25_danests-submission): refused at MAIL or
# RCPT time for null-mx.test and nxdomain.test; bogus-mx.test (tempfail)
# and dane-ee.test accepted, then delivered by the same queue run below.
# sub FROM TO [SWAKS-ARGS] - swaks's transcript
sub() {
	local from=$1 to=$2
	shift 2
	timeout 60 swaks --server "$IFACE" --port 587 --helo e2e.test \
	    --from "$from" --to "$to" --add-header "X-E2E-Nonce: $NONCE" \
	    --body "danests submission e2e to $to" "$@" 2>&1
}
# sub_refused NAME FROM TO CODE
sub_refused() {
	local t
	t=$(sub "$2" "$3" --quit-after RCPT)
	if grep -q "^<\*\* *$4 " <<<"$t"; then
		e2e_ok "$1"
	else
		e2e_notok "$1" "$(grep '^<' <<<"$t" | tail -2 | tr '\n' ' ')"
	fi
}
sub_refused submission-rcpt-null-mx sender@exim.e2e.test sub@null-mx.test "556 5.1.10"
sub_refused submission-rcpt-nxdomain sender@exim.e2e.test sub@nxdomain.test "550 5.1.2"
sub_refused submission-mail-from-null-mx sender@null-mx.test sub@dane-ee.test "550 5.7.27"
sub_refused submission-mail-from-nxdomain sender@nxdomain.test sub@dane-ee.test "550 5.1.8"
for d in bogus-mx.test dane-ee.test; do
	t=$(sub sender@exim.e2e.test "sub@$d")
	if [ "$(grep -c '^<- *250 ' <<<"$t")" -ge 4 ] && ! grep -q '^<\*\*' <<<"$t"; then
		e2e_ok "submission-accepts-$d"
	else
		e2e_notok "submission-accepts-$d" "$(grep '^<' <<<"$t" | tail -3 | tr '\n' ' ')"
	fi
done

t0=$(date +%s)
deliver_all
t1=$(date +%s)
e2e_ok "delivery of $nsub messages took $((t1 - t0)) s"

# check DOMAIN EXPECT - compare the outcome for DOMAIN with the list
check() {
	local d=$1 want=$2 got why=""
	if delivered_any "$d"; then
		if delivered_tls "$d"; then got=delivered; else got=delivered-may; fi
	elif grep -qF "** postmaster@$d " "$MAINLOG" && ! queued "$d"; then
		got=bounced
	elif queued "$d"; then
		got=deferred
	else
		got=lost
	fi
	case $want in
	delivered)
		# TLS, verified: Exim logs CV=yes (WebPKI) or CV=dane; for a
		# host whose TLSA records are all unusable, TLS unverified
		# (RFC 7672 2.2: "encrypt").
		line=$(grep -F "=> postmaster@$d " "$MAINLOG" | tail -1)
		host=$(echo "$line" | sed -n 's/.* H=\([^ ]*\) .*/\1/p')
		case $line in
		*" X="*" CV=yes "*|*" X="*" CV=dane "*) ;;
		*" X="*" CV=no "*)
			[ "$(ex -be "\${dlfunc{$SO}{policy}{$d}{$host}{$RUN/danests.conf}}")" = encrypt ] ||
			    why="TLS not verified for $host"
			;;
		*) why="no TLS delivery line in the log" ;;
		esac
		queued "$d" && why="still queued"
		;;
	delivered-may)
		[ "$got" = delivered ] && got=delivered-may
		grep -qF "=> postmaster@$d " "$MAINLOG" || why="no delivery line"
		;;
	deferred)
		grep -qF "== postmaster@$d " "$MAINLOG" || why="no defer line in the log"
		;;
	bounced)
		grep -qs "postmaster@$d" "$RUN/mail/bounces" ||
		    why="no bounce in the sender's mailbox"
		;;
	esac
	if [ "$want" != delivered-may ] && cleartext "$d"; then
		why="CLEARTEXT delivery $why"
	fi
	if [ "$got" = "$want" ] && [ -z "$why" ]; then
		e2e_ok "$d $want"
	else
		e2e_notok "$d $want" "got $got${why:+; $why}; log: $(grep -F "postmaster@$d" "$MAINLOG" | tail -1 | cut -c1-300)"
	fi
}

e2e_scenarios | while read -r d want; do
	check "$d" "$want"
done >"$RUN/results"
cat "$RUN/results"
E2E_FAILS=$((E2E_FAILS + $(grep -c '^not ok' "$RUN/results")))

# The accepted submissions went on as any message: dane-ee.test over
# DANE, bogus-mx.test deferred; the refused ones never reached the queue.
if grep -F "=> sub@dane-ee.test " "$MAINLOG" | grep -q ' CV=dane '; then
	e2e_ok submission-dane-ee-delivered
else
	e2e_notok submission-dane-ee-delivered "$(grep -F 'sub@dane-ee.test' "$MAINLOG" | tail -1 | cut -c1-300)"
fi
if grep -qF "== sub@bogus-mx.test " "$MAINLOG" && grep -q 'sub@bogus-mx.test' "$RUN/queue"; then
	e2e_ok submission-bogus-mx-deferred
else
	e2e_notok submission-bogus-mx-deferred "$(grep -F 'sub@bogus-mx.test' "$MAINLOG" | tail -1 | cut -c1-300)"
fi
if grep -q '[=-]> sub@\(null-mx\|nxdomain\)\.test\|\*\* sub@\(null-mx\|nxdomain\)\.test' "$MAINLOG"; then
	e2e_notok submission-refused-not-queued
else
	e2e_ok submission-refused-not-queued
fi

# The sts-testing failure is logged, the message delivered anyway.
if grep -q 'danests: sts-testing.test: MTA-STS testing policy not met' "$MAINLOG"; then
	e2e_ok sts-testing-failure-logged
else
	e2e_notok sts-testing-failure-logged
fi
# The transports' event_action (DANESTS_TLS_EVENT) ran for every
# delivery, but tls_reports is off in danests.conf: nothing is counted.
out=$("$BUILD/core/danests" report list --json --config "$RUN/danests.conf" 2>&1)
if [ "$out" = "[]" ]; then
	e2e_ok tls-reports-off-nothing-recorded
else
	e2e_notok tls-reports-off-nothing-recorded "$out"
fi
# The decision travels in a header.
if files sts-enforce.test | xargs -r grep -l '^X-Danests: deliver sts-enforce=1' | grep -q .; then
	e2e_ok header-x-danests
else
	e2e_notok header-x-danests
fi

# ---- metrics: [exim] metrics yes adds each decision's counts to the cache -
# Off by default: every delivery above asked the module, nothing stored.
out=$("$BUILD/core/danests" stats --cache-dir "$RUN/cache" 2>&1)
case $out in
"no counters stored in $RUN/cache "*) e2e_ok metrics-off-nothing-stored ;;
*) e2e_notok metrics-off-nothing-stored "$(head -3 <<<"$out")" ;;
esac
# On: four Exim processes expand the module, each a decision; the second
# dane-ee.test comes from the cache the first filled.
for d in dane-ee.test dane-ee.test nxdomain.test bogus-mx.test; do
	ex -be "\${dlfunc{$SO}{decision}{$d}{$RUN/metrics.conf}}" >/dev/null 2>&1
done
out=$("$BUILD/core/danests" stats --cache-dir "$RUN/mcache" 2>&1)
if grep -qx 'danests_decisions_total{verdict="deliver"} 2' <<<"$out" &&
    grep -qx 'danests_decisions_total{verdict="permfail"} 1' <<<"$out" &&
    grep -qx 'danests_decisions_total{verdict="tempfail"} 1' <<<"$out" &&
    grep -qx 'danests_cache_requests_total{layer="lmdb",kind="decision",result="hit"} 1' <<<"$out" &&
    grep -qx 'danests_decision_duration_seconds_count 4' <<<"$out"; then
	e2e_ok metrics-stored-by-exim
else
	e2e_notok metrics-stored-by-exim "$(tr '\n' ' ' <<<"$out" | cut -c1-400)"
fi
lint=$("$BUILD/core/danests" stats --cache-dir "$RUN/mcache" --prometheus | promtool check metrics 2>&1)
if [ $? = 0 ] && [ -z "$lint" ]; then
	e2e_ok metrics-stats-prometheus
else
	e2e_notok metrics-stats-prometheus "$(head -c 300 <<<"$lint")"
fi

# ---- a fleet: with store, Exim's counts reach Redis without any command --
# Two nodes (a cache and a node_id each) share a redis-server on loopback;
# one decision each, then `danests stats` on either prints both.
RP=16395
redis-server --port $RP --bind 127.0.0.1 --save '' --appendonly no \
    --dir "$RUN" --logfile "$RUN/redis.log" --daemonize yes \
    --pidfile "$RUN/redis.pid" >/dev/null 2>&1
e2e_wait 5 sh -c "[ \"\$(redis-cli -p $RP ping 2>/dev/null)\" = PONG ]"
for x in 1 2; do
	mkdir -p "$RUN/fcache$x"
	{ sed "s|^cache_dir .*|cache_dir $RUN/fcache$x|" "$RUN/danests.conf"
	  printf 'store redis://127.0.0.1:%s\nnode_id e2e-%s\n' $RP $x
	  printf '[exim]\nmetrics yes\n'; } >"$RUN/fleet$x.conf"
	ex -be "\${dlfunc{$SO}{decision}{dane-ee.test}{$RUN/fleet$x.conf}}" >/dev/null 2>&1
done
n1=$(redis-cli -p $RP hget danests:met:node:e2e-1 decisions/deliver)
n2=$(redis-cli -p $RP hget danests:met:node:e2e-2 decisions/deliver)
out=$("$BUILD/core/danests" stats --config "$RUN/fleet2.conf" 2>&1)
if [ "$n1 $n2" = "1 1" ] &&
    [ "$(head -1 <<<"$out")" = "# the sum of 2 nodes (shared store)" ] &&
    grep -qx 'danests_decisions_total{verdict="deliver"} 2' <<<"$out"; then
	e2e_ok metrics-fleet-in-redis
else
	e2e_notok metrics-fleet-in-redis "redis $n1 $n2; $(tr '\n' ' ' <<<"$out" | cut -c1-300)"
fi
kill "$(cat "$RUN/redis.pid" 2>/dev/null)" 2>/dev/null

# ---- fail closed: the module broken on purpose ---------------------------
for broken in broken-cache bad-key dead-resolver conf-dir no-conf; do
	NONCE=$$-$(date +%s)-$broken
	# insecure.test would go out in the clear, sts-enforce.test and
	# dane-ee.test over verified TLS: with the module broken, none may.
	for d in insecure.test sts-enforce.test dane-ee.test; do
		submit "$d" || e2e_notok "submit $d ($broken)"
	done
	t0=$(date +%s)
	deliver_all "-DDANESTS_CONF=$RUN/$broken.conf"
	t1=$(date +%s)
	for d in insecure.test sts-enforce.test dane-ee.test; do
		if ! delivered_any "$d" && queued "$d"; then
			e2e_ok "$broken: $d deferred ($((t1 - t0)) s)"
		else
			e2e_notok "$broken: $d deferred" "$(grep -F "postmaster@$d" "$MAINLOG" | tail -1)"
		fi
	done
	case $broken in
	broken-cache) pat="not-a-dir" ;;
	bad-key) pat="bad-key.conf:7: dns_timout: unknown key" ;;
	conf-dir) pat="conf-dir.conf: is a directory" ;;
	no-conf) pat="no-conf.conf: No such file" ;;
	dead-resolver) pat="tempfail" ;;
	esac
	if grep -F "== postmaster@insecure.test " "$MAINLOG" | tail -1 | grep -q "danests.*$pat"; then
		e2e_ok "$broken: reason in the log"
	else
		e2e_notok "$broken: reason in the log" "$(grep -F "postmaster@insecure.test" "$MAINLOG" | tail -1)"
	fi
done
if [ -f "$RUN/log/paniclog" ] && grep -qi 'crash\|signal' "$RUN/log/paniclog"; then
	e2e_notok no-crash "$(tail -3 "$RUN/log/paniclog")"
else
	e2e_ok no-crash
fi

# A corrupt cache file: the core moves it aside and rebuilds it (several
# delivery processes at once); mail leaves as the policy says.
NONCE=$$-$(date +%s)-corrupt
for d in insecure.test sts-enforce.test dane-ee.test; do
	submit "$d" || e2e_notok "submit $d (corrupt-cache)"
done
t0=$(date +%s)
deliver_all "-DDANESTS_CONF=$RUN/corrupt-cache.conf"
e2e_ok "corrupt-cache: queue run took $(($(date +%s) - t0)) s"
for d in sts-enforce.test dane-ee.test; do
	if delivered_tls "$d" && ! queued "$d"; then
		e2e_ok "corrupt-cache: $d delivered over verified TLS"
	else
		e2e_notok "corrupt-cache: $d delivered over verified TLS" "$(summary "$d" | tr '\n' ' ')"
	fi
done
if grep -q 'danests: cache: .*corrupt' "$MAINLOG"; then
	e2e_ok "corrupt-cache: rebuild logged"
else
	e2e_notok "corrupt-cache: rebuild logged"
fi

# Repaired: the same queued messages now leave as the policy says.
NONCE=$$-
t0=$(date +%s)
deliver_all
e2e_ok "repaired: queue run took $(($(date +%s) - t0)) s"
for d in insecure.test sts-enforce.test dane-ee.test; do
	n=$(count "$d")
	if [ "$n" -ge 4 ] && ! queued "$d"; then
		e2e_ok "repaired: $d delivered ($n)"
	else
		e2e_notok "repaired: $d delivered" "$n messages"
	fi
done
for d in sts-enforce.test dane-ee.test; do
	if cleartext "$d"; then
		e2e_notok "repaired: $d never in the clear"
	fi
done

# queue_clear - remove every queued message
queue_clear() {
	local ids
	ids=$(ex -bp 2>/dev/null | awk '/^ *[0-9]+[smhdw] / { print $3 }')
	[ -z "$ids" ] || ex -Mrm $ids >/dev/null 2>&1
}

# ---- TLS reports (RFC 8460) and TLS-Required: No (RFC 8689 5) ------------
# With reports.conf (tls_reports yes): one message to each domain that
# publishes an _smtp._tls record, and to two MX hosts without STARTTLS
# (DANE, MTA-STS enforce), one TLS negotiation each; the counts of
# "danests report show" must be those sessions, per domain, policy type and
# result type.  Messages with "TLS-Required: No" go out (even to
# dane-mismatch.test), are never counted, and a null MX still bounces and
# a DNS failure still defers.  The earlier phases' messages leave the
# queue first.
queue_clear
NONCE=$$-$(date +%s)-tlsrpt
# tlsreq ADDRESS - a message with "TLS-Required: No" (any case, white
# space around the value)
tlsreq() {
	timeout 30 swaks --silent 2 --server "$IFACE" --port 25 \
	    --helo e2e.test --from "sender@exim.e2e.test" --to "$1" \
	    --header "Subject: e2e exim TLS-Required: No to $1" \
	    --add-header "X-E2E-Nonce: $NONCE" --add-header "TLS-Required:  nO " \
	    --body "danests e2e message for $1" >/dev/null 2>&1 ||
	    e2e_notok "submit $1"
}
rdomains="dane-ee.test dane-mismatch.test sts-testing.test sts-certbad.test sts-enforce.test insecure.test dane-nostarttls.test sts-nostarttls.test"
for d in $rdomains; do
	submit "$d" || e2e_notok "submit $d (reports)"
done
for a in tlsreq@dane-mismatch.test tlsreq@null-mx.test tlsreq@bogus-mx.test; do
	tlsreq "$a"
done
t0=$(date +%s)
deliver_all "-DDANESTS_CONF=$RUN/reports.conf"
t1=$(date +%s)
e2e_ok "reports: queue run took $((t1 - t0)) s"

# rpt DOMAIN - "TYPE SUCCESSFUL FAILED [RESULT-TYPE=COUNT...]" per policy
# of today's report for DOMAIN
rpt() {
	"$BUILD/core/danests" report show "$1" --json --config "$RUN/reports.conf" 2>/dev/null |
	    jq -r '.policies[] | "\(.policy["policy-type"]) \(.summary["total-successful-session-count"]) \(.summary["total-failure-session-count"])" + ([.["failure-details"][]? | " \(.["result-type"])=\(.["failed-session-count"])"] | join(""))' 2>&1
}
# the sessions of this phase, per domain: TYPE SUCCESSFUL FAILED
# [RESULT-TYPE=COUNT...] (the later phases add nothing)
rexpect="dane-ee.test tlsa 1 0
dane-mismatch.test tlsa 0 1 validation-failure=1
sts-testing.test sts 0 1 certificate-not-trusted=1
sts-certbad.test sts 0 1 certificate-not-trusted=1
sts-enforce.test sts 1 0
insecure.test no-policy-found 1 0
dane-nostarttls.test tlsa 0 1 starttls-not-supported=1
sts-nostarttls.test sts 0 1 starttls-not-supported=1"
rday=$(date -u +%F)
while read -r d want; do
	got=$(rpt "$d")
	if [ "$got" = "$want" ]; then
		e2e_ok "reports: $d: $want"
	else
		e2e_notok "reports: $d: $want" "got: $(echo "$got" | tr '\n' '|')"
	fi
done <<<"$rexpect"
# A failure names the session: the MX host, its address, ours.
got=$("$BUILD/core/danests" report show dane-mismatch.test --json --config "$RUN/reports.conf" 2>&1 |
    jq -r '.policies[0]["failure-details"][0] | "\(.["receiving-mx-hostname"]) \(.["receiving-ip"]) \(.["sending-mta-ip"])"' 2>&1)
if [ "$got" = "mx.dane-mismatch.test 127.10.2.1 127.0.0.1" ]; then
	e2e_ok "reports: failure details of dane-mismatch.test"
else
	e2e_notok "reports: failure details of dane-mismatch.test" "$got"
fi
# Nothing from the messages with TLS-Required: No (null-mx.test and
# bogus-mx.test never reached a host).
for d in null-mx.test bogus-mx.test; do
	got=$("$BUILD/core/danests" report show "$d" --json --config "$RUN/reports.conf" 2>/dev/null)
	if [ $? = 1 ] && [ -z "$got" ]; then
		e2e_ok "reports: nothing for $d"
	else
		e2e_notok "reports: nothing for $d" "$got"
	fi
done

# dane-mismatch.test: its TLSA records match no certificate (the message
# without the header stays deferred, above); with the header the message
# leaves, over TLS, and is never held back.
if [ "$(count dane-mismatch.test)" = 1 ] &&
    grep -F "=> tlsreq@dane-mismatch.test " "$MAINLOG" | grep -q ' R=danests_tls_optional .* X=' &&
    ! grep -q 'tlsreq@dane-mismatch.test' "$RUN/queue"; then
	e2e_ok "tls-required-no: dane-mismatch.test delivered over TLS ($((t1 - t0)) s)"
else
	e2e_notok "tls-required-no: dane-mismatch.test delivered" "$(grep -F 'tlsreq@dane-mismatch.test' "$MAINLOG" | tail -1 | cut -c1-300)"
fi
# A null MX still bounces, a DNS failure still defers.
if grep -qF "** tlsreq@null-mx.test" "$MAINLOG" && ! grep -q 'tlsreq@null-mx.test' "$RUN/queue"; then
	e2e_ok "tls-required-no: null-mx.test bounced"
else
	e2e_notok "tls-required-no: null-mx.test bounced" "$(grep -F 'tlsreq@null-mx.test' "$MAINLOG" | tail -1 | cut -c1-300)"
fi
if grep -qF "== tlsreq@bogus-mx.test" "$MAINLOG" && grep -q 'tlsreq@bogus-mx.test' "$RUN/queue"; then
	e2e_ok "tls-required-no: bogus-mx.test deferred"
else
	e2e_notok "tls-required-no: bogus-mx.test deferred" "$(grep -F 'tlsreq@bogus-mx.test' "$MAINLOG" | tail -1 | cut -c1-300)"
fi

# The event_action checks the header too: a message with "TLS-Required:
# No" that reaches an smtp transport naming DANESTS_TLS_EVENT (here
# remote_smtp: the danests routers are told to take no domain) is not
# counted either.
queue_clear
NONCE=$$-$(date +%s)-tlsreq-event
tlsreq tlsreq@insecure.test
deliver_all "-DDANESTS_CONF=$RUN/reports.conf" -DDANESTS_DOMAINS=none.invalid
if grep -F "=> tlsreq@insecure.test " "$MAINLOG" | grep -q ' T=remote_smtp .* X=' &&
    [ "$(rpt insecure.test)" = "no-policy-found 1 0" ]; then
	e2e_ok "reports: TLS-Required: No through remote_smtp not counted"
else
	e2e_notok "reports: TLS-Required: No through remote_smtp not counted" "$(rpt insecure.test); $(grep -F 'tlsreq@insecure.test' "$MAINLOG" | tail -1 | cut -c1-200)"
fi

# A result that cannot be recorded (here: the transport process cannot
# open the cache) is logged and dropped; the delivery goes on at once.
queue_clear
NONCE=$$-$(date +%s)-rfail
submit insecure.test || e2e_notok "submit insecure.test (recording failure)"
: >"$RUN/log/paniclog"
t0=$(date +%s)
deliver_all "-DDANESTS_CONF=$RUN/reports.conf" -DE2E_NO_INITGROUPS=1
t1=$(date +%s)
if delivered_any insecure.test && ! queued insecure.test && [ $((t1 - t0)) -le 10 ]; then
	e2e_ok "reports: recording failure, insecure.test delivered ($((t1 - t0)) s)"
else
	e2e_notok "reports: recording failure, insecure.test delivered" "$((t1 - t0)) s; $(grep -F 'postmaster@insecure.test' "$MAINLOG" | tail -1 | cut -c1-300)"
fi
if grep -q 'danests: TLS report not recorded: .*rcache' "$MAINLOG" && [ ! -s "$RUN/log/paniclog" ] &&
    [ "$(rpt insecure.test)" = "no-policy-found 1 0" ]; then
	e2e_ok "reports: recording failure logged, nothing counted"
else
	e2e_notok "reports: recording failure logged, nothing counted" "$(rpt insecure.test); $(tail -2 "$RUN/log/paniclog" 2>/dev/null)"
fi

# ---- sending the reports (RFC 8460 5) through this Exim ------------------
# "danests report send" a day later (faketime: a day's report is due only
# once the UTC day is over) posts them to https://rua.reports.test/tlsrpt
# and mails them with Exim's own sendmail interface (report_sendmail: a
# wrapper for this "exim -C ... -odq"), which queues them; a queue run as
# in the phases above delivers them over DANE to tlsrpt@reports.test (the
# unpacked Exim is not set-uid root: a delivery it started itself after
# "-C" could not regain root for the danests transports' initgroups).
# The six domains that publish _smtp._tls get one report each way, with
# the counts of the sessions above (tests/e2e/report_check.py); the report
# mails carry TLS-Required: No: no counter for reports.test appears.
queue_clear
t0=$(date +%s)
cat >"$RUN/sendmail" <<EOF
#!/bin/sh
# Exim itself at the real time: only danests runs a day ahead
unset LD_PRELOAD FAKETIME FAKETIME_SHARED
exec "$EXIM" -C "$CONF" -DDANESTS_CONF="$RUN/reports.conf" -odq "\$@"
EOF
chmod 755 "$RUN/sendmail"
{ cat "$RUN/reports.conf"
  cat <<EOF
report_organization danests e2e exim
report_contact postmaster@exim.e2e.test
report_from tlsrpt-noreply@exim.e2e.test
report_submitter exim.e2e.test
report_sendmail $RUN/sendmail
report_timeout 20
EOF
} >"$RUN/send.conf"
"$TOP/tests/testbed/rua.sh" reset >/dev/null
grep -l '^TLS-Report-Submitter: exim\.e2e\.test' "$E2E_MAIL"/*/reports.test/*.eml 2>/dev/null |
    xargs -r rm -f
faketime -f +1d "$BUILD/core/danests" report send --now --config "$RUN/send.conf" \
    >"$RUN/send.out" 2>&1
rc=$?
if [ $rc = 0 ]; then
	e2e_ok "reports: sent ($(($(date +%s) - t0)) s)"
else
	e2e_notok "reports: sent" "exit $rc: $(head -c 600 "$RUN/send.out" | tr '\n' '|')"
fi
deliver_all "-DDANESTS_CONF=$RUN/reports.conf"
# every report mail of this run in the mailbox
e2e_wait 60 sh -c "[ \$(grep -l '^TLS-Report-Submitter: exim\\.e2e\\.test' $E2E_MAIL/*/reports.test/*.eml 2>/dev/null | wc -l) -ge 6 ]"
sleep 1	# a seventh would be a duplicate: give it a moment
if out=$(grep -v 'nostarttls' <<<"$rexpect" | python3 "$TOP/tests/e2e/report_check.py" \
    --rua "$E2E_RUN/rua" --mail "$E2E_MAIL" --day "$rday" \
    --submitter exim.e2e.test --from tlsrpt-noreply@exim.e2e.test \
    --org "danests e2e exim" --contact postmaster@exim.e2e.test 2>&1) &&
    [ "$(grep -F '=> tlsrpt@reports.test ' "$MAINLOG" | grep -c ' X=')" = 6 ]; then
	e2e_ok "reports: https and mail through Exim, field by field ($(grep -c '^ok' <<<"$out") domains, $(($(date +%s) - t0)) s)"
else
	e2e_notok "reports: https and mail through Exim, field by field" "$(tr '\n' '|' <<<"$out" | cut -c1-600); $(grep -F 'tlsrpt@reports.test' "$MAINLOG" | tail -2 | cut -c1-300)"
fi
out=$("$BUILD/core/danests" report list --json --config "$RUN/reports.conf" 2>&1)
if jq -e 'type == "array" and length > 0 and all(.[]; .domain != "reports.test")' >/dev/null 2>&1 <<<"$out"; then
	e2e_ok "reports: the report mails are not counted"
else
	e2e_notok "reports: the report mails are not counted" "$(head -c 400 <<<"$out")"
fi

[ "$E2E_FAILS" -eq 0 ]
