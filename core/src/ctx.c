/*
 * ctx.c - a resolution context: resolver, policy fetcher, cache, loop
 */
#include "danests-internal.h"
#include "danests-metrics.h"

#include <stdlib.h>
#include <string.h>

/* config_copy - deep copy of a configuration into dst */
static danests_status
config_copy(struct danests_config *dst, const struct danests_config *src)
{
	*dst = *src;
	dst->ca_file = xstrdup(src->ca_file);
	dst->cache_dir = xstrdup(src->cache_dir);
	if ((src->ca_file && !dst->ca_file) ||
	    (src->cache_dir && !dst->cache_dir) ||
	    config_report_copy(dst, src) < 0) {
		free(dst->ca_file);
		free(dst->cache_dir);
		return DANESTS_TEMP;
	}
	return DANESTS_OK;
}

/* danests_ctx_new_with_dns - a context over a given resolver (taken) */
danests_status
danests_ctx_new_with_dns(const struct danests_config *cfg,
    struct event_base *base, struct dns *dns, struct danests_ctx **out,
    char *why, size_t whylen)
{
	struct danests_ctx *c;
	danests_status st;
	char cwhy[DANESTS_WHY_MAX] = "";

	if ((c = xcalloc(1, sizeof(*c))) == NULL ||
	    config_copy(&c->cfg, cfg) != DANESTS_OK) {
		free(c);
		dns_free(dns);
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	c->base = base;
	c->dns = dns;
	dns_set_max(dns, c->cfg.dns_max_queries);
	if ((c->own_metrics = danests_metrics_new()) == NULL ||
	    (st = memory_new(c)) != DANESTS_OK) {
		st = DANESTS_TEMP;
		why_set(why, whylen, "out of memory");
		goto fail;
	}
	c->metrics = c->own_metrics;
	/* A policy fetch must end before the decision's own bound, so
	 * that a slow policy host reads as a fetch error, not a timeout. */
	if (c->cfg.fetch_timeout_ms > c->cfg.decision_timeout_ms * 2 / 3)
		c->cfg.fetch_timeout_ms = c->cfg.decision_timeout_ms * 2 / 3 + 1;
	if (c->cfg.sts && (st = sts_fetcher_new(base, c->cfg.ca_file,
	    c->cfg.fetch_timeout_ms, c->cfg.sts_port, &c->fetcher, why,
	    whylen)) != DANESTS_OK)
		goto fail;
	sts_fetcher_set_max(c->fetcher, c->cfg.max_fetches);
	if (c->cfg.cache_dir != NULL) {
		if ((st = cache_open(c->cfg.cache_dir, &c->cache, cwhy,
		    sizeof(cwhy))) != DANESTS_OK) {
			why_set(why, whylen, "cache %s: %s", c->cfg.cache_dir,
			    cwhy);
			goto fail;
		}
		if (cwhy[0] != '\0')
			strlcpy(c->cache_note, cwhy, sizeof(c->cache_note));
	}
	/* The shared store sits over the local cache, never instead. */
	if (c->cfg.store_url[0] == '\0' && c->cfg.store_read_url[0] != '\0') {
		why_set(why, whylen, "store_read needs store");
		st = DANESTS_PERM;
		goto fail;
	}
	/* Without a local cache (cache_dir none, danests check --no-cache)
	 * the store is not used: nothing would keep what it gives. */
	if (c->cache != NULL &&
	    (st = store_new(&c->cfg, &c->store, why, whylen)) != DANESTS_OK)
		goto fail;
	*out = c;
	return DANESTS_OK;
fail:
	c->own_base = false;
	danests_ctx_free(c);
	return st;
}

/* danests_ctx_new - a context with the getdns stub resolver */
danests_status
danests_ctx_new(const struct danests_config *cfg, struct event_base *base,
    struct danests_ctx **out, char *why, size_t whylen)
{
	struct dns *dns;
	struct event_base *b = base;
	char addr[64];
	danests_status st;

	if (cfg->resolver[0] != '\0')
		strlcpy(addr, cfg->resolver, sizeof(addr));
	else if (dns_resolvconf_first("/etc/resolv.conf", addr,
	    sizeof(addr)) != DANESTS_OK) {
		why_set(why, whylen, "no nameserver in /etc/resolv.conf; "
		    "give a resolver address");
		return DANESTS_PERM;
	}
	if (b == NULL && (b = event_base_new()) == NULL) {
		why_set(why, whylen, "cannot create event loop");
		return DANESTS_TEMP;
	}
	if ((st = dns_getdns_new(b, addr, cfg->resolver_port,
	    cfg->dns_timeout_ms, &dns, why, whylen)) != DANESTS_OK) {
		if (base == NULL)
			event_base_free(b);
		return st;
	}
	if ((st = danests_ctx_new_with_dns(cfg, b, dns, out, why, whylen)) !=
	    DANESTS_OK) {
		if (base == NULL)
			event_base_free(b);
		return st;
	}
	(*out)->own_base = base == NULL;
	return DANESTS_OK;
}

/* danests_ctx_free - cancel what is pending and release everything */
void
danests_ctx_free(struct danests_ctx *c)
{
	if (c == NULL)
		return;
	/* Cancelling DNS queries calls their callbacks, which release
	 * their requests; the fetcher likewise. */
	dns_free(c->dns);
	c->dns = NULL;
	sts_fetcher_free(c->fetcher);
	c->fetcher = NULL;
	sts_cancel_fetches(c);
	if (c->own_base && c->base != NULL)
		event_base_loop(c->base, EVLOOP_NONBLOCK);
	memory_free(c);
	store_free(c->store);
	cache_close(c->cache);
	danests_metrics_free(c->own_metrics);
	danests_metrics_free(c->stored);
	free(c->cfg.ca_file);
	free(c->cfg.cache_dir);
	config_report_free(&c->cfg);
	if (c->own_base)
		event_base_free(c->base);
	free(c);
}

/* danests_ctx_pending - requests not finished yet */
size_t
danests_ctx_pending(const struct danests_ctx *c)
{
	return c->pending;
}

/* danests_ctx_cache_note - what opening the cache reported, or "" */
const char *
danests_ctx_cache_note(const struct danests_ctx *c)
{
	return c->cache_note;
}

/* danests_ctx_generation - the cache's purge generation (one read
 * transaction), 0 without a cache */
danests_status
danests_ctx_generation(struct danests_ctx *c, uint64_t *gen, char *why,
    size_t whylen)
{
	*gen = 0;
	if (c->cache == NULL)
		return DANESTS_OK;
	return cache_generation(c->cache, false, gen, why, whylen);
}
