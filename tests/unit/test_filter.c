/*
 * test_filter.c - the OpenSMTPD filter protocol of filter-danests
 * (opensmtpd/filter_proto.c): exchanges as OpenSMTPD 6.8 (protocol 0.6)
 * and 7.6 (0.7) write them, line by line, with what the filter must
 * answer; malformed lines, unknown events, an over-long line; addresses;
 * the replies for each decision.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* the parser is part of the filter, not of the core library */
#include "../../opensmtpd/filter_proto.c"

#define REGISTER "register|filter|smtp-in|mail-from\n" \
	"register|filter|smtp-in|rcpt-to\n" \
	"register|ready\n"

/* One line in, what comes out: action, text (WRITE/FATAL: a prefix of
 * it), domain (DECIDE), whether a note is logged. */
struct step {
	const char *in;
	enum filter_action action;
	const char *text;
	const char *domain;
	bool note;
};

struct exchange {
	const char *name;
	const struct step *steps;
};

/* OpenSMTPD 6.8.0p2 as Debian 12 runs it (lka_filter.c, protocol 0.6) */
static const struct step ex_68[] = {
	{ "config|smtpd-version|6.8.0p2", FILTER_A_NONE, NULL, NULL, false },
	{ "config|smtp-session-timeout|300", FILTER_A_NONE, NULL, NULL, false },
	{ "config|subsystem|smtp-in", FILTER_A_NONE, NULL, NULL, false },
	{ "config|admd|mx.example.org", FILTER_A_NONE, NULL, NULL, false },
	{ "config|ready", FILTER_A_WRITE, REGISTER, NULL, false },
	{ "filter|0.6|1732812345.123456|smtp-in|mail-from|7641df9771b4ed00|"
	    "1ef1c203cc576e5d|<alice@Sender.Example.> SIZE=1234",
	    FILTER_A_DECIDE, NULL, "sender.example", false },
	{ "filter|0.6|1732812345.223456|smtp-in|rcpt-to|7641df9771b4ed00|"
	    "1ef1c203cc576e5e|<bob@null-mx.test>",
	    FILTER_A_DECIDE, NULL, "null-mx.test", false },
	/* the null sender: nothing to decide */
	{ "filter|0.6|1732812345.323456|smtp-in|mail-from|7641df9771b4ed00|"
	    "1ef1c203cc576e5f|<>",
	    FILTER_A_WRITE,
	    "filter-result|7641df9771b4ed00|1ef1c203cc576e5f|proceed\n",
	    NULL, false },
	{ NULL, 0, NULL, NULL, false },
};

/* OpenSMTPD 7.6.0p1 as Debian 13 runs it (protocol 0.7, config|protocol) */
static const struct step ex_76[] = {
	{ "config|smtpd-version|7.6.0", FILTER_A_NONE, NULL, NULL, false },
	{ "config|protocol|0.7", FILTER_A_NONE, NULL, NULL, false },
	{ "config|smtp-session-timeout|300", FILTER_A_NONE, NULL, NULL, false },
	{ "config|subsystem|smtp-in", FILTER_A_NONE, NULL, NULL, false },
	{ "config|admd|mx.example.org", FILTER_A_NONE, NULL, NULL, false },
	{ "config|ready", FILTER_A_WRITE, REGISTER, NULL, false },
	{ "filter|0.7|1732812345.000001|smtp-in|rcpt-to|00000000000000a1|"
	    "00000000000000b2|<\"odd>@user\"@dane-ee.test> NOTIFY=NEVER",
	    FILTER_A_DECIDE, NULL, "dane-ee.test", false },
	/* an event registered by nobody: answered, never held */
	{ "filter|0.7|1732812345.000002|smtp-in|helo|00000000000000a1|"
	    "00000000000000b3|client.example",
	    FILTER_A_WRITE,
	    "filter-result|00000000000000a1|00000000000000b3|proceed\n",
	    NULL, false },
	/* a later version: answered in the 0.5-0.7 layout, noted once */
	{ "filter|0.8|1732812345.000003|smtp-in|rcpt-to|00000000000000a1|"
	    "00000000000000b4|<x@nxdomain.test>",
	    FILTER_A_DECIDE, NULL, "nxdomain.test", true },
	{ "filter|0.8|1732812345.000004|smtp-in|rcpt-to|00000000000000a1|"
	    "00000000000000b5|<x@nxdomain.test>",
	    FILTER_A_DECIDE, NULL, "nxdomain.test", false },
	{ NULL, 0, NULL, NULL, false },
};

/* malformed lines and unknown messages: logged, never fatal, and every
 * event whose session and token can be read is answered */
static const struct step ex_bad[] = {
	{ "filter|0.6|1.1|smtp-in|rcpt-to|a1|b2|<x@y.test>", FILTER_A_NONE,
	    NULL, NULL, true },	/* before config|ready */
	{ "config", FILTER_A_NONE, NULL, NULL, true },
	{ "config|", FILTER_A_NONE, NULL, NULL, true },
	{ "config|ready", FILTER_A_WRITE, REGISTER, NULL, false },
	{ "config|ready", FILTER_A_NONE, NULL, NULL, true },
	{ "", FILTER_A_NONE, NULL, NULL, true },
	{ "hello world", FILTER_A_NONE, NULL, NULL, true },
	{ "filter-result|a|b|proceed", FILTER_A_NONE, NULL, NULL, true },
	{ "report|0.6|1.1|smtp-in|link-connect|a1|x", FILTER_A_NONE, NULL,
	    NULL, false },
	{ "filter", FILTER_A_NONE, NULL, NULL, true },
	{ "filter|", FILTER_A_NONE, NULL, NULL, true },
	{ "filter|x.6|1.1|smtp-in|rcpt-to|a1|b2|<x@y.test>", FILTER_A_NONE,
	    NULL, NULL, true },
	{ "filter|0.6|1|smtp-in|rcpt-to|a1|b2|<x@y.test>", FILTER_A_NONE,
	    NULL, NULL, true },
	{ "filter|0.6|1.1||rcpt-to|a1|b2|<x@y.test>", FILTER_A_NONE, NULL,
	    NULL, true },
	{ "filter|0.6|1.1|smtp-in||a1|b2|<x@y.test>", FILTER_A_NONE, NULL,
	    NULL, true },
	{ "filter|0.6|1.1|smtp-in|rcpt-to|xyz|b2|<x@y.test>", FILTER_A_NONE,
	    NULL, NULL, true },
	{ "filter|0.6|1.1|smtp-in|rcpt-to|a1|12345678901234567|<x@y.test>",
	    FILTER_A_NONE, NULL, NULL, true },
	{ "filter|0.6|1.1|smtp-in|rcpt-to|a1", FILTER_A_NONE, NULL, NULL,
	    true },
	/* no parameter at all, an empty one, no closing '>', a literal */
	{ "filter|0.6|1.1|smtp-in|rcpt-to|a1|b2", FILTER_A_WRITE,
	    "filter-result|00000000000000a1|00000000000000b2|proceed\n",
	    NULL, false },
	{ "filter|0.6|1.1|smtp-in|rcpt-to|a1|b3|", FILTER_A_WRITE,
	    "filter-result|00000000000000a1|00000000000000b3|proceed\n",
	    NULL, false },
	{ "filter|0.6|1.1|smtp-in|rcpt-to|a1|b4|<x@null-mx.test",
	    FILTER_A_WRITE,
	    "filter-result|00000000000000a1|00000000000000b4|proceed\n",
	    NULL, false },
	{ "filter|0.6|1.1|smtp-in|rcpt-to|a1|b5|<x@[127.0.0.1]>",
	    FILTER_A_WRITE,
	    "filter-result|00000000000000a1|00000000000000b5|proceed\n",
	    NULL, false },
	{ "filter|0.6|1.1|smtp-in|rcpt-to|a1|b6|<x@bad_name!.test>",
	    FILTER_A_WRITE,
	    "filter-result|00000000000000a1|00000000000000b6|proceed\n",
	    NULL, false },
	/* an event of another subsystem is answered, not decided */
	{ "filter|0.6|1.1|smtp-out|rcpt-to|a1|b7|<x@null-mx.test>",
	    FILTER_A_WRITE,
	    "filter-result|00000000000000a1|00000000000000b7|proceed\n",
	    NULL, false },
	/* 0.4 answered TOKEN|SESSION: fatal, not answered wrongly */
	{ "filter|0.4|1.1|smtp-in|rcpt-to|a1|b8|<x@null-mx.test>",
	    FILTER_A_FATAL, "filter protocol 0.4 is not supported", NULL,
	    false },
	{ "filter|1.0|1.1|smtp-in|rcpt-to|a1|b9|<x@null-mx.test>",
	    FILTER_A_FATAL, "filter protocol 1.0 is not supported", NULL,
	    false },
	{ NULL, 0, NULL, NULL, false },
};

static const struct exchange exchanges[] = {
	{ "opensmtpd-6.8", ex_68 },
	{ "opensmtpd-7.6", ex_76 },
	{ "malformed", ex_bad },
};

static void
run_exchange(void **state)
{
	const struct exchange *e = *state;
	struct filter_state s;
	struct filter_out o;
	const struct step *st;

	memset(&s, 0, sizeof(s));
	for (st = e->steps; st->in != NULL; st++) {
		filter_proto_step(&s, st->in, strlen(st->in), false, &o);
		if (o.action != st->action)
			fail_msg("%s: \"%s\": action %d, want %d (note: %s)",
			    e->name, st->in, o.action, st->action, o.note);
		if (st->text != NULL && strncmp(o.text, st->text,
		    strlen(st->text)) != 0)
			fail_msg("%s: \"%s\": text \"%s\", want \"%s\"",
			    e->name, st->in, o.text, st->text);
		if (st->domain != NULL)
			assert_string_equal(o.domain, st->domain);
		if (st->note != (o.note[0] != '\0'))
			fail_msg("%s: \"%s\": note \"%s\", want %s", e->name,
			    st->in, o.note, st->note ? "one" : "none");
	}
	if (strcmp(e->name, "opensmtpd-6.8") == 0)
		assert_string_equal(s.smtpd_version, "6.8.0p2");
}

/* decided events of the 6.8 exchange, answered */
static void
test_answers(void **state)
{
	char buf[FILTER_REPLY_MAX];

	filter_proto_result(0x7641df9771b4ed00ULL, 0x1ef1c203cc576e5eULL,
	    NULL, buf, sizeof(buf));
	assert_string_equal(buf,
	    "filter-result|7641df9771b4ed00|1ef1c203cc576e5e|proceed\n");
	filter_proto_result(0xa1, 0xb2, "556 5.1.10 no", buf, sizeof(buf));
	assert_string_equal(buf,
	    "filter-result|00000000000000a1|00000000000000b2|reject|"
	    "556 5.1.10 no\n");
}

struct reply_case {
	enum filter_phase phase;
	danests_verdict verdict;
	danests_reason reason;
	const char *reply;	/* prefix, NULL: proceed */
};

static const struct reply_case replies[] = {
	{ FILTER_PHASE_RCPT_TO, DANESTS_PERMFAIL, DANESTS_R_NULL_MX, "556 5.1.10 " },
	{ FILTER_PHASE_RCPT_TO, DANESTS_PERMFAIL, DANESTS_R_NXDOMAIN, "550 5.1.2 " },
	{ FILTER_PHASE_MAIL_FROM, DANESTS_PERMFAIL, DANESTS_R_NULL_MX, "550 5.7.27 " },
	{ FILTER_PHASE_MAIL_FROM, DANESTS_PERMFAIL, DANESTS_R_NXDOMAIN, "550 5.1.8 " },
	/* tempfail is never refused: the relay defers and retries */
	{ FILTER_PHASE_RCPT_TO, DANESTS_TEMPFAIL, DANESTS_R_DNSSEC_INVALID, NULL },
	{ FILTER_PHASE_RCPT_TO, DANESTS_TEMPFAIL, DANESTS_R_DNS_TIMEOUT, NULL },
	{ FILTER_PHASE_RCPT_TO, DANESTS_TEMPFAIL, DANESTS_R_DECISION_TIMEOUT, NULL },
	{ FILTER_PHASE_MAIL_FROM, DANESTS_TEMPFAIL, DANESTS_R_DNS_ERROR, NULL },
	{ FILTER_PHASE_RCPT_TO, DANESTS_DELIVER, DANESTS_R_OK, NULL },
	{ FILTER_PHASE_RCPT_TO, DANESTS_DELIVER, DANESTS_R_DANE, NULL },
	/* a permfail for another reason: not a refusal of this filter */
	{ FILTER_PHASE_RCPT_TO, DANESTS_PERMFAIL, DANESTS_R_NO_USABLE_HOST, NULL },
	{ FILTER_PHASE_RCPT_TO, DANESTS_PERMFAIL, DANESTS_R_NONE, NULL },
	{ FILTER_PHASE_OTHER, DANESTS_PERMFAIL, DANESTS_R_NULL_MX, NULL },
};

static void
test_replies(void **state)
{
	char buf[FILTER_TEXT_MAX];
	size_t i;
	bool rej;

	for (i = 0; i < sizeof(replies) / sizeof(replies[0]); i++) {
		const struct reply_case *c = &replies[i];

		buf[0] = '\0';
		rej = filter_proto_reply(c->phase, "d.test", c->verdict,
		    c->reason, buf, sizeof(buf));
		if (rej != (c->reply != NULL))
			fail_msg("case %zu: reject %d", i, rej);
		if (c->reply != NULL) {
			assert_memory_equal(buf, c->reply, strlen(c->reply));
			assert_non_null(strstr(buf, "d.test"));
			assert_null(strchr(buf, '\n'));
		}
	}
}

struct addr_case {
	const char *param;
	const char *domain;	/* NULL: none */
};

static const struct addr_case addrs[] = {
	{ "<a@b.test>", "b.test" },
	{ "<a@B.Test.>", "b.test" },
	{ "  <a@b.test> SIZE=10 BODY=8BITMIME", "b.test" },
	{ "a@b.test", "b.test" },
	{ "a@b.test SIZE=10", "b.test" },
	{ "<@relay.test,@r2.test:a@b.test>", "b.test" },
	{ "<\"a@x.test\"@b.test>", "b.test" },
	{ "<\"a>b\"@b.test>", "b.test" },
	{ "<\"a\\\"@x.test\"@b.test>", "b.test" },
	{ "<>", NULL },
	{ "", NULL },
	{ "<postmaster>", NULL },
	{ "<@b.test>", NULL },
	{ "<a@>", NULL },
	{ "<a@b.test", NULL },
	{ "<a@[192.0.2.1]>", NULL },
	{ "<a@[IPv6:2001:db8::1]>", NULL },
	{ "<a@b..test>", NULL },
	{ "<a@-b.test>", NULL },
	{ "<a@b\xc3\xa9.test>", NULL },
	{ "<@relay.test a@b.test>", NULL },
	{ "<\"a@b.test>", NULL },
};

static void
test_domains(void **state)
{
	char out[256];
	size_t i;
	int rc;

	for (i = 0; i < sizeof(addrs) / sizeof(addrs[0]); i++) {
		out[0] = '\0';
		rc = filter_proto_domain(addrs[i].param,
		    strlen(addrs[i].param), out, sizeof(out));
		if (rc != (addrs[i].domain != NULL))
			fail_msg("\"%s\": rc %d", addrs[i].param, rc);
		if (addrs[i].domain != NULL)
			assert_string_equal(out, addrs[i].domain);
	}
	/* a NUL inside the domain is no domain */
	rc = filter_proto_domain("<a@b\0c.test>", 12, out, sizeof(out));
	assert_int_equal(rc, 0);
	/* a domain of 300 bytes */
	{
		char p[400];

		memset(p, 'a', sizeof(p));
		memcpy(p, "<x@", 3);
		p[sizeof(p) - 1] = '>';
		assert_int_equal(filter_proto_domain(p, sizeof(p), out,
		    sizeof(out)), 0);
	}
}

/* an over-long line: its beginning arrives truncated; an event is answered
 * "proceed" without a decision, whatever its parameter says */
static void
test_long_line(void **state)
{
	static const char head[] = "filter|0.6|1.1|smtp-in|rcpt-to|a1|b2|"
	    "<x@null-mx.test> ";
	struct filter_state s;
	struct filter_out o;
	char *line;

	memset(&s, 0, sizeof(s));
	filter_proto_step(&s, "config|ready", 12, false, &o);
	assert_int_equal(o.action, FILTER_A_WRITE);
	line = malloc(FILTER_LINE_MAX);
	assert_non_null(line);
	memset(line, 'A', FILTER_LINE_MAX);
	memcpy(line, head, sizeof(head) - 1);
	filter_proto_step(&s, line, FILTER_LINE_MAX, true, &o);
	assert_int_equal(o.action, FILTER_A_WRITE);
	assert_string_equal(o.text,
	    "filter-result|00000000000000a1|00000000000000b2|proceed\n");
	/* the same line complete would be decided */
	filter_proto_step(&s, line, FILTER_LINE_MAX, false, &o);
	assert_int_equal(o.action, FILTER_A_DECIDE);
	/* cut inside the session: cannot be answered, logged */
	filter_proto_step(&s, line, 32, true, &o);
	assert_int_equal(o.action, FILTER_A_NONE);
	assert_non_null(strstr(o.note, "too long"));
	/* a long config line is ignored, never fatal */
	memcpy(line, "config|admd|", 12);
	filter_proto_step(&s, line, FILTER_LINE_MAX, true, &o);
	assert_int_equal(o.action, FILTER_A_NONE);
	free(line);
}

int
main(void)
{
	struct CMUnitTest t[sizeof(exchanges) / sizeof(exchanges[0]) + 4];
	size_t i, n = 0;

	for (i = 0; i < sizeof(exchanges) / sizeof(exchanges[0]); i++) {
		t[n].name = exchanges[i].name;
		t[n].test_func = run_exchange;
		t[n].setup_func = NULL;
		t[n].teardown_func = NULL;
		t[n].initial_state = (void *)&exchanges[i];
		n++;
	}
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_answers);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_replies);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_domains);
	t[n++] = (struct CMUnitTest)cmocka_unit_test(test_long_line);
	return _cmocka_run_group_tests("filter", t, n, NULL, NULL);
}
