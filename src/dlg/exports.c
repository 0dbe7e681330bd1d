/*
 * The dialog engine seen from the script: KSR.ims_dialog.* (and the same
 * functions as KSR.dialog.*, since users copy examples that use it) and
 * the $DLG_* / $dlg(...) pseudo-variables.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlg/dlg_int.h"
#include "script/script.h"

static int k_dlg_manage(struct script_call *c)
{
	return dlg_manage(c->ctx);
}

static struct slice arg_str(const struct script_call *c, unsigned i)
{
	return i < c->nargs && c->args[i].type == SCRIPT_VAL_STR ? c->args[i].s
	                                                         : SLICE_NULL;
}

static int k_dlg_terminate(struct script_call *c)
{
	char side[16];

	slice_copy_cstr(side, sizeof(side), arg_str(c, 0));
	return dlg_terminate_ctx(c->ctx, side, arg_str(c, 1));
}

/* dlg_req_within(side, method[, hdrs][, ctype, body]) as Kamailio's
 * function takes it (the arguments after the method by their count), and
 * its KEMI names: dlg_req_with_headers(side, method, hdrs),
 * dlg_req_with_content(side, method, ctype, body) and
 * dlg_req_with_headers_and_content(side, method, hdrs, ctype, body). */
static int k_dlg_req_within(struct script_call *c)
{
	char side[16], method[32];
	struct slice hdrs = SLICE_NULL, ctype = SLICE_NULL, body = SLICE_NULL;

	if (c->nargs > 5)
		return script_call_error(c, "at most 5 arguments");
	slice_copy_cstr(side, sizeof(side), arg_str(c, 0));
	slice_copy_cstr(method, sizeof(method), arg_str(c, 1));
	if (c->nargs == 3 || c->nargs == 5)
		hdrs = arg_str(c, 2);
	if (c->nargs >= 4) {
		ctype = arg_str(c, c->nargs - 2);
		body = arg_str(c, c->nargs - 1);
	}
	return dlg_request_ctx(c->ctx, side, method, hdrs, ctype, body);
}

/* dlg_refer(side, uri), dlg_refer_did(h_entry, h_id, side, uri),
 * dlg_refer_cid(callid, side, uri): the dialog is told by the arguments
 * before the last two. */
static int k_dlg_refer(struct script_call *c)
{
	struct dlg_which which = {SLICE_NULL, 0, 0}, *w = NULL;
	unsigned at = c->nargs - 2;
	char side[16];

	if (c->nargs == 3) {
		which.callid = arg_str(c, 0);
		if (which.callid.len == 0)
			return -1;
		w = &which;
	} else if (c->nargs == 4) {
		if (c->args[0].i < 0 || c->args[0].i > UINT32_MAX ||
		    c->args[1].i < 0 || c->args[1].i > UINT32_MAX)
			return -1;
		which.h_entry = (uint32_t)c->args[0].i;
		which.h_id = (uint32_t)c->args[1].i;
		w = &which;
	}
	slice_copy_cstr(side, sizeof(side), arg_str(c, at));
	return dlg_refer_ctx(c->ctx, w, side, arg_str(c, at + 1));
}

/* "" and "." (dlg.bridge_dlg's "none") are no outbound proxy. */
static struct slice outbound_proxy(struct slice op)
{
	return slice_eq_cstr(op, ".") ? SLICE_NULL : op;
}

/* dlg_bridge(from, to, op) */
static int k_dlg_bridge(struct script_call *c)
{
	struct dlg_shard *ds = dlg_shard_of(c->ctx);

	if (ds == NULL)
		return -1;
	return dlg_bridge(worker_rt(tm_shard_worker(c->ctx->sh)), ds->nshards,
	                  ds->cfg, arg_str(c, 0), arg_str(c, 1),
	                  outbound_proxy(arg_str(c, 2)), NULL);
}

static int k_validate_dialog(struct script_call *c)
{
	return dlg_validate_ctx(c->ctx);
}

static int k_dlg_set_ruri(struct script_call *c)
{
	return dlg_set_ruri_ctx(c->ctx);
}

/* dlg_set_timeout(seconds[, h_entry, h_id]); the KEMI name of the long
 * form is dlg_set_timeout_id. */
static int k_dlg_set_timeout(struct script_call *c)
{
	long long secs = c->args[0].i, he, hi;

	if (secs <= 0 || secs > UINT32_MAX)
		return -1;
	if (c->nargs == 1)
		return dlg_set_timeout_ctx(c->ctx, (unsigned)secs);
	if (c->nargs != 3 || c->args[1].type != SCRIPT_VAL_INT ||
	    c->args[2].type != SCRIPT_VAL_INT)
		return script_call_error(c, "seconds, or seconds, h_entry "
		                            "and h_id (integers)");
	he = c->args[1].i;
	hi = c->args[2].i;
	if (he < 0 || he > UINT32_MAX || hi < 0 || hi > UINT32_MAX)
		return -1;
	return dlg_set_timeout_ids(c->ctx, (unsigned)secs, (uint32_t)he,
	                           (uint32_t)hi);
}

static int k_is_known_dlg(struct script_call *c)
{
	return dlg_is_known(c->ctx);
}

/* dlg_setflag/resetflag/isflagset: on the current dialog, or before it
 * exists on the flags the message's context hands to it (§13 #27). */
static int flag_apply(uint32_t *flags, long op, unsigned f)
{
	switch (op) {
	case 0:
		*flags |= 1u << f;
		return 1;
	case 1:
		*flags &= ~(1u << f);
		return 1;
	default:
		return (*flags >> f) & 1u ? 1 : -1;
	}
}

static int flag_dlg_op(struct dlg *d, void *arg)
{
	struct script_call *c = arg;

	return flag_apply(&d->sflags, c->exp->arg, (unsigned)c->args[0].i);
}

static int flag_op(struct script_call *c)
{
	long long f = c->args[0].i;
	struct dlg_msg_ctx *mc;

	if (f < 0 || f > 31)
		return -1;
	if (dlg_is_known(c->ctx) > 0)
		return dlg_on_current(c->ctx, flag_dlg_op, c);
	mc = dlg_msg_ctx(c->ctx);
	return mc ? flag_apply(&mc->attrs.flags, c->exp->arg, (unsigned)f) : -1;
}

/* dlg_set_property(name) / dlg_reset_property(name): Kamailio's names
 * of the internal flags. */
static uint8_t iflag_named(struct slice name)
{
	if (slice_eq_cstr(name, "ka-src"))
		return DLG_IFLAG_KA_SRC;
	if (slice_eq_cstr(name, "ka-dst"))
		return DLG_IFLAG_KA_DST;
	if (slice_eq_cstr(name, "timeout-noreset"))
		return DLG_IFLAG_TIMEOUT_NORESET;
	return 0;
}

static int property_dlg_op(struct dlg *d, void *arg)
{
	struct script_call *c = arg;

	dlg_set_iflags(d, iflag_named(arg_str(c, 0)), c->exp->arg == 0);
	return 1;
}

static int property_op(struct script_call *c)
{
	uint8_t f = iflag_named(arg_str(c, 0));
	struct dlg_msg_ctx *mc;

	if (f == 0) {
		LOG_ERR("dialog: unknown property \"%.*s\" (ka-src, ka-dst or "
		        "timeout-noreset)",
		        SLICE_ARG(arg_str(c, 0)));
		return -1;
	}
	if (dlg_is_known(c->ctx) > 0)
		return dlg_on_current(c->ctx, property_dlg_op, c);
	/* Before the dialog exists: handed to it at creation. */
	mc = dlg_msg_ctx(c->ctx);
	if (mc == NULL)
		return -1;
	if (c->exp->arg == 0)
		mc->attrs.iflags |= f;
	else
		mc->attrs.iflags &= (uint8_t)~f;
	return 1;
}

static int k_dlg_get(struct script_call *c)
{
	return dlg_get_ctx(c->ctx, arg_str(c, 0), arg_str(c, 1), arg_str(c, 2));
}

/* ---------------------------------------------------------- profiles */

/* The profile named by argument i, or NULL (logged). */
static const struct profile *profile_arg(struct script_call *c, unsigned i)
{
	struct dlg_shard *ds = dlg_shard_of(c->ctx);
	struct slice name = arg_str(c, i);
	const struct profile *p =
	        ds && ds->cfg->profiles ? profile_find(ds->cfg->profiles, name)
	                                : NULL;

	if (p == NULL)
		LOG_ERR("dialog: profile \"%.*s\" is not defined",
		        SLICE_ARG(name));
	return p;
}

struct profile_op {
	const struct profile *p;
	struct slice value;
};

static int set_profile_op(struct dlg *d, void *arg)
{
	struct profile_op *o = arg;

	return profile_add(&d->profiles, o->p, o->value, d, d->ds->shard_id)
	               ? -1
	               : 1;
}

static int unset_profile_op(struct dlg *d, void *arg)
{
	struct profile_op *o = arg;

	return profile_remove(&d->profiles, o->p, o->value) ? -1 : 1;
}

static int is_in_profile_op(struct dlg *d, void *arg)
{
	struct profile_op *o = arg;

	return profile_is_member(&d->profiles, o->p, o->value) ? 1 : -1;
}

/* KEMI passes "" for "no value" (§15): an empty string is no value. */
static int k_set_profile(struct script_call *c)
{
	struct profile_op o = {profile_arg(c, 0), arg_str(c, 1)};
	struct dlg_msg_ctx *mc;

	if (o.p == NULL || (profile_has_value(o.p) && o.value.len == 0))
		return -1;
	if (dlg_is_known(c->ctx) > 0)
		return dlg_on_current(c->ctx, set_profile_op, &o);
	/* Before the dialog exists: kept for its creation (§7.4). */
	mc = dlg_msg_ctx(c->ctx);
	if (mc == NULL || mc->npending == DLG_PENDING_PROFILES ||
	    c->ctx->route != TM_ROUTE_REQUEST)
		return -1;
	char *copy = arena_strdup(c->ctx->arena, o.value);
	mc->pending[mc->npending].p = o.p;
	mc->pending[mc->npending].value =
	        copy ? slice_make(copy, o.value.len) : SLICE_NULL;
	mc->npending++;
	return 1;
}

static int k_unset_profile(struct script_call *c)
{
	struct profile_op o = {profile_arg(c, 0), arg_str(c, 1)};

	return o.p ? dlg_on_current(c->ctx, unset_profile_op, &o) : -1;
}

static int k_is_in_profile(struct script_call *c)
{
	struct profile_op o = {profile_arg(c, 0), arg_str(c, 1)};

	return o.p ? dlg_on_current(c->ctx, is_in_profile_op, &o) : -1;
}

/* get_profile_size(p[, v][, "$var(n)"]): Kamailio stores the size in the
 * named variable and returns 1. */
static int k_get_profile_size(struct script_call *c)
{
	const struct profile *p = profile_arg(c, 0);
	struct script_val v;

	if (p == NULL)
		return -1;
	v.type = SCRIPT_VAL_INT;
	v.i = (long long)profile_size(p, arg_str(c, 1));
	if (c->nargs >= 3 && arg_str(c, 2).len)
		return script_pv_write(c, arg_str(c, 2), &v);
	return 1;
}

/* dlg_set_timeout_by_profile(p[, v], seconds): the seconds last, as in
 * Kamailio. */
static int k_set_timeout_by_profile(struct script_call *c)
{
	const struct profile *p = profile_arg(c, 0);
	const struct script_val *secs = &c->args[c->nargs - 1];

	if (p == NULL || c->nargs < 2 || c->nargs > 3 ||
	    secs->type != SCRIPT_VAL_INT || secs->i <= 0 ||
	    secs->i > UINT32_MAX)
		return -1;
	return dlg_set_timeout_by_profile(
	        c->ctx, p, c->nargs == 3 ? arg_str(c, 1) : SLICE_NULL,
	        (unsigned)secs->i);
}

/* dlg_remote_profile(cmd, profile, value, uid, expires) */
static int k_dlg_remote_profile(struct script_call *c)
{
	const struct profile *p = profile_arg(c, 1);

	return p ? dlg_remote_profile(c->ctx, arg_str(c, 0), p, arg_str(c, 2),
	                              arg_str(c, 3), c->args[4].i)
	         : -1;
}

/* profile_size(p[, v]): the number itself. */
static int k_profile_size(struct script_call *c)
{
	const struct profile *p = profile_arg(c, 0);

	return p ? (int)profile_size(p, arg_str(c, 1)) : -1;
}

/* dlg_get_var(callid, ftag, ttag, key, "$var(x)") and dlg_set_var(callid,
 * ftag, ttag, key, value): a variable of any call, whichever worker owns
 * it, the current dialog left as it was. An empty ttag names the call by
 * the caller's tag alone. */
struct other_var {
	char key[128];
	const char *value; /* set: NUL-terminated, "" removes */
	struct arena *arena;
	char *copy; /* get: the value, in the route's arena */
};

static int other_var_get_op(struct dlg *d, void *arg)
{
	struct other_var *o = arg;
	const char *v = get_dlg_var(d, o->key);

	if (v == NULL)
		return -1;
	o->copy = arena_strdup(o->arena, slice_cstr(v));
	return o->copy ? 1 : -1;
}

static int other_var_set_op(struct dlg *d, void *arg)
{
	struct other_var *o = arg;

	return set_dlg_var(d, o->key, o->value) ? -1 : 1;
}

static int k_dlg_var_of(struct script_call *c)
{
	struct other_var o = {.arena = c->ctx->arena};
	struct script_val v = {.type = SCRIPT_VAL_STR};
	bool set = c->exp->arg == 1;

	slice_copy_cstr(o.key, sizeof(o.key), arg_str(c, 3));
	if (set && (o.value = arena_strdup(o.arena, arg_str(c, 4))) == NULL)
		return -1;
	if (dlg_on_tags(c->ctx, arg_str(c, 0), arg_str(c, 1), arg_str(c, 2),
	                set ? other_var_set_op : other_var_get_op, &o) < 0)
		return -1;
	if (set)
		return 1;
	v.s = slice_cstr(o.copy);
	return script_pv_write(c, arg_str(c, 4), &v);
}

/* One list of functions, registered under both module names. */
#define DLG_EXPORTS(mod)                                                         \
	{mod, "dlg_manage", k_dlg_manage, "", SCRIPT_RET_INT, 0, 0},             \
	        {mod, "dlg_get", k_dlg_get, "sss", SCRIPT_RET_INT, 0, 0},        \
	        {mod, "dlg_terminate", k_dlg_terminate, "s*", SCRIPT_RET_INT, 0, \
	         0},                                                             \
	        {mod, "dlg_bye", k_dlg_terminate, "s", SCRIPT_RET_INT, 0, 0},    \
	        {mod,   "dlg_req_within", k_dlg_req_within,                      \
	         "ss*", SCRIPT_RET_INT,   0,                                     \
	         0},                                                             \
	        {mod,   "dlg_req_with_headers", k_dlg_req_within,                \
	         "sss", SCRIPT_RET_INT,         0,                               \
	         0},                                                             \
	        {mod,    "dlg_req_with_content", k_dlg_req_within,               \
	         "ssss", SCRIPT_RET_INT,         0,                              \
	         0},                                                             \
	        {mod,                                                            \
	         "dlg_req_with_headers_and_content",                             \
	         k_dlg_req_within,                                               \
	         "sssss",                                                        \
	         SCRIPT_RET_INT,                                                 \
	         0,                                                              \
	         0},                                                             \
	        {mod, "dlg_set_ruri", k_dlg_set_ruri, "", SCRIPT_RET_INT, 0, 0}, \
	        {mod, "dlg_refer", k_dlg_refer, "ss", SCRIPT_RET_INT, 0, 0},     \
	        {mod, "dlg_bridge", k_dlg_bridge, "sss", SCRIPT_RET_INT, 0, 0},  \
	        {mod, "dlg_refer_did", k_dlg_refer, "iiss", SCRIPT_RET_INT, 0,   \
	         0},                                                             \
	        {mod, "dlg_refer_cid", k_dlg_refer, "sss", SCRIPT_RET_INT, 0,    \
	         0},                                                             \
	        {mod, "validate_dialog", k_validate_dialog,                      \
	         "",  SCRIPT_RET_INT,    0,                                      \
	         0},                                                             \
	        {mod, "dlg_get_var", k_dlg_var_of, "sssss", SCRIPT_RET_INT, 0,   \
	         0},                                                             \
	        {mod, "dlg_set_var", k_dlg_var_of, "sssss", SCRIPT_RET_INT, 0,   \
	         1},                                                             \
	        {mod,  "dlg_set_timeout", k_dlg_set_timeout,                     \
	         "i*", SCRIPT_RET_INT,    0,                                     \
	         0},                                                             \
	        {mod,   "dlg_set_timeout_id", k_dlg_set_timeout,                 \
	         "iii", SCRIPT_RET_INT,       0,                                 \
	         0},                                                             \
	        {mod, "is_known_dlg", k_is_known_dlg, "", SCRIPT_RET_INT, 0, 0}, \
	        {mod, "dlg_setflag", flag_op, "i", SCRIPT_RET_INT, 0, 0},        \
	        {mod, "dlg_resetflag", flag_op, "i", SCRIPT_RET_INT, 0, 1},      \
	        {mod, "dlg_isflagset", flag_op, "i", SCRIPT_RET_INT, 0, 2},      \
	        {mod, "dlg_set_property", property_op, "s", SCRIPT_RET_INT, 0,   \
	         0},                                                             \
	        {mod, "dlg_reset_property", property_op, "s", SCRIPT_RET_INT, 0, \
	         1},                                                             \
	        {mod, "set_dlg_profile", k_set_profile, "s*", SCRIPT_RET_INT, 0, \
	         0},                                                             \
	        {mod,  "unset_dlg_profile", k_unset_profile,                     \
	         "s*", SCRIPT_RET_INT,      0,                                   \
	         0},                                                             \
	        {mod,     "dlg_remote_profile", k_dlg_remote_profile,            \
	         "ssssi", SCRIPT_RET_INT,       0,                               \
	         0},                                                             \
	        {mod, "is_in_profile", k_is_in_profile, "s*", SCRIPT_RET_INT, 0, \
	         0},                                                             \
	        {mod,  "get_profile_size", k_get_profile_size,                   \
	         "s*", SCRIPT_RET_INT,     0,                                    \
	         0},                                                             \
	        {mod,                                                            \
	         "dlg_set_timeout_by_profile",                                   \
	         k_set_timeout_by_profile,                                       \
	         "s*",                                                           \
	         SCRIPT_RET_INT,                                                 \
	         0,                                                              \
	         0},                                                             \
	        {mod, "profile_size", k_profile_size, "s*", SCRIPT_RET_INT, 0,   \
	         0},

static const struct script_export exports[] = {DLG_EXPORTS("ims_dialog")
                                                       DLG_EXPORTS("dialog")};

/* ------------------------------------------------------ pseudo-vars */

static int pv_dlg_count(struct script_call *c)
{
	long long active = 0;

	for (unsigned i = 0; i < dlg_nshards(); i++)
		active += dlg_shard_stats(dlg_shard_at(i))->active;
	script_ret_int(c, active);
	return 0;
}

/*
 * A string result of an operation that may run on the dialog's own shard:
 * copied into the message arena, so it outlives the operation (s may be
 * NULL: $null).
 */
static void ret_copy(struct script_call *c, const char *s)
{
	char *copy;

	if (s == NULL)
		return;
	copy = arena_strdup(c->ctx->arena, slice_cstr(s));
	if (copy)
		script_ret_str(c, slice_cstr(copy));
}

/* A pseudo-variable read from the current dialog ($null without one). */
static int pv_on_dialog(struct script_call *c, dlg_op_fn *op)
{
	if (c->ctx)
		dlg_on_current(c->ctx, op, c);
	return c->error ? -1 : 0;
}

static int dlg_status_op(struct dlg *d, void *arg)
{
	script_ret_int(arg, d->state);
	return 1;
}

static int pv_dlg_status(struct script_call *c)
{
	return pv_on_dialog(c, dlg_status_op);
}

static int dlg_lifetime_op(struct dlg *d, void *arg)
{
	script_ret_int(arg, d->start_ts ? time(NULL) - d->start_ts : 0);
	return 1;
}

static int pv_dlg_lifetime(struct script_call *c)
{
	return pv_on_dialog(c, dlg_lifetime_op);
}

/* The callee leg the attributes describe: the confirmed one, else the
 * newest early one. */
static const struct dlg_leg *cur_leg(const struct dlg *d)
{
	for (const struct dlg_leg *l = d->legs; l; l = l->next)
		if (l->state == LEG_CONFIRMED)
			return l;
	return d->legs;
}

/* Kamailio's dlg->dflags bits that mean something here. */
#define DFLAG_HASBYE    4  /* BYEs generated */
#define DFLAG_TOBYE     8  /* BYE both sides on timeout */
#define DFLAG_CALLERBYE 16 /* BYE generated towards the caller */
#define DFLAG_CALLEEBYE 32 /* BYE generated towards the callee */

static long long dflags_of(const struct dlg *d)
{
	long long f = 0;

	if (d->terminating)
		f |= DFLAG_HASBYE;
	if (d->timeout_bye)
		f |= DFLAG_TOBYE;
	for (const struct dlg_leg *l = d->legs; l; l = l->next) {
		if (l->bye_caller)
			f |= DFLAG_CALLERBYE;
		if (l->bye_callee)
			f |= DFLAG_CALLEEBYE;
	}
	return f;
}

/* $dlg(attr), the dialog module's attributes (§8.4). */
static int dlg_attr_op(struct dlg *d, void *arg)
{
	struct script_call *c = arg;
	struct slice a = c->pv_arg;
	const struct dlg_leg *l = cur_leg(d);
	const struct net_listener *sock = NULL;
	const char *s = NULL;

	if (slice_eq_cstr(a, "h_entry"))
		script_ret_int(c, d->h_entry);
	else if (slice_eq_cstr(a, "h_id"))
		script_ret_int(c, d->h_id);
	else if (slice_eq_cstr(a, "ref"))
		script_ret_int(c, (long long)d->refs + 1);
	else if (slice_eq_cstr(a, "state"))
		script_ret_int(c, d->state);
	else if (slice_eq_cstr(a, "dflags"))
		script_ret_int(c, dflags_of(d));
	else if (slice_eq_cstr(a, "sflags"))
		script_ret_int(c, d->sflags);
	else if (slice_eq_cstr(a, "lifetime"))
		script_ret_int(c, d->lifetime);
	else if (slice_eq_cstr(a, "start_ts"))
		script_ret_int(c, d->start_ts);
	else if (slice_eq_cstr(a, "from_cseq"))
		script_ret_int(c, l ? l->caller_cseq : d->first_cseq);
	else if (slice_eq_cstr(a, "to_cseq"))
		script_ret_int(c, l ? l->callee_cseq : 0);
	else if (slice_eq_cstr(a, "toroute"))
		s = d->timeout_route;
	else if (slice_eq_cstr(a, "callid"))
		s = d->callid;
	else if (slice_eq_cstr(a, "from_uri"))
		s = d->from_uri;
	else if (slice_eq_cstr(a, "from_tag"))
		s = d->from_tag;
	else if (slice_eq_cstr(a, "to_uri"))
		s = d->to_uri;
	else if (slice_eq_cstr(a, "to_tag"))
		s = l ? l->tag : NULL;
	else if (slice_eq_cstr(a, "from_contact"))
		s = d->caller_contact;
	else if (slice_eq_cstr(a, "to_contact"))
		s = l ? l->contact : NULL;
	else if (slice_eq_cstr(a, "from_rs"))
		s = d->caller_route_set;
	else if (slice_eq_cstr(a, "to_rs"))
		s = l ? l->route_set : NULL;
	else if (slice_eq_cstr(a, "from_bindaddr"))
		sock = d->caller_sock;
	else if (slice_eq_cstr(a, "to_bindaddr"))
		sock = l ? l->sock : NULL;
	else
		return script_call_error(c, "unknown $dlg attribute %.*s",
		                         SLICE_ARG(a));
	ret_copy(c, sock ? sock->name : s);
	return 1;
}

static int pv_dlg_attr(struct script_call *c)
{
	return pv_on_dialog(c, dlg_attr_op);
}

/* $dlg_var(key): strings; writing "" or unsetting removes (§8.2). Before
 * the dialog exists they wait in the message's context (§7.4). */
struct var_op {
	struct script_call *c;
	char key[128];
	const char *value; /* set: NUL-terminated, "" removes */
};

static int var_get_op(struct dlg *d, void *arg)
{
	struct var_op *o = arg;

	ret_copy(o->c, get_dlg_var(d, o->key));
	return 1;
}

static int var_set_op(struct dlg *d, void *arg)
{
	struct var_op *o = arg;

	return set_dlg_var(d, o->key, o->value) ? -1 : 1;
}

static struct dlg_pending_var **pending_var(struct dlg_msg_ctx *mc,
                                            const char *key)
{
	struct dlg_pending_var **pp = &mc->pending_vars;

	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0)
			break;
	return pp;
}

static int pv_dlg_var_get(struct script_call *c)
{
	struct var_op o = {.c = c};
	struct dlg_msg_ctx *mc;

	if (c->ctx == NULL)
		return 0;
	slice_copy_cstr(o.key, sizeof(o.key), c->pv_arg);
	if (dlg_is_known(c->ctx) > 0) {
		dlg_on_current(c->ctx, var_get_op, &o);
		return 0;
	}
	mc = c->ctx->dlg_ctx;
	if (mc && *pending_var(mc, o.key))
		script_ret_str(c, slice_cstr((*pending_var(mc, o.key))->value));
	return 0;
}

static int pv_dlg_var_set(struct script_call *c, const struct script_val *v)
{
	struct var_op o = {.c = c, .value = ""};
	struct dlg_msg_ctx *mc;
	struct arena *a;

	if (c->ctx == NULL)
		return ENOENT;
	if (v->type == SCRIPT_VAL_INT)
		return EINVAL; /* strings only, as in Kamailio */
	slice_copy_cstr(o.key, sizeof(o.key), c->pv_arg);
	a = c->ctx->arena;
	if (v->type == SCRIPT_VAL_STR &&
	    (o.value = arena_strdup(a, v->s)) == NULL)
		return ENOMEM;
	if (dlg_is_known(c->ctx) > 0)
		return dlg_on_current(c->ctx, var_set_op, &o) > 0 ? 0 : ENOMEM;
	if ((mc = dlg_msg_ctx(c->ctx)) == NULL)
		return ENOMEM;
	struct dlg_pending_var **pp = pending_var(mc, o.key);
	if (*o.value == '\0') {
		if (*pp)
			*pp = (*pp)->next;
		return 0;
	}
	if (*pp == NULL) {
		*pp = arena_alloc(a, sizeof(**pp));
		if (*pp == NULL ||
		    ((*pp)->key = arena_strdup(a, slice_cstr(o.key))) == NULL)
			return ENOMEM;
		(*pp)->next = NULL;
	}
	(*pp)->value = (char *)o.value;
	return 0;
}

/* $dlg_ctx(attr) (§8.5): the message's dialog context. timeout,
 * timeout_bye and timeout_route apply to the dialog created from this
 * message, or at once to the current dialog. */
enum ctx_attr {
	CTX_ON,
	CTX_FLAGS,
	CTX_TIMEOUT,
	CTX_TIMEOUT_BYE,
	CTX_TIMEOUT_ROUTE,
	CTX_TIMEOUT_ROUTE_ID,
	CTX_SET,
	CTX_DIR,
	CTX_UNKNOWN,
};

static enum ctx_attr ctx_attr_of(struct slice a)
{
	static const char *const names[CTX_UNKNOWN] = {
	        "on",          "flags",         "timeout",
	        "timeout_bye", "timeout_route", "timeout_route_id",
	        "set",         "dir",
	};

	for (int i = 0; i < CTX_UNKNOWN; i++)
		if (slice_eq_cstr(a, names[i]))
			return (enum ctx_attr)i;
	return CTX_UNKNOWN;
}

static int pv_dlg_ctx_get(struct script_call *c)
{
	struct dlg_msg_ctx *mc;
	enum ctx_attr at = ctx_attr_of(c->pv_arg);

	if (at == CTX_UNKNOWN)
		return script_call_error(c, "unknown $dlg_ctx attribute %.*s",
		                         SLICE_ARG(c->pv_arg));
	if (c->ctx == NULL || (mc = dlg_msg_ctx(c->ctx)) == NULL)
		return 0;
	switch (at) {
	case CTX_ON:
		script_ret_int(c, mc->attrs.on);
		break;
	case CTX_FLAGS:
		script_ret_int(c, mc->attrs.flags);
		break;
	case CTX_TIMEOUT:
		script_ret_int(c, mc->attrs.timeout);
		break;
	case CTX_TIMEOUT_BYE:
		script_ret_int(c, mc->attrs.timeout_bye < 0
		                          ? 1
		                          : mc->attrs.timeout_bye);
		break;
	case CTX_TIMEOUT_ROUTE:
		if (mc->attrs.timeout_route[0])
			script_ret_str(c, slice_cstr(mc->attrs.timeout_route));
		break;
	case CTX_SET:
		script_ret_int(c, dlg_is_known(c->ctx) > 0);
		break;
	case CTX_DIR:
		script_ret_int(c, dlg_is_known(c->ctx) <= 0 ? DLG_DIR_NONE
		                  : mc->downstream          ? DLG_DIR_DOWNSTREAM
		                                            : DLG_DIR_UPSTREAM);
		break;
	default: /* timeout_route_id: Lua functions have no index */
		break;
	}
	return 0;
}

static int ctx_apply_op(struct dlg *d, void *arg)
{
	const struct dlg_ctx_attrs *a = arg;

	if (a->timeout && dlg_set_lifetime(d, a->timeout) < 0)
		return -1;
	if (a->timeout_bye >= 0)
		d->timeout_bye = a->timeout_bye != 0;
	if (a->timeout_route[0]) {
		char *name = strdup(a->timeout_route);
		if (name == NULL)
			return -1;
		free(d->timeout_route);
		d->timeout_route = name;
	}
	return 1;
}

static int pv_dlg_ctx_set(struct script_call *c, const struct script_val *v)
{
	struct dlg_msg_ctx *mc;
	struct dlg_ctx_attrs *a;
	enum ctx_attr at = ctx_attr_of(c->pv_arg);
	long long n = v->type == SCRIPT_VAL_INT ? v->i : 0;

	if (at == CTX_UNKNOWN || at == CTX_TIMEOUT_ROUTE_ID)
		return script_call_error(c, "$dlg_ctx(%.*s) cannot be set",
		                         SLICE_ARG(c->pv_arg));
	if (c->ctx == NULL || (mc = dlg_msg_ctx(c->ctx)) == NULL)
		return ENOENT;
	a = &mc->attrs;
	if (at == CTX_TIMEOUT_ROUTE) {
		if (v->type != SCRIPT_VAL_NULL &&
		    (v->type != SCRIPT_VAL_STR ||
		     v->s.len >= sizeof(a->timeout_route)))
			return EINVAL;
		slice_copy_cstr(a->timeout_route, sizeof(a->timeout_route),
		                v->type == SCRIPT_VAL_STR ? v->s : SLICE_NULL);
	} else if (v->type != SCRIPT_VAL_INT || n < 0 || n > UINT32_MAX) {
		return EINVAL;
	} else if (at == CTX_FLAGS) {
		a->flags = (uint32_t)n;
	} else if (at == CTX_TIMEOUT) {
		a->timeout = (unsigned)n;
	} else if (at == CTX_TIMEOUT_BYE) {
		a->timeout_bye = n != 0;
	} else { /* on; set and dir write it, as in Kamailio */
		a->on = n;
	}
	if (dlg_is_known(c->ctx) > 0 &&
	    (at == CTX_TIMEOUT || at == CTX_TIMEOUT_BYE ||
	     at == CTX_TIMEOUT_ROUTE)) {
		struct dlg_ctx_attrs one = {.timeout_bye = -1};
		if (at == CTX_TIMEOUT)
			one.timeout = a->timeout;
		else if (at == CTX_TIMEOUT_BYE)
			one.timeout_bye = a->timeout_bye;
		else
			memcpy(one.timeout_route, a->timeout_route,
			       sizeof(one.timeout_route));
		if (dlg_on_current(c->ctx, ctx_apply_op, &one) < 0)
			return EINVAL;
	}
	return 0;
}

/* $stat(name) for the dialog group, summed over shards (§10.2 names). */
static int pv_stat(struct script_call *c)
{
	long long sum = 0;
	struct slice n = c->pv_arg;

	for (unsigned i = 0; i < dlg_nshards(); i++) {
		const struct dlg_stats *st = dlg_shard_stats(dlg_shard_at(i));
		if (slice_eq_cstr(n, "active_dialogs"))
			sum += st->active;
		else if (slice_eq_cstr(n, "early_dialogs"))
			sum += st->early;
		else if (slice_eq_cstr(n, "processed_dialogs"))
			sum += (long long)st->processed;
		else if (slice_eq_cstr(n, "expired_dialogs"))
			sum += (long long)st->expired;
		else if (slice_eq_cstr(n, "failed_dialogs"))
			sum += (long long)st->failed;
		else if (slice_eq_cstr(n, "refused_dialogs"))
			sum += (long long)st->refused;
		else
			return script_call_error(c, "unknown statistic %.*s",
			                         SLICE_ARG(n));
	}
	script_ret_int(c, sum);
	return 0;
}

int dlg_register_script(void)
{
	int err = script_register_exports(exports,
	                                  sizeof(exports) / sizeof(exports[0]));

	if (err == 0)
		err = script_register_pv("DLG_count", false, pv_dlg_count,
		                         NULL);
	if (err == 0)
		err = script_register_pv("DLG_status", false, pv_dlg_status,
		                         NULL);
	if (err == 0)
		err = script_register_pv("DLG_lifetime", false, pv_dlg_lifetime,
		                         NULL);
	if (err == 0)
		err = script_register_pv("dlg", true, pv_dlg_attr, NULL);
	if (err == 0)
		err = script_register_pv("dlg_var", true, pv_dlg_var_get,
		                         pv_dlg_var_set);
	if (err == 0)
		err = script_register_pv("dlg_ctx", true, pv_dlg_ctx_get,
		                         pv_dlg_ctx_set);
	if (err == 0)
		err = script_register_pv("stat", true, pv_stat, NULL);
	return err;
}
