/*
 * danests-report.h - SMTP TLS Reporting (RFC 8460) in libdanests
 *
 * Results are recorded where TLS happens (the relay, the Exim module, the
 * collector of Postfix's libtlsrpt datagrams), one per TLS negotiation
 * attempt (RFC 8460 4.3), into the shared cache (danests_cache_open).
 * They are kept as counters per (UTC day, policy domain, policy), with
 * failure details and their counts, in the same LMDB environment as the
 * policies: one write transaction per result, so concurrent writers add
 * up and a process killed at any point loses at most its own uncommitted
 * result, never a counted one, and never counts one twice.
 *
 * `danests report` turns one finished UTC day into one report per policy
 * domain (RFC 8460 4.4), sends it to every rua of the domain's
 * _smtp._tls record (RFC 8460 3), and keeps what it sent and what failed.
 */
#ifndef DANESTS_REPORT_H
#define DANESTS_REPORT_H

#include "danests.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Configuration (danests.conf(5), core keys): tls_reports (yes|no,
 * default no: record nothing, send nothing), report_organization,
 * report_contact, report_from (the envelope and From: address of report
 * mail), report_submitter (TLS-Report-Submitter; default: the domain of
 * report_from), report_sendmail (default /usr/sbin/sendmail),
 * report_window (seconds after 00:00 UTC over which sending is spread,
 * default 14400), report_only_failures (yes|no, default no),
 * report_attempts (default 5), report_keep_days (counters kept, default
 * 8), report_timeout (seconds, one https POST or sendmail run, default
 * 60).
 */
struct danests_report_config {
	bool enabled;
	const char *organization;	/* NULL when unset */
	const char *contact;
	const char *from;
	const char *submitter;
	const char *sendmail;
	unsigned window_s;
	bool only_failures;
	unsigned attempts;
	unsigned keep_days;
	unsigned timeout_s;
};

/* danests_config_report - the reporting settings (owned by the config) */
const struct danests_report_config *danests_config_report(
    const struct danests_config *);

/* RFC 8460 4.4 policy types; the numbers are those of libtlsrpt's
 * datagrams (tlsa 1, sts 2, no-policy-found 9). */
typedef enum danests_rpt_policy_type {
	DANESTS_RPT_TLSA = 1,
	DANESTS_RPT_STS = 2,
	DANESTS_RPT_NO_POLICY = 9,
} danests_rpt_policy_type;

/* "tlsa", "sts", "no-policy-found"; NULL for other values */
const char *danests_rpt_policy_type_name(danests_rpt_policy_type);

/* Caps on recorded strings (longer input is refused, not truncated). */
#define DANESTS_RPT_STRING_MAX	4096	/* policy string, all lines */
#define DANESTS_RPT_FIELD_MAX	255	/* a host name, address, code */
#define DANESTS_RPT_DETAILS_MAX	1000	/* distinct failure details per
					 * policy and day; more are counted
					 * in the summary only */

/*
 * One TLS negotiation attempt.  Strings are NUL-terminated; optional ones
 * may be NULL.  policy_string and mx_host hold the RFC 8460 arrays as
 * lines joined by '\n' (the STS policy's lines; the TLSA records in
 * presentation form; the mx patterns of an STS policy, or the MX host of
 * a TLSA policy); both NULL for no-policy-found.
 */
struct danests_rpt_result {
	const char *policy_domain;	/* required: the recipient domain */
	danests_rpt_policy_type policy_type;
	const char *policy_string;
	const char *mx_host;
	time_t when;			/* 0: now */
	bool success;
	/* failures only: */
	danests_result_type result_type;	/* required on failure */
	const char *sending_mta_ip;
	const char *receiving_mx_hostname;
	const char *receiving_mx_helo;
	const char *receiving_ip;
	const char *additional_info;	/* "failure-reason-code" */
};

/* danests_report_record - count one result.  DANESTS_PERM (why says
 * what) for a malformed result; DANESTS_TEMP when the cache could not be
 * written.  Never blocks for long: a write transaction, nothing else. */
danests_status danests_report_record(struct danests_cache *,
    const struct danests_rpt_result *, char *why, size_t whylen);

/* danests_report_record_many - count n results (at most
 * DANESTS_RPT_BATCH_MAX) in one write transaction: one commit for a burst
 * (a collector's datagrams).  Malformed results are skipped and counted
 * in *nrefused (why says what about the first); the others are counted
 * all together or, DANESTS_TEMP when the cache could not be written, not
 * at all.  DANESTS_PERM when n is over the cap. */
#define DANESTS_RPT_BATCH_MAX	256
danests_status danests_report_record_many(struct danests_cache *,
    const struct danests_rpt_result *, size_t n, size_t *nrefused,
    char *why, size_t whylen);

/* danests_report_policy - fill the policy fields of *out (policy_domain,
 * policy_type, policy_string, mx_host) for a session with host of
 * decision d, the same way for every adapter: "tlsa" with the host's
 * TLSA records when its policy is dane, "sts" with the policy's lines and
 * mx patterns when an MTA-STS policy (enforce or testing) applies, else
 * "no-policy-found".  The strings are written into buf (the result points
 * into it); DANESTS_PERM when buf is too small. */
danests_status danests_report_policy(const struct danests_decision *d,
    const struct danests_host *host, struct danests_rpt_result *out,
    char *buf, size_t buflen);

/* danests_ctx_report - danests_report_record into the context's cache;
 * DANESTS_NOTFOUND when the context has no cache or reporting is off
 * (configuration key tls_reports). */
danests_status danests_ctx_report(struct danests_ctx *,
    const struct danests_rpt_result *, char *why, size_t whylen);

/* danests_ctx_report_many - danests_report_record_many into the
 * context's cache; DANESTS_NOTFOUND as danests_ctx_report. */
danests_status danests_ctx_report_many(struct danests_ctx *,
    const struct danests_rpt_result *, size_t n, size_t *nrefused,
    char *why, size_t whylen);

/* The counters of one policy on one day, as danests_report_walk passes
 * them (valid during the call only). */
struct danests_rpt_detail {
	danests_result_type result_type;
	const char *sending_mta_ip;		/* "" when not known */
	const char *receiving_mx_hostname;	/* "" when not known */
	const char *receiving_mx_helo;		/* "" when not known */
	const char *receiving_ip;		/* "" when not known */
	const char *additional_info;		/* "" when none */
	uint64_t count;
};

struct danests_rpt_policy {
	danests_rpt_policy_type policy_type;
	const char *policy_string;	/* lines joined by '\n', or "" */
	const char *mx_host;		/* lines joined by '\n', or "" */
	uint64_t success;
	uint64_t failure;
	size_t ndetails;
	const struct danests_rpt_detail *details;
};

/* Everything counted for one policy domain on one UTC day. */
struct danests_rpt_day {
	char day[11];			/* "YYYY-MM-DD", UTC */
	const char *domain;
	size_t npolicies;
	const struct danests_rpt_policy *policies;
};

/* Called per (day, domain); non-zero stops the walk. */
typedef int danests_report_fn(void *arg, const struct danests_rpt_day *);

/* danests_report_walk - every (day, domain) counted, days in order, or
 * those of one day and/or one domain (NULL: all). */
danests_status danests_report_walk(struct danests_cache *, const char *day,
    const char *domain, danests_report_fn *fn, void *arg, char *why,
    size_t whylen);

/* danests_report_forget - delete the counters of one (day, domain), or of
 * every domain of days before day when domain is NULL.  *n counts the
 * (day, domain) pairs deleted. */
danests_status danests_report_forget(struct danests_cache *, const char *day,
    const char *domain, size_t *n, char *why, size_t whylen);

/* danests_report_json - the RFC 8460 4.4 report of one (day, domain)
 * as JSON text (malloc'ed, the caller frees; NULL when out of memory):
 * organization-name and contact-info from rc, date-range the whole UTC
 * day, report_id as given, one entry of "policies" per policy counted,
 * with summary and failure-details. */
char *danests_report_json(const struct danests_rpt_day *,
    const struct danests_report_config *rc, const char *report_id);

/* danests_report_id - the report-id of the report of one (day, domain),
 * the same for `danests report show --json` and the sending:
 * "DAY.DOMAIN@SUBMITTER" (rc's submitter), or "DAY.DOMAIN" without one.
 * DANESTS_PERM when buf is too small. */
danests_status danests_report_id(const struct danests_rpt_day *,
    const struct danests_report_config *rc, char *buf, size_t buflen);

/*
 * Sending state, kept beside the counters: per (day, domain) whether the
 * report went out, to which targets, and when to try again; per rua target
 * its run of failures, so that a target that keeps failing is suppressed
 * for a while.
 */
#define DANESTS_RPT_TOOK_MAX	8	/* targets remembered per report */
struct danests_rpt_state {
	unsigned attempts;	/* sending attempts so far */
	time_t next_try;	/* not before this (0: any time) */
	time_t sent;		/* when every target took it (0: not yet) */
	char last_error[256];	/* "" when none */
	/* the targets that took it in an attempt that failed elsewhere:
	 * a retry leaves them out (digests of their URIs) */
	unsigned ntook;
	uint64_t took[DANESTS_RPT_TOOK_MAX];
};

danests_status danests_report_state_get(struct danests_cache *,
    const char *day, const char *domain, struct danests_rpt_state *out,
    char *why, size_t whylen);	/* DANESTS_NOTFOUND: never tried */
danests_status danests_report_state_put(struct danests_cache *,
    const char *day, const char *domain, const struct danests_rpt_state *,
    char *why, size_t whylen);
/* danests_report_state_took - uri took this report already;
 * danests_report_state_mark - remember that it did */
bool danests_report_state_took(const struct danests_rpt_state *,
    const char *uri);
void danests_report_state_mark(struct danests_rpt_state *, const char *uri);

struct danests_rpt_target {
	unsigned failures;	/* consecutive failed sends */
	time_t suppressed_until;	/* 0: not suppressed */
	time_t last_failure;
	char last_error[256];
};

danests_status danests_report_target_get(struct danests_cache *,
    const char *uri, struct danests_rpt_target *out, char *why,
    size_t whylen);		/* DANESTS_NOTFOUND: never failed */
danests_status danests_report_target_put(struct danests_cache *,
    const char *uri, const struct danests_rpt_target *, char *why,
    size_t whylen);

/*
 * Fleets (a shared store, `store` in danests.conf): every node writes its
 * own totals to the store under its node id (node_id, default the host
 * name), as absolute values, so a repeated push never counts twice; the
 * report of a (day, domain) is built from the sum of every node, and one
 * node sends it (a lock and a "sent" marker in the store).
 */
#define DANESTS_RPT_TOKEN_MAX	64

struct danests_fleet;

/* danests_report_fleet_open - the fleet of cfg (its store, node_id,
 * report_keep_days); *out NULL when cfg has no store.  No connection yet:
 * each call below waits at most store_timeout. */
danests_status danests_report_fleet_open(const struct danests_config *cfg,
    struct danests_fleet **out, char *why, size_t whylen);
void danests_report_fleet_close(struct danests_fleet *);

/* danests_report_fleet_push - write this node's counters of day (NULL:
 * every day kept) from the cache to the store; *npushed counts the (day,
 * domain) pairs.  DANESTS_TEMP when the store is unreachable (the local
 * counters stay; the next push writes them), DANESTS_NOTFOUND without a
 * store. */
danests_status danests_report_fleet_push(struct danests_fleet *,
    struct danests_cache *, const char *day, size_t *npushed, char *why,
    size_t whylen);

/* danests_ctx_report_push - the same from a context (its cache and
 * store) for yesterday and today, as the daemons do every
 * store_push_interval; DANESTS_NOTFOUND without a store, a cache or
 * tls_reports. */
danests_status danests_ctx_report_push(struct danests_ctx *,
    size_t *npushed, char *why, size_t whylen);
/* danests_ctx_push_interval - store_push_interval (seconds) when the
 * context pushes report counts (a store, a cache, tls_reports), else 0 */
unsigned danests_ctx_push_interval(const struct danests_ctx *);

/* danests_report_fleet_domains - every domain counted on day by any node,
 * in order; fn returning non-zero stops.  DANESTS_TEMP unreachable. */
danests_status danests_report_fleet_domains(struct danests_fleet *,
    const char *day, int (*fn)(void *, const char *domain), void *arg,
    char *why, size_t whylen);

/* danests_report_fleet_walk - fn called once with the counters of (day,
 * domain) summed over every node.  DANESTS_NOTFOUND nothing stored,
 * DANESTS_TEMP unreachable or damaged. */
danests_status danests_report_fleet_walk(struct danests_fleet *,
    const char *day, const char *domain, danests_report_fn *fn, void *arg,
    char *why, size_t whylen);

/* danests_report_fleet_sent - DANESTS_OK when a node sent the report of
 * (day, domain), DANESTS_NOTFOUND not yet, DANESTS_TEMP unreachable */
danests_status danests_report_fleet_sent(struct danests_fleet *,
    const char *day, const char *domain);
danests_status danests_report_fleet_mark_sent(struct danests_fleet *,
    const char *day, const char *domain, char *why, size_t whylen);

/* danests_report_fleet_final - DANESTS_OK when every node that counted
 * something on day pushed at day_end (the day's end) or later, so the
 * store holds its final counts; DANESTS_NOTFOUND when one did not (late
 * names it), DANESTS_TEMP unreachable */
danests_status danests_report_fleet_final(struct danests_fleet *,
    const char *day, time_t day_end, char *late, size_t latelen);

/* danests_report_fleet_lock - the sender's lock of (day, domain) for ms
 * milliseconds: DANESTS_OK (token filled), DANESTS_NOTFOUND held by
 * another node, DANESTS_TEMP unreachable */
danests_status danests_report_fleet_lock(struct danests_fleet *,
    const char *day, const char *domain, unsigned ms,
    char token[DANESTS_RPT_TOKEN_MAX]);
void danests_report_fleet_unlock(struct danests_fleet *, const char *day,
    const char *domain, const char *token);

/*
 * The TLSRPT record (RFC 8460 3): "v=TLSRPTv1; rua=URI[,URI...]" with
 * mailto: and https: URIs.  Parsed strictly: the version first and
 * exactly once, rua once, no empty field values; other extension fields
 * are ignored as 3 requires.
 */
#define DANESTS_RPT_RUA_MAX	8	/* URIs kept per record */

struct danests_tlsrpt_record {
	size_t nrua;
	char rua[DANESTS_RPT_RUA_MAX][512];
};

/* danests_tlsrpt_parse - parse one TXT record's text (the strings of the
 * record concatenated).  DANESTS_NOTFOUND when the text is not a TLSRPT
 * record at all (it does not start with v=TLSRPTv1), DANESTS_PERM (why
 * says what) when it is one but malformed, or has no usable URI. */
danests_status danests_tlsrpt_parse(const char *txt, size_t len,
    struct danests_tlsrpt_record *out, char *why, size_t whylen);

/* danests_tlsrpt_lookup - the TLSRPT record of domain: one TXT lookup of
 * _smtp._tls.DOMAIN through the context's resolver, bounded by its DNS
 * timeout.  DANESTS_OK with *out filled when exactly one TLSRPT record
 * exists and is well formed; DANESTS_NOTFOUND when there is none, or more
 * than one (RFC 8460 3); DANESTS_PERM when the one record is malformed;
 * DANESTS_TEMP when the lookup failed (try later).  why says what. */
danests_status danests_tlsrpt_lookup(struct danests_ctx *, const char *domain,
    struct danests_tlsrpt_record *out, char *why, size_t whylen);

/* danests_report_addrs - the addresses of host (an https rua's host)
 * through the context's resolver, as curl's CURLOPT_RESOLVE lists them:
 * "192.0.2.1,[2001:db8::1]" (as many as fit in out).  DANESTS_NOTFOUND
 * when it has none, DANESTS_TEMP when a lookup failed and nothing was
 * found. */
danests_status danests_report_addrs(struct danests_ctx *, const char *host,
    char *out, size_t outlen, char *why, size_t whylen);

#ifdef __cplusplus
}
#endif
#endif /* DANESTS_REPORT_H */
