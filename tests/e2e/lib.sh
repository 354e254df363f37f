# tests/e2e/lib.sh - helpers shared by the e2e suites of every MTA
# (sourced by tests/e2e/*/run.sh; POSIX sh with "local").
#
#   e2e_scenarios              "DOMAIN E2E" per line of tests/scenarios/list
#   e2e_expect DOMAIN          the e2e column for DOMAIN
#   e2e_mail_reset             empty the receivers' mailboxes (only the
#                              messages from $E2E_SENDER when it is set)
#   e2e_mail_files DOMAIN      every stored message for DOMAIN (any
#                              receiver; only those whose envelope sender
#                              is $E2E_SENDER when it is set, so suites
#                              running at the same time do not mix)
#   e2e_mail_summary DOMAIN    "RECEIVER TLS" per stored message, e.g.
#                              "good yes"; nothing when none arrived
#   e2e_mail_count DOMAIN      number of stored messages for DOMAIN
#   e2e_delivered_tls DOMAIN   true when a message reached the good
#                              receiver over TLS and none arrived elsewhere
#   e2e_delivered_any DOMAIN   true when a message reached any receiver
#   e2e_cleartext DOMAIN       true when a message arrived without TLS
#   e2e_in_testbed CMD...      run CMD in a private mount namespace whose
#                              /etc/resolv.conf names the test bed's
#                              validating resolver (with "options trust-ad")
#                              and, when E2E_CA_BUNDLE=1, whose system CA
#                              bundle also holds the test CA; the machine's
#                              own files are never modified
#   e2e_wait SECONDS CMD...    retry CMD every 0.5 s until it succeeds or
#                              SECONDS pass (bounded wait)
#   e2e_deb_fetch PKG DIR      the .deb of PKG that this machine's apt would
#                              install (its candidate), downloaded once into
#                              DIR; prints its path
#   e2e_deb_unpack DEB DIR     dpkg -x DEB into DIR once (atomically: runs at
#                              the same time see either nothing or all)
#   e2e_deb_libs DEB [PKG...]  install the libraries DEB depends on (its
#                              Depends named lib*, as this release names
#                              them) and PKG... when missing
#   (These three need the network when something is missing: tests/run.sh
#   calls every suite with E2E_FETCH_ONLY=1 before it enters the test
#   network namespace; a suite then fetches what it needs and exits.)
#   e2e_ok NAME / e2e_notok NAME [WHY]
#                              print a TAP-ish result line, count failures

# The top of the tree: from this file's path under bash, else from the
# sourcing script's path (tests/e2e/MTA/run.sh or tests/e2e/run.sh).
for E2E_TOP in "$(dirname "${BASH_SOURCE:-/nonexistent/x}")/../.." \
    "$(dirname "$0")/../../.." "$(dirname "$0")/../.." "$PWD"; do
	[ -f "$E2E_TOP/tests/scenarios/list" ] && break
done
E2E_TOP=$(cd "$E2E_TOP" && pwd)
E2E_LIST=$E2E_TOP/tests/scenarios/list
E2E_TB=$E2E_TOP/tests/testbed
E2E_RUN=$E2E_TB/run
E2E_MAIL=$E2E_RUN/smtp/mail
E2E_RESOLVER=127.10.0.2
E2E_CA=$E2E_RUN/pki/ca.crt
E2E_FAILS=0

e2e_scenarios() {
	awk '!/^[ \t]*(#|$)/ { print $1, $3 }' "$E2E_LIST"
}

e2e_expect() {
	awk -v d="$1" '!/^[ \t]*(#|$)/ && $1 == d { print $3; exit }' "$E2E_LIST"
}

e2e_mail_reset() {
	if [ -n "${E2E_SENDER:-}" ]; then
		grep -rlF -- "X-Danests-Mail-From: <$E2E_SENDER>" "$E2E_MAIL" 2>/dev/null |
		    xargs -r rm -f
	else
		rm -rf "$E2E_MAIL" 2>/dev/null
	fi
	mkdir -p "$E2E_MAIL"
}

e2e_mail_files() {
	local f
	for f in "$E2E_MAIL"/*/"$1"/*.eml; do
		[ -f "$f" ] || continue
		if [ -n "${E2E_SENDER:-}" ] && ! sed '/^\r\{0,1\}$/q' "$f" |
		    grep -qF -- "X-Danests-Mail-From: <$E2E_SENDER>"; then
			continue
		fi
		echo "$f"
	done
	return 0
}

e2e_mail_summary() {
	local f r t
	e2e_mail_files "$1" | while read -r f; do
		r=$(sed -n 's/^X-Danests-Receiver: //p;/^$/q' "$f" | head -1 | tr -d '\r')
		t=$(sed -n 's/^X-Danests-TLS: //p;/^$/q' "$f" | head -1 | tr -d '\r')
		echo "$r $t"
	done
}

e2e_mail_count() {
	e2e_mail_files "$1" | wc -l
}

e2e_delivered_tls() {
	local s
	s=$(e2e_mail_summary "$1" | sort -u)
	[ "$s" = "good yes" ]
}

e2e_delivered_any() {
	[ "$(e2e_mail_count "$1")" -gt 0 ]
}

e2e_cleartext() {
	e2e_mail_summary "$1" | grep -q ' no$'
}

e2e_in_testbed() {
	local rc=$E2E_RUN/e2e-resolv.conf bundle=$E2E_RUN/e2e-ca-bundle.crt
	printf 'nameserver %s\noptions trust-ad\n' "$E2E_RESOLVER" >"$rc"
	if [ "${E2E_CA_BUNDLE:-0}" = 1 ]; then
		cat /etc/ssl/certs/ca-certificates.crt "$E2E_CA" >"$bundle" 2>/dev/null ||
		    cp "$E2E_CA" "$bundle"
	fi
	E2E_NS_RESOLV=$rc E2E_NS_BUNDLE=$bundle unshare -m --propagation private \
	    sh -c 'mount --bind "$E2E_NS_RESOLV" /etc/resolv.conf || exit 1
		if [ "${E2E_CA_BUNDLE:-0}" = 1 ]; then
			mount --bind "$E2E_NS_BUNDLE" /etc/ssl/certs/ca-certificates.crt || exit 1
		fi
		exec "$@"' e2e-ns "$@"
}

e2e_deb_fetch() {
	local pkg=$1 dir=$2 ver f tmp
	mkdir -p "$dir" || return 1
	ver=$(apt-cache policy "$pkg" 2>/dev/null |
	    sed -n 's/^ *Candidate: *//p' | sed 's/:/%3a/')
	case $ver in ""|"(none)") ver="*" ;; esac
	# shellcheck disable=SC2027 # $ver unquoted: it may be the glob "*"
	for f in "$dir/${pkg}_"$ver"_"*.deb; do
		[ -f "$f" ] && { echo "$f"; return 0; }
	done
	tmp=$(mktemp -d "$dir/.fetch.XXXXXX") || return 1
	if (cd "$tmp" && { timeout 300 apt-get download -q "$pkg" >/dev/null 2>&1 ||
	    { apt-get update -q >/dev/null 2>&1 &&
	      timeout 300 apt-get download -q "$pkg" >/dev/null 2>&1; }; }); then
		for f in "$tmp/${pkg}_"*.deb; do
			[ -f "$f" ] || continue
			mv "$f" "$dir/" && rm -rf "$tmp" &&
			    echo "$dir/${f##*/}" && return 0
		done
	fi
	rm -rf "$tmp"
	echo "e2e: cannot download $pkg (no network?)" >&2
	return 1
}

e2e_deb_unpack() {
	local deb=$1 dir=$2 tmp
	[ -d "$dir" ] && return 0
	tmp=$(mktemp -d "$dir.XXXXXX") || return 1
	chmod 755 "$tmp"
	if ! dpkg -x "$deb" "$tmp"; then
		rm -rf "$tmp"
		return 1
	fi
	mv -T "$tmp" "$dir" 2>/dev/null || rm -rf "$tmp"
	[ -d "$dir" ]
}

e2e_deb_libs() {
	local deb=$1 p missing=""
	shift
	for p in $(dpkg-deb -f "$deb" Depends | tr ',' '\n' |
	    sed 's/|.*//; s/(.*//; s/:any//; s/[[:space:]]//g' | grep '^lib') "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null |
		    grep -q "ok installed" || missing="$missing $p"
	done
	[ -z "$missing" ] && return 0
	# shellcheck disable=SC2086
	DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
	    --no-install-recommends $missing >/dev/null 2>&1 && return 0
	echo "e2e: cannot install$missing (no network?)" >&2
	return 1
}

e2e_wait() {
	local secs=$1 n=0
	shift
	while [ "$n" -lt $((secs * 2)) ]; do
		"$@" && return 0
		sleep 0.5
		n=$((n + 1))
	done
	return 1
}

e2e_ok() {
	echo "ok $1"
}

e2e_notok() {
	E2E_FAILS=$((E2E_FAILS + 1))
	echo "not ok $1${2:+ # $2}"
}
