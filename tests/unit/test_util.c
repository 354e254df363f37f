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

static void
test_reason_types(void **state)
{
	(void)state;
	assert_string_equal(danests_reason_result_type("tlsa-invalid"),
	    "tlsa-invalid");
	assert_string_equal(danests_reason_result_type("sts-mx-mismatch"),
	    "validation-failure");
	assert_string_equal(danests_reason_result_type("dnssec-invalid"),
	    "dnssec-invalid");
	assert_null(danests_reason_result_type("ok"));
	assert_null(danests_reason_result_type(NULL));
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
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
