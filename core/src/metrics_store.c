/*
 * metrics_store.c - a context's counters added up in the persistent
 * cache, for the processes that serve none themselves (the Exim module's
 * delivery processes live a message long): `danests stats` reads the sum
 * of every process.
 *
 * The cache's "metrics" database holds one count per counter, keyed by
 * its stable name (metrics_each).  A store adds what the context counted
 * since its last store, every counter in one write transaction, so that
 * the counts of concurrent processes add up and a process killed at any
 * point leaves its counts added or not, never twice.  A damaged count is
 * an error, never read as zero.
 */
#include "danests-internal.h"
#include "danests-metrics.h"

#include <stdlib.h>
#include <string.h>

struct store_op {
	struct danests_metrics *now, *stored;
	struct cache_rtxn *t;
	danests_status st;
	char *why;
	size_t whylen;
	size_t found;		/* read: keys present */
	struct danests_metrics *out;	/* read: added into */
	struct danests_metrics *zero;
};

/* le64 - the count of a stored value */
static uint64_t
le64(const unsigned char *p)
{
	uint64_t v = 0;
	int i;

	for (i = 7; i >= 0; i--)
		v = (v << 8) | p[i];
	return v;
}

/* get - the stored count of key: OK (*v set), NOTFOUND (0), TEMP */
static danests_status
get(struct store_op *o, const char *key, uint64_t *v)
{
	const unsigned char *val;
	size_t len;
	danests_status st;

	*v = 0;
	st = cache_rpt_get(o->t, CACHE_RDB_METRICS, key, strlen(key), &val,
	    &len, o->why, o->whylen);
	if (st == DANESTS_OK && len != 8) {
		why_set(o->why, o->whylen, "cache: metrics %s: damaged", key);
		return DANESTS_TEMP;
	}
	if (st == DANESTS_OK)
		*v = le64(val);
	return st;
}

/* add_one - add the counter's news to its stored count */
static void
add_one(void *arg, const char *key, size_t idx, uint64_t *c)
{
	struct store_op *o = arg;
	uint64_t d, v;
	unsigned char b[8];
	int i;

	if (o->st != DANESTS_OK)
		return;
	d = __atomic_load_n(c, __ATOMIC_RELAXED) -
	    *metrics_counter(o->stored, idx);
	if (d == 0)
		return;
	if ((o->st = get(o, key, &v)) == DANESTS_NOTFOUND)
		o->st = DANESTS_OK;
	if (o->st != DANESTS_OK)
		return;
	v += d;
	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	o->st = cache_rpt_put(o->t, CACHE_RDB_METRICS, key, strlen(key), b,
	    sizeof(b), o->why, o->whylen);
}

/* store_txn - every counter's news, in one write transaction */
static danests_status
store_txn(void *arg, struct cache_rtxn *t, char *why, size_t whylen)
{
	struct store_op *o = arg;

	o->t = t;
	o->st = DANESTS_OK;
	o->why = why;
	o->whylen = whylen;
	metrics_each(o->now, add_one, o);
	return o->st;
}

/* danests_ctx_metrics_store - see danests-metrics.h */
danests_status
danests_ctx_metrics_store(struct danests_ctx *c, char *why, size_t whylen)
{
	struct store_op o;
	struct danests_metrics *now;
	danests_status st;

	if (c->cache == NULL || c->metrics == NULL)
		return DANESTS_OK;
	if ((c->stored == NULL && (c->stored = danests_metrics_new()) ==
	    NULL) || (now = danests_metrics_new()) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	/* the counts of one instant: what is stored is what now says */
	memset(&o, 0, sizeof(o));
	o.now = now;
	o.stored = c->stored;
	metrics_copy(now, c->metrics);
	if ((st = cache_rpt_run(c->cache, true, store_txn, &o, why,
	    whylen)) == DANESTS_OK)
		metrics_copy(c->stored, now);
	danests_metrics_free(now);
	return st;
}

/* read_one - add a stored count into out */
static void
read_one(void *arg, const char *key, size_t idx, uint64_t *c)
{
	struct store_op *o = arg;
	uint64_t v;
	danests_status st;

	(void)c;
	if (o->st != DANESTS_OK)
		return;
	if ((st = get(o, key, &v)) == DANESTS_NOTFOUND)
		return;
	if ((o->st = st) == DANESTS_OK) {
		o->found++;
		*metrics_counter(o->out, idx) += v;
	}
}

/* read_txn - every stored count, in one read transaction */
static danests_status
read_txn(void *arg, struct cache_rtxn *t, char *why, size_t whylen)
{
	struct store_op *o = arg;

	o->t = t;
	o->st = DANESTS_OK;
	o->why = why;
	o->whylen = whylen;
	o->found = 0;
	/* a rerun starts again from nothing */
	metrics_copy(o->out, o->zero);
	metrics_each(o->out, read_one, o);
	return o->st;
}

/* danests_cache_metrics - see danests-metrics.h */
danests_status
danests_cache_metrics(struct danests_cache *dc, struct danests_metrics *out,
    size_t *found, char *why, size_t whylen)
{
	return metrics_cache_read(cache_view_inner(dc), out, found, why,
	    whylen);
}

/* metrics_cache_read - see danests-internal.h */
danests_status
metrics_cache_read(struct cache *c, struct danests_metrics *out,
    size_t *found, char *why, size_t whylen)
{
	struct store_op o;
	struct danests_metrics *tmp, *zero;
	danests_status st;

	*found = 0;
	tmp = danests_metrics_new();
	zero = danests_metrics_new();
	if (tmp == NULL || zero == NULL) {
		danests_metrics_free(tmp);
		danests_metrics_free(zero);
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	memset(&o, 0, sizeof(o));
	o.out = tmp;
	o.zero = zero;
	st = cache_rpt_run(c, false, read_txn, &o, why, whylen);
	if (st == DANESTS_OK) {
		*found = o.found;
		metrics_add(out, tmp);
	}
	danests_metrics_free(tmp);
	danests_metrics_free(zero);
	return st;
}
