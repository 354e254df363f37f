/*
 * metrics_fleet.c - a node's counters in the shared store of a fleet,
 * and the push of processes that run no timer (the Exim module)
 *
 * The counters a node stored in its local cache (metrics_store.c: the
 * sum of its processes) go to the store as the node's absolute totals,
 * so that a push repeated after an outage never counts twice:
 *
 *   PREFIX "met:node:" NODE	hash: one field per counter (its stable
 *				name, metrics_each), the node's total
 *   PREFIX "met:nodes"		sorted set: the nodes, scored by the time
 *				of their last push
 *
 * Both expire DANESTS_FLEET_METRICS_TTL seconds after the last push and
 * each push drops the nodes that did not push within that time from the
 * set, so a retired node leaves the sum (a reader then sees the sum go
 * down: a counter reset to Prometheus).
 *
 * A delivery process of the Exim module lives a message long and runs no
 * timer: after it counted, danests_ctx_fleet_push writes the node's TLS-
 * report counters and its stored metrics at most once per
 * store_push_interval per node.  The turn is a time stamp in the local
 * cache, read first in a read transaction (no lock: the common case when
 * it is not due) and then taken by compare-and-set in one write
 * transaction, so that of the node's concurrent processes one pushes.
 * The stamp is set before the push: an unreachable store costs one
 * bounded attempt (store_timeout) per interval, and the next push writes
 * the totals, so nothing is lost.
 */
#include "danests-internal.h"
#include "danests-metrics.h"
#include "danests-report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define FLEET_PUSH_KEY		"fleet/pushed"	/* metrics database */
#define FLEET_NODES_MAX		10000	/* nodes read by a sum */
#define FLEET_NAME_MAX		(DANESTS_NODE_ID_MAX + 16)
#define FLEET_HSET_PAIRS	((STORE_CMD_ARGS - 2) / 2)

/* The stamp's test: not due while 0 <= now - last < interval (a clock
 * set back beyond the stamp makes it due, never stuck). */
struct due_op {
	unsigned interval;
	time_t now;
	bool due;
};

/* due_check - is the stamp in t due? */
static danests_status
due_check(struct due_op *o, struct cache_rtxn *t, char *why, size_t whylen)
{
	const unsigned char *val;
	uint64_t last = 0;
	size_t len;
	danests_status st;
	int i;

	st = cache_rpt_get(t, CACHE_RDB_METRICS, FLEET_PUSH_KEY,
	    strlen(FLEET_PUSH_KEY), &val, &len, why, whylen);
	if (st == DANESTS_TEMP)
		return st;
	if (st == DANESTS_OK && len != 8) {
		why_set(why, whylen, "cache: %s: damaged", FLEET_PUSH_KEY);
		return DANESTS_TEMP;
	}
	if (st == DANESTS_OK)
		for (i = 7; i >= 0; i--)
			last = (last << 8) | val[i];
	o->due = st == DANESTS_NOTFOUND || (uint64_t)o->now < last ||
	    (uint64_t)o->now - last >= o->interval;
	return DANESTS_OK;
}

/* due_read - due_check in a read transaction */
static danests_status
due_read(void *arg, struct cache_rtxn *t, char *why, size_t whylen)
{
	return due_check(arg, t, why, whylen);
}

/* due_take - due_check, and when due the stamp set to now, in one write
 * transaction */
static danests_status
due_take(void *arg, struct cache_rtxn *t, char *why, size_t whylen)
{
	struct due_op *o = arg;
	unsigned char b[8];
	danests_status st;
	int i;

	if ((st = due_check(o, t, why, whylen)) != DANESTS_OK || !o->due)
		return st;
	for (i = 0; i < 8; i++)
		b[i] = (unsigned char)((uint64_t)o->now >> (8 * i));
	return cache_rpt_put(t, CACHE_RDB_METRICS, FLEET_PUSH_KEY,
	    strlen(FLEET_PUSH_KEY), b, sizeof(b), why, whylen);
}

/* fleet_take - see danests-internal.h */
danests_status
fleet_take(struct cache *c, unsigned interval_s, time_t now, char *why,
    size_t whylen)
{
	struct due_op o = { .interval = interval_s, .now = now };
	danests_status st;

	if ((st = cache_rpt_run(c, true, due_take, &o, why, whylen)) !=
	    DANESTS_OK)
		return st;
	return o.due ? DANESTS_OK : DANESTS_NOTFOUND;
}

/* fleet_due - see danests-internal.h */
danests_status
fleet_due(struct cache *c, unsigned interval_s, time_t now, char *why,
    size_t whylen)
{
	struct due_op o = { .interval = interval_s, .now = now };
	danests_status st;

	/* the common case, not due, without the writers' lock */
	if ((st = cache_rpt_run(c, false, due_read, &o, why, whylen)) !=
	    DANESTS_OK)
		return st;
	if (!o.due)
		return DANESTS_NOTFOUND;
	return fleet_take(c, interval_s, now, why, whylen);
}

/* ---- pushing ---- */

/* One counter: its name and its total, as text. */
struct mcount {
	char key[128];
	char val[24];
};

struct mcollect {
	struct mcount *v;
	size_t n, max;
};

/* collect_cb - metrics_each: keep each counter's name and value */
static void
collect_cb(void *arg, const char *key, size_t idx, uint64_t *c)
{
	struct mcollect *mc = arg;

	(void)idx;
	if (mc->v == NULL || mc->n >= mc->max) {
		mc->n++;	/* the first pass counts */
		return;
	}
	strlcpy(mc->v[mc->n].key, key, sizeof(mc->v[mc->n].key));
	snprintf(mc->v[mc->n].val, sizeof(mc->v[mc->n].val), "%llu",
	    (unsigned long long)*c);
	mc->n++;
}

/* node_keys - the hash of node and the set of nodes */
static int
node_keys(struct danests_fleet *fl, const char *node, char *hkey,
    char *nkey, size_t len)
{
	char name[FLEET_NAME_MAX];

	snprintf(name, sizeof(name), "met:node:%s", node);
	return store_key(fl->store, name, hkey, len) < 0 ||
	    store_key(fl->store, "met:nodes", nkey, len) < 0 ? -1 : 0;
}

/* metrics_push - the node's stored counters (every one, zeros too, so
 * that the hash is the node's totals exactly) to the store, in one
 * pipeline: the hash, its expiry, the node's score, the retired nodes
 * dropped from the set, the set's expiry */
static danests_status
metrics_push(struct danests_fleet *fl, struct cache *c, time_t now,
    char *why, size_t whylen)
{
	struct danests_metrics *m;
	struct mcollect mc = { NULL, 0, 0 };
	struct store_cmd *cmds = NULL;
	char hkey[DANESTS_STORE_PREFIX_MAX + FLEET_NAME_MAX];
	char nkey[DANESTS_STORE_PREFIX_MAX + FLEET_NAME_MAX];
	char ttl[24], at[24], old[24];
	size_t found, i, j, k = 0, ncmd;
	danests_status st;

	if (node_keys(fl, fl->node, hkey, nkey, sizeof(hkey)) < 0) {
		why_set(why, whylen, "metrics: store_prefix too long");
		return DANESTS_TEMP;
	}
	if ((m = danests_metrics_new()) == NULL) {
		why_set(why, whylen, "metrics: out of memory");
		return DANESTS_TEMP;
	}
	if ((st = metrics_cache_read(c, m, &found, why, whylen)) !=
	    DANESTS_OK || found == 0)
		goto out;
	metrics_each(m, collect_cb, &mc);
	mc.max = mc.n;
	mc.n = 0;
	ncmd = (mc.max + FLEET_HSET_PAIRS - 1) / FLEET_HSET_PAIRS + 4;
	if ((mc.v = xcalloc(mc.max, sizeof(*mc.v))) == NULL ||
	    (cmds = xcalloc(ncmd, sizeof(*cmds))) == NULL) {
		why_set(why, whylen, "metrics: out of memory");
		st = DANESTS_TEMP;
		goto out;
	}
	metrics_each(m, collect_cb, &mc);
	snprintf(ttl, sizeof(ttl), "%d", DANESTS_FLEET_METRICS_TTL);
	snprintf(at, sizeof(at), "%lld", (long long)now);
	snprintf(old, sizeof(old), "%lld", (long long)now -
	    DANESTS_FLEET_METRICS_TTL);
	for (i = 0; i < mc.max; i += FLEET_HSET_PAIRS, k++) {
		cmds[k].argv[0] = "HSET";
		cmds[k].argv[1] = hkey;
		cmds[k].argc = 2;
		for (j = i; j < mc.max && j < i + FLEET_HSET_PAIRS; j++) {
			cmds[k].argv[cmds[k].argc++] = mc.v[j].key;
			cmds[k].argv[cmds[k].argc++] = mc.v[j].val;
		}
	}
	cmds[k].argv[0] = "EXPIRE";
	cmds[k].argv[1] = hkey;
	cmds[k].argv[2] = ttl;
	cmds[k++].argc = 3;
	cmds[k].argv[0] = "ZADD";
	cmds[k].argv[1] = nkey;
	cmds[k].argv[2] = at;
	cmds[k].argv[3] = fl->node;
	cmds[k++].argc = 4;
	cmds[k].argv[0] = "ZREMRANGEBYSCORE";
	cmds[k].argv[1] = nkey;
	cmds[k].argv[2] = "-inf";
	cmds[k].argv[3] = old;
	cmds[k++].argc = 4;
	cmds[k].argv[0] = "EXPIRE";
	cmds[k].argv[1] = nkey;
	cmds[k].argv[2] = ttl;
	cmds[k++].argc = 3;
	for (i = 0; i < k; i++)
		for (j = 0; j < (size_t)cmds[i].argc; j++)
			cmds[i].lens[j] = strlen(cmds[i].argv[j]);
	if ((st = store_pipeline(fl->store, cmds, k)) != DANESTS_OK)
		why_set(why, whylen, "metrics: the store is unreachable");
out:
	free(cmds);
	free(mc.v);
	danests_metrics_free(m);
	return st;
}

/* danests_ctx_fleet_push - see danests-metrics.h */
danests_status
danests_ctx_fleet_push(struct danests_ctx *ctx, bool metrics, char *why,
    size_t whylen)
{
	struct danests_fleet fl;
	char mwhy[256];
	danests_status st, rs = DANESTS_OK, ms = DANESTS_OK;

	if (ctx == NULL || ctx->store == NULL || ctx->cache == NULL ||
	    (!metrics && !ctx->cfg.report.enabled)) {
		why_set(why, whylen, "no store, no cache, or nothing counted");
		return DANESTS_NOTFOUND;
	}
	if ((st = fleet_due(ctx->cache, ctx->cfg.store_push_s, time(NULL),
	    why, whylen)) != DANESTS_OK)
		return st;
	if (ctx->cfg.report.enabled)
		rs = danests_ctx_report_push(ctx, NULL, why, whylen);
	if (rs == DANESTS_NOTFOUND)
		rs = DANESTS_OK;
	if (metrics && rs != DANESTS_PERM) {
		memset(&fl, 0, sizeof(fl));
		fl.store = ctx->store;
		if (report_fleet_node(&ctx->cfg, fl.node, why, whylen) < 0)
			return DANESTS_PERM;
		/* an outage seen by the report push fails this one fast;
		 * the first error is the one said */
		ms = metrics_push(&fl, ctx->cache, time(NULL), mwhy,
		    sizeof(mwhy));
		if (rs == DANESTS_OK && ms != DANESTS_OK)
			why_set(why, whylen, "%s", mwhy);
	}
	return rs != DANESTS_OK ? rs : ms;
}

/* ---- reading ---- */

struct madd {
	const struct fleet_list *h;
	struct danests_metrics *out;
	bool bad;
};

/* add_cb - metrics_each: add the node's value of the counter */
static void
add_cb(void *arg, const char *key, size_t idx, uint64_t *c)
{
	struct madd *a = arg;
	unsigned long long v;
	const char *s;

	(void)c;
	if ((s = fleet_field(a->h, key)) == NULL)
		return;		/* a counter this node does not know */
	if (!danests_parse_uint(s, 0, UINT64_MAX, &v)) {
		a->bad = true;
		return;
	}
	*metrics_counter(a->out, idx) += v;
}

/* node_add - add node's counters into out: DANESTS_OK, DANESTS_NOTFOUND
 * (no hash: expired), DANESTS_TEMP with why */
static danests_status
node_add(struct danests_fleet *fl, const char *node,
    struct danests_metrics *out, char *why, size_t whylen)
{
	char name[FLEET_NAME_MAX];
	struct fleet_list h;
	struct madd a;

	snprintf(name, sizeof(name), "met:node:%s", node);
	if (fleet_read_list(fl, "HGETALL", name, NULL, 2 * 4096, &h) !=
	    DANESTS_OK) {
		why_set(why, whylen, "metrics: the store is unreachable");
		return DANESTS_TEMP;
	}
	if (h.n == 0) {
		fleet_list_free(&h);
		return DANESTS_NOTFOUND;
	}
	a.h = &h;
	a.out = out;
	a.bad = false;
	metrics_each(out, add_cb, &a);
	fleet_list_free(&h);
	if (a.bad) {
		why_set(why, whylen, "metrics: node %s: a damaged count in the "
		    "store", node);
		return DANESTS_TEMP;
	}
	return DANESTS_OK;
}

/* danests_fleet_metrics - see danests-metrics.h */
danests_status
danests_fleet_metrics(struct danests_fleet *fl, const char *node,
    struct danests_metrics *out, size_t *nodes, char *why, size_t whylen)
{
	struct danests_metrics *sum;
	struct fleet_list l;
	char min[24];
	const char *extra[3] = { min, "+inf", NULL };
	danests_status st = DANESTS_OK;
	size_t i;

	*nodes = 0;
	if (fl == NULL) {
		why_set(why, whylen, "metrics: no store");
		return DANESTS_NOTFOUND;
	}
	if (node != NULL && !report_node_ok(node)) {
		why_set(why, whylen, "metrics: not a node id: %s", node);
		return DANESTS_PERM;
	}
	if ((sum = danests_metrics_new()) == NULL) {
		why_set(why, whylen, "metrics: out of memory");
		return DANESTS_TEMP;
	}
	if (node != NULL) {
		if ((st = node_add(fl, node, sum, why, whylen)) ==
		    DANESTS_NOTFOUND)
			why_set(why, whylen, "metrics: node %s: nothing in the "
			    "store", node);
		else if (st == DANESTS_OK)
			*nodes = 1;
		goto out;
	}
	snprintf(min, sizeof(min), "%lld", (long long)time(NULL) -
	    DANESTS_FLEET_METRICS_TTL);
	if (fleet_read_list(fl, "ZRANGEBYSCORE", "met:nodes", extra,
	    FLEET_NODES_MAX, &l) != DANESTS_OK) {
		why_set(why, whylen, "metrics: the store is unreachable or "
		    "holds more than %d nodes", FLEET_NODES_MAX);
		st = DANESTS_TEMP;
		goto out;
	}
	for (i = 0; i < l.n && st == DANESTS_OK; i++) {
		if (!report_node_ok(l.v[i]))
			continue;
		if ((st = node_add(fl, l.v[i], sum, why, whylen)) ==
		    DANESTS_OK)
			(*nodes)++;
		else if (st == DANESTS_NOTFOUND)
			st = DANESTS_OK;	/* expired meanwhile */
	}
	fleet_list_free(&l);
	if (st == DANESTS_OK && *nodes == 0) {
		why_set(why, whylen, "metrics: no node in the store");
		st = DANESTS_NOTFOUND;
	}
out:
	if (st == DANESTS_OK)
		metrics_add(out, sum);
	else
		*nodes = 0;
	danests_metrics_free(sum);
	return st;
}
