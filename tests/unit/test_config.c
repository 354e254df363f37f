/*
 * test_config.c - the configuration reader (config.c), one row per case:
 * comments, values, includes (relative, absolute, depth, loops),
 * sections, unknown keys, bad paths, line length.  Each row writes its
 * files into a fresh directory ("%D" in a text stands for it) and reads
 * the first one, as the adapter of section "relay" would (or with no
 * section, as `danests check --config` does).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <cmocka.h>

#include <sys/stat.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "danests-internal.h"
#include "table.h"

#define NFILES 10

struct crow {
	const char *name;
	const char *section;		/* the program's own, or NULL */
	struct {
		const char *name, *text;	/* text NULL: a directory */
	} files[NFILES];
	const char *path;		/* what to read; NULL: the first file */
	danests_status want;
	const char *why_has;		/* a substring of why, or NULL */
	unsigned dns_timeout_ms;	/* when OK and not 0 */
	const char *cb_seen;		/* keys the callback got, "k=v;..." */
};

/* seen - what the callback got, for the "relay" section */
struct seen {
	char keys[512];
};

/* relay_key - a stand-in adapter: "listen" and "user" are its keys,
 * the value "bad" is refused */
static danests_status
relay_key(void *arg, const char *section, const char *key, const char *value,
    const char *file, unsigned line, char *why, size_t whylen)
{
	struct seen *s = arg;
	size_t n = strlen(s->keys);

	assert_string_equal(section, "relay");
	assert_non_null(file);
	assert_true(line > 0);
	if (strcmp(key, "listen") != 0 && strcmp(key, "user") != 0)
		return DANESTS_NOTFOUND;
	if (strcmp(value, "bad") == 0) {
		snprintf(why, whylen, "bad value");
		return DANESTS_PERM;
	}
	snprintf(s->keys + n, sizeof(s->keys) - n, "%s=%s;", key, value);
	return DANESTS_OK;
}

static char long_line[DANESTS_CONFIG_LINE_MAX + 64];
static char max_line[DANESTS_CONFIG_LINE_MAX + 64];

static const struct crow rows[] = {
	{ "comment_after_value", NULL, { { "m.conf",
	    "# a comment\n\n  resolver 127.0.0.1   # trailing comment\n"
	    "dns_timeout 3#no space before it\n\t\n" } },
	    NULL, DANESTS_OK, NULL, 3000, "" },
	{ "tabs_and_crlf", NULL, { { "m.conf",
	    "\tdns_timeout\t\t7\t\r\n" } }, NULL, DANESTS_OK, NULL, 7000,
	    "" },
	{ "last_line_without_newline", NULL, { { "m.conf",
	    "dns_timeout 9" } }, NULL, DANESTS_OK, NULL, 9000, "" },
	{ "missing_value", NULL, { { "m.conf", "\ndns_timeout\n" } }, NULL,
	    DANESTS_PERM, "m.conf:2: dns_timeout: needs a value", 0, NULL },
	{ "missing_value_before_comment", NULL, { { "m.conf",
	    "dns_timeout   # 5\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: dns_timeout: needs a value", 0, NULL },
	{ "unknown_core_key", NULL, { { "m.conf", "resolvr 127.0.0.1\n" } },
	    NULL, DANESTS_PERM, "m.conf:1: resolvr: unknown key", 0, NULL },
	{ "malformed_number", NULL, { { "m.conf", "dns_timeout 5s\n" } },
	    NULL, DANESTS_PERM, "m.conf:1: dns_timeout: expected a number "
	    "from 1 to 60", 0, NULL },
	{ "number_out_of_range", NULL, { { "m.conf", "dns_timeout 61\n" } },
	    NULL, DANESTS_PERM, "m.conf:1: dns_timeout:", 0, NULL },
	{ "tempfail_memory_ttl_bounded", NULL, { { "m.conf",
	    "tempfail_memory_ttl 61\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: tempfail_memory_ttl: expected a number from 0 to 60",
	    0, NULL },
	{ "memory_keys_are_core_keys", "relay", { { "m.conf",
	    "decision_memory_ttl 0\ndecision_memory_max 10\n"
	    "tempfail_memory_ttl 60\n[relay]\nuser x\n" } }, NULL,
	    DANESTS_OK, NULL, 0, "user=x;" },
	{ "memory_key_not_in_a_section", "relay", { { "m.conf",
	    "[relay]\ndecision_memory_ttl 3\n" } }, NULL, DANESTS_PERM,
	    "m.conf:2: decision_memory_ttl:", 0, NULL },
	{ "report_keys_are_core_keys", "relay", { { "m.conf",
	    "tls_reports yes\nreport_organization Example Mail # org\n"
	    "report_contact mailto:pm@example.org\n"
	    "report_from tlsrpt@example.org\nreport_submitter example.org\n"
	    "report_sendmail /usr/lib/sendmail\nreport_window 0\n"
	    "report_only_failures yes\nreport_attempts 100\n"
	    "report_keep_days 366\nreport_timeout 1\n[relay]\nuser x\n" } },
	    NULL, DANESTS_OK, NULL, 0, "user=x;" },
	{ "report_key_not_in_a_section", "relay", { { "m.conf",
	    "[relay]\ntls_reports yes\n" } }, NULL, DANESTS_PERM,
	    "m.conf:2: tls_reports: a core key", 0, NULL },
	{ "report_yes_no", NULL, { { "m.conf", "\ntls_reports maybe\n" } },
	    NULL, DANESTS_PERM, "m.conf:2: tls_reports: expected yes or no", 0,
	    NULL },
	{ "report_only_failures_yes_no", NULL, { { "m.conf",
	    "report_only_failures 1\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_only_failures: expected yes or no", 0, NULL },
	{ "report_from_not_an_address", NULL, { { "m.conf",
	    "report_from tlsrpt\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_from: expected a mail address", 0, NULL },
	{ "report_from_bad_domain", NULL, { { "m.conf",
	    "report_from a@b..example\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_from: expected a mail address", 0, NULL },
	{ "report_from_local_dots", NULL, { { "m.conf",
	    "report_from a..b@example.org\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_from: expected a mail address", 0, NULL },
	{ "report_from_angle", NULL, { { "m.conf",
	    "report_from <a@example.org>\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_from: expected a mail address", 0, NULL },
	{ "report_submitter_bad", NULL, { { "m.conf",
	    "report_submitter exa_mple\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_submitter: expected a domain name", 0, NULL },
	{ "report_sendmail_relative", NULL, { { "m.conf",
	    "report_sendmail sendmail\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_sendmail: expected an absolute path", 0, NULL },
	{ "report_window_bounded", NULL, { { "m.conf",
	    "report_window 86401\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_window: expected a number from 0 to 86400", 0,
	    NULL },
	{ "report_attempts_bounded", NULL, { { "m.conf",
	    "report_attempts 0\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_attempts: expected a number from 1 to 100", 0,
	    NULL },
	{ "report_keep_days_bounded", NULL, { { "m.conf",
	    "report_keep_days 367\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_keep_days: expected a number from 1 to 366", 0,
	    NULL },
	{ "report_timeout_bounded", NULL, { { "m.conf",
	    "report_timeout 3601\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_timeout: expected a number from 1 to 3600", 0,
	    NULL },
	{ "report_unknown_key", NULL, { { "m.conf",
	    "report_frequency 1\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: report_frequency: unknown key", 0, NULL },
	{ "malformed_yes_no", NULL, { { "m.conf", "mta_sts maybe\n" } }, NULL,
	    DANESTS_PERM, "m.conf:1: mta_sts: expected yes or no", 0, NULL },
	{ "malformed_resolver", NULL, { { "m.conf", "resolver nowhere\n" } },
	    NULL, DANESTS_PERM, "m.conf:1: resolver: resolver is not an IP",
	    0, NULL },
	{ "missing_ca_file", NULL, { { "m.conf",
	    "ca_file %D/none.pem\n" } }, NULL, DANESTS_PERM,
	    "m.conf:1: ca_file: CA file", 0, NULL },
	{ "relative_cache_dir", NULL, { { "m.conf", "cache_dir cache\n" } },
	    NULL, DANESTS_PERM, "m.conf:1: cache_dir: expected an absolute "
	    "path or none", 0, NULL },
	{ "key_with_equals", NULL, { { "m.conf", "dns_timeout=5\n" } }, NULL,
	    DANESTS_PERM, "m.conf:1: dns_timeout=5: not a key", 0, NULL },
	{ "key_upper_case", NULL, { { "m.conf", "DNS_timeout 5\n" } }, NULL,
	    DANESTS_PERM, "not a key", 0, NULL },
	{ "include_relative", "relay", { { "m.conf",
	    "include core.conf\n[relay]\nlisten 127.0.0.1:1\n" },
	    { "core.conf", "dns_timeout 4\n" } }, NULL, DANESTS_OK, NULL,
	    4000, "listen=127.0.0.1:1;" },
	{ "include_relative_to_includer", NULL, { { "m.conf",
	    "include sub/a.conf\n" }, { "sub", NULL },
	    { "sub/a.conf", "include b.conf\n" },
	    { "sub/b.conf", "dns_timeout 6\n" } }, NULL, DANESTS_OK, NULL,
	    6000, "" },
	{ "include_absolute", NULL, { { "m.conf",
	    "include %D/core.conf   # the core\n" },
	    { "core.conf", "dns_timeout 8\n" } }, NULL, DANESTS_OK, NULL,
	    8000, "" },
	{ "include_later_key_wins", NULL, { { "m.conf",
	    "dns_timeout 2\ninclude core.conf\ndns_timeout 3\n" },
	    { "core.conf", "dns_timeout 8\n" } }, NULL, DANESTS_OK, NULL,
	    3000, "" },
	{ "include_missing", NULL, { { "m.conf",
	    "\ninclude nothere.conf\n" } }, NULL, DANESTS_PERM,
	    "m.conf:2: include %D/nothere.conf: No such file", 0, NULL },
	{ "include_missing_value", NULL, { { "m.conf", "include\n" } }, NULL,
	    DANESTS_PERM, "m.conf:1: include: needs a value", 0, NULL },
	{ "include_self", NULL, { { "m.conf", "include m.conf\n" } }, NULL,
	    DANESTS_PERM, "include loop", 0, NULL },
	{ "include_loop", NULL, { { "m.conf", "include a.conf\n" },
	    { "a.conf", "include b.conf\n" }, { "b.conf", "include a.conf\n" } },
	    NULL, DANESTS_PERM, "b.conf:1: include %D/a.conf: include loop",
	    0, NULL },
	{ "include_twice_is_no_loop", NULL, { { "m.conf",
	    "include a.conf\ninclude a.conf\n" }, { "a.conf",
	    "dns_timeout 5\n" } }, NULL, DANESTS_OK, NULL, 5000, "" },
	{ "include_depth_8_ok", NULL, { { "m.conf", "include 2\n" },
	    { "2", "include 3\n" }, { "3", "include 4\n" },
	    { "4", "include 5\n" }, { "5", "include 6\n" },
	    { "6", "include 7\n" }, { "7", "include 8\n" },
	    { "8", "dns_timeout 11\n" } }, NULL, DANESTS_OK, NULL, 11000, "" },
	{ "include_depth_9_refused", NULL, { { "m.conf", "include 2\n" },
	    { "2", "include 3\n" }, { "3", "include 4\n" },
	    { "4", "include 5\n" }, { "5", "include 6\n" },
	    { "6", "include 7\n" }, { "7", "include 8\n" },
	    { "8", "include 9\n" }, { "9", "dns_timeout 11\n" } }, NULL,
	    DANESTS_PERM, "8:1: include %D/9: includes nested deeper than 8",
	    0, NULL },
	{ "include_directory", NULL, { { "m.conf", "include sub\n" },
	    { "sub", NULL } }, NULL, DANESTS_PERM,
	    "m.conf:1: include %D/sub: is a directory", 0, NULL },
	{ "error_in_included_file", NULL, { { "m.conf",
	    "include a.conf\n" }, { "a.conf", "\n\nmta_sts perhaps\n" } },
	    NULL, DANESTS_PERM, "%D/a.conf:3: mta_sts: expected yes or no",
	    0, NULL },
	{ "own_section", "relay", { { "m.conf",
	    "dns_timeout 12\n[relay]   # ours\nlisten 127.0.0.1:1 # here\n"
	    "user nobody\n" } }, NULL, DANESTS_OK, NULL, 12000,
	    "listen=127.0.0.1:1;user=nobody;" },
	{ "own_section_unknown_key", "relay", { { "m.conf",
	    "[relay]\nlisten 127.0.0.1:1\nlisen 127.0.0.1:2\n" } }, NULL,
	    DANESTS_PERM, "m.conf:3: lisen: unknown key in [relay]", 0, NULL },
	{ "own_section_bad_value", "relay", { { "m.conf",
	    "[relay]\nlisten bad\n" } }, NULL, DANESTS_PERM,
	    "m.conf:2: listen: bad value", 0, NULL },
	{ "core_key_in_section", "relay", { { "m.conf",
	    "[relay]\nresolver 127.0.0.1\n" } }, NULL, DANESTS_PERM,
	    "m.conf:2: resolver: a core key: put it before the first section",
	    0, NULL },
	{ "other_section_skipped", "relay", { { "m.conf",
	    "[postfix]\nanything goes here\n[exim]\nwhatever 1\n"
	    "[relay]\nuser nobody\n" } }, NULL, DANESTS_OK, NULL, 0,
	    "user=nobody;" },
	/* danests.conf may hold filter-danests's [filter] section */
	{ "filter_section_skipped", NULL, { { "m.conf",
	    "dns_timeout 14\n[filter]\ntimeout 5\n" } }, NULL, DANESTS_OK,
	    NULL, 14000, "" },
	{ "no_section_skips_all", NULL, { { "m.conf",
	    "dns_timeout 13\n[relay]\nlisten bad\nnot_a_key_anywhere 1\n"
	    "[postfix]\nlisten x\n" } }, NULL, DANESTS_OK, NULL, 13000, "" },
	{ "unknown_section", "relay", { { "m.conf", "[relais]\n" } }, NULL,
	    DANESTS_PERM, "m.conf:1: unknown section [relais]", 0, NULL },
	{ "unknown_section_without_own", NULL, { { "m.conf", "[posfix]\n" } },
	    NULL, DANESTS_PERM, "unknown section [posfix]", 0, NULL },
	{ "malformed_section", "relay", { { "m.conf", "[relay\n" } }, NULL,
	    DANESTS_PERM, "m.conf:1: malformed section header", 0, NULL },
	{ "empty_section", "relay", { { "m.conf", "[]\n" } }, NULL,
	    DANESTS_PERM, "m.conf:1: malformed section header", 0, NULL },
	{ "include_inside_section", "relay", { { "m.conf",
	    "[relay]\ninclude core.conf\nuser nobody\n" },
	    { "core.conf", "dns_timeout 14\n" } }, NULL, DANESTS_OK, NULL,
	    14000, "user=nobody;" },
	{ "section_ends_with_its_file", "relay", { { "m.conf",
	    "include r.conf\ndns_timeout 15\n" },
	    { "r.conf", "[relay]\nuser nobody\n" } }, NULL, DANESTS_OK, NULL,
	    15000, "user=nobody;" },
	{ "path_is_directory", NULL, { { "sub", NULL } }, "%D/sub",
	    DANESTS_PERM, "%D/sub: is a directory", 0, NULL },
	{ "path_missing", NULL, { { "m.conf", "" } }, "%D/none.conf",
	    DANESTS_PERM, "%D/none.conf: No such file", 0, NULL },
	{ "path_not_regular", NULL, { { "m.conf", "" } }, "/dev/null",
	    DANESTS_PERM, "/dev/null: not a regular file", 0, NULL },
	{ "empty_file", NULL, { { "m.conf", "" } }, NULL, DANESTS_OK, NULL,
	    5000, "" },
	{ "line_at_the_cap", NULL, { { "m.conf", max_line } }, NULL,
	    DANESTS_OK, NULL, 5000, "" },
	{ "line_over_the_cap", NULL, { { "m.conf", long_line } }, NULL,
	    DANESTS_PERM, "m.conf:2: line longer than 1024 bytes", 0, NULL },
};

/* expand - s with "%D" replaced by dir */
static void
expand(char *out, size_t outlen, const char *s, const char *dir)
{
	const char *p;
	size_t n = 0;

	out[0] = '\0';
	while ((p = strstr(s, "%D")) != NULL) {
		n += (size_t)snprintf(out + n, outlen - n, "%.*s%s",
		    (int)(p - s), s, dir);
		assert_true(n < outlen);
		s = p + 2;
	}
	snprintf(out + n, outlen - n, "%s", s);
}

static void
run_row(void **state)
{
	const struct crow *r = *state;
	char dir[] = "/tmp/danests-config-XXXXXX", path[512], text[4096];
	char why[1024] = "", want[512], cmd[600];
	struct danests_config *c;
	struct seen seen = { "" };
	danests_status st;
	FILE *fp;
	size_t i;

	assert_non_null(mkdtemp(dir));
	for (i = 0; i < NFILES && r->files[i].name != NULL; i++) {
		snprintf(path, sizeof(path), "%s/%s", dir, r->files[i].name);
		if (r->files[i].text == NULL) {
			assert_int_equal(mkdir(path, 0755), 0);
			continue;
		}
		expand(text, sizeof(text), r->files[i].text, dir);
		assert_non_null(fp = fopen(path, "w"));
		assert_int_equal(fputs(text, fp) >= 0, 1);
		fclose(fp);
	}
	if (r->path != NULL)
		expand(path, sizeof(path), r->path, dir);
	else
		snprintf(path, sizeof(path), "%s/%s", dir, r->files[0].name);
	assert_non_null(c = danests_config_new());
	st = danests_config_read(c, path, r->section, relay_key, &seen, why,
	    sizeof(why));
	print_message("why: %s\n", why);
	assert_int_equal(st, r->want);
	if (r->why_has != NULL) {
		expand(want, sizeof(want), r->why_has, dir);
		if (strstr(why, want) == NULL)
			fail_msg("why \"%s\" lacks \"%s\"", why, want);
	}
	if (r->want == DANESTS_OK && r->dns_timeout_ms != 0)
		assert_int_equal(c->dns_timeout_ms, r->dns_timeout_ms);
	if (r->cb_seen != NULL)
		assert_string_equal(seen.keys, r->cb_seen);
	danests_config_free(c);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* test_defaults - one set of defaults for every program */
static void
test_defaults(void **state)
{
	struct danests_config *c;
	char why[256];

	(void)state;
	assert_non_null(c = danests_config_new());
	assert_string_equal(c->cache_dir, "/var/lib/danests");
	assert_null(c->ca_file);
	assert_string_equal(c->resolver, "");
	assert_int_equal(c->dns_timeout_ms, 5000);
	assert_int_equal(c->decision_timeout_ms, 15000);
	assert_int_equal(c->fetch_timeout_ms, 10000);
	assert_int_equal(c->dns_max_queries, 200);
	assert_int_equal(c->max_fetches, 32);
	assert_int_equal(c->decision_ttl_s, 300);
	assert_int_equal(c->sts_recheck_s, 300);
	assert_int_equal(c->decision_memory_ttl_s, 60);
	assert_int_equal(c->decision_memory_max, 200000);
	assert_int_equal(c->tempfail_memory_ttl_s, 5);
	assert_true(c->sts);
	assert_int_equal(danests_config_apply(c, "cache_dir", "none", why,
	    sizeof(why)), DANESTS_OK);
	assert_null(c->cache_dir);
	assert_int_equal(danests_config_apply(c, "dns_max_queries", "16", why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(c->dns_max_queries, 16);
	assert_int_equal(danests_config_apply(c, "max_fetches", "1", why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(c->max_fetches, 1);
	assert_int_equal(danests_config_apply(c, "dns_max_queries", "0", why,
	    sizeof(why)), DANESTS_PERM);
	assert_int_equal(danests_config_apply(c, "max_fetches", "1025", why,
	    sizeof(why)), DANESTS_PERM);
	danests_config_free(c);
}

/* test_check_as_unknown_user - the check names the file and what to do */
static void
test_check_as_unknown_user(void **state)
{
	struct danests_config *c;
	char why[1024], note[256];

	(void)state;
	assert_non_null(c = danests_config_new());
	assert_int_equal(danests_config_check_as(c, "no-such-user-danests",
	    "/etc/x.conf:7", note, sizeof(note), why, sizeof(why)),
	    DANESTS_PERM);
	assert_non_null(strstr(why, "/etc/x.conf:7: user no-such-user-danests "
	    "does not exist"));
	assert_non_null(strstr(why, "adduser --system"));
	danests_config_free(c);
}

/* test_check_as_cache - a cache directory the run user cannot create */
static void
test_check_as_cache(void **state)
{
	struct danests_config *c;
	char dir[] = "/tmp/danests-check-XXXXXX", sub[64], why[1024],
	    note[256], cmd[100];

	(void)state;
	assert_non_null(mkdtemp(dir));
	assert_int_equal(chmod(dir, 0555), 0);
	snprintf(sub, sizeof(sub), "%s/cache", dir);
	assert_non_null(c = danests_config_new());
	assert_int_equal(danests_config_set_resolver(c, "127.0.0.1", why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_config_set_cache_dir(c, sub, why,
	    sizeof(why)), DANESTS_OK);
	/* as root, the check runs as nobody, who cannot write dir */
	if (geteuid() == 0) {
		assert_int_equal(danests_config_check_as(c, "nobody", NULL,
		    note, sizeof(note), why, sizeof(why)), DANESTS_PERM);
		print_message("why: %s\n", why);
		assert_non_null(strstr(why, "as user nobody"));
		assert_non_null(strstr(why, sub));
	}
	assert_int_equal(chmod(dir, 0755), 0);
	assert_int_equal(danests_config_set_cache_dir(c, NULL, why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_config_check_as(c, "", NULL, note,
	    sizeof(note), why, sizeof(why)), DANESTS_OK);
	danests_config_free(c);
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
}

/* test_report_settings - the defaults of the reporting keys, the values
 * set, the submitter taken from report_from, and a context's copy */
static void
test_report_settings(void **state)
{
	struct danests_config *c = danests_config_new(), *d;
	const struct danests_report_config *rc;
	char why[DANESTS_WHY_MAX];

	(void)state;
	assert_non_null(c);
	rc = danests_config_report(c);
	assert_false(rc->enabled);
	assert_null(rc->organization);
	assert_null(rc->contact);
	assert_null(rc->from);
	assert_null(rc->submitter);
	assert_string_equal(rc->sendmail, "/usr/sbin/sendmail");
	assert_int_equal(rc->window_s, 14400);
	assert_false(rc->only_failures);
	assert_int_equal(rc->attempts, 5);
	assert_int_equal(rc->keep_days, 8);
	assert_int_equal(rc->timeout_s, 60);

	assert_int_equal(danests_config_apply(c, "report_from",
	    "tlsrpt@Mail.Example.ORG", why, sizeof(why)), DANESTS_OK);
	assert_string_equal(rc->from, "tlsrpt@Mail.Example.ORG");
	assert_string_equal(rc->submitter, "Mail.Example.ORG");
	assert_int_equal(danests_config_apply(c, "report_submitter",
	    "Example.ORG.", why, sizeof(why)), DANESTS_OK);
	assert_string_equal(rc->submitter, "example.org");
	assert_int_equal(danests_config_apply(c, "report_from",
	    "other@x.example", why, sizeof(why)), DANESTS_OK);
	assert_string_equal(rc->submitter, "example.org");
	assert_int_equal(danests_config_apply(c, "tls_reports", "yes", why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_config_apply(c, "report_window", "600", why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_config_apply(c, "report_organization",
	    "Example Mail", why, sizeof(why)), DANESTS_OK);
	assert_int_equal(danests_config_apply(c, "report_contact",
	    "bad\x01", why, sizeof(why)), DANESTS_PERM);
	assert_true(rc->enabled);
	assert_int_equal(rc->window_s, 600);
	assert_string_equal(rc->organization, "Example Mail");
	assert_null(rc->contact);

	/* a deep copy, as a context makes it */
	d = calloc(1, sizeof(*d));
	assert_non_null(d);
	*d = *c;
	assert_int_equal(config_report_copy(d, c), 0);
	danests_config_free(c);
	rc = danests_config_report(d);
	assert_string_equal(rc->organization, "Example Mail");
	assert_string_equal(rc->from, "other@x.example");
	assert_string_equal(rc->submitter, "example.org");
	assert_true(rc->enabled);
	config_report_free(d);
	free(d);
}

/*
 * danests_config_num: the numeric keys of every section, one row a case
 * over a table with each field kind (unsigned, scaled, 64-bit).
 */
struct nums {
	unsigned u;
	unsigned ms;
	unsigned long long big;
	size_t sz;
};

#define N(key, min, max, scale, field) \
	DANESTS_CONFIG_NUM(key, min, max, scale, struct nums, field)
static const struct danests_config_num num_tab[] = {
	N("u", 1, 100, 1, u),
	N("ms", 1, 600, 1000, ms),
	N("big", 1024, 1ULL << 36, 1, big),
	N("sz", 0, 1ULL << 30, 0, sz),
	N("wide", 0, 10000000, 1000, u),	/* may pass UINT_MAX scaled */
};
#undef N

struct num_row {
	const char *name;
	const char *key, *val;
	danests_status want;
	struct nums after;		/* when DANESTS_OK */
	const char *why;		/* when DANESTS_PERM */
};

static const struct num_row num_rows[] = {
	{ "plain", "u", "42", DANESTS_OK, { .u = 42 }, NULL },
	{ "lowest", "u", "1", DANESTS_OK, { .u = 1 }, NULL },
	{ "highest", "u", "100", DANESTS_OK, { .u = 100 }, NULL },
	{ "below", "u", "0", DANESTS_PERM, { 0 },
	    "expected a number from 1 to 100" },
	{ "above", "u", "101", DANESTS_PERM, { 0 },
	    "expected a number from 1 to 100" },
	{ "sign", "u", "+5", DANESTS_PERM, { 0 }, "expected a number" },
	{ "minus", "u", "-5", DANESTS_PERM, { 0 }, "expected a number" },
	{ "space", "u", " 5", DANESTS_PERM, { 0 }, "expected a number" },
	{ "trailing", "u", "5s", DANESTS_PERM, { 0 }, "expected a number" },
	{ "empty", "u", "", DANESTS_PERM, { 0 }, "expected a number" },
	{ "overflow", "u", "99999999999999999999999", DANESTS_PERM, { 0 },
	    "expected a number" },
	{ "seconds-to-ms", "ms", "20", DANESTS_OK, { .ms = 20000 }, NULL },
	{ "64-bit", "big", "68719476736", DANESTS_OK,
	    { .big = 1ULL << 36 }, NULL },
	{ "size_t", "sz", "1048576", DANESTS_OK, { .sz = 1048576 }, NULL },
	{ "scaled-past-unsigned", "wide", "5000000", DANESTS_PERM, { 0 },
	    "expected a number from 0 to 10000000" },
	{ "unknown", "v", "1", DANESTS_NOTFOUND, { 0 }, NULL },
};

static void
run_num(void **state)
{
	const struct num_row *r = *state;
	struct nums n;
	char why[256] = "";

	memset(&n, 0, sizeof(n));
	assert_int_equal(danests_config_num(num_tab, NROWS(num_tab), &n,
	    r->key, r->val, why, sizeof(why)), r->want);
	if (r->want == DANESTS_PERM)
		assert_non_null(strstr(why, r->why));
	/* a refused value stores nothing */
	assert_memory_equal(&n, &r->after, sizeof(n));
}

/* danests_config_word: the index of the word, or what was expected */
static void
test_config_word(void **state)
{
	static const char *const two[] = { "yes", "no", NULL };
	static const char *const three[] = { "a", "b", "c", NULL };
	char why[64];

	(void)state;
	assert_int_equal(danests_config_word("yes", two, why, sizeof(why)), 0);
	assert_int_equal(danests_config_word("no", two, why, sizeof(why)), 1);
	assert_int_equal(danests_config_word("YES", two, why, sizeof(why)),
	    -1);
	assert_string_equal(why, "expected yes or no");
	assert_int_equal(danests_config_word("", three, why, sizeof(why)), -1);
	assert_string_equal(why, "expected a, b or c");
	/* a short buffer is cut, never overrun */
	assert_int_equal(danests_config_word("x", three, why, 12), -1);
	assert_string_equal(why, "expected a,");
}

/* store URLs (store.c): redis://[:PASSWORD@]HOST[:PORT][/DB] */
struct url_row {
	const char *name;
	const char *url;
	bool ok;
	const char *host, *password;
	unsigned port, db;
	const char *why;	/* a substring of the error */
	const char *master;	/* sentinel://: the master's name, */
	unsigned nsent;		/* the count of sentinels, */
	const char *sent_last;	/* and the last one as HOST:PORT */
};

static const struct url_row url_rows[] = {
	{ "host", "redis://127.0.0.1", true, "127.0.0.1", "", 6379, 0, NULL },
	{ "name port db", "redis://cache.example:6380/3", true,
	    "cache.example", "", 6380, 3, NULL },
	{ "password", "redis://:s3cr:et@10.0.0.1:7000", true, "10.0.0.1",
	    "s3cr:et", 7000, 0, NULL },
	{ "password with @", "redis://:a@b@h", true, "h", "a@b", 6379, 0,
	    NULL },
	{ "ipv6", "redis://[::1]:6379/15", true, "::1", "", 6379, 15, NULL },
	{ "db 0 explicit", "redis://h/0", true, "h", "", 6379, 0, NULL },
#ifdef HAVE_HIREDIS_SSL
	{ "tls", "rediss://:pw@h:6380/2", true, "h", "pw", 6380, 2, NULL },
	{ "tls no host", "rediss://", false, NULL, NULL, 0, 0, "rediss://" },
#else
	{ "tls refused", "rediss://h", false, NULL, NULL, 0, 0,
	    "no TLS to the store" },
#endif
	{ "other scheme", "http://h", false, NULL, NULL, 0, 0, "redis://" },
	{ "sentinel", "sentinel://10.0.0.1/mymaster", true, "", "", 6379, 0,
	    NULL, "mymaster", 1, "10.0.0.1:26379" },
	{ "sentinels password db", "sentinel://:pw@s1:26380,[::1],"
	    "s3.example:5000/m-1.x/4", true, "", "pw", 6379, 4, NULL, "m-1.x",
	    3, "s3.example:5000" },
	{ "sentinel five", "sentinel://a,b,c,d,e/m", true, "", "", 6379, 0,
	    NULL, "m", 5, "e:26379" },
	{ "sentinel six", "sentinel://a,b,c,d,e,f/m", false, NULL, NULL, 0, 0,
	    "at most 5" },
	{ "sentinel no master", "sentinel://a", false, NULL, NULL, 0, 0,
	    "/MASTER" },
	{ "sentinel empty master", "sentinel://a//0", false, NULL, NULL, 0,
	    0, "/MASTER" },
	{ "sentinel bad master", "sentinel://a/m:x", false, NULL, NULL, 0, 0,
	    "master's name" },
	{ "sentinel empty entry", "sentinel://a,,b/m", false, NULL, NULL, 0,
	    0, "host" },
	{ "sentinel trailing comma", "sentinel://a,/m", false, NULL, NULL, 0,
	    0, "host" },
	{ "sentinel no host", "sentinel:///m", false, NULL, NULL, 0, 0,
	    "host" },
	{ "sentinel bad port", "sentinel://a:0/m", false, NULL, NULL, 0, 0,
	    "port" },
	{ "sentinel bad db", "sentinel://a/m/16", false, NULL, NULL, 0, 0,
	    "database" },
	{ "no host", "redis://", false, NULL, NULL, 0, 0, "host" },
	{ "no host before port", "redis://:6379", false, NULL, NULL, 0, 0,
	    "host" },
	{ "user name", "redis://user:pw@h", false, NULL, NULL, 0, 0,
	    "PASSWORD" },
	{ "empty password", "redis://:@h", false, NULL, NULL, 0, 0,
	    "PASSWORD" },
	{ "port 0", "redis://h:0", false, NULL, NULL, 0, 0, "port" },
	{ "port too big", "redis://h:65536", false, NULL, NULL, 0, 0, "port" },
	{ "port empty", "redis://h:", false, NULL, NULL, 0, 0, "port" },
	{ "port sign", "redis://h:+1", false, NULL, NULL, 0, 0, "port" },
	{ "db 16", "redis://h/16", false, NULL, NULL, 0, 0, "database" },
	{ "db empty", "redis://h/", false, NULL, NULL, 0, 0, "database" },
	{ "db path", "redis://h/1/2", false, NULL, NULL, 0, 0, "database" },
	{ "space", "redis://h :1", false, NULL, NULL, 0, 0, "space" },
	{ "bad host char", "redis://h;x", false, NULL, NULL, 0, 0, "host" },
	{ "unclosed bracket", "redis://[::1:6379", false, NULL, NULL, 0, 0,
	    "host" },
	{ "junk after bracket", "redis://[::1]x", false, NULL, NULL, 0, 0,
	    "host" },
};

static void
run_url(void **state)
{
	const struct url_row *r = *state;
	struct store_url u;
	char why[256] = "";
	danests_status st = store_url_parse(r->url, &u, why, sizeof(why));

	if (!r->ok) {
		assert_int_equal(st, DANESTS_PERM);
		if (strstr(why, r->why) == NULL)
			fail_msg("why \"%s\" lacks \"%s\"", why, r->why);
		return;
	}
	if (st != DANESTS_OK)
		fail_msg("%s: %s", r->url, why);
	assert_string_equal(u.host, r->host);
	assert_string_equal(u.password, r->password);
	assert_int_equal(u.port, r->port);
	assert_int_equal(u.db, r->db);
	assert_int_equal(u.tls, strncmp(r->url, "rediss:", 7) == 0);
	assert_string_equal(u.master, r->master ? r->master : "");
	assert_int_equal(u.nsent, r->nsent);
	if (r->nsent > 0) {
		char last[300];

		snprintf(last, sizeof(last), "%s:%u",
		    u.sent[u.nsent - 1].host, u.sent[u.nsent - 1].port);
		assert_string_equal(last, r->sent_last);
	}
}

/* the store's keys: defaults, values, and the errors that name them */
static void
test_store_keys(void **state)
{
	struct danests_config *c = danests_config_new();
	char why[256];

	(void)state;
	assert_non_null(c);
	assert_string_equal(c->store_url, "");
	assert_string_equal(c->store_prefix, "danests:");
	assert_int_equal(c->store_timeout_ms, 200);
	assert_int_equal(danests_config_apply(c, "store_timeout", "0", why,
	    sizeof(why)), DANESTS_PERM);
	assert_int_equal(danests_config_apply(c, "store_timeout", "50", why,
	    sizeof(why)), DANESTS_OK);
	assert_int_equal(c->store_timeout_ms, 50);
	assert_int_equal(danests_config_apply(c, "store_prefix", "a b", why,
	    sizeof(why)), DANESTS_PERM);
	assert_int_equal(danests_config_apply(c, "store_prefix", "mx1:", why,
	    sizeof(why)), DANESTS_OK);
	assert_string_equal(c->store_prefix, "mx1:");
	assert_int_equal(danests_config_apply(c, "store", "redis://h:x", why,
	    sizeof(why)), DANESTS_PERM);
#ifdef HAVE_HIREDIS
	assert_int_equal(danests_config_apply(c, "store",
	    "redis://127.0.0.1:6379/1", why, sizeof(why)), DANESTS_OK);
	assert_string_equal(c->store_url, "redis://127.0.0.1:6379/1");
	assert_int_equal(danests_config_apply(c, "store_read",
	    "redis://127.0.0.2", why, sizeof(why)), DANESTS_OK);
	assert_string_equal(c->store_read_url, "redis://127.0.0.2");
#else
	assert_int_equal(danests_config_apply(c, "store", "redis://h", why,
	    sizeof(why)), DANESTS_PERM);
	assert_non_null(strstr(why, "hiredis"));
#endif
	assert_int_equal(danests_config_apply(c, "store_ca_file", "ca.crt",
	    why, sizeof(why)), DANESTS_PERM);
	assert_non_null(strstr(why, "absolute path"));
#ifdef HAVE_HIREDIS_SSL
	assert_int_equal(danests_config_apply(c, "store_key_file",
	    "/etc/danests/node.key", why, sizeof(why)), DANESTS_OK);
	assert_string_equal(c->store_key_file, "/etc/danests/node.key");
#else
	assert_int_equal(danests_config_apply(c, "store_ca_file",
	    "/etc/ssl/ca.crt", why, sizeof(why)), DANESTS_PERM);
	assert_non_null(strstr(why, "no TLS to the store"));
#endif
	danests_config_free(c);
}

int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_store_keys),
		cmocka_unit_test(test_defaults),
		cmocka_unit_test(test_report_settings),
		cmocka_unit_test(test_check_as_unknown_user),
		cmocka_unit_test(test_check_as_cache),
		cmocka_unit_test(test_config_word),
	};
	int rc = 0;

	/* a comment line of exactly the cap, and a key line one over it */
	max_line[0] = '#';
	memset(max_line + 1, 'x', DANESTS_CONFIG_LINE_MAX - 1);
	strcpy(max_line + DANESTS_CONFIG_LINE_MAX, "\ndns_timeout 5\n");
	strcpy(long_line, "dns_timeout 5\nresolver 127.0.0.1 ");
	memset(long_line + strlen(long_line), '#',
	    DANESTS_CONFIG_LINE_MAX + 1 - (strlen(long_line) - 14));
	strcat(long_line, "\n");
	rc |= run_table("config_read", rows, NROWS(rows), sizeof(rows[0]),
	    run_row);
	rc |= run_table("config_num", num_rows, NROWS(num_rows),
	    sizeof(num_rows[0]), run_num);
	rc |= run_table("store_url", url_rows, NROWS(url_rows),
	    sizeof(url_rows[0]), run_url);
	rc |= cmocka_run_group_tests_name("config", misc, NULL, NULL);
	return rc;
}
