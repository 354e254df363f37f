/*
 * cache_writer.c - helper of cache_crash.sh: writes the cache until it is
 * killed, and checks what a killed writer left behind.
 *
 *	cache_writer DIR write ROUND COUNT PREFIX
 *		for i in 0..COUNT-1: put the policy PREFIX<i>.example, then
 *		its decision, then print "i" (one write(2)) once both are
 *		committed.  Also churns PREFIX-t<0..9>.example (put/delete)
 *		so that freed pages are reused.
 *	cache_writer DIR check ROUND COUNT PREFIX LAST [PREFIX LAST]...
 *		LAST: the last index that writer reported (-1: none).
 *	cache_writer DIR damage SEED
 *		overwrite a few byte runs of DIR/data.mdb past its two meta
 *		pages with bytes derived from SEED (cache_damage.sh).
 *	cache_writer DIR live SEED COUNT PREFIX
 *		as a daemon would: open the cache (written by "write 1 COUNT
 *		PREFIX"), read from it, then damage it in place as "damage"
 *		does and walk it as the refresh does.  Exit 0 when the walk
 *		gives every entry right or the cache was rebuilt, 1 when it
 *		gives a wrong answer; a signal is the failure to find.
 *	cache_writer DIR live-get SEED COUNT PREFIX
 *		the same, with a lookup of each entry (as a decision does)
 *		instead of the walk.
 *
 * What check demands, per prefix: the cache opens without a rebuild;
 * every entry decodes and its fields agree with its (round, index); the
 * indexes present form a prefix 0..n-1; rounds never increase with the
 * index (each round rewrites from 0 and was stopped somewhere); every
 * index up to LAST carries this ROUND in both its policy and its decision
 * (a reported commit is never lost); at most one index past LAST does;
 * and a new write succeeds (no lock left held by the dead writer).
 * Exit 0 when all holds, 1 otherwise (the reason on stderr).
 */
#include "danests-internal.h"

#include <sys/stat.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define IDX_MAX 1000000

static char *mxs[5][5];

/* fields - the entry for (round, i) */
static void
fields(struct cache_sts *e, long round, long i, const char *prefix)
{
	static char buf[5][5][64];
	int j, n = (int)(i % 5) + 1;

	memset(e, 0, sizeof(*e));
	for (j = 0; j < n; j++) {
		snprintf(buf[n - 1][j], sizeof(buf[0][0]), "mx%d.%s%ld.example",
		    j, prefix, i);
		mxs[n - 1][j] = buf[n - 1][j];
	}
	e->policy.mode = i % 2 ? DANESTS_STS_ENFORCE : DANESTS_STS_TESTING;
	e->policy.max_age = (uint32_t)(86400 + i);
	e->policy.nmx = (size_t)n;
	e->policy.mx = mxs[n - 1];
	snprintf(e->id, sizeof(e->id), "r%ldi%ld", round, i);
	e->fetched = round * 10000000L + i;
	e->expires = e->fetched + e->policy.max_age;
	e->last_check = e->fetched + 1;
	if (i % 3 == 0)
		snprintf(e->last_error, sizeof(e->last_error), "round %ld",
		    round);
}

/* same_entry - does a read entry equal what fields() makes? */
static int
same_entry(const struct cache_sts *a, const struct cache_sts *b)
{
	size_t j;

	if (a->policy.mode != b->policy.mode ||
	    a->policy.max_age != b->policy.max_age ||
	    a->policy.nmx != b->policy.nmx || strcmp(a->id, b->id) != 0 ||
	    a->fetched != b->fetched || a->expires != b->expires ||
	    a->last_check != b->last_check ||
	    strcmp(a->last_error, b->last_error) != 0)
		return 0;
	for (j = 0; j < a->policy.nmx; j++)
		if (strcmp(a->policy.mx[j], b->policy.mx[j]) != 0)
			return 0;
	return 1;
}

/* do_write - the writer loop */
static int
do_write(struct cache *c, long round, long count, const char *prefix)
{
	struct cache_sts e;
	char why[DANESTS_WHY_MAX], dom[128], json[128], line[32];
	long i;
	int n;

	for (i = 0; i < count; i++) {
		snprintf(dom, sizeof(dom), "%s%ld.example", prefix, i);
		fields(&e, round, i, prefix);
		if (cache_sts_put(c, dom, &e, why, sizeof(why)) != DANESTS_OK)
			goto fail;
		snprintf(json, sizeof(json), "{\"r\":%ld,\"i\":%ld}", round, i);
		if (cache_decision_put(c, dom, json, 4102444800LL, why,
		    sizeof(why)) != DANESTS_OK)
			goto fail;
		snprintf(dom, sizeof(dom), "%s-t%ld.example", prefix, i % 10);
		if (cache_sts_put(c, dom, &e, why, sizeof(why)) != DANESTS_OK)
			goto fail;
		snprintf(dom, sizeof(dom), "%s-t%ld.example", prefix,
		    (i + 5) % 10);
		if (cache_sts_del(c, dom, why, sizeof(why)) == DANESTS_TEMP)
			goto fail;
		n = snprintf(line, sizeof(line), "%ld\n", i);
		if (write(STDOUT_FILENO, line, (size_t)n) != n)
			return 1;
	}
	return 0;
fail:
	fprintf(stderr, "cache_writer: %s\n", why);
	return 1;
}

struct scan {
	const char *prefix;
	size_t plen;
	long count;
	long *sround;		/* policy round per index, 0: absent */
	long *dround;		/* decision round per index */
	int bad;
	char err[512];
};

/* scan_index - the index of one of s's domains ("PREFIXi.example"): 1
 * with *i set, 0 for a name of another writer or a "-t" name, -1 for a
 * malformed one */
static int
scan_index(const struct scan *s, const char *domain, long *i)
{
	char tail[64];

	if (strncmp(domain, s->prefix, s->plen) != 0 ||
	    domain[s->plen] == '-')
		return 0;
	if (sscanf(domain + s->plen, "%ld%63s", i, tail) != 2 ||
	    strcmp(tail, ".example") != 0 || *i < 0 || *i >= s->count)
		return -1;
	return 1;
}

/* scan_sts - note each policy of one prefix, checking its content */
static int
scan_sts(void *arg, const char *domain, const struct cache_sts *e)
{
	struct scan *s = arg;
	struct cache_sts want;
	long r, i, j;
	int k;

	if ((k = scan_index(s, domain, &i)) == 0)
		return 0;
	if (k < 0 ||
	    sscanf(e->id, "r%ldi%ld", &r, &j) != 2 || j != i || r <= 0) {
		snprintf(s->err, sizeof(s->err), "unexpected entry %s id %s",
		    domain, e->id);
		s->bad++;
		return 1;
	}
	fields(&want, r, i, s->prefix);
	if (!same_entry(e, &want)) {
		snprintf(s->err, sizeof(s->err), "entry %s: fields differ "
		    "from round %ld", domain, r);
		s->bad++;
		return 1;
	}
	s->sround[i] = r;
	return 0;
}

/* scan_dec - note each decision of one prefix */
static int
scan_dec(void *arg, const char *domain, const char *json, time_t expires)
{
	struct scan *s = arg;
	long r, i, j;
	int k;

	if ((k = scan_index(s, domain, &i)) == 0)
		return 0;
	if (k < 0 ||
	    sscanf(json, "{\"r\":%ld,\"i\":%ld}", &r, &j) != 2 || j != i ||
	    expires != 4102444800LL) {
		snprintf(s->err, sizeof(s->err), "bad decision %s: %s",
		    domain, json);
		s->bad++;
		return 1;
	}
	s->dround[i] = r;
	return 0;
}

/* check_prefix - the demands of the header comment, for one writer */
static int
check_prefix(struct cache *c, long round, long count, const char *prefix,
    long last)
{
	struct scan s;
	char why[DANESTS_WHY_MAX] = "";
	long i, n = 0, cur = 0;
	int rc = 1;

	memset(&s, 0, sizeof(s));
	s.prefix = prefix;
	s.plen = strlen(prefix);
	s.count = count;
	s.sround = calloc((size_t)count, sizeof(long));
	s.dround = calloc((size_t)count, sizeof(long));
	if (s.sround == NULL || s.dround == NULL)
		goto out;
	if (cache_sts_each(c, scan_sts, &s, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "check %s: %s\n", prefix, why);
		goto out;
	}
	if (cache_decision_each(c, scan_dec, &s, why, sizeof(why)) !=
	    DANESTS_OK) {
		fprintf(stderr, "check %s: %s\n", prefix, why);
		goto out;
	}
	if (s.bad) {
		fprintf(stderr, "check %s: %s\n", prefix, s.err);
		goto out;
	}
	while (n < count && s.sround[n] != 0)
		n++;
	for (i = n; i < count; i++)
		if (s.sround[i] != 0 || s.dround[i] != 0) {
			fprintf(stderr, "check %s: index %ld present after a "
			    "gap at %ld\n", prefix, i, n);
			goto out;
		}
	for (i = 0; i < n; i++) {
		if (i > 0 && s.sround[i] > s.sround[i - 1]) {
			fprintf(stderr, "check %s: round rises at %ld\n",
			    prefix, i);
			goto out;
		}
		if (s.dround[i] > s.sround[i] ||
		    (s.dround[i] < s.sround[i] &&
		    (i + 1 < n && s.sround[i + 1] == s.sround[i]))) {
			/* a decision lags its policy only at the index
			 * where that round stopped */
			fprintf(stderr, "check %s: decision round %ld vs "
			    "policy round %ld at %ld\n", prefix, s.dround[i],
			    s.sround[i], i);
			goto out;
		}
		if (s.sround[i] == round)
			cur++;
	}
	for (i = 0; i <= last && i < count; i++)
		if (s.sround[i] != round || s.dround[i] != round) {
			fprintf(stderr, "check %s: committed index %ld (last "
			    "reported %ld) lost: rounds %ld/%ld\n", prefix, i,
			    last, s.sround[i], s.dround[i]);
			goto out;
		}
	if (cur > last + 2) {
		fprintf(stderr, "check %s: %ld entries of round %ld, last "
		    "reported %ld\n", prefix, cur, round, last);
		goto out;
	}
	printf("# %s: %ld present, %ld of round %ld, last reported %ld\n",
	    prefix, n, cur, round, last);
	rc = 0;
out:
	free(s.sround);
	free(s.dround);
	return rc;
}

/* do_check - open as a fresh process would, check, and write once */
static int
do_check(const char *dir, long round, long count, int argc, char **argv)
{
	struct cache *c;
	struct cache_sts e, out;
	char why[DANESTS_WHY_MAX] = "";
	int i, rc = 0;

	if (cache_open(dir, &c, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "check: open: %s\n", why);
		return 1;
	}
	if (why[0] != '\0' || cache_was_rebuilt(c)) {
		fprintf(stderr, "check: the cache had to be rebuilt: %s\n",
		    why);
		cache_close(c);
		return 1;
	}
	for (i = 0; i + 1 < argc; i += 2)
		if (check_prefix(c, round, count, argv[i],
		    strtol(argv[i + 1], NULL, 10)) != 0)
			rc = 1;
	/* the dead writer left no lock behind */
	fields(&e, round, 0, "probe");
	if (cache_sts_put(c, "probe.example", &e, why, sizeof(why)) !=
	    DANESTS_OK ||
	    cache_sts_get(c, "probe.example", &out, why, sizeof(why)) !=
	    DANESTS_OK) {
		fprintf(stderr, "check: write after the kill: %s\n", why);
		rc = 1;
	} else {
		if (!same_entry(&out, &e)) {
			fprintf(stderr, "check: probe read back wrong\n");
			rc = 1;
		}
		cache_sts_clear(&out);
	}
	cache_close(c);
	return rc;
}

/* damage - overwrite 1-4 runs of 1-32 bytes of DIR/data.mdb at offsets
 * past the two meta pages, all derived from seed */
static int
damage(const char *dir, unsigned long seed)
{
	char path[4096];
	unsigned char buf[32];
	unsigned long long x = seed * 0x9E3779B97F4A7C15ULL + 1;
	struct stat st;
	long page = sysconf(_SC_PAGESIZE);
	int fd, spots, i, j;

#define NEXT() (x ^= x << 13, x ^= x >> 7, x ^= x << 17, x)
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	if ((fd = open(path, O_RDWR)) < 0 || fstat(fd, &st) < 0 ||
	    st.st_size <= 3 * page) {
		fprintf(stderr, "damage: %s: %s\n", path, fd < 0 ?
		    strerror(errno) : "too small");
		return 1;
	}
	spots = 1 + (int)(NEXT() % 4);
	for (i = 0; i < spots; i++) {
		off_t off = 2 * page + (off_t)(NEXT() %
		    (unsigned long long)(st.st_size - 2 * page));
		size_t len = 1 + NEXT() % sizeof(buf);

		if (off + (off_t)len > st.st_size)
			len = (size_t)(st.st_size - off);
		for (j = 0; j < (int)len; j++)
			buf[j] = (unsigned char)NEXT();
		if (pwrite(fd, buf, len, off) != (ssize_t)len) {
			fprintf(stderr, "damage: %s\n", strerror(errno));
			return 1;
		}
		printf("# damaged %zu bytes at %lld\n", len, (long long)off);
	}
#undef NEXT
	close(fd);
	return 0;
}

/* open_damaged - open the cache, read the first entry, then damage the
 * files under the open environment (a process that had the cache open
 * when it was damaged); 0 with *cp open, else 1 */
static int
open_damaged(const char *dir, unsigned long seed, const char *prefix,
    const char *what, struct cache **cp)
{
	struct cache *c;
	struct cache_sts e;
	char why[DANESTS_WHY_MAX] = "", dom[128];

	if (cache_open(dir, &c, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "%s: open: %s\n", what, why);
		return 1;
	}
	snprintf(dom, sizeof(dom), "%s0.example", prefix);
	if (cache_sts_get(c, dom, &e, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "%s: read before the damage: %s\n", what, why);
		cache_close(c);
		return 1;
	}
	cache_sts_clear(&e);
	if (damage(dir, seed) != 0) {
		cache_close(c);
		return 1;
	}
	*cp = c;
	return 0;
}

/* do_live - the refresh walk of a process that had the cache open when
 * it was damaged */
static int
do_live(const char *dir, unsigned long seed, long count, const char *prefix)
{
	struct cache *c;
	int rc;

	if (open_damaged(dir, seed, prefix, "live", &c) != 0)
		return 1;
	rc = check_prefix(c, 1, count, prefix, count - 1);
	if (rc != 0 && cache_was_rebuilt(c)) {
		printf("# rebuilt\n");
		rc = 0;
	} else if (rc == 0)
		printf("# every entry right\n");
	cache_close(c);
	return rc;
}

/* do_live_get - point lookups of a process that had the cache open when
 * it was damaged: each right, or the cache rebuilt */
static int
do_live_get(const char *dir, unsigned long seed, long count,
    const char *prefix)
{
	struct cache *c;
	struct cache_sts e, want;
	char why[DANESTS_WHY_MAX] = "", dom[128], json[128], *got;
	danests_status st;
	long i, right = 0, missing = 0;
	int rc = 0;

	if (open_damaged(dir, seed, prefix, "live-get", &c) != 0)
		return 1;
	for (i = 0; i < count && rc == 0; i++) {
		snprintf(dom, sizeof(dom), "%s%ld.example", prefix, i);
		fields(&want, 1, i, prefix);
		st = cache_sts_get(c, dom, &e, why, sizeof(why));
		if (st == DANESTS_OK) {
			if (!same_entry(&e, &want)) {
				fprintf(stderr, "live-get: %s: wrong policy\n",
				    dom);
				rc = 1;
			}
			cache_sts_clear(&e);
		}
		if (st == DANESTS_OK && rc == 0) {
			snprintf(json, sizeof(json), "{\"r\":1,\"i\":%ld}", i);
			st = cache_decision_get(c, dom, 1, &got, why,
			    sizeof(why));
			if (st == DANESTS_OK && strcmp(got, json) != 0) {
				fprintf(stderr, "live-get: %s: wrong decision "
				    "%s\n", dom, got);
				rc = 1;
			}
			free(got);
		}
		if (rc != 0)
			break;
		if (st == DANESTS_OK)
			right++;
		else if (!cache_was_rebuilt(c)) {
			fprintf(stderr, "live-get: %s: %s without a rebuild: "
			    "%s\n", dom, st == DANESTS_NOTFOUND ? "not found" :
			    "error", why);
			rc = 1;
		} else
			missing++;
	}
	if (rc == 0)
		printf(missing ? "# rebuilt\n" : "# every entry right\n");
	cache_close(c);
	return rc;
}

int
main(int argc, char **argv)
{
	struct cache *c;
	char why[DANESTS_WHY_MAX] = "";
	long round, count;
	int rc;

	if (argc == 4 && strcmp(argv[2], "damage") == 0)
		return damage(argv[1], strtoul(argv[3], NULL, 10));
	if (argc == 6 && strcmp(argv[2], "live") == 0)
		return do_live(argv[1], strtoul(argv[3], NULL, 10),
		    strtol(argv[4], NULL, 10), argv[5]);
	if (argc == 6 && strcmp(argv[2], "live-get") == 0)
		return do_live_get(argv[1], strtoul(argv[3], NULL, 10),
		    strtol(argv[4], NULL, 10), argv[5]);
	if (argc < 6 || (strcmp(argv[2], "write") == 0 && argc != 6) ||
	    (strcmp(argv[2], "check") == 0 && (argc - 5) % 2 != 0)) {
		fprintf(stderr, "usage: cache_writer DIR write ROUND COUNT "
		    "PREFIX\n       cache_writer DIR check ROUND COUNT "
		    "PREFIX LAST [PREFIX LAST]...\n");
		return 64;
	}
	round = strtol(argv[3], NULL, 10);
	count = strtol(argv[4], NULL, 10);
	if (round <= 0 || count <= 0 || count > IDX_MAX) {
		fprintf(stderr, "cache_writer: bad ROUND or COUNT\n");
		return 64;
	}
	if (strcmp(argv[2], "check") == 0)
		return do_check(argv[1], round, count, argc - 5, argv + 5);
	if (strcmp(argv[2], "write") != 0)
		return 64;
	if (cache_open(argv[1], &c, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "cache_writer: %s\n", why);
		return 1;
	}
	rc = do_write(c, round, count, argv[5]);
	cache_close(c);
	return rc;
}
