/*
 * test_tlsrpt_dgram.c - the datagrams of libtlsrpt (Postfix >= 3.10
 * TLSRPT) into RFC 8460 results: the datagrams Debian 13's libtlsrpt sent
 * for each scenario of tests/bench/tlsrpt_peer.c, recorded in
 * tests/unit/data/tlsrpt (tests/packages/tlsrpt.sh check compares them
 * with what the library sends), then malformed ones, each refused whole.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt_dgram.h"

#define DATA SRCDIR "/unit/data/tlsrpt/"

/* A result as the callback saw it, copied. */
struct got {
	char domain[256];
	int type;
	char ps[4200], mx[4200];
	bool success;
	int rt;
	char snd[64], rmx[256], helo[256], rip[64], info[256];
};

struct sink {
	size_t n;
	struct got g[TLSRPT_DGRAM_POLICIES];
	danests_status answer;	/* what the callback returns */
};

static void
cp(char *dst, size_t len, const char *src)
{
	snprintf(dst, len, "%s", src != NULL ? src : "(null)");
}

/* collect - a tlsrpt_dgram_fn that copies every result */
static danests_status
collect(void *arg, const struct danests_rpt_result *r, char *why,
    size_t whylen)
{
	struct sink *k = arg;
	struct got *g;

	assert_true(k->n < TLSRPT_DGRAM_POLICIES);
	g = &k->g[k->n++];
	cp(g->domain, sizeof(g->domain), r->policy_domain);
	g->type = (int)r->policy_type;
	cp(g->ps, sizeof(g->ps), r->policy_string);
	cp(g->mx, sizeof(g->mx), r->mx_host);
	g->success = r->success;
	g->rt = (int)r->result_type;
	cp(g->snd, sizeof(g->snd), r->sending_mta_ip);
	cp(g->rmx, sizeof(g->rmx), r->receiving_mx_hostname);
	cp(g->helo, sizeof(g->helo), r->receiving_mx_helo);
	cp(g->rip, sizeof(g->rip), r->receiving_ip);
	cp(g->info, sizeof(g->info), r->additional_info);
	if (k->answer != DANESTS_OK)
		snprintf(why, whylen, "cache full");
	return k->answer;
}

/* load - a recorded datagram */
static char *
load(const char *name, size_t *len)
{
	char path[512];
	static char buf[TLSRPT_DGRAM_MAX + 1];
	FILE *f;

	snprintf(path, sizeof(path), DATA "%s.json", name);
	f = fopen(path, "rb");
	assert_non_null(f);
	*len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	assert_true(*len > 0 && *len < sizeof(buf));
	return buf;
}

static danests_result_type
rt(const char *name)
{
	int t;

	for (t = 1; danests_result_type_name((danests_result_type)t) != NULL;
	    t++)
		if (strcmp(danests_result_type_name((danests_result_type)t),
		    name) == 0)
			return (danests_result_type)t;
	fail_msg("no result type %s", name);
	return DANESTS_RT_NONE;
}

/* --- datagrams libtlsrpt sent --- */

static const struct rcase {
	const char *file;
	size_t n;		/* sessions */
	size_t extra;		/* failure details not recorded */
	struct {
		const char *domain;
		int type;
		const char *ps, *mx;
		bool success;
		const char *rt;	/* NULL: success */
		const char *snd, *rmx, *helo, *rip, *info;
	} s[2];
} rcases[] = {
	{ "sts-success", 1, 0, { { "sts-enforce.test", 2,
	    "version: STSv1\nmode: enforce\nmx: mx.sts-enforce.test\n"
	    "max_age: 86400", "mx.sts-enforce.test", true, NULL,
	    "(null)", "(null)", "(null)", "(null)", "(null)" } } },
	{ "sts-failure", 1, 0, { { "sts-certbad.test", 2,
	    "version: STSv1\nmode: enforce\nmx: mx.sts-certbad.test\n"
	    "max_age: 86400", "mx.sts-certbad.test", false,
	    "certificate-host-mismatch", "127.0.0.1", "mx.sts-certbad.test",
	    "mx.sts-enforce.test", "127.10.2.5",
	    "server certificate not verified" } } },
	{ "sts-starttls", 1, 0, { { "sts-testing.test", 2,
	    "version: STSv1\nmode: testing\nmx: mx.sts-testing.test\n"
	    "max_age: 86400", "mx.sts-testing.test", false,
	    "starttls-not-supported", "::1", "mx.sts-testing.test",
	    "mx.sts-testing.test", "2001:db8::25", "(null)" } } },
	{ "tlsa-success", 1, 0, { { "dane-ee.test", 1,
	    "3 1 1 0C72AC70B745AC19998811B131D662C9AC69DBDBE7CB23E5B514B566"
	    "64C5D3D6", "mx.dane-ee.test", true, NULL, "(null)", "(null)",
	    "(null)", "(null)", "(null)" } } },
	{ "tlsa-failure", 1, 0, { { "dane-mismatch.test", 1,
	    "3 1 1 1111111111111111111111111111111111111111111111111111111111"
	    "111111\n2 0 1 22222222222222222222222222222222222222222222222222"
	    "22222222222222", "mx.dane-mismatch.test", false,
	    "validation-failure", "127.0.0.1", "mx.dane-mismatch.test",
	    "mx.sts-enforce.test", "127.10.2.3",
	    "TLSA records do not match" } } },
	{ "no-policy", 1, 0, { { "insecure.test", 9, "(null)", "(null)", true,
	    NULL, "(null)", "(null)", "(null)", "(null)", "(null)" } } },
	{ "two-details", 1, 1, { { "example.test", 2,
	    "version: STSv1\nmode: testing\nmx: mx.example.test\n"
	    "max_age: 86400", "mx.example.test", false, "sts-policy-invalid",
	    "192.0.2.1", "mx.example.test", "mx.example.test", "192.0.2.25",
	    "999 TEST REASON" } } },
	{ "two-policies", 2, 0, {
	    { "example.test", 9, "(null)", "(null)", true, NULL, "(null)",
	    "(null)", "(null)", "(null)", "(null)" },
	    { "example.test", 2, "version: STSv1\nmode: enforce\n"
	    "mx: mx.example.test\nmax_age: 86400", "mx.example.test", false,
	    "sts-policy-fetch-error", "127.0.0.1", "(null)", "(null)",
	    "(null)", "(null)" } } },
	/* names lower case without the dot, the reason printable ASCII */
	{ "escaped", 1, 0, { { "example.test", 2,
	    "version: STSv1\nmode: enforce\nmx: mx.Example.TEST.\n"
	    "max_age: 86400", "mx.example.test", false, "certificate-expired",
	    "127.0.0.1", "mx.example.test", "mx.example.test", "127.10.2.9",
	    "\"quoted\" \\ back\\slash, caf? and a tab" } } },
};

static void
test_recorded(void **state)
{
	struct tlsrpt_dgram_info info;
	struct sink k;
	char why[256];
	size_t i, j, len;
	const char *buf;

	(void)state;
	for (i = 0; i < sizeof(rcases) / sizeof(rcases[0]); i++) {
		const struct rcase *c = &rcases[i];

		memset(&k, 0, sizeof(k));
		why[0] = '\0';
		buf = load(c->file, &len);
		if (tlsrpt_dgram_parse(buf, len, collect, &k, &info, why,
		    sizeof(why)) != DANESTS_OK)
			fail_msg("%s: %s", c->file, why);
		assert_int_equal(k.n, c->n);
		assert_int_equal(info.sessions, c->n);
		assert_int_equal(info.extra_details, c->extra);
		for (j = 0; j < c->n; j++) {
			struct got *g = &k.g[j];

			assert_string_equal(g->domain, c->s[j].domain);
			assert_int_equal(g->type, c->s[j].type);
			assert_string_equal(g->ps, c->s[j].ps);
			assert_string_equal(g->mx, c->s[j].mx);
			assert_int_equal(g->success, c->s[j].success);
			assert_int_equal(g->rt, c->s[j].rt == NULL ?
			    DANESTS_RT_NONE : rt(c->s[j].rt));
			assert_string_equal(g->snd, c->s[j].snd);
			assert_string_equal(g->rmx, c->s[j].rmx);
			assert_string_equal(g->helo, c->s[j].helo);
			assert_string_equal(g->rip, c->s[j].rip);
			assert_string_equal(g->info, c->s[j].info);
		}
	}
}

/* --- malformed: refused whole, nothing recorded --- */

#define HEAD "{\"d\": \"a.test\",\"pr\": \"v=TLSRPTv1; rua=mailto:r@a.test\","
#define STS "\"policy-type\":2,\"policy-string\":[\"version: STSv1\"]"
#define FD(x) "\"failure-details\":[{\"c\":202" x "}],\"t\":1,\"f\":1"

static const struct bcase {
	const char *name, *in;
} bcases[] = {
	{ "empty object", "{}" },
	{ "not json", "{\"d\": " },
	{ "trailing garbage", HEAD "\"policies\":[{\"policy-type\":9,\"t\":0,"
	    "\"f\":0}]} x" },
	{ "array", "[1]" },
	{ "unknown member", HEAD "\"x\":1,\"policies\":[{\"policy-type\":9,"
	    "\"t\":0,\"f\":0}]}" },
	{ "duplicate member", HEAD "\"d\": \"b.test\",\"policies\":[{"
	    "\"policy-type\":9,\"t\":0,\"f\":0}]}" },
	{ "dpv 2", "{\"dpv\": \"2\",\"d\": \"a.test\",\"pr\": \"v=TLSRPTv1; "
	    "rua=mailto:r@a.test\",\"policies\":[{\"policy-type\":9,\"t\":0,"
	    "\"f\":0}]}" },
	{ "dpv number", "{\"dpv\": 1,\"d\": \"a.test\",\"pr\": \"v=TLSRPTv1; "
	    "rua=mailto:r@a.test\",\"policies\":[{\"policy-type\":9,\"t\":0,"
	    "\"f\":0}]}" },
	{ "no d", "{\"pr\": \"v=TLSRPTv1; rua=mailto:r@a.test\",\"policies\":"
	    "[{\"policy-type\":9,\"t\":0,\"f\":0}]}" },
	{ "d not a name", "{\"d\": \"a b.test\",\"pr\": \"v=TLSRPTv1; "
	    "rua=mailto:r@a.test\",\"policies\":[{\"policy-type\":9,\"t\":0,"
	    "\"f\":0}]}" },
	{ "d empty label", "{\"d\": \"a..test\",\"pr\": \"v=TLSRPTv1; "
	    "rua=mailto:r@a.test\",\"policies\":[{\"policy-type\":9,\"t\":0,"
	    "\"f\":0}]}" },
	{ "d U-label", "{\"d\": \"caf\xc3\xa9.test\",\"pr\": \"v=TLSRPTv1; "
	    "rua=mailto:r@a.test\",\"policies\":[{\"policy-type\":9,\"t\":0,"
	    "\"f\":0}]}" },
	{ "pr not tlsrpt", "{\"d\": \"a.test\",\"pr\": \"v=STSv1; id=1\","
	    "\"policies\":[{\"policy-type\":9,\"t\":0,\"f\":0}]}" },
	{ "no policies", HEAD "\"policies\":[]}" },
	{ "policies not array", HEAD "\"policies\":{}}" },
	{ "nine policies", HEAD "\"policies\":[{\"policy-type\":9,\"t\":0,"
	    "\"f\":0},{\"policy-type\":9,\"t\":0,\"f\":0},{\"policy-type\":9,"
	    "\"t\":0,\"f\":0},{\"policy-type\":9,\"t\":0,\"f\":0},{"
	    "\"policy-type\":9,\"t\":0,\"f\":0},{\"policy-type\":9,\"t\":0,"
	    "\"f\":0},{\"policy-type\":9,\"t\":0,\"f\":0},{\"policy-type\":9,"
	    "\"t\":0,\"f\":0},{\"policy-type\":9,\"t\":0,\"f\":0}]}" },
	{ "policy type 3", HEAD "\"policies\":[{\"policy-type\":3,\"t\":0,"
	    "\"f\":0}]}" },
	{ "policy type string", HEAD "\"policies\":[{\"policy-type\":\"sts\","
	    "\"t\":0,\"f\":0}]}" },
	{ "policy type real", HEAD "\"policies\":[{\"policy-type\":9.0,"
	    "\"t\":0,\"f\":0}]}" },
	{ "no f", HEAD "\"policies\":[{\"policy-type\":9,\"t\":0}]}" },
	{ "f 2", HEAD "\"policies\":[{\"policy-type\":9,\"t\":0,\"f\":2}]}" },
	{ "unknown policy member", HEAD "\"policies\":[{\"policy-type\":9,"
	    "\"t\":0,\"f\":0,\"x\":0}]}" },
	{ "failure without detail", HEAD "\"policies\":[{\"policy-type\":9,"
	    "\"t\":0,\"f\":1}]}" },
	{ "success with detail", HEAD "\"policies\":[{\"policy-type\":9,"
	    "\"failure-details\":[{\"c\":202}],\"t\":1,\"f\":0}]}" },
	{ "t mismatch", HEAD "\"policies\":[{\"policy-type\":9,"
	    "\"failure-details\":[{\"c\":202}],\"t\":2,\"f\":1}]}" },
	{ "t negative", HEAD "\"policies\":[{\"policy-type\":9,\"t\":-1,"
	    "\"f\":0}]}" },
	{ "unknown result type", HEAD "\"policies\":[{\"policy-type\":9,"
	    "\"failure-details\":[{\"c\":901}],\"t\":1,\"f\":1}]}" },
	{ "result type string", HEAD "\"policies\":[{\"policy-type\":9,"
	    "\"failure-details\":[{\"c\":\"202\"}],\"t\":1,\"f\":1}]}" },
	{ "no result type", HEAD "\"policies\":[{\"policy-type\":9,"
	    "\"failure-details\":[{\"s\":\"127.0.0.1\"}],\"t\":1,\"f\":1}]}" },
	{ "unknown detail member", HEAD "\"policies\":[{" STS ","
	    FD(",\"x\":\"1\"") "}]}" },
	{ "sending ip not an address", HEAD "\"policies\":[{" STS ","
	    FD(",\"s\":\"localhost\"") "}]}" },
	{ "receiving ip not an address", HEAD "\"policies\":[{" STS ","
	    FD(",\"r\":\"10.0.0.256\"") "}]}" },
	{ "mx hostname with a space", HEAD "\"policies\":[{" STS ","
	    FD(",\"n\":\"mx .a.test\"") "}]}" },
	{ "mx hostname with a newline", HEAD "\"policies\":[{" STS ","
	    FD(",\"n\":\"mx.a.test\\n\"") "}]}" },
	{ "second detail not an object", HEAD "\"policies\":[{" STS ","
	    "\"failure-details\":[{\"c\":202},1],\"t\":2,\"f\":1}]}" },
	{ "second detail bad member", HEAD "\"policies\":[{" STS ","
	    "\"failure-details\":[{\"c\":202},{\"c\":203,\"s\":7}],\"t\":2,"
	    "\"f\":1}]}" },
	{ "sts without policy strings", HEAD "\"policies\":[{"
	    "\"policy-type\":2,\"t\":0,\"f\":0}]}" },
	{ "sts policy string with a newline", HEAD "\"policies\":[{"
	    "\"policy-type\":2,\"policy-string\":[\"version: STSv1\\nmode: "
	    "enforce\"],\"t\":0,\"f\":0}]}" },
	{ "sts empty policy string", HEAD "\"policies\":[{"
	    "\"policy-type\":2,\"policy-string\":[\"\"],\"t\":0,\"f\":0}]}" },
	{ "sts bad mx pattern", HEAD "\"policies\":[{" STS ",\"mx-host\":["
	    "\"mx.a.test:25\"],\"t\":0,\"f\":0}]}" },
	{ "sts mx pattern wildcard inside", HEAD "\"policies\":[{" STS
	    ",\"mx-host\":[\"mx.*.a.test\"],\"t\":0,\"f\":0}]}" },
	{ "policy string not strings", HEAD "\"policies\":[{"
	    "\"policy-type\":2,\"policy-string\":[1],\"t\":0,\"f\":0}]}" },
	{ "tlsa without records", HEAD "\"policies\":[{\"policy-type\":1,"
	    "\"t\":0,\"f\":0}]}" },
	{ "tlsa record not a record", HEAD "\"policies\":[{\"policy-type\":1,"
	    "\"policy-string\":[\"3 1 1 xyz\"],\"t\":0,\"f\":0}]}" },
	{ "tlsa usage 256", HEAD "\"policies\":[{\"policy-type\":1,"
	    "\"policy-string\":[\"256 1 1 00\"],\"t\":0,\"f\":0}]}" },
	{ "tlsa odd hex", HEAD "\"policies\":[{\"policy-type\":1,"
	    "\"policy-string\":[\"3 1 1 000\"],\"t\":0,\"f\":0}]}" },
	{ "policy-domain not a name", HEAD "\"policies\":[{"
	    "\"policy-type\":9,\"policy-domain\":\"-\\u0001\",\"t\":0,"
	    "\"f\":0}]}" },
	{ "NUL escape", HEAD "\"policies\":[{" STS ","
	    FD(",\"f\":\"a\\u0000b\"") "}]}" },
};

static void
test_malformed(void **state)
{
	struct tlsrpt_dgram_info info;
	struct sink k;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(bcases) / sizeof(bcases[0]); i++) {
		memset(&k, 0, sizeof(k));
		why[0] = '\0';
		if (tlsrpt_dgram_parse(bcases[i].in, strlen(bcases[i].in),
		    collect, &k, &info, why, sizeof(why)) != DANESTS_PERM)
			fail_msg("%s: accepted", bcases[i].name);
		assert_int_equal(k.n, 0);
		assert_int_equal(info.sessions, 0);
		if (why[0] == '\0')
			fail_msg("%s: no reason", bcases[i].name);
	}
}

/* the second policy is malformed: the first is not recorded either */
static void
test_all_or_nothing(void **state)
{
	static const char in[] = HEAD "\"policies\":[{\"policy-type\":9,"
	    "\"t\":0,\"f\":0},{\"policy-type\":9,\"t\":0,\"f\":3}]}";
	struct sink k;
	char why[256];

	(void)state;
	memset(&k, 0, sizeof(k));
	assert_int_equal(tlsrpt_dgram_parse(in, strlen(in), collect, &k, NULL,
	    why, sizeof(why)), DANESTS_PERM);
	assert_int_equal(k.n, 0);
}

/* sizes, NUL bytes, caps on joined strings and free text */
static void
test_bounds(void **state)
{
	static char big[TLSRPT_DGRAM_MAX + 2];
	char in[12000], why[256];
	struct sink k;
	size_t off, i;

	(void)state;
	memset(&k, 0, sizeof(k));
	assert_int_equal(tlsrpt_dgram_parse(big, 0, collect, &k, NULL, why,
	    sizeof(why)), DANESTS_PERM);
	memset(big, ' ', sizeof(big));
	assert_int_equal(tlsrpt_dgram_parse(big, TLSRPT_DGRAM_MAX + 1, collect,
	    &k, NULL, why, sizeof(why)), DANESTS_PERM);
	assert_non_null(strstr(why, "bytes"));
	/* a NUL byte inside */
	snprintf(in, sizeof(in), HEAD "\"policies\":[{\"policy-type\":9,"
	    "\"t\":0,\"f\":0}]}");
	off = strlen(in);
	assert_int_equal(tlsrpt_dgram_parse(in, off, collect, &k, NULL, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(k.n, 1);
	in[5] = '\0';
	assert_int_equal(tlsrpt_dgram_parse(in, off, collect, &k, NULL, why,
	    sizeof(why)), DANESTS_PERM);
	/* policy strings over DANESTS_RPT_STRING_MAX in all: refused */
	off = (size_t)snprintf(in, sizeof(in), HEAD "\"policies\":[{"
	    "\"policy-type\":2,\"policy-string\":[");
	for (i = 0; i < 50; i++)
		off += (size_t)snprintf(in + off, sizeof(in) - off, "%s\"%0100d\"",
		    i ? "," : "", 0);
	snprintf(in + off, sizeof(in) - off, "],\"t\":0,\"f\":0}]}");
	memset(&k, 0, sizeof(k));
	assert_int_equal(tlsrpt_dgram_parse(in, strlen(in), collect, &k, NULL,
	    why, sizeof(why)), DANESTS_PERM);
	assert_int_equal(k.n, 0);
	/* a long failure reason: cut, one '?' per character */
	off = (size_t)snprintf(in, sizeof(in), HEAD "\"policies\":[{" STS ","
	    "\"failure-details\":[{\"c\":202,\"f\":\"");
	for (i = 0; i < 300; i++)
		off += (size_t)snprintf(in + off, sizeof(in) - off,
		    "\xc3\xa9");
	snprintf(in + off, sizeof(in) - off, "\"}],\"t\":1,\"f\":1}]}");
	memset(&k, 0, sizeof(k));
	assert_int_equal(tlsrpt_dgram_parse(in, strlen(in), collect, &k, NULL,
	    why, sizeof(why)), DANESTS_OK);
	assert_int_equal(strlen(k.g[0].info), DANESTS_RPT_FIELD_MAX);
	assert_int_equal(strspn(k.g[0].info, "?"), DANESTS_RPT_FIELD_MAX);
	/* an EHLO response naming no host: no helo, still recorded */
	snprintf(in, sizeof(in), HEAD "\"policies\":[{" STS ","
	    FD(",\"h\":\"250 \"") "}]}");
	memset(&k, 0, sizeof(k));
	assert_int_equal(tlsrpt_dgram_parse(in, strlen(in), collect, &k, NULL,
	    why, sizeof(why)), DANESTS_OK);
	assert_string_equal(k.g[0].helo, "(null)");
}

/* the callback's failure stops the walk and comes back */
static void
test_callback_fails(void **state)
{
	struct tlsrpt_dgram_info info;
	struct sink k;
	char why[256];
	size_t len;
	const char *buf;

	(void)state;
	memset(&k, 0, sizeof(k));
	k.answer = DANESTS_TEMP;
	buf = load("two-policies", &len);
	assert_int_equal(tlsrpt_dgram_parse(buf, len, collect, &k, &info, why,
	    sizeof(why)), DANESTS_TEMP);
	assert_int_equal(k.n, 1);
	assert_int_equal(info.sessions, 0);
	assert_string_equal(why, "cache full");
}

/* libtlsrpt >= 0.5.0 adds "dpv": "1" */
static void
test_dpv(void **state)
{
	static const char in[] = "{\"dpv\": \"1\",\"d\": \"a.test\",\"pr\": "
	    "\"v=TLSRPTv1; rua=mailto:r@a.test\",\"policies\":[{"
	    "\"policy-type\":9,\"t\":0,\"f\":0}]}";
	struct sink k;
	char why[256];

	(void)state;
	memset(&k, 0, sizeof(k));
	assert_int_equal(tlsrpt_dgram_parse(in, strlen(in), collect, &k, NULL,
	    why, sizeof(why)), DANESTS_OK);
	assert_int_equal(k.n, 1);
	assert_string_equal(k.g[0].domain, "a.test");
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_recorded),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_all_or_nothing),
		cmocka_unit_test(test_bounds),
		cmocka_unit_test(test_callback_fails),
		cmocka_unit_test(test_dpv),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
