/*
 * tlsreq.c - RFC 8689 "TLS-Required: No" in danests-relay (tlsreq.h)
 */
#include "tlsreq.h"

#include <string.h>
#include <strings.h>

/* tlsreq_init - ready for a new message */
void
tlsreq_init(struct tlsreq *t)
{
	memset(t, 0, sizeof(*t));
}

/* is_wsp - RFC 5234 WSP */
static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t';
}

/* field_end - the field being read is complete: is it "No"? */
static void
field_end(struct tlsreq *t)
{
	const char *v = t->value;
	size_t n = t->vlen;

	if (t->in_field && !t->vcut) {
		while (n > 0 && is_wsp(*v)) {
			v++;
			n--;
		}
		while (n > 0 && is_wsp(v[n - 1]))
			n--;
		/* RFC 8689 5: the only value defined; ABNF strings are
		 * case-insensitive (RFC 5234 2.3) */
		if (n == 2 && strncasecmp(v, "No", 2) == 0)
			t->no = true;
	}
	t->in_field = false;
	t->vcut = false;
	t->vlen = 0;
}

/* value_add - append to the value of a TLS-Required field */
static void
value_add(struct tlsreq *t, const char *p, size_t n)
{
	if (t->vcut || n > sizeof(t->value) - t->vlen) {
		t->vcut = true;
		return;
	}
	memcpy(t->value + t->vlen, p, n);
	t->vlen += n;
}

/* line_end - one complete line of the header section (without CRLF) */
static void
line_end(struct tlsreq *t)
{
	const char *l = t->line, *colon;
	size_t n = t->len, k;

	if (t->done)
		return;
	/* RFC 5321 4.5.2: undo the transparency dot */
	if (n > 0 && l[0] == '.') {
		l++;
		n--;
	}
	if (n == 0 && !t->lcut) {
		/* RFC 5322 2.1: the empty line ends the header section */
		field_end(t);
		t->done = true;
		return;
	}
	if (is_wsp(l[0])) {
		/* RFC 5322 2.2.3: unfolding drops the CRLF only */
		if (t->in_field) {
			if (t->lcut)
				t->vcut = true;
			value_add(t, l, n);
		}
		return;
	}
	field_end(t);
	/* RFC 5322 2.2: printable US-ASCII but ':' names the field;
	 * obs-optional (4.5.2) allows WSP before the colon */
	colon = memchr(l, ':', n);
	if (colon == NULL || colon == l) {
		/* not a header field: the body begins (no empty line) */
		t->done = true;
		return;
	}
	for (k = (size_t)(colon - l); k > 0 && is_wsp(l[k - 1]); k--)
		;
	if (k == 0) {
		t->done = true;
		return;
	}
	for (size_t i = 0; i < k; i++)
		if (l[i] < 33 || l[i] > 126) {
			t->done = true;
			return;
		}
	if (k == 12 && strncasecmp(l, "TLS-Required", 12) == 0) {
		t->in_field = true;
		if (t->lcut)
			t->vcut = true;
		value_add(t, colon + 1, n - (size_t)(colon + 1 - l));
	}
}

/* tlsreq_feed - scan message bytes (wire form) */
void
tlsreq_feed(struct tlsreq *t, const char *p, size_t n)
{
	const char *nl;
	size_t take;

	while (n > 0 && !t->done) {
		nl = memchr(p, '\n', n);
		take = nl != NULL ? (size_t)(nl - p) : n;
		if (take > sizeof(t->line) - t->len) {
			memcpy(t->line + t->len, p, sizeof(t->line) - t->len);
			t->len = sizeof(t->line);
			t->lcut = true;
		} else {
			memcpy(t->line + t->len, p, take);
			t->len += take;
		}
		if (nl == NULL)
			return;
		/* the line ends: drop its CR */
		if (!t->lcut && t->len > 0 && t->line[t->len - 1] == '\r')
			t->len--;
		line_end(t);
		t->len = 0;
		t->lcut = false;
		p += take + 1;
		n -= take + 1;
	}
}

/* tlsreq_no - the verdict once the whole message was fed */
bool
tlsreq_no(struct tlsreq *t)
{
	if (!t->done) {
		/* a message of header fields only: its last field ends */
		if (t->len > 0)
			line_end(t);
		field_end(t);
		t->done = true;
	}
	return t->no;
}

/* tlsreq_relax - RFC 8689 5: best TLS available, no policy enforced */
bool
tlsreq_relax(struct danests_decision *d)
{
	struct danests_host *h;
	bool changed = false, usable = false;
	size_t i;

	if (d->verdict == DANESTS_PERMFAIL)
		return false;	/* RFC 7505, NXDOMAIN: no mail at all */
	for (i = 0; i < d->nhosts; i++) {
		h = &d->hosts[i];
		switch (h->policy) {
		case DANESTS_POLICY_MAY:
			break;
		case DANESTS_POLICY_SKIP:
			/* a host without addresses, or with a bogus
			 * address RRset (maybe forged), is no route */
			if (h->naddrs == 0 ||
			    h->addr_security == DANESTS_SEC_BOGUS)
				break;
			h->policy = DANESTS_POLICY_MAY;
			changed = true;
			break;
		default:
			h->policy = DANESTS_POLICY_MAY;
			changed = true;
			break;
		}
		if (h->policy != DANESTS_POLICY_SKIP)
			usable = true;
	}
	if (d->verdict == DANESTS_TEMPFAIL && usable) {
		d->verdict = DANESTS_DELIVER;
		d->reason = DANESTS_R_OK;
		changed = true;
	}
	return changed;
}
