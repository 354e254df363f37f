/*
 * dns.c - DNS lookups that carry their DNSSEC status
 *
 * Production lookups go through getdns in stub mode to one validating
 * resolver, with the EDNS DO bit set, and trust the AD bit of its replies
 * (the model of Postfix and Exim: the resolver is local or on a trusted
 * path).  getdns's own in-library validation is deliberately not used.
 *
 * getdns matches a reply to its query by ID only; the raw reply
 * (replies_full) goes to dns_reply_map (dns_reply.c), which checks the
 * question and maps rcode and AD bit to a DNSSEC status.  A timeout, a
 * network error or no reply is indeterminate.
 *
 * getdns in stub mode sends a UDP query once and reports a timeout when
 * no reply came (it retransmits to nothing but a next upstream): a query
 * the resolver dropped under load would be lost.  So the query's time
 * (dns_timeout) is split into DNS_TRIES tries and a try that timed out
 * is sent again while tries remain; the resolver answers a repeated
 * question from the resolution it has under way.
 *
 * Above the resolver implementations, dns_query paces the queries: at
 * most dns_max_queries are outstanding (a resolver drops what exceeds
 * its request lists: unbound's num-queries-per-thread), the others wait
 * in a queue fair across decisions.
 */
#include "danests-internal.h"

#include <arpa/inet.h>
#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>
#include <getdns/getdns_ext_libevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DNS_TRIES	3	/* sends of one query, at most */
#define DNS_TRY_MIN_MS	300	/* shortest time one try waits */

struct gdns {
	getdns_context *ctx;
	unsigned tries;		/* DNS_TRIES, or 1 for a short timeout */
	bool closing;		/* being destroyed: no new sends */
};

struct gquery {
	struct gdns *g;
	dns_cb *cb;
	void *arg;
	char *qname;
	uint16_t qtype;
	unsigned tries_left;	/* sends after the current one */
};

/* One query of the pacing layer: started, or waiting in its group. */
struct dns_pq {
	struct dns *d;
	struct dns_group *group;
	struct dns_pq *next;	/* in the group's queue */
	dns_cb *cb;
	void *arg;
	uint16_t type;
	char name[];		/* the query name */
};

/* The waiting queries of one owner. */
struct dns_group {
	const void *owner;
	struct dns_pq *head, *tail;
	struct dns_group *rr_next;	/* round-robin order */
	struct dns_group *h_next;	/* hash chain */
};

/* dns_answer_free - release an answer and its records */
void
dns_answer_free(struct dns_answer *a)
{
	size_t i;

	if (a == NULL)
		return;
	for (i = 0; i < a->nrr; i++) {
		free(a->rr[i].target);
		free(a->rr[i].rdata);
	}
	free(a->rr);
	free(a->qname);
	free(a->cname);
	free(a);
}

/* gdns_callback - turn a getdns response into a dns_answer */
static void
gdns_callback(getdns_context *ctx, getdns_callback_type_t type,
    getdns_dict *resp, void *arg, getdns_transaction_t tid)
{
	struct gquery *q = arg;
	struct dns_answer *a;
	getdns_list *replies = NULL;
	getdns_bindata *wire = NULL;
	size_t n = 0;
	dns_cb *cb;
	void *cbarg;

	(void)ctx;
	(void)tid;
	if (type == GETDNS_CALLBACK_TIMEOUT && q->tries_left > 0 &&
	    !q->g->closing) {
		/* Lost on the way or dropped by a busy resolver: ask again
		 * while the query's time lasts. */
		q->tries_left--;
		if (getdns_general(q->g->ctx, q->qname, q->qtype, NULL, q,
		    &tid, gdns_callback) == GETDNS_RETURN_GOOD) {
			getdns_dict_destroy(resp);
			return;
		}
	}
	if ((a = xcalloc(1, sizeof(*a))) == NULL) {
		/* Nothing can be reported without memory: fail closed. */
		getdns_dict_destroy(resp);
		q->cb(q->arg, NULL);
		free(q->qname);
		free(q);
		return;
	}
	a->qname = q->qname;
	a->qtype = q->qtype;
	a->rcode = DNS_R_ERROR;
	a->sec = DANESTS_SEC_INDETERMINATE;
	switch (type) {
	case GETDNS_CALLBACK_COMPLETE:
		/* The reply as received: dns_reply_map checks it against
		 * the query (getdns matched only its ID). */
		if (getdns_dict_get_list(resp, "replies_full", &replies) ==
		    GETDNS_RETURN_GOOD)
			(void)getdns_list_get_length(replies, &n);
		if (n == 1 && getdns_list_get_bindata(replies, 0, &wire) ==
		    GETDNS_RETURN_GOOD && wire != NULL)
			dns_reply_map(a, wire->data, wire->size);
		else
			strlcpy(a->why, n > 1 ? "several replies" : "no reply",
			    sizeof(a->why));
		break;
	case GETDNS_CALLBACK_TIMEOUT:
		a->rcode = DNS_R_TIMEOUT;
		strlcpy(a->why, "timeout", sizeof(a->why));
		break;
	case GETDNS_CALLBACK_CANCEL:
		strlcpy(a->why, "cancelled", sizeof(a->why));
		break;
	default:
		strlcpy(a->why, "resolver error", sizeof(a->why));
		break;
	}
	getdns_dict_destroy(resp);
	cb = q->cb;
	cbarg = q->arg;
	free(q);
	cb(cbarg, a);
}

/* gdns_query - start one asynchronous stub query */
static int
gdns_query(void *impl, const char *name, uint16_t type, dns_cb *cb, void *arg)
{
	struct gdns *g = impl;
	struct gquery *q;
	getdns_transaction_t tid;

	if ((q = xcalloc(1, sizeof(*q))) == NULL)
		return -1;
	if ((q->qname = strdup(name)) == NULL) {
		free(q);
		return -1;
	}
	q->g = g;
	q->qtype = type;
	q->cb = cb;
	q->arg = arg;
	q->tries_left = g->tries - 1;
	if (getdns_general(g->ctx, name, type, NULL, q, &tid, gdns_callback) !=
	    GETDNS_RETURN_GOOD) {
		free(q->qname);
		free(q);
		return -1;
	}
	return 0;
}

/* gdns_free - destroy the getdns context; pending callbacks are cancelled */
static void
gdns_free(void *impl)
{
	struct gdns *g = impl;

	g->closing = true;
	getdns_context_destroy(g->ctx);
	free(g);
}

static const struct dns_ops gdns_ops = { gdns_query, gdns_free };

/* dns_getdns_new - stub resolver to addr:port over getdns on base */
danests_status
dns_getdns_new(struct event_base *base, const char *addr, unsigned port,
    unsigned timeout_ms, struct dns **out, char *why, size_t whylen)
{
	struct gdns *g;
	struct dns *d;
	getdns_list *ups = NULL;
	getdns_dict *up = NULL;
	getdns_bindata atype, adata;
	unsigned char sa[16];
	unsigned try_ms;
	int fam;

	if (inet_pton(AF_INET, addr, sa) == 1) {
		fam = AF_INET;
		atype.data = (uint8_t *)"IPv4";
		atype.size = 4;
		adata.size = 4;
	} else if (inet_pton(AF_INET6, addr, sa) == 1) {
		fam = AF_INET6;
		atype.data = (uint8_t *)"IPv6";
		atype.size = 4;
		adata.size = 16;
	} else {
		why_set(why, whylen, "resolver is not an IP address: %s", addr);
		return DANESTS_PERM;
	}
	(void)fam;
	adata.data = sa;
	if ((g = xcalloc(1, sizeof(*g))) == NULL ||
	    (d = xcalloc(1, sizeof(*d))) == NULL) {
		free(g);
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	/* A try waits a DNS_TRIES-th of the query's time; the whole query
	 * no longer than timeout_ms. */
	g->tries = timeout_ms / DNS_TRIES >= DNS_TRY_MIN_MS ? DNS_TRIES : 1;
	try_ms = timeout_ms / g->tries;
	if (getdns_context_create(&g->ctx, 0) != GETDNS_RETURN_GOOD) {
		why_set(why, whylen, "getdns: cannot create context");
		goto fail;
	}
	if ((ups = getdns_list_create()) == NULL ||
	    (up = getdns_dict_create()) == NULL ||
	    getdns_dict_set_bindata(up, "address_type", &atype) ||
	    getdns_dict_set_bindata(up, "address_data", &adata) ||
	    getdns_dict_set_int(up, "port", port) ||
	    getdns_list_set_dict(ups, 0, up) ||
	    getdns_context_set_resolution_type(g->ctx, GETDNS_RESOLUTION_STUB) ||
	    getdns_context_set_upstream_recursive_servers(g->ctx, ups) ||
	    getdns_context_set_edns_do_bit(g->ctx, 1) ||
	    getdns_context_set_timeout(g->ctx, try_ms) ||
	    getdns_context_set_follow_redirects(g->ctx,
	    GETDNS_REDIRECTS_FOLLOW) ||
	    getdns_extension_set_libevent_base(g->ctx, base)) {
		why_set(why, whylen, "getdns: cannot configure stub resolver "
		    "%s port %u", addr, port);
		goto fail;
	}
	getdns_dict_destroy(up);
	getdns_list_destroy(ups);
	d->ops = &gdns_ops;
	d->impl = g;
	*out = d;
	return DANESTS_OK;
fail:
	getdns_dict_destroy(up);
	getdns_list_destroy(ups);
	if (g->ctx)
		getdns_context_destroy(g->ctx);
	free(g);
	free(d);
	return DANESTS_TEMP;
}

/* group_hash - bucket of an owner */
static size_t
group_hash(const void *owner)
{
	uintptr_t v = (uintptr_t)owner;

	v ^= v >> 17;
	v *= 0x9e3779b1u;
	return (size_t)(v >> 7) % DNS_GROUP_BUCKETS;
}

/* pq_answer - an answer that says the query could not be asked */
static struct dns_answer *
pq_answer(const struct dns_pq *p, const char *why)
{
	struct dns_answer *a;

	if ((a = xcalloc(1, sizeof(*a))) == NULL)
		return NULL;
	if ((a->qname = strdup(p->name)) == NULL) {
		free(a);
		return NULL;
	}
	a->qtype = p->type;
	a->rcode = DNS_R_ERROR;
	a->sec = DANESTS_SEC_INDETERMINATE;
	strlcpy(a->why, why, sizeof(a->why));
	return a;
}

static void pq_pump(struct dns *);

/* pq_done - a started query answered: free its slot, hand the answer on,
 * then start what waits */
static void
pq_done(void *arg, struct dns_answer *ans)
{
	struct dns_pq *p = arg;
	struct dns *d = p->d;
	dns_cb *cb = p->cb;
	void *cbarg = p->arg;

	free(p);
	d->inflight--;
	cb(cbarg, ans);
	pq_pump(d);
}

/* pq_start - ask the resolver; -1 when it could not start */
static int
pq_start(struct dns *d, struct dns_pq *p)
{
	if (d->ops->query(d->impl, p->name, p->type, pq_done, p) != 0)
		return -1;
	if (++d->inflight > d->peak)
		d->peak = d->inflight;
	return 0;
}

/* pq_take - the next waiting query, round-robin over the groups */
static struct dns_pq *
pq_take(struct dns *d)
{
	struct dns_group *g, **gp;
	struct dns_pq *p;

	if ((g = d->rr_head) == NULL)
		return NULL;
	p = g->head;
	if ((g->head = p->next) == NULL)
		g->tail = NULL;
	p->next = NULL;
	p->group = NULL;
	d->queued--;
	/* off the front; to the back when more of it waits */
	if ((d->rr_head = g->rr_next) == NULL)
		d->rr_tail = NULL;
	g->rr_next = NULL;
	if (g->head != NULL) {
		if (d->rr_tail != NULL)
			d->rr_tail->rr_next = g;
		else
			d->rr_head = g;
		d->rr_tail = g;
	} else {
		for (gp = &d->bucket[group_hash(g->owner)]; *gp != g;
		    gp = &(*gp)->h_next)
			;
		*gp = g->h_next;
		free(g);
	}
	return p;
}

/* pq_pump - start waiting queries while slots are free; one that cannot
 * start is answered as a DNS error */
static void
pq_pump(struct dns *d)
{
	struct dns_pq *p;
	struct dns_answer *a;

	while (!d->closing && d->inflight < d->max &&
	    (p = pq_take(d)) != NULL) {
		if (pq_start(d, p) == 0)
			continue;
		a = pq_answer(p, "cannot start query");
		p->cb(p->arg, a);
		free(p);
	}
}

/* pq_enqueue - wait for a slot in owner's group; -1 on no memory */
static int
pq_enqueue(struct dns *d, const void *owner, struct dns_pq *p)
{
	struct dns_group *g;
	size_t h = group_hash(owner);

	for (g = d->bucket[h]; g != NULL && g->owner != owner; g = g->h_next)
		;
	if (g == NULL) {
		if ((g = xcalloc(1, sizeof(*g))) == NULL)
			return -1;
		g->owner = owner;
		g->h_next = d->bucket[h];
		d->bucket[h] = g;
		if (d->rr_tail != NULL)
			d->rr_tail->rr_next = g;
		else
			d->rr_head = g;
		d->rr_tail = g;
	}
	p->group = g;
	if (g->tail != NULL)
		g->tail->next = p;
	else
		g->head = p;
	g->tail = p;
	d->queued++;
	return 0;
}

/* dns_set_max - bound the queries outstanding at the resolver */
void
dns_set_max(struct dns *d, unsigned max)
{
	if (d == NULL)
		return;
	d->max = max;
	pq_pump(d);
}

/* dns_query_for - start a query, or queue it behind the bound */
int
dns_query_for(struct dns *d, const void *owner, const char *name,
    uint16_t type, dns_cb *cb, void *arg)
{
	struct dns_pq *p;
	size_t len;

	if (d == NULL || d->closing)
		return -1;
	if (d->max == 0)
		return d->ops->query(d->impl, name, type, cb, arg);
	if ((len = strnlen(name, DANESTS_NAME_MAX * 2)) >= DANESTS_NAME_MAX * 2 ||
	    (p = xcalloc(1, sizeof(*p) + len + 1)) == NULL)
		return -1;
	memcpy(p->name, name, len + 1);
	p->d = d;
	p->type = type;
	p->cb = cb;
	p->arg = arg;
	/* A free slot goes to a new query only when nobody waits. */
	if (d->queued == 0 && d->inflight < d->max) {
		if (pq_start(d, p) == 0)
			return 0;
		free(p);
		return -1;
	}
	if (pq_enqueue(d, owner, p) != 0) {
		free(p);
		return -1;
	}
	return 0;
}

/* dns_query - start a query on any resolver implementation */
int
dns_query(struct dns *d, const char *name, uint16_t type, dns_cb *cb,
    void *arg)
{
	return dns_query_for(d, arg, name, type, cb, arg);
}

/* dns_free - release a resolver; waiting queries are answered
 * "cancelled" like the started ones */
void
dns_free(struct dns *d)
{
	struct dns_pq *p;

	if (d == NULL)
		return;
	/* Cancelled queries call back; what they start must fail. */
	d->closing = true;
	d->ops->free(d->impl);
	while ((p = pq_take(d)) != NULL) {
		p->cb(p->arg, pq_answer(p, "cancelled"));
		free(p);
	}
	free(d);
}

/* dns_resolvconf_first - first "nameserver" line of a resolv.conf */
danests_status
dns_resolvconf_first(const char *path, char *addr, size_t addrlen)
{
	FILE *fp;
	char line[512], *p, *e;
	unsigned char sa[16];

	if ((fp = fopen(path, "r")) == NULL)
		return DANESTS_TEMP;
	while (fgets(line, sizeof(line), fp) != NULL) {
		p = line + strspn(line, " \t");
		if (strncmp(p, "nameserver", 10) != 0 ||
		    (p[10] != ' ' && p[10] != '\t'))
			continue;
		p += 10;
		p += strspn(p, " \t");
		e = p + strcspn(p, " \t\r\n%");
		*e = '\0';
		if (inet_pton(AF_INET, p, sa) != 1 &&
		    inet_pton(AF_INET6, p, sa) != 1)
			continue;
		fclose(fp);
		return strlcpy(addr, p, addrlen) < addrlen ? DANESTS_OK :
		    DANESTS_PERM;
	}
	fclose(fp);
	return DANESTS_NOTFOUND;
}
