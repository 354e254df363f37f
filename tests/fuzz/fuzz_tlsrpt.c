/*
 * fuzz_tlsrpt.c - libFuzzer target for the _smtp._tls TXT record (RFC 8460
 * 3): the input is the record's text; an accepted record keeps 1 to
 * DANESTS_RPT_RUA_MAX URIs, each terminated, shorter than its array,
 * mailto: or https:, of visible ASCII without "," ";" "!"; a refused one
 * keeps none.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "danests-internal.h"
#include "danests-report.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - parse one record and check what was kept */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct danests_tlsrpt_record r;
	char why[DANESTS_WHY_MAX];
	danests_status st;
	size_t i, j, n;

	st = danests_tlsrpt_parse((const char *)data, size, &r, why,
	    sizeof(why));
	if (st != DANESTS_OK) {
		if (r.nrua != 0 || (st != DANESTS_NOTFOUND &&
		    st != DANESTS_PERM) || why[0] == '\0')
			abort();
		return 0;
	}
	if (r.nrua == 0 || r.nrua > DANESTS_RPT_RUA_MAX)
		abort();
	for (i = 0; i < r.nrua; i++) {
		if ((n = strnlen(r.rua[i], sizeof(r.rua[i]))) ==
		    sizeof(r.rua[i]))
			abort();
		if (strncasecmp(r.rua[i], "mailto:", 7) != 0 &&
		    strncasecmp(r.rua[i], "https://", 8) != 0)
			abort();
		for (j = 0; j < n; j++)
			if (r.rua[i][j] < 0x21 || r.rua[i][j] > 0x7e ||
			    strchr(",;!", r.rua[i][j]) != NULL)
				abort();
		/* the record starts with the version, as 3 requires */
		if (size < 10 || memcmp(data, "v=TLSRPTv1", 10) != 0)
			abort();
	}
	return 0;
}
