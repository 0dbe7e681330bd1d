/*
 * The dialog engine: creation, per-branch legs, the state machine driven by
 * relayed replies and in-dialog requests, timeouts, and termination.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlg/dlg_int.h"

const char *dlg_state_name(enum dlg_state s)
{
	switch (s) {
	case DLG_STATE_UNCONFIRMED:
		return "Unconfirmed";
	case DLG_STATE_EARLY:
		return "Early";
	case DLG_STATE_CONFIRMED_NA:
		return "Confirmed Not Acknowledged";
	case DLG_STATE_CONFIRMED:
		return "Confirmed";
	default:
		return "Deleted";
	}
}

void dlg_config_defaults(struct dlg_config *c)
{
	memset(c, 0, sizeof(*c));
	c->hash_size = 4096;
	strcpy(c->rr_param, "did");
	c->dlg_flag = -1;
	c->default_timeout = 43200;
	c->detect_spirals = true;
	c->early_timeout = 300;
	c->noack_timeout = 60;
	c->end_timeout = 5;
	c->early_terminate_code = 488;
}

/* ------------------------------------------------------------ ids */

unsigned dlg_core_hash(const char *s, size_t len)
{
	const unsigned char *p = (const unsigned char *)s, *end = p + len;
	unsigned v, h = 0;

	for (; p + 4 <= end; p += 4) {
		v = (unsigned)p[0] << 24 | (unsigned)p[1] << 16 |
		    (unsigned)p[2] << 8 | p[3];
		h += v ^ (v >> 3);
	}
	v = 0;
	for (; p < end; p++)
		v = v << 8 | *p;
	h += v ^ (v >> 3);
	return h + (h >> 11) + (h >> 13) + (h >> 23);
}

static size_t revhex(char *dst, uint32_t v)
{
	static const char hex[] = "0123456789abcdef";
	size_t n = 0;

	do {
		dst[n++] = hex[v & 0xf];
		v >>= 4;
	} while (v);
	return n;
}

size_t dlg_did_print(char *dst, uint32_t h_entry, uint32_t h_id)
{
	size_t n = revhex(dst, h_entry);

	dst[n++] = '.';
	n += revhex(dst + n, h_id);
	dst[n] = '\0';
	return n;
}

static bool revhex_parse(uint32_t *out, const char *p, const char *end)
{
	uint32_t v = 0;
	unsigned shift = 0;

	if (end - p > 8)
		return false;
	for (; p < end; p++, shift += 4) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if ((*p | 0x20) >= 'a' && (*p | 0x20) <= 'f')
			d = (*p | 0x20) - 'a' + 10;
		else
			return false;
		v |= (uint32_t)d << shift;
	}
	*out = v;
	return true;
}

bool dlg_did_parse(uint32_t *h_entry, uint32_t *h_id, struct slice v)
{
	const char *dot = memchr(v.p, '.', v.len);

	if (dot == NULL)
		return false;
	return revhex_parse(h_entry, v.p, dot) &&
	       revhex_parse(h_id, dot + 1, v.p + v.len);
}

/* ----------------------------------------------------------- table */

struct dlg_shard *dlg_shard_new(const struct dlg_config *cfg,
                                struct tm_shard *tm, unsigned shard_id,
                                unsigned nshards)
{
	struct dlg_shard *ds = calloc(1, sizeof(*ds));

	if (ds == NULL)
		return NULL;
	ds->cfg = cfg;
	ds->tm = tm;
	ds->shard_id = shard_id;
	ds->nshards = nshards ? nshards : 1;
	ds->slots = calloc(cfg->hash_size, sizeof(*ds->slots));
	ds->next_id = calloc(cfg->hash_size, sizeof(*ds->next_id));
	if (ds->slots == NULL || ds->next_id == NULL) {
		dlg_shard_free(ds);
		return NULL;
	}
	tm_shard_set_data(tm, ds);
	return ds;
}

static void dlg_free(struct dlg *d);

void dlg_shard_free(struct dlg_shard *ds)
{
	if (ds == NULL)
		return;
	/* Transactions that outlive their dialogs (freed next by tm) must
	 * not reach back into them. */
	tm_shard_set_data(ds->tm, NULL);
	for (unsigned i = 0; ds->slots && i < ds->cfg->hash_size; i++) {
		while (ds->slots[i]) {
			struct dlg *d = ds->slots[i];
			ds->slots[i] = d->hnext;
			dlg_free(d);
		}
	}
	free(ds->slots);
	free(ds->next_id);
	free(ds);
}

const struct dlg_stats *dlg_shard_stats(const struct dlg_shard *ds)
{
	return &ds->stats;
}

size_t dlg_shard_count(const struct dlg_shard *ds)
{
	return ds->count;
}

struct dlg_shard *dlg_shard_of(struct tm_ctx *ctx)
{
	return tm_shard_data(ctx->sh);
}

static struct twheel *wheel(struct dlg_shard *ds)
{
	return worker_wheel(tm_shard_worker(ds->tm));
}

static void leg_free(struct dlg_leg *l)
{
	free(l->tag);
	free(l->contact);
	free(l->route_set);
	free(l);
}

static void dlg_free(struct dlg *d)
{
	dlg_run_cbs(d, DLGCB_DESTROY, NULL, NULL, DLG_DIR_NONE);
	dlg_callbacks_free(d);
	dlg_vars_free(d);
	tmr_cancel(wheel(d->ds), &d->timer);
	profile_clear(&d->profiles);
	while (d->legs) {
		struct dlg_leg *l = d->legs;
		d->legs = l->next;
		leg_free(l);
	}
	if (d->inv)
		tm_trans_unref(d->inv);
	free(d->callid);
	free(d->from_uri);
	free(d->from_tag);
	free(d->to_uri);
	free(d->req_uri);
	free(d->caller_contact);
	free(d->caller_route_set);
	free(d->term_reason);
	free(d->term_hdrs);
	d->ds->count--;
	free(d);
}

static void unlink_dlg(struct dlg *d)
{
	struct dlg **pp = &d->ds->slots[d->h_entry];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == d) {
			*pp = d->hnext;
			return;
		}
	}
}

static struct dlg *lookup_id(struct dlg_shard *ds, uint32_t h_entry,
                             uint32_t h_id)
{
	if (h_entry >= ds->cfg->hash_size)
		return NULL;
	for (struct dlg *d = ds->slots[h_entry]; d; d = d->hnext)
		if (d->h_id == h_id)
			return d;
	return NULL;
}

static bool str_eq(const char *s, struct slice v)
{
	return s && strlen(s) == v.len && memcmp(s, v.p, v.len) == 0;
}

static struct dlg_leg *leg_by_tag(struct dlg *d, struct slice tag)
{
	for (struct dlg_leg *l = d->legs; l; l = l->next)
		if (str_eq(l->tag, tag))
			return l;
	return NULL;
}

/*
 * The tight match of §3.5 without the permissive cases: Call-ID equal and
 * the tags equal to the caller's and a live leg's, in one orientation.
 * *downstream tells which.
 */
static bool tags_match(struct dlg *d, struct slice callid, struct slice ftag,
                       struct slice ttag, bool *downstream)
{
	struct dlg_leg *l;

	if (!str_eq(d->callid, callid))
		return false;
	if (str_eq(d->from_tag, ftag)) {
		l = leg_by_tag(d, ttag);
		if (l && l->state != LEG_ENDED) {
			*downstream = true;
			return true;
		}
	}
	if (str_eq(d->from_tag, ttag)) {
		l = leg_by_tag(d, ftag);
		if (l && l->state != LEG_ENDED) {
			*downstream = false;
			return true;
		}
	}
	return false;
}

static struct dlg *lookup_tags(struct dlg_shard *ds, struct slice callid,
                               struct slice ftag, struct slice ttag,
                               bool *downstream)
{
	unsigned h =
	        dlg_core_hash(callid.p, callid.len) & (ds->cfg->hash_size - 1);

	for (struct dlg *d = ds->slots[h]; d; d = d->hnext)
		if (tags_match(d, callid, ftag, ttag, downstream))
			return d;
	return NULL;
}

/* ------------------------------------------------------- strings */

static char *dup_slice(struct slice s)
{
	char *p = malloc(s.len + 1);

	if (p) {
		memcpy(p, s.p ? s.p : "", s.len);
		p[s.len] = '\0';
	}
	return p;
}

static void replace(char **dst, struct slice s)
{
	char *p = dup_slice(s);

	if (p) {
		free(*dst);
		*dst = p;
	}
}

/* e[0..n) comma-joined, in order or reversed; malloc'ed. */
static char *join(const struct slice *e, unsigned n, bool reverse)
{
	size_t len = 0;

	for (unsigned i = 0; i < n; i++)
		len += e[i].len + 2;
	char *out = malloc(len + 1), *p = out;
	if (out == NULL)
		return NULL;
	for (unsigned i = 0; i < n; i++) {
		struct slice s = e[reverse ? n - 1 - i : i];
		if (i) {
			memcpy(p, ", ", 2);
			p += 2;
		}
		memcpy(p, s.p, s.len);
		p += s.len;
	}
	*p = '\0';
	return out;
}

/* The elements of header id, at most 64 of them; returns how many. */
#define MAX_ELEMS 64

static unsigned elems(struct slice e[MAX_ELEMS], struct sip_msg *m,
                      enum sip_hdr_id id)
{
	struct sip_elem_iter it;
	unsigned n = 0;

	sip_elem_iter_init(&it, m, id);
	while (n < MAX_ELEMS && sip_elem_next(&e[n], &it) == 0)
		n++;
	return n;
}

static struct slice first_contact(struct sip_msg *m)
{
	struct sip_elem_iter it;
	struct slice elem;
	struct sip_addr a;
	const char *why;

	sip_elem_iter_init(&it, m, SIP_HDR_CONTACT);
	if (sip_elem_next(&elem, &it) == 0 &&
	    sip_addr_parse(&a, elem, 0, &why) == 0)
		return a.uri;
	return SLICE_NULL;
}

/* ------------------------------------------------------- timers */

static void dlg_timer_fired(struct tmr *t, void *arg);

static void arm(struct dlg *d, unsigned seconds)
{
	tmr_start(wheel(d->ds), &d->timer, (uint64_t)seconds * 1000,
	          dlg_timer_fired, d);
	worker_timers_changed(tm_shard_worker(d->ds->tm));
}

/* The lifetime from the timeout AVP when it holds a positive integer,
 * else default_timeout (§5.1). */
static unsigned lifetime_of(struct dlg_shard *ds, struct tm_ctx *ctx)
{
	struct tm_val v;

	if (ctx && ds->cfg->timeout_avp[0] &&
	    tm_ctx_avp_get(ctx, slice_cstr(ds->cfg->timeout_avp), &v) &&
	    v.is_int && v.i > 0)
		return (unsigned)v.i;
	return ds->cfg->default_timeout;
}

/* -------------------------------------------------- state changes */

/* Entering state 5: counters follow the transition, so they cannot
 * drift; the record lingers end_timeout for late requests (§13 #8). */
static void set_deleted(struct dlg *d, bool failed)
{
	struct dlg_stats *st = &d->ds->stats;

	if (d->state == DLG_STATE_DELETED)
		return;
	if (d->state == DLG_STATE_EARLY)
		st->early--;
	if (d->state == DLG_STATE_CONFIRMED_NA ||
	    d->state == DLG_STATE_CONFIRMED)
		st->active--;
	if (failed)
		st->failed++;
	d->state = DLG_STATE_DELETED;
	/* Memberships leave with the call, not when the record goes. */
	profile_clear(&d->profiles);
	d->end_ts = time(NULL);
	if (d->inv) {
		tm_trans_unref(d->inv);
		d->inv = NULL;
	}
	arm(d, d->ds->cfg->end_timeout);
}

static void set_early(struct dlg *d)
{
	if (d->state != DLG_STATE_UNCONFIRMED)
		return;
	d->state = DLG_STATE_EARLY;
	d->ds->stats.early++;
}

static void set_confirmed_na(struct dlg *d)
{
	if (d->state == DLG_STATE_EARLY)
		d->ds->stats.early--;
	d->state = DLG_STATE_CONFIRMED_NA;
	d->ds->stats.active++;
	d->start_ts = time(NULL);
	/* The ACK re-arms the lifetime; until it comes, noack_timeout. */
	arm(d, d->ds->cfg->noack_timeout < d->lifetime
	               ? d->ds->cfg->noack_timeout
	               : d->lifetime);
}

/* ------------------------------------------------------- creation */

struct dlg_msg_ctx *dlg_msg_ctx(struct tm_ctx *ctx)
{
	if (ctx->dlg_ctx == NULL) {
		struct dlg_msg_ctx *mc = arena_alloc(ctx->arena, sizeof(*mc));
		if (mc == NULL)
			return NULL;
		memset(mc, 0, sizeof(*mc));
		ctx->dlg_ctx = mc;
	}
	return ctx->dlg_ctx;
}

struct dlg *dlg_current(struct tm_ctx *ctx)
{
	struct dlg_msg_ctx *mc = ctx->dlg_ctx;

	if (mc && mc->dlg)
		return mc->dlg;
	if (ctx->t && tm_trans_data(ctx->t))
		return tm_trans_data(ctx->t);
	return NULL;
}

static void add_cookie(struct tm_ctx *ctx, struct dlg *d)
{
	char buf[64];
	int n = snprintf(buf, sizeof(buf), ";%s=", d->ds->cfg->rr_param);

	n += (int)dlg_did_print(buf + n, d->h_entry, d->h_id);
	tm_ctx_add_rr_param(ctx, slice_make(buf, (size_t)n));
}

static struct dlg *spiral_of(struct dlg_shard *ds, struct sip_msg *m)
{
	const struct sip_addr *from;
	struct slice cid;

	if (sip_msg_call_id(&cid, m) || sip_msg_from(&from, m))
		return NULL;
	unsigned h = dlg_core_hash(cid.p, cid.len) & (ds->cfg->hash_size - 1);
	for (struct dlg *d = ds->slots[h]; d; d = d->hnext)
		if (d->state != DLG_STATE_DELETED && str_eq(d->callid, cid) &&
		    str_eq(d->from_tag, from->tag))
			return d;
	return NULL;
}

static struct dlg *create(struct dlg_shard *ds, struct tm_ctx *ctx,
                          struct sip_msg *m)
{
	const struct sip_addr *from, *to;
	const struct sip_cseq *cseq;
	struct slice cid;
	struct dlg *d;

	if (sip_msg_call_id(&cid, m) || sip_msg_from(&from, m) ||
	    sip_msg_to(&to, m) || sip_msg_cseq(&cseq, m) || !from->has_tag)
		return NULL;
	d = calloc(1, sizeof(*d));
	if (d == NULL)
		return NULL;
	d->ds = ds;
	tmr_init(&d->timer);
	profile_set_init(&d->profiles);
	d->callid = dup_slice(cid);
	d->from_uri = dup_slice(from->uri);
	d->from_tag = dup_slice(from->tag);
	d->to_uri = dup_slice(to->uri);
	d->req_uri = dup_slice(tm_ctx_ruri(ctx));
	d->caller_contact = dup_slice(first_contact(m));
	struct slice rr[MAX_ELEMS];
	d->caller_route_set =
	        join(rr, elems(rr, m, SIP_HDR_RECORD_ROUTE), false);
	d->first_cseq = cseq->num;
	d->caller_sock = ctx->rx ? ctx->rx->lst : NULL;
	d->state = DLG_STATE_UNCONFIRMED;
	d->init_ts = time(NULL);
	d->lifetime = lifetime_of(ds, ctx);
	d->h_entry = dlg_core_hash(cid.p, cid.len) & (ds->cfg->hash_size - 1);
	/* Ids tell their shard (h_id % nshards), so a management command
	 * finds the owner without a global table. */
	do {
		ds->next_id[d->h_entry]++;
		d->h_id = ds->next_id[d->h_entry] * ds->nshards + ds->shard_id;
	} while (d->h_id == 0 || lookup_id(ds, d->h_entry, d->h_id));
	d->hnext = ds->slots[d->h_entry];
	ds->slots[d->h_entry] = d;
	ds->count++;
	ds->stats.processed++;
	arm(d, ds->cfg->early_timeout);
	/* After the lifetime is known (§13 #22). */
	dlg_run_cbs(d, DLGCB_CREATED, m, NULL, DLG_DIR_DOWNSTREAM);
	return d;
}

static void attach_pending(struct dlg *d, struct dlg_msg_ctx *mc)
{
	for (unsigned i = 0; i < mc->npending; i++)
		profile_add(&d->profiles, mc->pending[i].p,
		            mc->pending[i].value, d, d->ds->shard_id);
	mc->npending = 0;
}

static void trans_created(struct tm_ctx *ctx, struct tm_trans *t)
{
	struct dlg_shard *ds = tm_shard_data(ctx->sh);
	struct dlg_msg_ctx *mc = ctx->dlg_ctx;
	struct sip_msg *m = ctx->msg;
	const struct sip_addr *to;
	struct dlg *d;

	if (ds == NULL)
		return;
	if (mc && mc->dlg) {
		/* An in-dialog request: its replies may refresh targets. */
		tm_trans_set_data(t, mc->dlg);
		mc->dlg->refs++;
		return;
	}
	if (m->method_id != SIP_METHOD_INVITE || sip_msg_to(&to, m) ||
	    to->has_tag)
		return;
	if (!(mc && mc->manage) &&
	    !(ds->cfg->dlg_flag >= 0 &&
	      tm_ctx_isflagset(ctx, (unsigned)ds->cfg->dlg_flag)))
		return;
	if (ds->cfg->detect_spirals && (d = spiral_of(ds, m)) != NULL) {
		/* §4: the same call coming back: its cookie on this pass's
		 * Record-Route, no second dialog; memberships are a set, so
		 * the second pass cannot inflate a count. */
		add_cookie(ctx, d);
		mc = dlg_msg_ctx(ctx);
		if (mc) {
			mc->dlg = d;
			attach_pending(d, mc);
		}
		dlg_run_cbs(d, DLGCB_SPIRALED, m, NULL, DLG_DIR_DOWNSTREAM);
		return;
	}
	d = create(ds, ctx, m);
	if (d == NULL)
		return;
	if (ds->cfg->match_mode != 2)
		add_cookie(ctx, d);
	d->inv = tm_trans_ref(t);
	d->inv_id = t;
	tm_trans_set_data(t, d);
	d->refs++;
	mc = dlg_msg_ctx(ctx);
	if (mc) {
		mc->dlg = d;
		attach_pending(d, mc);
	}
}

/* ------------------------------------------------------------ legs */

/* The reply's Record-Route minus this proxy's entries and the caller's,
 * reversed: the Route set of requests towards the callee (§6.4). */
static char *callee_route_set(struct sip_msg *rpl, struct tm_shard *sh)
{
	struct slice e[MAX_ELEMS];
	unsigned n = elems(e, rpl, SIP_HDR_RECORD_ROUTE), mine = n;

	for (unsigned i = 0; i < n; i++) {
		struct sip_addr a;
		struct sip_uri u;
		const char *why;
		if (sip_addr_parse(&a, e[i], 0, &why) == 0 &&
		    sip_uri_parse(&u, a.uri, &why) == 0 &&
		    tm_is_myself(sh, &u)) {
			mine = i;
			break;
		}
	}
	/* Not record-routed here: everything is theirs. */
	return join(e, mine, true);
}

static struct dlg_leg *leg_update(struct dlg *d, struct sip_msg *rpl, int b,
                                  struct tm_trans *t, bool final)
{
	const struct sip_addr *to;
	const struct sip_cseq *cseq;
	struct dlg_leg *l;

	if (sip_msg_to(&to, rpl) || !to->has_tag || to->tag.len == 0 ||
	    sip_msg_cseq(&cseq, rpl))
		return NULL;
	l = leg_by_tag(d, to->tag);
	if (l == NULL) {
		l = calloc(1, sizeof(*l));
		if (l == NULL)
			return NULL;
		l->tag = dup_slice(to->tag);
		l->caller_cseq = cseq->num;
		l->branch = b;
		l->sock =
		        b >= 0 ? tm_trans_branch_socket(t, (unsigned)b) : NULL;
		l->next = d->legs;
		d->legs = l;
	}
	/* §13.2.2.4: the 2xx recomputes the remote target and route set;
	 * a provisional sets them for the early dialog. */
	if (final || l->contact == NULL) {
		struct slice c = first_contact(rpl);
		if (c.len)
			replace(&l->contact, c);
		char *rs = callee_route_set(rpl, d->ds->tm);
		if (rs) {
			free(l->route_set);
			l->route_set = rs;
		}
	}
	return l;
}

/* --------------------------------------------------- reply hook */

static bool is_initial(struct dlg *d, struct tm_trans *t)
{
	return d->inv_id == t;
}

static void refresh_target(struct dlg *d, struct sip_msg *req,
                           struct sip_msg *rpl)
{
	const struct sip_addr *from;
	struct slice c = first_contact(rpl);

	if (c.len == 0 || sip_msg_from(&from, req))
		return;
	/* The reply comes from the side the request went to. */
	if (str_eq(d->from_tag, from->tag)) {
		const struct sip_addr *to;
		struct dlg_leg *l;
		if (sip_msg_to(&to, req) == 0 &&
		    (l = leg_by_tag(d, to->tag)) != NULL)
			replace(&l->contact, c);
	} else {
		replace(&d->caller_contact, c);
	}
}

static void reply_out(struct tm_trans *t, struct sip_msg *rpl, unsigned code,
                      int b)
{
	struct dlg *d = tm_trans_data(t);
	struct dlg_leg *l;

	if (d == NULL)
		return;
	struct sip_msg *req = tm_trans_request(t);
	if (!is_initial(d, t)) {
		const struct sip_addr *from;
		if (rpl && code >= 200 && code < 300 &&
		    (req->method_id == SIP_METHOD_INVITE ||
		     req->method_id == SIP_METHOD_UPDATE))
			refresh_target(d, req, rpl);
		/* The reply travels opposite to its request. */
		if (rpl && code < 300 && sip_msg_from(&from, req) == 0)
			dlg_run_cbs(d, DLGCB_RESPONSE_WITHIN, req, rpl,
			            str_eq(d->from_tag, from->tag)
			                    ? DLG_DIR_UPSTREAM
			                    : DLG_DIR_DOWNSTREAM);
		return;
	}
	if (rpl && code < 300)
		dlg_run_cbs(d, DLGCB_RESPONSE_FWDED, req, rpl,
		            DLG_DIR_UPSTREAM);
	if (code < 200) {
		if (rpl && leg_update(d, rpl, b, t, false)) {
			set_early(d);
			dlg_run_cbs(d, DLGCB_EARLY, req, rpl, DLG_DIR_UPSTREAM);
		}
		return;
	}
	if (code < 300) {
		l = rpl ? leg_update(d, rpl, b, t, true) : NULL;
		if (l)
			l->state = LEG_CONFIRMED;
		if (d->state <= DLG_STATE_EARLY) {
			/* The other branches are being cancelled: their early
			 * legs end here; a later 2xx of theirs revives them as
			 * extra confirmed legs. */
			for (struct dlg_leg *o = d->legs; o; o = o->next)
				if (o != l && o->state == LEG_EARLY)
					o->state = LEG_ENDED;
			set_confirmed_na(d);
			dlg_run_cbs(d, DLGCB_CONFIRMED_NA, req, rpl,
			            DLG_DIR_UPSTREAM);
		}
		return;
	}
	if (d->state <= DLG_STATE_EARLY) {
		set_deleted(d, true);
		dlg_run_cbs(d, DLGCB_FAILED, req, rpl, DLG_DIR_UPSTREAM);
	}
}

static void canceled(struct tm_trans *t)
{
	struct dlg *d = tm_trans_data(t);

	if (d && is_initial(d, t))
		d->canceled = true;
}

static void trans_destroyed(struct tm_trans *t)
{
	struct dlg *d = tm_trans_data(t);

	if (d && tm_shard_data(tm_trans_shard(t)) && d->refs)
		d->refs--;
}

const struct tm_hooks dlg_tm_hooks = {
        .trans_created = trans_created,
        .reply_out = reply_out,
        .canceled = canceled,
        .trans_destroyed = trans_destroyed,
};

/* ----------------------------------------------- in-dialog requests */

static void note_cseq(struct dlg *d, struct sip_msg *m, bool downstream)
{
	const struct sip_cseq *cseq;
	const struct sip_addr *from, *to;
	struct dlg_leg *l;

	if (sip_msg_cseq(&cseq, m) || sip_msg_from(&from, m) ||
	    sip_msg_to(&to, m))
		return;
	l = leg_by_tag(d, downstream ? to->tag : from->tag);
	if (l == NULL)
		return;
	if (downstream && cseq->num > l->caller_cseq)
		l->caller_cseq = cseq->num;
	if (!downstream && cseq->num > l->callee_cseq)
		l->callee_cseq = cseq->num;
}

/* A target refresh request (re-INVITE, UPDATE: RFC 3261 §12.2.2, RFC 3311)
 * carries its sender's new Contact. */
static void refresh_sender(struct dlg *d, struct sip_msg *m, bool downstream)
{
	const struct sip_addr *from;
	struct slice c = first_contact(m);
	struct dlg_leg *l;

	if (c.len == 0)
		return;
	if (downstream) {
		replace(&d->caller_contact, c);
	} else if (sip_msg_from(&from, m) == 0 &&
	           (l = leg_by_tag(d, from->tag)) != NULL) {
		replace(&l->contact, c);
	}
}

/* A BYE ends the leg it was sent on; true when other confirmed legs
 * remain. */
static bool end_leg(struct dlg *d, struct sip_msg *m, bool downstream)
{
	const struct sip_addr *from, *to;
	struct dlg_leg *l;
	bool others = false;

	if (sip_msg_from(&from, m) || sip_msg_to(&to, m))
		return false;
	l = leg_by_tag(d, downstream ? to->tag : from->tag);
	if (l)
		l->state = LEG_ENDED;
	for (struct dlg_leg *o = d->legs; o; o = o->next)
		others |= o->state == LEG_CONFIRMED;
	return others;
}

static void in_dialog(struct tm_ctx *ctx, struct dlg *d, bool downstream)
{
	struct sip_msg *m = ctx->req;
	struct dlg_msg_ctx *mc = dlg_msg_ctx(ctx);

	if (mc == NULL)
		return;
	mc->dlg = d;
	mc->downstream = downstream;
	if (m->method_id != SIP_METHOD_ACK)
		note_cseq(d, m, downstream);
	if (m->method_id == SIP_METHOD_INVITE ||
	    m->method_id == SIP_METHOD_UPDATE)
		refresh_sender(d, m, downstream);

	int dir = downstream ? DLG_DIR_DOWNSTREAM : DLG_DIR_UPSTREAM;
	switch (m->method_id) {
	case SIP_METHOD_ACK:
		if (d->state == DLG_STATE_CONFIRMED_NA) {
			d->state = DLG_STATE_CONFIRMED;
			arm(d, d->lifetime);
			dlg_run_cbs(d, DLGCB_CONFIRMED, m, NULL, dir);
		} else if (d->state == DLG_STATE_CONFIRMED) {
			arm(d, d->lifetime);
			dlg_run_cbs(d, DLGCB_REQ_WITHIN, m, NULL, dir);
		}
		break;
	case SIP_METHOD_BYE:
		if (d->state == DLG_STATE_EARLY ||
		    d->state == DLG_STATE_UNCONFIRMED) {
			/* §13 #11: a BYE while ringing ends the call; the
			 * pending branches are cancelled by the final reply. */
			if (d->inv)
				tm_trans_reply(d->inv, 487,
				               SLICE_LIT("Request Terminated"),
				               SLICE_NULL);
		}
		if (d->state >= DLG_STATE_CONFIRMED_NA &&
		    end_leg(d, m, downstream)) {
			/* Another confirmed leg (a second 2xx) lives on: the
			 * call ends with its last leg. */
			dlg_run_cbs(d, DLGCB_REQ_WITHIN, m, NULL, dir);
			break;
		}
		set_deleted(d, d->state <= DLG_STATE_EARLY);
		dlg_run_cbs(d, DLGCB_TERMINATED, m, NULL, dir);
		break;
	case SIP_METHOD_PRACK:
		break;
	default:
		if (d->state == DLG_STATE_CONFIRMED) {
			unsigned lt = lifetime_of(d->ds, ctx);
			if (lt != d->ds->cfg->default_timeout)
				d->lifetime = lt;
			arm(d, d->lifetime);
		}
		dlg_run_cbs(d, DLGCB_REQ_WITHIN, m, NULL, dir);
		break;
	}
	mc->status_after = d->state;
}

void dlg_rr_callback(struct tm_ctx *ctx, struct slice params, void *arg)
{
	struct dlg_shard *ds = tm_shard_data(ctx->sh);
	const struct sip_addr *from, *to;
	struct slice did, cid;
	uint32_t he, hi;
	bool down;
	struct dlg *d = NULL;

	(void)arg;
	if (ds == NULL || ctx->req == NULL || sip_msg_to(&to, ctx->req) ||
	    !to->has_tag || sip_msg_from(&from, ctx->req) ||
	    sip_msg_call_id(&cid, ctx->req))
		return;
	if (ds->cfg->match_mode != 2 &&
	    sip_param_find(&did, params, ds->cfg->rr_param)) {
		if (!dlg_did_parse(&he, &hi, did))
			return; /* malformed: no fallback, even in mode 1 */
		d = lookup_id(ds, he, hi);
		if (d && !tags_match(d, cid, from->tag, to->tag, &down))
			d = NULL;
	}
	if (d == NULL && ds->cfg->match_mode != 0)
		d = lookup_tags(ds, cid, from->tag, to->tag, &down);
	if (d == NULL || d->state == DLG_STATE_DELETED)
		return;
	in_dialog(ctx, d, down);
}

/* -------------------------------------------------------- termination */

/* A BYE of ours towards one side of leg l (RFC 3261 §12.2.1.1 built from
 * the stored dialog state). */
static int send_bye(struct dlg *d, struct dlg_leg *l, bool to_caller);

/* A generated BYE got its final reply (or timed out): the dialog record
 * may go once nothing refers to it. */
static void bye_done(void *arg, unsigned code, struct sip_msg *rpl)
{
	struct dlg *d = arg;

	(void)code;
	if (!d->bye_answered) {
		/* The first final reply to one of our BYEs (§9.2). */
		d->bye_answered = true;
		dlg_run_cbs(d, DLGCB_TERMINATED_CONFIRMED, NULL, rpl,
		            DLG_DIR_NONE);
	}
	if (d->refs)
		d->refs--;
}

static void end_after_byes(struct dlg *d)
{
	/* "Terminating" is decided now (§13 #20): callbacks and counters
	 * see it at once; the record waits for the BYE replies. */
	set_deleted(d, false);
	dlg_run_cbs(d, DLGCB_TERMINATED, NULL, NULL, DLG_DIR_NONE);
}

static int send_bye(struct dlg *d, struct dlg_leg *l, bool to_caller)
{
	char buf[4096];
	struct sip_buf b;
	const char *target = to_caller ? d->caller_contact : l->contact;
	const char *routes = to_caller ? d->caller_route_set : l->route_set;
	uint32_t cseq = to_caller ? l->callee_cseq + 1 : l->caller_cseq + 1;

	if (target == NULL || *target == '\0')
		return EINVAL;
	sip_buf_init(&b, buf, sizeof(buf));
	sip_buf_addf(&b, "BYE %s SIP/2.0\r\n", target);
	if (routes && *routes)
		sip_buf_addf(&b, "Route: %s\r\n", routes);
	if (to_caller) {
		sip_buf_addf(&b, "From: <%s>;tag=%s\r\nTo: <%s>;tag=%s\r\n",
		             d->to_uri, l->tag, d->from_uri, d->from_tag);
		l->callee_cseq = cseq;
	} else {
		sip_buf_addf(&b, "From: <%s>;tag=%s\r\nTo: <%s>;tag=%s\r\n",
		             d->from_uri, d->from_tag, d->to_uri, l->tag);
		l->caller_cseq = cseq;
	}
	sip_buf_addf(&b, "Call-ID: %s\r\nCSeq: %u BYE\r\nMax-Forwards: 70\r\n",
	             d->callid, cseq);
	if (d->ds->cfg->extra_hdrs)
		sip_buf_adds(&b, d->ds->cfg->extra_hdrs);
	if (d->term_hdrs)
		sip_buf_adds(&b, d->term_hdrs);
	if (d->term_reason)
		sip_buf_addf(&b, "Reason: SIP;cause=200;text=\"%s\"\r\n",
		             d->term_reason);
	sip_buf_adds(&b, "Content-Length: 0\r\n\r\n");
	if (b.overflow)
		return ENOSPC;
	int err =
	        tm_uac_request(d->ds->tm, slice_make(b.p, b.len), bye_done, d);
	if (err == 0)
		d->refs++;
	return err;
}

enum dlg_side {
	SIDE_CALLER = 1,
	SIDE_CALLEE = 2,
	SIDE_BOTH = 3,
};

static int parse_side(const char *side)
{
	if (strcmp(side, "caller") == 0)
		return SIDE_CALLER;
	if (strcmp(side, "callee") == 0)
		return SIDE_CALLEE;
	if (strcmp(side, "both") == 0 || strcmp(side, "all") == 0)
		return SIDE_BOTH;
	return 0;
}

/* The engine behind dlg_terminate, timeouts and (later) RPC. */
static int terminate(struct dlg *d, int side, struct slice reason)
{
	int sent = 0;

	if (d->state == DLG_STATE_DELETED)
		return -1;
	if (reason.len) {
		free(d->term_reason);
		d->term_reason = dup_slice(reason);
	}
	if (d->state <= DLG_STATE_EARLY) {
		/* Not answered: the caller gets the configured final reply
		 * and every pending branch a CANCEL saying why. */
		char line[256];
		unsigned code = d->ds->cfg->early_terminate_code;
		int n = snprintf(line, sizeof(line),
		                 "Reason: SIP;cause=%u;text=\"%.*s\"\r\n", code,
		                 (int)(reason.len < 128 ? reason.len : 128),
		                 reason.p ? reason.p : "");
		if (d->inv == NULL ||
		    tm_trans_reply(d->inv, code,
		                   reason.len ? reason
		                              : SLICE_LIT("Call Terminated"),
		                   slice_make(line, (size_t)n)))
			return -1;
		return 1;
	}
	for (struct dlg_leg *l = d->legs; l; l = l->next) {
		if (l->state != LEG_CONFIRMED)
			continue;
		if ((side & SIDE_CALLER) && !l->bye_caller) {
			l->bye_caller = true;
			if (send_bye(d, l, true) == 0)
				sent++;
		}
		if ((side & SIDE_CALLEE) && !l->bye_callee) {
			l->bye_callee = true;
			if (send_bye(d, l, false) == 0)
				sent++;
		}
	}
	if (sent == 0)
		return -1;
	end_after_byes(d);
	return 1;
}

static void dlg_timer_fired(struct tmr *t, void *arg)
{
	struct dlg *d = arg;
	struct dlg_shard *ds = d->ds;

	(void)t;
	switch (d->state) {
	case DLG_STATE_UNCONFIRMED:
	case DLG_STATE_EARLY:
		/* early_timeout: CANCEL down, 408 up. */
		if (d->inv)
			tm_trans_reply(d->inv, 408,
			               SLICE_LIT("Request Timeout"),
			               SLICE_NULL);
		if (d->state != DLG_STATE_DELETED) {
			set_deleted(d, true);
			dlg_run_cbs(d, DLGCB_FAILED, NULL, NULL, DLG_DIR_NONE);
		}
		break;
	case DLG_STATE_CONFIRMED_NA:
	case DLG_STATE_CONFIRMED:
		ds->stats.expired++;
		dlg_run_cbs(d, DLGCB_EXPIRED, NULL, NULL, DLG_DIR_NONE);
		if (terminate(d, SIDE_BOTH, SLICE_LIT("dialog_timeout")) < 0)
			set_deleted(d, false);
		break;
	default:
		/* end_timeout: the lingering record goes, once no
		 * transaction or generated BYE still points to it. */
		if (d->refs) {
			arm(d, 1);
			break;
		}
		unlink_dlg(d);
		dlg_free(d);
		break;
	}
}

/* ------------------------------------------------- script functions */

int dlg_manage(struct tm_ctx *ctx)
{
	struct dlg_msg_ctx *mc = dlg_msg_ctx(ctx);

	if (mc == NULL || ctx->route != TM_ROUTE_REQUEST)
		return -1;
	if (ctx->t) {
		/* The transaction exists already: create now. */
		mc->manage = true;
		trans_created(ctx, ctx->t);
		return mc->dlg ? 1 : -1;
	}
	mc->manage = true;
	return 1;
}

int dlg_terminate_ctx(struct tm_ctx *ctx, const char *side, struct slice reason)
{
	struct dlg *d = dlg_current(ctx);
	int s = parse_side(side);

	if (d == NULL || s == 0)
		return -1;
	return terminate(d, s, reason);
}

int dlg_set_timeout_ctx(struct tm_ctx *ctx, unsigned seconds)
{
	struct dlg *d = dlg_current(ctx);

	return d ? dlg_set_lifetime(d, seconds) : -1;
}

int dlg_is_known(struct tm_ctx *ctx)
{
	return dlg_current(ctx) ? 1 : -1;
}

/* ------------------------------------------------------- public C API */

int dlg_terminate(struct dlg *d, const char *side, const char *reason)
{
	int s = parse_side(side ? side : "all");

	if (d == NULL || s == 0)
		return -1;
	return terminate(d, s, reason ? slice_cstr(reason) : SLICE_NULL);
}

struct dlg *get_current_dialog(struct tm_ctx *ctx)
{
	return dlg_current(ctx);
}

/* ------------------------------------------------ for rpc.c (dlg_int.h) */

struct dlg *dlg_lookup_id(struct dlg_shard *ds, uint32_t h_entry, uint32_t h_id)
{
	return lookup_id(ds, h_entry, h_id);
}

struct dlg *dlg_lookup_tags(struct dlg_shard *ds, struct slice callid,
                            struct slice ftag, struct slice ttag)
{
	bool downstream;

	return lookup_tags(ds, callid, ftag, ttag, &downstream);
}

int dlg_set_lifetime(struct dlg *d, unsigned seconds)
{
	if (seconds == 0 || d->state == DLG_STATE_DELETED)
		return -1;
	d->lifetime = seconds;
	if (d->state >= DLG_STATE_CONFIRMED_NA)
		arm(d, seconds);
	return 1;
}

int dlg_terminate_hdrs(struct dlg *d, const char *reason, const char *hdrs)
{
	if (d == NULL || d->state == DLG_STATE_DELETED)
		return -1;
	if (hdrs && *hdrs) {
		free(d->term_hdrs);
		d->term_hdrs = strdup(hdrs);
	}
	return terminate(d, SIDE_BOTH,
	                 reason ? slice_cstr(reason) : SLICE_NULL);
}
