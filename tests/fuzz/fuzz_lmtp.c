/*
 * fuzz_lmtp.c - libFuzzer target: LMTP command lines as danests-relay
 * parses them (opensmtpd/lmtp_parse.c), line by line.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lmtp.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct lmtp_cmd cmd;
	const char *p = (const char *)data, *end = p + size, *nl, *why;
	int rc;

	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		rc = lmtp_parse(p, (size_t)(nl - p), &cmd, &why);
		if (rc != 0 && (why == NULL || why[0] != '5'))
			abort();
		if (rc == 0 && (strlen(cmd.arg) > LMTP_LINE_MAX ||
		    (cmd.verb == LMTP_RCPT && *cmd.domain == '\0')))
			abort();
		p = nl + (nl < end);
	}
	return 0;
}
