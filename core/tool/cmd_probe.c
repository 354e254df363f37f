/*
 * cmd_probe.c - "danests probe": decide for a domain, then reach each MX
 * host as its policy asks, up to a verified TLS session, and QUIT
 *
 *	danests probe [--resolver ADDR[@PORT]] [--ca-file FILE]
 *	    [--cache-dir DIR | --no-cache] [--json] [--timeout SECONDS]
 *	    [--port PORT] [--helo NAME] DOMAIN
 *
 * No mail is sent.  For each host it prints what was offered (greeting,
 * EHLO extensions), negotiated (TLS version, cipher, peer chain) and
 * verified (matched TLSA record or PKIX name), or the RFC 8460 result type
 * of the failure.  Exit status: 0 when some host could take mail as its
 * policy asks, 75 when none could or the domain defers, 69 when it
 * bounces, 64 for a usage error.
 */
#include "danests-smtp.h"
#include "cmds.h"
#include "common.h"

#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>




static const char probe_help[] =
"NAME\n"
"     danests probe - connect to a domain's MX hosts as their policy asks\n"
"\n"
"SYNOPSIS\n"
"     danests probe [--resolver ADDR[@PORT]] [--ca-file FILE]\n"
"                   [--cache-dir DIR | --no-cache] [--json]\n"
"                   [--timeout SECONDS] [--config FILE] [--port PORT]\n"
"                   [--helo NAME] DOMAIN\n"
"\n"
"DESCRIPTION\n"
"     Decides for DOMAIN as 'danests check' does, then connects to every MX\n"
"     host that may be used, in delivery order: greeting, EHLO, STARTTLS and\n"
"     the TLS handshake with the verification the host's policy asks (DANE\n"
"     with the host's TLSA records, PKIX and the MX name for MTA-STS,\n"
"     unauthenticated for encrypt and may), then QUIT.  No mail is sent.\n"
"     Prints what each host offered, what was negotiated (TLS version,\n"
"     cipher, peer chain) and verified (the TLSA record that matched, or\n"
"     the PKIX name), or the RFC 8460 result type of the failure: the\n"
"     answer to \"why does mail to DOMAIN defer\".\n"
"\n"
"OPTIONS\n"
"     --resolver, --ca-file, --cache-dir, --no-cache, --json, --timeout,\n"
"     --config\n"
"             As for 'danests check'; --timeout also bounds each host's\n"
"             probe (default 15 s for the decision, 30 s per host).\n"
"\n"
"     --port PORT\n"
"             SMTP port of the MX hosts (default 25).\n"
"\n"
"     --helo NAME\n"
"             Name to send with EHLO (default: this host's name).\n"
"\n"
"     --help, -h\n"
"             Show this text and exit.\n"
"\n"
"EXIT STATUS\n"
"     0   some host can take mail as its policy asks\n"
"     64  usage error\n"
"     69  the domain fails permanently (NXDOMAIN, null MX)\n"
"     75  the domain defers, or no host could be reached as its policy asks\n";

/* ext_names - the EHLO extensions as words */
static void
ext_names(unsigned ext, char *buf, size_t len)
{
	static const char *names[] = { "STARTTLS", "PIPELINING", "SIZE",
	    "8BITMIME", "SMTPUTF8", "ENHANCEDSTATUSCODES" };
	size_t i, n = 0;

	buf[0] = '\0';
	for (i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if ((ext & (1u << i)) && n < len)
			n += (size_t)snprintf(buf + n, len - n, "%s%s",
			    n ? " " : "", names[i]);
}

/* print_host - text report of one host */
static void
print_host(const struct danests_host *h, const struct danests_smtp_probe *p)
{
	char ext[128];
	size_t i;

	printf("  %s (prio %d, policy %s, %s)\n", h->name, h->priority,
	    danests_policy_name(h->policy), danests_reason_name(h->reason) ?
	    danests_reason_name(h->reason) : "-");
	if (h->policy == DANESTS_POLICY_SKIP) {
		printf("    not contacted: %s\n", p->error);
		return;
	}
	printf("    address   %s\n", *p->addr ? p->addr : "-");
	if (*p->banner)
		printf("    greeting  %s\n", p->banner);
	if (*p->banner) {
		ext_names(p->ext, ext, sizeof(ext));
		printf("    ehlo      %s\n", *ext ? ext : "-");
	}
	if (*p->tls_version)
		printf("    tls       %s %s%s\n", p->tls_version, p->cipher,
		    p->tls ? "" : " (handshake failed)");
	for (i = 0; i < p->nchain; i++)
		printf("    chain %zu   s:%s\n              i:%s\n", i,
		    p->chain_subject[i], p->chain_issuer[i]);
	if (p->tls)
		printf("    verify    %s%s%s\n", p->verify.verified ?
		    "verified: " : "not verified: ", p->verify.detail,
		    "");
	if (p->status == DANESTS_OK)
		printf("    result    ok%s%s\n", p->result_type !=
		    DANESTS_RT_NONE ? ", " : "", p->result_type !=
		    DANESTS_RT_NONE ? p->error : "");
	else
		printf("    result    FAIL %s: %s\n", p->result_type !=
		    DANESTS_RT_NONE ? danests_result_type_name(p->result_type) :
		    "connection", p->error);
}

/* host_json - JSON report of one host */
static json_t *
host_json(const struct danests_host *h, const struct danests_smtp_probe *p)
{
	json_t *o, *chain, *ext;
	char names[128], *s, *save = NULL;
	size_t i;

	o = json_pack("{s:s, s:i, s:s, s:s?}", "name", h->name, "priority",
	    h->priority, "policy", danests_policy_name(h->policy), "reason",
	    danests_reason_name(h->reason));
	if (o == NULL)
		return NULL;
	json_object_set_new(o, "contacted",
	    json_boolean(h->policy != DANESTS_POLICY_SKIP));
	json_object_set_new(o, "address", *p->addr ? json_string(p->addr) :
	    json_null());
	json_object_set_new(o, "greeting", *p->banner ?
	    json_string(p->banner) : json_null());
	ext = json_array();
	ext_names(p->ext, names, sizeof(names));
	for (s = strtok_r(names, " ", &save); s; s = strtok_r(NULL, " ", &save))
		json_array_append_new(ext, json_string(s));
	json_object_set_new(o, "ehlo", ext);
	json_object_set_new(o, "tls", json_boolean(p->tls));
	json_object_set_new(o, "tls_version", *p->tls_version ?
	    json_string(p->tls_version) : json_null());
	json_object_set_new(o, "cipher", *p->cipher ? json_string(p->cipher) :
	    json_null());
	chain = json_array();
	for (i = 0; i < p->nchain; i++)
		json_array_append_new(chain, json_pack("{s:s, s:s}", "subject",
		    p->chain_subject[i], "issuer", p->chain_issuer[i]));
	json_object_set_new(o, "chain", chain);
	json_object_set_new(o, "verified", json_boolean(p->tls &&
	    p->verify.verified));
	json_object_set_new(o, "verify_detail", p->tls ?
	    json_string(p->verify.detail) : json_null());
	if (p->tls && p->verify.usage >= 0)
		json_object_set_new(o, "tlsa_match", json_pack("{s:i, s:i, s:i, "
		    "s:i}", "usage", p->verify.usage, "selector",
		    p->verify.selector, "mtype", p->verify.mtype, "depth",
		    p->verify.depth));
	json_object_set_new(o, "peername", p->tls && *p->verify.peername ?
	    json_string(p->verify.peername) : json_null());
	json_object_set_new(o, "status", json_string(p->status == DANESTS_OK ?
	    "ok" : "fail"));
	json_object_set_new(o, "result_type", p->result_type !=
	    DANESTS_RT_NONE ? json_string(danests_result_type_name(
	    p->result_type)) : json_null());
	json_object_set_new(o, "error", *p->error ? json_string(p->error) :
	    json_null());
	return o;
}

/* cmd_probe - the probe command; argv[0] is "probe" */
int
cmd_probe(int argc, char **argv)
{
	enum { O_PORT = O_COMMON_END, O_HELO };
	static const struct option opts[] = {
		COMMON_OPTIONS,
		{ "port", required_argument, NULL, O_PORT },
		{ "helo", required_argument, NULL, O_HELO },
		{ NULL, 0, NULL, 0 },
	};
	struct common o;
	struct danests_ctx *ctx = NULL;
	struct danests_decision *d = NULL;
	struct danests_smtp_opts so;
	struct danests_smtp_probe *pr = NULL;
	struct ssl_ctx_st *tls = NULL;
	char why[256] = "", domain[256];
	bool reached = false;
	unsigned port = 25;
	json_t *out = NULL, *hosts;
	char *text;
	size_t i;
	int c, rc;

	if ((rc = common_init(&o, "probe")) != 0)
		return rc;
	rc = EXIT_USAGE;
	danests_smtp_opts_default(&so);
	opterr = 0;
	optind = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'h':
			fputs(probe_help, stdout);
			rc = 0;
			goto out;
		case O_PORT:
			if (!common_uint(optarg, 1, 65535, &port)) {
				common_usage(&o, "--port: expected 1 to 65535",
				    optarg);
				goto out;
			}
			continue;
		case O_HELO:
			if (danests_domain_normalize(optarg, domain,
			    sizeof(domain)) != DANESTS_OK) {
				common_usage(&o, "--helo: malformed name",
				    optarg);
				goto out;
			}
			so.helo = optarg;
			continue;
		}
		if (!common_rest(&o, c, argv))
			goto out;
	}
	if (argc - optind != 1) {
		common_usage(&o, argc - optind == 0 ? "missing domain" :
		    "probe takes one domain", NULL);
		goto out;
	}
	if (danests_domain_normalize(argv[optind], domain, sizeof(domain)) !=
	    DANESTS_OK) {
		common_usage(&o, "malformed domain", argv[optind]);
		goto out;
	}
	if ((rc = common_apply(&o)) != 0)
		goto out;
	rc = EXIT_TEMP;
	/* a probe is interactive: bound each host well below RFC 5321's
	 * delivery timeouts */
	so.port = port;
	so.total_ms = (o.secs > 0 ? o.secs : 30) * 1000;
	so.connect_ms = so.greeting_ms = so.tls_ms = so.total_ms;
	if (danests_ctx_new(o.cfg, NULL, &ctx, why, sizeof(why)) != DANESTS_OK) {
		fprintf(stderr, "danests: probe: %s\n", why);
		goto out;
	}
	if (danests_decide(ctx, domain, o.flags, &d, why, sizeof(why)) !=
	    DANESTS_OK) {
		fprintf(stderr, "danests: %s: cannot decide: %s\n", domain,
		    why);
		goto out;
	}
	if ((tls = danests_tls_ctx_new(danests_config_ca_file(o.cfg), why, sizeof(why))) == NULL) {
		fprintf(stderr, "danests: probe: %s\n", why);
		goto out;
	}
	if ((pr = calloc(d->nhosts ? d->nhosts : 1, sizeof(*pr))) == NULL) {
		fprintf(stderr, "danests: out of memory\n");
		goto out;
	}
	if (d->verdict == DANESTS_DELIVER)
		for (i = 0; i < d->nhosts; i++)
			if (danests_smtp_probe(tls, &d->hosts[i], &so,
			    &pr[i]) == DANESTS_OK)
				reached = true;
	if (o.json) {
		text = danests_decision_to_json(d);
		if (text == NULL || (out = json_loads(text, 0, NULL)) == NULL) {
			free(text);
			fprintf(stderr, "danests: probe: cannot render JSON\n");
			goto out;
		}
		free(text);
		hosts = json_array();
		for (i = 0; d->verdict == DANESTS_DELIVER && i < d->nhosts; i++)
			json_array_append_new(hosts, host_json(&d->hosts[i],
			    &pr[i]));
		json_object_set_new(out, "probe", hosts);
		json_object_set_new(out, "reachable", json_boolean(reached));
		if ((text = json_dumps(out, JSON_COMPACT)) != NULL)
			printf("%s\n", text);
		free(text);
	} else {
		printf("%s: %s (%s)\n", d->domain,
		    danests_verdict_name(d->verdict),
		    danests_reason_name(d->reason) ?
		    danests_reason_name(d->reason) : "-");
		if (d->sts != NULL)
			printf("  mta-sts: mode %s id %s\n",
			    danests_sts_mode_name(d->sts->policy.mode),
			    d->sts->id);
		else if (d->sts_error != NULL)
			printf("  mta-sts: no policy (%s)\n", d->sts_error);
		for (i = 0; d->verdict == DANESTS_DELIVER && i < d->nhosts;
		    i++)
			print_host(&d->hosts[i], &pr[i]);
		if (d->verdict == DANESTS_DELIVER)
			printf("  => %s\n", reached ? "mail can be delivered" :
			    "no host can take mail as its policy asks: "
			    "mail defers");
	}
	if (fflush(stdout) != 0) {
		fprintf(stderr, "danests: write error: %s\n", strerror(errno));
		goto out;
	}
	rc = d->verdict == DANESTS_PERMFAIL ? EXIT_PERM :
	    d->verdict == DANESTS_TEMPFAIL || !reached ? EXIT_TEMP : 0;
out:
	json_decref(out);
	free(pr);
	danests_tls_ctx_free(tls);
	danests_decision_free(d);
	danests_ctx_free(ctx);
	common_free(&o);
	return rc;
}
