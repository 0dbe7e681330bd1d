/*
 * Messages the proxy writes itself: replies to requests it answers
 * (RFC 3261 §8.2.6, §16.7), the CANCEL of a forwarded INVITE (§9.1) and
 * the ACK of a non-2xx final response to it (§17.1.1.3).
 *
 * Header values are copied as received; only the names are rewritten, in
 * full form, so a compact "v:" comes out as "Via:".
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "sip/sip.h"

/* ------------------------------------------------------------ sip_buf */

void sip_buf_init(struct sip_buf *b, char *p, size_t size)
{
	b->p = p;
	b->len = 0;
	b->size = size;
	b->overflow = false;
}

void sip_buf_addf(struct sip_buf *b, const char *fmt, ...)
{
	char tmp[256];
	va_list ap;
	int n;

	if (b->overflow)
		return;
	/* Through a scratch buffer: vsnprintf() wants room for a NUL that
	 * the output does not keep, so formatting in place would report a
	 * piece that fits exactly as an overflow. */
	va_start(ap, fmt);
	n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
	va_end(ap);
	if (n < 0) {
		b->overflow = true;
	} else if ((size_t)n < sizeof(tmp)) {
		sip_buf_add(b, slice_make(tmp, (size_t)n));
	} else if ((size_t)n < b->size - b->len) {
		/* Long pieces are rare; these do need the spare byte. */
		va_start(ap, fmt);
		vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
		va_end(ap);
		b->len += (size_t)n;
	} else {
		b->overflow = true;
	}
}

/* ---------------------------------------------------------------- tag */

void sip_gen_tag(char dst[SIP_TAG_LEN], struct sip_msg *req)
{
	static const char hex[] = "0123456789abcdef";
	struct slice call_id = SLICE_NULL, from_tag = SLICE_NULL;
	struct slice branch = SLICE_NULL;
	const struct sip_addr *from;
	const struct sip_via *via;
	uint64_t parts[3], h;
	int i;

	/* The inputs stay the same in a retransmission of the request
	 * (§17.2.3), so it gets the same tag and the UAC sees one dialog.
	 * A missing input just hashes as empty. */
	sip_msg_call_id(&call_id, req);
	if (sip_msg_from(&from, req) == 0)
		from_tag = from->tag;
	if (sip_msg_top_via(&via, req) == 0)
		branch = via->branch;
	/* Hashed one by one, so that moving bytes from one input to the
	 * next changes the tag. */
	parts[0] = hash_bytes(call_id.p, call_id.len);
	parts[1] = hash_bytes(from_tag.p, from_tag.len);
	parts[2] = hash_bytes(branch.p, branch.len);
	h = hash_bytes(parts, sizeof(parts));
	for (i = SIP_TAG_LEN - 1; i >= 0; i--) {
		dst[i] = hex[h & 0xf];
		h >>= 4;
	}
}

/* ----------------------------------------------------------- builders */

/* A header the message cannot do without: absent is malformed too. */
static int need(int err, struct sip_msg *m, const char *missing)
{
	if (err == ENOENT) {
		m->error = missing;
		return EBADMSG;
	}
	return err;
}

static void add_line(struct sip_buf *b, const char *name, struct slice value)
{
	sip_buf_adds(b, name);
	sip_buf_adds(b, ": ");
	sip_buf_add(b, value);
	sip_buf_adds(b, "\r\n");
}

/* Every line of header id, in order, one output line per input line. */
static void copy_lines(struct sip_buf *b, const struct sip_msg *m,
                       enum sip_hdr_id id)
{
	const struct sip_hdr *h;

	for (h = sip_msg_hdr(m, id); h != NULL; h = sip_msg_hdr_next(m, h))
		add_line(b, sip_hdr_name(id), h->value);
}

static int done(const struct sip_buf *b)
{
	return b->overflow ? ENOSPC : 0;
}

/* True when a To value carries a tag, also when it does not decode (a 400
 * for a malformed To must not add a second one). */
static bool to_has_tag(struct sip_msg *req, struct slice raw)
{
	const struct sip_addr *to;

	if (sip_msg_to(&to, req) == 0)
		return to->has_tag;
	for (size_t i = 0; i + 4 <= raw.len; i++)
		if (raw.p[i] == ';' && (raw.p[i + 1] | 0x20) == 't' &&
		    (raw.p[i + 2] | 0x20) == 'a' &&
		    (raw.p[i + 3] | 0x20) == 'g')
			return true;
	return false;
}

int sip_build_reply(struct sip_buf *out, struct sip_msg *req, unsigned code,
                    struct slice reason, struct slice to_tag,
                    struct slice extra_hdrs, struct slice body)
{
	const struct sip_hdr *to = sip_msg_hdr(req, SIP_HDR_TO);
	char tag[SIP_TAG_LEN];

	if (!req->is_request || code < 100 || code > 699)
		return EINVAL;
	/* Only the Vias are indispensable: they route the reply. The other
	 * headers are copied as received, so that a malformed request can
	 * still be answered with a 400 that says why (RFC 4475 §3.1.2). */
	if (sip_msg_hdr(req, SIP_HDR_VIA) == NULL) {
		req->error = "missing Via";
		return EBADMSG;
	}

	sip_buf_adds(out, "SIP/2.0 ");
	sip_buf_addu(out, code);
	sip_buf_adds(out, " ");
	sip_buf_add(out, reason);
	sip_buf_adds(out, "\r\n");
	/* §8.2.6.2: the Vias in order, so the reply retraces the path of
	 * the request; From, Call-ID and CSeq equal. */
	copy_lines(out, req, SIP_HDR_VIA);
	copy_lines(out, req, SIP_HDR_FROM);
	if (to != NULL) {
		sip_buf_adds(out, "To: ");
		sip_buf_add(out, to->value);
		/* §8.2.6.2: a tag goes on every response that may create a
		 * dialog or ends the transaction, except 100 which never
		 * does (§8.2.6.1); one already there (an in-dialog request)
		 * stays. */
		if (code > 100 && !to_has_tag(req, to->value)) {
			if (to_tag.len == 0) {
				sip_gen_tag(tag, req);
				to_tag = slice_make(tag, sizeof(tag));
			}
			sip_buf_adds(out, ";tag=");
			sip_buf_add(out, to_tag);
		}
		sip_buf_adds(out, "\r\n");
	}
	copy_lines(out, req, SIP_HDR_CALL_ID);
	copy_lines(out, req, SIP_HDR_CSEQ);
	sip_buf_add(out, extra_hdrs);
	sip_buf_adds(out, "Content-Length: ");
	sip_buf_addu(out, body.len);
	sip_buf_adds(out, "\r\n\r\n");
	sip_buf_add(out, body);
	return done(out);
}

/*
 * The part a CANCEL and an ACK share: start line, the top Via of req only
 * (the branch identifies the transaction, §9.1 and §17.1.1.3), From of req,
 * To, Call-ID, CSeq number of req with the new method, and the Route
 * headers of req so that they follow the same path.
 */
static int build_hop(struct sip_buf *out, struct sip_msg *req,
                     const char *method, const struct sip_addr *to)
{
	const struct sip_via *via;
	const struct sip_addr *from;
	const struct sip_cseq *cseq;
	struct slice call_id;
	int err;

	if ((err = need(sip_msg_top_via(&via, req), req, "missing Via")) ||
	    (err = need(sip_msg_from(&from, req), req, "missing From")) ||
	    (err = need(sip_msg_call_id(&call_id, req), req,
	                "missing Call-ID")) ||
	    (err = need(sip_msg_cseq(&cseq, req), req, "missing CSeq")))
		return err;

	sip_buf_adds(out, method);
	sip_buf_adds(out, " ");
	sip_buf_add(out, req->ruri);
	sip_buf_adds(out, " SIP/2.0\r\n");
	add_line(out, "Via", via->raw);
	add_line(out, "From", from->raw);
	add_line(out, "To", to->raw);
	add_line(out, "Call-ID", call_id);
	sip_buf_adds(out, "CSeq: ");
	sip_buf_addu(out, cseq->num);
	sip_buf_adds(out, " ");
	sip_buf_adds(out, method);
	sip_buf_adds(out, "\r\n");
	copy_lines(out, req, SIP_HDR_ROUTE);
	sip_buf_adds(out, "Max-Forwards: 70\r\n");
	return 0;
}

int sip_build_cancel(struct sip_buf *out, struct sip_msg *req,
                     struct slice extra_hdrs)
{
	const struct sip_addr *to;
	int err;

	if (!req->is_request || req->ruri.p == NULL)
		return EINVAL;
	/* §9.1: To as in the request, so without a tag. */
	err = need(sip_msg_to(&to, req), req, "missing To");
	if (err == 0)
		err = build_hop(out, req, "CANCEL", to);
	if (err != 0)
		return err;
	sip_buf_add(out, extra_hdrs);
	sip_buf_adds(out, "Content-Length: 0\r\n\r\n");
	return done(out);
}

int sip_build_ack(struct sip_buf *out, struct sip_msg *req, struct sip_msg *rpl)
{
	const struct sip_addr *to;
	int err;

	if (!req->is_request || req->ruri.p == NULL || rpl->is_request)
		return EINVAL;
	/* §17.1.1.3: To of the response, with the tag the UAS chose. */
	err = need(sip_msg_to(&to, rpl), rpl, "missing To");
	if (err == 0)
		err = build_hop(out, req, "ACK", to);
	if (err != 0)
		return err;
	sip_buf_adds(out, "Content-Length: 0\r\n\r\n");
	return done(out);
}

int sip_build_in_dialog(struct sip_buf *out, struct sip_msg *rpl,
                        struct slice target, struct slice from,
                        struct slice call_id, const char *method, uint32_t cseq)
{
	const struct sip_addr *to, *contact;
	struct slice route[SIP_DIALOG_MAX_ROUTES], elem;
	struct sip_elem_iter it;
	unsigned n = 0;
	int err;

	if (rpl->is_request)
		return EINVAL;
	if ((err = need(sip_msg_to(&to, rpl), rpl, "missing To")))
		return err;
	err = sip_msg_contact(&contact, rpl);
	if (err == 0 && !contact->star)
		target = contact->uri;
	else if (err != 0 && err != ENOENT)
		return err;
	sip_elem_iter_init(&it, rpl, SIP_HDR_RECORD_ROUTE);
	while ((err = sip_elem_next(&elem, &it)) == 0) {
		if (n == SIP_DIALOG_MAX_ROUTES)
			return E2BIG;
		route[n++] = elem;
	}
	if (err != ENOENT)
		return err;

	sip_buf_adds(out, method);
	sip_buf_adds(out, " ");
	sip_buf_add(out, target);
	sip_buf_adds(out, " SIP/2.0\r\n");
	/* §12.1.2: the UAC's route set is the Record-Route in reverse. */
	if (n) {
		sip_buf_adds(out, "Route: ");
		for (unsigned i = n; i-- > 0;) {
			sip_buf_add(out, route[i]);
			if (i)
				sip_buf_adds(out, ", ");
		}
		sip_buf_adds(out, "\r\n");
	}
	add_line(out, "From", from);
	add_line(out, "To", to->raw);
	add_line(out, "Call-ID", call_id);
	sip_buf_adds(out, "CSeq: ");
	sip_buf_addu(out, cseq);
	sip_buf_adds(out, " ");
	sip_buf_adds(out, method);
	sip_buf_adds(out, "\r\nMax-Forwards: 70\r\n");
	return done(out);
}
