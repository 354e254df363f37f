/*
 * reason.c - names of the public enums and the reason codes
 *
 * Reason codes are an enum (danests.h, DANESTS_REASONS) whose names are
 * short, stable, lower-case strings: they appear in logs, in `danests check
 * --json` and in adapter replies.  Failure reasons map to the result types
 * of RFC 8460 4.3 (DANESTS_RESULT_TYPES); both tables are built here from
 * those lists, so each name is written once.  The replies that refuse an
 * address in a domain that can only bounce are written once here too.
 */
#include "danests-internal.h"

#include <stdio.h>
#include <string.h>

/* One row per reason, indexed by danests_reason (DANESTS_REASONS). */
static const struct {
	const char *name;
	danests_result_type type;
} reasons[] = {
	[DANESTS_R_NONE] = { NULL, DANESTS_RT_NONE },
#define X(e, name, rt) [e] = { name, rt },
	DANESTS_REASONS(X)
#undef X
};

/* RFC 8460 4.3 result types, indexed by danests_result_type. */
static const char *const result_types[] = {
	[DANESTS_RT_NONE] = NULL,
#define X(e, name) [e] = name,
	DANESTS_RESULT_TYPES(X)
#undef X
};

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* danests_reason_name - name of a reason code, NULL for none */
const char *
danests_reason_name(danests_reason r)
{
	if ((size_t)r >= NELEM(reasons))
		return NULL;
	return reasons[r].name;
}

/* danests_reason_result_type - RFC 8460 result type of a failure reason */
danests_result_type
danests_reason_result_type(danests_reason r)
{
	if ((size_t)r >= NELEM(reasons))
		return DANESTS_RT_NONE;
	return reasons[r].type;
}

/* danests_result_type_name - the RFC 8460 4.3 spelling, NULL for none */
const char *
danests_result_type_name(danests_result_type t)
{
	if ((size_t)t >= NELEM(result_types))
		return NULL;
	return result_types[t];
}

/* reason_from_name - the reason code called name; false when there is
 * none (NULL and "" included) */
bool
reason_from_name(const char *name, danests_reason *out)
{
	size_t i;

	if (name == NULL)
		return false;
	for (i = 1; i < NELEM(reasons); i++)
		if (reasons[i].name != NULL && strcmp(name, reasons[i].name) ==
		    0) {
			*out = (danests_reason)i;
			return true;
		}
	return false;
}

const char *
danests_status_name(danests_status s)
{
	switch (s) {
	case DANESTS_OK: return "ok";
	case DANESTS_NOTFOUND: return "notfound";
	case DANESTS_TEMP: return "temp";
	case DANESTS_PERM: return "perm";
	}
	return "?";
}

const char *
danests_dnssec_name(danests_dnssec s)
{
	switch (s) {
	case DANESTS_SEC_SECURE: return "secure";
	case DANESTS_SEC_INSECURE: return "insecure";
	case DANESTS_SEC_BOGUS: return "bogus";
	case DANESTS_SEC_INDETERMINATE: return "indeterminate";
	}
	return "?";
}

const char *
danests_verdict_name(danests_verdict v)
{
	switch (v) {
	case DANESTS_DELIVER: return "deliver";
	case DANESTS_TEMPFAIL: return "tempfail";
	case DANESTS_PERMFAIL: return "permfail";
	}
	return "?";
}

const char *
danests_policy_name(danests_policy p)
{
	switch (p) {
	case DANESTS_POLICY_DANE: return "dane";
	case DANESTS_POLICY_ENCRYPT: return "encrypt";
	case DANESTS_POLICY_STS_ENFORCE: return "sts-enforce";
	case DANESTS_POLICY_STS_TESTING: return "sts-testing";
	case DANESTS_POLICY_MAY: return "may";
	case DANESTS_POLICY_SKIP: return "skip";
	}
	return "?";
}

const char *
danests_sts_mode_name(danests_sts_mode m)
{
	switch (m) {
	case DANESTS_STS_NONE: return "none";
	case DANESTS_STS_TESTING: return "testing";
	case DANESTS_STS_ENFORCE: return "enforce";
	}
	return "?";
}

/*
 * The replies of danests_refusal: RFC 7505 4.1 (a recipient in a null-MX
 * domain: 556, RFC 7504, with 5.1.10) and 4.2 (a sender in a null-MX
 * domain: 550 5.7.27); a domain that does not exist is RFC 3463 X.1.2
 * "bad destination system address" for a recipient and X.1.8 "bad
 * sender's system address" for a sender.
 */
static const struct {
	danests_reason reason;
	bool sender;
	const char *code;	/* basic and enhanced status codes */
	const char *what;	/* what the domain does */
} refusals[] = {
	{ DANESTS_R_NULL_MX, false, "556 5.1.10",
	    "does not accept mail (null MX)" },
	{ DANESTS_R_NXDOMAIN, false, "550 5.1.2", "does not exist" },
	{ DANESTS_R_NULL_MX, true, "550 5.7.27",
	    "does not accept mail (null MX)" },
	{ DANESTS_R_NXDOMAIN, true, "550 5.1.8", "does not exist" },
};

/* danests_refusal - see danests.h */
bool
danests_refusal(danests_verdict v, danests_reason r, bool sender,
    const char *domain, char *buf, size_t buflen)
{
	size_t i;

	if (v != DANESTS_PERMFAIL)
		return false;
	for (i = 0; i < NELEM(refusals); i++)
		if (refusals[i].reason == r && refusals[i].sender == sender) {
			snprintf(buf, buflen, "%s %s address rejected: domain "
			    "%s %s", refusals[i].code, sender ? "Sender" :
			    "Recipient", domain, refusals[i].what);
			return true;
		}
	return false;
}
