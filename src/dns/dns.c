/*
 * The resolver of one worker: c-ares driven by the worker's libuv loop
 * (its sockets polled by uv_poll, its timeouts by a uv_timer), a cache of
 * finished procedures, and the procedures running (struct dns_lookup),
 * each with the callers waiting for it.
 */
#include <arpa/nameser.h>
#include <ares.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "dns/dns.h"

#define NAME_LEN_MAX  253 /* RFC 1035 §2.3.4, in text form */
#define CACHE_BUCKETS 1024
#define CACHE_MAX                                                              \
	8192 /* entries; when full of live ones, new answers go uncached */
#define FAILURE_TTL_MAX_S 5 /* a timeout is not a fact about the name */
#define SRV_TARGETS_MAX   4
#define SOCKS_MAX         16 /* c-ares opens one UDP socket per server */

void dns_config_defaults(struct dns_config *c)
{
	memset(c, 0, sizeof(*c));
	c->timeout_ms = 2000;
	c->tries = 2;
	c->max_ttl_s = 3600;
	c->negative_ttl_s = 60;
	c->slow_ms = 800; /* Kamailio's dns_slow_query_ms */
}

static pthread_once_t library_once = PTHREAD_ONCE_INIT;
static int library_status;

static void library_init(void)
{
	library_status = ares_library_init(ARES_LIB_INIT_ALL);
}

/* The servers of c, if any, on channel ch. */
static int set_servers(ares_channel ch, const struct dns_config *c, char *err,
                       size_t errsize)
{
	int st;

	if (c->servers[0] == '\0')
		return 0;
	st = ares_set_servers_ports_csv(ch, c->servers);
	if (st != ARES_SUCCESS) {
		snprintf(err, errsize, "\"%s\": %s", c->servers,
		         ares_strerror(st));
		return EINVAL;
	}
	return 0;
}

int dns_config_check(const struct dns_config *c, char *err, size_t errsize)
{
	ares_channel ch;
	int rc;

	pthread_once(&library_once, library_init);
	if (library_status != ARES_SUCCESS || ares_init(&ch) != ARES_SUCCESS) {
		snprintf(err, errsize, "c-ares does not start");
		return EINVAL;
	}
	rc = set_servers(ch, c, err, errsize);
	ares_destroy(ch);
	return rc;
}

/* --------------------------------------------------------------- types */

/* A finished procedure: its name (lower case), proto and port are the key.
 */
struct dns_entry {
	struct dns_entry *next;
	uint64_t hash;
	uint64_t expires; /* loop time, ms */
	int err;
	struct dns_result r;
	int proto; /* as asked: DNS_PROTO_ANY too */
	uint16_t port;
	uint8_t len;
	char name[];
};

struct dns_wait {
	struct dns_wait *next, **pprev;
	dns_done_fn *done;
	void *arg;
};

struct dns_lookup;

/* A name whose addresses are asked for: the URI's host, or an SRV
 * target. */
struct dns_target {
	struct dns_lookup *lk;
	char *name; /* owned, except for the URI's host (the lookup's) */
	uint16_t port;
	unsigned n;
	union net_sockaddr addr[DNS_MAX_ADDRS];
};

struct dns_lookup {
	struct dns_lookup *next; /* d->pending */
	struct dns *d;
	struct dns_wait *waits;
	uint64_t hash;
	int proto;                /* as asked: DNS_PROTO_ANY too */
	enum net_proto use_proto; /* the transport of the answer */
	uint16_t port;
	/* c-ares queries in flight, plus one while queries are being
	 * started: c-ares may answer some (hosts file, a bad name) from
	 * inside the call that asks. */
	unsigned outstanding;
	uint32_t ttl;     /* smallest of the records used */
	int err;          /* the first failure of a query */
	uint64_t started; /* loop time, ms */
	/* When the procedure ends inside dns_resolve(), the result waits
	 * here for it instead of a call back. */
	bool starting, done;
	int done_err;
	struct dns_result done_r;
	unsigned ntargets;
	struct dns_target targets[SRV_TARGETS_MAX];
	char name[NAME_LEN_MAX + 1]; /* lower case */
};

struct dns_sock {
	uv_poll_t poll;
	struct dns *d;
	ares_socket_t fd;
};

struct dns {
	uv_loop_t *loop;
	const struct dns_config *cfg;
	ares_channel ch;
	bool closing;
	uv_timer_t timer;
	struct dns_sock *socks[SOCKS_MAX];
	struct dns_entry *cache[CACHE_BUCKETS];
	unsigned ncached;
	struct dns_lookup *pending;
	uint64_t rng;
	struct dns_stats stats;
};

/* ------------------------------------------------------------ the loop */

static void on_timer(uv_timer_t *h);

static void rearm(struct dns *d)
{
	struct timeval tv, *next;

	if (d->closing)
		return;
	next = ares_timeout(d->ch, NULL, &tv);
	if (next == NULL) {
		uv_timer_stop(&d->timer);
		return;
	}
	uv_timer_start(&d->timer, on_timer,
	               (uint64_t)next->tv_sec * 1000 +
	                       (uint64_t)(next->tv_usec + 999) / 1000,
	               0);
}

static void on_timer(uv_timer_t *h)
{
	struct dns *d = h->data;

	ares_process_fd(d->ch, ARES_SOCKET_BAD, ARES_SOCKET_BAD);
	rearm(d);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
	struct dns_sock *s = h->data;
	struct dns *d = s->d;
	ares_socket_t rd = ARES_SOCKET_BAD, wr = ARES_SOCKET_BAD;

	/* An error on the socket: let c-ares read it and find out. */
	if (status < 0 || (events & UV_READABLE))
		rd = s->fd;
	if (status < 0 || (events & UV_WRITABLE))
		wr = s->fd;
	ares_process_fd(d->ch, rd, wr);
	rearm(d);
}

static void free_sock(uv_handle_t *h)
{
	free(h->data);
}

/* c-ares opens, watches for writing, or is done with one of its sockets.
 */
static void on_sock_state(void *data, ares_socket_t fd, int readable,
                          int writable)
{
	struct dns *d = data;
	struct dns_sock *s = NULL;
	unsigned i, free_i = SOCKS_MAX;

	for (i = 0; i < SOCKS_MAX; i++) {
		if (d->socks[i] && d->socks[i]->fd == fd) {
			s = d->socks[i];
			break;
		}
		if (d->socks[i] == NULL && free_i == SOCKS_MAX)
			free_i = i;
	}
	if (!readable && !writable) {
		if (s) {
			uv_poll_stop(&s->poll);
			uv_close((uv_handle_t *)&s->poll, free_sock);
			d->socks[i] = NULL;
		}
		return;
	}
	if (s == NULL) {
		if (free_i == SOCKS_MAX ||
		    (s = calloc(1, sizeof(*s))) == NULL) {
			LOG_ERR("dns: no room to watch socket %d", (int)fd);
			return;
		}
		if (uv_poll_init_socket(d->loop, &s->poll, fd)) {
			free(s);
			return;
		}
		s->d = d;
		s->fd = fd;
		s->poll.data = s;
		d->socks[free_i] = s;
	}
	uv_poll_start(&s->poll,
	              (readable ? UV_READABLE : 0) |
	                      (writable ? UV_WRITABLE : 0),
	              on_poll);
}

struct dns *dns_new(uv_loop_t *loop, const struct dns_config *cfg, char *err,
                    size_t errsize)
{
	struct ares_options o;
	struct dns *d;
	int st;

	pthread_once(&library_once, library_init);
	if (library_status != ARES_SUCCESS) {
		snprintf(err, errsize, "c-ares: %s",
		         ares_strerror(library_status));
		return NULL;
	}
	d = calloc(1, sizeof(*d));
	if (d == NULL) {
		snprintf(err, errsize, "out of memory");
		return NULL;
	}
	d->loop = loop;
	d->cfg = cfg;
	d->rng = uv_hrtime() | 1;
	memset(&o, 0, sizeof(o));
	o.sock_state_cb = on_sock_state;
	o.sock_state_cb_data = d;
	o.timeout = (int)cfg->timeout_ms;
	o.tries = (int)cfg->tries;
	st = ares_init_options(&d->ch, &o,
	                       ARES_OPT_SOCK_STATE_CB | ARES_OPT_TIMEOUTMS |
	                               ARES_OPT_TRIES);
	if (st != ARES_SUCCESS) {
		snprintf(err, errsize, "c-ares: %s", ares_strerror(st));
		free(d);
		return NULL;
	}
	if (set_servers(d->ch, cfg, err, errsize)) {
		ares_destroy(d->ch);
		free(d);
		return NULL;
	}
	uv_timer_init(loop, &d->timer);
	d->timer.data = d;
	return d;
}

static void free_dns(uv_handle_t *h)
{
	free(h->data);
}

void dns_free(struct dns *d)
{
	if (d == NULL)
		return;
	d->closing = true;
	/* Nobody is called back: the waits go first, then c-ares ends its
	 * queries with ARES_EDESTRUCTION (their callbacks free what they
	 * hold, and ask nothing more). */
	for (struct dns_lookup *lk = d->pending; lk; lk = lk->next) {
		while (lk->waits)
			dns_cancel(lk->waits);
	}
	ares_destroy(d->ch);
	for (unsigned i = 0; i < SOCKS_MAX; i++) {
		if (d->socks[i]) {
			uv_poll_stop(&d->socks[i]->poll);
			uv_close((uv_handle_t *)&d->socks[i]->poll, free_sock);
		}
	}
	for (unsigned i = 0; i < CACHE_BUCKETS; i++) {
		for (struct dns_entry *e = d->cache[i], *next; e; e = next) {
			next = e->next;
			free(e);
		}
	}
	uv_close((uv_handle_t *)&d->timer, free_dns);
}

/* ----------------------------------------------------------- the cache */

static uint64_t key_hash(const char *name, size_t len, int proto, uint16_t port)
{
	return hash_bytes(name, len) ^
	       ((uint64_t)(uint32_t)proto << 32 | port) * 0x9e3779b97f4a7c15ull;
}

/* *pe, expired, leaves its chain and the cache. */
static void entry_drop(struct dns *d, struct dns_entry **pe)
{
	struct dns_entry *e = *pe;

	*pe = e->next;
	free(e);
	d->ncached--;
}

static struct dns_entry *cache_find(struct dns *d, uint64_t hash,
                                    const char *name, size_t len, int proto,
                                    uint16_t port)
{
	struct dns_entry **pe = &d->cache[hash % CACHE_BUCKETS], *e;
	uint64_t now = uv_now(d->loop);

	while ((e = *pe) != NULL) {
		if (e->expires <= now) {
			entry_drop(d, pe);
			continue;
		}
		if (e->hash == hash && e->proto == proto && e->port == port &&
		    e->len == len && memcmp(e->name, name, len) == 0)
			return e;
		pe = &e->next;
	}
	return NULL;
}

/* Drops every expired entry: when the cache is full (expired entries
 * otherwise go only when their bucket is looked into). */
static void cache_sweep(struct dns *d)
{
	uint64_t now = uv_now(d->loop);

	for (unsigned i = 0; i < CACHE_BUCKETS; i++) {
		for (struct dns_entry **pe = &d->cache[i]; *pe;) {
			if ((*pe)->expires <= now)
				entry_drop(d, pe);
			else
				pe = &(*pe)->next;
		}
	}
}

static void cache_put(struct dns *d, const struct dns_lookup *lk, int err,
                      const struct dns_result *r, uint32_t ttl_s)
{
	size_t len = strlen(lk->name);
	struct dns_entry *e;

	if (ttl_s == 0)
		return;
	if (d->ncached >= CACHE_MAX)
		cache_sweep(d);
	if (d->ncached >= CACHE_MAX)
		return;
	e = malloc(sizeof(*e) + len);
	if (e == NULL)
		return;
	e->hash = lk->hash;
	e->expires = uv_now(d->loop) + (uint64_t)ttl_s * 1000;
	e->err = err;
	e->r = *r;
	e->proto = lk->proto;
	e->port = lk->port;
	e->len = (uint8_t)len;
	memcpy(e->name, lk->name, len);
	e->next = d->cache[lk->hash % CACHE_BUCKETS];
	d->cache[lk->hash % CACHE_BUCKETS] = e;
	d->ncached++;
}

/* ------------------------------------------------------ the procedure */

static void lookup_free(struct dns_lookup *lk)
{
	for (unsigned i = 0; i < lk->ntargets; i++)
		if (lk->targets[i].name != lk->name)
			free(lk->targets[i].name);
	free(lk);
}

static int ares_to_errno(int status)
{
	switch (status) {
	case ARES_ENOTFOUND:
	case ARES_ENODATA:
	case ARES_ENONAME:
		return ENOENT;
	case ARES_ETIMEOUT:
	case ARES_ECONNREFUSED:
		return ETIMEDOUT;
	default:
		return EIO;
	}
}

/* The procedure is over: the addresses of its targets, in their order,
 * are the answer, for the cache and for every caller waiting. */
static void lookup_finish(struct dns_lookup *lk)
{
	struct dns *d = lk->d;
	struct dns_result r = {0};
	struct dns_lookup **pl;
	uint32_t ttl;
	int err;

	for (pl = &d->pending; *pl != lk; pl = &(*pl)->next)
		;
	*pl = lk->next;
	d->stats.pending--;
	if (d->closing) {
		lookup_free(lk);
		return;
	}
	for (unsigned i = 0; i < lk->ntargets; i++) {
		const struct dns_target *t = &lk->targets[i];
		for (unsigned j = 0; j < t->n && r.n < DNS_MAX_ADDRS; j++)
			r.addr[r.n++] = t->addr[j];
	}
	r.proto = lk->use_proto;
	err = r.n ? 0 : lk->err ? lk->err : ENOENT;
	if (err == 0)
		ttl = lk->ttl < d->cfg->max_ttl_s ? lk->ttl : d->cfg->max_ttl_s;
	else if (err == ENOENT)
		ttl = d->cfg->negative_ttl_s;
	else
		ttl = d->cfg->negative_ttl_s < FAILURE_TTL_MAX_S
		              ? d->cfg->negative_ttl_s
		              : FAILURE_TTL_MAX_S;
	if (err)
		d->stats.failures++;
	if (d->cfg->slow_ms && uv_now(d->loop) - lk->started >= d->cfg->slow_ms)
		d->stats.slow++;
	cache_put(d, lk, err, &r, ttl);
	if (lk->starting) {
		lk->done = true;
		lk->done_err = err;
		lk->done_r = r;
		return; /* dns_resolve() answers and frees */
	}
	/* Taken from the head each time: a caller may cancel the wait of
	 * another one while it is called. */
	for (struct dns_wait *w; (w = lk->waits) != NULL;) {
		lk->waits = w->next;
		if (w->next)
			w->next->pprev = &lk->waits;
		w->done(w->arg, err, &r);
		free(w);
	}
	lookup_free(lk);
}

static void query_done(struct dns_lookup *lk)
{
	if (--lk->outstanding == 0)
		lookup_finish(lk);
}

/* The addresses of family in res into t (their ports set), lowering
 * lk's TTL to theirs. */
static void take_family(struct dns_target *t, struct dns_lookup *lk,
                        const struct ares_addrinfo *res, int family)
{
	for (const struct ares_addrinfo_node *n = res->nodes;
	     n && t->n < DNS_MAX_ADDRS; n = n->ai_next) {
		union net_sockaddr *a = &t->addr[t->n];
		if (n->ai_family != family)
			continue;
		if (family == AF_INET && n->ai_addrlen >= sizeof(a->in))
			memcpy(&a->in, n->ai_addr, sizeof(a->in));
		else if (family == AF_INET6 && n->ai_addrlen >= sizeof(a->in6))
			memcpy(&a->in6, n->ai_addr, sizeof(a->in6));
		else
			continue;
		net_addr_set_port(a, t->port);
		t->n++;
		uint32_t ttl = n->ai_ttl > 0 ? (uint32_t)n->ai_ttl : 0;
		if (ttl < lk->ttl)
			lk->ttl = ttl;
	}
}

/* A name's addresses: IPv4 first, as Kamailio (which asks AAAA only when
 * A gives nothing) would reach the name; c-ares would sort IPv6 first on
 * a host with IPv6 routes. */
static void on_addrinfo(void *arg, int status, int timeouts,
                        struct ares_addrinfo *res)
{
	struct dns_target *t = arg;
	struct dns_lookup *lk = t->lk;

	(void)timeouts;
	if (status == ARES_SUCCESS && res) {
		take_family(t, lk, res, AF_INET);
		take_family(t, lk, res, AF_INET6);
	} else if (lk->err == 0) {
		lk->err = ares_to_errno(status);
	}
	if (res)
		ares_freeaddrinfo(res);
	query_done(lk);
}

static void ask_addresses(struct dns_lookup *lk, struct dns_target *t)
{
	struct ares_addrinfo_hints hints = {0};

	hints.ai_family = AF_UNSPEC;
	t->lk = lk;
	lk->outstanding++;
	lk->d->stats.queries++;
	ares_getaddrinfo(lk->d->ch, t->name, NULL, &hints, on_addrinfo, t);
}

/* The smallest TTL of the answer records of a DNS reply (ttl if none). */
static uint32_t answers_min_ttl(const unsigned char *abuf, int alen,
                                uint32_t ttl)
{
	const unsigned char *p = abuf + 12, *end = abuf + alen;
	unsigned qd, an;

	if (alen < 12)
		return ttl;
	qd = (unsigned)abuf[4] << 8 | abuf[5];
	an = (unsigned)abuf[6] << 8 | abuf[7];
	for (unsigned i = 0; i < qd + an; i++) {
		char *name;
		long enclen;
		if (ares_expand_name(p, abuf, alen, &name, &enclen) !=
		    ARES_SUCCESS)
			return ttl;
		ares_free_string(name);
		p += enclen;
		if (end - p < (i < qd ? 4 : 10))
			return ttl;
		if (i < qd) {
			p += 4; /* type, class */
			continue;
		}
		uint32_t t = (uint32_t)p[4] << 24 | (uint32_t)p[5] << 16 |
		             (uint32_t)p[6] << 8 | p[7];
		unsigned rdlen = (unsigned)p[8] << 8 | p[9];
		if (t < ttl)
			ttl = t;
		if ((size_t)(end - p) < 10 + (size_t)rdlen)
			return ttl;
		p += 10 + rdlen;
	}
	return ttl;
}

static uint64_t next_random(struct dns *d)
{
	d->rng ^= d->rng << 13;
	d->rng ^= d->rng >> 7;
	d->rng ^= d->rng << 17;
	return d->rng;
}

/*
 * The SRV records in the order RFC 2782 tries them: by priority, and
 * within a priority drawn one by one with a chance proportional to their
 * weight (records of weight 0 first in the running sum, so that they are
 * picked rarely when others weigh more).
 */
static unsigned srv_order(struct dns *d, struct ares_srv_reply **out,
                          unsigned max, struct ares_srv_reply *list)
{
	struct ares_srv_reply *all[64];
	unsigned n = 0, done = 0;

	for (struct ares_srv_reply *s = list; s && n < 64; s = s->next)
		all[n++] = s;
	/* insertion sort by priority, weight 0 first within one */
	for (unsigned i = 1; i < n; i++) {
		struct ares_srv_reply *s = all[i];
		unsigned j = i;
		while (j > 0 && (all[j - 1]->priority > s->priority ||
		                 (all[j - 1]->priority == s->priority &&
		                  all[j - 1]->weight > 0 && s->weight == 0))) {
			all[j] = all[j - 1];
			j--;
		}
		all[j] = s;
	}
	for (unsigned i = 0; i < n && done < max;) {
		unsigned k = i;
		uint64_t sum = 0;
		while (k < n && all[k]->priority == all[i]->priority)
			sum += all[k++]->weight;
		/* draw the records [i, k) in turn */
		while (i < k && done < max) {
			uint64_t pick = sum ? next_random(d) % (sum + 1) : 0;
			uint64_t run = 0;
			unsigned j = i;
			for (; j < k - 1; j++) {
				run += all[j]->weight;
				if (run >= pick)
					break;
			}
			struct ares_srv_reply *s = all[j];
			out[done++] = s;
			sum -= s->weight;
			memmove(&all[i + 1], &all[i],
			        (size_t)(j - i) * sizeof(all[0]));
			all[i++] = s;
		}
		i = k;
	}
	return done;
}

static void ask_name_itself(struct dns_lookup *lk, uint16_t port)
{
	struct dns_target *t = &lk->targets[0];

	lk->ntargets = 1;
	t->name = lk->name;
	t->port = port;
	ask_addresses(lk, t);
}

static void on_srv(void *arg, int status, int timeouts, unsigned char *abuf,
                   int alen)
{
	struct dns_lookup *lk = arg;
	struct ares_srv_reply *list = NULL, *order[SRV_TARGETS_MAX];
	unsigned n = 0;

	(void)timeouts;
	if (status == ARES_SUCCESS &&
	    ares_parse_srv_reply(abuf, alen, &list) == ARES_SUCCESS)
		n = srv_order(lk->d, order, SRV_TARGETS_MAX, list);
	if (n == 0 && (status == ARES_SUCCESS || status == ARES_ENODATA ||
	               status == ARES_ENOTFOUND)) {
		/* no SRV: the name's own addresses, port 5060 (§4.2) */
		ask_name_itself(lk, 5060);
	} else if (n == 1 && strcmp(order[0]->host, ".") == 0) {
		lk->err = ENOENT; /* "decidedly not available" (RFC 2782) */
	} else if (n == 0) {
		lk->err = ares_to_errno(status);
	} else {
		lk->ttl = answers_min_ttl(abuf, alen, lk->ttl);
		for (unsigned i = 0; i < n; i++) {
			struct dns_target *t = &lk->targets[lk->ntargets];
			t->name = strdup(order[i]->host);
			if (t->name == NULL)
				break;
			t->port = order[i]->port;
			lk->ntargets++;
		}
		for (unsigned i = 0; i < lk->ntargets; i++)
			ask_addresses(lk, &lk->targets[i]);
	}
	if (list)
		ares_free_data(list);
	query_done(lk);
}

static void ask(struct dns_lookup *lk, const char *name, int type,
                ares_callback cb)
{
	lk->outstanding++;
	lk->d->stats.queries++;
	ares_query(lk->d->ch, name, ns_c_in, type, cb, lk);
}

/* The SRV records of the name for the transport chosen (§4.2). */
static void ask_srv_of_name(struct dns_lookup *lk)
{
	char srv_name[NAME_LEN_MAX + 16];

	snprintf(srv_name, sizeof(srv_name), "_sip._%s.%s",
	         lk->use_proto == NET_TCP ? "tcp" : "udp", lk->name);
	ask(lk, srv_name, ns_t_srv, on_srv);
}

/* The transport of a NAPTR record we can follow (§4.1: flag "s", service
 * SIP+D2U or SIP+D2T, a replacement), or -1. */
static int naptr_proto(const struct ares_naptr_reply *r)
{
	const char *flags = (const char *)r->flags;
	const char *service = (const char *)r->service;
	const char *repl = (const char *)r->replacement;

	if (!flags || (strchr(flags, 's') == NULL && !strchr(flags, 'S')) ||
	    !repl || repl[0] == '\0' || strcmp(repl, ".") == 0 || !service)
		return -1;
	if (strcasecmp(service, "SIP+D2U") == 0)
		return NET_UDP;
	if (strcasecmp(service, "SIP+D2T") == 0)
		return NET_TCP;
	return -1;
}

/* The NAPTR records of a name whose URI gave neither transport nor port
 * (§4.1): the first one we can follow (lowest order, then preference)
 * names the transport and the SRV records to ask; without one, the SRV
 * records of UDP. */
static void on_naptr(void *arg, int status, int timeouts, unsigned char *abuf,
                     int alen)
{
	struct dns_lookup *lk = arg;
	struct ares_naptr_reply *list = NULL, *best = NULL;
	int best_proto = -1;

	(void)timeouts;
	if (status == ARES_SUCCESS &&
	    ares_parse_naptr_reply(abuf, alen, &list) == ARES_SUCCESS) {
		for (struct ares_naptr_reply *r = list; r; r = r->next) {
			int proto = naptr_proto(r);
			if (proto < 0)
				continue;
			if (best == NULL || r->order < best->order ||
			    (r->order == best->order &&
			     r->preference < best->preference)) {
				best = r;
				best_proto = proto;
			}
		}
	}
	if (best) {
		lk->ttl = answers_min_ttl(abuf, alen, lk->ttl);
		lk->use_proto = (enum net_proto)best_proto;
		ask(lk, (const char *)best->replacement, ns_t_srv, on_srv);
	} else if (status == ARES_SUCCESS || status == ARES_ENODATA ||
	           status == ARES_ENOTFOUND) {
		ask_srv_of_name(lk);
	} else {
		lk->err = ares_to_errno(status);
	}
	if (list)
		ares_free_data(list);
	query_done(lk);
}

static void lookup_start(struct dns_lookup *lk)
{
	lk->outstanding = 1; /* held until the queries are asked */
	if (lk->port)
		ask_name_itself(lk, lk->port);
	else if (lk->proto == DNS_PROTO_ANY)
		ask(lk, lk->name, ns_t_naptr, on_naptr);
	else
		ask_srv_of_name(lk);
	query_done(lk);
}

/* --------------------------------------------------------------- API */

int dns_resolve(struct dns *d, struct slice host, int proto, uint16_t port,
                struct dns_result *out, dns_done_fn *done, void *arg,
                struct dns_wait **wait)
{
	char name[NAME_LEN_MAX + 1];
	struct dns_lookup *lk;
	struct dns_entry *e;
	struct dns_wait *w = NULL;
	uint64_t hash;
	int err;

	/* a fully qualified name's root dot is not part of the key */
	if (host.len && host.p[host.len - 1] == '.')
		host.len--;
	if (host.len == 0 || host.len > NAME_LEN_MAX)
		return host.len ? ENAMETOOLONG : ENOENT;
	for (size_t i = 0; i < host.len; i++) {
		char c = host.p[i];
		name[i] = c >= 'A' && c <= 'Z' ? (char)(c + 32) : c;
	}
	name[host.len] = '\0';
	/* Without NAPTR (or with a port: §4.1), no transport means UDP. */
	if (proto == DNS_PROTO_ANY && (port || !d->cfg->try_naptr))
		proto = NET_UDP;
	hash = key_hash(name, host.len, proto, port);

	e = cache_find(d, hash, name, host.len, proto, port);
	if (e) {
		d->stats.cache_hits++;
		if (e->err == 0)
			*out = e->r;
		return e->err;
	}
	if (done) {
		w = calloc(1, sizeof(*w));
		if (w == NULL)
			return ENOMEM;
		w->done = done;
		w->arg = arg;
	}
	for (lk = d->pending; lk; lk = lk->next)
		if (lk->hash == hash && lk->proto == proto &&
		    lk->port == port && strcmp(lk->name, name) == 0)
			break;
	if (lk == NULL) {
		lk = calloc(1, sizeof(*lk));
		if (lk == NULL) {
			free(w);
			return ENOMEM;
		}
		lk->d = d;
		lk->hash = hash;
		lk->proto = proto;
		lk->use_proto = proto == DNS_PROTO_ANY ? NET_UDP
		                                       : (enum net_proto)proto;
		lk->port = port;
		lk->ttl = UINT32_MAX;
		lk->started = uv_now(d->loop);
		memcpy(lk->name, name, host.len + 1);
		lk->next = d->pending;
		d->pending = lk;
		d->stats.pending++;
		d->stats.lookups++;
		lk->starting = true;
		lookup_start(lk);
		rearm(d);
		if (lk->done) {
			err = lk->done_err;
			if (err == 0)
				*out = lk->done_r;
			lookup_free(lk);
			free(w);
			return err;
		}
		lk->starting = false;
	}
	if (w) {
		w->next = lk->waits;
		if (w->next)
			w->next->pprev = &w->next;
		w->pprev = &lk->waits;
		lk->waits = w;
		*wait = w;
	}
	return EINPROGRESS;
}

void dns_cancel(struct dns_wait *w)
{
	if (w == NULL)
		return;
	*w->pprev = w->next;
	if (w->next)
		w->next->pprev = w->pprev;
	free(w);
}

void dns_stats(const struct dns *d, struct dns_stats *out)
{
	*out = d->stats;
	out->cache_size = d->ncached;
}
