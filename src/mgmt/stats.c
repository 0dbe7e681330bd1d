/*
 * The statistics registry (mgmt.h, "statistics") and the methods that
 * serve it with Kamailio's names, parameters and reply shapes (its kex
 * module): stats.get_statistics, stats.fetch, stats.fetchn,
 * stats.reset_statistics, stats.clear_statistics.
 *
 * A call takes a snapshot: the list of groups (the registry's and the
 * server's own "shard"), then every value in one pass over the workers
 * and one read of the process values. Resetting a counter stores its raw
 * value as the counter's new zero, so no component's memory is written
 * from this thread.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt/mgmt_int.h"

struct reg_group {
	const struct stat_group *g;
	int64_t *base; /* per entry: the raw value at its last reset */
};

/* Global: the registry, filled at start-up (see registry.c for why the
 * registries are process globals); bases change on reset, under the
 * lock. */
static pthread_mutex_t stats_mx = PTHREAD_MUTEX_INITIALIZER;
static struct reg_group groups[STATS_MAX_GROUPS];
static size_t ngroups;
static struct {
	metrics_fn *fn;
	void *arg;
} mfns[METRICS_MAX_FNS];
static size_t nmfns;

static bool ident_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if (!isalnum((unsigned char)*s) && *s != '_')
			return false;
	return true;
}

static int group_check(const struct stat_group *g)
{
	if (g == NULL || !ident_ok(g->name) || g->stats == NULL || g->n == 0)
		return EINVAL;
	for (size_t i = 0; i < g->n; i++) {
		const struct stat_def *d = &g->stats[i];

		if (!ident_ok(d->name) ||
		    (d->scope == STAT_SHARD && g->shard_read == NULL) ||
		    (d->scope == STAT_PROCESS && g->process_read == NULL))
			return EINVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(d->name, g->stats[j].name) == 0)
				return EINVAL;
	}
	return 0;
}

int stats_register(const struct stat_group *g)
{
	int64_t *base;
	int err = group_check(g);

	if (err)
		return err;
	if (strcmp(g->name, "shard") == 0)
		return EEXIST;
	base = calloc(g->n, sizeof(*base));
	if (base == NULL)
		return ENOMEM;
	pthread_mutex_lock(&stats_mx);
	for (size_t i = 0; i < ngroups && !err; i++)
		if (strcmp(groups[i].g->name, g->name) == 0)
			err = EEXIST;
	if (!err && ngroups == STATS_MAX_GROUPS)
		err = ENOSPC;
	if (!err) {
		groups[ngroups].g = g;
		groups[ngroups].base = base;
		ngroups++;
	}
	pthread_mutex_unlock(&stats_mx);
	if (err)
		free(base);
	return err;
}

int metrics_register(metrics_fn *fn, void *arg)
{
	int err = 0;

	if (fn == NULL)
		return EINVAL;
	pthread_mutex_lock(&stats_mx);
	if (nmfns == METRICS_MAX_FNS) {
		err = ENOSPC;
	} else {
		mfns[nmfns].fn = fn;
		mfns[nmfns].arg = arg;
		nmfns++;
	}
	pthread_mutex_unlock(&stats_mx);
	return err;
}

size_t metrics_fns(metrics_fn **fns, void **args, size_t max)
{
	size_t n;

	pthread_mutex_lock(&stats_mx);
	n = nmfns < max ? nmfns : max;
	for (size_t i = 0; i < n; i++) {
		fns[i] = mfns[i].fn;
		args[i] = mfns[i].arg;
	}
	pthread_mutex_unlock(&stats_mx);
	return n;
}

/* ------------------------------------------------------------------ tcp */

/* X(name, kind, help, value of struct net_tcp_stats t): Kamailio's tcp
 * group. */
#define TCP_STATS(X)                                                           \
	X("established", STAT_COUNTER,                                         \
	  "TCP connections established, accepted or opened", t.established)    \
	X("passive_open", STAT_COUNTER, "TCP connections accepted",            \
	  t.passive_open)                                                      \
	X("connect_success", STAT_COUNTER, "TCP connections opened",           \
	  t.connect_success)                                                   \
	X("connect_failed", STAT_COUNTER,                                      \
	  "TCP connections that could not be opened", t.connect_failed)        \
	X("local_reject", STAT_COUNTER,                                        \
	  "TCP connections accepted and dropped at once on this side",         \
	  t.local_reject)                                                      \
	X("con_timeout", STAT_COUNTER,                                         \
	  "TCP connections closed for being idle (tcp_connection_lifetime)",   \
	  t.con_timeout)                                                       \
	X("con_reset", STAT_COUNTER, "TCP connections reset by the peer",      \
	  t.con_reset)                                                         \
	X("sendq_full", STAT_COUNTER,                                          \
	  "TCP connections closed because the peer did not read what waited",  \
	  t.sendq_full)                                                        \
	X("send_timeout", STAT_COUNTER,                                        \
	  "TCP connections closed because bytes waited to be written "         \
	  "tcp_send_timeout seconds",                                          \
	  t.send_timeout)                                                      \
	X("current_opened_connections", STAT_GAUGE, "TCP connections open",    \
	  t.open)                                                              \
	X("current_write_queue_size", STAT_GAUGE,                              \
	  "Bytes waiting to be written on TCP connections", t.write_queue)

#define TCP_DEF(name, kind, help, value) {name, kind, STAT_SHARD, help},
#define TCP_ADD(name, kind, help, value) *v++ += (int64_t)(value);

static const struct stat_def tcp_defs[] = {TCP_STATS(TCP_DEF)};

static void tcp_read(struct worker *w, int64_t *v, void *arg)
{
	struct net_tcp_stats t;

	(void)arg;
	net_tcp_stats(w, &t);
	TCP_STATS(TCP_ADD)
}

static const struct stat_group tcp_group = {
        "tcp",    tcp_defs, sizeof(tcp_defs) / sizeof(tcp_defs[0]),
        tcp_read, NULL,     NULL};

int stats_register_tcp(void)
{
	return stats_register(&tcp_group);
}

/* -------------------------------------------------------- the server's */

static void shard_queues(struct rt *rt, int64_t *v, void *arg)
{
	(void)arg;
	for (unsigned i = 0; rt != NULL && i < rt_workers(rt); i++)
		v[i] = (int64_t)worker_queue_len(rt_worker(rt, i));
}

/* Read on the management thread: a worker reading its own queue would
 * see it just emptied to run that very job. */
int stats_server_init(struct mgmt *m)
{
	struct rt *rt = m->cfg.rt;
	unsigned n = rt ? rt_workers(rt) : 0;
	const size_t len = 24;

	if (n == 0)
		return 0;
	m->shard_defs = calloc(n, sizeof(*m->shard_defs));
	m->shard_names = calloc(n, len);
	if (m->shard_defs == NULL || m->shard_names == NULL) {
		stats_server_fini(m);
		return ENOMEM;
	}
	for (unsigned i = 0; i < n; i++) {
		char *name = m->shard_names + i * len;

		snprintf(name, len, "queue_depth_%u", i);
		m->shard_defs[i] = (struct stat_def){
		        name, STAT_GAUGE, STAT_PROCESS,
		        "Jobs waiting in this worker's queue: messages of its "
		        "calls read by another worker, timers and management "
		        "jobs"};
	}
	m->shard_group = (struct stat_group){
	        .name = "shard",
	        .stats = m->shard_defs,
	        .n = n,
	        .process_read = shard_queues,
	};
	return 0;
}

void stats_server_fini(struct mgmt *m)
{
	free(m->shard_defs);
	free(m->shard_names);
	m->shard_defs = NULL;
	m->shard_names = NULL;
	memset(&m->shard_group, 0, sizeof(m->shard_group));
}

/* ------------------------------------------------------------ snapshot */

void stats_snap_fini(struct stats_snap *s)
{
	for (size_t i = 0; i < s->n; i++) {
		free(s->e[i].v);
		free(s->e[i].sel);
	}
	s->n = 0;
}

static void snap_add(struct stats_snap *s, const struct stat_group *g,
                     int64_t *base)
{
	size_t i = s->n++;

	/* Sorted by name, as Kamailio lists its groups. */
	while (i > 0 && strcmp(s->e[i - 1].g->name, g->name) > 0) {
		s->e[i] = s->e[i - 1];
		i--;
	}
	s->e[i].g = g;
	s->e[i].base = base;
	s->e[i].v = calloc(g->n, sizeof(*s->e[i].v));
	s->e[i].sel = calloc(g->n, sizeof(*s->e[i].sel));
}

int stats_snap_init(struct stats_snap *s, struct rpc_ctx *ctx)
{
	struct mgmt *m = rpc_server(ctx);

	memset(s, 0, sizeof(*s));
	pthread_mutex_lock(&stats_mx);
	for (size_t i = 0; i < ngroups; i++)
		snap_add(s, groups[i].g, groups[i].base);
	pthread_mutex_unlock(&stats_mx);
	if (m != NULL && m->shard_group.n > 0)
		snap_add(s, &m->shard_group, NULL);
	for (size_t i = 0; i < s->n; i++) {
		if (s->e[i].v == NULL || s->e[i].sel == NULL) {
			stats_snap_fini(s);
			rpc_fault(ctx, RPC_INTERNAL_ERROR,
			          "Internal error: out of memory");
			return ENOMEM;
		}
	}
	return 0;
}

static void snap_shard(struct worker *w, void *arg)
{
	struct stats_snap *s = arg;

	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].g->shard_read != NULL)
			s->e[i].g->shard_read(w, s->e[i].v, s->e[i].g->arg);
}

int stats_snap_read(struct stats_snap *s, struct rpc_ctx *ctx)
{
	bool shards = false;
	int err;

	for (size_t i = 0; i < s->n; i++)
		shards = shards || s->e[i].g->shard_read != NULL;
	if (shards && (err = rpc_for_each_shard(ctx, snap_shard, s)) != 0)
		return err;
	for (size_t i = 0; i < s->n; i++)
		if (s->e[i].g->process_read != NULL)
			s->e[i].g->process_read(rpc_rt(ctx), s->e[i].v,
			                        s->e[i].g->arg);
	return 0;
}

int64_t stats_snap_value(const struct stats_snap *s, size_t e, size_t i)
{
	const struct stats_snap_group *sg = &s->e[e];
	int64_t v = sg->v[i], base;

	if (sg->g->stats[i].kind != STAT_COUNTER || sg->base == NULL)
		return v;
	pthread_mutex_lock(&stats_mx);
	base = sg->base[i];
	pthread_mutex_unlock(&stats_mx);
	/* A counter never goes below its reset point; should one not grow
	 * monotonically, report 0 rather than a negative count. */
	return v > base ? v - base : 0;
}

/* Counters chosen in s start again from their values in s. */
static void snap_reset(const struct stats_snap *s)
{
	pthread_mutex_lock(&stats_mx);
	for (size_t e = 0; e < s->n; e++) {
		const struct stats_snap_group *sg = &s->e[e];

		for (size_t i = 0; sg->base != NULL && i < sg->g->n; i++)
			if (sg->sel[i] && sg->g->stats[i].kind == STAT_COUNTER)
				sg->base[i] = sg->v[i];
	}
	pthread_mutex_unlock(&stats_mx);
}

/* ------------------------------------------------------------- methods */

static bool select_in(struct stats_snap_group *sg, const char *name,
                      size_t nlen)
{
	bool any = false;

	for (size_t i = 0; i < sg->g->n; i++) {
		if (name == NULL ||
		    (strlen(sg->g->stats[i].name) == nlen &&
		     memcmp(sg->g->stats[i].name, name, nlen) == 0)) {
			sg->sel[i] = true;
			any = true;
		}
	}
	return any;
}

/*
 * Kamailio's forms: "all"; "group:" (a whole group); "group:name" or, as
 * stats.fetch also takes it, "group.name"; a bare "name" (in whichever
 * group has it). Returns whether p chose anything.
 */
static bool snap_select(struct stats_snap *s, const char *p)
{
	const char *sep = strchr(p, ':');
	const char *name = p;
	size_t glen = 0;
	bool any = false;

	if (strcmp(p, "all") == 0) {
		for (size_t e = 0; e < s->n; e++)
			any |= select_in(&s->e[e], NULL, 0);
		return any;
	}
	if (sep == NULL)
		sep = strchr(p, '.');
	if (sep != NULL) {
		glen = (size_t)(sep - p);
		name = sep + 1;
		if (*name == '\0' && *sep == '.')
			return false;
	}
	for (size_t e = 0; e < s->n; e++) {
		struct stats_snap_group *sg = &s->e[e];

		if (sep != NULL && (strlen(sg->g->name) != glen ||
		                    memcmp(sg->g->name, p, glen) != 0))
			continue;
		any |= select_in(sg, *name ? name : NULL, strlen(name));
	}
	return any;
}

/*
 * The snapshot of the statistics the parameters name, every value read.
 * Fails with the fault set: 400 without a parameter, 404 "Statistics Not
 * Found" when none names anything.
 */
static int take(struct stats_snap *s, struct rpc_ctx *ctx)
{
	size_t n = rpc_param_count(ctx);
	const char *p;
	bool any = false;

	if (n == 0) {
		/* The fault of a missing first parameter. */
		rpc_param_str(ctx, 0, "statistics", &p);
		return EINVAL;
	}
	if (stats_snap_init(s, ctx))
		return ENOMEM;
	for (unsigned i = 0; i < n; i++) {
		if (rpc_param_str(ctx, i, i == 0 ? "statistics" : NULL, &p)) {
			stats_snap_fini(s);
			return EINVAL;
		}
		any |= snap_select(s, p);
	}
	if (!any) {
		stats_snap_fini(s);
		rpc_fault(ctx, 404, "Statistics Not Found");
		return ENOENT;
	}
	if (stats_snap_read(s, ctx)) {
		stats_snap_fini(s);
		return EIO;
	}
	return 0;
}

enum shape { SHAPE_LINES, SHAPE_STRINGS, SHAPE_NUMBERS };

static void reply(struct rpc_ctx *ctx, const struct stats_snap *s,
                  enum shape shape)
{
	struct rpc_node *arr =
	        shape == SHAPE_LINES ? rpc_add_array(ctx, NULL, NULL) : NULL;

	for (size_t e = 0; e < s->n; e++) {
		const struct stats_snap_group *sg = &s->e[e];

		for (size_t i = 0; i < sg->g->n; i++) {
			const char *g = sg->g->name, *n = sg->g->stats[i].name;
			long long v = (long long)stats_snap_value(s, e, i);
			char key[160];

			if (!sg->sel[i])
				continue;
			snprintf(key, sizeof(key), "%s.%s", g, n);
			if (shape == SHAPE_LINES)
				rpc_add_strf(ctx, arr, NULL, "%s:%s = %lld", g,
				             n, v);
			else if (shape == SHAPE_STRINGS)
				rpc_add_strf(ctx, NULL, key, "%lld", v);
			else
				rpc_add_int(ctx, NULL, key, v);
		}
	}
}

static void serve(struct rpc_ctx *ctx, enum shape shape)
{
	struct stats_snap s;

	if (take(&s, ctx))
		return;
	reply(ctx, &s, shape);
	stats_snap_fini(&s);
}

static void rpc_get_statistics(struct rpc_ctx *ctx)
{
	serve(ctx, SHAPE_LINES);
}

static void rpc_fetch(struct rpc_ctx *ctx)
{
	serve(ctx, SHAPE_STRINGS);
}

static void rpc_fetchn(struct rpc_ctx *ctx)
{
	serve(ctx, SHAPE_NUMBERS);
}

static void rpc_reset_statistics(struct rpc_ctx *ctx)
{
	struct stats_snap s;

	if (take(&s, ctx))
		return;
	snap_reset(&s);
	stats_snap_fini(&s);
}

/* The lines of get_statistics, then the reset, from one snapshot: nothing
 * counted between the two is lost. */
static void rpc_clear_statistics(struct rpc_ctx *ctx)
{
	struct stats_snap s;

	if (take(&s, ctx))
		return;
	reply(ctx, &s, SHAPE_LINES);
	snap_reset(&s);
	stats_snap_fini(&s);
}

static const struct rpc_method stats_methods[] = {
        {"stats.get_statistics", rpc_get_statistics,
         "Statistics as \"group:name = value\" lines: all, group:, "
         "group:name or name"},
        {"stats.fetch", rpc_fetch,
         "Statistics as {\"group.name\": \"value\"}: all, group:, "
         "group:name, group.name or name"},
        {"stats.fetchn", rpc_fetchn,
         "Statistics as {\"group.name\": value}: all, group:, group:name, "
         "group.name or name"},
        {"stats.reset_statistics", rpc_reset_statistics,
         "Restarts counters at 0 (gauges stay): all, group:, group:name "
         "or name"},
        {"stats.clear_statistics", rpc_clear_statistics,
         "As stats.get_statistics, then stats.reset_statistics"},
};

int stats_register_methods(void)
{
	return rpc_register(stats_methods,
	                    sizeof(stats_methods) / sizeof(stats_methods[0]));
}
