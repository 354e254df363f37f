/*
 * fuzz_report_mail.c - libFuzzer target for what a report mail takes
 * from DNS (core/tool/report_mail.c, report_deliver.c): the input is a
 * rua URI, or a policy domain.
 *
 *  - an address report_mailto_addr accepts is plain: visible ASCII, no
 *    quote, bracket, comma, no leading '-', one '@';
 *  - built into a mail as its recipient and policy domain, it adds no
 *    header line: the header block has exactly the lines of a good mail;
 *  - a host report_url_host accepts is a name with a port in range;
 *  - an attachment name report_filename makes has no quote, slash,
 *    backslash or white space.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "report_mail.h"

#define HEADER_LINES	14	/* report_mail_build's, folded lines too */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* header_lines - lines before the first empty one */
static size_t
header_lines(const char *msg)
{
	size_t n = 0;

	while (*msg != '\0' && *msg != '\n') {
		const char *e = strchr(msg, '\n');

		if (e == NULL)
			abort();
		n++;
		msg = e + 1;
	}
	return n;
}

/* mail - a mail with rcpt and domain; its header lines (0: refused) */
static size_t
mail(const char *rcpt, const char *domain)
{
	static const unsigned char gz[] = { 0x1f, 0x8b, 8, 0 };
	struct report_mail m;
	char why[256], *msg;
	size_t len, n;

	memset(&m, 0, sizeof(m));
	m.from = "tlsrpt@sender.test";
	m.rcpt = rcpt;
	m.submitter = "mx.sender.test";
	m.domain = domain;
	m.organization = "Org";
	m.report_id = "2026-11-28.d.test@mx.sender.test";
	m.day = "2026-11-28";
	m.begin = 1795824000;
	m.end = m.begin + 86399;
	m.now = m.begin + 90000;
	m.unique = "u.1";
	m.gz = gz;
	m.gzlen = sizeof(gz);
	if ((msg = report_mail_build(&m, &len, why, sizeof(why))) == NULL)
		return 0;
	if (strlen(msg) != len)
		abort();
	n = header_lines(msg);
	free(msg);
	return n;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char in[1024], addr[REPORT_ADDR_MAX], host[256], name[REPORT_FILENAME_MAX];
	unsigned port;
	size_t i, n;

	if (size >= sizeof(in))
		return 0;
	memcpy(in, data, size);
	in[size] = '\0';

	if (report_mailto_addr(in, addr, sizeof(addr)) == 0) {
		if (!report_addr_ok(addr) || addr[0] == '-' ||
		    strchr(addr, '@') != strrchr(addr, '@'))
			abort();
		for (i = 0; addr[i]; i++)
			if (addr[i] <= 0x20 || addr[i] >= 0x7f ||
			    strchr("\"<>,;()[]\\", addr[i]) != NULL)
				abort();
		if (mail(addr, "d.test") != HEADER_LINES)
			abort();
	} else if ((n = mail(in, "d.test")) != 0 && n != HEADER_LINES)
		abort();
	if ((n = mail("a@r.test", in)) != 0 && n != HEADER_LINES)
		abort();

	if (report_url_host(in, host, sizeof(host), &port) == 0 &&
	    (!report_domain_ok(host) || port == 0 || port > 65535))
		abort();

	if (report_filename(name, sizeof(name), "mx.sender.test", in,
	    1795824000, 1795910399, NULL) == 0)
		for (i = 0; name[i]; i++)
			if (name[i] <= 0x20 || name[i] >= 0x7f ||
			    strchr("\"/\\", name[i]) != NULL)
				abort();
	return 0;
}
