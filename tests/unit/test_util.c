/*
 * test_util.c - name helpers, resolver addresses and resolv.conf
 * (configuration files: test_config.c)
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <errno.h>
#include <signal.h>
#include <pthread.h>
#include <sys/socket.h>

#include "danests-internal.h"

static void
test_normalize(void **state)
{
	static const struct {
		const char *in, *out;	/* out NULL: refused */
	} rows[] = {
		{ "Example.TEST", "example.test" },
		{ "example.test.", "example.test" },
		{ "_mta-sts.example.test", "_mta-sts.example.test" },
		{ "xn--bcher-kva.test", "xn--bcher-kva.test" },
		{ "a-b.c-d.test", "a-b.c-d.test" },
		{ "1.2.3.4", "1.2.3.4" },	/* syntactically a name */
		{ "example", NULL },		/* one label */
		{ "", NULL },
		{ ".", NULL },
		{ "a..test", NULL },
		{ ".a.test", NULL },
		{ "a.test..", NULL },
		{ "-a.test", NULL },
		{ "a-.test", NULL },
		{ "a.test-", NULL },
		{ "a b.test", NULL },
		{ "[192.0.2.1]", NULL },
		{ "b\xc3\xbc" "cher.test", NULL },	/* U-label */
		{ "a.test:25", NULL },
	};
	char out[DANESTS_NAME_MAX], long63[80], long64[80], huge[300];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("\"%s\"\n", rows[i].in);
		if (rows[i].out == NULL)
			assert_int_equal(danests_domain_normalize(rows[i].in,
			    out, sizeof(out)), DANESTS_PERM);
		else {
			assert_int_equal(danests_domain_normalize(rows[i].in,
			    out, sizeof(out)), DANESTS_OK);
			assert_string_equal(out, rows[i].out);
		}
	}
	memset(long63, 'a', 63);
	strcpy(long63 + 63, ".test");
	assert_int_equal(danests_domain_normalize(long63, out, sizeof(out)),
	    DANESTS_OK);
	memset(long64, 'a', 64);
	strcpy(long64 + 64, ".test");
	assert_int_equal(danests_domain_normalize(long64, out, sizeof(out)),
	    DANESTS_PERM);
	for (i = 0; i + 2 < 290; i += 2)
		memcpy(huge + i, "a.", 2);
	strcpy(huge + i, "test");
	assert_int_equal(danests_domain_normalize(huge, out, sizeof(out)),
	    DANESTS_PERM);
	/* the output buffer is respected */
	assert_int_equal(danests_domain_normalize("example.test", out, 5),
	    DANESTS_PERM);
}

static void
test_name_eq(void **state)
{
	(void)state;
	assert_true(name_eq("MX.Example.test", "mx.example.test."));
	assert_true(name_eq("a.test.", "A.TEST"));
	assert_false(name_eq("a.test", "b.test"));
	assert_false(name_eq("a.test", "a.tes"));
}

static void
test_resolver_spec(void **state)
{
	static const struct {
		const char *spec;
		danests_status want;
		const char *addr;
		unsigned port;
	} rows[] = {
		{ "127.0.0.1", DANESTS_OK, "127.0.0.1", 53 },
		{ "127.10.0.2@5353", DANESTS_OK, "127.10.0.2", 5353 },
		{ "::1", DANESTS_OK, "::1", 53 },
		{ "::1@53", DANESTS_OK, "::1", 53 },
		{ "localhost", DANESTS_PERM, NULL, 0 },
		{ "127.0.0.1@0", DANESTS_PERM, NULL, 0 },
		{ "127.0.0.1@65536", DANESTS_PERM, NULL, 0 },
		{ "127.0.0.1@", DANESTS_PERM, NULL, 0 },
		{ "127.0.0.1@53x", DANESTS_PERM, NULL, 0 },
		{ "", DANESTS_PERM, NULL, 0 },
	};
	struct danests_config *c;
	char why[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("resolver \"%s\"\n", rows[i].spec);
		c = danests_config_new();
		why[0] = '\0';
		assert_int_equal(danests_config_set_resolver(c, rows[i].spec,
		    why, sizeof(why)), rows[i].want);
		if (rows[i].want == DANESTS_OK) {
			assert_string_equal(c->resolver, rows[i].addr);
			assert_int_equal(c->resolver_port, rows[i].port);
		} else
			assert_true(why[0] != '\0');
		danests_config_free(c);
	}
}

/* write_tmp - a temporary file with text; returns its path */
static char *
write_tmp(const char *text)
{
	static char path[64];
	int fd;

	strcpy(path, "/tmp/danests-ut-XXXXXX");
	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	return path;
}

static void
test_resolvconf(void **state)
{
	static const struct {
		const char *text;
		danests_status want;
		const char *addr;
	} rows[] = {
		{ "search example\nnameserver 127.0.0.53\nnameserver 9.9.9.9\n",
		    DANESTS_OK, "127.0.0.53" },
		{ "  nameserver\t::1\noptions trust-ad\n", DANESTS_OK, "::1" },
		{ "nameserver fe80::1%eth0\n", DANESTS_OK, "fe80::1" },
		{ "nameserver bogus\nnameserver 10.0.0.1\n", DANESTS_OK,
		    "10.0.0.1" },
		{ "nameservers 1.1.1.1\n", DANESTS_NOTFOUND, NULL },
		{ "# nameserver 1.1.1.1\n", DANESTS_NOTFOUND, NULL },
	};
	char addr[64], *path;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		path = write_tmp(rows[i].text);
		assert_int_equal(dns_resolvconf_first(path, addr,
		    sizeof(addr)), rows[i].want);
		if (rows[i].addr != NULL)
			assert_string_equal(addr, rows[i].addr);
		unlink(path);
	}
	assert_int_equal(dns_resolvconf_first("/nonexistent", addr,
	    sizeof(addr)), DANESTS_TEMP);
}

/* Every reason code: its stable name (the JSON contract) and its RFC 8460
 * result type, spelled out here independently of reason.c. */
static const struct {
	danests_reason r;
	const char *name;
	const char *type;
} reason_rows[] = {
	{ DANESTS_R_OK, "ok", NULL },
	{ DANESTS_R_NULL_MX, "null-mx", NULL },
	{ DANESTS_R_NXDOMAIN, "nxdomain", NULL },
	{ DANESTS_R_DNSSEC_INVALID, "dnssec-invalid", "dnssec-invalid" },
	{ DANESTS_R_DNS_ERROR, "dns-error", "dnssec-invalid" },
	{ DANESTS_R_DNS_TIMEOUT, "dns-timeout", "dnssec-invalid" },
	{ DANESTS_R_NO_ADDRESS, "no-address", NULL },
	{ DANESTS_R_NO_USABLE_HOST, "no-usable-host", NULL },
	{ DANESTS_R_DANE, "dane-tlsa", NULL },
	{ DANESTS_R_TLSA_UNUSABLE, "tlsa-unusable", NULL },
	{ DANESTS_R_TLSA_INVALID, "tlsa-invalid", "tlsa-invalid" },
	{ DANESTS_R_NO_TLSA, "no-tlsa", NULL },
	{ DANESTS_R_ADDR_INSECURE, "address-insecure", NULL },
	{ DANESTS_R_TLSA_INSECURE, "tlsa-insecure", NULL },
	{ DANESTS_R_STS_MX_MATCH, "sts-mx-match", NULL },
	{ DANESTS_R_STS_MX_MISMATCH, "sts-mx-mismatch", "validation-failure" },
	{ DANESTS_R_STS_TESTING, "sts-testing", NULL },
	{ DANESTS_R_STS_NONE, "sts-none", NULL },
	{ DANESTS_R_NO_POLICY, "no-policy", NULL },
	{ DANESTS_R_CACHE_ERROR, "cache-error", NULL },
	{ DANESTS_R_DECISION_TIMEOUT, "decision-timeout", NULL },
	{ DANESTS_R_LOCAL_ERROR, "local-error", NULL },
};

static void
test_reason_types(void **state)
{
	danests_reason back;
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(reason_rows) / sizeof(reason_rows[0]); i++) {
		const char *type = danests_result_type_name(
		    danests_reason_result_type(reason_rows[i].r));

		assert_string_equal(danests_reason_name(reason_rows[i].r),
		    reason_rows[i].name);
		if (reason_rows[i].type == NULL)
			assert_null(type);
		else
			assert_string_equal(type, reason_rows[i].type);
		assert_true(reason_from_name(reason_rows[i].name, &back));
		assert_int_equal(back, reason_rows[i].r);
	}
	/* the table above is the whole list */
#define X(e, name, rt) + 1
	assert_int_equal(sizeof(reason_rows) / sizeof(reason_rows[0]),
	    0 DANESTS_REASONS(X));
#undef X
	assert_null(danests_reason_name(DANESTS_R_NONE));
	assert_null(danests_reason_name((danests_reason)1000));
	assert_int_equal(danests_reason_result_type((danests_reason)1000),
	    DANESTS_RT_NONE);
	assert_false(reason_from_name(NULL, &back));
	assert_false(reason_from_name("", &back));
	assert_false(reason_from_name("OK", &back));
	assert_false(reason_from_name("certificate-expired", &back));
}

/* danests_refusal: the only decisions refused while the client is
 * connected, and their replies, word for word */
static void
test_refusals(void **state)
{
	static const struct {
		danests_verdict v;
		danests_reason r;
		bool sender;
		const char *reply;	/* NULL: the address goes on */
	} rows[] = {
		{ DANESTS_PERMFAIL, DANESTS_R_NULL_MX, false, "556 5.1.10 "
		    "Recipient address rejected: domain d.test does not "
		    "accept mail (null MX)" },
		{ DANESTS_PERMFAIL, DANESTS_R_NXDOMAIN, false, "550 5.1.2 "
		    "Recipient address rejected: domain d.test does not "
		    "exist" },
		{ DANESTS_PERMFAIL, DANESTS_R_NULL_MX, true, "550 5.7.27 "
		    "Sender address rejected: domain d.test does not accept "
		    "mail (null MX)" },
		{ DANESTS_PERMFAIL, DANESTS_R_NXDOMAIN, true, "550 5.1.8 "
		    "Sender address rejected: domain d.test does not exist" },
		{ DANESTS_PERMFAIL, DANESTS_R_NO_USABLE_HOST, false, NULL },
		{ DANESTS_PERMFAIL, DANESTS_R_NONE, true, NULL },
		{ DANESTS_TEMPFAIL, DANESTS_R_NULL_MX, false, NULL },
		{ DANESTS_TEMPFAIL, DANESTS_R_NXDOMAIN, true, NULL },
		{ DANESTS_DELIVER, DANESTS_R_OK, false, NULL },
	};
	char buf[256];
	size_t i;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		strcpy(buf, "untouched");
		assert_int_equal(danests_refusal(rows[i].v, rows[i].r,
		    rows[i].sender, "d.test", buf, sizeof(buf)),
		    rows[i].reply != NULL);
		assert_string_equal(buf, rows[i].reply != NULL ?
		    rows[i].reply : "untouched");
	}
	/* a short buffer is cut, never overrun */
	assert_true(danests_refusal(DANESTS_PERMFAIL, DANESTS_R_NULL_MX,
	    false, "d.test", buf, 11));
	assert_string_equal(buf, "556 5.1.10");
}

/* RFC 8460 4.3 spellings of the result types. */
static void
test_result_types(void **state)
{
	(void)state;
	assert_null(danests_result_type_name(DANESTS_RT_NONE));
	assert_string_equal(danests_result_type_name(
	    DANESTS_RT_STARTTLS_NOT_SUPPORTED), "starttls-not-supported");
	assert_string_equal(danests_result_type_name(
	    DANESTS_RT_CERT_HOST_MISMATCH), "certificate-host-mismatch");
	assert_string_equal(danests_result_type_name(DANESTS_RT_CERT_EXPIRED),
	    "certificate-expired");
	assert_string_equal(danests_result_type_name(
	    DANESTS_RT_CERT_NOT_TRUSTED), "certificate-not-trusted");
	assert_string_equal(danests_result_type_name(
	    DANESTS_RT_VALIDATION_FAILURE), "validation-failure");
	assert_string_equal(danests_result_type_name(DANESTS_RT_TLSA_INVALID),
	    "tlsa-invalid");
	assert_string_equal(danests_result_type_name(
	    DANESTS_RT_DNSSEC_INVALID), "dnssec-invalid");
	assert_string_equal(danests_result_type_name(DANESTS_RT_DANE_REQUIRED),
	    "dane-required");
	assert_string_equal(danests_result_type_name(
	    DANESTS_RT_STS_POLICY_FETCH_ERROR), "sts-policy-fetch-error");
	assert_string_equal(danests_result_type_name(
	    DANESTS_RT_STS_POLICY_INVALID), "sts-policy-invalid");
	assert_string_equal(danests_result_type_name(
	    DANESTS_RT_STS_WEBPKI_INVALID), "sts-webpki-invalid");
	assert_null(danests_result_type_name((danests_result_type)1000));
}

/* A write to a peer that closed, between nopipe_begin and nopipe_end, is
 * EPIPE and leaves no SIGPIPE behind; with SIGPIPE's default action a
 * missing guard kills the test. */
static void
test_nopipe(void **state)
{
	struct nopipe np;
	sigset_t pend;
	int sv[2];
	ssize_t n;

	(void)state;
	signal(SIGPIPE, SIG_DFL);
	assert_int_equal(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	close(sv[1]);
	nopipe_begin(&np);
	n = write(sv[0], "x", 1);
	assert_int_equal(n, -1);
	assert_int_equal(errno, EPIPE);
	nopipe_end(&np);
	assert_int_equal(sigpending(&pend), 0);
	assert_false(sigismember(&pend, SIGPIPE));
	/* and the mask is back: SIGPIPE is not left blocked */
	assert_int_equal(pthread_sigmask(SIG_BLOCK, NULL, &pend), 0);
	assert_false(sigismember(&pend, SIGPIPE));
	close(sv[0]);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_normalize),
		cmocka_unit_test(test_name_eq),
		cmocka_unit_test(test_resolver_spec),
		cmocka_unit_test(test_resolvconf),
		cmocka_unit_test(test_reason_types),
		cmocka_unit_test(test_result_types),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_nopipe),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
