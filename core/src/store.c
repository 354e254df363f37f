/*
 * store.c - the shared store of a fleet: Redis or Valkey (same protocol)
 *
 * The local cache (LMDB, cache.c) stays the store every decision reads
 * from; this one sits beside it so that the nodes of a fleet share what
 * they fetched:
 *   - a policy fetched by one node is written here with its fetch time
 *     and TXT id by one atomic script: the newest policy wins (fetch time,
 *     then id), an older one never replaces a newer one;
 *   - a node without the policy, or with an older one, adopts the newer
 *     one into its local cache;
 *   - a refresh takes a lock per domain (SET NX PX with a random token,
 *     released by compare-and-delete), so one node fetches at a time;
 *   - every command is bounded by store_timeout; an unreachable or slow
 *     store is left alone for STORE_RETRY_S seconds (the caller serves
 *     from the local cache) and the outage is logged once.
 *
 * The hiredis blocking API is used: each call waits at most
 * store_timeout (connect, then each command).  Without hiredis only the
 * URL parser is built, and `store` is a configuration error.
 */
#include "danests-internal.h"

#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#ifdef HAVE_HIREDIS
#include <arpa/inet.h>
#include <netdb.h>
#include <hiredis/hiredis.h>
#endif
#ifdef HAVE_HIREDIS_SSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <hiredis/hiredis_ssl.h>
#endif

#define STORE_RETRY_S	5	/* an outage: calls fail fast this long */
#define STORE_DEC_MAX	(256 * 1024)	/* a decision's JSON in the store */

/* hostport - HOST[:PORT] of [p, end): HOST a name, an IPv4 address or
 * [IPv6]; false when malformed (*bad names the part: "host" or "port") */
static bool
hostport(const char *p, const char *end, char *host, size_t hostlen,
    unsigned *port, const char **bad)
{
	const char *hs, *he;
	unsigned long long v;
	char num[8];
	size_t n;

	*bad = "host";
	if (*p == '[') {
		hs = p + 1;
		if ((he = memchr(hs, ']', (size_t)(end - hs))) == NULL)
			return false;
		p = he + 1;
	} else {
		hs = p;
		he = memchr(p, ':', (size_t)(end - p));
		if (he == NULL)
			he = end;
		p = he;
	}
	if (he == hs || (size_t)(he - hs) >= hostlen)
		return false;
	memcpy(host, hs, (size_t)(he - hs));
	host[he - hs] = '\0';
	for (n = 0; host[n] != '\0'; n++)
		if (!isalnum((unsigned char)host[n]) &&
		    strchr(".-_:", host[n]) == NULL)
			return false;
	if (p == end)
		return true;
	if (*p != ':')
		return false;
	*bad = "port";
	p++;
	n = (size_t)(end - p);
	if (n == 0 || n >= sizeof(num))
		return false;
	memcpy(num, p, n);
	num[n] = '\0';
	if (!danests_parse_uint(num, 1, 65535, &v))
		return false;
	*port = (unsigned)v;
	return true;
}

/*
 * store_url_parse - one of
 *   redis://[:PASSWORD@]HOST[:PORT][/DB]
 *   rediss://...   the same over TLS (a build with hiredis_ssl only)
 *   sentinel://[:PASSWORD@]HOST[:PORT][,HOST[:PORT]...]/MASTER[/DB]
 *                  the primary of MASTER as Redis Sentinels name it
 * HOST a name, an IPv4 address or [IPv6]; PORT 1-65535 (6379; 26379 for
 * a sentinel), DB 0-15 (0); the password is the data server's.
 */
danests_status
store_url_parse(const char *s, struct store_url *u, char *why, size_t whylen)
{
	const char *p, *at, *end, *next, *bad, *scheme;
	unsigned long long v;
	size_t n;

	memset(u, 0, sizeof(*u));
	u->port = 6379;
	if (strncmp(s, "rediss://", 9) == 0) {
#ifndef HAVE_HIREDIS_SSL
		why_set(why, whylen, "this build has no TLS to the store "
		    "(rediss:// needs hiredis 1.0 or later with hiredis_ssl)");
		return DANESTS_PERM;
#endif
		u->tls = true;
		scheme = "rediss://";
	} else if (strncmp(s, "redis://", 8) == 0)
		scheme = "redis://";
	else if (strncmp(s, "sentinel://", 11) == 0)
		scheme = "sentinel://";
	else {
		why_set(why, whylen, "expected redis://[:PASSWORD@]HOST"
		    "[:PORT][/DB]%s or sentinel://HOST[:PORT],.../MASTER",
#ifdef HAVE_HIREDIS_SSL
		    ", rediss:// (TLS)"
#else
		    ""
#endif
		    );
		return DANESTS_PERM;
	}
	p = s + strlen(scheme);
	for (n = 0; s[n] != '\0'; n++)
		if ((unsigned char)s[n] <= 0x20 || (unsigned char)s[n] >= 0x7f) {
			why_set(why, whylen, "control character, space or "
			    "non-ASCII byte in the URL");
			return DANESTS_PERM;
		}
	/* the password may hold '@' and ':'; the host part never does */
	if ((at = strrchr(p, '@')) != NULL) {
		if (p[0] != ':' || at - p - 1 <= 0 ||
		    (size_t)(at - p - 1) >= sizeof(u->password)) {
			why_set(why, whylen, "expected :PASSWORD@ before the "
			    "host (at most %zu bytes)", sizeof(u->password) - 1);
			return DANESTS_PERM;
		}
		memcpy(u->password, p + 1, (size_t)(at - p - 1));
		p = at + 1;
	}
	end = p + strcspn(p, "/");
	if (scheme[0] != 's') {
		if (!hostport(p, end, u->host, sizeof(u->host), &u->port,
		    &bad))
			goto bad;
	} else {
		for (; p < end; p = next + (next < end)) {
			if ((next = memchr(p, ',', (size_t)(end - p))) == NULL)
				next = end;
			if (u->nsent == STORE_SENTINELS_MAX) {
				why_set(why, whylen, "at most %d sentinels",
				    STORE_SENTINELS_MAX);
				return DANESTS_PERM;
			}
			u->sent[u->nsent].port = 26379;
			bad = "host";
			if (next == p || !hostport(p, next,
			    u->sent[u->nsent].host,
			    sizeof(u->sent[u->nsent].host),
			    &u->sent[u->nsent].port, &bad))
				goto bad;
			u->nsent++;
			if (next + 1 == end) {	/* a trailing ',' */
				bad = "host";
				goto bad;
			}
		}
		if (u->nsent == 0) {
			bad = "host";
			goto bad;
		}
		/* /MASTER: the name the sentinels monitor */
		p = end;
		n = *p == '/' ? strcspn(p + 1, "/") : 0;
		if (n == 0 || n >= sizeof(u->master)) {
			why_set(why, whylen, "expected /MASTER (the name the "
			    "sentinels know, at most %zu characters) after "
			    "the sentinels", sizeof(u->master) - 1);
			return DANESTS_PERM;
		}
		memcpy(u->master, p + 1, n);
		for (at = u->master; *at != '\0'; at++)
			if (!isalnum((unsigned char)*at) &&
			    strchr(".-_", *at) == NULL) {
				why_set(why, whylen, "expected letters, digits, "
				    "'.', '-' and '_' in the master's name");
				return DANESTS_PERM;
			}
		end = p + 1 + n;
	}
	if (*end == '/') {
		if (!danests_parse_uint(end + 1, 0, 15, &v)) {
			why_set(why, whylen, "expected a database number from "
			    "0 to 15 after /");
			return DANESTS_PERM;
		}
		u->db = (unsigned)v;
	}
	return DANESTS_OK;
bad:
	if (strcmp(bad, "port") == 0)
		why_set(why, whylen, "expected a port from 1 to 65535 after "
		    "the host");
	else
		why_set(why, whylen, "expected a host name or address after "
		    "%s", scheme);
	return DANESTS_PERM;
}

#ifdef HAVE_HIREDIS

struct store_conn {
	struct store_url url;
	char name[384];		/* for the log: HOST:PORT, or the master's
				 * name and the primary's address */
	unsigned sent_next;	/* the sentinel to ask first */
	redisContext *rc;
	time_t retry_at;	/* down until then */
	bool down;		/* the outage was logged */
	bool *unsynced;		/* the store's flag */
};

struct store {
	struct store_conn w, r;
	bool same;		/* one endpoint for reads and writes */
	bool unsynced;		/* writes may have been lost (a failure, or
				 * none pushed yet) */
	unsigned timeout_ms;
	char prefix[DANESTS_STORE_PREFIX_MAX];
#ifdef HAVE_HIREDIS_SSL
	SSL_CTX *tls;		/* NULL: no rediss:// endpoint */
#endif
};

/*
 * The newest policy wins (fetch time, then TXT id); the key lives as long
 * as the policy (max_age).  KEYS[1] the policy's key; ARGV fetched, id,
 * entry, ttl in milliseconds.  1 written, 0 kept the stored one.
 */
static const char put_script[] =
	"local f = redis.call('HGET', KEYS[1], 'fetched')\n"
	"if f then\n"
	"  f = tonumber(f)\n"
	"  local n = tonumber(ARGV[1])\n"
	"  if f == nil or n == nil then return redis.error_reply('bad') end\n"
	"  if f > n then return 0 end\n"
	"  if f == n then\n"
	"    local i = redis.call('HGET', KEYS[1], 'id')\n"
	"    if i and i >= ARGV[2] then return 0 end\n"
	"  end\n"
	"end\n"
	"redis.call('DEL', KEYS[1])\n"
	"redis.call('HSET', KEYS[1], 'fetched', ARGV[1], 'id', ARGV[2],"
	" 'entry', ARGV[3])\n"
	"redis.call('PEXPIRE', KEYS[1], ARGV[4])\n"
	"return 1\n";

/* Release a lock only if it is still ours. */
static const char unlock_script[] =
	"if redis.call('GET', KEYS[1]) == ARGV[1] then\n"
	"  return redis.call('DEL', KEYS[1])\n"
	"end\n"
	"return 0\n";

#ifdef HAVE_HIREDIS_SSL
/* tls_new - the TLS context of the rediss:// endpoints: the peer verified
 * against store_ca_file (default: the system's CAs), TLS 1.2 or later,
 * the client certificate of store_cert_file and store_key_file if any */
static SSL_CTX *
tls_new(const struct danests_config *cfg, char *why, size_t whylen)
{
	SSL_CTX *t;
	unsigned long e;
	const char *what, *file, *reason;

	if ((t = SSL_CTX_new(TLS_client_method())) == NULL) {
		why_set(why, whylen, "store: cannot make a TLS context");
		return NULL;
	}
	SSL_CTX_set_min_proto_version(t, TLS1_2_VERSION);
	SSL_CTX_set_verify(t, SSL_VERIFY_PEER, NULL);
	ERR_clear_error();
	what = "store_ca_file";
	file = cfg->store_ca_file;
	if (file[0] != '\0' ? SSL_CTX_load_verify_locations(t, file, NULL) !=
	    1 : SSL_CTX_set_default_verify_paths(t) != 1)
		goto fail;
	what = "store_cert_file";
	file = cfg->store_cert_file;
	if (file[0] != '\0' &&
	    SSL_CTX_use_certificate_chain_file(t, file) != 1)
		goto fail;
	what = "store_key_file";
	file = cfg->store_key_file;
	if (file[0] != '\0' && (SSL_CTX_use_PrivateKey_file(t, file,
	    SSL_FILETYPE_PEM) != 1 || SSL_CTX_check_private_key(t) != 1))
		goto fail;
	return t;
fail:
	/* (only the CA step runs with no file: the system's CAs) */
	e = ERR_peek_last_error();
	reason = e != 0 ? ERR_reason_error_string(e) : NULL;
	if (file[0] == '\0')
		why_set(why, whylen, "store: the system's CA certificates "
		    "cannot be loaded; give store_ca_file");
	else
		why_set(why, whylen, "%s %s: %s", what, file,
		    reason != NULL ? reason : "cannot be read");
	ERR_clear_error();
	SSL_CTX_free(t);
	return NULL;
}

/* tls_start - TLS on c's new connection: SNI and the name check for a
 * host name, the address check for an address; false (err filled) when
 * the handshake or the verification fails */
static bool
tls_start(struct store *s, struct store_conn *c, char *err, size_t errlen)
{
	unsigned char a[sizeof(struct in6_addr)];
	SSL *ssl;
	long v;
	bool ip;

	if ((ssl = SSL_new(s->tls)) == NULL) {
		snprintf(err, errlen, "TLS: out of memory");
		return false;
	}
	ip = inet_pton(AF_INET, c->url.host, a) == 1 ||
	    inet_pton(AF_INET6, c->url.host, a) == 1;
	if (ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl),
	    c->url.host) != 1 : (SSL_set_tlsext_host_name(ssl,
	    c->url.host) != 1 || SSL_set1_host(ssl, c->url.host) != 1)) {
		SSL_free(ssl);
		snprintf(err, errlen, "TLS: cannot set the name to verify");
		return false;
	}
	if (redisInitiateSSL(c->rc, ssl) == REDIS_OK)
		return true;	/* hiredis owns ssl now */
	v = SSL_get_verify_result(ssl);
	if (v != X509_V_OK)
		snprintf(err, errlen, "TLS: certificate of %s not verified: "
		    "%s", c->url.host, X509_verify_cert_error_string(v));
	else
		snprintf(err, errlen, "TLS: %s", c->rc->errstr);
	SSL_free(ssl);	/* on a failure it is still ours */
	return false;
}
#endif /* HAVE_HIREDIS_SSL */

/* conn_name - c's name in the log lines */
static void
conn_name(struct store_conn *c)
{
	if (c->url.nsent == 0)
		snprintf(c->name, sizeof(c->name), "%s:%u", c->url.host,
		    c->url.port);
	else if (c->url.host[0] == '\0')
		snprintf(c->name, sizeof(c->name), "%s (sentinel)",
		    c->url.master);
	else
		snprintf(c->name, sizeof(c->name), "%s %s:%u (sentinel)",
		    c->url.master, c->url.host, c->url.port);
}

/* store_new - the store of cfg (no connection yet); NULL out when none */
danests_status
store_new(const struct danests_config *cfg, struct store **out, char *why,
    size_t whylen)
{
	struct store *s;

	*out = NULL;
	if (cfg->store_url[0] == '\0')
		return DANESTS_OK;
	if ((s = xcalloc(1, sizeof(*s))) == NULL) {
		why_set(why, whylen, "out of memory");
		return DANESTS_TEMP;
	}
	if (store_url_parse(cfg->store_url, &s->w.url, why, whylen) !=
	    DANESTS_OK || store_url_parse(cfg->store_read_url[0] != '\0' ?
	    cfg->store_read_url : cfg->store_url, &s->r.url, why, whylen) !=
	    DANESTS_OK) {
		free(s);
		return DANESTS_PERM;
	}
	s->same = cfg->store_read_url[0] == '\0' ||
	    strcmp(cfg->store_read_url, cfg->store_url) == 0;
	if ((cfg->store_cert_file[0] == '\0') !=
	    (cfg->store_key_file[0] == '\0')) {
		why_set(why, whylen, "store_cert_file and store_key_file go "
		    "together");
		free(s);
		return DANESTS_PERM;
	}
	if (!s->w.url.tls && !s->r.url.tls && (cfg->store_ca_file[0] !=
	    '\0' || cfg->store_cert_file[0] != '\0')) {
		why_set(why, whylen, "store_ca_file, store_cert_file and "
		    "store_key_file need a rediss:// store");
		free(s);
		return DANESTS_PERM;
	}
#ifdef HAVE_HIREDIS_SSL
	if ((s->w.url.tls || s->r.url.tls) &&
	    (s->tls = tls_new(cfg, why, whylen)) == NULL) {
		free(s);
		return DANESTS_PERM;
	}
#endif
	if (s->r.url.nsent > 0 && !s->same) {
		why_set(why, whylen, "store_read takes a replica's address, "
		    "not sentinel://");
		free(s);
		return DANESTS_PERM;
	}
	conn_name(&s->w);
	conn_name(&s->r);
	s->timeout_ms = cfg->store_timeout_ms;
	s->unsynced = true;
	s->w.unsynced = s->r.unsynced = &s->unsynced;
	strlcpy(s->prefix, cfg->store_prefix, sizeof(s->prefix));
	*out = s;
	return DANESTS_OK;
}

/* store_free - close the connections */
void
store_free(struct store *s)
{
	if (s == NULL)
		return;
	if (s->w.rc != NULL)
		redisFree(s->w.rc);
	if (s->r.rc != NULL)
		redisFree(s->r.rc);
#ifdef HAVE_HIREDIS_SSL
	SSL_CTX_free(s->tls);
#endif
	free(s);
}

/* conn_fail - an error on c: drop it, fail fast for a while, log once */
static void
conn_fail(struct store_conn *c, const char *what)
{
	if (c->rc != NULL) {
		redisFree(c->rc);
		c->rc = NULL;
	}
	c->retry_at = time(NULL) + STORE_RETRY_S;
	*c->unsynced = true;
	if (!c->down)
		danests_log(LOG_WARNING, "store %s: %.200s; serving from "
		    "the local cache", c->name, what);
	c->down = true;
}

/* conn_call - a command of the connection's set-up on c->rc: the reply,
 * or NULL with err filled (an error reply is freed) */
static redisReply *
conn_call(struct store_conn *c, char *err, size_t errlen, const char *what,
    const char *fmt, ...)
{
	redisReply *r;
	va_list ap;

	va_start(ap, fmt);
	r = redisvCommand(c->rc, fmt, ap);
	va_end(ap);
	if (r != NULL && r->type != REDIS_REPLY_ERROR)
		return r;
	snprintf(err, errlen, "%s: %s", what, r ? r->str : c->rc->errstr);
	if (r != NULL)
		freeReplyObject(r);
	return NULL;
}

/*
 * addr_of - a numeric address of host, within ms milliseconds: host
 * itself when it is one, else the first address the system's resolver
 * gives.  getaddrinfo_a, so that a resolver that does not answer holds
 * the caller no longer than the store's timeout (getaddrinfo would wait
 * as long as resolv.conf's timeouts and attempts say).  A lookup still
 * running at the end is cancelled, or, when the resolver's thread holds
 * it, left to that thread: its memory is then not freed.
 */
static bool
addr_of(const char *host, unsigned ms, char *out, size_t outlen, char *err,
    size_t errlen)
{
	struct lookup {
		struct gaicb cb;
		struct addrinfo hints;
		char name[256];
	} *l;
	struct gaicb *list[1];
	struct timespec end, now, ts;
	unsigned char a[sizeof(struct in6_addr)];
	long long left;
	int rc;

	if (inet_pton(AF_INET, host, a) == 1 ||
	    inet_pton(AF_INET6, host, a) == 1) {
		strlcpy(out, host, outlen);
		return true;
	}
	if ((l = xcalloc(1, sizeof(*l))) == NULL) {
		snprintf(err, errlen, "resolving %s: out of memory", host);
		return false;
	}
	strlcpy(l->name, host, sizeof(l->name));
	l->hints.ai_socktype = SOCK_STREAM;
	l->cb.ar_name = l->name;
	l->cb.ar_request = &l->hints;
	list[0] = &l->cb;
	if ((rc = getaddrinfo_a(GAI_NOWAIT, list, 1, NULL)) != 0) {
		snprintf(err, errlen, "resolving %s: %s", host,
		    gai_strerror(rc));
		free(l);
		return false;
	}
	clock_gettime(CLOCK_MONOTONIC, &end);
	end.tv_sec += ms / 1000;
	end.tv_nsec += (long)(ms % 1000) * 1000000;
	if (end.tv_nsec >= 1000000000) {
		end.tv_sec++;
		end.tv_nsec -= 1000000000;
	}
	while ((rc = gai_error(&l->cb)) == EAI_INPROGRESS) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		left = (long long)(end.tv_sec - now.tv_sec) * 1000000000LL +
		    (end.tv_nsec - now.tv_nsec);
		if (left <= 0)
			break;
		ts.tv_sec = (time_t)(left / 1000000000LL);
		ts.tv_nsec = (long)(left % 1000000000LL);
		(void)gai_suspend((const struct gaicb *const *)list, 1, &ts);
	}
	if (rc == EAI_INPROGRESS) {
		snprintf(err, errlen, "resolving %s: no answer within %u ms",
		    host, ms);
		if (gai_cancel(&l->cb) == EAI_CANCELED)
			free(l);
		/* else the resolver's thread still writes to it: leak */
		return false;
	}
	if (rc != 0 || l->cb.ar_result == NULL ||
	    getnameinfo(l->cb.ar_result->ai_addr, l->cb.ar_result->ai_addrlen,
	    out, (socklen_t)outlen, NULL, 0, NI_NUMERICHOST) != 0) {
		snprintf(err, errlen, "resolving %s: %s", host,
		    rc != 0 ? gai_strerror(rc) : "no address");
		if (l->cb.ar_result != NULL)
			freeaddrinfo(l->cb.ar_result);
		free(l);
		return false;
	}
	freeaddrinfo(l->cb.ar_result);
	free(l);
	return true;
}

/*
 * sentinel_ask - c's primary as a sentinel names it (SENTINEL
 * get-master-addr-by-name), the sentinels asked in turn from the one that
 * answered last, each bounded by tv; false (err filled) when none names
 * one.  A new primary is logged.
 */
static bool
sentinel_ask(struct store_conn *c, struct timeval tv, char *err,
    size_t errlen)
{
	redisContext *sc;
	redisReply *r;
	unsigned long long port;
	unsigned i, k;
	char e[200], addr[INET6_ADDRSTRLEN];

	snprintf(err, errlen, "no sentinel");
	for (k = 0; k < c->url.nsent; k++) {
		i = (c->sent_next + k) % c->url.nsent;
		r = NULL;
		sc = NULL;
		if (!addr_of(c->url.sent[i].host, (unsigned)(tv.tv_sec * 1000 +
		    tv.tv_usec / 1000), addr, sizeof(addr), e, sizeof(e))) {
			snprintf(err, errlen, "sentinel %s:%u: %s",
			    c->url.sent[i].host, c->url.sent[i].port, e);
			continue;
		}
		sc = redisConnectWithTimeout(addr, (int)c->url.sent[i].port,
		    tv);
		if (sc == NULL || sc->err)
			snprintf(e, sizeof(e), "%s", sc ? sc->errstr :
			    "out of memory");
		else if (redisSetTimeout(sc, tv) != REDIS_OK)
			snprintf(e, sizeof(e), "cannot set the timeout");
		else if ((r = redisCommand(sc, "SENTINEL "
		    "get-master-addr-by-name %s", c->url.master)) == NULL)
			snprintf(e, sizeof(e), "%s", sc->errstr);
		else if (r->type == REDIS_REPLY_ERROR)
			snprintf(e, sizeof(e), "%s", r->str);
		else if (r->type != REDIS_REPLY_ARRAY)
			snprintf(e, sizeof(e), "knows no master %s",
			    c->url.master);
		else if (r->elements != 2 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    r->element[1]->type != REDIS_REPLY_STRING ||
		    r->element[0]->len == 0 ||
		    r->element[0]->len >= sizeof(c->url.host) ||
		    strlen(r->element[0]->str) != r->element[0]->len ||
		    !danests_parse_uint(r->element[1]->str, 1, 65535, &port))
			snprintf(e, sizeof(e), "unexpected reply");
		else {
			if (strcmp(c->url.host, r->element[0]->str) != 0 ||
			    c->url.port != port) {
				strlcpy(c->url.host, r->element[0]->str,
				    sizeof(c->url.host));
				c->url.port = (unsigned)port;
				danests_log(LOG_NOTICE, "store %s: sentinel "
				    "%s:%u names %s:%u the primary",
				    c->url.master, c->url.sent[i].host,
				    c->url.sent[i].port, c->url.host,
				    c->url.port);
				conn_name(c);
			}
			c->sent_next = i;
			freeReplyObject(r);
			redisFree(sc);
			return true;
		}
		snprintf(err, errlen, "sentinel %s:%u: %s", c->url.sent[i].host,
		    c->url.sent[i].port, e);
		if (r != NULL)
			freeReplyObject(r);
		if (sc != NULL)
			redisFree(sc);
	}
	return false;
}

/* conn_get - a connected context for c, or NULL (down) */
static redisContext *
conn_get(struct store *s, struct store_conn *c)
{
	struct timeval tv;
	redisReply *r;
	char err[256], addr[INET6_ADDRSTRLEN];

	if (c->rc != NULL)
		return c->rc;
	if (c->down && time(NULL) < c->retry_at)
		return NULL;
	tv.tv_sec = s->timeout_ms / 1000;
	tv.tv_usec = (s->timeout_ms % 1000) * 1000;
	/* each connection asks the sentinels afresh: after a failover the
	 * old primary is gone, or is a replica */
	if (c->url.nsent > 0 && !sentinel_ask(c, tv, err, sizeof(err))) {
		conn_fail(c, err);
		return NULL;
	}
	if (!addr_of(c->url.host, s->timeout_ms, addr, sizeof(addr), err,
	    sizeof(err))) {
		conn_fail(c, err);
		return NULL;
	}
	c->rc = redisConnectWithTimeout(addr, (int)c->url.port, tv);
	if (c->rc == NULL || c->rc->err) {
		snprintf(err, sizeof(err), "connect: %s",
		    c->rc ? c->rc->errstr : "out of memory");
		conn_fail(c, err);
		return NULL;
	}
	if (redisSetTimeout(c->rc, tv) != REDIS_OK) {
		conn_fail(c, "cannot set the timeout");
		return NULL;
	}
#ifdef HAVE_HIREDIS_SSL
	/* the handshake's reads and writes are bounded by the timeout */
	if (c->url.tls && !tls_start(s, c, err, sizeof(err))) {
		conn_fail(c, err);
		return NULL;
	}
#endif
	if (c->url.password[0] != '\0') {
		if ((r = conn_call(c, err, sizeof(err), "AUTH", "AUTH %s",
		    c->url.password)) == NULL) {
			conn_fail(c, err);
			return NULL;
		}
		freeReplyObject(r);
	}
	if (c->url.db != 0) {
		if ((r = conn_call(c, err, sizeof(err), "SELECT",
		    "SELECT %u", c->url.db)) == NULL) {
			conn_fail(c, err);
			return NULL;
		}
		freeReplyObject(r);
	}
	/* what a sentinel names may be stale (a failover under way) */
	if (c->url.nsent > 0) {
		if ((r = conn_call(c, err, sizeof(err), "ROLE", "ROLE")) ==
		    NULL) {
			conn_fail(c, err);
			return NULL;
		}
		if (r->type != REDIS_REPLY_ARRAY || r->elements < 1 ||
		    r->element[0]->type != REDIS_REPLY_STRING ||
		    strcmp(r->element[0]->str, "master") != 0) {
			freeReplyObject(r);
			conn_fail(c, "not the primary (yet)");
			return NULL;
		}
		freeReplyObject(r);
	}
	if (c->down)
		danests_log(LOG_NOTICE, "store %s: reachable again", c->name);
	c->down = false;
	return c->rc;
}

/* command - run one command on c; NULL (and c dropped) on an error */
static redisReply *
command(struct store *s, struct store_conn *c, int argc, const char **argv,
    const size_t *lens)
{
	redisContext *rc;
	redisReply *r;
	struct nopipe np;
	char err[160];

	/* hiredis writes with write(): a store that closed is an error */
	nopipe_begin(&np);
	if ((rc = conn_get(s, c)) == NULL) {
		nopipe_end(&np);
		return NULL;
	}
	r = redisCommandArgv(rc, argc, argv, lens);
	nopipe_end(&np);
	if (r == NULL) {
		/* conn_fail frees rc: copy its message first */
		strlcpy(err, rc->errstr[0] ? rc->errstr : "no reply",
		    sizeof(err));
		conn_fail(c, err);
		return NULL;
	}
	if (r->type == REDIS_REPLY_ERROR) {
		snprintf(err, sizeof(err), "%s: %s", argv[0], r->str);
		freeReplyObject(r);
		conn_fail(c, err);
		return NULL;
	}
	return r;
}

/* commandv - command() of the NULL-terminated text arguments that
 * follow c (at most STORE_CMD_ARGS) */
static redisReply *
commandv(struct store *s, struct store_conn *c, ...)
{
	const char *argv[STORE_CMD_ARGS];
	size_t lens[STORE_CMD_ARGS];
	va_list ap;
	int n = 0;

	va_start(ap, c);
	while (n < STORE_CMD_ARGS &&
	    (argv[n] = va_arg(ap, const char *)) != NULL) {
		lens[n] = strlen(argv[n]);
		n++;
	}
	va_end(ap);
	return command(s, c, n, argv, lens);
}

/* key_make - PREFIX KIND DOMAIN */
static int
key_make(const struct store *s, const char *kind, const char *domain,
    char *buf, size_t len)
{
	int n = snprintf(buf, len, "%s%s%s", s->prefix, kind, domain);

	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* store_sts_get - the stored policy of domain: DANESTS_OK (e filled, free
 * with cache_sts_clear), DANESTS_NOTFOUND, DANESTS_TEMP (unreachable or
 * an entry that does not decode).  Read from store_read, or from the
 * write endpoint when primary: a node that has just taken a lock there
 * must see what the lock's last holder wrote before releasing it, and a
 * replica follows the primary with a delay (a miss there would fetch the
 * policy a second time). */
danests_status
store_sts_get(struct store *s, const char *domain, struct cache_sts *e,
    bool primary)
{
	char key[DANESTS_NAME_MAX + DANESTS_STORE_PREFIX_MAX + 8];
	redisReply *r;
	const char *err;
	danests_status st = DANESTS_TEMP;

	if (key_make(s, "sts:", domain, key, sizeof(key)) < 0)
		return DANESTS_TEMP;
	if ((r = commandv(s, s->same || primary ? &s->w : &s->r, "HGET", key,
	    "entry", NULL)) == NULL)
		return DANESTS_TEMP;
	if (r->type == REDIS_REPLY_NIL)
		st = DANESTS_NOTFOUND;
	else if (r->type == REDIS_REPLY_STRING &&
	    cache_sts_decode(r->str, r->len, e, &err) == 0)
		st = DANESTS_OK;
	freeReplyObject(r);
	return st;
}

/* store_sts_put - offer e as domain's policy: DANESTS_OK (*written says
 * whether it replaced what was stored), DANESTS_TEMP (unreachable) */
danests_status
store_sts_put(struct store *s, const char *domain, const struct cache_sts *e,
    bool *written)
{
	char key[DANESTS_NAME_MAX + DANESTS_STORE_PREFIX_MAX + 8];
	char fetched[24], ttl[24];
	redisReply *r;
	char *json;
	time_t now = time(NULL);
	long long ms;

	*written = false;
	if (key_make(s, "sts:", domain, key, sizeof(key)) < 0 ||
	    (json = cache_sts_encode(e)) == NULL)
		return DANESTS_TEMP;
	/* an expired policy (max_age 0 included) still replaces an older
	 * one, for one second */
	ms = e->expires > now ? (long long)(e->expires - now) * 1000 : 1000;
	snprintf(fetched, sizeof(fetched), "%lld", (long long)e->fetched);
	snprintf(ttl, sizeof(ttl), "%lld", ms);
	r = commandv(s, &s->w, "EVAL", put_script, "1", key, fetched, e->id,
	    json, ttl, NULL);
	free(json);
	if (r == NULL)
		return DANESTS_TEMP;
	*written = r->type == REDIS_REPLY_INTEGER && r->integer == 1;
	freeReplyObject(r);
	return DANESTS_OK;
}

/* store_lock - take the lock name for ms milliseconds: DANESTS_OK (token
 * filled, release with store_unlock), DANESTS_NOTFOUND (held by another),
 * DANESTS_TEMP (unreachable) */
danests_status
store_lock(struct store *s, const char *name, unsigned ms,
    char token[STORE_TOKEN_LEN + 1])
{
	char key[DANESTS_NAME_MAX + DANESTS_STORE_PREFIX_MAX + 8];
	unsigned char rnd[STORE_TOKEN_LEN / 2];
	char px[16];
	redisReply *r;
	danests_status st;
	size_t i;

	if (key_make(s, "lock:", name, key, sizeof(key)) < 0)
		return DANESTS_TEMP;
	arc4random_buf(rnd, sizeof(rnd));
	for (i = 0; i < sizeof(rnd); i++)
		snprintf(token + 2 * i, 3, "%02x", rnd[i]);
	snprintf(px, sizeof(px), "%u", ms ? ms : 1);
	if ((r = commandv(s, &s->w, "SET", key, token, "NX", "PX", px,
	    NULL)) == NULL)
		return DANESTS_TEMP;
	st = r->type == REDIS_REPLY_STATUS ? DANESTS_OK : DANESTS_NOTFOUND;
	freeReplyObject(r);
	return st;
}

/* store_unlock - release a lock taken with token (if still ours) */
void
store_unlock(struct store *s, const char *name, const char *token)
{
	char key[DANESTS_NAME_MAX + DANESTS_STORE_PREFIX_MAX + 8];
	redisReply *r;

	if (key_make(s, "lock:", name, key, sizeof(key)) < 0)
		return;
	if ((r = commandv(s, &s->w, "EVAL", unlock_script, "1", key, token,
	    NULL)) != NULL)
		freeReplyObject(r);
}

/* store_unsynced - writes may have been lost since the last
 * store_set_synced (or the store is new) */
bool
store_unsynced(const struct store *s)
{
	return s->unsynced;
}

/* store_set_synced - every local policy was offered */
void
store_set_synced(struct store *s, bool synced)
{
	s->unsynced = !synced;
}

/* store_key - PREFIX NAME into buf; -1 when it does not fit */
int
store_key(const struct store *s, const char *name, char *buf, size_t len)
{
	return key_make(s, "", name, buf, len);
}

/* store_pipeline - n commands (keys already prefixed) on the write
 * endpoint in one round trip, each reply waited for at most
 * store_timeout: DANESTS_OK when every one succeeded, else DANESTS_TEMP
 * (the connection dropped, the outage logged once) */
danests_status
store_pipeline(struct store *s, const struct store_cmd *cmds, size_t n)
{
	redisContext *rc;
	redisReply *r;
	struct nopipe np;
	danests_status st = DANESTS_OK;
	char err[160];
	size_t i;
	void *v;

	nopipe_begin(&np);
	if ((rc = conn_get(s, &s->w)) == NULL) {
		nopipe_end(&np);
		return DANESTS_TEMP;
	}
	for (i = 0; i < n; i++)
		if (redisAppendCommandArgv(rc, cmds[i].argc,
		    (const char **)(uintptr_t)cmds[i].argv, cmds[i].lens) != REDIS_OK) {
			nopipe_end(&np);
			conn_fail(&s->w, "out of memory");
			return DANESTS_TEMP;
		}
	for (i = 0; i < n; i++) {
		if (redisGetReply(rc, &v) != REDIS_OK || v == NULL) {
			nopipe_end(&np);
			/* copied: conn_fail frees rc */
			snprintf(err, sizeof(err), "%s", rc->errstr[0] ?
			    rc->errstr : "no reply");
			conn_fail(&s->w, err);
			return DANESTS_TEMP;
		}
		r = v;
		if (r->type == REDIS_REPLY_ERROR && st == DANESTS_OK) {
			snprintf(err, sizeof(err), "%s: %s", cmds[i].argv[0],
			    r->str);
			danests_log(LOG_WARNING, "store %s: %.200s",
			    s->w.name, err);
			st = DANESTS_TEMP;
		}
		freeReplyObject(r);
	}
	nopipe_end(&np);
	return st;
}

/* store_read_each - a command on the write endpoint (the freshest
 * data) whose reply is an array of strings (SMEMBERS, HGETALL): fn is
 * called with each element; DANESTS_TEMP unreachable or another reply */
danests_status
store_read_each(struct store *s, int argc, const char **argv,
    const size_t *lens, store_each_fn *fn, void *arg)
{
	redisReply *r;
	danests_status st = DANESTS_OK;
	size_t i;

	if ((r = command(s, &s->w, argc, argv, lens)) == NULL)
		return DANESTS_TEMP;
	if (r->type != REDIS_REPLY_ARRAY)
		st = DANESTS_TEMP;
	for (i = 0; st == DANESTS_OK && i < r->elements; i++) {
		if (r->element[i]->type != REDIS_REPLY_STRING)
			st = DANESTS_TEMP;
		else if (fn(arg, r->element[i]->str, r->element[i]->len) != 0)
			st = DANESTS_TEMP;
	}
	freeReplyObject(r);
	return st;
}

/* store_exists - whether key exists: DANESTS_OK yes, DANESTS_NOTFOUND no,
 * DANESTS_TEMP unreachable */
danests_status
store_exists(struct store *s, const char *key)
{
	redisReply *r;
	danests_status st;

	if ((r = commandv(s, &s->w, "EXISTS", key, NULL)) == NULL)
		return DANESTS_TEMP;
	st = r->type == REDIS_REPLY_INTEGER ? (r->integer > 0 ? DANESTS_OK :
	    DANESTS_NOTFOUND) : DANESTS_TEMP;
	freeReplyObject(r);
	return st;
}

/* store_dec_get - the fleet's decision for domain (its JSON, as the
 * node that made it wrote it; the caller checks it) */
danests_status
store_dec_get(struct store *s, const char *domain, char **json)
{
	char key[DANESTS_NAME_MAX + DANESTS_STORE_PREFIX_MAX + 8];
	redisReply *r;
	danests_status st = DANESTS_TEMP;

	*json = NULL;
	if (key_make(s, "dec:", domain, key, sizeof(key)) < 0)
		return DANESTS_TEMP;
	if ((r = commandv(s, s->same ? &s->w : &s->r, "GET", key, NULL)) ==
	    NULL)
		return DANESTS_TEMP;
	if (r->type == REDIS_REPLY_NIL)
		st = DANESTS_NOTFOUND;
	else if (r->type == REDIS_REPLY_STRING && r->len > 0 &&
	    r->len <= STORE_DEC_MAX && strlen(r->str) == r->len &&
	    (*json = strdup(r->str)) != NULL)
		st = DANESTS_OK;
	freeReplyObject(r);
	return st;
}

/* store_dec_put - a decision for the fleet until it expires (a key that
 * Redis drops then); one that has expired is not written */
danests_status
store_dec_put(struct store *s, const char *domain, const char *json,
    time_t expires)
{
	char key[DANESTS_NAME_MAX + DANESTS_STORE_PREFIX_MAX + 8], px[24];
	redisReply *r;
	time_t now = time(NULL);

	if (expires <= now || strlen(json) > STORE_DEC_MAX)
		return DANESTS_OK;
	if (key_make(s, "dec:", domain, key, sizeof(key)) < 0)
		return DANESTS_TEMP;
	snprintf(px, sizeof(px), "%lld", (long long)(expires - now) * 1000);
	if ((r = commandv(s, &s->w, "SET", key, json, "PX", px, NULL)) ==
	    NULL)
		return DANESTS_TEMP;
	freeReplyObject(r);
	return DANESTS_OK;
}

/* store_del - see danests-internal.h */
danests_status
store_del(struct store *s, const char *kind, const char *domain)
{
	char key[DANESTS_NAME_MAX + DANESTS_STORE_PREFIX_MAX + 8];
	redisReply *r;
	danests_status st;

	if (key_make(s, kind, domain, key, sizeof(key)) < 0)
		return DANESTS_TEMP;
	if ((r = commandv(s, &s->w, "DEL", key, NULL)) == NULL)
		return DANESTS_TEMP;
	st = r->type != REDIS_REPLY_INTEGER ? DANESTS_TEMP :
	    r->integer > 0 ? DANESTS_OK : DANESTS_NOTFOUND;
	freeReplyObject(r);
	return st;
}

#else /* !HAVE_HIREDIS: `store` is refused by the configuration */

danests_status
store_new(const struct danests_config *cfg, struct store **out, char *why,
    size_t whylen)
{
	*out = NULL;
	if (cfg->store_url[0] == '\0')
		return DANESTS_OK;
	why_set(why, whylen, "this build has no Redis support (built without "
	    "hiredis)");
	return DANESTS_PERM;
}

void
store_free(struct store *s)
{
	(void)s;
}

danests_status
store_sts_get(struct store *s, const char *domain, struct cache_sts *e,
    bool primary)
{
	return DANESTS_TEMP;
}

danests_status
store_sts_put(struct store *s, const char *domain, const struct cache_sts *e,
    bool *written)
{
	*written = false;
	return DANESTS_TEMP;
}

danests_status
store_lock(struct store *s, const char *name, unsigned ms,
    char token[STORE_TOKEN_LEN + 1])
{
	return DANESTS_TEMP;
}

void
store_unlock(struct store *s, const char *name, const char *token)
{
}

bool
store_unsynced(const struct store *s)
{
	return false;
}

void
store_set_synced(struct store *s, bool synced)
{
}

int
store_key(const struct store *s, const char *name, char *buf, size_t len)
{
	return -1;
}

danests_status
store_pipeline(struct store *s, const struct store_cmd *cmds, size_t n)
{
	return DANESTS_TEMP;
}

danests_status
store_read_each(struct store *s, int argc, const char **argv,
    const size_t *lens, store_each_fn *fn, void *arg)
{
	return DANESTS_TEMP;
}

danests_status
store_exists(struct store *s, const char *key)
{
	return DANESTS_TEMP;
}

danests_status
store_dec_get(struct store *s, const char *domain, char **json)
{
	*json = NULL;
	return DANESTS_TEMP;
}

danests_status
store_del(struct store *s, const char *kind, const char *domain)
{
	return DANESTS_TEMP;
}

danests_status
store_dec_put(struct store *s, const char *domain, const char *json,
    time_t expires)
{
	return DANESTS_TEMP;
}

#endif /* HAVE_HIREDIS */
