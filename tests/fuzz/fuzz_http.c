/*
 * fuzz_http.c - libFuzzer target for the metrics listener's request
 * reader (core/daemon/http.c): the input is what a client sent, read as
 * the daemon reads it, in pieces of growing length up to the cap.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "daemon.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* LLVMFuzzerTestOneInput - every prefix the daemon could read */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *b = (const char *)data;
	size_t len;
	bool head;
	int st;

	if (size > DMN_HTTP_REQ_MAX)
		size = DMN_HTTP_REQ_MAX;
	/* every prefix of a short input, the whole of a long one */
	for (len = size > 512 ? size : 0; len <= size; len++) {
		st = dmn_http_parse(b, len, "/metrics", &head);
		if (st != 0 && st != 200 && st != 400 && st != 404 &&
		    st != 405 && st != 431 && st != 505)
			abort();
		/* 431 only at the cap; head only on a 200 */
		if ((st == 431 && len < DMN_HTTP_REQ_MAX) || (head && st != 200))
			abort();
		if (st != 0)
			break;	/* the daemon stops reading here */
	}
	return 0;
}
