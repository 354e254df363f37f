/*
 * rules.c - the decision rules (RFC 7672, RFC 7505, RFC 8461), pure
 *
 * What the DNS answers and the MTA-STS lookup of a domain mean for each of
 * its MX hosts and for the domain: the MX RRset, a host's addresses, its
 * TLSA RRset, the merge with the MTA-STS policy (DANE first, RFC 8461 2)
 * and the verdict.  No I/O, no clock, no event loop: decide.c runs the
 * lookups and calls these with their answers; tests/unit/test_rules.c
 * drives them with tables.  Any DNS failure makes the affected host or
 * domain fail (skip/tempfail); nothing degrades to a weaker policy
 * because a lookup failed.
 */
#include "danests-internal.h"

#include <stdlib.h>
#include <string.h>

#define MX_HOSTS_MAX	32	/* more MX hosts than this are ignored */

/* rules_lookup_failed - a lookup that says nothing about the data */
bool
rules_lookup_failed(const struct dns_answer *a)
{
	return a == NULL || a->rcode == DNS_R_SERVFAIL ||
	    a->rcode == DNS_R_TIMEOUT || a->rcode == DNS_R_ERROR;
}

/* rules_dns_reason - the reason code of a failed lookup */
danests_reason
rules_dns_reason(const struct dns_answer *a)
{
	if (a == NULL)
		return DANESTS_R_DNS_ERROR;
	switch (a->rcode) {
	case DNS_R_SERVFAIL:
		return DANESTS_R_DNSSEC_INVALID;
	case DNS_R_TIMEOUT:
		return DANESTS_R_DNS_TIMEOUT;
	default:
		return DANESTS_R_DNS_ERROR;
	}
}

/* rules_skip_host - never connect to this host, for reason */
void
rules_skip_host(struct danests_host *h, danests_reason reason)
{
	h->policy = DANESTS_POLICY_SKIP;
	h->reason = reason;
}

/* host_add - one more MX host, unless its name is already listed (the
 * lower preference wins); 0, or -1 when out of memory */
static int
host_add(struct danests_decision *d, const char *name, int prio)
{
	struct danests_host *n;
	size_t i;

	for (i = 0; i < d->nhosts; i++)
		if (name_eq(d->hosts[i].name, name)) {
			if (prio < d->hosts[i].priority)
				d->hosts[i].priority = prio;
			return 0;
		}
	if (d->nhosts >= MX_HOSTS_MAX)
		return 0;
	if ((n = realloc(d->hosts, (d->nhosts + 1) * sizeof(*n))) == NULL)
		return -1;
	d->hosts = n;
	memset(&n[d->nhosts], 0, sizeof(*n));
	if ((n[d->nhosts].name = strdup(name)) == NULL)
		return -1;
	n[d->nhosts].priority = prio;
	d->nhosts++;
	return 0;
}

/* host_cmp - MX preference order; names break ties for stable output */
static int
host_cmp(const void *a, const void *b)
{
	const struct danests_host *x = a, *y = b;

	if (x->priority != y->priority)
		return x->priority < y->priority ? -1 : 1;
	return strcmp(x->name, y->name);
}

/*
 * rules_mx - the MX RRset of d's domain (RFC 7672 2.2.1, RFC 7505, RFC
 * 5321 5.1): a failed lookup tempfails, NXDOMAIN and a null MX permfail,
 * no MX makes the domain (or its CNAME target) the one host.  The hosts
 * come out in delivery order, each skipped for dns-timeout until its own
 * lookups say otherwise.  -1 when memory ran out.
 */
int
rules_mx(struct danests_decision *d, const struct dns_answer *ans)
{
	size_t i, nnull = 0;

	if (rules_lookup_failed(ans)) {
		d->mx_security = ans && ans->rcode == DNS_R_SERVFAIL ?
		    DANESTS_SEC_BOGUS : DANESTS_SEC_INDETERMINATE;
		d->verdict = DANESTS_TEMPFAIL;
		d->reason = rules_dns_reason(ans);
		return 0;
	}
	d->mx_security = ans->sec;
	if (ans->cname != NULL && (d->mx_cname = strdup(ans->cname)) == NULL)
		return -1;
	switch (ans->rcode) {
	case DNS_R_NXDOMAIN:
		d->verdict = DANESTS_PERMFAIL;
		d->reason = DANESTS_R_NXDOMAIN;
		return 0;
	case DNS_R_NODATA:
		/* RFC 5321 5.1: no MX, the domain itself is the host;
		 * after a CNAME, its target. */
		d->implicit_mx = true;
		if (host_add(d, ans->cname ? ans->cname : d->domain, 0) != 0)
			return -1;
		break;
	default:
		for (i = 0; i < ans->nrr; i++)
			if (ans->rr[i].target[0] == '\0')
				nnull++;
		/* RFC 7505 3: a single MX with root target and preference
		 * 0 or any: the domain accepts no mail. */
		if (nnull > 0 && nnull == ans->nrr) {
			d->verdict = DANESTS_PERMFAIL;
			d->reason = DANESTS_R_NULL_MX;
			return 0;
		}
		for (i = 0; i < ans->nrr; i++)
			if (ans->rr[i].target[0] != '\0' && host_add(d,
			    ans->rr[i].target, ans->rr[i].pref) != 0)
				return -1;
		break;
	}
	qsort(d->hosts, d->nhosts, sizeof(*d->hosts), host_cmp);
	for (i = 0; i < d->nhosts; i++) {
		d->hosts[i].policy = DANESTS_POLICY_SKIP;
		d->hosts[i].reason = DANESTS_R_DNS_TIMEOUT;
		d->hosts[i].addr_security = DANESTS_SEC_INDETERMINATE;
		d->hosts[i].tlsa_security = DANESTS_SEC_INDETERMINATE;
	}
	return 0;
}

/*
 * rules_addrs - a host's A and AAAA answers (RFC 7672 2.2.2), its
 * addresses already collected: a bogus RRset or no address skips the
 * host, insecure addresses make it "may" without a TLSA lookup.  True
 * when its TLSA RRset is to be looked up.
 */
bool
rules_addrs(struct danests_host *h, const struct dns_answer *a,
    const struct dns_answer *aaaa)
{
	const struct dns_answer *as[2] = { a, aaaa };
	bool any_fail = false, all_secure = true;
	danests_reason fail = DANESTS_R_NONE;
	int k;

	for (k = 0; k < 2; k++) {
		if (rules_lookup_failed(as[k])) {
			any_fail = true;
			if (fail == DANESTS_R_NONE || (as[k] && as[k]->rcode ==
			    DNS_R_SERVFAIL))
				fail = rules_dns_reason(as[k]);
			continue;
		}
		if (as[k]->sec != DANESTS_SEC_SECURE)
			all_secure = false;
	}
	/* A bogus address RRset may be an attack on this host. */
	if (fail == DANESTS_R_DNSSEC_INVALID) {
		h->addr_security = DANESTS_SEC_BOGUS;
		rules_skip_host(h, DANESTS_R_DNSSEC_INVALID);
		return false;
	}
	if (h->naddrs == 0) {
		h->addr_security = any_fail ? DANESTS_SEC_INDETERMINATE :
		    a->sec;
		rules_skip_host(h, any_fail ? fail : DANESTS_R_NO_ADDRESS);
		return false;
	}
	h->addr_security = all_secure ? DANESTS_SEC_SECURE :
	    DANESTS_SEC_INSECURE;
	if (!all_secure) {
		/* RFC 7672 2.2.2: no TLSA lookup for insecure addresses. */
		h->policy = DANESTS_POLICY_MAY;
		h->reason = DANESTS_R_ADDR_INSECURE;
		return false;
	}
	return true;
}

/*
 * rules_tlsa - a host's TLSA answer (RFC 7672 2.2.3, RFC 7671 7).
 * expanded: the lookup was at the CNAME-expanded name, and a secure
 * denial there asks for the original name (RULES_TLSA_RETRY).  mx_secure:
 * the MX RRset was secure.  The usable records are added to h->tlsa.
 */
enum rules_tlsa
rules_tlsa(struct danests_host *h, const struct dns_answer *ans,
    bool expanded, bool mx_secure)
{
	struct danests_tlsa t, *nt;
	enum rules_tlsa rc = RULES_TLSA_DONE;
	const char *why;
	size_t i;

	if (rules_lookup_failed(ans)) {
		/* RFC 7672 2.2.3: a failed TLSA lookup makes the host
		 * unusable; it must not become "no TLSA". */
		h->tlsa_security = ans && ans->rcode == DNS_R_SERVFAIL ?
		    DANESTS_SEC_BOGUS : DANESTS_SEC_INDETERMINATE;
		rules_skip_host(h, ans && ans->rcode == DNS_R_SERVFAIL ?
		    DANESTS_R_TLSA_INVALID : rules_dns_reason(ans));
		return RULES_TLSA_DONE;
	}
	h->tlsa_security = ans->sec;
	if (ans->rcode != DNS_R_OK) {
		/* Secure denial at the expanded name: try the original
		 * name (RFC 7672 2.2.3). */
		if (expanded && ans->sec == DANESTS_SEC_SECURE)
			return RULES_TLSA_RETRY;
		h->policy = DANESTS_POLICY_MAY;
		h->reason = ans->sec == DANESTS_SEC_SECURE ?
		    DANESTS_R_NO_TLSA : DANESTS_R_TLSA_INSECURE;
		return RULES_TLSA_DONE;
	}
	if (ans->sec != DANESTS_SEC_SECURE) {
		/* RFC 7672 2.2: only secure TLSA records count. */
		h->policy = DANESTS_POLICY_MAY;
		h->reason = DANESTS_R_TLSA_INSECURE;
		return RULES_TLSA_DONE;
	}
	for (i = 0; i < ans->nrr; i++) {
		switch (tlsa_parse(ans->rr[i].rdata, ans->rr[i].rdlen, &t,
		    &why)) {
		case TLSA_USABLE:
			nt = realloc(h->tlsa, (h->ntlsa + 1) * sizeof(*nt));
			if (nt == NULL) {
				free(t.data);
				rc = RULES_TLSA_NOMEM;
				break;
			}
			h->tlsa = nt;
			h->tlsa[h->ntlsa++] = t;
			break;
		case TLSA_NOMEM:
			rc = RULES_TLSA_NOMEM;
			break;
		default:
			h->nunusable++;
			break;
		}
	}
	if (h->ntlsa > 0) {
		h->policy = DANESTS_POLICY_DANE;
		h->reason = DANESTS_R_DANE;
		h->mx_insecure = !mx_secure;
	} else {
		/* RFC 7672 2.2: TLSA records exist but none is usable:
		 * TLS is mandatory, unauthenticated. */
		h->policy = DANESTS_POLICY_ENCRYPT;
		h->reason = DANESTS_R_TLSA_UNUSABLE;
	}
	return rc;
}

/*
 * rules_merge - apply the MTA-STS outcome to the DNS/DANE host decisions:
 * a dane host stays dane whatever the policy says (RFC 8461 2); a skipped
 * host stays skipped; when a policy may exist but cannot be known
 * (STS_DNS_FAIL, STS_FAIL) the other hosts are skipped for fail (default
 * cache-error); enforce keeps only hosts matching an mx pattern (RFC 8461
 * 4.1); testing marks the "may" hosts.  The policy is d->sts's.
 */
void
rules_merge(struct danests_decision *d, enum sts_state state,
    danests_reason fail)
{
	const struct danests_sts_policy *p;
	struct danests_host *h;
	size_t i;

	p = state == STS_POLICY && d->sts != NULL ? &d->sts->policy : NULL;
	for (i = 0; i < d->nhosts; i++) {
		h = &d->hosts[i];
		if (h->policy == DANESTS_POLICY_SKIP ||
		    h->policy == DANESTS_POLICY_DANE)
			continue;
		if (state == STS_DNS_FAIL || state == STS_FAIL) {
			/* A policy may exist but can't be known: do not
			 * read that as "no policy" for unprotected hosts. */
			rules_skip_host(h, fail != DANESTS_R_NONE ? fail :
			    DANESTS_R_CACHE_ERROR);
			continue;
		}
		if (p == NULL || p->mode == DANESTS_STS_NONE)
			continue;
		if (p->mode == DANESTS_STS_ENFORCE) {
			if (sts_policy_match(p, h->name)) {
				h->policy = DANESTS_POLICY_STS_ENFORCE;
				h->reason = DANESTS_R_STS_MX_MATCH;
			} else
				rules_skip_host(h, DANESTS_R_STS_MX_MISMATCH);
		} else if (h->policy == DANESTS_POLICY_MAY) {
			h->policy = DANESTS_POLICY_STS_TESTING;
			h->reason = DANESTS_R_STS_TESTING;
		}
	}
}

/* rules_verdict - reduce the hosts to the domain verdict: deliver when one
 * host is usable, else tempfail (sts-mx-mismatch when the policy excluded
 * every host) */
void
rules_verdict(struct danests_decision *d)
{
	size_t i, mismatch = 0;

	for (i = 0; i < d->nhosts; i++) {
		if (d->hosts[i].policy != DANESTS_POLICY_SKIP) {
			d->verdict = DANESTS_DELIVER;
			d->reason = DANESTS_R_OK;
			return;
		}
		if (d->hosts[i].reason == DANESTS_R_STS_MX_MISMATCH)
			mismatch++;
	}
	d->verdict = DANESTS_TEMPFAIL;
	d->reason = mismatch == d->nhosts && mismatch > 0 ?
	    DANESTS_R_STS_MX_MISMATCH : DANESTS_R_NO_USABLE_HOST;
}
