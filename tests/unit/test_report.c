/*
 * test_report.c - TLS reporting counters and sending state in the shared
 * cache (report.c): round trips per policy and detail, the details cap,
 * malformed results refused, forget, state and targets, UTC day
 * boundaries, walk filters, damaged records (TEMP), a damaged file
 * (rebuilt), the policy of a host, the context's switch, concurrent
 * writers (exact totals) and writers killed with SIGKILL (no count lost,
 * none doubled).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <lmdb.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "table.h"
#include "dns_mock.h"
#include "danests-internal.h"
#include "danests-report.h"

/* 2026-11-28T12:00:00Z and the edges of that UTC day */
#define NOON	((time_t)1795867200)
#define DAY0	((time_t)1795824000)	/* 2026-11-28T00:00:00Z */
#define DAY1	(DAY0 + 86400)		/* 2026-11-29T00:00:00Z */
#define D28	"2026-11-28"
#define D29	"2026-11-29"

#define NWRITERS	4
#define NRECORDS	500

struct fix {
	char tmp[256];
	char dir[300];
	struct danests_cache *c;
};

static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

static int
setup(void **state)
{
	struct fix *fx = calloc(1, sizeof(*fx));
	const char *t = getenv("TMPDIR");
	char why[DANESTS_WHY_MAX];

	if (fx == NULL)
		return -1;
	snprintf(fx->tmp, sizeof(fx->tmp), "%s/test_report.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(fx->tmp) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/cache", fx->tmp);
	if (danests_cache_open(fx->dir, &fx->c, why, sizeof(why)) !=
	    DANESTS_OK)
		return -1;
	*state = fx;
	return 0;
}

static int
teardown(void **state)
{
	struct fix *fx = *state;

	danests_cache_close(fx->c);
	nftw(fx->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* A result, filled field by field in the tests. */
static struct danests_rpt_result
res(const char *domain, danests_rpt_policy_type type, bool ok,
    danests_result_type rt, time_t when)
{
	struct danests_rpt_result r;

	memset(&r, 0, sizeof(r));
	r.policy_domain = domain;
	r.policy_type = type;
	if (type == DANESTS_RPT_STS) {
		r.policy_string = "version: STSv1\nmode: enforce\n"
		    "mx: mx.example.com\nmax_age: 86400";
		r.mx_host = "mx.example.com";
	} else if (type == DANESTS_RPT_TLSA) {
		r.policy_string = "3 1 1 ABCDEF";
		r.mx_host = "mx.example.com";
	}
	r.when = when;
	r.success = ok;
	r.result_type = rt;
	return r;
}

static void
record_ok(struct danests_cache *c, const struct danests_rpt_result *r)
{
	char why[DANESTS_WHY_MAX] = "";
	danests_status st = danests_report_record(c, r, why, sizeof(why));

	if (st != DANESTS_OK)
		fail_msg("record: %d %s", st, why);
}

/* What walks collect: a copy of everything passed. */
#define MAXG 16
struct seen {
	int n;
	struct {
		char day[11];
		char domain[256];
		size_t np;
		struct {
			danests_rpt_policy_type type;
			char pstr[4200], mx[256];
			uint64_t ok, fail;
			size_t nd;
			uint64_t dsum;
			struct danests_rpt_detail d0;
			char d0_ip[64], d0_info[256];
		} p[4];
		char *json;
	} g[MAXG];
	int stop_after;
};

static int
collect(void *arg, const struct danests_rpt_day *d)
{
	struct seen *s = arg;
	size_t i, j;

	assert_true(s->n < MAXG);
	strcpy(s->g[s->n].day, d->day);
	strcpy(s->g[s->n].domain, d->domain);
	s->g[s->n].np = d->npolicies;
	assert_true(d->npolicies <= 4);
	for (i = 0; i < d->npolicies; i++) {
		const struct danests_rpt_policy *p = &d->policies[i];

		s->g[s->n].p[i].type = p->policy_type;
		strcpy(s->g[s->n].p[i].pstr, p->policy_string);
		strcpy(s->g[s->n].p[i].mx, p->mx_host);
		s->g[s->n].p[i].ok = p->success;
		s->g[s->n].p[i].fail = p->failure;
		s->g[s->n].p[i].nd = p->ndetails;
		for (j = 0; j < p->ndetails; j++)
			s->g[s->n].p[i].dsum += p->details[j].count;
		if (p->ndetails > 0) {
			s->g[s->n].p[i].d0 = p->details[0];
			strcpy(s->g[s->n].p[i].d0_ip,
			    p->details[0].receiving_ip);
			strcpy(s->g[s->n].p[i].d0_info,
			    p->details[0].additional_info);
		}
	}
	s->n++;
	return s->stop_after != 0 && s->n >= s->stop_after;
}

static void
walk_ok(struct danests_cache *c, const char *day, const char *domain,
    struct seen *s)
{
	char why[DANESTS_WHY_MAX] = "";
	danests_status st;

	memset(s, 0, sizeof(*s));
	st = danests_report_walk(c, day, domain, collect, s, why, sizeof(why));
	if (st != DANESTS_OK)
		fail_msg("walk: %d %s", st, why);
}

/* test_roundtrip - counts per policy and per detail, strings kept */
static void
test_roundtrip(void **state)
{
	struct fix *fx = *state;
	struct danests_rpt_result r;
	struct seen s;
	int i;

	for (i = 0; i < 3; i++) {
		r = res("Example.COM.", DANESTS_RPT_STS, true, DANESTS_RT_NONE,
		    NOON);
		record_ok(fx->c, &r);
	}
	for (i = 0; i < 2; i++) {
		r = res("example.com", DANESTS_RPT_STS, false,
		    DANESTS_RT_STS_WEBPKI_INVALID, NOON + i);
		r.receiving_ip = "192.0.2.7";
		r.receiving_mx_hostname = "mx.example.com";
		r.additional_info = "unable to get local issuer certificate";
		record_ok(fx->c, &r);
	}
	r = res("example.com", DANESTS_RPT_STS, false,
	    DANESTS_RT_STARTTLS_NOT_SUPPORTED, NOON);
	record_ok(fx->c, &r);
	r = res("example.com", DANESTS_RPT_TLSA, false,
	    DANESTS_RT_VALIDATION_FAILURE, NOON);
	r.sending_mta_ip = "198.51.100.1";
	record_ok(fx->c, &r);
	r = res("other.example", DANESTS_RPT_NO_POLICY, true, DANESTS_RT_NONE,
	    NOON);
	record_ok(fx->c, &r);

	walk_ok(fx->c, NULL, NULL, &s);
	assert_int_equal(s.n, 2);
	assert_string_equal(s.g[0].day, D28);
	assert_string_equal(s.g[0].domain, "example.com");
	assert_int_equal(s.g[0].np, 2);
	for (i = 0; i < 2; i++) {
		if (s.g[0].p[i].type == DANESTS_RPT_STS) {
			assert_string_equal(s.g[0].p[i].pstr,
			    "version: STSv1\nmode: enforce\n"
			    "mx: mx.example.com\nmax_age: 86400");
			assert_string_equal(s.g[0].p[i].mx, "mx.example.com");
			assert_int_equal(s.g[0].p[i].ok, 3);
			assert_int_equal(s.g[0].p[i].fail, 3);
			assert_int_equal(s.g[0].p[i].nd, 2);
			assert_int_equal(s.g[0].p[i].dsum, 3);
		} else {
			assert_int_equal(s.g[0].p[i].type, DANESTS_RPT_TLSA);
			assert_string_equal(s.g[0].p[i].pstr, "3 1 1 ABCDEF");
			assert_int_equal(s.g[0].p[i].ok, 0);
			assert_int_equal(s.g[0].p[i].fail, 1);
			assert_int_equal(s.g[0].p[i].nd, 1);
			assert_int_equal(s.g[0].p[i].d0.result_type,
			    DANESTS_RT_VALIDATION_FAILURE);
			assert_int_equal(s.g[0].p[i].d0.count, 1);
			assert_string_equal(s.g[0].p[i].d0_ip, "");
		}
	}
	assert_string_equal(s.g[1].domain, "other.example");
	assert_int_equal(s.g[1].np, 1);
	assert_int_equal(s.g[1].p[0].type, DANESTS_RPT_NO_POLICY);
	assert_string_equal(s.g[1].p[0].pstr, "");
	assert_string_equal(s.g[1].p[0].mx, "");
	assert_int_equal(s.g[1].p[0].ok, 1);
	assert_int_equal(s.g[1].p[0].nd, 0);

	/* the detail's fields come back as recorded */
	memset(&s, 0, sizeof(s));
	walk_ok(fx->c, D28, "example.com", &s);
	assert_int_equal(s.n, 1);

	/* stopping early */
	memset(&s, 0, sizeof(s));
	s.stop_after = 1;
	assert_int_equal(danests_report_walk(fx->c, NULL, NULL, collect, &s,
	    NULL, 0), DANESTS_OK);
	assert_int_equal(s.n, 1);
}

/* detail_fields - every field of a detail, and one differing field makes
 * another detail */
static int
detail_fields(void *arg, const struct danests_rpt_day *d)
{
	int *checked = arg;
	const struct danests_rpt_detail *x;
	size_t i;

	assert_int_equal(d->npolicies, 1);
	assert_int_equal(d->policies[0].ndetails, 2);
	for (i = 0; i < 2; i++) {
		x = &d->policies[0].details[i];
		assert_int_equal(x->result_type, DANESTS_RT_CERT_EXPIRED);
		assert_string_equal(x->sending_mta_ip, "203.0.113.9");
		assert_string_equal(x->receiving_mx_hostname, "mx1.d.example");
		assert_string_equal(x->receiving_mx_helo, "helo.d.example");
		assert_string_equal(x->additional_info, "expired");
		if (strcmp(x->receiving_ip, "2001:db8::1") == 0)
			assert_int_equal(x->count, 2);
		else {
			assert_string_equal(x->receiving_ip, "2001:db8::2");
			assert_int_equal(x->count, 1);
		}
	}
	(*checked)++;
	return 0;
}

static void
test_details(void **state)
{
	struct fix *fx = *state;
	struct danests_rpt_result r;
	int checked = 0, i;

	for (i = 0; i < 3; i++) {
		r = res("d.example", DANESTS_RPT_TLSA, false,
		    DANESTS_RT_CERT_EXPIRED, NOON);
		r.sending_mta_ip = "203.0.113.9";
		r.receiving_mx_hostname = "mx1.d.example";
		r.receiving_mx_helo = "helo.d.example";
		r.receiving_ip = i == 2 ? "2001:db8::2" : "2001:db8::1";
		r.additional_info = "expired";
		record_ok(fx->c, &r);
	}
	assert_int_equal(danests_report_walk(fx->c, NULL, NULL, detail_fields,
	    &checked, NULL, 0), DANESTS_OK);
	assert_int_equal(checked, 1);
}

/* test_details_cap - past DANESTS_RPT_DETAILS_MAX distinct details a
 * failure counts in the summary only */
static void
test_details_cap(void **state)
{
	struct fix *fx = *state;
	static char ip[DANESTS_RPT_DETAILS_MAX + 5][32];
	struct danests_rpt_result r, *rs;
	struct seen s;
	char why[DANESTS_WHY_MAX];
	size_t bad, k, n;
	int i;

	/* in bursts (the same transaction body as one by one, fewer
	 * commits), the last bursts past the cap */
	n = DANESTS_RPT_DETAILS_MAX + 5;
	rs = calloc(n, sizeof(*rs));
	assert_non_null(rs);
	for (i = 0; i < (int)n; i++) {
		rs[i] = res("cap.example", DANESTS_RPT_STS, false,
		    DANESTS_RT_VALIDATION_FAILURE, NOON);
		snprintf(ip[i], sizeof(ip[i]), "10.0.%d.%d", i / 256, i % 256);
		rs[i].receiving_ip = ip[i];
	}
	for (k = 0; k < n; k += DANESTS_RPT_BATCH_MAX) {
		assert_int_equal(danests_report_record_many(fx->c, rs + k,
		    n - k < DANESTS_RPT_BATCH_MAX ? n - k :
		    DANESTS_RPT_BATCH_MAX, &bad, why, sizeof(why)), DANESTS_OK);
		assert_int_equal(bad, 0);
	}
	free(rs);
	/* a known detail still counts in its detail */
	r = res("cap.example", DANESTS_RPT_STS, false,
	    DANESTS_RT_VALIDATION_FAILURE, NOON);
	r.receiving_ip = "10.0.0.0";
	record_ok(fx->c, &r);
	walk_ok(fx->c, NULL, NULL, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.g[0].p[0].fail, DANESTS_RPT_DETAILS_MAX + 6);
	assert_int_equal(s.g[0].p[0].nd, DANESTS_RPT_DETAILS_MAX);
	assert_int_equal(s.g[0].p[0].dsum, DANESTS_RPT_DETAILS_MAX + 1);
}

/* Malformed results: each refused with PERM, nothing stored. */
struct bad_case {
	const char *name;
	const char *domain;
	int type;
	bool ok;
	int rt;
	const char *pstr;
	const char *field;	/* as receiving_mx_hostname */
	time_t when;
};

static char longfield[DANESTS_RPT_FIELD_MAX + 2];
static char longpol[DANESTS_RPT_STRING_MAX + 2];

static const struct bad_case bad_cases[] = {
	{ "no-domain", NULL, 2, true, 0, NULL, NULL, NOON },
	{ "empty-domain", "", 2, true, 0, NULL, NULL, NOON },
	{ "bad-domain", "exa mple.com", 2, true, 0, NULL, NULL, NOON },
	{ "domain-ctl", "a\x01.example", 2, true, 0, NULL, NULL, NOON },
	{ "type-0", "a.example", 0, true, 0, NULL, NULL, NOON },
	{ "type-3", "a.example", 3, true, 0, NULL, NULL, NOON },
	{ "failure-no-rt", "a.example", 2, false, 0, NULL, NULL, NOON },
	{ "failure-rt-range", "a.example", 2, false, 99, NULL, NULL, NOON },
	{ "success-with-rt", "a.example", 2, true, 1, NULL, NULL, NOON },
	{ "field-ctl", "a.example", 2, false, 1, NULL, "mx\n.example", NOON },
	{ "field-del", "a.example", 2, false, 1, NULL, "mx\x7f", NOON },
	{ "field-8bit", "a.example", 2, false, 1, NULL, "mx\xc3\xa9", NOON },
	{ "field-long", "a.example", 2, false, 1, NULL, longfield, NOON },
	{ "policy-long", "a.example", 2, true, 0, longpol, NULL, NOON },
	{ "policy-empty-line", "a.example", 2, true, 0, "a\n\nb", NULL, NOON },
	{ "policy-trailing-nl", "a.example", 2, true, 0, "a\n", NULL, NOON },
	{ "policy-leading-nl", "a.example", 2, true, 0, "\na", NULL, NOON },
	{ "policy-tab", "a.example", 2, true, 0, "a\tb", NULL, NOON },
	{ "negative-time", "a.example", 2, true, 0, NULL, NULL, -1 },
};

static struct danests_cache *bad_cache;

static void
test_bad_row(void **state)
{
	const struct bad_case *b = *state;
	struct danests_rpt_result r;
	char why[DANESTS_WHY_MAX] = "";
	struct seen s;

	memset(&r, 0, sizeof(r));
	r.policy_domain = b->domain;
	r.policy_type = (danests_rpt_policy_type)b->type;
	r.policy_string = b->pstr;
	r.success = b->ok;
	r.result_type = (danests_result_type)b->rt;
	r.receiving_mx_hostname = b->field;
	r.when = b->when;
	assert_int_equal(danests_report_record(bad_cache, &r, why,
	    sizeof(why)), DANESTS_PERM);
	assert_true(strncmp(why, "report: ", 8) == 0);
	walk_ok(bad_cache, NULL, NULL, &s);
	assert_int_equal(s.n, 0);
}

/* test_limits - the longest accepted strings are accepted */
static void
test_limits(void **state)
{
	struct fix *fx = *state;
	struct danests_rpt_result r;
	struct seen s;

	longfield[DANESTS_RPT_FIELD_MAX] = '\0';	/* 255: fits */
	longpol[DANESTS_RPT_STRING_MAX] = '\0';
	r = res("lim.example", DANESTS_RPT_STS, false,
	    DANESTS_RT_VALIDATION_FAILURE, NOON);
	r.receiving_mx_helo = longfield;
	r.policy_string = longpol;
	r.mx_host = longpol;
	record_ok(fx->c, &r);
	walk_ok(fx->c, NULL, NULL, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(strlen(s.g[0].p[0].pstr), DANESTS_RPT_STRING_MAX);
	longfield[DANESTS_RPT_FIELD_MAX] = 'x';
	longpol[DANESTS_RPT_STRING_MAX] = 'x';
}

/* test_days - the day is the UTC day of when; filters by day, domain */
static void
test_days(void **state)
{
	struct fix *fx = *state;
	struct danests_rpt_result r;
	struct seen s;
	char why[DANESTS_WHY_MAX];

	r = res("b.example", DANESTS_RPT_STS, true, 0, DAY1 - 1);
	record_ok(fx->c, &r);
	r = res("b.example", DANESTS_RPT_STS, true, 0, DAY1);
	record_ok(fx->c, &r);
	r = res("a.example", DANESTS_RPT_STS, true, 0, DAY0);
	record_ok(fx->c, &r);
	r = res("c.example", DANESTS_RPT_STS, true, 0, DAY1 + 86399);
	record_ok(fx->c, &r);
	r = res("b.example", DANESTS_RPT_STS, true, 0, DAY0 - 1);
	record_ok(fx->c, &r);

	walk_ok(fx->c, NULL, NULL, &s);
	assert_int_equal(s.n, 5);
	assert_string_equal(s.g[0].day, "2026-11-27");
	assert_string_equal(s.g[1].day, D28);
	assert_string_equal(s.g[1].domain, "a.example");
	assert_string_equal(s.g[2].day, D28);
	assert_string_equal(s.g[2].domain, "b.example");
	assert_string_equal(s.g[3].day, D29);
	assert_string_equal(s.g[3].domain, "b.example");
	assert_string_equal(s.g[4].day, D29);
	assert_string_equal(s.g[4].domain, "c.example");

	walk_ok(fx->c, D28, NULL, &s);
	assert_int_equal(s.n, 2);
	walk_ok(fx->c, NULL, "b.example", &s);
	assert_int_equal(s.n, 3);
	assert_string_equal(s.g[2].day, D29);
	walk_ok(fx->c, NULL, "c.example", &s);
	assert_int_equal(s.n, 1);
	walk_ok(fx->c, D29, "a.example", &s);
	assert_int_equal(s.n, 0);
	walk_ok(fx->c, "2026-11-30", NULL, &s);
	assert_int_equal(s.n, 0);
	/* a prefix of a domain is another domain */
	walk_ok(fx->c, NULL, "b.exampl", &s);
	assert_int_equal(s.n, 0);
	assert_int_equal(danests_report_walk(fx->c, "2026-02-30", NULL,
	    collect, &s, why, sizeof(why)), DANESTS_PERM);
	assert_int_equal(danests_report_walk(fx->c, "2026-1-01", NULL,
	    collect, &s, why, sizeof(why)), DANESTS_PERM);
	assert_int_equal(danests_report_walk(fx->c, NULL, "a b", collect, &s,
	    why, sizeof(why)), DANESTS_PERM);
}

/* test_forget - one (day, domain), then every day before a day */
static void
test_forget(void **state)
{
	struct fix *fx = *state;
	struct danests_rpt_result r;
	struct danests_rpt_state st;
	struct seen s;
	char why[DANESTS_WHY_MAX];
	size_t n;

	r = res("a.example", DANESTS_RPT_STS, false, 1, DAY0 - 1);
	record_ok(fx->c, &r);
	r = res("b.example", DANESTS_RPT_STS, true, 0, DAY0 - 1);
	record_ok(fx->c, &r);
	r = res("a.example", DANESTS_RPT_STS, false, 1, DAY0);
	record_ok(fx->c, &r);
	r = res("a.example", DANESTS_RPT_TLSA, true, 0, DAY0);
	record_ok(fx->c, &r);
	r = res("b.example", DANESTS_RPT_STS, true, 0, DAY0);
	record_ok(fx->c, &r);
	memset(&st, 0, sizeof(st));
	st.sent = 5;
	assert_int_equal(danests_report_state_put(fx->c, "2026-11-27",
	    "a.example", &st, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_report_state_put(fx->c, D28, "a.example",
	    &st, why, sizeof(why)), DANESTS_OK);

	assert_int_equal(danests_report_forget(fx->c, D28, "a.example", &n,
	    why, sizeof(why)), DANESTS_OK);
	assert_int_equal(n, 1);
	assert_int_equal(danests_report_forget(fx->c, D28, "a.example", &n,
	    why, sizeof(why)), DANESTS_OK);
	assert_int_equal(n, 0);
	walk_ok(fx->c, NULL, NULL, &s);
	assert_int_equal(s.n, 3);
	walk_ok(fx->c, D28, NULL, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.g[0].domain, "b.example");
	/* its sending state stays */
	assert_int_equal(danests_report_state_get(fx->c, D28, "a.example",
	    &st, why, sizeof(why)), DANESTS_OK);

	assert_int_equal(danests_report_forget(fx->c, D28, NULL, &n, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(n, 2);
	walk_ok(fx->c, NULL, NULL, &s);
	assert_int_equal(s.n, 1);
	assert_string_equal(s.g[0].day, D28);
	assert_int_equal(danests_report_state_get(fx->c, "2026-11-27",
	    "a.example", &st, why, sizeof(why)), DANESTS_NOTFOUND);
	assert_int_equal(danests_report_state_get(fx->c, D28, "a.example",
	    &st, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_report_forget(fx->c, "28-11-2026", NULL, &n,
	    why, sizeof(why)), DANESTS_PERM);
	assert_int_equal(danests_report_forget(fx->c, NULL, NULL, &n,
	    why, sizeof(why)), DANESTS_PERM);
}

/* test_state - sending state and targets round-trip */
static void
test_state(void **state)
{
	struct fix *fx = *state;
	struct danests_rpt_state st, got;
	struct danests_rpt_target t, tgot;
	char why[DANESTS_WHY_MAX], uri[600];

	assert_int_equal(danests_report_state_get(fx->c, D28, "a.example",
	    &got, why, sizeof(why)), DANESTS_NOTFOUND);
	memset(&st, 0, sizeof(st));
	st.attempts = 3;
	st.next_try = DAY1 + 3600;
	st.sent = 0;
	strcpy(st.last_error, "mailto:x@a.example: sendmail exit 75");
	assert_int_equal(danests_report_state_put(fx->c, D28, "A.example.",
	    &st, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_report_state_get(fx->c, D28, "a.example",
	    &got, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(got.attempts, 3);
	assert_int_equal(got.next_try, DAY1 + 3600);
	assert_int_equal(got.sent, 0);
	assert_string_equal(got.last_error, st.last_error);
	st.sent = DAY1 + 7200;
	st.last_error[0] = '\0';
	assert_int_equal(danests_report_state_put(fx->c, D28, "a.example",
	    &st, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_report_state_get(fx->c, D28, "a.example",
	    &got, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(got.sent, DAY1 + 7200);
	assert_string_equal(got.last_error, "");
	assert_int_equal(got.ntook, 0);
	/* the targets that took it, with the last error kept beside */
	strcpy(st.last_error, "https://r.example/tlsrpt: HTTP status 500");
	danests_report_state_mark(&st, "mailto:a@r.example");
	danests_report_state_mark(&st, "mailto:b@r.example");
	danests_report_state_mark(&st, "mailto:a@r.example");
	assert_int_equal(st.ntook, 2);
	assert_int_equal(danests_report_state_put(fx->c, D28, "a.example",
	    &st, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_report_state_get(fx->c, D28, "a.example",
	    &got, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(got.ntook, 2);
	assert_string_equal(got.last_error, st.last_error);
	assert_true(danests_report_state_took(&got, "mailto:a@r.example"));
	assert_true(danests_report_state_took(&got, "mailto:b@r.example"));
	assert_false(danests_report_state_took(&got,
	    "https://r.example/tlsrpt"));
	st.ntook = 0;
	st.last_error[0] = '\0';
	/* other days and domains are apart */
	assert_int_equal(danests_report_state_get(fx->c, D29, "a.example",
	    &got, why, sizeof(why)), DANESTS_NOTFOUND);
	assert_int_equal(danests_report_state_get(fx->c, D28, "b.example",
	    &got, why, sizeof(why)), DANESTS_NOTFOUND);
	st.last_error[0] = '\x01';
	assert_int_equal(danests_report_state_put(fx->c, D28, "a.example",
	    &st, why, sizeof(why)), DANESTS_PERM);

	assert_int_equal(danests_report_target_get(fx->c,
	    "https://r.example/tlsrpt", &tgot, why, sizeof(why)),
	    DANESTS_NOTFOUND);
	memset(&t, 0, sizeof(t));
	t.failures = 4;
	t.suppressed_until = DAY1 + 86400;
	t.last_failure = DAY1;
	strcpy(t.last_error, "connect timeout");
	assert_int_equal(danests_report_target_put(fx->c,
	    "https://r.example/tlsrpt", &t, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_report_target_get(fx->c,
	    "https://r.example/tlsrpt", &tgot, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(tgot.failures, 4);
	assert_int_equal(tgot.suppressed_until, DAY1 + 86400);
	assert_int_equal(tgot.last_failure, DAY1);
	assert_string_equal(tgot.last_error, "connect timeout");
	assert_int_equal(danests_report_target_get(fx->c,
	    "https://r.example/tlsrpt2", &tgot, why, sizeof(why)),
	    DANESTS_NOTFOUND);
	/* the longest URI a record holds (511) */
	memset(uri, 'a', sizeof(uri));
	memcpy(uri, "mailto:", 7);
	uri[511] = '\0';
	assert_int_equal(danests_report_target_put(fx->c, uri, &t, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_report_target_get(fx->c, uri, &tgot, why,
	    sizeof(why)), DANESTS_OK);
	uri[511] = 'a';
	uri[512] = '\0';
	assert_int_equal(danests_report_target_put(fx->c, uri, &t, why,
	    sizeof(why)), DANESTS_PERM);
	assert_int_equal(danests_report_target_get(fx->c, "", &tgot, why,
	    sizeof(why)), DANESTS_PERM);
}

/* raw_put - a record with a sound checksum but malformed content */
struct raw {
	const char *key;
	size_t klen;
	const char *val;
	size_t len;
	enum cache_rdb db;
};

static danests_status
raw_txn(void *arg, struct cache_rtxn *t, char *why, size_t whylen)
{
	struct raw *r = arg;

	return cache_rpt_put(t, r->db, r->key, r->klen, r->val, r->len, why,
	    whylen);
}

/* test_damaged_record - a malformed record reads as TEMP, never as an
 * absent or zero count, and recording over it is refused too */
static void
test_damaged_record(void **state)
{
	struct fix *fx = *state;
	struct danests_rpt_result r;
	struct danests_rpt_state st;
	struct seen s;
	char why[DANESTS_WHY_MAX] = "";
	struct raw raw = { D28 " a.example\0P12345678", 30, "P\x02", 2,
	    CACHE_RDB_COUNTERS };
	struct raw sraw = { "S" D28 " a.example", 21, "S", 1,
	    CACHE_RDB_STATE };

	r = res("z.example", DANESTS_RPT_STS, true, 0, NOON);
	record_ok(fx->c, &r);
	assert_int_equal(cache_rpt_run(cache_view_inner(fx->c), true, raw_txn,
	    &raw, why, sizeof(why)), DANESTS_OK);
	memset(&s, 0, sizeof(s));
	assert_int_equal(danests_report_walk(fx->c, NULL, NULL, collect, &s,
	    why, sizeof(why)), DANESTS_TEMP);
	assert_non_null(strstr(why, "corrupt"));
	assert_int_equal(danests_report_walk(fx->c, D28, "z.example", collect,
	    &s, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_rpt_run(cache_view_inner(fx->c), true, raw_txn,
	    &sraw, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_report_state_get(fx->c, D28, "a.example",
	    &st, why, sizeof(why)), DANESTS_TEMP);
}

/* test_damaged_file - bytes of a report value changed under the cache:
 * the walk at the next open finds it (the reporting databases are
 * walked with the others) and the environment is rebuilt */
static void
test_damaged_file(void **state)
{
	struct fix *fx = *state;
	struct danests_rpt_result r;
	char why[DANESTS_WHY_MAX] = "", path[400];
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_cursor *cur;
	MDB_val k, v;
	unsigned char buf[512];

	r = res("z.example", DANESTS_RPT_STS, true, 0, NOON);
	record_ok(fx->c, &r);
	danests_cache_close(fx->c);
	fx->c = NULL;
	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 8), 0);
	assert_int_equal(mdb_env_open(env, fx->dir, 0, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, "tlsrpt", 0, &dbi), 0);
	assert_int_equal(mdb_cursor_open(txn, dbi, &cur), 0);
	assert_int_equal(mdb_cursor_get(cur, &k, &v, MDB_FIRST), 0);
	assert_true(v.mv_size <= sizeof(buf));
	memcpy(buf, v.mv_data, v.mv_size);
	buf[10] ^= 1;	/* the success count */
	v.mv_data = buf;
	mdb_cursor_close(cur);
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
	snprintf(path, sizeof(path), "%s/verified", fx->dir);
	(void)unlink(path);

	assert_int_equal(danests_cache_open(fx->dir, &fx->c, why,
	    sizeof(why)), DANESTS_OK);
	assert_non_null(strstr(why, "rebuilt"));
	assert_true(danests_cache_rebuilt_at(fx->c) != 0);
}

/* test_policy - the policy fields of a host, the same for every adapter */
static void
test_policy(void **state)
{
	unsigned char d1[] = { 0xab, 0x01, 0xff };
	unsigned char d2[] = { 0x00 };
	struct danests_tlsa t[2] = { { 3, 1, 1, sizeof(d1), d1 },
	    { 2, 0, 2, sizeof(d2), d2 } };
	char *mx[] = { "mx1.example.com", "*.example.net" };
	struct danests_sts sts;
	struct danests_host h;
	struct danests_decision d;
	struct danests_rpt_result out;
	char buf[512];

	(void)state;
	memset(&d, 0, sizeof(d));
	memset(&h, 0, sizeof(h));
	memset(&sts, 0, sizeof(sts));
	d.domain = "example.com";
	h.name = "mx1.example.com";
	h.policy = DANESTS_POLICY_DANE;
	h.ntlsa = 2;
	h.tlsa = t;
	assert_int_equal(danests_report_policy(&d, &h, &out, buf, sizeof(buf)),
	    DANESTS_OK);
	assert_int_equal(out.policy_type, DANESTS_RPT_TLSA);
	assert_string_equal(out.policy_domain, "example.com");
	assert_string_equal(out.policy_string, "3 1 1 AB01FF\n2 0 2 00");
	assert_string_equal(out.mx_host, "mx1.example.com");
	assert_int_equal(danests_report_policy(&d, &h, &out, buf, 20),
	    DANESTS_PERM);

	sts.policy.mode = DANESTS_STS_TESTING;
	sts.policy.max_age = 604800;
	sts.policy.nmx = 2;
	sts.policy.mx = mx;
	d.sts = &sts;
	h.policy = DANESTS_POLICY_STS_TESTING;
	assert_int_equal(danests_report_policy(&d, &h, &out, buf, sizeof(buf)),
	    DANESTS_OK);
	assert_int_equal(out.policy_type, DANESTS_RPT_STS);
	assert_string_equal(out.policy_string, "version: STSv1\n"
	    "mode: testing\nmx: mx1.example.com\nmx: *.example.net\n"
	    "max_age: 604800");
	assert_string_equal(out.mx_host, "mx1.example.com\n*.example.net");
	h.policy = DANESTS_POLICY_STS_ENFORCE;
	sts.policy.mode = DANESTS_STS_ENFORCE;
	assert_int_equal(danests_report_policy(&d, &h, &out, buf, sizeof(buf)),
	    DANESTS_OK);
	assert_int_equal(out.policy_type, DANESTS_RPT_STS);
	assert_non_null(strstr(out.policy_string, "mode: enforce"));
	/* exactly big enough, and one byte less */
	assert_int_equal(danests_report_policy(&d, &h, &out, buf,
	    strlen(out.policy_string) + 1 + strlen(out.mx_host) + 1),
	    DANESTS_OK);
	assert_int_equal(danests_report_policy(&d, &h, &out, buf,
	    strlen(out.policy_string) + 1 + strlen(out.mx_host)),
	    DANESTS_PERM);

	h.policy = DANESTS_POLICY_ENCRYPT;
	assert_int_equal(danests_report_policy(&d, &h, &out, buf, sizeof(buf)),
	    DANESTS_OK);
	assert_int_equal(out.policy_type, DANESTS_RPT_NO_POLICY);
	assert_null(out.policy_string);
	assert_null(out.mx_host);
	h.policy = DANESTS_POLICY_MAY;
	assert_int_equal(danests_report_policy(&d, &h, &out, buf, sizeof(buf)),
	    DANESTS_OK);
	assert_int_equal(out.policy_type, DANESTS_RPT_NO_POLICY);
	/* an sts host without a policy in the decision */
	d.sts = NULL;
	h.policy = DANESTS_POLICY_STS_ENFORCE;
	assert_int_equal(danests_report_policy(&d, &h, &out, buf, sizeof(buf)),
	    DANESTS_OK);
	assert_int_equal(out.policy_type, DANESTS_RPT_NO_POLICY);
}

/* test_ctx - danests_ctx_report records only with tls_reports yes */
static void
test_ctx(void **state)
{
	struct fix *fx = *state;
	struct danests_config *cfg = danests_config_new();
	struct event_base *base = event_base_new();
	struct danests_ctx *ctx;
	struct dns *dns;
	struct danests_rpt_result r;
	char why[DANESTS_WHY_MAX];
	struct seen s;
	int on;

	assert_non_null(cfg);
	assert_non_null(base);
	assert_int_equal(danests_config_set_cache_dir(cfg, fx->dir, why,
	    sizeof(why)), DANESTS_OK);
	danests_config_set_sts(cfg, false);
	for (on = 0; on < 2; on++) {
		assert_int_equal(danests_config_apply(cfg, "tls_reports",
		    on ? "yes" : "no", why, sizeof(why)), DANESTS_OK);
		assert_int_equal(dns_mock_new(base, NULL, 0, &dns),
		    DANESTS_OK);
		assert_int_equal(danests_ctx_new_with_dns(cfg, base, dns,
		    &ctx, why, sizeof(why)), DANESTS_OK);
		r = res("ctx.example", DANESTS_RPT_STS, true, 0, NOON);
		assert_int_equal(danests_ctx_report(ctx, &r, why,
		    sizeof(why)), on ? DANESTS_OK : DANESTS_NOTFOUND);
		r.policy_type = 7;
		assert_int_equal(danests_ctx_report(ctx, &r, why,
		    sizeof(why)), on ? DANESTS_PERM : DANESTS_NOTFOUND);
		assert_int_equal(danests_ctx_report_many(ctx, &r, 1, NULL, why,
		    sizeof(why)), on ? DANESTS_OK : DANESTS_NOTFOUND);
		r.policy_type = DANESTS_RPT_STS;
		assert_int_equal(danests_ctx_report_many(ctx, &r, 1, NULL, why,
		    sizeof(why)), on ? DANESTS_OK : DANESTS_NOTFOUND);
		danests_ctx_free(ctx);
		walk_ok(fx->c, NULL, NULL, &s);
		assert_int_equal(s.n, on);
	}
	danests_config_free(cfg);
	event_base_free(base);
}

/* test_many - a burst in one transaction: the malformed skipped and
 * counted, the others all counted; the cap */
static void
test_many(void **state)
{
	struct fix *fx = *state;
	struct danests_rpt_result r[5];
	char why[DANESTS_WHY_MAX];
	struct seen s;
	size_t bad = 99;

	r[0] = res("m.example", DANESTS_RPT_STS, true, 0, NOON);
	r[1] = res("m.example", DANESTS_RPT_STS, false,
	    DANESTS_RT_CERT_EXPIRED, NOON);
	r[2] = res("m.example", DANESTS_RPT_STS, false, DANESTS_RT_NONE,
	    NOON);		/* malformed: a failure without a type */
	r[3] = res("n.example", DANESTS_RPT_TLSA, true, 0, NOON);
	r[4] = res("m.example", DANESTS_RPT_STS, false,
	    DANESTS_RT_CERT_EXPIRED, NOON);
	assert_int_equal(danests_report_record_many(fx->c, r, 5, &bad, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(bad, 1);
	assert_non_null(strstr(why, "result type"));
	walk_ok(fx->c, NULL, NULL, &s);
	assert_int_equal(s.n, 2);
	assert_int_equal(s.g[0].p[0].ok, 1);
	assert_int_equal(s.g[0].p[0].fail, 2);
	assert_int_equal(s.g[0].p[0].nd, 1);
	assert_int_equal(s.g[0].p[0].dsum, 2);
	assert_int_equal(s.g[1].p[0].ok, 1);
	assert_int_equal(danests_report_record_many(fx->c, r, 0, &bad, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(bad, 0);
	assert_int_equal(danests_report_record_many(fx->c, r,
	    DANESTS_RPT_BATCH_MAX + 1, &bad, why, sizeof(why)), DANESTS_PERM);
	/* all malformed: nothing written, still OK */
	assert_int_equal(danests_report_record_many(fx->c, &r[2], 1, &bad,
	    why, sizeof(why)), DANESTS_OK);
	assert_int_equal(bad, 1);
	walk_ok(fx->c, NULL, "m.example", &s);
	assert_int_equal(s.g[0].p[0].fail, 2);
}

/* test_concurrent - NWRITERS processes at once, NRECORDS results each:
 * the totals are exact */
static void
test_concurrent(void **state)
{
	struct fix *fx = *state;
	struct seen s;
	pid_t pids[NWRITERS];
	int i, j, status;

	for (i = 0; i < NWRITERS; i++) {
		if ((pids[i] = fork()) == 0) {
			struct danests_cache *c;
			struct danests_rpt_result r;
			char why[DANESTS_WHY_MAX], ip[32];

			if (danests_cache_open(fx->dir, &c, why,
			    sizeof(why)) != DANESTS_OK)
				_exit(2);
			for (j = 0; j < NRECORDS; j++) {
				r = res("conc.example", DANESTS_RPT_STS,
				    j % 2 == 0, j % 2 ? DANESTS_RT_CERT_EXPIRED
				    : DANESTS_RT_NONE, NOON);
				snprintf(ip, sizeof(ip), "192.0.2.%d", j % 3);
				r.receiving_ip = ip;
				if (danests_report_record(c, &r, why,
				    sizeof(why)) != DANESTS_OK) {
					fprintf(stderr, "writer: %s\n", why);
					_exit(1);
				}
			}
			danests_cache_close(c);
			_exit(0);
		}
		assert_true(pids[i] > 0);
	}
	for (i = 0; i < NWRITERS; i++) {
		assert_int_equal(waitpid(pids[i], &status, 0), pids[i]);
		assert_true(WIFEXITED(status));
		assert_int_equal(WEXITSTATUS(status), 0);
	}
	walk_ok(fx->c, NULL, NULL, &s);
	assert_int_equal(s.n, 1);
	assert_int_equal(s.g[0].p[0].ok, NWRITERS * NRECORDS / 2);
	assert_int_equal(s.g[0].p[0].fail, NWRITERS * NRECORDS / 2);
	assert_int_equal(s.g[0].p[0].nd, 3);
	assert_int_equal(s.g[0].p[0].dsum, NWRITERS * NRECORDS / 2);
}

/* total - every count stored for a domain */
static uint64_t
total(struct danests_cache *c, const char *domain)
{
	struct seen s;
	uint64_t n = 0;
	int i;
	size_t j;

	walk_ok(c, NULL, domain, &s);
	for (i = 0; i < s.n; i++)
		for (j = 0; j < s.g[i].np; j++)
			n += s.g[i].p[j].ok + s.g[i].p[j].fail;
	return n;
}

/*
 * test_kill - a child records in a loop and writes one byte to a pipe
 * after each DANESTS_OK (an acknowledged record); the parent kills it with
 * SIGKILL at a random time and counts the bytes.  Stored = acknowledged,
 * or acknowledged + 1 when the kill fell between a commit and its byte;
 * never less (a committed count is never lost) and never more than one
 * over (nothing is counted twice).  Several rounds, accumulating.  The
 * count is read after a write transaction of the parent: LMDB makes a
 * commit visible to readers after its meta page is written, and a writer
 * killed between the two leaves a commit that the next writer publishes.
 */
static void
test_kill(void **state)
{
	struct fix *fx = *state;
	uint64_t acked = 0, stored, between = 0;
	struct danests_rpt_state st;
	char buf[4096], wbuf[DANESTS_WHY_MAX];
	ssize_t n;
	pid_t pid;
	int p[2], round, status;

	srandom((unsigned)time(NULL) ^ (unsigned)getpid());
	for (round = 0; round < 8; round++) {
		assert_int_equal(pipe(p), 0);
		if ((pid = fork()) == 0) {
			struct danests_cache *c;
			struct danests_rpt_result r;
			char why[DANESTS_WHY_MAX];

			close(p[0]);
			if (danests_cache_open(fx->dir, &c, why,
			    sizeof(why)) != DANESTS_OK)
				_exit(2);
			for (;;) {
				r = res("kill.example", DANESTS_RPT_TLSA,
				    false, DANESTS_RT_TLSA_INVALID, NOON);
				if (danests_report_record(c, &r, why,
				    sizeof(why)) != DANESTS_OK)
					_exit(1);
				if (write(p[1], "x", 1) != 1)
					_exit(1);
			}
		}
		assert_true(pid > 0);
		close(p[1]);
		usleep(20000 + (useconds_t)(random() % 200000));
		assert_int_equal(kill(pid, SIGKILL), 0);
		assert_int_equal(waitpid(pid, &status, 0), pid);
		assert_true(WIFSIGNALED(status));
		assert_int_equal(WTERMSIG(status), SIGKILL);
		while ((n = read(p[0], buf, sizeof(buf))) > 0)
			acked += (uint64_t)n;
		close(p[0]);
		/* a commit whose writer died before LMDB published it to
		 * readers (after the meta page, before the reader table)
		 * shows from the next write transaction on: make one */
		memset(&st, 0, sizeof(st));
		assert_int_equal(danests_report_state_put(fx->c, D28,
		    "other.example", &st, wbuf, sizeof(wbuf)), DANESTS_OK);
		stored = total(fx->c, "kill.example");
		assert_true(stored >= acked);
		if (stored > acked + 1)
			fail_msg("round %d: %llu stored, %llu acknowledged",
			    round, (unsigned long long)stored,
			    (unsigned long long)acked);
		if (stored == acked + 1) {
			between++;
			acked++;	/* that record counts from now on */
		}
	}
	assert_true(acked > 0);
	print_message("kill: %llu records acknowledged over 8 kills, %llu "
	    "kills between a commit and its acknowledgement\n",
	    (unsigned long long)acked, (unsigned long long)between);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_details, setup, teardown),
		cmocka_unit_test_setup_teardown(test_details_cap, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_limits, setup, teardown),
		cmocka_unit_test_setup_teardown(test_days, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forget, setup, teardown),
		cmocka_unit_test_setup_teardown(test_state, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damaged_record, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_damaged_file, setup,
		    teardown),
		cmocka_unit_test(test_policy),
		cmocka_unit_test_setup_teardown(test_ctx, setup, teardown),
		cmocka_unit_test_setup_teardown(test_many, setup, teardown),
		cmocka_unit_test_setup_teardown(test_concurrent, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_kill, setup, teardown),
	};
	struct fix *fx;
	int rc;

	memset(longfield, 'h', sizeof(longfield) - 1);
	memset(longpol, 'p', sizeof(longpol) - 1);
	rc = cmocka_run_group_tests_name("report", tests, NULL, NULL);
	/* the malformed results, one test each, on one cache */
	if (setup((void **)&fx) != 0)
		return 1;
	bad_cache = fx->c;
	rc |= run_table("report_malformed", bad_cases, NROWS(bad_cases),
	    sizeof(bad_cases[0]), test_bad_row);
	teardown((void **)&fx);
	return rc;
}
