/* The builder: bounded buffers, To tags, replies (RFC 3261 §8.2.6), CANCEL
 * (§9.1) and ACK (§17.1.1.3), each compared byte for byte and parsed
 * back. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "sip/sip.h"

static struct sip_msg req;
static struct sip_msg rpl;
static struct sip_msg back;
static char out_buf[4096];
static struct sip_buf out;

static void parse(struct sip_msg *m, const char *text)
{
	struct sip_limits lim = SIP_LIMITS_DEFAULT;

	assert_int_equal(sip_msg_parse(m, text, strlen(text), &lim), 0);
}

static void assert_slice(struct slice s, const char *expected)
{
	assert_int_equal(s.len, strlen(expected));
	assert_memory_equal(s.p, expected, s.len);
}

/* The built message equals expected, parses and passes the proxy checks. */
static void expect_built(const char *expected)
{
	unsigned status;

	assert_false(out.overflow);
	assert_true(out.len < sizeof(out_buf));
	out_buf[out.len] = '\0';
	assert_string_equal(out_buf, expected);
	parse(&back, out_buf);
	assert_int_equal(sip_msg_check(&status, &back), 0);
	assert_int_equal(back.len, out.len);
}

/* The INVITE as this proxy sent it: its own Via on top, compact forms from
 * the UAC kept. */
static const char invite[] =
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1,"
        " SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"
        ";received=192.0.2.1\r\n"
        "v: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKz\r\n"
        "Max-Forwards: 69\r\n"
        "t: Bob <sip:bob@biloxi.example.com>\r\n"
        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
        "i: a84b4c76e66710@pc33.atlanta.example.com\r\n"
        "CSeq: 314159 INVITE\r\n"
        "Route: <sip:p2.example.com;lr>\r\n"
        "Route: <sip:p3.example.com;lr>\r\n"
        "Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 5\r\n"
        "\r\n"
        "v=0\r\n";

#define REPLY_VIAS                                                             \
	"Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1,"                    \
	" SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776asdhds"        \
	";received=192.0.2.1\r\n"                                              \
	"Via: SIP/2.0/TCP 10.0.0.1;branch=z9hG4bKz\r\n"

#define FROM    "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
#define CALL_ID "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"

static void setup_invite(void)
{
	parse(&req, invite);
	sip_buf_init(&out, out_buf, sizeof(out_buf));
}

static void test_buf(void **state)
{
	char b[8];
	char big[600];
	struct sip_buf sb;

	(void)state;
	sip_buf_init(&sb, b, sizeof(b));
	sip_buf_adds(&sb, "ab");
	sip_buf_addf(&sb, "%d-%s", 12, "xy");
	assert_int_equal(sb.len, 7);
	/* a piece that fits exactly, NUL or not */
	sip_buf_addf(&sb, "%c", 'z');
	assert_false(sb.overflow);
	assert_memory_equal(b, "ab12-xyz", 8);
	sip_buf_add(&sb, SLICE_LIT(""));
	assert_false(sb.overflow);
	sip_buf_adds(&sb, "!");
	assert_true(sb.overflow);
	assert_int_equal(sb.len, 8);

	/* sticky: a later piece that would fit is not written */
	sip_buf_init(&sb, b, sizeof(b));
	sip_buf_adds(&sb, "123456789");
	assert_true(sb.overflow);
	sip_buf_adds(&sb, "a");
	assert_int_equal(sb.len, 0);

	/* a formatted piece longer than the scratch buffer */
	memset(big, 'q', sizeof(big));
	sip_buf_init(&sb, out_buf, sizeof(out_buf));
	sip_buf_addf(&sb, "<%.*s>", 500, big);
	assert_false(sb.overflow);
	assert_int_equal(sb.len, 502);
	assert_int_equal(out_buf[0], '<');
	assert_int_equal(out_buf[500], 'q');
	assert_int_equal(out_buf[501], '>');
	sip_buf_init(&sb, out_buf, 502);
	sip_buf_addf(&sb, "<%.*s>", 500, big);
	assert_true(sb.overflow);
}

static void test_tag(void **state)
{
	char t1[SIP_TAG_LEN], t2[SIP_TAG_LEN], t3[SIP_TAG_LEN];
	size_t i;

	(void)state;
	setup_invite();
	sip_gen_tag(t1, &req);
	for (i = 0; i < SIP_TAG_LEN; i++)
		assert_non_null(strchr("0123456789abcdef", t1[i]));
	/* a retransmission gets the same tag */
	parse(&rpl, invite);
	sip_gen_tag(t2, &rpl);
	assert_memory_equal(t1, t2, SIP_TAG_LEN);
	/* another transaction (branch) another */
	parse(&rpl, "OPTIONS sip:bob@biloxi.example.com SIP/2.0\r\n"
	            "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp2\r\n"
	            "To: <sip:bob@biloxi.example.com>\r\n" FROM
	            "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
	            "CSeq: 1 OPTIONS\r\n"
	            "l: 0\r\n\r\n");
	sip_gen_tag(t3, &rpl);
	assert_memory_not_equal(t1, t3, SIP_TAG_LEN);
}

static void test_reply_486(void **state)
{
	const struct sip_addr *to;

	(void)state;
	setup_invite();
	assert_int_equal(
	        sip_build_reply(&out, &req, 486, SLICE_LIT("Busy Here"),
	                        SLICE_LIT("8321234356"),
	                        SLICE_LIT("Retry-After: 60\r\n"), SLICE_NULL),
	        0);
	expect_built("SIP/2.0 486 Busy Here\r\n" REPLY_VIAS FROM
	             "To: Bob <sip:bob@biloxi.example.com>;tag=8321234356\r\n"
	             "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
	             "CSeq: 314159 INVITE\r\n"
	             "Retry-After: 60\r\n"
	             "Content-Length: 0\r\n"
	             "\r\n");
	assert_int_equal(back.status, 486);
	assert_int_equal(sip_msg_to(&to, &back), 0);
	assert_slice(to->tag, "8321234356");
}

/* An empty to_tag means the derived one. */
static void test_reply_generated_tag(void **state)
{
	char tag[SIP_TAG_LEN];
	char expected[1024];
	const struct sip_addr *to;

	(void)state;
	setup_invite();
	sip_gen_tag(tag, &req);
	assert_int_equal(sip_build_reply(&out, &req, 404,
	                                 SLICE_LIT("Not Found"), SLICE_NULL,
	                                 SLICE_NULL, SLICE_NULL),
	                 0);
	snprintf(expected, sizeof(expected),
	         "SIP/2.0 404 Not Found\r\n" REPLY_VIAS FROM
	         "To: Bob <sip:bob@biloxi.example.com>;tag=%.*s\r\n" CALL_ID
	         "CSeq: 314159 INVITE\r\n"
	         "Content-Length: 0\r\n"
	         "\r\n",
	         SIP_TAG_LEN, tag);
	expect_built(expected);
	assert_int_equal(sip_msg_to(&to, &back), 0);
	assert_int_equal(to->tag.len, SIP_TAG_LEN);
}

/* A request inside a dialog: its To tag stays, none is added. */
static void test_reply_existing_tag(void **state)
{
	(void)state;
	parse(&req,
	      "INVITE sip:alice@pc33.atlanta.example.com SIP/2.0\r\n"
	      "v: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds8\r\n"
	      "To: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
	      "f: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
	      "Call-ID: a84b4c76e66710\r\n"
	      "CSeq: 231 INVITE\r\n"
	      "Content-Length: 0\r\n"
	      "\r\n");
	sip_buf_init(&out, out_buf, sizeof(out_buf));
	assert_int_equal(sip_build_reply(&out, &req, 180, SLICE_LIT("Ringing"),
	                                 SLICE_LIT("ignored"), SLICE_NULL,
	                                 SLICE_NULL),
	                 0);
	expect_built(
	        "SIP/2.0 180 Ringing\r\n"
	        "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKnashds8\r\n"
	        "From: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
	        "To: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
	        "Call-ID: a84b4c76e66710\r\n"
	        "CSeq: 231 INVITE\r\n"
	        "Content-Length: 0\r\n"
	        "\r\n");
}

/* §8.2.6.1: 100 Trying carries no tag; a body is counted. */
static void test_reply_100_and_body(void **state)
{
	(void)state;
	setup_invite();
	assert_int_equal(sip_build_reply(&out, &req, 100, SLICE_LIT("Trying"),
	                                 SLICE_NULL, SLICE_NULL, SLICE_NULL),
	                 0);
	expect_built("SIP/2.0 100 Trying\r\n" REPLY_VIAS FROM
	             "To: Bob <sip:bob@biloxi.example.com>\r\n" CALL_ID
	             "CSeq: 314159 INVITE\r\n"
	             "Content-Length: 0\r\n"
	             "\r\n");

	sip_buf_init(&out, out_buf, sizeof(out_buf));
	assert_int_equal(
	        sip_build_reply(&out, &req, 488,
	                        SLICE_LIT("Not Acceptable Here"),
	                        SLICE_LIT("t1"),
	                        SLICE_LIT("Content-Type: text/plain\r\n"),
	                        SLICE_LIT("no codec\n")),
	        0);
	expect_built("SIP/2.0 488 Not Acceptable Here\r\n" REPLY_VIAS FROM
	             "To: Bob <sip:bob@biloxi.example.com>;tag=t1\r\n" CALL_ID
	             "CSeq: 314159 INVITE\r\n"
	             "Content-Type: text/plain\r\n"
	             "Content-Length: 9\r\n"
	             "\r\n"
	             "no codec\n");
	assert_slice(back.body, "no codec\n");
}

/* Every buffer size short of the message overflows; the exact one fits. */
static void test_reply_space(void **state)
{
	size_t full, size;
	int err;

	(void)state;
	setup_invite();
	assert_int_equal(sip_build_reply(&out, &req, 486,
	                                 SLICE_LIT("Busy Here"), SLICE_NULL,
	                                 SLICE_NULL, SLICE_NULL),
	                 0);
	full = out.len;
	for (size = 0; size <= full; size++) {
		sip_buf_init(&out, out_buf, size);
		err = sip_build_reply(&out, &req, 486, SLICE_LIT("Busy Here"),
		                      SLICE_NULL, SLICE_NULL, SLICE_NULL);
		assert_int_equal(err, size < full ? ENOSPC : 0);
	}
}

static void test_reply_errors(void **state)
{
	(void)state;
	/* No To: a 400 is still possible, with what the request has. */
	parse(&req,
	      "OPTIONS sip:b@example.com SIP/2.0\r\n"
	      "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKa\r\n" FROM CALL_ID
	      "CSeq: 1 OPTIONS\r\n"
	      "l: 0\r\n\r\n");
	sip_buf_init(&out, out_buf, sizeof(out_buf));
	assert_int_equal(sip_build_reply(&out, &req, 400, SLICE_LIT("Bad"),
	                                 SLICE_NULL, SLICE_NULL, SLICE_NULL),
	                 0);
	out_buf[out.len] = 0;
	assert_null(strstr(out_buf, "To:"));
	assert_non_null(strstr(out_buf, "CSeq: 1 OPTIONS\r\n"));
	/* A malformed CSeq and To are copied as received; the raw To gets a
	 * tag only when it has none. */
	parse(&req, "OPTIONS sip:b@example.com SIP/2.0\r\n"
	            "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKa\r\n"
	            "To: < sip:b@example.com >;tag=x\r\n" FROM CALL_ID
	            "CSeq: x OPTIONS\r\n"
	            "l: 0\r\n\r\n");
	sip_buf_init(&out, out_buf, sizeof(out_buf));
	assert_int_equal(sip_build_reply(&out, &req, 400, SLICE_LIT("Bad"),
	                                 SLICE_NULL, SLICE_NULL, SLICE_NULL),
	                 0);
	out_buf[out.len] = 0;
	assert_non_null(strstr(out_buf, "To: < sip:b@example.com >;tag=x\r\n"));
	assert_non_null(strstr(out_buf, "CSeq: x OPTIONS\r\n"));
	/* Without a Via there is nowhere to send a reply. */
	parse(&req,
	      "OPTIONS sip:b@example.com SIP/2.0\r\n"
	      "To: <sip:b@example.com>\r\n" FROM CALL_ID "CSeq: 1 OPTIONS\r\n"
	      "l: 0\r\n\r\n");
	sip_buf_init(&out, out_buf, sizeof(out_buf));
	assert_int_equal(sip_build_reply(&out, &req, 400, SLICE_LIT("Bad"),
	                                 SLICE_NULL, SLICE_NULL, SLICE_NULL),
	                 EBADMSG);
	assert_non_null(req.error);
	/* not a request, or not a status code */
	parse(&rpl,
	      "SIP/2.0 200 OK\r\n"
	      "Via: SIP/2.0/UDP 192.0.2.4;branch=z9hG4bKa\r\n"
	      "To: <sip:b@example.com>\r\n" FROM CALL_ID "CSeq: 1 OPTIONS\r\n"
	      "l: 0\r\n\r\n");
	assert_int_equal(sip_build_reply(&out, &rpl, 400, SLICE_LIT("Bad"),
	                                 SLICE_NULL, SLICE_NULL, SLICE_NULL),
	                 EINVAL);
	setup_invite();
	assert_int_equal(sip_build_reply(&out, &req, 99, SLICE_LIT("Bad"),
	                                 SLICE_NULL, SLICE_NULL, SLICE_NULL),
	                 EINVAL);
	assert_int_equal(out.len, 0);
}

static void test_cancel(void **state)
{
	const struct sip_via *via;

	(void)state;
	setup_invite();
	assert_int_equal(
	        sip_build_cancel(&out, &req,
	                         SLICE_LIT("Reason: SIP;cause=487\r\n")),
	        0);
	expect_built("CANCEL sip:bob@biloxi.example.com SIP/2.0\r\n"
	             "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1\r\n" FROM
	             "To: Bob <sip:bob@biloxi.example.com>\r\n" CALL_ID
	             "CSeq: 314159 CANCEL\r\n"
	             "Route: <sip:p2.example.com;lr>\r\n"
	             "Route: <sip:p3.example.com;lr>\r\n"
	             "Max-Forwards: 70\r\n"
	             "Reason: SIP;cause=487\r\n"
	             "Content-Length: 0\r\n"
	             "\r\n");
	assert_int_equal(back.method_id, SIP_METHOD_CANCEL);
	/* the same branch: it matches the INVITE transaction (§9.2) */
	assert_int_equal(sip_msg_top_via(&via, &back), 0);
	assert_slice(via->branch, "z9hG4bKp1");
}

static const char response_487[] =
        "SIP/2.0 487 Request Terminated\r\n" REPLY_VIAS
        "To: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n" FROM CALL_ID
        "CSeq: 314159 INVITE\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

static void test_ack(void **state)
{
	const struct sip_addr *to;

	(void)state;
	setup_invite();
	parse(&rpl, response_487);
	assert_int_equal(sip_build_ack(&out, &req, &rpl), 0);
	expect_built(
	        "ACK sip:bob@biloxi.example.com SIP/2.0\r\n"
	        "Via: SIP/2.0/UDP p1.example.com;branch=z9hG4bKp1\r\n" FROM
	        "To: Bob <sip:bob@biloxi.example.com>;tag=314159\r\n" CALL_ID
	        "CSeq: 314159 ACK\r\n"
	        "Route: <sip:p2.example.com;lr>\r\n"
	        "Route: <sip:p3.example.com;lr>\r\n"
	        "Max-Forwards: 70\r\n"
	        "Content-Length: 0\r\n"
	        "\r\n");
	assert_int_equal(back.method_id, SIP_METHOD_ACK);
	assert_int_equal(sip_msg_to(&to, &back), 0);
	assert_slice(to->tag, "314159");
}

static void test_cancel_ack_errors(void **state)
{
	(void)state;
	setup_invite();
	parse(&rpl, response_487);
	/* the arguments the wrong way round */
	assert_int_equal(sip_build_ack(&out, &rpl, &req), EINVAL);
	assert_int_equal(sip_build_ack(&out, &req, &req), EINVAL);
	assert_int_equal(sip_build_cancel(&out, &rpl, SLICE_NULL), EINVAL);
	/* a response without To */
	parse(&rpl, "SIP/2.0 487 Request Terminated\r\n" REPLY_VIAS FROM CALL_ID
	            "CSeq: 314159 INVITE\r\n"
	            "Content-Length: 0\r\n"
	            "\r\n");
	assert_int_equal(sip_build_ack(&out, &req, &rpl), EBADMSG);
	/* too small */
	sip_buf_init(&out, out_buf, 100);
	assert_int_equal(sip_build_cancel(&out, &req, SLICE_NULL), ENOSPC);
}

static const char response_200[] =
        "SIP/2.0 200 OK\r\n" REPLY_VIAS
        "Record-Route: <sip:p3.example.com;lr>, <sip:p2.example.com;lr>\r\n"
        "Record-Route: <sip:p1.example.com;lr>\r\n"
        "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n" FROM CALL_ID
        "CSeq: 314159 INVITE\r\n"
        "Contact: <sip:bob@192.0.2.4>\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

/* A request of the UAC in the dialog a 2xx set up: its Contact as target,
 * the Record-Route elements reversed, the UAC's From and Call-ID. */
static void test_in_dialog(void **state)
{
	const struct slice from = SLICE_LIT(
	        "Alice <sip:alice@atlanta.example.com>;tag=1928301774");
	const struct slice cid = SLICE_LIT("a84b4c76e66710@pc33");

	(void)state;
	sip_buf_init(&out, out_buf, sizeof(out_buf));
	parse(&rpl, response_200);
	assert_int_equal(sip_build_in_dialog(&out, &rpl,
	                                     SLICE_LIT("sip:unused@x"), from,
	                                     cid, "BYE", 314160),
	                 0);
	out_buf[out.len] = '\0';
	assert_string_equal(
	        out_buf,
	        "BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
	        "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>, "
	        "<sip:p3.example.com;lr>\r\n"
	        "From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
	        "To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"
	        "Call-ID: a84b4c76e66710@pc33\r\n"
	        "CSeq: 314160 BYE\r\n"
	        "Max-Forwards: 70\r\n");

	/* no Contact, no Record-Route: the target given, no Route */
	sip_buf_init(&out, out_buf, sizeof(out_buf));
	parse(&rpl, "SIP/2.0 200 OK\r\n" REPLY_VIAS
	            "To: <sip:bob@biloxi.example.com>;tag=7\r\n" FROM CALL_ID
	            "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
	assert_int_equal(sip_build_in_dialog(&out, &rpl, SLICE_LIT("sip:b@x"),
	                                     from, cid, "ACK", 1),
	                 0);
	out_buf[out.len] = '\0';
	assert_non_null(strstr(out_buf, "ACK sip:b@x SIP/2.0\r\nFrom: "));
	assert_null(strstr(out_buf, "Route"));

	/* a request is no reply; a route set too long */
	parse(&req, invite);
	assert_int_equal(sip_build_in_dialog(&out, &req, SLICE_LIT("sip:b@x"),
	                                     from, cid, "ACK", 1),
	                 EINVAL);
	char many[4096] = "SIP/2.0 200 OK\r\n" REPLY_VIAS;
	for (int i = 0; i <= SIP_DIALOG_MAX_ROUTES; i++)
		strcat(many, "Record-Route: <sip:p.example.com;lr>\r\n");
	strcat(many, "To: <sip:b@x>;tag=7\r\n" FROM CALL_ID
	             "CSeq: 1 INVITE\r\nContent-Length: 0\r\n\r\n");
	parse(&rpl, many);
	assert_int_equal(sip_build_in_dialog(&out, &rpl, SLICE_LIT("sip:b@x"),
	                                     from, cid, "ACK", 1),
	                 E2BIG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_buf),
	        cmocka_unit_test(test_tag),
	        cmocka_unit_test(test_reply_486),
	        cmocka_unit_test(test_reply_generated_tag),
	        cmocka_unit_test(test_reply_existing_tag),
	        cmocka_unit_test(test_reply_100_and_body),
	        cmocka_unit_test(test_reply_space),
	        cmocka_unit_test(test_reply_errors),
	        cmocka_unit_test(test_cancel),
	        cmocka_unit_test(test_ack),
	        cmocka_unit_test(test_cancel_ack_errors),
	        cmocka_unit_test(test_in_dialog),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
