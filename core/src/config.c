/*
 * config.c - the configuration shared by the tool and the adapters
 *
 * A configuration is plain data: danests_ctx_new copies it.  Files hold
 * "key value" lines; '#' starts a comment.  See danests.conf(5).
 */
#include "danests-internal.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEF_DNS_TIMEOUT_MS	5000
#define DEF_DECISION_TIMEOUT_MS	15000
#define DEF_STS_RECHECK_S	300
#define DEF_FETCH_TIMEOUT_MS	10000
#define DEF_DECISION_TTL_S	300

/* danests_config_new - a configuration with the defaults */
struct danests_config *
danests_config_new(void)
{
	struct danests_config *c;

	if ((c = xcalloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->resolver_port = 53;
	c->dns_timeout_ms = DEF_DNS_TIMEOUT_MS;
	c->decision_timeout_ms = DEF_DECISION_TIMEOUT_MS;
	c->sts_recheck_s = DEF_STS_RECHECK_S;
	c->fetch_timeout_ms = DEF_FETCH_TIMEOUT_MS;
	c->sts_port = 443;
	c->decision_ttl_s = DEF_DECISION_TTL_S;
	c->sts = true;
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
	free(c);
}

/* danests_config_set_resolver - "ADDR", "ADDR@PORT" or "[V6]:PORT"-free form */
danests_status
danests_config_set_resolver(struct danests_config *c, const char *spec,
    char *why, size_t whylen)
{
	char buf[64], *at, *end;
	unsigned char sa[sizeof(struct in6_addr)];
	unsigned long port = 53;

	if (strlcpy(buf, spec, sizeof(buf)) >= sizeof(buf)) {
		why_set(why, whylen, "resolver address too long: %s", spec);
		return DANESTS_PERM;
	}
	if ((at = strrchr(buf, '@')) != NULL) {
		*at++ = '\0';
		errno = 0;
		port = strtoul(at, &end, 10);
		if (*at == '\0' || *end != '\0' || errno || port == 0 ||
		    port > 65535) {
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

/* parse_uint - a decimal number within [min, max] */
static bool
parse_uint(const char *s, unsigned long min, unsigned long max,
    unsigned long *out)
{
	char *end;

	if (!isdigit((unsigned char)*s))
		return false;
	errno = 0;
	*out = strtoul(s, &end, 10);
	return *end == '\0' && errno == 0 && *out >= min && *out <= max;
}

/* danests_config_apply - apply one "key value" setting; NOTFOUND for a key
 * this library does not know */
danests_status
danests_config_apply(struct danests_config *c, const char *key, const char *val,
    char *why, size_t whylen)
{
	static const struct {
		const char *key;
		unsigned long min, max, scale;
		int which;
	} nums[] = {
		{ "dns_timeout", 1, 60, 1000, 0 },
		{ "decision_timeout", 1, 300, 1000, 1 },
		{ "sts_recheck", 0, 86400, 1, 2 },
		{ "fetch_timeout", 1, 120, 1000, 3 },
		{ "sts_port", 1, 65535, 1, 4 },
		{ "decision_ttl", 0, 86400, 1, 5 },
	};
	unsigned long n;
	size_t i;

	if (strcmp(key, "resolver") == 0)
		return danests_config_set_resolver(c, val, why, whylen);
	if (strcmp(key, "ca_file") == 0)
		return danests_config_set_ca_file(c, val, why, whylen);
	if (strcmp(key, "cache_dir") == 0)
		return danests_config_set_cache_dir(c,
		    strcmp(val, "none") == 0 ? NULL : val, why, whylen);
	if (strcmp(key, "mta_sts") == 0) {
		if (strcmp(val, "yes") != 0 && strcmp(val, "no") != 0) {
			why_set(why, whylen, "mta_sts: expected yes or no");
			return DANESTS_PERM;
		}
		c->sts = strcmp(val, "yes") == 0;
		return DANESTS_OK;
	}
	for (i = 0; i < sizeof(nums) / sizeof(nums[0]); i++) {
		if (strcmp(key, nums[i].key) != 0)
			continue;
		if (!parse_uint(val, nums[i].min, nums[i].max, &n)) {
			why_set(why, whylen, "%s: expected a number from %lu "
			    "to %lu", key, nums[i].min, nums[i].max);
			return DANESTS_PERM;
		}
		n *= nums[i].scale;
		switch (nums[i].which) {
		case 0: c->dns_timeout_ms = (unsigned)n; break;
		case 1: c->decision_timeout_ms = (unsigned)n; break;
		case 2: c->sts_recheck_s = (unsigned)n; break;
		case 3: c->fetch_timeout_ms = (unsigned)n; break;
		case 4: c->sts_port = (unsigned)n; break;
		case 5: c->decision_ttl_s = (unsigned)n; break;
		}
		return DANESTS_OK;
	}
	why_set(why, whylen, "unknown setting \"%s\"", key);
	return DANESTS_NOTFOUND;
}

/*
 * danests_config_load - read "key value" lines.  Keys this library does
 * not know are an error (a typo must not silently weaken anything); an
 * adapter with keys of its own reads its file itself and passes the rest
 * through danests_config_apply.
 */
danests_status
danests_config_load(struct danests_config *c, const char *path, char *why,
    size_t whylen)
{
	FILE *fp;
	char line[1024], lwhy[DANESTS_WHY_MAX], *key, *val, *e;
	unsigned lineno = 0;
	danests_status st;

	if ((fp = fopen(path, "r")) == NULL) {
		why_set(why, whylen, "%s: %s", path, strerror(errno));
		return DANESTS_PERM;
	}
	while (fgets(line, sizeof(line), fp) != NULL) {
		lineno++;
		if (strchr(line, '\n') == NULL && !feof(fp)) {
			why_set(why, whylen, "%s:%u: line too long", path,
			    lineno);
			fclose(fp);
			return DANESTS_PERM;
		}
		if ((e = strchr(line, '#')) != NULL)
			*e = '\0';
		key = line + strspn(line, " \t\r\n");
		if (*key == '\0')
			continue;
		val = key + strcspn(key, " \t\r\n");
		if (*val != '\0')
			*val++ = '\0';
		val += strspn(val, " \t");
		e = val + strlen(val);
		while (e > val && isspace((unsigned char)e[-1]))
			*--e = '\0';
		if (*val == '\0') {
			why_set(why, whylen, "%s:%u: %s needs a value", path,
			    lineno, key);
			fclose(fp);
			return DANESTS_PERM;
		}
		if ((st = danests_config_apply(c, key, val, lwhy, sizeof(lwhy))) !=
		    DANESTS_OK) {
			why_set(why, whylen, "%s:%u: %s", path, lineno, lwhy);
			fclose(fp);
			return st == DANESTS_NOTFOUND ? DANESTS_PERM : st;
		}
	}
	fclose(fp);
	return DANESTS_OK;
}
