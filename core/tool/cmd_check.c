/*
 * cmd_check.c - "danests check": decide for domains and print the decisions
 *
 *	danests check [--resolver ADDR[@PORT]] [--ca-file FILE]
 *	    [--cache-dir DIR | --no-cache] [--json] [--timeout SECONDS]
 *	    [-f FILE] [DOMAIN...]
 *
 * Every domain is decided at once on one event loop; the results are
 * printed in the order the domains were given, as text or as JSON lines
 * (danests_decision_to_json).  -f FILE ("-": standard input) adds the
 * domains of FILE, one a line, after those of the command line.  Exit status: 0 when every domain can be
 * delivered to, 75 when any must be deferred or could not be decided,
 * else 69 when any bounces; 64 for a usage error.
 */
#include "danests.h"
#include "cmds.h"
#include "common.h"

#include <errno.h>
#include <event2/event.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NAME_BUF	256	/* danests_domain_normalize output */
#define WHY_BUF		256
#define TLSA_HEX_SHOWN	16	/* hex digits of TLSA data in text output */
#define FILE_LINE_MAX	1024	/* a line of a -f file, newline included */
#define FILE_DOMAINS_MAX 100000	/* domains of one run, at most */

static const char check_help[] =
"NAME\n"
"     danests check - decide how mail to domains must be delivered\n"
"\n"
"SYNOPSIS\n"
"     danests check [--resolver ADDR[@PORT]] [--ca-file FILE]\n"
"                   [--cache-dir DIR | --no-cache] [--json]\n"
"                   [--timeout SECONDS] [--config FILE] [-f FILE]\n"
"                   [DOMAIN...]\n"
"\n"
"DESCRIPTION\n"
"     Resolves every DOMAIN at once, the way a sending MTA must: its MX\n"
"     hosts with their DNSSEC status, the TLSA records of each host\n"
"     (RFC 7672) and the MTA-STS policy of the domain (RFC 8461).  For each\n"
"     domain it prints the verdict (deliver, tempfail or permfail) and, for\n"
"     every MX host in delivery order, the policy a sender must apply:\n"
"\n"
"     dane         TLS, authenticated by the host's TLSA records\n"
"     encrypt      TLS required, unauthenticated (no usable TLSA record)\n"
"     sts-enforce  TLS, PKIX certificate valid for the MX name\n"
"     sts-testing  as sts-enforce, but deliver anyway on failure\n"
"     may          opportunistic TLS\n"
"     skip         never connect to this host\n"
"\n"
"     Results are printed in the order the domains were given.  DNSSEC\n"
"     status is taken from the AD bit of the resolver, which must validate\n"
"     and be local or on a trusted path.\n"
"\n"
"OPTIONS\n"
"     --resolver ADDR[@PORT]\n"
"             Validating resolver to ask (IPv4 or IPv6 address, port 53 by\n"
"             default).  Default: the first nameserver of /etc/resolv.conf.\n"
"\n"
"     --ca-file FILE\n"
"             CA bundle for the PKIX checks of MTA-STS (default: the system\n"
"             store).\n"
"\n"
"     --cache-dir DIR\n"
"             Policy and decision cache shared with the MTA adapters\n"
"             (default " DANESTS_CACHE_DIR ").\n"
"\n"
"     --no-cache\n"
"             Neither read nor write any cache: resolve everything afresh.\n"
"\n"
"     --json  Print one line of JSON per domain (JSON Lines) instead of\n"
"             text.  The fields are described in danests(1).\n"
"\n"
"     --config FILE\n"
"             Take the core settings (resolver, ca_file, cache_dir,\n"
"             timeouts; see danests.conf(5)) from FILE instead of\n"
"             /etc/danests/danests.conf, which is read when it exists.\n"
"             FILE may be any shipped file, danests-postfix.conf and\n"
"             danests-relay.conf too: their sections are skipped.  The\n"
"             options above override the file.\n"
"\n"
"     -f FILE, --file FILE\n"
"             Also decide the domains listed in FILE (\"-\": standard\n"
"             input), one per line after those of the command line;\n"
"             blank lines and lines starting with # are skipped.  At most\n"
"             100000 domains in all.\n"
"\n"
"     --timeout SECONDS\n"
"             Bound on the whole decision of a domain, 1 to 300 (default\n"
"             15).  A single DNS query waits at most 5 seconds.\n"
"\n"
"     --help, -h\n"
"             Show this text and exit.\n"
"\n"
"OUTPUT\n"
"     Text: per domain a line\n"
"         DOMAIN: VERDICT (REASON)  mx: SECURITY[ implicit][ via CNAME X]\n"
"     the MTA-STS policy or why there is none, then one line per MX host\n"
"     (HOST PRIO POLICY REASON) with its TLSA records indented below.\n"
"\n"
"EXIT STATUS\n"
"     0   every domain can be delivered to\n"
"     64  usage error (unknown option, malformed domain, ...)\n"
"     69  a domain fails permanently (NXDOMAIN, null MX) and none\n"
"         temporarily\n"
"     75  a domain fails temporarily, or could not be decided at all\n"
"\n"
"EXAMPLES\n"
"     danests check example.org\n"
"     danests check --json --no-cache --resolver 127.0.0.1@5353 a.test b.test\n"
"     danests check --json -f domains.txt\n";

/* One domain being decided. */
struct job {
	const char *arg;		/* as given (for -f: FILE:LINE: name) */
	char domain[NAME_BUF];		/* normalized */
	bool done;
	danests_status status;
	struct danests_decision *d;
	char why[WHY_BUF];
	size_t *outstanding;
};

/* decided - completion callback of one domain */
static void
decided(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct job *j = arg;

	if (j->done) {		/* never twice; keep the first answer */
		danests_decision_free(d);
		return;
	}
	j->done = true;
	j->status = st;
	if (st == DANESTS_OK && d != NULL)
		j->d = d;
	else {
		danests_decision_free(d);
		if (st == DANESTS_OK)
			j->status = DANESTS_TEMP;
	}
	snprintf(j->why, sizeof(j->why), "%s",
	    why && *why ? why : danests_status_name(j->status));
	(*j->outstanding)--;
}

/* orstr - s, or "-" for nothing */
static const char *
orstr(const char *s)
{
	return s != NULL && *s != '\0' ? s : "-";
}

/* print_tlsa - one TLSA record, data shortened */
static void
print_tlsa(const struct danests_tlsa *t)
{
	size_t i, n;

	printf("    tlsa %u %u %u ", t->usage, t->selector, t->mtype);
	n = t->len;
	if (n * 2 > TLSA_HEX_SHOWN)
		n = TLSA_HEX_SHOWN / 2;
	for (i = 0; i < n; i++)
		printf("%02x", t->data[i]);
	printf("%s\n", n < t->len ? "..." : "");
}

/* print_sts - the MTA-STS line(s) of a decision */
static void
print_sts(const struct danests_decision *d)
{
	const struct danests_sts *s = d->sts;
	size_t i;

	if (s == NULL) {
		if (d->sts_error != NULL)
			printf("  mta-sts: no policy (%s)\n", d->sts_error);
		return;
	}
	printf("  mta-sts: mode %s id %s max_age %u source %s, mx:",
	    danests_sts_mode_name(s->policy.mode), s->id, s->policy.max_age,
	    orstr(s->source));
	for (i = 0; i < s->policy.nmx; i++)
		printf(" %s", s->policy.mx[i]);
	if (s->policy.nmx == 0)
		printf(" -");
	printf("\n");
	if (s->error != NULL)
		printf("  mta-sts: refresh failed, policy kept (%s)\n",
		    s->error);
}

/* print_text - a decision as a header, the policy and a host table */
static void
print_text(const struct danests_decision *d)
{
	const struct danests_host *h;
	int wname = (int)strlen("HOST"), wpol = (int)strlen("POLICY");
	int wprio = (int)strlen("PRIO"), n;
	size_t i, k;
	char prio[16];

	printf("%s: %s (%s)  mx: %s%s", d->domain,
	    danests_verdict_name(d->verdict), orstr(danests_reason_name(d->reason)),
	    danests_dnssec_name(d->mx_security),
	    d->implicit_mx ? " implicit" : "");
	if (d->mx_cname != NULL)
		printf(" via CNAME %s", d->mx_cname);
	printf("%s\n", d->from_cache ? "  (cached)" : "");
	print_sts(d);
	if (d->nhosts == 0)
		return;
	for (i = 0; i < d->nhosts; i++) {
		h = &d->hosts[i];
		if ((n = (int)strlen(h->name)) > wname)
			wname = n;
		if ((n = (int)strlen(danests_policy_name(h->policy))) > wpol)
			wpol = n;
		if ((n = snprintf(prio, sizeof(prio), "%d", h->priority)) >
		    wprio)
			wprio = n;
	}
	printf("  %-*s  %*s  %-*s  %s\n", wname, "HOST", wprio, "PRIO", wpol,
	    "POLICY", "REASON");
	for (i = 0; i < d->nhosts; i++) {
		h = &d->hosts[i];
		printf("  %-*s  %*d  %-*s  %s", wname, h->name, wprio,
		    h->priority, wpol, danests_policy_name(h->policy),
		    orstr(danests_reason_name(h->reason)));
		if (h->mx_insecure)
			printf("  (mx insecure)");
		if (h->nunusable > 0)
			printf("  (%zu unusable tlsa)", h->nunusable);
		printf("\n");
		for (k = 0; k < h->ntlsa; k++)
			print_tlsa(&h->tlsa[k]);
	}
}

/* run_jobs - decide every job concurrently on one loop; 0, or -1 when
 * the context could not be made (why says so) */
static int
run_jobs(const struct danests_config *cfg, struct job *jobs, size_t n,
    unsigned flags, char *why, size_t whylen)
{
	struct event_base *base;
	struct danests_ctx *ctx;
	const char *note;
	size_t i, outstanding = 0;

	if ((base = event_base_new()) == NULL) {
		snprintf(why, whylen, "cannot create an event loop");
		return -1;
	}
	if (danests_ctx_new(cfg, base, &ctx, why, whylen) != DANESTS_OK) {
		event_base_free(base);
		return -1;
	}
	if ((note = danests_ctx_cache_note(ctx)) != NULL && *note != '\0')
		fprintf(stderr, "danests: warning: cache: %s\n", note);
	for (i = 0; i < n; i++) {
		jobs[i].outstanding = &outstanding;
		outstanding++;
		if (danests_decide_async(ctx, jobs[i].domain, flags, decided,
		    &jobs[i], jobs[i].why, sizeof(jobs[i].why)) !=
		    DANESTS_OK) {
			jobs[i].done = true;
			jobs[i].status = DANESTS_TEMP;
			outstanding--;
		}
	}
	/* EVLOOP_ONCE returns 1 when nothing is left to wait for: a
	 * request that never completes must not hang the tool */
	while (outstanding > 0)
		if (event_base_loop(base, EVLOOP_ONCE) != 0)
			break;
	danests_ctx_free(ctx);
	event_base_free(base);
	for (i = 0; i < n; i++) {
		if (!jobs[i].done) {
			jobs[i].done = true;
			jobs[i].status = DANESTS_TEMP;
			snprintf(jobs[i].why, sizeof(jobs[i].why),
			    "the decision did not complete");
		}
	}
	return 0;
}

/* report - print every job in order; returns the exit status */
static int
report(struct job *jobs, size_t n, bool json)
{
	bool temp = false, perm = false;
	char *text;
	size_t i;

	for (i = 0; i < n; i++) {
		if (jobs[i].d == NULL) {
			fprintf(stderr, "danests: %s: cannot decide: %s\n",
			    jobs[i].arg, jobs[i].why);
			temp = true;
			continue;
		}
		if (jobs[i].d->verdict == DANESTS_TEMPFAIL)
			temp = true;
		else if (jobs[i].d->verdict == DANESTS_PERMFAIL)
			perm = true;
		if (json) {
			if ((text = danests_decision_to_json(jobs[i].d)) ==
			    NULL) {
				fprintf(stderr, "danests: %s: cannot render "
				    "the decision as JSON\n", jobs[i].arg);
				temp = true;
				continue;
			}
			printf("%s\n", text);
			free(text);
		} else {
			if (i > 0)
				printf("\n");
			print_text(jobs[i].d);
		}
	}
	if (fflush(stdout) != 0 || ferror(stdout)) {
		fprintf(stderr, "danests: write error: %s\n", strerror(errno));
		return EXIT_TEMP;
	}
	return temp ? EXIT_TEMP : perm ? EXIT_PERM : 0;
}

/* struct names - domains given on the command line and in -f files */
struct names {
	char **v;		/* each as given; owned when from a file */
	bool *owned;
	size_t n, cap;
};

/* names_add - append one name; false when out of memory */
static bool
names_add(struct names *l, char *name, bool owned)
{
	char **nv;
	bool *no;
	size_t cap;

	if (l->n == l->cap) {
		cap = l->cap ? l->cap * 2 : 64;
		if ((nv = reallocarray(l->v, cap, sizeof(*nv))) == NULL)
			return false;
		l->v = nv;
		if ((no = reallocarray(l->owned, cap, sizeof(*no))) == NULL)
			return false;
		l->owned = no;
		l->cap = cap;
	}
	l->v[l->n] = name;
	l->owned[l->n++] = owned;
	return true;
}

/* names_free - release the names read from files */
static void
names_free(struct names *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		if (l->owned[i])
			free(l->v[i]);
	free(l->v);
	free(l->owned);
}

/* read_names - the domains of FILE ("-": standard input), one a line,
 * blank and # lines skipped; 0, or the exit status after a message */
static int
read_names(const struct common *o, const char *file, struct names *l)
{
	FILE *fp;
	char line[FILE_LINE_MAX], where[FILE_LINE_MAX], *p, *e, *name;
	unsigned long lineno = 0;
	int rc = 0;
	size_t len;

	if (strcmp(file, "-") == 0)
		fp = stdin;
	else if ((fp = fopen(file, "r")) == NULL) {
		snprintf(where, sizeof(where), "%s (%s)", file,
		    strerror(errno));
		return common_usage(o, "cannot open domain file", where);
	}
	while (rc == 0 && fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		len = strlen(line);
		if (len == sizeof(line) - 1 && line[len - 1] != '\n' &&
		    !feof(fp)) {
			snprintf(where, sizeof(where), "%.900s:%lu", file,
			    lineno);
			rc = common_usage(o, "line too long", where);
			break;
		}
		p = line + strspn(line, " \t\r\n");
		if (*p == '\0' || *p == '#')
			continue;
		e = p + strlen(p);
		while (e > p && strchr(" \t\r\n", e[-1]) != NULL)
			*--e = '\0';
		if (l->n >= FILE_DOMAINS_MAX) {
			snprintf(where, sizeof(where), "%.900s:%lu", file,
			    lineno);
			rc = common_usage(o, "more than 100000 domains", where);
		} else if ((name = strdup(p)) == NULL ||
		    !names_add(l, name, true)) {
			free(name);
			fprintf(stderr, "danests: out of memory\n");
			rc = EXIT_TEMP;
		}
	}
	if (rc == 0 && ferror(fp)) {
		snprintf(where, sizeof(where), "%.900s (%s)", file,
		    strerror(errno));
		rc = common_usage(o, "cannot read domain file", where);
	}
	if (fp != stdin)
		fclose(fp);
	return rc;
}

/* cmd_check - the check command; argv[0] is "check" */
int
cmd_check(int argc, char **argv)
{
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "file", required_argument, NULL, 'f' },
		{ NULL, 0, NULL, 0 },
	};
	struct common o;
	struct names names = { NULL, NULL, 0, 0 };
	const char *file = NULL;
	struct job *jobs = NULL;
	char why[WHY_BUF] = "";
	size_t i, n = 0;
	int c, rc;

	if ((rc = common_init(&o, "check")) != 0)
		return rc;
	rc = EXIT_USAGE;
	opterr = 0;
	optind = 0;		/* glibc: start afresh after main's getopt */
	while ((c = getopt_long(argc, argv, ":hf:", opts, NULL)) != -1) {
		if (c == 'h') {
			fputs(check_help, stdout);
			rc = 0;
			goto out;
		}
		if (c == 'f') {
			if (file != NULL) {
				common_usage(&o, "-f given twice", NULL);
				goto out;
			}
			file = optarg;
			continue;
		}
		if (!common_rest(&o, c, argv))
			goto out;
	}
	for (i = (size_t)optind; i < (size_t)argc; i++)
		if (!names_add(&names, argv[i], false)) {
			fprintf(stderr, "danests: out of memory\n");
			rc = EXIT_TEMP;
			goto out;
		}
	if (file != NULL && (rc = read_names(&o, file, &names)) != 0)
		goto out;
	rc = EXIT_USAGE;
	if ((n = names.n) == 0) {
		common_usage(&o, "missing domain", NULL);
		goto out;
	}
	if ((jobs = calloc(n, sizeof(*jobs))) == NULL) {
		fprintf(stderr, "danests: out of memory\n");
		rc = EXIT_TEMP;
		goto out;
	}
	for (i = 0; i < n; i++) {
		jobs[i].arg = names.v[i];
		if (danests_domain_normalize(jobs[i].arg, jobs[i].domain,
		    sizeof(jobs[i].domain)) != DANESTS_OK) {
			common_usage(&o, "malformed domain", jobs[i].arg);
			goto out;
		}
	}
	if ((rc = common_apply(&o)) != 0)
		goto out;
	if (run_jobs(o.cfg, jobs, n, o.flags, why, sizeof(why)) != 0) {
		fprintf(stderr, "danests: %s\n", why);
		rc = EXIT_TEMP;
		goto out;
	}
	rc = report(jobs, n, o.json);
out:
	for (i = 0; jobs != NULL && i < n; i++)
		danests_decision_free(jobs[i].d);
	free(jobs);
	names_free(&names);
	common_free(&o);
	return rc;
}
