/* Unit tests of the message parser: start lines, the header index,
 * folding, compact forms, list splitting, the cached decoders, limits. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "sip/sip.h"

static struct sip_msg msg;

static int parse(const char *text)
{
	struct sip_limits lim = SIP_LIMITS_DEFAULT;

	return sip_msg_parse(&msg, text, strlen(text), &lim);
}

static void assert_slice(struct slice s, const char *expected)
{
	assert_int_equal(s.len, strlen(expected));
	assert_memory_equal(s.p, expected, s.len);
}

#define INVITE_HEAD                                                            \
	"INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"                        \
	"Via: SIP/2.0/UDP pc33.atlanta.example.com:5060"                       \
	";branch=z9hG4bK776asdhds;rport\r\n"                                   \
	"Max-Forwards: 70\r\n"                                                 \
	"To: Bob <sip:bob@biloxi.example.com>\r\n"                             \
	"From: \"Alice A.\" "                                                  \
	"<sip:alice@atlanta.example.com>;tag=1928301774\r\n"                   \
	"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"                 \
	"CSeq: 314159 INVITE\r\n"                                              \
	"Contact: <sip:alice@pc33.atlanta.example.com>\r\n"

static void test_request(void **state)
{
	const char *text = INVITE_HEAD "Content-Length: 4\r\n\r\nbody";
	const struct sip_via *via;
	const struct sip_addr *from, *to;
	const struct sip_cseq *cseq;
	struct slice cid;
	uint32_t mf;
	unsigned status;

	(void)state;
	assert_int_equal(parse(text), 0);
	assert_true(msg.is_request);
	assert_int_equal(msg.method_id, SIP_METHOD_INVITE);
	assert_slice(msg.method, "INVITE");
	assert_slice(msg.ruri, "sip:bob@biloxi.example.com");
	assert_slice(msg.version, "SIP/2.0");
	assert_int_equal(msg.nhdrs, 8);
	assert_slice(msg.body, "body");
	assert_int_equal(msg.len, strlen(text));

	assert_int_equal(sip_msg_top_via(&via, &msg), 0);
	assert_slice(via->transport, "UDP");
	assert_slice(via->host, "pc33.atlanta.example.com");
	assert_int_equal(via->port, 5060);
	assert_slice(via->branch, "z9hG4bK776asdhds");
	assert_true(via->has_rport);
	assert_int_equal(via->rport.len, 0);

	assert_int_equal(sip_msg_from(&from, &msg), 0);
	assert_slice(from->display, "Alice A.");
	assert_slice(from->uri, "sip:alice@atlanta.example.com");
	assert_slice(from->tag, "1928301774");
	assert_int_equal(sip_msg_to(&to, &msg), 0);
	assert_slice(to->display, "Bob");
	assert_false(to->has_tag);

	assert_int_equal(sip_msg_call_id(&cid, &msg), 0);
	assert_slice(cid, "a84b4c76e66710@pc33.atlanta.example.com");
	assert_int_equal(sip_msg_cseq(&cseq, &msg), 0);
	assert_int_equal(cseq->num, 314159);
	assert_int_equal(cseq->method_id, SIP_METHOD_INVITE);
	assert_int_equal(sip_msg_max_forwards(&mf, &msg), 0);
	assert_int_equal(mf, 70);
	assert_int_equal(sip_msg_check(&status, &msg), 0);

	/* Cached: the second call returns the same object. */
	const struct sip_via *again;
	assert_int_equal(sip_msg_top_via(&again, &msg), 0);
	assert_ptr_equal(again, via);
}

static void test_response(void **state)
{
	const char *text = "SIP/2.0 180 Ringing\r\n"
	                   "Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1\r\n"
	                   "To: <sip:b@example.com>;tag=xyz\r\n"
	                   "From: <sip:a@example.com>;tag=abc\r\n"
	                   "Call-ID: 1@a\r\n"
	                   "CSeq: 1 INVITE\r\n"
	                   "Content-Length: 0\r\n\r\n";
	const struct sip_addr *to;
	unsigned status;

	(void)state;
	assert_int_equal(parse(text), 0);
	assert_false(msg.is_request);
	assert_int_equal(msg.status, 180);
	assert_slice(msg.reason, "Ringing");
	assert_int_equal(sip_msg_to(&to, &msg), 0);
	assert_slice(to->tag, "xyz");
	assert_int_equal(sip_msg_check(&status, &msg), 0);
}

static void test_bad_start_lines(void **state)
{
	(void)state;
	/* Not indexable at all. */
	assert_int_equal(parse(""), EBADMSG);
	assert_int_equal(parse("INVITE"), EBADMSG);
	assert_int_equal(parse("SIP/2.0 1000 Big\r\nVia: x\r\n\r\n"), EBADMSG);
	assert_int_equal(parse("SIP/2.0 099 Small\r\nVia: x\r\n\r\n"), EBADMSG);
	assert_int_equal(parse("SIP/x 200 OK\r\nVia: x\r\n\r\n"), EBADMSG);
	/* Indexable, but a 400 is due: the defect waits for the check. */
	assert_int_equal(parse("INVITE  sip:a@b SIP/2.0\r\n"
	                       "Via: x\r\n\r\n"),
	                 0);
	assert_non_null(msg.line_error);
	unsigned status;
	assert_int_equal(sip_msg_check(&status, &msg), EBADMSG);
	assert_int_equal(status, 400);
}

static void test_folding_and_compact_forms(void **state)
{
	const char *text = "OPTIONS sip:a@b.example SIP/2.0\r\n"
	                   "v: SIP/2.0/TCP h.example\r\n"
	                   "  ;branch=z9hG4bKx\r\n"
	                   "f: <sip:c@d.example>\r\n"
	                   "\t;tag=t1\r\n"
	                   "t: sip:a@b.example\r\n"
	                   "i: cid@h\r\n"
	                   "CSeq: 2\r\n OPTIONS\r\n"
	                   "l: 0\r\n"
	                   "m: *\r\n"
	                   "s: hello\r\n"
	                   "k: 100rel\r\n"
	                   "o: presence\r\n"
	                   "c: text/plain\r\n"
	                   "e: gzip\r\n"
	                   "r: <sip:x@y.example>\r\n"
	                   "b: <sip:z@y.example>\r\n"
	                   "u: dialog\r\n"
	                   "x: 1800\r\n"
	                   "y: abc\r\n"
	                   "j: *;audio\r\n"
	                   "d: proxy\r\n"
	                   "a: *;video\r\n"
	                   "\r\n";
	static const enum sip_hdr_id ids[] = {SIP_HDR_VIA,
	                                      SIP_HDR_FROM,
	                                      SIP_HDR_TO,
	                                      SIP_HDR_CALL_ID,
	                                      SIP_HDR_CSEQ,
	                                      SIP_HDR_CONTENT_LENGTH,
	                                      SIP_HDR_CONTACT,
	                                      SIP_HDR_SUBJECT,
	                                      SIP_HDR_SUPPORTED,
	                                      SIP_HDR_EVENT,
	                                      SIP_HDR_CONTENT_TYPE,
	                                      SIP_HDR_CONTENT_ENCODING,
	                                      SIP_HDR_REFER_TO,
	                                      SIP_HDR_REFERRED_BY,
	                                      SIP_HDR_ALLOW_EVENTS,
	                                      SIP_HDR_SESSION_EXPIRES,
	                                      SIP_HDR_IDENTITY,
	                                      SIP_HDR_REJECT_CONTACT,
	                                      SIP_HDR_REQUEST_DISPOSITION,
	                                      SIP_HDR_ACCEPT_CONTACT};
	const struct sip_via *via;
	const struct sip_addr *from;
	const struct sip_cseq *cseq;

	(void)state;
	assert_int_equal(parse(text), 0);
	assert_int_equal(msg.nhdrs, sizeof(ids) / sizeof(ids[0]));
	for (unsigned i = 0; i < msg.nhdrs; i++)
		assert_int_equal(msg.hdrs[i].id, ids[i]);
	assert_slice(msg.hdrs[0].value,
	             "SIP/2.0/TCP h.example\r\n  ;branch=z9hG4bKx");
	assert_int_equal(sip_msg_top_via(&via, &msg), 0);
	assert_slice(via->branch, "z9hG4bKx");
	assert_int_equal(sip_msg_from(&from, &msg), 0);
	assert_slice(from->tag, "t1");
	assert_int_equal(sip_msg_cseq(&cseq, &msg), 0);
	assert_int_equal(cseq->num, 2);
	assert_int_equal(cseq->method_id, SIP_METHOD_OPTIONS);
	/* A header line's span covers its folds and its CRLF. */
	assert_int_equal(msg.hdrs[0].off,
	                 strlen("OPTIONS sip:a@b.example SIP/2.0\r\n"));
	assert_int_equal(
	        msg.hdrs[0].len,
	        strlen("v: SIP/2.0/TCP h.example\r\n  ;branch=z9hG4bKx\r\n"));
	unsigned status;
	assert_int_equal(sip_msg_check(&status, &msg), 0);
}

static void test_header_names(void **state)
{
	(void)state;
	assert_int_equal(sip_hdr_lookup(SLICE_LIT("vIA")), SIP_HDR_VIA);
	assert_int_equal(sip_hdr_lookup(SLICE_LIT("V")), SIP_HDR_VIA);
	assert_int_equal(sip_hdr_lookup(SLICE_LIT("record-route")),
	                 SIP_HDR_RECORD_ROUTE);
	assert_int_equal(sip_hdr_lookup(SLICE_LIT("Call-Id")), SIP_HDR_CALL_ID);
	assert_int_equal(sip_hdr_lookup(SLICE_LIT("Route")), SIP_HDR_ROUTE);
	assert_int_equal(sip_hdr_lookup(SLICE_LIT("Routes")), SIP_HDR_OTHER);
	assert_int_equal(sip_hdr_lookup(SLICE_LIT("X-Via")), SIP_HDR_OTHER);
	assert_int_equal(sip_hdr_lookup(SLICE_LIT("q")), SIP_HDR_OTHER);
	/* Every full name and compact form maps back to its id. */
	for (unsigned id = 1; id < SIP_HDR__COUNT; id++)
		assert_int_equal(sip_hdr_lookup(slice_cstr(
		                         sip_hdr_name((enum sip_hdr_id)id))),
		                 id);
	assert_int_equal(sip_method_lookup(SLICE_LIT("PRACK")),
	                 SIP_METHOD_PRACK);
	assert_int_equal(sip_method_lookup(SLICE_LIT("invite")),
	                 SIP_METHOD_OTHER);
}

static void test_lists(void **state)
{
	const char *text = "SIP/2.0 200 OK\r\n"
	                   "Via: SIP/2.0/UDP a.example;branch=z9hG4bK1, "
	                   "SIP/2.0/TCP [2001:db8::1]:5070;branch=z9hG4bK2\r\n"
	                   "Via: SIP/2.0/UDP 192.0.2.1;received=192.0.2.9;"
	                   "branch=z9hG4bK3\r\n"
	                   "Record-Route: <sip:p1.example;lr>, "
	                   "\"a, b\" <sip:p2.example;lr;x=\"q,r\">\r\n"
	                   "Record-Route: <sip:p3.example;lr>\r\n"
	                   "To: <sip:b@example.com>;tag=2\r\n"
	                   "From: <sip:a@example.com>;tag=1\r\n"
	                   "Call-ID: c\r\nCSeq: 1 INVITE\r\n"
	                   "Contact: <sip:b@h1.example>;q=0.5;expires=60, "
	                   "<sip:b@h2.example>\r\n"
	                   "Content-Length: 0\r\n\r\n";
	struct sip_via vias[4];
	struct sip_addr contacts[4];
	struct sip_elem_iter it;
	struct slice elem;
	unsigned n;

	(void)state;
	assert_int_equal(parse(text), 0);
	assert_int_equal(sip_msg_vias(vias, 4, &n, &msg), 0);
	assert_int_equal(n, 3);
	assert_slice(vias[1].host, "2001:db8::1");
	assert_int_equal(vias[1].host_type, SIP_HOST_IPV6);
	assert_int_equal(vias[1].port, 5070);
	assert_slice(vias[2].received, "192.0.2.9");
	assert_int_equal(vias[2].host_type, SIP_HOST_IPV4);
	assert_int_equal(sip_msg_vias(vias, 2, &n, &msg), E2BIG);

	const char *expect[] = {"<sip:p1.example;lr>",
	                        "\"a, b\" <sip:p2.example;lr;x=\"q,r\">",
	                        "<sip:p3.example;lr>"};
	sip_elem_iter_init(&it, &msg, SIP_HDR_RECORD_ROUTE);
	for (unsigned i = 0; i < 3; i++) {
		assert_int_equal(sip_elem_next(&elem, &it), 0);
		assert_slice(elem, expect[i]);
	}
	assert_int_equal(sip_elem_next(&elem, &it), ENOENT);

	assert_int_equal(sip_msg_contacts(contacts, 4, &n, &msg), 0);
	assert_int_equal(n, 2);
	assert_slice(contacts[0].q, "0.5");
	assert_slice(contacts[0].expires, "60");
	assert_slice(contacts[1].uri, "sip:b@h2.example");
}

static void test_list_errors(void **state)
{
	struct sip_list_iter it;
	struct slice elem;

	(void)state;
	sip_list_init(&it, SLICE_LIT("a, ,b"));
	assert_int_equal(sip_list_next(&elem, &it), 0);
	assert_int_equal(sip_list_next(&elem, &it), EBADMSG);
	sip_list_init(&it, SLICE_LIT("\"open, b"));
	assert_int_equal(sip_list_next(&elem, &it), EBADMSG);
	sip_list_init(&it, SLICE_LIT("<sip:a, b"));
	assert_int_equal(sip_list_next(&elem, &it), EBADMSG);
	sip_list_init(&it, SLICE_LIT("a,"));
	assert_int_equal(sip_list_next(&elem, &it), EBADMSG);
	sip_list_init(&it, SLICE_LIT("  "));
	assert_int_equal(sip_list_next(&elem, &it), ENOENT);
}

static void test_addr_forms(void **state)
{
	struct sip_addr a;
	const char *why;

	(void)state;
	assert_int_equal(
	        sip_addr_parse(&a, SLICE_LIT("sip:a@b.example;tag=9"), 0, &why),
	        0);
	assert_false(a.bracketed);
	assert_slice(a.uri, "sip:a@b.example");
	assert_slice(a.tag, "9");
	assert_int_equal(
	        sip_addr_parse(&a, SLICE_LIT("Bob Smith <sip:b@c>"), 0, &why),
	        0);
	assert_slice(a.display, "Bob Smith");
	assert_int_equal(
	        sip_addr_parse(&a, SLICE_LIT("\"q \\\" x\"<sip:b@c> ; tag = t"),
	                       0, &why),
	        0);
	assert_slice(a.display, "q \\\" x");
	assert_slice(a.tag, "t");
	/* "*" only where allowed (Contact). */
	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("*"), 0, &why), EBADMSG);
	assert_int_equal(
	        sip_addr_parse(&a, SLICE_LIT("*"), SIP_ADDR_ALLOW_STAR, &why),
	        0);
	assert_true(a.star);
	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("<sip:a@b"), 0, &why),
	                 EBADMSG);
	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("<sip:a@b>;;"), 0, &why),
	                 EBADMSG);
	assert_int_equal(
	        sip_addr_parse(&a, SLICE_LIT("<sip:a@b> junk"), 0, &why),
	        EBADMSG);
	assert_int_equal(sip_addr_parse(&a, SLICE_LIT("<>"), 0, &why), EBADMSG);
}

static void test_via_forms(void **state)
{
	struct sip_via v;
	const char *why;

	(void)state;
	assert_int_equal(
	        sip_via_parse(&v,
	                      SLICE_LIT("SIP / 2.0 / UDP h.example:5060 "
	                                "; branch = z9hG4bKa ; maddr="
	                                "224.2.0.1;ttl=16;rport=5061;x"),
	                      &why),
	        0);
	assert_slice(v.proto_name, "SIP");
	assert_slice(v.proto_version, "2.0");
	assert_slice(v.branch, "z9hG4bKa");
	assert_slice(v.maddr, "224.2.0.1");
	assert_slice(v.ttl, "16");
	assert_slice(v.rport, "5061");
	assert_slice(v.params, "branch = z9hG4bKa ; maddr=224.2.0.1;ttl=16;"
	                       "rport=5061;x");
	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/UDP"), &why),
	                 EBADMSG);
	assert_int_equal(
	        sip_via_parse(&v, SLICE_LIT("SIP/2.0 h.example"), &why),
	        EBADMSG);
	assert_int_equal(
	        sip_via_parse(&v, SLICE_LIT("SIP/2.0/UDP h:99999"), &why),
	        EBADMSG);
	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/UDP [::1"), &why),
	                 EBADMSG);
	assert_int_equal(sip_via_parse(&v, SLICE_LIT("SIP/2.0/UDP h;;"), &why),
	                 EBADMSG);
}

static void test_numbers(void **state)
{
	const struct sip_cseq *cseq;
	const struct sip_rack *rack;
	uint32_t v;

	(void)state;
	assert_int_equal(parse("BYE sip:a@b SIP/2.0\r\nCSeq: 2147483647 BYE\r\n"
	                       "Max-Forwards: 256\r\nRSeq: 0\r\n"
	                       "RAck: 776656 1 INVITE\r\n\r\n"),
	                 0);
	assert_int_equal(sip_msg_cseq(&cseq, &msg), 0);
	assert_int_equal(cseq->num, 2147483647u);
	assert_int_equal(sip_msg_max_forwards(&v, &msg), EBADMSG);
	assert_int_equal(sip_msg_rseq(&v, &msg), EBADMSG);
	assert_int_equal(sip_msg_rack(&rack, &msg), 0);
	assert_int_equal(rack->rseq, 776656);
	assert_int_equal(rack->cseq, 1);
	assert_slice(rack->method, "INVITE");
	assert_int_equal(sip_msg_expires(&v, &msg), ENOENT);

	assert_int_equal(parse("BYE sip:a@b SIP/2.0\r\nCSeq: 2147483648 BYE\r\n"
	                       "\r\n"),
	                 0);
	assert_int_equal(sip_msg_cseq(&cseq, &msg), EBADMSG);
	assert_non_null(msg.error);
}

static void test_body_delimiting(void **state)
{
	(void)state;
	/* Octets after Content-Length bytes belong to no message. */
	assert_int_equal(parse(INVITE_HEAD "Content-Length: 2\r\n\r\nabEXTRA"),
	                 0);
	assert_slice(msg.body, "ab");
	assert_null(msg.body_error);
	/* Too large, negative: the body runs to the end and check says 400. */
	assert_int_equal(parse(INVITE_HEAD "Content-Length: 99\r\n\r\nab"), 0);
	assert_non_null(msg.body_error);
	assert_int_equal(parse(INVITE_HEAD "Content-Length: -1\r\n\r\nab"), 0);
	assert_non_null(msg.body_error);
	unsigned status;
	assert_int_equal(sip_msg_check(&status, &msg), EBADMSG);
	assert_int_equal(status, 400);
	/* No Content-Length (UDP): the rest of the datagram. */
	assert_int_equal(parse(INVITE_HEAD "\r\nxyz"), 0);
	assert_slice(msg.body, "xyz");
	/* Bare LF line ends are tolerated. */
	assert_int_equal(parse("OPTIONS sip:a@b SIP/2.0\nVia: SIP/2.0/UDP h\n"
	                       "\nbody"),
	                 0);
	assert_int_equal(msg.nhdrs, 1);
	assert_slice(msg.body, "body");
}

static void test_limits(void **state)
{
	struct sip_limits lim = SIP_LIMITS_DEFAULT;
	char big[70000];
	unsigned status;

	(void)state;
	memset(big, 'a', sizeof(big));
	assert_int_equal(sip_msg_parse(&msg, big, sizeof(big), &lim), EMSGSIZE);

	lim.max_headers = 3;
	const char *text = INVITE_HEAD "\r\n";
	assert_int_equal(sip_msg_parse(&msg, text, strlen(text), &lim), E2BIG);

	lim = SIP_LIMITS_DEFAULT;
	lim.max_vias = 1;
	const char *two_vias = "OPTIONS sip:a@b.example SIP/2.0\r\n"
	                       "Via: SIP/2.0/UDP h1;branch=z9hG4bK1\r\n"
	                       "Via: SIP/2.0/UDP h2;branch=z9hG4bK2\r\n"
	                       "From: <sip:a@b.example>;tag=1\r\n"
	                       "To: <sip:a@b.example>\r\n"
	                       "Call-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
	assert_int_equal(sip_msg_parse(&msg, two_vias, strlen(two_vias), &lim),
	                 0);
	assert_int_equal(sip_msg_check(&status, &msg), EBADMSG);
	assert_string_equal(msg.error, "too many Via headers");
}

static void test_hdr_lookup_by_name(void **state)
{
	const struct sip_hdr *h;

	(void)state;
	assert_int_equal(parse(INVITE_HEAD "X-Custom: one\r\nx-custom: two\r\n"
	                                   "\r\n"),
	                 0);
	h = sip_msg_hdr_by_name(&msg, SLICE_LIT("X-CUSTOM"));
	assert_non_null(h);
	assert_slice(h->value, "one");
	h = sip_msg_hdr_by_name(&msg, SLICE_LIT("call-id"));
	assert_non_null(h);
	assert_int_equal(h->id, SIP_HDR_CALL_ID);
	assert_null(sip_msg_hdr_by_name(&msg, SLICE_LIT("X-None")));
	assert_int_equal(sip_msg_hdr_count(&msg, SIP_HDR_VIA), 1);
	assert_null(sip_msg_hdr_at(&msg, msg.nhdrs));
}

/*
 * parse() of a heap copy of exactly strlen(text) bytes, so that a read
 * past the message, by the 16-byte loads of the scanners in particular,
 * hits AddressSanitizer's redzone. The copy lives until the next call.
 */
static int parse_exact(const char *text)
{
	static char *copy;
	struct sip_limits lim = SIP_LIMITS_DEFAULT;
	size_t n = strlen(text);

	free(copy);
	copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, text, n);
	return sip_msg_parse(&msg, copy, n, &lim);
}

/* A slice over a heap copy of exactly strlen(s) bytes, for the same
 * reason; the copy lives until the next call. */
static struct slice exact(const char *s)
{
	static char *copy;
	size_t n = strlen(s);

	free(copy);
	copy = malloc(n ? n : 1);
	assert_non_null(copy);
	memcpy(copy, s, n);
	return slice_make(copy, n);
}

/*
 * The fast paths of the index: a known name in any case is taken as it
 * is, every other line goes the general way, with the same outcome.
 */
static void test_index_fast_and_general_paths(void **state)
{
	const char *text = "OPTIONS sip:a@b.example SIP/2.0\r\n"
	                   "vIA: SIP/2.0/UDP h.example;branch=z9hG4bK1\r\n"
	                   "Max-Forwards:70\r\n"                /* no SP */
	                   "To :\t<sip:a@b.example>  \r\n"      /* LWS */
	                   "CONTENT-ENCODING: gzip\r\n"         /* 16 */
	                   "Request-Disposition: proxy\r\n"     /* 19 */
	                   "P-Asserted-Identity: <sip:c@d>\r\n" /* other */
	                   "X-Long-Header-Name-Over-32-Bytes-X: 1\r\n"
	                   "Content-Lengths: 5\r\n" /* not a known name */
	                   "Subject:\r\n"           /* empty value */
	                   "From: <sip:a@b.example>;tag=1\n" /* bare LF */
	                   "Call-ID: x\r\n"
	                   "CSeq: 1 OPTIONS\r\n"
	                   "\r\n";
	static const struct {
		enum sip_hdr_id id;
		const char *name, *value;
	} want[] = {
	        {SIP_HDR_VIA, "vIA", "SIP/2.0/UDP h.example;branch=z9hG4bK1"},
	        {SIP_HDR_MAX_FORWARDS, "Max-Forwards", "70"},
	        {SIP_HDR_TO, "To", "<sip:a@b.example>"},
	        {SIP_HDR_CONTENT_ENCODING, "CONTENT-ENCODING", "gzip"},
	        {SIP_HDR_REQUEST_DISPOSITION, "Request-Disposition", "proxy"},
	        {SIP_HDR_OTHER, "P-Asserted-Identity", "<sip:c@d>"},
	        {SIP_HDR_OTHER, "X-Long-Header-Name-Over-32-Bytes-X", "1"},
	        {SIP_HDR_OTHER, "Content-Lengths", "5"},
	        {SIP_HDR_SUBJECT, "Subject", ""},
	        {SIP_HDR_FROM, "From", "<sip:a@b.example>;tag=1"},
	        {SIP_HDR_CALL_ID, "Call-ID", "x"},
	        {SIP_HDR_CSEQ, "CSeq", "1 OPTIONS"},
	};
	unsigned status;

	(void)state;
	assert_int_equal(parse_exact(text), 0);
	assert_int_equal(msg.nhdrs, sizeof(want) / sizeof(want[0]));
	for (unsigned i = 0; i < msg.nhdrs; i++) {
		assert_int_equal(msg.hdrs[i].id, want[i].id);
		assert_slice(msg.hdrs[i].name, want[i].name);
		assert_slice(msg.hdrs[i].value, want[i].value);
	}
	assert_false(msg.has_content_length);
	assert_int_equal(sip_msg_check(&status, &msg), 0);
}

/* A CR is no '-': "Call\rID" is no Call-ID, whatever case folding does. */
static void test_index_bad_names(void **state)
{
	(void)state;
	assert_int_equal(
	        parse_exact("BYE sip:a@b SIP/2.0\r\nCall\rID: x\r\n\r\n"),
	        EBADMSG);
	assert_string_equal(msg.error, "header line without colon");
	assert_int_equal(parse_exact("BYE sip:a@b SIP/2.0\r\nVia: x\r\n"
	                             "Fo o: x\r\n\r\n"),
	                 EBADMSG);
	assert_string_equal(msg.error, "header line without colon");
	assert_int_equal(parse_exact("BYE sip:a@b SIP/2.0\r\nVia: x\r\n"
	                             ": x\r\n\r\n"),
	                 EBADMSG);
	assert_string_equal(msg.error, "malformed header name");
	assert_int_equal(parse_exact("BYE sip:a@b SIP/2.0\r\nVia: x\r\n"
	                             "No colon on this line at all\r\n\r\n"),
	                 EBADMSG);
	assert_string_equal(msg.error, "header line without colon");
	assert_int_equal(parse_exact("BYE sip:a@b SIP/2.0\r\n"
	                             "P-Asserted-Identity\x01: x\r\n\r\n"),
	                 EBADMSG);
}

/* Short messages take the byte loops; lines longer than the 64-byte
 * windows of line ends take several. */
static void test_index_short_and_long_lines(void **state)
{
	char text[600];
	int n;

	(void)state;
	assert_int_equal(parse_exact("A b S\nV:x\n\n"), 0);
	assert_int_equal(msg.nhdrs, 1);
	assert_int_equal(msg.hdrs[0].id, SIP_HDR_VIA);
	assert_slice(msg.hdrs[0].value, "x");
	assert_non_null(msg.line_error);
	assert_int_equal(parse_exact("A b S\nV:x\n"), 0);
	assert_string_equal(msg.body_error, "no empty line after the headers");
	assert_int_equal(parse_exact("A b S\nV:x"), EBADMSG);
	assert_string_equal(msg.error, "unterminated header line");

	n = snprintf(text, sizeof(text),
	             "OPTIONS sip:a@b.example SIP/2.0\r\n"
	             "Subject: %0200d\r\n"
	             "Via: SIP/2.0/UDP h\r\n  ;branch=z9hG4bK%0100d\r\n"
	             "\r\n",
	             7, 9);
	assert_true(n > 0 && (size_t)n < sizeof(text));
	assert_int_equal(parse_exact(text), 0);
	assert_int_equal(msg.nhdrs, 2);
	assert_int_equal(msg.hdrs[0].value.len, 200);
	assert_int_equal(msg.hdrs[1].id, SIP_HDR_VIA);
	assert_int_equal(msg.hdrs[1].value.len,
	                 strlen("SIP/2.0/UDP h\r\n  ;branch=z9hG4bK") + 100);
}

/* Of a bad Content-Length and a missing empty line, the one read last is
 * reported. */
static void test_body_error_order(void **state)
{
	(void)state;
	assert_int_equal(
	        parse_exact("BYE sip:a@b SIP/2.0\r\nContent-Length: x\r\n"
	                    "Via: SIP/2.0/UDP h\r\n"),
	        0);
	assert_string_equal(msg.body_error, "no empty line after the headers");
	assert_int_equal(
	        parse_exact("BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
	                    "Content-Length: x\r\n"),
	        0);
	assert_string_equal(msg.body_error, "bad Content-Length");
	assert_int_equal(
	        parse_exact("BYE sip:a@b SIP/2.0\r\nContent-Length: x\r\n"
	                    "l: 2\r\n\r\nab"),
	        0);
	assert_true(msg.has_content_length);
	assert_int_equal(msg.content_length, 2);
	assert_string_equal(msg.body_error, "bad Content-Length");
}

/*
 * The top Via is parsed in place up to its comma; anything unusual takes
 * the general path: both must give what sip_via_parse() gives on the
 * element sip_elem_next() returns.
 */
static void check_top_via(const char *via_lines, int want_err)
{
	char text[512];
	const struct sip_via *top;
	struct sip_via ref;
	struct sip_elem_iter it;
	struct slice elem;
	const char *why;
	int n = snprintf(text, sizeof(text),
	                 "OPTIONS sip:a@b.example SIP/2.0\r\n%s\r\n",
	                 via_lines);

	assert_true(n > 0 && (size_t)n < sizeof(text));
	assert_int_equal(parse_exact(text), 0);
	assert_int_equal(sip_msg_top_via(&top, &msg), want_err);
	if (want_err != 0)
		return;
	sip_elem_iter_init(&it, &msg, SIP_HDR_VIA);
	assert_int_equal(sip_elem_next(&elem, &it), 0);
	assert_int_equal(sip_via_parse(&ref, elem, &why), 0);
	assert_ptr_equal(top->raw.p, ref.raw.p);
	assert_int_equal(top->raw.len, ref.raw.len);
	assert_ptr_equal(top->params.p, ref.params.p);
	assert_int_equal(top->params.len, ref.params.len);
	assert_ptr_equal(top->branch.p, ref.branch.p);
	assert_int_equal(top->branch.len, ref.branch.len);
	assert_ptr_equal(top->host.p, ref.host.p);
	assert_int_equal(top->host.len, ref.host.len);
	assert_int_equal(top->host_type, ref.host_type);
	assert_int_equal(top->port, ref.port);
}

static void test_top_via_paths(void **state)
{
	const struct sip_via *top;

	(void)state;
	/* fast: up to the comma, then LWS and another element */
	check_top_via("Via: SIP/2.0/UDP h.example:5060;branch=z9hG4bK1 ,"
	              " SIP/2.0/TCP h2;branch=z9hG4bK2\r\n",
	              0);
	assert_slice(msg.top_via.raw,
	             "SIP/2.0/UDP h.example:5060;branch=z9hG4bK1");
	assert_slice(msg.top_via.params, "branch=z9hG4bK1");
	/* a quoted comma in a parameter */
	check_top_via("Via: SIP/2.0/UDP h;x=\"a,b\";branch=z9hG4bK1,"
	              "SIP/2.0/UDP h2\r\n",
	              0);
	assert_slice(msg.top_via.branch, "z9hG4bK1");
	/* not "SIP/2.0/" as it is, IPv6, a host of 16 bytes and more */
	check_top_via("Via: sip / 2.0 / udp [2001:db8::1]:5061\r\n", 0);
	assert_int_equal(msg.top_via.host_type, SIP_HOST_IPV6);
	check_top_via("Via: SIP/2.0/UDP abcdefghij.klmno\r\n", 0);
	check_top_via("Via: SIP/2.0/UDP abcdefghij.klmnop\r\n", 0);
	check_top_via("Via: SIP/2.0/UDP abcdefghij.klmnopq.rs.\r\n", 0);
	check_top_via("Via: SIP/2.0/UDP 192.0.2.1;received=192.0.2.9\r\n", 0);
	assert_int_equal(msg.top_via.host_type, SIP_HOST_IPV4);
	/* the first Via header empty: the element is in the next one */
	check_top_via("Via: \r\nVia: SIP/2.0/UDP h2;branch=z9hG4bK2\r\n", 0);
	assert_slice(msg.top_via.branch, "z9hG4bK2");
	/* errors: trailing comma, empty element, bad hosts */
	check_top_via("Via: SIP/2.0/UDP h;branch=z9hG4bK1,\r\n", EBADMSG);
	check_top_via("Via: ,SIP/2.0/UDP h\r\n", EBADMSG);
	check_top_via("Via: SIP/2.0/UDP 256.1.1.1\r\n", EBADMSG);
	assert_string_equal(msg.error, "bad Via sent-by");
	check_top_via("Via: SIP/2.0/UDP a-.example\r\n", EBADMSG);
	check_top_via("Via: SIP/2.0/UDP a..example\r\n", EBADMSG);
	check_top_via("Via: SIP/2.0/UDP 1abcdefghijklmnopq\r\n", EBADMSG);
	check_top_via("Via: SIP/2.0/UDP h <x>\r\n", EBADMSG);
	assert_int_equal(parse_exact("OPTIONS sip:a@b.example SIP/2.0\r\n"
	                             "Via: \r\n\r\n"),
	                 0);
	assert_int_equal(sip_msg_top_via(&top, &msg), ENOENT);
}

/* List splitting where the bytes that matter straddle 16-byte chunks,
 * and in values too short for them. */
static void test_list_chunks(void **state)
{
	static const char *const elems[] = {
	        "<sip:a-very-long-user-name@host.example;lr>",
	        "\"a, very long display name, with commas\" <sip:b@c>",
	        "<sip:x@y;p=\"q,r\">;tag=1",
	        "a",
	};
	struct sip_list_iter it;
	struct slice elem;
	char value[256] = "";

	(void)state;
	for (unsigned i = 0; i < 4; i++) {
		if (i > 0)
			strcat(value, " ,\t");
		strcat(value, elems[i]);
	}
	sip_list_init(&it, exact(value));
	for (unsigned i = 0; i < 4; i++) {
		assert_int_equal(sip_list_next(&elem, &it), 0);
		assert_slice(elem, elems[i]);
	}
	assert_int_equal(sip_list_next(&elem, &it), ENOENT);

	sip_list_init(&it, exact("<a,b>,c"));
	assert_int_equal(sip_list_next(&elem, &it), 0);
	assert_slice(elem, "<a,b>");
	sip_list_init(&it, exact("<sip:a-long-uri-over-16, b"));
	assert_int_equal(sip_list_next(&elem, &it), EBADMSG);
	sip_list_init(&it, exact("\"an unterminated display, name"));
	assert_int_equal(sip_list_next(&elem, &it), EBADMSG);
}

/* The <URI> scan looks for '>', ':' and bytes <= SP 16 at a time. */
static void test_addr_uri_scan(void **state)
{
	struct sip_addr a;
	const char *why;

	(void)state;
	assert_int_equal(sip_addr_parse(&a,
	                                exact("<sip:a-long-user@host.example"
	                                      ":5060;transport=tcp>;tag=x"),
	                                0, &why),
	                 0);
	assert_slice(a.uri, "sip:a-long-user@host.example:5060;transport=tcp");
	assert_slice(a.tag, "x");
	assert_int_equal(sip_addr_parse(&a,
	                                exact("<a-long-uri-without-scheme"
	                                      "-at-all>"),
	                                0, &why),
	                 EBADMSG);
	assert_string_equal(why, "URI without scheme");
	assert_int_equal(sip_addr_parse(&a,
	                                exact("<sip:a-long-user@host.exam"
	                                      "ple x>"),
	                                0, &why),
	                 EBADMSG);
	assert_string_equal(why, "whitespace in URI");
	assert_int_equal(sip_addr_parse(&a,
	                                exact("<sip:a-long-user@host.exam"
	                                      "ple"),
	                                0, &why),
	                 EBADMSG);
	assert_string_equal(why, "unterminated <URI>");
	/* the ':' after the '>' does not count */
	assert_int_equal(
	        sip_addr_parse(&a, exact("<sip-a@b>;x=\"a:b\""), 0, &why),
	        EBADMSG);
	assert_string_equal(why, "URI without scheme");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_request),
	        cmocka_unit_test(test_response),
	        cmocka_unit_test(test_bad_start_lines),
	        cmocka_unit_test(test_folding_and_compact_forms),
	        cmocka_unit_test(test_header_names),
	        cmocka_unit_test(test_lists),
	        cmocka_unit_test(test_list_errors),
	        cmocka_unit_test(test_addr_forms),
	        cmocka_unit_test(test_via_forms),
	        cmocka_unit_test(test_numbers),
	        cmocka_unit_test(test_body_delimiting),
	        cmocka_unit_test(test_limits),
	        cmocka_unit_test(test_hdr_lookup_by_name),
	        cmocka_unit_test(test_index_fast_and_general_paths),
	        cmocka_unit_test(test_index_bad_names),
	        cmocka_unit_test(test_index_short_and_long_lines),
	        cmocka_unit_test(test_body_error_order),
	        cmocka_unit_test(test_top_via_paths),
	        cmocka_unit_test(test_list_chunks),
	        cmocka_unit_test(test_addr_uri_scan),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
