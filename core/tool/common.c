/*
 * common.c - options shared by the commands that decide (check, probe)
 *
 * Order of precedence, whatever the order of the options: built-in
 * defaults, then the core keys of --config FILE (or of
 * /etc/danests/danests.conf when it exists), then --resolver and
 * --ca-file, then --cache-dir or --no-cache, then --timeout.
 */
#include "common.h"

#include <sys/stat.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* common_init - no options yet; returns 0 */
int
common_init(struct common *o, const char *cmd)
{
	memset(o, 0, sizeof(*o));
	o->cmd = cmd;
	return 0;
}

/* common_free - release what common_init made */
void
common_free(struct common *o)
{
	danests_config_free(o->cfg);
	o->cfg = NULL;
}

/* common_usage - one-line usage error with a hint; returns EXIT_USAGE */
int
common_usage(const struct common *o, const char *what, const char *arg)
{
	fprintf(stderr, "danests: %s: %s%s%s (see 'danests %s --help')\n",
	    o->cmd, what, arg ? ": " : "", arg ? arg : "", o->cmd);
	return EXIT_USAGE;
}

/* common_uint - a decimal number lo..hi, digits only */
bool
common_uint(const char *s, unsigned lo, unsigned hi, unsigned *out)
{
	unsigned long long n;

	if (!danests_parse_uint(s, lo, hi, &n))
		return false;
	*out = (unsigned)n;
	return true;
}

/* common_option - one shared option: 1 taken, 0 not shared, -1 error */
int
common_option(struct common *o, int c, const char *arg)
{
	struct danests_config *scratch;
	char why[512];
	danests_status st;

	switch (c) {
	case O_RESOLVER:
	case O_CA_FILE:
		/* checked now, applied after the configuration file */
		if ((scratch = danests_config_new()) == NULL) {
			snprintf(why, sizeof(why), "out of memory");
			st = DANESTS_TEMP;
		} else if (c == O_RESOLVER)
			st = danests_config_set_resolver(scratch, arg, why,
			    sizeof(why));
		else
			st = danests_config_set_ca_file(scratch, arg, why,
			    sizeof(why));
		danests_config_free(scratch);
		if (c == O_RESOLVER)
			o->resolver = arg;
		else
			o->ca_file = arg;
		break;
	case O_CONFIG:
		o->config = arg;
		return 1;
	case O_CACHE_DIR:
		if (*arg == '\0')
			return common_usage(o, "empty cache directory", NULL),
			    -1;
		o->cache_dir = arg;
		return 1;
	case O_NO_CACHE:
		o->no_cache = true;
		return 1;
	case O_JSON:
		o->json = true;
		return 1;
	case O_TIMEOUT:
		if (!common_uint(arg, 1, TIMEOUT_MAX_S, &o->secs))
			return common_usage(o, "--timeout: expected seconds "
			    "from 1 to 300", arg), -1;
		return 1;
	default:
		return 0;
	}
	if (st != DANESTS_OK)
		return common_usage(o, why, NULL), -1;
	return 1;
}

/* common_bad_option - report what getopt_long refused; EXIT_USAGE */
int
common_bad_option(const struct common *o, int c, char **argv)
{
	char opt[3];

	if (c == ':')
		return common_usage(o, "option needs a value", argv[optind - 1]);
	/* optopt: 0 for an unknown long option, the value of a known one
	 * given "=VALUE", else the letter */
	if (optopt == 0)
		return common_usage(o, "unknown option", argv[optind - 1]);
	if (optopt >= 256 || optopt == 'h')
		return common_usage(o, "option takes no value",
		    argv[optind - 1]);
	snprintf(opt, sizeof(opt), "-%c", optopt);
	return common_usage(o, "unknown option", opt);
}

/* common_rest - see common.h */
bool
common_rest(struct common *o, int c, char **argv)
{
	switch (common_option(o, c, optarg)) {
	case 1:
		return true;
	case 0:
		common_bad_option(o, c, argv);
		return false;
	default:
		return false;
	}
}

/* common_apply - check the options together and apply the cache and the
 * timeouts; 0, EXIT_USAGE or EXIT_TEMP (message printed) */
int
common_apply(struct common *o)
{
	char why[512];
	const char *path = o->config;
	struct stat sb;
	unsigned ms;

	if (o->cache_dir != NULL && o->no_cache)
		return common_usage(o, "--cache-dir and --no-cache exclude "
		    "each other", NULL);
	if ((o->cfg = danests_config_new()) == NULL) {
		fprintf(stderr, "danests: out of memory\n");
		return EXIT_TEMP;
	}
	/* the default file is optional; a given one is not */
	if (path == NULL && (stat(DANESTS_DEFAULT_CONFIG, &sb) == 0 ||
	    errno != ENOENT))
		path = DANESTS_DEFAULT_CONFIG;
	if (path != NULL && danests_config_load(o->cfg, path, why,
	    sizeof(why)) != DANESTS_OK)
		return common_usage(o, why, NULL);
	if ((o->resolver != NULL && danests_config_set_resolver(o->cfg,
	    o->resolver, why, sizeof(why)) != DANESTS_OK) ||
	    (o->ca_file != NULL && danests_config_set_ca_file(o->cfg,
	    o->ca_file, why, sizeof(why)) != DANESTS_OK))
		return common_usage(o, why, NULL);
	if (o->no_cache)
		o->flags |= DANESTS_F_NO_CACHE;
	if ((o->no_cache || o->cache_dir != NULL) &&
	    danests_config_set_cache_dir(o->cfg, o->no_cache ? NULL :
	    o->cache_dir, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests: %s: %s\n", o->cmd, why);
		return EXIT_TEMP;
	}
	if (o->secs > 0) {
		ms = o->secs * 1000;
		danests_config_set_decision_timeout(o->cfg, ms);
		danests_config_set_dns_timeout(o->cfg, ms < DNS_TIMEOUT_MS ?
		    ms : DNS_TIMEOUT_MS);
		danests_config_set_fetch_timeout(o->cfg, ms < FETCH_TIMEOUT_MS ?
		    ms : FETCH_TIMEOUT_MS);
	}
	return 0;
}
