/*
 * cmd_report.c - "danests report": the TLS reporting counters (RFC 8460)
 *
 *	danests report list [--day YYYY-MM-DD] [--json] [OPTIONS]
 *	danests report show DOMAIN [--day YYYY-MM-DD] [--json] [OPTIONS]
 *
 * OPTIONS: --config FILE (default /etc/danests/danests.conf when it
 * exists), --cache-dir DIR (default: cache_dir of that file).  show
 * --json prints the report as it is sent (RFC 8460 4.4), one line per
 * day.
 *
 * Exit status: 0 success, 1 nothing counted (show), 64 usage error, 75 the
 * cache can't be used (sysexits(3) EX_TEMPFAIL).
 */
#include "danests.h"
#include "danests-report.h"
#include "cmds.h"

#include <sys/stat.h>

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_NOTFOUND	1
#define EXIT_USAGE	64
#define EXIT_TEMPFAIL	75
#define WHY_MAX		512
#define DOMAIN_MAX	256

enum { O_DAY = 256, O_JSON, O_CONFIG, O_CACHE_DIR };

static const char report_usage[] =
"usage: danests report list [--day YYYY-MM-DD] [--json] [OPTIONS]\n"
"       danests report show DOMAIN [--day YYYY-MM-DD] [--json] [OPTIONS]\n"
"       danests report send [--dry-run] [--now] [--day YYYY-MM-DD]\n"
"                           [--domain DOMAIN] [OPTIONS]\n"
"\n"
"  list     one line per UTC day and policy domain counted: sessions\n"
"           successful and failed, the policy types, the sending state\n"
"  show     the counters of DOMAIN per day, policy and failure detail;\n"
"           with --json the RFC 8460 report as it would be sent, one\n"
"           line per day\n"
"  send     send the reports that are due (see 'danests report send -h')\n"
"\n"
"Options:\n"
"  --day YYYY-MM-DD   only that UTC day\n"
"  --json             JSON instead of text\n"
"  --config FILE      configuration file (default " DANESTS_DEFAULT_CONFIG
" when it exists)\n"
"  --cache-dir DIR    the cache (default: cache_dir of the configuration,\n"
"                     else " DANESTS_DEFAULT_CACHE_DIR ")\n"
"  -h, --help         this text\n"
"\n"
"Exit status: 0 ok, 1 nothing counted (show), 64 usage, 75 cache unusable.\n";

static int report_err(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* report_err - one error line on stderr; returns status */
static int
report_err(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("danests: report: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

/* fmt_time - ISO 8601 UTC */
static const char *
fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

/* What a command works with. */
struct rpt {
	struct danests_config *cfg;
	struct danests_cache *cache;
	const struct danests_report_config *rc;
	bool json;
	json_t *arr;		/* list --json */
	size_t n;		/* (day, domain) pairs seen */
	int rc_exit;
};

/* types_of - the policy types of a day, "sts,tlsa" */
static void
types_of(const struct danests_rpt_day *d, char *buf, size_t len)
{
	const char *t;
	size_t i, j;

	buf[0] = '\0';
	for (i = 0; i < d->npolicies; i++) {
		t = danests_rpt_policy_type_name(d->policies[i].policy_type);
		for (j = 0; j < i; j++)
			if (d->policies[j].policy_type ==
			    d->policies[i].policy_type)
				break;
		if (j < i || t == NULL)
			continue;
		if (buf[0] != '\0')
			strlcat(buf, ",", len);
		strlcat(buf, t, len);
	}
}

/* totals - sessions of a day */
static void
totals(const struct danests_rpt_day *d, uint64_t *ok, uint64_t *failed)
{
	size_t i;

	*ok = *failed = 0;
	for (i = 0; i < d->npolicies; i++) {
		*ok += d->policies[i].success;
		*failed += d->policies[i].failure;
	}
}

/* state_text - the sending state of a (day, domain), for humans */
static const char *
state_text(struct rpt *r, const struct danests_rpt_day *d,
    struct danests_rpt_state *st, danests_status *s, char *buf, size_t len)
{
	char why[WHY_MAX], t[32];

	*s = danests_report_state_get(r->cache, d->day, d->domain, st, why,
	    sizeof(why));
	if (*s == DANESTS_NOTFOUND)
		return "not sent";
	if (*s != DANESTS_OK) {
		snprintf(buf, len, "state unreadable (%s)", why);
		return buf;
	}
	if (st->sent != 0)
		snprintf(buf, len, "sent %s", fmt_time(st->sent, t,
		    sizeof(t)));
	else
		snprintf(buf, len, "not sent, %u attempt%s%s%s", st->attempts,
		    st->attempts == 1 ? "" : "s", st->last_error[0] ?
		    ", last error: " : "", st->last_error);
	return buf;
}

/* list_one - one line per (day, domain) */
static int
list_one(void *arg, const struct danests_rpt_day *d)
{
	struct rpt *r = arg;
	struct danests_rpt_state st;
	danests_status s;
	char types[64], sbuf[WHY_MAX + 64];
	const char *stext;
	uint64_t ok, failed;
	json_t *o;

	r->n++;
	totals(d, &ok, &failed);
	types_of(d, types, sizeof(types));
	stext = state_text(r, d, &st, &s, sbuf, sizeof(sbuf));
	if (r->json) {
		o = json_pack("{s:s, s:s, s:I, s:I, s:s, s:i, s:o, s:i}",
		    "day", d->day, "domain", d->domain,
		    "successful", (json_int_t)ok, "failed", (json_int_t)failed,
		    "policies", types, "npolicies", (int)d->npolicies,
		    "sent", s == DANESTS_OK && st.sent != 0 ?
		    json_integer((json_int_t)st.sent) : json_null(),
		    "attempts", s == DANESTS_OK ? (int)st.attempts : 0);
		if (o == NULL || json_array_append_new(r->arr, o) != 0)
			r->rc_exit = report_err(EXIT_TEMPFAIL, "out of memory");
		return r->rc_exit != 0;
	}
	printf("%s  %-32s ok %-8llu failed %-8llu policies %-20s %s\n",
	    d->day, d->domain, (unsigned long long)ok,
	    (unsigned long long)failed, types, stext);
	return 0;
}

/* print_lines - "a\nb" as indented lines under a label */
static void
print_lines(const char *label, const char *s)
{
	const char *nl;

	if (s == NULL || *s == '\0')
		return;
	printf("  %-10s ", label);
	for (;;) {
		nl = strchr(s, '\n');
		printf("%.*s\n", nl ? (int)(nl - s) : (int)strlen(s), s);
		if (nl == NULL)
			return;
		s = nl + 1;
		printf("  %-10s ", "");
	}
}

/* show_one - one day of a domain, as text or as its report */
static int
show_one(void *arg, const struct danests_rpt_day *d)
{
	struct rpt *r = arg;
	struct danests_rpt_state st;
	danests_status s;
	char id[600], sbuf[WHY_MAX + 64], *json;
	uint64_t ok, failed, dsum;
	size_t i, j;

	r->n++;
	if (r->json) {
		if (danests_report_id(d, r->rc, id, sizeof(id)) != DANESTS_OK ||
		    (json = danests_report_json(d, r->rc, id)) == NULL) {
			r->rc_exit = report_err(EXIT_TEMPFAIL, "cannot make "
			    "the report of %s %s", d->day, d->domain);
			return 1;
		}
		puts(json);
		free(json);
		return 0;
	}
	totals(d, &ok, &failed);
	if (r->n > 1)
		putchar('\n');
	printf("domain:      %s\n", d->domain);
	printf("day:         %s (UTC)\n", d->day);
	printf("sessions:    %llu successful, %llu failed\n",
	    (unsigned long long)ok, (unsigned long long)failed);
	printf("report:      %s\n", state_text(r, d, &st, &s, sbuf,
	    sizeof(sbuf)));
	for (i = 0; i < d->npolicies; i++) {
		const struct danests_rpt_policy *p = &d->policies[i];

		printf("policy:      %s, %llu successful, %llu failed\n",
		    danests_rpt_policy_type_name(p->policy_type),
		    (unsigned long long)p->success,
		    (unsigned long long)p->failure);
		print_lines("string:", p->policy_string);
		print_lines("mx-host:", p->mx_host);
		dsum = 0;
		for (j = 0; j < p->ndetails; j++) {
			const struct danests_rpt_detail *x = &p->details[j];

			dsum += x->count;
			printf("  failure:   %llu %s%s%s%s%s%s%s%s%s%s%s\n",
			    (unsigned long long)x->count,
			    danests_result_type_name(x->result_type),
			    x->receiving_mx_hostname[0] ? " mx=" : "",
			    x->receiving_mx_hostname,
			    x->receiving_ip[0] ? " ip=" : "", x->receiving_ip,
			    x->receiving_mx_helo[0] ? " helo=" : "",
			    x->receiving_mx_helo,
			    x->sending_mta_ip[0] ? " from=" : "",
			    x->sending_mta_ip,
			    x->additional_info[0] ? " reason=" : "",
			    x->additional_info);
		}
		if (dsum < p->failure)
			printf("  failure:   %llu beyond the cap of %d details "
			    "(counted in the summary only)\n",
			    (unsigned long long)(p->failure - dsum),
			    DANESTS_RPT_DETAILS_MAX);
	}
	return 0;
}

/* rpt_open - configuration and cache; 0 or an exit status */
static int
rpt_open(struct rpt *r, const char *config, const char *cache_dir)
{
	char why[WHY_MAX] = "";
	struct stat sb;
	const char *dir;

	if ((r->cfg = danests_config_new()) == NULL)
		return report_err(EXIT_TEMPFAIL, "out of memory");
	if (config == NULL && (stat(DANESTS_DEFAULT_CONFIG, &sb) == 0 ||
	    errno != ENOENT))
		config = DANESTS_DEFAULT_CONFIG;
	if (config != NULL && danests_config_load(r->cfg, config, why,
	    sizeof(why)) != DANESTS_OK)
		return report_err(EXIT_USAGE, "%s", why);
	r->rc = danests_config_report(r->cfg);
	dir = cache_dir != NULL ? cache_dir : danests_config_cache_dir(r->cfg);
	if (dir == NULL || *dir == '\0')
		return report_err(EXIT_USAGE, "no cache directory "
		    "(cache_dir none)");
	if (danests_cache_open(dir, &r->cache, why, sizeof(why)) !=
	    DANESTS_OK) {
		fprintf(stderr, "danests: %s\n", why);
		return EXIT_TEMPFAIL;
	}
	if (why[0] != '\0')
		fprintf(stderr, "danests: %s\n", why);	/* rebuilt */
	return 0;
}

/* cmd_report - "danests report ..."; argv[0] is "report" */
int
cmd_report(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "day", required_argument, NULL, O_DAY },
		{ "json", no_argument, NULL, O_JSON },
		{ "config", required_argument, NULL, O_CONFIG },
		{ "cache-dir", required_argument, NULL, O_CACHE_DIR },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *sub, *day = NULL, *config = NULL, *cache_dir = NULL;
	char why[WHY_MAX] = "", domain[DOMAIN_MAX], *s;
	struct rpt r;
	danests_status st;
	int c, rc;

	if (argc < 2)
		return report_err(EXIT_USAGE, "missing subcommand (see "
		    "'danests report --help')");
	sub = argv[1];
	if (strcmp(sub, "-h") == 0 || strcmp(sub, "--help") == 0) {
		fputs(report_usage, stdout);
		return 0;
	}
	if (strcmp(sub, "send") == 0)	/* options of its own */
		return cmd_report_send(argc - 1, argv + 1);
	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0)
		return report_err(EXIT_USAGE, "unknown subcommand %s (see "
		    "'danests report --help')", sub);
	memset(&r, 0, sizeof(r));
	argc--;
	argv++;
	opterr = 0;
	optind = 0;		/* glibc: start afresh after main's getopt */
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(report_usage, stdout);
			return 0;
		case O_DAY:
			day = optarg;
			break;
		case O_JSON:
			r.json = true;
			break;
		case O_CONFIG:
			config = optarg;
			break;
		case O_CACHE_DIR:
			cache_dir = optarg;
			break;
		case ':':
			return report_err(EXIT_USAGE, "option %s needs a "
			    "value", argv[optind - 1]);
		default:
			return report_err(EXIT_USAGE, "unknown option %s "
			    "(see 'danests report --help')",
			    argv[optind - 1]);
		}
	}
	if (strcmp(sub, "list") == 0 && optind != argc)
		return report_err(EXIT_USAGE, "list takes no argument");
	if (strcmp(sub, "show") == 0) {
		if (optind == argc)
			return report_err(EXIT_USAGE, "show needs a DOMAIN");
		if (optind + 1 != argc)
			return report_err(EXIT_USAGE, "unexpected argument "
			    "%s", argv[optind + 1]);
		if (danests_domain_normalize(argv[optind], domain,
		    sizeof(domain)) != DANESTS_OK)
			return report_err(EXIT_USAGE, "invalid domain %s",
			    argv[optind]);
	}
	if ((rc = rpt_open(&r, config, cache_dir)) != 0) {
		danests_config_free(r.cfg);
		return rc;
	}
	if (strcmp(sub, "list") == 0) {
		if (r.json && (r.arr = json_array()) == NULL) {
			rc = report_err(EXIT_TEMPFAIL, "out of memory");
			goto out;
		}
		st = danests_report_walk(r.cache, day, NULL, list_one, &r, why,
		    sizeof(why));
	} else
		st = danests_report_walk(r.cache, day, domain, show_one, &r,
		    why, sizeof(why));
	if (st == DANESTS_PERM) {
		rc = report_err(EXIT_USAGE, "%s", why);
		goto out;
	}
	if (r.json && r.arr != NULL && st == DANESTS_OK && r.rc_exit == 0) {
		if ((s = json_dumps(r.arr, JSON_COMPACT)) == NULL)
			r.rc_exit = report_err(EXIT_TEMPFAIL, "out of memory");
		else {
			puts(s);
			free(s);
		}
	}
	if (st != DANESTS_OK) {
		fprintf(stderr, "danests: %s\n", why[0] ? why :
		    "report: cache unreadable");
		rc = EXIT_TEMPFAIL;
	} else if (r.rc_exit != 0)
		rc = r.rc_exit;
	else if (strcmp(sub, "show") == 0 && r.n == 0)
		rc = report_err(EXIT_NOTFOUND, "nothing counted for %s%s%s",
		    domain, day ? " on " : "", day ? day : "");
	else if (strcmp(sub, "list") == 0 && r.n == 0 && !r.json)
		printf("nothing counted\n");
out:
	json_decref(r.arr);
	danests_cache_close(r.cache);
	danests_config_free(r.cfg);
	return rc;
}
