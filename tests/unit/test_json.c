/*
 * test_json.c - decisions to JSON and back (json.c)
 *
 * Decisions are built by hand in several shapes, rendered, checked field by
 * field through jansson, read back and compared member by member with the
 * original.  Broken texts are made by mutating one member of a good text.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "danests-internal.h"

#define NELEM(a) (sizeof(a) / sizeof((a)[0]))

/* Builders: everything malloc'ed so danests_decision_free releases it. */

/* mk_decision - a decision with n zeroed hosts */
static struct danests_decision *
mk_decision(const char *domain, danests_verdict v, danests_reason reason,
    danests_dnssec mxsec, size_t nhosts)
{
	struct danests_decision *d;

	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	d->domain = strdup(domain);
	d->verdict = v;
	d->reason = reason;
	d->mx_security = mxsec;
	d->decided = 1700000000;
	d->expires = 1700000300;
	d->nhosts = nhosts;
	if (nhosts > 0) {
		d->hosts = calloc(nhosts, sizeof(*d->hosts));
		assert_non_null(d->hosts);
	}
	return d;
}

/* set_host - fill host i */
static struct danests_host *
set_host(struct danests_decision *d, size_t i, const char *name, int prio,
    danests_policy p, danests_reason reason, danests_dnssec addrsec)
{
	struct danests_host *h = &d->hosts[i];

	h->name = strdup(name);
	h->priority = prio;
	h->policy = p;
	h->reason = reason;
	h->addr_security = addrsec;
	return h;
}

/* add_addr - append one textual address */
static void
add_addr(struct danests_host *h, const char *a)
{
	h->addrs = realloc(h->addrs, (h->naddrs + 1) * sizeof(*h->addrs));
	assert_non_null(h->addrs);
	h->addrs[h->naddrs++] = strdup(a);
}

/* add_tlsa - append one record with len bytes of a pattern */
static void
add_tlsa(struct danests_host *h, uint8_t u, uint8_t s, uint8_t m, size_t len,
    unsigned char seed)
{
	struct danests_tlsa *t;
	size_t i;

	h->tlsa = realloc(h->tlsa, (h->ntlsa + 1) * sizeof(*h->tlsa));
	assert_non_null(h->tlsa);
	t = &h->tlsa[h->ntlsa++];
	t->usage = u;
	t->selector = s;
	t->mtype = m;
	t->len = len;
	t->data = malloc(len);
	assert_non_null(t->data);
	for (i = 0; i < len; i++)
		t->data[i] = (unsigned char)(seed + i * 37);
}

/* mk_sts - attach an MTA-STS part */
static struct danests_sts *
mk_sts(struct danests_decision *d, danests_sts_mode mode, const char *id,
    const char *source, const char *error, const char **mx, size_t nmx)
{
	struct danests_sts *s;
	size_t i;

	s = calloc(1, sizeof(*s));
	assert_non_null(s);
	s->policy.mode = mode;
	s->policy.max_age = 86400;
	s->policy.nmx = nmx;
	s->policy.mx = calloc(nmx ? nmx : 1, sizeof(char *));
	for (i = 0; i < nmx; i++)
		s->policy.mx[i] = strdup(mx[i]);
	strlcpy(s->id, id, sizeof(s->id));
	s->source = source;
	s->fetched = 1699990000;
	s->expires = 1699990000 + 86400;
	s->error = error ? strdup(error) : NULL;
	d->sts = s;
	return s;
}

/* shape_permfail - null MX: no hosts at all */
static struct danests_decision *
shape_permfail(void)
{
	return mk_decision("null-mx.test", DANESTS_PERMFAIL, DANESTS_R_NULL_MX,
	    DANESTS_SEC_SECURE, 0);
}

/* shape_dane - DANE host with two records, a bogus-TLSA host skipped */
static struct danests_decision *
shape_dane(void)
{
	struct danests_decision *d;
	struct danests_host *h;

	d = mk_decision("dane-ee.test", DANESTS_DELIVER, DANESTS_R_OK,
	    DANESTS_SEC_SECURE, 2);
	d->mx_cname = strdup("real.dane-ee.test");
	h = set_host(d, 0, "mx.dane-ee.test", 10, DANESTS_POLICY_DANE, DANESTS_R_DANE,
	    DANESTS_SEC_SECURE);
	h->tlsa_security = DANESTS_SEC_SECURE;
	h->tlsa_base = strdup("target.dane-ee.test");
	h->nunusable = 1;
	add_addr(h, "127.10.2.1");
	add_addr(h, "2001:db8::25");
	add_tlsa(h, 3, 1, 1, 32, 0xab);
	add_tlsa(h, 2, 0, 2, 64, 0x0f);
	h = set_host(d, 1, "mx2.dane-ee.test", 20, DANESTS_POLICY_SKIP,
	    DANESTS_R_TLSA_INVALID, DANESTS_SEC_SECURE);
	h->tlsa_security = DANESTS_SEC_BOGUS;
	h->tlsa_base = strdup("mx2.dane-ee.test");
	add_addr(h, "127.10.2.2");
	return d;
}

/* shape_sts - enforce policy from the cache with a refresh error */
static struct danests_decision *
shape_sts(void)
{
	static const char *mx[] = { "mx.sts-wild.test", "*.sts-wild.test" };
	struct danests_decision *d;
	struct danests_host *h;

	d = mk_decision("sts-wild.test", DANESTS_DELIVER, DANESTS_R_OK,
	    DANESTS_SEC_INSECURE, 2);
	mk_sts(d, DANESTS_STS_ENFORCE, "20240101T000000", "cache",
	    "sts-policy-fetch-error: HTTP 404", mx, NELEM(mx));
	h = set_host(d, 0, "mx1.sts-wild.test", 10,
	    DANESTS_POLICY_STS_ENFORCE, DANESTS_R_STS_MX_MATCH, DANESTS_SEC_INSECURE);
	add_addr(h, "127.10.2.1");
	h = set_host(d, 1, "a.b.sts-wild.test", 20, DANESTS_POLICY_SKIP,
	    DANESTS_R_STS_MX_MISMATCH, DANESTS_SEC_INSECURE);
	add_addr(h, "127.10.2.1");
	return d;
}

/* shape_skip - tempfail, implicit MX, every host skipped, cached */
static struct danests_decision *
shape_skip(void)
{
	struct danests_decision *d;
	struct danests_host *h;

	d = mk_decision("implicit.test", DANESTS_TEMPFAIL, DANESTS_R_NO_USABLE_HOST,
	    DANESTS_SEC_SECURE, 3);
	d->implicit_mx = true;
	d->from_cache = true;
	d->sts_error = strdup("sts-policy-invalid: max_age out of range");
	h = set_host(d, 0, "implicit.test", 0, DANESTS_POLICY_SKIP,
	    DANESTS_R_DNSSEC_INVALID, DANESTS_SEC_BOGUS);
	h = set_host(d, 1, "b.implicit.test", 0, DANESTS_POLICY_SKIP,
	    DANESTS_R_NO_ADDRESS, DANESTS_SEC_SECURE);
	h = set_host(d, 2, "c.implicit.test", 5, DANESTS_POLICY_SKIP,
	    DANESTS_R_DNS_TIMEOUT, DANESTS_SEC_INDETERMINATE);
	h->mx_insecure = true;
	(void)h;
	return d;
}

/* shape_misc - encrypt, testing, may; a fetched testing policy */
static struct danests_decision *
shape_misc(void)
{
	static const char *mx[] = { "mx.sts-testing.test" };
	struct danests_decision *d;
	struct danests_host *h;

	d = mk_decision("sts-testing.test", DANESTS_DELIVER, DANESTS_R_OK,
	    DANESTS_SEC_INDETERMINATE, 3);
	mk_sts(d, DANESTS_STS_TESTING, "a1", "fetched", NULL, mx, NELEM(mx));
	h = set_host(d, 0, "mx.sts-testing.test", 10, DANESTS_POLICY_ENCRYPT,
	    DANESTS_R_TLSA_UNUSABLE, DANESTS_SEC_SECURE);
	h->tlsa_security = DANESTS_SEC_SECURE;
	h->tlsa_base = strdup("mx.sts-testing.test");
	h->nunusable = 3;
	h->mx_insecure = true;
	h = set_host(d, 1, "mx2.sts-testing.test", 20,
	    DANESTS_POLICY_STS_TESTING, DANESTS_R_STS_TESTING, DANESTS_SEC_INSECURE);
	h->tlsa_security = DANESTS_SEC_INSECURE;
	h->tlsa_base = strdup("mx2.sts-testing.test");
	h = set_host(d, 2, "mx3.sts-testing.test", 65535, DANESTS_POLICY_MAY,
	    DANESTS_R_ADDR_INSECURE, DANESTS_SEC_INSECURE);
	add_addr(h, "::1");
	return d;
}

typedef struct danests_decision *shape_fn(void);
static shape_fn *const shapes[] = {
	shape_permfail, shape_dane, shape_sts, shape_skip, shape_misc,
};

/* Deep comparison. */

static void
cmp_str(const char *a, const char *b)
{
	if (a == NULL || b == NULL)
		assert_ptr_equal(a, b);
	else
		assert_string_equal(a, b);
}

static void
cmp_host(const struct danests_host *a, const struct danests_host *b)
{
	size_t i;

	cmp_str(a->name, b->name);
	assert_int_equal(a->priority, b->priority);
	assert_int_equal(a->policy, b->policy);
	assert_int_equal(a->reason, b->reason);
	assert_int_equal(a->mx_insecure, b->mx_insecure);
	assert_int_equal(a->addr_security, b->addr_security);
	cmp_str(a->tlsa_base, b->tlsa_base);
	if (a->tlsa_base != NULL)
		assert_int_equal(a->tlsa_security, b->tlsa_security);
	assert_int_equal(a->naddrs, b->naddrs);
	for (i = 0; i < a->naddrs; i++)
		cmp_str(a->addrs[i], b->addrs[i]);
	assert_int_equal(a->ntlsa, b->ntlsa);
	for (i = 0; i < a->ntlsa; i++) {
		assert_int_equal(a->tlsa[i].usage, b->tlsa[i].usage);
		assert_int_equal(a->tlsa[i].selector, b->tlsa[i].selector);
		assert_int_equal(a->tlsa[i].mtype, b->tlsa[i].mtype);
		assert_int_equal(a->tlsa[i].len, b->tlsa[i].len);
		assert_memory_equal(a->tlsa[i].data, b->tlsa[i].data,
		    a->tlsa[i].len);
	}
	assert_int_equal(a->nunusable, b->nunusable);
}

static void
cmp_decision(const struct danests_decision *a,
    const struct danests_decision *b)
{
	size_t i;

	cmp_str(a->domain, b->domain);
	assert_int_equal(a->verdict, b->verdict);
	assert_int_equal(a->reason, b->reason);
	assert_int_equal(a->mx_security, b->mx_security);
	assert_int_equal(a->implicit_mx, b->implicit_mx);
	cmp_str(a->mx_cname, b->mx_cname);
	cmp_str(a->sts_error, b->sts_error);
	assert_int_equal(a->decided, b->decided);
	assert_int_equal(a->expires, b->expires);
	assert_int_equal(a->from_cache, b->from_cache);
	assert_int_equal(a->sts == NULL, b->sts == NULL);
	if (a->sts != NULL) {
		assert_int_equal(a->sts->policy.mode, b->sts->policy.mode);
		assert_int_equal(a->sts->policy.max_age,
		    b->sts->policy.max_age);
		assert_int_equal(a->sts->policy.nmx, b->sts->policy.nmx);
		for (i = 0; i < a->sts->policy.nmx; i++)
			cmp_str(a->sts->policy.mx[i], b->sts->policy.mx[i]);
		assert_string_equal(a->sts->id, b->sts->id);
		cmp_str(a->sts->source, b->sts->source);
		assert_int_equal(a->sts->fetched, b->sts->fetched);
		assert_int_equal(a->sts->expires, b->sts->expires);
		cmp_str(a->sts->error, b->sts->error);
	}
	assert_int_equal(a->nhosts, b->nhosts);
	for (i = 0; i < a->nhosts; i++)
		cmp_host(&a->hosts[i], &b->hosts[i]);
}

/* keys_in_order - the object's keys are exactly keys[], in that order */
static void
keys_in_order(json_t *o, const char *const *keys, size_t n)
{
	void *it;
	size_t i = 0;

	assert_true(json_is_object(o));
	for (it = json_object_iter(o); it != NULL;
	    it = json_object_iter_next(o, it)) {
		assert_true(i < n);
		assert_string_equal(json_object_iter_key(it), keys[i]);
		i++;
	}
	assert_int_equal(i, n);
}

static const char *const top_keys[] = {
	"domain", "verdict", "reason", "mx_security", "implicit_mx", "sts",
	"hosts", "mx_cname", "sts_error", "decided", "expires", "from_cache",
};
static const char *const host_keys[] = {
	"name", "priority", "policy", "reason", "mx_insecure", "tlsa",
	"addr_security", "tlsa_security", "tlsa_base", "addresses",
	"unusable_tlsa",
};
static const char *const sts_keys[] = {
	"mode", "id", "max_age", "mx", "source", "fetched", "expires", "error",
};
static const char *const tlsa_keys[] = {
	"usage", "selector", "mtype", "data",
};

/* parse - to_json of d, parsed back by jansson */
static json_t *
parse(const struct danests_decision *d, char **textp)
{
	char *text;
	json_t *o;
	json_error_t err;

	text = danests_decision_to_json(d);
	assert_non_null(text);
	/* compact, one line */
	assert_null(strchr(text, '\n'));
	assert_null(strstr(text, "\": "));
	assert_null(strstr(text, ", \""));
	o = json_loads(text, JSON_REJECT_DUPLICATES, &err);
	assert_non_null(o);
	if (textp)
		*textp = text;
	else
		free(text);
	return o;
}

static const char *
sget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_non_null(v);
	assert_true(json_is_string(v));
	return json_string_value(v);
}

static json_int_t
iget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_non_null(v);
	assert_true(json_is_integer(v));
	return json_integer_value(v);
}

static bool
bget(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_non_null(v);
	assert_true(json_is_boolean(v));
	return json_is_true(v);
}

static void
isnull(json_t *o, const char *key)
{
	json_t *v = json_object_get(o, key);

	assert_non_null(v);
	assert_true(json_is_null(v));
}

/* test_key_order - every object has its keys in contract order */
static void
test_key_order(void **state)
{
	struct danests_decision *d;
	json_t *o, *h, *t;
	size_t i, j, k;

	(void)state;
	for (i = 0; i < NELEM(shapes); i++) {
		d = shapes[i]();
		o = parse(d, NULL);
		keys_in_order(o, top_keys, NELEM(top_keys));
		if (d->sts != NULL)
			keys_in_order(json_object_get(o, "sts"), sts_keys,
			    NELEM(sts_keys));
		json_array_foreach(json_object_get(o, "hosts"), j, h) {
			keys_in_order(h, host_keys, NELEM(host_keys));
			json_array_foreach(json_object_get(h, "tlsa"), k, t)
				keys_in_order(t, tlsa_keys, NELEM(tlsa_keys));
		}
		json_decref(o);
		danests_decision_free(d);
	}
}

/* test_permfail_fields - no hosts, null sts */
static void
test_permfail_fields(void **state)
{
	struct danests_decision *d = shape_permfail();
	json_t *o;

	(void)state;
	o = parse(d, NULL);
	assert_string_equal(sget(o, "domain"), "null-mx.test");
	assert_string_equal(sget(o, "verdict"), "permfail");
	assert_string_equal(sget(o, "reason"), "null-mx");
	assert_string_equal(sget(o, "mx_security"), "secure");
	assert_false(bget(o, "implicit_mx"));
	isnull(o, "sts");
	isnull(o, "mx_cname");
	isnull(o, "sts_error");
	assert_true(json_is_array(json_object_get(o, "hosts")));
	assert_int_equal(json_array_size(json_object_get(o, "hosts")), 0);
	assert_int_equal(iget(o, "decided"), 1700000000);
	assert_int_equal(iget(o, "expires"), 1700000300);
	assert_false(bget(o, "from_cache"));
	json_decref(o);
	danests_decision_free(d);
}

/* test_dane_fields - TLSA records as lower-case hex, host extensions */
static void
test_dane_fields(void **state)
{
	struct danests_decision *d = shape_dane();
	json_t *o, *h, *t, *a;
	char *text, hex[129];
	size_t i;

	(void)state;
	o = parse(d, &text);
	/* no upper-case hex anywhere in the text */
	for (i = 0; text[i]; i++)
		assert_false(text[i] >= 'A' && text[i] <= 'F');
	free(text);
	assert_string_equal(sget(o, "verdict"), "deliver");
	assert_string_equal(sget(o, "mx_cname"), "real.dane-ee.test");
	h = json_array_get(json_object_get(o, "hosts"), 0);
	assert_string_equal(sget(h, "name"), "mx.dane-ee.test");
	assert_int_equal(iget(h, "priority"), 10);
	assert_string_equal(sget(h, "policy"), "dane");
	assert_string_equal(sget(h, "reason"), "dane-tlsa");
	assert_false(bget(h, "mx_insecure"));
	assert_string_equal(sget(h, "addr_security"), "secure");
	assert_string_equal(sget(h, "tlsa_security"), "secure");
	assert_string_equal(sget(h, "tlsa_base"), "target.dane-ee.test");
	assert_int_equal(iget(h, "unusable_tlsa"), 1);
	a = json_object_get(h, "addresses");
	assert_int_equal(json_array_size(a), 2);
	assert_string_equal(json_string_value(json_array_get(a, 1)),
	    "2001:db8::25");
	assert_int_equal(json_array_size(json_object_get(h, "tlsa")), 2);
	t = json_array_get(json_object_get(h, "tlsa"), 0);
	assert_int_equal(iget(t, "usage"), 3);
	assert_int_equal(iget(t, "selector"), 1);
	assert_int_equal(iget(t, "mtype"), 1);
	for (i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x",
		    (unsigned char)(0xab + i * 37));
	assert_string_equal(sget(t, "data"), hex);
	t = json_array_get(json_object_get(h, "tlsa"), 1);
	assert_int_equal(strlen(sget(t, "data")), 128);
	h = json_array_get(json_object_get(o, "hosts"), 1);
	assert_string_equal(sget(h, "policy"), "skip");
	assert_string_equal(sget(h, "reason"), "tlsa-invalid");
	assert_string_equal(sget(h, "tlsa_security"), "bogus");
	assert_int_equal(json_array_size(json_object_get(h, "tlsa")), 0);
	json_decref(o);
	danests_decision_free(d);
}

/* test_sts_fields - the policy object */
static void
test_sts_fields(void **state)
{
	struct danests_decision *d = shape_sts();
	json_t *o, *s, *h, *mx;

	(void)state;
	o = parse(d, NULL);
	assert_string_equal(sget(o, "mx_security"), "insecure");
	s = json_object_get(o, "sts");
	assert_string_equal(sget(s, "mode"), "enforce");
	assert_string_equal(sget(s, "id"), "20240101T000000");
	assert_int_equal(iget(s, "max_age"), 86400);
	assert_string_equal(sget(s, "source"), "cache");
	assert_int_equal(iget(s, "fetched"), 1699990000);
	assert_int_equal(iget(s, "expires"), 1699990000 + 86400);
	assert_string_equal(sget(s, "error"),
	    "sts-policy-fetch-error: HTTP 404");
	mx = json_object_get(s, "mx");
	assert_int_equal(json_array_size(mx), 2);
	assert_string_equal(json_string_value(json_array_get(mx, 1)),
	    "*.sts-wild.test");
	h = json_array_get(json_object_get(o, "hosts"), 0);
	assert_string_equal(sget(h, "policy"), "sts-enforce");
	assert_string_equal(sget(h, "reason"), "sts-mx-match");
	/* no TLSA lookup ran: both null */
	isnull(h, "tlsa_security");
	isnull(h, "tlsa_base");
	h = json_array_get(json_object_get(o, "hosts"), 1);
	assert_string_equal(sget(h, "reason"), "sts-mx-mismatch");
	json_decref(o);
	danests_decision_free(d);
}

/* test_skip_fields - implicit MX, sts_error, from_cache */
static void
test_skip_fields(void **state)
{
	static const struct {
		const char *policy, *reason, *addrsec;
		int prio;
		bool mx_insecure;
	} want[] = {
		{ "skip", "dnssec-invalid", "bogus", 0, false },
		{ "skip", "no-address", "secure", 0, false },
		{ "skip", "dns-timeout", "indeterminate", 5, true },
	};
	struct danests_decision *d = shape_skip();
	json_t *o, *h;
	size_t i;

	(void)state;
	o = parse(d, NULL);
	assert_string_equal(sget(o, "verdict"), "tempfail");
	assert_string_equal(sget(o, "reason"), "no-usable-host");
	assert_true(bget(o, "implicit_mx"));
	assert_true(bget(o, "from_cache"));
	isnull(o, "sts");
	assert_string_equal(sget(o, "sts_error"),
	    "sts-policy-invalid: max_age out of range");
	assert_int_equal(json_array_size(json_object_get(o, "hosts")),
	    NELEM(want));
	for (i = 0; i < NELEM(want); i++) {
		h = json_array_get(json_object_get(o, "hosts"), i);
		assert_string_equal(sget(h, "policy"), want[i].policy);
		assert_string_equal(sget(h, "reason"), want[i].reason);
		assert_string_equal(sget(h, "addr_security"), want[i].addrsec);
		assert_int_equal(iget(h, "priority"), want[i].prio);
		assert_int_equal(bget(h, "mx_insecure"), want[i].mx_insecure);
		assert_int_equal(json_array_size(json_object_get(h,
		    "addresses")), 0);
	}
	json_decref(o);
	danests_decision_free(d);
}

/* test_roundtrip - from_json(to_json(d)) equals d, and renders the same */
static void
test_roundtrip(void **state)
{
	struct danests_decision *d, *back;
	char *text, *again;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(shapes); i++) {
		d = shapes[i]();
		text = danests_decision_to_json(d);
		assert_non_null(text);
		assert_int_equal(danests_decision_from_json(text, &back),
		    DANESTS_OK);
		assert_non_null(back);
		cmp_decision(d, back);
		again = danests_decision_to_json(back);
		assert_non_null(again);
		assert_string_equal(text, again);
		free(again);
		free(text);
		danests_decision_free(back);
		danests_decision_free(d);
	}
}

/* test_reason_static - reasons come back as the same codes */
static void
test_reason_static(void **state)
{
	struct danests_decision *d = shape_dane(), *back;
	char *text;

	(void)state;
	text = danests_decision_to_json(d);
	assert_int_equal(danests_decision_from_json(text, &back), DANESTS_OK);
	assert_int_equal(back->reason, DANESTS_R_OK);
	assert_int_equal(back->hosts[0].reason, DANESTS_R_DANE);
	assert_int_equal(back->hosts[1].reason, DANESTS_R_TLSA_INVALID);
	free(text);
	danests_decision_free(back);
	danests_decision_free(d);
}

/* test_not_utf8 - an error text with stray bytes still renders */
static void
test_not_utf8(void **state)
{
	struct danests_decision *d = shape_permfail();
	json_t *o;

	(void)state;
	d->sts_error = strdup("bad \xff\xfe body");
	o = parse(d, NULL);
	assert_string_equal(sget(o, "sts_error"), "bad ?? body");
	json_decref(o);
	danests_decision_free(d);
}

/* Mutations of a good text: path of the member, new value (JSON text, or
 * NULL to delete the member). */
static const struct {
	const char *path;
	const char *value;
} bad_members[] = {
	{ "domain", NULL },
	{ "domain", "1" },
	{ "domain", "null" },
	{ "domain", "\"\"" },
	{ "verdict", "\"bounce\"" },
	{ "verdict", "0" },
	{ "verdict", NULL },
	{ "reason", "\"no-such-reason\"" },
	{ "reason", "7" },
	{ "mx_security", "\"maybe\"" },
	{ "mx_security", "null" },
	{ "implicit_mx", "1" },
	{ "implicit_mx", "\"true\"" },
	{ "sts", "[]" },
	{ "sts", "\"enforce\"" },
	{ "sts", NULL },
	{ "sts.mode", "\"strict\"" },
	{ "sts.mode", NULL },
	{ "sts.id", "\"\"" },
	{ "sts.id", "\"has space\"" },
	{ "sts.id", "\"123456789012345678901234567890123\"" },
	{ "sts.max_age", "31557601" },
	{ "sts.max_age", "-1" },
	{ "sts.max_age", "1.5" },
	{ "sts.mx", "\"mx.example\"" },
	{ "sts.mx", "[1]" },
	{ "sts.source", "\"disk\"" },
	{ "sts.fetched", "\"now\"" },
	{ "sts.expires", "-5" },
	{ "sts.error", "false" },
	{ "hosts", "{}" },
	{ "hosts", "null" },
	{ "hosts", "[1]" },
	{ "hosts.0.name", NULL },
	{ "hosts.0.name", "null" },
	{ "hosts.0.priority", "65536" },
	{ "hosts.0.priority", "-1" },
	{ "hosts.0.priority", "\"10\"" },
	{ "hosts.0.policy", "\"dane-only\"" },
	{ "hosts.0.policy", "\"DANE\"" },
	{ "hosts.0.reason", "\"\"" },
	{ "hosts.0.mx_insecure", "null" },
	{ "hosts.0.tlsa", "null" },
	{ "hosts.0.tlsa", "[\"3 1 1 ab\"]" },
	{ "hosts.0.tlsa.0.usage", "256" },
	{ "hosts.0.tlsa.0.selector", "-1" },
	{ "hosts.0.tlsa.0.mtype", "\"1\"" },
	{ "hosts.0.tlsa.0.data", "\"abc\"" },
	{ "hosts.0.tlsa.0.data", "\"zz\"" },
	{ "hosts.0.tlsa.0.data", "12" },
	{ "hosts.0.tlsa.0.data", NULL },
	{ "hosts.0.addr_security", "\"unknown\"" },
	{ "hosts.0.tlsa_security", "\"sure\"" },
	{ "hosts.0.tlsa_security", "null" },	/* base set, security not */
	{ "hosts.0.tlsa_base", "null" },	/* security set, base not */
	{ "hosts.0.tlsa_base", "3" },
	{ "hosts.0.addresses", "\"127.0.0.1\"" },
	{ "hosts.0.addresses", "[null]" },
	{ "hosts.0.unusable_tlsa", "-1" },
	{ "hosts.0.unusable_tlsa", NULL },
	{ "mx_cname", "false" },
	{ "mx_cname", NULL },
	{ "sts_error", "[]" },
	{ "decided", "\"yesterday\"" },
	{ "decided", "-1" },
	{ "expires", NULL },
	{ "from_cache", "0" },
};

/* mutate - set or delete the member at path ("a.0.b") of o */
static void
mutate(json_t *o, const char *path, const char *value)
{
	char buf[128], *p, *dot;
	json_t *cur = o, *v;
	json_error_t err;

	strlcpy(buf, path, sizeof(buf));
	p = buf;
	while ((dot = strchr(p, '.')) != NULL) {
		*dot = '\0';
		if (json_is_array(cur))
			cur = json_array_get(cur, strtoul(p, NULL, 10));
		else
			cur = json_object_get(cur, p);
		assert_non_null(cur);
		p = dot + 1;
	}
	assert_true(json_is_object(cur));
	assert_non_null(json_object_get(cur, p));
	if (value == NULL) {
		assert_int_equal(json_object_del(cur, p), 0);
		return;
	}
	v = json_loads(value, JSON_DECODE_ANY, &err);
	assert_non_null(v);
	assert_int_equal(json_object_set_new(cur, p, v), 0);
}

/* test_bad_members - each broken member is rejected as DANESTS_PERM */
static void
test_bad_members(void **state)
{
	struct danests_decision *base[2], *out;
	char *good, *bad;
	json_t *o;
	json_error_t err;
	size_t i, k;

	(void)state;
	/* the dane shape has TLSA records; the sts shape has a policy */
	base[0] = shape_dane();
	base[1] = shape_sts();
	for (i = 0; i < NELEM(bad_members); i++) {
		k = strncmp(bad_members[i].path, "sts.", 4) == 0 ? 1 : 0;
		good = danests_decision_to_json(base[k]);
		assert_non_null(good);
		o = json_loads(good, 0, &err);
		assert_non_null(o);
		mutate(o, bad_members[i].path, bad_members[i].value);
		bad = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
		assert_non_null(bad);
		out = (struct danests_decision *)0x1;
		if (danests_decision_from_json(bad, &out) != DANESTS_PERM)
			fail_msg("accepted %s = %s: %s", bad_members[i].path,
			    bad_members[i].value ? bad_members[i].value :
			    "(deleted)", bad);
		assert_null(out);
		json_decref(o);
		free(bad);
		free(good);
	}
	danests_decision_free(base[0]);
	danests_decision_free(base[1]);
}

/* test_bad_texts - texts that are not a decision at all */
static void
test_bad_texts(void **state)
{
	static const char *texts[] = {
		"",
		"not json",
		"null",
		"[]",
		"{}",
		"\"domain\"",
		"{\"domain\":\"a.test\"}",
		"{\"domain\":\"a.test\",\"domain\":\"b.test\"}",
	};
	struct danests_decision *d, *out;
	char *good, *bad;
	size_t i;

	(void)state;
	for (i = 0; i < NELEM(texts); i++) {
		out = NULL;
		assert_int_equal(danests_decision_from_json(texts[i], &out),
		    DANESTS_PERM);
		assert_null(out);
	}
	assert_int_equal(danests_decision_from_json(NULL, &out), DANESTS_PERM);

	/* a good text cut short or followed by garbage */
	d = shape_dane();
	good = danests_decision_to_json(d);
	assert_non_null(good);
	bad = strdup(good);
	bad[strlen(bad) / 2] = '\0';
	assert_int_equal(danests_decision_from_json(bad, &out), DANESTS_PERM);
	free(bad);
	assert_true(asprintf(&bad, "%s {}", good) > 0);
	assert_int_equal(danests_decision_from_json(bad, &out), DANESTS_PERM);
	free(bad);
	/* an unknown extra member is tolerated (fields are only added) */
	assert_true(asprintf(&bad, "{\"future\":1,%s", good + 1) > 0);
	assert_int_equal(danests_decision_from_json(bad, &out), DANESTS_OK);
	cmp_decision(d, out);
	danests_decision_free(out);
	free(bad);
	free(good);
	danests_decision_free(d);
}

/* test_free_null - freeing nothing is fine; NULL renders nothing */
static void
test_free_null(void **state)
{
	(void)state;
	danests_decision_free(NULL);
	assert_null(danests_decision_to_json(NULL));
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_key_order),
		cmocka_unit_test(test_permfail_fields),
		cmocka_unit_test(test_dane_fields),
		cmocka_unit_test(test_sts_fields),
		cmocka_unit_test(test_skip_fields),
		cmocka_unit_test(test_roundtrip),
		cmocka_unit_test(test_reason_static),
		cmocka_unit_test(test_not_utf8),
		cmocka_unit_test(test_bad_members),
		cmocka_unit_test(test_bad_texts),
		cmocka_unit_test(test_free_null),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
