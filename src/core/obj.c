#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

#define OBJ_ALIGN 16
#define OBJ_MAGIC 0x0b1ec7edu

/* malloc(), so mem_get(), aligns for any type: no aligned_alloc(). */
_Static_assert(OBJ_ALIGN <= _Alignof(max_align_t),
               "malloc() does not align objects enough");

struct obj_hdr {
	obj_destroy_fn *dtor;
	size_t total; /* bytes allocated, header included */
	unsigned refs;
	uint32_t magic; /* catches obj_unref() on a foreign pointer */
	/* Set while the destructor runs, so that a destructor taking and
	 * dropping a reference (say, while unlinking from a table) does not
	 * destroy the object a second time. */
	bool dying;
};

/* Keeps the user area aligned however the header grows. */
#define HDR_SIZE                                                               \
	((sizeof(struct obj_hdr) + OBJ_ALIGN - 1) & ~(size_t)(OBJ_ALIGN - 1))

/* Objects never leave their shard's thread, so a thread-local counter
 * needs no atomics and still adds up per shard. */
static _Thread_local size_t bytes_in_use;

static struct obj_hdr *hdr_of(const void *obj)
{
	struct obj_hdr *h = (struct obj_hdr *)((uintptr_t)obj - HDR_SIZE);

	assert(h->magic == OBJ_MAGIC);
	return h;
}

void *obj_alloc(size_t size, obj_destroy_fn *dtor)
{
	struct obj_hdr *h;
	size_t total;

	if (size > SIZE_MAX - HDR_SIZE - OBJ_ALIGN)
		return NULL;
	total = (HDR_SIZE + size + OBJ_ALIGN - 1) & ~(size_t)(OBJ_ALIGN - 1);
	h = mem_get_zero(total);
	if (!h)
		return NULL;
	h->dtor = dtor;
	h->total = total;
	h->refs = 1;
	h->magic = OBJ_MAGIC;
	bytes_in_use += total;
	return (char *)h + HDR_SIZE;
}

void *obj_ref(void *obj)
{
	if (obj)
		hdr_of(obj)->refs++;
	return obj;
}

void *obj_unref(void *obj)
{
	struct obj_hdr *h;

	if (!obj)
		return NULL;
	h = hdr_of(obj);
	assert(h->refs > 0);
	if (--h->refs > 0 || h->dying)
		return NULL;

	h->dying = true;
	if (h->dtor)
		h->dtor(obj);
	/* A destructor that kept a reference would leave a dangling one. */
	assert(h->refs == 0);
	bytes_in_use -= h->total;
	h->magic = 0;
	mem_put(h, h->total);
	return NULL;
}

unsigned obj_refcount(const void *obj)
{
	return obj ? hdr_of(obj)->refs : 0;
}

size_t obj_bytes_in_use(void)
{
	return bytes_in_use;
}
