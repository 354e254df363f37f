/*
 * cmd_report_send.c - "danests report send": send the TLS reports that are
 * due (RFC 8460)
 *
 *	danests report send [--config FILE] [--cache-dir DIR] [--dry-run]
 *	    [--day YYYY-MM-DD] [--domain DOMAIN] [--now]
 *
 * For every finished UTC day with counters (never today) and every policy
 * domain of that day:
 *  - days older than report_keep_days are forgotten first;
 *  - a report already sent, given up (report_attempts failed attempts),
 *    or waiting for its next attempt is left alone;
 *  - with report_only_failures, a day without failures is not reported;
 *  - sending is spread over report_window seconds after 00:00 UTC: each
 *    domain has its own stable offset in the window (a hash of its name),
 *    so the reports of a whole provider do not all leave at midnight;
 *  - the _smtp._tls record tells where to (RFC 8460 3); none, several or
 *    a malformed one: nothing is sent (logged), and the question is asked
 *    again a day later while the counters are kept;
 *  - the report goes to every rua: mailto: through report_sendmail as
 *    multipart/report (RFC 8460 5.3), https: as a POST (5.4);
 *  - a failed attempt is tried again with exponential backoff (30 min,
 *    doubling, at most 12 h) up to report_attempts times, then given up;
 *    a target that took the report in a failed attempt is not sent it
 *    again;
 *  - a target failing SUPPRESS_AFTER times in a row is suppressed for
 *    SUPPRESS_DAYS days (its reports are not attempted meanwhile).
 * Everything is logged on stderr, one line per event, with the reason.
 * One run at a time: a second one finds the lock taken and leaves.
 *
 * The systemd timer runs this every 15 minutes; a run with nothing due
 * is silent and cheap (one read of the cache).
 *
 * Exit status: 0 everything due was sent (or nothing was due, or
 * reporting is not configured), 64 usage or configuration error, 75 a
 * send or a lookup failed (it is retried later) or the cache is unusable.
 */
#include "danests.h"
#include "danests-report.h"
#include "cmds.h"
#include "report_mail.h"

#include <sys/file.h>
#include <sys/stat.h>

#include <curl/curl.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define EXIT_USAGE	64
#define EXIT_TEMP	75
#define WHY_MAX		512

#define BACKOFF_FIRST_S	1800		/* wait after a first failure */
#define BACKOFF_MAX_S	43200		/* longest wait between attempts */
#define SUPPRESS_AFTER	3		/* consecutive failures of a target */
#define SUPPRESS_DAYS	7		/* ... suppress it this long */
#define RECHECK_S	86400		/* no usable record: ask again */
#define PAIRS_MAX	1000000		/* policy domains per day and run */

static const char send_help[] =
"NAME\n"
"     danests report send - send the TLS reports (RFC 8460) that are due\n"
"\n"
"SYNOPSIS\n"
"     danests report send [--config FILE] [--cache-dir DIR] [--dry-run]\n"
"                         [--now] [--day YYYY-MM-DD] [--domain DOMAIN]\n"
"\n"
"DESCRIPTION\n"
"     Sends one report per policy domain and finished UTC day to every\n"
"     address of the domain's _smtp._tls record: mailto: through\n"
"     report_sendmail, https: as a POST.  Sending is spread over\n"
"     report_window seconds after 00:00 UTC; failed sends are retried\n"
"     with backoff up to report_attempts times; a target that keeps\n"
"     failing is suppressed for " "7 days.  Without tls_reports yes,\n"
"     report_from and report_organization nothing is sent.  With a\n"
"     shared store (store), this node's counts are written there first\n"
"     (under node_id), each report carries the counts of every node, and\n"
"     one node sends it; the store unreachable: nothing is sent (75).\n"
"\n"
"OPTIONS\n"
"     --config FILE      configuration (default /etc/danests/danests.conf)\n"
"     --cache-dir DIR    the cache (default: cache_dir of the configuration)\n"
"     --dry-run          say what would be sent, send and change nothing\n"
"     --now              ignore the spreading window and the wait before\n"
"                        a retry (the attempt cap and suppression stay)\n"
"     --day YYYY-MM-DD   only this day\n"
"     --domain DOMAIN    only this policy domain\n"
"\n"
"EXIT STATUS\n"
"     0 everything due was sent, or nothing was due or configured;\n"
"     64 usage or configuration error; 75 a send failed (retried later)\n"
"     or the cache or the shared store is unusable.\n";

struct pair {
	char day[11];
	char *domain;
	uint64_t success, failure;
};

struct run {
	const struct danests_report_config *rc;
	const char *ca_file;
	struct danests_cache *cache;
	struct danests_ctx *ctx;
	const char *submitter;
	bool dry_run, now_flag;
	struct danests_fleet *fleet;	/* a store: the fleet's counts, one
					 * sender; NULL none */
	const char *collect_day;	/* fleet_collect_cb's day */
	time_t now;
	char today[11];
	struct pair *pairs;
	size_t npairs;
	bool nomem;
	/* the report being made (report_json_cb) */
	char *json;
	unsigned long sent, failed, waiting;
};

static void say(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* say - one log line on stderr */
static void
say(const char *fmt, ...)
{
	va_list ap;

	fputs("danests: report send: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

/* day_of - "YYYY-MM-DD" of t (UTC) */
static void
day_of(time_t t, char out[11])
{
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(out, 11, "%Y-%m-%d", &tm);
}

/* day_start - the first second of a "YYYY-MM-DD" UTC day, -1 if invalid */
static time_t
day_start(const char *day)
{
	struct tm tm;
	char *end, back[11];
	time_t t;

	memset(&tm, 0, sizeof(tm));
	if (strlen(day) != 10 || (end = strptime(day, "%Y-%m-%d", &tm)) ==
	    NULL || *end != '\0')
		return -1;
	if ((t = timegm(&tm)) == (time_t)-1)
		return -1;
	day_of(t, back);
	return strcmp(back, day) == 0 ? t : -1;
}

/* domain_offset - the domain's stable place in the window (FNV-1a) */
static unsigned
domain_offset(const char *domain, unsigned window)
{
	uint32_t h = 2166136261u;

	if (window == 0)
		return 0;
	for (; *domain; domain++)
		h = (h ^ (unsigned char)*domain) * 16777619u;
	return h % window;
}

/* backoff - the wait after the n-th failed attempt (n >= 1) */
static time_t
backoff(unsigned n)
{
	time_t w = BACKOFF_FIRST_S;

	while (--n > 0 && w < BACKOFF_MAX_S)
		w *= 2;
	return w < BACKOFF_MAX_S ? w : BACKOFF_MAX_S;
}

/* collect_cb - danests_report_walk: remember each (day, domain) */
static int
collect_cb(void *arg, const struct danests_rpt_day *d)
{
	struct run *r = arg;
	struct pair *np;
	size_t i;

	if (r->npairs >= PAIRS_MAX) {
		say("%s: more than %d policy domains: the others are not "
		    "reported", d->day, PAIRS_MAX);
		return 1;
	}
	if ((np = realloc(r->pairs, (r->npairs + 1) * sizeof(*np))) == NULL) {
		r->nomem = true;
		return 1;
	}
	r->pairs = np;
	np = &r->pairs[r->npairs];
	memset(np, 0, sizeof(*np));
	memcpy(np->day, d->day, sizeof(np->day));
	np->day[10] = '\0';
	if ((np->domain = strdup(d->domain)) == NULL) {
		r->nomem = true;
		return 1;
	}
	for (i = 0; i < d->npolicies; i++) {
		np->success += d->policies[i].success;
		np->failure += d->policies[i].failure;
	}
	r->npairs++;
	return 0;
}

struct json_arg {
	struct run *r;
	const char *report_id;
};

/* report_json_cb - danests_report_walk of one (day, domain): the JSON */
static int
report_json_cb(void *arg, const struct danests_rpt_day *d)
{
	struct json_arg *j = arg;

	free(j->r->json);
	j->r->json = danests_report_json(d, j->r->rc, j->report_id);
	if (j->r->json == NULL)
		j->r->nomem = true;
	return 1;
}

/* target_usable - is uri not suppressed now?  (logs when it is) */
static bool
target_usable(struct run *r, const char *uri)
{
	struct danests_rpt_target t;
	char why[WHY_MAX];

	if (danests_report_target_get(r->cache, uri, &t, why, sizeof(why)) !=
	    DANESTS_OK)
		return true;
	if (t.suppressed_until > r->now) {
		say("%s: suppressed until %lld after %u failures in a row "
		    "(last: %s)", uri, (long long)t.suppressed_until,
		    t.failures, t.last_error);
		return false;
	}
	return true;
}

/* target_outcome - keep a target's run of failures; suppress it when the
 * run is long enough */
static void
target_outcome(struct run *r, const char *uri, bool ok, const char *err)
{
	struct danests_rpt_target t;
	char why[WHY_MAX];
	danests_status st;

	st = danests_report_target_get(r->cache, uri, &t, why, sizeof(why));
	if (st != DANESTS_OK)
		memset(&t, 0, sizeof(t));
	if (ok) {
		if (st != DANESTS_OK || (t.failures == 0 &&
		    t.suppressed_until == 0))
			return;
		memset(&t, 0, sizeof(t));
	} else {
		t.failures++;
		t.last_failure = r->now;
		strlcpy(t.last_error, err, sizeof(t.last_error));
		if (t.failures >= SUPPRESS_AFTER) {
			t.suppressed_until = r->now +
			    (time_t)SUPPRESS_DAYS * 86400;
			say("%s: %u failures in a row: suppressed for %d days",
			    uri, t.failures, SUPPRESS_DAYS);
		}
	}
	if (danests_report_target_put(r->cache, uri, &t, why, sizeof(why)) !=
	    DANESTS_OK)
		say("%s: cannot keep its state: %s", uri, why);
}

/* send_one - the report to one rua; 1 sent, 0 skipped, -1 failed */
static int
send_one(struct run *r, const struct pair *p, const char *uri,
    const char *report_id, const unsigned char *gz, size_t gzlen,
    char *err, size_t errlen)
{
	char addr[REPORT_ADDR_MAX], host[256], addrs[1024], unique[128];
	struct report_mail m;
	static unsigned seq;
	size_t mlen;
	unsigned port;
	char *msg;
	int rc;

	err[0] = '\0';
	if (strncasecmp(uri, "mailto:", 7) == 0) {
		if (report_mailto_addr(uri, addr, sizeof(addr)) != 0) {
			snprintf(err, errlen, "not a usable mailto: address");
			return -1;
		}
		if (r->dry_run)
			return 1;
		snprintf(unique, sizeof(unique), "tlsrpt.%s.%lld.%ld.%u",
		    p->day, (long long)r->now, (long)getpid(), ++seq);
		memset(&m, 0, sizeof(m));
		m.from = r->rc->from;
		m.rcpt = addr;
		m.submitter = r->submitter;
		m.domain = p->domain;
		m.organization = r->rc->organization;
		m.contact = r->rc->contact;
		m.report_id = report_id;
		m.day = p->day;
		m.begin = day_start(p->day);
		m.end = m.begin + 86399;
		m.now = r->now;
		m.unique = unique;
		m.gz = gz;
		m.gzlen = gzlen;
		if ((msg = report_mail_build(&m, &mlen, err, errlen)) == NULL)
			return -1;
		rc = report_sendmail(r->rc->sendmail, r->rc->from, addr, msg,
		    mlen, r->rc->timeout_s, err, errlen);
		free(msg);
		return rc == 0 ? 1 : -1;
	}
	if (strncasecmp(uri, "https:", 6) == 0) {
		if (report_url_host(uri, host, sizeof(host), &port) != 0) {
			snprintf(err, errlen, "not a usable https URL");
			return -1;
		}
		if (r->dry_run)
			return 1;
		if (danests_report_addrs(r->ctx, host, addrs, sizeof(addrs),
		    err, errlen) != DANESTS_OK)
			return -1;
		return report_post(uri, addrs, r->ca_file, gz, gzlen,
		    r->rc->timeout_s, err, errlen) == 0 ? 1 : -1;
	}
	snprintf(err, errlen, "unsupported URI scheme (RFC 8460 3: mailto: "
	    "and https: only)");
	return 0;
}

/* state_save - keep the (day, domain) state unless this is a dry run */
static void
state_save(struct run *r, const struct pair *p, struct danests_rpt_state *s)
{
	char why[WHY_MAX];

	if (r->dry_run)
		return;
	if (danests_report_state_put(r->cache, p->day, p->domain, s, why,
	    sizeof(why)) != DANESTS_OK)
		say("%s %s: cannot keep the sending state: %s", p->day,
		    p->domain, why);
}

/* attempt_failed - count a failed attempt, schedule the next or give up */
static void
attempt_failed(struct run *r, const struct pair *p,
    struct danests_rpt_state *s, const char *err)
{
	s->attempts++;
	strlcpy(s->last_error, err, sizeof(s->last_error));
	s->next_try = r->now + backoff(s->attempts);
	if (s->attempts >= r->rc->attempts)
		say("%s %s: giving up after %u attempts (last: %s)", p->day,
		    p->domain, s->attempts, err);
	else
		say("%s %s: attempt %u failed (%s); next in %lld s", p->day,
		    p->domain, s->attempts, err,
		    (long long)(s->next_try - r->now));
	state_save(r, p, s);
	r->failed++;
}

/* pair_send - everything for one (day, domain) */
static void
pair_send(struct run *r, const struct pair *p, time_t midnight)
{
	struct danests_tlsrpt_record rec;
	struct danests_rpt_state s;
	struct danests_rpt_day id_day;
	struct json_arg ja;
	char why[WHY_MAX], err[WHY_MAX], report_id[600], firsterr[WHY_MAX];
	unsigned char *gz = NULL;
	size_t gzlen = 0, i, ok = 0, bad = 0, tried = 0;
	unsigned off;
	danests_status st;
	int n;

	st = danests_report_state_get(r->cache, p->day, p->domain, &s, why,
	    sizeof(why));
	if (st == DANESTS_NOTFOUND)
		memset(&s, 0, sizeof(s));
	else if (st != DANESTS_OK) {
		say("%s %s: cannot read the sending state: %s", p->day,
		    p->domain, why);
		r->failed++;
		return;
	}
	if (s.sent != 0)
		return;
	if (s.attempts >= r->rc->attempts)
		return;		/* given up (logged then) */
	if (r->rc->only_failures && p->failure == 0) {
		if (r->dry_run)
			printf("%s %s: no failures, not reported "
			    "(report_only_failures)\n", p->day, p->domain);
		return;
	}
	if (!r->now_flag) {
		off = domain_offset(p->domain, r->rc->window_s);
		if (r->now < midnight + (time_t)off) {
			if (r->dry_run)
				printf("%s %s: due in %lld s (spreading "
				    "window)\n", p->day, p->domain,
				    (long long)(midnight + off - r->now));
			r->waiting++;
			return;
		}
		if (s.next_try > r->now) {
			if (r->dry_run)
				printf("%s %s: next attempt in %lld s\n",
				    p->day, p->domain,
				    (long long)(s.next_try - r->now));
			r->waiting++;
			return;
		}
	}

	/* where to (RFC 8460 3) */
	st = danests_tlsrpt_lookup(r->ctx, p->domain, &rec, why, sizeof(why));
	if (st == DANESTS_TEMP) {
		attempt_failed(r, p, &s, why);
		return;
	}
	if (st != DANESTS_OK) {
		/* nothing to send to; asked again later, counters kept
		 * until report_keep_days */
		if (r->dry_run)
			printf("%s %s: nothing to send: %s\n", p->day,
			    p->domain, why);
		else
			say("%s %s: nothing sent: %s", p->day, p->domain,
			    why);
		strlcpy(s.last_error, why, sizeof(s.last_error));
		s.next_try = r->now + RECHECK_S;
		state_save(r, p, &s);
		return;
	}

	/* the report: the same id for every attempt, so that a receiver
	 * can tell a repeat, and the same as `danests report show --json` */
	memset(&id_day, 0, sizeof(id_day));
	memcpy(id_day.day, p->day, sizeof(id_day.day));
	id_day.domain = p->domain;
	if (danests_report_id(&id_day, r->rc, report_id, sizeof(report_id)) !=
	    DANESTS_OK) {
		say("%s %s: report id too long", p->day, p->domain);
		return;
	}
	ja.r = r;
	ja.report_id = report_id;
	why[0] = '\0';
	if ((r->fleet ? danests_report_fleet_walk(r->fleet, p->day, p->domain,
	    report_json_cb, &ja, why, sizeof(why)) :
	    danests_report_walk(r->cache, p->day, p->domain, report_json_cb,
	    &ja, why, sizeof(why))) != DANESTS_OK || r->json == NULL) {
		attempt_failed(r, p, &s, r->nomem ? "out of memory" :
		    why[0] ? why : "the counters are gone");
		r->nomem = false;
		return;
	}
	if (report_gzip(r->json, strlen(r->json), &gz, &gzlen) != 0) {
		attempt_failed(r, p, &s, "cannot compress the report");
		goto out;
	}
	if (r->dry_run)
		printf("%s %s: report %s: %zu bytes JSON, %zu bytes gzip, "
		    "%llu successful and %llu failed sessions, to:\n", p->day,
		    p->domain, report_id, strlen(r->json), gzlen,
		    (unsigned long long)p->success,
		    (unsigned long long)p->failure);

	firsterr[0] = '\0';
	for (i = 0; i < rec.nrua; i++) {
		const char *uri = rec.rua[i];

		if (danests_report_state_took(&s, uri)) {
			/* an earlier attempt reached it; same report id */
			if (r->dry_run)
				printf("  %s (took it already)\n", uri);
			continue;
		}
		if (!target_usable(r, uri)) {
			if (r->dry_run)
				printf("  %s (suppressed)\n", uri);
			continue;
		}
		tried++;
		n = send_one(r, p, uri, report_id, gz, gzlen, err,
		    sizeof(err));
		if (r->dry_run) {
			printf("  %s%s%s\n", uri, n < 0 ? ": " : "",
			    n < 0 ? err : "");
			continue;
		}
		if (n == 0) {
			say("%s %s: %s: skipped: %s", p->day, p->domain, uri,
			    err);
			tried--;
			continue;
		}
		if (n > 0) {
			ok++;
			danests_report_state_mark(&s, uri);
			say("%s %s: sent to %s (%zu bytes gzip)", p->day,
			    p->domain, uri, gzlen);
		} else {
			bad++;
			say("%s %s: %s: %s", p->day, p->domain, uri, err);
			if (firsterr[0] == '\0')
				snprintf(firsterr, sizeof(firsterr), "%s: %s",
				    uri, err);
		}
		target_outcome(r, uri, n > 0, err);
	}
	if (r->dry_run)
		goto out;
	if (tried == 0 && s.ntook == 0) {
		attempt_failed(r, p, &s, "no usable target (all suppressed "
		    "or unsupported)");
		goto out;
	}
	if (bad > 0) {
		attempt_failed(r, p, &s, firsterr);
		goto out;
	}
	s.attempts++;
	s.sent = r->now;
	s.next_try = 0;
	s.last_error[0] = '\0';
	state_save(r, p, &s);
	r->sent++;
	if (r->fleet && danests_report_fleet_mark_sent(r->fleet, p->day,
	    p->domain, why, sizeof(why)) != DANESTS_OK)
		say("%s %s: sent, but not marked sent in the store: %s",
		    p->day, p->domain, why);
	(void)ok;
out:
	free(gz);
	free(r->json);
	r->json = NULL;
}

/* fleet_sent_here - the report of p went out from another node: kept as
 * sent in the local state too */
static void
fleet_sent_here(struct run *r, const struct pair *p)
{
	struct danests_rpt_state s;
	char why[WHY_MAX];

	say("%s %s: sent by another node of the fleet", p->day, p->domain);
	if (danests_report_state_get(r->cache, p->day, p->domain, &s, why,
	    sizeof(why)) != DANESTS_OK)
		memset(&s, 0, sizeof(s));
	s.sent = r->now;
	state_save(r, p, &s);
}

/* do_pair - one (day, domain); with a store, one node of the fleet sends
 * it: the one that takes the lock while no "sent" marker exists */
static void
do_pair(struct run *r, const struct pair *p, time_t midnight)
{
	char token[DANESTS_RPT_TOKEN_MAX], why[WHY_MAX], late[64];
	struct danests_rpt_state s;
	danests_status st;
	unsigned ms;

	if (!r->fleet || r->dry_run) {
		pair_send(r, p, midnight);
		return;
	}
	if (danests_report_state_get(r->cache, p->day, p->domain, &s, why,
	    sizeof(why)) == DANESTS_OK && s.sent != 0)
		return;		/* sent from here */
	/* long enough for every target of the report, each bounded by
	 * report_timeout, and the lookups before */
	ms = (r->rc->timeout_s * (DANESTS_RPT_RUA_MAX + 1) + 60) * 1000;
	st = danests_report_fleet_sent(r->fleet, p->day, p->domain);
	if (st == DANESTS_OK) {
		fleet_sent_here(r, p);
		return;
	}
	/* every node's counts of the whole day: wait for each node's push
	 * after the day ended, until the spreading window is over (a node
	 * that is gone must not hold the report back for ever) */
	if (st == DANESTS_NOTFOUND && !r->now_flag) {
		st = danests_report_fleet_final(r->fleet, p->day,
		    day_start(p->day) + 86400, late, sizeof(late));
		if (st == DANESTS_NOTFOUND && r->now < midnight +
		    (time_t)r->rc->window_s) {
			say("%s %s: waiting for node %s's counts of the whole "
			    "day", p->day, p->domain, late);
			r->waiting++;
			return;
		}
		if (st == DANESTS_NOTFOUND)
			say("%s %s: node %s did not push after the day ended: "
			    "reported without its last counts", p->day,
			    p->domain, late);
		else if (st == DANESTS_OK)
			st = DANESTS_NOTFOUND;
	}
	if (st == DANESTS_NOTFOUND)
		st = danests_report_fleet_lock(r->fleet, p->day, p->domain, ms,
		    token);
	if (st == DANESTS_NOTFOUND) {
		say("%s %s: being sent by another node of the fleet", p->day,
		    p->domain);
		r->waiting++;
		return;
	}
	if (st != DANESTS_OK) {
		say("%s %s: the store is unreachable: deferred", p->day,
		    p->domain);
		r->failed++;
		return;
	}
	/* a node may have sent it between the check and the lock */
	st = danests_report_fleet_sent(r->fleet, p->day, p->domain);
	if (st == DANESTS_OK)
		fleet_sent_here(r, p);
	else if (st == DANESTS_NOTFOUND)
		pair_send(r, p, midnight);
	else {
		say("%s %s: the store is unreachable: deferred", p->day,
		    p->domain);
		r->failed++;
	}
	danests_report_fleet_unlock(r->fleet, p->day, p->domain, token);
}

/* fleet_collect_cb - a domain counted by the fleet on r->collect_day:
 * its counts summed over every node (collect_cb) */
static int
fleet_collect_cb(void *arg, const char *domain)
{
	struct run *r = arg;
	char why[WHY_MAX];
	danests_status st;

	st = danests_report_fleet_walk(r->fleet, r->collect_day, domain,
	    collect_cb, r, why, sizeof(why));
	if (st == DANESTS_TEMP) {
		say("%s", why);
		r->failed++;
		return 1;
	}
	return r->nomem;
}

/* send_lock - one sender at a time per cache (a manual run beside the
 * timer's would send the same reports twice): an flock on
 * DIR/report-send.lock, readable by every user of the cache.  The fd,
 * -2 when another sender holds it, -1 on error (why set). */
static int
send_lock(const char *dir, char *why, size_t whylen)
{
	char path[4200];
	struct stat sb;
	int fd;

	if (snprintf(path, sizeof(path), "%s/report-send.lock", dir) >=
	    (int)sizeof(path)) {
		snprintf(why, whylen, "cache directory name too long");
		return -1;
	}
	if ((fd = open(path, O_RDONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW,
	    0644)) < 0) {
		snprintf(why, whylen, "%.300s: %.150s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		snprintf(why, whylen, "%.300s: not a plain file", path);
		close(fd);
		return -1;
	}
	/* whoever made it, the others can still take the lock */
	if (sb.st_uid == geteuid() && (sb.st_mode & 0444) != 0444)
		(void)fchmod(fd, 0644);
	if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
		close(fd);
		if (errno == EWOULDBLOCK)
			return -2;
		snprintf(why, whylen, "%.300s: %.150s", path, strerror(errno));
		return -1;
	}
	return fd;
}

/* cmd_report_send - argv[0] is "send" */
int
cmd_report_send(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "config", required_argument, NULL, 'c' },
		{ "cache-dir", required_argument, NULL, 'C' },
		{ "dry-run", no_argument, NULL, 'n' },
		{ "now", no_argument, NULL, 'N' },
		{ "day", required_argument, NULL, 'd' },
		{ "domain", required_argument, NULL, 'D' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	const char *config = NULL, *day = NULL, *dir, *cache_arg = NULL;
	char domain[256], cutoff[11], cache_dir[4096], why[WHY_MAX];
	char submitter[256], *ca_file = NULL;
	struct danests_config *cfg = NULL;
	struct run r;
	struct stat sb;
	bool have_domain = false;
	time_t midnight, t;
	char d[11];
	size_t i, forgotten = 0;
	int ch, rc = EXIT_USAGE, lockfd = -1;

	memset(&r, 0, sizeof(r));
	optind = 0;	/* glibc: start afresh after the caller's getopt */
	opterr = 0;
	while ((ch = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
		switch (ch) {
		case 'c':
			config = optarg;
			break;
		case 'C':
			if (*optarg == '\0') {
				say("--cache-dir: empty");
				return EXIT_USAGE;
			}
			cache_arg = optarg;
			break;
		case 'n':
			r.dry_run = true;
			break;
		case 'N':
			r.now_flag = true;
			break;
		case 'd':
			if (day_start(optarg) < 0) {
				say("--day: expected YYYY-MM-DD, got \"%s\"",
				    optarg);
				return EXIT_USAGE;
			}
			day = optarg;
			break;
		case 'D':
			if (danests_domain_normalize(optarg, domain,
			    sizeof(domain)) != DANESTS_OK) {
				say("--domain: not a domain name: \"%s\"",
				    optarg);
				return EXIT_USAGE;
			}
			have_domain = true;
			break;
		case 'h':
			fputs(send_help, stdout);
			return 0;
		default:
			say("unknown or incomplete option \"%s\"; see "
			    "'danests report send --help'", argv[optind - 1]);
			return EXIT_USAGE;
		}
	}
	if (optind != argc) {
		say("unexpected argument \"%s\"", argv[optind]);
		return EXIT_USAGE;
	}

	if ((cfg = danests_config_new()) == NULL) {
		say("out of memory");
		return EXIT_TEMP;
	}
	if (config == NULL && (stat(DANESTS_DEFAULT_CONFIG, &sb) == 0 ||
	    errno != ENOENT))
		config = DANESTS_DEFAULT_CONFIG;
	if (config != NULL && danests_config_load(cfg, config, why,
	    sizeof(why)) != DANESTS_OK) {
		say("%s", why);
		goto out;
	}
	r.rc = danests_config_report(cfg);
	if (r.rc == NULL || !r.rc->enabled) {
		/* the packaged timer runs this everywhere: quiet there */
		if (isatty(2) || r.dry_run)
			say("tls_reports is off: nothing to send");
		rc = 0;
		goto out;
	}
	if (r.rc->from == NULL || r.rc->organization == NULL) {
		say("report_from and report_organization must be set to send "
		    "reports: nothing sent");
		rc = 0;
		goto out;
	}
	if (!report_addr_ok(r.rc->from)) {
		say("report_from: not a usable address: %s", r.rc->from);
		goto out;
	}
	if (r.rc->submitter != NULL)
		snprintf(submitter, sizeof(submitter), "%s", r.rc->submitter);
	else
		snprintf(submitter, sizeof(submitter), "%s",
		    strrchr(r.rc->from, '@') + 1);
	if (!report_domain_ok(submitter)) {
		say("report_submitter: not a domain name: %s", submitter);
		goto out;
	}
	r.submitter = submitter;
	if ((dir = cache_arg) == NULL &&
	    (dir = danests_config_cache_dir(cfg)) == NULL) {
		say("cache_dir is none: no results are kept, nothing to send");
		goto out;
	}
	snprintf(cache_dir, sizeof(cache_dir), "%s", dir);
	if (danests_config_ca_file(cfg) != NULL &&
	    (ca_file = strdup(danests_config_ca_file(cfg))) == NULL) {
		say("out of memory");
		rc = EXIT_TEMP;
		goto out;
	}
	r.ca_file = ca_file;

	/* the cache is opened once, here; the context only resolves */
	if (danests_config_set_cache_dir(cfg, NULL, why, sizeof(why)) !=
	    DANESTS_OK ||
	    danests_cache_open(cache_dir, &r.cache, why, sizeof(why)) !=
	    DANESTS_OK) {
		say("cache %s: %s", cache_dir, why);
		rc = EXIT_TEMP;
		goto out;
	}
	if (!r.dry_run) {
		lockfd = send_lock(cache_dir, why, sizeof(why));
		if (lockfd == -2) {
			say("another danests report send is running: nothing "
			    "done");
			rc = 0;
			goto out;
		}
		if (lockfd < 0) {
			say("%s", why);
			rc = EXIT_TEMP;
			goto out;
		}
	}
	danests_config_set_dns_timeout(cfg, 5000);
	if (danests_ctx_new(cfg, NULL, &r.ctx, why, sizeof(why)) !=
	    DANESTS_OK) {
		say("%s", why);
		rc = EXIT_TEMP;
		goto out;
	}
	if (danests_report_fleet_open(cfg, &r.fleet, why, sizeof(why)) !=
	    DANESTS_OK) {
		say("%s", why);
		rc = EXIT_TEMP;
		goto out;
	}
	if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
		say("cannot start libcurl");
		rc = EXIT_TEMP;
		goto out;
	}
	/* a reader that went away must not kill us while we write to it */
	signal(SIGPIPE, SIG_IGN);

	r.now = time(NULL);
	day_of(r.now, r.today);
	midnight = day_start(r.today);

	/* counters older than report_keep_days go */
	day_of(midnight - (time_t)r.rc->keep_days * 86400, cutoff);
	if (!r.dry_run) {
		if (danests_report_forget(r.cache, cutoff, NULL, &forgotten,
		    why, sizeof(why)) != DANESTS_OK)
			say("cannot forget days before %s: %s", cutoff, why);
		else if (forgotten > 0)
			say("forgot %zu reports of days before %s "
			    "(report_keep_days %u)", forgotten, cutoff,
			    r.rc->keep_days);
	}

	/* a fleet: this node's counts to the store first, then the reports
	 * from the sum of every node; never one from a partial count */
	if (r.fleet != NULL && !r.dry_run && danests_report_fleet_push(
	    r.fleet, r.cache, NULL, NULL, why, sizeof(why)) != DANESTS_OK) {
		say("%s: nothing sent, deferred (the counts stay in the "
		    "cache)", why);
		rc = EXIT_TEMP;
		goto out;
	}

	if (day != NULL && strcmp(day, r.today) >= 0) {
		say("%s is not a finished UTC day: nothing sent", day);
		rc = 0;
		goto out;
	}
	/* day by day, oldest first: every finished day still kept, never
	 * today (unfinished), never a forgotten one */
	for (t = day_start(cutoff); t < midnight; t += 86400) {
		day_of(t, d);
		if (day != NULL && strcmp(day, d) != 0)
			continue;
		r.collect_day = d;
		if (r.fleet && have_domain) {
			if (fleet_collect_cb(&r, domain) != 0 && !r.nomem)
				break;
		} else if (r.fleet) {
			if (danests_report_fleet_domains(r.fleet, d,
			    fleet_collect_cb, &r, why, sizeof(why)) !=
			    DANESTS_OK) {
				say("cannot read the fleet's counters of %s: "
				    "%s", d, why);
				r.failed++;
				break;
			}
			if (r.failed)
				break;
		}
		if (r.nomem || (!r.fleet && danests_report_walk(r.cache, d,
		    have_domain ? domain : NULL, collect_cb, &r, why,
		    sizeof(why)) != DANESTS_OK)) {
			say("cannot read the counters of %s: %s", d, r.nomem ?
			    "out of memory" : why);
			r.failed++;
			break;
		}
		for (i = 0; i < r.npairs; i++) {
			if (strcmp(r.pairs[i].day, d) == 0)
				do_pair(&r, &r.pairs[i], midnight);
			free(r.pairs[i].domain);
		}
		r.npairs = 0;
	}
	if (r.dry_run)
		printf("dry run: nothing sent\n");
	else if (r.sent || r.failed)
		say("%lu sent, %lu failed, %lu waiting", r.sent, r.failed,
		    r.waiting);
	rc = r.failed ? EXIT_TEMP : 0;
out:
	for (i = 0; i < r.npairs; i++)
		free(r.pairs[i].domain);
	free(r.pairs);
	free(r.json);
	free(ca_file);
	danests_report_fleet_close(r.fleet);
	danests_ctx_free(r.ctx);
	if (r.cache != NULL)
		danests_cache_close(r.cache);
	danests_config_free(cfg);
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}
