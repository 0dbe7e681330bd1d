/*
 * The dialog group of the statistics registry (mgmt.h): the names of
 * Kamailio's dialog module, written once as an X-macro that makes both
 * the registry's table and the function adding one shard's values. The
 * counters are per shard (struct dlg_stats) and summed by the registry on
 * each worker; stats.* and /metrics serve them from there.
 */
#include "dlg/dlg_int.h"
#include "mgmt/mgmt.h"

/* X(id, name, kind, help, value of const struct dlg_stats *st) */
#define DLG_STATS(X)                                                           \
	X(ACTIVE, "active_dialogs", STAT_GAUGE,                                \
	  "Dialogs answered and not ended (states 3 and 4)", st->active)       \
	X(EARLY, "early_dialogs", STAT_GAUGE,                                  \
	  "Dialogs with a provisional reply and no final one (state 2)",       \
	  st->early)                                                           \
	X(PROCESSED, "processed_dialogs", STAT_COUNTER, "Dialogs created",     \
	  st->processed)                                                       \
	X(EXPIRED, "expired_dialogs", STAT_COUNTER,                            \
	  "Answered dialogs ended by their lifetime (timeout)", st->expired)   \
	X(FAILED, "failed_dialogs", STAT_COUNTER,                              \
	  "Dialogs ended before an answer: a negative final reply, a "         \
	  "CANCEL or the early timeout",                                       \
	  st->failed)                                                          \
	X(REFUSED, "refused_dialogs", STAT_COUNTER,                            \
	  "New calls answered 503 by max_dialogs or max_memory", st->refused)

#define ID(id, name, kind, help, value)  ST_##id,
#define DEF(id, name, kind, help, value) {name, kind, STAT_SHARD, help},
#define ADD(id, name, kind, help, value) v[ST_##id] += (int64_t)(value);

enum { DLG_STATS(ID) ST_N };

static const struct stat_def dialog_defs[] = {DLG_STATS(DEF)};

/* On each worker: the shards are freed as their workers stop, which the
 * management thread may outlive for a moment. */
static void dialog_read(struct worker *w, int64_t *v, void *arg)
{
	struct dlg_shard *ds = dlg_rpc_shard(w);
	const struct dlg_stats *st;

	(void)arg;
	if (ds == NULL)
		return;
	st = dlg_shard_stats(ds);
	DLG_STATS(ADD)
}

static const struct stat_group dialog_group = {
        "dialog", dialog_defs, ST_N, dialog_read, NULL, NULL,
};

/* Called by dlg_register_rpc(): the group, not methods, since stats.*
 * serve every group and belong to mgmt. */
int dlg_register_stats_rpc(void)
{
	return stats_register(&dialog_group);
}
