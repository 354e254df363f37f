/*
 * test_rules.c - the pure decision rules (core/src/rules.c) as tables:
 * the MX RRset, a host's addresses, its TLSA RRset, the MTA-STS merge and
 * the verdict.  Each row is one case: the answers in, the host or domain
 * decision out.  test_decide.c runs the same rules through the engine.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "table.h"

#include "danests-internal.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

#define S	DANESTS_SEC_SECURE
#define I	DANESTS_SEC_INSECURE
#define B	DANESTS_SEC_BOGUS
#define U	DANESTS_SEC_INDETERMINATE

#define DANE	DANESTS_POLICY_DANE
#define ENC	DANESTS_POLICY_ENCRYPT
#define ENF	DANESTS_POLICY_STS_ENFORCE
#define TST	DANESTS_POLICY_STS_TESTING
#define MAY	DANESTS_POLICY_MAY
#define SKIP	DANESTS_POLICY_SKIP

#define R(x)	DANESTS_R_##x

/* answer - a canned answer with no records */
static struct dns_answer
answer(enum dns_rcode rcode, danests_dnssec sec)
{
	struct dns_answer a;

	memset(&a, 0, sizeof(a));
	a.rcode = rcode;
	a.sec = sec;
	return a;
}

/* ---- rules_mx ---- */

struct mx_case {
	const char *name;
	enum dns_rcode rcode;
	danests_dnssec sec;
	const char *cname;
	const char *mx[5];	/* "PREF TARGET", "." for the root */
	danests_verdict verdict;
	danests_reason reason;
	danests_dnssec mx_security;
	bool implicit;
	const char *hosts[4];	/* in delivery order */
	int prio[4];
};

static const struct mx_case mx_cases[] = {
	{ "mx-servfail", DNS_R_SERVFAIL, U, NULL, { NULL },
	    DANESTS_TEMPFAIL, R(DNSSEC_INVALID), B, false, { NULL }, { 0 } },
	{ "mx-timeout", DNS_R_TIMEOUT, U, NULL, { NULL },
	    DANESTS_TEMPFAIL, R(DNS_TIMEOUT), U, false, { NULL }, { 0 } },
	{ "mx-error", DNS_R_ERROR, U, NULL, { NULL },
	    DANESTS_TEMPFAIL, R(DNS_ERROR), U, false, { NULL }, { 0 } },
	{ "mx-nxdomain", DNS_R_NXDOMAIN, S, NULL, { NULL },
	    DANESTS_PERMFAIL, R(NXDOMAIN), S, false, { NULL }, { 0 } },
	/* RFC 7505 3: null MX */
	{ "null-mx", DNS_R_OK, S, NULL, { "0 ." },
	    DANESTS_PERMFAIL, R(NULL_MX), S, false, { NULL }, { 0 } },
	{ "null-mx-among-others", DNS_R_OK, I, NULL, { "0 .", "10 mx.d.test" },
	    DANESTS_DELIVER, R(OK), I, false, { "mx.d.test" }, { 10 } },
	/* RFC 5321 5.1: implicit MX */
	{ "implicit", DNS_R_NODATA, S, NULL, { NULL },
	    DANESTS_DELIVER, R(OK), S, true, { "d.test" }, { 0 } },
	{ "implicit-after-cname", DNS_R_NODATA, S, "e.test", { NULL },
	    DANESTS_DELIVER, R(OK), S, true, { "e.test" }, { 0 } },
	/* preference order, names break ties, duplicates keep the lower */
	{ "order", DNS_R_OK, S, NULL,
	    { "20 b.test", "10 c.test", "10 a.test", "5 b.test" },
	    DANESTS_DELIVER, R(OK), S, false,
	    { "b.test", "a.test", "c.test" }, { 5, 10, 10 } },
};

static void
run_mx(void **state)
{
	const struct mx_case *c = *state;
	struct danests_decision *d;
	struct dns_answer a = answer(c->rcode, c->sec);
	struct dns_rr rr[5];
	char targets[5][64];
	size_t i, n;

	memset(rr, 0, sizeof(rr));
	for (n = 0; n < NELEM(c->mx) && c->mx[n] != NULL; n++) {
		int pref;

		assert_int_equal(sscanf(c->mx[n], "%d %63s", &pref,
		    targets[n]), 2);
		if (strcmp(targets[n], ".") == 0)
			targets[n][0] = '\0';
		rr[n].type = DNS_T_MX;
		rr[n].pref = (uint16_t)pref;
		rr[n].target = targets[n];
	}
	a.nrr = n;
	a.rr = rr;
	a.cname = (char *)(uintptr_t)c->cname;

	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	d->domain = strdup("d.test");
	d->verdict = DANESTS_DELIVER;
	d->reason = R(OK);
	assert_int_equal(rules_mx(d, &a), 0);
	assert_int_equal(d->verdict, c->verdict);
	assert_int_equal(d->reason, c->reason);
	assert_int_equal(d->mx_security, c->mx_security);
	assert_int_equal(d->implicit_mx, c->implicit);
	if (c->cname != NULL)
		assert_string_equal(d->mx_cname, c->cname);
	for (n = 0; n < NELEM(c->hosts) && c->hosts[n] != NULL; n++)
		;
	assert_int_equal(d->nhosts, n);
	for (i = 0; i < n; i++) {
		/* undecided until the host's own lookups answer */
		assert_string_equal(d->hosts[i].name, c->hosts[i]);
		assert_int_equal(d->hosts[i].priority, c->prio[i]);
		assert_int_equal(d->hosts[i].policy, SKIP);
		assert_int_equal(d->hosts[i].reason, R(DNS_TIMEOUT));
		assert_int_equal(d->hosts[i].addr_security, U);
		assert_int_equal(d->hosts[i].tlsa_security, U);
	}
	danests_decision_free(d);
}

/* rules_mx with no answer at all (out of memory in the resolver) */
static void
test_mx_null(void **state)
{
	struct danests_decision d;

	(void)state;
	memset(&d, 0, sizeof(d));
	assert_int_equal(rules_mx(&d, NULL), 0);
	assert_int_equal(d.verdict, DANESTS_TEMPFAIL);
	assert_int_equal(d.reason, R(DNS_ERROR));
	assert_int_equal(d.nhosts, 0);
}

/* ---- rules_addrs ---- */

struct addr_case {
	const char *name;
	enum dns_rcode a_rcode;
	danests_dnssec a_sec;
	enum dns_rcode aaaa_rcode;
	danests_dnssec aaaa_sec;
	size_t naddrs;		/* collected from the answers */
	bool tlsa;		/* TLSA lookup due */
	danests_policy policy;
	danests_reason reason;
	danests_dnssec addr_security;
};

static const struct addr_case addr_cases[] = {
	{ "secure-a", DNS_R_OK, S, DNS_R_NODATA, S, 1, true,
	    SKIP, R(DNS_TIMEOUT), S },
	{ "secure-both", DNS_R_OK, S, DNS_R_OK, S, 2, true,
	    SKIP, R(DNS_TIMEOUT), S },
	/* RFC 7672 2.2.2: insecure addresses, no TLSA lookup */
	{ "insecure", DNS_R_OK, I, DNS_R_NODATA, I, 1, false,
	    MAY, R(ADDR_INSECURE), I },
	{ "one-family-insecure", DNS_R_OK, S, DNS_R_OK, I, 2, false,
	    MAY, R(ADDR_INSECURE), I },
	/* bogus is bogus even when the other family answered */
	{ "aaaa-bogus", DNS_R_OK, S, DNS_R_SERVFAIL, U, 1, false,
	    SKIP, R(DNSSEC_INVALID), B },
	{ "a-bogus", DNS_R_SERVFAIL, U, DNS_R_OK, S, 1, false,
	    SKIP, R(DNSSEC_INVALID), B },
	/* a timeout matters only when no address is left */
	{ "a-timeout-aaaa-secure", DNS_R_TIMEOUT, U, DNS_R_OK, S, 1, true,
	    SKIP, R(DNS_TIMEOUT), S },
	{ "a-timeout-no-address", DNS_R_TIMEOUT, U, DNS_R_NODATA, S, 0,
	    false, SKIP, R(DNS_TIMEOUT), U },
	{ "error-then-timeout", DNS_R_ERROR, U, DNS_R_TIMEOUT, U, 0, false,
	    SKIP, R(DNS_ERROR), U },
	{ "no-address-secure", DNS_R_NODATA, S, DNS_R_NODATA, S, 0, false,
	    SKIP, R(NO_ADDRESS), S },
	{ "no-address-insecure", DNS_R_NXDOMAIN, I, DNS_R_NXDOMAIN, I, 0,
	    false, SKIP, R(NO_ADDRESS), I },
};

static void
run_addrs(void **state)
{
	const struct addr_case *c = *state;
	struct dns_answer a = answer(c->a_rcode, c->a_sec);
	struct dns_answer aaaa = answer(c->aaaa_rcode, c->aaaa_sec);
	struct danests_host h;

	memset(&h, 0, sizeof(h));
	h.name = (char *)(uintptr_t)"mx.d.test";
	h.policy = SKIP;
	h.reason = R(DNS_TIMEOUT);
	h.naddrs = c->naddrs;
	assert_int_equal(rules_addrs(&h, &a, &aaaa), c->tlsa);
	assert_int_equal(h.policy, c->policy);
	assert_int_equal(h.reason, c->reason);
	assert_int_equal(h.addr_security, c->addr_security);
}

/* ---- rules_tlsa ---- */

struct rec {
	uint8_t usage, selector, mtype;
	size_t len;		/* data octets; 0 ends the list */
};

struct tlsa_case {
	const char *name;
	enum dns_rcode rcode;	/* DNS_R_ERROR + null: no answer */
	danests_dnssec sec;
	bool null_answer;
	bool expanded;
	bool mx_secure;
	struct rec recs[4];
	enum rules_tlsa rc;
	danests_policy policy;
	danests_reason reason;
	danests_dnssec tlsa_security;
	size_t ntlsa, nunusable;
	bool mx_insecure;
};

static const struct tlsa_case tlsa_cases[] = {
	/* RFC 7672 2.2.3: a failed lookup never reads as "no TLSA" */
	{ "servfail", DNS_R_SERVFAIL, U, false, false, true, { { 0 } },
	    RULES_TLSA_DONE, SKIP, R(TLSA_INVALID), B, 0, 0, false },
	{ "timeout", DNS_R_TIMEOUT, U, false, false, true, { { 0 } },
	    RULES_TLSA_DONE, SKIP, R(DNS_TIMEOUT), U, 0, 0, false },
	{ "error", DNS_R_ERROR, U, false, false, true, { { 0 } },
	    RULES_TLSA_DONE, SKIP, R(DNS_ERROR), U, 0, 0, false },
	{ "no-answer", DNS_R_ERROR, U, true, false, true, { { 0 } },
	    RULES_TLSA_DONE, SKIP, R(DNS_ERROR), U, 0, 0, false },
	/* secure denial at the expanded name: the original name next */
	{ "denial-expanded", DNS_R_NODATA, S, false, true, true, { { 0 } },
	    RULES_TLSA_RETRY, SKIP, R(DNS_TIMEOUT), S, 0, 0, false },
	{ "denial-insecure-expanded", DNS_R_NODATA, I, false, true, true,
	    { { 0 } }, RULES_TLSA_DONE, MAY, R(TLSA_INSECURE), I, 0, 0,
	    false },
	{ "denial", DNS_R_NODATA, S, false, false, true, { { 0 } },
	    RULES_TLSA_DONE, MAY, R(NO_TLSA), S, 0, 0, false },
	{ "nxdomain-secure", DNS_R_NXDOMAIN, S, false, false, true, { { 0 } },
	    RULES_TLSA_DONE, MAY, R(NO_TLSA), S, 0, 0, false },
	/* RFC 7672 2.2: only secure records count */
	{ "insecure-records", DNS_R_OK, I, false, false, true,
	    { { 3, 1, 1, 32 } }, RULES_TLSA_DONE, MAY, R(TLSA_INSECURE), I,
	    0, 0, false },
	{ "dane-ee", DNS_R_OK, S, false, false, true, { { 3, 1, 1, 32 } },
	    RULES_TLSA_DONE, DANE, R(DANE), S, 1, 0, false },
	{ "dane-insecure-mx", DNS_R_OK, S, false, false, false,
	    { { 3, 1, 1, 32 } }, RULES_TLSA_DONE, DANE, R(DANE), S, 1, 0,
	    true },
	/* RFC 7672 3.1.3: PKIX usages are unusable; none usable: encrypt */
	{ "only-unusable", DNS_R_OK, S, false, false, true,
	    { { 1, 1, 1, 32 }, { 0, 0, 1, 32 }, { 3, 1, 9, 32 } },
	    RULES_TLSA_DONE, ENC, R(TLSA_UNUSABLE), S, 0, 3, false },
	{ "mixed", DNS_R_OK, S, false, false, true,
	    { { 1, 1, 1, 32 }, { 3, 1, 2, 64 }, { 2, 0, 1, 32 } },
	    RULES_TLSA_DONE, DANE, R(DANE), S, 2, 1, false },
	/* RFC 7671 7: a digest of the wrong length is unusable */
	{ "short-digest", DNS_R_OK, S, false, false, true,
	    { { 3, 1, 1, 2 } }, RULES_TLSA_DONE, ENC, R(TLSA_UNUSABLE), S, 0,
	    1, false },
};

static void
run_tlsa(void **state)
{
	const struct tlsa_case *c = *state;
	struct dns_answer a = answer(c->rcode, c->sec);
	unsigned char rdata[4][3 + 64];
	struct dns_rr rr[4];
	struct danests_host h;
	size_t i, n;

	memset(rr, 0, sizeof(rr));
	for (n = 0; n < NELEM(c->recs) && c->recs[n].len > 0; n++) {
		rdata[n][0] = c->recs[n].usage;
		rdata[n][1] = c->recs[n].selector;
		rdata[n][2] = c->recs[n].mtype;
		for (i = 0; i < c->recs[n].len; i++)
			rdata[n][3 + i] = (unsigned char)(i + 1);
		rr[n].type = DNS_T_TLSA;
		rr[n].rdata = rdata[n];
		rr[n].rdlen = 3 + c->recs[n].len;
	}
	a.nrr = n;
	a.rr = rr;
	memset(&h, 0, sizeof(h));
	h.name = (char *)(uintptr_t)"mx.d.test";
	h.policy = SKIP;
	h.reason = R(DNS_TIMEOUT);
	h.tlsa_security = U;
	assert_int_equal(rules_tlsa(&h, c->null_answer ? NULL : &a,
	    c->expanded, c->mx_secure), c->rc);
	assert_int_equal(h.policy, c->policy);
	assert_int_equal(h.reason, c->reason);
	assert_int_equal(h.tlsa_security, c->tlsa_security);
	assert_int_equal(h.ntlsa, c->ntlsa);
	assert_int_equal(h.nunusable, c->nunusable);
	assert_int_equal(h.mx_insecure, c->mx_insecure);
	for (i = 0; i < h.ntlsa; i++) {
		assert_true(h.tlsa[i].usage == 2 || h.tlsa[i].usage == 3);
		free(h.tlsa[i].data);
	}
	free(h.tlsa);
}

/* ---- rules_merge and rules_verdict ---- */

struct hin {
	const char *name;	/* NULL ends the list */
	danests_policy policy;
	danests_reason reason;
};

struct merge_case {
	const char *name;
	struct hin hosts[3];
	enum sts_state state;
	bool have_sts;
	danests_sts_mode mode;
	const char *mx[2];
	danests_reason fail;
	struct hin want[3];	/* policy and reason per host */
	danests_verdict verdict;
	danests_reason reason;
};

static const struct merge_case merge_cases[] = {
	{ "no-policy", { { "a.d.test", DANE, R(DANE) },
	    { "b.d.test", MAY, R(NO_TLSA) },
	    { "c.d.test", SKIP, R(NO_ADDRESS) } },
	    STS_NONE, false, 0, { NULL }, R(NONE),
	    { { "", DANE, R(DANE) }, { "", MAY, R(NO_TLSA) },
	    { "", SKIP, R(NO_ADDRESS) } }, DANESTS_DELIVER, R(OK) },
	/* a policy may exist but can't be known: only dane hosts stay */
	{ "sts-dns-fail", { { "a.d.test", DANE, R(DANE) },
	    { "b.d.test", MAY, R(NO_TLSA) },
	    { "c.d.test", ENC, R(TLSA_UNUSABLE) } },
	    STS_DNS_FAIL, false, 0, { NULL }, R(DNS_TIMEOUT),
	    { { "", DANE, R(DANE) }, { "", SKIP, R(DNS_TIMEOUT) },
	    { "", SKIP, R(DNS_TIMEOUT) } }, DANESTS_DELIVER, R(OK) },
	{ "sts-fail-no-reason", { { "a.d.test", MAY, R(ADDR_INSECURE) } },
	    STS_FAIL, false, 0, { NULL }, R(NONE),
	    { { "", SKIP, R(CACHE_ERROR) } }, DANESTS_TEMPFAIL,
	    R(NO_USABLE_HOST) },
	/* RFC 8461 2: dane first; RFC 8461 4.1: enforce keeps matches */
	{ "enforce", { { "mx1.d.test", MAY, R(NO_TLSA) },
	    { "mx2.d.test", ENC, R(TLSA_UNUSABLE) },
	    { "mx3.d.test", DANE, R(DANE) } },
	    STS_POLICY, true, DANESTS_STS_ENFORCE, { "mx1.d.test" }, R(NONE),
	    { { "", ENF, R(STS_MX_MATCH) }, { "", SKIP, R(STS_MX_MISMATCH) },
	    { "", DANE, R(DANE) } }, DANESTS_DELIVER, R(OK) },
	{ "enforce-wildcard", { { "mx.d.test", MAY, R(TLSA_INSECURE) } },
	    STS_POLICY, true, DANESTS_STS_ENFORCE, { "*.d.test" }, R(NONE),
	    { { "", ENF, R(STS_MX_MATCH) } }, DANESTS_DELIVER, R(OK) },
	{ "enforce-all-mismatch", { { "mx.other.test", MAY, R(NO_TLSA) },
	    { "mx2.other.test", ENC, R(TLSA_UNUSABLE) } },
	    STS_POLICY, true, DANESTS_STS_ENFORCE, { "*.d.test" }, R(NONE),
	    { { "", SKIP, R(STS_MX_MISMATCH) },
	    { "", SKIP, R(STS_MX_MISMATCH) } }, DANESTS_TEMPFAIL,
	    R(STS_MX_MISMATCH) },
	{ "enforce-mismatch-and-skipped", { { "mx.other.test", MAY,
	    R(NO_TLSA) }, { "mx.d.test", SKIP, R(NO_ADDRESS) } },
	    STS_POLICY, true, DANESTS_STS_ENFORCE, { "*.d.test" }, R(NONE),
	    { { "", SKIP, R(STS_MX_MISMATCH) }, { "", SKIP, R(NO_ADDRESS) } },
	    DANESTS_TEMPFAIL, R(NO_USABLE_HOST) },
	/* RFC 8461 5: testing marks "may" hosts, encrypt stays */
	{ "testing", { { "mx.other.test", MAY, R(NO_TLSA) },
	    { "mx2.d.test", ENC, R(TLSA_UNUSABLE) } },
	    STS_POLICY, true, DANESTS_STS_TESTING, { "*.d.test" }, R(NONE),
	    { { "", TST, R(STS_TESTING) }, { "", ENC, R(TLSA_UNUSABLE) } },
	    DANESTS_DELIVER, R(OK) },
	{ "mode-none", { { "mx.d.test", MAY, R(NO_TLSA) } },
	    STS_POLICY, true, DANESTS_STS_NONE, { "mx.d.test" }, R(NONE),
	    { { "", MAY, R(NO_TLSA) } }, DANESTS_DELIVER, R(OK) },
	{ "policy-state-without-policy", { { "mx.d.test", MAY, R(NO_TLSA) } },
	    STS_POLICY, false, 0, { NULL }, R(NONE),
	    { { "", MAY, R(NO_TLSA) } }, DANESTS_DELIVER, R(OK) },
	{ "all-skipped", { { "a.d.test", SKIP, R(DNSSEC_INVALID) },
	    { "b.d.test", SKIP, R(STS_MX_MISMATCH) } },
	    STS_NONE, false, 0, { NULL }, R(NONE),
	    { { "", SKIP, R(DNSSEC_INVALID) },
	    { "", SKIP, R(STS_MX_MISMATCH) } }, DANESTS_TEMPFAIL,
	    R(NO_USABLE_HOST) },
	{ "no-hosts", { { NULL } }, STS_NONE, false, 0, { NULL }, R(NONE),
	    { { NULL } }, DANESTS_TEMPFAIL, R(NO_USABLE_HOST) },
};

static void
run_merge(void **state)
{
	const struct merge_case *c = *state;
	struct danests_decision d;
	struct danests_host h[3];
	struct danests_sts sts;
	char *mx[2];
	size_t i, n, nmx;

	memset(&d, 0, sizeof(d));
	memset(h, 0, sizeof(h));
	memset(&sts, 0, sizeof(sts));
	for (n = 0; n < NELEM(c->hosts) && c->hosts[n].name != NULL; n++) {
		h[n].name = (char *)(uintptr_t)c->hosts[n].name;
		h[n].policy = c->hosts[n].policy;
		h[n].reason = c->hosts[n].reason;
	}
	d.hosts = h;
	d.nhosts = n;
	d.verdict = DANESTS_DELIVER;
	d.reason = R(OK);
	if (c->have_sts) {
		for (nmx = 0; nmx < NELEM(c->mx) && c->mx[nmx] != NULL; nmx++)
			mx[nmx] = (char *)(uintptr_t)c->mx[nmx];
		sts.policy.mode = c->mode;
		sts.policy.nmx = nmx;
		sts.policy.mx = mx;
		d.sts = &sts;
	}
	rules_merge(&d, c->state, c->fail);
	rules_verdict(&d);
	for (i = 0; i < n; i++) {
		if (h[i].policy != c->want[i].policy ||
		    h[i].reason != c->want[i].reason)
			print_error("host %zu: %s %s\n", i,
			    danests_policy_name(h[i].policy),
			    danests_reason_name(h[i].reason));
		assert_int_equal(h[i].policy, c->want[i].policy);
		assert_int_equal(h[i].reason, c->want[i].reason);
	}
	assert_int_equal(d.verdict, c->verdict);
	assert_int_equal(d.reason, c->reason);
}

/* ---- the reasons of failed lookups ---- */

static void
test_dns_reason(void **state)
{
	struct dns_answer a;

	(void)state;
	assert_int_equal(rules_dns_reason(NULL), R(DNS_ERROR));
	assert_true(rules_lookup_failed(NULL));
	a = answer(DNS_R_SERVFAIL, U);
	assert_int_equal(rules_dns_reason(&a), R(DNSSEC_INVALID));
	assert_true(rules_lookup_failed(&a));
	a = answer(DNS_R_TIMEOUT, U);
	assert_int_equal(rules_dns_reason(&a), R(DNS_TIMEOUT));
	assert_true(rules_lookup_failed(&a));
	a = answer(DNS_R_ERROR, U);
	assert_int_equal(rules_dns_reason(&a), R(DNS_ERROR));
	assert_true(rules_lookup_failed(&a));
	/* answers that say something about the data */
	a = answer(DNS_R_NXDOMAIN, S);
	assert_false(rules_lookup_failed(&a));
	a = answer(DNS_R_NODATA, I);
	assert_false(rules_lookup_failed(&a));
	a = answer(DNS_R_OK, S);
	assert_false(rules_lookup_failed(&a));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_mx_null),
		cmocka_unit_test(test_dns_reason),
	};
	int rc = 0;

	rc |= run_table("mx", mx_cases, NROWS(mx_cases), sizeof(mx_cases[0]),
	    run_mx);
	rc |= run_table("addrs", addr_cases, NROWS(addr_cases),
	    sizeof(addr_cases[0]), run_addrs);
	rc |= run_table("tlsa", tlsa_cases, NROWS(tlsa_cases),
	    sizeof(tlsa_cases[0]), run_tlsa);
	rc |= run_table("merge", merge_cases, NROWS(merge_cases),
	    sizeof(merge_cases[0]), run_merge);
	rc |= cmocka_run_group_tests(tests, NULL, NULL);
	return rc;
}
