/*
 * test_smtp_reply.c - SMTP reply parsing (RFC 5321 4.2), enhanced status
 * codes (RFC 3463) and EHLO keywords: tables of byte strings, each row one
 * cmocka test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "danests-internal.h"

struct reply_case {
	const char *name;
	const char *in;
	long used;		/* -2: strlen(in); -1 error; 0 need more */
	int code;
	const char *enh;
	size_t nlines;
	const char *text;	/* NULL: not checked */
};

static const struct reply_case reply_cases[] = {
	{ "single", "250 ok\r\n", -2, 250, "", 1, "ok" },
	{ "single-enh", "250 2.1.0 Sender ok\r\n", -2, 250, "2.1.0", 1,
	    "2.1.0 Sender ok" },
	{ "code-only", "250\r\n", -2, 250, "", 1, "" },
	{ "bare-lf", "220 hi\n", -2, 220, "", 1, "hi" },
	{ "multiline", "250-mx.example\r\n250-PIPELINING\r\n250 SIZE 100\r\n",
	    -2, 250, "", 3, "mx.example\nPIPELINING\nSIZE 100" },
	{ "two-replies-first-only", "250 a\r\n354 go\r\n", 7, 250, "", 1,
	    "a" },
	{ "partial-line", "250 o", 0, 0, "", 0, NULL },
	{ "partial-multiline", "250-a\r\n250-b\r\n", 0, 0, "", 0, NULL },
	{ "empty", "", 0, 0, "", 0, NULL },
	{ "temp-enh", "451 4.7.1 greylisted\r\n", -2, 451, "4.7.1", 1, NULL },
	{ "perm-enh", "550 5.1.1 no such user\r\n", -2, 550, "5.1.1", 1,
	    NULL },
	{ "enh-class-mismatch", "550 2.1.1 odd\r\n", -2, 550, "", 1, NULL },
	{ "enh-too-long", "250 2.1234.0 x\r\n", -2, 250, "", 1, NULL },
	{ "enh-three-digits", "250 2.123.456 x\r\n", -2, 250, "2.123.456", 1,
	    NULL },
	{ "nonprintable-masked", "250 a\x01" "b\r\n", -2, 250, "", 1,
	    "a?b" },
	{ "differing-codes", "250-a\r\n251 b\r\n", -1, 0, "", 0, NULL },
	{ "bad-first-digit", "650 x\r\n", -1, 0, "", 0, NULL },
	{ "bad-second-digit", "260 x\r\n", -1, 0, "", 0, NULL },
	{ "letters", "abc def\r\n", -1, 0, "", 0, NULL },
	{ "short", "25\r\n", -1, 0, "", 0, NULL },
	{ "bad-separator", "250x\r\n", -1, 0, "", 0, NULL },
	{ "http-response", "HTTP/1.1 400 Bad\r\n", -1, 0, "", 0, NULL },
};

/* run_reply - one row of reply_cases */
static void
run_reply(void **state)
{
	const struct reply_case *c = *state;
	struct smtp_reply *r = malloc(sizeof(*r));
	const char *why;
	long used, want;

	assert_non_null(r);
	want = c->used == -2 ? (long)strlen(c->in) : c->used;
	used = smtp_reply_parse(c->in, strlen(c->in), r, &why);
	assert_int_equal(used, want);
	if (used < 0)
		assert_non_null(why);
	if (used > 0) {
		assert_int_equal(r->code, c->code);
		assert_string_equal(r->enh, c->enh);
		assert_int_equal(r->nlines, c->nlines);
		if (c->text != NULL)
			assert_string_equal(r->text, c->text);
	}
	free(r);
}

/* test_reply_long_line - an endless line is refused, not buffered */
static void
test_reply_long_line(void **state)
{
	struct smtp_reply *r = malloc(sizeof(*r));
	char *buf = malloc(SMTP_REPLY_LINE_MAX + 10);
	const char *why;

	(void)state;
	assert_non_null(r);
	assert_non_null(buf);
	memcpy(buf, "250 ", 4);
	memset(buf + 4, 'a', SMTP_REPLY_LINE_MAX + 6);
	assert_int_equal(smtp_reply_parse(buf, SMTP_REPLY_LINE_MAX + 10, r,
	    &why), -1);
	/* the same with a line end: still too long */
	buf[SMTP_REPLY_LINE_MAX + 9] = '\n';
	assert_int_equal(smtp_reply_parse(buf, SMTP_REPLY_LINE_MAX + 10, r,
	    &why), -1);
	free(buf);
	free(r);
}

/* test_reply_too_many_lines - more than SMTP_REPLY_LINES_MAX lines */
static void
test_reply_too_many_lines(void **state)
{
	struct smtp_reply *r = malloc(sizeof(*r));
	char *buf = malloc((SMTP_REPLY_LINES_MAX + 2) * 8);
	const char *why;
	size_t i, n = 0;

	(void)state;
	for (i = 0; i < SMTP_REPLY_LINES_MAX + 1; i++)
		n += (size_t)sprintf(buf + n, "250-x\r\n");
	n += (size_t)sprintf(buf + n, "250 x\r\n");
	assert_int_equal(smtp_reply_parse(buf, n, r, &why), -1);
	free(buf);
	free(r);
}

struct ehlo_case {
	const char *name;
	const char *in;
	unsigned ext;
	unsigned long long size;
};

static const struct ehlo_case ehlo_cases[] = {
	{ "all", "250-mx.example hello\r\n250-STARTTLS\r\n250-PIPELINING\r\n"
	    "250-SIZE 10240000\r\n250-8BITMIME\r\n250-SMTPUTF8\r\n"
	    "250 ENHANCEDSTATUSCODES\r\n", SMTP_EXT_STARTTLS |
	    SMTP_EXT_PIPELINING | SMTP_EXT_SIZE | SMTP_EXT_8BITMIME |
	    SMTP_EXT_SMTPUTF8 | SMTP_EXT_ENHANCED, 10240000 },
	{ "none", "250 mx.example\r\n", 0, 0 },
	{ "greeting-not-a-keyword", "250-STARTTLS\r\n250 SIZE\r\n",
	    SMTP_EXT_SIZE, 0 },
	{ "lower-case", "250-mx\r\n250 starttls\r\n", SMTP_EXT_STARTTLS, 0 },
	{ "prefix-not-keyword", "250-mx\r\n250 STARTTLSX\r\n", 0, 0 },
	{ "size-no-limit", "250-mx\r\n250 SIZE\r\n", SMTP_EXT_SIZE, 0 },
	{ "not-250", "550-mx\r\n550 STARTTLS\r\n", 0, 0 },
};

/* run_ehlo - one row of ehlo_cases */
static void
run_ehlo(void **state)
{
	const struct ehlo_case *c = *state;
	struct smtp_reply *r = malloc(sizeof(*r));
	unsigned long long size = 99;
	const char *why;

	assert_non_null(r);
	assert_true(smtp_reply_parse(c->in, strlen(c->in), r, &why) > 0);
	assert_int_equal(smtp_ehlo_parse(r, &size), c->ext);
	assert_int_equal(size, c->size);
	free(r);
}

int
main(void)
{
	size_t nr = sizeof(reply_cases) / sizeof(reply_cases[0]);
	size_t ne = sizeof(ehlo_cases) / sizeof(ehlo_cases[0]);
	struct CMUnitTest *t = calloc(nr + ne + 2, sizeof(*t));
	size_t i, n = 0;

	for (i = 0; i < nr; i++)
		t[n++] = (struct CMUnitTest){ reply_cases[i].name, run_reply,
		    NULL, NULL, (void *)&reply_cases[i] };
	for (i = 0; i < ne; i++)
		t[n++] = (struct CMUnitTest){ ehlo_cases[i].name, run_ehlo,
		    NULL, NULL, (void *)&ehlo_cases[i] };
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_reply_long_line);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_reply_too_many_lines);
	return _cmocka_run_group_tests("smtp_reply", t, n, NULL, NULL);
}
