/*
 * net: the worker runtime and the transport layer, on libuv.
 *
 * N worker threads each run their own event loop and own one shard. A call
 * belongs to the shard chosen by the hash of its Call-ID; everything about
 * it is touched only by that worker, so no lock guards per-call state.
 * Whatever another thread needs done on a shard (a message read by the
 * wrong worker, a management command, a send on a TCP connection another
 * worker owns) travels as a struct rt_job through that worker's queue.
 *
 * UDP listeners are read by every worker (each polls a dup of the socket,
 * like Kamailio's children share one); TCP connections belong to the
 * worker that accepted or opened them.
 */
#ifndef IMSDLG_NET_H
#define IMSDLG_NET_H

#include <netinet/in.h>
#include <pthread.h>
#include <sys/socket.h>

#include <uv.h>

#include "core/core.h"

enum net_proto {
	NET_UDP,
	NET_TCP,
};

/* "udp" / "tcp" */
const char *net_proto_name(enum net_proto p);

union net_sockaddr {
	struct sockaddr sa;
	struct sockaddr_in in;
	struct sockaddr_in6 in6;
};

/* Text of an address without port ("127.0.0.1", "::1": no brackets). */
void net_addr_host(char *dst, size_t size, const union net_sockaddr *a);
uint16_t net_addr_port(const union net_sockaddr *a);
void net_addr_set_port(union net_sockaddr *a, uint16_t port);
bool net_addr_eq(const union net_sockaddr *a, const union net_sockaddr *b);
/* Parses a numeric host (IPv4, IPv6 with or without brackets) and port. */
int net_addr_make(union net_sockaddr *out, struct slice host, uint16_t port);

/* A local socket this proxy listens on. Immutable after start-up. */
struct net_listener {
	unsigned index;
	enum net_proto proto;
	union net_sockaddr addr;
	char host[64]; /* text of the address ("[::1]" for IPv6) */
	uint16_t port;
	char adv_host[64]; /* what goes into Via/Record-Route */
	uint16_t adv_port;
	char name[96]; /* "udp:127.0.0.1:5060", as $Ri/$Rp need */
	int fd;        /* the bound socket (UDP) or listening socket */
	/*
	 * Worker ports (UDP, "worker_ports PORT"): each worker also gets a
	 * socket of its own on the listener's address, port PORT + worker
	 * (kernel-chosen when PORT is 0), that only it reads. What a worker
	 * relays goes out from its port, with that port in Via and
	 * Record-Route: the replies and the in-dialog requests of its calls
	 * come back to the worker that owns them, not to a shared socket
	 * where another worker would read them and hand them over (a
	 * wake-up of two threads instead of one). Only new calls arrive on
	 * the shared port.
	 */
	bool worker_ports;
	uint16_t worker_port_base;
	/* Set by rt_start: for a listener with worker ports, the index of
	 * worker 0's; for a worker port, its worker (else -1) and the
	 * listener it belongs to (else its own index). */
	int worker_ports_at;
	int owner;
	unsigned base;
};

/*
 * Parses a listen spec: "[proto:]host[:port] [advertise host:port]
 * [worker_ports PORT]", proto udp or tcp (default udp), host a numeric
 * address, port default_port when the spec gives none (5060, or the
 * config's port=); worker ports for UDP only.
 */
int net_listener_parse(struct net_listener *out, const char *spec,
                       uint16_t default_port, const char **why);

/* "[proto:]host[:port]", as listen and alias write it. */
struct net_hostport {
	bool has_proto;
	enum net_proto proto; /* udp when not given */
	struct slice host;    /* in spec; an IPv6 address keeps its [] */
	bool has_port;
	uint16_t port; /* 0..65535 when given, else 0 */
};

/* 0, or an error with *why (an unknown or unsupported protocol, a port
 * above 65535, a '[' without ']'). */
int net_hostport_parse(struct net_hostport *out, struct slice spec,
                       const char **why);

/* ------------------------------------------------------------- runtime */

struct rt;
struct worker;

/* A unit of work for one worker. The poster allocates it with malloc; the
 * worker runs fn and then frees it. */
struct rt_job {
	struct rt_job *next;
	void (*fn)(struct worker *w, struct rt_job *job);
};

/* A received SIP message (or stream frame) as handed to the SIP layer. */
struct net_rx {
	const char *buf;
	size_t len;
	enum net_proto proto;
	const struct net_listener *lst; /* where it arrived */
	union net_sockaddr src;
	uint64_t conn_id; /* TCP connection it came on; 0 for UDP */
};

/* Where to send, as decided by the SIP layer. */
struct net_dst {
	enum net_proto proto;
	union net_sockaddr addr;
	const struct net_listener *lst; /* local socket; NULL: pick one */
	uint64_t conn_id;               /* reuse this TCP connection if alive */
	bool no_connect;  /* TCP: an open connection only, none opened */
	bool close_after; /* TCP: the connection closes once this is written */
};

/* What the application plugs into the runtime. */
struct rt_app {
	/* Called once in each worker thread before its loop runs; returns
	 * the worker's shard state (or NULL on failure, which stops start). */
	void *(*shard_init)(struct worker *w, void *app_arg);
	void (*shard_fini)(struct worker *w, void *shard);
	/* A received message, on whichever worker read it. The application
	 * decides the owner and either handles it or hands it over with
	 * rt_forward_rx(). The bytes are valid only during the call. */
	void (*on_rx)(struct worker *w, const struct net_rx *rx);
	/* Number of transactions of the shard still at work, polled while
	 * draining at shutdown. */
	size_t (*shard_busy)(struct worker *w);
	/* A TCP connection this worker opened failed to connect or broke
	 * with data unsent (may be NULL). */
	void (*on_conn_fail)(struct worker *w, uint64_t conn_id);
	void *app_arg;
};

struct rt_config {
	unsigned workers;
	const struct net_listener *listeners; /* copied */
	unsigned nlisteners;
	size_t max_msg_size;
	unsigned tcp_idle_timeout_ms; /* idle TCP connections are closed */
	/* A connection still connecting, or with bytes waiting to be
	 * written, this long is closed (its branches get 503). */
	unsigned tcp_connect_timeout_ms;
	unsigned tcp_send_timeout_ms;
	/* TCP connections open at most, all workers together: one accepted
	 * past it is closed at once, none is opened past it */
	unsigned tcp_max_connections;
	size_t tcp_conn_buf_max;    /* per-connection read buffer limit */
	unsigned shutdown_grace_ms; /* drain time at SIGTERM */
};

/* Binds every listener (errors name the listener) and starts the workers.
 */
int rt_start(struct rt **out, const struct rt_config *cfg,
             const struct rt_app *app, char *err, size_t errsize);
/* Blocks until rt_stop() (or SIGTERM/SIGINT handled by the caller), then
 * stops reading, lets transactions drain for the grace time, joins the
 * workers. */
void rt_wait(struct rt *rt);
/* Asks the runtime to stop; safe from any thread and from signal
 * handlers' deferred context (not from a raw signal handler). */
void rt_stop(struct rt *rt);
void rt_free(struct rt *rt);

unsigned rt_workers(const struct rt *rt);
struct worker *rt_worker(struct rt *rt, unsigned i);
const struct net_listener *rt_listeners(const struct rt *rt, unsigned *n);
/* The first listener for proto (and address family of af, or any when
 * af is AF_UNSPEC) that is not a worker port, or NULL. */
const struct net_listener *rt_listener_for(const struct rt *rt,
                                           enum net_proto proto, int af);
/* Worker w's port of l when l has worker ports, else l itself. */
const struct net_listener *rt_worker_listener(const struct worker *w,
                                              const struct net_listener *l);
/* Whether a and b are one listener, or one and its worker ports. */
bool rt_same_listener(const struct net_listener *a,
                      const struct net_listener *b);

/* Queues job for worker i; safe from any thread. */
void rt_post(struct rt *rt, unsigned i, struct rt_job *job);
/* Copies rx and posts it to worker i, whose on_rx will see it again. */
int rt_forward_rx(struct rt *rt, unsigned i, const struct net_rx *rx);

/* The worker side. */
unsigned worker_id(const struct worker *w);
struct rt *worker_rt(struct worker *w);
void *worker_shard(struct worker *w);
uv_loop_t *worker_loop(struct worker *w);
struct twheel *worker_wheel(struct worker *w);
/* Milliseconds on the worker's clock (the wheel's time). */
uint64_t worker_now(struct worker *w);
/*
 * Runs fn(worker i, arg) on worker i's thread and returns once it has run:
 * the synchronous form of rt_post, for a route that needs an answer from
 * the shard owning another call. Call it on worker self's thread; i ==
 * self runs fn at once. While it waits, self runs the calls other workers
 * make to it, so two workers calling each other cannot deadlock; fn must
 * therefore be short and must not call rt_call. arg may live on the
 * caller's stack. 0, ETIMEDOUT (after timeout_ms; fn then never runs),
 * ESHUTDOWN (worker i has stopped; fn never runs), EINVAL (no worker i).
 */
/*
 * Whether worker w (asked on its own thread) is inside rt_call, waiting:
 * a call it serves then runs in the middle of whatever w was doing (a
 * route), so it must not use w's per-message scratch state (tm's parse
 * buffers): work that sends should be posted to w instead.
 */
bool rt_in_call(const struct worker *w);

/* The worker whose thread calls this, or NULL on any other thread. */
struct worker *rt_current_worker(void);

typedef void rt_call_fn(struct worker *w, void *arg);
int rt_call(struct worker *self, unsigned i, rt_call_fn *fn, void *arg,
            unsigned timeout_ms);

/* Jobs waiting in this worker's queue (for statistics). */
size_t worker_queue_len(struct worker *w);

/* The TCP connections of one worker, in the terms of Kamailio's tcp
 * statistics. Counters only grow; the last two are levels. */
struct net_tcp_stats {
	uint64_t established;     /* up: accepted or connected */
	uint64_t passive_open;    /* accepted */
	uint64_t connect_success; /* opened by this worker */
	uint64_t connect_failed;  /* opened by this worker, never up */
	uint64_t local_reject;    /* accepted, then dropped on our side */
	uint64_t con_timeout;     /* closed for being idle */
	uint64_t con_reset;       /* broken by the peer (reset, pipe) */
	uint64_t sendq_full;      /* closed: the peer did not read */
	uint64_t send_timeout;    /* closed: bytes waited too long */
	uint64_t open;            /* connections now */
	uint64_t write_queue;     /* bytes waiting to be written now */
};

/* Worker w's figures; on w's thread only (its connections are its own). */
void net_tcp_stats(struct worker *w, struct net_tcp_stats *out);

/*
 * Sends buf to dst from worker w. UDP: sendto on the listener's socket.
 * TCP: on conn dst->conn_id when alive, else on a connection to dst->addr
 * (reused or opened; a connection owned by another worker gets the bytes
 * through its queue). Returns 0 or an errno (EHOSTUNREACH, ENOTCONN ...);
 * a connect failure found later goes to rt_app.on_conn_fail in the worker
 * that opened the connection. *used_conn gets the connection id (may be
 * NULL).
 */
int net_send(struct worker *w, const struct net_dst *dst, const char *buf,
             size_t len, uint64_t *used_conn);

#endif
