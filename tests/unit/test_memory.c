/*
 * test_memory.c - the context's memory (core/src/memory.c): decisions
 * reused, tempfails kept a few seconds, one resolution shared by the
 * requests asking meanwhile, nothing reused across a purge; counted
 * through the test resolver's queries.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dns_mock.h"

#define S DANESTS_SEC_SECURE
#define H32 "0102030405060708091011121314151617181920212223242526272829303132"

/* d.test: DANE-EE, 4 queries (MX, A, AAAA, TLSA); t.test: MX times out */
static const struct dns_mock_entry zone[] = {
	{ "d.test", DNS_T_MX, DNS_R_OK, S, NULL, { "10 mx.d.test" } },
	{ "mx.d.test", DNS_T_A, DNS_R_OK, S, NULL, { "192.0.2.1" } },
	{ "mx.d.test", DNS_T_AAAA, DNS_R_NODATA, S, NULL, { NULL } },
	{ "_25._tcp.mx.d.test", DNS_T_TLSA, DNS_R_OK, S, NULL,
	    { "3 1 1 " H32 } },
	{ "t.test", DNS_T_MX, DNS_R_TIMEOUT, DANESTS_SEC_INDETERMINATE, NULL,
	    { NULL } },
};
#define D_QUERIES 4

struct fixture {
	struct event_base *base;
	struct danests_config *cfg;
	struct danests_ctx *ctx;
	size_t queries;
	char dir[32];
};

/* setup - a context over the test resolver; settings as "key value"
 * pairs, NULL-terminated; with_cache: a persistent cache in a temp dir */
static void
setup(struct fixture *f, bool with_cache, const char *const *kv)
{
	struct dns *dns;
	char why[256];

	memset(f, 0, sizeof(*f));
	strlcpy(f->dir, "/tmp/danests-mem-XXXXXX", sizeof(f->dir));
	assert_non_null(f->cfg = danests_config_new());
	danests_config_set_sts(f->cfg, false);
	if (with_cache) {
		assert_non_null(mkdtemp(f->dir));
		assert_int_equal(danests_config_set_cache_dir(f->cfg, f->dir,
		    why, sizeof(why)), DANESTS_OK);
	} else
		assert_int_equal(danests_config_set_cache_dir(f->cfg, NULL,
		    why, sizeof(why)), DANESTS_OK);
	for (; kv != NULL && kv[0] != NULL; kv += 2)
		assert_int_equal(danests_config_apply(f->cfg, kv[0], kv[1],
		    why, sizeof(why)), DANESTS_OK);
	assert_non_null(f->base = event_base_new());
	assert_int_equal(dns_mock_new(f->base, zone,
	    sizeof(zone) / sizeof(zone[0]), &dns), DANESTS_OK);
	dns_mock_count(dns, &f->queries);
	assert_int_equal(danests_ctx_new_with_dns(f->cfg, f->base, dns,
	    &f->ctx, why, sizeof(why)), DANESTS_OK);
}

static void
teardown(struct fixture *f)
{
	char cmd[64];

	danests_ctx_free(f->ctx);
	event_base_free(f->base);
	danests_config_free(f->cfg);
	if (strchr(f->dir, 'X') == NULL) {
		snprintf(cmd, sizeof(cmd), "rm -rf %s", f->dir);
		assert_int_equal(system(cmd), 0);
	}
}

/* decide - one synchronous decision; its verdict, reused flag in *reused */
static danests_verdict
decide(struct fixture *f, const char *domain, unsigned flags, bool *reused)
{
	struct danests_decision *d;
	danests_verdict v;
	char why[256];

	assert_int_equal(danests_decide(f->ctx, domain, flags, &d, why,
	    sizeof(why)), DANESTS_OK);
	v = d->verdict;
	if (reused != NULL)
		*reused = d->reused;
	danests_decision_free(d);
	return v;
}

/* test_reuse - a second request within decision_memory_ttl asks no DNS */
static void
test_reuse(void **state)
{
	struct fixture f;
	bool reused;

	(void)state;
	setup(&f, false, NULL);
	assert_int_equal(decide(&f, "d.test", 0, &reused), DANESTS_DELIVER);
	assert_false(reused);
	assert_int_equal(f.queries, D_QUERIES);
	assert_int_equal(decide(&f, "D.test.", 0, &reused), DANESTS_DELIVER);
	assert_true(reused);
	assert_int_equal(f.queries, D_QUERIES);
	/* flags bypass the memory */
	assert_int_equal(decide(&f, "d.test", DANESTS_F_REFRESH, &reused),
	    DANESTS_DELIVER);
	assert_false(reused);
	assert_int_equal(f.queries, 2 * D_QUERIES);
	assert_int_equal(memory_resolutions(f.ctx), 1);
	teardown(&f);
}

/* test_off - decision_memory_ttl 0 or decision_memory_max 0: always
 * resolved */
static void
test_off(void **state)
{
	static const char *const ttl0[] = { "decision_memory_ttl", "0",
	    "tempfail_memory_ttl", "0", NULL };
	static const char *const max0[] = { "decision_memory_max", "0", NULL };
	struct fixture f;

	(void)state;
	setup(&f, false, ttl0);
	decide(&f, "d.test", 0, NULL);
	decide(&f, "d.test", 0, NULL);
	assert_int_equal(f.queries, 2 * D_QUERIES);
	decide(&f, "t.test", 0, NULL);
	decide(&f, "t.test", 0, NULL);
	assert_int_equal(f.queries, 2 * D_QUERIES + 2);
	teardown(&f);
	setup(&f, false, max0);
	decide(&f, "d.test", 0, NULL);
	decide(&f, "d.test", 0, NULL);
	assert_int_equal(f.queries, 2 * D_QUERIES);
	teardown(&f);
}

/* test_tempfail - a tempfail is kept tempfail_memory_ttl seconds, then
 * resolved again */
static void
test_tempfail(void **state)
{
	static const char *const kv[] = { "tempfail_memory_ttl", "1", NULL };
	struct fixture f;
	bool reused;

	(void)state;
	setup(&f, false, kv);
	assert_int_equal(decide(&f, "t.test", 0, &reused), DANESTS_TEMPFAIL);
	assert_int_equal(f.queries, 1);
	assert_int_equal(decide(&f, "t.test", 0, &reused), DANESTS_TEMPFAIL);
	assert_true(reused);
	assert_int_equal(f.queries, 1);
	sleep(2);
	assert_int_equal(decide(&f, "t.test", 0, &reused), DANESTS_TEMPFAIL);
	assert_false(reused);
	assert_int_equal(f.queries, 2);
	teardown(&f);
}

struct answer {
	int calls;
	danests_status st;
	bool reused;
	char domain[64];
};

static void
answer_cb(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct answer *a = arg;

	(void)why;
	a->calls++;
	a->st = st;
	if (d != NULL) {
		a->reused = d->reused;
		strlcpy(a->domain, d->domain, sizeof(a->domain));
	}
	danests_decision_free(d);
}

/* test_shared - requests made while a resolution runs share it: one set
 * of queries, every request answered once, one of them not reused; the
 * same holds for a domain that tempfails */
static void
test_shared(void **state)
{
	static const char *const dom[] = { "d.test", "t.test" };
	static const size_t nq[] = { D_QUERIES, 1 };
	struct fixture f;
	struct answer a[5];
	char why[256];
	size_t i, k, fresh;

	(void)state;
	for (k = 0; k < 2; k++) {
		setup(&f, false, NULL);
		memset(a, 0, sizeof(a));
		for (i = 0; i < 5; i++)
			assert_int_equal(danests_decide_async(f.ctx, dom[k], 0,
			    answer_cb, &a[i], why, sizeof(why)), DANESTS_OK);
		for (i = 0; i < 5; i++)
			assert_int_equal(a[i].calls, 0);  /* never before */
		while (danests_ctx_pending(f.ctx) > 0)
			event_base_loop(f.base, EVLOOP_ONCE);
		for (i = 0, fresh = 0; i < 5; i++) {
			assert_int_equal(a[i].calls, 1);
			assert_int_equal(a[i].st, DANESTS_OK);
			assert_string_equal(a[i].domain, dom[k]);
			fresh += !a[i].reused;
		}
		assert_int_equal(fresh, 1);
		assert_int_equal(f.queries, nq[k]);
		assert_int_equal(memory_resolutions(f.ctx), 1);
		teardown(&f);
	}
}

/* test_purge - `danests cache purge` (the purge generation) makes what is
 * kept stale, in every process: the next request resolves again */
static void
test_purge(void **state)
{
	struct fixture f;
	struct cache *other;
	uint64_t gen;
	char why[256];
	bool reused;

	(void)state;
	setup(&f, true, NULL);
	decide(&f, "d.test", 0, NULL);
	decide(&f, "d.test", 0, &reused);
	assert_true(reused);
	assert_int_equal(f.queries, D_QUERIES);
	/* another process purges; the persistent entry goes too */
	assert_int_equal(cache_open(f.dir, &other, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(cache_decision_del(other, "d.test", why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_generation(other, true, &gen, why,
	    sizeof(why)), DANESTS_OK);
	cache_close(other);
	decide(&f, "d.test", 0, &reused);
	assert_false(reused);
	assert_int_equal(f.queries, 2 * D_QUERIES);
	decide(&f, "d.test", 0, &reused);
	assert_true(reused);
	assert_int_equal(f.queries, 2 * D_QUERIES);
	teardown(&f);
}

/* test_purge_during - a purge while a resolution runs keeps its result
 * out of memory and out of the persistent cache */
static void
test_purge_during(void **state)
{
	struct fixture f;
	struct cache *other;
	struct answer a;
	uint64_t gen;
	char why[256];
	bool reused;

	(void)state;
	setup(&f, true, NULL);
	memset(&a, 0, sizeof(a));
	assert_int_equal(danests_decide_async(f.ctx, "d.test", 0, answer_cb,
	    &a, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_open(f.dir, &other, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(cache_generation(other, true, &gen, why,
	    sizeof(why)), DANESTS_OK);
	while (danests_ctx_pending(f.ctx) > 0)
		event_base_loop(f.base, EVLOOP_ONCE);
	assert_int_equal(a.calls, 1);
	/* nor in the persistent cache: the purge is not undone */
	assert_int_equal(cache_decision_del(other, "d.test", why,
	    sizeof(why)), DANESTS_NOTFOUND);
	cache_close(other);
	decide(&f, "d.test", 0, &reused);
	assert_false(reused);
	assert_int_equal(f.queries, 2 * D_QUERIES);
	teardown(&f);
}

/* test_copy - a copy is deep and equal (same JSON), and independent */
static void
test_copy(void **state)
{
	struct fixture f;
	struct danests_decision *d, *c;
	char why[256], *j1, *j2;

	(void)state;
	setup(&f, false, NULL);
	assert_int_equal(danests_decide(f.ctx, "d.test", 0, &d, why,
	    sizeof(why)), DANESTS_OK);
	assert_non_null(c = decision_copy(d));
	assert_ptr_not_equal(c->hosts, d->hosts);
	assert_ptr_not_equal(c->hosts[0].tlsa[0].data, d->hosts[0].tlsa[0].data);
	assert_non_null(j1 = danests_decision_to_json(d));
	danests_decision_free(d);
	assert_non_null(j2 = danests_decision_to_json(c));
	assert_string_equal(j1, j2);
	free(j1);
	free(j2);
	danests_decision_free(c);
	teardown(&f);
}

/* test_free_pending - freeing a context answers the requests due from
 * memory (the test resolver cannot cancel its queries, so shared ones
 * are not tried here) */
static void
test_free_pending(void **state)
{
	struct fixture f;
	struct answer a;
	char why[256];

	(void)state;
	setup(&f, false, NULL);
	decide(&f, "d.test", 0, NULL);
	memset(&a, 0, sizeof(a));
	assert_int_equal(danests_decide_async(f.ctx, "d.test", 0, answer_cb,
	    &a, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_ctx_pending(f.ctx), 1);
	danests_ctx_free(f.ctx);
	f.ctx = NULL;
	assert_int_equal(a.calls, 1);
	assert_true(a.reused);
	teardown(&f);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_reuse),
		cmocka_unit_test(test_off),
		cmocka_unit_test(test_tempfail),
		cmocka_unit_test(test_shared),
		cmocka_unit_test(test_purge),
		cmocka_unit_test(test_purge_during),
		cmocka_unit_test(test_copy),
		cmocka_unit_test(test_free_pending),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
