#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "core/core.h"

static inline char ascii_lower(char c)
{
	return (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
}

struct slice slice_cstr(const char *s)
{
	if (!s)
		return SLICE_NULL;
	return slice_make(s, strlen(s));
}

bool slice_eq(struct slice a, struct slice b)
{
	/* memcmp() with a NULL pointer is undefined even for zero bytes. */
	return a.len == b.len && (a.len == 0 || memcmp(a.p, b.p, a.len) == 0);
}

bool slice_eq_nocase(struct slice a, struct slice b)
{
	if (a.len != b.len)
		return false;
	for (size_t i = 0; i < a.len; i++) {
		if (ascii_lower(a.p[i]) != ascii_lower(b.p[i]))
			return false;
	}
	return true;
}

static inline bool is_blank(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

struct slice slice_trim(struct slice s)
{
	while (s.len > 0 && is_blank(s.p[0])) {
		s.p++;
		s.len--;
	}
	while (s.len > 0 && is_blank(s.p[s.len - 1]))
		s.len--;
	return s;
}

int slice_to_u32(uint32_t *out, struct slice s, uint32_t max)
{
	uint64_t v = 0;
	bool over = false;

	if (s.len == 0)
		return EINVAL;
	/* Keep scanning after an overflow so that a later non-digit still
	 * reports EINVAL: malformed input is a different error from a big
	 * number. */
	for (size_t i = 0; i < s.len; i++) {
		char c = s.p[i];

		if (c < '0' || c > '9')
			return EINVAL;
		if (!over) {
			v = v * 10 + (uint64_t)(c - '0');
			over = v > max;
		}
	}
	if (over)
		return ERANGE;
	*out = (uint32_t)v;
	return 0;
}

/* Returns the number of bytes copied, without the NUL; it is less than
 * s.len when the copy was truncated. */
size_t slice_copy_cstr(char *dst, size_t size, struct slice s)
{
	size_t n = s.len < size - 1 ? s.len : size - 1;

	if (n > 0)
		memcpy(dst, s.p, n);
	dst[n] = '\0';
	return n;
}

char *slice_strdup(struct slice s)
{
	char *p = malloc(s.len + 1);

	if (p) {
		if (s.len)
			memcpy(p, s.p, s.len);
		p[s.len] = '\0';
	}
	return p;
}

/* Both write the digits from the last, once their number is known: no
 * reversal through a buffer. */
size_t fmt_u64(char *dst, uint64_t v)
{
	size_t n = 1;

	/* 10^19 is the largest power of ten below 2^64 */
	for (uint64_t p = 10; n < 20 && v >= p; p *= 10)
		n++;
	for (size_t i = n; --i > 0; v /= 10)
		dst[i] = (char)('0' + v % 10);
	dst[0] = (char)('0' + v);
	return n;
}

size_t fmt_hex(char *dst, uint64_t v, unsigned min_digits)
{
	static const char digits[] = "0123456789abcdef";
	size_t n = ((size_t)(64 - __builtin_clzll(v | 1)) + 3) / 4;

	if (n < min_digits)
		n = min_digits < 16 ? min_digits : 16;
	for (size_t i = n; i-- > 0; v >>= 4)
		dst[i] = digits[v & 15];
	return n;
}
