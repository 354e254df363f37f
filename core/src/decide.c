/*
 * decide.c - the decision engine (RFC 7672, RFC 8461)
 *
 * For a destination domain: look up the MX RRset (RFC 7672 2.2.1, RFC
 * 7505), the addresses of every MX host, the TLSA RRset of every host whose
 * addresses are secure (RFC 7672 2.2.2-2.2.3), and the MTA-STS policy, all
 * in parallel on the context's loop; then merge them with DANE first (RFC
 * 8461 2) and reduce the hosts to a domain verdict.  What each answer
 * means is rules.c's (pure, tested as tables); this file runs the lookups,
 * bounds the whole decision in time and uses the decision cache.
 */
#include "danests-internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADDRS_MAX	16	/* per family and host */

struct hstate {
	struct decide *q;
	size_t idx;		/* index into q->d->hosts */
	struct dns_answer *a, *aaaa;
	char expanded[DANESTS_NAME_MAX];	/* CNAME-expanded name or "" */
	int tlsa_try;		/* 1: expanded name, 2: original name */
	bool done;
};

struct decide {
	struct danests_ctx *ctx;
	unsigned flags;
	danests_decide_cb *cb;
	void *arg;
	struct danests_decision *d;	/* owned until handed to cb */
	struct hstate *hs;
	size_t nhs;
	size_t hosts_left;
	bool mx_done;
	bool sts_wait;
	struct sts_result sts;
	struct event *timer;
	uint32_t min_ttl;
	int outstanding;
	bool done;
	bool nomem;
	bool gen_ok;		/* gen read when the decision started */
	uint64_t gen;		/* purge generation then */
};

static void host_next(struct hstate *);
static void maybe_finish(struct decide *);

/* ttl_note - keep the smallest TTL that bounds the decision's reuse */
static void
ttl_note(struct decide *q, const struct dns_answer *a)
{
	if (a != NULL && a->min_ttl > 0 && (q->min_ttl == 0 ||
	    a->min_ttl < q->min_ttl))
		q->min_ttl = a->min_ttl;
}

/* req_unref - drop one reference; the last one frees the request */
static void
req_unref(struct decide *q)
{
	size_t i;

	if (--q->outstanding > 0)
		return;
	for (i = 0; i < q->nhs; i++) {
		dns_answer_free(q->hs[i].a);
		dns_answer_free(q->hs[i].aaaa);
	}
	free(q->hs);
	if (q->timer != NULL)
		event_free(q->timer);
	sts_result_clear(&q->sts);
	danests_decision_free(q->d);
	q->ctx->pending--;
	free(q);
}

/* host_finish - one host is decided */
static void
host_finish(struct hstate *hs)
{
	if (hs->done)
		return;
	hs->done = true;
	hs->q->hosts_left--;
	maybe_finish(hs->q);
}

/* tlsa_cb - the TLSA RRset of one host (RFC 7672 2.2.3, RFC 7671 7) */
static void
tlsa_cb(void *arg, struct dns_answer *ans)
{
	struct hstate *hs = arg;
	struct decide *q = hs->q;
	struct danests_host *h;

	if (q->done)
		goto out;
	h = &q->d->hosts[hs->idx];
	ttl_note(q, ans);
	/* The base of the lookup that answered last: its status is what
	 * tlsa_security reports. */
	free(h->tlsa_base);
	if ((h->tlsa_base = strdup(hs->tlsa_try == 1 ? hs->expanded :
	    h->name)) == NULL)
		q->nomem = true;
	switch (rules_tlsa(h, ans, hs->tlsa_try == 1,
	    q->d->mx_security == DANESTS_SEC_SECURE)) {
	case RULES_TLSA_RETRY:
		hs->tlsa_try = 2;
		host_next(hs);
		goto out;
	case RULES_TLSA_NOMEM:
		q->nomem = true;
		break;
	case RULES_TLSA_DONE:
		break;
	}
	host_finish(hs);
out:
	dns_answer_free(ans);
	req_unref(q);
}

/* addrs_add - textual addresses of one A or AAAA answer */
static void
addrs_add(struct decide *q, struct danests_host *h,
    const struct dns_answer *a)
{
	char buf[INET6_ADDRSTRLEN];
	char **n;
	size_t i, k = 0;
	int af = a->qtype == DNS_T_A ? AF_INET : AF_INET6;

	if (a->rcode != DNS_R_OK)
		return;
	for (i = 0; i < a->nrr && k < ADDRS_MAX; i++) {
		if (a->rr[i].rdlen != (af == AF_INET ? 4u : 16u) ||
		    inet_ntop(af, a->rr[i].rdata, buf, sizeof(buf)) == NULL)
			continue;
		if ((n = realloc(h->addrs, (h->naddrs + 1) * sizeof(*n))) ==
		    NULL || (n[h->naddrs] = strdup(buf)) == NULL) {
			if (n != NULL)
				h->addrs = n;
			q->nomem = true;
			return;
		}
		h->addrs = n;
		h->naddrs++;
		k++;
	}
}

/* host_addrs_done - both address lookups answered (RFC 7672 2.2.2) */
static void
host_addrs_done(struct hstate *hs)
{
	struct decide *q = hs->q;
	struct danests_host *h = &q->d->hosts[hs->idx];
	struct dns_answer *as[2] = { hs->a, hs->aaaa };
	int k;

	for (k = 0; k < 2; k++) {
		ttl_note(q, as[k]);
		if (rules_lookup_failed(as[k]))
			continue;
		addrs_add(q, h, as[k]);
		if (as[k]->cname != NULL && hs->expanded[0] == '\0')
			strlcpy(hs->expanded, as[k]->cname,
			    sizeof(hs->expanded));
	}
	if (!rules_addrs(h, hs->a, hs->aaaa)) {
		host_finish(hs);
		return;
	}
	hs->tlsa_try = hs->expanded[0] != '\0' &&
	    !name_eq(hs->expanded, h->name) ? 1 : 2;
	host_next(hs);
}

/* host_next - start the next TLSA lookup of a host */
static void
host_next(struct hstate *hs)
{
	struct decide *q = hs->q;
	struct danests_host *h = &q->d->hosts[hs->idx];
	char qname[DANESTS_NAME_MAX + 16];

	snprintf(qname, sizeof(qname), "_25._tcp.%s",
	    hs->tlsa_try == 1 ? hs->expanded : h->name);
	q->outstanding++;
	if (dns_query_for(q->ctx->dns, q, qname, DNS_T_TLSA, tlsa_cb,
	    hs) != 0) {
		q->outstanding--;
		rules_skip_host(h, DANESTS_R_DNS_ERROR);
		host_finish(hs);
	}
}

/* addr_cb - A or AAAA of one host */
static void
addr_cb(void *arg, struct dns_answer *ans)
{
	struct hstate *hs = arg;
	struct decide *q = hs->q;

	if (q->done) {
		dns_answer_free(ans);
		req_unref(q);
		return;
	}
	if (ans == NULL) {
		q->nomem = true;
		if ((ans = xcalloc(1, sizeof(*ans))) == NULL) {
			req_unref(q);
			return;
		}
		ans->rcode = DNS_R_ERROR;
		ans->qtype = hs->a == NULL ? DNS_T_A : DNS_T_AAAA;
	}
	if (ans->qtype == DNS_T_AAAA)
		hs->aaaa = ans;
	else
		hs->a = ans;
	if (hs->a != NULL && hs->aaaa != NULL)
		host_addrs_done(hs);
	req_unref(q);
}

/* start_hosts - look up every MX host */
static void
start_hosts(struct decide *q)
{
	struct danests_decision *d = q->d;
	size_t i;

	if ((q->hs = xcalloc(d->nhosts, sizeof(*q->hs))) == NULL) {
		q->nomem = true;
		return;
	}
	q->nhs = d->nhosts;
	q->hosts_left = d->nhosts;
	for (i = 0; i < d->nhosts; i++) {
		struct hstate *hs = &q->hs[i];

		hs->q = q;
		hs->idx = i;
		q->outstanding += 2;
		if (dns_query_for(q->ctx->dns, q, d->hosts[i].name, DNS_T_A,
		    addr_cb, hs) != 0) {
			q->outstanding -= 2;
			rules_skip_host(&d->hosts[i], DANESTS_R_DNS_ERROR);
			hs->done = true;
			q->hosts_left--;
			continue;
		}
		if (dns_query_for(q->ctx->dns, q, d->hosts[i].name,
		    DNS_T_AAAA, addr_cb, hs) != 0) {
			q->outstanding--;
			if ((hs->aaaa = xcalloc(1, sizeof(*hs->aaaa))) != NULL) {
				hs->aaaa->rcode = DNS_R_ERROR;
				hs->aaaa->qtype = DNS_T_AAAA;
			} else
				q->nomem = true;
		}
	}
}

/* mx_cb - the MX RRset (rules_mx), then the lookups of every host */
static void
mx_cb(void *arg, struct dns_answer *ans)
{
	struct decide *q = arg;

	if (q->done)
		goto out;
	q->mx_done = true;
	ttl_note(q, ans);
	if (rules_mx(q->d, ans) != 0)
		q->nomem = true;
	else if (q->d->verdict == DANESTS_DELIVER)
		start_hosts(q);
	maybe_finish(q);
out:
	dns_answer_free(ans);
	req_unref(q);
}

/* sts_cb - the MTA-STS lookup is over */
static void
sts_cb(void *arg, struct sts_result *res)
{
	struct decide *q = arg;

	q->sts_wait = false;
	if (!q->done) {
		q->sts.state = res->state;
		q->sts.sts = res->sts;
		res->sts = NULL;
		q->sts.fail_reason = res->fail_reason;
		strlcpy(q->sts.error, res->error, sizeof(q->sts.error));
		maybe_finish(q);
	}
	req_unref(q);
}

/* merge - hand the MTA-STS result to the decision, then apply it to the
 * hosts (rules_merge) */
static void
merge(struct decide *q)
{
	struct danests_decision *d = q->d;

	if (q->sts.state == STS_POLICY && q->sts.sts != NULL) {
		d->sts = q->sts.sts;
		q->sts.sts = NULL;
	} else if (q->sts.error[0] != '\0' && (d->sts_error =
	    strdup(q->sts.error)) == NULL)
		q->nomem = true;
	rules_merge(d, q->sts.state, q->sts.fail_reason);
}

/* finish - the decision is complete (or timed out): hand it over */
static void
finish(struct decide *q, bool timed_out)
{
	struct danests_decision *d = q->d;
	char *json, why[DANESTS_WHY_MAX];
	uint64_t gen;
	uint32_t ttl;

	if (q->done)
		return;
	q->done = true;
	if (q->timer != NULL)
		event_del(q->timer);
	if (timed_out && !q->mx_done) {
		d->verdict = DANESTS_TEMPFAIL;
		d->reason = DANESTS_R_DECISION_TIMEOUT;
		d->mx_security = DANESTS_SEC_INDETERMINATE;
	} else if (d->verdict == DANESTS_DELIVER) {
		if (timed_out && q->sts_wait) {
			q->sts.state = STS_DNS_FAIL;
			q->sts.fail_reason = DANESTS_R_DECISION_TIMEOUT;
			strlcpy(q->sts.error, "decision-timeout: MTA-STS "
			    "lookup did not finish", sizeof(q->sts.error));
		}
		merge(q);
		rules_verdict(d);
	}
	if (q->nomem) {
		q->d = NULL;
		q->cb(q->arg, DANESTS_TEMP, NULL, "out of memory");
		danests_decision_free(d);
		req_unref(q);
		return;
	}
	ttl = q->ctx->cfg.decision_ttl_s;
	if (q->min_ttl > 0 && q->min_ttl < ttl)
		ttl = q->min_ttl;
	d->expires = d->decided + ttl;
	if (d->sts != NULL && d->sts->expires < d->expires)
		d->expires = d->sts->expires;
	/* A tempfail is not reused: the next attempt asks again.  Nor is
	 * a decision that started before a purge (danests cache purge):
	 * what it learnt may be what the purge removed. */
	if (q->ctx->cache != NULL && !(q->flags & DANESTS_F_NO_CACHE) &&
	    d->verdict != DANESTS_TEMPFAIL && ttl > 0 && q->gen_ok &&
	    danests_ctx_generation(q->ctx, &gen, why, sizeof(why)) ==
	    DANESTS_OK && gen == q->gen &&
	    (json = danests_decision_to_json(d)) != NULL) {
		(void)cache_decision_put(q->ctx->cache, d->domain, json,
		    d->expires, why, sizeof(why));
		/* the fleet's nodes reuse it (from_cache) */
		if (q->ctx->store != NULL &&
		    store_dec_put(q->ctx->store, d->domain, json,
		    d->expires) != DANESTS_OK)
			metrics_store_error(q->ctx);
		free(json);
	}
	q->d = NULL;
	q->cb(q->arg, DANESTS_OK, d, NULL);
	req_unref(q);
}

/* maybe_finish - finish once every part has answered */
static void
maybe_finish(struct decide *q)
{
	if (q->done || !q->mx_done)
		return;
	if (q->d->verdict != DANESTS_DELIVER || q->nomem) {
		finish(q, false);	/* permfail/tempfail: STS moot */
		return;
	}
	if (q->hosts_left == 0 && !q->sts_wait)
		finish(q, false);
}

/* timer_cb - the bound on a whole decision was reached */
static void
timer_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	finish(arg, true);
}

/* cached_cb - deliver a decision read from the cache */
static void
cached_cb(evutil_socket_t fd, short what, void *arg)
{
	struct decide *q = arg;
	struct danests_decision *d = q->d;

	(void)fd;
	(void)what;
	q->done = true;
	q->d = NULL;
	if (d == NULL)
		q->cb(q->arg, DANESTS_TEMP, NULL, "not in the cache");
	else
		q->cb(q->arg, DANESTS_OK, d, NULL);
	req_unref(q);
}

/* from_cache - a reusable cached decision, or NULL: the local cache's,
 * else the fleet's (the shared store's, then kept in the local cache
 * until it expires) */
static struct danests_decision *
from_cache(struct danests_ctx *ctx, const char *domain)
{
	struct danests_decision *d = NULL;
	char *json = NULL, why[DANESTS_WHY_MAX];
	time_t now = time(NULL);
	danests_status st;
	bool fleet = false;

	st = cache_decision_get(ctx->cache, domain, now, &json, why,
	    sizeof(why));
	metrics_cache(ctx, METRICS_CACHE_LMDB_DECISION, st);
	if (st == DANESTS_NOTFOUND && ctx->store != NULL) {
		st = store_dec_get(ctx->store, domain, &json);
		metrics_cache(ctx, METRICS_CACHE_STORE_DECISION, st);
		if (st == DANESTS_TEMP)
			metrics_store_error(ctx);
		fleet = true;
	}
	if (st != DANESTS_OK)
		return NULL;
	/* (never a tempfail: the node that made one did not share it) */
	if (danests_decision_from_json(json, &d) != DANESTS_OK ||
	    d->expires <= now || strcmp(d->domain, domain) != 0 ||
	    d->verdict == DANESTS_TEMPFAIL) {
		danests_decision_free(d);
		d = NULL;
	} else {
		d->from_cache = true;
		if (fleet)
			(void)cache_decision_put(ctx->cache, domain, json,
			    d->expires, why, sizeof(why));
	}
	free(json);
	return d;
}

/* decide_start - start a resolution (danests_decide_async without the
 * context's memory, see memory.c) */
danests_status
decide_start(struct danests_ctx *ctx, const char *domain,
    unsigned flags, danests_decide_cb *cb, void *arg, char *why,
    size_t whylen)
{
	struct decide *q;
	struct danests_decision *d;
	char name[DANESTS_NAME_MAX], gwhy[DANESTS_WHY_MAX];
	struct timeval tv;
	danests_status st;

	if (danests_domain_normalize(domain, name, sizeof(name)) !=
	    DANESTS_OK) {
		why_set(why, whylen, "not a valid domain name: \"%.64s\"",
		    domain);
		return DANESTS_PERM;
	}
	q = xcalloc(1, sizeof(*q));
	d = q != NULL ? xcalloc(1, sizeof(*d)) : NULL;
	if (d == NULL || (d->domain = strdup(name)) == NULL) {
		free(d);
		free(q);
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	q->ctx = ctx;
	q->flags = flags;
	q->gen_ok = ctx->cache != NULL && danests_ctx_generation(ctx, &q->gen,
	    gwhy, sizeof(gwhy)) == DANESTS_OK;
	q->cb = cb;
	q->arg = arg;
	q->d = d;
	q->outstanding = 1;	/* the request itself, dropped by finish */
	ctx->pending++;
	d->decided = time(NULL);
	d->verdict = DANESTS_DELIVER;
	d->reason = DANESTS_R_OK;
	d->mx_security = DANESTS_SEC_INDETERMINATE;

	if (ctx->cache != NULL && !(flags & (DANESTS_F_NO_CACHE |
	    DANESTS_F_REFRESH))) {
		struct danests_decision *c = from_cache(ctx, name);

		if (c != NULL || (flags & DANESTS_F_CACHE_ONLY)) {
			danests_decision_free(d);
			q->d = c;
			if (event_base_once(ctx->base, -1, EV_TIMEOUT,
			    cached_cb, q, NULL) != 0) {
				q->done = true;
				req_unref(q);
				why_set(why, whylen, "cannot schedule event");
				return DANESTS_TEMP;
			}
			return DANESTS_OK;
		}
	}
	if (flags & DANESTS_F_CACHE_ONLY) {
		q->done = true;
		req_unref(q);
		why_set(why, whylen, "not in the cache");
		return DANESTS_TEMP;
	}
	tv.tv_sec = ctx->cfg.decision_timeout_ms / 1000;
	tv.tv_usec = (ctx->cfg.decision_timeout_ms % 1000) * 1000;
	if ((q->timer = evtimer_new(ctx->base, timer_cb, q)) == NULL ||
	    evtimer_add(q->timer, &tv) != 0)
		goto fail;
	if (ctx->fetcher != NULL) {
		q->outstanding++;
		q->sts_wait = true;
		st = sts_lookup_start(ctx, name, flags & DANESTS_F_NO_CACHE,
		    sts_cb, q, why, whylen);
		if (st != DANESTS_OK) {
			q->outstanding--;
			q->sts_wait = false;
			/* The policy cache can't be read: tempfail rather
			 * than risk reading it as "no policy". */
			q->sts.state = STS_FAIL;
			q->sts.fail_reason = DANESTS_R_CACHE_ERROR;
			why_set(q->sts.error, sizeof(q->sts.error), "%s: %s",
			    danests_reason_name(DANESTS_R_CACHE_ERROR),
			    why ? why : "policy lookup failed");
		}
	}
	q->outstanding++;
	if (dns_query(ctx->dns, name, DNS_T_MX, mx_cb, q) != 0) {
		q->outstanding--;
		goto fail;
	}
	return DANESTS_OK;
fail:
	/* Nothing was handed to a callback yet except possibly the STS
	 * lookup, which holds its own reference. */
	q->done = true;
	req_unref(q);
	why_set(why, whylen, "cannot start DNS lookups");
	return DANESTS_TEMP;
}

struct sync_result {
	bool done;
	danests_status st;
	struct danests_decision *d;
	char why[DANESTS_WHY_MAX];
};

/* sync_cb - store the result of a synchronous decision */
static void
sync_cb(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct sync_result *r = arg;

	r->done = true;
	r->st = st;
	r->d = d;
	if (why != NULL)
		strlcpy(r->why, why, sizeof(r->why));
}

/* danests_decide - the synchronous twin of danests_decide_async */
danests_status
danests_decide(struct danests_ctx *ctx, const char *domain, unsigned flags,
    struct danests_decision **out, char *why, size_t whylen)
{
	struct sync_result r;
	danests_status st;

	memset(&r, 0, sizeof(r));
	*out = NULL;
	if ((st = danests_decide_async(ctx, domain, flags, sync_cb, &r, why,
	    whylen)) != DANESTS_OK)
		return st;
	while (!r.done)
		if (event_base_loop(ctx->base, EVLOOP_ONCE) != 0 && !r.done) {
			why_set(why, whylen, "event loop stopped");
			return DANESTS_TEMP;
		}
	if (r.st != DANESTS_OK) {
		why_set(why, whylen, "%s", r.why);
		return r.st;
	}
	*out = r.d;
	return DANESTS_OK;
}
