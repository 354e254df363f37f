/*
 * tlsrpt_lookup.c - find where a domain wants its TLS reports (RFC 8460 3)
 *
 * One synchronous TXT lookup of _smtp._tls.DOMAIN through the context's
 * resolver, bounded by its DNS timeout.  The outcome:
 *
 *  - DANESTS_OK: exactly one TLSRPT record, well formed (*out filled);
 *  - DANESTS_NOTFOUND: the name does not exist, has no TXT record, none
 *    of its TXT records starts with v=TLSRPTv1, or several do (RFC 8460
 *    3: "If the number of resulting records is not one, senders MUST
 *    assume the recipient domain does not implement TLSRPT");
 *  - DANESTS_PERM: the one TLSRPT record is malformed or has no usable
 *    URI (danests_tlsrpt_parse says why): nothing can be sent;
 *  - DANESTS_TEMP: the lookup failed (timeout, SERVFAIL, network, out of
 *    memory): try again later.
 *
 * DNSSEC is not asked for: RFC 8460 does not require it, and a report
 * carries nothing a forged record could use beyond the counters that any
 * sender may see.
 */
#include "danests-internal.h"
#include "danests-report.h"

#include <arpa/inet.h>
#include <event2/event.h>

#include <stdlib.h>
#include <string.h>

#define TLSRPT_PREFIX	"_smtp._tls."
#define TLSRPT_TXT_MAX	16	/* TXT records looked at, at most */

struct tlsrpt_req {
	bool done;
	bool abandoned;		/* the caller left: the callback frees */
	struct dns_answer *ans;
};

/* tlsrpt_cb - keep the answer for danests_tlsrpt_lookup */
static void
tlsrpt_cb(void *arg, struct dns_answer *ans)
{
	struct tlsrpt_req *q = arg;

	if (q->abandoned) {
		dns_answer_free(ans);
		free(q);
		return;
	}
	q->ans = ans;
	q->done = true;
}

/* tlsrpt_select - the TLSRPT record among the TXT records of ans */
static danests_status
tlsrpt_select(const char *name, const struct dns_answer *ans,
    struct danests_tlsrpt_record *out, char *why, size_t whylen)
{
	struct danests_tlsrpt_record rec;
	char pwhy[DANESTS_WHY_MAX];
	danests_status st, found = DANESTS_NOTFOUND;
	size_t i, len, n = 0;
	char *txt;

	for (i = 0; i < ans->nrr && i < TLSRPT_TXT_MAX; i++) {
		/* a TXT record that cannot be read is no TLSRPT record */
		if ((txt = txt_rdata_join(ans->rr[i].rdata, ans->rr[i].rdlen,
		    &len)) == NULL)
			continue;
		memset(&rec, 0, sizeof(rec));
		pwhy[0] = '\0';
		st = danests_tlsrpt_parse(txt, len, &rec, pwhy, sizeof(pwhy));
		free(txt);
		if (st == DANESTS_NOTFOUND)
			continue;
		if (++n > 1) {
			memset(out, 0, sizeof(*out));
			why_set(why, whylen, "%s: more than one TLSRPT record "
			    "(RFC 8460 3: the domain does not use TLSRPT)",
			    name);
			return DANESTS_NOTFOUND;
		}
		found = st;
		if (st == DANESTS_OK)
			*out = rec;
		else
			why_set(why, whylen, "%s: malformed TLSRPT record: %s",
			    name, pwhy[0] ? pwhy : "invalid");
	}
	if (n == 0)
		why_set(why, whylen, "%s: no TLSRPT record", name);
	else if (found == DANESTS_TEMP)
		found = DANESTS_PERM;	/* the parser has no temporary case */
	return found;
}

/* sync_query - one query on the context's loop, waited for; the answer
 * (the caller frees it) or NULL with why set */
static struct dns_answer *
sync_query(struct danests_ctx *ctx, const char *name, uint16_t type,
    char *why, size_t whylen)
{
	struct tlsrpt_req *q;
	struct dns_answer *ans;

	if ((q = xcalloc(1, sizeof(*q))) == NULL) {
		why_set(why, whylen, "out of memory");
		return NULL;
	}
	if (dns_query(ctx->dns, name, type, tlsrpt_cb, q) != 0) {
		free(q);
		why_set(why, whylen, "%s: cannot start DNS lookup", name);
		return NULL;
	}
	/* the resolver's own timeout ends the query (dns_timeout) */
	while (!q->done)
		if (event_base_loop(ctx->base, EVLOOP_ONCE) != 0 &&
		    !q->done) {
			q->abandoned = true;
			why_set(why, whylen, "%s: event loop stopped", name);
			return NULL;
		}
	ans = q->ans;
	free(q);
	if (ans == NULL)
		why_set(why, whylen, "%s: out of memory", name);
	return ans;
}

/* lookup_failed - why for an answer that is neither data nor a denial */
static void
lookup_failed(const char *name, const char *what,
    const struct dns_answer *ans, char *why, size_t whylen)
{
	why_set(why, whylen, "%s: %s lookup failed: %s", name, what,
	    ans->why[0] ? ans->why : ans->rcode == DNS_R_TIMEOUT ?
	    "timeout" : ans->rcode == DNS_R_SERVFAIL ? "SERVFAIL" : "error");
}

/* danests_tlsrpt_lookup - see danests-report.h */
danests_status
danests_tlsrpt_lookup(struct danests_ctx *ctx, const char *domain,
    struct danests_tlsrpt_record *out, char *why, size_t whylen)
{
	char lower[DANESTS_NAME_MAX], name[DANESTS_NAME_MAX];
	struct dns_answer *ans;
	danests_status st;

	memset(out, 0, sizeof(*out));
	if (domain == NULL || danests_domain_normalize(domain, lower,
	    sizeof(lower)) != DANESTS_OK ||
	    strlen(lower) + sizeof(TLSRPT_PREFIX) - 1 > 253) {
		why_set(why, whylen, "not a usable domain name: %.80s",
		    domain ? domain : "(null)");
		return DANESTS_PERM;
	}
	snprintf(name, sizeof(name), TLSRPT_PREFIX "%s", lower);
	if ((ans = sync_query(ctx, name, DNS_T_TXT, why, whylen)) == NULL)
		return DANESTS_TEMP;
	switch (ans->rcode) {
	case DNS_R_OK:
		st = tlsrpt_select(name, ans, out, why, whylen);
		break;
	case DNS_R_NODATA:
	case DNS_R_NXDOMAIN:
		why_set(why, whylen, "%s: no TLSRPT record (%s)", name,
		    ans->rcode == DNS_R_NXDOMAIN ? "NXDOMAIN" : "no TXT");
		st = DANESTS_NOTFOUND;
		break;
	default:
		lookup_failed(name, "TXT", ans, why, whylen);
		st = DANESTS_TEMP;
		break;
	}
	dns_answer_free(ans);
	return st;
}

/* danests_report_addrs - see danests-report.h */
danests_status
danests_report_addrs(struct danests_ctx *ctx, const char *host, char *out,
    size_t outlen, char *why, size_t whylen)
{
	static const uint16_t types[2] = { DNS_T_A, DNS_T_AAAA };
	char lower[DANESTS_NAME_MAX], text[INET6_ADDRSTRLEN];
	struct dns_answer *ans;
	size_t i, k, off = 0, n = 0;
	bool failed = false, full = false;
	int len;

	if (outlen == 0)
		return DANESTS_PERM;
	out[0] = '\0';
	if (host == NULL || danests_domain_normalize(host, lower,
	    sizeof(lower)) != DANESTS_OK) {
		why_set(why, whylen, "not a usable host name: %.80s",
		    host ? host : "(null)");
		return DANESTS_PERM;
	}
	for (k = 0; k < 2 && !full; k++) {
		if ((ans = sync_query(ctx, lower, types[k], why, whylen)) ==
		    NULL)
			return DANESTS_TEMP;
		if (ans->rcode != DNS_R_OK && ans->rcode != DNS_R_NODATA &&
		    ans->rcode != DNS_R_NXDOMAIN) {
			lookup_failed(lower, k ? "AAAA" : "A", ans, why,
			    whylen);
			failed = true;
		}
		for (i = 0; ans->rcode == DNS_R_OK && i < ans->nrr; i++) {
			if (ans->rr[i].type != types[k] ||
			    ans->rr[i].rdlen != (k ? 16u : 4u) ||
			    inet_ntop(k ? AF_INET6 : AF_INET,
			    ans->rr[i].rdata, text, sizeof(text)) == NULL)
				continue;
			len = snprintf(out + off, outlen - off, k ? "%s[%s]" :
			    "%s%s", n ? "," : "", text);
			if (len < 0 || (size_t)len >= outlen - off) {
				out[off] = '\0';	/* enough addresses */
				full = true;
				break;
			}
			off += (size_t)len;
			n++;
		}
		dns_answer_free(ans);
	}
	if (n > 0)
		return DANESTS_OK;
	if (failed)
		return DANESTS_TEMP;
	why_set(why, whylen, "%s: no address", lower);
	return DANESTS_NOTFOUND;
}
