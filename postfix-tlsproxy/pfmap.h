/*
 * pfmap.h - the wire format and answers of danests-postfix(8)
 *
 * Pure functions over bytes, shared by the daemon, its unit tests and the
 * fuzz target: netstring framing, the socketmap request "NAME KEY", the
 * normalisation of Postfix next-hop keys, and the mapping of a core
 * decision onto one smtp_tls_policy_maps answer.
 */
#ifndef PFMAP_H
#define PFMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "danests.h"

#define PFMAP_REQUEST_MAX	1024	/* netstring payload cap */
#define PFMAP_NAME_MAX		64	/* map name incl. NUL */
#define PFMAP_KEY_MAX		300	/* raw key incl. NUL */
#define PFMAP_DOMAIN_MAX	256	/* normalised domain incl. NUL */
#define PFMAP_REPLY_MAX		16384	/* reply payload cap (Postfix: 100000) */

/* pfmap_ns_parse results */
enum pfmap_ns {
	PFMAP_NS_OK = 0,	/* one netstring: *data, *dlen, *used set */
	PFMAP_NS_MORE,		/* incomplete: read more bytes */
	PFMAP_NS_BAD,		/* malformed or over max: *why set */
};

/* pfmap_ns_parse - find one netstring "LEN:DATA," at the start of buf. */
enum pfmap_ns pfmap_ns_parse(const char *buf, size_t len, size_t max,
    const char **data, size_t *dlen, size_t *used, const char **why);

/* pfmap_ns_format - write data as a netstring into out; returns the
 * length written (no NUL is counted), or 0 when out is too small. */
size_t pfmap_ns_format(char *out, size_t outlen, const char *data,
    size_t dlen);

/* pfmap_request_parse - split a socketmap request "NAME KEY" (Postfix
 * socketmap_table(5)).  DANESTS_OK with name and key copied;
 * DANESTS_PERM with *why for a malformed request. */
danests_status pfmap_request_parse(const char *data, size_t len,
    char name[PFMAP_NAME_MAX], char key[PFMAP_KEY_MAX], const char **why);

/* pfmap_key_normalize - a Postfix next-hop key to a domain: strip
 * "[...]", ":port" and one trailing dot, lower-case.  DANESTS_OK with the
 * domain in out; DANESTS_NOTFOUND for keys that can have no policy (a
 * parent-domain key with a leading dot, an IP literal, a name that is not
 * a valid domain); why says which. */
danests_status pfmap_key_normalize(const char *key,
    char out[PFMAP_DOMAIN_MAX], const char **why);

/* A profile, selected by the socketmap name, says which answers a Postfix
 * version accepts. */
struct pfmap_profile {
	char name[PFMAP_NAME_MAX];
	bool strict_testing;	/* MTA-STS testing -> secure, not NOTFOUND */
	bool tlsrpt;		/* Postfix >= 3.10 TLSRPT attributes */
};

/* pfmap_answer - the reply payload (e.g. "OK dane-only", "NOTFOUND ",
 * "TEMP reason") for a decision under a profile; never weaker than the
 * decision (see danests-postfix(8), ANSWERS).  Returns the status the
 * payload starts with.  out must hold PFMAP_REPLY_MAX bytes. */
danests_status pfmap_answer(const struct danests_decision *d,
    const struct pfmap_profile *p, char *out, size_t outlen);

/* pfmap_reply - "OK value", "NOTFOUND ", "TEMP why", "PERM why" into out,
 * with newlines and other control bytes of why replaced. */
void pfmap_reply(danests_status st, const char *text, char *out,
    size_t outlen);

#endif /* PFMAP_H */
