/*
 * fuzz_decision_json.c - libFuzzer target for decisions read back from the
 * shared cache (danests_decision_from_json): a corrupt or hostile cache
 * value must be refused, never crash; what is accepted must render and
 * read back to the same text.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - one JSON text */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct danests_decision *d = NULL, *d2 = NULL;
	char *text, *j1, *j2;

	if ((text = malloc(size + 1)) == NULL)
		return 0;
	memcpy(text, data, size);
	text[size] = '\0';
	if (danests_decision_from_json(text, &d) == DANESTS_OK) {
		if ((j1 = danests_decision_to_json(d)) == NULL)
			abort();
		if (danests_decision_from_json(j1, &d2) != DANESTS_OK ||
		    (j2 = danests_decision_to_json(d2)) == NULL)
			abort();
		if (strcmp(j1, j2) != 0)
			abort();
		free(j1);
		free(j2);
		danests_decision_free(d2);
		danests_decision_free(d);
	}
	free(text);
	return 0;
}
