/*
 * report_mail.c - a TLS report as mail (RFC 8460 5.3)
 *
 *	From: report_from
 *	To: the rua address
 *	Subject: Report Domain: D Submitter: S Report-ID: <ID>
 *	TLS-Report-Domain: D
 *	TLS-Report-Submitter: S
 *	TLS-Required: No			(RFC 8689 5)
 *	Content-Type: multipart/report; report-type="tlsrpt"; boundary=...
 *
 * and two parts (RFC 6522): a short text for people, then the report as
 * application/tlsrpt+gzip, base64, named submitter!domain!begin!end
 * .json.gz.  TLS-Required: No asks every MTA on the way to deliver the
 * report even when the recipient's TLS is broken: that is when reports
 * matter most (RFC 8460 5.3 wants the report delivered regardless).
 * Every value put in a header is checked first (report_addr_ok,
 * report_domain_ok): they come from DNS and from the configuration, and
 * none may carry a line break or a character that needs quoting.
 */
#include "report_mail.h"

#include <zlib.h>

#include <ctype.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B64_LINE	76	/* RFC 2045 6.8 */
#define ZIP_MAX		(64u << 20)	/* refuse reports larger than this */

/* report_domain_ok - see report_mail.h */
bool
report_domain_ok(const char *name)
{
	size_t label = 0, n = 0;
	const char *p;

	if (name == NULL || *name == '\0' || *name == '.' || *name == '-')
		return false;
	for (p = name; *p; p++, n++) {
		if (*p == '.') {
			if (label == 0 || p[-1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!isascii((unsigned char)*p) ||
		    !(isalnum((unsigned char)*p) || *p == '-' || *p == '_'))
			return false;
		if (*p == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	if (n > 253 || label == 0 || p[-1] == '-')
		return false;
	/* a last label of digits only is an address, not a name */
	for (p -= label; *p; p++)
		if (!isdigit((unsigned char)*p))
			return true;
	return false;
}

/* atext - RFC 5322 3.2.3 atext */
static bool
atext(int c)
{
	return isascii(c) && (isalnum(c) || strchr("!#$%&'*+-/=?^_`{|}~",
	    c) != NULL) && c != '\0';
}

/* report_addr_ok - see report_mail.h */
bool
report_addr_ok(const char *addr)
{
	const char *at, *p;

	if (addr == NULL || (at = strrchr(addr, '@')) == NULL ||
	    at == addr || at - addr > 64 || addr[0] == '-')
		return false;
	for (p = addr; p < at; p++) {
		if (*p == '.') {
			if (p == addr || p[-1] == '.' || p + 1 == at)
				return false;
		} else if (!atext((unsigned char)*p))
			return false;
	}
	return report_domain_ok(at + 1);
}

/* hexval - one hex digit, or -1 */
static int
hexval(int c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	c = tolower(c);
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	return -1;
}

/* report_mailto_addr - see report_mail.h */
int
report_mailto_addr(const char *uri, char *out, size_t outlen)
{
	const char *p;
	size_t o = 0;
	int h, l, c;

	if (uri == NULL || strncasecmp(uri, "mailto:", 7) != 0 ||
	    outlen == 0)
		return -1;
	for (p = uri + 7; *p; p++) {
		c = (unsigned char)*p;
		if (c == '%') {
			if ((h = hexval((unsigned char)p[1])) < 0 ||
			    (l = hexval((unsigned char)p[2])) < 0)
				return -1;
			c = h * 16 + l;
			p += 2;
		} else if (c == '?' || c == ',')
			return -1;	/* hfields or several addresses */
		if (o + 1 >= outlen)
			return -1;
		out[o++] = (char)c;
	}
	out[o] = '\0';
	return report_addr_ok(out) ? 0 : -1;
}

/* report_filename - see report_mail.h */
int
report_filename(char *buf, size_t len, const char *submitter,
    const char *domain, time_t begin, time_t end, const char *unique_id)
{
	const char *p;
	int n;

	if (!report_domain_ok(submitter) || !report_domain_ok(domain) ||
	    begin < 0 || end < begin || end > 999999999999LL)
		return -1;
	/* unique-id = 1*(ALPHA / DIGIT) */
	if (unique_id != NULL) {
		if (*unique_id == '\0')
			return -1;
		for (p = unique_id; *p; p++)
			if (!isascii((unsigned char)*p) ||
			    !isalnum((unsigned char)*p))
				return -1;
	}
	n = snprintf(buf, len, "%s!%s!%lld!%lld%s%s.json.gz", submitter,
	    domain, (long long)begin, (long long)end, unique_id ? "!" : "",
	    unique_id ? unique_id : "");
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* report_gzip - see report_mail.h */
int
report_gzip(const char *in, size_t len, unsigned char **out, size_t *outlen)
{
	z_stream z;
	unsigned char *buf;
	uLong cap;
	int rc;

	*out = NULL;
	*outlen = 0;
	if (len > ZIP_MAX)
		return -1;
	memset(&z, 0, sizeof(z));
	/* 15 + 16: a gzip header and trailer around the deflate stream */
	if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK)
		return -1;
	cap = deflateBound(&z, (uLong)len) + 32;
	if ((buf = malloc(cap)) == NULL) {
		deflateEnd(&z);
		return -1;
	}
	z.next_in = (Bytef *)(uintptr_t)in;
	z.avail_in = (uInt)len;
	z.next_out = buf;
	z.avail_out = (uInt)cap;
	rc = deflate(&z, Z_FINISH);
	if (rc != Z_STREAM_END) {
		deflateEnd(&z);
		free(buf);
		return -1;
	}
	*outlen = z.total_out;
	deflateEnd(&z);
	*out = buf;
	return 0;
}

/* A growing text buffer; on error it stays failed and build says so. */
struct mbuf {
	char *s;
	size_t len, cap;
	bool failed;
};

static void mb_printf(struct mbuf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* mb_add - append n bytes */
static void
mb_add(struct mbuf *b, const char *s, size_t n)
{
	char *ns;
	size_t cap;

	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		cap = b->cap ? b->cap : 4096;
		while (cap < b->len + n + 1)
			cap *= 2;
		if ((ns = realloc(b->s, cap)) == NULL) {
			b->failed = true;
			return;
		}
		b->s = ns;
		b->cap = cap;
	}
	memcpy(b->s + b->len, s, n);
	b->len += n;
	b->s[b->len] = '\0';
}

/* mb_printf - append formatted text (one line's worth) */
static void
mb_printf(struct mbuf *b, const char *fmt, ...)
{
	char line[2048];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		b->failed = true;
		return;
	}
	mb_add(b, line, (size_t)n);
}

/* mb_base64 - the data in base64, lines of B64_LINE characters */
static void
mb_base64(struct mbuf *b, const unsigned char *d, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	char line[B64_LINE + 1];
	size_t i, o = 0;
	uint32_t v;

	for (i = 0; i < n; i += 3) {
		v = (uint32_t)d[i] << 16;
		if (i + 1 < n)
			v |= (uint32_t)d[i + 1] << 8;
		if (i + 2 < n)
			v |= d[i + 2];
		line[o++] = tab[(v >> 18) & 63];
		line[o++] = tab[(v >> 12) & 63];
		line[o++] = i + 1 < n ? tab[(v >> 6) & 63] : '=';
		line[o++] = i + 2 < n ? tab[v & 63] : '=';
		if (o == B64_LINE) {
			line[o++] = '\n';
			mb_add(b, line, o);
			o = 0;
		}
	}
	if (o > 0) {
		line[o++] = '\n';
		mb_add(b, line, o);
	}
}

/* text_ok - configured text we put in the text part: no control bytes
 * but for nothing; UTF-8 is passed as is (8bit) */
static bool
text_ok(const char *s, bool *eight)
{
	for (; *s; s++) {
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
		if ((unsigned char)*s >= 0x80)
			*eight = true;
	}
	return true;
}

/* id_ok - a report id that can sit in <...> of a Subject and in JSON:
 * printable ASCII without space, '<', '>', '"' or '\\' */
static bool
id_ok(const char *s)
{
	if (s == NULL || *s == '\0' || strlen(s) > 200)
		return false;
	for (; *s; s++)
		if (*s <= 0x20 || *s >= 0x7f || strchr("<>\"\\", *s))
			return false;
	return true;
}

/* report_mail_build - see report_mail.h */
char *
report_mail_build(const struct report_mail *m, size_t *len, char *why,
    size_t whylen)
{
	char fname[REPORT_FILENAME_MAX], date[64], boundary[128];
	struct mbuf b = { 0 };
	bool eight = false;
	struct tm tm;

	*len = 0;
	if (!report_addr_ok(m->from) || !report_addr_ok(m->rcpt)) {
		snprintf(why, whylen, "unusable address: %.80s",
		    report_addr_ok(m->from) ? m->rcpt : m->from);
		return NULL;
	}
	if (!report_domain_ok(m->submitter) || !report_domain_ok(m->domain)) {
		snprintf(why, whylen, "unusable domain name: %.80s",
		    report_domain_ok(m->domain) ? m->submitter : m->domain);
		return NULL;
	}
	if (!id_ok(m->report_id) || !id_ok(m->unique) || m->day == NULL ||
	    strlen(m->day) != 10) {
		snprintf(why, whylen, "unusable report id");
		return NULL;
	}
	if (m->organization == NULL || !text_ok(m->organization, &eight) ||
	    (m->contact != NULL && !text_ok(m->contact, &eight))) {
		snprintf(why, whylen, "report_organization or report_contact "
		    "holds control characters");
		return NULL;
	}
	if (report_filename(fname, sizeof(fname), m->submitter, m->domain,
	    m->begin, m->end, NULL) != 0) {
		snprintf(why, whylen, "cannot name the report file");
		return NULL;
	}
	if (gmtime_r(&m->now, &tm) == NULL ||
	    strftime(date, sizeof(date), "%a, %d %b %Y %H:%M:%S +0000",
	    &tm) == 0) {
		snprintf(why, whylen, "cannot format the date");
		return NULL;
	}
	/* base64 and the text never hold "=_": a safe boundary */
	snprintf(boundary, sizeof(boundary), "=_tlsrpt_%s", m->unique);

	mb_printf(&b, "From: %s\n", m->from);
	mb_printf(&b, "To: %s\n", m->rcpt);
	/* folded (RFC 5322 2.2.3): unfolds to the one line of 5.3 */
	mb_printf(&b, "Subject: Report Domain: %s\n Submitter: %s\n "
	    "Report-ID: <%s>\n", m->domain, m->submitter, m->report_id);
	mb_printf(&b, "Date: %s\n", date);
	mb_printf(&b, "Message-ID: <%s@%s>\n", m->unique, m->submitter);
	mb_printf(&b, "TLS-Report-Domain: %s\n", m->domain);
	mb_printf(&b, "TLS-Report-Submitter: %s\n", m->submitter);
	mb_printf(&b, "TLS-Required: No\n");
	mb_printf(&b, "Auto-Submitted: auto-generated\n");
	mb_printf(&b, "MIME-Version: 1.0\n");
	mb_printf(&b, "Content-Type: multipart/report; report-type=\"tlsrpt\";"
	    "\n\tboundary=\"%s\"\n", boundary);
	mb_printf(&b, "\nThis is a multi-part message in MIME format.\n\n");

	mb_printf(&b, "--%s\n", boundary);
	mb_printf(&b, "Content-Type: text/plain; charset=%s\n",
	    eight ? "utf-8" : "us-ascii");
	mb_printf(&b, "Content-Transfer-Encoding: %s\n\n", eight ? "8bit" :
	    "7bit");
	mb_printf(&b, "This is an aggregate TLS report (RFC 8460) from %s\n",
	    m->organization);
	mb_printf(&b, "about mail sent to %s on %s (UTC).\n", m->domain,
	    m->day);
	mb_printf(&b, "\nSubmitter: %s\nReport-ID: %s\n", m->submitter,
	    m->report_id);
	if (m->contact != NULL && *m->contact)
		mb_printf(&b, "Contact: %s\n", m->contact);
	mb_printf(&b, "\nThe report is attached as\n%s\n\n", fname);

	mb_printf(&b, "--%s\n", boundary);
	mb_printf(&b, "Content-Type: application/tlsrpt+gzip\n");
	mb_printf(&b, "Content-Transfer-Encoding: base64\n");
	mb_printf(&b, "Content-Disposition: attachment;\n\tfilename=\"%s\"\n\n",
	    fname);
	mb_base64(&b, m->gz, m->gzlen);
	mb_printf(&b, "\n--%s--\n", boundary);
	if (b.failed) {
		free(b.s);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	*len = b.len;
	return b.s;
}
