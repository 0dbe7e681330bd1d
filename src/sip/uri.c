/*
 * SIP, SIPS and TEL URI parser (RFC 3261 §19.1 and §25.1, RFC 3966).
 *
 * One forward pass over the URI, driven by a 256-entry table of character
 * class bits; no allocation, nothing read outside the input. The result
 * points into the input and keeps its %HH escapes: RFC 3261 §19.1.4
 * compares URIs after unescaping, which the caller does with
 * sip_uri_unescape() only where it matters.
 */
#include <errno.h>
#include <string.h>

#include "sip/sip_int.h"

/* ------------------------------------------------- character classes */

/*
 * One bit per set of the §25.1 grammar. "escaped" (%HH) is in none of
 * them: the scanners accept a '%' only when two hex digits follow.
 */
enum {
	C_USER = 1u << 0,   /* user */
	C_PASS = 1u << 1,   /* password */
	C_PARAM = 1u << 2,  /* paramchar: pname, pvalue */
	C_HNV = 1u << 3,    /* hname, hvalue */
	C_SCHEME = 1u << 4, /* scheme after its first ALPHA */
	C_HEX = 1u << 5,    /* HEXDIG */
	C_TELV = 1u << 6,   /* RFC 3966 parameter values, see below */
};

/*
 * The sets, written as in the grammar and evaluated by the compiler into
 * the table below; c is an int in 0..255.
 */
#define CH_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))
#define CH_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define CH_ALNUM(c) (CH_ALPHA(c) || CH_DIGIT(c))
#define CH_HEX(c)                                                              \
	(CH_DIGIT(c) || ((c) >= 'a' && (c) <= 'f') ||                          \
	 ((c) >= 'A' && (c) <= 'F'))
/* mark = "-" / "_" / "." / "!" / "~" / "*" / "'" / "(" / ")" */
#define CH_MARK(c)                                                             \
	((c) == '-' || (c) == '_' || (c) == '.' || (c) == '!' || (c) == '~' || \
	 (c) == '*' || (c) == '\'' || (c) == '(' || (c) == ')')
#define CH_UNRES(c) (CH_ALNUM(c) || CH_MARK(c))
/*
 * user = 1*( unreserved / escaped / user-unreserved ), user-unreserved =
 * "&" / "=" / "+" / "$" / "," / ";" / "?" / "/". '#' is added: it is a
 * dtmf-digit of telephone-subscriber (RFC 2806), the other alternative of
 * userinfo in §25.1, and gateways send it unescaped ("*31#").
 */
#define CH_USER(c)                                                             \
	(CH_UNRES(c) || (c) == '&' || (c) == '=' || (c) == '+' ||              \
	 (c) == '$' || (c) == ',' || (c) == ';' || (c) == '?' || (c) == '/' || \
	 (c) == '#')
/* password = *( unreserved / escaped / "&" / "=" / "+" / "$" / "," ) */
#define CH_PASS(c)                                                             \
	(CH_UNRES(c) || (c) == '&' || (c) == '=' || (c) == '+' ||              \
	 (c) == '$' || (c) == ',')
/* paramchar = param-unreserved / unreserved / escaped,
 * param-unreserved = "[" / "]" / "/" / ":" / "&" / "+" / "$" */
#define CH_PARAM(c)                                                            \
	(CH_UNRES(c) || (c) == '[' || (c) == ']' || (c) == '/' ||              \
	 (c) == ':' || (c) == '&' || (c) == '+' || (c) == '$')
/* hnv-unreserved = "[" / "]" / "/" / "?" / ":" / "+" / "$" */
#define CH_HNV(c)                                                              \
	(CH_UNRES(c) || (c) == '[' || (c) == ']' || (c) == '/' ||              \
	 (c) == '?' || (c) == ':' || (c) == '+' || (c) == '$')
#define CH_SCHEME(c) (CH_ALNUM(c) || (c) == '+' || (c) == '-' || (c) == '.')
/*
 * RFC 3966 §3: pvalue is paramchar, but isdn-subaddress takes 1*uric,
 * which adds "?" "@" "=" ","; ';' stays the separator.
 */
#define CH_TELV(c)                                                             \
	(CH_PARAM(c) || (c) == '?' || (c) == '@' || (c) == '=' || (c) == ',')

#define CLS(c)                                                                 \
	((CH_USER(c) ? C_USER : 0) | (CH_PASS(c) ? C_PASS : 0) |               \
	 (CH_PARAM(c) ? C_PARAM : 0) | (CH_HNV(c) ? C_HNV : 0) |               \
	 (CH_SCHEME(c) ? C_SCHEME : 0) | (CH_HEX(c) ? C_HEX : 0) |             \
	 (CH_TELV(c) ? C_TELV : 0))
#define CLS4(n)  CLS(n), CLS((n) + 1), CLS((n) + 2), CLS((n) + 3)
#define CLS16(n) CLS4(n), CLS4((n) + 4), CLS4((n) + 8), CLS4((n) + 12)
#define CLS64(n) CLS16(n), CLS16((n) + 16), CLS16((n) + 32), CLS16((n) + 48)

static const uint8_t cls[256] = {CLS64(0), CLS64(64), CLS64(128), CLS64(192)};

static inline bool is(char c, unsigned m)
{
	return (cls[(unsigned char)c] & m) != 0;
}

static inline bool is_digit(char c)
{
	return (unsigned)(c - '0') < 10;
}

static inline bool is_alpha(char c)
{
	return (unsigned)((c | 0x20) - 'a') < 26;
}

/* Value of a hex digit already known to be one: '0'-'9', 'A'-'F', 'a'-'f'. */
static inline unsigned hexval(char c)
{
	return ((unsigned)c & 0xf) + ((unsigned)c >> 6) * 9;
}

static inline int fail(const char **why, const char *reason)
{
	if (why != NULL)
		*why = reason;
	return EBADMSG;
}

/*
 * Skips bytes of class m and %HH escapes (§25.1 escaped). Returns the
 * first byte that is neither, or NULL at a '%' without two hex digits.
 */
static const char *scan(const char *p, const char *end, unsigned m)
{
	while (p < end) {
		if (is(*p, m)) {
			p++;
		} else if (*p == '%') {
			if (end - p < 3 || !is(p[1], C_HEX) || !is(p[2], C_HEX))
				return NULL;
			p += 3;
		} else {
			break;
		}
	}
	return p;
}

/* scan() past the run of letters, digits, '-' and '.' first, which every
 * class of this file holds (the bytes of [lo, p) may be read). */
static inline const char *scan_usual(const char *p, const char *end, unsigned m,
                                     const char *lo)
{
	p = sip_skip_adn_in(p, end, lo);
	if (p == end || (!is(*p, m) && *p != '%'))
		return p;
	return scan(p, end, m);
}

/* fail() for the scanners that return a position. */
static const char *failp(const char **why, const char *reason)
{
	fail(why, reason);
	return NULL;
}

static inline struct slice span(const char *p, const char *end)
{
	return slice_make(p, (size_t)(end - p));
}

/* ASCII case-insensitive equality with a lower-case literal of n bytes. */
static bool eq_lower(const char *p, const char *lit, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		char c = p[i];
		if (c >= 'A' && c <= 'Z')
			c = (char)(c | 0x20);
		if (c != lit[i])
			return false;
	}
	return true;
}

/* The 4 bytes at p are "sip:", the letters in any case. */
static inline bool scheme_is_sip(const char *p)
{
	uint32_t w, sip, fold;

	memcpy(&w, p, 4);
	memcpy(&sip, "sip:", 4);
	memcpy(&fold, "\x20\x20\x20\0", 4);
	return (w | fold) == sip;
}

/* -------------------------------------------------------- parameters */

/*
 * Records the well-known uri-parameters (§19.1.1). Names compare without
 * regard to case (§19.1.4) but raw: an escaped name such as "%6C%72" is a
 * valid other-param and not "lr". As with sip_param_find(), the first
 * occurrence of a name wins and a name without a value ("transport")
 * gives an empty slice pointing just after the name.
 */
static void known_param(struct sip_uri *u, struct slice name,
                        struct slice value)
{
	struct slice *dst = NULL;

	switch (name.len) {
	case 2:
		/* lr-param = "lr", but "lr=on" is common: any value */
		if (eq_lower(name.p, "lr", 2))
			u->lr = true;
		return;
	case 3:
		if (eq_lower(name.p, "ttl", 3))
			dst = &u->ttl;
		break;
	case 4:
		if (eq_lower(name.p, "user", 4))
			dst = &u->user_param;
		break;
	case 5:
		if (eq_lower(name.p, "maddr", 5))
			dst = &u->maddr;
		break;
	case 6:
		if (eq_lower(name.p, "method", 6))
			dst = &u->method;
		break;
	case 9:
		if (eq_lower(name.p, "transport", 9))
			dst = &u->transport;
		break;
	default:
		return;
	}
	if (dst != NULL && dst->p == NULL)
		*dst = value.p != NULL ? value
		                       : slice_make(name.p + name.len, 0);
}

/*
 * uri-parameters = *( ";" uri-parameter ), other-param = pname [ "="
 * pvalue ], both 1*paramchar (§25.1); p is just after the first ';'.
 * RFC 3966 parameters are scanned likewise with vclass C_TELV. Returns
 * the first byte that ends the list, or NULL (*why set). The bytes of
 * [lo, p) may be read.
 */
static const char *parse_params(struct sip_uri *u, const char *p,
                                const char *end, const char *lo,
                                unsigned vclass, bool known, const char **why)
{
	for (;;) {
		const char *n = p;
		p = scan_usual(p, end, C_PARAM, lo);
		if (p == NULL)
			return failp(why, "bad escape in URI");
		if (p == n) /* ";;", a trailing ';', LWS (RFC 4475 lwsruri) */
			return failp(why, "bad URI parameter");
		struct slice name = span(n, p), value = SLICE_NULL;
		if (p < end && *p == '=') {
			const char *v = ++p;
			p = scan_usual(p, end, vclass, lo);
			if (p == NULL)
				return failp(why, "bad escape in URI");
			if (p == v)
				return failp(why, "bad URI parameter");
			value = span(v, p);
		}
		if (known)
			known_param(u, name, value);
		if (p == end || *p != ';')
			return p;
		p++;
	}
}

/*
 * headers = "?" header *( "&" header ), header = hname "=" hvalue, hname
 * non-empty (§25.1); p is just after the '?'. Returns the end of the
 * headers, or NULL.
 */
static const char *parse_headers(const char *p, const char *end,
                                 const char **why)
{
	for (;;) {
		const char *n = p;
		p = scan(p, end, C_HNV);
		if (p == NULL)
			return failp(why, "bad escape in URI");
		if (p == n || p == end || *p != '=')
			return failp(why, "bad URI header");
		p = scan(p + 1, end, C_HNV);
		if (p == NULL)
			return failp(why, "bad escape in URI");
		if (p == end || *p != '&')
			return p;
		p++;
	}
}

/* ----------------------------------------------------------- schemes */

/* SIP-URI / SIPS-URI after "sip:" or "sips:" (§19.1.1, §25.1). */
static int parse_sip(struct sip_uri *u, const char *p, const char *end,
                     const char **why)
{
	/*
	 * '@' is in no set after the host (paramchar, hnv-unreserved), so
	 * the first one, if any, ends the userinfo: the usual user, a run
	 * of letters, digits, '-' and '.', ends there without a search.
	 */
	const char *q = sip_skip_adn_in(p, end, u->scheme_name.p);
	const char *at =
	        q < end && *q == '@' ? q : memchr(q, '@', (size_t)(end - q));
	if (at != NULL) {
		q = scan(q, at, C_USER);
		if (q == NULL)
			return fail(why, "bad escape in URI");
		if (q == p || (q < at && *q != ':'))
			return fail(why, "bad URI user");
		u->user = span(p, q);
		if (q < at) {
			const char *w = q + 1;
			q = scan(w, at, C_PASS);
			if (q == NULL)
				return fail(why, "bad escape in URI");
			if (q != at)
				return fail(why, "bad URI password");
			u->password = span(w, at);
		}
		p = at + 1;
	}

	/* the same host and port rules as the Via sent-by (hdr.c) */
	/* the URI from its scheme on may be read */
	p = sip_host_scan(&u->host, &u->host_type, p, end, u->scheme_name.p);
	if (p == NULL)
		return fail(why, "bad URI host");

	if (p < end && *p == ':') {
		p = sip_port_scan(&u->port, p + 1, end, end);
		if (p == NULL)
			return fail(why, "bad URI port");
		u->has_port = true;
	}

	if (p < end && *p == ';') {
		const char *ps = ++p;
		p = parse_params(u, p, end, u->scheme_name.p, C_PARAM, true,
		                 why);
		if (p == NULL)
			return EBADMSG;
		u->params = span(ps, p);
	}

	if (p < end && *p == '?') {
		const char *hs = ++p;
		p = parse_headers(p, end, why);
		if (p == NULL)
			return EBADMSG;
		u->headers = span(hs, p);
	}

	if (p != end) {
		/* say which part the stray byte ended */
		if (u->headers.p != NULL)
			return fail(why, "bad URI header");
		if (u->params.p != NULL)
			return fail(why, "bad URI parameter");
		if (u->has_port)
			return fail(why, "bad URI port");
		return fail(why, "bad URI host");
	}
	return 0;
}

/*
 * telephone-uri = "tel:" telephone-subscriber (RFC 3966 §3):
 *   global-number-digits = "+" *phonedigit DIGIT *phonedigit
 *   local-number-digits  = *phonedigit-hex (HEXDIG / "*" / "#")
 *                          *phonedigit-hex
 * with visual-separator = "-" / "." / "(" / ")". The parameters are kept
 * raw; phone-context is not required of local numbers, to stay lenient.
 */
static int parse_tel(struct sip_uri *u, const char *p, const char *end,
                     const char **why)
{
	const char *n = p;
	bool global = p < end && *p == '+', digit = false;

	if (global)
		p++;
	for (; p < end; p++) {
		char c = *p;
		if (c == '-' || c == '.' || c == '(' || c == ')')
			continue;
		if (global ? is_digit(c)
		           : (is(c, C_HEX) || c == '*' || c == '#'))
			digit = true;
		else
			break;
	}
	if (!digit)
		return fail(why, "bad tel number");
	u->user = span(n, p);

	if (p < end && *p == ';') {
		const char *ps = ++p;
		p = parse_params(u, p, end, u->scheme_name.p, C_TELV, false,
		                 why);
		if (p == NULL)
			return EBADMSG;
		u->params = span(ps, p);
	}
	if (p != end)
		return fail(why, u->params.p != NULL ? "bad URI parameter"
		                                     : "bad tel number");
	return 0;
}

/* ---------------------------------------------------------------- API */

/* The scheme named by the n bytes at p, in any case (§19.1.4). */
static enum sip_uri_scheme scheme_of(const char *p, size_t n)
{
	if (n == 3 && eq_lower(p, "sip", 3))
		return SIP_URI_SIP;
	if (n == 4 && eq_lower(p, "sips", 4))
		return SIP_URI_SIPS;
	if (n == 3 && eq_lower(p, "tel", 3))
		return SIP_URI_TEL;
	return SIP_URI_OTHER;
}

/* Into *u directly (a copy of the result costs as much as zeroing it):
 * callers read it only on success. */
int sip_uri_parse(struct sip_uri *u, struct slice s, const char **why)
{
	enum sip_uri_scheme scheme;

	/* tested first: NULL + 0 is undefined behaviour */
	if (s.p == NULL || s.len == 0)
		return fail(why, "empty URI");
	const char *p = s.p, *end = s.p + s.len;

	if (s.len > 4 && scheme_is_sip(p)) {
		/* the usual scheme, by one compare */
		p += 3;
		scheme = SIP_URI_SIP;
	} else {
		/* scheme = ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ) */
		if (!is_alpha(*p))
			return fail(why, "bad URI scheme");
		while (++p < end && is(*p, C_SCHEME))
			;
		if (p == end || *p != ':')
			return fail(why, "bad URI scheme");
		scheme = scheme_of(s.p, (size_t)(p - s.p));
	}
	memset(u, 0, sizeof(*u));
	u->scheme_name = span(s.p, p);
	u->scheme = scheme;
	p++;

	switch (scheme) {
	case SIP_URI_SIP:
	case SIP_URI_SIPS:
		return parse_sip(u, p, end, why);
	case SIP_URI_TEL:
		return parse_tel(u, p, end, why);
	case SIP_URI_OTHER:
		break;
	}
	/*
	 * absoluteURI of another scheme (§25.1): the proxy answers 416
	 * (§8.2.2.1), so only make sure it is one token of the message: not
	 * empty, no whitespace or control character.
	 */
	if (p == end)
		return fail(why, "empty URI body");
	for (; p < end; p++)
		if ((unsigned char)*p <= 0x20 || *p == 0x7f)
			return fail(why, "bad character in URI");
	return 0;
}

size_t sip_uri_unescape(char *dst, size_t size, struct slice s)
{
	size_t n = 0;

	if (s.len == 0) /* s.p may be NULL */
		return 0;
	for (const char *p = s.p, *end = s.p + s.len; p < end;) {
		char c = *p++;
		if (c == '%' && end - p >= 2 && is(p[0], C_HEX) &&
		    is(p[1], C_HEX)) {
			c = (char)(hexval(p[0]) << 4 | hexval(p[1]));
			p += 2;
		}
		if (n < size)
			dst[n] = c;
		n++;
	}
	return n;
}

/* ------------------------------------------------------ sip_param_find */

/* LWS once folded lines are taken as they are: SP, HT, CR, LF. */
static inline bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static inline char lower(char c)
{
	return c >= 'A' && c <= 'Z' ? (char)(c | 0x20) : c;
}

/* [p, end) starts with the n bytes of name, in any case. */
static bool starts_nocase(const char *p, const char *end, const char *name,
                          size_t n)
{
	if ((size_t)(end - p) < n)
		return false;
	for (size_t i = 0; i < n; i++)
		if (lower(p[i]) != lower(name[i]))
			return false;
	return true;
}

/* A parameter's name ends at q: LWS, '=', ';' or the end. */
static inline bool name_ends(const char *q, const char *end)
{
	return q == end || is_ws(*q) || *q == '=' || *q == ';';
}

/*
 * Also serves header parameters (generic-param, §25.1), which allow LWS
 * around ';' and '=' and quoted-string values; so it is lenient and never
 * fails: it only looks for the name.
 */
bool sip_param_find(struct slice *value, struct slice params, const char *name)
{
	size_t nlen = strlen(name);

	if (nlen == 0 || params.len == 0) /* params.p may be NULL */
		return false;
	const char *p = params.p, *end = params.p + params.len;
	/* Without a quoted string every ';' ends a parameter: one that is
	 * not the one sought is skipped by a search for the next. */
	bool quoted = memchr(p, '"', params.len) != NULL;
	while (p < end) {
		while (p < end && is_ws(*p))
			p++;
		/* the name sought (a token), or another parameter's name */
		bool found = starts_nocase(p, end, name, nlen) &&
		             name_ends(p + nlen, end);
		const char *ne = p + (found ? nlen : 0);
		if (!found) {
			if (!quoted) {
				p = memchr(p, ';', (size_t)(end - p));
				p = p ? p + 1 : end;
				continue;
			}
			while (!name_ends(ne, end))
				ne++;
		}
		p = ne;
		while (p < end && is_ws(*p))
			p++;

		const char *v = ne, *ve = ne;
		if (p < end && *p == '=') {
			p++;
			while (p < end && is_ws(*p))
				p++;
			v = p;
			if (p < end && *p == '"') {
				/* quoted-string: ';' inside does not count */
				for (p++; p < end && *p != '"'; p++)
					if (*p == '\\' && end - p > 1)
						p++;
				if (p < end)
					p++;
				ve = p;
			} else {
				while (p < end && *p != ';')
					p++;
				ve = p;
				while (ve > v && is_ws(ve[-1]))
					ve--;
			}
		}
		if (found) {
			if (value != NULL)
				*value = span(v, ve);
			return true;
		}
		while (p < end && *p != ';')
			p++;
		if (p < end)
			p++;
	}
	return false;
}
