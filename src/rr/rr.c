/*
 * Record-Route and loose routing (RFC 3261 §16.4, §16.6 step 4, §16.12)
 * on top of tm's request edits.
 */
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <string.h>

#include "rr/rr.h"

#define RR_MAX_CALLBACKS 4

/* Registered at start-up, read-only afterwards (shared by workers). */
static struct {
	rr_callback_fn *fn;
	void *arg;
} callbacks[RR_MAX_CALLBACKS];
static unsigned ncallbacks;

void rr_config_defaults(struct rr_config *c)
{
	c->append_fromtag = false;
}

int rr_register_callback(rr_callback_fn *fn, void *arg)
{
	if (ncallbacks == RR_MAX_CALLBACKS)
		return ENOSPC;
	callbacks[ncallbacks].fn = fn;
	callbacks[ncallbacks].arg = arg;
	ncallbacks++;
	return 0;
}

int rr_record_route(struct tm_ctx *ctx, const struct rr_config *cfg,
                    struct slice params)
{
	const struct sip_addr *from;

	if (ctx->req == NULL || !ctx->req->is_request)
		return -1;
	if (cfg->append_fromtag && sip_msg_from(&from, ctx->req) == 0 &&
	    from->tag.len) {
		const struct slice parts[] = {SLICE_LIT(";ftag="), from->tag};
		struct slice param = arena_concat(ctx->arena, parts, 2);
		if (param.len == 0 || tm_ctx_add_rr_param(ctx, param))
			return -1;
	}
	return tm_ctx_record_route(ctx, params) ? -1 : 1;
}

int rr_add_rr_param(struct tm_ctx *ctx, struct slice param)
{
	return tm_ctx_add_rr_param(ctx, param) ? -1 : 1;
}

static bool route_uri(struct sip_uri *u, struct slice elem)
{
	struct sip_addr a;
	const char *why;

	return sip_addr_parse(&a, elem, 0, &why) == 0 &&
	       sip_uri_parse(u, a.uri, &why) == 0;
}

static void run_callbacks(struct tm_ctx *ctx, struct slice params)
{
	for (unsigned i = 0; i < ncallbacks; i++)
		callbacks[i].fn(ctx, params, callbacks[i].arg);
}

int rr_loose_route(struct tm_ctx *ctx)
{
	struct sip_msg *m = ctx->req;
	struct sip_elem_iter it;
	struct slice elem;
	const struct sip_uri *ruri;
	struct sip_uri top, next;
	unsigned ours = 0;

	if (m == NULL || !m->is_request || !sip_msg_hdr(m, SIP_HDR_ROUTE))
		return -1;
	sip_elem_iter_init(&it, m, SIP_HDR_ROUTE);
	if (sip_elem_next(&elem, &it) || !route_uri(&top, elem))
		return -1;
	/* Our entries at the top: one, or two after a double Record-Route
	 * (two sockets). */
	if (tm_is_myself(ctx->sh, &top, false)) {
		ours = 1;
		if (sip_elem_next(&elem, &it) == 0 && route_uri(&next, elem) &&
		    tm_is_myself(ctx->sh, &next, false))
			ours = 2;
	}

	/* §16.4: in a dialog, a Request-URI naming us is our Record-Route
	 * URI, put there by a strict router before us (with its ;lr, as it
	 * copies the URI); the remote target is the last Route value. An
	 * initial request for one of our addresses is simply addressed to
	 * us (Kamailio's is_preloaded() decides by the To tag too). */
	if (sip_msg_has_to_tag(m) && sip_msg_request_uri(&ruri, m) == 0 &&
	    tm_is_myself(ctx->sh, ruri, false)) {
		if (tm_ctx_strict_route(ctx, ours))
			return -1;
		ctx->route_params = ruri->params;
		run_callbacks(ctx, ruri->params);
		return 1;
	}
	if (ours == 0) {
		/* Pre-loaded Route to someone else: forward to it. */
		return 1;
	}
	tm_ctx_pop_routes(ctx, ours);
	ctx->route_params = top.params;
	run_callbacks(ctx, top.params);
	return 1;
}

int rr_check_route_param(struct tm_ctx *ctx, const char *regex)
{
	regex_t re;
	char buf[1024];
	int ok;

	if (ctx->route_params.p == NULL)
		return -1;
	if (regcomp(&re, regex, REG_EXTENDED | REG_NOSUB))
		return -1;
	slice_copy_cstr(buf, sizeof(buf), ctx->route_params);
	ok = regexec(&re, buf, 0, NULL, 0) == 0;
	regfree(&re);
	return ok ? 1 : -1;
}

int rr_is_direction(struct tm_ctx *ctx, const char *dir)
{
	const struct sip_addr *from;
	struct slice ftag;
	bool down;

	if (!sip_param_find(&ftag, ctx->route_params, "ftag") ||
	    sip_msg_from(&from, ctx->req))
		return -1;
	/* The From tag of the request that set up the dialog was the
	 * caller's: equal now means the caller is sending (downstream). */
	down = slice_eq(ftag, from->tag);
	if (strcmp(dir, "downstream") == 0)
		return down ? 1 : -1;
	if (strcmp(dir, "upstream") == 0)
		return down ? -1 : 1;
	return -1;
}
