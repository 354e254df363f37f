/*
 * test_pfmap.c - table tests of the socketmap wire format, the key
 * normalisation and the decision -> answer mapping of danests-postfix
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "pfmap.h"

/* --- netstrings --- */

static const struct {
	const char *in;
	size_t max;
	enum pfmap_ns want;
	const char *data;	/* expected payload for OK */
	size_t used;
} ns_cases[] = {
	{ "11:postfix a.b,", 100, PFMAP_NS_OK, "postfix a.b", 15 },
	{ "0:,", 100, PFMAP_NS_OK, "", 3 },
	{ "3:abc,3:def,", 100, PFMAP_NS_OK, "abc", 6 },
	{ "", 100, PFMAP_NS_MORE, NULL, 0 },
	{ "12", 100, PFMAP_NS_MORE, NULL, 0 },
	{ "12:", 100, PFMAP_NS_MORE, NULL, 0 },
	{ "11:postfix a.b", 100, PFMAP_NS_MORE, NULL, 0 },
	{ "3:abc", 100, PFMAP_NS_MORE, NULL, 0 },
	{ "3:abcd", 100, PFMAP_NS_BAD, NULL, 0 },	/* no comma */
	{ "3:ab,x", 100, PFMAP_NS_BAD, NULL, 0 },
	{ "3:ab,,", 100, PFMAP_NS_OK, "ab,", 6 },
	{ ":abc,", 100, PFMAP_NS_BAD, NULL, 0 },
	{ "x3:abc,", 100, PFMAP_NS_BAD, NULL, 0 },
	{ "-3:abc,", 100, PFMAP_NS_BAD, NULL, 0 },
	{ "03:abc,", 100, PFMAP_NS_BAD, NULL, 0 },	/* leading zero */
	{ "101:", 100, PFMAP_NS_BAD, NULL, 0 },	/* over the cap */
	{ "99999999999999999999999:", 100, PFMAP_NS_BAD, NULL, 0 },
	{ "100:", 100, PFMAP_NS_MORE, NULL, 0 },	/* at the cap */
	{ "3 :abc,", 100, PFMAP_NS_BAD, NULL, 0 },
};

static void
test_ns_parse(void **state)
{
	const char *data, *why;
	size_t i, dlen, used;
	enum pfmap_ns r;

	(void)state;
	for (i = 0; i < sizeof(ns_cases) / sizeof(ns_cases[0]); i++) {
		data = NULL;
		r = pfmap_ns_parse(ns_cases[i].in, strlen(ns_cases[i].in),
		    ns_cases[i].max, &data, &dlen, &used, &why);
		if (r != ns_cases[i].want)
			fail_msg("case %zu \"%s\": got %d want %d", i,
			    ns_cases[i].in, r, ns_cases[i].want);
		if (r == PFMAP_NS_BAD)
			assert_non_null(why);
		if (r != PFMAP_NS_OK)
			continue;
		assert_int_equal(dlen, strlen(ns_cases[i].data));
		assert_memory_equal(data, ns_cases[i].data, dlen);
		assert_int_equal(used, ns_cases[i].used);
	}
}

static void
test_ns_format(void **state)
{
	char buf[32];

	(void)state;
	assert_int_equal(pfmap_ns_format(buf, sizeof(buf), "OK dane", 7), 10);
	assert_string_equal(buf, "7:OK dane,");
	assert_int_equal(pfmap_ns_format(buf, sizeof(buf), "", 0), 3);
	assert_string_equal(buf, "0:,");
	assert_int_equal(pfmap_ns_format(buf, 10, "OK dane", 7), 0);
	assert_int_equal(pfmap_ns_format(buf, 11, "OK dane", 7), 10);
}

/* --- requests --- */

static const struct {
	const char *in;
	danests_status want;
	const char *name, *key;
} req_cases[] = {
	{ "postfix example.com", DANESTS_OK, "postfix", "example.com" },
	{ "postfix-strict [mx.example.com]:25", DANESTS_OK,
	    "postfix-strict", "[mx.example.com]:25" },
	{ "p .example.com", DANESTS_OK, "p", ".example.com" },
	{ "postfix", DANESTS_PERM, NULL, NULL },
	{ "postfix ", DANESTS_PERM, NULL, NULL },
	{ " example.com", DANESTS_PERM, NULL, NULL },
	{ "postfix  example.com", DANESTS_PERM, NULL, NULL },
	{ "postfix example.com ", DANESTS_PERM, NULL, NULL },
	{ "post/fix example.com", DANESTS_PERM, NULL, NULL },
	{ "postfix exa\tmple.com", DANESTS_PERM, NULL, NULL },
	{ "postfix exa\x80mple.com", DANESTS_PERM, NULL, NULL },
	{ "", DANESTS_PERM, NULL, NULL },
	{ "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    " x", DANESTS_PERM, NULL, NULL },	/* name too long */
};

static void
test_request_parse(void **state)
{
	char name[PFMAP_NAME_MAX], key[PFMAP_KEY_MAX], big[600];
	const char *why;
	danests_status st;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(req_cases) / sizeof(req_cases[0]); i++) {
		st = pfmap_request_parse(req_cases[i].in,
		    strlen(req_cases[i].in), name, key, &why);
		if (st != req_cases[i].want)
			fail_msg("case %zu \"%s\": got %d want %d", i,
			    req_cases[i].in, st, req_cases[i].want);
		if (st != DANESTS_OK) {
			assert_non_null(why);
			continue;
		}
		assert_string_equal(name, req_cases[i].name);
		assert_string_equal(key, req_cases[i].key);
	}
	/* a NUL inside the request */
	assert_int_equal(pfmap_request_parse("postfix a\0b", 11, name, key,
	    &why), DANESTS_PERM);
	/* key over the cap */
	memset(big, 'a', sizeof(big));
	memcpy(big, "postfix ", 8);
	assert_int_equal(pfmap_request_parse(big, sizeof(big), name, key,
	    &why), DANESTS_PERM);
}

/* --- keys --- */

static const struct {
	const char *key;
	danests_status want;
	const char *domain;
} key_cases[] = {
	{ "example.com", DANESTS_OK, "example.com" },
	{ "Example.COM.", DANESTS_OK, "example.com" },
	{ "[mx.example.com]", DANESTS_OK, "mx.example.com" },
	{ "[mx.example.com]:25", DANESTS_OK, "mx.example.com" },
	{ "mx.example.com:587", DANESTS_OK, "mx.example.com" },
	{ "[MX.Example.com.]:25", DANESTS_OK, "mx.example.com" },
	{ ".example.com", DANESTS_NOTFOUND, NULL },
	{ "[192.0.2.1]", DANESTS_NOTFOUND, NULL },
	{ "[192.0.2.1]:25", DANESTS_NOTFOUND, NULL },
	{ "192.0.2.1", DANESTS_NOTFOUND, NULL },
	{ "192.0.2.1:25", DANESTS_NOTFOUND, NULL },
	{ "[ipv6:2001:db8::1]", DANESTS_NOTFOUND, NULL },
	{ "[2001:db8::1]:25", DANESTS_NOTFOUND, NULL },
	{ "2001:db8::1", DANESTS_NOTFOUND, NULL },
	{ "[mx.example.com", DANESTS_NOTFOUND, NULL },
	{ "[mx.example.com]x", DANESTS_NOTFOUND, NULL },
	{ "[mx.example.com]:", DANESTS_NOTFOUND, NULL },
	{ "mx.example.com:smtp", DANESTS_NOTFOUND, NULL },
	{ "exa_mple..com", DANESTS_NOTFOUND, NULL },
	{ "-bad.example", DANESTS_NOTFOUND, NULL },
	{ "[]", DANESTS_NOTFOUND, NULL },
};

static void
test_key_normalize(void **state)
{
	char out[PFMAP_DOMAIN_MAX];
	const char *why;
	danests_status st;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(key_cases) / sizeof(key_cases[0]); i++) {
		st = pfmap_key_normalize(key_cases[i].key, out, &why);
		if (st != key_cases[i].want)
			fail_msg("case %zu \"%s\": got %d want %d", i,
			    key_cases[i].key, st, key_cases[i].want);
		if (st == DANESTS_OK)
			assert_string_equal(out, key_cases[i].domain);
		else
			assert_non_null(why);
	}
}

/* --- answers --- */

#define MAXH 4
struct acase {
	const char *what;
	danests_verdict verdict;
	danests_reason reason;
	danests_policy hosts[MAXH];
	size_t nhosts;
	danests_sts_mode sts;	/* with the policy below when not NONE */
	const char *mx[3];
	bool strict, tlsrpt;
	const char *want;
	bool mx_insecure;
};

#define D DANESTS_POLICY_DANE
#define E DANESTS_POLICY_ENCRYPT
#define S DANESTS_POLICY_STS_ENFORCE
#define T DANESTS_POLICY_STS_TESTING
#define M DANESTS_POLICY_MAY
#define K DANESTS_POLICY_SKIP
#define NONE DANESTS_STS_NONE
#define ENF DANESTS_STS_ENFORCE
#define TST DANESTS_STS_TESTING

static const struct acase acases[] = {
	{ "all dane", DANESTS_DELIVER, DANESTS_R_OK, { D, D }, 2, NONE, { 0 }, 0, 0,
	    "OK dane-only" },
	{ "dane + skip (bogus TLSA)", DANESTS_DELIVER, DANESTS_R_OK, { K, D }, 2,
	    NONE, { 0 }, 0, 0, "OK dane-only" },
	{ "all dane, insecure MX", DANESTS_DELIVER, DANESTS_R_OK, { D }, 1, NONE,
	    { 0 }, 0, 0, "OK dane", true },
	{ "all dane + skip, insecure MX", DANESTS_DELIVER, DANESTS_R_OK, { D, K }, 2,
	    NONE, { 0 }, 0, 0, "OK dane", true },
	{ "dane + may, insecure MX", DANESTS_DELIVER, DANESTS_R_OK, { D, M }, 2, NONE,
	    { 0 }, 0, 0, "OK dane", true },
	{ "dane + encrypt, insecure MX", DANESTS_DELIVER, DANESTS_R_OK, { D, E }, 2,
	    NONE, { 0 }, 0, 0, "OK dane", true },
	{ "all encrypt, insecure MX", DANESTS_DELIVER, DANESTS_R_OK, { E }, 1, NONE,
	    { 0 }, 0, 0, "OK encrypt", true },
	/* Postfix 3.7 defers dane-only for an insecure MX RRset and sends
	 * dane's hosts without TLSA opportunistically: the policy's level. */
	{ "dane + sts-enforce, insecure MX", DANESTS_DELIVER, DANESTS_R_OK, { D, S }, 2,
	    ENF, { "mx1.example.com", "mx2.example.com" }, 0, 0,
	    "OK secure match=mx1.example.com:mx2.example.com "
	    "servername=hostname", true },
	{ "dane (not in policy) + sts-enforce, insecure MX", DANESTS_DELIVER,
	    DANESTS_R_OK, { D, S }, 2, ENF, { "mx2.example.com" }, 0, 0,
	    "OK secure match=mx2.example.com servername=hostname", true },
	{ "sts-enforce + dane + skip, insecure MX", DANESTS_DELIVER, DANESTS_R_OK,
	    { S, D, K }, 3, ENF, { "*.example.com" }, 0, 0,
	    "OK secure match=.example.com servername=hostname", true },
	{ "encrypt + sts-enforce, insecure MX", DANESTS_DELIVER, DANESTS_R_OK, { E, S },
	    2, ENF, { "mx2.example.com" }, 0, 0,
	    "OK secure match=mx2.example.com servername=hostname", true },
	{ "dane + sts-enforce, insecure MX, tlsrpt", DANESTS_DELIVER, DANESTS_R_OK,
	    { D, S }, 2, ENF, { "*.example.com" }, 0, 1,
	    "OK secure match=.example.com servername=hostname "
	    "policy_type=sts policy_domain=example.com policy_ttl=86400 "
	    "{ policy_string = version: STSv1 } "
	    "{ policy_string = mode: enforce } "
	    "{ policy_string = mx: *.example.com } "
	    "{ policy_string = max_age: 86400 } "
	    "mx_host_pattern=*.example.com", true },
	{ "dane + sts-enforce, insecure MX, bad pattern", DANESTS_DELIVER,
	    DANESTS_R_OK, { D, S }, 2, ENF, { "mx.example.com:25" }, 0, 0, "TEMP ",
	    true },
	{ "dane + sts-enforce host without policy, insecure MX",
	    DANESTS_DELIVER, DANESTS_R_OK, { D, S }, 2, NONE, { 0 }, 0, 0, "TEMP ",
	    true },
	{ "dane + may", DANESTS_DELIVER, DANESTS_R_OK, { D, M }, 2, NONE, { 0 }, 0, 0,
	    "OK dane" },
	{ "dane + sts-enforce", DANESTS_DELIVER, DANESTS_R_OK, { D, S }, 2, ENF,
	    { "mx2.example.com" }, 0, 0, "OK dane-only" },
	{ "dane + sts-testing", DANESTS_DELIVER, DANESTS_R_OK, { D, T }, 2, TST,
	    { "mx2.example.com" }, 0, 0, "OK dane" },
	{ "dane + sts-testing, strict", DANESTS_DELIVER, DANESTS_R_OK, { D, T }, 2,
	    TST, { "mx2.example.com" }, 1, 0, "OK dane" },
	{ "all encrypt", DANESTS_DELIVER, DANESTS_R_OK, { E }, 1, NONE, { 0 }, 0, 0,
	    "OK encrypt" },
	{ "dane + encrypt", DANESTS_DELIVER, DANESTS_R_OK, { D, E }, 2, NONE, { 0 }, 0,
	    0, "OK dane" },
	{ "encrypt + may", DANESTS_DELIVER, DANESTS_R_OK, { E, M }, 2, NONE, { 0 }, 0,
	    0, "OK dane" },
	{ "encrypt + sts-enforce", DANESTS_DELIVER, DANESTS_R_OK, { E, S }, 2, ENF,
	    { "mx2.example.com" }, 0, 0, "OK dane-only" },
	{ "sts enforce", DANESTS_DELIVER, DANESTS_R_OK, { S }, 1, ENF,
	    { "mx.example.com" }, 0, 0,
	    "OK secure match=mx.example.com servername=hostname" },
	{ "sts enforce wildcard + skip", DANESTS_DELIVER, DANESTS_R_OK, { S, K }, 2,
	    ENF, { "*.example.com", "MX.other.example" }, 0, 0,
	    "OK secure match=.example.com:mx.other.example "
	    "servername=hostname" },
	{ "sts enforce, tlsrpt", DANESTS_DELIVER, DANESTS_R_OK, { S }, 1, ENF,
	    { "*.example.com" }, 0, 1,
	    "OK secure match=.example.com servername=hostname "
	    "policy_type=sts policy_domain=example.com policy_ttl=86400 "
	    "{ policy_string = version: STSv1 } "
	    "{ policy_string = mode: enforce } "
	    "{ policy_string = mx: *.example.com } "
	    "{ policy_string = max_age: 86400 } "
	    "mx_host_pattern=*.example.com" },
	{ "sts testing, strict, tlsrpt, two patterns", DANESTS_DELIVER,
	    DANESTS_R_OK, { T }, 1, TST, { "mx1.example.com", "*.example.net" },
	    1, 1,
	    "OK secure match=mx1.example.com:.example.net servername=hostname "
	    "policy_type=sts policy_domain=example.com policy_ttl=86400 "
	    "{ policy_string = version: STSv1 } "
	    "{ policy_string = mode: testing } "
	    "{ policy_string = mx: mx1.example.com } "
	    "{ policy_string = mx: *.example.net } "
	    "{ policy_string = max_age: 86400 } "
	    "mx_host_pattern=mx1.example.com mx_host_pattern=*.example.net" },
	{ "sts enforce, bad pattern", DANESTS_DELIVER, DANESTS_R_OK, { S }, 1, ENF,
	    { "mx.example.com:25" }, 0, 0, "TEMP " },
	{ "sts enforce, no patterns", DANESTS_DELIVER, DANESTS_R_OK, { S }, 1, ENF,
	    { 0 }, 0, 0, "TEMP " },
	{ "sts-enforce host without policy", DANESTS_DELIVER, DANESTS_R_OK, { S }, 1,
	    NONE, { 0 }, 0, 0, "TEMP " },
	{ "sts testing", DANESTS_DELIVER, DANESTS_R_OK, { T }, 1, TST,
	    { "mx.example.com" }, 0, 0, "NOTFOUND " },
	{ "sts testing, strict", DANESTS_DELIVER, DANESTS_R_OK, { T }, 1, TST,
	    { "mx.example.com" }, 1, 0,
	    "OK secure match=mx.example.com servername=hostname" },
	{ "sts none", DANESTS_DELIVER, DANESTS_R_OK, { M }, 1, NONE, { 0 }, 0, 0,
	    "NOTFOUND " },
	{ "no policy", DANESTS_DELIVER, DANESTS_R_OK, { M, M }, 2, NONE, { 0 }, 0, 0,
	    "NOTFOUND " },
	{ "tempfail", DANESTS_TEMPFAIL, DANESTS_R_DNSSEC_INVALID, { 0 }, 0, NONE,
	    { 0 }, 0, 0, "TEMP example.com: dnssec-invalid" },
	{ "tempfail sts mismatch", DANESTS_TEMPFAIL, DANESTS_R_STS_MX_MISMATCH, { K },
	    1, ENF, { "mx.example.com" }, 0, 0,
	    "TEMP example.com: sts-mx-mismatch" },
	{ "permfail null MX", DANESTS_PERMFAIL, DANESTS_R_NULL_MX, { 0 }, 0, NONE,
	    { 0 }, 0, 0, "NOTFOUND " },
	{ "deliver but only skip hosts", DANESTS_DELIVER, DANESTS_R_OK, { K, K }, 2,
	    NONE, { 0 }, 0, 0, "TEMP example.com: no usable MX host" },
};

static void
test_answer(void **state)
{
	struct danests_decision d;
	struct danests_host h[MAXH];
	struct danests_sts sts;
	char out[PFMAP_REPLY_MAX], *mx[3];
	struct pfmap_profile p;
	size_t i, j;
	danests_status st;

	(void)state;
	for (i = 0; i < sizeof(acases) / sizeof(acases[0]); i++) {
		const struct acase *a = &acases[i];

		memset(&d, 0, sizeof(d));
		memset(h, 0, sizeof(h));
		memset(&sts, 0, sizeof(sts));
		memset(&p, 0, sizeof(p));
		d.domain = "example.com";
		d.verdict = a->verdict;
		d.reason = a->reason;
		d.mx_security = a->mx_insecure ? DANESTS_SEC_INSECURE :
		    DANESTS_SEC_SECURE;
		d.nhosts = a->nhosts;
		d.hosts = h;
		for (j = 0; j < a->nhosts; j++) {
			h[j].name = "mx.example.com";
			h[j].policy = a->hosts[j];
		}
		if (a->sts != NONE) {
			sts.policy.mode = a->sts;
			for (j = 0; j < 3 && a->mx[j] != NULL; j++)
				mx[j] = (char *)a->mx[j];
			sts.policy.nmx = j;
			sts.policy.mx = mx;
			sts.policy.max_age = 86400;
			sts.fetched = 1000;
			sts.expires = 1000 + 86400;
			d.sts = &sts;
		}
		p.strict_testing = a->strict;
		p.tlsrpt = a->tlsrpt;
		st = pfmap_answer(&d, &p, out, sizeof(out));
		if (strncmp(out, a->want, strlen(a->want)) != 0 ||
		    (a->want[strlen(a->want) - 1] != ' ' &&
		    strcmp(out, a->want) != 0))
			fail_msg("case \"%s\": got \"%s\" want \"%s\"",
			    a->what, out, a->want);
		/* the status matches the reply word */
		assert_int_equal(st, strncmp(out, "OK ", 3) == 0 ? DANESTS_OK :
		    strncmp(out, "NOTFOUND ", 9) == 0 ? DANESTS_NOTFOUND :
		    strncmp(out, "TEMP ", 5) == 0 ? DANESTS_TEMP : DANESTS_PERM);
		/* never OK for a domain that could not be decided */
		if (a->verdict != DANESTS_DELIVER)
			assert_int_not_equal(st, DANESTS_OK);
	}
}

static void
test_reply(void **state)
{
	char out[64];

	(void)state;
	pfmap_reply(DANESTS_NOTFOUND, "ignored", out, sizeof(out));
	assert_string_equal(out, "NOTFOUND ");
	pfmap_reply(DANESTS_TEMP, "a\nb\r", out, sizeof(out));
	assert_string_equal(out, "TEMP a b ");
	pfmap_reply(DANESTS_PERM, NULL, out, sizeof(out));
	assert_string_equal(out, "PERM unspecified error");
	pfmap_reply(DANESTS_OK, "dane", out, sizeof(out));
	assert_string_equal(out, "OK dane");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ns_parse),
		cmocka_unit_test(test_ns_format),
		cmocka_unit_test(test_request_parse),
		cmocka_unit_test(test_key_normalize),
		cmocka_unit_test(test_answer),
		cmocka_unit_test(test_reply),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
