/*
 * peer.c - has the LMTP client read everything the relay wrote?
 *
 * OpenSMTPD 6.8's mta (mta_session.c, mta_io) reads its LMTP peer with
 * one read(2) per event, takes one reply line out of what it read and,
 * when bytes are left over, fails the rest of the transaction ("Remote
 * host sent too much data"): the recipients whose replies were in those
 * bytes were delivered by the relay already and are retried, i.e. sent
 * twice.  No pause between replies prevents that when the client is
 * slow to read; only "the client has read the previous reply" does.
 *
 * The kernel knows it for a client on this host:
 *   - unix socket: the bytes we wrote stay charged to our socket until
 *     the reader took them, so SIOCOUTQ is what it has not read yet;
 *   - TCP: the client's socket is found with sock_diag (NETLINK_SOCK_DIAG,
 *     an exact inet_diag lookup, no privilege needed); what its reader has
 *     read is tcpi_bytes_received minus its receive queue (idiag_rqueue),
 *     compared with what we wrote.
 * For a client elsewhere (its socket is not on this host) the answer is
 * "cannot tell", and the caller falls back to pacing by time.
 */
#include "relay.h"

#include <errno.h>
#include <stddef.h>
#include <string.h>
#include <unistd.h>
#include <netinet/in.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/rtnetlink.h>
#include <linux/sock_diag.h>
#include <linux/sockios.h>
#include <linux/tcp.h>

/* peer_init - learn the connection's addresses; p->nl stays -1 until
 * the first TCP query */
void
peer_init(struct peer *p, int fd)
{
	struct sockaddr_in6 *l6 = (struct sockaddr_in6 *)&p->local;
	struct sockaddr_in6 *r6 = (struct sockaddr_in6 *)&p->remote;
	socklen_t len;

	memset(p, 0, sizeof(*p));
	p->nl = -1;
	len = sizeof(p->local);
	if (getsockname(fd, (struct sockaddr *)&p->local, &len) != 0)
		return;
	len = sizeof(p->remote);
	if (p->local.ss_family != AF_UNIX && getpeername(fd,
	    (struct sockaddr *)&p->remote, &len) != 0)
		return;
	p->family = p->local.ss_family;
	/* an IPv4 client of an IPv6 socket has an IPv4 socket */
	if (p->family == AF_INET6 && IN6_IS_ADDR_V4MAPPED(&l6->sin6_addr) &&
	    IN6_IS_ADDR_V4MAPPED(&r6->sin6_addr))
		p->v4mapped = true;
}

/* peer_free - close the diag socket */
void
peer_free(struct peer *p)
{
	if (p->nl >= 0)
		close(p->nl);
	p->nl = -1;
}

/* diag_query - the client's socket: 1 found (*read set to what its
 * reader has read), 0 not on this host, -1 error */
static int
diag_query(struct peer *p, uint64_t *read)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req;
	union {
		struct nlmsghdr nlh;
		char buf[8192];
	} rep;
	struct sockaddr_nl sa;
	struct nlmsghdr *h;
	struct inet_diag_msg *m;
	struct rtattr *a;
	struct tcp_info *ti;
	const struct sockaddr_in *l4 = (const struct sockaddr_in *)&p->local;
	const struct sockaddr_in *r4 = (const struct sockaddr_in *)&p->remote;
	const struct sockaddr_in6 *l6 = (const struct sockaddr_in6 *)&p->local;
	const struct sockaddr_in6 *r6 = (const struct sockaddr_in6 *)&p->remote;
	ssize_t n;
	int alen;

	if (p->nl < 0 && (p->nl = socket(AF_NETLINK, SOCK_DGRAM |
	    SOCK_CLOEXEC, NETLINK_SOCK_DIAG)) < 0)
		return -1;
	memset(&req, 0, sizeof(req));
	req.nlh.nlmsg_len = sizeof(req);
	req.nlh.nlmsg_type = SOCK_DIAG_BY_FAMILY;
	req.nlh.nlmsg_flags = NLM_F_REQUEST;
	req.nlh.nlmsg_seq = ++p->seq;
	req.r.sdiag_protocol = IPPROTO_TCP;
	req.r.idiag_states = ~0U;
	req.r.idiag_ext = 1 << (INET_DIAG_INFO - 1);
	req.r.id.idiag_cookie[0] = INET_DIAG_NOCOOKIE;
	req.r.id.idiag_cookie[1] = INET_DIAG_NOCOOKIE;
	/* the client's socket: its source is our peer, its destination us */
	if (p->family == AF_INET) {
		req.r.sdiag_family = AF_INET;
		req.r.id.idiag_sport = r4->sin_port;
		req.r.id.idiag_dport = l4->sin_port;
		memcpy(req.r.id.idiag_src, &r4->sin_addr, 4);
		memcpy(req.r.id.idiag_dst, &l4->sin_addr, 4);
	} else if (p->v4mapped) {
		req.r.sdiag_family = AF_INET;
		req.r.id.idiag_sport = r6->sin6_port;
		req.r.id.idiag_dport = l6->sin6_port;
		memcpy(req.r.id.idiag_src, &r6->sin6_addr.s6_addr[12], 4);
		memcpy(req.r.id.idiag_dst, &l6->sin6_addr.s6_addr[12], 4);
	} else {
		req.r.sdiag_family = AF_INET6;
		req.r.id.idiag_sport = r6->sin6_port;
		req.r.id.idiag_dport = l6->sin6_port;
		memcpy(req.r.id.idiag_src, &r6->sin6_addr, 16);
		memcpy(req.r.id.idiag_dst, &l6->sin6_addr, 16);
	}
	memset(&sa, 0, sizeof(sa));
	sa.nl_family = AF_NETLINK;
	if (sendto(p->nl, &req, sizeof(req), 0, (struct sockaddr *)&sa,
	    sizeof(sa)) != (ssize_t)sizeof(req))
		return -1;
	for (;;) {
		/* the answer is immediate; never wait for it long */
		struct timeval tv = { 1, 0 };

		(void)setsockopt(p->nl, SOL_SOCKET, SO_RCVTIMEO, &tv,
		    sizeof(tv));
		if ((n = recv(p->nl, &rep, sizeof(rep), 0)) < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		break;
	}
	for (h = &rep.nlh; NLMSG_OK(h, (unsigned)n); h = NLMSG_NEXT(h, n)) {
		if (h->nlmsg_seq != p->seq)
			continue;
		if (h->nlmsg_type == NLMSG_ERROR) {
			struct nlmsgerr *e = NLMSG_DATA(h);

			if (h->nlmsg_len >= NLMSG_LENGTH(sizeof(*e)) &&
			    e->error == -ENOENT)
				return 0;
			return -1;
		}
		if (h->nlmsg_type != SOCK_DIAG_BY_FAMILY ||
		    h->nlmsg_len < NLMSG_LENGTH(sizeof(*m)))
			return -1;
		m = NLMSG_DATA(h);
		alen = (int)(h->nlmsg_len - NLMSG_LENGTH(sizeof(*m)));
		for (a = (struct rtattr *)(m + 1); RTA_OK(a, alen);
		    a = RTA_NEXT(a, alen)) {
			if (a->rta_type != INET_DIAG_INFO)
				continue;
			/* an older kernel's shorter tcp_info: cannot tell */
			if (RTA_PAYLOAD(a) < (int)(offsetof(struct tcp_info,
			    tcpi_bytes_received) + sizeof(ti->tcpi_bytes_received)))
				return -1;
			ti = RTA_DATA(a);
			if (ti->tcpi_bytes_received < m->idiag_rqueue)
				return -1;
			*read = ti->tcpi_bytes_received - m->idiag_rqueue;
			return 1;
		}
		return -1;
	}
	return -1;
}

/* peer_read_all - has the client read all sent bytes we wrote on fd?
 * 1 yes, 0 not yet, -1 cannot tell (a client not on this host, no
 * sock_diag) */
int
peer_read_all(struct peer *p, int fd, uint64_t sent)
{
	uint64_t read;
	int outq;

	switch (p->family) {
	case AF_UNIX:
		if (ioctl(fd, SIOCOUTQ, &outq) != 0)
			return -1;
		return outq == 0;
	case AF_INET:
	case AF_INET6:
		if (p->unknown)
			return -1;
		switch (diag_query(p, &read)) {
		case 1:
			return read >= sent;
		case 0:
			p->unknown = true;	/* not on this host */
			return -1;
		default:
			return -1;
		}
	default:
		return -1;
	}
}
