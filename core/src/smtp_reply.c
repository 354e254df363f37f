/*
 * smtp_reply.c - pure parsers for what an SMTP server sends: replies
 * (RFC 5321 4.2), enhanced status codes (RFC 3463) and the EHLO keywords
 * (RFC 5321 4.1.1.1).  No I/O: the client (smtp.c) feeds bytes in.
 */
#include "danests-internal.h"

#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* smtp_reply_digits - three reply digits per RFC 5321 4.2: first 2-5,
 * second 0-5, third 0-9; the code, or -1 */
static int
smtp_reply_digits(const char *p)
{
	if (p[0] < '2' || p[0] > '5' || p[1] < '0' || p[1] > '5' ||
	    p[2] < '0' || p[2] > '9')
		return -1;
	return (p[0] - '0') * 100 + (p[1] - '0') * 10 + (p[2] - '0');
}

/* smtp_reply_append - add one line's text to r->text, '\n' between
 * lines, silently truncated at the cap (the code is what matters) */
static void
smtp_reply_append(struct smtp_reply *r, const char *s, size_t n)
{
	size_t room;

	if (r->nlines > 0 && r->textlen + 1 < sizeof(r->text))
		r->text[r->textlen++] = '\n';
	room = sizeof(r->text) - 1 - r->textlen;
	if (n > room)
		n = room;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		/* Keep the text printable: it ends up in logs and in
		 * the replies the adapters relay. */
		r->text[r->textlen++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
	}
	r->text[r->textlen] = '\0';
}

/* smtp_reply_parse - parse one complete reply at the start of buf.
 * Returns the number of bytes it took (> 0) with r filled, 0 when more
 * bytes are needed, -1 when the bytes are not a valid reply (why says). */
long
smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *r,
    const char **why)
{
	size_t off = 0, eol, linelen, n;
	int code;

	memset(r, 0, sizeof(*r));
	*why = NULL;
	for (;;) {
		const char *line = buf + off;
		const char *nl;

		nl = memchr(line, '\n', len - off);
		if (nl == NULL) {
			/* RFC 5321 4.5.3.1.5: a reply line is at most 512
			 * octets; allow slack, but bound what we buffer. */
			if (len - off > SMTP_REPLY_LINE_MAX) {
				*why = "reply line too long";
				return -1;
			}
			return 0;
		}
		eol = (size_t)(nl - line);
		linelen = eol;
		if (linelen > 0 && line[linelen - 1] == '\r')
			linelen--;	/* bare LF tolerated (RFC 5321 4.1.1.4 asks CRLF) */
		if (linelen > SMTP_REPLY_LINE_MAX) {
			*why = "reply line too long";
			return -1;
		}
		if (linelen < 3 || (code = smtp_reply_digits(line)) < 0) {
			*why = "reply line does not start with a reply code";
			return -1;
		}
		if (linelen > 3 && line[3] != ' ' && line[3] != '-') {
			*why = "reply code not followed by space or hyphen";
			return -1;
		}
		if (r->nlines > 0 && code != r->code) {
			/* RFC 5321 4.2.1: every line of a multiline reply
			 * carries the same code. */
			*why = "multiline reply with differing codes";
			return -1;
		}
		if (r->nlines >= SMTP_REPLY_LINES_MAX) {
			*why = "too many reply lines";
			return -1;
		}
		r->code = code;
		n = linelen > 4 ? linelen - 4 : 0;
		smtp_reply_append(r, line + 4, n);
		r->nlines++;
		off += eol + 1;
		if (linelen == 3 || line[3] == ' ')
			break;
		if (off >= len)
			return 0;
	}
	smtp_reply_enhanced(r);
	return (long)off;
}

/* smtp_reply_enhanced - RFC 3463 2: "class.subject.detail" at the start
 * of the text, class matching the reply's first digit; fills r->enh */
void
smtp_reply_enhanced(struct smtp_reply *r)
{
	const char *p = r->text;
	size_t i, digits;
	int part;

	r->enh[0] = '\0';
	if (p[0] != '0' + r->code / 100 || (p[0] != '2' && p[0] != '4' &&
	    p[0] != '5') || p[1] != '.')
		return;
	i = 2;
	for (part = 0; part < 2; part++) {
		for (digits = 0; isdigit((unsigned char)p[i]); i++)
			digits++;
		/* subject 1-3 digits, detail 1-3 digits */
		if (digits == 0 || digits > 3)
			return;
		if (part == 0) {
			if (p[i] != '.')
				return;
			i++;
		}
	}
	if (p[i] != '\0' && p[i] != ' ' && p[i] != '\n')
		return;
	if (i >= sizeof(r->enh))
		return;
	memcpy(r->enh, p, i);
	r->enh[i] = '\0';
}

/* smtp_ehlo_parse - the extensions named in an EHLO reply (one keyword
 * per line after the first, RFC 5321 4.1.1.1); SIZE's limit in *size
 * (0 when none or unlimited) */
unsigned
smtp_ehlo_parse(const struct smtp_reply *r, unsigned long long *size)
{
	static const struct {
		const char *kw;
		unsigned flag;
	} kws[] = {
		{ "STARTTLS", SMTP_EXT_STARTTLS },
		{ "PIPELINING", SMTP_EXT_PIPELINING },
		{ "SIZE", SMTP_EXT_SIZE },
		{ "8BITMIME", SMTP_EXT_8BITMIME },
		{ "SMTPUTF8", SMTP_EXT_SMTPUTF8 },
		{ "ENHANCEDSTATUSCODES", SMTP_EXT_ENHANCED },
	};
	const char *p = r->text, *e;
	unsigned ext = 0;
	size_t i, n;
	bool first = true;

	*size = 0;
	if (r->code != 250)
		return 0;
	for (; *p != '\0'; p = *e ? e + 1 : e, first = false) {
		if ((e = strchr(p, '\n')) == NULL)
			e = p + strlen(p);
		if (first)	/* the greeting line: "domain text" */
			continue;
		for (n = 0; p + n < e && p[n] != ' '; n++)
			;
		for (i = 0; i < sizeof(kws) / sizeof(kws[0]); i++) {
			if (strlen(kws[i].kw) != n ||
			    strncasecmp(p, kws[i].kw, n) != 0)
				continue;
			ext |= kws[i].flag;
			if (kws[i].flag == SMTP_EXT_SIZE && p + n < e) {
				unsigned long long v = 0;
				const char *q = p + n + 1;

				/* RFC 1870 4: optional decimal limit */
				for (; q < e && isdigit((unsigned char)*q);
				    q++) {
					if (v > 1000000000000ULL)
						break;
					v = v * 10 + (unsigned)(*q - '0');
				}
				*size = v;
			}
		}
	}
	return ext;
}
