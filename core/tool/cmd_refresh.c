/*
 * cmd_refresh.c - "danests cache refresh": refetch policies before expiry
 *
 *	danests cache [--cache-dir DIR] refresh [--window SECONDS]
 *	    [--parallel N] [--resolver ADDR[@PORT]] [--ca-file FILE]
 *	    [--timeout SECONDS] [--config FILE]
 *
 * Every cached MTA-STS policy expiring within the window is fetched again
 * (RFC 8461 5.1), a bounded number at a time.  A failed refetch keeps the
 * cached policy in force and records the error with it.  Exit status 0
 * when every due policy was refreshed, 75 when any failed or the cache
 * could not be used, 64 for a usage error.
 */
#include "danests.h"
#include "cmds.h"

#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define EXIT_USAGE	64
#define EXIT_TEMP	75

static const char refresh_help[] =
"NAME\n"
"     danests cache refresh - refetch MTA-STS policies before they expire\n"
"\n"
"SYNOPSIS\n"
"     danests cache [--cache-dir DIR] refresh [--window SECONDS]\n"
"                   [--parallel N] [--resolver ADDR[@PORT]]\n"
"                   [--ca-file FILE] [--timeout SECONDS]\n"
"                   [--config FILE]\n"
"\n"
"DESCRIPTION\n"
"     Fetches again every cached policy that expires within the window,\n"
"     checking its _mta-sts TXT record first.  A policy that cannot be\n"
"     fetched stays in force until it expires; the error is recorded with\n"
"     it (see 'danests cache show').  Run it from cron or a timer when no\n"
"     daemon adapter refreshes the cache.  The core settings of\n"
"     /etc/danests/danests.conf (resolver, ca_file, cache_dir) apply when\n"
"     it exists (or of --config FILE); the options override them.  With\n"
"     a shared store (store in danests.conf), one node refreshes a domain\n"
"     at a time: a domain another node is refreshing is skipped, a policy\n"
"     another node refreshed is taken from the store, and the local\n"
"     policies the store may have missed are written to it first.\n"
"\n"
"OPTIONS\n"
"     --window SECONDS   refresh policies expiring within this many seconds\n"
"                        (default 86400)\n"
"     --parallel N       fetches at a time (default 8, at most 64)\n"
"     --resolver ADDR[@PORT], --ca-file FILE\n"
"                        as for 'danests check'\n"
"     --timeout SECONDS  bound on each policy lookup (default 15)\n"
"     --config FILE      read the core settings of FILE instead\n"
"\n"
"EXIT STATUS\n"
"     0 all due policies refreshed, 75 any failed or the cache is\n"
"     unusable, 64 usage error.\n";

/* num_arg - a decimal option value within [min, max] */
static int
num_arg(const char *opt, const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	unsigned long long v;

	if (!danests_parse_uint(s, min, max, &v)) {
		fprintf(stderr, "danests: cache refresh: %s: expected a number "
		    "from %lu to %lu, got \"%s\"\n", opt, min, max, s);
		return -1;
	}
	*out = (unsigned long)v;
	return 0;
}

/* cmd_cache_refresh - argv[0] is "refresh" */
int
cmd_cache_refresh(int argc, char **argv, const char *cache_dir)
{
	static const struct option opts[] = {
		{ "window", required_argument, NULL, 'w' },
		{ "parallel", required_argument, NULL, 'p' },
		{ "resolver", required_argument, NULL, 'r' },
		{ "ca-file", required_argument, NULL, 'c' },
		{ "timeout", required_argument, NULL, 't' },
		{ "config", required_argument, NULL, 'f' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct danests_config *cfg;
	struct danests_ctx *ctx;
	unsigned long window = 86400, parallel = 8, timeout = 15;
	size_t due = 0, ok = 0, failed = 0;
	char why[1024];
	struct stat sb;
	int ch, rc = EXIT_USAGE, i;
	const char *conf = NULL;

	if ((cfg = danests_config_new()) == NULL) {
		fprintf(stderr, "danests: out of memory\n");
		return EXIT_TEMP;
	}
	/* --config first: the other options override what it sets */
	for (i = 1; i < argc && strcmp(argv[i], "--") != 0; i++)
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (strncmp(argv[i], "--config=", 9) == 0)
			conf = argv[i] + 9;
	/* the core settings of danests.conf(5); the options override them */
	if (conf != NULL ? danests_config_load(cfg, conf, why, sizeof(why)) !=
	    DANESTS_OK : (stat(DANESTS_DEFAULT_CONFIG, &sb) == 0 ||
	    errno != ENOENT) &&
	    danests_config_load(cfg, DANESTS_DEFAULT_CONFIG, why,
	    sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests: cache refresh: %s\n", why);
		goto out;
	}
	optind = 1;
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'w':
			if (num_arg("--window", optarg, 0, 31557600, &window))
				goto out;
			break;
		case 'p':
			if (num_arg("--parallel", optarg, 1, 64, &parallel))
				goto out;
			break;
		case 't':
			if (num_arg("--timeout", optarg, 1, 300, &timeout))
				goto out;
			break;
		case 'r':
		case 'c':
			if ((ch == 'r' ? danests_config_set_resolver(cfg,
			    optarg, why, sizeof(why)) :
			    danests_config_set_ca_file(cfg, optarg, why,
			    sizeof(why))) != DANESTS_OK) {
				fprintf(stderr, "danests: cache refresh: %s\n",
				    why);
				goto out;
			}
			break;
		case 'f':
			break;	/* read above */
		case 'h':
			fputs(refresh_help, stdout);
			rc = 0;
			goto out;
		default:
			fprintf(stderr, "danests: cache refresh: unknown or "
			    "incomplete option \"%s\"; see 'danests cache "
			    "refresh --help'\n", argv[optind - 1]);
			goto out;
		}
	}
	if (optind != argc) {
		fprintf(stderr, "danests: cache refresh: unexpected argument "
		    "\"%s\"\n", argv[optind]);
		goto out;
	}
	danests_config_set_decision_timeout(cfg, (unsigned)timeout * 1000);
	danests_config_set_dns_timeout(cfg, timeout > 5 ? 5000 :
	    (unsigned)timeout * 1000);
	if (danests_config_set_cache_dir(cfg, cache_dir, why, sizeof(why)) !=
	    DANESTS_OK ||
	    danests_ctx_new(cfg, NULL, &ctx, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests: cache refresh: %s\n", why);
		rc = EXIT_TEMP;
		goto out;
	}
	if (danests_refresh(ctx, (unsigned)window, (unsigned)parallel, &due,
	    &ok, &failed, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests: cache refresh: %s\n", why);
		rc = EXIT_TEMP;
	} else {
		printf("%zu due, %zu refreshed, %zu failed\n", due, ok,
		    failed);
		rc = failed ? EXIT_TEMP : 0;
	}
	danests_ctx_free(ctx);
out:
	danests_config_free(cfg);
	return rc;
}
