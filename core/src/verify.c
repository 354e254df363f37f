/*
 * verify.c - authenticate an MX host's certificate chain as its decision
 * asks: DANE (RFC 7672 3) through OpenSSL's DANE API, PKIX with the MX
 * name for MTA-STS (RFC 8461 4.2), and, for encrypt/may hosts, what PKIX
 * would have said, for reporting only.
 *
 * TLSA matching, chain building and name checks are OpenSSL's: this file
 * only sets the SSL up per policy and maps the outcome onto RFC 8460 4.3
 * result types.  The offline check (danests_verify_chain) runs the very
 * same set-up on a throwaway SSL and verifies the chain with an
 * X509_STORE_CTX bound to that SSL's DANE state and verify parameters,
 * as OpenSSL does during a handshake.
 */
#include "danests-internal.h"

#include <stdio.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

/* verify_result_init - a result that says nothing was verified */
static void
verify_result_init(struct danests_verify_result *res)
{
	memset(res, 0, sizeof(*res));
	res->verified = false;
	res->reason = DANESTS_RT_VALIDATION_FAILURE;
	res->depth = -1;
	res->usage = res->selector = res->mtype = -1;
}

/* ssl_error_text - the oldest queued OpenSSL error, or a fallback */
static const char *
ssl_error_text(char *buf, size_t len, const char *fallback)
{
	unsigned long e = ERR_peek_error();

	if (e == 0)
		return fallback;
	ERR_error_string_n(e, buf, len);
	return buf;
}

/* danests_tls_ctx_new - SMTP client context: DANE on, trust store loaded */
SSL_CTX *
danests_tls_ctx_new(const char *ca_file, char *why, size_t whylen)
{
	SSL_CTX *ctx;
	char ebuf[160];

	ERR_clear_error();
	if ((ctx = SSL_CTX_new(TLS_client_method())) == NULL) {
		why_set(why, whylen, "SSL_CTX_new: %s",
		    ssl_error_text(ebuf, sizeof(ebuf), "failed"));
		return NULL;
	}
	/* Registers SHA2-256(1) and SHA2-512(2) matching types (RFC 6698
	 * 2.1.3); records are then added per connection. */
	if (SSL_CTX_dane_enable(ctx) <= 0) {
		why_set(why, whylen, "SSL_CTX_dane_enable: %s",
		    ssl_error_text(ebuf, sizeof(ebuf), "failed"));
		SSL_CTX_free(ctx);
		return NULL;
	}
	if (ca_file != NULL) {
		if (SSL_CTX_load_verify_locations(ctx, ca_file, NULL) != 1) {
			why_set(why, whylen, "cannot load CA file %s: %s",
			    ca_file, ssl_error_text(ebuf, sizeof(ebuf),
			    "failed"));
			SSL_CTX_free(ctx);
			return NULL;
		}
	} else if (SSL_CTX_set_default_verify_paths(ctx) != 1) {
		why_set(why, whylen, "cannot load the system CA store: %s",
		    ssl_error_text(ebuf, sizeof(ebuf), "failed"));
		SSL_CTX_free(ctx);
		return NULL;
	}
	/* Each connection sets its own mode in danests_tls_prepare. */
	SSL_CTX_set_verify(ctx, SSL_VERIFY_NONE, NULL);
	SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION);
	ERR_clear_error();
	return ctx;
}

/* danests_tls_ctx_free - release a context from danests_tls_ctx_new */
void
danests_tls_ctx_free(SSL_CTX *ctx)
{
	SSL_CTX_free(ctx);
}

/* verify_set_sni - send SNI name (RFC 6066 3) */
static danests_status
verify_set_sni(SSL *ssl, const char *name, char *why, size_t whylen)
{
	if (SSL_set_tlsext_host_name(ssl, name) != 1) {
		why_set(why, whylen, "cannot set SNI name %s", name);
		return DANESTS_PERM;
	}
	return DANESTS_OK;
}

/* verify_prepare_dane - TLSA records and reference names (RFC 7672 3) */
static danests_status
verify_prepare_dane(SSL *ssl, const struct danests_host *host, char *why,
    size_t whylen)
{
	const char *base;
	size_t i, added = 0;
	danests_status st;
	char ebuf[160];
	int rc;

	if (host->ntlsa == 0 || host->tlsa == NULL) {
		why_set(why, whylen, "dane host %s without usable TLSA records",
		    host->name);
		return DANESTS_PERM;
	}
	/* RFC 7672 2.2.3: the TLSA base domain is the CNAME-expanded name
	 * when its TLSA records were found there, else the MX name. */
	base = host->tlsa_base != NULL && *host->tlsa_base != '\0' ?
	    host->tlsa_base : host->name;

	/* RFC 7672 8.1: SNI carries the TLSA base domain. */
	if ((st = verify_set_sni(ssl, base, why, whylen)) != DANESTS_OK)
		return st;
	/* Primary reference identifier: the TLSA base domain (RFC 7672
	 * 3.2.2); also sets the SSL's DANE state. */
	if (SSL_dane_enable(ssl, base) <= 0) {
		why_set(why, whylen, "SSL_dane_enable(%s): %s", base,
		    ssl_error_text(ebuf, sizeof(ebuf), "failed"));
		return DANESTS_TEMP;
	}
	/* RFC 7672 3.2.2: the MX host name (before CNAME expansion) is
	 * accepted too. */
	if (!name_eq(base, host->name) && SSL_add1_host(ssl, host->name) != 1) {
		why_set(why, whylen, "cannot add reference name %s",
		    host->name);
		return DANESTS_TEMP;
	}
	/* RFC 7672 3.2.3: a wildcard stands for one whole left-most
	 * label only. */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* RFC 7672 3.1.1: with DANE-EE(3) the names in the certificate are
	 * not checked (and OpenSSL skips the validity period as well). */
	SSL_dane_set_flags(ssl, DANE_FLAG_NO_DANE_EE_NAMECHECKS);

	for (i = 0; i < host->ntlsa; i++) {
		const struct danests_tlsa *t = &host->tlsa[i];
		const char *unusable;

		/* Only DANE-TA(2) and DANE-EE(3) records with known
		 * parameters reach OpenSSL, whatever the host's list holds
		 * (e.g. a decision read back from the cache): a PKIX-TA(0)
		 * or PKIX-EE(1) record would make the CA store a trust
		 * anchor (RFC 7672 3.1.3). */
		if (tlsa_usable(t->usage, t->selector, t->mtype, t->data,
		    t->len, &unusable) != TLSA_USABLE)
			continue;
		/* A record OpenSSL rejects (0) or cannot parse (< 0) is
		 * left out: fewer records can only make the match
		 * stricter (RFC 7672 2.2: unusable records are ignored). */
		rc = SSL_dane_tlsa_add(ssl, t->usage, t->selector, t->mtype,
		    t->data, t->len);
		if (rc > 0)
			added++;
	}
	ERR_clear_error();
	if (added == 0) {
		why_set(why, whylen, "no usable TLSA record for %s "
		    "(RFC 7672 3.1)", host->name);
		return DANESTS_PERM;
	}
	/* DANE is mandatory for this host: the handshake fails when no
	 * record matches (RFC 7672 2.2). */
	SSL_set_verify(ssl, SSL_VERIFY_PEER, NULL);
	return DANESTS_OK;
}

/* verify_prepare_pkix - MX name check against the CA store (RFC 8461 4.2);
 * enforce: a failure ends the handshake; otherwise it is only recorded */
static danests_status
verify_prepare_pkix(SSL *ssl, const struct danests_host *host, bool enforce,
    bool sts, char *why, size_t whylen)
{
	danests_status st;

	/* RFC 8461 5 / RFC 7817 3.4: SNI and the reference identifier are
	 * the MX host name. */
	if ((st = verify_set_sni(ssl, host->name, why, whylen)) != DANESTS_OK)
		return st;
	if (SSL_set1_host(ssl, host->name) != 1) {
		why_set(why, whylen, "cannot set reference name %s",
		    host->name);
		return DANESTS_TEMP;
	}
	/* RFC 8461 4.1 / RFC 6125 6.4.3: the wildcard is a whole left-most
	 * label. */
	SSL_set_hostflags(ssl, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
	/* MTA-STS hosts are authenticated with TLS 1.2 or later, as for
	 * the policy fetch itself (RFC 8461 3.3). */
	if (sts && SSL_set_min_proto_version(ssl, TLS1_2_VERSION) != 1) {
		why_set(why, whylen, "cannot require TLS 1.2");
		return DANESTS_TEMP;
	}
	SSL_set_verify(ssl, enforce ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, NULL);
	return DANESTS_OK;
}

/* danests_tls_prepare - SNI, names, TLSA and verify mode per host policy */
danests_status
danests_tls_prepare(SSL *ssl, const struct danests_host *host, char *why,
    size_t whylen)
{
	if (ssl == NULL || host == NULL || host->name == NULL ||
	    *host->name == '\0') {
		why_set(why, whylen, "bad arguments");
		return DANESTS_PERM;
	}
	switch (host->policy) {
	case DANESTS_POLICY_DANE:
		/* SSL_dane_enable fails unless the context is DANE-enabled
		 * (danests_tls_ctx_new does that). */
		return verify_prepare_dane(ssl, host, why, whylen);
	case DANESTS_POLICY_STS_ENFORCE:
		return verify_prepare_pkix(ssl, host, true, true, why, whylen);
	case DANESTS_POLICY_STS_TESTING:
		/* RFC 8461 5: deliver anyway, report the failure. */
		return verify_prepare_pkix(ssl, host, false, true, why,
		    whylen);
	case DANESTS_POLICY_ENCRYPT:
	case DANESTS_POLICY_MAY:
		/* Unauthenticated TLS (RFC 7672 2.2, RFC 7435); the PKIX
		 * outcome is kept for reporting. */
		return verify_prepare_pkix(ssl, host, false, false, why,
		    whylen);
	case DANESTS_POLICY_SKIP:
		why_set(why, whylen, "host %s must not be contacted (%s)",
		    host->name, danests_reason_name(host->reason) ?
		    danests_reason_name(host->reason) : "skip");
		return DANESTS_PERM;
	}
	why_set(why, whylen, "unknown policy %d", (int)host->policy);
	return DANESTS_PERM;
}

/* verify_result_type - RFC 8460 4.3 result type of an X509 verify error
 * for a host of policy (DANESTS_RT_NONE for X509_V_OK); the one mapping
 * for an offline check, a completed handshake and one that failed */
danests_result_type
verify_result_type(danests_policy policy, long err)
{
	switch (err) {
	case X509_V_OK:
		return DANESTS_RT_NONE;
	case X509_V_ERR_HOSTNAME_MISMATCH:
		return DANESTS_RT_CERT_HOST_MISMATCH;
	case X509_V_ERR_CERT_HAS_EXPIRED:
		return DANESTS_RT_CERT_EXPIRED;
	case X509_V_ERR_DANE_NO_MATCH:
		return DANESTS_RT_TLSA_INVALID;
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
	case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
	case X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE:
	case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
	case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
	case X509_V_ERR_CERT_UNTRUSTED:
		/* With DANE the trust store is not consulted: a chain
		 * without trust anchor means no DANE-TA record matched. */
		return policy == DANESTS_POLICY_DANE ? DANESTS_RT_TLSA_INVALID :
		    DANESTS_RT_CERT_NOT_TRUSTED;
	default:
		return DANESTS_RT_VALIDATION_FAILURE;
	}
}

/* verify_fill - res from a finished verification of ssl's peer chain */
static void
verify_fill(SSL *ssl, const struct danests_host *host, long err,
    int errdepth, struct danests_verify_result *res)
{
	const char *peer;
	uint8_t usage, selector, mtype;
	const unsigned char *data;
	size_t dlen;
	int depth;

	res->reason = verify_result_type(host->policy, err);
	res->verified = res->reason == DANESTS_RT_NONE;
	if ((peer = SSL_get0_peername(ssl)) != NULL)
		snprintf(res->peername, sizeof(res->peername), "%s", peer);

	if (!res->verified) {
		if (errdepth >= 0)
			snprintf(res->detail, sizeof(res->detail),
			    "%s at depth %d (X509 error %ld)",
			    X509_verify_cert_error_string(err), errdepth,
			    err);
		else
			snprintf(res->detail, sizeof(res->detail),
			    "%s (X509 error %ld)",
			    X509_verify_cert_error_string(err), err);
		return;
	}
	if (host->policy != DANESTS_POLICY_DANE) {
		snprintf(res->detail, sizeof(res->detail),
		    "PKIX chain to the CA store, name %.200s", res->peername);
		return;
	}
	/* SSL_get0_dane_tlsa reads the verify result of the SSL. */
	depth = SSL_get0_dane_tlsa(ssl, &usage, &selector, &mtype, &data,
	    &dlen);
	if (depth < 0) {
		/* Verified with DANE enabled yet no matching record:
		 * never trusted (RFC 7672 2.2: no PKIX fallback). */
		res->verified = false;
		res->reason = DANESTS_RT_TLSA_INVALID;
		snprintf(res->detail, sizeof(res->detail),
		    "chain verified but no TLSA record matched");
		return;
	}
	res->depth = depth;
	res->usage = usage;
	res->selector = selector;
	res->mtype = mtype;
	snprintf(res->detail, sizeof(res->detail),
	    "TLSA %u %u %u matched at depth %d%s%.180s", usage, selector, mtype,
	    depth, *res->peername ? ", name " : "", res->peername);
}

/* danests_tls_result - what the handshake's verification gave */
danests_status
danests_tls_result(SSL *ssl, const struct danests_host *host,
    struct danests_verify_result *res)
{
	long err;

	if (res == NULL)
		return DANESTS_PERM;
	verify_result_init(res);
	if (ssl == NULL || host == NULL) {
		snprintf(res->detail, sizeof(res->detail), "bad arguments");
		return DANESTS_PERM;
	}
	err = SSL_get_verify_result(ssl);
	/* A chain that failed verification aborts an enforcing handshake
	 * before OpenSSL records the peer certificate; the result stays.
	 * X509_V_OK without a certificate means nothing was verified. */
	if (err == X509_V_OK && SSL_get0_peer_certificate(ssl) == NULL) {
		snprintf(res->detail, sizeof(res->detail),
		    "no peer certificate");
		return DANESTS_OK;
	}
	verify_fill(ssl, host, err, -1, res);
	return DANESTS_OK;
}

/* danests_verify_chain_ctx - offline check of a chain on ctx's store */
danests_status
danests_verify_chain_ctx(SSL_CTX *ctx, const struct danests_host *host,
    X509 *leaf, STACK_OF(X509) *untrusted, struct danests_verify_result *res)
{
	X509_STORE_CTX *sctx = NULL;
	STACK_OF(X509) *chain = NULL;
	SSL *ssl = NULL;
	danests_status st;
	char why[DANESTS_WHY_MAX], ebuf[160];
	int i, rc;
	long err;

	if (res == NULL)
		return DANESTS_PERM;
	verify_result_init(res);
	if (ctx == NULL || host == NULL || leaf == NULL) {
		snprintf(res->detail, sizeof(res->detail), "bad arguments");
		return DANESTS_PERM;
	}
	ERR_clear_error();
	if ((ssl = SSL_new(ctx)) == NULL) {
		snprintf(res->detail, sizeof(res->detail), "SSL_new: %s",
		    ssl_error_text(ebuf, sizeof(ebuf), "failed"));
		st = DANESTS_TEMP;
		goto out;
	}
	*why = '\0';
	if ((st = danests_tls_prepare(ssl, host, why, sizeof(why))) !=
	    DANESTS_OK) {
		snprintf(res->detail, sizeof(res->detail), "%s", why);
		goto out;
	}
	st = DANESTS_TEMP;
	/* The chain as the peer sends it: leaf first. */
	if ((chain = sk_X509_new_null()) == NULL || !sk_X509_push(chain, leaf))
		goto nomem;
	for (i = 0; untrusted != NULL && i < sk_X509_num(untrusted); i++)
		if (!sk_X509_push(chain, sk_X509_value(untrusted, i)))
			goto nomem;
	if ((sctx = X509_STORE_CTX_new()) == NULL ||
	    !X509_STORE_CTX_init(sctx, SSL_CTX_get_cert_store(ctx), leaf,
	    chain))
		goto nomem;
	/* What OpenSSL does for a client handshake: server purpose, the
	 * SSL's parameters (names, flags), its DANE state. */
	X509_STORE_CTX_set_default(sctx, "ssl_server");
	if (!X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(sctx),
	    SSL_get0_param(ssl)))
		goto nomem;
	if (!X509_STORE_CTX_set_ex_data(sctx,
	    SSL_get_ex_data_X509_STORE_CTX_idx(), ssl))
		goto nomem;
	if (host->policy == DANESTS_POLICY_DANE)
		X509_STORE_CTX_set0_dane(sctx, SSL_get0_dane(ssl));

	rc = X509_verify_cert(sctx);
	err = X509_STORE_CTX_get_error(sctx);
	if (rc <= 0 && err == X509_V_OK)
		err = X509_V_ERR_UNSPECIFIED;
	/* The SSL's view, as after a handshake: result and peer name. */
	SSL_set_verify_result(ssl, err);
	X509_VERIFY_PARAM_move_peername(SSL_get0_param(ssl),
	    X509_STORE_CTX_get0_param(sctx));
	verify_fill(ssl, host, err, rc > 0 ? -1 :
	    X509_STORE_CTX_get_error_depth(sctx), res);
	st = DANESTS_OK;
	goto out;

nomem:
	snprintf(res->detail, sizeof(res->detail), "verification set-up: %s",
	    ssl_error_text(ebuf, sizeof(ebuf), "out of memory"));
out:
	X509_STORE_CTX_free(sctx);
	sk_X509_free(chain);	/* the certificates stay the caller's */
	SSL_free(ssl);
	ERR_clear_error();
	return st;
}

/* danests_verify_chain - offline check with a throwaway context */
danests_status
danests_verify_chain(const struct danests_host *host, X509 *leaf,
    STACK_OF(X509) *untrusted, const char *ca_file,
    struct danests_verify_result *res)
{
	SSL_CTX *ctx;
	danests_status st;
	char why[DANESTS_WHY_MAX];

	if (res == NULL)
		return DANESTS_PERM;
	verify_result_init(res);
	if (host == NULL || leaf == NULL) {
		snprintf(res->detail, sizeof(res->detail), "bad arguments");
		return DANESTS_PERM;
	}
	*why = '\0';
	/* The trust store matters for PKIX only (DANE-TA anchors come from
	 * TLSA records, RFC 7672 2.2): a missing CA file for a DANE host
	 * still fails here, as it would for a real connection. */
	if ((ctx = danests_tls_ctx_new(ca_file, why, sizeof(why))) == NULL) {
		snprintf(res->detail, sizeof(res->detail), "%s", why);
		return DANESTS_TEMP;
	}
	st = danests_verify_chain_ctx(ctx, host, leaf, untrusted, res);
	SSL_CTX_free(ctx);
	return st;
}
