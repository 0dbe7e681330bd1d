/* Internals shared by the files of script/. */
#ifndef IMSDLG_SCRIPT_INT_H
#define IMSDLG_SCRIPT_INT_H

#include <pthread.h>
#include <stdatomic.h>

#include <lua.h>

#include "script/script.h"

/* Scratch for composed values (a rebuilt URI, an address). */
#define SCRIPT_BUF_SIZE    2048
#define SCRIPT_VAR_BUCKETS 64

/* One route run; runs nest (branch routes inside t_relay()). */
struct script_frame {
	struct tm_ctx *ctx;
	bool answered; /* a reply was sent or the request relayed */
	struct script_frame *prev;
};

/* $var(name): per worker, kept across messages, as in Kamailio. */
struct script_var {
	struct script_var *next;
	uint64_t hash;
	char *name;
	size_t name_len;
	struct script_val v; /* v.s points into sbuf */
	char *sbuf;
	size_t scap;
};

struct script {
	lua_State *L;
	const struct rr_config *rr;
	struct rr_config rr_default;
	struct script_frame *cur; /* innermost route run, NULL between */
	script_reply_fn *error_reply;
	size_t mem, mem_limit;
	bool mem_hit; /* an allocation failed on the limit */
	/* The route time limit (script.h): when the outermost route run
	 * started (CLOCK_MONOTONIC_COARSE ms, 0 between runs), the thread
	 * that made the state and runs its routes, the limit the watchdog
	 * applied, and whether it has signalled this run. */
	_Atomic uint64_t route_start_ms;
	pthread_t thread;
	_Atomic unsigned stop_limit_ms;
	atomic_bool stop_sent;
	const char *log_prefix; /* NULL: none */
	struct script_var *vars[SCRIPT_VAR_BUCKETS];
	size_t nvars;
	char buf[SCRIPT_BUF_SIZE];
	char errbuf[256];
};

/* registry.c: the built-in tables are registered once, first. */
void script_registry_init(void);
const struct script_export *script_export_find(const char *name);
const struct script_pv_def *script_pv_find(struct slice name);
/*
 * Kamailio's format strings (xlog): fmt with each $name and $name(arg) of
 * a known pseudo-variable replaced by its value ("<null>" for $null),
 * "$$" by '$'; anything else, a lone '$' too, is copied. Written into out
 * (truncated to size, not terminated); returns the length. Reuses c->ret and
 * c->buf.
 */
size_t script_pv_format(struct script_call *c, struct slice fmt, char *out,
                        size_t size);
/* Every table in registration order; false past the last. */
bool script_export_table(size_t i, const struct script_export **t, size_t *n);

/* ksr.c, pv.c: built-in tables. */
extern const struct script_export script_ksr_exports[];
extern const size_t script_ksr_nexports;
extern const struct script_export script_pv_exports[];
extern const size_t script_pv_nexports;
extern const struct script_pv_def script_builtin_pvs[];
extern const size_t script_builtin_npvs;

/* pv.c */
void script_vars_free(struct script *s);

enum script_uri_part {
	SCRIPT_URI_USER,
	SCRIPT_URI_HOST,
	SCRIPT_URI_PORT,
};

/* Rewrites one part of $ru (empty user or port: removed). 0, EINVAL for
 * an URI that does not parse or would not, ENOSPC. */
int script_ruri_set_part(struct script_call *c, enum script_uri_part part,
                         struct slice v);
/* lua.c: notes that the current request got a reply (or was relayed). */
void script_note_answered(struct script_call *c);

#endif
