/*
 * util.c - small helpers shared by the core's modules
 */
#include "danests-internal.h"

#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>

/* xcalloc - calloc that refuses n * sz overflow */
void *
xcalloc(size_t n, size_t sz)
{
	if (n == 0 || sz == 0)
		n = sz = 1;
	return calloc(n, sz);
}

/* xstrdup - strdup that passes NULL through */
char *
xstrdup(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* why_set - format a reason into a caller's buffer, if it gave one */
void
why_set(char *why, size_t whylen, const char *fmt, ...)
{
	va_list ap;

	if (why == NULL || whylen == 0)
		return;
	va_start(ap, fmt);
	vsnprintf(why, whylen, fmt, ap);
	va_end(ap);
}

static danests_log_fn *log_fn;

/* danests_set_log - where the library's notes go; NULL: syslog */
void
danests_set_log(danests_log_fn *fn)
{
	log_fn = fn;
}

/* danests_log - one note of the library, to the program's log */
void
danests_log(int prio, const char *fmt, ...)
{
	char line[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (log_fn != NULL)
		log_fn(prio, line);
	else
		syslog(LOG_MAIL | prio, "%s", line);
}

/* nopipe_begin - see danests-internal.h */
void
nopipe_begin(struct nopipe *np)
{
	sigset_t pipe, pend;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	np->pending = sigpending(&pend) == 0 && sigismember(&pend, SIGPIPE);
	(void)pthread_sigmask(SIG_BLOCK, &pipe, &np->old);
}

/* nopipe_end - see danests-internal.h */
void
nopipe_end(struct nopipe *np)
{
	static const struct timespec zero = { 0, 0 };
	sigset_t pipe, pend;

	sigemptyset(&pipe);
	sigaddset(&pipe, SIGPIPE);
	if (!np->pending && sigpending(&pend) == 0 &&
	    sigismember(&pend, SIGPIPE))
		while (sigtimedwait(&pipe, NULL, &zero) < 0 && errno == EINTR)
			;
	(void)pthread_sigmask(SIG_SETMASK, &np->old, NULL);
}

/* is_wsp - WSP of RFC 5234 B.1 */
int
is_wsp(unsigned char c)
{
	return c == ' ' || c == '\t';
}

/* is_alnum - ALPHA / DIGIT in ASCII, independent of the locale */
int
is_alnum(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9');
}

/* hex_value - value of one hex digit, or -1 */
int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* name_eq - case-insensitive DNS name compare, one trailing dot ignored */
bool
name_eq(const char *a, const char *b)
{
	size_t la = strlen(a), lb = strlen(b);

	if (la > 1 && a[la - 1] == '.')
		la--;
	if (lb > 1 && b[lb - 1] == '.')
		lb--;
	return la == lb && strncasecmp(a, b, la) == 0;
}

/* name_lower - copy a lower-cased name without its trailing dot */
danests_status
name_lower(const char *in, char *out, size_t outlen)
{
	size_t n = strlen(in), i;

	if (n > 1 && in[n - 1] == '.')
		n--;
	if (n + 1 > outlen)
		return DANESTS_PERM;
	for (i = 0; i < n; i++)
		out[i] = (char)tolower((unsigned char)in[i]);
	out[n] = '\0';
	return DANESTS_OK;
}

/*
 * danests_domain_normalize - lower-case, drop one trailing dot, and check
 * the result is a host name in A-label form (RFC 1123 2.1, RFC 5890):
 * labels of 1-63 letters, digits and hyphens, not starting or ending with a
 * hyphen, at least two labels, 253 octets at most.  Underscores are allowed
 * inside labels so that service names (_mta-sts) can be normalised too.
 */
danests_status
danests_domain_normalize(const char *in, char *out, size_t outlen)
{
	size_t n, i, lablen = 0, labels = 1;
	char c;

	if (in == NULL || out == NULL)
		return DANESTS_PERM;
	n = strlen(in);
	if (n > 0 && in[n - 1] == '.')
		n--;
	if (n == 0 || n > 253 || n + 1 > outlen)
		return DANESTS_PERM;
	for (i = 0; i < n; i++) {
		c = (char)tolower((unsigned char)in[i]);
		if (c == '.') {
			if (lablen == 0 || out[i - 1] == '-')
				return DANESTS_PERM;
			lablen = 0;
			labels++;
		} else if (isalnum((unsigned char)c) || c == '_' ||
		    (c == '-' && lablen > 0)) {
			if (++lablen > 63)
				return DANESTS_PERM;
		} else
			return DANESTS_PERM;
		out[i] = c;
	}
	if (lablen == 0 || out[n - 1] == '-' || labels < 2)
		return DANESTS_PERM;
	out[n] = '\0';
	return DANESTS_OK;
}
