/*
 * report.c - SMTP TLS Reporting (RFC 8460) in danests-relay: the result
 * of each TLS negotiation attempt with an MX host, counted in the shared
 * cache.
 *
 * The SMTP client tells each attempt (danests_smtp_attempt) in the
 * delivering thread; report_attempt turns it into a result with the
 * policy fields of the host's decision (danests_report_policy) and queues
 * it; the main thread, which owns the context, counts the queued results
 * (danests_ctx_report_many: one write transaction for up to
 * DANESTS_RPT_BATCH_MAX of them, so a burst of deliveries costs few
 * commits).  A delivery never
 * waits for this: the queue is bounded, and what cannot be counted (a
 * full queue, a cache error) is dropped and logged, at most once a
 * minute.  Results queued when the relay stops are counted before it
 * exits.
 */
#include "relay.h"
#include "danests-report.h"

#include <event2/event.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#define REPORT_QUEUE_MAX	1024	/* results waiting for the main
					 * thread */
#define REPORT_LOG_EVERY	60	/* seconds between error lines */
#define REPORT_INFO_MAX		200	/* failure-reason-code kept */

struct rpt {
	struct danests_rpt_result res;
	char domain[256];	/* the decision goes before the result is
				 * written: every string is copied */
	char local[64], mx[256], ip[64], info[REPORT_INFO_MAX];
	char buf[2 * DANESTS_RPT_STRING_MAX + 512];	/* policy fields */
	struct rpt *next;
};

static pthread_mutex_t qlock = PTHREAD_MUTEX_INITIALIZER;
static struct rpt *qhead, *qtail;	/* under qlock */
static unsigned qlen;			/* under qlock */
static struct event *ev_report;
/* error lines, rate-limited; under qlock */
static time_t err_last;
static unsigned err_dropped;

/* report_error - n lost results (any thread): logged at most once per
 * REPORT_LOG_EVERY seconds, with how many were lost meanwhile */
static void
report_error(unsigned n, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static void
report_error(unsigned n, const char *fmt, ...)
{
	char why[300];
	unsigned dropped;
	time_t now = time(NULL);
	va_list ap;

	pthread_mutex_lock(&qlock);
	err_dropped += n;
	if (err_last != 0 && now - err_last < REPORT_LOG_EVERY) {
		pthread_mutex_unlock(&qlock);
		return;
	}
	err_last = now;
	dropped = err_dropped;
	err_dropped = 0;
	pthread_mutex_unlock(&qlock);
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	relay_log(LOG_ERR, "TLS report result not recorded: %s (%u lost "
	    "since the last such line; at most one line per %d s)", why,
	    dropped, REPORT_LOG_EVERY);
}

/* copy_field - src into dst, cut to fit, control characters replaced
 * (failure-reason-code is free text of the peer or of OpenSSL) */
static const char *
copy_field(char *dst, size_t len, const char *src)
{
	size_t i;

	if (src == NULL || *src == '\0')
		return NULL;
	for (i = 0; src[i] != '\0' && i + 1 < len; i++)
		dst[i] = (unsigned char)src[i] < 0x20 || src[i] == 0x7f ?
		    ' ' : src[i];
	dst[i] = '\0';
	return dst;
}

/* record_batch - count n results in one write transaction */
static void
record_batch(struct danests_ctx *ctx, const struct danests_rpt_result *res,
    size_t n)
{
	char why[256];
	size_t nrefused = 0;
	danests_status st;

	*why = '\0';
	st = ctx != NULL ? danests_ctx_report_many(ctx, res, n, &nrefused,
	    why, sizeof(why)) : DANESTS_TEMP;
	if (st == DANESTS_NOTFOUND)
		report_error((unsigned)n, "no cache, or tls_reports off (%s)",
		    *why ? why : "not recorded");
	else if (st != DANESTS_OK)
		report_error((unsigned)n, "%s", *why ? why :
		    danests_status_name(st));
	else if (nrefused > 0)
		report_error((unsigned)nrefused, "refused: %s", why);
}

/* record_all - count the queued results (main thread) */
static void
record_all(void)
{
	static struct danests_rpt_result batch[DANESTS_RPT_BATCH_MAX];
	struct danests_ctx *ctx = relay_ctx();
	struct rpt *r, *list, *done;
	size_t n;

	pthread_mutex_lock(&qlock);
	list = qhead;
	qhead = qtail = NULL;
	qlen = 0;
	pthread_mutex_unlock(&qlock);
	while (list != NULL) {
		for (n = 0, done = list; list != NULL &&
		    n < DANESTS_RPT_BATCH_MAX; list = list->next)
			batch[n++] = list->res;
		record_batch(ctx, batch, n);
		while ((r = done) != list) {
			done = r->next;
			free(r);
		}
	}
}

/* report_cb - results are queued */
static void
report_cb(evutil_socket_t fd, short ev, void *arg)
{
	(void)fd;
	(void)ev;
	(void)arg;
	record_all();
}

/* report_init - the main thread's event; 0 or -1 */
int
report_init(struct event_base *base)
{
	if ((ev_report = event_new(base, -1, 0, report_cb, NULL)) == NULL)
		return -1;
	return 0;
}

/* report_flush - count what is still queued and drop the event (main
 * thread, after the sessions ended) */
void
report_flush(void)
{
	record_all();
	if (ev_report != NULL)
		event_free(ev_report);
	ev_report = NULL;
}

/* report_attempt - queue the result of one attempt of a delivery by
 * decision d (delivering thread) */
void
report_attempt(const struct danests_decision *d,
    const struct danests_smtp_attempt *a)
{
	const struct danests_host *h = a->host;
	struct danests_host sts_host;
	struct rpt *r;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		report_error(1, "domain %s: out of memory", d->domain);
		return;
	}
	/* an MX host outside the MTA-STS enforce policy fails that
	 * policy (RFC 8461 4.1): report it under the policy */
	if (h->policy == DANESTS_POLICY_SKIP &&
	    h->reason == DANESTS_R_STS_MX_MISMATCH && d->sts != NULL) {
		sts_host = *h;
		sts_host.policy = DANESTS_POLICY_STS_ENFORCE;
		h = &sts_host;
	}
	if (danests_report_policy(d, h, &r->res, r->buf,
	    sizeof(r->buf)) != DANESTS_OK ||
	    copy_field(r->domain, sizeof(r->domain), d->domain) == NULL ||
	    strlen(d->domain) >= sizeof(r->domain)) {
		report_error(1, "domain %s: policy of host %s too large",
		    d->domain, a->host->name);
		free(r);
		return;
	}
	r->res.policy_domain = r->domain;
	r->res.when = time(NULL);
	r->res.success = a->result_type == DANESTS_RT_NONE;
	if (!r->res.success) {
		/* RFC 8460 4.4: failure-details */
		r->res.result_type = a->result_type;
		r->res.sending_mta_ip = copy_field(r->local, sizeof(r->local),
		    a->local_addr);
		r->res.receiving_mx_hostname = copy_field(r->mx,
		    sizeof(r->mx), a->host->name);
		r->res.receiving_ip = copy_field(r->ip, sizeof(r->ip),
		    a->addr);
		r->res.additional_info = copy_field(r->info, sizeof(r->info),
		    a->detail);
	}
	pthread_mutex_lock(&qlock);
	if (qlen >= REPORT_QUEUE_MAX || ev_report == NULL) {
		pthread_mutex_unlock(&qlock);
		report_error(1, "domain %s: %s", d->domain, ev_report == NULL ?
		    "not set up" : "queue full");
		free(r);
		return;
	}
	if (qtail != NULL)
		qtail->next = r;
	else
		qhead = r;
	qtail = r;
	qlen++;
	pthread_mutex_unlock(&qlock);
	event_active(ev_report, EV_READ, 0);
}
