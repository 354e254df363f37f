/*
 * test_daemon.c - the daemon support module (core/daemon): listen specs,
 * binding a unix socket safely, removing it at exit, the user checks, the
 * descriptor limit and the accept loop's pause when descriptors run out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/un.h>

#include <errno.h>
#include <event2/event.h>
#include <fcntl.h>
#include <limits.h>
#include <pwd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <unistd.h>

#include "daemon.h"
#include "table.h"

struct spec_row {
	const char *name;	/* the spec */
	bool ok;
	bool is_unix;
	int family;
};

static const struct spec_row specs[] = {
	{ "unix:/run/danests/policy", true, true, AF_UNIX },
	{ "inet:127.0.0.1:8462", true, false, AF_INET },
	{ "127.0.0.1:10026", true, false, AF_INET },
	{ "inet:[::1]:8462", true, false, AF_INET6 },
	{ "[::1]:10026", true, false, AF_INET6 },
	{ "inet:::1:8462", true, false, AF_INET6 },
	{ "unix:relative/path", false, false, 0 },
	{ "unix:", false, false, 0 },
	{ "inet:127.0.0.1", false, false, 0 },
	{ "inet:127.0.0.1:0", false, false, 0 },
	{ "inet:127.0.0.1:65536", false, false, 0 },
	{ "inet:127.0.0.1:80x", false, false, 0 },
	{ "inet:localhost:8462", false, false, 0 },
	{ "inet::8462", false, false, 0 },
	{ "tcp:127.0.0.1:8462", false, false, 0 },
	{ "unix:/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
	  false, false, 0 },
};

static void
test_spec(void **state)
{
	const struct spec_row *r = *state;
	struct dmn_listen l;
	char why[256] = "";

	assert_int_equal(dmn_listen_parse(r->name, &l, why, sizeof(why)),
	    r->ok);
	if (!r->ok) {
		assert_true(why[0] != '\0');
		return;
	}
	assert_int_equal(l.is_unix, r->is_unix);
	assert_int_equal(l.ss.ss_family, r->family);
	assert_int_equal(l.fd, -1);
}

/* tmpdir - a fresh directory for socket files */
static void
tmpdir(char *buf, size_t len)
{
	snprintf(buf, len, "/tmp/test_daemon.XXXXXX");
	assert_non_null(mkdtemp(buf));
}

static void
test_unix_refuses_file(void **state)
{
	struct dmn_listen l;
	char dir[64], path[128], spec[160], why[256], buf[8] = "";
	struct stat st;
	int fd;

	(void)state;
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	fd = open(path, O_WRONLY | O_CREAT, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, "keep", 4), 4);
	close(fd);
	assert_true(dmn_listen_parse(spec, &l, why, sizeof(why)));
	assert_false(dmn_listen_bind(&l, 0666, why, sizeof(why)));
	assert_non_null(strstr(why, "not a socket"));
	/* the file is untouched */
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	assert_int_equal(read(fd, buf, 4), 4);
	close(fd);
	assert_string_equal(buf, "keep");
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISREG(st.st_mode));
	unlink(path);
	rmdir(dir);
}

static void
test_unix_stale_live_and_close(void **state)
{
	struct dmn_listen a, b, c;
	char dir[64], path[128], spec[160], why[256];
	struct sockaddr_un su;
	struct stat st;
	int fd;

	(void)state;
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	/* a stale socket (bound, nobody listening) is replaced */
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	strcpy(su.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&su, sizeof(su)), 0);
	close(fd);
	assert_true(dmn_listen_parse(spec, &a, why, sizeof(why)));
	assert_true(dmn_listen_bind(&a, 0660, why, sizeof(why)));
	assert_int_equal(lstat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0660);
	/* a socket somebody listens on is not taken over */
	assert_true(dmn_listen_parse(spec, &b, why, sizeof(why)));
	assert_false(dmn_listen_bind(&b, 0660, why, sizeof(why)));
	assert_non_null(strstr(why, "listens"));
	/* close removes the socket file it created */
	dmn_listen_close(&a);
	assert_int_equal(a.fd, -1);
	assert_int_not_equal(lstat(path, &st), 0);
	/* but not one another instance put there since */
	assert_true(dmn_listen_parse(spec, &a, why, sizeof(why)));
	assert_true(dmn_listen_bind(&a, 0660, why, sizeof(why)));
	c = a;			/* the first instance's view */
	close(a.fd);
	assert_int_equal(unlink(path), 0);
	assert_true(dmn_listen_parse(spec, &b, why, sizeof(why)));
	assert_true(dmn_listen_bind(&b, 0660, why, sizeof(why)));
	c.fd = open("/dev/null", O_RDONLY);
	dmn_listen_close(&c);
	assert_int_equal(lstat(path, &st), 0);	/* b's socket stays */
	dmn_listen_close(&b);
	assert_int_not_equal(lstat(path, &st), 0);
	rmdir(dir);
}

/* a datagram socket: bound (no listen), a live one kept, a stale one
 * replaced, removed at close; inet refused */
static void
test_dgram(void **state)
{
	struct dmn_listen a, b, in;
	char dir[64], path[128], spec[160], why[256], buf[8];
	struct sockaddr_un su;
	struct stat st;
	int fd;

	(void)state;
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/dgram", dir);
	snprintf(spec, sizeof(spec), "unix:%s", path);
	/* a stale datagram socket (its process gone) is replaced */
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	memset(&su, 0, sizeof(su));
	su.sun_family = AF_UNIX;
	strcpy(su.sun_path, path);
	assert_int_equal(bind(fd, (struct sockaddr *)&su, sizeof(su)), 0);
	close(fd);
	assert_true(dmn_listen_parse(spec, &a, why, sizeof(why)));
	assert_true(dmn_dgram_bind(&a, 0620, why, sizeof(why)));
	assert_int_equal(lstat(path, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0620);
	/* it receives what a sender sends */
	fd = socket(AF_UNIX, SOCK_DGRAM, 0);
	assert_int_equal(sendto(fd, "hi", 2, 0, (struct sockaddr *)&su,
	    sizeof(su)), 2);
	close(fd);
	assert_int_equal(recv(a.fd, buf, sizeof(buf), 0), 2);
	/* a bound one is not taken over */
	assert_true(dmn_listen_parse(spec, &b, why, sizeof(why)));
	assert_false(dmn_dgram_bind(&b, 0620, why, sizeof(why)));
	assert_non_null(strstr(why, "listens"));
	dmn_listen_close(&a);
	assert_int_not_equal(lstat(path, &st), 0);
	assert_true(dmn_listen_parse("inet:127.0.0.1:8462", &in, why,
	    sizeof(why)));
	assert_false(dmn_dgram_bind(&in, 0620, why, sizeof(why)));
	rmdir(dir);
}

static void
test_users(void **state)
{
	struct dmn_user u;
	char why[256], dir[64], path[128];

	(void)state;
	assert_false(dmn_user_lookup("root", &u, why, sizeof(why)));
	assert_non_null(strstr(why, "root"));
	assert_false(dmn_user_lookup("no-such-user-danests", &u, why,
	    sizeof(why)));
	assert_false(dmn_user_lookup("", &u, why, sizeof(why)));
	if (getpwnam("nobody") == NULL) {
		skip();
		return;
	}
	assert_true(dmn_user_lookup("nobody", &u, why, sizeof(why)));
	assert_int_not_equal(u.uid, 0);
	/* a directory only root may write: nobody could not remove its
	 * socket at exit */
	tmpdir(dir, sizeof(dir));
	snprintf(path, sizeof(path), "%s/sock", dir);
	if (geteuid() == 0) {
		assert_int_equal(chown(dir, 0, 0), 0);
		assert_int_equal(chmod(dir, 0755), 0);
		assert_false(dmn_dir_writable(path, &u, why, sizeof(why)));
		assert_non_null(strstr(why, "not writable by user nobody"));
		assert_int_equal(chown(dir, u.uid, 0), 0);
		assert_true(dmn_dir_writable(path, &u, why, sizeof(why)));
		assert_int_equal(chmod(dir, 0555), 0);
		assert_false(dmn_dir_writable(path, &u, why, sizeof(why)));
	}
	assert_int_equal(chmod(dir, 0777), 0);
	assert_true(dmn_dir_writable(path, &u, why, sizeof(why)));
	rmdir(dir);
}

static void
test_nofile_fit(void **state)
{
	struct rlimit rl, low;
	unsigned got;

	(void)state;
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	if (rl.rlim_max < 512) {
		skip();
		return;
	}
	low = rl;
	low.rlim_cur = 256;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	/* the soft limit is raised to the hard one */
	got = dmn_nofile_fit(100, 1, 128, "clients");
	assert_int_equal(got, 100);
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &low), 0);
	assert_true(low.rlim_cur == rl.rlim_max ||
	    low.rlim_cur == (rlim_t)1 << 20);
	/* more than fits is lowered to what fits */
	got = dmn_nofile_fit(UINT_MAX / 2, 10, 128, "clients");
	assert_int_equal(got, (unsigned)((low.rlim_cur - 128) / 10));
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
}

static unsigned accepted;

static void
count_cb(int fd, void *arg)
{
	(void)arg;
	accepted++;
	close(fd);
}

/* cpu_s - CPU seconds this process used */
static double
cpu_s(void)
{
	struct rusage ru;

	getrusage(RUSAGE_SELF, &ru);
	return (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    (double)ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

/* run_for - drive the loop for ms */
static void
run_for(struct event_base *base, int ms)
{
	struct timeval tv = { ms / 1000, (ms % 1000) * 1000 };

	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
}

/* With every descriptor taken, clients wait in the backlog: the accept
 * loop must pause (about once a second), not spin, and take them all
 * once descriptors are free again. */
static void
test_accept_pause(void **state)
{
	struct event_base *base;
	struct dmn_acceptor *a;
	struct dmn_listen l;
	struct rlimit rl, low;
	char why[256];
	int clients[20], fill[4096], nfill = 0, i;
	double cpu;

	(void)state;
	base = event_base_new();
	assert_non_null(base);
	assert_true(dmn_listen_parse("inet:127.0.0.1:0", &l, why,
	    sizeof(why)) == false);	/* port 0 is refused... */
	assert_true(dmn_listen_parse("inet:127.0.0.1:1", &l, why,
	    sizeof(why)));
	/* ...so bind to any free port by hand */
	((struct sockaddr_in *)&l.ss)->sin_port = 0;
	assert_true(dmn_listen_bind(&l, 0, why, sizeof(why)));
	{
		struct sockaddr_storage ss;
		socklen_t sl = sizeof(ss);

		assert_int_equal(getsockname(l.fd, (struct sockaddr *)&ss,
		    &sl), 0);
		for (i = 0; i < 20; i++) {
			clients[i] = socket(AF_INET, SOCK_STREAM, 0);
			assert_true(clients[i] >= 0);
			assert_int_equal(connect(clients[i],
			    (struct sockaddr *)&ss, sl), 0);
		}
	}
	a = dmn_acceptor_new(base, l.fd, count_cb, NULL, NULL);
	assert_non_null(a);
	/* take every descriptor left */
	assert_int_equal(getrlimit(RLIMIT_NOFILE, &rl), 0);
	low = rl;
	low.rlim_cur = 256;
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &low), 0);
	while (nfill < 4096 && (fill[nfill] = dup(0)) >= 0)
		nfill++;
	assert_int_equal(errno, EMFILE);
	accepted = 0;
	cpu = cpu_s();
	run_for(base, 2500);
	cpu = cpu_s() - cpu;
	assert_int_equal(accepted, 0);
	/* one pause a second, a few loop turns: no spinning */
	assert_true(dmn_acceptor_pauses(a) >= 2);
	assert_true(dmn_acceptor_pauses(a) <= 4);
	assert_true(cpu < 0.5);
	/* descriptors back: every waiting client is taken */
	while (nfill > 0)
		close(fill[--nfill]);
	run_for(base, 1500);
	assert_int_equal(accepted, 20);
	assert_int_equal(setrlimit(RLIMIT_NOFILE, &rl), 0);
	for (i = 0; i < 20; i++)
		close(clients[i]);
	dmn_acceptor_free(a);
	dmn_listen_close(&l);
	event_base_free(base);
}

/* log_line - what one dmn_log call writes to stderr, with JOURNAL_STREAM
 * naming stderr (journal) or unset */
static void
log_line(bool journal, char *out, size_t outlen)
{
	char path[] = "/tmp/test_daemon_log.XXXXXX", js[64];
	struct stat st;
	int fd, saved;
	ssize_t n;

	fd = mkstemp(path);
	assert_true(fd >= 0);
	unlink(path);
	fflush(stderr);
	saved = dup(STDERR_FILENO);
	assert_int_equal(dup2(fd, STDERR_FILENO), STDERR_FILENO);
	assert_int_equal(fstat(fd, &st), 0);
	snprintf(js, sizeof(js), "%llu:%llu", (unsigned long long)st.st_dev,
	    (unsigned long long)st.st_ino);
	if (journal)
		setenv("JOURNAL_STREAM", js, 1);
	else
		unsetenv("JOURNAL_STREAM");
	dmn_log_set(true, false);
	dmn_log(LOG_WARNING, "hello %d", 42);
	fflush(stderr);
	dup2(saved, STDERR_FILENO);
	close(saved);
	unsetenv("JOURNAL_STREAM");
	n = pread(fd, out, outlen - 1, 0);
	assert_true(n > 0);
	out[n] = '\0';
	close(fd);
}

/* Under systemd the journal gets "<N>message", not a second time stamp;
 * elsewhere -d lines carry time, name and pid. */
static void
test_log_journal(void **state)
{
	char line[512];

	(void)state;
	log_line(true, line, sizeof(line));
	assert_string_equal(line, "<4>hello 42\n");
	log_line(false, line, sizeof(line));
	assert_true(line[0] >= '0' && line[0] <= '9');
	assert_non_null(strstr(line, "]: hello 42\n"));
	assert_null(strchr(line, '<'));
}

static unsigned room_left;

/* room_cb - a dmn_room_fn with room_left slots */
static bool
room_cb(void *arg)
{
	(void)arg;
	if (room_left == 0)
		return false;
	room_left--;
	return true;
}

/* With no room, clients stay in the listen queue (never accepted and
 * closed unanswered), the listener pauses instead of spinning, and they
 * are taken as room comes. */
static void
test_accept_full(void **state)
{
	struct dmn_listen l;
	struct dmn_acceptor *a;
	struct event_base *base;
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char why[256], b;
	int clients[10], i, closed, waiting;
	ssize_t n;
	double cpu;

	(void)state;
	base = event_base_new();
	assert_non_null(base);
	assert_true(dmn_listen_parse("inet:127.0.0.1:1", &l, why,
	    sizeof(why)));
	((struct sockaddr_in *)&l.ss)->sin_port = 0;
	assert_true(dmn_listen_bind(&l, 0, why, sizeof(why)));
	assert_int_equal(getsockname(l.fd, (struct sockaddr *)&ss, &sl), 0);
	for (i = 0; i < 10; i++) {
		clients[i] = socket(AF_INET, SOCK_STREAM, 0);
		assert_true(clients[i] >= 0);
		assert_int_equal(connect(clients[i], (struct sockaddr *)&ss,
		    sl), 0);
	}
	room_left = 3;
	accepted = 0;
	a = dmn_acceptor_new(base, l.fd, count_cb, room_cb, NULL);
	assert_non_null(a);
	cpu = cpu_s();
	run_for(base, 1000);
	cpu = cpu_s() - cpu;
	assert_int_equal(accepted, 3);
	/* about one pause per DMN_FULL_PAUSE_MS, no spinning */
	assert_true(dmn_acceptor_full(a) >= 3);
	assert_true(dmn_acceptor_full(a) <= 1000 / DMN_FULL_PAUSE_MS + 2);
	assert_true(cpu < 0.5);
	/* the three taken were closed by count_cb; the others still wait,
	 * open: no end of file, nothing to read */
	for (i = 0, closed = waiting = 0; i < 10; i++) {
		n = recv(clients[i], &b, 1, MSG_DONTWAIT);
		if (n == 0)
			closed++;
		else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			waiting++;
	}
	assert_int_equal(closed, 3);
	assert_int_equal(waiting, 7);
	room_left = 100;
	run_for(base, 2 * DMN_FULL_PAUSE_MS + 100);
	assert_int_equal(accepted, 10);
	for (i = 0; i < 10; i++)
		close(clients[i]);
	dmn_acceptor_free(a);
	dmn_listen_close(&l);
	event_base_free(base);
}

/* test_conf_user - the user key: where it was set, never cut */
static void
test_conf_user(void **state)
{
	struct dmn_conf_user u;
	char why[256], name[DMN_USER_MAX + 1];

	(void)state;
	dmn_conf_user_default(&u);
	assert_string_equal(u.name, "_danests");
	assert_string_equal(u.at, "");
	assert_true(dmn_conf_user(&u, "mail", "/etc/danests/x.conf", 12, why,
	    sizeof(why)));
	assert_string_equal(u.name, "mail");
	assert_string_equal(u.at, "/etc/danests/x.conf:12");
	memset(name, 'u', sizeof(name) - 1);
	name[sizeof(name) - 1] = '\0';
	assert_false(dmn_conf_user(&u, name, "x.conf", 3, why, sizeof(why)));
	assert_string_equal(why, "name too long");
	name[DMN_USER_MAX - 1] = '\0';
	assert_true(dmn_conf_user(&u, name, "x.conf", 4, why, sizeof(why)));
	assert_string_equal(u.name, name);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_unix_refuses_file),
		cmocka_unit_test(test_unix_stale_live_and_close),
		cmocka_unit_test(test_dgram),
		cmocka_unit_test(test_users),
		cmocka_unit_test(test_conf_user),
		cmocka_unit_test(test_nofile_fit),
		cmocka_unit_test(test_accept_pause),
		cmocka_unit_test(test_accept_full),
		cmocka_unit_test(test_log_journal),
	};
	int rc;

	dmn_log_open("test_daemon", true, false);
	rc = run_table("listen specs", specs, NROWS(specs), sizeof(specs[0]),
	    test_spec);
	return rc + cmocka_run_group_tests(tests, NULL, NULL);
}
