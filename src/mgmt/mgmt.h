/*
 * mgmt: the management interface. One registry of RPC methods, served as
 * JSON-RPC 2.0 over HTTP (POST /RPC, libmicrohttpd) and over a UNIX stream
 * socket, by one management thread that never runs on a worker.
 *
 * Methods are written against the small API below and never see JSON: a
 * handler reads its parameters with rpc_param_*(), builds its result with
 * rpc_add_*() or fails with rpc_fault(). JSON (jansson) lives only in the
 * transport. A component adds its methods once at start-up:
 *
 *   static void rpc_dlg_list(struct rpc_ctx *ctx) { ... }
 *   static const struct rpc_method dlg_rpc[] = {
 *           {"dlg.list", rpc_dlg_list, "Lists the dialogs"},
 *   };
 *   rpc_register(dlg_rpc, sizeof(dlg_rpc) / sizeof(dlg_rpc[0]));
 *
 * Shard data belongs to the workers (docs/architecture.md, "Concurrency"):
 * a handler that needs it runs a short function on every worker in turn
 * with rpc_for_each_shard() and merges what it collected into its result.
 *
 * Threads: the registries are process globals (components register before
 * the server starts; they are locked anyway). A struct rpc_ctx and every
 * node of its result belong to the handler's call on the management thread
 * and are valid only until the handler returns.
 */
#ifndef IMSDLG_MGMT_H
#define IMSDLG_MGMT_H

#include <stdbool.h>
#include <stdio.h>
#include <stddef.h>
#include <stdint.h>

#include "core/cfg.h"
#include "net/net.h"

/* JSON-RPC 2.0 protocol errors (the transport uses them; a handler may
 * fault with RPC_INVALID_PARAMS too). */
#define RPC_PARSE_ERROR      (-32700)
#define RPC_INVALID_REQUEST  (-32600)
#define RPC_METHOD_NOT_FOUND (-32601)
#define RPC_INVALID_PARAMS   (-32602)
#define RPC_INTERNAL_ERROR   (-32603)

/* Largest request accepted (HTTP body or one UNIX socket request). */
#define MGMT_MAX_REQUEST (64 * 1024)
/* rpc_listen entries the server takes. */
#define MGMT_MAX_LISTEN 8

/* The call being served: opaque. */
struct rpc_ctx;
/* An object or array inside the result being built: opaque. */
struct rpc_node;

typedef void rpc_handler(struct rpc_ctx *ctx);

struct rpc_method {
	const char *name; /* "dlg.list": component.verb, as Kamailio */
	rpc_handler *fn;
	const char *help; /* one line, for system.methodHelp */
};

/* ------------------------------------------------------------- registry */

/*
 * Adds the n methods of table (borrowed for the process lifetime: static
 * const). Returns 0, EEXIST when a name is taken (then nothing is added),
 * EINVAL for an entry without name or function, ENOSPC when full.
 */
int rpc_register(const struct rpc_method *table, size_t n);

/* The method called name, or NULL. */
const struct rpc_method *rpc_lookup(const char *name);

/*
 * A page served by GET over HTTP, for what is not JSON-RPC (/metrics):
 * fn runs like a method handler but writes its body with rpc_printf(); a
 * fault turns into an HTTP error. Borrowed for the process lifetime.
 */
struct mgmt_page {
	const char *path;         /* "/metrics" */
	const char *content_type; /* "text/plain; version=0.0.4" */
	rpc_handler *fn;
};

/* 0, EEXIST (path taken), EINVAL (path not starting with '/'), ENOSPC. */
int mgmt_register_page(const struct mgmt_page *page);

/* ---------------------------------------------------------- parameters */

/*
 * Parameters come by position (a JSON array) or by name (an object): each
 * getter takes both the index and the name (name may be NULL for a
 * positional-only parameter) and uses whichever the request used.
 *
 * The required getters write *out and return 0, or set the fault and
 * return an errno: ENOENT for a missing parameter (fault 400 "Missing
 * parameter ..."), EINVAL for a value of the wrong type (fault -32602).
 * The optional getters return 0 and leave *out alone when the parameter is
 * absent (so *out holds the default), and fail as above on a wrong type.
 *
 * Conversions, so that clients typing loosely (kamcmd, curl) work: a
 * string parameter accepts a number (its text, 1.5 as "1.5"), an integer
 * parameter a string of decimal digits, a boolean parameter 0 or 1.
 * Strings are borrowed until the handler returns; a string holding a NUL
 * is refused.
 */
size_t rpc_param_count(const struct rpc_ctx *ctx);
/* Whether the parameter was given (any type; null counts as absent, as for
 * the optional getters). */
bool rpc_param_has(const struct rpc_ctx *ctx, unsigned index, const char *name);
int rpc_param_str(struct rpc_ctx *ctx, unsigned index, const char *name,
                  const char **out);
int rpc_param_int(struct rpc_ctx *ctx, unsigned index, const char *name,
                  long long *out);
int rpc_param_bool(struct rpc_ctx *ctx, unsigned index, const char *name,
                   bool *out);
int rpc_param_opt_str(struct rpc_ctx *ctx, unsigned index, const char *name,
                      const char **out);
int rpc_param_opt_int(struct rpc_ctx *ctx, unsigned index, const char *name,
                      long long *out);
int rpc_param_opt_bool(struct rpc_ctx *ctx, unsigned index, const char *name,
                       bool *out);

/* --------------------------------------------------------------- result */

/*
 * The result starts empty and takes the shape of the first value added at
 * the top (parent NULL): with a key it becomes an object, and further
 * top-level values need keys; without a key it becomes that value (an
 * array created so takes further top-level values without keys). Inside a
 * node, key is required for an object and must be NULL for an array.
 *
 * Nothing here returns an error: running out of memory or breaking these
 * rules (a bug, logged) turns the reply into -32603 and makes further adds
 * no-ops, so a handler need not check. A result never added to is {} (as
 * Kamailio's jsonrpcs). Strings are copied; invalid UTF-8 is replaced.
 */
struct rpc_node *rpc_add_object(struct rpc_ctx *ctx, struct rpc_node *parent,
                                const char *key);
struct rpc_node *rpc_add_array(struct rpc_ctx *ctx, struct rpc_node *parent,
                               const char *key);
/* s NULL adds null. */
void rpc_add_str(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                 const char *s);
void rpc_add_strn(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                  const char *p, size_t len);
void rpc_add_strf(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                  const char *fmt, ...) __attribute__((format(printf, 4, 5)));
void rpc_add_int(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                 long long v);
void rpc_add_double(struct rpc_ctx *ctx, struct rpc_node *parent,
                    const char *key, double v);
void rpc_add_bool(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                  bool v);
void rpc_add_null(struct rpc_ctx *ctx, struct rpc_node *parent,
                  const char *key);

/* An array apart from the result, for a handler that writes what it
 * gathers elsewhere (rpc_add_* into it as into any array); freed with the
 * call. NULL (and the call failed) when out of memory. */
struct rpc_node *rpc_scratch_array(struct rpc_ctx *ctx);
/* Writes each element of arr to f as one line of compact JSON and empties
 * arr: 0, or -1 when f could not take it (errno set). */
int rpc_write_lines(struct rpc_node *arr, FILE *f);

/* Appends to the body of a page (struct mgmt_page); a bug elsewhere. */
void rpc_printf(struct rpc_ctx *ctx, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/*
 * Fails the call: the reply is the JSON-RPC error {code, message}. Method
 * faults use Kamailio's codes (400 bad or missing parameter, 404 not
 * found, 500 internal), which HTTP also uses as its status, as jsonrpcs
 * does. The first fault wins; the result built so far is dropped.
 */
void rpc_fault(struct rpc_ctx *ctx, int code, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));
bool rpc_failed(const struct rpc_ctx *ctx);

/* ------------------------------------------------------------ the call */

const char *rpc_method_name(const struct rpc_ctx *ctx);
/* The runtime and application pointer given to mgmt_start (may be NULL). */
struct rt *rpc_rt(const struct rpc_ctx *ctx);
void *rpc_app(const struct rpc_ctx *ctx);
/* Workers of the runtime (0 without one). */
unsigned rpc_workers(const struct rpc_ctx *ctx);

typedef void rpc_shard_fn(struct worker *w, void *arg);

/*
 * Runs fn(w, arg) on every worker in turn, in its thread (so it may touch
 * worker_shard(w) freely), and returns when the last one has run: arg may
 * live on the handler's stack, and what fn wrote is visible afterwards
 * without locks. Each fn must be short (a few ms: the worker serves calls
 * meanwhile). Returns 0; or, with the fault (500) already set, ESRCH
 * without a runtime, ETIMEDOUT when a worker did not start fn within the
 * server's shard timeout (fn then never runs there: the handler must not
 * use a partial result), ECANCELED when the server is stopping.
 */
int rpc_for_each_shard(struct rpc_ctx *ctx, rpc_shard_fn *fn, void *arg);

/*
 * As rpc_for_each_shard(), on worker i only (a dialog's owner, or one
 * piece of a long walk done a worker at a time). Also EINVAL (fault 500)
 * when there is no worker i.
 */
int rpc_on_shard(struct rpc_ctx *ctx, unsigned i, rpc_shard_fn *fn, void *arg);

/* ----------------------------------------------------------- statistics */

/*
 * The one registry of statistics. A component writes each group once: a
 * static table of struct stat_def (name, kind, how it is read, help) and
 * the functions that read its values. Every consumer serves every group
 * from it: stats.get_statistics, stats.fetch, stats.fetchn,
 * stats.reset_statistics, stats.clear_statistics (Kamailio's names,
 * parameters and reply shapes) and GET /metrics (Prometheus text format,
 * <prefix><group>_<name>). The server adds group "shard" itself: one
 * queue_depth_<i> gauge per worker.
 *
 * It lives in mgmt rather than core because reading it is management
 * work: per-shard values are summed on each worker's own thread by the
 * jobs of rpc_for_each_shard(), process values are read on the
 * management thread, and both consumers are methods and pages.
 *
 * Components keep counters that only grow and are written by their own
 * thread alone; reset_statistics never writes them but remembers the
 * value read at the reset and reports the difference (gauges are never
 * reset). $stat() in Lua reads the components' raw counters.
 */
enum stat_kind {
	STAT_COUNTER,   /* only grows; reset_statistics restarts it at 0 */
	STAT_GAUGE,     /* a level now, up and down; never reset */
	STAT_HISTOGRAM, /* on /metrics only (script metrics) */
};

enum stat_scope {
	STAT_SHARD,   /* one value per worker, summed on the workers' threads */
	STAT_PROCESS, /* one value, read on the management thread */
};

struct stat_def {
	const char *name; /* [A-Za-z0-9_]+, Kamailio's where it has one */
	enum stat_kind kind;
	enum stat_scope scope;
	const char *help; /* one line, for # HELP */
};

struct stat_group {
	const char *name;             /* [A-Za-z0-9_]+: "core", "tmx" */
	const struct stat_def *stats; /* n entries, static const */
	size_t n;
	/* Adds worker w's values of the STAT_SHARD entries to v[i] (v has
	 * n entries; the others are left alone). Runs on w's thread and
	 * must be short, like an rpc_shard_fn. NULL without such entries. */
	void (*shard_read)(struct worker *w, int64_t *v, void *arg);
	/* Writes v[i] of the STAT_PROCESS entries, on the management
	 * thread (rt may be NULL). NULL without such entries. */
	void (*process_read)(struct rt *rt, int64_t *v, void *arg);
	void *arg;
};

/*
 * Adds group g (borrowed for the process lifetime: static const), at
 * start-up, before mgmt_start. Returns 0; EEXIST when a group of that
 * name exists ("shard" is the server's); EINVAL for a bad or empty name,
 * a name twice in the table, or an entry its reader does not cover;
 * ENOSPC, ENOMEM.
 */
int stats_register(const struct stat_group *g);

/* Group "tcp": the workers' TCP connections (net_tcp_stats()), with
 * Kamailio's names. stats_register()'s result. */
int stats_register_tcp(void);

/* What a metrics function writes into: opaque. */
struct metrics_out;
typedef void metrics_fn(struct metrics_out *out, void *arg);

/*
 * Families with labels that only GET /metrics shows (dialog profile
 * sizes): fn(out, arg) runs on the management thread at every scrape,
 * after the registry's groups, and writes with metrics_family() and
 * metrics_sample(). It must only read what any thread may read. 0,
 * EINVAL (fn NULL), ENOSPC.
 */
int metrics_register(metrics_fn *fn, void *arg);
/* Starts family <prefix><name> (name sanitised as the groups' names). */
void metrics_family(struct metrics_out *out, const char *name,
                    enum stat_kind kind, const char *help);
/* A sample of the current family: npairs labels, labels[2k] a name
 * ([A-Za-z_][A-Za-z0-9_]*) and labels[2k+1] its value (any text: escaped
 * here, invalid UTF-8 replaced). */
void metrics_sample(struct metrics_out *out, const char *const *labels,
                    size_t npairs, int64_t v);
/* The same with the value as text, the sample's name being the family's
 * followed by suffix ("_bucket", "_sum", "_count" of a histogram; ""). */
void metrics_sample_text(struct metrics_out *out, const char *suffix,
                         const char *const *labels, size_t npairs,
                         const char *value);

/* ------------------------------------------------------- script metrics */

/*
 * Metrics the configuration declares and the script moves, as Kamailio's
 * xhttp_prom has them (modparam "prom_counter", "prom_gauge",
 * "prom_histogram", each "name=N;label=a:b:c;buckets=0.1:1:10"): series by
 * label values, made on first use, on GET /metrics after the statistics.
 * Declared at start-up; moved from any thread.
 */
#define PROM_LABELS_MAX 3
enum prom_kind { PROM_COUNTER, PROM_GAUGE, PROM_HISTOGRAM };

/* NULL when spec is a valid declaration of a kind metric, else why not
 * (for the configuration's check of the modparam). */
const char *prom_spec_check(enum prom_kind kind, const char *spec);
/* Declares a metric: 0; EINVAL (bad spec), EEXIST (name taken), ENOSPC,
 * with *why saying so. Before prom_register_page(). */
int prom_declare(enum prom_kind kind, const char *spec, const char **why);
/* Series not moved for this long are dropped (0: never; default 60). */
void prom_set_timeout(unsigned minutes);
/* Shows the declared metrics on /metrics (none declared: nothing) and adds
 * Kamailio's xhttp_prom.counter_inc, counter_reset, gauge_set, gauge_reset
 * methods. 0 or the registries' error. */
int prom_register(void);
/*
 * Kamailio's KEMI functions, from any thread: the metric of that name and
 * kind with exactly nlabels labels, the series of those values. 1, or -1
 * (logged: no such metric, a counter going down, a value that is not a
 * number, the metric's series limit).
 */
int prom_counter_inc(struct slice name, int64_t n, const struct slice *labels,
                     unsigned nlabels);
int prom_reset(struct slice name, enum prom_kind kind,
               const struct slice *labels, unsigned nlabels);
/* gauge_set (PROM_GAUGE) or histogram_observe (PROM_HISTOGRAM) of value,
 * a number as text */
int prom_value(enum prom_kind kind, struct slice name, struct slice value,
               const struct slice *labels, unsigned nlabels);

/* --------------------------------------------------------------- server */

struct mgmt_config {
	/* "http:ADDR:PORT", "http:PORT" (127.0.0.1) or "unix:PATH"
	 * (borrowed until mgmt_start returns); none: the default socket. */
	const char *listen[MGMT_MAX_LISTEN];
	unsigned nlisten;
	/* File holding the bearer token HTTP requests must carry; NULL: no
	 * token. Read once at start. */
	const char *token_file;
	struct rt *rt;             /* for rpc_for_each_shard; may be NULL */
	void *app;                 /* rpc_app() */
	size_t max_request;        /* 0: MGMT_MAX_REQUEST */
	unsigned shard_timeout_ms; /* per worker; 0: 2000 */
	bool pretty;               /* indented HTTP replies */
	/* Start of every /metrics name but the process_* ones (copied);
	 * NULL: MGMT_METRICS_PREFIX. Characters outside [A-Za-z0-9_]
	 * become '_'. */
	const char *metrics_prefix;
};

#define MGMT_METRICS_PREFIX "imsdlg_"

struct mgmt;

/*
 * Fills out from the loaded configuration: rpc_listen (repeatable),
 * rpc_token, modparam("jsonrpcs", "pretty_format"), metrics_prefix (else
 * Kamailio's modparam("xhttp_prom", "xhttp_prom_beginning")). Strings are
 * borrowed from c. Fails (EINVAL, message in err) for more than
 * MGMT_MAX_LISTEN.
 */
int mgmt_config_from_cfg(struct mgmt_config *out, const struct cfg *c,
                         char *err, size_t errsize);

/* For struct cfg_param_def.check of rpc_listen: NULL or why not. */
const char *mgmt_listen_check(const struct cfg_value *v);

/*
 * Binds every endpoint (errors name it), reads the token, registers the
 * built-in methods (system.*, core.*) and starts the management thread.
 * HTTP listens only where the spec names an address (127.0.0.1 when it
 * names none). A UNIX socket path that another live server holds is an
 * error, except for the default socket, which is then skipped with a
 * warning (several test daemons may run at once); a stale one is replaced.
 */
int mgmt_start(struct mgmt **out, const struct mgmt_config *cfg, char *err,
               size_t errsize);

/* Endpoints served, as "unix:/run/imsdlg/imsdlg_rpc.sock" or
 * "http:127.0.0.1:5080" (with the port bound, for port 0). */
unsigned mgmt_endpoints(const struct mgmt *m);
const char *mgmt_endpoint(const struct mgmt *m, unsigned i);

/*
 * Stops the thread (after the call it is serving), closes every endpoint,
 * removes the socket files it created and frees m (may be NULL). Call it
 * after the runtime's workers have stopped (rt_wait) or before they ever
 * got a job from it, and before rt_free.
 */
void mgmt_stop(struct mgmt *m);

/*
 * The default UNIX socket: imsdlg_rpc.sock in /run/imsdlg when that
 * directory is writable (or can be made), else in $XDG_RUNTIME_DIR, else
 * in /tmp/imsdlg-<uid> (made 0700). For the server (create true) it makes
 * the directory; for a client (create false) it returns the first of these
 * where a socket exists, else the server's choice. Returns 0 or ENAMETOOLONG.
 */
int mgmt_default_socket(char *buf, size_t size, bool create);

#endif
