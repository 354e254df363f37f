/*
 * test_verify.c - verification of MX host certificates against a host
 * decision: DANE-EE/DANE-TA through OpenSSL's DANE API (RFC 7672 3) and
 * PKIX with the MX name for MTA-STS (RFC 8461 4.2).
 *
 * The test makes its own CA, leaves and keys with OpenSSL's C API at start
 * (in memory, plus a CA file in a mkdtemp() directory), computes the TLSA
 * data of each row from those certificates, and checks every row both
 * offline (danests_verify_chain) and, for a second table, over a real TLS
 * handshake between two memory BIOs (danests_tls_prepare/_result).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <cmocka.h>

#include "table.h"

#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include "danests-internal.h"

#define MX	"mx.example.test"
#define BASE	"mx.hosting.test"	/* TLSA base after a CNAME */
#define DAY	(24L * 60 * 60)

/* Certificates made at start; C_NONE ends lists. */
enum cert_id {
	C_NONE = 0,
	C_CA,		/* trusted test CA (in the CA file) */
	C_CA2,		/* another CA, not in the CA file */
	C_MX,		/* MX, issued by C_CA */
	C_BASE,		/* BASE, issued by C_CA */
	C_WRONG,	/* other.example.org, issued by C_CA */
	C_EXPIRED,	/* MX, issued by C_CA, expired yesterday */
	C_UNTRUSTED,	/* MX, issued by C_CA2 */
	C_WILD,		/* *.example.test, issued by C_CA */
	C_PARTIAL,	/* mx*.example.test, issued by C_CA */
	C_SELF,		/* MX, self-signed, leaf key */
	C_OTHER,	/* MX, self-signed, an unrelated key */
	C_COUNT,
};

static struct {
	X509 *cert[C_COUNT];
	EVP_PKEY *key[C_COUNT];	/* the certificate's own key */
	char dir[64];
	char ca_file[128];
} fx;

/* add_ext - add one X.509v3 extension in openssl.cnf syntax */
static int
add_ext(X509 *x, X509 *issuer, int nid, const char *value)
{
	X509V3_CTX v3;
	X509_EXTENSION *ext;
	int ok;

	X509V3_set_ctx_nodb(&v3);
	X509V3_set_ctx(&v3, issuer, x, NULL, NULL, 0);
	if ((ext = X509V3_EXT_conf_nid(NULL, &v3, nid, value)) == NULL)
		return 0;
	ok = X509_add_ext(x, ext, -1);
	X509_EXTENSION_free(ext);
	return ok;
}

/* mkcert - a certificate for key, signed by issuer (NULL: self-signed) */
static X509 *
mkcert(EVP_PKEY *key, X509 *issuer, EVP_PKEY *ikey, const char *cn,
    const char *san, int ca, long from, long to)
{
	static long serial = 1;
	X509 *x;
	X509_NAME *n;
	int ok;

	if ((x = X509_new()) == NULL)
		return NULL;
	n = X509_get_subject_name(x);
	ok = X509_set_version(x, 2) &&
	    ASN1_INTEGER_set(X509_get_serialNumber(x), serial++) &&
	    X509_gmtime_adj(X509_getm_notBefore(x), from) != NULL &&
	    X509_gmtime_adj(X509_getm_notAfter(x), to) != NULL &&
	    X509_set_pubkey(x, key) &&
	    X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC,
	    (const unsigned char *)cn, -1, -1, 0) &&
	    X509_set_issuer_name(x, issuer ? X509_get_subject_name(issuer) :
	    n);
	if (issuer == NULL) {
		issuer = x;
		ikey = key;
	}
	ok = ok && add_ext(x, issuer, NID_basic_constraints,
	    ca ? "critical,CA:TRUE" : "CA:FALSE") &&
	    add_ext(x, issuer, NID_key_usage, ca ?
	    "critical,keyCertSign,cRLSign" : "critical,digitalSignature") &&
	    add_ext(x, issuer, NID_subject_key_identifier, "hash") &&
	    (ca || add_ext(x, issuer, NID_ext_key_usage, "serverAuth")) &&
	    (san == NULL || add_ext(x, issuer, NID_subject_alt_name, san)) &&
	    X509_sign(x, ikey, EVP_sha256()) > 0;
	if (!ok) {
		X509_free(x);
		return NULL;
	}
	return x;
}

/* fixture_setup - keys, certificates and the CA file */
static int
fixture_setup(void)
{
	EVP_PKEY *kca, *kca2, *kleaf, *kother;
	FILE *fp;
	int i, ok;

	kca = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	kca2 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	kleaf = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	kother = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	if (!kca || !kca2 || !kleaf || !kother)
		return -1;

	fx.cert[C_CA] = mkcert(kca, NULL, NULL, "danests test CA", NULL, 1,
	    -DAY, 3650 * DAY);
	fx.cert[C_CA2] = mkcert(kca2, NULL, NULL, "danests other CA", NULL, 1,
	    -DAY, 3650 * DAY);
	fx.cert[C_MX] = mkcert(kleaf, fx.cert[C_CA], kca, MX, "DNS:" MX, 0,
	    -DAY, 30 * DAY);
	fx.cert[C_BASE] = mkcert(kleaf, fx.cert[C_CA], kca, BASE,
	    "DNS:" BASE, 0, -DAY, 30 * DAY);
	fx.cert[C_WRONG] = mkcert(kleaf, fx.cert[C_CA], kca,
	    "other.example.org", "DNS:other.example.org", 0, -DAY, 30 * DAY);
	fx.cert[C_EXPIRED] = mkcert(kleaf, fx.cert[C_CA], kca, MX, "DNS:" MX,
	    0, -30 * DAY, -DAY);
	fx.cert[C_UNTRUSTED] = mkcert(kleaf, fx.cert[C_CA2], kca2, MX,
	    "DNS:" MX, 0, -DAY, 30 * DAY);
	fx.cert[C_WILD] = mkcert(kleaf, fx.cert[C_CA], kca, "*.example.test",
	    "DNS:*.example.test", 0, -DAY, 30 * DAY);
	fx.cert[C_PARTIAL] = mkcert(kleaf, fx.cert[C_CA], kca,
	    "mx*.example.test", "DNS:mx*.example.test", 0, -DAY, 30 * DAY);
	fx.cert[C_SELF] = mkcert(kleaf, NULL, NULL, MX, "DNS:" MX, 0, -DAY,
	    30 * DAY);
	fx.cert[C_OTHER] = mkcert(kother, NULL, NULL, MX, "DNS:" MX, 0, -DAY,
	    30 * DAY);

	for (i = C_NONE + 1; i < C_COUNT; i++) {
		if (fx.cert[i] == NULL)
			return -1;
		fx.key[i] = i == C_CA ? kca : i == C_CA2 ? kca2 :
		    i == C_OTHER ? kother : kleaf;
		EVP_PKEY_up_ref(fx.key[i]);
	}
	EVP_PKEY_free(kca);
	EVP_PKEY_free(kca2);
	EVP_PKEY_free(kleaf);
	EVP_PKEY_free(kother);

	snprintf(fx.dir, sizeof(fx.dir), "/tmp/test_verify.XXXXXX");
	if (mkdtemp(fx.dir) == NULL)
		return -1;
	snprintf(fx.ca_file, sizeof(fx.ca_file), "%s/ca.pem", fx.dir);
	if ((fp = fopen(fx.ca_file, "w")) == NULL)
		return -1;
	ok = PEM_write_X509(fp, fx.cert[C_CA]);
	if (fclose(fp) != 0 || !ok)
		return -1;
	return 0;
}

/* fixture_teardown - free everything, remove the directory */
static void
fixture_teardown(void)
{
	int i;

	for (i = 0; i < C_COUNT; i++) {
		X509_free(fx.cert[i]);
		EVP_PKEY_free(fx.key[i]);
	}
	if (*fx.ca_file)
		unlink(fx.ca_file);
	if (*fx.dir)
		rmdir(fx.dir);
}

/* One TLSA record of a row: parameters and the certificate it is made
 * from (RFC 6698 2.1: selector 0 = full cert, 1 = SPKI; mtype 0 = exact,
 * 1 = SHA2-256, 2 = SHA2-512). */
struct tlsa_spec {
	uint8_t usage, selector, mtype;
	enum cert_id from;	/* C_NONE ends the list */
};

/* tlsa_make - RDATA payload of spec, computed independently of the code
 * under test */
static void
tlsa_make(const struct tlsa_spec *s, struct danests_tlsa *t)
{
	unsigned char *der = NULL, md[EVP_MAX_MD_SIZE];
	unsigned int mdlen = 0;
	X509 *x = fx.cert[s->from];
	int n;

	n = s->selector == 0 ? i2d_X509(x, &der) :
	    i2d_PUBKEY(X509_get0_pubkey(x), &der);
	assert_true(n > 0);
	t->usage = s->usage;
	t->selector = s->selector;
	t->mtype = s->mtype;
	if (s->mtype == 0) {
		t->data = malloc(n);
		assert_non_null(t->data);
		memcpy(t->data, der, n);
		t->len = n;
	} else {
		assert_int_equal(EVP_Digest(der, n, md, &mdlen,
		    s->mtype == 1 ? EVP_sha256() : EVP_sha512(), NULL), 1);
		assert_int_equal(mdlen, s->mtype == 1 ? 32 : 64);
		t->data = malloc(mdlen);
		assert_non_null(t->data);
		memcpy(t->data, md, mdlen);
		t->len = mdlen;
	}
	OPENSSL_free(der);
}

#define MAXT 4
#define MAXC 3

/* host_make - a decision for one host, as decide.c would give it */
static void
host_make(struct danests_host *h, danests_policy policy, const char *name,
    const char *base, const struct tlsa_spec *specs)
{
	size_t n;

	memset(h, 0, sizeof(*h));
	h->name = (char *)(uintptr_t)name;
	h->tlsa_base = (char *)(uintptr_t)base;
	h->policy = policy;
	h->reason = DANESTS_R_OK;
	for (n = 0; n < MAXT && specs[n].from != C_NONE; n++)
		;
	h->ntlsa = n;
	if (n > 0) {
		h->tlsa = calloc(n, sizeof(*h->tlsa));
		assert_non_null(h->tlsa);
		for (n = 0; n < h->ntlsa; n++)
			tlsa_make(&specs[n], &h->tlsa[n]);
	}
}

/* host_clear - free what host_make allocated */
static void
host_clear(struct danests_host *h)
{
	size_t i;

	for (i = 0; i < h->ntlsa; i++)
		free(h->tlsa[i].data);
	free(h->tlsa);
}

/* chain_make - the certificates a peer sends after its leaf */
static STACK_OF(X509) *
chain_make(const enum cert_id *ids)
{
	STACK_OF(X509) *sk = sk_X509_new_null();
	int i;

	assert_non_null(sk);
	for (i = 0; i < MAXC && ids[i] != C_NONE; i++)
		assert_true(sk_X509_push(sk, fx.cert[ids[i]]) > 0);
	return sk;
}

#define D	DANESTS_POLICY_DANE
#define E	DANESTS_POLICY_STS_ENFORCE
#define T	DANESTS_POLICY_STS_TESTING
#define ENC	DANESTS_POLICY_ENCRYPT
#define MAY	DANESTS_POLICY_MAY

#define HOSTMM	"certificate-host-mismatch"
#define EXPIRED	"certificate-expired"
#define UNTRUST	"certificate-not-trusted"
#define NOTLSA	"tlsa-invalid"

struct chain_case {
	const char *name;
	danests_policy policy;
	const char *host;
	const char *base;	/* TLSA base name or NULL */
	enum cert_id leaf;
	enum cert_id chain[MAXC];	/* sent after the leaf */
	struct tlsa_spec tlsa[MAXT];
	int system_store;	/* 1: trust the system store, not ca.pem */
	int verified;
	const char *reason;	/* expected when not verified */
	int depth, usage, selector;	/* expected match (-1: none) */
	const char *peername;
};

static const struct chain_case chain_cases[] = {
	/* DANE-EE(3): key or certificate match at depth 0 (RFC 7672 3.1.1). */
	{ "ee-311-spki-sha256", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_MX } }, 0, 1, NULL, 0, 3, 1, "" },
	{ "ee-301-cert-sha256", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 0, 1, C_MX } }, 0, 1, NULL, 0, 3, 0, "" },
	{ "ee-312-spki-sha512", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 2, C_MX } }, 0, 1, NULL, 0, 3, 1, "" },
	{ "ee-302-cert-sha512", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 0, 2, C_MX } }, 0, 1, NULL, 0, 3, 0, "" },
	{ "ee-310-spki-exact", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 0, C_MX } }, 0, 1, NULL, 0, 3, 1, "" },
	{ "ee-300-cert-exact", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 0, 0, C_MX } }, 0, 1, NULL, 0, 3, 0, "" },
	{ "ee-311-self-signed-alone", D, MX, NULL, C_SELF, { C_NONE },
	    { { 3, 1, 1, C_SELF } }, 0, 1, NULL, 0, 3, 1, "" },
	{ "ee-311-expired-leaf-passes", D, MX, NULL, C_EXPIRED, { C_CA },
	    { { 3, 1, 1, C_EXPIRED } }, 0, 1, NULL, 0, 3, 1, "" },
	{ "ee-301-expired-leaf-passes", D, MX, NULL, C_EXPIRED, { C_CA },
	    { { 3, 0, 1, C_EXPIRED } }, 0, 1, NULL, 0, 3, 0, "" },
	{ "ee-311-names-ignored", D, MX, BASE, C_WRONG, { C_CA },
	    { { 3, 1, 1, C_WRONG } }, 0, 1, NULL, 0, 3, 1, "" },
	{ "ee-311-untrusted-issuer-irrelevant", D, MX, NULL, C_UNTRUSTED,
	    { C_CA2 }, { { 3, 1, 1, C_UNTRUSTED } }, 0, 1, NULL, 0, 3, 1,
	    "" },
	{ "ee-311-unrelated-key", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER } }, 0, 0, NOTLSA, -1, -1, -1, NULL },
	{ "ee-301-same-key-other-cert", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 0, 1, C_SELF } }, 0, 0, NOTLSA, -1, -1, -1, NULL },
	{ "ee-311-of-ca-is-not-ta", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_CA } }, 0, 0, NOTLSA, -1, -1, -1, NULL },
	{ "ee-no-pkix-fallback", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER } }, 1, 0, NOTLSA, -1, -1, -1, NULL },

	/* DANE-TA(2): chain to the TA, names = TLSA base and MX name
	 * (RFC 7672 3.1.2, 3.2.2). */
	{ "ta-211-leaf-mx-name", D, MX, BASE, C_MX, { C_CA },
	    { { 2, 1, 1, C_CA } }, 0, 1, NULL, 1, 2, 1, MX },
	{ "ta-211-leaf-base-name", D, MX, BASE, C_BASE, { C_CA },
	    { { 2, 1, 1, C_CA } }, 0, 1, NULL, 1, 2, 1, BASE },
	{ "ta-211-no-cname", D, MX, NULL, C_MX, { C_CA },
	    { { 2, 1, 1, C_CA } }, 0, 1, NULL, 1, 2, 1, MX },
	{ "ta-211-base-equals-mx", D, MX, MX, C_MX, { C_CA },
	    { { 2, 1, 1, C_CA } }, 0, 1, NULL, 1, 2, 1, MX },
	{ "ta-211-base-name-without-cname", D, MX, NULL, C_BASE, { C_CA },
	    { { 2, 1, 1, C_CA } }, 0, 0, HOSTMM, -1, -1, -1, NULL },
	{ "ta-201-full-ca-cert", D, MX, NULL, C_MX, { C_CA },
	    { { 2, 0, 1, C_CA } }, 0, 1, NULL, 1, 2, 0, MX },
	{ "ta-212-sha512", D, MX, NULL, C_MX, { C_CA },
	    { { 2, 1, 2, C_CA } }, 0, 1, NULL, 1, 2, 1, MX },
	{ "ta-211-wrong-name", D, MX, BASE, C_WRONG, { C_CA },
	    { { 2, 1, 1, C_CA } }, 0, 0, HOSTMM, -1, -1, -1, NULL },
	{ "ta-211-ca-not-sent", D, MX, NULL, C_MX, { C_NONE },
	    { { 2, 1, 1, C_CA } }, 0, 0, NOTLSA, -1, -1, -1, NULL },
	{ "ta-211-ca-not-sent-even-if-trusted", D, MX, NULL, C_MX,
	    { C_NONE }, { { 2, 1, 1, C_CA } }, 1, 0, NOTLSA, -1, -1, -1,
	    NULL },
	/* A full TA certificate or key in the record needs no copy in the
	 * chain: OpenSSL anchors on the record itself.  For a bare key the
	 * depth reported is that of the certificate the key signed. */
	{ "ta-200-ca-not-sent", D, MX, NULL, C_MX, { C_NONE },
	    { { 2, 0, 0, C_CA } }, 0, 1, NULL, 1, 2, 0, MX },
	{ "ta-210-ca-not-sent", D, MX, NULL, C_MX, { C_NONE },
	    { { 2, 1, 0, C_CA } }, 0, 1, NULL, 0, 2, 1, MX },
	{ "ta-210-ca-not-sent-wrong-name", D, MX, NULL, C_WRONG, { C_NONE },
	    { { 2, 1, 0, C_CA } }, 0, 0, HOSTMM, -1, -1, -1, NULL },
	{ "ta-211-other-ca", D, MX, NULL, C_UNTRUSTED, { C_CA2 },
	    { { 2, 1, 1, C_CA } }, 0, 0, NOTLSA, -1, -1, -1, NULL },
	{ "ta-211-expired-leaf-fails", D, MX, NULL, C_EXPIRED, { C_CA },
	    { { 2, 1, 1, C_CA } }, 0, 0, EXPIRED, -1, -1, -1, NULL },
	{ "ta-211-wildcard-one-label", D, MX, NULL, C_WILD, { C_CA },
	    { { 2, 1, 1, C_CA } }, 0, 1, NULL, 1, 2, 1, "*.example.test" },
	{ "ta-211-wildcard-two-labels", D, "a.b.example.test", NULL, C_WILD,
	    { C_CA }, { { 2, 1, 1, C_CA } }, 0, 0, HOSTMM, -1, -1, -1,
	    NULL },

	/* Several records: any one match authenticates (RFC 7672 2.2). */
	{ "multi-ee-third-matches", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER }, { 2, 1, 1, C_CA2 }, { 3, 0, 1, C_MX } },
	    0, 1, NULL, 0, 3, 0, "" },
	{ "multi-ta-matches", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER }, { 2, 1, 1, C_CA } }, 0, 1, NULL, 1, 2, 1,
	    MX },
	/* PKIX-TA(0)/PKIX-EE(1) records are refused by the verify layer
	 * itself (RFC 7672 3.1.3): a chain that passes PKIX against the
	 * CA file and matches such a record is still not authenticated. */
	{ "pkix-ee-111-refused", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER }, { 1, 1, 1, C_MX } }, 0, 0, NOTLSA,
	    -1, -1, -1, NULL },
	{ "pkix-ee-101-refused", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER }, { 1, 0, 1, C_MX } }, 0, 0, NOTLSA,
	    -1, -1, -1, NULL },
	{ "pkix-ta-011-refused", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER }, { 0, 1, 1, C_CA } }, 0, 0, NOTLSA,
	    -1, -1, -1, NULL },
	{ "multi-none-matches", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER }, { 2, 1, 1, C_CA2 }, { 3, 1, 2, C_CA } },
	    0, 0, NOTLSA, -1, -1, -1, NULL },

	/* PKIX for MTA-STS: CA store and the MX name (RFC 8461 4.2). */
	{ "sts-good", E, MX, NULL, C_MX, { C_CA }, { { 0 } }, 0, 1, NULL,
	    -1, -1, -1, MX },
	{ "sts-good-root-not-sent", E, MX, NULL, C_MX, { C_NONE }, { { 0 } },
	    0, 1, NULL, -1, -1, -1, MX },
	{ "sts-wrong-name", E, MX, NULL, C_WRONG, { C_CA }, { { 0 } }, 0, 0,
	    HOSTMM, -1, -1, -1, NULL },
	{ "sts-tlsa-base-not-a-name", E, MX, BASE, C_BASE, { C_CA },
	    { { 0 } }, 0, 0, HOSTMM, -1, -1, -1, NULL },
	{ "sts-untrusted-ca", E, MX, NULL, C_UNTRUSTED, { C_CA2 }, { { 0 } },
	    0, 0, UNTRUST, -1, -1, -1, NULL },
	{ "sts-self-signed", E, MX, NULL, C_SELF, { C_NONE }, { { 0 } }, 0,
	    0, UNTRUST, -1, -1, -1, NULL },
	{ "sts-expired", E, MX, NULL, C_EXPIRED, { C_CA }, { { 0 } }, 0, 0,
	    EXPIRED, -1, -1, -1, NULL },
	{ "sts-test-ca-not-in-system-store", E, MX, NULL, C_MX, { C_CA },
	    { { 0 } }, 1, 0, UNTRUST, -1, -1, -1, NULL },
	{ "sts-wildcard-one-label", E, MX, NULL, C_WILD, { C_CA }, { { 0 } },
	    0, 1, NULL, -1, -1, -1, "*.example.test" },
	{ "sts-wildcard-two-labels", E, "a.b.example.test", NULL, C_WILD,
	    { C_CA }, { { 0 } }, 0, 0, HOSTMM, -1, -1, -1, NULL },
	{ "sts-wildcard-not-parent", E, "example.test", NULL, C_WILD,
	    { C_CA }, { { 0 } }, 0, 0, HOSTMM, -1, -1, -1, NULL },
	{ "sts-partial-wildcard", E, "mx1.example.test", NULL, C_PARTIAL,
	    { C_CA }, { { 0 } }, 0, 0, HOSTMM, -1, -1, -1, NULL },
	{ "sts-name-case-insensitive", E, "MX.Example.TEST", NULL, C_MX,
	    { C_CA }, { { 0 } }, 0, 1, NULL, -1, -1, -1, MX },
	{ "sts-testing-wrong-name", T, MX, NULL, C_WRONG, { C_CA }, { { 0 } },
	    0, 0, HOSTMM, -1, -1, -1, NULL },
	{ "sts-testing-good", T, MX, NULL, C_MX, { C_CA }, { { 0 } }, 0, 1,
	    NULL, -1, -1, -1, MX },

	/* encrypt/may: what PKIX would say, for reports only. */
	{ "may-untrusted", MAY, MX, NULL, C_UNTRUSTED, { C_CA2 }, { { 0 } },
	    0, 0, UNTRUST, -1, -1, -1, NULL },
	{ "may-good", MAY, MX, NULL, C_MX, { C_CA }, { { 0 } }, 0, 1, NULL,
	    -1, -1, -1, MX },
	{ "encrypt-expired", ENC, MX, NULL, C_EXPIRED, { C_CA }, { { 0 } },
	    0, 0, EXPIRED, -1, -1, -1, NULL },
};

/* check_result - compare a result with a row's expectations */
static void
check_result(const struct danests_verify_result *res, int verified,
    const char *reason, int depth, int usage, int selector,
    const char *peername)
{
	if (verified != res->verified)
		print_error("detail: %s\n", res->detail);
	assert_int_equal(res->verified, verified);
	if (verified) {
		assert_int_equal(res->reason, DANESTS_RT_NONE);
		assert_int_equal(res->depth, depth);
		assert_int_equal(res->usage, usage);
		assert_int_equal(res->selector, selector);
		if (usage >= 0)
			assert_true(res->mtype >= 0 && res->mtype <= 2);
		else
			assert_int_equal(res->mtype, -1);
		assert_string_equal(res->peername, peername);
	} else {
		assert_int_not_equal(res->reason, DANESTS_RT_NONE);
		assert_non_null(danests_result_type_name(res->reason));
		assert_string_equal(danests_result_type_name(res->reason),
		    reason);
		assert_int_equal(res->depth, -1);
		assert_int_equal(res->usage, -1);
	}
	assert_true(res->detail[0] != '\0');
}

/* run_chain - one row of chain_cases, offline */
static void
run_chain(void **state)
{
	const struct chain_case *c = *state;
	struct danests_verify_result res;
	struct danests_host h;
	STACK_OF(X509) *sk;
	danests_status st;
	int n;

	host_make(&h, c->policy, c->host, c->base, c->tlsa);
	sk = chain_make(c->chain);
	memset(&res, 0x5a, sizeof(res));
	st = danests_verify_chain(&h, fx.cert[c->leaf], sk,
	    c->system_store ? NULL : fx.ca_file, &res);
	assert_int_equal(st, DANESTS_OK);
	check_result(&res, c->verified, c->reason, c->depth, c->usage,
	    c->selector, c->peername);
	/* The mtype reported is that of the row's matching record. */
	if (c->verified && c->usage >= 0) {
		size_t i;
		int found = 0;

		for (i = 0; i < h.ntlsa; i++)
			if (h.tlsa[i].usage == res.usage &&
			    h.tlsa[i].selector == res.selector &&
			    h.tlsa[i].mtype == res.mtype)
				found = 1;
		assert_true(found);
	}
	/* The caller's stack is left as it was. */
	for (n = 0; n < MAXC && c->chain[n] != C_NONE; n++)
		assert_ptr_equal(sk_X509_value(sk, n), fx.cert[c->chain[n]]);
	assert_int_equal(sk_X509_num(sk), n);
	sk_X509_free(sk);
	host_clear(&h);
}

/*
 * Handshakes over memory BIOs: a server with a given chain, a client
 * prepared by danests_tls_prepare.  dane and sts-enforce must abort the
 * handshake on failure; the others complete and report.
 */
struct hs_case {
	const char *name;
	danests_policy policy;
	const char *host;
	const char *base;
	enum cert_id leaf;
	enum cert_id chain[MAXC];
	struct tlsa_spec tlsa[MAXT];
	int handshake_ok;
	int verified;
	const char *reason;
	int depth, usage, selector;
	const char *peername;
	const char *sni;	/* name the server must see */
};

static const struct hs_case hs_cases[] = {
	{ "hs-dane-ee", D, MX, BASE, C_MX, { C_CA }, { { 3, 1, 1, C_MX } },
	    1, 1, NULL, 0, 3, 1, "", BASE },
	{ "hs-dane-ee-expired", D, MX, NULL, C_EXPIRED, { C_CA },
	    { { 3, 0, 1, C_EXPIRED } }, 1, 1, NULL, 0, 3, 0, "", MX },
	{ "hs-dane-ta-base-name", D, MX, BASE, C_BASE, { C_CA },
	    { { 2, 1, 1, C_CA } }, 1, 1, NULL, 1, 2, 1, BASE, BASE },
	{ "hs-dane-ta-mx-name", D, MX, BASE, C_MX, { C_CA },
	    { { 2, 1, 1, C_CA } }, 1, 1, NULL, 1, 2, 1, MX, BASE },
	{ "hs-dane-pkix-ee-refused", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER }, { 1, 1, 1, C_MX } }, 0, 0, NOTLSA, -1,
	    -1, -1, NULL, MX },
	{ "hs-dane-no-match", D, MX, NULL, C_MX, { C_CA },
	    { { 3, 1, 1, C_OTHER } }, 0, 0, NOTLSA, -1, -1, -1, NULL, NULL },
	{ "hs-dane-ta-wrong-name", D, MX, NULL, C_WRONG, { C_CA },
	    { { 2, 1, 1, C_CA } }, 0, 0, HOSTMM, -1, -1, -1, NULL, NULL },
	{ "hs-sts-enforce-good", E, MX, NULL, C_MX, { C_CA }, { { 0 } }, 1, 1,
	    NULL, -1, -1, -1, MX, MX },
	{ "hs-sts-enforce-wrong-name", E, MX, NULL, C_WRONG, { C_CA },
	    { { 0 } }, 0, 0, HOSTMM, -1, -1, -1, NULL, NULL },
	{ "hs-sts-enforce-untrusted", E, MX, NULL, C_UNTRUSTED, { C_CA2 },
	    { { 0 } }, 0, 0, UNTRUST, -1, -1, -1, NULL, NULL },
	{ "hs-sts-testing-wrong-name", T, MX, NULL, C_WRONG, { C_CA },
	    { { 0 } }, 1, 0, HOSTMM, -1, -1, -1, NULL, MX },
	{ "hs-may-untrusted", MAY, MX, NULL, C_UNTRUSTED, { C_CA2 },
	    { { 0 } }, 1, 0, UNTRUST, -1, -1, -1, NULL, MX },
	{ "hs-encrypt-expired", ENC, MX, NULL, C_EXPIRED, { C_CA },
	    { { 0 } }, 1, 0, EXPIRED, -1, -1, -1, NULL, MX },
};

/* handshake - drive both ends until done or one fails; 1 when both ok */
static int
handshake(SSL *cli, SSL *srv)
{
	int i, rc, rs, ec, es;

	for (i = 0; i < 64; i++) {
		rc = SSL_do_handshake(cli);
		ec = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(cli, rc);
		rs = SSL_do_handshake(srv);
		es = rs == 1 ? SSL_ERROR_NONE : SSL_get_error(srv, rs);
		if (rc == 1 && rs == 1)
			return 1;
		if ((ec != SSL_ERROR_NONE && ec != SSL_ERROR_WANT_READ &&
		    ec != SSL_ERROR_WANT_WRITE) ||
		    (es != SSL_ERROR_NONE && es != SSL_ERROR_WANT_READ &&
		    es != SSL_ERROR_WANT_WRITE))
			return 0;
	}
	return 0;
}

/* run_hs - one row of hs_cases */
static void
run_hs(void **state)
{
	const struct hs_case *c = *state;
	struct danests_verify_result res;
	struct danests_host h;
	SSL_CTX *cctx, *sctx;
	SSL *cli, *srv;
	BIO *bc, *bs;
	char why[DANESTS_WHY_MAX] = "";
	const char *sni;
	int i, ok;

	host_make(&h, c->policy, c->host, c->base, c->tlsa);
	cctx = danests_tls_ctx_new(fx.ca_file, why, sizeof(why));
	assert_non_null(cctx);
	assert_non_null(sctx = SSL_CTX_new(TLS_server_method()));
	assert_int_equal(SSL_CTX_use_certificate(sctx, fx.cert[c->leaf]), 1);
	assert_int_equal(SSL_CTX_use_PrivateKey(sctx, fx.key[c->leaf]), 1);
	for (i = 0; i < MAXC && c->chain[i] != C_NONE; i++)
		assert_int_equal(SSL_CTX_add1_chain_cert(sctx,
		    fx.cert[c->chain[i]]), 1);
	assert_non_null(cli = SSL_new(cctx));
	assert_non_null(srv = SSL_new(sctx));
	assert_int_equal(BIO_new_bio_pair(&bc, 0, &bs, 0), 1);
	SSL_set_bio(cli, bc, bc);
	SSL_set_bio(srv, bs, bs);
	SSL_set_connect_state(cli);
	SSL_set_accept_state(srv);

	assert_int_equal(danests_tls_prepare(cli, &h, why, sizeof(why)),
	    DANESTS_OK);
	ok = handshake(cli, srv);
	assert_int_equal(ok, c->handshake_ok);
	if (ok) {
		sni = SSL_get_servername(srv, TLSEXT_NAMETYPE_host_name);
		assert_non_null(sni);
		assert_string_equal(sni, c->sni);
		if (c->policy == E || c->policy == T)
			assert_true(SSL_version(cli) >= TLS1_2_VERSION);
	}
	assert_int_equal(danests_tls_result(cli, &h, &res), DANESTS_OK);
	check_result(&res, c->verified, c->reason, c->depth, c->usage,
	    c->selector, c->peername);

	SSL_free(cli);
	SSL_free(srv);
	SSL_CTX_free(sctx);
	danests_tls_ctx_free(cctx);
	host_clear(&h);
	ERR_clear_error();
}

/* Bad arguments and hosts that must not be verified at all. */
struct err_case {
	const char *name;
	danests_policy policy;
	const char *host;
	struct tlsa_spec tlsa[MAXT];
	int bad_tlsa_mtype;	/* replace the mtype of every record */
	const char *ca_file;	/* "-": the fixture's */
	danests_status want;
	const char *why;	/* substring of res.detail */
};

static const struct err_case err_cases[] = {
	{ "skip-host", DANESTS_POLICY_SKIP, MX, { { 0 } }, 0, "-",
	    DANESTS_PERM, "must not be contacted" },
	{ "dane-without-records", D, MX, { { 0 } }, 0, "-", DANESTS_PERM,
	    "without usable TLSA" },
	{ "dane-only-unknown-mtype", D, MX, { { 3, 1, 1, C_MX } }, 9, "-",
	    DANESTS_PERM, "no usable TLSA" },
	/* A PKIX usage never reaches OpenSSL, even when the leaf would
	 * pass PKIX against the CA file (RFC 7672 3.1.3). */
	{ "dane-only-pkix-ee", D, MX, { { 1, 1, 1, C_MX } }, 0, "-",
	    DANESTS_PERM, "no usable TLSA" },
	{ "dane-only-pkix-ta", D, MX, { { 0, 1, 1, C_CA } }, 0, "-",
	    DANESTS_PERM, "no usable TLSA" },
	{ "dane-only-unknown-usage", D, MX, { { 4, 1, 1, C_MX } }, 0, "-",
	    DANESTS_PERM, "no usable TLSA" },
	{ "empty-host-name", E, "", { { 0 } }, 0, "-", DANESTS_PERM,
	    "bad arguments" },
	{ "missing-ca-file", E, MX, { { 0 } }, 0, "/nonexistent/ca.pem",
	    DANESTS_TEMP, "cannot load CA file" },
};

/* run_err - one row of err_cases */
static void
run_err(void **state)
{
	const struct err_case *c = *state;
	struct danests_verify_result res;
	struct danests_host h;
	size_t i;

	host_make(&h, c->policy, c->host, NULL, c->tlsa);
	for (i = 0; c->bad_tlsa_mtype && i < h.ntlsa; i++)
		h.tlsa[i].mtype = (uint8_t)c->bad_tlsa_mtype;
	assert_int_equal(danests_verify_chain(&h, fx.cert[C_MX], NULL,
	    strcmp(c->ca_file, "-") == 0 ? fx.ca_file : c->ca_file, &res),
	    c->want);
	assert_false(res.verified);
	assert_int_equal(res.depth, -1);
	if (strstr(res.detail, c->why) == NULL)
		print_error("detail: %s\n", res.detail);
	assert_non_null(strstr(res.detail, c->why));
	host_clear(&h);
}

/* test_null_args - NULL pointers are refused, never dereferenced */
static void
test_null_args(void **state)
{
	struct danests_verify_result res;
	struct danests_host h;
	char why[DANESTS_WHY_MAX];

	(void)state;
	memset(&h, 0, sizeof(h));
	h.name = (char *)(uintptr_t)MX;
	h.policy = E;
	assert_int_equal(danests_verify_chain(NULL, fx.cert[C_MX], NULL,
	    fx.ca_file, &res), DANESTS_PERM);
	assert_false(res.verified);
	assert_int_equal(danests_verify_chain(&h, NULL, NULL, fx.ca_file,
	    &res), DANESTS_PERM);
	assert_false(res.verified);
	assert_int_equal(danests_verify_chain(&h, fx.cert[C_MX], NULL,
	    fx.ca_file, NULL), DANESTS_PERM);
	assert_int_equal(danests_tls_prepare(NULL, &h, why, sizeof(why)),
	    DANESTS_PERM);
	assert_int_equal(danests_tls_result(NULL, &h, &res), DANESTS_PERM);
	assert_false(res.verified);
}

/* test_no_peer_cert - before a handshake nothing is authenticated, even
 * though OpenSSL's verify result still reads X509_V_OK */
static void
test_no_peer_cert(void **state)
{
	struct danests_verify_result res;
	struct danests_host h;
	SSL_CTX *ctx;
	SSL *ssl;
	char why[DANESTS_WHY_MAX];

	(void)state;
	memset(&h, 0, sizeof(h));
	h.name = (char *)(uintptr_t)MX;
	h.policy = MAY;
	assert_non_null(ctx = danests_tls_ctx_new(fx.ca_file, why,
	    sizeof(why)));
	assert_non_null(ssl = SSL_new(ctx));
	assert_int_equal(danests_tls_prepare(ssl, &h, why, sizeof(why)),
	    DANESTS_OK);
	assert_int_equal(danests_tls_result(ssl, &h, &res), DANESTS_OK);
	assert_false(res.verified);
	assert_int_not_equal(res.reason, DANESTS_RT_NONE);
	SSL_free(ssl);
	danests_tls_ctx_free(ctx);
}

/* test_ctx_reuse - one context checks many chains, results independent */
static void
test_ctx_reuse(void **state)
{
	static const struct tlsa_spec ta[MAXT] = { { 2, 1, 1, C_CA } };
	struct danests_verify_result res;
	struct danests_host h;
	STACK_OF(X509) *sk;
	SSL_CTX *ctx;
	char why[DANESTS_WHY_MAX];
	int i;

	(void)state;
	assert_non_null(ctx = danests_tls_ctx_new(fx.ca_file, why,
	    sizeof(why)));
	host_make(&h, D, MX, NULL, ta);
	assert_non_null(sk = sk_X509_new_null());
	assert_true(sk_X509_push(sk, fx.cert[C_CA]) > 0);
	for (i = 0; i < 3; i++) {
		assert_int_equal(danests_verify_chain_ctx(ctx, &h,
		    fx.cert[C_MX], sk, &res), DANESTS_OK);
		check_result(&res, 1, NULL, 1, 2, 1, MX);
		assert_int_equal(danests_verify_chain_ctx(ctx, &h,
		    fx.cert[C_WRONG], sk, &res), DANESTS_OK);
		check_result(&res, 0, HOSTMM, -1, -1, -1, NULL);
	}
	sk_X509_free(sk);
	host_clear(&h);
	danests_tls_ctx_free(ctx);
}



int
main(void)
{
	const struct CMUnitTest misc[] = {
		cmocka_unit_test(test_null_args),
		cmocka_unit_test(test_no_peer_cert),
		cmocka_unit_test(test_ctx_reuse),
	};
	int rc = 0;

	if (fixture_setup() != 0) {
		fprintf(stderr, "cannot make test certificates\n");
		fixture_teardown();
		return 1;
	}
	rc |= run_table("verify_chain", chain_cases, NROWS(chain_cases),
	    sizeof(chain_cases[0]), run_chain);
	rc |= run_table("tls_handshake", hs_cases, NROWS(hs_cases),
	    sizeof(hs_cases[0]), run_hs);
	rc |= run_table("verify_errors", err_cases, NROWS(err_cases),
	    sizeof(err_cases[0]), run_err);
	rc |= cmocka_run_group_tests_name("verify_misc", misc, NULL, NULL);
	fixture_teardown();
	return rc != 0;
}
