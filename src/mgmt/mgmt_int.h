/* mgmt internals shared by its files; nothing here is for other components. */
#ifndef IMSDLG_MGMT_INT_H
#define IMSDLG_MGMT_INT_H

#include <sys/types.h>
#include <time.h>

#include <microhttpd.h>
#include <uv.h>

#include "mgmt/mgmt.h"

#define MGMT_DEFAULT_SHARD_TIMEOUT_MS 2000
#define MGMT_DEFAULT_HTTP_PORT        5080
#define MGMT_MAX_CONNS                64 /* UNIX clients at once */
#define MGMT_TOKEN_MAX                1024

/* ------------------------------------------------------------ registry */

/* Copies up to max method names, sorted, into names; returns how many. */
size_t rpc_method_names(const char **names, size_t max);
const struct mgmt_page *mgmt_page_lookup(const char *path);
/* system.* and core.* (core_rpc.c), registered once per process. */
void mgmt_register_builtins(void);
/* core.echo lives with the JSON code: it returns its parameters as they
 * came. */
extern const struct rpc_method jrpc_echo_method;

/* --------------------------------------------------------------- shards */

/* Where a handler waiting in rpc_for_each_shard() and the jobs it posted
 * meet. Refcounted: a job the handler gave up on may still run later. */
struct shard_sync;

struct shard_sync *shard_sync_new(void);
/* Wakes a waiting handler and makes every later wait fail (stopping). */
void shard_sync_cancel(struct shard_sync *s);
void shard_sync_unref(struct shard_sync *s);

/* ------------------------------------------------------------ JSON-RPC */

/* What a transport sends back for one request text. */
struct jrpc_reply {
	char *body;  /* malloc'ed, NUL-terminated; NULL: send nothing */
	size_t len;  /* of body */
	int status;  /* HTTP status the transport may use */
	bool failed; /* a single request that got an error */
};

/*
 * Parses in[0..len) (borrowed) as one request or a batch, runs the methods
 * and writes the reply into out (body NULL when everything was a
 * notification). pretty indents the body; otherwise it is one line.
 */
void jrpc_process(struct mgmt *m, const char *in, size_t len, bool pretty,
                  struct jrpc_reply *out);
/* Whether in[0..len) is wrong whatever follows (a syntax error rather
 * than an incomplete text). */
bool jrpc_broken(const char *in, size_t len);
/* A whole reply for an error found by the transport (id null). */
void jrpc_error_reply(struct jrpc_reply *out, int status, int code,
                      const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));
/* Runs a page; the body is its text (or the fault message). */
void jrpc_page(struct mgmt *m, const struct mgmt_page *page,
               struct jrpc_reply *out);

/* The server a call runs in. */
struct mgmt *rpc_server(const struct rpc_ctx *ctx);

/* ----------------------------------------------------------- statistics */

#define STATS_MAX_GROUPS 32
#define METRICS_MAX_FNS  8 /* metrics_register() functions */

/* The values of every group at one moment (stats.c), for one call. */
struct stats_snap {
	size_t n; /* groups, sorted by name */
	struct stats_snap_group {
		const struct stat_group *g;
		int64_t *base; /* the registry's reset points; NULL: none */
		int64_t *v;    /* raw values, n of the group */
		bool *sel;     /* chosen by stats_snap_select() */
	} e[STATS_MAX_GROUPS + 1];
};

/* The groups of the registry and of the call's server, sorted by name,
 * without values yet. ENOMEM (fault set). */
int stats_snap_init(struct stats_snap *s, struct rpc_ctx *ctx);
/* Reads every value: one pass over the workers (when a group has
 * per-shard entries), then the process values. 0 or the errno of
 * rpc_for_each_shard (fault set). */
int stats_snap_read(struct stats_snap *s, struct rpc_ctx *ctx);
/* Entry i of group e as reported: a counter minus its reset point. */
int64_t stats_snap_value(const struct stats_snap *s, size_t e, size_t i);
void stats_snap_fini(struct stats_snap *s);

/* The server's own group "shard" (queue_depth_<i> per worker of its
 * runtime): made by mgmt_start, freed by mgmt_stop. */
int stats_server_init(struct mgmt *m);
void stats_server_fini(struct mgmt *m);
/* stats.* methods and the /metrics page, with the built-ins. */
int stats_register_methods(void);
int metrics_register_page(void);
/* metrics_register()'s functions, for the page: copies up to max. */
size_t metrics_fns(metrics_fn **fns, void **args, size_t max);

/* ------------------------------------------------- Prometheus text 0.0.4 */

/* A growing text; failed (and empty) once an allocation failed. */
struct prom_buf {
	char *p;
	size_t len, cap;
	bool failed;
};

#define PROM_NAME_MAX 256

void prom_buf_fini(struct prom_buf *b);
/*
 * A metric name made of prefix, group (NULL: none) with '_', and name:
 * every character outside [A-Za-z0-9_] becomes '_', and '_' goes first
 * when it would start with a digit. Case is kept (Kamailio's xhttp_prom
 * keeps it: kamailio_tmx_UAS_transactions). Cut to size - 1; returns the
 * length.
 */
size_t prom_name(char *dst, size_t size, const char *prefix, const char *group,
                 const char *name);
/* "# HELP name help" (backslash and newline escaped) and "# TYPE name
 * counter|gauge". */
void prom_family(struct prom_buf *b, const char *name, enum stat_kind kind,
                 const char *help);
/* "name{l1="v1",...} value": label values escaped (\\, \", \n) and
 * made valid UTF-8 (U+FFFD for a bad byte). */
void prom_sample(struct prom_buf *b, const char *name,
                 const char *const *labels, size_t npairs, const char *value);

/* --------------------------------------------------------------- server */

enum mgmt_ep_kind {
	MGMT_EP_UNIX,
	MGMT_EP_HTTP,
};

/* A parsed rpc_listen value. */
struct mgmt_spec {
	enum mgmt_ep_kind kind;
	char path[108];          /* UNIX: sun_path; "" for the default */
	union net_sockaddr addr; /* HTTP */
};

int mgmt_spec_parse(struct mgmt_spec *out, const char *s, const char **why);

struct uconn;

struct mgmt_ep {
	struct mgmt *m;
	enum mgmt_ep_kind kind;
	char name[160]; /* "unix:/path", "http:127.0.0.1:5080" */
	/* UNIX */
	char path[108];
	bool bound; /* the file is ours to remove */
	dev_t dev;  /* of the socket file we made, so that */
	ino_t ino;  /* we never remove someone else's */
	uv_pipe_t listener;
	bool listener_init;
	/* HTTP */
	struct MHD_Daemon *mhd;
	uv_poll_t poll;
	uv_timer_t timer;
	bool poll_init, timer_init;
};

struct mgmt {
	struct mgmt_config cfg;
	char token[MGMT_TOKEN_MAX];
	size_t token_len; /* 0: no token required */
	time_t started;
	struct shard_sync *sync;

	uv_loop_t loop;
	bool loop_init;
	uv_async_t wake;
	bool wake_init;
	pthread_t thread;
	bool thread_started;

	struct mgmt_ep eps[MGMT_MAX_LISTEN];
	unsigned neps;
	char metrics_prefix[64];
	/* Group "shard": one gauge per worker, names made at start. */
	struct stat_group shard_group;
	struct stat_def *shard_defs;
	char *shard_names;
	struct uconn *conns; /* open UNIX clients */
	unsigned nconns;
};

#endif
