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
 */
#include "danests-internal.h"

#include <arpa/inet.h>
#include <getdns/getdns.h>
#include <getdns/getdns_extra.h>
#include <getdns/getdns_ext_libevent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct gdns {
	getdns_context *ctx;
};

struct gquery {
	dns_cb *cb;
	void *arg;
	char *qname;
	uint16_t qtype;
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
	q->qtype = type;
	q->cb = cb;
	q->arg = arg;
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
	    getdns_context_set_timeout(g->ctx, timeout_ms) ||
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

/* dns_query - start a query on any resolver implementation */
int
dns_query(struct dns *d, const char *name, uint16_t type, dns_cb *cb,
    void *arg)
{
	if (d == NULL || d->closing)
		return -1;
	return d->ops->query(d->impl, name, type, cb, arg);
}

/* dns_free - release a resolver */
void
dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	/* Cancelled queries call back; what they start must fail. */
	d->closing = true;
	d->ops->free(d->impl);
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
