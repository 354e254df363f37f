/*
 * fuzz_dns_reply.c - libFuzzer target for the DNS reply mapping
 * (dns_reply.c): the first input octet picks the query, the rest is one
 * raw reply.
 *
 * Octet 0: bits 0-2 the type (MX A AAAA TLSA TXT, then MX again), bits
 * 3-4 the name (example.com, www.example.com, _25._tcp.mx.example.com,
 * EXAMPLE.com. written with a trailing dot).
 *
 * Invariants, checked against the packet independently of the parser:
 * a reply that is not an exact answer to the query (QR set, opcode 0,
 * TC clear, one question equal to the query in name, type and class IN)
 * never maps to anything but a DNS error; an answer's rcode is the
 * header's; secure needs the AD bit; an error carries no record.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const uint16_t types[8] = {
	DNS_T_MX, DNS_T_A, DNS_T_AAAA, DNS_T_TLSA, DNS_T_TXT,
	DNS_T_MX, DNS_T_MX, DNS_T_MX,
};

static const struct {
	const char *text;
	const char *wire;	/* lower case, with its root octet */
	size_t len;
} names[4] = {
	{ "example.com", "\7example\3com", 13 },
	{ "www.example.com", "\3www\7example\3com", 17 },
	{ "_25._tcp.mx.example.com", "\3_25\4_tcp\2mx\7example\3com", 25 },
	{ "EXAMPLE.com.", "\7example\3com", 13 },
};

/* question_matches - the question, read without the parser under test */
static int
question_matches(const uint8_t *m, size_t len, const char *wire, size_t wlen,
    uint16_t qtype)
{
	size_t i;
	uint8_t c;

	if (len < 12 || (m[4] << 8 | m[5]) != 1 || len < 12 + wlen + 4)
		return 0;
	for (i = 0; i < wlen; i++) {
		c = m[12 + i];
		if (c >= 'A' && c <= 'Z')
			c += 32;
		if (c != (uint8_t)wire[i])
			return 0;
	}
	/* wire[] has its root octet as the string's NUL. */
	return (m[12 + wlen - 1] == 0) &&
	    (m[12 + wlen] << 8 | m[13 + wlen]) == qtype &&
	    (m[14 + wlen] << 8 | m[15 + wlen]) == 1;
}

/* LLVMFuzzerTestOneInput - map one reply and check the invariants */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct dns_answer *a;
	const uint8_t *m;
	size_t len, i, w;
	unsigned flags = 0, rcode;

	if (size < 1)
		return 0;
	if ((a = calloc(1, sizeof(*a))) == NULL)
		return 0;
	w = data[0] >> 3 & 3;
	if ((a->qname = strdup(names[w].text)) == NULL) {
		free(a);
		return 0;
	}
	a->qtype = types[data[0] & 7];
	m = data + 1;
	len = size - 1;
	dns_reply_map(a, m, len);

	if (a->rcode == DNS_R_ERROR) {
		if (a->nrr != 0 || a->rr != NULL || a->cname != NULL ||
		    a->why[0] == '\0' || a->sec != DANESTS_SEC_INDETERMINATE)
			abort();
		dns_answer_free(a);
		return 0;
	}
	/* Anything else answers exactly the question asked. */
	if (len < 12)
		abort();
	flags = (unsigned)m[2] << 8 | m[3];
	rcode = flags & 0x0f;
	if (!(flags & 0x8000) || (flags >> 11 & 0x0f) != 0 || (flags & 0x0200))
		abort();
	if (!question_matches(m, len, names[w].wire, names[w].len,
	    a->qtype))
		abort();
	switch (a->rcode) {
	case DNS_R_OK:
		if (rcode != 0 || a->nrr == 0)
			abort();
		break;
	case DNS_R_NODATA:
		if (rcode != 0 || a->nrr != 0)
			abort();
		break;
	case DNS_R_NXDOMAIN:
		if (rcode != 3 || a->nrr != 0)
			abort();
		break;
	case DNS_R_SERVFAIL:
		if (rcode != 2 || a->sec != DANESTS_SEC_BOGUS || a->nrr != 0)
			abort();
		break;
	default:
		abort();
	}
	if (a->rcode != DNS_R_SERVFAIL && a->sec != (flags & 0x0020 ?
	    DANESTS_SEC_SECURE : DANESTS_SEC_INSECURE))
		abort();
	for (i = 0; i < a->nrr; i++) {
		if (a->rr[i].type != a->qtype || a->rr[i].rdlen > len)
			abort();
		if (a->qtype == DNS_T_MX && (a->rr[i].target == NULL ||
		    strlen(a->rr[i].target) >= DANESTS_NAME_MAX))
			abort();
	}
	if (a->cname != NULL && (a->cname[0] == '\0' ||
	    strlen(a->cname) >= DANESTS_NAME_MAX))
		abort();
	dns_answer_free(a);
	return 0;
}
