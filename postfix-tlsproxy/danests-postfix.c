/*
 * danests-postfix.c - socketmap TLS policy server for Postfix:
 * configuration and main
 *
 * Answers smtp_tls_policy_maps lookups (Postfix socketmap_table(5)) with
 * the level the danests core decided for the next-hop domain: DANE (RFC
 * 7672) levels that Postfix enforces per MX itself, "secure match=..."
 * for MTA-STS (RFC 8461) enforce policies, NOTFOUND where Postfix's own
 * default applies, TEMP on any doubt.  See danests-postfix(8).
 *
 * One process, one libevent loop shared with the core (getdns and curl
 * run on it): many clients at once, one resolution per domain however
 * many clients ask, a bound on each request, decisions reused from
 * memory until they expire.  The other files: see danests-postfix.h.
 */
#include "danests-postfix.h"
#include "danests-report.h"

#include <sys/socket.h>
#include <sys/un.h>

#include <errno.h>
#include <event2/util.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DEF_CONFIG	"/etc/danests/danests-postfix.conf"
#define DEF_LISTEN	"inet:127.0.0.1:8462"

struct conf *conf;
static const char *config_path = DEF_CONFIG;
static bool force_stderr;		/* -d */

/*
 * Configuration
 */

/* conf_free - release a configuration */
void
conf_free(struct conf *c)
{
	size_t i;

	if (c == NULL)
		return;
	for (i = 0; i < c->nlisten; i++)
		free(c->listen[i]);
	danests_config_free(c->core);
	free(c);
}

/* conf_profile - "NAME [strict-testing] [tlsrpt]" */
static bool
conf_profile(struct conf *c, const char *val, char *why, size_t whylen)
{
	char buf[256], *tok, *save = NULL;
	struct pfmap_profile *p;
	size_t i;

	if (c->nprofiles >= MAX_PROFILES) {
		snprintf(why, whylen, "too many profiles");
		return false;
	}
	p = &c->profiles[c->nprofiles];
	memset(p, 0, sizeof(*p));
	strlcpy(buf, val, sizeof(buf));
	if ((tok = strtok_r(buf, " \t", &save)) == NULL ||
	    strlen(tok) >= sizeof(p->name)) {
		snprintf(why, whylen, "bad name");
		return false;
	}
	for (i = 0; tok[i] != '\0'; i++)
		if (!(tok[i] == '-' || tok[i] == '_' || tok[i] == '.' ||
		    (tok[i] >= '0' && tok[i] <= '9') ||
		    (tok[i] >= 'a' && tok[i] <= 'z') ||
		    (tok[i] >= 'A' && tok[i] <= 'Z'))) {
			snprintf(why, whylen, "bad name %s", tok);
			return false;
		}
	strlcpy(p->name, tok, sizeof(p->name));
	while ((tok = strtok_r(NULL, " \t", &save)) != NULL) {
		if (strcmp(tok, "strict-testing") == 0)
			p->strict_testing = true;
		else if (strcmp(tok, "tlsrpt") == 0)
			p->tlsrpt = true;
		else {
			snprintf(why, whylen, "profile %s: unknown option %s",
			    p->name, tok);
			return false;
		}
	}
	for (i = 0; i < c->nprofiles; i++)
		if (strcmp(c->profiles[i].name, p->name) == 0) {
			snprintf(why, whylen, "profile %s defined twice",
			    p->name);
			return false;
		}
	c->nprofiles++;
	return true;
}

/* listen_ok - "inet:ADDR:PORT", "inet:[ADDR]:PORT" or "unix:/PATH"
 * (core/daemon reads them) */
static bool
listen_ok(const char *val, char *why, size_t whylen)
{
	struct dmn_listen l;

	if (strncmp(val, "inet:", 5) != 0 && strncmp(val, "unix:", 5) != 0) {
		snprintf(why, whylen, "expected inet:ADDR:PORT, "
		    "inet:[ADDR]:PORT or unix:/PATH");
		return false;
	}
	return dmn_listen_parse(val, &l, why, whylen);
}

/* conf_apply - one key of the [postfix] section (danests_config_key_cb);
 * the core keys go to the library before the first section */
static danests_status
conf_apply(void *arg, const char *section, const char *key, const char *val,
    const char *file, unsigned line, char *why, size_t whylen)
{
	struct conf *c = arg;

#define N(key, min, max, scale, field) \
	DANESTS_CONFIG_NUM(key, min, max, scale, struct conf, field)
	static const struct danests_config_num nums[] = {
		N("lookup_timeout", 1, 90, 1000, lookup_timeout_ms),
		N("max_clients", 1, 100000, 1, max_clients),
		N("idle_timeout", 1, 86400, 1, idle_timeout_s),
		N("refresh_interval", 0, 86400, 1, refresh_interval_s),
		N("refresh_window", 60, 31557600, 1, refresh_window_s),
		N("refresh_parallel", 1, 64, 1, refresh_parallel),
	};
#undef N
	static const char *const logs[] = { "syslog", "stderr", NULL };
	static const char *const yes_no[] = { "yes", "no", NULL };
	bool is_log;
	int w;

	if (strcmp(key, "listen") == 0) {
		if (c->nlisten >= MAX_LISTEN) {
			snprintf(why, whylen, "more than %d listen addresses",
			    MAX_LISTEN);
			return DANESTS_PERM;
		}
		if (!listen_ok(val, why, whylen))
			return DANESTS_PERM;
		if ((c->listen[c->nlisten] = strdup(val)) == NULL) {
			snprintf(why, whylen, "out of memory");
			return DANESTS_TEMP;
		}
		c->nlisten++;
		return DANESTS_OK;
	}
	if (strcmp(key, "user") == 0)
		return dmn_conf_user(&c->user, val, file, line, why, whylen) ?
		    DANESTS_OK : DANESTS_PERM;
	if (strcmp(key, "pidfile") == 0) {
		if (strcmp(val, "none") != 0 && val[0] != '/') {
			snprintf(why, whylen, "expected an absolute path or "
			    "none");
			return DANESTS_PERM;
		}
		if (strlcpy(c->pidfile, strcmp(val, "none") == 0 ? "" : val,
		    sizeof(c->pidfile)) >= sizeof(c->pidfile)) {
			snprintf(why, whylen, "path too long");
			return DANESTS_PERM;
		}
		return DANESTS_OK;
	}
	if (strcmp(key, "profile") == 0)
		return conf_profile(c, val, why, whylen) ? DANESTS_OK :
		    DANESTS_PERM;
	/* log syslog|stderr, verbose yes|no */
	if ((is_log = strcmp(key, "log") == 0) || strcmp(key, "verbose") == 0) {
		if ((w = danests_config_word(val, is_log ? logs : yes_no, why,
		    whylen)) < 0)
			return DANESTS_PERM;
		if (is_log)
			c->log_stderr = w == 1;
		else
			c->verbose = w == 0;
		return DANESTS_OK;
	}
	if (strcmp(key, "unix_mode") == 0 || strcmp(key, "tlsrpt_mode") == 0) {
		char *end;
		unsigned long m = strtoul(val, &end, 8);

		if (*val < '0' || *val > '7' || *end != '\0' || m > 0777) {
			snprintf(why, whylen, "expected an octal mode");
			return DANESTS_PERM;
		}
		if (key[0] == 'u')
			c->unix_mode = (unsigned)m;
		else
			c->tlsrpt_mode = (unsigned)m;
		return DANESTS_OK;
	}
	if (strcmp(key, "metrics_listen") == 0)
		return dmn_conf_metrics_listen(val, c->metrics_listen,
		    sizeof(c->metrics_listen), why, whylen) ? DANESTS_OK :
		    DANESTS_PERM;
	if (strcmp(key, "tlsrpt_socket") == 0) {
		/* none, or the absolute path of a unix datagram socket */
		if (strcmp(val, "none") == 0) {
			c->tlsrpt_socket[0] = '\0';
			return DANESTS_OK;
		}
		if (val[0] != '/' || strlen(val) >= sizeof(c->tlsrpt_socket)) {
			snprintf(why, whylen, "expected an absolute path "
			    "shorter than %zu bytes, or none",
			    sizeof(c->tlsrpt_socket));
			return DANESTS_PERM;
		}
		strlcpy(c->tlsrpt_socket, val, sizeof(c->tlsrpt_socket));
		return DANESTS_OK;
	}
	return danests_config_num(nums, sizeof(nums) / sizeof(nums[0]), c,
	    key, val, why, whylen);
}

/* conf_load - defaults, then config_path: its core keys and [postfix] */
struct conf *
conf_load(char *why, size_t whylen)
{
	struct conf *c;

	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (c->core = danests_config_new()) == NULL) {
		free(c);
		snprintf(why, whylen, "out of memory");
		return NULL;
	}
	c->lookup_timeout_ms = 20000;
	c->max_clients = 1000;
	c->idle_timeout_s = 300;
	c->refresh_interval_s = 3600;
	c->refresh_window_s = 86400;
	c->refresh_parallel = 4;
	c->unix_mode = 0666;
	c->tlsrpt_mode = 0660;
	dmn_conf_user_default(&c->user);
	if (danests_config_read(c->core, config_path, "postfix", conf_apply, c,
	    why, whylen) != DANESTS_OK)
		goto fail;
	if (force_stderr)
		c->log_stderr = true;
	if (c->nlisten == 0 && (c->listen[c->nlisten++] = strdup(DEF_LISTEN)) ==
	    NULL) {
		snprintf(why, whylen, "out of memory");
		goto fail;
	}
	if (c->nprofiles == 0) {
		/* One profile per Postfix generation: plain answers, strict
		 * testing, and the TLSRPT attributes of Postfix >= 3.10. */
		(void)conf_profile(c, "postfix", why, whylen);
		(void)conf_profile(c, "postfix-strict strict-testing", why,
		    whylen);
		(void)conf_profile(c, "postfix-tlsrpt tlsrpt", why, whylen);
	}
	return c;
fail:
	conf_free(c);
	return NULL;
}

/* profile_find - the profile a map name selects, or NULL */
const struct pfmap_profile *
profile_find(const char *name)
{
	size_t i;

	for (i = 0; i < conf->nprofiles; i++)
		if (strcmp(conf->profiles[i].name, name) == 0)
			return &conf->profiles[i];
	return NULL;
}

static const char usage_text[] =
    "usage: danests-postfix [-dhn] [-c file]\n"
    "  -c file  configuration (default " DEF_CONFIG ")\n"
    "  -d       stay in the foreground, log to stderr\n"
    "  -h       this help\n"
    "  -n       check the configuration as the start would, exit\n"
    "See danests-postfix(8) and danests.conf(5).\n";

/* server_check_cb - server_check as a dmn_check_fn */
static bool
server_check_cb(void *arg, char *why, size_t whylen)
{
	return server_check(arg, why, whylen);
}

/* conf_check - -n: what the start would fail on, besides the syntax
 * (dmn_conf_check, then server_check: listen specs, the user and the
 * directories it must write); 0 or 78 */
static int
conf_check(void)
{
	if (conf->tlsrpt_socket[0] != '\0') {
		if (!dmn_conf_dir(PF_NAME, config_path, "tlsrpt_socket",
		    conf->tlsrpt_socket, conf->tlsrpt_socket))
			return 78;
		if (!danests_config_report(conf->core)->enabled)
			fprintf(stderr, "danests-postfix: note: tlsrpt_socket "
			    "is set but tls_reports is off: results are "
			    "dropped\n");
	}
	if (conf->metrics_listen[0] != '\0') {
		struct dmn_listen l;
		char why[256];

		if (dmn_listen_parse(conf->metrics_listen, &l, why,
		    sizeof(why)) && !dmn_http_loopback(&l))
			fprintf(stderr, "%s: warning: metrics_listen %s is not "
			    "a loopback address: whoever reaches it reads the "
			    "counters\n", PF_NAME, conf->metrics_listen);
	}
	if (dmn_conf_check(PF_NAME, config_path, conf->core,
	    (const char *const *)conf->listen, conf->nlisten, &conf->user,
	    server_check_cb, conf) != 0)
		return 78;	/* EX_CONFIG */
	printf("%s: configuration ok: %zu listen address(es), %zu "
	    "profile(s), user %s\n", config_path, conf->nlisten,
	    conf->nprofiles, conf->user.name);
	return 0;
}

int
main(int argc, char **argv)
{
	struct dmn_opts opt = { DEF_CONFIG, false, false };
	char why[1024];
	int rc;

	dmn_options(argc, argv, true, usage_text, &opt);
	config_path = opt.config;
	force_stderr = opt.foreground;

	if ((conf = conf_load(why, sizeof(why))) == NULL) {
		fprintf(stderr, "danests-postfix: %s\n", why);
		if (!opt.check) {
			openlog("danests-postfix", LOG_PID, LOG_MAIL);
			syslog(LOG_ERR, "%s", why);
		}
		return 78;	/* EX_CONFIG */
	}
	if (opt.check) {
		rc = conf_check();
		conf_free(conf);
		return rc;
	}
	rc = server_run(opt.foreground);
	conf_free(conf);
	return rc;
}
