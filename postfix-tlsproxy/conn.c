/*
 * conn.c - client connections of danests-postfix: socketmap requests
 * (Postfix socketmap_table(5)) read and answered in order, a bound on each
 * lookup and on the time a request may take to arrive, and room made for
 * new clients when the table is full.  Reuse of decisions and one
 * resolution shared by every client asking are the core context's
 * (danests_decide_async).
 */
#include "danests-postfix.h"

#include <sys/queue.h>

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct conn;

/* One request asked of the core; outlives its connection when that
 * goes first (c is then NULL). */
struct lookup {
	struct conn *c;
	char domain[PFMAP_DOMAIN_MAX];
};

#define CONN_IN_MAX	(4 * (PFMAP_REQUEST_MAX + 16))	/* unread input */
#define CONN_OUT_MAX	(4 * PFMAP_REPLY_MAX)	/* unsent output */

struct conn {
	int fd;
	struct event *rev, *wev;
	struct lookup *waiting;
	struct event *timer;		/* bound on the current lookup */
	struct pfmap_profile profile;	/* of the current request */
	bool closing;			/* close once the output drained */
	bool reading;			/* rev is added */
	time_t last;			/* last activity, for idle_timeout */
	time_t req_start;		/* first byte of an unfinished request,
					 * 0 when none is buffered */
	unsigned long seq;		/* accept order, breaks ties */
	size_t inlen, outlen;
	char in[CONN_IN_MAX];
	char *out;			/* CONN_OUT_MAX bytes, on demand */
	LIST_ENTRY(conn) all;
};

static LIST_HEAD(, conn) conns = LIST_HEAD_INITIALIZER(conns);
static size_t nconns;
static unsigned long n_evicted, n_slow, n_accepted;

static void conn_process(struct conn *);

/* conn_free - close a client connection */
static void
conn_free(struct conn *c)
{
	if (c->waiting != NULL) {
		c->waiting->c = NULL;
		c->waiting = NULL;
	}
	if (c->timer != NULL)
		event_free(c->timer);
	event_free(c->rev);
	event_free(c->wev);
	close(c->fd);
	free(c->out);
	LIST_REMOVE(c, all);
	nconns--;
	free(c);
}

/* conn_flush - write what is pending; false when the connection died
 * (and was freed) */
static bool
conn_flush(struct conn *c)
{
	ssize_t n;

	while (c->outlen > 0) {
		n = write(c->fd, c->out, c->outlen);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
			event_add(c->wev, NULL);
			return true;
		}
		if (n <= 0) {
			conn_free(c);
			return false;
		}
		memmove(c->out, c->out + n, c->outlen - (size_t)n);
		c->outlen -= (size_t)n;
	}
	event_del(c->wev);
	if (c->closing) {
		conn_free(c);
		return false;
	}
	return true;
}

/* conn_reply - queue one reply payload as a netstring; written by
 * conn_process or the write event, one write per batch of replies */
static void
conn_reply(struct conn *c, const char *payload)
{
	size_t n;

	metrics_reply(payload);
	if (c->out == NULL && (c->out = malloc(CONN_OUT_MAX)) == NULL) {
		c->closing = true;
		return;
	}
	if ((n = pfmap_ns_format(c->out + c->outlen, CONN_OUT_MAX - c->outlen,
	    payload, strlen(payload))) == 0 && (n = pfmap_ns_format(c->out +
	    c->outlen, CONN_OUT_MAX - c->outlen, "TEMP reply too long",
	    19)) == 0) {
		c->closing = true;	/* cannot happen: input is capped */
		return;
	}
	c->outlen += n;
}

/* conn_answer - answer the current request from a decision */
static void
conn_answer(struct conn *c, const struct danests_decision *d)
{
	char out[PFMAP_REPLY_MAX];

	(void)pfmap_answer(d, &c->profile, out, sizeof(out));
	dmn_log(LOG_DEBUG, "%s %s: %s", c->profile.name, d->domain, out);
	conn_reply(c, out);
}

/* conn_resume - the current request is answered: go on */
static void
conn_resume(struct conn *c)
{
	if (c->timer != NULL)
		event_del(c->timer);
	conn_process(c);
}

/* decided - the core's callback: answer the client, if still there */
static void
decided(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct lookup *l = arg;
	struct conn *c = l->c;
	char out[PFMAP_REPLY_MAX], w[512];

	/* One log line per resolution, not per client answered. */
	if (st == DANESTS_OK && d != NULL && !d->reused) {
		n_resolutions++;
		dmn_log(LOG_INFO, "%s: %s (%s)%s", l->domain,
		    danests_verdict_name(d->verdict),
		    danests_reason_name(d->reason),
		    d->from_cache ? ", from cache" : "");
	} else if (st != DANESTS_OK || d == NULL)
		dmn_log(LOG_WARNING, "%s: no decision: %s", l->domain,
		    why ? why : "unknown error");
	if (c != NULL) {
		c->waiting = NULL;
		if (st == DANESTS_OK && d != NULL)
			conn_answer(c, d);
		else {
			snprintf(w, sizeof(w), "%s: %s", l->domain,
			    why ? why : "no decision");
			pfmap_reply(DANESTS_TEMP, w, out, sizeof(out));
			conn_reply(c, out);
		}
	}
	danests_decision_free(d);
	free(l);
	if (c != NULL)
		conn_resume(c);
}

/* request_timeout - the bound on one request passed: answer TEMP; the
 * resolution goes on for the other clients and the cache */
static void
request_timeout(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	char out[PFMAP_REPLY_MAX], w[300];

	(void)fd;
	(void)what;
	if (c->waiting == NULL)
		return;
	snprintf(w, sizeof(w), "%s: lookup timed out", c->waiting->domain);
	dmn_log(LOG_WARNING, "%s", w);
	c->waiting->c = NULL;
	c->waiting = NULL;
	pfmap_reply(DANESTS_TEMP, w, out, sizeof(out));
	conn_reply(c, out);
	conn_resume(c);
}

/* conn_wait - ask the core for domain and park the connection until the
 * answer (at once from memory, or shared with other clients) */
static bool
conn_wait(struct conn *c, const char *domain)
{
	struct lookup *l;
	struct timeval tv;
	char why[256];

	if ((l = calloc(1, sizeof(*l))) == NULL)
		return false;
	l->c = c;
	strlcpy(l->domain, domain, sizeof(l->domain));
	if (danests_decide_async(ctx, domain, 0, decided, l, why,
	    sizeof(why)) != DANESTS_OK) {
		dmn_log(LOG_WARNING, "%s: %s", domain, why);
		free(l);
		return false;
	}
	c->waiting = l;
	if (c->timer == NULL &&
	    (c->timer = evtimer_new(base, request_timeout, c)) == NULL)
		return true;	/* the core's own bound still applies */
	tv.tv_sec = conf->lookup_timeout_ms / 1000;
	tv.tv_usec = (conf->lookup_timeout_ms % 1000) * 1000;
	evtimer_add(c->timer, &tv);
	return true;
}

/* conn_request - one request; true when it was answered at once */
static bool
conn_request(struct conn *c, const char *data, size_t len)
{
	char name[PFMAP_NAME_MAX], key[PFMAP_KEY_MAX];
	char domain[PFMAP_DOMAIN_MAX], out[PFMAP_REPLY_MAX];
	const struct pfmap_profile *p;
	const char *why;

	n_requests++;
	if (pfmap_request_parse(data, len, name, key, &why) != DANESTS_OK) {
		dmn_log(LOG_WARNING, "malformed request: %s", why);
		pfmap_reply(DANESTS_PERM, why, out, sizeof(out));
		conn_reply(c, out);
		return true;
	}
	if ((p = profile_find(name)) == NULL) {
		dmn_log(LOG_WARNING, "unknown map name \"%s\"", name);
		pfmap_reply(DANESTS_PERM, "unknown map name", out, sizeof(out));
		conn_reply(c, out);
		return true;
	}
	c->profile = *p;
	if (pfmap_key_normalize(key, domain, &why) != DANESTS_OK) {
		dmn_log(LOG_DEBUG, "%s %s: NOTFOUND (%s)", name, key, why);
		pfmap_reply(DANESTS_NOTFOUND, NULL, out, sizeof(out));
		conn_reply(c, out);
		return true;
	}
	if (!conn_wait(c, domain)) {
		pfmap_reply(DANESTS_TEMP, "cannot start lookup", out,
		    sizeof(out));
		conn_reply(c, out);
		return true;
	}
	return false;
}

/* conn_process - answer every complete request in order, then write;
 * a connection has at most one request in progress, and reads nothing
 * while it waits (input and output stay capped) */
static void
conn_process(struct conn *c)
{
	const char *data, *why;
	size_t dlen, used, off = 0;
	char req[PFMAP_REQUEST_MAX + 1], out[256];

	while (c->waiting == NULL && !c->closing && off < c->inlen &&
	    c->outlen + PFMAP_REPLY_MAX + 16 <= CONN_OUT_MAX) {
		switch (pfmap_ns_parse(c->in + off, c->inlen - off,
		    PFMAP_REQUEST_MAX, &data, &dlen, &used, &why)) {
		case PFMAP_NS_MORE:
			goto done;
		case PFMAP_NS_BAD:
			/* Framing is lost: answer and close. */
			dmn_log(LOG_WARNING, "malformed netstring: %s", why);
			pfmap_reply(DANESTS_PERM, why, out, sizeof(out));
			conn_reply(c, out);
			c->closing = true;
			goto done;
		case PFMAP_NS_OK:
			break;
		}
		memcpy(req, data, dlen);
		req[dlen] = '\0';
		off += used;
		(void)conn_request(c, req, dlen);
	}
done:
	if (off > 0) {
		memmove(c->in, c->in + off, c->inlen - off);
		c->inlen -= off;
		/* what is left began arriving now, at the latest */
		c->req_start = c->inlen > 0 ? time(NULL) : 0;
	}
	if (!conn_flush(c))
		return;
	/* Read on only when idle and there is room. */
	if (c->waiting == NULL && !c->closing && c->inlen < CONN_IN_MAX &&
	    c->outlen == 0) {
		if (!c->reading && event_add(c->rev, NULL) == 0)
			c->reading = true;
	} else if (c->reading) {
		event_del(c->rev);
		c->reading = false;
	}
}

/* conn_read_ev - input arrived */
static void
conn_read_ev(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;
	ssize_t n;

	(void)what;
	n = read(fd, c->in + c->inlen, CONN_IN_MAX - c->inlen);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n <= 0) {
		conn_free(c);	/* EOF or error; a pending lookup goes on */
		return;
	}
	c->last = time(NULL);
	if (c->inlen == 0)
		c->req_start = c->last;	/* the deadline of this request */
	c->inlen += (size_t)n;
	conn_process(c);
}

/* conn_write_ev - the socket is writable again */
static void
conn_write_ev(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c = arg;

	(void)fd;
	(void)what;
	c->last = time(NULL);
	if (conn_flush(c))
		conn_process(c);
}

/* conn_sweep - close clients idle for idle_timeout, and clients whose
 * request is not complete PF_REQUEST_READ_S after its first byte (a client
 * sending a byte now and then must not keep its slot); a client waiting on
 * a lookup is neither */
void
conn_sweep(void)
{
	struct conn *c, *n;
	time_t now = time(NULL);

	for (c = LIST_FIRST(&conns); c != NULL; c = n) {
		n = LIST_NEXT(c, all);
		if (c->waiting != NULL)
			continue;
		if (c->req_start != 0 &&
		    now - c->req_start >= PF_REQUEST_READ_S) {
			if (n_slow++ % 1000 == 0)
				dmn_log(LOG_WARNING, "closing a client whose "
				    "request took over %d s to arrive (%lu so "
				    "far)", PF_REQUEST_READ_S, n_slow);
			conn_free(c);
		} else if (now - c->last >= (time_t)conf->idle_timeout_s) {
			dmn_log(LOG_DEBUG, "closing idle connection");
			conn_free(c);
		}
	}
}

/* older - was a's moment t (then its accept) before b's? */
static bool
older(const struct conn *a, time_t ta, const struct conn *b, time_t tb)
{
	return ta < tb || (ta == tb && a->seq < b->seq);
}

/* conn_evict - the table is full: close the client whose unfinished
 * request (or unread reply) is oldest, else the one idle longest (ties,
 * within a second, go to the earlier accepted); never one waiting on a
 * lookup, nor one idle since its accept in this second (it has not had
 * its turn to send).  false when there is none to close. */
static bool
conn_evict(void)
{
	struct conn *c, *slow = NULL, *idle = NULL;
	time_t t, ts = 0, now = time(NULL);

	LIST_FOREACH(c, &conns, all) {
		if (c->waiting != NULL)
			continue;
		if (c->req_start != 0 || c->outlen > 0) {
			t = c->req_start != 0 ? c->req_start : c->last;
			if (slow == NULL || older(c, t, slow, ts)) {
				slow = c;
				ts = t;
			}
		} else if (c->last < now && (idle == NULL ||
		    older(c, c->last, idle, idle->last)))
			idle = c;
	}
	if ((c = slow != NULL ? slow : idle) == NULL)
		return false;
	if (n_evicted++ % 1000 == 0)
		dmn_log(LOG_WARNING, "max_clients %u reached: closing the %s "
		    "client to make room (%lu so far)", conf->max_clients,
		    c == slow ? "slowest" : "longest idle", n_evicted);
	conn_free(c);
	return true;
}

/* conn_room - a dmn_room_fn: is there a free slot, or one that can be
 * made by closing a slow or idle client?  When not (every client waits on
 * a lookup or has just connected) new clients wait in the listen queue */
bool
conn_room(void *arg)
{
	(void)arg;
	return nconns < conf->max_clients || conn_evict();
}

/* conn_accept - a new client (a dmn_accept_fn); conn_room made its slot */
void
conn_accept(int fd, void *arg)
{
	struct conn *c;

	(void)arg;
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->fd = fd;
	if ((c->rev = event_new(base, fd, EV_READ | EV_PERSIST, conn_read_ev,
	    c)) == NULL || (c->wev = event_new(base, fd, EV_WRITE |
	    EV_PERSIST, conn_write_ev, c)) == NULL ||
	    event_add(c->rev, NULL) != 0) {
		if (c->rev != NULL)
			event_free(c->rev);
		if (c->wev != NULL)
			event_free(c->wev);
		free(c);
		close(fd);
		return;
	}
	c->reading = true;
	c->last = time(NULL);
	c->seq = ++n_accepted;
	LIST_INSERT_HEAD(&conns, c, all);
	nconns++;
}

/* conn_close_all - close every client (at exit) */
void
conn_close_all(void)
{
	struct conn *c;

	while ((c = LIST_FIRST(&conns)) != NULL)
		conn_free(c);
}

/* conn_count - clients connected */
size_t
conn_count(void)
{
	return nconns;
}
