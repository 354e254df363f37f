/*
 * collect.c - the TLSRPT collector of danests-postfix: Postfix >= 3.10,
 * built with libtlsrpt and set to "smtp_tlsrpt_enable = yes", sends one
 * datagram per TLS negotiation attempt to smtp_tlsrpt_socket_name
 * (RFC 8460 4.3); with tlsrpt_socket set, danests-postfix binds that unix
 * datagram socket and counts each result into the shared cache
 * (danests_ctx_report), where `danests report` finds them.
 *
 * The socket is read on the daemon's one event loop, COLLECT_BATCH
 * datagrams per wake-up, so that socketmap clients are served in between;
 * a datagram is never answered and never waited for (libtlsrpt sends
 * without blocking: when the socket's queue is full, Postfix's result is
 * lost, never its delivery delayed).  A datagram that is too large or
 * malformed is dropped and counted; what went wrong is logged at most
 * once a minute per kind, with the number dropped since.
 */
#include "danests-postfix.h"

#include <sys/socket.h>

#include <errno.h>
#include <event2/event.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "danests-report.h"
#include "tlsrpt_dgram.h"

/* Datagrams per wake-up, their results counted in one write transaction
 * of the cache (a few ms with its fsync): a burst holds socketmap clients
 * back by at most one commit. */
#define COLLECT_BATCH		64
/* The results of a wake-up and a copy of their strings (the parser's are
 * valid during its callback only); when either is full, what is there is
 * counted before more is taken. */
#define COLLECT_RESULTS		DANESTS_RPT_BATCH_MAX
#define COLLECT_ARENA		(512 * 1024)
#define COLLECT_LOG_EVERY	60	/* seconds between warnings of a kind */

/* A warning logged at most once per COLLECT_LOG_EVERY seconds. */
struct ratelog {
	time_t last;
	unsigned long quiet;	/* occurrences not logged since */
};

struct collect_stats collect_stats;

static struct dmn_listen sock = { .fd = -1 };
static struct event *ev;
static struct ratelog rl_big, rl_bad, rl_store, rl_off, rl_recv;

static struct danests_rpt_result batch[COLLECT_RESULTS];
static size_t nbatch;
static char arena[COLLECT_ARENA];
static size_t arena_used;

/* rlog - log through r's limit */
static void __attribute__((format(printf, 3, 4)))
rlog(struct ratelog *r, int prio, const char *fmt, ...)
{
	char msg[512];
	time_t now = time(NULL);
	va_list ap;

	if (r->last != 0 && now - r->last < COLLECT_LOG_EVERY &&
	    now >= r->last) {
		r->quiet++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (r->quiet > 0)
		dmn_log(prio, "tlsrpt: %s (and %lu more in the last %lld s)",
		    msg, r->quiet, (long long)(now - r->last));
	else
		dmn_log(prio, "tlsrpt: %s", msg);
	r->last = now;
	r->quiet = 0;
}

/* flush - count the results taken so far in one write transaction */
static void
flush(void)
{
	char why[512];
	size_t nrefused = 0;
	danests_status st;

	if (nbatch == 0)
		return;
	why[0] = '\0';
	st = ctx != NULL ? danests_ctx_report_many(ctx, batch, nbatch,
	    &nrefused, why, sizeof(why)) : DANESTS_TEMP;
	if (st == DANESTS_OK) {
		collect_stats.sessions += nbatch - nrefused;
		if (nrefused > 0) {
			collect_stats.unrecorded += nrefused;
			rlog(&rl_store, LOG_ERR, "%zu results not recorded: "
			    "%s", nrefused, why);
		}
	} else if (st == DANESTS_NOTFOUND) {
		collect_stats.unrecorded += nbatch;
		rlog(&rl_off, LOG_WARNING, "results not recorded: "
		    "tls_reports is off or cache_dir is none");
	} else {
		collect_stats.unrecorded += nbatch;
		rlog(&rl_store, LOG_ERR, "%zu results not recorded: %s",
		    nbatch, why[0] != '\0' ? why : "no context");
	}
	nbatch = 0;
	arena_used = 0;
}

/* keep - a copy of s in the arena, or NULL for NULL; *ok false when the
 * arena is full */
static const char *
keep(const char *s, bool *ok)
{
	size_t len;
	char *p;

	if (s == NULL || !*ok)
		return NULL;
	len = strlen(s) + 1;
	if (len > sizeof(arena) - arena_used) {
		*ok = false;
		return NULL;
	}
	p = memcpy(arena + arena_used, s, len);
	arena_used += len;
	return p;
}

/* take - copy r into the batch; false when there is no room */
static bool
take(const struct danests_rpt_result *r)
{
	struct danests_rpt_result *b;
	size_t mark = arena_used;
	bool ok = true;

	if (nbatch == COLLECT_RESULTS)
		return false;
	b = &batch[nbatch];
	*b = *r;
	b->policy_domain = keep(r->policy_domain, &ok);
	b->policy_string = keep(r->policy_string, &ok);
	b->mx_host = keep(r->mx_host, &ok);
	b->sending_mta_ip = keep(r->sending_mta_ip, &ok);
	b->receiving_mx_hostname = keep(r->receiving_mx_hostname, &ok);
	b->receiving_mx_helo = keep(r->receiving_mx_helo, &ok);
	b->receiving_ip = keep(r->receiving_ip, &ok);
	b->additional_info = keep(r->additional_info, &ok);
	if (!ok) {
		arena_used = mark;
		return false;
	}
	if (b->when == 0)
		b->when = time(NULL);	/* the day it arrived, not flushed */
	nbatch++;
	return true;
}

/* record - a tlsrpt_dgram_fn: one session into the wake-up's batch */
static danests_status
record(void *arg, const struct danests_rpt_result *r, char *why,
    size_t whylen)
{
	(void)arg;
	if (!take(r)) {
		flush();
		if (!take(r)) {		/* cannot happen: the caps fit */
			snprintf(why, whylen, "result too large to keep");
			return DANESTS_TEMP;
		}
	}
	if (dmn_log_verbose())
		dmn_log(LOG_INFO, "tlsrpt: %s %s %s", r->policy_domain,
		    r->policy_type == DANESTS_RPT_TLSA ? "tlsa" :
		    r->policy_type == DANESTS_RPT_STS ? "sts" :
		    "no-policy-found", r->success ? "success" :
		    danests_result_type_name(r->result_type));
	return DANESTS_OK;
}

/* collect_read - the datagrams waiting, COLLECT_BATCH at most */
static void
collect_read(evutil_socket_t fd, short what, void *arg)
{
	static char buf[TLSRPT_DGRAM_MAX + 1];
	struct tlsrpt_dgram_info info;
	char why[512];
	danests_status st;
	ssize_t n;
	int i;

	(void)what;
	(void)arg;
	for (i = 0; i < COLLECT_BATCH; i++) {
		/* MSG_TRUNC: the datagram's real length, to tell an
		 * oversized one from one that fits */
		n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				rlog(&rl_recv, LOG_ERR, "recv: %s",
				    strerror(errno));
			break;
		}
		collect_stats.datagrams++;
		if ((size_t)n > TLSRPT_DGRAM_MAX) {
			collect_stats.oversized++;
			rlog(&rl_big, LOG_WARNING, "dropped a datagram of "
			    "%zd bytes (more than %d)", n, TLSRPT_DGRAM_MAX);
			continue;
		}
		why[0] = '\0';
		st = tlsrpt_dgram_parse(buf, (size_t)n, record, NULL, &info,
		    why, sizeof(why));
		collect_stats.extra_details += info.extra_details;
		if (st == DANESTS_OK)
			continue;
		if (info.sessions == 0 && st == DANESTS_PERM) {
			/* refused whole by the parser, or by the store */
			collect_stats.malformed++;
			rlog(&rl_bad, LOG_WARNING, "dropped a malformed "
			    "datagram: %s", why);
		} else if (st == DANESTS_NOTFOUND) {
			collect_stats.unrecorded++;
			rlog(&rl_off, LOG_WARNING, "results not recorded: "
			    "tls_reports is off or cache_dir is none");
		} else {
			collect_stats.unrecorded++;
			rlog(&rl_store, LOG_ERR, "a result not recorded: %s",
			    why);
		}
	}
	flush();
}

/* collect_bind - see danests-postfix.h */
bool
collect_bind(const struct conf *c, char *why, size_t whylen)
{
	char spec[sizeof(sock.path) + 8];

	if (c->tlsrpt_socket[0] == '\0')
		return true;
	snprintf(spec, sizeof(spec), "unix:%s", c->tlsrpt_socket);
	return dmn_listen_parse(spec, &sock, why, whylen) &&
	    dmn_dgram_bind(&sock, c->tlsrpt_mode, why, whylen);
}

/* collect_start - see danests-postfix.h */
bool
collect_start(struct event_base *b)
{
	int sz = 1 << 20;

	if (sock.fd < 0)
		return true;
	/* room for a burst of datagrams while a write transaction runs
	 * (capped by net.core.rmem_max) */
	(void)setsockopt(sock.fd, SOL_SOCKET, SO_RCVBUF, &sz, sizeof(sz));
	if ((ev = event_new(b, sock.fd, EV_READ | EV_PERSIST, collect_read,
	    NULL)) == NULL || event_add(ev, NULL) != 0)
		return false;
	dmn_log(LOG_INFO, "tlsrpt: collecting on %s", sock.path);
	return true;
}

/* collect_stop - see danests-postfix.h */
void
collect_stop(void)
{
	if (ev != NULL) {
		event_free(ev);
		ev = NULL;
	}
	dmn_listen_close(&sock);
}
