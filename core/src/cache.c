/*
 * cache.c - the persistent cache shared by every process on the machine
 *
 * One LMDB environment under the cache directory (data.mdb, lock.mdb) with
 * six named databases:
 *
 *   sts       MTA-STS policies, keyed by lower-case domain; the value is
 *             "STS2", a CRC-32 of key and JSON, then a JSON object carrying
 *             a format version ("v").
 *   decision  decisions, keyed by lower-case domain; the value is "DEC2",
 *             a CRC-32 of key and the rest, then the expiry (little-endian
 *             int64) and the decision's JSON text.
 *   meta      "format" (the layout version), "rebuilt" (when a corrupt
 *             environment was last moved aside and rebuilt) and
 *             "generation" (the purge generation).
 *   tlsrpt    TLS reporting counters (report.c): per UTC day, policy
 *             domain and policy, and their failure details; the value is
 *             "RPT1", a CRC-32 of key and the rest, then the record.
 *   tlsrpt_state  TLS report sending state (report.c): per (day, domain)
 *             and per rua target; "RST1", a CRC-32, then the record.
 *   metrics   the counters of processes that serve none themselves (the
 *             Exim module, metrics_store.c): keyed by counter name; "MET1",
 *             a CRC-32, then the count (little-endian uint64).
 *
 * report.c reads and writes the last two through cache_rpt_run: one
 * transaction around a function of its own, so that a counter is read,
 * incremented and written back atomically with respect to every other
 * process.
 *
 * Readers never block writers (LMDB MVCC).  Commits are LMDB's default
 * durable commits, so a process killed at any point leaves the last
 * committed state.  The map starts at CACHE_MAP_SIZE and doubles on
 * MDB_MAP_FULL up to CACHE_MAP_MAX; other processes pick the new size up
 * through MDB_MAP_RESIZED.  MDB_NOTLS lets a handle be used by different
 * threads in turn, and a handle inherited over fork() is reopened in the
 * child (LMDB environments must not cross fork()).
 *
 * A value that fails to decode is reported as DANESTS_TEMP, never as
 * DANESTS_NOTFOUND: a corrupt entry must not read as "no policy".  A
 * corrupt environment (bad header, wrong version, or damage that the walk
 * described at env_verify finds: a crash, an LMDB error, a checksum) is
 * moved aside and rebuilt empty, at open or before a walk of the whole
 * cache (the refresh); the time is kept in "meta" so that every process
 * knows, through cache_was_rebuilt, that policies may have been lost, and
 * a process still holding the old file moves to the new one at its next
 * transaction.  Damage written while a process has the file open is
 * found before its next transaction (see "Damage" below).
 *
 * The shared directory's owner and modes, the refusal of one that others
 * could write, and the full-disk case: see "Shared state" below.  Opens of
 * one directory within a process share one environment: see "One
 * environment per directory and process".
 */
#include "danests-internal.h"

#include <sys/file.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <lmdb.h>
#include <poll.h>
#include <pthread.h>
#include <pwd.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#ifndef CACHE_MAP_SIZE
#define CACHE_MAP_SIZE	((size_t)256 << 20)	/* initial map: 256 MiB */
#endif
#ifndef CACHE_MAP_MAX
#define CACHE_MAP_MAX	((size_t)4 << 30)	/* growth stops here */
#endif
#ifndef CACHE_REBUILD_GRACE
#define CACHE_REBUILD_GRACE (24 * 3600)	/* see cache_was_rebuilt */
#endif
#define CACHE_MAXREADERS 512	/* one slot per concurrent reader */
/* lock.mdb's size, allocated before LMDB maps it: LMDB's reader table for
 * CACHE_MAXREADERS (32,896 bytes with LMDB 0.9) fits; a larger file gives
 * room for more readers, never fewer */
#define CACHE_LOCK_SIZE	((off_t)64 << 10)
#define CACHE_FORMAT	1	/* value layout version */
#define CACHE_STS_MAX	(256 * 1024)	/* encoded policy cap */
#define CACHE_DEC_MAX	(1024 * 1024)	/* decision JSON cap */
#define CACHE_MX_MAX	1024	/* mx patterns per policy */
#define CACHE_NDBS	6	/* named databases (see above) */
/*
 * Stored values: a magic, the CRC-32 of the key and the rest, then the
 * rest (policy: JSON; decision: expiry, JSON).  Values written before the
 * checksum (a bare JSON policy, "DEC1" + expiry + JSON) are still read.
 */
#define STS_MAGIC	"STS2"
#define DEC_MAGIC	"DEC2"
#define DEC_OLD_MAGIC	"DEC1"
#define RPT_MAGIC	"RPT1"
#define RST_MAGIC	"RST1"
#define MET_MAGIC	"MET1"
#define VAL_HDR		8	/* magic and CRC-32 */

/* The service account as this machine knows it. */
struct account {
	uid_t uid;
	gid_t gid;
	bool has_uid;
	bool has_gid;
};

struct cache {
	pthread_mutex_t mu;	/* every operation on env and the fields */
	unsigned refs;		/* under reg_mu: cache_open's not closed */
	dev_t dir_dev;		/* the directory, the registry's key */
	ino_t dir_ino;
	struct cache *next;	/* under reg_mu */
	MDB_env *env;
	MDB_dbi sts;
	MDB_dbi dec;
	MDB_dbi meta;
	MDB_dbi rpt;		/* "tlsrpt" */
	MDB_dbi rst;		/* "tlsrpt_state" */
	MDB_dbi met;		/* "metrics" */
	pid_t pid;		/* process that opened env */
	dev_t data_dev;		/* data.mdb as checked and opened */
	ino_t data_ino;
	struct account acct;	/* as looked up at that open */
	struct stat seen;	/* data.mdb as last known sound here */
	bool has_seen;
	bool shared;		/* the directory is the service group's */
	time_t rebuilt_at;	/* 0: never rebuilt */
	char dir[PATH_MAX];
};

/* cache_path - join the cache directory and a file name */
static int
cache_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n;

	n = snprintf(buf, len, "%s/%s", dir, name);
	return n < 0 || (size_t)n >= len ? -1 : 0;
}

/* cache_key - normalise a domain into a key: lower case, no trailing dot */
static danests_status
cache_key(const char *domain, char *key, size_t keylen, MDB_val *k,
    char *why, size_t whylen)
{
	if (domain == NULL || *domain == '\0' ||
	    name_lower(domain, key, keylen) != DANESTS_OK || *key == '\0') {
		why_set(why, whylen, "cache: invalid domain");
		return DANESTS_PERM;
	}
	k->mv_data = key;
	k->mv_size = strlen(key);
	return DANESTS_OK;
}

/* put_le64 - store a signed 64-bit value little-endian */
static void
put_le64(unsigned char *p, int64_t v)
{
	uint64_t u = (uint64_t)v;
	int i;

	for (i = 0; i < 8; i++)
		p[i] = (unsigned char)(u >> (8 * i));
}

/* get_le64 - load a signed 64-bit little-endian value */
static int64_t
get_le64(const unsigned char *p)
{
	uint64_t u = 0;
	int i;

	for (i = 0; i < 8; i++)
		u |= (uint64_t)p[i] << (8 * i);
	return (int64_t)u;
}

/* crc32 - continue a CRC-32 (ISO-HDLC, as zlib's) over len bytes */
static uint32_t
crc32(uint32_t crc, const void *buf, size_t len)
{
	static const uint32_t t[16] = {
		0x00000000, 0x1db71064, 0x3b6e20c8, 0x26d930ac,
		0x76dc4190, 0x6b6b51f4, 0x4db26158, 0x5005713c,
		0xedb88320, 0xf00f9344, 0xd6d6a3e8, 0xcb61b38c,
		0x9b64c2b0, 0x86d3d2d4, 0xa00ae278, 0xbdbdf21c,
	};
	const unsigned char *p = buf;

	crc = ~crc;
	while (len-- > 0) {
		crc ^= *p++;
		crc = (crc >> 4) ^ t[crc & 15];
		crc = (crc >> 4) ^ t[crc & 15];
	}
	return ~crc;
}

/* value_sum - the checksum of a key and the rest of its value */
static uint32_t
value_sum(const void *key, size_t klen, const void *rest, size_t len)
{
	return crc32(crc32(0, key, klen), rest, len);
}

/* value_seal - a stored value (malloc'ed): magic, checksum, rest */
static void *
value_seal(const char *magic, const MDB_val *k, const void *rest,
    size_t len, MDB_val *v)
{
	unsigned char *p;
	uint32_t sum = value_sum(k->mv_data, k->mv_size, rest, len);
	int i;

	if (len > SIZE_MAX - VAL_HDR || (p = malloc(VAL_HDR + len)) == NULL)
		return NULL;
	memcpy(p, magic, 4);
	for (i = 0; i < 4; i++)
		p[4 + i] = (unsigned char)(sum >> (8 * i));
	memcpy(p + VAL_HDR, rest, len);
	v->mv_data = p;
	v->mv_size = VAL_HDR + len;
	return p;
}

/* value_open - the rest of a stored value after its checksum is checked;
 * -1 when it is damaged (or not of this kind) */
static int
value_open(const char *magic, const void *key, size_t klen,
    const void *val, size_t vlen, const unsigned char **rest, size_t *len)
{
	const unsigned char *p = val;
	uint32_t sum = 0;
	int i;

	if (vlen >= VAL_HDR && memcmp(p, magic, 4) == 0) {
		for (i = 0; i < 4; i++)
			sum |= (uint32_t)p[4 + i] << (8 * i);
		if (sum != value_sum(key, klen, p + VAL_HDR, vlen - VAL_HDR))
			return -1;
		*rest = p + VAL_HDR;
		*len = vlen - VAL_HDR;
		return 0;
	}
	/* written before checksums */
	if (strcmp(magic, STS_MAGIC) == 0 && vlen > 0 && p[0] == '{') {
		*rest = p;
		*len = vlen;
		return 0;
	}
	if (strcmp(magic, DEC_MAGIC) == 0 && vlen >= 4 &&
	    memcmp(p, DEC_OLD_MAGIC, 4) == 0) {
		*rest = p + 4;
		*len = vlen - 4;
		return 0;
	}
	return -1;
}

/* dec_open - expiry and JSON (not terminated) of a stored decision */
static int
dec_open(const void *key, size_t klen, const void *val, size_t vlen,
    time_t *expires, const char **json, size_t *len)
{
	const unsigned char *rest;
	size_t n;

	if (value_open(DEC_MAGIC, key, klen, val, vlen, &rest, &n) < 0 ||
	    n < 8 || memchr(rest + 8, '\0', n - 8) != NULL)
		return -1;
	*expires = (time_t)get_le64(rest);
	*json = (const char *)rest + 8;
	*len = n - 8;
	return 0;
}

/* mode_name - policy mode as stored */
static const char *
mode_name(danests_sts_mode m)
{
	switch (m) {
	case DANESTS_STS_NONE:
		return "none";
	case DANESTS_STS_TESTING:
		return "testing";
	case DANESTS_STS_ENFORCE:
		return "enforce";
	}
	return NULL;
}

/* cache_sts_encode - versioned JSON encoding of a policy entry (malloc'ed);
 * the shared store keeps the same encoding */
char *
cache_sts_encode(const struct cache_sts *e)
{
	json_t *o, *mx;
	char *s = NULL;
	const char *mode;
	size_t i;

	if ((mode = mode_name(e->policy.mode)) == NULL ||
	    e->policy.nmx > CACHE_MX_MAX ||
	    strnlen(e->id, sizeof(e->id)) >= sizeof(e->id) ||
	    strnlen(e->last_error, sizeof(e->last_error)) >=
	    sizeof(e->last_error))
		return NULL;
	if ((mx = json_array()) == NULL)
		return NULL;
	for (i = 0; i < e->policy.nmx; i++) {
		if (e->policy.mx[i] == NULL ||
		    json_array_append_new(mx, json_string(e->policy.mx[i]))) {
			json_decref(mx);
			return NULL;
		}
	}
	o = json_pack("{s:i, s:s, s:I, s:o, s:s, s:I, s:I, s:I, s:s}",
	    "v", CACHE_FORMAT,
	    "mode", mode,
	    "max_age", (json_int_t)e->policy.max_age,
	    "mx", mx,
	    "id", e->id,
	    "fetched", (json_int_t)e->fetched,
	    "expires", (json_int_t)e->expires,
	    "last_check", (json_int_t)e->last_check,
	    "last_error", e->last_error);
	if (o == NULL)
		return NULL;
	s = json_dumps(o, JSON_COMPACT);
	json_decref(o);
	return s;
}

/* get_int - required integer member */
static int
get_int(json_t *o, const char *name, json_int_t *v)
{
	json_t *j = json_object_get(o, name);

	if (!json_is_integer(j))
		return -1;
	*v = json_integer_value(j);
	return 0;
}

/* get_str - required string member */
static const char *
get_str(json_t *o, const char *name)
{
	json_t *j = json_object_get(o, name);

	return json_is_string(j) ? json_string_value(j) : NULL;
}

/* cache_sts_decode - strict inverse of cache_sts_encode; -1 with *err on
 * any defect */
int
cache_sts_decode(const void *buf, size_t len, struct cache_sts *e,
    const char **err)
{
	json_t *o, *mx;
	json_error_t jerr;
	json_int_t v, max_age, fetched, expires, last_check;
	const char *mode, *id, *lerr;
	size_t i;

	memset(e, 0, sizeof(*e));
	*err = "not JSON";
	if (len == 0 || len > CACHE_STS_MAX ||
	    (o = json_loadb(buf, len, JSON_REJECT_DUPLICATES, &jerr)) == NULL)
		return -1;
	*err = "malformed entry";
	if (!json_is_object(o))
		goto bad;
	if (get_int(o, "v", &v) < 0)
		goto bad;
	if (v != CACHE_FORMAT) {
		*err = "unsupported format version";
		goto bad;
	}
	mode = get_str(o, "mode");
	id = get_str(o, "id");
	lerr = get_str(o, "last_error");
	mx = json_object_get(o, "mx");
	if (mode == NULL || id == NULL || lerr == NULL || !json_is_array(mx) ||
	    get_int(o, "max_age", &max_age) < 0 ||
	    get_int(o, "fetched", &fetched) < 0 ||
	    get_int(o, "expires", &expires) < 0 ||
	    get_int(o, "last_check", &last_check) < 0)
		goto bad;
	if (strcmp(mode, "none") == 0)
		e->policy.mode = DANESTS_STS_NONE;
	else if (strcmp(mode, "testing") == 0)
		e->policy.mode = DANESTS_STS_TESTING;
	else if (strcmp(mode, "enforce") == 0)
		e->policy.mode = DANESTS_STS_ENFORCE;
	else
		goto bad;
	if (max_age < 0 || max_age > UINT32_MAX ||
	    strlen(id) >= sizeof(e->id) ||
	    strlen(lerr) >= sizeof(e->last_error) ||
	    json_array_size(mx) > CACHE_MX_MAX)
		goto bad;
	e->policy.max_age = (uint32_t)max_age;
	strlcpy(e->id, id, sizeof(e->id));
	strlcpy(e->last_error, lerr, sizeof(e->last_error));
	e->fetched = (time_t)fetched;
	e->expires = (time_t)expires;
	e->last_check = (time_t)last_check;
	if (json_array_size(mx) > 0) {
		e->policy.mx = xcalloc(json_array_size(mx), sizeof(char *));
		if (e->policy.mx == NULL) {
			*err = "out of memory";
			goto bad;
		}
	}
	for (i = 0; i < json_array_size(mx); i++) {
		json_t *p = json_array_get(mx, i);

		if (!json_is_string(p))
			goto bad;
		if ((e->policy.mx[i] = strdup(json_string_value(p))) == NULL) {
			*err = "out of memory";
			goto bad;
		}
		e->policy.nmx++;
	}
	json_decref(o);
	return 0;
bad:
	json_decref(o);
	cache_sts_clear(e);
	return -1;
}

/* cache_sts_clear - free what cache_sts_get put into an entry */
void
cache_sts_clear(struct cache_sts *e)
{
	size_t i;

	if (e == NULL)
		return;
	for (i = 0; i < e->policy.nmx; i++)
		free(e->policy.mx[i]);
	free(e->policy.mx);
	e->policy.mx = NULL;
	e->policy.nmx = 0;
}

/* env_is_corrupt - does an LMDB error say the files are not a usable env? */
static bool
env_is_corrupt(int rc)
{
	return rc == MDB_INVALID || rc == MDB_VERSION_MISMATCH ||
	    rc == MDB_CORRUPTED || rc == MDB_PAGE_NOTFOUND ||
	    rc == MDB_INCOMPATIBLE;
}

/* dbis_open - open (creating when missing) the named databases */
static int
dbis_open(struct cache *c)
{
	static const char *const names[] = { "sts", "decision", "meta",
	    "tlsrpt", "tlsrpt_state", "metrics" };
	MDB_dbi *dbis[] = { &c->sts, &c->dec, &c->meta, &c->rpt, &c->rst,
	    &c->met };
	MDB_txn *txn;
	MDB_val k, v;
	unsigned flags = MDB_RDONLY;
	int rc, i;

again:
	if ((rc = mdb_txn_begin(c->env, NULL, flags, &txn)) != 0)
		return rc;
	for (i = 0; i < CACHE_NDBS; i++) {
		rc = mdb_dbi_open(txn, names[i], flags ? 0 : MDB_CREATE,
		    dbis[i]);
		if (rc == MDB_NOTFOUND && flags) {
			/* first use: create them in a write transaction */
			mdb_txn_abort(txn);
			flags = 0;
			goto again;
		}
		if (rc != 0) {
			mdb_txn_abort(txn);
			return rc;
		}
	}
	if (flags == 0) {
		unsigned char fmt[8];

		put_le64(fmt, CACHE_FORMAT);
		k.mv_data = "format";
		k.mv_size = 6;
		v.mv_data = fmt;
		v.mv_size = sizeof(fmt);
		if ((rc = mdb_put(txn, c->meta, &k, &v, 0)) != 0) {
			mdb_txn_abort(txn);
			return rc;
		}
	}
	k.mv_data = "rebuilt";
	k.mv_size = 7;
	rc = mdb_get(txn, c->meta, &k, &v);
	if (rc == 0 && v.mv_size == 8)
		c->rebuilt_at = (time_t)get_le64(v.mv_data);
	else if (rc != 0 && rc != MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return rc;
	}
	/* commit, also for a read transaction: it keeps the handles */
	return mdb_txn_commit(txn);
}

/*
 * Shared state.  Every program of every adapter opens the one directory:
 * root (danests check, exim -bt), the daemons as the service account, and
 * Exim's delivery processes as members of the service group.  So whoever
 * creates something makes it the service group's: the directory 2770
 * (setgid: files inherit the group) and files 0660, chowned to the service
 * account when root creates them, and set by fchmod so that no umask
 * narrows them.  Without a service group the cache stays private to its
 * creator (0700 and 0600).
 *
 * Trust: LMDB opens data.mdb and lock.mdb by name and follows symbolic
 * links, so a directory that someone else could write would let them point
 * the cache (written by root) at any file.  The directory must be owned by
 * root, by this user or by the service account, writable by no other user
 * (group write only for the service group or group 0) and no symbolic
 * link; every file in it a regular file with one link, owned by one of
 * those or by a member of the service group, with the same write rule.
 * Once the directory is trusted only trusted users can replace its entries,
 * which closes the window between these checks and LMDB's own open; the
 * identity of data.mdb is compared again after the open.  The directory's
 * ancestors are not checked: they belong to the administrator.
 */
#define CACHE_ACCOUNT	"_danests"	/* service user and group */
#define CACHE_FIX	"chown " CACHE_ACCOUNT ":" CACHE_ACCOUNT " %s; " \
			"chmod %s %s"

/* account_load - look the service account up (absent on a bare system) */
static void
account_load(struct account *a)
{
	struct passwd pw, *pp = NULL;
	struct group gr, *gp = NULL;
	char buf[16384];

	memset(a, 0, sizeof(*a));
	if (getpwnam_r(CACHE_ACCOUNT, &pw, buf, sizeof(buf), &pp) == 0 &&
	    pp != NULL) {
		a->uid = pp->pw_uid;
		a->has_uid = true;
	}
	if (getgrnam_r(CACHE_ACCOUNT, &gr, buf, sizeof(buf), &gp) == 0 &&
	    gp != NULL) {
		a->gid = gp->gr_gid;
		a->has_gid = true;
	}
}

/* account_member - is uid in the service group (primary or listed)? */
static bool
account_member(const struct account *a, uid_t uid)
{
	struct passwd pw, *pp = NULL;
	struct group gr, *gp = NULL;
	char pbuf[4096], gbuf[16384], name[256];
	char **m;

	if (!a->has_gid || getpwuid_r(uid, &pw, pbuf, sizeof(pbuf), &pp) !=
	    0 || pp == NULL)
		return false;
	if (pp->pw_gid == a->gid)
		return true;
	if (strlcpy(name, pp->pw_name, sizeof(name)) >= sizeof(name) ||
	    getgrgid_r(a->gid, &gr, gbuf, sizeof(gbuf), &gp) != 0 ||
	    gp == NULL)
		return false;
	for (m = gp->gr_mem; *m != NULL; m++)
		if (strcmp(*m, name) == 0)
			return true;
	return false;
}

/* trust_fault - why others than root and the service could change an
 * object of the cache (NULL: they can't) */
static const char *
trust_fault(const struct account *a, const struct stat *st, bool file)
{
	uid_t u = st->st_uid;

	if (file && !S_ISREG(st->st_mode))
		return "not a regular file";
	if (!file && !S_ISDIR(st->st_mode))
		return "not a directory";
	if (u != 0 && u != geteuid() && !(a->has_uid && u == a->uid) &&
	    !(file && account_member(a, u)))
		return "owned by another user";
	if (st->st_mode & S_IWOTH)
		return "writable by every user";
	if ((st->st_mode & S_IWGRP) && st->st_gid != 0 &&
	    !(a->has_gid && st->st_gid == a->gid))
		return "writable by another group";
	if (file && st->st_nlink != 1)
		return "hard-linked elsewhere";
	return NULL;
}

/* trust_check - refuse an untrusted object, saying why and what to do */
static int
trust_check(const struct account *a, const struct stat *st, bool file,
    const char *path, const char *dir, char *why, size_t whylen)
{
	const char *fault;

	if ((fault = trust_fault(a, st, file)) == NULL)
		return 0;
	why_set(why, whylen, "cache: %s: %s (uid %u gid %u mode %04o); "
	    "refused; fix: " CACHE_FIX, path, fault, (unsigned)st->st_uid,
	    (unsigned)st->st_gid, (unsigned)(st->st_mode & 07777),
	    file ? path : dir, file ? "0660" : "2770", file ? path : dir);
	return EPERM;
}

/* share - give an object the shared owner and mode (see above); may fail
 * quietly, the trust check that follows has the last word */
static void
share(int fd, const struct account *a, bool file)
{
	struct stat st;

	if (a->has_gid) {
		if (geteuid() == 0 && a->has_uid)
			(void)fchown(fd, a->uid, a->gid);
		else
			(void)fchown(fd, (uid_t)-1, a->gid);
	}
	if (fstat(fd, &st) < 0)
		return;
	if (a->has_gid && st.st_gid == a->gid)
		(void)fchmod(fd, file ? 0660 : 02770);
	else
		(void)fchmod(fd, file ? 0600 : 0700);
}

/* dir_open - open (creating when missing) and check the directory; the
 * descriptor, or -1 with why set */
static int
dir_open(struct cache *c, const struct account *a, bool *shared, char *why,
    size_t whylen)
{
	struct stat lst, st;
	bool made;
	int dfd;

	made = mkdir(c->dir, 0700) == 0;
	if (!made && errno != EEXIST) {
		why_set(why, whylen, "cache: mkdir %s: %s", c->dir,
		    strerror(errno));
		return -1;
	}
	if (lstat(c->dir, &lst) < 0) {
		why_set(why, whylen, "cache: %s: %s", c->dir, strerror(errno));
		return -1;
	}
	if (S_ISLNK(lst.st_mode)) {
		why_set(why, whylen, "cache: %s: a symbolic link; refused: "
		    "give the real directory", c->dir);
		return -1;
	}
	if (!S_ISDIR(lst.st_mode)) {
		why_set(why, whylen, "cache: %s: not a directory", c->dir);
		return -1;
	}
	if ((dfd = open(c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW |
	    O_CLOEXEC)) < 0) {
		why_set(why, whylen, "cache: %s: %s", c->dir, strerror(errno));
		return -1;
	}
	if (made)
		share(dfd, a, false);
	if (fstat(dfd, &st) < 0 || st.st_dev != lst.st_dev ||
	    st.st_ino != lst.st_ino) {
		why_set(why, whylen, "cache: %s: changed while opening",
		    c->dir);
		close(dfd);
		return -1;
	}
	if (trust_check(a, &st, false, c->dir, c->dir, why, whylen) != 0) {
		close(dfd);
		return -1;
	}
	*shared = a->has_gid && st.st_gid == a->gid;
	return dfd;
}

/* file_open - open (creating when missing) and check one file of the
 * directory; the descriptor, or -1 with why set */
static int
file_open(struct cache *c, int dfd, const char *name, int flags,
    const struct account *a, bool shared, struct stat *st, char *why,
    size_t whylen)
{
	char path[PATH_MAX];
	bool made = false;
	int fd;

	if (cache_path(path, sizeof(path), c->dir, name) < 0) {
		why_set(why, whylen, "cache: %s: name too long", c->dir);
		return -1;
	}
	flags |= O_NOFOLLOW | O_CLOEXEC | O_NOCTTY;
	if ((fd = openat(dfd, name, flags | O_CREAT | O_EXCL, 0600)) >= 0)
		made = true;
	else if (errno == EEXIST)
		fd = openat(dfd, name, flags);
	if (fd < 0) {
		if (errno == ELOOP)
			why_set(why, whylen, "cache: %s: a symbolic link; "
			    "refused: remove it", path);
		else
			why_set(why, whylen, "cache: %s: %s%s", path,
			    strerror(errno), errno == EACCES ? "; fix: "
			    "chown " CACHE_ACCOUNT ":" CACHE_ACCOUNT
			    " and chmod 0660 it" : "");
		return -1;
	}
	if (fstat(fd, st) < 0) {
		why_set(why, whylen, "cache: %s: %s", path, strerror(errno));
		close(fd);
		return -1;
	}
	if (made)
		share(fd, a, true);
	else if (trust_check(a, st, true, path, c->dir, why, whylen) != 0) {
		close(fd);
		return -1;
	} else if (shared && ((st->st_mode & 07777) != 0660 ||
	    st->st_gid != a->gid ||
	    (geteuid() == 0 && a->has_uid && st->st_uid != a->uid)))
		share(fd, a, true);	/* left private by an older version */
	if (fstat(fd, st) < 0 ||
	    trust_check(a, st, true, path, c->dir, why, whylen) != 0) {
		if (why != NULL && whylen > 0 && why[0] == '\0')
			why_set(why, whylen, "cache: %s: %s", path,
			    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/*
 * files_prepare - check (creating when missing) data.mdb and lock.mdb
 * before LMDB opens them by name, and give the lock file its blocks.
 * LMDB maps the lock file and writes its reader table through the map;
 * a sparse file on a full disk turns that write into SIGBUS, so the
 * blocks are allocated here, where a full disk is an error (ENOSPC).
 * The data file is written with pwrite(2) (no MDB_WRITEMAP): a full disk
 * fails a commit, it does not raise a signal.
 */
static int
files_prepare(struct cache *c, int dfd, const struct account *a,
    bool shared, struct stat *data, char *why, size_t whylen)
{
	char path[PATH_MAX];
	struct stat st;
	int fd, rc;

	if ((fd = file_open(c, dfd, "data.mdb", O_RDONLY, a, shared, data,
	    why, whylen)) < 0)
		return EPERM;
	c->data_dev = data->st_dev;
	c->data_ino = data->st_ino;
	close(fd);
	/*
	 * LMDB keeps fcntl locks on lock.mdb, and closing any descriptor of
	 * it drops them for the whole process (one that, against LMDB's
	 * rules, has a second environment open on it): open it only when it
	 * lacks its blocks or its shared owner and mode.
	 */
	if (fstatat(dfd, "lock.mdb", &st, AT_SYMLINK_NOFOLLOW) == 0 &&
	    S_ISREG(st.st_mode) && st.st_size >= CACHE_LOCK_SIZE &&
	    (off_t)st.st_blocks * 512 >= st.st_size && (!shared ||
	    ((st.st_mode & 07777) == 0660 && st.st_gid == a->gid &&
	    !(geteuid() == 0 && a->has_uid && st.st_uid != a->uid)))) {
		if (cache_path(path, sizeof(path), c->dir, "lock.mdb") < 0 ||
		    trust_check(a, &st, true, path, c->dir, why, whylen) != 0)
			return EPERM;
		return 0;
	}
	if ((fd = file_open(c, dfd, "lock.mdb", O_RDWR, a, shared, &st, why,
	    whylen)) < 0)
		return EPERM;
	rc = posix_fallocate(fd, 0, st.st_size > CACHE_LOCK_SIZE ?
	    st.st_size : CACHE_LOCK_SIZE);
	close(fd);
	if (rc != 0 && rc != EOPNOTSUPP && rc != EINVAL) {
		why_set(why, whylen, "cache: %s/lock.mdb: cannot allocate "
		    "%lld bytes: %s", c->dir, (long long)CACHE_LOCK_SIZE,
		    strerror(rc));
		return rc;
	}
	return 0;
}

/*
 * Damage.  LMDB trusts its pages: a damaged page number, node offset or
 * size sends a reader outside the map (SIGSEGV) or past the end of the
 * file (SIGBUS).  So before a process reads a data file it has not seen
 * verified, a child process walks all of it: the free list, the named
 * databases, every key in order, each found again by a lookup (branch
 * pages), every value's checksum.  A child that dies or finds a fault
 * means damage, and the environment takes the rebuild path, as a bad
 * header does.  The verdict is kept in "verified" for the data file's
 * device, inode, size and modification time: Exim opens the cache in every
 * delivery process, and only the first opener after a change pays for the
 * walk.  A writer whose data file was verified before its commit carries
 * the verdict over to the state after it, holding mark.lock from before
 * its commit until the verdict is written.  Before every transaction a
 * process compares the file with the state it last knew sound; a change
 * that no verdict covers (damage written into the file) is walked before
 * anything is read.  The daemons' refresh (cache_sts_each) walks again
 * unconditionally, which also catches damage that did not change the
 * file's times (below the file system).  What remains: damage within the
 * time stamp granularity (a jiffy) of a verified state of equal size, and
 * damage between the check and the read.
 */
#define CACHE_WALK_SECONDS 30	/* bound on one walk */

/* walk_db - read every pair of one database (see above); 0 or an error
 * (MDB_CORRUPTED for a fault found here) */
static int
walk_db(MDB_txn *txn, MDB_dbi dbi, const char *magic, size_t last_pgno)
{
	MDB_cursor *cur;
	MDB_val k, v, prev = { 0, NULL }, again;
	volatile uint32_t sink = 0;
	const unsigned char *rest;
	size_t len, i, n, id;
	int rc, op = MDB_FIRST;

	if ((rc = mdb_cursor_open(txn, dbi, &cur)) != 0)
		return rc;
	while ((rc = mdb_cursor_get(cur, &k, &v, op)) == 0) {
		op = MDB_NEXT;
		/* every byte is read here, in the child */
		sink ^= crc32(0, k.mv_data, k.mv_size);
		sink ^= crc32(0, v.mv_data, v.mv_size);
		if (dbi == 0) {
			/* free list: a count, then that many page numbers */
			if (v.mv_size < sizeof(size_t) ||
			    v.mv_size % sizeof(size_t) != 0) {
				rc = MDB_CORRUPTED;
				break;
			}
			memcpy(&n, v.mv_data, sizeof(n));
			if (n != v.mv_size / sizeof(size_t) - 1) {
				rc = MDB_CORRUPTED;
				break;
			}
			for (i = 1; i <= n; i++) {
				memcpy(&id, (char *)v.mv_data + i *
				    sizeof(size_t), sizeof(id));
				if (id < 2 || id > last_pgno)
					break;
			}
			if (i <= n) {
				rc = MDB_CORRUPTED;
				break;
			}
			continue;
		}
		if (dbi == 1)
			continue;	/* the names of the databases */
		if ((prev.mv_data != NULL &&
		    mdb_cmp(txn, dbi, &prev, &k) >= 0) ||
		    mdb_get(txn, dbi, &k, &again) != 0 ||
		    again.mv_data != v.mv_data ||
		    (magic != NULL && value_open(magic, k.mv_data, k.mv_size,
		    v.mv_data, v.mv_size, &rest, &len) < 0)) {
			rc = MDB_CORRUPTED;
			break;
		}
		prev = k;
	}
	mdb_cursor_close(cur);
	(void)sink;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* walk_env - open dir read-only and walk all of it; 0 or an error */
static int
walk_env(const char *dir)
{
	static const struct { const char *name, *magic; } dbs[] = {
		{ "sts", STS_MAGIC }, { "decision", DEC_MAGIC },
		{ "meta", NULL }, { "tlsrpt", RPT_MAGIC },
		{ "tlsrpt_state", RST_MAGIC }, { "metrics", MET_MAGIC },
	};
	MDB_env *env;
	MDB_txn *txn;
	MDB_envinfo info;
	MDB_dbi dbi;
	size_t i;
	int rc;

	if ((rc = mdb_env_create(&env)) != 0)
		return rc;
	if ((rc = mdb_env_set_maxdbs(env, CACHE_NDBS + 1)) != 0 ||
	    (rc = mdb_env_open(env, dir, MDB_RDONLY | MDB_NOTLS, 0)) != 0 ||
	    (rc = mdb_env_info(env, &info)) != 0 ||
	    (rc = mdb_txn_begin(env, NULL, MDB_RDONLY, &txn)) != 0) {
		mdb_env_close(env);
		return rc;
	}
	if ((rc = walk_db(txn, 0, NULL, info.me_last_pgno)) == 0)
		rc = walk_db(txn, 1, NULL, 0);
	for (i = 0; rc == 0 && i < sizeof(dbs) / sizeof(dbs[0]); i++) {
		if ((rc = mdb_dbi_open(txn, dbs[i].name, 0, &dbi)) ==
		    MDB_NOTFOUND) {
			rc = 0;
			continue;
		}
		if (rc == 0)
			rc = walk_db(txn, dbi, dbs[i].magic, 0);
	}
	mdb_txn_abort(txn);
	mdb_env_close(env);
	return rc;
}

/* The child's report. */
struct walk_report {
	char verdict;		/* 'K' sound, 'D' damaged, 'E' error */
	int rc;
};

/* walk_child - the walking process; never returns */
static void __attribute__((noreturn))
walk_child(const char *dir, int fd)
{
	static const int crash[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE,
	    SIGABRT };
	struct walk_report r;
	struct rlimit none = { 0, 0 };
	sigset_t set;
	size_t i;

	/* a crash must end this process, quietly and without a core */
	sigemptyset(&set);
	for (i = 0; i < sizeof(crash) / sizeof(crash[0]); i++) {
		signal(crash[i], SIG_DFL);
		sigaddset(&set, crash[i]);
	}
	sigprocmask(SIG_UNBLOCK, &set, NULL);
	signal(SIGALRM, SIG_DFL);
	(void)setrlimit(RLIMIT_CORE, &none);
	alarm(CACHE_WALK_SECONDS);
	memset(&r, 0, sizeof(r));
	r.rc = walk_env(dir);
	r.verdict = r.rc == 0 ? 'K' : env_is_corrupt(r.rc) ||
	    r.rc == MDB_CURSOR_FULL || r.rc == MDB_BAD_VALSIZE ? 'D' : 'E';
	(void)!write(fd, &r, sizeof(r));
	_exit(0);
}

/* env_walk - walk the environment in dir in a child process: 0 sound,
 * MDB_CORRUPTED damaged, else an error code (why set for both) */
static int
env_walk(const char *dir, char *why, size_t whylen)
{
	struct walk_report r;
	struct pollfd pfd;
	struct timespec t0, t1;
	ssize_t n = 0;
	pid_t pid;
	long left;
	int p[2], status, waited, err;

	if (pipe2(p, O_CLOEXEC) < 0) {
		err = errno;
		why_set(why, whylen, "cache: %s: cannot check: pipe: %s", dir,
		    strerror(err));
		return err;
	}
	if ((pid = fork()) < 0) {
		err = errno;
		close(p[0]);
		close(p[1]);
		why_set(why, whylen, "cache: %s: cannot check: fork: %s", dir,
		    strerror(err));
		return err;
	}
	if (pid == 0) {
		close(p[0]);
		walk_child(dir, p[1]);
	}
	close(p[1]);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	pfd.fd = p[0];
	pfd.events = POLLIN;
	for (;;) {
		clock_gettime(CLOCK_MONOTONIC, &t1);
		left = CACHE_WALK_SECONDS * 1000L -
		    (t1.tv_sec - t0.tv_sec) * 1000L -
		    (t1.tv_nsec - t0.tv_nsec) / 1000000L;
		if (left <= 0)
			break;
		if (poll(&pfd, 1, (int)left) < 0 && errno != EINTR)
			break;
		if (pfd.revents == 0)
			continue;
		do
			n = read(p[0], &r, sizeof(r));
		while (n < 0 && errno == EINTR);
		break;
	}
	close(p[0]);
	if (n != (ssize_t)sizeof(r))
		(void)kill(pid, SIGKILL);	/* hung, or already dead */
	do
		waited = waitpid(pid, &status, 0);
	while (waited < 0 && errno == EINTR);
	if (n == (ssize_t)sizeof(r)) {
		if (r.verdict == 'K')
			return 0;
		if (r.verdict == 'D') {
			why_set(why, whylen, "cache: %s/data.mdb is damaged "
			    "(%s)", dir, mdb_strerror(r.rc));
			return MDB_CORRUPTED;
		}
		why_set(why, whylen, "cache: %s: cannot check: %s", dir,
		    mdb_strerror(r.rc));
		return r.rc ? r.rc : EIO;
	}
	if (n == 0 && (waited < 0 || (WIFSIGNALED(status) &&
	    WTERMSIG(status) != SIGKILL && WTERMSIG(status) != SIGALRM &&
	    WTERMSIG(status) != SIGTERM))) {
		/* only a crash ends the child without its report */
		why_set(why, whylen, "cache: %s/data.mdb is damaged (reading "
		    "it raised signal %d)", dir, waited < 0 ? 0 :
		    WTERMSIG(status));
		return MDB_CORRUPTED;
	}
	why_set(why, whylen, "cache: %s: checking it took over %d s or was "
	    "interrupted", dir, CACHE_WALK_SECONDS);
	return ETIMEDOUT;
}

/* same_state - do two stats show the same contents of data.mdb? */
static bool
same_state(const struct stat *a, const struct stat *b)
{
	return a->st_dev == b->st_dev && a->st_ino == b->st_ino &&
	    a->st_size == b->st_size &&
	    a->st_mtim.tv_sec == b->st_mtim.tv_sec &&
	    a->st_mtim.tv_nsec == b->st_mtim.tv_nsec;
}

/* mark_text - the verdict's key for a data file */
static void
mark_text(const struct stat *st, char *buf, size_t len)
{
	snprintf(buf, len, "%ju %ju %jd %jd.%09ld\n", (uintmax_t)st->st_dev,
	    (uintmax_t)st->st_ino, (intmax_t)st->st_size,
	    (intmax_t)st->st_mtim.tv_sec, (long)st->st_mtim.tv_nsec);
}

/* mark_matches - was this state of data.mdb verified? */
static bool
mark_matches(int dfd, const struct account *a, const struct stat *st)
{
	char want[128], have[128];
	struct stat mst;
	ssize_t n;
	int fd;

	if ((fd = openat(dfd, "verified", O_RDONLY | O_NOFOLLOW |
	    O_CLOEXEC | O_NOCTTY)) < 0)
		return false;
	if (fstat(fd, &mst) < 0 || trust_fault(a, &mst, true) != NULL ||
	    (n = read(fd, have, sizeof(have) - 1)) <= 0) {
		close(fd);
		return false;
	}
	close(fd);
	have[n] = '\0';
	mark_text(st, want, sizeof(want));
	return strcmp(have, want) == 0;
}

/* mark_set - record that this state of data.mdb was verified (failing
 * only costs another walk) */
static void
mark_set(int dfd, const struct account *a, const struct stat *st)
{
	char text[128], tmp[64];
	size_t len;
	int fd;

	mark_text(st, text, sizeof(text));
	len = strlen(text);
	snprintf(tmp, sizeof(tmp), "verified.%ld", (long)getpid());
	(void)unlinkat(dfd, tmp, 0);
	if ((fd = openat(dfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW |
	    O_CLOEXEC | O_NOCTTY, 0600)) < 0)
		return;
	share(fd, a, true);
	if (write(fd, text, len) != (ssize_t)len || close(fd) < 0 ||
	    renameat(dfd, tmp, dfd, "verified") < 0)
		(void)unlinkat(dfd, tmp, 0);
}

/* env_verify - walk data.mdb unless this state of it was verified; 0,
 * MDB_CORRUPTED or an error (why set) */
static int
env_verify(struct cache *c, int dfd, const struct account *a,
    const struct stat *st, char *why, size_t whylen)
{
	struct stat after;
	int rc;

	if (st->st_size == 0 || mark_matches(dfd, a, st))
		return 0;	/* new, or known good */
	if ((rc = env_walk(c->dir, why, whylen)) != 0)
		return rc;
	if (fstatat(dfd, "data.mdb", &after, AT_SYMLINK_NOFOLLOW) == 0 &&
	    same_state(&after, st))
		mark_set(dfd, a, st);
	return 0;
}

/* rebuild_lock - take rebuild.lock (LOCK_SH to open, LOCK_EX to rebuild);
 * the descriptor, or -1 with why set */
static int
rebuild_lock(struct cache *c, int op, char *why, size_t whylen)
{
	struct account a;
	struct stat st;
	bool shared;
	int dfd, fd;

	account_load(&a);
	if ((dfd = dir_open(c, &a, &shared, why, whylen)) < 0)
		return -1;
	fd = file_open(c, dfd, "rebuild.lock", O_RDWR, &a, shared, &st, why,
	    whylen);
	close(dfd);
	if (fd >= 0 && flock(fd, op) < 0) {
		why_set(why, whylen, "cache: %s/rebuild.lock: %s", c->dir,
		    strerror(errno));
		close(fd);
		return -1;
	}
	return fd;
}

/* env_open - check the directory and its files, then open the environment
 * in c->dir (c->env set on success).  An LMDB or errno code; why is set
 * for a refusal.  locked: the caller holds rebuild.lock already. */
static int
env_open(struct cache *c, bool locked, char *why, size_t whylen)
{
	struct account a;
	struct stat st, data;
	MDB_env *env;
	bool shared;
	int rc, dfd, lockfd = -1, fd;

	/* a rebuild must not run between the checks and LMDB's open */
	if (!locked && (lockfd = rebuild_lock(c, LOCK_SH, why, whylen)) < 0)
		return EPERM;
	account_load(&a);
	if ((dfd = dir_open(c, &a, &shared, why, whylen)) < 0) {
		rc = EPERM;
		goto out;
	}
	if ((rc = files_prepare(c, dfd, &a, shared, &data, why, whylen)) ==
	    0)
		rc = env_verify(c, dfd, &a, &data, why, whylen);
	close(dfd);
	if (rc != 0)
		goto out;
	if ((rc = mdb_env_create(&env)) != 0)
		goto out;
	if ((rc = mdb_env_set_mapsize(env, CACHE_MAP_SIZE)) != 0 ||
	    (rc = mdb_env_set_maxreaders(env, CACHE_MAXREADERS)) != 0 ||
	    (rc = mdb_env_set_maxdbs(env, CACHE_NDBS + 1)) != 0 ||
	    (rc = mdb_env_open(env, c->dir, MDB_NOTLS, 0600)) != 0) {
		mdb_env_close(env);
		goto out;
	}
	/* the file LMDB opened is the one checked */
	if (mdb_env_get_fd(env, &fd) != 0 || fstat(fd, &st) < 0 ||
	    st.st_dev != c->data_dev || st.st_ino != c->data_ino) {
		why_set(why, whylen, "cache: %s/data.mdb changed while "
		    "opening", c->dir);
		mdb_env_close(env);
		rc = EPERM;
		goto out;
	}
	c->env = env;
	c->pid = getpid();
	c->acct = a;
	c->seen = data;		/* verified, or new */
	c->has_seen = true;
	c->shared = shared;
	/* slots left by readers that died (Exim processes are killed) */
	(void)mdb_reader_check(env, NULL);
	if ((rc = dbis_open(c)) != 0) {
		mdb_env_close(env);
		c->env = NULL;
	}
out:
	if (lockfd >= 0)
		close(lockfd);
	return rc;
}

/* env_replaced - was data.mdb moved aside (rebuilt) by another process
 * since this one opened it? */
static bool
env_replaced(struct cache *c)
{
	char path[PATH_MAX];
	struct stat st;

	return cache_path(path, sizeof(path), c->dir, "data.mdb") == 0 &&
	    (lstat(path, &st) < 0 || st.st_dev != c->data_dev ||
	    st.st_ino != c->data_ino);
}

/* env_rebuild - move a corrupt environment aside and start afresh; the
 * caller holds rebuild.lock exclusively */
static int
env_rebuild(struct cache *c, time_t now, char *why, size_t whylen)
{
	char path[PATH_MAX], aside[PATH_MAX], suffix[64];
	MDB_txn *txn;
	MDB_val k, v;
	unsigned char t[8];
	int rc;

	snprintf(suffix, sizeof(suffix), "data.mdb.corrupt-%lld",
	    (long long)now);
	if (cache_path(path, sizeof(path), c->dir, "data.mdb") < 0 ||
	    cache_path(aside, sizeof(aside), c->dir, suffix) < 0)
		return ENAMETOOLONG;
	if (rename(path, aside) < 0 && errno != ENOENT)
		return errno;
	/* the lock file's transaction ids belong to the old data file */
	if (cache_path(path, sizeof(path), c->dir, "lock.mdb") < 0)
		return ENAMETOOLONG;
	if (unlink(path) < 0 && errno != ENOENT)
		return errno;
	if ((rc = env_open(c, true, why, whylen)) != 0)
		return rc;
	put_le64(t, (int64_t)now);
	k.mv_data = "rebuilt";
	k.mv_size = 7;
	v.mv_data = t;
	v.mv_size = sizeof(t);
	if ((rc = mdb_txn_begin(c->env, NULL, 0, &txn)) != 0)
		return rc;
	if ((rc = mdb_put(txn, c->meta, &k, &v, 0)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	if ((rc = mdb_txn_commit(txn)) != 0)
		return rc;
	c->rebuilt_at = now;
	why_set(why, whylen, "cache: corrupt environment moved aside to %s; "
	    "rebuilt empty, cached policies were lost", aside);
	return 0;
}

/*
 * Environments inherited over fork() and given up in the child.  They are
 * never closed there: mdb_env_close would clear the parent's reader slots
 * and, by closing a descriptor of lock.mdb, drop the fcntl locks of the
 * child's own environment.  They stay referenced here so that they are
 * not mistaken for leaks; past the last slot they are simply dropped.
 */
static MDB_env *inherited[8];

/* env_forget - give up an environment inherited over fork() */
static void
env_forget(struct cache *c)
{
	size_t i;

	for (i = 0; c->env != NULL && i < sizeof(inherited) /
	    sizeof(inherited[0]); i++)
		if (__sync_bool_compare_and_swap(&inherited[i], NULL,
		    c->env))
			break;
	c->env = NULL;
}

/* env_first - open the environment of a directory not open in this
 * process, rebuilding a corrupt one; 0, or -1 with why set */
static int
env_first(struct cache *c, char *why, size_t whylen)
{
	int rc, lockfd;

	if ((rc = env_open(c, false, why, whylen)) == 0)
		return 0;
	if (!env_is_corrupt(rc)) {
		if (why != NULL && whylen > 0 && why[0] == '\0')
			why_set(why, whylen, "cache: open %s: %s", c->dir,
			    mdb_strerror(rc));
		return -1;
	}

	/*
	 * Corrupt.  Serialise the repair so that two processes never both
	 * move aside, one of them the other's fresh environment: whoever
	 * comes second finds a good one and just uses it.
	 */
	if ((lockfd = rebuild_lock(c, LOCK_EX, why, whylen)) < 0)
		return -1;
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if ((rc = env_open(c, true, why, whylen)) != 0 && env_is_corrupt(rc))
		rc = env_rebuild(c, time(NULL), why, whylen);
	close(lockfd);
	if (rc != 0) {
		if (why != NULL && whylen > 0 && why[0] == '\0')
			why_set(why, whylen, "cache: rebuild %s: %s", c->dir,
			    mdb_strerror(rc));
		if (c->env != NULL)
			mdb_env_close(c->env);
		c->env = NULL;
		return -1;
	}
	return 0;
}

/*
 * One environment per directory and process.  LMDB forbids opening an
 * environment twice in one process: its fcntl locks on lock.mdb belong to
 * the process, so closing one copy drops the locks of the other, and
 * another process that then finds lock.mdb unlocked may initialise the
 * reader table anew under a live reader (and a writer reuse pages that
 * reader still uses).  A daemon's reload opens a new context while the
 * old one finishes its requests, so cache_open of a directory this process
 * has open already (the same device and inode, after dir_open's checks)
 * returns that handle with one reference more; the last cache_close
 * closes the environment.  The registry and the references are under
 * reg_mu, and each handle's mutex serialises the operations on it, since
 * contexts of different threads may now share it (reg_mu is taken before
 * a handle's mutex, never after).  reg_mu is held across a first open, so
 * that two threads never open one directory twice; the walk in that open
 * is bounded by CACHE_WALK_SECONDS.  A handle inherited over fork() stays
 * registered in the child: a cache_open there opens the environment anew,
 * as a first opener would, and so does the first transaction through the
 * inherited handle (cache_ready).  The walking child (env_walk) opens its
 * own environment and touches no handle.  A process that forks while
 * another of its threads is inside the cache must not use it in the child.
 */
static pthread_mutex_t reg_mu = PTHREAD_MUTEX_INITIALIZER;
static struct cache *reg;	/* open handles, under reg_mu */

/* dir_ident - check the directory as env_open will and note its device
 * and inode; 0, or -1 with why set */
static int
dir_ident(struct cache *c, char *why, size_t whylen)
{
	struct account a;
	struct stat st;
	bool shared;
	int dfd;

	account_load(&a);
	if ((dfd = dir_open(c, &a, &shared, why, whylen)) < 0)
		return -1;
	if (fstat(dfd, &st) < 0) {
		why_set(why, whylen, "cache: %s: %s", c->dir, strerror(errno));
		close(dfd);
		return -1;
	}
	close(dfd);
	c->dir_dev = st.st_dev;
	c->dir_ino = st.st_ino;
	return 0;
}

/* cache_open - open or create the cache under dir (see the header), or
 * share the handle of this process that has it open already (above) */
danests_status
cache_open(const char *dir, struct cache **out, char *why, size_t whylen)
{
	struct cache *c, *o;
	size_t len;
	int rc;

	*out = NULL;
	if (why != NULL && whylen > 0)
		why[0] = '\0';	/* stays empty unless rebuilt or failed */
	if (dir == NULL || *dir == '\0') {
		why_set(why, whylen, "cache: no directory");
		return DANESTS_TEMP;
	}
	if ((c = xcalloc(1, sizeof(*c))) == NULL) {
		why_set(why, whylen, "cache: out of memory");
		return DANESTS_TEMP;
	}
	if ((len = strlcpy(c->dir, dir, sizeof(c->dir))) >= sizeof(c->dir) -
	    sizeof("/data.mdb.corrupt-99999999999")) {
		why_set(why, whylen, "cache: directory name too long");
		free(c);
		return DANESTS_TEMP;
	}
	/* "dir/" names what the link points to: check the link itself */
	while (len > 1 && c->dir[len - 1] == '/')
		c->dir[--len] = '\0';
	if (dir_ident(c, why, whylen) < 0) {
		free(c);
		return DANESTS_TEMP;
	}
	pthread_mutex_lock(&reg_mu);
	for (o = reg; o != NULL; o = o->next)
		if (o->dir_dev == c->dir_dev && o->dir_ino == c->dir_ino)
			break;
	if (o != NULL && o->refs < UINT_MAX) {
		rc = 0;
		pthread_mutex_lock(&o->mu);
		if (o->env == NULL || o->pid != getpid()) {
			/* inherited over fork(), or lost since: open it as
			 * a first opener would, rebuild included */
			if (o->env != NULL)
				env_forget(o);
			rc = env_first(o, why, whylen);
		}
		pthread_mutex_unlock(&o->mu);
		if (rc == 0)
			o->refs++;
		pthread_mutex_unlock(&reg_mu);
		free(c);
		if (rc != 0)
			return DANESTS_TEMP;
		*out = o;
		return DANESTS_OK;
	}
	if (o != NULL || env_first(c, why, whylen) < 0) {
		pthread_mutex_unlock(&reg_mu);
		if (o != NULL)
			why_set(why, whylen, "cache: %s: too many handles",
			    c->dir);
		free(c);
		return DANESTS_TEMP;
	}
	pthread_mutex_init(&c->mu, NULL);
	c->refs = 1;
	c->next = reg;
	reg = c;
	pthread_mutex_unlock(&reg_mu);
	*out = c;
	return DANESTS_OK;
}

/* cache_ready - make sure the environment belongs to this process and is
 * still the one in the directory (another process may have rebuilt it) */
static int
cache_ready(struct cache *c)
{
	if (c->env != NULL && c->pid == getpid()) {
		if (!env_replaced(c))
			return 0;
		mdb_env_close(c->env);
		c->env = NULL;
	} else
		env_forget(c);
	return env_open(c, false, NULL, 0);
}

/* cache_close - drop one reference; the last releases the environment
 * (not one inherited over fork) */
void
cache_close(struct cache *c)
{
	struct cache **pp;

	if (c == NULL)
		return;
	pthread_mutex_lock(&reg_mu);
	if (--c->refs > 0) {
		pthread_mutex_unlock(&reg_mu);
		return;
	}
	for (pp = &reg; *pp != NULL; pp = &(*pp)->next)
		if (*pp == c) {
			*pp = c->next;
			break;
		}
	pthread_mutex_unlock(&reg_mu);
	/* no other reference: no operation can be running on it */
	if (c->env != NULL && c->pid == getpid())
		mdb_env_close(c->env);
	else
		env_forget(c);	/* inherited over fork() */
	pthread_mutex_destroy(&c->mu);
	free(c);
}

/*
 * cache_was_rebuilt - was a corrupt environment replaced lately?  True for
 * CACHE_REBUILD_GRACE seconds after the rebuild: long enough for policies
 * of reachable domains to be fetched again, short enough that mail to a
 * domain whose policy host is down is deferred, not held forever.
 */
bool
cache_was_rebuilt(const struct cache *c)
{
	time_t now = time(NULL), at = cache_rebuilt_at(c);

	return at != 0 && now - at < CACHE_REBUILD_GRACE &&
	    now >= at - 300;	/* tolerate a clock step back */
}

/* cache_rebuilt_at - when it was replaced, 0 when never */
time_t
cache_rebuilt_at(const struct cache *c)
{
	struct cache *m = (struct cache *)c;	/* for its mutex only */
	time_t at;

	if (c == NULL)
		return 0;
	pthread_mutex_lock(&m->mu);
	at = c->rebuilt_at;
	pthread_mutex_unlock(&m->mu);
	return at;
}

/* env_drop - let go of the environment in use */
static void
env_drop(struct cache *c)
{
	if (c->env != NULL && c->pid == getpid())
		mdb_env_close(c->env);
	else
		env_forget(c);
	c->env = NULL;
}

/* dir_fd - the cache directory, for the verdict file */
static int
dir_fd(const struct cache *c)
{
	return open(c->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
}

/* cache_check - walk the data file in use in a child (see env_verify);
 * when it is damaged, move it aside and rebuild it.  0: sound (and
 * recorded); 1: rebuilt, why says so; -1: unusable, why says why */
static int
cache_check(struct cache *c, char *why, size_t whylen)
{
	struct stat st, after;
	int rc, lockfd, fd, dfd;

	if ((rc = cache_ready(c)) != 0) {
		why_set(why, whylen, "cache: read: %s", mdb_strerror(rc));
		return -1;
	}
	if (mdb_env_get_fd(c->env, &fd) != 0 || fstat(fd, &st) < 0) {
		why_set(why, whylen, "cache: %s/data.mdb: %s", c->dir,
		    strerror(errno));
		return -1;
	}
	if ((rc = env_walk(c->dir, why, whylen)) == 0) {
		if (fstat(fd, &after) == 0 && same_state(&st, &after)) {
			c->seen = st;
			c->has_seen = true;
			if ((dfd = dir_fd(c)) >= 0) {
				mark_set(dfd, &c->acct, &st);
				close(dfd);
			}
		}
		return 0;
	}
	if (rc != MDB_CORRUPTED)
		return -1;
	if ((lockfd = rebuild_lock(c, LOCK_EX, why, whylen)) < 0)
		return -1;
	/* another process may have rebuilt it meanwhile */
	env_drop(c);
	if (why != NULL && whylen > 0)
		why[0] = '\0';
	if ((rc = env_walk(c->dir, why, whylen)) == 0)
		rc = env_open(c, true, why, whylen);
	else if (rc == MDB_CORRUPTED)
		rc = env_rebuild(c, time(NULL), why, whylen);
	close(lockfd);
	if (rc != 0 && why != NULL && whylen > 0 && why[0] == '\0')
		why_set(why, whylen, "cache: rebuild %s: %s", c->dir,
		    mdb_strerror(rc));
	return rc == 0 ? 1 : -1;
}

/* mark_lock - take mark.lock: LOCK_EX around a commit and the verdict
 * carried over to it, LOCK_SH to read a verdict; the descriptor, or -1
 * (then the reader may walk once more than needed) */
static int
mark_lock(struct cache *c, int dfd, int op)
{
	struct stat st;
	int fd;

	if ((fd = file_open(c, dfd, "mark.lock", O_RDWR, &c->acct, c->shared,
	    &st, NULL, 0)) < 0)
		return -1;
	while (flock(fd, op) < 0)
		if (errno != EINTR) {
			close(fd);
			return -1;
		}
	return fd;
}

/* cache_guard - before a transaction: a data file that changed since this
 * process last knew it sound, and that no one recorded as sound, is walked
 * first, so that damage that changed the file takes the rebuild path
 * before a read meets it.  0, or an error */
static int
cache_guard(struct cache *c)
{
	struct stat st;
	bool known;
	int fd, dfd, lfd;

	if (mdb_env_get_fd(c->env, &fd) != 0 || fstat(fd, &st) < 0)
		return EIO;
	if (c->has_seen && same_state(&st, &c->seen))
		return 0;
	known = false;
	if ((dfd = dir_fd(c)) >= 0) {
		/* no writer is between its commit and its verdict now */
		lfd = mark_lock(c, dfd, LOCK_SH);
		known = fstat(fd, &st) == 0 &&
		    mark_matches(dfd, &c->acct, &st);
		if (lfd >= 0)
			close(lfd);
		close(dfd);
	}
	if (known) {
		c->seen = st;
		c->has_seen = true;
		return 0;
	}
	return cache_check(c, NULL, 0) < 0 ? EIO : 0;
}

/* txn_start - begin a transaction, adopting a map grown elsewhere */
static int
txn_start(struct cache *c, unsigned flags, MDB_txn **txn)
{
	int rc, tries;

	for (tries = 0; tries < 3; tries++) {
		rc = mdb_txn_begin(c->env, NULL, flags, txn);
		if (rc == MDB_MAP_RESIZED)
			rc = mdb_env_set_mapsize(c->env, 0);
		else if (rc == MDB_READERS_FULL)
			rc = mdb_reader_check(c->env, NULL);
		else
			return rc;
		if (rc != 0)
			return rc;
	}
	return MDB_READERS_FULL;
}

/* txn_begin - txn_start on a ready and guarded environment */
static int
txn_begin(struct cache *c, unsigned flags, MDB_txn **txn)
{
	int rc;

	if ((rc = cache_ready(c)) != 0 || (rc = cache_guard(c)) != 0)
		return rc;
	return txn_start(c, flags, txn);
}

/* cache_grow - double the map after MDB_MAP_FULL, up to CACHE_MAP_MAX */
static int
cache_grow(struct cache *c)
{
	MDB_envinfo info;
	size_t size;

	if (mdb_env_info(c->env, &info) != 0 ||
	    info.me_mapsize >= CACHE_MAP_MAX)
		return -1;
	size = info.me_mapsize * 2;
	if (size > CACHE_MAP_MAX)
		size = CACHE_MAP_MAX;
	return mdb_env_set_mapsize(c->env, size) == 0 ? 0 : -1;
}

/* One transaction on the reporting databases (cache_rpt_run). */
struct cache_rtxn {
	struct cache *c;
	MDB_txn *txn;
	int rc;			/* the first LMDB error met, or 0 */
};

#define RTXN_REFUSED	(-1)	/* the function did not return OK */

/* One change to make in a write transaction. */
struct write_op {
	MDB_dbi *dbi;		/* read once the env is ready */
	MDB_val key;
	MDB_val val;
	int del;		/* delete instead of put */
	time_t expired_at;	/* delete only a decision expired by then */
	/* or a function of report.c (cache_rpt_run) */
	cache_rtxn_fn *fn;
	void *arg;
	struct cache *c;
	danests_status st;	/* what fn returned */
	char *why;
	size_t whylen;
};

/* write_apply - the body of a write transaction */
static int
write_apply(MDB_txn *txn, struct write_op *op)
{
	MDB_val cur;
	const char *json;
	size_t len;
	time_t expires;
	int rc;

	if (op->fn != NULL) {
		struct cache_rtxn t = { op->c, txn, 0 };

		op->st = op->fn(op->arg, &t, op->why, op->whylen);
		if (t.rc != 0)
			return t.rc;	/* MDB_MAP_FULL: grow and again */
		return op->st == DANESTS_OK ? 0 : RTXN_REFUSED;
	}
	if (!op->del)
		return mdb_put(txn, *op->dbi, &op->key, &op->val, 0);
	if (op->expired_at != 0) {
		/* another process may have stored a fresh one meanwhile */
		if ((rc = mdb_get(txn, *op->dbi, &op->key, &cur)) != 0)
			return rc;
		if (dec_open(op->key.mv_data, op->key.mv_size, cur.mv_data,
		    cur.mv_size, &expires, &json, &len) == 0 &&
		    expires > op->expired_at)
			return MDB_NOTFOUND;
	}
	return mdb_del(txn, *op->dbi, &op->key, NULL);
}

/* cache_write - run one write transaction, growing the map when full.
 * When the file was verified before the commit (seen under the write
 * lock), the verdict is carried over to the file after it. */
static int
cache_write(struct cache *c, struct write_op *op)
{
	MDB_txn *txn;
	struct stat st;
	int rc, tries, fd, dfd, lfd = -1;
	bool carry;

	if ((rc = cache_ready(c)) != 0 || (rc = cache_guard(c)) != 0)
		return rc;
	/* mark.lock is taken before LMDB's write lock and never held while
	 * waiting for another lock but that one */
	if ((dfd = dir_fd(c)) >= 0)
		lfd = mark_lock(c, dfd, LOCK_EX);
	for (tries = 0; tries < 8; tries++) {
		if ((rc = txn_start(c, 0, &txn)) != 0)
			break;
		carry = dfd >= 0 && mdb_env_get_fd(c->env, &fd) == 0 &&
		    fstat(fd, &st) == 0 && ((c->has_seen &&
		    same_state(&st, &c->seen)) ||
		    mark_matches(dfd, &c->acct, &st));
		if ((rc = write_apply(txn, op)) == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc == 0 && carry && fstat(fd, &st) == 0) {
			mark_set(dfd, &c->acct, &st);
			c->seen = st;
		}
		if (rc != MDB_MAP_FULL || cache_grow(c) < 0)
			break;
	}
	if (lfd >= 0)
		close(lfd);
	if (dfd >= 0)
		close(dfd);
	return rc;
}

/* sts_get_body - read a policy entry (cache_sts_get) */
static danests_status
sts_get_body(struct cache *c, const char *domain, struct cache_sts *out,
    char *why, size_t whylen)
{
	char key[DANESTS_NAME_MAX];
	const char *err;
	const unsigned char *rest;
	size_t len;
	MDB_txn *txn;
	MDB_val k, v;
	danests_status st;
	int rc;

	memset(out, 0, sizeof(*out));
	if ((st = cache_key(domain, key, sizeof(key), &k, why, whylen)) !=
	    DANESTS_OK)
		return st;
	if ((rc = txn_begin(c, MDB_RDONLY, &txn)) != 0) {
		why_set(why, whylen, "cache: read %s: %s", key,
		    mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	rc = mdb_get(txn, c->sts, &k, &v);
	if (rc == MDB_NOTFOUND) {
		mdb_txn_abort(txn);
		return DANESTS_NOTFOUND;
	}
	if (rc != 0) {
		mdb_txn_abort(txn);
		why_set(why, whylen, "cache: read %s: %s", key,
		    mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	if (value_open(STS_MAGIC, k.mv_data, k.mv_size, v.mv_data, v.mv_size,
	    &rest, &len) < 0) {
		err = "checksum mismatch";
		rc = -1;
	} else
		rc = cache_sts_decode(rest, len, out, &err);
	mdb_txn_abort(txn);
	if (rc < 0) {
		why_set(why, whylen, "cache: corrupt policy entry for %s: %s",
		    key, err);
		return DANESTS_TEMP;
	}
	return DANESTS_OK;
}

/* sts_put_body - store (or replace) a policy entry (cache_sts_put) */
static danests_status
sts_put_body(struct cache *c, const char *domain, const struct cache_sts *e,
    char *why, size_t whylen)
{
	char key[DANESTS_NAME_MAX], *s;
	void *sealed;
	struct write_op op;
	danests_status st;
	int rc;

	memset(&op, 0, sizeof(op));
	if ((st = cache_key(domain, key, sizeof(key), &op.key, why,
	    whylen)) != DANESTS_OK)
		return st;
	if ((s = cache_sts_encode(e)) == NULL) {
		why_set(why, whylen, "cache: cannot encode policy for %s",
		    key);
		return DANESTS_PERM;
	}
	if (strlen(s) > CACHE_STS_MAX) {
		free(s);
		why_set(why, whylen, "cache: policy for %s too large", key);
		return DANESTS_PERM;
	}
	op.dbi = &c->sts;
	sealed = value_seal(STS_MAGIC, &op.key, s, strlen(s), &op.val);
	free(s);
	if (sealed == NULL) {
		why_set(why, whylen, "cache: out of memory");
		return DANESTS_TEMP;
	}
	rc = cache_write(c, &op);
	free(sealed);
	if (rc != 0) {
		why_set(why, whylen, "cache: write %s: %s", key,
		    mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	return DANESTS_OK;
}

/* cache_del - delete one key from one database */
static danests_status
cache_del(struct cache *c, MDB_dbi *dbi, const char *domain, char *why,
    size_t whylen)
{
	char key[DANESTS_NAME_MAX];
	struct write_op op;
	danests_status st;
	int rc;

	memset(&op, 0, sizeof(op));
	if ((st = cache_key(domain, key, sizeof(key), &op.key, why,
	    whylen)) != DANESTS_OK)
		return st;
	op.dbi = dbi;
	op.del = 1;
	pthread_mutex_lock(&c->mu);
	rc = cache_write(c, &op);
	pthread_mutex_unlock(&c->mu);
	if (rc == MDB_NOTFOUND)
		return DANESTS_NOTFOUND;
	if (rc != 0) {
		why_set(why, whylen, "cache: delete %s: %s", key,
		    mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	return DANESTS_OK;
}

/* cache_sts_del - delete a policy entry; DANESTS_NOTFOUND if absent */
danests_status
cache_sts_del(struct cache *c, const char *domain, char *why, size_t whylen)
{
	return cache_del(c, &c->sts, domain, why, whylen);
}

/* cache_decision_del - delete a cached decision; NOTFOUND if absent */
danests_status
cache_decision_del(struct cache *c, const char *domain, char *why,
    size_t whylen)
{
	return cache_del(c, &c->dec, domain, why, whylen);
}

/* One raw key/value pair copied out of a read snapshot. */
struct raw_kv {
	char key[DANESTS_NAME_MAX];
	size_t klen;
	void *val;
	size_t len;
};

/* snapshot - copy every pair of a database out of one read transaction, so
 * that callbacks run with no transaction open (they may write, and a map
 * growth must never pull pages from under a live cursor) */
static int
snapshot(struct cache *c, MDB_dbi *dbi, struct raw_kv **out, size_t *n)
{
	struct raw_kv *kv = NULL, *nkv;
	size_t cnt = 0, cap = 0;
	MDB_txn *txn;
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	*out = NULL;
	*n = 0;
	if ((rc = txn_begin(c, MDB_RDONLY, &txn)) != 0)
		return rc;
	if ((rc = mdb_cursor_open(txn, *dbi, &cur)) != 0) {
		mdb_txn_abort(txn);
		return rc;
	}
	while ((rc = mdb_cursor_get(cur, &k, &v, cnt == 0 ? MDB_FIRST :
	    MDB_NEXT)) == 0) {
		if (k.mv_size >= DANESTS_NAME_MAX)
			continue;	/* not a key of ours */
		if (cnt == cap) {
			cap = cap ? cap * 2 : 64;
			if ((nkv = reallocarray(kv, cap, sizeof(*kv))) ==
			    NULL) {
				rc = ENOMEM;
				break;
			}
			kv = nkv;
		}
		memcpy(kv[cnt].key, k.mv_data, k.mv_size);
		kv[cnt].key[k.mv_size] = '\0';
		kv[cnt].klen = k.mv_size;
		if ((kv[cnt].val = malloc(v.mv_size ? v.mv_size : 1)) ==
		    NULL) {
			rc = ENOMEM;
			break;
		}
		memcpy(kv[cnt].val, v.mv_data, v.mv_size);
		kv[cnt].len = v.mv_size;
		cnt++;
	}
	mdb_cursor_close(cur);
	mdb_txn_abort(txn);
	*out = kv;
	*n = cnt;
	return rc == MDB_NOTFOUND ? 0 : rc;
}

/* snapshot_free - release a snapshot */
static void
snapshot_free(struct raw_kv *kv, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		free(kv[i].val);
	free(kv);
}

/* cache_sts_each - call fn for every policy entry of a read snapshot.
 * Entries that fail to decode are skipped; then the status is DANESTS_TEMP
 * and why names the first of them. */
danests_status
cache_sts_each(struct cache *c, cache_sts_each_fn *fn, void *arg, char *why,
    size_t whylen)
{
	struct raw_kv *kv;
	struct cache_sts e;
	const char *err;
	const unsigned char *rest;
	size_t n, i, len, bad = 0;
	int rc, stop = 0;

	/* the callbacks run without the lock: they may use the cache */
	pthread_mutex_lock(&c->mu);
	if (cache_check(c, why, whylen) != 0) {
		pthread_mutex_unlock(&c->mu);
		return DANESTS_TEMP;
	}
	if ((rc = cache_ready(c)) == 0)
		rc = snapshot(c, &c->sts, &kv, &n);
	pthread_mutex_unlock(&c->mu);
	if (rc != 0) {
		why_set(why, whylen, "cache: read: %s", mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	for (i = 0; i < n && !stop; i++) {
		if (value_open(STS_MAGIC, kv[i].key, kv[i].klen, kv[i].val,
		    kv[i].len, &rest, &len) < 0) {
			if (bad++ == 0)
				why_set(why, whylen, "cache: corrupt policy "
				    "entry for %s: checksum mismatch",
				    kv[i].key);
			continue;
		}
		if (cache_sts_decode(rest, len, &e, &err) < 0) {
			if (bad++ == 0)
				why_set(why, whylen, "cache: corrupt policy "
				    "entry for %s: %s", kv[i].key, err);
			continue;
		}
		stop = fn(arg, kv[i].key, &e);
		cache_sts_clear(&e);
	}
	snapshot_free(kv, n);
	return bad ? DANESTS_TEMP : DANESTS_OK;
}

/* cache_decision_each - call fn for every cached decision (expired ones
 * included, with their expiry); undecodable entries as in cache_sts_each */
danests_status
cache_decision_each(struct cache *c, cache_decision_each_fn *fn, void *arg,
    char *why, size_t whylen)
{
	struct raw_kv *kv;
	size_t n, i, len, bad = 0;
	const char *text;
	char *json;
	time_t expires;
	int rc, stop = 0;

	/* the callbacks run without the lock: they may use the cache */
	pthread_mutex_lock(&c->mu);
	if (cache_check(c, why, whylen) != 0) {
		pthread_mutex_unlock(&c->mu);
		return DANESTS_TEMP;
	}
	if ((rc = cache_ready(c)) == 0)
		rc = snapshot(c, &c->dec, &kv, &n);
	pthread_mutex_unlock(&c->mu);
	if (rc != 0) {
		why_set(why, whylen, "cache: read: %s", mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	for (i = 0; i < n && !stop; i++) {
		if (dec_open(kv[i].key, kv[i].klen, kv[i].val, kv[i].len,
		    &expires, &text, &len) < 0 ||
		    (json = strndup(text, len)) == NULL) {
			if (bad++ == 0)
				why_set(why, whylen, "cache: corrupt decision "
				    "entry for %s", kv[i].key);
			continue;
		}
		stop = fn(arg, kv[i].key, json, expires);
		free(json);
	}
	snapshot_free(kv, n);
	return bad ? DANESTS_TEMP : DANESTS_OK;
}

/* decision_get_body - a cached decision still valid at now (malloc'ed
 * JSON in *json); DANESTS_NOTFOUND when absent or expired */
static danests_status
decision_get_body(struct cache *c, const char *domain, time_t now,
    char **json, char *why, size_t whylen)
{
	char key[DANESTS_NAME_MAX];
	const char *text;
	size_t len;
	struct write_op op;
	MDB_txn *txn;
	MDB_val k, v;
	danests_status st;
	time_t expires;
	int rc;

	*json = NULL;
	if ((st = cache_key(domain, key, sizeof(key), &k, why, whylen)) !=
	    DANESTS_OK)
		return st;
	if ((rc = txn_begin(c, MDB_RDONLY, &txn)) != 0) {
		why_set(why, whylen, "cache: read %s: %s", key,
		    mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	if ((rc = mdb_get(txn, c->dec, &k, &v)) != 0) {
		mdb_txn_abort(txn);
		if (rc == MDB_NOTFOUND)
			return DANESTS_NOTFOUND;
		why_set(why, whylen, "cache: read %s: %s", key,
		    mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	if (dec_open(k.mv_data, k.mv_size, v.mv_data, v.mv_size, &expires,
	    &text, &len) < 0) {
		mdb_txn_abort(txn);
		why_set(why, whylen, "cache: corrupt decision entry for %s",
		    key);
		return DANESTS_TEMP;
	}
	if (expires > now && (*json = strndup(text, len)) == NULL) {
		mdb_txn_abort(txn);
		why_set(why, whylen, "cache: out of memory");
		return DANESTS_TEMP;
	}
	mdb_txn_abort(txn);
	if (expires > now)
		return DANESTS_OK;

	/* expired: drop it now, unless a fresh one replaced it meanwhile;
	 * failing to delete changes nothing for the caller */
	memset(&op, 0, sizeof(op));
	op.dbi = &c->dec;
	op.key = k;
	op.del = 1;
	op.expired_at = now;
	(void)cache_write(c, &op);
	return DANESTS_NOTFOUND;
}

/* decision_put_body - store a decision's JSON until expires */
static danests_status
decision_put_body(struct cache *c, const char *domain, const char *json,
    time_t expires, char *why, size_t whylen)
{
	char key[DANESTS_NAME_MAX];
	unsigned char *buf;
	void *sealed;
	struct write_op op;
	danests_status st;
	size_t len;
	int rc;

	memset(&op, 0, sizeof(op));
	if ((st = cache_key(domain, key, sizeof(key), &op.key, why,
	    whylen)) != DANESTS_OK)
		return st;
	if (json == NULL || (len = strlen(json)) > CACHE_DEC_MAX) {
		why_set(why, whylen, "cache: decision for %s missing or too "
		    "large", key);
		return DANESTS_PERM;
	}
	if ((buf = malloc(8 + len)) == NULL) {
		why_set(why, whylen, "cache: out of memory");
		return DANESTS_TEMP;
	}
	put_le64(buf, (int64_t)expires);
	memcpy(buf + 8, json, len);
	sealed = value_seal(DEC_MAGIC, &op.key, buf, 8 + len, &op.val);
	free(buf);
	if (sealed == NULL) {
		why_set(why, whylen, "cache: out of memory");
		return DANESTS_TEMP;
	}
	op.dbi = &c->dec;
	rc = cache_write(c, &op);
	free(sealed);
	if (rc != 0) {
		why_set(why, whylen, "cache: write %s: %s", key,
		    mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	return DANESTS_OK;
}

/* generation_body - the purge generation, "generation" in meta: every
 * purge adds one (bump), and a daemon that keeps decisions in memory reads
 * it before reusing one, so a purge reaches running daemons at once.  0
 * when never bumped.  DANESTS_TEMP when the cache cannot be read or
 * written. */
static danests_status
generation_body(struct cache *c, bool bump, uint64_t *gen, char *why,
    size_t whylen)
{
	unsigned char buf[8];
	MDB_txn *txn;
	MDB_val k, v;
	int rc, tries;

	*gen = 0;
	k.mv_data = "generation";
	k.mv_size = 10;
	for (tries = 0; tries < 8; tries++) {
		if ((rc = txn_begin(c, bump ? 0 : MDB_RDONLY, &txn)) != 0)
			break;
		rc = mdb_get(txn, c->meta, &k, &v);
		if (rc == 0 && v.mv_size == sizeof(buf))
			*gen = (uint64_t)get_le64(v.mv_data);
		else if (rc != MDB_NOTFOUND) {
			mdb_txn_abort(txn);
			rc = rc == 0 ? MDB_CORRUPTED : rc;
			break;
		}
		if (!bump) {
			mdb_txn_abort(txn);
			return DANESTS_OK;
		}
		put_le64(buf, (int64_t)++*gen);
		v.mv_data = buf;
		v.mv_size = sizeof(buf);
		if ((rc = mdb_put(txn, c->meta, &k, &v, 0)) == 0)
			rc = mdb_txn_commit(txn);
		else
			mdb_txn_abort(txn);
		if (rc == 0)
			return DANESTS_OK;
		if (rc != MDB_MAP_FULL || cache_grow(c) < 0)
			break;
	}
	why_set(why, whylen, "cache: generation: %s", mdb_strerror(rc));
	return DANESTS_TEMP;
}

/*
 * The entry points below hold the handle's mutex for the whole of one
 * operation: handles are shared between contexts (see "One environment
 * per directory and process"), and cache_ready may replace the
 * environment under another thread's transaction.
 */

danests_status
cache_sts_get(struct cache *c, const char *domain, struct cache_sts *out,
    char *why, size_t whylen)
{
	danests_status st;

	pthread_mutex_lock(&c->mu);
	st = sts_get_body(c, domain, out, why, whylen);
	pthread_mutex_unlock(&c->mu);
	return st;
}

danests_status
cache_sts_put(struct cache *c, const char *domain, const struct cache_sts *e,
    char *why, size_t whylen)
{
	danests_status st;

	pthread_mutex_lock(&c->mu);
	st = sts_put_body(c, domain, e, why, whylen);
	pthread_mutex_unlock(&c->mu);
	return st;
}

danests_status
cache_decision_get(struct cache *c, const char *domain, time_t now,
    char **json, char *why, size_t whylen)
{
	danests_status st;

	pthread_mutex_lock(&c->mu);
	st = decision_get_body(c, domain, now, json, why, whylen);
	pthread_mutex_unlock(&c->mu);
	return st;
}

danests_status
cache_decision_put(struct cache *c, const char *domain, const char *json,
    time_t expires, char *why, size_t whylen)
{
	danests_status st;

	pthread_mutex_lock(&c->mu);
	st = decision_put_body(c, domain, json, expires, why, whylen);
	pthread_mutex_unlock(&c->mu);
	return st;
}

danests_status
cache_generation(struct cache *c, bool bump, uint64_t *gen, char *why,
    size_t whylen)
{
	danests_status st;

	pthread_mutex_lock(&c->mu);
	st = generation_body(c, bump, gen, why, whylen);
	pthread_mutex_unlock(&c->mu);
	return st;
}

/*
 * The reporting databases.  report.c owns the layout of their records;
 * here they are sealed (magic and CRC-32 of key and record, as the other
 * values) and opened again, in one transaction per cache_rpt_run.
 */

/* rdb - the database and magic of a reporting database */
static MDB_dbi
rdb(const struct cache_rtxn *t, enum cache_rdb db, const char **magic)
{
	if (db == CACHE_RDB_METRICS) {
		*magic = MET_MAGIC;
		return t->c->met;
	}
	*magic = db == CACHE_RDB_STATE ? RST_MAGIC : RPT_MAGIC;
	return db == CACHE_RDB_STATE ? t->c->rst : t->c->rpt;
}

/* rtxn_fail - note an LMDB error of a transaction; DANESTS_TEMP */
static danests_status
rtxn_fail(struct cache_rtxn *t, int rc, const char *what, char *why,
    size_t whylen)
{
	if (t->rc == 0)
		t->rc = rc;
	why_set(why, whylen, "cache: report %s: %s", what, mdb_strerror(rc));
	return DANESTS_TEMP;
}

/* rtxn_open - the record of a stored value, checked; DANESTS_TEMP when
 * damaged (never read as absent) */
static danests_status
rtxn_open(const char *magic, const MDB_val *k, const MDB_val *v,
    const unsigned char **val, size_t *len, char *why, size_t whylen)
{
	if (value_open(magic, k->mv_data, k->mv_size, v->mv_data, v->mv_size,
	    val, len) < 0 || *len == 0) {
		why_set(why, whylen, "cache: corrupt report entry "
		    "(checksum mismatch)");
		return DANESTS_TEMP;
	}
	return DANESTS_OK;
}

/* cache_rpt_get - see danests-internal.h */
danests_status
cache_rpt_get(struct cache_rtxn *t, enum cache_rdb db, const void *key,
    size_t klen, const unsigned char **val, size_t *len, char *why,
    size_t whylen)
{
	const char *magic;
	MDB_dbi dbi = rdb(t, db, &magic);
	MDB_val k, v;
	int rc;

	k.mv_data = (void *)key;
	k.mv_size = klen;
	if ((rc = mdb_get(t->txn, dbi, &k, &v)) == MDB_NOTFOUND)
		return DANESTS_NOTFOUND;
	if (rc != 0)
		return rtxn_fail(t, rc, "read", why, whylen);
	return rtxn_open(magic, &k, &v, val, len, why, whylen);
}

/* cache_rpt_put - see danests-internal.h */
danests_status
cache_rpt_put(struct cache_rtxn *t, enum cache_rdb db, const void *key,
    size_t klen, const void *val, size_t len, char *why, size_t whylen)
{
	const char *magic;
	MDB_dbi dbi = rdb(t, db, &magic);
	MDB_val k, v;
	void *sealed;
	int rc;

	k.mv_data = (void *)key;
	k.mv_size = klen;
	if ((sealed = value_seal(magic, &k, val, len, &v)) == NULL) {
		why_set(why, whylen, "cache: out of memory");
		return DANESTS_TEMP;
	}
	rc = mdb_put(t->txn, dbi, &k, &v, 0);
	free(sealed);
	return rc == 0 ? DANESTS_OK : rtxn_fail(t, rc, "write", why, whylen);
}

/* cache_rpt_del - see danests-internal.h */
danests_status
cache_rpt_del(struct cache_rtxn *t, enum cache_rdb db, const void *key,
    size_t klen, char *why, size_t whylen)
{
	const char *magic;
	MDB_dbi dbi = rdb(t, db, &magic);
	MDB_val k;
	int rc;

	k.mv_data = (void *)key;
	k.mv_size = klen;
	if ((rc = mdb_del(t->txn, dbi, &k, NULL)) == MDB_NOTFOUND)
		return DANESTS_NOTFOUND;
	return rc == 0 ? DANESTS_OK : rtxn_fail(t, rc, "delete", why, whylen);
}

/* cache_rpt_seek - see danests-internal.h */
danests_status
cache_rpt_seek(struct cache_rtxn *t, enum cache_rdb db, const void *from,
    size_t fromlen, const unsigned char **key, size_t *klen,
    const unsigned char **val, size_t *len, char *why, size_t whylen)
{
	const char *magic;
	MDB_dbi dbi = rdb(t, db, &magic);
	MDB_cursor *cur;
	MDB_val k, v;
	int rc;

	if ((rc = mdb_cursor_open(t->txn, dbi, &cur)) != 0)
		return rtxn_fail(t, rc, "read", why, whylen);
	k.mv_data = (void *)from;
	k.mv_size = fromlen;
	if (fromlen == 0)
		rc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
	else
		rc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
	mdb_cursor_close(cur);
	if (rc == MDB_NOTFOUND)
		return DANESTS_NOTFOUND;
	if (rc != 0)
		return rtxn_fail(t, rc, "read", why, whylen);
	*key = k.mv_data;
	*klen = k.mv_size;
	return rtxn_open(magic, &k, &v, val, len, why, whylen);
}

/* cache_rpt_run - see danests-internal.h */
danests_status
cache_rpt_run(struct cache *c, bool write, cache_rtxn_fn *fn, void *arg,
    char *why, size_t whylen)
{
	struct write_op op;
	struct cache_rtxn t;
	danests_status st;
	int rc;

	pthread_mutex_lock(&c->mu);
	if (write) {
		memset(&op, 0, sizeof(op));
		op.fn = fn;
		op.arg = arg;
		op.c = c;
		op.why = why;
		op.whylen = whylen;
		op.st = DANESTS_TEMP;
		rc = cache_write(c, &op);
		pthread_mutex_unlock(&c->mu);
		if (rc == 0)
			return DANESTS_OK;
		if (rc == RTXN_REFUSED)
			return op.st;
		why_set(why, whylen, "cache: report write: %s",
		    mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	if ((rc = txn_begin(c, MDB_RDONLY, &t.txn)) != 0) {
		pthread_mutex_unlock(&c->mu);
		why_set(why, whylen, "cache: report read: %s",
		    mdb_strerror(rc));
		return DANESTS_TEMP;
	}
	t.c = c;
	t.rc = 0;
	st = fn(arg, &t, why, whylen);
	mdb_txn_abort(t.txn);
	pthread_mutex_unlock(&c->mu);
	return st;
}
