/*
 * smtp.c - the SMTP client that enforces a decision (RFC 5321, RFC 3207,
 * RFC 7672, RFC 8461).
 *
 * Blocking I/O on non-blocking sockets: every read and write waits with
 * poll(2) for at most the current step's timeout (RFC 5321 4.5.3.2),
 * itself cut to what is left of the whole call's bound.  Hosts are tried
 * in the decision's order; a skip host is never contacted; a dane,
 * encrypt or sts-enforce host is never spoken to in cleartext past the
 * EHLO; may and sts-testing hosts fall back to cleartext when STARTTLS is
 * missing or its handshake fails (RFC 7435, RFC 8461 5).
 */
#include "danests-internal.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>

#define SMTP_RBUF	(SMTP_REPLY_LINES_MAX * 256)	/* reply buffer */
#define SMTP_CHUNK	(64 * 1024)	/* data block size */
#define SMTP_PIPE_GROUP	50	/* RCPTs per pipelined group (RFC 2920 3.1) */
#define SMTP_CMD_MAX	1100	/* one command: path 256 + params */

/* RFC 8460 4.3 result types set here (verify.c sets the others). */
#define RT_STARTTLS	DANESTS_RT_STARTTLS_NOT_SUPPORTED
#define RT_VALIDATION	DANESTS_RT_VALIDATION_FAILURE
#define RT_NAME(t)	danests_result_type_name(t)

enum step_rc {
	STEP_OK = 0,
	STEP_FAIL,		/* this connection failed: try elsewhere */
	STEP_DONE,		/* every recipient has its final answer */
};

struct conn {
	int fd;
	SSL *ssl;
	uint64_t end;		/* monotonic ms bound of the whole call */
	char rbuf[SMTP_RBUF];
	size_t rlen;
	char why[DANESTS_WHY_MAX];
	danests_result_type rtype;	/* of the failure, or RT_NONE */
	bool timed_out;
	bool local;		/* failed here (memory, OpenSSL set-up), not
				 * by the peer */
};

/* Per-call state of a delivery. */
struct smtp_run {
	SSL_CTX *tls;
	const struct danests_decision *d;
	const struct danests_smtp_opts *o;
	struct danests_smtp_tx *tx;
	danests_smtp_log_cb *log;
	void *logarg;
	char helo[256];
	char last[DANESTS_SMTP_TEXT_MAX];	/* last failure, for 4xx */
	uint64_t end;		/* monotonic ms bound, 0: none */
	bool expired;
};

/* now_ms - monotonic milliseconds */
static uint64_t
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* danests_smtp_opts_default - RFC 5321 4.5.3.2 timeouts, port 25 */
void
danests_smtp_opts_default(struct danests_smtp_opts *o)
{
	memset(o, 0, sizeof(*o));
	o->port = 25;
	o->connect_ms = 30 * 1000;
	o->greeting_ms = 5 * 60 * 1000;
	o->tls_ms = 5 * 60 * 1000;
	o->mail_ms = 5 * 60 * 1000;
	o->rcpt_ms = 5 * 60 * 1000;
	o->data_ms = 2 * 60 * 1000;
	o->block_ms = 3 * 60 * 1000;
	o->dot_ms = 10 * 60 * 1000;
	o->total_ms = 0;
}

/* conn_deadline - the end of a step of step_ms, cut to the call's bound */
static uint64_t
conn_deadline(const struct conn *c, unsigned step_ms)
{
	uint64_t t = now_ms() + step_ms;

	return c->end != 0 && c->end < t ? c->end : t;
}

/* conn_fail - record why the connection failed; returns STEP_FAIL */
static enum step_rc
conn_fail(struct conn *c, danests_result_type rtype, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static enum step_rc
conn_fail(struct conn *c, danests_result_type rtype, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->why, sizeof(c->why), fmt, ap);
	va_end(ap);
	c->rtype = rtype;
	return STEP_FAIL;
}

/* conn_wait - wait until fd is ready for events or the deadline passes;
 * 0 ready, -1 timeout or error */
static int
conn_wait(struct conn *c, short events, uint64_t deadline)
{
	struct pollfd pfd;
	uint64_t t;
	int rc;

	for (;;) {
		if ((t = now_ms()) >= deadline) {
			c->timed_out = true;
			return -1;
		}
		pfd.fd = c->fd;
		pfd.events = events;
		pfd.revents = 0;
		rc = poll(&pfd, 1, (int)(deadline - t > 60000 ? 60000 :
		    deadline - t));
		if (rc > 0)
			return 0;
		if (rc < 0 && errno != EINTR)
			return -1;
	}
}

/* conn_connect - TCP connect to addr:port within timeout */
static enum step_rc
conn_connect(struct conn *c, const char *addr, unsigned port,
    unsigned timeout_ms)
{
	struct sockaddr_storage ss;
	struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;
	struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;
	socklen_t slen;
	int err = 0;
	socklen_t elen = sizeof(err);

	memset(&ss, 0, sizeof(ss));
	if (inet_pton(AF_INET, addr, &s4->sin_addr) == 1) {
		s4->sin_family = AF_INET;
		s4->sin_port = htons(port);
		slen = sizeof(*s4);
	} else if (inet_pton(AF_INET6, addr, &s6->sin6_addr) == 1) {
		s6->sin6_family = AF_INET6;
		s6->sin6_port = htons(port);
		slen = sizeof(*s6);
	} else
		return conn_fail(c, DANESTS_RT_NONE, "bad address %s", addr);
	if ((c->fd = socket(ss.ss_family, SOCK_STREAM | SOCK_NONBLOCK |
	    SOCK_CLOEXEC, 0)) < 0)
		return conn_fail(c, DANESTS_RT_NONE, "socket: %s", strerror(errno));
	if (connect(c->fd, (struct sockaddr *)&ss, slen) == 0)
		return STEP_OK;
	if (errno != EINPROGRESS)
		return conn_fail(c, DANESTS_RT_NONE, "connect: %s", strerror(errno));
	if (conn_wait(c, POLLOUT, conn_deadline(c, timeout_ms)) != 0)
		return conn_fail(c, DANESTS_RT_NONE, "connect: timed out");
	if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &elen) != 0 ||
	    err != 0)
		return conn_fail(c, DANESTS_RT_NONE, "connect: %s", strerror(err ? err :
		    errno));
	return STEP_OK;
}

/* conn_close - drop the connection (no QUIT) */
static void
conn_close(struct conn *c)
{
	if (c->ssl != NULL) {
		SSL_free(c->ssl);
		c->ssl = NULL;
	}
	if (c->fd >= 0) {
		close(c->fd);
		c->fd = -1;
	}
	c->rlen = 0;
}

/* conn_io_wait - after a would-block: wait for what SSL or the socket
 * needs; 0 ready, -1 timeout or error */
static int
conn_io_wait(struct conn *c, int sslerr, short dflt, uint64_t deadline)
{
	short ev = dflt;

	if (c->ssl != NULL)
		ev = sslerr == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN;
	return conn_wait(c, ev, deadline);
}

/* conn_write - write all of buf before deadline */
static enum step_rc
conn_write(struct conn *c, const char *buf, size_t len, uint64_t deadline)
{
	ssize_t n;
	int e = 0;

	while (len > 0) {
		if (c->ssl != NULL) {
			size_t w = 0;
			int rc;

			ERR_clear_error();
			rc = SSL_write_ex(c->ssl, buf, len, &w);
			if (rc > 0)
				n = (ssize_t)w;
			else {
				e = SSL_get_error(c->ssl, rc);
				if (e != SSL_ERROR_WANT_READ &&
				    e != SSL_ERROR_WANT_WRITE)
					return conn_fail(c, DANESTS_RT_NONE,
					    "TLS write failed");
				n = -1;
			}
		} else {
			n = send(c->fd, buf, len, MSG_NOSIGNAL);
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return conn_fail(c, DANESTS_RT_NONE, "write: %s",
				    strerror(errno));
		}
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
			continue;
		}
		if (conn_io_wait(c, e, POLLOUT, deadline) != 0)
			return conn_fail(c, DANESTS_RT_NONE, "write: timed out");
	}
	return STEP_OK;
}

/* conn_read_reply - one complete reply before deadline */
static enum step_rc
conn_read_reply(struct conn *c, struct smtp_reply *r, uint64_t deadline)
{
	const char *pwhy;
	long used;
	ssize_t n;
	int e = 0;

	for (;;) {
		used = smtp_reply_parse(c->rbuf, c->rlen, r, &pwhy);
		if (used < 0)
			return conn_fail(c, DANESTS_RT_NONE, "malformed reply: %s", pwhy);
		if (used > 0) {
			memmove(c->rbuf, c->rbuf + used, c->rlen -
			    (size_t)used);
			c->rlen -= (size_t)used;
			return STEP_OK;
		}
		if (c->rlen >= sizeof(c->rbuf))
			return conn_fail(c, DANESTS_RT_NONE, "reply too long");
		if (c->ssl != NULL) {
			size_t got = 0;
			int rc;

			ERR_clear_error();
			rc = SSL_read_ex(c->ssl, c->rbuf + c->rlen,
			    sizeof(c->rbuf) - c->rlen, &got);
			if (rc > 0)
				n = (ssize_t)got;
			else {
				e = SSL_get_error(c->ssl, rc);
				if (e == SSL_ERROR_ZERO_RETURN)
					return conn_fail(c, DANESTS_RT_NONE,
					    "connection closed");
				if (e != SSL_ERROR_WANT_READ &&
				    e != SSL_ERROR_WANT_WRITE)
					return conn_fail(c, DANESTS_RT_NONE,
					    "TLS read failed");
				n = -1;
			}
		} else {
			n = recv(c->fd, c->rbuf + c->rlen,
			    sizeof(c->rbuf) - c->rlen, 0);
			if (n == 0)
				return conn_fail(c, DANESTS_RT_NONE,
				    "connection closed");
			if (n < 0 && errno != EAGAIN && errno != EINTR)
				return conn_fail(c, DANESTS_RT_NONE, "read: %s",
				    strerror(errno));
		}
		if (n > 0) {
			c->rlen += (size_t)n;
			continue;
		}
		if (conn_io_wait(c, e, POLLIN, deadline) != 0)
			return conn_fail(c, DANESTS_RT_NONE, "timed out waiting for "
			    "a reply");
	}
}

/* conn_cmd - send a command line and read its reply */
static enum step_rc
conn_cmd(struct conn *c, const char *line, struct smtp_reply *r,
    unsigned timeout_ms)
{
	uint64_t deadline = conn_deadline(c, timeout_ms);
	enum step_rc rc;

	if ((rc = conn_write(c, line, strlen(line), deadline)) != STEP_OK)
		return rc;
	return conn_read_reply(c, r, deadline);
}

/* reply_line - "X.Y.Z text" from a reply, first line, capped; a missing
 * enhanced code becomes dflt (RFC 3463) */
static void
reply_line(const struct smtp_reply *r, const char *dflt, const char *who,
    char *out, size_t outlen)
{
	const char *t = r->text;
	size_t n;

	if (*r->enh) {
		t += strlen(r->enh);
		while (*t == ' ')
			t++;
	}
	n = strcspn(t, "\n");
	snprintf(out, outlen, "%s %s said: %d %.*s", *r->enh ? r->enh : dflt,
	    who, r->code, (int)(n > 300 ? 300 : n), t);
}

/* verify_failed - RFC 8460 4.3 result type of a verification error that
 * ended the handshake (as verify.c maps a completed one) */
static void
verify_failed(const struct danests_host *h, long err,
    struct danests_verify_result *vr)
{
	if ((vr->reason = verify_result_type(h->policy, err)) ==
	    DANESTS_RT_NONE)
		vr->reason = RT_VALIDATION;
	vr->verified = false;
	snprintf(vr->detail, sizeof(vr->detail), "%s (X509 error %ld)",
	    X509_verify_cert_error_string(err), err);
}

/* tls_handshake - STARTTLS done: set up ssl for host and shake hands */
static enum step_rc
tls_handshake(struct conn *c, SSL_CTX *ctx, const struct danests_host *h,
    unsigned timeout_ms, struct danests_verify_result *vr)
{
	uint64_t deadline = conn_deadline(c, timeout_ms);
	char why[DANESTS_WHY_MAX];
	int rc, e;

	memset(vr, 0, sizeof(*vr));
	vr->reason = RT_VALIDATION;
	ERR_clear_error();
	if ((c->ssl = SSL_new(ctx)) == NULL) {
		c->local = true;
		return conn_fail(c, DANESTS_RT_NONE, "SSL_new failed");
	}
	*why = '\0';
	if (danests_tls_prepare(c->ssl, h, why, sizeof(why)) != DANESTS_OK)
		return conn_fail(c, RT_VALIDATION, "TLS set-up: %s", why);
	if (SSL_set_fd(c->ssl, c->fd) != 1) {
		c->local = true;
		return conn_fail(c, DANESTS_RT_NONE, "SSL_set_fd failed");
	}
	for (;;) {
		ERR_clear_error();
		if ((rc = SSL_connect(c->ssl)) == 1)
			break;
		e = SSL_get_error(c->ssl, rc);
		if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
			if (conn_io_wait(c, e, POLLIN, deadline) != 0)
				return conn_fail(c, DANESTS_RT_NONE,
				    "TLS handshake timed out");
			continue;
		}
		danests_tls_result(c->ssl, h, vr);
		if (SSL_get_verify_result(c->ssl) != X509_V_OK) {
			long verr = SSL_get_verify_result(c->ssl);

			/* a handshake that failed verification keeps no
			 * peer certificate: name the failure here */
			if (SSL_get0_peer_certificate(c->ssl) == NULL)
				verify_failed(h, verr, vr);
			if (vr->reason == DANESTS_RT_NONE)
				vr->reason = RT_VALIDATION;
			return conn_fail(c, vr->reason,
			    "TLS authentication failed: %s: %s",
			    RT_NAME(vr->reason), vr->detail);
		}
		{
			char ebuf[160];
			unsigned long err = ERR_peek_error();

			if (err != 0)
				ERR_error_string_n(err, ebuf, sizeof(ebuf));
			else
				snprintf(ebuf, sizeof(ebuf), "%s",
				    e == SSL_ERROR_SYSCALL ?
				    "connection closed" : "failed");
			return conn_fail(c, RT_VALIDATION,
			    "TLS handshake failed: %s", ebuf);
		}
	}
	danests_tls_result(c->ssl, h, vr);
	return STEP_OK;
}

/* tls_required - may this host's policy never go without TLS? */
static bool
tls_required(danests_policy p)
{
	return p == DANESTS_POLICY_DANE || p == DANESTS_POLICY_ENCRYPT ||
	    p == DANESTS_POLICY_STS_ENFORCE;
}

/* auth_required - must the peer be authenticated? */
static bool
auth_required(danests_policy p)
{
	return p == DANESTS_POLICY_DANE || p == DANESTS_POLICY_STS_ENFORCE;
}

/* struct session - what one connection learnt, up to the secured EHLO */
struct session {
	unsigned ext;
	unsigned ext_plain;	/* offered before STARTTLS */
	unsigned long long size;
	bool tls;
	char tls_desc[128];
	struct danests_verify_result vr;
	char banner[256];
	/* the TLS negotiation attempt (RFC 8460 4.3): 0 none (no EHLO
	 * reply, a retry in the clear, a local error), 1 succeeded, -1
	 * failed with attempt_rt (RT_NONE: the connection's rtype) */
	int attempt;
	danests_result_type attempt_rt;
};

/* session_open - connect, greeting, EHLO, STARTTLS per policy, EHLO
 * again.  plain: do not try STARTTLS (fallback for may/sts-testing). */
static enum step_rc
session_open(struct conn *c, SSL_CTX *ctx, const struct danests_host *h,
    const char *addr, const struct danests_smtp_opts *o, const char *helo,
    bool plain, struct session *s)
{
	struct smtp_reply *r;
	char line[SMTP_CMD_MAX];
	enum step_rc rc;
	size_t n;

	memset(s, 0, sizeof(*s));
	snprintf(s->tls_desc, sizeof(s->tls_desc), "none");
	if ((r = malloc(sizeof(*r))) == NULL) {
		c->local = true;
		return conn_fail(c, DANESTS_RT_NONE, "out of memory");
	}
	if ((rc = conn_connect(c, addr, o->port, o->connect_ms)) != STEP_OK)
		goto out;
	/* RFC 5321 4.5.3.2.1: initial 220 message, 5 minutes */
	if ((rc = conn_read_reply(c, r, conn_deadline(c, o->greeting_ms))) !=
	    STEP_OK)
		goto out;
	n = strcspn(r->text, "\n");
	snprintf(s->banner, sizeof(s->banner), "%d %.*s", r->code,
	    (int)(n > 200 ? 200 : n), r->text);
	if (r->code != 220) {
		rc = conn_fail(c, DANESTS_RT_NONE, "greeting: %s", s->banner);
		goto out;
	}
	snprintf(line, sizeof(line), "EHLO %s\r\n", helo);
	if ((rc = conn_cmd(c, line, r, o->tls_ms)) != STEP_OK)
		goto out;
	if (r->code != 250) {
		if (tls_required(h->policy)) {
			s->attempt = -1;
			rc = conn_fail(c, RT_STARTTLS, "EHLO refused (%d): "
			    "no STARTTLS", r->code);
			goto out;
		}
		/* RFC 5321 3.2: fall back to HELO; no extensions */
		snprintf(line, sizeof(line), "HELO %s\r\n", helo);
		if ((rc = conn_cmd(c, line, r, o->tls_ms)) != STEP_OK)
			goto out;
		if (r->code != 250) {
			rc = conn_fail(c, DANESTS_RT_NONE, "HELO refused: %d", r->code);
			goto out;
		}
		if (!plain) {
			s->attempt = -1;
			s->attempt_rt = RT_STARTTLS;
		}
		rc = STEP_OK;
		goto out;
	}
	s->ext = smtp_ehlo_parse(r, &s->size);
	s->ext_plain = s->ext;
	if (plain) {
		rc = STEP_OK;
		goto out;
	}
	/* from here on a failure is one of TLS negotiation */
	s->attempt = -1;
	if (!(s->ext & SMTP_EXT_STARTTLS) && !tls_required(h->policy)) {
		/* RFC 8461 5 / RFC 7435: testing and may go on in the
		 * clear; the caller reports it. */
		s->attempt_rt = RT_STARTTLS;
		rc = STEP_OK;
		goto out;
	}
	if (!(s->ext & SMTP_EXT_STARTTLS)) {
		/* RFC 7672 2.2, RFC 8461 5: never in the clear */
		rc = conn_fail(c, RT_STARTTLS, "STARTTLS not offered");
		goto out;
	}
	if ((rc = conn_cmd(c, "STARTTLS\r\n", r, o->tls_ms)) != STEP_OK)
		goto out;
	if (r->code != 220) {
		rc = conn_fail(c, RT_STARTTLS, "STARTTLS refused: %d",
		    r->code);
		goto out;
	}
	/* RFC 3207 5 / CVE-2011-0411: nothing may follow the 220 in the
	 * clear; bytes buffered here were injected. */
	if (c->rlen != 0) {
		rc = conn_fail(c, RT_VALIDATION, "data after STARTTLS reply");
		goto out;
	}
	if ((rc = tls_handshake(c, ctx, h, o->tls_ms, &s->vr)) != STEP_OK) {
		if (c->local)
			s->attempt = 0;
		goto out;
	}
	s->tls = true;
	snprintf(s->tls_desc, sizeof(s->tls_desc), "%s %s",
	    SSL_get_version(c->ssl), SSL_get_cipher_name(c->ssl));
	if (auth_required(h->policy) && !s->vr.verified) {
		/* verify.c fails the handshake already; never trust a
		 * completed one that says otherwise */
		rc = conn_fail(c, s->vr.reason != DANESTS_RT_NONE ?
		    s->vr.reason : RT_VALIDATION,
		    "TLS authentication failed: %s", s->vr.detail);
		goto out;
	}
	if (h->policy == DANESTS_POLICY_STS_TESTING && !s->vr.verified)
		/* RFC 8461 5: delivered anyway, reported as a failure */
		s->attempt_rt = s->vr.reason != DANESTS_RT_NONE ?
		    s->vr.reason : RT_VALIDATION;
	else
		s->attempt = 1;
	/* RFC 3207 4.2: forget what was learnt before TLS */
	snprintf(line, sizeof(line), "EHLO %s\r\n", helo);
	if ((rc = conn_cmd(c, line, r, o->tls_ms)) != STEP_OK)
		goto out;
	if (r->code != 250) {
		rc = conn_fail(c, DANESTS_RT_NONE, "EHLO after STARTTLS refused: %d",
		    r->code);
		goto out;
	}
	s->ext = smtp_ehlo_parse(r, &s->size);
	rc = STEP_OK;
out:
	free(r);
	return rc;
}

/* run_log - one progress line to the caller */
static void
run_log(struct smtp_run *run, bool warn, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
run_log(struct smtp_run *run, bool warn, const char *fmt, ...)
{
	char line[768];
	va_list ap;

	if (run->log == NULL)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	run->log(run->logarg, warn, line);
}

/* rcpt_set - give a recipient its outcome */
static void
rcpt_set(struct danests_smtp_rcpt *rc, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void
rcpt_set(struct danests_smtp_rcpt *rc, int code, const char *fmt, ...)
{
	va_list ap;

	rc->code = code;
	va_start(ap, fmt);
	vsnprintf(rc->text, sizeof(rc->text), fmt, ap);
	va_end(ap);
}

/* all_set - every recipient without an outcome gets this one */
static void
all_set(struct danests_smtp_tx *tx, int code, const char *text)
{
	size_t i;

	for (i = 0; i < tx->nrcpt; i++)
		if (tx->rcpt[i].code == 0)
			rcpt_set(&tx->rcpt[i], code, "%s", text);
}

/* send_message - the message body, then the terminating "." */
static enum step_rc
send_message(struct conn *c, const struct danests_smtp_msg *m,
    const struct danests_smtp_opts *o)
{
	char *buf = NULL;
	uint64_t off = 0;
	enum step_rc rc = STEP_OK;
	bool crlf = true;
	size_t n;
	ssize_t got;

	if (m->fd >= 0 && (buf = malloc(SMTP_CHUNK)) == NULL)
		return conn_fail(c, DANESTS_RT_NONE, "out of memory");
	while (off < m->len) {
		n = m->len - off > SMTP_CHUNK ? SMTP_CHUNK :
		    (size_t)(m->len - off);
		if (m->fd >= 0) {
			got = pread(m->fd, buf, n, (off_t)off);
			if (got <= 0) {
				rc = conn_fail(c, DANESTS_RT_NONE, "message read: %s",
				    got < 0 ? strerror(errno) : "short");
				goto out;
			}
			n = (size_t)got;
		}
		/* RFC 5321 4.5.3.2.5: each block within 3 minutes */
		if ((rc = conn_write(c, m->fd >= 0 ? buf : m->data + off, n,
		    conn_deadline(c, o->block_ms))) != STEP_OK)
			goto out;
		crlf = n >= 2 && (m->fd >= 0 ? buf : m->data + off)[n - 2] ==
		    '\r' && (m->fd >= 0 ? buf : m->data + off)[n - 1] == '\n';
		off += n;
	}
	/* RFC 5321 4.1.1.4: the body ends with CRLF.CRLF */
	if (!crlf && m->len > 0)
		rc = conn_write(c, "\r\n.\r\n", 5, conn_deadline(c,
		    o->block_ms));
	else
		rc = conn_write(c, ".\r\n", 3, conn_deadline(c, o->block_ms));
out:
	free(buf);
	return rc;
}

/* mail_params - the MAIL FROM parameters for what the server offers */
static const char *
mail_params(struct smtp_run *run, const struct session *s, char *buf,
    size_t len)
{
	size_t n = 0;

	buf[0] = '\0';
	/* RFC 1870 3: declare the size */
	if (s->ext & SMTP_EXT_SIZE)
		n += (size_t)snprintf(buf + n, len - n, " SIZE=%llu",
		    (unsigned long long)run->tx->msg->len);
	/* RFC 6152 2 */
	if (run->tx->body_8bit && (s->ext & SMTP_EXT_8BITMIME) && n < len)
		n += (size_t)snprintf(buf + n, len - n, " BODY=8BITMIME");
	/* RFC 6531 3.4 */
	if (run->tx->smtputf8 && n < len)
		snprintf(buf + n, len - n, " SMTPUTF8");
	return buf;
}

/* transaction - MAIL, RCPT (pipelined when offered), DATA, the message
 * and its final reply on an open session */
static enum step_rc
transaction(struct smtp_run *run, struct conn *c, const struct session *s,
    const char *who)
{
	struct danests_smtp_tx *tx = run->tx;
	const struct danests_smtp_opts *o = run->o;
	struct smtp_reply *r;
	char *cmds = NULL, params[96], text[DANESTS_SMTP_TEXT_MAX];
	size_t i, j, group, nok = 0, clen, cap;
	enum step_rc rc = STEP_FAIL;
	uint64_t deadline;

	if ((r = malloc(sizeof(*r))) == NULL)
		return conn_fail(c, DANESTS_RT_NONE, "out of memory");
	/* RFC 1870 6.1: do not send what the server said it refuses */
	if ((s->ext & SMTP_EXT_SIZE) && s->size != 0 && tx->msg->len >
	    s->size) {
		snprintf(text, sizeof(text), "5.3.4 message size %llu "
		    "exceeds the limit %llu of %s",
		    (unsigned long long)tx->msg->len, s->size, who);
		all_set(tx, 552, text);
		rc = STEP_DONE;
		goto out;
	}
	if (tx->smtputf8 && !(s->ext & SMTP_EXT_SMTPUTF8)) {
		/* RFC 6531 3.4: must not be sent to this server */
		snprintf(text, sizeof(text), "5.6.7 %s does not support "
		    "SMTPUTF8", who);
		all_set(tx, 553, text);
		rc = STEP_DONE;
		goto out;
	}
	cap = SMTP_CMD_MAX * (SMTP_PIPE_GROUP + 1);
	if ((cmds = malloc(cap)) == NULL) {
		rc = conn_fail(c, DANESTS_RT_NONE, "out of memory");
		goto out;
	}
	clen = (size_t)snprintf(cmds, cap, "MAIL FROM:<%s>%s\r\n",
	    tx->sender, mail_params(run, s, params, sizeof(params)));
	/* RFC 2920 3.1: MAIL and RCPTs may go in one group; without
	 * PIPELINING each command waits for its reply. */
	group = (s->ext & SMTP_EXT_PIPELINING) ? SMTP_PIPE_GROUP : 1;
	deadline = conn_deadline(c, o->mail_ms);
	if (group == 1) {
		if ((rc = conn_write(c, cmds, clen, deadline)) != STEP_OK ||
		    (rc = conn_read_reply(c, r, deadline)) != STEP_OK)
			goto out;
		clen = 0;
		goto mail_reply;
	}
	for (i = 0; i < tx->nrcpt; i += group) {
		size_t end = i + group < tx->nrcpt ? i + group : tx->nrcpt;

		for (j = i; j < end; j++)
			clen += (size_t)snprintf(cmds + clen, cap - clen,
			    "RCPT TO:<%s>\r\n", tx->rcpt[j].addr);
		deadline = conn_deadline(c, o->rcpt_ms);
		if ((rc = conn_write(c, cmds, clen, deadline)) != STEP_OK)
			goto out;
		clen = 0;
		if (i == 0) {
			if ((rc = conn_read_reply(c, r, deadline)) != STEP_OK)
				goto out;
mail_reply:
			if (r->code / 100 != 2) {
				/* RFC 5321 4.2.5: 4xx try again, 5xx no;
				 * a 4xx here is the host's trouble, try
				 * the next one */
				reply_line(r, r->code / 100 == 4 ? "4.0.0" :
				    "5.0.0", who, text, sizeof(text));
				if (r->code / 100 == 4) {
					rc = conn_fail(c, DANESTS_RT_NONE, "MAIL: %s",
					    text);
					goto out;
				}
				all_set(tx, r->code, text);
				rc = STEP_DONE;
				goto out;
			}
			if (group == 1)
				break;
		}
		for (j = i; j < end; j++) {
			if ((rc = conn_read_reply(c, r, deadline)) != STEP_OK)
				goto out;
			if (r->code / 100 == 2)
				nok++;
			else {
				reply_line(r, r->code / 100 == 4 ? "4.0.0" :
				    "5.0.0", who, text, sizeof(text));
				rcpt_set(&tx->rcpt[j], r->code, "%s", text);
			}
		}
	}
	if (group == 1) {
		for (j = 0; j < tx->nrcpt; j++) {
			snprintf(cmds, cap, "RCPT TO:<%s>\r\n",
			    tx->rcpt[j].addr);
			if ((rc = conn_cmd(c, cmds, r, o->rcpt_ms)) != STEP_OK)
				goto out;
			if (r->code / 100 == 2)
				nok++;
			else {
				reply_line(r, r->code / 100 == 4 ? "4.0.0" :
				    "5.0.0", who, text, sizeof(text));
				rcpt_set(&tx->rcpt[j], r->code, "%s", text);
			}
		}
	}
	if (nok == 0) {
		/* every recipient refused: no DATA (RFC 5321 3.3) */
		(void)conn_cmd(c, "RSET\r\n", r, o->mail_ms);
		rc = STEP_DONE;
		goto out;
	}
	/* RFC 5321 4.5.3.2.4: DATA initiation, 2 minutes */
	if ((rc = conn_cmd(c, "DATA\r\n", r, o->data_ms)) != STEP_OK)
		goto out;
	if (r->code != 354) {
		reply_line(r, r->code / 100 == 5 ? "5.0.0" : "4.0.0", who,
		    text, sizeof(text));
		all_set(tx, r->code / 100 == 5 ? r->code : 451, text);
		rc = STEP_DONE;
		goto out;
	}
	if ((rc = send_message(c, tx->msg, o)) != STEP_OK)
		goto out;
	/* RFC 5321 4.5.3.2.6: 10 minutes for the final reply.  From here
	 * on the message may have been taken: no other host is tried. */
	if ((rc = conn_read_reply(c, r, conn_deadline(c, o->dot_ms))) !=
	    STEP_OK) {
		snprintf(text, sizeof(text), "4.4.2 %.200s: %.200s after "
		    "the end of data", who, c->why);
		all_set(tx, 451, text);
		rc = STEP_DONE;
		goto out;
	}
	if (r->code / 100 == 2) {
		size_t n = strcspn(r->text, "\n");

		snprintf(text, sizeof(text), "%s delivered to %s: %d %.*s",
		    *r->enh ? r->enh : "2.0.0", who, r->code,
		    (int)(n > 300 ? 300 : n), r->text);
		all_set(tx, 250, text);
	} else {
		reply_line(r, r->code / 100 == 5 ? "5.0.0" : "4.0.0", who,
		    text, sizeof(text));
		all_set(tx, r->code / 100 == 5 ? r->code : 451, text);
	}
	(void)conn_cmd(c, "QUIT\r\n", r, 5000);
	rc = STEP_DONE;
out:
	free(cmds);
	free(r);
	return rc;
}

/* attempt_report - tell the caller of one TLS negotiation attempt
 * (RFC 8460 4.3), with the connection's local address (sending-mta-ip) */
static void
attempt_report(struct danests_smtp_tx *tx, const struct conn *c,
    const struct danests_host *h, const char *addr, const struct session *s)
{
	struct danests_smtp_attempt a;
	struct sockaddr_storage ss;
	socklen_t len = sizeof(ss);
	char local[INET6_ADDRSTRLEN] = "";

	if (c->fd >= 0 && getsockname(c->fd, (struct sockaddr *)&ss,
	    &len) == 0) {
		if (ss.ss_family == AF_INET)
			inet_ntop(AF_INET, &((struct sockaddr_in *)&ss)->sin_addr,
			    local, sizeof(local));
		else if (ss.ss_family == AF_INET6)
			inet_ntop(AF_INET6,
			    &((struct sockaddr_in6 *)&ss)->sin6_addr, local,
			    sizeof(local));
	}
	memset(&a, 0, sizeof(a));
	a.host = h;
	a.addr = addr;
	a.local_addr = local;
	a.tls = s->tls;
	if (s->attempt < 0) {
		/* a failure the peer caused without a type of its own (a
		 * handshake cut or timed out) is RFC 8460 4.3.2's general
		 * validation-failure */
		a.result_type = s->attempt_rt != DANESTS_RT_NONE ?
		    s->attempt_rt : c->rtype != DANESTS_RT_NONE ? c->rtype :
		    RT_VALIDATION;
		a.detail = s->attempt_rt == RT_STARTTLS && c->rtype !=
		    RT_STARTTLS ? "STARTTLS not offered" :
		    s->attempt_rt != DANESTS_RT_NONE && s->tls ? s->vr.detail :
		    c->why;
	}
	tx->attempt(tx->attempt_arg, &a);
}

/* skip_report - a host the decision rules out for a failure RFC 8460
 * 4.3 names (a bogus TLSA RRset, an MX outside the MTA-STS policy): the
 * session it would have had failed before it began */
static void
skip_report(struct danests_smtp_tx *tx, const struct danests_host *h)
{
	struct danests_smtp_attempt a;

	if (tx->attempt == NULL ||
	    danests_reason_result_type(h->reason) == DANESTS_RT_NONE)
		return;
	memset(&a, 0, sizeof(a));
	a.host = h;
	a.addr = "";
	a.local_addr = "";
	a.result_type = danests_reason_result_type(h->reason);
	a.detail = danests_reason_name(h->reason);
	tx->attempt(tx->attempt_arg, &a);
}

/* try_address - one connection to one address of host h */
static enum step_rc
try_address(struct smtp_run *run, const struct danests_host *h,
    const char *addr, bool plain)
{
	struct danests_smtp_tx *tx = run->tx;
	struct conn *c;
	struct session s;
	char who[384];
	enum step_rc rc;
	size_t i;

	if ((c = calloc(1, sizeof(*c))) == NULL) {
		snprintf(run->last, sizeof(run->last), "4.3.0 out of memory");
		return STEP_FAIL;
	}
	c->fd = -1;
	c->end = run->end;
	snprintf(who, sizeof(who), "%s[%s]", h->name, addr);
	rc = session_open(c, run->tls, h, addr, run->o, run->helo, plain, &s);
	if (s.attempt != 0 && tx->attempt != NULL)
		attempt_report(tx, c, h, addr, &s);
	snprintf(tx->host, sizeof(tx->host), "%s", h->name);
	snprintf(tx->addr, sizeof(tx->addr), "%s", addr);
	snprintf(tx->tls, sizeof(tx->tls), "%s", s.tls_desc);
	tx->verified = s.tls && s.vr.verified;
	snprintf(tx->verify_detail, sizeof(tx->verify_detail), "%s",
	    s.tls ? s.vr.detail : "");
	if (rc == STEP_OK) {
		bool testing_fail = false;

		if (h->policy == DANESTS_POLICY_STS_TESTING &&
		    (!s.tls || !s.vr.verified)) {
			/* RFC 8461 5: testing mode delivers anyway and
			 * reports the failure (RFC 8460) */
			tx->result_type = !s.tls ? RT_STARTTLS :
			    s.vr.reason != DANESTS_RT_NONE ? s.vr.reason :
			    RT_VALIDATION;
			testing_fail = true;
		}
		run_log(run, testing_fail, "%s: policy %s, tls %s, %s%s%s%s",
		    who, danests_policy_name(h->policy), s.tls_desc,
		    !s.tls ? "cleartext" : s.vr.verified ? "verified" :
		    "not verified", s.tls && *s.vr.detail ? ": " : "",
		    s.tls ? s.vr.detail : "", testing_fail ?
		    " (sts testing: delivering anyway)" : "");
		for (i = 0; i < tx->nrcpt; i++)
			tx->rcpt[i].code = 0;
		rc = transaction(run, c, &s, who);
	}
	if (rc == STEP_FAIL) {
		if (c->rtype != DANESTS_RT_NONE)
			tx->result_type = c->rtype;
		if (run->end != 0 && now_ms() >= run->end)
			run->expired = true;
		/* RFC 3463: 4.7.5 cryptographic failure, 4.7.4 security
		 * feature missing, 4.4.1 no answer from host */
		snprintf(run->last, sizeof(run->last), "%s %.200s: %.250s",
		    c->rtype == DANESTS_RT_NONE ? "4.4.1" :
		    c->rtype == RT_STARTTLS ? "4.7.4" : "4.7.5", who, c->why);
		run_log(run, true, "%s: policy %s: %s%s%s%s", who,
		    danests_policy_name(h->policy), c->why,
		    c->rtype != DANESTS_RT_NONE ? " (" : "",
		    c->rtype != DANESTS_RT_NONE ? RT_NAME(c->rtype) : "",
		    c->rtype != DANESTS_RT_NONE ? ")" : "");
		for (i = 0; i < tx->nrcpt; i++)
			tx->rcpt[i].code = 0;
	}
	conn_close(c);
	free(c);
	return rc;
}

/* verdict_fail - recipients' outcome when the decision says no */
static danests_status
verdict_fail(struct smtp_run *run)
{
	const struct danests_decision *d = run->d;
	const char *why = danests_reason_name(d->reason);
	char text[DANESTS_SMTP_TEXT_MAX];

	if (d->verdict == DANESTS_PERMFAIL) {
		if (d->reason == DANESTS_R_NULL_MX) {
			/* RFC 7505 4.2 */
			snprintf(text, sizeof(text), "5.1.10 domain %s does "
			    "not accept mail (null MX)", d->domain);
			all_set(run->tx, 556, text);
		} else {
			snprintf(text, sizeof(text), "5.1.2 domain %s: %s",
			    d->domain, why ? why : "permfail");
			all_set(run->tx, 550, text);
		}
		run_log(run, true, "%s: permfail (%s)", d->domain,
		    why ? why : "-");
		return DANESTS_PERM;
	}
	snprintf(text, sizeof(text), "4.4.3 domain %s: delivery deferred "
	    "(%s)", d->domain, why ? why : "tempfail");
	all_set(run->tx, 451, text);
	run_log(run, true, "%s: tempfail (%s)", d->domain, why ? why : "-");
	return DANESTS_TEMP;
}

/* deliver_status - the summary of the recipients' outcomes */
static danests_status
deliver_status(const struct danests_smtp_tx *tx)
{
	bool perm = tx->nrcpt > 0;
	size_t i;

	for (i = 0; i < tx->nrcpt; i++) {
		if (tx->rcpt[i].code / 100 == 2)
			return DANESTS_OK;
		if (tx->rcpt[i].code / 100 != 5)
			perm = false;
	}
	return perm ? DANESTS_PERM : DANESTS_TEMP;
}

/* danests_smtp_deliver - deliver one domain's recipients per decision */
danests_status
danests_smtp_deliver(SSL_CTX *tls, const struct danests_decision *d,
    const struct danests_smtp_opts *o, struct danests_smtp_tx *tx,
    danests_smtp_log_cb *log, void *logarg)
{
	struct smtp_run run;
	const struct danests_host *h;
	enum step_rc rc = STEP_FAIL;
	size_t i, k;
	bool plain, tried = false;

	memset(&run, 0, sizeof(run));
	run.tls = tls;
	run.d = d;
	run.o = o;
	run.tx = tx;
	run.log = log;
	run.logarg = logarg;
	tx->host[0] = tx->addr[0] = tx->verify_detail[0] = '\0';
	snprintf(tx->tls, sizeof(tx->tls), "none");
	tx->verified = false;
	tx->result_type = DANESTS_RT_NONE;
	for (i = 0; i < tx->nrcpt; i++) {
		tx->rcpt[i].code = 0;
		tx->rcpt[i].text[0] = '\0';
	}
	if (o->total_ms != 0)
		run.end = now_ms() + o->total_ms;
	if (o->helo != NULL && *o->helo != '\0')
		snprintf(run.helo, sizeof(run.helo), "%s", o->helo);
	else if (gethostname(run.helo, sizeof(run.helo)) != 0 ||
	    *run.helo == '\0')
		snprintf(run.helo, sizeof(run.helo), "localhost");
	run.helo[sizeof(run.helo) - 1] = '\0';
	if (d->verdict != DANESTS_DELIVER) {
		for (i = 0; d->verdict == DANESTS_TEMPFAIL && i < d->nhosts; i++)
			skip_report(tx, &d->hosts[i]);
		return verdict_fail(&run);
	}
	snprintf(run.last, sizeof(run.last), "4.4.4 domain %s: no MX host "
	    "may be used", d->domain);

	/* RFC 5321 5.1: hosts in preference order, addresses in turn */
	for (i = 0; i < d->nhosts && rc != STEP_DONE && !run.expired; i++) {
		h = &d->hosts[i];
		if (h->policy == DANESTS_POLICY_SKIP) {
			skip_report(tx, h);
			run_log(&run, true, "%s: skipped (%s)", h->name,
			    danests_reason_name(h->reason) ?
			    danests_reason_name(h->reason) : "skip");
			if (!tried)
				snprintf(run.last, sizeof(run.last), "4.7.5 "
				    "%s: host skipped (%s)", h->name,
				    danests_reason_name(h->reason) ?
			    danests_reason_name(h->reason) : "skip");
			continue;
		}
		for (k = 0; k < h->naddrs && rc != STEP_DONE &&
		    !run.expired; k++) {
			tried = true;
			plain = false;
			rc = try_address(&run, h, h->addrs[k], plain);
			/* RFC 7435 / RFC 8461 5: a failed handshake with a
			 * may or testing host is retried in the clear */
			if (rc == STEP_FAIL && !run.expired &&
			    tx->result_type != DANESTS_RT_NONE &&
			    tx->result_type != RT_STARTTLS &&
			    (h->policy == DANESTS_POLICY_MAY ||
			    h->policy == DANESTS_POLICY_STS_TESTING)) {
				run_log(&run, true, "%s[%s]: retrying "
				    "without TLS", h->name, h->addrs[k]);
				rc = try_address(&run, h, h->addrs[k], true);
			}
		}
	}
	if (rc != STEP_DONE) {
		if (run.expired)
			snprintf(run.last, sizeof(run.last), "4.4.7 domain "
			    "%s: delivery time limit reached", d->domain);
		all_set(tx, 451, run.last);
	}
	return deliver_status(tx);
}

/* chain_name - one-line RFC 2253 name of a certificate's subject or
 * issuer */
static void
chain_name(const X509_NAME *n, char *out, size_t len)
{
	BIO *b;
	int got;

	*out = '\0';
	if ((b = BIO_new(BIO_s_mem())) == NULL)
		return;
	if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0 &&
	    (got = BIO_read(b, out, (int)len - 1)) > 0)
		out[got] = '\0';
	BIO_free(b);
}

/* danests_smtp_probe - reach one host as its policy asks, then QUIT */
danests_status
danests_smtp_probe(SSL_CTX *tls, const struct danests_host *h,
    const struct danests_smtp_opts *o, struct danests_smtp_probe *out)
{
	struct conn *c;
	struct session s;
	struct smtp_reply *r;
	STACK_OF(X509) *chain;
	char helo[256];
	enum step_rc rc = STEP_FAIL;
	size_t k;
	int i;

	memset(out, 0, sizeof(*out));
	out->status = DANESTS_TEMP;
	out->verify.depth = -1;
	out->verify.usage = out->verify.selector = out->verify.mtype = -1;
	if (h->policy == DANESTS_POLICY_SKIP) {
		out->status = DANESTS_PERM;
		snprintf(out->error, sizeof(out->error), "host skipped (%s)",
		    danests_reason_name(h->reason) ?
			    danests_reason_name(h->reason) : "skip");
		return out->status;
	}
	if (h->naddrs == 0) {
		snprintf(out->error, sizeof(out->error), "no address");
		return out->status;
	}
	if ((c = calloc(1, sizeof(*c))) == NULL ||
	    (r = malloc(sizeof(*r))) == NULL) {
		free(c);
		snprintf(out->error, sizeof(out->error), "out of memory");
		return out->status;
	}
	if (o->helo != NULL && *o->helo != '\0')
		snprintf(helo, sizeof(helo), "%s", o->helo);
	else if (gethostname(helo, sizeof(helo)) != 0 || *helo == '\0')
		snprintf(helo, sizeof(helo), "localhost");
	helo[sizeof(helo) - 1] = '\0';
	if (o->total_ms != 0)
		c->end = now_ms() + o->total_ms;
	for (k = 0; k < h->naddrs; k++) {
		c->fd = -1;
		c->rtype = DANESTS_RT_NONE;
		c->why[0] = '\0';
		snprintf(out->addr, sizeof(out->addr), "%s", h->addrs[k]);
		rc = session_open(c, tls, h, h->addrs[k], o, helo, false, &s);
		snprintf(out->banner, sizeof(out->banner), "%s", s.banner);
		out->ext = s.ext_plain | s.ext;
		out->size = s.size;
		if (c->ssl != NULL) {
			out->tls = rc == STEP_OK || s.tls;
			snprintf(out->tls_version, sizeof(out->tls_version),
			    "%s", SSL_get_version(c->ssl));
			snprintf(out->cipher, sizeof(out->cipher), "%s",
			    SSL_get_cipher_name(c->ssl) ?
			    SSL_get_cipher_name(c->ssl) : "");
			chain = SSL_get_peer_cert_chain(c->ssl);
			for (i = 0; chain != NULL && i < sk_X509_num(chain) &&
			    i < DANESTS_PROBE_CHAIN_MAX; i++) {
				X509 *x = sk_X509_value(chain, i);

				chain_name(X509_get_subject_name(x),
				    out->chain_subject[i],
				    sizeof(out->chain_subject[i]));
				chain_name(X509_get_issuer_name(x),
				    out->chain_issuer[i],
				    sizeof(out->chain_issuer[i]));
				out->nchain = (size_t)i + 1;
			}
			danests_tls_result(c->ssl, h, &out->verify);
		}
		if (rc == STEP_OK) {
			(void)conn_cmd(c, "QUIT\r\n", r, 5000);
			conn_close(c);
			break;
		}
		conn_close(c);
		/* an answering host that failed TLS is the answer; only
		 * unreachable addresses move on */
		if (*out->banner != '\0')
			break;
	}
	if (rc == STEP_OK) {
		out->status = DANESTS_OK;
		/* RFC 8461 5: testing hosts report what enforce would
		 * have failed on */
		if (h->policy == DANESTS_POLICY_STS_TESTING && !out->tls)
			out->result_type = RT_STARTTLS;
		else if (h->policy == DANESTS_POLICY_STS_TESTING &&
		    !out->verify.verified)
			out->result_type = out->verify.reason !=
			    DANESTS_RT_NONE ? out->verify.reason :
			    RT_VALIDATION;
		if (out->result_type != DANESTS_RT_NONE)
			snprintf(out->error, sizeof(out->error), "sts "
			    "testing: would fail under enforce (%s)",
			    RT_NAME(out->result_type));
	} else {
		out->result_type = c->rtype;
		snprintf(out->error, sizeof(out->error), "%s", c->why);
	}
	free(r);
	free(c);
	return out->status;
}
