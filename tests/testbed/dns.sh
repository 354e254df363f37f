#!/bin/sh
# tests/testbed/dns.sh - authoritative (nsd) and validating (unbound) DNS of
# the loopback test bed.
#
#   dns.sh up      make keys, render and sign every zone of zones/zones,
#                  start nsd (127.10.0.1), the DNS sink (127.10.0.3, never
#                  answers), the refusing server (127.10.0.4), the hostile
#                  resolver (127.10.0.5, replies that do not answer the
#                  question) and unbound (127.10.0.2); when already up,
#                  stop first
#   dns.sh down    stop all of them (no error when nothing runs)
#   dns.sh status  say what runs
#   dns.sh edit ZONE [-t TEMPLATE] [VAR=VALUE...]
#                  re-render ZONE from its template (or TEMPLATE) with
#                  these variables only, re-sign it with its key, reload
#                  nsd and flush the zone from unbound (see dnsedit.sh)
#
# Needs run/vars from pki.sh.  All state lives in run/dns/.
set -eu

TB=$(cd "$(dirname "$0")" && pwd)
RUN=$TB/run
D=$RUN/dns
ZT=$TB/zones
MANIFEST=$ZT/zones

NSD_ADDR=127.10.0.1
RESOLVER_ADDR=127.10.0.2
SINK_ADDR=127.10.0.3
REFUSE_ADDR=127.10.0.4
HOSTILE_ADDR=127.10.0.5
ALG=ECDSAP256SHA256
TRIES=100		# waits: at most TRIES x 0.1 s

ON_FAIL=""

die() {
	echo "dns.sh: $*" >&2
	[ -z "$ON_FAIL" ] || $ON_FAIL
	exit 1
}

need() {
	for c in "$@"; do
		command -v "$c" >/dev/null 2>&1 ||
		    die "$c not found (run tests/setup.sh)"
	done
}

# manifest - zone lines of zones/zones without comments
manifest() {
	grep -v '^[[:space:]]*\(#\|$\)' "$MANIFEST"
}

# zone_kind - kind of zone $1 in the manifest, or "" when not listed
zone_kind() {
	manifest | awk -v z="$1" '$1 == z { print $2; exit }'
}

# zone_opt - option $2 (or the first option when $2 is "1") of zone $1
zone_opt() {
	manifest | awk -v z="$1" -v o="$2" '$1 == z {
		for (i = 3; i <= NF; i++) {
			if (o == "1") { print $i; exit }
			if (index($i, o "=") == 1) {
				print substr($i, length(o) + 2); exit
			}
		}
	}'
}

# render - template $1 for zone $2 with serial $3 to stdout; variables from
# run/vars, then ";default" lines of the template, then run/dns/overrides/ZONE
render() {
	tmpl=$1 zone=$2 serial=$3
	ov=$D/overrides/$zone
	[ -f "$ov" ] || ov=/dev/null
	awk -v zone="$zone" -v serial="$serial" -v vars="$RUN/vars" \
	    -v ov="$ov" -v tmpl="$tmpl" '
	function setvar(line,   k, v) {
		if (line ~ /^[ \t]*(#|$)/) return
		k = line; sub(/=.*/, "", k)
		v = line; sub(/^[^=]*=/, "", v)
		if (v ~ /^'\''.*'\''$/) v = substr(v, 2, length(v) - 2)
		val[k] = v
	}
	BEGIN {
		while ((getline l < vars) > 0) setvar(l)
		close(vars)
		while ((getline l < tmpl) > 0)
			if (l ~ /^;default /) {
				sub(/^;default[ \t]+/, "", l)
				k = l; sub(/=.*/, "", k)
				if (!(k in val)) setvar(l)
			}
		close(tmpl)
		while ((getline l < ov) > 0) setvar(l)
		close(ov)
		print "$ORIGIN " zone "."
		print "$TTL 60"
		print "@\tSOA\tns1.test. hostmaster.test. " serial " 60 30 600 5"
		print "@\tNS\tns1.test."
	}
	# ";generate FROM-TO LINE": LINE once per number from FROM to TO,
	# each "$" in it replaced by the number zero-padded to the width of
	# FROM (e.g. 0001-1000); at most 10000 lines
	/^;generate[ \t]/ {
		l = $0
		sub(/^;generate[ \t]+/, "", l)
		rng = l; sub(/[ \t].*/, "", rng)
		sub(/^[^ \t]+[ \t]+/, "", l)
		if (rng !~ /^[0-9]+-[0-9]+$/ || l == "" || index(l, "$") == 0) {
			printf "%s: bad ;generate line: %s\n", tmpl, $0 > "/dev/stderr"
			bad = 1
			exit 1
		}
		from = rng; sub(/-.*/, "", from)
		to = rng; sub(/.*-/, "", to)
		if (to - from >= 10000) {
			printf "%s: ;generate: more than 10000 lines\n", tmpl > "/dev/stderr"
			bad = 1
			exit 1
		}
		l = subst(l)
		for (g = from + 0; g <= to + 0; g++) {
			x = l
			gsub(/\$/, sprintf("%0" length(from) "d", g), x)
			print x
		}
		next
	}
	/^[ \t]*;/ { next }
	{ print subst($0) }
	# subst - the line with every @NAME@ replaced by its value
	function subst(line,   out, rest, i, tail, j, name) {
		out = ""
		rest = line
		while ((i = index(rest, "@")) > 0) {
			tail = substr(rest, i + 1)
			j = index(tail, "@")
			name = substr(tail, 1, j - 1)
			if (j > 1 && name ~ /^[A-Z][A-Z0-9_]*$/) {
				if (!(name in val)) {
					printf "%s: unknown variable @%s@\n", tmpl, name > "/dev/stderr"
					bad = 1
					exit 1
				}
				out = out substr(rest, 1, i - 1) val[name]
				rest = substr(tail, j + 1)
			} else {
				out = out substr(rest, 1, i)
				rest = tail
			}
		}
		return out rest
	}
	END { if (bad) exit 1 }' "$tmpl"
}

# new_serial - a serial above the last one of zone $1 (RFC 1982 in practice:
# seconds since the epoch, bumped when edits come within one second)
new_serial() {
	now=$(date +%s)
	last=0
	[ -f "$D/serial/$1" ] && last=$(cat "$D/serial/$1")
	[ "$now" -gt "$last" ] || now=$((last + 1))
	echo "$now" > "$D/serial/$1"
	echo "$now"
}

# corrupt - break the base64 signature of the RRSIG covering TYPE at OWNER
# (spec "OWNER/TYPE") in signed zone file $2, in place; the RRSIG still
# parses, it just no longer verifies
corrupt() {
	owner=${1%/*} type=${1#*/}
	f=$2
	awk -v owner="$owner." -v type="$type" '
	BEGIN { B = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/" }
	tolower($1) == tolower(owner) && $4 == "RRSIG" && $5 == type {
		s = $NF
		p = int(length(s) / 3)
		c = substr(s, p, 1)
		k = index(B, c)
		c2 = substr(B, (k % 64) + 1, 1)
		$NF = substr(s, 1, p - 1) c2 substr(s, p + 1)
		n++
	}
	{ print }
	END { if (n != 1) { printf "corrupt: %d RRSIG %s at %s\n", n, type, owner > "/dev/stderr"; exit 1 } }
	' "$f" > "$f.tmp" || die "cannot corrupt $1 in $f"
	mv "$f.tmp" "$f"
}

# build_zone - render zone $1 (template $2) and sign it when it is signed;
# leaves the file nsd serves in run/dns/zones/ZONE
build_zone() {
	zone=$1 tmpl=$2 extra=${3:-}
	kind=$(zone_kind "$zone")
	[ -f "$tmpl" ] || die "no template $tmpl for zone $zone"
	out=$D/zones/$zone
	serial=$(new_serial "$zone")
	render "$tmpl" "$zone" "$serial" > "$out.unsigned" ||
	    die "cannot render $tmpl"
	[ -z "$extra" ] || cat "$extra" >> "$out.unsigned"
	case $kind in
	signed|parent)
		key=$(cat "$D/keys/$zone.base" 2>/dev/null) ||
		    die "no key for zone $zone"
		now=$(date +%s)
		# inception an hour back (clock skew), expiry days ahead
		ldns-signzone -i $((now - 3600)) -e $((now + 5 * 86400)) \
		    -o "$zone." -f "$out.tmp" "$out.unsigned" "$key" \
		    >"$D/sign.log" 2>&1 || {
			cat "$D/sign.log" >&2
			die "ldns-signzone failed for $zone"
		}
		c=$(zone_opt "$zone" corrupt)
		[ -z "$c" ] || corrupt "$c" "$out.tmp"
		mv "$out.tmp" "$out"
		;;
	*)
		cp "$out.unsigned" "$out.tmp"
		mv "$out.tmp" "$out"
		;;
	esac
}

# newkey - fresh key (one key signs all: flags 257, a CSK) for zone $1
newkey() {
	(cd "$D/keys" && ldns-keygen -a "$ALG" -k "$1") > "$D/keys/$1.name" ||
	    die "ldns-keygen failed for $1"
	echo "$D/keys/$(cat "$D/keys/$1.name")" > "$D/keys/$1.base"
}

# wait_dns - wait until server $1 answers SOA $2 (with AD when $3 = ad)
wait_dns() {
	i=0
	while [ $i -lt $TRIES ]; do
		a=$(dig @"$1" SOA "$2" +dnssec +time=1 +tries=1 2>/dev/null) || a=""
		case $a in
		*"status: NOERROR"*)
			if [ "${3:-}" != ad ] ||
			    echo "$a" | grep -q '^;; flags:.* ad[ ;]'; then
				return 0
			fi
			;;
		esac
		sleep 0.1
		i=$((i + 1))
	done
	return 1
}

# stop_pid - stop the process whose pid is in file $1 (bounded wait)
stop_pid() {
	f=$1
	[ -f "$f" ] || return 0
	pid=$(cat "$f" 2>/dev/null || true)
	rm -f "$f"
	case $pid in
	''|*[!0-9]*) return 0 ;;
	esac
	kill "$pid" 2>/dev/null || return 0
	i=0
	while kill -0 "$pid" 2>/dev/null; do
		i=$((i + 1))
		if [ $i -ge 50 ]; then
			kill -9 "$pid" 2>/dev/null || true
			break
		fi
		sleep 0.1
	done
}

write_sink() {
	cat > "$D/dnssink.py" <<'PY'
# dnssink.py - DNS servers that misbehave on purpose, UDP and TCP port 53:
#   sink ADDR     accepts every query and never answers
#   refuse ADDR   answers every query with REFUSED
#   hostile ADDR  answers with the query's ID but not its question; the
#                 kind of reply is the first label of the query name that
#                 is a key of HOSTILE (e.g. _mta-sts.other-nx.hostile.test)
import os, selectors, socket, struct, sys

sel = selectors.DefaultSelector()

def parse_query(q):
    """(id, flags, [labels], qtype, qclass, end) of a one-question query"""
    if len(q) < 12 or struct.unpack("!H", q[4:6])[0] != 1:
        return None
    labels, i = [], 12
    while i < len(q) and q[i] != 0:
        n = q[i]
        if n > 63 or i + 1 + n > len(q):
            return None
        labels.append(q[i + 1:i + 1 + n])
        i += 1 + n
    if i + 5 > len(q):
        return None
    qtype, qclass = struct.unpack("!HH", q[i + 1:i + 5])
    return q[0:2], q[2], labels, qtype, qclass, i + 5

def wire(labels):
    return b"".join(bytes([len(l)]) + l for l in labels) + b"\0"

def reply(qid, rd, flags, rcode, questions, body=b"", an=0):
    # flags: extra bits of the third and fourth octets (QR always set)
    h = qid + bytes([0x80 | rd | (flags >> 8), (flags & 0xf0) | rcode])
    return h + struct.pack("!HHHH", len(questions), an, 0, 0) + \
        b"".join(questions) + body

def rr(owner, rtype, rdata):
    return owner + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata

AD, TC = 0x0020, 0x0200
NXDOMAIN = 3
T_A, T_MX, T_TXT, T_AAAA, T_TLSA = 1, 15, 16, 28, 52

# kind -> reply(query) for the hostile server; every reply carries the
# query's ID, so only the question (or the header) gives it away.  base:
# the labels of the query name from the kind's label on (the domain).
def h_reply(kind, q, base):
    p = parse_query(q)
    if p is None:
        return None
    qid, b2, labels, qtype, qclass, end = p
    rd = b2 & 0x01
    ques = q[12:end]
    qname = wire(labels)
    other = wire([b"gmail", b"com"])
    if kind in ("stshost-noq", "stshost-tiny"):
        # Proper secure MX (mx.DOMAIN, A 127.10.2.1, no AAAA, no TLSA)
        # and _mta-sts TXT; the policy host's address lookups get noq-nx
        # or tiny (a DNS error, a timeout).
        if labels[:1] == [b"mta-sts"] and qtype in (T_A, T_AAAA):
            if kind == "stshost-tiny":
                return qid + b"\x81"
            return reply(qid, rd, AD, NXDOMAIN, [])
        if qtype == T_MX and labels == base:
            mx = b"\0\x0a" + wire([b"mx"] + base)
            return reply(qid, rd, AD, 0, [ques], rr(qname, T_MX, mx), an=1)
        if qtype == T_TXT and labels[:1] == [b"_mta-sts"]:
            txt = b"v=STSv1; id=1"
            return reply(qid, rd, AD, 0, [ques],
                         rr(qname, T_TXT, bytes([len(txt)]) + txt), an=1)
        if qtype == T_A and labels[:1] == [b"mx"]:
            return reply(qid, rd, AD, 0, [ques],
                         rr(qname, T_A, bytes([127, 10, 2, 1])), an=1)
        return reply(qid, rd, AD, 0, [ques])
    if kind in ("tlsa-noq", "addr-noq"):
        # Proper secure answers for the domain's MX (mx.DOMAIN) and, for
        # tlsa-noq, its address; the next lookup gets noq-nx.
        if qtype == T_MX and labels == base:
            mx = b"\0\x0a" + wire([b"mx"] + base)
            return reply(qid, rd, AD, 0, [ques], rr(qname, T_MX, mx), an=1)
        if qtype == T_TXT:
            return reply(qid, rd, AD, NXDOMAIN, [ques])
        if kind == "tlsa-noq" and qtype == T_A:
            return reply(qid, rd, AD, 0, [ques],
                         rr(qname, T_A, bytes([127, 10, 2, 1])), an=1)
        if kind == "tlsa-noq" and qtype == T_AAAA:
            return reply(qid, rd, AD, 0, [ques])
        return reply(qid, rd, AD, NXDOMAIN, [])
    if kind == "drop-nx":       # every other query of a name and type
        key = (b".".join(labels).lower(), qtype)     # goes unanswered
        DROPS[key] = DROPS.get(key, 0) + 1
        if DROPS[key] % 2 == 1:
            return None
        return reply(qid, rd, AD, NXDOMAIN, [ques])
    if kind == "nx":            # control: a proper NXDOMAIN, AD set
        return reply(qid, rd, AD, NXDOMAIN, [ques])
    if kind == "noq-nx":        # no question, NXDOMAIN, AD
        return reply(qid, rd, AD, NXDOMAIN, [])
    if kind == "noq-noerror":   # no question, NOERROR, no data
        return reply(qid, rd, AD, 0, [])
    if kind == "other-nx":      # question for another name, NXDOMAIN
        return reply(qid, rd, 0, NXDOMAIN, [other + q[end - 4:end]])
    if kind == "ad-other":      # AD set with NXDOMAIN for another name
        return reply(qid, rd, AD, NXDOMAIN,
                     [wire([b"x"] + labels) + q[end - 4:end]])
    if kind == "type-nx":       # the name, another type
        t = 1 if qtype != 1 else 15
        return reply(qid, rd, AD, NXDOMAIN,
                     [qname + struct.pack("!HH", t, qclass)])
    if kind == "class-nx":      # the name and type, class CH
        return reply(qid, rd, AD, NXDOMAIN,
                     [qname + struct.pack("!HH", qtype, 3)])
    if kind == "twoq-nx":       # the question and another
        return reply(qid, rd, AD, NXDOMAIN,
                     [ques, other + q[end - 4:end]])
    if kind == "garbage":       # a header claiming a question, then junk
        return reply(qid, rd, AD, NXDOMAIN, [ques])[:12] + \
            bytes(range(0xf0, 0x100)) * 2
    if kind == "short":         # NXDOMAIN reply cut inside the question
        r = reply(qid, rd, AD, NXDOMAIN, [ques])
        return r[:12 + len(ques) // 2]
    if kind == "hdr-only":      # header says one question, none follows
        return reply(qid, rd, AD, NXDOMAIN, [ques])[:12]
    if kind == "tiny":          # shorter than a header
        return qid + b"\x81"
    if kind == "trailing":      # NXDOMAIN, then octets after the message
        return reply(qid, rd, AD, NXDOMAIN, [ques]) + b"\0\0\0\0"
    if kind == "tc-nx":         # truncated flag on UDP and TCP alike
        return reply(qid, rd, AD | TC, NXDOMAIN, [ques])
    if kind == "qr0-nx":        # a query, not a reply
        r = reply(qid, rd, AD, NXDOMAIN, [ques])
        return r[:2] + bytes([r[2] & 0x7f]) + r[3:]
    if kind == "ancount":       # NXDOMAIN claiming an answer it lacks
        return reply(qid, rd, AD, NXDOMAIN, [ques], an=1)
    return reply(qid, rd, AD, NXDOMAIN, [])

DROPS = {}

def hostile(q):
    p = parse_query(q)
    if p is None:
        return None
    kind, base = "noq-nx", p[2]
    for i, l in enumerate(p[2]):
        if l.decode("ascii", "replace").lower() in HOSTILE:
            kind, base = l.decode("ascii").lower(), p[2][i:]
            break
    return h_reply(kind, q, base)

HOSTILE = ("nx", "noq-nx", "noq-noerror", "other-nx", "ad-other", "type-nx",
           "class-nx", "twoq-nx", "garbage", "short", "hdr-only", "tiny",
           "trailing", "tc-nx", "qr0-nx", "ancount", "tlsa-noq",
           "addr-noq", "stshost-noq", "stshost-tiny", "drop-nx")

def answer(mode, q):
    return refused(q) if mode == "refuse" else hostile(q)

def refused(q):
    if len(q) < 12:
        return None
    qd = struct.unpack("!H", q[4:6])[0]
    end = 12
    if qd == 1:
        while end < len(q) and q[end] != 0:
            end += 1 + q[end]
        end += 5
        if end > len(q):
            qd, end = 0, 12
    else:
        qd = 0
    hdr = q[0:2] + bytes([0x80 | (q[2] & 0x79), 0x05])
    return hdr + struct.pack("!HHHH", qd, 0, 0, 0) + q[12:end]

def add(mode, addr):
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    u.bind((addr, 53))
    sel.register(u, selectors.EVENT_READ, (mode, "udp"))
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    t.bind((addr, 53))
    t.listen(64)
    sel.register(t, selectors.EVENT_READ, (mode, "listen"))

def main():
    args = sys.argv[1:]
    ready = args.pop(0)
    while args:
        add(args[0], args[1])
        args = args[2:]
    open(ready, "w").close()
    while True:
        for key, _ in sel.select():
            mode, kind = key.data
            s = key.fileobj
            if kind == "udp":
                q, peer = s.recvfrom(65535)
                if mode != "sink":
                    r = answer(mode, q)
                    if r:
                        s.sendto(r, peer)
            elif kind == "listen":
                c, _ = s.accept()
                c.setblocking(False)
                sel.register(c, selectors.EVENT_READ, (mode, b""))
            else:
                try:
                    b = s.recv(65535)
                except OSError:
                    b = b""
                if not b:
                    sel.unregister(s)
                    s.close()
                    continue
                if mode == "sink":
                    continue
                buf = kind + b
                while len(buf) >= 2:
                    n = struct.unpack("!H", buf[:2])[0]
                    if len(buf) < 2 + n:
                        break
                    r = answer(mode, buf[2:2 + n])
                    buf = buf[2 + n:]
                    if r:
                        try:
                            s.send(struct.pack("!H", len(r)) + r)
                        except OSError:
                            pass
                sel.modify(s, selectors.EVENT_READ, (mode, buf))

main()
PY
}

write_nsd_conf() {
	cat > "$D/nsd.conf" <<CONF
# generated by dns.sh
server:
	ip-address: $NSD_ADDR
	port: 53
	do-ip6: no
	username: ""
	chroot: ""
	server-count: 1
	database: ""
	zonesdir: "$D/zones"
	zonelistfile: "$D/nsd.zonelist"
	xfrdfile: "$D/nsd.xfrd.state"
	xfrdir: "$D/nsd.xfr"
	pidfile: "$D/nsd.pid"
	logfile: "$D/nsd.log"
	verbosity: 1
	hide-version: yes
	zonefiles-check: yes
	zonefiles-write: 0
	# a burst (1,000 new domains of bulk.test) sends unbound's queries
	# by the hundred; the default buffer drops some, and unbound waits
	# 10 s before it asks again (infra-cache-min-rtt below)
	receive-buffer-size: 4194304
	# nor may nsd's response rate limiting (200 a second per source by
	# default) throttle the test bed's own resolver: unbound's queries
	# would be dropped or truncated, its request list fill up, and the
	# clients' queries time out
	rrl-ratelimit: 0
	rrl-whitelist-ratelimit: 0
remote-control:
	control-enable: yes
	control-interface: "$D/nsd.ctl"
CONF
	manifest | while read -r zone kind _; do
		[ "$kind" != delegate ] || continue
		[ "$zone" = test ] && name="test" || name=$zone
		printf 'zone:\n\tname: "%s."\n\tzonefile: "%s"\n' "$name" "$zone" \
		    >> "$D/nsd.conf"
	done
}

write_unbound_conf() {
	cat > "$D/unbound.conf" <<CONF
# generated by dns.sh
server:
	interface: $RESOLVER_ADDR
	port: 53
	do-ip6: no
	do-not-query-localhost: no
	access-control: 127.0.0.0/8 allow
	username: ""
	chroot: ""
	directory: "$D"
	pidfile: "$D/unbound.pid"
	logfile: "$D/unbound.log"
	use-syslog: no
	# RFC 6761 reserves test.; unbound answers it locally by default
	local-zone: "test." nodefault
	verbosity: 1
	val-log-level: 2
	log-servfail: yes
	num-threads: 1
	so-reuseport: no
	# room for a burst of clients' queries (see nsd.conf)
	so-rcvbuf: 4m
	module-config: "validator iterator"
	trust-anchor-file: "$D/trust-anchor"
	serve-expired: no
	aggressive-nsec: no
	qname-minimisation: no
	ede: yes
	cache-max-ttl: 60
	cache-max-negative-ttl: 5
	val-bogus-ttl: 1
	# timeout.test: the sink never answers.  Keep unbound trying long
	# (each try waits at least 10 s) and forget the dead server soon, so
	# clients see a timeout rather than a quick SERVFAIL, every time.
	infra-cache-min-rtt: 10000
	infra-host-ttl: 1
stub-zone:
	name: "test."
	stub-addr: $NSD_ADDR
remote-control:
	control-enable: yes
	control-interface: "$D/unbound.ctl"
	control-use-cert: no
CONF
}

up() {
	need nsd nsd-checkconf nsd-control unbound unbound-checkconf \
	    unbound-control ldns-keygen ldns-signzone ldns-key2ds dig python3
	[ -f "$RUN/vars" ] || die "no $RUN/vars: run pki.sh first"
	[ -f "$MANIFEST" ] || die "no $MANIFEST"
	down
	# a failed start leaves nothing running
	ON_FAIL=down
	rm -rf "$D"
	mkdir -p "$D/zones" "$D/keys" "$D/overrides" "$D/serial" "$D/nsd.xfr"

	# children first: their DS records go into the parent
	deleg=$D/delegations
	: > "$deleg"
	parent=""
	manifest | while read -r zone kind _; do
		case $kind in
		parent)	;;
		signed)
			newkey "$zone"
			build_zone "$zone" "$ZT/$zone.zone"
			printf '%s.\tNS\tns1.test.\n' "$zone" >> "$deleg"
			ldns-key2ds -n -2 "$(cat "$D/keys/$zone.base").key" \
			    >> "$deleg" || die "ldns-key2ds failed for $zone"
			;;
		unsigned)
			build_zone "$zone" "$ZT/$zone.zone"
			printf '%s.\tNS\tns1.test.\n' "$zone" >> "$deleg"
			;;
		delegate)
			a=$(zone_opt "$zone" 1)
			[ -n "$a" ] || die "zone $zone: delegate needs an address"
			printf '%s.\tNS\tns.%s.\nns.%s.\tA\t%s\n' \
			    "$zone" "$zone" "$zone" "$a" >> "$deleg"
			;;
		*)	die "zone $zone: unknown kind $kind" ;;
		esac
	done
	parent=$(manifest | awk '$2 == "parent" { print $1; exit }')
	[ "$parent" = test ] || die "zones/zones must list test as parent"
	newkey test
	build_zone test "$ZT/test.zone" "$deleg"
	ldns-key2ds -n -2 "$(cat "$D/keys/test.base").key" > "$D/trust-anchor" ||
	    die "ldns-key2ds failed for test"

	write_nsd_conf
	nsd-checkconf "$D/nsd.conf" || die "bad $D/nsd.conf"
	nsd -c "$D/nsd.conf" || die "nsd did not start (see $D/nsd.log)"
	wait_dns "$NSD_ADDR" test ||
	    die "nsd does not answer on $NSD_ADDR:53 (see $D/nsd.log)"

	write_sink
	rm -f "$D/dnssink.ready"
	python3 "$D/dnssink.py" "$D/dnssink.ready" sink "$SINK_ADDR" \
	    refuse "$REFUSE_ADDR" hostile "$HOSTILE_ADDR" \
	    >"$D/dnssink.log" 2>&1 &
	echo $! > "$D/dnssink.pid"
	i=0
	while [ ! -f "$D/dnssink.ready" ]; do
		kill -0 "$(cat "$D/dnssink.pid")" 2>/dev/null ||
		    die "DNS sink died (see $D/dnssink.log)"
		i=$((i + 1))
		[ $i -lt $TRIES ] || die "DNS sink not ready"
		sleep 0.1
	done

	write_unbound_conf
	unbound-checkconf "$D/unbound.conf" >/dev/null ||
	    die "bad $D/unbound.conf"
	unbound -c "$D/unbound.conf" ||
	    die "unbound did not start (see $D/unbound.log)"
	wait_dns "$RESOLVER_ADDR" test ad ||
	    die "unbound on $RESOLVER_ADDR does not validate test. (see $D/unbound.log)"
	ON_FAIL=""
	echo "dns.sh: up: nsd $NSD_ADDR, unbound $RESOLVER_ADDR, sink $SINK_ADDR, refuse $REFUSE_ADDR, hostile $HOSTILE_ADDR"
}

down() {
	[ -d "$D" ] || return 0
	stop_pid "$D/unbound.pid"
	stop_pid "$D/dnssink.pid"
	stop_pid "$D/nsd.pid"
}

status() {
	rc=0
	for p in nsd unbound dnssink; do
		f=$D/$p.pid
		if [ -f "$f" ] && kill -0 "$(cat "$f")" 2>/dev/null; then
			echo "$p: running, pid $(cat "$f")"
		else
			echo "$p: stopped"
			rc=1
		fi
	done
	return $rc
}

# edit - see usage; used by dnsedit.sh
edit() {
	[ $# -ge 1 ] || die "usage: dns.sh edit ZONE [-t TEMPLATE] [VAR=VALUE...]"
	zone=${1%.}
	shift
	[ -f "$RUN/vars" ] || die "no $RUN/vars: is the test bed up?"
	[ -f "$D/nsd.pid" ] || die "nsd is not running: run up.sh first"
	kind=$(zone_kind "$zone")
	case $kind in
	signed|unsigned|parent) ;;
	'')	die "zone $zone is not in $MANIFEST" ;;
	*)	die "zone $zone ($kind) has no zone data to edit" ;;
	esac
	[ "$kind" != parent ] || die "edit of the parent zone is not supported"
	tmpl=$ZT/$zone.zone
	# every edit starts from the template: earlier edits are dropped
	f=$D/overrides/$zone
	: > "$f.tmp"
	while [ $# -gt 0 ]; do
		case $1 in
		-t)	[ $# -ge 2 ] || die "-t needs a file"
			[ -f "$2" ] || die "no template $2"
			tmpl=$2
			shift 2 ;;
		[A-Z]*=*)
			k=${1%%=*}
			case $k in
			*[!A-Z0-9_]*) die "bad variable name $k" ;;
			esac
			printf '%s\n' "$1" >> "$f.tmp"
			shift ;;
		*)	die "bad argument $1 (VAR=VALUE or -t FILE)" ;;
		esac
	done
	while IFS= read -r l; do
		grep -q "@${l%%=*}@" "$tmpl" ||
		    echo "dns.sh: warning: $tmpl does not use @${l%%=*}@" >&2
	done < "$f.tmp"
	mv "$f.tmp" "$f"
	build_zone "$zone" "$tmpl"
	serial=$(cat "$D/serial/$zone")
	nsd-control -c "$D/nsd.conf" reload "$zone." >/dev/null ||
	    die "nsd-control reload $zone failed"
	i=0
	while :; do
		s=$(dig @"$NSD_ADDR" SOA "$zone" +short +norec +time=1 +tries=1 \
		    2>/dev/null | awk '{ print $3 }')
		[ "$s" != "$serial" ] || break
		i=$((i + 1))
		[ $i -lt $TRIES ] || die "nsd did not load serial $serial of $zone"
		sleep 0.1
	done
	unbound-control -c "$D/unbound.conf" flush_zone "$zone" >/dev/null ||
	    die "unbound-control flush_zone $zone failed"
	unbound-control -c "$D/unbound.conf" flush_bogus >/dev/null || true
	unbound-control -c "$D/unbound.conf" flush_negative >/dev/null || true
	echo "dns.sh: $zone: serial $serial loaded, unbound cache flushed"
}

case ${1:-} in
up)	up ;;
down)	down ;;
status)	status ;;
edit)	shift; edit "$@" ;;
*)	die "usage: dns.sh up|down|status|edit ZONE [VAR=VALUE...]" ;;
esac
