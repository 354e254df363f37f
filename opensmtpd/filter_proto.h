/*
 * filter_proto.h - the OpenSMTPD filter protocol as filter-danests speaks
 * it (smtpd-filters(7); OpenSMTPD 6.8: protocol 0.6, 7.x: 0.7).  Pure: no
 * I/O, no clock, no DNS.  The main (filter.c) feeds it the lines smtpd
 * writes and carries out what it answers: lines to write back, decisions
 * to start, or a fatal error.
 *
 * The exchange, smtpd first:
 *	config|smtpd-version|6.8.0p2		(config|KEY|VALUE ...)
 *	config|ready
 *		register|filter|smtp-in|mail-from
 *		register|filter|smtp-in|rcpt-to
 *		register|ready
 *	filter|0.6|1700000000.000001|smtp-in|rcpt-to|SESSION|TOKEN|<a@b.c>
 *		filter-result|SESSION|TOKEN|proceed
 *		filter-result|SESSION|TOKEN|reject|556 5.1.10 ...
 */
#ifndef DANESTS_FILTER_PROTO_H
#define DANESTS_FILTER_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "danests.h"

/* smtpd passes the rest of a MAIL or RCPT command line (at most its
 * SMTP_LINE_MAX, 65535 bytes) after a prefix of about 100 bytes; a longer
 * line is cut here and answered "proceed" without a decision. */
#define FILTER_LINE_MAX		66560	/* bytes, newline excluded */
#define FILTER_REPLY_MAX	512	/* one reply line, newline included */
#define FILTER_TEXT_MAX		320	/* an SMTP reply in a reject */

/* The answer layout SESSION|TOKEN (reversed before 0.5) is what every
 * version from 0.5 to 0.7 (OpenSMTPD 6.7 to 7.8) uses. */
#define FILTER_VERSION_MIN_MINOR	5
#define FILTER_VERSION_KNOWN_MINOR	7

enum filter_phase {
	FILTER_PHASE_OTHER = 0,
	FILTER_PHASE_MAIL_FROM,
	FILTER_PHASE_RCPT_TO,
};

enum filter_state_kind {
	FILTER_ST_CONFIG = 0,	/* before config|ready */
	FILTER_ST_READY,	/* registered, serving events */
};

struct filter_state {
	enum filter_state_kind st;
	char smtpd_version[64];		/* from config|smtpd-version */
	bool newer_noted;		/* a version newer than known seen */
};

enum filter_action {
	FILTER_A_NONE = 0,	/* nothing to do (config line, report) */
	FILTER_A_WRITE,		/* write out->text */
	FILTER_A_DECIDE,	/* decide out->domain, then answer with
				 * filter_proto_result() */
	FILTER_A_FATAL,		/* out->text says why; stop */
};

struct filter_out {
	enum filter_action action;
	char text[FILTER_REPLY_MAX];	/* WRITE: lines to write, FATAL: why */
	char note[FILTER_REPLY_MAX];	/* something to log, or "" */
	uint64_t session, token;	/* DECIDE */
	enum filter_phase phase;	/* DECIDE */
	char domain[256];		/* DECIDE: normalized */
};

/* One line from smtpd, split.  Pointers point into the line. */
enum filter_msg_type {
	FILTER_MSG_CONFIG = 0,
	FILTER_MSG_FILTER,
	FILTER_MSG_REPORT,
	FILTER_MSG_UNKNOWN,
};

struct filter_msg {
	enum filter_msg_type type;
	/* config */
	const char *key, *value;
	size_t keylen, valuelen;
	/* filter */
	unsigned vmajor, vminor;
	const char *subsystem, *phase_name, *param;
	size_t subsystemlen, phase_namelen, paramlen;
	enum filter_phase phase;
	uint64_t session, token;
};

/* filter_proto_parse - split one line (len bytes, no newline; need not be
 * NUL-terminated).  Returns 0, or -1 with *why for a malformed line. */
int filter_proto_parse(const char *line, size_t len, struct filter_msg *m,
    const char **why);

/* filter_proto_domain - the domain of the address a MAIL FROM or RCPT TO
 * parameter names ("<local@domain> PARAMS"), normalized, in out (256
 * bytes).  0 when there is none to decide on: the null path, no '@', an
 * address literal, a name that is not a host name. */
int filter_proto_domain(const char *param, size_t len, char *out,
    size_t outlen);

/* filter_proto_step - what to do with one line.  truncated: the line was
 * longer than FILTER_LINE_MAX and this is its beginning. */
void filter_proto_step(struct filter_state *, const char *line, size_t len,
    bool truncated, struct filter_out *out);

/* filter_proto_result - the answer line (with its newline) to a decided
 * event: reply NULL proceeds, else rejects with that SMTP reply. */
void filter_proto_result(uint64_t session, uint64_t token, const char *reply,
    char *buf, size_t buflen);

/* filter_proto_reply - the SMTP reply for a decision at phase, in buf;
 * false when the event is to proceed (deliver, tempfail, anything not a
 * final refusal). */
bool filter_proto_reply(enum filter_phase, const char *domain,
    danests_verdict, danests_reason, char *buf, size_t buflen);

#endif /* DANESTS_FILTER_PROTO_H */
