/*
 * tlsrpt_txt.c - the _smtp._tls TXT record of TLS reporting (RFC 8460 3)
 *
 *	tlsrpt-record   = tlsrpt-version 1*(field-delim tlsrpt-field)
 *			  [field-delim]
 *	field-delim     = *WSP ";" *WSP
 *	tlsrpt-field    = tlsrpt-rua / tlsrpt-extension
 *	tlsrpt-version  = %s"v=TLSRPTv1"
 *	tlsrpt-rua      = %s"rua=" tlsrpt-uri *(*WSP "," *WSP tlsrpt-uri)
 *	tlsrpt-extension = tlsrpt-ext-name "=" tlsrpt-ext-value
 *	tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".")
 *	tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E)
 *
 * Parsed strictly: anything outside the grammar, a second v or rua, or a
 * record without rua is malformed.  Of the URIs (commas and "!" must be
 * percent-encoded in them, 3), mailto: with a plain addr-spec and https:
 * with a host name are kept; other schemes, and URIs of these two that
 * this parser does not trust, are ignored, and a record left with none is
 * malformed too (nothing could be sent).
 */
#include "danests-internal.h"
#include "danests-report.h"

#include <string.h>

#define TLSRPT_TXT_MAX	8192	/* the whole record */
#define TLSRPT_URIS_MAX	32	/* URIs in rua, usable or not */
#define LOCAL_MAX	64	/* RFC 5321 4.5.3.1.1 */

static const char version[] = "v=TLSRPTv1";

/* is_atext - RFC 5322 3.2.3 atext */
static int
is_atext(unsigned char c)
{
	return is_alnum(c) || (c != '\0' && strchr("!#$%&'*+-/=?^_`{|}~",
	    c) != NULL);
}

/* mailto_ok - "mailto:" then local@domain, a dot-atom local part and a
 * host name, nothing else (no hfields, no percent-encoding) */
static const char *
mailto_ok(const char *u, size_t n)
{
	char dom[DANESTS_NAME_MAX], buf[512];
	const char *at, *p;
	size_t i, llen;

	u += 7;
	n -= 7;
	if (n >= sizeof(buf) || (at = memchr(u, '@', n)) == NULL)
		return "mailto: without an address";
	llen = (size_t)(at - u);
	if (llen == 0 || llen > LOCAL_MAX || u[0] == '.' || at[-1] == '.')
		return "mailto: bad local part";
	for (p = u; p < at; p++)
		if ((!is_atext((unsigned char)*p) && *p != '.') ||
		    *p == '%' || *p == '?' ||
		    (*p == '.' && p[1] == '.'))
			return "mailto: bad local part";
	memcpy(buf, at + 1, n - llen - 1);
	buf[n - llen - 1] = '\0';
	for (i = 0; buf[i] != '\0'; i++)
		if (!is_alnum((unsigned char)buf[i]) && buf[i] != '-' &&
		    buf[i] != '.')
			return "mailto: bad domain";
	if (buf[0] == '\0' || buf[i - 1] == '.' ||
	    danests_domain_normalize(buf, dom, sizeof(dom)) != DANESTS_OK)
		return "mailto: bad domain";
	return NULL;
}

/* https_ok - "https://" host [":" port] [path-abempty ["?" query]]: a
 * host name, no user information, no IP literal */
static const char *
https_ok(const char *u, size_t n)
{
	char host[DANESTS_NAME_MAX], dom[DANESTS_NAME_MAX];
	size_t i = 8, h, port;

	if (n < 9 || u[6] != '/' || u[7] != '/')
		return "https: without a host";
	for (h = i; h < n && u[h] != ':' && u[h] != '/' && u[h] != '?' &&
	    u[h] != '#'; h++)
		if (!is_alnum((unsigned char)u[h]) && u[h] != '-' &&
		    u[h] != '.')
			return "https: bad host";
	if (h == i || h - i >= sizeof(host))
		return "https: bad host";
	memcpy(host, u + i, h - i);
	host[h - i] = '\0';
	if (host[h - i - 1] == '.' ||
	    danests_domain_normalize(host, dom, sizeof(dom)) != DANESTS_OK ||
	    strchr(dom, '.') == NULL)
		return "https: bad host";
	if (h < n && u[h] == ':') {
		for (port = 0, i = h + 1; i < n && u[i] >= '0' && u[i] <= '9' &&
		    i - h <= 5; i++)
			port = port * 10 + (size_t)(u[i] - '0');
		if (i == h + 1 || port == 0 || port > 65535 ||
		    (i < n && u[i] != '/' && u[i] != '?'))
			return "https: bad port";
	}
	if (h < n && u[h] == '#')
		return "https: fragment";
	return NULL;
}

/* scheme_is - case-insensitive scheme prefix (RFC 3986 3.1) */
static int
scheme_is(const char *u, size_t n, const char *s)
{
	size_t i, m = strlen(s);

	if (n < m)
		return 0;
	for (i = 0; i < m; i++)
		if ((u[i] | 0x20) != s[i] && u[i] != s[i])
			return 0;
	return 1;
}

/* uri_char - a character of a URI in the record: visible ASCII but the
 * delimiters "," and ";" and "!" that 3 requires encoded */
static int
uri_char(unsigned char c)
{
	return c >= 0x21 && c <= 0x7e && c != ',' && c != ';' && c != '!';
}

/* ext_char - tlsrpt-ext-value */
static int
ext_char(unsigned char c)
{
	return (c >= 0x21 && c <= 0x3a) || c == 0x3c ||
	    (c >= 0x3e && c <= 0x7e);
}

/* rua_parse - the URIs of rua at *pp (up to end); the usable ones into
 * out; -1 malformed (why set) */
static int
rua_parse(const char **pp, const char *end, struct danests_tlsrpt_record *out,
    size_t *nuris, const char **unusable, char *why, size_t whylen)
{
	const char *p = *pp, *u, *q, *bad;
	size_t n, i;

	for (;;) {
		for (u = p; p < end && uri_char((unsigned char)*p); p++)
			;
		n = (size_t)(p - u);
		if (n == 0) {
			why_set(why, whylen, "tlsrpt: empty or malformed URI "
			    "in rua");
			return -1;
		}
		if (p < end && *p == '!') {
			why_set(why, whylen, "tlsrpt: unencoded \"!\" in a "
			    "URI");
			return -1;
		}
		if (++*nuris > TLSRPT_URIS_MAX) {
			why_set(why, whylen, "tlsrpt: more than %d URIs",
			    TLSRPT_URIS_MAX);
			return -1;
		}
		bad = NULL;
		if (n >= sizeof(out->rua[0]))
			bad = "URI too long";
		else if (scheme_is(u, n, "mailto:"))
			bad = mailto_ok(u, n);
		else if (scheme_is(u, n, "https:"))
			bad = https_ok(u, n);
		else
			bad = "scheme neither mailto: nor https:";
		if (bad == NULL) {
			for (i = 0; i < out->nrua; i++)
				if (strlen(out->rua[i]) == n &&
				    memcmp(out->rua[i], u, n) == 0)
					break;
			if (i == out->nrua && out->nrua < DANESTS_RPT_RUA_MAX) {
				memcpy(out->rua[out->nrua], u, n);
				out->rua[out->nrua][n] = '\0';
				out->nrua++;
			}
		} else if (*unusable == NULL)
			*unusable = bad;
		/* *WSP "," *WSP, or the end of the field */
		for (q = p; q < end && is_wsp((unsigned char)*q); q++)
			;
		if (q < end && *q == ',') {
			for (p = q + 1; p < end && is_wsp((unsigned char)*p);
			    p++)
				;
			continue;
		}
		*pp = p;
		return 0;
	}
}

/* danests_tlsrpt_parse - see danests-report.h */
danests_status
danests_tlsrpt_parse(const char *txt, size_t len,
    struct danests_tlsrpt_record *out, char *why, size_t whylen)
{
	const char *p, *end, *name, *unusable = NULL;
	size_t vl = sizeof(version) - 1, nl, nuris = 0, fields = 0;
	bool rua = false;

	memset(out, 0, sizeof(*out));
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (txt == NULL || len < vl || memcmp(txt, version, vl) != 0 ||
	    (len > vl && txt[vl] != ';' && !is_wsp((unsigned char)txt[vl]))) {
		why_set(why, whylen, "tlsrpt: not a TLSRPTv1 record");
		return DANESTS_NOTFOUND;
	}
	if (len > TLSRPT_TXT_MAX) {
		why_set(why, whylen, "tlsrpt: record longer than %d bytes",
		    TLSRPT_TXT_MAX);
		return DANESTS_PERM;
	}
	p = txt + vl;
	end = txt + len;
	for (;;) {
		/* field-delim, or the end (after at least one field) */
		while (p < end && is_wsp((unsigned char)*p))
			p++;
		if (p == end && fields > 0)
			break;	/* trailing white space is tolerated */
		if (p == end || *p != ';') {
			why_set(why, whylen, p == end ? "tlsrpt: no rua" :
			    "tlsrpt: expected \";\" at offset %zu",
			    (size_t)(p - txt));
			goto bad;
		}
		p++;
		while (p < end && is_wsp((unsigned char)*p))
			p++;
		if (p == end)
			break;	/* [field-delim] at the end */
		/* tlsrpt-field */
		name = p;
		if (!is_alnum((unsigned char)*p)) {
			why_set(why, whylen, "tlsrpt: bad field name at "
			    "offset %zu", (size_t)(p - txt));
			goto bad;
		}
		for (p++; p < end && (is_alnum((unsigned char)*p) ||
		    *p == '_' || *p == '-' || *p == '.'); p++)
			;
		nl = (size_t)(p - name);
		if (nl > 32 || p == end || *p != '=') {
			why_set(why, whylen, "tlsrpt: bad field at offset %zu",
			    (size_t)(name - txt));
			goto bad;
		}
		p++;
		fields++;
		if (nl == 1 && name[0] == 'v') {
			why_set(why, whylen, "tlsrpt: v given twice");
			goto bad;
		}
		if (nl == 3 && memcmp(name, "rua", 3) == 0) {
			if (rua) {
				why_set(why, whylen, "tlsrpt: rua given "
				    "twice");
				goto bad;
			}
			rua = true;
			if (rua_parse(&p, end, out, &nuris, &unusable, why,
			    whylen) < 0)
				goto bad;
			continue;
		}
		/* an extension: ignored (3), but it must be well-formed */
		if (p == end || !ext_char((unsigned char)*p)) {
			why_set(why, whylen, "tlsrpt: empty or malformed "
			    "value of %.*s", (int)nl, name);
			goto bad;
		}
		while (p < end && ext_char((unsigned char)*p))
			p++;
	}
	if (!rua) {
		why_set(why, whylen, "tlsrpt: no rua");
		goto bad;
	}
	if (out->nrua == 0) {
		why_set(why, whylen, "tlsrpt: no usable rua URI (%s)",
		    unusable ? unusable : "none");
		goto bad;
	}
	return DANESTS_OK;
bad:
	memset(out, 0, sizeof(*out));
	return DANESTS_PERM;
}
