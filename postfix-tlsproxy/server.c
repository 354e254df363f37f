/*
 * server.c - the daemon glue of danests-postfix: listeners, privileges,
 * pid file, core contexts, the refresh timer, the push of a fleet's
 * report counts, reload and exit, on top of
 * the daemon support shared with danests-relay (core/daemon).
 *
 * Start: bind every listener as the starting user (root), detach, become
 * the service user (never root), write the pid file as that user, fit
 * max_clients to the descriptor limit, then serve.  The sockets' and the
 * pid file's directories must be writable by the service user, so that it
 * removes both at exit (checked before anything is bound, also by -n).
 */
#include "danests-postfix.h"
#include "danests-metrics.h"
#include "danests-report.h"

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

struct event_base *base;
struct danests_ctx *ctx;
unsigned long n_requests, n_resolutions;

static struct dmn_retired retired;	/* contexts of earlier reloads */
static struct dmn_listen listens[MAX_LISTEN];
static struct dmn_acceptor *acceptors[MAX_LISTEN];
static size_t nlistens;
static struct event *refresh_ev, *reap_ev, *sweep_ev;
static struct dmn_push *pusher;	/* a fleet's report counts */
static bool refresh_running;

/* server_check - see danests-postfix.h */
bool
server_check(const struct conf *c, char *why, size_t whylen)
{
	struct dmn_listen l;
	struct dmn_user u;
	size_t i;

	for (i = 0; i < c->nlisten; i++)
		if (!dmn_listen_parse(c->listen[i], &l, why, whylen))
			return false;
	if (!dmn_will_drop())
		return true;	/* stays the user it was started as */
	if (!dmn_user_lookup(c->user.name, &u, why, whylen))
		return false;
	for (i = 0; i < c->nlisten; i++)
		if (dmn_listen_parse(c->listen[i], &l, why, whylen) &&
		    l.is_unix && !dmn_dir_writable(l.path, &u, why, whylen))
			return false;
	if (c->tlsrpt_socket[0] != '\0' &&
	    !dmn_dir_writable(c->tlsrpt_socket, &u, why, whylen))
		return false;
	if (c->pidfile[0] != '\0' && !dmn_dir_writable(c->pidfile, &u, why,
	    whylen))
		return false;
	return true;
}

/* fit_clients - max_clients within the descriptor limit (one descriptor
 * per client, PF_FD_RESERVE kept for the rest) */
static void
fit_clients(struct conf *c)
{
	c->max_clients = dmn_nofile_fit(c->max_clients, 1, PF_FD_RESERVE,
	    "max_clients");
}

/* ctx_make - a core context on the shared loop */
static struct danests_ctx *
ctx_make(const struct conf *c, char *why, size_t whylen)
{
	struct danests_ctx *x;

	if (danests_ctx_new(c->core, base, &x, why, whylen) != DANESTS_OK)
		return NULL;
	danests_ctx_set_metrics(x, pf_metrics);
	if (danests_ctx_cache_note(x)[0] != '\0')
		dmn_log(LOG_WARNING, "cache: %s", danests_ctx_cache_note(x));
	return x;
}

/* reap_cb - free contexts of earlier configurations once idle (not
 * while a refresh runs: it may have started on one of them) */
static void
reap_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	if (!refresh_running)
		(void)dmn_ctx_reap(&retired);
}

/* refresh_done - the background refresh finished */
static void
refresh_done(void *arg, size_t due, size_t refreshed, size_t failed)
{
	(void)arg;
	refresh_running = false;
	if (due > 0)
		dmn_log(LOG_INFO, "refresh: %zu due, %zu refreshed, %zu failed",
		    due, refreshed, failed);
	/* The context dropped the decisions it kept when a policy
	 * changed (danests_refresh_async). */
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
		dmn_log(LOG_WARNING, "refresh: %s", why);
}

/* push_ctx - the context whose report counts a fleet's push writes */
static struct danests_ctx *
push_ctx(void *arg)
{
	(void)arg;
	return ctx;
}

/* sweep_cb - once a second: idle and slow clients */
static void
sweep_cb(evutil_socket_t fd, short what, void *arg)
{
	(void)fd;
	(void)what;
	(void)arg;
	conn_sweep();
}

/* timers_arm - (re)start the refresh, reap and sweep timers */
static void
timers_arm(void)
{
	struct timeval tv;

	if (refresh_ev == NULL)
		refresh_ev = event_new(base, -1, EV_PERSIST, refresh_policies,
		    NULL);
	if (reap_ev == NULL)
		reap_ev = event_new(base, -1, EV_PERSIST, reap_cb, NULL);
	if (sweep_ev == NULL)
		sweep_ev = event_new(base, -1, EV_PERSIST, sweep_cb, NULL);
	if (pusher == NULL)
		pusher = dmn_push_new(base, push_ctx, NULL);
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
	if (sweep_ev != NULL) {
		tv.tv_sec = 1;
		tv.tv_usec = 0;
		event_add(sweep_ev, &tv);
	}
}

/* reload_cb - SIGHUP: re-read the configuration, make a new core context
 * (resolver, ca_file, cache) and drop every decision kept in memory;
 * listen addresses, user and pid file need a restart */
static void
reload_cb(void *arg)
{
	struct conf *nc;
	struct danests_ctx *nx;
	char why[512];
	size_t i;

	(void)arg;
	if ((nc = conf_load(why, sizeof(why))) == NULL) {
		dmn_log(LOG_ERR, "reload: %s; keeping the old configuration",
		    why);
		return;
	}
	if ((nx = ctx_make(nc, why, sizeof(why))) == NULL) {
		dmn_log(LOG_ERR, "reload: %s; keeping the old configuration",
		    why);
		conf_free(nc);
		return;
	}
	for (i = 0; i < nc->nlisten && i < conf->nlisten; i++)
		if (strcmp(nc->listen[i], conf->listen[i]) != 0)
			break;
	if (nc->nlisten != conf->nlisten || i != nc->nlisten ||
	    strcmp(nc->user.name, conf->user.name) != 0 ||
	    strcmp(nc->pidfile, conf->pidfile) != 0 ||
	    strcmp(nc->tlsrpt_socket, conf->tlsrpt_socket) != 0 ||
	    nc->tlsrpt_mode != conf->tlsrpt_mode ||
	    strcmp(nc->metrics_listen, conf->metrics_listen) != 0)
		dmn_log(LOG_WARNING, "reload: listen, user, pidfile, "
		    "tlsrpt_socket and metrics_listen changes take effect at "
		    "restart");
	strlcpy(nc->metrics_listen, conf->metrics_listen,
	    sizeof(nc->metrics_listen));
	strlcpy(nc->tlsrpt_socket, conf->tlsrpt_socket,
	    sizeof(nc->tlsrpt_socket));
	nc->tlsrpt_mode = conf->tlsrpt_mode;
	strlcpy(nc->pidfile, conf->pidfile, sizeof(nc->pidfile));
	if (!dmn_ctx_retire(&retired, ctx))
		dmn_log(LOG_WARNING, "reload: out of memory: the old context "
		    "stays allocated");
	ctx = nx;
	conf_free(conf);
	conf = nc;
	fit_clients(conf);
	dmn_log_set(conf->log_stderr, conf->verbose);
	timers_arm();
	dmn_log(LOG_INFO, "configuration reloaded");
}

/* stop_cb - SIGTERM/SIGINT: leave the loop; shutdown_all closes */
static void
stop_cb(int sig, void *arg)
{
	(void)arg;
	dmn_log(LOG_INFO, "signal %d: exiting (%lu requests, %lu "
	    "resolutions)", sig, n_requests, n_resolutions);
	if (conf->tlsrpt_socket[0] != '\0')
		dmn_log(LOG_INFO, "tlsrpt: %lu datagrams, %lu results recorded, "
		    "%lu not recorded, %lu malformed and %lu oversized "
		    "datagrams dropped, %lu extra failure details ignored",
		    collect_stats.datagrams, collect_stats.sessions,
		    collect_stats.unrecorded, collect_stats.malformed,
		    collect_stats.oversized, collect_stats.extra_details);
	event_base_loopexit(base, NULL);
}

/* shutdown_all - release everything before exit: the socket files and
 * the pid file go (the service user owns their directories) */
static void
shutdown_all(void)
{
	size_t i;

	for (i = 0; i < nlistens; i++) {
		dmn_acceptor_free(acceptors[i]);
		acceptors[i] = NULL;
		dmn_listen_close(&listens[i]);
	}
	conn_close_all();
	collect_stop();
	/* the counts recorded since the last tick */
	dmn_push_now(pusher);
	dmn_push_free(pusher);
	pusher = NULL;
	dmn_http_listener_stop(&metrics_listener);
	/* Freeing a context cancels its lookups, whose callbacks find no
	 * waiters left. */
	danests_ctx_free(ctx);
	ctx = NULL;
	dmn_ctx_retire_all(&retired);
	metrics_free();
	if (refresh_ev != NULL)
		event_free(refresh_ev);
	if (reap_ev != NULL)
		event_free(reap_ev);
	if (sweep_ev != NULL)
		event_free(sweep_ev);
	dmn_pidfile_remove();
}

/* server_run - see danests-postfix.h */
int
server_run(bool foreground)
{
	struct dmn_signals *sigs;
	struct dmn_user u;
	char why[512];
	size_t i;

	dmn_log_open(PF_NAME, conf->log_stderr, conf->verbose);
	if (!server_check(conf, why, sizeof(why)) ||
	    (dmn_will_drop() && !dmn_user_lookup(conf->user.name, &u, why,
	    sizeof(why)))) {
		fprintf(stderr, "%s: %s\n", PF_NAME, why);
		dmn_log(LOG_ERR, "%s", why);
		return 78;	/* EX_CONFIG */
	}
	for (i = 0; i < conf->nlisten; i++) {
		if (!dmn_listen_parse(conf->listen[i], &listens[i], why,
		    sizeof(why)) || !dmn_listen_bind(&listens[i],
		    conf->unix_mode, why, sizeof(why))) {
			fprintf(stderr, "%s: %s\n", PF_NAME, why);
			dmn_log(LOG_ERR, "%s", why);
			while (i-- > 0)
				dmn_listen_close(&listens[i]);
			return 71;	/* EX_OSERR */
		}
		nlistens++;
	}
	if (!collect_bind(conf, why, sizeof(why))) {
		fprintf(stderr, "%s: tlsrpt_socket: %s\n", PF_NAME, why);
		dmn_log(LOG_ERR, "tlsrpt_socket: %s", why);
		while (nlistens > 0)
			dmn_listen_close(&listens[--nlistens]);
		return 71;	/* EX_OSERR */
	}
	if (!metrics_init() || !dmn_http_listener_bind(&metrics_listener,
	    conf->metrics_listen, why, sizeof(why))) {
		fprintf(stderr, "%s: metrics_listen: %s\n", PF_NAME, why);
		dmn_log(LOG_ERR, "metrics_listen: %s", why);
		collect_stop();
		dmn_http_listener_stop(&metrics_listener);
		metrics_free();
		while (nlistens > 0)
			dmn_listen_close(&listens[--nlistens]);
		return 71;	/* EX_OSERR */
	}
	if (!foreground && daemon(0, 0) != 0) {
		fprintf(stderr, "%s: daemon: %s\n", PF_NAME, strerror(errno));
		goto fail;
	}
	if (!dmn_drop(&u, why, sizeof(why)) || (conf->pidfile[0] != '\0' &&
	    !dmn_pidfile_write(conf->pidfile, why, sizeof(why)))) {
		dmn_log(LOG_ERR, "%s", why);
		goto fail;
	}
	fit_clients(conf);
	if ((base = event_base_new()) == NULL) {
		dmn_log(LOG_ERR, "cannot create event loop");
		goto fail;
	}
	for (i = 0; i < nlistens; i++)
		if ((acceptors[i] = dmn_acceptor_new(base, listens[i].fd,
		    conn_accept, conn_room, NULL)) == NULL) {
			dmn_log(LOG_ERR, "cannot listen on %s", listens[i].spec);
			goto fail;
		}
	if ((ctx = ctx_make(conf, why, sizeof(why))) == NULL) {
		dmn_log(LOG_ERR, "%s", why);
		shutdown_all();
		return 78;
	}
	if (!collect_start(base)) {
		dmn_log(LOG_ERR, "cannot read tlsrpt_socket");
		goto fail;
	}
	if (!dmn_http_listener_start(&metrics_listener, base,
	    metrics_fill, NULL)) {
		dmn_log(LOG_ERR, "cannot serve metrics_listen");
		goto fail;
	}
	if ((sigs = dmn_signals_new(base, reload_cb, stop_cb, NULL)) == NULL) {
		dmn_log(LOG_ERR, "cannot install signal handlers");
		goto fail;
	}
	timers_arm();
	for (i = 0; i < nlistens; i++)
		dmn_log(LOG_INFO, "listening on %s", listens[i].spec);
	event_base_dispatch(base);
	shutdown_all();
	dmn_signals_free(sigs);
	event_base_free(base);
	return 0;
fail:
	shutdown_all();
	return 71;
}
