/*
 * metrics.c - the metrics of danests-relay (metrics_listen): the core's
 * counters (one set for the daemon's life: the decision context of the
 * main thread, and the one each reload makes, count into it), deliveries
 * by result, served by the listener of core/daemon on the main thread's
 * loop.  Session threads count deliveries with relaxed atomic additions;
 * the main thread reads them.
 */
#include "relay.h"
#include "danests-metrics.h"

#include <stdio.h>
#include <syslog.h>

struct danests_metrics *relay_metrics;

/* recipients by the reply after DATA: delivered (2xx), deferred (4xx),
 * bounced (5xx) */
static uint64_t deliveries[3];
static uint64_t sessions;
struct dmn_http_listener metrics_listener = DMN_HTTP_LISTENER_INIT;

/* metrics_delivery - count one recipient's reply code after DATA */
void
metrics_delivery(int code)
{
	if (code >= 200 && code < 300)
		__atomic_fetch_add(&deliveries[0], 1, __ATOMIC_RELAXED);
	else if (code >= 400 && code < 500)
		__atomic_fetch_add(&deliveries[1], 1, __ATOMIC_RELAXED);
	else if (code >= 500 && code < 600)
		__atomic_fetch_add(&deliveries[2], 1, __ATOMIC_RELAXED);
}

/* metrics_session - count one LMTP connection accepted */
void
metrics_session(void)
{
	__atomic_fetch_add(&sessions, 1, __ATOMIC_RELAXED);
}

/* metrics_fill - the text of one scrape (a dmn_http_fill_fn) */
void
metrics_fill(void *arg, struct danests_expo *e)
{
	static const char *const results[3] = { "delivered", "deferred",
	    "bounced" };
	const char *l[3] = { "result", NULL, NULL };
	size_t i;

	(void)arg;
	danests_metrics_write(relay_metrics, e);
	danests_expo_family(e, "danests_relay_sessions_total", "counter",
	    "LMTP connections accepted.");
	danests_expo_u64(e, "danests_relay_sessions_total", NULL,
	    __atomic_load_n(&sessions, __ATOMIC_RELAXED));
	danests_expo_family(e, "danests_relay_deliveries_total", "counter",
	    "Recipients by the LMTP reply after DATA: delivered (2xx), "
	    "deferred (4xx), bounced (5xx).");
	for (i = 0; i < 3; i++) {
		l[1] = results[i];
		danests_expo_u64(e, "danests_relay_deliveries_total", l,
		    __atomic_load_n(&deliveries[i], __ATOMIC_RELAXED));
	}
}

/* metrics_init - the daemon's set of counters (before any context) */
bool
metrics_init(void)
{
	return (relay_metrics = danests_metrics_new()) != NULL;
}

