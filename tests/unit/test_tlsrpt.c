/*
 * test_tlsrpt.c - the _smtp._tls TXT record (RFC 8460 3): a table of
 * records for danests_tlsrpt_parse, each row one cmocka test.
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
#include "danests-report.h"

#define M1 "mailto:tlsrpt@example.com"
#define H1 "https://reports.example.com/tlsrpt"

struct tcase {
	const char *name;
	const char *txt;
	danests_status want;
	size_t nrua;
	const char *rua[3];	/* expected, in order */
	const char *why;	/* substring of why on failure, or NULL */
};

static const struct tcase cases[] = {
	/* valid */
	{ "rfc-mailto", "v=TLSRPTv1; rua=" M1, DANESTS_OK, 1, { M1 }, NULL },
	{ "rfc-https", "v=TLSRPTv1;rua=" H1, DANESTS_OK, 1, { H1 }, NULL },
	{ "two-uris", "v=TLSRPTv1; rua=" M1 "," H1, DANESTS_OK, 2,
	    { M1, H1 }, NULL },
	{ "wsp-around-comma", "v=TLSRPTv1; rua=" M1 " ,\t" H1, DANESTS_OK, 2,
	    { M1, H1 }, NULL },
	{ "trailing-delim", "v=TLSRPTv1; rua=" M1 ";", DANESTS_OK, 1, { M1 },
	    NULL },
	{ "trailing-delim-wsp", "v=TLSRPTv1 ; rua=" M1 " ; ", DANESTS_OK, 1,
	    { M1 }, NULL },
	{ "trailing-wsp", "v=TLSRPTv1; rua=" M1 "  ", DANESTS_OK, 1, { M1 },
	    NULL },
	{ "extension-ignored", "v=TLSRPTv1; ext=val; rua=" M1 "; x_1.y-z=a:b",
	    DANESTS_OK, 1, { M1 }, NULL },
	{ "other-scheme-ignored", "v=TLSRPTv1; rua=ftp://x.example/," M1,
	    DANESTS_OK, 1, { M1 }, NULL },
	{ "scheme-case", "v=TLSRPTv1; rua=MAILTO:a@example.com,HTTPS://"
	    "r.example.com/", DANESTS_OK, 2, { "MAILTO:a@example.com",
	    "HTTPS://r.example.com/" }, NULL },
	{ "https-port-query", "v=TLSRPTv1; rua=https://r.example.com:8443/"
	    "p?x=1", DANESTS_OK, 1, { "https://r.example.com:8443/p?x=1" },
	    NULL },
	{ "https-no-path", "v=TLSRPTv1; rua=https://r.example.com",
	    DANESTS_OK, 1, { "https://r.example.com" }, NULL },
	{ "duplicate-uri-once", "v=TLSRPTv1; rua=" M1 "," M1, DANESTS_OK, 1,
	    { M1 }, NULL },
	{ "bad-mailto-ignored", "v=TLSRPTv1; rua=mailto:bad,"
	    M1, DANESTS_OK, 1, { M1 }, NULL },
	{ "local-atext", "v=TLSRPTv1; rua=mailto:a.b+c_d@example.com",
	    DANESTS_OK, 1, { "mailto:a.b+c_d@example.com" }, NULL },

	/* not a TLSRPT record */
	{ "empty", "", DANESTS_NOTFOUND, 0, { NULL }, "not a TLSRPTv1" },
	{ "spf", "v=spf1 -all", DANESTS_NOTFOUND, 0, { NULL }, NULL },
	{ "version-case", "v=tlsrptv1; rua=" M1, DANESTS_NOTFOUND, 0,
	    { NULL }, NULL },
	{ "version-longer", "v=TLSRPTv10; rua=" M1, DANESTS_NOTFOUND, 0,
	    { NULL }, NULL },
	{ "leading-wsp", " v=TLSRPTv1; rua=" M1, DANESTS_NOTFOUND, 0,
	    { NULL }, NULL },
	{ "rua-first", "rua=" M1 "; v=TLSRPTv1", DANESTS_NOTFOUND, 0,
	    { NULL }, NULL },

	/* malformed */
	{ "version-only", "v=TLSRPTv1", DANESTS_PERM, 0, { NULL }, "no rua" },
	{ "version-delim-only", "v=TLSRPTv1;", DANESTS_PERM, 0, { NULL },
	    "no rua" },
	{ "no-rua", "v=TLSRPTv1; ext=1", DANESTS_PERM, 0, { NULL },
	    "no rua" },
	{ "no-delim", "v=TLSRPTv1 rua=" M1, DANESTS_PERM, 0, { NULL },
	    "expected" },
	{ "two-versions", "v=TLSRPTv1; v=TLSRPTv1; rua=" M1, DANESTS_PERM, 0,
	    { NULL }, "v given twice" },
	{ "two-ruas", "v=TLSRPTv1; rua=" M1 "; rua=" H1, DANESTS_PERM, 0,
	    { NULL }, "rua given twice" },
	{ "empty-rua", "v=TLSRPTv1; rua=", DANESTS_PERM, 0, { NULL },
	    "URI" },
	{ "empty-uri-in-list", "v=TLSRPTv1; rua=" M1 ",", DANESTS_PERM, 0,
	    { NULL }, "URI" },
	{ "double-delim", "v=TLSRPTv1;; rua=" M1, DANESTS_PERM, 0, { NULL },
	    "field" },
	{ "empty-ext-value", "v=TLSRPTv1; ext=; rua=" M1, DANESTS_PERM, 0,
	    { NULL }, "value" },
	{ "ext-no-equals", "v=TLSRPTv1; ext; rua=" M1, DANESTS_PERM, 0,
	    { NULL }, "field" },
	{ "ext-name-long", "v=TLSRPTv1; abcdefghijklmnopqrstuvwxyz0123456=1; "
	    "rua=" M1, DANESTS_PERM, 0, { NULL }, "field" },
	{ "ext-name-start", "v=TLSRPTv1; _x=1; rua=" M1, DANESTS_PERM, 0,
	    { NULL }, "field name" },
	{ "ext-value-equals", "v=TLSRPTv1; x=a=b; rua=" M1, DANESTS_PERM, 0,
	    { NULL }, NULL },
	{ "uri-bang", "v=TLSRPTv1; rua=mailto:a!b@example.com", DANESTS_PERM,
	    0, { NULL }, "!" },
	{ "uri-space", "v=TLSRPTv1; rua=mailto:a b@example.com", DANESTS_PERM,
	    0, { NULL }, NULL },
	{ "control-char", "v=TLSRPTv1; rua=" M1 "\x01", DANESTS_PERM, 0,
	    { NULL }, NULL },
	{ "nothing-usable", "v=TLSRPTv1; rua=ftp://x.example/", DANESTS_PERM,
	    0, { NULL }, "no usable" },
	{ "mailto-no-at", "v=TLSRPTv1; rua=mailto:example.com", DANESTS_PERM,
	    0, { NULL }, "no usable" },
	{ "mailto-hfields", "v=TLSRPTv1; rua=mailto:a@example.com?subject=x",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "mailto-pct", "v=TLSRPTv1; rua=mailto:a%40b@example.com",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "mailto-dots", "v=TLSRPTv1; rua=mailto:a..b@example.com",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "mailto-empty-local", "v=TLSRPTv1; rua=mailto:@example.com",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "mailto-bad-domain", "v=TLSRPTv1; rua=mailto:a@exa_mple.com",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "https-userinfo", "v=TLSRPTv1; rua=https://u@r.example.com/",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "https-ip", "v=TLSRPTv1; rua=https://[2001:db8::1]/",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "https-no-host", "v=TLSRPTv1; rua=https:///x", DANESTS_PERM, 0,
	    { NULL }, "no usable" },
	{ "https-not-hierarchical", "v=TLSRPTv1; rua=https:r.example.com",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "https-bad-port", "v=TLSRPTv1; rua=https://r.example.com:0/",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "https-big-port", "v=TLSRPTv1; rua=https://r.example.com:65536/",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
	{ "https-single-label", "v=TLSRPTv1; rua=https://localhost/",
	    DANESTS_PERM, 0, { NULL }, "no usable" },
};

static void
test_row(void **state)
{
	const struct tcase *c = *state;
	struct danests_tlsrpt_record r;
	char why[DANESTS_WHY_MAX] = "";
	size_t i;

	assert_int_equal(danests_tlsrpt_parse(c->txt, strlen(c->txt), &r, why,
	    sizeof(why)), c->want);
	assert_int_equal(r.nrua, c->nrua);
	for (i = 0; i < c->nrua; i++)
		assert_string_equal(r.rua[i], c->rua[i]);
	if (c->want != DANESTS_OK)
		assert_true(why[0] != '\0');
	if (c->why != NULL && strstr(why, c->why) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", why, c->why);
}

/* test_caps - counts and lengths */
static void
test_caps(void **state)
{
	struct danests_tlsrpt_record r;
	char txt[10000], why[DANESTS_WHY_MAX];
	size_t n;
	int i;

	(void)state;
	/* more usable URIs than kept: the first DANESTS_RPT_RUA_MAX */
	n = (size_t)snprintf(txt, sizeof(txt), "v=TLSRPTv1; rua=");
	for (i = 0; i < 12; i++)
		n += (size_t)snprintf(txt + n, sizeof(txt) - n,
		    "%smailto:r%d@example.com", i ? "," : "", i);
	assert_int_equal(danests_tlsrpt_parse(txt, n, &r, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(r.nrua, DANESTS_RPT_RUA_MAX);
	assert_string_equal(r.rua[7], "mailto:r7@example.com");
	/* too many URIs in all */
	n = (size_t)snprintf(txt, sizeof(txt), "v=TLSRPTv1; rua=");
	for (i = 0; i < 33; i++)
		n += (size_t)snprintf(txt + n, sizeof(txt) - n,
		    "%smailto:r%d@example.com", i ? "," : "", i);
	assert_int_equal(danests_tlsrpt_parse(txt, n, &r, why, sizeof(why)),
	    DANESTS_PERM);
	assert_int_equal(r.nrua, 0);
	/* a URI of 511 bytes is kept, 512 is not */
	n = (size_t)snprintf(txt, sizeof(txt), "v=TLSRPTv1; rua=https://"
	    "r.example.com/");
	memset(txt + n, 'p', 511 - 22);
	n += 511 - 22;
	assert_int_equal(danests_tlsrpt_parse(txt, n, &r, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(strlen(r.rua[0]), 511);
	txt[n++] = 'p';
	assert_int_equal(danests_tlsrpt_parse(txt, n, &r, why, sizeof(why)),
	    DANESTS_PERM);
	/* the whole record */
	n = (size_t)snprintf(txt, sizeof(txt), "v=TLSRPTv1; rua=" M1 "; x=");
	memset(txt + n, 'a', 8200 - n);
	assert_int_equal(danests_tlsrpt_parse(txt, 8192, &r, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_tlsrpt_parse(txt, 8193, &r, why,
	    sizeof(why)), DANESTS_PERM);
	/* an embedded NUL, and the length is what counts */
	memcpy(txt, "v=TLSRPTv1; rua=" M1 "\0x", sizeof("v=TLSRPTv1; rua="
	    M1 "\0x"));
	assert_int_equal(danests_tlsrpt_parse(txt, strlen(txt) + 2, &r, why,
	    sizeof(why)), DANESTS_PERM);
	assert_int_equal(danests_tlsrpt_parse(txt, strlen(txt), &r, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_tlsrpt_parse(txt, 10, &r, why, sizeof(why)),
	    DANESTS_PERM);
	assert_int_equal(danests_tlsrpt_parse(NULL, 0, &r, why, sizeof(why)),
	    DANESTS_NOTFOUND);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
	};
	int rc;

	rc = run_table("tlsrpt_parse", cases, NROWS(cases), sizeof(cases[0]),
	    test_row);
	rc |= cmocka_run_group_tests_name("tlsrpt_caps", tests, NULL, NULL);
	return rc;
}
