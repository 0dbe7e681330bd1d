/*
 * UDP: every worker reads its own dup() of each UDP listener, as
 * Kamailio's children share one socket; the kernel hands each datagram to
 * one reader. Sends go out of the worker's dup, so the source address is
 * the listener's (RFC 3261 §18.2.2: a response leaves from the socket the
 * request came to, which a symmetric NAT needs).
 */
#define _GNU_SOURCE /* recvmmsg */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net_int.h"

/* CRLF keep-alives are what many UAs send over UDP (RFC 5626 §4.4.2 asks
 * for STUN, but §3.5.1's CRLFCRLF is common in the field): not SIP, and
 * nothing to answer. */
static bool only_crlf(const char *p, size_t len)
{
	for (size_t i = 0; i < len; i++) {
		if (p[i] != '\r' && p[i] != '\n')
			return false;
	}
	return true;
}

static void copy_addr(union net_sockaddr *dst, const struct sockaddr *sa)
{
	memset(dst, 0, sizeof(*dst));
	if (sa->sa_family == AF_INET6)
		memcpy(&dst->in6, sa, sizeof(dst->in6));
	else if (sa->sa_family == AF_INET)
		memcpy(&dst->in, sa, sizeof(dst->in));
}

/* One datagram read on s, to the application. */
static void deliver(struct wsock *s, char *buf, size_t len,
                    const struct sockaddr *addr, bool truncated)
{
	struct worker *w = s->w;
	struct net_rx rx;

	if (w->fini_done || len == 0)
		return;
	copy_addr(&rx.src, addr);
	if (truncated) {
		char host[INET6_ADDRSTRLEN];

		net_addr_host(host, sizeof(host), &rx.src);
		LOG_WARN("%s: datagram from %s:%u truncated, dropped",
		         s->lst->name, host, (unsigned)net_addr_port(&rx.src));
		return;
	}
	if (only_crlf(buf, len))
		return;
	net_wheel_sync(w);
	rx.buf = buf;
	rx.len = len;
	rx.proto = NET_UDP;
	rx.lst = s->lst;
	rx.conn_id = 0;
	w->rt->app.on_rx(w, &rx);
}

/*
 * Reading: a poll handle on the socket and recvmmsg, instead of
 * uv_udp_recv_start, whose loop reads until EAGAIN: one wasted syscall
 * per wake-up, and at a few hundred calls per second nearly every
 * datagram is a wake-up of its own. Here a read that returns fewer than
 * UDP_BATCH datagrams ends the turn (the poll is level-triggered: more
 * data wakes the loop again), so a lone datagram costs one recvmmsg.
 */
#define UDP_BATCH  8
#define UDP_ROUNDS 4 /* batches per wake-up, then the loop's turn */

static void poll_cb(uv_poll_t *p, int status, int events)
{
	struct wsock *s = p->data;
	struct worker *w = s->w;
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	union net_sockaddr src[UDP_BATCH];

	(void)events;
	if (status < 0) {
		LOG_WARN("%s: receive error: %s", s->lst->name,
		         uv_strerror(status));
		return;
	}
	for (int round = 0; round < UDP_ROUNDS; round++) {
		for (int i = 0; i < UDP_BATCH; i++) {
			iov[i].iov_base =
			        w->udp_batch + (size_t)i * NET_UDP_BUF;
			iov[i].iov_len = NET_UDP_BUF;
			memset(&mm[i], 0, sizeof(mm[i]));
			mm[i].msg_hdr.msg_iov = &iov[i];
			mm[i].msg_hdr.msg_iovlen = 1;
			mm[i].msg_hdr.msg_name = &src[i];
			mm[i].msg_hdr.msg_namelen = sizeof(src[i]);
		}
		int n = recvmmsg(s->rfd, mm, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				LOG_WARN("%s: receive error: %s", s->lst->name,
				         strerror(errno));
			return;
		}
		for (int i = 0; i < n; i++)
			deliver(s, iov[i].iov_base, mm[i].msg_len, &src[i].sa,
			        mm[i].msg_hdr.msg_flags & MSG_TRUNC);
		if (n < UDP_BATCH)
			return;
	}
}

/* Sending goes through a uv_udp handle on one dup (libuv queues what the
 * socket cannot take at once), reading through a poll handle on another:
 * epoll takes one handle per fd. */
int udp_worker_open(struct worker *w, struct wsock *s)
{
	int fd, err;

	if (w->udp_batch == NULL &&
	    (w->udp_batch = malloc((size_t)UDP_BATCH * NET_UDP_BUF)) == NULL)
		return ENOMEM;
	fd = fcntl(s->lst->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	uv_udp_init(&w->loop, &s->u.udp);
	s->u.udp.data = s;
	s->open = true;
	err = uv_udp_open(&s->u.udp, fd);
	if (err != 0) {
		close(fd);
		return -err;
	}
	s->rfd = fcntl(s->lst->fd, F_DUPFD_CLOEXEC, 0);
	if (s->rfd < 0)
		return errno;
	err = uv_poll_init(&w->loop, &s->rpoll, s->rfd);
	if (err != 0) {
		close(s->rfd);
		s->rfd = -1;
		return -err;
	}
	s->rpoll.data = s;
	return -uv_poll_start(&s->rpoll, UV_READABLE, poll_cb);
}

void udp_stop_reading(struct wsock *s)
{
	if (s->rfd >= 0)
		uv_poll_stop(&s->rpoll);
}

void udp_worker_fini(struct worker *w, struct wsock *s)
{
	(void)w;
	if (s->rfd >= 0)
		close(s->rfd);
	s->rfd = -1;
}

/* A datagram the socket buffer could not take at once. */
struct udp_req {
	uv_udp_send_t req;
	char data[];
};

static void send_cb(uv_udp_send_t *req, int status)
{
	if (status != 0 && status != UV_ECANCELED)
		LOG_DBG("udp: deferred send failed: %s", uv_strerror(status));
	free(req);
}

int udp_send(struct worker *w, const struct net_dst *dst, const char *buf,
             size_t len)
{
	struct rt *rt = w->rt;
	const struct net_listener *l = dst->lst;
	struct wsock *s;
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
	struct udp_req *r;
	int err;

	if (l == NULL)
		l = rt_listener_for(rt, NET_UDP, dst->addr.sa.sa_family);
	if (l == NULL)
		return EAFNOSUPPORT;
	if (l->index >= rt->nlst || rt->lst[l->index].proto != NET_UDP)
		return EINVAL;
	s = &w->socks[l->index];
	if (!s->open)
		return ENOTCONN;
	if (len > NET_UDP_BUF)
		return EMSGSIZE;
	err = uv_udp_try_send(&s->u.udp, &b, 1, &dst->addr.sa);
	if (err >= 0)
		return 0;
	if (err != UV_EAGAIN)
		return -err;
	/* Socket buffer full (or earlier sends queued): let the loop send
	 * a copy when the socket is writable, keeping datagram order. */
	r = malloc(sizeof(*r) + len);
	if (r == NULL)
		return ENOMEM;
	memcpy(r->data, buf, len);
	b = uv_buf_init(r->data, (unsigned)len);
	err = uv_udp_send(&r->req, &s->u.udp, &b, 1, &dst->addr.sa, send_cb);
	if (err != 0) {
		free(r);
		return -err;
	}
	return 0;
}
