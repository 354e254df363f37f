/*
 * test_sts_txt.c - the _mta-sts TXT record (RFC 8461 3.1): tables of
 * records for sts_txt_parse, RRsets for sts_txt_select and raw RDATA for
 * txt_rdata_join.  Every row is one cmocka test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "table.h"

#include "danests-internal.h"

#define ID32 "abcdefghijklmnopqrstuvwxyz012345"
#define ID33 ID32 "6"
#define NAME32 "abcdefghijklmnopqrstuvwxyz01234_"
#define NAME33 NAME32 "x"

/* len 0 in a row means strlen(txt) */
struct parse_case {
	const char *name;
	const char *txt;
	size_t len;
	danests_status want;
	const char *id;		/* expected id on DANESTS_OK */
	const char *why;	/* expected substring of why, or NULL */
};

static const struct parse_case parse_cases[] = {
	/* Valid records. */
	{ "rfc-example", "v=STSv1; id=20160831085700Z;", 0, DANESTS_OK,
	    "20160831085700Z", NULL },
	{ "no-spaces", "v=STSv1;id=abc", 0, DANESTS_OK, "abc", NULL },
	{ "no-trailing-semicolon", "v=STSv1; id=abc", 0, DANESTS_OK, "abc",
	    NULL },
	{ "trailing-semicolon", "v=STSv1;id=abc;", 0, DANESTS_OK, "abc", NULL },
	{ "wsp-around-delims", "v=STSv1 ; id=abc ; ", 0, DANESTS_OK, "abc",
	    NULL },
	{ "tabs-around-delims", "v=STSv1\t;\tid=abc\t;\t", 0, DANESTS_OK,
	    "abc", NULL },
	{ "trailing-wsp-no-semicolon", "v=STSv1; id=abc  ", 0, DANESTS_OK,
	    "abc", NULL },
	{ "id-32-chars", "v=STSv1; id=" ID32, 0, DANESTS_OK, ID32, NULL },
	{ "id-1-char", "v=STSv1; id=7", 0, DANESTS_OK, "7", NULL },
	{ "id-mixed-case-kept", "v=STSv1; id=AbC9", 0, DANESTS_OK, "AbC9",
	    NULL },
	{ "unknown-field-ignored", "v=STSv1; id=abc; ext=val", 0, DANESTS_OK,
	    "abc", NULL },
	{ "unknown-field-before-id", "v=STSv1; e_1.x-y=v!a:l; id=abc", 0,
	    DANESTS_OK, "abc", NULL },
	{ "unknown-name-32-chars", "v=STSv1; " NAME32 "=1; id=abc", 0,
	    DANESTS_OK, "abc", NULL },
	{ "uppercase-ID-is-unknown-field", "v=STSv1; ID=abc; id=def", 0,
	    DANESTS_OK, "def", NULL },

	/* Begins with v=STSv1 but malformed: PERM. */
	{ "version-only", "v=STSv1", 0, DANESTS_PERM, NULL, "without id" },
	{ "version-semicolon-only", "v=STSv1;", 0, DANESTS_PERM, NULL,
	    "without id" },
	{ "uppercase-ID-only", "v=STSv1; ID=abc", 0, DANESTS_PERM, NULL,
	    "without id" },
	{ "empty-id", "v=STSv1; id=", 0, DANESTS_PERM, NULL, "empty id" },
	{ "empty-id-semicolon", "v=STSv1; id=;", 0, DANESTS_PERM, NULL,
	    "empty id" },
	{ "id-33-chars", "v=STSv1; id=" ID33, 0, DANESTS_PERM, NULL,
	    "longer than 32" },
	{ "id-hyphen", "v=STSv1; id=ab-c", 0, DANESTS_PERM, NULL,
	    "not alphanumeric" },
	{ "id-dot", "v=STSv1; id=1.2", 0, DANESTS_PERM, NULL,
	    "not alphanumeric" },
	{ "id-utf8", "v=STSv1; id=ab\xc3\xa9", 0, DANESTS_PERM, NULL,
	    "not alphanumeric" },
	{ "id-twice", "v=STSv1; id=abc; id=def", 0, DANESTS_PERM, NULL,
	    "more than one id" },
	{ "id-twice-same", "v=STSv1; id=abc; id=abc", 0, DANESTS_PERM, NULL,
	    "more than one id" },
	{ "id-with-space", "v=STSv1; id=abc def", 0, DANESTS_PERM, NULL,
	    "expected \";\"" },
	{ "no-semicolon-after-version", "v=STSv1 id=abc", 0, DANESTS_PERM,
	    NULL, "expected \";\"" },
	{ "empty-field", "v=STSv1;; id=abc", 0, DANESTS_PERM, NULL,
	    "empty field" },
	{ "empty-field-wsp", "v=STSv1; ; id=abc", 0, DANESTS_PERM, NULL,
	    "empty field" },
	{ "double-trailing-semicolon", "v=STSv1; id=abc;;", 0, DANESTS_PERM,
	    NULL, "empty field" },
	{ "field-without-equals", "v=STSv1; ext; id=abc", 0, DANESTS_PERM,
	    NULL, "without \"=\"" },
	{ "field-space-before-equals", "v=STSv1; id =abc", 0, DANESTS_PERM,
	    NULL, "without \"=\"" },
	{ "empty-ext-value", "v=STSv1; ext=; id=abc", 0, DANESTS_PERM, NULL,
	    "empty field value" },
	{ "ext-value-with-equals", "v=STSv1; e=a=b; id=abc", 0, DANESTS_PERM,
	    NULL, "bad character" },
	{ "ext-value-utf8", "v=STSv1; id=abc; e=caf\xc3\xa9", 0, DANESTS_PERM,
	    NULL, "bad character" },
	{ "ext-name-underscore-first", "v=STSv1; _x=1; id=abc", 0,
	    DANESTS_PERM, NULL, "bad field name" },
	{ "ext-name-33-chars", "v=STSv1; " NAME33 "=1; id=abc", 0,
	    DANESTS_PERM, NULL, "bad field name" },
	{ "ext-name-bad-char", "v=STSv1; a!b=1; id=abc", 0, DANESTS_PERM,
	    NULL, "bad field name" },
	{ "embedded-nul", "v=STSv1; id=abc\0", 16, DANESTS_PERM, NULL, NULL },
	{ "nul-inside-id", "v=STSv1; id=a\0c", 15, DANESTS_PERM, NULL,
	    NULL },
	{ "trailing-crlf", "v=STSv1; id=abc\r\n", 0, DANESTS_PERM, NULL,
	    NULL },

	/* Does not begin with v=STSv1: not ours (NOTFOUND). */
	{ "lowercase-version", "v=stsv1; id=abc", 0, DANESTS_NOTFOUND, NULL,
	    NULL },
	{ "leading-space", " v=STSv1; id=abc", 0, DANESTS_NOTFOUND, NULL,
	    NULL },
	{ "version-prefix-only", "v=STSv10; id=abc", 0, DANESTS_NOTFOUND,
	    NULL, NULL },
	{ "version-not-first", "id=abc; v=STSv1", 0, DANESTS_NOTFOUND, NULL,
	    NULL },
	{ "spf-record", "v=spf1 -all", 0, DANESTS_NOTFOUND, NULL, NULL },
	{ "empty", "", 0, DANESTS_NOTFOUND, NULL, NULL },
	{ "truncated-version", "v=STSv", 0, DANESTS_NOTFOUND, NULL, NULL },
};

/* run_parse - one row of parse_cases */
static void
run_parse(void **state)
{
	const struct parse_case *c = *state;
	char id[DANESTS_STS_ID_MAX + 1];
	const char *why = "unset";
	size_t len = c->len ? c->len : strlen(c->txt);
	danests_status st;

	memset(id, 'X', sizeof(id));
	st = sts_txt_parse(c->txt, len, id, &why);
	assert_int_equal(st, c->want);
	if (c->want == DANESTS_OK) {
		assert_string_equal(id, c->id);
		assert_null(why);
	} else {
		assert_string_equal(id, "");
		assert_non_null(why);
		if (c->why != NULL)
			assert_non_null(strstr(why, c->why));
	}
	/* A NULL why and a NULL id are allowed and change nothing. */
	assert_int_equal(sts_txt_parse(c->txt, len, NULL, NULL), c->want);
}

struct select_case {
	const char *name;
	const char *txts[4];	/* NULL-terminated */
	danests_status want;
	const char *id;
	const char *why;
};

static const struct select_case select_cases[] = {
	{ "none", { NULL }, DANESTS_NOTFOUND, NULL, "no STSv1" },
	{ "only-other-records", { "v=spf1 -all", "google-site-verification=x",
	    NULL }, DANESTS_NOTFOUND, NULL, "no STSv1" },
	{ "one", { "v=STSv1; id=a1", NULL }, DANESTS_OK, "a1", NULL },
	{ "one-among-others", { "v=spf1 -all", "v=STSv1; id=a1", "x", NULL },
	    DANESTS_OK, "a1", NULL },
	{ "lowercase-other-discarded", { "v=STSv1; id=a", "v=stsv1; id=b",
	    NULL }, DANESTS_OK, "a", NULL },
	{ "two-valid", { "v=STSv1; id=a", "v=STSv1; id=b", NULL },
	    DANESTS_PERM, NULL, "several STSv1 records" },
	{ "two-same-id", { "v=STSv1; id=a", "v=STSv1;id=a", NULL },
	    DANESTS_PERM, NULL, "several STSv1 records" },
	{ "valid-and-malformed", { "v=STSv1; id=a", "v=STSv1; bad", NULL },
	    DANESTS_PERM, NULL, "several STSv1 records" },
	{ "one-malformed", { "v=spf1 -all", "v=STSv1;;", NULL }, DANESTS_PERM,
	    NULL, "empty field" },
	{ "three", { "v=STSv1; id=a", "v=STSv1; id=b", "v=STSv1; id=c",
	    NULL }, DANESTS_PERM, NULL, "several STSv1 records" },
};

/* run_select - one row of select_cases */
static void
run_select(void **state)
{
	const struct select_case *c = *state;
	size_t lens[4], n;
	char id[DANESTS_STS_ID_MAX + 1];
	const char *why = "unset";
	danests_status st;

	for (n = 0; n < 4 && c->txts[n] != NULL; n++)
		lens[n] = strlen(c->txts[n]);
	memset(id, 'X', sizeof(id));
	st = sts_txt_select(c->txts, lens, n, id, &why);
	assert_int_equal(st, c->want);
	if (c->want == DANESTS_OK) {
		assert_string_equal(id, c->id);
	} else {
		assert_string_equal(id, "");
		assert_non_null(why);
		if (c->why != NULL)
			assert_non_null(strstr(why, c->why));
	}
}

/* Character-strings of one TXT RDATA; want NULL means rejected. */
struct join_case {
	const char *name;
	const char *rdata;
	size_t len;
	const char *want;
	size_t wantlen;
};

static const struct join_case join_cases[] = {
	{ "one-string", "\003abc", 4, "abc", 3 },
	{ "two-strings", "\003abc\003def", 8, "abcdef", 6 },
	{ "split-record", "\011v=STSv1; \004id=1", 15, "v=STSv1; id=1", 13 },
	{ "one-empty-string", "\000", 1, "", 0 },
	{ "empty-then-string", "\000\002ab", 4, "ab", 2 },
	{ "string-then-empty", "\002ab\000", 4, "ab", 2 },
	{ "no-rdata", "", 0, NULL, 0 },
	{ "length-past-end", "\004abc", 4, NULL, 0 },
	{ "second-length-past-end", "\003abc\001", 5, NULL, 0 },
	{ "length-byte-only", "\005", 1, NULL, 0 },
	{ "embedded-nul", "\003a\000c", 4, NULL, 0 },
	{ "nul-in-second-string", "\001a\002b\000", 5, NULL, 0 },
};

/* run_join - one row of join_cases */
static void
run_join(void **state)
{
	const struct join_case *c = *state;
	size_t outlen = 12345;
	char *s;

	s = txt_rdata_join((const unsigned char *)c->rdata, c->len, &outlen);
	if (c->want == NULL) {
		assert_null(s);
		assert_int_equal(outlen, 0);
		return;
	}
	assert_non_null(s);
	assert_int_equal(outlen, c->wantlen);
	assert_memory_equal(s, c->want, c->wantlen);
	assert_int_equal(s[outlen], '\0');
	free(s);
}

/* test_join_long - 255-octet strings, the largest a length byte allows */
static void
test_join_long(void **state)
{
	unsigned char rd[2 * 256];
	size_t outlen;
	char *s;

	(void)state;
	rd[0] = 255;
	memset(rd + 1, 'a', 255);
	rd[256] = 255;
	memset(rd + 257, 'b', 255);
	s = txt_rdata_join(rd, sizeof(rd), &outlen);
	assert_non_null(s);
	assert_int_equal(outlen, 510);
	assert_int_equal(strlen(s), 510);
	assert_int_equal(s[0], 'a');
	assert_int_equal(s[254], 'a');
	assert_int_equal(s[255], 'b');
	assert_int_equal(s[509], 'b');
	free(s);
	/* Cut one octet short: rejected. */
	assert_null(txt_rdata_join(rd, sizeof(rd) - 1, &outlen));
	/* RDLENGTH is 16 bits: more is not one TXT RDATA. */
	assert_null(txt_rdata_join(rd, 65536, NULL));
}



int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_join_long),
	};
	int rc = 0;

	rc |= run_table("sts_txt_parse", parse_cases, NROWS(parse_cases),
	    sizeof(parse_cases[0]), run_parse);
	rc |= run_table("sts_txt_select", select_cases, NROWS(select_cases),
	    sizeof(select_cases[0]), run_select);
	rc |= run_table("txt_rdata_join", join_cases, NROWS(join_cases),
	    sizeof(join_cases[0]), run_join);
	rc |= cmocka_run_group_tests_name("txt_rdata_join_long", misc, NULL,
	    NULL);
	return rc != 0;
}
