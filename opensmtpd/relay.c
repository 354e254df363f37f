/*
 * relay.c - main of danests-relay(8): configuration, listener, signals,
 * privilege drop, and the decision service on the main thread's loop.
 *
 *	danests-relay [-dhn] [-c FILE]
 *
 * OpenSMTPD (6.8) has neither DANE nor MTA-STS and its filters cannot act
 * on outbound mail, so it hands its outbound mail to this relay over LMTP
 * (action "out" relay host lmtp://127.0.0.1:PORT) and the relay delivers
 * it as the core decides (session.c).
 */
#include "relay.h"
#include "lmtp.h"
#include "daemon.h"
#include "danests-report.h"
#include "danests-metrics.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <grp.h>
#include <netinet/in.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <syslog.h>
#include <unistd.h>

/* One decision asked for by a session thread. */
struct dreq {
	char domain[LMTP_DOMAIN_MAX];
	int refs;		/* the asker and the loop; under lock */
	bool done;
	struct danests_decision *d;
	char why[256];
	pthread_cond_t cond;
	struct dreq *next;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct relay_conf conf;		/* under lock */
static struct dreq *queue;		/* under lock */
static bool debug;

static struct event_base *base;
static struct event *ev_queue, *ev_tick;
static struct dmn_push *pusher;		/* a fleet's report counts */
static struct dmn_acceptor *acceptor;
static struct danests_ctx *ctx;
static struct dmn_retired retired;	/* contexts of earlier reloads */
static struct ssl_ctx_st *tls;		/* under lock */
static const char *conf_path = RELAY_CONF;
static struct dmn_listen listener = { .fd = -1 };
static bool stopping;
static time_t stop_by;

/* relay_conf_defaults - the values of danests-relay(8) */
static int
relay_conf_defaults(struct relay_conf *c)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->listen, sizeof(c->listen), "127.0.0.1:10026");
	dmn_conf_user_default(&c->user);
	if (gethostname(c->helo, sizeof(c->helo)) != 0 || *c->helo == '\0')
		snprintf(c->helo, sizeof(c->helo), "localhost");
	c->helo[sizeof(c->helo) - 1] = '\0';
	snprintf(c->tmpdir, sizeof(c->tmpdir), "/var/tmp");
	c->max_sessions = 200;
	c->parallel = 8;
	c->max_deliveries = 100;
	c->max_rcpts = 1000;
	c->size_max = 50ULL * 1024 * 1024;
	c->mem_max = 1024 * 1024;
	/* below OpenSMTPD's 300 s I/O timeout (doc/design.md) */
	c->transaction_s = 240;
	c->idle_s = 300;
	c->reply_gap_ms = 50;
	danests_smtp_opts_default(&c->smtp);
	/* each step bounded well inside the transaction bound */
	c->smtp.connect_ms = 20 * 1000;
	c->smtp.greeting_ms = 60 * 1000;
	c->smtp.tls_ms = 60 * 1000;
	c->smtp.mail_ms = 60 * 1000;
	c->smtp.rcpt_ms = 60 * 1000;
	c->smtp.data_ms = 60 * 1000;
	c->smtp.block_ms = 60 * 1000;
	c->smtp.dot_ms = 120 * 1000;
	if ((c->core = danests_config_new()) == NULL)
		return -1;
	return 0;
}

/* relay_conf_clear - free what a configuration owns */
void
relay_conf_clear(struct relay_conf *c)
{
	danests_config_free(c->core);
	c->core = NULL;
}

/* listen_ok - ADDR:PORT, [V6]:PORT, inet:... or unix:/PATH (core/daemon
 * reads them) */
static bool
listen_ok(const char *spec, char *why, size_t whylen)
{
	struct dmn_listen l;

	return dmn_listen_parse(spec, &l, why, whylen);
}

/* relay_conf_key - one key of the [relay] section (danests_config_key_cb);
 * the core keys come before the first section */
static danests_status
relay_conf_key(void *arg, const char *section, const char *key,
    const char *val, const char *file, unsigned line, char *why,
    size_t whylen)
{
#define N(key, lo, hi, scale, field) \
	DANESTS_CONFIG_NUM(key, lo, hi, scale, struct relay_conf, field)
	static const struct danests_config_num nums[] = {
		N("max_sessions", 1, 10000, 1, max_sessions),
		N("parallel_domains", 1, 256, 1, parallel),
		N("max_recipients", 1, 100000, 1, max_rcpts),
		N("message_size_max", 1024, 1ULL << 36, 1, size_max),
		N("memory_max", 0, 1ULL << 30, 1, mem_max),
		N("transaction_timeout", 10, 3600, 1, transaction_s),
		N("idle_timeout", 5, 3600, 1, idle_s),
		N("smtp_port", 1, 65535, 1, smtp.port),
		N("connect_timeout", 1, 600, 1000, smtp.connect_ms),
		N("greeting_timeout", 1, 600, 1000, smtp.greeting_ms),
		N("tls_timeout", 1, 600, 1000, smtp.tls_ms),
		N("mail_timeout", 1, 600, 1000, smtp.mail_ms),
		N("rcpt_timeout", 1, 600, 1000, smtp.rcpt_ms),
		N("data_timeout", 1, 600, 1000, smtp.data_ms),
		N("block_timeout", 1, 600, 1000, smtp.block_ms),
		N("dot_timeout", 1, 1200, 1000, smtp.dot_ms),
		N("reply_gap", 0, 2000, 1, reply_gap_ms),
		N("max_deliveries", 1, 10000, 1, max_deliveries),
	};
#undef N
	struct relay_conf *c = arg;

	if (strcmp(key, "listen") == 0) {
		if (!listen_ok(val, why, whylen))
			return DANESTS_PERM;
		if (strlcpy(c->listen, val, sizeof(c->listen)) >=
		    sizeof(c->listen)) {
			snprintf(why, whylen, "too long");
			return DANESTS_PERM;
		}
		return DANESTS_OK;
	}
	if (strcmp(key, "user") == 0)
		return dmn_conf_user(&c->user, val, file, line, why, whylen) ?
		    DANESTS_OK : DANESTS_PERM;
	if (strcmp(key, "metrics_listen") == 0)
		return dmn_conf_metrics_listen(val, c->metrics_listen,
		    sizeof(c->metrics_listen), why, whylen) ? DANESTS_OK :
		    DANESTS_PERM;
	if (strcmp(key, "helo_name") == 0) {
		char n[256];

		if (danests_domain_normalize(val, n, sizeof(n)) != DANESTS_OK) {
			snprintf(why, whylen, "not a host name");
			return DANESTS_PERM;
		}
		snprintf(c->helo, sizeof(c->helo), "%s", n);
		return DANESTS_OK;
	}
	if (strcmp(key, "tmpdir") == 0) {
		if (val[0] != '/' || strlcpy(c->tmpdir, val,
		    sizeof(c->tmpdir)) >= sizeof(c->tmpdir)) {
			snprintf(why, whylen, "expected an absolute path of at "
			    "most %zu bytes", sizeof(c->tmpdir) - 1);
			return DANESTS_PERM;
		}
		return DANESTS_OK;
	}
	return danests_config_num(nums, sizeof(nums) / sizeof(nums[0]), c,
	    key, val, why, whylen);
}

/* relay_conf_load - defaults, then the file: its core keys and [relay] */
int
relay_conf_load(const char *path, struct relay_conf *c, char *why,
    size_t whylen)
{
	if (relay_conf_defaults(c) != 0) {
		snprintf(why, whylen, "out of memory");
		return -1;
	}
	if (danests_config_read(c->core, path, "relay", relay_conf_key, c, why,
	    whylen) != DANESTS_OK) {
		relay_conf_clear(c);
		return -1;
	}
	c->tls_reports = danests_config_report(c->core)->enabled;
	if (c->smtp.total_ms == 0 && c->transaction_s >= 300)
		relay_log(LOG_WARNING, "transaction_timeout %u s is not below "
		    "OpenSMTPD's 300 s", c->transaction_s);
	return 0;
}

/* relay_conf_get - a snapshot for a session */
void
relay_conf_get(struct relay_conf *out)
{
	pthread_mutex_lock(&lock);
	*out = conf;
	out->core = NULL;
	pthread_mutex_unlock(&lock);
}

/* relay_ctx - the decision context in force; the main thread's alone */
struct danests_ctx *
relay_ctx(void)
{
	return ctx;
}

/* relay_tls - a reference to the TLS client context in force (a reload
 * replaces it); the caller drops it with danests_tls_ctx_free */
struct ssl_ctx_st *
relay_tls(void)
{
	struct ssl_ctx_st *t;

	pthread_mutex_lock(&lock);
	t = tls;
	if (t != NULL && SSL_CTX_up_ref(t) != 1)
		t = NULL;
	pthread_mutex_unlock(&lock);
	return t;
}

/* dreq_unref - drop one reference; the last frees */
static void
dreq_unref(struct dreq *r)
{
	bool last;

	pthread_mutex_lock(&lock);
	last = --r->refs == 0;
	pthread_mutex_unlock(&lock);
	if (last) {
		danests_decision_free(r->d);
		pthread_cond_destroy(&r->cond);
		free(r);
	}
}

/* decided - the core's answer, on the main thread */
static void
decided(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct dreq *r = arg;

	pthread_mutex_lock(&lock);
	if (st == DANESTS_OK && d != NULL)
		r->d = d;
	else {
		danests_decision_free(d);
		snprintf(r->why, sizeof(r->why), "%s", why && *why ? why :
		    danests_status_name(st));
	}
	r->done = true;
	pthread_cond_broadcast(&r->cond);
	pthread_mutex_unlock(&lock);
	dreq_unref(r);
}

/* queue_cb - start the decisions session threads asked for */
static void
queue_cb(evutil_socket_t fd, short ev, void *arg)
{
	struct dreq *r, *list;
	char why[256];

	pthread_mutex_lock(&lock);
	list = queue;
	queue = NULL;
	pthread_mutex_unlock(&lock);
	while ((r = list) != NULL) {
		list = r->next;
		*why = '\0';
		if (danests_decide_async(ctx, r->domain, 0, decided, r, why,
		    sizeof(why)) != DANESTS_OK)
			decided(r, DANESTS_TEMP, NULL, why);
	}
}

/* relay_decide - ask the main thread for a decision and wait */
struct danests_decision *
relay_decide(const char *domain, unsigned timeout_ms, char *why,
    size_t whylen)
{
	struct danests_decision *d = NULL;
	struct timespec ts;
	struct dreq *r;
	int rc = 0;

	if ((r = calloc(1, sizeof(*r))) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	snprintf(r->domain, sizeof(r->domain), "%s", domain);
	pthread_cond_init(&r->cond, NULL);
	r->refs = 2;
	clock_gettime(CLOCK_REALTIME, &ts);
	ts.tv_sec += timeout_ms / 1000;
	ts.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
	if (ts.tv_nsec >= 1000000000) {
		ts.tv_sec++;
		ts.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&lock);
	r->next = queue;
	queue = r;
	pthread_mutex_unlock(&lock);
	event_active(ev_queue, EV_READ, 0);
	pthread_mutex_lock(&lock);
	while (!r->done && rc != ETIMEDOUT)
		rc = pthread_cond_timedwait(&r->cond, &lock, &ts);
	if (r->done && r->d != NULL) {
		d = r->d;
		r->d = NULL;
	} else
		snprintf(why, whylen, "%s", r->done ? r->why :
		    "decision timed out");
	pthread_mutex_unlock(&lock);
	dreq_unref(r);
	return d;
}

/* accept_cb - a new LMTP connection gets a thread (threads.c); a
 * dmn_accept_fn */
static void
accept_cb(int fd, void *arg)
{
	static const char busy[] = "421 4.3.2 too many connections, try "
	    "later\r\n";
	unsigned max;
	int rc;

	/* the session thread does blocking I/O with its own bounds */
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK) != 0) {
		close(fd);
		return;
	}
	pthread_mutex_lock(&lock);
	max = conf.max_sessions;
	pthread_mutex_unlock(&lock);
	if ((rc = threads_session(fd, max)) == 0) {
		metrics_session();
		return;
	}
	if (rc == 1) {
		(void)send(fd, busy, sizeof(busy) - 1, MSG_NOSIGNAL |
		    MSG_DONTWAIT);
		relay_log(LOG_WARNING, "max_sessions reached, connection "
		    "refused");
	}
	close(fd);
}

/* push_ctx - the context whose report counts a fleet's push writes */
static struct danests_ctx *
push_ctx(void *arg)
{
	(void)arg;
	return ctx;
}

/* tick_cb - free the contexts of earlier reloads once idle; reap ended
 * sessions; end the loop once a stop left no session open */
static void
tick_cb(evutil_socket_t fd, short ev, void *arg)
{
	static bool late;
	unsigned n;

	(void)dmn_ctx_reap(&retired);
	n = threads_reap();
	if (!stopping)
		return;
	if (n == 0) {
		event_base_loopbreak(base);
		return;
	}
	/* every wait of a session is bounded; say so if one is late */
	if (!late && time(NULL) >= stop_by) {
		late = true;
		relay_log(LOG_WARNING, "%u sessions still finishing", n);
	}
}

/* fit_sessions - max_sessions within the descriptor limit: a session
 * holds its LMTP socket and a spill file, and at most max_deliveries
 * SMTP connections are open over all sessions */
static void
fit_sessions(struct relay_conf *c)
{
	c->max_sessions = dmn_nofile_fit(c->max_sessions, RELAY_FD_SESSION,
	    RELAY_FD_RESERVE + c->max_deliveries, "max_sessions");
}

/* reload - SIGHUP: read the file again; sessions started from now on
 * use the new settings, decisions a new context once the old is idle,
 * deliveries a new TLS context (ca_file) once those in flight end */
static void
reload(void)
{
	struct relay_conf nc;
	struct danests_ctx *nctx;
	struct ssl_ctx_st *ntls, *otls;
	char why[1024];

	if (relay_conf_load(conf_path, &nc, why, sizeof(why)) != 0) {
		relay_log(LOG_ERR, "reload: %s; keeping the old settings", why);
		return;
	}
	if (strcmp(nc.listen, conf.listen) != 0 ||
	    strcmp(nc.user.name, conf.user.name) != 0 ||
	    strcmp(nc.metrics_listen, conf.metrics_listen) != 0)
		relay_log(LOG_WARNING, "reload: listen, user and "
		    "metrics_listen need a restart; kept");
	snprintf(nc.listen, sizeof(nc.listen), "%s", conf.listen);
	snprintf(nc.metrics_listen, sizeof(nc.metrics_listen), "%s",
	    conf.metrics_listen);
	nc.user = conf.user;
	fit_sessions(&nc);
	if ((ntls = danests_tls_ctx_new(danests_config_ca_file(nc.core), why,
	    sizeof(why))) == NULL) {
		relay_log(LOG_ERR, "reload: %s; keeping the old settings", why);
		relay_conf_clear(&nc);
		return;
	}
	if (danests_ctx_new(nc.core, base, &nctx, why, sizeof(why)) !=
	    DANESTS_OK) {
		relay_log(LOG_ERR, "reload: %s; keeping the old settings", why);
		danests_tls_ctx_free(ntls);
		relay_conf_clear(&nc);
		return;
	}
	if (!dmn_ctx_retire(&retired, ctx))
		relay_log(LOG_WARNING, "reload: out of memory: the old "
		    "context stays allocated");
	danests_ctx_set_metrics(nctx, relay_metrics);
	ctx = nctx;
	pthread_mutex_lock(&lock);
	relay_conf_clear(&conf);
	conf = nc;
	otls = tls;
	tls = ntls;
	pthread_mutex_unlock(&lock);
	/* deliveries in flight hold their own reference (relay_tls) */
	danests_tls_ctx_free(otls);
	relay_log(LOG_INFO, "configuration reloaded from %s", conf_path);
}

/* reload_cb - SIGHUP */
static void
reload_cb(void *arg)
{
	(void)arg;
	reload();
}

/* stop_cb - SIGTERM/SIGINT: stop accepting (the socket file goes at
 * once), close idle sessions (421) and end once the transactions in
 * flight are done (bounded by transaction_timeout) */
static void
stop_cb(int sig, void *arg)
{
	(void)arg;
	if (stopping)
		return;
	relay_log(LOG_INFO, "signal %d: no new connections, finishing", sig);
	stopping = true;
	stop_by = time(NULL) + conf.transaction_s + 10;
	threads_stop();
	dmn_acceptor_free(acceptor);
	acceptor = NULL;
	dmn_listen_close(&listener);
	dmn_http_listener_stop(&metrics_listener);
}

/* relay_check - what the start would fail on besides the file and the
 * core settings: the listen spec, the user (never root) and the socket's
 * directory */
static int
relay_check(const struct relay_conf *c, char *why, size_t whylen)
{
	struct dmn_listen l;
	struct dmn_user u;

	if (!dmn_listen_parse(c->listen, &l, why, whylen))
		return -1;
	if (!dmn_will_drop())
		return 0;	/* stays the user it was started as */
	if (!dmn_user_lookup(c->user.name, &u, why, whylen) ||
	    (l.is_unix && !dmn_dir_writable(l.path, &u, why, whylen)))
		return -1;
	return 0;
}

static const char usage_text[] =
    "usage: " RELAY_NAME " [-dhn] [-c file]\n"
    "  -c file  configuration (default " RELAY_CONF ")\n"
    "  -d       stay in the foreground, log to stderr\n"
    "  -h       this help\n"
    "  -n       check the configuration as the start would, exit\n"
    "See danests-relay(8) and danests.conf(5).\n";

/* relay_check_cb - relay_check as a dmn_check_fn */
static bool
relay_check_cb(void *arg, char *why, size_t whylen)
{
	return relay_check(arg, why, whylen) == 0;
}

/* conf_check - -n: what the start would fail on, besides the syntax
 * (dmn_conf_check, then relay_check); 0 or 78 */
static int
conf_check(void)
{
	const char *listen[] = { conf.listen };

	if (conf.metrics_listen[0] != '\0') {
		struct dmn_listen l;
		char why[256];

		if (dmn_listen_parse(conf.metrics_listen, &l, why,
		    sizeof(why)) && !dmn_http_loopback(&l))
			fprintf(stderr, "%s: warning: metrics_listen %s is not "
			    "a loopback address: whoever reaches it reads the "
			    "counters\n", RELAY_NAME, conf.metrics_listen);
	}
	if (dmn_conf_check(RELAY_NAME, conf_path, conf.core, listen, 1,
	    &conf.user, relay_check_cb, &conf) != 0)
		return 78;	/* EX_CONFIG */
	printf("%s: configuration OK: listen %s, user %s\n", conf_path,
	    conf.listen, conf.user.name);
	return 0;
}

int
main(int argc, char **argv)
{
	struct dmn_signals *sigs;
	struct dmn_user u;
	struct timeval tv = { 0, 200000 };
	struct dmn_opts opt = { RELAY_CONF, false, false };
	char why[1024];

	dmn_options(argc, argv, true, usage_text, &opt);
	conf_path = opt.config;
	debug = opt.foreground;
	dmn_log_open(RELAY_NAME, debug, true);
	if (relay_conf_load(conf_path, &conf, why, sizeof(why)) != 0) {
		if (!debug)
			fprintf(stderr, "%s: %s\n", RELAY_NAME, why);
		relay_log(LOG_ERR, "%s", why);
		return 78;	/* EX_CONFIG */
	}
	if (opt.check)
		return conf_check();
	if (relay_check(&conf, why, sizeof(why)) != 0) {
		if (!debug)
			fprintf(stderr, "%s: %s\n", RELAY_NAME, why);
		relay_log(LOG_ERR, "%s", why);
		return 78;
	}
	if (evthread_use_pthreads() != 0 || (base = event_base_new()) ==
	    NULL || threads_init() != 0) {
		relay_log(LOG_ERR, "cannot create the event loop");
		return 71;
	}
	/* bind as root, then become the service user (never root); the
	 * socket's directory is the user's, so it goes at exit */
	if (!dmn_listen_parse(conf.listen, &listener, why, sizeof(why)) ||
	    (dmn_will_drop() && !dmn_user_lookup(conf.user.name, &u, why,
	    sizeof(why))) || !dmn_listen_bind(&listener, 0660, why,
	    sizeof(why)) || !metrics_init() ||
	    !dmn_http_listener_bind(&metrics_listener,
	    conf.metrics_listen, why, sizeof(why)) ||
	    !dmn_drop(&u, why, sizeof(why))) {
		relay_log(LOG_ERR, "%s", why);
		dmn_listen_close(&listener);
		dmn_http_listener_stop(&metrics_listener);
		return 71;
	}
	fit_sessions(&conf);
	/* MTA-STS hosts are checked against the CA store of the policy
	 * fetch (ca_file) */
	if ((tls = danests_tls_ctx_new(danests_config_ca_file(conf.core),
	    why, sizeof(why))) == NULL ||
	    danests_ctx_new(conf.core, base, &ctx, why, sizeof(why)) !=
	    DANESTS_OK) {
		relay_log(LOG_ERR, "%s", why);
		return 71;
	}
	danests_ctx_set_metrics(ctx, relay_metrics);
	if (*danests_ctx_cache_note(ctx) != '\0')
		relay_log(LOG_WARNING, "cache: %s", danests_ctx_cache_note(ctx));
	if (conf.tls_reports && danests_config_cache_dir(conf.core) == NULL)
		relay_log(LOG_WARNING, "tls_reports yes without a cache "
		    "(cache_dir none): no TLS report result is recorded");
	ev_queue = event_new(base, -1, 0, queue_cb, NULL);
	if (report_init(base) != 0) {
		relay_log(LOG_ERR, "cannot set up events");
		return 71;
	}
	acceptor = dmn_acceptor_new(base, listener.fd, accept_cb, NULL, NULL);
	ev_tick = event_new(base, -1, EV_PERSIST, tick_cb, NULL);
	sigs = dmn_signals_new(base, reload_cb, stop_cb, NULL);
	pusher = dmn_push_new(base, push_ctx, NULL);
	if (ev_queue == NULL || acceptor == NULL || ev_tick == NULL ||
	    sigs == NULL || pusher == NULL || event_add(ev_tick, &tv) != 0 ||
	    !dmn_http_listener_start(&metrics_listener, base,
	    metrics_fill, NULL)) {
		relay_log(LOG_ERR, "cannot set up events");
		dmn_listen_close(&listener);
		return 71;
	}
	relay_log(LOG_INFO, "listening on %s (LMTP), %s%s", conf.listen,
	    DANESTS_VERSION, conf.tls_reports ? ", TLS reporting on" : "");
	event_base_dispatch(base);
	threads_join();
	/* the results of the last deliveries still count, in the fleet's
	 * store too */
	report_flush();
	dmn_push_now(pusher);
	dmn_push_free(pusher);
	dmn_acceptor_free(acceptor);
	dmn_listen_close(&listener);
	dmn_http_listener_stop(&metrics_listener);
	relay_log(LOG_INFO, "exiting");
	return 0;
}
