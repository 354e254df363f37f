/*
 * danests-smtp.h - delivery to a domain's MX hosts as its decision says
 * (libdanests, smtp.c); used by danests-relay and `danests probe`
 */
#ifndef DANESTS_SMTP_H
#define DANESTS_SMTP_H

#include "danests-verify.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * A bounded, blocking SMTP client (RFC 5321) that reaches a domain's MX
 * hosts exactly as a decision says: hosts in delivery order, skip hosts
 * never contacted, STARTTLS with danests_tls_prepare's verification,
 * never cleartext for dane, encrypt and sts-enforce hosts.  Every network
 * step has its own timeout (RFC 5321 4.5.3.2) and the whole call a bound.
 * Calls block the calling thread; run one per thread to go parallel (the
 * TLS context may be shared between threads).
 */
#define DANESTS_SMTP_TEXT_MAX	512

struct danests_smtp_opts {
	unsigned port;		/* TCP port of MX hosts: 25 */
	const char *helo;	/* our EHLO name (NULL: the host name) */
	unsigned connect_ms;	/* TCP connect per address: 30 s */
	unsigned greeting_ms;	/* 220 greeting, RFC 5321 4.5.3.2.1: 5 min */
	unsigned tls_ms;	/* EHLO, STARTTLS, handshake: 5 min */
	unsigned mail_ms;	/* MAIL, 4.5.3.2.2: 5 min */
	unsigned rcpt_ms;	/* RCPT, 4.5.3.2.3: 5 min */
	unsigned data_ms;	/* DATA initiation, 4.5.3.2.4: 2 min */
	unsigned block_ms;	/* each data block, 4.5.3.2.5: 3 min */
	unsigned dot_ms;	/* DATA termination, 4.5.3.2.6: 10 min */
	unsigned total_ms;	/* bound on the whole call, 0: none */
};

/* danests_smtp_opts_default - the RFC 5321 4.5.3.2 values, port 25 */
void danests_smtp_opts_default(struct danests_smtp_opts *);

/* The message: SMTP wire form (CRLF line ends, dot-stuffed, without the
 * terminating ".").  In memory (data, len) or, when fd >= 0, the first
 * len bytes of fd, read with pread (so threads may share it). */
struct danests_smtp_msg {
	const char *data;
	int fd;
	uint64_t len;
};

/* One recipient: addr in, the outcome out.  code is the SMTP reply code
 * to pass on (2xx delivered, 4xx retry later, 5xx bounce); text is
 * "X.Y.Z explanation" (RFC 3463) fit for an SMTP/LMTP reply line. */
struct danests_smtp_rcpt {
	const char *addr;	/* mailbox, without <> */
	int code;
	char text[DANESTS_SMTP_TEXT_MAX];
};

/*
 * One TLS negotiation attempt with an MX host (RFC 8460 4.3), for TLS
 * reporting: told once per connection that got as far as the EHLO reply,
 * after STARTTLS was looked for, tried and the peer checked as the host's
 * policy asks, before any mail is sent.  A connection that never reached
 * the EHLO reply (refused, timed out, no greeting) and a retry in the
 * clear after a failed attempt are not attempts.  Success: TLS was set up
 * and, where the policy asks for it (dane, sts-enforce, sts-testing), the
 * peer authenticated; a may or encrypt host only has to set up TLS.  A
 * skip host whose reason has an RFC 8460 result type (a bogus TLSA RRset,
 * an MX outside the MTA-STS policy) is told as a failed attempt without a
 * connection (addr and local_addr ""), when delivery gets to it in turn
 * or the decision defers.
 */
struct danests_smtp_attempt {
	const struct danests_host *host;
	const char *addr;		/* receiving-ip */
	const char *local_addr;		/* sending-mta-ip, "" when unknown */
	bool tls;			/* a TLS session was set up */
	danests_result_type result_type;	/* DANESTS_RT_NONE: success */
	const char *detail;		/* on failure: what failed */
};

/* Called from the delivering thread; must not block. */
typedef void danests_smtp_attempt_cb(void *arg,
    const struct danests_smtp_attempt *);

/* One transaction for one domain.  The out fields describe the last host
 * that was talked to (for logs). */
struct danests_smtp_tx {
	const char *sender;	/* reverse path without <>, "" for null */
	bool body_8bit;		/* BODY=8BITMIME (RFC 6152) */
	bool smtputf8;		/* SMTPUTF8 (RFC 6531) */
	const struct danests_smtp_msg *msg;
	size_t nrcpt;
	struct danests_smtp_rcpt *rcpt;
	/* out */
	char host[256];		/* MX host, "" when none was reached */
	char addr[64];
	char tls[128];		/* "TLSv1.3 TLS_AES_256_GCM_SHA384" or
				 * "none" */
	bool verified;		/* peer authenticated per host policy */
	char verify_detail[256];
	danests_result_type result_type;	/* of the last failure
					 * (TLS-RPT), or DANESTS_RT_NONE */
	/* in, optional: each TLS negotiation attempt */
	danests_smtp_attempt_cb *attempt;
	void *attempt_arg;
};

/* Progress lines for the caller's log; warn for failures. */
typedef void danests_smtp_log_cb(void *arg, bool warn, const char *line);

/* danests_smtp_deliver - deliver tx to the domain of decision d.  Always
 * gives every recipient a code and text: 5xx for a permfail decision,
 * 4xx for tempfail, otherwise the remote host's answers, or 4xx when no
 * host could take the message.  Returns DANESTS_OK when some recipient
 * got 2xx, DANESTS_PERM when all got 5xx, DANESTS_TEMP otherwise.  tls
 * comes from danests_tls_ctx_new; nothing passed in is kept. */
danests_status danests_smtp_deliver(struct ssl_ctx_st *tls,
    const struct danests_decision *d, const struct danests_smtp_opts *,
    struct danests_smtp_tx *tx, danests_smtp_log_cb *log, void *logarg);

/* What "danests probe" learns about one MX host. */
#define DANESTS_PROBE_CHAIN_MAX 8
struct danests_smtp_probe {
	danests_status status;	/* OK: reached as the policy asks */
	danests_result_type result_type;	/* on failure, or
					 * DANESTS_RT_NONE */
	char error[256];	/* what failed, or "" */
	char addr[64];		/* address that answered, or the last tried */
	char banner[256];	/* first line of the 220 greeting */
	unsigned ext;		/* EHLO extensions (STARTTLS 0x01,
				 * PIPELINING 0x02, SIZE 0x04, 8BITMIME 0x08,
				 * SMTPUTF8 0x10, ENHANCEDSTATUSCODES 0x20) */
	unsigned long long size;	/* SIZE limit, 0 none */
	bool tls;		/* handshake completed */
	char tls_version[32];
	char cipher[64];
	size_t nchain;		/* peer chain as sent, subject and issuer */
	char chain_subject[DANESTS_PROBE_CHAIN_MAX][256];
	char chain_issuer[DANESTS_PROBE_CHAIN_MAX][256];
	struct danests_verify_result verify;
};

/* danests_smtp_probe - connect to host (addresses in order until one
 * answers), EHLO, STARTTLS and the handshake as host's policy asks, then
 * QUIT.  No mail is sent.  Fills out; returns out->status. */
danests_status danests_smtp_probe(struct ssl_ctx_st *tls,
    const struct danests_host *host, const struct danests_smtp_opts *,
    struct danests_smtp_probe *out);

#ifdef __cplusplus
}
#endif
#endif /* DANESTS_SMTP_H */
