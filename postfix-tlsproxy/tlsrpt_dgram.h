/*
 * tlsrpt_dgram.h - the datagrams of libtlsrpt, as Postfix >= 3.10 sends
 * them (smtp_tlsrpt_enable, smtp_tlsrpt_socket_name): one JSON object per
 * TLS negotiation attempt, parsed strictly into RFC 8460 results.
 *
 * Shared by danests-postfix (its tlsrpt_socket collector), the unit test
 * (tests/unit/test_tlsrpt_dgram.c) and the fuzz target
 * (tests/fuzz/fuzz_tlsrpt_dgram.c).
 */
#ifndef TLSRPT_DGRAM_H
#define TLSRPT_DGRAM_H

#include "danests.h"
#include "danests-report.h"

#include <stddef.h>

/* Larger datagrams are dropped unread.  libtlsrpt builds one datagram per
 * delivery attempt: a policy, its strings and one failure detail fit in a
 * few KiB; a TLSRPT policy string is capped at 4 KiB. */
#define TLSRPT_DGRAM_MAX	32768
/* Policies (sessions) per datagram; Postfix sends one. */
#define TLSRPT_DGRAM_POLICIES	8
/* Failure details per policy; Postfix sends at most one. */
#define TLSRPT_DGRAM_DETAILS	16

/* What one datagram held, besides the results passed to the callback. */
struct tlsrpt_dgram_info {
	size_t sessions;	/* results passed to the callback */
	size_t extra_details;	/* failure details after the first of a
				 * session: not recorded (one session, one
				 * result type) */
};

/* Called once per session of a well-formed datagram; a status other than
 * DANESTS_OK stops the walk and is returned. */
typedef danests_status tlsrpt_dgram_fn(void *arg,
    const struct danests_rpt_result *, char *why, size_t whylen);

/*
 * tlsrpt_dgram_parse - parse one datagram of len bytes.  The whole datagram
 * is checked before the first call of fn, so a malformed one records
 * nothing: DANESTS_PERM with why saying what is wrong.  Otherwise fn is
 * called once per policy, in order; DANESTS_OK, or the first status of fn
 * that was not DANESTS_OK.  The results are valid during the call only.
 * info may be NULL.
 */
danests_status tlsrpt_dgram_parse(const void *buf, size_t len,
    tlsrpt_dgram_fn *fn, void *arg, struct tlsrpt_dgram_info *info,
    char *why, size_t whylen);

#endif /* TLSRPT_DGRAM_H */
