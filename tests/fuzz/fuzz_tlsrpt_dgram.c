/*
 * fuzz_tlsrpt_dgram.c - libFuzzer target for the collector of
 * danests-postfix: the input is one datagram on its tlsrpt_socket, parsed
 * as the daemon does (postfix-tlsproxy/tlsrpt_dgram.c).  Every result
 * passed on must satisfy what danests_report_record requires.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "tlsrpt_dgram.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* field_ok - NULL, or non-empty, capped and free of control characters */
static void
field_ok(const char *s, size_t max)
{
	size_t n;

	if (s == NULL)
		return;
	n = strlen(s);
	if (n == 0 || n > max)
		abort();
	for (; *s != '\0'; s++)
		if ((unsigned char)*s < 0x20 && *s != '\n')
			abort();
}

/* check - a tlsrpt_dgram_fn that checks each result */
static danests_status
check(void *arg, const struct danests_rpt_result *r, char *why,
    size_t whylen)
{
	size_t *n = arg;

	(void)why;
	(void)whylen;
	if (r->policy_domain == NULL || *r->policy_domain == '\0' ||
	    (r->policy_type != DANESTS_RPT_TLSA &&
	    r->policy_type != DANESTS_RPT_STS &&
	    r->policy_type != DANESTS_RPT_NO_POLICY))
		abort();
	if (r->policy_type == DANESTS_RPT_NO_POLICY &&
	    (r->policy_string != NULL || r->mx_host != NULL))
		abort();
	if (r->policy_type != DANESTS_RPT_NO_POLICY &&
	    r->policy_string == NULL)
		abort();
	if (r->success != (r->result_type == DANESTS_RT_NONE))
		abort();
	if (!r->success && danests_result_type_name(r->result_type) == NULL)
		abort();
	field_ok(r->policy_domain, DANESTS_RPT_FIELD_MAX);
	field_ok(r->policy_string, DANESTS_RPT_STRING_MAX);
	field_ok(r->mx_host, DANESTS_RPT_STRING_MAX);
	field_ok(r->sending_mta_ip, DANESTS_RPT_FIELD_MAX);
	field_ok(r->receiving_mx_hostname, DANESTS_RPT_FIELD_MAX);
	field_ok(r->receiving_mx_helo, DANESTS_RPT_FIELD_MAX);
	field_ok(r->receiving_ip, DANESTS_RPT_FIELD_MAX);
	field_ok(r->additional_info, DANESTS_RPT_FIELD_MAX);
	(*n)++;
	return DANESTS_OK;
}

/* LLVMFuzzerTestOneInput - one datagram */
int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct tlsrpt_dgram_info info;
	char why[256];
	size_t n = 0;

	why[0] = '\0';
	switch (tlsrpt_dgram_parse(data, size, check, &n, &info, why,
	    sizeof(why))) {
	case DANESTS_OK:
		if (n == 0 || n != info.sessions || n > TLSRPT_DGRAM_POLICIES)
			abort();
		break;
	case DANESTS_PERM:
		if (n != 0 || why[0] == '\0')
			abort();
		break;
	case DANESTS_TEMP:	/* out of memory */
		break;
	default:
		abort();
	}
	return 0;
}
