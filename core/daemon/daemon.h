/*
 * daemon.h - what danests-postfix and danests-relay share as daemons:
 * the command line (filter-danests takes it too), listen specifications
 * and binding, the privilege drop, the pid file, logging, the descriptor
 * limit, an accept loop that pauses when descriptors run out, the
 * signals that reload and stop, the configuration keys every daemon has
 * (user), its -n check, the contexts a reload retires, the metrics
 * listener (http.c) and the push of a fleet's report counts (push.c).
 *
 * A small static library over libdanests, linked into the adapters'
 * programs only; libdanests knows nothing of it.  Every function runs on
 * the daemon's main thread except dmn_log, which any thread may call.
 */
#ifndef DANESTS_DAEMON_H
#define DANESTS_DAEMON_H

#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>

#include <limits.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

struct event_base;

#define DMN_SPEC_MAX	256
#define DMN_USER_MAX	64

/*
 * The command line, alike for every program of an adapter: -c FILE, -n,
 * -h and, where "dhn" allows it, -d.  dmn_options prints usage (the
 * program's own text) and exits 0 for -h, 64 for anything else it does
 * not take, including arguments left over.
 */
struct dmn_opts {
	const char *config;	/* -c FILE, else the default passed in */
	bool check;		/* -n: check the configuration, exit */
	bool foreground;	/* -d: foreground, log to stderr */
};
void dmn_options(int argc, char **argv, bool daemon, const char *usage,
    struct dmn_opts *o);

/*
 * The configuration keys every daemon has, and its -n (conf.c).  The
 * user key keeps where it was set, so that -n names the line.
 */
struct danests_config;
struct danests_ctx;

struct dmn_conf_user {
	char name[DMN_USER_MAX];	/* default DANESTS_DEFAULT_USER */
	char at[PATH_MAX + 16];		/* "FILE:LINE" of the key, or "" */
};
void dmn_conf_user_default(struct dmn_conf_user *u);
/* dmn_conf_user - the value of a `user` key read at file:line */
bool dmn_conf_user(struct dmn_conf_user *u, const char *val, const char *file,
    unsigned line, char *why, size_t whylen);
/* dmn_conf_dir - -n: the directory that is to hold file (a socket, set
 * by key value) exists; else false, said on stderr after "name: path: " */
bool dmn_conf_dir(const char *name, const char *path, const char *key,
    const char *value, const char *file);
/* dmn_conf_check - -n once the file was read: the directory of each unix
 * listen spec exists, the core settings work as the service user
 * (danests_config_check_as), then the program's own check (check may be
 * NULL).  Errors go to stderr after "name: ", a note of the core check
 * too.  0, or 78 (EX_CONFIG). */
typedef bool dmn_check_fn(void *arg, char *why, size_t whylen);
int dmn_conf_check(const char *name, const char *path,
    const struct danests_config *core, const char *const *listen,
    size_t nlisten, const struct dmn_conf_user *u, dmn_check_fn *check,
    void *arg);

/*
 * Contexts of earlier configurations (retire.c).  A reload makes a new
 * core context; the one it replaces still has lookups in flight whose
 * callbacks use it, so it is kept on a list and freed once it has no
 * request pending (danests_ctx_pending), never before.  dmn_ctx_reap
 * runs from a timer of the daemon; dmn_ctx_retire_all at exit.
 */
struct dmn_retired {
	struct dmn_retired_ctx *head;
	size_t n;			/* contexts on the list */
};
/* dmn_ctx_retire - keep ctx until idle; false (ctx left alive, never
 * freed) when the list cannot grow */
bool dmn_ctx_retire(struct dmn_retired *r, struct danests_ctx *ctx);
/* dmn_ctx_reap - free the idle contexts; how many remain */
size_t dmn_ctx_reap(struct dmn_retired *r);
/* dmn_ctx_retire_all - free every context (their pending requests get
 * "cancelled"), at exit */
void dmn_ctx_retire_all(struct dmn_retired *r);

/*
 * Logging: syslog (mail facility), or stderr with a time stamp (-d);
 * when stderr is systemd's journal ($JOURNAL_STREAM names it), each line
 * is the message with an sd-daemon "<N>" priority prefix instead, since
 * the journal adds time, name and pid itself.
 */
void dmn_log_open(const char *name, bool to_stderr, bool verbose);
void dmn_log_set(bool to_stderr, bool verbose);
bool dmn_log_verbose(void);
void dmn_log(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void dmn_vlog(int prio, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));

/*
 * Listen specifications: "unix:PATH", "inet:ADDR:PORT", "inet:[V6]:PORT";
 * a bare "ADDR:PORT" reads as inet.  ADDR is a numeric address.
 */
struct dmn_listen {
	char spec[DMN_SPEC_MAX];	/* as given */
	struct sockaddr_storage ss;
	socklen_t sslen;
	bool is_unix;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int fd;				/* -1 until bound */
	dev_t dev;			/* the socket file we created */
	ino_t ino;
	struct timespec ctim;		/* inode numbers are reused */
};

/* dmn_listen_parse - check and split spec; false with why set (what is
 * wrong, without the spec: callers name it) */
bool dmn_listen_parse(const char *spec, struct dmn_listen *l, char *why,
    size_t whylen);
/* dmn_listen_bind - bind and listen (non-blocking, close-on-exec).  A unix
 * path is replaced only when it is a socket nobody listens on; any other
 * file there is refused.  The socket file gets unix_mode. */
bool dmn_listen_bind(struct dmn_listen *l, unsigned unix_mode, char *why,
    size_t whylen);
/* dmn_dgram_bind - dmn_listen_bind for a unix datagram socket (no
 * listen): the path is replaced only when it is a datagram socket nobody
 * has bound */
bool dmn_dgram_bind(struct dmn_listen *l, unsigned unix_mode, char *why,
    size_t whylen);
/* dmn_listen_close - close; remove the socket file if it is still ours */
void dmn_listen_close(struct dmn_listen *l);

/*
 * Privileges.  A daemon started as root always becomes its service user
 * (never root); one started as another user stays that user.
 */
struct dmn_user {
	char name[DMN_USER_MAX];
	uid_t uid;
	gid_t gid;
};

/* dmn_user_lookup - resolve name; root (uid 0) is refused */
bool dmn_user_lookup(const char *name, struct dmn_user *u, char *why,
    size_t whylen);
/* dmn_will_drop - true when this process runs as root and must drop */
bool dmn_will_drop(void);
/* dmn_dir_writable - may u create and remove files in the directory that
 * holds path (so that it removes its socket or pid file at exit)? */
bool dmn_dir_writable(const char *path, const struct dmn_user *u, char *why,
    size_t whylen);
/* dmn_drop - become u (supplementary groups, group, user) and verify that
 * root cannot be regained; a no-op when not running as root */
bool dmn_drop(const struct dmn_user *u, char *why, size_t whylen);

/* dmn_pidfile_write - write our pid to path (after the drop: the file and
 * its directory belong to the service user); removed by
 * dmn_pidfile_remove at exit. */
bool dmn_pidfile_write(const char *path, char *why, size_t whylen);
void dmn_pidfile_remove(void);

/*
 * Descriptors.  dmn_nofile_fit raises the soft RLIMIT_NOFILE to the hard
 * limit and returns how many clients fit when each needs per_client
 * descriptors and reserve stay free for everything else (at least 1);
 * lowering want is logged.
 */
unsigned dmn_nofile_fit(unsigned want, unsigned per_client, unsigned reserve,
    const char *what);

/*
 * An accept loop on a listening socket.  cb gets each new client (a
 * non-blocking, close-on-exec descriptor it owns).  When accept fails for
 * want of descriptors or memory (EMFILE, ENFILE, ENOBUFS, ENOMEM) the
 * listener pauses for DMN_ACCEPT_PAUSE_MS and logs once per pause, so a
 * full descriptor table never makes the loop spin.
 */
#define DMN_ACCEPT_PAUSE_MS	1000
/*
 * room, when not NULL, is asked before each accept whether a client can
 * be taken (it may make room, e.g. by closing an idle one).  When it says
 * no, the listener stops for DMN_FULL_PAUSE_MS and the waiting clients
 * stay in the kernel's listen queue, as with a server whose process limit
 * is reached: they are served late, never closed unanswered.
 */
#define DMN_FULL_PAUSE_MS	200
struct dmn_acceptor;
typedef void dmn_accept_fn(int fd, void *arg);
typedef bool dmn_room_fn(void *arg);
struct dmn_acceptor *dmn_acceptor_new(struct event_base *base, int fd,
    dmn_accept_fn *cb, dmn_room_fn *room, void *arg);
void dmn_acceptor_free(struct dmn_acceptor *);	/* does not close fd */
/* dmn_acceptor_pauses - accept pauses for want of descriptors so far */
unsigned long dmn_acceptor_pauses(const struct dmn_acceptor *);
/* dmn_acceptor_full - pauses because room said no, so far */
unsigned long dmn_acceptor_full(const struct dmn_acceptor *);

/*
 * Signals on the event loop: SIGHUP calls reload, SIGTERM and SIGINT call
 * stop with the signal number; SIGPIPE is ignored.
 */
struct dmn_signals;
struct dmn_signals *dmn_signals_new(struct event_base *base,
    void (*reload)(void *), void (*stop)(int sig, void *), void *arg);
void dmn_signals_free(struct dmn_signals *);

/*
 * The metrics listener (http.c): GET /metrics answered with what fill
 * writes (the Prometheus text exposition format), over a minimal strict
 * HTTP/1.0 and 1.1 server on the daemon's loop.  One request per
 * connection; the request line and header fields at most
 * DMN_HTTP_REQ_MAX bytes; the exchange bounded by DMN_HTTP_DEADLINE_S
 * seconds from the accept; at most DMN_HTTP_CLIENTS_MAX clients at once
 * (the others wait in the listen queue); at most DMN_HTTP_BODY_MAX bytes
 * of text, else 500.
 */
#define DMN_HTTP_REQ_MAX	8192
#define DMN_HTTP_DEADLINE_S	5
#define DMN_HTTP_CLIENTS_MAX	4
#define DMN_HTTP_BODY_MAX	(256 * 1024)
struct danests_expo;
struct dmn_http;
typedef void dmn_http_fill_fn(void *arg, struct danests_expo *);
/* dmn_http_parse - read the request in b (len bytes so far), for the
 * resource path: 0 while it is incomplete, else the status to answer:
 * 200 (GET or HEAD of path; *head for HEAD), 400 (malformed: bare LF,
 * NUL, folding, space before a colon, a body, a missing or second Host
 * in HTTP/1.1), 404 (another path), 405 (another method), 431 (no end
 * within DMN_HTTP_REQ_MAX bytes), 505 (not HTTP/1.0 or 1.1).  Pure. */
int dmn_http_parse(const char *b, size_t len, const char *path, bool *head);
/* dmn_http_new - serve on the bound listening socket fd (not taken) */
struct dmn_http *dmn_http_new(struct event_base *base, int fd,
    dmn_http_fill_fn *fill, void *arg);
/* dmn_http_free - stop, close every client (not fd) */
void dmn_http_free(struct dmn_http *);
/* dmn_http_loopback - does l listen on a loopback address only? */
bool dmn_http_loopback(const struct dmn_listen *l);

/*
 * The metrics listener of a daemon: the value of its metrics_listen key
 * ("none", or inet:ADDR:PORT / inet:[ADDR]:PORT; no unix sockets: the
 * metrics are scraped over TCP), the socket bound before the privilege
 * drop, served on the loop with fill, closed at reload or exit.
 */
struct dmn_http_listener {
	struct dmn_listen sock;
	struct dmn_http *http;
};
#define DMN_HTTP_LISTENER_INIT	{ .sock = { .fd = -1 }, .http = NULL }
/* dmn_conf_metrics_listen - check val, copy it into dst ("" for none) */
bool dmn_conf_metrics_listen(const char *val, char *dst, size_t dstlen,
    char *why, size_t whylen);
/* dmn_http_listener_bind - bind spec, if not "" */
bool dmn_http_listener_bind(struct dmn_http_listener *, const char *spec,
    char *why, size_t whylen);
/* dmn_http_listener_start - serve what was bound (logged) */
bool dmn_http_listener_start(struct dmn_http_listener *,
    struct event_base *, dmn_http_fill_fn *fill, void *arg);
/* dmn_http_listener_stop - close the listener and its clients */
void dmn_http_listener_stop(struct dmn_http_listener *);

/*
 * A fleet (push.c): the node's TLS-report counts written to the shared
 * store every store_push_interval seconds on the loop
 * (danests_ctx_report_push; nothing without a store, a cache or
 * tls_reports), with the context get returns at each tick (NULL: none
 * now).  dmn_push_now pushes at once (at exit, after the last counts were
 * recorded); each call blocks the loop at most the store's bounds.
 */
struct dmn_push;
typedef struct danests_ctx *dmn_push_ctx_fn(void *arg);
struct dmn_push *dmn_push_new(struct event_base *base, dmn_push_ctx_fn *get,
    void *arg);
void dmn_push_now(struct dmn_push *);
void dmn_push_free(struct dmn_push *);

#endif /* DANESTS_DAEMON_H */
