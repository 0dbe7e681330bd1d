/*
 * Internals shared by the files of the sip component: character classes of
 * the RFC 3261 §25.1 grammar and small scanners. Not part of the API.
 */
#ifndef IMSDLG_SIP_INT_H
#define IMSDLG_SIP_INT_H

#include <string.h>
#ifdef __SSE2__
#include <emmintrin.h>
#endif

#include "sip/sip.h"

/* Character class bits (see sip_cc in tables.c). */
enum {
	SIP_CC_TOKEN = 1u << 0, /* token: alphanum - . ! % * _ + ` ' ~ */
	SIP_CC_WS = 1u << 1,    /* SP HT CR LF: LWS once lines are unfolded */
	SIP_CC_DIGIT = 1u << 2,
	SIP_CC_HEX = 1u << 3,
	SIP_CC_ALNUM = 1u << 4,
	/* word of Call-ID: token + ( ) < > : \ " / [ ] ? { } */
	SIP_CC_WORD = 1u << 5,
	SIP_CC_ALPHA = 1u << 6,
	SIP_CC_QTEXT = 1u << 7, /* held as it is by a quoted string */
};

extern const uint8_t sip_cc[256];
extern const uint8_t sip_lower[256];

static inline bool sip_is(unsigned char c, unsigned cls)
{
	return (sip_cc[c] & cls) != 0;
}

/* All 4 bytes at p are of class cls. */
static inline bool sip_is4(const char *p, unsigned cls)
{
	return (sip_cc[(unsigned char)p[0]] & sip_cc[(unsigned char)p[1]] &
	        sip_cc[(unsigned char)p[2]] & sip_cc[(unsigned char)p[3]] &
	        cls) != 0;
}

/* The first byte of [p, end) not of class cls, or end; 4 bytes a step
 * where possible, as runs are often long (tokens, host names, tags). */
static inline const char *sip_skip_cls(const char *p, const char *end,
                                       unsigned cls)
{
	while (end - p >= 4 && sip_is4(p, cls))
		p += 4;
	while (p < end && sip_is((unsigned char)*p, cls))
		p++;
	return p;
}

static inline const char *sip_skip_ws(const char *p, const char *end)
{
	while (p < end && sip_is((unsigned char)*p, SIP_CC_WS))
		p++;
	return p;
}

static inline const char *sip_skip_token(const char *p, const char *end)
{
	return sip_skip_cls(p, end, SIP_CC_TOKEN);
}

#ifdef __SSE2__
/* Bit i set when p[i] == c, for the 16 bytes at p. */
static inline unsigned sip_eq16(const char *p, char c)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)p);

	return (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(v, _mm_set1_epi8(c)));
}

/* Bit i set when p[i] is in the byte range [lo, lo + n), n < 128: the
 * range is moved to the bottom of the signed bytes, one add and one
 * compare. */
static inline __m128i sip_range16(__m128i v, char lo, int n)
{
	__m128i x = _mm_add_epi8(v, _mm_set1_epi8((char)(0x80 - lo)));

	return _mm_cmplt_epi8(x, _mm_set1_epi8((char)(-128 + n)));
}
#endif

#ifdef __SSE2__
/* Bit i set when byte i of v is a letter, a digit, '-' or '.'. */
static inline unsigned sip_adn16(__m128i v)
{
	__m128i alpha =
	        sip_range16(_mm_or_si128(v, _mm_set1_epi8(0x20)), 'a', 26);
	__m128i digit = sip_range16(v, '0', 10);
	__m128i dash_dot = sip_range16(v, '-', 2);

	return (unsigned)_mm_movemask_epi8(
	        _mm_or_si128(_mm_or_si128(alpha, digit), dash_dot));
}

static inline unsigned sip_not_adn16(__m128i v)
{
	return sip_adn16(v) ^ 0xffffu;
}
#endif

/*
 * The end of the run of letters, digits, '-' and '.' from p, at most end:
 * what most tokens, words and host names are made of. 16 bytes at a time
 * while they are inside [p, hi) (hi >= end: the bytes after end may be
 * read, not taken); then where it stands, for a byte loop of the class
 * wanted to go on from there.
 */
static inline const char *sip_skip_adn(const char *p, const char *end,
                                       const char *hi)
{
#ifdef __SSE2__
	while (p < end && hi - p >= 16) {
		unsigned stop = sip_adn16(_mm_loadu_si128(
		                        (const __m128i *)(const void *)p)) ^
		                0xffffu;
		if (stop)
			return p + __builtin_ctz(stop) < end
			               ? p + __builtin_ctz(stop)
			               : end;
		p += 16;
	}
	return p < end ? p : end;
#else
	(void)hi;
	return p;
#endif
}

/* sip_skip_token() reading up to hi (see sip_skip_adn()). */
static inline const char *sip_skip_token_hi(const char *p, const char *end,
                                            const char *hi)
{
	p = sip_skip_adn(p, end, hi);
	/* most runs stop at a byte of no token */
	return p < end && sip_is((unsigned char)*p, SIP_CC_TOKEN)
	               ? sip_skip_token(p + 1, end)
	               : p;
}

#ifdef __SSE2__
/*
 * The first byte of [p, end) whose bit stops() sets in the mask of the 16
 * bytes it is loaded with, or end; stops() is a constant, inlined. The
 * bytes of [end - 16, p) may be read too (end - 16 must be in the
 * message): the last load moves back to end - 16, so that every load but
 * the last is a whole chunk with no bound to apply to its mask.
 */
__attribute__((always_inline)) static inline const char *
sip_scan16(const char *p, const char *end, unsigned (*stops)(__m128i v))
{
	for (; end - p > 16; p += 16) {
		unsigned s = stops(
		        _mm_loadu_si128((const __m128i *)(const void *)p));
		if (s)
			return p + __builtin_ctz(s);
	}
	unsigned s = stops(_mm_loadu_si128(
	                     (const __m128i *)(const void *)(end - 16))) >>
	             (16 - (end - p));
	return s ? p + __builtin_ctz(s) : end;
}

static inline unsigned sip_sp16(__m128i v)
{
	return (unsigned)_mm_movemask_epi8(
	        _mm_cmpeq_epi8(v, _mm_set1_epi8(' ')));
}
#endif

/*
 * sip_scan16() of the bytes stops() sets (a constant: sip_sp16,
 * sip_not_adn16 ...) when end - 16 stays inside [lo, end), the bytes
 * of [lo, p) being readable; without SSE2 or in fewer bytes, p itself,
 * for the caller's byte loop to start there.
 */
#ifdef __SSE2__
#define SIP_SCAN16_IN(p, end, lo, stops)                                       \
	((end) - (lo) >= 16 ? sip_scan16((p), (end), (stops)) : (p))
#else
#define SIP_SCAN16_IN(p, end, lo, stops) ((void)(end), (void)(lo), (p))
#endif

/* The first SP of [p, end), or end; the bytes of [lo, p) may be read. */
static inline const char *sip_find_sp(const char *p, const char *end,
                                      const char *lo)
{
	p = SIP_SCAN16_IN(p, end, lo, sip_sp16);
	while (p < end && *p != ' ')
		p++;
	return p;
}

/* The end of the run of letters, digits, '-' and '.' from p as far as
 * SIP_SCAN16_IN() takes it: a byte loop of the class wanted goes on
 * from there. */
static inline const char *sip_skip_adn_in(const char *p, const char *end,
                                          const char *lo)
{
	return SIP_SCAN16_IN(p, end, lo, sip_not_adn16);
}

/*
 * The first byte of [p, end) that is no token byte, or end, as
 * sip_skip_token(): with SSE2, the run of letters, digits, '-' and '.' 16
 * bytes at a time, the bytes of [end - 16, p) being read too (see
 * sip_scan16()).
 */
__attribute__((always_inline)) static inline const char *
sip_skip_token16(const char *p, const char *end)
{
#ifdef __SSE2__
	p = sip_scan16(p, end, sip_not_adn16);
	/* most runs stop at a byte of no token */
	if (p == end || !sip_is((unsigned char)*p, SIP_CC_TOKEN))
		return p;
#endif
	return sip_skip_token(p, end);
}

/*
 * s is 1 to 9 digits (so below 10^9, no overflow): true with their value
 * in *v. Any other s (longer, empty, not digits) is false, for the caller
 * to take the general path that says why.
 */
static inline bool sip_u32_short(uint32_t *v, struct slice s)
{
	uint32_t n = 0;

	if (s.len - 1 >= 9)
		return false;
	for (size_t i = 0; i < s.len; i++) {
		unsigned d = (unsigned char)s.p[i] - (unsigned)'0';
		if (d > 9)
			return false;
		n = n * 10 + d;
	}
	*v = n;
	return true;
}

/* sip_method_lookup(), inline: one length test per method, then a
 * memcmp() of a constant size that the compiler turns into a word or two
 * of comparison. */
__attribute__((always_inline)) static inline enum sip_method
sip_method_lookup_inline(struct slice name)
{
#define SIP_METHOD_IS(m)                                                       \
	if (name.len == sizeof(#m) - 1 &&                                      \
	    memcmp(name.p, #m, sizeof(#m) - 1) == 0)                           \
		return SIP_METHOD_##m;
	SIP_METHOD_LIST(SIP_METHOD_IS)
#undef SIP_METHOD_IS
	return SIP_METHOD_OTHER;
}

/*
 * The number of leading digits of the 8 bytes at p, and in *n the value of
 * at most 8 of them, a word at a time (SWAR, little-endian; elsewhere a
 * byte loop). A byte is a digit when its high nibble is 3 and adding 6
 * keeps it 3; a carry out of a byte that is no digit only reaches the
 * bytes after the first such one, which do not count.
 */
static inline unsigned sip_digits8(uint32_t *n, const char *p)
{
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
	const uint64_t hi = 0xf0f0f0f0f0f0f0f0ull;
	uint64_t x;

	memcpy(&x, p, 8);
	uint64_t bad = ((x & hi) | ((x + 0x0606060606060606ull) & hi) >> 4) ^
	               0x3333333333333333ull;
	unsigned k = bad ? (unsigned)__builtin_ctzll(bad) / 8 : 8;
	if (k == 0)
		return 0;
	/* the digits at the top, 0 bytes (leading zeros) below them */
	x = (x - 0x3030303030303030ull) << (8 * (8 - k));
	x = x * 10 + (x >> 8);
	x = (((x & 0x000000ff000000ffull) * (100 + (1000000ull << 32))) +
	     (((x >> 16) & 0x000000ff000000ffull) * (1 + (10000ull << 32)))) >>
	    32;
	*n = (uint32_t)x;
	return k;
#else
	uint32_t v = 0;
	unsigned k = 0;

	while (k < 8 && (unsigned char)p[k] - (unsigned)'0' <= 9)
		v = v * 10 + (uint32_t)(p[k++] - '0');
	*n = v;
	return k;
#endif
}

/*
 * The usual CSeq value: 1 to 9 digits (below 2^31), one SP and a known
 * method (a token) to the end. Fills *out as sip_cseq_parse() would and
 * returns true; false for any other value, which it takes.
 */
static inline bool sip_cseq_usual(struct sip_cseq *out, struct slice v)
{
	const char *p = v.p, *end = v.p + v.len, *d = p;
	uint32_t n = 0;
	unsigned c;

	if (v.len >= 8) {
		/* up to 7 digits and the SP, in one word */
		unsigned k = sip_digits8(&n, p);
		if (k < 8) {
			p += k;
			goto sp;
		}
		n = 0;
	}
	while (p < end && (c = (unsigned char)*p - (unsigned)'0') <= 9 &&
	       p - d < 9) {
		n = n * 10 + c;
		p++;
	}
sp:
	if (p == d || end - p < 2 || *p != ' ')
		return false;
	struct slice method = slice_make(p + 1, (size_t)(end - p - 1));
	enum sip_method id = sip_method_lookup_inline(method);
	if (id == SIP_METHOD_OTHER)
		return false;
	out->num = n;
	out->method = method;
	out->method_id = id;
	return true;
}

/* Case-insensitive equality of n bytes. */
static inline bool sip_eq_nocase(const char *a, const char *b, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (sip_lower[(unsigned char)a[i]] !=
		    sip_lower[(unsigned char)b[i]])
			return false;
	return true;
}

/* ------------------------------------------------------- header names */

/*
 * Lookup of a header name (see tables.c): compact forms by a direct map;
 * full names by a table indexed by a hash of the length and the first and
 * last bytes, then a comparison by 8-byte words. The expected name is kept
 * lower-cased with the case bit (0x20) of its letters in fold: (word |
 * fold) == lower is an exact ASCII case-insensitive comparison, as only
 * 'A'-'Z' and 'a'-'z' turn into a lower-case letter that way and the other
 * bytes of a name ('-') must match as they are (a CR, 0x0d, must not pass
 * for a '-', 0x2d). A name of up to 8 bytes takes one word (keep masks
 * off what follows it), up to 16 a second one ending with the name, up to
 * 24 a third one in the middle.
 */
#define SIP_HDR_TABLE_SIZE 128

/* Length of the longest known name: the largest of their sizeofs, - 1. */
union sip_hdr_name_sizes {
#define SIP_HDR_SIZE(id, name, compact) char id[sizeof(name)];
	SIP_HDR_LIST(SIP_HDR_SIZE)
#undef SIP_HDR_SIZE
};
#define SIP_HDR_NAME_MAX (sizeof(union sip_hdr_name_sizes) - 1)
_Static_assert(SIP_HDR_NAME_MAX <= 24, "three words must cover a name");

struct sip_hdr_key {
	uint64_t keep;
	uint64_t word[3];
	uint64_t fold[3];
	size_t len; /* 0 for id 0, the empty slot */
};

extern struct sip_hdr_key sip_hdr_keys[SIP_HDR__COUNT];
extern uint8_t sip_hdr_table[SIP_HDR_TABLE_SIZE];
extern unsigned sip_hdr_max_probe; /* longest displacement by a collision */
extern uint8_t sip_hdr_compact[256];

/* Multipliers chosen so that the known names fill distinct slots; a later
 * collision would still be found, at the cost of a probe. */
static inline unsigned sip_hdr_hash(const char *p, size_t len)
{
	return ((unsigned)len * 15 + ((unsigned char)p[0] | 0x20u) * 38 +
	        ((unsigned char)p[len - 1] | 0x20u)) %
	       SIP_HDR_TABLE_SIZE;
}

static inline uint64_t sip_load64(const char *p)
{
	uint64_t v;

	memcpy(&v, p, 8);
	return v;
}

static inline bool sip_hdr_key_match(const struct sip_hdr_key *k, const char *p,
                                     size_t len)
{
	return k->len == len &&
	       ((sip_load64(p) & k->keep) | k->fold[0]) == k->word[0] &&
	       (len <= 8 ||
	        (sip_load64(p + len - 8) | k->fold[1]) == k->word[1]) &&
	       (len <= 16 || (sip_load64(p + 8) | k->fold[2]) == k->word[2]);
}

/* The slots after the first one, for names displaced by a collision. */
enum sip_hdr_id sip_hdr_lookup_probe(const char *p, size_t len);

/* sip_hdr_lookup() of the len (>= 1) bytes at p, of which at least
 * max(len, 8) may be read. */
static inline enum sip_hdr_id sip_hdr_lookup_padded(const char *p, size_t len)
{
	if (len < 2 || len > SIP_HDR_NAME_MAX) {
		return len == 1 ? (enum sip_hdr_id)
		                          sip_hdr_compact[(unsigned char)*p]
		                : SIP_HDR_OTHER;
	}
	unsigned id = sip_hdr_table[sip_hdr_hash(p, len)];
	if (sip_hdr_key_match(&sip_hdr_keys[id], p, len))
		return (enum sip_hdr_id)id;
	return sip_hdr_max_probe ? sip_hdr_lookup_probe(p, len) : SIP_HDR_OTHER;
}

#ifdef __SSE2__
/*
 * The header index looks names up from the 16 bytes it loads at the start
 * of a line to find the colon: a name of up to 15 bytes and its colon are
 * inside them. The table is indexed by a multiplicative hash of the first
 * two bytes (case bit set) and the length, with a multiplier chosen at
 * start-up so that the known names and compact forms (whose second byte is
 * the colon) fill distinct slots; a slot holds its key. A key holds the
 * name lower-cased and followed by its colon, and the case bits of its
 * letters; its bytes after the colon are 0xff in both, so that any byte
 * there OR-ed with the fold equals the key's: one compare of all 16 bytes
 * is an exact case-insensitive match that checks the length too (the
 * colon must be where the name ends), with no mask. The bytes of an empty slot
 * match no byte (0 in the name, 1 in the fold), so that a key matched is
 * a known name.
 */
#define SIP_HDR_TABLE16_SIZE 256

struct sip_hdr_key16 {
	__m128i lower; /* name lower-cased, ':', then 0xff */
	__m128i fold;  /* 0x20 on letters, 0 on '-' and ':', then 0xff */
	uint32_t id;   /* enum sip_hdr_id */
	/* to 64 bytes: the address of a slot is a shift of its index */
	char pad[64 - 2 * sizeof(__m128i) - sizeof(uint32_t)];
};

extern struct sip_hdr_key16 sip_hdr_keys16[SIP_HDR_TABLE16_SIZE];
extern uint32_t sip_hdr_mul16;
extern unsigned sip_hdr_probe16; /* longest displacement by a collision */

static inline unsigned sip_hdr_hash16(const char *p, size_t len)
{
	uint16_t w;

	memcpy(&w, p, 2);
	/* the case bits in the low half, the length in the high half */
	return (((uint32_t)w ^ (uint32_t)len << 16) | 0x2020u) *
	               sip_hdr_mul16 >>
	       24;
}

static inline bool sip_hdr_key16_match(const struct sip_hdr_key16 *k, __m128i v)
{
	return _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_or_si128(v, k->fold),
	                                        k->lower)) == 0xffff;
}

/* The id of the name of len (<= 16) bytes at p, v the 16 bytes at p, from
 * the slots after the first one (names displaced by a collision), or
 * SIP_HDR_OTHER. */
enum sip_hdr_id sip_hdr_lookup16_probe(const char *p, size_t len, __m128i v);

#endif

/*
 * host = hostname / IPv4address / IPv6reference (RFC 3261 §25.1) at p:
 * sets *host (an IPv6 address without its brackets) and *type, returns
 * the byte after it, or NULL when there is no valid host. hostname labels
 * are alphanum with inner hyphens and the top label starts with a letter:
 * that is what tells names from addresses, so a dotted quad that is not a
 * valid IPv4address (a part above 255, "1.2.3") is not a name either.
 * IPv6 addresses are checked as RFC 5954 corrects RFC 3261. The bytes of
 * [lo, p) may be read too.
 */
const char *sip_host_scan(struct slice *host, enum sip_host_type *type,
                          const char *p, const char *end, const char *lo);

/* port = 1*5DIGIT <= 65535 at p, just after the ':' that follows a host:
 * returns the byte after it, or NULL. The bytes up to hi (>= end) may be
 * read: the usual port is read a word at a time. */
static inline const char *sip_port_scan(uint16_t *port, const char *p,
                                        const char *end, const char *hi)
{
	const char *d = p;
	uint32_t v = 0;

	if (hi - p >= 8) {
		/* 1 to 5 digits inside [p, end), then no digit or end */
		unsigned k = sip_digits8(&v, p);
		if (k - 1 < 5 && k <= (size_t)(end - p)) {
			if (v > 65535)
				return NULL;
			*port = (uint16_t)v;
			return p + k;
		}
		v = 0;
	}
	while (p < end && sip_is((unsigned char)*p, SIP_CC_DIGIT) && p - d < 6)
		v = v * 10 + (uint32_t)(*p++ - '0');
	if (p == d || p - d > 5 || v > 65535)
		return NULL;
	*port = (uint16_t)v;
	return p;
}

/* IPv6address (without brackets) is all of [p, end). */
bool sip_ipv6_valid(const char *p, const char *end);

/* sip_addr_parse() into *out, which it may change when it fails; the bytes
 * from elem up to hi (>= its end) may be read. */
int sip_addr_decode(struct sip_addr *out, struct slice elem, unsigned flags,
                    const char *hi, const char **why);

/*
 * Scans a quoted string starting at the opening quote p. Returns the
 * position after the closing quote, or NULL when it is unterminated or
 * holds a forbidden byte (RFC 3261 §25.1 quoted-string, quoted-pair).
 */
const char *sip_skip_quoted(const char *p, const char *end);

#endif
