/*
 * test_decide.c - the decision rules over canned DNS answers
 *
 * Each case is a table of DNS answers (tests/lib/dns_mock.c) and the expected
 * verdict, reason and per-host policies.  MTA-STS cases seed the policy
 * cache so that no network fetch is involved.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <errno.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "dns_mock.h"

#define S DANESTS_SEC_SECURE
#define I DANESTS_SEC_INSECURE
#define B DANESTS_SEC_BOGUS
#define H32 "0102030405060708091011121314151617181920212223242526272829303132"
#define H64 H32 H32

#define OK DNS_R_OK
#define NODATA DNS_R_NODATA
#define NX DNS_R_NXDOMAIN
#define SERVFAIL DNS_R_SERVFAIL
#define TIMEOUT DNS_R_TIMEOUT

/* A host reached over secure A and no AAAA. */
#define SECURE_HOST(n, ip) \
	{ n, DNS_T_A, OK, S, NULL, { ip } }, \
	{ n, DNS_T_AAAA, NODATA, S, NULL, { NULL } }

struct hexp {
	const char *name;
	danests_policy policy;
	const char *reason;
	size_t ntlsa;
};

struct dcase {
	const char *label;
	const char *domain;
	const struct dns_mock_entry *dns;
	size_t ndns;
	danests_verdict verdict;
	const char *reason;
	danests_dnssec mx_security;
	bool implicit;
	struct hexp hosts[4];
	/* optional cached MTA-STS policy */
	danests_sts_mode sts_mode;
	const char *sts_mx[3];
	const char *tlsa_base0;	/* expected tlsa_base of host 0 */
	bool mx_insecure0;
};

static const struct dns_mock_entry dane_ee[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.d.test" } },
	SECURE_HOST("mx.d.test", "192.0.2.1"),
	{ "_25._tcp.mx.d.test", DNS_T_TLSA, OK, S, NULL,
	    { "3 1 1 " H32 } },
};
static const struct dns_mock_entry unusable[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.d.test" } },
	SECURE_HOST("mx.d.test", "192.0.2.1"),
	{ "_25._tcp.mx.d.test", DNS_T_TLSA, OK, S, NULL,
	    { "1 1 1 " H32, "0 0 1 " H32, "3 1 9 " H32, "3 1 1 0102" } },
};
static const struct dns_mock_entry mixed[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.d.test" } },
	SECURE_HOST("mx.d.test", "192.0.2.1"),
	{ "_25._tcp.mx.d.test", DNS_T_TLSA, OK, S, NULL,
	    { "1 1 1 " H32, "3 1 2 " H64, "2 0 1 " H32 } },
};
static const struct dns_mock_entry bogus_tlsa[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL,
	    { "10 mx1.d.test", "20 mx2.d.test" } },
	SECURE_HOST("mx1.d.test", "192.0.2.1"),
	SECURE_HOST("mx2.d.test", "192.0.2.2"),
	{ "_25._tcp.mx1.d.test", DNS_T_TLSA, SERVFAIL, B, NULL, { NULL } },
	{ "_25._tcp.mx2.d.test", DNS_T_TLSA, OK, S, NULL,
	    { "3 1 1 " H32 } },
};
static const struct dns_mock_entry timeout_tlsa[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.d.test" } },
	SECURE_HOST("mx.d.test", "192.0.2.1"),
	{ "_25._tcp.mx.d.test", DNS_T_TLSA, TIMEOUT,
	    DANESTS_SEC_INDETERMINATE, NULL, { NULL } },
};
static const struct dns_mock_entry bogus_mx[] = {
	{ "d.test", DNS_T_MX, SERVFAIL, B, NULL, { NULL } },
};
static const struct dns_mock_entry timeout_mx[] = {
	{ "d.test", DNS_T_MX, TIMEOUT, DANESTS_SEC_INDETERMINATE, NULL,
	    { NULL } },
};
static const struct dns_mock_entry insecure[] = {
	{ "d.test", DNS_T_MX, OK, I, NULL, { "10 mx.d.test" } },
	{ "mx.d.test", DNS_T_A, OK, I, NULL, { "192.0.2.1" } },
	{ "mx.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
};
static const struct dns_mock_entry insecure_mx[] = {
	{ "d.test", DNS_T_MX, OK, I, NULL, { "10 mx.signed.test" } },
	SECURE_HOST("mx.signed.test", "192.0.2.1"),
	{ "_25._tcp.mx.signed.test", DNS_T_TLSA, OK, S, NULL,
	    { "3 1 1 " H32 } },
};
static const struct dns_mock_entry insecure_addr[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.unsigned.test" } },
	{ "mx.unsigned.test", DNS_T_A, OK, I, NULL, { "192.0.2.1" } },
	{ "mx.unsigned.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
	/* never asked: addresses are insecure */
	{ "_25._tcp.mx.unsigned.test", DNS_T_TLSA, OK, I, NULL,
	    { "3 1 1 " H32 } },
};
static const struct dns_mock_entry mixed_addr[] = {
	/* a secure A with an insecure AAAA is not secure */
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.d.test" } },
	{ "mx.d.test", DNS_T_A, OK, S, NULL, { "192.0.2.1" } },
	{ "mx.d.test", DNS_T_AAAA, OK, I, NULL, { "2001:db8::1" } },
};
static const struct dns_mock_entry bogus_addr[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL,
	    { "10 mx1.d.test", "20 mx2.d.test" } },
	{ "mx1.d.test", DNS_T_A, SERVFAIL, B, NULL, { NULL } },
	{ "mx1.d.test", DNS_T_AAAA, NODATA, S, NULL, { NULL } },
	{ "mx2.d.test", DNS_T_A, OK, I, NULL, { "192.0.2.2" } },
	{ "mx2.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
};
static const struct dns_mock_entry cname_host[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.d.test" } },
	{ "mx.d.test", DNS_T_A, OK, S, "real.t.test", { "192.0.2.1" } },
	{ "mx.d.test", DNS_T_AAAA, NODATA, S, "real.t.test", { NULL } },
	{ "_25._tcp.real.t.test", DNS_T_TLSA, OK, S, NULL,
	    { "3 1 1 " H32 } },
};
static const struct dns_mock_entry cname_fallback[] = {
	/* no TLSA at the target: the original name's TLSA is used */
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.d.test" } },
	{ "mx.d.test", DNS_T_A, OK, S, "real.t.test", { "192.0.2.1" } },
	{ "mx.d.test", DNS_T_AAAA, NODATA, S, "real.t.test", { NULL } },
	{ "_25._tcp.real.t.test", DNS_T_TLSA, NX, S, NULL, { NULL } },
	{ "_25._tcp.mx.d.test", DNS_T_TLSA, OK, S, NULL,
	    { "3 1 1 " H32 } },
};
static const struct dns_mock_entry null_mx[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL, { "0 ." } },
};
static const struct dns_mock_entry nxdomain[] = {
	{ "d.test", DNS_T_MX, NX, S, NULL, { NULL } },
};
static const struct dns_mock_entry implicit[] = {
	{ "d.test", DNS_T_MX, NODATA, S, NULL, { NULL } },
	SECURE_HOST("d.test", "192.0.2.1"),
	{ "_25._tcp.d.test", DNS_T_TLSA, NODATA, S, NULL, { NULL } },
};
static const struct dns_mock_entry no_address[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.d.test" } },
	{ "mx.d.test", DNS_T_A, NX, S, NULL, { NULL } },
	{ "mx.d.test", DNS_T_AAAA, NX, S, NULL, { NULL } },
};
static const struct dns_mock_entry tlsa_insecure[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL, { "10 mx.d.test" } },
	SECURE_HOST("mx.d.test", "192.0.2.1"),
	{ "_25._tcp.mx.d.test", DNS_T_TLSA, OK, I, NULL,
	    { "3 1 1 " H32 } },
};
static const struct dns_mock_entry order[] = {
	{ "d.test", DNS_T_MX, OK, I, NULL,
	    { "30 c.d.test", "10 b.d.test", "20 a.d.test", "40 b.d.test" } },
	{ "a.d.test", DNS_T_A, OK, I, NULL, { "192.0.2.1" } },
	{ "a.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
	{ "b.d.test", DNS_T_A, OK, I, NULL, { "192.0.2.2" } },
	{ "b.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
	{ "c.d.test", DNS_T_A, OK, I, NULL, { "192.0.2.3" } },
	{ "c.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
};
/* MTA-STS merge: DNS of an unsigned domain with two MX hosts */
static const struct dns_mock_entry sts_two[] = {
	{ "d.test", DNS_T_MX, OK, I, NULL,
	    { "10 mx1.d.test", "20 a.b.d.test" } },
	{ "mx1.d.test", DNS_T_A, OK, I, NULL, { "192.0.2.1" } },
	{ "mx1.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
	{ "a.b.d.test", DNS_T_A, OK, I, NULL, { "192.0.2.2" } },
	{ "a.b.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
};
/* DANE + MTA-STS: mx1 has TLSA (outside the policy), mx2 none */
static const struct dns_mock_entry sts_dane[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL,
	    { "10 mx1.d.test", "20 mx2.d.test" } },
	SECURE_HOST("mx1.d.test", "192.0.2.1"),
	SECURE_HOST("mx2.d.test", "192.0.2.2"),
	{ "_25._tcp.mx1.d.test", DNS_T_TLSA, OK, S, NULL,
	    { "3 1 1 " H32 } },
	{ "_25._tcp.mx2.d.test", DNS_T_TLSA, NX, S, NULL, { NULL } },
};
/* the TXT lookup fails and nothing is cached */
static const struct dns_mock_entry sts_txt_bogus[] = {
	{ "d.test", DNS_T_MX, OK, S, NULL,
	    { "10 mx1.d.test", "20 mx2.d.test" } },
	SECURE_HOST("mx1.d.test", "192.0.2.1"),
	SECURE_HOST("mx2.d.test", "192.0.2.2"),
	{ "_25._tcp.mx1.d.test", DNS_T_TLSA, OK, S, NULL,
	    { "3 1 1 " H32 } },
	{ "_25._tcp.mx2.d.test", DNS_T_TLSA, NX, S, NULL, { NULL } },
	{ "_mta-sts.d.test", DNS_T_TXT, SERVFAIL, B, NULL, { NULL } },
};
static const struct dns_mock_entry sts_no_txt[] = {
	{ "d.test", DNS_T_MX, OK, I, NULL, { "10 mx.d.test" } },
	{ "mx.d.test", DNS_T_A, OK, I, NULL, { "192.0.2.1" } },
	{ "mx.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
	{ "_mta-sts.d.test", DNS_T_TXT, OK, I, NULL,
	    { "v=spf1 -all" } },
};

#define N(x) x, sizeof(x) / sizeof(x[0])
#define DANE DANESTS_POLICY_DANE
#define ENC DANESTS_POLICY_ENCRYPT
#define ENF DANESTS_POLICY_STS_ENFORCE
#define TST DANESTS_POLICY_STS_TESTING
#define MAY DANESTS_POLICY_MAY
#define SKIP DANESTS_POLICY_SKIP

static const struct dcase cases[] = {
	{ "dane-ee", "d.test", N(dane_ee), DANESTS_DELIVER, "ok", S, false,
	    { { "mx.d.test", DANE, "dane-tlsa", 1 } }, 0, { 0 },
	    "mx.d.test", false },
	{ "unusable-only", "d.test", N(unusable), DANESTS_DELIVER, "ok", S,
	    false, { { "mx.d.test", ENC, "tlsa-unusable", 0 } } },
	{ "mixed", "D.TEST.", N(mixed), DANESTS_DELIVER, "ok", S, false,
	    { { "mx.d.test", DANE, "dane-tlsa", 2 } } },
	{ "bogus-tlsa-one-host", "d.test", N(bogus_tlsa), DANESTS_DELIVER,
	    "ok", S, false, { { "mx1.d.test", SKIP, "tlsa-invalid", 0 },
	    { "mx2.d.test", DANE, "dane-tlsa", 1 } } },
	{ "timeout-tlsa", "d.test", N(timeout_tlsa), DANESTS_TEMPFAIL,
	    "no-usable-host", S, false,
	    { { "mx.d.test", SKIP, "dns-timeout", 0 } } },
	{ "bogus-mx", "d.test", N(bogus_mx), DANESTS_TEMPFAIL,
	    "dnssec-invalid", B, false, { { NULL } } },
	{ "timeout-mx", "d.test", N(timeout_mx), DANESTS_TEMPFAIL,
	    "dns-timeout", DANESTS_SEC_INDETERMINATE, false, { { NULL } } },
	{ "insecure", "d.test", N(insecure), DANESTS_DELIVER, "ok", I, false,
	    { { "mx.d.test", MAY, "address-insecure", 0 } } },
	{ "insecure-mx-secure-tlsa", "d.test", N(insecure_mx),
	    DANESTS_DELIVER, "ok", I, false,
	    { { "mx.signed.test", DANE, "dane-tlsa", 1 } }, 0, { 0 },
	    "mx.signed.test", true },
	{ "insecure-addr", "d.test", N(insecure_addr), DANESTS_DELIVER, "ok",
	    S, false, { { "mx.unsigned.test", MAY, "address-insecure", 0 } } },
	{ "mixed-addr", "d.test", N(mixed_addr), DANESTS_DELIVER, "ok", S,
	    false, { { "mx.d.test", MAY, "address-insecure", 0 } } },
	{ "bogus-addr", "d.test", N(bogus_addr), DANESTS_DELIVER, "ok", S,
	    false, { { "mx1.d.test", SKIP, "dnssec-invalid", 0 },
	    { "mx2.d.test", MAY, "address-insecure", 0 } } },
	{ "cname-host", "d.test", N(cname_host), DANESTS_DELIVER, "ok", S,
	    false, { { "mx.d.test", DANE, "dane-tlsa", 1 } }, 0, { 0 },
	    "real.t.test", false },
	{ "cname-fallback", "d.test", N(cname_fallback), DANESTS_DELIVER,
	    "ok", S, false, { { "mx.d.test", DANE, "dane-tlsa", 1 } }, 0,
	    { 0 }, "mx.d.test", false },
	{ "null-mx", "d.test", N(null_mx), DANESTS_PERMFAIL, "null-mx", S,
	    false, { { NULL } } },
	{ "nxdomain", "d.test", N(nxdomain), DANESTS_PERMFAIL, "nxdomain", S,
	    false, { { NULL } } },
	{ "implicit", "d.test", N(implicit), DANESTS_DELIVER, "ok", S, true,
	    { { "d.test", MAY, "no-tlsa", 0 } } },
	{ "no-address", "d.test", N(no_address), DANESTS_TEMPFAIL,
	    "no-usable-host", S, false,
	    { { "mx.d.test", SKIP, "no-address", 0 } } },
	{ "tlsa-insecure", "d.test", N(tlsa_insecure), DANESTS_DELIVER, "ok",
	    S, false, { { "mx.d.test", MAY, "tlsa-insecure", 0 } } },
	{ "order-and-duplicates", "d.test", N(order), DANESTS_DELIVER, "ok",
	    I, false, { { "b.d.test", MAY, "address-insecure", 0 },
	    { "a.d.test", MAY, "address-insecure", 0 },
	    { "c.d.test", MAY, "address-insecure", 0 } } },
	{ "sts-enforce-wildcard", "d.test", N(sts_two), DANESTS_DELIVER,
	    "ok", I, false, { { "mx1.d.test", ENF, "sts-mx-match", 0 },
	    { "a.b.d.test", SKIP, "sts-mx-mismatch", 0 } },
	    DANESTS_STS_ENFORCE, { "*.d.test" } },
	{ "sts-enforce-mismatch", "d.test", N(sts_two), DANESTS_TEMPFAIL,
	    "sts-mx-mismatch", I, false,
	    { { "mx1.d.test", SKIP, "sts-mx-mismatch", 0 },
	    { "a.b.d.test", SKIP, "sts-mx-mismatch", 0 } },
	    DANESTS_STS_ENFORCE, { "mx.other.test" } },
	{ "sts-testing", "d.test", N(sts_two), DANESTS_DELIVER, "ok", I,
	    false, { { "mx1.d.test", TST, "sts-testing", 0 },
	    { "a.b.d.test", TST, "sts-testing", 0 } },
	    DANESTS_STS_TESTING, { "mx1.d.test" } },
	{ "sts-none", "d.test", N(sts_two), DANESTS_DELIVER, "ok", I, false,
	    { { "mx1.d.test", MAY, "address-insecure", 0 },
	    { "a.b.d.test", MAY, "address-insecure", 0 } },
	    DANESTS_STS_NONE, { "mx9.d.test" } },
	{ "dane-wins-over-sts", "d.test", N(sts_dane), DANESTS_DELIVER, "ok",
	    S, false, { { "mx1.d.test", DANE, "dane-tlsa", 1 },
	    { "mx2.d.test", ENF, "sts-mx-match", 0 } },
	    DANESTS_STS_ENFORCE, { "mx2.d.test" } },
	{ "sts-txt-bogus-no-cache", "d.test", N(sts_txt_bogus),
	    DANESTS_DELIVER, "ok", S, false,
	    { { "mx1.d.test", DANE, "dane-tlsa", 1 },
	    { "mx2.d.test", SKIP, "dnssec-invalid", 0 } } },
	{ "sts-no-txt", "d.test", N(sts_no_txt), DANESTS_DELIVER, "ok", I,
	    false, { { "mx.d.test", MAY, "address-insecure", 0 } } },
};

/* seed_policy - put a fresh cached policy for domain */
static void
seed_policy(const char *dir, const char *domain, const struct dcase *c)
{
	struct cache *cache;
	struct cache_sts e;
	char why[256];
	size_t n;

	assert_int_equal(cache_open(dir, &cache, why, sizeof(why)),
	    DANESTS_OK);
	memset(&e, 0, sizeof(e));
	e.policy.mode = c->sts_mode;
	e.policy.max_age = 86400;
	for (n = 0; n < 3 && c->sts_mx[n] != NULL; n++)
		;
	e.policy.nmx = n;
	e.policy.mx = (char **)c->sts_mx;
	strlcpy(e.id, "seed1", sizeof(e.id));
	e.fetched = e.last_check = time(NULL);
	e.expires = e.fetched + 86400;
	assert_int_equal(cache_sts_put(cache, domain, &e, why, sizeof(why)),
	    DANESTS_OK);
	cache_close(cache);
}

/* run_case - decide one case and compare */
static void
run_case(const struct dcase *c, bool with_sts)
{
	struct danests_config *cfg;
	struct danests_ctx *ctx;
	struct danests_decision *d;
	struct event_base *base;
	struct dns *dns;
	char why[256], dir[] = "/tmp/danests-test-XXXXXX", cmd[300];
	size_t i, n;

	print_message("case %s\n", c->label);
	assert_non_null(mkdtemp(dir));
	assert_non_null(cfg = danests_config_new());
	assert_int_equal(danests_config_set_cache_dir(cfg, NULL, why,
	    sizeof(why)), DANESTS_OK);
	danests_config_set_sts(cfg, with_sts);
	danests_config_set_decision_timeout(cfg, 5000);
	if (with_sts) {
		assert_int_equal(danests_config_set_cache_dir(cfg, dir, why,
		    sizeof(why)), DANESTS_OK);
		if (c->sts_mode != 0 || c->sts_mx[0] != NULL)
			seed_policy(dir, "d.test", c);
	}
	assert_non_null(base = event_base_new());
	assert_int_equal(dns_mock_new(base, c->dns, c->ndns, &dns),
	    DANESTS_OK);
	assert_int_equal(danests_ctx_new_with_dns(cfg, base, dns, &ctx, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_decide(ctx, c->domain, DANESTS_F_REFRESH,
	    &d, why, sizeof(why)), DANESTS_OK);
	assert_string_equal(danests_verdict_name(d->verdict),
	    danests_verdict_name(c->verdict));
	assert_string_equal(danests_reason_name(d->reason), c->reason);
	assert_string_equal(danests_dnssec_name(d->mx_security),
	    danests_dnssec_name(c->mx_security));
	assert_int_equal(d->implicit_mx, c->implicit);
	for (n = 0; n < 4 && c->hosts[n].name != NULL; n++)
		;
	assert_int_equal(d->nhosts, n);
	for (i = 0; i < n; i++) {
		assert_string_equal(d->hosts[i].name, c->hosts[i].name);
		assert_string_equal(danests_policy_name(d->hosts[i].policy),
		    danests_policy_name(c->hosts[i].policy));
		assert_string_equal(danests_reason_name(d->hosts[i].reason),
		    c->hosts[i].reason);
		assert_int_equal(d->hosts[i].ntlsa, c->hosts[i].ntlsa);
	}
	if (c->tlsa_base0 != NULL) {
		assert_non_null(d->hosts[0].tlsa_base);
		assert_string_equal(d->hosts[0].tlsa_base, c->tlsa_base0);
	}
	assert_int_equal(n > 0 ? d->hosts[0].mx_insecure : false,
	    c->mx_insecure0);
	if (with_sts && c->sts_mx[0] != NULL) {
		assert_non_null(d->sts);
		assert_string_equal(d->sts->source, "cache");
	}
	danests_decision_free(d);
	danests_ctx_free(ctx);
	event_base_free(base);
	danests_config_free(cfg);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* test_dns_cases - the DNS/DANE rows, MTA-STS off */
static void
test_dns_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (strncmp(cases[i].label, "sts-", 4) != 0 &&
		    strcmp(cases[i].label, "dane-wins-over-sts") != 0)
			run_case(&cases[i], false);
}

/* test_sts_cases - the MTA-STS merge rows, policies from the cache */
static void
test_sts_cases(void **state)
{
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
		if (strncmp(cases[i].label, "sts-", 4) == 0 ||
		    strcmp(cases[i].label, "dane-wins-over-sts") == 0)
			run_case(&cases[i], true);
}

/* test_bad_domain - malformed names are refused before any lookup */
static void
test_bad_domain(void **state)
{
	static const char *bad[] = { "", ".", "a..b", "-a.test", "a-.test",
	    "exa mple.test", "[192.0.2.1]", "x", "a.test..", NULL };
	struct danests_config *cfg = danests_config_new();
	struct danests_ctx *ctx;
	struct danests_decision *d;
	struct event_base *base = event_base_new();
	struct dns *dns;
	char why[256];
	size_t i;

	(void)state;
	danests_config_set_sts(cfg, false);
	assert_int_equal(danests_config_set_cache_dir(cfg, NULL, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(dns_mock_new(base, NULL, 0, &dns), DANESTS_OK);
	assert_int_equal(danests_ctx_new_with_dns(cfg, base, dns, &ctx, why,
	    sizeof(why)), DANESTS_OK);
	for (i = 0; bad[i] != NULL; i++) {
		print_message("bad domain \"%s\"\n", bad[i]);
		assert_int_equal(danests_decide(ctx, bad[i], 0, &d, why,
		    sizeof(why)), DANESTS_PERM);
		assert_null(d);
	}
	danests_ctx_free(ctx);
	event_base_free(base);
	danests_config_free(cfg);
}

/*
 * strdup failure injection: this test is linked with -Wl,--wrap=strdup
 * (tests/meson.build), so the core's strdup calls come here.
 */
char *__real_strdup(const char *);
char *__wrap_strdup(const char *);
static int strdup_fail;		/* fail the next call when set */

char *
__wrap_strdup(const char *s)
{
	if (strdup_fail) {
		strdup_fail = 0;
		errno = ENOMEM;
		return NULL;
	}
	return __real_strdup(s);
}

/* never_cb - a request that fails to start never calls back */
static void
never_cb(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	(void)arg;
	(void)st;
	(void)d;
	(void)why;
	fail_msg("callback of a request that did not start");
}

/* test_nomem_domain - out of memory copying the domain: TEMP, nothing
 * allocated stays behind, nothing pending */
static void
test_nomem_domain(void **state)
{
	struct danests_config *cfg = danests_config_new();
	struct event_base *base = event_base_new();
	struct danests_ctx *ctx;
	struct mallinfo2 before, after;
	struct dns *dns;
	danests_status st;
	char why[256];
	int i;

	(void)state;
	danests_config_set_sts(cfg, false);
	assert_int_equal(danests_config_set_cache_dir(cfg, NULL, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(dns_mock_new(base, NULL, 0, &dns), DANESTS_OK);
	assert_int_equal(danests_ctx_new_with_dns(cfg, base, dns, &ctx, why,
	    sizeof(why)), DANESTS_OK);
	/* A few times first: glibc's calloc never takes from the per-thread
	 * cache that free fills (up to 7 chunks of a size), so the context's
	 * short-lived allocations (memory.c) would read as in use until that
	 * cache is full. */
	for (i = 0; i < 8; i++) {
		strdup_fail = 1;
		(void)danests_decide_async(ctx, "d.test", 0, never_cb, NULL,
		    why, sizeof(why));
	}
	before = mallinfo2();
	strdup_fail = 1;
	st = danests_decide_async(ctx, "d.test", 0, never_cb, NULL, why,
	    sizeof(why));
	after = mallinfo2();
	assert_int_equal(strdup_fail, 0);	/* the domain's copy failed */
	assert_int_equal(st, DANESTS_TEMP);
	assert_string_equal(why, "out of memory");
	assert_int_equal(after.uordblks, before.uordblks);
	assert_int_equal(danests_ctx_pending(ctx), 0);
	assert_int_equal(event_base_loop(base, EVLOOP_NONBLOCK), 1);
	danests_ctx_free(ctx);
	event_base_free(base);
	danests_config_free(cfg);
}

/* A TCP listener that accepts into its backlog and never answers. */
static int
silent_listener(unsigned *port)
{
	struct sockaddr_in sa;
	socklen_t len = sizeof(sa);
	int fd;

	assert_true((fd = socket(AF_INET, SOCK_STREAM, 0)) >= 0);
	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	assert_int_equal(listen(fd, 8), 0);
	assert_int_equal(getsockname(fd, (struct sockaddr *)&sa, &len), 0);
	*port = ntohs(sa.sin_port);
	return fd;
}

static const struct dns_mock_entry sts_hanging[] = {
	{ "d.test", DNS_T_MX, OK, I, NULL, { "10 mx.d.test" } },
	{ "mx.d.test", DNS_T_A, OK, I, NULL, { "192.0.2.1" } },
	{ "mx.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
	{ "_mta-sts.d.test", DNS_T_TXT, OK, I, NULL, { "v=STSv1; id=1" } },
	{ "mta-sts.d.test", DNS_T_A, OK, I, NULL, { "127.0.0.1" } },
	{ "mta-sts.d.test", DNS_T_AAAA, NODATA, I, NULL, { NULL } },
};

struct cancel_seen {
	int calls;
	danests_status st;
	struct danests_decision *d;
};

static void
cancel_cb(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct cancel_seen *c = arg;

	(void)why;
	c->calls++;
	c->st = st;
	c->d = d;
}

/* test_free_with_pending_fetch - freeing a context completes a decision
 * waiting on a policy fetch: its callback runs exactly once, the fetch
 * reported as cancelled, the domain deferred (and nothing is leaked:
 * valgrind) */
static void
test_free_with_pending_fetch(void **state)
{
	struct danests_config *cfg = danests_config_new();
	struct danests_ctx *ctx;
	struct event_base *base = event_base_new();
	struct dns *dns;
	struct cancel_seen seen = { 0 };
	struct timeval tv = { 0, 300000 };
	char why[256];
	unsigned port;
	int lfd;

	(void)state;
	lfd = silent_listener(&port);
	assert_int_equal(danests_config_set_cache_dir(cfg, NULL, why,
	    sizeof(why)), DANESTS_OK);
	danests_config_set_sts_port(cfg, port);
	danests_config_set_fetch_timeout(cfg, 20000);
	danests_config_set_decision_timeout(cfg, 30000);
	assert_int_equal(dns_mock_new(base, sts_hanging, sizeof(sts_hanging) /
	    sizeof(sts_hanging[0]), &dns), DANESTS_OK);
	assert_int_equal(danests_ctx_new_with_dns(cfg, base, dns, &ctx, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_decide_async(ctx, "d.test", DANESTS_F_NO_CACHE,
	    cancel_cb, &seen, why, sizeof(why)), DANESTS_OK);
	event_base_loopexit(base, &tv);
	event_base_dispatch(base);
	assert_int_equal(seen.calls, 0);	/* still fetching */
	danests_ctx_free(ctx);
	assert_int_equal(seen.calls, 1);
	assert_int_equal(seen.st, DANESTS_OK);
	assert_non_null(seen.d);
	assert_null(seen.d->sts);
	assert_non_null(seen.d->sts_error);
	assert_non_null(strstr(seen.d->sts_error, "cancelled"));
	/* our own cancellation is no "no policy" (RFC 8461 3.3 is about the
	 * policy host's failures): the unprotected hosts are skipped and
	 * the domain defers, never "may" */
	assert_int_equal(seen.d->verdict, DANESTS_TEMPFAIL);
	assert_true(seen.d->nhosts > 0);
	for (size_t i = 0; i < seen.d->nhosts; i++) {
		assert_int_equal(seen.d->hosts[i].policy, DANESTS_POLICY_SKIP);
		assert_int_equal(seen.d->hosts[i].reason,
		    DANESTS_R_LOCAL_ERROR);
	}
	danests_decision_free(seen.d);
	event_base_free(base);
	danests_config_free(cfg);
	close(lfd);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_dns_cases),
		cmocka_unit_test(test_sts_cases),
		cmocka_unit_test(test_bad_domain),
		cmocka_unit_test(test_nomem_domain),
		cmocka_unit_test(test_free_with_pending_fetch),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
