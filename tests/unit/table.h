/*
 * table.h - run each row of a table of cases as its own cmocka test
 *
 * Include after <cmocka.h>.  A row is any struct whose first member is
 * its name (const char *); the test function gets the row as its state.
 */
#ifndef DANESTS_TEST_TABLE_H
#define DANESTS_TEST_TABLE_H

#include <stdint.h>
#include <stdlib.h>

#define NROWS(a) (sizeof(a) / sizeof((a)[0]))

/* run_table - run each row of a table as its own cmocka test */
static inline int
run_table(const char *group, const void *rows, size_t n, size_t rowsz,
    void (*fn)(void **))
{
	struct CMUnitTest *t;
	size_t i;
	int rc;

	t = calloc(n, sizeof(*t));
	assert_non_null(t);
	for (i = 0; i < n; i++) {
		const char *row = (const char *)rows + i * rowsz;

		t[i].name = *(const char *const *)row;	/* name is first */
		t[i].test_func = fn;
		t[i].initial_state = (void *)(uintptr_t)row;
	}
	rc = _cmocka_run_group_tests(group, t, n, NULL, NULL);
	free(t);
	return rc;
}

#endif /* DANESTS_TEST_TABLE_H */
