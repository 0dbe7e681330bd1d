#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define ARENA_ALIGN 16
/* Small enough not to waste much when a message barely overflows the
 * caller's buffer, large enough that a big one needs few mallocs. */
#define ARENA_BLOCK_MIN 4096
#define ARENA_BLOCK_MAX (256 * 1024)

struct arena_block {
	struct arena_block *next;
	size_t size; /* usable bytes after the header */
	_Alignas(ARENA_ALIGN) char data[];
};

static uintptr_t align_up(uintptr_t v)
{
	return (v + (ARENA_ALIGN - 1)) & ~(uintptr_t)(ARENA_ALIGN - 1);
}

void arena_init(struct arena *a, void *buf, size_t size)
{
	a->first = buf;
	a->first_size = buf ? size : 0;
	a->blocks = NULL;
	arena_reset(a);
}

/* Hands out size bytes from [cur, end) if they fit after alignment.
 * Works on integers because cur may be NULL (no first buffer). */
static void *take(struct arena *a, size_t size)
{
	uintptr_t p, end;

	if (!a->cur)
		return NULL;
	p = align_up((uintptr_t)a->cur);
	end = (uintptr_t)a->end;
	if (p > end || end - p < size)
		return NULL;
	a->cur = (char *)(p + size);
	a->used += size;
	return (void *)p;
}

void *arena_alloc(struct arena *a, size_t size)
{
	struct arena_block *b;
	size_t bsize;
	void *p;

	p = take(a, size);
	if (p)
		return p;

	if (size > SIZE_MAX / 2 - sizeof(*b) - ARENA_ALIGN)
		return NULL;
	/* Grow geometrically so that a large message costs O(log n)
	 * mallocs, but cap the block so one huge request does not make
	 * every later block huge. */
	bsize = a->blocks ? a->blocks->size * 2 : ARENA_BLOCK_MIN;
	if (bsize > ARENA_BLOCK_MAX)
		bsize = ARENA_BLOCK_MAX;
	if (bsize < size)
		bsize = size;
	bsize = align_up(bsize);
	/* malloc() only promises alignof(max_align_t), which may be 8. */
	b = aligned_alloc(ARENA_ALIGN, sizeof(*b) + bsize);
	if (!b)
		return NULL;
	b->size = bsize;
	b->next = a->blocks;
	a->blocks = b;
	a->cur = b->data;
	a->end = b->data + bsize;
	return take(a, size);
}

char *arena_strdup(struct arena *a, struct slice s)
{
	char *p = arena_alloc(a, s.len + 1);

	if (!p)
		return NULL;
	if (s.len > 0)
		memcpy(p, s.p, s.len);
	p[s.len] = '\0';
	return p;
}

struct slice arena_concat(struct arena *a, const struct slice *parts,
                          unsigned n)
{
	size_t len = 0;
	char *p;

	for (unsigned i = 0; i < n; i++)
		len += parts[i].len;
	p = arena_alloc(a, len + 1);
	if (p == NULL)
		return SLICE_NULL;
	len = 0;
	for (unsigned i = 0; i < n; i++) {
		if (parts[i].len)
			memcpy(p + len, parts[i].p, parts[i].len);
		len += parts[i].len;
	}
	p[len] = '\0';
	return slice_make(p, len);
}

static void free_blocks(struct arena *a)
{
	struct arena_block *b = a->blocks;

	while (b) {
		struct arena_block *next = b->next;

		free(b);
		b = next;
	}
	a->blocks = NULL;
}

void arena_reset(struct arena *a)
{
	free_blocks(a);
	a->cur = a->first;
	a->end = a->first ? a->first + a->first_size : NULL;
	a->used = 0;
}

void arena_fini(struct arena *a)
{
	free_blocks(a);
	a->cur = NULL;
	a->end = NULL;
	a->first = NULL;
	a->first_size = 0;
	a->used = 0;
}
