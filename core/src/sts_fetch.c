/*
 * sts_fetch.c - HTTPS fetch of MTA-STS policies (RFC 8461 3.3)
 *
 * The curl multi interface runs inside the caller's libevent loop: curl
 * tells us which sockets to watch (CURLMOPT_SOCKETFUNCTION) and when to
 * wake it (CURLMOPT_TIMERFUNCTION); we hand readiness back with
 * curl_multi_socket_action().  At most `max` fetches run at once
 * (sts_fetcher_set_max; max_fetches of danests.conf); the others wait
 * their turn in order, and their time (fetch_timeout) starts when they
 * start.
 *
 * TLS state is shared by the fetches of one fetcher (one per context):
 * the CA store is loaded once and kept in the multi handle (curl's CA
 * cache, STS_FETCH_CA_CACHE_S at most, so a changed store is read again;
 * a new context, as the daemons make on reload, reads it at once), TLS
 * sessions are shared (curl_share), and a connection to a policy host is
 * reused by a later fetch from the same host for STS_FETCH_CONN_AGE_S.
 *
 * RFC 8461 3.3 fixes the rules enforced here: HTTPS only, a certificate
 * valid for "mta-sts.<domain>" chaining to a trusted root (PKIX, RFC 6125
 * name check; SNI is sent), TLS 1.2 or later (RFC 8461 3.3 defers to
 * RFC 7525), HTTP 200 only, redirects never followed, media type
 * "text/plain", and a bounded body and time.  The host name is never
 * resolved by curl: the caller hands in the addresses its own
 * (DNSSEC-aware) resolver found, pinned with CURLOPT_RESOLVE.
 *
 * Failures carry reason "sts-webpki-invalid" (certificate problems) or
 * "sts-policy-fetch-error" (everything else) with status DANESTS_TEMP, and
 * a precise message in why.
 *
 * sts_fetcher_free() cancels pending fetches: their callbacks are NOT
 * called.  A callback may start new fetches or free the fetcher.
 */
#include "danests-internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#define STS_FETCH_CONNECT_MAX_MS	10000	/* cap of the connect phase */
#define STS_FETCH_USER_AGENT		"danests/" DANESTS_VERSION
#define STS_FETCH_PATH			"/.well-known/mta-sts.txt"
#define STS_FETCH_CA_CACHE_S		3600	/* CA store kept, at most */
#define STS_FETCH_CONN_AGE_S		60	/* idle connection reused */
#define STS_FETCH_PINS			64	/* hosts whose pins are kept */

/* Reason codes (RFC 8460 4.3.2 result types). */

struct sts_sock;
struct sts_fetch;

struct sts_fetcher {
	struct event_base *base;
	CURLM *multi;
	CURLSH *share;		/* TLS sessions of every fetch */
	struct event *timer;
	unsigned max;		/* fetches running at once (0: any) */
	unsigned running;	/* handles in the multi */
	struct sts_fetch *wait_head, *wait_tail;	/* waiting to run */
	/* The CURLOPT_RESOLVE entry ("host:port:addrs") of the last fetches
	 * of recent hosts: a connection is reused only for the same host
	 * at the same addresses. */
	char *pins[STS_FETCH_PINS];
	unsigned pin_next;
	char *ca_file;
	unsigned timeout_ms;
	unsigned port;
	struct sts_fetch *fetches;	/* pending, doubly linked */
	struct sts_sock *socks;		/* watched sockets */
	int depth;			/* callbacks running */
	bool dead;			/* freed inside a callback */
};

struct sts_sock {
	struct sts_sock *next, *prev;
	struct event *ev;
	curl_socket_t fd;
};

/* Why a fetch was stopped by us rather than by curl. */
enum sts_abort {
	ABORT_NONE = 0,
	ABORT_STATUS,		/* not HTTP 200 */
	ABORT_CTYPE,		/* not text/plain */
	ABORT_TOOBIG,		/* Content-Length or body above the cap */
};

struct sts_fetch {
	struct sts_fetch *next, *prev;
	struct sts_fetch *wnext;	/* on the fetcher's wait queue */
	struct sts_fetcher *fetcher;
	CURL *easy;
	bool added;		/* in the multi handle */
	bool waiting;		/* on the wait queue */
	struct curl_slist *resolve;
	struct event *defer;	/* immediate failure, delivered later */
	sts_fetch_cb *cb;
	void *arg;
	enum sts_abort abort;
	char *body;
	size_t len, size;
	char host[DANESTS_NAME_MAX + 8];
	char errbuf[CURL_ERROR_SIZE];
	struct sts_fetch_result res;
};

static pthread_once_t sts_fetch_once = PTHREAD_ONCE_INIT;
static CURLcode sts_fetch_global_rc = CURLE_FAILED_INIT;

/* sts_fetch_global_init - curl_global_init, once per process */
static void
sts_fetch_global_init(void)
{
	sts_fetch_global_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

/* sts_fetch_unlink - take a fetch off its fetcher's list */
static void
sts_fetch_unlink(struct sts_fetch *fe)
{
	struct sts_fetcher *f = fe->fetcher;

	if (fe->prev)
		fe->prev->next = fe->next;
	else if (f->fetches == fe)
		f->fetches = fe->next;
	if (fe->next)
		fe->next->prev = fe->prev;
	fe->next = fe->prev = NULL;
	if (fe->waiting) {
		struct sts_fetch **pp, *last = NULL;

		for (pp = &f->wait_head; *pp != fe; pp = &(*pp)->wnext)
			last = *pp;
		*pp = fe->wnext;
		if (f->wait_tail == fe)
			f->wait_tail = last;
		fe->waiting = false;
		fe->wnext = NULL;
	}
}

/* sts_fetch_destroy - release one fetch (already unlinked, handle removed) */
static void
sts_fetch_destroy(struct sts_fetch *fe)
{
	if (fe->easy)
		curl_easy_cleanup(fe->easy);
	curl_slist_free_all(fe->resolve);
	if (fe->defer)
		event_free(fe->defer);
	free(fe->body);
	free(fe);
}

/* sts_fetch_fail - record a failure in the fetch's result */
static void
sts_fetch_fail(struct sts_fetch *fe, danests_result_type reason,
    const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
sts_fetch_fail(struct sts_fetch *fe, danests_result_type reason,
    const char *fmt, ...)
{
	va_list ap;

	fe->res.status = DANESTS_TEMP;
	fe->res.reason = reason;
	va_start(ap, fmt);
	vsnprintf(fe->res.why, sizeof(fe->res.why), fmt, ap);
	va_end(ap);
}

/* sts_fetch_ctype_ok - is the media type text/plain (RFC 8461 3.3)?
 * Parameters such as charset are allowed; the type is case-insensitive
 * (RFC 9110 8.3.1). */
static bool
sts_fetch_ctype_ok(const char *ct)
{
	static const char want[] = "text/plain";
	size_t n = sizeof(want) - 1;

	if (ct == NULL)
		return false;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	if (strncasecmp(ct, want, n) != 0)
		return false;
	ct += n;
	while (*ct == ' ' || *ct == '\t')
		ct++;
	return *ct == '\0' || *ct == ';';
}

/* sts_fetch_header - header callback: reject an oversized Content-Length
 * before any body byte arrives */
static size_t
sts_fetch_header(char *buf, size_t size, size_t n, void *arg)
{
	struct sts_fetch *fe = arg;
	static const char cl[] = "content-length:";
	size_t len = size * n, i;
	unsigned long long v = 0;
	long code = 0;

	if (len <= sizeof(cl) - 1 || strncasecmp(buf, cl, sizeof(cl) - 1) != 0)
		return len;
	/* A non-200 answer is rejected for its status, not its size. */
	curl_easy_getinfo(fe->easy, CURLINFO_RESPONSE_CODE, &code);
	if (code != 200)
		return len;
	for (i = sizeof(cl) - 1; i < len && (buf[i] == ' ' || buf[i] == '\t');
	    i++)
		;
	for (; i < len && isdigit((unsigned char)buf[i]); i++) {
		v = v * 10 + (unsigned)(buf[i] - '0');
		if (v > STS_BODY_MAX)
			break;
	}
	if (v > STS_BODY_MAX) {
		fe->abort = ABORT_TOOBIG;
		return 0;
	}
	return len;
}

/* sts_fetch_write - body callback: only a 200 text/plain body is kept, and
 * never more than STS_BODY_MAX bytes (chunked or not) */
static size_t
sts_fetch_write(char *buf, size_t size, size_t n, void *arg)
{
	struct sts_fetch *fe = arg;
	size_t len = size * n, nsize;
	long code = 0;
	char *ct = NULL, *nb;

	if (fe->len == 0) {
		curl_easy_getinfo(fe->easy, CURLINFO_RESPONSE_CODE, &code);
		if (code != 200) {
			fe->abort = ABORT_STATUS;
			return 0;
		}
		curl_easy_getinfo(fe->easy, CURLINFO_CONTENT_TYPE, &ct);
		if (!sts_fetch_ctype_ok(ct)) {
			fe->abort = ABORT_CTYPE;
			return 0;
		}
	}
	if (len > STS_BODY_MAX - fe->len) {
		fe->abort = ABORT_TOOBIG;
		return 0;
	}
	if (fe->len + len + 1 > fe->size) {
		nsize = fe->size ? fe->size : 4096;
		while (nsize < fe->len + len + 1)
			nsize *= 2;
		if (nsize > STS_BODY_MAX + 1)
			nsize = STS_BODY_MAX + 1;
		if ((nb = realloc(fe->body, nsize)) == NULL)
			return 0;	/* CURLE_WRITE_ERROR, abort NONE */
		fe->body = nb;
		fe->size = nsize;
	}
	memcpy(fe->body + fe->len, buf, len);
	fe->len += len;
	fe->body[fe->len] = '\0';
	return len;
}

/* sts_fetch_is_cert_error - did curl fail on certificate verification? */
static bool
sts_fetch_is_cert_error(struct sts_fetch *fe, CURLcode rc)
{
	long vr = 0;

	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION:
#if defined(CURLE_SSL_ISSUER_ERROR)
	case CURLE_SSL_ISSUER_ERROR:
#endif
		return true;
	case CURLE_SSL_CONNECT_ERROR:
		/*
		 * A handshake error is a certificate error only when the
		 * chain was verified and rejected.  libcurl sets the verify
		 * result to 1 (!X509_V_OK) before the handshake and leaves
		 * it there when the handshake fails earlier (protocol
		 * version, ciphers, alerts): that is a fetch error.  X509
		 * verification failures have codes above 1.
		 */
		if (curl_easy_getinfo(fe->easy, CURLINFO_SSL_VERIFYRESULT,
		    &vr) == CURLE_OK && vr > 1)
			return true;
		return false;
	default:
		return false;
	}
}

/* sts_fetch_finish_result - turn curl's outcome into the fetch's result */
static void
sts_fetch_finish_result(struct sts_fetch *fe, CURLcode rc)
{
	struct sts_fetch_result *r = &fe->res;
	const char *err = fe->errbuf[0] ? fe->errbuf : curl_easy_strerror(rc);
	char *ct = NULL;
	long code = 0;

	curl_easy_getinfo(fe->easy, CURLINFO_RESPONSE_CODE, &code);
	r->http_code = code;

	/* Our own aborts first: they explain curl's CURLE_WRITE_ERROR. */
	switch (fe->abort) {
	case ABORT_TOOBIG:
		sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR, "body exceeds %d bytes",
		    STS_BODY_MAX);
		return;
	case ABORT_CTYPE:
		curl_easy_getinfo(fe->easy, CURLINFO_CONTENT_TYPE, &ct);
		sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR, "Content-Type %s",
		    ct ? ct : "missing");
		return;
	case ABORT_STATUS:
	case ABORT_NONE:
		break;
	}

	if (rc != CURLE_OK && fe->abort != ABORT_STATUS) {
		if (sts_fetch_is_cert_error(fe, rc)) {
			sts_fetch_fail(fe, DANESTS_RT_STS_WEBPKI_INVALID,
			    "certificate: %s", err);
			return;
		}
		if (rc == CURLE_OPERATION_TIMEDOUT && (code == 0 ||
		    code == 200)) {
			sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR,
			    "timeout after %u ms (%s)",
			    fe->fetcher->timeout_ms, err);
			return;
		}
		/* A non-200 answer is reported by its status below. */
		if (code == 0 || code == 200) {
			if (rc == CURLE_FILESIZE_EXCEEDED)
				sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR,
				    "body exceeds %d bytes", STS_BODY_MAX);
			else if (rc == CURLE_WRITE_ERROR) {
				sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR,
				    "out of memory");
				fe->res.local = true;
			}
			else
				sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR, "%s",
				    err);
			return;
		}
	}

	/* RFC 8461 3.3: only 200; redirects are not followed. */
	if (code != 200) {
		if (code >= 300 && code < 400)
			sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR,
			    "redirect (HTTP %ld) not followed", code);
		else
			sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR, "HTTP %ld", code);
		return;
	}
	curl_easy_getinfo(fe->easy, CURLINFO_CONTENT_TYPE, &ct);
	if (!sts_fetch_ctype_ok(ct)) {
		sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR, "Content-Type %s",
		    ct ? ct : "missing");
		return;
	}
	if (fe->body == NULL && (fe->body = strdup("")) == NULL) {
		sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR, "out of memory");
		fe->res.local = true;
		return;
	}
	r->status = DANESTS_OK;
	r->reason = DANESTS_RT_NONE;
	r->body = fe->body;
	r->len = fe->len;
	r->why[0] = '\0';
}

/* sts_fetch_deliver - call the user's callback, then drop the fetch */
static void
sts_fetch_deliver(struct sts_fetch *fe)
{
	struct sts_fetcher *f = fe->fetcher;

	sts_fetch_unlink(fe);
	if (fe->res.status != DANESTS_OK) {
		fe->res.body = NULL;
		fe->res.len = 0;
	}
	f->depth++;
	fe->cb(fe->arg, &fe->res);
	f->depth--;
	sts_fetch_destroy(fe);
}

static void sts_fetcher_destroy(struct sts_fetcher *);
static void sts_fetch_defer_cb(evutil_socket_t, short, void *);

/* sts_fetch_run - hand a fetch to curl; on failure its result says why
 * and it is delivered from the loop; false when even that failed */
static bool
sts_fetch_run(struct sts_fetch *fe)
{
	struct sts_fetcher *f = fe->fetcher;
	struct timeval now = { 0, 0 };
	CURLMcode mrc;

	if ((mrc = curl_multi_add_handle(f->multi, fe->easy)) == CURLM_OK) {
		fe->added = true;
		f->running++;
		return true;
	}
	sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR, "%s: %s",
	    fe->host, curl_multi_strerror(mrc));
	if (fe->defer == NULL &&
	    (fe->defer = evtimer_new(f->base, sts_fetch_defer_cb, fe)) == NULL)
		return false;
	return evtimer_add(fe->defer, &now) == 0;
}

/* sts_fetch_pump - start waiting fetches while slots are free */
static void
sts_fetch_pump(struct sts_fetcher *f)
{
	struct sts_fetch *fe;

	while ((f->max == 0 || f->running < f->max) &&
	    (fe = f->wait_head) != NULL) {
		if ((f->wait_head = fe->wnext) == NULL)
			f->wait_tail = NULL;
		fe->wnext = NULL;
		fe->waiting = false;
		if (!sts_fetch_run(fe)) {
			/* cannot even report it later: report it now */
			f->depth++;
			sts_fetch_deliver(fe);
			f->depth--;
			if (f->dead)
				return;
		}
	}
}

/* sts_fetcher_set_max - run at most max fetches at once (0: any) */
void
sts_fetcher_set_max(struct sts_fetcher *f, unsigned max)
{
	if (f == NULL)
		return;
	f->max = max;
	f->depth++;
	sts_fetch_pump(f);
	f->depth--;
	if (f->dead && f->depth == 0)
		sts_fetcher_destroy(f);
}

/* sts_fetch_check_done - deliver every transfer curl has finished */
static void
sts_fetch_check_done(struct sts_fetcher *f)
{
	struct sts_fetch *fe;
	CURLMsg *msg;
	CURLcode rc;
	char *priv;
	int left;

	f->depth++;
	while (!f->dead && (msg = curl_multi_info_read(f->multi, &left))) {
		if (msg->msg != CURLMSG_DONE)
			continue;
		priv = NULL;
		curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &priv);
		fe = (struct sts_fetch *)priv;
		rc = msg->data.result;
		curl_multi_remove_handle(f->multi, msg->easy_handle);
		if (f->running > 0)
			f->running--;
		if (fe == NULL)
			continue;
		fe->added = false;
		sts_fetch_finish_result(fe, rc);
		sts_fetch_deliver(fe);
	}
	if (!f->dead)
		sts_fetch_pump(f);
	f->depth--;
	if (f->dead && f->depth == 0)
		sts_fetcher_destroy(f);
}

/* sts_fetch_event_cb - a watched socket is ready */
static void
sts_fetch_event_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sts_fetcher *f = arg;
	int flags = 0, running = 0;

	if (what & EV_READ)
		flags |= CURL_CSELECT_IN;
	if (what & EV_WRITE)
		flags |= CURL_CSELECT_OUT;
	f->depth++;
	curl_multi_socket_action(f->multi, fd, flags, &running);
	f->depth--;
	sts_fetch_check_done(f);
}

/* sts_fetch_timer_cb - curl's timeout has expired */
static void
sts_fetch_timer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sts_fetcher *f = arg;
	int running = 0;

	f->depth++;
	curl_multi_socket_action(f->multi, CURL_SOCKET_TIMEOUT, 0, &running);
	f->depth--;
	sts_fetch_check_done(f);
}

/* sts_fetch_timerfunction - CURLMOPT_TIMERFUNCTION: (re)arm or stop the
 * single timer curl asks for */
static int
sts_fetch_timerfunction(CURLM *multi, long ms, void *arg)
{
	struct sts_fetcher *f = arg;
	struct timeval tv;

	if (ms < 0)
		return evtimer_del(f->timer) == 0 ? 0 : -1;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	return evtimer_add(f->timer, &tv) == 0 ? 0 : -1;
}

/* sts_fetch_sock_free - stop watching one socket */
static void
sts_fetch_sock_free(struct sts_fetcher *f, struct sts_sock *s)
{
	if (s->prev)
		s->prev->next = s->next;
	else
		f->socks = s->next;
	if (s->next)
		s->next->prev = s->prev;
	event_free(s->ev);
	free(s);
}

/* sts_fetch_sockfunction - CURLMOPT_SOCKETFUNCTION: mirror curl's wishes
 * for one socket into a libevent event */
static int
sts_fetch_sockfunction(CURL *easy, curl_socket_t fd, int what, void *arg,
    void *sockp)
{
	struct sts_fetcher *f = arg;
	struct sts_sock *s = sockp;
	short kind = EV_PERSIST;

	if (what == CURL_POLL_REMOVE) {
		if (s != NULL) {
			curl_multi_assign(f->multi, fd, NULL);
			sts_fetch_sock_free(f, s);
		}
		return 0;
	}
	if (what & CURL_POLL_IN)
		kind |= EV_READ;
	if (what & CURL_POLL_OUT)
		kind |= EV_WRITE;
	if (s == NULL) {
		if ((s = calloc(1, sizeof(*s))) == NULL)
			return -1;
		s->fd = fd;
		s->ev = event_new(f->base, fd, kind, sts_fetch_event_cb, f);
		if (s->ev == NULL) {
			free(s);
			return -1;
		}
		s->next = f->socks;
		if (f->socks)
			f->socks->prev = s;
		f->socks = s;
		curl_multi_assign(f->multi, fd, s);
	} else {
		event_del(s->ev);
		if (event_assign(s->ev, f->base, fd, kind, sts_fetch_event_cb,
		    f) != 0)
			return -1;
	}
	return event_add(s->ev, NULL) == 0 ? 0 : -1;
}

/* sts_fetcher_new - a fetcher bound to base; ca_file NULL = system store */
danests_status
sts_fetcher_new(struct event_base *base, const char *ca_file,
    unsigned timeout_ms, unsigned port, struct sts_fetcher **out, char *why,
    size_t whylen)
{
	struct sts_fetcher *f;

	*out = NULL;
	if (base == NULL || port == 0 || port > 65535) {
		why_set(why, whylen, "fetcher: bad event base or port %u",
		    port);
		return DANESTS_PERM;
	}
	pthread_once(&sts_fetch_once, sts_fetch_global_init);
	if (sts_fetch_global_rc != CURLE_OK) {
		why_set(why, whylen, "curl_global_init: %s",
		    curl_easy_strerror(sts_fetch_global_rc));
		return DANESTS_TEMP;
	}
	if ((f = calloc(1, sizeof(*f))) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	f->base = base;
	f->timeout_ms = timeout_ms ? timeout_ms : 10000;
	f->port = port;
	if (ca_file != NULL && (f->ca_file = strdup(ca_file)) == NULL)
		goto nomem;
	if ((f->multi = curl_multi_init()) == NULL)
		goto nomem;
	if ((f->timer = evtimer_new(base, sts_fetch_timer_cb, f)) == NULL)
		goto nomem;
	/* TLS sessions, resumed by a later fetch from the same host (the
	 * fetcher lives on one thread: no lock functions). */
	if ((f->share = curl_share_init()) == NULL ||
	    curl_share_setopt(f->share, CURLSHOPT_SHARE,
	    CURL_LOCK_DATA_SSL_SESSION) != CURLSHE_OK)
		goto nomem;
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETFUNCTION,
	    sts_fetch_sockfunction);
	curl_multi_setopt(f->multi, CURLMOPT_SOCKETDATA, f);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERFUNCTION,
	    sts_fetch_timerfunction);
	curl_multi_setopt(f->multi, CURLMOPT_TIMERDATA, f);
	*out = f;
	return DANESTS_OK;
nomem:
	why_set(why, whylen, "fetcher: out of memory");
	sts_fetcher_destroy(f);
	return DANESTS_TEMP;
}

/* sts_fetcher_destroy - free everything; no fetch is pending any more */
static void
sts_fetcher_destroy(struct sts_fetcher *f)
{
	unsigned i;

	if (f->multi)
		curl_multi_cleanup(f->multi);
	if (f->share)
		curl_share_cleanup(f->share);
	while (f->socks)
		sts_fetch_sock_free(f, f->socks);
	if (f->timer)
		event_free(f->timer);
	for (i = 0; i < STS_FETCH_PINS; i++)
		free(f->pins[i]);
	free(f->ca_file);
	free(f);
}

/* sts_fetcher_free - cancel pending fetches (their callbacks are not
 * called) and free the fetcher; safe inside a fetch callback */
void
sts_fetcher_free(struct sts_fetcher *f)
{
	struct sts_fetch *fe;

	if (f == NULL || f->dead)
		return;
	while ((fe = f->fetches) != NULL) {
		sts_fetch_unlink(fe);
		if (fe->added)
			curl_multi_remove_handle(f->multi, fe->easy);
		sts_fetch_destroy(fe);
	}
	f->dead = true;
	if (f->depth == 0)
		sts_fetcher_destroy(f);
}

/* sts_fetch_defer_cb - deliver a failure found while starting a fetch */
static void
sts_fetch_defer_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sts_fetch *fe = arg;
	struct sts_fetcher *f = fe->fetcher;

	sts_fetch_deliver(fe);
	if (f->dead && f->depth == 0)
		sts_fetcher_destroy(f);
}

/* sts_fetch_host_ok - a host name safe to place in a URL and in
 * CURLOPT_RESOLVE (LDH labels, dots; RFC 1123 2.1) */
static bool
sts_fetch_host_ok(const char *h)
{
	const char *p;

	if (*h == '\0' || *h == '.')
		return false;
	for (p = h; *p; p++) {
		if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' &&
		    *p != '_')
			return false;
		if (*p == '.' && p[1] == '.')
			return false;
	}
	return true;
}

/* sts_fetch_pin - remember the resolve entry of a fetch; 0 when the last
 * fetch from its host had the same (a connection may be reused), 1 when
 * not (a new connection), -1 on no memory */
static int
sts_fetch_pin(struct sts_fetcher *f, const char *entry)
{
	size_t hl = strcspn(entry, ":") + 1;	/* "host:" */
	unsigned i;
	char *c;

	for (i = 0; i < STS_FETCH_PINS; i++) {
		if (f->pins[i] == NULL || strncmp(f->pins[i], entry, hl) != 0)
			continue;
		if (strcmp(f->pins[i], entry) == 0)
			return 0;
		if ((c = strdup(entry)) == NULL)
			return -1;
		free(f->pins[i]);
		f->pins[i] = c;
		return 1;
	}
	if ((c = strdup(entry)) == NULL)
		return -1;
	free(f->pins[f->pin_next]);
	f->pins[f->pin_next] = c;
	f->pin_next = (f->pin_next + 1) % STS_FETCH_PINS;
	return 1;
}

/* sts_fetch_setup - configure the easy handle; NULL or a failure text */
static const char *
sts_fetch_setup(struct sts_fetch *fe, const char *const *addrs, size_t naddrs)
{
	struct sts_fetcher *f = fe->fetcher;
	char url[DANESTS_NAME_MAX + 64], entry[DANESTS_NAME_MAX + 1024];
	unsigned char bin[sizeof(struct in6_addr)];
	struct curl_slist *l;
	size_t i, off;
	long connect_ms;
	int n, fresh;

	if (naddrs == 0)
		return "no address for the policy host";
	if (f->port == 443)
		n = snprintf(url, sizeof(url), "https://%s" STS_FETCH_PATH,
		    fe->host);
	else
		n = snprintf(url, sizeof(url), "https://%s:%u" STS_FETCH_PATH,
		    fe->host, f->port);
	if (n < 0 || (size_t)n >= sizeof(url))
		return "policy URL too long";

	/* Pin the addresses of the core's resolver: curl never resolves. */
	n = snprintf(entry, sizeof(entry), "%s:%u:", fe->host, f->port);
	if (n < 0 || (size_t)n >= sizeof(entry))
		return "policy host name too long";
	off = (size_t)n;
	for (i = 0; i < naddrs; i++) {
		if (addrs[i] == NULL)
			return "null address";
		if (inet_pton(AF_INET, addrs[i], bin) == 1)
			n = snprintf(entry + off, sizeof(entry) - off, "%s%s",
			    i ? "," : "", addrs[i]);
		else if (inet_pton(AF_INET6, addrs[i], bin) == 1)
			n = snprintf(entry + off, sizeof(entry) - off,
			    "%s[%s]", i ? "," : "", addrs[i]);
		else
			return "bad address for the policy host";
		if (n < 0 || (size_t)n >= sizeof(entry) - off)
			break;	/* keep the addresses that fit */
		off += (size_t)n;
	}
	if ((l = curl_slist_append(NULL, entry)) == NULL)
		return "out of memory";
	fe->resolve = l;
	if ((fresh = sts_fetch_pin(f, entry)) < 0)
		return "out of memory";

	connect_ms = f->timeout_ms < STS_FETCH_CONNECT_MAX_MS ?
	    (long)f->timeout_ms : STS_FETCH_CONNECT_MAX_MS;

#define SET(opt, val) \
	do { \
		if (curl_easy_setopt(fe->easy, opt, val) != CURLE_OK) \
			return "curl_easy_setopt " #opt " failed"; \
	} while (0)
	SET(CURLOPT_URL, url);
	SET(CURLOPT_RESOLVE, fe->resolve);
	SET(CURLOPT_PRIVATE, fe);
	SET(CURLOPT_ERRORBUFFER, fe->errbuf);
	SET(CURLOPT_NOSIGNAL, 1L);
	/* RFC 8461 3.3: HTTPS only, redirects MUST NOT be followed. */
#if LIBCURL_VERSION_NUM >= 0x075500
	SET(CURLOPT_PROTOCOLS_STR, "https");
	SET(CURLOPT_REDIR_PROTOCOLS_STR, "https");
#else
	SET(CURLOPT_PROTOCOLS, (long)CURLPROTO_HTTPS);
	SET(CURLOPT_REDIR_PROTOCOLS, (long)CURLPROTO_HTTPS);
#endif
	SET(CURLOPT_FOLLOWLOCATION, 0L);
	SET(CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
	/* RFC 8461 3.3: valid PKIX chain, name check, TLS >= 1.2. */
	SET(CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	SET(CURLOPT_SSL_VERIFYPEER, 1L);
	SET(CURLOPT_SSL_VERIFYHOST, 2L);
	if (f->ca_file != NULL)
		SET(CURLOPT_CAINFO, f->ca_file);
#if LIBCURL_VERSION_NUM >= 0x075700
	/* curl keeps the store it loaded only when it comes from a bundle
	 * file alone: no CA directory (Debian's libcurl sets one by
	 * default; ca-certificates puts every certificate of it in the
	 * bundle too). */
	SET(CURLOPT_CAPATH, NULL);
	SET(CURLOPT_CA_CACHE_TIMEOUT, (long)STS_FETCH_CA_CACHE_S);
#endif
	SET(CURLOPT_SHARE, f->share);
	SET(CURLOPT_PROXY, "");
	SET(CURLOPT_NOPROXY, "*");
	SET(CURLOPT_USERAGENT, STS_FETCH_USER_AGENT);
	SET(CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
	SET(CURLOPT_TIMEOUT_MS, (long)f->timeout_ms);
	/* A connection is reused only by a fetch from the same host at the
	 * same pinned addresses, and not after STS_FETCH_CONN_AGE_S idle. */
	SET(CURLOPT_FRESH_CONNECT, (long)fresh);
	SET(CURLOPT_MAXAGE_CONN, (long)STS_FETCH_CONN_AGE_S);
	SET(CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)STS_BODY_MAX);
	SET(CURLOPT_HEADERFUNCTION, sts_fetch_header);
	SET(CURLOPT_HEADERDATA, fe);
	SET(CURLOPT_WRITEFUNCTION, sts_fetch_write);
	SET(CURLOPT_WRITEDATA, fe);
#undef SET
	return NULL;
}

/* sts_fetch_start - start one policy fetch; see danests-internal.h.
 * Returns DANESTS_OK when cb will be called (exactly once, never before
 * this returns), else (bad arguments, out of memory) cb is never called. */
danests_status
sts_fetch_start(struct sts_fetcher *f, const char *domain,
    const char *const *addrs, size_t naddrs, sts_fetch_cb *cb, void *arg)
{
	struct sts_fetch *fe;
	char name[DANESTS_NAME_MAX];
	const char *err = NULL;
	CURLMcode mrc;
	struct timeval now = { 0, 0 };

	if (f == NULL || f->dead || domain == NULL || cb == NULL)
		return DANESTS_PERM;
	if ((fe = calloc(1, sizeof(*fe))) == NULL)
		return DANESTS_TEMP;
	fe->fetcher = f;
	fe->cb = cb;
	fe->arg = arg;
	fe->res.reason = DANESTS_RT_STS_POLICY_FETCH_ERROR;
	fe->res.status = DANESTS_TEMP;

	if (name_lower(domain, name, sizeof(name)) != DANESTS_OK ||
	    !sts_fetch_host_ok(name) ||
	    (size_t)snprintf(fe->host, sizeof(fe->host), "mta-sts.%s", name) >=
	    sizeof(fe->host))
		err = "bad domain name";
	else if ((fe->easy = curl_easy_init()) == NULL)
		err = "curl_easy_init failed";
	else
		err = sts_fetch_setup(fe, addrs, naddrs);
	if (err == NULL && f->max != 0 && f->running >= f->max) {
		/* wait for a slot, in order */
		fe->waiting = true;
		if (f->wait_tail != NULL)
			f->wait_tail->wnext = fe;
		else
			f->wait_head = fe;
		f->wait_tail = fe;
	} else if (err == NULL && (mrc = curl_multi_add_handle(f->multi,
	    fe->easy)) != CURLM_OK) {
		sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR, "%s: %s",
		    fe->host, curl_multi_strerror(mrc));
		fe->res.local = true;
		err = "";
	} else if (err == NULL) {
		fe->added = true;
		f->running++;
	}
	if (err != NULL) {
		if (*err) {
			sts_fetch_fail(fe, DANESTS_RT_STS_POLICY_FETCH_ERROR, "%s: %s",
			    fe->host[0] ? fe->host : domain, err);
			fe->res.local = true;
		}
		fe->defer = evtimer_new(f->base, sts_fetch_defer_cb, fe);
		if (fe->defer == NULL || evtimer_add(fe->defer, &now) != 0) {
			sts_fetch_destroy(fe);
			return DANESTS_TEMP;
		}
	}
	fe->next = f->fetches;
	if (f->fetches)
		f->fetches->prev = fe;
	f->fetches = fe;
	return DANESTS_OK;
}
