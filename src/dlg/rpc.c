/*
 * The dialog RPC methods (dlg.*, dlg2.*, mem.info), with the names and
 * reply shapes of Kamailio's dialog and ims_dialog modules
 * (ims-dialog-behaviour.md §11, docs/rpc.md).
 *
 * Dialogs belong to their worker. A method acting on one dialog runs a
 * short function on the worker owning it (rpc_on_shard). A method that
 * lists or counts dialogs walks each worker's table in chunks (struct
 * walk): one job on the worker copies what it needs of at most a few
 * hundred dialogs or about a millisecond of work, notes where it stopped
 * and returns; the management thread turns the copies into the reply and
 * posts the next chunk. A worker is never held longer than one chunk, and
 * no dialog pointer outlives the job that found it.
 */
#include <errno.h>
#include <limits.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "dlg/dlg_int.h"
#include "mgmt/mgmt.h"

static struct dlg_shard *const *rpc_shards;
static unsigned rpc_nshards;

struct dlg_shard *dlg_rpc_shard(struct worker *w)
{
	unsigned i = worker_id(w);

	return i < rpc_nshards ? rpc_shards[i] : NULL;
}

/* The worker owning a Call-ID: the transport's choice (tm intake). */
static unsigned callid_owner(const char *callid)
{
	if (rpc_nshards <= 1)
		return 0;
	return (unsigned)(hash_bytes(callid, strlen(callid)) % rpc_nshards);
}

/* The worker owning a dialog id: h_id % nshards (dlg.c create()). */
static unsigned id_owner(uint32_t h_id)
{
	return rpc_nshards ? h_id % rpc_nshards : 0;
}

/* ------------------------------------------------------------ the walk */

/* Dialogs one job visits at most, and the time it may take: a worker
 * serves calls between two chunks. */
#define WALK_CHUNK     256
#define WALK_BUDGET_NS 1000000L
/* The clock is read every this many dialogs. */
#define WALK_CLOCK_EVERY 16

struct walk;

enum visit {
	VISIT_NEXT, /* go on */
	VISIT_END,  /* the walk found what it wanted: it ends */
	VISIT_FULL, /* no room for d in this chunk: the next chunk starts
	             * with it */
};

/* On the worker, once per dialog (which it must not free or unlink). */
typedef enum visit walk_visit_fn(struct walk *wk, struct dlg *d,
                                 struct worker *w);

/*
 * A walk over every worker's table, in slot order, a chunk per job.
 *
 * Consistency: a slot's chain only grows at its head, newest first, and
 * ids in a slot grow with creation (dlg.c create()), so the chain is in
 * decreasing h_id order. A chunk that stops inside a chain notes the
 * least h_id it visited there; the next chunk visits only the dialogs of
 * that chain with a smaller id. Hence a dialog alive during the whole walk
 * is visited exactly once, one created or freed meanwhile at most once,
 * and each is seen as it was at the moment its chunk ran. (Should the
 * 32-bit ids of one slot ever wrap, which takes 2^32 / workers calls in
 * that slot, some dialogs of that slot could be missed, never repeated.)
 */
struct walk {
	walk_visit_fn *visit;
	/* Optional, on the worker: at the start of each job (false: end
	 * the walk, nothing visited), and at the end of each job. */
	bool (*job_begin)(struct walk *wk, struct dlg_shard *ds);
	void (*job_end)(struct walk *wk, struct dlg_shard *ds,
	                struct worker *w);
	/* Optional, on the management thread after each job. */
	void (*drain)(struct walk *wk, struct rpc_ctx *ctx);
	unsigned chunk; /* dialogs per job; 0: WALK_CHUNK */

	/* Where the walk is, kept between jobs. */
	unsigned shard, slot;
	bool in_slot;   /* some dialogs of the slot were visited */
	uint32_t below; /* then: the least h_id visited in the slot */
	bool shard_done, stop;
	/* For the log: jobs run, dialogs visited, the longest job in time
	 * (which includes being preempted) and in the worker's CPU. */
	unsigned jobs;
	size_t visited;
	long longest_ns, longest_cpu_ns;
};

static long elapsed_ns(clockid_t clock, const struct timespec *t0)
{
	struct timespec t;

	clock_gettime(clock, &t);
	return (long)(t.tv_sec - t0->tv_sec) * 1000000000L +
	       (t.tv_nsec - t0->tv_nsec);
}

static void walk_job(struct worker *w, void *arg)
{
	struct walk *wk = arg;
	struct dlg_shard *ds = dlg_rpc_shard(w);
	unsigned chunk = wk->chunk ? wk->chunk : WALK_CHUNK;
	unsigned n = 0;
	struct timespec t0, cpu0;

	wk->jobs++;
	if (ds == NULL) {
		/* A worker that stopped has no dialogs left. */
		wk->shard_done = true;
		return;
	}
	if (wk->job_begin && !wk->job_begin(wk, ds)) {
		wk->stop = true;
		return;
	}
	clock_gettime(CLOCK_MONOTONIC, &t0);
	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &cpu0);
	for (; wk->slot < ds->cfg->hash_size; wk->slot++, wk->in_slot = false) {
		for (struct dlg *d = ds->slots[wk->slot]; d; d = d->hnext) {
			if (wk->in_slot && d->h_id >= wk->below)
				continue;
			if (n == chunk ||
			    (n % WALK_CLOCK_EVERY == 0 && n &&
			     elapsed_ns(CLOCK_MONOTONIC, &t0) > WALK_BUDGET_NS))
				goto out;
			enum visit v = wk->visit(wk, d, w);
			if (v == VISIT_FULL)
				goto out;
			n++;
			wk->in_slot = true;
			wk->below = d->h_id;
			if (v == VISIT_END) {
				wk->stop = true;
				goto out;
			}
		}
	}
	wk->shard_done = true;
out:
	if (wk->job_end)
		wk->job_end(wk, ds, w);
	wk->visited += n;
	long ns = elapsed_ns(CLOCK_MONOTONIC, &t0);
	long cpu = elapsed_ns(CLOCK_THREAD_CPUTIME_ID, &cpu0);
	if (ns > wk->longest_ns)
		wk->longest_ns = ns;
	if (cpu > wk->longest_cpu_ns)
		wk->longest_cpu_ns = cpu;
}

/* Walks every shard; 0, or -1 with the fault set (a worker did not
 * answer, shutdown). */
static int walk_run(struct rpc_ctx *ctx, struct walk *wk)
{
	struct timespec t0;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (wk->shard = 0; wk->shard < rpc_nshards && !wk->stop; wk->shard++) {
		wk->slot = 0;
		wk->in_slot = false;
		wk->shard_done = false;
		while (!wk->shard_done && !wk->stop) {
			if (rpc_on_shard(ctx, wk->shard, walk_job, wk))
				return -1;
			if (wk->drain)
				wk->drain(wk, ctx);
		}
	}
	LOG_INFO("rpc %s: %zu dialogs in %u jobs over %u workers, %.1f ms; "
	         "longest job %.2f ms, %.2f ms of CPU",
	         rpc_method_name(ctx), wk->visited, wk->jobs, rpc_nshards,
	         (double)elapsed_ns(CLOCK_MONOTONIC, &t0) / 1e6,
	         (double)wk->longest_ns / 1e6,
	         (double)wk->longest_cpu_ns / 1e6);
	return 0;
}

/* ------------------------------------------------------ dialog copies */

/*
 * Where a chunk's copies go: one block that the management thread owns
 * and reuses from chunk to chunk, which the worker fills without calling
 * malloc. A listing then leaves nothing in the worker's heap: freeing
 * millions of small copies there from another thread would leave the
 * worker's allocator that many chunks to consolidate later, tens of
 * milliseconds at a time on its next allocations.
 */
#define CBUF_SIZE (256 * 1024)

struct cbuf {
	char *p;
	size_t used, cap;
	bool full; /* an allocation did not fit */
};

static void *cbuf_alloc(struct cbuf *b, size_t n, size_t align)
{
	size_t at = (b->used + align - 1) & ~(align - 1);

	if (at > b->cap || n > b->cap - at) {
		b->full = true;
		return NULL;
	}
	b->used = at + n;
	return b->p + at;
}

#define CBUF_NEW(b, type, n)                                                   \
	((type *)cbuf_alloc((b), sizeof(type) * (n), _Alignof(type)))

static char *cbuf_strn(struct cbuf *b, const char *s, size_t n)
{
	char *d = cbuf_alloc(b, n + 1, 1);

	if (d) {
		memcpy(d, s, n);
		d[n] = '\0';
	}
	return d;
}

/* s, or "" for NULL. */
static char *cbuf_str(struct cbuf *b, const char *s)
{
	return s ? cbuf_strn(b, s, strlen(s)) : cbuf_strn(b, "", 0);
}

struct leg_copy {
	char *tag, *contact, *route_set, *socket;
	uint32_t caller_cseq, callee_cseq;
	enum leg_state state;
};

struct kv_copy {
	char *key, *value; /* value NULL: a profile without values */
};

/* What a DLGCB_RPC_CONTEXT callback added: a string or an integer. */
struct ctx_item {
	struct ctx_item *next;
	char *key, *str; /* str NULL: the integer */
	long long num;
};

/* A dialog as a listing saw it; every pointer into the chunk's cbuf. */
struct dlg_copy {
	uint32_t h_entry, h_id;
	unsigned ref;
	enum dlg_state state;
	char *callid, *from_uri, *to_uri, *from_tag, *req_uri;
	char *caller_contact, *caller_route_set, *caller_socket;
	time_t init_ts, start_ts, end_ts, timeout;
	unsigned lifetime;
	uint32_t sflags;
	uint32_t iflags;
	struct leg_copy *legs;
	size_t nlegs;
	struct kv_copy *profs, *vars;
	size_t nprofs, nvars;
	bool with_ctx;
	struct ctx_item *ctx, **ctx_tail;
};

static const char *sock_name(const struct net_listener *l)
{
	return l ? l->name : "";
}

/* The public half of DLGCB_RPC_CONTEXT (imsdlg/dialog.h): what a
 * callback adds goes into the copy being made, on the worker. */
struct dlg_rpc_context {
	struct dlg_copy *c;
	struct cbuf *b;
};

static struct ctx_item *ctx_push(struct dlg_rpc_context *rc, const char *key)
{
	struct ctx_item *v = CBUF_NEW(rc->b, struct ctx_item, 1);

	if (v == NULL || (v->key = cbuf_str(rc->b, key)) == NULL)
		return NULL;
	v->next = NULL;
	v->str = NULL;
	v->num = 0;
	*rc->c->ctx_tail = v;
	rc->c->ctx_tail = &v->next;
	return v;
}

int dlg_rpc_context_add_str(struct dlg_rpc_context *rc, const char *key,
                            const char *value)
{
	struct ctx_item *v;
	char *s;

	if (rc == NULL || key == NULL || *key == '\0' || value == NULL)
		return EINVAL;
	/* The value first: a failure then leaves no half item. */
	if ((s = cbuf_str(rc->b, value)) == NULL ||
	    (v = ctx_push(rc, key)) == NULL)
		return ENOMEM;
	v->str = s;
	return 0;
}

int dlg_rpc_context_add_int(struct dlg_rpc_context *rc, const char *key,
                            long long value)
{
	struct ctx_item *v;

	if (rc == NULL || key == NULL || *key == '\0')
		return EINVAL;
	if ((v = ctx_push(rc, key)) == NULL)
		return ENOMEM;
	v->num = value;
	return 0;
}

/* The UNIX time d's timer fires, or 0 (ended: its timer only removes the
 * record). The wheel counts worker milliseconds. */
static time_t timeout_of(struct dlg *d, struct worker *w)
{
	uint64_t now, left;

	if (d->state == DLG_STATE_DELETED || !tmr_pending(&d->timer))
		return 0;
	now = worker_now(w);
	left = d->timer.expires > now ? d->timer.expires - now : 0;
	return time(NULL) + (time_t)((left + 999) / 1000);
}

static void copy_legs(struct dlg_copy *c, struct dlg *d, struct cbuf *b)
{
	size_t i = 0;

	for (struct dlg_leg *l = d->legs; l; l = l->next)
		c->nlegs++;
	if (c->nlegs == 0 ||
	    !(c->legs = CBUF_NEW(b, struct leg_copy, c->nlegs)))
		return;
	for (struct dlg_leg *l = d->legs; l; l = l->next, i++) {
		struct leg_copy *lc = &c->legs[i];
		lc->tag = cbuf_str(b, l->tag);
		lc->contact = cbuf_str(b, l->contact);
		lc->route_set = cbuf_str(b, l->route_set);
		lc->socket = cbuf_str(b, sock_name(l->sock));
		lc->caller_cseq = l->caller_cseq;
		lc->callee_cseq = l->callee_cseq;
		lc->state = l->state;
	}
}

/* Profiles and variables, empty once the dialog has ended (Kamailio). */
static void copy_profs_vars(struct dlg_copy *c, struct dlg *d, struct cbuf *b)
{
	size_t i = 0;

	if (d->state == DLG_STATE_DELETED)
		return;
	c->nprofs = profile_set_count(&d->profiles);
	if (c->nprofs && (c->profs = CBUF_NEW(b, struct kv_copy, c->nprofs))) {
		for (const struct profile_member *m =
		             profile_set_next(&d->profiles, NULL);
		     m && i < c->nprofs;
		     m = profile_set_next(&d->profiles, m), i++) {
			const struct profile *p = profile_member_profile(m);
			struct slice v = profile_member_value(m);
			c->profs[i].key = cbuf_str(b, profile_name(p));
			c->profs[i].value =
			        profile_has_value(p)
			                ? cbuf_strn(b, v.p ? v.p : "", v.len)
			                : NULL;
		}
	}
	for (struct dlg_var *v = d->vars; v; v = v->next)
		c->nvars++;
	if (c->nvars == 0 || !(c->vars = CBUF_NEW(b, struct kv_copy, c->nvars)))
		return;
	i = 0;
	for (struct dlg_var *v = d->vars; v; v = v->next, i++) {
		c->vars[i].key = cbuf_str(b, v->key);
		c->vars[i].value = cbuf_str(b, v->value);
	}
}

/* Copies d into c and b (worker thread); false when b is full (what was
 * put in b is then to be dropped). with_ctx runs the DLGCB_RPC_CONTEXT
 * callbacks of d into c. */
static bool copy_dlg(struct dlg_copy *c, struct dlg *d, struct worker *w,
                     bool with_ctx, struct cbuf *b)
{
	memset(c, 0, sizeof(*c));
	c->ctx_tail = &c->ctx;
	c->h_entry = d->h_entry;
	c->h_id = d->h_id;
	c->ref = d->refs + 1;
	c->state = d->state;
	c->init_ts = d->init_ts;
	c->start_ts = d->start_ts;
	c->end_ts = d->end_ts;
	c->lifetime = d->lifetime;
	c->sflags = d->sflags;
	c->iflags = d->iflags;
	c->timeout = timeout_of(d, w);
	c->callid = cbuf_str(b, d->callid);
	c->from_uri = cbuf_str(b, d->from_uri);
	c->to_uri = cbuf_str(b, d->to_uri);
	c->from_tag = cbuf_str(b, d->from_tag);
	c->req_uri = cbuf_str(b, d->req_uri);
	c->caller_contact = cbuf_str(b, d->caller_contact);
	c->caller_route_set = cbuf_str(b, d->caller_route_set);
	c->caller_socket = cbuf_str(b, sock_name(d->caller_sock));
	copy_legs(c, d, b);
	copy_profs_vars(c, d, b);
	if (with_ctx && !b->full) {
		struct dlg_rpc_context rc = {c, b};
		c->with_ctx = true;
		dlg_run_cbs_data(d, DLGCB_RPC_CONTEXT, &rc);
	}
	return !b->full;
}

/* ------------------------------------------------------- reply shapes */

static const char *leg_state_name(enum leg_state s)
{
	switch (s) {
	case LEG_EARLY:
		return "early";
	case LEG_CONFIRMED:
		return "confirmed";
	default:
		return "ended";
	}
}

/* The callee is the confirmed leg, else the first one, else none. */
static const struct leg_copy *callee_of(const struct dlg_copy *c)
{
	for (size_t i = 0; i < c->nlegs; i++)
		if (c->legs[i].state == LEG_CONFIRMED)
			return &c->legs[i];
	return c->nlegs ? &c->legs[0] : NULL;
}

static long long duration_of(const struct dlg_copy *c)
{
	long long d = 0;

	if (c->start_ts && c->end_ts)
		d = (long long)(c->end_ts - c->start_ts);
	else if (c->start_ts)
		d = (long long)(time(NULL) - c->start_ts);
	return d < 0 ? 0 : d;
}

static void add_kv_list(struct rpc_ctx *ctx, struct rpc_node *o,
                        const char *name, const struct kv_copy *v, size_t n)
{
	struct rpc_node *a = rpc_add_array(ctx, o, name);

	for (size_t i = 0; i < n; i++) {
		if (v[i].value == NULL) {
			rpc_add_str(ctx, a, NULL, v[i].key);
		} else {
			struct rpc_node *p = rpc_add_object(ctx, a, NULL);
			rpc_add_str(ctx, p, v[i].key, v[i].value);
		}
	}
}

/* The members of Kamailio's dialog object, then state_name and legs. */
static void add_dlg_fields(struct rpc_ctx *ctx, struct rpc_node *o,
                           const struct dlg_copy *c)
{
	const struct leg_copy *callee = callee_of(c);

	rpc_add_int(ctx, o, "h_entry", c->h_entry);
	rpc_add_int(ctx, o, "h_id", c->h_id);
	rpc_add_int(ctx, o, "ref", c->ref);
	rpc_add_str(ctx, o, "call-id", c->callid);
	rpc_add_str(ctx, o, "from_uri", c->from_uri);
	rpc_add_str(ctx, o, "to_uri", c->to_uri);
	rpc_add_int(ctx, o, "state", c->state);
	rpc_add_str(ctx, o, "state_name", dlg_state_name(c->state));
	rpc_add_int(ctx, o, "start_ts", (long long)c->start_ts);
	rpc_add_int(ctx, o, "init_ts", (long long)c->init_ts);
	rpc_add_int(ctx, o, "end_ts", (long long)c->end_ts);
	rpc_add_int(ctx, o, "duration", duration_of(c));
	rpc_add_int(ctx, o, "timeout", (long long)c->timeout);
	rpc_add_int(ctx, o, "lifetime", c->lifetime);
	rpc_add_int(ctx, o, "dflags", 0);
	rpc_add_int(ctx, o, "sflags", c->sflags);
	rpc_add_int(ctx, o, "iflags", c->iflags);

	struct rpc_node *p = rpc_add_object(ctx, o, "caller");
	rpc_add_str(ctx, p, "tag", c->from_tag);
	rpc_add_str(ctx, p, "contact", c->caller_contact);
	rpc_add_int(ctx, p, "cseq", callee ? callee->caller_cseq : 0);
	rpc_add_str(ctx, p, "route_set", c->caller_route_set);
	rpc_add_str(ctx, p, "socket", c->caller_socket);
	p = rpc_add_object(ctx, o, "callee");
	rpc_add_str(ctx, p, "tag", callee ? callee->tag : "");
	rpc_add_str(ctx, p, "contact", callee ? callee->contact : "");
	rpc_add_int(ctx, p, "cseq", callee ? callee->callee_cseq : 0);
	rpc_add_str(ctx, p, "route_set", callee ? callee->route_set : "");
	rpc_add_str(ctx, p, "socket", callee ? callee->socket : "");

	add_kv_list(ctx, o, "profiles", c->profs, c->nprofs);
	add_kv_list(ctx, o, "variables", c->vars, c->nvars);
	if (c->with_ctx) {
		p = rpc_add_object(ctx, o, "context");
		for (const struct ctx_item *i = c->ctx; i; i = i->next) {
			if (i->str)
				rpc_add_str(ctx, p, i->key, i->str);
			else
				rpc_add_int(ctx, p, i->key, i->num);
		}
	}

	struct rpc_node *a = rpc_add_array(ctx, o, "legs");
	for (size_t i = 0; i < c->nlegs; i++) {
		const struct leg_copy *l = &c->legs[i];
		p = rpc_add_object(ctx, a, NULL);
		rpc_add_str(ctx, p, "tag", l->tag);
		rpc_add_str(ctx, p, "contact", l->contact);
		rpc_add_str(ctx, p, "route_set", l->route_set);
		rpc_add_int(ctx, p, "caller_cseq", l->caller_cseq);
		rpc_add_int(ctx, p, "callee_cseq", l->callee_cseq);
		rpc_add_str(ctx, p, "socket", l->socket);
		rpc_add_str(ctx, p, "state", leg_state_name(l->state));
	}
}

/* ims_dialog's state words (§11.1): "Confirmed" also before the ACK. */
static const char *ims_state_name(enum dlg_state s)
{
	switch (s) {
	case DLG_STATE_UNCONFIRMED:
		return "Unconfirmed";
	case DLG_STATE_EARLY:
		return "Early";
	case DLG_STATE_CONFIRMED_NA:
	case DLG_STATE_CONFIRMED:
		return "Confirmed";
	case DLG_STATE_DELETED:
		return "Deleted";
	default:
		return "Unknown";
	}
}

/* dlg2.list: {"Dialog": {ims_dialog's members, then dlg.list's}}. */
static void add_ims_dlg(struct rpc_ctx *ctx, struct rpc_node *arr,
                        const struct dlg_copy *c)
{
	struct rpc_node *o = rpc_add_object(ctx, arr, NULL);
	char did[24];

	o = rpc_add_object(ctx, o, "Dialog");
	did[dlg_did_print(did, c->h_entry, c->h_id)] = '\0';
	rpc_add_int(ctx, o, "Entry", c->h_entry);
	rpc_add_int(ctx, o, "Id", c->h_id);
	rpc_add_str(ctx, o, "RURI", c->req_uri);
	rpc_add_str(ctx, o, "From", c->from_uri);
	rpc_add_str(ctx, o, "Call-ID", c->callid);
	rpc_add_str(ctx, o, "Caller Contact", c->caller_contact);
	rpc_add_str(ctx, o, "Caller Route Set", c->caller_route_set);
	rpc_add_str(ctx, o, "Dialog-ID", did);
	rpc_add_str(ctx, o, "From Tag", c->from_tag);
	rpc_add_str(ctx, o, "State", ims_state_name(c->state));
	rpc_add_int(ctx, o, "Ref", c->ref);
	struct rpc_node *a = rpc_add_array(ctx, o, "dlg_outs");
	for (size_t i = 0; i < c->nlegs; i++) {
		const struct leg_copy *l = &c->legs[i];
		struct rpc_node *p = rpc_add_object(ctx, a, NULL);
		p = rpc_add_object(ctx, p, "dlg_out");
		rpc_add_int(ctx, p, "Entry", c->h_entry);
		rpc_add_int(ctx, p, "Id", (long long)i);
		rpc_add_str(ctx, p, "To Tag", l->tag);
		rpc_add_str(ctx, p, "Callee Contact", l->contact);
		rpc_add_str(ctx, p, "Callee Route Set", l->route_set);
		rpc_add_int(ctx, p, "Caller CSeq", l->caller_cseq);
		rpc_add_int(ctx, p, "Callee CSeq", l->callee_cseq);
		rpc_add_str(ctx, p, "Callee Socket", l->socket);
		rpc_add_str(ctx, p, "State", leg_state_name(l->state));
	}
	add_dlg_fields(ctx, o, c);
}

/*
 * dlg.briefing: h_entry, h_id, then per letter of fmt (each once, others
 * ignored, as Kamailio): f from_uri, t to_uri, c call-id, F from_tag,
 * T to_tag (the callee's; Kamailio prints the caller's tag there, a bug),
 * I init_ts, S start_ts, E end_ts, s state.
 */
static void add_brief(struct rpc_ctx *ctx, struct rpc_node *arr,
                      const struct dlg_copy *c, const char *fmt)
{
	struct rpc_node *o = rpc_add_object(ctx, arr, NULL);
	const struct leg_copy *callee = callee_of(c);

	rpc_add_int(ctx, o, "h_entry", c->h_entry);
	rpc_add_int(ctx, o, "h_id", c->h_id);
	for (const char *f = fmt; *f; f++) {
		if (strchr(fmt, *f) != f)
			continue;
		switch (*f) {
		case 'f':
			rpc_add_str(ctx, o, "from_uri", c->from_uri);
			break;
		case 't':
			rpc_add_str(ctx, o, "to_uri", c->to_uri);
			break;
		case 'c':
			rpc_add_str(ctx, o, "call-id", c->callid);
			break;
		case 'F':
			rpc_add_str(ctx, o, "from_tag", c->from_tag);
			break;
		case 'T':
			rpc_add_str(ctx, o, "to_tag",
			            callee ? callee->tag : "");
			break;
		case 'I':
			rpc_add_int(ctx, o, "init_ts", (long long)c->init_ts);
			break;
		case 'S':
			rpc_add_int(ctx, o, "start_ts", (long long)c->start_ts);
			break;
		case 'E':
			rpc_add_int(ctx, o, "end_ts", (long long)c->end_ts);
			break;
		case 's':
			rpc_add_int(ctx, o, "state", c->state);
			break;
		default:
			break;
		}
	}
}

/* ----------------------------------------------------------- listings */

enum shape {
	SHAPE_DLG,   /* Kamailio's dialog object */
	SHAPE_BRIEF, /* dlg.briefing */
	SHAPE_IMS,   /* dlg2.list */
};

/* The keys of dlg.list_match in the order of match_params()' names; the
 * numeric ones (from KEY_TS) compare with gt and lt. */
enum match_key {
	KEY_NONE,
	KEY_RURI,
	KEY_FURI,
	KEY_TURI,
	KEY_CALLID,
	KEY_TS,      /* start_ts (Kamailio's) */
	KEY_INIT_TS, /* init_ts, and state: not in Kamailio */
	KEY_STATE,
};
enum match_op { OP_EQ, OP_RE, OP_SW, OP_GT, OP_LT };

struct list {
	struct walk wk; /* first: the walk's functions get the list */
	enum shape shape;
	bool with_ctx;
	const char *fmt; /* SHAPE_BRIEF */
	/* selection: list_match */
	enum match_key key;
	enum match_op op;
	const char *mval;
	size_t mlen;
	long long mnum;
	regex_t re;
	/* selection: profile_list (resolved on the workers) */
	const char *prof_name, *prof_value;
	const struct profile *prof;
	bool prof_missing;
	/* dlg.dlg_list: one Call-ID (and caller tag) */
	const char *callid, *from_tag;
	/* paging */
	size_t skip, room;
	size_t found;
	unsigned hash_size;
	/* The copies of the current chunk (v[0..n) and buf), drained into
	 * arr; all allocated and freed by the management thread. grow: a
	 * dialog did not fit in the empty chunk. */
	struct dlg_copy *v;
	size_t n, cap;
	struct cbuf buf;
	bool grow;
	struct rpc_node *arr;
	/* dlg.dump_file: where the drained chunks go */
	FILE *dump;
	const char *dump_name;
};

static void list_init(struct list *l, enum shape shape)
{
	memset(l, 0, sizeof(*l));
	l->shape = shape;
	l->room = SIZE_MAX;
}

/* Management thread: room for a chunk, twice as much as before when
 * there was some; 0, or -1 with the fault set. */
static int list_grow(struct rpc_ctx *ctx, struct list *l)
{
	size_t cap = l->cap ? l->cap * 2 : WALK_CHUNK;
	size_t size = l->buf.cap ? l->buf.cap * 2 : CBUF_SIZE;
	struct dlg_copy *v = realloc(l->v, cap * sizeof(*v));
	char *p;

	if (v)
		l->v = v;
	p = v ? realloc(l->buf.p, size) : NULL;
	if (p == NULL) {
		rpc_fault(ctx, 500, "Out of memory");
		return -1;
	}
	l->cap = cap;
	l->buf.p = p;
	l->buf.cap = size;
	l->grow = false;
	return 0;
}

static void list_free(struct list *l)
{
	free(l->v);
	free(l->buf.p);
	l->v = NULL;
	l->buf.p = NULL;
}

/* Copies d into the chunk (worker thread); false when it does not fit
 * (nothing of it is kept). */
static bool list_copy(struct list *l, struct dlg *d, struct worker *w)
{
	size_t mark = l->buf.used;

	if (l->n < l->cap &&
	    copy_dlg(&l->v[l->n], d, w, l->with_ctx, &l->buf)) {
		l->n++;
		return true;
	}
	l->buf.used = mark;
	l->buf.full = false;
	if (l->n == 0)
		l->grow = true;
	return false;
}

static const char *key_value(const struct list *l, const struct dlg *d)
{
	switch (l->key) {
	case KEY_RURI:
		return d->req_uri;
	case KEY_FURI:
		return d->from_uri;
	case KEY_TURI:
		return d->to_uri;
	default:
		return d->callid;
	}
}

static bool matches(const struct list *l, const struct dlg *d)
{
	const char *s;

	if (l->key == KEY_NONE)
		return true;
	if (l->key >= KEY_TS) {
		long long v = l->key == KEY_TS        ? (long long)d->start_ts
		              : l->key == KEY_INIT_TS ? (long long)d->init_ts
		                                      : (long long)d->state;
		return l->op == OP_GT   ? v > l->mnum
		       : l->op == OP_LT ? v < l->mnum
		                        : v == l->mnum;
	}
	s = key_value(l, d);
	if (s == NULL)
		s = "";
	switch (l->op) {
	case OP_EQ:
		return strcmp(s, l->mval) == 0;
	case OP_SW:
		return strncmp(s, l->mval, l->mlen) == 0;
	default:
		return regexec(&l->re, s, 0, NULL, 0) == 0;
	}
}

static enum visit list_visit(struct walk *wk, struct dlg *d, struct worker *w)
{
	struct list *l = (struct list *)wk;

	if (!matches(l, d))
		return VISIT_NEXT;
	if (l->prof_name &&
	    !profile_is_member(&d->profiles, l->prof,
	                       l->prof_value ? slice_cstr(l->prof_value)
	                                     : SLICE_NULL))
		return VISIT_NEXT;
	if (l->skip) {
		l->skip--;
		return VISIT_NEXT;
	}
	if (!list_copy(l, d, w))
		return VISIT_FULL;
	l->found++;
	return --l->room > 0 ? VISIT_NEXT : VISIT_END;
}

static bool list_begin(struct walk *wk, struct dlg_shard *ds)
{
	struct list *l = (struct list *)wk;

	l->hash_size = ds->cfg->hash_size;
	if (l->prof_name == NULL)
		return true;
	/* The registry is the workers' (freed after they stop). */
	l->prof = ds->cfg->profiles ? profile_find(ds->cfg->profiles,
	                                           slice_cstr(l->prof_name))
	                            : NULL;
	l->prof_missing = l->prof == NULL;
	return !l->prof_missing;
}

static void list_add(struct list *l, struct rpc_ctx *ctx,
                     const struct dlg_copy *c)
{
	switch (l->shape) {
	case SHAPE_BRIEF:
		add_brief(ctx, l->arr, c, l->fmt);
		break;
	case SHAPE_IMS:
		add_ims_dlg(ctx, l->arr, c);
		break;
	default:
		add_dlg_fields(ctx, rpc_add_object(ctx, l->arr, NULL), c);
		break;
	}
}

/* Moves the chunk's copies into the reply and empties the chunk
 * (management thread). */
static void list_drain(struct walk *wk, struct rpc_ctx *ctx)
{
	struct list *l = (struct list *)wk;

	for (size_t i = 0; i < l->n; i++)
		list_add(l, ctx, &l->v[i]);
	l->n = 0;
	l->buf.used = 0;
	if (l->grow && list_grow(ctx, l))
		wk->stop = true;
}

/* Walks every shard into l->arr (made here as the result, or by the
 * caller) through l->wk.drain (list_drain() unless the caller set
 * another); 0, or -1 with the fault set. */
static int list_run(struct rpc_ctx *ctx, struct list *l)
{
	int rc = 0;

	if (l->arr == NULL)
		l->arr = rpc_add_array(ctx, NULL, NULL);
	l->wk.visit = list_visit;
	l->wk.job_begin = list_begin;
	if (l->wk.drain == NULL)
		l->wk.drain = list_drain;
	if (l->room > 0 && (rc = list_grow(ctx, l)) == 0)
		rc = walk_run(ctx, &l->wk);
	list_free(l);
	if (rc == 0 && rpc_failed(ctx))
		rc = -1;
	if (rc == 0 && l->prof_missing) {
		rpc_fault(ctx, 404, "Profile not found: %s", l->prof_name);
		rc = -1;
	}
	return rc;
}

static void rpc_list_as(struct rpc_ctx *ctx, bool with_ctx)
{
	long long offset = 0, limit = LLONG_MAX; /* all */
	struct list l;

	if (rpc_param_opt_int(ctx, 0, "offset", &offset) ||
	    rpc_param_opt_int(ctx, 1, "limit", &limit))
		return;
	if (offset < 0 || limit < 0) {
		rpc_fault(ctx, 400, "offset and limit must not be negative");
		return;
	}
	list_init(&l, SHAPE_DLG);
	l.with_ctx = with_ctx;
	l.skip = (size_t)offset;
	if ((unsigned long long)limit < SIZE_MAX)
		l.room = (size_t)limit;
	list_run(ctx, &l);
}

static void rpc_list(struct rpc_ctx *ctx)
{
	rpc_list_as(ctx, false);
}

static void rpc_list_ctx(struct rpc_ctx *ctx)
{
	rpc_list_as(ctx, true);
}

/* dlg.dlg_list: one slot of one shard, in one job; when the chunk is too
 * small for all the dialogs of the call, it is emptied, to be grown and
 * the job run again. */
static void callid_shard(struct worker *w, void *arg)
{
	struct list *l = arg;
	struct dlg_shard *ds = dlg_rpc_shard(w);
	unsigned h;

	if (ds == NULL)
		return;
	h = dlg_core_hash(l->callid, strlen(l->callid)) &
	    (ds->cfg->hash_size - 1);
	for (struct dlg *d = ds->slots[h]; d; d = d->hnext) {
		if (!d->callid || strcmp(d->callid, l->callid) != 0)
			continue;
		if (l->from_tag &&
		    (!d->from_tag || strcmp(d->from_tag, l->from_tag) != 0))
			continue;
		if (!list_copy(l, d, w)) {
			l->grow = true;
			l->n = 0;
			l->buf.used = 0;
			return;
		}
	}
}

static void rpc_dlg_list_as(struct rpc_ctx *ctx, bool with_ctx)
{
	struct list l;

	list_init(&l, SHAPE_DLG);
	l.with_ctx = with_ctx;
	if (rpc_param_str(ctx, 0, "callid", &l.callid) ||
	    rpc_param_opt_str(ctx, 1, "from_tag", &l.from_tag))
		return;
	l.arr = rpc_add_array(ctx, NULL, NULL);
	for (;;) {
		if (list_grow(ctx, &l) ||
		    rpc_on_shard(ctx, callid_owner(l.callid), callid_shard, &l))
			break;
		if (!l.grow) {
			list_drain(&l.wk, ctx);
			break;
		}
	}
	list_free(&l);
}

static void rpc_dlg_list(struct rpc_ctx *ctx)
{
	rpc_dlg_list_as(ctx, false);
}

static void rpc_dlg_list_ctx(struct rpc_ctx *ctx)
{
	rpc_dlg_list_as(ctx, true);
}

/* Kamailio's keys and operators, and init_ts and state: the numeric keys
 * take gt and lt (state eq too), the others eq, re and sw. */
static int match_params(struct rpc_ctx *ctx, struct list *l)
{
	static const char *const keys[] = {"ruri",   "furi",     "turi",
	                                   "callid", "start_ts", "init_ts",
	                                   "state"};
	const unsigned nkeys = sizeof(keys) / sizeof(keys[0]);
	static const char *const ops[] = {"eq", "re", "sw", "gt", "lt"};
	const char *key, *op;
	long long limit = 0;
	unsigned i;

	if (rpc_param_str(ctx, 0, "key", &key) ||
	    rpc_param_str(ctx, 1, "op", &op) ||
	    rpc_param_str(ctx, 2, "value", &l->mval) ||
	    rpc_param_opt_int(ctx, 3, "limit", &limit))
		return -1;
	for (i = 0; i < nkeys && strcmp(key, keys[i]) != 0; i++)
		;
	if (i == nkeys) {
		rpc_fault(ctx, 400, "Invalid matching key parameter");
		return -1;
	}
	l->key = (enum match_key)(KEY_RURI + i);
	for (i = 0; i < 5 && strcmp(op, ops[i]) != 0; i++)
		;
	if (i == 5) {
		rpc_fault(ctx, 400, "Invalid matching operator parameter");
		return -1;
	}
	l->op = (enum match_op)i;
	bool numeric = l->key >= KEY_TS;
	bool numeric_op = l->op == OP_GT || l->op == OP_LT ||
	                  (l->op == OP_EQ && l->key == KEY_STATE);
	if (numeric != numeric_op) {
		rpc_fault(ctx, 400,
		          "Matching operator %s not supported with "
		          "key %s",
		          op, key);
		return -1;
	}
	if (limit < 0) {
		rpc_fault(ctx, 400, "limit must not be negative");
		return -1;
	}
	if (limit > 0)
		l->room = (size_t)limit;
	l->mlen = strlen(l->mval);
	if (numeric) {
		char *end;
		errno = 0;
		l->mnum = strtoll(l->mval, &end, 10);
		if (errno || end == l->mval || *end) {
			rpc_fault(ctx, 400, "Invalid matching value parameter");
			return -1;
		}
	} else if (l->op == OP_RE &&
	           regcomp(&l->re, l->mval,
	                   REG_EXTENDED | REG_ICASE | REG_NEWLINE |
	                           REG_NOSUB) != 0) {
		rpc_fault(ctx, 400, "Invalid matching value parameter");
		return -1;
	}
	return 0;
}

static void rpc_list_match_as(struct rpc_ctx *ctx, bool with_ctx)
{
	struct list l;

	list_init(&l, SHAPE_DLG);
	l.with_ctx = with_ctx;
	if (match_params(ctx, &l))
		return;
	if (list_run(ctx, &l) == 0 && l.found == 0)
		rpc_fault(ctx, 404, "Not found");
	if (l.key != KEY_TS && l.op == OP_RE)
		regfree(&l.re);
}

static void rpc_list_match(struct rpc_ctx *ctx)
{
	rpc_list_match_as(ctx, false);
}

static void rpc_list_match_ctx(struct rpc_ctx *ctx)
{
	rpc_list_match_as(ctx, true);
}

static void rpc_profile_list(struct rpc_ctx *ctx)
{
	struct list l;

	list_init(&l, SHAPE_DLG);
	if (rpc_param_str(ctx, 0, "profile", &l.prof_name) ||
	    rpc_param_opt_str(ctx, 1, "value", &l.prof_value))
		return;
	/* No value, or an empty one: every member (profile_is_member). */
	list_run(ctx, &l);
}

static void rpc_briefing(struct rpc_ctx *ctx)
{
	struct list l;

	list_init(&l, SHAPE_BRIEF);
	l.fmt = "ftcFT";
	if (rpc_param_opt_str(ctx, 0, "fmt", &l.fmt))
		return;
	list_run(ctx, &l);
}

static void rpc_dlg2_list(struct rpc_ctx *ctx)
{
	struct list l;
	struct rpc_node *o;

	list_init(&l, SHAPE_IMS);
	o = rpc_add_object(ctx, NULL, NULL);
	l.arr = rpc_add_array(ctx, o, "Dialogs");
	if (list_run(ctx, &l) == 0)
		rpc_add_int(ctx, o, "Size", l.hash_size);
}

/* ------------------------------------------------- acting on a dialog */

enum act {
	ACT_END,     /* terminate both sides */
	ACT_ALIVE,   /* only report the state */
	ACT_TIMEOUT, /* re-arm the lifetime */
	ACT_FORGET,  /* end without BYEs (set_state 5) */
};

struct act_arg {
	enum act act;
	unsigned owner;
	/* by id (end_dlg, set_timeout) or by tags (the others) */
	bool by_id;
	uint32_t h_entry, h_id;
	const char *callid, *from_tag, *to_tag;
	const char *reason;
	const char *hdrs; /* normalised extra headers, or NULL */
	unsigned seconds;
	/* results */
	bool found;
	enum dlg_state state;
	int rc;
};

static void act_shard(struct worker *w, void *arg)
{
	struct act_arg *a = arg;
	struct dlg_shard *ds = dlg_rpc_shard(w);
	struct dlg *d;

	if (ds == NULL)
		return;
	if (a->by_id)
		d = dlg_lookup_id(ds, a->h_entry, a->h_id);
	else
		d = dlg_lookup_tags(ds, slice_cstr(a->callid),
		                    slice_cstr(a->from_tag),
		                    slice_cstr(a->to_tag));
	/* An ended record only lingers for late requests: gone to users. */
	if (d == NULL || d->state == DLG_STATE_DELETED)
		return;
	a->found = true;
	a->state = d->state;
	if (a->act == ACT_END)
		a->rc = dlg_terminate_hdrs(d, a->reason, a->hdrs);
	else if (a->act == ACT_TIMEOUT)
		a->rc = dlg_set_lifetime(d, a->seconds);
	else if (a->act == ACT_FORGET)
		a->rc = dlg_forget(d);
}

/* Runs a on its shard and sets the common faults; true when the dialog
 * was found and the action did not fail. */
static bool act(struct rpc_ctx *ctx, struct act_arg *a)
{
	if (rpc_on_shard(ctx, a->owner, act_shard, a))
		return false;
	if (!a->found) {
		rpc_fault(ctx, 404, "Dialog not found");
		return false;
	}
	if (a->act == ACT_END && a->rc < 0) {
		rpc_fault(ctx, 500, "Failed to terminate the dialog");
		return false;
	}
	if (a->act == ACT_TIMEOUT && a->rc < 0) {
		rpc_fault(ctx, 500, "Dialog is being terminated");
		return false;
	}
	return true;
}

/*
 * The extra headers of end_dlg / terminate_dlg as CRLF-terminated lines
 * (into *out, malloc'd; NULL when there are none): lines may end with LF
 * or CRLF or not at all, blank lines are dropped (one would end the
 * header section of the BYE), and each line must look like "Name: value"
 * without other control characters. Faults 400 and returns -1 otherwise.
 */
static int extra_hdrs(struct rpc_ctx *ctx, const char *in, char **out)
{
	size_t len = in ? strlen(in) : 0;
	char *buf, *o;

	*out = NULL;
	if (len == 0)
		return 0;
	/* Each LF may become CRLF, plus a final CRLF and the NUL. */
	o = buf = malloc(2 * len + 3);
	if (buf == NULL) {
		rpc_fault(ctx, 500, "Out of memory");
		return -1;
	}
	for (const char *p = in; *p;) {
		const char *eol = strchr(p, '\n');
		const char *end = eol ? eol : p + strlen(p);
		size_t n = (size_t)(end - p);
		bool colon = false;

		if (n && p[n - 1] == '\r')
			n--;
		for (size_t i = 0; i < n; i++) {
			unsigned char c = (unsigned char)p[i];
			if ((c < 0x20 && c != '\t') || c == 0x7f ||
			    (c == ':' && i == 0))
				goto bad;
			colon = colon || c == ':';
		}
		if (n && !colon)
			goto bad;
		if (n) {
			memcpy(o, p, n);
			o += n;
			*o++ = '\r';
			*o++ = '\n';
		}
		p = eol ? eol + 1 : end;
	}
	*o = '\0';
	if (o == buf)
		free(buf);
	else
		*out = buf;
	return 0;
bad:
	free(buf);
	rpc_fault(ctx, 400, "Invalid extra headers");
	return -1;
}

/* h_entry and h_id: an id that cannot exist is simply not found. */
static int id_params(struct rpc_ctx *ctx, struct act_arg *a)
{
	long long h_entry, h_id;

	if (rpc_param_int(ctx, 0, "h_entry", &h_entry) ||
	    rpc_param_int(ctx, 1, "h_id", &h_id))
		return -1;
	a->by_id = true;
	if (h_entry < 0 || h_entry > UINT32_MAX || h_id < 0 ||
	    h_id > UINT32_MAX) {
		/* Nothing matches: an id no worker can hold. */
		a->h_entry = UINT32_MAX;
		a->h_id = 0;
	} else {
		a->h_entry = (uint32_t)h_entry;
		a->h_id = (uint32_t)h_id;
	}
	a->owner = id_owner(a->h_id);
	return 0;
}

/* Kamailio's end_dlg (and ims_dialog's dlg2.end_dlg): both sides, reason
 * "mi_terminated". */
static void rpc_end_dlg(struct rpc_ctx *ctx)
{
	struct act_arg a = {.act = ACT_END, .reason = "mi_terminated"};
	const char *hdrs = NULL;
	char *norm;

	if (id_params(ctx, &a) ||
	    rpc_param_opt_str(ctx, 2, "extra_hdrs", &hdrs) ||
	    extra_hdrs(ctx, hdrs, &norm))
		return;
	a.hdrs = norm;
	act(ctx, &a);
	free(norm);
}

static int tags_params(struct rpc_ctx *ctx, struct act_arg *a)
{
	if (rpc_param_str(ctx, 0, "callid", &a->callid) ||
	    rpc_param_str(ctx, 1, "from_tag", &a->from_tag) ||
	    rpc_param_str(ctx, 2, "to_tag", &a->to_tag))
		return -1;
	a->owner = callid_owner(a->callid);
	return 0;
}

static void rpc_terminate_dlg(struct rpc_ctx *ctx)
{
	struct act_arg a = {.act = ACT_END, .reason = "mi_terminated"};
	const char *hdrs = NULL;
	char *norm;

	if (tags_params(ctx, &a) ||
	    rpc_param_opt_str(ctx, 3, "extra_hdrs", &hdrs) ||
	    rpc_param_opt_str(ctx, 4, "reason", &a.reason) ||
	    extra_hdrs(ctx, hdrs, &norm))
		return;
	a.hdrs = norm;
	act(ctx, &a);
	free(norm);
}

static void rpc_is_alive(struct rpc_ctx *ctx)
{
	struct act_arg a = {.act = ACT_ALIVE};

	if (tags_params(ctx, &a) || !act(ctx, &a))
		return;
	if (a.state != DLG_STATE_CONFIRMED) {
		rpc_fault(ctx, 500, "Dialog not in confirmed state");
		return;
	}
	rpc_add_str(ctx, NULL, NULL, "Alive");
}

/* Largest lifetime accepted: the modparams' bound. */
#define TIMEOUT_MAX (1LL << 30)

static void rpc_set_timeout(struct rpc_ctx *ctx)
{
	struct act_arg a = {.act = ACT_TIMEOUT};
	long long seconds;

	if (id_params(ctx, &a) || rpc_param_int(ctx, 2, "seconds", &seconds))
		return;
	if (seconds <= 0 || seconds > TIMEOUT_MAX) {
		rpc_fault(ctx, 400, "seconds must be between 1 and %lld",
		          TIMEOUT_MAX);
		return;
	}
	a.seconds = (unsigned)seconds;
	act(ctx, &a);
}

/*
 * dlg.set_state callid from_tag to_tag [state]: Kamailio forces any state
 * 1-5 without callbacks, which leaves counters and transactions that
 * disagree with it. Here only 5 (the default) is taken: the call is ended
 * without BYEs, as the counters and profiles see it (dlg_forget()).
 */
static void rpc_set_state(struct rpc_ctx *ctx)
{
	struct act_arg a = {.act = ACT_FORGET};
	long long state = DLG_STATE_DELETED;

	if (tags_params(ctx, &a) || rpc_param_opt_int(ctx, 3, "state", &state))
		return;
	if (state != DLG_STATE_DELETED) {
		rpc_fault(ctx, 400,
		          "Only state 5 (ended, without BYEs) can be set");
		return;
	}
	if (act(ctx, &a))
		rpc_add_str(ctx, NULL, NULL, "Done");
}

/* dlg.bridge_dlg from to [op [body]]: dlg_bridge() (dlg.h). op "." is
 * none; body absent or "." is the hold offer, "_" or "" none. */
static void rpc_bridge_dlg(struct rpc_ctx *ctx)
{
	const char *from, *to, *op = ".", *body = ".";
	struct slice b, *bp = &b;

	if (rpc_param_str(ctx, 0, "from", &from) ||
	    rpc_param_str(ctx, 1, "to", &to) ||
	    rpc_param_opt_str(ctx, 2, "op", &op) ||
	    rpc_param_opt_str(ctx, 3, "body", &body))
		return;
	if (rpc_nshards == 0) {
		rpc_fault(ctx, 500, "No worker");
		return;
	}
	if (strcmp(body, ".") == 0)
		bp = NULL;
	else
		b = strcmp(body, "_") == 0 ? SLICE_NULL : slice_cstr(body);
	if (dlg_bridge(rpc_rt(ctx), rpc_nshards, rpc_shards[0]->cfg,
	               slice_cstr(from), slice_cstr(to),
	               strcmp(op, ".") == 0 ? SLICE_NULL : slice_cstr(op),
	               bp) < 0) {
		rpc_fault(ctx, 400,
		          "Invalid parameters: from and to URIs (from "
		          "a SIP URI), op a SIP URI or \".\"");
		return;
	}
	rpc_add_str(ctx, NULL, NULL, "Bridging");
}

/* dlg.dump_file FILE: every dialog appended to FILE, one line of compact
 * JSON each (dlg.list's object), written chunk by chunk as the walk
 * brings them; replies {file, dialogs}. */
static void dump_drain(struct walk *wk, struct rpc_ctx *ctx)
{
	struct list *l = (struct list *)wk;

	list_drain(wk, ctx);
	if (!rpc_failed(ctx) && rpc_write_lines(l->arr, l->dump) != 0) {
		rpc_fault(ctx, 500, "Cannot write %s: %s", l->dump_name,
		          strerror(errno));
		wk->stop = true;
	}
}

static void rpc_dump_file(struct rpc_ctx *ctx)
{
	const char *name;
	struct list l;
	int rc;

	if (rpc_param_str(ctx, 0, "file", &name))
		return;
	if (*name == '\0') {
		rpc_fault(ctx, 400, "Empty file name");
		return;
	}
	list_init(&l, SHAPE_DLG);
	l.dump_name = name;
	l.dump = fopen(name, "a");
	if (l.dump == NULL) {
		rpc_fault(ctx, 500, "Cannot open %s: %s", name,
		          strerror(errno));
		return;
	}
	l.arr = rpc_scratch_array(ctx);
	l.wk.drain = dump_drain;
	rc = l.arr ? list_run(ctx, &l) : -1;
	if (fclose(l.dump) != 0 && rc == 0) {
		rpc_fault(ctx, 500, "Cannot write %s: %s", name,
		          strerror(errno));
		rc = -1;
	}
	if (rc == 0) {
		rpc_add_str(ctx, NULL, "file", name);
		rpc_add_int(ctx, NULL, "dialogs", (long long)l.found);
	}
}

/* dlg2.end_all_active_dlg: ids gathered by the walk, ended at the end of
 * the same job (so that nothing ended changes the chain being walked).
 * Ending one costs up to two BYEs (~0.1 ms each): 16 a job. */
#define END_CHUNK 16

struct end_all {
	struct walk wk; /* first */
	uint32_t ids[END_CHUNK][2];
	unsigned n;
	long long ended;
};

static enum visit end_all_visit(struct walk *wk, struct dlg *d,
                                struct worker *w)
{
	struct end_all *e = (struct end_all *)wk;

	(void)w;
	if (d->state != DLG_STATE_DELETED && !d->terminating &&
	    e->n < END_CHUNK) {
		e->ids[e->n][0] = d->h_entry;
		e->ids[e->n][1] = d->h_id;
		e->n++;
	}
	return VISIT_NEXT;
}

static void end_all_job_end(struct walk *wk, struct dlg_shard *ds,
                            struct worker *w)
{
	struct end_all *e = (struct end_all *)wk;

	(void)w;
	for (unsigned i = 0; i < e->n; i++) {
		struct dlg *d = dlg_lookup_id(ds, e->ids[i][0], e->ids[i][1]);
		if (d && dlg_terminate_hdrs(d, "mi_terminated", NULL) > 0)
			e->ended++;
	}
	e->n = 0;
}

/* Jobs a worker may have queued before the next chunk of BYEs goes, and
 * the longest wait for it to get there (per chunk). */
#define END_QUEUE_MAX 32
#define END_WAIT_MS   1000

/* Management thread, between two chunks: the replies to the BYEs just
 * sent land in the worker's queue (or socket). Sending more before it has
 * taken them would flood it: calls would wait, and the next chunk would
 * miss the shard timeout after part of the calls were ended. */
static void end_all_drain(struct walk *wk, struct rpc_ctx *ctx)
{
	struct rt *rt = rpc_rt(ctx);
	struct worker *w = rt ? rt_worker(rt, wk->shard) : NULL;

	if (w == NULL || wk->shard_done)
		return;
	usleep(1000);
	for (int i = 0; i < END_WAIT_MS && worker_queue_len(w) > END_QUEUE_MAX;
	     i++)
		usleep(1000);
}

static void rpc_end_all_active(struct rpc_ctx *ctx)
{
	struct end_all e = {0};

	e.wk.visit = end_all_visit;
	e.wk.job_end = end_all_job_end;
	e.wk.drain = end_all_drain;
	e.wk.chunk = END_CHUNK;
	if (walk_run(ctx, &e.wk) == 0)
		rpc_add_int(ctx, NULL, "terminated", e.ended);
}

/* ------------------------------------------------------------ profiles */

struct size_arg {
	const char *name, *value;
	bool found;
	size_t size;
};

/* On the first worker only: the registry is the workers' (freed after
 * they stop; a worker that has stopped runs nothing). Sizes are global,
 * so one worker answers for all. */
static void size_shard(struct worker *w, void *arg)
{
	struct size_arg *a = arg;
	struct dlg_shard *ds = dlg_rpc_shard(w);
	const struct profile *p;

	if (ds == NULL || ds->cfg->profiles == NULL)
		return;
	p = profile_find(ds->cfg->profiles, slice_cstr(a->name));
	if (p == NULL)
		return;
	a->found = true;
	a->size = profile_size(p, a->value ? slice_cstr(a->value) : SLICE_NULL);
}

static void rpc_profile_get_size(struct rpc_ctx *ctx)
{
	struct size_arg a = {0};

	if (rpc_param_str(ctx, 0, "profile", &a.name) ||
	    rpc_param_opt_str(ctx, 1, "value", &a.value) ||
	    rpc_on_shard(ctx, 0, size_shard, &a))
		return;
	if (!a.found) {
		rpc_fault(ctx, 404, "Profile not found: %s", a.name);
		return;
	}
	rpc_add_int(ctx, NULL, NULL, (long long)a.size);
}

/* --------------------------------------------------------------- stats */

struct active_count {
	struct walk wk; /* first */
	long long by_state[DLG_STATE_DELETED + 1];
};

static enum visit active_visit(struct walk *wk, struct dlg *d, struct worker *w)
{
	struct active_count *ac = (struct active_count *)wk;

	(void)w;
	if (d->state >= DLG_STATE_UNCONFIRMED && d->state <= DLG_STATE_DELETED)
		ac->by_state[d->state]++;
	return VISIT_NEXT;
}

static void rpc_stats_active(struct rpc_ctx *ctx)
{
	struct active_count ac = {0};

	ac.wk.visit = active_visit;
	if (walk_run(ctx, &ac.wk))
		return;
	rpc_add_int(ctx, NULL, "starting", ac.by_state[DLG_STATE_UNCONFIRMED]);
	rpc_add_int(ctx, NULL, "connecting", ac.by_state[DLG_STATE_EARLY]);
	rpc_add_int(ctx, NULL, "answering",
	            ac.by_state[DLG_STATE_CONFIRMED_NA]);
	rpc_add_int(ctx, NULL, "ongoing", ac.by_state[DLG_STATE_CONFIRMED]);
	rpc_add_int(ctx, NULL, "all",
	            ac.by_state[1] + ac.by_state[2] + ac.by_state[3] +
	                    ac.by_state[4]);
}

/*
 * dlg.ages (not in Kamailio): per state, how many dialogs and how old, to
 * find calls stuck in one (what-users-need A). The age is on the state's
 * own clock: since creation for 1 and 2, since the answer for 3 and 4,
 * since the end for 5 (the linger).
 */
static const unsigned age_bounds[] = {10, 60, 600, 3600, 43200};
static const char *const age_names[] = {"under_10s", "under_1m",  "under_10m",
                                        "under_1h",  "under_12h", "older"};
#define AGE_BUCKETS (sizeof(age_names) / sizeof(age_names[0]))

struct age_count {
	struct walk wk; /* first */
	time_t now;
	struct {
		long long dialogs, oldest;
		long long buckets[AGE_BUCKETS];
	} st[DLG_STATE_DELETED + 1];
};

static enum visit age_visit(struct walk *wk, struct dlg *d, struct worker *w)
{
	struct age_count *ac = (struct age_count *)wk;
	time_t since = d->state <= DLG_STATE_EARLY    ? d->init_ts
	               : d->state < DLG_STATE_DELETED ? d->start_ts
	                                              : d->end_ts;
	long long age = since && ac->now > since ? ac->now - since : 0;
	unsigned b = 0;

	(void)w;
	if (d->state < DLG_STATE_UNCONFIRMED || d->state > DLG_STATE_DELETED)
		return VISIT_NEXT;
	while (b < AGE_BUCKETS - 1 && age >= age_bounds[b])
		b++;
	ac->st[d->state].dialogs++;
	ac->st[d->state].buckets[b]++;
	if (age > ac->st[d->state].oldest)
		ac->st[d->state].oldest = age;
	return VISIT_NEXT;
}

static void rpc_ages(struct rpc_ctx *ctx)
{
	struct age_count ac = {.now = time(NULL)};

	ac.wk.visit = age_visit;
	if (walk_run(ctx, &ac.wk))
		return;
	struct rpc_node *arr = rpc_add_array(ctx, NULL, "states");
	for (int s = DLG_STATE_UNCONFIRMED; s <= DLG_STATE_DELETED; s++) {
		struct rpc_node *o = rpc_add_object(ctx, arr, NULL);
		rpc_add_int(ctx, o, "state", s);
		rpc_add_str(ctx, o, "name", dlg_state_name((enum dlg_state)s));
		rpc_add_int(ctx, o, "dialogs", ac.st[s].dialogs);
		rpc_add_int(ctx, o, "oldest", ac.st[s].oldest);
		struct rpc_node *b = rpc_add_object(ctx, o, "ages");
		for (unsigned i = 0; i < AGE_BUCKETS; i++)
			rpc_add_int(ctx, b, age_names[i], ac.st[s].buckets[i]);
	}
}

/* ------------------------------------------------------------ mem.info */

struct shard_mem {
	bool seen;
	long long dialogs, dialog_bytes;
	long long transactions, transaction_bytes, cached_bytes, queue;
};

struct mem_walk {
	struct walk wk; /* first */
	struct shard_mem *shards;
	long long profile_bytes;
};

static enum visit mem_visit(struct walk *wk, struct dlg *d, struct worker *w)
{
	struct mem_walk *m = (struct mem_walk *)wk;
	struct shard_mem *s = &m->shards[worker_id(w)];

	s->dialogs++;
	s->dialog_bytes += (long long)dlg_mem_bytes(d);
	return VISIT_NEXT;
}

static void mem_job_end(struct walk *wk, struct dlg_shard *ds, struct worker *w)
{
	struct mem_walk *m = (struct mem_walk *)wk;
	struct shard_mem *s = &m->shards[worker_id(w)];

	if (!wk->shard_done)
		return;
	/* Sampled when the shard's walk ends. */
	s->seen = true;
	s->transactions = (long long)tm_shard_active(ds->tm);
	s->transaction_bytes = (long long)tm_shard_bytes(ds->tm);
	s->cached_bytes = (long long)mem_cached_bytes(); /* the worker's */
	s->queue = (long long)worker_queue_len(w);
	if (ds->cfg->profiles)
		m->profile_bytes = (long long)profile_bytes(ds->cfg->profiles);
}

static void rpc_mem_info(struct rpc_ctx *ctx)
{
	struct mem_walk m = {0};
	struct shard_mem sum = {0};
	struct rpc_node *a;

	m.shards = calloc(rpc_nshards ? rpc_nshards : 1, sizeof(*m.shards));
	if (m.shards == NULL) {
		rpc_fault(ctx, 500, "Out of memory");
		return;
	}
	m.wk.visit = mem_visit;
	m.wk.job_end = mem_job_end;
	if (walk_run(ctx, &m.wk))
		goto out;
	for (unsigned i = 0; i < rpc_nshards; i++) {
		sum.dialogs += m.shards[i].dialogs;
		sum.dialog_bytes += m.shards[i].dialog_bytes;
		sum.transactions += m.shards[i].transactions;
		sum.transaction_bytes += m.shards[i].transaction_bytes;
		sum.cached_bytes += m.shards[i].cached_bytes;
	}
	rpc_add_int(ctx, NULL, "dialogs", sum.dialogs);
	rpc_add_int(ctx, NULL, "dialog_bytes", sum.dialog_bytes);
	rpc_add_int(ctx, NULL, "dialog_bytes_avg",
	            sum.dialogs ? sum.dialog_bytes / sum.dialogs : 0);
	rpc_add_int(ctx, NULL, "profile_bytes", m.profile_bytes);
	rpc_add_int(ctx, NULL, "transactions", sum.transactions);
	rpc_add_int(ctx, NULL, "transaction_bytes", sum.transaction_bytes);
	rpc_add_int(ctx, NULL, "cached_bytes", sum.cached_bytes);
	a = rpc_add_array(ctx, NULL, "shards");
	for (unsigned i = 0; i < rpc_nshards; i++) {
		const struct shard_mem *s = &m.shards[i];
		struct rpc_node *o = rpc_add_object(ctx, a, NULL);
		rpc_add_int(ctx, o, "shard", i);
		rpc_add_bool(ctx, o, "running", s->seen);
		rpc_add_int(ctx, o, "dialogs", s->dialogs);
		rpc_add_int(ctx, o, "dialog_bytes", s->dialog_bytes);
		rpc_add_int(ctx, o, "transactions", s->transactions);
		rpc_add_int(ctx, o, "transaction_bytes", s->transaction_bytes);
		rpc_add_int(ctx, o, "cached_bytes", s->cached_bytes);
		rpc_add_int(ctx, o, "queue", s->queue);
	}
out:
	free(m.shards);
}

/* ------------------------------------------------------------ register */

static const struct rpc_method dlg_rpc[] = {
        {"dlg.list", rpc_list, "Lists every dialog: dlg.list [offset [limit]]"},
        {"dlg.list_ctx", rpc_list_ctx,
         "Lists every dialog with its context: dlg.list_ctx [offset "
         "[limit]]"},
        {"dlg.dlg_list", rpc_dlg_list,
         "Lists the dialogs of a call: dlg.dlg_list callid [from_tag]"},
        {"dlg.dlg_list_ctx", rpc_dlg_list_ctx,
         "Lists the dialogs of a call with their context: dlg.dlg_list_ctx "
         "callid [from_tag]"},
        {"dlg.list_match", rpc_list_match,
         "Lists matching dialogs: dlg.list_match "
         "ruri|furi|turi|callid|start_ts|init_ts|state eq|re|sw|gt|lt value "
         "[limit]"},
        {"dlg.list_match_ctx", rpc_list_match_ctx,
         "Lists matching dialogs with their context: dlg.list_match_ctx "
         "key op value [limit]"},
        {"dlg.profile_list", rpc_profile_list,
         "Lists the dialogs of a profile: dlg.profile_list profile [value]"},
        {"dlg.briefing", rpc_briefing,
         "Lists every dialog briefly: dlg.briefing [fmt of ftcFTISEs, "
         "default ftcFT]"},
        {"dlg.end_dlg", rpc_end_dlg,
         "Ends a dialog: dlg.end_dlg h_entry h_id [extra_hdrs]"},
        {"dlg.terminate_dlg", rpc_terminate_dlg,
         "Ends a dialog: dlg.terminate_dlg callid from_tag to_tag "
         "[extra_hdrs [reason]]"},
        {"dlg.is_alive", rpc_is_alive,
         "Whether a dialog is confirmed: dlg.is_alive callid from_tag "
         "to_tag"},
        {"dlg.set_state", rpc_set_state,
         "Ends a dialog without BYEs: dlg.set_state callid from_tag to_tag "
         "[5]"},
        {"dlg.bridge_dlg", rpc_bridge_dlg,
         "Calls from and refers it to to: dlg.bridge_dlg from to [op "
         "[body]]"},
        {"dlg.dump_file", rpc_dump_file,
         "Appends every dialog to a file, a line of JSON each: "
         "dlg.dump_file file"},
        {"dlg.set_timeout", rpc_set_timeout,
         "Re-arms a dialog's lifetime from now: dlg.set_timeout h_entry "
         "h_id seconds"},
        {"dlg.profile_get_size", rpc_profile_get_size,
         "Members of a profile: dlg.profile_get_size profile [value]"},
        {"dlg.stats_active", rpc_stats_active, "Dialogs by state, counted now"},
        {"dlg.ages", rpc_ages,
         "Dialogs per state with their ages: {states: [{state, name, "
         "dialogs, oldest, ages}]}"},
        {"dlg2.list", rpc_dlg2_list,
         "Lists every dialog, ims_dialog's shape: {Size, Dialogs}"},
        {"dlg2.end_dlg", rpc_end_dlg,
         "Ends a dialog: dlg2.end_dlg h_entry h_id [extra_hdrs]"},
        {"dlg2.end_all_active_dlg", rpc_end_all_active,
         "Ends every dialog not ended yet: {terminated: count}"},
        {"mem.info", rpc_mem_info,
         "Bytes held by dialogs and transactions, and freed blocks cached, "
         "in total and per worker"},
};

int dlg_register_rpc(struct dlg_shard *const *shards, unsigned n)
{
	rpc_shards = shards;
	rpc_nshards = n;
	int rc = rpc_register(dlg_rpc, sizeof(dlg_rpc) / sizeof(dlg_rpc[0]));

	return rc ? rc : dlg_register_stats_rpc();
}
