/*
 * smbench.c - closed-loop socketmap load client
 *
 *   smbench HOST PORT MAPNAME CLIENTS SECONDS DOMAINFILE
 *
 * Opens CLIENTS connections; each sends one request ("MAPNAME DOMAIN" as
 * a netstring, domains taken round-robin from DOMAINFILE), waits for the
 * reply, sends the next, for SECONDS.  Prints one line:
 *   clients=N requests=N qps=N p50_us=N p99_us=N errors=N replies=OK:N,NOTFOUND:N,TEMP:N,other:N
 * Single-threaded (epoll), so the client costs little CPU next to the
 * server it measures.
 */
#include <sys/epoll.h>
#include <sys/socket.h>

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAXC	1024
#define MAXD	100000
#define MAXLAT	(20 * 1000 * 1000)

struct client {
	int fd;
	size_t next;		/* domain index */
	uint64_t sent_ns;
	char in[4096];
	size_t inlen;
};

static char *domains[MAXD];
static size_t ndomains;
static const char *mapname;
static uint32_t *lat;		/* microseconds */
static size_t nlat;
static unsigned long nok, nnotfound, ntemp, nother, nerr;

/* now_ns - monotonic clock */
static uint64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* send_req - the next request of client c */
static int
send_req(struct client *c)
{
	char q[600], buf[700];
	int n, m;

	n = snprintf(q, sizeof(q), "%s %s", mapname, domains[c->next]);
	c->next = (c->next + 1) % ndomains;
	m = snprintf(buf, sizeof(buf), "%d:%s,", n, q);
	c->sent_ns = now_ns();
	return write(c->fd, buf, (size_t)m) == m ? 0 : -1;
}

/* take_reply - a complete netstring reply in c->in?  1 yes, 0 no, -1 bad */
static int
take_reply(struct client *c)
{
	size_t i, n = 0;
	const char *p;

	for (i = 0; i < c->inlen && c->in[i] >= '0' && c->in[i] <= '9'; i++)
		n = n * 10 + (size_t)(c->in[i] - '0');
	if (i == c->inlen)
		return 0;
	if (c->in[i] != ':' || n > sizeof(c->in))
		return -1;
	if (c->inlen < i + 1 + n + 1)
		return 0;
	p = c->in + i + 1;
	if (n >= 3 && memcmp(p, "OK ", 3) == 0)
		nok++;
	else if (n >= 8 && memcmp(p, "NOTFOUND", 8) == 0)
		nnotfound++;
	else if (n >= 4 && memcmp(p, "TEMP", 4) == 0)
		ntemp++;
	else
		nother++;
	memmove(c->in, c->in + i + 2 + n, c->inlen - (i + 2 + n));
	c->inlen -= i + 2 + n;
	return 1;
}

static int
cmp32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

int
main(int argc, char **argv)
{
	static struct client cl[MAXC];
	struct epoll_event ev, evs[MAXC];
	struct sockaddr_in sin;
	char line[600];
	FILE *fp;
	int ep, nc, secs, i, n, one = 1;
	uint64_t start, end, t;
	ssize_t r;

	if (argc != 7) {
		fprintf(stderr, "usage: smbench HOST PORT MAPNAME CLIENTS "
		    "SECONDS DOMAINFILE\n");
		return 64;
	}
	mapname = argv[3];
	nc = atoi(argv[4]);
	secs = atoi(argv[5]);
	if (nc < 1 || nc > MAXC || secs < 1)
		return 64;
	if ((fp = fopen(argv[6], "r")) == NULL) {
		perror(argv[6]);
		return 66;
	}
	while (ndomains < MAXD && fgets(line, sizeof(line), fp) != NULL) {
		line[strcspn(line, " \t\r\n")] = '\0';
		if (line[0] != '\0' && line[0] != '#')
			domains[ndomains++] = strdup(line);
	}
	fclose(fp);
	if (ndomains == 0 || (lat = calloc(MAXLAT, sizeof(*lat))) == NULL)
		return 66;
	memset(&sin, 0, sizeof(sin));
	sin.sin_family = AF_INET;
	sin.sin_port = htons((uint16_t)atoi(argv[2]));
	if (inet_pton(AF_INET, argv[1], &sin.sin_addr) != 1)
		return 64;
	if ((ep = epoll_create1(0)) < 0)
		return 71;
	for (i = 0; i < nc; i++) {
		cl[i].next = (size_t)i % ndomains;
		if ((cl[i].fd = socket(AF_INET, SOCK_STREAM, 0)) < 0 ||
		    connect(cl[i].fd, (struct sockaddr *)&sin,
		    sizeof(sin)) != 0) {
			perror("connect");
			return 69;
		}
		setsockopt(cl[i].fd, IPPROTO_TCP, TCP_NODELAY, &one,
		    sizeof(one));
		ev.events = EPOLLIN;
		ev.data.ptr = &cl[i];
		epoll_ctl(ep, EPOLL_CTL_ADD, cl[i].fd, &ev);
	}
	start = now_ns();
	end = start + (uint64_t)secs * 1000000000u;
	for (i = 0; i < nc; i++)
		if (send_req(&cl[i]) != 0)
			nerr++;
	while ((t = now_ns()) < end) {
		n = epoll_wait(ep, evs, MAXC, 100);
		for (i = 0; i < n; i++) {
			struct client *c = evs[i].data.ptr;

			r = read(c->fd, c->in + c->inlen,
			    sizeof(c->in) - c->inlen);
			if (r <= 0) {
				nerr++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				continue;
			}
			c->inlen += (size_t)r;
			switch (take_reply(c)) {
			case 0:
				continue;
			case -1:
				nerr++;
				epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
				continue;
			}
			t = now_ns();
			if (nlat < MAXLAT)
				lat[nlat++] = (uint32_t)((t - c->sent_ns) / 1000);
			if (t < end && send_req(c) != 0)
				nerr++;
		}
	}
	t = now_ns();
	qsort(lat, nlat, sizeof(*lat), cmp32);
	printf("clients=%d requests=%zu qps=%.0f p50_us=%u p99_us=%u "
	    "errors=%lu replies=OK:%lu,NOTFOUND:%lu,TEMP:%lu,other:%lu\n",
	    nc, nlat, (double)nlat * 1e9 / (double)(t - start),
	    nlat ? lat[nlat / 2] : 0, nlat ? lat[nlat * 99 / 100] : 0, nerr,
	    nok, nnotfound, ntemp, nother);
	return 0;
}
