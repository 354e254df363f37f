#!/bin/sh
# tests/testbed/pki.sh - test PKI of the loopback test bed (openssl).
#
#   pki.sh [init]                 fresh test CA, keys "good" and "bad" with
#                                 certificates for every MX host name, and
#                                 run/vars (TLSA association data, paths)
#   pki.sh ca NAME CN             another CA: run/pki/NAME.{key,crt}
#   pki.sh issue NAME [-c CA] [-e] [-d DAYS] [-k KEY] SAN...
#                                 key run/pki/NAME.key (or reuse -k KEY) and a
#                                 cert run/pki/NAME.crt issued by CA (default
#                                 the test CA "ca"), plus NAME-chain.crt
#                                 (cert + CA cert); -e: expired (valid only in
#                                 the past); -d: validity in days (default 30)
#   pki.sh selfsigned NAME [-k KEY] SAN...
#                                 self-signed cert run/pki/NAME.crt
#   pki.sh tlsa CERT SELECTOR MTYPE
#                                 print TLSA association data (lower-case hex)
#
# SANs are DNS names; IP addresses may be given as IP:a.b.c.d.
set -eu

TB=$(cd "$(dirname "$0")" && pwd)
RUN=$TB/run
PKI=$RUN/pki

die() {
	echo "pki.sh: $*" >&2
	exit 1
}

command -v openssl >/dev/null 2>&1 || die "openssl not found"

# utc - openssl ca date (YYYYMMDDHHMMSSZ) for a date(1) offset
utc() {
	date -u -d "$1" +%Y%m%d%H%M%SZ
}

# san_ext - subjectAltName value from a list of names
san_ext() {
	out=""
	for n in "$@"; do
		case $n in
		IP:*)	out="$out${out:+,}$n" ;;
		*)	out="$out${out:+,}DNS:$n" ;;
		esac
	done
	printf '%s' "$out"
}

# newkey - fresh P-256 key in file $1
newkey() {
	openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 \
	    -out "$1" 2>/dev/null || die "cannot make key $1"
	chmod 600 "$1"
}

# make_ca - CA NAME with common name CN
make_ca() {
	name=$1 cn=$2
	mkdir -p "$PKI"
	newkey "$PKI/$name.key"
	openssl req -new -x509 -key "$PKI/$name.key" -out "$PKI/$name.crt" \
	    -days 365 -subj "/CN=$cn" -sha256 \
	    -addext "basicConstraints=critical,CA:TRUE" \
	    -addext "keyUsage=critical,keyCertSign,cRLSign" \
	    -addext "subjectKeyIdentifier=hash" 2>/dev/null ||
	    die "cannot make CA $name"
}

# sign_cert - issue run/pki/NAME.crt for an existing key with openssl ca,
# which allows explicit start and end dates (expired certificates)
sign_cert() {
	name=$1 ca=$2 start=$3 end=$4
	shift 4
	[ -f "$PKI/$ca.key" ] && [ -f "$PKI/$ca.crt" ] ||
	    die "no CA $ca under $PKI (run pki.sh first)"
	[ $# -gt 0 ] || die "issue $name: no subject alternative names"
	tmp=$(mktemp -d "$PKI/.ca.XXXXXX")
	: > "$tmp/index.txt"
	# serial: random 64 bits, so certificates never collide
	openssl rand -hex 8 > "$tmp/serial"
	cat > "$tmp/ca.cnf" <<CNF
[ ca ]
default_ca = tb
[ tb ]
dir = $tmp
database = $tmp/index.txt
serial = $tmp/serial
new_certs_dir = $tmp
certificate = $PKI/$ca.crt
private_key = $PKI/$ca.key
default_md = sha256
policy = anything
unique_subject = no
copy_extensions = none
email_in_dn = no
x509_extensions = leaf
[ anything ]
commonName = supplied
[ leaf ]
basicConstraints = critical,CA:FALSE
keyUsage = critical,digitalSignature,keyEncipherment
extendedKeyUsage = serverAuth
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid
subjectAltName = $(san_ext "$@")
CNF
	openssl req -new -key "$PKI/$name.key" -subj "/CN=$1" \
	    -out "$tmp/req.csr" 2>/dev/null || die "issue $name: req failed"
	openssl ca -batch -config "$tmp/ca.cnf" -in "$tmp/req.csr" \
	    -out "$PKI/$name.crt" -notext -startdate "$start" \
	    -enddate "$end" >"$tmp/log" 2>&1 || {
		cat "$tmp/log" >&2
		rm -rf "$tmp"
		die "issue $name: openssl ca failed"
	}
	rm -rf "$tmp"
	cat "$PKI/$name.crt" "$PKI/$ca.crt" > "$PKI/$name-chain.crt"
}

# issue - see usage above
issue() {
	[ $# -ge 1 ] || die "usage: pki.sh issue NAME [-c CA] [-e] [-d DAYS] [-k KEY] SAN..."
	name=$1
	shift
	ca=ca expired=0 days=30 key=""
	while [ $# -gt 0 ]; do
		case $1 in
		-c)	ca=$2; shift 2 ;;
		-e)	expired=1; shift ;;
		-d)	days=$2; shift 2 ;;
		-k)	key=$2; shift 2 ;;
		--)	shift; break ;;
		-*)	die "issue: unknown option $1" ;;
		*)	break ;;
		esac
	done
	mkdir -p "$PKI"
	if [ -n "$key" ]; then
		[ -f "$key" ] || die "issue: no key $key"
		[ "$key" = "$PKI/$name.key" ] || cp "$key" "$PKI/$name.key"
	else
		newkey "$PKI/$name.key"
	fi
	if [ "$expired" = 1 ]; then
		sign_cert "$name" "$ca" "$(utc '-60 days')" "$(utc '-30 days')" "$@"
	else
		sign_cert "$name" "$ca" "$(utc '-1 day')" "$(utc "+$days days")" "$@"
	fi
}

# selfsigned - see usage above
selfsigned() {
	[ $# -ge 2 ] || die "usage: pki.sh selfsigned NAME [-k KEY] SAN..."
	name=$1
	shift
	key=""
	if [ "$1" = "-k" ]; then
		key=$2
		shift 2
	fi
	mkdir -p "$PKI"
	if [ -n "$key" ]; then
		[ "$key" = "$PKI/$name.key" ] || cp "$key" "$PKI/$name.key"
	else
		newkey "$PKI/$name.key"
	fi
	openssl req -new -x509 -key "$PKI/$name.key" -out "$PKI/$name.crt" \
	    -days 30 -subj "/CN=$1" -sha256 \
	    -addext "basicConstraints=critical,CA:FALSE" \
	    -addext "subjectAltName=$(san_ext "$@")" 2>/dev/null ||
	    die "selfsigned $name failed"
}

# tlsa - association data of CERT for SELECTOR (0 cert, 1 SPKI) and
# MTYPE (0 full, 1 SHA-256, 2 SHA-512), RFC 6698 2.1
tlsa() {
	[ $# -eq 3 ] || die "usage: pki.sh tlsa CERT SELECTOR MTYPE"
	[ -f "$1" ] || die "tlsa: no certificate $1"
	case $2 in
	0)	der() { openssl x509 -in "$1" -outform DER; } ;;
	1)	der() { openssl x509 -in "$1" -noout -pubkey |
		    openssl pkey -pubin -outform DER; } ;;
	*)	die "tlsa: selector must be 0 or 1" ;;
	esac
	case $3 in
	0)	der "$1" | od -An -v -tx1 | tr -d ' \n' ;;
	1)	der "$1" | openssl dgst -sha256 -r | cut -d' ' -f1 ;;
	2)	der "$1" | openssl dgst -sha512 -r | cut -d' ' -f1 ;;
	*)	die "tlsa: mtype must be 0, 1 or 2" ;;
	esac
}

# mx_names - every MX (and CNAME) target of every zone template, plus the
# names listed in ";san NAME" comments (hosts without an MX, e.g. implicit)
mx_names() {
	for f in "$TB"/zones/*.zone; do
		z=$(basename "$f" .zone)
		awk -v z="$z" '
		function abs(n) {
			if (n == "@") return z
			if (n ~ /\.$/) return substr(n, 1, length(n) - 1)
			return n "." z
		}
		/^;san / { print abs($2); next }
		/^[ \t]*;/ { next }
		{
			for (i = 1; i <= NF; i++) {
				if ($i == "MX" && i + 2 <= NF && $(i + 2) != ".") {
					print abs($(i + 2)); break
				}
				if ($i == "CNAME" && i + 1 <= NF) {
					print abs($(i + 1)); break
				}
			}
		}' "$f"
	done | grep -v '@' | tr 'A-Z' 'a-z' | sort -u
}

# init - the whole test PKI and run/vars
init() {
	rm -rf "$PKI"
	mkdir -p "$PKI"
	names=$(mx_names)
	[ -n "$names" ] || die "no MX host names found in $TB/zones"
	make_ca ca "danests test CA"
	# shellcheck disable=SC2086
	issue good $names localhost IP:127.0.0.1
	# the MITM stand-in: same names, self-signed, another key
	# shellcheck disable=SC2086
	selfsigned bad $names localhost IP:127.0.0.1
	# shellcheck disable=SC2086
	printf '%s\n' $names > "$PKI/mx-names"

	v=$RUN/vars.new
	{
		echo "# run/vars - written by pki.sh at $(date -u +%FT%TZ); sh-sourceable"
		echo "TESTBED_DIR='$TB'"
		echo "RUN_DIR='$RUN'"
		echo "PKI_DIR='$PKI'"
		echo "CA_KEY='$PKI/ca.key'"
		echo "CA_CRT='$PKI/ca.crt'"
		echo "GOOD_KEY='$PKI/good.key'"
		echo "GOOD_CRT='$PKI/good.crt'"
		echo "GOOD_CHAIN='$PKI/good-chain.crt'"
		echo "BAD_KEY='$PKI/bad.key'"
		echo "BAD_CRT='$PKI/bad.crt'"
		echo "MX_NAMES_FILE='$PKI/mx-names'"
		echo "TRUST_ANCHOR='$RUN/dns/trust-anchor'"
		echo "NSD_ADDR=127.10.0.1"
		echo "RESOLVER_ADDR=127.10.0.2"
		echo "SINK_ADDR=127.10.0.3"
		echo "REFUSE_ADDR=127.10.0.4"
		echo "HOSTILE_ADDR=127.10.0.5"
		for k in good bad ca; do
			K=$(echo "$k" | tr a-z A-Z)
			echo "${K}_SPKI_SHA256=$(tlsa "$PKI/$k.crt" 1 1)"
			echo "${K}_SPKI_SHA512=$(tlsa "$PKI/$k.crt" 1 2)"
			echo "${K}_CERT_SHA256=$(tlsa "$PKI/$k.crt" 0 1)"
			echo "${K}_CERT_SHA512=$(tlsa "$PKI/$k.crt" 0 2)"
		done
	} > "$v"
	mv "$v" "$RUN/vars"
}

case ${1:-init} in
init)		init ;;
ca)		[ $# -eq 3 ] || die "usage: pki.sh ca NAME CN"; make_ca "$2" "$3" ;;
issue)		shift; issue "$@" ;;
selfsigned)	shift; selfsigned "$@" ;;
tlsa)		shift; printf "%s\n" "$(tlsa "$@")" ;;
names)		mx_names ;;
*)		die "unknown command $1 (init|ca|issue|selfsigned|tlsa|names)" ;;
esac
