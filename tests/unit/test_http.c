/*
 * test_http.c - the metrics listener's request reader (core/daemon/http.c,
 * dmn_http_parse): a table of good and bad requests, each with the status
 * it must get; every complete request also read byte by byte, to check
 * that no prefix of it is answered early.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "daemon.h"
#include "table.h"

struct row {
	const char *name;
	const char *req;
	int want;		/* 0: incomplete */
	bool head;
};

#define HOST "Host: 127.0.0.1:9100\r\n"

static const struct row rows[] = {
	{ "get 1.1", "GET /metrics HTTP/1.1\r\n" HOST "\r\n", 200, false },
	{ "get 1.0 no host", "GET /metrics HTTP/1.0\r\n\r\n", 200, false },
	{ "get 1.0 host", "GET /metrics HTTP/1.0\r\n" HOST "\r\n", 200, false },
	{ "head", "HEAD /metrics HTTP/1.1\r\n" HOST "\r\n", 200, true },
	{ "query", "GET /metrics?x=1 HTTP/1.1\r\n" HOST "\r\n", 200, false },
	{ "prometheus", "GET /metrics HTTP/1.1\r\nHost: localhost:9100\r\n"
	    "User-Agent: Prometheus/2.45.3\r\nAccept: application/openmetrics-"
	    "text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.2,*/*;"
	    "q=0.1\r\nAccept-Encoding: gzip\r\nX-Prometheus-Scrape-Timeout-"
	    "Seconds: 10\r\n\r\n", 200, false },
	{ "ows value", "GET /metrics HTTP/1.1\r\nHost:\t h \t\r\n\r\n", 200,
	    false },
	{ "empty value", "GET /metrics HTTP/1.1\r\n" HOST "X-E:\r\n\r\n", 200,
	    false },
	{ "content-length 0", "GET /metrics HTTP/1.1\r\n" HOST
	    "Content-Length: 0\r\n\r\n", 200, false },
	{ "obs-text", "GET /metrics HTTP/1.1\r\n" HOST "X: \xe9t\xe9\r\n\r\n",
	    200, false },
	{ "other path", "GET / HTTP/1.1\r\n" HOST "\r\n", 404, false },
	{ "prefix path", "GET /metricsx HTTP/1.1\r\n" HOST "\r\n", 404, false },
	{ "path prefix", "GET /metric HTTP/1.1\r\n" HOST "\r\n", 404, false },
	{ "absolute form", "GET http://h/metrics HTTP/1.1\r\n" HOST "\r\n",
	    404, false },
	{ "head other path", "HEAD /x HTTP/1.0\r\n\r\n", 404, false },
	{ "head other version", "HEAD /metrics HTTP/2.0\r\n\r\n", 505, false },
	{ "post", "POST /metrics HTTP/1.1\r\n" HOST "\r\n", 405, false },
	{ "lower get", "get /metrics HTTP/1.1\r\n" HOST "\r\n", 405, false },
	{ "options star", "OPTIONS * HTTP/1.1\r\n" HOST "\r\n", 405, false },
	{ "http 2", "GET /metrics HTTP/2.0\r\n" HOST "\r\n", 505, false },
	{ "http 0.9", "GET /metrics HTTP/0.9\r\n\r\n", 505, false },
	{ "http 1.2", "GET /metrics HTTP/1.2\r\n\r\n", 505, false },
	{ "no host 1.1", "GET /metrics HTTP/1.1\r\n\r\n", 400, false },
	{ "two hosts", "GET /metrics HTTP/1.1\r\n" HOST HOST "\r\n", 400,
	    false },
	{ "two hosts 1.0", "GET /metrics HTTP/1.0\r\n" HOST HOST "\r\n", 400,
	    false },
	{ "bare lf", "GET /metrics HTTP/1.1\n" HOST "\n", 400, false },
	{ "bare lf header", "GET /metrics HTTP/1.1\r\n" HOST "X: y\n\r\n\r\n",
	    400, false },
	{ "bare lf early", "GET /metrics HTTP/1.1\n", 400, false },
	{ "bare cr", "GET /metrics HTTP/1.1\r" HOST "\r\n\r\n", 400, false },
	{ "nul early", "GET /met\0rics", 400, false },
	{ "nul header", "GET /metrics HTTP/1.1\r\n" HOST "X: a\0b\r\n\r\n",
	    400, false },
	{ "ctl header", "GET /metrics HTTP/1.1\r\n" HOST "X: a\x01" "b\r\n\r\n",
	    400, false },
	{ "del header", "GET /metrics HTTP/1.1\r\n" HOST "X: a\x7f\r\n\r\n",
	    400, false },
	{ "folding", "GET /metrics HTTP/1.1\r\n" HOST "X: a\r\n b\r\n\r\n",
	    400, false },
	{ "space before colon", "GET /metrics HTTP/1.1\r\nHost : h\r\n\r\n",
	    400, false },
	{ "no colon", "GET /metrics HTTP/1.1\r\n" HOST "Xy\r\n\r\n", 400,
	    false },
	{ "empty name", "GET /metrics HTTP/1.1\r\n" HOST ": y\r\n\r\n", 400,
	    false },
	{ "content-length", "GET /metrics HTTP/1.1\r\n" HOST
	    "Content-Length: 5\r\n\r\nhello", 400, false },
	{ "content-length empty", "GET /metrics HTTP/1.1\r\n" HOST
	    "Content-Length: \r\n\r\n", 400, false },
	{ "chunked", "GET /metrics HTTP/1.1\r\n" HOST
	    "Transfer-Encoding: chunked\r\n\r\n", 400, false },
	{ "leading empty line", "\r\nGET /metrics HTTP/1.1\r\n" HOST "\r\n",
	    400, false },
	{ "two spaces", "GET  /metrics HTTP/1.1\r\n" HOST "\r\n", 400, false },
	{ "tab separator", "GET\t/metrics HTTP/1.1\r\n" HOST "\r\n", 400,
	    false },
	{ "no version", "GET /metrics\r\n\r\n", 400, false },
	{ "lower version", "GET /metrics http/1.1\r\n" HOST "\r\n", 400,
	    false },
	{ "long version", "GET /metrics HTTP/1.10\r\n" HOST "\r\n", 400,
	    false },
	{ "trailing space", "GET /metrics HTTP/1.1 \r\n" HOST "\r\n", 400,
	    false },
	{ "long method", "GETGETGETGETGETGE /metrics HTTP/1.1\r\n" HOST "\r\n",
	    400, false },
	{ "space in target", "GET /met rics HTTP/1.1\r\n" HOST "\r\n", 400,
	    false },
	{ "utf-8 target", "GET /m\xc3\xa9trics HTTP/1.1\r\n" HOST "\r\n", 400,
	    false },
	{ "empty", "", 0, false },
	{ "partial line", "GET /metrics HTTP/1.1\r\n", 0, false },
	{ "partial headers", "GET /metrics HTTP/1.1\r\n" HOST, 0, false },
	{ "partial end", "GET /metrics HTTP/1.1\r\n" HOST "\r", 0, false },
};

/* test_row - the whole request, then every prefix of it */
static void
test_row(void **state)
{
	const struct row *r = *state;
	size_t len = strlen(r->req), i;
	bool head;
	int got;

	/* the NUL rows: their length goes to the last character written */
	if (strcmp(r->name, "nul early") == 0)
		len = 13;
	else if (strcmp(r->name, "nul header") == 0)
		len = strlen(r->req) + 1 + strlen(r->req + strlen(r->req) + 1);
	got = dmn_http_parse(r->req, len, "/metrics", &head);
	assert_int_equal(got, r->want);
	/* head says HEAD only of a request answered 200 */
	assert_int_equal(head, got == 200 && r->head);
	/* A well-formed request is never answered before its empty line;
	 * a malformed one may be refused early, never accepted. */
	for (i = 0; i < len; i++) {
		got = dmn_http_parse(r->req, i, "/metrics", &head);
		if (r->want == 200 || r->want == 404 || r->want == 405 ||
		    r->want == 505 || r->want == 0)
			assert_int_equal(got, 0);
		else
			assert_true(got == 0 || got == r->want);
	}
}

/* test_caps - 8 KiB without the end of the header is refused (431);
 * a request that ends exactly at the cap is read */
static void
test_caps(void **state)
{
	static char b[DMN_HTTP_REQ_MAX];
	const char *line = "GET /metrics HTTP/1.1\r\n" HOST "X: ";
	size_t n = strlen(line);
	bool head;

	(void)state;
	memcpy(b, line, n);
	memset(b + n, 'a', sizeof(b) - n);
	assert_int_equal(dmn_http_parse(b, sizeof(b) - 1, "/metrics", &head),
	    0);
	assert_int_equal(dmn_http_parse(b, sizeof(b), "/metrics", &head),
	    431);
	memcpy(b + sizeof(b) - 4, "\r\n\r\n", 4);
	assert_int_equal(dmn_http_parse(b, sizeof(b), "/metrics", &head),
	    200);
}

/* test_loopback - which listen addresses are loopback ones */
static void
test_loopback(void **state)
{
	static const struct {
		const char *spec;
		bool loop;
	} t[] = {
		{ "inet:127.0.0.1:9100", true },
		{ "inet:127.3.2.1:9100", true },
		{ "inet:[::1]:9100", true },
		{ "inet:0.0.0.0:9100", false },
		{ "inet:[::]:9100", false },
		{ "inet:192.0.2.1:9100", false },
		{ "inet:[::ffff:127.0.0.1]:9100", false },
	};
	struct dmn_listen l;
	char why[128];
	size_t i;

	(void)state;
	for (i = 0; i < NROWS(t); i++) {
		assert_true(dmn_listen_parse(t[i].spec, &l, why, sizeof(why)));
		if (dmn_http_loopback(&l) != t[i].loop)
			fail_msg("%s", t[i].spec);
	}
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_caps),
		cmocka_unit_test(test_loopback),
	};
	int rc;

	rc = run_table("dmn_http_parse", rows, NROWS(rows), sizeof(rows[0]),
	    test_row);
	return rc | cmocka_run_group_tests(tests, NULL, NULL);
}
