/*
 * script: the Lua 5.4 routing engine. Runs Kamailio KEMI scripts (the
 * `KSR.*` API of app_lua) so that one file routes on Kamailio and here.
 *
 * One Lua state per worker (struct script), loaded once at start-up. tm
 * calls script_run() for every route (struct tm_script); while a route
 * runs, its struct tm_ctx is the state's current context, reached by every
 * KSR function.
 *
 * The KSR API is built from export tables (struct script_export), one row
 * per function: KSR.<module>.<name> (KSR.<name> for module ""), with its
 * parameter signature and return kind. One generic trampoline checks the
 * arguments, calls the C function and converts its result, so adding a
 * function is adding a row. Components register their own tables, and
 * their pseudo-variables ($dlg_var(...)), before any script_new().
 *
 * Ownership: tables and names given to the registries are borrowed for the
 * process lifetime (static const). Strings a function returns through
 * struct script_call.ret are borrowed until the function returns.
 *
 * Threads: the registries are written at start-up only, by one thread,
 * before the workers start; afterwards everything is read-only and each
 * struct script belongs to one worker.
 */
#ifndef IMSDLG_SCRIPT_H
#define IMSDLG_SCRIPT_H

#include <signal.h>

#include "core/core.h"
#include "rr/rr.h"
#include "tm/tm.h"

struct script;

/* ----------------------------------------------------------------- values */

enum script_val_type {
	SCRIPT_VAL_NULL, /* Lua nil */
	SCRIPT_VAL_INT,
	SCRIPT_VAL_STR,
};

/* An argument or result. A string argument is also NUL-terminated at
 * s.p[s.len] (it is a Lua string). */
struct script_val {
	enum script_val_type type;
	long long i;
	struct slice s;
};

/* Most arguments a function takes (Kamailio's KEMI allows 6). */
#define SCRIPT_MAX_ARGS 8

/* ---------------------------------------------------------------- exports */

enum script_ret {
	SCRIPT_RET_NONE, /* nothing (the C return value is ignored) */
	SCRIPT_RET_INT,  /* the C return value, as a Lua integer */
	SCRIPT_RET_BOOL, /* true when the C return value is > 0 */
	SCRIPT_RET_VAL,  /* call->ret: string, integer or nil */
};

/* The function may run without a routing context (at load time, from the
 * script's top level): logging, $var. Others raise a Lua error there. */
#define SCRIPT_EXP_ANYWHERE 1u

struct script_call;

/*
 * A KSR function. Arguments are checked against the signature before the
 * call. Returns the Kamailio-convention result (> 0 true/success, < 0
 * false/failure). Setting ctx->exit stops the Lua function after the call,
 * as KSR.x.exit() does (tm ops that return 0 "handled" do this).
 */
typedef int(script_export_fn)(struct script_call *c);

struct script_export {
	const char *module; /* "tm"; "" for KSR.<name> itself */
	const char *name;   /* KEMI name, also the name KSR.x.modf() uses */
	script_export_fn *fn;
	/* One letter per parameter: 's' string (numbers are converted, as
	 * Lua does), 'i' integer (integral numbers or numeric strings).
	 * A final '*' accepts any number of further strings or integers. */
	const char *params;
	enum script_ret ret;
	unsigned flags; /* SCRIPT_EXP_* */
	long arg;       /* free for the function (c->exp->arg) */
};

/* What a function (or a pseudo-variable accessor) gets; lives on the C
 * stack of one call. */
struct script_call {
	struct script *script;
	struct tm_ctx *ctx;              /* NULL outside a route */
	const struct script_export *exp; /* NULL for pseudo-variables */
	const struct script_val *args;   /* nargs of them */
	unsigned nargs;
	struct slice pv_arg;   /* pseudo-variables: the text in "(...)" */
	struct script_val ret; /* SCRIPT_RET_VAL and pv getters */
	char *buf;             /* scratch for composing ret.s ... */
	size_t bufsize;        /* ... of this size, reused by the next call */
	const char *error;     /* set by script_call_error() */
};

/*
 * Makes the call raise a Lua error "KSR.mod.name: <message>" (for script
 * bugs: an unknown pseudo-variable, a read-only one). Returns -1.
 */
int script_call_error(struct script_call *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static inline void script_ret_int(struct script_call *c, long long i)
{
	c->ret.type = SCRIPT_VAL_INT;
	c->ret.i = i;
}

/* s is borrowed until the function returns. */
static inline void script_ret_str(struct script_call *c, struct slice s)
{
	c->ret.type = SCRIPT_VAL_STR;
	c->ret.s = s;
}

/*
 * Adds n functions (table borrowed for the process lifetime). Start-up
 * only, before the first script_new(). EEXIST when a module and name is
 * taken, EINVAL for a bad signature, ENOSPC beyond the registry's size.
 */
int script_register_exports(const struct script_export *table, size_t n);
/* Calls fn for every registered function (built-ins first). */
void script_foreach_export(void (*fn)(const struct script_export *e, void *arg),
                           void *arg);

/* ------------------------------------------------------ pseudo-variables */

/*
 * Reads the variable into c->ret (left SCRIPT_VAL_NULL for $null). Returns
 * 0, or -1 after script_call_error().
 */
typedef int(script_pv_get_fn)(struct script_call *c);
/* Writes v; v->type SCRIPT_VAL_NULL unsets. Returns 0, an errno for a
 * value that cannot be set (logged, the script goes on), or -1 after
 * script_call_error(). */
typedef int(script_pv_set_fn)(struct script_call *c,
                              const struct script_val *v);

struct script_pv_def {
	const char *name; /* "ru", "dlg_var": without '$' and "(...)" */
	bool has_arg;     /* written $name(arg) */
	script_pv_get_fn *get;
	script_pv_set_fn *set; /* NULL: read-only */
};

/*
 * Adds a pseudo-variable (name borrowed for the process lifetime).
 * Start-up only, like script_register_exports(). EEXIST, EINVAL (bad
 * name, no getter), ENOSPC.
 */
int script_register_pv(const char *name, bool has_arg, script_pv_get_fn *get,
                       script_pv_set_fn *set);
void script_foreach_pv(void (*fn)(const struct script_pv_def *pv, void *arg),
                       void *arg);
/*
 * Assigns v to the pseudo-variable written as spec ("$var(n)"), for
 * functions that store results in a variable the script names (Kamailio's
 * get_profile_size(p, v, "$var(n)")). 1, or -1 after a Lua error or a
 * logged failure. c->pv_arg is overwritten.
 */
int script_pv_write(struct script_call *c, struct slice spec,
                    const struct script_val *v);

/* ------------------------------------------------------------ the engine */

/*
 * Creates a Lua state, builds KSR from the registries and runs the script
 * at path once (its top level). rr (borrowed for the state's lifetime; NULL
 * for the defaults) is what KSR.rr.record_route() uses.
 * Returns 0, EINVAL when the script does not load (syntax error, error in
 * its top level, no ksr_request_route function) with "FILE:LINE: message"
 * (or "FILE: message") in err, ENOMEM.
 */
int script_new(struct script **out, const char *path,
               const struct rr_config *rr, char *err, size_t errsize);
/* The same for text[0..len) named name (borrowed for the call). */
int script_new_string(struct script **out, const char *name, const char *text,
                      size_t len, const struct rr_config *rr, char *err,
                      size_t errsize);
void script_free(struct script *s);

/*
 * struct tm_script.run: runs function name, or with name NULL the entry
 * point of the route type (ksr_request_route; ksr_reply_route when the
 * script has one), with ctx (borrowed) current. KSR.x.exit()/drop() end
 * the function normally. A Lua error is logged with the Call-ID; in the
 * request route a request other than ACK that was not answered gets a 500.
 * Re-entrant: a route may run inside another one (branch routes inside
 * t_relay()).
 */
void script_run(void *script, struct tm_ctx *ctx, enum tm_route_type rt,
                const char *name);

/*
 * Route time limit. A route that loops would hold its worker, and every
 * call of that shard, for good; the watchdog stops it with a Lua error
 * (logged with the Call-ID, a 500 for the request as after any error).
 * script_stop_signal_install() installs the handler of SCRIPT_STOP_SIGNAL
 * once per process. script_stop_overrun(), from any thread (the watchdog),
 * sends that signal to the thread running s when its outermost route has
 * run for limit_ms or more, once per route run, and returns true when it
 * sent it. In that thread the handler arms a Lua hook (lua_sethook() is
 * safe in a signal handler, as Lua's own interpreter uses it), and the
 * hook raises the error at the next Lua instruction if the route still
 * runs past the limit. A route blocked inside a C function is stopped
 * when it returns to Lua.
 */
#define SCRIPT_STOP_SIGNAL SIGRTMIN
void script_stop_signal_install(void);
bool script_stop_overrun(struct script *s, unsigned limit_ms);

/* How the 500 after a Lua error is sent; the default replies through the
 * transaction if there is one, statelessly otherwise. For tests. */
typedef int(script_reply_fn)(struct tm_ctx *ctx, unsigned code,
                             struct slice reason);
void script_set_error_reply(struct script *s, script_reply_fn *fn);

/* Memory the state may use (default SCRIPT_MEM_LIMIT; 0: unlimited).
 * Beyond it allocations fail and the route ends with a logged error. */
#define SCRIPT_MEM_LIMIT (64u << 20)
void script_set_mem_limit(struct script *s, size_t bytes);

/* Kamailio's log_prefix: fmt (kept, not copied; "" or NULL: none) is
 * expanded as xlog does for each message a route handles, and put in
 * front of every line logged while the route runs (log_set_prefix()). */
void script_set_log_prefix(struct script *s, const char *fmt);
size_t script_mem_used(const struct script *s);

#endif
