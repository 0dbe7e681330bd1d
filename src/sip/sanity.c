/*
 * Kamailio's sanity module checks (sanity_check(msg_checks, uri_checks)),
 * with its check numbers, reply codes and reason phrases, so that a
 * script written for it answers the same. sip_msg_check() has already
 * refused most of what these look for before a script runs (a missing
 * header, a bad version, a CSeq method that differs, a bad URI); what
 * only sanity_check() finds is trailing octets after a UDP body, an
 * extension a Proxy-Require names that proxy_require does not list,
 * duplicate tags, and digest credentials without their mandatory
 * parameters.
 */
#include <errno.h>
#include <string.h>

#include "sip/sip_int.h"

static int fail(struct sip_sanity_verdict *v, unsigned code, const char *reason)
{
	v->code = code;
	v->reason = reason;
	return EBADMSG;
}

unsigned sip_unsupported_exts(struct slice *exts, unsigned max,
                              struct sip_msg *m, struct slice supported)
{
	unsigned n = 0;

	for (const struct sip_hdr *h = sip_msg_hdr(m, SIP_HDR_PROXY_REQUIRE);
	     h && n < max; h = sip_msg_hdr_next(m, h)) {
		struct sip_list_iter it;
		struct slice tag;

		sip_list_init(&it, h->value);
		while (n < max && sip_list_next(&tag, &it) == 0) {
			struct sip_list_iter ok;
			struct slice known;
			bool found = false;

			sip_list_init(&ok, supported);
			while (!found && sip_list_next(&known, &ok) == 0)
				found = slice_eq_nocase(known, tag);
			if (!found)
				exts[n++] = tag;
		}
	}
	return n;
}

/* A CSeq number or an Expires value as the sanity module takes it: digits
 * only, at most 2^32 - 1. */
static bool valid_uint(struct slice s)
{
	uint32_t n;

	return slice_to_u32(&n, s, UINT32_MAX) == 0;
}

/* The first word of a header value (CSeq: the number before the
 * method). */
static struct slice first_word(struct slice v)
{
	size_t n = 0;

	while (n < v.len && v.p[n] != ' ' && v.p[n] != '\t')
		n++;
	return slice_make(v.p, n);
}

/* More than one tag parameter among an address's header parameters. */
static bool two_tags(struct slice params)
{
	struct slice tag;

	if (!sip_param_find(&tag, params, "tag"))
		return false;
	const char *rest = tag.p + tag.len;
	return sip_param_find(
	        NULL, slice_make(rest, (size_t)(params.p + params.len - rest)),
	        "tag");
}

/*
 * Digest credentials (RFC 2617 §3.2.2) in every Authorization and
 * Proxy-Authorization header, as Kamailio 5.6 checks them (the reasons
 * are its own): username, realm, nonce, uri and response present (cnonce
 * and nc with qop), and username, nonce and response not empty.
 * Credentials of another scheme pass unless digest_only (check 2048,
 * which then fails without a reply; 8192 lets them pass). 0, or EBADMSG
 * with *v.
 */
static int digest_credentials(struct sip_sanity_verdict *v, struct sip_msg *m,
                              bool digest_only)
{
	static const enum sip_hdr_id ids[] = {SIP_HDR_AUTHORIZATION,
	                                      SIP_HDR_PROXY_AUTHORIZATION};
	enum {
		USERNAME,
		REALM,
		NONCE,
		URI,
		RESPONSE,
		QOP,
		CNONCE,
		NC,
		NPARAMS
	};
	static const char *const names[NPARAMS] = {
	        "username", "realm", "nonce",  "uri",
	        "response", "qop",   "cnonce", "nc"};

	for (size_t i = 0; i < sizeof(ids) / sizeof(ids[0]); i++) {
		for (const struct sip_hdr *h = sip_msg_hdr(m, ids[i]); h;
		     h = sip_msg_hdr_next(m, h)) {
			struct slice val = h->value, param;
			struct slice got[NPARAMS] = {0};
			bool have[NPARAMS] = {0};
			struct sip_list_iter it;
			size_t n = 0;

			while (n < val.len && val.p[n] != ' ' &&
			       val.p[n] != '\t')
				n++;
			if (!slice_eq_nocase(slice_make(val.p, n),
			                     SLICE_LIT("Digest"))) {
				if (digest_only)
					return fail(v, 0, "not digest");
				continue;
			}
			sip_list_init(&it, slice_make(val.p + n, val.len - n));
			while (sip_list_next(&param, &it) == 0) {
				const char *eq =
				        memchr(param.p, '=', param.len);
				if (eq == NULL)
					continue;
				struct slice name = slice_trim(slice_make(
				        param.p, (size_t)(eq - param.p)));
				struct slice pv = slice_trim(slice_make(
				        eq + 1, (size_t)(param.p + param.len -
				                         eq - 1)));
				if (pv.len >= 2 && pv.p[0] == '"' &&
				    pv.p[pv.len - 1] == '"')
					pv = slice_make(pv.p + 1, pv.len - 2);
				for (unsigned k = 0; k < NPARAMS; k++)
					if (slice_eq_cstr_nocase(name,
					                         names[k])) {
						have[k] = true;
						got[k] = pv;
					}
			}
			if (!have[USERNAME] || !have[REALM] || !have[NONCE] ||
			    !have[URI] || !have[RESPONSE] ||
			    (have[QOP] && (!have[CNONCE] || !have[NC])))
				return fail(v, 400, "Bad Auth Credentials");
			if (got[USERNAME].len == 0)
				return fail(v, 400, "Auth Empty User");
			if (got[NONCE].len == 0)
				return fail(v, 400, "Auth Empty Nonce");
			if (got[RESPONSE].len == 0)
				return fail(v, 400, "Auth Empty Response");
		}
	}
	return 0;
}

/* The URI checks (uri_checks of check 1024). */
static int check_uris(struct sip_sanity_verdict *v, struct sip_msg *m,
                      unsigned uri_checks)
{
	const struct sip_uri *u;
	const struct sip_addr *a;

	if ((uri_checks & SIP_SANITY_URI_RURI) && m->is_request &&
	    sip_msg_request_uri(&u, m))
		return fail(v, 400, "Bad Request URI");
	if (uri_checks & SIP_SANITY_URI_FROM) {
		if (!sip_msg_hdr(m, SIP_HDR_FROM))
			return fail(v, 400, "Missing From Header");
		if (sip_msg_from(&a, m))
			return fail(v, 400, "Bad From header");
		if (sip_msg_from_uri(&u, m))
			return fail(v, 400, "Bad From URI");
	}
	if (uri_checks & SIP_SANITY_URI_TO) {
		if (!sip_msg_hdr(m, SIP_HDR_TO))
			return fail(v, 400, "Missing To Header");
		if (sip_msg_to(&a, m) || sip_msg_to_uri(&u, m))
			return fail(v, 400, "Bad To URI");
	}
	if ((uri_checks & SIP_SANITY_URI_CONTACT) &&
	    sip_msg_hdr(m, SIP_HDR_CONTACT)) {
		struct sip_uri cu;
		const char *why;
		int err = sip_msg_contact(&a, m);
		if (err && err != ENOENT)
			return fail(v, 400, "Bad Contact Header");
		if (err == 0 && !a->star && sip_uri_parse(&cu, a->uri, &why))
			return fail(v, 400, "Bad Contact URI");
	}
	return 0;
}

int sip_sanity_check(struct sip_sanity_verdict *v, struct sip_msg *m,
                     size_t wire_len, unsigned checks, unsigned uri_checks,
                     struct slice supported)
{
	const struct sip_uri *u;
	const struct sip_cseq *cs;
	const struct sip_hdr *h;
	bool req = m->is_request;

	v->code = 0;
	v->reason = NULL;
	v->unsupported = SLICE_NULL;

	if ((checks & SIP_SANITY_RURI_VERSION) && req &&
	    !slice_eq_cstr(m->version, "SIP/2.0"))
		return fail(v, 505, "Version Not Supported (R-URI)");
	if ((checks & SIP_SANITY_RURI_SCHEME) && req) {
		if (sip_msg_request_uri(&u, m))
			return fail(v, 400, "Bad Request URI");
		if (u->scheme == SIP_URI_OTHER)
			return fail(v, 416,
			            "Unsupported URI Scheme in Request URI");
	}
	if ((checks & SIP_SANITY_REQUIRED_HEADERS) &&
	    (!sip_msg_hdr(m, SIP_HDR_TO) || !sip_msg_hdr(m, SIP_HDR_FROM) ||
	     !sip_msg_hdr(m, SIP_HDR_CSEQ) ||
	     !sip_msg_hdr(m, SIP_HDR_CALL_ID) || !sip_msg_hdr(m, SIP_HDR_VIA)))
		return fail(v, 400, "Missing Required Header in Request");
	if (checks & SIP_SANITY_VIA1) {
		const struct sip_via *via;
		/* no reply: there is nowhere to send one */
		if (sip_msg_top_via(&via, m) || via->host.len == 0)
			return fail(v, 0, "bad first Via");
	}
	/* 8 and 16 (Via version and protocol) pass, as they do in Kamailio:
	 * its Via parser, like ours, refuses what they would find. */
	const struct sip_hdr *cseq = sip_msg_hdr(m, SIP_HDR_CSEQ);
	if ((checks & (SIP_SANITY_CSEQ_METHOD | SIP_SANITY_CSEQ_VALUE)) &&
	    cseq == NULL)
		return fail(v, 0, "no CSeq");
	if ((checks & SIP_SANITY_CSEQ_METHOD) && req) {
		if (sip_msg_cseq(&cs, m) || cs->method.len == 0)
			return fail(v, 400, "Missing method in CSeq header");
		if (!slice_eq(cs->method, m->method))
			return fail(
			        v, 400,
			        "CSeq method does not match request method");
	}
	if ((checks & SIP_SANITY_CSEQ_VALUE) &&
	    !valid_uint(first_word(cseq->value)))
		return fail(v, 400, "CSeq number is illegal");
	/* Over UDP the datagram must end with the body (RFC 3261 §18.3);
	 * a stream's framing took the Content-Length's octets. */
	if ((checks & SIP_SANITY_CONTENT_LENGTH) && wire_len &&
	    m->has_content_length &&
	    wire_len - (size_t)(m->body.p - m->buf) != m->content_length)
		return fail(v, 400, "Content-Length mis-match");
	if ((checks & SIP_SANITY_EXPIRES) &&
	    (h = sip_msg_hdr(m, SIP_HDR_EXPIRES)) != NULL) {
		if (h->value.len == 0)
			return fail(v, 400, "Missing number in Expires header");
		if (!valid_uint(h->value))
			return fail(v, 400, "Expires value is illegal");
	}
	if ((checks & SIP_SANITY_PROXY_REQUIRE) && req &&
	    sip_unsupported_exts(&v->unsupported, 1, m, supported))
		return fail(v, 420, "Bad Proxy Require Extension");
	if (checks & SIP_SANITY_PARSE_URIS) {
		int err = check_uris(v, m, uri_checks);
		if (err)
			return err;
	}
	if ((checks & SIP_SANITY_DIGEST) && digest_credentials(v, m, true))
		return EBADMSG;
	if ((checks & SIP_SANITY_AUTHORIZATION) &&
	    digest_credentials(v, m, false))
		return EBADMSG;
	if (checks & SIP_SANITY_DUPLICATE_TAGS) {
		const struct sip_addr *from, *to;
		if (sip_msg_from(&from, m) || two_tags(from->params))
			return fail(v, 400, "Many From Tag Params");
		if (sip_msg_to(&to, m) || two_tags(to->params))
			return fail(v, 400, "Many To Tag Params");
	}
	return 0;
}
