#define XXH_STATIC_LINKING_ONLY /* XXH3_state_t on the stack */
#include <string.h>
#include <xxhash.h>

#include "core/core.h"

uint64_t hash_bytes(const void *p, size_t len)
{
	return XXH3_64bits(p, len);
}

/*
 * The ASCII capitals among 8 bytes made small at once. Per byte, on its 7
 * low bits b (so that no sum carries into the next byte): b + 0x3f has
 * its high bit set when b >= 'A', b + 0x25 when b > 'Z'; a byte whose own
 * high bit is set is no ASCII letter. The capitals get 0x20.
 */
static inline uint64_t lower8(uint64_t w)
{
	const uint64_t ones = 0x0101010101010101ull, high = ones * 0x80;
	uint64_t b = w & ~high;
	uint64_t ge_a = b + ones * (0x80 - 'A');
	uint64_t gt_z = b + ones * (0x80 - 'Z' - 1);

	return w | (ge_a & ~gt_z & ~w & high) >> 2;
}

static void lower_copy(unsigned char *dst, const unsigned char *src, size_t n)
{
	size_t i = 0;

	for (; i + 8 <= n; i += 8) {
		uint64_t w;

		memcpy(&w, src + i, 8);
		w = lower8(w);
		memcpy(dst + i, &w, 8);
	}
	for (; i < n; i++) {
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
