/*
 * fuzz_sts_policy.c - libFuzzer target for MTA-STS policy bodies (RFC 8461
 * 3.2) and MX pattern matching (4.1).  Besides memory errors it checks
 * that every accepted pattern is well formed and matches what it should.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check_pattern - invariants of one accepted mx pattern */
static void
check_pattern(const struct danests_sts_policy *p, const char *pat)
{
	char host[DANESTS_NAME_MAX + 2];
	size_t n = strlen(pat), i;

	if (n == 0 || n > 253 || pat[n - 1] == '.')
		abort();
	for (i = 0; i < n; i++)
		if (pat[i] >= 'A' && pat[i] <= 'Z')
			abort();
	if (pat[0] != '*') {
		/* An exact pattern matches itself and nothing below it. */
		if (!sts_policy_mx_match(pat, pat) || !sts_policy_match(p, pat))
			abort();
		return;
	}
	if (n < 3 || pat[1] != '.' || strchr(pat + 1, '*') != NULL)
		abort();
	/* "*.s" matches one label + s, never s itself (RFC 8461 4.1). */
	if (sts_policy_mx_match(pat, pat + 2) || sts_policy_mx_match(pat, pat))
		abort();
	host[0] = 'x';
	memcpy(host + 1, pat + 1, n);	/* ".s" and its NUL */
	if (!sts_policy_mx_match(pat, host))
		abort();
}

/* LLVMFuzzerTestOneInput - parse, copy and match one body */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct danests_sts_policy pol, cp;
	const char *why;
	char *s, *host;
	size_t i;

	if (sts_policy_parse((const char *)data, size, &pol, &why) ==
	    DANESTS_OK) {
		if (pol.mode != DANESTS_STS_NONE && pol.nmx == 0)
			abort();
		if (pol.max_age > DANESTS_STS_MAX_AGE_MAX)
			abort();
		for (i = 0; i < pol.nmx; i++)
			check_pattern(&pol, pol.mx[i]);
		if (sts_policy_copy(&pol, &cp) == DANESTS_OK) {
			if (cp.nmx != pol.nmx)
				abort();
			sts_policy_clear(&cp);
		}
		sts_policy_clear(&pol);
	} else if (pol.nmx != 0 || pol.mx != NULL)
		abort();

	/* The input as "pattern\0host" (or "pattern" and itself). */
	if ((s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	host = s + strlen(s);
	host = host < s + size ? host + 1 : s;
	(void)sts_policy_mx_match(s, host);
	free(s);
	return 0;
}
