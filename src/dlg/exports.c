/*
 * The dialog engine seen from the script: KSR.ims_dialog.* (and the same
 * functions as KSR.dialog.*, since users copy examples that use it) and
 * the $DLG_* / $dlg(...) pseudo-variables.
 */
#include <errno.h>
#include <stdio.h>
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

static int k_dlg_set_timeout(struct script_call *c)
{
	long long secs = c->args[0].i;

	return secs > 0 ? dlg_set_timeout_ctx(c->ctx, (unsigned)secs) : -1;
}

static int k_is_known_dlg(struct script_call *c)
{
	return dlg_is_known(c->ctx);
}

static int flag_op(struct script_call *c)
{
	struct dlg *d = dlg_current(c->ctx);
	long long f = c->args[0].i;

	if (d == NULL || f < 0 || f > 31)
		return -1;
	switch (c->exp->arg) {
	case 0:
		d->sflags |= 1u << f;
		return 1;
	case 1:
		d->sflags &= ~(1u << f);
		return 1;
	default:
		return (d->sflags >> f) & 1u ? 1 : -1;
	}
}

/* ---------------------------------------------------------- profiles */

static const struct profile *profile_arg(struct script_call *c,
                                         struct dlg_shard *ds)
{
	struct slice name = arg_str(c, 0);
	const struct profile *p =
	        ds && ds->cfg->profiles ? profile_find(ds->cfg->profiles, name)
	                                : NULL;

	if (p == NULL)
		LOG_ERR("dialog: profile \"%.*s\" is not defined",
		        SLICE_ARG(name));
	return p;
}

/* KEMI passes "" for "no value" (§15): an empty string is no value. */
static int k_set_profile(struct script_call *c)
{
	struct dlg_shard *ds = dlg_shard_of(c->ctx);
	const struct profile *p = profile_arg(c, ds);
	struct slice v = arg_str(c, 1);
	struct dlg *d = dlg_current(c->ctx);
	struct dlg_msg_ctx *mc;

	if (p == NULL || (profile_has_value(p) && v.len == 0))
		return -1;
	if (d)
		return profile_add(&d->profiles, p, v, d, ds->shard_id) ? -1
		                                                        : 1;
	/* Before the dialog exists: kept for its creation (§7.4). */
	mc = dlg_msg_ctx(c->ctx);
	if (mc == NULL || mc->npending == DLG_PENDING_PROFILES ||
	    c->ctx->route != TM_ROUTE_REQUEST)
		return -1;
	char *copy = arena_strdup(c->ctx->arena, v);
	mc->pending[mc->npending].p = p;
	mc->pending[mc->npending].value =
	        copy ? slice_make(copy, v.len) : SLICE_NULL;
	mc->npending++;
	return 1;
}

static int k_unset_profile(struct script_call *c)
{
	const struct profile *p = profile_arg(c, dlg_shard_of(c->ctx));
	struct dlg *d = dlg_current(c->ctx);

	if (p == NULL || d == NULL)
		return -1;
	return profile_remove(&d->profiles, p, arg_str(c, 1)) ? -1 : 1;
}

static int k_is_in_profile(struct script_call *c)
{
	const struct profile *p = profile_arg(c, dlg_shard_of(c->ctx));
	struct dlg *d = dlg_current(c->ctx);

	if (p == NULL || d == NULL)
		return -1;
	return profile_is_member(&d->profiles, p, arg_str(c, 1)) ? 1 : -1;
}

/* get_profile_size(p[, v][, "$var(n)"]): Kamailio stores the size in the
 * named variable and returns 1. */
static int k_get_profile_size(struct script_call *c)
{
	const struct profile *p = profile_arg(c, dlg_shard_of(c->ctx));
	struct script_val v;

	if (p == NULL)
		return -1;
	v.type = SCRIPT_VAL_INT;
	v.i = (long long)profile_size(p, arg_str(c, 1));
	if (c->nargs >= 3 && arg_str(c, 2).len)
		return script_pv_write(c, arg_str(c, 2), &v);
	return 1;
}

/* profile_size(p[, v]): the number itself. */
static int k_profile_size(struct script_call *c)
{
	const struct profile *p = profile_arg(c, dlg_shard_of(c->ctx));

	return p ? (int)profile_size(p, arg_str(c, 1)) : -1;
}

/* One list of functions, registered under both module names. */
#define DLG_EXPORTS(mod)                                                         \
	{mod, "dlg_manage", k_dlg_manage, "", SCRIPT_RET_INT, 0, 0},             \
	        {mod, "dlg_terminate", k_dlg_terminate, "s*", SCRIPT_RET_INT, 0, \
	         0},                                                             \
	        {mod, "dlg_set_timeout", k_dlg_set_timeout,                      \
	         "i", SCRIPT_RET_INT,    0,                                      \
	         0},                                                             \
	        {mod, "is_known_dlg", k_is_known_dlg, "", SCRIPT_RET_INT, 0, 0}, \
	        {mod, "dlg_setflag", flag_op, "i", SCRIPT_RET_INT, 0, 0},        \
	        {mod, "dlg_resetflag", flag_op, "i", SCRIPT_RET_INT, 0, 1},      \
	        {mod, "dlg_isflagset", flag_op, "i", SCRIPT_RET_INT, 0, 2},      \
	        {mod, "set_dlg_profile", k_set_profile, "s*", SCRIPT_RET_INT, 0, \
	         0},                                                             \
	        {mod,  "unset_dlg_profile", k_unset_profile,                     \
	         "s*", SCRIPT_RET_INT,      0,                                   \
	         0},                                                             \
	        {mod, "is_in_profile", k_is_in_profile, "s*", SCRIPT_RET_INT, 0, \
	         0},                                                             \
	        {mod,  "get_profile_size", k_get_profile_size,                   \
	         "s*", SCRIPT_RET_INT,     0,                                    \
	         0},                                                             \
	        {mod, "profile_size", k_profile_size, "s*", SCRIPT_RET_INT, 0,   \
	         0},

static const struct script_export exports[] = {DLG_EXPORTS("ims_dialog")
                                                       DLG_EXPORTS("dialog")};

/* ------------------------------------------------------ pseudo-vars */

/* Every shard's statistics, for $DLG_count; set once at start-up. */
static struct dlg_shard *const *all_shards;
static unsigned nall_shards;

void dlg_set_all_shards(struct dlg_shard *const *shards, unsigned n)
{
	all_shards = shards;
	nall_shards = n;
}

static int pv_dlg_count(struct script_call *c)
{
	long long active = 0;

	for (unsigned i = 0; i < nall_shards; i++)
		active += dlg_shard_stats(all_shards[i])->active;
	script_ret_int(c, active);
	return 0;
}

static int pv_dlg_status(struct script_call *c)
{
	struct dlg *d = c->ctx ? dlg_current(c->ctx) : NULL;

	if (d)
		script_ret_int(c, d->state);
	return 0;
}

static int pv_dlg_lifetime(struct script_call *c)
{
	struct dlg *d = c->ctx ? dlg_current(c->ctx) : NULL;

	if (d)
		script_ret_int(c, d->start_ts ? time(NULL) - d->start_ts : 0);
	return 0;
}

static const char *leg_tag(const struct dlg *d)
{
	for (const struct dlg_leg *l = d->legs; l; l = l->next)
		if (l->state == LEG_CONFIRMED)
			return l->tag;
	return d->legs ? d->legs->tag : NULL;
}

/* $dlg(attr), the dialog module's attributes (§8.4). */
static int pv_dlg_attr(struct script_call *c)
{
	struct dlg *d = c->ctx ? dlg_current(c->ctx) : NULL;
	struct slice a = c->pv_arg;
	const char *s = NULL;

	if (d == NULL)
		return 0;
	if (slice_eq_cstr(a, "h_entry"))
		script_ret_int(c, d->h_entry);
	else if (slice_eq_cstr(a, "h_id"))
		script_ret_int(c, d->h_id);
	else if (slice_eq_cstr(a, "state"))
		script_ret_int(c, d->state);
	else if (slice_eq_cstr(a, "sflags"))
		script_ret_int(c, d->sflags);
	else if (slice_eq_cstr(a, "lifetime"))
		script_ret_int(c, d->lifetime);
	else if (slice_eq_cstr(a, "start_ts"))
		script_ret_int(c, d->start_ts);
	else if (slice_eq_cstr(a, "callid"))
		s = d->callid;
	else if (slice_eq_cstr(a, "from_uri"))
		s = d->from_uri;
	else if (slice_eq_cstr(a, "from_tag"))
		s = d->from_tag;
	else if (slice_eq_cstr(a, "to_uri"))
		s = d->to_uri;
	else if (slice_eq_cstr(a, "to_tag"))
		s = leg_tag(d);
	else if (slice_eq_cstr(a, "from_contact"))
		s = d->caller_contact;
	else if (slice_eq_cstr(a, "from_rs"))
		s = d->caller_route_set;
	else
		return script_call_error(c, "unknown $dlg attribute %.*s",
		                         SLICE_ARG(a));
	if (s)
		script_ret_str(c, slice_cstr(s));
	return 0;
}

/* $dlg_var(key): strings; writing "" or unsetting removes (§8.2). */
static int pv_dlg_var_get(struct script_call *c)
{
	struct dlg *d = c->ctx ? dlg_current(c->ctx) : NULL;
	char key[128];
	const char *v;

	if (d == NULL)
		return 0;
	slice_copy_cstr(key, sizeof(key), c->pv_arg);
	v = get_dlg_var(d, key);
	if (v)
		script_ret_str(c, slice_cstr(v));
	return 0;
}

static int pv_dlg_var_set(struct script_call *c, const struct script_val *v)
{
	struct dlg *d = c->ctx ? dlg_current(c->ctx) : NULL;
	char key[128], val[1024];

	if (d == NULL)
		return ENOENT;
	if (v->type == SCRIPT_VAL_INT)
		return EINVAL; /* strings only, as in Kamailio */
	slice_copy_cstr(key, sizeof(key), c->pv_arg);
	if (v->type == SCRIPT_VAL_NULL)
		val[0] = '\0';
	else
		slice_copy_cstr(val, sizeof(val), v->s);
	return set_dlg_var(d, key, val);
}

/* $stat(name) for the dialog group, summed over shards (§10.2 names). */
static int pv_stat(struct script_call *c)
{
	long long sum = 0;
	struct slice n = c->pv_arg;

	for (unsigned i = 0; i < nall_shards; i++) {
		const struct dlg_stats *st = dlg_shard_stats(all_shards[i]);
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
		err = script_register_pv("stat", true, pv_stat, NULL);
	return err;
}
