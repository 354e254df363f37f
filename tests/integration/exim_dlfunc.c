/*
 * exim_dlfunc.c - calls a function of the Exim module (danests_exim.so)
 * as Exim's ${dlfunc} expansion does, without Exim, so that the
 * integration tests drive the module's code from a shell: two nodes
 * deciding and recording TLS results into their caches and the shared
 * store, a store that is down or slow.  The module's few Exim symbols
 * (store_get_3, log_write) are defined here, log lines going to stderr
 * as "log: ...".
 *
 *   exim_dlfunc [-n COUNT] SO FUNC [ARG...]
 *
 * calls FUNC(ARG...) COUNT times (default 1) in this one process, as one
 * Exim process would, and prints "RC YIELD" of the last call (RC: OK,
 * DEFER, FAIL, ERROR or FAIL_FORCED); with -n, the mean wall time of a
 * call in microseconds on stderr ("us-per-call N").  Exit status 0, 2 on
 * a usage or loading error.
 */
#define DLFUNC_IMPL
#include <local_scan.h>

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* store_get_3 - Exim's pool allocator: plain memory, never freed */
void *
store_get_3(int size, const void *proto, const char *func, int line)
{
	(void)proto;
	(void)func;
	(void)line;
	return malloc(size > 0 ? (size_t)size : 1);
}

/* log_write - Exim's log: one line on stderr */
void
log_write(unsigned int selector, int flags, const char *fmt, ...)
{
	va_list ap;

	(void)selector;
	(void)flags;
	fputs("log: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int
main(int argc, char **argv)
{
	static const char *const rcs[] = { "OK", "DEFER", "FAIL", "ERROR",
	    "FAIL_FORCED" };
	exim_dlfunc_t *fn;
	struct timespec t0, t1;
	uschar *yield = NULL;
	long count = 1, i;
	void *h;
	int rc = ERROR, a = 1;

	if (argc > 2 && strcmp(argv[1], "-n") == 0) {
		count = strtol(argv[2], NULL, 10);
		a = 3;
	}
	if (argc - a < 2 || count < 1) {
		fprintf(stderr, "usage: exim_dlfunc [-n COUNT] SO FUNC "
		    "[ARG...]\n");
		return 2;
	}
	if ((h = dlopen(argv[a], RTLD_NOW | RTLD_LOCAL)) == NULL ||
	    (fn = (exim_dlfunc_t *)dlsym(h, argv[a + 1])) == NULL) {
		fprintf(stderr, "exim_dlfunc: %s\n", dlerror());
		return 2;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (i = 0; i < count; i++) {
		yield = NULL;
		rc = fn(&yield, argc - a - 2, (uschar **)(argv + a + 2));
	}
	clock_gettime(CLOCK_MONOTONIC, &t1);
	printf("%s %s\n", rc >= 0 && rc <= 4 ? rcs[rc] : "?",
	    yield != NULL ? (const char *)yield : "");
	if (a == 3)
		fprintf(stderr, "us-per-call %.1f\n",
		    ((t1.tv_sec - t0.tv_sec) * 1e9 + (t1.tv_nsec - t0.tv_nsec)) /
		    1e3 / (double)count);
	return 0;
}
