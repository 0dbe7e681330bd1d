/* sip_frame(): TCP stream framing and keep-alives (RFC 3261 §18.3,
 * RFC 5626 §3.5.1). */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sip/sip.h"

#define MAX 65535

static const char invite[] =
        "INVITE sip:bob@biloxi.example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TCP "
        "client.atlanta.example.com:5060;branch=z9hG4bK74b43\r\n"
        "Max-Forwards: 70\r\n"
        "From: Alice <sip:alice@atlanta.example.com>;tag=9fxced76sl\r\n"
        "To: Bob <sip:bob@biloxi.example.com>\r\n"
        "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
        "CSeq: 1 INVITE\r\n"
        "Contact: <sip:alice@client.atlanta.example.com;transport=tcp>\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 10\r\n"
        "\r\n"
        "v=0\r\no=a\r\n";

static const char bye[] =
        "BYE sip:alice@client.atlanta.example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TCP 192.0.2.4;branch=z9hG4bKnashds10\r\n"
        "Call-ID: 3848276298220188511@atlanta.example.com\r\n"
        "CSeq: 2 BYE\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

/* sip_frame() on a NUL-terminated string. */
static int frame(struct sip_frame *f, const char *s, size_t max,
                 const char **why)
{
	return sip_frame(f, s, strlen(s), max, why);
}

static void expect_frame(const char *s, enum sip_frame_kind kind, size_t len)
{
	struct sip_frame f;
	const char *why = NULL;

	assert_int_equal(frame(&f, s, MAX, &why), 0);
	assert_int_equal(f.kind, kind);
	assert_int_equal(f.len, len);
}

static void expect_error(const char *s, size_t max, int err,
                         const char *want_why)
{
	struct sip_frame f;
	const char *why = NULL;

	assert_int_equal(frame(&f, s, max, &why), err);
	if (want_why != NULL)
		assert_string_equal(why, want_why);
}

/* msg followed by the start of a next message is framed as msg. */
static void expect_msg(const char *msg)
{
	char buf[1024];
	size_t n = strlen(msg);
	struct sip_frame f;
	const char *why = NULL;

	assert_true(n + 6 <= sizeof(buf));
	memcpy(buf, msg, n);
	memcpy(buf + n, "XYZ\r\n\r", 6);
	assert_int_equal(sip_frame(&f, buf, n + 6, MAX, &why), 0);
	assert_int_equal(f.kind, SIP_FRAME_MSG);
	assert_int_equal(f.len, n);
}

static void test_whole_message(void **state)
{
	(void)state;
	expect_frame(invite, SIP_FRAME_MSG, strlen(invite));
	expect_frame(bye, SIP_FRAME_MSG, strlen(bye));
}

/* Every proper prefix needs more bytes; the whole message is one frame. */
static void test_every_split(void **state)
{
	size_t n = strlen(invite), k;
	struct sip_frame f;
	const char *why = NULL;

	(void)state;
	for (k = 0; k < n; k++)
		assert_int_equal(sip_frame(&f, invite, k, MAX, &why), EAGAIN);
	assert_int_equal(sip_frame(&f, invite, n, MAX, &why), 0);
	assert_int_equal(f.kind, SIP_FRAME_MSG);
	assert_int_equal(f.len, n);
}

/* Trailing bytes of the next message are not part of the frame. */
static void test_back_to_back(void **state)
{
	char buf[2048];
	size_t n1 = strlen(invite), n2 = strlen(bye), k;
	struct sip_frame f;
	const char *why = NULL;

	(void)state;
	memcpy(buf, invite, n1);
	memcpy(buf + n1, bye, n2);
	/* any amount of the second message leaves the first intact */
	for (k = 0; k <= n2; k++) {
		assert_int_equal(sip_frame(&f, buf, n1 + k, MAX, &why), 0);
		assert_int_equal(f.kind, SIP_FRAME_MSG);
		assert_int_equal(f.len, n1);
	}
	assert_int_equal(sip_frame(&f, buf + n1, n2, MAX, &why), 0);
	assert_int_equal(f.kind, SIP_FRAME_MSG);
	assert_int_equal(f.len, n2);
}

static void test_ping_pong(void **state)
{
	(void)state;
	expect_frame("\r\n\r\n", SIP_FRAME_PING, 4);
	expect_frame("\r\n\r\nINVITE", SIP_FRAME_PING, 4);
	expect_frame("\r\n\r\n\r\n", SIP_FRAME_PING, 4);
	/* a pong, or a CRLF before a start line (RFC 3261 §7.5) */
	expect_frame("\r\nI", SIP_FRAME_PONG, 2);
	expect_frame("\r\nBYE sip:a@b SIP/2.0\r\n", SIP_FRAME_PONG, 2);
	expect_frame("\r\n\rX", SIP_FRAME_PONG, 2);
	expect_frame("\nBYE", SIP_FRAME_PONG, 1);
	/* may still become a ping */
	expect_error("\r", MAX, EAGAIN, NULL);
	expect_error("\r\n", MAX, EAGAIN, NULL);
	expect_error("\r\n\r", MAX, EAGAIN, NULL);
	expect_error("", MAX, EAGAIN, NULL);
	expect_error("\rX", MAX, EBADMSG, "bare CR before the start line");
	/* keep-alives are not messages: max_size does not apply */
	{
		struct sip_frame f;
		const char *why = NULL;

		assert_int_equal(sip_frame(&f, "\r\n\r\n", 4, 2, &why), 0);
		assert_int_equal(f.kind, SIP_FRAME_PING);
	}
}

static void test_missing_content_length(void **state)
{
	(void)state;
	expect_error("OPTIONS sip:a@b SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n", MAX,
	             EBADMSG, "missing Content-Length on a stream");
	/* the start line is not a header, even when it looks like one */
	expect_error("l: 0 SIP/2.0\r\nCSeq: 1 OPTIONS\r\n\r\n", MAX, EBADMSG,
	             "missing Content-Length on a stream");
	expect_msg("l: 5 SIP/2.0\r\nl: 0\r\n\r\n");
	/* names that merely start like Content-Length */
	expect_error("OPTIONS sip:a@b SIP/2.0\r\nContent-Lengthx: 0\r\n"
	             "lx: 0\r\nX-l: 0\r\n\r\n",
	             MAX, EBADMSG, "missing Content-Length on a stream");
}

static void test_bad_content_length(void **state)
{
	(void)state;
	expect_error("BYE sip:a@b SIP/2.0\r\nContent-Length: -1\r\n\r\n", MAX,
	             EBADMSG, "negative Content-Length");
	expect_error("BYE sip:a@b SIP/2.0\r\nContent-Length: abc\r\n\r\n", MAX,
	             EBADMSG, "non-numeric Content-Length");
	expect_error("BYE sip:a@b SIP/2.0\r\nContent-Length: 1 2\r\n\r\n", MAX,
	             EBADMSG, "non-numeric Content-Length");
	expect_error("BYE sip:a@b SIP/2.0\r\nContent-Length: 12a\r\n\r\n", MAX,
	             EBADMSG, "non-numeric Content-Length");
	expect_error("BYE sip:a@b SIP/2.0\r\nContent-Length:\r\n\r\n", MAX,
	             EBADMSG, "non-numeric Content-Length");
	expect_error("BYE sip:a@b SIP/2.0\r\nContent-Length: +3\r\n\r\n", MAX,
	             EBADMSG, "non-numeric Content-Length");
	expect_error("BYE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n"
	             "l: 4\r\n\r\nabcd",
	             MAX, EBADMSG, "conflicting Content-Length headers");
	/* the error is known before the end of the headers */
	expect_error("BYE sip:a@b SIP/2.0\r\nContent-Length: x\r\nVia: a\r\n",
	             MAX, EBADMSG, "non-numeric Content-Length");
}

static void test_content_length_forms(void **state)
{
	(void)state;
	/* the same value twice is harmless */
	expect_msg("BYE sip:a@b SIP/2.0\r\nContent-Length: 3\r\n"
	           "Content-Length: 003\r\n\r\nabc");
	/* compact form, any case, LWS before the colon (§7.3.1) */
	expect_msg("BYE sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc");
	expect_msg("BYE sip:a@b SIP/2.0\r\nL \t:3\r\n\r\nabc");
	expect_msg("BYE sip:a@b SIP/2.0\r\ncontent-LENGTH :  3  \r\n\r\nabc");
	/* a folded value */
	expect_msg("BYE sip:a@b SIP/2.0\r\nContent-Length:\r\n 3\r\n"
	           "CSeq: 1 BYE\r\n\r\nabc");
	/* bare LF line ends, and a mix */
	expect_msg("BYE sip:a@b SIP/2.0\nl: 3\n\nabc");
	expect_msg("BYE sip:a@b SIP/2.0\r\nl: 3\n\r\nabc");
	expect_msg("BYE sip:a@b SIP/2.0\nl: 3\r\n\nabc");
	/* a status line */
	expect_msg("SIP/2.0 200 OK\r\nl: 0\r\n\r\n");
}

static void test_not_sip(void **state)
{
	(void)state;
	expect_error("GET / HTTP/1.1\r\nHost: a\r\n\r\n", MAX, EBADMSG,
	             "not a SIP start line");
	/* lowercase version is still SIP (the ABNF literal is
	 * case-insensitive) */
	expect_msg("BYE sip:a@b sip/2.0\r\nl: 0\r\n\r\n");
}

static void test_oversize(void **state)
{
	static const char msg[] = "BYE sip:a@b SIP/2.0\r\nl: 3\r\n\r\nabc";
	size_t n = strlen(msg), hdr = n - 3;
	struct sip_frame f;
	const char *why = NULL;
	char big[600];

	(void)state;
	/* exactly max_size is fine, one byte less is not */
	assert_int_equal(sip_frame(&f, msg, n, n, &why), 0);
	assert_int_equal(f.len, n);
	assert_int_equal(sip_frame(&f, msg, n, n - 1, &why), EMSGSIZE);
	assert_string_equal(why, "message larger than the limit");
	/* known before the body arrives */
	assert_int_equal(sip_frame(&f, msg, hdr, hdr + 2, &why), EMSGSIZE);
	assert_int_equal(sip_frame(&f, msg, hdr, hdr + 3, &why), EAGAIN);
	/* the header section alone is too long */
	assert_int_equal(sip_frame(&f, msg, hdr, hdr - 1, &why), EMSGSIZE);
	assert_string_equal(why, "header section larger than the limit");
	assert_int_equal(sip_frame(&f, msg, hdr - 1, hdr - 1, &why), EMSGSIZE);
	assert_int_equal(sip_frame(&f, msg, hdr - 2, hdr - 1, &why), EAGAIN);

	/* an endless header section stops at max_size */
	memset(big, 'a', sizeof(big));
	memcpy(big, "BYE sip:a@b SIP/2.0\r\nX: ", 24);
	assert_int_equal(sip_frame(&f, big, 511, 512, &why), EAGAIN);
	assert_int_equal(sip_frame(&f, big, 512, 512, &why), EMSGSIZE);
	assert_int_equal(sip_frame(&f, big, sizeof(big), 512, &why), EMSGSIZE);

	expect_error("BYE sip:a@b SIP/2.0\r\nl: 99999999999999999999999999\r\n"
	             "\r\n",
	             MAX, EMSGSIZE, "message larger than the limit");
	expect_error("BYE sip:a@b SIP/2.0\r\nl: 65536\r\n\r\n", MAX, EMSGSIZE,
	             NULL);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_whole_message),
	        cmocka_unit_test(test_every_split),
	        cmocka_unit_test(test_back_to_back),
	        cmocka_unit_test(test_ping_pong),
	        cmocka_unit_test(test_missing_content_length),
	        cmocka_unit_test(test_bad_content_length),
	        cmocka_unit_test(test_content_length_forms),
	        cmocka_unit_test(test_not_sip),
	        cmocka_unit_test(test_oversize),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
