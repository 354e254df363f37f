/*
 * test_report_json.c - the RFC 8460 4.4 report of one (day, domain):
 * every member checked by name, type and value; optional members left
 * out when unknown; empty arrays left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <jansson.h>

#include "danests-internal.h"
#include "danests-report.h"

/* load - the JSON text as an object, checking it parses strictly */
static json_t *
load(const char *s)
{
	json_error_t e;
	json_t *o;

	assert_non_null(s);
	o = json_loads(s, JSON_REJECT_DUPLICATES, &e);
	if (o == NULL)
		fail_msg("json: %s: %s", e.text, s);
	assert_true(json_is_object(o));
	return o;
}

static const char *
str(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_string(v))
		fail_msg("member %s is not a string", name);
	return json_string_value(v);
}

static json_int_t
num(json_t *o, const char *name)
{
	json_t *v = json_object_get(o, name);

	if (!json_is_integer(v))
		fail_msg("member %s is not an integer", name);
	return json_integer_value(v);
}

static void
lines_eq(json_t *a, const char *const *want, size_t n)
{
	size_t i;

	assert_true(json_is_array(a));
	assert_int_equal(json_array_size(a), n);
	for (i = 0; i < n; i++)
		assert_string_equal(json_string_value(json_array_get(a, i)),
		    want[i]);
}

static void
test_full(void **state)
{
	static const char *const pstr[] = { "version: STSv1", "mode: testing",
	    "mx: mx1.example.com", "mx: *.example.net", "max_age: 604800" };
	static const char *const mx[] = { "mx1.example.com", "*.example.net" };
	struct danests_rpt_detail det[2];
	struct danests_rpt_policy pol[2];
	struct danests_rpt_day day;
	struct danests_report_config rc;
	json_t *o, *dr, *ps, *p, *pp, *sum, *fd, *d;
	char *s;

	(void)state;
	memset(det, 0, sizeof(det));
	det[0].result_type = DANESTS_RT_STS_WEBPKI_INVALID;
	det[0].sending_mta_ip = "198.51.100.1";
	det[0].receiving_mx_hostname = "mx1.example.com";
	det[0].receiving_mx_helo = "helo.example.com";
	det[0].receiving_ip = "192.0.2.7";
	det[0].additional_info = "unable to get local issuer certificate";
	det[0].count = 12;
	det[1].result_type = DANESTS_RT_STARTTLS_NOT_SUPPORTED;
	det[1].sending_mta_ip = "";
	det[1].receiving_mx_hostname = "mx2.example.net";
	det[1].receiving_mx_helo = "";
	det[1].receiving_ip = "";
	det[1].additional_info = "";
	det[1].count = 1;
	memset(pol, 0, sizeof(pol));
	pol[0].policy_type = DANESTS_RPT_STS;
	pol[0].policy_string = "version: STSv1\nmode: testing\n"
	    "mx: mx1.example.com\nmx: *.example.net\nmax_age: 604800";
	pol[0].mx_host = "mx1.example.com\n*.example.net";
	pol[0].success = 100;
	pol[0].failure = 14;	/* 1 past the cap: summary only */
	pol[0].ndetails = 2;
	pol[0].details = det;
	pol[1].policy_type = DANESTS_RPT_NO_POLICY;
	pol[1].policy_string = "";
	pol[1].mx_host = "";
	pol[1].success = 3;
	memset(&day, 0, sizeof(day));
	strcpy(day.day, "2026-11-28");
	day.domain = "example.com";
	day.npolicies = 2;
	day.policies = pol;
	memset(&rc, 0, sizeof(rc));
	rc.organization = "Example Mail";
	rc.contact = "mailto:postmaster@sender.example";
	rc.from = "tlsrpt@sender.example";
	rc.submitter = "sender.example";

	s = danests_report_json(&day, &rc, "2026-11-28.example.com@"
	    "sender.example");
	o = load(s);
	free(s);
	assert_int_equal(json_object_size(o), 5);
	assert_string_equal(str(o, "organization-name"), "Example Mail");
	assert_string_equal(str(o, "contact-info"),
	    "mailto:postmaster@sender.example");
	assert_string_equal(str(o, "report-id"),
	    "2026-11-28.example.com@sender.example");
	dr = json_object_get(o, "date-range");
	assert_true(json_is_object(dr));
	assert_int_equal(json_object_size(dr), 2);
	assert_string_equal(str(dr, "start-datetime"), "2026-11-28T00:00:00Z");
	assert_string_equal(str(dr, "end-datetime"), "2026-11-28T23:59:59Z");
	ps = json_object_get(o, "policies");
	assert_true(json_is_array(ps));
	assert_int_equal(json_array_size(ps), 2);

	p = json_array_get(ps, 0);
	assert_int_equal(json_object_size(p), 3);
	pp = json_object_get(p, "policy");
	assert_int_equal(json_object_size(pp), 4);
	assert_string_equal(str(pp, "policy-type"), "sts");
	lines_eq(json_object_get(pp, "policy-string"), pstr, 5);
	assert_string_equal(str(pp, "policy-domain"), "example.com");
	lines_eq(json_object_get(pp, "mx-host"), mx, 2);
	sum = json_object_get(p, "summary");
	assert_int_equal(json_object_size(sum), 2);
	assert_int_equal(num(sum, "total-successful-session-count"), 100);
	assert_int_equal(num(sum, "total-failure-session-count"), 14);
	fd = json_object_get(p, "failure-details");
	assert_true(json_is_array(fd));
	assert_int_equal(json_array_size(fd), 2);
	d = json_array_get(fd, 0);
	assert_int_equal(json_object_size(d), 7);
	assert_string_equal(str(d, "result-type"), "sts-webpki-invalid");
	assert_string_equal(str(d, "sending-mta-ip"), "198.51.100.1");
	assert_string_equal(str(d, "receiving-mx-hostname"),
	    "mx1.example.com");
	assert_string_equal(str(d, "receiving-mx-helo"), "helo.example.com");
	assert_string_equal(str(d, "receiving-ip"), "192.0.2.7");
	assert_int_equal(num(d, "failed-session-count"), 12);
	assert_string_equal(str(d, "failure-reason-code"),
	    "unable to get local issuer certificate");
	d = json_array_get(fd, 1);
	assert_int_equal(json_object_size(d), 3);	/* unknowns left out */
	assert_string_equal(str(d, "result-type"), "starttls-not-supported");
	assert_string_equal(str(d, "receiving-mx-hostname"),
	    "mx2.example.net");
	assert_int_equal(num(d, "failed-session-count"), 1);

	p = json_array_get(ps, 1);
	assert_int_equal(json_object_size(p), 2);	/* no failure-details */
	pp = json_object_get(p, "policy");
	assert_int_equal(json_object_size(pp), 2);	/* no strings */
	assert_string_equal(str(pp, "policy-type"), "no-policy-found");
	assert_string_equal(str(pp, "policy-domain"), "example.com");
	sum = json_object_get(p, "summary");
	assert_int_equal(num(sum, "total-successful-session-count"), 3);
	assert_int_equal(num(sum, "total-failure-session-count"), 0);
	json_decref(o);
}

/* test_fallbacks - organization and contact from the submitter and the
 * from address when unset; a huge counter stays a valid integer */
static void
test_fallbacks(void **state)
{
	struct danests_rpt_policy pol;
	struct danests_rpt_day day;
	struct danests_report_config rc;
	json_t *o, *sum;
	char *s;

	(void)state;
	memset(&pol, 0, sizeof(pol));
	pol.policy_type = DANESTS_RPT_TLSA;
	pol.policy_string = "3 1 1 AB01";
	pol.mx_host = "mx.example.com";
	pol.success = UINT64_MAX;
	memset(&day, 0, sizeof(day));
	strcpy(day.day, "2026-01-01");
	day.domain = "example.com";
	day.npolicies = 1;
	day.policies = &pol;
	memset(&rc, 0, sizeof(rc));
	rc.from = "tlsrpt@sender.example";
	rc.submitter = "sender.example";
	s = danests_report_json(&day, &rc, "id");
	o = load(s);
	free(s);
	assert_string_equal(str(o, "organization-name"), "sender.example");
	assert_string_equal(str(o, "contact-info"), "tlsrpt@sender.example");
	sum = json_object_get(json_array_get(json_object_get(o, "policies"),
	    0), "summary");
	assert_int_equal(num(sum, "total-successful-session-count"),
	    INT64_MAX);
	json_decref(o);
	/* no policies: an empty array, still a report */
	day.npolicies = 0;
	s = danests_report_json(&day, NULL, "id");
	o = load(s);
	free(s);
	assert_int_equal(json_array_size(json_object_get(o, "policies")), 0);
	json_decref(o);
	/* a bad day is refused */
	day.day[4] = '\0';
	assert_null(danests_report_json(&day, &rc, "id"));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_full),
		cmocka_unit_test(test_fallbacks),
	};

	return cmocka_run_group_tests_name("report_json", tests, NULL, NULL);
}
