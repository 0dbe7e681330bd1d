/*
 * libFuzzer target for the message parser: sip_msg_parse() under the
 * default and a tiny set of limits, then every decoder and check a proxy
 * runs on a received message. Any input must give a documented result, and
 * everything the parser hands out must lie inside the message.
 *
 * The input is copied into a heap buffer of exactly its size: libFuzzer's
 * own buffer may have slack behind it, and an over-read by one byte must
 * hit AddressSanitizer's redzone.
 */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "../common/sip_same_decoded.h"
#include "sip/sip.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the check must survive NDEBUG builds. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

/* Bounds that every slice of the current message must respect. */
static const char *lo, *hi;

/* Absent ({NULL, 0}) or entirely inside [lo, hi). */
static void check_in(struct slice s)
{
	if (s.p == NULL) {
		CHECK(s.len == 0);
		return;
	}
	CHECK(s.p >= lo && s.p <= hi);
	CHECK(s.len <= (size_t)(hi - s.p));
}

static bool is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* s lies inside outer (both already known to be in the message). */
static void check_within(struct slice s, struct slice outer)
{
	if (s.p == NULL || s.len == 0)
		return;
	CHECK(s.p >= outer.p && s.p + s.len <= outer.p + outer.len);
}

static void check_uri_text(struct slice text)
{
	struct sip_uri u;
	const char *why = NULL;

	if (sip_uri_parse(&u, text, &why) != 0) {
		CHECK(why != NULL);
		return;
	}
	check_in(u.scheme_name);
	check_in(u.user);
	check_in(u.password);
	check_in(u.host);
	check_in(u.params);
	check_in(u.headers);
	check_in(u.transport);
	check_in(u.maddr);
	check_in(u.user_param);
	check_in(u.method);
	check_in(u.ttl);
	check_within(u.user, text);
	check_within(u.host, text);
	check_within(u.params, text);
	check_within(u.headers, text);
}

static void check_via(const struct sip_via *v)
{
	check_in(v->raw);
	check_in(v->proto_name);
	check_in(v->proto_version);
	check_in(v->transport);
	check_in(v->host);
	check_in(v->params);
	check_in(v->branch);
	check_in(v->received);
	check_in(v->rport);
	check_in(v->maddr);
	check_in(v->ttl);
	CHECK(v->proto_name.len > 0 && v->proto_version.len > 0 &&
	      v->transport.len > 0);
	CHECK(v->has_port || v->port == 0);
	check_within(v->host, v->raw);
	check_within(v->branch, v->raw);
	check_within(v->params, v->raw);
}

static void check_addr(const struct sip_addr *a)
{
	check_in(a->raw);
	check_in(a->display);
	check_in(a->uri);
	check_in(a->params);
	check_in(a->tag);
	check_in(a->expires);
	check_in(a->q);
	CHECK(a->uri.len > 0);
	CHECK(a->has_tag || a->tag.len == 0);
	check_within(a->uri, a->raw);
	check_within(a->display, a->raw);
	check_within(a->params, a->raw);
	if (!a->star)
		check_uri_text(a->uri);
}

/* Every decoder answers 0, ENOENT or EBADMSG, and the same on a second
 * call (the first one caches). */
static void check_decoders(struct sip_msg *m)
{
	const struct sip_via *via, *via2;
	const struct sip_addr *a, *a2;
	const struct sip_cseq *cs, *cs2;
	const struct sip_rack *ra, *ra2;
	struct slice cid, cid2;
	uint32_t n, n2;
	int err;

#define TWICE(call1, call2)                                                    \
	do {                                                                   \
		err = (call1);                                                 \
		CHECK(err == 0 || err == ENOENT || err == EBADMSG);            \
		CHECK((call2) == err);                                         \
		if (err == EBADMSG)                                            \
			CHECK(m->error != NULL);                               \
	} while (0)

	TWICE(sip_msg_top_via(&via, m), sip_msg_top_via(&via2, m));
	if (err == 0) {
		CHECK(via == via2);
		check_via(via);
	}
	TWICE(sip_msg_from(&a, m), sip_msg_from(&a2, m));
	if (err == 0)
		check_addr(a);
	TWICE(sip_msg_to(&a, m), sip_msg_to(&a2, m));
	if (err == 0)
		check_addr(a);
	TWICE(sip_msg_call_id(&cid, m), sip_msg_call_id(&cid2, m));
	if (err == 0) {
		check_in(cid);
		CHECK(cid.len > 0 && cid.p == cid2.p && cid.len == cid2.len);
	}
	TWICE(sip_msg_cseq(&cs, m), sip_msg_cseq(&cs2, m));
	if (err == 0) {
		check_in(cs->method);
		CHECK(cs->method.len > 0 && cs->num <= INT32_MAX);
		CHECK(cs->method_id == sip_method_lookup(cs->method));
	}
	TWICE(sip_msg_max_forwards(&n, m), sip_msg_max_forwards(&n2, m));
	if (err == 0)
		CHECK(n == n2 && n <= 255);
	TWICE(sip_msg_expires(&n, m), sip_msg_expires(&n2, m));
	if (err == 0)
		CHECK(n == n2);
	TWICE(sip_msg_rseq(&n, m), sip_msg_rseq(&n2, m));
	if (err == 0)
		CHECK(n == n2 && n > 0 && n <= INT32_MAX);
	TWICE(sip_msg_rack(&ra, m), sip_msg_rack(&ra2, m));
	if (err == 0)
		check_in(ra->method);
#undef TWICE
}

/* Returns whether sip_msg_check() must refuse m for its lists: a Via or
 * Contact element that does not decode, or too many of them. */
static bool check_lists(struct sip_msg *m, unsigned max_vias)
{
	static struct sip_via vias[64];
	static struct sip_addr contacts[32];
	unsigned n = 12345;
	int err;

	err = sip_msg_vias(vias, max_vias, &n, m);
	CHECK(err == 0 || err == E2BIG || err == EBADMSG);
	if (err == 0) {
		CHECK(n <= max_vias);
		for (unsigned i = 0; i < n; i++)
			check_via(&vias[i]);
	} else {
		CHECK(m->error != NULL);
	}

	/* E2BIG at the fuzzer's own bound, when below the message's, says
	 * nothing */
	bool refuse =
	        err == EBADMSG || (err == E2BIG && max_vias == m->max_vias);

	n = 12345;
	err = sip_msg_contacts(contacts, 32, &n, m);
	CHECK(err == 0 || err == E2BIG || err == EBADMSG);
	if (err == 0) {
		CHECK(n <= 32);
		for (unsigned i = 0; i < n; i++) {
			check_addr(&contacts[i]);
			CHECK(!contacts[i].star || n == 1);
		}
	} else {
		CHECK(m->error != NULL);
	}
	return refuse || err != 0;
}

/* Route and Record-Route: each element an address with a URI, as the
 * proxy reads them for loose routing. */
static void check_routes(struct sip_msg *m, enum sip_hdr_id id)
{
	struct sip_elem_iter it;
	struct slice elem;
	unsigned guard = 0;
	int err;

	sip_elem_iter_init(&it, m, id);
	while ((err = sip_elem_next(&elem, &it)) == 0) {
		struct sip_addr a;
		const char *why = NULL;
		check_in(elem);
		CHECK(elem.len > 0);
		CHECK(++guard <= m->len);
		if (sip_addr_parse(&a, elem, 0, &why) == 0)
			check_addr(&a);
		else
			CHECK(why != NULL);
	}
	CHECK(err == ENOENT || err == EBADMSG);
}

/* The index: every header inside the message, in order, chained by id. */
static void check_index(struct sip_msg *m)
{
	unsigned per_id[SIP_HDR__COUNT] = {0};
	uint32_t prev_end = 0;

	CHECK(m->nhdrs <= SIP_HDRS_CAP);
	for (unsigned i = 0; i < m->nhdrs; i++) {
		const struct sip_hdr *h = sip_msg_hdr_at(m, i);
		CHECK(h == &m->hdrs[i]);
		CHECK(h->off >= prev_end);
		CHECK((size_t)h->off + h->len <= m->hdrs_end);
		prev_end = h->off + h->len;
		struct slice line = slice_make(m->buf + h->off, h->len);
		check_in(h->name);
		check_in(h->value);
		CHECK(h->name.len > 0 && h->name.p == line.p);
		check_within(h->value, line);
		/* values are LWS-trimmed, also when they start on a fold */
		if (h->value.len > 0) {
			CHECK(!is_lws(h->value.p[0]));
			CHECK(!is_lws(h->value.p[h->value.len - 1]));
		}
		CHECK(h->id < SIP_HDR__COUNT);
		CHECK(h->id == sip_hdr_lookup(h->name));
		per_id[h->id]++;
		if (h->next) {
			CHECK(h->next > i + 1 && h->next <= m->nhdrs);
			CHECK(m->hdrs[h->next - 1].id == h->id);
			CHECK(h->id != SIP_HDR_OTHER);
		}
		const struct sip_hdr *f = sip_msg_hdr_by_name(m, h->name);
		CHECK(f != NULL && f <= h && f->id == h->id);

		/* any value splits into list elements inside it */
		struct sip_list_iter it;
		struct slice e;
		unsigned guard = 0;
		sip_list_init(&it, h->value);
		while (sip_list_next(&e, &it) == 0) {
			check_within(e, h->value);
			CHECK(e.len > 0 && ++guard <= h->value.len);
		}
	}
	for (unsigned id = 1; id < SIP_HDR__COUNT; id++)
		CHECK(sip_msg_hdr_count(m, (enum sip_hdr_id)id) == per_id[id]);
}

static void check_msg(struct sip_msg *m, const char *buf, size_t size,
                      unsigned max_vias)
{
	unsigned status = 0;
	int err;

	lo = buf;
	hi = buf + m->len;
	CHECK(m->buf == buf && m->len <= size);
	CHECK(m->hdrs_end <= m->len);
	check_in(m->start_line);
	check_in(m->method);
	check_in(m->ruri);
	check_in(m->reason);
	check_in(m->version);
	check_in(m->body);
	CHECK(m->start_line.len > 0);
	check_within(m->method, m->start_line);
	check_within(m->ruri, m->start_line);
	check_within(m->version, m->start_line);
	check_within(m->reason, m->start_line);
	CHECK(m->body.p >= buf + m->hdrs_end);
	if (m->is_request) {
		CHECK(m->method.len > 0 && m->status == 0);
		CHECK(m->method_id == sip_method_lookup(m->method));
	} else {
		CHECK(m->status >= 100 && m->status <= 699);
	}
	if (m->has_content_length) {
		/* the body is exactly Content-Length and ends the message */
		CHECK(m->body.len == m->content_length);
		CHECK(m->body.p + m->body.len == buf + m->len);
	} else {
		/* without it the body runs to the end of the datagram */
		CHECK(m->len == size && m->body.p + m->body.len == buf + size);
	}

	check_index(m);
	check_decoders(m);
	bool bad_lists = check_lists(m, max_vias);
	check_routes(m, SIP_HDR_ROUTE);
	check_routes(m, SIP_HDR_RECORD_ROUTE);
	if (m->is_request && m->ruri.len > 0)
		check_uri_text(m->ruri);

	err = sip_msg_check(&status, m);
	CHECK(err != 0 || !bad_lists);
	if (err == 0) {
		/* what the proxy relies on once a message passed */
		const struct sip_via *v;
		const struct sip_addr *a;
		const struct sip_cseq *cs;
		struct slice cid;
		struct sip_uri u;
		const char *why;
		CHECK(m->line_error == NULL && m->body_error == NULL);
		CHECK(sip_msg_top_via(&v, m) == 0);
		CHECK(sip_msg_from(&a, m) == 0 && sip_msg_to(&a, m) == 0);
		CHECK(sip_msg_call_id(&cid, m) == 0);
		CHECK(sip_msg_cseq(&cs, m) == 0);
		CHECK(sip_msg_hdr_count(m, SIP_HDR_VIA) <= max_vias);
		if (m->is_request) {
			CHECK(slice_eq(cs->method, m->method));
			CHECK(sip_uri_parse(&u, m->ruri, &why) == 0);
			CHECK(u.headers.len == 0);
		}
	} else {
		CHECK(err == EBADMSG && m->error != NULL);
		CHECK(status == 400 || status == 505);
	}
}

/*
 * A copy of m, as a transaction keeps it (m having decoded what it could,
 * or failed to), answers the decoders exactly as a parse of the copied
 * bytes does.
 */
static void check_copy(const struct sip_msg *m, const struct sip_limits *lim)
{
	static struct sip_msg fresh;
	char *cbuf = malloc(m->len ? m->len : 1);
	struct sip_msg *c = malloc(SIP_MSG_SIZE(m->nhdrs));

	CHECK(cbuf != NULL && c != NULL);
	memcpy(cbuf, m->buf, m->len);
	sip_msg_copy(c, m, cbuf);
	CHECK(sip_msg_parse(&fresh, cbuf, m->len, lim) == 0);
	CHECK(sip_same_decoded(c, &fresh));
	free(c);
	free(cbuf);
}

/* Parses buf[0..size) with lim; checks the outcome; returns the error. */
static int run(struct sip_msg *m, const char *buf, size_t size,
               const struct sip_limits *lim)
{
	int err = sip_msg_parse(m, buf, size, lim);

	switch (err) {
	case 0:
		CHECK(m->nhdrs <= lim->max_headers &&
		      size <= lim->max_msg_size);
		check_msg(m, buf, size,
		          lim->max_vias < 64 ? lim->max_vias : 64);
		break;
	case EMSGSIZE:
		CHECK(size > lim->max_msg_size && m->error != NULL);
		break;
	case E2BIG:
	case EBADMSG:
		CHECK(m->error != NULL);
		break;
	default:
		abort();
	}
	return err;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct sip_msg m, again, tiny;
	static const struct sip_limits tiny_lim = {512, 8, 4};
	const struct sip_limits def = SIP_LIMITS_DEFAULT;
	char *buf = malloc(size ? size : 1);
	int err;

	CHECK(buf != NULL);
	if (size)
		memcpy(buf, data, size);

	err = run(&m, buf, size, &def);
	if (err == 0) {
		/* Octets after the message are not part of it: the message
		 * alone parses to the same thing. */
		CHECK(run(&again, buf, m.len, &def) == 0);
		CHECK(again.len == m.len && again.nhdrs == m.nhdrs);
		CHECK(again.hdrs_end == m.hdrs_end);
		CHECK(again.body.p == m.body.p && again.body.len == m.body.len);
		check_copy(&m, &def);
	}

	/* Limits only ever turn a success into EMSGSIZE or E2BIG. */
	int terr = run(&tiny, buf, size, &tiny_lim);
	if (err == 0 && size <= tiny_lim.max_msg_size &&
	    m.nhdrs <= tiny_lim.max_headers)
		CHECK(terr == 0);
	if (err == 0 && terr != 0)
		CHECK(terr == EMSGSIZE || terr == E2BIG);

	free(buf);
	return 0;
}
