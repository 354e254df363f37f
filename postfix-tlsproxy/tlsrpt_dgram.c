/*
 * tlsrpt_dgram.c - parse the datagrams libtlsrpt sends for Postfix >= 3.10
 *
 * libtlsrpt (the TLSRPT client library Postfix links with) writes one JSON
 * object per delivery request and sends it as one datagram:
 *
 *	{"dpv": "1", "d": "DOMAIN", "pr": "TLSRPT RECORD",
 *	 "policies": [{"policy-type": 1|2|9, "policy-domain": "NAME",
 *	   "policy-string": ["LINE", ...], "mx-host": ["PATTERN", ...],
 *	   "failure-details": [{"c": CODE, "s": "SENDING IP",
 *	     "n": "MX NAME", "h": "EHLO RESPONSE", "r": "MX IP",
 *	     "a": "ADDITIONAL INFORMATION", "f": "FAILURE REASON"}],
 *	   "t": FAILURE COUNT, "f": 0|1}]}
 *
 * "dpv" (datagram protocol version) first appeared in libtlsrpt 0.5.0;
 * Debian 13's 0.5.0rc1 omits it.  The optional members are left out when
 * the caller passed none.  Policy types and result codes are the numbers
 * of RFC 8460 4.4 and 4.3 as libtlsrpt numbers them (tlsa 1, sts 2,
 * no-policy-found 9; 201-205 negotiation, 301-303 MTA-STS, 304-306 DNS).
 *
 * Each policy of a datagram is one session (RFC 8460 4.3: one result per
 * TLS negotiation attempt); "f" is its final result.  Postfix sends one
 * policy per datagram and, on failure, one failure detail.
 *
 * Strict: a datagram that breaks any rule below records nothing.
 *  - a JSON object with exactly the members above, no duplicates, the
 *    right JSON types, no unknown member (a new datagram version must be
 *    read, not guessed); "dpv", when present, is "1";
 *  - "d" is a domain name in A-label form (the TLSRPT policy domain: the
 *    results are counted under it); "pr" begins with v=TLSRPTv1;
 *  - a failed session ("f" 1) has at least one failure detail, a
 *    successful one none, and "t" counts them;
 *  - tlsa and sts policies carry their policy strings (TLSA records as
 *    "U S M HEX"; the STS policy's lines), sts its mx patterns; for
 *    no-policy-found both are ignored (RFC 8460 4.4: none exists);
 *  - addresses are numeric IPv4 or IPv6, host names are host names.
 * Normalised, not refused: names lower case without the trailing dot;
 * the EHLO response (Postfix passes it whole) becomes the host name of
 * its first line, or nothing; free text (the failure reason "f", else the
 * additional information "a") becomes printable ASCII (control characters
 * spaces, other characters '?') cut at DANESTS_RPT_FIELD_MAX bytes; only
 * the first failure detail of a session is recorded.
 */
#include "tlsrpt_dgram.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* One session, ready for danests_report_record. */
struct session {
	struct danests_rpt_result r;
	char ps[DANESTS_RPT_STRING_MAX + 1];	/* policy strings */
	char mx[DANESTS_RPT_STRING_MAX + 1];	/* mx patterns / TLSA host */
	char pdom[DANESTS_RPT_FIELD_MAX + 1];	/* policy-domain */
	char rmx[DANESTS_RPT_FIELD_MAX + 1];	/* receiving-mx-hostname */
	char helo[DANESTS_RPT_FIELD_MAX + 1];	/* receiving-mx-helo */
	char info[DANESTS_RPT_FIELD_MAX + 1];	/* failure-reason-code */
};

struct parsed {
	char domain[DANESTS_RPT_FIELD_MAX + 1];
	size_t n;
	struct session s[TLSRPT_DGRAM_POLICIES];
};

/* bad - set why; DANESTS_PERM */
static danests_status __attribute__((format(printf, 3, 4)))
bad(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
	return DANESTS_PERM;
}

/* keys_ok - every member of o is one of keys (NULL-terminated) */
static bool
keys_ok(json_t *o, const char *const *keys, const char **unknown)
{
	const char *k;
	json_t *v;
	size_t i;

	json_object_foreach(o, k, v) {
		for (i = 0; keys[i] != NULL; i++)
			if (strcmp(k, keys[i]) == 0)
				break;
		if (keys[i] == NULL) {
			*unknown = k;
			return false;
		}
	}
	return true;
}

/* host_norm - a host name (LDH labels, '_' allowed, 1-63 octets each,
 * at most 253 in all, one trailing dot dropped) into out, lower case */
static bool
host_norm(const char *in, char *out, size_t outlen)
{
	size_t i, n = strlen(in), lab = 0;

	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n >= outlen)
		return false;
	for (i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];

		if (c == '.') {
			if (lab == 0)
				return false;
			lab = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_') {
			lab++;
		} else if (c >= 'A' && c <= 'Z') {
			c = (unsigned char)(c - 'A' + 'a');
			lab++;
		} else
			return false;
		if (lab > 63)
			return false;
		out[i] = (char)c;
	}
	if (lab == 0)
		return false;
	out[n] = '\0';
	return true;
}

/* ip_ok - a numeric IPv4 or IPv6 address */
static bool
ip_ok(const char *s)
{
	unsigned char a[16];

	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* text_ok - no control characters (jansson has checked the UTF-8) */
static bool
text_ok(const char *s)
{
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* text_cut - s into out as printable ASCII, what the store keeps:
 * control characters made spaces, each other character '?', cut to fit */
static void
text_cut(const char *s, char *out, size_t outlen)
{
	size_t o = 0;
	unsigned char c;

	for (; (c = (unsigned char)*s) != '\0' && o + 1 < outlen; s++) {
		if (c >= 0x80 && (c & 0xc0) == 0x80)
			continue;	/* a UTF-8 continuation byte */
		out[o++] = c < 0x20 || c == 0x7f ? ' ' : c >= 0x80 ? '?' :
		    (char)c;
	}
	out[o] = '\0';
}

/* tlsa_ok - "USAGE SELECTOR MTYPE HEX" as Postfix writes a TLSA record
 * (RFC 6698 2.2 presentation form, the data in one piece) */
static bool
tlsa_ok(const char *s)
{
	int i;
	size_t h;

	for (i = 0; i < 3; i++) {
		if (*s < '0' || *s > '9')
			return false;
		if (strtoul(s, NULL, 10) > 255)
			return false;
		while (*s >= '0' && *s <= '9')
			s++;
		if (*s++ != ' ')
			return false;
	}
	h = strspn(s, "0123456789abcdefABCDEF");
	return h > 0 && h % 2 == 0 && s[h] == '\0';
}

/* pattern_norm - an STS mx pattern (RFC 8461 3.2: a host name, or "*."
 * and one) into out, lower case */
static bool
pattern_norm(const char *in, char *out, size_t outlen)
{
	if (strncmp(in, "*.", 2) == 0) {
		if (outlen < 3)
			return false;
		memcpy(out, "*.", 2);
		return host_norm(in + 2, out + 2, outlen - 2);
	}
	return host_norm(in, out, outlen);
}

enum kind { K_TEXT, K_TLSA, K_PATTERN };

/* join - a JSON array of strings of one kind into out, '\n' between */
static danests_status
join(json_t *a, enum kind k, const char *name, char *out, size_t outlen,
    char *why, size_t whylen)
{
	char one[DANESTS_RPT_FIELD_MAX + 1];
	size_t i, off = 0, n;
	const char *s;
	json_t *v;

	out[0] = '\0';
	if (!json_is_array(a))
		return bad(why, whylen, "%s is not an array", name);
	json_array_foreach(a, i, v) {
		if (!json_is_string(v))
			return bad(why, whylen, "%s[%zu] is not a string",
			    name, i);
		s = json_string_value(v);
		if (json_string_length(v) != strlen(s) || *s == '\0' ||
		    !text_ok(s))
			return bad(why, whylen, "%s[%zu] is empty or has "
			    "control characters", name, i);
		switch (k) {
		case K_TLSA:
			if (!tlsa_ok(s))
				return bad(why, whylen, "%s[%zu] is not a TLSA "
				    "record", name, i);
			break;
		case K_PATTERN:
			if (!pattern_norm(s, one, sizeof(one)))
				return bad(why, whylen, "%s[%zu] is not an mx "
				    "pattern", name, i);
			s = one;
			break;
		case K_TEXT:
			break;
		}
		n = strlen(s);
		if (off + (off > 0) + n >= outlen)
			return bad(why, whylen, "%s longer than %zu bytes",
			    name, outlen - 1);
		if (off > 0)
			out[off++] = '\n';
		memcpy(out + off, s, n + 1);
		off += n;
	}
	return DANESTS_OK;
}

/* result_type - libtlsrpt's failure code to the RFC 8460 4.3 result type,
 * DANESTS_RT_NONE when unknown */
static danests_result_type
result_type(json_int_t code)
{
	static const struct {
		int code;
		const char *name;
	} codes[] = {
		{ 201, "starttls-not-supported" },
		{ 202, "certificate-host-mismatch" },
		{ 203, "certificate-not-trusted" },
		{ 204, "certificate-expired" },
		{ 205, "validation-failure" },
		{ 301, "sts-policy-fetch-error" },
		{ 302, "sts-policy-invalid" },
		{ 303, "sts-webpki-invalid" },
		{ 304, "tlsa-invalid" },
		{ 305, "dnssec-invalid" },
		{ 306, "dane-required" },
	};
	const char *n;
	size_t i;
	int t;

	for (i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		if (codes[i].code != code)
			continue;
		for (t = DANESTS_RT_NONE + 1;
		    (n = danests_result_type_name((danests_result_type)t)) !=
		    NULL; t++)
			if (strcmp(n, codes[i].name) == 0)
				return (danests_result_type)t;
	}
	return DANESTS_RT_NONE;
}

/* How a failure detail string may look. */
enum text { T_FIELD, T_LINES, T_FREE };

/* opt_string - member k of o: NULL when absent or "", else a string;
 * T_FIELD allows no control character, T_LINES CR and LF (the EHLO
 * response), T_FREE any (text_cut makes them spaces) */
static danests_status
opt_string(json_t *o, const char *k, enum text t, const char **out,
    char *why, size_t whylen)
{
	json_t *v = json_object_get(o, k);
	const char *s, *p;

	*out = NULL;
	if (v == NULL)
		return DANESTS_OK;
	if (!json_is_string(v))
		return bad(why, whylen, "failure detail \"%s\" is not a string",
		    k);
	s = json_string_value(v);
	if (json_string_length(v) != strlen(s))
		return bad(why, whylen, "failure detail \"%s\" holds a NUL", k);
	for (p = s; *p != '\0' && t != T_FREE; p++)
		if (((unsigned char)*p < 0x20 || *p == 0x7f) &&
		    !(t == T_LINES && (*p == '\r' || *p == '\n')))
			return bad(why, whylen, "failure detail \"%s\" has "
			    "control characters", k);
	if (*s != '\0')
		*out = s;
	return DANESTS_OK;
}

/* helo_norm - the host name an EHLO response names on its first line
 * ("250-NAME greeting" or "NAME greeting"); false when it names none */
static bool
helo_norm(const char *resp, char *out, size_t outlen)
{
	char first[DANESTS_RPT_FIELD_MAX + 1];
	size_t n;

	if (strlen(resp) >= 4 && resp[0] >= '2' && resp[0] <= '5' &&
	    resp[1] >= '0' && resp[1] <= '9' && resp[2] >= '0' &&
	    resp[2] <= '9' && (resp[3] == '-' || resp[3] == ' '))
		resp += 4;
	n = strcspn(resp, " \r\n");
	if (n == 0 || n >= sizeof(first))
		return false;
	memcpy(first, resp, n);
	first[n] = '\0';
	return host_norm(first, out, outlen);
}

/* detail - the first failure detail of a session into s */
static danests_status
detail(json_t *o, struct session *s, char *why, size_t whylen)
{
	static const char *const keys[] = { "c", "s", "n", "h", "r", "a", "f",
	    NULL };
	const char *unknown, *snd, *name, *helo, *rip, *add, *reason;
	json_t *c;

	if (!json_is_object(o))
		return bad(why, whylen, "a failure detail is not an object");
	if (!keys_ok(o, keys, &unknown))
		return bad(why, whylen, "unknown failure detail member \"%.40s\"",
		    unknown);
	c = json_object_get(o, "c");
	if (c == NULL || !json_is_integer(c))
		return bad(why, whylen, "failure detail without a numeric "
		    "result type \"c\"");
	if (opt_string(o, "s", T_FIELD, &snd, why, whylen) != DANESTS_OK ||
	    opt_string(o, "n", T_FIELD, &name, why, whylen) != DANESTS_OK ||
	    opt_string(o, "h", T_LINES, &helo, why, whylen) != DANESTS_OK ||
	    opt_string(o, "r", T_FIELD, &rip, why, whylen) != DANESTS_OK ||
	    opt_string(o, "a", T_FREE, &add, why, whylen) != DANESTS_OK ||
	    opt_string(o, "f", T_FREE, &reason, why, whylen) != DANESTS_OK)
		return DANESTS_PERM;
	if (s == NULL)
		return DANESTS_OK;	/* checked only: not the first */
	if ((s->r.result_type = result_type(json_integer_value(c))) ==
	    DANESTS_RT_NONE)
		return bad(why, whylen, "unknown result type %lld",
		    (long long)json_integer_value(c));
	if (snd != NULL && !ip_ok(snd))
		return bad(why, whylen, "sending-mta-ip is not an address");
	if (rip != NULL && !ip_ok(rip))
		return bad(why, whylen, "receiving-ip is not an address");
	if (name != NULL && !host_norm(name, s->rmx, sizeof(s->rmx)))
		return bad(why, whylen, "receiving-mx-hostname is not a host "
		    "name");
	s->r.sending_mta_ip = snd;
	s->r.receiving_ip = rip;
	s->r.receiving_mx_hostname = name != NULL ? s->rmx : NULL;
	s->r.receiving_mx_helo = helo != NULL &&
	    helo_norm(helo, s->helo, sizeof(s->helo)) ? s->helo : NULL;
	if (reason == NULL)
		reason = add;
	if (reason != NULL) {
		text_cut(reason, s->info, sizeof(s->info));
		s->r.additional_info = s->info;
	}
	return DANESTS_OK;
}

/* policy - one element of "policies" into s */
static danests_status
policy(json_t *o, size_t idx, struct session *s, const char *domain,
    size_t *extra, char *why, size_t whylen)
{
	static const char *const keys[] = { "policy-type", "policy-domain",
	    "policy-string", "mx-host", "failure-details", "t", "f", NULL };
	const char *unknown, *pd = NULL;
	json_t *v, *fd;
	json_int_t type, t, f;
	size_t nd, i;
	danests_status st;
	enum kind pk;

	memset(&s->r, 0, sizeof(s->r));
	s->ps[0] = s->mx[0] = '\0';
	if (!json_is_object(o))
		return bad(why, whylen, "policies[%zu] is not an object", idx);
	if (!keys_ok(o, keys, &unknown))
		return bad(why, whylen, "policies[%zu]: unknown member "
		    "\"%.40s\"", idx, unknown);
	v = json_object_get(o, "policy-type");
	if (v == NULL || !json_is_integer(v))
		return bad(why, whylen, "policies[%zu]: no numeric policy-type",
		    idx);
	type = json_integer_value(v);
	if (type != DANESTS_RPT_TLSA && type != DANESTS_RPT_STS &&
	    type != DANESTS_RPT_NO_POLICY)
		return bad(why, whylen, "policies[%zu]: unknown policy-type "
		    "%lld", idx, (long long)type);
	v = json_object_get(o, "t");
	fd = json_object_get(o, "f");
	if (v == NULL || !json_is_integer(v) || fd == NULL ||
	    !json_is_integer(fd))
		return bad(why, whylen, "policies[%zu]: no numeric \"t\" and "
		    "\"f\"", idx);
	t = json_integer_value(v);
	f = json_integer_value(fd);
	if (f != 0 && f != 1)
		return bad(why, whylen, "policies[%zu]: final result %lld is "
		    "neither 0 nor 1", idx, (long long)f);
	if ((v = json_object_get(o, "policy-domain")) != NULL) {
		if (!json_is_string(v) ||
		    !host_norm(json_string_value(v), s->pdom, sizeof(s->pdom)))
			return bad(why, whylen, "policies[%zu]: policy-domain "
			    "is not a domain name", idx);
		pd = s->pdom;
	}
	pk = type == DANESTS_RPT_TLSA ? K_TLSA : K_TEXT;
	if ((v = json_object_get(o, "policy-string")) != NULL &&
	    (st = join(v, pk, "policy-string", s->ps, sizeof(s->ps), why,
	    whylen)) != DANESTS_OK)
		return st;
	if ((v = json_object_get(o, "mx-host")) != NULL &&
	    (st = join(v, type == DANESTS_RPT_STS ? K_PATTERN : K_TEXT,
	    "mx-host", s->mx, sizeof(s->mx), why, whylen)) != DANESTS_OK)
		return st;
	s->r.policy_domain = domain;
	s->r.policy_type = (danests_rpt_policy_type)type;
	switch (type) {
	case DANESTS_RPT_TLSA:
		/* Postfix names the TLSA base domain (the MX host, RFC 7672
		 * 2.2.3) as the policy's domain; RFC 8460 4.4 mx-host */
		if (s->ps[0] == '\0')
			return bad(why, whylen, "policies[%zu]: tlsa policy "
			    "without TLSA records", idx);
		s->r.policy_string = s->ps;
		if (s->mx[0] == '\0' && pd != NULL)
			strlcpy(s->mx, pd, sizeof(s->mx));
		s->r.mx_host = s->mx[0] != '\0' ? s->mx : NULL;
		break;
	case DANESTS_RPT_STS:
		if (s->ps[0] == '\0')
			return bad(why, whylen, "policies[%zu]: sts policy "
			    "without its policy strings", idx);
		s->r.policy_string = s->ps;
		s->r.mx_host = s->mx[0] != '\0' ? s->mx : NULL;
		break;
	default:
		/* no-policy-found has neither (RFC 8460 4.4) */
		break;
	}
	fd = json_object_get(o, "failure-details");
	if (fd != NULL && !json_is_array(fd))
		return bad(why, whylen, "policies[%zu]: failure-details is not "
		    "an array", idx);
	nd = fd != NULL ? json_array_size(fd) : 0;
	if (nd > TLSRPT_DGRAM_DETAILS)
		return bad(why, whylen, "policies[%zu]: more than %d failure "
		    "details", idx, TLSRPT_DGRAM_DETAILS);
	if (t < 0 || (size_t)t != nd)
		return bad(why, whylen, "policies[%zu]: \"t\" is %lld for %zu "
		    "failure details", idx, (long long)t, nd);
	if (f == 0 && nd > 0)
		return bad(why, whylen, "policies[%zu]: success with failure "
		    "details", idx);
	if (f == 1 && nd == 0)
		return bad(why, whylen, "policies[%zu]: failure without a "
		    "failure detail", idx);
	s->r.success = f == 0;
	for (i = 0; i < nd; i++)
		if ((st = detail(json_array_get(fd, i), i == 0 ? s : NULL, why,
		    whylen)) != DANESTS_OK)
			return st;
	if (nd > 1)
		*extra += nd - 1;
	return DANESTS_OK;
}

/* tlsrpt_dgram_parse - see tlsrpt_dgram.h */
danests_status
tlsrpt_dgram_parse(const void *buf, size_t len, tlsrpt_dgram_fn *fn,
    void *arg, struct tlsrpt_dgram_info *info, char *why, size_t whylen)
{
	static const char *const keys[] = { "dpv", "d", "pr", "policies",
	    NULL };
	struct tlsrpt_dgram_info dummy;
	struct parsed *p = NULL;
	json_error_t err;
	json_t *root, *v, *pol;
	const char *unknown, *s;
	danests_status st = DANESTS_PERM;
	size_t i, extra = 0;

	if (info == NULL)
		info = &dummy;
	memset(info, 0, sizeof(*info));
	if (len == 0 || len > TLSRPT_DGRAM_MAX)
		return bad(why, whylen, "datagram of %zu bytes", len);
	if (memchr(buf, '\0', len) != NULL)
		return bad(why, whylen, "datagram holds a NUL byte");
	if ((root = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &err)) ==
	    NULL)
		return bad(why, whylen, "not JSON: %s (offset %d)", err.text,
		    err.position);
	if (!json_is_object(root)) {
		bad(why, whylen, "not a JSON object");
		goto out;
	}
	if (!keys_ok(root, keys, &unknown)) {
		bad(why, whylen, "unknown member \"%.40s\"", unknown);
		goto out;
	}
	if ((v = json_object_get(root, "dpv")) != NULL &&
	    (!json_is_string(v) || strcmp(json_string_value(v), "1") != 0)) {
		bad(why, whylen, "datagram protocol version is not \"1\"");
		goto out;
	}
	if ((p = malloc(sizeof(*p))) == NULL) {
		snprintf(why, whylen, "out of memory");
		st = DANESTS_TEMP;
		goto out;
	}
	v = json_object_get(root, "d");
	if (v == NULL || !json_is_string(v) ||
	    !host_norm(json_string_value(v), p->domain, sizeof(p->domain))) {
		bad(why, whylen, "\"d\" is not a domain name");
		goto out;
	}
	/* the record Postfix found; validated, not recorded (danests
	 * reads the domain's record itself when it sends) */
	v = json_object_get(root, "pr");
	if (v == NULL || !json_is_string(v) ||
	    json_string_length(v) > DANESTS_RPT_STRING_MAX ||
	    strncmp((s = json_string_value(v)), "v=TLSRPTv1", 10) != 0 ||
	    json_string_length(v) != strlen(s) || !text_ok(s)) {
		bad(why, whylen, "\"pr\" is not a TLSRPT record");
		goto out;
	}
	pol = json_object_get(root, "policies");
	if (pol == NULL || !json_is_array(pol) || json_array_size(pol) == 0 ||
	    json_array_size(pol) > TLSRPT_DGRAM_POLICIES) {
		bad(why, whylen, "\"policies\" is not an array of 1 to %d",
		    TLSRPT_DGRAM_POLICIES);
		goto out;
	}
	p->n = json_array_size(pol);
	for (i = 0; i < p->n; i++)
		if ((st = policy(json_array_get(pol, i), i, &p->s[i], p->domain,
		    &extra, why, whylen)) != DANESTS_OK)
			goto out;
	info->extra_details = extra;
	st = DANESTS_OK;
	for (i = 0; i < p->n && st == DANESTS_OK; i++)
		if ((st = fn(arg, &p->s[i].r, why, whylen)) == DANESTS_OK)
			info->sessions++;
out:
	free(p);
	json_decref(root);
	return st;
}
