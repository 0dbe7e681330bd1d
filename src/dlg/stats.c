/*
 * The dialog group of the statistics methods (stats.get_statistics,
 * stats.fetch, stats.fetchn) with Kamailio's names and reply shapes. The
 * counters are per shard (struct dlg_stats) and summed on each worker.
 */
#include <stdio.h>
#include <string.h>

#include "dlg/dlg_int.h"
#include "mgmt/mgmt.h"

enum stat_id { ST_ACTIVE, ST_EARLY, ST_PROCESSED, ST_EXPIRED, ST_FAILED, ST_N };

static const char *const stat_names[ST_N] = {
        "active_dialogs",  "early_dialogs",  "processed_dialogs",
        "expired_dialogs", "failed_dialogs",
};

/* Summed on each worker: the shards are freed as their workers stop,
 * which the management thread may outlive for a moment. */
static void stats_shard(struct worker *w, void *arg)
{
	long long *sum = arg;
	struct dlg_shard *ds = dlg_rpc_shard(w);
	const struct dlg_stats *st;

	if (ds == NULL)
		return;
	st = dlg_shard_stats(ds);
	sum[ST_ACTIVE] += st->active;
	sum[ST_EARLY] += st->early;
	sum[ST_PROCESSED] += (long long)st->processed;
	sum[ST_EXPIRED] += (long long)st->expired;
	sum[ST_FAILED] += (long long)st->failed;
}

enum stats_shape { SHAPE_LINES, SHAPE_STRINGS, SHAPE_NUMBERS };

/*
 * Kamailio's parameters: "all", a group ("dialog:") or statistic names
 * ("active_dialogs", or "dialog:active_dialogs"), any number of them. A
 * statistic asked for twice is reported once. Only the dialog group
 * exists here.
 */
static void stats_reply(struct rpc_ctx *ctx, enum stats_shape shape)
{
	bool want[ST_N] = {false};
	bool any = false;
	size_t n = rpc_param_count(ctx);
	const char *s;

	if (n == 0) {
		/* The fault of a missing first parameter. */
		rpc_param_str(ctx, 0, "statistics", &s);
		return;
	}
	for (unsigned i = 0; i < n; i++) {
		if (rpc_param_str(ctx, i, i == 0 ? "statistics" : NULL, &s))
			return;
		if (strcmp(s, "all") == 0 || strcmp(s, "dialog:") == 0) {
			for (int k = 0; k < ST_N; k++)
				want[k] = true;
			continue;
		}
		if (strncmp(s, "dialog:", 7) == 0)
			s += 7;
		for (int k = 0; k < ST_N; k++)
			if (strcmp(s, stat_names[k]) == 0)
				want[k] = true;
	}
	for (int k = 0; k < ST_N; k++)
		any = any || want[k];
	if (!any) {
		rpc_fault(ctx, 404, "Statistics Not Found");
		return;
	}
	long long sum[ST_N] = {0};
	if (rpc_for_each_shard(ctx, stats_shard, sum))
		return;
	struct rpc_node *arr =
	        shape == SHAPE_LINES ? rpc_add_array(ctx, NULL, NULL) : NULL;
	for (int k = 0; k < ST_N; k++) {
		if (!want[k])
			continue;
		long long v = sum[k];
		char key[64];
		snprintf(key, sizeof(key), "dialog.%s", stat_names[k]);
		switch (shape) {
		case SHAPE_LINES:
			rpc_add_strf(ctx, arr, NULL, "dialog:%s = %lld",
			             stat_names[k], v);
			break;
		case SHAPE_STRINGS:
			rpc_add_strf(ctx, NULL, key, "%lld", v);
			break;
		default:
			rpc_add_int(ctx, NULL, key, v);
			break;
		}
	}
}

static void rpc_get_statistics(struct rpc_ctx *ctx)
{
	stats_reply(ctx, SHAPE_LINES);
}

static void rpc_fetch(struct rpc_ctx *ctx)
{
	stats_reply(ctx, SHAPE_STRINGS);
}

static void rpc_fetchn(struct rpc_ctx *ctx)
{
	stats_reply(ctx, SHAPE_NUMBERS);
}

static const struct rpc_method stats_rpc[] = {
        {"stats.get_statistics", rpc_get_statistics,
         "Statistics as \"group:name = value\" lines: all, group: or names"},
        {"stats.fetch", rpc_fetch,
         "Statistics as {\"group.name\": \"value\"}: all, group: or names"},
        {"stats.fetchn", rpc_fetchn,
         "Statistics as {\"group.name\": value}: all, group: or names"},
};

int dlg_register_stats_rpc(void)
{
	return rpc_register(stats_rpc,
	                    sizeof(stats_rpc) / sizeof(stats_rpc[0]));
}
