/*
 * lmtp.h - the LMTP command parser of danests-relay (RFC 2033, with the
 * command syntax of RFC 5321 4.1).  Pure: no I/O, no state.
 */
#ifndef DANESTS_LMTP_H
#define DANESTS_LMTP_H

#include <stdbool.h>
#include <stddef.h>

/* RFC 5321 4.5.3.1.4 says 512 for a command line; SMTPUTF8 and
 * parameters make room for more. */
#define LMTP_LINE_MAX	1024
#define LMTP_PATH_MAX	256	/* RFC 5321 4.5.3.1.3 */
#define LMTP_DOMAIN_MAX	256

enum lmtp_verb {
	LMTP_UNKNOWN = 0,
	LMTP_LHLO,
	LMTP_MAIL,
	LMTP_RCPT,
	LMTP_DATA,
	LMTP_RSET,
	LMTP_NOOP,
	LMTP_QUIT,
	LMTP_VRFY,
	LMTP_HELO,	/* refused: RFC 2033 4.1 */
	LMTP_EHLO,
};

enum lmtp_body {
	LMTP_BODY_NONE = 0,
	LMTP_BODY_7BIT,
	LMTP_BODY_8BITMIME,
};

struct lmtp_cmd {
	enum lmtp_verb verb;
	char arg[LMTP_LINE_MAX + 1];	/* LHLO: the name; MAIL/RCPT: the
					 * mailbox without <> or source
					 * route ("" for <>) */
	char domain[LMTP_DOMAIN_MAX];	/* RCPT: normalized domain */
	bool has_size;
	unsigned long long size;	/* SIZE= (RFC 1870) */
	enum lmtp_body body;		/* BODY= (RFC 6152) */
	bool smtputf8;			/* SMTPUTF8 (RFC 6531) */
};

/* lmtp_parse - parse one command line (without its CRLF).  Returns 0 with
 * out filled, or the reply code to send (500 unknown command or line,
 * 501 syntax, 553 mailbox, 555 parameter) with *why a text beginning
 * with the RFC 3463 code. */
int lmtp_parse(const char *line, size_t len, struct lmtp_cmd *out,
    const char **why);

#endif /* DANESTS_LMTP_H */
