/*
 * danests-postfix.c - socketmap TLS policy server for Postfix
 *
 * Answers smtp_tls_policy_maps lookups (Postfix socketmap_table(5)) with
 * the level the danests core decided for the next-hop domain: DANE (RFC
 * 7672) levels that Postfix enforces per MX itself, "secure match=..."
 * for MTA-STS (RFC 8461) enforce policies, NOTFOUND where Postfix's own
 * default applies, TEMP on any doubt.  See danests-postfix(8).
 *
 * One process, one libevent loop shared with the core (getdns and curl
 * run on it): many clients at once, one resolution per domain however
 * many clients ask, a bound on each request, decisions reused from
 * memory until they expire.
 */
#include "danests.h"
#include "pfmap.h"

#include <sys/queue.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>

#include <errno.h>
#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define DEF_CONFIG	"/etc/danests/danests-postfix.conf"
#define DEF_LISTEN	"inet:127.0.0.1:8462"
#define MAX_LISTEN	8
#define MAX_PROFILES	16
#define HASH_SIZE	65536		/* buckets, power of two */

/* Settings of the daemon itself; the rest go to the core. */
struct conf {
	char *listen[MAX_LISTEN];
	size_t nlisten;
	char user[64];
	char user_at[PATH_MAX + 16];	/* "FILE:LINE" of user, or "" */
	char pidfile[PATH_MAX];
	unsigned lookup_timeout_ms;	/* bound on one request */
	unsigned max_clients;
	unsigned idle_timeout_s;
	unsigned refresh_interval_s;	/* 0: no refresh timer */
	unsigned refresh_window_s;
	unsigned refresh_parallel;
	unsigned memory_ttl_s;		/* reuse of a decision from memory */
	unsigned memory_max;		/* decisions kept in memory */
	unsigned unix_mode;
	bool verbose;
	bool log_stderr;
	struct pfmap_profile profiles[MAX_PROFILES];
	size_t nprofiles;
	struct danests_config *core;
};

/* A decision kept in memory. */
struct entry {
	struct entry *next;
	unsigned h;
	time_t expires;
	struct danests_decision *d;
};

struct conn;

/* One resolution in progress, shared by every client asking for it. */
struct lookup {
	struct lookup *next;
	unsigned h;
	char domain[PFMAP_DOMAIN_MAX];
	TAILQ_HEAD(, conn) waiters;
};

#define CONN_IN_MAX	(4 * (PFMAP_REQUEST_MAX + 16))	/* unread input */
#define CONN_OUT_MAX	(4 * PFMAP_REPLY_MAX)	/* unsent output */

struct conn {
	int fd;
	struct event *rev, *wev;
	struct lookup *waiting;
	TAILQ_ENTRY(conn) wq;
	struct event *timer;		/* bound on the current request */
	struct pfmap_profile profile;	/* of the current request */
	bool closing;			/* close once the output drained */
	bool reading;			/* rev is added */
	time_t last;			/* last activity, for idle_timeout */
	size_t inlen, outlen;
	char in[CONN_IN_MAX];
	char *out;			/* CONN_OUT_MAX bytes, on demand */
	LIST_ENTRY(conn) all;
};

/* A context kept after a reload until its pending requests end. */
struct old_ctx {
	struct danests_ctx *ctx;
	struct old_ctx *next;
};

static struct event_base *base;
static struct danests_ctx *ctx;
static struct old_ctx *old_ctxs;
static struct conf *conf;
static const char *config_path = DEF_CONFIG;
static bool force_stderr;		/* -d */
static struct evconnlistener *listeners[MAX_LISTEN];
static char *unix_paths[MAX_LISTEN];
static size_t nlisteners;
static struct entry *cache[HASH_SIZE];
static size_t ncache;
static struct lookup *pending[HASH_SIZE];
static LIST_HEAD(, conn) conns = LIST_HEAD_INITIALIZER(conns);
static size_t nconns;
static struct event *refresh_ev, *reap_ev, *idle_ev;
static bool refresh_running;
static bool use_syslog;
static unsigned long n_requests, n_resolutions, n_refused;

/* logmsg - to syslog (mail facility) or stderr */
static void __attribute__((format(printf, 2, 3)))
logmsg(int prio, const char *fmt, ...)
{
	va_list ap;
	char ts[32];
	time_t now;

	if (prio == LOG_DEBUG && (conf == NULL || !conf->verbose))
		return;
	va_start(ap, fmt);
	if (use_syslog)
		vsyslog(prio, fmt, ap);
	else {
		now = time(NULL);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", localtime(&now));
		fprintf(stderr, "%s danests-postfix[%ld]: ", ts, (long)getpid());
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
	va_end(ap);
}

/* hash - FNV-1a of a domain */
static unsigned
hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/*
 * Configuration
 */

/* conf_free - release a configuration */
static void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	danests_config_free(c->core);
	free(c);
}

/* parse_num - an unsigned number within [min, max] */
static bool
parse_num(const char *s, unsigned long min, unsigned long max, unsigned *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno != 0 || end == s || *end != '\0' || *s == '-' || v < min ||
	    v > max)
		return false;
	*out = (unsigned)v;
	return true;
}

/* conf_profile - "NAME [strict-testing] [tlsrpt]" */
static bool
conf_profile(struct conf *c, const char *val, char *why, size_t whylen)
{
	char buf[256], *tok, *save = NULL;
	struct pfmap_profile *p;
	size_t i;

	if (c->nprofiles >= MAX_PROFILES) {
		snprintf(why, whylen, "too many profiles");
		return false;
	}
	p = &c->profiles[c->nprofiles];
	memset(p, 0, sizeof(*p));
	strlcpy(buf, val, sizeof(buf));
	if ((tok = strtok_r(buf, " \t", &save)) == NULL ||
	    strlen(tok) >= sizeof(p->name)) {
		snprintf(why, whylen, "bad name");
		return false;
	}
	for (i = 0; tok[i] != '\0'; i++)
		if (!(tok[i] == '-' || tok[i] == '_' || tok[i] == '.' ||
		    (tok[i] >= '0' && tok[i] <= '9') ||
		    (tok[i] >= 'a' && tok[i] <= 'z') ||
		    (tok[i] >= 'A' && tok[i] <= 'Z'))) {
			snprintf(why, whylen, "bad name %s", tok);
			return false;
		}
	strlcpy(p->name, tok, sizeof(p->name));
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		if (strcmp(tok, "strict-testing") == 0)
			p->strict_testing = true;
		else if (strcmp(tok, "tlsrpt") == 0)
			p->tlsrpt = true;
		else {
			snprintf(why, whylen, "profile %s: unknown option %s",
			    p->name, tok);
			return false;
		}
	}
	for (i = 0; i < c->nprofiles; i++)
		if (strcmp(c->profiles[i].name, p->name) == 0) {
			snprintf(why, whylen, "profile %s defined twice",
			    p->name);
			return false;
		}
	c->nprofiles++;
	return true;
}

/* listen_ok - "inet:ADDR:PORT", "inet:[ADDR]:PORT" or "unix:/PATH" */
static bool
listen_ok(const char *val, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	struct sockaddr_un sun;
	int sl = sizeof(ss);
	const char *port;

	if (strncmp(val, "unix:", 5) == 0) {
		if (val[5] != '/' || strlen(val + 5) >= sizeof(sun.sun_path)) {
			snprintf(why, whylen, "expected unix:/PATH (absolute, "
			    "at most %zu bytes)", sizeof(sun.sun_path) - 1);
			return false;
		}
		return true;
	}
	if (strncmp(val, "inet:", 5) != 0 ||
	    (port = strrchr(val + 5, ':')) == NULL ||
	    strspn(port + 1, "0123456789") != strlen(port + 1) ||
	    port[1] == '\0' || strlen(port + 1) > 5 || atoi(port + 1) < 1 ||
	    atoi(port + 1) > 65535 ||
	    evutil_parse_sockaddr_port(val + 5, (struct sockaddr *)&ss,
	    &sl) != 0) {
		snprintf(why, whylen, "expected inet:ADDR:PORT, "
		    "inet:[ADDR]:PORT or unix:/PATH");
		return false;
	}
	return true;
}

/* conf_apply - one key of the [postfix] section (danests_config_key_cb);
 * the core keys go to the library before the first section */
static danests_status
conf_apply(void *arg, const char *section, const char *key, const char *val,
    const char *file, unsigned line, char *why, size_t whylen)
{
	struct conf *c = arg;

	static const struct {
		const char *key;
		unsigned long min, max;
		size_t off;
	} nums[] = {
		{ "lookup_timeout", 1, 90, offsetof(struct conf,
		    lookup_timeout_ms) },
		{ "max_clients", 1, 100000, offsetof(struct conf, max_clients) },
		{ "idle_timeout", 1, 86400, offsetof(struct conf,
		    idle_timeout_s) },
		{ "refresh_interval", 0, 86400, offsetof(struct conf,
		    refresh_interval_s) },
		{ "refresh_window", 60, 31557600, offsetof(struct conf,
		    refresh_window_s) },
		{ "refresh_parallel", 1, 64, offsetof(struct conf,
		    refresh_parallel) },
		{ "memory_ttl", 0, 86400, offsetof(struct conf, memory_ttl_s) },
		{ "memory_max", 0, 10000000, offsetof(struct conf,
		    memory_max) },
	};
	size_t i;

	if (strcmp(key, "listen") == 0) {
		if (c->nlisten >= MAX_LISTEN) {
			snprintf(why, whylen, "more than %d listen addresses",
			    MAX_LISTEN);
			return DANESTS_PERM;
		}
		if (!listen_ok(val, why, whylen))
			return DANESTS_PERM;
		if ((c->listen[c->nlisten] = strdup(val)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return DANESTS_TEMP;
		}
		c->nlisten++;
		return DANESTS_OK;
	}
	if (strcmp(key, "user") == 0) {
		if (strlcpy(c->user, val, sizeof(c->user)) >= sizeof(c->user)) {
			snprintf(why, whylen, "name too long");
			return DANESTS_PERM;
		}
		snprintf(c->user_at, sizeof(c->user_at), "%s:%u", file, line);
		return DANESTS_OK;
	}
	if (strcmp(key, "pidfile") == 0) {
		if (strcmp(val, "none") != 0 && val[0] != '/') {
			snprintf(why, whylen, "expected an absolute path or "
			    "none");
			return DANESTS_PERM;
		}
		if (strlcpy(c->pidfile, strcmp(val, "none") == 0 ? "" : val,
		    sizeof(c->pidfile)) >= sizeof(c->pidfile)) {
			snprintf(why, whylen, "path too long");
			return DANESTS_PERM;
		}
		return DANESTS_OK;
	}
	if (strcmp(key, "profile") == 0)
		return conf_profile(c, val, why, whylen) ? DANESTS_OK :
		    DANESTS_PERM;
	if (strcmp(key, "log") == 0) {
		if (strcmp(val, "syslog") != 0 && strcmp(val, "stderr") != 0) {
			snprintf(why, whylen, "expected syslog or stderr");
			return DANESTS_PERM;
		}
		c->log_stderr = strcmp(val, "stderr") == 0;
		return DANESTS_OK;
	}
	if (strcmp(key, "verbose") == 0) {
		if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0) {
			snprintf(why, whylen, "expected yes or no");
			return DANESTS_PERM;
		}
		c->verbose = strcmp(val, "yes") == 0;
		return DANESTS_OK;
	}
	if (strcmp(key, "unix_mode") == 0) {
		char *end;
		unsigned long m = strtoul(val, &end, 8);

		if (*val < '0' || *val > '7' || *end != '\0' || m > 0777) {
			snprintf(why, whylen, "expected an octal mode");
			return DANESTS_PERM;
		}
		c->unix_mode = (unsigned)m;
		return DANESTS_OK;
	}
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (strcmp(key, nums[i].key) != 0)
			continue;
		if (!parse_num(val, nums[i].min, nums[i].max,
		    (unsigned *)((char *)c + nums[i].off))) {
			snprintf(why, whylen, "expected a number from %lu "
			    "to %lu", nums[i].min, nums[i].max);
			return DANESTS_PERM;
		}
		if (strcmp(key, "lookup_timeout") == 0)
			c->lookup_timeout_ms *= 1000;
		return DANESTS_OK;
	}
	return DANESTS_NOTFOUND;
}

/* conf_load - defaults, then config_path: its core keys and [postfix] */
static struct conf *
conf_load(char *why, size_t whylen)
{
	struct conf *c;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->core = danests_config_new()) == NULL) {
		free(c);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->lookup_timeout_ms = 20000;
	c->max_clients = 1000;
	c->idle_timeout_s = 300;
	c->refresh_interval_s = 3600;
	c->refresh_window_s = 86400;
	c->refresh_parallel = 4;
	c->memory_ttl_s = 60;
	c->memory_max = 200000;
	c->unix_mode = 0666;
	strlcpy(c->user, DANESTS_DEFAULT_USER, sizeof(c->user));
	if (danests_config_read(c->core, config_path, "postfix", conf_apply, c,
	    why, whylen) != DANESTS_OK)
		goto fail;
	if (force_stderr)
		c->log_stderr = true;
	if (c->nlisten == 0 && (c->listen[c->nlisten++] = strdup(DEF_LISTEN)) ==
	    NULL) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	if (c->nprofiles == 0) {
		/* One profile per Postfix generation: plain answers, strict
		 * testing, and the TLSRPT attributes of Postfix >= 3.10. */
		(void)conf_profile(c, "postfix", why, whylen);
		(void)conf_profile(c, "postfix-strict strict-testing", why,
		    whylen);
		(void)conf_profile(c, "postfix-tlsrpt tlsrpt", why, whylen);
	}
	return c;
fail:
	conf_free(c);
	return NULL;
}

/* profile_find - the profile a map name selects, or NULL */
static const struct pfmap_profile *
profile_find(const char *name)
{
	size_t i;

	for (i = 0; i < conf->nprofiles; i++)
		if (strcmp(conf->profiles[i].name, name) == 0)
			return &conf->profiles[i];
	return NULL;
}

/*
 * Decisions kept in memory
 */

/* memory_flush - drop every decision kept in memory */
static void
memory_flush(void)
{
	struct entry *e, *n;
	size_t i;

	for (i = 0; i < HASH_SIZE; i++) {
		for (e = cache[i]; e != NULL; e = n) {
			n = e->next;
			danests_decision_free(e->d);
			free(e);
		}
		cache[i] = NULL;
	}
	ncache = 0;
}

/* memory_get - a decision for domain that has not expired, or NULL */
static const struct danests_decision *
memory_get(const char *domain, unsigned h, time_t now)
{
	struct entry **pp, *e;

	for (pp = &cache[h & (HASH_SIZE - 1)]; (e = *pp) != NULL;
	    pp = &e->next) {
		if (e->h != h || strcmp(e->d->domain, domain) != 0)
			continue;
		if (e->expires > now)
			return e->d;
		*pp = e->next;
		danests_decision_free(e->d);
		free(e);
		ncache--;
		return NULL;
	}
	return NULL;
}

/* memory_put - keep d (taken) until it expires; tempfails are never
 * kept: the next request asks again */
static void
memory_put(struct danests_decision *d, unsigned h)
{
	struct entry **pp, *e;
	time_t now = time(NULL), exp;

	exp = now + conf->memory_ttl_s;
	if (d->expires < exp)
		exp = d->expires;
	if (d->verdict == DANESTS_TEMPFAIL || exp <= now ||
	    conf->memory_max == 0) {
		danests_decision_free(d);
		return;
	}
	for (pp = &cache[h & (HASH_SIZE - 1)]; (e = *pp) != NULL;
	    pp = &e->next)
		if (e->h == h && strcmp(e->d->domain, d->domain) == 0) {
			danests_decision_free(e->d);
			e->d = d;
			e->expires = exp;
			return;
		}
	if (ncache >= conf->memory_max)
		memory_flush();	/* bounded; the shared cache still has them */
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		danests_decision_free(d);
		return;
	}
	e->h = h;
	e->d = d;
	e->expires = exp;
	e->next = cache[h & (HASH_SIZE - 1)];
	cache[h & (HASH_SIZE - 1)] = e;
	ncache++;
}

/*
 * Connections
 */

static void conn_process(struct conn *);

/* conn_free - close a client connection */
static void
conn_free(struct conn *c)
{
	if (c->waiting != NULL) {
		TAILQ_REMOVE(&c->waiting->waiters, c, wq);
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
	logmsg(LOG_DEBUG, "%s %s: %s", c->profile.name, d->domain, out);
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

/* lookup_unlink - take a lookup out of the pending table */
static void
lookup_unlink(struct lookup *l)
{
	struct lookup **pp;

	for (pp = &pending[l->h & (HASH_SIZE - 1)]; *pp != NULL;
	    pp = &(*pp)->next)
		if (*pp == l) {
			*pp = l->next;
			return;
		}
}

/* decided - the core's callback: answer every waiting client */
static void
decided(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct lookup *l = arg;
	struct conn *c;
	char out[PFMAP_REPLY_MAX], w[512];

	lookup_unlink(l);
	if (st == DANESTS_OK && d != NULL)
		logmsg(LOG_INFO, "%s: %s (%s)%s", l->domain,
		    danests_verdict_name(d->verdict), d->reason,
		    d->from_cache ? ", from cache" : "");
	else
		logmsg(LOG_WARNING, "%s: no decision: %s", l->domain,
		    why ? why : "unknown error");
	/* Answer everyone first, then let them read on: a client asking
	 * the same domain again then finds the decision in memory. */
	TAILQ_FOREACH(c, &l->waiters, wq) {
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
	if (st == DANESTS_OK && d != NULL)
		memory_put(d, l->h);
	while ((c = TAILQ_FIRST(&l->waiters)) != NULL) {
		TAILQ_REMOVE(&l->waiters, c, wq);
		conn_resume(c);
	}
	free(l);
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
	logmsg(LOG_WARNING, "%s", w);
	TAILQ_REMOVE(&c->waiting->waiters, c, wq);
	c->waiting = NULL;
	pfmap_reply(DANESTS_TEMP, w, out, sizeof(out));
	conn_reply(c, out);
	conn_resume(c);
}

/* conn_wait - park the connection on the resolution of domain */
static bool
conn_wait(struct conn *c, const char *domain, unsigned h)
{
	struct lookup *l;
	struct timeval tv;
	char why[256];
	danests_status st;

	for (l = pending[h & (HASH_SIZE - 1)]; l != NULL; l = l->next)
		if (l->h == h && strcmp(l->domain, domain) == 0)
			break;
	if (l == NULL) {
		if ((l = calloc(1, sizeof(*l))) == NULL)
			return false;
		l->h = h;
		strlcpy(l->domain, domain, sizeof(l->domain));
		TAILQ_INIT(&l->waiters);
		st = danests_decide_async(ctx, domain, 0, decided, l, why,
		    sizeof(why));
		if (st != DANESTS_OK) {
			logmsg(LOG_WARNING, "%s: %s", domain, why);
			free(l);
			return false;
		}
		n_resolutions++;
		l->next = pending[h & (HASH_SIZE - 1)];
		pending[h & (HASH_SIZE - 1)] = l;
	}
	TAILQ_INSERT_TAIL(&l->waiters, c, wq);
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
	const struct danests_decision *d;
	const char *why;
	unsigned h;

	n_requests++;
	if (pfmap_request_parse(data, len, name, key, &why) != DANESTS_OK) {
		logmsg(LOG_WARNING, "malformed request: %s", why);
		pfmap_reply(DANESTS_PERM, why, out, sizeof(out));
		conn_reply(c, out);
		return true;
	}
	if ((p = profile_find(name)) == NULL) {
		logmsg(LOG_WARNING, "unknown map name \"%s\"", name);
		pfmap_reply(DANESTS_PERM, "unknown map name", out, sizeof(out));
		conn_reply(c, out);
		return true;
	}
	c->profile = *p;
	if (pfmap_key_normalize(key, domain, &why) != DANESTS_OK) {
		logmsg(LOG_DEBUG, "%s %s: NOTFOUND (%s)", name, key, why);
		pfmap_reply(DANESTS_NOTFOUND, NULL, out, sizeof(out));
		conn_reply(c, out);
		return true;
	}
	h = hash(domain);
	if ((d = memory_get(domain, h, time(NULL))) != NULL) {
		conn_answer(c, d);
		return true;
	}
	if (!conn_wait(c, domain, h)) {
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
			logmsg(LOG_WARNING, "malformed netstring: %s", why);
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
	c->inlen += (size_t)n;
	c->last = time(NULL);
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

/* idle_sweep - close clients idle for idle_timeout; a client waiting on
 * a lookup is not idle */
static void
idle_sweep(evutil_socket_t fd, short what, void *arg)
{
	struct conn *c, *n;
	time_t now = time(NULL);

	(void)fd;
	(void)what;
	(void)arg;
	for (c = LIST_FIRST(&conns); c != NULL; c = n) {
		n = LIST_NEXT(c, all);
		if (c->waiting == NULL &&
		    now - c->last >= (time_t)conf->idle_timeout_s) {
			logmsg(LOG_DEBUG, "closing idle connection");
			conn_free(c);
		}
	}
}

/* accept_cb - a new client; refused beyond max_clients */
static void
accept_cb(struct evconnlistener *lev, evutil_socket_t fd,
    struct sockaddr *sa, int salen, void *arg)
{
	struct conn *c;

	(void)lev;
	(void)sa;
	(void)salen;
	(void)arg;
	if (nconns >= conf->max_clients) {
		if (n_refused++ % 1000 == 0)
			logmsg(LOG_WARNING, "too many clients (%zu), "
			    "refusing", nconns);
		evutil_closesocket(fd);
		return;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL) {
		evutil_closesocket(fd);
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
		evutil_closesocket(fd);
		return;
	}
	c->reading = true;
	c->last = time(NULL);
	LIST_INSERT_HEAD(&conns, c, all);
	nconns++;
}

/*
 * Listening sockets
 */

/* bind_inet - "inet:ADDR:PORT" or "inet:[ADDR]:PORT" */
static int
bind_inet(const char *spec, char *why, size_t whylen)
{
	struct sockaddr_storage ss;
	int sl = sizeof(ss), fd, on = 1;

	memset(&ss, 0, sizeof(ss));
	if (evutil_parse_sockaddr_port(spec, (struct sockaddr *)&ss, &sl) != 0) {
		snprintf(why, whylen, "bad address inet:%s", spec);
		return -1;
	}
	if ((fd = socket(ss.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof(on)) != 0 ||
	    bind(fd, (struct sockaddr *)&ss, (socklen_t)sl) != 0 ||
	    listen(fd, 1024) != 0) {
		snprintf(why, whylen, "inet:%s: %s", spec, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* bind_unix - "unix:PATH", a stale socket file is replaced */
static int
bind_unix(const char *path, unsigned mode, char *why, size_t whylen)
{
	struct sockaddr_un sun;
	struct stat st;
	int fd;

	memset(&sun, 0, sizeof(sun));
	sun.sun_family = AF_UNIX;
	if (strlcpy(sun.sun_path, path, sizeof(sun.sun_path)) >=
	    sizeof(sun.sun_path)) {
		snprintf(why, whylen, "unix:%s: path too long", path);
		return -1;
	}
	if (lstat(path, &st) == 0 && S_ISSOCK(st.st_mode))
		(void)unlink(path);
	if ((fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0)) < 0 ||
	    bind(fd, (struct sockaddr *)&sun, sizeof(sun)) != 0 ||
	    chmod(path, mode) != 0 || listen(fd, 1024) != 0) {
		snprintf(why, whylen, "unix:%s: %s", path, strerror(errno));
		if (fd >= 0)
			close(fd);
		return -1;
	}
	return fd;
}

/* open_listeners - bind every listen address (before dropping root) */
static bool
open_listeners(int *fds, char *why, size_t whylen)
{
	size_t i;

	for (i = 0; i < conf->nlisten; i++) {
		const char *s = conf->listen[i];

		if (strncmp(s, "inet:", 5) == 0)
			fds[i] = bind_inet(s + 5, why, whylen);
		else {
			fds[i] = bind_unix(s + 5, conf->unix_mode, why, whylen);
			unix_paths[i] = fds[i] >= 0 ? strdup(s + 5) : NULL;
		}
		if (fds[i] < 0) {
			while (i-- > 0)
				close(fds[i]);
			return false;
		}
	}
	return true;
}

/* drop_privileges - become the configured user (RFC-free, but a
 * network-facing parser should not run as root) */
static bool
drop_privileges(const char *user, char *why, size_t whylen)
{
	struct passwd *pw;

	if (user[0] == '\0' || geteuid() != 0)
		return true;
	if ((pw = getpwnam(user)) == NULL) {
		snprintf(why, whylen, "unknown user %s", user);
		return false;
	}
	if (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0) {
		snprintf(why, whylen, "cannot become %s: %s", user,
		    strerror(errno));
		return false;
	}
	if (setuid(0) == 0) {
		snprintf(why, whylen, "could regain root after dropping it");
		return false;
	}
	return true;
}

/*
 * Contexts, reload, refresh, exit
 */

/* ctx_make - a core context on the shared loop */
static struct danests_ctx *
ctx_make(const struct conf *c, char *why, size_t whylen)
{
	struct danests_ctx *x;

	if (danests_ctx_new(c->core, base, &x, why, whylen) != DANESTS_OK)
		return NULL;
	if (danests_ctx_cache_note(x)[0] != '\0')
		logmsg(LOG_WARNING, "cache: %s", danests_ctx_cache_note(x));
	return x;
}

/* reap_cb - free contexts of earlier configurations once idle */
static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	struct old_ctx **pp, *o;

	(void)fd;
	(void)what;
	(void)arg;
	for (pp = &old_ctxs; (o = *pp) != NULL;) {
		if (danests_ctx_pending(o->ctx) == 0 && !refresh_running) {
			*pp = o->next;
			danests_ctx_free(o->ctx);
			free(o);
		} else
			pp = &o->next;
	}
}

/* refresh_done - the background refresh finished */
static void
refresh_done(void *arg, size_t due, size_t refreshed, size_t failed)
{
	(void)arg;
	refresh_running = false;
	if (due > 0)
		logmsg(LOG_INFO, "refresh: %zu due, %zu refreshed, %zu failed",
		    due, refreshed, failed);
	if (refreshed > 0)
		memory_flush();	/* answers must follow the new policies */
}

/* refresh_policies - refetch cached MTA-STS policies ahead of expiry
 * (RFC 8461 5.1: "proactively refresh"); runs on the shared loop */
static void
refresh_policies(evutil_socket_t fd, short what, void *arg)
{
	char why[256];

	(void)fd;
	(void)what;
	(void)arg;
	if (refresh_running || ctx == NULL)
		return;
	if (danests_refresh_async(ctx, conf->refresh_window_s,
	    conf->refresh_parallel, refresh_done, NULL, why, sizeof(why)) ==
	    DANESTS_OK)
		refresh_running = true;
	else
		logmsg(LOG_WARNING, "refresh: %s", why);
}

/* timers_arm - (re)start the refresh and reap timers */
static void
timers_arm(void)
{
	struct timeval tv;

	if (refresh_ev == NULL)
		refresh_ev = event_new(base, -1, EV_PERSIST, refresh_policies,
		    NULL);
	if (reap_ev == NULL)
		reap_ev = event_new(base, -1, EV_PERSIST, reap_cb, NULL);
	if (idle_ev == NULL)
		idle_ev = event_new(base, -1, EV_PERSIST, idle_sweep, NULL);
	if (refresh_ev != NULL) {
		event_del(refresh_ev);
		if (conf->refresh_interval_s > 0) {
			tv.tv_sec = conf->refresh_interval_s;
			tv.tv_usec = 0;
			event_add(refresh_ev, &tv);
		}
	}
	if (reap_ev != NULL) {
		tv.tv_sec = 5;
		tv.tv_usec = 0;
		event_add(reap_ev, &tv);
	}
	if (idle_ev != NULL) {
		tv.tv_sec = conf->idle_timeout_s < 10 ? 1 : 5;
		tv.tv_usec = 0;
		event_add(idle_ev, &tv);
	}
}

/* reload_cb - SIGHUP: re-read the configuration; listen addresses and
 * user need a restart */
static void
reload_cb(evutil_socket_t sig, short what, void *arg)
{
	struct conf *nc;
	struct danests_ctx *nx;
	struct old_ctx *o;
	char why[512];
	size_t i;

	(void)sig;
	(void)what;
	(void)arg;
	if ((nc = conf_load(why, sizeof(why))) == NULL) {
		logmsg(LOG_ERR, "reload: %s; keeping the old configuration",
		    why);
		return;
	}
	if ((nx = ctx_make(nc, why, sizeof(why))) == NULL) {
		logmsg(LOG_ERR, "reload: %s; keeping the old configuration",
		    why);
		conf_free(nc);
		return;
	}
	for (i = 0; i < nc->nlisten && i < conf->nlisten; i++)
		if (strcmp(nc->listen[i], conf->listen[i]) != 0)
			break;
	if (nc->nlisten != conf->nlisten || i != nc->nlisten ||
	    strcmp(nc->user, conf->user) != 0)
		logmsg(LOG_WARNING, "reload: listen and user changes take "
		    "effect at restart");
	if ((o = calloc(1, sizeof(*o))) != NULL) {
		o->ctx = ctx;
		o->next = old_ctxs;
		old_ctxs = o;
	}	/* else: leak the old context rather than cut its requests */
	ctx = nx;
	conf_free(conf);
	conf = nc;
	use_syslog = !conf->log_stderr;
	memory_flush();
	timers_arm();
	logmsg(LOG_INFO, "configuration reloaded");
}

/* stop_cb - SIGTERM/SIGINT: stop listening, close clients, exit */
static void
stop_cb(evutil_socket_t sig, short what, void *arg)
{
	(void)what;
	(void)arg;
	logmsg(LOG_INFO, "signal %d: exiting (%lu requests, %lu "
	    "resolutions)", (int)sig, n_requests, n_resolutions);
	event_base_loopexit(base, NULL);
}

/* shutdown_all - release everything before exit */
static void
shutdown_all(void)
{
	struct old_ctx *o;
	struct conn *c;
	size_t i;

	for (i = 0; i < nlisteners; i++) {
		evconnlistener_free(listeners[i]);
		if (unix_paths[i] != NULL) {
			(void)unlink(unix_paths[i]);
			free(unix_paths[i]);
		}
	}
	while ((c = LIST_FIRST(&conns)) != NULL)
		conn_free(c);
	/* Freeing a context cancels its lookups, whose callbacks find no
	 * waiters left. */
	danests_ctx_free(ctx);
	ctx = NULL;
	while ((o = old_ctxs) != NULL) {
		old_ctxs = o->next;
		danests_ctx_free(o->ctx);
		free(o);
	}
	memory_flush();
	if (refresh_ev != NULL)
		event_free(refresh_ev);
	if (reap_ev != NULL)
		event_free(reap_ev);
	if (idle_ev != NULL)
		event_free(idle_ev);
	if (conf->pidfile[0] != '\0')
		(void)unlink(conf->pidfile);
}

static void
usage(int status)
{
	fprintf(status == 0 ? stdout : stderr,
	    "usage: danests-postfix [-dhn] [-c file]\n"
	    "  -c file  configuration (default %s)\n"
	    "  -d       stay in the foreground, log to stderr\n"
	    "  -h       this help\n"
	    "  -n       check the configuration as the start would, exit\n"
	    "See danests-postfix(8) and danests.conf(5).\n", DEF_CONFIG);
	exit(status);
}

/* conf_check - -n: what the start would fail on, besides the syntax:
 * the directory of a unix socket, the user, ca_file and the cache as that
 * user; 0 or 78 */
static int
conf_check(void)
{
	char why[1024], note[256], dir[PATH_MAX], *slash;
	struct stat sb;
	size_t i;
	int e;

	for (i = 0; i < conf->nlisten; i++) {
		if (strncmp(conf->listen[i], "unix:", 5) != 0)
			continue;
		strlcpy(dir, conf->listen[i] + 5, sizeof(dir));
		if ((slash = strrchr(dir, '/')) != NULL)
			slash[slash == dir ? 1 : 0] = '\0';
		if ((e = stat(dir, &sb) != 0 ? errno : 0) != 0 ||
		    !S_ISDIR(sb.st_mode)) {
			fprintf(stderr, "danests-postfix: %s: listen %s: "
			    "directory %s: %s\n", config_path, conf->listen[i],
			    dir, e != 0 ? strerror(e) : "not a directory");
			return 78;
		}
	}
	if (danests_config_check_as(conf->core, conf->user,
	    conf->user_at[0] != '\0' ? conf->user_at : config_path, note,
	    sizeof(note), why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests-postfix: %s\n", why);
		return 78;	/* EX_CONFIG */
	}
	if (note[0] != '\0')
		fprintf(stderr, "danests-postfix: note: %s\n", note);
	printf("%s: configuration ok: %zu listen address(es), %zu "
	    "profile(s), user %s\n", config_path, conf->nlisten,
	    conf->nprofiles, conf->user);
	return 0;
}

int
main(int argc, char **argv)
{
	struct event *sig_hup, *sig_term, *sig_int;
	int fds[MAX_LISTEN], ch, rc;
	bool foreground = false, check_only = false;
	char why[1024];
	size_t i;
	FILE *fp;

	while ((ch = getopt(argc, argv, "c:dhn")) != -1) {
		switch (ch) {
		case 'c':
			config_path = optarg;
			break;
		case 'd':
			force_stderr = foreground = true;
			break;
		case 'h':
			usage(0);
			break;
		case 'n':
			check_only = true;
			break;
		default:
			usage(64);
		}
	}
	if (optind != argc)
		usage(64);

	if ((conf = conf_load(why, sizeof(why))) == NULL) {
		fprintf(stderr, "danests-postfix: %s\n", why);
		if (!check_only) {
			openlog("danests-postfix", LOG_PID, LOG_MAIL);
			syslog(LOG_ERR, "%s", why);
		}
		return 78;	/* EX_CONFIG */
	}
	if (check_only) {
		rc = conf_check();
		conf_free(conf);
		return rc;
	}
	use_syslog = !conf->log_stderr;
	if (use_syslog)
		openlog("danests-postfix", LOG_PID | LOG_NDELAY, LOG_MAIL);
	signal(SIGPIPE, SIG_IGN);
	if (!open_listeners(fds, why, sizeof(why))) {
		fprintf(stderr, "danests-postfix: %s\n", why);
		logmsg(LOG_ERR, "%s", why);
		return 71;	/* EX_OSERR */
	}
	if (!foreground && daemon(0, 0) != 0) {
		fprintf(stderr, "danests-postfix: daemon: %s\n",
		    strerror(errno));
		return 71;
	}
	if (conf->pidfile[0] != '\0' && (fp = fopen(conf->pidfile, "w")) !=
	    NULL) {
		fprintf(fp, "%ld\n", (long)getpid());
		fclose(fp);
	}
	if (!drop_privileges(conf->user, why, sizeof(why))) {
		logmsg(LOG_ERR, "%s", why);
		return 71;
	}
	if ((base = event_base_new()) == NULL) {
		logmsg(LOG_ERR, "cannot create event loop");
		return 71;
	}
	for (i = 0; i < conf->nlisten; i++) {
		evutil_make_socket_nonblocking(fds[i]);
		if ((listeners[i] = evconnlistener_new(base, accept_cb, NULL,
		    LEV_OPT_CLOSE_ON_FREE | LEV_OPT_CLOSE_ON_EXEC, -1,
		    fds[i])) == NULL) {
			logmsg(LOG_ERR, "cannot listen on %s", conf->listen[i]);
			return 71;
		}
		nlisteners++;
	}
	if ((ctx = ctx_make(conf, why, sizeof(why))) == NULL) {
		logmsg(LOG_ERR, "%s", why);
		return 78;
	}
	sig_hup = evsignal_new(base, SIGHUP, reload_cb, NULL);
	sig_term = evsignal_new(base, SIGTERM, stop_cb, NULL);
	sig_int = evsignal_new(base, SIGINT, stop_cb, NULL);
	if (sig_hup == NULL || sig_term == NULL || sig_int == NULL ||
	    evsignal_add(sig_hup, NULL) != 0 ||
	    evsignal_add(sig_term, NULL) != 0 ||
	    evsignal_add(sig_int, NULL) != 0) {
		logmsg(LOG_ERR, "cannot install signal handlers");
		return 71;
	}
	timers_arm();
	for (i = 0; i < conf->nlisten; i++)
		logmsg(LOG_INFO, "listening on %s", conf->listen[i]);
	event_base_dispatch(base);
	shutdown_all();
	event_free(sig_hup);
	event_free(sig_term);
	event_free(sig_int);
	event_base_free(base);
	conf_free(conf);
	return 0;
}
