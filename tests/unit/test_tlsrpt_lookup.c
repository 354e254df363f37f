/*
 * test_tlsrpt_lookup.c - where reports go (tlsrpt_lookup.c), over the
 * table resolver (tests/lib/dns_mock.c)
 *
 *  - exactly one TLSRPT record among the TXT records: its rua (OK);
 *  - none, no TXT, NXDOMAIN, or two TLSRPT records: NOTFOUND (RFC 8460 3:
 *    "If the number of resulting records is not one, senders MUST assume
 *    the recipient domain does not implement TLSRPT");
 *  - one malformed TLSRPT record: PERM;
 *  - SERVFAIL, timeout, network error: TEMP (try later);
 *  - the addresses of an https rua's host, as CURLOPT_RESOLVE lists them.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <event2/event.h>
#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"
#include "danests-report.h"
#include "dns_mock.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))
#define RUA "v=TLSRPTv1; rua=mailto:tlsrpt@r.test,https://rua.r.test/x"

static const struct dns_mock_entry table[] = {
	{ "_smtp._tls.one.test", DNS_T_TXT, DNS_R_OK, DANESTS_SEC_SECURE,
	    NULL, { RUA } },
	{ "_smtp._tls.mixed.test", DNS_T_TXT, DNS_R_OK,
	    DANESTS_SEC_INSECURE, NULL,
	    { "v=spf1 -all", RUA, "some other text" } },
	{ "_smtp._tls.two.test", DNS_T_TXT, DNS_R_OK, DANESTS_SEC_INSECURE,
	    NULL, { RUA, "v=TLSRPTv1; rua=mailto:other@r.test" } },
	{ "_smtp._tls.bad.test", DNS_T_TXT, DNS_R_OK, DANESTS_SEC_INSECURE,
	    NULL, { "v=TLSRPTv1; rua=mailto:a@r.test; rua=mailto:b@r.test" } },
	{ "_smtp._tls.other.test", DNS_T_TXT, DNS_R_OK, DANESTS_SEC_INSECURE,
	    NULL, { "v=STSv1; id=1" } },
	{ "_smtp._tls.nodata.test", DNS_T_TXT, DNS_R_NODATA,
	    DANESTS_SEC_INSECURE, NULL, { NULL } },
	{ "_smtp._tls.nx.test", DNS_T_TXT, DNS_R_NXDOMAIN,
	    DANESTS_SEC_INSECURE, NULL, { NULL } },
	{ "_smtp._tls.servfail.test", DNS_T_TXT, DNS_R_SERVFAIL,
	    DANESTS_SEC_BOGUS, NULL, { NULL } },
	{ "_smtp._tls.slow.test", DNS_T_TXT, DNS_R_TIMEOUT,
	    DANESTS_SEC_INDETERMINATE, NULL, { NULL } },
	{ "rua.r.test", DNS_T_A, DNS_R_OK, DANESTS_SEC_INSECURE, NULL,
	    { "192.0.2.1", "192.0.2.2" } },
	{ "rua.r.test", DNS_T_AAAA, DNS_R_OK, DANESTS_SEC_INSECURE, NULL,
	    { "2001:db8::1" } },
	{ "v4.r.test", DNS_T_A, DNS_R_OK, DANESTS_SEC_INSECURE, NULL,
	    { "192.0.2.9" } },
	{ "v4.r.test", DNS_T_AAAA, DNS_R_NODATA, DANESTS_SEC_INSECURE, NULL,
	    { NULL } },
	{ "none.r.test", DNS_T_A, DNS_R_NXDOMAIN, DANESTS_SEC_INSECURE, NULL,
	    { NULL } },
	{ "none.r.test", DNS_T_AAAA, DNS_R_NXDOMAIN, DANESTS_SEC_INSECURE,
	    NULL, { NULL } },
	{ "down.r.test", DNS_T_A, DNS_R_TIMEOUT, DANESTS_SEC_INDETERMINATE,
	    NULL, { NULL } },
	{ "down.r.test", DNS_T_AAAA, DNS_R_TIMEOUT,
	    DANESTS_SEC_INDETERMINATE, NULL, { NULL } },
};

struct fixture {
	struct danests_config *cfg;
	struct event_base *base;
	struct danests_ctx *ctx;
};

static int
setup(void **state)
{
	struct fixture *f = calloc(1, sizeof(*f));
	struct dns *dns;
	char why[256];

	assert_non_null(f);
	assert_non_null(f->cfg = danests_config_new());
	assert_int_equal(danests_config_set_cache_dir(f->cfg, NULL, why,
	    sizeof(why)), DANESTS_OK);
	assert_non_null(f->base = event_base_new());
	assert_int_equal(dns_mock_new(f->base, table, NELEM(table), &dns),
	    DANESTS_OK);
	assert_int_equal(danests_ctx_new_with_dns(f->cfg, f->base, dns,
	    &f->ctx, why, sizeof(why)), DANESTS_OK);
	*state = f;
	return 0;
}

static int
teardown(void **state)
{
	struct fixture *f = *state;

	danests_ctx_free(f->ctx);
	event_base_free(f->base);
	danests_config_free(f->cfg);
	free(f);
	return 0;
}

static void
lookup_table(void **state)
{
	static const struct {
		const char *domain;
		danests_status st;
		const char *why;	/* part of why, or NULL */
	} t[] = {
		{ "one.test", DANESTS_OK, NULL },
		{ "One.Test.", DANESTS_OK, NULL },
		{ "mixed.test", DANESTS_OK, NULL },
		{ "two.test", DANESTS_NOTFOUND, "more than one" },
		{ "bad.test", DANESTS_PERM, "malformed" },
		{ "other.test", DANESTS_NOTFOUND, "no TLSRPT record" },
		{ "nodata.test", DANESTS_NOTFOUND, "no TXT" },
		{ "nx.test", DANESTS_NOTFOUND, "NXDOMAIN" },
		{ "servfail.test", DANESTS_TEMP, "lookup failed" },
		{ "slow.test", DANESTS_TEMP, "lookup failed" },
		{ "unknown.test", DANESTS_TEMP, "lookup failed" },
		{ "bad..name", DANESTS_PERM, "not a usable domain" },
	};
	struct fixture *f = *state;
	struct danests_tlsrpt_record rec;
	char why[512];
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		danests_status st;

		why[0] = '\0';
		st = danests_tlsrpt_lookup(f->ctx, t[i].domain, &rec, why,
		    sizeof(why));
		if (st != t[i].st)
			fail_msg("%s: status %d, expected %d (%s)",
			    t[i].domain, st, t[i].st, why);
		if (t[i].why != NULL && strstr(why, t[i].why) == NULL)
			fail_msg("%s: why \"%s\" lacks \"%s\"", t[i].domain,
			    why, t[i].why);
		if (st == DANESTS_OK) {
			assert_int_equal(rec.nrua, 2);
			assert_string_equal(rec.rua[0],
			    "mailto:tlsrpt@r.test");
			assert_string_equal(rec.rua[1], "https://rua.r.test/x");
		} else
			assert_int_equal(rec.nrua, 0);
	}
}

static void
addrs_table(void **state)
{
	static const struct {
		const char *host;
		danests_status st;
		const char *addrs;
	} t[] = {
		{ "rua.r.test", DANESTS_OK,
		    "192.0.2.1,192.0.2.2,[2001:db8::1]" },
		{ "v4.r.test", DANESTS_OK, "192.0.2.9" },
		{ "none.r.test", DANESTS_NOTFOUND, "" },
		{ "down.r.test", DANESTS_TEMP, "" },
	};
	struct fixture *f = *state;
	char out[256], why[256];
	size_t i;

	for (i = 0; i < NELEM(t); i++) {
		danests_status st = danests_report_addrs(f->ctx, t[i].host,
		    out, sizeof(out), why, sizeof(why));

		if (st != t[i].st)
			fail_msg("%s: status %d, expected %d (%s)", t[i].host,
			    st, t[i].st, why);
		assert_string_equal(out, t[i].addrs);
	}
	/* never more than fits, never a cut address */
	assert_int_equal(danests_report_addrs(f->ctx, "rua.r.test", out, 12,
	    why, sizeof(why)), DANESTS_OK);
	assert_string_equal(out, "192.0.2.1");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(lookup_table),
		cmocka_unit_test(addrs_table),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
