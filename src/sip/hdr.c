/*
 * Decoders of header values: comma-separated lists, Via, name-addr /
 * addr-spec, CSeq and RAck. All work on slices of the message and allow
 * LWS (folded lines included) wherever RFC 3261 §25.1 allows it.
 */
#include <errno.h>
#include <string.h>

#include "sip/sip_int.h"

static int fail(const char **why, const char *reason)
{
	*why = reason;
	return EBADMSG;
}

static struct slice span(const char *a, const char *b)
{
	return slice_make(a, (size_t)(b - a));
}

const char *sip_skip_quoted(const char *p, const char *end)
{
	for (p++;;) {
		p = sip_skip_cls(p, end, SIP_CC_QTEXT);
		if (p == end)
			return NULL;
		if (*p == '"')
			return p + 1;
		if (*p != '\\')
			return NULL; /* a control byte or DEL */
		/* quoted-pair: any octet but CR and LF */
		if (++p == end || *p == '\r' || *p == '\n')
			return NULL;
		p++;
	}
}

static inline const char *skip_ws_if(const char *p, const char *end)
{
	/* most often there is none: one test */
	return p < end && sip_is((unsigned char)*p, SIP_CC_WS)
	               ? sip_skip_ws(p, end)
	               : p;
}

/* ---------------------------------------------------------------- lists */

/*
 * Bit i set when p[i] is a byte that matters to list splitting: '"', '<',
 * '>' or ','; for the bytes of [p, p + 16) before end. The bytes of
 * [lo, p) may be read too: with SSE2 the last load moves back to end - 16
 * when that stays inside [lo, end).
 */
static inline unsigned list_specials(const char *p, const char *end,
                                     const char *lo)
{
	unsigned bits = 0;

#ifdef __SSE2__
	if (end - lo >= 16) {
		const char *at = end - p >= 16 ? p : end - 16;
		__m128i v = _mm_loadu_si128((const __m128i *)(const void *)at);
		__m128i m = _mm_or_si128(
		        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
		                     _mm_cmpeq_epi8(v, _mm_set1_epi8('<'))),
		        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('>')),
		                     _mm_cmpeq_epi8(v, _mm_set1_epi8(','))));
		return (unsigned)_mm_movemask_epi8(m) >> (p - at);
	}
#endif
	for (unsigned i = 0; i < 16 && p + i < end; i++)
		if (p[i] == '"' || p[i] == '<' || p[i] == '>' || p[i] == ',')
			bits |= 1u << i;
	return bits;
}

void sip_list_init(struct sip_list_iter *it, struct slice value)
{
	it->pos = value.p;
	it->end = value.p + value.len;
}

#ifdef __SSE2__
/* inside <>, only '"' and '>' matter to list splitting */
static inline unsigned angle_stops16(__m128i v)
{
	return (unsigned)_mm_movemask_epi8(
	        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('>')),
	                     _mm_cmpeq_epi8(v, _mm_set1_epi8('"'))));
}
#endif

/*
 * The element at start (< end), when it is "<...>" with no '"' before the
 * '>', followed by LWS and the end or a comma and another element: its
 * end, and in *next where the next one starts (after the comma, or end).
 * NULL for any other element. It is what the loop of sip_list_next()
 * finds for such an element: inside <> only '"' and '>' matter to it.
 */

__attribute__((always_inline)) static inline const char *
angle_elem(const char **next, const char *start, const char *end,
           const char *lo)
{
	const char *p = start + 1, *q;

#ifdef __SSE2__
	if (end - lo < 16)
		return NULL;
	p = sip_scan16(p, end, angle_stops16);
#else
	while (p < end && *p != '>' && *p != '"')
		p++;
#endif
	if (p == end || *p != '>')
		return NULL;
	q = skip_ws_if(++p, end);
	if (q == end) {
		*next = end;
		return p;
	}
	if (*q != ',' || sip_skip_ws(q + 1, end) == end)
		return NULL;
	*next = q + 1;
	return p;
}

/*
 * A comma ends an element outside quoted strings and <>: the bytes that
 * matter are found 16 at a time and taken in order.
 */
__attribute__((noinline)) static int list_next_general(struct slice *elem,
                                                       struct sip_list_iter *it,
                                                       const char *start)
{
	const char *lo = it->pos, *end = it->end;
	const char *p = start, *q = p;
	bool in_angle = false;

	for (;;) {
		/* the first '"', or ',' outside <>, of the 16 bytes at q */
		unsigned bits = list_specials(q, end, lo);
		const char *s = NULL;
		while (bits != 0 && s == NULL) {
			const char *b = q + __builtin_ctz(bits);
			bits &= bits - 1;
			if (*b == '"' || (*b == ',' && !in_angle))
				s = b;
			else if (*b != ',')
				in_angle = *b == '<';
		}
		if (s == NULL) {
			if (end - q <= 16) {
				p = end;
				break;
			}
			q += 16;
		} else if (*s == ',') {
			p = s;
			break;
		} else {
			q = sip_skip_quoted(s, end);
			if (q == NULL)
				return EBADMSG;
		}
	}
	if (in_angle)
		return EBADMSG;

	const char *e = p;
	while (e > start && sip_is((unsigned char)e[-1], SIP_CC_WS))
		e--;
	if (e == start)
		return EBADMSG;
	if (p < end) {
		/* A trailing comma leaves an empty element: malformed. */
		p++;
		if (sip_skip_ws(p, end) == end)
			return EBADMSG;
	}
	it->pos = p;
	*elem = span(start, e);
	return 0;
}

__attribute__((always_inline)) static inline int
list_next(struct slice *elem, struct sip_list_iter *it)
{
	const char *lo = it->pos, *end = it->end;
	const char *p = skip_ws_if(lo, end), *q;

	if (p == end) {
		it->pos = p;
		return ENOENT;
	}
	if (*p == '<' && (q = angle_elem(&it->pos, p, end, lo)) != NULL) {
		*elem = span(p, q);
		return 0;
	}
	return list_next_general(elem, it, p);
}

int sip_list_next(struct slice *elem, struct sip_list_iter *it)
{
	return list_next(elem, it);
}

/* The elements of the headers of one id (sip_msg_hdr_next() inline). */
void sip_elem_iter_init(struct sip_elem_iter *it, const struct sip_msg *m,
                        enum sip_hdr_id id)
{
	unsigned i = (unsigned)id < SIP_HDR__COUNT ? m->first[id] : 0;

	it->m = m;
	it->h = i ? &m->hdrs[i - 1] : NULL;
	if (it->h) {
		it->list.pos = it->h->value.p;
		it->list.end = it->h->value.p + it->h->value.len;
	}
}

/* sip_elem_next() past its fast path: the other elements, and the next
 * headers once those of the current one are taken. */
__attribute__((noinline)) static int elem_next_general(struct slice *elem,
                                                       struct sip_elem_iter *it)
{
	while (it->h) {
		int err = list_next(elem, &it->list);
		if (err != ENOENT)
			return err;
		it->h = it->h->next ? &it->m->hdrs[it->h->next - 1] : NULL;
		if (it->h) {
			it->list.pos = it->h->value.p;
			it->list.end = it->h->value.p + it->h->value.len;
		}
	}
	return ENOENT;
}

/* The usual element, a <URI> of the current header, and the end of the
 * last header are taken without a call, so without saving registers; any
 * other case is a tail call. */
int sip_elem_next(struct slice *elem, struct sip_elem_iter *it)
{
	if (it->h) {
		const char *lo = it->list.pos, *end = it->list.end;
		const char *p = skip_ws_if(lo, end), *q;
		if (p == end && it->h->next == 0) {
			it->list.pos = p;
			it->h = NULL;
			return ENOENT;
		}
		if (p < end && *p == '<' &&
		    (q = angle_elem(&it->list.pos, p, end, lo)) != NULL) {
			*elem = span(p, q);
			return 0;
		}
	}
	return elem_next_general(elem, it);
}

/* ---------------------------------------------------------------- hosts */

static inline bool is_dec(const char *p, const char *end)
{
	return p < end && (unsigned)(unsigned char)*p - '0' < 10;
}

/* dec-octet of at most 3 digits and 255 at p; returns its end or NULL.
 * Unrolled: the host of every URI and Via comes here. */
static const char *ipv4_octet(const char *p, const char *end)
{
	unsigned v;

	if (!is_dec(p, end))
		return NULL;
	v = (unsigned)(*p++ - '0');
	if (is_dec(p, end)) {
		v = v * 10 + (unsigned)(*p++ - '0');
		if (is_dec(p, end)) {
			v = v * 10 + (unsigned)(*p++ - '0');
			if (v > 255 || is_dec(p, end))
				return NULL;
		}
	}
	return p;
}

/* IPv4address = 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT "." 1*3DIGIT, each
 * at most 255 (the §25.1 rule alone would accept 999). */
static bool ipv4_valid(const char *p, const char *end)
{
	for (int part = 0; part < 4; part++) {
		if (part > 0 && (p == end || *p++ != '.'))
			return false;
		p = ipv4_octet(p, end);
		if (p == NULL)
			return false;
	}
	return p == end;
}

/*
 * IPv6address as corrected by RFC 5954 (the RFC 3986 form): at most eight
 * groups of 1-4 hex digits, "::" at most once standing for at least one
 * zero group, optionally ending in a dotted IPv4 worth two groups.
 */
bool sip_ipv6_valid(const char *p, const char *end)
{
	unsigned groups = 0;
	bool gap = false;

	if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
		gap = true;
		p += 2;
		if (p == end)
			return true;
	}
	for (;;) {
		const char *g = p;
		while (p < end && sip_is((unsigned char)*p, SIP_CC_HEX) &&
		       p - g < 5)
			p++;
		if (p < end && *p == '.') {
			if (!ipv4_valid(g, end))
				return false;
			groups += 2;
			break;
		}
		if (p == g || p - g > 4)
			return false;
		groups++;
		if (p == end)
			break;
		if (*p++ != ':' || p == end)
			return false;
		if (*p == ':') {
			if (gap)
				return false;
			gap = true;
			if (++p == end)
				break;
		}
	}
	return gap ? groups <= 7 : groups == 8;
}

#ifdef __SSE2__
/*
 * ipv4_valid() of a run of digits and dots from its bitmaps (bit i for
 * p[i]) whose labels are known not to be empty: three dots, none last, no
 * octet of four digits, and each one of three at most "255" (compared as
 * a big-endian number of three bytes).
 */
static inline bool ipv4_bits(const char *p, unsigned digits, unsigned dots,
                             unsigned last)
{
	unsigned two = dots & (dots - 1), three = two & (two - 1);

	if (three == 0 || (three & (three - 1)) != 0 || (dots & last) ||
	    (digits & digits >> 1 & digits >> 2 & digits >> 3))
		return false;
	for (unsigned r = digits & digits >> 1 & digits >> 2; r; r &= r - 1) {
		const unsigned char *o =
		        (const unsigned char *)p + __builtin_ctz(r);
		if ((unsigned)(o[0] << 16 | o[1] << 8 | o[2]) >
		    ('2' << 16 | '5' << 8 | '5'))
			return false;
	}
	return true;
}

/*
 * The label rules of host_scan_bytes() on the bitmaps of a run of host
 * bytes (bit i for byte i; in: the run's bits, last: its last one): no
 * empty label, none starting or ending with '-'.
 */
__attribute__((always_inline)) static inline bool
labels_ok(uint64_t dots, uint64_t dashes, uint64_t in, uint64_t last)
{
	uint64_t starts = (1u | dots << 1) & in; /* of the labels */

	dots &= in;
	dashes &= in;
	return !((dots & starts) || (dashes & starts) || (dashes << 1 & dots) ||
	         (dashes & last));
}

/* Whether the top label (after the last dot but a trailing one) starts
 * with a letter, as a hostname's must. */
__attribute__((always_inline)) static inline bool
top_label_letter(uint64_t letters, uint64_t dots, uint64_t in, uint64_t last)
{
	uint64_t inner = dots & in & ~last;
	unsigned top = inner ? 64 - (unsigned)__builtin_clzll(inner) : 0;

	return letters >> top & 1;
}

/* Bitmaps of the 16 bytes at at, shifted right by shift (the bits above
 * the bytes loaded are 0). */
struct host_bits {
	unsigned letters, digits, dots, dashes;
};

__attribute__((always_inline)) static inline struct host_bits
host_bits16(const char *at, unsigned shift)
{
	__m128i v = _mm_loadu_si128((const __m128i *)(const void *)at);
	__m128i lower = _mm_or_si128(v, _mm_set1_epi8(0x20));
	struct host_bits b = {
	        (unsigned)_mm_movemask_epi8(sip_range16(lower, 'a', 26)) >>
	                shift,
	        (unsigned)_mm_movemask_epi8(sip_range16(v, '0', 10)) >> shift,
	        sip_eq16(at, '.') >> shift,
	        sip_eq16(at, '-') >> shift,
	};
	return b;
}

/*
 * A run of more than 16 host bytes, up to 63: the names of IMS networks
 * ("pcscf.ims.mnc001.mcc262.3gppnetwork.org") are 30 to 45 bytes, which
 * the byte walk took ~400 instructions for. The bitmaps of up to four
 * chunks of 16, the last one moved back to end. No IPv4address is that
 * long. p itself when the run is longer still (the byte walk).
 */
static const char *host_scan64(enum sip_host_type *type, const char *p,
                               const char *end)
{
	uint64_t letters = 0, dots = 0, dashes = 0;

	for (unsigned off = 0; off < 64; off += 16) {
		const char *q = p + off, *at = end - q >= 16 ? q : end - 16;
		struct host_bits b = host_bits16(at, (unsigned)(q - at));
		unsigned run = (unsigned)__builtin_ctz(
		        ~(b.letters | b.digits | b.dots | b.dashes));

		letters |= (uint64_t)b.letters << off;
		dots |= (uint64_t)b.dots << off;
		dashes |= (uint64_t)b.dashes << off;
		if (run == 16 && end - q > 16)
			continue;
		unsigned len = off + run;
		if (len == 64)
			break;
		uint64_t in = (1ull << len) - 1, last = 1ull << (len - 1);
		if (!labels_ok(dots, dashes, in, last) ||
		    !top_label_letter(letters, dots, in, last))
			return NULL;
		*type = SIP_HOST_NAME;
		return p + len;
	}
	return p;
}

/*
 * host of up to 15 bytes (most are), checked from bitmaps of its bytes
 * with SSE2 (host_scan64() for longer runs): returns the byte after it,
 * NULL when it is not a host, or p itself when the run of host bytes is
 * longer still and host_scan_bytes() must walk it. The rules are those
 * of host_scan_bytes().
 */
__attribute__((always_inline)) static inline const char *
host_scan16(enum sip_host_type *type, const char *p, const char *end)
{
	const char *at = end - p >= 16 ? p : end - 16;
	struct host_bits b = host_bits16(at, (unsigned)(p - at));
	/* the bits above the bytes loaded are 0: the run stops there */
	unsigned len = (unsigned)__builtin_ctz(
	        ~(b.letters | b.digits | b.dots | b.dashes));

	if (len == 16 && end - p > 16)
		return host_scan64(type, p, end);
	if (len == 0)
		return NULL;
	unsigned in = (1u << len) - 1, last = 1u << (len - 1);
	if (!labels_ok(b.dots, b.dashes, in, last))
		return NULL;
	/* a letter or a '-' rules an IPv4address out */
	if (((b.letters | b.dashes) & in) == 0 &&
	    ipv4_bits(p, b.digits & in, b.dots & in, last))
		*type = SIP_HOST_IPV4;
	else if (top_label_letter(b.letters, b.dots, in, last))
		*type = SIP_HOST_NAME;
	else
		return NULL;
	return p + len;
}
#endif

/*
 * One pass over the run of alphanum, '-' and '.' that can make a hostname
 * or an IPv4address, checking the labels on the way: none empty, none
 * starting or ending with '-'. Then the run is an IPv4address if it is a
 * valid one (so only digits and dots), a hostname if its top label (the
 * last one, or the one before a trailing dot) starts with a letter.
 */
static const char *host_scan_bytes(enum sip_host_type *type, const char *p,
                                   const char *end)
{
	const char *h = p, *label = p, *top = p;

	for (;;) {
		p = sip_skip_cls(p, end, SIP_CC_ALNUM);
		if (p < end && *p == '.') {
			if (p == label || p[-1] == '-')
				return NULL; /* empty label or trailing '-' */
			top = label;
			label = ++p;
		} else if (p < end && *p == '-') {
			if (p == label)
				return NULL;
			p++;
		} else {
			break;
		}
	}
	if (p == h)
		return NULL;
	if (label < p) { /* no trailing dot: the last label is the top one */
		if (p[-1] == '-')
			return NULL;
		top = label;
	}
	if (ipv4_valid(h, p))
		*type = SIP_HOST_IPV4;
	else if (sip_is((unsigned char)*top, SIP_CC_ALPHA))
		*type = SIP_HOST_NAME;
	else
		return NULL;
	return p;
}

__attribute__((always_inline)) static inline const char *
host_scan(struct slice *host, enum sip_host_type *type, const char *p,
          const char *end, const char *lo)
{
	const char *e = p;

	if (p < end && *p == '[') {
		e = memchr(p, ']', (size_t)(end - p));
		if (e == NULL || !sip_ipv6_valid(p + 1, e))
			return NULL;
		*host = span(p + 1, e);
		*type = SIP_HOST_IPV6;
		return e + 1;
	}
#ifdef __SSE2__
	if (end - lo >= 16)
		e = host_scan16(type, p, end);
#endif
	if (e == p)
		e = host_scan_bytes(type, p, end);
	if (e != NULL)
		*host = span(p, e);
	return e;
}

const char *sip_host_scan(struct slice *host, enum sip_host_type *type,
                          const char *p, const char *end, const char *lo)
{
	return host_scan(host, type, p, end, lo);
}

/* ----------------------------------------------------------- parameters */

/*
 * generic-param = token [ EQUAL gen-value ], gen-value = token / host /
 * quoted-string, each preceded by SEMI; LWS allowed around ";" and "="
 * (RFC 3261 §25.1). param_next() returns them one by one: 0 and the next
 * name and value (empty when there is no "="), EBADMSG (with *why), or
 * ENOENT at a byte that cannot continue the list; then it->end is that
 * byte and it->p the end of the text before it (the LWS between them
 * skipped).
 */
struct param_iter {
	const char *p, *end;
	const char *hi; /* bytes up to hi may be read (see sip_skip_adn()) */
};

__attribute__((always_inline)) static inline int
param_next(struct slice *name, struct slice *value, struct param_iter *it,
           const char **why)
{
	const char *end = it->end, *q = skip_ws_if(it->p, end);

	if (q == end || *q != ';') {
		it->end = q;
		return ENOENT;
	}
	q = skip_ws_if(q + 1, end);
	const char *ne = sip_skip_token_hi(q, end, it->hi);
	if (ne == q)
		return fail(why, "empty parameter");
	*name = span(q, ne);
	*value = span(ne, ne);
	it->p = ne;
	q = skip_ws_if(ne, end);
	if (q < end && *q == '=') {
		q = skip_ws_if(q + 1, end);
		const char *ve;
		if (q < end && *q == '"') {
			ve = sip_skip_quoted(q, end);
			if (ve == NULL)
				return fail(why, "bad quoted string");
		} else if (q < end && *q == '[') {
			ve = memchr(q, ']', (size_t)(end - q));
			if (ve == NULL || !sip_ipv6_valid(q + 1, ve))
				return fail(why, "bad parameter value");
			ve++;
		} else {
			/* token, or host: ':' may be among its bytes */
			ve = sip_skip_token_hi(q, end, it->hi);
			while (ve < end && *ve == ':')
				ve = sip_skip_token(ve + 1, end);
			if (ve == q)
				return fail(why, "empty parameter value");
		}
		*value = span(q, ve);
		it->p = ve;
	}
	return 0;
}

/*
 * n is lit, of len <= 8 lower-case letters, in any case. The bytes are
 * compared a word at a time: OR-ing 0x20 into each is an exact case fold
 * for letters, and lit has nothing else.
 */
static inline uint32_t load32(const char *p)
{
	uint32_t v;

	memcpy(&v, p, 4);
	return v;
}

static inline uint16_t load16(const char *p)
{
	uint16_t v;

	memcpy(&v, p, 2);
	return v;
}

static inline bool name_is(struct slice n, const char *lit, size_t len)
{
	if (n.len != len)
		return false;
	/* two words that overlap when len is not twice their size */
	if (len >= 4)
		return (load32(n.p) | 0x20202020u) == load32(lit) &&
		       (load32(n.p + len - 4) | 0x20202020u) ==
		               load32(lit + len - 4);
	if (len >= 2)
		return (load16(n.p) | 0x2020u) == load16(lit) &&
		       (load16(n.p + len - 2) | 0x2020u) ==
		               load16(lit + len - 2);
	return (*n.p | 0x20) == *lit;
}

#define NAME_IS(n, lit) name_is(n, lit, sizeof(lit) - 1)

/*
 * ";name" or ";name=value" at p (a ';'), of tokens, ending at end or at a
 * byte of stops (';' always): 0 with the name and value (empty without
 * "="), and *pp after it; EAGAIN for any other shape, for param_next() to
 * take. The bytes up to hi (>= end) may be read.
 */
__attribute__((always_inline)) static inline int
param_simple(struct slice *name, struct slice *value, const char **pp,
             const char *end, const char *hi, bool comma_stops)
{
	const char *n = *pp + 1, *ne = sip_skip_token_hi(n, end, hi);
	const char *ve = ne;

	if (ne == n)
		return EAGAIN;
	*name = span(n, ne);
	*value = span(ne, ne);
	if (ne < end && *ne == '=') {
		ve = sip_skip_token_hi(ne + 1, end, hi);
		if (ve == ne + 1)
			return EAGAIN;
		*value = span(ne + 1, ve);
	}
	if (ve < end && *ve != ';' &&
	    !(comma_stops &&
	      (*ve == ',' || sip_is((unsigned char)*ve, SIP_CC_WS))))
		return EAGAIN;
	*pp = ve;
	return 0;
}

/* ------------------------------------------------------------------ Via */

__attribute__((always_inline)) static inline void
via_param(struct sip_via *v, struct slice name, struct slice value)
{
	switch (sip_lower[(unsigned char)name.p[0]]) {
	case 'b':
		if (NAME_IS(name, "branch"))
			v->branch = value;
		break;
	case 'r':
		if (NAME_IS(name, "received")) {
			v->received = value;
		} else if (NAME_IS(name, "rport")) {
			v->rport = value;
			v->has_rport = true;
		}
		break;
	case 'm':
		if (NAME_IS(name, "maddr"))
			v->maddr = value;
		break;
	case 't':
		if (NAME_IS(name, "ttl"))
			v->ttl = value;
		break;
	default:
		break;
	}
}

/*
 * via-parm = sent-protocol LWS sent-by *( SEMI via-params ) with
 * sent-protocol = protocol-name SLASH protocol-version SLASH transport,
 * from p to where it stops (*last and *stop as params_scan() sets them).
 * Fills *v but for raw, and for the length of params, which runs to the
 * end of the element.
 */
/*
 * The 8 bytes at p are the literal w (lower-case), where fold has the
 * case bit (0x20) set on the bytes of w that are letters, which then
 * match in any case (see name_is()). fold is given as the bytes of a
 * string, so that it holds whatever the byte order.
 */
static inline bool word_is(const char *p, const char *w, const char *fold)
{
	uint64_t x, l, f;

	memcpy(&x, p, 8);
	memcpy(&l, w, 8);
	memcpy(&f, fold, 8);
	return (x | f) == l;
}

/* word_is() of the bytes where keep has 0xff (the others may be anything;
 * w has 0 there). */
static inline bool word_is_masked(const char *p, const char *w,
                                  const char *fold, const char *keep)
{
	uint64_t x, l, f, k;

	memcpy(&x, p, 8);
	memcpy(&l, w, 8);
	memcpy(&f, fold, 8);
	memcpy(&k, keep, 8);
	return ((x & k) | f) == l;
}

/*
 * The usual Via element: "SIP/2.0/" transport SP host [":" port], then
 * parameters ";name" or ";name=value" of tokens with no LWS, up to the end
 * or to LWS and a comma. Fills *v, *last and *stop as via_parm() would, in
 * fewer steps; false for anything else (*v is then changed), which
 * via_parm() takes. The bytes from p up to hi (>= end) may be read.
 */
__attribute__((always_inline)) static inline bool
via_fast(struct sip_via *v, const char **last, const char **stop, const char *p,
         const char *end, const char *hi)
{
	const char *lo = p, *e, *q;

	if (end - p < 12 || !word_is(p, "SIP/2.0/", "\0\0\0\0\0\0\0\0"))
		return false;
	v->proto_name = span(p, p + 3);
	v->proto_version = span(p + 4, p + 7);
	p += 8;
	/* a transport of 3 letters (UDP, TCP, TLS), or a byte loop */
	if (p[3] == ' ' &&
	    (sip_cc[(unsigned char)p[0]] & sip_cc[(unsigned char)p[1]] &
	     sip_cc[(unsigned char)p[2]] & SIP_CC_ALPHA))
		e = p + 3;
	else
		e = sip_skip_token(p, end);
	if (e == p || end - e < 2 || *e != ' ' ||
	    sip_is((unsigned char)e[1], SIP_CC_WS))
		return false;
	v->transport = span(p, e);
	p = host_scan(&v->host, &v->host_type, e + 1, end, lo);
	if (p == NULL)
		return false;
	v->port = 0;
	v->has_port = false;
	if (p < end && *p == ':') {
		v->has_port = true;
		p = sip_port_scan(&v->port, p + 1, end, hi);
		if (p == NULL)
			return false;
	}
	v->params = v->branch = v->received = v->rport = v->maddr = v->ttl =
	        SLICE_NULL;
	v->has_rport = false;
	if (p < end && *p == ';')
		v->params.p = p + 1;
	while (p < end && *p == ';') {
		struct slice name, value;
		/* ";branch=", in nearly every Via, by one compare */
		if (hi - p >= 8 && word_is(p, ";branch=", "\0      \0")) {
			/* end - 16 is inside the element, which is longer */
			q = sip_skip_token16(p + 8, end);
			if (q == p + 8 ||
			    (q < end && *q != ';' && *q != ',' &&
			     !sip_is((unsigned char)*q, SIP_CC_WS)))
				return false;
			v->branch = span(p + 8, q);
			p = q;
			continue;
		}
		/* a ':' may continue a value, LWS come before "=": the
		 * general path sorts them out */
		if (param_simple(&name, &value, &p, end, hi, true) != 0)
			return false;
		via_param(v, name, value);
	}
	q = skip_ws_if(p, end);
	if (q != end && *q != ',')
		return false;
	*last = p;
	*stop = q;
	return true;
}

__attribute__((noinline)) static int
via_parm_general(struct sip_via *v, const char **last, const char **stop,
                 const char *p, const char *end, const char *hi,
                 const char **why)
{
	const char *lo = p;
	const char *e;

	memset(v, 0, sizeof(*v));
	if (end - p >= 8 && memcmp(p, "SIP/2.0/", 8) == 0) {
		/* what the general case below finds in nearly every Via */
		v->proto_name = span(p, p + 3);
		v->proto_version = span(p + 4, p + 7);
		p += 8;
	} else {
		struct slice part[2];
		for (int i = 0; i < 2; i++) {
			p = sip_skip_ws(p, end);
			e = sip_skip_token(p, end);
			if (e == p)
				return fail(why, "malformed Via header");
			part[i] = span(p, e);
			p = sip_skip_ws(e, end);
			if (p == end || *p != '/')
				return fail(why, "malformed Via header");
			p++;
		}
		v->proto_name = part[0];
		v->proto_version = part[1];
	}
	p = skip_ws_if(p, end);
	e = sip_skip_token_hi(p, end, hi);
	if (e == p)
		return fail(why, "malformed Via header");
	v->transport = span(p, e);
	p = sip_skip_ws(e, end);
	if (p == e)
		return fail(why, "malformed Via header");

	p = sip_host_scan(&v->host, &v->host_type, p, end, lo);
	if (p != NULL && p < end && *p == ':') {
		v->has_port = true;
		p = sip_port_scan(&v->port, p + 1, end, hi);
	}
	if (p == NULL)
		return fail(why, "bad Via sent-by");
	const char *q = skip_ws_if(p, end);
	if (q < end && *q == ';')
		v->params.p = skip_ws_if(q + 1, end);
	struct param_iter it = {p, end, hi};
	struct slice name, value;
	int err;
	while ((err = param_next(&name, &value, &it, why)) == 0)
		via_param(v, name, value);
	if (err != ENOENT)
		return fail(why, "malformed Via parameters");
	*last = it.p;
	*stop = it.end;
	return 0;
}

__attribute__((always_inline)) static inline int
via_parm(struct sip_via *v, const char **last, const char **stop, const char *p,
         const char *end, const char *hi, const char **why)
{
	if (via_fast(v, last, stop, p, end, hi))
		return 0;
	return via_parm_general(v, last, stop, p, end, hi, why);
}

int sip_via_parse(struct sip_via *out, struct slice elem, const char **why)
{
	const char *end = elem.p + elem.len, *last, *stop;
	struct sip_via v;

	if (via_parm(&v, &last, &stop, elem.p, end, end, why))
		return EBADMSG;
	if (stop != end)
		return fail(why, "malformed Via parameters");
	v.raw = elem;
	if (v.params.p != NULL)
		v.params.len = (size_t)(end - v.params.p);
	*out = v;
	return 0;
}

/*
 * The first element of a Via value when it is a via-parm of the usual
 * shape (see via_fast()) followed by the end of the value or by a comma
 * and another element: then sip_list_next() would have split the value
 * there, and a separate scan of the element is saved. 0 then, as
 * sip_via_parse() would parse the element; EAGAIN otherwise (*out
 * changed), for the general path to parse it and say why, from a slow
 * path apart: this one makes no call. The bytes from value up to hi (>=
 * its end) may be read.
 */
__attribute__((always_inline)) static inline int
via_first(struct sip_via *out, struct slice value, const char *hi)
{
	const char *end = value.p + value.len, *last, *stop;

	if (value.len == 0 || !via_fast(out, &last, &stop, value.p, end, hi))
		return EAGAIN;
	if (stop != end && (*stop != ',' || sip_skip_ws(stop + 1, end) == end))
		return EAGAIN;
	out->raw = span(value.p, last);
	if (out->params.p != NULL)
		out->params.len = (size_t)(last - out->params.p);
	return 0;
}

/* sip_msg_top_via() past via_first(): the first element from the
 * list iterator, parsed by the general path, which finds the reason of a
 * failure. */
__attribute__((noinline)) static int
top_via_decode_slow(const struct sip_via **out, struct sip_msg *m)
{
	struct sip_elem_iter it;
	struct slice elem;
	const char *why = "malformed Via header";
	int err;

	sip_elem_iter_init(&it, m, SIP_HDR_VIA);
	err = sip_elem_next(&elem, &it);
	if (err == 0)
		err = sip_via_parse(&m->top_via, elem, &why);
	if (err == 0) {
		m->decoded |= SIP_DEC_VIA;
		*out = &m->top_via;
	} else if (err == EBADMSG) {
		m->failed |= SIP_DEC_VIA;
		m->error = why;
	}
	return err;
}

/*
 * Decoded on first use (see msg.c, cached decoders): the first element
 * parsed in place, without a separate scan by the list iterator and
 * without a call; anything unusual takes the general path.
 */
int sip_msg_top_via(const struct sip_via **out, struct sip_msg *m)
{
	unsigned i = m->first[SIP_HDR_VIA];

	if (!(m->decoded & SIP_DEC_VIA)) {
		if (m->failed & SIP_DEC_VIA)
			return EBADMSG;
		if (i == 0 || via_first(&m->top_via, m->hdrs[i - 1].value,
		                        m->buf + m->len))
			return top_via_decode_slow(out, m);
		m->decoded |= SIP_DEC_VIA;
	}
	*out = &m->top_via;
	return 0;
}

/* -------------------------------------------------------- name-addr */

static inline void addr_param(struct sip_addr *a, struct slice name,
                              struct slice value)
{
	if (NAME_IS(name, "tag")) {
		a->tag = value;
		a->has_tag = true;
	} else if (NAME_IS(name, "expires")) {
		a->expires = value;
	} else if (NAME_IS(name, "q")) {
		a->q = value;
	}
}

/* The header parameters of an address from p: *stop as param_next()
 * leaves it. */
static int addr_params(struct sip_addr *a, const char **stop, const char *p,
                       const char *end, const char *hi, const char **why)
{
	struct param_iter it = {p, end, hi};
	struct slice name, value;
	int err;

	while ((err = param_next(&name, &value, &it, why)) == 0)
		addr_param(a, name, value);
	*stop = it.end;
	return err == ENOENT ? 0 : err;
}

/*
 * addr-spec inside <>: the first '>' of [p, end) or NULL, and in *colon
 * and *ctl whether a ':' and a byte that no URI holds (<= SP, DEL) come
 * before it. The bytes of [lo, p) may be read too: with SSE2 the three
 * are looked for 16 bytes at a time.
 */
static const char *find_raquot(bool *colon, bool *ctl, const char *p,
                               const char *end, const char *lo)
{
#ifdef __SSE2__
	if (end - lo >= 16) {
		const __m128i sp = _mm_set1_epi8(' ');
		bool c = false, b = false; /* in the chunks before */
		for (;; p += 16) {
			const char *at = p;
			unsigned skip = 0;
			if (end - p < 16) {
				at = end - 16;
				skip = (unsigned)(p - at);
			}
			__m128i v = _mm_loadu_si128(
			        (const __m128i *)(const void *)at);
			/* bytes <= SP are those that max(v, SP) leaves SP */
			__m128i bad = _mm_or_si128(
			        _mm_cmpeq_epi8(_mm_max_epu8(v, sp), sp),
			        _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)));
			unsigned gt = sip_eq16(at, '>') >> skip;
			unsigned cm = sip_eq16(at, ':') >> skip;
			unsigned bm = (unsigned)_mm_movemask_epi8(bad) >> skip;
			if (gt) {
				unsigned before = (gt & -gt) - 1;
				*colon = c || (cm & before) != 0;
				*ctl = b || (bm & before) != 0;
				return p + __builtin_ctz(gt);
			}
			if (end - p <= 16)
				return NULL;
			c = c || cm != 0;
			b = b || bm != 0;
		}
	}
#endif
	const char *q = memchr(p, '>', (size_t)(end - p));
	if (q == NULL)
		return NULL;
	*colon = memchr(p, ':', (size_t)(q - p)) != NULL;
	*ctl = false;
	for (; p < q; p++)
		if ((unsigned char)*p <= ' ' || *p == 0x7f)
			*ctl = true;
	return q;
}

/*
 * ( name-addr / addr-spec ) *( SEMI param ) where name-addr =
 * [ display-name ] LAQUOT addr-spec RAQUOT and display-name = *(token LWS)
 * / quoted-string. A URI outside <> cannot hold ',', ';' or '?' (RFC 3261
 * §20: its parameters are header parameters).
 */
#ifdef __SSE2__
/* '>' and the bytes no URI holds: <= SP and >= DEL, those that are below
 * SP + 2 once 1 is added, as signed bytes. */
static inline unsigned uri_stops16(__m128i v)
{
	return (unsigned)_mm_movemask_epi8(
	        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('>')),
	                     _mm_cmplt_epi8(_mm_add_epi8(v, _mm_set1_epi8(1)),
	                                    _mm_set1_epi8(' ' + 2))));
}
#endif

/*
 * The end of the URI inside <> that starts at p: the first '>' of [p, end)
 * when the URI's scheme has 3 or 4 bytes (sip, sips, tel) and no byte <=
 * SP or >= DEL comes before the '>', else NULL, for find_raquot() to say
 * why or to take the other URIs. The bytes of [lo, p) may be read too;
 * with SSE2, 16 bytes at a time.
 */
static inline const char *uri_close(const char *p, const char *end,
                                    const char *lo)
{
#ifdef __SSE2__
	if (end - lo < 16)
		return NULL;
	const char *q = sip_scan16(p, end, uri_stops16);
	if (q == end || *q != '>' || q - p <= 4 || (p[3] != ':' && p[4] != ':'))
		return NULL;
	return q;
#else
	(void)p;
	(void)end;
	(void)lo;
	return NULL;
#endif
}

#ifdef __SSE2__
/* '"', '\\' and the controls (those that max(v, US) leaves US) and DEL */
static inline unsigned quote_stops16(__m128i v)
{
	const __m128i us = _mm_set1_epi8(0x1f);

	return (unsigned)_mm_movemask_epi8(_mm_or_si128(
	        _mm_or_si128(_mm_cmpeq_epi8(v, _mm_set1_epi8('"')),
	                     _mm_cmpeq_epi8(v, _mm_set1_epi8('\\'))),
	        _mm_or_si128(_mm_cmpeq_epi8(_mm_max_epu8(v, us), us),
	                     _mm_cmpeq_epi8(v, _mm_set1_epi8(0x7f)))));
}
#endif

/*
 * The closing '"' of the quoted string whose text starts at p, when no
 * byte before it is a '\\', a control (LWS too) or DEL: then it is where
 * sip_skip_quoted() stops. NULL for any other text, which sip_skip_quoted()
 * takes. The bytes of [lo, p) may be read too: with SSE2, 16 bytes at a
 * time.
 */
__attribute__((always_inline)) static inline const char *
quote_close(const char *p, const char *end, const char *lo)
{
#ifdef __SSE2__
	if (end - lo >= 16)
		p = sip_scan16(p, end, quote_stops16);
	else
#endif
		p = sip_skip_cls(p, end, SIP_CC_QTEXT);
	return p < end && *p == '"' ? p : NULL;
}

/*
 * The usual address: [ display-name [ SP ] ] "<" URI ">", the display
 * name a quoted-string or tokens apart by one SP, followed by parameters
 * ";name" or ";name=value" of tokens with no LWS. Fills *out as
 * sip_addr_decode() would, in fewer steps, and true; false for anything
 * else, which sip_addr_decode() takes (*out is then changed). The fields
 * are written as they are found, which leaves few values to keep in
 * registers. The bytes from elem up to hi (>= its end) may be read.
 */
__attribute__((always_inline)) static inline bool
addr_fast(struct sip_addr *out, struct slice elem, const char *hi)
{
	const char *p = elem.p, *end = elem.p + elem.len, *q;

	if (elem.len < 3)
		return false;
	if (*p == '<') {
		out->display = span(p, p);
	} else if (*p == '"') {
		/* quoted-string without quoted-pair, then at most one SP */
		q = quote_close(p + 1, end, elem.p);
		if (q == NULL || end - q < 3)
			return false;
		out->display = span(p + 1, q);
		p = q + 1 + (q[1] == ' ');
		if (*p != '<')
			return false;
	} else {
		/* tokens apart by one SP, then at most one SP ("sipp <sip:"):
		 * the scans read 16 bytes back from the end. A '*' first may
		 * be Contact's star, which the general path tells apart. */
		if (end - p < 16 || *p == '*')
			return false;
		for (q = p;;) {
			const char *t = sip_skip_token16(q, end);
			if (t == q || end - t < 2)
				return false;
			if (*t == '<' || (*t == ' ' && t[1] == '<')) {
				out->display = span(p, t);
				p = t + (*t == ' ');
				break;
			}
			if (*t != ' ')
				return false;
			q = t + 1;
		}
	}
	q = uri_close(p + 1, end, elem.p);
	if (q == NULL || q == p + 1)
		return false;
	out->uri = span(p + 1, q);
	out->params = out->tag = out->expires = out->q = SLICE_NULL;
	out->has_tag = false;
	p = q + 1;
	if (p != end && end - p > 5 && hi - p >= 8 &&
	    word_is_masked(p, ";tag=\0\0\0", "\0   \0\0\0\0",
	                   "\xff\xff\xff\xff\xff\0\0\0") &&
	    sip_skip_token16(p + 5, end) == end) {
		/* only a tag: From and To of most requests and responses */
		out->params = span(p + 1, end);
		out->tag = span(p + 5, end);
		out->has_tag = true;
	} else if (p != end) {
		if (*p != ';')
			return false;
		out->params = span(p + 1, end);
		while (p < end) {
			struct slice name, value;
			if (*p != ';' || param_simple(&name, &value, &p, end,
			                              hi, false) != 0)
				return false;
			addr_param(out, name, value);
		}
	}
	out->raw = elem;
	out->bracketed = true;
	out->star = false;
	return true;
}

__attribute__((noinline)) static int
addr_decode_general(struct sip_addr *a, struct slice elem, unsigned flags,
                    const char *hi, const char **why)
{
	const char *p = elem.p, *end = elem.p + elem.len, *q;

	memset(a, 0, sizeof(*a));
	a->raw = elem;
	p = skip_ws_if(p, end);
	if (p == end)
		return fail(why, "empty address");
	if ((flags & SIP_ADDR_ALLOW_STAR) && *p == '*') {
		q = sip_skip_ws(p + 1, end);
		a->star = true;
		a->uri = span(p, p + 1);
		if (addr_params(a, &q, q, end, hi, why) || q != end)
			return fail(why, "malformed Contact *");
		return 0;
	}

	if (*p == '"') {
		q = sip_skip_quoted(p, end);
		if (q == NULL)
			return fail(why, "unterminated quoted display name");
		a->display = span(p + 1, q - 1);
		p = skip_ws_if(q, end);
		if (p == end || *p != '<')
			return fail(why, "display name without <URI>");
	} else {
		q = p;
		while (q < end &&
		       sip_is((unsigned char)*q, SIP_CC_TOKEN | SIP_CC_WS))
			q++;
		if (q < end && *q == '<') {
			const char *de = q;
			while (de > p &&
			       sip_is((unsigned char)de[-1], SIP_CC_WS))
				de--;
			a->display = span(p, de);
			p = q;
		}
	}

	bool colon, ctl;
	if (*p == '<') {
		q = find_raquot(&colon, &ctl, p + 1, end, elem.p);
		if (q == NULL)
			return fail(why, "unterminated <URI>");
		a->uri = span(p + 1, q);
		a->bracketed = true;
		p = q + 1;
	} else {
		q = p;
		while (q < end && !sip_is((unsigned char)*q, SIP_CC_WS) &&
		       *q != ';' && *q != ',' && *q != '?' && *q != '<' &&
		       *q != '>' && *q != '"')
			q++;
		a->uri = span(p, q);
		p = q;
		colon = memchr(a->uri.p, ':', a->uri.len) != NULL;
		ctl = false;
		for (q = a->uri.p; q < p; q++)
			if ((unsigned char)*q <= ' ' || *q == 0x7f)
				ctl = true;
	}
	if (a->uri.len == 0)
		return fail(why, "empty URI");
	if (!colon)
		return fail(why, "URI without scheme");
	if (ctl)
		return fail(why, "whitespace in URI");

	q = skip_ws_if(p, end);
	if (q < end && *q == ';') {
		a->params = span(skip_ws_if(q + 1, end), end);
		if (addr_params(a, &q, p, end, hi, why))
			return EBADMSG;
	}
	if (q != end)
		return fail(why, a->bracketed ? "junk after <URI>"
		                              : "malformed address");
	return 0;
}

/* sip_addr_parse() past addr_fast(): apart, so that the fast path needs
 * no stack frame for the general one. */
__attribute__((noinline)) static int addr_parse_general(struct sip_addr *out,
                                                        struct slice elem,
                                                        unsigned flags,
                                                        const char **why)
{
	struct sip_addr a;
	int err = addr_decode_general(&a, elem, flags, elem.p + elem.len, why);

	if (err == 0)
		*out = a;
	return err;
}

int sip_addr_decode(struct sip_addr *a, struct slice elem, unsigned flags,
                    const char *hi, const char **why)
{
	if (addr_fast(a, elem, hi))
		return 0;
	return addr_decode_general(a, elem, flags, hi, why);
}

/* sip_addr_parse() past its first test: the usual addresses, then the
 * others. */
__attribute__((noinline)) static int addr_parse_rest(struct sip_addr *out,
                                                     struct slice elem,
                                                     unsigned flags,
                                                     const char **why)
{
	struct sip_addr a;

	if (addr_fast(&a, elem, elem.p + elem.len)) {
		*out = a;
		return 0;
	}
	return addr_parse_general(out, elem, flags, why);
}

/* A "<URI>" alone, the usual Route and Record-Route element, is taken as
 * addr_fast() takes it, without a call (no registers to save); anything
 * else by a tail call. */
int sip_addr_parse(struct sip_addr *out, struct slice elem, unsigned flags,
                   const char **why)
{
	const char *end = elem.p + elem.len;

	if (elem.len >= 3 && *elem.p == '<' && end[-1] == '>' &&
	    uri_close(elem.p + 1, end, elem.p) == end - 1) {
		out->raw = elem;
		out->display = span(elem.p, elem.p);
		out->uri = span(elem.p + 1, end - 1);
		out->bracketed = true;
		out->star = false;
		out->has_tag = false;
		out->params = out->tag = out->expires = out->q = SLICE_NULL;
		return 0;
	}
	return addr_parse_rest(out, elem, flags, why);
}

/* sip_msg_from() or sip_msg_to() of a present header that addr_fast() left: the
 * general decoder, which also finds the reason of a failure. */
__attribute__((noinline)) static int
addr_decode_slow(const struct sip_addr **out, struct sip_msg *m,
                 struct sip_addr *a, struct slice value, uint32_t bit)
{
	const char *why = NULL;

	if (addr_decode_general(a, value, 0, m->buf + m->len, &why)) {
		m->failed |= bit;
		m->error = why;
		return EBADMSG;
	}
	m->decoded |= bit;
	*out = a;
	return 0;
}

/*
 * sip_msg_from() and sip_msg_to(), decoded on first use (see msg.c, cached
 * decoders): id and bit are SIP_HDR_FROM and SIP_DEC_FROM, or To's. m->from
 * and m->to are only read once decoded: they may be written by a decoder
 * that fails. Only a malformed header is remembered: absence is one load
 * to find again. The usual address is taken without a call, so without
 * saving registers.
 */
__attribute__((always_inline)) static inline int
msg_addr(const struct sip_addr **out, struct sip_msg *m, enum sip_hdr_id id,
         uint32_t bit)
{
	struct sip_addr *a = id == SIP_HDR_FROM ? &m->from : &m->to;
	unsigned i = m->first[id];

	if (!(m->decoded & bit)) {
		if (m->failed & bit)
			return EBADMSG;
		if (i == 0)
			return ENOENT;
		if (!addr_fast(a, m->hdrs[i - 1].value, m->buf + m->len))
			return addr_decode_slow(out, m, a, m->hdrs[i - 1].value,
			                        bit);
		m->decoded |= bit;
	}
	*out = a;
	return 0;
}

int sip_msg_from(const struct sip_addr **out, struct sip_msg *m)
{
	return msg_addr(out, m, SIP_HDR_FROM, SIP_DEC_FROM);
}

int sip_msg_to(const struct sip_addr **out, struct sip_msg *m)
{
	return msg_addr(out, m, SIP_HDR_TO, SIP_DEC_TO);
}

bool sip_msg_has_to_tag(struct sip_msg *m)
{
	const struct sip_addr *to;

	return sip_msg_to(&to, m) == 0 && to->tag.len > 0;
}

/*
 * The URI cached in *u under bit: parsed from text (read only then) on
 * first use. A failure is remembered, and m->error set to why on every
 * call: sip_msg_check() answers with it.
 */
static int msg_uri(const struct sip_uri **out, struct sip_msg *m, uint32_t bit,
                   struct sip_uri *u, struct slice text, const char *why)
{
	const char *reason;

	if (!(m->decoded & bit)) {
		if ((m->failed & bit) || sip_uri_parse(u, text, &reason)) {
			m->failed |= bit;
			m->error = why;
			return EBADMSG;
		}
		m->decoded |= bit;
	}
	*out = u;
	return 0;
}

/* sip_msg_from_uri() and sip_msg_to_uri(): the URI of the decoded
 * address. */
static int msg_addr_uri(const struct sip_uri **out, struct sip_msg *m, bool to)
{
	uint32_t bit = to ? SIP_DEC_TO_URI : SIP_DEC_FROM_URI;
	struct slice text = SLICE_NULL;
	const struct sip_addr *a;
	int err;

	if (!(m->decoded & bit) && !(m->failed & bit)) {
		err = to ? sip_msg_to(&a, m) : sip_msg_from(&a, m);
		if (err != 0)
			return err;
		text = a->uri;
	}
	return msg_uri(out, m, bit, to ? &m->to_uri : &m->from_uri, text,
	               to ? "bad To URI" : "bad From URI");
}

int sip_msg_from_uri(const struct sip_uri **out, struct sip_msg *m)
{
	return msg_addr_uri(out, m, false);
}

int sip_msg_to_uri(const struct sip_uri **out, struct sip_msg *m)
{
	return msg_addr_uri(out, m, true);
}

int sip_msg_request_uri(const struct sip_uri **out, struct sip_msg *m)
{
	if (!m->is_request)
		return ENOENT;
	return msg_uri(out, m, SIP_DEC_RURI, &m->request_uri, m->ruri,
	               "bad Request-URI");
}

/* ------------------------------------------------------- CSeq, RAck */

/* 1*DIGIT <= max followed by LWS; advances *pp. */
static int number_then_ws(uint32_t *out, const char **pp, const char *end,
                          uint32_t max)
{
	const char *p = sip_skip_ws(*pp, end), *d = p;
	uint64_t v = 0;

	/* past max, digits are still skipped, no longer added */
	for (; p < end && sip_is((unsigned char)*p, SIP_CC_DIGIT); p++)
		if (v <= max)
			v = v * 10 + (uint64_t)(*p - '0');
	if (p == d || v > max)
		return EBADMSG;
	if (p == end || !sip_is((unsigned char)*p, SIP_CC_WS))
		return EBADMSG;
	*out = (uint32_t)v;
	*pp = sip_skip_ws(p, end);
	return 0;
}

static int method_to_end(struct slice *method, const char *p, const char *end)
{
	const char *e = sip_skip_token(p, end);

	if (e == p || e != end)
		return EBADMSG;
	*method = span(p, e);
	return 0;
}

/* CSeq = 1*DIGIT LWS Method; the number is < 2^31 (RFC 3261 §8.1.1.5). */
int sip_cseq_parse(struct sip_cseq *out, struct slice value, const char **why)
{
	const char *p = value.p, *end = value.p + value.len;
	struct sip_cseq c;

	if (sip_cseq_usual(out, value))
		return 0;
	if (number_then_ws(&c.num, &p, end, INT32_MAX) ||
	    method_to_end(&c.method, p, end))
		return fail(why, "malformed CSeq header");
	c.method_id = sip_method_lookup(c.method);
	*out = c;
	return 0;
}

/* RAck = response-num LWS CSeq-num LWS Method (RFC 3262 §7.2). */
int sip_rack_parse(struct sip_rack *out, struct slice value, const char **why)
{
	const char *p = value.p, *end = value.p + value.len;
	struct sip_rack r;

	if (number_then_ws(&r.rseq, &p, end, INT32_MAX) ||
	    number_then_ws(&r.cseq, &p, end, INT32_MAX) ||
	    method_to_end(&r.method, p, end))
		return fail(why, "malformed RAck header");
	*out = r;
	return 0;
}
