/*
 * fuzz_sts_txt.c - libFuzzer target for the _mta-sts TXT record: the input
 * is one TXT RDATA (joined, then parsed), the raw bytes as a record, and
 * the raw bytes split at LF as an RRset for sts_txt_select.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"

#define FUZZ_RRSET_MAX 8

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check_id - an accepted id is 1-32 alphanumerics (RFC 8461 3.1) */
static void
check_id(danests_status st, const char *id)
{
	size_t i, n = strlen(id);

	if (st != DANESTS_OK) {
		if (n != 0)
			abort();
		return;
	}
	if (n == 0 || n > DANESTS_STS_ID_MAX)
		abort();
	for (i = 0; i < n; i++)
		if (!((id[i] >= 'a' && id[i] <= 'z') ||
		    (id[i] >= 'A' && id[i] <= 'Z') ||
		    (id[i] >= '0' && id[i] <= '9')))
			abort();
}

/* LLVMFuzzerTestOneInput - one input, three views of it */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *txts[FUZZ_RRSET_MAX], *why, *p, *end, *nl;
	char id[DANESTS_STS_ID_MAX + 1];
	size_t lens[FUZZ_RRSET_MAX], n = 0, jlen;
	danests_status st;
	char *joined;

	if ((joined = txt_rdata_join(data, size, &jlen)) != NULL) {
		if (strlen(joined) != jlen)
			abort();
		st = sts_txt_parse(joined, jlen, id, &why);
		check_id(st, id);
		free(joined);
	}

	st = sts_txt_parse((const char *)data, size, id, &why);
	check_id(st, id);

	p = (const char *)data;
	end = p + size;
	while (p < end && n < FUZZ_RRSET_MAX) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		txts[n] = p;
		lens[n++] = (size_t)(nl - p);
		p = nl + 1;
	}
	st = sts_txt_select(txts, lens, n, id, &why);
	check_id(st, id);
	return 0;
}
