/*
 * cmd_stats.c - danests stats: the counters the Exim module stored
 *
 * Processes that serve no metrics themselves (the Exim module, with
 * `metrics yes` in [exim]) add their counts to the node's cache; this
 * prints their sum, as "name{labels} value" lines of the counters that
 * are not zero, or with --prometheus as the Prometheus text exposition
 * format (for a textfile collector).  With a shared store (store in
 * danests.conf) the nodes push their totals there (metrics_fleet.c) and
 * this prints the sum over the fleet, or one node's (--node); when the
 * store cannot be reached, this node's cache, said on stderr.  The
 * daemons serve their own counters on metrics_listen; they store none.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "cmds.h"
#include "common.h"
#include "danests-metrics.h"
#include "danests-report.h"

#define STATS_TEXT_MAX	(256 * 1024)

static const char stats_usage[] =
"usage: danests stats [--config FILE] [--cache-dir DIR] [--local | --node ID]\n"
"                     [--prometheus]\n"
"  Print the counters the Exim module stored (metrics yes in [exim]):\n"
"  decisions by verdict, reason and host policy, policy fetches, cache\n"
"  lookups, decision latency.  Only the counters that are not zero, as\n"
"  name{labels} value lines; --prometheus prints every counter in the\n"
"  Prometheus text exposition format.\n"
"  With a shared store (store in the configuration) each node pushes its\n"
"  totals there at most every store_push_interval seconds, and this\n"
"  prints the sum over the nodes that pushed within the last 7 days (a\n"
"  first line \"# the sum of N nodes\"; with --prometheus the gauge\n"
"  danests_fleet_nodes).  When the store cannot be reached it prints the\n"
"  counters of this node's cache and says so on standard error.\n"
"  --config FILE    configuration file (default " DANESTS_DEFAULT_CONFIG ")\n"
"  --cache-dir DIR  the cache (default: cache_dir of the configuration)\n"
"  --local          this node's cache only, even with a store\n"
"  --node ID        the counters node ID pushed to the store\n"
"  Exit status: 0 (also when the store is unreachable and this node's\n"
"  cache was read), 64 usage or configuration error, 69 --node: no such\n"
"  node in the store, 75 the cache cannot be read, or --node and the\n"
"  store cannot be reached.\n";

struct stats_opts {
	const char *config, *dir, *node;
	bool prom, local;
};

/* stats_args - the options; -1 to go on, else the exit status */
static int
stats_args(int argc, char **argv, struct stats_opts *o)
{
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(stats_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--prometheus") == 0)
			o->prom = true;
		else if (strcmp(argv[i], "--local") == 0)
			o->local = true;
		else if (strcmp(argv[i], "--cache-dir") == 0 && i + 1 < argc)
			o->dir = argv[++i];
		else if (strncmp(argv[i], "--cache-dir=", 12) == 0)
			o->dir = argv[i] + 12;
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			o->config = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			o->config = argv[i] + 9;
		else if (strcmp(argv[i], "--node") == 0 && i + 1 < argc)
			o->node = argv[++i];
		else if (strncmp(argv[i], "--node=", 7) == 0)
			o->node = argv[i] + 7;
		else {
			fprintf(stderr, "danests: stats: unknown argument %s "
			    "(see 'danests stats --help')\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (o->local && o->node != NULL) {
		fprintf(stderr, "danests: stats: --local and --node exclude "
		    "each other\n");
		return EXIT_USAGE;
	}
	return -1;
}

/* stats_local - add the counters of the cache in dir into m */
static int
stats_local(const char *dir, struct danests_metrics *m, size_t *found)
{
	struct danests_cache *c;
	char why[1024] = "";
	danests_status st;

	if (dir == NULL || *dir == '\0') {
		fprintf(stderr, "danests: stats: no cache directory "
		    "(cache_dir none)\n");
		return EXIT_USAGE;
	}
	if (danests_cache_open(dir, &c, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests: stats: %s\n", why);
		return EXIT_TEMP;
	}
	st = danests_cache_metrics(c, m, found, why, sizeof(why));
	danests_cache_close(c);
	if (st != DANESTS_OK) {
		fprintf(stderr, "danests: stats: %s\n", why);
		return EXIT_TEMP;
	}
	return 0;
}

/* stats_fleet - add the counters of the store into m; -1 when the store
 * cannot be read and this node's cache is to be read instead */
static int
stats_fleet(struct danests_fleet *fl, const struct stats_opts *o,
    struct danests_metrics *m, size_t *nodes)
{
	char why[1024] = "";
	danests_status st;

	st = danests_fleet_metrics(fl, o->node, m, nodes, why, sizeof(why));
	if (st == DANESTS_OK || (st == DANESTS_NOTFOUND && o->node == NULL))
		return 0;
	fprintf(stderr, "danests: stats: %s\n", why);
	if (st == DANESTS_PERM)
		return EXIT_USAGE;
	if (o->node != NULL)
		return st == DANESTS_NOTFOUND ? EXIT_PERM : EXIT_TEMP;
	fprintf(stderr, "danests: stats: the shared store cannot be read: "
	    "the counters of this node's cache only\n");
	return -1;
}

/* cmd_stats - see cmds.h */
int
cmd_stats(int argc, char **argv, const char *cache_dir)
{
	struct stats_opts o = { .dir = NULL };
	struct danests_config *cfg = NULL;
	struct danests_fleet *fl = NULL;
	struct danests_metrics *m = NULL;
	struct danests_expo e;
	struct stat sb;
	char why[1024] = "", *buf = NULL, *line, *save = NULL;
	const char *dir;
	size_t found = 0, nodes = 0;
	int rc;

	if ((rc = stats_args(argc, argv, &o)) >= 0)
		return rc;
	dir = o.dir != NULL ? o.dir : cache_dir;
	if (o.config == NULL && (stat(DANESTS_DEFAULT_CONFIG, &sb) == 0 ||
	    errno != ENOENT))
		o.config = DANESTS_DEFAULT_CONFIG;
	if ((cfg = danests_config_new()) == NULL ||
	    (m = danests_metrics_new()) == NULL ||
	    (buf = malloc(STATS_TEXT_MAX)) == NULL) {
		fprintf(stderr, "danests: stats: out of memory\n");
		rc = EXIT_TEMP;
		goto out;
	}
	if (o.config != NULL) {
		if (danests_config_load(cfg, o.config, why, sizeof(why)) !=
		    DANESTS_OK) {
			fprintf(stderr, "danests: stats: %s\n", why);
			rc = EXIT_USAGE;
			goto out;
		}
		if (o.dir == NULL)
			dir = danests_config_cache_dir(cfg);
	}
	if (!o.local && danests_report_fleet_open(cfg, &fl, why,
	    sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests: stats: %s\n", why);
		rc = EXIT_USAGE;
		goto out;
	}
	if (o.node != NULL && fl == NULL) {
		fprintf(stderr, "danests: stats: --node: no store in the "
		    "configuration\n");
		rc = EXIT_USAGE;
		goto out;
	}
	rc = fl != NULL ? stats_fleet(fl, &o, m, &nodes) : -1;
	if (rc == -1) {
		danests_report_fleet_close(fl);
		fl = NULL;
		rc = stats_local(dir, m, &found);
	}
	if (rc != 0)
		goto out;
	if (fl != NULL && !o.prom && o.node != NULL)
		printf("# node %s (shared store)\n", o.node);
	else if (fl != NULL && !o.prom)
		printf("# the sum of %zu nodes (shared store)\n", nodes);
	if (fl == NULL && found == 0 && !o.prom)
		printf("no counters stored in %s (the Exim module stores its "
		    "counters there with metrics yes in [exim]; the daemons "
		    "serve theirs on metrics_listen)\n", dir);
	danests_expo_init(&e, buf, STATS_TEXT_MAX);
	danests_metrics_write(m, &e);
	if (fl != NULL) {
		danests_expo_family(&e, "danests_fleet_nodes", "gauge",
		    "Nodes whose counters are added up (danests stats with "
		    "a shared store).");
		danests_expo_u64(&e, "danests_fleet_nodes", NULL, nodes);
	}
	if (e.overflow) {
		fprintf(stderr, "danests: stats: text too long\n");
		rc = EXIT_TEMP;
		goto out;
	}
	if (o.prom)
		fputs(buf, stdout);
	else if (fl != NULL || found > 0)
		for (line = strtok_r(buf, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			if (line[0] != '#' && strcmp(strrchr(line, ' '),
			    " 0") != 0 && strncmp(line,
			    "danests_fleet_nodes ", 20) != 0)
				puts(line);
out:
	danests_report_fleet_close(fl);
	danests_config_free(cfg);
	danests_metrics_free(m);
	free(buf);
	return rc;
}
