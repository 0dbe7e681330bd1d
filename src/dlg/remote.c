/*
 * Remote profile members: dlg_remote_profile(cmd, profile, value, uid,
 * expires), Kamailio's way of counting in a profile the calls another
 * server handles (told by SIP or RPC and passed on by the script).
 *
 * A remote member is an item keyed by uid, the way a call is keyed by its
 * Call-ID: it lives on the shard the uid hashes to, touched only by that
 * worker (the script's call waits for it through rt_call), and holds a
 * profile set of its own, so that profile sizes count it with no other
 * change to profile.c. Its memberships carry no dialog: they are reported
 * with shard PROFILE_SHARD_REMOTE, which no walk for dialogs matches. An
 * item expires on its shard's timer wheel at its absolute time (0: never)
 * and goes when its last membership is removed.
 */
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "dlg/dlg_int.h"

/* Chains of items per shard: remote members are few next to calls. */
#define REMOTE_SLOTS 256

struct remote_item {
	struct remote_item *next; /* in its slot */
	struct dlg_shard *ds;
	struct profile_set set;
	struct tmr timer;
	size_t uid_len;
	char uid[];
};

static struct remote_item **slot_of(struct dlg_shard *ds, struct slice uid)
{
	return &ds->remote[dlg_core_hash(uid.p, uid.len) % REMOTE_SLOTS];
}

static struct remote_item **find(struct dlg_shard *ds, struct slice uid)
{
	struct remote_item **at = slot_of(ds, uid);

	while (*at && ((*at)->uid_len != uid.len ||
	               memcmp((*at)->uid, uid.p, uid.len) != 0))
		at = &(*at)->next;
	return at;
}

/* Unlinks *at and frees it with its memberships. */
static void item_free(struct remote_item **at)
{
	struct remote_item *it = *at;

	*at = it->next;
	tmr_cancel(dlg_wheel(it->ds), &it->timer);
	profile_clear(&it->set);
	free(it);
}

static void expired(struct tmr *t, void *arg)
{
	struct remote_item *it = arg;

	(void)t;
	LOG_DBG("dialog: remote profile member %.*s expired", (int)it->uid_len,
	        it->uid);
	item_free(find(it->ds, slice_make(it->uid, it->uid_len)));
}

/* The timer of it for the absolute time expires (0: none). */
static void arm(struct remote_item *it, time_t expires)
{
	struct twheel *w = dlg_wheel(it->ds);
	time_t now = time(NULL);

	tmr_cancel(w, &it->timer);
	if (expires == 0)
		return;
	tmr_start_coarse(w, &it->timer,
	                 expires > now ? (uint64_t)(expires - now) * 1000 : 0,
	                 expired, it);
}

struct remote_op {
	bool add;
	const struct profile *p;
	struct slice value, uid;
	time_t expires;
	int ret;
};

static void remote_add(struct dlg_shard *ds, struct remote_op *o)
{
	struct remote_item **at = find(ds, o->uid), *it = *at;

	if (it == NULL) {
		it = calloc(1, sizeof(*it) + o->uid.len);
		if (it == NULL)
			return;
		it->ds = ds;
		profile_set_init(&it->set);
		tmr_init(&it->timer);
		it->uid_len = o->uid.len;
		memcpy(it->uid, o->uid.p, o->uid.len);
		*at = it;
	}
	if (profile_add(&it->set, o->p, o->value, it, PROFILE_SHARD_REMOTE)) {
		if (profile_set_count(&it->set) == 0)
			item_free(at);
		return;
	}
	/* The latest word on the item sets when it ends. */
	arm(it, o->expires);
	o->ret = 1;
}

static void remote_remove(struct dlg_shard *ds, struct remote_op *o)
{
	struct remote_item **at = find(ds, o->uid);

	if (*at == NULL || profile_remove(&(*at)->set, o->p, o->value))
		return;
	if (profile_set_count(&(*at)->set) == 0)
		item_free(at);
	o->ret = 1;
}

static void remote_op_run(struct worker *w, void *arg)
{
	struct remote_op *o = arg;
	struct dlg_shard *ds = dlg_shard_at(worker_id(w));

	if (ds == NULL)
		return;
	if (ds->remote == NULL &&
	    (!o->add ||
	     (ds->remote = calloc(REMOTE_SLOTS, sizeof(*ds->remote))) == NULL))
		return;
	if (o->add)
		remote_add(ds, o);
	else
		remote_remove(ds, o);
}

int dlg_remote_profile(struct tm_ctx *ctx, struct slice cmd,
                       const struct profile *p, struct slice value,
                       struct slice uid, long long expires)
{
	struct remote_op o = {slice_eq_cstr(cmd, "add"), p, value, uid,
	                      (time_t)expires,           -1};

	if ((!o.add && !slice_eq_cstr(cmd, "rm")) || uid.len == 0 ||
	    expires < 0 || (o.add && profile_has_value(p) && value.len == 0) ||
	    (o.add && expires != 0 && expires <= time(NULL))) {
		LOG_ERR("dialog: dlg_remote_profile(%.*s, %s, %.*s, %.*s, "
		        "%lld): "
		        "add or rm, a uid, a value for a profile with values, "
		        "and an expiry time to come (or 0: none)",
		        SLICE_ARG(cmd), profile_name(p), SLICE_ARG(value),
		        SLICE_ARG(uid), expires);
		return -1;
	}
	if (dlg_run_on_owner(ctx, uid, remote_op_run, &o))
		return -1;
	return o.ret;
}

void dlg_remote_free(struct dlg_shard *ds)
{
	for (unsigned i = 0; ds->remote && i < REMOTE_SLOTS; i++)
		while (ds->remote[i])
			item_free(&ds->remote[i]);
	free(ds->remote);
	ds->remote = NULL;
}
