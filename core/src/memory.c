/*
 * memory.c - decisions kept in a context's memory, resolutions shared
 *
 * danests_decide_async answers from here when it can, for every adapter
 * alike: a decision made less than decision_memory_ttl seconds ago (and
 * never beyond its own expiry), a tempfail made less than
 * tempfail_memory_ttl seconds ago (a domain whose lookups just failed is
 * not resolved again for every message), or the resolution of the same
 * domain already in progress, whose result every request that asked
 * meanwhile gets.  Every request gets its own copy of the decision.
 *
 * Invariants:
 *  - nothing is reused across `danests cache purge`: the cache's purge
 *    generation is read before anything is reused, and a result whose
 *    resolution started before a purge is not kept;
 *  - nothing is reused after a policy refresh that changed a policy
 *    (sts.c calls memory_flush);
 *  - at most decision_memory_max entries: a full table is emptied (the
 *    persistent cache still holds the decisions);
 *  - requests with flags (refresh, no cache, cache only) bypass it all.
 */
#include "danests-internal.h"

#include <stdlib.h>
#include <string.h>

#define MEMORY_BUCKETS	4096	/* power of two */

/* A request waiting for a resolution, or for its turn with a kept
 * decision (the callback is never called before danests_decide_async
 * returns). */
struct memory_waiter {
	struct memory_waiter *next;
	danests_decide_cb *cb;
	void *arg;
	struct danests_decision *d;	/* ready queue: the copy to hand */
};

/* A kept decision, or a resolution in progress. */
struct memory_entry {
	struct memory_entry *next;	/* hash chain */
	struct danests_ctx *ctx;
	unsigned h;
	char domain[DANESTS_NAME_MAX];
	struct danests_decision *d;	/* kept */
	time_t until;			/* kept: reused until then */
	bool gen_ok;			/* resolving: purge generation */
	uint64_t gen;			/* read at the start */
	struct memory_waiter *waiters, **wtail;	/* resolving */
};

struct memory {
	struct memory_entry *kept[MEMORY_BUCKETS];
	struct memory_entry *flight[MEMORY_BUCKETS];
	size_t nkept;
	uint64_t kept_gen;		/* generation of what is kept */
	struct memory_waiter *ready, **rtail;	/* answers due */
	struct event *ready_ev;
	size_t resolutions;		/* resolutions started (tests) */
};

/* memory_hash - FNV-1a of a domain */
static unsigned
memory_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* strdup_or - copy s (NULL stays NULL); false when memory ran out */
static bool
strdup_or(char **dst, const char *s)
{
	*dst = NULL;
	if (s == NULL)
		return true;
	return (*dst = strdup(s)) != NULL;
}

/* host_copy - deep copy of one host; dst's pointers are valid (NULL or
 * owned) whatever happens, so danests_decision_free can release it */
static bool
host_copy(struct danests_host *dst, const struct danests_host *src)
{
	size_t i;

	*dst = *src;
	dst->addrs = NULL;
	dst->naddrs = 0;
	dst->tlsa = NULL;
	dst->ntlsa = 0;
	if (!strdup_or(&dst->name, src->name) ||
	    !strdup_or(&dst->tlsa_base, src->tlsa_base))
		return false;
	if (src->naddrs > 0) {
		if ((dst->addrs = xcalloc(src->naddrs, sizeof(char *))) == NULL)
			return false;
		dst->naddrs = src->naddrs;
		for (i = 0; i < src->naddrs; i++)
			if (!strdup_or(&dst->addrs[i], src->addrs[i]))
				return false;
	}
	if (src->ntlsa > 0) {
		if ((dst->tlsa = xcalloc(src->ntlsa, sizeof(*dst->tlsa))) ==
		    NULL)
			return false;
		dst->ntlsa = src->ntlsa;
		for (i = 0; i < src->ntlsa; i++) {
			dst->tlsa[i] = src->tlsa[i];
			dst->tlsa[i].data = NULL;
			if (src->tlsa[i].len > 0 &&
			    (dst->tlsa[i].data = malloc(src->tlsa[i].len)) ==
			    NULL)
				return false;
			if (src->tlsa[i].len > 0)
				memcpy(dst->tlsa[i].data, src->tlsa[i].data,
				    src->tlsa[i].len);
		}
	}
	return true;
}

/* decision_copy - a deep copy of d, or NULL when memory ran out */
struct danests_decision *
decision_copy(const struct danests_decision *d)
{
	struct danests_decision *c;
	size_t i;

	if ((c = xcalloc(1, sizeof(*c))) == NULL)
		return NULL;
	*c = *d;
	c->domain = c->mx_cname = c->sts_error = NULL;
	c->sts = NULL;
	c->hosts = NULL;
	c->nhosts = 0;
	if (!strdup_or(&c->domain, d->domain) ||
	    !strdup_or(&c->mx_cname, d->mx_cname) ||
	    !strdup_or(&c->sts_error, d->sts_error))
		goto fail;
	if (d->sts != NULL) {
		if ((c->sts = xcalloc(1, sizeof(*c->sts))) == NULL)
			goto fail;
		*c->sts = *d->sts;
		c->sts->error = NULL;
		memset(&c->sts->policy, 0, sizeof(c->sts->policy));
		if (sts_policy_copy(&d->sts->policy, &c->sts->policy) !=
		    DANESTS_OK || !strdup_or(&c->sts->error, d->sts->error))
			goto fail;
	}
	if (d->nhosts > 0) {
		if ((c->hosts = xcalloc(d->nhosts, sizeof(*c->hosts))) == NULL)
			goto fail;
		for (i = 0; i < d->nhosts; i++) {
			c->nhosts = i + 1;
			if (!host_copy(&c->hosts[i], &d->hosts[i]))
				goto fail;
		}
	}
	return c;
fail:
	danests_decision_free(c);
	return NULL;
}

/* memory_generation - the purge generation; false when it can't be read
 * (then nothing may be reused) */
static bool
memory_generation(struct danests_ctx *ctx, uint64_t *gen)
{
	char why[DANESTS_WHY_MAX];

	return danests_ctx_generation(ctx, gen, why, sizeof(why)) ==
	    DANESTS_OK;
}

/* memory_flush - drop every decision kept in memory */
void
memory_flush(struct danests_ctx *ctx)
{
	struct memory *m = ctx->mem;
	struct memory_entry *e, *n;
	size_t i;

	if (m == NULL || m->nkept == 0)
		return;
	for (i = 0; i < MEMORY_BUCKETS; i++) {
		for (e = m->kept[i]; e != NULL; e = n) {
			n = e->next;
			danests_decision_free(e->d);
			free(e);
		}
		m->kept[i] = NULL;
	}
	m->nkept = 0;
}

/* memory_find - the entry for domain in a table, with its link */
static struct memory_entry **
memory_find(struct memory_entry **table, const char *domain, unsigned h)
{
	struct memory_entry **pp;

	for (pp = &table[h & (MEMORY_BUCKETS - 1)]; *pp != NULL;
	    pp = &(*pp)->next)
		if ((*pp)->h == h && strcmp((*pp)->domain, domain) == 0)
			return pp;
	return NULL;
}

/* memory_get - a copy of the decision kept for domain, if it is still
 * reusable and no purge made it stale; NULL otherwise */
static struct danests_decision *
memory_get(struct danests_ctx *ctx, const char *domain, unsigned h)
{
	struct memory *m = ctx->mem;
	struct memory_entry **pp, *e;
	struct danests_decision *c;
	uint64_t gen;

	if (m->nkept == 0)
		return NULL;
	if (!memory_generation(ctx, &gen)) {
		memory_flush(ctx);
		return NULL;
	}
	if (gen != m->kept_gen) {
		memory_flush(ctx);
		m->kept_gen = gen;
		return NULL;
	}
	if ((pp = memory_find(m->kept, domain, h)) == NULL)
		return NULL;
	e = *pp;
	if (e->until > time(NULL) && (c = decision_copy(e->d)) != NULL) {
		c->reused = true;
		return c;
	}
	*pp = e->next;
	danests_decision_free(e->d);
	free(e);
	m->nkept--;
	return NULL;
}

/* memory_keep - keep a copy of d, the result of a resolution that started
 * at purge generation gen (gen_ok false: unknown) */
static void
memory_keep(struct danests_ctx *ctx, const struct danests_decision *d,
    unsigned h, bool gen_ok, uint64_t gen)
{
	struct memory *m = ctx->mem;
	struct memory_entry **pp, *e;
	struct danests_decision *c;
	time_t now = time(NULL), until;
	uint64_t cur;
	bool tempfail = d->verdict == DANESTS_TEMPFAIL;

	until = now + (time_t)(tempfail ? ctx->cfg.tempfail_memory_ttl_s :
	    ctx->cfg.decision_memory_ttl_s);
	if (!tempfail && d->expires < until)
		until = d->expires;
	if (until <= now || ctx->cfg.decision_memory_max == 0 || !gen_ok ||
	    !memory_generation(ctx, &cur) || cur != gen)
		return;
	if (cur != m->kept_gen) {
		memory_flush(ctx);
		m->kept_gen = cur;
	}
	if ((c = decision_copy(d)) == NULL)
		return;
	if ((pp = memory_find(m->kept, d->domain, h)) != NULL) {
		danests_decision_free((*pp)->d);
		(*pp)->d = c;
		(*pp)->until = until;
		return;
	}
	if (m->nkept >= ctx->cfg.decision_memory_max)
		memory_flush(ctx);
	if ((e = xcalloc(1, sizeof(*e))) == NULL) {
		danests_decision_free(c);
		return;
	}
	e->h = h;
	strlcpy(e->domain, d->domain, sizeof(e->domain));
	e->d = c;
	e->until = until;
	e->next = m->kept[h & (MEMORY_BUCKETS - 1)];
	m->kept[h & (MEMORY_BUCKETS - 1)] = e;
	m->nkept++;
}

/* ready_cb - hand out the decisions found in memory */
static void
ready_cb(evutil_socket_t fd, short what, void *arg)
{
	struct danests_ctx *ctx = arg;
	struct memory *m = ctx->mem;
	struct memory_waiter *w, *list;

	(void)fd;
	(void)what;
	list = m->ready;
	m->ready = NULL;
	m->rtail = &m->ready;
	while ((w = list) != NULL) {
		list = w->next;
		w->cb(w->arg, DANESTS_OK, w->d, NULL);
		ctx->pending--;
		free(w);
	}
}

/* resolved - the resolution of e->domain ended: keep the result, then
 * answer every request that waited for it */
static void
resolved(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct memory_entry *e = arg, **pp;
	struct danests_ctx *ctx = e->ctx;
	struct memory_waiter *w;
	struct danests_decision *c;
	bool first;

	if ((pp = memory_find(ctx->mem->flight, e->domain, e->h)) != NULL &&
	    *pp == e)
		*pp = e->next;
	/* Kept first: a request made from a callback below finds it. */
	if (st == DANESTS_OK && d != NULL)
		memory_keep(ctx, d, e->h, e->gen_ok, e->gen);
	/* One waiter takes d; with more, each gets a copy and the first
	 * alone reads as not reused. */
	first = true;
	while ((w = e->waiters) != NULL) {
		e->waiters = w->next;
		if (st != DANESTS_OK || d == NULL)
			w->cb(w->arg, st, NULL, why);
		else if (first && e->waiters == NULL) {
			w->cb(w->arg, st, d, why);
			d = NULL;
		} else if ((c = decision_copy(d)) == NULL)
			w->cb(w->arg, DANESTS_TEMP, NULL, "out of memory");
		else {
			c->reused = !first;
			w->cb(w->arg, st, c, why);
		}
		first = false;
		free(w);
	}
	danests_decision_free(d);
	free(e);
}

/* memory_decide - danests_decide_async for a normalized name, flags 0:
 * from memory, by joining a resolution in progress, or by starting one */
danests_status
memory_decide(struct danests_ctx *ctx, const char *name, danests_decide_cb *cb,
    void *arg, char *why, size_t whylen)
{
	struct memory *m = ctx->mem;
	struct memory_entry **pp, *e;
	struct memory_waiter *w;
	unsigned h = memory_hash(name);
	danests_status st;

	if ((w = xcalloc(1, sizeof(*w))) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	w->cb = cb;
	w->arg = arg;
	w->d = memory_get(ctx, name, h);
	metrics_cache(ctx, METRICS_CACHE_MEMORY, w->d != NULL ? DANESTS_OK :
	    DANESTS_NOTFOUND);
	if (w->d != NULL) {
		*m->rtail = w;
		m->rtail = &w->next;
		ctx->pending++;
		event_active(m->ready_ev, EV_TIMEOUT, 0);
		return DANESTS_OK;
	}
	if ((pp = memory_find(m->flight, name, h)) != NULL) {
		e = *pp;
		/* The first waiter was answered first; so is the rest. */
		*e->wtail = w;
		e->wtail = &w->next;
		return DANESTS_OK;
	}
	if ((e = xcalloc(1, sizeof(*e))) == NULL) {
		free(w);
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	e->ctx = ctx;
	e->h = h;
	strlcpy(e->domain, name, sizeof(e->domain));
	e->waiters = w;
	e->wtail = &w->next;
	/* Read before the resolution starts: a purge while it runs keeps
	 * its result out of memory. */
	e->gen_ok = memory_generation(ctx, &e->gen);
	if ((st = decide_start(ctx, name, 0, resolved, e, why, whylen)) !=
	    DANESTS_OK) {
		free(w);
		free(e);
		return st;
	}
	m->resolutions++;
	e->next = m->flight[h & (MEMORY_BUCKETS - 1)];
	m->flight[h & (MEMORY_BUCKETS - 1)] = e;
	return DANESTS_OK;
}

/* memory_new - the memory of a new context */
danests_status
memory_new(struct danests_ctx *ctx)
{
	struct memory *m;

	if ((m = xcalloc(1, sizeof(*m))) == NULL)
		return DANESTS_TEMP;
	m->rtail = &m->ready;
	if ((m->ready_ev = event_new(ctx->base, -1, 0, ready_cb, ctx)) ==
	    NULL) {
		free(m);
		return DANESTS_TEMP;
	}
	ctx->mem = m;
	return DANESTS_OK;
}

/* memory_free - answer what is due and release everything; resolutions
 * in progress were cancelled before (their callbacks ran) */
void
memory_free(struct danests_ctx *ctx)
{
	struct memory *m = ctx->mem;

	if (m == NULL)
		return;
	ready_cb(-1, 0, ctx);
	memory_flush(ctx);
	event_free(m->ready_ev);
	free(m);
	ctx->mem = NULL;
}

/* memory_resolutions - resolutions started through the memory (tests) */
size_t
memory_resolutions(const struct danests_ctx *ctx)
{
	return ctx->mem != NULL ? ctx->mem->resolutions : 0;
}

/* danests_decide_async - start a decision; see danests.h */
danests_status
danests_decide_async(struct danests_ctx *ctx, const char *domain,
    unsigned flags, danests_decide_cb *cb, void *arg, char *why,
    size_t whylen)
{
	char name[DANESTS_NAME_MAX];
	danests_decide_cb *tcb;
	danests_status st;
	void *t;

	if (danests_domain_normalize(domain, name, sizeof(name)) !=
	    DANESTS_OK) {
		why_set(why, whylen, "not a valid domain name: \"%.64s\"",
		    domain);
		return DANESTS_PERM;
	}
	if ((t = metrics_timed(ctx, cb, arg, &tcb)) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	if (flags != 0)
		st = decide_start(ctx, name, flags, tcb, t, why, whylen);
	else
		st = memory_decide(ctx, name, tcb, t, why, whylen);
	if (st != DANESTS_OK)
		free(t);
	return st;
}
