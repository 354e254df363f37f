/*
 * metrics.c - the metrics of danests-postfix (metrics_listen): the core's
 * counters (one set for the daemon's life, whatever context a reload
 * makes), socketmap replies by type, requests, and the TLSRPT collector's
 * datagrams, served by the listener of core/daemon on the daemon's loop.
 * Everything here runs on that one loop: plain counters suffice.
 */
#include "danests-postfix.h"
#include "danests-metrics.h"

#include <stdio.h>
#include <string.h>

struct danests_metrics *pf_metrics;

static unsigned long replies[4];	/* OK, NOTFOUND, TEMP, PERM */
struct dmn_http_listener metrics_listener = DMN_HTTP_LISTENER_INIT;

/* metrics_reply - count one socketmap reply by its first word */
void
metrics_reply(const char *payload)
{
	static const char *const words[4] = { "OK", "NOTFOUND", "TEMP",
	    "PERM" };
	size_t i, n;

	for (i = 0; i < 4; i++) {
		n = strlen(words[i]);
		if (strncmp(payload, words[i], n) == 0 && (payload[n] == ' ' ||
		    payload[n] == '\0')) {
			replies[i]++;
			return;
		}
	}
}

/* metrics_fill - the text of one scrape (a dmn_http_fill_fn) */
void
metrics_fill(void *arg, struct danests_expo *e)
{
	static const char *const types[4] = { "OK", "NOTFOUND", "TEMP",
	    "PERM" };
	const char *l[3] = { "type", NULL, NULL };
	size_t i;

	(void)arg;
	danests_metrics_write(pf_metrics, e);
	danests_expo_family(e, "danests_postfix_requests_total", "counter",
	    "Socketmap requests read.");
	danests_expo_u64(e, "danests_postfix_requests_total", NULL,
	    n_requests);
	danests_expo_family(e, "danests_postfix_replies_total", "counter",
	    "Socketmap replies, by type.");
	for (i = 0; i < 4; i++) {
		l[1] = types[i];
		danests_expo_u64(e, "danests_postfix_replies_total", l,
		    replies[i]);
	}
	danests_expo_family(e, "danests_postfix_connections", "gauge",
	    "Socketmap clients connected.");
	danests_expo_u64(e, "danests_postfix_connections", NULL, conn_count());
	if (conf->tlsrpt_socket[0] == '\0')
		return;
	danests_expo_family(e, "danests_postfix_tlsrpt_datagrams_total",
	    "counter", "TLSRPT datagrams received, by what became of them.");
	l[0] = "result";
	l[1] = "accepted";
	danests_expo_u64(e, "danests_postfix_tlsrpt_datagrams_total", l,
	    collect_stats.datagrams - collect_stats.oversized -
	    collect_stats.malformed);
	l[1] = "oversized";
	danests_expo_u64(e, "danests_postfix_tlsrpt_datagrams_total", l,
	    collect_stats.oversized);
	l[1] = "malformed";
	danests_expo_u64(e, "danests_postfix_tlsrpt_datagrams_total", l,
	    collect_stats.malformed);
	danests_expo_family(e, "danests_postfix_tlsrpt_results_total",
	    "counter", "TLS negotiation results of the datagrams, by whether "
	    "the cache took them.");
	l[1] = "recorded";
	danests_expo_u64(e, "danests_postfix_tlsrpt_results_total", l,
	    collect_stats.sessions);
	l[1] = "unrecorded";
	danests_expo_u64(e, "danests_postfix_tlsrpt_results_total", l,
	    collect_stats.unrecorded);
}

/* metrics_init - the daemon's set of counters (before any context) */
bool
metrics_init(void)
{
	return (pf_metrics = danests_metrics_new()) != NULL;
}

/* metrics_free - the counters, once every context is gone */
void
metrics_free(void)
{
	danests_metrics_free(pf_metrics);
	pf_metrics = NULL;
}
