/*
 * sts.c - find the MTA-STS policy that applies to a domain (RFC 8461 3-5)
 *
 * Combines the TXT lookup, the HTTPS fetch and the shared cache:
 *   - a cached, unexpired policy is used; its TXT id is re-checked at most
 *     every sts_recheck seconds; a new id triggers a refetch; when the
 *     TXT lookup or the refetch fails the cached policy stays (5.1: no
 *     downgrade) and the error is recorded with it;
 *   - without a cached policy, a failed fetch or an invalid policy means
 *     no policy (trust on first use), the failure kept for reporting;
 *   - a TXT lookup that fails (bogus, SERVFAIL, timeout) with nothing
 *     cached is reported as STS_DNS_FAIL: the engine then refuses the
 *     hosts DANE does not protect instead of reading it as "no policy";
 *     so is a failed address lookup of the policy host (bogus, or a
 *     timeout or error that leaves no address): the fetch was never
 *     tried, so RFC 8461 3.3's "no policy after a failed fetch" does not
 *     apply; a policy host without addresses (NXDOMAIN, NODATA) is a
 *     fetch failure;
 *   - mode none replaces a cached policy; expired entries are removed.
 */
#include "danests-internal.h"

#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct sts_req {
	struct danests_ctx *ctx;
	struct sts_req *next, *prev;	/* on ctx->sts_fetching */
	bool fetching;
	char domain[DANESTS_NAME_MAX];
	char host[DANESTS_NAME_MAX + 8];	/* mta-sts.<domain> */
	char txtname[DANESTS_NAME_MAX + 9];	/* _mta-sts.<domain> */
	unsigned flags;
	sts_lookup_cb *cb;
	void *arg;
	int outstanding;
	bool have_cache;
	bool aaaa_lost;		/* no AAAA query and no memory to say so */
	struct cache_sts cached;
	char txt_id[DANESTS_STS_ID_MAX + 1];
	struct dns_answer *a, *aaaa;
	struct sts_result res;
	bool done;
	/* first contact in a fleet: the fetch lock held, or awaited */
	bool locked;
	char token[STORE_TOKEN_LEN + 1];
	struct event *wait_ev;
	struct timeval started, wait_until;
};

#define STS_WAIT_POLL_MS	100	/* polling the store for another
					 * node's fetch */

/* sts_result_clear - release what a result owns */
void
sts_result_clear(struct sts_result *r)
{
	if (r->sts != NULL) {
		sts_policy_clear(&r->sts->policy);
		free(r->sts->error);
		free(r->sts);
		r->sts = NULL;
	}
}

/* req_unref - drop one outstanding operation; free when none is left */
static void
req_unref(struct sts_req *q)
{
	if (--q->outstanding > 0)
		return;
	if (q->have_cache)
		cache_sts_clear(&q->cached);
	dns_answer_free(q->a);
	dns_answer_free(q->aaaa);
	sts_result_clear(&q->res);
	q->ctx->pending--;
	free(q);
}

/* fetch_release - drop the first-contact fetch lock (if held): the
 * policy, if any, is in the store by now; a node still waiting takes
 * the lock and fetches itself when it finds none */
static void
fetch_release(struct sts_req *q)
{
	char name[DANESTS_NAME_MAX + 16];

	if (!q->locked)
		return;
	q->locked = false;
	snprintf(name, sizeof(name), "fetch:%s", q->domain);
	store_unlock(q->ctx->store, name, q->token);
}

/* finish - report once */
static void
finish(struct sts_req *q)
{
	if (q->done)
		return;
	q->done = true;
	fetch_release(q);
	q->cb(q->arg, &q->res);
}

/* sts_from_entry - a decision's sts object from a cache entry */
static struct danests_sts *
sts_from_entry(const struct cache_sts *e, const char *source)
{
	struct danests_sts *s;

	if ((s = xcalloc(1, sizeof(*s))) == NULL)
		return NULL;
	if (sts_policy_copy(&e->policy, &s->policy) != DANESTS_OK) {
		free(s);
		return NULL;
	}
	strlcpy(s->id, e->id, sizeof(s->id));
	s->source = source;
	s->fetched = e->fetched;
	s->expires = e->expires;
	if (e->last_error[0] != '\0')
		s->error = strdup(e->last_error);
	return s;
}

/* sts_newer - a is newer than b: fetched later, or at the same second
 * with a greater TXT id (a total order every node applies alike) */
bool
sts_newer(const struct cache_sts *a, const struct cache_sts *b)
{
	if (a->fetched != b->fetched)
		return a->fetched > b->fetched;
	return strcmp(a->id, b->id) > 0;
}

/*
 * store_adopt - the shared store's policy for domain replaces the local
 * one (or fills its place) when it is newer, expires after `after` and,
 * when want_id is not NULL, carries that TXT id; it is written to the
 * local cache.  True when adopted.  A store that cannot be read changes
 * nothing: the local cache answers.  locked: the caller holds the
 * domain's lock, so the write endpoint is read (see store_sts_get).
 */
static bool
store_adopt(struct danests_ctx *ctx, const char *domain,
    struct cache_sts *local, bool *have, time_t after, const char *want_id,
    bool locked)
{
	struct cache_sts r;
	char cwhy[DANESTS_WHY_MAX];
	danests_status st;

	st = store_sts_get(ctx->store, domain, &r, locked);
	metrics_cache(ctx, METRICS_CACHE_STORE_POLICY, st);
	if (st == DANESTS_TEMP)
		metrics_store_error(ctx);
	if (st != DANESTS_OK)
		return false;
	if (r.expires <= after || (*have && !sts_newer(&r, local)) ||
	    (want_id != NULL && strcmp(r.id, want_id) != 0)) {
		cache_sts_clear(&r);
		return false;
	}
	(void)cache_sts_put(ctx->cache, domain, &r, cwhy, sizeof(cwhy));
	if (*have)
		cache_sts_clear(local);
	*local = r;
	*have = true;
	return true;
}

/* use_cached - answer with the cached policy, recording err if any */
static void
use_cached(struct sts_req *q, const char *err)
{
	char why[DANESTS_WHY_MAX];

	if (err != NULL)
		strlcpy(q->cached.last_error, err,
		    sizeof(q->cached.last_error));
	q->cached.last_check = time(NULL);
	if (q->ctx->cache != NULL)
		(void)cache_sts_put(q->ctx->cache, q->domain, &q->cached, why,
		    sizeof(why));
	q->res.state = STS_POLICY;
	if ((q->res.sts = sts_from_entry(&q->cached, "cache")) == NULL)
		q->res.state = STS_FAIL;
	finish(q);
}

/* no_policy - no policy applies; keep why for reporting */
static void
no_policy(struct sts_req *q, danests_result_type reason, const char *detail)
{
	q->res.state = STS_NONE;
	if (reason != DANESTS_RT_NONE)
		snprintf(q->res.error, sizeof(q->res.error), "%s: %s",
		    danests_result_type_name(reason), detail);
	finish(q);
}

/* failed - the lookup itself failed: with a cache keep it, else report */
static void
failed(struct sts_req *q, danests_result_type reason, const char *detail)
{
	char err[DANESTS_WHY_MAX];

	snprintf(err, sizeof(err), "%s: %s", danests_result_type_name(reason),
	    detail);
	if (q->have_cache) {
		use_cached(q, err);
		return;
	}
	if (q->ctx->cache != NULL && cache_was_rebuilt(q->ctx->cache)) {
		/* The cache was lost: this domain may have had a policy.
		 * Refuse to read the failure as "no policy". */
		q->res.state = STS_FAIL;
		snprintf(q->res.error, sizeof(q->res.error), "%.200s "
		    "(policy cache was rebuilt)", err);
		finish(q);
		return;
	}
	no_policy(q, reason, detail);
}

/*
 * local_failed - a failure of this process (a lookup cancelled because its
 * context goes, out of memory, a fetch or a DNS query that could not
 * start) says nothing about the domain: with a cached policy keep it, else
 * a policy may exist and cannot be known now.  RFC 8461 3.3 reads a failed
 * fetch on first contact as "no policy"; that is for the policy host's
 * failures, never for ours.
 */
static void
local_failed(struct sts_req *q, const char *detail)
{
	char err[DANESTS_WHY_MAX];

	snprintf(err, sizeof(err), "%s: %.200s",
	    danests_reason_name(DANESTS_R_LOCAL_ERROR), detail);
	if (q->have_cache) {
		use_cached(q, err);
		return;
	}
	q->res.state = STS_FAIL;
	q->res.fail_reason = DANESTS_R_LOCAL_ERROR;
	strlcpy(q->res.error, err, sizeof(q->res.error));
	finish(q);
}

/* dns_failed - the policy host's address lookup failed: with a cached
 * policy keep it, else a policy may exist but can't be fetched now
 * (STS_DNS_FAIL, as for the TXT lookup) */
static void
dns_failed(struct sts_req *q, danests_reason r, const struct dns_answer *ans)
{
	char err[DANESTS_WHY_MAX];

	snprintf(err, sizeof(err), "%s: %.100s address lookup: %.100s",
	    danests_reason_name(r), q->host, ans ? ans->why : "out of memory");
	if (q->have_cache) {
		use_cached(q, err);
		return;
	}
	q->res.state = STS_DNS_FAIL;
	q->res.fail_reason = r;
	strlcpy(q->res.error, err, sizeof(q->res.error));
	finish(q);
}

/* fetching_link - note a lookup waiting on the fetcher */
static void
fetching_link(struct sts_req *q)
{
	q->fetching = true;
	q->prev = NULL;
	q->next = q->ctx->sts_fetching;
	if (q->next != NULL)
		q->next->prev = q;
	q->ctx->sts_fetching = q;
}

/* fetching_unlink - the fetch answered (or was cancelled) */
static void
fetching_unlink(struct sts_req *q)
{
	if (!q->fetching)
		return;
	q->fetching = false;
	if (q->prev != NULL)
		q->prev->next = q->next;
	else
		q->ctx->sts_fetching = q->next;
	if (q->next != NULL)
		q->next->prev = q->prev;
}

/* fetch_done - a policy body arrived, or the fetch failed */
static void
fetch_done(void *arg, struct sts_fetch_result *fr)
{
	struct sts_req *q = arg;
	struct cache_sts e;
	const char *why = NULL;
	char cwhy[DANESTS_WHY_MAX];
	time_t now = time(NULL);

	fetching_unlink(q);
	if (q->wait_ev != NULL) {
		event_free(q->wait_ev);
		q->wait_ev = NULL;
	}
	if (q->done) {
		req_unref(q);
		return;
	}
	if (fr->status != DANESTS_OK)
		metrics_fetch(q->ctx, fr->local ? METRICS_FETCH_LOCAL :
		    fr->reason == DANESTS_RT_STS_WEBPKI_INVALID ?
		    METRICS_FETCH_WEBPKI : METRICS_FETCH_ERROR);
	if (fr->status != DANESTS_OK && fr->local) {
		local_failed(q, fr->why);
		req_unref(q);
		return;
	}
	if (fr->status != DANESTS_OK) {
		failed(q, fr->reason != DANESTS_RT_NONE ? fr->reason :
		    DANESTS_RT_STS_POLICY_FETCH_ERROR, fr->why);
		req_unref(q);
		return;
	}
	memset(&e, 0, sizeof(e));
	if (sts_policy_parse(fr->body, fr->len, &e.policy, &why) !=
	    DANESTS_OK) {
		metrics_fetch(q->ctx, METRICS_FETCH_INVALID);
		failed(q, DANESTS_RT_STS_POLICY_INVALID, why ? why : "invalid policy");
		req_unref(q);
		return;
	}
	metrics_fetch(q->ctx, METRICS_FETCH_OK);
	strlcpy(e.id, q->txt_id, sizeof(e.id));
	e.fetched = e.last_check = now;
	e.expires = now + (time_t)e.policy.max_age;
	if (q->ctx->cache != NULL && !(q->flags & DANESTS_F_NO_CACHE)) {
		/* RFC 8461 5: mode none and max_age 0 replace what was
		 * cached; an expired policy is simply not kept. */
		if (e.policy.max_age == 0)
			(void)cache_sts_del(q->ctx->cache, q->domain, cwhy,
			    sizeof(cwhy));
		else
			(void)cache_sts_put(q->ctx->cache, q->domain, &e, cwhy,
			    sizeof(cwhy));
		/* the fleet's copy: kept only if newer than what it holds */
		if (q->ctx->store != NULL) {
			bool written;

			if (store_sts_put(q->ctx->store, q->domain, &e,
			    &written) == DANESTS_TEMP)
				metrics_store_error(q->ctx);
		}
	}
	q->res.state = STS_POLICY;
	if ((q->res.sts = sts_from_entry(&e, "fetched")) == NULL)
		q->res.state = STS_FAIL;
	sts_policy_clear(&e.policy);
	finish(q);
	req_unref(q);
}

/* host_done - the policy host's addresses are known: fetch */
static void
host_done(struct sts_req *q)
{
	const char *addrs[32];
	char buf[32][64];
	size_t n = 0, i;
	struct dns_answer *as[2] = { q->a, q->aaaa };
	int k;

	for (k = 0; k < 2; k++) {
		if (as[k] == NULL || as[k]->rcode != DNS_R_OK)
			continue;
		for (i = 0; i < as[k]->nrr && n < 32; i++) {
			if (as[k]->rr[i].rdlen != (k ? 16u : 4u) ||
			    inet_ntop(k ? AF_INET6 : AF_INET,
			    as[k]->rr[i].rdata, buf[n], sizeof(buf[n])) == NULL)
				continue;
			addrs[n] = buf[n];
			n++;
		}
	}
	/*
	 * A lookup of the policy host that failed says nothing about the
	 * host: it is a DNS failure like a failed TXT lookup, never "the
	 * host has no address" (which, on first contact, would read as no
	 * policy under RFC 8461 3.3).  Bogus is bogus even when the other
	 * family answered; a timeout or error matters only when no address
	 * is left to fetch from.
	 */
	for (k = 0; k < 2; k++)
		if (as[k] == NULL || as[k]->rcode == DNS_R_SERVFAIL) {
			dns_failed(q, as[k] ? DANESTS_R_DNSSEC_INVALID :
			    DANESTS_R_DNS_ERROR, as[k]);
			return;
		}
	for (k = 0; n == 0 && k < 2; k++)
		if (as[k]->rcode == DNS_R_TIMEOUT ||
		    as[k]->rcode == DNS_R_ERROR) {
			dns_failed(q, as[k]->rcode == DNS_R_TIMEOUT ?
			    DANESTS_R_DNS_TIMEOUT : DANESTS_R_DNS_ERROR, as[k]);
			return;
		}
	if (n == 0) {
		failed(q, DANESTS_RT_STS_POLICY_FETCH_ERROR, q->a && q->a->rcode ==
		    DNS_R_NXDOMAIN ? "policy host does not exist" :
		    "policy host has no address");
		return;
	}
	q->outstanding++;
	if (q->ctx->fetcher == NULL || sts_fetch_start(q->ctx->fetcher,
	    q->domain, addrs, n, fetch_done, q) != DANESTS_OK) {
		q->outstanding--;
		local_failed(q, "cannot start fetch");
		return;
	}
	fetching_link(q);
}

/* sts_cancel_fetches - fail every lookup still waiting on a fetch */
void
sts_cancel_fetches(struct danests_ctx *ctx)
{
	struct sts_fetch_result r;

	while (ctx->sts_fetching != NULL) {
		memset(&r, 0, sizeof(r));
		r.status = DANESTS_TEMP;
		r.reason = DANESTS_RT_STS_POLICY_FETCH_ERROR;
		r.local = true;
		strlcpy(r.why, "cancelled", sizeof(r.why));
		fetch_done(ctx->sts_fetching, &r);
	}
}

/* addr_cb - A or AAAA of mta-sts.<domain> */
static void
addr_cb(void *arg, struct dns_answer *ans)
{
	struct sts_req *q = arg;

	if (ans != NULL && ans->qtype == DNS_T_AAAA)
		q->aaaa = ans;
	else if (ans != NULL)
		q->a = ans;
	if (!q->done && q->a != NULL && q->aaaa_lost)
		local_failed(q, "out of memory");
	else if (!q->done && q->a != NULL && q->aaaa != NULL)
		host_done(q);
	else if (!q->done && ans == NULL)
		dns_failed(q, DANESTS_R_DNS_ERROR, NULL);
	req_unref(q);
}

/* start_fetch - look up the policy host, then fetch */
static void
start_fetch(struct sts_req *q)
{
	q->outstanding += 2;
	if (dns_query_for(q->ctx->dns, q->arg, q->host, DNS_T_A, addr_cb,
	    q) != 0) {
		q->outstanding -= 2;
		local_failed(q, "cannot start DNS lookup");
		return;
	}
	if (dns_query_for(q->ctx->dns, q->arg, q->host, DNS_T_AAAA, addr_cb,
	    q) != 0) {
		/* the A callback will still come: let it find no AAAA */
		q->outstanding--;
		if ((q->aaaa = xcalloc(1, sizeof(*q->aaaa))) != NULL) {
			q->aaaa->rcode = DNS_R_ERROR;
			q->aaaa->qtype = DNS_T_AAAA;
		} else
			q->aaaa_lost = true;
	}
}

/*
 * Fleet first contact: a policy no node of the fleet holds yet (a domain
 * new to this node, or a TXT id other than the cached policy's) is
 * fetched by one node at a time.  The node that takes the domain's
 * fetch lock in the store (SET NX PX) fetches, writes the policy to the
 * store and releases the lock as its lookup ends.  Under the lock it
 * looks up the policy host, waits its turn among max_fetches and then
 * fetches (fetch_timeout from when the fetch runs): in a burst of new
 * domains the queue alone outlasts fetch_timeout, so the lock lives as
 * long as the holder's lookup may (decision_timeout); its expiry only
 * frees the lock of a node that died.  A node that does not get it
 * polls the store every STS_WAIT_POLL_MS from the event loop (never
 * blocking it) for at most half its decision's time, the other half
 * being for its own fetch: it adopts the policy the other node wrote, if
 * it carries the TXT record's id (an older policy in the store is never
 * taken for the new one); when the lock is released without a policy
 * (the other node's fetch failed) it takes the lock and fetches itself,
 * and so it does when the wait ends, so that a slow node never turns
 * into "no policy".  A store that does not answer leaves the fetch to
 * this node, as without a store.
 */

enum wait_step { WAIT_ADOPTED, WAIT_FETCH, WAIT_MORE };

/* fetch_claim - adopt the store's policy, or take the fetch lock */
static enum wait_step
fetch_claim(struct sts_req *q)
{
	char name[DANESTS_NAME_MAX + 16];
	danests_status st;

	if (store_adopt(q->ctx, q->domain, &q->cached, &q->have_cache,
	    time(NULL), q->txt_id, false))
		return WAIT_ADOPTED;
	snprintf(name, sizeof(name), "fetch:%s", q->domain);
	st = store_lock(q->ctx->store, name, q->ctx->cfg.decision_timeout_ms,
	    q->token);
	if (st == DANESTS_TEMP) {
		metrics_store_error(q->ctx);
		return WAIT_FETCH;
	}
	if (st == DANESTS_NOTFOUND)
		return WAIT_MORE;
	q->locked = true;
	/* written between our read and our lock (by the lock's last
	 * holder, maybe not yet on the replica we read): nothing to fetch */
	if (store_adopt(q->ctx, q->domain, &q->cached, &q->have_cache,
	    time(NULL), q->txt_id, true)) {
		fetch_release(q);
		return WAIT_ADOPTED;
	}
	return WAIT_FETCH;
}

/* fetch_adopted - answer with the policy another node fetched */
static void
fetch_adopted(struct sts_req *q)
{
	q->res.state = STS_POLICY;
	if ((q->res.sts = sts_from_entry(&q->cached, "cache")) == NULL)
		q->res.state = STS_FAIL;
	finish(q);
}

/* fetch_wait_cb - poll the store while another node fetches */
static void
fetch_wait_cb(evutil_socket_t fd, short what, void *arg)
{
	struct sts_req *q = arg;
	struct timeval now, tv;
	enum wait_step w;

	(void)fd;
	(void)what;
	evutil_gettimeofday(&now, NULL);
	if (q->done)
		w = WAIT_ADOPTED;	/* nothing left to answer */
	else if ((w = fetch_claim(q)) == WAIT_MORE &&
	    !evutil_timercmp(&now, &q->wait_until, <))
		w = WAIT_FETCH;		/* the other node is too slow */
	if (w == WAIT_MORE) {
		tv.tv_sec = 0;
		tv.tv_usec = STS_WAIT_POLL_MS * 1000;
		if (evtimer_add(q->wait_ev, &tv) == 0)
			return;
		w = WAIT_FETCH;
	}
	fetching_unlink(q);
	event_free(q->wait_ev);
	q->wait_ev = NULL;
	if (w == WAIT_ADOPTED && !q->done)
		fetch_adopted(q);
	else if (w == WAIT_FETCH)
		start_fetch(q);
	req_unref(q);
}

/* first_contact - fetch under the fleet's lock, or wait for its result */
static void
first_contact(struct sts_req *q)
{
	struct timeval now, tv;
	unsigned ms;
	enum wait_step w = fetch_claim(q);

	if (w == WAIT_ADOPTED) {
		fetch_adopted(q);
		return;
	}
	if (w == WAIT_FETCH) {
		start_fetch(q);
		return;
	}
	/* at most half the decision's budget: the other half is for this
	 * node's own fetch (the holder's lock outlives fetch_timeout) */
	evutil_gettimeofday(&now, NULL);
	ms = q->ctx->cfg.decision_timeout_ms / 2;
	tv.tv_sec = ms / 1000;
	tv.tv_usec = (ms % 1000) * 1000;
	evutil_timeradd(&q->started, &tv, &q->wait_until);
	if (!evutil_timercmp(&now, &q->wait_until, <)) {
		start_fetch(q);
		return;
	}
	tv.tv_sec = 0;
	tv.tv_usec = STS_WAIT_POLL_MS * 1000;
	if ((q->wait_ev = evtimer_new(q->ctx->base, fetch_wait_cb, q)) ==
	    NULL || evtimer_add(q->wait_ev, &tv) != 0) {
		if (q->wait_ev != NULL)
			event_free(q->wait_ev);
		q->wait_ev = NULL;
		start_fetch(q);
		return;
	}
	/* cancelled with the fetches (sts_cancel_fetches) */
	q->outstanding++;
	fetching_link(q);
}

/* txt_cb - the _mta-sts TXT RRset (RFC 8461 3.1) */
static void
txt_cb(void *arg, struct dns_answer *ans)
{
	struct sts_req *q = arg;
	char *txts[16] = { NULL };
	size_t lens[16] = { 0 }, n = 0, i;
	const char *why = NULL;
	danests_status st;

	if (q->done)
		goto out;
	if (ans == NULL || ans->rcode == DNS_R_SERVFAIL ||
	    ans->rcode == DNS_R_TIMEOUT || ans->rcode == DNS_R_ERROR) {
		danests_reason r = ans && ans->rcode == DNS_R_SERVFAIL ?
		    DANESTS_R_DNSSEC_INVALID : ans &&
		    ans->rcode == DNS_R_TIMEOUT ? DANESTS_R_DNS_TIMEOUT :
		    DANESTS_R_DNS_ERROR;

		if (q->have_cache) {
			char err[DANESTS_WHY_MAX];

			snprintf(err, sizeof(err), "%s: TXT lookup failed",
			    danests_reason_name(r));
			use_cached(q, err);
		} else {
			q->res.state = STS_DNS_FAIL;
			q->res.fail_reason = r;
			snprintf(q->res.error, sizeof(q->res.error),
			    "%s: _mta-sts TXT lookup: %s",
			    danests_reason_name(r),
			    ans ? ans->why : "out of memory");
			finish(q);
		}
		goto out;
	}
	for (i = 0; ans->rcode == DNS_R_OK && i < ans->nrr && n < 16; i++) {
		txts[n] = txt_rdata_join(ans->rr[i].rdata, ans->rr[i].rdlen,
		    &lens[n]);
		if (txts[n] != NULL)
			n++;
	}
	st = sts_txt_select((const char *const *)txts, lens, n, q->txt_id,
	    &why);
	for (i = 0; i < n; i++)
		free(txts[i]);
	if (st != DANESTS_OK) {
		/* RFC 8461 5.1: no valid TXT but a cached policy: keep
		 * using it. */
		if (q->have_cache)
			use_cached(q, NULL);
		else if (st == DANESTS_NOTFOUND)
			no_policy(q, DANESTS_RT_NONE, NULL);
		else
			no_policy(q, DANESTS_RT_STS_POLICY_INVALID, why ? why :
			    "invalid TXT record");
		goto out;
	}
	if (q->have_cache && strcmp(q->txt_id, q->cached.id) == 0 &&
	    !(q->flags & STS_F_FORCE)) {
		q->cached.last_error[0] = '\0';
		use_cached(q, NULL);
		goto out;
	}
	/* A policy new to this node (first contact, or a new TXT id) is
	 * fetched once by the fleet; a forced refetch is done here. */
	if ((!q->have_cache || !(q->flags & STS_F_FORCE)) &&
	    q->ctx->store != NULL && q->ctx->cache != NULL &&
	    !(q->flags & DANESTS_F_NO_CACHE))
		first_contact(q);
	else
		start_fetch(q);
out:
	dns_answer_free(ans);
	req_unref(q);
}

/* deferred_cached - answer from a cached policy checked recently */
static void
deferred_cached(evutil_socket_t fd, short what, void *arg)
{
	struct sts_req *q = arg;

	(void)fd;
	(void)what;
	if (!q->done) {
		q->res.state = STS_POLICY;
		if ((q->res.sts = sts_from_entry(&q->cached, "cache")) == NULL)
			q->res.state = STS_FAIL;
		finish(q);
	}
	req_unref(q);
}

/* sts_lookup_start - find the policy for domain; cb is called once */
danests_status
sts_lookup_start(struct danests_ctx *ctx, const char *domain, unsigned flags,
    sts_lookup_cb *cb, void *arg, char *why, size_t whylen)
{
	struct sts_req *q;
	char cwhy[DANESTS_WHY_MAX];
	danests_status st;
	time_t now = time(NULL);

	if ((q = xcalloc(1, sizeof(*q))) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	q->ctx = ctx;
	q->flags = flags;
	evutil_gettimeofday(&q->started, NULL);
	q->cb = cb;
	q->arg = arg;
	strlcpy(q->domain, domain, sizeof(q->domain));
	snprintf(q->host, sizeof(q->host), "mta-sts.%s", domain);
	snprintf(q->txtname, sizeof(q->txtname), "_mta-sts.%s", domain);
	if (ctx->cache != NULL && !(flags & DANESTS_F_NO_CACHE)) {
		st = cache_sts_get(ctx->cache, domain, &q->cached, cwhy,
		    sizeof(cwhy));
		metrics_cache(ctx, METRICS_CACHE_LMDB_POLICY, st);
		if (st == DANESTS_TEMP) {
			/* never read an unreadable cache as "no policy" */
			free(q);
			why_set(why, whylen, "policy cache: %s", cwhy);
			return DANESTS_TEMP;
		}
		if (st == DANESTS_OK && q->cached.expires <= now) {
			(void)cache_sts_del(ctx->cache, domain, cwhy,
			    sizeof(cwhy));
			cache_sts_clear(&q->cached);
		} else if (st == DANESTS_OK)
			q->have_cache = true;
		/* Not checked recently here: the fleet may know better
		 * (a refresh consults the store itself). */
		if (ctx->store != NULL && !(flags & STS_F_FORCE) &&
		    (!q->have_cache ||
		    now - q->cached.last_check >= (time_t)ctx->cfg.sts_recheck_s))
			(void)store_adopt(ctx, domain, &q->cached,
			    &q->have_cache, now, NULL, false);
	}
	ctx->pending++;
	q->outstanding = 1;
	if (q->have_cache && !(flags & STS_F_FORCE) &&
	    now - q->cached.last_check < (time_t)ctx->cfg.sts_recheck_s) {
		/* fresh enough: answer from the loop's next turn */
		q->outstanding++;
		if (event_base_once(ctx->base, -1, EV_TIMEOUT, deferred_cached,
		    q, NULL) != 0) {
			q->outstanding = 0;
			cache_sts_clear(&q->cached);
			ctx->pending--;
			free(q);
			why_set(why, whylen, "cannot schedule event");
			return DANESTS_TEMP;
		}
		req_unref(q);
		return DANESTS_OK;
	}
	/* paced as a lookup of the decision (or refresh) that asked */
	if (dns_query_for(ctx->dns, arg, q->txtname, DNS_T_TXT, txt_cb,
	    q) != 0) {
		req_unref(q);
		why_set(why, whylen, "cannot start DNS lookup");
		return DANESTS_TEMP;
	}
	return DANESTS_OK;
}

/*
 * Refresh ahead of expiry (RFC 8461 5.1: senders should refresh policies
 * before they expire so that a short outage of the policy host does not
 * remove protection).  Every cached policy expiring within the window is
 * refetched, at most `parallel` at a time; a failed refetch keeps the
 * cached policy and records the error with it.
 */
struct refresh;

/* one domain of a refresh; with a shared store, the lock it holds */
struct refresh_item {
	struct refresh *r;
	bool locked;
	char token[STORE_TOKEN_LEN + 1];
};

struct refresh {
	struct danests_ctx *ctx;
	char **domains;
	struct refresh_item *items;
	size_t n, next, running, refreshed, failed;
	time_t before;		/* due: expiring before this */
	unsigned parallel;
	danests_refresh_cb *cb;
	void *arg;
};

static void refresh_pump(struct refresh *);

struct due_list {
	char **domains;
	size_t n;
	time_t before;
	bool nomem;
};

/* collect_due - cache_sts_each callback: entries expiring soon */
static int
collect_due(void *arg, const char *domain, const struct cache_sts *e)
{
	struct due_list *l = arg;
	char **nd;

	if (e->expires > l->before)
		return 0;
	if ((nd = realloc(l->domains, (l->n + 1) * sizeof(*nd))) == NULL ||
	    (nd[l->n] = strdup(domain)) == NULL) {
		if (nd != NULL)
			l->domains = nd;
		l->nomem = true;
		return 1;
	}
	l->domains = nd;
	l->n++;
	return 0;
}

/* refresh_release - drop the domain's lock in the shared store */
static void
refresh_release(struct refresh *r, size_t i)
{
	char name[DANESTS_NAME_MAX + 16];

	if (!r->items[i].locked)
		return;
	r->items[i].locked = false;
	snprintf(name, sizeof(name), "refresh:%s", r->domains[i]);
	store_unlock(r->ctx->store, name, r->items[i].token);
}

enum claim { CLAIM_FETCH, CLAIM_SKIP, CLAIM_ADOPTED };

/*
 * refresh_claim - with a shared store, one node refetches a domain at a
 * time: a domain locked by another node is skipped (its result is read
 * from the store later); a policy another node refreshed meanwhile is
 * adopted instead of fetched.  A store that does not answer leaves the
 * refresh to this node alone.
 */
static enum claim
refresh_claim(struct refresh *r, size_t i)
{
	struct refresh_item *it = &r->items[i];
	struct cache_sts local;
	bool have;
	char name[DANESTS_NAME_MAX + 16], cwhy[DANESTS_WHY_MAX];
	danests_status st;

	snprintf(name, sizeof(name), "refresh:%s", r->domains[i]);
	st = store_lock(r->ctx->store, name, r->ctx->cfg.decision_timeout_ms,
	    it->token);
	if (st == DANESTS_TEMP)
		metrics_store_error(r->ctx);
	if (st == DANESTS_NOTFOUND)
		return CLAIM_SKIP;
	it->locked = st == DANESTS_OK;
	have = cache_sts_get(r->ctx->cache, r->domains[i], &local, cwhy,
	    sizeof(cwhy)) == DANESTS_OK;
	if (store_adopt(r->ctx, r->domains[i], &local, &have, r->before,
	    NULL, it->locked)) {
		cache_sts_clear(&local);
		refresh_release(r, i);
		return CLAIM_ADOPTED;
	}
	if (have)
		cache_sts_clear(&local);
	return CLAIM_FETCH;
}

/* refresh_one_done - one policy refetched (or kept) */
static void
refresh_one_done(void *arg, struct sts_result *res)
{
	struct refresh_item *it = arg;
	struct refresh *r = it->r;

	if (res->state == STS_POLICY && res->sts != NULL &&
	    strcmp(res->sts->source, "fetched") == 0)
		r->refreshed++;
	else
		r->failed++;
	refresh_release(r, (size_t)(it - r->items));
	r->running--;
	refresh_pump(r);
}

/* store_push - cache_sts_each callback: offer a local policy to the
 * shared store (the newest wins there); stop when it does not answer */
static int
store_push(void *arg, const char *domain, const struct cache_sts *e)
{
	struct danests_ctx *ctx = arg;
	bool written;

	if (e->expires <= time(NULL))
		return 0;
	if (store_sts_put(ctx->store, domain, e, &written) == DANESTS_OK)
		return 0;
	metrics_store_error(ctx);
	return 1;
}

/* store_resync - after an outage (or at the first refresh), push the
 * local policies the shared store may have missed */
static void
store_resync(struct danests_ctx *ctx)
{
	char why[DANESTS_WHY_MAX];

	if (!store_unsynced(ctx->store))
		return;
	store_set_synced(ctx->store, true);
	if (cache_sts_each(ctx->cache, store_push, ctx, why, sizeof(why)) !=
	    DANESTS_OK)
		store_set_synced(ctx->store, false);
}

/* refresh_pump - keep up to `parallel` refetches running */
static void
refresh_pump(struct refresh *r)
{
	size_t i;
	char why[DANESTS_WHY_MAX];

	while (r->running < r->parallel && r->next < r->n) {
		i = r->next++;
		if (r->ctx->store != NULL) {
			enum claim c = refresh_claim(r, i);

			if (c == CLAIM_ADOPTED)
				r->refreshed++;
			if (c != CLAIM_FETCH)
				continue;
		}
		if (sts_lookup_start(r->ctx, r->domains[i], STS_F_FORCE,
		    refresh_one_done, &r->items[i], why, sizeof(why)) ==
		    DANESTS_OK)
			r->running++;
		else {
			r->failed++;
			refresh_release(r, i);
		}
	}
	if (r->running > 0 || r->next < r->n)
		return;
	/* Decisions kept in memory must follow the new policies. */
	if (r->refreshed > 0)
		memory_flush(r->ctx);
	r->cb(r->arg, r->n, r->refreshed, r->failed);
	for (i = 0; i < r->n; i++)
		free(r->domains[i]);
	free(r->domains);
	free(r->items);
	free(r);
}

/* refresh_empty - report a refresh that found nothing due */
static void
refresh_empty(evutil_socket_t fd, short what, void *arg)
{
	struct refresh *r = arg;

	(void)fd;
	(void)what;
	r->running = 0;
	refresh_pump(r);
}

/* danests_refresh_async - refetch every policy due within window_s */
danests_status
danests_refresh_async(struct danests_ctx *ctx, unsigned window_s,
    unsigned parallel, danests_refresh_cb *cb, void *arg, char *why,
    size_t whylen)
{
	struct refresh *r;
	struct due_list l;
	danests_status st;
	size_t i;

	if (ctx->cache == NULL || ctx->fetcher == NULL) {
		why_set(why, whylen, "refresh needs the policy cache and "
		    "MTA-STS enabled");
		return DANESTS_PERM;
	}
	if (ctx->store != NULL)
		store_resync(ctx);
	memset(&l, 0, sizeof(l));
	l.before = time(NULL) + (time_t)window_s;
	if ((st = cache_sts_each(ctx->cache, collect_due, &l, why, whylen)) !=
	    DANESTS_OK || l.nomem || (r = xcalloc(1, sizeof(*r))) == NULL) {
		for (i = 0; i < l.n; i++)
			free(l.domains[i]);
		free(l.domains);
		if (st == DANESTS_OK)
			why_set(why, whylen, "out of memory");
		return st == DANESTS_OK ? DANESTS_TEMP : st;
	}
	if (l.n > 0 && (r->items = xcalloc(l.n, sizeof(*r->items))) == NULL) {
		for (i = 0; i < l.n; i++)
			free(l.domains[i]);
		free(l.domains);
		free(r);
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	for (i = 0; i < l.n; i++)
		r->items[i].r = r;
	r->ctx = ctx;
	r->domains = l.domains;
	r->n = l.n;
	r->before = l.before;
	r->parallel = parallel ? parallel : 1;
	r->cb = cb;
	r->arg = arg;
	if (r->n == 0) {
		/* report from the loop, never before returning */
		r->next = r->n;
		r->running = 1;
		if (event_base_once(ctx->base, -1, EV_TIMEOUT,
		    refresh_empty, r, NULL) != 0) {
			free(r);
			why_set(why, whylen, "cannot schedule event");
			return DANESTS_TEMP;
		}
		return DANESTS_OK;
	}
	refresh_pump(r);
	return DANESTS_OK;
}

struct refresh_sync {
	bool done;
	size_t checked, refreshed, failed;
};

/* refresh_sync_cb - store the counts of a synchronous refresh */
static void
refresh_sync_cb(void *arg, size_t checked, size_t refreshed, size_t failed)
{
	struct refresh_sync *s = arg;

	s->done = true;
	s->checked = checked;
	s->refreshed = refreshed;
	s->failed = failed;
}

/* danests_refresh - the synchronous twin of danests_refresh_async */
danests_status
danests_refresh(struct danests_ctx *ctx, unsigned window_s, unsigned parallel,
    size_t *checked, size_t *refreshed, size_t *failed, char *why,
    size_t whylen)
{
	struct refresh_sync s;
	danests_status st;

	memset(&s, 0, sizeof(s));
	if ((st = danests_refresh_async(ctx, window_s, parallel,
	    refresh_sync_cb, &s, why, whylen)) != DANESTS_OK)
		return st;
	while (!s.done)
		if (event_base_loop(ctx->base, EVLOOP_ONCE) != 0 && !s.done) {
			why_set(why, whylen, "event loop stopped");
			return DANESTS_TEMP;
		}
	*checked = s.checked;
	*refreshed = s.refreshed;
	*failed = s.failed;
	return DANESTS_OK;
}
