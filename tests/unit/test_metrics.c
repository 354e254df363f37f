/*
 * test_metrics.c - the core's counters and the text exposition format
 * (core/src/metrics.c): exact text of known families, escaping, overflow,
 * and the counts that decisions over the test resolver leave (verdicts,
 * reasons, host policies, memory and LMDB cache lookups, the latency
 * histogram), in a context's own set and in a shared one; and the
 * counts of several contexts added up in the cache (metrics_store.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "dns_mock.h"
#include "danests-metrics.h"

#define S DANESTS_SEC_SECURE
#define H32 "0102030405060708091011121314151617181920212223242526272829303132"

/* d.test: DANE-EE; t.test: the MX lookup times out; n.test: no such
 * domain */
static const struct dns_mock_entry zone[] = {
	{ "d.test", DNS_T_MX, DNS_R_OK, S, NULL, { "10 mx.d.test" } },
	{ "mx.d.test", DNS_T_A, DNS_R_OK, S, NULL, { "192.0.2.1" } },
	{ "mx.d.test", DNS_T_AAAA, DNS_R_NODATA, S, NULL, { NULL } },
	{ "_25._tcp.mx.d.test", DNS_T_TLSA, DNS_R_OK, S, NULL,
	    { "3 1 1 " H32 } },
	{ "t.test", DNS_T_MX, DNS_R_TIMEOUT, DANESTS_SEC_INDETERMINATE, NULL,
	    { NULL } },
	{ "n.test", DNS_T_MX, DNS_R_NXDOMAIN, S, NULL, { NULL } },
};

/* test_expo_exact - a counter family with labels, one without, a
 * histogram-like family, byte for byte */
static void
test_expo_exact(void **state)
{
	static const char want[] =
	    "# HELP x_replies_total Replies, by type.\n"
	    "# TYPE x_replies_total counter\n"
	    "x_replies_total{type=\"OK\"} 2\n"
	    "x_replies_total{type=\"TEMP\",map=\"dane\"} 18446744073709551615\n"
	    "# HELP x_up Up.\n"
	    "# TYPE x_up gauge\n"
	    "x_up 1\n"
	    "# HELP x_seconds Time.\n"
	    "# TYPE x_seconds histogram\n"
	    "x_seconds_bucket{le=\"0.5\"} 1\n"
	    "x_seconds_bucket{le=\"+Inf\"} 3\n"
	    "x_seconds_sum 2.25\n"
	    "x_seconds_count 3\n";
	const char *l1[] = { "type", "OK", NULL };
	const char *l2[] = { "type", "TEMP", "map", "dane", NULL };
	const char *b1[] = { "le", "0.5", NULL };
	const char *b2[] = { "le", "+Inf", NULL };
	struct danests_expo e;
	char buf[1024];

	(void)state;
	danests_expo_init(&e, buf, sizeof(buf));
	danests_expo_family(&e, "x_replies_total", "counter",
	    "Replies, by type.");
	danests_expo_u64(&e, "x_replies_total", l1, 2);
	danests_expo_u64(&e, "x_replies_total", l2, UINT64_MAX);
	danests_expo_family(&e, "x_up", "gauge", "Up.");
	danests_expo_u64(&e, "x_up", NULL, 1);
	danests_expo_family(&e, "x_seconds", "histogram", "Time.");
	danests_expo_u64(&e, "x_seconds_bucket", b1, 1);
	danests_expo_u64(&e, "x_seconds_bucket", b2, 3);
	danests_expo_double(&e, "x_seconds_sum", NULL, 2.25);
	danests_expo_u64(&e, "x_seconds_count", NULL, 3);
	assert_false(e.overflow);
	assert_string_equal(buf, want);
	assert_int_equal(e.len, strlen(want));
}

/* test_expo_escape - label values escape \, " and newline; HELP text
 * escapes \ and newline only (0.0.4) */
static void
test_expo_escape(void **state)
{
	const char *l[] = { "v", "a\\b\"c\nd", NULL };
	struct danests_expo e;
	char buf[256];

	(void)state;
	danests_expo_init(&e, buf, sizeof(buf));
	danests_expo_family(&e, "x", "counter", "say \"hi\"\\\nthere");
	danests_expo_u64(&e, "x", l, 0);
	assert_string_equal(buf,
	    "# HELP x say \"hi\"\\\\\\nthere\n"
	    "# TYPE x counter\n"
	    "x{v=\"a\\\\b\\\"c\\nd\"} 0\n");
}

/* test_expo_overflow - text that does not fit sets overflow and stops */
static void
test_expo_overflow(void **state)
{
	struct danests_expo e;
	char buf[40];

	(void)state;
	danests_expo_init(&e, buf, sizeof(buf));
	danests_expo_family(&e, "x", "counter", "fits.");
	assert_false(e.overflow);
	danests_expo_family(&e, "y", "counter", "does not fit.");
	assert_true(e.overflow);
	assert_true(e.len < sizeof(buf));
	assert_int_equal(strlen(buf), e.len);
	danests_expo_u64(&e, "x", NULL, 1);
	assert_true(e.overflow);
	danests_expo_init(&e, buf, 0);
	assert_true(e.overflow);
}

struct fixture {
	struct event_base *base;
	struct danests_config *cfg;
	struct danests_ctx *ctx;
	char dir[32];
};

/* setup - a context over the test resolver, with a cache in a temp
 * directory when with_cache */
static void
setup(struct fixture *f, bool with_cache)
{
	struct dns *dns;
	char why[256];

	memset(f, 0, sizeof(*f));
	strlcpy(f->dir, "/tmp/danests-met-XXXXXX", sizeof(f->dir));
	assert_non_null(f->cfg = danests_config_new());
	danests_config_set_sts(f->cfg, false);
	if (with_cache)
		assert_non_null(mkdtemp(f->dir));
	assert_int_equal(danests_config_set_cache_dir(f->cfg, with_cache ?
	    f->dir : NULL, why, sizeof(why)), DANESTS_OK);
	assert_non_null(f->base = event_base_new());
	assert_int_equal(dns_mock_new(f->base, zone,
	    sizeof(zone) / sizeof(zone[0]), &dns), DANESTS_OK);
	assert_int_equal(danests_ctx_new_with_dns(f->cfg, f->base, dns,
	    &f->ctx, why, sizeof(why)), DANESTS_OK);
}

/* rm_dir - remove a test's directory */
static void
rm_dir(const char *dir)
{
	char cmd[64];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

static void
teardown(struct fixture *f)
{
	danests_ctx_free(f->ctx);
	event_base_free(f->base);
	danests_config_free(f->cfg);
	if (strchr(f->dir, 'X') == NULL)
		rm_dir(f->dir);
}

static void
decide(struct fixture *f, const char *domain, unsigned flags)
{
	struct danests_decision *d;
	char why[256];

	assert_int_equal(danests_decide(f->ctx, domain, flags, &d, why,
	    sizeof(why)), DANESTS_OK);
	danests_decision_free(d);
}

/* has - the exposition of m holds line (a whole line) */
static void
has(const struct danests_metrics *m, const char *line)
{
	static char buf[16384];
	struct danests_expo e;
	char want[256];

	danests_expo_init(&e, buf, sizeof(buf));
	danests_metrics_write(m, &e);
	assert_false(e.overflow);
	snprintf(want, sizeof(want), "\n%s\n", line);
	if (strstr(buf, want) == NULL)
		fail_msg("no line \"%s\" in:\n%s", line, buf);
}

/* test_zero - a new set: every family, every label value, at zero */
static void
test_zero(void **state)
{
	struct danests_metrics *m;

	(void)state;
	assert_non_null(m = danests_metrics_new());
	has(m, "# TYPE danests_decisions_total counter");
	has(m, "danests_decisions_total{verdict=\"deliver\"} 0");
	has(m, "danests_decisions_total{verdict=\"permfail\"} 0");
	has(m, "danests_decision_reasons_total{reason=\"ok\"} 0");
	has(m, "danests_decision_reasons_total{reason=\"local-error\"} 0");
	has(m, "danests_decision_hosts_total{policy=\"skip\"} 0");
	has(m, "danests_decision_failures_total 0");
	has(m, "danests_sts_fetches_total{result=\"webpki-invalid\"} 0");
	has(m, "danests_cache_requests_total{layer=\"lmdb\",kind=\"policy\","
	    "result=\"error\"} 0");
	has(m, "# TYPE danests_decision_duration_seconds histogram");
	has(m, "danests_decision_duration_seconds_bucket{le=\"0.001\"} 0");
	has(m, "danests_decision_duration_seconds_bucket{le=\"10\"} 0");
	has(m, "danests_decision_duration_seconds_bucket{le=\"+Inf\"} 0");
	has(m, "danests_decision_duration_seconds_sum 0");
	has(m, "danests_decision_duration_seconds_count 0");
	danests_metrics_free(m);
}

/* test_decisions - decisions over the test resolver, in the context's
 * own set: verdicts, reasons, host policies, the memory layer, the
 * histogram's count */
static void
test_decisions(void **state)
{
	struct fixture f;
	struct danests_metrics *m;

	(void)state;
	setup(&f, false);
	m = danests_ctx_metrics(f.ctx);
	assert_non_null(m);
	decide(&f, "d.test", 0);
	decide(&f, "d.test", 0);		/* from memory */
	decide(&f, "t.test", 0);
	decide(&f, "n.test", 0);
	decide(&f, "d.test", DANESTS_F_REFRESH);	/* bypasses memory */
	has(m, "danests_decisions_total{verdict=\"deliver\"} 3");
	has(m, "danests_decisions_total{verdict=\"tempfail\"} 1");
	has(m, "danests_decisions_total{verdict=\"permfail\"} 1");
	has(m, "danests_decision_reasons_total{reason=\"ok\"} 3");
	has(m, "danests_decision_reasons_total{reason=\"dns-timeout\"} 1");
	has(m, "danests_decision_reasons_total{reason=\"nxdomain\"} 1");
	has(m, "danests_decision_hosts_total{policy=\"dane\"} 3");
	has(m, "danests_decision_failures_total 0");
	has(m, "danests_cache_requests_total{layer=\"memory\",kind=\"decision\","
	    "result=\"hit\"} 1");
	has(m, "danests_cache_requests_total{layer=\"memory\",kind=\"decision\","
	    "result=\"miss\"} 3");
	has(m, "danests_decision_duration_seconds_bucket{le=\"+Inf\"} 5");
	has(m, "danests_decision_duration_seconds_count 5");
	/* a malformed domain is refused before it is a request */
	{
		struct danests_decision *d;
		char why[128];

		assert_int_equal(danests_decide(f.ctx, "a..b", 0, &d, why,
		    sizeof(why)), DANESTS_PERM);
	}
	has(m, "danests_decision_duration_seconds_count 5");
	teardown(&f);
}

/* test_lmdb - the LMDB layer: a miss, then a hit from a second context
 * over the same cache */
static void
test_lmdb(void **state)
{
	struct fixture f;
	struct danests_ctx *c2;
	struct dns *dns;
	struct danests_metrics *m;
	struct danests_decision *d;
	char why[256];

	(void)state;
	setup(&f, true);
	m = danests_ctx_metrics(f.ctx);
	decide(&f, "d.test", 0);
	has(m, "danests_cache_requests_total{layer=\"lmdb\",kind=\"decision\","
	    "result=\"miss\"} 1");
	assert_int_equal(dns_mock_new(f.base, zone,
	    sizeof(zone) / sizeof(zone[0]), &dns), DANESTS_OK);
	assert_int_equal(danests_ctx_new_with_dns(f.cfg, f.base, dns, &c2,
	    why, sizeof(why)), DANESTS_OK);
	/* counted into the first context's set */
	danests_ctx_set_metrics(c2, m);
	assert_ptr_equal(danests_ctx_metrics(c2), m);
	assert_int_equal(danests_decide(c2, "d.test", 0, &d, why,
	    sizeof(why)), DANESTS_OK);
	assert_true(d->from_cache);
	danests_decision_free(d);
	has(m, "danests_cache_requests_total{layer=\"lmdb\",kind=\"decision\","
	    "result=\"hit\"} 1");
	has(m, "danests_decisions_total{verdict=\"deliver\"} 2");
	danests_ctx_set_metrics(c2, NULL);
	assert_ptr_not_equal(danests_ctx_metrics(c2), m);
	danests_ctx_free(c2);
	teardown(&f);
}

/* test_shared - two contexts count into one set of the caller's */
static void
test_shared(void **state)
{
	struct fixture a, b;
	struct danests_metrics *m;

	(void)state;
	assert_non_null(m = danests_metrics_new());
	setup(&a, false);
	setup(&b, false);
	danests_ctx_set_metrics(a.ctx, m);
	danests_ctx_set_metrics(b.ctx, m);
	decide(&a, "d.test", 0);
	decide(&b, "d.test", 0);
	decide(&b, "t.test", 0);
	teardown(&a);
	teardown(&b);
	has(m, "danests_decisions_total{verdict=\"deliver\"} 2");
	has(m, "danests_decisions_total{verdict=\"tempfail\"} 1");
	has(m, "danests_decision_duration_seconds_count 3");
	danests_metrics_free(m);
}

/* stored - the counts stored in dir, as exposition text in buf */
static size_t
stored(const char *dir, char *buf, size_t len)
{
	struct danests_cache *c;
	struct danests_metrics *m;
	struct danests_expo e;
	char why[256];
	size_t found;

	assert_int_equal(danests_cache_open(dir, &c, why, sizeof(why)),
	    DANESTS_OK);
	assert_non_null(m = danests_metrics_new());
	assert_int_equal(danests_cache_metrics(c, m, &found, why,
	    sizeof(why)), DANESTS_OK);
	danests_expo_init(&e, buf, len);
	danests_metrics_write(m, &e);
	assert_false(e.overflow);
	danests_metrics_free(m);
	danests_cache_close(c);
	return found;
}

/* test_store - two contexts over one cache store what they counted;
 * the stored counts are their sum, each count added once */
static void
test_store(void **state)
{
	static char buf[16384];
	struct fixture f;
	struct danests_ctx *c2;
	struct dns *dns;
	struct danests_decision *d;
	char why[256];

	(void)state;
	setup(&f, true);
	assert_int_equal(stored(f.dir, buf, sizeof(buf)), 0);
	decide(&f, "d.test", 0);
	decide(&f, "t.test", 0);
	assert_int_equal(danests_ctx_metrics_store(f.ctx, why, sizeof(why)),
	    DANESTS_OK);
	/* nothing new: nothing added */
	assert_int_equal(danests_ctx_metrics_store(f.ctx, why, sizeof(why)),
	    DANESTS_OK);
	assert_true(stored(f.dir, buf, sizeof(buf)) > 0);
	assert_non_null(strstr(buf,
	    "\ndanests_decisions_total{verdict=\"deliver\"} 1\n"));
	assert_non_null(strstr(buf,
	    "\ndanests_decisions_total{verdict=\"tempfail\"} 1\n"));
	assert_non_null(strstr(buf,
	    "\ndanests_decision_duration_seconds_count 2\n"));
	/* a second context (another process, as far as the cache is
	 * concerned): its counts add up with the first's */
	assert_int_equal(dns_mock_new(f.base, zone,
	    sizeof(zone) / sizeof(zone[0]), &dns), DANESTS_OK);
	assert_int_equal(danests_ctx_new_with_dns(f.cfg, f.base, dns, &c2,
	    why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_decide(c2, "d.test", 0, &d, why,
	    sizeof(why)), DANESTS_OK);
	danests_decision_free(d);
	assert_int_equal(danests_ctx_metrics_store(c2, why, sizeof(why)),
	    DANESTS_OK);
	decide(&f, "n.test", 0);
	assert_int_equal(danests_ctx_metrics_store(f.ctx, why, sizeof(why)),
	    DANESTS_OK);
	stored(f.dir, buf, sizeof(buf));
	assert_non_null(strstr(buf,
	    "\ndanests_decisions_total{verdict=\"deliver\"} 2\n"));
	assert_non_null(strstr(buf,
	    "\ndanests_decisions_total{verdict=\"permfail\"} 1\n"));
	assert_non_null(strstr(buf,
	    "\ndanests_cache_requests_total{layer=\"lmdb\",kind=\"decision\","
	    "result=\"hit\"} 1\n"));
	assert_non_null(strstr(buf,
	    "\ndanests_decision_duration_seconds_count 4\n"));
	danests_ctx_free(c2);
	teardown(&f);
}

/* test_store_none - without a cache, a store does nothing */
static void
test_store_none(void **state)
{
	struct fixture f;
	char why[256];

	(void)state;
	setup(&f, false);
	decide(&f, "d.test", 0);
	assert_int_equal(danests_ctx_metrics_store(f.ctx, why, sizeof(why)),
	    DANESTS_OK);
	teardown(&f);
}

/* test_push_turn - the push of a fleet (metrics_fleet.c): one turn per
 * interval per node, whoever asks; a clock set back never blocks it */
static void
test_push_turn(void **state)
{
	char dir[] = "/tmp/danests-turn-XXXXXX", why[256];
	struct cache *c;
	time_t t = 1700000000;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(cache_open(dir, &c, why, sizeof(why)), DANESTS_OK);
	/* never pushed: due, and the stamp is taken */
	assert_int_equal(fleet_due(c, 60, t, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(fleet_due(c, 60, t, why, sizeof(why)),
	    DANESTS_NOTFOUND);
	assert_int_equal(fleet_due(c, 60, t + 59, why, sizeof(why)),
	    DANESTS_NOTFOUND);
	assert_int_equal(fleet_due(c, 60, t + 60, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(fleet_due(c, 60, t + 61, why, sizeof(why)),
	    DANESTS_NOTFOUND);
	/* the compare-and-set alone: one turn per interval too */
	assert_int_equal(fleet_take(c, 60, t + 61, why, sizeof(why)),
	    DANESTS_NOTFOUND);
	assert_int_equal(fleet_take(c, 60, t + 120, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(fleet_take(c, 60, t + 120, why, sizeof(why)),
	    DANESTS_NOTFOUND);
	/* the clock set back: due at once, not an hour later */
	assert_int_equal(fleet_due(c, 60, t - 3600, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(fleet_due(c, 60, t - 3599, why, sizeof(why)),
	    DANESTS_NOTFOUND);
	/* another process (its own environment on the same files) sees
	 * the same stamp */
	cache_close(c);
	assert_int_equal(cache_open(dir, &c, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(fleet_due(c, 60, t - 3599, why, sizeof(why)),
	    DANESTS_NOTFOUND);
	assert_int_equal(fleet_due(c, 1, t - 3599, why, sizeof(why)),
	    DANESTS_OK);
	cache_close(c);
	rm_dir(dir);
}

/* race_round - n processes, each with the cache open, take the turn of
 * time t at the same moment (fleet_take); how many got it */
static int
race_round(const char *dir, int n, time_t t)
{
	char why[256], b;
	struct cache *cc;
	int i, st, won = 0, go[2], ready[2];
	pid_t pid;

	assert_int_equal(pipe(go), 0);
	assert_int_equal(pipe(ready), 0);
	for (i = 0; i < n; i++) {
		if ((pid = fork()) == 0) {
			close(go[1]);
			close(ready[0]);
			if (cache_open(dir, &cc, why, sizeof(why)) !=
			    DANESTS_OK)
				_exit(3);
			/* open, then wait for the others */
			(void)write(ready[1], "r", 1);
			(void)read(go[0], &b, 1);
			st = fleet_take(cc, 60, t, why, sizeof(why));
			cache_close(cc);
			_exit(st == DANESTS_OK ? 0 : st == DANESTS_NOTFOUND ?
			    1 : 2);
		}
		assert_true(pid > 0);
	}
	close(go[0]);
	close(ready[1]);
	for (i = 0; i < n; i++)
		assert_int_equal(read(ready[0], &b, 1), 1);
	close(go[1]);	/* go */
	close(ready[0]);
	for (i = 0; i < n; i++) {
		assert_true(wait(&st) > 0);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) <= 1);
		won += WEXITSTATUS(st) == 0;
	}
	return won;
}

/* test_push_turn_race - 16 processes, each past a first look that found
 * the turn due, take it at once, 20 times: one gets it each time (the
 * compare-and-set in one write transaction) */
static void
test_push_turn_race(void **state)
{
	char dir[] = "/tmp/danests-race-XXXXXX", why[256];
	struct cache *c;
	int k;

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(cache_open(dir, &c, why, sizeof(why)), DANESTS_OK);
	cache_close(c);
	for (k = 0; k < 20; k++)
		assert_int_equal(race_round(dir, 16, 1700000000 + 60 * k), 1);
	rm_dir(dir);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_expo_exact),
		cmocka_unit_test(test_expo_escape),
		cmocka_unit_test(test_expo_overflow),
		cmocka_unit_test(test_zero),
		cmocka_unit_test(test_decisions),
		cmocka_unit_test(test_lmdb),
		cmocka_unit_test(test_shared),
		cmocka_unit_test(test_store),
		cmocka_unit_test(test_store_none),
		cmocka_unit_test(test_push_turn),
		cmocka_unit_test(test_push_turn_race),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
