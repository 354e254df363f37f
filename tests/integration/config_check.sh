#!/bin/bash
#
# config_check.sh - every shipped configuration sample, and every
# configuration block of README.md and the man pages, through the check
# option of the program that reads it; and the configuration errors an
# administrator meets (missing user, unusable state directory, unknown key,
# malformed value, missing or wrong file), each one clear line naming the
# file.  Needs no network: nothing is looked up.
#
# usage: config_check.sh BUILD_DIR
#
# Blocks are found mechanically: in README.md, fenced blocks whose info
# string names the file (```danests.conf, ```danests-postfix.conf,
# ```danests-relay.conf); in the man pages, the literal block after a
# line '.\" danests-config: FILE'.  The samples and the blocks name
# /etc/danests/danests.conf; copies read here name a copy of the sample.
#
# As root the script runs in its own mount namespace where the service
# user _danests exists (a private /etc/passwd and /etc/group), /var/lib
# is an empty tmpfs but for /var/lib/danests, and /var/spool holds
# Postfix's private directory, so the daemons' checks meet what a
# packaged machine has.  Prints "ok NAME" / "not ok NAME"; exits 1 when
# any failed.
set -u
build=$(cd "${1:?usage: config_check.sh BUILD_DIR}" && pwd)
top=$(cd "$(dirname "$0")/../.." && pwd)
tool=$build/core/danests
postfix=$build/postfix-tlsproxy/danests-postfix
relay=$build/opensmtpd/danests-relay

if [ "$(id -u)" != 0 ]; then
	echo "ok 1 config-check # SKIP needs root (a mount namespace)"
	exit 0
fi
if [ -z "${CONFIG_CHECK_NS:-}" ]; then
	exec unshare -m --propagation private env CONFIG_CHECK_NS=1 \
	    "$0" "$@"
fi

failed=0
n=0
tmp=$(mktemp -d) || exit 1
chmod 755 "$tmp"
trap 'rm -rf "$tmp"' EXIT

ok() { n=$((n + 1)); echo "ok $n $1"; }
notok() { n=$((n + 1)); echo "not ok $n $1: $2"; failed=1; }

# the service user, an empty /var/lib and the directory of the Postfix
# daemon's socket (danests-postfix(8)), in this namespace only
grep -v '^_danests:' /etc/passwd >"$tmp/passwd.orig"
grep -v '^_danests:' /etc/group >"$tmp/group.orig"
cp /etc/passwd "$tmp/passwd"
cp /etc/group "$tmp/group"
grep -q '^_danests:' "$tmp/passwd" ||
    echo '_danests:x:64990:64990::/var/lib/danests:/usr/sbin/nologin' >>"$tmp/passwd"
grep -q '^_danests:' "$tmp/group" || echo '_danests:x:64990:' >>"$tmp/group"
mount --bind "$tmp/passwd" /etc/passwd &&
    mount --bind "$tmp/group" /etc/group &&
    mount -t tmpfs -o mode=755 tmpfs /var/lib &&
    install -d -o _danests -g _danests -m 2770 /var/lib/danests &&
    mount -t tmpfs -o mode=755 tmpfs /var/spool &&
    install -d -m 700 /var/spool/postfix/private &&
    install -d -o _danests -m 750 /var/spool/postfix/danests || {
	echo "not ok 1 config-check-setup"
	exit 1
}

# the samples, naming each other in $etc instead of /etc/danests
etc=$tmp/etc
mkdir "$etc"
cp "$top/doc/danests.conf" "$top/postfix-tlsproxy/danests-postfix.conf" \
    "$top/opensmtpd/danests-relay.conf" "$etc/"
sed -i "s|/etc/danests/|$etc/|g" "$etc"/*.conf

# check_file NAME FILE - the program that reads FILE (by its name) checks
# it: exit 0, nothing on stderr
check_file() {
	local name=$1 f=$2 rc
	case $(basename "$f") in
	danests-postfix.conf) "$postfix" -n -c "$f" >"$tmp/out" 2>"$tmp/err" ;;
	danests-relay.conf) "$relay" -n -c "$f" >"$tmp/out" 2>"$tmp/err" ;;
	*) tool_check "$f" ;;
	esac
	rc=$?
	if [ $rc = 0 ] && [ ! -s "$tmp/err" ]; then
		ok "$name"
	else
		notok "$name" "exit $rc: $(head -c 300 "$tmp/err")"
	fi
}

# tool_check FILE [OPTION] - danests check --config FILE decides one
# domain with the file's core settings; the resolver is replaced (nothing
# is asked: port 9 of a loopback without listeners) and, unless OPTION is
# given, the cache is left alone.  0 when the file loaded (any verdict),
# 64 when it did not.
tool_check() {
	local rc
	"$tool" check --config "$1" --resolver 127.0.0.1@9 --timeout 2 \
	    --json "${2:---no-cache}" example.invalid >"$tmp/out" 2>"$tmp/err"
	rc=$?
	case $rc in 0 | 69 | 75) return 0 ;; esac
	return $rc
}

# 1. the samples as shipped, through every program that reads them
for f in danests.conf danests-postfix.conf danests-relay.conf; do
	check_file "sample-$f" "$etc/$f"
	tool_check "$etc/$f" && [ ! -s "$tmp/err" ] && ok "sample-$f-tool" ||
	    notok "sample-$f-tool" "$(head -c 300 "$tmp/err")"
done
# the samples with the TLS reporting keys of danests.conf uncommented
# (tls_reports yes): every program accepts them as core keys
rpt=$tmp/rpt
mkdir "$rpt"
cp "$etc"/*.conf "$rpt/"
sed -i "s|$etc/|$rpt/|g" "$rpt"/*.conf
sed -i -E 's/^#((tls_reports|report_[a-z_]+)[[:space:]])/\1/;
    s/^tls_reports([[:space:]]+)no/tls_reports\1yes/' "$rpt/danests.conf"
if [ "$(grep -cE '^(tls_reports|report_[a-z_]+)[[:space:]]' "$rpt/danests.conf")" -ge 11 ]; then
	for f in danests.conf danests-postfix.conf danests-relay.conf; do
		check_file "sample-reporting-$f" "$rpt/$f"
	done
else
	notok sample-reporting "the sample lacks the reporting keys"
fi
grep -q '^include /etc/danests/danests.conf$' "$top/postfix-tlsproxy/danests-postfix.conf" &&
    grep -q '^include /etc/danests/danests.conf$' "$top/opensmtpd/danests-relay.conf" &&
    ok samples-include-danests-conf ||
    notok samples-include-danests-conf "a daemon sample does not include /etc/danests/danests.conf"
"$postfix" -n -c "$etc/danests-postfix.conf" >"$tmp/out" 2>&1
grep -q 'user _danests' "$tmp/out" && ok postfix-default-user ||
    notok postfix-default-user "$(cat "$tmp/out")"
"$relay" -n -c "$etc/danests-relay.conf" >"$tmp/out" 2>&1
grep -q 'user _danests' "$tmp/out" && ok relay-default-user ||
    notok relay-default-user "$(cat "$tmp/out")"

# 2. the blocks of README.md and of the man pages
blocks=$tmp/blocks
mkdir "$blocks"
awk -v dir="$blocks" '
	/^```danests(-postfix|-relay)?\.conf$/ {
		i++; f = dir "/readme-" i "-" substr($0, 4); next
	}
	/^```[a-z]/ && f == "" { other = 1; next }
	/^```$/ { if (f != "") { f = ""; next } other = !other; next }
	f != "" { print > f }
	!f && other && /^(include \/etc\/danests|\[(postfix|relay|exim)\])/ {
		print FILENAME ":" NR > (dir "/untagged")
	}
' "$top/README.md"
for m in "$top"/doc/*.[1-8] "$top"/postfix-tlsproxy/*.8 "$top"/opensmtpd/*.8; do
	awk -v dir="$blocks" -v src="$(basename "$m")" '
		/^\.\\" danests-config: / { i++; want = dir "/man-" src "-" i "-" $3; next }
		want != "" && /^\.(Bd|nf)/ { f = want; want = ""; next }
		f != "" && /^\.(Ed|fi)/ { f = ""; next }
		f != "" {
			gsub(/\\e/, "\\"); gsub(/\\-/, "-"); gsub(/\\&/, "")
			print > f
		}
	' "$m"
done
if [ -s "$blocks/untagged" ]; then
	notok readme-blocks-tagged "configuration blocks without a file name: $(tr '\n' ' ' <"$blocks/untagged")"
else
	ok readme-blocks-tagged
fi
nreadme=$(find "$blocks" -name 'readme-*' | wc -l)
[ "$nreadme" -ge 3 ] && ok "readme-blocks-found-$nreadme" ||
    notok readme-blocks-found "$nreadme configuration blocks in README.md"
for page in danests.conf.5 danests-postfix.8 danests-relay.8; do
	[ -n "$(find "$blocks" -name "man-$page-*")" ] && ok "man-blocks-found-$page" ||
	    notok "man-blocks-found-$page" "no marked configuration block"
done
for b in "$blocks"/readme-* "$blocks"/man-*; do
	[ -f "$b" ] || continue
	name=${b##*/}
	case $name in
	*-danests-postfix.conf) file=danests-postfix.conf ;;
	*-danests-relay.conf) file=danests-relay.conf ;;
	*) file=danests.conf ;;
	esac
	d=$tmp/b-$name
	mkdir "$d"
	sed "s|/etc/danests/danests.conf|$etc/danests.conf|g" "$b" >"$d/$file"
	check_file "block-$name" "$d/$file"
done

# 3. --config applies the core keys of a daemon's file and of what it
# includes, and skips its sections
mkdir "$tmp/tc"
cat >"$tmp/tc/core.conf" <<EOF
cache_dir $tmp/tc/cache   # created by the tool
EOF
cat >"$tmp/tc/danests-relay.conf" <<EOF
include core.conf
[relay]
listen 127.0.0.1:10026
[postfix]
profile strict strict-testing
EOF
if tool_check "$tmp/tc/danests-relay.conf" --json && [ -f "$tmp/tc/cache/data.mdb" ]; then
	ok tool-config-daemon-file
else
	notok tool-config-daemon-file "no cache in $tmp/tc/cache: $(head -c 300 "$tmp/err")"
fi

# 4. errors: exit 78 (daemons) or 64 (tool), one line on stderr that names
# the file (and the line and the key where there is one), nothing started
# fails PROG NAME PATTERN FILE - PROG's check of FILE fails as described
fails() {
	local prog=$1 name=$2 pat=$3 f=$4 want=78 rc why=""
	case $prog in
	postfix) "$postfix" -n -c "$f" >"$tmp/out" 2>"$tmp/err" ;;
	relay) "$relay" -n -c "$f" >"$tmp/out" 2>"$tmp/err" ;;
	tool) want=64
	    "$tool" check --config "$f" --resolver 127.0.0.1@9 \
	    example.invalid >"$tmp/out" 2>"$tmp/err" ;;
	esac
	rc=$?
	[ $rc = $want ] || why="exit $rc, want $want"
	[ "$(wc -l <"$tmp/err")" = 1 ] || why="$why; stderr not one line"
	grep -q -e "$pat" "$tmp/err" || why="$why; no '$pat'"
	[ -s "$tmp/out" ] && why="$why; output on stdout"
	if [ -z "$why" ]; then
		ok "$prog-$name"
	else
		notok "$prog-$name" "$why: $(head -c 300 "$tmp/err")"
	fi
}

# conf NAME SECTION LINES... - a daemon file including the sample core
# file, then SECTION with LINES
conf() {
	local f=$tmp/err-$1.conf
	shift
	{
		echo "include $etc/danests.conf"
		echo "[$1]"
		shift
		printf '%s\n' "$@"
	} >"$f"
	echo "$f"
}

for p in postfix relay; do
	[ $p = postfix ] && l='inet:127.0.0.1:18999' || l='127.0.0.1:18999'
	f=$(conf $p-nouser $p "listen $l" "user no-such-user-x")
	fails $p missing-user "$f:4: user no-such-user-x does not exist: create it (adduser --system" "$f"
	f=$(conf $p-unknown-key $p "listen $l" "lisen $l")
	fails $p unknown-key "$f:4: lisen: unknown key in \[$p\]" "$f"
	f=$(conf $p-core-in-section $p "resolver 127.0.0.1")
	fails $p core-key-in-section "$f:3: resolver: a core key" "$f"
	f=$(conf $p-bad-listen $p "listen inet:127.0.0.1")
	fails $p malformed-listen "$f:3: listen: expected" "$f"
	f=$(conf $p-bad-timeout $p "idle_timeout 5m")
	fails $p malformed-value "$f:3: idle_timeout: expected" "$f"
	f=$(conf $p-unix-dir $p "listen unix:$tmp/no-such-dir/sock")
	fails $p unix-socket-directory "$f: listen unix:$tmp/no-such-dir/sock: directory $tmp/no-such-dir: No such file" "$f"
	fails $p missing-file "$tmp/none.conf: No such file or directory" "$tmp/none.conf"
	fails $p directory "^danests-$p.*/tmp: is a directory" /tmp
	# the state directory: root's, not writable by _danests
	mkdir -p "$tmp/state-root"
	printf 'cache_dir %s/state-root/cache\n' "$tmp" >"$tmp/core-root.conf"
	printf 'include %s\n[%s]\n' "$tmp/core-root.conf" $p >"$tmp/$p-root.conf"
	fails $p state-dir-not-writable "$tmp/core-root.conf:1: as user _danests: .*Permission denied" "$tmp/$p-root.conf"
	# another user's, mode 0700
	install -d -o nobody -m 700 "$tmp/state-nobody"
	printf 'cache_dir %s/state-nobody\n' "$tmp" >"$tmp/core-nobody.conf"
	printf 'include %s\n[%s]\n' "$tmp/core-nobody.conf" $p >"$tmp/$p-nobody.conf"
	fails $p state-dir-foreign "$tmp/core-nobody.conf:1: as user _danests: .*state-nobody" "$tmp/$p-nobody.conf"
	# a CA file only root can read
	install -m 600 /dev/null "$tmp/ca-root.pem"
	printf 'ca_file %s/ca-root.pem\n' "$tmp" >"$tmp/core-ca.conf"
	printf 'include %s\n[%s]\n' "$tmp/core-ca.conf" $p >"$tmp/$p-ca.conf"
	fails $p ca-file-unreadable "$tmp/core-ca.conf:1: ca_file $tmp/ca-root.pem: not readable by _danests" "$tmp/$p-ca.conf"
	# the default user when it does not exist
	if true; then
		unshare -m sh -c 'mount --bind "$1" /etc/passwd && mount --bind "$2" /etc/group && exec "$3" -n -c "$4"' \
		    sh "$tmp/passwd.orig" "$tmp/group.orig" "$build/$([ $p = postfix ] && echo postfix-tlsproxy/danests-postfix || echo opensmtpd/danests-relay)" \
		    "$etc/danests-$p.conf" >"$tmp/out" 2>"$tmp/err"
		rc=$?
		if [ $rc = 78 ] && grep -q "$etc/danests-$p.conf: user _danests does not exist: create it" "$tmp/err" &&
		    [ "$(wc -l <"$tmp/err")" = 1 ]; then
			ok "$p-default-user-missing"
		else
			notok "$p-default-user-missing" "exit $rc: $(head -c 300 "$tmp/err")"
		fi
	fi
done
# the check as another user than root checks as that user, and says so
printf 'cache_dir none\n' >"$tmp/core-none.conf"
for p in postfix relay; do
	printf 'include %s\n[%s]\n' "$tmp/core-none.conf" $p >"$tmp/$p-nonroot.conf"
	bin=$postfix
	[ $p = relay ] && bin=$relay
	setpriv --reuid=nobody --regid=nogroup --clear-groups \
	    "$bin" -n -c "$tmp/$p-nonroot.conf" >"$tmp/out" 2>"$tmp/err"
	rc=$?
	if [ $rc = 0 ] && grep -q "note: not running as root: checked as uid $(id -u nobody), not as user _danests" "$tmp/err"; then
		ok "$p-check-not-root"
	else
		notok "$p-check-not-root" "exit $rc: $(head -c 300 "$tmp/err")"
	fi
done

printf 'dns_timeout 5s\n' >"$tmp/tool-bad.conf"
fails tool malformed-value "$tmp/tool-bad.conf:1: dns_timeout: expected a number" "$tmp/tool-bad.conf"
printf 'include nothere.conf\n' >"$tmp/tool-inc.conf"
fails tool include-missing "$tmp/tool-inc.conf:1: include $tmp/nothere.conf: No such file" "$tmp/tool-inc.conf"
fails tool directory "/tmp: is a directory" /tmp

# the old option letters are gone: usage error 64
for args in "$postfix -t" "$postfix -f" "$postfix -o x=y" "$relay -f $etc/danests-relay.conf"; do
	# shellcheck disable=SC2086
	$args >/dev/null 2>&1
	rc=$?
	[ $rc = 64 ] && ok "old-option-${args##*/}" || notok "old-option-${args##*/}" "exit $rc"
done
"$postfix" -h >"$tmp/out" 2>&1 && grep -q -- '-c file' "$tmp/out" && ok postfix-help ||
    notok postfix-help "$(head -c 200 "$tmp/out")"
"$relay" -h >"$tmp/out" 2>&1 && grep -q -- '-c file' "$tmp/out" && ok relay-help ||
    notok relay-help "$(head -c 200 "$tmp/out")"

exit $failed
