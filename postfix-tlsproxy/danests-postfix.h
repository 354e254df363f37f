/*
 * danests-postfix.h - what the files of danests-postfix(8) share.
 *
 *   danests-postfix.c  configuration and main
 *   server.c           listeners, privileges, contexts, refresh, reload,
 *                      exit (the daemon glue over core/daemon)
 *   conn.c             client connections: socketmap I/O, request
 *                      deadlines (reuse of decisions and shared lookups
 *                      are the core context's: danests_decide_async)
 *   collect.c          the TLSRPT collector (tlsrpt_socket): Postfix
 *                      >= 3.10's libtlsrpt datagrams into the cache
 *   tlsrpt_dgram.c     the datagram parser (also unit-tested, fuzzed)
 *   metrics.c          metrics_listen: counters served to Prometheus
 *
 * One process, one libevent loop shared with the core (getdns and curl
 * run on it).
 */
#ifndef DANESTS_POSTFIX_H
#define DANESTS_POSTFIX_H

#include "danests.h"
#include "daemon.h"
#include "pfmap.h"

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <syslog.h>
#include <time.h>

#define PF_NAME		"danests-postfix"
#define MAX_LISTEN	8
#define MAX_PROFILES	16
/* A request must be complete this many seconds after its first byte
 * (Postfix writes one in a single write); bytes do not extend it. */
#define PF_REQUEST_READ_S	10
/* Descriptors kept free of clients for the resolver, fetches, the cache
 * and the log. */
#define PF_FD_RESERVE	128

/* Settings of the daemon itself; the rest go to the core. */
struct conf {
	char *listen[MAX_LISTEN];
	size_t nlisten;
	struct dmn_conf_user user;
	char pidfile[PATH_MAX];
	unsigned lookup_timeout_ms;	/* bound on one request */
	unsigned max_clients;
	unsigned idle_timeout_s;
	unsigned refresh_interval_s;	/* 0: no refresh timer */
	unsigned refresh_window_s;
	unsigned refresh_parallel;
	unsigned unix_mode;
	char tlsrpt_socket[108];	/* "" when off; sun_path */
	unsigned tlsrpt_mode;
	char metrics_listen[DMN_SPEC_MAX];	/* "" when off */
	bool verbose;
	bool log_stderr;
	struct pfmap_profile profiles[MAX_PROFILES];
	size_t nprofiles;
	struct danests_config *core;
};

/* danests-postfix.c */
extern struct conf *conf;		/* the configuration in force */
struct conf *conf_load(char *why, size_t whylen);
void conf_free(struct conf *);
const struct pfmap_profile *profile_find(const char *name);

/* server.c */
extern struct event_base *base;
extern struct danests_ctx *ctx;		/* decisions are asked of it */
extern unsigned long n_requests, n_resolutions;
/* server_check - what the start would fail on besides the configuration:
 * listen specs, the user, directories of the socket and pid files */
bool server_check(const struct conf *, char *why, size_t whylen);
/* server_run - bind, drop privileges, serve until SIGTERM; exit status */
int server_run(bool foreground);

/* collect.c */
struct collect_stats {
	unsigned long datagrams;	/* received */
	unsigned long sessions;		/* results recorded */
	unsigned long oversized;	/* dropped unread */
	unsigned long malformed;	/* dropped, refused whole */
	unsigned long unrecorded;	/* results the cache did not take */
	unsigned long extra_details;	/* failure details not recorded */
};
extern struct collect_stats collect_stats;
/* collect_bind - bind tlsrpt_socket, if set (as root, before the drop) */
bool collect_bind(const struct conf *, char *why, size_t whylen);
/* collect_start - read it on the loop; collect_stop - close, remove */
bool collect_start(struct event_base *);
void collect_stop(void);

/* metrics.c */
extern struct danests_metrics *pf_metrics;	/* every context counts here */
bool metrics_init(void);
void metrics_free(void);
/* metrics_reply - count a socketmap reply payload by type */
void metrics_reply(const char *payload);
/* the metrics listener (core/daemon) and what it serves */
extern struct dmn_http_listener metrics_listener;
void metrics_fill(void *arg, struct danests_expo *);

/* conn.c */
void conn_accept(int fd, void *arg);	/* a dmn_accept_fn */
bool conn_room(void *arg);		/* a dmn_room_fn */
void conn_sweep(void);			/* once a second */
void conn_close_all(void);
size_t conn_count(void);

#endif /* DANESTS_POSTFIX_H */
