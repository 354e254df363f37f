/*
 * cache_view.c - the shared cache as `danests cache` inspects and purges
 * it (danests.h), over the internal interface of cache.c
 */
#include "danests-internal.h"

#include <stdlib.h>
#include <string.h>

/* The public handle wraps the internal one. */
struct danests_cache {
	struct cache *c;
};

/* danests_cache_open - see danests.h */
danests_status
danests_cache_open(const char *dir, struct danests_cache **out, char *why,
    size_t whylen)
{
	struct danests_cache *dc;
	danests_status st;

	*out = NULL;
	if ((dc = xcalloc(1, sizeof(*dc))) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	if ((st = cache_open(dir, &dc->c, why, whylen)) != DANESTS_OK) {
		free(dc);
		return st;
	}
	*out = dc;
	return DANESTS_OK;
}

/* cache_view_inner - the internal handle (report.c) */
struct cache *
cache_view_inner(struct danests_cache *dc)
{
	return dc->c;
}

/* danests_cache_close - release the handle */
void
danests_cache_close(struct danests_cache *dc)
{
	if (dc == NULL)
		return;
	cache_close(dc->c);
	free(dc);
}

/* danests_cache_rebuilt_at - when a rebuild lost policies, or 0 */
time_t
danests_cache_rebuilt_at(const struct danests_cache *dc)
{
	return cache_was_rebuilt(dc->c) ? cache_rebuilt_at(dc->c) : 0;
}

/* policy_view - the public view of an entry; policy patterns borrowed */
static void
policy_view(struct danests_cache_policy *out, const struct cache_sts *e)
{
	memset(out, 0, sizeof(*out));
	out->policy = e->policy;
	memcpy(out->id, e->id, sizeof(out->id));
	out->fetched = e->fetched;
	out->expires = e->expires;
	out->last_check = e->last_check;
	strlcpy(out->last_error, e->last_error, sizeof(out->last_error));
}

struct each_arg {
	danests_cache_policy_fn *fn;
	void *arg;
};

/* each_policy - adapt one internal entry for the caller's function */
static int
each_policy(void *varg, const char *domain, const struct cache_sts *e)
{
	struct each_arg *a = varg;
	struct danests_cache_policy p;

	policy_view(&p, e);
	return a->fn(a->arg, domain, &p);
}

/* danests_cache_policies - every cached policy */
danests_status
danests_cache_policies(struct danests_cache *dc, danests_cache_policy_fn *fn,
    void *arg, char *why, size_t whylen)
{
	struct each_arg a = { fn, arg };

	return cache_sts_each(dc->c, each_policy, &a, why, whylen);
}

/* danests_cache_decisions - every cached decision */
danests_status
danests_cache_decisions(struct danests_cache *dc,
    danests_cache_decision_fn *fn, void *arg, char *why, size_t whylen)
{
	return cache_decision_each(dc->c, fn, arg, why, whylen);
}

/* danests_cache_policy_get - one cached policy */
danests_status
danests_cache_policy_get(struct danests_cache *dc, const char *domain,
    struct danests_cache_policy *out, char *why, size_t whylen)
{
	struct cache_sts e;
	danests_status st;

	memset(out, 0, sizeof(*out));
	if ((st = cache_sts_get(dc->c, domain, &e, why, whylen)) !=
	    DANESTS_OK)
		return st;
	policy_view(out, &e);	/* takes the patterns */
	return DANESTS_OK;
}

/* danests_cache_policy_clear - release what danests_cache_policy_get
 * filled in */
void
danests_cache_policy_clear(struct danests_cache_policy *p)
{
	sts_policy_clear(&p->policy);
}

/* danests_cache_decision_get - one cached decision, unexpired */
danests_status
danests_cache_decision_get(struct danests_cache *dc, const char *domain,
    char **json, char *why, size_t whylen)
{
	*json = NULL;
	return cache_decision_get(dc->c, domain, time(NULL), json, why,
	    whylen);
}

/* danests_store_purge - see danests.h */
danests_status
danests_store_purge(const struct danests_config *cfg, const char *domain,
    bool *had_policy, bool *had_decision, char *why, size_t whylen)
{
	struct store *s;
	danests_status st, ps, ds;

	*had_policy = *had_decision = false;
	if ((st = store_new(cfg, &s, why, whylen)) != DANESTS_OK || s == NULL)
		return st;
	ps = store_del(s, "sts:", domain);
	ds = ps == DANESTS_TEMP ? DANESTS_TEMP : store_del(s, "dec:", domain);
	store_free(s);
	if (ps == DANESTS_TEMP || ds == DANESTS_TEMP) {
		why_set(why, whylen, "the shared store is unreachable (see "
		    "the line above)");
		return DANESTS_TEMP;
	}
	*had_policy = ps == DANESTS_OK;
	*had_decision = ds == DANESTS_OK;
	return DANESTS_OK;
}

/* danests_cache_purge - drop a domain's policy and decision and count up
 * the purge generation */
danests_status
danests_cache_purge(struct danests_cache *dc, const char *domain,
    bool *had_policy, bool *had_decision, char *why, size_t whylen)
{
	danests_status ss, ds;
	uint64_t gen;

	*had_policy = *had_decision = false;
	ss = cache_sts_del(dc->c, domain, why, whylen);
	if (ss != DANESTS_OK && ss != DANESTS_NOTFOUND)
		return ss;
	ds = cache_decision_del(dc->c, domain, why, whylen);
	if (ds != DANESTS_OK && ds != DANESTS_NOTFOUND)
		return ds;
	*had_policy = ss == DANESTS_OK;
	*had_decision = ds == DANESTS_OK;
	/* Running programs drop what they keep in memory, entry or not: a
	 * decision may live in a program's memory only. */
	return cache_generation(dc->c, true, &gen, why, whylen);
}
