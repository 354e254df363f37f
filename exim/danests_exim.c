/*
 * danests_exim.c - Exim ${dlfunc} module: DANE and MTA-STS decisions
 *
 * Loaded by Exim with ${dlfunc{/usr/lib/danests/danests_exim.so}{FUNC}{ARG}...}.
 * Every function takes the destination domain first and, as an optional
 * last argument, the path of a danests.conf(5) file (default
 * /etc/danests/danests.conf).  Its core keys and its [exim] section apply
 * ("metrics yes": each decision's counts are added to the cache, where
 * `danests stats` reads them); a file that cannot be read defers.  With
 * a shared store (store redis://...), the node's TLS-report counts and
 * stored counters go to the store after a decision or a recorded result,
 * at most once per store_push_interval per node (exim_push); an
 * unreachable store costs at most store_timeout per call and fails
 * nothing.
 *
 *   check DOMAIN [CONF]
 *	":defer: ..." for a tempfail verdict, ":fail: ..." for a permfail
 *	verdict (for a redirect router with allow_defer and allow_fail),
 *	forced failure when the domain may be delivered to.
 *   route DOMAIN CLASS [CONF]
 *	"HOST:HOST... bydns" (route_data of a manualroute router): the hosts
 *	the core allows, in delivery order, when the domain is of CLASS
 *	("sts", "dane" or "testing"); forced failure otherwise, so that the
 *	next router takes the domain.
 *   class DOMAIN [CONF]
 *	"sts" (some host is sts-enforce), "dane" (some host needs DANE or
 *	TLS, or must be skipped), "testing" (MTA-STS testing), "may".
 *   hosts DOMAIN [CONF]
 *	address_data for the transports: dane="H:H" tls="H:H" pkix="H:H"
 *	testing="H:H" (hosts that need DANE; TLS; WebPKI; testing checks;
 *	with their CNAME targets) and the exceptions nodane="H:H" and
 *	notls="H:H" (hosts that need no DANE; no TLS), so that a transport
 *	can require DANE or TLS of every host it does not know.
 *   decision DOMAIN [CONF]
 *	short text for logs and headers, e.g. "deliver sts-enforce=1 skip=1".
 *   policy DOMAIN HOST [CONF]
 *	the host's policy ("dane", "encrypt", "sts-enforce", ..., "skip"
 *	for a host the decision does not list).
 *   require_dane DOMAIN HOST [CONF]
 *	"yes" when the host must be authenticated by DANE, else "no".
 *   report DOMAIN HOST VERIFIED [CONF]
 *	logs an MTA-STS testing failure when VERIFIED is not "1"; yields "".
 *   refusal rcpt|mail DOMAIN [CONF]
 *	the SMTP reply that refuses a recipient (rcpt) or sender (mail) in
 *	DOMAIN when mail to it can only bounce (the core's danests_refusal:
 *	"556 5.1.10 ..." for a null MX and so on), else "" (also when no
 *	decision can be made: logged, never an expansion failure), for the
 *	submission ACLs of acl/25_danests-submission.
 *   permfail DOMAIN [CONF]
 *	"null-mx" or "nxdomain" where refusal refuses a recipient, else "".
 *   tls_event EVENT DOMAIN HOST ADDRESS SENDING-IP DATA [CONF]
 *	for a transport's event_action (the macro DANESTS_TLS_EVENT of
 *	main/05_danests-macros): records one SMTP TLS Reporting result
 *	(RFC 8460 4.3) per TLS negotiation attempt into the shared cache
 *	when the configuration says tls_reports yes.  EVENT is Exim's
 *	$event_name: tcp:connect (a new connection), tls:cert at depth 0
 *	(DATA the peer certificate, base64 DER), smtp:ehlo after STARTTLS
 *	(DATA $tls_out_certificate_verified: a success, or an MTA-STS
 *	testing failure), dane:fail (DATA the RFC 8460 result type) and
 *	msg:host:defer (DATA "$event_defer_errno $event_data": a TLS
 *	failure when Exim's errno says so).  (Seven arguments at most:
 *	Exim 4.96 miscounts eight.)
 *	Always yields "" (for tls:cert and tcp:connect a non-empty string
 *	would change what Exim does) and never fails: an error is logged
 *	(at most once a minute per process) and the result dropped, so
 *	that recording never delays or fails a delivery.
 *
 * Errors of any kind except in refusal, permfail and tls_event (bad
 * arguments, a configuration that does not load,
 * a cache that cannot be opened, no decision within the bound) make the
 * expansion fail (not forced): a router whose expansion fails defers the
 * address, so the module fails closed.  A decision is the core's: this
 * file only renders it.  Answers come from the shared LMDB cache; on a
 * miss the core resolves in-process within its decision_timeout and
 * stores the result for the next Exim process.
 */
#define DLFUNC_IMPL
#include <local_scan.h>

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "danests.h"
#include "danests-report.h"
#include "danests-metrics.h"

#define EXIM_DEFAULT_CONF	DANESTS_DEFAULT_CONFIG
#define EXIM_OUT_MAX		8192	/* cap on any yielded string */
#define EXIM_WHY_MAX		512

/* The context of this process, made on first use. */
static struct danests_ctx *exim_ctx;
static pid_t exim_ctx_pid;
static char exim_ctx_conf[1024];
static bool exim_metrics;	/* [exim] metrics yes: store the counts */

/* The decision of the last call, owned here until the next one: the
 * context keeps decisions in its memory (decision_memory_ttl, across the
 * calls of one message and of a queue run, never across a purge). */
static struct danests_decision *exim_last;

int check(uschar **, int, uschar *[]);
int route(uschar **, int, uschar *[]);
int class(uschar **, int, uschar *[]);
int hosts(uschar **, int, uschar *[]);
int decision(uschar **, int, uschar *[]);
int policy(uschar **, int, uschar *[]);
int require_dane(uschar **, int, uschar *[]);
int report(uschar **, int, uschar *[]);
int refusal(uschar **, int, uschar *[]);
int permfail(uschar **, int, uschar *[]);
int tls_event(uschar **, int, uschar *[]);

/* exim_yield - copy s into Exim's store as *yield; returns rc */
static int
exim_yield(uschar **yield, int rc, const char *s)
{
	size_t n = strlen(s);
	uschar *p;

	if (n >= EXIM_OUT_MAX)
		n = EXIM_OUT_MAX - 1;
	p = store_get((int)n + 1, GET_UNTAINTED);
	memcpy(p, s, n);
	p[n] = '\0';
	*yield = p;
	return rc;
}

/* exim_fail - a non-forced failure with a message; the router defers */
static int exim_fail(uschar **yield, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static int
exim_fail(uschar **yield, const char *fmt, ...)
{
	char buf[EXIM_WHY_MAX];
	int n;
	va_list ap;

	n = snprintf(buf, sizeof(buf), "danests: ");
	va_start(ap, fmt);
	vsnprintf(buf + n, sizeof(buf) - n, fmt, ap);
	va_end(ap);
	return exim_yield(yield, FAIL, buf);
}

/* exim_forced - a forced failure: the router declines */
static int
exim_forced(uschar **yield)
{
	return exim_yield(yield, FAIL_FORCED, "");
}

/* exim_conf_key - a key of [exim] (danests_config_key_cb) */
static danests_status
exim_conf_key(void *arg, const char *section, const char *key,
    const char *val, const char *file, unsigned line, char *why,
    size_t whylen)
{
	static const char *const yes_no[] = { "yes", "no", NULL };
	bool *metrics = arg;
	int w;

	(void)section;
	(void)file;
	(void)line;
	if (strcmp(key, "metrics") != 0) {
		snprintf(why, whylen, "unknown key");
		return DANESTS_PERM;
	}
	if ((w = danests_config_word(val, yes_no, why, whylen)) < 0)
		return DANESTS_PERM;
	*metrics = w == 0;
	return DANESTS_OK;
}

/* exim_ctx_get - this process's context for conf; NULL with why set */
static struct danests_ctx *
exim_ctx_get(const char *conf, char *why, size_t whylen)
{
	struct danests_config *cfg;
	char cwhy[EXIM_WHY_MAX];
	danests_status st;
	bool metrics;

	if (exim_ctx != NULL && exim_ctx_pid == getpid() &&
	    strcmp(exim_ctx_conf, conf) == 0)
		return exim_ctx;
	if (exim_ctx != NULL && exim_ctx_pid == getpid())
		danests_ctx_free(exim_ctx);
	/* A context inherited over fork() is left alone: its LMDB
	 * environment and sockets belong to the parent. */
	exim_ctx = NULL;
	if (strlen(conf) >= sizeof(exim_ctx_conf)) {
		snprintf(why, whylen, "configuration path too long");
		return NULL;
	}
	if ((cfg = danests_config_new()) == NULL) {
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	/* A file that cannot be read (missing, a directory, unreadable)
	 * defers: built-in defaults might be weaker than the file. */
	metrics = false;
	if (danests_config_read(cfg, conf, "exim", exim_conf_key, &metrics,
	    cwhy, sizeof(cwhy)) != DANESTS_OK) {
		snprintf(why, whylen, "configuration: %s", cwhy);
		danests_config_free(cfg);
		return NULL;
	}
	st = danests_ctx_new(cfg, NULL, &exim_ctx, cwhy, sizeof(cwhy));
	danests_config_free(cfg);
	if (st != DANESTS_OK) {
		exim_ctx = NULL;
		snprintf(why, whylen, "%s", cwhy);
		return NULL;
	}
	exim_ctx_pid = getpid();
	exim_metrics = metrics;
	strlcpy(exim_ctx_conf, conf, sizeof(exim_ctx_conf));
	if (danests_ctx_cache_note(exim_ctx)[0] != '\0')
		log_write(0, LOG_MAIN, "danests: cache: %s",
		    danests_ctx_cache_note(exim_ctx));
	return exim_ctx;
}

#define EXIM_LOG_EVERY		60	/* seconds between two logged errors */

/* exim_vlog_every - log "danests: WHAT: ..." unless *last says this was
 * done less than EXIM_LOG_EVERY seconds ago */
static void exim_vlog_every(time_t *last, const char *what, const char *fmt,
    va_list ap) __attribute__((format(printf, 3, 0)));
static void
exim_vlog_every(time_t *last, const char *what, const char *fmt, va_list ap)
{
	char buf[EXIM_WHY_MAX];
	time_t now = time(NULL);

	if (*last != 0 && now >= *last && now - *last < EXIM_LOG_EVERY)
		return;
	*last = now;
	vsnprintf(buf, sizeof(buf), fmt, ap);
	log_write(0, LOG_MAIN, "danests: %s: %s", what, buf);
}

/* exim_log_every - exim_vlog_every with arguments */
static void exim_log_every(time_t *last, const char *what, const char *fmt,
    ...) __attribute__((format(printf, 3, 4)));
static void
exim_log_every(time_t *last, const char *what, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	exim_vlog_every(last, what, fmt, ap);
	va_end(ap);
}

static time_t exim_push_logged;

/* exim_push - a fleet (store in danests.conf): this node's TLS-report
 * counts and, with metrics yes, its stored counters to the shared store,
 * at most once per store_push_interval per node.  Each store call is
 * bounded by store_timeout; a failure is logged (at most once a minute
 * per process), never the caller's: the next push writes the totals. */
static void
exim_push(struct danests_ctx *ctx)
{
	char why[EXIM_WHY_MAX];
	danests_status st;

	st = danests_ctx_fleet_push(ctx, exim_metrics, why, sizeof(why));
	if (st == DANESTS_TEMP || st == DANESTS_PERM)
		exim_log_every(&exim_push_logged, "counts not pushed to the "
		    "store", "%s", why);
}

/* exim_decide_flags - the decision for domain: from the context's
 * memory, the shared cache, or (unless flags has DANESTS_F_CACHE_ONLY) a
 * resolution bounded by decision_timeout.  The decision stays owned here
 * until the next call.  NULL with why set on any error. */
static const struct danests_decision *
exim_decide_flags(const char *domain, const char *conf, unsigned flags,
    char *why, size_t whylen)
{
	struct danests_ctx *ctx;
	struct danests_decision *d = NULL;
	char dwhy[EXIM_WHY_MAX], mwhy[EXIM_WHY_MAX];
	danests_status st;

	if ((ctx = exim_ctx_get(conf, why, whylen)) == NULL)
		return NULL;
	/* the core checks the name (DANESTS_PERM: not a domain name) */
	st = danests_decide(ctx, domain, flags, &d, dwhy, sizeof(dwhy));
	/* One write transaction per decision; a failure loses these
	 * counts for now (the next store adds them), never the decision. */
	if (exim_metrics && danests_ctx_metrics_store(ctx, mwhy,
	    sizeof(mwhy)) != DANESTS_OK)
		log_write(0, LOG_MAIN, "danests: metrics not stored: %s",
		    mwhy);
	/* a TLS event pushes after it recorded its result */
	if ((flags & DANESTS_F_CACHE_ONLY) == 0)
		exim_push(ctx);
	if (st != DANESTS_OK || d == NULL) {
		snprintf(why, whylen, "%.253s: no decision: %s", domain, dwhy);
		return NULL;
	}
	danests_decision_free(exim_last);
	exim_last = d;
	return d;
}

/* exim_decide - exim_decide_flags, resolving on a miss */
static const struct danests_decision *
exim_decide(const char *domain, const char *conf, char *why,
    size_t whylen)
{
	return exim_decide_flags(domain, conf, 0, why, whylen);
}

/* exim_args - check the argument count: nfixed, plus an optional
 * configuration path; sets *conf */
static bool
exim_args(int argc, uschar *argv[], int nfixed, const char **conf)
{
	int i;

	if (argc != nfixed && argc != nfixed + 1)
		return false;
	for (i = 0; i < argc; i++)
		if (argv[i] == NULL)
			return false;
	if (argc == nfixed + 1 && argv[nfixed][0] != '\0') {
		*conf = (const char *)argv[nfixed];
	} else
		*conf = EXIM_DEFAULT_CONF;
	return true;
}

/* exim_decided - the decision for domain, or NULL with the failure in
 * *yield and its return code in *rc; with deliverable, a tempfail or
 * permfail verdict is a failure too */
static const struct danests_decision *
exim_decided(uschar **yield, uschar *domain, const char *conf,
    bool deliverable, int *rc)
{
	const struct danests_decision *d;
	char why[EXIM_WHY_MAX];

	if ((d = exim_decide((char *)domain, conf, why, sizeof(why))) ==
	    NULL) {
		*rc = exim_fail(yield, "%s", why);
		return NULL;
	}
	if (deliverable && d->verdict != DANESTS_DELIVER) {
		*rc = exim_fail(yield, "%s: %s (%s)", d->domain,
		    danests_verdict_name(d->verdict),
		    danests_reason_name(d->reason));
		return NULL;
	}
	return d;
}

/* exim_name_ok - is s a host name we may hand to Exim as it is? */
static bool
exim_name_ok(const char *s)
{
	size_t n = strlen(s);

	if (n == 0 || n > 253)
		return false;
	for (; *s != '\0'; s++)
		if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
		    *s == '-' || *s == '.' || *s == '_'))
			return false;
	return true;
}

/* exim_class - the router class of a deliverable decision */
static const char *
exim_class(const struct danests_decision *d)
{
	bool dane = false, testing = false;
	size_t i;

	for (i = 0; i < d->nhosts; i++)
		switch (d->hosts[i].policy) {
		case DANESTS_POLICY_STS_ENFORCE:
			return "sts";
		case DANESTS_POLICY_DANE:
		case DANESTS_POLICY_ENCRYPT:
		case DANESTS_POLICY_SKIP:
			dane = true;
			break;
		case DANESTS_POLICY_STS_TESTING:
			testing = true;
			break;
		case DANESTS_POLICY_MAY:
			break;
		}
	if (dane)
		return "dane";
	return testing ? "testing" : "may";
}

/* exim_add - append name to a colon separated list */
static bool
exim_add(char *out, size_t outlen, const char *name)
{
	if (!exim_name_ok(name))
		return false;
	return !((out[0] != '\0' && strlcat(out, ":", outlen) >= outlen) ||
	    strlcat(out, name, outlen) >= outlen);
}

/* exim_list - the hosts whose policy is in mask (bits of danests_policy),
 * colon separated, into out.  With alias, a host's CNAME target (its TLSA
 * base name) follows its name: Exim names a host by its canonical name
 * once it has looked it up.  False when a name is unusable or the list
 * does not fit. */
static bool
exim_list(const struct danests_decision *d, unsigned mask, bool alias,
    char *out, size_t outlen)
{
	const struct danests_host *h;
	size_t i;

	out[0] = '\0';
	for (i = 0; i < d->nhosts; i++) {
		h = &d->hosts[i];
		if (!(mask & (1u << h->policy)))
			continue;
		if (!exim_add(out, outlen, h->name))
			return false;
		if (alias && h->tlsa_base != NULL &&
		    strcmp(h->tlsa_base, h->name) != 0 &&
		    !exim_add(out, outlen, h->tlsa_base))
			return false;
	}
	return true;
}

/* exim_host - the decision's entry for host, or NULL */
static const struct danests_host *
exim_host(const struct danests_decision *d, const char *host)
{
	char name[256];
	size_t i;

	if (danests_domain_normalize(host, name, sizeof(name)) != DANESTS_OK)
		return NULL;
	for (i = 0; i < d->nhosts; i++)
		if (strcmp(d->hosts[i].name, name) == 0)
			return &d->hosts[i];
	return NULL;
}

#define P(x)	(1u << DANESTS_POLICY_##x)

/* check - verdict for a redirect router: :defer:, :fail: or forced fail */
int
check(uschar **yield, int argc, uschar *argv[])
{
	const struct danests_decision *d;
	const char *conf;
	char buf[EXIM_WHY_MAX];
	int rc;

	if (!exim_args(argc, argv, 1, &conf))
		return exim_fail(yield, "check: expected DOMAIN [CONFIG]");
	if ((d = exim_decided(yield, argv[0], conf, false, &rc)) == NULL)
		return rc;
	switch (d->verdict) {
	case DANESTS_DELIVER:
		return exim_forced(yield);
	case DANESTS_PERMFAIL:
		snprintf(buf, sizeof(buf), ":fail: danests: %s: %s (%s)",
		    d->domain, danests_reason_name(d->reason),
		    d->reason == DANESTS_R_NULL_MX ?
		    "domain does not accept mail" : "domain does not exist");
		return exim_yield(yield, OK, buf);
	case DANESTS_TEMPFAIL:
	default:
		snprintf(buf, sizeof(buf), ":defer: danests: %s: tempfail "
		    "(%s)", d->domain, danests_reason_name(d->reason));
		return exim_yield(yield, OK, buf);
	}
}

/* route - route_data for a manualroute router, or forced failure */
int
route(uschar **yield, int argc, uschar *argv[])
{
	const struct danests_decision *d;
	const char *conf, *want;
	char list[EXIM_OUT_MAX - 16];
	int rc;

	if (!exim_args(argc, argv, 2, &conf))
		return exim_fail(yield, "route: expected DOMAIN CLASS "
		    "[CONFIG]");
	want = (const char *)argv[1];
	if (strcmp(want, "sts") != 0 && strcmp(want, "dane") != 0 &&
	    strcmp(want, "testing") != 0)
		return exim_fail(yield, "route: unknown class \"%.32s\" "
		    "(sts, dane or testing)", want);
	if ((d = exim_decided(yield, argv[0], conf, true, &rc)) == NULL)
		return rc;
	if (strcmp(exim_class(d), want) != 0)
		return exim_forced(yield);
	if (!exim_list(d, ~P(SKIP), false, list, sizeof(list)))
		return exim_fail(yield, "%s: host list unusable", d->domain);
	if (list[0] == '\0')
		return exim_fail(yield, "%s: no usable host", d->domain);
	strlcat(list, " bydns", sizeof(list));
	return exim_yield(yield, OK, list);
}

/* class - the domain's router class */
int
class(uschar **yield, int argc, uschar *argv[])
{
	const struct danests_decision *d;
	const char *conf;
	int rc;

	if (!exim_args(argc, argv, 1, &conf))
		return exim_fail(yield, "class: expected DOMAIN [CONFIG]");
	if ((d = exim_decided(yield, argv[0], conf, true, &rc)) == NULL)
		return rc;
	return exim_yield(yield, OK, exim_class(d));
}

/* hosts - address_data: the host lists the transports need */
int
hosts(uschar **yield, int argc, uschar *argv[])
{
	const struct danests_decision *d;
	const char *conf;
	char dane[1024], tls[1024], pkix[1024];
	char testing[1024], nodane[1024], notls[1024], buf[EXIM_OUT_MAX];
	int rc;

	if (!exim_args(argc, argv, 1, &conf))
		return exim_fail(yield, "hosts: expected DOMAIN [CONFIG]");
	if ((d = exim_decided(yield, argv[0], conf, true, &rc)) == NULL)
		return rc;
	if (!exim_list(d, P(DANE), true, dane, sizeof(dane)) ||
	    !exim_list(d, P(DANE) | P(ENCRYPT) | P(STS_ENFORCE), true, tls,
	    sizeof(tls)) ||
	    !exim_list(d, P(STS_ENFORCE), true, pkix, sizeof(pkix)) ||
	    !exim_list(d, P(STS_TESTING), true, testing, sizeof(testing)) ||
	    !exim_list(d, P(ENCRYPT) | P(STS_ENFORCE) | P(STS_TESTING) | P(MAY),
	    false, nodane, sizeof(nodane)) ||
	    !exim_list(d, P(STS_TESTING) | P(MAY), false, notls,
	    sizeof(notls)))
		return exim_fail(yield, "%s: host list unusable", d->domain);
	snprintf(buf, sizeof(buf), "dane=\"%s\" tls=\"%s\" pkix=\"%s\" "
	    "testing=\"%s\" nodane=\"%s\" notls=\"%s\"", dane, tls, pkix,
	    testing, nodane, notls);
	return exim_yield(yield, OK, buf);
}

/* decision - a short text for logs and headers */
int
decision(uschar **yield, int argc, uschar *argv[])
{
	const struct danests_decision *d;
	const char *conf;
	char buf[EXIM_WHY_MAX], part[64];
	size_t count[DANESTS_POLICY_SKIP + 1] = { 0 }, i;
	int rc;

	if (!exim_args(argc, argv, 1, &conf))
		return exim_fail(yield, "decision: expected DOMAIN [CONFIG]");
	if ((d = exim_decided(yield, argv[0], conf, false, &rc)) == NULL)
		return rc;
	snprintf(buf, sizeof(buf), "%s", danests_verdict_name(d->verdict));
	for (i = 0; i < d->nhosts; i++)
		if (d->hosts[i].policy <= DANESTS_POLICY_SKIP)
			count[d->hosts[i].policy]++;
	for (i = 0; i <= DANESTS_POLICY_SKIP; i++) {
		if (count[i] == 0)
			continue;
		snprintf(part, sizeof(part), " %s=%zu",
		    danests_policy_name((danests_policy)i), count[i]);
		strlcat(buf, part, sizeof(buf));
	}
	snprintf(part, sizeof(part), " (%s%s)", danests_reason_name(d->reason),
	    d->from_cache ? ", cached" : "");
	strlcat(buf, part, sizeof(buf));
	return exim_yield(yield, OK, buf);
}

/* policy_common - the policy of host argv[1] for domain argv[0] */
static int
policy_common(uschar **yield, int argc, uschar *argv[], const char *fn,
    danests_policy *out)
{
	const struct danests_decision *d;
	const struct danests_host *h;
	const char *conf;
	int rc;

	if (!exim_args(argc, argv, 2, &conf))
		return exim_fail(yield, "%s: expected DOMAIN HOST [CONFIG]",
		    fn);
	if ((d = exim_decided(yield, argv[0], conf, true, &rc)) == NULL)
		return rc;
	h = exim_host(d, (const char *)argv[1]);
	*out = h != NULL ? h->policy : DANESTS_POLICY_SKIP;
	return OK;
}

/* policy - the policy of one host of the domain */
int
policy(uschar **yield, int argc, uschar *argv[])
{
	danests_policy p;
	int rc;

	if ((rc = policy_common(yield, argc, argv, "policy", &p)) != OK)
		return rc;
	return exim_yield(yield, OK, danests_policy_name(p));
}

/* require_dane - "yes" when the host must be authenticated by DANE */
int
require_dane(uschar **yield, int argc, uschar *argv[])
{
	danests_policy p;
	int rc;

	if ((rc = policy_common(yield, argc, argv, "require_dane", &p)) != OK)
		return rc;
	return exim_yield(yield, OK, p == DANESTS_POLICY_DANE ? "yes" : "no");
}

/* report - log an MTA-STS testing failure (RFC 8461 5: deliver anyway) */
int
report(uschar **yield, int argc, uschar *argv[])
{
	const char *conf, *v;

	if (!exim_args(argc, argv, 3, &conf))
		return exim_fail(yield, "report: expected DOMAIN HOST VERIFIED "
		    "[CONFIG]");
	v = (const char *)argv[2];
	if (strcmp(v, "1") != 0)
		log_write(0, LOG_MAIN, "danests: %.253s: MTA-STS testing "
		    "policy not met by %.253s (%s); delivered anyway",
		    argv[0], argv[1], v[0] == '\0' ? "no TLS" :
		    "certificate-host-mismatch or certificate-not-trusted");
	return exim_yield(yield, OK, "");
}

/* exim_final - the decision on domain for an ACL at MAIL or RCPT time;
 * NULL when there is nothing to decide (the null sender, an address
 * literal) or no decision can be made, which is logged: an ACL refuses
 * only what is certain, never on an error of the module */
static const struct danests_decision *
exim_final(const char *fn, const char *domain, const char *conf)
{
	const struct danests_decision *d;
	char why[EXIM_WHY_MAX], name[256];

	if (danests_domain_normalize(domain, name, sizeof(name)) != DANESTS_OK)
		return NULL;
	if ((d = exim_decide(name, conf, why, sizeof(why))) == NULL)
		log_write(0, LOG_MAIN, "danests: %s: %s; not refused", fn, why);
	return d;
}

/* refusal - for an ACL at MAIL ("mail") or RCPT ("rcpt") time: the SMTP
 * reply that refuses the address when the domain's decision is a final
 * refusal (danests_refusal: null MX, no such domain), "" for every other
 * decision (tempfail included: the delivery defers it) and when none can
 * be made (exim_final) */
int
refusal(uschar **yield, int argc, uschar *argv[])
{
	const struct danests_decision *d;
	const char *conf, *role, *domain;
	char buf[EXIM_WHY_MAX];

	if (!exim_args(argc, argv, 2, &conf) ||
	    (strcmp((role = (const char *)argv[0]), "rcpt") != 0 &&
	    strcmp(role, "mail") != 0))
		return exim_fail(yield, "refusal: expected rcpt|mail DOMAIN "
		    "[CONFIG]");
	domain = (const char *)argv[1];
	if ((d = exim_final("refusal", domain, conf)) == NULL ||
	    !danests_refusal(d->verdict, d->reason, role[0] == 'm', domain,
	    buf, sizeof(buf)))
		return exim_yield(yield, OK, "");
	return exim_yield(yield, OK, buf);
}

/* permfail - the reason ("null-mx" or "nxdomain") where refusal refuses
 * a recipient, else "" */
int
permfail(uschar **yield, int argc, uschar *argv[])
{
	const struct danests_decision *d;
	const char *conf;
	char buf[EXIM_WHY_MAX];

	if (!exim_args(argc, argv, 1, &conf))
		return exim_fail(yield, "permfail: expected DOMAIN [CONFIG]");
	if ((d = exim_final("permfail", (const char *)argv[0], conf)) ==
	    NULL || !danests_refusal(d->verdict, d->reason, false,
	    (const char *)argv[0], buf, sizeof(buf)))
		return exim_yield(yield, OK, "");
	return exim_yield(yield, OK, danests_reason_name(d->reason));
}

/*
 * TLS reporting (RFC 8460).  Exim raises a transport's events in the
 * process that runs the transport, one connection at a time; what one
 * connection has shown so far is kept here between its events, so that
 * each TLS negotiation attempt gives one result: dane:fail, or the
 * smtp:ehlo after STARTTLS, or the msg:host:defer of a TLS failure,
 * whichever comes first.
 */
#define EXIM_CERT_MAX		16384	/* base64 DER of a peer certificate */
#define EXIM_INFO_MAX		200	/* failure-reason-code kept */
/* Exim's errno values for a TLS failure (macros.h, 4.96 and later) */
#define EXIM_ERRNO_TLSFAILURE	(-37)	/* failed to start TLS */
#define EXIM_ERRNO_TLSREQUIRED	(-38)	/* mandatory TLS not started */

static struct {
	pid_t pid;
	char addr[64];		/* host address of the connection */
	bool done;		/* its result is recorded */
	char cert[EXIM_CERT_MAX];	/* its peer certificate or "" */
} exim_tls;

static time_t exim_tls_logged;

/* exim_tls_log - log why a result was dropped, at most once a minute */
static void exim_tls_log(const char *fmt, ...)
    __attribute__((format(printf, 1, 2)));
static void
exim_tls_log(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	exim_vlog_every(&exim_tls_logged, "TLS report not recorded", fmt, ap);
	va_end(ap);
}

/* exim_tls_conn - the state of the connection to addr; a new one when
 * fresh (tcp:connect), or when the process or the address changed */
static void
exim_tls_conn(const char *addr, bool fresh)
{
	if (!fresh && exim_tls.pid == getpid() &&
	    strcmp(exim_tls.addr, addr) == 0)
		return;
	exim_tls.pid = getpid();
	strlcpy(exim_tls.addr, addr, sizeof(exim_tls.addr));
	exim_tls.done = false;
	exim_tls.cert[0] = '\0';
}

/* exim_host_any - the decision's entry for host, by its MX name or by
 * its CNAME target (Exim names a host by the latter), or NULL */
static const struct danests_host *
exim_host_any(const struct danests_decision *d, const char *host)
{
	const struct danests_host *h;
	char name[256];
	size_t i;

	if ((h = exim_host(d, host)) != NULL)
		return h;
	if (danests_domain_normalize(host, name, sizeof(name)) != DANESTS_OK)
		return NULL;
	for (i = 0; i < d->nhosts; i++)
		if (d->hosts[i].tlsa_base != NULL &&
		    strcmp(d->hosts[i].tlsa_base, name) == 0)
			return &d->hosts[i];
	return NULL;
}

/* exim_cert_type - the RFC 8460 result type of a certificate that did
 * not verify: certificate-expired past its notAfter,
 * certificate-host-mismatch when it is not valid for host (RFC 6125, no
 * partial wildcards), else certificate-not-trusted (also when it cannot
 * be read) */
static danests_result_type
exim_cert_type(const char *b64, const char *host)
{
	unsigned char der[EXIM_CERT_MAX];
	const unsigned char *p = der;
	danests_result_type rt = DANESTS_RT_CERT_NOT_TRUSTED;
	size_t n = strlen(b64);
	int len;
	X509 *x;

	if (n < 4 || n % 4 != 0 || n / 4 * 3 > sizeof(der))
		return rt;
	if ((len = EVP_DecodeBlock(der, (const unsigned char *)b64,
	    (int)n)) <= 0)
		return rt;
	/* EVP_DecodeBlock counts the padding as data */
	len -= (b64[n - 1] == '=') + (b64[n - 2] == '=');
	if ((x = d2i_X509(NULL, &p, len)) == NULL)
		return rt;
	if (X509_cmp_current_time(X509_get0_notAfter(x)) < 0)
		rt = DANESTS_RT_CERT_EXPIRED;
	else if (X509_check_host(x, host, 0,
	    X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS, NULL) != 1)
		rt = DANESTS_RT_CERT_HOST_MISMATCH;
	X509_free(x);
	return rt;
}

/* exim_rt_byname - the result type named s (Exim's dane:fail data) */
static danests_result_type
exim_rt_byname(const char *s)
{
	const char *name;
	int i;

	for (i = 1; i < 64 && (name = danests_result_type_name(
	    (danests_result_type)i)) != NULL; i++)
		if (strcmp(name, s) == 0)
			return (danests_result_type)i;
	return DANESTS_RT_VALIDATION_FAILURE;
}

/* The session being recorded. */
struct exim_session {
	const char *conf, *domain, *host, *addr, *sip;
	const char *verified;	/* smtp:ehlo after STARTTLS: "1" or "0" */
	danests_result_type rt;	/* else the failure */
	const char *info;	/* failure-reason-code, or NULL */
};

/* exim_tls_record - count one session (RFC 8460 4.3) with the policy of
 * its host; errors are logged and the result dropped */
static void
exim_tls_record(const struct exim_session *s)
{
	const struct danests_decision *d;
	const struct danests_host *h;
	struct danests_rpt_result r;
	struct danests_ctx *ctx;
	char buf[3 * DANESTS_RPT_STRING_MAX], why[EXIM_WHY_MAX];
	char info[EXIM_INFO_MAX + 1];
	const char *reason = s->info;
	danests_status st;
	size_t i;

	if (s->domain[0] == '\0') {
		exim_tls_log("%s: no $domain (several domains in one "
		    "delivery?)", s->host);
		return;
	}
	if ((ctx = exim_ctx_get(s->conf, why, sizeof(why))) == NULL) {
		exim_tls_log("%s", why);
		return;
	}
	/* Never resolve here: the routers made the decision moments ago. */
	if ((d = exim_decide_flags(s->domain, s->conf, DANESTS_F_CACHE_ONLY,
	    why, sizeof(why))) == NULL) {
		exim_tls_log("%s", why);
		return;
	}
	if ((h = exim_host_any(d, s->host)) == NULL) {
		exim_tls_log("%s: host %.253s not in the decision", d->domain,
		    s->host);
		return;
	}
	memset(&r, 0, sizeof(r));
	if (danests_report_policy(d, h, &r, buf, sizeof(buf)) !=
	    DANESTS_OK) {
		exim_tls_log("%s: policy too large to record", d->domain);
		return;
	}
	if (s->verified != NULL) {
		/* TLS is up, and Exim enforced what the host's transport
		 * requires; only an MTA-STS testing host may be unverified
		 * (RFC 8460 4.3: a failure, although delivered). */
		r.success = h->policy != DANESTS_POLICY_STS_TESTING ||
		    strcmp(s->verified, "1") == 0;
		if (!r.success) {
			r.result_type = exim_cert_type(exim_tls.cert, s->host);
			reason = "certificate not verified (MTA-STS testing)";
		}
	} else {
		r.success = false;
		r.result_type = s->rt;
	}
	if (!r.success) {
		r.sending_mta_ip = s->sip[0] != '\0' ? s->sip : NULL;
		r.receiving_mx_hostname = s->host[0] != '\0' ? s->host : NULL;
		r.receiving_ip = s->addr[0] != '\0' ? s->addr : NULL;
		if (reason != NULL) {
			strlcpy(info, reason, sizeof(info));
			for (i = 0; info[i] != '\0'; i++)
				if (info[i] < 0x20 || info[i] > 0x7e)
					info[i] = '?';
			r.additional_info = info;
		}
	}
	st = danests_ctx_report(ctx, &r, why, sizeof(why));
	if (st != DANESTS_OK && st != DANESTS_NOTFOUND)
		exim_tls_log("%s: %s", d->domain, why);
	exim_push(ctx);
}

/* exim_defer_type - the result type of a msg:host:defer event whose
 * data is "ERRNO MESSAGE" (*msg: MESSAGE), or DANESTS_RT_NONE when it is
 * not a TLS failure */
static danests_result_type
exim_defer_type(const char *data, const char *host, const char **msg)
{
	char *end;
	long e;

	errno = 0;
	e = strtol(data, &end, 10);
	if (errno != 0 || end == data || *end != ' ')
		return DANESTS_RT_NONE;
	data = end + 1;
	*msg = data;
	if (e == EXIM_ERRNO_TLSREQUIRED)
		return DANESTS_RT_STARTTLS_NOT_SUPPORTED;
	if (e == EXIM_ERRNO_TLSFAILURE) {
		if (strstr(data, "certificate verification failed") != NULL ||
		    strstr(data, "no certificate received") != NULL)
			return exim_tls.cert[0] != '\0' ?
			    exim_cert_type(exim_tls.cert, host) :
			    DANESTS_RT_CERT_NOT_TRUSTED;
		return DANESTS_RT_VALIDATION_FAILURE;
	}
	/* a 4xx answer to STARTTLS (or none) with TLS required */
	if (strstr(data, "after STARTTLS") != NULL)
		return DANESTS_RT_STARTTLS_NOT_SUPPORTED;
	return DANESTS_RT_NONE;
}

/* tls_event - a transport event: record the TLS result it shows */
int
tls_event(uschar **yield, int argc, uschar *argv[])
{
	struct exim_session s;
	const char *ev, *data;

	memset(&s, 0, sizeof(s));
	if (!exim_args(argc, argv, 6, &s.conf)) {
		exim_tls_log("tls_event: expected EVENT DOMAIN HOST ADDRESS "
		    "SENDING-IP DATA [CONFIG]");
		return exim_yield(yield, OK, "");
	}
	ev = (const char *)argv[0];
	s.domain = (const char *)argv[1];
	s.host = (const char *)argv[2];
	s.addr = (const char *)argv[3];
	s.sip = (const char *)argv[4];
	data = (const char *)argv[5];

	if (strcmp(ev, "tcp:connect") == 0) {
		exim_tls_conn(s.addr, true);
	} else if (strcmp(ev, "tls:cert") == 0) {
		/* the peer's own certificate (depth 0; the fragment passes
		 * no other) */
		exim_tls_conn(s.addr, false);
		if (strlcpy(exim_tls.cert, data, sizeof(exim_tls.cert)) >=
		    sizeof(exim_tls.cert))
			exim_tls.cert[0] = '\0';
	} else if (strcmp(ev, "dane:fail") == 0) {
		exim_tls_conn(s.addr, false);
		if (!exim_tls.done) {
			exim_tls.done = true;
			s.rt = exim_rt_byname(data);
			s.info = "dane:fail";
			exim_tls_record(&s);
		}
	} else if (strcmp(ev, "smtp:ehlo") == 0) {
		exim_tls_conn(s.addr, false);
		if (!exim_tls.done) {
			exim_tls.done = true;
			s.verified = data;
			exim_tls_record(&s);
		}
	} else if (strcmp(ev, "msg:host:defer") == 0) {
		exim_tls_conn(s.addr, false);
		if (!exim_tls.done &&
		    (s.rt = exim_defer_type(data, s.host, &s.info)) !=
		    DANESTS_RT_NONE) {
			exim_tls.done = true;
			exim_tls_record(&s);
		}
	}
	return exim_yield(yield, OK, "");
}
