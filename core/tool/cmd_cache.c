/*
 * cmd_cache.c - "danests cache": inspect and maintain the shared cache
 *
 *	danests cache [--cache-dir DIR] list [--json]
 *	danests cache [--cache-dir DIR] show DOMAIN [--json]
 *	danests cache [--cache-dir DIR] purge DOMAIN [--config FILE]
 *	danests cache [--cache-dir DIR] refresh ...
 *
 * Exit status: 0 success, 1 no entry (show, purge), 64 usage error, 75 the
 * cache can't be used (sysexits(3) EX_TEMPFAIL).  Errors are one line on
 * stderr.  "refresh" belongs to the decision engine (cmd_cache_refresh);
 * a build without it says so.
 */
#include "danests.h"
#include "cmds.h"

#include <jansson.h>
#include <sys/stat.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EXIT_NOTFOUND	1
#define EXIT_USAGE	64
#define EXIT_TEMPFAIL	75
#define WHY_MAX		256
#define DOMAIN_MAX	256	/* danests_domain_normalize's output */

/* Resolved at link time: NULL until the refresh command is linked in. */
#pragma weak cmd_cache_refresh

static const char cache_usage[] =
"usage: danests cache [--cache-dir DIR] list [--json]\n"
"       danests cache [--cache-dir DIR] show DOMAIN [--json]\n"
"       danests cache [--cache-dir DIR] purge DOMAIN [--config FILE]\n"
"       danests cache [--cache-dir DIR] refresh [OPTIONS]\n"
"\n"
"  list     every cached MTA-STS policy and decision\n"
"  show     the cached policy and decision of DOMAIN\n"
"  purge    delete the cached policy and decision of DOMAIN; with a shared\n"
"           store (store in FILE, default " DANESTS_DEFAULT_CONFIG "),\n"
"           the store's too (other nodes keep their own caches' copies)\n"
"  refresh  re-fetch policies that are due (see 'danests cache refresh -h')\n"
"\n"
"Exit status: 0 ok, 1 no entry (show, purge), 64 usage, 75 cache unusable.\n";

static int cache_err(int, const char *, ...)
    __attribute__((format(printf, 2, 3)));

/* cache_err - one error line on stderr; returns status */
static int
cache_err(int status, const char *fmt, ...)
{
	va_list ap;

	fputs("danests: cache: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return status;
}

/* why_err - a reason from the library (it names the cache itself) */
static int
why_err(int status, const char *why)
{
	fprintf(stderr, "danests: %s\n", why[0] ? why : "cache: failed");
	return status;
}

/* fmt_time - a time as ISO 8601 UTC, "never" for 0 */
static const char *
fmt_time(time_t t, char *buf, size_t len)
{
	struct tm tm;

	if (t == 0)
		return "never";
	if (gmtime_r(&t, &tm) == NULL ||
	    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm) == 0)
		snprintf(buf, len, "%lld", (long long)t);
	return buf;
}

/* sts_to_json - a policy entry as a JSON object */
static json_t *
sts_to_json(const char *domain, const struct danests_cache_policy *e, time_t now)
{
	json_t *o, *mx;
	size_t i;

	if ((mx = json_array()) == NULL)
		return NULL;
	for (i = 0; i < e->policy.nmx; i++)
		json_array_append_new(mx, json_string(e->policy.mx[i]));
	o = json_pack("{s:s, s:s, s:s, s:I, s:o, s:I, s:I, s:I, s:b, s:s?}",
	    "domain", domain,
	    "mode", danests_sts_mode_name(e->policy.mode),
	    "id", e->id,
	    "max_age", (json_int_t)e->policy.max_age,
	    "mx", mx,
	    "fetched", (json_int_t)e->fetched,
	    "expires", (json_int_t)e->expires,
	    "last_check", (json_int_t)e->last_check,
	    "expired", e->expires <= now,
	    "last_error", e->last_error[0] ? e->last_error : NULL);
	return o;
}

/* print_json - print and release a JSON value, one line */
static int
print_json(json_t *o)
{
	char *s;

	if (o == NULL || (s = json_dumps(o, JSON_COMPACT)) == NULL) {
		json_decref(o);
		return cache_err(EXIT_TEMPFAIL, "out of memory");
	}
	puts(s);
	free(s);
	json_decref(o);
	return 0;
}

struct list_arg {
	time_t now;
	json_t *arr;		/* --json: collected here */
	size_t n;
};

/* list_sts - one line per policy */
static int
list_sts(void *varg, const char *domain, const struct danests_cache_policy *e)
{
	struct list_arg *a = varg;
	char t[32];

	a->n++;
	if (a->arr != NULL) {
		json_array_append_new(a->arr, sts_to_json(domain, e, a->now));
		return 0;
	}
	printf("sts       %-32s %-7s id=%s expires=%s%s%s%s\n", domain,
	    danests_sts_mode_name(e->policy.mode), e->id,
	    fmt_time(e->expires, t, sizeof(t)),
	    e->expires <= a->now ? " (expired)" : "",
	    e->last_error[0] ? " last-error=" : "", e->last_error);
	return 0;
}

/* list_decision - one line per decision */
static int
list_decision(void *varg, const char *domain, const char *json,
    time_t expires)
{
	struct list_arg *a = varg;
	char t[32];

	a->n++;
	if (a->arr != NULL) {
		json_array_append_new(a->arr, json_pack("{s:s, s:I, s:b}",
		    "domain", domain, "expires", (json_int_t)expires,
		    "expired", expires <= a->now));
		return 0;
	}
	printf("decision  %-32s expires=%s%s\n", domain,
	    fmt_time(expires, t, sizeof(t)),
	    expires <= a->now ? " (expired)" : "");
	return 0;
}

/* cache_list - "cache list" */
static int
cache_list(struct danests_cache *c, bool json)
{
	struct list_arg sa, da;
	char why1[WHY_MAX] = "", why2[WHY_MAX] = "";
	danests_status s1, s2;
	json_t *o;
	int rc = 0;

	memset(&sa, 0, sizeof(sa));
	sa.now = time(NULL);
	da = sa;
	if (json) {
		sa.arr = json_array();
		da.arr = json_array();
	}
	s1 = danests_cache_policies(c, list_sts, &sa, why1, sizeof(why1));
	s2 = danests_cache_decisions(c, list_decision, &da, why2,
	    sizeof(why2));
	if (json) {
		o = json_pack("{s:o, s:o, s:o}", "sts", sa.arr,
		    "decisions", da.arr, "rebuilt_at",
		    danests_cache_rebuilt_at(c) != 0 ?
		    json_integer(danests_cache_rebuilt_at(c)) : json_null());
		if ((rc = print_json(o)) != 0)
			return rc;
	} else if (sa.n == 0 && da.n == 0 && s1 == DANESTS_OK &&
	    s2 == DANESTS_OK)
		printf("cache is empty\n");
	if (s1 != DANESTS_OK)
		rc = why_err(EXIT_TEMPFAIL, why1);
	if (s2 != DANESTS_OK)
		rc = why_err(EXIT_TEMPFAIL, why2);
	return rc;
}

/* show_decision_text - a human summary of a decision's JSON */
static void
show_decision_text(const char *json)
{
	struct danests_decision *d;
	char t[32];
	size_t i;

	if (danests_decision_from_json(json, &d) != DANESTS_OK) {
		printf("decision:    (unreadable) %s\n", json);
		return;
	}
	printf("decision:    %s (%s), expires %s\n",
	    danests_verdict_name(d->verdict), danests_reason_name(d->reason) ?
	    danests_reason_name(d->reason) : "-",
	    fmt_time(d->expires, t, sizeof(t)));
	for (i = 0; i < d->nhosts; i++)
		printf("  host:      %s %s (%s)\n", d->hosts[i].name,
		    danests_policy_name(d->hosts[i].policy),
		    danests_reason_name(d->hosts[i].reason) ?
		    danests_reason_name(d->hosts[i].reason) : "-");
	danests_decision_free(d);
}

/* cache_show - "cache show DOMAIN" */
static int
cache_show(struct danests_cache *c, const char *domain, bool json)
{
	struct danests_cache_policy e;
	char why[WHY_MAX] = "", t[32];
	char *dj = NULL;
	danests_status ss, ds;
	json_t *o, *jd;
	time_t now = time(NULL);
	size_t i;

	ss = danests_cache_policy_get(c, domain, &e, why, sizeof(why));
	if (ss == DANESTS_TEMP || ss == DANESTS_PERM)
		return why_err(EXIT_TEMPFAIL, why);
	ds = danests_cache_decision_get(c, domain, &dj, why, sizeof(why));
	if (ds == DANESTS_TEMP || ds == DANESTS_PERM) {
		if (ss == DANESTS_OK)
			danests_cache_policy_clear(&e);
		return why_err(EXIT_TEMPFAIL, why);
	}
	if (ss == DANESTS_NOTFOUND && ds == DANESTS_NOTFOUND)
		return cache_err(EXIT_NOTFOUND, "no entry for %s", domain);

	if (json) {
		jd = json_null();
		if (dj != NULL && (jd = json_loads(dj, 0, NULL)) == NULL)
			jd = json_string(dj);
		o = json_pack("{s:s, s:o, s:o}", "domain", domain,
		    "sts", ss == DANESTS_OK ? sts_to_json(domain, &e, now) :
		    json_null(), "decision", jd);
		if (ss == DANESTS_OK)
			danests_cache_policy_clear(&e);
		free(dj);
		return print_json(o);
	}

	printf("domain:      %s\n", domain);
	if (ss == DANESTS_OK) {
		printf("sts:         %s, id %s, max_age %u\n",
		    danests_sts_mode_name(e.policy.mode), e.id,
		    (unsigned)e.policy.max_age);
		for (i = 0; i < e.policy.nmx; i++)
			printf("  mx:        %s\n", e.policy.mx[i]);
		printf("  fetched:   %s\n", fmt_time(e.fetched, t, sizeof(t)));
		printf("  expires:   %s%s\n", fmt_time(e.expires, t, sizeof(t)),
		    e.expires <= now ? " (expired)" : "");
		printf("  checked:   %s\n",
		    fmt_time(e.last_check, t, sizeof(t)));
		if (e.last_error[0])
			printf("  error:     %s\n", e.last_error);
		danests_cache_policy_clear(&e);
	} else
		printf("sts:         none cached\n");
	if (dj != NULL)
		show_decision_text(dj);
	else
		printf("decision:    none cached\n");
	free(dj);
	return 0;
}

/* cache_purge - "cache purge DOMAIN": drop its policy and decision;
 * running programs drop what they keep in memory; with a shared store
 * (`store` in conf, when conf is not NULL) the fleet's copies too */
static int
cache_purge(struct danests_cache *c, const char *domain, const char *conf)
{
	char why[WHY_MAX] = "";
	struct danests_config *cfg;
	bool policy, decision, spolicy = false, sdecision = false;
	danests_status st;

	if (danests_cache_purge(c, domain, &policy, &decision, why,
	    sizeof(why)) != DANESTS_OK)
		return why_err(EXIT_TEMPFAIL, why);
	if (conf != NULL) {
		if ((cfg = danests_config_new()) == NULL)
			return cache_err(EXIT_TEMPFAIL, "out of memory");
		st = danests_config_load(cfg, conf, why, sizeof(why));
		if (st == DANESTS_OK)
			st = danests_store_purge(cfg, domain, &spolicy,
			    &sdecision, why, sizeof(why));
		danests_config_free(cfg);
		if (st != DANESTS_OK) {
			if (policy || decision)
				printf("purged %s:%s%s\n", domain,
				    policy ? " policy" : "",
				    decision ? " decision" : "");
			return why_err(st == DANESTS_PERM ? EXIT_USAGE :
			    EXIT_TEMPFAIL, why);
		}
	}
	if (!policy && !decision && !spolicy && !sdecision)
		return cache_err(EXIT_NOTFOUND, "no entry for %s", domain);
	printf("purged %s:%s%s%s%s%s\n", domain, policy ? " policy" : "",
	    decision ? " decision" : "", spolicy || sdecision ?
	    "; shared store:" : "", spolicy ? " policy" : "",
	    sdecision ? " decision" : "");
	return 0;
}

/* cmd_cache - "danests cache ..."; argv[0] is "cache" */
int
cmd_cache(int argc, char **argv, const char *cache_dir)
{
	char why[WHY_MAX] = "", domain[DOMAIN_MAX];
	const char *dir = cache_dir, *sub = NULL, *arg = NULL, *conf = NULL;
	struct stat sb;
	struct danests_cache *c;
	bool json = false;
	int i, rc;

	/* options before the subcommand */
	for (i = 1; i < argc && argv[i][0] == '-'; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(cache_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--cache-dir") == 0 &&
		    i + 1 < argc)
			dir = argv[++i];
		else if (strncmp(argv[i], "--cache-dir=", 12) == 0)
			dir = argv[i] + 12;
		else
			return cache_err(EXIT_USAGE, "unknown option %s "
			    "(see 'danests cache --help')", argv[i]);
	}
	if (i >= argc)
		return cache_err(EXIT_USAGE, "missing subcommand "
		    "(see 'danests cache --help')");
	sub = argv[i];

	/* ---- refresh: implemented with the decision engine ---- */
	if (strcmp(sub, "refresh") == 0) {
		if (cmd_cache_refresh == NULL)
			return cache_err(EXIT_USAGE, "refresh is not "
			    "available in this build");
		return cmd_cache_refresh(argc - i, argv + i, dir);
	}
	/* ---- end of refresh ---- */

	if (strcmp(sub, "list") != 0 && strcmp(sub, "show") != 0 &&
	    strcmp(sub, "purge") != 0)
		return cache_err(EXIT_USAGE, "unknown subcommand %s "
		    "(see 'danests cache --help')", sub);
	for (i++; i < argc; i++) {
		if (strcmp(argv[i], "-h") == 0 ||
		    strcmp(argv[i], "--help") == 0) {
			fputs(cache_usage, stdout);
			return 0;
		} else if (strcmp(argv[i], "--json") == 0 ||
		    strcmp(argv[i], "-j") == 0) {
			if (strcmp(sub, "purge") == 0)
				return cache_err(EXIT_USAGE, "purge takes no "
				    "--json");
			json = true;
		} else if (strcmp(argv[i], "--config") == 0 &&
		    strcmp(sub, "purge") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (argv[i][0] == '-')
			return cache_err(EXIT_USAGE, "unknown option %s",
			    argv[i]);
		else if (arg == NULL)
			arg = argv[i];
		else
			return cache_err(EXIT_USAGE, "unexpected argument "
			    "%s", argv[i]);
	}
	if (strcmp(sub, "list") == 0 && arg != NULL)
		return cache_err(EXIT_USAGE, "list takes no argument");
	if (strcmp(sub, "list") != 0) {
		if (arg == NULL)
			return cache_err(EXIT_USAGE, "%s needs a DOMAIN",
			    sub);
		if (danests_domain_normalize(arg, domain, sizeof(domain)) !=
		    DANESTS_OK)
			return cache_err(EXIT_USAGE, "invalid domain %s",
			    arg);
	}

	if (dir == NULL || *dir == '\0')
		return cache_err(EXIT_USAGE, "no cache directory");
	if (danests_cache_open(dir, &c, why, sizeof(why)) != DANESTS_OK)
		return why_err(EXIT_TEMPFAIL, why);
	if (why[0] != '\0')
		why_err(0, why);	/* rebuilt just now */
	else if (danests_cache_rebuilt_at(c) != 0 && !json) {
		char t[32];

		cache_err(0, "warning: the cache was rebuilt at %s; policies "
		    "cached before then were lost",
		    fmt_time(danests_cache_rebuilt_at(c), t, sizeof(t)));
	}
	if (strcmp(sub, "list") == 0)
		rc = cache_list(c, json);
	else if (strcmp(sub, "show") == 0)
		rc = cache_show(c, domain, json);
	else {
		/* the shared store named where the programs read it */
		if (conf == NULL && stat(DANESTS_DEFAULT_CONFIG, &sb) == 0)
			conf = DANESTS_DEFAULT_CONFIG;
		rc = cache_purge(c, domain, conf);
	}
	danests_cache_close(c);
	return rc;
}
