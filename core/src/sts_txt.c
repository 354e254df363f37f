/*
 * sts_txt.c - the "_mta-sts" TXT record (RFC 8461 3.1)
 *
 * The record tells a sender that the domain has an MTA-STS policy and
 * which version (id) of it is current:
 *
 *	sts-text-record = sts-version 1*(sts-field-delim sts-field)
 *			  [sts-field-delim]
 *	sts-field	= sts-id / sts-extension
 *	sts-field-delim = *WSP ";" *WSP
 *	sts-version	= %s"v=STSv1"
 *	sts-id		= %s"id=" 1*32(ALPHA / DIGIT)
 *	sts-extension	= sts-ext-name "=" sts-ext-value
 *	sts-ext-name	= (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *	sts-ext-value	= 1*(%x21-3A / %x3C / %x3E-7E)
 *
 * Choices where the text leaves room (each covered by the unit tests):
 *  - "v=STSv1" is matched case-sensitively (%s, RFC 7405) and must be the
 *    very first bytes: leading white space or "v=stsv1" make a record that
 *    "does not begin with v=STSv1" and it is discarded (NOTFOUND).  It
 *    must be followed by a delimiter or the end ("v=STSv10" is not ours).
 *  - A record that begins with v=STSv1 but breaks the grammar (empty
 *    field ";;", bad extension, id too long or missing) is PERM: RFC 8461
 *    3.1 says a syntactically invalid record means no policy, and the
 *    caller reports it as sts-policy-invalid.
 *  - Unknown fields are ignored, but must be well formed (3.1: parsers
 *    accept "syntactically valid" records with extra pairs).
 *  - Field names are case-sensitive: "ID=x" is an unknown extension, so
 *    the record then lacks its id.
 *  - A second id field is PERM: two ids would make the "has the policy
 *    changed" check of 3.3 ambiguous.
 *  - White space after the last field without a ";" is tolerated: it is
 *    the *WSP of an omitted final sts-field-delim and cannot be misread.
 *  - A NUL or any control byte in the record breaks the grammar (PERM).
 */
#include "danests-internal.h"

#include <stdlib.h>
#include <string.h>

#define STS_TXT_VERSION		"v=STSv1"
#define STS_TXT_VERSION_LEN	(sizeof(STS_TXT_VERSION) - 1)
#define STS_EXT_NAME_MAX	32
#define TXT_RDATA_MAX		65535	/* RDLENGTH is 16 bits (RFC 1035 3.2.1) */

/* is_ext_value_char - %x21-3A / %x3C / %x3E-7E (RFC 8461 3.1) */
static int
is_ext_value_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != ';' && c != '=';
}

/* sts_txt_is_v1 - does the record begin with the v=STSv1 field? */
static int
sts_txt_is_v1(const char *txt, size_t len)
{
	if (len < STS_TXT_VERSION_LEN ||
	    memcmp(txt, STS_TXT_VERSION, STS_TXT_VERSION_LEN) != 0)
		return 0;
	/* The version is a whole field: "v=STSv1x" is some other record. */
	return len == STS_TXT_VERSION_LEN ||
	    txt[STS_TXT_VERSION_LEN] == ';' ||
	    is_wsp((unsigned char)txt[STS_TXT_VERSION_LEN]);
}

/* sts_txt_fields - check the fields after "v=STSv1", id into id[33] */
static danests_status
sts_txt_fields(const char *txt, size_t len, char *id, const char **why)
{
	size_t i, start, nlen, vlen;
	int have_id = 0;

	i = STS_TXT_VERSION_LEN;
	for (;;) {
		/* sts-field-delim = *WSP ";" *WSP, or the end. */
		while (i < len && is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len)
			break;
		if (txt[i] != ';') {
			*why = "STSv1 record: expected \";\" between fields";
			return DANESTS_PERM;
		}
		i++;
		while (i < len && is_wsp((unsigned char)txt[i]))
			i++;
		if (i == len)
			break;		/* optional final delimiter */

		/* sts-field: name "=" value */
		start = i;
		while (i < len && txt[i] != '=' && txt[i] != ';' &&
		    !is_wsp((unsigned char)txt[i]))
			i++;
		nlen = i - start;
		if (nlen == 0) {
			*why = "STSv1 record: empty field";
			return DANESTS_PERM;
		}
		if (i == len || txt[i] != '=') {
			*why = "STSv1 record: field without \"=\"";
			return DANESTS_PERM;
		}
		i++;
		if (nlen == 2 && memcmp(txt + start, "id", 2) == 0) {
			const char *v = txt + i;

			while (i < len && is_alnum((unsigned char)txt[i]))
				i++;
			vlen = (size_t)(txt + i - v);
			if (vlen == 0) {
				*why = "STSv1 record: empty id";
				return DANESTS_PERM;
			}
			if (vlen > DANESTS_STS_ID_MAX) {
				*why = "STSv1 record: id longer than 32";
				return DANESTS_PERM;
			}
			if (i < len && txt[i] != ';' &&
			    !is_wsp((unsigned char)txt[i])) {
				*why = "STSv1 record: id not alphanumeric";
				return DANESTS_PERM;
			}
			if (have_id) {
				*why = "STSv1 record: more than one id";
				return DANESTS_PERM;
			}
			have_id = 1;
			memcpy(id, v, vlen);
			id[vlen] = '\0';
			continue;
		}

		/* sts-extension: checked, then ignored (3.1). */
		if (nlen > STS_EXT_NAME_MAX ||
		    !is_alnum((unsigned char)txt[start])) {
			*why = "STSv1 record: bad field name";
			return DANESTS_PERM;
		}
		for (; start < i - 1; start++) {
			unsigned char c = (unsigned char)txt[start];

			if (!is_alnum(c) && c != '_' && c != '-' && c != '.') {
				*why = "STSv1 record: bad field name";
				return DANESTS_PERM;
			}
		}
		start = i;
		while (i < len && is_ext_value_char((unsigned char)txt[i]))
			i++;
		if (i == start) {
			*why = "STSv1 record: empty field value";
			return DANESTS_PERM;
		}
		if (i < len && txt[i] != ';' && !is_wsp((unsigned char)txt[i])) {
			*why = "STSv1 record: bad character in field value";
			return DANESTS_PERM;
		}
	}
	if (!have_id) {
		*why = "STSv1 record without id";
		return DANESTS_PERM;
	}
	return DANESTS_OK;
}

/* sts_txt_parse - parse one TXT record of _mta-sts.D; id set on OK only */
danests_status
sts_txt_parse(const char *txt, size_t len, char id[DANESTS_STS_ID_MAX + 1],
    const char **why)
{
	char got[DANESTS_STS_ID_MAX + 1];
	const char *dummy;
	danests_status st;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (id != NULL)
		id[0] = '\0';
	if (txt == NULL || !sts_txt_is_v1(txt, len)) {
		*why = "not an STSv1 record";
		return DANESTS_NOTFOUND;
	}
	if ((st = sts_txt_fields(txt, len, got, why)) == DANESTS_OK &&
	    id != NULL)
		strlcpy(id, got, DANESTS_STS_ID_MAX + 1);
	return st;
}

/* sts_txt_select - pick the single STSv1 record among a name's TXT RRset */
danests_status
sts_txt_select(const char *const *txts, const size_t *lens, size_t n,
    char id[DANESTS_STS_ID_MAX + 1], const char **why)
{
	const char *dummy;
	size_t i, found = n, count = 0;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	if (id != NULL)
		id[0] = '\0';
	/*
	 * RFC 8461 3.1: records that do not begin with "v=STSv1" are
	 * discarded; if the number left is not one, there is no policy.
	 * A malformed record that does begin with v=STSv1 still counts.
	 */
	for (i = 0; i < n; i++) {
		if (txts[i] == NULL || !sts_txt_is_v1(txts[i], lens[i]))
			continue;
		if (count++ == 0)
			found = i;
	}
	if (count == 0) {
		*why = "no STSv1 TXT record";
		return DANESTS_NOTFOUND;
	}
	if (count > 1) {
		*why = "several STSv1 records";
		return DANESTS_PERM;
	}
	return sts_txt_parse(txts[found], lens[found], id, why);
}

/*
 * txt_rdata_join - concatenate the character-strings of one TXT RDATA
 * (RFC 1035 3.3.14: one or more <length octet><octets>) into a new
 * NUL-terminated string the caller frees.  NULL when the RDATA is empty,
 * truncated or holds a NUL byte (which no TXT consumer here can carry),
 * or when out of memory.
 */
char *
txt_rdata_join(const unsigned char *rdata, size_t len, size_t *outlen)
{
	size_t i, n, o = 0;
	char *out;

	if (outlen != NULL)
		*outlen = 0;
	if (rdata == NULL || len == 0 || len > TXT_RDATA_MAX)
		return NULL;
	/* The text is never longer than the RDATA itself. */
	if ((out = malloc(len)) == NULL)
		return NULL;
	for (i = 0; i < len; i += n) {
		n = rdata[i++];
		if (n > len - i || memchr(rdata + i, '\0', n) != NULL) {
			free(out);
			return NULL;
		}
		memcpy(out + o, rdata + i, n);
		o += n;
	}
	out[o] = '\0';
	if (outlen != NULL)
		*outlen = o;
	return out;
}
