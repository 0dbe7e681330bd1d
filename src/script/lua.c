/*
 * The Lua engine: one state per worker, the KSR tables built from the
 * export registry, the one trampoline every KSR function goes through, and
 * route runs with their error handling.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <lauxlib.h>
#include <lualib.h>

#include "script/script_int.h"

/*
 * KSR.x.exit() and KSR.x.drop() unwind the Lua function with this error
 * object, as app_lua does with its marker string; script_run() swallows
 * it. The address of a constant cannot be forged from Lua.
 */
static const char exit_marker = 0;

#define ENTRY_REQUEST "ksr_request_route"
#define ENTRY_REPLY   "ksr_reply_route"

static struct script *state_of(lua_State *L)
{
	return *(struct script **)lua_getextraspace(L);
}

static struct tm_ctx *current_ctx(const struct script *s)
{
	return s->cur ? s->cur->ctx : NULL;
}

void script_note_answered(struct script_call *c)
{
	if (c->script->cur)
		c->script->cur->answered = true;
}

/* ------------------------------------------------------------ trampoline */

static int raise_exit(lua_State *L)
{
	lua_pushlightuserdata(L, (void *)&exit_marker);
	return lua_error(L);
}

/* "KSR.tm." / "KSR." as luaL_error arguments. */
#define EXP_FMT     "KSR.%s%s%s"
#define EXP_ARGS(e) (e)->module, (e)->module[0] ? "." : "", (e)->name

static int arg_error(lua_State *L, const struct script_export *e, int i,
                     const char *expected)
{
	return luaL_error(L, EXP_FMT ": bad argument #%d (%s expected, got %s)",
	                  EXP_ARGS(e), i, expected, luaL_typename(L, i));
}

static void push_val(lua_State *L, const struct script_val *v)
{
	switch (v->type) {
	case SCRIPT_VAL_INT:
		lua_pushinteger(L, (lua_Integer)v->i);
		break;
	case SCRIPT_VAL_STR:
		lua_pushlstring(L, v->s.p ? v->s.p : "", v->s.len);
		break;
	default:
		lua_pushnil(L);
	}
}

/* A call of a KSR function or of a pseudo-variable's getter, on the
 * state's scratch buffer; the caller fills in what it has of the rest. */
static void call_init(struct script_call *c, struct script *s,
                      struct tm_ctx *ctx)
{
	memset(c, 0, sizeof(*c));
	c->script = s;
	c->ctx = ctx;
	c->buf = s->buf;
	c->bufsize = sizeof(s->buf);
}

/*
 * Every KSR function: upvalue 1 is its row of the export table. Checks
 * the arguments against the signature into a stack array (strings stay
 * in Lua, nothing is allocated), calls, converts the result. An exit set
 * by the function (or before it, if the script caught the unwinding with
 * pcall) stops the Lua function.
 */
static int trampoline(lua_State *L)
{
	const struct script_export *e = lua_touserdata(L, lua_upvalueindex(1));
	struct script *s = state_of(L);
	struct tm_ctx *ctx = current_ctx(s);
	struct script_val args[SCRIPT_MAX_ARGS];
	struct script_call c;
	int top = lua_gettop(L);
	unsigned n = 0;
	int ret;

	if (ctx == NULL && !(e->flags & SCRIPT_EXP_ANYWHERE))
		return luaL_error(L, EXP_FMT ": not available outside a route",
		                  EXP_ARGS(e));
	if (ctx && ctx->exit)
		return raise_exit(L);
	for (const char *p = e->params; *p; p++) {
		int i = (int)n + 1;
		int isnum;

		if (*p == '*') {
			for (; i <= top && n < SCRIPT_MAX_ARGS; i++, n++) {
				int t = lua_type(L, i);
				if (t != LUA_TSTRING && t != LUA_TNUMBER)
					return arg_error(L, e, i,
					                 "string or integer");
				args[n].type = lua_isinteger(L, i)
				                       ? SCRIPT_VAL_INT
				                       : SCRIPT_VAL_STR;
				args[n].i = lua_tointeger(L, i);
				args[n].s.p =
				        lua_tolstring(L, i, &args[n].s.len);
			}
			break;
		}
		if (*p == 's') {
			int t = lua_type(L, i);
			if (t != LUA_TSTRING && t != LUA_TNUMBER)
				return arg_error(L, e, i, "string");
			args[n].type = SCRIPT_VAL_STR;
			args[n].i = 0;
			args[n].s.p = lua_tolstring(L, i, &args[n].s.len);
		} else {
			lua_Integer v = lua_tointegerx(L, i, &isnum);
			if (!isnum)
				return arg_error(L, e, i, "integer");
			args[n].type = SCRIPT_VAL_INT;
			args[n].i = (long long)v;
			args[n].s = SLICE_NULL;
		}
		n++;
	}

	call_init(&c, s, ctx);
	c.exp = e;
	c.args = args;
	c.nargs = n;
	ret = e->fn(&c);
	if (c.error)
		return luaL_error(L, EXP_FMT ": %s", EXP_ARGS(e), c.error);
	if (ctx && ctx->exit)
		return raise_exit(L);
	switch (e->ret) {
	case SCRIPT_RET_INT:
		lua_pushinteger(L, ret);
		return 1;
	case SCRIPT_RET_BOOL:
		lua_pushboolean(L, ret > 0);
		return 1;
	case SCRIPT_RET_VAL:
		push_val(L, &c.ret);
		return 1;
	default:
		return 0;
	}
}

/* KSR.<module>.<name> for every registered function. */
static void build_ksr(lua_State *L)
{
	const struct script_export *t;
	size_t n;

	lua_newtable(L); /* KSR */
	for (size_t k = 0; script_export_table(k, &t, &n); k++) {
		for (size_t i = 0; i < n; i++) {
			const struct script_export *e = &t[i];
			int tbl = lua_gettop(L);

			if (e->module[0]) {
				if (lua_getfield(L, -1, e->module) !=
				    LUA_TTABLE) {
					lua_pop(L, 1);
					lua_newtable(L);
					lua_pushvalue(L, -1);
					lua_setfield(L, tbl, e->module);
				}
			}
			lua_pushlightuserdata(L, (void *)e);
			lua_pushcclosure(L, trampoline, 1);
			lua_setfield(L, -2, e->name);
			lua_settop(L, tbl);
		}
	}
	lua_setglobal(L, "KSR");
}

/* ------------------------------------------------------------ the state */

/* Counts the state's memory and refuses to pass the limit; Lua turns the
 * refusal into a memory error of the running route, not a crash. */
static void *lua_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct script *s = ud;
	size_t old = ptr ? osize : 0;
	void *p;

	if (nsize == 0) {
		mem_put(ptr, old);
		s->mem -= old;
		return NULL;
	}
	if (s->mem_limit && nsize > old &&
	    s->mem - old + nsize > s->mem_limit) {
		s->mem_hit = true;
		return NULL;
	}
	p = mem_resize(ptr, old, nsize);
	if (p)
		s->mem = s->mem - old + nsize;
	return p;
}

/* Message handler of every pcall: keeps the exit marker, and adds the
 * traceback to real errors. */
static int msgh(lua_State *L)
{
	const char *msg;

	if (lua_touserdata(L, 1) == (const void *)&exit_marker)
		return 1;
	msg = lua_tostring(L, 1);
	if (msg == NULL)
		msg = luaL_tolstring(L, 1, NULL);
	luaL_traceback(L, L, msg, 1);
	return 1;
}

static int reply_default(struct tm_ctx *ctx, unsigned code, struct slice reason)
{
	return ctx->t ? tm_t_reply(ctx, code, reason)
	              : tm_sl_reply(ctx, code, reason);
}

static void copy_error(char *err, size_t errsize, const char *msg)
{
	if (err && errsize)
		snprintf(err, errsize, "%s", msg);
}

static int load(struct script **out, const char *name, const char *text,
                size_t len, const struct rr_config *rr, char *err,
                size_t errsize)
{
	struct script *s = calloc(1, sizeof(*s));
	char chunk[512];
	int rc;

	if (s == NULL)
		return ENOMEM;
	s->mem_limit = SCRIPT_MEM_LIMIT;
	s->thread = pthread_self(); /* each worker makes its own state */
	s->error_reply = reply_default;
	rr_config_defaults(&s->rr_default);
	s->rr = rr ? rr : &s->rr_default;
	s->L = lua_newstate(lua_alloc, s);
	if (s->L == NULL) {
		free(s);
		return ENOMEM;
	}
	*(struct script **)lua_getextraspace(s->L) = s;
	script_registry_init();
	/* Most garbage dies with its message: the generational mode
	 * collects it cheaply. */
	lua_gc(s->L, LUA_GCGEN, 0, 0);
	luaL_openlibs(s->L);
	build_ksr(s->L);

	/* Lua prints "@name" chunks as "name:LINE:". Text only: a
	 * precompiled chunk could crash the state. */
	snprintf(chunk, sizeof(chunk), "@%s", name);
	if (text)
		rc = luaL_loadbufferx(s->L, text, len, chunk, "t");
	else
		rc = luaL_loadfilex(s->L, name, "t");
	if (rc == LUA_OK) {
		lua_pushcfunction(s->L, msgh);
		lua_insert(s->L, -2);
		rc = lua_pcall(s->L, 0, 0, -2);
	}
	if (rc != LUA_OK) {
		const char *msg = lua_tostring(s->L, -1);
		char line[512];

		/* The first line: the message without the traceback. */
		snprintf(line, sizeof(line), "%s",
		         msg ? msg : "error loading the script");
		line[strcspn(line, "\n")] = '\0';
		copy_error(err, errsize, line);
		script_free(s);
		return rc == LUA_ERRMEM ? ENOMEM : EINVAL;
	}
	lua_settop(s->L, 0);
	if (lua_getglobal(s->L, ENTRY_REQUEST) != LUA_TFUNCTION) {
		snprintf(chunk, sizeof(chunk),
		         "%s: no function " ENTRY_REQUEST " defined", name);
		copy_error(err, errsize, chunk);
		script_free(s);
		return EINVAL;
	}
	lua_settop(s->L, 0);
	*out = s;
	return 0;
}

int script_new(struct script **out, const char *path,
               const struct rr_config *rr, char *err, size_t errsize)
{
	return load(out, path, NULL, 0, rr, err, errsize);
}

int script_new_string(struct script **out, const char *name, const char *text,
                      size_t len, const struct rr_config *rr, char *err,
                      size_t errsize)
{
	return load(out, name, text ? text : "", text ? len : 0, rr, err,
	            errsize);
}

void script_free(struct script *s)
{
	if (s == NULL)
		return;
	if (s->L)
		lua_close(s->L);
	script_vars_free(s);
	free(s);
}

void script_set_error_reply(struct script *s, script_reply_fn *fn)
{
	s->error_reply = fn ? fn : reply_default;
}

void script_set_mem_limit(struct script *s, size_t bytes)
{
	s->mem_limit = bytes;
}

void script_set_log_prefix(struct script *s, const char *fmt)
{
	s->log_prefix = fmt && *fmt ? fmt : NULL;
}

/* The log prefix of the message ctx holds, for the route about to run. */
static void log_prefix_start(struct script *s, struct tm_ctx *ctx)
{
	struct script_call c;
	char text[LOG_PREFIX_MAX];

	call_init(&c, s, ctx);
	log_set_prefix(text, script_pv_format(&c, slice_cstr(s->log_prefix),
	                                      text, sizeof(text)));
}

size_t script_mem_used(const struct script *s)
{
	return s->mem;
}

/* ------------------------------------------------------------ route runs */

static const char *entry_point(enum tm_route_type rt)
{
	switch (rt) {
	case TM_ROUTE_REQUEST:
		return ENTRY_REQUEST;
	case TM_ROUTE_REPLY:
		return ENTRY_REPLY;
	default:
		return NULL;
	}
}

static void route_failed(struct script *s, struct tm_ctx *ctx,
                         enum tm_route_type rt, const char *fn, int rc,
                         bool answered)
{
	lua_State *L = s->L;
	const char *msg = lua_tostring(L, -1);
	struct slice callid = SLICE_NULL;
	int len;

	if (ctx->msg)
		sip_msg_call_id(&callid, ctx->msg);
	if (rc == LUA_ERRMEM) {
		LOG_ERR("script: %s: out of memory%s (%zu bytes in use), "
		        "Call-ID %.*s",
		        fn, s->mem_hit ? " (memory limit reached)" : "", s->mem,
		        SLICE_ARG(callid));
	} else {
		if (msg == NULL)
			msg = "(error object is not a string)";
		len = (int)strcspn(msg, "\n");
		LOG_ERR("script: %s: %.*s, Call-ID %.*s", fn, len, msg,
		        SLICE_ARG(callid));
		if (msg[len])
			LOG_DBG("script: %s", msg);
	}
	s->mem_hit = false;
	/* The request would otherwise wait for a reply nobody sends. */
	if (ctx->t && tm_trans_final_sent(ctx->t))
		answered = true;
	if (rt == TM_ROUTE_REQUEST && !answered && ctx->msg &&
	    ctx->msg->is_request && ctx->msg->method_id != SIP_METHOD_ACK &&
	    !ctx->drop)
		s->error_reply(ctx, 500, SLICE_LIT("Server Internal Error"));
}

/* ---------------------------------------------------- route time limit */

/* The script whose outermost route this thread runs, for the handler
 * (volatile: the handler runs between any two instructions). */
static _Thread_local struct script *volatile running;

static uint64_t coarse_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

/* Has the current run of s (if any) gone on for limit_ms? */
static bool running_for(struct script *s, unsigned limit_ms)
{
	uint64_t start = atomic_load(&s->route_start_ms);

	return start && coarse_ms() - start >= limit_ms;
}

/* Past the limit the watchdog applied? A signal meant for the run before
 * may land in this one. */
static bool overran(struct script *s)
{
	return running_for(s, atomic_load(&s->stop_limit_ms));
}

/* Armed by the signal, on every Lua instruction until the outermost run
 * ends: an error raised inside a nested run (a branch route inside
 * t_relay()) ends that run, and the next instruction of the run around it
 * raises it again. A count hook never fires inside C functions, so the
 * error handler and the code between the runs go undisturbed. */
static void stop_hook(lua_State *L, lua_Debug *ar)
{
	struct script *s = running;

	(void)ar;
	if (s == NULL || !overran(s)) {
		lua_sethook(L, NULL, 0, 0);
		return;
	}
	luaL_error(L,
	           "route stopped: it ran for %d ms or more "
	           "(app_lua route_time_limit)",
	           (int)atomic_load(&s->stop_limit_ms));
}

static void on_stop_signal(int sig)
{
	struct script *s = running;

	(void)sig;
	if (s)
		lua_sethook(s->L, stop_hook, LUA_MASKCOUNT, 1);
}

void script_stop_signal_install(void)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_stop_signal;
	sa.sa_flags = SA_RESTART;
	sigemptyset(&sa.sa_mask);
	sigaction(SCRIPT_STOP_SIGNAL, &sa, NULL);
}

bool script_stop_overrun(struct script *s, unsigned limit_ms)
{
	if (!running_for(s, limit_ms))
		return false;
	atomic_store(&s->stop_limit_ms, limit_ms);
	if (atomic_exchange(&s->stop_sent, true))
		return false;
	pthread_kill(s->thread, SCRIPT_STOP_SIGNAL);
	return true;
}

void script_run(void *script, struct tm_ctx *ctx, enum tm_route_type rt,
                const char *name)
{
	struct script *s = script;
	lua_State *L = s->L;
	const char *fn = name ? name : entry_point(rt);
	struct script_frame frame = {ctx, false, s->cur};
	int base, rc;

	if (fn == NULL || ctx == NULL)
		return;
	/* Relative to whatever C function is running now: a nested run
	 * starts inside a KSR call. */
	base = lua_gettop(L);
	if (!lua_checkstack(L, 4)) {
		LOG_ERR("script: %s: Lua stack exhausted", fn);
		return;
	}
	lua_pushcfunction(L, msgh);
	if (lua_getglobal(L, fn) != LUA_TFUNCTION) {
		lua_settop(L, base);
		/* ksr_reply_route is optional, as in app_lua. */
		if (name || rt != TM_ROUTE_REPLY)
			LOG_ERR("script: route function %s is not defined", fn);
		return;
	}
	if (ctx->event)
		lua_pushstring(L, ctx->event);
	if (frame.prev == NULL) {
		running = s;
		atomic_store(&s->stop_sent, false);
		atomic_store(&s->route_start_ms, coarse_ms());
		if (s->log_prefix)
			log_prefix_start(s, ctx);
	}
	s->cur = &frame;
	rc = lua_pcall(L, ctx->event ? 1 : 0, 0, base + 1);
	s->cur = frame.prev;
	if (frame.prev == NULL) {
		atomic_store(&s->route_start_ms, 0);
		running = NULL;
		if (atomic_load(&s->stop_sent))
			lua_sethook(L, NULL, 0, 0); /* armed after the end */
	}
	if (rc != LUA_OK && lua_touserdata(L, -1) != (const void *)&exit_marker)
		route_failed(s, ctx, rt, fn, rc, frame.answered);
	if (frame.prev == NULL && s->log_prefix)
		log_set_prefix(NULL, 0);
	lua_settop(L, base);
}
