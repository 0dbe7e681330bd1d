/*
 * The dialog RPC methods (dlg.*), with Kamailio's names and reply shapes
 * (ims-dialog-behaviour.md §11.2, docs/rpc.md).
 *
 * Dialogs belong to their worker: a handler sends a short function to the
 * workers (rpc_for_each_shard) that copies what it needs into a buffer the
 * handler owns, and builds the reply from the copies on the management
 * thread. No dialog pointer outlives the function that found it.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlg/dlg_int.h"
#include "mgmt/mgmt.h"

/* Most dialogs one dlg.list call copies: keeps each worker's share of the
 * work short; more are paged with offset. */
#define LIST_MAX 1000

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

static char *dup_or_empty(const char *s)
{
	return strdup(s ? s : "");
}

/* ------------------------------------------------------ dialog copies */

struct leg_copy {
	char *tag, *contact, *route_set, *socket;
	uint32_t caller_cseq, callee_cseq;
	enum leg_state state;
};

struct prof_copy {
	char *name, *value; /* value NULL: a profile without values */
};

struct dlg_copy {
	uint32_t h_entry, h_id;
	unsigned ref;
	enum dlg_state state;
	char *callid, *from_uri, *to_uri, *from_tag;
	char *caller_contact, *caller_route_set, *caller_socket;
	time_t init_ts, start_ts, end_ts, timeout;
	unsigned lifetime;
	uint32_t sflags;
	struct leg_copy *legs;
	size_t nlegs;
	struct prof_copy *profs;
	size_t nprofs;
};

/* What a listing collects over the shards. */
struct collect {
	/* dlg.list: dialogs still to skip, and room left */
	size_t skip, room;
	/* dlg.dlg_list: only this Call-ID (and caller tag), in one shard */
	const char *callid, *from_tag;
	unsigned owner;
	struct dlg_copy *v;
	size_t n, cap;
	bool nomem;
};

static void copy_free(struct dlg_copy *c)
{
	for (size_t i = 0; i < c->nlegs; i++) {
		free(c->legs[i].tag);
		free(c->legs[i].contact);
		free(c->legs[i].route_set);
		free(c->legs[i].socket);
	}
	free(c->legs);
	for (size_t i = 0; i < c->nprofs; i++) {
		free(c->profs[i].name);
		free(c->profs[i].value);
	}
	free(c->profs);
	free(c->callid);
	free(c->from_uri);
	free(c->to_uri);
	free(c->from_tag);
	free(c->caller_contact);
	free(c->caller_route_set);
	free(c->caller_socket);
}

static void collect_free(struct collect *col)
{
	for (size_t i = 0; i < col->n; i++)
		copy_free(&col->v[i]);
	free(col->v);
}

static const char *sock_name(const struct net_listener *l)
{
	return l ? l->name : "";
}

/* Copies d into c (worker thread); false when out of memory, c then
 * holds what was copied (freed by copy_free). */
static bool copy_dlg(struct dlg_copy *c, struct dlg *d, struct worker *w)
{
	size_t i;

	memset(c, 0, sizeof(*c));
	c->h_entry = d->h_entry;
	c->h_id = d->h_id;
	c->ref = d->refs + 1;
	c->state = d->state;
	c->init_ts = d->init_ts;
	c->start_ts = d->start_ts;
	c->end_ts = d->end_ts;
	c->lifetime = d->lifetime;
	c->sflags = d->sflags;
	/* The wheel counts worker milliseconds: the expiry as UNIX time
	 * is now plus what remains. An ended dialog's timer only removes
	 * the record: not a call timeout. */
	if (d->state != DLG_STATE_DELETED && tmr_pending(&d->timer)) {
		uint64_t now = worker_now(w);
		uint64_t left =
		        d->timer.expires > now ? d->timer.expires - now : 0;
		c->timeout = time(NULL) + (time_t)((left + 999) / 1000);
	}
	c->callid = dup_or_empty(d->callid);
	c->from_uri = dup_or_empty(d->from_uri);
	c->to_uri = dup_or_empty(d->to_uri);
	c->from_tag = dup_or_empty(d->from_tag);
	c->caller_contact = dup_or_empty(d->caller_contact);
	c->caller_route_set = dup_or_empty(d->caller_route_set);
	c->caller_socket = dup_or_empty(sock_name(d->caller_sock));
	if (!c->callid || !c->from_uri || !c->to_uri || !c->from_tag ||
	    !c->caller_contact || !c->caller_route_set || !c->caller_socket)
		return false;

	for (struct dlg_leg *l = d->legs; l; l = l->next)
		c->nlegs++;
	if (c->nlegs && !(c->legs = calloc(c->nlegs, sizeof(*c->legs)))) {
		c->nlegs = 0;
		return false;
	}
	i = 0;
	for (struct dlg_leg *l = d->legs; l; l = l->next, i++) {
		struct leg_copy *lc = &c->legs[i];
		lc->tag = dup_or_empty(l->tag);
		lc->contact = dup_or_empty(l->contact);
		lc->route_set = dup_or_empty(l->route_set);
		lc->socket = dup_or_empty(sock_name(l->sock));
		lc->caller_cseq = l->caller_cseq;
		lc->callee_cseq = l->callee_cseq;
		lc->state = l->state;
		if (!lc->tag || !lc->contact || !lc->route_set || !lc->socket)
			return false;
	}

	c->nprofs = profile_set_count(&d->profiles);
	if (c->nprofs && !(c->profs = calloc(c->nprofs, sizeof(*c->profs)))) {
		c->nprofs = 0;
		return false;
	}
	i = 0;
	for (const struct profile_member *m =
	             profile_set_next(&d->profiles, NULL);
	     m && i < c->nprofs; m = profile_set_next(&d->profiles, m), i++) {
		const struct profile *p = profile_member_profile(m);
		c->profs[i].name = strdup(profile_name(p));
		if (c->profs[i].name == NULL)
			return false;
		if (profile_has_value(p)) {
			struct slice v = profile_member_value(m);
			c->profs[i].value = strndup(v.p ? v.p : "", v.len);
			if (c->profs[i].value == NULL)
				return false;
		}
	}
	return true;
}

static void collect_one(struct collect *col, struct dlg *d, struct worker *w)
{
	if (col->nomem)
		return;
	if (col->n == col->cap) {
		size_t cap = col->cap ? col->cap * 2 : 16;
		struct dlg_copy *v = realloc(col->v, cap * sizeof(*v));
		if (v == NULL) {
			col->nomem = true;
			return;
		}
		col->v = v;
		col->cap = cap;
	}
	if (!copy_dlg(&col->v[col->n], d, w))
		col->nomem = true;
	col->n++; /* a partial copy is freed with the others */
}

static void list_shard(struct worker *w, void *arg)
{
	struct collect *col = arg;
	struct dlg_shard *ds = dlg_rpc_shard(w);

	if (ds == NULL)
		return;
	for (unsigned i = 0; i < ds->cfg->hash_size && col->room; i++) {
		for (struct dlg *d = ds->slots[i]; d && col->room;
		     d = d->hnext) {
			if (col->skip) {
				col->skip--;
				continue;
			}
			collect_one(col, d, w);
			col->room--;
		}
	}
}

static void callid_shard(struct worker *w, void *arg)
{
	struct collect *col = arg;
	struct dlg_shard *ds = dlg_rpc_shard(w);
	size_t len = strlen(col->callid);

	if (ds == NULL || worker_id(w) != col->owner)
		return;
	unsigned h = dlg_core_hash(col->callid, len) & (ds->cfg->hash_size - 1);
	for (struct dlg *d = ds->slots[h]; d; d = d->hnext) {
		if (!d->callid || strcmp(d->callid, col->callid) != 0)
			continue;
		if (col->from_tag &&
		    (!d->from_tag || strcmp(d->from_tag, col->from_tag) != 0))
			continue;
		collect_one(col, d, w);
	}
}

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

static void add_dlg(struct rpc_ctx *ctx, struct rpc_node *arr,
                    const struct dlg_copy *c)
{
	struct rpc_node *o = rpc_add_object(ctx, arr, NULL);
	time_t now = time(NULL);
	long long duration = 0;
	const struct leg_copy *callee = NULL;

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
	if (c->start_ts && c->end_ts)
		duration = (long long)(c->end_ts - c->start_ts);
	else if (c->start_ts)
		duration = (long long)(now - c->start_ts);
	rpc_add_int(ctx, o, "duration", duration < 0 ? 0 : duration);
	rpc_add_int(ctx, o, "timeout", (long long)c->timeout);
	rpc_add_int(ctx, o, "lifetime", c->lifetime);
	rpc_add_int(ctx, o, "dflags", 0);
	rpc_add_int(ctx, o, "sflags", c->sflags);
	rpc_add_int(ctx, o, "iflags", 0);

	/* The callee is the confirmed leg, else the first one. */
	for (size_t i = 0; i < c->nlegs && !callee; i++)
		if (c->legs[i].state == LEG_CONFIRMED)
			callee = &c->legs[i];
	if (!callee && c->nlegs)
		callee = &c->legs[0];

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

	struct rpc_node *a = rpc_add_array(ctx, o, "profiles");
	for (size_t i = 0; i < c->nprofs; i++) {
		if (c->profs[i].value == NULL) {
			rpc_add_str(ctx, a, NULL, c->profs[i].name);
		} else {
			p = rpc_add_object(ctx, a, NULL);
			rpc_add_str(ctx, p, c->profs[i].name,
			            c->profs[i].value);
		}
	}
	/* Dialog variables have no iterator outside callbacks.c yet. */
	rpc_add_array(ctx, o, "variables");

	a = rpc_add_array(ctx, o, "legs");
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

static void reply_list(struct rpc_ctx *ctx, struct collect *col)
{
	if (col->nomem) {
		rpc_fault(ctx, 500, "Out of memory");
		return;
	}
	struct rpc_node *arr = rpc_add_array(ctx, NULL, NULL);
	for (size_t i = 0; i < col->n; i++)
		add_dlg(ctx, arr, &col->v[i]);
}

static void rpc_list(struct rpc_ctx *ctx)
{
	long long offset = 0, limit = LIST_MAX;
	struct collect col = {0};

	if (rpc_param_opt_int(ctx, 0, "offset", &offset) ||
	    rpc_param_opt_int(ctx, 1, "limit", &limit))
		return;
	if (offset < 0 || limit < 0) {
		rpc_fault(ctx, 400, "offset and limit must not be negative");
		return;
	}
	col.skip = (size_t)offset;
	col.room = limit > LIST_MAX ? LIST_MAX : (size_t)limit;
	if (rpc_for_each_shard(ctx, list_shard, &col) == 0)
		reply_list(ctx, &col);
	collect_free(&col);
}

static void rpc_dlg_list(struct rpc_ctx *ctx)
{
	struct collect col = {0};

	if (rpc_param_str(ctx, 0, "callid", &col.callid) ||
	    rpc_param_opt_str(ctx, 1, "from_tag", &col.from_tag))
		return;
	col.owner = callid_owner(col.callid);
	if (rpc_for_each_shard(ctx, callid_shard, &col) == 0)
		reply_list(ctx, &col);
	collect_free(&col);
}

/* ------------------------------------------------- acting on a dialog */

enum act {
	ACT_END,   /* terminate both sides */
	ACT_ALIVE, /* only report the state */
};

struct act_arg {
	enum act act;
	unsigned owner;
	/* by id (end_dlg) or by tags (the others) */
	bool by_id;
	uint32_t h_entry, h_id;
	const char *callid, *from_tag, *to_tag;
	const char *reason;
	const char *hdrs; /* normalised extra headers, or NULL */
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

	if (ds == NULL || worker_id(w) != a->owner)
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
}

/* Runs a on its shard and sets the common faults; true when the dialog
 * was found and the action did not fail. */
static bool act(struct rpc_ctx *ctx, struct act_arg *a)
{
	if (rpc_for_each_shard(ctx, act_shard, a))
		return false;
	if (!a->found) {
		rpc_fault(ctx, 404, "Dialog not found");
		return false;
	}
	if (a->act == ACT_END && a->rc < 0) {
		rpc_fault(ctx, 500, "Failed to terminate the dialog");
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

/* Kamailio's end_dlg: both sides, reason "mi_terminated". */
static void rpc_end_dlg(struct rpc_ctx *ctx)
{
	struct act_arg a = {.act = ACT_END, .by_id = true};
	long long h_entry, h_id;
	const char *hdrs = NULL;
	char *norm;

	if (rpc_param_int(ctx, 0, "h_entry", &h_entry) ||
	    rpc_param_int(ctx, 1, "h_id", &h_id) ||
	    rpc_param_opt_str(ctx, 2, "extra_hdrs", &hdrs))
		return;
	if (h_entry < 0 || h_entry > UINT32_MAX || h_id < 0 ||
	    h_id > UINT32_MAX) {
		rpc_fault(ctx, 404, "Dialog not found");
		return;
	}
	if (extra_hdrs(ctx, hdrs, &norm))
		return;
	a.h_entry = (uint32_t)h_entry;
	a.h_id = (uint32_t)h_id;
	/* The id tells its shard (h_id % nshards, dlg.c create()). */
	a.owner = rpc_nshards ? a.h_id % rpc_nshards : 0;
	a.reason = "mi_terminated";
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

/* ------------------------------------------------------------ profiles */

struct size_arg {
	const char *name, *value;
	bool found;
	size_t size;
};

/* On the first worker only: the shards (and through them the registry)
 * are the workers'; a worker that has stopped runs nothing. Sizes are
 * global, so one worker answers for all. */
static void size_shard(struct worker *w, void *arg)
{
	struct size_arg *a = arg;
	struct dlg_shard *ds = dlg_rpc_shard(w);
	const struct profile *p;

	if (ds == NULL || worker_id(w) != 0 || ds->cfg->profiles == NULL)
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
	    rpc_for_each_shard(ctx, size_shard, &a))
		return;
	if (!a.found) {
		rpc_fault(ctx, 404, "Profile not found: %s", a.name);
		return;
	}
	rpc_add_int(ctx, NULL, NULL, (long long)a.size);
}

/* --------------------------------------------------------------- stats */

struct active_count {
	long long by_state[DLG_STATE_DELETED + 1];
};

static void active_shard(struct worker *w, void *arg)
{
	struct active_count *ac = arg;
	struct dlg_shard *ds = dlg_rpc_shard(w);

	if (ds == NULL)
		return;
	for (unsigned i = 0; i < ds->cfg->hash_size; i++)
		for (struct dlg *d = ds->slots[i]; d; d = d->hnext)
			if (d->state >= DLG_STATE_UNCONFIRMED &&
			    d->state <= DLG_STATE_DELETED)
				ac->by_state[d->state]++;
}

static void rpc_stats_active(struct rpc_ctx *ctx)
{
	struct active_count ac = {{0}};

	if (rpc_for_each_shard(ctx, active_shard, &ac))
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

/* ------------------------------------------------------------ register */

static const struct rpc_method dlg_rpc[] = {
        {"dlg.list", rpc_list,
         "Lists dialogs: dlg.list [offset [limit]] (at most 1000 a call)"},
        {"dlg.dlg_list", rpc_dlg_list,
         "Lists the dialogs of a call: dlg.dlg_list callid [from_tag]"},
        {"dlg.end_dlg", rpc_end_dlg,
         "Ends a dialog: dlg.end_dlg h_entry h_id [extra_hdrs]"},
        {"dlg.terminate_dlg", rpc_terminate_dlg,
         "Ends a dialog: dlg.terminate_dlg callid from_tag to_tag "
         "[extra_hdrs [reason]]"},
        {"dlg.is_alive", rpc_is_alive,
         "Whether a dialog is confirmed: dlg.is_alive callid from_tag "
         "to_tag"},
        {"dlg.profile_get_size", rpc_profile_get_size,
         "Members of a profile: dlg.profile_get_size profile [value]"},
        {"dlg.stats_active", rpc_stats_active, "Dialogs by state, counted now"},
};

int dlg_register_rpc(struct dlg_shard *const *shards, unsigned n)
{
	rpc_shards = shards;
	rpc_nshards = n;
	int rc = rpc_register(dlg_rpc, sizeof(dlg_rpc) / sizeof(dlg_rpc[0]));

	return rc ? rc : dlg_register_stats_rpc();
}
