/*
 * test_dns_pace.c - pacing of DNS queries (dns.c): the bound on queries
 * outstanding at the resolver, the round-robin queue across owners, and
 * what happens to waiting queries when the resolver goes away.
 *
 * A fake resolver records the order in which queries reach it and
 * answers each NXDOMAIN after 1 ms on the loop.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"

#define FAKE_MAX 256

struct fake_q {
	struct fake *f;
	struct event *ev;
	dns_cb *cb;
	void *arg;
	uint16_t type;
	char name[64];
	bool live;
};

struct fake {
	struct event_base *base;
	int inflight, most;
	size_t n;			/* queries received */
	char order[FAKE_MAX][64];	/* their names, in order */
	struct fake_q *q[FAKE_MAX];
};

/* fake_answer - one query's NXDOMAIN */
static void
fake_answer(evutil_socket_t fd, short what, void *arg)
{
	struct fake_q *fq = arg;
	struct dns_answer *a;

	(void)fd;
	(void)what;
	a = calloc(1, sizeof(*a));
	assert_non_null(a);
	a->qname = strdup(fq->name);
	a->qtype = fq->type;
	a->rcode = DNS_R_NXDOMAIN;
	fq->live = false;
	fq->f->inflight--;
	fq->cb(fq->arg, a);
}

/* fake_query - record the query, answer it later; "fail.test" can't
 * be asked */
static int
fake_query(void *impl, const char *name, uint16_t type, dns_cb *cb,
    void *arg)
{
	struct fake *f = impl;
	struct fake_q *fq;
	struct timeval tv = { 0, 1000 };

	if (strcmp(name, "fail.test") == 0 || f->n >= FAKE_MAX)
		return -1;
	fq = calloc(1, sizeof(*fq));
	assert_non_null(fq);
	fq->f = f;
	fq->cb = cb;
	fq->arg = arg;
	fq->type = type;
	fq->live = true;
	snprintf(fq->name, sizeof(fq->name), "%s", name);
	fq->ev = evtimer_new(f->base, fake_answer, fq);
	assert_non_null(fq->ev);
	assert_int_equal(evtimer_add(fq->ev, &tv), 0);
	snprintf(f->order[f->n], sizeof(f->order[0]), "%s", name);
	f->q[f->n++] = fq;
	if (++f->inflight > f->most)
		f->most = f->inflight;
	return 0;
}

/* fake_free - cancel: every live query is answered "cancelled" */
static void
fake_free(void *impl)
{
	struct fake *f = impl;
	struct dns_answer *a;
	size_t i;

	for (i = 0; i < f->n; i++) {
		struct fake_q *fq = f->q[i];

		if (fq->live) {
			a = calloc(1, sizeof(*a));
			assert_non_null(a);
			a->qname = strdup(fq->name);
			a->rcode = DNS_R_ERROR;
			fq->live = false;
			f->inflight--;
			fq->cb(fq->arg, a);
		}
		event_free(fq->ev);
		free(fq);
	}
	f->n = 0;
}

static const struct dns_ops fake_ops = { fake_query, fake_free };

/* One caller's view: answers received. */
struct got {
	size_t n, errors, nx;
};

static void
got_cb(void *arg, struct dns_answer *a)
{
	struct got *g = arg;

	assert_non_null(a);
	g->n++;
	if (a->rcode == DNS_R_ERROR)
		g->errors++;
	else if (a->rcode == DNS_R_NXDOMAIN)
		g->nx++;
	dns_answer_free(a);
}

/* new_dns - the fake behind the pacing layer, at most max outstanding */
static struct dns *
new_dns(struct event_base *base, struct fake *f, unsigned max)
{
	struct dns *d;

	memset(f, 0, sizeof(*f));
	f->base = base;
	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	d->ops = &fake_ops;
	d->impl = f;
	dns_set_max(d, max);
	return d;
}

/* A burst far above the bound: never more than the bound outstanding,
 * every query answered. */
static void
test_bound(void **state)
{
	struct event_base *base = event_base_new();
	struct fake f;
	struct dns *d = new_dns(base, &f, 3);
	struct got g[4];
	char name[32];
	int i;

	(void)state;
	memset(g, 0, sizeof(g));
	for (i = 0; i < 40; i++) {
		snprintf(name, sizeof(name), "q%d.test", i);
		assert_int_equal(dns_query(d, name, DNS_T_A, got_cb,
		    &g[i % 4]), 0);
	}
	assert_int_equal(f.inflight, 3);
	assert_int_equal(d->queued, 37);
	while (g[0].n + g[1].n + g[2].n + g[3].n < 40)
		assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(f.most, 3);
	assert_int_equal(d->peak, 3);
	assert_int_equal(d->queued, 0);
	for (i = 0; i < 4; i++)
		assert_int_equal(g[i].nx, 10);
	dns_free(d);
	event_base_free(base);
}

/* Owner a asks five queries, then b and c one each: b and c get their
 * turn after one more of a's, not after all of them. */
static void
test_round_robin(void **state)
{
	static const char *const want[] = {
		"a1.test", "a2.test", "b1.test", "c1.test", "a3.test",
		"a4.test", "a5.test",
	};
	struct event_base *base = event_base_new();
	struct fake f;
	struct dns *d = new_dns(base, &f, 1);
	struct got ga, gb, gc;
	char name[32];
	size_t i;
	int owner_a, owner_b, owner_c;

	(void)state;
	memset(&ga, 0, sizeof(ga));
	memset(&gb, 0, sizeof(gb));
	memset(&gc, 0, sizeof(gc));
	for (i = 1; i <= 5; i++) {
		snprintf(name, sizeof(name), "a%zu.test", i);
		assert_int_equal(dns_query_for(d, &owner_a, name, DNS_T_A,
		    got_cb, &ga), 0);
	}
	assert_int_equal(dns_query_for(d, &owner_b, "b1.test", DNS_T_A,
	    got_cb, &gb), 0);
	assert_int_equal(dns_query_for(d, &owner_c, "c1.test", DNS_T_MX,
	    got_cb, &gc), 0);
	while (ga.n + gb.n + gc.n < 7)
		assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(f.n, sizeof(want) / sizeof(want[0]));
	for (i = 0; i < f.n; i++)
		assert_string_equal(f.order[i], want[i]);
	dns_free(d);
	event_base_free(base);
}

/* Freeing the resolver answers the started query (the fake cancels it)
 * and the waiting ones, once each, as errors; no new query starts. */
static void
test_free_cancels_waiting(void **state)
{
	struct event_base *base = event_base_new();
	struct fake f;
	struct dns *d = new_dns(base, &f, 1);
	struct got g;
	int i;

	(void)state;
	memset(&g, 0, sizeof(g));
	for (i = 0; i < 5; i++)
		assert_int_equal(dns_query(d, "x.test", DNS_T_A, got_cb, &g),
		    0);
	assert_int_equal(f.n, 1);
	dns_free(d);
	assert_int_equal(g.n, 5);
	assert_int_equal(g.errors, 5);
	event_base_free(base);
}

/* A waiting query that the resolver refuses to start is answered as a
 * DNS error; the queue goes on. */
static void
test_start_failure(void **state)
{
	struct event_base *base = event_base_new();
	struct fake f;
	struct dns *d = new_dns(base, &f, 1);
	struct got g;

	(void)state;
	memset(&g, 0, sizeof(g));
	assert_int_equal(dns_query(d, "a.test", DNS_T_A, got_cb, &g), 0);
	assert_int_equal(dns_query(d, "fail.test", DNS_T_A, got_cb, &g), 0);
	assert_int_equal(dns_query(d, "b.test", DNS_T_A, got_cb, &g), 0);
	while (g.n < 3)
		assert_int_equal(event_base_loop(base, EVLOOP_ONCE), 0);
	assert_int_equal(g.errors, 1);
	assert_int_equal(g.nx, 2);
	assert_int_equal(f.n, 2);
	dns_free(d);
	event_base_free(base);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_bound),
		cmocka_unit_test(test_round_robin),
		cmocka_unit_test(test_free_cancels_waiting),
		cmocka_unit_test(test_start_failure),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
