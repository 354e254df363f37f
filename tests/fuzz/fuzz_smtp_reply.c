/*
 * fuzz_smtp_reply.c - libFuzzer target: whatever an SMTP server sends,
 * parsed reply by reply as the client does, then the EHLO keywords.
 */
#include "danests-internal.h"

#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct smtp_reply r;
	unsigned long long lim;
	const char *why;
	size_t off = 0;
	long used;

	while (off < size) {
		used = smtp_reply_parse((const char *)data + off, size - off,
		    &r, &why);
		if (used <= 0)
			break;
		if (r.code < 200 || r.code > 559 || (size_t)used > size - off ||
		    strlen(r.text) != r.textlen || r.nlines == 0)
			abort();
		(void)smtp_ehlo_parse(&r, &lim);
		off += (size_t)used;
	}
	return 0;
}
