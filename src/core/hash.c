#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <xxhash.h>

#include "core/core.h"

uint64_t hash_bytes(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

static void lower_copy(unsigned char *dst, const unsigned char *src, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = src[i];

		dst[i] = (c >= 'A' && c <= 'Z') ? (unsigned char)(c | 0x20) : c;
	}
}

uint64_t hash_bytes_nocase(const void *p, size_t len)
{
	const unsigned char *s = p;
	unsigned char buf[256];
	XXH3_state_t st;

	/* Keys are short (Call-IDs, tags, header names), so one buffer
	 * usually does; the rare long key is streamed, which XXH3 hashes to
	 * the same value as a one-shot call. */
	if (len <= sizeof(buf)) {
		lower_copy(buf, s, len);
		return XXH3_64bits(buf, len);
	}
	XXH3_64bits_reset(&st);
	while (len > 0) {
		size_t n = len < sizeof(buf) ? len : sizeof(buf);

		lower_copy(buf, s, n);
		XXH3_64bits_update(&st, buf, n);
		s += n;
		len -= n;
	}
	return XXH3_64bits_digest(&st);
}
