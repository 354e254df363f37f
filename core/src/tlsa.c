/*
 * tlsa.c - TLSA RDATA (RFC 6698 2.1) and its usability for SMTP
 *
 * RFC 7672 3.1: SMTP clients use DANE-TA(2) and DANE-EE(3) only; PKIX-TA(0)
 * and PKIX-EE(1) are unusable.  Selectors Cert(0)/SPKI(1) and matching
 * types Full(0)/SHA2-256(1)/SHA2-512(2) are supported.  A digest whose
 * length is wrong for its matching type can never match: RFC 7671 7 makes
 * such a record unusable, not an error for the RRset.
 */
#include "danests-internal.h"

#include <stdlib.h>
#include <string.h>

/* tlsa_usable - classify a record's parameters and data: usable by an
 * SMTP client (RFC 7672 3.1), unusable, or malformed (RFC 7671 7) */
enum tlsa_check
tlsa_usable(uint8_t usage, uint8_t selector, uint8_t mtype,
    const unsigned char *data, size_t dlen, const char **why)
{
	switch (mtype) {
	case 1:
		if (dlen != 32) {
			*why = "SHA2-256 digest is not 32 octets";
			return TLSA_MALFORMED;
		}
		break;
	case 2:
		if (dlen != 64) {
			*why = "SHA2-512 digest is not 64 octets";
			return TLSA_MALFORMED;
		}
		break;
	case 0:
		/* A full certificate or SPKI: DER, so at least a SEQUENCE
		 * header; OpenSSL rejects it later if it does not parse. */
		if (data == NULL || dlen < 2 || data[0] != 0x30) {
			*why = "full value is not a DER SEQUENCE";
			return TLSA_MALFORMED;
		}
		break;
	default:
		*why = "unsupported matching type";
		return TLSA_UNUSABLE;
	}
	if (usage != 2 && usage != 3) {
		*why = usage < 2 ? "PKIX usage is unusable for SMTP "
		    "(RFC 7672 3.1.3)" : "unknown certificate usage";
		return TLSA_UNUSABLE;
	}
	if (selector > 1) {
		*why = "unknown selector";
		return TLSA_UNUSABLE;
	}
	if (data == NULL) {
		*why = "no certificate association data";
		return TLSA_MALFORMED;
	}
	*why = NULL;
	return TLSA_USABLE;
}

/* tlsa_parse - split raw RDATA and classify it */
enum tlsa_check
tlsa_parse(const unsigned char *rdata, size_t len, struct danests_tlsa *out,
    const char **why)
{
	enum tlsa_check c;
	size_t dlen;

	memset(out, 0, sizeof(*out));
	if (rdata == NULL || len < 4) {
		*why = "TLSA RDATA shorter than 4 octets";
		return TLSA_MALFORMED;
	}
	out->usage = rdata[0];
	out->selector = rdata[1];
	out->mtype = rdata[2];
	dlen = len - 3;
	c = tlsa_usable(out->usage, out->selector, out->mtype, rdata + 3, dlen,
	    why);
	if (c != TLSA_USABLE)
		return c;
	if ((out->data = malloc(dlen)) == NULL) {
		*why = "out of memory";
		return TLSA_NOMEM;
	}
	memcpy(out->data, rdata + 3, dlen);
	out->len = dlen;
	*why = NULL;
	return TLSA_USABLE;
}
