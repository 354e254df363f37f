/*
 * common.c - options shared by the commands that decide (check, probe)
 *
 * Order of precedence: built-in defaults, then --config FILE, then the
 * options given after it; --cache-dir and --no-cache apply last.
 */
#include "common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* common_init - defaults; returns 0, or EXIT_TEMP when out of memory */
int
common_init(struct common *o, const char *cmd)
{
	char why[256];

	memset(o, 0, sizeof(*o));
	o->cmd = cmd;
	if ((o->cfg = danests_config_new()) == NULL ||
	    danests_config_set_cache_dir(o->cfg, DANESTS_CACHE_DIR, why,
	    sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests: out of memory\n");
		return EXIT_TEMP;
	}
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
	unsigned long n;
	char *end;

	if (*s < '0' || *s > '9')
		return false;
	errno = 0;
	n = strtoul(s, &end, 10);
	if (*end != '\0' || errno != 0 || n < lo || n > hi)
		return false;
	*out = (unsigned)n;
	return true;
}

/* common_option - one shared option: 1 taken, 0 not shared, -1 error */
int
common_option(struct common *o, int c, const char *arg)
{
	char why[256];
	danests_status st;

	switch (c) {
	case O_RESOLVER:
		st = danests_config_set_resolver(o->cfg, arg, why,
		    sizeof(why));
		break;
	case O_CA_FILE:
		st = danests_config_set_ca_file(o->cfg, arg, why, sizeof(why));
		break;
	case O_CONFIG:
		/* settings of the file; options after it override */
		st = danests_config_load(o->cfg, arg, why, sizeof(why));
		break;
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

/* common_apply - check the options together and apply the cache and the
 * timeouts; 0, EXIT_USAGE or EXIT_TEMP (message printed) */
int
common_apply(struct common *o)
{
	char why[256];
	unsigned ms;

	if (o->cache_dir != NULL && o->no_cache)
		return common_usage(o, "--cache-dir and --no-cache exclude "
		    "each other", NULL);
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
