/*
 * test_sts_policy.c - MTA-STS policy bodies (RFC 8461 3.2) and MX pattern
 * matching (RFC 8461 4.1).  Every table row is one cmocka test; the rows
 * cover each rule and each choice documented at the top of sts_policy.c.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "table.h"

#include "danests-internal.h"

#define V "version: STSv1\n"
#define ME "mode: enforce\n"
#define MT "mode: testing\n"
#define MN "mode: none\n"
#define A "max_age: 86400\n"
#define MX "mx: mail.example.com\n"
#define ENF V ME MX A		/* a valid enforce policy */

#define L63 "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghijk"
#define L64 L63 "l"
/* 3 labels of 63 + one of 61 + 3 dots = 253 octets, the longest name */
#define N253 L63 "." L63 "." L63 "." \
	"abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyzabcdefghi"
#define N254 N253 "x"
#define K32 "abcdefghijklmnopqrstuvwxyz_-.123"
#define K33 K32 "4"

/* len 0 in a row means strlen(body); mx lists are NULL-terminated. */
struct parse_case {
	const char *name;
	const char *body;
	size_t len;
	danests_status want;
	danests_sts_mode mode;
	uint32_t max_age;
	const char *mx[5];
	const char *why;	/* expected substring of why, or NULL */
};

static const struct parse_case parse_cases[] = {
	/* Well-formed policies. */
	{ "rfc-example-lf", ENF, 0, DANESTS_OK, DANESTS_STS_ENFORCE, 86400,
	    { "mail.example.com" }, NULL },
	{ "crlf", "version: STSv1\r\nmode: enforce\r\nmx: mail.example.com\r\n"
	    "max_age: 86400\r\n", 0, DANESTS_OK, DANESTS_STS_ENFORCE, 86400,
	    { "mail.example.com" }, NULL },
	{ "mixed-lf-crlf", "version: STSv1\r\nmode: testing\nmx: a.example\r\n"
	    "max_age: 1\n", 0, DANESTS_OK, DANESTS_STS_TESTING, 1,
	    { "a.example" }, NULL },
	{ "no-final-newline", V ME MX "max_age: 86400", 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "mail.example.com" }, NULL },
	{ "no-final-crlf", V ME MX "max_age: 86400\r", 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "mail.example.com" }, NULL },
	{ "version-not-first", ME MX A V, 0, DANESTS_OK, DANESTS_STS_ENFORCE,
	    86400, { "mail.example.com" }, NULL },
	{ "version-last-no-newline", ME MX A "version: STSv1", 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "mail.example.com" }, NULL },
	{ "mode-testing", V MT MX A, 0, DANESTS_OK, DANESTS_STS_TESTING, 86400,
	    { "mail.example.com" }, NULL },
	{ "mode-none-no-mx", V MN A, 0, DANESTS_OK, DANESTS_STS_NONE, 86400,
	    { NULL }, NULL },
	{ "mode-none-with-mx", V MN MX A, 0, DANESTS_OK, DANESTS_STS_NONE,
	    86400, { "mail.example.com" }, NULL },
	{ "several-mx-in-order", V ME "mx: b.example\nmx: *.example.net\n"
	    "mx: a.example\n" A, 0, DANESTS_OK, DANESTS_STS_ENFORCE, 86400,
	    { "b.example", "*.example.net", "a.example" }, NULL },
	{ "mx-lowercased-trailing-dot", V ME "mx: MAIL.Example.COM.\n" A, 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "mx-wildcard-uppercase", V ME "mx: *.EXAMPLE.net\n" A, 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "*.example.net" }, NULL },
	{ "mx-duplicate-kept-once", V ME MX MX "mx: Mail.Example.Com.\n" A, 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "mx-idn-a-label", V ME "mx: xn--bcher-kva.example\n" A, 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400,
	    { "xn--bcher-kva.example" }, NULL },
	{ "mx-single-label", V ME "mx: localhost\n" A, 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "localhost" }, NULL },
	{ "mx-digits-not-last", V ME "mx: 25.mx.example\n" A, 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "25.mx.example" }, NULL },
	{ "mx-label-63", V ME "mx: " L63 ".example\n" A, 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { L63 ".example" }, NULL },
	{ "mx-name-253", V ME "mx: " N253 "\n" A, 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { N253 }, NULL },
	{ "mx-name-253-trailing-dot", V ME "mx: " N253 ".\n" A, 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { N253 }, NULL },
	{ "blank-lines", "\n" V "\n\n" ME " \t\n" MX "\r\n" A "\n\n", 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "leading-wsp", " version: STSv1\n\tmode: enforce\n  " MX A, 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "wsp-before-colon", "version : STSv1\nmode\t: enforce\n" MX A, 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "no-wsp-after-colon", "version:STSv1\nmode:enforce\n"
	    "mx:mail.example.com\nmax_age:86400\n", 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "mail.example.com" }, NULL },
	{ "tab-after-colon", "version:\tSTSv1\nmode:\t\tenforce\n" MX A, 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "trailing-wsp", "version: STSv1 \nmode: enforce\t\r\n"
	    "mx: mail.example.com  \nmax_age: 86400 \t", 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "mail.example.com" }, NULL },
	{ "unknown-key-ignored", V ME "foo: bar\n" MX A, 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "mail.example.com" }, NULL },
	{ "unknown-key-repeated", V "x-note: a\n" ME "x-note: b\n" MX A, 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "unknown-key-utf8-value", V ME "comment: caf\xc3\xa9 au lait\n" MX A,
	    0, DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "unknown-key-empty-value", V ME "x-empty:\n" MX A, 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "mail.example.com" }, NULL },
	{ "unknown-key-colon-in-value", V ME "url: https://x.example/\n" MX A,
	    0, DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "unknown-key-32-chars", V ME K32 ": x\n" MX A, 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 86400, { "mail.example.com" }, NULL },
	{ "uppercase-key-is-unknown", V ME "MX: other.example\n" MX A, 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },
	{ "max-age-zero", V ME MX "max_age: 0\n", 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 0, { "mail.example.com" }, NULL },
	{ "max-age-limit", V ME MX "max_age: 31557600\n", 0, DANESTS_OK,
	    DANESTS_STS_ENFORCE, 31557600, { "mail.example.com" }, NULL },
	{ "max-age-leading-zeros-10", V ME MX "max_age: 0000086400\n", 0,
	    DANESTS_OK, DANESTS_STS_ENFORCE, 86400, { "mail.example.com" },
	    NULL },

	/* Invalid policies. */
	{ "empty-body", "", 0, DANESTS_PERM, 0, 0, { NULL }, "without version" },
	{ "only-blank-lines", "\n\r\n \n", 0, DANESTS_PERM, 0, 0, { NULL },
	    "without version" },
	{ "missing-version", ME MX A, 0, DANESTS_PERM, 0, 0, { NULL },
	    "without version" },
	{ "missing-mode", V MX A, 0, DANESTS_PERM, 0, 0, { NULL },
	    "without mode" },
	{ "missing-max-age", V ME MX, 0, DANESTS_PERM, 0, 0, { NULL },
	    "without max_age" },
	{ "enforce-without-mx", V ME A, 0, DANESTS_PERM, 0, 0, { NULL },
	    "without mx" },
	{ "testing-without-mx", V MT A, 0, DANESTS_PERM, 0, 0, { NULL },
	    "without mx" },
	{ "uppercase-mx-key-only", V ME "MX: mail.example.com\n" A, 0,
	    DANESTS_PERM, 0, 0, { NULL }, "without mx" },
	{ "uppercase-mode-key", V "Mode: enforce\n" MX A, 0, DANESTS_PERM, 0,
	    0, { NULL }, "without mode" },
	{ "version-stsv2", "version: STSv2\n" ME MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "not STSv1" },
	{ "version-lowercase", "version: stsv1\n" ME MX A, 0, DANESTS_PERM, 0,
	    0, { NULL }, "not STSv1" },
	{ "version-empty", "version:\n" ME MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "not STSv1" },
	{ "version-twice", V V ME MX A, 0, DANESTS_PERM, 0, 0, { NULL },
	    "version twice" },
	{ "mode-capitalised", V "mode: Enforce\n" MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad policy mode" },
	{ "mode-uppercase", V "mode: ENFORCE\n" MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad policy mode" },
	{ "mode-unknown", V "mode: strict\n" MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad policy mode" },
	{ "mode-empty", V "mode:\n" MX A, 0, DANESTS_PERM, 0, 0, { NULL },
	    "bad policy mode" },
	{ "mode-two-words", V "mode: enforce testing\n" MX A, 0, DANESTS_PERM,
	    0, 0, { NULL }, "bad policy mode" },
	{ "mode-twice-same", V ME ME MX A, 0, DANESTS_PERM, 0, 0, { NULL },
	    "mode twice" },
	{ "mode-twice-different", V ME MT MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "mode twice" },
	{ "max-age-twice", V ME MX A A, 0, DANESTS_PERM, 0, 0, { NULL },
	    "max_age twice" },
	{ "max-age-over-limit", V ME MX "max_age: 31557601\n", 0, DANESTS_PERM,
	    0, 0, { NULL }, "bad policy max_age" },
	{ "max-age-u32-overflow", V ME MX "max_age: 4294967296\n", 0,
	    DANESTS_PERM, 0, 0, { NULL }, "bad policy max_age" },
	{ "max-age-11-digits", V ME MX "max_age: 00000086400\n", 0,
	    DANESTS_PERM, 0, 0, { NULL }, "bad policy max_age" },
	{ "max-age-huge", V ME MX "max_age: 99999999999999999999999\n", 0,
	    DANESTS_PERM, 0, 0, { NULL }, "bad policy max_age" },
	{ "max-age-negative", V ME MX "max_age: -1\n", 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad policy max_age" },
	{ "max-age-plus", V ME MX "max_age: +86400\n", 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad policy max_age" },
	{ "max-age-empty", V ME MX "max_age:\n", 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad policy max_age" },
	{ "max-age-inner-space", V ME MX "max_age: 86 400\n", 0, DANESTS_PERM,
	    0, 0, { NULL }, "bad policy max_age" },
	{ "max-age-hex", V ME MX "max_age: 0x10\n", 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad policy max_age" },
	{ "max-age-unit", V ME MX "max_age: 86400s\n", 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad policy max_age" },
	{ "nul-byte", V ME MX "max_age: 1\0\n", sizeof(V ME MX "max_age: 1"),
	    DANESTS_PERM, 0, 0, { NULL }, "NUL" },
	{ "nul-in-unknown-value", V ME MX A "x: a\0b\n",
	    sizeof(ENF "x: a\0b"), DANESTS_PERM, 0, 0, { NULL }, "NUL" },
	{ "lone-cr-separator", "version: STSv1\rmode: enforce\r" MX A, 0,
	    DANESTS_PERM, 0, 0, { NULL }, "control character" },
	{ "control-char", V ME MX A "x: a\001b\n", 0, DANESTS_PERM, 0, 0,
	    { NULL }, "control character" },
	{ "del-char", V ME MX A "x: a\177b\n", 0, DANESTS_PERM, 0, 0, { NULL },
	    "control character" },
	{ "line-without-colon", V ME "garbage\n" MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "without \":\"" },
	{ "key-empty", V ME ": value\n" MX A, 0, DANESTS_PERM, 0, 0, { NULL },
	    "bad key" },
	{ "key-underscore-first", V ME "_x: 1\n" MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad key" },
	{ "key-inner-space", V "mo de: enforce\n" MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad key" },
	{ "key-33-chars", V ME K33 ": x\n" MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad key" },
	{ "key-utf8", V ME "cl\xc3\xa9: x\n" MX A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad key" },
	{ "utf8-bom", "\xef\xbb\xbf" ENF, 0, DANESTS_PERM, 0, 0, { NULL },
	    "bad key" },

	/* mx patterns: host names or "*." + host name only. */
#define BADMX(n, pat) { n, V ME "mx: " pat "\n" A, 0, DANESTS_PERM, 0, 0, \
	    { NULL }, "bad mx pattern" }
	BADMX("mx-empty", ""),
	BADMX("mx-star-only", "*"),
	BADMX("mx-star-dot", "*."),
	BADMX("mx-star-dot-dot", "*.."),
	BADMX("mx-double-star", "**.example.com"),
	BADMX("mx-star-prefix", "*example.com"),
	BADMX("mx-star-inner", "a.*.example.com"),
	BADMX("mx-star-twice", "*.*.example.com"),
	BADMX("mx-star-last", "mail.*"),
	BADMX("mx-star-in-label", "mx*.example.com"),
	BADMX("mx-leading-hyphen", "-mx.example.com"),
	BADMX("mx-trailing-hyphen", "mx-.example.com"),
	BADMX("mx-hyphen-end", "mx.example-"),
	BADMX("mx-empty-label", "mx..example.com"),
	BADMX("mx-leading-dot", ".example.com"),
	BADMX("mx-two-trailing-dots", "mx.example.com.."),
	BADMX("mx-only-dot", "."),
	BADMX("mx-underscore", "mx_1.example.com"),
	BADMX("mx-ipv4", "192.0.2.1"),
	BADMX("mx-ipv4-literal", "[192.0.2.1]"),
	BADMX("mx-ipv6", "2001:db8::1"),
	BADMX("mx-numeric-tld", "mx.example.123"),
	BADMX("mx-u-label", "mx.b\xc3\xbc" "cher.example"),
	BADMX("mx-two-names", "a.example b.example"),
	BADMX("mx-comma-list", "a.example,b.example"),
	BADMX("mx-label-64", L64 ".example"),
	BADMX("mx-name-254", N254),
	{ "mx-bad-with-mode-none", V MN "mx: *\n" A, 0, DANESTS_PERM, 0, 0,
	    { NULL }, "bad mx pattern" },
};

/* run_parse - one row of parse_cases */
static void
run_parse(void **state)
{
	const struct parse_case *c = *state;
	struct danests_sts_policy p;
	const char *why = "unset";
	size_t len = c->len ? c->len : strlen(c->body), i, n;
	danests_status st;

	memset(&p, 0xa5, sizeof(p));
	st = sts_policy_parse(c->body, len, &p, &why);
	assert_int_equal(st, c->want);
	if (st != DANESTS_OK) {
		assert_non_null(why);
		if (c->why != NULL)
			assert_non_null(strstr(why, c->why));
		/* Nothing is left allocated on failure. */
		assert_int_equal(p.nmx, 0);
		assert_null(p.mx);
		return;
	}
	assert_null(why);
	assert_int_equal(p.mode, c->mode);
	assert_int_equal(p.max_age, c->max_age);
	for (n = 0; n < 5 && c->mx[n] != NULL; n++)
		;
	assert_int_equal(p.nmx, n);
	for (i = 0; i < n; i++)
		assert_string_equal(p.mx[i], c->mx[i]);
	sts_policy_clear(&p);
	assert_int_equal(p.nmx, 0);
	assert_null(p.mx);
}

/* body_of - a valid enforce policy padded with comment lines to len */
static char *
body_of(size_t len)
{
	char *b;
	size_t n = strlen(ENF);

	b = malloc(len);
	assert_non_null(b);
	assert_true(len > n + 4);
	memcpy(b, ENF, n);
	memcpy(b + n, "x: ", 3);
	memset(b + n + 3, 'y', len - n - 4);
	b[len - 1] = '\n';
	return b;
}

/* test_body_cap - STS_BODY_MAX octets pass, one more is rejected */
static void
test_body_cap(void **state)
{
	struct danests_sts_policy p;
	const char *why;
	char *b;

	(void)state;
	b = body_of(STS_BODY_MAX);
	assert_int_equal(sts_policy_parse(b, STS_BODY_MAX, &p, &why),
	    DANESTS_OK);
	assert_int_equal(p.nmx, 1);
	sts_policy_clear(&p);
	free(b);

	b = body_of(STS_BODY_MAX + 1);
	assert_int_equal(sts_policy_parse(b, STS_BODY_MAX + 1, &p, &why),
	    DANESTS_PERM);
	assert_non_null(strstr(why, "too large"));
	assert_int_equal(p.nmx, 0);
	free(b);

	/* No body at all, and a NULL why. */
	assert_int_equal(sts_policy_parse(NULL, 0, &p, NULL), DANESTS_PERM);
}

/* test_mx_cap - a policy may list STS_MX_MAX (1024) distinct patterns */
static void
test_mx_cap(void **state)
{
	struct danests_sts_policy p;
	const char *why;
	char *b;
	size_t i, o, cap = 64 * 1024;

	(void)state;
	b = malloc(cap);
	assert_non_null(b);
	o = (size_t)snprintf(b, cap, V ME A);
	for (i = 0; i < 1024; i++)
		o += (size_t)snprintf(b + o, cap - o, "mx: m%zu.example\n", i);
	assert_true(o < cap);
	assert_int_equal(sts_policy_parse(b, o, &p, &why), DANESTS_OK);
	assert_int_equal(p.nmx, 1024);
	assert_string_equal(p.mx[1023], "m1023.example");
	assert_true(sts_policy_match(&p, "m517.example"));
	sts_policy_clear(&p);
	/* Repeating one adds nothing... */
	o += (size_t)snprintf(b + o, cap - o, "mx: m7.example\n");
	assert_int_equal(sts_policy_parse(b, o, &p, &why), DANESTS_OK);
	assert_int_equal(p.nmx, 1024);
	sts_policy_clear(&p);
	/* ... a new one is one too many. */
	o += (size_t)snprintf(b + o, cap - o, "mx: m1024.example\n");
	assert_int_equal(sts_policy_parse(b, o, &p, &why), DANESTS_PERM);
	assert_non_null(strstr(why, "too many mx"));
	free(b);
}

/* RFC 8461 4.1 pattern matching. */
struct match_case {
	const char *name;
	const char *pattern;
	const char *host;
	bool want;
};

static const struct match_case match_cases[] = {
	{ "exact", "mail.example.com", "mail.example.com", true },
	{ "exact-host-uppercase", "mail.example.com", "MAIL.Example.COM",
	    true },
	{ "exact-pattern-uppercase", "MAIL.EXAMPLE.COM", "mail.example.com",
	    true },
	{ "pattern-trailing-dot", "mail.example.com.", "mail.example.com",
	    true },
	{ "host-trailing-dot", "mail.example.com", "mail.example.com.", true },
	{ "both-trailing-dots", "mail.example.com.", "mail.example.com.",
	    true },
	{ "host-two-trailing-dots", "mail.example.com", "mail.example.com..",
	    false },
	{ "exact-other-name", "mail.example.com", "mx.example.com", false },
	{ "exact-host-subdomain", "mail.example.com", "a.mail.example.com",
	    false },
	{ "exact-host-parent", "mail.example.com", "example.com", false },
	{ "exact-host-suffix-only", "ail.example.com", "mail.example.com",
	    false },
	{ "wild-one-label", "*.example.com", "mx1.example.com", true },
	{ "wild-one-label-case-dots", "*.Example.COM.", "MX1.EXAMPLE.com.",
	    true },
	{ "wild-zero-labels", "*.example.com", "example.com", false },
	{ "wild-two-labels", "*.example.com", "a.b.example.com", false },
	{ "wild-other-domain", "*.example.com", "mx1.example.org", false },
	{ "wild-label-boundary", "*.example.com", "mx1.xexample.com", false },
	{ "wild-glued-suffix", "*.example.com", "mx1example.com", false },
	{ "wild-empty-label", "*.example.com", ".example.com", false },
	{ "wild-host-is-wildcard", "*.example.com", "*.example.com", false },
	{ "wild-single-label-suffix", "*.com", "example.com", true },
	{ "wild-host-single-label", "*.com", "com", false },
	{ "host-is-wildcard", "mail.example.com", "*.example.com", false },
	{ "idn-a-label", "xn--bcher-kva.example", "XN--BCHER-KVA.example",
	    true },
	{ "idn-wild-a-label", "*.xn--bcher-kva.example",
	    "mx.xn--bcher-kva.example", true },
	{ "idn-u-label-host", "xn--bcher-kva.example",
	    "b\xc3\xbc" "cher.example", false },
	{ "idn-u-label-under-wild", "*.example", "b\xc3\xbc" "cher.example",
	    false },
	{ "idn-u-label-both", "b\xc3\xbc" "cher.example",
	    "b\xc3\xbc" "cher.example", false },
	{ "ipv4-host-exact", "192.0.2.1", "192.0.2.1", false },
	{ "ipv4-host-wild", "*.0.2.1", "192.0.2.1", false },
	{ "ipv4-literal-host", "*.example.com", "[192.0.2.1]", false },
	{ "ipv4-literal-exact", "[192.0.2.1]", "[192.0.2.1]", false },
	{ "ipv6-host", "2001:db8::1", "2001:db8::1", false },
	{ "ipv6-literal", "[IPv6:2001:db8::1]", "[IPv6:2001:db8::1]", false },
	{ "bad-pattern-star", "*", "mail.example.com", false },
	{ "bad-pattern-inner-star", "a.*.example.com", "a.b.example.com",
	    false },
	{ "bad-pattern-star-label", "mx*.example.com", "mx1.example.com",
	    false },
	{ "empty-pattern", "", "mail.example.com", false },
	{ "empty-host", "mail.example.com", "", false },
	{ "root-host", "*.example.com", ".", false },
	{ "underscore-host", "*.example.com", "mx_1.example.com", false },
	{ "host-name-253", N253, N253, true },
	{ "host-name-254", N254, N254, false },
};

/* run_match - one row of match_cases */
static void
run_match(void **state)
{
	const struct match_case *c = *state;

	assert_int_equal(sts_policy_mx_match(c->pattern, c->host), c->want);
}

/* Hosts against one policy with an exact and a wildcard pattern. */
struct policy_match_case {
	const char *name;
	const char *host;
	bool want;
};

static const struct policy_match_case policy_match_cases[] = {
	{ "first-pattern", "mail.example.com", true },
	{ "second-pattern", "mx7.backup.example.net", true },
	{ "second-pattern-case", "MX7.Backup.Example.NET.", true },
	{ "no-pattern", "mx.example.org", false },
	{ "wild-too-deep", "a.mx7.backup.example.net", false },
	{ "wild-parent", "backup.example.net", false },
	{ "ip-literal", "[192.0.2.25]", false },
};

/* run_policy_match - one row of policy_match_cases */
static void
run_policy_match(void **state)
{
	const struct policy_match_case *c = *state;
	static const char body[] = V ME MX "mx: *.backup.example.net\n" A;
	struct danests_sts_policy p;
	const char *why;

	assert_int_equal(sts_policy_parse(body, sizeof(body) - 1, &p, &why),
	    DANESTS_OK);
	assert_int_equal(sts_policy_match(&p, c->host), c->want);
	sts_policy_clear(&p);
}

/* test_match_edges - NULL arguments and a policy without patterns */
static void
test_match_edges(void **state)
{
	struct danests_sts_policy p;

	(void)state;
	memset(&p, 0, sizeof(p));
	assert_false(sts_policy_match(&p, "mail.example.com"));
	assert_false(sts_policy_match(NULL, "mail.example.com"));
	assert_false(sts_policy_mx_match(NULL, "mail.example.com"));
	assert_false(sts_policy_mx_match("mail.example.com", NULL));
	sts_policy_clear(&p);		/* a zeroed policy clears fine */
	sts_policy_clear(NULL);
}

/* test_copy - deep copy, independent of the source */
static void
test_copy(void **state)
{
	static const char body[] = V MT "mx: a.example\nmx: *.b.example\n"
	    "max_age: 604800\n";
	struct danests_sts_policy src, dst;
	const char *why;
	size_t i;

	(void)state;
	assert_int_equal(sts_policy_parse(body, sizeof(body) - 1, &src, &why),
	    DANESTS_OK);
	memset(&dst, 0xa5, sizeof(dst));
	assert_int_equal(sts_policy_copy(&src, &dst), DANESTS_OK);
	assert_int_equal(dst.mode, DANESTS_STS_TESTING);
	assert_int_equal(dst.max_age, 604800);
	assert_int_equal(dst.nmx, 2);
	for (i = 0; i < 2; i++) {
		assert_string_equal(dst.mx[i], src.mx[i]);
		assert_ptr_not_equal(dst.mx[i], src.mx[i]);
	}
	assert_ptr_not_equal(dst.mx, src.mx);
	sts_policy_clear(&src);
	assert_true(sts_policy_match(&dst, "x.b.example"));
	sts_policy_clear(&dst);

	/* A policy without patterns (mode none). */
	memset(&src, 0, sizeof(src));
	src.mode = DANESTS_STS_NONE;
	src.max_age = 1;
	assert_int_equal(sts_policy_copy(&src, &dst), DANESTS_OK);
	assert_int_equal(dst.mode, DANESTS_STS_NONE);
	assert_int_equal(dst.max_age, 1);
	assert_int_equal(dst.nmx, 0);
	assert_null(dst.mx);
	sts_policy_clear(&dst);
}



int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_mx_cap),
		cmocka_unit_test(test_match_edges),
		cmocka_unit_test(test_copy),
	};
	int rc = 0;

	rc |= run_table("sts_policy_parse", parse_cases, NROWS(parse_cases),
	    sizeof(parse_cases[0]), run_parse);
	rc |= run_table("sts_policy_mx_match", match_cases,
	    NROWS(match_cases), sizeof(match_cases[0]), run_match);
	rc |= run_table("sts_policy_match", policy_match_cases,
	    NROWS(policy_match_cases), sizeof(policy_match_cases[0]),
	    run_policy_match);
	rc |= cmocka_run_group_tests_name("sts_policy_misc", misc, NULL, NULL);
	return rc != 0;
}
