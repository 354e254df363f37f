/*
 * test_cache.c - the LMDB policy and decision cache: round trips of every
 * field, overwrite, absence, decision expiry, iteration, a corrupt
 * environment (rebuilt), corrupt values (TEMP, never NOTFOUND), unusable
 * directories, map growth, many processes at once, and one environment
 * per process when a directory is opened twice (a daemon's reload).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include <sys/stat.h>
#include <sys/wait.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <pthread.h>
#include <grp.h>
#include <lmdb.h>
#include <signal.h>
#include <stdio.h>
#include <time.h>
#include <unistd.h>

#include "danests-internal.h"

#define NCHILD		8
#define NOPS		500

/* Per-test state: a fresh temporary directory. */
struct fix {
	char tmp[256];		/* mkdtemp'd */
	char dir[300];		/* tmp/cache (not yet created) */
};

/* rm_one - nftw callback removing one file or directory */
static int
rm_one(const char *path, const struct stat *st, int flag, struct FTW *f)
{
	(void)st;
	(void)flag;
	(void)f;
	return remove(path);
}

/* setup - make a temporary directory */
static int
setup(void **state)
{
	struct fix *fx = calloc(1, sizeof(*fx));
	const char *t = getenv("TMPDIR");

	if (fx == NULL)
		return -1;
	snprintf(fx->tmp, sizeof(fx->tmp), "%s/test_cache.XXXXXX",
	    t != NULL && *t != '\0' ? t : "/tmp");
	if (mkdtemp(fx->tmp) == NULL)
		return -1;
	snprintf(fx->dir, sizeof(fx->dir), "%s/cache", fx->tmp);
	*state = fx;
	return 0;
}

/* teardown - remove the temporary directory */
static int
teardown(void **state)
{
	struct fix *fx = *state;

	nftw(fx->tmp, rm_one, 16, FTW_DEPTH | FTW_PHYS);
	free(fx);
	return 0;
}

/* open_ok - open the cache, which must succeed without comment */
static struct cache *
open_ok(const char *dir)
{
	struct cache *c = NULL;
	char why[DANESTS_WHY_MAX] = "";

	assert_int_equal(cache_open(dir, &c, why, sizeof(why)), DANESTS_OK);
	assert_non_null(c);
	assert_string_equal(why, "");
	return c;
}

/* mkentry - an entry whose every field derives from tag */
static void
mkentry(struct cache_sts *e, char **mx, size_t nmx, danests_sts_mode mode,
    const char *id, time_t base, const char *err)
{
	memset(e, 0, sizeof(*e));
	e->policy.mode = mode;
	e->policy.max_age = (uint32_t)(base % 100000) + 1;
	e->policy.nmx = nmx;
	e->policy.mx = mx;
	strlcpy(e->id, id, sizeof(e->id));
	e->fetched = base;
	e->expires = base + 86400;
	e->last_check = base + 7;
	strlcpy(e->last_error, err, sizeof(e->last_error));
}

/* assert_entry_eq - every field of two entries is equal */
static void
assert_entry_eq(const struct cache_sts *a, const struct cache_sts *b)
{
	size_t i;

	assert_int_equal(a->policy.mode, b->policy.mode);
	assert_int_equal(a->policy.max_age, b->policy.max_age);
	assert_int_equal(a->policy.nmx, b->policy.nmx);
	for (i = 0; i < a->policy.nmx; i++)
		assert_string_equal(a->policy.mx[i], b->policy.mx[i]);
	assert_string_equal(a->id, b->id);
	assert_int_equal(a->fetched, b->fetched);
	assert_int_equal(a->expires, b->expires);
	assert_int_equal(a->last_check, b->last_check);
	assert_string_equal(a->last_error, b->last_error);
}

/* Round trips: one row per entry shape. */
static char *mx2[] = { "mx1.example.com", "*.mail.example.com" };
static char *mx1[] = { "mail.example.net" };
static char *mxlong[] = {
	"a.example", "b.example", "c.example", "d.example", "e.example",
	"f.example", "g.example", "h.example", "*.i.example", "j.example",
};
static const char ID32[] = "abcdefghijklmnopqrstuvwxyz012345";
static const char ERR255[] =
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
    "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde";

struct rt_case {
	const char *domain;
	danests_sts_mode mode;
	char **mx;
	size_t nmx;
	const char *id;
	time_t base;
	const char *err;
};

static const struct rt_case rt_cases[] = {
	{ "example.com", DANESTS_STS_ENFORCE, mx2, 2, "20240101T000000", 1700000000, "" },
	{ "example.net", DANESTS_STS_TESTING, mx1, 1, "1", 1, "fetch failed: timeout" },
	{ "none.example", DANESTS_STS_NONE, NULL, 0, "x", 0, "" },
	{ "long.example", DANESTS_STS_ENFORCE, mxlong, 10, ID32, 4102444800LL, ERR255 },
	{ "quote.example", DANESTS_STS_ENFORCE, mx1, 1, "q", 5, "say \"no\"\n\ttab \\ \x01" },
	{ "neg.example", DANESTS_STS_ENFORCE, mx1, 1, "n", -1, "" },
};

/* test_roundtrip - put then get returns every field unchanged */
static void
test_roundtrip(void **state)
{
	struct fix *fx = *state;
	struct cache *c = open_ok(fx->dir);
	struct cache_sts in, out;
	char why[DANESTS_WHY_MAX];
	size_t i;

	for (i = 0; i < sizeof(rt_cases) / sizeof(rt_cases[0]); i++) {
		const struct rt_case *r = &rt_cases[i];

		mkentry(&in, r->mx, r->nmx, r->mode, r->id, r->base, r->err);
		assert_int_equal(cache_sts_put(c, r->domain, &in, why,
		    sizeof(why)), DANESTS_OK);
	}
	for (i = 0; i < sizeof(rt_cases) / sizeof(rt_cases[0]); i++) {
		const struct rt_case *r = &rt_cases[i];

		mkentry(&in, r->mx, r->nmx, r->mode, r->id, r->base, r->err);
		assert_int_equal(cache_sts_get(c, r->domain, &out, why,
		    sizeof(why)), DANESTS_OK);
		assert_entry_eq(&in, &out);
		cache_sts_clear(&out);
		assert_null(out.policy.mx);
	}
	/* keys are lower case without the trailing dot */
	assert_int_equal(cache_sts_get(c, "EXAMPLE.Com.", &out, why,
	    sizeof(why)), DANESTS_OK);
	assert_string_equal(out.id, "20240101T000000");
	cache_sts_clear(&out);
	/* and survive closing and reopening */
	cache_close(c);
	c = open_ok(fx->dir);
	assert_int_equal(cache_sts_get(c, "long.example", &out, why,
	    sizeof(why)), DANESTS_OK);
	mkentry(&in, mxlong, 10, DANESTS_STS_ENFORCE, ID32, 4102444800LL,
	    ERR255);
	assert_entry_eq(&in, &out);
	cache_sts_clear(&out);
	cache_close(c);
}

/* test_overwrite - a second put replaces the first entirely */
static void
test_overwrite(void **state)
{
	struct fix *fx = *state;
	struct cache *c = open_ok(fx->dir);
	struct cache_sts a, b, out;
	char why[DANESTS_WHY_MAX];

	mkentry(&a, mxlong, 10, DANESTS_STS_ENFORCE, "old", 100, "old error");
	mkentry(&b, mx1, 1, DANESTS_STS_TESTING, "new", 200, "");
	assert_int_equal(cache_sts_put(c, "example.org", &a, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_sts_put(c, "Example.ORG", &b, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_sts_get(c, "example.org", &out, why,
	    sizeof(why)), DANESTS_OK);
	assert_entry_eq(&b, &out);
	cache_sts_clear(&out);
	cache_close(c);
}

/* view_count - count the policies a view passes, checking one */
static int
view_policy(void *arg, const char *domain, const struct danests_cache_policy *p)
{
	size_t *n = arg;

	assert_string_equal(domain, "example.org");
	assert_string_equal(p->id, "v1");
	assert_int_equal(p->policy.nmx, 1);
	assert_string_equal(p->last_error, "an error");
	(*n)++;
	return 0;
}

static int
view_decision(void *arg, const char *domain, const char *json,
    time_t expires)
{
	size_t *n = arg;

	assert_string_equal(domain, "example.org");
	assert_string_equal(json, "{}");
	assert_true(expires > 0);
	(*n)++;
	return 0;
}

/* test_public_view - the public cache API (`danests cache`): list, show,
 * purge, which counts up the purge generation even without an entry */
static void
test_public_view(void **state)
{
	struct fix *fx = *state;
	struct cache *c = open_ok(fx->dir);
	struct danests_cache *v;
	struct danests_cache_policy p;
	struct cache_sts e;
	char why[DANESTS_WHY_MAX], *json;
	uint64_t g0, g1, g2;
	size_t np = 0, nd = 0;
	bool hp, hd;

	mkentry(&e, mx1, 1, DANESTS_STS_ENFORCE, "v1", time(NULL), "an error");
	assert_int_equal(cache_sts_put(c, "example.org", &e, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_decision_put(c, "example.org", "{}",
	    time(NULL) + 60, why, sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_generation(c, false, &g0, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(danests_cache_open(fx->dir, &v, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(danests_cache_rebuilt_at(v), 0);
	assert_int_equal(danests_cache_policies(v, view_policy, &np, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_cache_decisions(v, view_decision, &nd, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(np, 1);
	assert_int_equal(nd, 1);
	assert_int_equal(danests_cache_policy_get(v, "example.org", &p, why,
	    sizeof(why)), DANESTS_OK);
	assert_string_equal(p.policy.mx[0], mx1[0]);
	danests_cache_policy_clear(&p);
	assert_int_equal(danests_cache_decision_get(v, "example.org", &json,
	    why, sizeof(why)), DANESTS_OK);
	assert_string_equal(json, "{}");
	free(json);
	assert_int_equal(danests_cache_purge(v, "example.org", &hp, &hd, why,
	    sizeof(why)), DANESTS_OK);
	assert_true(hp && hd);
	assert_int_equal(cache_generation(c, false, &g1, why, sizeof(why)),
	    DANESTS_OK);
	assert_true(g1 != g0);
	assert_int_equal(danests_cache_policy_get(v, "example.org", &p, why,
	    sizeof(why)), DANESTS_NOTFOUND);
	assert_int_equal(danests_cache_decision_get(v, "example.org", &json,
	    why, sizeof(why)), DANESTS_NOTFOUND);
	assert_int_equal(danests_cache_purge(v, "example.org", &hp, &hd, why,
	    sizeof(why)), DANESTS_OK);
	assert_false(hp || hd);
	assert_int_equal(cache_generation(c, false, &g2, why, sizeof(why)),
	    DANESTS_OK);
	assert_true(g2 != g1);
	danests_cache_close(v);
	cache_close(c);
}

/* test_notfound - absent entries and deletion */
static void
test_notfound(void **state)
{
	struct fix *fx = *state;
	struct cache *c = open_ok(fx->dir);
	struct cache_sts e, out;
	char why[DANESTS_WHY_MAX];
	char *json = (char *)"sentinel";

	assert_int_equal(cache_sts_get(c, "absent.example", &out, why,
	    sizeof(why)), DANESTS_NOTFOUND);
	assert_int_equal(cache_sts_del(c, "absent.example", why,
	    sizeof(why)), DANESTS_NOTFOUND);
	assert_int_equal(cache_decision_get(c, "absent.example", 0, &json,
	    why, sizeof(why)), DANESTS_NOTFOUND);
	assert_null(json);
	assert_int_equal(cache_decision_del(c, "absent.example", why,
	    sizeof(why)), DANESTS_NOTFOUND);

	mkentry(&e, mx1, 1, DANESTS_STS_ENFORCE, "a", 1, "");
	assert_int_equal(cache_sts_put(c, "here.example", &e, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_sts_put(c, "there.example", &e, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_sts_del(c, "HERE.example.", why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(cache_sts_get(c, "here.example", &out, why,
	    sizeof(why)), DANESTS_NOTFOUND);
	assert_int_equal(cache_sts_del(c, "here.example", why, sizeof(why)),
	    DANESTS_NOTFOUND);
	/* the neighbour is untouched */
	assert_int_equal(cache_sts_get(c, "there.example", &out, why,
	    sizeof(why)), DANESTS_OK);
	cache_sts_clear(&out);

	/* bad input is PERM, never NOTFOUND */
	assert_int_equal(cache_sts_get(c, "", &out, why, sizeof(why)),
	    DANESTS_PERM);
	assert_int_equal(cache_sts_put(c, NULL, &e, why, sizeof(why)),
	    DANESTS_PERM);
	{
		char big[400];

		memset(big, 'a', sizeof(big) - 1);
		big[sizeof(big) - 1] = '\0';
		assert_int_equal(cache_sts_put(c, big, &e, why, sizeof(why)),
		    DANESTS_PERM);
	}
	e.policy.mode = (danests_sts_mode)42;
	assert_int_equal(cache_sts_put(c, "bad.example", &e, why,
	    sizeof(why)), DANESTS_PERM);
	cache_close(c);
}

/* Decision expiry: expires vs. now, one row each. */
struct exp_case {
	time_t expires;
	time_t now;
	danests_status want;
};

static const struct exp_case exp_cases[] = {
	{ 1000, 999, DANESTS_OK },
	{ 1000, 0, DANESTS_OK },
	{ 1000, 1000, DANESTS_NOTFOUND },	/* expires is exclusive */
	{ 1000, 1001, DANESTS_NOTFOUND },
	{ 1000, 5000000, DANESTS_NOTFOUND },
	{ 4102444800LL, 1700000000, DANESTS_OK },
};

/* test_decision_expiry - NOTFOUND once expired, and lazily deleted */
static void
test_decision_expiry(void **state)
{
	struct fix *fx = *state;
	struct cache *c = open_ok(fx->dir);
	char why[DANESTS_WHY_MAX], *json;
	const char *text = "{\"domain\":\"example.com\",\"verdict\":\"deliver\"}";
	size_t i;

	for (i = 0; i < sizeof(exp_cases) / sizeof(exp_cases[0]); i++) {
		const struct exp_case *r = &exp_cases[i];

		assert_int_equal(cache_decision_put(c, "example.com", text,
		    r->expires, why, sizeof(why)), DANESTS_OK);
		json = NULL;
		assert_int_equal(cache_decision_get(c, "example.com", r->now,
		    &json, why, sizeof(why)), r->want);
		if (r->want == DANESTS_OK) {
			assert_non_null(json);
			assert_string_equal(json, text);
			free(json);
			continue;
		}
		assert_null(json);
		/* the expired entry was dropped: even an earlier "now"
		 * finds nothing */
		assert_int_equal(cache_decision_get(c, "example.com", 0,
		    &json, why, sizeof(why)), DANESTS_NOTFOUND);
	}

	/* the decision and the policy of a domain are independent */
	assert_int_equal(cache_decision_put(c, "example.com", text, 2000,
	    why, sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_decision_del(c, "example.com", why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_decision_get(c, "example.com", 0, &json, why,
	    sizeof(why)), DANESTS_NOTFOUND);

	/* an empty text round-trips; an oversized one is refused */
	assert_int_equal(cache_decision_put(c, "e.example", "", 2000, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_decision_get(c, "e.example", 1, &json, why,
	    sizeof(why)), DANESTS_OK);
	assert_string_equal(json, "");
	free(json);
	{
		size_t n = 2 * 1024 * 1024;
		char *big = malloc(n + 1);

		assert_non_null(big);
		memset(big, ' ', n);
		big[n] = '\0';
		assert_int_equal(cache_decision_put(c, "big.example", big,
		    2000, why, sizeof(why)), DANESTS_PERM);
		free(big);
	}
	cache_close(c);
}

struct each_arg {
	int seen[100];
	int calls;
	int stop_after;		/* 0: never stop */
};

/* each_sts - record which entries were seen, checking their content */
static int
each_sts(void *varg, const char *domain, const struct cache_sts *e)
{
	struct each_arg *a = varg;
	int n;
	char id[16];

	assert_int_equal(sscanf(domain, "d%d.example", &n), 1);
	assert_true(n >= 0 && n < 100);
	snprintf(id, sizeof(id), "id%d", n);
	assert_string_equal(e->id, id);
	assert_int_equal(e->fetched, n);
	a->seen[n]++;
	a->calls++;
	return a->stop_after != 0 && a->calls >= a->stop_after;
}

/* each_dec - the same for decisions */
static int
each_dec(void *varg, const char *domain, const char *json, time_t expires)
{
	struct each_arg *a = varg;
	char want[32];
	int n;

	assert_int_equal(sscanf(domain, "d%d.example", &n), 1);
	assert_true(n >= 0 && n < 100);
	snprintf(want, sizeof(want), "{\"n\":%d}", n);
	assert_string_equal(json, want);
	assert_int_equal(expires, 1000 + n);
	a->seen[n]++;
	a->calls++;
	return a->stop_after != 0 && a->calls >= a->stop_after;
}

/* test_each - iteration sees every entry once and can stop early */
static void
test_each(void **state)
{
	struct fix *fx = *state;
	struct cache *c = open_ok(fx->dir);
	struct cache_sts e;
	struct each_arg a;
	char why[DANESTS_WHY_MAX], dom[64], id[16], json[32];
	int i;

	memset(&a, 0, sizeof(a));
	assert_int_equal(cache_sts_each(c, each_sts, &a, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(a.calls, 0);
	for (i = 0; i < 100; i++) {
		snprintf(dom, sizeof(dom), "d%d.example", i);
		snprintf(id, sizeof(id), "id%d", i);
		mkentry(&e, mx1, 1, DANESTS_STS_ENFORCE, id, i, "");
		assert_int_equal(cache_sts_put(c, dom, &e, why, sizeof(why)),
		    DANESTS_OK);
		snprintf(json, sizeof(json), "{\"n\":%d}", i);
		assert_int_equal(cache_decision_put(c, dom, json, 1000 + i,
		    why, sizeof(why)), DANESTS_OK);
	}
	assert_int_equal(cache_sts_each(c, each_sts, &a, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(a.calls, 100);
	for (i = 0; i < 100; i++)
		assert_int_equal(a.seen[i], 1);

	memset(&a, 0, sizeof(a));
	a.stop_after = 7;
	assert_int_equal(cache_sts_each(c, each_sts, &a, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(a.calls, 7);

	memset(&a, 0, sizeof(a));
	assert_int_equal(cache_decision_each(c, each_dec, &a, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(a.calls, 100);
	for (i = 0; i < 100; i++)
		assert_int_equal(a.seen[i], 1);
	cache_close(c);
}

/* write_file - fill a file with n pseudo-random bytes */
static void
write_file(const char *path, size_t n, unsigned seed)
{
	FILE *f = fopen(path, "w");
	size_t i;

	assert_non_null(f);
	srand(seed);
	for (i = 0; i < n; i++)
		fputc(rand() & 0xff, f);
	assert_int_equal(fclose(f), 0);
}

/* count_prefix - entries of dir whose name starts with prefix */
static int
count_prefix(const char *dir, const char *prefix)
{
	DIR *d = opendir(dir);
	struct dirent *de;
	int n = 0;

	assert_non_null(d);
	while ((de = readdir(d)) != NULL)
		if (strncmp(de->d_name, prefix, strlen(prefix)) == 0)
			n++;
	closedir(d);
	return n;
}

/* Garbage data files, one row each: size and seed. */
static const struct { size_t size; unsigned seed; } garbage[] = {
	{ 65536, 1 }, { 4096, 2 }, { 100, 3 }, { 1 << 20, 4 },
};

/* test_corrupt_env - garbage data.mdb is moved aside and rebuilt */
static void
test_corrupt_env(void **state)
{
	struct fix *fx = *state;
	struct cache *c;
	struct cache_sts e, out;
	char why[DANESTS_WHY_MAX], path[512];
	size_t i;

	/* a fresh cache was never rebuilt */
	c = open_ok(fx->dir);
	assert_false(cache_was_rebuilt(c));
	assert_int_equal(cache_rebuilt_at(c), 0);
	mkentry(&e, mx1, 1, DANESTS_STS_ENFORCE, "lost", 1, "");
	assert_int_equal(cache_sts_put(c, "lost.example", &e, why,
	    sizeof(why)), DANESTS_OK);
	cache_close(c);

	for (i = 0; i < sizeof(garbage) / sizeof(garbage[0]); i++) {
		snprintf(path, sizeof(path), "%s/data.mdb", fx->dir);
		write_file(path, garbage[i].size, garbage[i].seed);
		why[0] = '\0';
		c = NULL;
		assert_int_equal(cache_open(fx->dir, &c, why, sizeof(why)),
		    DANESTS_OK);
		assert_non_null(c);
		assert_non_null(strstr(why, "rebuilt"));
		assert_non_null(strstr(why, "corrupt"));
		assert_true(cache_was_rebuilt(c));
		assert_true(cache_rebuilt_at(c) > 0);
		assert_true(count_prefix(fx->dir, "data.mdb.corrupt-") >= 1);
		/* the old policy is gone and the new env works */
		assert_int_equal(cache_sts_get(c, "lost.example", &out, why,
		    sizeof(why)), DANESTS_NOTFOUND);
		assert_int_equal(cache_sts_put(c, "new.example", &e, why,
		    sizeof(why)), DANESTS_OK);
		assert_int_equal(cache_sts_get(c, "new.example", &out, why,
		    sizeof(why)), DANESTS_OK);
		cache_sts_clear(&out);
		cache_close(c);

		/* the rebuild is remembered for every later opener */
		c = open_ok(fx->dir);
		assert_true(cache_was_rebuilt(c));
		cache_close(c);
	}
}

/* raw_put - store raw bytes under a key of a named database, bypassing
 * the cache's encoding (the cache must be closed meanwhile) */
static void
raw_put(const char *dir, const char *db, const char *key, const void *val,
    size_t len)
{
	MDB_env *env;
	MDB_txn *txn;
	MDB_dbi dbi;
	MDB_val k, v;

	assert_int_equal(mdb_env_create(&env), 0);
	assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
	assert_int_equal(mdb_env_set_mapsize(env, (size_t)256 << 20), 0);
	assert_int_equal(mdb_env_open(env, dir, MDB_NOTLS, 0600), 0);
	assert_int_equal(mdb_txn_begin(env, NULL, 0, &txn), 0);
	assert_int_equal(mdb_dbi_open(txn, db, 0, &dbi), 0);
	k.mv_data = (void *)key;
	k.mv_size = strlen(key);
	v.mv_data = (void *)val;
	v.mv_size = len;
	assert_int_equal(mdb_put(txn, dbi, &k, &v, 0), 0);
	assert_int_equal(mdb_txn_commit(txn), 0);
	mdb_env_close(env);
}

#define GOOD_PREFIX "{\"mode\":\"enforce\",\"max_age\":1,\"mx\":[\"a\"]," \
    "\"id\":\"x\",\"fetched\":1,\"expires\":2,\"last_check\":3," \
    "\"last_error\":\"\""

/* Corrupt policy values, one row each. */
static const struct { const char *name; const char *val; size_t len; }
bad_values[] = {
	{ "garbage", "\x8f\x01garbage\xff", 0 },
	{ "empty", "", 0 },
	{ "nul-byte", "{\"v\":1\0}", 8 },
	{ "truncated", GOOD_PREFIX ",\"v\":1", 0 },
	{ "array", "[1,2,3]", 0 },
	{ "empty-object", "{}", 0 },
	{ "no-version", GOOD_PREFIX "}", 0 },
	{ "future-version", GOOD_PREFIX ",\"v\":2}", 0 },
	{ "version-string", GOOD_PREFIX ",\"v\":\"1\"}", 0 },
	{ "bad-mode", "{\"v\":1,\"mode\":\"strict\",\"max_age\":1,\"mx\":[],"
	    "\"id\":\"x\",\"fetched\":1,\"expires\":2,\"last_check\":3,"
	    "\"last_error\":\"\"}", 0 },
	{ "mx-not-strings", "{\"v\":1,\"mode\":\"enforce\",\"max_age\":1,"
	    "\"mx\":[1],\"id\":\"x\",\"fetched\":1,\"expires\":2,"
	    "\"last_check\":3,\"last_error\":\"\"}", 0 },
	{ "id-too-long", "{\"v\":1,\"mode\":\"enforce\",\"max_age\":1,"
	    "\"mx\":[],\"id\":\"abcdefghijklmnopqrstuvwxyz0123456\","
	    "\"fetched\":1,\"expires\":2,\"last_check\":3,"
	    "\"last_error\":\"\"}", 0 },
	{ "negative-max-age", "{\"v\":1,\"mode\":\"enforce\",\"max_age\":-1,"
	    "\"mx\":[],\"id\":\"x\",\"fetched\":1,\"expires\":2,"
	    "\"last_check\":3,\"last_error\":\"\"}", 0 },
	{ "missing-expires", "{\"v\":1,\"mode\":\"enforce\",\"max_age\":1,"
	    "\"mx\":[],\"id\":\"x\",\"fetched\":1,"
	    "\"last_check\":3,\"last_error\":\"\"}", 0 },
	{ "duplicate-key", GOOD_PREFIX ",\"v\":1,\"v\":1}", 0 },
};

/* count_cb - count iteration calls */
static int
count_cb(void *arg, const char *domain, const struct cache_sts *e)
{
	(void)domain;
	(void)e;
	(*(int *)arg)++;
	return 0;
}

/* test_corrupt_value - an undecodable entry is TEMP, never NOTFOUND */
static void
test_corrupt_value(void **state)
{
	struct fix *fx = *state;
	struct cache *c;
	struct cache_sts e, out;
	char why[DANESTS_WHY_MAX], *json;
	size_t i, len;
	int n;

	/* the good prefix plus a version is a valid entry: the rows above
	 * fail for their own defect, not for a typo in the prefix */
	c = open_ok(fx->dir);
	cache_close(c);
	raw_put(fx->dir, "sts", "good.example", GOOD_PREFIX ",\"v\":1}",
	    strlen(GOOD_PREFIX ",\"v\":1}"));
	c = open_ok(fx->dir);
	assert_int_equal(cache_sts_get(c, "good.example", &out, why,
	    sizeof(why)), DANESTS_OK);
	assert_string_equal(out.id, "x");
	assert_int_equal(out.last_check, 3);
	cache_sts_clear(&out);
	cache_close(c);

	for (i = 0; i < sizeof(bad_values) / sizeof(bad_values[0]); i++) {
		len = bad_values[i].len ? bad_values[i].len :
		    strlen(bad_values[i].val);
		raw_put(fx->dir, "sts", "bad.example", bad_values[i].val, len);
		if (len == 0 || bad_values[i].val[0] != '{') {
			/* neither checksummed nor of the unchecked older
			 * form: damage, found at open, so rebuilt */
			why[0] = '\0';
			assert_int_equal(cache_open(fx->dir, &c, why,
			    sizeof(why)), DANESTS_OK);
			assert_non_null(strstr(why, "moved aside"));
			assert_true(cache_was_rebuilt(c));
			assert_int_equal(cache_sts_get(c, "bad.example", &out,
			    why, sizeof(why)), DANESTS_NOTFOUND);
			cache_close(c);
			raw_put(fx->dir, "sts", "good.example", GOOD_PREFIX
			    ",\"v\":1}", strlen(GOOD_PREFIX ",\"v\":1}"));
			continue;
		}
		c = open_ok(fx->dir);
		why[0] = '\0';
		print_message("row %s\n", bad_values[i].name);
		assert_int_equal(cache_sts_get(c, "bad.example", &out, why,
		    sizeof(why)), DANESTS_TEMP);
		assert_non_null(strstr(why, "corrupt"));
		assert_non_null(strstr(why, "bad.example"));
		assert_null(out.policy.mx);
		/* iteration reports it but still shows the good one */
		n = 0;
		assert_int_equal(cache_sts_each(c, count_cb, &n, why,
		    sizeof(why)), DANESTS_TEMP);
		assert_int_equal(n, 1);
		/* a put repairs it */
		mkentry(&e, mx1, 1, DANESTS_STS_ENFORCE, "fixed", 9, "");
		assert_int_equal(cache_sts_put(c, "bad.example", &e, why,
		    sizeof(why)), DANESTS_OK);
		assert_int_equal(cache_sts_get(c, "bad.example", &out, why,
		    sizeof(why)), DANESTS_OK);
		assert_string_equal(out.id, "fixed");
		cache_sts_clear(&out);
		cache_close(c);
	}

	/* corrupt decisions of the older form: too short, NUL inside */
	raw_put(fx->dir, "decision", "d1.example", "DEC1", 4);
	raw_put(fx->dir, "decision", "d3.example", "DEC1\xff\xff\xff\xff"
	    "\xff\xff\xff\x7f{\0}", 15);
	c = open_ok(fx->dir);
	assert_int_equal(cache_decision_get(c, "d1.example", 0, &json, why,
	    sizeof(why)), DANESTS_TEMP);
	assert_int_equal(cache_decision_get(c, "d3.example", 0, &json, why,
	    sizeof(why)), DANESTS_TEMP);
	assert_non_null(strstr(why, "corrupt"));
	cache_close(c);

	/* an older decision is still read */
	raw_put(fx->dir, "decision", "d4.example", "DEC1\xff\xff\xff\xff"
	    "\xff\xff\xff\x7f{}", 14);
	c = open_ok(fx->dir);
	assert_int_equal(cache_decision_get(c, "d4.example", 0, &json, why,
	    sizeof(why)), DANESTS_OK);
	assert_string_equal(json, "{}");
	free(json);
	cache_close(c);

	/* a wrong magic is damage: rebuilt at open */
	raw_put(fx->dir, "decision", "d2.example", "XXXX\xff\xff\xff\xff"
	    "\xff\xff\xff\x7f{}", 14);
	why[0] = '\0';
	assert_int_equal(cache_open(fx->dir, &c, why, sizeof(why)),
	    DANESTS_OK);
	assert_non_null(strstr(why, "moved aside"));
	assert_int_equal(cache_decision_get(c, "d2.example", 0, &json, why,
	    sizeof(why)), DANESTS_NOTFOUND);
	cache_close(c);
}

/* put_time - the cache's 8-byte little-endian time encoding */
static void
put_time(unsigned char *p, int64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)((uint64_t)v >> (8 * i));
}

/* Rebuild times relative to now, and whether they still count. */
static const struct { int64_t ago; bool rebuilt; } grace_cases[] = {
	{ 0, true },
	{ 3600, true },
	{ 23 * 3600, true },
	{ 24 * 3600 + 1, false },
	{ 400 * 86400, false },
	{ -60, true },			/* clock stepped back a little */
	{ -86400, false },		/* a time far in the future */
};

/* test_rebuild_grace - the rebuild flag lasts one day */
static void
test_rebuild_grace(void **state)
{
	struct fix *fx = *state;
	struct cache *c;
	unsigned char t[8];
	time_t now;
	size_t i;

	c = open_ok(fx->dir);
	cache_close(c);
	for (i = 0; i < sizeof(grace_cases) / sizeof(grace_cases[0]); i++) {
		now = time(NULL);
		put_time(t, (int64_t)now - grace_cases[i].ago);
		raw_put(fx->dir, "meta", "rebuilt", t, sizeof(t));
		c = open_ok(fx->dir);
		assert_int_equal(cache_rebuilt_at(c),
		    (int64_t)now - grace_cases[i].ago);
		if (grace_cases[i].rebuilt)
			assert_true(cache_was_rebuilt(c));
		else
			assert_false(cache_was_rebuilt(c));
		cache_close(c);
	}
}

/* test_unusable_dir - no cache possible: TEMP, nothing moved aside */
static void
test_unusable_dir(void **state)
{
	struct fix *fx = *state;
	struct cache *c;
	char why[DANESTS_WHY_MAX], file[512], path[600];

	snprintf(file, sizeof(file), "%s/plain", fx->tmp);
	write_file(file, 10, 1);

	/* parent is a regular file (blocks root too) */
	snprintf(path, sizeof(path), "%s/cache", file);
	why[0] = '\0';
	c = (struct cache *)1;
	assert_int_equal(cache_open(path, &c, why, sizeof(why)),
	    DANESTS_TEMP);
	assert_null(c);
	assert_true(why[0] != '\0');

	/* the path itself is a regular file */
	why[0] = '\0';
	assert_int_equal(cache_open(file, &c, why, sizeof(why)),
	    DANESTS_TEMP);
	assert_non_null(strstr(why, "not a directory"));

	/* missing grand-parent */
	snprintf(path, sizeof(path), "%s/no/such/dir", fx->tmp);
	assert_int_equal(cache_open(path, &c, why, sizeof(why)),
	    DANESTS_TEMP);
	assert_int_equal(cache_open("", &c, why, sizeof(why)), DANESTS_TEMP);

	/* data.mdb is a directory: an I/O error, not corruption, so it is
	 * reported and left alone */
	assert_int_equal(mkdir(fx->dir, 0700), 0);
	snprintf(path, sizeof(path), "%s/data.mdb", fx->dir);
	assert_int_equal(mkdir(path, 0700), 0);
	assert_int_equal(cache_open(fx->dir, &c, why, sizeof(why)),
	    DANESTS_TEMP);
	assert_int_equal(count_prefix(fx->dir, "data.mdb.corrupt-"), 0);

	/* a created directory is the service group's, else private */
	{
		struct stat st;
		char sub[512];
		bool group = getgrnam("_danests") != NULL;

		snprintf(sub, sizeof(sub), "%s/fresh", fx->tmp);
		c = open_ok(sub);
		cache_close(c);
		assert_int_equal(stat(sub, &st), 0);
		assert_int_equal(st.st_mode & 07777, group ? 02770 : 0700);
		snprintf(path, sizeof(path), "%s/data.mdb", sub);
		assert_int_equal(stat(path, &st), 0);
		assert_int_equal(st.st_mode & 07777, group ? 0660 : 0600);
	}
}

/* refused - opening dir fails as unavailable and why contains what */
static void
refused(const char *dir, const char *what)
{
	struct cache *c = (struct cache *)1;
	char why[DANESTS_WHY_MAX] = "";

	assert_int_equal(cache_open(dir, &c, why, sizeof(why)),
	    DANESTS_TEMP);
	assert_null(c);
	if (strstr(why, what) == NULL)
		fail_msg("why \"%s\" lacks \"%s\"", why, what);
}

/* test_trust - a directory or file others could write is refused, links
 * are never followed, and nothing outside the directory is touched */
static void
test_trust(void **state)
{
	struct fix *fx = *state;
	struct cache *c;
	struct stat st;
	char path[600], lnk[600], victim[600], buf[16];
	mode_t old;
	int fd;

	/* created files get their mode whatever the umask */
	old = umask(077);
	c = open_ok(fx->dir);
	umask(old);
	cache_close(c);
	snprintf(path, sizeof(path), "%s/lock.mdb", fx->dir);
	assert_int_equal(stat(path, &st), 0);
	/* the lock file's blocks are allocated, not a sparse map */
	assert_true(st.st_size >= 32768);
	assert_true((off_t)st.st_blocks * 512 >= st.st_size);

	assert_int_equal(chmod(fx->dir, 0777), 0);
	refused(fx->dir, "writable by every user");
	assert_int_equal(chmod(fx->dir, 01777), 0);
	refused(fx->dir, "chmod 2770");
	assert_int_equal(chmod(fx->dir, 0700), 0);

	snprintf(lnk, sizeof(lnk), "%s/link", fx->tmp);
	assert_int_equal(symlink(fx->dir, lnk), 0);
	refused(lnk, "a symbolic link");
	snprintf(lnk, sizeof(lnk), "%s/link/", fx->tmp);
	refused(lnk, "a symbolic link");

	/* lock.mdb pointing elsewhere: refused, the target unchanged */
	snprintf(victim, sizeof(victim), "%s/victim", fx->tmp);
	assert_true((fd = open(victim, O_WRONLY | O_CREAT, 0600)) >= 0);
	assert_int_equal(write(fd, "precious", 8), 8);
	close(fd);
	assert_int_equal(unlink(path), 0);
	assert_int_equal(symlink(victim, path), 0);
	refused(fx->dir, "lock.mdb: a symbolic link");
	assert_true((fd = open(victim, O_RDONLY)) >= 0);
	assert_int_equal(read(fd, buf, sizeof(buf)), 8);
	close(fd);
	assert_memory_equal(buf, "precious", 8);
	assert_int_equal(unlink(path), 0);

	/* a second name for data.mdb */
	snprintf(path, sizeof(path), "%s/data.mdb", fx->dir);
	snprintf(lnk, sizeof(lnk), "%s/hard", fx->tmp);
	assert_int_equal(link(path, lnk), 0);
	refused(fx->dir, "hard-linked elsewhere");
	assert_int_equal(unlink(lnk), 0);

	assert_int_equal(chmod(path, 0666), 0);
	refused(fx->dir, "writable by every user");
	assert_int_equal(chmod(path, 0600), 0);
	c = open_ok(fx->dir);
	cache_close(c);

	if (geteuid() == 0) {
		/* owners and groups other than root and the service */
		assert_int_equal(chown(path, 65534, 0), 0);
		refused(fx->dir, "owned by another user");
		assert_int_equal(chown(path, 0, 0), 0);
		assert_int_equal(chown(fx->dir, 65534, 0), 0);
		refused(fx->dir, "owned by another user");
		assert_int_equal(chown(fx->dir, 0, 65534), 0);
		assert_int_equal(chmod(fx->dir, 0770), 0);
		refused(fx->dir, "writable by another group");
	}
}

/* flip - change one byte of each occurrence of what in dir's data.mdb,
 * in place (a reader with the file mapped sees it) */
static void
flip(const char *dir, const char *what)
{
	char path[600], *buf, *hit;
	struct stat st;
	int fd;

	/* past the file system's time stamp granularity (a jiffy): the
	 * change must show in data.mdb's modification time */
	usleep(50000);
	snprintf(path, sizeof(path), "%s/data.mdb", dir);
	assert_true((fd = open(path, O_RDWR)) >= 0);
	assert_int_equal(fstat(fd, &st), 0);
	assert_non_null(buf = malloc((size_t)st.st_size));
	assert_int_equal(pread(fd, buf, (size_t)st.st_size, 0), st.st_size);
	/* every copy: older ones stay behind in free pages */
	assert_non_null(hit = memmem(buf, (size_t)st.st_size, what,
	    strlen(what)));
	do {
		*hit ^= 0x20;
		assert_int_equal(pwrite(fd, hit, 1, hit - buf), 1);
	} while ((hit = memmem(hit, (size_t)(buf + st.st_size - hit), what,
	    strlen(what))) != NULL);
	close(fd);
	free(buf);
}

/* put_many - n policies and decisions, id "keep<i>" and "damage-me" */
static void
put_many(struct cache *c, int n)
{
	struct cache_sts e;
	char why[DANESTS_WHY_MAX], dom[64], id[32];
	int i;

	for (i = 0; i < n; i++) {
		snprintf(dom, sizeof(dom), "d%d.example", i);
		snprintf(id, sizeof(id), i == n / 2 ? "damage-me" : "keep%d",
		    i);
		mkentry(&e, mx1, 1, DANESTS_STS_ENFORCE, id, i, "");
		assert_int_equal(cache_sts_put(c, dom, &e, why, sizeof(why)),
		    DANESTS_OK);
		assert_int_equal(cache_decision_put(c, dom, "{\"x\":1}",
		    time(NULL) + 3600, why, sizeof(why)), DANESTS_OK);
	}
}

/* test_damage - a damaged value is found by the checksum walk, at open or
 * before a whole walk in a process that has the cache open, and the cache
 * is rebuilt; another process then moves over to the new file */
static void
test_damage(void **state)
{
	struct fix *fx = *state;
	struct cache *c;
	struct cache_sts out;
	char why[DANESTS_WHY_MAX], path[600];
	struct stat st;
	pid_t pid;
	int n, status;

	/* a verified file is not walked again by the next opener */
	c = open_ok(fx->dir);
	put_many(c, 200);
	cache_close(c);
	c = open_ok(fx->dir);
	cache_close(c);
	snprintf(path, sizeof(path), "%s/verified", fx->dir);
	assert_int_equal(stat(path, &st), 0);

	/* damage at rest: found at open */
	flip(fx->dir, "damage-me");
	why[0] = '\0';
	assert_int_equal(cache_open(fx->dir, &c, why, sizeof(why)),
	    DANESTS_OK);
	assert_non_null(strstr(why, "moved aside"));
	assert_true(cache_was_rebuilt(c));
	assert_int_equal(cache_sts_get(c, "d0.example", &out, why,
	    sizeof(why)), DANESTS_NOTFOUND);
	put_many(c, 200);
	cache_close(c);

	/* damage under a process that has the cache open: its next walk
	 * (the refresh) finds it, rebuilds, and says so */
	c = open_ok(fx->dir);
	assert_int_equal(cache_sts_get(c, "d1.example", &out, why,
	    sizeof(why)), DANESTS_OK);
	cache_sts_clear(&out);
	flip(fx->dir, "damage-me");
	n = 0;
	why[0] = '\0';
	assert_int_equal(cache_sts_each(c, count_cb, &n, why, sizeof(why)),
	    DANESTS_TEMP);
	assert_non_null(strstr(why, "moved aside"));
	assert_int_equal(n, 0);
	assert_int_equal(cache_sts_get(c, "d1.example", &out, why,
	    sizeof(why)), DANESTS_NOTFOUND);
	put_many(c, 200);

	/* another process rebuilds under this one: this one's next write
	 * goes to the new file */
	flip(fx->dir, "damage-me");
	if ((pid = fork()) == 0) {
		struct cache *c2;
		char w[DANESTS_WHY_MAX] = "";

		_exit(cache_open(fx->dir, &c2, w, sizeof(w)) == DANESTS_OK &&
		    strstr(w, "moved aside") != NULL ? 0 : 1);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &status, 0), pid);
	assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	mkentry(&out, mx1, 1, DANESTS_STS_ENFORCE, "after", 5, "");
	assert_int_equal(cache_sts_put(c, "after.example", &out, why,
	    sizeof(why)), DANESTS_OK);
	cache_close(c);
	c = open_ok(fx->dir);
	assert_int_equal(cache_sts_get(c, "after.example", &out, why,
	    sizeof(why)), DANESTS_OK);
	assert_string_equal(out.id, "after");
	cache_sts_clear(&out);
	cache_close(c);
}

/* test_map_growth - more data than the initial map: the map grows */
static void
test_map_growth(void **state)
{
	struct fix *fx = *state;
	struct cache *c = open_ok(fx->dir);
	char why[DANESTS_WHY_MAX], dom[64], *json;
	size_t n = 1000 * 1000, i;
	char *big = malloc(n + 1);

	assert_non_null(big);
	memset(big, 'x', n);
	big[n] = '\0';
	/* 300 x 1 MB > the 256 MiB initial map */
	for (i = 0; i < 300; i++) {
		snprintf(dom, sizeof(dom), "g%zu.example", i);
		big[0] = (char)('a' + i % 26);
		assert_int_equal(cache_decision_put(c, dom, big, 4102444800LL,
		    why, sizeof(why)), DANESTS_OK);
	}
	assert_int_equal(cache_decision_get(c, "g299.example", 1, &json, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(strlen(json), n);
	assert_int_equal(json[0], 'a' + 299 % 26);
	free(json);
	cache_close(c);

	/* the map really grew past its initial 256 MiB */
	{
		MDB_env *env;
		MDB_envinfo info;

		assert_int_equal(mdb_env_create(&env), 0);
		assert_int_equal(mdb_env_set_maxdbs(env, 4), 0);
		assert_int_equal(mdb_env_open(env, fx->dir, MDB_NOTLS |
		    MDB_RDONLY, 0600), 0);
		assert_int_equal(mdb_env_info(env, &info), 0);
		assert_true(info.me_mapsize > ((size_t)256 << 20));
		mdb_env_close(env);
	}

	/* a new opener adopts the grown map and reads everything */
	c = open_ok(fx->dir);
	assert_int_equal(cache_decision_get(c, "g0.example", 1, &json, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(json[0], 'a');
	free(json);
	cache_close(c);
	free(big);
}

/* child_work - one process's share of the concurrency test; returns the
 * number of failures */
static int
child_work(struct cache *c, int k, int nops)
{
	struct cache_sts e, out;
	char why[DANESTS_WHY_MAX], dom[64], id[33], json[64], *dj;
	int i, bad = 0, a, b;

	for (i = 0; i < nops; i++) {
		snprintf(dom, sizeof(dom), "c%d-%d.example", k, i);
		snprintf(id, sizeof(id), "k%di%d", k, i);
		mkentry(&e, mx2, 2, DANESTS_STS_ENFORCE, id, k * 100000 + i,
		    "");
		if (cache_sts_put(c, dom, &e, why, sizeof(why)) != DANESTS_OK)
			bad++;
		if (cache_sts_get(c, dom, &out, why, sizeof(why)) !=
		    DANESTS_OK || strcmp(out.id, id) != 0 ||
		    out.policy.nmx != 2)
			bad++;
		cache_sts_clear(&out);
		/* one key shared by everyone */
		if (cache_sts_put(c, "shared.example", &e, why, sizeof(why)) !=
		    DANESTS_OK)
			bad++;
		if (cache_sts_get(c, "shared.example", &out, why,
		    sizeof(why)) != DANESTS_OK ||
		    sscanf(out.id, "k%di%d", &a, &b) != 2 ||
		    out.fetched != a * 100000 + b)
			bad++;
		cache_sts_clear(&out);
		snprintf(json, sizeof(json), "{\"k\":%d,\"i\":%d}", k, i);
		if (cache_decision_put(c, "shared.example", json,
		    4102444800LL, why, sizeof(why)) != DANESTS_OK)
			bad++;
		dj = NULL;
		if (cache_decision_get(c, "shared.example", 1, &dj, why,
		    sizeof(why)) != DANESTS_OK ||
		    sscanf(dj, "{\"k\":%d,\"i\":%d}", &a, &b) != 2)
			bad++;
		free(dj);
	}
	return bad;
}

/* verify_all - every child's distinct keys are present and right */
static void
verify_all(struct cache *c, int nchild, int nops)
{
	struct cache_sts out;
	char why[DANESTS_WHY_MAX], dom[64], id[33];
	int k, i, n = 0;

	for (k = 0; k < nchild; k++)
		for (i = 0; i < nops; i++) {
			snprintf(dom, sizeof(dom), "c%d-%d.example", k, i);
			snprintf(id, sizeof(id), "k%di%d", k, i);
			assert_int_equal(cache_sts_get(c, dom, &out, why,
			    sizeof(why)), DANESTS_OK);
			assert_string_equal(out.id, id);
			assert_int_equal(out.fetched, k * 100000 + i);
			cache_sts_clear(&out);
		}
	assert_int_equal(cache_sts_each(c, count_cb, &n, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(n, nchild * nops + 1);	/* + shared.example */
}

/* wait_children - reap n children within a bound; all must exit 0 */
static void
wait_children(pid_t *pids, int n)
{
	int i, st;

	for (i = 0; i < n; i++) {
		assert_int_equal(waitpid(pids[i], &st, 0), pids[i]);
		if (!WIFEXITED(st))
			fail_msg("child %d killed by signal %d", i,
			    WTERMSIG(st));
		if (WEXITSTATUS(st) != 0)
			fail_msg("child %d: %d failed operations", i,
			    WEXITSTATUS(st));
	}
}

/* test_processes - NCHILD processes, each with its own handle */
static void
test_processes(void **state)
{
	struct fix *fx = *state;
	struct cache *c;
	pid_t pids[NCHILD];
	int k, bad;

	c = open_ok(fx->dir);	/* create it once, before the race */
	cache_close(c);
	for (k = 0; k < NCHILD; k++) {
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			char why[DANESTS_WHY_MAX];

			alarm(100);	/* bounded: a hang kills the child */
			if (cache_open(fx->dir, &c, why, sizeof(why)) !=
			    DANESTS_OK)
				_exit(200);
			bad = child_work(c, k, NOPS);
			cache_close(c);
			_exit(bad > 199 ? 199 : bad);
		}
	}
	wait_children(pids, NCHILD);
	c = open_ok(fx->dir);
	verify_all(c, NCHILD, NOPS);
	cache_close(c);
}

/* test_inherited - a handle opened before fork() works in the children
 * and, at the same time, in the parent */
static void
test_inherited(void **state)
{
	struct fix *fx = *state;
	struct cache *c;
	pid_t pids[4];
	int k, bad;

	c = open_ok(fx->dir);
	for (k = 0; k < 4; k++) {
		pids[k] = fork();
		assert_true(pids[k] >= 0);
		if (pids[k] == 0) {
			alarm(100);
			bad = child_work(c, k, 100);
			cache_close(c);
			_exit(bad > 199 ? 199 : bad);
		}
	}
	/* the parent writes too, as child number 4 */
	assert_int_equal(child_work(c, 4, 100), 0);
	wait_children(pids, 4);
	verify_all(c, 5, 100);
	cache_close(c);
}

/* lock_fds - descriptors of this process open on dir/lock.mdb */
static int
lock_fds(const char *dir)
{
	char want[600], link[300], got[600];
	struct dirent *de;
	DIR *d;
	ssize_t len;
	int n = 0;

	snprintf(want, sizeof(want), "%s/lock.mdb", dir);
	assert_non_null(d = opendir("/proc/self/fd"));
	while ((de = readdir(d)) != NULL) {
		snprintf(link, sizeof(link), "/proc/self/fd/%s", de->d_name);
		if ((len = readlink(link, got, sizeof(got) - 1)) <= 0)
			continue;
		got[len] = '\0';
		if (strcmp(got, want) == 0)
			n++;
	}
	closedir(d);
	return n;
}

/* lock_held - does this process hold an fcntl lock on dir/lock.mdb, as
 * another process sees it (F_GETLK never reports one's own locks)? */
static bool
lock_held(const char *dir)
{
	char path[600];
	pid_t me = getpid(), pid;
	int st;

	snprintf(path, sizeof(path), "%s/lock.mdb", dir);
	if ((pid = fork()) == 0) {
		struct flock fl;
		int fd;

		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;	/* the whole file */
		if ((fd = open(path, O_RDWR)) < 0 ||
		    fcntl(fd, F_GETLK, &fl) < 0)
			_exit(2);
		_exit(fl.l_type != F_UNLCK && fl.l_pid == me ? 0 : 1);
	}
	assert_true(pid > 0);
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) != 2);
	return WEXITSTATUS(st) == 0;
}

/* test_reopen - a second open of a directory this process has open (a
 * daemon's reload: a new context while the old one finishes) shares the
 * one environment: closing the first keeps LMDB's locks on lock.mdb,
 * which another process must see, and the last close releases them */
static void
test_reopen(void **state)
{
	struct fix *fx = *state;
	struct cache *c1, *c2;
	struct cache_sts e, out;
	char why[DANESTS_WHY_MAX], alias[700];

	c1 = open_ok(fx->dir);
	mkentry(&e, mx1, 1, DANESTS_STS_ENFORCE, "one", 1, "");
	assert_int_equal(cache_sts_put(c1, "one.example", &e, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(cache_sts_get(c1, "one.example", &out, why,
	    sizeof(why)), DANESTS_OK);	/* a reader: LMDB's pid lock */
	cache_sts_clear(&out);
	assert_true(lock_held(fx->dir));

	/* the same directory under another name: one environment */
	snprintf(alias, sizeof(alias), "%s/../cache/", fx->dir);
	c2 = open_ok(alias);
	assert_int_equal(lock_fds(fx->dir), 1);
	cache_close(c1);
	assert_true(lock_held(fx->dir));
	assert_int_equal(lock_fds(fx->dir), 1);

	/* the survivor still reads and writes */
	assert_int_equal(cache_sts_get(c2, "one.example", &out, why,
	    sizeof(why)), DANESTS_OK);
	assert_string_equal(out.id, "one");
	cache_sts_clear(&out);
	mkentry(&e, mx1, 1, DANESTS_STS_ENFORCE, "two", 2, "");
	assert_int_equal(cache_sts_put(c2, "two.example", &e, why,
	    sizeof(why)), DANESTS_OK);
	assert_true(lock_held(fx->dir));

	/* the last close releases the environment */
	cache_close(c2);
	assert_false(lock_held(fx->dir));
	assert_int_equal(lock_fds(fx->dir), 0);
	c1 = open_ok(fx->dir);
	assert_int_equal(cache_sts_get(c1, "two.example", &out, why,
	    sizeof(why)), DANESTS_OK);
	cache_sts_clear(&out);
	cache_close(c1);
}

#define NTHREAD		4
#define TOPS		200

/* One thread of test_threads. */
struct targ {
	const char *dir;
	int k;
	int bad;
};

/* thread_work - open the cache, write and read back its own keys, close */
static void *
thread_work(void *arg)
{
	struct targ *t = arg;
	struct cache *c;
	struct cache_sts e, out;
	char why[DANESTS_WHY_MAX], dom[64], id[32];
	int i;

	if (cache_open(t->dir, &c, why, sizeof(why)) != DANESTS_OK) {
		t->bad = TOPS;
		return NULL;
	}
	for (i = 0; i < TOPS; i++) {
		snprintf(dom, sizeof(dom), "t%d-%d.example", t->k, i);
		snprintf(id, sizeof(id), "%d.%d", t->k, i);
		mkentry(&e, mx1, 1, DANESTS_STS_ENFORCE, id, i, "");
		if (cache_sts_put(c, dom, &e, why, sizeof(why)) != DANESTS_OK ||
		    cache_sts_get(c, dom, &out, why, sizeof(why)) !=
		    DANESTS_OK) {
			t->bad++;
			continue;
		}
		if (strcmp(out.id, id) != 0)
			t->bad++;
		cache_sts_clear(&out);
	}
	cache_close(c);
	return NULL;
}

/* test_threads - contexts of several threads share one handle: their
 * operations are serialised and all of them land */
static void
test_threads(void **state)
{
	struct fix *fx = *state;
	struct targ t[NTHREAD];
	pthread_t tid[NTHREAD];
	struct cache *c;
	int k;

	c = open_ok(fx->dir);	/* held throughout, as an old context */
	for (k = 0; k < NTHREAD; k++) {
		t[k].dir = fx->dir;
		t[k].k = k;
		t[k].bad = 0;
		assert_int_equal(pthread_create(&tid[k], NULL, thread_work,
		    &t[k]), 0);
	}
	for (k = 0; k < NTHREAD; k++) {
		assert_int_equal(pthread_join(tid[k], NULL), 0);
		assert_int_equal(t[k].bad, 0);
	}
	assert_int_equal(lock_fds(fx->dir), 1);
	assert_true(lock_held(fx->dir));
	cache_close(c);
	assert_false(lock_held(fx->dir));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_roundtrip, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_overwrite, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_public_view, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_notfound, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_decision_expiry, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_each, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_env, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_value, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_rebuild_grace, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_unusable_dir, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_trust, setup, teardown),
		cmocka_unit_test_setup_teardown(test_damage, setup, teardown),
		cmocka_unit_test_setup_teardown(test_map_growth, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_processes, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_inherited, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_reopen, setup,
		    teardown),
		cmocka_unit_test_setup_teardown(test_threads, setup,
		    teardown),
	};

	/* TEST_FILTER=pattern runs a subset, e.g. when debugging */
	if (getenv("TEST_FILTER") != NULL)
		cmocka_set_test_filter(getenv("TEST_FILTER"));
	return cmocka_run_group_tests(tests, NULL, NULL);
}
