/*
 * Message parsing: the start line and an index of header lines, then the
 * decoders that run on first use and cache their result in the message.
 *
 * sip_msg_parse() only fails when the message cannot be indexed at all (no
 * start line, a header line without a colon, no end of headers, a limit).
 * Errors inside header values surface when the value is decoded, so that a
 * request with a bad From can still be answered with a 400 that copies its
 * Vias (RFC 4475 §3.1.2).
 */
#include <errno.h>
#include <string.h>

#include "sip/sip_int.h"

static int bad(struct sip_msg *m, const char *why)
{
	m->error = why;
	return EBADMSG;
}

/*
 * Line ends are found through a bitmap of the '\n's of a 64-byte window of
 * the message, built 16 bytes at a time with SSE2 (baseline on x86-64):
 * the next line end is then a shift and a count of trailing zeros, where a
 * byte loop (or a memchr() call per line) was most of the cost of
 * indexing. A load never leaves [buf, end): where fewer than 16 bytes
 * remain it moves back to end - 16 and the bits of the bytes before the
 * position are shifted out, which needs a message of 16 bytes or more;
 * shorter ones (and builds without SSE2) take a byte loop.
 */
/* lf_bits() where fewer than 64 bytes remain, or without SSE2. */
static uint64_t lf_bits_tail(const char *at, const char *buf, const char *end)
{
	uint64_t bits = 0;

#ifdef __SSE2__
	if (end - buf >= 16) {
		const char *q = at;
		for (; end - q >= 16; q += 16)
			bits |= (uint64_t)sip_eq16(q, '\n') << (q - at);
		if (q < end)
			bits |= (uint64_t)(sip_eq16(end - 16, '\n') >>
			                   (16 - (end - q)))
			        << (q - at);
		return bits;
	}
#endif
	for (unsigned i = 0; i < 64 && at + i < end; i++)
		if (at[i] == '\n')
			bits |= (uint64_t)1 << i;
	return bits;
}

/* Bit i set when at[i] is a '\n', for the 64 bytes at at (inside the
 * message). */
static inline uint64_t lf_bits64(const char *at)
{
#ifdef __SSE2__
	return (uint64_t)sip_eq16(at, '\n') |
	       (uint64_t)sip_eq16(at + 16, '\n') << 16 |
	       (uint64_t)sip_eq16(at + 32, '\n') << 32 |
	       (uint64_t)sip_eq16(at + 48, '\n') << 48;
#else
	uint64_t bits = 0;

	for (unsigned i = 0; i < 64; i++)
		if (at[i] == '\n')
			bits |= (uint64_t)1 << i;
	return bits;
#endif
}

/* Bit i set when at[i] is a '\n', for the bytes of [at, at + 64) before
 * end. */
static inline uint64_t lf_bits(const char *at, const char *buf, const char *end)
{
	if (end - at >= 64)
		return lf_bits64(at);
	return lf_bits_tail(at, buf, end);
}

/* The '\n's of a message, in order: lf_next() returns the next one. */
struct lf_iter {
	const char *base; /* of the 64-byte window of bits */
	uint64_t bits;    /* the '\n's of the window not returned yet */
	const char *buf, *end;
};

static void lf_iter_init(struct lf_iter *it, const char *p, const char *buf,
                         const char *end)
{
	it->base = p;
	it->bits = lf_bits(p, buf, end);
	it->buf = buf;
	it->end = end;
}

/* The next '\n', or NULL when there is none. */
static inline const char *lf_next(struct lf_iter *it)
{
	while (it->bits == 0) {
		if (it->end - it->base <= 64)
			return NULL;
		it->base += 64;
		it->bits = lf_bits(it->base, it->buf, it->end);
	}
	const char *lf = it->base + __builtin_ctzll(it->bits);
	it->bits &= it->bits - 1;
	return lf;
}

/* The first ':' in [p, lf), or NULL. Names are short: one load at p finds
 * the colon of most lines. */
static inline const char *find_colon(const char *p, const char *lf,
                                     const char *end)
{
#ifdef __SSE2__
	if (end - p >= 16) {
		unsigned bits = sip_eq16(p, ':');
		if (bits)
			return p + __builtin_ctz(bits) < lf
			               ? p + __builtin_ctz(bits)
			               : NULL;
		if (lf - p <= 16)
			return NULL;
		return memchr(p + 16, ':', (size_t)(lf - p - 16));
	}
#endif
	return memchr(p, ':', (size_t)(lf - p));
}

/* Strips the CR before an LF line end (a bare LF is tolerated). */
static const char *strip_cr(const char *start, const char *lf)
{
	return (lf > start && lf[-1] == '\r') ? lf - 1 : lf;
}

/* "SIP/" 1*DIGIT "." 1*DIGIT, case-insensitive "SIP" (RFC 3261 §7.1). */
static bool version_syntax_ok(struct slice v)
{
	if (v.len < 7 || !sip_eq_nocase(v.p, "SIP/", 4))
		return false;
	const char *p = v.p + 4, *end = v.p + v.len, *d = p;
	while (p < end && sip_is((unsigned char)*p, SIP_CC_DIGIT))
		p++;
	if (p == d || p == end || *p != '.')
		return false;
	d = ++p;
	while (p < end && sip_is((unsigned char)*p, SIP_CC_DIGIT))
		p++;
	return p != d && p == end;
}

static bool version_is_2_0(struct slice v)
{
	return v.len == 7 && sip_eq_nocase(v.p, "SIP/2.0", 7);
}

/*
 * Request-Line = Method SP Request-URI SP SIP-Version (RFC 3261 §25.1):
 * exactly one SP between the elements and none at the end. Once a method
 * and a SP are seen the message is a request, and a defect in the rest is
 * kept in line_error so that it can be answered with a 400 (RFC 4475
 * §3.1.2.7-10).
 */
static int parse_request_line(struct sip_msg *m, struct slice line)
{
	const char *p = line.p, *end = line.p + line.len;
	const char *sp1 = sip_skip_token(p, end);

	if (sp1 == p || sp1 == end || *sp1 != ' ')
		return bad(m, "malformed request line: bad method");
	m->method = slice_make(p, (size_t)(sp1 - p));
	m->method_id = sip_method_lookup(m->method);
	m->is_request = true;

	const char *u = sp1 + 1;
	const char *sp2 = sip_find_sp(u, end, p);
	if (sp2 == end || sp2 == u) {
		m->line_error = "malformed request line: bad Request-URI";
		return 0;
	}
	m->ruri = slice_make(u, (size_t)(sp2 - u));
	m->version = slice_make(sp2 + 1, (size_t)(end - sp2 - 1));
	/* nearly always exactly "SIP/2.0" */
	if (!(m->version.len == 7 && memcmp(m->version.p, "SIP/2.0", 7) == 0) &&
	    (memchr(m->version.p, ' ', m->version.len) != NULL ||
	     !version_syntax_ok(m->version)))
		m->line_error = "malformed request line: bad SIP version";
	return 0;
}

/*
 * The usual start lines: "SIP/2.0 " 3DIGIT SP Reason-Phrase, or (16 bytes
 * or more) a known method, SP, a Request-URI without SP, and " SIP/2.0". Sets
 * what parse_status_line() or parse_request_line() would and returns true;
 * false for any other line (nothing set), which they take. The bytes of [lo, p)
 * may be read too.
 */
static inline bool start_line_usual(struct sip_msg *m, const char *p,
                                    const char *eol, const char *lo)
{
	uint64_t w;

	if (eol - p < 12)
		return false;
	memcpy(&w, p, 8);
	if (memcmp(&w, "SIP/2.0 ", 8) == 0) {
		const char *c = p + 8;
		unsigned d0 = (unsigned char)c[0] - (unsigned)'0';
		unsigned d1 = (unsigned char)c[1] - (unsigned)'0';
		unsigned d2 = (unsigned char)c[2] - (unsigned)'0';
		unsigned status = d0 * 100 + d1 * 10 + d2;
		if (d0 > 9 || d1 > 9 || d2 > 9 || c[3] != ' ' || status < 100 ||
		    status > 699)
			return false;
		m->version = slice_make(p, 7);
		m->status = status;
		m->reason = slice_make(c + 4, (size_t)(eol - c - 4));
		m->is_request = false;
		return true;
	}
#ifdef __SSE2__
	if (eol - p < 16)
		return false;
	unsigned sp = sip_eq16(p, ' ');
	const char *sp1 = p + __builtin_ctz(sp | 0x10000), *vs = eol - 8;
	enum sip_method id;
	/* a known method is a token */
	if (sp == 0 ||
	    (id = sip_method_lookup_inline(slice_make(p, (size_t)(sp1 - p)))) ==
	            SIP_METHOD_OTHER ||
	    vs <= sp1 + 1)
		return false;
	memcpy(&w, vs, 8);
	if (memcmp(&w, " SIP/2.0", 8) != 0 ||
	    sip_find_sp(sp1 + 1, vs, lo) != vs)
		return false;
	m->method = slice_make(p, (size_t)(sp1 - p));
	m->method_id = id;
	m->is_request = true;
	m->ruri = slice_make(sp1 + 1, (size_t)(vs - sp1 - 1));
	m->version = slice_make(vs + 1, 7);
	return true;
#else
	(void)lo;
	return false;
#endif
}

/* Status-Line = SIP-Version SP Status-Code SP Reason-Phrase (§25.1); a
 * missing SP before an empty phrase is tolerated. */
static int parse_status_line(struct sip_msg *m, struct slice line)
{
	const char *p = line.p, *end = line.p + line.len;
	const char *sp = memchr(p, ' ', line.len);

	if (sp == NULL)
		return bad(m, "malformed status line");
	m->version = slice_make(p, (size_t)(sp - p));
	if (!version_syntax_ok(m->version))
		return bad(m, "malformed status line: bad SIP version");
	p = sp + 1;
	if (end - p < 3 || !sip_is((unsigned char)p[0], SIP_CC_DIGIT) ||
	    !sip_is((unsigned char)p[1], SIP_CC_DIGIT) ||
	    !sip_is((unsigned char)p[2], SIP_CC_DIGIT) ||
	    (end - p > 3 && p[3] != ' '))
		return bad(m, "malformed status line: bad status code");
	m->status = (unsigned)((p[0] - '0') * 100 + (p[1] - '0') * 10 +
	                       (p[2] - '0'));
	if (m->status < 100 || m->status > 699)
		return bad(m, "malformed status line: bad status code");
	m->reason = end - p > 4 ? slice_make(p + 4, (size_t)(end - p - 4))
	                        : slice_make(end, 0);
	m->is_request = false;
	return 0;
}

/* The value of a header: LWS-trimmed, from s (its first byte after the
 * colon that is not SP or HT) to the end of its last (folded) line. It
 * may also start on a continuation line. */
static inline struct slice trim_value(const char *s, const char *value_end)
{
	while (s < value_end && sip_is((unsigned char)*s, SIP_CC_WS))
		s++;
	while (value_end > s && sip_is((unsigned char)value_end[-1], SIP_CC_WS))
		value_end--;
	return slice_make(s, (size_t)(value_end - s));
}

/* Content-Length = 1*DIGIT; it delimits the body (RFC 3261 §20.14). */
static void note_content_length(struct sip_msg *m, const struct sip_hdr *h)
{
	uint32_t v;

	if (!sip_u32_short(&v, h->value) &&
	    slice_to_u32(&v, h->value, UINT32_MAX) != 0) {
		m->body_error = "bad Content-Length";
		return;
	}
	m->has_content_length = true;
	m->content_length = v;
}

/*
 * The first valid Content-Length delimits the body; an invalid one before
 * it, or a missing empty line after the headers, is a body_error. Of the
 * two, the one found last while reading the message is reported: the
 * missing empty line unless the last header is a bad Content-Length.
 */
static void note_body_defects(struct sip_msg *m, bool no_empty_line)
{
	static const char no_empty_line_error[] =
	        "no empty line after the headers";

	unsigned i = m->first[SIP_HDR_CONTENT_LENGTH];

	for (const struct sip_hdr *h = i ? &m->hdrs[i - 1] : NULL;
	     h != NULL && !m->has_content_length; h = sip_msg_hdr_next(m, h)) {
		if (no_empty_line && h == &m->hdrs[m->nhdrs - 1]) {
			m->body_error = no_empty_line_error;
			no_empty_line = false;
		}
		note_content_length(m, h);
	}
	if (no_empty_line)
		m->body_error = no_empty_line_error;
}

/*
 * A header line whose name is not a token followed by a colon: the reason
 * says which (the first byte, or what follows the name).
 */
static int bad_name(struct sip_msg *m, const char *p, const char *eol)
{
	if (sip_skip_token(p, eol) == p)
		return bad(m, "malformed header name");
	return bad(m, "header line without colon");
}

/* The end of a name followed by SP or HT before its colon at ne. */
static const char *trim_name(const char *p, const char *ne)
{
	while (ne > p && (ne[-1] == ' ' || ne[-1] == '\t'))
		ne--;
	return ne;
}

/*
 * Id of the name [p, ne). A known name matched is a token by construction:
 * only the other names need their bytes checked.
 */
static enum sip_hdr_id name_lookup(const char *p, const char *ne,
                                   const char *end)
{
	/* the lookup reads up to 8 bytes of any shorter name */
	if (end - p >= 8)
		return sip_hdr_lookup_padded(p, (size_t)(ne - p));
	return sip_hdr_lookup(slice_make(p, (size_t)(ne - p)));
}

/* Header h: name [p, ne) of id, value [v, ve), line [p, lf]. The chains
 * of headers by id are made once all are indexed (chain_headers()). */
static inline void add_header(struct sip_hdr *h, const char *buf, const char *p,
                              const char *ne, enum sip_hdr_id id, const char *v,
                              const char *ve, const char *lf)
{
	h->name = slice_make(p, (size_t)(ne - p));
	h->value = slice_make(v, (size_t)(ve - v));
	h->off = (uint32_t)(p - buf);
	h->len = (uint32_t)(lf + 1 - p);
	h->id = (uint16_t)id;
}

/*
 * m->first and the next of each header, walking the index backwards: the
 * header seen last of each id so far is the next of the one before it.
 * Headers of no known id are chained in first[0] too, then unchained, so
 * that their next is 0: they are few, and the walk is shorter without a
 * test of the id.
 */
static void chain_headers(struct sip_msg *m, unsigned n)
{
	uint16_t *first = m->first; /* all 0 */
	struct sip_hdr *h = m->hdrs + n;

	for (uint16_t i = (uint16_t)n; i > 0; i--) {
		h--;
		h->next = first[h->id];
		first[h->id] = i;
	}
	for (unsigned i = first[SIP_HDR_OTHER]; i != 0;) {
		h = &m->hdrs[i - 1];
		i = h->next;
		h->next = 0;
	}
	first[SIP_HDR_OTHER] = 0;
}

/*
 * Any line [p, lf] of the header block, the general case of
 * index_headers(), with *n lines indexed so far (at most max): 0 once
 * indexed, ENOENT for the empty line that ends the block, an error
 * otherwise.
 */
static int index_line(struct sip_msg *m, unsigned *n, unsigned max,
                      const char *p, const char *lf, const char *end)
{
	const char *eol = strip_cr(p, lf);

	if (sip_is((unsigned char)*p, SIP_CC_WS)) {
		if (eol == p)
			return ENOENT;
		/* Folded continuation of the previous header (RFC 3261
		 * §7.3.1). A CR or LF here is a bad name. */
		if (*p == ' ' || *p == '\t') {
			if (*n == 0)
				return bad(m, "continuation before any header");
			struct sip_hdr *h = &m->hdrs[*n - 1];
			h->len = (uint32_t)(lf + 1 - m->buf) - h->off;
			h->value = trim_value(h->value.p, eol);
			return 0;
		}
	}
	if (*n >= max) {
		m->error = "too many headers";
		return E2BIG;
	}

	/* field-name HCOLON: token *(SP / HTAB) ":" (§7.3.1) */
	const char *colon = find_colon(p, lf, end), *ne = colon;
	if (ne != NULL && (ne[-1] == ' ' || ne[-1] == '\t'))
		ne = trim_name(p, ne);
	enum sip_hdr_id id =
	        ne != NULL && ne > p ? name_lookup(p, ne, end) : SIP_HDR_OTHER;
	if (id == SIP_HDR_OTHER &&
	    (ne == NULL || ne == p || sip_skip_token(p, ne) != ne))
		return bad_name(m, p, eol);
	struct slice v = trim_value(colon + 1, eol);
	add_header(&m->hdrs[(*n)++], m->buf, p, ne, id, v.p, v.p + v.len, lf);
	return 0;
}

/*
 * A line [p, lf] "name: value" or "name:value" ending in CRLF, with a
 * name made of token bytes right before its colon and a value with no
 * LWS around it: indexed into *h as index_line() would, and true. False
 * for any other line, left to index_line(). The bytes up to end may be
 * read.
 */
static inline bool line_usual(struct sip_hdr *h, const char *buf, const char *p,
                              const char *lf, const char *end)
{
	const char *ne = sip_skip_token_hi(p, lf, end), *v = ne + 1;

	/* *lf is no ':', nor a byte > SP */
	if (ne == p || *ne != ':' || lf[-1] != '\r' ||
	    (unsigned char)lf[-2] <= ' ')
		return false;
	v += *v == ' ';
	if ((unsigned char)*v <= ' ')
		return false;
	add_header(h, buf, p, ne, name_lookup(p, ne, end), v, lf - 1, lf);
	return true;
}

/*
 * Indexes the header lines from *pp, the line after the start line, to
 * the empty line that ends them; *pp is then the start of the body, or
 * NULL when the message ends without that empty line.
 *
 * Most lines are "Name: value" with a known name of up to 15 bytes and
 * one SP after the colon: the loop takes them after looking at a few bytes
 * of each (16 at the start for the colon and the name, the two after the
 * colon, the last two). Other lines "name: value" or "name:value" go to
 * line_usual(), any other line to index_line().
 */
__attribute__((noinline)) static int index_headers(struct sip_msg *m,
                                                   struct lf_iter *lfs,
                                                   const char **pp,
                                                   unsigned max_hdrs)
{
	const char *end = lfs->end, *base = lfs->base, *p = *pp;
	const char *buf = m->buf;
	uint64_t bits = lfs->bits; /* the '\n's of [base, base + 64) left */
	struct sip_hdr *h = m->hdrs, *hmax = m->hdrs + max_hdrs;
	/* Below hlim, a line of the window can take the fast path without
	 * more checks: none overruns the message with the 19 bytes at its
	 * start (p + 18 may be the second byte after a colon taken at
	 * p + 16, where none was found), and the index has room. Near the
	 * end of the message, hlim is the start of the index and each line
	 * is checked. */
	struct sip_hdr *hlim = end - base > 64 + 18 ? hmax : m->hdrs;
	/* the last window (0 for none) that leaves the 19 bytes: one
	 * compare a window */
	uintptr_t far = end - buf > 64 + 18 ? (uintptr_t)(end - (64 + 19)) : 0;
	unsigned n;
	int err;

	for (;;) {
		while (bits == 0) {
			base += 64;
			if ((uintptr_t)base <= far) {
				bits = lf_bits64(base);
			} else {
				if (base >= end)
					goto no_lf;
				bits = lf_bits(base, buf, end);
				hlim = m->hdrs;
			}
		}
		const char *lf = base + (unsigned)__builtin_ctzll(bits);
		bits &= bits - 1;
#ifdef __SSE2__
		if (__builtin_expect(h < hlim, 1) ||
		    (end - p > 18 && h < hmax)) {
			__m128i v16 = _mm_loadu_si128(
			        (const __m128i *)(const void *)p);
			unsigned c = (unsigned)_mm_movemask_epi8(
			        _mm_cmpeq_epi8(v16, _mm_set1_epi8(':')));
			size_t len = (unsigned)__builtin_ctz(c | 0x10000);
			const char *v = p + len + 1;
			enum sip_hdr_id id;
			/*
			 * The name is a known one only if [p, colon) matches
			 * it exactly: no LWS around it, and not a folded
			 * line (which starts with SP or HT), nor the empty
			 * line, nor a line without a colon before its LF
			 * (the LF would be in the name). The value has no
			 * LWS around it: a SP then a byte above SP after
			 * the colon, CRLF after a byte above SP at the end.
			 */
			bool usual = lf[-1] == '\r' &&
			             (unsigned char)lf[-2] > ' ' && *v == ' ' &&
			             (unsigned char)*++v > ' ';
			if (__builtin_expect(usual, 1)) {
				const struct sip_hdr_key16 *k =
				        &sip_hdr_keys16[sip_hdr_hash16(p, len)];
				/* a key matched is of a known name */
				if (__builtin_expect(
				            sip_hdr_key16_match(k, v16), 1))
					id = (enum sip_hdr_id)k->id;
				else if (sip_hdr_probe16 == 0 ||
				         (id = sip_hdr_lookup16_probe(p, len,
				                                      v16)) ==
				                 SIP_HDR_OTHER)
					goto other;
				add_header(h++, buf, p, p + len, id, v, lf - 1,
				           lf);
				p = lf + 1;
				continue;
			}
		other:
			if (lf - p > 2 && line_usual(h, buf, p, lf, end)) {
				h++;
				p = lf + 1;
				continue;
			}
		}
#endif
		if (lf - p == 1 && *p == '\r') {
			/* the empty line (index_line() knows the others) */
			n = (unsigned)(h - m->hdrs);
			m->hdrs_end = (uint32_t)(p - buf);
			*pp = lf + 1;
			err = ENOENT;
			break;
		}
		n = (unsigned)(h - m->hdrs);
		err = index_line(m, &n, max_hdrs, p, lf, end);
		h = m->hdrs + n;
		if (err == ENOENT) {
			m->hdrs_end = (uint32_t)(p - buf);
			*pp = lf + 1;
			break;
		}
		if (err)
			break;
		p = lf + 1;
	}
	m->nhdrs = (uint16_t)n;
	chain_headers(m, n);
	return err == ENOENT ? 0 : err;

no_lf:
	n = (unsigned)(h - m->hdrs);
	m->nhdrs = (uint16_t)n;
	chain_headers(m, n);
	if (p < end)
		return bad(m, "unterminated header line");
	if (n == 0)
		return bad(m, "no headers");
	/* Tolerated so that a 400 can be sent; see note_body_defects(). */
	m->hdrs_end = (uint32_t)(end - buf);
	*pp = NULL;
	return 0;
}

int sip_msg_parse(struct sip_msg *m, const char *buf, size_t len,
                  const struct sip_limits *lim)
{
	const char *end = buf + len, *p, *lf;
	unsigned max_hdrs = lim->max_headers < SIP_HDRS_CAP ? lim->max_headers
	                                                    : SIP_HDRS_CAP;
	int err;

	m->buf = buf;
	m->len = len;
	m->nhdrs = 0;
	m->decoded = 0;
	m->failed = 0;
	m->error = NULL;
	m->line_error = NULL;
	m->body_error = NULL;
	m->has_content_length = false;
	m->content_length = 0;
	m->method = m->ruri = m->reason = m->version = SLICE_NULL;
	m->method_id = SIP_METHOD_OTHER;
	m->status = 0;
	m->max_vias = (uint16_t)(lim->max_vias < UINT16_MAX ? lim->max_vias
	                                                    : UINT16_MAX);
	memset(m->first, 0, sizeof(m->first));

	if (len > lim->max_msg_size) {
		m->error = "message too large";
		return EMSGSIZE;
	}
	/* Leading CRLFs before a message are ignored (RFC 3261 §7.5). */
	p = buf;
	while (p < end && (unsigned char)*p <= '\r' &&
	       (*p == '\r' || *p == '\n'))
		p++;
	struct lf_iter lfs;
	lf = NULL;
	if (p < end) {
		lf_iter_init(&lfs, p, buf, end);
		lf = lf_next(&lfs);
	}
	if (lf == NULL)
		return bad(m, "no start line");
	m->start_line = slice_make(p, (size_t)(strip_cr(p, lf) - p));
	if (start_line_usual(m, p, p + m->start_line.len, buf))
		err = 0;
	else if (m->start_line.len >= 4 && sip_eq_nocase(p, "SIP/", 4))
		err = parse_status_line(m, m->start_line);
	else
		err = parse_request_line(m, m->start_line);
	if (err)
		return err;
	/* A response carries the Vias of its request, and the request had
	 * the Via of the proxy that sent it on top of those it accepted: a
	 * reply to a request of ours that the next hop found one Via too
	 * long must still get back (a request looping through us ends with
	 * that hop's 400, not a 408 at every hop). */
	if (!m->is_request && m->max_vias < UINT16_MAX)
		m->max_vias++;

	p = lf + 1;
	err = index_headers(m, &lfs, &p, max_hdrs);
	if (err)
		return err;
	note_body_defects(m, p == NULL);
	if (p == NULL)
		p = end;

	size_t avail = (size_t)(end - p);
	if (m->has_content_length && m->content_length > avail) {
		m->body_error = "Content-Length larger than the message";
		m->has_content_length = false;
	}
	if (m->has_content_length) {
		/* Octets after the body are not part of this message
		 * (RFC 4475 §3.1.1.8). */
		m->body = slice_make(p, m->content_length);
		m->len = (size_t)(p - buf) + m->content_length;
	} else {
		m->body = slice_make(p, avail);
	}
	return 0;
}

/* s moved from src's buffer to buf (NULL stays NULL). */
static struct slice rebase(struct slice s, const char *src, const char *buf)
{
	return s.p ? slice_make(buf + (s.p - src), s.len) : s;
}

/*
 * Where the slices of each decoded struct that sip_msg_copy() carries
 * are. A slice added to one of these structs must be added here (the
 * unit test test_copy_is_a_parse_of_the_copy finds one that is not: it
 * points into the source's buffer).
 */
#define AT(type, member) (uint16_t) offsetof(type, member)
static const uint16_t via_slices[] = {AT(struct sip_via, raw),
                                      AT(struct sip_via, proto_name),
                                      AT(struct sip_via, proto_version),
                                      AT(struct sip_via, transport),
                                      AT(struct sip_via, host),
                                      AT(struct sip_via, params),
                                      AT(struct sip_via, branch),
                                      AT(struct sip_via, received),
                                      AT(struct sip_via, rport),
                                      AT(struct sip_via, maddr),
                                      AT(struct sip_via, ttl)};
static const uint16_t addr_slices[] = {
        AT(struct sip_addr, raw), AT(struct sip_addr, display),
        AT(struct sip_addr, uri), AT(struct sip_addr, params),
        AT(struct sip_addr, tag), AT(struct sip_addr, expires),
        AT(struct sip_addr, q)};
static const uint16_t uri_slices[] = {
        AT(struct sip_uri, scheme_name), AT(struct sip_uri, user),
        AT(struct sip_uri, password),    AT(struct sip_uri, host),
        AT(struct sip_uri, params),      AT(struct sip_uri, headers),
        AT(struct sip_uri, transport),   AT(struct sip_uri, maddr),
        AT(struct sip_uri, user_param),  AT(struct sip_uri, method),
        AT(struct sip_uri, ttl)};
static const uint16_t cseq_slices[] = {AT(struct sip_cseq, method)};
static const uint16_t slice_itself[] = {0};
#undef AT

/* One decoded struct of src, its slices moved, if it was decoded. Inline,
 * so that each copy is of a constant size and each loop unrolled. */
#define CARRY(dst, src, member, bit, slices)                                   \
	carry(dst, src, &(dst)->member, &(src)->member, sizeof((src)->member), \
	      bit, slices, sizeof(slices) / sizeof(slices[0]))

__attribute__((always_inline)) static inline void
carry(struct sip_msg *dst, const struct sip_msg *src, void *to,
      const void *from, size_t size, uint32_t bit, const uint16_t *slices,
      size_t nslices)
{
	if (!(src->decoded & bit))
		return;
	memcpy(to, from, size);
	for (size_t i = 0; i < nslices; i++) {
		struct slice *s =
		        (struct slice *)(void *)((char *)to + slices[i]);
		*s = rebase(*s, src->buf, dst->buf);
	}
	dst->decoded |= bit;
}

void sip_msg_copy(struct sip_msg *dst, const struct sip_msg *src,
                  const char *buf)
{
	const char *from = src->buf;

	memcpy(dst, src, offsetof(struct sip_msg, decoded));
	dst->buf = buf;
	dst->start_line = rebase(src->start_line, from, buf);
	dst->method = rebase(src->method, from, buf);
	dst->ruri = rebase(src->ruri, from, buf);
	dst->reason = rebase(src->reason, from, buf);
	dst->version = rebase(src->version, from, buf);
	dst->body = rebase(src->body, from, buf);
	/* What the holder of a copy (a transaction) reads again, and src
	 * has decoded, is not decoded again: the top Via (the transaction's
	 * key, where replies go), From and To (tags, the dialog's
	 * direction), Call-ID, CSeq and the Request-URI (where a branch
	 * goes). The rest is decoded on first use, as a failure is (for its
	 * reason). */
	dst->decoded = 0;
	dst->failed = 0;
	dst->error = NULL;
	CARRY(dst, src, top_via, SIP_DEC_VIA, via_slices);
	CARRY(dst, src, from, SIP_DEC_FROM, addr_slices);
	CARRY(dst, src, to, SIP_DEC_TO, addr_slices);
	CARRY(dst, src, call_id, SIP_DEC_CALL_ID, slice_itself);
	CARRY(dst, src, cseq, SIP_DEC_CSEQ, cseq_slices);
	CARRY(dst, src, request_uri, SIP_DEC_RURI, uri_slices);
	for (unsigned i = 0; i < src->nhdrs; i++) {
		struct sip_hdr *h = &dst->hdrs[i];
		*h = src->hdrs[i];
		h->name = rebase(h->name, from, buf);
		h->value = rebase(h->value, from, buf);
	}
}

/* ------------------------------------------------------ header index */

const struct sip_hdr *sip_msg_hdr_at(const struct sip_msg *m, unsigned i)
{
	return i < m->nhdrs ? &m->hdrs[i] : NULL;
}

const struct sip_hdr *sip_msg_hdr(const struct sip_msg *m, enum sip_hdr_id id)
{
	if (id <= SIP_HDR_OTHER || id >= SIP_HDR__COUNT || !m->first[id])
		return NULL;
	return &m->hdrs[m->first[id] - 1];
}

const struct sip_hdr *sip_msg_hdr_next(const struct sip_msg *m,
                                       const struct sip_hdr *h)
{
	return h->next ? &m->hdrs[h->next - 1] : NULL;
}

const struct sip_hdr *sip_msg_hdr_by_name(const struct sip_msg *m,
                                          struct slice name)
{
	enum sip_hdr_id id = sip_hdr_lookup(name);

	if (id != SIP_HDR_OTHER)
		return sip_msg_hdr(m, id);
	for (unsigned i = 0; i < m->nhdrs; i++) {
		if (m->hdrs[i].id == SIP_HDR_OTHER &&
		    slice_eq_nocase(m->hdrs[i].name, name))
			return &m->hdrs[i];
	}
	return NULL;
}

unsigned sip_msg_hdr_count(const struct sip_msg *m, enum sip_hdr_id id)
{
	unsigned n = 0;

	for (const struct sip_hdr *h = sip_msg_hdr(m, id); h;
	     h = sip_msg_hdr_next(m, h))
		n++;
	return n;
}

/* ------------------------------------------------------ cached decoders */

/*
 * Each decoder runs once: later calls return the cached outcome. Absence
 * is not cached (it is one array load to find out again); a malformed
 * header is, with its reason in m->error.
 */
enum { DECODE = -1 };

static int cached(const struct sip_msg *m, uint32_t bit)
{
	if (m->decoded & bit)
		return 0;
	return (m->failed & bit) ? EBADMSG : DECODE;
}

static int remember(struct sip_msg *m, uint32_t bit, int err, const char *why)
{
	if (err == 0) {
		m->decoded |= bit;
	} else if (err == EBADMSG) {
		m->failed |= bit;
		m->error = why;
	}
	return err;
}

/* Single-valued headers (From, To, Call-ID, CSeq ...) are decoded from
 * their first line; sip_msg_check() rejects duplicates. */
__attribute__((always_inline)) static inline int decode_single(
        struct sip_msg *m, enum sip_hdr_id id, uint32_t bit,
        int (*decode)(struct sip_msg *m, struct slice value, const char **why))
{
	const struct sip_hdr *h;
	const char *why = NULL;
	int err = cached(m, bit);

	if (err != DECODE)
		return err;
	h = sip_msg_hdr(m, id);
	if (h == NULL)
		return ENOENT;
	err = decode(m, h->value, &why);
	return remember(m, bit, err, why);
}

/*
 * True when the decoder of a single-valued header has its value: decoded
 * before, or now by usual(), which takes the usual values (it is inlined:
 * no call, so the accessors need not save registers). False otherwise,
 * for the accessor to call decode_single() with the general decoder,
 * which finds absence, a failure remembered, or the reason of a new one.
 */
__attribute__((always_inline)) static inline bool
decoded_fast(struct sip_msg *m, enum sip_hdr_id id, uint32_t bit,
             bool (*usual)(struct sip_msg *m, struct slice value))
{
	unsigned i = m->first[id];

	if (m->decoded & bit)
		return true;
	if ((m->failed & bit) || i == 0 || !usual(m, m->hdrs[i - 1].value))
		return false;
	m->decoded |= bit;
	return true;
}

/* The usual Call-ID: letters, digits, '-' and '.', with an '@' inside or
 * none: true, and into m->call_id. False for any other value. */
static inline bool call_id_usual(struct sip_msg *m, struct slice v)
{
#ifdef __SSE2__
	const char *end = v.p + v.len, *p;

	/* see sip_scan16() for the bytes read */
	if (v.len > 0 && end - m->buf >= 16) {
		p = sip_scan16(v.p, end, sip_not_adn16);
		if (p < end - 1 && *p == '@' && p > v.p)
			p = sip_scan16(p + 1, end, sip_not_adn16);
		if (p == end) {
			m->call_id = v;
			return true;
		}
	}
#else
	(void)m;
	(void)v;
#endif
	return false;
}

/* Call-ID = word ["@" word] (RFC 3261 §25.1): no LWS inside. */
static int decode_call_id(struct sip_msg *m, struct slice v, const char **why)
{
	const char *end = v.p + v.len, *hi = m->buf + m->len, *p;

	/* runs of letters, digits, '-' and '.' 16 bytes at a time */
	p = sip_skip_cls(sip_skip_adn(v.p, end, hi), end, SIP_CC_WORD);
	if (p < end && *p == '@')
		p = sip_skip_cls(sip_skip_adn(p + 1, end, hi), end,
		                 SIP_CC_WORD);
	if (v.len == 0 || p != end || v.p[0] == '@' || end[-1] == '@') {
		*why = "malformed Call-ID header";
		return EBADMSG;
	}
	m->call_id = v;
	return 0;
}

static bool cseq_usual(struct sip_msg *m, struct slice v)
{
	return sip_cseq_usual(&m->cseq, v);
}

static int decode_cseq(struct sip_msg *m, struct slice v, const char **why)
{
	return sip_cseq_parse(&m->cseq, v, why);
}

static int decode_rack(struct sip_msg *m, struct slice v, const char **why)
{
	return sip_rack_parse(&m->rack, v, why);
}

/* 255 is the largest sensible hop count (RFC 4475 §3.1.2.4). */
static bool max_forwards_usual(struct sip_msg *m, struct slice v)
{
	uint32_t n;

	if (!sip_u32_short(&n, v) || n > 255)
		return false;
	m->max_forwards = n;
	return true;
}

static int decode_max_forwards(struct sip_msg *m, struct slice v,
                               const char **why)
{
	*why = "bad Max-Forwards header";
	return slice_to_u32(&m->max_forwards, v, 255) ? EBADMSG : 0;
}

static int decode_expires(struct sip_msg *m, struct slice v, const char **why)
{
	*why = "bad Expires header";
	return slice_to_u32(&m->expires, v, UINT32_MAX) ? EBADMSG : 0;
}

/* response-num is 1 to 2^31 - 1 (RFC 3262 §7.1). */
static int decode_rseq(struct sip_msg *m, struct slice v, const char **why)
{
	*why = "bad RSeq header";
	return slice_to_u32(&m->rseq, v, INT32_MAX) || m->rseq == 0 ? EBADMSG
	                                                            : 0;
}

/* sip_msg_top_via(), sip_msg_from() and sip_msg_to() are in hdr.c,
 * beside their fast paths. */

/* The general halves of the three accessors below, apart so that their
 * usual path is a leaf. */
__attribute__((noinline)) static int call_id_slow(struct slice *out,
                                                  struct sip_msg *m)
{
	int err = decode_single(m, SIP_HDR_CALL_ID, SIP_DEC_CALL_ID,
	                        decode_call_id);

	if (err == 0)
		*out = m->call_id;
	return err;
}

__attribute__((noinline)) static int cseq_slow(const struct sip_cseq **out,
                                               struct sip_msg *m)
{
	int err = decode_single(m, SIP_HDR_CSEQ, SIP_DEC_CSEQ, decode_cseq);

	if (err == 0)
		*out = &m->cseq;
	return err;
}

__attribute__((noinline)) static int max_forwards_slow(uint32_t *out,
                                                       struct sip_msg *m)
{
	int err = decode_single(m, SIP_HDR_MAX_FORWARDS, SIP_DEC_MAXFWD,
	                        decode_max_forwards);

	if (err == 0)
		*out = m->max_forwards;
	return err;
}

/* Read for every message (the shard of a call). */
int sip_msg_call_id(struct slice *out, struct sip_msg *m)
{
	if (!decoded_fast(m, SIP_HDR_CALL_ID, SIP_DEC_CALL_ID, call_id_usual))
		return call_id_slow(out, m);
	*out = m->call_id;
	return 0;
}

int sip_msg_cseq(const struct sip_cseq **out, struct sip_msg *m)
{
	if (!decoded_fast(m, SIP_HDR_CSEQ, SIP_DEC_CSEQ, cseq_usual))
		return cseq_slow(out, m);
	*out = &m->cseq;
	return 0;
}

int sip_msg_max_forwards(uint32_t *out, struct sip_msg *m)
{
	if (!decoded_fast(m, SIP_HDR_MAX_FORWARDS, SIP_DEC_MAXFWD,
	                  max_forwards_usual))
		return max_forwards_slow(out, m);
	*out = m->max_forwards;
	return 0;
}

int sip_msg_expires(uint32_t *out, struct sip_msg *m)
{
	int err = decode_single(m, SIP_HDR_EXPIRES, SIP_DEC_EXPIRES,
	                        decode_expires);

	if (err == 0)
		*out = m->expires;
	return err;
}

int sip_msg_rseq(uint32_t *out, struct sip_msg *m)
{
	int err = decode_single(m, SIP_HDR_RSEQ, SIP_DEC_RSEQ, decode_rseq);

	if (err == 0)
		*out = m->rseq;
	return err;
}

int sip_msg_rack(const struct sip_rack **out, struct sip_msg *m)
{
	int err = decode_single(m, SIP_HDR_RACK, SIP_DEC_RACK, decode_rack);

	if (err == 0)
		*out = &m->rack;
	return err;
}

/*
 * Decodes the elements it has left through decode(), which stores element
 * n, counting from n. Fails with E2BIG past max elements, EBADMSG (with
 * the reason in m->error) on the first malformed one.
 */
typedef int(elem_decode_fn)(void *arr, unsigned n, struct slice elem,
                            const char **why);

static int decode_rest(unsigned *count, struct sip_msg *m,
                       struct sip_elem_iter *it, unsigned n,
                       elem_decode_fn *decode, void *arr, unsigned max,
                       const char *too_many, const char *malformed)
{
	struct slice elem;
	int err;

	while ((err = sip_elem_next(&elem, it)) == 0) {
		const char *why;
		if (n == max) {
			m->error = too_many;
			return E2BIG;
		}
		if (decode(arr, n, elem, &why))
			return bad(m, why);
		n++;
	}
	if (err != ENOENT)
		return bad(m, malformed);
	*count = n;
	return 0;
}

/* decode_rest() of every element of every header with this id. */
static int decode_elems(unsigned *count, struct sip_msg *m, enum sip_hdr_id id,
                        elem_decode_fn *decode, void *arr, unsigned max,
                        const char *too_many, const char *malformed)
{
	struct sip_elem_iter it;

	sip_elem_iter_init(&it, m, id);
	return decode_rest(count, m, &it, 0, decode, arr, max, too_many,
	                   malformed);
}

static int via_decode(void *arr, unsigned n, struct slice elem,
                      const char **why)
{
	return sip_via_parse((struct sip_via *)arr + n, elem, why);
}

/* Each Via is decoded into the same slot: only validity matters. */
static int via_check_over(void *arr, unsigned n, struct slice elem,
                          const char **why)
{
	(void)n;
	return sip_via_parse(arr, elem, why);
}

static const char contact_malformed[] = "malformed Contact header";

static int contact_decode(void *arr, unsigned n, struct slice elem,
                          const char **why)
{
	return sip_addr_parse((struct sip_addr *)arr + n, elem,
	                      SIP_ADDR_ALLOW_STAR, why);
}

int sip_msg_vias(struct sip_via *vias, unsigned max, unsigned *count,
                 struct sip_msg *m)
{
	return decode_elems(count, m, SIP_HDR_VIA, via_decode, vias, max,
	                    "too many Via headers", "malformed Via header");
}

/* "*" stands alone (RFC 3261 §10.2.2). */
static int contacts_star_alone(struct sip_msg *m, const struct sip_addr *a,
                               unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		if (a[i].star && n > 1)
			return bad(m, "Contact * mixed with other values");
	return 0;
}

int sip_msg_contacts(struct sip_addr *addrs, unsigned max, unsigned *count,
                     struct sip_msg *m)
{
	unsigned n;
	int err =
	        decode_elems(&n, m, SIP_HDR_CONTACT, contact_decode, addrs, max,
	                     "too many Contact values", contact_malformed);

	if (err == 0 && (err = contacts_star_alone(m, addrs, n)) == 0) {
		*count = n;
		if (n > 0) {
			m->contact = addrs[0];
			m->decoded |= SIP_DEC_CONTACT;
		}
	}
	return err;
}

int sip_msg_contact(const struct sip_addr **out, struct sip_msg *m)
{
	struct sip_elem_iter it;
	struct slice elem;
	const char *why = NULL;
	int err = cached(m, SIP_DEC_CONTACT);

	if (err == DECODE) {
		sip_elem_iter_init(&it, m, SIP_HDR_CONTACT);
		err = sip_elem_next(&elem, &it);
		if (err == EBADMSG)
			why = contact_malformed;
		else if (err == 0)
			err = contact_decode(&m->contact, 0, elem, &why);
		err = remember(m, SIP_DEC_CONTACT, err, why);
	}
	if (err == 0)
		*out = &m->contact;
	return err;
}

/* ------------------------------------------------------------- checks */

static const char *missing_reason(enum sip_hdr_id id)
{
	switch (id) {
	case SIP_HDR_VIA:
		return "missing Via header";
	case SIP_HDR_FROM:
		return "missing From header";
	case SIP_HDR_TO:
		return "missing To header";
	case SIP_HDR_CALL_ID:
		return "missing Call-ID header";
	default:
		return "missing CSeq header";
	}
}

static const char *duplicate_reason(enum sip_hdr_id id)
{
	switch (id) {
	case SIP_HDR_FROM:
		return "several From headers";
	case SIP_HDR_TO:
		return "several To headers";
	case SIP_HDR_CALL_ID:
		return "several Call-ID headers";
	case SIP_HDR_CSEQ:
		return "several CSeq headers";
	case SIP_HDR_MAX_FORWARDS:
		return "several Max-Forwards headers";
	case SIP_HDR_CONTENT_LENGTH:
		return "several Content-Length headers";
	default:
		return "several Expires headers";
	}
}

static int check_addr_uri(struct sip_msg *m, const struct sip_addr *a,
                          const char *what)
{
	struct sip_uri u;
	const char *why;

	if (!a->star && sip_uri_parse(&u, a->uri, &why))
		return bad(m, what);
	return 0;
}

static int check_headers(struct sip_msg *m)
{
	static const enum sip_hdr_id mandatory[] = {SIP_HDR_VIA, SIP_HDR_FROM,
	                                            SIP_HDR_TO, SIP_HDR_CALL_ID,
	                                            SIP_HDR_CSEQ};
	static const enum sip_hdr_id single_valued[] = {
	        SIP_HDR_FROM,   SIP_HDR_TO,           SIP_HDR_CALL_ID,
	        SIP_HDR_CSEQ,   SIP_HDR_MAX_FORWARDS, SIP_HDR_CONTENT_LENGTH,
	        SIP_HDR_EXPIRES};
	const struct sip_via *via;
	const struct sip_addr *from, *to;
	const struct sip_cseq *cseq;
	struct slice cid;
	uint32_t num;
	int err;

	for (size_t i = 0; i < sizeof(mandatory) / sizeof(mandatory[0]); i++)
		if (!sip_msg_hdr(m, mandatory[i]))
			return bad(m, missing_reason(mandatory[i]));
	for (size_t i = 0; i < sizeof(single_valued) / sizeof(single_valued[0]);
	     i++) {
		/* a second one is linked from the first */
		const struct sip_hdr *h = sip_msg_hdr(m, single_valued[i]);
		if (h && h->next)
			return bad(m, duplicate_reason(single_valued[i]));
	}

	if ((err = sip_msg_top_via(&via, m)) ||
	    (err = sip_msg_from(&from, m)) || (err = sip_msg_to(&to, m)) ||
	    (err = sip_msg_call_id(&cid, m)) || (err = sip_msg_cseq(&cseq, m)))
		/* All are present: only an empty Via list can be absent. */
		return err == ENOENT ? bad(m, "empty Via header") : EBADMSG;
	err = sip_msg_max_forwards(&num, m);
	if (err == 0)
		err = sip_msg_expires(&num, m);
	if (err == 0)
		err = sip_msg_rseq(&num, m);
	if (err == 0) {
		const struct sip_rack *rack;
		err = sip_msg_rack(&rack, m);
	}
	if (err != 0 && err != ENOENT)
		return EBADMSG;
	/* A response is relayed by its Via (RFC 3261 §16.7): its From and To
	 * URIs are the request's, which were checked on the way down, and
	 * nothing here routes by them. Parsing them cost a quarter of
	 * sip_msg_check() on a call's 4 responses; the script's $fu, $tu ...
	 * still parse and report on demand. */
	const struct sip_uri *uri;
	if (m->is_request &&
	    (sip_msg_from_uri(&uri, m) || sip_msg_to_uri(&uri, m)))
		return EBADMSG;
	return 0;
}

/* Every Via and Contact element, not only the first, must be well formed:
 * a proxy forwards them and the next hop acts on them. */
#define CHECK_CONTACTS_MAX 32

/*
 * The Via elements after the top one, which check_headers() has decoded:
 * the iterator resumes after it, past the comma that ends it. Its raw
 * text is the element the list splitter gives, trimmed, and the splitter
 * has found that another element follows a comma.
 */
static void vias_after_top(struct sip_elem_iter *it, struct sip_msg *m)
{
	const char *raw_end = m->top_via.raw.p + m->top_via.raw.len, *end, *p;

	sip_elem_iter_init(it, m, SIP_HDR_VIA);
	/* The top element may be on a later Via line than the first: the
	 * decoder skips empty ones ("Via: " alone, found by the fuzzer). */
	while (it->h && (raw_end < it->h->value.p ||
	                 raw_end > it->h->value.p + it->h->value.len))
		it->h = it->h->next ? &m->hdrs[it->h->next - 1] : NULL;
	if (it->h == NULL)
		return;
	end = it->list.end = it->h->value.p + it->h->value.len;
	p = sip_skip_ws(raw_end, end);
	if (p < end && *p == ',')
		p++;
	it->list.pos = p;
}

static int check_lists(struct sip_msg *m)
{
	struct sip_addr contacts[CHECK_CONTACTS_MAX];
	struct sip_elem_iter it;
	struct sip_via via;
	unsigned n;
	int err;

	vias_after_top(&it, m);
	err = decode_rest(&n, m, &it, 1, via_check_over, &via, m->max_vias,
	                  "too many Via headers", "malformed Via header");
	if (err == E2BIG)
		return bad(m, m->error);
	if (err ||
	    (err = sip_msg_contacts(contacts, CHECK_CONTACTS_MAX, &n, m)) != 0)
		return err == E2BIG ? bad(m, m->error) : err;
	for (unsigned i = 0; i < n; i++)
		if (check_addr_uri(m, &contacts[i], "bad Contact URI"))
			return EBADMSG;
	return 0;
}

int sip_msg_check(unsigned *status, struct sip_msg *m)
{
	const struct sip_cseq *cseq;
	const struct sip_uri *ruri;

	if (m->line_error) {
		m->error = m->line_error;
		*status = 400;
		return EBADMSG;
	}
	if (!version_is_2_0(m->version)) {
		m->error = "SIP version not supported";
		*status = 505;
		return EBADMSG;
	}
	*status = 400;
	if (check_headers(m) || check_lists(m))
		return EBADMSG;
	if (m->body_error)
		return bad(m, m->body_error);
	if (!m->is_request)
		return 0;
	/* Headers are not allowed in a Request-URI (RFC 3261 §19.1.1,
	 * RFC 4475 §3.1.2.11). */
	if (sip_msg_request_uri(&ruri, m))
		return EBADMSG;
	if (ruri->headers.len > 0)
		return bad(m, "Request-URI with headers");
	if (sip_msg_cseq(&cseq, m) || !slice_eq(cseq->method, m->method))
		return bad(m, "CSeq method does not match the request method");
	return 0;
}
