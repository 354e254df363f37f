/*
 * session.c - one LMTP connection of danests-relay (RFC 2033).
 *
 * Commands are read with a bounded line buffer and an idle timeout;
 * after the end of DATA the recipients are grouped by domain, each domain
 * is delivered by a worker thread with the core's SMTP client (at most
 * `parallel` at once, and at most max_deliveries over all sessions), and
 * one reply per recipient goes back in RCPT order (RFC 2033 4.2).  Nothing is acknowledged before the remote MX
 * accepted the message: a relay that dies leaves the message in
 * OpenSMTPD's queue.  The message lives for the transaction only, in
 * memory up to mem_max, then in an unlinked temporary file.
 */
#include "relay.h"
#include "lmtp.h"
#include "tlsreq.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/sockios.h>

#define RBUF_SIZE	8192

struct rcpt {
	char addr[LMTP_PATH_MAX + 1];
	char domain[LMTP_DOMAIN_MAX];
	struct danests_smtp_rcpt out;
	int group;
};

struct session {
	int fd;
	struct peer peer;	/* has the client read our replies (peer.c) */
	uint64_t sent;		/* bytes written to the client */
	struct relay_conf conf;
	char rbuf[RBUF_SIZE];
	size_t rlen, roff;
	bool lhlo;
	/* transaction */
	bool mail;
	char sender[LMTP_PATH_MAX + 1];
	bool body_8bit, smtputf8;
	size_t nrcpt;
	struct rcpt *rcpt;
	/* message */
	char *mem;
	size_t memlen, memcap;
	int tmpfd;
	unsigned long long len;
	bool too_big;
	struct tlsreq tlsreq;	/* RFC 8689: its header, as it streams in */
	bool tls_no;		/* "TLS-Required: No": for all its domains */
};

/* One domain's delivery, run in a worker thread. */
struct group {
	struct session *s;
	const char *domain;
	size_t nrcpt;
	struct danests_smtp_rcpt *rcpt;
	const struct danests_smtp_msg *msg;
	const struct danests_decision *d;	/* during the delivery */
	uint64_t end_ms;
	pthread_t tid;
	bool started;
	char why[256];
};

static bool pace_warned;	/* the fallback of reply_pace was logged */

/* mono_ms - monotonic milliseconds */
static uint64_t
mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* s_write - all of buf, within idle_s; -1 when the client is gone */
static int
s_write(struct session *s, const char *buf, size_t len)
{
	uint64_t end = mono_ms() + (uint64_t)s->conf.idle_s * 1000, t;
	struct pollfd pfd;
	ssize_t n;

	while (len > 0) {
		n = send(s->fd, buf, len, MSG_NOSIGNAL | MSG_DONTWAIT);
		if (n > 0) {
			s->sent += (uint64_t)n;
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (n < 0 && errno != EAGAIN && errno != EINTR)
			return -1;
		if ((t = mono_ms()) >= end)
			return -1;
		pfd.fd = s->fd;
		pfd.events = POLLOUT;
		(void)poll(&pfd, 1, (int)(end - t));
	}
	return 0;
}

/* s_reply - one reply line */
static int
s_reply(struct session *s, int code, const char *text)
{
	char line[LMTP_LINE_MAX];
	int n;

	n = snprintf(line, sizeof(line), "%d %s\r\n", code, text);
	if (n < 0 || (size_t)n >= sizeof(line)) {
		n = (int)sizeof(line) - 1;
		line[n - 2] = '\r';
		line[n - 1] = '\n';
	}
	return s_write(s, line, (size_t)n);
}

/* s_fill - read more bytes into rbuf within idle_s: 1 got some, 0 EOF,
 * -1 timeout or error, -3 the relay stops (nothing more is read) */
static int
s_fill(struct session *s)
{
	uint64_t end = mono_ms() + (uint64_t)s->conf.idle_s * 1000, t;
	struct pollfd pfd[2];
	ssize_t n;

	if (s->roff > 0) {
		memmove(s->rbuf, s->rbuf + s->roff, s->rlen - s->roff);
		s->rlen -= s->roff;
		s->roff = 0;
	}
	for (;;) {
		if (relay_stopping())
			return -3;
		n = recv(s->fd, s->rbuf + s->rlen, sizeof(s->rbuf) - s->rlen,
		    MSG_DONTWAIT);
		if (n > 0) {
			s->rlen += (size_t)n;
			return 1;
		}
		if (n == 0)
			return 0;
		if (errno != EAGAIN && errno != EINTR)
			return -1;
		if ((t = mono_ms()) >= end)
			return -1;
		pfd[0].fd = s->fd;
		pfd[0].events = POLLIN;
		pfd[1].fd = relay_stop_fd();
		pfd[1].events = POLLIN;
		(void)poll(pfd, 2, (int)(end - t));
	}
}

/* s_line - the next line (without CR LF) into line[LMTP_LINE_MAX + 1].
 * Returns its length, -1 EOF/timeout, -2 too long (the rest of the line
 * was discarded), -3 the relay stops */
static long
s_line(struct session *s, char *line)
{
	bool overflow = false;
	char *nl;
	size_t n;
	int rc;

	for (;;) {
		nl = memchr(s->rbuf + s->roff, '\n', s->rlen - s->roff);
		if (nl != NULL) {
			n = (size_t)(nl - (s->rbuf + s->roff));
			if (!overflow && n > 0 && s->rbuf[s->roff + n - 1] ==
			    '\r')
				n--;
			if (!overflow && n <= LMTP_LINE_MAX) {
				memcpy(line, s->rbuf + s->roff, n);
				line[n] = '\0';
			} else
				overflow = true;
			s->roff = (size_t)(nl - s->rbuf) + 1;
			return overflow ? -2 : (long)n;
		}
		if (s->rlen - s->roff > LMTP_LINE_MAX + 2) {
			/* keep discarding until the line ends */
			overflow = true;
			s->roff = s->rlen;
		}
		if ((rc = s_fill(s)) <= 0)
			return rc == -3 ? -3 : -1;
	}
}

/* msg_reset - drop the message of a transaction */
static void
msg_reset(struct session *s)
{
	free(s->mem);
	s->mem = NULL;
	s->memlen = s->memcap = 0;
	if (s->tmpfd >= 0)
		close(s->tmpfd);
	s->tmpfd = -1;
	s->len = 0;
	s->too_big = false;
	tlsreq_init(&s->tlsreq);
	s->tls_no = false;
}

/* tx_reset - forget the transaction (RSET, after DATA) */
static void
tx_reset(struct session *s)
{
	s->mail = false;
	s->sender[0] = '\0';
	s->body_8bit = s->smtputf8 = false;
	free(s->rcpt);
	s->rcpt = NULL;
	s->nrcpt = 0;
	msg_reset(s);
}

/* msg_add - append bytes; spill to an unlinked temp file past mem_max.
 * 0, or -1 when the file cannot be written (temporary failure) */
static int
msg_add(struct session *s, const char *p, size_t n)
{
	if (s->too_big)
		return 0;
	if (s->len + n > s->conf.size_max) {
		/* RFC 1870 6.2: keep reading, refuse at the end */
		s->too_big = true;
		msg_reset(s);
		s->too_big = true;
		return 0;
	}
	if (s->tmpfd < 0 && s->memlen + n > s->conf.mem_max) {
		char path[300];

		snprintf(path, sizeof(path), "%s/danests-relay.XXXXXX",
		    s->conf.tmpdir);
		if ((s->tmpfd = mkostemp(path, O_CLOEXEC)) < 0)
			return -1;
		unlink(path);
		if (s->memlen > 0 && write(s->tmpfd, s->mem, s->memlen) !=
		    (ssize_t)s->memlen)
			return -1;
		free(s->mem);
		s->mem = NULL;
		s->memlen = s->memcap = 0;
	}
	if (s->tmpfd >= 0) {
		while (n > 0) {
			ssize_t w = write(s->tmpfd, p, n);

			if (w < 0 && errno == EINTR)
				continue;
			if (w <= 0)
				return -1;
			p += w;
			n -= (size_t)w;
			s->len += (unsigned long long)w;
		}
		return 0;
	}
	if (s->memlen + n > s->memcap) {
		size_t cap = s->memcap ? s->memcap : 16384;
		char *m;

		while (cap < s->memlen + n)
			cap *= 2;
		if ((m = realloc(s->mem, cap)) == NULL)
			return -1;
		s->mem = m;
		s->memcap = cap;
	}
	memcpy(s->mem + s->memlen, p, n);
	s->memlen += n;
	s->len += n;
	return 0;
}

/* msg_put - message bytes: to the TLS-Required scanner and the store */
static int
msg_put(struct session *s, const char *p, size_t n)
{
	tlsreq_feed(&s->tlsreq, p, n);
	return msg_add(s, p, n);
}

/* read_data - the message up to the "." line (RFC 5321 4.1.1.4), stored
 * as received (dot-stuffed, CRLF line ends).  0 complete, -1 the client
 * went away or stalled, -2 local storage failed (the rest was read), -3
 * the relay stops (nothing was acknowledged) */
static int
read_data(struct session *s)
{
	bool bol = true, failed = false;
	char *nl, *p;
	size_t n, take;
	int rc;

	for (;;) {
		p = s->rbuf + s->roff;
		n = s->rlen - s->roff;
		if (n == 0) {
			if ((rc = s_fill(s)) <= 0)
				return rc == -3 ? -3 : -1;
			continue;
		}
		nl = memchr(p, '\n', n);
		if (nl == NULL) {
			/* a partial line; never the terminator unless it
			 * may still become ".\r\n" */
			if (bol && n < 3 && p[0] == '.') {
				if ((rc = s_fill(s)) <= 0)
					return rc == -3 ? -3 : -1;
				continue;
			}
			if (!failed && msg_put(s, p, n) != 0)
				failed = true;
			s->roff = s->rlen;
			bol = false;
			if ((rc = s_fill(s)) <= 0)
				return rc == -3 ? -3 : -1;
			continue;
		}
		take = (size_t)(nl - p) + 1;
		if (bol && ((take == 3 && p[0] == '.' && p[1] == '\r') ||
		    (take == 2 && p[0] == '.'))) {
			s->roff += take;
			return failed ? -2 : 0;
		}
		/* normalise a bare LF to CRLF (RFC 5321 2.3.8) */
		if (take >= 2 && p[take - 2] == '\r') {
			if (!failed && msg_put(s, p, take) != 0)
				failed = true;
		} else if (!failed && (msg_put(s, p, take - 1) != 0 ||
		    msg_put(s, "\r\n", 2) != 0))
			failed = true;
		s->roff += take;
		bol = true;
	}
}

/* deliver_log - the SMTP client's progress lines, to syslog */
static void
deliver_log(void *arg, bool warn, const char *line)
{
	struct group *g = arg;

	relay_log(warn ? LOG_WARNING : LOG_INFO, "domain=%s %s", g->domain,
	    line);
}

/* group_attempt - one TLS negotiation attempt, for TLS reporting */
static void
group_attempt(void *arg, const struct danests_smtp_attempt *a)
{
	struct group *g = arg;

	report_attempt(g->d, a);
}

/* group_main - decide and deliver one domain (worker thread) */
static void *
group_main(void *arg)
{
	struct group *g = arg;
	struct danests_decision *d;
	struct danests_smtp_opts o = g->s->conf.smtp;
	struct danests_smtp_tx tx;
	struct ssl_ctx_st *tls;
	uint64_t now = mono_ms();
	char text[DANESTS_SMTP_TEXT_MAX];
	size_t i;

	if (now + 1000 >= g->end_ms)
		goto expired;
	d = relay_decide(g->domain, (unsigned)(g->end_ms - now), g->why,
	    sizeof(g->why));
	if (d == NULL) {
		snprintf(text, sizeof(text), "4.4.3 domain %s: no decision "
		    "(%s)", g->domain, g->why);
		for (i = 0; i < g->nrcpt; i++) {
			g->rcpt[i].code = 451;
			snprintf(g->rcpt[i].text, sizeof(g->rcpt[i].text), "%s",
			    text);
		}
		relay_log(LOG_WARNING, "domain=%s no decision: %s", g->domain,
		    g->why);
		return NULL;
	}
	/* RFC 8689 5: the sender asked that no TLS policy hold the
	 * message back; best TLS available, no deferral for DANE or
	 * MTA-STS (tlsreq.h) */
	if (g->s->tls_no) {
		danests_verdict was = d->verdict;

		if (tlsreq_relax(d))
			relay_log(LOG_NOTICE, "domain=%s TLS-Required: No: DANE "
			    "and MTA-STS not enforced for this message, TLS "
			    "when offered (decision %s, now %s)", g->domain,
			    danests_verdict_name(was),
			    danests_verdict_name(d->verdict));
	}
	now = mono_ms();
	if (now + 1000 >= g->end_ms) {
		danests_decision_free(d);
		goto expired;
	}
	o.total_ms = (unsigned)(g->end_ms - now);
	memset(&tx, 0, sizeof(tx));
	tx.sender = g->s->sender;
	tx.body_8bit = g->s->body_8bit;
	tx.smtputf8 = g->s->smtputf8;
	tx.msg = g->msg;
	tx.nrcpt = g->nrcpt;
	tx.rcpt = g->rcpt;
	/* RFC 8460 4.3: each attempt counts; not those of a message that
	 * asked for no TLS policy (RFC 8689 5: a report's own delivery
	 * is not reported on) */
	if (g->s->conf.tls_reports && !g->s->tls_no) {
		g->d = d;
		tx.attempt = group_attempt;
		tx.attempt_arg = g;
	}
	/* a reference: a reload (new ca_file) may replace the context */
	tls = relay_tls();
	(void)danests_smtp_deliver(tls, d, &o, &tx, deliver_log, g);
	danests_tls_ctx_free(tls);
	for (i = 0; i < g->nrcpt; i++)
		relay_log(g->rcpt[i].code / 100 == 2 ? LOG_INFO : LOG_WARNING,
		    "domain=%s rcpt=<%s> verdict=%s host=%s addr=%s tls=\"%s\" "
		    "verified=%s%s%s%s status=%d \"%s\"", g->domain,
		    g->rcpt[i].addr, danests_verdict_name(d->verdict),
		    *tx.host ? tx.host : "-", *tx.addr ? tx.addr : "-",
		    tx.tls, tx.verified ? "yes" : "no",
		    tx.result_type != DANESTS_RT_NONE ? " result_type=" : "",
		    tx.result_type != DANESTS_RT_NONE ?
		    danests_result_type_name(tx.result_type) : "",
		    g->s->tls_no ? " tls_required=no" : "",
		    g->rcpt[i].code,
		    g->rcpt[i].text);
	danests_decision_free(d);
	return NULL;
expired:
	for (i = 0; i < g->nrcpt; i++) {
		g->rcpt[i].code = 451;
		snprintf(g->rcpt[i].text, sizeof(g->rcpt[i].text),
		    "4.4.7 domain %s: transaction time limit reached",
		    g->domain);
	}
	return NULL;
}

/* group_thread - a worker: one domain, then its slot back */
static void *
group_thread(void *arg)
{
	group_main(arg);
	relay_slot_put();
	return NULL;
}

/* reply_pace - hold the next per-recipient reply until the client has
 * read the previous one.  OpenSMTPD 6.8's mta takes one reply out of each
 * read(2) and fails the rest of the transaction when bytes are left over
 * ("Remote host sent too much data"), retrying recipients the relay has
 * delivered already (peer.c).  For a client on this host the kernel says
 * when it has read everything we wrote; only for a client elsewhere is the
 * pause a guess: until the reply left our socket, then reply_gap_ms.
 * Never past end (monotonic ms). */
static void
reply_pace(struct session *s, uint64_t end)
{
	struct timespec ts;
	unsigned nap_us = 200;
	int r, outq;

	if (mono_ms() >= end)
		return;		/* said once already: the client is stuck */
	while ((r = peer_read_all(&s->peer, s->fd, s->sent)) == 0) {
		if (mono_ms() >= end) {
			relay_log(LOG_WARNING, "the client did not read a "
			    "reply in time; replying anyway");
			return;
		}
		ts.tv_sec = 0;
		ts.tv_nsec = (long)nap_us * 1000;
		nanosleep(&ts, NULL);
		if (nap_us < 10000)
			nap_us *= 2;
	}
	if (r == 1)
		return;
	/* once per process: per session it would flood the log */
	if (!__atomic_exchange_n(&pace_warned, true, __ATOMIC_RELAXED))
		relay_log(LOG_WARNING, "cannot see whether the LMTP client "
		    "read each reply (not on this host, or no sock_diag); "
		    "pacing replies %u ms apart", s->conf.reply_gap_ms);
	if (s->conf.reply_gap_ms == 0)
		return;
	while (ioctl(s->fd, SIOCOUTQ, &outq) == 0 && outq > 0 &&
	    mono_ms() < end) {
		ts.tv_sec = 0;
		ts.tv_nsec = 1000000;
		nanosleep(&ts, NULL);
	}
	ts.tv_sec = s->conf.reply_gap_ms / 1000;
	ts.tv_nsec = (long)(s->conf.reply_gap_ms % 1000) * 1000000;
	nanosleep(&ts, NULL);
}

/* reply_rcpts - one reply per recipient after DATA (RFC 2033 4.2), each
 * after the client read the previous one; code 0 takes each recipient's
 * own outcome from outs (in RCPT order through order) */
static int
reply_rcpts(struct session *s, int code, const char *text,
    struct danests_smtp_rcpt *outs, const size_t *order)
{
	uint64_t end = mono_ms() + (uint64_t)s->conf.idle_s * 1000;
	size_t i;
	int rc = 0;

	for (i = 0; i < s->nrcpt && rc == 0; i++) {
		int c = code;
		const char *t = text;

		if (c == 0) {
			struct danests_smtp_rcpt *o = &outs[order[i]];

			c = o->code;
			if (c < 200 || c > 599) {
				c = 451;
				snprintf(o->text, sizeof(o->text),
				    "4.3.0 no outcome");
			}
			t = o->text;
		}
		if (i > 0)
			reply_pace(s, end);
		metrics_delivery(c);
		rc = s_reply(s, c, t);
	}
	return rc;
}

/* deliver - group by domain, deliver the groups (at most parallel at
 * once), then reply per recipient in RCPT order */
static int
deliver(struct session *s)
{
	struct danests_smtp_msg msg;
	struct danests_smtp_rcpt *outs = NULL;
	struct group *groups = NULL;
	size_t ngroups = 0, i, k, next, running, r;
	uint64_t end = mono_ms() + (uint64_t)s->conf.transaction_s * 1000;
	pthread_attr_t attr;
	size_t *order = NULL;
	int rc = 0;

	msg.data = s->mem;
	msg.fd = s->tmpfd;
	msg.len = s->len;
	/* one message: the header holds for every domain of the batch */
	s->tls_no = tlsreq_no(&s->tlsreq);
	/* recipients of one domain sit together in outs, in RCPT order */
	if ((outs = calloc(s->nrcpt, sizeof(*outs))) == NULL ||
	    (groups = calloc(s->nrcpt, sizeof(*groups))) == NULL ||
	    (order = calloc(s->nrcpt, sizeof(*order))) == NULL) {
		rc = reply_rcpts(s, 451, "4.3.0 out of memory", NULL, NULL);
		goto out;
	}
	for (i = 0; i < s->nrcpt; i++)
		s->rcpt[i].group = -1;
	for (i = 0, r = 0; i < s->nrcpt; i++) {
		if (s->rcpt[i].group >= 0)
			continue;
		groups[ngroups].s = s;
		groups[ngroups].domain = s->rcpt[i].domain;
		groups[ngroups].rcpt = &outs[r];
		groups[ngroups].msg = &msg;
		groups[ngroups].end_ms = end;
		for (k = i; k < s->nrcpt; k++) {
			if (s->rcpt[k].group >= 0 ||
			    strcmp(s->rcpt[k].domain, s->rcpt[i].domain) != 0)
				continue;
			s->rcpt[k].group = (int)ngroups;
			outs[r].addr = s->rcpt[k].addr;
			order[k] = r++;
			groups[ngroups].nrcpt++;
		}
		ngroups++;
	}
	pthread_attr_init(&attr);
	pthread_attr_setstacksize(&attr, 256 * 1024);
	/* at most `parallel` domains at once; each worker bounded by end */
	for (next = 0, running = 0, k = 0; k < ngroups; ) {
		while (next < ngroups && running < s->conf.parallel) {
			/* a slot of max_deliveries, in turn with the other
			 * sessions; none before the end: the time is up */
			if (!relay_slot_get(s->conf.max_deliveries, end))
				group_main(&groups[next]);
			else if (pthread_create(&groups[next].tid, &attr,
			    group_thread, &groups[next]) == 0) {
				groups[next].started = true;
				running++;
			} else
				group_thread(&groups[next]);
			next++;
		}
		if (groups[k].started) {
			pthread_join(groups[k].tid, NULL);
			running--;
		}
		k++;
	}
	pthread_attr_destroy(&attr);
	/* RFC 2033 4.2: one reply per accepted recipient, in order */
	rc = reply_rcpts(s, 0, NULL, outs, order);
out:
	free(order);
	free(groups);
	free(outs);
	return rc;
}

/* copy_path - a parsed path into a path buffer; lmtp_parse refuses
 * paths longer than LMTP_PATH_MAX, so nothing is ever cut */
static void
copy_path(char dst[LMTP_PATH_MAX + 1], const char *src)
{
	size_t n = strnlen(src, LMTP_PATH_MAX);

	memcpy(dst, src, n);
	dst[n] = '\0';
}

/* cmd_lhlo - RFC 2033 4.1 */
static int
cmd_lhlo(struct session *s)
{
	char buf[512];

	tx_reset(s);
	s->lhlo = true;
	snprintf(buf, sizeof(buf), "250-%s\r\n250-PIPELINING\r\n"
	    "250-ENHANCEDSTATUSCODES\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
	    "250 SIZE %llu\r\n", s->conf.helo, s->conf.size_max);
	return s_write(s, buf, strlen(buf));
}

/* session_loop - read commands until QUIT, EOF or a timeout */
static void
session_loop(struct session *s)
{
	struct lmtp_cmd *cmd;
	char *line;
	const char *why;
	long n = 0;
	int rc;

	cmd = malloc(sizeof(*cmd));
	line = malloc(LMTP_LINE_MAX + 1);
	if (cmd == NULL || line == NULL) {
		(void)s_reply(s, 421, "4.3.0 out of memory");
		goto out;
	}
	{
		char greet[300];

		snprintf(greet, sizeof(greet), "%s LMTP %s ready",
		    s->conf.helo, RELAY_NAME);
		if (s_reply(s, 220, greet) != 0)
			goto out;
	}
	for (;;) {
		/* RFC 5321 3.8: a server that must stop says 421 and closes;
		 * between commands nothing is in flight */
		if (relay_stopping() || (n = s_line(s, line)) == -3) {
			(void)s_reply(s, 421, "4.3.2 shutting down");
			break;
		}
		if (n == -1) {
			(void)s_reply(s, 421, "4.4.2 timeout or connection "
			    "lost, closing");
			break;
		}
		if (n == -2) {
			if (s_reply(s, 500, "5.5.2 line too long") != 0)
				break;
			continue;
		}
		if ((rc = lmtp_parse(line, (size_t)n, cmd, &why)) != 0) {
			if (s_reply(s, rc, why) != 0)
				break;
			continue;
		}
		switch (cmd->verb) {
		case LMTP_LHLO:
			rc = cmd_lhlo(s);
			break;
		case LMTP_HELO:
		case LMTP_EHLO:
			/* RFC 2033 4.1: LMTP has LHLO only */
			rc = s_reply(s, 500, "5.5.1 this is LMTP: use LHLO");
			break;
		case LMTP_MAIL:
			if (!s->lhlo)
				rc = s_reply(s, 503, "5.5.1 LHLO first");
			else if (s->mail)
				rc = s_reply(s, 503, "5.5.1 nested MAIL");
			else if (cmd->has_size && cmd->size >
			    s->conf.size_max)
				rc = s_reply(s, 552, "5.3.4 message size "
				    "exceeds the fixed limit");
			else {
				s->mail = true;
				copy_path(s->sender, cmd->arg);
				s->body_8bit = cmd->body == LMTP_BODY_8BITMIME;
				s->smtputf8 = cmd->smtputf8;
				rc = s_reply(s, 250, "2.1.0 sender ok");
			}
			break;
		case LMTP_RCPT:
			if (!s->mail)
				rc = s_reply(s, 503, "5.5.1 MAIL first");
			else if (s->nrcpt >= s->conf.max_rcpts)
				rc = s_reply(s, 452, "4.5.3 too many "
				    "recipients");
			else {
				struct rcpt *nr = realloc(s->rcpt,
				    (s->nrcpt + 1) * sizeof(*nr));

				if (nr == NULL) {
					rc = s_reply(s, 452, "4.3.0 out of "
					    "memory");
					break;
				}
				s->rcpt = nr;
				memset(&nr[s->nrcpt], 0, sizeof(*nr));
				copy_path(nr[s->nrcpt].addr, cmd->arg);
				snprintf(nr[s->nrcpt].domain,
				    sizeof(nr[s->nrcpt].domain), "%s",
				    cmd->domain);
				s->nrcpt++;
				rc = s_reply(s, 250, "2.1.5 recipient ok");
			}
			break;
		case LMTP_DATA:
			if (!s->mail || s->nrcpt == 0) {
				rc = s_reply(s, 503, "5.5.1 no valid "
				    "recipients");
				break;
			}
			if (s_reply(s, 354, "go ahead, end with "
			    "<CRLF>.<CRLF>") != 0) {
				rc = -1;
				break;
			}
			rc = read_data(s);
			if (rc == -3) {
				/* nothing was acknowledged: the client
				 * keeps the message */
				(void)s_reply(s, 421, "4.3.2 shutting down");
				goto out;
			}
			if (rc == -1) {
				/* the client vanished: nothing was
				 * acknowledged, nothing is delivered */
				relay_log(LOG_WARNING, "client lost during "
				    "DATA, %zu recipients not delivered",
				    s->nrcpt);
				goto out;
			}
			if (rc == -2 || s->too_big)
				rc = reply_rcpts(s, s->too_big ? 552 : 451,
				    s->too_big ? "5.3.4 message too big" :
				    "4.3.0 cannot store the message", NULL,
				    NULL);
			else
				rc = deliver(s);
			tx_reset(s);
			break;
		case LMTP_RSET:
			tx_reset(s);
			rc = s_reply(s, 250, "2.0.0 ok");
			break;
		case LMTP_NOOP:
			rc = s_reply(s, 250, "2.0.0 ok");
			break;
		case LMTP_VRFY:
			rc = s_reply(s, 252, "2.5.0 cannot verify, will try");
			break;
		case LMTP_QUIT:
			(void)s_reply(s, 221, "2.0.0 bye");
			goto out;
		default:
			rc = s_reply(s, 500, "5.5.1 command unrecognized");
		}
		if (rc != 0)
			break;
	}
out:
	free(cmd);
	free(line);
}

/* session_main - one accepted connection, in its own thread */
void
session_main(int fd)
{
	struct session *s;

	if ((s = calloc(1, sizeof(*s))) != NULL) {
		s->fd = fd;
		s->tmpfd = -1;
		peer_init(&s->peer, fd);
		relay_conf_get(&s->conf);
		session_loop(s);
		tx_reset(s);
		peer_free(&s->peer);
		free(s);
	}
	close(fd);
}
