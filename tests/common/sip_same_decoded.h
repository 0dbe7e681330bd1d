/*
 * For the tests of sip_msg_copy() (tests/unit/test_sip_msg.c and
 * tests/fuzz/fuzz_msg.c): whether two parses of the same bytes, a copy and
 * a fresh parse, answer every cached decoder alike: the same error and,
 * on success, the same fields. Slices are compared as pointers: both
 * parses point into the same buffer.
 */
#ifndef IMSDLG_TESTS_SIP_SAME_DECODED_H
#define IMSDLG_TESTS_SIP_SAME_DECODED_H

#include <stdbool.h>
#include <stdint.h>

#include "sip/sip.h"

static inline bool same_slice(struct slice a, struct slice b)
{
	return a.p == b.p && a.len == b.len;
}

static inline bool same_via(const struct sip_via *a, const struct sip_via *b)
{
	return same_slice(a->raw, b->raw) &&
	       same_slice(a->proto_name, b->proto_name) &&
	       same_slice(a->proto_version, b->proto_version) &&
	       same_slice(a->transport, b->transport) &&
	       same_slice(a->host, b->host) && a->host_type == b->host_type &&
	       a->port == b->port && a->has_port == b->has_port &&
	       same_slice(a->params, b->params) &&
	       same_slice(a->branch, b->branch) &&
	       same_slice(a->received, b->received) &&
	       same_slice(a->rport, b->rport) && a->has_rport == b->has_rport &&
	       same_slice(a->maddr, b->maddr) && same_slice(a->ttl, b->ttl);
}

static inline bool same_addr(const struct sip_addr *a, const struct sip_addr *b)
{
	return same_slice(a->raw, b->raw) &&
	       same_slice(a->display, b->display) &&
	       same_slice(a->uri, b->uri) && a->bracketed == b->bracketed &&
	       a->star == b->star && same_slice(a->params, b->params) &&
	       same_slice(a->tag, b->tag) && a->has_tag == b->has_tag &&
	       same_slice(a->expires, b->expires) && same_slice(a->q, b->q);
}

static inline bool same_uri(const struct sip_uri *a, const struct sip_uri *b)
{
	return a->scheme == b->scheme &&
	       same_slice(a->scheme_name, b->scheme_name) &&
	       same_slice(a->user, b->user) &&
	       same_slice(a->password, b->password) &&
	       same_slice(a->host, b->host) && a->host_type == b->host_type &&
	       a->port == b->port && a->has_port == b->has_port &&
	       same_slice(a->params, b->params) &&
	       same_slice(a->headers, b->headers) &&
	       same_slice(a->transport, b->transport) &&
	       same_slice(a->maddr, b->maddr) &&
	       same_slice(a->user_param, b->user_param) &&
	       same_slice(a->method, b->method) && same_slice(a->ttl, b->ttl) &&
	       a->lr == b->lr;
}

static inline bool same_cseq(const struct sip_cseq *a, const struct sip_cseq *b)
{
	return a->num == b->num && same_slice(a->method, b->method) &&
	       a->method_id == b->method_id;
}

static inline bool same_u32(uint32_t a, uint32_t b)
{
	return a == b;
}

/* One decoder asked of a and of b: the same answer, equal results. */
#define SAME_DECODER(type, decoder, equal)                                     \
	do {                                                                   \
		type x_;                                                       \
		type y_;                                                       \
		int e_ = decoder(&x_, a);                                      \
		if (e_ != decoder(&y_, b) || (e_ == 0 && !equal(x_, y_)))      \
			return false;                                          \
	} while (0)

static inline bool sip_same_decoded(struct sip_msg *a, struct sip_msg *b)
{
	SAME_DECODER(const struct sip_via *, sip_msg_top_via, same_via);
	SAME_DECODER(const struct sip_addr *, sip_msg_from, same_addr);
	SAME_DECODER(const struct sip_addr *, sip_msg_to, same_addr);
	SAME_DECODER(const struct sip_uri *, sip_msg_from_uri, same_uri);
	SAME_DECODER(const struct sip_uri *, sip_msg_to_uri, same_uri);
	SAME_DECODER(const struct sip_uri *, sip_msg_request_uri, same_uri);
	SAME_DECODER(const struct sip_addr *, sip_msg_contact, same_addr);
	SAME_DECODER(struct slice, sip_msg_call_id, same_slice);
	SAME_DECODER(const struct sip_cseq *, sip_msg_cseq, same_cseq);
	SAME_DECODER(uint32_t, sip_msg_max_forwards, same_u32);
	return true;
}

#undef SAME_DECODER

#endif
