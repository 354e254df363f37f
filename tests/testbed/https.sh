#!/bin/sh
# https.sh - start or stop the MTA-STS policy hosts of the test bed (nginx)
#
# usage: https.sh up|down|status
#
# Needs the test CA made by pki.sh: $RUN/pki/ca.crt and ca.key, and the
# zone bulk.test rendered by dns.sh (its policy hosts).  Everything
# else lives under $RUN/https: certificates (pki/), policies (www/<domain>/
# .well-known/mta-sts.txt, which tests may edit or remove), nginx.conf,
# nginx.pid, logs/.  Addresses: see tests/scenarios/list and
# https/nginx.conf.in.  "up" always starts from a clean state (an nginx
# left running is stopped first); "down" stops nginx and its workers with
# bounded waits.
#
# Environment: TESTBED_RUN (default tests/testbed/run), HTTPS_PORT (443).
set -eu

HERE=$(cd "$(dirname "$0")" && pwd)
RUN=${TESTBED_RUN:-$HERE/run}
PORT=${HTTPS_PORT:-443}
CA_DIR=$RUN/pki
DIR=$RUN/https
SRC=$HERE/https
LIST=$HERE/../scenarios/list
PIDFILE=$DIR/nginx.pid

die() {
	echo "https.sh: $*" >&2
	exit 1
}

# alive - is process $1 running?
alive() {
	[ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

# stop - stop the nginx of this test bed, then its workers, bounded waits
stop() {
	[ -f "$PIDFILE" ] || return 0
	pid=$(cat "$PIDFILE" 2>/dev/null || true)
	case $pid in
	''|*[!0-9]*) rm -f "$PIDFILE"; return 0 ;;
	esac
	# only our own nginx: its command line names our config
	if ! alive "$pid" ||
	    ! tr '\0' ' ' < "/proc/$pid/cmdline" 2>/dev/null |
	    grep -q "$DIR/nginx.conf"; then
		rm -f "$PIDFILE"
		return 0
	fi
	kids=$(ps -o pid= --ppid "$pid" 2>/dev/null || true)
	kill -TERM "$pid" 2>/dev/null || true
	i=0
	while alive "$pid" && [ $i -lt 50 ]; do
		sleep 0.1
		i=$((i + 1))
	done
	if alive "$pid"; then
		kill -KILL "$pid" 2>/dev/null || true
	fi
	for k in $kids; do
		alive "$k" && kill -KILL "$k" 2>/dev/null || true
	done
	rm -f "$PIDFILE"
}

# sts_domains - every domain of the scenario list that has a policy host
sts_domains() {
	awk '$1 ~ /^(sts|txt)-[a-z0-9-]*\.test$/ { print $1 }' "$LIST"
}

# leaf NAME CN CA_CRT CA_KEY [openssl ca args] - key and cert for CN with
# SANs from $DIR/pki/NAME.san, signed by the given CA
leaf() {
	name=$1 cn=$2 cacrt=$3 cakey=$4
	shift 4
	p=$DIR/pki
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$p/$name.key" 2>/dev/null
	openssl req -new -key "$p/$name.key" -subj "/CN=$cn" \
	    -out "$p/$name.csr" 2>/dev/null
	{
		echo "basicConstraints = critical, CA:FALSE"
		echo "keyUsage = critical, digitalSignature"
		echo "extendedKeyUsage = serverAuth"
		echo "subjectKeyIdentifier = hash"
		echo "authorityKeyIdentifier = keyid"
		printf 'subjectAltName = '
		sed 's/^/DNS:/' "$p/$name.san" | paste -sd, -
	} > "$p/$name.ext"
	if [ $# -eq 0 ]; then
		openssl x509 -req -in "$p/$name.csr" -CA "$cacrt" \
		    -CAkey "$cakey" -set_serial "0x$(openssl rand -hex 8)" \
		    -days 30 -sha256 -extfile "$p/$name.ext" \
		    -out "$p/$name.crt" 2>/dev/null ||
		    die "cannot issue $name certificate"
	else
		# openssl ca accepts explicit (past) validity dates.
		cadir=$p/ca-$name
		rm -rf "$cadir"
		mkdir -p "$cadir/new"
		: > "$cadir/index.txt"
		openssl rand -hex 8 > "$cadir/serial"
		cat > "$cadir/ca.cnf" <<-EOF
		[ ca ]
		default_ca = tb
		[ tb ]
		dir = $cadir
		database = $cadir/index.txt
		new_certs_dir = $cadir/new
		serial = $cadir/serial
		default_md = sha256
		policy = any
		unique_subject = no
		copy_extensions = none
		[ any ]
		commonName = supplied
		EOF
		openssl ca -batch -config "$cadir/ca.cnf" -cert "$cacrt" \
		    -keyfile "$cakey" -in "$p/$name.csr" -extfile "$p/$name.ext" \
		    -notext -out "$p/$name.crt" "$@" 2>/dev/null ||
		    die "cannot issue $name certificate"
	fi
}

# policies - the document roots, one per domain, from https/policies
policies() {
	www=$DIR/www
	rm -rf "$www"
	for f in "$SRC"/policies/*.test; do
		d=$(basename "$f")
		mkdir -p "$www/$d/.well-known"
		cp "$f" "$www/$d/.well-known/mta-sts.txt"
	done
	mkdir -p "$DIR/alt"
	cp "$SRC"/policies/*.v2 "$DIR/alt/" 2>/dev/null || true
	for f in "$DIR"/alt/*.v2; do
		[ -e "$f" ] && mv "$f" "${f%.v2}"
	done

	# sts-crlf: same policy with CRLF line ends (RFC 8461 3.2 allows both)
	t=$www/sts-crlf.test/.well-known/mta-sts.txt
	sed 's/$/\r/' "$t" > "$t.tmp" && mv "$t.tmp" "$t"

	# pad FILE BYTES - append comment-like filler lines up to BYTES
	pad() {
		awk -v n="$2" 'BEGIN {
			l = "x-pad: "; for (i = 0; i < 64; i++) l = l "0123456789";
			while (n > 0) { print substr(l, 1, n > 600 ? 600 : n - 1); n -= 601 }
		}' >> "$1"
	}
	# sts-big: 70 KiB, sent with Content-Length
	pad "$www/sts-big.test/.well-known/mta-sts.txt" 71680
	# sts-chunked: 100 KiB, sent chunked (nginx.conf.in)
	pad "$www/sts-chunked.test/.well-known/mta-sts.txt" 102400
	# sts-slow: 4 KiB at one byte per second
	pad "$www/sts-slow.test/.well-known/mta-sts.txt" 4096
}

# certs - leaf certificates for the policy addresses
certs() {
	p=$DIR/pki
	rm -rf "$p"
	mkdir -p "$p"
	sts_domains | sed 's/^/mta-sts./' > "$p/good.san"
	[ -s "$p/good.san" ] || die "no sts-* domain in $LIST"
	# the TLS 1.0/1.1-only host (127.10.1.5) has a good certificate
	echo mta-sts.sts-tls10.test >> "$p/good.san"
	leaf good mta-sts.sts-enforce.test "$CA_DIR/ca.crt" "$CA_DIR/ca.key"

	# a CA of our own that no client trusts
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$p/untrusted-ca.key" \
	    -subj "/CN=danests untrusted test CA" -days 30 \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" \
	    -out "$p/untrusted-ca.crt" 2>/dev/null ||
	    die "cannot make the untrusted CA"
	echo mta-sts.sts-untrusted.test > "$p/untrusted.san"
	leaf untrusted mta-sts.sts-untrusted.test "$p/untrusted-ca.crt" \
	    "$p/untrusted-ca.key"

	echo mta-sts.wrong-name.test > "$p/wrongname.san"
	leaf wrongname mta-sts.wrong-name.test "$CA_DIR/ca.crt" "$CA_DIR/ca.key"

	# bulk.test: one certificate for its 1,000 policy hosts (a wildcard
	# cannot name mta-sts.dNNNN.bulk.test), named after dns.sh's zone
	z=$RUN/dns/zones/bulk.test
	[ -f "$z" ] || die "no $z (run dns.sh up first)"
	awk '$1 ~ /^mta-sts\./ && $2 == "A" { print $1 ".bulk.test" }' "$z" \
	    > "$p/bulk.san"
	[ -s "$p/bulk.san" ] || die "no policy host in $z"
	leaf bulk mta-sts.d0001.bulk.test "$CA_DIR/ca.crt" "$CA_DIR/ca.key"

	echo mta-sts.sts-expired.test > "$p/expired.san"
	leaf expired mta-sts.sts-expired.test "$CA_DIR/ca.crt" "$CA_DIR/ca.key" \
	    -startdate 20200101000000Z -enddate 20200201000000Z
	openssl x509 -in "$p/expired.crt" -noout -checkend 0 >/dev/null 2>&1 &&
	    die "expired certificate is not expired"
	return 0
}

# wait_up - until nginx answers on 127.10.1.1, at most 5 seconds
wait_up() {
	i=0
	while [ $i -lt 50 ]; do
		if curl -s -o /dev/null --max-time 1 --cacert "$CA_DIR/ca.crt" \
		    --resolve "mta-sts.sts-enforce.test:$PORT:127.10.1.1" \
		    "https://mta-sts.sts-enforce.test:$PORT/.well-known/mta-sts.txt"
		then
			return 0
		fi
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

up() {
	[ -f "$CA_DIR/ca.crt" ] && [ -f "$CA_DIR/ca.key" ] ||
	    die "no test CA in $CA_DIR (run pki.sh first)"
	command -v nginx >/dev/null || die "nginx not installed"
	stop
	mkdir -p "$DIR/logs" "$DIR/tmp"
	certs
	policies
	user=""
	[ "$(id -u)" -eq 0 ] && user="user root root;"
	sed -e "s|@RUN@|$DIR|g" -e "s|@PORT@|$PORT|g" -e "s|@USER@|$user|" \
	    "$SRC/nginx.conf.in" > "$DIR/nginx.conf"
	nginx -t -q -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/logs/error.log" ||
	    die "bad nginx configuration (see $DIR/logs/error.log)"
	nginx -p "$DIR/" -c "$DIR/nginx.conf" -e "$DIR/logs/error.log" ||
	    die "nginx did not start (see $DIR/logs/error.log)"
	if ! wait_up; then
		stop
		die "nginx does not answer on 127.10.1.1:$PORT"
	fi
	echo "https: nginx up on 127.10.1.1-5:$PORT (pid $(cat "$PIDFILE"))"
}

case ${1:-} in
up)	up ;;
down)	stop; echo "https: down" ;;
status)
	if [ -f "$PIDFILE" ] && alive "$(cat "$PIDFILE")"; then
		echo "https: running (pid $(cat "$PIDFILE"))"
	else
		echo "https: stopped"
		exit 1
	fi
	;;
*)	echo "usage: $0 up|down|status" >&2; exit 2 ;;
esac
