/*
 * http.c - the metrics listener of the daemons: GET /metrics over a
 * minimal, strict HTTP/1.0 and HTTP/1.1 server (RFC 9110, RFC 9112)
 *
 * One request per connection (Connection: close), no body, no
 * keep-alive, no chunked coding.  The request line and the header
 * fields together are at most DMN_HTTP_REQ_MAX bytes; the whole exchange
 * must end within DMN_HTTP_DEADLINE_S seconds of the accept, bytes do
 * not extend it; at most DMN_HTTP_CLIENTS_MAX clients at a time, the
 * others wait in the listen queue.  Anything the reader does not
 * understand is refused (400), never guessed at.
 */
#include "daemon.h"
#include "danests-metrics.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <errno.h>
#include <event2/event.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <syslog.h>
#include <unistd.h>

/* tchar - RFC 9110 5.6.2 token character */
static bool
tchar(unsigned char c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
	    (c >= '0' && c <= '9') || (c != '\0' && strchr("!#$%&'*+-.^_`|~",
	    c) != NULL);
}

/* eq_ci - the n bytes at s are word, ignoring ASCII case */
static bool
eq_ci(const char *s, size_t n, const char *word)
{
	return n == strlen(word) && strncasecmp(s, word, n) == 0;
}

/* line_end - offset of the CR of the next CRLF at or after i, or len
 * when there is none; a bare CR or LF before it sets *bad */
static size_t
line_end(const char *b, size_t len, size_t i, bool *bad)
{
	for (; i < len; i++) {
		if (b[i] == '\n') {
			*bad = true;	/* RFC 9112 2.2: we take CRLF only */
			return i;
		}
		if (b[i] == '\r') {
			if (i + 1 < len && b[i + 1] != '\n')
				*bad = true;
			return i;
		}
	}
	return len;
}

/* dmn_http_parse - see daemon.h */
int
dmn_http_parse(const char *b, size_t len, const char *path, bool *head)
{
	size_t i, e, m, t, tl, pl, nhost = 0;
	bool bad = false, v11;

	*head = false;
	/* Complete once the empty line is there; not before. */
	for (i = 0; i + 3 < len; i++)
		if (memcmp(b + i, "\r\n\r\n", 4) == 0)
			break;
	if (i + 3 >= len) {
		/* A bare LF or NUL can never make a valid request. */
		for (i = 0; i < len; i++)
			if (b[i] == '\0' || (b[i] == '\n' && (i == 0 ||
			    b[i - 1] != '\r')))
				return 400;
		return len >= DMN_HTTP_REQ_MAX ? 431 : 0;
	}
	len = i + 4;

	/* request-line = method SP request-target SP HTTP-version CRLF */
	e = line_end(b, len, 0, &bad);
	if (bad)
		return 400;
	for (m = 0; m < e && tchar((unsigned char)b[m]); m++)
		;
	if (m == 0 || m > 16 || m >= e || b[m] != ' ')
		return 400;
	t = m + 1;
	for (tl = 0; t + tl < e && b[t + tl] > 0x20 && b[t + tl] < 0x7f;
	    tl++)
		;
	if (tl == 0 || t + tl >= e || b[t + tl] != ' ')
		return 400;
	i = t + tl + 1;
	if (e - i != 8 || memcmp(b + i, "HTTP/", 5) != 0 ||
	    b[i + 5] < '0' || b[i + 5] > '9' || b[i + 6] != '.' ||
	    b[i + 7] < '0' || b[i + 7] > '9')
		return 400;
	if (b[i + 5] != '1' || (b[i + 7] != '0' && b[i + 7] != '1'))
		return 505;
	v11 = b[i + 7] == '1';

	/* field-line = field-name ":" OWS field-value OWS CRLF */
	for (i = e + 2; i < len - 2; i = e + 2) {
		size_t n, v, ve;

		e = line_end(b, len, i, &bad);
		if (bad)
			return 400;
		for (n = i; n < e && tchar((unsigned char)b[n]); n++)
			;
		/* RFC 9112 5.1: no space before the colon; 5.2: no
		 * obsolete line folding */
		if (n == i || n >= e || b[n] != ':')
			return 400;
		for (v = n + 1; v < e; v++)
			if ((unsigned char)b[v] < 0x20 && b[v] != '\t')
				return 400;
			else if (b[v] == 0x7f)
				return 400;
		for (v = n + 1; v < e && (b[v] == ' ' || b[v] == '\t'); v++)
			;
		for (ve = e; ve > v && (b[ve - 1] == ' ' || b[ve - 1] ==
		    '\t'); ve--)
			;
		if (eq_ci(b + i, n - i, "host"))
			nhost++;
		else if (eq_ci(b + i, n - i, "transfer-encoding"))
			return 400;	/* no body is read */
		else if (eq_ci(b + i, n - i, "content-length")) {
			if (v == ve)
				return 400;
			for (; v < ve; v++)
				if (b[v] != '0')
					return 400;
		}
	}
	/* RFC 9112 3.2: exactly one Host in HTTP/1.1, at most one else */
	if ((v11 && nhost != 1) || nhost > 1)
		return 400;

	/* RFC 9110 9.1: methods are case-sensitive */
	if ((m != 4 || memcmp(b, "HEAD", 4) != 0) &&
	    (m != 3 || memcmp(b, "GET", 3) != 0))
		return 405;
	/* the path, without a query */
	for (pl = 0; pl < tl && b[t + pl] != '?'; pl++)
		;
	if (pl != strlen(path) || memcmp(b + t, path, pl) != 0)
		return 404;
	*head = m == 4;
	return 200;
}

struct hclient {
	struct dmn_http *srv;
	int fd;
	struct event *rd, *wr, *deadline;
	char in[DMN_HTTP_REQ_MAX];
	size_t inlen;
	char *out;
	size_t outlen, outoff;
	struct hclient *prev, *next;
};

struct dmn_http {
	struct event_base *base;
	struct dmn_acceptor *acc;
	dmn_http_fill_fn *fill;
	void *arg;
	struct hclient *clients;
	size_t nclients;
	unsigned long served, refused;
};

/* hclient_close - drop a client, whatever its state */
static void
hclient_close(struct hclient *c)
{
	struct dmn_http *s = c->srv;

	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		s->clients = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	s->nclients--;
	if (c->rd != NULL)
		event_free(c->rd);
	if (c->wr != NULL)
		event_free(c->wr);
	if (c->deadline != NULL)
		event_free(c->deadline);
	close(c->fd);
	free(c->out);
	free(c);
}

static const char *
status_text(int code)
{
	switch (code) {
	case 200: return "OK";
	case 400: return "Bad Request";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 431: return "Request Header Fields Too Large";
	case 505: return "HTTP Version Not Supported";
	}
	return "Internal Server Error";
}

/* respond - build the answer to a request that read as code */
static bool
respond(struct hclient *c, int code, bool head)
{
	struct danests_expo e;
	char *body;
	const char *type = "text/plain; charset=utf-8";
	size_t hl, bl;
	int n;

	if ((body = malloc(DMN_HTTP_BODY_MAX)) == NULL)
		return false;
	danests_expo_init(&e, body, DMN_HTTP_BODY_MAX);
	if (code == 200) {
		c->srv->fill(c->srv->arg, &e);
		if (e.overflow)
			code = 500;
		else
			type = DANESTS_EXPO_TYPE;
	}
	if (code != 200) {
		danests_expo_init(&e, body, DMN_HTTP_BODY_MAX);
		snprintf(body, DMN_HTTP_BODY_MAX, "%d %s\n", code,
		    status_text(code));
		e.len = strlen(body);
	}
	bl = e.len;
	hl = 256;
	if ((c->out = malloc(hl + bl)) == NULL) {
		free(body);
		return false;
	}
	n = snprintf(c->out, hl, "HTTP/1.1 %d %s\r\n"
	    "Content-Type: %s\r\n"
	    "Content-Length: %zu\r\n"
	    "%s"
	    "Connection: close\r\n\r\n", code, status_text(code), type, bl,
	    code == 405 ? "Allow: GET, HEAD\r\n" : "");
	if (n < 0 || (size_t)n >= hl) {
		free(body);
		return false;
	}
	/* RFC 9110 9.3.2: HEAD answers the same header fields, no body */
	if (!head)
		memcpy(c->out + n, body, bl);
	c->outlen = (size_t)n + (head ? 0 : bl);
	free(body);
	return true;
}

/* write_cb - send the answer, then close */
static void
write_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hclient *c = arg;
	ssize_t n;

	(void)what;
	while (c->outoff < c->outlen) {
		n = send(fd, c->out + c->outoff, c->outlen - c->outoff,
		    MSG_NOSIGNAL);
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		c->outoff += (size_t)n;
	}
	(void)shutdown(fd, SHUT_WR);
	hclient_close(c);
}

/* read_cb - read the request; answer once it is whole or refused */
static void
read_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hclient *c = arg;
	struct dmn_http *s = c->srv;
	ssize_t n;
	bool head;
	int code;

	(void)what;
	n = recv(fd, c->in + c->inlen, sizeof(c->in) - c->inlen, 0);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK ||
	    errno == EINTR))
		return;
	if (n <= 0) {
		hclient_close(c);	/* gone before asking */
		return;
	}
	c->inlen += (size_t)n;
	if ((code = dmn_http_parse(c->in, c->inlen, "/metrics", &head)) == 0)
		return;
	event_del(c->rd);
	if (code == 200)
		s->served++;
	else
		s->refused++;
	if (dmn_log_verbose())
		dmn_log(LOG_DEBUG, "metrics: answer %d", code);
	if (!respond(c, code, head) || (c->wr = event_new(s->base, fd,
	    EV_WRITE | EV_PERSIST, write_cb, c)) == NULL ||
	    event_add(c->wr, NULL) != 0) {
		hclient_close(c);
		return;
	}
}

/* deadline_cb - the client took too long, reading or being written to */
static void
deadline_cb(evutil_socket_t fd, short what, void *arg)
{
	struct hclient *c = arg;

	(void)fd;
	(void)what;
	c->srv->refused++;
	if (dmn_log_verbose())
		dmn_log(LOG_DEBUG, "metrics: client closed at its deadline");
	hclient_close(c);
}

/* http_accept - a new client */
static void
http_accept(int fd, void *arg)
{
	struct dmn_http *s = arg;
	struct hclient *c;
	struct timeval tv = { DMN_HTTP_DEADLINE_S, 0 };

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		close(fd);
		return;
	}
	c->srv = s;
	c->fd = fd;
	c->next = s->clients;
	if (s->clients != NULL)
		s->clients->prev = c;
	s->clients = c;
	s->nclients++;
	if ((c->rd = event_new(s->base, fd, EV_READ | EV_PERSIST, read_cb,
	    c)) == NULL || (c->deadline = evtimer_new(s->base, deadline_cb,
	    c)) == NULL || event_add(c->rd, NULL) != 0 ||
	    evtimer_add(c->deadline, &tv) != 0)
		hclient_close(c);
}

/* http_room - below the cap on clients */
static bool
http_room(void *arg)
{
	struct dmn_http *s = arg;

	return s->nclients < DMN_HTTP_CLIENTS_MAX;
}

/* dmn_http_new - see daemon.h */
struct dmn_http *
dmn_http_new(struct event_base *base, int fd, dmn_http_fill_fn *fill,
    void *arg)
{
	struct dmn_http *s;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return NULL;
	s->base = base;
	s->fill = fill;
	s->arg = arg;
	if ((s->acc = dmn_acceptor_new(base, fd, http_accept, http_room,
	    s)) == NULL) {
		free(s);
		return NULL;
	}
	return s;
}

/* dmn_http_free - stop serving, close every client */
void
dmn_http_free(struct dmn_http *s)
{
	if (s == NULL)
		return;
	dmn_acceptor_free(s->acc);
	while (s->clients != NULL)
		hclient_close(s->clients);
	free(s);
}

/* dmn_http_loopback - is the listen address a loopback one? */
bool
dmn_http_loopback(const struct dmn_listen *l)
{
	const struct sockaddr_in *s4 = (const struct sockaddr_in *)&l->ss;
	const struct sockaddr_in6 *s6 = (const struct sockaddr_in6 *)&l->ss;

	if (l->is_unix)
		return true;
	if (l->ss.ss_family == AF_INET)
		return (ntohl(s4->sin_addr.s_addr) >> 24) == 127;
	return IN6_IS_ADDR_LOOPBACK(&s6->sin6_addr);
}

/* dmn_conf_metrics_listen - see daemon.h */
bool
dmn_conf_metrics_listen(const char *val, char *dst, size_t dstlen,
    char *why, size_t whylen)
{
	struct dmn_listen l;

	if (strcmp(val, "none") == 0) {
		dst[0] = '\0';
		return true;
	}
	if (strncmp(val, "inet:", 5) != 0) {
		snprintf(why, whylen, "expected inet:ADDR:PORT, "
		    "inet:[ADDR]:PORT or none");
		return false;
	}
	if (!dmn_listen_parse(val, &l, why, whylen))
		return false;
	if (strlcpy(dst, val, dstlen) >= dstlen) {
		snprintf(why, whylen, "too long");
		return false;
	}
	return true;
}

/* dmn_http_listener_bind - see daemon.h */
bool
dmn_http_listener_bind(struct dmn_http_listener *h, const char *spec,
    char *why, size_t whylen)
{
	if (spec[0] == '\0')
		return true;
	return dmn_listen_parse(spec, &h->sock, why, whylen) &&
	    dmn_listen_bind(&h->sock, 0, why, whylen);
}

/* dmn_http_listener_start - see daemon.h */
bool
dmn_http_listener_start(struct dmn_http_listener *h, struct event_base *b,
    dmn_http_fill_fn *fill, void *arg)
{
	if (h->sock.fd < 0)
		return true;
	if ((h->http = dmn_http_new(b, h->sock.fd, fill, arg)) == NULL)
		return false;
	dmn_log(LOG_INFO, "metrics on %s", h->sock.spec);
	return true;
}

/* dmn_http_listener_stop - see daemon.h */
void
dmn_http_listener_stop(struct dmn_http_listener *h)
{
	dmn_http_free(h->http);
	h->http = NULL;
	dmn_listen_close(&h->sock);
}
