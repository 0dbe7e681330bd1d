/*
 * The per-thread cache of freed blocks in front of malloc() (core.h,
 * "memory"). A block is cached by its size rounded up to MEM_GRAIN: one
 * free list per rounded size up to MEM_MAX, a singly linked list through
 * the blocks themselves. The cache holds at most MEM_CACHE_BYTES a thread;
 * past that, and for larger blocks, free() and malloc() are called.
 *
 * The sizes in use move: a Call-ID one digit longer moves the blocks of a
 * call to the next list, a burst of registrations fills lists that calls
 * never ask for. A full cache of sizes no longer asked for would send
 * every block of the sizes in use to malloc() and free() for good. So
 * gets are counted, each list notes the count at its last get, and each
 * time MEM_TRIM_AFTER bytes have gone to free() because the cache was
 * full, the lists no get asked for in the last MEM_IDLE_GETS gets are
 * freed. Counted in gets, not puts: a burst of puts (a timer freeing a
 * second's transactions) leaves the sizes in use alone.
 *
 * Builds with assertions (the test builds) put the size in front of each
 * block and check it when the block comes back: a wrong size would hand
 * the block out later as a larger one. Under AddressSanitizer a cached
 * block is poisoned, so that a use after mem_put() is still found; all
 * but its link, which LeakSanitizer must read to see the block held.
 */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#if defined(__SANITIZE_ADDRESS__)
#define MEM_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define MEM_ASAN 1
#endif
#endif
#ifdef MEM_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n)   ASAN_POISON_MEMORY_REGION((p), (n))
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION((p), (n))
#else
#define POISON(p, n)   ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

#define MEM_GRAIN       16
#define MEM_MAX         4096
#define MEM_LISTS       (MEM_MAX / MEM_GRAIN)
#define MEM_CACHE_BYTES (4u << 20)
#define MEM_TRIM_AFTER  (MEM_CACHE_BYTES / 4)
#define MEM_IDLE_GETS   (1u << 16)

/* The size kept in front of a block when assertions are on; a multiple of
 * the alignment malloc() gives, so that the block keeps it. */
#ifdef NDEBUG
#define HEAD 0
#else
#define HEAD 16
_Static_assert(HEAD % _Alignof(max_align_t) == 0, "header breaks alignment");
#endif

struct free_block {
	struct free_block *next;
};

struct mem_cache {
	struct free_block
	        *list[MEM_LISTS]; /* list[i]: blocks of (i+1) grains */
	size_t bytes;             /* held in the lists */
	size_t spilled; /* freed because the cache was full, since the trim */
	uint32_t gets;  /* counted modulo 2^32 */
	uint32_t asked_at[MEM_LISTS]; /* gets at the last get of list i */
};

static _Thread_local struct mem_cache cache;

/* The list of a size of at most MEM_MAX (0 counts as 1). */
static inline unsigned list_of(size_t size)
{
	return size ? (unsigned)((size - 1) / MEM_GRAIN) : 0;
}

static inline size_t block_size(unsigned list)
{
	return (size_t)(list + 1) * MEM_GRAIN + HEAD;
}

static void *user_of(void *block, size_t size)
{
#ifndef NDEBUG
	memcpy(block, &size, sizeof(size));
#else
	(void)size;
#endif
	return (char *)block + HEAD;
}

static void *block_of(void *p, size_t size)
{
	char *block = (char *)p - HEAD;
#ifndef NDEBUG
	size_t given;

	memcpy(&given, block, sizeof(given));
	assert(given == size && "mem_put() with another size than mem_get()");
#else
	(void)size;
#endif
	return block;
}

void *mem_get(size_t size)
{
	if (size > MEM_MAX) {
		void *block =
		        size <= SIZE_MAX - HEAD ? malloc(size + HEAD) : NULL;
		return block ? user_of(block, size) : NULL;
	}
	unsigned i = list_of(size);
	struct free_block *b = cache.list[i];
	cache.asked_at[i] = ++cache.gets;
	if (b != NULL) {
		UNPOISON(b + 1, block_size(i) - sizeof(*b));
		cache.list[i] = b->next;
		cache.bytes -= block_size(i);
	} else {
		b = malloc(block_size(i));
		if (b == NULL)
			return NULL;
	}
	return user_of(b, size);
}

void *mem_get_zero(size_t size)
{
	void *p = mem_get(size);

	if (p != NULL)
		memset(p, 0, size);
	return p;
}

/* Whether n more bytes may be cached. */
static inline bool fits(size_t n)
{
	return cache.bytes + n <= MEM_CACHE_BYTES;
}

/* Frees the blocks of list i. */
static void free_list(unsigned i)
{
	while (cache.list[i] != NULL) {
		struct free_block *b = cache.list[i];
		UNPOISON(b + 1, block_size(i) - sizeof(*b));
		cache.list[i] = b->next;
		cache.bytes -= block_size(i);
		free(b);
	}
}

/* Whether n more bytes fit in the full cache, once the idle lists have
 * been freed if it is time for that (see the top). Out of line, so that
 * mem_put() stays a leaf that saves no register. */
__attribute__((noinline, cold)) static bool make_room(size_t n)
{
	cache.spilled += n;
	if (cache.spilled < MEM_TRIM_AFTER)
		return false;
	cache.spilled = 0;
	for (unsigned i = 0; i < MEM_LISTS; i++)
		if (cache.gets - cache.asked_at[i] > MEM_IDLE_GETS)
			free_list(i);
	return fits(n);
}

void mem_put(void *p, size_t size)
{
	if (p == NULL)
		return;
	struct free_block *b = block_of(p, size);
	unsigned i = list_of(size);
	if (size > MEM_MAX ||
	    (!fits(block_size(i)) && !make_room(block_size(i)))) {
		free(b);
		return;
	}
	b->next = cache.list[i];
	cache.list[i] = b;
	cache.bytes += block_size(i);
	POISON(b + 1, block_size(i) - sizeof(*b));
}

void *mem_resize(void *p, size_t old_size, size_t new_size)
{
	if (p == NULL)
		return mem_get(new_size);
	if (old_size <= MEM_MAX && new_size <= MEM_MAX &&
	    list_of(old_size) == list_of(new_size)) {
		/* the same block fits: only the size it is known by changes */
		return user_of(block_of(p, old_size), new_size);
	}
	if (old_size > MEM_MAX && new_size > MEM_MAX) {
		/* neither is cached: realloc() may grow it in place */
		void *block = new_size <= SIZE_MAX - HEAD
		                      ? realloc(block_of(p, old_size),
		                                new_size + HEAD)
		                      : NULL;
		return block ? user_of(block, new_size) : NULL;
	}
	void *q = mem_get(new_size);
	if (q == NULL)
		return NULL;
	memcpy(q, p, old_size < new_size ? old_size : new_size);
	mem_put(p, old_size);
	return q;
}

void mem_thread_fini(void)
{
	for (unsigned i = 0; i < MEM_LISTS; i++) {
		free_list(i);
		cache.asked_at[i] = 0;
	}
	cache.spilled = 0;
	cache.gets = 0;
}

size_t mem_block_size(size_t size)
{
	return size > MEM_MAX ? size : block_size(list_of(size)) - HEAD;
}

size_t mem_cached_bytes(void)
{
	return cache.bytes;
}
