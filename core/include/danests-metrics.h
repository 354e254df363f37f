/*
 * danests-metrics.h - counters of the core and the Prometheus text
 * exposition format (version 0.0.4) they are served in
 *
 * Every context counts into a struct danests_metrics: its own by default,
 * or one the program gives it (danests_ctx_set_metrics), so that a daemon
 * with one context per thread, and a new context at each reload, keeps
 * one set of counters for its whole life.  The counters are updated with
 * relaxed atomic additions, so any thread may count into a shared set and
 * any thread may read it: a reader sees each counter whole, though not
 * all counters of one instant.
 *
 * The writer (struct danests_expo) renders families of samples into a
 * caller's buffer; the daemons add their own families (socketmap
 * replies, deliveries) after the core's with the same calls.
 */
#ifndef DANESTS_METRICS_H
#define DANESTS_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "danests.h"

#ifdef __cplusplus
extern "C" {
#endif

struct danests_metrics;

/* danests_metrics_new - a set of counters, all zero; NULL without
 * memory.  The caller frees it with danests_metrics_free after every
 * context counting into it is gone. */
struct danests_metrics *danests_metrics_new(void);
void danests_metrics_free(struct danests_metrics *);

/* danests_ctx_set_metrics - count into m (owned by the caller, NULL:
 * the context's own set) from now on */
void danests_ctx_set_metrics(struct danests_ctx *, struct danests_metrics *m);
/* danests_ctx_metrics - the set the context counts into */
struct danests_metrics *danests_ctx_metrics(struct danests_ctx *);

/*
 * The text exposition format, version 0.0.4, into buf (cap bytes, the
 * caller's).  A family is "# HELP" and "# TYPE" lines; samples follow it.
 * Label values are escaped (backslash, double quote, newline).  When the
 * text does not fit, overflow is set and len stops growing: the caller
 * answers an error rather than a truncated scrape.
 */
struct danests_expo {
	char *buf;
	size_t cap;
	size_t len;		/* bytes written, NUL not counted */
	bool overflow;
};
#define DANESTS_EXPO_TYPE	"text/plain; version=0.0.4; charset=utf-8"

void danests_expo_init(struct danests_expo *, char *buf, size_t cap);
/* danests_expo_family - type is "counter", "gauge" or "histogram" */
void danests_expo_family(struct danests_expo *, const char *name,
    const char *type, const char *help);
/* danests_expo_u64 - one sample: name, labels as name/value pairs
 * ending with NULL (labels may be NULL), value */
void danests_expo_u64(struct danests_expo *, const char *name,
    const char *const *labels, uint64_t value);
/* danests_expo_double - a sample with a fractional value */
void danests_expo_double(struct danests_expo *, const char *name,
    const char *const *labels, double value);

/* danests_metrics_write - the core's families, read from m */
void danests_metrics_write(const struct danests_metrics *m,
    struct danests_expo *);

/*
 * The counters of processes that serve none (the Exim module) add up in
 * the persistent cache.  danests_ctx_metrics_store adds what the context
 * counted since its last store, in one write transaction (DANESTS_OK
 * without a cache; DANESTS_TEMP with why when the cache fails: nothing
 * was added, the next store adds it).  danests_cache_metrics adds the
 * stored counts into out and says how many counters were found (0: none
 * was ever stored); DANESTS_TEMP when the cache cannot be read or a count
 * is damaged.
 */
struct danests_cache;
danests_status danests_ctx_metrics_store(struct danests_ctx *, char *why,
    size_t whylen);
danests_status danests_cache_metrics(struct danests_cache *,
    struct danests_metrics *out, size_t *found, char *why, size_t whylen);

/*
 * A fleet (store redis://... in danests.conf).  The counters the Exim
 * module's processes stored in a node's cache go to the shared store as
 * the node's absolute totals, one hash per node; a node that has not
 * pushed for DANESTS_FLEET_METRICS_TTL seconds leaves the store (and the
 * sum).
 *
 * danests_ctx_fleet_push - for a process that runs no timer: at most once
 * per store_push_interval per node (a time stamp in the local cache,
 * taken by compare-and-set, so that of concurrent processes one pushes),
 * write this node's TLS-report counters of yesterday and today
 * (danests_ctx_report_push, when tls_reports is on) and, when metrics,
 * its stored counters to the store.  Each store call waits at most
 * store_timeout.  DANESTS_NOTFOUND: not this caller's turn, or no store,
 * no cache, nothing counted; DANESTS_OK pushed; DANESTS_TEMP with why:
 * the store or the cache failed (the local counts stay; a later push
 * writes the totals); DANESTS_PERM: no usable node id.
 *
 * danests_fleet_metrics - add into out the counters of node (NULL: of
 * every node that pushed within DANESTS_FLEET_METRICS_TTL) read from the
 * store of fl (danests_report_fleet_open); *nodes says how many nodes
 * were added.  DANESTS_NOTFOUND: no such node in the store; DANESTS_PERM:
 * node is no node id; DANESTS_TEMP: unreachable, or a damaged count
 * (nothing added).
 */
#define DANESTS_FLEET_METRICS_TTL	(7 * 86400)
struct danests_fleet;
danests_status danests_ctx_fleet_push(struct danests_ctx *, bool metrics,
    char *why, size_t whylen);
danests_status danests_fleet_metrics(struct danests_fleet *,
    const char *node, struct danests_metrics *out, size_t *nodes, char *why,
    size_t whylen);

/* The bounds (seconds) of the decision latency histogram's buckets,
 * +Inf excluded. */
#define DANESTS_LATENCY_BUCKETS \
	0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10

#ifdef __cplusplus
}
#endif
#endif /* DANESTS_METRICS_H */
