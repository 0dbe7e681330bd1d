/*
 * Dialog profile sizes on GET /metrics, for the profiles that
 * modparam("ims_dialog", "metrics_profiles") names:
 *
 *   <prefix>dialog_profile_size{profile="p",value=""}   every member of p
 *   <prefix>dialog_profile_size{profile="p",value="v"}  members with value v
 *
 * The value="" sample is what dlg.profile_get_size answers without a
 * value: all members (for a with-value profile, of every value), so that
 * it is there, 0 included, for every listed profile. A with-value profile
 * adds one sample per value that has members now, sorted. Summing over
 * value would count a with-value profile twice: select value="" or
 * value!="".
 *
 * This is the app's because the app builds the profile registry from the
 * configuration; sizes are exact and may be read from any thread
 * (profile.h), so the scrape reads them on the management thread and asks
 * no worker.
 */
#include <stdlib.h>
#include <string.h>

#include "app/app.h"
#include "dlg/profile.h"
#include "mgmt/mgmt.h"

struct value_count {
	char *value;
	size_t n;
};

struct values {
	struct value_count *v;
	size_t n, cap;
	bool failed;
};

/* Global: the profiles to show, set once at start-up. */
static const struct profile *const *shown;
static size_t nshown;

/* Under a profile lock: copies only. */
static void collect(struct slice value, size_t members, void *arg)
{
	struct values *vs = arg;
	char *copy;

	if (vs->failed)
		return;
	if (vs->n == vs->cap) {
		size_t cap = vs->cap ? vs->cap * 2 : 16;
		struct value_count *v = realloc(vs->v, cap * sizeof(*v));

		if (v == NULL) {
			vs->failed = true;
			return;
		}
		vs->v = v;
		vs->cap = cap;
	}
	copy = malloc(value.len + 1);
	if (copy == NULL) {
		vs->failed = true;
		return;
	}
	memcpy(copy, value.p, value.len);
	copy[value.len] = '\0';
	vs->v[vs->n].value = copy;
	vs->v[vs->n].n = members;
	vs->n++;
}

static int by_value(const void *a, const void *b)
{
	return strcmp(((const struct value_count *)a)->value,
	              ((const struct value_count *)b)->value);
}

static void profile_metrics(struct metrics_out *out, void *arg)
{
	(void)arg;
	metrics_family(out, "dialog_profile_size", STAT_GAUGE,
	               "Dialogs in a profile (value=\"\": all of them, as "
	               "dlg.profile_get_size without a value)");
	for (size_t i = 0; i < nshown; i++) {
		const struct profile *p = shown[i];
		const char *labels[4] = {"profile", profile_name(p), "value",
		                         ""};
		struct values vs = {0};

		metrics_sample(out, labels, 2,
		               (int64_t)profile_size(p, SLICE_NULL));
		profile_foreach_value(p, collect, &vs);
		if (vs.n > 1)
			qsort(vs.v, vs.n, sizeof(*vs.v), by_value);
		/* Out of memory: the totals stay right, values are left
		 * out rather than half listed. */
		for (size_t k = 0; k < vs.n && !vs.failed; k++) {
			labels[3] = vs.v[k].value;
			metrics_sample(out, labels, 2, (int64_t)vs.v[k].n);
		}
		for (size_t k = 0; k < vs.n; k++)
			free(vs.v[k].value);
		free(vs.v);
	}
}

int app_register_profile_metrics(const struct profile *const *profiles,
                                 size_t n)
{
	if (n == 0)
		return 0;
	shown = profiles;
	nshown = n;
	return metrics_register(profile_metrics, NULL);
}
