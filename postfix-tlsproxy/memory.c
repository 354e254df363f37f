/*
 * memory.c - decisions of danests-postfix reused from memory
 *
 * A decision is kept for at most memory_ttl seconds and never beyond its
 * own expiry; tempfails are never kept.  Everything kept is dropped when
 * the configuration is reloaded, when a refresh changed policies, and when
 * `danests cache purge` counted up the cache's generation: the generation
 * is read (one LMDB read transaction) before any decision is reused.
 */
#include "danests-postfix.h"

#include <stdlib.h>
#include <string.h>

/* A decision kept in memory. */
struct entry {
	struct entry *next;
	unsigned h;
	time_t expires;
	struct danests_decision *d;
};

static struct entry *table[HASH_SIZE];
static size_t nkept;
static uint64_t kept_gen;		/* generation of what is kept */

/* memory_hash - FNV-1a of a domain */
unsigned
memory_hash(const char *s)
{
	unsigned h = 2166136261u;

	for (; *s != '\0'; s++)
		h = (h ^ (unsigned char)*s) * 16777619u;
	return h;
}

/* memory_flush - drop every decision kept in memory */
void
memory_flush(void)
{
	struct entry *e, *n;
	size_t i;

	if (nkept == 0)
		return;
	for (i = 0; i < HASH_SIZE; i++) {
		for (e = table[i]; e != NULL; e = n) {
			n = e->next;
			danests_decision_free(e->d);
			free(e);
		}
		table[i] = NULL;
	}
	nkept = 0;
}

/* memory_generation - see danests-postfix.h */
bool
memory_generation(uint64_t *gen)
{
	char why[256];

	if (danests_ctx_generation(ctx, gen, why, sizeof(why)) != DANESTS_OK) {
		dmn_log(LOG_WARNING, "%s; not reusing decisions from memory",
		    why);
		return false;
	}
	return true;
}

/* memory_get - a decision for domain that has not expired and that no
 * purge made stale, or NULL */
const struct danests_decision *
memory_get(const char *domain, unsigned h, time_t now)
{
	struct entry **pp, *e;
	uint64_t gen;

	if (nkept == 0)
		return NULL;
	if (!memory_generation(&gen)) {
		memory_flush();
		return NULL;
	}
	if (gen != kept_gen) {
		dmn_log(LOG_INFO, "cache purged: dropping %zu decisions kept "
		    "in memory", nkept);
		memory_flush();
		kept_gen = gen;
		return NULL;
	}
	for (pp = &table[h & (HASH_SIZE - 1)]; (e = *pp) != NULL;
	    pp = &e->next) {
		if (e->h != h || strcmp(e->d->domain, domain) != 0)
			continue;
		if (e->expires > now)
			return e->d;
		*pp = e->next;
		danests_decision_free(e->d);
		free(e);
		nkept--;
		return NULL;
	}
	return NULL;
}

/* memory_put - keep d (taken) until it expires.  gen is the generation
 * read when its lookup started: a purge since then makes it stale.
 * Tempfails are never kept: the next request asks again. */
void
memory_put(struct danests_decision *d, unsigned h, bool gen_ok, uint64_t gen)
{
	struct entry **pp, *e;
	time_t now = time(NULL), exp;
	uint64_t cur;

	exp = now + conf->memory_ttl_s;
	if (d->expires < exp)
		exp = d->expires;
	if (d->verdict == DANESTS_TEMPFAIL || exp <= now ||
	    conf->memory_max == 0 || !gen_ok || !memory_generation(&cur) ||
	    cur != gen) {
		danests_decision_free(d);
		return;
	}
	if (cur != kept_gen) {
		memory_flush();
		kept_gen = cur;
	}
	for (pp = &table[h & (HASH_SIZE - 1)]; (e = *pp) != NULL;
	    pp = &e->next)
		if (e->h == h && strcmp(e->d->domain, d->domain) == 0) {
			danests_decision_free(e->d);
			e->d = d;
			e->expires = exp;
			return;
		}
	if (nkept >= conf->memory_max)
		memory_flush();	/* bounded; the shared cache still has them */
	if ((e = calloc(1, sizeof(*e))) == NULL) {
		danests_decision_free(d);
		return;
	}
	e->h = h;
	e->d = d;
	e->expires = exp;
	e->next = table[h & (HASH_SIZE - 1)];
	table[h & (HASH_SIZE - 1)] = e;
	nkept++;
}
