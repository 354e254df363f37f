/*
 * lmtp_parse.c - LMTP command lines (RFC 2033 4, RFC 5321 4.1.1 and 4.1.2):
 * verbs, reverse and forward paths, MAIL parameters SIZE (RFC 1870),
 * BODY (RFC 6152) and SMTPUTF8 (RFC 6531).
 */
#include "lmtp.h"
#include "danests.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* lmtp_verb - the command word at the start of line */
static enum lmtp_verb
lmtp_verb(const char *line, size_t len, size_t *vlen)
{
	static const struct {
		const char *w;
		enum lmtp_verb v;
	} verbs[] = {
		{ "LHLO", LMTP_LHLO }, { "MAIL", LMTP_MAIL },
		{ "RCPT", LMTP_RCPT }, { "DATA", LMTP_DATA },
		{ "RSET", LMTP_RSET }, { "NOOP", LMTP_NOOP },
		{ "QUIT", LMTP_QUIT }, { "VRFY", LMTP_VRFY },
		{ "HELO", LMTP_HELO }, { "EHLO", LMTP_EHLO },
	};
	size_t i;

	*vlen = 4;
	if (len < 4 || (len > 4 && line[4] != ' '))
		return LMTP_UNKNOWN;
	for (i = 0; i < sizeof(verbs) / sizeof(verbs[0]); i++)
		if (strncasecmp(line, verbs[i].w, 4) == 0)
			return verbs[i].v;
	return LMTP_UNKNOWN;
}

/* lmtp_path - "<[@route,@route:]mailbox>" at *pp (RFC 5321 4.1.2);
 * mailbox copied to out; *pp moved past '>'.  0 or a reply code. */
static int
lmtp_path(const char **pp, const char *end, char *out, size_t outlen,
    const char **why)
{
	const char *p = *pp, *start;
	bool quoted = false;
	size_t n = 0;

	if (p >= end || *p != '<') {
		*why = "5.5.4 syntax: path must be in angle brackets";
		return 501;
	}
	p++;
	/* A-d-l (source route) is accepted and ignored (RFC 5321 4.1.1.3,
	 * C) */
	if (p < end && *p == '@') {
		while (p < end && *p != ':' && *p != '>')
			p++;
		if (p >= end || *p != ':') {
			*why = "5.5.4 syntax: bad source route";
			return 501;
		}
		p++;
	}
	start = p;
	for (; p < end; p++) {
		unsigned char c = (unsigned char)*p;

		if (c < 0x20 || c == 0x7f) {
			*why = "5.5.4 syntax: control character in path";
			return 501;
		}
		if (quoted && c == '\\') {
			if (p + 1 >= end) {
				*why = "5.5.4 syntax: bad quoted string";
				return 501;
			}
			p++;
			continue;
		}
		if (c == '"') {
			quoted = !quoted;
			continue;
		}
		if (quoted)
			continue;
		if (c == '>')
			break;
		if (c == ' ' || c == '<') {
			*why = "5.5.4 syntax: bad character in path";
			return 501;
		}
	}
	if (p >= end || *p != '>') {
		*why = "5.5.4 syntax: unterminated path";
		return 501;
	}
	n = (size_t)(p - start);
	if (n >= outlen || n > LMTP_PATH_MAX) {
		*why = "5.5.4 path too long";
		return 501;
	}
	memcpy(out, start, n);
	out[n] = '\0';
	*pp = p + 1;
	return 0;
}

/* lmtp_params - the ESMTP parameters after a path (RFC 5321 4.1.2) */
static int
lmtp_params(const char *p, const char *end, bool mail, struct lmtp_cmd *out,
    const char **why)
{
	char kw[32], val[64];
	const char *s, *eq;
	size_t kn, vn;

	while (p < end) {
		if (*p != ' ') {
			*why = "5.5.4 syntax: junk after path";
			return 501;
		}
		while (p < end && *p == ' ')
			p++;
		if (p >= end)
			break;
		for (s = p; p < end && *p != ' '; p++)
			;
		eq = memchr(s, '=', (size_t)(p - s));
		kn = (size_t)((eq ? eq : p) - s);
		vn = eq ? (size_t)(p - eq - 1) : 0;
		if (kn == 0 || kn >= sizeof(kw) || vn >= sizeof(val)) {
			*why = "5.5.4 bad parameter";
			return 555;
		}
		memcpy(kw, s, kn);
		kw[kn] = '\0';
		if (eq)
			memcpy(val, eq + 1, vn);
		val[vn] = '\0';
		if (!mail) {
			*why = "5.5.4 RCPT parameters not supported";
			return 555;
		}
		if (strcasecmp(kw, "SIZE") == 0 && eq && vn > 0 && vn <= 20) {
			unsigned long long v = 0;
			size_t i;

			for (i = 0; i < vn; i++) {
				if (!isdigit((unsigned char)val[i]) ||
				    v > 1000000000000000ULL) {
					*why = "5.5.4 bad SIZE value";
					return 501;
				}
				v = v * 10 + (unsigned)(val[i] - '0');
			}
			out->has_size = true;
			out->size = v;
		} else if (strcasecmp(kw, "BODY") == 0 && eq) {
			if (strcasecmp(val, "7BIT") == 0)
				out->body = LMTP_BODY_7BIT;
			else if (strcasecmp(val, "8BITMIME") == 0)
				out->body = LMTP_BODY_8BITMIME;
			else {
				*why = "5.5.4 BODY must be 7BIT or 8BITMIME";
				return 501;
			}
		} else if (strcasecmp(kw, "SMTPUTF8") == 0 && !eq)
			out->smtputf8 = true;
		else {
			*why = "5.5.4 unsupported parameter";
			return 555;
		}
	}
	return 0;
}

/* lmtp_mailbox_domain - the domain of a forward path (after the last
 * '@', which is outside any quoted local part since domains hold none) */
static int
lmtp_mailbox_domain(const char *box, char *domain, size_t len,
    const char **why)
{
	const char *at = strrchr(box, '@');

	if (at == NULL || at == box) {
		*why = "5.1.3 recipient must be user@domain";
		return 553;
	}
	if (at[1] == '[') {
		/* RFC 5321 4.1.3: an address literal names no MX */
		*why = "5.1.2 address literals are not relayed";
		return 553;
	}
	if (danests_domain_normalize(at + 1, domain, len) != DANESTS_OK) {
		*why = "5.1.2 malformed recipient domain";
		return 553;
	}
	return 0;
}

/* lmtp_parse - one command line, see lmtp.h */
int
lmtp_parse(const char *line, size_t len, struct lmtp_cmd *out,
    const char **why)
{
	const char *p, *end = line + len;
	size_t vlen, i;
	int rc;

	memset(out, 0, sizeof(*out));
	*why = NULL;
	if (len > LMTP_LINE_MAX) {
		*why = "5.5.2 line too long";
		return 500;
	}
	for (i = 0; i < len; i++)
		if (line[i] == '\0' || line[i] == '\r' || line[i] == '\n') {
			*why = "5.5.2 bad character in command";
			return 500;
		}
	out->verb = lmtp_verb(line, len, &vlen);
	p = line + vlen;
	switch (out->verb) {
	case LMTP_UNKNOWN:
		*why = "5.5.1 command unrecognized";
		return 500;
	case LMTP_LHLO:
	case LMTP_HELO:
	case LMTP_EHLO:
		while (p < end && *p == ' ')
			p++;
		if (p >= end) {
			*why = "5.5.4 syntax: LHLO domain";
			return 501;
		}
		memcpy(out->arg, p, (size_t)(end - p));
		out->arg[end - p] = '\0';
		return 0;
	case LMTP_MAIL:
	case LMTP_RCPT: {
		const char *kw = out->verb == LMTP_MAIL ? " FROM:" : " TO:";
		size_t kn = strlen(kw);

		if ((size_t)(end - p) < kn || strncasecmp(p, kw, kn) != 0) {
			*why = out->verb == LMTP_MAIL ?
			    "5.5.4 syntax: MAIL FROM:<address>" :
			    "5.5.4 syntax: RCPT TO:<address>";
			return 501;
		}
		p += kn;
		while (p < end && *p == ' ')	/* common, if not RFC */
			p++;
		if ((rc = lmtp_path(&p, end, out->arg, sizeof(out->arg),
		    why)) != 0)
			return rc;
		if ((rc = lmtp_params(p, end, out->verb == LMTP_MAIL, out,
		    why)) != 0)
			return rc;
		if (out->verb == LMTP_RCPT)
			return lmtp_mailbox_domain(out->arg, out->domain,
			    sizeof(out->domain), why);
		if (*out->arg != '\0' && strchr(out->arg, '@') == NULL) {
			*why = "5.1.7 sender must be user@domain or <>";
			return 553;
		}
		return 0;
	}
	case LMTP_DATA:
	case LMTP_RSET:
	case LMTP_QUIT:
		if (p != end) {
			*why = "5.5.4 syntax: no parameters allowed";
			return 501;
		}
		return 0;
	case LMTP_NOOP:
	case LMTP_VRFY:
		return 0;
	}
	*why = "5.5.1 command unrecognized";
	return 500;
}
