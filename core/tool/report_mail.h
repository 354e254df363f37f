/*
 * report_mail.h - a TLS report as mail (RFC 8460 5.3) and its delivery
 *
 * report_mail.c builds; report_deliver.c hands the result over, through
 * the local MTA's sendmail interface or an https POST.  Pure functions
 * here (no I/O) so the unit tests check them byte by byte.
 */
#ifndef DANESTS_REPORT_MAIL_H
#define DANESTS_REPORT_MAIL_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#define REPORT_ADDR_MAX		320	/* local@domain: 64 + 1 + 253, NUL */
#define REPORT_FILENAME_MAX	600

/* report_addr_ok - a plain addr-spec we can pass to sendmail and put in
 * a header: dot-atom local part of printable ASCII without specials,
 * "@", a host name of letters, digits, '-' and '.'. */
bool report_addr_ok(const char *addr);

/* report_domain_ok - a host name: labels of letters, digits, '-' */
bool report_domain_ok(const char *name);

/* report_mailto_addr - the address of a "mailto:" rua URI (RFC 6068),
 * percent-decoded; a URI with several addresses, header fields ("?") or
 * anything report_addr_ok refuses is refused (-1). */
int report_mailto_addr(const char *uri, char *out, size_t outlen);

/* report_filename - RFC 8460 5.3: submitter!policy-domain!begin!end
 * [!unique-id].json.gz (begin and end as seconds since the epoch);
 * unique_id may be NULL.  -1 when a part is not usable or it does not
 * fit. */
int report_filename(char *buf, size_t len, const char *submitter,
    const char *domain, time_t begin, time_t end, const char *unique_id);

/* report_gzip - gzip (RFC 1952) of in; *out malloc'ed.  -1 on error. */
int report_gzip(const char *in, size_t len, unsigned char **out,
    size_t *outlen);

struct report_mail {
	const char *from;		/* report_from: envelope and From: */
	const char *rcpt;		/* the rua address (To:) */
	const char *submitter;		/* TLS-Report-Submitter */
	const char *domain;		/* TLS-Report-Domain, policy domain */
	const char *organization;	/* report_organization */
	const char *contact;		/* report_contact, or NULL */
	const char *report_id;		/* as in the JSON */
	const char *day;		/* "YYYY-MM-DD" */
	time_t begin, end;		/* the date-range, seconds */
	time_t now;			/* Date: */
	const char *unique;		/* Message-ID left part, unique */
	const unsigned char *gz;	/* the gzipped JSON */
	size_t gzlen;
};

/* report_mail_build - the whole message (headers and body, LF line ends,
 * as sendmail -i reads it); malloc'ed, *len its size.  NULL with why set
 * when a field is not usable or memory ran out. */
char *report_mail_build(const struct report_mail *, size_t *len, char *why,
    size_t whylen);

/* report_sendmail - run "SENDMAIL -i -f FROM -- RCPT" (no shell), write
 * msg to its input, wait at most timeout_s seconds (then kill it).  0
 * when it exited 0; -1 with why set otherwise. */
int report_sendmail(const char *sendmail, const char *from, const char *rcpt,
    const char *msg, size_t len, unsigned timeout_s, char *why,
    size_t whylen);

/* report_url_host - host and port of an https: rua URL (no user info,
 * no fragment; a host name, not an address literal).  -1 when the URL is
 * not one we POST to. */
int report_url_host(const char *url, char *host, size_t hostlen,
    unsigned *port);

/* report_post - POST the gzipped report to an https: URL with
 * Content-Type application/tlsrpt+gzip, the server verified (PKIX,
 * ca_file or the system store when NULL), no redirects, connection and
 * whole transfer bounded by timeout_s.  addrs (danests_report_addrs)
 * pins the host's addresses so that curl never resolves by itself.  0
 * on a 2xx answer; -1 with why set otherwise. */
int report_post(const char *url, const char *addrs, const char *ca_file,
    const unsigned char *gz, size_t len, unsigned timeout_s, char *why,
    size_t whylen);

#endif /* DANESTS_REPORT_MAIL_H */
