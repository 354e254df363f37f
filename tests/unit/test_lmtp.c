/*
 * test_lmtp.c - LMTP command lines of danests-relay (RFC 2033, RFC 5321
 * 4.1): a table of lines, each row one cmocka test.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* the parser is part of the relay, not of the core library: it is
 * linked from opensmtpd/ (lmtp_dep) */
#include "lmtp.h"

struct lmtp_case {
	const char *name;
	const char *line;
	int rc;			/* 0 or the reply code */
	enum lmtp_verb verb;
	const char *arg;	/* NULL: not checked */
	const char *domain;	/* NULL: not checked */
	unsigned long long size;
	enum lmtp_body body;
	bool smtputf8;
};

static const struct lmtp_case cases[] = {
	{ "lhlo", "LHLO client.example", 0, LMTP_LHLO, "client.example",
	    NULL, 0, 0, false },
	{ "lhlo-lower", "lhlo x", 0, LMTP_LHLO, "x", NULL, 0, 0, false },
	{ "lhlo-missing", "LHLO", 501, LMTP_LHLO, NULL, NULL, 0, 0, false },
	{ "helo-parsed", "HELO x", 0, LMTP_HELO, "x", NULL, 0, 0, false },
	{ "mail", "MAIL FROM:<a@b.example>", 0, LMTP_MAIL, "a@b.example",
	    NULL, 0, 0, false },
	{ "mail-null", "MAIL FROM:<>", 0, LMTP_MAIL, "", NULL, 0, 0, false },
	{ "mail-space", "MAIL FROM: <a@b.example>", 0, LMTP_MAIL,
	    "a@b.example", NULL, 0, 0, false },
	{ "mail-params", "MAIL FROM:<a@b> SIZE=1234 BODY=8BITMIME SMTPUTF8",
	    0, LMTP_MAIL, "a@b", NULL, 1234, LMTP_BODY_8BITMIME, true },
	{ "mail-body-7bit", "mail from:<a@b> body=7bit", 0, LMTP_MAIL, "a@b",
	    NULL, 0, LMTP_BODY_7BIT, false },
	{ "mail-bad-body", "MAIL FROM:<a@b> BODY=BINARYMIME", 501, LMTP_MAIL,
	    NULL, NULL, 0, 0, false },
	{ "mail-bad-size", "MAIL FROM:<a@b> SIZE=12x", 501, LMTP_MAIL, NULL,
	    NULL, 0, 0, false },
	{ "mail-huge-size", "MAIL FROM:<a@b> SIZE=99999999999999999999", 501,
	    LMTP_MAIL, NULL, NULL, 0, 0, false },
	{ "mail-unknown-param", "MAIL FROM:<a@b> AUTH=<>", 555, LMTP_MAIL,
	    NULL, NULL, 0, 0, false },
	{ "mail-no-brackets", "MAIL FROM:a@b", 501, LMTP_MAIL, NULL, NULL, 0,
	    0, false },
	{ "mail-unterminated", "MAIL FROM:<a@b", 501, LMTP_MAIL, NULL, NULL,
	    0, 0, false },
	{ "mail-no-domain", "MAIL FROM:<ab>", 553, LMTP_MAIL, NULL, NULL, 0,
	    0, false },
	{ "mail-junk", "MAIL FROM:<a@b>x", 501, LMTP_MAIL, NULL, NULL, 0, 0,
	    false },
	{ "mail-no-colon", "MAIL FROM <a@b>", 501, LMTP_MAIL, NULL, NULL, 0,
	    0, false },
	{ "rcpt", "RCPT TO:<postmaster@Dane-EE.Test.>", 0, LMTP_RCPT,
	    "postmaster@Dane-EE.Test.", "dane-ee.test", 0, 0, false },
	{ "rcpt-route", "RCPT TO:<@relay.example,@r2.example:u@d.example>",
	    0, LMTP_RCPT, "u@d.example", "d.example", 0, 0, false },
	{ "rcpt-quoted", "RCPT TO:<\"a b@c>\"@d.example>", 0, LMTP_RCPT,
	    "\"a b@c>\"@d.example", "d.example", 0, 0, false },
	{ "rcpt-quoted-escape", "RCPT TO:<\"a\\\"b\"@d.example>", 0,
	    LMTP_RCPT, "\"a\\\"b\"@d.example", "d.example", 0, 0, false },
	{ "rcpt-literal", "RCPT TO:<u@[192.0.2.1]>", 553, LMTP_RCPT, NULL,
	    NULL, 0, 0, false },
	{ "rcpt-no-at", "RCPT TO:<postmaster>", 553, LMTP_RCPT, NULL, NULL, 0,
	    0, false },
	{ "rcpt-bad-domain", "RCPT TO:<u@bad_domain!.example>", 553,
	    LMTP_RCPT, NULL, NULL, 0, 0, false },
	{ "rcpt-empty", "RCPT TO:<>", 553, LMTP_RCPT, NULL, NULL, 0, 0,
	    false },
	{ "rcpt-param", "RCPT TO:<u@d.example> NOTIFY=NEVER", 555, LMTP_RCPT,
	    NULL, NULL, 0, 0, false },
	{ "rcpt-space-in-path", "RCPT TO:<u v@d.example>", 501, LMTP_RCPT,
	    NULL, NULL, 0, 0, false },
	{ "rcpt-control", "RCPT TO:<u\x01@d.example>", 501, LMTP_RCPT, NULL,
	    NULL, 0, 0, false },
	{ "rcpt-long-path", "RCPT TO:<"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	    "@d.example>", 501, LMTP_RCPT, NULL, NULL, 0, 0, false },
	{ "data", "DATA", 0, LMTP_DATA, NULL, NULL, 0, 0, false },
	{ "data-arg", "DATA x", 501, LMTP_DATA, NULL, NULL, 0, 0, false },
	{ "rset", "rset", 0, LMTP_RSET, NULL, NULL, 0, 0, false },
	{ "quit", "QUIT", 0, LMTP_QUIT, NULL, NULL, 0, 0, false },
	{ "noop-arg", "NOOP hello", 0, LMTP_NOOP, NULL, NULL, 0, 0, false },
	{ "unknown", "XYZZY", 500, LMTP_UNKNOWN, NULL, NULL, 0, 0, false },
	{ "verb-prefix", "DATAX", 500, LMTP_UNKNOWN, NULL, NULL, 0, 0, false },
	{ "empty", "", 500, LMTP_UNKNOWN, NULL, NULL, 0, 0, false },
	{ "nul-inside", "NOOP\0x", 500, LMTP_UNKNOWN, NULL, NULL, 0, 0,
	    false },
};

/* run_case - one row */
static void
run_case(void **state)
{
	const struct lmtp_case *c = *state;
	struct lmtp_cmd *cmd = malloc(sizeof(*cmd));
	const char *why;
	size_t len = strlen(c->line);
	int rc;

	if (strcmp(c->name, "nul-inside") == 0)
		len = 6;
	assert_non_null(cmd);
	rc = lmtp_parse(c->line, len, cmd, &why);
	assert_int_equal(rc, c->rc);
	if (rc != 0) {
		assert_non_null(why);
		/* every error text starts with an RFC 3463 code */
		assert_true(why[0] == '5' && why[1] == '.');
	} else {
		assert_int_equal(cmd->verb, c->verb);
		if (c->arg)
			assert_string_equal(cmd->arg, c->arg);
		if (c->domain)
			assert_string_equal(cmd->domain, c->domain);
		assert_int_equal(cmd->size, c->size);
		assert_int_equal(cmd->body, c->body);
		assert_int_equal(cmd->smtputf8, c->smtputf8);
	}
	free(cmd);
}

/* test_long_line - past LMTP_LINE_MAX: 500 */
static void
test_long_line(void **state)
{
	struct lmtp_cmd *cmd = malloc(sizeof(*cmd));
	char *line = malloc(LMTP_LINE_MAX + 1);
	const char *why;

	(void)state;
	memcpy(line, "NOOP ", 5);
	memset(line + 5, 'x', LMTP_LINE_MAX - 4);
	assert_int_equal(lmtp_parse(line, LMTP_LINE_MAX + 1, cmd, &why), 500);
	assert_int_equal(lmtp_parse(line, LMTP_LINE_MAX, cmd, &why), 0);
	free(line);
	free(cmd);
}

int
main(void)
{
	size_t n = sizeof(cases) / sizeof(cases[0]), i;
	struct CMUnitTest *t = calloc(n + 1, sizeof(*t));

	for (i = 0; i < n; i++)
		t[i] = (struct CMUnitTest){ cases[i].name, run_case, NULL, NULL,
		    (void *)&cases[i] };
	t[n] = (struct CMUnitTest)cmocka_unit_test(test_long_line);
	return _cmocka_run_group_tests("lmtp", t, n + 1, NULL, NULL);
}
