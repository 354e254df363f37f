/*
 * common.h - options shared by the commands that decide (check, probe)
 */
#ifndef DANESTS_COMMON_H
#define DANESTS_COMMON_H

#include <getopt.h>
#include <stdbool.h>

#include "danests.h"

#define EXIT_USAGE	64	/* EX_USAGE */
#define EXIT_PERM	69	/* EX_UNAVAILABLE */
#define EXIT_TEMP	75	/* EX_TEMPFAIL */

#define DANESTS_CACHE_DIR DANESTS_DEFAULT_CACHE_DIR

#define TIMEOUT_MAX_S	300	/* as decision_timeout of danests.conf */
#define DNS_TIMEOUT_MS	5000	/* per query, at most */
#define FETCH_TIMEOUT_MS 10000	/* per policy fetch, at most */

enum {
	O_RESOLVER = 256, O_CA_FILE, O_CACHE_DIR, O_NO_CACHE, O_JSON,
	O_TIMEOUT, O_CONFIG,
	O_COMMON_END		/* a command's own options start here */
};

#define COMMON_OPTIONS \
	{ "resolver", required_argument, NULL, O_RESOLVER }, \
	{ "ca-file", required_argument, NULL, O_CA_FILE }, \
	{ "cache-dir", required_argument, NULL, O_CACHE_DIR }, \
	{ "no-cache", no_argument, NULL, O_NO_CACHE }, \
	{ "json", no_argument, NULL, O_JSON }, \
	{ "timeout", required_argument, NULL, O_TIMEOUT }, \
	{ "config", required_argument, NULL, O_CONFIG }, \
	{ "help", no_argument, NULL, 'h' }

struct common {
	const char *cmd;	/* "check", "probe": for messages */
	struct danests_config *cfg;	/* made by common_apply */
	const char *config;	/* --config, or NULL: the default file */
	const char *resolver;	/* --resolver, or NULL */
	const char *ca_file;	/* --ca-file, or NULL */
	const char *cache_dir;	/* --cache-dir, or NULL */
	bool no_cache;
	bool json;
	unsigned secs;		/* --timeout, 0 when not given */
	unsigned flags;		/* DANESTS_F_* for danests_decide */
};

int common_init(struct common *, const char *cmd);
void common_free(struct common *);
int common_usage(const struct common *, const char *what, const char *arg);
bool common_uint(const char *s, unsigned lo, unsigned hi, unsigned *out);
int common_option(struct common *, int c, const char *arg);
int common_bad_option(const struct common *, int c, char **argv);
/* common_rest - an option the command does not take itself: true when it
 * is a shared one (applied), false when refused (the error printed) */
bool common_rest(struct common *, int c, char **argv);
int common_apply(struct common *);

#endif /* DANESTS_COMMON_H */
