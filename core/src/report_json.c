/*
 * report_json.c - the JSON of one TLS report (RFC 8460 4.4)
 *
 *	{ "organization-name", "date-range": { "start-datetime",
 *	  "end-datetime" }, "contact-info", "report-id",
 *	  "policies": [ { "policy": { "policy-type", "policy-string" [],
 *	  "policy-domain", "mx-host" [] }, "summary": {
 *	  "total-successful-session-count", "total-failure-session-count" },
 *	  "failure-details": [ { "result-type", "sending-mta-ip",
 *	  "receiving-mx-hostname", "receiving-mx-helo", "receiving-ip",
 *	  "failed-session-count", "failure-reason-code" } ] } ] }
 *
 * The date range is the whole UTC day (4.4: the report covers one day).
 * Optional members that are not known ("") are left out, as are empty
 * arrays (policy-string and mx-host of no-policy-found, failure-details
 * of a policy without failures).
 */
#include "danests-internal.h"
#include "danests-report.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* count - a counter as a JSON integer (json_int_t is signed) */
static json_t *
count(uint64_t v)
{
	return json_integer(v > (uint64_t)INT64_MAX ? (json_int_t)INT64_MAX :
	    (json_int_t)v);
}

/* set_new - add a member; -1 when the value could not be made */
static int
set_new(json_t *o, const char *name, json_t *v)
{
	return v == NULL || json_object_set_new(o, name, v) != 0 ? -1 : 0;
}

/* set_opt - a string member, left out when "" or NULL */
static int
set_opt(json_t *o, const char *name, const char *s)
{
	if (s == NULL || *s == '\0')
		return 0;
	return set_new(o, name, json_string(s));
}

/* lines - "a\nb" as ["a", "b"]; NULL for "" (or out of memory) */
static json_t *
lines(const char *s)
{
	json_t *a;
	const char *nl;

	if (s == NULL || *s == '\0' || (a = json_array()) == NULL)
		return NULL;
	for (;;) {
		nl = strchr(s, '\n');
		if (json_array_append_new(a, nl ? json_stringn(s,
		    (size_t)(nl - s)) : json_string(s)) != 0) {
			json_decref(a);
			return NULL;
		}
		if (nl == NULL)
			return a;
		s = nl + 1;
	}
}

/* detail_json - one failure detail */
static json_t *
detail_json(const struct danests_rpt_detail *d)
{
	const char *rt = danests_result_type_name(d->result_type);
	json_t *o;

	if (rt == NULL || (o = json_object()) == NULL)
		return NULL;
	if (set_new(o, "result-type", json_string(rt)) < 0 ||
	    set_opt(o, "sending-mta-ip", d->sending_mta_ip) < 0 ||
	    set_opt(o, "receiving-mx-hostname", d->receiving_mx_hostname) < 0 ||
	    set_opt(o, "receiving-mx-helo", d->receiving_mx_helo) < 0 ||
	    set_opt(o, "receiving-ip", d->receiving_ip) < 0 ||
	    set_new(o, "failed-session-count", count(d->count)) < 0 ||
	    set_opt(o, "failure-reason-code", d->additional_info) < 0) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* policy_json - one entry of "policies" */
static json_t *
policy_json(const char *domain, const struct danests_rpt_policy *p)
{
	const char *type = danests_rpt_policy_type_name(p->policy_type);
	json_t *o, *pol, *sum, *fd = NULL, *a;
	size_t i;

	if (type == NULL || (o = json_object()) == NULL)
		return NULL;
	if ((pol = json_object()) == NULL || set_new(o, "policy", pol) < 0 ||
	    set_new(pol, "policy-type", json_string(type)) < 0)
		goto bad;
	if ((a = lines(p->policy_string)) != NULL &&
	    set_new(pol, "policy-string", a) < 0)
		goto bad;
	if (set_new(pol, "policy-domain", json_string(domain)) < 0)
		goto bad;
	if ((a = lines(p->mx_host)) != NULL && set_new(pol, "mx-host", a) < 0)
		goto bad;
	if ((sum = json_object()) == NULL || set_new(o, "summary", sum) < 0 ||
	    set_new(sum, "total-successful-session-count",
	    count(p->success)) < 0 ||
	    set_new(sum, "total-failure-session-count",
	    count(p->failure)) < 0)
		goto bad;
	if (p->ndetails > 0) {
		if ((fd = json_array()) == NULL ||
		    set_new(o, "failure-details", fd) < 0)
			goto bad;
		for (i = 0; i < p->ndetails; i++)
			if (json_array_append_new(fd,
			    detail_json(&p->details[i])) != 0)
				goto bad;
	}
	return o;
bad:
	json_decref(o);
	return NULL;
}

/* danests_report_json - see danests-report.h */
char *
danests_report_json(const struct danests_rpt_day *day,
    const struct danests_report_config *rc, const char *report_id)
{
	char start[32], end[32];
	const char *org = NULL, *contact = NULL;
	json_t *o, *range, *pols;
	char *s = NULL;
	size_t i;

	if (day == NULL || day->domain == NULL || strnlen(day->day,
	    sizeof(day->day)) != 10)
		return NULL;
	if (rc != NULL) {
		org = rc->organization ? rc->organization : rc->submitter;
		contact = rc->contact ? rc->contact : rc->from;
	}
	snprintf(start, sizeof(start), "%.10sT00:00:00Z", day->day);
	snprintf(end, sizeof(end), "%.10sT23:59:59Z", day->day);
	if ((o = json_object()) == NULL)
		return NULL;
	if (set_new(o, "organization-name", json_string(org ? org : "")) < 0 ||
	    (range = json_object()) == NULL ||
	    set_new(o, "date-range", range) < 0 ||
	    set_new(range, "start-datetime", json_string(start)) < 0 ||
	    set_new(range, "end-datetime", json_string(end)) < 0 ||
	    set_new(o, "contact-info", json_string(contact ? contact : "")) <
	    0 ||
	    set_new(o, "report-id", json_string(report_id ? report_id : "")) <
	    0 ||
	    (pols = json_array()) == NULL || set_new(o, "policies", pols) < 0)
		goto out;
	for (i = 0; i < day->npolicies; i++)
		if (json_array_append_new(pols, policy_json(day->domain,
		    &day->policies[i])) != 0)
			goto out;
	s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
out:
	json_decref(o);
	return s;
}

/* danests_report_id - see danests-report.h */
danests_status
danests_report_id(const struct danests_rpt_day *day,
    const struct danests_report_config *rc, char *buf, size_t buflen)
{
	const char *sub = rc != NULL ? rc->submitter : NULL;
	int n;

	if (day == NULL || day->domain == NULL || buf == NULL || buflen == 0)
		return DANESTS_PERM;
	n = snprintf(buf, buflen, "%.10s.%s%s%s", day->day, day->domain,
	    sub != NULL ? "@" : "", sub != NULL ? sub : "");
	if (n < 0 || (size_t)n >= buflen) {
		buf[0] = '\0';
		return DANESTS_PERM;
	}
	return DANESTS_OK;
}
