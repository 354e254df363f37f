/*
 * bench_core.c - throughput of the core against the test bed
 *
 *	bench_core RESOLVER CAFILE ROUNDS DOMAIN...
 *
 * Prints, one figure per line ("name value unit"):
 *  cold_decisions_per_s   all DOMAINs decided concurrently, no cache,
 *                         ROUNDS times over
 *  warm_decision_us       one decision answered from the shared cache
 *  warm_decisions_per_s_4proc  the same from 4 processes at once
 *  policy_fetches_per_s   every policy of the STS domains fetched in
 *                         parallel, ROUNDS times over (no cache)
 *  lmdb_bytes_per_10k     cache file size after 10000 cached policies
 */
#include "danests-internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

static double
now_s(void)
{
	struct timeval tv;

	gettimeofday(&tv, NULL);
	return (double)tv.tv_sec + tv.tv_usec / 1e6;
}

static size_t done_count;

static void
count_cb(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	(void)arg;
	(void)st;
	(void)why;
	danests_decision_free(d);
	done_count++;
}

static struct danests_ctx *
mkctx(struct event_base *base, const char *resolver, const char *ca,
    const char *cache)
{
	struct danests_config *cfg = danests_config_new();
	struct danests_ctx *ctx;
	char why[256];

	danests_config_set_resolver(cfg, resolver, why, sizeof(why));
	danests_config_set_ca_file(cfg, ca, why, sizeof(why));
	danests_config_set_cache_dir(cfg, cache, why, sizeof(why));
	danests_config_set_decision_timeout(cfg, 12000);
	danests_config_set_dns_timeout(cfg, 5000);
	danests_config_set_decision_ttl(cfg, 3600);
	if (danests_ctx_new(cfg, base, &ctx, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "bench_core: %s\n", why);
		exit(1);
	}
	danests_config_free(cfg);
	return ctx;
}

static void
fetch_cb(void *arg, struct sts_fetch_result *r)
{
	(void)r;
	(*(size_t *)arg)++;
}

int
main(int argc, char **argv)
{
	struct event_base *base;
	struct danests_ctx *ctx;
	struct danests_decision *d;
	char why[256], dir[] = "/tmp/danests-bench-XXXXXX", path[300];
	int rounds, i, j, n, p, k;
	double t0, t;
	const int warm_n = 20000, procs = 4;

	if (argc < 5) {
		fprintf(stderr, "usage: bench_core RESOLVER CAFILE ROUNDS "
		    "DOMAIN...\n");
		return 64;
	}
	rounds = atoi(argv[3]);
	n = argc - 4;
	if (mkdtemp(dir) == NULL)
		return 1;

	/* cold: no cache, every domain at once */
	base = event_base_new();
	ctx = mkctx(base, argv[1], argv[2], NULL);
	t0 = now_s();
	for (j = 0; j < rounds; j++) {
		done_count = 0;
		for (i = 0; i < n; i++)
			if (danests_decide_async(ctx, argv[4 + i],
			    DANESTS_F_NO_CACHE, count_cb, NULL, why,
			    sizeof(why)) != DANESTS_OK)
				done_count++;
		while (done_count < (size_t)n)
			event_base_loop(base, EVLOOP_ONCE);
	}
	t = now_s() - t0;
	printf("cold_decisions_per_s %.1f decisions/s (%d domains x %d "
	    "rounds in %.2f s)\n", n * rounds / t, n, rounds, t);

	/* policy fetches in parallel, no cache */
	{
		size_t fetched = 0, want = 0;
		const char *addr[] = { "127.10.1.1" };

		t0 = now_s();
		for (j = 0; j < rounds; j++)
			for (i = 0; i < n; i++) {
				if (strncmp(argv[4 + i], "sts-", 4) != 0)
					continue;
				if (sts_fetch_start(ctx->fetcher, argv[4 + i],
				    addr, 1, fetch_cb, &fetched) == DANESTS_OK)
					want++;
			}
		while (fetched < want)
			event_base_loop(base, EVLOOP_ONCE);
		t = now_s() - t0;
		printf("policy_fetches_per_s %.1f fetches/s (%zu in parallel "
		    "in %.2f s)\n", want / t, want, t);
	}
	danests_ctx_free(ctx);
	event_base_free(base);

	/* warm: decisions from the shared cache */
	base = event_base_new();
	ctx = mkctx(base, argv[1], argv[2], dir);
	for (i = 0; i < n; i++)
		if (danests_decide(ctx, argv[4 + i], 0, &d, why, sizeof(why)) ==
		    DANESTS_OK)
			danests_decision_free(d);
	t0 = now_s();
	for (k = 0; k < warm_n; k++) {
		if (danests_decide(ctx, argv[4 + k % n], 0, &d, why,
		    sizeof(why)) != DANESTS_OK) {
			fprintf(stderr, "bench_core: %s\n", why);
			return 1;
		}
		if (!d->from_cache && d->verdict != DANESTS_TEMPFAIL) {
			fprintf(stderr, "bench_core: %s not from cache\n",
			    d->domain);
		}
		danests_decision_free(d);
	}
	t = now_s() - t0;
	printf("warm_decision_us %.2f us/decision (%d decisions)\n",
	    t / warm_n * 1e6, warm_n);
	danests_ctx_free(ctx);
	event_base_free(base);

	t0 = now_s();
	for (p = 0; p < procs; p++) {
		if (fork() == 0) {
			base = event_base_new();
			ctx = mkctx(base, argv[1], argv[2], dir);
			for (k = 0; k < warm_n; k++)
				if (danests_decide(ctx, argv[4 + k % n], 0, &d,
				    why, sizeof(why)) == DANESTS_OK)
					danests_decision_free(d);
			danests_ctx_free(ctx);
			event_base_free(base);
			_exit(0);
		}
	}
	while (wait(NULL) > 0)
		;
	t = now_s() - t0;
	printf("warm_decisions_per_s_%dproc %.0f decisions/s\n", procs,
	    procs * warm_n / t);

	/* LMDB size per 10k policies */
	{
		struct cache *c;
		struct cache_sts e;
		char dom[64], *mx[] = { "mx1.example.test", "*.example.test" };
		struct stat sb;
		char dir2[] = "/tmp/danests-bench-XXXXXX";

		if (mkdtemp(dir2) == NULL ||
		    cache_open(dir2, &c, why, sizeof(why)) != DANESTS_OK)
			return 1;
		memset(&e, 0, sizeof(e));
		e.policy.mode = DANESTS_STS_ENFORCE;
		e.policy.max_age = 604800;
		e.policy.nmx = 2;
		e.policy.mx = mx;
		strlcpy(e.id, "20261123T000000", sizeof(e.id));
		e.fetched = e.last_check = time(NULL);
		e.expires = e.fetched + 604800;
		for (k = 0; k < 10000; k++) {
			snprintf(dom, sizeof(dom), "domain%05d.example.test", k);
			cache_sts_put(c, dom, &e, why, sizeof(why));
		}
		cache_close(c);
		snprintf(path, sizeof(path), "%s/data.mdb", dir2);
		if (stat(path, &sb) == 0)
			printf("lmdb_bytes_per_10k %lld bytes allocated (%lld "
			    "apparent)\n", (long long)sb.st_blocks * 512,
			    (long long)sb.st_size);
		snprintf(path, sizeof(path), "rm -rf %s", dir2);
		if (system(path) != 0)
			return 1;
	}
	snprintf(path, sizeof(path), "rm -rf %s", dir);
	return system(path) != 0;
}
