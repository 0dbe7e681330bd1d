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
#include <sys/epoll.h>
#include <sys/eventfd.h>
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
 * Reading. Every worker reads every UDP socket (through its own dup), as
 * Kamailio's children do; but where a blocking recvfrom wakes one child
 * per datagram, an epoll on the socket wakes every worker, and all but one
 * find nothing. EPOLLEXCLUSIVE asks the kernel to wake one, but it picks
 * among epolls that a thread is waiting in: an exclusive registration in
 * an epoll of its own, polled by the loop's epoll, woke every worker all
 * the same (two workers at 500 calls/s: 0.44 reads per call met EAGAIN
 * after a wake-up for nothing). So each worker registers its dups of the
 * shared listeners EPOLLEXCLUSIVE in the loop's own epoll, the one its
 * thread sleeps in. libuv must not see those fds as its own (it would
 * register them again, without the flag, and abort on EEXIST): their
 * events carry the number of shared_fd, an eventfd never written that a
 * uv_poll watches, and libuv hands them to that poll's callback, which
 * reads the shared sockets.
 *
 * A worker port has one reader: the loop polls its dup directly, so a
 * datagram there wakes the loop with that socket named and costs no read
 * of the shared ones (which would meet EAGAIN), and the reverse.
 *
 * A wake-up reads with recvmmsg; a read returning fewer than UDP_BATCH
 * datagrams ends the turn (everything is level-triggered: more data wakes
 * the loop again), so a lone datagram costs one recvmmsg, not a second
 * read to meet EAGAIN as uv_udp_recv_start does.
 */
#define UDP_BATCH  8
#define UDP_ROUNDS 4 /* batches per socket and wake-up, then the loop's */

/*
 * Sending. What the delivery of a received batch sends over UDP (the
 * 100 Trying and the relayed request, the replies going back up) is
 * copied here and sent after the batch by one sendmmsg per socket: under
 * load a read brings several datagrams, and a send is a system call as
 * costly as the read. The jobs a wake-up of the queue runs (hand-overs)
 * are a batch too (udp_hold/udp_flush). The datagrams of one socket keep
 * their order. A send outside a batch (timers) goes at once.
 */
#define UDP_OUT_MAX 32

struct udp_out {
	bool on;     /* a batch is being delivered */
	unsigned n;  /* datagrams held */
	size_t used; /* bytes of buf they take */
	char buf[NET_UDP_BUF];
	struct wsock *sock[UDP_OUT_MAX]; /* NULL once taken by a flush */
	struct iovec iov[UDP_OUT_MAX];
	union net_sockaddr dst[UDP_OUT_MAX];
	struct mmsghdr mm[UDP_OUT_MAX]; /* one socket's run, for sendmmsg */
};

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

/* A copy of the datagram queued on s's handle, which libuv sends when
 * the socket is writable, after anything queued before it. */
static int queue_send(struct wsock *s, const char *buf, size_t len,
                      const struct sockaddr *to)
{
	struct udp_req *r = malloc(sizeof(*r) + len);
	uv_buf_t b;
	int err;

	if (r == NULL)
		return ENOMEM;
	memcpy(r->data, buf, len);
	b = uv_buf_init(r->data, (unsigned)len);
	err = uv_udp_send(&r->req, &s->u.udp, &b, 1, to, send_cb);
	if (err != 0) {
		free(r);
		return -err;
	}
	return 0;
}

/* The k datagrams of mm, all from s, in order. What the socket does not
 * take at once is queued; a datagram refused for another reason is
 * dropped, as a lost datagram would be. */
static void send_run(struct wsock *s, struct mmsghdr *mm, unsigned k)
{
	uv_os_fd_t fd;
	unsigned i = 0;

	/* Earlier datagrams waiting in libuv's queue go first. */
	if (s->u.udp.send_queue_count == 0 &&
	    uv_fileno((const uv_handle_t *)&s->u.udp, &fd) == 0) {
		while (i < k) {
			int r = sendmmsg(fd, mm + i, k - i, MSG_DONTWAIT);
			if (r > 0) {
				i += (unsigned)r;
			} else if (errno == EINTR) {
				continue;
			} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
				break;
			} else {
				LOG_DBG("%s: send failed: %s", s->lst->name,
				        strerror(errno));
				i++;
			}
		}
	}
	for (; i < k; i++) {
		struct msghdr *h = &mm[i].msg_hdr;
		if (queue_send(s, h->msg_iov->iov_base, h->msg_iov->iov_len,
		               h->msg_name) != 0)
			LOG_DBG("%s: send dropped", s->lst->name);
	}
}

/* Sends what the batch held, one run per socket in the order each
 * first appears. */
static void out_flush(struct udp_out *o)
{
	for (unsigned first = 0; first < o->n; first++) {
		struct wsock *s = o->sock[first];
		unsigned k = 0;

		if (s == NULL)
			continue;
		for (unsigned i = first; i < o->n; i++) {
			if (o->sock[i] != s)
				continue;
			memset(&o->mm[k], 0, sizeof(o->mm[k]));
			o->mm[k].msg_hdr.msg_iov = &o->iov[i];
			o->mm[k].msg_hdr.msg_iovlen = 1;
			o->mm[k].msg_hdr.msg_name = &o->dst[i];
			o->mm[k].msg_hdr.msg_namelen = net_addr_len(&o->dst[i]);
			o->sock[i] = NULL;
			k++;
		}
		send_run(s, o->mm, k);
	}
	o->n = 0;
	o->used = 0;
}

/* Holds a datagram of a batch for out_flush(). */
static void out_add(struct udp_out *o, struct wsock *s,
                    const struct sockaddr *to, const char *buf, size_t len)
{
	if (o->n == UDP_OUT_MAX || len > sizeof(o->buf) - o->used)
		out_flush(o);
	char *copy = o->buf + o->used;
	memcpy(copy, buf, len);
	o->used += len;
	o->sock[o->n] = s;
	o->iov[o->n].iov_base = copy;
	o->iov[o->n].iov_len = len;
	copy_addr(&o->dst[o->n], to);
	o->n++;
}

void udp_hold(struct worker *w)
{
	if (w->udp_out != NULL)
		w->udp_out->on = true;
}

void udp_flush(struct worker *w)
{
	if (w->udp_out != NULL) {
		w->udp_out->on = false;
		out_flush(w->udp_out);
	}
}

/*
 * What recvmmsg reads into, set up once: the kernel changes only each
 * header's msg_namelen, msg_flags and msg_len (the iovecs it reads from
 * a copy), so only the names' lengths of the entries it filled are set
 * again after a read.
 */
struct udp_rx {
	struct mmsghdr mm[UDP_BATCH];
	struct iovec iov[UDP_BATCH];
	union net_sockaddr src[UDP_BATCH];
	char buf[UDP_BATCH][NET_UDP_BUF];
};

static struct udp_rx *udp_rx_new(void)
{
	struct udp_rx *rx = calloc(1, sizeof(*rx));

	if (rx == NULL)
		return NULL;
	for (int i = 0; i < UDP_BATCH; i++) {
		rx->iov[i].iov_base = rx->buf[i];
		rx->iov[i].iov_len = NET_UDP_BUF;
		rx->mm[i].msg_hdr.msg_iov = &rx->iov[i];
		rx->mm[i].msg_hdr.msg_iovlen = 1;
		rx->mm[i].msg_hdr.msg_name = &rx->src[i];
		rx->mm[i].msg_hdr.msg_namelen = sizeof(rx->src[i]);
	}
	return rx;
}

static void read_socket(struct wsock *s)
{
	struct worker *w = s->w;
	struct udp_rx *rx = w->udp_rx;

	for (int round = 0; round < UDP_ROUNDS; round++) {
		int n = recvmmsg(s->rfd, rx->mm, UDP_BATCH, MSG_DONTWAIT, NULL);
		if (n < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK &&
			    errno != EINTR)
				LOG_WARN("%s: receive error: %s", s->lst->name,
				         strerror(errno));
			return;
		}
		udp_hold(w);
		for (int i = 0; i < n; i++) {
			struct mmsghdr *mm = &rx->mm[i];
			deliver(s, rx->buf[i], mm->msg_len, &rx->src[i].sa,
			        mm->msg_hdr.msg_flags & MSG_TRUNC);
			mm->msg_hdr.msg_namelen = sizeof(rx->src[i]);
		}
		udp_flush(w);
		if (n < UDP_BATCH)
			return;
	}
}

/* A worker port (of this worker: only its owner reads one), polled by
 * itself rather than through shared_fd. */
static bool own_port(const struct wsock *s)
{
	return s->lst->owner >= 0;
}

static bool poll_failed(const struct worker *w, int status)
{
	if (status < 0)
		LOG_WARN("worker %u: UDP poll error: %s", w->id,
		         uv_strerror(status));
	return status < 0;
}

/* shared_fd's events: one of the shared listeners has data. */
static void shared_poll_cb(uv_poll_t *p, int status, int events)
{
	struct worker *w = p->data;

	(void)events;
	if (poll_failed(w, status))
		return;
	/* Each socket is tried rather than asking the epoll which is
	 * ready: with the usual one shared UDP listener that saves a
	 * syscall per wake-up; an idle one costs an EAGAIN. */
	for (unsigned i = 0; i < w->rt->nlst; i++)
		if (w->socks[i].rfd >= 0 && !own_port(&w->socks[i]))
			read_socket(&w->socks[i]);
}

/* A worker port of this worker is readable. */
static void port_poll_cb(uv_poll_t *p, int status, int events)
{
	struct wsock *s = p->data;

	(void)events;
	if (!poll_failed(s->w, status))
		read_socket(s);
}

/* shared_fd and its poll handle, at the first shared listener. */
static int shared_poll_open(struct worker *w)
{
	int err;

	if (w->shared_fd >= 0)
		return 0;
	w->shared_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
	if (w->shared_fd < 0)
		return errno;
	err = uv_poll_init(&w->loop, &w->shared_poll, w->shared_fd);
	if (err != 0)
		return -err;
	w->shared_poll.data = w;
	return -uv_poll_start(&w->shared_poll, UV_READABLE, shared_poll_cb);
}

/* s->rfd read: a worker port by a poll of its own, a shared listener
 * in the loop's epoll under shared_fd's number. */
static int watch_socket(struct worker *w, struct wsock *s)
{
	struct epoll_event ev = {.events = EPOLLIN | EPOLLEXCLUSIVE};
	int err;

	if (own_port(s)) {
		err = uv_poll_init(&w->loop, &s->rpoll, s->rfd);
		if (err != 0)
			return -err;
		s->rpoll.data = s;
		return -uv_poll_start(&s->rpoll, UV_READABLE, port_poll_cb);
	}
	err = shared_poll_open(w);
	if (err != 0)
		return err;
	ev.data.fd = w->shared_fd;
	if (epoll_ctl(uv_backend_fd(&w->loop), EPOLL_CTL_ADD, s->rfd, &ev) != 0)
		return errno;
	return 0;
}

/* Sending goes through a uv_udp handle on one dup (libuv queues what the
 * socket cannot take at once), reading through another dup (rfd). */
int udp_worker_open(struct worker *w, struct wsock *s)
{
	int fd, err;

	if (w->udp_rx == NULL) {
		w->udp_rx = udp_rx_new();
		w->udp_out = calloc(1, sizeof(*w->udp_out));
		if (w->udp_rx == NULL || w->udp_out == NULL)
			return ENOMEM;
	}
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
	/* Every worker may send from a worker port (a message handed over
	 * may be answered where it arrived); only its worker reads it. */
	if (s->lst->owner >= 0 && (unsigned)s->lst->owner != w->id)
		return 0;
	s->rfd = fcntl(s->lst->fd, F_DUPFD_CLOEXEC, 0);
	if (s->rfd < 0)
		return errno;
	return watch_socket(w, s);
}

/* The fd may be closed as soon as uv_close() has stopped its poll
 * (libuv's uv_poll_t). A shared listener's must leave the loop's epoll
 * first: the dups of the other workers keep the socket open, and its
 * events would go on coming under shared_fd's number. */
static void unwatch_socket(struct wsock *s)
{
	if (!own_port(s))
		epoll_ctl(uv_backend_fd(&s->w->loop), EPOLL_CTL_DEL, s->rfd,
		          NULL);
	else if (!uv_is_closing((uv_handle_t *)&s->rpoll))
		uv_close((uv_handle_t *)&s->rpoll, NULL);
}

void udp_stop_reading(struct wsock *s)
{
	if (s->rfd >= 0) {
		unwatch_socket(s);
		close(s->rfd);
		s->rfd = -1;
	}
}

void udp_worker_fini(struct worker *w)
{
	for (unsigned i = 0; w->socks && i < w->rt->nlst; i++) {
		struct wsock *s = &w->socks[i];
		if (w->rt->lst[i].proto == NET_UDP && s->rfd >= 0) {
			close(s->rfd);
			s->rfd = -1;
		}
	}
	if (w->shared_fd >= 0)
		close(w->shared_fd);
	w->shared_fd = -1;
	free(w->udp_rx);
	w->udp_rx = NULL;
	free(w->udp_out);
	w->udp_out = NULL;
}

int udp_send(struct worker *w, const struct net_dst *dst, const char *buf,
             size_t len)
{
	struct rt *rt = w->rt;
	const struct net_listener *l = dst->lst;
	struct wsock *s;
	uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
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
	if (w->udp_out != NULL && w->udp_out->on) {
		out_add(w->udp_out, s, &dst->addr.sa, buf, len);
		return 0;
	}
	err = uv_udp_try_send(&s->u.udp, &b, 1, &dst->addr.sa);
	if (err >= 0)
		return 0;
	if (err != UV_EAGAIN)
		return -err;
	/* Socket buffer full (or earlier sends queued): let the loop send
	 * a copy when the socket is writable, keeping datagram order. */
	return queue_send(s, buf, len, &dst->addr.sa);
}
