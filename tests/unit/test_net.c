/*
 * net: listen spec parsing, addresses, and the runtime over real sockets on
 * the loopback (port 0, the bound port read back with rt_listeners()).
 *
 * Application callbacks run in worker threads: they only record what they
 * see, under T.mx; the test thread waits for the records and asserts.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "net/net.h"

#define WAIT_MS 3000

/* ----------------------------------------------------------- parsing */

static void parse_ok(const char *spec, enum net_proto proto, const char *host,
                     uint16_t port, const char *adv_host, uint16_t adv_port,
                     const char *name)
{
	struct net_listener l;
	const char *why = NULL;
	int err = net_listener_parse(&l, spec, 5060, &why);

	if (err != 0)
		fail_msg("'%s': %s", spec, why);
	assert_int_equal(l.proto, proto);
	assert_string_equal(l.host, host);
	assert_int_equal(l.port, port);
	assert_string_equal(l.adv_host, adv_host);
	assert_int_equal(l.adv_port, adv_port);
	assert_string_equal(l.name, name);
	assert_int_equal(net_addr_port(&l.addr), port);
}

static void parse_bad(const char *spec, const char *why_part)
{
	struct net_listener l;
	const char *why = NULL;

	memset(&l, 0x5a, sizeof(l));
	if (net_listener_parse(&l, spec, 5060, &why) == 0)
		fail_msg("'%s' accepted", spec);
	assert_non_null(why);
	if (strstr(why, why_part) == NULL)
		fail_msg("'%s': '%s' lacks '%s'", spec, why, why_part);
	/* Out-parameters are written only on success. */
	assert_int_equal(l.port, 0x5a5a);
}

static void test_listener_parse(void **state)
{
	parse_ok("udp:127.0.0.1:5060", NET_UDP, "127.0.0.1", 5060, "127.0.0.1",
	         5060, "udp:127.0.0.1:5060");
	parse_ok("tcp:[::1]:5060", NET_TCP, "[::1]", 5060, "[::1]", 5060,
	         "tcp:[::1]:5060");
	parse_ok("127.0.0.1", NET_UDP, "127.0.0.1", 5060, "127.0.0.1", 5060,
	         "udp:127.0.0.1:5060");
	parse_ok("tcp:127.0.0.1", NET_TCP, "127.0.0.1", 5060, "127.0.0.1", 5060,
	         "tcp:127.0.0.1:5060");
	parse_ok("TCP:10.1.2.3:5080", NET_TCP, "10.1.2.3", 5080, "10.1.2.3",
	         5080, "tcp:10.1.2.3:5080");
	parse_ok("udp:0.0.0.0:5070 advertise 192.0.2.1:5070", NET_UDP,
	         "0.0.0.0", 5070, "192.0.2.1", 5070, "udp:0.0.0.0:5070");
	parse_ok("udp:0.0.0.0:5070 advertise 192.0.2.1", NET_UDP, "0.0.0.0",
	         5070, "192.0.2.1", 5070, "udp:0.0.0.0:5070");
	parse_ok("  tcp:0.0.0.0:5070\tadvertise  sip.example.com:5080 ",
	         NET_TCP, "0.0.0.0", 5070, "sip.example.com", 5080,
	         "tcp:0.0.0.0:5070");
	parse_ok("udp:[::]:5060 advertise [2001:db8::1]:5062", NET_UDP, "[::]",
	         5060, "[2001:db8::1]", 5062, "udp:[::]:5060");
	parse_ok("udp:[::]:5060 advertise 2001:db8::1", NET_UDP, "[::]", 5060,
	         "[2001:db8::1]", 5060, "udp:[::]:5060");
	parse_ok("::1", NET_UDP, "[::1]", 5060, "[::1]", 5060,
	         "udp:[::1]:5060");
	parse_ok("[::1]:5070", NET_UDP, "[::1]", 5070, "[::1]", 5070,
	         "udp:[::1]:5070");
	parse_ok("tcp:::1", NET_TCP, "[::1]", 5060, "[::1]", 5060,
	         "tcp:[::1]:5060");
	/* A protocol-looking IPv6 prefix is an address. */
	parse_ok("abcd::1", NET_UDP, "[abcd::1]", 5060, "[abcd::1]", 5060,
	         "udp:[abcd::1]:5060");
	/* Canonical text. */
	parse_ok("udp:[2001:DB8:0::1]:5060", NET_UDP, "[2001:db8::1]", 5060,
	         "[2001:db8::1]", 5060, "udp:[2001:db8::1]:5060");
	parse_ok("udp:127.0.0.1:0", NET_UDP, "127.0.0.1", 0, "127.0.0.1", 0,
	         "udp:127.0.0.1:0");

	parse_bad("udp:example.com:5060", "numeric");
	parse_bad("localhost", "numeric");
	parse_bad("udp:127.0.0.1:70000", "port");
	parse_bad("udp:127.0.0.1:abc", "port");
	parse_bad("udp:127.0.0.1:", "port");
	parse_bad("udp:[::1]:-1", "port");
	parse_bad("tls:127.0.0.1:5061", "tls is not supported yet");
	parse_bad("foo:127.0.0.1", "unknown protocol");
	parse_bad("", "empty");
	parse_bad("udp:127.0.0.1:5060 bogus", "advertise");
	parse_bad("udp:127.0.0.1 advertise", "missing");
	parse_bad("udp:127.0.0.1 advertise a_b", "advertised host");
	parse_bad("udp:127.0.0.1 advertise 1.2.3.4:99999", "port");
	parse_bad("udp:127.0.0.1 advertise 1.2.3.4 more", "unexpected");
	parse_bad("udp:[::1", "']'");
	parse_bad("udp:[::1]x", "after ']'");
	parse_bad("udp:", "host");
}

static void test_listener_parse_worker_ports(void **state)
{
	const char *specs[] = {
	        "udp:10.0.0.1:5060 worker_ports 5070 advertise 192.0.2.1",
	        "udp:10.0.0.1:5060 advertise 192.0.2.1 worker_ports 5070"};
	struct net_listener l;
	const char *why = NULL;

	for (unsigned i = 0; i < 2; i++) {
		assert_int_equal(net_listener_parse(&l, specs[i], 5060, &why),
		                 0);
		assert_true(l.worker_ports);
		assert_int_equal(l.worker_port_base, 5070);
		assert_string_equal(l.adv_host, "192.0.2.1");
		assert_int_equal(l.port, 5060);
	}
	assert_int_equal(net_listener_parse(&l, "udp:10.0.0.1 worker_ports 0",
	                                    5060, &why),
	                 0);
	assert_true(l.worker_ports);
	assert_int_equal(l.worker_port_base, 0);
	assert_int_equal(net_listener_parse(&l, "udp:10.0.0.1", 5060, &why), 0);
	assert_false(l.worker_ports);

	parse_bad("tcp:10.0.0.1 worker_ports 5070", "UDP listeners only");
	parse_bad("udp:10.0.0.1 worker_ports", "missing port");
	parse_bad("udp:10.0.0.1 worker_ports 70000", "port number");
	parse_bad("udp:10.0.0.1 worker_ports -1", "port number");
	parse_bad("udp:10.0.0.1 worker_ports 1 worker_ports 2", "twice");
	parse_bad("udp:10.0.0.1 advertise 1.2.3.4 advertise 1.2.3.5", "twice");
}

static void test_addr(void **state)
{
	union net_sockaddr a, b;
	char host[64];

	assert_int_equal(net_addr_make(&a, SLICE_LIT("::1"), 5060), 0);
	assert_int_equal(net_addr_make(&b, SLICE_LIT("[::1]"), 5060), 0);
	assert_int_equal(a.sa.sa_family, AF_INET6);
	assert_true(net_addr_eq(&a, &b));
	net_addr_host(host, sizeof(host), &a);
	assert_string_equal(host, "::1");
	assert_int_equal(net_addr_port(&a), 5060);

	assert_int_equal(net_addr_make(&b, SLICE_LIT("[::1]"), 5061), 0);
	assert_false(net_addr_eq(&a, &b));

	assert_int_equal(net_addr_make(&a, SLICE_LIT("192.0.2.7"), 5080), 0);
	assert_int_equal(a.sa.sa_family, AF_INET);
	net_addr_host(host, sizeof(host), &a);
	assert_string_equal(host, "192.0.2.7");
	assert_int_equal(net_addr_port(&a), 5080);
	/* the hand-made dotted quad: every octet width */
	assert_int_equal(net_addr_make(&b, SLICE_LIT("255.0.10.100"), 1), 0);
	net_addr_host(host, sizeof(host), &b);
	assert_string_equal(host, "255.0.10.100");
	assert_int_equal(net_addr_make(&b, SLICE_LIT("0.0.0.0"), 1), 0);
	net_addr_host(host, sizeof(host), &b);
	assert_string_equal(host, "0.0.0.0");
	assert_false(net_addr_eq(&a, &b));

	assert_int_equal(net_addr_make(&a, SLICE_LIT("example.com"), 1),
	                 EINVAL);
	assert_int_equal(net_addr_make(&a, SLICE_LIT(""), 1), EINVAL);
	assert_int_equal(net_addr_make(&a, SLICE_LIT("[]"), 1), EINVAL);
	assert_int_equal(net_addr_make(&a, SLICE_LIT("1.2.3.4.5"), 1), EINVAL);
	/* IPv4 as inet_pton() takes it, whichever path reads it: no
	 * leading zero, no octet over 255, four of them */
	static const char *const bad4[] = {
	        "01.2.3.4", "1.2.3.00", "256.1.1.1", "1.2.3.2550", "1.2.3",
	        "1..2.3",   "1.2.3.",   ".1.2.3",    "1.2.3.4 "};
	for (size_t i = 0; i < sizeof(bad4) / sizeof(bad4[0]); i++)
		assert_int_equal(net_addr_make(&a, slice_cstr(bad4[i]), 1),
		                 EINVAL);
	assert_int_equal(net_addr_make(&a, SLICE_LIT("10.20.199.250"), 1), 0);
	net_addr_host(host, sizeof(host), &a);
	assert_string_equal(host, "10.20.199.250");
	assert_string_equal(net_proto_name(NET_UDP), "udp");
	assert_string_equal(net_proto_name(NET_TCP), "tcp");
}

/* ------------------------------------------------------- test harness */

enum app_mode {
	MODE_RECORD, /* record on_rx */
	MODE_ECHO,   /* hand to the owner by payload hash; it echoes */
};

struct rec {
	unsigned wid;
	enum net_proto proto;
	uint64_t conn_id;
	union net_sockaddr src;
	bool has_lst;
	size_t len;
	char data[1024];
};

#define MAX_RECS 64

struct shard {
	unsigned id;
	struct tmr tmr;
	uint64_t tmr_start; /* worker_now() when armed */
	uint64_t tmr_start_clock;
};

static struct {
	pthread_mutex_t mx;
	pthread_cond_t cv;
	struct rt *rt;
	enum app_mode mode;
	struct rec recs[MAX_RECS];
	unsigned nrecs;
	unsigned nforwarded;
	unsigned nfails;
	uint64_t fail_id;
	unsigned fail_wid;
	unsigned ninit;
	unsigned nfini;
	unsigned nbusy_calls;
	uint64_t busy_until; /* clock_now_ms(); shard_busy() is 1 before */
	bool busy_forever;
	unsigned ntimers;
	unsigned tmr_wid;
	uint64_t tmr_elapsed; /* worker clock */
	uint64_t tmr_elapsed_clock;
} T = {
        .mx = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER,
};

static void bump(unsigned *counter)
{
	pthread_mutex_lock(&T.mx);
	(*counter)++;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mx);
}

/* Waits until *counter >= n; false on timeout. */
static bool wait_count(unsigned *counter, unsigned n, unsigned ms)
{
	struct timespec until;
	bool ok;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	pthread_mutex_lock(&T.mx);
	while (*counter < n) {
		if (pthread_cond_timedwait(&T.cv, &T.mx, &until) == ETIMEDOUT)
			break;
	}
	ok = *counter >= n;
	pthread_mutex_unlock(&T.mx);
	return ok;
}

static void *app_shard_init(struct worker *w, void *arg)
{
	struct shard *s = calloc(1, sizeof(*s));

	if (s == NULL)
		return NULL;
	s->id = worker_id(w);
	tmr_init(&s->tmr);
	bump(&T.ninit);
	return s;
}

static void app_shard_fini(struct worker *w, void *shard)
{
	struct shard *s = shard;

	tmr_cancel(worker_wheel(w), &s->tmr);
	free(s);
	bump(&T.nfini);
}

static size_t app_shard_busy(struct worker *w)
{
	size_t busy;

	pthread_mutex_lock(&T.mx);
	T.nbusy_calls++;
	busy = T.busy_forever || clock_now_ms() < T.busy_until;
	pthread_mutex_unlock(&T.mx);
	return busy;
}

static void app_conn_fail(struct worker *w, uint64_t conn_id)
{
	pthread_mutex_lock(&T.mx);
	T.fail_id = conn_id;
	T.fail_wid = worker_id(w);
	T.nfails++;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mx);
}

static void record(struct worker *w, const struct net_rx *rx)
{
	pthread_mutex_lock(&T.mx);
	if (T.nrecs < MAX_RECS) {
		struct rec *r = &T.recs[T.nrecs++];

		r->wid = worker_id(w);
		r->proto = rx->proto;
		r->conn_id = rx->conn_id;
		r->src = rx->src;
		r->has_lst = rx->lst != NULL;
		r->len = rx->len < sizeof(r->data) ? rx->len : sizeof(r->data);
		memcpy(r->data, rx->buf, r->len);
	}
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mx);
}

static unsigned owner_of(const char *p, size_t len, unsigned nworkers)
{
	return (unsigned)(hash_bytes(p, len) % nworkers);
}

static void app_on_rx(struct worker *w, const struct net_rx *rx)
{
	struct rt *rt = worker_rt(w);
	unsigned owner;
	char reply[1100];
	int n;

	if (T.mode == MODE_RECORD) {
		record(w, rx);
		return;
	}
	owner = owner_of(rx->buf, rx->len, rt_workers(rt));
	if (owner != worker_id(w)) {
		if (rt_forward_rx(rt, owner, rx) == 0)
			bump(&T.nforwarded);
		return;
	}
	record(w, rx);
	n = snprintf(reply, sizeof(reply), "%u %.*s", worker_id(w),
	             (int)rx->len, rx->buf);
	net_send(w,
	         &(struct net_dst){.proto = rx->proto,
	                           .addr = rx->src,
	                           .lst = rx->lst,
	                           .conn_id = rx->conn_id},
	         reply, (size_t)n, NULL);
}

static const struct rt_app app = {
        .shard_init = app_shard_init,
        .shard_fini = app_shard_fini,
        .on_rx = app_on_rx,
        .shard_busy = app_shard_busy,
        .on_conn_fail = app_conn_fail,
};

static void reset_state(enum app_mode mode)
{
	pthread_mutex_lock(&T.mx);
	T.mode = mode;
	T.nrecs = 0;
	T.nforwarded = 0;
	T.nfails = 0;
	T.ninit = 0;
	T.nfini = 0;
	T.nbusy_calls = 0;
	T.busy_until = 0;
	T.busy_forever = false;
	T.ntimers = 0;
	pthread_mutex_unlock(&T.mx);
}

/* Starts a runtime with the listeners of specs (NULL-terminated). */
static struct rt *start_rt(struct rt_config *cfg, const char *const *specs)
{
	struct net_listener lst[4];
	unsigned n = 0;
	char err[256];
	struct rt *rt = NULL;

	for (; specs != NULL && specs[n] != NULL; n++) {
		const char *why = "";

		if (net_listener_parse(&lst[n], specs[n], 5060, &why) != 0)
			fail_msg("%s: %s", specs[n], why);
	}
	cfg->listeners = lst;
	cfg->nlisteners = n;
	if (cfg->workers == 0)
		cfg->workers = 2;
	if (rt_start(&rt, cfg, &app, err, sizeof(err)) != 0)
		fail_msg("rt_start: %s", err);
	assert_int_equal(T.ninit, cfg->workers);
	T.rt = rt;
	return rt;
}

static void stop_rt(struct rt *rt)
{
	rt_stop(rt);
	rt_wait(rt);
	rt_free(rt);
	T.rt = NULL;
}

static union net_sockaddr listener_addr(struct rt *rt, unsigned i)
{
	unsigned n;
	const struct net_listener *l = rt_listeners(rt, &n);

	assert_true(i < n);
	assert_int_not_equal(l[i].port, 0);
	assert_int_equal(net_addr_port(&l[i].addr), l[i].port);
	return l[i].addr;
}

/* Runs fn(w, arg) on worker wid and waits for it. */
struct call_job {
	struct rt_job job;
	void (*fn)(struct worker *w, void *arg);
	void *arg;
	unsigned *done;
};

static void call_job_run(struct worker *w, struct rt_job *job)
{
	struct call_job *j = (struct call_job *)job;

	j->fn(w, j->arg);
	bump(j->done);
}

static void run_on(struct rt *rt, unsigned wid,
                   void (*fn)(struct worker *w, void *arg), void *arg)
{
	struct call_job *j = calloc(1, sizeof(*j));
	unsigned done = 0;

	assert_non_null(j);
	j->job.fn = call_job_run;
	j->fn = fn;
	j->arg = arg;
	j->done = &done;
	rt_post(rt, wid, &j->job);
	assert_true(wait_count(&done, 1, WAIT_MS));
}

/* A send from a worker, for run_on. */
struct send_req {
	struct net_dst dst;
	const char *data;
	int rc;
	uint64_t used;
};

static void do_send(struct worker *w, void *arg)
{
	struct send_req *r = arg;

	r->rc = net_send(w, &r->dst, r->data, strlen(r->data), &r->used);
}

/* ------------------------------------------------------------ sockets */

static int client_socket(int af, int type, bool bind_loopback)
{
	int fd = socket(af, type | SOCK_CLOEXEC, 0);
	struct timeval tv = {.tv_sec = WAIT_MS / 1000};

	assert_true(fd >= 0);
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	if (bind_loopback) {
		union net_sockaddr a;

		assert_int_equal(net_addr_make(&a,
		                               af == AF_INET6
		                                       ? SLICE_LIT("::1")
		                                       : SLICE_LIT("127.0.0.1"),
		                               0),
		                 0);
		assert_int_equal(
		        bind(fd, &a.sa,
		             af == AF_INET6 ? sizeof(a.in6) : sizeof(a.in)),
		        0);
	}
	return fd;
}

static union net_sockaddr local_addr(int fd)
{
	union net_sockaddr a;
	socklen_t len = sizeof(a);

	memset(&a, 0, sizeof(a));
	assert_int_equal(getsockname(fd, &a.sa, &len), 0);
	return a;
}

static socklen_t addr_len(const union net_sockaddr *a)
{
	return a->sa.sa_family == AF_INET6 ? sizeof(a->in6) : sizeof(a->in);
}

static bool have_ipv6_loopback(void)
{
	int fd = socket(AF_INET6, SOCK_DGRAM, 0);
	union net_sockaddr a;
	bool ok;

	if (fd < 0)
		return false;
	net_addr_make(&a, SLICE_LIT("::1"), 0);
	ok = bind(fd, &a.sa, sizeof(a.in6)) == 0;
	close(fd);
	return ok;
}

static void send_all(int fd, const char *p, size_t len)
{
	while (len > 0) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		assert_true(n > 0);
		p += n;
		len -= (size_t)n;
	}
}

/* Reads exactly len bytes (SO_RCVTIMEO bounds the wait). */
static void recv_exact(int fd, char *buf, size_t len)
{
	size_t got = 0;

	while (got < len) {
		ssize_t n = recv(fd, buf + got, len - got, 0);

		if (n <= 0)
			fail_msg("recv: %zd after %zu of %zu bytes (%s)", n,
			         got, len, strerror(errno));
		got += (size_t)n;
	}
}

static void expect_bytes(int fd, const char *want)
{
	size_t len = strlen(want);
	char *buf = malloc(len + 1);

	assert_non_null(buf);
	recv_exact(fd, buf, len);
	buf[len] = '\0';
	assert_string_equal(buf, want);
	free(buf);
}

/* The peer closes: recv returns 0 (or ECONNRESET) within the timeout. */
static void expect_closed(int fd)
{
	char buf[256];
	ssize_t n;

	do {
		n = recv(fd, buf, sizeof(buf), 0);
	} while (n > 0);
	if (n < 0 && errno != ECONNRESET)
		fail_msg("connection not closed: %s", strerror(errno));
}

static int tcp_connect_to(const union net_sockaddr *a)
{
	int fd = client_socket(a->sa.sa_family, SOCK_STREAM, false);

	assert_int_equal(connect(fd, &a->sa, addr_len(a)), 0);
	return fd;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	nanosleep(&ts, NULL);
}

/* ------------------------------------------------------------ runtime */

static void test_bind_error(void **state)
{
	struct rt_config cfg = {.workers = 1};
	struct net_listener l;
	struct rt *rt = NULL;
	char spec[64], want[128], err[256];
	const char *why;
	int types[] = {SOCK_DGRAM, SOCK_STREAM};

	reset_state(MODE_RECORD);
	for (unsigned i = 0; i < 2; i++) {
		int fd = client_socket(AF_INET, types[i], true);
		union net_sockaddr a = local_addr(fd);
		const char *proto = i == 0 ? "udp" : "tcp";

		if (types[i] == SOCK_STREAM)
			assert_int_equal(listen(fd, 1), 0);
		snprintf(spec, sizeof(spec), "%s:127.0.0.1:%u", proto,
		         (unsigned)net_addr_port(&a));
		assert_int_equal(net_listener_parse(&l, spec, 5060, &why), 0);
		cfg.listeners = &l;
		cfg.nlisteners = 1;
		assert_int_equal(rt_start(&rt, &cfg, &app, err, sizeof(err)),
		                 EADDRINUSE);
		snprintf(want, sizeof(want), "%s: %s", spec,
		         strerror(EADDRINUSE));
		assert_string_equal(err, want);
		assert_null(rt);
		assert_int_equal(T.ninit, 0);
		close(fd);
	}
}

/* A second runtime on a port the first holds fails, UDP included. */
static void test_bind_twice(void **state)
{
	const char *protos[] = {"udp", "tcp"};

	for (unsigned i = 0; i < 2; i++) {
		struct rt_config cfg = {.workers = 1}, cfg2 = {.workers = 1};
		struct net_listener l;
		struct rt *rt, *rt2 = NULL;
		char spec[64], err[256];
		const char *why;

		snprintf(spec, sizeof(spec), "%s:127.0.0.1:0", protos[i]);
		reset_state(MODE_RECORD);
		rt = start_rt(&cfg, (const char *[]){spec, NULL});
		snprintf(spec, sizeof(spec), "%s:127.0.0.1:%u", protos[i],
		         (unsigned)rt_listeners(rt, NULL)[0].port);
		assert_int_equal(net_listener_parse(&l, spec, 5060, &why), 0);
		cfg2.listeners = &l;
		cfg2.nlisteners = 1;
		assert_int_equal(rt_start(&rt2, &cfg2, &app, err, sizeof(err)),
		                 EADDRINUSE);
		assert_null(rt2);
		stop_rt(rt);
	}
}

static void udp_echo_round(struct rt *rt, unsigned li, int af, unsigned count)
{
	union net_sockaddr srv = listener_addr(rt, li);
	int fd = client_socket(af, SOCK_DGRAM, true);
	union net_sockaddr me = local_addr(fd);
	unsigned base;
	char buf[256];

	pthread_mutex_lock(&T.mx);
	base = T.nrecs;
	pthread_mutex_unlock(&T.mx);
	for (unsigned i = 0; i < count; i++) {
		int n = snprintf(buf, sizeof(buf), "ping-%d-%u", af, i);

		assert_int_equal(
		        sendto(fd, buf, (size_t)n, 0, &srv.sa, addr_len(&srv)),
		        n);
	}
	for (unsigned i = 0; i < count; i++) {
		union net_sockaddr from;
		socklen_t flen = sizeof(from);
		ssize_t n =
		        recvfrom(fd, buf, sizeof(buf) - 1, 0, &from.sa, &flen);
		unsigned wid;
		char *payload;

		assert_true(n > 0);
		buf[n] = '\0';
		/* Replies leave from the listener's socket. */
		assert_true(net_addr_eq(&from, &srv));
		wid = (unsigned)strtoul(buf, &payload, 10);
		assert_int_equal(*payload, ' ');
		payload++;
		assert_int_equal(wid, owner_of(payload, strlen(payload), 2));
	}
	assert_true(wait_count(&T.nrecs, base + count, WAIT_MS));
	pthread_mutex_lock(&T.mx);
	for (unsigned i = base; i < base + count; i++) {
		assert_int_equal(T.recs[i].proto, NET_UDP);
		assert_int_equal(T.recs[i].conn_id, 0);
		assert_true(T.recs[i].has_lst);
		assert_true(net_addr_eq(&T.recs[i].src, &me));
		assert_int_equal(T.recs[i].wid,
		                 owner_of(T.recs[i].data, T.recs[i].len, 2));
	}
	pthread_mutex_unlock(&T.mx);
	close(fd);
}

static void test_udp_forward_echo(void **state)
{
	bool v6 = have_ipv6_loopback();
	const char *specs[] = {"udp:127.0.0.1:0", v6 ? "udp:[::1]:0" : NULL,
	                       NULL};
	struct rt_config cfg = {.workers = 2};
	struct rt *rt;

	reset_state(MODE_ECHO);
	rt = start_rt(&cfg, specs);
	assert_int_equal(rt_workers(rt), 2);
	assert_non_null(rt_worker(rt, 1));
	assert_null(rt_worker(rt, 2));
	assert_ptr_equal(rt_listener_for(rt, NET_UDP, AF_INET),
	                 &rt_listeners(rt, NULL)[0]);
	assert_null(rt_listener_for(rt, NET_TCP, AF_UNSPEC));
	udp_echo_round(rt, 0, AF_INET, 20);
	if (v6)
		udp_echo_round(rt, 1, AF_INET6, 10);
	else
		print_message("no IPv6 loopback: IPv6 part skipped\n");
	stop_rt(rt);
	assert_int_equal(T.nfini, 2);
}

/* Worker ports: each is read by its worker only; any worker sends from
 * any of them (a datagram handed over is answered where it arrived). */
static void test_udp_worker_ports(void **state)
{
	const char *specs[] = {"udp:127.0.0.1:0 worker_ports 0", NULL};
	struct rt_config cfg = {.workers = 2};
	const struct net_listener *l;
	struct rt *rt;
	unsigned n;

	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, specs);
	l = rt_listeners(rt, &n);
	assert_int_equal(n, 3);
	assert_ptr_equal(rt_listener_for(rt, NET_UDP, AF_UNSPEC), &l[0]);
	assert_int_not_equal(l[1].port, l[2].port);
	for (unsigned i = 0; i < 2; i++) {
		const struct net_listener *wl = &l[1 + i];
		char name[96];

		assert_ptr_equal(rt_worker_listener(rt_worker(rt, i), &l[0]),
		                 wl);
		assert_ptr_equal(rt_worker_listener(rt_worker(rt, i), wl), wl);
		assert_int_equal(wl->owner, (int)i);
		assert_true(rt_same_listener(wl, &l[0]));
		assert_int_not_equal(wl->port, l[0].port);
		assert_int_equal(wl->adv_port, wl->port);
		snprintf(name, sizeof(name), "udp:127.0.0.1:%u", wl->port);
		assert_string_equal(wl->name, name);
	}
	assert_false(rt_same_listener(&l[1], NULL));
	for (unsigned i = 0; i < 2; i++) {
		union net_sockaddr srv = listener_addr(rt, 1 + i);
		int fd = client_socket(AF_INET, SOCK_DGRAM, true);
		unsigned base;

		pthread_mutex_lock(&T.mx);
		base = T.nrecs;
		pthread_mutex_unlock(&T.mx);
		for (unsigned k = 0; k < 10; k++)
			assert_int_equal(
			        sendto(fd, "x", 1, 0, &srv.sa, addr_len(&srv)),
			        1);
		assert_true(wait_count(&T.nrecs, base + 10, WAIT_MS));
		pthread_mutex_lock(&T.mx);
		for (unsigned k = base; k < base + 10; k++)
			assert_int_equal(T.recs[k].wid, i);
		pthread_mutex_unlock(&T.mx);
		close(fd);
	}
	stop_rt(rt);

	reset_state(MODE_ECHO);
	rt = start_rt(&cfg, specs);
	udp_echo_round(rt, 1, AF_INET, 20);
	udp_echo_round(rt, 2, AF_INET, 20);
	stop_rt(rt);
}

static const char msg_a[] = "OPTIONS sip:a@example.com SIP/2.0\r\n"
                            "Via: SIP/2.0/TCP 127.0.0.1;branch=z9hG4bK1\r\n"
                            "Content-Length: 0\r\n\r\n";
static const char msg_b[] = "MESSAGE sip:b@example.com SIP/2.0\r\n"
                            "Content-Length: 5\r\n\r\nhello";
static const char msg_c[] = "INVITE sip:c@example.com SIP/2.0\r\n"
                            "Call-ID: 1@x\r\n"
                            "Content-Length: 10\r\n\r\n0123456789";

static void assert_rec(unsigned i, const char *want, size_t len)
{
	pthread_mutex_lock(&T.mx);
	assert_int_equal(T.recs[i].proto, NET_TCP);
	assert_int_equal(T.recs[i].len, len);
	assert_memory_equal(T.recs[i].data, want, len);
	assert_true(T.recs[i].has_lst);
	pthread_mutex_unlock(&T.mx);
}

static void test_tcp_framing(void **state)
{
	const char *specs[] = {"tcp:127.0.0.1:0", NULL};
	struct rt_config cfg = {.workers = 2};
	struct rt *rt;
	union net_sockaddr srv, me;
	struct send_req req;
	char ab[sizeof(msg_a) + sizeof(msg_b)];
	size_t clen = sizeof(msg_c) - 1;
	uint64_t id;
	unsigned owner, other;
	int fd;

	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, specs);
	srv = listener_addr(rt, 0);
	fd = tcp_connect_to(&srv);
	me = local_addr(fd);

	/* Two messages in one write, one in three. */
	snprintf(ab, sizeof(ab), "%s%s", msg_a, msg_b);
	send_all(fd, ab, strlen(ab));
	send_all(fd, msg_c, 10);
	sleep_ms(20);
	send_all(fd, msg_c + 10, 30);
	sleep_ms(20);
	send_all(fd, msg_c + 40, clen - 40);
	assert_true(wait_count(&T.nrecs, 3, WAIT_MS));
	assert_rec(0, msg_a, sizeof(msg_a) - 1);
	assert_rec(1, msg_b, sizeof(msg_b) - 1);
	assert_rec(2, msg_c, clen);
	pthread_mutex_lock(&T.mx);
	id = T.recs[0].conn_id;
	owner = T.recs[0].wid;
	assert_int_not_equal(id, 0);
	for (unsigned i = 1; i < 3; i++) {
		assert_true(T.recs[i].conn_id == id);
		assert_int_equal(T.recs[i].wid, owner);
	}
	assert_true(net_addr_eq(&T.recs[0].src, &me));
	pthread_mutex_unlock(&T.mx);

	/* RFC 5626 §3.5.1 keep-alive. */
	send_all(fd, "\r\n\r\n", 4);
	expect_bytes(fd, "\r\n");

	/* A reply from the worker that does not own the connection. */
	other = 1 - owner;
	req = (struct send_req){.dst = {.proto = NET_TCP, .conn_id = id},
	                        .data = "reply from the other worker"};
	run_on(rt, other, do_send, &req);
	assert_int_equal(req.rc, 0);
	assert_true(req.used == id);
	expect_bytes(fd, "reply from the other worker");

	/* From the owner itself. */
	req.data = "reply from the owner";
	run_on(rt, owner, do_send, &req);
	assert_int_equal(req.rc, 0);
	expect_bytes(fd, "reply from the owner");

	/* By address: the connection is reused (RFC 3261 §18.2.2). */
	req = (struct send_req){.dst = {.proto = NET_TCP, .addr = me},
	                        .data = "by address"};
	run_on(rt, other, do_send, &req);
	assert_int_equal(req.rc, 0);
	assert_true(req.used == id);
	expect_bytes(fd, "by address");

	/* A dead id falls back to the address; no address: ENOTCONN. */
	req = (struct send_req){.dst = {.proto = NET_TCP, .conn_id = ~0ull},
	                        .data = "x"};
	run_on(rt, other, do_send, &req);
	assert_int_equal(req.rc, ENOTCONN);

	close(fd);
	stop_rt(rt);
	assert_int_equal(T.nfails, 0);
}

/* Waits for a connection on the listening socket lfd. */
static int accept_within(int lfd, int ms)
{
	struct pollfd p = {.fd = lfd, .events = POLLIN};
	int fd;
	struct timeval tv = {.tv_sec = WAIT_MS / 1000};

	if (poll(&p, 1, ms) != 1)
		return -1;
	fd = accept(lfd, NULL, NULL);
	if (fd >= 0)
		setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	return fd;
}

static void test_tcp_outgoing(void **state)
{
	const char *specs[] = {"tcp:127.0.0.1:0", NULL};
	struct rt_config cfg = {.workers = 2};
	struct rt *rt;
	int lfd, fd;
	union net_sockaddr peer_addr, srv, from;
	socklen_t flen = sizeof(from);
	struct send_req req;
	uint64_t id;

	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, specs);
	srv = listener_addr(rt, 0);
	lfd = client_socket(AF_INET, SOCK_STREAM, true);
	assert_int_equal(listen(lfd, 4), 0);
	peer_addr = local_addr(lfd);

	req = (struct send_req){.dst = {.proto = NET_TCP, .addr = peer_addr},
	                        .data = "hello"};
	run_on(rt, 1, do_send, &req);
	assert_int_equal(req.rc, 0);
	id = req.used;
	assert_true(id != 0);
	fd = accept_within(lfd, WAIT_MS);
	assert_true(fd >= 0);
	expect_bytes(fd, "hello");
	/* Left from the listener's address, on an ephemeral port. */
	assert_int_equal(getpeername(fd, &from.sa, &flen), 0);
	assert_int_equal(from.in.sin_addr.s_addr, srv.in.sin_addr.s_addr);
	assert_int_not_equal(net_addr_port(&from), net_addr_port(&srv));

	/* Another worker sending to the same peer reuses the connection. */
	req = (struct send_req){.dst = {.proto = NET_TCP, .addr = peer_addr},
	                        .data = "again"};
	run_on(rt, 0, do_send, &req);
	assert_int_equal(req.rc, 0);
	assert_true(req.used == id);
	expect_bytes(fd, "again");
	assert_int_equal(accept_within(lfd, 100), -1);

	/* What the peer sends comes in on that connection, to its owner. */
	send_all(fd, msg_b, sizeof(msg_b) - 1);
	assert_true(wait_count(&T.nrecs, 1, WAIT_MS));
	assert_rec(0, msg_b, sizeof(msg_b) - 1);
	pthread_mutex_lock(&T.mx);
	assert_true(T.recs[0].conn_id == id);
	assert_int_equal(T.recs[0].wid, 1);
	assert_true(net_addr_eq(&T.recs[0].src, &peer_addr));
	pthread_mutex_unlock(&T.mx);

	close(fd);
	close(lfd);
	stop_rt(rt);
	assert_int_equal(T.nfails, 0);
}

static void test_tcp_connect_fail(void **state)
{
	struct rt_config cfg = {.workers = 2};
	struct rt *rt;
	struct send_req req;
	union net_sockaddr dead;
	int fd;

	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, NULL);
	/* A port nobody listens on: bound, never listening. */
	fd = client_socket(AF_INET, SOCK_STREAM, true);
	dead = local_addr(fd);

	req = (struct send_req){.dst = {.proto = NET_TCP, .addr = dead},
	                        .data = "lost"};
	run_on(rt, 1, do_send, &req);
	/* The refusal comes later, to the worker that opened it. */
	assert_int_equal(req.rc, 0);
	assert_true(wait_count(&T.nfails, 1, WAIT_MS));
	pthread_mutex_lock(&T.mx);
	assert_true(T.fail_id == req.used);
	assert_int_equal(T.fail_wid, 1);
	pthread_mutex_unlock(&T.mx);

	/* The failed connection is gone: the next send opens another. */
	req.data = "lost again";
	run_on(rt, 0, do_send, &req);
	assert_int_equal(req.rc, 0);
	assert_true(wait_count(&T.nfails, 2, WAIT_MS));
	pthread_mutex_lock(&T.mx);
	assert_true(T.fail_id == req.used);
	assert_int_equal(T.fail_wid, 0);
	pthread_mutex_unlock(&T.mx);
	close(fd);
	stop_rt(rt);
}

static void test_tcp_oversize(void **state)
{
	const char *specs[] = {"tcp:127.0.0.1:0", NULL};
	struct rt_config cfg = {.workers = 1, .max_msg_size = 512};
	struct rt *rt;
	union net_sockaddr srv;
	static const char big[] = "MESSAGE sip:b@example.com SIP/2.0\r\n"
	                          "Content-Length: 10000\r\n\r\n";
	int fd;

	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, specs);
	srv = listener_addr(rt, 0);
	fd = tcp_connect_to(&srv);
	send_all(fd, big, sizeof(big) - 1);
	expect_closed(fd);
	close(fd);

	/* Garbage is not SIP: closed as well. */
	fd = tcp_connect_to(&srv);
	send_all(fd, "GET / HTTP/1.1\r\n\r\n", 18);
	expect_closed(fd);
	close(fd);
	stop_rt(rt);
	assert_int_equal(T.nrecs, 0);
}

static void test_tcp_idle(void **state)
{
	const char *specs[] = {"tcp:127.0.0.1:0", NULL};
	struct rt_config cfg = {.workers = 1, .tcp_idle_timeout_ms = 200};
	struct rt *rt;
	union net_sockaddr srv;
	uint64_t t0, dt;
	int fd;

	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, specs);
	srv = listener_addr(rt, 0);
	fd = tcp_connect_to(&srv);
	send_all(fd, msg_a, sizeof(msg_a) - 1);
	assert_true(wait_count(&T.nrecs, 1, WAIT_MS));
	t0 = clock_now_ms();
	expect_closed(fd);
	dt = clock_now_ms() - t0;
	assert_true(dt >= 150);
	assert_true(dt < 2000);
	close(fd);
	stop_rt(rt);
}

static void test_shutdown_drain(void **state)
{
	const char *specs[] = {"udp:127.0.0.1:0", "tcp:127.0.0.1:0", NULL};
	struct rt_config cfg = {.workers = 2};
	struct rt *rt;
	uint64_t t0, dt;

	/* Busy for 200 ms: rt_wait waits for it. */
	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, specs);
	t0 = clock_now_ms();
	pthread_mutex_lock(&T.mx);
	T.busy_until = t0 + 200;
	pthread_mutex_unlock(&T.mx);
	rt_stop(rt);
	rt_wait(rt);
	dt = clock_now_ms() - t0;
	assert_true(dt >= 200);
	assert_true(dt < 2000);
	assert_int_equal(T.nfini, 2);
	assert_true(T.nbusy_calls >= 4);
	rt_free(rt);

	/* Busy forever: the grace time ends it. */
	reset_state(MODE_RECORD);
	cfg = (struct rt_config){.workers = 2, .shutdown_grace_ms = 300};
	rt = start_rt(&cfg, specs);
	T.busy_forever = true;
	t0 = clock_now_ms();
	rt_stop(rt);
	rt_wait(rt);
	dt = clock_now_ms() - t0;
	assert_true(dt >= 300);
	assert_true(dt < 2000);
	assert_int_equal(T.nfini, 2);
	rt_free(rt);

	/* rt_free alone stops a running runtime. */
	reset_state(MODE_RECORD);
	cfg = (struct rt_config){.workers = 3};
	rt = start_rt(&cfg, specs);
	rt_free(rt);
	assert_int_equal(T.nfini, 3);
}

static void *stopper(void *arg)
{
	sleep_ms(100);
	rt_stop(arg);
	return NULL;
}

static void test_stop_from_thread(void **state)
{
	struct rt_config cfg = {.workers = 2};
	struct rt *rt;
	pthread_t th;
	uint64_t t0;

	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, NULL);
	t0 = clock_now_ms();
	assert_int_equal(pthread_create(&th, NULL, stopper, rt), 0);
	rt_wait(rt);
	assert_true(clock_now_ms() - t0 >= 100);
	pthread_join(th, NULL);
	rt_free(rt);
	assert_int_equal(T.nfini, 2);
}

#define TMR_DELAY 100

static void tmr_fired(struct tmr *t, void *arg)
{
	struct worker *w = arg;
	struct shard *s = worker_shard(w);

	pthread_mutex_lock(&T.mx);
	T.tmr_wid = worker_id(w);
	T.tmr_elapsed = worker_now(w) - s->tmr_start;
	T.tmr_elapsed_clock = clock_now_ms() - s->tmr_start_clock;
	T.ntimers++;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mx);
}

static void arm_timer(struct worker *w, void *arg)
{
	struct shard *s = worker_shard(w);

	s->tmr_start = worker_now(w);
	s->tmr_start_clock = clock_now_ms();
	tmr_start(worker_wheel(w), &s->tmr, TMR_DELAY, tmr_fired, w);
}

static void test_timer(void **state)
{
	struct rt_config cfg = {.workers = 2};
	struct rt *rt;

	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, NULL);
	run_on(rt, 1, arm_timer, NULL);
	assert_true(wait_count(&T.ntimers, 1, WAIT_MS));
	pthread_mutex_lock(&T.mx);
	assert_int_equal(T.tmr_wid, 1);
	assert_true(T.tmr_elapsed >= TMR_DELAY);
	assert_true(T.tmr_elapsed_clock >= TMR_DELAY - 1);
	assert_true(T.tmr_elapsed_clock < TMR_DELAY + 500);
	pthread_mutex_unlock(&T.mx);
	/* Once only. */
	sleep_ms(150);
	assert_int_equal(T.ntimers, 1);
	assert_int_equal(worker_queue_len(rt_worker(rt, 1)), 0);
	stop_rt(rt);
}

static void test_forward_bad_worker(void **state)
{
	struct rt_config cfg = {.workers = 1};
	struct rt *rt;
	struct net_rx rx = {.buf = "x", .len = 1};

	reset_state(MODE_RECORD);
	rt = start_rt(&cfg, NULL);
	assert_int_equal(rt_forward_rx(rt, 1, &rx), EINVAL);
	assert_int_equal(rt_forward_rx(rt, 0, &rx), 0);
	assert_true(wait_count(&T.nrecs, 1, WAIT_MS));
	stop_rt(rt);
}

/* ------------------------------------------------------------- rt_call */

#define CALL_ROUNDS 2000

static struct {
	_Atomic unsigned ran[2]; /* calls run on each worker */
	_Atomic unsigned wrong;  /* calls run on the wrong thread */
	_Atomic int errors;      /* rt_call failures */
	unsigned done;           /* callers finished (bump) */
} C;

static void count_call(struct worker *w, void *arg)
{
	unsigned want = *(unsigned *)arg;

	if (worker_id(w) != want)
		C.wrong++;
	C.ran[worker_id(w)]++;
}

/* Calls the other worker CALL_ROUNDS times: both workers do it at once,
 * so each waits while the other calls it. */
static void call_loop(struct worker *w, struct rt_job *job)
{
	unsigned other = 1 - worker_id(w);

	(void)job;
	for (unsigned i = 0; i < CALL_ROUNDS; i++)
		if (rt_call(w, other, count_call, &other, WAIT_MS))
			C.errors++;
	bump(&C.done);
}

static void test_call_cross(void **state)
{
	struct rt_config cfg = {.workers = 2};
	struct rt *rt;

	reset_state(MODE_RECORD);
	memset(&C, 0, sizeof(C));
	rt = start_rt(&cfg, NULL);
	for (unsigned i = 0; i < 2; i++) {
		struct rt_job *j = calloc(1, sizeof(*j));
		assert_non_null(j);
		j->fn = call_loop;
		rt_post(rt, i, j);
	}
	assert_true(wait_count(&C.done, 2, 4 * WAIT_MS));
	assert_int_equal(C.errors, 0);
	assert_int_equal(C.wrong, 0);
	assert_int_equal(C.ran[0], CALL_ROUNDS);
	assert_int_equal(C.ran[1], CALL_ROUNDS);
	stop_rt(rt);
}

static void sleep_300(struct worker *w, void *arg)
{
	(void)w;
	(void)arg;
	sleep_ms(300);
}

struct call_once {
	unsigned target, timeout_ms;
	int rc;
};

static void call_once(struct worker *w, void *arg)
{
	struct call_once *c = arg;

	c->rc = rt_call(w, c->target, count_call, &c->target, c->timeout_ms);
}

static void test_call_timeout_self_bad(void **state)
{
	struct rt_config cfg = {.workers = 2};
	struct rt *rt;
	struct rt_job *j;

	reset_state(MODE_RECORD);
	memset(&C, 0, sizeof(C));
	rt = start_rt(&cfg, NULL);
	/* to itself: at once */
	struct call_once self = {0, WAIT_MS, -1};
	run_on(rt, 0, call_once, &self);
	assert_int_equal(self.rc, 0);
	assert_int_equal(C.ran[0], 1);
	/* no such worker */
	struct call_once bad = {7, WAIT_MS, -1};
	run_on(rt, 0, call_once, &bad);
	assert_int_equal(bad.rc, EINVAL);
	/* worker 1 busy for 300 ms: a 50 ms call gives up and never runs */
	j = calloc(1, sizeof(struct call_job));
	assert_non_null(j);
	struct call_job *cj = (struct call_job *)j;
	unsigned busy_done = 0;
	cj->job.fn = call_job_run;
	cj->fn = sleep_300;
	cj->done = &busy_done;
	rt_post(rt, 1, j);
	sleep_ms(20);
	struct call_once late = {1, 50, -1};
	run_on(rt, 0, call_once, &late);
	assert_int_equal(late.rc, ETIMEDOUT);
	assert_true(wait_count(&busy_done, 1, WAIT_MS));
	sleep_ms(50);
	assert_int_equal(C.ran[1], 0);
	stop_rt(rt);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_listener_parse),
	        cmocka_unit_test(test_listener_parse_worker_ports),
	        cmocka_unit_test(test_addr),
	        cmocka_unit_test(test_bind_error),
	        cmocka_unit_test(test_bind_twice),
	        cmocka_unit_test(test_udp_forward_echo),
	        cmocka_unit_test(test_udp_worker_ports),
	        cmocka_unit_test(test_tcp_framing),
	        cmocka_unit_test(test_tcp_outgoing),
	        cmocka_unit_test(test_tcp_connect_fail),
	        cmocka_unit_test(test_tcp_oversize),
	        cmocka_unit_test(test_tcp_idle),
	        cmocka_unit_test(test_shutdown_drain),
	        cmocka_unit_test(test_stop_from_thread),
	        cmocka_unit_test(test_timer),
	        cmocka_unit_test(test_forward_bad_worker),
	        cmocka_unit_test(test_call_cross),
	        cmocka_unit_test(test_call_timeout_self_bad),
	};

	log_set_level(LL_WARN);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
