/*
 * danests.c - main of danests(1): global options and subcommand dispatch
 *
 *	danests [--version] [--help] COMMAND [ARGS]
 *
 * Each command parses its own options (cmd_*.c) and returns the exit
 * status: 0 success, 64 usage error, 69 permanent failure, 75 temporary
 * failure (sysexits(3) EX_USAGE, EX_UNAVAILABLE, EX_TEMPFAIL).
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

#define DANESTS_CACHE_DIR DANESTS_DEFAULT_CACHE_DIR

static const char usage_text[] =
"NAME\n"
"     danests - decide how mail to a domain must be delivered: DANE, MTA-STS\n"
"     or opportunistic TLS\n"
"\n"
"SYNOPSIS\n"
"     danests [--version] [--help] COMMAND [ARGS]\n"
"\n"
"DESCRIPTION\n"
"     danests resolves a destination mail domain the way a sending MTA must:\n"
"     its MX hosts and their DNSSEC status, TLSA records (RFC 7672) and the\n"
"     MTA-STS policy (RFC 8461), and says for every MX host whether it must\n"
"     be reached with DANE, with MTA-STS, opportunistically, or not at all.\n"
"\n"
"COMMANDS\n"
"     check DOMAIN... | check -f FILE\n"
"             Decide for each DOMAIN (or each line of FILE, - for standard\n"
"             input) and print the decision, as text or as JSON lines.\n"
"\n"
"     probe DOMAIN\n"
"             Connect to the MX hosts of DOMAIN as their policy asks, up to\n"
"             a verified TLS session, and show what was offered, negotiated\n"
"             and verified.  No mail is sent.\n"
"\n"
"     cache list | show DOMAIN | purge DOMAIN | refresh\n"
"             Inspect and maintain the MTA-STS policy cache shared by every\n"
"             process on the machine (default " DANESTS_CACHE_DIR ").\n"
"\n"
"     report list | show DOMAIN | send\n"
"             The TLS reporting counters (RFC 8460): per UTC day and policy\n"
"             domain, the sessions that succeeded and failed and why; show\n"
"             --json prints the report as it is sent; send sends the\n"
"             reports that are due.\n"
"\n"
"     stats [--prometheus] [--local | --node ID]\n"
"             The counters the Exim module stored in the cache (decisions,\n"
"             reasons, policy fetches, cache lookups, latency), as lines or\n"
"             in the Prometheus text format; with a shared store, the sum\n"
"             over the fleet's nodes.\n"
"\n"
"     help [COMMAND]\n"
"             Show this text, or the help of COMMAND.\n"
"\n"
"     Run 'danests COMMAND --help' for the options of a command.\n"
"\n"
"OPTIONS\n"
"     --help, -h      Show this text and exit.\n"
"     --version, -V   Print the version and exit.\n"
"\n"
"EXIT STATUS\n"
"     0   success: every domain can be delivered to\n"
"     64  usage error\n"
"     69  a domain fails permanently (bounce)\n"
"     75  a domain fails temporarily (defer), or could not be decided\n"
"\n"
"SEE ALSO\n"
"     danests(1)\n";

/* usage_error - one line on stderr with a hint; returns EX_USAGE */
static int
usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "danests: %s%s%s (see 'danests --help')\n", what,
	    arg ? ": " : "", arg ? arg : "");
	return EXIT_USAGE;
}

/* cache_dir_default - cache_dir of /etc/danests/danests.conf when that
 * file exists, else the built-in default; NULL for "none".  Exits 64 when
 * the file has an error. */
static const char *
cache_dir_default(void)
{
	static char dir[4096];
	struct danests_config *c;
	struct stat sb;
	char why[1024];
	const char *d = DANESTS_CACHE_DIR;

	if (stat(DANESTS_DEFAULT_CONFIG, &sb) != 0 && errno == ENOENT)
		return d;
	if ((c = danests_config_new()) == NULL)
		return d;
	if (danests_config_load(c, DANESTS_DEFAULT_CONFIG, why, sizeof(why)) !=
	    DANESTS_OK) {
		fprintf(stderr, "danests: cache: %s\n", why);
		exit(EXIT_USAGE);
	}
	d = danests_config_cache_dir(c);
	if (d != NULL)
		snprintf(dir, sizeof(dir), "%s", d);
	danests_config_free(c);
	return d != NULL ? dir : NULL;
}

/* run - dispatch one command; argv[0] is its name */
static int
run(int argc, char **argv)
{
	if (strcmp(argv[0], "check") == 0)
		return cmd_check(argc, argv);
	if (strcmp(argv[0], "probe") == 0)
		return cmd_probe(argc, argv);
	if (strcmp(argv[0], "cache") == 0)
		return cmd_cache(argc, argv, cache_dir_default());
	if (strcmp(argv[0], "report") == 0)
		return cmd_report(argc, argv);
	if (strcmp(argv[0], "stats") == 0)
		return cmd_stats(argc, argv, cache_dir_default());
	return usage_error("unknown command", argv[0]);
}

/* help - "danests help [COMMAND]" */
static int
help(int argc, char **argv)
{
	char *hargv[3];

	if (argc < 2) {
		fputs(usage_text, stdout);
		return 0;
	}
	if (argc > 2)
		return usage_error("help takes one command", NULL);
	hargv[0] = argv[1];
	hargv[1] = (char *)"--help";
	hargv[2] = NULL;
	return run(2, hargv);
}

/* tool_log - the library's notes (the shared store's outages) */
static void
tool_log(int prio, const char *line)
{
	(void)prio;
	fprintf(stderr, "danests: %s\n", line);
}

int
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ NULL, 0, NULL, 0 },
	};
	char opt[3];
	int c;

	danests_set_log(tool_log);
	opterr = 0;
	/* '+': stop at the command; its options are its own */
	while ((c = getopt_long(argc, argv, "+hV", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(usage_text, stdout);
			return 0;
		case 'V':
			printf("danests %s\n", DANESTS_VERSION);
			return 0;
		default:
			/* optopt: 0 for an unknown long option, the value
			 * of a known one given "=VALUE", else the letter */
			if (optopt == 0)
				return usage_error("unknown option",
				    argv[optind - 1]);
			if (optopt == 'h' || optopt == 'V')
				return usage_error("option takes no value",
				    argv[optind - 1]);
			snprintf(opt, sizeof(opt), "-%c", optopt);
			return usage_error("unknown option", opt);
		}
	}
	argc -= optind;
	argv += optind;
	if (argc == 0)
		return usage_error("missing command", NULL);
	if (strcmp(argv[0], "help") == 0)
		return help(argc, argv);
	return run(argc, argv);
}
