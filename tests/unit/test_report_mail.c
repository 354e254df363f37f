/*
 * test_report_mail.c - a TLS report as mail (core/tool/report_mail.c) and
 * its delivery through sendmail (core/tool/report_deliver.c)
 *
 *  - the attachment's name (RFC 8460 5.3), refused parts;
 *  - addresses of mailto: URIs (RFC 6068), refused ones (header fields,
 *    several addresses, encoded line breaks, leading '-');
 *  - https rua URLs: host and port, refused ones;
 *  - gzip round trip through zlib;
 *  - the whole message: every header of RFC 8460 5.3 and RFC 8689, the
 *    multipart/report structure, the attachment decoding to the gzip,
 *    lines within RFC 5322 limits, no value able to inject a header;
 *  - report_sendmail: the exact argument vector and input, a failing
 *    sendmail, one that never ends (killed at the timeout).
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/time.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

#include "report_mail.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* 2026-11-28T00:00:00Z and 23:59:59Z */
#define BEGIN	1795824000
#define END	(BEGIN + 86399)

static void
filename_good(void **state)
{
	char buf[REPORT_FILENAME_MAX];

	(void)state;
	assert_int_equal(report_filename(buf, sizeof(buf), "mx.example.org",
	    "example.com", BEGIN, END, NULL), 0);
	assert_string_equal(buf,
	    "mx.example.org!example.com!1795824000!1795910399.json.gz");
	assert_int_equal(report_filename(buf, sizeof(buf), "mx.example.org",
	    "example.com", BEGIN, END, "abc123"), 0);
	assert_string_equal(buf,
	    "mx.example.org!example.com!1795824000!1795910399!abc123.json.gz");
}

static void
filename_refused(void **state)
{
	char buf[REPORT_FILENAME_MAX], small[20];

	(void)state;
	/* a '!' or a space would make the name ambiguous or unquotable */
	assert_int_equal(report_filename(buf, sizeof(buf), "a!b.test",
	    "example.com", BEGIN, END, NULL), -1);
	assert_int_equal(report_filename(buf, sizeof(buf), "mx.test",
	    "exa mple.com", BEGIN, END, NULL), -1);
	assert_int_equal(report_filename(buf, sizeof(buf), "mx.test",
	    "example.com\"", BEGIN, END, NULL), -1);
	assert_int_equal(report_filename(buf, sizeof(buf), "", "example.com",
	    BEGIN, END, NULL), -1);
	/* unique-id = 1*(ALPHA / DIGIT) */
	assert_int_equal(report_filename(buf, sizeof(buf), "mx.test",
	    "example.com", BEGIN, END, "a-b"), -1);
	assert_int_equal(report_filename(buf, sizeof(buf), "mx.test",
	    "example.com", BEGIN, END, ""), -1);
	/* the range runs forward */
	assert_int_equal(report_filename(buf, sizeof(buf), "mx.test",
	    "example.com", END, BEGIN, NULL), -1);
	/* never truncated */
	assert_int_equal(report_filename(small, sizeof(small), "mx.test",
	    "example.com", BEGIN, END, NULL), -1);
}

static void
mailto_table(void **state)
{
	static const struct {
		const char *uri, *addr;	/* addr NULL: refused */
	} t[] = {
		{ "mailto:tlsrpt@reports.test", "tlsrpt@reports.test" },
		{ "MAILTO:Rep.Orts@Example.COM", "Rep.Orts@Example.COM" },
		{ "mailto:tls%2Brpt@reports.test", "tls+rpt@reports.test" },
		{ "mailto:a+b_c@x-y.test", "a+b_c@x-y.test" },
		{ "mailto:tlsrpt@reports.test?subject=x", NULL },
		{ "mailto:a@x.test,b@y.test", NULL },
		{ "mailto:a%0d%0aBcc:%20evil@x.test", NULL },
		{ "mailto:a%0aX@x.test", NULL },
		{ "mailto:-oQ/tmp@x.test", NULL },
		{ "mailto:a b@x.test", NULL },
		{ "mailto:\"a\"@x.test", NULL },
		{ "mailto:a%40b@x.test", NULL },
		{ "mailto:a@[127.0.0.1]", NULL },
		{ "mailto:a@127.0.0.1", NULL },
		{ "mailto:a@-x.test", NULL },
		{ "mailto:a..b@x.test", NULL },
		{ "mailto:@x.test", NULL },
		{ "mailto:a@", NULL },
		{ "mailto:a@x.test%", NULL },
		{ "mailto:a@x.test%zz", NULL },
		{ "https://x.test/", NULL },
		{ "mailto:", NULL },
	};
	char out[REPORT_ADDR_MAX];
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(t); i++) {
		int rc = report_mailto_addr(t[i].uri, out, sizeof(out));

		if (t[i].addr == NULL) {
			if (rc != -1)
				fail_msg("accepted %s as %s", t[i].uri, out);
		} else {
			if (rc != 0)
				fail_msg("refused %s", t[i].uri);
			assert_string_equal(out, t[i].addr);
		}
	}
}

static void
url_table(void **state)
{
	static const struct {
		const char *url, *host;	/* host NULL: refused */
		unsigned port;
	} t[] = {
		{ "https://rua.reports.test/tlsrpt", "rua.reports.test", 443 },
		{ "HTTPS://Rua.Reports.Test/x?y=1", "Rua.Reports.Test", 443 },
		{ "https://h.test:8443/", "h.test", 8443 },
		{ "http://h.test/", NULL, 0 },
		{ "https://user:pw@h.test/", NULL, 0 },
		{ "https://h.test/#frag", NULL, 0 },
		{ "https://127.0.0.1/", NULL, 0 },
		{ "https://[::1]/", NULL, 0 },
		{ "https://h.test:0/", NULL, 0 },
		{ "https:///path", NULL, 0 },
		{ "mailto:a@h.test", NULL, 0 },
	};
	char host[256];
	unsigned port;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(t); i++) {
		int rc = report_url_host(t[i].url, host, sizeof(host), &port);

		if (t[i].host == NULL) {
			if (rc != -1)
				fail_msg("accepted %s", t[i].url);
		} else {
			if (rc != 0)
				fail_msg("refused %s", t[i].url);
			assert_string_equal(host, t[i].host);
			assert_int_equal(port, t[i].port);
		}
	}
}

/* gunzip - inflate a gzip member; malloc'ed, NUL-terminated */
static char *
gunzip(const unsigned char *gz, size_t len, size_t *outlen)
{
	z_stream z;
	size_t cap = 1 << 20;
	char *out = malloc(cap + 1);

	assert_non_null(out);
	memset(&z, 0, sizeof(z));
	assert_int_equal(inflateInit2(&z, 15 + 16), Z_OK);
	z.next_in = (Bytef *)(uintptr_t)gz;
	z.avail_in = (uInt)len;
	z.next_out = (Bytef *)out;
	z.avail_out = (uInt)cap;
	assert_int_equal(inflate(&z, Z_FINISH), Z_STREAM_END);
	*outlen = z.total_out;
	out[*outlen] = '\0';
	inflateEnd(&z);
	return out;
}

static const char sample_json[] =
    "{\"organization-name\":\"Example\",\"policies\":[]}";

static void
gzip_roundtrip(void **state)
{
	unsigned char *gz;
	size_t gzlen, n;
	char *back;

	(void)state;
	assert_int_equal(report_gzip(sample_json, strlen(sample_json), &gz,
	    &gzlen), 0);
	/* RFC 1952 2.3.1: ID1 ID2 CM=8 */
	assert_true(gzlen > 18);
	assert_int_equal(gz[0], 0x1f);
	assert_int_equal(gz[1], 0x8b);
	assert_int_equal(gz[2], 8);
	back = gunzip(gz, gzlen, &n);
	assert_int_equal(n, strlen(sample_json));
	assert_string_equal(back, sample_json);
	free(back);
	free(gz);
}

/* mail_sample - a filled struct report_mail over gz */
static struct report_mail
mail_sample(const unsigned char *gz, size_t gzlen)
{
	struct report_mail m;

	memset(&m, 0, sizeof(m));
	m.from = "tlsrpt-noreply@mx.example.org";
	m.rcpt = "tlsrpt@reports.test";
	m.submitter = "mx.example.org";
	m.domain = "dane-ee.test";
	m.organization = "Example Mail";
	m.contact = "postmaster@example.org";
	m.report_id = "2026-11-28.dane-ee.test@mx.example.org";
	m.day = "2026-11-28";
	m.begin = BEGIN;
	m.end = END;
	m.now = BEGIN + 86400 + 3723;	/* Sun, 29 Nov 2026 01:02:03 */
	m.unique = "tlsrpt.2026-11-28.1.2.3";
	m.gz = gz;
	m.gzlen = gzlen;
	return m;
}

/* header - the value of header name in the header block of msg (one
 * line), or "(missing)" */
static char *
header(const char *msg, const char *name)
{
	static char val[1024];
	static char missing[] = "(missing)";
	const char *p = msg, *e;
	size_t nl = strlen(name);

	while (*p != '\n' && *p != '\0') {
		e = strchr(p, '\n');
		assert_non_null(e);
		if (strncmp(p, name, nl) == 0 && p[nl] == ':' &&
		    p[nl + 1] == ' ') {
			snprintf(val, sizeof(val), "%.*s",
			    (int)(e - p - nl - 2), p + nl + 2);
			return val;
		}
		p = e + 1;
	}
	return missing;
}

/* b64val - one base64 digit, -1 for others */
static int
b64val(int c)
{
	const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	    "0123456789+/";
	const char *p = c ? strchr(tab, c) : NULL;

	return p ? (int)(p - tab) : -1;
}

static void
mail_whole(void **state)
{
	unsigned char *gz, *dec;
	struct report_mail m;
	size_t gzlen, len, n = 0, o = 0;
	char why[256], *msg, *p, *end, *line, *back;
	const char *q;
	unsigned bits = 0, acc = 0;
	int v;

	(void)state;
	assert_int_equal(report_gzip(sample_json, strlen(sample_json), &gz,
	    &gzlen), 0);
	m = mail_sample(gz, gzlen);
	msg = report_mail_build(&m, &len, why, sizeof(why));
	assert_non_null(msg);
	assert_int_equal(strlen(msg), len);
	assert_null(strchr(msg, '\r'));

	assert_string_equal(header(msg, "From"),
	    "tlsrpt-noreply@mx.example.org");
	assert_string_equal(header(msg, "To"), "tlsrpt@reports.test");
	/* folded; unfolded it is the Subject of RFC 8460 5.3 */
	assert_non_null(strstr(msg, "\nSubject: Report Domain: dane-ee.test\n"
	    " Submitter: mx.example.org\n"
	    " Report-ID: <2026-11-28.dane-ee.test@mx.example.org>\n"));
	assert_string_equal(header(msg, "TLS-Report-Domain"), "dane-ee.test");
	assert_string_equal(header(msg, "TLS-Report-Submitter"),
	    "mx.example.org");
	assert_string_equal(header(msg, "TLS-Required"), "No");
	assert_string_equal(header(msg, "MIME-Version"), "1.0");
	assert_string_equal(header(msg, "Date"),
	    "Sun, 29 Nov 2026 01:02:03 +0000");
	assert_string_equal(header(msg, "Message-ID"),
	    "<tlsrpt.2026-11-28.1.2.3@mx.example.org>");
	assert_non_null(strstr(msg, "Content-Type: multipart/report; "
	    "report-type=\"tlsrpt\";\n\tboundary=\"=_tlsrpt_"
	    "tlsrpt.2026-11-28.1.2.3\"\n"));

	/* every line within RFC 5322 2.1.1's 78 characters */
	for (p = msg; *p; p = end + 1) {
		end = strchr(p, '\n');
		assert_non_null(end);
		if (end - p > 78)
			fail_msg("long line: %.*s", (int)(end - p), p);
	}

	/* two parts, text then the report, and the closing boundary */
	q = "\n--=_tlsrpt_tlsrpt.2026-11-28.1.2.3\nContent-Type: text/plain;"
	    " charset=us-ascii\n";
	assert_non_null(p = strstr(msg, q));
	assert_non_null(strstr(p, "This is an aggregate TLS report"));
	q = "\n--=_tlsrpt_tlsrpt.2026-11-28.1.2.3\n"
	    "Content-Type: application/tlsrpt+gzip\n"
	    "Content-Transfer-Encoding: base64\n"
	    "Content-Disposition: attachment;\n"
	    "\tfilename=\"mx.example.org!dane-ee.test!1795824000!1795910399"
	    ".json.gz\"\n\n";
	assert_non_null(p = strstr(msg, q));
	p += strlen(q);
	end = strstr(p, "\n--=_tlsrpt_tlsrpt.2026-11-28.1.2.3--\n");
	assert_non_null(end);
	assert_string_equal(end + strlen("\n--=_tlsrpt_tlsrpt.2026-11-28.1.2.3"
	    "--\n"), "");

	/* the attachment decodes to the gzip, byte for byte */
	dec = malloc((size_t)(end - p));
	assert_non_null(dec);
	for (line = p; line < end; line++) {
		if (*line == '\n' || *line == '=')
			continue;
		v = b64val((unsigned char)*line);
		assert_true(v >= 0);
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			dec[o++] = (unsigned char)(acc >> bits);
		}
	}
	assert_int_equal(o, gzlen);
	assert_memory_equal(dec, gz, gzlen);
	back = gunzip(dec, o, &n);
	assert_string_equal(back, sample_json);
	free(back);
	free(dec);
	free(msg);
	free(gz);
}

static void
mail_refused(void **state)
{
	static const unsigned char gz[] = { 0x1f, 0x8b, 8, 0 };
	struct report_mail m;
	size_t len;
	char why[256];

	(void)state;
	m = mail_sample(gz, sizeof(gz));
	m.rcpt = "a@x.test\nBcc: evil@y.test";
	assert_null(report_mail_build(&m, &len, why, sizeof(why)));
	m = mail_sample(gz, sizeof(gz));
	m.from = "no-at-sign";
	assert_null(report_mail_build(&m, &len, why, sizeof(why)));
	m = mail_sample(gz, sizeof(gz));
	m.domain = "dane-ee.test\nX: y";
	assert_null(report_mail_build(&m, &len, why, sizeof(why)));
	m = mail_sample(gz, sizeof(gz));
	m.submitter = "mx example";
	assert_null(report_mail_build(&m, &len, why, sizeof(why)));
	m = mail_sample(gz, sizeof(gz));
	m.organization = "Evil\nBcc: x@y.test";
	assert_null(report_mail_build(&m, &len, why, sizeof(why)));
	m = mail_sample(gz, sizeof(gz));
	m.report_id = "a>b";
	assert_null(report_mail_build(&m, &len, why, sizeof(why)));
	m = mail_sample(gz, sizeof(gz));
	m.organization = NULL;
	assert_null(report_mail_build(&m, &len, why, sizeof(why)));
}

/* A scratch directory with fake sendmail programs. */
static char dir[] = "/tmp/test_report_mail.XXXXXX";

/* script - write an executable shell script dir/name */
static char *
script(const char *name, const char *body)
{
	static char path[256];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "#!/bin/sh\n%s", body);
	fclose(f);
	assert_int_equal(chmod(path, 0755), 0);
	return path;
}

/* slurp - a whole file, malloc'ed */
static char *
slurp(const char *path)
{
	FILE *f = fopen(path, "r");
	char *buf = calloc(1, 1 << 16);
	size_t n;

	assert_non_null(f);
	assert_non_null(buf);
	n = fread(buf, 1, (1 << 16) - 1, f);
	buf[n] = '\0';
	fclose(f);
	return buf;
}

static int
setup_dir(void **state)
{
	(void)state;
	return mkdtemp(dir) == NULL ? -1 : 0;
}

static int
teardown_dir(void **state)
{
	char cmd[300];

	(void)state;
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static void
sendmail_args_and_input(void **state)
{
	char body[1024], out[300], why[256], *got;
	const char *msg = "Subject: x\n\n.\nline\n";
	char *sm;

	(void)state;
	snprintf(out, sizeof(out), "%s/capture", dir);
	snprintf(body, sizeof(body),
	    "for a in \"$@\"; do printf '<%%s>' \"$a\"; done > %s.args\n"
	    "cat > %s\n", out, out);
	sm = strdup(script("ok.sh", body));
	assert_int_equal(report_sendmail(sm, "from@mx.test", "rcpt@r.test",
	    msg, strlen(msg), 5, why, sizeof(why)), 0);
	strcat(out, ".args");
	got = slurp(out);
	assert_string_equal(got, "<-i><-f><from@mx.test><-->"
	    "<rcpt@r.test>");
	free(got);
	out[strlen(out) - 5] = '\0';
	got = slurp(out);
	assert_string_equal(got, msg);
	free(got);
	/* a recipient from DNS that looks like an option never runs */
	assert_int_equal(report_sendmail(sm, "from@mx.test", "-bt@r.test",
	    msg, strlen(msg), 5, why, sizeof(why)), -1);
	free(sm);
}

static void
sendmail_fails(void **state)
{
	char why[256];
	char *sm;

	(void)state;
	sm = strdup(script("fail.sh", "cat >/dev/null\n"
	    "echo 'sendmail: mail queue full' >&2\nexit 75\n"));
	assert_int_equal(report_sendmail(sm, "from@mx.test", "rcpt@r.test",
	    "x\n", 2, 5, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "exit status 75"));
	assert_non_null(strstr(why, "mail queue full"));
	free(sm);
	/* not there at all */
	snprintf(why, sizeof(why), "%s", "");
	assert_int_equal(report_sendmail("/nonexistent/sendmail",
	    "from@mx.test", "rcpt@r.test", "x\n", 2, 5, why, sizeof(why)), -1);
	assert_non_null(strstr(why, "exit status 127"));
	/* a relative path is refused */
	assert_int_equal(report_sendmail("sendmail", "from@mx.test",
	    "rcpt@r.test", "x\n", 2, 5, why, sizeof(why)), -1);
}

static void
sendmail_stalls(void **state)
{
	struct timeval t0, t1;
	char why[256], *big;
	char *sm;
	double secs;

	(void)state;
	/* reads nothing and never ends; a child of it too */
	sm = strdup(script("stall.sh", "sleep 60 &\nsleep 60\n"));
	big = malloc(1 << 20);	/* more than a pipe holds */
	assert_non_null(big);
	memset(big, 'x', 1 << 20);
	gettimeofday(&t0, NULL);
	assert_int_equal(report_sendmail(sm, "from@mx.test", "rcpt@r.test",
	    big, 1 << 20, 1, why, sizeof(why)), -1);
	gettimeofday(&t1, NULL);
	secs = (double)(t1.tv_sec - t0.tv_sec) +
	    (double)(t1.tv_usec - t0.tv_usec) / 1e6;
	assert_true(secs >= 0.9 && secs < 3.0);
	assert_non_null(strstr(why, "killed"));
	free(big);
	free(sm);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(filename_good),
		cmocka_unit_test(filename_refused),
		cmocka_unit_test(mailto_table),
		cmocka_unit_test(url_table),
		cmocka_unit_test(gzip_roundtrip),
		cmocka_unit_test(mail_whole),
		cmocka_unit_test(mail_refused),
		cmocka_unit_test(sendmail_args_and_input),
		cmocka_unit_test(sendmail_fails),
		cmocka_unit_test(sendmail_stalls),
	};

	return cmocka_run_group_tests(tests, setup_dir, teardown_dir);
}
