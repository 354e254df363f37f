/*
 * filter_proto.c - the OpenSMTPD filter protocol of filter-danests:
 * splitting smtpd's lines, the handshake, the events it decides on and
 * the answers (see filter_proto.h and smtpd-filters(7)).  Pure functions
 * over bytes; the one state is what the handshake has seen.
 */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "filter_proto.h"

/* field - the next '|'-separated field of [*p, end): sets *f and *flen,
 * moves *p past the separator; -1 when there is no separator (last
 * field: all that is left) */
static int
field(const char **p, const char *end, const char **f, size_t *flen)
{
	const char *bar = memchr(*p, '|', (size_t)(end - *p));

	*f = *p;
	if (bar == NULL) {
		*flen = (size_t)(end - *p);
		*p = end;
		return -1;
	}
	*flen = (size_t)(bar - *p);
	*p = bar + 1;
	return 0;
}

static bool
is(const char *f, size_t flen, const char *s)
{
	return flen == strlen(s) && memcmp(f, s, flen) == 0;
}

/* num - a decimal number of 1-6 digits */
static int
num(const char *f, size_t flen, unsigned *out)
{
	size_t i;

	if (flen == 0 || flen > 6)
		return -1;
	*out = 0;
	for (i = 0; i < flen; i++) {
		if (f[i] < '0' || f[i] > '9')
			return -1;
		*out = *out * 10 + (unsigned)(f[i] - '0');
	}
	return 0;
}

/* hex64 - smtpd's session and token: 1-16 hexadecimal digits (it writes
 * %016PRIx64 and reads them back with strtoull base 16) */
static int
hex64(const char *f, size_t flen, uint64_t *out)
{
	size_t i;
	unsigned d;

	if (flen == 0 || flen > 16)
		return -1;
	*out = 0;
	for (i = 0; i < flen; i++) {
		if (f[i] >= '0' && f[i] <= '9')
			d = (unsigned)(f[i] - '0');
		else if (f[i] >= 'a' && f[i] <= 'f')
			d = (unsigned)(f[i] - 'a' + 10);
		else if (f[i] >= 'A' && f[i] <= 'F')
			d = (unsigned)(f[i] - 'A' + 10);
		else
			return -1;
		*out = (*out << 4) | d;
	}
	return 0;
}

/* timestamp - seconds.microseconds as smtpd writes them */
static int
timestamp(const char *f, size_t flen)
{
	const char *dot = memchr(f, '.', flen);
	size_t i;

	if (dot == NULL || dot == f || dot == f + flen - 1)
		return -1;
	for (i = 0; i < flen; i++)
		if (f + i != dot && (f[i] < '0' || f[i] > '9'))
			return -1;
	return 0;
}

int
filter_proto_parse(const char *line, size_t len, struct filter_msg *m,
    const char **why)
{
	const char *p = line, *end = line + len, *f;
	size_t flen;
	int last;

	memset(m, 0, sizeof(*m));
	*why = NULL;
	last = field(&p, end, &f, &flen);
	if (is(f, flen, "config")) {
		m->type = FILTER_MSG_CONFIG;
		if (last == -1) {
			*why = "config line without a key";
			return -1;
		}
		/* config|ready has no value; config|KEY|VALUE the rest */
		if (field(&p, end, &m->key, &m->keylen) == 0) {
			m->value = p;
			m->valuelen = (size_t)(end - p);
		}
		if (m->keylen == 0) {
			*why = "config line with an empty key";
			return -1;
		}
		return 0;
	}
	if (is(f, flen, "report")) {
		m->type = FILTER_MSG_REPORT;
		return 0;
	}
	if (!is(f, flen, "filter")) {
		m->type = FILTER_MSG_UNKNOWN;
		return 0;
	}
	m->type = FILTER_MSG_FILTER;
	/* filter|VERSION|TIMESTAMP|SUBSYSTEM|PHASE|SESSION|TOKEN[|PARAM] */
	if (last == -1 || field(&p, end, &f, &flen) == -1) {
		*why = "filter line ends after its type";
		return -1;
	}
	{
		const char *dot = memchr(f, '.', flen);

		if (dot == NULL || num(f, (size_t)(dot - f), &m->vmajor) == -1 ||
		    num(dot + 1, (size_t)(f + flen - dot - 1), &m->vminor) == -1) {
			*why = "malformed protocol version";
			return -1;
		}
	}
	if (field(&p, end, &f, &flen) == -1 || timestamp(f, flen) == -1) {
		*why = "malformed timestamp";
		return -1;
	}
	if (field(&p, end, &m->subsystem, &m->subsystemlen) == -1 ||
	    m->subsystemlen == 0) {
		*why = "malformed subsystem";
		return -1;
	}
	if (field(&p, end, &m->phase_name, &m->phase_namelen) == -1 ||
	    m->phase_namelen == 0) {
		*why = "malformed phase";
		return -1;
	}
	if (is(m->phase_name, m->phase_namelen, "mail-from"))
		m->phase = FILTER_PHASE_MAIL_FROM;
	else if (is(m->phase_name, m->phase_namelen, "rcpt-to"))
		m->phase = FILTER_PHASE_RCPT_TO;
	if (field(&p, end, &f, &flen) == -1 || hex64(f, flen, &m->session)) {
		*why = "malformed session";
		return -1;
	}
	last = field(&p, end, &f, &flen);
	if (hex64(f, flen, &m->token) == -1) {
		*why = "malformed token";
		return -1;
	}
	if (last == 0) {	/* the parameter: everything that is left */
		m->param = p;
		m->paramlen = (size_t)(end - p);
	} else {
		m->param = end;
	}
	return 0;
}

/*
 * filter_proto_domain - the address is "<...>" (RFC 5321 4.1.2 Path),
 * with a quoted local part that may hold '>' or '@', or, as smtpd also
 * takes it, a bare address up to the first space.  A source route
 * "@a,@b:" is dropped (RFC 5321 4.1.2 A-d-l, C.).
 */
int
filter_proto_domain(const char *param, size_t len, char *out, size_t outlen)
{
	const char *p = param, *end = param + len, *a, *ae, *at = NULL;
	bool quoted = false;
	char dom[256];
	size_t dlen;

	while (p < end && *p == ' ')
		p++;
	if (p < end && *p == '<') {
		a = ++p;
		for (; p < end; p++) {
			if (quoted && *p == '\\' && p + 1 < end) {
				p++;
				continue;
			}
			if (*p == '"')
				quoted = !quoted;
			else if (!quoted && *p == '>')
				break;
		}
		if (p == end)
			return 0;	/* no closing '>' */
		ae = p;
	} else {
		a = p;
		while (p < end && *p != ' ')
			p++;
		ae = p;
	}
	if (a < ae && *a == '@') {	/* source route */
		const char *colon = memchr(a, ':', (size_t)(ae - a));

		if (colon == NULL)
			return 0;
		a = colon + 1;
	}
	/* the domain follows the last '@' outside quotes */
	quoted = false;
	for (p = a; p < ae; p++) {
		if (quoted && *p == '\\' && p + 1 < ae) {
			p++;
			continue;
		}
		if (*p == '"')
			quoted = !quoted;
		else if (!quoted && *p == '@')
			at = p;
	}
	if (at == NULL || at == a)
		return 0;
	dlen = (size_t)(ae - at - 1);
	if (dlen == 0 || dlen >= sizeof(dom) || at[1] == '[')
		return 0;	/* empty, too long, or an address literal */
	if (memchr(at + 1, '\0', dlen) != NULL)
		return 0;
	memcpy(dom, at + 1, dlen);
	dom[dlen] = '\0';
	if (outlen < 256 || danests_domain_normalize(dom, out, outlen) !=
	    DANESTS_OK)
		return 0;
	return 1;
}

void
filter_proto_result(uint64_t session, uint64_t token, const char *reply,
    char *buf, size_t buflen)
{
	if (reply == NULL)
		snprintf(buf, buflen, "filter-result|%016" PRIx64 "|%016" PRIx64
		    "|proceed\n", session, token);
	else
		snprintf(buf, buflen, "filter-result|%016" PRIx64 "|%016" PRIx64
		    "|reject|%s\n", session, token, reply);
}

/*
 * filter_proto_reply - only the final refusals are answered here (the
 * core's danests_refusal: a null MX, a domain that does not exist);
 * everything else proceeds: the relay enforces delivery, and a tempfail
 * is retried there.
 */
bool
filter_proto_reply(enum filter_phase phase, const char *domain,
    danests_verdict verdict, danests_reason reason, char *buf, size_t buflen)
{
	if (phase != FILTER_PHASE_RCPT_TO && phase != FILTER_PHASE_MAIL_FROM)
		return false;
	return danests_refusal(verdict, reason, phase ==
	    FILTER_PHASE_MAIL_FROM, domain, buf, buflen);
}

/* handshake - a config line; config|ready answers the registration */
static void
handshake(struct filter_state *s, const struct filter_msg *m,
    struct filter_out *out)
{
	if (m->value == NULL && m->keylen == 5 && memcmp(m->key, "ready", 5) == 0) {
		if (s->st == FILTER_ST_READY) {
			snprintf(out->note, sizeof(out->note),
			    "config|ready seen twice, ignored");
			return;
		}
		s->st = FILTER_ST_READY;
		out->action = FILTER_A_WRITE;
		snprintf(out->text, sizeof(out->text),
		    "register|filter|smtp-in|mail-from\n"
		    "register|filter|smtp-in|rcpt-to\n"
		    "register|ready\n");
		return;
	}
	if (m->value != NULL && m->keylen == 13 &&
	    memcmp(m->key, "smtpd-version", 13) == 0) {
		size_t n = m->valuelen < sizeof(s->smtpd_version) - 1 ?
		    m->valuelen : sizeof(s->smtpd_version) - 1;

		memcpy(s->smtpd_version, m->value, n);
		s->smtpd_version[n] = '\0';
	}
	/* other keys (protocol, smtp-session-timeout, subsystem, admd) are
	 * not needed: the version comes with every event */
}

void
filter_proto_step(struct filter_state *s, const char *line, size_t len,
    bool truncated, struct filter_out *out)
{
	struct filter_msg m;
	const char *why;

	memset(out, 0, sizeof(*out));
	if (filter_proto_parse(line, len, &m, &why) == -1) {
		/* a filter event cut before its token cannot be answered;
		 * smtpd holds that session until its own timeout */
		snprintf(out->note, sizeof(out->note), "%s%s, line ignored",
		    why, truncated ? " (line too long)" : "");
		return;
	}
	switch (m.type) {
	case FILTER_MSG_CONFIG:
		if (truncated)
			snprintf(out->note, sizeof(out->note),
			    "config line too long, ignored");
		else
			handshake(s, &m, out);
		return;
	case FILTER_MSG_REPORT:
		return;		/* none registered; ignore */
	case FILTER_MSG_UNKNOWN:
		snprintf(out->note, sizeof(out->note),
		    "unknown message type, line ignored");
		return;
	case FILTER_MSG_FILTER:
		break;
	}
	if (s->st != FILTER_ST_READY) {
		snprintf(out->note, sizeof(out->note),
		    "filter event before config|ready, ignored");
		return;
	}
	if (m.vmajor != 0 || m.vminor < FILTER_VERSION_MIN_MINOR) {
		out->action = FILTER_A_FATAL;
		snprintf(out->text, sizeof(out->text), "filter protocol %u.%u "
		    "is not supported (0.%u or later: OpenSMTPD 6.7 or later)",
		    m.vmajor, m.vminor, FILTER_VERSION_MIN_MINOR);
		return;
	}
	if (m.vminor > FILTER_VERSION_KNOWN_MINOR && !s->newer_noted) {
		s->newer_noted = true;
		snprintf(out->note, sizeof(out->note), "filter protocol 0.%u "
		    "is newer than 0.%u, answered as 0.%u", m.vminor,
		    FILTER_VERSION_KNOWN_MINOR, FILTER_VERSION_KNOWN_MINOR);
	}
	out->session = m.session;
	out->token = m.token;
	out->phase = m.phase;
	if (m.phase != FILTER_PHASE_OTHER && !truncated &&
	    is(m.subsystem, m.subsystemlen, "smtp-in") &&
	    filter_proto_domain(m.param, m.paramlen, out->domain,
	    sizeof(out->domain)) == 1) {
		out->action = FILTER_A_DECIDE;
		return;
	}
	/* an event not registered, a cut line, no domain: never held */
	out->domain[0] = '\0';
	out->action = FILTER_A_WRITE;
	filter_proto_result(m.session, m.token, NULL, out->text,
	    sizeof(out->text));
}
