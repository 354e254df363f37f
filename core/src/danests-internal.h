/*
 * danests-internal.h - declarations shared by the core's modules and its
 * unit tests.  Not installed; the adapters and the danests tool use the
 * public headers only (danests.h, danests-verify.h, danests-smtp.h).
 *
 * File name = module = prefix: dns.c -> dns_*, tlsa.c -> tlsa_*, ...
 */
#ifndef DANESTS_INTERNAL_H
#define DANESTS_INTERNAL_H

#include "danests.h"
#include "danests-verify.h"
#include "danests-smtp.h"
#include "danests-report.h"

#include <event2/event.h>
#include <signal.h>
#include <stdarg.h>

#define DANESTS_NAME_MAX 256	/* presentation name incl. NUL */
#define DANESTS_WHY_MAX 256

/* util.c - small helpers */
void *xcalloc(size_t n, size_t sz);	/* NULL only on overflow/ENOMEM */
char *xstrdup(const char *);
void why_set(char *why, size_t whylen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int is_wsp(unsigned char);	/* ' ' or TAB (RFC 5234 B.1) */
int is_alnum(unsigned char);	/* ASCII letter or digit, any locale */
int hex_value(char);		/* 0-15, or -1 */
/* name_eq - case-insensitive DNS name compare, trailing dots ignored */
bool name_eq(const char *a, const char *b);
/* name_lower - copy lower-cased name without trailing dot */
danests_status name_lower(const char *in, char *out, size_t outlen);

/*
 * dns.c - DNS lookups with DNSSEC status.
 *
 * A resolver is a small table of function pointers so the unit tests can
 * feed canned answers (tests/lib/dns_mock.c, not part of the library)
 * while production uses getdns in stub mode, trusting the AD bit of a
 * validating resolver.
 */
#define DNS_T_A		1
#define DNS_T_CNAME	5
#define DNS_T_MX	15
#define DNS_T_TXT	16
#define DNS_T_AAAA	28
#define DNS_T_TLSA	52

enum dns_rcode {
	DNS_R_OK = 0,		/* records of the asked type present */
	DNS_R_NODATA,		/* name exists, no record of that type */
	DNS_R_NXDOMAIN,
	DNS_R_SERVFAIL,		/* bogus (validating resolver) */
	DNS_R_TIMEOUT,		/* no answer in time */
	DNS_R_ERROR,		/* network, local or malformed answer */
};

struct dns_rr {
	uint16_t type;
	uint32_t ttl;
	uint16_t pref;		/* MX preference */
	char *target;		/* MX exchange or CNAME target: lower case,
				 * no trailing dot ("" for the root) */
	size_t rdlen;
	unsigned char *rdata;	/* raw RDATA (A, AAAA, TXT, TLSA) */
};

struct dns_answer {
	char *qname;
	uint16_t qtype;
	enum dns_rcode rcode;
	danests_dnssec sec;	/* status of the whole answer incl. CNAMEs */
	char *cname;		/* final owner after a CNAME chain, or NULL */
	uint32_t min_ttl;	/* smallest TTL seen (0 when none) */
	size_t nrr;
	struct dns_rr *rr;	/* records of qtype at the final owner */
	char why[128];
};

void dns_answer_free(struct dns_answer *);

/* dns_reply_map - fill a (qname, qtype set: the query) from one raw
 * reply; a reply that does not answer the query is DNS_R_ERROR
 * (dns_reply.c, pure: no I/O). */
void dns_reply_map(struct dns_answer *a, const unsigned char *msg,
    size_t len);

/* Called once per query; the callee owns ans, which is NULL only when
 * memory ran out (treat as indeterminate). */
typedef void dns_cb(void *arg, struct dns_answer *ans);

struct dns_ops {
	/* start a query; returns 0 when started (cb will be called later,
	 * never before query() returns), -1 when it could not start */
	int (*query)(void *impl, const char *name, uint16_t type, dns_cb *cb,
	    void *arg);
	void (*free)(void *impl);
};

/*
 * Pacing (dns.c): at most `max` queries are outstanding at the resolver
 * (0: no bound); the others wait in a queue with one group per owner
 * (the decision that asked), served round-robin, one query per turn, so
 * a decision's lookups never wait behind a whole batch's.
 */
#define DNS_GROUP_BUCKETS 1024
struct dns_pq;
struct dns_group;
struct dns {
	const struct dns_ops *ops;
	void *impl;
	bool closing;		/* being freed: no new queries */
	unsigned max;		/* outstanding queries at most (0: any) */
	unsigned inflight;	/* started, not answered */
	unsigned peak;		/* most ever in flight at once */
	size_t queued;		/* waiting for a slot */
	struct dns_group *rr_head, *rr_tail;	/* groups with queries */
	struct dns_group *bucket[DNS_GROUP_BUCKETS];	/* by owner */
};

/* dns_getdns_new - stub resolver over getdns on base. */
danests_status dns_getdns_new(struct event_base *base, const char *addr,
    unsigned port, unsigned timeout_ms, struct dns **out, char *why,
    size_t whylen);
int dns_query(struct dns *, const char *name, uint16_t type, dns_cb *cb,
    void *arg);
/* dns_query_for - dns_query on behalf of owner (the decision that needs
 * the answer; the unit of fairness of the queue); dns_query: owner arg */
int dns_query_for(struct dns *, const void *owner, const char *name,
    uint16_t type, dns_cb *cb, void *arg);
/* dns_set_max - bound the queries outstanding at the resolver (0: none) */
void dns_set_max(struct dns *, unsigned max);
void dns_free(struct dns *);

/* dns_resolvconf_first - first nameserver of a resolv.conf file. */
danests_status dns_resolvconf_first(const char *path, char *addr,
    size_t addrlen);

/*
 * tlsa.c - TLSA RDATA (RFC 6698 2.1) and usability (RFC 7672 3.1).
 */
enum tlsa_check {
	TLSA_USABLE = 0,	/* DANE-TA(2)/DANE-EE(3), sel 0/1, mtype 0/1/2 */
	TLSA_UNUSABLE,		/* well formed, parameters we can't use */
	TLSA_MALFORMED,		/* too short, or digest length wrong */
	TLSA_NOMEM,		/* out of memory: the caller must not
				 * read this as "no usable record" */
};
/* tlsa_parse - parse raw RDATA into out (data copied, caller frees
 * out->data).  Returns TLSA_USABLE/UNUSABLE/MALFORMED; *why on failure. */
enum tlsa_check tlsa_parse(const unsigned char *rdata, size_t len,
    struct danests_tlsa *out, const char **why);
/* tlsa_usable - the same classification for a record already split (the
 * verify layer checks every record it is handed, wherever it came from). */
enum tlsa_check tlsa_usable(uint8_t usage, uint8_t selector, uint8_t mtype,
    const unsigned char *data, size_t dlen, const char **why);

/*
 * sts_txt.c - "_mta-sts" TXT record (RFC 8461 3.1).
 */
/* sts_txt_parse - one TXT record (strings already concatenated).
 * DANESTS_OK: a valid STSv1 record, id copied to id[33].
 * DANESTS_NOTFOUND: not an STSv1 record (does not start "v=STSv1").
 * DANESTS_PERM: starts like STSv1 but malformed (why says how). */
danests_status sts_txt_parse(const char *txt, size_t len,
    char id[DANESTS_STS_ID_MAX + 1], const char **why);
/* sts_txt_select - from all TXT records of _mta-sts.D (each as a
 * concatenated string), pick the single STSv1 record (RFC 8461 3.1:
 * several -> no policy).  Same returns as sts_txt_parse. */
danests_status sts_txt_select(const char *const *txts, const size_t *lens,
    size_t n, char id[DANESTS_STS_ID_MAX + 1], const char **why);
/* txt_rdata_join - concatenate the character-strings of one TXT RDATA
 * into a new NUL-terminated string (NULs inside rejected). */
char *txt_rdata_join(const unsigned char *rdata, size_t len, size_t *outlen);

/*
 * sts_policy.c - policy body (RFC 8461 3.2) and MX patterns (4.1).
 */
#define STS_BODY_MAX (64 * 1024)
/* sts_policy_parse - parse a body; on DANESTS_OK out is filled (free with
 * sts_policy_clear); DANESTS_PERM with why on an invalid policy. */
danests_status sts_policy_parse(const char *body, size_t len,
    struct danests_sts_policy *out, const char **why);
void sts_policy_clear(struct danests_sts_policy *);
danests_status sts_policy_copy(const struct danests_sts_policy *src,
    struct danests_sts_policy *dst);
/* sts_policy_mx_match - does host (an MX name) match pattern? */
bool sts_policy_mx_match(const char *pattern, const char *host);
/* sts_policy_match - does host match any mx pattern of p? */
bool sts_policy_match(const struct danests_sts_policy *p, const char *host);

/*
 * sts_fetch.c - HTTPS policy fetch over the curl multi interface, driven
 * by the same libevent loop as DNS.
 */
struct sts_fetcher;
struct sts_fetch_result {
	danests_status status;	/* OK: body holds a 200 text/plain body */
	danests_result_type reason;	/* STS_POLICY_FETCH_ERROR or
				 * STS_WEBPKI_INVALID on failure */
	long http_code;
	char *body;		/* NUL-terminated, owned by the result */
	size_t len;
	char why[DANESTS_WHY_MAX];
	bool local;		/* the failure is this process's (out of
				 * memory, set-up, cancelled), not the
				 * policy host's */
};
typedef void sts_fetch_cb(void *arg, struct sts_fetch_result *res);

danests_status sts_fetcher_new(struct event_base *base, const char *ca_file,
    unsigned timeout_ms, unsigned port, struct sts_fetcher **out, char *why,
    size_t whylen);
void sts_fetcher_free(struct sts_fetcher *);
/* sts_fetcher_set_max - at most max fetches at once, the others wait in
 * order (0: no bound) */
void sts_fetcher_set_max(struct sts_fetcher *, unsigned max);
/* sts_fetch_start - GET https://mta-sts.<domain>/.well-known/mta-sts.txt
 * connecting to the given addresses (textual; from the core's resolver).
 * cb is called exactly once, never before this returns; the callee owns
 * nothing: res is valid during the callback only. */
danests_status sts_fetch_start(struct sts_fetcher *, const char *domain,
    const char *const *addrs, size_t naddrs, sts_fetch_cb *cb, void *arg);

/*
 * cache.c - the persistent cache shared by all processes (LMDB).
 */
struct cache;
struct cache_sts {
	struct danests_sts_policy policy;
	char id[DANESTS_STS_ID_MAX + 1];
	time_t fetched;
	time_t expires;
	time_t last_check;	/* last TXT id check */
	char last_error[DANESTS_WHY_MAX];	/* "" when none */
};
/* cache_open - open or create the environment under dir; a corrupt one is
 * moved aside and rebuilt (why says so, status DANESTS_OK).  DANESTS_TEMP
 * when the cache can't be used at all.  A directory this process has open
 * already gives the same handle (one environment per process, as LMDB
 * requires); cache_close drops one reference, the last closes it.  A
 * handle may be used by several threads. */
danests_status cache_open(const char *dir, struct cache **out, char *why,
    size_t whylen);
void cache_close(struct cache *);
/* DANESTS_OK (entry filled, free with cache_sts_clear), DANESTS_NOTFOUND,
 * or DANESTS_TEMP when the cache could not be read. */
danests_status cache_sts_get(struct cache *, const char *domain,
    struct cache_sts *out, char *why, size_t whylen);
danests_status cache_sts_put(struct cache *, const char *domain,
    const struct cache_sts *, char *why, size_t whylen);
danests_status cache_sts_del(struct cache *, const char *domain, char *why,
    size_t whylen);
void cache_sts_clear(struct cache_sts *);
/* cache_sts_encode - an entry as versioned JSON (malloc'ed), NULL on a
 * defect; cache_sts_decode - its strict inverse, -1 with *err (the shared
 * store keeps the same encoding) */
char *cache_sts_encode(const struct cache_sts *);
int cache_sts_decode(const void *buf, size_t len, struct cache_sts *,
    const char **err);
/* cache_sts_each - call fn for every entry (a read snapshot); stop when fn
 * returns non-zero.  Entries that fail to decode are skipped and make the
 * status DANESTS_TEMP (why names the first). */
typedef int cache_sts_each_fn(void *arg, const char *domain,
    const struct cache_sts *);
danests_status cache_sts_each(struct cache *, cache_sts_each_fn *fn,
    void *arg, char *why, size_t whylen);
/* Decisions (JSON text) reused until their expiry. */
danests_status cache_decision_get(struct cache *, const char *domain,
    time_t now, char **json, char *why, size_t whylen);
danests_status cache_decision_put(struct cache *, const char *domain,
    const char *json, time_t expires, char *why, size_t whylen);
danests_status cache_decision_del(struct cache *, const char *domain,
    char *why, size_t whylen);
/* cache_decision_each - like cache_sts_each, for cached decisions. */
typedef int cache_decision_each_fn(void *arg, const char *domain,
    const char *json, time_t expires);
danests_status cache_decision_each(struct cache *, cache_decision_each_fn *fn,
    void *arg, char *why, size_t whylen);
/* cache_was_rebuilt - the environment was found corrupt and rebuilt (by
 * this or another process; recorded in the cache) less than a grace
 * period (one day) ago, so policies may have been lost: STS lookups should
 * tempfail rather than read "no policy".  cache_rebuilt_at: when (0 when
 * never). */
bool cache_was_rebuilt(const struct cache *);
time_t cache_rebuilt_at(const struct cache *);
/*
 * The reporting databases (report.c): "tlsrpt" for the counters,
 * "tlsrpt_state" for the sending state.  cache_rpt_run runs fn in one
 * transaction (a write transaction when write): fn returns DANESTS_OK to
 * commit, anything else to abort (that status is returned, with why).  fn
 * may run more than once (the map grew), each time from the committed
 * state, and must not call other cache functions.  Values are the records
 * of report.c, sealed with a checksum here; a damaged one reads as
 * DANESTS_TEMP.  Pointers returned are valid until fn returns.
 */
enum cache_rdb { CACHE_RDB_COUNTERS = 0, CACHE_RDB_STATE = 1,
    CACHE_RDB_METRICS = 2 };	/* "metrics": metrics_store.c's */
struct cache_rtxn;
typedef danests_status cache_rtxn_fn(void *arg, struct cache_rtxn *,
    char *why, size_t whylen);
danests_status cache_rpt_run(struct cache *, bool write, cache_rtxn_fn *fn,
    void *arg, char *why, size_t whylen);
/* DANESTS_OK, DANESTS_NOTFOUND, or DANESTS_TEMP (damaged, LMDB error) */
danests_status cache_rpt_get(struct cache_rtxn *, enum cache_rdb,
    const void *key, size_t klen, const unsigned char **val, size_t *len,
    char *why, size_t whylen);
danests_status cache_rpt_put(struct cache_rtxn *, enum cache_rdb,
    const void *key, size_t klen, const void *val, size_t len, char *why,
    size_t whylen);
/* DANESTS_NOTFOUND when there was no such key */
danests_status cache_rpt_del(struct cache_rtxn *, enum cache_rdb,
    const void *key, size_t klen, char *why, size_t whylen);
/* cache_rpt_seek - the first pair whose key is >= from (fromlen 0: the
 * first pair); DANESTS_NOTFOUND past the last */
danests_status cache_rpt_seek(struct cache_rtxn *, enum cache_rdb,
    const void *from, size_t fromlen, const unsigned char **key,
    size_t *klen, const unsigned char **val, size_t *len, char *why,
    size_t whylen);
/* report_record_n - danests_report_record counting the result n times in
 * one transaction (report.c; for tests and their injector) */
danests_status report_record_n(struct danests_cache *,
    const struct danests_rpt_result *, uint64_t n, char *why, size_t whylen);
/* cache_view_inner - the internal handle of a public one (cache_view.c) */
struct danests_cache;
struct cache *cache_view_inner(struct danests_cache *);

/* cache_generation - read (or, bump, add one to) the purge generation that
 * tells daemons to drop the decisions they keep in memory. */
danests_status cache_generation(struct cache *, bool bump, uint64_t *gen,
    char *why, size_t whylen);

/*
 * sts.c - the MTA-STS policy that applies to a domain: TXT, fetch, cache.
 */
struct danests_ctx;
enum sts_state {
	STS_NONE = 0,		/* no policy applies (error may say why) */
	STS_POLICY,		/* sts is set (mode may be none) */
	STS_DNS_FAIL,		/* TXT lookup failed and nothing cached */
	STS_FAIL,		/* a policy may apply but can't be known */
};
struct sts_result {
	enum sts_state state;
	struct danests_sts *sts;	/* the callee may take it (set NULL) */
	danests_reason fail_reason;	/* STS_DNS_FAIL, STS_FAIL: why */
	char error[DANESTS_WHY_MAX];	/* "" or "reason: detail" */
};
typedef void sts_lookup_cb(void *arg, struct sts_result *res);
#define STS_F_FORCE	0x100	/* refetch even when the id is unchanged */
/* sts_lookup_start - cb is called exactly once, never before this returns
 * DANESTS_OK; nothing is called when it returns anything else. */
danests_status sts_lookup_start(struct danests_ctx *, const char *domain,
    unsigned flags, sts_lookup_cb *cb, void *arg, char *why, size_t whylen);
void sts_result_clear(struct sts_result *);
/* sts_cancel_fetches - after the fetcher is gone, fail the lookups that
 * were waiting on it (danests_ctx_free) */
void sts_cancel_fetches(struct danests_ctx *);

/*
 * config.c - the configuration object (fields read by ctx.c).
 */
#define DANESTS_STORE_PREFIX_MAX	64
#define DANESTS_NODE_ID_MAX	64	/* node_id, with its NUL */
#define STORE_URL_MAX			512
#define STORE_PATH_MAX			256
struct danests_config {
	char resolver[64];	/* "" = from /etc/resolv.conf */
	unsigned resolver_port;
	unsigned dns_timeout_ms;
	unsigned dns_max_queries;	/* outstanding at the resolver, at most */
	unsigned max_fetches;		/* policy fetches at once, at most */
	unsigned decision_timeout_ms;
	char *ca_file;
	char *cache_dir;	/* NULL: no persistent cache */
	unsigned sts_recheck_s;
	unsigned fetch_timeout_ms;
	unsigned sts_port;
	unsigned decision_ttl_s;
	unsigned decision_memory_ttl_s;	/* memory.c */
	unsigned decision_memory_max;
	unsigned tempfail_memory_ttl_s;
	bool sts;
	/* TLS reporting (danests-report.h); the strings are owned here,
	 * report.submitter points into rpt_submitter or rpt_from */
	struct danests_report_config report;
	char *rpt_organization;
	char *rpt_contact;
	char *rpt_from;
	char *rpt_submitter;
	char *rpt_sendmail;
	/* the shared store (store.c): "" none */
	char store_url[STORE_URL_MAX];
	char store_read_url[STORE_URL_MAX];
	char store_prefix[DANESTS_STORE_PREFIX_MAX];
	unsigned store_timeout_ms;
	/* TLS to the store (rediss://): "" the system's CAs, no client
	 * certificate */
	char store_ca_file[STORE_PATH_MAX];
	char store_cert_file[STORE_PATH_MAX];
	char store_key_file[STORE_PATH_MAX];
	unsigned store_push_s;	/* a node's counts to the store, seconds */
	char node_id[DANESTS_NODE_ID_MAX];	/* "" the host name */
	char ca_file_at[320];	/* "FILE:LINE" that set it, or "" */
	char cache_dir_at[320];
};

/*
 * config.c, ctx.c - settings and calls without a user outside the library
 * and its tests.
 */
/* Minimum seconds between re-checks of a cached policy's TXT id. */
void danests_config_set_sts_recheck(struct danests_config *, unsigned secs);
/* TCP port of policy hosts (443; only tests change it). */
void danests_config_set_sts_port(struct danests_config *, unsigned port);
/* Upper bound on how long a decision is reused from the cache. */
void danests_config_set_decision_ttl(struct danests_config *, unsigned secs);
/* Enable or disable MTA-STS lookups (default on). */
void danests_config_set_sts(struct danests_config *, bool on);

/* Apply one setting by name (the keys of danests.conf(5)); DANESTS_NOTFOUND
 * for a key the library does not know, DANESTS_PERM for a bad value. */
danests_status danests_config_apply(struct danests_config *, const char *key,
    const char *value, char *why, size_t whylen);
/* config_report_copy - deep copy of the reporting settings of src into
 * dst (whose other fields are a shallow copy of src); -1 out of memory */
int config_report_copy(struct danests_config *dst,
    const struct danests_config *src);
/* config_report_free - release them */
void config_report_free(struct danests_config *);
/* True for a key danests_config_apply knows (a core key). */
bool danests_config_is_core_key(const char *key);
/* danests_ctx_generation - the cache's purge generation: it changes when
 * `danests cache purge` runs, so that a daemon drops the decisions it
 * keeps in memory.  0 without a cache; DANESTS_TEMP (why set) when the
 * cache cannot be read, in which case nothing may be reused from memory. */
danests_status danests_ctx_generation(struct danests_ctx *, uint64_t *gen,
    char *why, size_t whylen);

/*
 * verify.c - what the SMTP client (smtp.c) and the tests use of the
 * verification layer (danests-verify.h).  struct x509_st is X509, struct
 * stack_st_X509 is STACK_OF(X509).
 */
struct x509_st;
struct stack_st_X509;

/* danests_tls_prepare - set up a new SSL (from danests_tls_ctx_new) for a
 * connection to host before the handshake: SNI, reference names, TLSA
 * records, verify mode and protocol floor as the host's policy asks.  For
 * dane and sts-enforce the handshake fails when authentication fails; for
 * the other policies it completes and danests_tls_result tells.  host is
 * only read during the call.  DANESTS_PERM for a skip host or a dane host
 * without a record OpenSSL can use; DANESTS_TEMP on internal errors. */
danests_status danests_tls_prepare(struct ssl_st *,
    const struct danests_host *host, char *why, size_t whylen);

/* danests_tls_result - after the handshake (completed or failed), what
 * authentication gave.  Fills res; DANESTS_OK when res is meaningful. */
danests_status danests_tls_result(struct ssl_st *,
    const struct danests_host *host, struct danests_verify_result *res);

/* danests_verify_chain - offline: check a peer's chain (leaf, then the
 * rest as the peer sent it, may be NULL) against host's policy, as
 * danests_tls_prepare + handshake + danests_tls_result would.  ca_file
 * as for danests_tls_ctx_new.  Nothing passed in is kept or freed.
 * DANESTS_OK with res->verified true or false for a completed check;
 * DANESTS_TEMP/PERM (res->detail says why) for errors and bad arguments. */
danests_status danests_verify_chain(const struct danests_host *host,
    struct x509_st *leaf, struct stack_st_X509 *untrusted,
    const char *ca_file, struct danests_verify_result *res);

/* danests_verify_chain_ctx - the same with a context from
 * danests_tls_ctx_new, to check many chains against one trust store. */
danests_status danests_verify_chain_ctx(struct ssl_ctx_st *,
    const struct danests_host *host, struct x509_st *leaf,
    struct stack_st_X509 *untrusted, struct danests_verify_result *res);

/*
 * rules.c - the decision rules, pure (no I/O): what the answers of
 * decide.c's lookups mean for each host and for the domain.
 */
bool rules_lookup_failed(const struct dns_answer *);
danests_reason rules_dns_reason(const struct dns_answer *);
void rules_skip_host(struct danests_host *, danests_reason);
/* rules_mx - the MX answer into d's verdict or its hosts (delivery
 * order, each skipped for dns-timeout until decided); -1: out of memory */
int rules_mx(struct danests_decision *d, const struct dns_answer *);
/* rules_addrs - A and AAAA answers of a host whose addresses are already
 * collected; true when its TLSA RRset is to be looked up */
bool rules_addrs(struct danests_host *, const struct dns_answer *a,
    const struct dns_answer *aaaa);
enum rules_tlsa {
	RULES_TLSA_DONE = 0,	/* the host is decided */
	RULES_TLSA_RETRY,	/* look up TLSA at the original name */
	RULES_TLSA_NOMEM,	/* decided, but records were lost */
};
enum rules_tlsa rules_tlsa(struct danests_host *, const struct dns_answer *,
    bool expanded, bool mx_secure);
/* rules_merge - the MTA-STS outcome (state, and d->sts when a policy
 * applies; fail for STS_DNS_FAIL/STS_FAIL) applied to d's hosts */
void rules_merge(struct danests_decision *d, enum sts_state state,
    danests_reason fail);
/* rules_verdict - the domain verdict from its hosts */
void rules_verdict(struct danests_decision *d);

/*
 * decide.c - the decision engine (doc/design.md rules 1-8): runs the
 * lookups on the context's loop and applies rules.c to their answers.
 */
struct decide;
struct danests_ctx {
	struct danests_config cfg;
	struct event_base *base;
	bool own_base;
	struct dns *dns;
	struct sts_fetcher *fetcher;
	struct cache *cache;
	char cache_note[DANESTS_WHY_MAX];	/* e.g. "rebuilt" */
	struct sts_req *sts_fetching;	/* policy lookups waiting on a fetch */
	size_t pending;		/* requests alive (callbacks may be due) */
	struct memory *mem;	/* memory.c */
	struct danests_metrics *metrics;	/* counted into (metrics.c) */
	struct danests_metrics *own_metrics;	/* the context's own set */
	struct store *store;	/* store.c; NULL: none */
	struct danests_metrics *stored;	/* what metrics_store.c stored of
					 * metrics so far, or NULL */
};

/*
 * metrics.c - the counters a context keeps (danests-metrics.h).
 */
enum metrics_fetch {
	METRICS_FETCH_OK = 0,
	METRICS_FETCH_INVALID,		/* a body that is not a policy */
	METRICS_FETCH_ERROR,		/* the policy host failed */
	METRICS_FETCH_WEBPKI,		/* its certificate failed */
	METRICS_FETCH_LOCAL,		/* this process failed */
	METRICS_FETCH_N
};
enum metrics_cache {
	METRICS_CACHE_MEMORY = 0,	/* the context's memory */
	METRICS_CACHE_LMDB_DECISION,
	METRICS_CACHE_LMDB_POLICY,
	METRICS_CACHE_STORE_POLICY,	/* the shared store (store.c) */
	METRICS_CACHE_STORE_DECISION,
	METRICS_CACHE_N
};
void metrics_fetch(struct danests_ctx *, enum metrics_fetch);
/* metrics_store_error - a call to the shared store failed (unreachable,
 * slow) */
void metrics_store_error(struct danests_ctx *);
/* metrics_cache - OK: a hit, NOTFOUND: a miss, else an error */
void metrics_cache(struct danests_ctx *, enum metrics_cache, danests_status);
/* metrics_each - every counter of m with its stable name (the keys of
 * the cache's "metrics" database); fn gets the counter's index in the set
 * too (the same in every set) */
typedef void metrics_each_fn(void *arg, const char *key, size_t idx,
    uint64_t *counter);
void metrics_each(struct danests_metrics *m, metrics_each_fn *fn, void *arg);
/* metrics_counter - counter idx of m */
uint64_t *metrics_counter(struct danests_metrics *m, size_t idx);
/* metrics_copy - dst = src; metrics_add - dst += src */
void metrics_copy(struct danests_metrics *dst,
    const struct danests_metrics *src);
void metrics_add(struct danests_metrics *dst,
    const struct danests_metrics *src);
/* metrics_cache_read - danests_cache_metrics of the internal cache */
danests_status metrics_cache_read(struct cache *, struct danests_metrics *out,
    size_t *found, char *why, size_t whylen);
/*
 * metrics_fleet.c - a node's counters in the shared store, and the push
 * of processes that run no timer (the Exim module), at most once per
 * store_push_interval per node: fleet_due takes the turn, a time stamp
 * in the local cache set by compare-and-set in one write transaction.
 * DANESTS_OK the caller's turn (stamped with now), DANESTS_NOTFOUND not
 * yet, DANESTS_TEMP the cache failed (nobody pushes).
 */
danests_status fleet_due(struct cache *, unsigned interval_s, time_t now,
    char *why, size_t whylen);
/* fleet_take - fleet_due without its first look (the compare-and-set
 * alone) */
danests_status fleet_take(struct cache *, unsigned interval_s, time_t now,
    char *why, size_t whylen);
/* metrics_timed - see metrics.c */
void *metrics_timed(struct danests_ctx *, danests_decide_cb *cb, void *arg,
    danests_decide_cb **wcb);

/*
 * store.c - the shared store of a fleet (Redis/Valkey through hiredis).
 * store_url_parse is built without hiredis too; the rest only with it
 * (HAVE_HIREDIS).  Every call waits at most store_timeout; after a
 * failure the store is left alone a few seconds (calls fail at once).
 */
#define STORE_TOKEN_LEN			32
#define STORE_SENTINELS_MAX		5
struct store_url {
	char host[256];
	unsigned port;		/* 6379 */
	unsigned db;		/* 0 */
	char password[256];	/* "" none */
	bool tls;		/* rediss:// */
	/* sentinel://: the sentinels and the master's name; host and port
	 * are then the primary they last named ("" none yet) */
	char master[64];
	unsigned nsent;
	struct {
		char host[256];
		unsigned port;
	} sent[STORE_SENTINELS_MAX];
};
danests_status store_url_parse(const char *url, struct store_url *,
    char *why, size_t whylen);
struct store;
/* store_new - the store cfg names (NULL out when none); no connection */
danests_status store_new(const struct danests_config *, struct store **out,
    char *why, size_t whylen);
void store_free(struct store *);
/* DANESTS_OK (e filled), DANESTS_NOTFOUND, DANESTS_TEMP (unreachable);
 * primary: read the write endpoint, not store_read (after taking a lock
 * there, so that what the last holder wrote is seen) */
danests_status store_sts_get(struct store *, const char *domain,
    struct cache_sts *e, bool primary);
/* newest wins (fetched, then id); *written: e replaced what was stored */
danests_status store_sts_put(struct store *, const char *domain,
    const struct cache_sts *e, bool *written);
/* DANESTS_OK taken, DANESTS_NOTFOUND held by another, DANESTS_TEMP */
danests_status store_lock(struct store *, const char *name, unsigned ms,
    char token[STORE_TOKEN_LEN + 1]);
void store_unlock(struct store *, const char *name, const char *token);
/* writes may have been lost (an outage, or nothing pushed yet); after a
 * full push of the local policies, store_set_synced(s, true) */
bool store_unsynced(const struct store *);
void store_set_synced(struct store *, bool synced);
/* The fleet's TLS-report counters (report_fleet.c): keys and commands. */
#define STORE_CMD_ARGS	20
struct store_cmd {
	int argc;
	const char *argv[STORE_CMD_ARGS];
	size_t lens[STORE_CMD_ARGS];
};
typedef int store_each_fn(void *arg, const char *s, size_t len);
int store_key(const struct store *, const char *name, char *buf, size_t len);
danests_status store_pipeline(struct store *, const struct store_cmd *,
    size_t n);
danests_status store_read_each(struct store *, int argc, const char **argv,
    const size_t *lens, store_each_fn *fn, void *arg);
danests_status store_exists(struct store *, const char *key);
/* A decision of the fleet (its JSON) until it expires: DANESTS_OK (*json
 * malloc'ed), DANESTS_NOTFOUND, DANESTS_TEMP */
danests_status store_dec_get(struct store *, const char *domain,
    char **json);
danests_status store_dec_put(struct store *, const char *domain,
    const char *json, time_t expires);
/* store_del - delete PREFIX KIND DOMAIN: DANESTS_OK deleted,
 * DANESTS_NOTFOUND none, DANESTS_TEMP */
danests_status store_del(struct store *, const char *kind,
    const char *domain);
/* report.c: danests_report_walk of the internal cache */
danests_status report_walk(struct cache *, const char *day,
    const char *domain, danests_report_fn *fn, void *arg, char *why,
    size_t whylen);
/* report_fleet.c: a node id is 1-63 of [A-Za-z0-9._-] */
bool report_node_ok(const char *);
/* the fleet of a configuration (danests_report_fleet_open) */
struct danests_fleet {
	struct store *store;
	char node[DANESTS_NODE_ID_MAX];
	unsigned keep_days;
};
/* report_fleet_node - node_id, or the host name; -1 with why when that
 * is no usable node id */
int report_fleet_node(const struct danests_config *,
    char out[DANESTS_NODE_ID_MAX], char *why, size_t whylen);
/* fleet_read_list - the strings of a SMEMBERS, HGETALL, ZRANGEBYSCORE
 * ... (cmd) of PREFIX name and up to two more arguments (extra, NULL
 * terminated, or NULL), at most max (more: DANESTS_TEMP); free with
 * fleet_list_free.  fleet_field - the value of name in a HGETALL list,
 * or NULL. */
struct fleet_list {
	char **v;
	size_t n, max;
	bool bad;
};
danests_status fleet_read_list(struct danests_fleet *, const char *cmd,
    const char *name, const char *const *extra, size_t max,
    struct fleet_list *);
void fleet_list_free(struct fleet_list *);
const char *fleet_field(const struct fleet_list *, const char *name);
int report_fleet_name(char *buf, size_t len, const char *day,
    const char *domain, const char *member);
void report_fleet_pid(const char *type, const char *pstr, const char *mx,
    char out[34]);
void report_fleet_did(const char *pid, const char *rt,
    const char *const f[5], char out[34]);
/* sts_newer - a is newer than b (fetch time, then TXT id) */
bool sts_newer(const struct cache_sts *a, const struct cache_sts *b);
/* nopipe_begin / nopipe_end - around writes to a socket by code that
 * uses write() (hiredis): SIGPIPE is blocked in the calling thread, and a
 * SIGPIPE the writes raised is taken off before the old mask returns, so
 * a peer that closed is an error (EPIPE), never the death of a process
 * that does not ignore SIGPIPE (the danests tool, Exim's delivery
 * processes).  A SIGPIPE pending before nopipe_begin is left pending. */
struct nopipe {
	sigset_t old;
	bool pending;
};
void nopipe_begin(struct nopipe *);
void nopipe_end(struct nopipe *);
/* danests_log - a note of the library (danests_set_log) */
void danests_log(int prio, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* decide_start - one resolution, with the persistent cache but without
 * the context's memory (decide.c) */
danests_status decide_start(struct danests_ctx *, const char *domain,
    unsigned flags, danests_decide_cb *cb, void *arg, char *why,
    size_t whylen);

/*
 * memory.c - decisions kept in the context's memory, tempfails kept a few
 * seconds, one resolution shared by every request asking meanwhile.
 */
danests_status memory_new(struct danests_ctx *);
void memory_free(struct danests_ctx *);
/* memory_flush - drop what is kept (policies changed) */
void memory_flush(struct danests_ctx *);
/* memory_decide - see danests_decide_async; name is normalized */
danests_status memory_decide(struct danests_ctx *, const char *name,
    danests_decide_cb *cb, void *arg, char *why, size_t whylen);
/* memory_resolutions - resolutions started through memory_decide */
size_t memory_resolutions(const struct danests_ctx *);
/* decision_copy - deep copy, or NULL when memory ran out */
struct danests_decision *decision_copy(const struct danests_decision *);

/* danests_ctx_new_with_dns - a context over a given resolver; the unit
 * tests drive the engine through it (rules.c is tested on its own). */
danests_status danests_ctx_new_with_dns(const struct danests_config *,
    struct event_base *base, struct dns *dns, struct danests_ctx **out,
    char *why, size_t whylen);

/* verify.c - verify_result_type: RFC 8460 4.3 result type of an X509
 * verify error for a host of that policy (DANESTS_RT_NONE for X509_V_OK) */
danests_result_type verify_result_type(danests_policy policy, long err);

/* reason.c - reason_from_name: the code of a reason's name (json.c) */
bool reason_from_name(const char *name, danests_reason *out);

/*
 * smtp_reply.c, smtp.c - SMTP client (RFC 5321) used by danests-relay and
 * "danests probe".  The reply parser is pure, for tables and fuzzing.
 */
#define SMTP_REPLY_LINE_MAX	2048	/* RFC 5321 4.5.3.1.5 says 512 */
#define SMTP_REPLY_LINES_MAX	64
#define SMTP_REPLY_TEXT_MAX	4096

struct smtp_reply {
	int code;			/* 200..559 */
	char enh[16];			/* RFC 3463 code or "" */
	size_t nlines;
	size_t textlen;
	char text[SMTP_REPLY_TEXT_MAX];	/* lines after the code, '\n'
					 * between them, printable */
};

/* EHLO extensions we act on */
#define SMTP_EXT_STARTTLS	0x01
#define SMTP_EXT_PIPELINING	0x02
#define SMTP_EXT_SIZE		0x04
#define SMTP_EXT_8BITMIME	0x08
#define SMTP_EXT_SMTPUTF8	0x10
#define SMTP_EXT_ENHANCED	0x20

long smtp_reply_parse(const char *buf, size_t len, struct smtp_reply *r,
    const char **why);
void smtp_reply_enhanced(struct smtp_reply *r);
unsigned smtp_ehlo_parse(const struct smtp_reply *r,
    unsigned long long *size);

#endif /* DANESTS_INTERNAL_H */
