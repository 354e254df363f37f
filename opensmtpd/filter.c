/*
 * filter.c - filter-danests, an OpenSMTPD filter for the smtp-in chain
 * (filter-danests(8)): at MAIL FROM and RCPT TO it asks the core for the
 * address's domain and refuses, while the client is still connected, the
 * domains whose decision is final: a null MX (RFC 7505) or a domain that
 * does not exist.  Everything else proceeds.  Every decision goes through
 * the shared cache, so the relay finds it there.
 *
 * smtpd starts the filter with stdin and stdout on one socket and reads
 * stderr into its log.  One libevent loop serves stdin and every pending
 * decision: a slow domain never holds another session.  Each event is
 * answered within the [filter] timeout; when it passes, the event
 * proceeds (a timeout of the filter never refuses mail) and the decision
 * still completes into the cache.
 */
#include <errno.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

#include "danests.h"
#include "filter_proto.h"
#include "daemon.h"

#define FILTER_NAME		"filter-danests"
#define FILTER_SECTION		"filter"
#define FILTER_TIMEOUT_DEF	10	/* seconds an event may wait */
#define FILTER_TIMEOUT_MAX	120
#define FILTER_PENDING_MAX	4096	/* decisions in progress */

struct req {
	struct req *next, *prev;
	uint64_t session, token;
	enum filter_phase phase;
	char domain[256];
	struct event *timer;
	bool answered;		/* smtpd has its answer (timeout) */
};

static struct event_base *base;
static struct danests_ctx *ctx;
static struct bufferevent *bin, *bout;
static struct filter_state fstate;
static struct req *reqs;
static size_t npending;
static unsigned timeout_s = FILTER_TIMEOUT_DEF;
static bool discarding;		/* inside an over-long line */
static bool stopping;
static bool full_noted;
static bool fatal;		/* a protocol smtpd speaks that we cannot */

/* flog - one line on stderr, which smtpd logs */
static void flog(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void
flog(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	fprintf(stderr, "%s: ", FILTER_NAME);
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
	va_end(ap);
}

/* out - queue text for smtpd */
static void
out(const char *text)
{
	if (stopping)
		return;
	if (bufferevent_write(bout, text, strlen(text)) != 0) {
		flog("cannot write to smtpd");
		stopping = true;
		event_base_loopbreak(base);
	}
}

static void
answer(struct req *r, const char *reply)
{
	char line[FILTER_REPLY_MAX];

	filter_proto_result(r->session, r->token, reply, line, sizeof(line));
	out(line);
	r->answered = true;
}

static void
req_free(struct req *r)
{
	if (r->prev != NULL)
		r->prev->next = r->next;
	else
		reqs = r->next;
	if (r->next != NULL)
		r->next->prev = r->prev;
	if (r->timer != NULL)
		event_free(r->timer);
	npending--;
	free(r);
}

static const char *
phase_name(enum filter_phase p)
{
	return p == FILTER_PHASE_MAIL_FROM ? "mail-from" : "rcpt-to";
}

/* decided - a decision for r: answer unless its time has passed */
static void
decided(void *arg, danests_status st, struct danests_decision *d,
    const char *why)
{
	struct req *r = arg;
	char reply[FILTER_TEXT_MAX];

	if (!r->answered) {
		if (st == DANESTS_OK && filter_proto_reply(r->phase, r->domain,
		    d->verdict, d->reason, reply, sizeof(reply))) {
			flog("session=%016llx %s domain=%s reason=%s: %s",
			    (unsigned long long)r->session, phase_name(r->phase),
			    r->domain, danests_reason_name(d->reason), reply);
			answer(r, reply);
		} else {
			if (st != DANESTS_OK)
				flog("session=%016llx %s domain=%s: no decision "
				    "(%s), proceeding", (unsigned long long)
				    r->session, phase_name(r->phase), r->domain,
				    why != NULL ? why : "?");
			answer(r, NULL);
		}
	}
	if (d != NULL)
		danests_decision_free(d);
	req_free(r);
}

/* expired - the event's time is up: it proceeds, the decision goes on */
static void
expired(evutil_socket_t fd, short what, void *arg)
{
	struct req *r = arg;

	if (r->answered)
		return;
	flog("session=%016llx %s domain=%s: no decision within %u s, "
	    "proceeding", (unsigned long long)r->session, phase_name(r->phase),
	    r->domain, timeout_s);
	answer(r, NULL);
}

/* decide - start the decision an event asks for; answered now when it
 * cannot be started */
static void
decide(const struct filter_out *o)
{
	struct timeval tv = { (time_t)timeout_s, 0 };
	char why[256], line[FILTER_REPLY_MAX];
	struct req *r;

	if (npending >= FILTER_PENDING_MAX) {
		if (!full_noted)
			flog("%d decisions in progress: further events "
			    "proceed without one", FILTER_PENDING_MAX);
		full_noted = true;
		filter_proto_result(o->session, o->token, NULL, line,
		    sizeof(line));
		out(line);
		return;
	}
	full_noted = false;
	if ((r = calloc(1, sizeof(*r))) == NULL ||
	    (r->timer = evtimer_new(base, expired, r)) == NULL) {
		free(r);
		flog("out of memory: proceeding");
		filter_proto_result(o->session, o->token, NULL, line,
		    sizeof(line));
		out(line);
		return;
	}
	r->session = o->session;
	r->token = o->token;
	r->phase = o->phase;
	memcpy(r->domain, o->domain, sizeof(r->domain));
	r->next = reqs;
	if (reqs != NULL)
		reqs->prev = r;
	reqs = r;
	npending++;
	evtimer_add(r->timer, &tv);
	if (danests_decide_async(ctx, r->domain, 0, decided, r, why,
	    sizeof(why)) != DANESTS_OK) {
		flog("%s domain=%s: %s, proceeding", phase_name(r->phase),
		    r->domain, why);
		answer(r, NULL);
		req_free(r);
	}
}

static void
line_in(const char *line, size_t len, bool truncated)
{
	struct filter_out o;

	filter_proto_step(&fstate, line, len, truncated, &o);
	if (o.note[0] != '\0')
		flog("%s", o.note);
	switch (o.action) {
	case FILTER_A_NONE:
		break;
	case FILTER_A_WRITE:
		out(o.text);
		break;
	case FILTER_A_DECIDE:
		decide(&o);
		break;
	case FILTER_A_FATAL:
		flog("%s", o.text);
		fatal = true;
		stopping = true;
		event_base_loopbreak(base);
		break;
	}
}

/* read_cb - complete lines from smtpd; a line longer than FILTER_LINE_MAX
 * is handled from its beginning and the rest skipped */
static void
read_cb(struct bufferevent *bev, void *arg)
{
	static char line[FILTER_LINE_MAX + 1];
	struct evbuffer *in = bufferevent_get_input(bev);
	struct evbuffer_ptr eol;
	size_t eol_len, n;

	while (!stopping) {
		eol = evbuffer_search_eol(in, NULL, &eol_len, EVBUFFER_EOL_LF);
		if (discarding) {
			if (eol.pos == -1) {
				evbuffer_drain(in, evbuffer_get_length(in));
				return;
			}
			evbuffer_drain(in, (size_t)eol.pos + eol_len);
			discarding = false;
			continue;
		}
		if (eol.pos == -1) {
			if (evbuffer_get_length(in) <= FILTER_LINE_MAX)
				return;
			n = (size_t)evbuffer_remove(in, line, FILTER_LINE_MAX);
			discarding = true;
			line_in(line, n, true);
			continue;
		}
		if ((size_t)eol.pos > FILTER_LINE_MAX) {
			n = (size_t)evbuffer_remove(in, line, FILTER_LINE_MAX);
			evbuffer_drain(in, (size_t)eol.pos - n + eol_len);
			line_in(line, n, true);
			continue;
		}
		n = (size_t)evbuffer_remove(in, line, (size_t)eol.pos);
		evbuffer_drain(in, eol_len);
		line_in(line, n, false);
	}
}

static void
event_cb(struct bufferevent *bev, short what, void *arg)
{
	if (what & BEV_EVENT_EOF) {
		/* smtpd is gone (or stopping): nothing is left to answer */
	} else if (what & BEV_EVENT_ERROR) {
		flog("%s: %s", bev == bin ? "reading from smtpd" :
		    "writing to smtpd", strerror(errno));
	}
	stopping = true;
	event_base_loopbreak(base);
}

/* conf_key - the [filter] section: timeout (danests_config_key_cb) */
static danests_status
conf_key(void *arg, const char *section, const char *key, const char *val,
    const char *file, unsigned line, char *why, size_t whylen)
{
	static const struct danests_config_num nums[] = {
		{ "timeout", 1, FILTER_TIMEOUT_MAX, 1, 0, sizeof(timeout_s) },
	};

	return danests_config_num(nums, 1, &timeout_s, key, val, why, whylen);
}

static const char usage_text[] =
    "usage: " FILTER_NAME " [-hn] [-c file]\n"
    "  -c file  configuration (default " DANESTS_DEFAULT_CONFIG "; keys of ["
    FILTER_SECTION "])\n"
    "  -h       this help\n"
    "  -n       check the configuration and the cache, exit\n"
    "Started by smtpd(8): filter \"danests\" proc-exec "
    "\"/usr/libexec/opensmtpd/" FILTER_NAME "\"\n"
    "See " FILTER_NAME "(8).\n";

int
main(int argc, char **argv)
{
	struct dmn_opts opt = { DANESTS_DEFAULT_CONFIG, false, false };
	struct danests_config *conf;
	char why[1024];
	struct req *r;

	dmn_options(argc, argv, false, usage_text, &opt);
	signal(SIGPIPE, SIG_IGN);
	if ((conf = danests_config_new()) == NULL) {
		flog("out of memory");
		return 71;
	}
	if (danests_config_read(conf, opt.config, FILTER_SECTION, conf_key, NULL,
	    why, sizeof(why)) != DANESTS_OK) {
		flog("%s", why);
		return 78;	/* EX_CONFIG */
	}
	if ((base = event_base_new()) == NULL) {
		flog("cannot create the event loop");
		return 71;
	}
	/* the cache is opened as the user smtpd runs the filter as */
	if (danests_ctx_new(conf, base, &ctx, why, sizeof(why)) !=
	    DANESTS_OK) {
		flog("%s", why);
		return 71;
	}
	if (*danests_ctx_cache_note(ctx) != '\0')
		flog("cache: %s", danests_ctx_cache_note(ctx));
	if (opt.check) {
		printf("%s: configuration OK: timeout %u s, cache %s\n",
		    opt.config, timeout_s, danests_config_cache_dir(conf) != NULL ?
		    danests_config_cache_dir(conf) : "none");
		danests_ctx_free(ctx);
		danests_config_free(conf);
		return 0;
	}
	danests_config_free(conf);
	if (evutil_make_socket_nonblocking(STDIN_FILENO) != 0 ||
	    evutil_make_socket_nonblocking(STDOUT_FILENO) != 0 ||
	    (bin = bufferevent_socket_new(base, STDIN_FILENO, 0)) == NULL ||
	    (bout = bufferevent_socket_new(base, STDOUT_FILENO, 0)) == NULL) {
		flog("cannot set up stdin and stdout");
		return 71;
	}
	bufferevent_setcb(bin, read_cb, NULL, event_cb, NULL);
	bufferevent_setcb(bout, NULL, NULL, event_cb, NULL);
	bufferevent_enable(bin, EV_READ);
	bufferevent_enable(bout, EV_WRITE);
	event_base_dispatch(base);
	/* pending decisions end here; nothing more is written */
	stopping = true;
	for (r = reqs; r != NULL; r = r->next)
		r->answered = true;
	danests_ctx_free(ctx);
	bufferevent_free(bin);
	bufferevent_free(bout);
	event_base_free(base);
	return fatal ? 1 : 0;
}
