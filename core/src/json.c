/*
 * json.c - decisions as JSON text, and back
 *
 * The text is the `danests check --json` contract and the form in which the
 * decision cache stores decisions, so to_json and from_json are exact
 * inverses.  Field names never change; new fields are only ever added.
 *
 * One object per domain, keys in this order:
 *   domain, verdict, reason, mx_security, implicit_mx,
 *   sts: null | { mode, id, max_age, mx[], source, fetched, expires, error },
 *   hosts: [ { name, priority, policy, reason, mx_insecure,
 *              tlsa: [ { usage, selector, mtype, data } ],
 *              addr_security, tlsa_security, tlsa_base, addresses[],
 *              unusable_tlsa } ],
 *   mx_cname, sts_error, decided, expires, from_cache
 *
 * tlsa_security is null exactly when tlsa_base is null: no TLSA lookup ran
 * for that host.  TLSA data is lower-case hex.  A reason is the name of a
 * danests_reason (danests.h DANESTS_REASONS) or null; any other text is
 * rejected.
 */
#include "danests-internal.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#define JSON_TEXT_MAX	(4 * 1024 * 1024)	/* one decision, as text */
#define JSON_TLSA_MAX	65535			/* RDATA bytes, RFC 6698 */
#define JSON_STR_MAX	1024			/* error texts and the like */

static const char STS_FETCHED[] = "fetched";
static const char STS_CACHE[] = "cache";

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* danests_decision_free - release a decision and everything it owns */
void
danests_decision_free(struct danests_decision *d)
{
	size_t i, j;
	struct danests_host *h;

	if (d == NULL)
		return;
	free(d->domain);
	free(d->mx_cname);
	free(d->sts_error);
	if (d->sts != NULL) {
		for (i = 0; i < d->sts->policy.nmx; i++)
			free(d->sts->policy.mx[i]);
		free(d->sts->policy.mx);
		free(d->sts->error);
		free(d->sts);
	}
	for (i = 0; d->hosts != NULL && i < d->nhosts; i++) {
		h = &d->hosts[i];
		free(h->name);
		free(h->tlsa_base);
		for (j = 0; h->addrs != NULL && j < h->naddrs; j++)
			free(h->addrs[j]);
		free(h->addrs);
		for (j = 0; h->tlsa != NULL && j < h->ntlsa; j++)
			free(h->tlsa[j].data);
		free(h->tlsa);
	}
	free(d->hosts);
	free(d);
}

/*
 * Writing.
 */

/* jstr - a JSON string; NULL gives null; bytes that are not UTF-8 become
 * '?' so error texts from the network can't make the output fail */
static json_t *
jstr(const char *s)
{
	json_t *j;
	char *copy, *p;

	if (s == NULL)
		return json_null();
	if ((j = json_string(s)) != NULL)
		return j;
	if ((copy = strdup(s)) == NULL)
		return NULL;
	for (p = copy; *p != '\0'; p++)
		if ((unsigned char)*p >= 0x80)
			*p = '?';
	j = json_string(copy);
	free(copy);
	return j;
}

/* set - add a member, taking the reference; fails on a NULL value */
static int
set(json_t *obj, const char *key, json_t *val)
{
	if (val == NULL)
		return -1;
	return json_object_set_new(obj, key, val);
}

/* hex_lower - lower-case hex of len bytes, a new string */
static char *
hex_lower(const unsigned char *p, size_t len)
{
	static const char digits[] = "0123456789abcdef";
	char *s;
	size_t i;

	if ((s = malloc(len * 2 + 1)) == NULL)
		return NULL;
	for (i = 0; i < len; i++) {
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 0x0f];
	}
	s[2 * len] = '\0';
	return s;
}

/* tlsa_to_json - one usable TLSA record */
static json_t *
tlsa_to_json(const struct danests_tlsa *t)
{
	json_t *o;
	char *hex;

	if ((o = json_object()) == NULL)
		return NULL;
	if ((hex = hex_lower(t->data, t->data ? t->len : 0)) == NULL) {
		json_decref(o);
		return NULL;
	}
	if (set(o, "usage", json_integer(t->usage)) ||
	    set(o, "selector", json_integer(t->selector)) ||
	    set(o, "mtype", json_integer(t->mtype)) ||
	    set(o, "data", json_string(hex))) {
		free(hex);
		json_decref(o);
		return NULL;
	}
	free(hex);
	return o;
}

/* strings_to_json - an array of strings */
static json_t *
strings_to_json(char *const *v, size_t n)
{
	json_t *a;
	size_t i;

	if ((a = json_array()) == NULL)
		return NULL;
	for (i = 0; i < n; i++) {
		if (json_array_append_new(a, jstr(v[i])) != 0) {
			json_decref(a);
			return NULL;
		}
	}
	return a;
}

/* host_to_json - one MX host decision */
static json_t *
host_to_json(const struct danests_host *h)
{
	json_t *o, *tl, *t;
	size_t i;

	if ((o = json_object()) == NULL)
		return NULL;
	if (set(o, "name", jstr(h->name)) ||
	    set(o, "priority", json_integer(h->priority)) ||
	    set(o, "policy", json_string(danests_policy_name(h->policy))) ||
	    set(o, "reason", jstr(danests_reason_name(h->reason))) ||
	    set(o, "mx_insecure", json_boolean(h->mx_insecure)))
		goto fail;
	if ((tl = json_array()) == NULL || set(o, "tlsa", tl))
		goto fail;
	for (i = 0; i < h->ntlsa; i++) {
		if ((t = tlsa_to_json(&h->tlsa[i])) == NULL ||
		    json_array_append_new(tl, t) != 0)
			goto fail;
	}
	if (set(o, "addr_security",
	    json_string(danests_dnssec_name(h->addr_security))) ||
	    set(o, "tlsa_security", h->tlsa_base == NULL ? json_null() :
	    json_string(danests_dnssec_name(h->tlsa_security))) ||
	    set(o, "tlsa_base", jstr(h->tlsa_base)) ||
	    set(o, "addresses", strings_to_json(h->addrs, h->naddrs)) ||
	    set(o, "unusable_tlsa", json_integer((json_int_t)h->nunusable)))
		goto fail;
	return o;
fail:
	json_decref(o);
	return NULL;
}

/* sts_to_json - the MTA-STS part, or null */
static json_t *
sts_to_json(const struct danests_sts *s)
{
	json_t *o;

	if (s == NULL)
		return json_null();
	if ((o = json_object()) == NULL)
		return NULL;
	if (set(o, "mode", json_string(danests_sts_mode_name(s->policy.mode))) ||
	    set(o, "id", jstr(s->id)) ||
	    set(o, "max_age", json_integer(s->policy.max_age)) ||
	    set(o, "mx", strings_to_json(s->policy.mx, s->policy.nmx)) ||
	    set(o, "source", jstr(s->source)) ||
	    set(o, "fetched", json_integer((json_int_t)s->fetched)) ||
	    set(o, "expires", json_integer((json_int_t)s->expires)) ||
	    set(o, "error", jstr(s->error))) {
		json_decref(o);
		return NULL;
	}
	return o;
}

/* danests_decision_to_json - one line of compact JSON, keys in contract
 * order; the caller frees the string */
char *
danests_decision_to_json(const struct danests_decision *d)
{
	json_t *o, *hosts, *h;
	char *text;
	size_t i;

	if (d == NULL || (o = json_object()) == NULL)
		return NULL;
	if (set(o, "domain", jstr(d->domain)) ||
	    set(o, "verdict", json_string(danests_verdict_name(d->verdict))) ||
	    set(o, "reason", jstr(danests_reason_name(d->reason))) ||
	    set(o, "mx_security",
	    json_string(danests_dnssec_name(d->mx_security))) ||
	    set(o, "implicit_mx", json_boolean(d->implicit_mx)) ||
	    set(o, "sts", sts_to_json(d->sts)))
		goto fail;
	if ((hosts = json_array()) == NULL || set(o, "hosts", hosts))
		goto fail;
	for (i = 0; i < d->nhosts; i++) {
		if ((h = host_to_json(&d->hosts[i])) == NULL ||
		    json_array_append_new(hosts, h) != 0)
			goto fail;
	}
	if (set(o, "mx_cname", jstr(d->mx_cname)) ||
	    set(o, "sts_error", jstr(d->sts_error)) ||
	    set(o, "decided", json_integer((json_int_t)d->decided)) ||
	    set(o, "expires", json_integer((json_int_t)d->expires)) ||
	    set(o, "from_cache", json_boolean(d->from_cache)))
		goto fail;
	text = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
	json_decref(o);
	return text;
fail:
	json_decref(o);
	return NULL;
}

/*
 * Reading.  Every getter returns 0 or -1 and leaves why set; the caller
 * turns -1 into DANESTS_PERM.
 */

struct rd {
	char *why;
	size_t whylen;
};

/* member - a required member of any type */
static json_t *
member(struct rd *r, json_t *o, const char *key)
{
	json_t *v;

	if ((v = json_object_get(o, key)) == NULL)
		why_set(r->why, r->whylen, "missing \"%s\"", key);
	return v;
}

/* get_str - a required string (or null when nullable), copied */
static int
get_str(struct rd *r, json_t *o, const char *key, bool nullable,
    size_t max, char **out)
{
	json_t *v;
	size_t len;

	*out = NULL;
	if ((v = member(r, o, key)) == NULL)
		return -1;
	if (json_is_null(v) && nullable)
		return 0;
	if (!json_is_string(v)) {
		why_set(r->why, r->whylen, "\"%s\": expected a string%s", key,
		    nullable ? " or null" : "");
		return -1;
	}
	len = json_string_length(v);
	if (len > max || strlen(json_string_value(v)) != len) {
		why_set(r->why, r->whylen, "\"%s\": bad length", key);
		return -1;
	}
	if ((*out = strdup(json_string_value(v))) == NULL) {
		why_set(r->why, r->whylen, "out of memory");
		return -1;
	}
	return 0;
}

/* get_int - a required integer within [min, max] */
static int
get_int(struct rd *r, json_t *o, const char *key, json_int_t min,
    json_int_t max, json_int_t *out)
{
	json_t *v;

	if ((v = member(r, o, key)) == NULL)
		return -1;
	if (!json_is_integer(v) || json_integer_value(v) < min ||
	    json_integer_value(v) > max) {
		why_set(r->why, r->whylen, "\"%s\": expected an integer from "
		    "%lld to %lld", key, (long long)min, (long long)max);
		return -1;
	}
	*out = json_integer_value(v);
	return 0;
}

/* get_time - a required unix time */
static int
get_time(struct rd *r, json_t *o, const char *key, time_t *out)
{
	json_int_t n;

	/* time_t is 64 bits on every platform this builds on */
	if (get_int(r, o, key, 0, (json_int_t)1 << 40, &n) != 0)
		return -1;
	*out = (time_t)n;
	return 0;
}

/* get_bool - a required boolean */
static int
get_bool(struct rd *r, json_t *o, const char *key, bool *out)
{
	json_t *v;

	if ((v = member(r, o, key)) == NULL)
		return -1;
	if (!json_is_boolean(v)) {
		why_set(r->why, r->whylen, "\"%s\": expected a boolean", key);
		return -1;
	}
	*out = json_is_true(v);
	return 0;
}

/* get_enum - a required string that names one of n values of name_fn;
 * null accepted (returns 1) when nullable */
static int
get_enum(struct rd *r, json_t *o, const char *key, const char *(*name_fn)(int),
    int n, bool nullable, int *out)
{
	json_t *v;
	int i;

	if ((v = member(r, o, key)) == NULL)
		return -1;
	if (json_is_null(v) && nullable)
		return 1;
	if (json_is_string(v)) {
		for (i = 0; i < n; i++) {
			if (strcmp(json_string_value(v), name_fn(i)) == 0) {
				*out = i;
				return 0;
			}
		}
	}
	why_set(r->why, r->whylen, "\"%s\": unknown value", key);
	return -1;
}

/* adapters from the public name functions to get_enum's signature */
static const char *verdict_name(int i) { return danests_verdict_name(i); }
static const char *dnssec_name(int i) { return danests_dnssec_name(i); }
static const char *policy_name(int i) { return danests_policy_name(i); }
static const char *mode_name(int i) { return danests_sts_mode_name(i); }

/* get_reason - a reason code by its name, or null (DANESTS_R_NONE) */
static int
get_reason(struct rd *r, json_t *o, const char *key, danests_reason *out)
{
	json_t *v;

	*out = DANESTS_R_NONE;
	if ((v = member(r, o, key)) == NULL)
		return -1;
	if (json_is_null(v))
		return 0;
	if (json_is_string(v) && reason_from_name(json_string_value(v), out))
		return 0;
	why_set(r->why, r->whylen, "\"%s\": unknown reason code", key);
	return -1;
}

/* get_strings - a required array of strings, copied */
static int
get_strings(struct rd *r, json_t *o, const char *key, char ***out,
    size_t *n)
{
	json_t *a, *v;
	size_t i;

	*out = NULL;
	*n = 0;
	if ((a = member(r, o, key)) == NULL)
		return -1;
	if (!json_is_array(a)) {
		why_set(r->why, r->whylen, "\"%s\": expected an array", key);
		return -1;
	}
	if (json_array_size(a) == 0)
		return 0;
	if ((*out = xcalloc(json_array_size(a), sizeof(**out))) == NULL) {
		why_set(r->why, r->whylen, "out of memory");
		return -1;
	}
	json_array_foreach(a, i, v) {
		if (!json_is_string(v) || json_string_length(v) >
		    DANESTS_NAME_MAX ||
		    strlen(json_string_value(v)) != json_string_length(v)) {
			why_set(r->why, r->whylen, "\"%s\": expected strings",
			    key);
			return -1;
		}
		if (((*out)[i] = strdup(json_string_value(v))) == NULL) {
			why_set(r->why, r->whylen, "out of memory");
			return -1;
		}
		(*n)++;
	}
	return 0;
}

/* tlsa_from_json - one TLSA record */
static int
tlsa_from_json(struct rd *r, json_t *o, struct danests_tlsa *t)
{
	json_int_t n;
	json_t *v;
	const char *hex;
	size_t len, i;
	int hi, lo;

	if (!json_is_object(o)) {
		why_set(r->why, r->whylen, "\"tlsa\": expected objects");
		return -1;
	}
	if (get_int(r, o, "usage", 0, 255, &n) != 0)
		return -1;
	t->usage = (uint8_t)n;
	if (get_int(r, o, "selector", 0, 255, &n) != 0)
		return -1;
	t->selector = (uint8_t)n;
	if (get_int(r, o, "mtype", 0, 255, &n) != 0)
		return -1;
	t->mtype = (uint8_t)n;
	if ((v = member(r, o, "data")) == NULL)
		return -1;
	if (!json_is_string(v) || (len = json_string_length(v)) % 2 != 0 ||
	    len / 2 > JSON_TLSA_MAX) {
		why_set(r->why, r->whylen, "\"data\": expected hex");
		return -1;
	}
	hex = json_string_value(v);
	if ((t->data = malloc(len / 2 + 1)) == NULL) {
		why_set(r->why, r->whylen, "out of memory");
		return -1;
	}
	for (i = 0; i < len / 2; i++) {
		if ((hi = hex_value(hex[2 * i])) < 0 ||
		    (lo = hex_value(hex[2 * i + 1])) < 0) {
			why_set(r->why, r->whylen, "\"data\": expected hex");
			return -1;
		}
		t->data[i] = (unsigned char)(hi << 4 | lo);
	}
	t->len = len / 2;
	return 0;
}

/* host_from_json - one host decision into h (zeroed by the caller) */
static int
host_from_json(struct rd *r, json_t *o, struct danests_host *h)
{
	json_t *a, *v;
	json_int_t n;
	size_t i;
	int e, rc;

	if (!json_is_object(o)) {
		why_set(r->why, r->whylen, "\"hosts\": expected objects");
		return -1;
	}
	if (get_str(r, o, "name", false, DANESTS_NAME_MAX, &h->name) != 0 ||
	    get_int(r, o, "priority", 0, 65535, &n) != 0)
		return -1;
	h->priority = (int)n;
	if (get_enum(r, o, "policy", policy_name, DANESTS_POLICY_SKIP + 1,
	    false, &e) != 0)
		return -1;
	h->policy = (danests_policy)e;
	if (get_reason(r, o, "reason", &h->reason) != 0 ||
	    get_bool(r, o, "mx_insecure", &h->mx_insecure) != 0)
		return -1;
	if ((a = member(r, o, "tlsa")) == NULL)
		return -1;
	if (!json_is_array(a)) {
		why_set(r->why, r->whylen, "\"tlsa\": expected an array");
		return -1;
	}
	if (json_array_size(a) > 0) {
		h->tlsa = xcalloc(json_array_size(a), sizeof(*h->tlsa));
		if (h->tlsa == NULL) {
			why_set(r->why, r->whylen, "out of memory");
			return -1;
		}
		json_array_foreach(a, i, v) {
			/* count first: a half-read record is freed too */
			h->ntlsa++;
			if (tlsa_from_json(r, v, &h->tlsa[i]) != 0)
				return -1;
		}
	}
	if (get_enum(r, o, "addr_security", dnssec_name,
	    DANESTS_SEC_INDETERMINATE + 1, false, &e) != 0)
		return -1;
	h->addr_security = (danests_dnssec)e;
	if ((rc = get_enum(r, o, "tlsa_security", dnssec_name,
	    DANESTS_SEC_INDETERMINATE + 1, true, &e)) < 0)
		return -1;
	if (get_str(r, o, "tlsa_base", true, DANESTS_NAME_MAX,
	    &h->tlsa_base) != 0)
		return -1;
	/* both null (no TLSA lookup) or both set */
	if ((rc == 1) != (h->tlsa_base == NULL)) {
		why_set(r->why, r->whylen,
		    "\"tlsa_security\" and \"tlsa_base\" disagree");
		return -1;
	}
	h->tlsa_security = rc == 1 ? DANESTS_SEC_INDETERMINATE :
	    (danests_dnssec)e;
	if (get_strings(r, o, "addresses", &h->addrs, &h->naddrs) != 0 ||
	    get_int(r, o, "unusable_tlsa", 0, 65535, &n) != 0)
		return -1;
	h->nunusable = (size_t)n;
	return 0;
}

/* sts_from_json - the MTA-STS object into a new struct */
static int
sts_from_json(struct rd *r, json_t *o, struct danests_sts **out)
{
	struct danests_sts *s;
	json_int_t n;
	char *id = NULL, *src = NULL;
	size_t i;
	int e;

	if (json_is_null(o))
		return 0;
	if (!json_is_object(o)) {
		why_set(r->why, r->whylen, "\"sts\": expected an object or null");
		return -1;
	}
	if ((s = *out = xcalloc(1, sizeof(*s))) == NULL) {
		why_set(r->why, r->whylen, "out of memory");
		return -1;
	}
	if (get_enum(r, o, "mode", mode_name, DANESTS_STS_ENFORCE + 1, false,
	    &e) != 0)
		return -1;
	s->policy.mode = (danests_sts_mode)e;
	if (get_str(r, o, "id", false, DANESTS_STS_ID_MAX, &id) != 0)
		return -1;
	for (i = 0; id[i] != '\0'; i++)
		if (!((id[i] >= '0' && id[i] <= '9') ||
		    (id[i] >= 'a' && id[i] <= 'z') ||
		    (id[i] >= 'A' && id[i] <= 'Z')))
			break;
	if (i == 0 || id[i] != '\0') {
		why_set(r->why, r->whylen, "\"id\": not 1-32 alphanumerics");
		free(id);
		return -1;
	}
	strlcpy(s->id, id, sizeof(s->id));
	free(id);
	if (get_int(r, o, "max_age", 0, DANESTS_STS_MAX_AGE_MAX, &n) != 0)
		return -1;
	s->policy.max_age = (uint32_t)n;
	if (get_strings(r, o, "mx", &s->policy.mx, &s->policy.nmx) != 0)
		return -1;
	if (get_str(r, o, "source", false, 16, &src) != 0)
		return -1;
	if (strcmp(src, STS_FETCHED) == 0)
		s->source = STS_FETCHED;
	else if (strcmp(src, STS_CACHE) == 0)
		s->source = STS_CACHE;
	free(src);
	if (s->source == NULL) {
		why_set(r->why, r->whylen, "\"source\": unknown value");
		return -1;
	}
	if (get_time(r, o, "fetched", &s->fetched) != 0 ||
	    get_time(r, o, "expires", &s->expires) != 0 ||
	    get_str(r, o, "error", true, JSON_STR_MAX, &s->error) != 0)
		return -1;
	return 0;
}

/* decision_from_json - fill d (zeroed) from the object o */
static int
decision_from_json(struct rd *r, json_t *o, struct danests_decision *d)
{
	json_t *a, *v;
	size_t i;
	int e;

	if (!json_is_object(o)) {
		why_set(r->why, r->whylen, "expected an object");
		return -1;
	}
	if (get_str(r, o, "domain", false, DANESTS_NAME_MAX, &d->domain) != 0)
		return -1;
	if (*d->domain == '\0') {
		why_set(r->why, r->whylen, "\"domain\": empty");
		return -1;
	}
	if (get_enum(r, o, "verdict", verdict_name, DANESTS_PERMFAIL + 1,
	    false, &e) != 0)
		return -1;
	d->verdict = (danests_verdict)e;
	if (get_reason(r, o, "reason", &d->reason) != 0)
		return -1;
	if (get_enum(r, o, "mx_security", dnssec_name,
	    DANESTS_SEC_INDETERMINATE + 1, false, &e) != 0)
		return -1;
	d->mx_security = (danests_dnssec)e;
	if (get_bool(r, o, "implicit_mx", &d->implicit_mx) != 0)
		return -1;
	if ((v = member(r, o, "sts")) == NULL || sts_from_json(r, v, &d->sts))
		return -1;
	if ((a = member(r, o, "hosts")) == NULL)
		return -1;
	if (!json_is_array(a)) {
		why_set(r->why, r->whylen, "\"hosts\": expected an array");
		return -1;
	}
	if (json_array_size(a) > 0) {
		d->hosts = xcalloc(json_array_size(a), sizeof(*d->hosts));
		if (d->hosts == NULL) {
			why_set(r->why, r->whylen, "out of memory");
			return -1;
		}
		json_array_foreach(a, i, v) {
			d->nhosts++;
			if (host_from_json(r, v, &d->hosts[i]) != 0)
				return -1;
		}
	}
	if (get_str(r, o, "mx_cname", true, DANESTS_NAME_MAX,
	    &d->mx_cname) != 0 ||
	    get_str(r, o, "sts_error", true, JSON_STR_MAX, &d->sts_error) != 0 ||
	    get_time(r, o, "decided", &d->decided) != 0 ||
	    get_time(r, o, "expires", &d->expires) != 0 ||
	    get_bool(r, o, "from_cache", &d->from_cache) != 0)
		return -1;
	return 0;
}

/* danests_decision_from_json - parse the text of danests_decision_to_json;
 * DANESTS_PERM with why for anything malformed or unknown, DANESTS_TEMP
 * when out of memory */
danests_status
danests_decision_from_json(const char *text, struct danests_decision **out)
{
	struct danests_decision *d;
	json_error_t err;
	json_t *o;
	char why[DANESTS_WHY_MAX] = "";
	struct rd r = { why, sizeof(why) };
	size_t len;

	*out = NULL;
	if (text == NULL || (len = strnlen(text, JSON_TEXT_MAX + 1)) >
	    JSON_TEXT_MAX)
		return DANESTS_PERM;
	if ((o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &err)) == NULL)
		return DANESTS_PERM;
	if ((d = xcalloc(1, sizeof(*d))) == NULL) {
		json_decref(o);
		return DANESTS_TEMP;
	}
	if (decision_from_json(&r, o, d) != 0) {
		json_decref(o);
		danests_decision_free(d);
		return strcmp(why, "out of memory") == 0 ? DANESTS_TEMP :
		    DANESTS_PERM;
	}
	json_decref(o);
	*out = d;
	return DANESTS_OK;
}
