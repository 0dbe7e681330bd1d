/*
 * Metrics the script declares and moves, as Kamailio's xhttp_prom has
 * them: modparam("xhttp_prom", "prom_counter" / "prom_gauge" /
 * "prom_histogram", "name=N;label=a:b;buckets=..."), moved by
 * KSR.xhttp_prom.counter_inc_l0 ... histogram_observe_l3, and shown on
 * GET /metrics after the statistics (mgmt.h, "script metrics").
 *
 * A metric is declared at start-up with up to PROM_LABELS_MAX label names;
 * each combination of values the script gives them is a series, made on
 * first use. Workers move series from their threads and the management
 * thread reads them at a scrape: one mutex per metric, held for a lookup
 * and an addition (script calls are few next to the messages). A series
 * not moved for xhttp_prom_timeout minutes is dropped at a scrape, as
 * Kamailio drops it, so that label values that come and go do not pile up;
 * PROM_SERIES_MAX bounds a metric whatever the script does.
 */
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mgmt/mgmt_int.h"

#define PROM_METRICS_MAX  64
#define PROM_SERIES_MAX   10000
#define PROM_BUCKETS_MAX  32
#define PROM_IDENT_MAX    64
#define PROM_SERIES_SLOTS 256

struct prom_series {
	struct prom_series *next; /* in its slot */
	uint64_t used_at;         /* ms, CLOCK_MONOTONIC */
	char *values[PROM_LABELS_MAX];
	double value;         /* counter, gauge; a histogram's sum */
	uint64_t count;       /* a histogram's observations ... */
	uint64_t in_bucket[]; /* ... and those <= each bucket's bound */
};

struct prom_metric {
	char name[PROM_IDENT_MAX];
	enum prom_kind kind;
	unsigned nlabels;
	char labels[PROM_LABELS_MAX][PROM_IDENT_MAX];
	unsigned nbuckets;
	double buckets[PROM_BUCKETS_MAX]; /* increasing */
	pthread_mutex_t mx;
	struct prom_series *slots[PROM_SERIES_SLOTS];
	size_t nseries;
	bool full_logged; /* PROM_SERIES_MAX reached, said once */
};

/* Global: declared at start-up, before any worker runs, then only their
 * series change (under each metric's mutex). */
static struct prom_metric metrics[PROM_METRICS_MAX];
static size_t nmetrics;
static uint64_t series_timeout_ms = 60 * 60000;

/* Prometheus' default buckets, Kamailio's too. */
static const double default_buckets[] = {.005, .01, .025, .05, .1, .25,
                                         .5,   1,   2.5,  5,   10};

static const char *const kind_names[] = {"prom_counter", "prom_gauge",
                                         "prom_histogram"};

/* The statistics' families on /metrics are <prefix><group>_<name> (and
 * process_*): a metric of the script must not take one of their names,
 * or the page would hold a family twice. */
static const char *const reserved[] = {"core_",   "tmx_",    "sl_",
                                       "tcp_",    "dns_",    "shard_",
                                       "dialog_", "process_"};

static bool reserved_name(struct slice name)
{
	for (size_t i = 0; i < sizeof(reserved) / sizeof(*reserved); i++) {
		size_t n = strlen(reserved[i]);
		if (name.len >= n && memcmp(name.p, reserved[i], n) == 0)
			return true;
	}
	return false;
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* [A-Za-z_][A-Za-z0-9_]*, shorter than PROM_IDENT_MAX */
static bool ident_ok(struct slice s)
{
	if (s.len == 0 || s.len >= PROM_IDENT_MAX ||
	    (s.p[0] >= '0' && s.p[0] <= '9'))
		return false;
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];
		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return true;
}

static void copy_ident(char dst[PROM_IDENT_MAX], struct slice s)
{
	memcpy(dst, s.p, s.len);
	dst[s.len] = '\0';
}

/* A number of the whole slice (strtod's syntax, finite). */
static bool parse_double(double *out, struct slice s)
{
	char buf[64], *end;

	if (s.len == 0 || s.len >= sizeof(buf))
		return false;
	memcpy(buf, s.p, s.len);
	buf[s.len] = '\0';
	*out = strtod(buf, &end);
	return *end == '\0' && isfinite(*out);
}

/* The next field of s up to sep (s advanced past it). */
static struct slice next_field(struct slice *s, char sep)
{
	const char *end = memchr(s->p, sep, s->len);
	size_t n = end ? (size_t)(end - s->p) : s->len;
	struct slice f = slice_make(s->p, n);

	s->p += n + (end != NULL);
	s->len -= n + (end != NULL);
	return f;
}

/*
 * "name=N;label=a:b:c;buckets=0.1:1:10" (Kamailio's form; label and
 * buckets optional, buckets for histograms only) into m. NULL, or why it
 * is not acceptable.
 */
static const char *parse_spec(struct prom_metric *m, enum prom_kind kind,
                              const char *spec)
{
	struct slice rest = slice_cstr(spec);
	bool named = false, bounded = false;

	memset(m, 0, sizeof(*m));
	m->kind = kind;
	while (rest.len > 0) {
		struct slice field = next_field(&rest, ';');
		struct slice key = next_field(&field, '=');

		if (key.len == 0 && field.len == 0)
			continue; /* ";;" or a final ';' */
		if (slice_eq_cstr(key, "name")) {
			if (!ident_ok(field))
				return "name must be [A-Za-z_][A-Za-z0-9_]*, "
				       "up to 63 characters";
			if (reserved_name(field))
				return "name must not start with core_, tmx_, "
				       "sl_, tcp_, dns_, shard_, dialog_ or "
				       "process_ (the statistics' names)";
			copy_ident(m->name, field);
			named = true;
		} else if (slice_eq_cstr(key, "label")) {
			while (field.len > 0) {
				struct slice l = next_field(&field, ':');
				if (m->nlabels == PROM_LABELS_MAX)
					return "at most 3 labels";
				if (!ident_ok(l) || (kind == PROM_HISTOGRAM &&
				                     slice_eq_cstr(l, "le")))
					return "a label name must be "
					       "[A-Za-z_][A-Za-z0-9_]* (not "
					       "\"le\" in a histogram)";
				copy_ident(m->labels[m->nlabels++], l);
			}
		} else if (slice_eq_cstr(key, "buckets") &&
		           kind == PROM_HISTOGRAM) {
			while (field.len > 0) {
				struct slice b = next_field(&field, ':');
				double v;
				if (m->nbuckets == PROM_BUCKETS_MAX)
					return "at most 32 buckets";
				if (!parse_double(&v, b) ||
				    (m->nbuckets > 0 &&
				     v <= m->buckets[m->nbuckets - 1]))
					return "buckets must be increasing "
					       "numbers separated by ':'";
				m->buckets[m->nbuckets++] = v;
			}
			bounded = m->nbuckets > 0;
		} else {
			return kind == PROM_HISTOGRAM
			               ? "expected name=...;label=a:b;"
			                 "buckets=0.1:1"
			               : "expected name=...;label=a:b";
		}
	}
	if (!named)
		return "no name=";
	if (kind == PROM_HISTOGRAM && !bounded) {
		m->nbuckets =
		        sizeof(default_buckets) / sizeof(*default_buckets);
		memcpy(m->buckets, default_buckets, sizeof(default_buckets));
	}
	return NULL;
}

const char *prom_spec_check(enum prom_kind kind, const char *spec)
{
	struct prom_metric m;

	return parse_spec(&m, kind, spec);
}

int prom_declare(enum prom_kind kind, const char *spec, const char **why)
{
	struct prom_metric *m;

	if (nmetrics == PROM_METRICS_MAX) {
		*why = "too many metrics (at most 64)";
		return ENOSPC;
	}
	m = &metrics[nmetrics];
	*why = parse_spec(m, kind, spec);
	if (*why)
		return EINVAL;
	for (size_t i = 0; i < nmetrics; i++)
		if (strcmp(metrics[i].name, m->name) == 0) {
			*why = "a metric of that name is declared already";
			return EEXIST;
		}
	pthread_mutex_init(&m->mx, NULL);
	nmetrics++;
	return 0;
}

void prom_set_timeout(unsigned minutes)
{
	series_timeout_ms = (uint64_t)minutes * 60000;
}

/* -------------------------------------------------------------- series */

static struct prom_metric *find_metric(struct slice name, enum prom_kind kind,
                                       unsigned nlabels)
{
	for (size_t i = 0; i < nmetrics; i++) {
		struct prom_metric *m = &metrics[i];
		if (slice_eq_cstr(name, m->name)) {
			if (m->kind != kind || m->nlabels != nlabels) {
				LOG_ERR("xhttp_prom: %s is a %s of %u labels",
				        m->name, kind_names[m->kind] + 5,
				        m->nlabels);
				return NULL;
			}
			return m;
		}
	}
	LOG_ERR("xhttp_prom: no metric %.*s (modparam %s)", SLICE_ARG(name),
	        kind_names[kind]);
	return NULL;
}

static unsigned series_slot(const struct slice *values, unsigned n)
{
	uint64_t h = 0;

	for (unsigned i = 0; i < n; i++)
		h = h * 0x100000001b3ull ^
		    hash_bytes(values[i].p, values[i].len);
	return (unsigned)(h % PROM_SERIES_SLOTS);
}

static bool series_is(const struct prom_series *s, const struct slice *values,
                      unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (!slice_eq_cstr(values[i], s->values[i]))
			return false;
	return true;
}

/* The series of these label values, made if new; NULL when full or out of
 * memory. Under m->mx. */
static struct prom_series *series_get(struct prom_metric *m,
                                      const struct slice *values)
{
	unsigned slot = series_slot(values, m->nlabels);
	size_t head, text = 0;
	struct prom_series *s;
	char *p;

	for (s = m->slots[slot]; s; s = s->next)
		if (series_is(s, values, m->nlabels))
			return s;
	if (m->nseries == PROM_SERIES_MAX) {
		if (!m->full_logged)
			LOG_ERR("xhttp_prom: %s has %d series, no more is "
			        "made",
			        m->name, PROM_SERIES_MAX);
		m->full_logged = true;
		return NULL;
	}
	head = sizeof(*s) + (m->kind == PROM_HISTOGRAM
	                             ? m->nbuckets * sizeof(s->in_bucket[0])
	                             : 0);
	for (unsigned i = 0; i < m->nlabels; i++)
		text += values[i].len + 1;
	s = calloc(1, head + text);
	if (s == NULL)
		return NULL;
	p = (char *)s + head;
	for (unsigned i = 0; i < m->nlabels; i++) {
		memcpy(p, values[i].p, values[i].len);
		p[values[i].len] = '\0';
		s->values[i] = p;
		p += values[i].len + 1;
	}
	s->next = m->slots[slot];
	m->slots[slot] = s;
	m->nseries++;
	return s;
}

enum prom_op { OP_ADD, OP_SET, OP_OBSERVE };

static int update(struct slice name, enum prom_kind kind,
                  const struct slice *labels, unsigned nlabels, enum prom_op op,
                  double v)
{
	struct prom_metric *m = find_metric(name, kind, nlabels);
	struct prom_series *s;

	if (m == NULL)
		return -1;
	pthread_mutex_lock(&m->mx);
	s = series_get(m, labels);
	if (s != NULL) {
		s->used_at = now_ms();
		if (op == OP_ADD) {
			s->value += v;
		} else if (op == OP_SET) {
			s->value = v;
		} else {
			s->value += v;
			s->count++;
			for (unsigned i = 0; i < m->nbuckets; i++)
				s->in_bucket[i] += v <= m->buckets[i];
		}
	}
	pthread_mutex_unlock(&m->mx);
	return s ? 1 : -1;
}

int prom_counter_inc(struct slice name, int64_t n, const struct slice *labels,
                     unsigned nlabels)
{
	if (n < 0) {
		LOG_ERR("xhttp_prom: counter %.*s cannot go down (%lld)",
		        SLICE_ARG(name), (long long)n);
		return -1;
	}
	return update(name, PROM_COUNTER, labels, nlabels, OP_ADD, (double)n);
}

int prom_reset(struct slice name, enum prom_kind kind,
               const struct slice *labels, unsigned nlabels)
{
	return update(name, kind, labels, nlabels, OP_SET, 0);
}

int prom_value(enum prom_kind kind, struct slice name, struct slice value,
               const struct slice *labels, unsigned nlabels)
{
	double v;

	if (kind == PROM_COUNTER || !parse_double(&v, value)) {
		LOG_ERR("xhttp_prom: %s %.*s: not a number: \"%.*s\"",
		        kind_names[kind] + 5, SLICE_ARG(name),
		        SLICE_ARG(value));
		return -1;
	}
	return update(name, kind, labels, nlabels,
	              kind == PROM_GAUGE ? OP_SET : OP_OBSERVE, v);
}

/* -------------------------------------------------------------- scrape */

/* Drops the series of m not moved for the timeout. Under m->mx. */
static void expire(struct prom_metric *m, uint64_t now)
{
	if (series_timeout_ms == 0)
		return;
	for (unsigned i = 0; i < PROM_SERIES_SLOTS; i++) {
		struct prom_series **pp = &m->slots[i];
		while (*pp) {
			struct prom_series *s = *pp;
			if (now - s->used_at < series_timeout_ms) {
				pp = &s->next;
				continue;
			}
			*pp = s->next;
			free(s);
			m->nseries--;
		}
	}
}

/* The shortest text that reads back as v: 0.1, not 0.10000000000000001. */
static void write_number(char *dst, size_t size, double v)
{
	snprintf(dst, size, "%.15g", v);
	if (strtod(dst, NULL) != v)
		snprintf(dst, size, "%.17g", v);
}

static void write_series(struct metrics_out *out, const struct prom_metric *m,
                         const struct prom_series *s)
{
	const char *pairs[2 * (PROM_LABELS_MAX + 1)];
	char value[40], le[40];
	unsigned n = 0;

	for (; n < m->nlabels; n++) {
		pairs[2 * n] = m->labels[n];
		pairs[2 * n + 1] = s->values[n];
	}
	if (m->kind != PROM_HISTOGRAM) {
		write_number(value, sizeof(value), s->value);
		metrics_sample_text(out, "", pairs, n, value);
		return;
	}
	pairs[2 * n] = "le";
	pairs[2 * n + 1] = le;
	for (unsigned i = 0; i < m->nbuckets; i++) {
		write_number(le, sizeof(le), m->buckets[i]);
		snprintf(value, sizeof(value), "%llu",
		         (unsigned long long)s->in_bucket[i]);
		metrics_sample_text(out, "_bucket", pairs, n + 1, value);
	}
	snprintf(le, sizeof(le), "+Inf");
	snprintf(value, sizeof(value), "%llu", (unsigned long long)s->count);
	metrics_sample_text(out, "_bucket", pairs, n + 1, value);
	write_number(value, sizeof(value), s->value);
	metrics_sample_text(out, "_sum", pairs, n, value);
	snprintf(value, sizeof(value), "%llu", (unsigned long long)s->count);
	metrics_sample_text(out, "_count", pairs, n, value);
}

static void write_metrics(struct metrics_out *out, void *arg)
{
	static const enum stat_kind stat_kinds[] = {STAT_COUNTER, STAT_GAUGE,
	                                            STAT_HISTOGRAM};
	uint64_t now = now_ms();

	(void)arg;
	for (size_t i = 0; i < nmetrics; i++) {
		struct prom_metric *m = &metrics[i];

		metrics_family(out, m->name, stat_kinds[m->kind],
		               "Defined by the configuration (modparam "
		               "xhttp_prom), moved by the script");
		pthread_mutex_lock(&m->mx);
		expire(m, now);
		for (unsigned k = 0; k < PROM_SERIES_SLOTS; k++)
			for (const struct prom_series *s = m->slots[k]; s;
			     s = s->next)
				write_series(out, m, s);
		pthread_mutex_unlock(&m->mx);
	}
}

/* ----------------------------------------------------------------- rpc */

/*
 * Kamailio's xhttp_prom.* methods: NAME, for counter_inc and gauge_set a
 * NUMBER, then 0 to 3 label values; an empty result, or fault 500 (what
 * the KEMI function would log is logged).
 */
static bool rpc_metric(struct rpc_ctx *ctx, unsigned values_from,
                       struct slice *name, struct slice *labels,
                       unsigned *nlabels)
{
	const char *s;
	size_t n = rpc_param_count(ctx);

	if (rpc_param_str(ctx, 0, NULL, &s))
		return false;
	*name = slice_cstr(s);
	*nlabels = 0;
	for (unsigned i = values_from; i < n; i++) {
		if (*nlabels == PROM_LABELS_MAX) {
			rpc_fault(ctx, 400, "At most %d label values",
			          PROM_LABELS_MAX);
			return false;
		}
		if (rpc_param_str(ctx, i, NULL, &s))
			return false;
		labels[(*nlabels)++] = slice_cstr(s);
	}
	return true;
}

static void rpc_result(struct rpc_ctx *ctx, int rc, const char *what,
                       struct slice name)
{
	if (rc < 0)
		rpc_fault(ctx, 500, "Failed to %s: %.*s (see the log)", what,
		          SLICE_ARG(name));
}

static void rpc_counter_inc(struct rpc_ctx *ctx)
{
	struct slice name, labels[PROM_LABELS_MAX];
	unsigned n;
	long long v;

	if (rpc_param_int(ctx, 1, NULL, &v) ||
	    !rpc_metric(ctx, 2, &name, labels, &n))
		return;
	rpc_result(ctx, prom_counter_inc(name, v, labels, n), "add to counter",
	           name);
}

static void rpc_reset(struct rpc_ctx *ctx, enum prom_kind kind)
{
	struct slice name, labels[PROM_LABELS_MAX];
	unsigned n;

	if (rpc_metric(ctx, 1, &name, labels, &n))
		rpc_result(ctx, prom_reset(name, kind, labels, n), "reset",
		           name);
}

static void rpc_counter_reset(struct rpc_ctx *ctx)
{
	rpc_reset(ctx, PROM_COUNTER);
}

static void rpc_gauge_reset(struct rpc_ctx *ctx)
{
	rpc_reset(ctx, PROM_GAUGE);
}

static void rpc_gauge_set(struct rpc_ctx *ctx)
{
	struct slice name, labels[PROM_LABELS_MAX];
	const char *v;
	unsigned n;

	if (rpc_param_str(ctx, 1, NULL, &v) ||
	    !rpc_metric(ctx, 2, &name, labels, &n))
		return;
	rpc_result(ctx, prom_value(PROM_GAUGE, name, slice_cstr(v), labels, n),
	           "set gauge", name);
}

static const struct rpc_method prom_methods[] = {
        {"xhttp_prom.counter_inc", rpc_counter_inc,
         "Adds NUMBER (0 or more) to the series of counter NAME with the "
         "label values that follow"},
        {"xhttp_prom.counter_reset", rpc_counter_reset,
         "Sets the series of counter NAME with the label values that "
         "follow to 0"},
        {"xhttp_prom.gauge_set", rpc_gauge_set,
         "Sets the series of gauge NAME with the label values that follow "
         "to NUMBER"},
        {"xhttp_prom.gauge_reset", rpc_gauge_reset,
         "Sets the series of gauge NAME with the label values that follow "
         "to 0"},
};

int prom_register(void)
{
	int err = rpc_register(prom_methods,
	                       sizeof(prom_methods) / sizeof(prom_methods[0]));

	if (err == 0 && nmetrics)
		err = metrics_register(write_metrics, NULL);
	return err;
}
