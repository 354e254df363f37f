/*
 * test_tlsreq.c - RFC 8689 "TLS-Required: No" in danests-relay
 * (opensmtpd/tlsreq.c): a table of messages, each fed whole, byte by
 * byte and in two pieces; and decisions relaxed for such a message.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

/* part of the relay, linked from opensmtpd/ (tlsreq_dep) */
#include "tlsreq.h"

struct msg_case {
	const char *name;
	const char *msg;	/* SMTP wire form */
	bool no;
};

static const struct msg_case cases[] = {
	{ "plain-no", "From: a@b\r\nTLS-Required: No\r\n\r\nbody\r\n", true },
	{ "first-field", "TLS-Required: No\r\nFrom: a@b\r\n\r\nbody\r\n",
	    true },
	{ "lower-case", "tls-required: no\r\n\r\nx\r\n", true },
	{ "mixed-case", "Tls-ReQuired: NO\r\n\r\nx\r\n", true },
	{ "no-space", "TLS-Required:No\r\n\r\nx\r\n", true },
	{ "wsp-around", "TLS-Required: \t No \t \r\n\r\nx\r\n", true },
	{ "wsp-before-colon", "TLS-Required :No\r\n\r\nx\r\n", true },
	{ "folded", "From: a@b\r\nTLS-Required:\r\n No\r\nTo: c@d\r\n\r\nx\r\n",
	    true },
	{ "folded-tab", "TLS-Required:\r\n\tNo\r\n\r\nx\r\n", true },
	{ "folded-twice", "TLS-Required:\r\n \r\n No\r\n\r\nx\r\n", true },
	{ "bare-lf", "Subject: s\nTLS-Required: No\n\nx\n", true },
	{ "last-no-body", "Subject: s\r\nTLS-Required: No\r\n", true },
	{ "second-of-two", "TLS-Required: Yes\r\nTLS-Required: No\r\n\r\n",
	    true },
	{ "absent", "From: a@b\r\nSubject: TLS-Required: No\r\n\r\nx\r\n",
	    false },
	{ "yes", "TLS-Required: Yes\r\n\r\nx\r\n", false },
	{ "empty-value", "TLS-Required:\r\n\r\nx\r\n", false },
	{ "no-prefix", "TLS-Required: Nope\r\n\r\nx\r\n", false },
	{ "no-comment", "TLS-Required: No (please)\r\n\r\nx\r\n", false },
	{ "no-then-text", "TLS-Required: No\r\n more\r\n\r\nx\r\n", false },
	{ "other-name", "X-TLS-Required: No\r\n\r\nx\r\n", false },
	{ "name-longer", "TLS-Required-X: No\r\n\r\nx\r\n", false },
	{ "in-body", "From: a@b\r\n\r\nTLS-Required: No\r\n", false },
	{ "in-body-dotted", "From: a@b\r\n\r\n..\r\nTLS-Required: No\r\n",
	    false },
	{ "after-non-field", "From: a@b\r\nnot a header\r\nTLS-Required: "
	    "No\r\n\r\n", false },
	{ "continuation-in-body", "From: a@b\r\nTLS-Required:\r\n\r\n No\r\n",
	    false },
	{ "empty-message", "", false },
};

/* scan - feed msg in pieces of step bytes (0: whole) */
static bool
scan(const char *msg, size_t step)
{
	struct tlsreq t;
	size_t n = strlen(msg), off = 0, k;

	tlsreq_init(&t);
	if (step == 0)
		step = n ? n : 1;
	while (off < n) {
		k = n - off < step ? n - off : step;
		tlsreq_feed(&t, msg + off, k);
		off += k;
	}
	return tlsreq_no(&t);
}

static void
run_case(void **state)
{
	const struct msg_case *c = *state;
	size_t step;

	assert_int_equal(scan(c->msg, 0), c->no);
	for (step = 1; step < 8; step++)
		assert_int_equal(scan(c->msg, step), c->no);
}

/* test_long_lines - a TLS-Required line past the line buffer is not
 * "No"; long other lines do not hide a later field */
static void
test_long_lines(void **state)
{
	size_t big = TLSREQ_LINE_MAX * 3;
	char *m = malloc(big + 200), *p;

	(void)state;
	assert_non_null(m);
	p = m + sprintf(m, "X-Long: ");
	memset(p, 'a', big);
	p += big;
	sprintf(p, "\r\nTLS-Required: No\r\n\r\nx\r\n");
	assert_true(scan(m, 0));
	assert_true(scan(m, 7));
	/* the value padded past the line buffer */
	p = m + sprintf(m, "TLS-Required: No");
	memset(p, ' ', big);
	p += big;
	sprintf(p, "\r\n\r\n");
	assert_false(scan(m, 0));
	/* folded past the value buffer */
	p = m + sprintf(m, "TLS-Required:");
	for (size_t i = 0; i < 40; i++)
		p += sprintf(p, "\r\n  ");
	sprintf(p, "\r\n No\r\n\r\n");
	assert_false(scan(m, 0));
	free(m);
}

/* A decision to relax: hosts by (policy, naddrs, addr_security). */
struct hspec {
	danests_policy policy;
	size_t naddrs;
	danests_dnssec sec;
};

static char addr0[] = "127.0.0.1";
static char *addrs[] = { addr0 };
static char hname[] = "mx.example";

static void
build(struct danests_decision *d, struct danests_host *h,
    danests_verdict v, const struct hspec *hs, size_t n)
{
	memset(d, 0, sizeof(*d));
	d->verdict = v;
	d->reason = v == DANESTS_DELIVER ? DANESTS_R_OK :
	    DANESTS_R_NO_USABLE_HOST;
	d->nhosts = n;
	d->hosts = h;
	for (size_t i = 0; i < n; i++) {
		memset(&h[i], 0, sizeof(h[i]));
		h[i].name = hname;
		h[i].policy = hs[i].policy;
		h[i].naddrs = hs[i].naddrs;
		h[i].addrs = hs[i].naddrs ? addrs : NULL;
		h[i].addr_security = hs[i].sec;
	}
}

static void
test_relax(void **state)
{
	struct danests_decision d;
	struct danests_host h[4];
	const struct hspec strict[] = {
		{ DANESTS_POLICY_DANE, 1, DANESTS_SEC_SECURE },
		{ DANESTS_POLICY_ENCRYPT, 1, DANESTS_SEC_SECURE },
		{ DANESTS_POLICY_STS_ENFORCE, 1, DANESTS_SEC_INSECURE },
		{ DANESTS_POLICY_STS_TESTING, 1, DANESTS_SEC_INSECURE },
	};
	const struct hspec skipped[] = {
		{ DANESTS_POLICY_SKIP, 1, DANESTS_SEC_SECURE },
	};
	const struct hspec noroute[] = {
		{ DANESTS_POLICY_SKIP, 0, DANESTS_SEC_INDETERMINATE },
		{ DANESTS_POLICY_SKIP, 1, DANESTS_SEC_BOGUS },
	};
	const struct hspec may[] = {
		{ DANESTS_POLICY_MAY, 1, DANESTS_SEC_INSECURE },
	};

	(void)state;
	/* every enforcing policy becomes may */
	build(&d, h, DANESTS_DELIVER, strict, 4);
	assert_true(tlsreq_relax(&d));
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(h[i].policy, DANESTS_POLICY_MAY);
	assert_int_equal(d.verdict, DANESTS_DELIVER);
	/* a host skipped for its TLS policy (sts-mx-mismatch, failed
	 * TLSA lookup): the tempfail becomes a delivery */
	build(&d, h, DANESTS_TEMPFAIL, skipped, 1);
	assert_true(tlsreq_relax(&d));
	assert_int_equal(h[0].policy, DANESTS_POLICY_MAY);
	assert_int_equal(d.verdict, DANESTS_DELIVER);
	assert_int_equal(d.reason, DANESTS_R_OK);
	/* no address, or a bogus one: still deferred */
	build(&d, h, DANESTS_TEMPFAIL, noroute, 2);
	assert_false(tlsreq_relax(&d));
	assert_int_equal(d.verdict, DANESTS_TEMPFAIL);
	assert_int_equal(h[0].policy, DANESTS_POLICY_SKIP);
	assert_int_equal(h[1].policy, DANESTS_POLICY_SKIP);
	/* no MX answer at all (no hosts): still deferred */
	build(&d, h, DANESTS_TEMPFAIL, NULL, 0);
	assert_false(tlsreq_relax(&d));
	assert_int_equal(d.verdict, DANESTS_TEMPFAIL);
	/* null MX / NXDOMAIN: still a bounce */
	build(&d, h, DANESTS_PERMFAIL, NULL, 0);
	d.reason = DANESTS_R_NULL_MX;
	assert_false(tlsreq_relax(&d));
	assert_int_equal(d.verdict, DANESTS_PERMFAIL);
	/* nothing to relax */
	build(&d, h, DANESTS_DELIVER, may, 1);
	assert_false(tlsreq_relax(&d));
	assert_int_equal(h[0].policy, DANESTS_POLICY_MAY);
}

int
main(void)
{
	size_t n = sizeof(cases) / sizeof(cases[0]), i;
	struct CMUnitTest *t = calloc(n + 2, sizeof(*t));

	for (i = 0; i < n; i++)
		t[i] = (struct CMUnitTest){ cases[i].name, run_case, NULL, NULL,
		    (void *)&cases[i] };
	t[n] = (struct CMUnitTest)cmocka_unit_test(test_long_lines);
	t[n + 1] = (struct CMUnitTest)cmocka_unit_test(test_relax);
	return _cmocka_run_group_tests("tlsreq", t, n + 2, NULL, NULL);
}
