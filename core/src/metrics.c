/*
 * metrics.c - the core's counters and the Prometheus text exposition
 * format (version 0.0.4)
 *
 * A context counts decisions (verdict, reason, the policy of each host,
 * failures to decide), the time from danests_decide_async to the callback
 * (a histogram with fixed buckets), MTA-STS policy fetches by result and
 * the lookups of each cache layer (the context's memory; the LMDB cache's
 * decisions and policies; the shared store's policies) by result, and the
 * calls to the shared store that failed.  Counters are updated with relaxed
 * atomic additions so that the contexts of several threads may share one
 * set (danests_ctx_set_metrics) and a listener on another thread may read
 * it.  The library writes text only when asked; it never serves it.
 */
#include "danests-internal.h"
#include "danests-metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define X(e, name, rt) + 1
enum { NREASONS = 1 DANESTS_REASONS(X) };
#undef X
#define NVERDICTS	(DANESTS_PERMFAIL + 1)
#define NPOLICIES	(DANESTS_POLICY_SKIP + 1)

static const double bounds[] = { DANESTS_LATENCY_BUCKETS };
#define NBUCKETS	(NELEM(bounds) + 1)	/* the last is +Inf */

static const char *const fetch_names[METRICS_FETCH_N] = {
	[METRICS_FETCH_OK] = "ok",
	[METRICS_FETCH_INVALID] = "invalid",
	[METRICS_FETCH_ERROR] = "fetch-error",
	[METRICS_FETCH_WEBPKI] = "webpki-invalid",
	[METRICS_FETCH_LOCAL] = "local-error",
};

/* layer and kind labels of each cache counter */
static const char *const cache_labels[METRICS_CACHE_N][2] = {
	[METRICS_CACHE_MEMORY] = { "memory", "decision" },
	[METRICS_CACHE_LMDB_DECISION] = { "lmdb", "decision" },
	[METRICS_CACHE_LMDB_POLICY] = { "lmdb", "policy" },
	[METRICS_CACHE_STORE_POLICY] = { "store", "policy" },
	[METRICS_CACHE_STORE_DECISION] = { "store", "decision" },
};
static const char *const cache_results[3] = { "hit", "miss", "error" };

struct danests_metrics {
	uint64_t decisions[NVERDICTS];
	uint64_t reasons[NREASONS];
	uint64_t hosts[NPOLICIES];
	uint64_t failures;		/* no decision at all */
	uint64_t fetches[METRICS_FETCH_N];
	uint64_t cache[METRICS_CACHE_N][3];
	uint64_t store_errors;		/* calls to the shared store failed */
	uint64_t buckets[NBUCKETS];	/* not cumulative here */
	uint64_t latency_us;		/* sum, microseconds */
};

/* add - count n; the order of counts is of no importance */
static void
add(uint64_t *c, uint64_t n)
{
	__atomic_fetch_add(c, n, __ATOMIC_RELAXED);
}

/* get - one counter, whole */
static uint64_t
get(const uint64_t *c)
{
	return __atomic_load_n(c, __ATOMIC_RELAXED);
}

/* danests_metrics_new - a set of counters at zero */
struct danests_metrics *
danests_metrics_new(void)
{
	return xcalloc(1, sizeof(struct danests_metrics));
}

void
danests_metrics_free(struct danests_metrics *m)
{
	free(m);
}

/* danests_ctx_set_metrics - count into m, or the context's own set */
void
danests_ctx_set_metrics(struct danests_ctx *c, struct danests_metrics *m)
{
	c->metrics = m != NULL ? m : c->own_metrics;
}

/* danests_ctx_metrics - the set the context counts into */
struct danests_metrics *
danests_ctx_metrics(struct danests_ctx *c)
{
	return c->metrics;
}

/* metrics_fetch - one policy fetch ended */
void
metrics_fetch(struct danests_ctx *c, enum metrics_fetch r)
{
	if (c->metrics != NULL && (unsigned)r < METRICS_FETCH_N)
		add(&c->metrics->fetches[r], 1);
}

/* metrics_store_error - one call to the shared store failed */
void
metrics_store_error(struct danests_ctx *c)
{
	if (c->metrics != NULL)
		add(&c->metrics->store_errors, 1);
}

/* metrics_cache - one cache lookup: found (OK), not found, or error */
void
metrics_cache(struct danests_ctx *c, enum metrics_cache layer,
    danests_status st)
{
	if (c->metrics == NULL || (unsigned)layer >= METRICS_CACHE_N)
		return;
	add(&c->metrics->cache[layer][st == DANESTS_OK ? 0 :
	    st == DANESTS_NOTFOUND ? 1 : 2], 1);
}

/* metrics_counter - counter idx of m: the set is an array of counters */
uint64_t *
metrics_counter(struct danests_metrics *m, size_t idx)
{
	return (uint64_t *)(void *)m + idx;
}

#define NCOUNTERS (sizeof(struct danests_metrics) / sizeof(uint64_t))

/* metrics_copy - dst = src, each counter read whole */
void
metrics_copy(struct danests_metrics *dst, const struct danests_metrics *src)
{
	size_t i;

	for (i = 0; i < NCOUNTERS; i++)
		*metrics_counter(dst, i) = get(metrics_counter(
		    (struct danests_metrics *)src, i));
}

/* metrics_add - dst += src */
void
metrics_add(struct danests_metrics *dst, const struct danests_metrics *src)
{
	size_t i;

	for (i = 0; i < NCOUNTERS; i++)
		add(metrics_counter(dst, i), get(metrics_counter(
		    (struct danests_metrics *)src, i)));
}

/* each - fn on one counter, named "a/b/c/d" from the non-NULL parts */
static void
each(struct danests_metrics *m, metrics_each_fn *fn, void *arg, uint64_t *c,
    const char *a, const char *b, const char *cc, const char *d)
{
	char key[128];

	snprintf(key, sizeof(key), "%s%s%s%s%s%s%s", a, b ? "/" : "",
	    b ? b : "", cc ? "/" : "", cc ? cc : "", d ? "/" : "", d ? d : "");
	fn(arg, key, (size_t)(c - (uint64_t *)(void *)m), c);
}

/* metrics_each - see danests-internal.h */
void
metrics_each(struct danests_metrics *m, metrics_each_fn *fn, void *arg)
{
	char le[32];
	size_t i, j;

	for (i = 0; i < NVERDICTS; i++)
		each(m, fn, arg, &m->decisions[i], "decisions",
		    danests_verdict_name((danests_verdict)i), NULL, NULL);
	for (i = 1; i < NREASONS; i++)
		each(m, fn, arg, &m->reasons[i], "reasons",
		    danests_reason_name((danests_reason)i), NULL, NULL);
	for (i = 0; i < NPOLICIES; i++)
		each(m, fn, arg, &m->hosts[i], "hosts",
		    danests_policy_name((danests_policy)i), NULL, NULL);
	each(m, fn, arg, &m->failures, "failures", NULL, NULL, NULL);
	for (i = 0; i < METRICS_FETCH_N; i++)
		each(m, fn, arg, &m->fetches[i], "fetches", fetch_names[i],
		    NULL, NULL);
	for (i = 0; i < METRICS_CACHE_N; i++)
		for (j = 0; j < NELEM(cache_results); j++)
			each(m, fn, arg, &m->cache[i][j], "cache",
			    cache_labels[i][0], cache_labels[i][1],
			    cache_results[j]);
	for (i = 0; i < NBUCKETS; i++) {
		if (i < NELEM(bounds))
			snprintf(le, sizeof(le), "%g", bounds[i]);
		else
			strlcpy(le, "+Inf", sizeof(le));
		each(m, fn, arg, &m->buckets[i], "latency", le, NULL, NULL);
	}
	each(m, fn, arg, &m->latency_us, "latency_us", NULL, NULL, NULL);
	each(m, fn, arg, &m->store_errors, "store_errors", NULL, NULL, NULL);
}

/* A request as the caller made it, timed until its callback. */
struct timed {
	struct danests_ctx *ctx;
	danests_decide_cb *cb;
	void *arg;
	struct timespec t0;
};

/* elapsed_us - microseconds since t0 on the monotonic clock */
static uint64_t
elapsed_us(const struct timespec *t0)
{
	struct timespec t1;
	int64_t us;

	clock_gettime(CLOCK_MONOTONIC, &t1);
	us = (int64_t)(t1.tv_sec - t0->tv_sec) * 1000000 +
	    (t1.tv_nsec - t0->tv_nsec) / 1000;
	return us > 0 ? (uint64_t)us : 0;
}

/* metrics_decision - count one answer to a request */
static void
metrics_decision(struct danests_metrics *m, danests_status st,
    const struct danests_decision *d, uint64_t us)
{
	size_t i;

	if (st != DANESTS_OK || d == NULL)
		add(&m->failures, 1);
	else {
		if ((unsigned)d->verdict < NVERDICTS)
			add(&m->decisions[d->verdict], 1);
		if ((unsigned)d->reason < NREASONS)
			add(&m->reasons[d->reason], 1);
		for (i = 0; i < d->nhosts; i++)
			if ((unsigned)d->hosts[i].policy < NPOLICIES)
				add(&m->hosts[d->hosts[i].policy], 1);
	}
	for (i = 0; i < NELEM(bounds); i++)
		if ((double)us <= bounds[i] * 1e6)
			break;
	add(&m->buckets[i], 1);
	add(&m->latency_us, us);
}

/* timed_cb - count the answer, then pass it on */
static void
timed_cb(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct timed t = *(struct timed *)arg;

	free(arg);
	if (t.ctx->metrics != NULL)
		metrics_decision(t.ctx->metrics, st, d, elapsed_us(&t.t0));
	t.cb(t.arg, st, d, why);
}

/* metrics_timed - wrap a request's callback so that its answer is
 * counted; NULL without memory.  The wrapper frees itself when called;
 * the caller frees it (free) when the request does not start. */
void *
metrics_timed(struct danests_ctx *c, danests_decide_cb *cb, void *arg,
    danests_decide_cb **wcb)
{
	struct timed *t;

	if ((t = xcalloc(1, sizeof(*t))) == NULL)
		return NULL;
	t->ctx = c;
	t->cb = cb;
	t->arg = arg;
	clock_gettime(CLOCK_MONOTONIC, &t->t0);
	*wcb = timed_cb;
	return t;
}

/* danests_expo_init - an empty text in buf */
void
danests_expo_init(struct danests_expo *e, char *buf, size_t cap)
{
	e->buf = buf;
	e->cap = cap;
	e->len = 0;
	e->overflow = cap == 0;
	if (cap > 0)
		buf[0] = '\0';
}

/* put - append n bytes of s */
static void
put(struct danests_expo *e, const char *s, size_t n)
{
	if (e->overflow)
		return;
	if (n >= e->cap - e->len) {
		e->overflow = true;
		return;
	}
	memcpy(e->buf + e->len, s, n);
	e->len += n;
	e->buf[e->len] = '\0';
}

static void
puts_(struct danests_expo *e, const char *s)
{
	put(e, s, strlen(s));
}

/* put_escaped - a label value (0.0.4: \\, \" and \n escaped) or HELP
 * text (\\ and \n only) */
static void
put_escaped(struct danests_expo *e, const char *s, bool quote)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			puts_(e, "\\\\");
		else if (*s == '\n')
			puts_(e, "\\n");
		else if (*s == '"' && quote)
			puts_(e, "\\\"");
		else
			put(e, s, 1);
	}
}

/* danests_expo_family - the HELP and TYPE lines of a family */
void
danests_expo_family(struct danests_expo *e, const char *name,
    const char *type, const char *help)
{
	puts_(e, "# HELP ");
	puts_(e, name);
	puts_(e, " ");
	put_escaped(e, help, false);
	puts_(e, "\n# TYPE ");
	puts_(e, name);
	puts_(e, " ");
	puts_(e, type);
	puts_(e, "\n");
}

/* sample - name{labels} value */
static void
sample(struct danests_expo *e, const char *name, const char *const *labels,
    const char *value)
{
	size_t i;

	puts_(e, name);
	for (i = 0; labels != NULL && labels[i] != NULL &&
	    labels[i + 1] != NULL; i += 2) {
		puts_(e, i == 0 ? "{" : ",");
		puts_(e, labels[i]);
		puts_(e, "=\"");
		put_escaped(e, labels[i + 1], true);
		puts_(e, "\"");
	}
	if (i > 0)
		puts_(e, "}");
	puts_(e, " ");
	puts_(e, value);
	puts_(e, "\n");
}

void
danests_expo_u64(struct danests_expo *e, const char *name,
    const char *const *labels, uint64_t value)
{
	char v[32];

	snprintf(v, sizeof(v), "%llu", (unsigned long long)value);
	sample(e, name, labels, v);
}

void
danests_expo_double(struct danests_expo *e, const char *name,
    const char *const *labels, double value)
{
	char v[64];

	snprintf(v, sizeof(v), "%.6g", value);
	sample(e, name, labels, v);
}

/* danests_metrics_write - the core's families */
void
danests_metrics_write(const struct danests_metrics *m,
    struct danests_expo *e)
{
	const char *l[5] = { NULL };
	char le[32];
	uint64_t n;
	size_t i, j;

	danests_expo_family(e, "danests_decisions_total", "counter",
	    "Decisions answered, by verdict.");
	l[0] = "verdict";
	for (i = 0; i < NVERDICTS; i++) {
		l[1] = danests_verdict_name((danests_verdict)i);
		danests_expo_u64(e, "danests_decisions_total", l,
		    get(&m->decisions[i]));
	}
	danests_expo_family(e, "danests_decision_reasons_total", "counter",
	    "Decisions answered, by reason.");
	l[0] = "reason";
	for (i = 1; i < NREASONS; i++) {
		l[1] = danests_reason_name((danests_reason)i);
		danests_expo_u64(e, "danests_decision_reasons_total", l,
		    get(&m->reasons[i]));
	}
	danests_expo_family(e, "danests_decision_hosts_total", "counter",
	    "MX hosts of the decisions answered, by host policy.");
	l[0] = "policy";
	for (i = 0; i < NPOLICIES; i++) {
		l[1] = danests_policy_name((danests_policy)i);
		danests_expo_u64(e, "danests_decision_hosts_total", l,
		    get(&m->hosts[i]));
	}
	danests_expo_family(e, "danests_decision_failures_total", "counter",
	    "Requests answered without a decision (tempfail).");
	danests_expo_u64(e, "danests_decision_failures_total", NULL,
	    get(&m->failures));
	danests_expo_family(e, "danests_sts_fetches_total", "counter",
	    "MTA-STS policy fetches, by result.");
	l[0] = "result";
	for (i = 0; i < METRICS_FETCH_N; i++) {
		l[1] = fetch_names[i];
		danests_expo_u64(e, "danests_sts_fetches_total", l,
		    get(&m->fetches[i]));
	}
	danests_expo_family(e, "danests_cache_requests_total", "counter",
	    "Cache and store lookups, by layer, kind and result.");
	l[0] = "layer";
	l[2] = "kind";
	for (i = 0; i < METRICS_CACHE_N; i++) {
		l[1] = cache_labels[i][0];
		l[3] = cache_labels[i][1];
		l[4] = "result";
		for (j = 0; j < NELEM(cache_results); j++) {
			const char *ll[7] = { l[0], l[1], l[2], l[3], l[4],
			    cache_results[j], NULL };

			danests_expo_u64(e, "danests_cache_requests_total",
			    ll, get(&m->cache[i][j]));
		}
	}
	danests_expo_family(e, "danests_store_errors_total", "counter",
	    "Calls to the shared store (store redis://...) that failed.");
	danests_expo_u64(e, "danests_store_errors_total", NULL,
	    get(&m->store_errors));
	danests_expo_family(e, "danests_decision_duration_seconds",
	    "histogram", "Time from a request to its answer.");
	l[0] = "le";
	l[2] = NULL;
	for (i = 0, n = 0; i < NBUCKETS; i++) {
		n += get(&m->buckets[i]);
		if (i < NELEM(bounds))
			snprintf(le, sizeof(le), "%g", bounds[i]);
		else
			strlcpy(le, "+Inf", sizeof(le));
		l[1] = le;
		danests_expo_u64(e, "danests_decision_duration_seconds_bucket",
		    l, n);
	}
	danests_expo_double(e, "danests_decision_duration_seconds_sum", NULL,
	    (double)get(&m->latency_us) / 1e6);
	danests_expo_u64(e, "danests_decision_duration_seconds_count", NULL,
	    n);
}
