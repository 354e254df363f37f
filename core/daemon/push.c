/*
 * push.c - a daemon's TLS-report counts written to the shared store of
 * a fleet (danests_ctx_report_push: the node's totals of yesterday and
 * today) every store_push_interval seconds on the daemon's loop, and
 * once more at exit, so that `danests report send` on any node finds
 * them without running on this one.  The context is asked for at each
 * tick, so a reload's new context (and its interval) applies.
 */
#include "daemon.h"
#include "danests.h"
#include "danests-report.h"

#include <event2/event.h>
#include <stdlib.h>
#include <syslog.h>

#define DMN_PUSH_IDLE_S	60	/* no store: look again after a reload */

struct dmn_push {
	struct event *ev;
	dmn_push_ctx_fn *get;
	void *arg;
};

/* push_arm - the next tick, after the interval of the context now */
static void
push_arm(struct dmn_push *p)
{
	struct danests_ctx *ctx = p->get(p->arg);
	unsigned s = ctx != NULL ? danests_ctx_push_interval(ctx) : 0;
	struct timeval tv = { .tv_sec = s > 0 ? s : DMN_PUSH_IDLE_S };

	event_add(p->ev, &tv);
}

/* push_cb - the tick */
static void
push_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	dmn_push_now(arg);
	push_arm(arg);
}

/* dmn_push_new - see daemon.h */
struct dmn_push *
dmn_push_new(struct event_base *base, dmn_push_ctx_fn *get, void *arg)
{
	struct dmn_push *p;

	if ((p = calloc(1, sizeof(*p))) == NULL)
		return NULL;
	p->get = get;
	p->arg = arg;
	if ((p->ev = event_new(base, -1, 0, push_cb, p)) == NULL) {
		free(p);
		return NULL;
	}
	push_arm(p);
	return p;
}

/* dmn_push_now - see daemon.h */
void
dmn_push_now(struct dmn_push *p)
{
	struct danests_ctx *ctx;
	char why[256];
	size_t n = 0;
	danests_status st;

	if (p == NULL || (ctx = p->get(p->arg)) == NULL ||
	    danests_ctx_push_interval(ctx) == 0)
		return;
	/* an unreachable store is logged by the core, once per outage */
	st = danests_ctx_report_push(ctx, &n, why, sizeof(why));
	if (st == DANESTS_PERM)
		dmn_log(LOG_WARNING, "tls reports: %s", why);
	else if (st != DANESTS_OK && dmn_log_verbose())
		dmn_log(LOG_DEBUG, "tls reports: not pushed: %s", why);
	else if (st == DANESTS_OK && dmn_log_verbose())
		dmn_log(LOG_DEBUG, "tls reports: %zu counts pushed", n);
}

/* dmn_push_free - see daemon.h */
void
dmn_push_free(struct dmn_push *p)
{
	if (p == NULL)
		return;
	event_free(p->ev);
	free(p);
}
