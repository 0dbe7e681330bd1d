/*
 * imsdlgd: loads the configuration, starts the workers and waits for
 * SIGTERM or SIGINT.
 */
#include <errno.h>
#include <getopt.h>
#include <malloc.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/app.h"
#include "dlg/dlg.h"
#include "mgmt/mgmt.h"
#include "net/net.h"
#include "rr/rr.h"
#include "script/script.h"
#include "tm/tm.h"

#define MAX_LISTENERS 16
#define MAX_ALIASES   32
#define DEFAULT_CFG   "/etc/imsdlg/imsdlg.cfg"

/* Everything the workers share, read-only once they run. */
struct app {
	struct cfg *cfg;
	const char *cfg_path;
	struct net_listener listeners[MAX_LISTENERS];
	unsigned nlisteners;
	unsigned children;
	struct tm_config tm;
	char server_hdr[256], user_agent_hdr[256]; /* lines with CRLF */
	char log_prefix[LOG_PREFIX_MAX + 1];       /* "": none */
	struct tm_alias aliases[MAX_ALIASES];
	struct rr_config rr;
	bool dialogs; /* loadmodule "ims_dialog" (or "dialog") */
	struct dlg_config dlg;
	struct dlg_shard **dlg_shards; /* one per worker, for sums */
	struct profile_registry *profiles;
	/* modparam("ims_dialog", "metrics_profiles"): shown on /metrics */
	const struct profile **metrics_profiles;
	size_t nmetrics_profiles;
	char script_path[4096];
	/* Each worker's Lua state, for the route time limit's watchdog (the
	 * signal thread), and that limit in ms (0: none). */
	struct script **scripts;
	unsigned route_time_limit_ms;
	struct rt *rt;
};

/* A worker's shard: its transactions, dialogs and Lua state. */
struct shard {
	struct tm_shard *tm;
	struct dlg_shard *dlg;
	struct script *script;
};

static void usage(FILE *f)
{
	fprintf(f,
	        "usage: imsdlgd [-f FILE] [-c] [-n N] [-l ADDR]... [-P PIDFILE]"
	        " [-V] [-h]\n"
	        "  -f FILE    configuration file (default " DEFAULT_CFG ")\n"
	        "  -c         check the configuration and exit (0 ok, 1 "
	        "error)\n"
	        "  -n N       worker threads (default: children= or the "
	        "number of cores)\n"
	        "  -l ADDR    listen on ADDR ([udp|tcp:]host[:port]); "
	        "repeatable, replaces listen=\n"
	        "  -P FILE    write the process id to FILE\n"
	        "  -D, -E     accepted for Kamailio compatibility (foreground "
	        "and stderr are the default)\n"
	        "  -V         version\n"
	        "  -h         this help\n");
}

/* ------------------------------------------------------- configuration */

static int add_listener(struct app *a, const char *spec, const char *where,
                        char *err, size_t errsize)
{
	const char *why;

	if (a->nlisteners == MAX_LISTENERS) {
		snprintf(err, errsize, "%s: more than %d listeners", where,
		         MAX_LISTENERS);
		return EINVAL;
	}
	if (net_listener_parse(&a->listeners[a->nlisteners], spec,
	                       (uint16_t)cfg_int(a->cfg, NULL, "port", 5060),
	                       &why)) {
		snprintf(err, errsize, "%s: listen=%s: %s", where, spec, why);
		return EINVAL;
	}
	a->nlisteners++;
	return 0;
}

/* modparam("ims_dialog", "metrics_profiles", "p1;p2"): names of defined
 * profiles, ';'-separated, blanks around a name ignored. */
static int metrics_profiles(struct app *a, char *err, size_t errsize)
{
	const struct cfg_entry *e =
	        cfg_get(a->cfg, "ims_dialog", "metrics_profiles");
	const char *s = e ? e->v.s : NULL;

	if (s == NULL)
		return 0;
	a->metrics_profiles = calloc(profile_count(a->profiles) + 1,
	                             sizeof(*a->metrics_profiles));
	if (a->metrics_profiles == NULL) {
		snprintf(err, errsize, "%s: out of memory", a->cfg_path);
		return ENOMEM;
	}
	while (*s) {
		size_t len = strcspn(s, ";");
		struct slice name = slice_make(s, len);
		const struct profile *p;
		bool dup = false;

		while (name.len && (*name.p == ' ' || *name.p == '\t')) {
			name.p++;
			name.len--;
		}
		while (name.len && (name.p[name.len - 1] == ' ' ||
		                    name.p[name.len - 1] == '\t'))
			name.len--;
		s += len + (s[len] == ';');
		if (name.len == 0)
			continue;
		p = profile_find(a->profiles, name);
		if (p == NULL) {
			cfg_entry_error(
			        e, err, errsize,
			        "ims_dialog metrics_profiles: no profile "
			        "\"%.*s\" (profiles_no_value, "
			        "profiles_with_value)",
			        SLICE_ARG(name));
			return EINVAL;
		}
		for (size_t i = 0; i < a->nmetrics_profiles; i++)
			dup = dup || a->metrics_profiles[i] == p;
		if (!dup)
			a->metrics_profiles[a->nmetrics_profiles++] = p;
	}
	return 0;
}

/* modparam("xhttp_prom", "prom_counter" / "prom_gauge" /
 * "prom_histogram"): the script's metrics, each declared once. */
static int declare_script_metrics(const struct cfg *c, char *err,
                                  size_t errsize)
{
	static const char *const params[] = {"prom_counter", "prom_gauge",
	                                     "prom_histogram"};
	static const enum prom_kind kinds[] = {PROM_COUNTER, PROM_GAUGE,
	                                       PROM_HISTOGRAM};
	size_t n;
	const struct cfg_entry *all = cfg_entries(c, &n);

	/* in file order, so that a name declared twice is told at the
	 * second line */
	for (size_t i = 0; i < n; i++) {
		const struct cfg_entry *e = &all[i];
		if (e->module == NULL || strcmp(e->module, "xhttp_prom") != 0)
			continue;
		for (size_t k = 0; k < 3; k++) {
			const char *why;
			int rc;
			if (strcmp(e->def->name, params[k]) != 0)
				continue;
			rc = prom_declare(kinds[k], e->v.s, &why);
			if (rc) {
				cfg_entry_error(e, err, errsize,
				                "xhttp_prom %s: %s", params[k],
				                why);
				return rc;
			}
		}
	}
	prom_set_timeout(
	        (unsigned)cfg_int(c, "xhttp_prom", "xhttp_prom_timeout", 60));
	return 0;
}

/* modparam("ims_dialog", ...) into the dialog engine's settings. */
static int configure_dialogs(struct app *a, char *err, size_t errsize)
{
	struct cfg *c = a->cfg;
	struct dlg_config *d = &a->dlg;
	const char *s;

	dlg_config_defaults(d);
	a->dialogs = cfg_module_loaded(c, "ims_dialog");
	if (!a->dialogs)
		return 0;
	d->hash_size =
	        (unsigned)cfg_int(c, "ims_dialog", "hash_size", d->hash_size);
	s = cfg_str(c, "ims_dialog", "rr_param", "did");
	if (strlen(s) == 0 || strlen(s) >= sizeof(d->rr_param)) {
		snprintf(err, errsize,
		         "%s: ims_dialog rr_param must have 1 to "
		         "32 characters",
		         a->cfg_path);
		return EINVAL;
	}
	snprintf(d->rr_param, sizeof(d->rr_param), "%s", s);
	d->dlg_flag = (int)cfg_int(c, "ims_dialog", "dlg_flag", -1);
	s = cfg_str(c, "ims_dialog", "timeout_avp", NULL);
	if (s) {
		/* "$avp(name)" or "$avp(i:10)": the name inside. */
		const char *o = strchr(s, '('), *e = strrchr(s, ')');
		if (o == NULL || e == NULL || e <= o + 1) {
			snprintf(err, errsize,
			         "%s: ims_dialog timeout_avp must look like "
			         "$avp(name)",
			         a->cfg_path);
			return EINVAL;
		}
		snprintf(d->timeout_avp, sizeof(d->timeout_avp), "%.*s",
		         (int)(e - o - 1), o + 1);
	}
	d->default_timeout = (unsigned)cfg_int(
	        c, "ims_dialog", "default_timeout", d->default_timeout);
	s = cfg_str(c, "ims_dialog", "dlg_extra_hdrs", NULL);
	d->extra_hdrs = s ? (char *)s : NULL;
	d->match_mode = (unsigned)cfg_int(c, "ims_dialog", "dlg_match_mode", 0);
	d->detect_spirals = cfg_int(c, "ims_dialog", "detect_spirals", 1) != 0;
	d->early_timeout = (unsigned)cfg_int(c, "ims_dialog", "early_timeout",
	                                     d->early_timeout);
	d->noack_timeout = (unsigned)cfg_int(c, "ims_dialog", "noack_timeout",
	                                     d->noack_timeout);
	d->end_timeout = (unsigned)cfg_int(c, "ims_dialog", "end_timeout",
	                                   d->end_timeout);
	/* Ours and Kamailio's dialog name of the same thing: one of them. */
	long long code = cfg_int(c, "ims_dialog", "early_terminate_code", -1),
	          alias = cfg_int(c, "ims_dialog", "bye_early_code", -1);
	if (code >= 0 && alias >= 0) {
		snprintf(err, errsize,
		         "%s: ims_dialog: early_terminate_code and "
		         "bye_early_code are one setting: give one of them",
		         a->cfg_path);
		return EINVAL;
	}
	if (code >= 0 || alias >= 0)
		d->early_terminate_code = (unsigned)(code >= 0 ? code : alias);
	d->early_terminate_reason = cfg_str(c, "ims_dialog", "bye_early_reason",
	                                    d->early_terminate_reason);
	d->timeout_noreset =
	        cfg_int(c, "ims_dialog", "timeout_noreset", 0) != 0;
	d->send_bye = cfg_int(c, "ims_dialog", "send_bye", 1) != 0;
	s = cfg_str(c, "ims_dialog", "lreq_callee_headers", NULL);
	d->callee_hdrs = s && *s ? (char *)s : NULL;
	d->max_dialogs = (unsigned)cfg_int(c, "ims_dialog", "max_dialogs", 0);
	d->max_memory = (size_t)cfg_int(c, "ims_dialog", "max_memory", 0) << 20;
	d->ka_interval = (unsigned)cfg_int(c, "ims_dialog", "ka_interval", 0);
	d->ka_failed_limit = (unsigned)cfg_int(
	        c, "ims_dialog", "ka_failed_limit", d->ka_failed_limit);
	d->bridge_controller = cfg_str(c, "ims_dialog", "bridge_controller",
	                               d->bridge_controller);
	d->bridge_contact =
	        cfg_str(c, "ims_dialog", "bridge_contact", d->bridge_contact);
	s = cfg_str(c, "ims_dialog", "event_callback", "");
	if (strlen(s) >= sizeof(d->event_callback)) {
		snprintf(err, errsize,
		         "%s: ims_dialog event_callback: a function name of "
		         "at most %zu characters",
		         a->cfg_path, sizeof(d->event_callback) - 1);
		return EINVAL;
	}
	snprintf(d->event_callback, sizeof(d->event_callback), "%s", s);
	char why[256];
	if (profile_registry_new(
	            &a->profiles,
	            cfg_str(c, "ims_dialog", "profiles_no_value", ""),
	            cfg_str(c, "ims_dialog", "profiles_with_value", ""), why,
	            sizeof(why))) {
		snprintf(err, errsize, "%s: ims_dialog: %s", a->cfg_path, why);
		return EINVAL;
	}
	d->profiles = a->profiles;
	a->tm.hooks = &dlg_tm_hooks;
	return metrics_profiles(a, err, errsize);
}

/* line (checked by the config: short, one header) with its CRLF, in buf;
 * empty when not set. */
static struct slice header_line(char *buf, size_t size, const char *line)
{
	if (line == NULL || *line == '\0')
		return SLICE_NULL;
	int n = snprintf(buf, size, "%s\r\n", line);
	return n > 0 && (size_t)n < size ? slice_make(buf, (size_t)n)
	                                 : SLICE_NULL;
}

static int configure(struct app *a, const char *const *cli_listen,
                     unsigned ncli, int cli_children, char *err, size_t errsize)
{
	struct cfg *c = a->cfg;
	const struct cfg_entry *e;
	char where[512];
	long long v;

	if (!cfg_engine(c) || strcmp(cfg_engine(c), "lua") != 0) {
		snprintf(err, errsize,
		         "%s: cfgengine \"lua\" is required (native route "
		         "blocks are not supported)",
		         a->cfg_path);
		return EINVAL;
	}
	e = cfg_get(c, "app_lua", "load");
	if (e == NULL) {
		snprintf(err, errsize,
		         "%s: modparam(\"app_lua\", \"load\", FILE) is "
		         "required",
		         a->cfg_path);
		return EINVAL;
	}
	/* A relative script path is relative to the file that names it,
	 * so the daemon can start from any directory. */
	if (e->v.s[0] == '/' || strchr(e->file, '/') == NULL) {
		snprintf(a->script_path, sizeof(a->script_path), "%s", e->v.s);
	} else {
		int dir = (int)(strrchr(e->file, '/') - e->file);
		snprintf(a->script_path, sizeof(a->script_path), "%.*s/%s", dir,
		         e->file, e->v.s);
	}

	a->route_time_limit_ms =
	        (unsigned)cfg_int(c, "app_lua", "route_time_limit", 1000);
	snprintf(a->log_prefix, sizeof(a->log_prefix), "%s",
	         cfg_str(c, NULL, "log_prefix", ""));

	for (unsigned i = 0; i < ncli; i++)
		if (add_listener(a, cli_listen[i], "-l", err, errsize))
			return EINVAL;
	for (e = cfg_next(c, NULL, NULL, "listen"); e && ncli == 0;
	     e = cfg_next(c, e, NULL, "listen")) {
		snprintf(where, sizeof(where), "%s:%u", e->file, e->line);
		if (add_listener(a, e->v.s, where, err, errsize))
			return EINVAL;
	}
	if (a->nlisteners == 0 &&
	    add_listener(a, "udp:127.0.0.1", "default", err, errsize))
		return EINVAL;

	v = cfg_int(c, NULL, "children", 0);
	if (cli_children > 0)
		v = cli_children;
	if (v <= 0)
		v = sysconf(_SC_NPROCESSORS_ONLN);
	a->children = v > 0 ? (unsigned)v : 1;
	log_set_level((int)cfg_int(c, NULL, "debug", LL_INFO));

	tm_config_defaults(&a->tm);
	for (e = cfg_next(c, NULL, NULL, "alias"); e;
	     e = cfg_next(c, e, NULL, "alias")) {
		const char *why;
		if (a->tm.naliases == MAX_ALIASES) {
			snprintf(err, errsize, "%s:%u: more than %u aliases",
			         e->file, e->line, MAX_ALIASES);
			return EINVAL;
		}
		/* checked by the loader: this cannot fail */
		tm_alias_parse(&a->aliases[a->tm.naliases++], e->v.s, &why);
	}
	a->tm.aliases = a->aliases;
	a->tm.fr_timer_ms =
	        (unsigned)cfg_int(c, "tm", "fr_timer", a->tm.fr_timer_ms);
	a->tm.fr_inv_timer_ms = (unsigned)cfg_int(c, "tm", "fr_inv_timer",
	                                          a->tm.fr_inv_timer_ms);
	a->tm.wait_timer_ms =
	        (unsigned)cfg_int(c, "tm", "wt_timer", a->tm.wait_timer_ms);
	a->tm.t1_ms = (unsigned)cfg_int(c, "tm", "retr_timer1", a->tm.t1_ms);
	a->tm.t2_ms = (unsigned)cfg_int(c, "tm", "retr_timer2", a->tm.t2_ms);
	a->tm.auto_inv_100 = cfg_int(c, "tm", "auto_inv_100", 1) != 0;
	a->tm.failure_reply_mode = (unsigned)cfg_int(
	        c, "tm", "failure_reply_mode", a->tm.failure_reply_mode);
	slice_copy_cstr(a->tm.dns.servers, sizeof(a->tm.dns.servers),
	                slice_cstr(cfg_str(c, NULL, "dns_servers", "")));
	a->tm.dns.timeout_ms =
	        1000 * (unsigned)cfg_int(c, NULL, "dns_retr_time",
	                                 a->tm.dns.timeout_ms / 1000);
	a->tm.dns.tries =
	        (unsigned)cfg_int(c, NULL, "dns_retr_no", a->tm.dns.tries);
	a->tm.dns_failover = cfg_int(c, NULL, "use_dns_failover", 1) != 0;
	a->tm.dns.try_naptr = cfg_int(c, NULL, "dns_try_naptr", 0) != 0;
	a->tm.dns.max_ttl_s = (unsigned)cfg_int(c, NULL, "dns_cache_max_ttl",
	                                        a->tm.dns.max_ttl_s);
	a->tm.dns.negative_ttl_s = (unsigned)cfg_int(
	        c, NULL, "dns_cache_negative_ttl", a->tm.dns.negative_ttl_s);
	a->tm.dns.slow_ms = (unsigned)cfg_int(c, NULL, "dns_slow_query_ms",
	                                      a->tm.dns.slow_ms);
	a->tm.limits.max_msg_size = (size_t)cfg_int(
	        c, NULL, "max_msg_size", (long long)a->tm.limits.max_msg_size);
	/* Kamailio's: server_signature=no leaves both lines out */
	if (cfg_int(c, NULL, "server_signature", 1)) {
		a->tm.server_hdr =
		        header_line(a->server_hdr, sizeof(a->server_hdr),
		                    cfg_str(c, NULL, "server_header", NULL));
		a->tm.user_agent_hdr = header_line(
		        a->user_agent_hdr, sizeof(a->user_agent_hdr),
		        cfg_str(c, NULL, "user_agent_header", NULL));
	}
	a->tm.sanity_checks = (unsigned)cfg_int(c, "sanity", "default_checks",
	                                        a->tm.sanity_checks);
	a->tm.sanity_uri_checks = (unsigned)cfg_int(c, "sanity", "uri_checks",
	                                            a->tm.sanity_uri_checks);
	a->tm.sanity_noreply = cfg_int(c, "sanity", "noreply", 0) != 0;
	a->tm.proxy_require =
	        slice_cstr(cfg_str(c, "sanity", "proxy_require", ""));
	rr_config_defaults(&a->rr);
	a->rr.append_fromtag = cfg_int(c, "rr", "append_fromtag", 0) != 0;
	if (declare_script_metrics(c, err, errsize))
		return EINVAL;
	return configure_dialogs(a, err, errsize);
}

/* ------------------------------------------------------------ workers */

static void *shard_init(struct worker *w, void *arg)
{
	struct app *a = arg;
	struct shard *s = calloc(1, sizeof(*s));
	char err[512];

	if (s == NULL)
		return NULL;
	if (script_new(&s->script, a->script_path, &a->rr, err, sizeof(err))) {
		LOG_ERR("worker %u: %s", worker_id(w), err);
		free(s);
		return NULL;
	}
	a->scripts[worker_id(w)] = s->script;
	script_set_log_prefix(s->script, a->log_prefix);
	struct tm_script hook = {script_run, s->script};
	s->tm = tm_shard_new(w, &a->tm, &hook);
	if (s->tm == NULL) {
		script_free(s->script);
		free(s);
		return NULL;
	}
	if (a->dialogs) {
		s->dlg = dlg_shard_new(&a->dlg, s->tm, worker_id(w),
		                       a->children);
		if (s->dlg == NULL) {
			tm_shard_free(s->tm);
			script_free(s->script);
			free(s);
			return NULL;
		}
		a->dlg_shards[worker_id(w)] = s->dlg;
	}
	return s;
}

static void shard_fini(struct worker *w, void *shard)
{
	struct shard *s = shard;

	(void)w;
	/* Dialogs first: they hold references to transactions. */
	dlg_shard_free(s->dlg);
	tm_shard_free(s->tm);
	script_free(s->script);
	free(s);
}

static void on_rx(struct worker *w, const struct net_rx *rx)
{
	struct shard *s = worker_shard(w);
	struct rt *rt = worker_rt(w);
	unsigned owner;

	if (!tm_receive(s->tm, rx, rt_workers(rt), &owner))
		rt_forward_rx(rt, owner, rx);
}

/* For the statistics read on each worker: NULL before the shard exists
 * (a worker runs no job after shard_fini). */
static struct tm_shard *tm_of(struct worker *w)
{
	struct shard *s = worker_shard(w);

	return s ? s->tm : NULL;
}

static size_t shard_busy(struct worker *w)
{
	struct shard *s = worker_shard(w);

	return s ? tm_shard_in_progress(s->tm) : 0;
}

static void on_conn_fail(struct worker *w, uint64_t conn_id)
{
	struct shard *s = worker_shard(w);

	tm_conn_failed(s->tm, conn_id);
}

/* --------------------------------------------------------------- main */

/* The route time limit's watchdog: a worker whose route has run past it
 * gets the signal that stops the route (script.h). */
static void watch_routes(struct app *a)
{
	for (unsigned i = 0; i < a->children; i++) {
		if (script_stop_overrun(a->scripts[i], a->route_time_limit_ms))
			LOG_WARN("worker %u: a route has run for %u ms: "
			         "stopping it",
			         i, a->route_time_limit_ms);
	}
}

/* SIGTERM/SIGINT end the runtime; in between, every quarter of the route
 * time limit (at most 250 ms), the watchdog looks at the workers. The
 * runtime stops only here, so the scripts outlive every look. */
static void *signal_thread(void *arg)
{
	struct app *a = arg;
	unsigned period_ms = a->route_time_limit_ms / 4;
	struct timespec period;
	sigset_t set;
	int sig;

	if (period_ms == 0 || period_ms > 250)
		period_ms = 250;
	period.tv_sec = period_ms / 1000;
	period.tv_nsec = (long)(period_ms % 1000) * 1000000;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		if (a->route_time_limit_ms == 0) {
			if (sigwait(&set, &sig) != 0)
				continue;
		} else if ((sig = sigtimedwait(&set, NULL, &period)) < 0) {
			watch_routes(a); /* a period went by */
			continue;
		}
		if (sig == SIGTERM || sig == SIGINT) {
			LOG_NOTICE("signal %d: stopping", sig);
			rt_stop(a->rt);
			return NULL;
		}
	}
}

static int write_pidfile(const char *path)
{
	FILE *f = fopen(path, "w");

	if (f == NULL)
		return errno;
	fprintf(f, "%ld\n", (long)getpid());
	return fclose(f) ? errno : 0;
}

int main(int argc, char **argv)
{
	static struct app a;
	const char *cli_listen[MAX_LISTENERS];
	unsigned ncli = 0;
	int cli_children = 0, opt;
	bool check_only = false;
	const char *pidfile = NULL;
	char err[1024];

	/* Each worker allocates in its own glibc arena, whose top grew and
	 * shrank with every call (an mprotect syscall each time, 1.4 per
	 * call under strace): keep up to 32 MB of free top, grow 1 MB at a
	 * time. */
	mallopt(M_TRIM_THRESHOLD, 32 << 20);
	mallopt(M_TOP_PAD, 1 << 20);
	a.cfg_path = DEFAULT_CFG;
	while ((opt = getopt(argc, argv, "f:cn:l:P:VhDEm:M:")) != -1) {
		switch (opt) {
		case 'f':
			a.cfg_path = optarg;
			break;
		case 'c':
			check_only = true;
			break;
		case 'n':
			cli_children = atoi(optarg);
			if (cli_children < 1 || cli_children > 256) {
				fprintf(stderr,
				        "imsdlgd: -n %s: expected "
				        "1..256\n",
				        optarg);
				return 1;
			}
			break;
		case 'l':
			if (ncli == MAX_LISTENERS) {
				fprintf(stderr, "imsdlgd: too many -l\n");
				return 1;
			}
			cli_listen[ncli++] = optarg;
			break;
		case 'P':
			pidfile = optarg;
			break;
		case 'V':
			printf("imsdlgd " IMSDLG_VERSION "\n");
			return 0;
		case 'h':
			usage(stdout);
			return 0;
		case 'D':
		case 'E':
		case 'm':
		case 'M':
			break; /* Kamailio options with no meaning here */
		default:
			usage(stderr);
			return 1;
		}
	}
	if (optind < argc) {
		usage(stderr);
		return 1;
	}

	if (cfg_load(&a.cfg, a.cfg_path, &app_schema, NULL, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	if (configure(&a, cli_listen, ncli, cli_children, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		cfg_free(a.cfg);
		return 1;
	}
	if (tm_register_stats(tm_of) || stats_register_tcp() ||
	    app_register_profile_metrics(a.metrics_profiles,
	                                 a.nmetrics_profiles) ||
	    prom_register()) {
		fprintf(stderr, "imsdlgd: cannot register the statistics\n");
		return 1;
	}
	a.scripts = calloc(a.children, sizeof(*a.scripts));
	if (a.scripts == NULL) {
		fprintf(stderr, "imsdlgd: out of memory\n");
		return 1;
	}
	if (a.dialogs) {
		a.dlg_shards = calloc(a.children, sizeof(*a.dlg_shards));
		if (a.dlg_shards == NULL || dlg_register_script() ||
		    dlg_register_rpc(a.dlg_shards, a.children) ||
		    rr_register_callback(dlg_rr_callback, NULL)) {
			fprintf(stderr, "imsdlgd: cannot set up dialogs\n");
			return 1;
		}
		dlg_set_all_shards(a.dlg_shards, a.children);
	}
	/* Load the script once here so that its errors stop the start with
	 * FILE:LINE, before any socket is bound. */
	struct script *probe;
	if (script_new(&probe, a.script_path, &a.rr, err, sizeof(err))) {
		fprintf(stderr, "%s\n", err);
		cfg_free(a.cfg);
		return 1;
	}
	script_free(probe);
	if (check_only) {
		printf("%s: configuration OK\n", a.cfg_path);
		cfg_free(a.cfg);
		return 0;
	}

	/* Signals go to one thread that turns them into rt_stop(); every
	 * other thread has them blocked. */
	sigset_t set;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	script_stop_signal_install();

	struct rt_config rc = {
	        .workers = a.children,
	        .listeners = a.listeners,
	        .nlisteners = a.nlisteners,
	        .max_msg_size = a.tm.limits.max_msg_size,
	        .tcp_idle_timeout_ms =
	                (unsigned)cfg_int(a.cfg, NULL,
	                                  "tcp_connection_lifetime", 120) *
	                1000u,
	        .tcp_connect_timeout_ms =
	                (unsigned)cfg_int(a.cfg, NULL, "tcp_connect_timeout",
	                                  10) *
	                1000u,
	        .tcp_send_timeout_ms =
	                (unsigned)cfg_int(a.cfg, NULL, "tcp_send_timeout", 10) *
	                1000u,
	        .tcp_max_connections = (unsigned)cfg_int(
	                a.cfg, NULL, "tcp_max_connections", 2048),
	        .tcp_conn_buf_max = 256 * 1024,
	        /* Short enough that a supervisor's SIGKILL (often 5 s after
	         * SIGTERM) does not come first. */
	        .shutdown_grace_ms = 2000,
	};
	struct rt_app ra = {
	        .shard_init = shard_init,
	        .shard_fini = shard_fini,
	        .on_rx = on_rx,
	        .shard_busy = shard_busy,
	        .on_conn_fail = on_conn_fail,
	        .app_arg = &a,
	};
	if (rt_start(&a.rt, &rc, &ra, err, sizeof(err))) {
		fprintf(stderr, "imsdlgd: %s\n", err);
		cfg_free(a.cfg);
		return 1;
	}
	/* mgmt: the RPC server (rpc_listen, rpc_token), started once the
	 * workers run so that its handlers can post to them. */
	struct mgmt_config mc;
	struct mgmt *mgmt = NULL;
	if (mgmt_config_from_cfg(&mc, a.cfg, err, sizeof(err)) == 0) {
		mc.rt = a.rt;
		mc.app = &a;
		mgmt_start(&mgmt, &mc, err, sizeof(err));
	}
	if (mgmt == NULL) {
		fprintf(stderr, "imsdlgd: %s\n", err);
		rt_free(a.rt);
		cfg_free(a.cfg);
		return 1;
	}
	if (pidfile && write_pidfile(pidfile))
		LOG_WARN("cannot write pid file %s: %s", pidfile,
		         strerror(errno));
	unsigned n;
	const struct net_listener *l = rt_listeners(a.rt, &n);
	for (unsigned i = 0; i < n; i++)
		LOG_NOTICE("listening on %s", l[i].name);
	LOG_NOTICE("imsdlgd " IMSDLG_VERSION " started, %u workers",
	           a.children);

	pthread_t sig_thread;
	pthread_create(&sig_thread, NULL, signal_thread, &a);
	rt_wait(a.rt);
	pthread_join(sig_thread, NULL);
	/* mgmt: after the workers stopped (no job of its own left to run),
	 * before rt_free (its handlers hold the runtime). */
	mgmt_stop(mgmt);
	rt_free(a.rt);
	free(a.dlg_shards);
	free(a.scripts);
	free(a.metrics_profiles);
	profile_registry_free(a.profiles);
	cfg_free(a.cfg);
	if (pidfile)
		unlink(pidfile);
	mem_thread_fini();
	LOG_NOTICE("imsdlgd stopped");
	return 0;
}
