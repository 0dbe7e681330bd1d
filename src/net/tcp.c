/*
 * TCP: connections, stream framing, the connection table.
 *
 * A connection belongs to the worker that accepted or opened it: only that
 * thread reads, writes and closes it. Another worker that must send on it
 * (a reply to a request its shard owns, RFC 3261 §18.2.2) finds the owner
 * in the connection table and posts the bytes to it.
 *
 * Connections are reused for every message to the same peer (RFC 3261
 * §18.1.1, §18.2.2) and closed after tcp_idle_timeout_ms without traffic
 * in either direction, or when they stall: still connecting after
 * tcp_connect_timeout_ms, or bytes waiting to be written for
 * tcp_send_timeout_ms (a peer that stopped reading).
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net_int.h"
#include "sip/sip.h"

#define CTAB_MIN_BUCKETS 256
#define READ_BUF_MIN     8192
/* Past this much unsent data the peer is not reading: give up on it
 * rather than buffer without bound. */
#define WRITE_QUEUE_MAX (8u * 1024 * 1024)

/*
 * The connection id counter, this component's only global: ids are never
 * reused, not even across runtimes in one process, so a stale id a
 * transaction holds can never reach a newer connection. (The connection
 * table, the other piece of shared state, lives in struct rt.)
 */
static _Atomic uint64_t conn_ids;

enum conn_state {
	CS_CONNECTING,
	CS_UP,
	CS_CLOSING,
};

enum close_how {
	CLOSE_QUIET,  /* no on_conn_fail (shutdown, or the caller was told) */
	CLOSE_NORMAL, /* on_conn_fail only if data was left unsent */
	CLOSE_FAIL,   /* on_conn_fail */
};

/* A write waiting for the connect or for libuv. */
struct wreq {
	uv_write_t req;
	struct wreq *next;
	size_t len;
	char data[];
};

struct conn {
	/* Read by other threads under ctab.mx while linked (see struct
	 * ctab); written only before linking. */
	uint64_t id;
	union net_sockaddr peer;
	unsigned owner;
	struct conn *next_id;
	struct conn *next_addr;
	bool linked;

	/* The owner's alone. */
	uv_tcp_t tcp;
	uv_connect_t creq;
	struct worker *w;
	const struct net_listener *lst;
	struct conn *prev;
	struct conn *next;
	enum conn_state state;
	struct wreq *pend_head; /* writes waiting for the connect */
	struct wreq *pend_tail;
	char *buf; /* unconsumed stream bytes */
	size_t len;
	size_t cap;
	struct tmr idle;
	struct tmr stall;     /* connecting, or bytes waiting: the limit */
	uint64_t last;        /* loop time of the last read or write */
	bool close_when_sent; /* closes once nothing waits to be written */
};

/* ------------------------------------------------------ connection table */

int ctab_init(struct ctab *t)
{
	pthread_mutex_init(&t->mx, NULL);
	t->by_id = calloc(CTAB_MIN_BUCKETS, sizeof(*t->by_id));
	t->by_addr = calloc(CTAB_MIN_BUCKETS, sizeof(*t->by_addr));
	t->mask = CTAB_MIN_BUCKETS - 1;
	t->count = 0;
	if (t->by_id == NULL || t->by_addr == NULL)
		return ENOMEM;
	return 0;
}

void ctab_fini(struct ctab *t)
{
	free(t->by_id);
	free(t->by_addr);
	t->by_id = NULL;
	t->by_addr = NULL;
	pthread_mutex_destroy(&t->mx);
}

static size_t id_slot(const struct ctab *t, uint64_t id)
{
	/* Ids are sequential: the low bits spread them evenly. */
	return (size_t)id & t->mask;
}

static size_t addr_slot(const struct ctab *t, const union net_sockaddr *a)
{
	uint8_t key[2 + 16];
	size_t n = 2;

	if (a->sa.sa_family == AF_INET6) {
		memcpy(key, &a->in6.sin6_port, 2);
		memcpy(key + 2, &a->in6.sin6_addr, 16);
		n += 16;
	} else {
		memcpy(key, &a->in.sin_port, 2);
		memcpy(key + 2, &a->in.sin_addr, 4);
		n += 4;
	}
	return (size_t)hash_bytes(key, n) & t->mask;
}

static void link_one(struct ctab *t, struct conn *c)
{
	size_t i = id_slot(t, c->id);
	size_t j = addr_slot(t, &c->peer);

	c->next_id = t->by_id[i];
	t->by_id[i] = c;
	c->next_addr = t->by_addr[j];
	t->by_addr[j] = c;
}

/* Doubles the buckets when chains grow past one entry on average; keeps
 * the old ones when memory is short (chains only get longer). */
static void ctab_grow(struct ctab *t)
{
	size_t n = (t->mask + 1) * 2;
	struct conn **old = t->by_id;
	size_t oldn = t->mask + 1;
	struct conn **by_id = calloc(n, sizeof(*by_id));
	struct conn **by_addr = calloc(n, sizeof(*by_addr));

	if (by_id == NULL || by_addr == NULL) {
		free(by_id);
		free(by_addr);
		return;
	}
	free(t->by_addr);
	t->by_id = by_id;
	t->by_addr = by_addr;
	t->mask = n - 1;
	for (size_t i = 0; i < oldn; i++) {
		struct conn *c = old[i];

		while (c != NULL) {
			struct conn *next = c->next_id;

			link_one(t, c);
			c = next;
		}
	}
	free(old);
}

/* False, and c left out, when the table holds max connections already
 * (tcp_max_connections, all workers together). */
static bool ctab_insert(struct ctab *t, struct conn *c, size_t max)
{
	pthread_mutex_lock(&t->mx);
	if (t->count >= max) {
		pthread_mutex_unlock(&t->mx);
		return false;
	}
	if (t->count > t->mask)
		ctab_grow(t);
	link_one(t, c);
	t->count++;
	c->linked = true;
	pthread_mutex_unlock(&t->mx);
	return true;
}

static void ctab_remove(struct ctab *t, struct conn *c)
{
	struct conn **pp;

	if (!c->linked)
		return;
	pthread_mutex_lock(&t->mx);
	for (pp = &t->by_id[id_slot(t, c->id)]; *pp != c; pp = &(*pp)->next_id)
		;
	*pp = c->next_id;
	for (pp = &t->by_addr[addr_slot(t, &c->peer)]; *pp != c;
	     pp = &(*pp)->next_addr)
		;
	*pp = c->next_addr;
	t->count--;
	c->linked = false;
	pthread_mutex_unlock(&t->mx);
}

/* Both lookups: the caller holds t->mx. */
static struct conn *ctab_find_id(const struct ctab *t, uint64_t id)
{
	struct conn *c = t->by_id[id_slot(t, id)];

	while (c != NULL && c->id != id)
		c = c->next_id;
	return c;
}

static struct conn *ctab_find_addr(const struct ctab *t,
                                   const union net_sockaddr *a)
{
	struct conn *c = t->by_addr[addr_slot(t, a)];

	while (c != NULL && !net_addr_eq(&c->peer, a))
		c = c->next_addr;
	return c;
}

/* ---------------------------------------------------------- connections */

static void peer_text(char *dst, size_t size, const union net_sockaddr *a)
{
	char host[INET6_ADDRSTRLEN];

	net_addr_host(host, sizeof(host), a);
	snprintf(dst, size, a->sa.sa_family == AF_INET6 ? "[%s]:%u" : "%s:%u",
	         host, (unsigned)net_addr_port(a));
}

static void conn_free_cb(uv_handle_t *h)
{
	struct conn *c = h->data;

	free(c->buf);
	free(c);
}

static void free_pending(struct conn *c)
{
	while (c->pend_head != NULL) {
		struct wreq *wr = c->pend_head;

		c->pend_head = wr->next;
		free(wr);
	}
	c->pend_tail = NULL;
}

/* Unlinks c everywhere at once, so that no send finds it any more, then
 * lets libuv cancel what is in flight and free it. */
static void conn_close(struct conn *c, enum close_how how)
{
	struct worker *w = c->w;
	bool unsent;

	if (c->state == CS_CLOSING)
		return;
	unsent = c->pend_head != NULL || c->tcp.write_queue_size > 0;
	c->state = CS_CLOSING;
	ctab_remove(&w->rt->ctab, c);
	if (c->prev != NULL)
		c->prev->next = c->next;
	else
		w->conns = c->next;
	if (c->next != NULL)
		c->next->prev = c->prev;
	tmr_cancel(&w->wheel, &c->idle);
	tmr_cancel(&w->wheel, &c->stall);
	free_pending(c);
	uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
	if (how == CLOSE_QUIET || (how == CLOSE_NORMAL && !unsent))
		return;
	if (w->rt->app.on_conn_fail != NULL && !w->fini_done)
		w->rt->app.on_conn_fail(w, c->id);
}

static void idle_cb(struct tmr *t, void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;
	uint64_t limit = w->rt->cfg.tcp_idle_timeout_ms;
	uint64_t now = w->wheel.now;
	uint64_t idle = now > c->last ? now - c->last : 0;
	char peer[INET6_ADDRSTRLEN + 8];

	if (idle >= limit) {
		w->tcp.con_timeout++;
		peer_text(peer, sizeof(peer), &c->peer);
		LOG_INFO("tcp: closing connection %" PRIu64 " to %s, idle "
		         "for %" PRIu64 " ms",
		         c->id, peer, idle);
		conn_close(c, CLOSE_NORMAL);
		return;
	}
	/* Re-arming on every read and write would cost more than this. */
	tmr_start_coarse(&w->wheel, &c->idle, limit - idle, idle_cb, c);
}

/* Still connecting, or bytes waiting to be written, for too long. */
static void stall_cb(struct tmr *t, void *arg)
{
	struct conn *c = arg;
	struct worker *w = c->w;
	char peer[INET6_ADDRSTRLEN + 8];

	(void)t;
	peer_text(peer, sizeof(peer), &c->peer);
	if (c->state == CS_CONNECTING) {
		LOG_WARN("tcp: connect to %s timed out", peer);
		w->tcp.connect_failed++;
	} else if (c->tcp.write_queue_size > 0) {
		LOG_WARN("tcp: %s: %zu bytes unsent for %u ms, closing", peer,
		         c->tcp.write_queue_size,
		         w->rt->cfg.tcp_send_timeout_ms);
		w->tcp.send_timeout++;
	} else {
		return; /* written meanwhile */
	}
	conn_close(c, CLOSE_FAIL);
}

/* Bytes wait in libuv's queue: they must be written in time. */
static void expect_written(struct conn *c)
{
	struct worker *w = c->w;

	if (!tmr_pending(&c->stall))
		tmr_start_coarse(&w->wheel, &c->stall,
		                 w->rt->cfg.tcp_send_timeout_ms, stall_cb, c);
}

static struct conn *conn_new(struct worker *w, const struct net_listener *lst)
{
	struct conn *c = calloc(1, sizeof(*c));

	if (c == NULL)
		return NULL;
	c->id = atomic_fetch_add(&conn_ids, 1) + 1;
	c->owner = w->id;
	c->w = w;
	c->lst = lst;
	c->last = uv_now(&w->loop);
	tmr_init(&c->idle);
	tmr_init(&c->stall);
	uv_tcp_init(&w->loop, &c->tcp);
	c->tcp.data = c;
	return c;
}

/* Makes c findable and starts its idle timer; peer must be set. False
 * when tcp_max_connections are open: c is then not linked. */
static bool conn_link(struct conn *c)
{
	struct worker *w = c->w;
	char peer[INET6_ADDRSTRLEN + 8];

	if (!ctab_insert(&w->rt->ctab, c, w->rt->cfg.tcp_max_connections)) {
		peer_text(peer, sizeof(peer), &c->peer);
		LOG_WARN("tcp: %u connections open (tcp_max_connections), "
		         "none with %s",
		         w->rt->cfg.tcp_max_connections, peer);
		return false;
	}
	c->next = w->conns;
	if (w->conns != NULL)
		w->conns->prev = c;
	w->conns = c;
	tmr_start_coarse(&w->wheel, &c->idle, w->rt->cfg.tcp_idle_timeout_ms,
	                 idle_cb, c);
	return true;
}

/* A read or write error: the peer's doing when it reset the connection. */
static void note_error(struct conn *c, int uv_err)
{
	if (uv_err == UV_ECONNRESET || uv_err == UV_EPIPE)
		c->w->tcp.con_reset++;
}

/* ---------------------------------------------------------------- writes */

/* A message asked for the connection to close after it (net_dst's
 * close_after): now, or once what waits is written (write_cb()). */
static void close_when_sent(struct conn *c)
{
	if (c->state == CS_UP && c->tcp.write_queue_size == 0)
		conn_close(c, CLOSE_NORMAL);
	else
		c->close_when_sent = true;
}

static void write_cb(uv_write_t *req, int status)
{
	struct wreq *wr = (struct wreq *)req;
	struct conn *c = req->handle->data;
	char peer[INET6_ADDRSTRLEN + 8];

	free(wr);
	if (status == 0 && c->state == CS_UP && c->tcp.write_queue_size == 0) {
		tmr_cancel(&c->w->wheel, &c->stall);
		if (c->close_when_sent)
			conn_close(c, CLOSE_NORMAL);
	}
	if (status == 0 || status == UV_ECANCELED || c->state == CS_CLOSING)
		return;
	note_error(c, status);
	peer_text(peer, sizeof(peer), &c->peer);
	LOG_WARN("tcp: write to %s failed: %s", peer, uv_strerror(status));
	conn_close(c, CLOSE_FAIL);
}

static int start_write(struct conn *c, struct wreq *wr)
{
	uv_buf_t b = uv_buf_init(wr->data, (unsigned)wr->len);

	return -uv_write(&wr->req, (uv_stream_t *)&c->tcp, &b, 1, write_cb);
}

/* Sends on a connection of this worker. Returns 0 once the bytes are
 * written or queued; a failure then reaches on_conn_fail. */
static int conn_write(struct conn *c, const char *buf, size_t len)
{
	struct wreq *wr;
	int err;

	if (c->state == CS_CLOSING)
		return ENOTCONN;
	c->last = uv_now(&c->w->loop);
	if (c->state == CS_UP && c->tcp.write_queue_size == 0) {
		/* Most writes fit in the socket buffer: no copy then. */
		uv_buf_t b = uv_buf_init((char *)buf, (unsigned)len);
		int n = uv_try_write((uv_stream_t *)&c->tcp, &b, 1);

		if (n == (int)len)
			return 0;
		if (n < 0 && n != UV_EAGAIN) {
			note_error(c, n);
			conn_close(c, CLOSE_NORMAL);
			return -n;
		}
		if (n > 0) {
			buf += n;
			len -= (size_t)n;
		}
	}
	if (c->tcp.write_queue_size > WRITE_QUEUE_MAX) {
		char peer[INET6_ADDRSTRLEN + 8];

		peer_text(peer, sizeof(peer), &c->peer);
		LOG_WARN("tcp: %s does not read (%zu bytes unsent), closing",
		         peer, c->tcp.write_queue_size);
		c->w->tcp.sendq_full++;
		conn_close(c, CLOSE_FAIL);
		return ENOBUFS;
	}
	wr = malloc(sizeof(*wr) + len);
	if (wr == NULL)
		return ENOMEM;
	wr->next = NULL;
	wr->len = len;
	memcpy(wr->data, buf, len);
	if (c->state == CS_CONNECTING) {
		if (c->pend_tail != NULL)
			c->pend_tail->next = wr;
		else
			c->pend_head = wr;
		c->pend_tail = wr;
		return 0;
	}
	err = start_write(c, wr);
	if (err != 0) {
		free(wr);
		conn_close(c, CLOSE_NORMAL);
		return err;
	}
	expect_written(c);
	return 0;
}

/* ----------------------------------------------------------------- reads */

static void alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
	struct conn *c = h->data;
	size_t max = c->w->rt->cfg.tcp_conn_buf_max;

	if (c->len == c->cap && c->cap < max) {
		size_t cap = c->cap < READ_BUF_MIN ? READ_BUF_MIN : c->cap * 2;
		char *p;

		if (cap > max)
			cap = max;
		p = realloc(c->buf, cap);
		if (p != NULL) {
			c->buf = p;
			c->cap = cap;
		}
	}
	/* A full buffer gives read_cb UV_ENOBUFS. */
	buf->base = c->buf + c->len;
	buf->len = c->cap - c->len;
}

/* Hands every complete frame to the application (RFC 3261 §18.3). */
static void consume(struct conn *c)
{
	struct worker *w = c->w;
	struct rt *rt = w->rt;
	size_t off = 0;

	while (off < c->len && c->state != CS_CLOSING && !w->fini_done) {
		struct sip_frame f;
		const char *why = "?";
		char peer[INET6_ADDRSTRLEN + 8];
		struct net_rx rx;
		int err;

		err = sip_frame(&f, c->buf + off, c->len - off,
		                rt->cfg.max_msg_size, &why);
		if (err == EAGAIN)
			break;
		if (err != 0) {
			peer_text(peer, sizeof(peer), &c->peer);
			LOG_WARN("tcp: %s: %s, closing connection %" PRIu64,
			         peer, why, c->id);
			conn_close(c, CLOSE_NORMAL);
			return;
		}
		switch (f.kind) {
		case SIP_FRAME_MSG:
			rx.buf = c->buf + off;
			rx.len = f.len;
			rx.proto = NET_TCP;
			rx.lst = c->lst;
			rx.src = c->peer;
			rx.conn_id = c->id;
			rt->app.on_rx(w, &rx);
			break;
		case SIP_FRAME_PING:
			/* RFC 5626 §3.5.1: a CRLFCRLF ping gets a CRLF. */
			(void)conn_write(c, "\r\n", 2);
			break;
		case SIP_FRAME_PONG:
			break;
		}
		off += f.len;
	}
	if (c->state == CS_CLOSING)
		return;
	c->len -= off;
	if (off > 0 && c->len > 0)
		memmove(c->buf, c->buf + off, c->len);
	/* Give back what one large message made the buffer grow to. */
	if (c->len == 0 && c->cap > 4 * READ_BUF_MIN) {
		free(c->buf);
		c->buf = NULL;
		c->cap = 0;
	}
}

static void read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
	struct conn *c = s->data;
	char peer[INET6_ADDRSTRLEN + 8];

	if (c->state == CS_CLOSING)
		return;
	if (nread > 0) {
		c->len += (size_t)nread;
		c->last = uv_now(&c->w->loop);
		net_wheel_sync(c->w);
		consume(c);
		return;
	}
	if (nread == 0)
		return;
	peer_text(peer, sizeof(peer), &c->peer);
	if (nread == UV_ENOBUFS)
		LOG_WARN("tcp: %s: %zu bytes buffered without a complete "
		         "message, closing connection %" PRIu64,
		         peer, c->len, c->id);
	else if (nread == UV_EOF)
		LOG_DBG("tcp: %s closed connection %" PRIu64, peer, c->id);
	else
		LOG_INFO("tcp: %s: read error: %s", peer,
		         uv_strerror((int)nread));
	note_error(c, (int)nread);
	conn_close(c, CLOSE_NORMAL);
}

/* ----------------------------------------------------------- accept */

static void on_connection(uv_stream_t *server, int status)
{
	struct wsock *s = server->data;
	struct worker *w = s->w;
	struct conn *c;
	int len = sizeof(union net_sockaddr);
	int err;

	if (status < 0) {
		LOG_WARN("%s: accept failed: %s", s->lst->name,
		         uv_strerror(status));
		return;
	}
	c = conn_new(w, s->lst);
	if (c == NULL) {
		/* libuv pauses this listener until the next accept. */
		LOG_ERR("%s: out of memory accepting a connection",
		        s->lst->name);
		return;
	}
	err = uv_accept(server, (uv_stream_t *)&c->tcp);
	if (err == 0)
		err = uv_tcp_getpeername(&c->tcp, &c->peer.sa, &len);
	if (err == 0)
		err = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb);
	if (err != 0) {
		LOG_WARN("%s: accept failed: %s", s->lst->name,
		         uv_strerror(err));
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		w->tcp.local_reject++;
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->state = CS_UP;
	net_wheel_sync(w);
	if (!conn_link(c)) {
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		w->tcp.local_reject++;
		return;
	}
	w->tcp.passive_open++;
	w->tcp.established++;
}

int tcp_worker_open(struct worker *w, struct wsock *s)
{
	int fd, err;

	fd = fcntl(s->lst->fd, F_DUPFD_CLOEXEC, 0);
	if (fd < 0)
		return errno;
	uv_tcp_init(&w->loop, &s->u.tcp);
	s->u.tcp.data = s;
	s->open = true;
	err = uv_tcp_open(&s->u.tcp, fd);
	if (err != 0) {
		close(fd);
		return -err;
	}
	/* Every worker accepts: the kernel wakes them all, one wins, the
	 * others see EAGAIN, which libuv absorbs. */
	err = uv_listen((uv_stream_t *)&s->u.tcp, NET_TCP_BACKLOG,
	                on_connection);
	return -err;
}

/* ---------------------------------------------------------- connect */

static void connect_cb(uv_connect_t *req, int status)
{
	struct conn *c = req->handle->data;
	char peer[INET6_ADDRSTRLEN + 8];
	int err;

	if (status == UV_ECANCELED || c->state == CS_CLOSING)
		return;
	net_wheel_sync(c->w);
	if (status == 0)
		status = uv_read_start((uv_stream_t *)&c->tcp, alloc_cb,
		                       read_cb);
	if (status != 0) {
		peer_text(peer, sizeof(peer), &c->peer);
		LOG_WARN("tcp: connect to %s failed: %s", peer,
		         uv_strerror(status));
		c->w->tcp.connect_failed++;
		conn_close(c, CLOSE_FAIL);
		return;
	}
	uv_tcp_nodelay(&c->tcp, 1);
	c->state = CS_UP;
	c->w->tcp.connect_success++;
	c->w->tcp.established++;
	c->last = uv_now(&c->w->loop);
	while (c->pend_head != NULL) {
		struct wreq *wr = c->pend_head;

		c->pend_head = wr->next;
		if (c->pend_head == NULL)
			c->pend_tail = NULL;
		err = start_write(c, wr);
		if (err != 0) {
			free(wr);
			conn_close(c, CLOSE_FAIL);
			return;
		}
	}
	/* connected: from now on the limit is the send timeout's */
	tmr_cancel(&c->w->wheel, &c->stall);
	if (c->tcp.write_queue_size > 0)
		expect_written(c);
}

/* The listener whose address outgoing connections of family af leave
 * from, so that the Via and Record-Route we advertise on them are
 * reachable (RFC 3261 §18.1.1: responses come back to the sent-by). */
static const struct net_listener *pick_listener(struct rt *rt,
                                                const struct net_dst *dst)
{
	int af = dst->addr.sa.sa_family;

	if (dst->lst != NULL && dst->lst->proto == NET_TCP &&
	    dst->lst->addr.sa.sa_family == af)
		return dst->lst;
	return rt_listener_for(rt, NET_TCP, af);
}

static int conn_open(struct worker *w, const struct net_dst *dst,
                     const char *buf, size_t len, uint64_t *used_conn)
{
	struct rt *rt = w->rt;
	const struct net_listener *l = pick_listener(rt, dst);
	const struct net_listener *rxl = l;
	struct conn *c;
	int err;

	/* What on_rx reports as the local socket of this connection. */
	if (rxl == NULL)
		rxl = rt_listener_for(rt, NET_TCP, AF_UNSPEC);
	if (rxl == NULL)
		rxl = rt_listener_for(rt, NET_UDP, dst->addr.sa.sa_family);
	c = conn_new(w, rxl);
	if (c == NULL)
		return ENOMEM;
	if (l != NULL && !net_addr_is_any(&l->addr)) {
		union net_sockaddr src = l->addr;

		if (src.sa.sa_family == AF_INET6)
			src.in6.sin6_port = 0;
		else
			src.in.sin_port = 0;
		err = uv_tcp_bind(&c->tcp, &src.sa, 0);
		if (err != 0)
			LOG_DBG("tcp: cannot bind to %s: %s", l->name,
			        uv_strerror(err));
	}
	c->peer = dst->addr;
	c->state = CS_CONNECTING;
	err = -uv_tcp_connect(&c->creq, &c->tcp, &dst->addr.sa, connect_cb);
	if (err != 0) {
		w->tcp.connect_failed++;
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return err;
	}
	if (!conn_link(c)) {
		/* the connect is cancelled: connect_cb() sees UV_ECANCELED */
		w->tcp.connect_failed++;
		uv_close((uv_handle_t *)&c->tcp, conn_free_cb);
		return ENOBUFS;
	}
	tmr_start_coarse(&w->wheel, &c->stall, rt->cfg.tcp_connect_timeout_ms,
	                 stall_cb, c);
	err = conn_write(c, buf, len);
	if (err != 0) {
		conn_close(c, CLOSE_QUIET);
		return err;
	}
	c->close_when_sent = dst->close_after;
	if (used_conn != NULL)
		*used_conn = c->id;
	return 0;
}

/* -------------------------------------------------------------- send */

/* Bytes for a connection another worker owns. */
struct send_job {
	struct rt_job job;
	uint64_t conn_id;
	bool close_after;
	size_t len;
	char data[];
};

static void send_job_run(struct worker *w, struct rt_job *job)
{
	struct send_job *j = (struct send_job *)job;
	struct ctab *t = &w->rt->ctab;
	struct conn *c;
	int err;

	pthread_mutex_lock(&t->mx);
	c = ctab_find_id(t, j->conn_id);
	pthread_mutex_unlock(&t->mx);
	/* Only this thread closes its connections: c stays valid. */
	if (c == NULL || c->owner != w->id) {
		LOG_INFO("tcp: connection %" PRIu64 " closed, %zu bytes "
		         "dropped",
		         j->conn_id, j->len);
		return;
	}
	err = conn_write(c, j->data, j->len);
	if (err != 0)
		LOG_INFO("tcp: send on connection %" PRIu64 " failed: %s",
		         j->conn_id, strerror(err));
	else if (j->close_after)
		close_when_sent(c);
}

int tcp_send(struct worker *w, const struct net_dst *dst, const char *buf,
             size_t len, uint64_t *used_conn)
{
	struct ctab *t = &w->rt->ctab;
	int af = dst->addr.sa.sa_family;
	bool has_addr = af == AF_INET || af == AF_INET6;
	struct conn *c = NULL;
	uint64_t id = 0;
	unsigned owner = 0;
	struct send_job *j;
	int err;

	pthread_mutex_lock(&t->mx);
	if (dst->conn_id != 0)
		c = ctab_find_id(t, dst->conn_id);
	if (c == NULL && has_addr)
		c = ctab_find_addr(t, &dst->addr);
	if (c != NULL) {
		id = c->id;
		owner = c->owner;
	}
	pthread_mutex_unlock(&t->mx);

	if (c == NULL) {
		if (!has_addr || dst->no_connect)
			return ENOTCONN;
		return conn_open(w, dst, buf, len, used_conn);
	}
	if (owner == w->id) {
		err = conn_write(c, buf, len);
		if (err == 0 && dst->close_after)
			close_when_sent(c);
	} else {
		j = malloc(sizeof(*j) + len);
		if (j == NULL)
			return ENOMEM;
		j->job.fn = send_job_run;
		j->conn_id = id;
		j->close_after = dst->close_after;
		j->len = len;
		memcpy(j->data, buf, len);
		rt_post(w->rt, owner, &j->job);
		err = 0;
	}
	if (err == 0 && used_conn != NULL)
		*used_conn = id;
	return err;
}

void net_tcp_stats(struct worker *w, struct net_tcp_stats *out)
{
	*out = w->tcp;
	out->open = 0;
	out->write_queue = 0;
	for (const struct conn *c = w->conns; c != NULL; c = c->next) {
		out->open++;
		out->write_queue += c->tcp.write_queue_size;
		for (const struct wreq *wr = c->pend_head; wr; wr = wr->next)
			out->write_queue += wr->len;
	}
}

void tcp_close_all(struct worker *w)
{
	while (w->conns != NULL)
		conn_close(w->conns, CLOSE_QUIET);
}
