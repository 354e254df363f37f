/*
 * tlsreq.h - RFC 8689 "TLS-Required: No" in danests-relay: finding the
 * header field in a message as it streams in, and what it does to a
 * decision.  Pure: no I/O, no state besides the scanner's.
 */
#ifndef DANESTS_TLSREQ_H
#define DANESTS_TLSREQ_H

#include "danests.h"

#include <stdbool.h>
#include <stddef.h>

/* RFC 5322 2.1.1: 998 characters per line; a longer TLS-Required line
 * is not "No". */
#define TLSREQ_LINE_MAX	1000
#define TLSREQ_VALUE_MAX	64	/* a folded value longer than this is
					 * not "No" either */

struct tlsreq {
	bool done;		/* the header section is over */
	bool no;		/* a "TLS-Required: No" field was seen */
	bool in_field;		/* the field being read is TLS-Required */
	bool vcut;		/* its value outgrew value[] */
	bool lcut;		/* the current line outgrew line[] */
	size_t len, vlen;
	char line[TLSREQ_LINE_MAX];
	char value[TLSREQ_VALUE_MAX];
};

/* tlsreq_init - ready for a new message */
void tlsreq_init(struct tlsreq *);

/* tlsreq_feed - the next bytes of the message in SMTP wire form (CRLF
 * line ends, dot-stuffed, without the final "."), in pieces of any size.
 * Only the header section (up to the first empty line, RFC 5322 2.1)
 * counts; field names are case-insensitive, values unfolded (RFC 5322
 * 2.2.3), "No" in any case with white space around it (RFC 8689 5). */
void tlsreq_feed(struct tlsreq *, const char *p, size_t n);

/* tlsreq_no - the message carries "TLS-Required: No" (the message has
 * been fed completely) */
bool tlsreq_no(struct tlsreq *);

/*
 * tlsreq_relax - RFC 8689 5 for a message with "TLS-Required: No": its
 * recipients' MTA-STS and DANE policies are ignored, so each MX host is
 * reached with the best TLS it offers (STARTTLS when offered, no
 * authentication required, the clear otherwise): dane, encrypt,
 * sts-enforce and sts-testing hosts become may, and hosts skipped for a
 * TLS policy (a TLSA or MTA-STS lookup that failed, an MX host outside
 * the MTA-STS policy) become may when they have addresses that DNSSEC
 * did not find bogus.  A domain that has no such host stays as decided:
 * a DNS failure that leaves no route still defers, a null MX or
 * NXDOMAIN still bounces.  True when d changed.
 */
bool tlsreq_relax(struct danests_decision *d);

#endif /* DANESTS_TLSREQ_H */
