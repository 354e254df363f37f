/*
 * test_tlsa.c - TLSA RDATA parsing and usability (RFC 6698 2.1,
 * RFC 7672 3.1, RFC 7671 7), one row per case
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"

struct row {
	const char *label;
	unsigned char rdata[80];
	size_t len;
	enum tlsa_check want;
	size_t dlen;		/* data length kept when usable */
};

#define D32 1,2,3,4,5,6,7,8,9,10,11,12,13,14,15,16,17,18,19,20,21,22,23,24, \
	25,26,27,28,29,30,31,32

static const struct row rows[] = {
	{ "3 1 1 sha256", { 3, 1, 1, D32 }, 35, TLSA_USABLE, 32 },
	{ "2 0 1 sha256", { 2, 0, 1, D32 }, 35, TLSA_USABLE, 32 },
	{ "3 1 2 sha512", { 3, 1, 2, D32, D32 }, 67, TLSA_USABLE, 64 },
	{ "3 1 0 full spki", { 3, 1, 0, 0x30, 0x03, 1, 2, 3 }, 8, TLSA_USABLE,
	    5 },
	{ "2 0 0 full cert", { 2, 0, 0, 0x30, 0x00 }, 5, TLSA_USABLE, 2 },
	{ "0 0 1 PKIX-TA unusable", { 0, 0, 1, D32 }, 35, TLSA_UNUSABLE, 0 },
	{ "1 1 1 PKIX-EE unusable", { 1, 1, 1, D32 }, 35, TLSA_UNUSABLE, 0 },
	{ "4 1 1 unknown usage", { 4, 1, 1, D32 }, 35, TLSA_UNUSABLE, 0 },
	{ "3 2 1 unknown selector", { 3, 2, 1, D32 }, 35, TLSA_UNUSABLE, 0 },
	{ "3 1 9 unknown mtype", { 3, 1, 9, D32 }, 35, TLSA_UNUSABLE, 0 },
	{ "3 1 1 short digest", { 3, 1, 1, 1, 2 }, 5, TLSA_MALFORMED, 0 },
	{ "3 1 1 long digest", { 3, 1, 1, D32, 33 }, 36, TLSA_MALFORMED, 0 },
	{ "3 1 2 sha256-sized", { 3, 1, 2, D32 }, 35, TLSA_MALFORMED, 0 },
	{ "3 1 0 not DER", { 3, 1, 0, 0x04, 0x01 }, 5, TLSA_MALFORMED, 0 },
	{ "3 1 0 one byte", { 3, 1, 0, 0x30 }, 4, TLSA_MALFORMED, 0 },
	{ "no data", { 3, 1, 1 }, 3, TLSA_MALFORMED, 0 },
	{ "empty", { 0 }, 0, TLSA_MALFORMED, 0 },
};

static void
test_rows(void **state)
{
	struct danests_tlsa t;
	const char *why;
	size_t i;
	enum tlsa_check got;

	(void)state;
	for (i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		print_message("%s\n", rows[i].label);
		why = NULL;
		got = tlsa_parse(rows[i].rdata, rows[i].len, &t, &why);
		assert_int_equal(got, rows[i].want);
		if (got == TLSA_USABLE) {
			assert_null(why);
			assert_int_equal(t.usage, rows[i].rdata[0]);
			assert_int_equal(t.selector, rows[i].rdata[1]);
			assert_int_equal(t.mtype, rows[i].rdata[2]);
			assert_int_equal(t.len, rows[i].dlen);
			assert_memory_equal(t.data, rows[i].rdata + 3, t.len);
			free(t.data);
		} else {
			assert_non_null(why);
			assert_null(t.data);
		}
	}
}

static void
test_null(void **state)
{
	struct danests_tlsa t;
	const char *why;

	(void)state;
	assert_int_equal(tlsa_parse(NULL, 35, &t, &why), TLSA_MALFORMED);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rows),
		cmocka_unit_test(test_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
