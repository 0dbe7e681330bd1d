/*
 * net internals shared by rt.c, udp.c and tcp.c. Nothing here is API.
 *
 * Ownership: struct rt owns the workers, the listener copies and the
 * connection table. A worker owns its loop, its handles and the TCP
 * connections it accepted or opened; only its thread touches them. The
 * connection table is the one structure several threads read, under its
 * mutex (see struct ctab).
 */
#ifndef IMSDLG_NET_INT_H
#define IMSDLG_NET_INT_H

#include <stdatomic.h>

#include "net/net.h"

/* Largest UDP payload (RFC 768 length field), plus room to see a
 * truncation. */
#define NET_UDP_BUF 65536
/* listen(2) backlog: SIP over TCP sees bursts of registrations. */
#define NET_TCP_BACKLOG 1024

enum worker_phase {
	WP_RUNNING,  /* reading, serving */
	WP_DRAINING, /* not reading any more; waiting for shard_busy() == 0 */
	WP_CLOSING,  /* shard finished; handles closing */
};

/* One listening socket as seen by one worker (its dup of the fd). */
struct wsock {
	union {
		uv_handle_t h;
		uv_udp_t udp;
		uv_tcp_t tcp;
	} u;
	struct worker *w;
	const struct net_listener *lst;
	bool open; /* the handle was initialised and must be closed */
	/* UDP: the dup it is read from (-1 when none): a shared listener's
	 * in the loop's epoll under shared_fd's number, a worker port's
	 * watched by rpoll (udp.c says why). */
	int rfd;
	uv_poll_t rpoll;
};

struct conn;

struct worker {
	struct rt *rt;
	unsigned id;
	pthread_t thread;
	bool thread_started;
	bool loop_ok; /* uv_loop_init succeeded: uv_loop_close is due */

	uv_loop_t loop;
	uv_async_t async;  /* wakes the loop for the queue and for stop */
	uv_timer_t timer;  /* drives the wheel */
	uv_prepare_t prep; /* re-arms timer before the loop polls */
	uv_timer_t drain;  /* 50 ms poll of shard_busy() at shutdown */
	struct twheel wheel;
	uint64_t armed; /* absolute expiry the uv timer is set for */

	/* MPSC queue: producers append under qmx, the worker takes the whole
	 * list at once. qclosed: the worker is gone, posts are dropped. */
	pthread_mutex_t qmx;
	struct rt_job *qhead;
	struct rt_job *qtail;
	atomic_size_t qlen;
	bool qclosed;

	/* rt_call: calls made to this worker, and where it sleeps while
	 * waiting for one of its own (call.c). */
	pthread_mutex_t cmx;
	pthread_cond_t ccond;
	struct rt_call *chead, *ctail;
	bool cclosed;
	bool in_call; /* in rt_call, waiting (its thread only) */

	void *shard;
	bool shard_ok;  /* shard_init returned non-NULL; shard_fini is due */
	bool fini_done; /* no application callback any more */
	enum worker_phase phase;
	uint64_t drain_deadline;
	int start_err; /* errno of a failed start, reported to rt_start */
	char start_why[160];

	struct wsock *socks; /* one per listener (index = listener index) */
	struct conn *conns;  /* connections this worker owns */
	struct net_tcp_stats tcp; /* its counters (tcp.c); levels unused */

	/* Every datagram lands here, whichever socket it came from:
	 * UDP_BATCH of them read by one recvmmsg (udp.c), allocated with
	 * the first UDP socket; on_rx borrows one only during the call. */
	struct udp_rx *udp_rx;
	/* Datagrams sent while a batch is delivered, sent together after
	 * it (udp.c); allocated with udp_rx. */
	struct udp_out *udp_out;
	/* An eventfd never written, and its poll: the worker's dups of
	 * shared UDP listeners are registered EPOLLEXCLUSIVE in the loop's
	 * epoll under its number, so that their events reach shared_poll's
	 * callback (udp.c); -1 when none. */
	int shared_fd;
	uv_poll_t shared_poll;
};

/*
 * The connection table: the only transport state shared between workers.
 * Two chained hashes over the same entries (the connections themselves),
 * by id and by remote address. Only id, peer and owner of a linked
 * connection are read by other threads, always under mx; the owner links
 * a connection when it creates it and unlinks it when it starts closing,
 * so a connection found here is alive or about to be closed by its owner.
 */
struct ctab {
	pthread_mutex_t mx;
	struct conn **by_id;
	struct conn **by_addr;
	size_t mask; /* buckets - 1, buckets a power of two */
	size_t count;
};

struct rt {
	struct rt_config cfg; /* defaults applied; listeners points to lst */
	struct rt_app app;
	struct net_listener *lst;
	unsigned nlst;
	struct worker *workers;
	unsigned nworkers;

	atomic_bool stop;
	pthread_mutex_t mx; /* guards the fields below */
	pthread_cond_t cv;
	unsigned nreported; /* workers done with start-up */
	int go;             /* 0 wait, 1 run, -1 abort */
	bool joined;

	struct ctab ctab;
};

/* Fires due wheel timers so that the wheel's time is the loop's before an
 * application callback arms new ones relative to it. */
void net_wheel_sync(struct worker *w);

/* udp.c */
int udp_worker_open(struct worker *w, struct wsock *s);
void udp_stop_reading(struct wsock *s);
/* UDP sends between the two are held and sent together by udp_flush(). */
void udp_hold(struct worker *w);
void udp_flush(struct worker *w);
/* Closes what the loop does not own (the reading fds, the epoll fd);
 * after loop_fini. */
void udp_worker_fini(struct worker *w);
int udp_send(struct worker *w, const struct net_dst *dst, const char *buf,
             size_t len);

/* tcp.c */
int ctab_init(struct ctab *t);
void ctab_fini(struct ctab *t);
int tcp_worker_open(struct worker *w, struct wsock *s);
int tcp_send(struct worker *w, const struct net_dst *dst, const char *buf,
             size_t len, uint64_t *used_conn);
/* Closes every connection of w (at shutdown; no callbacks). */
void tcp_close_all(struct worker *w);

/* addr.c: "proto:host:port" with IPv6 in brackets. */
void net_listener_set_name(struct net_listener *l);
/* Wildcard address (0.0.0.0 or ::). */
bool net_addr_is_any(const union net_sockaddr *a);
socklen_t net_addr_len(const union net_sockaddr *a);

/* call.c */
void rt_calls_serve(struct worker *w);
void rt_calls_close(struct worker *w);

#endif
