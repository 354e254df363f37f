/*
 * relay.h - danests-relay: an enforcing LMTP relay for OpenSMTPD.
 *
 * The main thread owns the libevent loop: the listener, signals and the
 * core's decision context (danests_decide_async).  Each LMTP connection is
 * a thread of its own with bounded blocking I/O (session.c); after DATA it
 * delivers each recipient domain in a worker thread with the core's SMTP
 * client (at most max_deliveries over all sessions, threads.c), and asks
 * the main thread for decisions (relay_decide).
 */
#ifndef DANESTS_RELAY_H
#define DANESTS_RELAY_H

#include "danests-smtp.h"
#include "daemon.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#define RELAY_NAME	"danests-relay"
#define RELAY_CONF	"/etc/danests/danests-relay.conf"
/* Descriptors per session (the LMTP socket and a spill file) and kept
 * free for the resolver, fetches, the cache and the log besides the
 * max_deliveries SMTP connections; max_sessions is fitted to the
 * descriptor limit with these. */
#define RELAY_FD_SESSION	2
#define RELAY_FD_RESERVE	128

struct relay_conf {
	char listen[256];	/* HOST:PORT, [V6]:PORT or unix:/path */
	char metrics_listen[DMN_SPEC_MAX];	/* inet:ADDR:PORT, "" off */
	struct dmn_conf_user user;
	char helo[256];		/* our name in LHLO/EHLO replies */
	char tmpdir[256];	/* spill directory for large messages */
	unsigned max_sessions;	/* concurrent LMTP connections */
	unsigned parallel;	/* domains delivered at once per message */
	unsigned max_deliveries;	/* delivery threads over all sessions */
	unsigned max_rcpts;	/* per transaction (RFC 5321 4.5.3.1.8) */
	unsigned long long size_max;	/* SIZE limit (RFC 1870) */
	size_t mem_max;		/* held in memory up to this, then a file */
	unsigned transaction_s;	/* bound from end of DATA to the replies */
	unsigned idle_s;	/* wait for an LMTP command or data line */
	unsigned reply_gap_ms;	/* pause between per-recipient replies */
	bool tls_reports;	/* core key tls_reports: record TLS results */
	struct danests_smtp_opts smtp;
	struct danests_config *core;	/* the core's settings */
};

/* relay.c */
int relay_conf_load(const char *path, struct relay_conf *c, char *why,
    size_t whylen);
void relay_conf_clear(struct relay_conf *c);
/* relay_log - the daemon's log, any thread (dmn_log: syslog, or stderr
 * with -d) */
#define relay_log dmn_log
/* relay_decide - a decision for domain from the main thread's context,
 * waiting at most timeout_ms.  NULL (why set) when none came in time.
 * The caller frees the decision. */
struct danests_decision *relay_decide(const char *domain, unsigned timeout_ms,
    char *why, size_t whylen);
/* relay_tls - a reference to the TLS client context in force; drop it
 * with danests_tls_ctx_free */
struct ssl_ctx_st *relay_tls(void);
/* relay_conf_get - a snapshot of the current configuration (copied; its
 * core pointer is not to be used) */
void relay_conf_get(struct relay_conf *out);
/* relay_ctx - the context in force (main thread only) */
struct danests_ctx *relay_ctx(void);

/* report.c - TLS reporting (RFC 8460) of the relay's sessions */
struct event_base;
int report_init(struct event_base *base);
void report_flush(void);
void report_attempt(const struct danests_decision *d,
    const struct danests_smtp_attempt *a);

/* metrics.c - metrics_listen (danests-relay(8)) */
extern struct danests_metrics *relay_metrics;	/* every context's */
bool metrics_init(void);
/* the metrics listener (core/daemon) and what it serves */
extern struct dmn_http_listener metrics_listener;
void metrics_fill(void *arg, struct danests_expo *);
/* metrics_delivery - one recipient's reply after DATA (any thread) */
void metrics_delivery(int code);
/* metrics_session - one LMTP connection accepted */
void metrics_session(void);

/* session.c */
void session_main(int fd);	/* one connection; closes fd */

/* peer.c - whether the LMTP client has read what the relay wrote */
struct peer {
	int family;		/* AF_UNIX, AF_INET, AF_INET6; 0 unknown */
	bool v4mapped;
	bool unknown;		/* the client's socket is not on this host */
	int nl;			/* NETLINK_SOCK_DIAG, -1 not open */
	unsigned seq;
	struct sockaddr_storage local, remote;
};
void peer_init(struct peer *p, int fd);
void peer_free(struct peer *p);
int peer_read_all(struct peer *p, int fd, uint64_t sent);

/* threads.c */
int threads_init(void);
int threads_session(int fd, unsigned max);
void threads_stop(void);
unsigned threads_reap(void);
void threads_join(void);
int relay_stop_fd(void);
bool relay_stopping(void);
bool relay_slot_get(unsigned max, uint64_t end_ms);
void relay_slot_put(void);

#endif /* DANESTS_RELAY_H */
