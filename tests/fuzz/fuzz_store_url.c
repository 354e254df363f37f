/*
 * fuzz_store_url.c - libFuzzer target for the shared store's URLs
 * (store, store_read: redis://, rediss://, sentinel://), with the
 * invariants of an accepted URL: a host or one to five sentinels with a
 * master's name, ports 1-65535, a database 0-15, every string terminated
 * within its field, only printable ASCII.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* text_in - s is a terminated string of printable ASCII within len */
static void
text_in(const char *s, size_t len, bool empty_ok)
{
	size_t n = strnlen(s, len);

	if (n == len || (n == 0 && !empty_ok))
		abort();
	while (n-- > 0)
		if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f)
			abort();
}

/* LLVMFuzzerTestOneInput - one URL */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct store_url u;
	char why[256], *s;
	unsigned i;

	if (size > STORE_URL_MAX || (s = malloc(size + 1)) == NULL)
		return 0;
	memcpy(s, data, size);
	s[size] = '\0';
	why[0] = '\0';
	if (store_url_parse(s, &u, why, sizeof(why)) != DANESTS_OK) {
		if (why[0] == '\0')
			abort();	/* a refusal says why */
		free(s);
		return 0;
	}
	text_in(u.password, sizeof(u.password), true);
	if (u.db > 15 || u.port == 0 || u.port > 65535 ||
	    u.nsent > STORE_SENTINELS_MAX)
		abort();
	if (u.nsent == 0) {
		text_in(u.host, sizeof(u.host), false);
		if (u.master[0] != '\0')
			abort();
	} else {
		text_in(u.master, sizeof(u.master), false);
		if (u.host[0] != '\0' || u.tls)
			abort();
		for (i = 0; i < u.nsent; i++) {
			text_in(u.sent[i].host, sizeof(u.sent[i].host), false);
			if (u.sent[i].port == 0 || u.sent[i].port > 65535)
				abort();
		}
	}
	free(s);
	return 0;
}
