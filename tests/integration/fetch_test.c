/*
 * fetch_test.c - the policy fetcher (sts_fetch.c) against the test bed's
 * HTTPS policy hosts (tests/testbed/https.sh must be up)
 *
 * usage: fetch_test [-c ca_file] [-p port] [-t timeout_ms] [domain ...]
 *
 * Every domain runs against the address of the plan in tests/scenarios/list
 * and is compared with the expected table below; no DNS is used.  All
 * table rows run in parallel in one event loop, then a batch of good
 * domains runs 25 at once (the CA file must be read once for all of
 * them), then a slow and a good fetch with one fetch at a time (the good
 * one waits, and its time starts when it starts), then the API's edge cases (no address, bad
 * name, several addresses, cancel, free inside a callback).  Prints
 * TAP lines; exits 1 on any failure.
 */
#include "danests-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/time.h>
#include <unistd.h>

#define ADDR_GOOD	"127.10.1.1"
#define ADDR_UNTRUSTED	"127.10.1.2"
#define ADDR_WRONGNAME	"127.10.1.3"
#define ADDR_EXPIRED	"127.10.1.4"
#define ADDR_TLS10	"127.10.1.5"
#define ADDR_DOWN	"127.10.1.9"

#define FETCH_ERR	"sts-policy-fetch-error"
#define WEBPKI		"sts-webpki-invalid"

struct expect {
	const char *domain;
	const char *addr;
	danests_status status;
	const char *reason;	/* NULL: OK */
	long code;		/* -1: don't care */
	const char *text;	/* body prefix when OK, else why substring */
};

#define GOOD(d, body) { d, ADDR_GOOD, DANESTS_OK, NULL, 200, body }
#define POLICY(mode, mx) "version: STSv1\nmode: " mode "\nmx: " mx "\n"

static const struct expect table[] = {
	GOOD("sts-enforce.test", POLICY("enforce", "mx.sts-enforce.test")
	    "max_age: 86400\n"),
	GOOD("sts-wild.test", POLICY("enforce", "*.sts-wild.test")),
	GOOD("sts-mismatch.test", POLICY("enforce", "mx.sts-mismatch.test")),
	GOOD("sts-testing.test", POLICY("testing", "mx.sts-testing.test")),
	GOOD("sts-none.test", "version: STSv1\nmode: none\n"),
	GOOD("sts-dane.test", POLICY("enforce", "mx2.sts-dane.test")),
	GOOD("sts-certbad.test", POLICY("enforce", "mx.sts-certbad.test")),
	GOOD("sts-nostarttls.test", POLICY("enforce",
	    "mx.sts-nostarttls.test")),
	GOOD("sts-crlf.test", "version: STSv1\r\nmode: enforce\r\n"),
	GOOD("sts-badmaxage.test", POLICY("enforce", "mx.sts-badmaxage.test")
	    "max_age: 31557601\n"),
	GOOD("sts-nomx.test", "version: STSv1\nmode: enforce\nmax_age: 86400"),
	GOOD("sts-cache.test", POLICY("enforce", "mx.sts-cache.test")),
	GOOD("sts-idchange.test", POLICY("enforce", "mx.sts-idchange.test")),
	GOOD("sts-expire.test", POLICY("enforce", "mx.sts-expire.test")
	    "max_age: 2\n"),
	GOOD("txt-two.test", POLICY("enforce", "mx.txt-two.test")),
	GOOD("txt-v2.test", POLICY("enforce", "mx.txt-v2.test")),
	GOOD("txt-badid.test", POLICY("enforce", "mx.txt-badid.test")),
	{ "sts-404.test", ADDR_GOOD, DANESTS_TEMP, FETCH_ERR, 404,
	    "HTTP 404" },
	{ "sts-301.test", ADDR_GOOD, DANESTS_TEMP, FETCH_ERR, 301,
	    "redirect (HTTP 301) not followed" },
	{ "sts-html.test", ADDR_GOOD, DANESTS_TEMP, FETCH_ERR, 200,
	    "Content-Type text/html" },
	{ "sts-big.test", ADDR_GOOD, DANESTS_TEMP, FETCH_ERR, 200,
	    "body exceeds 65536 bytes" },
	{ "sts-chunked.test", ADDR_GOOD, DANESTS_TEMP, FETCH_ERR, 200,
	    "body exceeds 65536 bytes" },
	{ "sts-slow.test", ADDR_GOOD, DANESTS_TEMP, FETCH_ERR, 200,
	    "timeout after " },
	{ "sts-untrusted.test", ADDR_UNTRUSTED, DANESTS_TEMP, WEBPKI, 0,
	    "certificate: " },
	{ "sts-wrongname.test", ADDR_WRONGNAME, DANESTS_TEMP, WEBPKI, 0,
	    "certificate: " },
	{ "sts-expired.test", ADDR_EXPIRED, DANESTS_TEMP, WEBPKI, 0,
	    "expired" },
	/* A handshake that fails on the protocol version is no certificate
	 * problem: the certificate there is good. */
	{ "sts-tls10.test", ADDR_TLS10, DANESTS_TEMP, FETCH_ERR, 0,
	    "protocol version" },
	{ "sts-down.test", ADDR_DOWN, DANESTS_TEMP, FETCH_ERR, 0,
	    "onnect" },
};
#define NTABLE (sizeof(table) / sizeof(table[0]))

struct run {
	const struct expect *e;
	const char *label;
	int started;		/* sts_fetch_start has returned */
	int calls;
	int early;		/* called before start returned */
	danests_status status;
	char reason[64];
	long code;
	char why[DANESTS_WHY_MAX];
	char body[256];
	size_t len;
	struct sts_fetcher **freeme;	/* free the fetcher in the callback */
	struct run *next;		/* start this one in the callback */
	struct sts_fetcher *nextf;
	int seq;		/* order of completion, from 1 */
};

static struct event_base *base;
static const char *ca_file;
static unsigned port = 443;
static unsigned timeout_ms = 2000;
static int ntests, nfail;
static int ndone;		/* callbacks so far */

/* ok - one TAP line */
static void
ok(int pass, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void
ok(int pass, const char *name, const char *fmt, ...)
{
	va_list ap;

	ntests++;
	if (pass) {
		printf("ok %d %s\n", ntests, name);
	} else {
		nfail++;
		printf("not ok %d %s # ", ntests, name);
		va_start(ap, fmt);
		vprintf(fmt, ap);
		va_end(ap);
		printf("\n");
	}
	fflush(stdout);
}

/* fetched - fetch callback: record the result */
static void
fetched(void *arg, struct sts_fetch_result *res)
{
	struct run *r = arg;

	r->calls++;
	if (!r->started)
		r->early = 1;
	r->status = res->status;
	snprintf(r->reason, sizeof(r->reason), "%s",
	    res->reason != DANESTS_RT_NONE ?
	    danests_result_type_name(res->reason) : "ok");
	r->code = res->http_code;
	snprintf(r->why, sizeof(r->why), "%s", res->why);
	r->len = res->len;
	r->body[0] = '\0';
	if (res->status == DANESTS_OK) {
		if (res->body == NULL || strlen(res->body) != res->len)
			r->len = (size_t)-1;	/* must be NUL-terminated */
		else
			snprintf(r->body, sizeof(r->body), "%s", res->body);
	}
	ndone++;
	r->seq = ndone;
	if (r->next) {
		const char *addr = ADDR_GOOD;

		if (sts_fetch_start(r->nextf, "sts-enforce.test", &addr, 1,
		    fetched, r->next) == DANESTS_OK)
			r->next->started = 1;
	}
	if (r->freeme && *r->freeme) {
		sts_fetcher_free(*r->freeme);
		*r->freeme = NULL;
	}
}

/* watchdog - bound every loop */
static void
watchdog(evutil_socket_t fd, short what, void *arg)
{
	event_base_loopbreak(base);
}

/* loop - run the loop until want callbacks have run (counted from the
 * last reset of ndone), at most secs seconds */
static void
loop(unsigned secs, int want)
{
	struct timeval tv = { secs, 0 };
	struct event *w = evtimer_new(base, watchdog, NULL);

	evtimer_add(w, &tv);
	while (ndone < want && event_base_loop(base, EVLOOP_ONCE) == 0 &&
	    !event_base_got_break(base))
		;
	event_free(w);
}

/* new_fetcher - a fetcher with the test settings */
static struct sts_fetcher *
new_fetcher(unsigned p)
{
	struct sts_fetcher *f = NULL;
	char why[DANESTS_WHY_MAX] = "";

	if (sts_fetcher_new(base, ca_file, timeout_ms, p, &f, why,
	    sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "fetch_test: sts_fetcher_new: %s\n", why);
		exit(2);
	}
	return f;
}

/* start - start one fetch for r */
static int
start(struct sts_fetcher *f, struct run *r, const char *domain,
    const char *const *addrs, size_t n)
{
	danests_status st;

	st = sts_fetch_start(f, domain, addrs, n, fetched, r);
	r->started = 1;
	return st == DANESTS_OK;
}

/* esc - a short one-line rendering of text for a TAP comment */
static const char *
esc(const char *s, char *buf, size_t len)
{
	size_t o = 0;

	for (; *s && o + 3 < len && o < 48; s++) {
		if (*s == '\n' || *s == '\r') {
			buf[o++] = '\\';
			buf[o++] = *s == '\n' ? 'n' : 'r';
		} else
			buf[o++] = *s;
	}
	buf[o] = '\0';
	return buf;
}

/* check - compare one result with its expectation */
static void
check(const char *name, const struct run *r, const struct expect *e)
{
	const char *want_reason = e->reason ? e->reason : "ok";
	char b1[64], b2[64];

	if (r->calls != 1 || r->early) {
		ok(0, name, "callback called %d times%s", r->calls,
		    r->early ? ", before start returned" : "");
		return;
	}
	if (r->status != e->status || strcmp(r->reason, want_reason) != 0) {
		ok(0, name, "got %s/%s (%s) expected %s/%s",
		    danests_status_name(r->status), r->reason, r->why,
		    danests_status_name(e->status), want_reason);
		return;
	}
	if (e->code >= 0 && r->code != e->code) {
		ok(0, name, "got HTTP %ld expected %ld (%s)", r->code, e->code,
		    r->why);
		return;
	}
	if (e->status == DANESTS_OK) {
		if (r->len == (size_t)-1 || r->len > STS_BODY_MAX ||
		    strncmp(r->body, e->text, strlen(e->text)) != 0) {
			ok(0, name, "got body \"%s\" expected \"%s\"",
			    esc(r->body, b1, sizeof(b1)),
			    esc(e->text, b2, sizeof(b2)));
			return;
		}
	} else if (strstr(r->why, e->text) == NULL) {
		ok(0, name, "got why \"%s\" expected \"%s\"", r->why, e->text);
		return;
	}
	ok(1, name, "%s", "");
	if (r->status != DANESTS_OK)
		printf("#   %s: %s\n", r->reason, r->why);
}

/* find - the table row of a domain */
static const struct expect *
find(const char *domain)
{
	size_t i;

	for (i = 0; i < NTABLE; i++)
		if (strcmp(table[i].domain, domain) == 0)
			return &table[i];
	return NULL;
}

/* test_table - the chosen rows, all in parallel */
static void
test_table(char **domains, size_t n)
{
	struct sts_fetcher *f = new_fetcher(port);
	struct run *runs = xcalloc(n, sizeof(*runs));
	char name[DANESTS_NAME_MAX + 16];
	const char *addr;
	size_t i;
	int want = 0;

	ndone = 0;
	for (i = 0; i < n; i++) {
		runs[i].e = find(domains[i]);
		if (runs[i].e == NULL)
			continue;
		addr = runs[i].e->addr;
		if (start(f, &runs[i], domains[i], &addr, 1))
			want++;
		else
			runs[i].calls = -100;
	}
	loop(timeout_ms / 1000 + 10, want);
	for (i = 0; i < n; i++) {
		snprintf(name, sizeof(name), "fetch-%s", domains[i]);
		if (runs[i].e == NULL)
			ok(0, name, "no expectation for this domain");
		else
			check(name, &runs[i], runs[i].e);
	}
	sts_fetcher_free(f);
	free(runs);
}

/* test_parallel - many good fetches at once, all must complete */
static void
test_parallel(void)
{
	enum { N = 25 };
	struct sts_fetcher *f = new_fetcher(port);
	struct run runs[N];
	const char *addr = ADDR_GOOD;
	struct timeval t0, t1;
	size_t i, ngood = 0, idx[NTABLE];
	int pass = 1;
	long ms;
	int ino, opens = 0;
	char evbuf[4096];
	ssize_t got;

	/* Every open of the CA file during the batch: the store is loaded
	 * once per fetcher, not once per fetch.  (Closes are watched too:
	 * inotify merges identical events in a row.) */
	if ((ino = inotify_init1(IN_NONBLOCK)) < 0 || ca_file == NULL ||
	    inotify_add_watch(ino, ca_file, IN_OPEN | IN_CLOSE) < 0) {
		fprintf(stderr, "fetch_test: inotify on the CA file failed\n");
		exit(2);
	}
	for (i = 0; i < NTABLE; i++)
		if (table[i].status == DANESTS_OK &&
		    strcmp(table[i].addr, ADDR_GOOD) == 0)
			idx[ngood++] = i;
	memset(runs, 0, sizeof(runs));
	ndone = 0;
	gettimeofday(&t0, NULL);
	for (i = 0; i < N; i++) {
		runs[i].e = &table[idx[i % ngood]];
		if (!start(f, &runs[i], runs[i].e->domain, &addr, 1))
			pass = 0;
	}
	loop(20, N);
	gettimeofday(&t1, NULL);
	ms = (t1.tv_sec - t0.tv_sec) * 1000 + (t1.tv_usec - t0.tv_usec) / 1000;
	for (i = 0; i < N; i++) {
		if (runs[i].calls != 1 || runs[i].early ||
		    runs[i].status != DANESTS_OK ||
		    strncmp(runs[i].body, runs[i].e->text,
		    strlen(runs[i].e->text)) != 0) {
			ok(0, "fetch-parallel-25", "%s: calls %d, %s (%s)",
			    runs[i].e->domain, runs[i].calls,
			    danests_status_name(runs[i].status), runs[i].why);
			pass = -1;
			break;
		}
	}
	if (pass >= 0)
		ok(pass && ndone == N, "fetch-parallel-25",
		    "started ok %d, %d of %d done", pass, ndone, N);
	printf("# %d parallel fetches in %ld ms\n", N, ms);
	sts_fetcher_free(f);
	while ((got = read(ino, evbuf, sizeof(evbuf))) > 0) {
		char *p = evbuf;

		while (p < evbuf + got) {
			struct inotify_event *ev = (struct inotify_event *)p;

			if (ev->mask & IN_OPEN)
				opens++;
			p += sizeof(*ev) + ev->len;
		}
	}
	close(ino);
	ok(opens >= 1 && opens <= 2, "fetch-ca-loaded-once",
	    "CA file opened %d times for %d fetches", opens, N);
}

/* test_max - one fetch at a time: a good fetch behind a slow one waits
 * for it, then succeeds (its time starts when it runs) */
static void
test_max(void)
{
	struct sts_fetcher *f = new_fetcher(port);
	struct run slow, good;
	const char *addr = ADDR_GOOD;

	memset(&slow, 0, sizeof(slow));
	memset(&good, 0, sizeof(good));
	sts_fetcher_set_max(f, 1);
	ndone = 0;
	slow.e = find("sts-slow.test");
	good.e = find("sts-enforce.test");
	if (!start(f, &slow, "sts-slow.test", &addr, 1) ||
	    !start(f, &good, "sts-enforce.test", &addr, 1))
		ok(0, "fetch-max-one-waits", "start failed");
	else {
		loop(3 * timeout_ms / 1000 + 5, 2);
		ok(slow.calls == 1 && good.calls == 1 && slow.seq == 1 &&
		    good.seq == 2 && good.status == DANESTS_OK &&
		    slow.status != DANESTS_OK, "fetch-max-one-waits",
		    "slow: %d calls, order %d, %s; good: %d calls, order %d, "
		    "%s (%s)", slow.calls, slow.seq,
		    danests_status_name(slow.status), good.calls, good.seq,
		    danests_status_name(good.status), good.why);
	}
	sts_fetcher_free(f);
}

/* test_edges - argument and lifetime rules of the interface */
static void
test_edges(void)
{
	struct sts_fetcher *f;
	struct run r[8];
	const char *two[] = { ADDR_DOWN, ADDR_GOOD };
	const char *v6[] = { "::1" };
	const char *bad[] = { "mta-sts.example" };
	const char *good = ADDR_GOOD;
	const struct expect enforce = GOOD("sts-enforce.test",
	    POLICY("enforce", "mx.sts-enforce.test"));
	const struct expect noaddr = { "x", NULL, DANESTS_TEMP, FETCH_ERR, 0,
	    "no address" };
	const struct expect badname = { "x", NULL, DANESTS_TEMP, FETCH_ERR, 0,
	    "bad domain name" };
	const struct expect badaddr = { "x", NULL, DANESTS_TEMP, FETCH_ERR, 0,
	    "bad address" };
	const struct expect refused = { "x", NULL, DANESTS_TEMP, FETCH_ERR, 0,
	    "onnect" };
	const struct expect port_refused = { "x", NULL, DANESTS_TEMP,
	    FETCH_ERR, 0, "port 1" };
	size_t i;

	memset(r, 0, sizeof(r));
	ndone = 0;
	f = new_fetcher(port);
	start(f, &r[0], "sts-enforce.test", NULL, 0);
	start(f, &r[1], "bad..name", &good, 1);
	start(f, &r[2], "sts-enforce.test", bad, 1);
	/* the first address refuses; curl must go on to the second */
	start(f, &r[3], "STS-Enforce.TEST.", two, 2);
	/* IPv6 goes in brackets into CURLOPT_RESOLVE; nothing listens */
	start(f, &r[4], "sts-enforce.test", v6, 1);
	/* a callback starts another fetch on the same fetcher */
	r[5].e = &enforce;
	r[0].next = &r[5];
	r[0].nextf = f;
	loop(timeout_ms / 1000 + 10, 6);
	check("fetch-no-address", &r[0], &noaddr);
	check("fetch-bad-name", &r[1], &badname);
	check("fetch-bad-address", &r[2], &badaddr);
	check("fetch-second-address", &r[3], &enforce);
	check("fetch-ipv6-refused", &r[4], &refused);
	check("fetch-start-in-callback", &r[5], &enforce);
	sts_fetcher_free(f);

	/* the port goes into the URL and the pinned address */
	memset(r, 0, sizeof(r));
	ndone = 0;
	f = new_fetcher(1);
	start(f, &r[0], "sts-enforce.test", &good, 1);
	loop(timeout_ms / 1000 + 10, 1);
	check("fetch-port", &r[0], &port_refused);
	sts_fetcher_free(f);

	/* free with fetches pending: no callback may run afterwards */
	memset(r, 0, sizeof(r));
	f = new_fetcher(port);
	for (i = 0; i < 4; i++)
		start(f, &r[i], i ? "sts-slow.test" : "sts-enforce.test",
		    &good, 1);
	start(f, &r[4], "sts-enforce.test", NULL, 0);	/* deferred failure */
	{
		struct timeval tv = { 0, 300000 };

		event_base_loopexit(base, &tv);
		event_base_dispatch(base);
	}
	sts_fetcher_free(f);
	loop(1, 1000);
	ok(r[0].calls == 1 && r[1].calls == 0 && r[2].calls == 0 &&
	    r[3].calls == 0 && r[4].calls == 1, "fetch-cancel",
	    "calls %d %d %d %d %d", r[0].calls, r[1].calls, r[2].calls,
	    r[3].calls, r[4].calls);
	ok(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED) == 0,
	    "fetch-cancel-no-events", "%d events left",
	    event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED));

	/* a callback frees the fetcher: the other fetches are cancelled */
	memset(r, 0, sizeof(r));
	f = new_fetcher(port);
	r[0].freeme = &f;
	start(f, &r[0], "sts-enforce.test", &good, 1);
	for (i = 1; i < 4; i++)
		start(f, &r[i], "sts-slow.test", &good, 1);
	ndone = 0;
	loop(timeout_ms / 1000 + 5, 1);
	loop(1, 1000);	/* nothing else may be called */
	ok(f == NULL && ndone == 1 && r[0].calls == 1,
	    "fetch-free-in-callback", "fetcher %s, %d callbacks",
	    f ? "left" : "freed", ndone);
	if (f)
		sts_fetcher_free(f);
	ok(event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED) == 0,
	    "fetch-free-no-events", "%d events left",
	    event_base_get_num_events(base, EVENT_BASE_COUNT_ADDED));
}

int
main(int argc, char **argv)
{
	static char *all[NTABLE];
	size_t i;
	int ch;

	while ((ch = getopt(argc, argv, "c:p:t:")) != -1) {
		switch (ch) {
		case 'c':
			ca_file = optarg;
			break;
		case 'p':
			port = (unsigned)strtoul(optarg, NULL, 10);
			break;
		case 't':
			timeout_ms = (unsigned)strtoul(optarg, NULL, 10);
			break;
		default:
			fprintf(stderr, "usage: fetch_test [-c ca_file] "
			    "[-p port] [-t timeout_ms] [domain ...]\n");
			return 2;
		}
	}
	argc -= optind;
	argv += optind;
	if ((base = event_base_new()) == NULL)
		return 2;

	if (argc > 0) {
		test_table(argv, (size_t)argc);
	} else {
		for (i = 0; i < NTABLE; i++)
			all[i] = (char *)table[i].domain;
		test_table(all, NTABLE);
		test_parallel();
		test_max();
		test_edges();
	}
	printf("1..%d\n", ntests);
	event_base_free(base);
	return nfail ? 1 : 0;
}
