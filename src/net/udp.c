/*
 * UDP: every worker reads its own dup() of each UDP listener, as
 * Kamailio's children share one socket; the kernel hands each datagram to
 * one reader. Sends go out of the worker's dup, so the source address is
 * the listener's (RFC 3261 §18.2.2: a response leaves from the socket the
 * request came to, which a symmetric NAT needs).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net_int.h"

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct wsock *s = h->data;

	buf->base = s->w->udp_buf;
	buf->len = sizeof(s->w->udp_buf);
}

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

static void recv_cb(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                    const struct sockaddr *addr, unsigned flags)
{
	struct wsock *s = h->data;
	struct worker *w = s->w;
	struct net_rx rx;

	if (nread < 0) {
		LOG_WARN("%s: receive error: %s", s->lst->name,
		         uv_strerror((int)nread));
		return;
	}
	/* nread 0 without an address: nothing more to read right now. */
	if (addr == NULL || nread == 0 || w->fini_done)
		return;
	copy_addr(&rx.src, addr);
	if (flags & UV_UDP_PARTIAL) {
		char host[INET6_ADDRSTRLEN];

		net_addr_host(host, sizeof(host), &rx.src);
		LOG_WARN("%s: datagram from %s:%u truncated, dropped",
		         s->lst->name, host, (unsigned)net_addr_port(&rx.src));
		return;
	}
	if (only_crlf(buf->base, (size_t)nread))
		return;
	net_wheel_sync(w);
	rx.buf = buf->base;
	rx.len = (size_t)nread;
	rx.proto = NET_UDP;
	rx.lst = s->lst;
	rx.conn_id = 0;
	w->rt->app.on_rx(w, &rx);
}

int udp_worker_open(struct worker *w, struct wsock *s)
{
	int fd, err;

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
	err = uv_udp_recv_start(&s->u.udp, alloc_cb, recv_cb);
	return -err;
}

void udp_stop_reading(struct wsock *s)
{
	uv_udp_recv_stop(&s->u.udp);
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
