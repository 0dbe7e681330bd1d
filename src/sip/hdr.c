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
	for (p++; p < end; p++) {
		unsigned char c = (unsigned char)*p;
		if (c == '"')
			return p + 1;
		if (c == '\\') {
			/* quoted-pair: any octet but CR and LF */
			if (++p == end || *p == '\r' || *p == '\n')
				return NULL;
		} else if (c < 0x20 && c != '\t' && c != '\r' && c != '\n') {
			return NULL;
		} else if (c == 0x7f) {
			return NULL;
		}
	}
	return NULL;
}

/* ---------------------------------------------------------------- lists */

void sip_list_init(struct sip_list_iter *it, struct slice value)
{
	it->pos = value.p;
	it->end = value.p + value.len;
}

int sip_list_next(struct slice *elem, struct sip_list_iter *it)
{
	const char *p = sip_skip_ws(it->pos, it->end), *start = p;
	bool in_angle = false;

	if (p == it->end) {
		it->pos = p;
		return ENOENT;
	}
	while (p < it->end) {
		char c = *p;
		if (c == '"') {
			p = sip_skip_quoted(p, it->end);
			if (p == NULL)
				return EBADMSG;
			continue;
		}
		if (c == '<')
			in_angle = true;
		else if (c == '>')
			in_angle = false;
		else if (c == ',' && !in_angle)
			break;
		p++;
	}
	if (in_angle)
		return EBADMSG;

	const char *e = p;
	while (e > start && sip_is((unsigned char)e[-1], SIP_CC_WS))
		e--;
	if (e == start)
		return EBADMSG;
	if (p < it->end) {
		/* A trailing comma leaves an empty element: malformed. */
		p++;
		if (sip_skip_ws(p, it->end) == it->end)
			return EBADMSG;
	}
	it->pos = p;
	*elem = span(start, e);
	return 0;
}

/* ---------------------------------------------------------------- hosts */

static bool ipv4_scan(const char *p, const char *end)
{
	unsigned parts = 0;

	while (parts < 4) {
		unsigned v = 0, digits = 0;
		while (p < end && sip_is((unsigned char)*p, SIP_CC_DIGIT) &&
		       digits < 4) {
			v = v * 10 + (unsigned)(*p++ - '0');
			digits++;
		}
		if (digits == 0 || digits > 3 || v > 255)
			return false;
		if (++parts < 4) {
			if (p == end || *p != '.')
				return false;
			p++;
		}
	}
	return p == end;
}

/* IPv6reference = "[" IPv6address "]" (RFC 3261 §25.1), content only. */
static bool ipv6_scan(const char *p, const char *end)
{
	unsigned groups = 0;
	bool gap = false;

	if (end - p >= 2 && p[0] == ':' && p[1] == ':') {
		gap = true;
		p += 2;
		if (p == end)
			return true;
	}
	while (p < end) {
		const char *g = p;
		while (p < end && sip_is((unsigned char)*p, SIP_CC_HEX))
			p++;
		if (p < end && *p == '.') {
			/* trailing IPv4 part counts as two groups */
			if (!ipv4_scan(g, end))
				return false;
			groups += 2;
			p = end;
			break;
		}
		if (p == g || p - g > 4)
			return false;
		groups++;
		if (p == end)
			break;
		if (*p != ':')
			return false;
		p++;
		if (p < end && *p == ':') {
			if (gap)
				return false;
			gap = true;
			p++;
			if (p == end)
				break;
		} else if (p == end) {
			return false;
		}
	}
	return gap ? groups < 8 : groups == 8;
}

static bool is_alnum(unsigned char c)
{
	return sip_is(c, SIP_CC_DIGIT) ||
	       (sip_lower[c] >= 'a' && sip_lower[c] <= 'z');
}

/* hostname = *( domainlabel "." ) toplabel [ "." ] (RFC 3261 §25.1):
 * labels are alphanum with inner hyphens, the top label starts with a
 * letter (which is what tells "256.1.1.1" from a name). */
static bool hostname_scan(const char *p, const char *end)
{
	const char *label = p;

	if (p < end && end[-1] == '.')
		end--;
	if (p == end)
		return false;
	for (;; p++) {
		if (p == end || *p == '.') {
			if (p == label || *label == '-' || p[-1] == '-')
				return false;
			if (p == end)
				return !sip_is((unsigned char)*label,
				               SIP_CC_DIGIT);
			label = p + 1;
		} else if (!is_alnum((unsigned char)*p) && *p != '-') {
			return false;
		}
	}
}

int sip_host_port_scan(struct slice *host, enum sip_host_type *type,
                       uint16_t *port, bool *has_port, const char **next,
                       const char *p, const char *end, const char **why)
{
	const char *h = p, *he;
	enum sip_host_type t;

	if (p < end && *p == '[') {
		he = memchr(p, ']', (size_t)(end - p));
		if (he == NULL || !ipv6_scan(p + 1, he))
			return fail(why, "bad IPv6 reference");
		*host = span(p + 1, he);
		p = he + 1;
		t = SIP_HOST_IPV6;
	} else {
		while (p < end && sip_is((unsigned char)*p, SIP_CC_HOST) &&
		       *p != ':' && *p != '[' && *p != ']')
			p++;
		he = p;
		if (ipv4_scan(h, he))
			t = SIP_HOST_IPV4;
		else if (hostname_scan(h, he))
			t = SIP_HOST_NAME;
		else
			return fail(why, "bad host");
		*host = span(h, he);
	}
	*has_port = false;
	*port = 0;
	if (p < end && *p == ':') {
		uint32_t v;
		const char *d = ++p;
		while (p < end && sip_is((unsigned char)*p, SIP_CC_DIGIT))
			p++;
		if (p - d > 5 || slice_to_u32(&v, span(d, p), 65535))
			return fail(why, "bad port");
		*port = (uint16_t)v;
		*has_port = true;
	}
	*type = t;
	*next = p;
	return 0;
}

/* ----------------------------------------------------------- parameters */

/*
 * generic-param = token [ EQUAL gen-value ], gen-value = token / host /
 * quoted-string, each preceded by SEMI; LWS allowed around ";" and "="
 * (RFC 3261 §25.1). Calls on_param for each; stops at the end or at a byte
 * that cannot continue the list (returned in *stop).
 */
struct param_cb {
	void (*fn)(void *ctx, struct slice name, struct slice value);
	void *ctx;
};

static int params_scan(const char **stop, const char *p, const char *end,
                       const struct param_cb *cb, const char **why)
{
	for (;;) {
		const char *q = sip_skip_ws(p, end);
		if (q == end || *q != ';') {
			*stop = q;
			return 0;
		}
		q = sip_skip_ws(q + 1, end);
		const char *ne = sip_skip_token(q, end);
		if (ne == q)
			return fail(why, "empty parameter");
		struct slice name = span(q, ne), value = span(ne, ne);
		p = ne;
		q = sip_skip_ws(ne, end);
		if (q < end && *q == '=') {
			q = sip_skip_ws(q + 1, end);
			const char *ve;
			if (q < end && *q == '"') {
				ve = sip_skip_quoted(q, end);
				if (ve == NULL)
					return fail(why, "bad quoted string");
			} else if (q < end && *q == '[') {
				ve = memchr(q, ']', (size_t)(end - q));
				if (ve == NULL || !ipv6_scan(q + 1, ve))
					return fail(why, "bad parameter value");
				ve++;
			} else {
				ve = q;
				while (ve < end && (sip_is((unsigned char)*ve,
				                           SIP_CC_TOKEN) ||
				                    *ve == ':'))
					ve++;
				if (ve == q)
					return fail(why,
					            "empty parameter value");
			}
			value = span(q, ve);
			p = ve;
		}
		if (cb)
			cb->fn(cb->ctx, name, value);
	}
}

#define NAME_IS(n, lit)                                                        \
	((n).len == sizeof(lit) - 1 && sip_eq_nocase((n).p, lit, (n).len))

/* ------------------------------------------------------------------ Via */

static void via_param(void *ctx, struct slice name, struct slice value)
{
	struct sip_via *v = ctx;

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

/* via-parm = sent-protocol LWS sent-by *( SEMI via-params ) with
 * sent-protocol = protocol-name SLASH protocol-version SLASH transport. */
int sip_via_parse(struct sip_via *out, struct slice elem, const char **why)
{
	const char *p = elem.p, *end = elem.p + elem.len, *e;
	struct slice part[3];
	struct sip_via v;

	memset(&v, 0, sizeof(v));
	v.raw = elem;
	for (int i = 0; i < 3; i++) {
		p = sip_skip_ws(p, end);
		e = sip_skip_token(p, end);
		if (e == p)
			return fail(why, "malformed Via header");
		part[i] = span(p, e);
		p = sip_skip_ws(e, end);
		if (i < 2) {
			if (p == end || *p != '/')
				return fail(why, "malformed Via header");
			p++;
		}
	}
	if (p == e)
		return fail(why, "malformed Via header");
	v.proto_name = part[0];
	v.proto_version = part[1];
	v.transport = part[2];
	if (sip_host_port_scan(&v.host, &v.host_type, &v.port, &v.has_port, &p,
	                       p, end, why)) {
		*why = "bad Via sent-by";
		return EBADMSG;
	}
	const char *q = sip_skip_ws(p, end);
	if (q < end && *q == ';')
		v.params = span(sip_skip_ws(q + 1, end), end);
	struct param_cb cb = {via_param, &v};
	if (params_scan(&p, p, end, &cb, why) || p != end) {
		*why = "malformed Via parameters";
		return EBADMSG;
	}
	*out = v;
	return 0;
}

/* -------------------------------------------------------- name-addr */

static void addr_param(void *ctx, struct slice name, struct slice value)
{
	struct sip_addr *a = ctx;

	if (NAME_IS(name, "tag")) {
		a->tag = value;
		a->has_tag = true;
	} else if (NAME_IS(name, "expires")) {
		a->expires = value;
	} else if (NAME_IS(name, "q")) {
		a->q = value;
	}
}

/*
 * ( name-addr / addr-spec ) *( SEMI param ) where name-addr =
 * [ display-name ] LAQUOT addr-spec RAQUOT and display-name = *(token LWS)
 * / quoted-string. A URI outside <> cannot hold ',', ';' or '?' (RFC 3261
 * §20: its parameters are header parameters).
 */
int sip_addr_parse(struct sip_addr *out, struct slice elem, unsigned flags,
                   const char **why)
{
	const char *p = elem.p, *end = elem.p + elem.len, *q;
	struct sip_addr a;

	memset(&a, 0, sizeof(a));
	a.raw = elem;
	p = sip_skip_ws(p, end);
	if (p == end)
		return fail(why, "empty address");
	if ((flags & SIP_ADDR_ALLOW_STAR) && *p == '*') {
		q = sip_skip_ws(p + 1, end);
		a.star = true;
		a.uri = span(p, p + 1);
		struct param_cb cb = {addr_param, &a};
		if (params_scan(&q, q, end, &cb, why) || q != end)
			return fail(why, "malformed Contact *");
		*out = a;
		return 0;
	}

	if (*p == '"') {
		q = sip_skip_quoted(p, end);
		if (q == NULL)
			return fail(why, "unterminated quoted display name");
		a.display = span(p + 1, q - 1);
		p = sip_skip_ws(q, end);
		if (p == end || *p != '<')
			return fail(why, "display name without <URI>");
	} else {
		q = p;
		while (q < end && (sip_is((unsigned char)*q, SIP_CC_TOKEN) ||
		                   sip_is((unsigned char)*q, SIP_CC_WS)))
			q++;
		if (q < end && *q == '<') {
			const char *de = q;
			while (de > p &&
			       sip_is((unsigned char)de[-1], SIP_CC_WS))
				de--;
			a.display = span(p, de);
			p = q;
		}
	}

	if (*p == '<') {
		q = memchr(p, '>', (size_t)(end - p));
		if (q == NULL)
			return fail(why, "unterminated <URI>");
		a.uri = span(p + 1, q);
		a.bracketed = true;
		p = q + 1;
	} else {
		q = p;
		while (q < end && !sip_is((unsigned char)*q, SIP_CC_WS) &&
		       *q != ';' && *q != ',' && *q != '?' && *q != '<' &&
		       *q != '>' && *q != '"')
			q++;
		a.uri = span(p, q);
		p = q;
	}
	if (a.uri.len == 0)
		return fail(why, "empty URI");
	if (memchr(a.uri.p, ':', a.uri.len) == NULL)
		return fail(why, "URI without scheme");
	for (size_t i = 0; i < a.uri.len; i++) {
		unsigned char c = (unsigned char)a.uri.p[i];
		if (c <= ' ' || c == 0x7f)
			return fail(why, "whitespace in URI");
	}

	q = sip_skip_ws(p, end);
	if (q < end && *q == ';')
		a.params = span(sip_skip_ws(q + 1, end), end);
	struct param_cb cb = {addr_param, &a};
	if (params_scan(&p, p, end, &cb, why))
		return EBADMSG;
	if (p != end)
		return fail(why, a.bracketed ? "junk after <URI>"
		                             : "malformed address");
	*out = a;
	return 0;
}

/* ------------------------------------------------------- CSeq, RAck */

/* 1*DIGIT <= max followed by LWS; advances *pp. */
static int number_then_ws(uint32_t *out, const char **pp, const char *end,
                          uint32_t max)
{
	const char *p = sip_skip_ws(*pp, end), *d = p;

	while (p < end && sip_is((unsigned char)*p, SIP_CC_DIGIT))
		p++;
	if (slice_to_u32(out, span(d, p), max))
		return EBADMSG;
	if (p == end || !sip_is((unsigned char)*p, SIP_CC_WS))
		return EBADMSG;
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
