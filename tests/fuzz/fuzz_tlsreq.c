/*
 * fuzz_tlsreq.c - libFuzzer target: message bytes as danests-relay scans
 * them for "TLS-Required: No" (opensmtpd/tlsreq.c).  The first byte sets
 * the size of the pieces the rest is fed in; fed whole or in pieces, the
 * verdict must be the same.
 */
#include <stdint.h>
#include <stdlib.h>

#include "tlsreq.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct tlsreq whole, parts;
	const char *p;
	size_t step, off, k;

	if (size < 1)
		return 0;
	step = (size_t)data[0] % 16 + 1;
	p = (const char *)data + 1;
	size--;
	tlsreq_init(&whole);
	tlsreq_feed(&whole, p, size);
	tlsreq_init(&parts);
	for (off = 0; off < size; off += k) {
		k = size - off < step ? size - off : step;
		tlsreq_feed(&parts, p + off, k);
	}
	if (tlsreq_no(&whole) != tlsreq_no(&parts))
		abort();
	return 0;
}
