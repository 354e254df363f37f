/*
 * danests-verify.h - TLS verification of MX hosts by their decision
 * (libdanests, verify.c)
 *
 * A TLS client context for SMTP with DANE enabled and the outcome of one
 * host's authentication.  The SMTP client (danests-smtp.h) prepares and
 * checks every connection with it; danests-relay shares one context
 * between its delivery threads.
 */
#ifndef DANESTS_VERIFY_H
#define DANESTS_VERIFY_H

#include "danests.h"

#ifdef __cplusplus
extern "C" {
#endif

/*
 * OpenSSL's DANE API does the TLSA matching.  The
 * OpenSSL types are named by their struct tags so that this header does
 * not need <openssl/ssl.h>: struct ssl_ctx_st is SSL_CTX, struct ssl_st is
 * SSL.
 */
struct ssl_ctx_st;
struct ssl_st;

/* The outcome of one check. */
struct danests_verify_result {
	bool verified;		/* authenticated as the host's policy asks;
				 * for encrypt/may: what PKIX to the CA
				 * store with the MX name would give */
	danests_result_type reason;	/* DANESTS_RT_NONE when verified,
				 * else CERT_HOST_MISMATCH, CERT_EXPIRED,
				 * CERT_NOT_TRUSTED, TLSA_INVALID (no TLSA
				 * record matched) or VALIDATION_FAILURE */
	int depth;		/* chain depth of the TLSA match, or -1 */
	int usage, selector, mtype;	/* the matching TLSA record, or -1 */
	char peername[256];	/* reference name the certificate matched
				 * ("" for DANE-EE, which ignores names) */
	char detail[256];	/* human-readable, for logs */
};

/* danests_tls_ctx_new - a TLS client context for SMTP with DANE enabled
 * and a trust store for PKIX (ca_file, or the system store when NULL).
 * The caller frees it with danests_tls_ctx_free.  NULL with why set on
 * failure. */
struct ssl_ctx_st *danests_tls_ctx_new(const char *ca_file, char *why,
    size_t whylen);
void danests_tls_ctx_free(struct ssl_ctx_st *);

#ifdef __cplusplus
}
#endif
#endif /* DANESTS_VERIFY_H */
