/*
 * GET /metrics: the statistics registry in the Prometheus text exposition
 * format 0.0.4 (https://prometheus.io/docs/instrumenting/exposition_formats/),
 * then the labelled families of metrics_register(), then the process_*
 * metrics that Prometheus' own client libraries export (un-prefixed, so
 * that the usual process dashboards work).
 *
 * Each statistic is one family <prefix><group>_<name> with # HELP and
 * # TYPE, counter or gauge, and one sample without timestamp. The prefix
 * (metrics_prefix, default "imsdlg_") set to "kamailio_" gives the names
 * Kamailio's xhttp_prom exports for the same statistics.
 */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "mgmt/mgmt_int.h"

/* ------------------------------------------------------------ the text */

void prom_buf_fini(struct prom_buf *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void put(struct prom_buf *b, const char *s, size_t n)
{
	if (b->failed)
		return;
	if (b->len + n + 1 > b->cap) {
		size_t cap = b->cap ? b->cap : 4096;
		char *p;

		while (cap < b->len + n + 1)
			cap *= 2;
		p = realloc(b->p, cap);
		if (p == NULL) {
			prom_buf_fini(b);
			b->failed = true;
			return;
		}
		b->p = p;
		b->cap = cap;
	}
	memcpy(b->p + b->len, s, n);
	b->len += n;
	b->p[b->len] = '\0';
}

static void puts_(struct prom_buf *b, const char *s)
{
	put(b, s, strlen(s));
}

/* Length of the valid UTF-8 sequence at s (n bytes left), 0 if none
 * (overlong forms, surrogates and values past U+10FFFF are invalid). */
static size_t utf8_len(const unsigned char *s, size_t n)
{
	size_t len;
	unsigned cp;

	if (s[0] < 0x80)
		return 1;
	if (s[0] >= 0xc2 && s[0] <= 0xdf) {
		len = 2;
		cp = s[0] & 0x1f;
	} else if (s[0] >= 0xe0 && s[0] <= 0xef) {
		len = 3;
		cp = s[0] & 0x0f;
	} else if (s[0] >= 0xf0 && s[0] <= 0xf4) {
		len = 4;
		cp = s[0] & 0x07;
	} else {
		return 0;
	}
	if (n < len)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((s[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (s[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* s escaped for a label value (\\, \", \n) or, with help, for a HELP
 * line (\\, \n); invalid UTF-8 bytes become U+FFFD. */
static void put_escaped(struct prom_buf *b, const char *s, bool help)
{
	const unsigned char *p = (const unsigned char *)s;
	size_t n = strlen(s);

	while (n > 0) {
		size_t len = utf8_len(p, n);

		if (len == 0) {
			puts_(b, "\xef\xbf\xbd");
			len = 1;
		} else if (*p == '\\') {
			puts_(b, "\\\\");
		} else if (*p == '\n') {
			puts_(b, "\\n");
		} else if (*p == '"' && !help) {
			puts_(b, "\\\"");
		} else {
			put(b, (const char *)p, len);
		}
		p += len;
		n -= len;
	}
}

static size_t name_part(char *dst, size_t size, size_t at, const char *s)
{
	for (; s && *s && at + 1 < size; s++, at++) {
		char c = *s;
		bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		          (c >= '0' && c <= '9') || c == '_';

		dst[at] = ok ? c : '_';
	}
	return at;
}

size_t prom_name(char *dst, size_t size, const char *prefix, const char *group,
                 const char *name)
{
	const char *first = prefix && *prefix ? prefix
	                    : group && *group ? group
	                                      : name;
	size_t at = 0;

	if (size == 0)
		return 0;
	if (first && *first >= '0' && *first <= '9' && size > 1)
		dst[at++] = '_';
	at = name_part(dst, size, at, prefix);
	if (group != NULL) {
		at = name_part(dst, size, at, group);
		at = name_part(dst, size, at, "_");
	}
	at = name_part(dst, size, at, name);
	dst[at] = '\0';
	return at;
}

void prom_family(struct prom_buf *b, const char *name, enum stat_kind kind,
                 const char *help)
{
	puts_(b, "# HELP ");
	puts_(b, name);
	puts_(b, " ");
	put_escaped(b, help ? help : "", true);
	puts_(b, "\n# TYPE ");
	puts_(b, name);
	puts_(b, kind == STAT_COUNTER ? " counter\n"
	         : kind == STAT_GAUGE ? " gauge\n"
	                              : " histogram\n");
}

void prom_sample(struct prom_buf *b, const char *name,
                 const char *const *labels, size_t npairs, const char *value)
{
	puts_(b, name);
	for (size_t i = 0; i < npairs; i++) {
		char lname[PROM_NAME_MAX];

		prom_name(lname, sizeof(lname), NULL, NULL, labels[2 * i]);
		puts_(b, i == 0 ? "{" : ",");
		puts_(b, lname);
		puts_(b, "=\"");
		put_escaped(b, labels[2 * i + 1] ? labels[2 * i + 1] : "",
		            false);
		puts_(b, "\"");
	}
	puts_(b, npairs ? "} " : " ");
	puts_(b, value);
	puts_(b, "\n");
}

/* ------------------------------------------------ labelled families */

struct metrics_out {
	struct prom_buf *b;
	const char *prefix;
	char family[PROM_NAME_MAX];
};

void metrics_family(struct metrics_out *out, const char *name,
                    enum stat_kind kind, const char *help)
{
	prom_name(out->family, sizeof(out->family), out->prefix, NULL, name);
	prom_family(out->b, out->family, kind, help);
}

void metrics_sample(struct metrics_out *out, const char *const *labels,
                    size_t npairs, int64_t v)
{
	char value[32];

	snprintf(value, sizeof(value), "%lld", (long long)v);
	metrics_sample_text(out, "", labels, npairs, value);
}

void metrics_sample_text(struct metrics_out *out, const char *suffix,
                         const char *const *labels, size_t npairs,
                         const char *value)
{
	char name[PROM_NAME_MAX + 16];

	if (out->family[0] == '\0')
		return; /* a bug of the caller: no family yet */
	snprintf(name, sizeof(name), "%s%s", out->family, suffix);
	prom_sample(out->b, name, labels, npairs, value);
}

/* ------------------------------------------------------ the process */

static void process_metric(struct prom_buf *b, const char *name,
                           enum stat_kind kind, const char *help,
                           const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

static void process_metric(struct prom_buf *b, const char *name,
                           enum stat_kind kind, const char *help,
                           const char *fmt, ...)
{
	char value[64];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(value, sizeof(value), fmt, ap);
	va_end(ap);
	prom_family(b, name, kind, help);
	prom_sample(b, name, NULL, 0, value);
}

/* Seconds since the epoch the process started: its start in clock ticks
 * after boot (/proc/self/stat, field 22) plus the boot time. */
static bool start_time(double *out)
{
	char buf[1024], *p;
	unsigned long long ticks = 0, btime = 0;
	long hz = sysconf(_SC_CLK_TCK);
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n;
	bool ok = false;

	if (f == NULL)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	/* The command name may hold spaces and parentheses: fields count
	 * from the last ')' (field 2's end); field 22 is the 20th after. */
	p = strrchr(buf, ')');
	for (int field = 2; p != NULL && field < 22; field++) {
		p = strchr(p + 1, ' ');
	}
	if (p == NULL || sscanf(p + 1, "%llu", &ticks) != 1 || hz <= 0)
		return false;
	f = fopen("/proc/stat", "r");
	if (f == NULL)
		return false;
	while (fgets(buf, sizeof(buf), f) != NULL)
		if (sscanf(buf, "btime %llu", &btime) == 1) {
			ok = true;
			break;
		}
	fclose(f);
	if (ok)
		*out = (double)btime + (double)ticks / (double)hz;
	return ok;
}

static void process_metrics(struct prom_buf *b)
{
	struct rusage ru;
	struct rlimit rl;
	unsigned long long vsz, rss;
	long page = sysconf(_SC_PAGESIZE);
	double t;
	FILE *f;
	DIR *d;

	if (getrusage(RUSAGE_SELF, &ru) == 0)
		process_metric(
		        b, "process_cpu_seconds_total", STAT_COUNTER,
		        "Total user and system CPU time spent in seconds.",
		        "%.6f",
		        (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) +
		                (double)(ru.ru_utime.tv_usec +
		                         ru.ru_stime.tv_usec) /
		                        1e6);
	f = fopen("/proc/self/statm", "r");
	if (f != NULL) {
		if (fscanf(f, "%llu %llu", &vsz, &rss) == 2 && page > 0) {
			process_metric(b, "process_virtual_memory_bytes",
			               STAT_GAUGE,
			               "Virtual memory size in bytes.", "%llu",
			               vsz * (unsigned long long)page);
			process_metric(b, "process_resident_memory_bytes",
			               STAT_GAUGE,
			               "Resident memory size in bytes.", "%llu",
			               rss * (unsigned long long)page);
		}
		fclose(f);
	}
	if (start_time(&t))
		process_metric(b, "process_start_time_seconds", STAT_GAUGE,
		               "Start time of the process since unix epoch in "
		               "seconds.",
		               "%.2f", t);
	d = opendir("/proc/self/fd");
	if (d != NULL) {
		long n = 0;
		struct dirent *de;

		while ((de = readdir(d)) != NULL)
			n += de->d_name[0] != '.';
		closedir(d);
		/* Without the one opendir() held. */
		process_metric(b, "process_open_fds", STAT_GAUGE,
		               "Number of open file descriptors.", "%ld",
		               n > 0 ? n - 1 : 0);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY)
		process_metric(b, "process_max_fds", STAT_GAUGE,
		               "Maximum number of open file descriptors.",
		               "%llu", (unsigned long long)rl.rlim_cur);
}

/* ------------------------------------------------------------ the page */

static void page_metrics(struct rpc_ctx *ctx)
{
	struct mgmt *m = rpc_server(ctx);
	struct prom_buf b = {0};
	struct stats_snap s;
	struct metrics_out out = {.b = &b, .prefix = m->metrics_prefix};
	metrics_fn *fns[METRICS_MAX_FNS];
	void *args[METRICS_MAX_FNS];
	size_t nfns;

	if (stats_snap_init(&s, ctx))
		return;
	if (stats_snap_read(&s, ctx)) {
		stats_snap_fini(&s);
		return;
	}
	for (size_t e = 0; e < s.n; e++) {
		const struct stat_group *g = s.e[e].g;

		for (size_t i = 0; i < g->n; i++) {
			char name[PROM_NAME_MAX], value[32];

			prom_name(name, sizeof(name), m->metrics_prefix,
			          g->name, g->stats[i].name);
			snprintf(value, sizeof(value), "%lld",
			         (long long)stats_snap_value(&s, e, i));
			prom_family(&b, name, g->stats[i].kind,
			            g->stats[i].help);
			prom_sample(&b, name, NULL, 0, value);
		}
	}
	stats_snap_fini(&s);
	nfns = metrics_fns(fns, args, METRICS_MAX_FNS);
	for (size_t i = 0; i < nfns; i++) {
		out.family[0] = '\0';
		fns[i](&out, args[i]);
	}
	process_metrics(&b);
	if (b.failed)
		rpc_fault(ctx, RPC_INTERNAL_ERROR,
		          "Internal error: out of memory");
	else
		rpc_printf(ctx, "%s", b.p ? b.p : "");
	prom_buf_fini(&b);
}

static const struct mgmt_page metrics_page = {
        "/metrics", "text/plain; version=0.0.4; charset=utf-8", page_metrics};

int metrics_register_page(void)
{
	return mgmt_register_page(&metrics_page);
}
