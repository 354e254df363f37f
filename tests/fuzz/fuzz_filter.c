/*
 * fuzz_filter.c - libFuzzer target: the lines smtpd writes to
 * filter-danests (opensmtpd/filter_proto.c), one per input line, through
 * the handshake and the events, as the filter reads them (a line longer
 * than FILTER_LINE_MAX arrives cut, flagged truncated).
 */
#include <stdlib.h>
#include <string.h>

#include "../../opensmtpd/filter_proto.c"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* check - what the filter would write is well formed */
static void
check(const struct filter_out *o)
{
	char reply[FILTER_TEXT_MAX], line[FILTER_REPLY_MAX];
	size_t n;

	switch (o->action) {
	case FILTER_A_WRITE:
		n = strlen(o->text);
		if (n == 0 || o->text[n - 1] != '\n' ||
		    (strncmp(o->text, "filter-result|", 14) != 0 &&
		    strncmp(o->text, "register|", 9) != 0))
			abort();
		if (strncmp(o->text, "filter-result|", 14) == 0 &&
		    (n != 14 + 16 + 1 + 16 + 1 + 7 + 1 ||
		    strchr(o->text, '\n') != o->text + n - 1))
			abort();
		break;
	case FILTER_A_DECIDE:
		if (o->domain[0] == '\0' || strlen(o->domain) > 253 ||
		    strpbrk(o->domain, "|\n\r <>@") != NULL ||
		    o->phase == FILTER_PHASE_OTHER)
			abort();
		/* every reply for it must stay one line */
		if (filter_proto_reply(o->phase, o->domain, DANESTS_PERMFAIL,
		    DANESTS_R_NULL_MX, reply, sizeof(reply))) {
			filter_proto_result(o->session, o->token, reply, line,
			    sizeof(line));
			if (strchr(line, '\n') != line + strlen(line) - 1)
				abort();
		}
		break;
	case FILTER_A_FATAL:
		if (strncmp(o->text, "filter protocol ", 16) != 0)
			abort();
		break;
	case FILTER_A_NONE:
		break;
	}
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct filter_out o;
	struct filter_state s;
	const char *p = (const char *)data, *end = p + size, *nl;
	size_t len;

	memset(&s, 0, sizeof(s));
	/* most inputs should reach the events: start ready when the first
	 * byte says so */
	if (size > 0 && data[0] == 'R') {
		filter_proto_step(&s, "config|ready", 12, false, &o);
		p++;
	}
	while (p < end) {
		if ((nl = memchr(p, '\n', (size_t)(end - p))) == NULL)
			nl = end;
		len = (size_t)(nl - p);
		if (len > FILTER_LINE_MAX)
			filter_proto_step(&s, p, FILTER_LINE_MAX, true, &o);
		else
			filter_proto_step(&s, p, len, false, &o);
		check(&o);
		if (o.action == FILTER_A_FATAL)
			break;
		p = nl + (nl < end);
	}
	return 0;
}
