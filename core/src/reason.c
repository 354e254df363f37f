/*
 * reason.c - names of the public enums and the reason codes
 *
 * Reason codes are short, stable, lower-case strings: they appear in logs,
 * in `danests check --json` and in adapter replies.  Failure reasons map to
 * the result types of RFC 8460 4.3.
 */
#include "danests-internal.h"

#include <string.h>

const char R_DELIVER[] = "ok";
const char R_NULL_MX[] = "null-mx";
const char R_NXDOMAIN[] = "nxdomain";
const char R_DNSSEC_INVALID[] = "dnssec-invalid";
const char R_DNS_ERROR[] = "dns-error";
const char R_DNS_TIMEOUT[] = "dns-timeout";
const char R_NO_ADDRESS[] = "no-address";
const char R_NO_USABLE_HOST[] = "no-usable-host";
const char R_DANE[] = "dane-tlsa";
const char R_TLSA_UNUSABLE[] = "tlsa-unusable";
const char R_TLSA_INVALID[] = "tlsa-invalid";
const char R_NO_TLSA[] = "no-tlsa";
const char R_ADDR_INSECURE[] = "address-insecure";
const char R_TLSA_INSECURE[] = "tlsa-insecure";
const char R_STS_MX_MATCH[] = "sts-mx-match";
const char R_STS_MX_MISMATCH[] = "sts-mx-mismatch";
const char R_STS_TESTING[] = "sts-testing";
const char R_STS_NONE[] = "sts-none";
const char R_NO_POLICY[] = "no-policy";
const char R_CACHE_ERROR[] = "cache-error";
const char R_DECISION_TIMEOUT[] = "decision-timeout";

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

/* RFC 8460 4.3 result types for the reasons that are failures. */
static const struct {
	const char *reason;
	const char *type;
} result_types[] = {
	{ "dnssec-invalid", "dnssec-invalid" },
	{ "dns-error", "dnssec-invalid" },
	{ "dns-timeout", "dnssec-invalid" },
	{ "tlsa-invalid", "tlsa-invalid" },
	{ "dane-required", "dane-required" },
	{ "starttls-not-supported", "starttls-not-supported" },
	{ "certificate-host-mismatch", "certificate-host-mismatch" },
	{ "certificate-expired", "certificate-expired" },
	{ "certificate-not-trusted", "certificate-not-trusted" },
	{ "validation-failure", "validation-failure" },
	{ "sts-mx-mismatch", "validation-failure" },
	{ "sts-policy-fetch-error", "sts-policy-fetch-error" },
	{ "sts-policy-invalid", "sts-policy-invalid" },
	{ "sts-webpki-invalid", "sts-webpki-invalid" },
};

const char *
danests_reason_result_type(const char *reason)
{
	size_t i;

	if (reason == NULL)
		return NULL;
	for (i = 0; i < sizeof(result_types) / sizeof(result_types[0]); i++)
		if (strcmp(reason, result_types[i].reason) == 0)
			return result_types[i].type;
	return NULL;
}
