/*
 * test_dns_reply.c - raw DNS replies mapped to the answer of the query
 * (dns_reply.c): a table of packets, each row one cmocka test.
 *
 * Packets are hex with spaces between the parts.  Names used:
 *   EX  example.com            07 6578616d706c65 03 636f6d 00
 *   WWW www.example.com        03 777777 + EX
 * Header flags: 81a0 = QR RD RA AD, rcode NOERROR; 81a3 = same, NXDOMAIN.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "danests-internal.h"
#include "table.h"

#define EX	"07 6578616d706c65 03 636f6d 00 "
#define Q_MX	EX "000f 0001 "			/* question example.com MX */
#define Q_A	EX "0001 0001 "
#define H1(f)	"1234 " f " 0001 0000 0000 0000 "	/* one question */
#define H11(f)	"1234 " f " 0001 0001 0000 0000 "	/* + one answer */
/* MX 10 mx.example.com, owner and target compressed */
#define RR_MX	"c00c 000f 0001 0000012c 0007 000a 02 6d78 c00c "
#define OPT(t)	"00 0029 1000 " t " 0000 "	/* OPT, TTL t */

struct reply_case {
	const char *name;
	const char *qname;
	uint16_t qtype;
	const char *hex;
	enum dns_rcode rcode;
	danests_dnssec sec;
	size_t nrr;
	const char *cname;	/* NULL: none */
	const char *first;	/* MX target of rr[0], or NULL */
};

#define SEC	DANESTS_SEC_SECURE
#define INSEC	DANESTS_SEC_INSECURE
#define INDET	DANESTS_SEC_INDETERMINATE
#define ERR(n, q, t, hex) { n, q, t, hex, DNS_R_ERROR, INDET, 0, NULL, NULL }

static const struct reply_case cases[] = {
	/* Replies that answer the question. */
	{ "mx-secure", "example.com", DNS_T_MX, H11("81a0") Q_MX RR_MX,
	    DNS_R_OK, SEC, 1, NULL, "mx.example.com" },
	{ "mx-insecure", "example.com", DNS_T_MX, H11("8180") Q_MX RR_MX,
	    DNS_R_OK, INSEC, 1, NULL, "mx.example.com" },
	{ "mx-question-case", "example.com", DNS_T_MX,
	    H11("81a0") "07 4578416d506c45 03 436f4d 00 000f 0001 " RR_MX,
	    DNS_R_OK, SEC, 1, NULL, "mx.example.com" },
	{ "mx-query-trailing-dot", "Example.COM.", DNS_T_MX,
	    H11("81a0") Q_MX RR_MX, DNS_R_OK, SEC, 1, NULL,
	    "mx.example.com" },
	{ "mx-target-upper", "example.com", DNS_T_MX, H11("81a0") Q_MX
	    "c00c 000f 0001 0000012c 0007 000a 02 4d58 c00c",
	    DNS_R_OK, SEC, 1, NULL, "mx.example.com" },
	{ "null-mx", "example.com", DNS_T_MX, H11("81a0") Q_MX
	    "c00c 000f 0001 0000012c 0003 0000 00", DNS_R_OK, SEC, 1, NULL,
	    "" },
	{ "nodata", "example.com", DNS_T_MX, H1("81a0") Q_MX,
	    DNS_R_NODATA, SEC, 0, NULL, NULL },
	{ "nodata-with-opt", "example.com", DNS_T_MX,
	    "1234 81a0 0001 0000 0000 0001 " Q_MX OPT("00008000"),
	    DNS_R_NODATA, SEC, 0, NULL, NULL },
	{ "nxdomain-secure", "example.com", DNS_T_MX, H1("81a3") Q_MX,
	    DNS_R_NXDOMAIN, SEC, 0, NULL, NULL },
	{ "nxdomain-insecure", "example.com", DNS_T_MX, H1("8183") Q_MX,
	    DNS_R_NXDOMAIN, INSEC, 0, NULL, NULL },
	{ "servfail", "example.com", DNS_T_MX, H1("8182") Q_MX,
	    DNS_R_SERVFAIL, DANESTS_SEC_BOGUS, 0, NULL, NULL },
	{ "unrelated-owner-ignored", "example.com", DNS_T_MX,
	    H11("81a0") Q_MX
	    "03 6f7468 c014 000f 0001 0000012c 0004 000a c00c",
	    DNS_R_NODATA, SEC, 0, NULL, NULL },
	/* www CNAME host.example.com, host A 192.0.2.1 */
	{ "cname-chain", "www.example.com", DNS_T_A,
	    "1234 81a0 0001 0002 0000 0000 03 777777 " Q_A
	    "c00c 0005 0001 0000003c 0007 04 686f7374 c010 "
	    "c02d 0001 0001 0000012c 0004 c0000201",
	    DNS_R_OK, SEC, 1, "host.example.com", NULL },
	{ "cname-nxdomain", "www.example.com", DNS_T_A,
	    "1234 81a3 0001 0001 0000 0000 03 777777 " Q_A
	    "c00c 0005 0001 0000003c 0007 04 686f7374 c010",
	    DNS_R_NXDOMAIN, SEC, 0, "host.example.com", NULL },

	/* Replies to another question, or none: never NXDOMAIN. */
	ERR("no-question-nxdomain", "example.com", DNS_T_MX,
	    "1234 81a3 0000 0000 0000 0000"),
	ERR("no-question-noerror", "example.com", DNS_T_MX,
	    "1234 81a0 0000 0000 0000 0000"),
	ERR("other-name-nxdomain", "example.com", DNS_T_MX,
	    H1("81a3") "05 676d61696c 03 636f6d 00 000f 0001"),
	ERR("suffix-name-nxdomain", "www.example.com", DNS_T_MX,
	    H1("81a3") Q_MX),
	ERR("longer-name-nxdomain", "example.com", DNS_T_MX,
	    H1("81a3") "03 777777 " Q_MX),
	ERR("wrong-type-nxdomain", "example.com", DNS_T_MX,
	    H1("81a3") Q_A),
	ERR("wrong-type-answer", "example.com", DNS_T_TLSA,
	    H11("81a0") Q_MX RR_MX),
	ERR("wrong-class-nxdomain", "example.com", DNS_T_MX,
	    H1("81a3") EX "000f 0003"),
	ERR("two-questions", "example.com", DNS_T_MX,
	    "1234 81a3 0002 0000 0000 0000 " Q_MX Q_MX),
	ERR("servfail-other-name", "example.com", DNS_T_MX,
	    H1("8182") "05 676d61696c 03 636f6d 00 000f 0001"),

	/* Inconsistent headers and malformed packets. */
	ERR("empty", "example.com", DNS_T_MX, ""),
	ERR("short", "example.com", DNS_T_MX, "1234 81a3 00"),
	ERR("header-only", "example.com", DNS_T_MX, H1("81a3")),
	ERR("garbage-after-header", "example.com", DNS_T_MX,
	    H1("81a3") "ffff ffff ffff"),
	ERR("truncated-question", "example.com", DNS_T_MX,
	    H1("81a3") EX "000f"),
	ERR("truncated-answer", "example.com", DNS_T_MX,
	    H11("81a0") Q_MX "c00c 000f 0001 0000012c 0007 000a 02"),
	ERR("answer-count-too-big", "example.com", DNS_T_MX,
	    "1234 81a0 0001 0002 0000 0000 " Q_MX RR_MX),
	ERR("authority-count-too-big", "example.com", DNS_T_MX,
	    "1234 81a3 0001 0000 0001 0000 " Q_MX),
	ERR("counts-65535", "example.com", DNS_T_MX,
	    "1234 81a3 0001 ffff ffff ffff " Q_MX),
	ERR("trailing-octets", "example.com", DNS_T_MX, H1("81a3") Q_MX "00"),
	ERR("qr-clear", "example.com", DNS_T_MX, "1234 01a3 0001 0000 0000 0000 "
	    Q_MX),
	ERR("opcode-notify", "example.com", DNS_T_MX,
	    "1234 a0a3 0001 0000 0000 0000 " Q_MX),
	ERR("tc-set", "example.com", DNS_T_MX, H1("83a3") Q_MX),
	ERR("refused", "example.com", DNS_T_MX, H1("8185") Q_MX),
	ERR("formerr", "example.com", DNS_T_MX, H1("8181") Q_MX),
	ERR("opt-badvers", "example.com", DNS_T_MX,
	    "1234 81a0 0001 0000 0000 0001 " Q_MX OPT("01000000")),
	ERR("two-opt", "example.com", DNS_T_MX,
	    "1234 81a0 0001 0000 0000 0002 " Q_MX OPT("00000000")
	    OPT("00000000")),
	ERR("pointer-forward", "example.com", DNS_T_MX,
	    H11("81a0") Q_MX "c040 000f 0001 0000012c 0003 000a 00"),
	ERR("pointer-to-itself", "example.com", DNS_T_MX,
	    H11("81a0") Q_MX "c01d 000f 0001 0000012c 0003 000a 00"),
	/* a name reached through 200 pointers (see maze()) */
	{ "pointer-maze", "example.com", DNS_T_MX, NULL, DNS_R_ERROR, INDET,
	    0, NULL, NULL },
	ERR("label-type-01", "example.com", DNS_T_MX,
	    H1("81a3") "41 6578616d706c65 03 636f6d 00 000f 0001"),
	ERR("mx-rdata-trailing", "example.com", DNS_T_MX, H11("81a0") Q_MX
	    "c00c 000f 0001 0000012c 0008 000a 02 6d78 c00c 00"),
	ERR("mx-rdata-short", "example.com", DNS_T_MX, H11("81a0") Q_MX
	    "c00c 000f 0001 0000012c 0002 000a"),
	ERR("nxdomain-with-records", "example.com", DNS_T_MX,
	    H11("81a3") Q_MX RR_MX),
	/* a CNAME b.example.com, b CNAME a.example.com */
	ERR("cname-loop", "a.example.com", DNS_T_A,
	    "1234 81a0 0001 0002 0000 0000 01 61 " Q_A
	    "c00c 0005 0001 0000003c 0004 01 62 c00e "
	    "c02b 0005 0001 0000003c 0002 c00c"),
	ERR("two-cnames", "www.example.com", DNS_T_A,
	    "1234 81a0 0001 0002 0000 0000 03 777777 " Q_A
	    "c00c 0005 0001 0000003c 0004 01 61 c010 "
	    "c00c 0005 0001 0000003c 0004 01 62 c010"),
	ERR("bad-query-name", "a..example.com", DNS_T_MX, H1("81a3") Q_MX),
};

/* unhex - the packet of a row, spaces ignored */
static size_t
unhex(const char *s, unsigned char *out, size_t outlen)
{
	size_t n = 0;
	int hi = -1, v;

	for (; *s; s++) {
		if (*s == ' ')
			continue;
		v = hex_value(*s);
		assert_true(v >= 0);
		if (hi < 0) {
			hi = v;
			continue;
		}
		assert_true(n < outlen);
		out[n++] = (unsigned char)(hi << 4 | v);
		hi = -1;
	}
	assert_true(hi < 0);
	return n;
}

/*
 * maze - the pointer-maze packet: a TXT record whose RDATA is 200
 * pointers, each to the one before, the first to the question's name;
 * then an MX record whose owner is a pointer to the last of them.
 */
static size_t
maze(unsigned char *out, size_t outlen)
{
	static const char head[] = "1234 81a0 0001 0002 0000 0000 " Q_MX
	    "c00c 0010 0001 0000012c 0190";	/* TXT, 400 octets */
	size_t n, i, p;

	n = unhex(head, out, outlen);
	assert_true(n + 400 + 15 <= outlen);
	for (i = 0, p = 12; i < 200; i++, n += 2) {
		out[n] = (unsigned char)(0xc0 | p >> 8);
		out[n + 1] = (unsigned char)(p & 0xff);
		p = n;
	}
	/* owner: pointer to the last one; MX 10 with the root target */
	out[n++] = (unsigned char)(0xc0 | p >> 8);
	out[n++] = (unsigned char)(p & 0xff);
	n += unhex("000f 0001 0000012c 0003 000a 00", out + n, outlen - n);
	return n;
}

/* run_reply - one row of cases */
static void
run_reply(void **state)
{
	const struct reply_case *c = *state;
	unsigned char pkt[1024];
	struct dns_answer *a;
	size_t len;

	if (c->hex != NULL)
		len = unhex(c->hex, pkt, sizeof(pkt));
	else
		len = maze(pkt, sizeof(pkt));
	a = calloc(1, sizeof(*a));
	assert_non_null(a);
	a->qname = strdup(c->qname);
	a->qtype = c->qtype;
	/* Exact length, so ASan catches any read past the packet. */
	{
		unsigned char *exact = malloc(len ? len : 1);

		assert_non_null(exact);
		memcpy(exact, pkt, len);
		dns_reply_map(a, exact, len);
		free(exact);
	}
	if (a->rcode != c->rcode || a->sec != c->sec)
		fail_msg("%s: rcode %d sec %d (%s), expected rcode %d sec %d",
		    c->name, a->rcode, a->sec, a->why, c->rcode, c->sec);
	assert_int_equal(a->nrr, c->nrr);
	if (c->cname == NULL)
		assert_null(a->cname);
	else {
		assert_non_null(a->cname);
		assert_string_equal(a->cname, c->cname);
	}
	if (c->first != NULL) {
		assert_true(a->nrr > 0);
		assert_non_null(a->rr[0].target);
		assert_string_equal(a->rr[0].target, c->first);
		assert_int_equal(a->rr[0].pref, c->first[0] ? 10 : 0);
		assert_int_equal(a->min_ttl, 300);
	}
	if (c->rcode == DNS_R_ERROR)
		assert_true(a->why[0] != '\0');
	else if (c->rcode != DNS_R_SERVFAIL)
		assert_string_equal(a->why, "");
	if (strcmp(c->name, "cname-chain") == 0) {
		assert_int_equal(a->rr[0].rdlen, 4);
		assert_memory_equal(a->rr[0].rdata, "\xc0\x00\x02\x01", 4);
		assert_int_equal(a->min_ttl, 60);
	}
	dns_answer_free(a);
}

int
main(void)
{
	return run_table("dns_reply", cases, NROWS(cases), sizeof(cases[0]),
	    run_reply);
}
