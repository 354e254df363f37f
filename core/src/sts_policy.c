/*
 * sts_policy.c - MTA-STS policy body (RFC 8461 3.2) and MX patterns (4.1)
 *
 * A policy is a small text file of "key: value" lines:
 *
 *	version: STSv1
 *	mode: enforce
 *	mx: mail.example.com
 *	mx: *.example.net
 *	max_age: 86400
 *
 * Choices where the text leaves room or implementations disagree (each
 * one is a row of tests/unit/test_sts_policy.c).  The guiding rule: a
 * policy we reject is no policy at all (RFC 8461 5), so whatever cannot
 * be misread is tolerated, and whatever could be misread is rejected.
 *  - Lines end in LF or CRLF (3.2 sts-policy-term); the final line may
 *    lack its terminator (or its LF).  A CR anywhere else is a control
 *    character: invalid.
 *  - Fields may come in any order; "version" need not be the first line
 *    (the 3.2 ABNF lists sts-policy-field alternatives in no order).
 *  - Empty and white-space-only lines are ignored, and white space
 *    before a key, before the ":" and after a value is ignored: the ABNF
 *    has no room for it, but it carries no meaning.
 *  - Keys and the values of version and mode are case-sensitive (%s in
 *    the ABNF, RFC 7405): "Mode: enforce" is an unknown key (so mode is
 *    then missing) and "mode: Enforce" makes the policy invalid.
 *  - version, mode and max_age must appear exactly once; a second one
 *    is invalid even with the same value.  Unknown keys are ignored
 *    (3.2), including repeated ones, but must be syntactically keys.
 *  - A line without ":" or with a key outside sts-policy-ext-name is
 *    invalid.  Control characters (other than HTAB) and NUL are invalid
 *    anywhere; bytes >= 0x80 are allowed in the values of unknown keys
 *    only (sts-policy-ext-value allows UTF-8).
 *  - max_age is 1*10 DIGIT with a value of at most 31557600 (3.2); no
 *    sign, no white space inside, leading zeros allowed within 10 digits.
 *  - mx is required at least once unless mode is none; with mode none,
 *    mx lines are allowed but still checked.  An mx value is a host name
 *    in A-label form (RFC 5321 Domain: LDH labels of 1-63 octets, no
 *    leading or trailing hyphen, 253 octets at most, last label not all
 *    digits so that IP addresses are not names), optionally preceded by
 *    "*." (3.2 sts-policy-mx-value).  One trailing dot is accepted and
 *    dropped.  Any other wildcard form is invalid.  Patterns are stored in
 *    lower case and duplicates (after lower-casing) are kept once.
 *  - At most STS_MX_MAX distinct patterns, to bound memory and matching.
 *  - The body is at most STS_BODY_MAX octets (the fetcher's cap).
 */
#include "danests-internal.h"

#include <stdlib.h>
#include <string.h>

#define STS_MX_MAX	1024
#define STS_KEY_MAX	32	/* (ALPHA / DIGIT) *31(...), RFC 8461 3.2 */
#define STS_NAME_MAX	253	/* RFC 1035 2.3.4, without the root dot */

/* to_lower - ASCII lower case, independent of the locale */
static char
to_lower(unsigned char c)
{
	return (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
}

/*
 * sts_name_norm - check that s[0..n) is a host name in A-label form,
 * optionally "*." + host name when wild is set, and copy it lower-cased
 * without its trailing dot into out (STS_NAME_MAX + 1 octets).  Returns
 * 0 or -1.  U-labels (octets >= 0x80), IP literals, "_" and every other
 * wildcard form fail (RFC 8461 3.2, 4.1).
 */
static int
sts_name_norm(const char *s, size_t n, int wild, char *out)
{
	size_t i, o = 0, lablen = 0;
	int alldigit = 1;
	unsigned char c;

	if (n > 0 && s[n - 1] == '.')
		n--;
	if (n == 0 || n > STS_NAME_MAX)
		return -1;
	if (wild && n > 2 && s[0] == '*' && s[1] == '.') {
		out[o++] = '*';
		out[o++] = '.';
	}
	for (i = o; i < n; i++) {
		c = (unsigned char)s[i];
		if (c == '.') {
			if (lablen == 0 || s[i - 1] == '-')
				return -1;
			lablen = 0;
			alldigit = 1;
		} else if (is_alnum(c) || (c == '-' && lablen > 0)) {
			if (++lablen > 63)
				return -1;
			if (c < '0' || c > '9')
				alldigit = 0;
		} else
			return -1;
		out[o++] = to_lower(c);
	}
	/* RFC 1123 2.1: a top-level label is not all-numeric, so dotted
	 * IPv4 addresses are never names. */
	if (lablen == 0 || s[n - 1] == '-' || alldigit)
		return -1;
	out[o] = '\0';
	return 0;
}

/* sts_policy_clear - free the patterns and reset the policy */
void
sts_policy_clear(struct danests_sts_policy *p)
{
	size_t i;

	if (p == NULL)
		return;
	for (i = 0; i < p->nmx; i++)
		free(p->mx[i]);
	free(p->mx);
	memset(p, 0, sizeof(*p));
}

/* sts_policy_copy - deep copy src into dst (dst's old contents ignored) */
danests_status
sts_policy_copy(const struct danests_sts_policy *src,
    struct danests_sts_policy *dst)
{
	size_t i;

	memset(dst, 0, sizeof(*dst));
	dst->mode = src->mode;
	dst->max_age = src->max_age;
	if (src->nmx == 0)
		return DANESTS_OK;
	if ((dst->mx = xcalloc(src->nmx, sizeof(char *))) == NULL)
		return DANESTS_TEMP;
	for (i = 0; i < src->nmx; i++) {
		if ((dst->mx[i] = strdup(src->mx[i])) == NULL) {
			dst->nmx = i;
			sts_policy_clear(dst);
			return DANESTS_TEMP;
		}
	}
	dst->nmx = src->nmx;
	return DANESTS_OK;
}

/* sts_policy_add_mx - append a normalised pattern unless already there */
static danests_status
sts_policy_add_mx(struct danests_sts_policy *p, size_t *cap,
    const char *pat, const char **why)
{
	char **nmx;
	size_t i;

	for (i = 0; i < p->nmx; i++)
		if (strcmp(p->mx[i], pat) == 0)
			return DANESTS_OK;
	if (p->nmx >= STS_MX_MAX) {
		*why = "policy has too many mx patterns";
		return DANESTS_PERM;
	}
	if (p->nmx == *cap) {
		size_t ncap = *cap ? *cap * 2 : 4;

		if ((nmx = reallocarray(p->mx, ncap, sizeof(char *))) == NULL) {
			*why = "out of memory";
			return DANESTS_TEMP;
		}
		p->mx = nmx;
		*cap = ncap;
	}
	if ((p->mx[p->nmx] = strdup(pat)) == NULL) {
		*why = "out of memory";
		return DANESTS_TEMP;
	}
	p->nmx++;
	return DANESTS_OK;
}

/* sts_parse_max_age - 1*10 DIGIT, at most 31557600 (RFC 8461 3.2) */
static int
sts_parse_max_age(const char *v, size_t n, uint32_t *out)
{
	uint64_t x = 0;
	size_t i;

	if (n == 0 || n > 10)
		return -1;
	for (i = 0; i < n; i++) {
		if (v[i] < '0' || v[i] > '9')
			return -1;
		x = x * 10 + (uint64_t)(v[i] - '0');
	}
	if (x > DANESTS_STS_MAX_AGE_MAX)
		return -1;
	*out = (uint32_t)x;
	return 0;
}

/* sts_key_ok - sts-policy-ext-name: (ALPHA / DIGIT) *31(... "_" "-" ".") */
static int
sts_key_ok(const char *k, size_t n)
{
	size_t i;

	if (n == 0 || n > STS_KEY_MAX || !is_alnum((unsigned char)k[0]))
		return 0;
	for (i = 1; i < n; i++)
		if (!is_alnum((unsigned char)k[i]) && k[i] != '_' &&
		    k[i] != '-' && k[i] != '.')
			return 0;
	return 1;
}

/* key_is - exact, case-sensitive key comparison */
static int
key_is(const char *k, size_t n, const char *want)
{
	return strlen(want) == n && memcmp(k, want, n) == 0;
}

/* sts_policy_line - apply one line (without its terminator) */
static danests_status
sts_policy_line(const char *line, size_t n, struct danests_sts_policy *p,
    size_t *cap, unsigned *seen, const char **why)
{
	const char *colon, *k, *v;
	size_t kn, vn, i;
	char pat[STS_NAME_MAX + 1];

	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)line[i];

		if ((c < 0x20 && c != '\t') || c == 0x7f) {
			*why = "control character in policy";
			return DANESTS_PERM;
		}
	}
	while (n > 0 && is_wsp((unsigned char)line[0])) {
		line++;
		n--;
	}
	while (n > 0 && is_wsp((unsigned char)line[n - 1]))
		n--;
	if (n == 0)
		return DANESTS_OK;	/* blank line, see the top */
	if ((colon = memchr(line, ':', n)) == NULL) {
		*why = "policy line without \":\"";
		return DANESTS_PERM;
	}
	k = line;
	kn = (size_t)(colon - line);
	while (kn > 0 && is_wsp((unsigned char)k[kn - 1]))
		kn--;
	v = colon + 1;
	vn = n - (size_t)(v - line);
	while (vn > 0 && is_wsp((unsigned char)v[0])) {
		v++;
		vn--;
	}
	if (!sts_key_ok(k, kn)) {
		*why = "bad key in policy";
		return DANESTS_PERM;
	}

	if (key_is(k, kn, "version")) {
		if (*seen & 1) {
			*why = "policy has version twice";
			return DANESTS_PERM;
		}
		*seen |= 1;
		if (!key_is(v, vn, "STSv1")) {
			*why = "policy version is not STSv1";
			return DANESTS_PERM;
		}
	} else if (key_is(k, kn, "mode")) {
		if (*seen & 2) {
			*why = "policy has mode twice";
			return DANESTS_PERM;
		}
		*seen |= 2;
		if (key_is(v, vn, "enforce"))
			p->mode = DANESTS_STS_ENFORCE;
		else if (key_is(v, vn, "testing"))
			p->mode = DANESTS_STS_TESTING;
		else if (key_is(v, vn, "none"))
			p->mode = DANESTS_STS_NONE;
		else {
			*why = "bad policy mode";
			return DANESTS_PERM;
		}
	} else if (key_is(k, kn, "max_age")) {
		if (*seen & 4) {
			*why = "policy has max_age twice";
			return DANESTS_PERM;
		}
		*seen |= 4;
		if (sts_parse_max_age(v, vn, &p->max_age) != 0) {
			*why = "bad policy max_age";
			return DANESTS_PERM;
		}
	} else if (key_is(k, kn, "mx")) {
		if (sts_name_norm(v, vn, 1, pat) != 0) {
			*why = "bad mx pattern in policy";
			return DANESTS_PERM;
		}
		return sts_policy_add_mx(p, cap, pat, why);
	}
	/* Other keys are extensions: ignored (RFC 8461 3.2). */
	return DANESTS_OK;
}

/* sts_policy_parse - parse a policy body (RFC 8461 3.2) */
danests_status
sts_policy_parse(const char *body, size_t len, struct danests_sts_policy *out,
    const char **why)
{
	const char *dummy, *line, *end, *nl;
	size_t n, cap = 0;
	unsigned seen = 0;
	danests_status st;

	if (why == NULL)
		why = &dummy;
	*why = NULL;
	memset(out, 0, sizeof(*out));
	if (body == NULL) {
		*why = "no policy body";
		return DANESTS_PERM;
	}
	if (len > STS_BODY_MAX) {
		*why = "policy body too large";
		return DANESTS_PERM;
	}
	if (memchr(body, '\0', len) != NULL) {
		*why = "NUL byte in policy";
		return DANESTS_PERM;
	}
	end = body + len;
	for (line = body; line < end; line = nl + 1) {
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;	/* last line without terminator */
		n = (size_t)(nl - line);
		if (n > 0 && line[n - 1] == '\r')
			n--;		/* CRLF */
		st = sts_policy_line(line, n, out, &cap, &seen, why);
		if (st != DANESTS_OK) {
			sts_policy_clear(out);
			return st;
		}
	}
	if (!(seen & 1))
		*why = "policy without version";
	else if (!(seen & 2))
		*why = "policy without mode";
	else if (!(seen & 4))
		*why = "policy without max_age";
	else if (out->nmx == 0 && out->mode != DANESTS_STS_NONE)
		*why = "policy without mx";
	if (*why != NULL) {
		sts_policy_clear(out);
		return DANESTS_PERM;
	}
	return DANESTS_OK;
}

/*
 * sts_policy_mx_match - RFC 8461 4.1: host matches pattern when equal, or
 * when pattern is "*." + suffix and host is exactly one label followed by
 * suffix.  Case-insensitive, one trailing dot ignored on either side.  A
 * host that is not an A-label host name (U-label, IP literal, bad syntax)
 * never matches, nor does a malformed pattern.
 */
bool
sts_policy_mx_match(const char *pattern, const char *host)
{
	char p[STS_NAME_MAX + 1], h[STS_NAME_MAX + 1];
	const char *dot;

	if (pattern == NULL || host == NULL ||
	    sts_name_norm(pattern, strlen(pattern), 1, p) != 0 ||
	    sts_name_norm(host, strlen(host), 0, h) != 0)
		return false;
	if (p[0] != '*')
		return strcmp(p, h) == 0;
	/* The wildcard stands for one whole, non-empty leftmost label. */
	if ((dot = strchr(h, '.')) == NULL)
		return false;
	return strcmp(dot + 1, p + 2) == 0;
}

/* sts_policy_match - does host match any mx pattern of p? */
bool
sts_policy_match(const struct danests_sts_policy *p, const char *host)
{
	size_t i;

	if (p == NULL)
		return false;
	for (i = 0; i < p->nmx; i++)
		if (sts_policy_mx_match(p->mx[i], host))
			return true;
	return false;
}
