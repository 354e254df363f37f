/*
 * dns_reply.c - map one raw DNS reply to the answer of the query asked
 *
 * A pure function over the wire bytes of a reply (RFC 1035 4.1) and the
 * query (name, type): no I/O, no resolver library, so it can be tested
 * with tables of packets and fuzzed.  The resolver transport (dns.c)
 * matches the ID; everything else about the reply is checked here.
 *
 * A reply counts only when it answers the question asked: QR set, opcode
 * QUERY, TC clear, exactly one question whose name (case-insensitive,
 * RFC 4343), type and class IN equal the query, every section parsing
 * exactly to the end of the message, at most one OPT record (RFC 6891
 * 6.1.1).  Anything else is a DNS error (indeterminate), never NXDOMAIN
 * and never "no record": an answer to another question says nothing
 * about this one.
 *
 * Status mapping (doc/design.md rule 1), on a matching reply:
 *   NOERROR/NXDOMAIN with AD      -> secure
 *   NOERROR/NXDOMAIN without AD   -> insecure
 *   SERVFAIL                      -> bogus (a validating resolver says so
 *                                    for bogus data; lame zones look alike)
 *   any other rcode               -> indeterminate
 */
#include "danests-internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define WIRE_NAME_MAX	255	/* RFC 1035 2.3.4 */
#define WIRE_PTR_MAX	127	/* pointers in one name: one per label */
#define HDR_LEN		12
#define RR_MIN_LEN	11	/* root owner + type, class, TTL, rdlength */
#define CNAME_CHAIN_MAX	8	/* RFC 7672 2.2.1 expects short chains */
#define CLASS_IN	1
#define TYPE_OPT	41
#define RCODE_NOERROR	0
#define RCODE_SERVFAIL	2
#define RCODE_NXDOMAIN	3

/* One record of the answer section, by offsets into the message. */
struct wire_rr {
	size_t owner;		/* offset of the owner name */
	uint16_t type;
	uint16_t class;
	uint32_t ttl;
	size_t rdoff;		/* offset of the RDATA */
	uint16_t rdlen;
};

/* get16, get32 - network-order integers; the caller checked the length */
static uint16_t
get16(const unsigned char *p)
{
	return (uint16_t)(p[0] << 8 | p[1]);
}

static uint32_t
get32(const unsigned char *p)
{
	return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
	    (uint32_t)p[2] << 8 | p[3];
}

/*
 * wire_name - copy the name at *off uncompressed into out (at most
 * WIRE_NAME_MAX octets) and move *off past the name as stored there.
 * Compression pointers (RFC 1035 4.1.4) must point before the labels
 * that lead to them, so every name ends, and are at most WIRE_PTR_MAX,
 * so every name ends soon.  Returns the length of out, 0 when the name
 * is malformed.
 */
static size_t
wire_name(const unsigned char *m, size_t len, size_t *off,
    unsigned char *out)
{
	size_t p = *off, seg = *off, o = 0, end = 0, ptr;
	unsigned c, jumps = 0;

	for (;;) {
		if (p >= len)
			return 0;
		c = m[p];
		if ((c & 0xc0) == 0xc0) {
			if (p + 1 >= len)
				return 0;
			ptr = (size_t)(c & 0x3f) << 8 | m[p + 1];
			if (ptr >= seg || ++jumps > WIRE_PTR_MAX)
				return 0;	/* forward, looping or a maze */
			if (end == 0)
				end = p + 2;
			p = seg = ptr;
			continue;
		}
		if ((c & 0xc0) != 0)
			return 0;		/* RFC 6891 obsoletes 0x40 */
		if (o + 1 + c > WIRE_NAME_MAX || p + 1 + c > len)
			return 0;
		memcpy(out + o, m + p, 1 + c);
		o += 1 + c;
		p += 1 + c;
		if (c == 0)
			break;
	}
	*off = end ? end : p;
	return o;
}

/* wire_name_eq - two uncompressed wire names, ASCII case-insensitive */
static bool
wire_name_eq(const unsigned char *a, size_t alen, const unsigned char *b,
    size_t blen)
{
	size_t i;
	unsigned char x, y;

	if (alen != blen)
		return false;
	/* Length octets are below 64, so folding them changes nothing. */
	for (i = 0; i < alen; i++) {
		x = a[i] >= 'A' && a[i] <= 'Z' ? a[i] + 32 : a[i];
		y = b[i] >= 'A' && b[i] <= 'Z' ? b[i] + 32 : b[i];
		if (x != y)
			return false;
	}
	return true;
}

/*
 * wire_name_text - presentation form of an uncompressed wire name: lower
 * case, no trailing dot, "" for the root, '.' ';' '(' ')' '\\' escaped
 * with a backslash and other octets outside '!'..'~' as \DDD.  -1 when
 * it does not fit outlen.
 */
static int
wire_name_text(const unsigned char *w, char *out, size_t outlen)
{
	size_t o = 0, i, n;
	unsigned char c;
	int k;

	while ((n = *w++) != 0) {
		if (o > 0) {
			if (o + 1 >= outlen)
				return -1;
			out[o++] = '.';
		}
		for (i = 0; i < n; i++) {
			c = w[i];
			if (o + 5 > outlen)
				return -1;
			if (c == '.' || c == ';' || c == '(' || c == ')' ||
			    c == '\\') {
				out[o++] = '\\';
				out[o++] = (char)c;
			} else if (c < '!' || c > '~') {
				k = snprintf(out + o, outlen - o, "\\%03u", c);
				o += (size_t)k;
			} else {
				out[o++] = (char)(c >= 'A' && c <= 'Z' ?
				    c + 32 : c);
			}
		}
		w += n;
	}
	if (o >= outlen)
		return -1;
	out[o] = '\0';
	return 0;
}

/*
 * text_wire_name - wire form of a presentation name (trailing dot
 * optional, \X and \DDD escapes, "" and "." the root).  Returns the
 * length, 0 when malformed.
 */
static size_t
text_wire_name(const char *s, unsigned char *out)
{
	size_t o = 1, lab = 0;	/* out[lab]: length of the current label */
	unsigned n = 0, v;
	unsigned char c;

	if (s[0] == '.' && s[1] == '\0')
		s++;
	out[0] = 0;
	for (;;) {
		if (*s == '\0' || *s == '.') {
			if (n == 0)
				return *s == '\0' && o == 1 ? 1 : 0;
			out[lab] = (unsigned char)n;
			if (*s == '\0' || s[1] == '\0')
				break;
			s++;
			if (o >= WIRE_NAME_MAX)
				return 0;
			lab = o;
			out[o++] = 0;
			n = 0;
			continue;
		}
		if (*s != '\\')
			c = (unsigned char)*s++;
		else if (s[1] >= '0' && s[1] <= '9') {
			if (!(s[2] >= '0' && s[2] <= '9' && s[3] >= '0' &&
			    s[3] <= '9'))
				return 0;
			v = (unsigned)(s[1] - '0') * 100 +
			    (unsigned)(s[2] - '0') * 10 + (unsigned)(s[3] - '0');
			if (v > 255)
				return 0;
			c = (unsigned char)v;
			s += 4;
		} else if (s[1] != '\0') {
			c = (unsigned char)s[1];
			s += 2;
		} else
			return 0;
		if (n == 63 || o + 1 >= WIRE_NAME_MAX)
			return 0;
		out[o++] = c;
		n++;
	}
	out[o++] = 0;		/* o < WIRE_NAME_MAX here */
	return o;
}

/* wire_rr_skip - parse one record at *off; fill r when not NULL */
static int
wire_rr_skip(const unsigned char *m, size_t len, size_t *off,
    struct wire_rr *r)
{
	unsigned char name[WIRE_NAME_MAX];
	size_t owner = *off;
	uint16_t rdlen;

	if (wire_name(m, len, off, name) == 0 || len - *off < 10)
		return -1;
	rdlen = get16(m + *off + 8);
	if (len - *off - 10 < rdlen)
		return -1;
	if (r != NULL) {
		r->owner = owner;
		r->type = get16(m + *off);
		r->class = get16(m + *off + 2);
		r->ttl = get32(m + *off + 4);
		r->rdoff = *off + 10;
		r->rdlen = rdlen;
	}
	*off += 10 + (size_t)rdlen;
	return 0;
}

/* reply_fail - the reply says nothing about the question: DNS error */
static void
reply_fail(struct dns_answer *a, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void
reply_fail(struct dns_answer *a, const char *fmt, ...)
{
	va_list ap;
	size_t i;

	/* An error carries no data: nothing of it may be used. */
	for (i = 0; i < a->nrr; i++) {
		free(a->rr[i].target);
		free(a->rr[i].rdata);
	}
	free(a->rr);
	a->rr = NULL;
	a->nrr = 0;
	free(a->cname);
	a->cname = NULL;
	a->min_ttl = 0;
	a->rcode = DNS_R_ERROR;
	a->sec = DANESTS_SEC_INDETERMINATE;
	va_start(ap, fmt);
	vsnprintf(a->why, sizeof(a->why), fmt, ap);
	va_end(ap);
}

/* ttl_min - note one TTL in a->min_ttl (0: none yet) */
static void
ttl_min(struct dns_answer *a, uint32_t ttl)
{
	if (a->min_ttl == 0 || ttl < a->min_ttl)
		a->min_ttl = ttl;
}

/* rr_copy - append one record of the asked type; -1 memory, -2 malformed */
static int
rr_copy(struct dns_answer *a, const unsigned char *m, const struct wire_rr *w)
{
	unsigned char name[WIRE_NAME_MAX];
	char text[DANESTS_NAME_MAX];
	struct dns_rr *n, *r;
	size_t off;

	if ((n = realloc(a->rr, (a->nrr + 1) * sizeof(*n))) == NULL)
		return -1;
	a->rr = n;
	r = &a->rr[a->nrr];
	memset(r, 0, sizeof(*r));
	r->type = w->type;
	r->ttl = w->ttl;
	if (w->type == DNS_T_MX) {
		/* RFC 1035 3.3.9: preference, exchange; nothing after it. */
		off = w->rdoff + 2;
		if (w->rdlen < 3 || wire_name(m, w->rdoff + w->rdlen, &off,
		    name) == 0 || off != w->rdoff + w->rdlen ||
		    wire_name_text(name, text, sizeof(text)) != 0)
			return -2;
		r->pref = get16(m + w->rdoff);
		if ((r->target = strdup(text)) == NULL)
			return -1;
	} else {
		if ((r->rdata = malloc(w->rdlen ? w->rdlen : 1)) == NULL)
			return -1;
		memcpy(r->rdata, m + w->rdoff, w->rdlen);
		r->rdlen = w->rdlen;
	}
	a->nrr++;
	return 0;
}

/*
 * dns_reply_map - fill a (whose qname and qtype are the query) from one
 * raw reply: rcode, sec, why, the records of qtype at the end of the
 * CNAME chain (RFC 1034 3.6.2), the chain's final owner and the smallest
 * TTL.  Any reply that does not answer the query is DNS_R_ERROR.
 */
void
dns_reply_map(struct dns_answer *a, const unsigned char *m, size_t len)
{
	unsigned char qwire[WIRE_NAME_MAX], owner[WIRE_NAME_MAX];
	unsigned char name[WIRE_NAME_MAX], cur[WIRE_NAME_MAX];
	char text[DANESTS_NAME_MAX];
	struct wire_rr *ans = NULL;
	size_t qlen, olen, nlen, clen, off, i, hops, found;
	uint16_t flags, qd, an, ns, ar, qtype, qclass;
	unsigned rcode, nopt = 0;
	int rv;

	a->rcode = DNS_R_ERROR;
	a->sec = DANESTS_SEC_INDETERMINATE;
	a->min_ttl = 0;
	if (m == NULL || len < HDR_LEN) {
		reply_fail(a, "reply shorter than a DNS header");
		return;
	}
	flags = get16(m + 2);
	qd = get16(m + 4);
	an = get16(m + 6);
	ns = get16(m + 8);
	ar = get16(m + 10);
	rcode = flags & 0x0f;
	if (!(flags & 0x8000)) {
		reply_fail(a, "not a reply (QR clear)");
		return;
	}
	if ((flags >> 11 & 0x0f) != 0) {
		reply_fail(a, "reply opcode %u", flags >> 11 & 0x0f);
		return;
	}
	if (flags & 0x0200) {
		reply_fail(a, "truncated reply (TC set)");
		return;
	}
	if (qd != 1) {
		reply_fail(a, "reply has %u questions, not 1", qd);
		return;
	}
	if ((qlen = text_wire_name(a->qname, qwire)) == 0) {
		reply_fail(a, "query name not valid");
		return;
	}
	/* The question (RFC 1035 4.1.2) must be the one asked. */
	off = HDR_LEN;
	if ((olen = wire_name(m, len, &off, owner)) == 0 || len - off < 4) {
		reply_fail(a, "malformed question");
		return;
	}
	qtype = get16(m + off);
	qclass = get16(m + off + 2);
	off += 4;
	if (!wire_name_eq(owner, olen, qwire, qlen)) {
		reply_fail(a, "reply to a question for another name");
		return;
	}
	if (qtype != a->qtype || qclass != CLASS_IN) {
		reply_fail(a, "reply to a question for type %u class %u",
		    qtype, qclass);
		return;
	}
	/* Every record must parse; each takes at least RR_MIN_LEN octets. */
	if (((size_t)an + ns + ar) * RR_MIN_LEN > len - off) {
		reply_fail(a, "malformed reply (record counts)");
		return;
	}
	if (an > 0 && (ans = calloc(an, sizeof(*ans))) == NULL) {
		reply_fail(a, "out of memory");
		return;
	}
	for (i = 0; i < (size_t)an + ns + ar; i++) {
		struct wire_rr r;

		if (wire_rr_skip(m, len, &off, &r) != 0) {
			reply_fail(a, "malformed reply (record %zu)", i + 1);
			goto out;
		}
		if (i < an)
			ans[i] = r;
		else if (r.type == TYPE_OPT && i >= (size_t)an + ns) {
			/* RFC 6891 6.1.1-6.1.3: one OPT, owner root. */
			if (++nopt > 1 || m[r.owner] != 0) {
				reply_fail(a, "malformed OPT record");
				goto out;
			}
			rcode |= (r.ttl >> 24) << 4;
		}
	}
	if (off != len) {
		reply_fail(a, "%zu octets after the reply", len - off);
		goto out;
	}
	if (rcode == RCODE_SERVFAIL) {
		a->rcode = DNS_R_SERVFAIL;
		a->sec = DANESTS_SEC_BOGUS;
		strlcpy(a->why, "SERVFAIL", sizeof(a->why));
		goto out;
	}
	if (rcode != RCODE_NOERROR && rcode != RCODE_NXDOMAIN) {
		reply_fail(a, "rcode %u", rcode);
		goto out;
	}

	/* Follow the CNAME chain from the question (RFC 1034 3.6.2). */
	memcpy(cur, qwire, qlen);
	clen = qlen;
	for (hops = 0;; hops++) {
		struct wire_rr *c = NULL;

		for (i = 0, found = 0; i < an; i++) {
			off = ans[i].owner;
			if (ans[i].type != DNS_T_CNAME ||
			    ans[i].class != CLASS_IN ||
			    (olen = wire_name(m, len, &off, owner)) == 0 ||
			    !wire_name_eq(owner, olen, cur, clen))
				continue;
			found++;
			c = &ans[i];
		}
		if (found == 0)
			break;
		if (found > 1) {
			reply_fail(a, "several CNAME records for one name");
			goto out;
		}
		if (hops == CNAME_CHAIN_MAX) {
			reply_fail(a, "CNAME chain too long");
			goto out;
		}
		off = c->rdoff;
		if ((nlen = wire_name(m, c->rdoff + c->rdlen, &off, name)) ==
		    0 || off != c->rdoff + c->rdlen || nlen == 1) {
			/* (a CNAME to the root names no host) */
			reply_fail(a, "malformed CNAME record");
			goto out;
		}
		memcpy(cur, name, nlen);
		clen = nlen;
		ttl_min(a, c->ttl);
	}
	if (!wire_name_eq(cur, clen, qwire, qlen)) {
		if (wire_name_text(cur, text, sizeof(text)) != 0 ||
		    (a->cname = strdup(text)) == NULL) {
			reply_fail(a, "CNAME target not usable");
			goto out;
		}
	}

	/* The records of the asked type at the final owner. */
	for (i = 0; i < an; i++) {
		off = ans[i].owner;
		if (ans[i].type != a->qtype || ans[i].class != CLASS_IN ||
		    (olen = wire_name(m, len, &off, owner)) == 0 ||
		    !wire_name_eq(owner, olen, cur, clen))
			continue;
		if ((rv = rr_copy(a, m, &ans[i])) != 0) {
			reply_fail(a, rv == -1 ? "out of memory" :
			    "malformed record");
			goto out;
		}
		ttl_min(a, ans[i].ttl);
	}
	if (a->nrr > 0 && rcode == RCODE_NXDOMAIN) {
		reply_fail(a, "NXDOMAIN with records of the asked type");
		goto out;
	}
	a->sec = flags & 0x0020 ? DANESTS_SEC_SECURE : DANESTS_SEC_INSECURE;
	if (a->nrr > 0)
		a->rcode = DNS_R_OK;
	else if (rcode == RCODE_NXDOMAIN)
		a->rcode = DNS_R_NXDOMAIN;
	else
		a->rcode = DNS_R_NODATA;
out:
	free(ans);
}
