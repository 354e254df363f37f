/*
 * pfmap.c - socketmap wire format and smtp_tls_policy_maps answers
 *
 * The socketmap protocol (Postfix socketmap_table(5)) frames each request
 * and reply as a netstring (D. J. Bernstein, "Netstrings", 1997):
 * "LEN:DATA," with LEN in decimal, no sign, no leading zeros.  A request
 * is "NAME KEY"; a reply is "OK value", "NOTFOUND ", "TEMP reason",
 * "TIMEOUT reason" or "PERM reason".
 *
 * Postfix decides per next-hop destination, the core per MX host: the
 * answer is the weakest Postfix level that still does at least what the
 * core decided for every host, or, where no level does (DANE and MTA-STS
 * hosts behind an unsigned MX RRset), the one that still authenticates
 * every host (danests-postfix(8), ANSWERS).
 */
#include "pfmap.h"

#include <arpa/inet.h>
#include <stdarg.h>
#include <strings.h>
#include <ctype.h>
#include <stdio.h>
#include <string.h>

/* pfmap_ns_parse - one netstring at the start of buf */
enum pfmap_ns
pfmap_ns_parse(const char *buf, size_t len, size_t max, const char **data,
    size_t *dlen, size_t *used, const char **why)
{
	size_t i, n = 0;

	*why = NULL;
	if (len == 0)
		return PFMAP_NS_MORE;
	for (i = 0; i < len && isdigit((unsigned char)buf[i]); i++) {
		/* No leading zeros: "0" alone is the only length with one. */
		if (i == 1 && buf[0] == '0') {
			*why = "netstring length with a leading zero";
			return PFMAP_NS_BAD;
		}
		n = n * 10 + (size_t)(buf[i] - '0');
		if (n > max) {
			*why = "request too long";
			return PFMAP_NS_BAD;
		}
	}
	if (i == len)
		return PFMAP_NS_MORE;
	if (i == 0 || buf[i] != ':') {
		*why = "malformed netstring length";
		return PFMAP_NS_BAD;
	}
	/* digits, ':', n bytes, ',' */
	if (len - i - 1 < n + 1)
		return PFMAP_NS_MORE;
	if (buf[i + 1 + n] != ',') {
		*why = "netstring not terminated by a comma";
		return PFMAP_NS_BAD;
	}
	*data = buf + i + 1;
	*dlen = n;
	*used = i + 1 + n + 1;
	return PFMAP_NS_OK;
}

/* pfmap_ns_format - data as a netstring */
size_t
pfmap_ns_format(char *out, size_t outlen, const char *data, size_t dlen)
{
	int h;

	h = snprintf(out, outlen, "%zu:", dlen);
	if (h < 0 || (size_t)h + dlen + 2 > outlen)
		return 0;
	memcpy(out + h, data, dlen);
	out[h + dlen] = ',';
	out[h + dlen + 1] = '\0';
	return (size_t)h + dlen + 1;
}

/* name_char - characters allowed in a socketmap name */
static bool
name_char(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.';
}

/* pfmap_request_parse - "NAME KEY" */
danests_status
pfmap_request_parse(const char *data, size_t len, char name[PFMAP_NAME_MAX],
    char key[PFMAP_KEY_MAX], const char **why)
{
	size_t i, sp;

	*why = NULL;
	for (sp = 0; sp < len && data[sp] != ' '; sp++)
		if (!name_char((unsigned char)data[sp])) {
			*why = "bad character in map name";
			return DANESTS_PERM;
		}
	if (sp == len) {
		*why = "request without a key";
		return DANESTS_PERM;
	}
	if (sp == 0 || sp >= PFMAP_NAME_MAX) {
		*why = sp == 0 ? "empty map name" : "map name too long";
		return DANESTS_PERM;
	}
	if (len - sp - 1 == 0) {
		*why = "empty key";
		return DANESTS_PERM;
	}
	if (len - sp - 1 >= PFMAP_KEY_MAX) {
		*why = "key too long";
		return DANESTS_PERM;
	}
	for (i = sp + 1; i < len; i++)
		/* Next hops are printable ASCII without spaces. */
		if ((unsigned char)data[i] <= 0x20 ||
		    (unsigned char)data[i] >= 0x7f) {
			*why = "bad character in key";
			return DANESTS_PERM;
		}
	memcpy(name, data, sp);
	name[sp] = '\0';
	memcpy(key, data + sp + 1, len - sp - 1);
	key[len - sp - 1] = '\0';
	return DANESTS_OK;
}

/* all_digits - a non-empty run of decimal digits */
static bool
all_digits(const char *s)
{
	if (*s == '\0')
		return false;
	for (; *s != '\0'; s++)
		if (!isdigit((unsigned char)*s))
			return false;
	return true;
}

/* is_ip - an IPv4 or IPv6 literal (optionally "ipv6:"-prefixed) */
static bool
is_ip(const char *s)
{
	unsigned char a[16];

	if (strncasecmp(s, "ipv6:", 5) == 0)
		return true;
	return inet_pton(AF_INET, s, a) == 1 || inet_pton(AF_INET6, s, a) == 1;
}

/* pfmap_key_normalize - next-hop key to domain */
danests_status
pfmap_key_normalize(const char *key, char out[PFMAP_DOMAIN_MAX],
    const char **why)
{
	char buf[PFMAP_KEY_MAX], *p, *e;

	*why = NULL;
	if (strlcpy(buf, key, sizeof(buf)) >= sizeof(buf)) {
		*why = "key too long";
		return DANESTS_NOTFOUND;
	}
	if (buf[0] == '.') {
		/* Postfix asks parent-domain keys too; a policy is only
		 * ever given for the exact next hop. */
		*why = "parent-domain key";
		return DANESTS_NOTFOUND;
	}
	p = buf;
	if (*p == '[') {
		if ((e = strchr(p, ']')) == NULL) {
			*why = "unbalanced [";
			return DANESTS_NOTFOUND;
		}
		*e++ = '\0';
		p++;
		if (*e != '\0' && (*e != ':' || !all_digits(e + 1))) {
			*why = "junk after ]";
			return DANESTS_NOTFOUND;
		}
	} else if ((e = strrchr(p, ':')) != NULL) {
		if (strchr(p, ':') != e || !all_digits(e + 1)) {
			*why = is_ip(p) ? "IP literal" : "bad port";
			return DANESTS_NOTFOUND;
		}
		*e = '\0';
	}
	if (is_ip(p)) {
		*why = "IP literal";
		return DANESTS_NOTFOUND;
	}
	if (danests_domain_normalize(p, out, PFMAP_DOMAIN_MAX) != DANESTS_OK) {
		*why = "not a domain name";
		return DANESTS_NOTFOUND;
	}
	return DANESTS_OK;
}

/* pfmap_reply - a reply payload, with control bytes of text replaced */
void
pfmap_reply(danests_status st, const char *text, char *out, size_t outlen)
{
	static const char *const word[] = { "OK", "NOTFOUND", "TEMP", "PERM" };
	size_t n, i;
	int h;

	if ((unsigned)st > DANESTS_PERM)
		st = DANESTS_TEMP;
	if (st == DANESTS_NOTFOUND)
		text = "";
	else if (text == NULL || *text == '\0')
		text = st == DANESTS_OK ? "" : "unspecified error";
	h = snprintf(out, outlen, "%s %s", word[st], text);
	if (h < 0)
		return;
	n = strlen(out);
	for (i = 0; i < n; i++)
		if ((unsigned char)out[i] < 0x20 || (unsigned char)out[i] == 0x7f)
			out[i] = ' ';
}

/* sts_pattern - an MTA-STS mx pattern as a Postfix match= element:
 * "*.example.com" -> ".example.com" (RFC 8461 4.1 matches one label;
 * Postfix's ".example.com" matches any depth).  false for a pattern that
 * cannot be written safely in a policy table entry. */
static bool
sts_pattern(const char *pat, char *out, size_t outlen)
{
	const char *s = pat;
	size_t i;

	if (strncmp(s, "*.", 2) == 0)
		s++;
	if (*s == '\0' || strlen(s) >= outlen)
		return false;
	for (i = 0; s[i] != '\0'; i++) {
		unsigned char c = (unsigned char)s[i];

		if (!(isalnum(c) || c == '-' || c == '.' || c == '_'))
			return false;
		out[i] = (char)tolower(c);
	}
	out[i] = '\0';
	return true;
}

/* append - printf onto out at *off; false when it does not fit */
static bool __attribute__((format(printf, 4, 5)))
append(char *out, size_t outlen, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int h;

	if (*off >= outlen)
		return false;
	va_start(ap, fmt);
	h = vsnprintf(out + *off, outlen - *off, fmt, ap);
	va_end(ap);
	if (h < 0 || (size_t)h >= outlen - *off)
		return false;
	*off += (size_t)h;
	return true;
}

/* secure_answer - "OK secure match=... servername=hostname" for an
 * MTA-STS policy, plus the TLSRPT attributes when the profile asks */
static danests_status
secure_answer(const struct danests_decision *d, const struct pfmap_profile *p,
    char *out, size_t outlen)
{
	const struct danests_sts_policy *pol = &d->sts->policy;
	char pat[PFMAP_DOMAIN_MAX];
	size_t i, off = 0;
	time_t ttl;

	if (pol->nmx == 0)
		goto bad;
	if (!append(out, outlen, &off, "OK secure match="))
		goto big;
	for (i = 0; i < pol->nmx; i++) {
		if (!sts_pattern(pol->mx[i], pat, sizeof(pat)))
			goto bad;
		if (!append(out, outlen, &off, "%s%s", i ? ":" : "", pat))
			goto big;
	}
	/* RFC 8461 4.2: the certificate must be valid for the MX host name;
	 * Postfix sends it as SNI and checks it with servername=hostname. */
	if (!append(out, outlen, &off, " servername=hostname"))
		goto big;
	if (p->tlsrpt) {
		ttl = d->sts->expires - d->sts->fetched;
		if (ttl < 0)
			ttl = 0;
		if (!append(out, outlen, &off, " policy_type=sts "
		    "policy_domain=%s policy_ttl=%lld", d->domain,
		    (long long)ttl))
			goto big;
		/* RFC 8460 4.4 policy-string: the policy's lines, one
		 * attribute each, braced to keep their spaces (Postfix
		 * TLSRPT_README, "MTA-STS Support via smtp_tls_policy_maps") */
		if (!append(out, outlen, &off, " { policy_string = version: "
		    "STSv1 } { policy_string = mode: %s }",
		    pol->mode == DANESTS_STS_ENFORCE ? "enforce" : "testing"))
			goto big;
		for (i = 0; i < pol->nmx; i++)
			if (!append(out, outlen, &off, " { policy_string = "
			    "mx: %s }", pol->mx[i]))
				goto big;
		if (!append(out, outlen, &off, " { policy_string = max_age: "
		    "%lu }", (unsigned long)pol->max_age))
			goto big;
		for (i = 0; i < pol->nmx; i++)
			if (!append(out, outlen, &off, " mx_host_pattern=%s",
			    pol->mx[i]))
				goto big;
	}
	return DANESTS_OK;
big:
	pfmap_reply(DANESTS_TEMP, "MTA-STS policy too large for a reply", out,
	    outlen);
	return DANESTS_TEMP;
bad:
	pfmap_reply(DANESTS_TEMP, "MTA-STS policy has an unusable mx pattern",
	    out, outlen);
	return DANESTS_TEMP;
}

/* pfmap_answer - decision to smtp_tls_policy_maps answer */
danests_status
pfmap_answer(const struct danests_decision *d, const struct pfmap_profile *p,
    char *out, size_t outlen)
{
	size_t i, dane = 0, enc = 0, enforce = 0, testing = 0, may = 0;
	bool secure_mx;
	char why[128];

	if (d->verdict == DANESTS_PERMFAIL) {
		/* NXDOMAIN, null MX: Postfix finds out and bounces. */
		pfmap_reply(DANESTS_NOTFOUND, NULL, out, outlen);
		return DANESTS_NOTFOUND;
	}
	if (d->verdict == DANESTS_TEMPFAIL) {
		snprintf(why, sizeof(why), "%s: %s", d->domain,
		    danests_reason_name(d->reason) ?
		    danests_reason_name(d->reason) : "tempfail");
		pfmap_reply(DANESTS_TEMP, why, out, outlen);
		return DANESTS_TEMP;
	}
	for (i = 0; i < d->nhosts; i++)
		switch (d->hosts[i].policy) {
		case DANESTS_POLICY_DANE:	dane++; break;
		case DANESTS_POLICY_ENCRYPT:	enc++; break;
		case DANESTS_POLICY_STS_ENFORCE: enforce++; break;
		case DANESTS_POLICY_STS_TESTING: testing++; break;
		case DANESTS_POLICY_MAY:	may++; break;
		case DANESTS_POLICY_SKIP:	break;
		default:			enforce++; break; /* unknown: strict */
		}
	if (dane + enc + enforce + testing + may == 0) {
		snprintf(why, sizeof(why), "%s: no usable MX host", d->domain);
		pfmap_reply(DANESTS_TEMP, why, out, outlen);
		return DANESTS_TEMP;
	}
	secure_mx = d->mx_security == DANESTS_SEC_SECURE;
	if (dane + enc > 0 && (secure_mx || enforce == 0)) {
		/* Hosts with a secure TLSA RRset: Postfix looks them up itself
		 * (smtp_dns_support_level = dnssec).  "dane-only" defers hosts
		 * without TLSA rather than sending to them unverified (RFC 8461
		 * 2: MTA-STS never weakens DANE; a host under an enforce
		 * policy without TLSA is deferred, not tried unverified). */
		if (enforce > 0 || (testing + may == 0 && enc == 0 &&
		    secure_mx))
			pfmap_reply(DANESTS_OK, "dane-only", out, outlen);
		else if (testing + may + enc == 0)
			/* An insecure MX RRset (RFC 7672 2.2.1): Postfix's
			 * dane-only defers it as "non DNSSEC destination";
			 * "dane" with smtp_tls_dane_insecure_mx_policy = dane
			 * still authenticates every host with TLSA. */
			pfmap_reply(DANESTS_OK, "dane", out, outlen);
		else if (testing + may == 0 && dane == 0)
			pfmap_reply(DANESTS_OK, "encrypt", out, outlen);
		else
			pfmap_reply(DANESTS_OK, "dane", out, outlen);
		return DANESTS_OK;
	}
	/* MTA-STS enforce; also DANE hosts and enforce hosts behind an MX
	 * RRset that is not DNSSEC-validated.  Postfix 3.7 takes one level
	 * per next hop: there "dane-only" defers every host ("non DNSSEC
	 * destination") and "dane", even with smtp_tls_dane_insecure_mx_policy
	 * = dane, sends to the hosts without TLSA opportunistically.  The one
	 * level that authenticates every host is the policy's: a DANE host is
	 * then checked under the WebPKI against the policy's patterns instead
	 * of its TLSA records, and deferred when its certificate matches none.
	 * Whoever can forge the unsigned MX RRset (RFC 7672 2.2.1) can already
	 * steer delivery to any host the policy allows. */
	if (d->sts != NULL && (enforce > 0 ||
	    (testing > 0 && p->strict_testing)))
		return secure_answer(d, p, out, outlen);
	if (enforce > 0) {
		/* enforce hosts without a policy to name them: never less */
		snprintf(why, sizeof(why), "%s: MTA-STS policy missing",
		    d->domain);
		pfmap_reply(DANESTS_TEMP, why, out, outlen);
		return DANESTS_TEMP;
	}
	/* may and sts-testing: Postfix's own default level applies. */
	pfmap_reply(DANESTS_NOTFOUND, NULL, out, outlen);
	return DANESTS_NOTFOUND;
}
