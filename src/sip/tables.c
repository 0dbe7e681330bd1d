/*
 * The name tables of the sip component, each written once (X-macros in
 * sip.h) and expanded here: header names and compact forms, methods, and
 * the character classes of the RFC 3261 §25.1 grammar.
 */
#include <string.h>

#include "sip/sip_int.h"

/*
 * The classes of sip_int.h, written as in the grammar and evaluated by the
 * compiler into the table; c is an int in 0..255.
 */
#define CC_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define CC_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define CC_ALNUM(c) (CC_ALPHA(c) || CC_DIGIT(c))
#define CC_TOKEN(c)                                                            \
	(CC_ALNUM(c) || (c) == '-' || (c) == '.' || (c) == '!' ||              \
	 (c) == '%' || (c) == '*' || (c) == '_' || (c) == '+' || (c) == '`' || \
	 (c) == '\'' || (c) == '~')
#define CC_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\r' || (c) == '\n')
#define CC_HEX(c)                                                              \
	(CC_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') ||                          \
	 ((c) >= 'A' && (c) <= 'F'))
/* what a quoted string holds as it is: not '"', '\\', controls but LWS, DEL */
#define CC_QTEXT(c)                                                            \
	(!((c) == '"' || (c) == '\\' || (c) == 0x7f ||                         \
	   ((c) < 0x20 && !CC_WS(c))))
#define CC_WORD(c)                                                             \
	(CC_TOKEN(c) || (c) == '(' || (c) == ')' || (c) == '<' ||              \
	 (c) == '>' || (c) == ':' || (c) == '\\' || (c) == '"' ||              \
	 (c) == '/' || (c) == '[' || (c) == ']' || (c) == '?' || (c) == '{' || \
	 (c) == '}')

#define CC(c)                                                                  \
	((CC_TOKEN(c) ? SIP_CC_TOKEN : 0) | (CC_WS(c) ? SIP_CC_WS : 0) |       \
	 (CC_DIGIT(c) ? SIP_CC_DIGIT : 0) | (CC_HEX(c) ? SIP_CC_HEX : 0) |     \
	 (CC_ALNUM(c) ? SIP_CC_ALNUM : 0) | (CC_WORD(c) ? SIP_CC_WORD : 0) |   \
	 (CC_ALPHA(c) ? SIP_CC_ALPHA : 0) | (CC_QTEXT(c) ? SIP_CC_QTEXT : 0))
#define CC4(n)  CC(n), CC((n) + 1), CC((n) + 2), CC((n) + 3)
#define CC16(n) CC4(n), CC4((n) + 4), CC4((n) + 8), CC4((n) + 12)
#define CC64(n) CC16(n), CC16((n) + 16), CC16((n) + 32), CC16((n) + 48)

const uint8_t sip_cc[256] = {CC64(0), CC64(64), CC64(128), CC64(192)};

const uint8_t sip_lower[256] = {
        0x00, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09, 0x0a, 0x0b,
        0x0c, 0x0d, 0x0e, 0x0f, 0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17,
        0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f, 0x20, 0x21, 0x22, 0x23,
        0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f,
        0x30, 0x31, 0x32, 0x33, 0x34, 0x35, 0x36, 0x37, 0x38, 0x39, 0x3a, 0x3b,
        0x3c, 0x3d, 0x3e, 0x3f, 0x40, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67,
        0x68, 0x69, 0x6a, 0x6b, 0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73,
        0x74, 0x75, 0x76, 0x77, 0x78, 0x79, 0x7a, 0x5b, 0x5c, 0x5d, 0x5e, 0x5f,
        0x60, 0x61, 0x62, 0x63, 0x64, 0x65, 0x66, 0x67, 0x68, 0x69, 0x6a, 0x6b,
        0x6c, 0x6d, 0x6e, 0x6f, 0x70, 0x71, 0x72, 0x73, 0x74, 0x75, 0x76, 0x77,
        0x78, 0x79, 0x7a, 0x7b, 0x7c, 0x7d, 0x7e, 0x7f, 0x80, 0x81, 0x82, 0x83,
        0x84, 0x85, 0x86, 0x87, 0x88, 0x89, 0x8a, 0x8b, 0x8c, 0x8d, 0x8e, 0x8f,
        0x90, 0x91, 0x92, 0x93, 0x94, 0x95, 0x96, 0x97, 0x98, 0x99, 0x9a, 0x9b,
        0x9c, 0x9d, 0x9e, 0x9f, 0xa0, 0xa1, 0xa2, 0xa3, 0xa4, 0xa5, 0xa6, 0xa7,
        0xa8, 0xa9, 0xaa, 0xab, 0xac, 0xad, 0xae, 0xaf, 0xb0, 0xb1, 0xb2, 0xb3,
        0xb4, 0xb5, 0xb6, 0xb7, 0xb8, 0xb9, 0xba, 0xbb, 0xbc, 0xbd, 0xbe, 0xbf,
        0xc0, 0xc1, 0xc2, 0xc3, 0xc4, 0xc5, 0xc6, 0xc7, 0xc8, 0xc9, 0xca, 0xcb,
        0xcc, 0xcd, 0xce, 0xcf, 0xd0, 0xd1, 0xd2, 0xd3, 0xd4, 0xd5, 0xd6, 0xd7,
        0xd8, 0xd9, 0xda, 0xdb, 0xdc, 0xdd, 0xde, 0xdf, 0xe0, 0xe1, 0xe2, 0xe3,
        0xe4, 0xe5, 0xe6, 0xe7, 0xe8, 0xe9, 0xea, 0xeb, 0xec, 0xed, 0xee, 0xef,
        0xf0, 0xf1, 0xf2, 0xf3, 0xf4, 0xf5, 0xf6, 0xf7, 0xf8, 0xf9, 0xfa, 0xfb,
        0xfc, 0xfd, 0xfe, 0xff,
};

struct hdr_def {
	const char *name;
	uint8_t len;
	char compact;
};

static const struct hdr_def hdr_defs[SIP_HDR__COUNT] = {
        [SIP_HDR_OTHER] = {NULL, 0, 0},
#define HDR_DEF(id, name, compact)                                             \
	[SIP_HDR_##id] = {name, sizeof(name) - 1, compact},
        SIP_HDR_LIST(HDR_DEF)
#undef HDR_DEF
};

#ifdef __SSE2__
struct sip_hdr_key16 sip_hdr_keys16[SIP_HDR_TABLE16_SIZE];
uint32_t sip_hdr_mul16;
unsigned sip_hdr_probe16;

/* The keys of the names of up to 15 bytes and of the compact forms. */
#define SIP_HDR_KEYS16_CAP (2 * SIP_HDR__COUNT)
static unsigned nkeys16;
static struct sip_hdr_key16 keys16[SIP_HDR_KEYS16_CAP];
static size_t keys16_len[SIP_HDR_KEYS16_CAP];
static char keys16_name[SIP_HDR_KEYS16_CAP][16];

/*
 * Places the keys for the multiplier mul: slot[h] is 1 + the index of the
 * key in slot h, 0 for an empty one. Returns the longest probe.
 */
static unsigned hdr_table16_place(uint8_t slot[SIP_HDR_TABLE16_SIZE],
                                  uint32_t mul)
{
	unsigned longest = 0;

	sip_hdr_mul16 = mul;
	memset(slot, 0, SIP_HDR_TABLE16_SIZE);
	for (unsigned i = 0; i < nkeys16; i++) {
		unsigned h = sip_hdr_hash16(keys16_name[i], keys16_len[i]);
		unsigned probe = 0;
		while (slot[(h + probe) % SIP_HDR_TABLE16_SIZE])
			probe++;
		slot[(h + probe) % SIP_HDR_TABLE16_SIZE] = (uint8_t)(i + 1);
		if (probe > longest)
			longest = probe;
	}
	return longest;
}

/* A key for the len (<= 15) bytes of name, of header id. */
static void key16_add(unsigned id, const char *name, size_t len)
{
	struct sip_hdr_key16 *k = &keys16[nkeys16];
	char lower[16], fold[16];

	memset(lower, 0xff, sizeof(lower));
	memset(fold, 0xff, sizeof(fold));
	for (size_t i = 0; i < len; i++) {
		lower[i] = (char)sip_lower[(unsigned char)name[i]];
		fold[i] = lower[i] >= 'a' && lower[i] <= 'z' ? 0x20 : 0;
	}
	lower[len] = ':';
	fold[len] = 0;
	k->lower = _mm_loadu_si128((const __m128i *)(const void *)lower);
	k->fold = _mm_loadu_si128((const __m128i *)(const void *)fold);
	k->id = id;
	memcpy(keys16_name[nkeys16], lower, 16);
	keys16_len[nkeys16] = len;
	nkeys16++;
}

/*
 * A key for each name of up to 15 bytes and each compact form, then the
 * multiplier: the first of a fixed sequence of odd numbers that leaves no
 * collision, or failing that the one with the shortest probes.
 */
static void hdr_tables16_build(void)
{
	uint8_t slot[SIP_HDR_TABLE16_SIZE];
	uint32_t mul = 0x9e3779b1u, best_mul = mul;
	unsigned best = ~0u;

	for (unsigned id = 1; id < SIP_HDR__COUNT; id++) {
		const struct hdr_def *d = &hdr_defs[id];
		if (d->len <= 15)
			key16_add(id, d->name, d->len);
		if (d->compact)
			key16_add(id, &d->compact, 1);
	}
	for (unsigned i = 0; i < 100000 && best > 0; i++) {
		unsigned longest = hdr_table16_place(slot, mul);
		if (longest < best) {
			best = longest;
			best_mul = mul;
		}
		mul = (mul * 1664525u + 1013904223u) | 1;
	}
	sip_hdr_probe16 = hdr_table16_place(slot, best_mul);
	for (unsigned h = 0; h < SIP_HDR_TABLE16_SIZE; h++) {
		if (slot[h]) {
			sip_hdr_keys16[h] = keys16[slot[h] - 1];
		} else {
			memset(&sip_hdr_keys16[h], 0,
			       sizeof(sip_hdr_keys16[h]));
			sip_hdr_keys16[h].fold = _mm_set1_epi8(1);
		}
	}
}

enum sip_hdr_id sip_hdr_lookup16_probe(const char *p, size_t len, __m128i v)
{
	unsigned h = sip_hdr_hash16(p, len);

	for (unsigned i = 1; i <= sip_hdr_probe16; i++) {
		const struct sip_hdr_key16 *k =
		        &sip_hdr_keys16[(h + i) % SIP_HDR_TABLE16_SIZE];
		if (sip_hdr_key16_match(k, v))
			return (enum sip_hdr_id)k->id;
	}
	return SIP_HDR_OTHER;
}
#endif

/*
 * Header names are looked up on every header line of every message, so
 * the lookup costs a few instructions rather than a loop over bytes (see
 * sip_hdr_keys16, which the index uses for names of up to 15 bytes,
 * and sip_hdr_lookup_padded() in sip_int.h). The tables derive from
 * SIP_HDR_LIST at start-up, by a constructor rather than pthread_once() on
 * each lookup: they are read-only afterwards and shared by all threads
 * without any synchronisation on the hot path.
 */
struct sip_hdr_key sip_hdr_keys[SIP_HDR__COUNT];
uint8_t sip_hdr_table[SIP_HDR_TABLE_SIZE];
unsigned sip_hdr_max_probe;
uint8_t sip_hdr_compact[256];

__attribute__((constructor)) static void hdr_tables_build(void)
{
	for (unsigned id = 1; id < SIP_HDR__COUNT; id++) {
		const struct hdr_def *d = &hdr_defs[id];
		struct sip_hdr_key *k = &sip_hdr_keys[id];
		/* The name lower-cased, its letters, its bytes; 0-padded.
		 * Loaded as the lookup loads them, whatever the byte order. */
		char lower[SIP_HDR_NAME_MAX + 8] = {0};
		char fold[SIP_HDR_NAME_MAX + 8] = {0};
		char keep[8] = {0};
		unsigned probe = 0;

		for (unsigned i = 0; i < d->len; i++) {
			lower[i] = (char)sip_lower[(unsigned char)d->name[i]];
			if (lower[i] >= 'a' && lower[i] <= 'z')
				fold[i] = 0x20;
			if (i < 8)
				keep[i] = (char)0xff;
		}
		k->len = d->len;
		k->keep = sip_load64(keep);
		k->word[0] = sip_load64(lower);
		k->fold[0] = sip_load64(fold);
		if (d->len > 8) {
			k->word[1] = sip_load64(lower + d->len - 8);
			k->fold[1] = sip_load64(fold + d->len - 8);
		}
		if (d->len > 16) {
			k->word[2] = sip_load64(lower + 8);
			k->fold[2] = sip_load64(fold + 8);
		}

		unsigned h = sip_hdr_hash(d->name, d->len);
		while (sip_hdr_table[(h + probe) % SIP_HDR_TABLE_SIZE])
			probe++;
		sip_hdr_table[(h + probe) % SIP_HDR_TABLE_SIZE] = (uint8_t)id;
		if (probe > sip_hdr_max_probe)
			sip_hdr_max_probe = probe;
		if (d->compact) {
			sip_hdr_compact[(unsigned char)d->compact | 0x20] =
			        (uint8_t)id;
			sip_hdr_compact[(unsigned char)d->compact & ~0x20] =
			        (uint8_t)id;
		}
	}
#ifdef __SSE2__
	hdr_tables16_build();
#endif
}

enum sip_hdr_id sip_hdr_lookup_probe(const char *p, size_t len)
{
	unsigned h = sip_hdr_hash(p, len);

	for (unsigned i = 1; i <= sip_hdr_max_probe; i++) {
		unsigned id = sip_hdr_table[(h + i) % SIP_HDR_TABLE_SIZE];
		if (sip_hdr_key_match(&sip_hdr_keys[id], p, len))
			return (enum sip_hdr_id)id;
	}
	return SIP_HDR_OTHER;
}

const char *sip_hdr_name(enum sip_hdr_id id)
{
	return (unsigned)id < SIP_HDR__COUNT ? hdr_defs[id].name : NULL;
}

enum sip_hdr_id sip_hdr_lookup(struct slice name)
{
	/* The name plus the 8 readable bytes the word loads may need. */
	char padded[SIP_HDR_NAME_MAX + 8] = {0};

	if (name.len == 0 || name.len > SIP_HDR_NAME_MAX)
		return SIP_HDR_OTHER;
	memcpy(padded, name.p, name.len);
	return sip_hdr_lookup_padded(padded, name.len);
}

static const char *const method_names[SIP_METHOD__COUNT] = {
        [SIP_METHOD_OTHER] = NULL,
#define METHOD_NAME(m) [SIP_METHOD_##m] = #m,
        SIP_METHOD_LIST(METHOD_NAME)
#undef METHOD_NAME
};

const char *sip_method_name(enum sip_method m)
{
	return (unsigned)m < SIP_METHOD__COUNT ? method_names[m] : NULL;
}

enum sip_method sip_method_lookup(struct slice name)
{
	return sip_method_lookup_inline(name);
}
