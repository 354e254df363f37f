/*
 * report.c - TLS reporting (RFC 8460): results counted in the shared
 * cache, read back per (UTC day, policy domain), and the sending state
 *
 * Counters live in the cache's "tlsrpt" database (cache.c), one record
 * per key:
 *
 *   DAY ' ' DOMAIN NUL 'P' H		a policy: its type, strings, the
 *					success and failure counts, the
 *					number of details, the failures
 *					past the details cap
 *   DAY ' ' DOMAIN NUL 'D' H G		one failure detail of policy H:
 *					its fields and its count
 *
 * DAY is "YYYY-MM-DD" (UTC), so keys sort by day, then domain.  H and G
 * are 64-bit hashes (8 bytes, big-endian) of the policy's (type, policy
 * string, mx host) and of the detail's fields, which keeps keys short
 * (LMDB: 511 bytes at most) whatever the strings; the record holds the
 * strings themselves and is compared on every use, and on a collision the
 * next of RPT_PROBES seeds is tried.  Slots are taken in seed order and a
 * policy is never deleted alone, so the first free slot ends a search.
 *
 * One result is one write transaction: read the policy (and detail),
 * add one, write back, commit.  LMDB serialises writers across processes,
 * so concurrent recorders add up, and a process killed before its commit
 * leaves nothing of its result, after it all of it.  (LMDB shows a commit
 * to readers once its meta page is written and the reader table updated;
 * a writer killed between the two leaves a commit that the next write
 * transaction of any process publishes, so a read right after such a
 * kill may miss that one result until then.)
 *
 * The sending state lives in "tlsrpt_state": 'S' DAY ' ' DOMAIN for a
 * (day, domain), 'T' H for a rua target (hash of the URI, the URI in the
 * record, probed as above).
 *
 * Records are little-endian, strings with 16-bit lengths, no NUL.
 */
#include "danests-internal.h"
#include "danests-report.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define RPT_PROBES	4	/* seeds tried before a collision is an error */
#define DAY_LEN		10	/* "YYYY-MM-DD" */
/* DAY ' ' DOMAIN NUL 'D' H G */
#define KEY_MAX		(DAY_LEN + 1 + DANESTS_NAME_MAX + 1 + 1 + 16)
#define URI_MAX		511	/* as struct danests_tlsrpt_record's rua */
#define NFIELDS		5	/* strings of a detail */

/* danests_rpt_policy_type_name - see danests-report.h */
const char *
danests_rpt_policy_type_name(danests_rpt_policy_type t)
{
	switch (t) {
	case DANESTS_RPT_TLSA:
		return "tlsa";
	case DANESTS_RPT_STS:
		return "sts";
	case DANESTS_RPT_NO_POLICY:
		return "no-policy-found";
	}
	return NULL;
}

/* ---- encoding ---- */

/* Records are built into a buffer with a cursor. */
struct enc {
	unsigned char *p;
	size_t len, cap;
	bool bad;
};

static void
enc_bytes(struct enc *e, const void *b, size_t n)
{
	if (e->bad || n > e->cap - e->len) {
		e->bad = true;
		return;
	}
	memcpy(e->p + e->len, b, n);
	e->len += n;
}

static void
enc_u(struct enc *e, uint64_t v, int n)
{
	unsigned char b[8];
	int i;

	for (i = 0; i < n; i++)
		b[i] = (unsigned char)(v >> (8 * i));
	enc_bytes(e, b, (size_t)n);
}

/* Records are read with a cursor too. */
struct dec {
	const unsigned char *p;
	size_t len, off;
	bool bad;
};

static uint64_t
dec_u(struct dec *d, int n)
{
	uint64_t v = 0;
	int i;

	if (d->bad || (size_t)n > d->len - d->off) {
		d->bad = true;
		return 0;
	}
	for (i = 0; i < n; i++)
		v |= (uint64_t)d->p[d->off + i] << (8 * i);
	d->off += (size_t)n;
	return v;
}

/* dec_str - n bytes as a string (malloc'ed into *out) */
static void
dec_str(struct dec *d, size_t n, char **out)
{
	*out = NULL;
	if (d->bad || n > d->len - d->off ||
	    memchr(d->p + d->off, '\0', n) != NULL ||
	    (*out = strndup((const char *)d->p + d->off, n)) == NULL) {
		d->bad = true;
		return;
	}
	d->off += n;
}

/* hash64 - FNV-1a over a seed and length-prefixed strings */
static uint64_t
hash64(unsigned seed, const char *const *s, size_t n, unsigned tag)
{
	uint64_t h = 0xcbf29ce484222325ULL;
	unsigned char b;
	size_t i, j, len;

#define MIX(x) do { h ^= (unsigned char)(x); h *= 0x100000001b3ULL; } \
	while (0)
	MIX(seed);
	MIX(tag);
	for (i = 0; i < n; i++) {
		len = strlen(s[i]);
		for (j = 0; j < 4; j++)
			MIX(len >> (8 * j));
		for (j = 0; j < len; j++) {
			b = (unsigned char)s[i][j];
			MIX(b);
		}
	}
#undef MIX
	return h;
}

static void
put_be64(unsigned char *p, uint64_t v)
{
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(v >> (56 - 8 * i));
}

/* ---- validation ---- */

/* field_ok - NULL, or printable ASCII of at most max bytes (lines joined
 * by '\n' when lines: none empty) */
static bool
field_ok(const char *s, size_t max, bool lines)
{
	size_t n;

	if (s == NULL)
		return true;
	for (n = 0; s[n] != '\0'; n++) {
		if (n >= max)
			return false;
		if (lines && s[n] == '\n') {
			if (n == 0 || s[n + 1] == '\n' || s[n + 1] == '\0')
				return false;
			continue;
		}
		if (s[n] < 0x20 || s[n] > 0x7e)
			return false;
	}
	return true;
}

/* day_of - "YYYY-MM-DD" of a time (UTC); -1 out of range */
static int
day_of(time_t t, char day[DAY_LEN + 1])
{
	struct tm tm;

	if (t < 0 || gmtime_r(&t, &tm) == NULL || tm.tm_year + 1900 > 9999 ||
	    strftime(day, DAY_LEN + 1, "%Y-%m-%d", &tm) != DAY_LEN)
		return -1;
	return 0;
}

/* day_ok - a well-formed "YYYY-MM-DD" that names a real date */
static bool
day_ok(const char *s)
{
	static const int mdays[] = { 31, 29, 31, 30, 31, 30, 31, 31, 30, 31,
	    30, 31 };
	int y, m, d, i;

	if (s == NULL || strlen(s) != DAY_LEN || s[4] != '-' || s[7] != '-')
		return false;
	for (i = 0; i < DAY_LEN; i++)
		if (i != 4 && i != 7 && (s[i] < '0' || s[i] > '9'))
			return false;
	y = atoi(s);
	m = atoi(s + 5);
	d = atoi(s + 8);
	if (y < 1970 || m < 1 || m > 12 || d < 1 || d > mdays[m - 1])
		return false;
	return !(m == 2 && d == 29 &&
	    !((y % 4 == 0 && y % 100 != 0) || y % 400 == 0));
}

/* prefix_make - DAY ' ' DOMAIN NUL; its length, or 0 for bad arguments
 * (domain normalised into dom) */
static size_t
prefix_make(const char *day, const char *domain, char *key,
    char dom[DANESTS_NAME_MAX], char *why, size_t whylen)
{
	size_t n;

	if (!day_ok(day)) {
		why_set(why, whylen, "report: bad day %.20s (expected a date "
		    "YYYY-MM-DD)", day ? day : "(none)");
		return 0;
	}
	if (domain == NULL || danests_domain_normalize(domain, dom,
	    DANESTS_NAME_MAX) != DANESTS_OK) {
		why_set(why, whylen, "report: bad policy domain %.255s",
		    domain ? domain : "(none)");
		return 0;
	}
	n = strlen(dom);
	memcpy(key, day, DAY_LEN);
	key[DAY_LEN] = ' ';
	memcpy(key + DAY_LEN + 1, dom, n + 1);
	return DAY_LEN + 1 + n + 1;
}

/* ---- the records ---- */

/* A policy record, decoded (strings malloc'ed). */
struct prec {
	danests_rpt_policy_type type;
	uint64_t success, failure, dropped;
	uint32_t ndetails;
	char *pstr, *mx;
	unsigned char hash[8];	/* of its key */
};

/* A detail record, decoded. */
struct drec {
	danests_result_type rt;
	uint64_t count;
	char *f[NFIELDS];
	unsigned char phash[8];	/* its policy's */
};

static void
prec_clear(struct prec *p)
{
	free(p->pstr);
	free(p->mx);
	p->pstr = p->mx = NULL;
}

static void
drec_clear(struct drec *d)
{
	int i;

	for (i = 0; i < NFIELDS; i++) {
		free(d->f[i]);
		d->f[i] = NULL;
	}
}

/* prec_decode - a policy record; -1 malformed */
static int
prec_decode(const unsigned char *v, size_t len, struct prec *p)
{
	struct dec d = { v, len, 0, false };
	size_t ls, lm;

	memset(p, 0, sizeof(*p));
	if (dec_u(&d, 1) != 'P')
		return -1;
	p->type = (danests_rpt_policy_type)dec_u(&d, 1);
	p->success = dec_u(&d, 8);
	p->failure = dec_u(&d, 8);
	p->ndetails = (uint32_t)dec_u(&d, 4);
	p->dropped = dec_u(&d, 8);
	ls = (size_t)dec_u(&d, 2);
	lm = (size_t)dec_u(&d, 2);
	dec_str(&d, ls, &p->pstr);
	dec_str(&d, lm, &p->mx);
	if (d.bad || d.off != len ||
	    danests_rpt_policy_type_name(p->type) == NULL) {
		prec_clear(p);
		return -1;
	}
	return 0;
}

/* prec_encode - into buf (at least PREC_MAX); the length, 0 on error */
#define PREC_MAX (34 + 2 * DANESTS_RPT_STRING_MAX)
static size_t
prec_encode(const struct prec *p, unsigned char *buf)
{
	struct enc e = { buf, 0, PREC_MAX, false };
	size_t ls = strlen(p->pstr), lm = strlen(p->mx);

	enc_u(&e, 'P', 1);
	enc_u(&e, (uint64_t)p->type, 1);
	enc_u(&e, p->success, 8);
	enc_u(&e, p->failure, 8);
	enc_u(&e, p->ndetails, 4);
	enc_u(&e, p->dropped, 8);
	enc_u(&e, ls, 2);
	enc_u(&e, lm, 2);
	enc_bytes(&e, p->pstr, ls);
	enc_bytes(&e, p->mx, lm);
	return e.bad ? 0 : e.len;
}

/* drec_decode - a detail record; -1 malformed */
static int
drec_decode(const unsigned char *v, size_t len, struct drec *r)
{
	struct dec d = { v, len, 0, false };
	size_t l[NFIELDS];
	int i;

	memset(r, 0, sizeof(*r));
	if (dec_u(&d, 1) != 'D')
		return -1;
	r->rt = (danests_result_type)dec_u(&d, 1);
	r->count = dec_u(&d, 8);
	for (i = 0; i < NFIELDS; i++)
		l[i] = (size_t)dec_u(&d, 2);
	for (i = 0; i < NFIELDS; i++)
		dec_str(&d, l[i], &r->f[i]);
	if (d.bad || d.off != len || danests_result_type_name(r->rt) == NULL) {
		drec_clear(r);
		return -1;
	}
	return 0;
}

#define DREC_MAX (20 + NFIELDS * DANESTS_RPT_FIELD_MAX)
static size_t
drec_encode(const struct drec *r, unsigned char *buf)
{
	struct enc e = { buf, 0, DREC_MAX, false };
	int i;

	enc_u(&e, 'D', 1);
	enc_u(&e, (uint64_t)r->rt, 1);
	enc_u(&e, r->count, 8);
	for (i = 0; i < NFIELDS; i++)
		enc_u(&e, strlen(r->f[i]), 2);
	for (i = 0; i < NFIELDS; i++)
		enc_bytes(&e, r->f[i], strlen(r->f[i]));
	return e.bad ? 0 : e.len;
}

/* add1 - count one more, saturating */
static uint64_t
add1(uint64_t v)
{
	return v == UINT64_MAX ? v : v + 1;
}

/* ---- recording ---- */

/* One result being recorded, normalised. */
struct rec_arg {
	char key[KEY_MAX];	/* the prefix, then room for the rest */
	size_t plen;
	danests_rpt_policy_type type;
	const char *pstr, *mx;	/* never NULL */
	bool success;
	danests_result_type rt;
	const char *f[NFIELDS];	/* never NULL */
	uint64_t n;		/* how many (1; more from the injector) */
};

/* rec_txn - the write transaction of one result (see the top) */
static danests_status
rec_txn(void *varg, struct cache_rtxn *t, char *why, size_t whylen)
{
	struct rec_arg *a = varg;
	const char *ps[3] = { danests_rpt_policy_type_name(a->type), a->pstr,
	    a->mx };
	const unsigned char *v;
	unsigned char pbuf[PREC_MAX], dbuf[DREC_MAX];
	struct prec p;
	struct drec d;
	size_t len, pklen, dklen;
	danests_status st;
	unsigned seed;
	int fi;
	uint64_t i;
	bool have = false;

	/* the policy */
	memset(&p, 0, sizeof(p));
	a->key[a->plen] = 'P';
	pklen = a->plen + 1 + 8;
	for (seed = 0; seed < RPT_PROBES; seed++) {
		put_be64((unsigned char *)a->key + a->plen + 1,
		    hash64(seed, ps, 3, 'P'));
		st = cache_rpt_get(t, CACHE_RDB_COUNTERS, a->key, pklen, &v,
		    &len, why, whylen);
		if (st == DANESTS_NOTFOUND)
			break;
		if (st != DANESTS_OK)
			return st;
		if (prec_decode(v, len, &p) < 0) {
			why_set(why, whylen, "cache: corrupt report entry "
			    "for %s", a->key);
			return DANESTS_TEMP;
		}
		if (p.type == a->type && strcmp(p.pstr, a->pstr) == 0 &&
		    strcmp(p.mx, a->mx) == 0) {
			have = true;
			break;
		}
		prec_clear(&p);
	}
	if (seed == RPT_PROBES) {
		why_set(why, whylen, "report: %s: too many colliding "
		    "policies", a->key);
		return DANESTS_TEMP;
	}
	if (!have) {
		memset(&p, 0, sizeof(p));
		p.type = a->type;
		if ((p.pstr = strdup(a->pstr)) == NULL ||
		    (p.mx = strdup(a->mx)) == NULL) {
			prec_clear(&p);
			why_set(why, whylen, "report: out of memory");
			return DANESTS_TEMP;
		}
	}
	for (i = 0; i < a->n; i++) {
		if (a->success)
			p.success = add1(p.success);
		else
			p.failure = add1(p.failure);
	}

	/* the detail, under this policy's key */
	st = DANESTS_OK;
	if (!a->success) {
		const char *ds[NFIELDS + 1] = { danests_result_type_name(a->rt),
		    a->f[0], a->f[1], a->f[2], a->f[3], a->f[4] };

		/* DAY ' ' DOMAIN NUL 'D' H G: H is in place already */
		a->key[a->plen] = 'D';
		dklen = pklen + 8;
		have = false;
		memset(&d, 0, sizeof(d));
		for (seed = 0; seed < RPT_PROBES; seed++) {
			put_be64((unsigned char *)a->key + pklen,
			    hash64(seed, ds, NFIELDS + 1, 'D'));
			st = cache_rpt_get(t, CACHE_RDB_COUNTERS, a->key,
			    dklen, &v, &len, why, whylen);
			if (st == DANESTS_NOTFOUND)
				break;
			if (st != DANESTS_OK)
				goto out;
			if (drec_decode(v, len, &d) < 0) {
				why_set(why, whylen, "cache: corrupt report "
				    "entry for %s", a->key);
				st = DANESTS_TEMP;
				goto out;
			}
			if (d.rt == a->rt && strcmp(d.f[0], a->f[0]) == 0 &&
			    strcmp(d.f[1], a->f[1]) == 0 &&
			    strcmp(d.f[2], a->f[2]) == 0 &&
			    strcmp(d.f[3], a->f[3]) == 0 &&
			    strcmp(d.f[4], a->f[4]) == 0) {
				have = true;
				break;
			}
			drec_clear(&d);
		}
		st = DANESTS_OK;
		if (!have && (seed == RPT_PROBES ||
		    p.ndetails >= DANESTS_RPT_DETAILS_MAX)) {
			/* counted in the summary only */
			for (i = 0; i < a->n; i++)
				p.dropped = add1(p.dropped);
		} else {
			if (!have) {
				d.rt = a->rt;
				d.count = 0;
				p.ndetails++;
				for (fi = 0; fi < NFIELDS; fi++)
					d.f[fi] = (char *)a->f[fi];
			}
			for (i = 0; i < a->n; i++)
				d.count = add1(d.count);
			len = drec_encode(&d, dbuf);
			if (!have)
				memset(d.f, 0, sizeof(d.f));	/* borrowed */
			drec_clear(&d);
			if (len == 0) {
				why_set(why, whylen, "report: detail too "
				    "large");
				st = DANESTS_PERM;
				goto out;
			}
			if ((st = cache_rpt_put(t, CACHE_RDB_COUNTERS, a->key,
			    dklen, dbuf, len, why, whylen)) != DANESTS_OK)
				goto out;
		}
		a->key[a->plen] = 'P';
	}
	if ((len = prec_encode(&p, pbuf)) == 0) {
		why_set(why, whylen, "report: policy too large");
		st = DANESTS_PERM;
		goto out;
	}
	st = cache_rpt_put(t, CACHE_RDB_COUNTERS, a->key, pklen, pbuf, len,
	    why, whylen);
out:
	prec_clear(&p);
	return st;
}

/* report_check - validate and normalise a result into a; DANESTS_PERM
 * (why says what) when malformed */
static danests_status
report_check(const struct danests_rpt_result *r, struct rec_arg *a,
    char *why, size_t whylen)
{
	static const char *const names[NFIELDS] = { "sending-mta-ip",
	    "receiving-mx-hostname", "receiving-mx-helo", "receiving-ip",
	    "failure-reason-code" };
	char day[DAY_LEN + 1], dom[DANESTS_NAME_MAX];
	time_t when;
	int i;

	memset(a, 0, sizeof(*a));
	if (r == NULL) {
		why_set(why, whylen, "report: no result");
		return DANESTS_PERM;
	}
	when = r->when != 0 ? r->when : time(NULL);
	if (day_of(when, day) < 0) {
		why_set(why, whylen, "report: bad time %lld",
		    (long long)r->when);
		return DANESTS_PERM;
	}
	if ((a->plen = prefix_make(day, r->policy_domain, a->key, dom, why,
	    whylen)) == 0)
		return DANESTS_PERM;
	if (danests_rpt_policy_type_name(r->policy_type) == NULL) {
		why_set(why, whylen, "report: bad policy type %d",
		    (int)r->policy_type);
		return DANESTS_PERM;
	}
	a->type = r->policy_type;
	if (!field_ok(r->policy_string, DANESTS_RPT_STRING_MAX, true)) {
		why_set(why, whylen, "report: bad policy string (printable "
		    "lines, at most %d bytes)", DANESTS_RPT_STRING_MAX);
		return DANESTS_PERM;
	}
	if (!field_ok(r->mx_host, DANESTS_RPT_STRING_MAX, true)) {
		why_set(why, whylen, "report: bad mx host (printable lines, "
		    "at most %d bytes)", DANESTS_RPT_STRING_MAX);
		return DANESTS_PERM;
	}
	a->pstr = r->policy_string ? r->policy_string : "";
	a->mx = r->mx_host ? r->mx_host : "";
	a->success = r->success;
	a->n = 1;
	for (i = 0; i < NFIELDS; i++)
		a->f[i] = "";
	if (r->success) {
		if (r->result_type != DANESTS_RT_NONE) {
			why_set(why, whylen, "report: a success with a "
			    "result type");
			return DANESTS_PERM;
		}
		return DANESTS_OK;
	}
	if (danests_result_type_name(r->result_type) == NULL) {
		why_set(why, whylen, "report: a failure needs a result type "
		    "(got %d)", (int)r->result_type);
		return DANESTS_PERM;
	}
	a->rt = r->result_type;
	a->f[0] = r->sending_mta_ip;
	a->f[1] = r->receiving_mx_hostname;
	a->f[2] = r->receiving_mx_helo;
	a->f[3] = r->receiving_ip;
	a->f[4] = r->additional_info;
	for (i = 0; i < NFIELDS; i++) {
		if (!field_ok(a->f[i], DANESTS_RPT_FIELD_MAX, false)) {
			why_set(why, whylen, "report: bad %s (printable, at "
			    "most %d bytes)", names[i], DANESTS_RPT_FIELD_MAX);
			return DANESTS_PERM;
		}
		if (a->f[i] == NULL)
			a->f[i] = "";
	}
	return DANESTS_OK;
}

/* report_record_n - count a result n times in one transaction (the
 * injector of the tests; adapters record one at a time) */
danests_status
report_record_n(struct danests_cache *dc, const struct danests_rpt_result *r,
    uint64_t n, char *why, size_t whylen)
{
	struct rec_arg a;
	danests_status st;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (dc == NULL) {
		why_set(why, whylen, "report: no cache");
		return DANESTS_TEMP;
	}
	if ((st = report_check(r, &a, why, whylen)) != DANESTS_OK)
		return st;
	a.n = n;
	return cache_rpt_run(cache_view_inner(dc), true, rec_txn, &a, why,
	    whylen);
}

/* danests_report_record - see danests-report.h */
danests_status
danests_report_record(struct danests_cache *dc,
    const struct danests_rpt_result *r, char *why, size_t whylen)
{
	return report_record_n(dc, r, 1, why, whylen);
}

/* danests_ctx_report - see danests-report.h */
danests_status
danests_ctx_report(struct danests_ctx *ctx, const struct danests_rpt_result *r,
    char *why, size_t whylen)
{
	struct rec_arg a;
	danests_status st;

	if (ctx == NULL || ctx->cache == NULL || !ctx->cfg.report.enabled) {
		why_set(why, whylen, "report: %s", ctx == NULL ||
		    ctx->cache == NULL ? "no cache" : "tls_reports is off");
		return DANESTS_NOTFOUND;
	}
	if ((st = report_check(r, &a, why, whylen)) != DANESTS_OK)
		return st;
	return cache_rpt_run(ctx->cache, true, rec_txn, &a, why, whylen);
}

/* A burst of results (danests_report_record_many). */
struct many_arg {
	struct rec_arg *a;
	size_t n;
};

/* many_txn - every result of a burst in one write transaction */
static danests_status
many_txn(void *varg, struct cache_rtxn *t, char *why, size_t whylen)
{
	struct many_arg *m = varg;
	danests_status st;
	size_t i;

	for (i = 0; i < m->n; i++)
		if ((st = rec_txn(&m->a[i], t, why, whylen)) != DANESTS_OK)
			return st;
	return DANESTS_OK;
}

/* report_many - check a burst, then count what is well-formed in one
 * transaction of c */
static danests_status
report_many(struct cache *c, const struct danests_rpt_result *r, size_t n,
    size_t *nrefused, char *why, size_t whylen)
{
	char rwhy[DANESTS_WHY_MAX];
	struct many_arg m;
	danests_status st;
	size_t i, bad = 0;

	if (nrefused != NULL)
		*nrefused = 0;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (n > DANESTS_RPT_BATCH_MAX || (n > 0 && r == NULL)) {
		why_set(why, whylen, "report: more than %d results at once",
		    DANESTS_RPT_BATCH_MAX);
		return DANESTS_PERM;
	}
	if (n == 0)
		return DANESTS_OK;
	if ((m.a = xcalloc(n, sizeof(*m.a))) == NULL) {
		why_set(why, whylen, "report: out of memory");
		return DANESTS_TEMP;
	}
	m.n = 0;
	for (i = 0; i < n; i++) {
		if (report_check(&r[i], &m.a[m.n], rwhy, sizeof(rwhy)) ==
		    DANESTS_OK)
			m.n++;
		else if (bad++ == 0)
			why_set(why, whylen, "%s", rwhy);
	}
	if (nrefused != NULL)
		*nrefused = bad;
	st = m.n == 0 ? DANESTS_OK : cache_rpt_run(c, true, many_txn, &m,
	    rwhy, sizeof(rwhy));
	if (st != DANESTS_OK)
		why_set(why, whylen, "%s", rwhy);
	free(m.a);
	return st;
}

/* danests_report_record_many - see danests-report.h */
danests_status
danests_report_record_many(struct danests_cache *dc,
    const struct danests_rpt_result *r, size_t n, size_t *nrefused,
    char *why, size_t whylen)
{
	if (nrefused != NULL)
		*nrefused = 0;
	if (dc == NULL) {
		why_set(why, whylen, "report: no cache");
		return DANESTS_TEMP;
	}
	return report_many(cache_view_inner(dc), r, n, nrefused, why, whylen);
}

/* danests_ctx_report_many - see danests-report.h */
danests_status
danests_ctx_report_many(struct danests_ctx *ctx,
    const struct danests_rpt_result *r, size_t n, size_t *nrefused,
    char *why, size_t whylen)
{
	if (nrefused != NULL)
		*nrefused = 0;
	if (ctx == NULL || ctx->cache == NULL || !ctx->cfg.report.enabled) {
		why_set(why, whylen, "report: %s", ctx == NULL ||
		    ctx->cache == NULL ? "no cache" : "tls_reports is off");
		return DANESTS_NOTFOUND;
	}
	return report_many(ctx->cache, r, n, nrefused, why, whylen);
}

/* ---- the policy of a host ---- */

/* buf_add - append text to buf at *off; -1 when it does not fit */
static int
buf_add(char *buf, size_t buflen, size_t *off, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int
buf_add(char *buf, size_t buflen, size_t *off, const char *fmt, ...)
{
	va_list ap;
	int n;

	if (*off >= buflen)
		return -1;
	va_start(ap, fmt);
	n = vsnprintf(buf + *off, buflen - *off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= buflen - *off)
		return -1;
	*off += (size_t)n;
	return 0;
}

/* danests_report_policy - see danests-report.h */
danests_status
danests_report_policy(const struct danests_decision *d,
    const struct danests_host *host, struct danests_rpt_result *out,
    char *buf, size_t buflen)
{
	const struct danests_sts_policy *sp;
	size_t off = 0, mxoff, i, j;
	int bad = 0;

	if (d == NULL || host == NULL || out == NULL || buf == NULL ||
	    buflen == 0)
		return DANESTS_PERM;
	out->policy_domain = d->domain;
	out->policy_string = NULL;
	out->mx_host = NULL;
	out->policy_type = DANESTS_RPT_NO_POLICY;
	buf[0] = '\0';
	if (host->policy == DANESTS_POLICY_DANE) {
		/* RFC 8460 4.4: the TLSA records in presentation form */
		for (i = 0; i < host->ntlsa && !bad; i++) {
			const struct danests_tlsa *r = &host->tlsa[i];

			bad |= buf_add(buf, buflen, &off, "%s%u %u %u ",
			    i ? "\n" : "", r->usage, r->selector, r->mtype);
			for (j = 0; j < r->len && !bad; j++)
				bad |= buf_add(buf, buflen, &off, "%02X",
				    r->data[j]);
		}
		mxoff = ++off;
		bad |= off >= buflen;
		if (!bad)
			bad |= buf_add(buf, buflen, &off, "%s",
			    host->name ? host->name : "");
		if (bad)
			return DANESTS_PERM;
		out->policy_type = DANESTS_RPT_TLSA;
		out->policy_string = buf;
		out->mx_host = buf + mxoff;
		return DANESTS_OK;
	}
	if ((host->policy == DANESTS_POLICY_STS_ENFORCE ||
	    host->policy == DANESTS_POLICY_STS_TESTING) && d->sts != NULL) {
		/* the policy's lines (RFC 8461 3.2), then its patterns */
		sp = &d->sts->policy;
		bad |= buf_add(buf, buflen, &off, "version: STSv1\nmode: %s",
		    danests_sts_mode_name(sp->mode));
		for (i = 0; i < sp->nmx && !bad; i++)
			bad |= buf_add(buf, buflen, &off, "\nmx: %s",
			    sp->mx[i]);
		if (!bad)
			bad |= buf_add(buf, buflen, &off, "\nmax_age: %u",
			    (unsigned)sp->max_age);
		mxoff = ++off;
		bad |= off >= buflen;
		if (!bad)
			buf[mxoff] = '\0';
		for (i = 0; i < sp->nmx && !bad; i++)
			bad |= buf_add(buf, buflen, &off, "%s%s",
			    i ? "\n" : "", sp->mx[i]);
		if (bad)
			return DANESTS_PERM;
		out->policy_type = DANESTS_RPT_STS;
		out->policy_string = buf;
		out->mx_host = buf + mxoff;
		return DANESTS_OK;
	}
	return DANESTS_OK;
}

/* ---- reading back ---- */

/* One (day, domain) read out of a transaction. */
struct group {
	char day[DAY_LEN + 1];
	char domain[DANESTS_NAME_MAX];
	struct prec *p;
	size_t np, pcap;
	struct drec *d;
	size_t nd, dcap;
};

static void
group_clear(struct group *g)
{
	size_t i;

	for (i = 0; i < g->np; i++)
		prec_clear(&g->p[i]);
	for (i = 0; i < g->nd; i++)
		drec_clear(&g->d[i]);
	free(g->p);
	free(g->d);
	memset(g, 0, sizeof(*g));
}

/* key_split - the (day, domain) of a counters key, and the length of its
 * prefix; 0 when the key is not one of ours */
static size_t
key_split(const unsigned char *k, size_t klen, char *day, char *domain)
{
	const unsigned char *nul;
	size_t n;

	if (klen < DAY_LEN + 3 || k[DAY_LEN] != ' ' ||
	    (nul = memchr(k + DAY_LEN + 1, '\0', klen - DAY_LEN - 1)) == NULL)
		return 0;
	n = (size_t)(nul - (k + DAY_LEN + 1));
	if (n == 0 || n >= DANESTS_NAME_MAX)
		return 0;
	memcpy(day, k, DAY_LEN);
	day[DAY_LEN] = '\0';
	memcpy(domain, k + DAY_LEN + 1, n);
	domain[n] = '\0';
	return DAY_LEN + 1 + n + 1;
}

/* What a walk looks for, and where it is. */
struct walk_arg {
	const char *day;	/* NULL: every day */
	const char *domain;	/* normalised, or NULL */
	char from[KEY_MAX];	/* the next key to read from */
	size_t fromlen;
	struct group g;		/* the group found (np + nd > 0) */
	bool done;
};

/* walk_txn - read the next (day, domain) group at or after a->from that
 * matches the filter into a->g */
static danests_status
walk_txn(void *varg, struct cache_rtxn *t, char *why, size_t whylen)
{
	struct walk_arg *a = varg;
	struct group *g = &a->g;
	const unsigned char *k, *v;
	size_t klen, len, plen, n;
	char day[DAY_LEN + 1], dom[DANESTS_NAME_MAX];
	danests_status st;
	void *nb;
	int cmp;

	for (;;) {
		st = cache_rpt_seek(t, CACHE_RDB_COUNTERS, a->from,
		    a->fromlen, &k, &klen, &v, &len, why, whylen);
		if (st == DANESTS_NOTFOUND) {
			a->done = true;
			return DANESTS_OK;
		}
		if (st != DANESTS_OK)
			return st;
		if ((plen = key_split(k, klen, day, dom)) == 0) {
			why_set(why, whylen, "cache: corrupt report key");
			return DANESTS_TEMP;
		}
		if (a->day != NULL && strcmp(day, a->day) != 0) {
			a->done = true;	/* past the day */
			return DANESTS_OK;
		}
		if (a->domain == NULL || (cmp = strcmp(dom, a->domain)) == 0)
			break;
		/* another domain: on to the one asked for, or the next day */
		memcpy(a->from, day, DAY_LEN);
		a->from[DAY_LEN] = ' ';
		if (cmp < 0) {
			n = strlen(a->domain);
			memcpy(a->from + DAY_LEN + 1, a->domain, n + 1);
			a->fromlen = DAY_LEN + 1 + n + 1;
		} else {
			a->from[DAY_LEN] = ' ' + 1;
			a->fromlen = DAY_LEN + 1;
		}
	}
	/* the whole group, in this one snapshot */
	strlcpy(g->day, day, sizeof(g->day));
	strlcpy(g->domain, dom, sizeof(g->domain));
	memcpy(a->from, k, plen);
	a->fromlen = plen;
	for (;;) {
		st = cache_rpt_seek(t, CACHE_RDB_COUNTERS, a->from,
		    a->fromlen, &k, &klen, &v, &len, why, whylen);
		if (st == DANESTS_NOTFOUND)
			break;
		if (st != DANESTS_OK)
			return st;
		if (klen < plen || memcmp(k, a->from, plen) != 0)
			break;
		if (klen == plen + 9 && k[plen] == 'P') {
			if (g->np == g->pcap) {
				g->pcap = g->pcap ? 2 * g->pcap : 4;
				if ((nb = reallocarray(g->p, g->pcap,
				    sizeof(*g->p))) == NULL)
					goto nomem;
				g->p = nb;
			}
			if (prec_decode(v, len, &g->p[g->np]) < 0)
				goto corrupt;
			memcpy(g->p[g->np].hash, k + plen + 1, 8);
			g->np++;
		} else if (klen == plen + 17 && k[plen] == 'D') {
			if (g->nd == g->dcap) {
				g->dcap = g->dcap ? 2 * g->dcap : 16;
				if ((nb = reallocarray(g->d, g->dcap,
				    sizeof(*g->d))) == NULL)
					goto nomem;
				g->d = nb;
			}
			if (drec_decode(v, len, &g->d[g->nd]) < 0)
				goto corrupt;
			memcpy(g->d[g->nd].phash, k + plen + 1, 8);
			g->nd++;
		} else
			goto corrupt;
		/* the next key: this one and a NUL byte */
		if (klen + 1 > sizeof(a->from))
			goto corrupt;
		memcpy(a->from, k, klen);
		a->from[klen] = '\0';
		a->fromlen = klen + 1;
	}
	/* after this group: DAY ' ' DOMAIN '\1' sorts past its keys */
	a->from[plen - 1] = '\1';
	a->fromlen = plen;
	return DANESTS_OK;
corrupt:
	why_set(why, whylen, "cache: corrupt report entry for %s %s", g->day,
	    g->domain);
	return DANESTS_TEMP;
nomem:
	why_set(why, whylen, "report: out of memory");
	return DANESTS_TEMP;
}

/* prec_cmp - policies in a stable order: type, strings */
static int
prec_cmp(const void *va, const void *vb)
{
	const struct prec *a = va, *b = vb;
	int c;

	if (a->type != b->type)
		return a->type < b->type ? -1 : 1;
	if ((c = strcmp(a->pstr, b->pstr)) != 0)
		return c;
	return strcmp(a->mx, b->mx);
}

/* drec_cmp - details in a stable order: result type, fields */
static int
drec_cmp(const void *va, const void *vb)
{
	const struct drec *a = va, *b = vb;
	int c, i;

	if (a->rt != b->rt)
		return a->rt < b->rt ? -1 : 1;
	for (i = 0; i < NFIELDS; i++)
		if ((c = strcmp(a->f[i], b->f[i])) != 0)
			return c;
	return 0;
}

/* group_call - the public view of a group, passed to fn */
static int
group_call(struct group *g, danests_report_fn *fn, void *arg, int *stop)
{
	struct danests_rpt_policy *pol;
	struct danests_rpt_detail *det = NULL;
	struct danests_rpt_day dy;
	size_t i, j, k;

	if ((pol = xcalloc(g->np ? g->np : 1, sizeof(*pol))) == NULL ||
	    (g->nd && (det = xcalloc(g->nd, sizeof(*det))) == NULL)) {
		free(pol);
		return -1;
	}
	if (g->np > 1)
		qsort(g->p, g->np, sizeof(*g->p), prec_cmp);
	if (g->nd > 1)
		qsort(g->d, g->nd, sizeof(*g->d), drec_cmp);
	k = 0;
	for (i = 0; i < g->np; i++) {
		pol[i].policy_type = g->p[i].type;
		pol[i].policy_string = g->p[i].pstr;
		pol[i].mx_host = g->p[i].mx;
		pol[i].success = g->p[i].success;
		pol[i].failure = g->p[i].failure;
		pol[i].details = det != NULL ? det + k : NULL;
		for (j = 0; j < g->nd; j++) {
			if (memcmp(g->d[j].phash, g->p[i].hash, 8) != 0)
				continue;
			det[k].result_type = g->d[j].rt;
			det[k].sending_mta_ip = g->d[j].f[0];
			det[k].receiving_mx_hostname = g->d[j].f[1];
			det[k].receiving_mx_helo = g->d[j].f[2];
			det[k].receiving_ip = g->d[j].f[3];
			det[k].additional_info = g->d[j].f[4];
			det[k].count = g->d[j].count;
			k++;
			pol[i].ndetails++;
		}
		if (pol[i].ndetails == 0)
			pol[i].details = NULL;
	}
	memset(&dy, 0, sizeof(dy));
	memcpy(dy.day, g->day, sizeof(dy.day));
	dy.domain = g->domain;
	dy.npolicies = g->np;
	dy.policies = pol;
	*stop = fn(arg, &dy);
	free(det);
	free(pol);
	return 0;
}

/* danests_report_walk - see danests-report.h */
danests_status
danests_report_walk(struct danests_cache *dc, const char *day,
    const char *domain, danests_report_fn *fn, void *arg, char *why,
    size_t whylen)
{
	return report_walk(dc != NULL ? cache_view_inner(dc) : NULL, day,
	    domain, fn, arg, why, whylen);
}

/* report_walk - danests_report_walk of the internal cache.  One read
 * transaction per (day, domain), and fn called with none open (it may
 * write). */
danests_status
report_walk(struct cache *c, const char *day, const char *domain,
    danests_report_fn *fn, void *arg, char *why, size_t whylen)
{
	struct walk_arg *a;
	char dom[DANESTS_NAME_MAX];
	danests_status st = DANESTS_OK;
	int stop = 0;

	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if (c == NULL || fn == NULL) {
		why_set(why, whylen, "report: no cache");
		return DANESTS_TEMP;
	}
	if (day != NULL && !day_ok(day)) {
		why_set(why, whylen, "report: bad day %.20s (expected a date "
		    "YYYY-MM-DD)", day);
		return DANESTS_PERM;
	}
	if (domain != NULL && danests_domain_normalize(domain, dom,
	    sizeof(dom)) != DANESTS_OK) {
		why_set(why, whylen, "report: bad domain %.255s", domain);
		return DANESTS_PERM;
	}
	if ((a = xcalloc(1, sizeof(*a))) == NULL) {
		why_set(why, whylen, "report: out of memory");
		return DANESTS_TEMP;
	}
	a->day = day;
	a->domain = domain ? dom : NULL;
	if (day != NULL) {
		memcpy(a->from, day, DAY_LEN);
		a->from[DAY_LEN] = ' ';
		a->fromlen = DAY_LEN + 1;
		if (domain != NULL) {
			memcpy(a->from + DAY_LEN + 1, dom, strlen(dom) + 1);
			a->fromlen += strlen(dom) + 1;
		}
	}
	while (!stop) {
		st = cache_rpt_run(c, false, walk_txn, a, why, whylen);
		if (st != DANESTS_OK || a->done)
			break;
		if (group_call(&a->g, fn, arg, &stop) < 0) {
			why_set(why, whylen, "report: out of memory");
			st = DANESTS_TEMP;
			break;
		}
		group_clear(&a->g);
	}
	group_clear(&a->g);
	free(a);
	return st;
}

/* What a forget deletes. */
struct forget_arg {
	char day[DAY_LEN + 1];
	char key[KEY_MAX];	/* DAY ' ' DOMAIN NUL, or "" */
	size_t plen;
	size_t n;
};

/* forget_txn - delete the keys of one (day, domain), or every (day,
 * domain) and day state of days before day */
static danests_status
forget_txn(void *varg, struct cache_rtxn *t, char *why, size_t whylen)
{
	struct forget_arg *a = varg;
	const unsigned char *k, *v;
	unsigned char cur[KEY_MAX + 1], last[KEY_MAX];
	char day[DAY_LEN + 1], dom[DANESTS_NAME_MAX];
	size_t klen, len, plen, lastlen = 0;
	danests_status st;
	enum cache_rdb db;

	a->n = 0;
	if (a->plen != 0) {
		/* one (day, domain): its counters; its state stays, so that
		 * a late result never makes it sent twice */
		for (;;) {
			st = cache_rpt_seek(t, CACHE_RDB_COUNTERS, a->key,
			    a->plen, &k, &klen, &v, &len, why, whylen);
			if (st == DANESTS_NOTFOUND)
				break;
			if (st != DANESTS_OK)
				return st;
			if (klen < a->plen || memcmp(k, a->key, a->plen) != 0)
				break;
			memcpy(cur, k, klen);
			if ((st = cache_rpt_del(t, CACHE_RDB_COUNTERS, cur,
			    klen, why, whylen)) != DANESTS_OK)
				return st;
			a->n = 1;
		}
		return DANESTS_OK;
	}
	/* every day before a->day: counters, then the state of days */
	for (db = CACHE_RDB_COUNTERS; ; db = CACHE_RDB_STATE) {
		for (;;) {
			st = cache_rpt_seek(t, db, db == CACHE_RDB_STATE ?
			    "S" : "", db == CACHE_RDB_STATE ? 1 : 0, &k,
			    &klen, &v, &len, why, whylen);
			if (st == DANESTS_NOTFOUND)
				break;
			if (st != DANESTS_OK)
				return st;
			if (db == CACHE_RDB_STATE) {
				if (klen < 1 + DAY_LEN || k[0] != 'S' ||
				    memcmp(k + 1, a->day, DAY_LEN) >= 0)
					break;
			} else {
				if (klen < DAY_LEN ||
				    memcmp(k, a->day, DAY_LEN) >= 0)
					break;
				if ((plen = key_split(k, klen, day, dom)) == 0) {
					why_set(why, whylen, "cache: corrupt "
					    "report key");
					return DANESTS_TEMP;
				}
				if (lastlen != plen ||
				    memcmp(last, k, plen) != 0) {
					memcpy(last, k, plen);
					lastlen = plen;
					a->n++;
				}
			}
			if (klen > sizeof(cur)) {
				why_set(why, whylen, "cache: corrupt report "
				    "key");
				return DANESTS_TEMP;
			}
			memcpy(cur, k, klen);
			if ((st = cache_rpt_del(t, db, cur, klen, why,
			    whylen)) != DANESTS_OK)
				return st;
		}
		if (db == CACHE_RDB_STATE)
			break;
	}
	return DANESTS_OK;
}

/* danests_report_forget - see danests-report.h.  Deleting one (day,
 * domain) keeps its sending state (a result recorded late for that day
 * must not make the report go out twice); forgetting the days before a
 * day deletes their sending state too. */
danests_status
danests_report_forget(struct danests_cache *dc, const char *day,
    const char *domain, size_t *n, char *why, size_t whylen)
{
	struct forget_arg a;
	char dom[DANESTS_NAME_MAX];
	danests_status st;

	if (n != NULL)
		*n = 0;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	memset(&a, 0, sizeof(a));
	if (dc == NULL) {
		why_set(why, whylen, "report: no cache");
		return DANESTS_TEMP;
	}
	if (domain != NULL) {
		if ((a.plen = prefix_make(day, domain, a.key, dom, why,
		    whylen)) == 0)
			return DANESTS_PERM;
	} else if (!day_ok(day)) {
		why_set(why, whylen, "report: bad day %.20s (expected a date "
		    "YYYY-MM-DD)", day ? day : "(none)");
		return DANESTS_PERM;
	}
	memcpy(a.day, day, DAY_LEN + 1);
	st = cache_rpt_run(cache_view_inner(dc), true, forget_txn, &a, why,
	    whylen);
	if (st == DANESTS_OK && n != NULL)
		*n = a.n;
	return st;
}

/* ---- sending state ---- */

/* A state operation: key, record in or out. */
struct state_arg {
	char key[1 + KEY_MAX];
	size_t klen;
	const char *uri;	/* targets: the URI, checked in the record */
	unsigned char rec[64 + 2 * 512];
	size_t len;		/* of rec; put: to write; get: read */
	bool put;
};

/* state_key_day - 'S' DAY ' ' DOMAIN */
static danests_status
state_key_day(struct state_arg *a, const char *day, const char *domain,
    char *why, size_t whylen)
{
	char dom[DANESTS_NAME_MAX];
	size_t n;

	memset(a, 0, sizeof(*a));
	a->key[0] = 'S';
	if ((n = prefix_make(day, domain, a->key + 1, dom, why, whylen)) == 0)
		return DANESTS_PERM;
	a->klen = 1 + n - 1;	/* without the NUL */
	return DANESTS_OK;
}

/* uri_ok - a target as recorded: printable, at most URI_MAX bytes */
static bool
uri_ok(const char *uri)
{
	return uri != NULL && *uri != '\0' && field_ok(uri, URI_MAX, false) &&
	    strchr(uri, ' ') == NULL;
}

/* rec_uri - the URI stored at the end of a target record */
static bool
rec_uri_is(const unsigned char *v, size_t len, const char *uri)
{
	struct dec d = { v, len, 0, false };
	size_t n;

	if (dec_u(&d, 1) != 'T')
		return false;
	(void)dec_u(&d, 4);
	(void)dec_u(&d, 8);
	(void)dec_u(&d, 8);
	n = (size_t)dec_u(&d, 2);
	if (d.bad || n > len - d.off)
		return false;
	d.off += n;
	n = (size_t)dec_u(&d, 2);
	return !d.bad && n == len - d.off && n == strlen(uri) &&
	    memcmp(v + d.off, uri, n) == 0;
}

/* state_txn - get or put one state record; targets probe for their URI */
static danests_status
state_txn(void *varg, struct cache_rtxn *t, char *why, size_t whylen)
{
	struct state_arg *a = varg;
	const unsigned char *v;
	size_t len;
	danests_status st;
	unsigned seed;

	if (a->uri == NULL) {
		if (a->put)
			return cache_rpt_put(t, CACHE_RDB_STATE, a->key,
			    a->klen, a->rec, a->len, why, whylen);
		if ((st = cache_rpt_get(t, CACHE_RDB_STATE, a->key, a->klen,
		    &v, &len, why, whylen)) != DANESTS_OK)
			return st;
		if (len > sizeof(a->rec)) {
			why_set(why, whylen, "cache: corrupt report state");
			return DANESTS_TEMP;
		}
		memcpy(a->rec, v, len);
		a->len = len;
		return DANESTS_OK;
	}
	for (seed = 0; seed < RPT_PROBES; seed++) {
		put_be64((unsigned char *)a->key + 1,
		    hash64(seed, &a->uri, 1, 'T'));
		st = cache_rpt_get(t, CACHE_RDB_STATE, a->key, a->klen, &v,
		    &len, why, whylen);
		if (st == DANESTS_NOTFOUND) {
			if (!a->put)
				return st;
			break;
		}
		if (st != DANESTS_OK)
			return st;
		if (rec_uri_is(v, len, a->uri))
			break;
	}
	if (seed == RPT_PROBES) {
		if (!a->put)
			return DANESTS_NOTFOUND;
		why_set(why, whylen, "report: too many colliding targets");
		return DANESTS_TEMP;
	}
	if (a->put)
		return cache_rpt_put(t, CACHE_RDB_STATE, a->key, a->klen,
		    a->rec, a->len, why, whylen);
	if (len > sizeof(a->rec)) {
		why_set(why, whylen, "cache: corrupt report state");
		return DANESTS_TEMP;
	}
	memcpy(a->rec, v, len);
	a->len = len;
	return DANESTS_OK;
}

/* err_ok - a last_error: NUL-terminated within its array, printable */
static bool
err_ok(const char *s, size_t size)
{
	return strnlen(s, size) < size && field_ok(s, size - 1, false);
}

/* danests_report_state_get - see danests-report.h */
danests_status
danests_report_state_get(struct danests_cache *dc, const char *day,
    const char *domain, struct danests_rpt_state *out, char *why,
    size_t whylen)
{
	struct state_arg a;
	struct dec d;
	danests_status st;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (dc == NULL) {
		why_set(why, whylen, "report: no cache");
		return DANESTS_TEMP;
	}
	if ((st = state_key_day(&a, day, domain, why, whylen)) != DANESTS_OK)
		return st;
	if ((st = cache_rpt_run(cache_view_inner(dc), false, state_txn, &a,
	    why, whylen)) != DANESTS_OK)
		return st;
	d.p = a.rec;
	d.len = a.len;
	d.off = 0;
	d.bad = false;
	if (dec_u(&d, 1) != 'S')
		d.bad = true;
	out->attempts = (unsigned)dec_u(&d, 4);
	out->next_try = (time_t)dec_u(&d, 8);
	out->sent = (time_t)dec_u(&d, 8);
	n = (size_t)dec_u(&d, 2);
	if (d.bad || n >= sizeof(out->last_error) || n > d.len - d.off)
		goto corrupt;
	memcpy(out->last_error, a.rec + d.off, n);
	out->last_error[n] = '\0';
	d.off += n;
	/* the targets that took it (absent in older records) */
	if (d.off < d.len) {
		out->ntook = (unsigned)dec_u(&d, 1);
		if (out->ntook > DANESTS_RPT_TOOK_MAX)
			goto corrupt;
		for (n = 0; n < out->ntook; n++)
			out->took[n] = dec_u(&d, 8);
	}
	if (d.bad || d.off != d.len)
		goto corrupt;
	return DANESTS_OK;
corrupt:
	memset(out, 0, sizeof(*out));
	why_set(why, whylen, "cache: corrupt report state for %s %s", day,
	    domain);
	return DANESTS_TEMP;
}

/* took_digest - a target's digest in the sending state */
static uint64_t
took_digest(const char *uri)
{
	return hash64(0, &uri, 1, 'U');
}

/* danests_report_state_took - see danests-report.h */
bool
danests_report_state_took(const struct danests_rpt_state *s,
    const char *uri)
{
	uint64_t h = took_digest(uri);
	unsigned i;

	for (i = 0; i < s->ntook && i < DANESTS_RPT_TOOK_MAX; i++)
		if (s->took[i] == h)
			return true;
	return false;
}

/* danests_report_state_mark - see danests-report.h (beyond
 * DANESTS_RPT_TOOK_MAX targets, the rest are sent again) */
void
danests_report_state_mark(struct danests_rpt_state *s, const char *uri)
{
	if (!danests_report_state_took(s, uri) &&
	    s->ntook < DANESTS_RPT_TOOK_MAX)
		s->took[s->ntook++] = took_digest(uri);
}

/* danests_report_state_put - see danests-report.h */
danests_status
danests_report_state_put(struct danests_cache *dc, const char *day,
    const char *domain, const struct danests_rpt_state *s, char *why,
    size_t whylen)
{
	struct state_arg a;
	struct enc e;
	danests_status st;
	size_t n;

	if (dc == NULL || s == NULL) {
		why_set(why, whylen, "report: no cache");
		return DANESTS_TEMP;
	}
	if ((st = state_key_day(&a, day, domain, why, whylen)) != DANESTS_OK)
		return st;
	if (!err_ok(s->last_error, sizeof(s->last_error))) {
		why_set(why, whylen, "report: bad last_error");
		return DANESTS_PERM;
	}
	n = strlen(s->last_error);
	e.p = a.rec;
	e.len = 0;
	e.cap = sizeof(a.rec);
	e.bad = false;
	enc_u(&e, 'S', 1);
	enc_u(&e, s->attempts, 4);
	enc_u(&e, (uint64_t)s->next_try, 8);
	enc_u(&e, (uint64_t)s->sent, 8);
	enc_u(&e, n, 2);
	enc_bytes(&e, s->last_error, n);
	if (s->ntook > 0) {
		enc_u(&e, s->ntook <= DANESTS_RPT_TOOK_MAX ? s->ntook :
		    DANESTS_RPT_TOOK_MAX, 1);
		for (n = 0; n < s->ntook && n < DANESTS_RPT_TOOK_MAX; n++)
			enc_u(&e, s->took[n], 8);
	}
	a.len = e.len;
	a.put = true;
	return cache_rpt_run(cache_view_inner(dc), true, state_txn, &a, why,
	    whylen);
}

/* danests_report_target_get - see danests-report.h */
danests_status
danests_report_target_get(struct danests_cache *dc, const char *uri,
    struct danests_rpt_target *out, char *why, size_t whylen)
{
	struct state_arg a;
	struct dec d;
	danests_status st;
	size_t n;

	memset(out, 0, sizeof(*out));
	if (dc == NULL) {
		why_set(why, whylen, "report: no cache");
		return DANESTS_TEMP;
	}
	if (!uri_ok(uri)) {
		why_set(why, whylen, "report: bad target URI");
		return DANESTS_PERM;
	}
	memset(&a, 0, sizeof(a));
	a.key[0] = 'T';
	a.klen = 9;
	a.uri = uri;
	if ((st = cache_rpt_run(cache_view_inner(dc), false, state_txn, &a,
	    why, whylen)) != DANESTS_OK)
		return st;
	d.p = a.rec;
	d.len = a.len;
	d.off = 0;
	d.bad = false;
	(void)dec_u(&d, 1);
	out->failures = (unsigned)dec_u(&d, 4);
	out->suppressed_until = (time_t)dec_u(&d, 8);
	out->last_failure = (time_t)dec_u(&d, 8);
	n = (size_t)dec_u(&d, 2);
	if (d.bad || n >= sizeof(out->last_error) || n > d.len - d.off) {
		memset(out, 0, sizeof(*out));
		why_set(why, whylen, "cache: corrupt report target %s", uri);
		return DANESTS_TEMP;
	}
	memcpy(out->last_error, a.rec + d.off, n);
	out->last_error[n] = '\0';
	return DANESTS_OK;
}

/* danests_report_target_put - see danests-report.h */
danests_status
danests_report_target_put(struct danests_cache *dc, const char *uri,
    const struct danests_rpt_target *s, char *why, size_t whylen)
{
	struct state_arg a;
	struct enc e;
	size_t n, u;

	if (dc == NULL || s == NULL) {
		why_set(why, whylen, "report: no cache");
		return DANESTS_TEMP;
	}
	if (!uri_ok(uri)) {
		why_set(why, whylen, "report: bad target URI");
		return DANESTS_PERM;
	}
	if (!err_ok(s->last_error, sizeof(s->last_error))) {
		why_set(why, whylen, "report: bad last_error");
		return DANESTS_PERM;
	}
	memset(&a, 0, sizeof(a));
	a.key[0] = 'T';
	a.klen = 9;
	a.uri = uri;
	n = strlen(s->last_error);
	u = strlen(uri);
	e.p = a.rec;
	e.len = 0;
	e.cap = sizeof(a.rec);
	e.bad = false;
	enc_u(&e, 'T', 1);
	enc_u(&e, s->failures, 4);
	enc_u(&e, (uint64_t)s->suppressed_until, 8);
	enc_u(&e, (uint64_t)s->last_failure, 8);
	enc_u(&e, n, 2);
	enc_bytes(&e, s->last_error, n);
	enc_u(&e, u, 2);
	enc_bytes(&e, uri, u);
	if (e.bad) {
		why_set(why, whylen, "report: target record too large");
		return DANESTS_PERM;
	}
	a.len = e.len;
	a.put = true;
	return cache_rpt_run(cache_view_inner(dc), true, state_txn, &a, why,
	    whylen);
}
