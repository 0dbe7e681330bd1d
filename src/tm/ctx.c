/*
 * Message intake and the routing context: what happens to a message before
 * and while the script routes it, and the script-level operations with
 * Kamailio's return conventions.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "tm/tm_int.h"

void tm_ctx_init(struct tm_ctx *ctx, struct tm_shard *sh, enum tm_route_type rt,
                 struct sip_msg *msg, const struct net_rx *rx,
                 struct tm_trans *t)
{
	memset(ctx, 0, sizeof(*ctx));
	ctx->sh = sh;
	ctx->route = rt;
	ctx->msg = msg;
	ctx->req = msg->is_request ? msg : (t ? t->req : NULL);
	ctx->rx = rx;
	ctx->t = t;
	ctx->arena = &sh->arena;
	if (t)
		ctx->edits = &t->ed;
}

void tm_run_route(struct tm_shard *sh, struct tm_ctx *ctx,
                  enum tm_route_type rt, const char *fn)
{
	if (sh->script.run)
		sh->script.run(sh->script.script, ctx, rt, fn);
}

/* Kamailio's faked message of event routes without one. */
static const char faked_request[] =
        "OPTIONS sip:you@127.0.0.1 SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 127.0.0.1;branch=z9hG4bKevent\r\n"
        "From: <sip:you@127.0.0.1>;tag=123\r\n"
        "To: <sip:you@127.0.0.1>\r\n"
        "Call-ID: 123\r\n"
        "CSeq: 1 OPTIONS\r\n"
        "Content-Length: 0\r\n\r\n";

void tm_run_event(struct tm_shard *sh, const char *fn, const char *event,
                  struct sip_msg *msg, void *dlg_ctx)
{
	struct tm_ctx ctx;

	if (msg == NULL) {
		if (!sh->faked_ready &&
		    sip_msg_parse(&sh->faked, faked_request,
		                  sizeof(faked_request) - 1, &sh->cfg->limits))
			return;
		sh->faked_ready = true;
		msg = &sh->faked;
	}
	tm_ctx_init(&ctx, sh, TM_ROUTE_EVENT, msg, NULL, NULL);
	ctx.dlg_ctx = dlg_ctx;
	ctx.event = event;
	tm_run_route(sh, &ctx, TM_ROUTE_EVENT, fn);
}

/* Strings of the edits live with the transaction once there is one, in
 * the per-message arena before. */
static struct arena *edits_arena(struct tm_ctx *ctx)
{
	return ctx->t ? &ctx->t->arena : ctx->arena;
}

static struct slice keep(struct arena *a, struct slice s)
{
	if (s.len == 0)
		return SLICE_NULL;
	char *p = arena_strdup(a, s);

	return p ? slice_make(p, s.len) : SLICE_NULL;
}

/* The request edits of a context without a transaction yet. */
static struct tm_req_edits *edits(struct tm_ctx *ctx)
{
	if (ctx->edits == NULL) {
		ctx->edits = arena_alloc(ctx->arena, sizeof(*ctx->edits));
		if (ctx->edits)
			memset(ctx->edits, 0, sizeof(*ctx->edits));
	}
	return ctx->edits;
}

int tm_edits_adopt(struct tm_trans *t, const struct tm_req_edits *src)
{
	struct tm_req_edits *e = &t->ed;
	struct arena *a = &t->arena;

	*e = *src;
	e->ruri = keep(a, src->ruri);
	e->duri = keep(a, src->duri);
	e->reply_hdrs = keep(a, src->reply_hdrs);
	e->rr_params = keep(a, src->rr_params);
	for (unsigned i = 0; i < src->n_append; i++)
		e->hdr_append[i] = keep(a, src->hdr_append[i]);
	for (unsigned i = 0; i < src->n_remove; i++)
		e->hdr_remove[i] = keep(a, src->hdr_remove[i]);
	for (unsigned i = 0; i < src->nbranches; i++)
		e->branches[i] = keep(a, src->branches[i]);
	for (unsigned i = 0; i < TM_HOOK__COUNT; i++)
		e->hooks[i] = keep(a, src->hooks[i]);
	e->avps = NULL;
	for (const struct tm_avp *v = src->avps; v; v = v->next) {
		struct tm_avp *c = arena_alloc(a, sizeof(*c));
		if (c == NULL)
			return ENOMEM;
		*c = *v;
		c->name = keep(a, v->name);
		if (!v->v.is_int)
			c->v.s = keep(a, v->v.s);
		c->next = e->avps;
		e->avps = c;
	}
	return 0;
}

/* --------------------------------------------------- request changes */

struct slice tm_ctx_ruri(struct tm_ctx *ctx)
{
	struct tm_req_edits *e = ctx->edits;

	if (e && e->ruri.len)
		return e->ruri;
	return ctx->req ? ctx->req->ruri : SLICE_NULL;
}

int tm_ctx_set_ruri(struct tm_ctx *ctx, struct slice uri)
{
	struct tm_req_edits *e = edits(ctx);
	struct sip_uri u;
	const char *why;

	if (e == NULL || sip_uri_parse(&u, uri, &why))
		return EINVAL;
	e->ruri = keep(edits_arena(ctx), uri);
	return e->ruri.p ? 0 : ENOMEM;
}

struct slice tm_ctx_duri(struct tm_ctx *ctx)
{
	return ctx->edits ? ctx->edits->duri : SLICE_NULL;
}

int tm_ctx_set_duri(struct tm_ctx *ctx, struct slice uri)
{
	struct tm_req_edits *e = edits(ctx);
	struct sip_uri u;
	const char *why;

	if (e == NULL)
		return ENOMEM;
	if (uri.len == 0) {
		e->duri = SLICE_NULL;
		return 0;
	}
	if (sip_uri_parse(&u, uri, &why))
		return EINVAL;
	e->duri = keep(edits_arena(ctx), uri);
	return e->duri.p ? 0 : ENOMEM;
}

int tm_ctx_set_option(struct tm_ctx *ctx, enum tm_req_option opt, bool on)
{
	struct tm_req_edits *e;

	if (ctx->route != TM_ROUTE_REQUEST || (e = edits(ctx)) == NULL)
		return -1;
	switch (opt) {
	case TM_OPT_REPLY_NO_CONNECT:
		e->reply_no_connect = on;
		break;
	case TM_OPT_FORWARD_NO_CONNECT:
		e->forward_no_connect = on;
		break;
	case TM_OPT_REPLY_CLOSE:
		e->reply_close = on;
		break;
	case TM_OPT_FORWARD_CLOSE:
		e->forward_close = on;
		break;
	case TM_OPT_LOCAL_RPORT:
		e->local_rport = on;
		break;
	case TM_OPT_AUTO_INV_100:
		e->auto_inv_100 = on ? 1 : -1;
		break;
	case TM_OPT_DISABLE_6XX:
		e->disable_6xx = on;
		break;
	}
	return 1;
}

int tm_ctx_force_rport(struct tm_ctx *ctx)
{
	struct tm_req_edits *e = edits(ctx);

	if (e == NULL || !ctx->msg->is_request)
		return -1;
	e->force_rport = true;
	return 1;
}

void tm_ctx_setflag(struct tm_ctx *ctx, unsigned flag)
{
	struct tm_req_edits *e = edits(ctx);

	if (e && flag < 32)
		e->flags |= 1u << flag;
}

void tm_ctx_resetflag(struct tm_ctx *ctx, unsigned flag)
{
	struct tm_req_edits *e = edits(ctx);

	if (e && flag < 32)
		e->flags &= ~(1u << flag);
}

bool tm_ctx_isflagset(struct tm_ctx *ctx, unsigned flag)
{
	return ctx->edits && flag < 32 && (ctx->edits->flags >> flag) & 1u;
}

static struct tm_avp **avp_find(struct tm_req_edits *e, struct slice name)
{
	struct tm_avp **pp = &e->avps;

	for (; *pp; pp = &(*pp)->next)
		if (slice_eq((*pp)->name, name))
			return pp;
	return pp;
}

int tm_ctx_avp_set(struct tm_ctx *ctx, struct slice name,
                   const struct tm_val *v)
{
	struct tm_req_edits *e = edits(ctx);
	struct arena *a = edits_arena(ctx);
	struct tm_avp **pp, *avp;

	if (e == NULL)
		return ENOMEM;
	pp = avp_find(e, name);
	avp = *pp;
	if (avp == NULL) {
		avp = arena_alloc(a, sizeof(*avp));
		if (avp == NULL)
			return ENOMEM;
		avp->next = NULL;
		avp->name = keep(a, name);
		*pp = avp;
	}
	avp->v = *v;
	if (!v->is_int)
		avp->v.s = keep(a, v->s);
	return 0;
}

bool tm_ctx_avp_get(struct tm_ctx *ctx, struct slice name, struct tm_val *v)
{
	struct tm_avp *avp;

	if (ctx->edits == NULL)
		return false;
	avp = *avp_find(ctx->edits, name);
	if (avp == NULL)
		return false;
	*v = avp->v;
	return true;
}

void tm_ctx_avp_unset(struct tm_ctx *ctx, struct slice name)
{
	struct tm_avp **pp;

	if (ctx->edits == NULL)
		return;
	pp = avp_find(ctx->edits, name);
	if (*pp)
		*pp = (*pp)->next;
}

int tm_ctx_hdr_append(struct tm_ctx *ctx, struct slice line, bool first)
{
	struct tm_req_edits *e = edits(ctx);

	if (e == NULL || e->n_append == TM_MAX_HDR_EDITS)
		return ENOSPC;
	e->hdr_append[e->n_append] = keep(edits_arena(ctx), line);
	if (first)
		e->hdr_first |= 1u << e->n_append;
	else
		e->hdr_first &= ~(1u << e->n_append);
	e->n_append++;
	return 0;
}

int tm_ctx_hdr_remove(struct tm_ctx *ctx, struct slice name)
{
	struct tm_req_edits *e = edits(ctx);
	const struct sip_hdr *h;
	int n = 0;

	if (e == NULL || e->n_remove == TM_MAX_HDR_EDITS)
		return -1;
	for (unsigned i = 0; ctx->req && i < ctx->req->nhdrs; i++) {
		h = &ctx->req->hdrs[i];
		enum sip_hdr_id id = sip_hdr_lookup(name);
		if ((id != SIP_HDR_OTHER && h->id == id) ||
		    (id == SIP_HDR_OTHER && slice_eq_nocase(h->name, name)))
			n++;
	}
	if (n)
		e->hdr_remove[e->n_remove++] = keep(edits_arena(ctx), name);
	return n;
}

int tm_ctx_append_to_reply(struct tm_ctx *ctx, struct slice line)
{
	struct tm_req_edits *e = edits(ctx);
	struct arena *a = edits_arena(ctx);
	bool crlf = line.len >= 2 && line.p[line.len - 2] == '\r' &&
	            line.p[line.len - 1] == '\n';
	size_t n;
	char *p;

	if (e == NULL)
		return ENOMEM;
	n = e->reply_hdrs.len + line.len + (crlf ? 0 : 2);
	p = arena_alloc(a, n + 1);
	if (p == NULL)
		return ENOMEM;
	memcpy(p, e->reply_hdrs.p ? e->reply_hdrs.p : "", e->reply_hdrs.len);
	memcpy(p + e->reply_hdrs.len, line.p, line.len);
	if (!crlf)
		memcpy(p + n - 2, "\r\n", 2);
	e->reply_hdrs = slice_make(p, n);
	return 0;
}

int tm_process_maxfwd(struct tm_ctx *ctx, unsigned limit)
{
	struct tm_req_edits *e = edits(ctx);
	uint32_t v;
	int err;

	if (e == NULL)
		return -2;
	err = sip_msg_max_forwards(&v, ctx->req);
	if (err == ENOENT) {
		/* Kamailio's 2: the header will be inserted with limit. */
		e->maxfwd_limit = limit;
		e->maxfwd_done = true;
		return 2;
	}
	if (err)
		return -2;
	if (v == 0)
		return -1;
	/* Kamailio caps the value at the limit before decrementing. */
	e->maxfwd_done = true;
	return 1;
}

uint32_t *tm_ctx_bflags(struct tm_ctx *ctx, unsigned idx)
{
	struct tm_req_edits *e;

	if (idx == 0 && ctx->bflags)
		return ctx->bflags;
	if (ctx->route != TM_ROUTE_REQUEST && ctx->route != TM_ROUTE_FAILURE)
		return NULL;
	e = edits(ctx);
	if (e == NULL)
		return NULL;
	if (idx == 0)
		return &e->bflags;
	return idx <= e->nbranches ? &e->branch_bflags[idx - 1] : NULL;
}

int tm_append_branch(struct tm_ctx *ctx, struct slice uri)
{
	struct tm_req_edits *e = edits(ctx);
	struct sip_uri u;
	const char *why;

	if (uri.len == 0)
		uri = tm_ctx_ruri(ctx);
	if (e == NULL || e->nbranches == TM_MAX_BRANCHES - 1 ||
	    sip_uri_parse(&u, uri, &why))
		return -1;
	e->branches[e->nbranches] = keep(edits_arena(ctx), uri);
	e->branch_bflags[e->nbranches] = e->bflags;
	e->nbranches++;
	return 1;
}

/* ----------------------------------------------------------- replies */

int tm_sl_reply(struct tm_ctx *ctx, unsigned code, struct slice reason)
{
	struct slice hdrs = ctx->edits ? ctx->edits->reply_hdrs : SLICE_NULL;

	if (ctx->req == NULL || ctx->route != TM_ROUTE_REQUEST)
		return -1;
	/* With a transaction the reply must go through it, or the
	 * transaction would send its own later. */
	if (ctx->t)
		return tm_local_reply(ctx->t, code, reason, hdrs) ? -1 : 1;
	return tm_sl_send(ctx->sh, ctx->req, ctx->rx, ctx->edits, code, reason,
	                  hdrs)
	               ? -1
	               : 1;
}

int tm_sl_reply_error(struct tm_ctx *ctx)
{
	int ret = tm_sl_reply(ctx, 500, SLICE_LIT("Server Internal Error"));

	/* as Kamailio's sl counts its sl_reply_error() */
	if (ret > 0 && ctx->t == NULL)
		ctx->sh->stats.sl_err_replies++;
	return ret;
}

int tm_sanity_reply(struct tm_ctx *ctx)
{
	const struct sip_sanity_verdict *v = &ctx->sanity;
	char buf[128];
	struct slice line;

	/* A reply or an ACK gets none (nor does what has no address) */
	if (v->code == 0 || !ctx->msg->is_request ||
	    ctx->msg->method_id == SIP_METHOD_ACK)
		return -1;
	if (v->unsupported.len) {
		line = tm_unsupported_line(buf, sizeof(buf), &v->unsupported,
		                           1);
		if (line.len)
			tm_ctx_append_to_reply(ctx, line);
	}
	return tm_sl_reply(ctx, v->code, slice_cstr(v->reason));
}

int tm_sanity_check(struct tm_ctx *ctx, unsigned checks, unsigned uri_checks)
{
	const struct tm_config *cfg = ctx->sh->cfg;
	size_t wire_len = 0;

	if (ctx->rx && ctx->rx->proto == NET_UDP)
		wire_len = ctx->rx->len;
	if (checks == 0)
		checks = cfg->sanity_checks;
	if (uri_checks == 0)
		uri_checks = cfg->sanity_uri_checks;
	if (sip_sanity_check(&ctx->sanity, ctx->msg, wire_len, checks,
	                     uri_checks, cfg->proxy_require) == 0)
		return 1;
	LOG_DBG("sanity: %u %s", ctx->sanity.code,
	        ctx->sanity.reason ? ctx->sanity.reason : "");
	ctx->sanity_replied = !cfg->sanity_noreply && tm_sanity_reply(ctx) > 0;
	return -1;
}

int tm_t_reply(struct tm_ctx *ctx, unsigned code, struct slice reason)
{
	if (ctx->t == NULL && tm_t_newtran(ctx) <= 0)
		return -1;
	return tm_trans_reply(ctx->t, code, reason, SLICE_NULL) ? -1 : 1;
}

/* ------------------------------------------------------ transactions */

/* The request handled as a retransmission or an ACK of a negative reply:
 * the script stops (Kamailio's 0). */
static int handled(struct tm_ctx *ctx)
{
	ctx->exit = true;
	return 0;
}

/* True when the request is a retransmission, answered with the last
 * reply of its transaction (or of the compact form of a finished
 * non-INVITE one). */
static bool absorbed(struct tm_ctx *ctx)
{
	struct tm_linger *l;
	struct tm_trans *t = tm_trans_lookup(ctx->sh, ctx->msg, false, &l);

	if (t)
		tm_uas_retransmission(t);
	else if (l)
		tm_linger_resend(l);
	return t || l;
}

int tm_t_newtran(struct tm_ctx *ctx)
{
	struct tm_shard *sh = ctx->sh;
	struct tm_trans *t;

	if (ctx->t)
		return 1;
	if (ctx->route != TM_ROUTE_REQUEST || ctx->rx == NULL ||
	    ctx->msg->method_id == SIP_METHOD_ACK)
		return -1;
	if (absorbed(ctx))
		return handled(ctx);
	t = tm_trans_new(sh, ctx->msg, ctx->rx);
	if (t == NULL)
		return -1;
	if (ctx->edits && tm_edits_adopt(t, ctx->edits)) {
		obj_unref(t);
		return -1;
	}
	tm_trans_link(t);
	ctx->t = t;
	ctx->edits = &t->ed;
	ctx->req = ctx->msg;
	if (sh->cfg->hooks && sh->cfg->hooks->trans_created &&
	    !sh->cfg->hooks->trans_created(ctx, t))
		return handled(ctx);
	if (t->is_invite && (t->ed.auto_inv_100 ? t->ed.auto_inv_100 > 0
	                                        : sh->cfg->auto_inv_100))
		tm_local_reply(t, 100, SLICE_LIT("Trying"), SLICE_NULL);
	return 1;
}

int tm_t_check_trans(struct tm_ctx *ctx)
{
	struct sip_msg *m = ctx->msg;
	struct tm_trans *t;

	if (ctx->route != TM_ROUTE_REQUEST)
		return ctx->t ? 1 : -1;
	if (m->method_id == SIP_METHOD_CANCEL)
		return tm_trans_lookup(ctx->sh, m, true, NULL) ? 1 : -1;
	if (m->method_id == SIP_METHOD_ACK) {
		/* The ACK of a negative reply stops here, hop by hop
		 * (RFC 3261 §17.2.1); an ACK for a 2xx has its own branch
		 * and matches nothing. */
		t = tm_trans_lookup(ctx->sh, m, false, NULL);
		if (t == NULL)
			return -1;
		tm_uas_ack(t);
		return handled(ctx);
	}
	return absorbed(ctx) ? handled(ctx) : -1;
}

int tm_t_forward(struct tm_ctx *ctx, struct slice uri)
{
	if (ctx->route != TM_ROUTE_REQUEST || !ctx->msg->is_request ||
	    edits(ctx) == NULL)
		return -1;
	return tm_forward_stateless(ctx, uri);
}

int tm_t_branch_count(struct tm_ctx *ctx)
{
	return ctx->t ? (int)ctx->t->nbr : 0;
}

int tm_t_status_code(struct tm_ctx *ctx)
{
	if (ctx->reply_code)
		return (int)ctx->reply_code;
	if (ctx->msg && !ctx->msg->is_request)
		return (int)ctx->msg->status;
	if (ctx->t && ctx->t->last_code)
		return (int)ctx->t->last_code;
	return -1;
}

static int relay_cancel(struct tm_ctx *ctx)
{
	struct tm_trans *inv = tm_trans_lookup(ctx->sh, ctx->msg, true, NULL);
	struct slice reason = SLICE_NULL;
	const struct sip_hdr *h;

	if (inv == NULL) {
		tm_sl_send(ctx->sh, ctx->msg, ctx->rx, ctx->edits, 481,
		           SLICE_LIT("Call/Transaction Does Not Exist"),
		           SLICE_NULL);
		return 1;
	}
	/* §16.10: answer the CANCEL, cancel every pending branch, and let
	 * the INVITE be answered 487 by them (or by us). Reason headers
	 * travel down (RFC 3326). */
	tm_sl_send(ctx->sh, ctx->msg, ctx->rx, ctx->edits, 200, SLICE_LIT("OK"),
	           SLICE_NULL);
	if (inv->final_sent)
		return 1;
	inv->canceled = true;
	if (ctx->sh->cfg->hooks && ctx->sh->cfg->hooks->canceled)
		ctx->sh->cfg->hooks->canceled(inv);
	h = sip_msg_hdr(ctx->msg, SIP_HDR_REASON);
	if (h) {
		char *p = arena_alloc(ctx->arena, h->len);
		if (p) {
			memcpy(p, ctx->msg->buf + h->off, h->len);
			reason = slice_make(p, h->len);
		}
	}
	tm_cancel_branches(inv, reason);
	if (inv->nbr == 0)
		tm_local_reply(inv, 487, SLICE_LIT("Request Terminated"),
		               SLICE_NULL);
	return 1;
}

int tm_t_relay(struct tm_ctx *ctx, const char *proto, struct slice host,
               unsigned port)
{
	struct sip_msg *m = ctx->msg;
	uint32_t mf;
	int ret;

	if (!m->is_request || ctx->route == TM_ROUTE_EVENT)
		return -1;
	if (m->method_id == SIP_METHOD_CANCEL && ctx->route == TM_ROUTE_REQUEST)
		return relay_cancel(ctx);
	if (m->method_id == SIP_METHOD_ACK) {
		if (tm_trans_lookup(ctx->sh, m, false, NULL)) {
			return tm_t_check_trans(ctx);
		}
		edits(ctx);
		return ctx->edits ? tm_forward_stateless(ctx, SLICE_NULL) : -1;
	}
	/* §16.3 step 3: no hops left. */
	if (sip_msg_max_forwards(&mf, m) == 0 && mf == 0) {
		tm_t_reply(ctx, 483, SLICE_LIT("Too Many Hops"));
		return -483;
	}
	if (ctx->t == NULL) {
		ret = tm_t_newtran(ctx);
		if (ret <= 0)
			return ret;
	}
	if (ctx->route == TM_ROUTE_FAILURE && ctx->t->final_sent)
		return -1;
	/* As in Kamailio, a failure route forks to $ru only when it set a
	 * new one; otherwise to the appended branches. */
	ret = tm_forward(ctx->t,
	                 ctx->route != TM_ROUTE_FAILURE ||
	                         ctx->t->ed.ruri.len > 0,
	                 proto, host, port);
	if (ret < 0 && ctx->route == TM_ROUTE_REQUEST) {
		/* Nothing left: answer now, as Kamailio's sl_reply_error()
		 * would (478 unresolvable, 503 unreachable ...). */
		unsigned code = (unsigned)-ret;
		tm_local_reply(ctx->t, code, tm_failure_reason(code),
		               ctx->t->ed.reply_hdrs);
	}
	return ret;
}

/* Route names are kept with the request edits, so that they can be set
 * before the transaction exists; the transaction adopts them. */
static int arm(struct tm_ctx *ctx, enum tm_hook hook, const char *fn)
{
	struct tm_req_edits *e = edits(ctx);

	if (e == NULL || fn == NULL)
		return -1;
	e->hooks[hook] =
	        *fn ? keep(edits_arena(ctx), slice_cstr(fn)) : SLICE_NULL;
	return 1;
}

int tm_t_on_failure(struct tm_ctx *ctx, const char *fn)
{
	return arm(ctx, TM_HOOK_FAILURE, fn);
}

int tm_t_on_branch(struct tm_ctx *ctx, const char *fn)
{
	return arm(ctx, TM_HOOK_BRANCH, fn);
}

int tm_t_on_reply(struct tm_ctx *ctx, const char *fn)
{
	return arm(ctx, TM_HOOK_REPLY, fn);
}

int tm_t_is_set(struct tm_ctx *ctx, struct slice route)
{
	static const char *const names[TM_HOOK__COUNT] = {
	        [TM_HOOK_FAILURE] = "failure_route",
	        [TM_HOOK_BRANCH] = "branch_route",
	        [TM_HOOK_REPLY] = "onreply_route",
	};

	for (unsigned h = 0; h < TM_HOOK__COUNT; h++) {
		if (slice_eq_cstr(route, names[h]))
			return ctx->edits && ctx->edits->hooks[h].len ? 1 : -1;
	}
	return -1;
}

int tm_t_is_canceled(struct tm_ctx *ctx)
{
	return ctx->t && ctx->t->canceled ? 1 : -1;
}

int tm_t_set_fr(struct tm_ctx *ctx, unsigned inv_ms, unsigned noninv_ms)
{
	struct tm_req_edits *e = edits(ctx);

	if (e == NULL)
		return -1;
	if (inv_ms)
		e->fr_inv_ms = inv_ms;
	if (noninv_ms)
		e->fr_ms = noninv_ms;
	return 1;
}

/* The branch a failure route runs for, or NULL outside one. */
static const struct tm_branch *failed_branch(const struct tm_ctx *ctx)
{
	if (ctx->route != TM_ROUTE_FAILURE || ctx->t == NULL ||
	    ctx->branch >= ctx->t->nbr)
		return NULL;
	return ctx->t->br[ctx->branch];
}

int tm_t_branch_timeout(struct tm_ctx *ctx)
{
	const struct tm_branch *b = failed_branch(ctx);

	return b && b->timed_out ? 1 : -1;
}

int tm_t_branch_replied(struct tm_ctx *ctx)
{
	const struct tm_branch *b = failed_branch(ctx);

	return b && b->rpl_received ? 1 : -1;
}

int tm_t_any_timeout(struct tm_ctx *ctx)
{
	for (unsigned i = 0; ctx->t && i < ctx->t->nbr; i++)
		if (ctx->t->br[i]->timed_out)
			return 1;
	return -1;
}

int tm_t_grep_status(struct tm_ctx *ctx, unsigned code)
{
	for (unsigned i = 0; ctx->t && i < ctx->t->nbr; i++) {
		const struct tm_branch *b = ctx->t->br[i];
		/* as Kamailio: the branch's last code, and a reply came */
		if (b->code == code && b->rpl_received)
			return 1;
	}
	return -1;
}

int tm_t_drop_replies(struct tm_ctx *ctx, struct slice mode)
{
	/* Kamailio's modes: 'n' none, 'l' the last step, anything else all */
	unsigned char drop = 1;

	if (mode.len > 0 && mode.p[0] == 'n')
		drop = 0;
	else if (mode.len > 0 && mode.p[0] == 'l')
		drop = 2;
	if (ctx->route == TM_ROUTE_FAILURE && ctx->t != NULL)
		ctx->t->drop_mode = drop;
	return 1;
}

int tm_t_any_replied(struct tm_ctx *ctx)
{
	if (ctx->t == NULL)
		return -1;
	for (unsigned i = 0; i < ctx->t->nbr; i++) {
		const struct tm_branch *b = ctx->t->br[i];
		/* As in Kamailio, the reply a failure route is handling does
		 * not count. */
		if (ctx->route == TM_ROUTE_FAILURE && i == ctx->branch &&
		    b->code >= 200) {
			if (b->provisional)
				return 1;
			continue;
		}
		if (b->code && !b->timed_out)
			return 1;
	}
	return -1;
}

/* -------------------------------------------------- record-routing */

/* Appends params to the Record-Route parameters, with a leading ';'. */
static int rr_params_add(struct tm_ctx *ctx, struct tm_req_edits *e,
                         struct slice params)
{
	struct arena *a = edits_arena(ctx);
	bool semi = params.len && params.p[0] == ';';
	size_t n;
	char *p;

	if (params.len == 0)
		return 0;
	n = e->rr_params.len + params.len + (semi ? 0 : 1);
	p = arena_alloc(a, n + 1);
	if (p == NULL)
		return ENOMEM;
	memcpy(p, e->rr_params.p ? e->rr_params.p : "", e->rr_params.len);
	if (!semi)
		p[e->rr_params.len] = ';';
	memcpy(p + n - params.len, params.p, params.len);
	e->rr_params = slice_make(p, n);
	return 0;
}

int tm_ctx_record_route(struct tm_ctx *ctx, struct slice params)
{
	struct tm_req_edits *e = edits(ctx);

	if (e == NULL)
		return ENOMEM;
	e->record_route = true;
	return rr_params_add(ctx, e, params);
}

int tm_ctx_add_rr_param(struct tm_ctx *ctx, struct slice params)
{
	struct tm_req_edits *e = edits(ctx);

	return e ? rr_params_add(ctx, e, params) : ENOMEM;
}

void tm_ctx_pop_routes(struct tm_ctx *ctx, unsigned n)
{
	struct tm_req_edits *e = edits(ctx);

	if (e)
		e->routes_popped = n;
}

int tm_ctx_strict_route(struct tm_ctx *ctx, unsigned ours)
{
	struct tm_req_edits *e = edits(ctx);
	struct sip_elem_iter it;
	struct slice elem, last = SLICE_NULL;
	struct sip_addr addr;
	const char *why;
	unsigned n = 0;

	if (e == NULL)
		return ENOMEM;
	sip_elem_iter_init(&it, ctx->req, SIP_HDR_ROUTE);
	while (sip_elem_next(&elem, &it) == 0) {
		last = elem;
		n++;
	}
	if (n <= ours || sip_addr_parse(&addr, last, 0, &why))
		return EINVAL;
	e->ruri = keep(edits_arena(ctx), addr.uri);
	if (e->ruri.p == NULL)
		return ENOMEM;
	e->routes_popped = ours;
	e->route_last_taken = true;
	return 0;
}
