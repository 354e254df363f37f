/*
 * dns_mock.c - a resolver that answers from a table (unit tests)
 *
 * Answers are delivered from the event loop on the next turn, like real
 * ones, so the engine's asynchronous paths are the ones under test.  A
 * name/type missing from the table answers with an error: a test must
 * list every lookup it expects.
 */
#include "dns_mock.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct mock {
	struct event_base *base;
	const struct dns_mock_entry *table;
	size_t n;
	size_t *count;		/* queries asked, or NULL */
};

struct mock_pending {
	struct dns_answer *a;
	dns_cb *cb;
	void *arg;
};

/* mock_rdata - presentation RDATA to one dns_rr; -1 on a bad table row */
static int
mock_rdata(uint16_t type, const char *text, struct dns_rr *r)
{
	unsigned u, s, m;
	int off = 0, hi, lo;
	size_t len, i, o;
	char name[DANESTS_NAME_MAX];

	r->type = type;
	r->ttl = 300;
	switch (type) {
	case DNS_T_MX:
		if (sscanf(text, "%u %255s", &u, name) != 2 || u > 65535)
			return -1;
		r->pref = (uint16_t)u;
		if (strcmp(name, ".") == 0)
			name[0] = '\0';
		else
			name_lower(name, name, sizeof(name));
		r->target = strdup(name);
		return r->target ? 0 : -1;
	case DNS_T_A:
	case DNS_T_AAAA:
		r->rdlen = type == DNS_T_A ? 4 : 16;
		if ((r->rdata = malloc(16)) == NULL)
			return -1;
		return inet_pton(type == DNS_T_A ? AF_INET : AF_INET6, text,
		    r->rdata) == 1 ? 0 : -1;
	case DNS_T_TXT:
		len = strlen(text);
		if ((r->rdata = malloc(len + len / 255 + 2)) == NULL)
			return -1;
		for (i = 0, o = 0; i < len || i == 0; i += 255) {
			size_t chunk = len - i > 255 ? 255 : len - i;

			r->rdata[o++] = (unsigned char)chunk;
			memcpy(r->rdata + o, text + i, chunk);
			o += chunk;
			if (len == 0)
				break;
		}
		r->rdlen = o;
		return 0;
	case DNS_T_TLSA:
		if (sscanf(text, "%u %u %u %n", &u, &s, &m, &off) != 3 ||
		    u > 255 || s > 255 || m > 255)
			return -1;
		text += off;
		len = strlen(text);
		if (len % 2 || (r->rdata = malloc(3 + len / 2)) == NULL)
			return -1;
		r->rdata[0] = (unsigned char)u;
		r->rdata[1] = (unsigned char)s;
		r->rdata[2] = (unsigned char)m;
		for (i = 0; i < len; i += 2) {
			if ((hi = hex_value(text[i])) < 0 ||
			    (lo = hex_value(text[i + 1])) < 0)
				return -1;
			r->rdata[3 + i / 2] = (unsigned char)(hi << 4 | lo);
		}
		r->rdlen = 3 + len / 2;
		return 0;
	}
	return -1;
}

/* mock_deliver - hand a prepared answer to its callback */
static void
mock_deliver(evutil_socket_t fd, short what, void *arg)
{
	struct mock_pending *p = arg;

	(void)fd;
	(void)what;
	p->cb(p->arg, p->a);
	free(p);
}

/* mock_query - look the question up in the table */
static int
mock_query(void *impl, const char *name, uint16_t type, dns_cb *cb, void *arg)
{
	struct mock *m = impl;
	struct mock_pending *p;
	struct dns_answer *a;
	const struct dns_mock_entry *e = NULL;
	size_t i, n;

	if ((p = xcalloc(1, sizeof(*p))) == NULL ||
	    (a = xcalloc(1, sizeof(*a))) == NULL) {
		free(p);
		return -1;
	}
	if (m->count != NULL)
		(*m->count)++;
	a->qname = strdup(name);
	a->qtype = type;
	for (i = 0; i < m->n; i++)
		if (m->table[i].type == type && name_eq(m->table[i].name, name))
			e = &m->table[i];
	if (e == NULL) {
		a->rcode = DNS_R_ERROR;
		a->sec = DANESTS_SEC_INDETERMINATE;
		snprintf(a->why, sizeof(a->why), "no mock answer for %s/%u",
		    name, type);
	} else {
		a->rcode = e->rcode;
		a->sec = e->sec;
		a->cname = e->cname ? strdup(e->cname) : NULL;
		for (n = 0; n < 8 && e->rdata[n] != NULL; n++)
			;
		if (n > 0 && (a->rr = xcalloc(n, sizeof(*a->rr))) == NULL)
			n = 0;
		for (i = 0; i < n; i++) {
			if (mock_rdata(type, e->rdata[i], &a->rr[i]) != 0) {
				a->rcode = DNS_R_ERROR;
				a->sec = DANESTS_SEC_INDETERMINATE;
				strlcpy(a->why, "bad mock row", sizeof(a->why));
			}
			a->nrr = i + 1;
		}
		a->min_ttl = n ? 300 : 0;
	}
	p->a = a;
	p->cb = cb;
	p->arg = arg;
	if (event_base_once(m->base, -1, EV_TIMEOUT, mock_deliver, p,
	    NULL) != 0) {
		dns_answer_free(a);
		free(p);
		return -1;
	}
	return 0;
}

static void
mock_free(void *impl)
{
	free(impl);
}

static const struct dns_ops mock_ops = { mock_query, mock_free };

/* dns_mock_new - a resolver answering from table (not copied) */
danests_status
dns_mock_new(struct event_base *base, const struct dns_mock_entry *table,
    size_t n, struct dns **out)
{
	struct mock *m;
	struct dns *d;

	if ((m = xcalloc(1, sizeof(*m))) == NULL ||
	    (d = xcalloc(1, sizeof(*d))) == NULL) {
		free(m);
		return DANESTS_TEMP;
	}
	m->base = base;
	m->table = table;
	m->n = n;
	d->ops = &mock_ops;
	d->impl = m;
	*out = d;
	return DANESTS_OK;
}

/* dns_mock_count - count the queries of a mock resolver into *n */
void
dns_mock_count(struct dns *d, size_t *n)
{
	((struct mock *)d->impl)->count = n;
}
