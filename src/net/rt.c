/*
 * The worker runtime: N threads, each with its own libuv loop, job queue,
 * timer wheel and shard (docs/architecture.md, "Concurrency").
 *
 * Life of a worker:
 *   rt_start (main thread) binds the listeners and, for each worker,
 *   initialises the loop and the queue's uv_async (so that rt_post works
 *   from the first moment), then starts the thread. The thread opens its
 *   handles (its dups of the listening sockets), calls shard_init, reports
 *   and waits until every worker has reported: either all run, or all
 *   undo what they did and rt_start fails.
 *   Running: datagrams, connections, jobs and timers.
 *   rt_stop sets a flag and wakes every loop; each worker stops reading
 *   (UDP receive stopped, TCP listeners closed), keeps serving its queue,
 *   timers and connections while shard_busy() > 0 within the grace time,
 *   then calls shard_fini, closes every handle and leaves its loop.
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "net/net_int.h"

#define DEFAULT_MAX_MSG 65535
#define DEFAULT_IDLE_MS 120000
#define DEFAULT_STALL_MS                                                       \
	10000 /* Kamailio's tcp_connect_timeout, tcp_send_timeout */
#define DEFAULT_CONN_BUF_MAX    (256 * 1024)
#define DEFAULT_MAX_CONNECTIONS 2048 /* Kamailio's tcp_max_connections */
#define DEFAULT_GRACE_MS        5000
#define DRAIN_POLL_MS           50
/* Bursts of datagrams must not be dropped by the kernel while a worker is
 * busy; the kernel caps this at net.core.rmem_max. */
#define UDP_RCVBUF (4 * 1024 * 1024)

/* ------------------------------------------------------------ binding */

static int set_int_opt(int fd, int level, int opt, int val)
{
	return setsockopt(fd, level, opt, &val, sizeof(val)) == 0 ? 0 : errno;
}

/* Binds (and for TCP listens on) one listener; a port of 0 becomes the one
 * the kernel chose, so that tests and "any port" setups know it. */
static int bind_listener(struct net_listener *l, char *err, size_t errsize)
{
	int type = l->proto == NET_UDP ? SOCK_DGRAM : SOCK_STREAM;
	int fd, e;
	union net_sockaddr bound;
	socklen_t blen = sizeof(bound);

	fd = socket(l->addr.sa.sa_family, type | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		e = errno;
		goto fail;
	}
	/* TCP: a restart must not wait for TIME_WAIT. Not UDP: there it
	 * would let a second imsdlgd bind the same port without an error,
	 * and the two would split the traffic. */
	e = l->proto == NET_TCP ? set_int_opt(fd, SOL_SOCKET, SO_REUSEADDR, 1)
	                        : 0;
	/* Otherwise [::]:5060 would also take 0.0.0.0:5060, and a second
	 * listener on the IPv4 address would fail to bind. */
	if (e == 0 && l->addr.sa.sa_family == AF_INET6)
		e = set_int_opt(fd, IPPROTO_IPV6, IPV6_V6ONLY, 1);
	if (e != 0)
		goto fail;
	if (l->proto == NET_UDP)
		(void)set_int_opt(fd, SOL_SOCKET, SO_RCVBUF, UDP_RCVBUF);
	if (bind(fd, &l->addr.sa, net_addr_len(&l->addr)) != 0) {
		e = errno;
		goto fail;
	}
	if (l->proto == NET_TCP && listen(fd, NET_TCP_BACKLOG) != 0) {
		e = errno;
		goto fail;
	}
	if (l->port == 0) {
		if (getsockname(fd, &bound.sa, &blen) != 0) {
			e = errno;
			goto fail;
		}
		l->port = net_addr_port(&bound);
		l->addr = bound;
		if (l->adv_port == 0)
			l->adv_port = l->port;
		net_listener_set_name(l);
	}
	l->fd = fd;
	return 0;
fail:
	snprintf(err, errsize, "%s: %s", l->name, strerror(e));
	if (fd >= 0)
		close(fd);
	return e;
}

/* ------------------------------------------------------------- timers */

static void rearm(struct worker *w);

void net_wheel_sync(struct worker *w)
{
	uint64_t now = uv_now(&w->loop);

	/* Timers fired here may include the one the loop is armed for. */
	if (now > w->wheel.now && twheel_advance(&w->wheel, now) > 0)
		rearm(w);
}

static void timer_cb(uv_timer_t *t);

/*
 * The loop wakes for timers only at multiples of this many milliseconds
 * of its clock. Every call leaves timers that expire at scattered times
 * (transactions' wait and timer J, dialogs' linger): at 1 ms they woke an
 * idle worker about once per call at 500 calls/s, and a wake-up costs more
 * than what the timer does. A timer runs up to TIMER_GRAIN_MS - 1 ms late;
 * SIP's timers count in hundreds of milliseconds at least (T1 = 500).
 */
#define TIMER_GRAIN_MS 16

/* Points the loop timer at the earliest wheel expiry, rounded up to the
 * grain. */
static void rearm(struct worker *w)
{
	uint64_t d = twheel_next_wakeup(&w->wheel);
	uint64_t now = uv_now(&w->loop);
	uint64_t at;

	w->wheel.started_min = UINT64_MAX;
	if (d == UINT64_MAX) {
		if (w->armed != UINT64_MAX)
			uv_timer_stop(&w->timer);
		w->armed = UINT64_MAX;
		return;
	}
	at = (w->wheel.now + d + TIMER_GRAIN_MS - 1) / TIMER_GRAIN_MS *
	     TIMER_GRAIN_MS;
	if (at == w->armed)
		return;
	w->armed = at;
	uv_timer_start(&w->timer, timer_cb, at > now ? at - now : 0, 0);
}

static void timer_cb(uv_timer_t *t)
{
	struct worker *w = t->data;

	w->armed = UINT64_MAX;
	twheel_advance(&w->wheel, uv_now(&w->loop));
	rearm(w);
}

/*
 * Runs before the loop polls, so that the timers the callbacks of this
 * iteration started count for the poll's timeout. Only a timer started
 * before the moment the loop is armed for makes it look again (as
 * net_wheel_sync() does when it fired timers): finding the earliest
 * expiry may walk a slot of hundreds of timers (those of a 64 ms span at
 * level 1), and most timers started (a transaction's wait, its final
 * response timer) expire after the one already armed. A cancelled timer
 * may leave the loop armed too early: it wakes, fires nothing and
 * re-arms.
 */
static void prepare_cb(uv_prepare_t *p)
{
	struct worker *w = p->data;

	if (w->wheel.started_min < w->armed)
		rearm(w);
}

uint64_t worker_now(struct worker *w)
{
	return uv_now(&w->loop);
}

/* --------------------------------------------------------------- queue */

static struct rt_job *queue_take(struct worker *w, bool close)
{
	struct rt_job *list;

	pthread_mutex_lock(&w->qmx);
	list = w->qhead;
	w->qhead = NULL;
	w->qtail = NULL;
	atomic_store_explicit(&w->qlen, 0, memory_order_relaxed);
	if (close)
		w->qclosed = true;
	pthread_mutex_unlock(&w->qmx);
	return list;
}

static void run_jobs(struct worker *w, struct rt_job *job)
{
	while (job != NULL) {
		struct rt_job *next = job->next;

		job->fn(w, job);
		free(job);
		job = next;
	}
}

static void free_jobs(struct rt_job *job)
{
	while (job != NULL) {
		struct rt_job *next = job->next;

		free(job);
		job = next;
	}
}

void rt_post(struct rt *rt, unsigned i, struct rt_job *job)
{
	struct worker *w;

	if (i >= rt->nworkers) {
		LOG_ERR("rt_post: no worker %u, job dropped", i);
		free(job);
		return;
	}
	w = &rt->workers[i];
	job->next = NULL;
	pthread_mutex_lock(&w->qmx);
	if (w->qclosed) {
		pthread_mutex_unlock(&w->qmx);
		LOG_DBG("rt_post: worker %u has stopped, job dropped", i);
		free(job);
		return;
	}
	if (w->qtail != NULL)
		w->qtail->next = job;
	else
		w->qhead = job;
	w->qtail = job;
	atomic_fetch_add_explicit(&w->qlen, 1, memory_order_relaxed);
	/* Under the mutex: the worker closes the async only after setting
	 * qclosed under it, so the handle is still open here. */
	uv_async_send(&w->async);
	pthread_mutex_unlock(&w->qmx);
}

size_t worker_queue_len(struct worker *w)
{
	return atomic_load_explicit(&w->qlen, memory_order_relaxed);
}

/* rt_forward_rx's job: the rx and a copy of its bytes in one block. */
struct rx_job {
	struct rt_job job;
	struct net_rx rx;
	char data[];
};

static void rx_job_run(struct worker *w, struct rt_job *job)
{
	struct rx_job *j = (struct rx_job *)job;

	if (w->fini_done)
		return;
	j->rx.buf = j->data;
	w->rt->app.on_rx(w, &j->rx);
}

int rt_forward_rx(struct rt *rt, unsigned i, const struct net_rx *rx)
{
	struct rx_job *j;

	if (i >= rt->nworkers)
		return EINVAL;
	j = malloc(sizeof(*j) + rx->len);
	if (j == NULL)
		return ENOMEM;
	j->job.fn = rx_job_run;
	j->rx = *rx;
	memcpy(j->data, rx->buf, rx->len);
	rt_post(rt, i, &j->job);
	return 0;
}

/* ------------------------------------------------------------ shutdown */

static void close_handle(uv_handle_t *h)
{
	if (!uv_is_closing(h))
		uv_close(h, NULL);
}

static void walk_close(uv_handle_t *h, void *arg)
{
	close_handle(h);
}

/* Closes everything on the loop, including handles the application left,
 * and runs it until they are gone. Called where the loop is not running. */
static void loop_fini(struct worker *w)
{
	int err;

	if (!w->loop_ok)
		return;
	uv_walk(&w->loop, walk_close, NULL);
	uv_run(&w->loop, UV_RUN_DEFAULT);
	err = uv_loop_close(&w->loop);
	if (err != 0)
		LOG_ERR("worker %u: loop not closed: %s", w->id,
		        uv_strerror(err));
	w->loop_ok = false;
}

/* Stops the application, then everything: after this the loop has only
 * closing handles and uv_run returns. */
static void worker_finish(struct worker *w)
{
	struct rt *rt = w->rt;

	w->phase = WP_CLOSING;
	/* Whatever is still queued belongs to the shard: run it first; from
	 * now on posts are dropped. */
	run_jobs(w, queue_take(w, true));
	rt_calls_serve(w);
	rt_calls_close(w);
	if (w->shard_ok && rt->app.shard_fini != NULL)
		rt->app.shard_fini(w, w->shard);
	w->shard_ok = false;
	w->fini_done = true;
	tcp_close_all(w);
	uv_walk(&w->loop, walk_close, NULL);
}

static void drain_check(struct worker *w)
{
	struct rt *rt = w->rt;
	size_t busy = 0;

	if (w->phase != WP_DRAINING)
		return;
	if (rt->app.shard_busy != NULL && w->shard_ok)
		busy = rt->app.shard_busy(w);
	if (busy > 0 && uv_now(&w->loop) < w->drain_deadline)
		return;
	if (busy > 0)
		LOG_WARN("worker %u: %zu transactions still pending after "
		         "%u ms, stopping anyway",
		         w->id, busy, rt->cfg.shutdown_grace_ms);
	worker_finish(w);
}

static void drain_cb(uv_timer_t *t)
{
	struct worker *w = t->data;

	net_wheel_sync(w);
	drain_check(w);
}

static void start_drain(struct worker *w)
{
	w->phase = WP_DRAINING;
	for (unsigned i = 0; i < w->rt->nlst; i++) {
		struct wsock *s = &w->socks[i];

		if (!s->open)
			continue;
		if (s->lst->proto == NET_UDP) {
			/* Kept open: draining transactions still send. */
			udp_stop_reading(s);
		} else {
			close_handle(&s->u.h);
			s->open = false;
		}
	}
	w->drain_deadline = uv_now(&w->loop) + w->rt->cfg.shutdown_grace_ms;
	uv_timer_start(&w->drain, drain_cb, DRAIN_POLL_MS, DRAIN_POLL_MS);
	drain_check(w);
}

static void async_cb(uv_async_t *a)
{
	struct worker *w = a->data;

	net_wheel_sync(w);
	rt_calls_serve(w);
	if (w->phase != WP_CLOSING) {
		udp_hold(w);
		run_jobs(w, queue_take(w, false));
		udp_flush(w);
	}
	if (w->phase == WP_RUNNING &&
	    atomic_load_explicit(&w->rt->stop, memory_order_acquire))
		start_drain(w);
}

/* ------------------------------------------------------------- workers */

static int worker_open(struct worker *w)
{
	struct rt *rt = w->rt;
	int err;

	uv_timer_init(&w->loop, &w->timer);
	uv_timer_init(&w->loop, &w->drain);
	uv_prepare_init(&w->loop, &w->prep);
	w->timer.data = w;
	w->drain.data = w;
	w->prep.data = w;
	/* Neither keeps the loop alive: the async does, until shutdown. */
	uv_unref((uv_handle_t *)&w->prep);
	uv_unref((uv_handle_t *)&w->timer);
	uv_prepare_start(&w->prep, prepare_cb);
	twheel_init(&w->wheel, uv_now(&w->loop));
	w->armed = UINT64_MAX;

	w->socks = calloc(rt->nlst ? rt->nlst : 1, sizeof(*w->socks));
	if (w->socks == NULL)
		return ENOMEM;
	for (unsigned i = 0; i < rt->nlst; i++) {
		struct wsock *s = &w->socks[i];

		s->w = w;
		s->lst = &rt->lst[i];
		s->rfd = -1;
		err = rt->lst[i].proto == NET_UDP ? udp_worker_open(w, s)
		                                  : tcp_worker_open(w, s);
		if (err != 0) {
			snprintf(w->start_why, sizeof(w->start_why),
			         "%s: worker %u: %s", rt->lst[i].name, w->id,
			         strerror(err));
			return err;
		}
	}
	return 0;
}

/* The worker whose thread this is (rt_current_worker). */
static _Thread_local struct worker *this_worker;

struct worker *rt_current_worker(void)
{
	return this_worker;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct rt *rt = w->rt;
	int err, go;

	this_worker = w;

	err = worker_open(w);
	if (err == 0) {
		w->shard = rt->app.shard_init
		                   ? rt->app.shard_init(w, rt->app.app_arg)
		                   : NULL;
		w->shard_ok = w->shard != NULL || rt->app.shard_init == NULL;
		if (!w->shard_ok) {
			err = ECANCELED;
			snprintf(w->start_why, sizeof(w->start_why),
			         "worker %u: shard_init failed", w->id);
		}
	}
	pthread_mutex_lock(&rt->mx);
	w->start_err = err;
	rt->nreported++;
	pthread_cond_broadcast(&rt->cv);
	while (rt->go == 0)
		pthread_cond_wait(&rt->cv, &rt->mx);
	go = rt->go;
	pthread_mutex_unlock(&rt->mx);

	if (go > 0)
		uv_run(&w->loop, UV_RUN_DEFAULT);
	/* Also when the application stopped the loop itself. */
	if (w->phase != WP_CLOSING)
		worker_finish(w);
	loop_fini(w);
	/* Posts raced with the close: nobody will run them. */
	free_jobs(queue_take(w, true));
	mem_thread_fini();
	return NULL;
}

/* ------------------------------------------------------------- rt_* */

static void rt_destroy(struct rt *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];

		/* Workers whose thread never started still have a loop. */
		loop_fini(w);
		free_jobs(queue_take(w, true));
		udp_worker_fini(w);
		free(w->socks);
		rt_calls_close(w);
		pthread_mutex_destroy(&w->qmx);
		pthread_mutex_destroy(&w->cmx);
		pthread_cond_destroy(&w->ccond);
	}
	free(rt->workers);
	for (unsigned i = 0; i < rt->nlst; i++) {
		if (rt->lst[i].fd >= 0)
			close(rt->lst[i].fd);
	}
	free(rt->lst);
	ctab_fini(&rt->ctab);
	pthread_cond_destroy(&rt->cv);
	pthread_mutex_destroy(&rt->mx);
	free(rt);
}

static void join_all(struct rt *rt)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];

		if (w->thread_started) {
			pthread_join(w->thread, NULL);
			w->thread_started = false;
		}
	}
	rt->joined = true;
}

static void apply_defaults(struct rt_config *c)
{
	if (c->workers == 0)
		c->workers = 1;
	if (c->max_msg_size == 0)
		c->max_msg_size = DEFAULT_MAX_MSG;
	if (c->tcp_idle_timeout_ms == 0)
		c->tcp_idle_timeout_ms = DEFAULT_IDLE_MS;
	if (c->tcp_connect_timeout_ms == 0)
		c->tcp_connect_timeout_ms = DEFAULT_STALL_MS;
	if (c->tcp_send_timeout_ms == 0)
		c->tcp_send_timeout_ms = DEFAULT_STALL_MS;
	if (c->tcp_max_connections == 0)
		c->tcp_max_connections = DEFAULT_MAX_CONNECTIONS;
	if (c->tcp_conn_buf_max == 0)
		c->tcp_conn_buf_max = DEFAULT_CONN_BUF_MAX;
	if (c->tcp_conn_buf_max < c->max_msg_size)
		c->tcp_conn_buf_max = c->max_msg_size;
	if (c->shutdown_grace_ms == 0)
		c->shutdown_grace_ms = DEFAULT_GRACE_MS;
}

/* Appends listener i's worker ports (if it has them) to rt->lst; rt_start
 * has checked that their ports fit. */
static void add_worker_ports(struct rt *rt, unsigned i)
{
	struct net_listener *l = &rt->lst[i];

	if (!l->worker_ports)
		return;
	l->worker_ports_at = (int)rt->nlst;
	for (unsigned k = 0; k < rt->cfg.workers; k++) {
		struct net_listener *wl = &rt->lst[rt->nlst];

		*wl = *l;
		wl->index = rt->nlst++;
		wl->worker_ports = false;
		wl->worker_ports_at = -1;
		wl->owner = (int)k;
		wl->base = i;
		wl->port = l->worker_port_base ? l->worker_port_base + k : 0;
		/* The advertised host, with the port itself: a NAT in front
		 * must map the range one to one. 0 until bound. */
		wl->adv_port = wl->port;
		net_addr_set_port(&wl->addr, wl->port);
		net_listener_set_name(wl);
	}
}

static struct rt *rt_alloc(const struct rt_config *cfg,
                           const struct rt_app *app)
{
	struct rt *rt = calloc(1, sizeof(*rt));

	if (rt == NULL)
		return NULL;
	rt->cfg = *cfg;
	apply_defaults(&rt->cfg);
	rt->app = *app;
	pthread_mutex_init(&rt->mx, NULL);
	pthread_cond_init(&rt->cv, NULL);
	atomic_init(&rt->stop, false);
	unsigned nlst = cfg->nlisteners;
	for (unsigned i = 0; i < cfg->nlisteners; i++)
		if (cfg->listeners[i].worker_ports)
			nlst += rt->cfg.workers;
	rt->lst = calloc(nlst ? nlst : 1, sizeof(*rt->lst));
	rt->workers = calloc(rt->cfg.workers, sizeof(*rt->workers));
	if (ctab_init(&rt->ctab) != 0 || rt->lst == NULL ||
	    rt->workers == NULL) {
		free(rt->lst);
		free(rt->workers);
		ctab_fini(&rt->ctab);
		pthread_cond_destroy(&rt->cv);
		pthread_mutex_destroy(&rt->mx);
		free(rt);
		return NULL;
	}
	for (unsigned i = 0; i < cfg->nlisteners; i++) {
		rt->lst[i] = cfg->listeners[i];
		rt->lst[i].index = i;
		rt->lst[i].fd = -1;
		rt->lst[i].owner = -1;
		rt->lst[i].base = i;
		rt->lst[i].worker_ports_at = -1;
	}
	rt->nlst = cfg->nlisteners;
	for (unsigned i = 0; i < cfg->nlisteners; i++)
		add_worker_ports(rt, i);
	rt->cfg.listeners = rt->lst;
	rt->nworkers = rt->cfg.workers;
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];

		w->rt = rt;
		w->id = i;
		w->shared_fd = -1;
		pthread_mutex_init(&w->qmx, NULL);
		pthread_mutex_init(&w->cmx, NULL);
		pthread_cond_init(&w->ccond, NULL);
		atomic_init(&w->qlen, 0);
		w->qclosed = false;
		w->phase = WP_RUNNING;
	}
	return rt;
}

/* Loop and async of every worker, made before any thread runs so that
 * rt_post and rt_stop work from the first shard_init on. */
static int init_loops(struct rt *rt, char *err, size_t errsize)
{
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];
		int e = uv_loop_init(&w->loop);

		if (e == 0) {
			w->loop_ok = true;
			e = uv_async_init(&w->loop, &w->async, async_cb);
			w->async.data = w;
		}
		if (e != 0) {
			snprintf(err, errsize, "worker %u: %s", i,
			         uv_strerror(e));
			return -e;
		}
	}
	return 0;
}

int rt_start(struct rt **out, const struct rt_config *cfg,
             const struct rt_app *app, char *err, size_t errsize)
{
	struct rt *rt;
	int e = 0;

	if (errsize > 0)
		err[0] = '\0';
	if (app->on_rx == NULL || (cfg->nlisteners > 0 && !cfg->listeners)) {
		snprintf(err, errsize, "rt_start: incomplete configuration");
		return EINVAL;
	}
	struct rt_config c = *cfg;
	apply_defaults(&c);
	for (unsigned i = 0; i < cfg->nlisteners; i++) {
		const struct net_listener *l = &cfg->listeners[i];
		if (l->worker_ports && l->worker_port_base != 0 &&
		    l->worker_port_base + c.workers - 1 > 65535) {
			snprintf(err, errsize,
			         "%s: worker_ports %u: %u workers need ports "
			         "up to %u",
			         l->name, l->worker_port_base, c.workers,
			         l->worker_port_base + c.workers - 1);
			return EINVAL;
		}
	}
	rt = rt_alloc(cfg, app);
	if (rt == NULL) {
		snprintf(err, errsize, "rt_start: out of memory");
		return ENOMEM;
	}
	for (unsigned i = 0; i < rt->nlst && e == 0; i++)
		e = bind_listener(&rt->lst[i], err, errsize);
	if (e == 0)
		e = init_loops(rt, err, errsize);
	for (unsigned i = 0; i < rt->nworkers && e == 0; i++) {
		struct worker *w = &rt->workers[i];

		e = pthread_create(&w->thread, NULL, worker_main, w);
		if (e != 0)
			snprintf(err, errsize, "worker %u: %s", i, strerror(e));
		else
			w->thread_started = true;
	}

	/* Everyone started reports, then all run or all undo. */
	pthread_mutex_lock(&rt->mx);
	for (;;) {
		unsigned started = 0;

		for (unsigned i = 0; i < rt->nworkers; i++)
			started += rt->workers[i].thread_started;
		if (rt->nreported >= started)
			break;
		pthread_cond_wait(&rt->cv, &rt->mx);
	}
	for (unsigned i = 0; i < rt->nworkers && e == 0; i++) {
		struct worker *w = &rt->workers[i];

		if (w->start_err != 0) {
			e = w->start_err;
			snprintf(err, errsize, "%s", w->start_why);
		}
	}
	rt->go = e == 0 ? 1 : -1;
	pthread_cond_broadcast(&rt->cv);
	pthread_mutex_unlock(&rt->mx);

	if (e != 0) {
		join_all(rt);
		rt_destroy(rt);
		return e;
	}
	for (unsigned i = 0; i < rt->nlst; i++)
		LOG_INFO("listening on %s (advertised %s:%u)", rt->lst[i].name,
		         rt->lst[i].adv_host, (unsigned)rt->lst[i].adv_port);
	*out = rt;
	return 0;
}

void rt_stop(struct rt *rt)
{
	pthread_mutex_lock(&rt->mx);
	atomic_store_explicit(&rt->stop, true, memory_order_release);
	pthread_cond_broadcast(&rt->cv);
	pthread_mutex_unlock(&rt->mx);
	for (unsigned i = 0; i < rt->nworkers; i++) {
		struct worker *w = &rt->workers[i];

		pthread_mutex_lock(&w->qmx);
		if (!w->qclosed)
			uv_async_send(&w->async);
		pthread_mutex_unlock(&w->qmx);
	}
}

void rt_wait(struct rt *rt)
{
	pthread_mutex_lock(&rt->mx);
	while (!atomic_load(&rt->stop))
		pthread_cond_wait(&rt->cv, &rt->mx);
	pthread_mutex_unlock(&rt->mx);
	join_all(rt);
}

void rt_free(struct rt *rt)
{
	if (rt == NULL)
		return;
	if (!rt->joined) {
		rt_stop(rt);
		rt_wait(rt);
	}
	rt_destroy(rt);
}

unsigned rt_workers(const struct rt *rt)
{
	return rt->nworkers;
}

struct worker *rt_worker(struct rt *rt, unsigned i)
{
	return i < rt->nworkers ? &rt->workers[i] : NULL;
}

const struct net_listener *rt_listeners(const struct rt *rt, unsigned *n)
{
	if (n != NULL)
		*n = rt->nlst;
	return rt->lst;
}

const struct net_listener *rt_listener_for(const struct rt *rt,
                                           enum net_proto proto, int af)
{
	for (unsigned i = 0; i < rt->nlst; i++) {
		const struct net_listener *l = &rt->lst[i];

		if (l->proto == proto && l->owner < 0 &&
		    (af == AF_UNSPEC || l->addr.sa.sa_family == af))
			return l;
	}
	return NULL;
}

const struct net_listener *rt_worker_listener(const struct worker *w,
                                              const struct net_listener *l)
{
	if (l == NULL || l->worker_ports_at < 0)
		return l;
	return &w->rt->lst[(unsigned)l->worker_ports_at + w->id];
}

bool rt_same_listener(const struct net_listener *a,
                      const struct net_listener *b)
{
	return a == b || (a && b && a->base == b->base);
}

unsigned worker_id(const struct worker *w)
{
	return w->id;
}

struct rt *worker_rt(struct worker *w)
{
	return w->rt;
}

void *worker_shard(struct worker *w)
{
	return w->shard;
}

uv_loop_t *worker_loop(struct worker *w)
{
	return &w->loop;
}

struct twheel *worker_wheel(struct worker *w)
{
	return &w->wheel;
}

int net_send(struct worker *w, const struct net_dst *dst, const char *buf,
             size_t len, uint64_t *used_conn)
{
	/* libuv counts buffer lengths in unsigned int. */
	if (len > INT32_MAX)
		return EMSGSIZE;
	if (dst->proto == NET_UDP) {
		if (used_conn != NULL)
			*used_conn = 0;
		return udp_send(w, dst, buf, len);
	}
	return tcp_send(w, dst, buf, len, used_conn);
}
