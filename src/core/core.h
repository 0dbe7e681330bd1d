/*
 * core: the pieces every other component stands on.
 *
 *   slices   pointer + length views into buffers owned by someone else
 *   logging  Kamailio-numbered levels, stderr by default, syslog optional
 *   arena    bump allocator for per-message scratch, reset between messages
 *   obj      refcounted objects whose destructor unlinks them (libre style)
 *   timers   hierarchical timer wheel, O(1) add and cancel, virtual time
 *   hashing  xxhash for tables
 *
 * Nothing here takes a lock: every object is owned by one thread (its
 * shard). Functions return 0 or a positive errno; out-parameters come first
 * and are written only on success.
 */
#ifndef IMSDLG_CORE_H
#define IMSDLG_CORE_H

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* ---------------------------------------------------------------- slices */

/* A view of len bytes at p. Never owns memory; never NUL-terminated. */
struct slice {
	const char *p;
	size_t len;
};

#define SLICE_LIT(s) ((struct slice){(s), sizeof(s) - 1})
#define SLICE_NULL   ((struct slice){NULL, 0})
/* printf("%.*s", SLICE_ARG(s)) */
#define SLICE_ARG(s) (int)(s).len, (s).p

static inline struct slice slice_make(const char *p, size_t len)
{
	struct slice s = {p, len};
	return s;
}

/* Slice of the NUL-terminated string s (borrowed). */
struct slice slice_cstr(const char *s);
bool slice_eq(struct slice a, struct slice b);
/* ASCII case-insensitive comparison (SIP tokens, header names). */
bool slice_eq_nocase(struct slice a, struct slice b);
/* Against a NUL-terminated s (NULL: the empty slice). Inline: with a
 * literal s, a length that differs is found without a call. */
static inline bool slice_eq_cstr(struct slice a, const char *s)
{
	if (s == NULL)
		return a.len == 0;
	return a.len == strlen(s) && slice_eq(a, slice_make(s, a.len));
}

static inline bool slice_eq_cstr_nocase(struct slice a, const char *s)
{
	if (s == NULL)
		return a.len == 0;
	return a.len == strlen(s) && slice_eq_nocase(a, slice_make(s, a.len));
}
/* Removes leading and trailing SP, HT, CR and LF. */
struct slice slice_trim(struct slice s);
/*
 * Decimal digits only (no sign, no blanks), value <= max.
 * Returns EINVAL for an empty slice or a non-digit, ERANGE above max.
 */
int slice_to_u32(uint32_t *out, struct slice s, uint32_t max);
/* Copies into dst (size > 0), truncating, always NUL-terminating. */
size_t slice_copy_cstr(char *dst, size_t size, struct slice s);
/* A malloc'd NUL-terminated copy of s (which may hold NULs), or NULL. */
char *slice_strdup(struct slice s);

/* Number formatting for the hot paths, where printf costs a thousand
 * instructions a call: the digits of v into dst (not NUL-terminated),
 * returning how many. Decimal needs 20 bytes; hex (lowercase, zero-padded
 * to at least min_digits) 16. */
size_t fmt_u64(char *dst, uint64_t v);
size_t fmt_hex(char *dst, uint64_t v, unsigned min_digits);

/* --------------------------------------------------------------- logging */

/* Kamailio's numbering, so that `debug=` means the same thing. */
enum log_level {
	LL_ALERT = -5,
	LL_BUG = -4,
	LL_CRIT = -2,
	LL_ERR = -1,
	LL_WARN = 0,
	LL_NOTICE = 1,
	LL_INFO = 2,
	LL_DBG = 3,
};

void log_set_level(int level);
int log_get_level(void);
/* Sends further output to syslog(3) with ident (borrowed for the process
 * lifetime) instead of stderr. */
void log_use_syslog(const char *ident);
/* Text put in front of every message the calling thread logs until it is
 * set again (len 0: none); copied, at most LOG_PREFIX_MAX bytes. The
 * script's log_prefix, while a route handles a message. */
#define LOG_PREFIX_MAX 256
void log_set_prefix(const char *text, size_t len);
void log_msg(int level, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));
void log_vmsg(int level, const char *fmt, va_list ap);

#define LOG_AT(lvl, ...)                                                       \
	do {                                                                   \
		if ((lvl) <= log_get_level())                                  \
			log_msg((lvl), __VA_ARGS__);                           \
	} while (0)
#define LOG_CRIT(...)   LOG_AT(LL_CRIT, __VA_ARGS__)
#define LOG_ERR(...)    LOG_AT(LL_ERR, __VA_ARGS__)
#define LOG_WARN(...)   LOG_AT(LL_WARN, __VA_ARGS__)
#define LOG_NOTICE(...) LOG_AT(LL_NOTICE, __VA_ARGS__)
#define LOG_INFO(...)   LOG_AT(LL_INFO, __VA_ARGS__)
#define LOG_DBG(...)    LOG_AT(LL_DBG, __VA_ARGS__)

/* ----------------------------------------------------------------- arena */

struct arena_block;

/*
 * Bump allocator. The caller embeds it and may give it a first buffer (for
 * instance on the stack) so that the common case never calls malloc.
 * Extra blocks are malloc'ed on demand and released by arena_reset().
 */
struct arena {
	char *cur;
	char *end;
	char *first; /* caller's buffer, may be NULL */
	size_t first_size;
	struct arena_block *blocks; /* malloc'ed overflow blocks */
	size_t used;                /* bytes handed out since the last reset */
};

/* buf (borrowed, may be NULL) becomes the first block. */
void arena_init(struct arena *a, void *buf, size_t size);
/* 16-byte aligned, uninitialised; NULL when out of memory. */
void *arena_alloc(struct arena *a, size_t size);
/* NUL-terminated copy of s; NULL when out of memory. */
char *arena_strdup(struct arena *a, struct slice s);
/* The n parts one after the other, copied into a (NUL-terminated); the
 * empty slice when out of memory. */
struct slice arena_concat(struct arena *a, const struct slice *parts,
                          unsigned n);
/* Forgets every allocation; keeps the first block, frees the others. */
void arena_reset(struct arena *a);
/* Frees the overflow blocks; the arena may be initialised again. */
void arena_fini(struct arena *a);

/* ---------------------------------------------------------------- memory */

/*
 * What is allocated and freed per call (transactions and their buffers,
 * dialogs and legs, the Lua state's objects) comes from a per-thread cache
 * of freed blocks in front of malloc(). glibc's own cache keeps 7 blocks a
 * size and none above 1,032 bytes; request copies and reply buffers are
 * larger and timers free them in bursts, so most of those malloc() calls
 * took its slow path (~280 instructions; a cached block costs ~10). The
 * caller gives the size back: mem_put(p, n) and mem_resize(p, n, m) take
 * the size p was last given by mem_get(), mem_get_zero() or mem_resize()
 * (builds with assertions check it). A block may be put back by another
 * thread than the one that got it. Blocks of more than 4 KiB, and what
 * passes 4 MiB cached a thread, go to malloc() and free() directly; when
 * that happens often, the sizes no longer asked for leave the cache to
 * make room for those in use.
 */
void *mem_get(size_t size);
void *mem_get_zero(size_t size);
/* realloc(): NULL p is mem_get(new_size); NULL when out of memory, p
 * untouched. */
void *mem_resize(void *p, size_t old_size, size_t new_size);
void mem_put(void *p, size_t size);
/* Frees the calling thread's cache: at the end of every thread that used
 * it (the cached blocks are reachable from nowhere else). */
void mem_thread_fini(void);
/* Bytes the calling thread's cache holds. */
size_t mem_cached_bytes(void);
/* Bytes a block of size takes (rounded up), as malloc_usable_size()
 * tells of a malloc()'ed one. */
size_t mem_block_size(size_t size);

/* ------------------------------------------------------------------- obj */

typedef void(obj_destroy_fn)(void *obj);

/*
 * Refcounted object of size bytes, zeroed, with refcount 1. The destructor
 * (may be NULL) runs when the last reference is dropped and must unlink the
 * object from every table and stop its timers: dropping the last reference
 * is the only teardown path. Not thread-safe by design: an object belongs
 * to one shard. Returns NULL when out of memory.
 */
void *obj_alloc(size_t size, obj_destroy_fn *dtor);
/* Returns obj with one more reference (obj may be NULL). */
void *obj_ref(void *obj);
/* Drops one reference (obj may be NULL); destroys at zero. Returns NULL. */
void *obj_unref(void *obj);
unsigned obj_refcount(const void *obj);
/* Bytes currently held by live objects of the calling thread. */
size_t obj_bytes_in_use(void);

/* ---------------------------------------------------------------- timers */

struct tmr;
typedef void(tmr_fn)(struct tmr *t, void *arg);

/*
 * A timer lives inside its owner (embedded), never in a separate
 * allocation. Initialise with tmr_init() before first use.
 */
struct tmr {
	struct tmr *next;
	struct tmr *prev;
	uint64_t expires; /* absolute, in wheel milliseconds */
	tmr_fn *fn;
	void *arg;
};

#define TWHEEL_LEVELS 5
#define TWHEEL_SLOTS  64

/*
 * Hierarchical timing wheel with 1 ms resolution: TWHEEL_LEVELS levels of
 * TWHEEL_SLOTS slots each (level k has a granularity of 64^k ms), so add
 * and cancel are O(1) and a timer is moved at most TWHEEL_LEVELS - 1
 * times before it fires. Time is virtual: the caller feeds the current time
 * to twheel_advance(), which makes tests deterministic.
 */
struct twheel {
	uint64_t now; /* the last time advanced to */
	size_t count; /* pending timers */
	/* The earliest expiry tmr_start() set since twheel_init() or since
	 * the owner last set this to UINT64_MAX: an event loop need look
	 * for its next wake-up again only when a timer was started before
	 * the moment it will wake anyway. */
	uint64_t started_min;
	struct tmr slots[TWHEEL_LEVELS][TWHEEL_SLOTS]; /* list heads */
	uint64_t occupied[TWHEEL_LEVELS]; /* bit i: slots[level][i] not empty */
};

void twheel_init(struct twheel *w, uint64_t now_ms);
void tmr_init(struct tmr *t);
/* (Re)arms t to fire fn(t, arg) delay_ms after w->now. */
void tmr_start(struct twheel *w, struct tmr *t, uint64_t delay_ms, tmr_fn *fn,
               void *arg);
/*
 * tmr_start() for a timer whose exact moment does not matter, one that
 * frees memory or ends a state seconds away (a transaction's wait, a
 * dialog's lifetime, an idle connection): the expiry is rounded up to a
 * multiple of TMR_COARSE_MS of wheel time. The timers of many calls then
 * expire together, and an idle worker wakes for them 16 times a second
 * instead of at every grain of its loop; each fires at most
 * TMR_COARSE_MS - 1 ms late. Coarser would free larger bursts of memory
 * at once: at 256 ms the per-thread block cache ran full.
 */
#define TMR_COARSE_MS 64
void tmr_start_coarse(struct twheel *w, struct tmr *t, uint64_t delay_ms,
                      tmr_fn *fn, void *arg);
/* Stops t if pending; harmless otherwise. */
void tmr_cancel(struct twheel *w, struct tmr *t);
bool tmr_pending(const struct tmr *t);
/*
 * Moves the wheel to now_ms, firing every timer whose expiry is <= now_ms
 * in order of expiry (ties in order of arming). A callback may start or
 * cancel any timer, including its own. Returns the number fired.
 */
size_t twheel_advance(struct twheel *w, uint64_t now_ms);
/* Milliseconds until the earliest pending expiry (0 if overdue), or
 * UINT64_MAX when nothing is pending. */
uint64_t twheel_next_delay(const struct twheel *w);
/* When an event loop should next advance the wheel: twheel_next_delay()
 * when the earliest expiry is in the wheel's two lowest levels (at most
 * 4,096 ms away), else the start of the slot that holds it, when advance
 * moves it down (a wake-up that fires nothing, at most every 4 s while
 * nothing nearer is pending). Never later than twheel_next_delay(); cheap
 * however many timers wait, where the exact answer walks a slot. */
uint64_t twheel_next_wakeup(const struct twheel *w);

/* --------------------------------------------------------------- hashing */

/* 64-bit xxhash (XXH3) of the bytes. */
uint64_t hash_bytes(const void *p, size_t len);
/* The same over ASCII-lowercased bytes, for case-insensitive keys. */
uint64_t hash_bytes_nocase(const void *p, size_t len);

/* Milliseconds of CLOCK_MONOTONIC. */
uint64_t clock_now_ms(void);

#endif
