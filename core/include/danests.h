/*
 * danests.h - public interface of libdanests
 *
 * libdanests decides, for a destination mail domain, how each of its MX
 * hosts must be reached: with DANE (RFC 7672), with MTA-STS (RFC 8461),
 * opportunistically, or not at all.  Adapters for Exim, Postfix and
 * OpenSMTPD and the danests(1) tool are thin layers over this interface.
 *
 * One header per concern: this one holds decisions, configuration,
 * contexts and the shared cache; danests-verify.h the TLS verification
 * of an MX host; danests-smtp.h the SMTP client that delivers as a
 * decision says.
 *
 * Conventions:
 *  - Every function that can fail returns a danests_status and, where
 *    useful, a human-readable reason in a caller-supplied buffer ("why").
 *  - The library never prints and never exits.
 *  - Every *_new has its *_free; ownership is stated per function.
 *  - Contexts are not thread-safe; use one per thread.  They are safe to
 *    use in several processes at once (the policy cache is shared).
 */
#ifndef DANESTS_H
#define DANESTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#ifdef __cplusplus
extern "C" {
#endif

#define DANESTS_VERSION "0.1.0"

/* One status for every layer: done, no such thing, try again later,
 * never.  The names follow the four replies of Postfix's socketmap
 * protocol, the first adapter, and map 1:1 to them, to LMTP
 * 2xx/-/4xx/5xx and to Exim's OK/FAIL_FORCED/DEFER/FAIL. */
typedef enum danests_status {
	DANESTS_OK = 0,
	DANESTS_NOTFOUND = 1,
	DANESTS_TEMP = 2,
	DANESTS_PERM = 3,
} danests_status;

/* DNSSEC status of one lookup, as reported by a validating resolver. */
typedef enum danests_dnssec {
	DANESTS_SEC_SECURE = 0,
	DANESTS_SEC_INSECURE,
	DANESTS_SEC_BOGUS,		/* SERVFAIL from a validating resolver */
	DANESTS_SEC_INDETERMINATE,	/* timeout, network or local error */
} danests_dnssec;

typedef enum danests_verdict {
	DANESTS_DELIVER = 0,	/* at least one usable host */
	DANESTS_TEMPFAIL,	/* defer, try again later */
	DANESTS_PERMFAIL,	/* bounce: NXDOMAIN, null MX */
} danests_verdict;

/* Per-host policy, strongest first. */
typedef enum danests_policy {
	DANESTS_POLICY_DANE = 0,	/* TLS + usable TLSA records */
	DANESTS_POLICY_ENCRYPT,		/* TLS, unauthenticated */
	DANESTS_POLICY_STS_ENFORCE,	/* TLS + PKIX + MX name in policy */
	DANESTS_POLICY_STS_TESTING,	/* try as enforce, deliver anyway */
	DANESTS_POLICY_MAY,		/* opportunistic TLS */
	DANESTS_POLICY_SKIP,		/* never connect to this host */
} danests_policy;

typedef enum danests_sts_mode {
	DANESTS_STS_NONE = 0,
	DANESTS_STS_TESTING,
	DANESTS_STS_ENFORCE,
} danests_sts_mode;

const char *danests_status_name(danests_status);
const char *danests_dnssec_name(danests_dnssec);
const char *danests_verdict_name(danests_verdict);
const char *danests_policy_name(danests_policy);
const char *danests_sts_mode_name(danests_sts_mode);

/*
 * RFC 8460 4.3 result types (TLS reporting): X(enum, name).
 */
#define DANESTS_RESULT_TYPES(X) \
	X(DANESTS_RT_STARTTLS_NOT_SUPPORTED, "starttls-not-supported") \
	X(DANESTS_RT_CERT_HOST_MISMATCH, "certificate-host-mismatch") \
	X(DANESTS_RT_CERT_EXPIRED, "certificate-expired") \
	X(DANESTS_RT_CERT_NOT_TRUSTED, "certificate-not-trusted") \
	X(DANESTS_RT_VALIDATION_FAILURE, "validation-failure") \
	X(DANESTS_RT_TLSA_INVALID, "tlsa-invalid") \
	X(DANESTS_RT_DNSSEC_INVALID, "dnssec-invalid") \
	X(DANESTS_RT_DANE_REQUIRED, "dane-required") \
	X(DANESTS_RT_STS_POLICY_FETCH_ERROR, "sts-policy-fetch-error") \
	X(DANESTS_RT_STS_POLICY_INVALID, "sts-policy-invalid") \
	X(DANESTS_RT_STS_WEBPKI_INVALID, "sts-webpki-invalid")

typedef enum danests_result_type {
	DANESTS_RT_NONE = 0,	/* not a failure */
#define DANESTS_X_(e, name) e,
	DANESTS_RESULT_TYPES(DANESTS_X_)
#undef DANESTS_X_
} danests_result_type;

/*
 * Reason codes of decisions and hosts: X(enum, name, RFC 8460 result
 * type when the reason is a failure).  The names are stable: they appear
 * in logs, adapter replies and `danests check --json`.
 */
#define DANESTS_REASONS(X) \
	X(DANESTS_R_OK, "ok", DANESTS_RT_NONE) \
	X(DANESTS_R_NULL_MX, "null-mx", DANESTS_RT_NONE) \
	X(DANESTS_R_NXDOMAIN, "nxdomain", DANESTS_RT_NONE) \
	X(DANESTS_R_DNSSEC_INVALID, "dnssec-invalid", \
	    DANESTS_RT_DNSSEC_INVALID) \
	X(DANESTS_R_DNS_ERROR, "dns-error", DANESTS_RT_DNSSEC_INVALID) \
	X(DANESTS_R_DNS_TIMEOUT, "dns-timeout", DANESTS_RT_DNSSEC_INVALID) \
	X(DANESTS_R_NO_ADDRESS, "no-address", DANESTS_RT_NONE) \
	X(DANESTS_R_NO_USABLE_HOST, "no-usable-host", DANESTS_RT_NONE) \
	X(DANESTS_R_DANE, "dane-tlsa", DANESTS_RT_NONE) \
	X(DANESTS_R_TLSA_UNUSABLE, "tlsa-unusable", DANESTS_RT_NONE) \
	X(DANESTS_R_TLSA_INVALID, "tlsa-invalid", DANESTS_RT_TLSA_INVALID) \
	X(DANESTS_R_NO_TLSA, "no-tlsa", DANESTS_RT_NONE) \
	X(DANESTS_R_ADDR_INSECURE, "address-insecure", DANESTS_RT_NONE) \
	X(DANESTS_R_TLSA_INSECURE, "tlsa-insecure", DANESTS_RT_NONE) \
	X(DANESTS_R_STS_MX_MATCH, "sts-mx-match", DANESTS_RT_NONE) \
	X(DANESTS_R_STS_MX_MISMATCH, "sts-mx-mismatch", \
	    DANESTS_RT_VALIDATION_FAILURE) \
	X(DANESTS_R_STS_TESTING, "sts-testing", DANESTS_RT_NONE) \
	X(DANESTS_R_STS_NONE, "sts-none", DANESTS_RT_NONE) \
	X(DANESTS_R_NO_POLICY, "no-policy", DANESTS_RT_NONE) \
	X(DANESTS_R_CACHE_ERROR, "cache-error", DANESTS_RT_NONE) \
	X(DANESTS_R_DECISION_TIMEOUT, "decision-timeout", DANESTS_RT_NONE) \
	X(DANESTS_R_LOCAL_ERROR, "local-error", DANESTS_RT_NONE)

typedef enum danests_reason {
	DANESTS_R_NONE = 0,	/* no reason recorded (JSON null) */
#define DANESTS_X_(e, name, rt) e,
	DANESTS_REASONS(DANESTS_X_)
#undef DANESTS_X_
} danests_reason;

/* danests_reason_name - the reason code's name; NULL for DANESTS_R_NONE
 * and values out of range. */
const char *danests_reason_name(danests_reason);
/* danests_reason_result_type - RFC 8460 result type of a reason, or
 * DANESTS_RT_NONE when the reason is not a failure. */
danests_result_type danests_reason_result_type(danests_reason);
/* danests_result_type_name - "certificate-expired" etc.; NULL for
 * DANESTS_RT_NONE and values out of range. */
const char *danests_result_type_name(danests_result_type);

/*
 * Refusing an address while the client is connected (MAIL FROM, RCPT TO):
 * only a final decision is refused there, a null MX (RFC 7505 4.1, 4.2)
 * or a domain that does not exist (RFC 3463 X.1.2, X.1.8).
 * danests_refusal writes the SMTP reply that refuses a recipient (sender
 * false) or a sender in domain, "CODE X.Y.Z text", into buf and returns
 * true; false, buf untouched, for every other decision: the address goes
 * on.  Every adapter that refuses at MAIL or RCPT time answers with it.
 */
bool danests_refusal(danests_verdict, danests_reason, bool sender,
    const char *domain, char *buf, size_t buflen);

/* One usable TLSA record (RFC 6698 2.1). */
struct danests_tlsa {
	uint8_t usage;
	uint8_t selector;
	uint8_t mtype;
	size_t len;
	unsigned char *data;
};

/* An MTA-STS policy (RFC 8461 3.2). */
#define DANESTS_STS_ID_MAX 32
#define DANESTS_STS_MAX_AGE_MAX 31557600u
struct danests_sts_policy {
	danests_sts_mode mode;
	uint32_t max_age;
	size_t nmx;
	char **mx;		/* patterns as written, lower case */
};

/* The MTA-STS part of a decision.  Present only when a policy applies. */
struct danests_sts {
	struct danests_sts_policy policy;
	char id[DANESTS_STS_ID_MAX + 1];
	const char *source;	/* "fetched" or "cache" */
	time_t fetched;		/* when the policy was fetched */
	time_t expires;		/* fetched + max_age */
	char *error;		/* last refresh error kept while a cached
				 * policy stays in force, or NULL */
};

/* The decision for one MX host.  Read-only; owned by the decision. */
struct danests_host {
	char *name;		/* MX exchange, lower case, no trailing dot */
	int priority;		/* MX preference (0 for implicit MX) */
	danests_policy policy;
	danests_reason reason;	/* see danests_reason_name */
	bool mx_insecure;	/* dane from an insecure MX RRset */
	danests_dnssec addr_security;
	danests_dnssec tlsa_security;	/* meaningful when a TLSA lookup ran */
	char *tlsa_base;	/* TLSA base domain (RFC 7672 2.2.3) or NULL */
	size_t naddrs;
	char **addrs;		/* textual addresses, IPv4 first */
	size_t ntlsa;
	struct danests_tlsa *tlsa;	/* usable records only */
	size_t nunusable;	/* secure records that were not usable */
};

/* The decision for one destination domain. */
struct danests_decision {
	char *domain;		/* as asked, lower case, no trailing dot */
	danests_verdict verdict;
	danests_reason reason;	/* see danests_reason_name */
	danests_dnssec mx_security;
	bool implicit_mx;
	char *mx_cname;		/* canonical name when the MX lookup
				 * followed a CNAME, else NULL */
	struct danests_sts *sts;	/* NULL: no MTA-STS policy applies */
	char *sts_error;	/* why no policy applies (fetch or parse
				 * failure), for reporting; or NULL */
	size_t nhosts;
	struct danests_host *hosts;	/* delivery order */
	time_t decided;		/* when the decision was made */
	time_t expires;		/* when it may no longer be reused */
	bool from_cache;
	bool reused;		/* answered from the context's memory, or
				 * a copy of a resolution another request
				 * started: log one resolution once */
};

void danests_decision_free(struct danests_decision *);

/* danests_decision_to_json - one-line JSON text (the `danests check --json`
 * contract).  Returns a malloc'ed string the caller frees, or NULL. */
char *danests_decision_to_json(const struct danests_decision *);

/* danests_decision_from_json - inverse of danests_decision_to_json.  On
 * DANESTS_OK, *out is a new decision the caller frees. */
danests_status danests_decision_from_json(const char *json,
    struct danests_decision **out);

/* Configuration shared by the tool and the adapters. */
struct danests_config;

struct danests_config *danests_config_new(void);
void danests_config_free(struct danests_config *);

/* "ADDR" or "ADDR@PORT"; IPv4 or IPv6.  Default: first nameserver of
 * /etc/resolv.conf, port 53. */
danests_status danests_config_set_resolver(struct danests_config *,
    const char *spec, char *why, size_t whylen);
/* Per DNS query timeout, and the bound on a whole decision. */
void danests_config_set_dns_timeout(struct danests_config *, unsigned ms);
void danests_config_set_decision_timeout(struct danests_config *, unsigned ms);
/* CA bundle for MTA-STS PKIX checks (default: the system store). */
danests_status danests_config_set_ca_file(struct danests_config *,
    const char *path, char *why, size_t whylen);
/* The CA file set so far (NULL: the system store); owned by the config. */
const char *danests_config_ca_file(const struct danests_config *);
/* The cache directory (NULL: none); owned by the config. */
const char *danests_config_cache_dir(const struct danests_config *);
/* Cache directory (default DANESTS_DEFAULT_CACHE_DIR); NULL disables the
 * persistent cache. */
danests_status danests_config_set_cache_dir(struct danests_config *,
    const char *dir, char *why, size_t whylen);
/* Connect and total timeouts of a policy fetch. */
void danests_config_set_fetch_timeout(struct danests_config *, unsigned ms);

/*
 * Configuration files (danests.conf(5)): "key value" lines, '#' starts a
 * comment anywhere, "include PATH" reads another file in place (a
 * relative PATH is taken from the including file's directory), "[NAME]"
 * starts the section of one adapter (postfix, relay, exim).  Keys before
 * the first section of a file are core keys.  Errors are DANESTS_PERM
 * with why "FILE:LINE: KEY: what" (or "FILE: what").
 */
#define DANESTS_DEFAULT_CONFIG		"/etc/danests/danests.conf"
#define DANESTS_DEFAULT_CACHE_DIR	"/var/lib/danests"
#define DANESTS_DEFAULT_USER		"_danests"
#define DANESTS_CONFIG_LINE_MAX		1024	/* bytes, newline excluded */
#define DANESTS_CONFIG_DEPTH_MAX	8	/* files open at once */

/* A key of the caller's own section: DANESTS_OK when applied,
 * DANESTS_NOTFOUND for a key it does not know, DANESTS_PERM (why says
 * what is wrong with the value, without the key) for a bad value.  file
 * and line say where (valid during the call only). */
typedef danests_status danests_config_key_cb(void *arg, const char *section,
    const char *key, const char *value, const char *file, unsigned line,
    char *why, size_t whylen);

/*
 * Numeric keys, the core's and every program's own alike: a table of
 * { key, min, max, scale, off, size }.  danests_config_num looks key up in
 * tab: DANESTS_NOTFOUND when it is not there; DANESTS_PERM ("expected a
 * number from MIN to MAX") when value is not a decimal number within
 * [min, max]; else value times scale (0 counts as 1; 1000 turns seconds
 * into milliseconds) is stored at base + off in an unsigned integer of
 * size bytes (0: an unsigned int).  DANESTS_CONFIG_NUM fills one entry.
 */
struct danests_config_num {
	const char *key;
	unsigned long long min, max;
	unsigned scale;
	size_t off;
	size_t size;
};
#define DANESTS_CONFIG_NUM(key, min, max, scale, type, field)		\
	{ (key), (min), (max), (scale), offsetof(type, field),		\
	    sizeof(((type *)0)->field) }
danests_status danests_config_num(const struct danests_config_num *tab,
    size_t n, void *base, const char *key, const char *value, char *why,
    size_t whylen);

/* danests_parse_uint - s is a decimal number within [lo, hi], digits
 * only (no sign, no space): true with *out set.  Every number of a
 * configuration file or a command line is read with it. */
bool danests_parse_uint(const char *s, unsigned long long lo,
    unsigned long long hi, unsigned long long *out);

/* danests_config_word - a value that is one of words (NULL-terminated):
 * its index, or -1 with why "expected W0 or W1" (W0, W1 or W2, ...).
 * The core's and every section's keys of that kind use it. */
int danests_config_word(const char *value, const char *const *words,
    char *why, size_t whylen);

/* danests_config_read - read path into c; the keys of section (NULL:
 * none) go to cb, other sections are skipped.  Settings override what was
 * set before.  A missing, unreadable or non-regular file is an error. */
danests_status danests_config_read(struct danests_config *, const char *path,
    const char *section, danests_config_key_cb *cb, void *arg, char *why,
    size_t whylen);
/* danests_config_load - danests_config_read without a section: the core
 * keys only, as `danests check --config` applies them. */
danests_status danests_config_load(struct danests_config *, const char *path,
    char *why, size_t whylen);

/* danests_config_check_as - what a daemon meets at its start once it runs
 * as user (started as root; as another user, as that user): the user
 * exists, ca_file is readable and a context can be made (cache directory
 * usable or creatable), tried in a child process with that identity.
 * user_at is where user was set ("FILE:LINE", or NULL for the default).
 * On DANESTS_OK, note may say what could not be checked ("" otherwise). */
danests_status danests_config_check_as(const struct danests_config *,
    const char *user, const char *user_at, char *note, size_t notelen,
    char *why, size_t whylen);

/* A resolution context: a DNS client, an HTTPS fetcher and the cache. */
struct danests_ctx;
struct event_base;

/* danests_ctx_new - make a context from a configuration (copied).  When base
 * is not NULL, every asynchronous operation runs on that libevent loop,
 * which the caller owns and drives; otherwise the context owns a private
 * loop used by the synchronous calls. */
danests_status danests_ctx_new(const struct danests_config *,
    struct event_base *base, struct danests_ctx **out, char *why,
    size_t whylen);
/* danests_ctx_free - requests still pending complete first, with their
 * callbacks called from here (tempfail: "cancelled"). */
void danests_ctx_free(struct danests_ctx *);

/* Flags for danests_decide*. */
#define DANESTS_F_NO_CACHE	0x01	/* neither read nor write the cache */
#define DANESTS_F_REFRESH	0x02	/* ignore cached decisions, re-resolve */
#define DANESTS_F_CACHE_ONLY	0x04	/* answer from the cache or TEMP */

/* Called once per request with the status and, when status is DANESTS_OK,
 * a decision owned by the callee (free it with danests_decision_free).  A
 * decision may itself say tempfail or permfail; status is DANESTS_TEMP only
 * when no decision could be made at all (e.g. out of memory). */
typedef void danests_decide_cb(void *arg, danests_status,
    struct danests_decision *, const char *why);

/* danests_decide_async - start deciding for domain; cb is never called
 * before this returns.  Returns DANESTS_OK when started, DANESTS_PERM for
 * a malformed domain (why says so).  Without flags, the context answers
 * from its memory when it can (a decision for decision_memory_ttl
 * seconds, a tempfail for tempfail_memory_ttl seconds, never across
 * `danests cache purge`), and requests for a domain whose resolution is
 * in progress share it; every request gets its own decision. */
danests_status danests_decide_async(struct danests_ctx *, const char *domain,
    unsigned flags, danests_decide_cb *cb, void *arg, char *why,
    size_t whylen);

/* danests_decide - the synchronous twin; runs the context's loop until
 * done.  On DANESTS_OK, *out is a new decision the caller frees. */
danests_status danests_decide(struct danests_ctx *, const char *domain,
    unsigned flags, struct danests_decision **out, char *why, size_t whylen);

/* Number of requests still in progress on a context. */
size_t danests_ctx_pending(const struct danests_ctx *);

/* What opening the cache reported (e.g. that a corrupt cache was moved
 * aside and rebuilt), or "" when nothing is worth logging. */
const char *danests_ctx_cache_note(const struct danests_ctx *);

/* Notes of the library itself (the shared store's outages and returns):
 * fn gets a syslog priority and one line; NULL (the default) sends them
 * to syslog, facility mail. */
typedef void danests_log_fn(int prio, const char *line);
void danests_set_log(danests_log_fn *fn);


/* Refresh ahead of expiry: refetch every cached MTA-STS policy that
 * expires within window_s seconds, at most parallel fetches at a time.
 * A failed refetch keeps the cached policy (and records the error).  cb
 * gets the number of policies due, refreshed and failed; it is never called
 * before danests_refresh_async returns DANESTS_OK. */
typedef void danests_refresh_cb(void *arg, size_t due, size_t refreshed,
    size_t failed);
danests_status danests_refresh_async(struct danests_ctx *, unsigned window_s,
    unsigned parallel, danests_refresh_cb *cb, void *arg, char *why,
    size_t whylen);
danests_status danests_refresh(struct danests_ctx *, unsigned window_s,
    unsigned parallel, size_t *due, size_t *refreshed, size_t *failed,
    char *why, size_t whylen);

/*
 * The shared cache (LMDB under cache_dir) as `danests cache` inspects and
 * purges it.  Contexts read and write it themselves; these calls are for
 * looking at it and for removing a domain from it.
 */
struct danests_cache;

/* One cached MTA-STS policy. */
struct danests_cache_policy {
	struct danests_sts_policy policy;
	char id[DANESTS_STS_ID_MAX + 1];
	time_t fetched;
	time_t expires;
	time_t last_check;	/* last check of the TXT id */
	char last_error[256];	/* why the last refresh failed, or "" */
};

/* danests_cache_open - open (or create) the cache under dir.  On
 * DANESTS_OK why may say that a corrupt cache was moved aside and rebuilt
 * just now ("" otherwise); DANESTS_TEMP when it cannot be used. */
danests_status danests_cache_open(const char *dir, struct danests_cache **out,
    char *why, size_t whylen);
void danests_cache_close(struct danests_cache *);
/* danests_cache_rebuilt_at - when the cache was last found corrupt and
 * rebuilt, if recently enough that policies may have been lost; else 0 */
time_t danests_cache_rebuilt_at(const struct danests_cache *);

/* Called for each entry of a read snapshot; non-zero stops.  Everything
 * passed is valid during the call only. */
typedef int danests_cache_policy_fn(void *arg, const char *domain,
    const struct danests_cache_policy *);
typedef int danests_cache_decision_fn(void *arg, const char *domain,
    const char *json, time_t expires);
/* Every cached policy, every cached decision (JSON as `danests check
 * --json` prints it).  DANESTS_TEMP (why names the first) when some
 * entries could not be read; the others are passed still. */
danests_status danests_cache_policies(struct danests_cache *,
    danests_cache_policy_fn *fn, void *arg, char *why, size_t whylen);
danests_status danests_cache_decisions(struct danests_cache *,
    danests_cache_decision_fn *fn, void *arg, char *why, size_t whylen);

/* danests_cache_policy_get - the policy cached for domain: DANESTS_OK
 * (release with danests_cache_policy_clear), DANESTS_NOTFOUND, or
 * DANESTS_TEMP when the cache could not be read. */
danests_status danests_cache_policy_get(struct danests_cache *,
    const char *domain, struct danests_cache_policy *out, char *why,
    size_t whylen);
void danests_cache_policy_clear(struct danests_cache_policy *);
/* danests_cache_decision_get - the decision cached for domain that has
 * not expired, as JSON the caller frees; same returns. */
danests_status danests_cache_decision_get(struct danests_cache *,
    const char *domain, char **json, char *why, size_t whylen);
/* danests_cache_purge - delete domain's policy and decision, and count up
 * the purge generation so that every running program drops what it keeps
 * in memory (whether or not there was an entry).  *had_policy and
 * *had_decision say what was there. */
danests_status danests_cache_purge(struct danests_cache *, const char *domain,
    bool *had_policy, bool *had_decision, char *why, size_t whylen);
/* danests_store_purge - the same in the shared store of cfg (`store`):
 * domain's policy and decision deleted there, so that no node adopts
 * them again (each node's own cache keeps its copy: purge there too).
 * DANESTS_OK (also when cfg has no store), DANESTS_TEMP the store is
 * unreachable, DANESTS_PERM its settings are wrong. */
danests_status danests_store_purge(const struct danests_config *cfg,
    const char *domain, bool *had_policy, bool *had_decision, char *why,
    size_t whylen);

/* danests_domain_normalize - lower-case a domain, drop one trailing dot,
 * check it is a syntactically valid host name (A-labels).  Writes into out
 * (at least 256 bytes).  DANESTS_PERM when not a valid domain. */
danests_status danests_domain_normalize(const char *in, char *out,
    size_t outlen);


#ifdef __cplusplus
}
#endif
#endif /* DANESTS_H */
