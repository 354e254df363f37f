/*
 * config.c - the configuration shared by the tool and the adapters
 *
 * A configuration is plain data: danests_ctx_new copies it.  One reader
 * for every program (danests.conf(5)):
 *
 *	key value	# a comment may follow anything
 *	include PATH	# another file, read in place
 *	[section]	# one adapter's keys up to the next header
 *
 * Keys before any section are the core's; a program gets the keys of its
 * own section through a callback and skips the other sections.  Unknown
 * keys are errors, so that a typo never weakens a policy; every error
 * names the file, the line and the key.
 */
#include "danests-internal.h"

#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <limits.h>
#include <poll.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define DEF_DNS_TIMEOUT_MS	5000
#define DEF_DNS_MAX_QUERIES	200	/* well below unbound's default
					 * num-queries-per-thread (1024) */
#define DEF_MAX_FETCHES		32
#define DEF_DECISION_TIMEOUT_MS	15000
#define DEF_STS_RECHECK_S	300
#define DEF_FETCH_TIMEOUT_MS	10000
#define DEF_DECISION_TTL_S	300
#define DEF_MEMORY_TTL_S	60
#define DEF_MEMORY_MAX		200000
#define DEF_TEMPFAIL_MEMORY_S	5
#define DEF_REPORT_SENDMAIL	"/usr/sbin/sendmail"
#define DEF_REPORT_WINDOW_S	14400
#define DEF_REPORT_ATTEMPTS	5
#define DEF_REPORT_KEEP_DAYS	8
#define DEF_REPORT_TIMEOUT_S	60
#define REPORT_TEXT_MAX		255	/* organization, contact */
#define DEF_STORE_TIMEOUT_MS	200
#define DEF_STORE_PUSH_S	60
#define DEF_STORE_PREFIX	"danests:"

/* report_views - point the public view of the reporting settings at the
 * strings owned by the configuration; report_submitter defaults to the
 * domain of report_from */
static void
report_views(struct danests_config *c)
{
	const char *at;

	c->report.organization = c->rpt_organization;
	c->report.contact = c->rpt_contact;
	c->report.from = c->rpt_from;
	c->report.sendmail = c->rpt_sendmail;
	c->report.submitter = c->rpt_submitter;
	if (c->report.submitter == NULL && c->rpt_from != NULL &&
	    (at = strrchr(c->rpt_from, '@')) != NULL)
		c->report.submitter = at + 1;
}

/* config_report_free - release the reporting strings */
void
config_report_free(struct danests_config *c)
{
	free(c->rpt_organization);
	free(c->rpt_contact);
	free(c->rpt_from);
	free(c->rpt_submitter);
	free(c->rpt_sendmail);
	c->rpt_organization = c->rpt_contact = c->rpt_from = NULL;
	c->rpt_submitter = c->rpt_sendmail = NULL;
	report_views(c);
}

/* config_report_copy - deep copy of the reporting strings */
int
config_report_copy(struct danests_config *dst,
    const struct danests_config *src)
{
	dst->rpt_organization = xstrdup(src->rpt_organization);
	dst->rpt_contact = xstrdup(src->rpt_contact);
	dst->rpt_from = xstrdup(src->rpt_from);
	dst->rpt_submitter = xstrdup(src->rpt_submitter);
	dst->rpt_sendmail = xstrdup(src->rpt_sendmail);
	if ((src->rpt_organization && !dst->rpt_organization) ||
	    (src->rpt_contact && !dst->rpt_contact) ||
	    (src->rpt_from && !dst->rpt_from) ||
	    (src->rpt_submitter && !dst->rpt_submitter) ||
	    (src->rpt_sendmail && !dst->rpt_sendmail)) {
		config_report_free(dst);
		return -1;
	}
	report_views(dst);
	return 0;
}

/* danests_config_report - the reporting settings (danests-report.h) */
const struct danests_report_config *
danests_config_report(const struct danests_config *c)
{
	return &c->report;
}

/* danests_config_new - a configuration with the defaults */
struct danests_config *
danests_config_new(void)
{
	struct danests_config *c;

	if ((c = xcalloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->resolver_port = 53;
	c->dns_timeout_ms = DEF_DNS_TIMEOUT_MS;
	c->dns_max_queries = DEF_DNS_MAX_QUERIES;
	c->max_fetches = DEF_MAX_FETCHES;
	c->decision_timeout_ms = DEF_DECISION_TIMEOUT_MS;
	c->sts_recheck_s = DEF_STS_RECHECK_S;
	c->fetch_timeout_ms = DEF_FETCH_TIMEOUT_MS;
	c->sts_port = 443;
	c->decision_ttl_s = DEF_DECISION_TTL_S;
	c->decision_memory_ttl_s = DEF_MEMORY_TTL_S;
	c->decision_memory_max = DEF_MEMORY_MAX;
	c->tempfail_memory_ttl_s = DEF_TEMPFAIL_MEMORY_S;
	c->sts = true;
	c->store_timeout_ms = DEF_STORE_TIMEOUT_MS;
	c->store_push_s = DEF_STORE_PUSH_S;
	strlcpy(c->store_prefix, DEF_STORE_PREFIX, sizeof(c->store_prefix));
	c->report.window_s = DEF_REPORT_WINDOW_S;
	c->report.attempts = DEF_REPORT_ATTEMPTS;
	c->report.keep_days = DEF_REPORT_KEEP_DAYS;
	c->report.timeout_s = DEF_REPORT_TIMEOUT_S;
	if ((c->cache_dir = xstrdup(DANESTS_DEFAULT_CACHE_DIR)) == NULL ||
	    (c->rpt_sendmail = xstrdup(DEF_REPORT_SENDMAIL)) == NULL) {
		free(c->cache_dir);
		free(c);
		return NULL;
	}
	report_views(c);
	return c;
}

/* danests_config_free - release a configuration */
void
danests_config_free(struct danests_config *c)
{
	if (c == NULL)
		return;
	free(c->ca_file);
	free(c->cache_dir);
	config_report_free(c);
	free(c);
}

/* danests_config_set_resolver - "ADDR", "ADDR@PORT" or "[V6]:PORT"-free form */
danests_status
danests_config_set_resolver(struct danests_config *c, const char *spec,
    char *why, size_t whylen)
{
	char buf[64], *at;
	unsigned char sa[sizeof(struct in6_addr)];
	unsigned long long port = 53;

	if (strlcpy(buf, spec, sizeof(buf)) >= sizeof(buf)) {
		why_set(why, whylen, "resolver address too long: %s", spec);
		return DANESTS_PERM;
	}
	if ((at = strrchr(buf, '@')) != NULL) {
		*at++ = '\0';
		if (!danests_parse_uint(at, 1, 65535, &port)) {
			why_set(why, whylen, "bad resolver port: %s", at);
			return DANESTS_PERM;
		}
	}
	if (inet_pton(AF_INET, buf, sa) != 1 &&
	    inet_pton(AF_INET6, buf, sa) != 1) {
		why_set(why, whylen, "resolver is not an IP address: %s", buf);
		return DANESTS_PERM;
	}
	strlcpy(c->resolver, buf, sizeof(c->resolver));
	c->resolver_port = (unsigned)port;
	return DANESTS_OK;
}

void
danests_config_set_dns_timeout(struct danests_config *c, unsigned ms)
{
	c->dns_timeout_ms = ms ? ms : 1;
}

void
danests_config_set_decision_timeout(struct danests_config *c, unsigned ms)
{
	c->decision_timeout_ms = ms ? ms : 1;
}

/* danests_config_set_ca_file - CA bundle for PKIX; must be readable */
danests_status
danests_config_set_ca_file(struct danests_config *c, const char *path,
    char *why, size_t whylen)
{
	FILE *fp;
	char *p;

	if (path == NULL || *path == '\0') {
		free(c->ca_file);
		c->ca_file = NULL;
		return DANESTS_OK;
	}
	if ((fp = fopen(path, "r")) == NULL) {
		why_set(why, whylen, "CA file %s: %s", path, strerror(errno));
		return DANESTS_PERM;
	}
	fclose(fp);
	if ((p = strdup(path)) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	free(c->ca_file);
	c->ca_file = p;
	return DANESTS_OK;
}

/* danests_config_ca_file - the CA file set so far, or NULL */
const char *
danests_config_ca_file(const struct danests_config *c)
{
	return c->ca_file;
}

/* danests_config_cache_dir - the cache directory, or NULL for none */
const char *
danests_config_cache_dir(const struct danests_config *c)
{
	return c->cache_dir;
}

/* danests_config_set_cache_dir - NULL disables the persistent cache */
danests_status
danests_config_set_cache_dir(struct danests_config *c, const char *dir,
    char *why, size_t whylen)
{
	char *p = NULL;

	if (dir != NULL && *dir == '\0') {
		why_set(why, whylen, "empty cache directory");
		return DANESTS_PERM;
	}
	if (dir != NULL && (p = strdup(dir)) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	free(c->cache_dir);
	c->cache_dir = p;
	return DANESTS_OK;
}

void
danests_config_set_sts_recheck(struct danests_config *c, unsigned secs)
{
	c->sts_recheck_s = secs;
}

void
danests_config_set_fetch_timeout(struct danests_config *c, unsigned ms)
{
	c->fetch_timeout_ms = ms ? ms : 1;
}

void
danests_config_set_sts_port(struct danests_config *c, unsigned port)
{
	c->sts_port = port ? port : 443;
}

void
danests_config_set_decision_ttl(struct danests_config *c, unsigned secs)
{
	c->decision_ttl_s = secs;
}

void
danests_config_set_sts(struct danests_config *c, bool on)
{
	c->sts = on;
}


/* danests_parse_uint - see danests.h */
bool
danests_parse_uint(const char *s, unsigned long long lo,
    unsigned long long hi, unsigned long long *out)
{
	unsigned long long v;
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	v = strtoull(s, &end, 10);
	if (*end != '\0' || errno != 0 || v < lo || v > hi)
		return false;
	*out = v;
	return true;
}

/* danests_config_num - see danests.h */
danests_status
danests_config_num(const struct danests_config_num *tab, size_t n,
    void *base, const char *key, const char *val, char *why, size_t whylen)
{
	const struct danests_config_num *t;
	unsigned long long v, scale;
	char *at;
	size_t i;

	for (i = 0; i < n && strcmp(key, tab[i].key) != 0; i++)
		continue;
	if (i == n)
		return DANESTS_NOTFOUND;
	t = &tab[i];
	scale = t->scale != 0 ? t->scale : 1;
	if (!danests_parse_uint(val, t->min, t->max, &v) ||
	    v > ULLONG_MAX / scale ||
	    ((t->size == 0 || t->size == sizeof(unsigned)) &&
	    v * scale > UINT_MAX)) {
		why_set(why, whylen, "expected a number from %llu to %llu",
		    t->min, t->max);
		return DANESTS_PERM;
	}
	v *= scale;
	at = (char *)base + t->off;
	if (t->size == 0 || t->size == sizeof(unsigned))
		*(unsigned *)(void *)at = (unsigned)v;
	else if (t->size == sizeof(unsigned long long))
		*(unsigned long long *)(void *)at = v;
	else {
		why_set(why, whylen, "a field of %zu bytes", t->size);
		return DANESTS_PERM;
	}
	return DANESTS_OK;
}

/* danests_config_word - see danests.h */
int
danests_config_word(const char *val, const char *const *words, char *why,
    size_t whylen)
{
	size_t i, n, len;
	int k;

	for (n = 0; words[n] != NULL; n++)
		if (strcmp(val, words[n]) == 0)
			return (int)n;
	k = snprintf(why, whylen, "expected");
	for (i = 0; i < n && k >= 0 && (size_t)k < whylen; i++) {
		len = (size_t)k;
		k += snprintf(why + len, whylen - len, "%s%s", i == 0 ? " " :
		    i + 1 == n ? " or " : ", ", words[i]);
	}
	return -1;
}

/* The words of a yes/no key (danests_config_word: yes is 0). */
static const char *const yes_no[] = { "yes", "no", NULL };

/* The core's numbers (struct danests_config_num; size 0: unsigned). */
static const struct danests_config_num config_nums[] = {
	{ "dns_timeout", 1, 60, 1000,
	    offsetof(struct danests_config, dns_timeout_ms) },
	{ "dns_max_queries", 1, 4096, 1,
	    offsetof(struct danests_config, dns_max_queries) },
	{ "max_fetches", 1, 1024, 1,
	    offsetof(struct danests_config, max_fetches) },
	{ "decision_timeout", 1, 300, 1000,
	    offsetof(struct danests_config, decision_timeout_ms) },
	{ "sts_recheck", 0, 86400, 1,
	    offsetof(struct danests_config, sts_recheck_s) },
	{ "fetch_timeout", 1, 120, 1000,
	    offsetof(struct danests_config, fetch_timeout_ms) },
	{ "sts_port", 1, 65535, 1, offsetof(struct danests_config, sts_port) },
	{ "decision_ttl", 0, 86400, 1,
	    offsetof(struct danests_config, decision_ttl_s) },
	{ "decision_memory_ttl", 0, 86400, 1,
	    offsetof(struct danests_config, decision_memory_ttl_s) },
	{ "decision_memory_max", 0, 10000000, 1,
	    offsetof(struct danests_config, decision_memory_max) },
	{ "tempfail_memory_ttl", 0, 60, 1,
	    offsetof(struct danests_config, tempfail_memory_ttl_s) },
	{ "store_timeout", 1, 10000, 1,
	    offsetof(struct danests_config, store_timeout_ms) },
	{ "store_push_interval", 1, 86400, 1,
	    offsetof(struct danests_config, store_push_s) },
	{ "report_window", 0, 86400, 1,
	    offsetof(struct danests_config, report.window_s) },
	{ "report_attempts", 1, 100, 1,
	    offsetof(struct danests_config, report.attempts) },
	{ "report_keep_days", 1, 366, 1,
	    offsetof(struct danests_config, report.keep_days) },
	{ "report_timeout", 1, 3600, 1,
	    offsetof(struct danests_config, report.timeout_s) },
};

/* The core's keys besides the numbers above. */
static const char *const config_keys[] = {
	"resolver", "ca_file", "cache_dir", "mta_sts", "tls_reports",
	"report_organization", "report_contact", "report_from",
	"report_submitter", "report_sendmail", "report_only_failures",
	"store", "store_read", "store_prefix", "store_ca_file", "store_cert_file",
	"store_key_file", "node_id", NULL,
};

/* The sections of the adapters; any other name is a typo. */
static const char *const config_sections[] = {
	"postfix", "relay", "exim", "filter", NULL,
};

/* danests_config_is_core_key - true for a key of danests_config_apply */
bool
danests_config_is_core_key(const char *key)
{
	size_t i;

	for (i = 0; config_keys[i] != NULL; i++)
		if (strcmp(key, config_keys[i]) == 0)
			return true;
	for (i = 0; i < sizeof(config_nums) / sizeof(config_nums[0]); i++)
		if (strcmp(key, config_nums[i].key) == 0)
			return true;
	return false;
}

/* text_ok - printable ASCII only, at most max bytes */
static bool
text_ok(const char *s, size_t max)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (n >= max || s[n] < 0x20 || s[n] > 0x7e)
			return false;
	return n > 0;
}

/* set_str - replace an owned string */
static danests_status
set_str(char **field, const char *val, char *why, size_t whylen)
{
	char *p;

	if ((p = strdup(val)) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	free(*field);
	*field = p;
	return DANESTS_OK;
}

/* config_report_apply - the string and yes/no keys of TLS reporting
 * (danests-report.h); NOTFOUND for another key */
static danests_status
config_report_apply(struct danests_config *c, const char *key,
    const char *val, char *why, size_t whylen)
{
	char dom[DANESTS_NAME_MAX];
	const char *at;
	danests_status st;
	int w;

	if (strcmp(key, "tls_reports") == 0 ||
	    strcmp(key, "report_only_failures") == 0) {
		if ((w = danests_config_word(val, yes_no, why, whylen)) < 0)
			return DANESTS_PERM;
		if (strcmp(key, "tls_reports") == 0)
			c->report.enabled = w == 0;
		else
			c->report.only_failures = w == 0;
		return DANESTS_OK;
	}
	if (strcmp(key, "report_organization") == 0 ||
	    strcmp(key, "report_contact") == 0) {
		if (!text_ok(val, REPORT_TEXT_MAX)) {
			why_set(why, whylen, "expected printable text of at "
			    "most %d characters", REPORT_TEXT_MAX);
			return DANESTS_PERM;
		}
		st = set_str(strcmp(key, "report_contact") == 0 ?
		    &c->rpt_contact : &c->rpt_organization, val, why, whylen);
	} else if (strcmp(key, "report_from") == 0) {
		/* an addr-spec: dot-atom local part, a host name */
		if (!text_ok(val, REPORT_TEXT_MAX) ||
		    (at = strrchr(val, '@')) == NULL || at == val ||
		    strcspn(val, " \t\"(),:;<>[\\]") != strlen(val) ||
		    val[0] == '.' || at[-1] == '.' || strstr(val, "..") ||
		    danests_domain_normalize(at + 1, dom, sizeof(dom)) !=
		    DANESTS_OK) {
			why_set(why, whylen, "expected a mail address "
			    "(local@domain)");
			return DANESTS_PERM;
		}
		st = set_str(&c->rpt_from, val, why, whylen);
	} else if (strcmp(key, "report_submitter") == 0) {
		if (danests_domain_normalize(val, dom, sizeof(dom)) !=
		    DANESTS_OK) {
			why_set(why, whylen, "expected a domain name");
			return DANESTS_PERM;
		}
		st = set_str(&c->rpt_submitter, dom, why, whylen);
	} else if (strcmp(key, "report_sendmail") == 0) {
		if (val[0] != '/' || !text_ok(val, 1023) ||
		    strchr(val, ' ') != NULL) {
			why_set(why, whylen, "expected an absolute path");
			return DANESTS_PERM;
		}
		st = set_str(&c->rpt_sendmail, val, why, whylen);
	} else
		return DANESTS_NOTFOUND;
	report_views(c);
	return st;
}

/* config_store_apply - the shared store's URLs and key prefix (store.c);
 * a build without hiredis refuses a store */
static danests_status
config_store_apply(struct danests_config *c, const char *key,
    const char *val, char *why, size_t whylen)
{
	struct store_url u;

	if (strcmp(key, "store_prefix") == 0) {
		if (strlen(val) >= sizeof(c->store_prefix) ||
		    !text_ok(val, sizeof(c->store_prefix) - 1) ||
		    strchr(val, ' ') != NULL) {
			why_set(why, whylen, "expected printable text without "
			    "spaces, at most %zu characters",
			    sizeof(c->store_prefix) - 1);
			return DANESTS_PERM;
		}
		strlcpy(c->store_prefix, val, sizeof(c->store_prefix));
		return DANESTS_OK;
	}
	if (strncmp(key, "store_", 6) == 0 && strcmp(key + strlen(key) - 5,
	    "_file") == 0) {
		/* read when the store is first used (store_new): the key
		 * file is often readable by the service account alone */
		if (val[0] != '/' || strlen(val) >= STORE_PATH_MAX ||
		    !text_ok(val, STORE_PATH_MAX - 1) ||
		    strchr(val, ' ') != NULL) {
			why_set(why, whylen, "expected an absolute path without "
			    "spaces, at most %d characters", STORE_PATH_MAX - 1);
			return DANESTS_PERM;
		}
#ifndef HAVE_HIREDIS_SSL
		why_set(why, whylen, "this build has no TLS to the store "
		    "(hiredis 1.0 or later with hiredis_ssl is needed)");
		return DANESTS_PERM;
#else
		strlcpy(strcmp(key, "store_ca_file") == 0 ? c->store_ca_file :
		    strcmp(key, "store_cert_file") == 0 ? c->store_cert_file :
		    c->store_key_file, val, STORE_PATH_MAX);
		return DANESTS_OK;
#endif
	}
	if (strlen(val) >= STORE_URL_MAX) {
		why_set(why, whylen, "URL longer than %d bytes",
		    STORE_URL_MAX - 1);
		return DANESTS_PERM;
	}
	if (store_url_parse(val, &u, why, whylen) != DANESTS_OK)
		return DANESTS_PERM;
#ifndef HAVE_HIREDIS
	why_set(why, whylen, "this build has no Redis support (built "
	    "without hiredis)");
	return DANESTS_PERM;
#else
	strlcpy(strcmp(key, "store") == 0 ? c->store_url : c->store_read_url,
	    val, STORE_URL_MAX);
	return DANESTS_OK;
#endif
}

/* danests_config_apply - apply one "key value" setting; NOTFOUND for a key
 * this library does not know */
danests_status
danests_config_apply(struct danests_config *c, const char *key, const char *val,
    char *why, size_t whylen)
{
	danests_status st;
	int yes;

	if (strcmp(key, "resolver") == 0)
		return danests_config_set_resolver(c, val, why, whylen);
	if (strcmp(key, "ca_file") == 0)
		return danests_config_set_ca_file(c, val, why, whylen);
	if (strcmp(key, "cache_dir") == 0) {
		if (strcmp(val, "none") != 0 && val[0] != '/') {
			why_set(why, whylen, "expected an absolute path or "
			    "none");
			return DANESTS_PERM;
		}
		return danests_config_set_cache_dir(c,
		    strcmp(val, "none") == 0 ? NULL : val, why, whylen);
	}
	if (strcmp(key, "mta_sts") == 0) {
		if ((yes = danests_config_word(val, yes_no, why, whylen)) < 0)
			return DANESTS_PERM;
		c->sts = yes == 0;
		return DANESTS_OK;
	}
	if (strcmp(key, "store") == 0 || strcmp(key, "store_read") == 0 ||
	    strcmp(key, "store_prefix") == 0 ||
	    strcmp(key, "store_ca_file") == 0 ||
	    strcmp(key, "store_cert_file") == 0 ||
	    strcmp(key, "store_key_file") == 0)
		return config_store_apply(c, key, val, why, whylen);
	if (strcmp(key, "node_id") == 0) {
		if (!report_node_ok(val)) {
			why_set(why, whylen, "expected letters, digits, '.', "
			    "'-' and '_', at most %d characters",
			    DANESTS_NODE_ID_MAX - 1);
			return DANESTS_PERM;
		}
		strlcpy(c->node_id, val, sizeof(c->node_id));
		return DANESTS_OK;
	}
	if (strncmp(key, "report_", 7) == 0 || strcmp(key, "tls_reports") == 0) {
		st = config_report_apply(c, key, val, why, whylen);
		if (st != DANESTS_NOTFOUND)
			return st;
	}
	st = danests_config_num(config_nums, sizeof(config_nums) /
	    sizeof(config_nums[0]), c, key, val, why, whylen);
	if (st != DANESTS_NOTFOUND)
		return st;
	why_set(why, whylen, "unknown setting \"%s\"", key);
	return DANESTS_NOTFOUND;
}

/* One file being read, innermost last. */
struct config_file {
	dev_t dev;
	ino_t ino;
};

struct config_reader {
	struct danests_config *cfg;
	const char *section;		/* the program's own, or NULL */
	danests_config_key_cb *cb;
	void *arg;
	struct config_file open[DANESTS_CONFIG_DEPTH_MAX];
	int depth;
	char *why;
	size_t whylen;
};

static danests_status config_read_file(struct config_reader *,
    const char *path, const char *from, unsigned from_line);

/* config_section - "[name]": the section it starts, or NULL with why */
static const char *
config_section(char *line, char *why, size_t whylen)
{
	size_t n = strlen(line), i;
	char *name = line + 1;

	if (n < 3 || line[n - 1] != ']') {
		why_set(why, whylen, "malformed section header %s "
		    "(expected [NAME])", line);
		return NULL;
	}
	line[n - 1] = '\0';
	for (i = 0; config_sections[i] != NULL; i++)
		if (strcmp(name, config_sections[i]) == 0)
			return config_sections[i];
	why_set(why, whylen, "unknown section [%s] (known: [postfix], "
	    "[relay], [exim], [filter])", name);
	return NULL;
}

/* config_include - resolve PATH against the including file's directory */
static danests_status
config_include(struct config_reader *r, const char *val, const char *from,
    unsigned line)
{
	char path[PATH_MAX];
	const char *slash;
	int n;

	if (val[0] == '/')
		n = snprintf(path, sizeof(path), "%s", val);
	else if ((slash = strrchr(from, '/')) == NULL)
		n = snprintf(path, sizeof(path), "%s", val);
	else
		n = snprintf(path, sizeof(path), "%.*s/%s",
		    (int)(slash - from), from, val);
	if (n < 0 || (size_t)n >= sizeof(path)) {
		why_set(r->why, r->whylen, "%s:%u: include: path too long",
		    from, line);
		return DANESTS_PERM;
	}
	return config_read_file(r, path, from, line);
}

/* config_line - one line without its newline; cur is the section */
static danests_status
config_line(struct config_reader *r, char *line, const char *path,
    unsigned lineno, const char **cur)
{
	char lwhy[DANESTS_WHY_MAX] = "", *key, *val, *e;
	danests_status st;
	size_t i;

	if ((e = strchr(line, '#')) != NULL)
		*e = '\0';
	key = line + strspn(line, " \t\r");
	e = key + strlen(key);
	while (e > key && isspace((unsigned char)e[-1]))
		*--e = '\0';
	if (*key == '\0')
		return DANESTS_OK;
	if (*key == '[') {
		if ((*cur = config_section(key, lwhy, sizeof(lwhy))) == NULL) {
			why_set(r->why, r->whylen, "%s:%u: %s", path, lineno,
			    lwhy);
			return DANESTS_PERM;
		}
		return DANESTS_OK;
	}
	val = key + strcspn(key, " \t");
	if (*val != '\0')
		*val++ = '\0';
	val += strspn(val, " \t");
	for (i = 0; key[i] != '\0'; i++)
		if (!(islower((unsigned char)key[i]) || key[i] == '_' ||
		    isdigit((unsigned char)key[i]))) {
			why_set(r->why, r->whylen, "%s:%u: %s: not a key "
			    "(expected \"key value\")", path, lineno, key);
			return DANESTS_PERM;
		}
	if (*val == '\0') {
		why_set(r->why, r->whylen, "%s:%u: %s: needs a value", path,
		    lineno, key);
		return DANESTS_PERM;
	}
	if (strcmp(key, "include") == 0)
		return config_include(r, val, path, lineno);
	if (*cur == NULL) {
		st = danests_config_apply(r->cfg, key, val, lwhy, sizeof(lwhy));
		if (st == DANESTS_NOTFOUND)
			why_set(r->why, r->whylen, "%s:%u: %s: unknown key "
			    "(a program's own keys go in its section, see "
			    "danests.conf(5))", path, lineno, key);
		else if (st != DANESTS_OK)
			why_set(r->why, r->whylen, "%s:%u: %s: %s", path,
			    lineno, key, lwhy);
		else if (strcmp(key, "ca_file") == 0)
			why_set(r->cfg->ca_file_at, sizeof(r->cfg->ca_file_at),
			    "%s:%u", path, lineno);
		else if (strcmp(key, "cache_dir") == 0)
			why_set(r->cfg->cache_dir_at,
			    sizeof(r->cfg->cache_dir_at), "%s:%u", path,
			    lineno);
		return st == DANESTS_NOTFOUND ? DANESTS_PERM : st;
	}
	if (r->section == NULL || strcmp(*cur, r->section) != 0)
		return DANESTS_OK;	/* another program's section */
	st = r->cb != NULL ? r->cb(r->arg, *cur, key, val, path, lineno,
	    lwhy, sizeof(lwhy)) : DANESTS_NOTFOUND;
	if (st == DANESTS_NOTFOUND && danests_config_is_core_key(key))
		why_set(r->why, r->whylen, "%s:%u: %s: a core key: put it "
		    "before the first section", path, lineno, key);
	else if (st == DANESTS_NOTFOUND)
		why_set(r->why, r->whylen, "%s:%u: %s: unknown key in [%s]",
		    path, lineno, key, *cur);
	else if (st != DANESTS_OK)
		why_set(r->why, r->whylen, "%s:%u: %s: %s", path, lineno, key,
		    lwhy);
	return st == DANESTS_NOTFOUND ? DANESTS_PERM : st;
}

/* config_read_file - every line of path; from:from_line includes it
 * (from is NULL for the top file) */
static danests_status
config_read_file(struct config_reader *r, const char *path, const char *from,
    unsigned from_line)
{
	char line[DANESTS_CONFIG_LINE_MAX + 2], at[PATH_MAX + 32] = "";
	const char *cur = NULL;
	struct stat sb;
	unsigned lineno = 0;
	danests_status st = DANESTS_OK;
	FILE *fp;
	int fd, i;

	if (from != NULL)
		snprintf(at, sizeof(at), "%s:%u: include ", from, from_line);
	if (r->depth >= DANESTS_CONFIG_DEPTH_MAX) {
		why_set(r->why, r->whylen, "%s%s: includes nested deeper than "
		    "%d", at, path, DANESTS_CONFIG_DEPTH_MAX);
		return DANESTS_PERM;
	}
	if ((fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK)) <
	    0) {
		why_set(r->why, r->whylen, "%s%s: %s", at, path,
		    strerror(errno));
		return DANESTS_PERM;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		why_set(r->why, r->whylen, "%s%s: %s", at, path,
		    S_ISDIR(sb.st_mode) ? "is a directory, not a "
		    "configuration file" : "not a regular file");
		close(fd);
		return DANESTS_PERM;
	}
	for (i = 0; i < r->depth; i++)
		if (r->open[i].dev == sb.st_dev && r->open[i].ino == sb.st_ino) {
			why_set(r->why, r->whylen, "%s%s: include loop (the "
			    "file is being read already)", at, path);
			close(fd);
			return DANESTS_PERM;
		}
	(void)fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
	if ((fp = fdopen(fd, "r")) == NULL) {
		why_set(r->why, r->whylen, "%s%s: %s", at, path,
		    strerror(errno));
		close(fd);
		return DANESTS_TEMP;
	}
	r->open[r->depth].dev = sb.st_dev;
	r->open[r->depth].ino = sb.st_ino;
	r->depth++;
	while (fgets(line, sizeof(line), fp) != NULL) {
		size_t n = strlen(line);

		lineno++;
		if (n > 0 && line[n - 1] == '\n')
			line[--n] = '\0';
		else if (!feof(fp) || n > DANESTS_CONFIG_LINE_MAX) {
			why_set(r->why, r->whylen, "%s:%u: line longer than "
			    "%d bytes", path, lineno, DANESTS_CONFIG_LINE_MAX);
			st = DANESTS_PERM;
			break;
		}
		if ((st = config_line(r, line, path, lineno, &cur)) !=
		    DANESTS_OK)
			break;
	}
	if (st == DANESTS_OK && ferror(fp)) {
		why_set(r->why, r->whylen, "%s%s: read error: %s", at, path,
		    strerror(errno));
		st = DANESTS_PERM;
	}
	r->depth--;
	fclose(fp);
	return st;
}

/* danests_config_read - read path: core keys into c, the keys of section
 * through cb; other sections are skipped */
danests_status
danests_config_read(struct danests_config *c, const char *path,
    const char *section, danests_config_key_cb *cb, void *arg, char *why,
    size_t whylen)
{
	struct config_reader r;

	memset(&r, 0, sizeof(r));
	r.cfg = c;
	r.section = section;
	r.cb = cb;
	r.arg = arg;
	r.why = why;
	r.whylen = whylen;
	return config_read_file(&r, path, NULL, 0);
}

/* danests_config_load - the core keys of path; every section skipped */
danests_status
danests_config_load(struct danests_config *c, const char *path, char *why,
    size_t whylen)
{
	return danests_config_read(c, path, NULL, NULL, NULL, why, whylen);
}

/* check_child - in a child: take pw's identity (when given), then do what
 * a daemon's start does with the configuration; the outcome goes to fd as
 * "" (fine), "A..." (ca_file) or "C..." (context, cache) */
static void __attribute__((noreturn))
check_child(const struct danests_config *c, const struct passwd *pw, int fd)
{
	char why[2 * DANESTS_WHY_MAX] = "";
	struct danests_ctx *ctx;
	FILE *fp;

	if (pw != NULL && (initgroups(pw->pw_name, pw->pw_gid) != 0 ||
	    setgid(pw->pw_gid) != 0 || setuid(pw->pw_uid) != 0))
		snprintf(why, sizeof(why), "Ccannot become %s: %s", pw->pw_name,
		    strerror(errno));
	else if (c->ca_file != NULL && (fp = fopen(c->ca_file, "r")) == NULL)
		snprintf(why, sizeof(why), "A%s", strerror(errno));
	else {
		if (c->ca_file != NULL)
			fclose(fp);
		why[0] = 'C';
		if (danests_ctx_new(c, NULL, &ctx, why + 1, sizeof(why) - 1) ==
		    DANESTS_OK) {
			danests_ctx_free(ctx);
			why[0] = '\0';
		}
	}
	(void)!write(fd, why, strlen(why));
	_exit(why[0] == '\0' ? 0 : 1);
}

/* danests_config_check_as - try the start's steps as user, in a child */
danests_status
danests_config_check_as(const struct danests_config *c, const char *user,
    const char *user_at, char *note, size_t notelen, char *why,
    size_t whylen)
{
	char buf[2 * DANESTS_WHY_MAX], at[sizeof(c->cache_dir_at) + 2] = "";
	struct passwd *pw = NULL;
	struct pollfd pfd;
	size_t len = 0;
	ssize_t n;
	pid_t pid;
	int fds[2], status;
	time_t until;

	if (note != NULL && notelen > 0)
		note[0] = '\0';
	if (user != NULL && user[0] != '\0' && (pw = getpwnam(user)) == NULL) {
		why_set(why, whylen, "%s: user %s does not exist: create it "
		    "(adduser --system --group --home %s %s) or install the "
		    "danests package", user_at != NULL ? user_at : "user", user,
		    DANESTS_DEFAULT_CACHE_DIR, user);
		return DANESTS_PERM;
	}
	if (pw != NULL && geteuid() != 0 && geteuid() != pw->pw_uid) {
		why_set(note, notelen, "not running as root: checked as uid "
		    "%lu, not as user %s, whom the start as root becomes",
		    (unsigned long)geteuid(), user);
		pw = NULL;
	}
	if (pw != NULL && geteuid() != 0)
		pw = NULL;	/* already that user */
	if (pipe2(fds, O_CLOEXEC) != 0 || (pid = fork()) < 0) {
		why_set(why, whylen, "cannot check: %s", strerror(errno));
		return DANESTS_TEMP;
	}
	if (pid == 0) {
		close(fds[0]);
		check_child(c, pw, fds[1]);
	}
	close(fds[1]);
	pfd.fd = fds[0];
	pfd.events = POLLIN;
	until = time(NULL) + 30;
	for (;;) {
		if (poll(&pfd, 1, 1000) < 0 && errno != EINTR)
			break;
		if (pfd.revents != 0) {
			n = read(fds[0], buf + len, sizeof(buf) - 1 - len);
			if (n <= 0)
				break;
			len += (size_t)n;
			if (len == sizeof(buf) - 1)
				break;
		}
		if (time(NULL) >= until) {
			(void)kill(pid, SIGKILL);
			break;
		}
	}
	buf[len] = '\0';
	close(fds[0]);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && len == 0)
		return DANESTS_OK;
	if (buf[0] == 'A') {
		if (c->ca_file_at[0] != '\0')
			snprintf(at, sizeof(at), "%s: ", c->ca_file_at);
		why_set(why, whylen, "%sca_file %s: not readable by %s: %s", at,
		    c->ca_file, user != NULL && *user ? user : "this user",
		    buf + 1);
	} else if (buf[0] == 'C') {
		if (strncmp(buf + 1, "cache ", 6) == 0)
			snprintf(at, sizeof(at), "%s: ", c->cache_dir_at[0] ?
			    c->cache_dir_at : "cache_dir");
		why_set(why, whylen, "%sas user %s: %s", at, user != NULL &&
		    *user ? user : "(as started)", buf + 1);
	} else
		why_set(why, whylen, "the check as user %s did not finish",
		    user != NULL && *user ? user : "(as started)");
	return DANESTS_PERM;
}
