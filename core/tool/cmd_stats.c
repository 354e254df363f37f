/*
 * cmd_stats.c - danests stats: the counters stored in the shared cache
 *
 * Processes that serve no metrics themselves (the Exim module, with
 * `metrics yes` in [exim]) add their counts to the cache; this prints
 * their sum, as "name{labels} value" lines of the counters that are not
 * zero, or with --prometheus as the Prometheus text exposition format
 * (for a textfile collector).  The daemons serve their own counters on
 * metrics_listen; they store none.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmds.h"
#include "common.h"
#include "danests-metrics.h"

#define STATS_TEXT_MAX	(256 * 1024)

static const char stats_usage[] =
"usage: danests stats [--cache-dir DIR] [--prometheus]\n"
"  Print the counters the Exim module stored in the cache (metrics yes in\n"
"  [exim]): decisions by verdict, reason and host policy, policy fetches,\n"
"  cache lookups, decision latency.  Only the counters that are not zero,\n"
"  as name{labels} value lines; --prometheus prints every counter in the\n"
"  Prometheus text exposition format.\n"
"  --cache-dir DIR  the cache (default: cache_dir of danests.conf)\n"
"  Exit status: 0, 64 usage, 75 the cache cannot be read.\n";

/* cmd_stats - see cmds.h */
int
cmd_stats(int argc, char **argv, const char *cache_dir)
{
	const char *dir = cache_dir;
	struct danests_cache *c;
	struct danests_metrics *m;
	struct danests_expo e;
	char why[1024] = "", *buf, *line, *save = NULL;
	bool prom = false;
	size_t found;
	danests_status st;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(stats_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--prometheus") == 0)
			prom = true;
		else if (strcmp(argv[i], "--cache-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strncmp(argv[i], "--cache-dir=", 12) == 0)
			dir = argv[i] + 12;
		else {
			fprintf(stderr, "danests: stats: unknown argument %s "
			    "(see 'danests stats --help')\n", argv[i]);
			return EXIT_USAGE;
		}
	}
	if (dir == NULL || *dir == '\0') {
		fprintf(stderr, "danests: stats: no cache directory "
		    "(cache_dir none)\n");
		return EXIT_USAGE;
	}
	if (danests_cache_open(dir, &c, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests: stats: %s\n", why);
		return EXIT_TEMP;
	}
	if ((m = danests_metrics_new()) == NULL ||
	    (buf = malloc(STATS_TEXT_MAX)) == NULL) {
		danests_metrics_free(m);
		danests_cache_close(c);
		fprintf(stderr, "danests: stats: out of memory\n");
		return EXIT_TEMP;
	}
	st = danests_cache_metrics(c, m, &found, why, sizeof(why));
	danests_cache_close(c);
	if (st != DANESTS_OK) {
		fprintf(stderr, "danests: stats: %s\n", why);
		danests_metrics_free(m);
		free(buf);
		return EXIT_TEMP;
	}
	if (found == 0 && !prom)
		printf("no counters stored in %s (the Exim module stores its "
		    "counters there with metrics yes in [exim]; the daemons "
		    "serve theirs on metrics_listen)\n", dir);
	danests_expo_init(&e, buf, STATS_TEXT_MAX);
	danests_metrics_write(m, &e);
	danests_metrics_free(m);
	if (e.overflow) {
		fprintf(stderr, "danests: stats: text too long\n");
		free(buf);
		return EXIT_TEMP;
	}
	if (prom)
		fputs(buf, stdout);
	else if (found > 0)
		for (line = strtok_r(buf, "\n", &save); line != NULL;
		    line = strtok_r(NULL, "\n", &save))
			if (line[0] != '#' && strcmp(strrchr(line, ' '),
			    " 0") != 0)
				puts(line);
	free(buf);
	return 0;
}
