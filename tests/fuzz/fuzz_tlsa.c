/*
 * fuzz_tlsa.c - libFuzzer target for TLSA RDATA (RFC 6698 2.1): the input
 * is one RDATA.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - parse one TLSA RDATA */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct danests_tlsa t;
	const char *why = NULL;
	enum tlsa_check rc;

	memset(&t, 0, sizeof(t));
	rc = tlsa_parse(data, size, &t, &why);
	switch (rc) {
	case TLSA_USABLE:
		/* Fields come from the first three octets, the rest is data. */
		if (size < 4 || t.usage != data[0] || t.selector != data[1] ||
		    t.mtype != data[2] || t.len != size - 3 ||
		    (t.len > 0 && (t.data == NULL ||
		    memcmp(t.data, data + 3, t.len) != 0)))
			abort();
		break;
	case TLSA_UNUSABLE:
	case TLSA_MALFORMED:
		if (why == NULL)
			abort();
		break;
	case TLSA_NOMEM:
		break;
	default:
		abort();
	}
	free(t.data);
	return 0;
}
