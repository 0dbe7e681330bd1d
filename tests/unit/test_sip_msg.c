/* Unit tests of the message parser: start lines, the header index,
 * folding, compact forms, list splitting, the cached decoders, limits. */
#include <ctype.h>
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../common/sip_same_decoded.h"
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

	/* a response to a request at the limit, with the Via of the proxy
	 * that sent it on top: one more is accepted, not two */
	const char *two_vias_reply = "SIP/2.0 400 Bad Request\r\n"
	                             "Via: SIP/2.0/UDP h1;branch=z9hG4bK1\r\n"
	                             "Via: SIP/2.0/UDP h2;branch=z9hG4bK2\r\n"
	                             "From: <sip:a@b.example>;tag=1\r\n"
	                             "To: <sip:a@b.example>;tag=2\r\n"
	                             "Call-ID: x\r\nCSeq: 1 OPTIONS\r\n\r\n";
	assert_int_equal(sip_msg_parse(&msg, two_vias_reply,
	                               strlen(two_vias_reply), &lim),
	                 0);
	assert_int_equal(sip_msg_check(&status, &msg), 0);
	lim.max_vias = 0;
	assert_int_equal(sip_msg_parse(&msg, two_vias_reply,
	                               strlen(two_vias_reply), &lim),
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

/* Parses an OPTIONS with these Via lines and, after its CSeq, these
 * other lines (none when empty). */
static void parse_options_with(const char *vias, const char *extra)
{
	char text[512];
	int n = snprintf(text, sizeof(text),
	                 "OPTIONS sip:a@b.example SIP/2.0\r\n%s\r\n"
	                 "From: <sip:a@b.example>;tag=1\r\n"
	                 "To: <sip:a@b.example>\r\n"
	                 "Call-ID: x\r\nCSeq: 1 OPTIONS\r\n%s%s\r\n",
	                 vias, extra, *extra ? "\r\n" : "");

	assert_true(n > 0 && (size_t)n < sizeof(text));
	assert_int_equal(parse_exact(text), 0);
}

/*
 * sip_msg_check() takes the Vias after the top one (which it decoded
 * first) from where the top one ends: it must accept and refuse what
 * the whole list, split again (sip_msg_vias()), does.
 */
static void test_check_vias_after_the_top(void **state)
{
	static const struct {
		const char *vias;  /* the Via lines */
		const char *error; /* NULL: accepted */
	} cases[] = {
	        {"Via: SIP/2.0/UDP h1;branch=z9hG4bK1", NULL},
	        {"Via: SIP/2.0/UDP h1;branch=z9hG4bK1 , SIP/2.0/UDP h2", NULL},
	        {"Via: SIP/2.0/UDP h1;branch=z9hG4bK1 ,\r\n SIP/2.0/UDP h2",
	         NULL},
	        {"Via: SIP/2.0/UDP h1;branch=z9hG4bK1;x=\"a, b\" ,"
	         "SIP/2.0/TCP h2",
	         NULL},
	        {"Via: SIP/2.0/UDP [::1]:5060;branch=z9hG4bK1,"
	         "SIP/2.0/UDP h2\r\nVia: SIP/2.0/UDP h3",
	         NULL},
	        {"Via: SIP/2.0/UDP h1;branch=z9hG4bK1 , ",
	         "malformed Via header"},
	        {"Via: SIP/2.0/UDP h1;branch=z9hG4bK1,,SIP/2.0/UDP h2",
	         "malformed Via header"},
	        {"Via: SIP/2.0/UDP h1;branch=z9hG4bK1, bogus", ""},
	        {"Via: SIP/2.0/UDP h1;branch=z9hG4bK1\r\nVia: SIP/2.0/UDP", ""},
	};
	struct sip_via vias[8];
	unsigned n, status;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_options_with(cases[i].vias, "");
		int whole = sip_msg_vias(vias, 8, &n, &msg);
		int err = sip_msg_check(&status, &msg);
		assert_int_equal(err, whole);
		if (cases[i].error == NULL) {
			assert_int_equal(err, 0);
		} else {
			assert_int_equal(err, EBADMSG);
			if (cases[i].error[0])
				assert_string_equal(msg.error, cases[i].error);
		}
	}
}

/* A single-valued header present twice (a second line, or its compact
 * form) is refused with the header's name; once each, the message
 * passes. */
static void test_check_single_valued_twice(void **state)
{
	static const struct {
		const char *line, *error;
	} cases[] = {
	        {"f: <sip:x@b.example>;tag=2", "several From headers"},
	        {"To: <sip:y@b.example>", "several To headers"},
	        {"i: other", "several Call-ID headers"},
	        {"CSeq: 2 OPTIONS", "several CSeq headers"},
	        {"Max-Forwards: 5\r\nMax-Forwards: 6",
	         "several Max-Forwards headers"},
	        {"Expires: 5\r\nExpires: 6", "several Expires headers"},
	        {"l: 0\r\nContent-Length: 0", "several Content-Length headers"},
	        {"Max-Forwards: 5\r\nExpires: 6\r\nl: 0", NULL},
	};
	unsigned status;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		parse_options_with("Via: SIP/2.0/UDP h;branch=z9hG4bK1",
		                   cases[i].line);
		if (cases[i].error == NULL) {
			assert_int_equal(sip_msg_check(&status, &msg), 0);
			continue;
		}
		assert_int_equal(sip_msg_check(&status, &msg), EBADMSG);
		assert_int_equal(status, 400);
		assert_string_equal(msg.error, cases[i].error);
	}
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

/* ------------------------------------------------ fast paths (issue 2) */

/*
 * A message made of the start line and one header line, parsed from an
 * exactly sized copy (ASan sees any over-read); the header is hdrs[0].
 */
static int parse_line(const char *line)
{
	char text[512];
	int n = snprintf(text, sizeof(text),
	                 "OPTIONS sip:a@b.example SIP/2.0\r\n%s\r\n"
	                 "Call-ID: c\r\n\r\n",
	                 line);

	assert_true(n > 0 && (size_t)n < sizeof(text));
	return parse_exact(text);
}

/*
 * Header names are found from the 16 bytes at the start of a line by one
 * compare: every name and compact form in any case, names that share a
 * prefix or are one letter longer or shorter, lines whose colon is at the
 * edges of those 16 bytes, values with LWS around them.
 */
static void test_index_name_keys(void **state)
{
	static const struct {
		const char *line;
		enum sip_hdr_id id;
		const char *name, *value;
	} cases[] = {
	        {"To: x", SIP_HDR_TO, "To", "x"},
	        {"tO:x", SIP_HDR_TO, "tO", "x"},
	        {"Tok: x", SIP_HDR_OTHER, "Tok", "x"},
	        {"T: x", SIP_HDR_TO, "T", "x"},
	        {"Tt: x", SIP_HDR_OTHER, "Tt", "x"},
	        {"i: x", SIP_HDR_CALL_ID, "i", "x"},
	        {"I:x", SIP_HDR_CALL_ID, "I", "x"},
	        {"ii: x", SIP_HDR_OTHER, "ii", "x"},
	        {"q: x", SIP_HDR_OTHER, "q", "x"},
	        {"Content-Length: 0", SIP_HDR_CONTENT_LENGTH, "Content-Length",
	         "0"},
	        {"Content-Language: de", SIP_HDR_OTHER, "Content-Language",
	         "de"},
	        {"Content-Lengt: 0", SIP_HDR_OTHER, "Content-Lengt", "0"},
	        {"Content-Type: a/b", SIP_HDR_CONTENT_TYPE, "Content-Type",
	         "a/b"},
	        {"content-encoding: gzip", SIP_HDR_CONTENT_ENCODING,
	         "content-encoding", "gzip"},
	        {"Session-Expires: 90", SIP_HDR_SESSION_EXPIRES,
	         "Session-Expires", "90"},
	        {"Session-Expire: 90", SIP_HDR_OTHER, "Session-Expire", "90"},
	        {"Session-Expiress: 90", SIP_HDR_OTHER, "Session-Expiress",
	         "90"},
	        {"RSeq: 1", SIP_HDR_RSEQ, "RSeq", "1"},
	        {"RAck: 1 1 INVITE", SIP_HDR_RACK, "RAck", "1 1 INVITE"},
	        {"Record-Route: <sip:r>", SIP_HDR_RECORD_ROUTE, "Record-Route",
	         "<sip:r>"},
	        {"Route: <sip:r>", SIP_HDR_ROUTE, "Route", "<sip:r>"},
	        {"Routes: <sip:r>", SIP_HDR_OTHER, "Routes", "<sip:r>"},
	        {"Proxy-Authorization: x", SIP_HDR_PROXY_AUTHORIZATION,
	         "Proxy-Authorization", "x"},
	        /* LWS around the value or the name: the general path */
	        {"Via:  x", SIP_HDR_VIA, "Via", "x"},
	        {"Via:\tx", SIP_HDR_VIA, "Via", "x"},
	        {"Via: x ", SIP_HDR_VIA, "Via", "x"},
	        {"Via: x\t", SIP_HDR_VIA, "Via", "x"},
	        {"Via : x", SIP_HDR_VIA, "Via", "x"},
	        {"Via\t: x", SIP_HDR_VIA, "Via", "x"},
	        /* colon at byte 15, 16 and 17 of the line */
	        {"Abcdefghijklmno: x", SIP_HDR_OTHER, "Abcdefghijklmno", "x"},
	        {"Abcdefghijklmnop: x", SIP_HDR_OTHER, "Abcdefghijklmnop", "x"},
	        {"Abcdefghijklmnopq:x", SIP_HDR_OTHER, "Abcdefghijklmnopq",
	         "x"},
	        /* a value that starts with a colon, or is one */
	        {"Subject: :x", SIP_HDR_SUBJECT, "Subject", ":x"},
	        {"Subject::", SIP_HDR_SUBJECT, "Subject", ":"},
	};
	char buf[64];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse_line(cases[i].line), 0);
		assert_int_equal(msg.nhdrs, 2);
		assert_int_equal(msg.hdrs[0].id, cases[i].id);
		assert_slice(msg.hdrs[0].name, cases[i].name);
		assert_slice(msg.hdrs[0].value, cases[i].value);
		assert_int_equal(msg.hdrs[1].id, SIP_HDR_CALL_ID);
	}
	/* every full name and compact form, upper- and lower-case */
	for (unsigned id = 1; id < SIP_HDR__COUNT; id++) {
		const char *name = sip_hdr_name((enum sip_hdr_id)id);
		for (int upper = 0; upper < 2; upper++) {
			size_t n = strlen(name);
			for (size_t k = 0; k < n; k++)
				buf[k] = (char)(upper ? toupper(name[k])
				                      : tolower(name[k]));
			snprintf(buf + n, sizeof(buf) - n, ": v");
			assert_int_equal(parse_line(buf), 0);
			assert_int_equal(msg.hdrs[0].id, id);
		}
	}
	/* a continuation line is never a header of its own */
	assert_int_equal(parse_line("Subject: a\r\n To: b"), 0);
	assert_int_equal(msg.nhdrs, 2);
	assert_slice(msg.hdrs[0].value, "a\r\n To: b");
	assert_int_equal(sip_msg_hdr_count(&msg, SIP_HDR_TO), 0);
}

/* The index of a message shorter than its line-end windows need, and of
 * a limit below 64 lines: the checks the loop hoists out are made line
 * by line. */
static void test_index_near_the_end(void **state)
{
	struct sip_limits lim = SIP_LIMITS_DEFAULT;
	const char *text = "BYE sip:a@b SIP/2.0\r\nVia: SIP/2.0/UDP h\r\n"
	                   "To: <sip:a@b>\r\nl: 0\r\n\r\n";

	(void)state;
	assert_int_equal(parse_exact(text), 0);
	assert_int_equal(msg.nhdrs, 3);
	assert_int_equal(msg.hdrs[2].id, SIP_HDR_CONTENT_LENGTH);
	assert_true(msg.has_content_length);
	lim.max_headers = 2;
	assert_int_equal(sip_msg_parse(&msg, text, strlen(text), &lim), E2BIG);
	lim.max_headers = 3;
	assert_int_equal(sip_msg_parse(&msg, text, strlen(text), &lim), 0);
	assert_int_equal(msg.nhdrs, 3);
}

/* The usual start lines are read without a byte loop; anything else
 * gives what the general parsers give. */
static void test_start_line_forms(void **state)
{
	(void)state;
	assert_int_equal(parse_exact("INVITE sip:a@b.example SIP/2.0\r\n"
	                             "Via: x\r\n\r\n"),
	                 0);
	assert_null(msg.line_error);
	assert_int_equal(msg.method_id, SIP_METHOD_INVITE);
	assert_slice(msg.ruri, "sip:a@b.example");
	assert_slice(msg.version, "SIP/2.0");
	/* a SP inside the Request-URI, two SPs, no SP before the version */
	assert_int_equal(parse_exact("INVITE sip:a b.example SIP/2.0\r\n"
	                             "Via: x\r\n\r\n"),
	                 0);
	assert_string_equal(msg.line_error,
	                    "malformed request line: bad SIP version");
	assert_slice(msg.ruri, "sip:a");
	assert_int_equal(parse_exact("INVITE  sip:a@b.example SIP/2.0\r\n"
	                             "Via: x\r\n\r\n"),
	                 0);
	assert_string_equal(msg.line_error,
	                    "malformed request line: bad Request-URI");
	assert_int_equal(parse_exact("INVITE sip:a@b.exampleSIP/2.0\r\n"
	                             "Via: x\r\n\r\n"),
	                 0);
	assert_non_null(msg.line_error);
	/* a method not known, or not in capitals, is a method still */
	assert_int_equal(parse_exact("FOO sip:a@b.example SIP/2.0\r\n"
	                             "Via: x\r\n\r\n"),
	                 0);
	assert_null(msg.line_error);
	assert_int_equal(msg.method_id, SIP_METHOD_OTHER);
	assert_slice(msg.method, "FOO");
	assert_int_equal(parse_exact("invite sip:a@b.example SIP/2.0\r\n"
	                             "Via: x\r\n\r\n"),
	                 0);
	assert_int_equal(msg.method_id, SIP_METHOD_OTHER);
	assert_int_equal(parse_exact("INVITE sip:a@b.example SIP/2.1\r\n"
	                             "Via: x\r\n\r\n"),
	                 0);
	assert_null(msg.line_error);
	assert_slice(msg.version, "SIP/2.1");
	/* status lines */
	assert_int_equal(parse_exact("SIP/2.0 180 Ringing\r\nVia: x\r\n\r\n"),
	                 0);
	assert_int_equal(msg.status, 180);
	assert_slice(msg.reason, "Ringing");
	assert_int_equal(parse_exact("SIP/2.0 200 \r\nVia: x\r\n\r\n"), 0);
	assert_int_equal(msg.status, 200);
	assert_int_equal(msg.reason.len, 0);
	assert_int_equal(parse_exact("SIP/2.0 200\r\nVia: x\r\n\r\n"), 0);
	assert_int_equal(msg.status, 200);
	assert_int_equal(parse_exact("sip/2.0 200 OK\r\nVia: x\r\n\r\n"), 0);
	assert_int_equal(msg.status, 200);
	assert_slice(msg.version, "sip/2.0");
	assert_int_equal(parse_exact("SIP/2.0 099 Early\r\nVia: x\r\n\r\n"),
	                 EBADMSG);
	assert_int_equal(parse_exact("SIP/2.0 2000 OK\r\nVia: x\r\n\r\n"),
	                 EBADMSG);
	assert_int_equal(parse_exact("SIP/2.0 2x0 OK\r\nVia: x\r\n\r\n"),
	                 EBADMSG);
}

/* The Via parameters the fast path takes, and the shapes it leaves to
 * the general path, give what sip_via_parse() gives on the element. */
static void test_via_param_forms(void **state)
{
	const struct sip_via *top;

	(void)state;
	check_top_via("Via: SIP/2.0/UDP h;BRANCH=z9hG4bK1\r\n", 0);
	assert_slice(msg.top_via.branch, "z9hG4bK1");
	check_top_via("Via: SIP/2.0/UDP h;branch=z9hG4bK1;rport\r\n", 0);
	assert_true(msg.top_via.has_rport);
	assert_slice(msg.top_via.branch, "z9hG4bK1");
	check_top_via("Via: SIP/2.0/UDP h;rport=5;branch=z9hG4bK-1.2!x%y\r\n",
	              0);
	assert_slice(msg.top_via.rport, "5");
	assert_slice(msg.top_via.branch, "z9hG4bK-1.2!x%y");
	check_top_via("Via: SIP/2.0/UDP h;branchx=1;branc=2\r\n", 0);
	assert_null(msg.top_via.branch.p);
	check_top_via("Via: SIP/2.0/UDP h;branch=1;branch=2\r\n", 0);
	assert_slice(msg.top_via.branch, "2");
	check_top_via("Via: SIP/2.0/UDP h;branch=a:b\r\n", 0);
	assert_slice(msg.top_via.branch, "a:b");
	check_top_via("Via: SIP/2.0/UDP h;branch=\"q;r\"\r\n", 0);
	assert_slice(msg.top_via.branch, "\"q;r\"");
	check_top_via("Via: SIP/2.0/UDP h ; branch = x\r\n", 0);
	assert_slice(msg.top_via.branch, "x");
	check_top_via("Via: SIP/2.0/UDP h;branch=x, SIP/2.0/UDP g;branch=y\r\n",
	              0);
	assert_slice(msg.top_via.branch, "x");
	assert_slice(msg.top_via.raw, "SIP/2.0/UDP h;branch=x");
	check_top_via("Via: SIP/2.0/UDP h;branch=\r\n", EBADMSG);
	check_top_via("Via: SIP/2.0/UDP h;branch=x=y\r\n", EBADMSG);
	check_top_via("Via: SIP/2.0/UDP h;;branch=x\r\n", EBADMSG);
	check_top_via("Via: SIP/2.0/UDP h;branch=x;\r\n", EBADMSG);
	/* the transport and the SP after it */
	check_top_via("Via: SIP/2.0/WSS h.example;branch=x\r\n", 0);
	assert_slice(msg.top_via.transport, "WSS");
	check_top_via("Via: SIP/2.0/UDP  h.example\r\n", 0);
	assert_slice(msg.top_via.host, "h.example");
	check_top_via("Via: SIP/2.0/UDP\th.example\r\n", 0);
	check_top_via("Via: SIP/2.0/UDPh.example\r\n", EBADMSG);
	/* the caches answer a second call the same */
	assert_int_equal(parse_line("Via: SIP/2.0/UDP h;branch=z"), 0);
	assert_int_equal(sip_msg_top_via(&top, &msg), 0);
	assert_ptr_equal(top, &msg.top_via);
	assert_int_equal(sip_msg_top_via(&top, &msg), 0);
	assert_slice(top->branch, "z");
}

static void assert_same_slice(struct slice a, struct slice b)
{
	assert_ptr_equal(a.p, b.p);
	assert_int_equal(a.len, b.len);
}

/* Everything sip_msg_parse() sets, field by field: a and b point into
 * the same buffer. */
static void assert_same_parse(const struct sip_msg *a, const struct sip_msg *b)
{
	assert_ptr_equal(a->buf, b->buf);
	assert_int_equal(a->len, b->len);
	assert_int_equal(a->is_request, b->is_request);
	assert_same_slice(a->start_line, b->start_line);
	assert_same_slice(a->method, b->method);
	assert_int_equal(a->method_id, b->method_id);
	assert_same_slice(a->ruri, b->ruri);
	assert_int_equal(a->status, b->status);
	assert_same_slice(a->reason, b->reason);
	assert_same_slice(a->version, b->version);
	assert_same_slice(a->body, b->body);
	assert_int_equal(a->hdrs_end, b->hdrs_end);
	assert_int_equal(a->has_content_length, b->has_content_length);
	assert_int_equal(a->content_length, b->content_length);
	assert_ptr_equal(a->line_error, b->line_error);
	assert_ptr_equal(a->body_error, b->body_error);
	assert_int_equal(a->max_vias, b->max_vias);
	assert_int_equal(a->nhdrs, b->nhdrs);
	assert_memory_equal(a->first, b->first, sizeof(a->first));
	for (unsigned i = 0; i < a->nhdrs; i++) {
		const struct sip_hdr *x = &a->hdrs[i], *y = &b->hdrs[i];
		assert_same_slice(x->name, y->name);
		assert_same_slice(x->value, y->value);
		assert_int_equal(x->off, y->off);
		assert_int_equal(x->len, y->len);
		assert_int_equal(x->id, y->id);
		assert_int_equal(x->next, y->next);
	}
}

/* Every cached decoder of m, whatever it answers. */
static void decode_all(struct sip_msg *m)
{
	const struct sip_via *via;
	const struct sip_addr *addr;
	const struct sip_uri *uri;
	const struct sip_cseq *cseq;
	const struct sip_rack *rack;
	struct slice cid;
	uint32_t num;

	(void)sip_msg_top_via(&via, m);
	(void)sip_msg_from(&addr, m);
	(void)sip_msg_to(&addr, m);
	(void)sip_msg_from_uri(&uri, m);
	(void)sip_msg_to_uri(&uri, m);
	(void)sip_msg_request_uri(&uri, m);
	(void)sip_msg_call_id(&cid, m);
	(void)sip_msg_cseq(&cseq, m);
	(void)sip_msg_max_forwards(&num, m);
	(void)sip_msg_expires(&num, m);
	(void)sip_msg_rseq(&num, m);
	(void)sip_msg_rack(&rack, m);
}

/* A copy of a parse moved to a copy of the bytes is what parsing the
 * copy gives, decoders included: transactions keep their request so. */
static void test_copy_is_a_parse_of_the_copy(void **state)
{
	static const char *const texts[] = {
	        INVITE_HEAD "Content-Length: 4\r\n\r\nbody",
	        /* trailing octets after the body are not part of it */
	        INVITE_HEAD "Content-Length: 2\r\n\r\nbody",
	        /* folding, an unknown header, compact forms, no body */
	        "OPTIONS sip:x@y SIP/2.0\r\nv: SIP/2.0/UDP "
	        "h;branch=z9hG4bKa\r\n"
	        "f: <sip:a@b>;tag=1\r\nt: <sip:x@y>\r\ni: c1\r\n"
	        "CSeq: 1\r\n OPTIONS\r\nX-Thing:  a ,\r\n\tb\r\nl: 0\r\n\r\n",
	        /* a response, and a defect kept for a 400: no empty line */
	        "SIP/2.0 180 Ringing\r\nVia: SIP/2.0/UDP h;branch=z9hG4bKb\r\n"
	        "From: <sip:a@b>;tag=1\r\nTo: <sip:x@y>;tag=2\r\nCall-ID: "
	        "c2\r\n"
	        "CSeq: 2 INVITE\r\n",
	        /* a request line defect kept for a 400 */
	        "INVITE sip:x@y SIP/7.0\r\nVia: SIP/2.0/UDP h\r\n\r\n",
	        /* every slice of the decoded structs set */
	        "INVITE sips:u:pw@h.example:5;transport=tcp;maddr=m;user=phone"
	        ";method=INVITE;ttl=3;lr?X=y SIP/2.0\r\n"
	        "Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bKc;received=h"
	        ";rport=7;maddr=m;ttl=2\r\n"
	        "From: \"A\" "
	        "<sip:a:pw@b;transport=udp;maddr=m;user=ip;method=BYE"
	        ";ttl=1?h=v>;tag=1;expires=5;q=0.5\r\n"
	        "To: \"B\" <sip:x:pw@y;transport=udp;maddr=m;user=ip;method=BYE"
	        ";ttl=1?h=v>;tag=2;expires=5;q=0.5\r\n"
	        "Call-ID: c3\r\nCSeq: 3 INVITE\r\nMax-Forwards: 9\r\n"
	        "Expires: 60\r\nRSeq: 4\r\nRAck: 4 3 INVITE\r\n\r\n",
	};
	struct sip_limits lim = SIP_LIMITS_DEFAULT;
	struct sip_msg *src = malloc(sizeof(*src));
	struct sip_msg *parsed = malloc(sizeof(*parsed));

	(void)state;
	assert_non_null(src);
	assert_non_null(parsed);
	for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
		assert_int_equal(
		        sip_msg_parse(src, texts[i], strlen(texts[i]), &lim),
		        0);
		/* what the source decoded moves to the copy (nothing, for
		 * the first) */
		if (i > 0)
			decode_all(src);
		char *buf = malloc(src->len);
		assert_non_null(buf);
		memcpy(buf, src->buf, src->len);
		struct sip_msg *dst = malloc(SIP_MSG_SIZE(src->nhdrs));
		assert_non_null(dst);
		sip_msg_copy(dst, src, buf);
		assert_int_equal(dst->decoded,
		                 src->decoded & (SIP_DEC_VIA | SIP_DEC_FROM |
		                                 SIP_DEC_TO | SIP_DEC_CALL_ID |
		                                 SIP_DEC_CSEQ | SIP_DEC_RURI));
		assert_int_equal(dst->failed, 0);
		/* no slice of the copy still points into the source */
		for (size_t off = offsetof(struct sip_msg, decoded);
		     off + sizeof(char *) <= offsetof(struct sip_msg, hdrs);
		     off += sizeof(char *)) {
			const char *p;
			memcpy(&p, (const char *)dst + off, sizeof(p));
			assert_false(p >= src->buf && p <= src->buf + src->len);
		}
		assert_int_equal(sip_msg_parse(parsed, buf, src->len, &lim), 0);
		assert_same_parse(dst, parsed);
		/* and the copy's decoded fields are a fresh parse's */
		assert_true(sip_same_decoded(dst, parsed));
		free(dst);
		free(buf);
	}
	free(parsed);
	free(src);
}

/* A well-formed OPTIONS but for what its Request-URI and To URI say. */
#define OPTIONS_WITH(ruri, to_uri)                                             \
	"OPTIONS " ruri " SIP/2.0\r\n"                                         \
	"Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"                               \
	"From: <sip:a@b.example>;tag=1\r\n"                                    \
	"To: <" to_uri ">\r\nCall-ID: c\r\nCSeq: 1 OPTIONS\r\n\r\n"

/* The URIs of From and To, parsed once and kept; a bad one is remembered
 * with the reason sip_msg_check() answers with. */
static void test_addr_uris_cached(void **state)
{
	const struct sip_uri *u, *again;
	unsigned status;

	(void)state;
	assert_int_equal(parse_line("From: Bob <sip:bob@192.0.2.1:5070>;tag=1"),
	                 0);
	assert_int_equal(sip_msg_from_uri(&u, &msg), 0);
	assert_slice(u->user, "bob");
	assert_slice(u->host, "192.0.2.1");
	assert_int_equal(u->port, 5070);
	assert_int_equal(sip_msg_from_uri(&again, &msg), 0);
	assert_ptr_equal(again, u);
	assert_int_equal(sip_msg_to_uri(&u, &msg), ENOENT); /* no To */

	assert_int_equal(parse_exact(OPTIONS_WITH("sip:a@b.example",
	                                          "sip:c@d.example:99999")),
	                 0);
	assert_int_equal(sip_msg_to_uri(&u, &msg), EBADMSG);
	assert_string_equal(msg.error, "bad To URI");
	msg.error = NULL;
	assert_int_equal(sip_msg_to_uri(&u, &msg), EBADMSG);
	assert_string_equal(msg.error, "bad To URI"); /* remembered */
	assert_int_equal(sip_msg_check(&status, &msg), EBADMSG);
	assert_int_equal(status, 400);
	assert_int_equal(sip_msg_from_uri(&u, &msg), 0);
	assert_slice(u->host, "b.example");
}

/* A response is relayed by its Via: sip_msg_check() leaves the URIs of
 * its From and To alone (a request's are checked above), but still
 * checks its Contact URIs, which a dialog takes as the remote target. */
static void test_response_check_skips_from_to_uris(void **state)
{
	const struct sip_uri *u;
	unsigned status;

	(void)state;
	assert_int_equal(parse_exact("SIP/2.0 200 OK\r\n"
	                             "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
	                             "From: <sip:a@b.example:99999>;tag=1\r\n"
	                             "To: <sip:c@[::1>;tag=2\r\n"
	                             "Call-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"),
	                 0);
	assert_int_equal(sip_msg_check(&status, &msg), 0);
	/* asked for, they are parsed and found bad */
	assert_int_equal(sip_msg_from_uri(&u, &msg), EBADMSG);
	assert_string_equal(msg.error, "bad From URI");
	assert_int_equal(sip_msg_to_uri(&u, &msg), EBADMSG);
	assert_string_equal(msg.error, "bad To URI");

	assert_int_equal(parse_exact("SIP/2.0 200 OK\r\n"
	                             "Via: SIP/2.0/UDP h;branch=z9hG4bK1\r\n"
	                             "From: <sip:a@b.example>;tag=1\r\n"
	                             "To: <sip:c@d.example>;tag=2\r\n"
	                             "Contact: <sip:c@d.example:99999>\r\n"
	                             "Call-ID: c\r\nCSeq: 1 INVITE\r\n\r\n"),
	                 0);
	assert_int_equal(sip_msg_check(&status, &msg), EBADMSG);
	assert_string_equal(msg.error, "bad Contact URI");
}

/* The first Contact element: decoded alone on demand, kept by
 * sip_msg_contacts() (so by sip_msg_check()), failures remembered. */
static void test_first_contact_cached(void **state)
{
	const struct sip_addr *a, *again;
	struct sip_addr all[4];
	unsigned n;

	(void)state;
	assert_int_equal(parse_line("To: <sip:x@y>"), 0);
	assert_int_equal(sip_msg_contact(&a, &msg), ENOENT);

	/* alone: the second element is not looked at */
	assert_int_equal(parse_line("Contact: \"A\" <sip:a@h.example:5070>"
	                            ";expires=60, <sip:b@[::1"),
	                 0);
	assert_int_equal(sip_msg_contact(&a, &msg), 0);
	assert_slice(a->display, "A");
	assert_slice(a->uri, "sip:a@h.example:5070");
	assert_slice(a->expires, "60");
	assert_int_equal(sip_msg_contact(&again, &msg), 0);
	assert_ptr_equal(again, a);

	/* the list decoded: the first kept, the same as alone */
	assert_int_equal(parse_line("Contact: <sip:c@d.example>;q=0.5\r\n"
	                            "Contact: sip:e@f.example"),
	                 0);
	assert_int_equal(sip_msg_contacts(all, 4, &n, &msg), 0);
	assert_int_equal(n, 2);
	assert_int_equal(sip_msg_contact(&a, &msg), 0);
	assert_ptr_equal(a->uri.p, all[0].uri.p);
	assert_int_equal(a->uri.len, all[0].uri.len);
	assert_slice(a->q, "0.5");

	assert_int_equal(parse_line("Contact: *"), 0);
	assert_int_equal(sip_msg_contact(&a, &msg), 0);
	assert_true(a->star);

	assert_int_equal(parse_line("Contact: <sip:a@b"), 0);
	assert_int_equal(sip_msg_contact(&a, &msg), EBADMSG);
	assert_non_null(msg.error);
	assert_int_equal(sip_msg_contact(&a, &msg), EBADMSG); /* remembered */
}

/* The Request-URI: parsed once for the check and for routing. */
static void test_request_uri_cached(void **state)
{
	const struct sip_uri *u, *again;
	unsigned status;

	(void)state;
	assert_int_equal(parse(INVITE_HEAD "Content-Length: 0\r\n\r\n"), 0);
	assert_int_equal(sip_msg_request_uri(&u, &msg), 0);
	assert_slice(u->user, "bob");
	assert_slice(u->host, "biloxi.example.com");
	assert_int_equal(sip_msg_check(&status, &msg), 0);
	assert_int_equal(sip_msg_request_uri(&again, &msg), 0);
	assert_ptr_equal(again, u);

	assert_int_equal(parse("SIP/2.0 200 OK\r\nVia: SIP/2.0/UDP h\r\n\r\n"),
	                 0);
	assert_int_equal(sip_msg_request_uri(&u, &msg), ENOENT);

	assert_int_equal(parse_exact(OPTIONS_WITH("sip:a@b.example:99999",
	                                          "sip:c@d.example")),
	                 0);
	assert_int_equal(sip_msg_request_uri(&u, &msg), EBADMSG);
	assert_string_equal(msg.error, "bad Request-URI");
	msg.error = NULL;
	assert_int_equal(sip_msg_check(&status, &msg), EBADMSG);
	assert_int_equal(status, 400);
	assert_string_equal(msg.error, "bad Request-URI"); /* remembered */
}

/* From, To and Route forms: the usual ones by the fast path, the others
 * by the general one, field by field. */
static void test_addr_forms_fast(void **state)
{
	const struct sip_addr *a;
	struct sip_addr r;
	const char *why;

	(void)state;
	assert_int_equal(parse_line("From: \"Doe, John\" <sip:j@d>;tag=1"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), 0);
	assert_slice(a->display, "Doe, John");
	assert_slice(a->uri, "sip:j@d");
	assert_slice(a->params, "tag=1");
	assert_slice(a->tag, "1");
	assert_true(a->has_tag && a->bracketed && !a->star);
	assert_null(a->expires.p);
	assert_null(a->q.p);
	assert_int_equal(parse_line("From: <sip:j@d>;TAG=abc"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), 0);
	assert_slice(a->tag, "abc");
	assert_ptr_equal(a->display.p, a->raw.p); /* empty, at the '<' */
	assert_int_equal(a->display.len, 0);
	assert_int_equal(parse_line("From: <sip:j@d>;tag=a;x=1;tag=b"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), 0);
	assert_slice(a->tag, "b");
	assert_slice(a->params, "tag=a;x=1;tag=b");
	assert_int_equal(parse_line("From: <sip:j@d>;tagx=1"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), 0);
	assert_false(a->has_tag);
	assert_int_equal(parse_line("From: \"a\\\"b\" <sip:j@d> ;tag=1"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), 0);
	assert_slice(a->display, "a\\\"b");
	assert_slice(a->tag, "1");
	assert_int_equal(parse_line("From: Bob <sip:b@c>;tag=2"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), 0);
	assert_slice(a->display, "Bob");
	/* token display names: one SP between the words and before '<' (the
	 * fast path), or other whitespace (the general one) */
	assert_int_equal(parse_line("From: sipp <sip:u1@127.0.0.1:5060>;tag=1"),
	                 0);
	assert_int_equal(sip_msg_from(&a, &msg), 0);
	assert_slice(a->display, "sipp");
	assert_slice(a->uri, "sip:u1@127.0.0.1:5060");
	assert_slice(a->tag, "1");
	static const struct {
		const char *line, *display;
	} token_names[] = {
	        {"To: Bob Smith <sip:bob@example.com>", "Bob Smith"},
	        {"To: Bob<sip:bob@example.com>", "Bob"},
	        {"To: Bob  Smith\t<sip:bob@example.com>", "Bob  Smith"},
	};
	for (size_t i = 0; i < sizeof(token_names) / sizeof(token_names[0]);
	     i++) {
		assert_int_equal(parse_line(token_names[i].line), 0);
		assert_int_equal(sip_msg_to(&a, &msg), 0);
		assert_slice(a->display, token_names[i].display);
		assert_slice(a->uri, "sip:bob@example.com");
		assert_false(a->has_tag);
	}
	assert_int_equal(parse_line("To: Bob Smith sip:bob@example.com"), 0);
	assert_int_equal(sip_msg_to(&a, &msg), EBADMSG);
	/* a star first is Contact's, taken apart by the general path */
	assert_int_equal(sip_addr_parse(&r, exact("*<sip:bob@example.com>"),
	                                SIP_ADDR_ALLOW_STAR, &why),
	                 EBADMSG);
	assert_int_equal(
	        sip_addr_parse(&r, exact("*<sip:bob@example.com>"), 0, &why),
	        0);
	assert_slice(r.display, "*");
	assert_int_equal(parse_line("From: sip:b@c;tag=2"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), 0);
	assert_false(a->bracketed);
	assert_slice(a->uri, "sip:b@c");
	assert_slice(a->tag, "2");
	assert_int_equal(parse_line("From: <sip:j@d>;tag=a:b"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), 0);
	assert_slice(a->tag, "a:b");
	/* malformed: the reasons of the general path, cached */
	assert_int_equal(parse_line("From: <sip:j@d>;tag="), 0);
	assert_int_equal(sip_msg_from(&a, &msg), EBADMSG);
	assert_string_equal(msg.error, "empty parameter value");
	msg.error = NULL;
	assert_int_equal(sip_msg_from(&a, &msg), EBADMSG);
	assert_null(msg.error);
	assert_int_equal(parse_line("From: <sip:j@d>;tag=a b"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), EBADMSG);
	assert_string_equal(msg.error, "junk after <URI>");
	assert_int_equal(parse_line("From: <sip:j@d>;tag=a,b"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), EBADMSG);
	assert_int_equal(parse_line("From: <sipj@d>;tag=1"), 0);
	assert_int_equal(sip_msg_from(&a, &msg), EBADMSG);
	assert_string_equal(msg.error, "URI without scheme");
	assert_int_equal(parse_line("To: <>"), 0);
	assert_int_equal(sip_msg_to(&a, &msg), EBADMSG);
	assert_string_equal(msg.error, "empty URI");
	assert_int_equal(parse_line("To: \"x\"<sip:a@b>"), 0);
	assert_int_equal(sip_msg_to(&a, &msg), 0);
	assert_slice(a->display, "x");
	assert_int_equal(parse_line("Subject: x"), 0);
	assert_int_equal(sip_msg_to(&a, &msg), ENOENT);

	/* Route elements: <URI> alone, then anything */
	assert_int_equal(sip_addr_parse(&r, exact("<sip:r@h;lr>"), 0, &why), 0);
	assert_slice(r.uri, "sip:r@h;lr");
	assert_true(r.bracketed && !r.has_tag);
	assert_null(r.params.p);
	assert_int_equal(sip_addr_parse(&r, exact("<sip:r@h;lr>;x"), 0, &why),
	                 0);
	assert_slice(r.params, "x");
	assert_int_equal(sip_addr_parse(&r, exact("<sip:r@h>>"), 0, &why),
	                 EBADMSG);
	assert_string_equal(why, "junk after <URI>");
	/* out is written only on success */
	memset(&r, 0x5a, sizeof(r));
	assert_int_equal(sip_addr_parse(&r, exact("<sip:r@h"), 0, &why),
	                 EBADMSG);
	assert_int_equal(((unsigned char *)&r)[0], 0x5a);
}

/* Route lists of <URI> elements take a fast path through the iterator;
 * the other elements and the errors are the general path's. */
static void test_route_lists_fast(void **state)
{
	static const struct {
		const char *value;
		int n;
		const char *elems[3];
		int end;
	} cases[] = {
	        {"<sip:a>, <sip:b>", 2, {"<sip:a>", "<sip:b>"}, ENOENT},
	        {"<sip:a> ,<sip:b>", 2, {"<sip:a>", "<sip:b>"}, ENOENT},
	        {"<sip:a>,<sip:b>,<sip:c>",
	         3,
	         {"<sip:a>", "<sip:b>", "<sip:c>"},
	         ENOENT},
	        {"<sip:a;lr>;x=1, <sip:b>",
	         2,
	         {"<sip:a;lr>;x=1", "<sip:b>"},
	         ENOENT},
	        {"<sip:a,b>, <sip:c>", 2, {"<sip:a,b>", "<sip:c>"}, ENOENT},
	        {"<sip:a\"b>, <sip:c>", 0, {NULL}, EBADMSG},
	        {"<sip:a\"b\">, <sip:c>",
	         2,
	         {"<sip:a\"b\">", "<sip:c>"},
	         ENOENT},
	        {"<sip:a>,", 0, {NULL}, EBADMSG},
	        {"<sip:a>, ", 0, {NULL}, EBADMSG},
	        {"<sip:a>,,<sip:b>", 1, {"<sip:a>"}, EBADMSG},
	        {"<sip:a> x, <sip:b>", 2, {"<sip:a> x", "<sip:b>"}, ENOENT},
	        {"<sip:a", 0, {NULL}, EBADMSG},
	};
	char line[128];

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct sip_elem_iter it;
		struct slice e;
		int n = 0, err;
		snprintf(line, sizeof(line), "Route: %s", cases[i].value);
		assert_int_equal(parse_line(line), 0);
		sip_elem_iter_init(&it, &msg, SIP_HDR_ROUTE);
		while ((err = sip_elem_next(&e, &it)) == 0) {
			assert_true(n < cases[i].n);
			assert_slice(e, cases[i].elems[n]);
			n++;
		}
		assert_int_equal(err, cases[i].end);
		assert_int_equal(n, cases[i].n);
	}
	/* the elements of two Route lines, in order */
	assert_int_equal(parse_exact("BYE sip:a@b SIP/2.0\r\n"
	                             "Route: <sip:a>, <sip:b>\r\nVia: x\r\n"
	                             "Route: <sip:c>\r\n\r\n"),
	                 0);
	struct sip_elem_iter it;
	struct slice e;
	sip_elem_iter_init(&it, &msg, SIP_HDR_ROUTE);
	assert_int_equal(sip_elem_next(&e, &it), 0);
	assert_slice(e, "<sip:a>");
	assert_int_equal(sip_elem_next(&e, &it), 0);
	assert_slice(e, "<sip:b>");
	assert_int_equal(sip_elem_next(&e, &it), 0);
	assert_slice(e, "<sip:c>");
	assert_int_equal(sip_elem_next(&e, &it), ENOENT);
}

/* CSeq numbers read a word at a time, Max-Forwards, Content-Length and
 * Call-ID by their fast paths, at the edges of each. */
static void test_number_and_call_id_forms(void **state)
{
	static const struct {
		const char *value;
		int err;
		uint32_t num;
		const char *method;
	} cseqs[] = {
	        {"1 INVITE", 0, 1, "INVITE"},
	        {"0001 ACK", 0, 1, "ACK"},
	        {"1234567 BYE", 0, 1234567, "BYE"},
	        {"12345678 BYE", 0, 12345678, "BYE"},
	        {"123456789 BYE", 0, 123456789, "BYE"},
	        {"2147483647 BYE", 0, 2147483647u, "BYE"},
	        {"2147483648 BYE", EBADMSG, 0, NULL},
	        {"99999999999999 BYE", EBADMSG, 0, NULL},
	        {"1  INVITE", 0, 1, "INVITE"},
	        {"1\tINVITE", 0, 1, "INVITE"},
	        {"1 invite", 0, 1, "invite"},
	        {"1 FOO", 0, 1, "FOO"},
	        {"1INVITE", EBADMSG, 0, NULL},
	        {"1 INVITE x", EBADMSG, 0, NULL},
	        {"x1 INVITE", EBADMSG, 0, NULL},
	        {"1 INV\"TE", EBADMSG, 0, NULL},
	};
	static const struct {
		const char *line;
		int err;
	} cids[] = {
	        {"Call-ID: a84b4c76e66710@10.0.0.4", 0},
	        {"Call-ID: a84b4c76e66710-very-long.call-id_1", 0},
	        {"Call-ID: a(b)<c>:d\\e\"f/g[h]i?j{k}l%m*n_o+p`q'r~s@t", 0},
	        {"Call-ID: a@b@c", EBADMSG},
	        {"Call-ID: @a", EBADMSG},
	        {"Call-ID: a@", EBADMSG},
	        {"Call-ID: a;b", EBADMSG},
	        {"Call-ID: a0123456789abcdef0123456789,", EBADMSG},
	        {"Call-ID: a b", EBADMSG},
	};
	const struct sip_cseq *cs;
	struct sip_cseq c;
	struct slice cid;
	uint32_t n;
	char line[128];
	const char *why;

	(void)state;
	for (size_t i = 0; i < sizeof(cseqs) / sizeof(cseqs[0]); i++) {
		snprintf(line, sizeof(line), "CSeq: %s", cseqs[i].value);
		assert_int_equal(parse_line(line), 0);
		assert_int_equal(sip_msg_cseq(&cs, &msg), cseqs[i].err);
		assert_int_equal(
		        sip_cseq_parse(&c, exact(cseqs[i].value), &why),
		        cseqs[i].err);
		if (cseqs[i].err)
			continue;
		assert_int_equal(cs->num, cseqs[i].num);
		assert_slice(cs->method, cseqs[i].method);
		assert_int_equal(cs->method_id, sip_method_lookup(slice_cstr(
		                                        cseqs[i].method)));
		assert_int_equal(c.num, cseqs[i].num);
		assert_slice(c.method, cseqs[i].method);
	}
	for (size_t i = 0; i < sizeof(cids) / sizeof(cids[0]); i++) {
		snprintf(line, sizeof(line),
		         "OPTIONS sip:a SIP/2.0\r\n%s\r\n\r\n", cids[i].line);
		assert_int_equal(parse_exact(line), 0);
		assert_int_equal(sip_msg_call_id(&cid, &msg), cids[i].err);
		if (cids[i].err == 0)
			assert_slice(cid, strchr(cids[i].line, ' ') + 1);
		else
			assert_string_equal(msg.error,
			                    "malformed Call-ID header");
	}
	assert_int_equal(parse_line("Max-Forwards: 255"), 0);
	assert_int_equal(sip_msg_max_forwards(&n, &msg), 0);
	assert_int_equal(n, 255);
	assert_int_equal(parse_line("Max-Forwards: 0070"), 0);
	assert_int_equal(sip_msg_max_forwards(&n, &msg), 0);
	assert_int_equal(n, 70);
	assert_int_equal(parse_line("Max-Forwards: 256"), 0);
	assert_int_equal(sip_msg_max_forwards(&n, &msg), EBADMSG);
	assert_int_equal(parse_line("Max-Forwards: 1234567890"), 0);
	assert_int_equal(sip_msg_max_forwards(&n, &msg), EBADMSG);
	assert_int_equal(parse_line("Max-Forwards: 7x"), 0);
	assert_int_equal(sip_msg_max_forwards(&n, &msg), EBADMSG);
	assert_int_equal(parse_exact("BYE sip:a SIP/2.0\r\nContent-Length: "
	                             "000000002\r\n\r\nab"),
	                 0);
	assert_int_equal(msg.content_length, 2);
	assert_int_equal(parse_exact("BYE sip:a SIP/2.0\r\nContent-Length: "
	                             "4294967295\r\n\r\nab"),
	                 0);
	assert_false(msg.has_content_length);
	assert_string_equal(msg.body_error,
	                    "Content-Length larger than the message");
	assert_int_equal(parse_exact("BYE sip:a SIP/2.0\r\nContent-Length: "
	                             "4294967296\r\n\r\nab"),
	                 0);
	assert_string_equal(msg.body_error, "bad Content-Length");
}

/* A response with an empty Via line before the one with the top element,
 * and second as the element after the top one. */
#define EMPTY_VIA_THEN(second)                                                 \
	"SIP/2.0 200 OK\r\n"                                                   \
	"Via: \r\n"                                                            \
	"Via: SIP/2.0/UDP a.example.com;branch=z9hG4bK1, " second "\r\n"       \
	"From: <sip:a@example.com>;tag=1\r\n"                                  \
	"To: <sip:b@example.com>;tag=2\r\n"                                    \
	"Call-ID: c1\r\nCSeq: 1 INVITE\r\n"                                    \
	"Content-Length: 0\r\n\r\n"

/* An empty Via line before the one with the top element: the check of
 * the elements after the top one starts on the line that has it (the
 * fuzzer found it reading from the empty line past its end). */
static void test_empty_via_line_before_the_top(void **state)
{
	const struct sip_via *via;
	unsigned status;

	(void)state;
	assert_int_equal(parse(EMPTY_VIA_THEN(
	                         "SIP/2.0/UDP b.example.com;branch=z9hG4bK2")),
	                 0);
	assert_int_equal(sip_msg_check(&status, &msg), 0);
	assert_int_equal(sip_msg_top_via(&via, &msg), 0);
	assert_slice(via->host, "a.example.com");

	assert_int_equal(parse(EMPTY_VIA_THEN("garbage")), 0);
	assert_int_equal(sip_msg_check(&status, &msg), EBADMSG);
}

/* A request for sip_sanity_check(): hdrs replace the usual lines between
 * the Request-URI line and Content-Length. */
static int parse_request(const char *ruri, const char *hdrs)
{
	static char text[2048];

	snprintf(text, sizeof(text),
	         "OPTIONS %s SIP/2.0\r\n%s"
	         "Content-Length: 0\r\n\r\n",
	         ruri, hdrs);
	return parse(text);
}

#define SANE_HDRS                                                              \
	"Via: SIP/2.0/UDP 192.0.2.1:5060;branch=z9hG4bK1\r\n"                  \
	"From: <sip:a@example.com>;tag=1\r\n"                                  \
	"To: <sip:b@example.com>\r\n"                                          \
	"Call-ID: c1\r\n"                                                      \
	"CSeq: 1 OPTIONS\r\n"

/* The checks of Kamailio's sanity module that a request the parser takes
 * (and sip_msg_check() may refuse) can fail, one at a time. */
static void test_sanity_checks(void **state)
{
	static const struct {
		const char *ruri, *hdrs;
		unsigned checks, code;
		const char *reason;
	} cases[] = {
	        {"sip:x@example.com", SANE_HDRS, SIP_SANITY_ALL, 0, NULL},
	        {"mailto:x@example.com", SANE_HDRS, 2, 416,
	         "Unsupported URI Scheme in Request URI"},
	        {"sip:x@example.com", SANE_HDRS "Expires: 4294967296\r\n", 256,
	         400, "Expires value is illegal"},
	        {"sip:x@example.com", SANE_HDRS "Expires: 4294967295\r\n", 256,
	         0, NULL},
	        {"sip:x@example.com",
	         "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
	         "From: <sip:a@example.com>;tag=1\r\nCall-ID: c1\r\n"
	         "CSeq: 1 OPTIONS\r\n",
	         4, 400, "Missing Required Header in Request"},
	        {"sip:x@example.com",
	         "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
	         "From: <sip:a@example.com>;tag=1\r\nTo: "
	         "<sip:b@example.com>\r\n"
	         "Call-ID: c1\r\nCSeq: 1 INVITE\r\n",
	         32, 400, "CSeq method does not match request method"},
	        {"sip:x@example.com",
	         "Via: SIP/2.0/UDP 192.0.2.1;branch=z9hG4bK1\r\n"
	         "From: <sip:a@example.com>;tag=1\r\nTo: "
	         "<sip:b@example.com>\r\n"
	         "Call-ID: c1\r\nCSeq: 1x OPTIONS\r\n",
	         64, 400, "CSeq number is illegal"},
	        {"sip:x@example.com", SANE_HDRS "Contact: <sip:@>\r\n", 1024, 0,
	         NULL}, /* uri_checks 7: Contact not asked for */
	        {"sip:x@example.com", SANE_HDRS "Proxy-Require: a, b\r\n", 512,
	         420, "Bad Proxy Require Extension"},
	        {"sip:x@example.com", SANE_HDRS "Proxy-Require: A\r\n", 512, 0,
	         NULL},
	};
	struct sip_sanity_verdict v;

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		assert_int_equal(parse_request(cases[i].ruri, cases[i].hdrs),
		                 0);
		int err = sip_sanity_check(&v, &msg, 0, cases[i].checks,
		                           SIP_SANITY_URI_DEFAULT,
		                           slice_cstr("a, c"));
		if (cases[i].code == 0) {
			assert_int_equal(err, 0);
			continue;
		}
		assert_int_equal(err, EBADMSG);
		assert_int_equal(v.code, cases[i].code);
		assert_string_equal(v.reason, cases[i].reason);
		if (v.code == 420)
			assert_slice(v.unsupported, "b");
	}
	/* uri_checks 8 parses the Contact */
	assert_int_equal(parse_request("sip:x@example.com",
	                               SANE_HDRS "Contact: <sip:@>\r\n"),
	                 0);
	assert_int_equal(sip_sanity_check(&v, &msg, 0, 1024, 8, SLICE_NULL),
	                 EBADMSG);
	assert_string_equal(v.reason, "Bad Contact URI");
}

/* Every extension a Proxy-Require names that the list lacks, in order. */
static void test_unsupported_extensions(void **state)
{
	struct slice ext[4];

	(void)state;
	assert_int_equal(parse_request("sip:x@example.com",
	                               SANE_HDRS "Proxy-Require: foo, x\r\n"
	                                         "Proxy-Require: y,BAR\r\n"),
	                 0);
	assert_int_equal(
	        sip_unsupported_exts(ext, 4, &msg, slice_cstr(" bar , foo")),
	        2);
	assert_slice(ext[0], "x");
	assert_slice(ext[1], "y");
	assert_int_equal(sip_unsupported_exts(ext, 1, &msg, SLICE_NULL), 1);
	assert_slice(ext[0], "foo");
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
	        cmocka_unit_test(test_check_vias_after_the_top),
	        cmocka_unit_test(test_check_single_valued_twice),
	        cmocka_unit_test(test_hdr_lookup_by_name),
	        cmocka_unit_test(test_index_fast_and_general_paths),
	        cmocka_unit_test(test_index_bad_names),
	        cmocka_unit_test(test_index_short_and_long_lines),
	        cmocka_unit_test(test_body_error_order),
	        cmocka_unit_test(test_top_via_paths),
	        cmocka_unit_test(test_list_chunks),
	        cmocka_unit_test(test_addr_uri_scan),
	        cmocka_unit_test(test_index_name_keys),
	        cmocka_unit_test(test_index_near_the_end),
	        cmocka_unit_test(test_start_line_forms),
	        cmocka_unit_test(test_via_param_forms),
	        cmocka_unit_test(test_addr_forms_fast),
	        cmocka_unit_test(test_addr_uris_cached),
	        cmocka_unit_test(test_response_check_skips_from_to_uris),
	        cmocka_unit_test(test_first_contact_cached),
	        cmocka_unit_test(test_request_uri_cached),
	        cmocka_unit_test(test_copy_is_a_parse_of_the_copy),
	        cmocka_unit_test(test_route_lists_fast),
	        cmocka_unit_test(test_number_and_call_id_forms),
	        cmocka_unit_test(test_empty_via_line_before_the_top),
	        cmocka_unit_test(test_sanity_checks),
	        cmocka_unit_test(test_unsupported_extensions),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
