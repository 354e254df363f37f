/*
 * dns_mock.h - a resolver that answers from a table, for the unit tests
 * (built into the test-only library libdanests-test, never shipped)
 */
#ifndef DNS_MOCK_H
#define DNS_MOCK_H

#include "danests-internal.h"

struct dns_mock_entry {
	const char *name;
	uint16_t type;
	enum dns_rcode rcode;
	danests_dnssec sec;
	const char *cname;	/* final owner or NULL */
	/* records in presentation form of their RDATA:
	 * MX "10 mx.example", A "192.0.2.1", AAAA "2001:db8::1",
	 * TXT "v=STSv1; id=1" (one string), TLSA "3 1 1 <hex>" */
	const char *rdata[8];
};
danests_status dns_mock_new(struct event_base *base,
    const struct dns_mock_entry *table, size_t n, struct dns **out);

/* dns_mock_count - count every query the resolver is asked into *n
 * (the caller's counter must outlive the resolver) */
void dns_mock_count(struct dns *, size_t *n);

#endif /* DNS_MOCK_H */
