/*
 * fuzz_socketmap.c - libFuzzer target for the danests-postfix wire format:
 * the input is a byte stream from a socketmap client (netstrings holding
 * "NAME KEY" requests), parsed as the daemon does.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "pfmap.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - every request of one stream */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *buf = (const char *)data, *req, *why;
	char name[PFMAP_NAME_MAX], key[PFMAP_KEY_MAX];
	char domain[PFMAP_DOMAIN_MAX], out[PFMAP_REPLY_MAX + 16];
	size_t off = 0, dlen, used, n;

	while (off < size) {
		switch (pfmap_ns_parse(buf + off, size - off, PFMAP_REQUEST_MAX,
		    &req, &dlen, &used, &why)) {
		case PFMAP_NS_MORE:
			return 0;
		case PFMAP_NS_BAD:
			if (why == NULL)
				abort();
			return 0;
		case PFMAP_NS_OK:
			break;
		}
		/* the payload lies inside the input, under the cap */
		if (used == 0 || used > size - off || dlen > PFMAP_REQUEST_MAX ||
		    req < buf + off || req + dlen > buf + off + used)
			abort();
		off += used;
		if (pfmap_request_parse(req, dlen, name, key, &why) !=
		    DANESTS_OK) {
			if (why == NULL)
				abort();
			continue;
		}
		if (strlen(name) == 0 || strlen(key) == 0 ||
		    strchr(key, ' ') != NULL)
			abort();
		if (pfmap_key_normalize(key, domain, &why) == DANESTS_OK) {
			/* a normalised domain is lower case, without brackets,
			 * port or trailing dot */
			n = strlen(domain);
			if (n == 0 || domain[n - 1] == '.' ||
			    strpbrk(domain, "[]: ABCDEFGHIJKLMNOPQRSTUVWXYZ") !=
			    NULL)
				abort();
		}
		/* replies round-trip through the netstring parser */
		pfmap_reply(DANESTS_TEMP, key, out, PFMAP_REPLY_MAX);
		n = pfmap_ns_format(out + 0, sizeof(out), "x", 1);
		if (n != 4)
			abort();
	}
	return 0;
}
