/*
 * test_report_fleet.c - the names of the fleet's TLS-report counters in
 * the shared store (report_fleet.c): keys, member names, node ids
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>

#include "danests-internal.h"

static void
test_names(void **state)
{
	char buf[600], small[24];

	(void)state;
	assert_int_equal(report_fleet_name(buf, sizeof(buf), "2026-11-28",
	    NULL, NULL), 0);
	assert_string_equal(buf, "rpt:2026-11-28");
	assert_int_equal(report_fleet_name(buf, sizeof(buf), "2026-11-28",
	    "example.test", NULL), 0);
	assert_string_equal(buf, "rpt:2026-11-28:example.test");
	assert_int_equal(report_fleet_name(buf, sizeof(buf), "2026-11-28",
	    "example.test", "sent"), 0);
	assert_string_equal(buf, "rpt:2026-11-28:example.test:sent");
	/* too long: refused, never cut */
	assert_int_equal(report_fleet_name(small, sizeof(small), "2026-11-28",
	    "example.test", NULL), -1);
	assert_int_equal(report_fleet_name(buf, 27, "2026-11-28",
	    "example.test", NULL), -1);
	assert_int_equal(report_fleet_name(buf, 28, "2026-11-28",
	    "example.test", NULL), 0);
}

static void
test_members(void **state)
{
	const char *f1[5] = { "192.0.2.1", "mx.example.test", "", "", "" };
	const char *f2[5] = { "192.0.2.1", "mx.example.test", "", "", "x" };
	char a[34], b[34], c[34];
	size_t i;

	(void)state;
	report_fleet_pid("sts", "version: STSv1", "mx.example.test", a);
	assert_int_equal(strlen(a), 33);
	assert_int_equal(a[0], 'P');
	for (i = 1; i < 33; i++)
		assert_non_null(strchr("0123456789abcdef", a[i]));
	/* the same policy has the same name on every node */
	report_fleet_pid("sts", "version: STSv1", "mx.example.test", b);
	assert_string_equal(a, b);
	/* the strings are delimited: moving a byte across gives another */
	report_fleet_pid("sts", "version: STSv1m", "x.example.test", c);
	assert_string_not_equal(a, c);
	report_fleet_pid("tlsa", "version: STSv1", "mx.example.test", c);
	assert_string_not_equal(a, c);

	report_fleet_did(a, "validation-failure", f1, b);
	assert_int_equal(strlen(b), 33);
	assert_int_equal(b[0], 'D');
	report_fleet_did(a, "validation-failure", f2, c);
	assert_string_not_equal(b, c);
	report_fleet_did(a, "certificate-expired", f1, c);
	assert_string_not_equal(b, c);
	report_fleet_pid("sts", "", "", c);
	report_fleet_did(c, "validation-failure", f1, c);
	assert_string_not_equal(b, c);
}

static void
test_node_id(void **state)
{
	struct danests_config *cfg;
	char why[DANESTS_WHY_MAX], path[] = "/tmp/test_report_fleetXXXXXX";
	char long_id[80];
	int fd;

	(void)state;
	assert_true(report_node_ok("a"));
	assert_true(report_node_ok("mx1.example-test_2"));
	assert_false(report_node_ok(""));
	assert_false(report_node_ok("a:b"));	/* the field separator */
	assert_false(report_node_ok("a b"));
	memset(long_id, 'n', 63);
	long_id[63] = '\0';
	assert_true(report_node_ok(long_id));
	long_id[63] = 'n';
	long_id[64] = '\0';
	assert_false(report_node_ok(long_id));

	assert_true((fd = mkstemp(path)) >= 0);
	assert_int_equal(write(fd, "node_id a:b\n", 12), 12);
	close(fd);
	assert_non_null(cfg = danests_config_new());
	assert_int_equal(danests_config_load(cfg, path, why, sizeof(why)),
	    DANESTS_PERM);
	assert_non_null(strstr(why, ":1: node_id: expected"));
	danests_config_free(cfg);
	assert_true((fd = open(path, O_WRONLY | O_TRUNC)) >= 0);
	assert_int_equal(write(fd, "node_id mx-1\n", 13), 13);
	close(fd);
	assert_non_null(cfg = danests_config_new());
	assert_int_equal(danests_config_load(cfg, path, why, sizeof(why)),
	    DANESTS_OK);
	assert_string_equal(cfg->node_id, "mx-1");
	danests_config_free(cfg);
	unlink(path);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_names),
		cmocka_unit_test(test_members),
		cmocka_unit_test(test_node_id),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
