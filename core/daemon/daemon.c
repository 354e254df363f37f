/*
 * daemon.c - listen specs, binding, privileges, pid file, logging,
 * descriptor limit, accept loop and signals of the danests daemons
 * (see daemon.h).
 */
#include "daemon.h"

#include "danests.h"

#include <sys/resource.h>
#include <sys/stat.h>

#include <arpa/inet.h>
#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <grp.h>
#include <libgen.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

static const char *log_name = "danests";
static bool log_stderr;
static bool log_journal;	/* stderr is systemd's journal stream */
static bool log_debug;

/* stderr_is_journal - does $JOURNAL_STREAM ("DEV:INODE", set by systemd
 * for a unit's stderr) name the descriptor we write to?  Then the journal
 * adds the time, name and pid itself, and takes the priority from a
 * "<N>" prefix (sd-daemon(3)). */
static bool
stderr_is_journal(void)
{
	const char *js = getenv("JOURNAL_STREAM");
	unsigned long long dev, ino;
	struct stat st;
	char tail;

	if (js == NULL || sscanf(js, "%llu:%llu%c", &dev, &ino, &tail) != 2)
		return false;
	if (fstat(STDERR_FILENO, &st) != 0)
		return false;
	return (unsigned long long)st.st_dev == dev &&
	    (unsigned long long)st.st_ino == ino;
}

/* core_log - the library's notes (danests_set_log) go to this log */
static void
core_log(int prio, const char *line)
{
	dmn_log(prio, "%s", line);
}

/* dmn_log_open - name the log; syslog is opened unless to_stderr */
void
dmn_log_open(const char *name, bool to_stderr, bool verbose)
{
	log_name = name;
	openlog(name, LOG_PID | LOG_NDELAY, LOG_MAIL);
	dmn_log_set(to_stderr, verbose);
	danests_set_log(core_log);
}

/* dmn_log_set - switch destination and verbosity (at reload) */
void
dmn_log_set(bool to_stderr, bool verbose)
{
	log_stderr = to_stderr;
	log_journal = to_stderr && stderr_is_journal();
	log_debug = verbose;
}

/* dmn_log_verbose - are LOG_DEBUG messages written? */
bool
dmn_log_verbose(void)
{
	return log_debug;
}

/* dmn_vlog - one message; one write per line, so threads do not mix */
void
dmn_vlog(int prio, const char *fmt, va_list ap)
{
	char line[2048], ts[32];
	struct tm tm;
	time_t now;
	int n;

	if (prio == LOG_DEBUG && !log_debug)
		return;
	if (!log_stderr) {
		vsyslog(prio, fmt, ap);
		return;
	}
	if (log_journal)
		n = snprintf(line, sizeof(line), "<%d>", prio & LOG_PRIMASK);
	else {
		now = time(NULL);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S",
		    localtime_r(&now, &tm));
		n = snprintf(line, sizeof(line), "%s %s[%ld]: ", ts,
		    log_name, (long)getpid());
	}
	if (n < 0 || (size_t)n >= sizeof(line))
		n = 0;
	(void)vsnprintf(line + n, sizeof(line) - (size_t)n - 1, fmt, ap);
	n = (int)strlen(line);
	line[n++] = '\n';
	line[n] = '\0';
	fputs(line, stderr);
}

/* dmn_log - printf-like dmn_vlog */
void
dmn_log(int prio, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	dmn_vlog(prio, fmt, ap);
	va_end(ap);
}

/*
 * Listen specs and binding
 */

/* parse_port - decimal 1..65535 */
static bool
parse_port(const char *s, in_port_t *port)
{
	unsigned long long v;

	if (!danests_parse_uint(s, 1, 65535, &v))
		return false;
	*port = htons((in_port_t)v);
	return true;
}

/* dmn_listen_parse - see daemon.h */
bool
dmn_listen_parse(const char *spec, struct dmn_listen *l, char *why,
    size_t whylen)
{
	struct sockaddr_in *s4 = (struct sockaddr_in *)&l->ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&l->ss;
	struct sockaddr_un *su = (struct sockaddr_un *)&l->ss;
	char host[INET6_ADDRSTRLEN + 2];
	const char *a, *colon;
	size_t hl;

	memset(l, 0, sizeof(*l));
	l->fd = -1;
	if (strlcpy(l->spec, spec, sizeof(l->spec)) >= sizeof(l->spec)) {
		snprintf(why, whylen, "longer than %zu bytes",
		    sizeof(l->spec) - 1);
		return false;
	}
	if (strncmp(spec, "unix:", 5) == 0) {
		if (spec[5] != '/' || strlcpy(l->path, spec + 5,
		    sizeof(l->path)) >= sizeof(l->path)) {
			snprintf(why, whylen, "expected unix:/PATH (absolute, "
			    "at most %zu bytes)", sizeof(l->path) - 1);
			return false;
		}
		su->sun_family = AF_UNIX;
		memcpy(su->sun_path, l->path, sizeof(l->path));
		l->sslen = sizeof(*su);
		l->is_unix = true;
		return true;
	}
	a = strncmp(spec, "inet:", 5) == 0 ? spec + 5 : spec;
	if ((colon = strrchr(a, ':')) == NULL || !parse_port(colon + 1,
	    &s4->sin_port)) {
		snprintf(why, whylen, "expected inet:ADDR:PORT, "
		    "inet:[ADDR]:PORT or unix:/PATH");
		return false;
	}
	hl = (size_t)(colon - a);
	if (hl >= 2 && a[0] == '[' && a[hl - 1] == ']') {
		a++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		snprintf(why, whylen, "expected inet:ADDR:PORT, "
		    "inet:[ADDR]:PORT or unix:/PATH");
		return false;
	}
	memcpy(host, a, hl);
	host[hl] = '\0';
	if (inet_pton(AF_INET, host, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		l->sslen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, host, &s6->sin6_addr) == 1) {
		/* sin_port and sin6_port share their offset */
		s6->sin6_family = AF_INET6;
		l->sslen = sizeof(*s6);
	} else {
		snprintf(why, whylen, "%s is not a numeric IP address", host);
		return false;
	}
	return true;
}

/* unix_prepare - the path is free, or holds a socket of type nobody
 * listens on (left by a crash), which is removed; anything else is
 * refused */
static bool
unix_prepare(struct dmn_listen *l, int type, char *why, size_t whylen)
{
	struct stat st;
	int fd, rc;

	if (lstat(l->path, &st) != 0) {
		if (errno == ENOENT)
			return true;
		snprintf(why, whylen, "unix:%s: %s", l->path, strerror(errno));
		return false;
	}
	if (!S_ISSOCK(st.st_mode)) {
		snprintf(why, whylen, "unix:%s: exists and is not a socket; "
		    "not removing it", l->path);
		return false;
	}
	if ((fd = socket(AF_UNIX, type | SOCK_CLOEXEC, 0)) < 0) {
		snprintf(why, whylen, "socket: %s", strerror(errno));
		return false;
	}
	rc = connect(fd, (struct sockaddr *)&l->ss, l->sslen);
	close(fd);
	if (rc == 0) {
		snprintf(why, whylen, "unix:%s: another process listens there",
		    l->path);
		return false;
	}
	if (unlink(l->path) != 0 && errno != ENOENT) {
		snprintf(why, whylen, "unix:%s: cannot remove the old socket: "
		    "%s", l->path, strerror(errno));
		return false;
	}
	return true;
}

/* listen_bind - dmn_listen_bind and dmn_dgram_bind */
static bool
listen_bind(struct dmn_listen *l, int type, unsigned unix_mode, char *why,
    size_t whylen)
{
	struct stat st;
	mode_t old;
	int fd, on = 1, rc;

	if (l->is_unix && !unix_prepare(l, type, why, whylen))
		return false;
	if ((fd = socket(l->ss.ss_family, type | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) < 0) {
		snprintf(why, whylen, "%s: socket: %s", l->spec,
		    strerror(errno));
		return false;
	}
	if (!l->is_unix && setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on,
	    sizeof(on)) != 0) {
		snprintf(why, whylen, "%s: %s", l->spec, strerror(errno));
		close(fd);
		return false;
	}
	/* no moment where the socket file is more open than unix_mode */
	old = umask(0177);
	rc = bind(fd, (struct sockaddr *)&l->ss, l->sslen);
	umask(old);
	if (rc != 0) {
		snprintf(why, whylen, "%s: %s", l->spec, strerror(errno));
		close(fd);
		return false;
	}
	if (l->is_unix && (chmod(l->path, unix_mode & 0777) != 0 ||
	    lstat(l->path, &st) != 0)) {
		snprintf(why, whylen, "%s: %s", l->spec, strerror(errno));
		(void)unlink(l->path);
		close(fd);
		return false;
	}
	if (type == SOCK_STREAM && listen(fd, 1024) != 0) {
		snprintf(why, whylen, "%s: listen: %s", l->spec,
		    strerror(errno));
		if (l->is_unix)
			(void)unlink(l->path);
		close(fd);
		return false;
	}
	if (l->is_unix) {
		l->dev = st.st_dev;
		l->ino = st.st_ino;
		l->ctim = st.st_ctim;
	}
	l->fd = fd;
	return true;
}

/* dmn_listen_bind - see daemon.h */
bool
dmn_listen_bind(struct dmn_listen *l, unsigned unix_mode, char *why,
    size_t whylen)
{
	return listen_bind(l, SOCK_STREAM, unix_mode, why, whylen);
}

/* dmn_dgram_bind - see daemon.h */
bool
dmn_dgram_bind(struct dmn_listen *l, unsigned unix_mode, char *why,
    size_t whylen)
{
	if (!l->is_unix) {
		snprintf(why, whylen, "%s: not a unix socket", l->spec);
		return false;
	}
	return listen_bind(l, SOCK_DGRAM, unix_mode, why, whylen);
}

/* dmn_listen_close - see daemon.h */
void
dmn_listen_close(struct dmn_listen *l)
{
	struct stat st;

	if (l->fd < 0)
		return;
	close(l->fd);
	l->fd = -1;
	if (!l->is_unix)
		return;
	/* only the file we created: a later instance may own the path */
	if (lstat(l->path, &st) == 0 && S_ISSOCK(st.st_mode) &&
	    st.st_dev == l->dev && st.st_ino == l->ino &&
	    st.st_ctim.tv_sec == l->ctim.tv_sec &&
	    st.st_ctim.tv_nsec == l->ctim.tv_nsec && unlink(l->path) != 0)
		dmn_log(LOG_WARNING, "unix:%s: cannot remove the socket: %s",
		    l->path, strerror(errno));
}

/*
 * Privileges and pid file
 */

/* dmn_user_lookup - see daemon.h */
bool
dmn_user_lookup(const char *name, struct dmn_user *u, char *why,
    size_t whylen)
{
	struct passwd *pw;

	memset(u, 0, sizeof(*u));
	if (*name == '\0' || strlcpy(u->name, name, sizeof(u->name)) >=
	    sizeof(u->name)) {
		snprintf(why, whylen, "user: empty or longer than %zu bytes",
		    sizeof(u->name) - 1);
		return false;
	}
	errno = 0;
	if ((pw = getpwnam(name)) == NULL) {
		snprintf(why, whylen, "user %s does not exist%s%s", name,
		    errno != 0 ? ": " : " (create it, see the manual page)",
		    errno != 0 ? strerror(errno) : "");
		return false;
	}
	if (pw->pw_uid == 0 || pw->pw_gid == 0) {
		snprintf(why, whylen, "user %s: the daemon does not run as "
		    "root or with group root", name);
		return false;
	}
	u->uid = pw->pw_uid;
	u->gid = pw->pw_gid;
	return true;
}

/* dmn_will_drop - see daemon.h */
bool
dmn_will_drop(void)
{
	return geteuid() == 0 || getuid() == 0;
}

/* in_group - is gid one of u's groups? */
static bool
in_group(const struct dmn_user *u, gid_t gid)
{
	gid_t groups[256];
	int n = (int)(sizeof(groups) / sizeof(groups[0])), i;

	if (gid == u->gid)
		return true;
	if (getgrouplist(u->name, u->gid, groups, &n) < 0)
		return false;	/* too many: judge by the primary group */
	for (i = 0; i < n; i++)
		if (groups[i] == gid)
			return true;
	return false;
}

/* dmn_dir_writable - see daemon.h */
bool
dmn_dir_writable(const char *path, const struct dmn_user *u, char *why,
    size_t whylen)
{
	char buf[PATH_MAX], *dir;
	struct stat st;
	mode_t need;

	if (strlcpy(buf, path, sizeof(buf)) >= sizeof(buf)) {
		snprintf(why, whylen, "%s: path too long", path);
		return false;
	}
	dir = dirname(buf);
	if (stat(dir, &st) != 0) {
		snprintf(why, whylen, "%s: %s", dir, strerror(errno));
		return false;
	}
	if (st.st_uid == u->uid)
		need = S_IWUSR | S_IXUSR;
	else if (in_group(u, st.st_gid))
		need = S_IWGRP | S_IXGRP;
	else
		need = S_IWOTH | S_IXOTH;
	if ((st.st_mode & need) != need) {
		snprintf(why, whylen, "%s: directory not writable by user %s, "
		    "who could not remove %s at exit (make %s its owner)",
		    dir, u->name, path, u->name);
		return false;
	}
	return true;
}

/* dmn_drop - see daemon.h */
bool
dmn_drop(const struct dmn_user *u, char *why, size_t whylen)
{
	uid_t ru, eu, su;
	gid_t rg, eg, sg;

	if (!dmn_will_drop())
		return true;
	if (initgroups(u->name, u->gid) != 0 ||
	    setresgid(u->gid, u->gid, u->gid) != 0 ||
	    setresuid(u->uid, u->uid, u->uid) != 0) {
		snprintf(why, whylen, "cannot become %s: %s", u->name,
		    strerror(errno));
		return false;
	}
	if (getresuid(&ru, &eu, &su) != 0 || getresgid(&rg, &eg, &sg) != 0 ||
	    ru != u->uid || eu != u->uid || su != u->uid || rg != u->gid ||
	    eg != u->gid || sg != u->gid) {
		snprintf(why, whylen, "becoming %s did not take", u->name);
		return false;
	}
	if (setuid(0) == 0 || seteuid(0) == 0 || setgid(0) == 0) {
		snprintf(why, whylen, "could regain root after becoming %s",
		    u->name);
		return false;
	}
	return true;
}

static char pid_path[PATH_MAX];

/* dmn_pidfile_write - see daemon.h */
bool
dmn_pidfile_write(const char *path, char *why, size_t whylen)
{
	char buf[32];
	int fd, n;

	if (strlcpy(pid_path, path, sizeof(pid_path)) >= sizeof(pid_path)) {
		snprintf(why, whylen, "pidfile: path too long");
		pid_path[0] = '\0';
		return false;
	}
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC,
	    0644);
	if (fd < 0) {
		snprintf(why, whylen, "pidfile %s: %s", path, strerror(errno));
		pid_path[0] = '\0';
		return false;
	}
	n = snprintf(buf, sizeof(buf), "%ld\n", (long)getpid());
	if (write(fd, buf, (size_t)n) != n) {
		snprintf(why, whylen, "pidfile %s: %s", path, strerror(errno));
		close(fd);
		(void)unlink(path);
		pid_path[0] = '\0';
		return false;
	}
	close(fd);
	return true;
}

/* dmn_pidfile_remove - remove the pid file written, if any */
void
dmn_pidfile_remove(void)
{
	if (pid_path[0] != '\0' && unlink(pid_path) != 0 && errno != ENOENT)
		dmn_log(LOG_WARNING, "pidfile %s: cannot remove: %s", pid_path,
		    strerror(errno));
	pid_path[0] = '\0';
}

/*
 * Descriptors
 */

/* dmn_nofile_fit - see daemon.h */
unsigned
dmn_nofile_fit(unsigned want, unsigned per_client, unsigned reserve,
    const char *what)
{
	struct rlimit rl;
	rlim_t cur, fit;

	if (getrlimit(RLIMIT_NOFILE, &rl) != 0)
		return want;
	if (rl.rlim_cur < rl.rlim_max) {
		struct rlimit nrl = rl;

		/* RLIM_INFINITY is not accepted for descriptors */
		nrl.rlim_cur = rl.rlim_max > (rlim_t)1 << 20 ?
		    (rlim_t)1 << 20 : rl.rlim_max;
		if (nrl.rlim_cur > rl.rlim_cur && setrlimit(RLIMIT_NOFILE,
		    &nrl) == 0)
			rl = nrl;
	}
	cur = rl.rlim_cur;
	if (per_client == 0)
		per_client = 1;
	fit = cur > reserve ? (cur - reserve) / per_client : 0;
	if (fit < 1)
		fit = 1;
	if ((rlim_t)want <= fit)
		return want;
	dmn_log(LOG_WARNING, "%s lowered from %u to %lu to fit the descriptor "
	    "limit %lu (raise LimitNOFILE or ulimit -n)", what, want,
	    (unsigned long)fit, (unsigned long)cur);
	return (unsigned)fit;
}

/*
 * Accept loop
 */

struct dmn_acceptor {
	struct event *ev, *pause;
	int fd;
	dmn_accept_fn *cb;
	dmn_room_fn *room;
	void *arg;
	bool paused;
	unsigned long pauses, full;
};

/* resume_cb - the pause is over: accept again */
static void
resume_cb(evutil_socket_t fd, short what, void *arg)
{
	struct dmn_acceptor *a = arg;

	(void)fd;
	(void)what;
	a->paused = false;
	(void)event_add(a->ev, NULL);
}

/* pause_for - stop accepting for ms milliseconds */
static void
pause_for(struct dmn_acceptor *a, long ms)
{
	struct timeval tv;

	a->paused = true;
	(void)event_del(a->ev);
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	if (evtimer_add(a->pause, &tv) != 0)
		(void)event_add(a->ev, NULL);	/* cannot happen */
}

/* accept_cb - take what is waiting, at most a batch per loop turn */
static void
accept_cb(evutil_socket_t lfd, short what, void *arg)
{
	struct dmn_acceptor *a = arg;
	int fd, i, err;

	(void)what;
	for (i = 0; i < 64; i++) {
		if (a->room != NULL && !a->room(a->arg)) {
			/* clients wait in the listen queue, not closed */
			if (a->full++ % 1000 == 0)
				dmn_log(LOG_WARNING, "no room for a new "
				    "client: not accepting for %d ms (%lu "
				    "so far)", DMN_FULL_PAUSE_MS, a->full);
			pause_for(a, DMN_FULL_PAUSE_MS);
			return;
		}
		fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd >= 0) {
			a->cb(fd, a->arg);
			continue;
		}
		err = errno;
		if (err == EAGAIN || err == EWOULDBLOCK)
			return;
		if (err == EINTR || err == ECONNABORTED || err == EPROTO)
			continue;
		/* EMFILE, ENFILE, ENOBUFS, ENOMEM or worse: the socket stays
		 * readable, so only a pause keeps the loop from spinning */
		a->pauses++;
		pause_for(a, DMN_ACCEPT_PAUSE_MS);
		dmn_log(LOG_WARNING, "accept: %s; not accepting for %d ms "
		    "(pause %lu)", strerror(err), DMN_ACCEPT_PAUSE_MS,
		    a->pauses);
		return;
	}
}

/* dmn_acceptor_new - see daemon.h */
struct dmn_acceptor *
dmn_acceptor_new(struct event_base *base, int fd, dmn_accept_fn *cb,
    dmn_room_fn *room, void *arg)
{
	struct dmn_acceptor *a;

	if ((a = calloc(1, sizeof(*a))) == NULL)
		return NULL;
	a->fd = fd;
	a->cb = cb;
	a->room = room;
	a->arg = arg;
	if ((a->ev = event_new(base, fd, EV_READ | EV_PERSIST, accept_cb,
	    a)) == NULL || (a->pause = evtimer_new(base, resume_cb, a)) ==
	    NULL || event_add(a->ev, NULL) != 0) {
		dmn_acceptor_free(a);
		return NULL;
	}
	return a;
}

/* dmn_acceptor_free - stop accepting */
void
dmn_acceptor_free(struct dmn_acceptor *a)
{
	if (a == NULL)
		return;
	if (a->ev != NULL)
		event_free(a->ev);
	if (a->pause != NULL)
		event_free(a->pause);
	free(a);
}

/* dmn_acceptor_pauses - see daemon.h */
unsigned long
dmn_acceptor_pauses(const struct dmn_acceptor *a)
{
	return a->pauses;
}

/* dmn_acceptor_full - see daemon.h */
unsigned long
dmn_acceptor_full(const struct dmn_acceptor *a)
{
	return a->full;
}

/*
 * Signals
 */

struct dmn_signals {
	struct event *ev[3];
	void (*reload)(void *);
	void (*stop)(int, void *);
	void *arg;
};

/* signal_cb - dispatch one signal */
static void
signal_cb(evutil_socket_t sig, short what, void *arg)
{
	struct dmn_signals *s = arg;

	(void)what;
	if (sig == SIGHUP)
		s->reload(s->arg);
	else
		s->stop((int)sig, s->arg);
}

/* dmn_signals_new - see daemon.h */
struct dmn_signals *
dmn_signals_new(struct event_base *base, void (*reload)(void *),
    void (*stop)(int, void *), void *arg)
{
	static const int sigs[3] = { SIGHUP, SIGTERM, SIGINT };
	struct dmn_signals *s;
	size_t i;

	(void)signal(SIGPIPE, SIG_IGN);
	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->reload = reload;
	s->stop = stop;
	s->arg = arg;
	for (i = 0; i < 3; i++)
		if ((s->ev[i] = evsignal_new(base, sigs[i], signal_cb, s)) ==
		    NULL || evsignal_add(s->ev[i], NULL) != 0) {
			dmn_signals_free(s);
			return NULL;
		}
	return s;
}

/* dmn_signals_free - restore default handling */
void
dmn_signals_free(struct dmn_signals *s)
{
	size_t i;

	if (s == NULL)
		return;
	for (i = 0; i < 3; i++)
		if (s->ev[i] != NULL)
			event_free(s->ev[i]);
	free(s);
}

/* dmn_usage - the program's usage text, then exit */
static void __attribute__((noreturn))
dmn_usage(const char *usage, int status)
{
	fputs(usage, status == 0 ? stdout : stderr);
	exit(status);
}

/* dmn_options - parse -c FILE, -n, -h and (daemons) -d */
void
dmn_options(int argc, char **argv, bool daemon, const char *usage,
    struct dmn_opts *o)
{
	int c;

	while ((c = getopt(argc, argv, daemon ? "c:dhn" : "c:hn")) != -1) {
		switch (c) {
		case 'c':
			o->config = optarg;
			break;
		case 'd':
			o->foreground = true;
			break;
		case 'h':
			dmn_usage(usage, 0);
		case 'n':
			o->check = true;
			break;
		default:
			dmn_usage(usage, 64);
		}
	}
	if (optind != argc)
		dmn_usage(usage, 64);
}
