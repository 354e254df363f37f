/*
 * report_inject.c - test helper: record TLS reporting results (RFC 8460)
 * into a cache as an adapter would, from lines of text
 *
 *	report_inject --cache-dir DIR [--config CONF] [FILE]
 *
 * With --config naming a configuration with a store (a fleet), the
 * node's counters are pushed to the store after recording, as a node
 * does: "pushed N" (the (day, domain) pairs), or "push deferred: WHY"
 * on stderr when the store is unreachable (the counts stay in the cache;
 * exit 0 all the same).
 *
 * Reads FILE (default: standard input), one result per line:
 *
 *	DOMAIN TYPE ok|RESULT-TYPE [mx=HOST] [ip=ADDR] [helo=NAME]
 *	    [from=ADDR] [reason=TEXT] [policy=LINE1|LINE2...]
 *	    [mxhost=PATTERN1|PATTERN2...] [when=EPOCH] [count=N]
 *
 * TYPE is tlsa, sts or no-policy-found; ok records a successful session,
 * a result type (certificate-expired, validation-failure, ...) a failed
 * one.  mx= is the receiving-mx-hostname, ip= the receiving-ip, helo=
 * the receiving-mx-helo, from= the sending-mta-ip, reason= the
 * failure-reason-code ('~' stands for a space in it).  policy= gives the
 * policy string's lines separated by '|' ('~' for a space: policy=
 * version:~STSv1|mode:~enforce|mx:~mx.example|max_age:~86400); mxhost=
 * the mx-host lines, by default the value of mx=.  when= is the time
 * (default now), count= records the line N times in one transaction
 * (default 1).  Empty lines and lines starting with '#' are skipped.
 *
 * Prints "recorded N" (the sessions counted) and exits 0.  A malformed
 * line or a refused result stops it: "recorded N" for the lines before
 * (they stay counted), "line L: why" on stderr, exit 1; a result the
 * cache could not take (DANESTS_TEMP: a full disk, damage) the same with
 * exit 75, as when the cache can't be opened.
 *
 *	printf 'example.com sts ok count=3\n' |
 *	    report_inject --cache-dir /tmp/c && danests report list \
 *	    --cache-dir /tmp/c
 */
#include "danests-internal.h"
#include "danests-report.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LINE_MAX_ 8192

/* unders - '~' to ' ' and '|' to '\n' (policy lines), in place */
static void
unders(char *s, bool lines)
{
	for (; *s != '\0'; s++) {
		if (*s == '~')
			*s = ' ';
		else if (lines && *s == '|')
			*s = '\n';
	}
}

/* result_type - a result type by its name; DANESTS_RT_NONE if none */
static danests_result_type
result_type(const char *name)
{
	int i;

	for (i = 1; danests_result_type_name((danests_result_type)i) != NULL;
	    i++)
		if (strcmp(name, danests_result_type_name(
		    (danests_result_type)i)) == 0)
			return (danests_result_type)i;
	return DANESTS_RT_NONE;
}

/* inject - one line; 0, or -1 with why (*temp: the cache's fault) */
static int
inject(struct danests_cache *c, char *line, uint64_t *total, bool *temp,
    char *why, size_t whylen)
{
	danests_status st;
	struct danests_rpt_result r;
	char *tok[16], *save = NULL, *t, *v, *end;
	unsigned long long n = 1, x;
	size_t nt = 0, i;

	memset(&r, 0, sizeof(r));
	for (t = strtok_r(line, " \t", &save); t != NULL;
	    t = strtok_r(NULL, " \t", &save)) {
		if (nt == sizeof(tok) / sizeof(tok[0])) {
			why_set(why, whylen, "too many fields");
			return -1;
		}
		tok[nt++] = t;
	}
	if (nt < 3) {
		why_set(why, whylen, "expected DOMAIN TYPE ok|RESULT-TYPE");
		return -1;
	}
	r.policy_domain = tok[0];
	if (strcmp(tok[1], "tlsa") == 0)
		r.policy_type = DANESTS_RPT_TLSA;
	else if (strcmp(tok[1], "sts") == 0)
		r.policy_type = DANESTS_RPT_STS;
	else if (strcmp(tok[1], "no-policy-found") == 0)
		r.policy_type = DANESTS_RPT_NO_POLICY;
	else {
		why_set(why, whylen, "unknown type %s", tok[1]);
		return -1;
	}
	if (strcmp(tok[2], "ok") == 0)
		r.success = true;
	else if ((r.result_type = result_type(tok[2])) == DANESTS_RT_NONE) {
		why_set(why, whylen, "unknown result type %s", tok[2]);
		return -1;
	}
	for (i = 3; i < nt; i++) {
		if ((v = strchr(tok[i], '=')) == NULL) {
			why_set(why, whylen, "expected NAME=VALUE: %s", tok[i]);
			return -1;
		}
		*v++ = '\0';
		if (strcmp(tok[i], "mx") == 0)
			r.receiving_mx_hostname = v;
		else if (strcmp(tok[i], "ip") == 0)
			r.receiving_ip = v;
		else if (strcmp(tok[i], "helo") == 0)
			r.receiving_mx_helo = v;
		else if (strcmp(tok[i], "from") == 0)
			r.sending_mta_ip = v;
		else if (strcmp(tok[i], "reason") == 0) {
			unders(v, false);
			r.additional_info = v;
		} else if (strcmp(tok[i], "policy") == 0) {
			unders(v, true);
			r.policy_string = v;
		} else if (strcmp(tok[i], "mxhost") == 0) {
			unders(v, true);
			r.mx_host = v;
		} else if (strcmp(tok[i], "when") == 0 ||
		    strcmp(tok[i], "count") == 0) {
			errno = 0;
			x = strtoull(v, &end, 10);
			if (*v < '0' || *v > '9' || *end != '\0' || errno ||
			    (tok[i][0] == 'c' && (x == 0 || x > 1000000)) ||
			    x > INT64_MAX) {
				why_set(why, whylen, "bad %s=%s", tok[i], v);
				return -1;
			}
			if (tok[i][0] == 'w')
				r.when = (time_t)x;
			else
				n = x;
		} else {
			why_set(why, whylen, "unknown field %s", tok[i]);
			return -1;
		}
	}
	if (r.mx_host == NULL && r.policy_type != DANESTS_RPT_NO_POLICY)
		r.mx_host = r.receiving_mx_hostname;
	if ((st = report_record_n(c, &r, n, why, whylen)) != DANESTS_OK) {
		*temp = st == DANESTS_TEMP;
		return -1;
	}
	*total += n;
	return 0;
}

int
main(int argc, char **argv)
{
	struct danests_cache *c;
	char why[DANESTS_WHY_MAX] = "", line[LINE_MAX_], *nl;
	const char *dir = NULL, *file = NULL, *conf = NULL;
	struct danests_config *cfg = NULL;
	struct danests_fleet *fl = NULL;
	size_t pushed = 0;
	uint64_t total = 0;
	bool temp = false;
	unsigned long lineno = 0;
	FILE *in = stdin;
	int i;

	for (i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--cache-dir") == 0 && i + 1 < argc)
			dir = argv[++i];
		else if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			conf = argv[++i];
		else if (argv[i][0] != '-' && file == NULL)
			file = argv[i];
		else {
			fprintf(stderr, "usage: report_inject --cache-dir DIR "
			    "[FILE]\n");
			return 64;
		}
	}
	if (dir == NULL) {
		fprintf(stderr, "usage: report_inject --cache-dir DIR "
		    "[FILE]\n");
		return 64;
	}
	if (file != NULL && (in = fopen(file, "r")) == NULL) {
		fprintf(stderr, "report_inject: %s: %s\n", file,
		    strerror(errno));
		return 64;
	}
	/* unbuffered: the cache forks a child to check the file, and under
	 * valgrind (libc freeres) its exit flushes this stream, seeking the
	 * shared offset back over what was read ahead */
	setvbuf(in, NULL, _IONBF, 0);
	if (danests_cache_open(dir, &c, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "report_inject: %s\n", why);
		return 75;
	}
	while (fgets(line, sizeof(line), in) != NULL) {
		lineno++;
		if ((nl = strchr(line, '\n')) != NULL)
			*nl = '\0';
		if (line[0] == '\0' || line[0] == '#')
			continue;
		if (inject(c, line, &total, &temp, why, sizeof(why)) < 0) {
			printf("recorded %llu\n", (unsigned long long)total);
			fprintf(stderr, "report_inject: line %lu: %s\n", lineno,
			    why);
			danests_cache_close(c);
			return temp ? 75 : 1;
		}
	}
	printf("recorded %llu\n", (unsigned long long)total);
	if (conf != NULL) {
		if ((cfg = danests_config_new()) == NULL ||
		    danests_config_load(cfg, conf, why, sizeof(why)) !=
		    DANESTS_OK || danests_report_fleet_open(cfg, &fl, why,
		    sizeof(why)) != DANESTS_OK) {
			fprintf(stderr, "report_inject: %s\n", why);
			danests_cache_close(c);
			danests_config_free(cfg);
			return 64;
		}
		if (danests_report_fleet_push(fl, c, NULL, &pushed, why,
		    sizeof(why)) == DANESTS_OK)
			printf("pushed %zu\n", pushed);
		else
			fprintf(stderr, "report_inject: push deferred: %s\n",
			    why);
		danests_report_fleet_close(fl);
		danests_config_free(cfg);
	}
	danests_cache_close(c);
	return 0;
}
