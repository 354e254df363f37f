/*
 * report_fleet.c - the TLS-report counters of a fleet (RFC 8460 4.4: one
 * report per policy domain per day), added up in the shared store
 *
 * Each node keeps counting in its local cache (report.c) and writes its
 * own totals to the store as absolute values under its node id, so that a
 * push repeated after an outage, a crash or a kill -9 never counts twice:
 *
 *   PREFIX "rpt:" DAY			set: the domains counted on DAY
 *   PREFIX "rpt:" DAY ":" DOMAIN	set: the members below
 *   PREFIX "rpt:" DAY ":" DOMAIN ":P" H	hash: a policy: type, policy, mx,
 *					and per node "s:NODE", "f:NODE"
 *					(successes, failures)
 *   PREFIX "rpt:" DAY ":" DOMAIN ":D" G	hash: a failure detail: p (its
 *					policy's member), rt, ip, mxh, helo,
 *					rip, info, and per node "c:NODE"
 *   PREFIX "rpt:" DAY ":" DOMAIN ":sent"	the report went out (the node)
 *   PREFIX "rpt:" DAY ":nodes"	hash: per node, when it last pushed DAY
 *					(a domain has two labels at least:
 *					"nodes" is never one)
 *   PREFIX "lock:rpt:" DAY ":" DOMAIN	the sender's lock (store_lock)
 *
 * H and G are 128 bits of SHA-256 (hex) of the policy's (type, policy,
 * mx) and of the policy's H with the detail's fields, each string with
 * its length, so that every node names the same policy alike.  Every key
 * expires report_keep_days (plus two days) after its last push.  Reads
 * go to the write endpoint: the sender needs every node's last push, not
 * a replica's copy of it.
 */
#include "danests-internal.h"
#include "danests-report.h"

#include <openssl/evp.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

#define FLEET_KEY_MAX	(DANESTS_STORE_PREFIX_MAX + 16 + DANESTS_NAME_MAX + 40)
#define FLEET_MEMBERS_MAX	20000	/* members read per (day, domain) */
#define FLEET_DOMAINS_MAX	100000	/* domains read per day */

/* report_node_ok - a node id: 1-63 of [A-Za-z0-9._-] */
bool
report_node_ok(const char *s)
{
	size_t n;

	for (n = 0; s[n] != '\0'; n++)
		if (!((s[n] >= 'a' && s[n] <= 'z') || (s[n] >= 'A' &&
		    s[n] <= 'Z') || (s[n] >= '0' && s[n] <= '9') ||
		    strchr("._-", s[n]) != NULL))
			return false;
	return n > 0 && n < DANESTS_NODE_ID_MAX;
}

/* report_fleet_name - "rpt:" DAY [":" DOMAIN [":" MEMBER]] (without the
 * store's prefix); -1 when it does not fit */
int
report_fleet_name(char *buf, size_t len, const char *day, const char *domain,
    const char *member)
{
	int n;

	if (domain == NULL)
		n = snprintf(buf, len, "rpt:%s", day);
	else if (member == NULL)
		n = snprintf(buf, len, "rpt:%s:%s", day, domain);
	else
		n = snprintf(buf, len, "rpt:%s:%s:%s", day, domain, member);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* digest - KIND and 128 bits of SHA-256 of the strings (each with its
 * length) as hex */
static void
digest(char kind, const char *const *s, size_t n, char out[34])
{
	unsigned char md[EVP_MAX_MD_SIZE], l[4];
	unsigned int mdlen = 0;
	EVP_MD_CTX *c;
	size_t i, sl;

	out[0] = '\0';
	if ((c = EVP_MD_CTX_new()) == NULL)
		return;
	if (EVP_DigestInit_ex(c, EVP_sha256(), NULL) == 1) {
		for (i = 0; i < n; i++) {
			sl = strlen(s[i]);
			l[0] = (unsigned char)(sl >> 24);
			l[1] = (unsigned char)(sl >> 16);
			l[2] = (unsigned char)(sl >> 8);
			l[3] = (unsigned char)sl;
			EVP_DigestUpdate(c, l, 4);
			EVP_DigestUpdate(c, s[i], sl);
		}
		if (EVP_DigestFinal_ex(c, md, &mdlen) == 1 && mdlen >= 16) {
			out[0] = kind;
			for (i = 0; i < 16; i++)
				snprintf(out + 1 + 2 * i, 3, "%02x", md[i]);
		}
	}
	EVP_MD_CTX_free(c);
}

/* report_fleet_pid - a policy's member name: 'P' and 32 hex digits */
void
report_fleet_pid(const char *type, const char *pstr, const char *mx,
    char out[34])
{
	const char *s[3] = { type, pstr, mx };

	digest('P', s, 3, out);
}

/* report_fleet_did - a detail's member name: 'D' and 32 hex digits */
void
report_fleet_did(const char *pid, const char *rt, const char *const f[5],
    char out[34])
{
	const char *s[7] = { pid, rt, f[0], f[1], f[2], f[3], f[4] };

	digest('D', s, 7, out);
}

/* report_fleet_node - see danests-internal.h */
int
report_fleet_node(const struct danests_config *cfg,
    char out[DANESTS_NODE_ID_MAX], char *why, size_t whylen)
{
	char h[256];

	if (cfg->node_id[0] != '\0') {
		strlcpy(out, cfg->node_id, DANESTS_NODE_ID_MAX);
		return 0;
	}
	if (gethostname(h, sizeof(h)) == 0 && (h[sizeof(h) - 1] = '\0',
	    report_node_ok(h))) {
		strlcpy(out, h, DANESTS_NODE_ID_MAX);
		return 0;
	}
	why_set(why, whylen, "report: the host name is no usable node id: "
	    "set node_id");
	return -1;
}

static danests_status fleet_push(struct danests_fleet *, struct cache *,
    const char *, size_t *, char *, size_t);

/* danests_report_fleet_open - see danests-report.h */
danests_status
danests_report_fleet_open(const struct danests_config *cfg,
    struct danests_fleet **out, char *why, size_t whylen)
{
	struct danests_fleet *fl;
	struct store *st;

	*out = NULL;
	if (store_new(cfg, &st, why, whylen) != DANESTS_OK)
		return DANESTS_PERM;
	if (st == NULL)
		return DANESTS_OK;
	if ((fl = xcalloc(1, sizeof(*fl))) == NULL) {
		store_free(st);
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	fl->store = st;
	fl->keep_days = cfg->report.keep_days;
	if (report_fleet_node(cfg, fl->node, why, whylen) < 0) {
		danests_report_fleet_close(fl);
		return DANESTS_PERM;
	}
	*out = fl;
	return DANESTS_OK;
}

/* danests_report_fleet_close - see danests-report.h */
void
danests_report_fleet_close(struct danests_fleet *fl)
{
	if (fl == NULL)
		return;
	store_free(fl->store);
	free(fl);
}

/* ---- pushing ---- */

/* The commands of one (day, domain), with the strings they point to. */
struct pcmd {
	struct store_cmd c;
	char key[FLEET_KEY_MAX];
	char num[2][24];
	char id[34];
};

struct push_arg {
	struct danests_fleet *fl;
	char f_s[DANESTS_NODE_ID_MAX + 2], f_f[DANESTS_NODE_ID_MAX + 2],
	    f_c[DANESTS_NODE_ID_MAX + 2];
	char ttl[24], now[24];
	danests_status st;
	char *why;
	size_t whylen;
	size_t pushed;
};

/* cmd_set - argv of c from a NULL-terminated list */
static void
cmd_set(struct store_cmd *c, const char *const *v)
{
	c->argc = 0;
	while (v[c->argc] != NULL && c->argc < STORE_CMD_ARGS) {
		c->argv[c->argc] = v[c->argc];
		c->lens[c->argc] = strlen(v[c->argc]);
		c->argc++;
	}
}

/* push_cb - danests_report_walk: one (day, domain)'s totals of this node
 * written over its previous ones */
static int
push_cb(void *varg, const struct danests_rpt_day *d)
{
	struct push_arg *a = varg;
	struct pcmd *cm;
	struct store_cmd *sc;
	char dkey[FLEET_KEY_MAX], mkey[FLEET_KEY_MAX], name[FLEET_KEY_MAX];
	char nkey[FLEET_KEY_MAX];
	size_t ncmd = 6, i, j, k = 0;
	const char *type;

	for (i = 0; i < d->npolicies; i++)
		ncmd += 3 + 3 * d->policies[i].ndetails;
	if ((cm = xcalloc(ncmd, sizeof(*cm))) == NULL) {
		why_set(a->why, a->whylen, "report: out of memory");
		a->st = DANESTS_TEMP;
		return 1;
	}
	if (report_fleet_name(name, sizeof(name), d->day, NULL, NULL) < 0 ||
	    store_key(a->fl->store, name, dkey, sizeof(dkey)) < 0 ||
	    report_fleet_name(name, sizeof(name), d->day, d->domain, NULL) <
	    0 || store_key(a->fl->store, name, mkey, sizeof(mkey)) < 0 ||
	    report_fleet_name(name, sizeof(name), d->day, "nodes", NULL) < 0 ||
	    store_key(a->fl->store, name, nkey, sizeof(nkey)) < 0) {
		why_set(a->why, a->whylen, "report: key too long");
		a->st = DANESTS_TEMP;
		free(cm);
		return 1;
	}
	cmd_set(&cm[k++].c, (const char *[]){ "SADD", dkey, d->domain,
	    NULL });
	cmd_set(&cm[k++].c, (const char *[]){ "EXPIRE", dkey, a->ttl, NULL });
	for (i = 0; i < d->npolicies; i++) {
		const struct danests_rpt_policy *p = &d->policies[i];
		struct pcmd *pc = &cm[k];

		type = danests_rpt_policy_type_name(p->policy_type);
		report_fleet_pid(type, p->policy_string, p->mx_host, pc->id);
		if (pc->id[0] == '\0' || report_fleet_name(name, sizeof(name),
		    d->day, d->domain, pc->id) < 0 || store_key(a->fl->store,
		    name, pc->key, sizeof(pc->key)) < 0)
			goto bad;
		snprintf(pc->num[0], sizeof(pc->num[0]), "%llu",
		    (unsigned long long)p->success);
		snprintf(pc->num[1], sizeof(pc->num[1]), "%llu",
		    (unsigned long long)p->failure);
		cmd_set(&cm[k++].c, (const char *[]){ "HSET", pc->key, "type",
		    type, "policy", p->policy_string, "mx", p->mx_host,
		    a->f_s, pc->num[0], a->f_f, pc->num[1], NULL });
		cmd_set(&cm[k++].c, (const char *[]){ "EXPIRE", pc->key,
		    a->ttl, NULL });
		cmd_set(&cm[k++].c, (const char *[]){ "SADD", mkey, pc->id,
		    NULL });
		for (j = 0; j < p->ndetails; j++) {
			const struct danests_rpt_detail *t = &p->details[j];
			const char *f[5] = { t->sending_mta_ip,
			    t->receiving_mx_hostname, t->receiving_mx_helo,
			    t->receiving_ip, t->additional_info };
			const char *rt = danests_result_type_name(
			    t->result_type);
			struct pcmd *dc = &cm[k];

			report_fleet_did(pc->id, rt, f, dc->id);
			if (dc->id[0] == '\0' || report_fleet_name(name,
			    sizeof(name), d->day, d->domain, dc->id) < 0 ||
			    store_key(a->fl->store, name, dc->key,
			    sizeof(dc->key)) < 0)
				goto bad;
			snprintf(dc->num[0], sizeof(dc->num[0]), "%llu",
			    (unsigned long long)t->count);
			cmd_set(&cm[k++].c, (const char *[]){ "HSET", dc->key,
			    "p", pc->id, "rt", rt, "ip", f[0], "mxh", f[1],
			    "helo", f[2], "rip", f[3], "info", f[4], a->f_c,
			    dc->num[0], NULL });
			cmd_set(&cm[k++].c, (const char *[]){ "EXPIRE",
			    dc->key, a->ttl, NULL });
			cmd_set(&cm[k++].c, (const char *[]){ "SADD", mkey,
			    dc->id, NULL });
		}
	}
	cmd_set(&cm[k++].c, (const char *[]){ "EXPIRE", mkey, a->ttl, NULL });
	/* when this node last pushed the day (danests_report_fleet_final) */
	cmd_set(&cm[k++].c, (const char *[]){ "HSET", nkey, a->fl->node,
	    a->now, NULL });
	cmd_set(&cm[k++].c, (const char *[]){ "EXPIRE", nkey, a->ttl, NULL });
	/* the members' set last but one: a reader finds no member whose
	 * hash is not written yet (one pipeline, in order) */
	if ((sc = xcalloc(k, sizeof(*sc))) == NULL) {
		why_set(a->why, a->whylen, "report: out of memory");
		a->st = DANESTS_TEMP;
		free(cm);
		return 1;
	}
	for (i = 0; i < k; i++)
		sc[i] = cm[i].c;
	a->st = store_pipeline(a->fl->store, sc, k);
	free(sc);
	if (a->st != DANESTS_OK)
		why_set(a->why, a->whylen, "report: the store is unreachable");
	else
		a->pushed++;
	free(cm);
	return a->st != DANESTS_OK;
bad:
	why_set(a->why, a->whylen, "report: %s %s: key too long", d->day,
	    d->domain);
	a->st = DANESTS_TEMP;
	free(cm);
	return 1;
}

/* danests_report_fleet_push - see danests-report.h */
danests_status
danests_report_fleet_push(struct danests_fleet *fl, struct danests_cache *dc,
    const char *day, size_t *npushed, char *why, size_t whylen)
{
	return fleet_push(fl, dc != NULL ? cache_view_inner(dc) : NULL, day,
	    npushed, why, whylen);
}

/* danests_ctx_report_push - see danests-report.h */
danests_status
danests_ctx_report_push(struct danests_ctx *ctx, size_t *npushed, char *why,
    size_t whylen)
{
	struct danests_fleet fl;
	char day[11];
	size_t n = 0, n2 = 0;
	danests_status st;
	time_t now = time(NULL);
	struct tm tm;

	if (npushed != NULL)
		*npushed = 0;
	if (ctx == NULL || ctx->store == NULL || ctx->cache == NULL ||
	    !ctx->cfg.report.enabled) {
		why_set(why, whylen, "report: no store, no cache or "
		    "tls_reports off");
		return DANESTS_NOTFOUND;
	}
	memset(&fl, 0, sizeof(fl));
	fl.store = ctx->store;
	fl.keep_days = ctx->cfg.report.keep_days;
	if (report_fleet_node(&ctx->cfg, fl.node, why, whylen) < 0)
		return DANESTS_PERM;
	/* yesterday (its last counts, after midnight), then today */
	gmtime_r(&(time_t){ now - 86400 }, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	if ((st = fleet_push(&fl, ctx->cache, day, &n, why, whylen)) !=
	    DANESTS_OK)
		return st;
	gmtime_r(&now, &tm);
	strftime(day, sizeof(day), "%Y-%m-%d", &tm);
	st = fleet_push(&fl, ctx->cache, day, &n2, why, whylen);
	if (npushed != NULL)
		*npushed = n + n2;
	return st;
}

/* danests_ctx_push_interval - see danests-report.h */
unsigned
danests_ctx_push_interval(const struct danests_ctx *ctx)
{
	return ctx != NULL && ctx->store != NULL && ctx->cache != NULL &&
	    ctx->cfg.report.enabled ? ctx->cfg.store_push_s : 0;
}

/* fleet_push - this node's counters of day (NULL: all) to the store */
static danests_status
fleet_push(struct danests_fleet *fl, struct cache *c, const char *day,
    size_t *npushed, char *why, size_t whylen)
{
	struct push_arg a;
	danests_status st;

	if (npushed != NULL)
		*npushed = 0;
	if (fl == NULL) {
		why_set(why, whylen, "report: no store");
		return DANESTS_NOTFOUND;
	}
	memset(&a, 0, sizeof(a));
	a.fl = fl;
	a.why = why;
	a.whylen = whylen;
	snprintf(a.f_s, sizeof(a.f_s), "s:%s", fl->node);
	snprintf(a.f_f, sizeof(a.f_f), "f:%s", fl->node);
	snprintf(a.f_c, sizeof(a.f_c), "c:%s", fl->node);
	snprintf(a.ttl, sizeof(a.ttl), "%llu", (unsigned long long)
	    (fl->keep_days + 2) * 86400ULL);
	snprintf(a.now, sizeof(a.now), "%lld", (long long)time(NULL));
	st = report_walk(c, day, NULL, push_cb, &a, why, whylen);
	if (npushed != NULL)
		*npushed = a.pushed;
	return st != DANESTS_OK ? st : a.st;
}

/* ---- reading ---- */

/* list_cb - store_read_each: keep a copy of each string */
static int
list_cb(void *arg, const char *s, size_t len)
{
	struct fleet_list *l = arg;
	char **nv;

	if (l->n >= l->max || memchr(s, '\0', len) != NULL ||
	    (nv = realloc(l->v, (l->n + 1) * sizeof(*nv))) == NULL) {
		l->bad = true;
		return 1;
	}
	l->v = nv;
	if ((l->v[l->n] = strndup(s, len)) == NULL) {
		l->bad = true;
		return 1;
	}
	l->n++;
	return 0;
}

/* fleet_list_free - see danests-internal.h */
void
fleet_list_free(struct fleet_list *l)
{
	size_t i;

	for (i = 0; i < l->n; i++)
		free(l->v[i]);
	free(l->v);
	memset(l, 0, sizeof(*l));
}

static int
str_cmp(const void *a, const void *b)
{
	return strcmp(*(char *const *)a, *(char *const *)b);
}

/* fleet_read_list - see danests-internal.h */
danests_status
fleet_read_list(struct danests_fleet *fl, const char *cmd, const char *name,
    const char *const *extra, size_t max, struct fleet_list *l)
{
	char key[FLEET_KEY_MAX];
	const char *argv[4];
	size_t lens[4];
	danests_status st;
	int argc = 2, i;

	memset(l, 0, sizeof(*l));
	l->max = max;
	if (store_key(fl->store, name, key, sizeof(key)) < 0)
		return DANESTS_TEMP;
	argv[0] = cmd;
	argv[1] = key;
	while (extra != NULL && extra[argc - 2] != NULL && argc < 4) {
		argv[argc] = extra[argc - 2];
		argc++;
	}
	for (i = 0; i < argc; i++)
		lens[i] = strlen(argv[i]);
	st = store_read_each(fl->store, argc, argv, lens, list_cb, l);
	if (st == DANESTS_OK && l->bad)
		st = DANESTS_TEMP;
	if (st != DANESTS_OK)
		fleet_list_free(l);
	return st;
}

/* danests_report_fleet_domains - see danests-report.h */
danests_status
danests_report_fleet_domains(struct danests_fleet *fl, const char *day,
    int (*fn)(void *, const char *domain), void *arg, char *why,
    size_t whylen)
{
	char name[FLEET_KEY_MAX];
	struct fleet_list l;
	size_t i;

	if (fl == NULL || report_fleet_name(name,
	    sizeof(name), day, NULL, NULL) < 0) {
		why_set(why, whylen, "report: no store");
		return DANESTS_NOTFOUND;
	}
	if (fleet_read_list(fl, "SMEMBERS", name, NULL, FLEET_DOMAINS_MAX, &l) !=
	    DANESTS_OK) {
		why_set(why, whylen, "report: the store is unreachable or "
		    "holds more than %d domains for %s", FLEET_DOMAINS_MAX,
		    day);
		return DANESTS_TEMP;
	}
	qsort(l.v, l.n, sizeof(*l.v), str_cmp);
	for (i = 0; i < l.n; i++)
		if (fn(arg, l.v[i]) != 0)
			break;
	fleet_list_free(&l);
	return DANESTS_OK;
}

/* fleet_field - see danests-internal.h */
const char *
fleet_field(const struct fleet_list *h, const char *name)
{
	size_t i;

	for (i = 0; i + 1 < h->n; i += 2)
		if (strcmp(h->v[i], name) == 0)
			return h->v[i + 1];
	return NULL;
}

/* node_sum - the sum of the fields "K:NODE" (saturating); -1 on a value
 * that is not a count */
static int
node_sum(const struct fleet_list *h, char k, uint64_t *out)
{
	unsigned long long v;
	size_t i;

	*out = 0;
	for (i = 0; i + 1 < h->n; i += 2) {
		if (h->v[i][0] != k || h->v[i][1] != ':')
			continue;
		if (!danests_parse_uint(h->v[i + 1], 0, UINT64_MAX, &v))
			return -1;
		*out = v > UINT64_MAX - *out ? UINT64_MAX : *out + v;
	}
	return 0;
}

/* policy_type - a type by its name; 0 none */
static danests_rpt_policy_type
policy_type(const char *s)
{
	static const danests_rpt_policy_type t[] = { DANESTS_RPT_TLSA,
	    DANESTS_RPT_STS, DANESTS_RPT_NO_POLICY };
	size_t i;

	for (i = 0; s != NULL && i < 3; i++)
		if (strcmp(s, danests_rpt_policy_type_name(t[i])) == 0)
			return t[i];
	return 0;
}

/* result_type - a result type by its name; DANESTS_RT_NONE none */
static danests_result_type
result_type(const char *s)
{
	const char *n;
	int i;

	for (i = 1; s != NULL && i < 64; i++)
		if ((n = danests_result_type_name((danests_result_type)i)) !=
		    NULL && strcmp(n, s) == 0)
			return (danests_result_type)i;
	return DANESTS_RT_NONE;
}

/* danests_report_fleet_walk - see danests-report.h */
danests_status
danests_report_fleet_walk(struct danests_fleet *fl, const char *day,
    const char *domain, danests_report_fn *fn, void *arg, char *why,
    size_t whylen)
{
	char name[FLEET_KEY_MAX];
	struct danests_rpt_day rd;
	struct danests_rpt_policy *pol = NULL;
	struct danests_rpt_detail *det = NULL;
	struct fleet_list mem, *h = NULL;
	size_t i, j, np = 0, nd = 0, k;
	danests_status st = DANESTS_TEMP;

	if (fl == NULL || report_fleet_name(name,
	    sizeof(name), day, domain, NULL) < 0) {
		why_set(why, whylen, "report: no store");
		return DANESTS_NOTFOUND;
	}
	if (fleet_read_list(fl, "SMEMBERS", name, NULL, FLEET_MEMBERS_MAX, &mem) !=
	    DANESTS_OK) {
		why_set(why, whylen, "report: %s %s: the store is unreachable",
		    day, domain);
		return DANESTS_TEMP;
	}
	/* policies first ('P' > 'D': sorted, details come first) */
	qsort(mem.v, mem.n, sizeof(*mem.v), str_cmp);
	if (mem.n == 0) {
		fleet_list_free(&mem);
		why_set(why, whylen, "report: %s %s: nothing in the store",
		    day, domain);
		return DANESTS_NOTFOUND;
	}
	if ((h = xcalloc(mem.n, sizeof(*h))) == NULL ||
	    (pol = xcalloc(mem.n, sizeof(*pol))) == NULL ||
	    (det = xcalloc(mem.n, sizeof(*det))) == NULL) {
		why_set(why, whylen, "report: out of memory");
		goto out;
	}
	for (i = 0; i < mem.n; i++)
		if (report_fleet_name(name, sizeof(name), day, domain,
		    mem.v[i]) < 0 || fleet_read_list(fl, "HGETALL", name, NULL,
		    2 * (16 + 2 * 1024), &h[i]) != DANESTS_OK) {
			why_set(why, whylen, "report: %s %s: the store is "
			    "unreachable", day, domain);
			goto out;
		}
	/* the policies, then their details (sorted by member name, so the
	 * report is the same whoever builds it) */
	for (i = 0; i < mem.n; i++) {
		if (mem.v[i][0] != 'P' || h[i].n == 0)
			continue;	/* expired meanwhile */
		pol[np].policy_type = policy_type(fleet_field(&h[i], "type"));
		pol[np].policy_string = fleet_field(&h[i], "policy");
		pol[np].mx_host = fleet_field(&h[i], "mx");
		if (pol[np].policy_type == 0 || pol[np].policy_string ==
		    NULL || pol[np].mx_host == NULL || node_sum(&h[i], 's',
		    &pol[np].success) < 0 || node_sum(&h[i], 'f',
		    &pol[np].failure) < 0)
			goto corrupt;
		pol[np].details = det + nd;
		for (j = 0; j < mem.n; j++) {
			const char *p = mem.v[j][0] == 'D' && h[j].n > 0 ?
			    fleet_field(&h[j], "p") : NULL;

			if (p == NULL || strcmp(p, mem.v[i]) != 0)
				continue;
			det[nd].result_type = result_type(fleet_field(&h[j], "rt"));
			det[nd].sending_mta_ip = fleet_field(&h[j], "ip");
			det[nd].receiving_mx_hostname = fleet_field(&h[j], "mxh");
			det[nd].receiving_mx_helo = fleet_field(&h[j], "helo");
			det[nd].receiving_ip = fleet_field(&h[j], "rip");
			det[nd].additional_info = fleet_field(&h[j], "info");
			if (det[nd].result_type == DANESTS_RT_NONE ||
			    det[nd].sending_mta_ip == NULL ||
			    det[nd].receiving_mx_hostname == NULL ||
			    det[nd].receiving_mx_helo == NULL ||
			    det[nd].receiving_ip == NULL ||
			    det[nd].additional_info == NULL ||
			    node_sum(&h[j], 'c', &det[nd].count) < 0)
				goto corrupt;
			nd++;
			pol[np].ndetails++;
		}
		np++;
	}
	memset(&rd, 0, sizeof(rd));
	strlcpy(rd.day, day, sizeof(rd.day));
	rd.domain = domain;
	rd.npolicies = np;
	rd.policies = pol;
	st = DANESTS_OK;
	if (np == 0) {
		why_set(why, whylen, "report: %s %s: nothing in the store",
		    day, domain);
		st = DANESTS_NOTFOUND;
	} else
		(void)fn(arg, &rd);
	goto out;
corrupt:
	why_set(why, whylen, "report: %s %s: a damaged entry in the store",
	    day, domain);
	st = DANESTS_TEMP;
out:
	for (k = 0; h != NULL && k < mem.n; k++)
		fleet_list_free(&h[k]);
	free(h);
	free(pol);
	free(det);
	fleet_list_free(&mem);
	return st;
}

/* ---- one sender ---- */

/* danests_report_fleet_sent - see danests-report.h */
danests_status
danests_report_fleet_sent(struct danests_fleet *fl, const char *day,
    const char *domain)
{
	char name[FLEET_KEY_MAX], key[FLEET_KEY_MAX];

	if (fl == NULL || report_fleet_name(name,
	    sizeof(name), day, domain, "sent") < 0 || store_key(fl->store,
	    name, key, sizeof(key)) < 0)
		return DANESTS_TEMP;
	return store_exists(fl->store, key);
}

/* danests_report_fleet_mark_sent - see danests-report.h */
danests_status
danests_report_fleet_mark_sent(struct danests_fleet *fl, const char *day,
    const char *domain, char *why, size_t whylen)
{
	char name[FLEET_KEY_MAX], key[FLEET_KEY_MAX];
	char ttl[24];
	struct store_cmd c;

	if (fl == NULL || report_fleet_name(name,
	    sizeof(name), day, domain, "sent") < 0 || store_key(fl->store,
	    name, key, sizeof(key)) < 0)
		return DANESTS_TEMP;
	snprintf(ttl, sizeof(ttl), "%llu", (unsigned long long)
	    (fl->keep_days + 2) * 86400ULL);
	cmd_set(&c, (const char *[]){ "SET", key, fl->node, "EX", ttl, NULL });
	if (store_pipeline(fl->store, &c, 1) != DANESTS_OK) {
		why_set(why, whylen, "report: the store is unreachable");
		return DANESTS_TEMP;
	}
	return DANESTS_OK;
}

/* danests_report_fleet_lock - see danests-report.h */
danests_status
danests_report_fleet_lock(struct danests_fleet *fl, const char *day,
    const char *domain, unsigned ms, char token[DANESTS_RPT_TOKEN_MAX])
{
	char name[FLEET_KEY_MAX];

	_Static_assert(DANESTS_RPT_TOKEN_MAX >= STORE_TOKEN_LEN + 1,
	    "token size");
	if (fl == NULL || report_fleet_name(name,
	    sizeof(name), day, domain, NULL) < 0)
		return DANESTS_TEMP;
	return store_lock(fl->store, name, ms, token);
}

/* danests_report_fleet_unlock - see danests-report.h */
void
danests_report_fleet_unlock(struct danests_fleet *fl, const char *day,
    const char *domain, const char *token)
{
	char name[FLEET_KEY_MAX];

	if (fl != NULL && report_fleet_name(name,
	    sizeof(name), day, domain, NULL) == 0)
		store_unlock(fl->store, name, token);
}

/* danests_report_fleet_final - see danests-report.h */
danests_status
danests_report_fleet_final(struct danests_fleet *fl, const char *day,
    time_t day_end, char *late, size_t latelen)
{
	char name[FLEET_KEY_MAX];
	unsigned long long v;
	struct fleet_list h;
	danests_status st = DANESTS_OK;
	size_t i;

	if (latelen > 0)
		late[0] = '\0';
	if (fl == NULL || report_fleet_name(name, sizeof(name), day, "nodes",
	    NULL) < 0)
		return DANESTS_TEMP;
	if (fleet_read_list(fl, "HGETALL", name, NULL, 2 * 10000, &h) != DANESTS_OK)
		return DANESTS_TEMP;
	for (i = 0; i + 1 < h.n; i += 2)
		if (!danests_parse_uint(h.v[i + 1], 0, UINT64_MAX, &v) ||
		    (time_t)v < day_end) {
			if (latelen > 0 && late[0] == '\0')
				snprintf(late, latelen, "%s", h.v[i]);
			st = DANESTS_NOTFOUND;
		}
	fleet_list_free(&h);
	return st;
}
