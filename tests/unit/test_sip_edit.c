/* Edit lists: the proxy helpers on a parsed message, ordering and overlap
 * rules of the raw edits, and the errors of apply. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "sip/sip.h"

static struct sip_msg msg;
static struct sip_msg out_msg;
static char arena_buf[1024];
static struct arena arena;
static struct sip_edits ed;
static char out[4096];

static void parse(struct sip_msg *m, const char *text, size_t len)
{
	struct sip_limits lim = SIP_LIMITS_DEFAULT;

	assert_int_equal(sip_msg_parse(m, text, len, &lim), 0);
}

/* Parses text and starts an edit list on it. */
static void start(const char *text)
{
	parse(&msg, text, strlen(text));
	arena_init(&arena, arena_buf, sizeof(arena_buf));
	sip_edits_init(&ed, &msg, &arena);
}

static int teardown(void **state)
{
	(void)state;
	arena_fini(&arena);
	return 0;
}

/* Applies the edits and compares the whole output with expected. */
static void expect_output(const char *expected)
{
	size_t len = 0;

	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), 0);
	assert_int_equal(len, sip_edits_out_len(&ed));
	out[len] = '\0';
	assert_string_equal(out, expected);
}

static void assert_slice(struct slice s, const char *expected)
{
	assert_int_equal(s.len, strlen(expected));
	assert_memory_equal(s.p, expected, s.len);
}

static const char invite[] =
        "INVITE sip:bob@proxy.example.com SIP/2.0\r\n"
        "Via: SIP/2.0/TCP pc33.atlanta.example.com;branch=z9hG4bK776asdhds\r\n"
        "Max-Forwards: 70\r\n"
        "Route: <sip:proxy.example.com;lr>, <sip:p2.example.com;lr>\r\n"
        "Route: <sip:p3.example.com;lr>\r\n"
        "To: Bob <sip:bob@biloxi.example.com>\r\n"
        "f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
        "CSeq: 314159 INVITE\r\n"
        "P-Secret: one\r\n"
        "Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
        "p-secret: two\r\n"
        "Content-Type: application/sdp\r\n"
        "Content-Length: 5\r\n"
        "\r\n"
        "v=0\r\n";

/* What a proxy does to a request it forwards (RFC 3261 §16.6). */
static void test_forward_request(void **state)
{
	struct sip_elem_iter it;
	struct slice elem;
	const struct sip_via *via;
	uint32_t mf;
	unsigned status;

	(void)state;
	start(invite);
	assert_int_equal(
	        sip_edit_push_via(&ed, SLICE_LIT("SIP/2.0/TCP proxy.example.com"
	                                         ";branch=z9hG4bKp1")),
	        0);
	assert_int_equal(sip_edit_drop_routes(&ed, 1), 0);
	assert_int_equal(sip_edit_add_record_route(
	                         &ed, SLICE_LIT("<sip:proxy.example.com;lr>")),
	                 0);
	assert_int_equal(
	        sip_edit_set_ruri(
	                &ed, SLICE_LIT("sip:bob@192.0.2.4:5060;transport=tcp")),
	        0);
	assert_int_equal(sip_edit_add_header(&ed, SLICE_LIT("X-Proxy: imsdlg")),
	                 0);
	assert_int_equal(sip_edit_remove_header(&ed, SLICE_LIT("P-SECRET")), 0);
	assert_int_equal(sip_edit_set_hdr_value(
	                         &ed, sip_msg_hdr(&msg, SIP_HDR_MAX_FORWARDS),
	                         SLICE_LIT("69")),
	                 0);
	expect_output(
	        "INVITE sip:bob@192.0.2.4:5060;transport=tcp SIP/2.0\r\n"
	        "Via: SIP/2.0/TCP proxy.example.com;branch=z9hG4bKp1\r\n"
	        "Via: SIP/2.0/TCP pc33.atlanta.example.com"
	        ";branch=z9hG4bK776asdhds\r\n"
	        "Max-Forwards: 69\r\n"
	        "Route: <sip:p2.example.com;lr>\r\n"
	        "Route: <sip:p3.example.com;lr>\r\n"
	        "To: Bob <sip:bob@biloxi.example.com>\r\n"
	        "f: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"
	        "Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"
	        "CSeq: 314159 INVITE\r\n"
	        "Contact: <sip:alice@pc33.atlanta.example.com>\r\n"
	        "Content-Type: application/sdp\r\n"
	        "Content-Length: 5\r\n"
	        "Record-Route: <sip:proxy.example.com;lr>\r\n"
	        "X-Proxy: imsdlg\r\n"
	        "\r\n"
	        "v=0\r\n");

	/* The output is a valid message with the changes in place. */
	parse(&out_msg, out, strlen(out));
	assert_int_equal(sip_msg_check(&status, &out_msg), 0);
	assert_slice(out_msg.ruri, "sip:bob@192.0.2.4:5060;transport=tcp");
	assert_int_equal(sip_msg_top_via(&via, &out_msg), 0);
	assert_slice(via->branch, "z9hG4bKp1");
	assert_int_equal(sip_msg_hdr_count(&out_msg, SIP_HDR_VIA), 2);
	sip_elem_iter_init(&it, &out_msg, SIP_HDR_ROUTE);
	assert_int_equal(sip_elem_next(&elem, &it), 0);
	assert_slice(elem, "<sip:p2.example.com;lr>");
	assert_int_equal(sip_elem_next(&elem, &it), 0);
	assert_slice(elem, "<sip:p3.example.com;lr>");
	assert_int_equal(sip_elem_next(&elem, &it), ENOENT);
	assert_slice(sip_msg_hdr(&out_msg, SIP_HDR_RECORD_ROUTE)->value,
	             "<sip:proxy.example.com;lr>");
	assert_null(sip_msg_hdr_by_name(&out_msg, SLICE_LIT("P-Secret")));
	assert_slice(sip_msg_hdr_by_name(&out_msg, SLICE_LIT("x-proxy"))->value,
	             "imsdlg");
	assert_int_equal(sip_msg_max_forwards(&mf, &out_msg), 0);
	assert_int_equal(mf, 69);
	assert_slice(out_msg.body, "v=0\r\n");
	assert_int_equal(out_msg.len, strlen(out));

	/* Apply does not consume the list: a second output is the same. */
	{
		char again[sizeof(out)];
		size_t len = 0;

		assert_int_equal(
		        sip_edits_apply(&len, again, sizeof(again), &ed), 0);
		assert_int_equal(len, strlen(out));
		assert_memory_equal(again, out, len);
	}
}

#define RESPONSE_TAIL                                                          \
	"To: Bob <sip:bob@biloxi.example.com>;tag=a6c85cf\r\n"                 \
	"From: Alice <sip:alice@atlanta.example.com>;tag=1928301774\r\n"       \
	"Call-ID: a84b4c76e66710@pc33.atlanta.example.com\r\n"                 \
	"CSeq: 314159 INVITE\r\n"                                              \
	"Content-Length: 0\r\n"                                                \
	"\r\n"

/* §16.7 step 3: the top Via of a response is removed, leaving the rest of
 * a multi-valued (and folded, compact) line as it was. */
static void test_pop_via_element(void **state)
{
	const struct sip_via *via;
	unsigned status;

	(void)state;
	start("SIP/2.0 180 Ringing\r\n"
	      "v: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1 ,\r\n"
	      " SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776\r\n"
	      "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx\r\n" RESPONSE_TAIL);
	assert_int_equal(sip_edit_pop_via(&ed), 0);
	expect_output(
	        "SIP/2.0 180 Ringing\r\n"
	        "v: SIP/2.0/UDP pc33.atlanta.example.com;branch=z9hG4bK776\r\n"
	        "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx\r\n" RESPONSE_TAIL);
	parse(&out_msg, out, strlen(out));
	assert_int_equal(sip_msg_check(&status, &out_msg), 0);
	assert_int_equal(sip_msg_top_via(&via, &out_msg), 0);
	assert_slice(via->branch, "z9hG4bK776");
}

static void test_pop_via_line(void **state)
{
	(void)state;
	start("SIP/2.0 180 Ringing\r\n"
	      "Via: SIP/2.0/UDP proxy.example.com;branch=z9hG4bKp1\r\n"
	      "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx\r\n" RESPONSE_TAIL);
	assert_int_equal(sip_edit_pop_via(&ed), 0);
	expect_output(
	        "SIP/2.0 180 Ringing\r\n"
	        "Via: SIP/2.0/UDP 10.0.0.9;branch=z9hG4bKx\r\n" RESPONSE_TAIL);
}

static void test_drop_route_line(void **state)
{
	(void)state;
	start("BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
	      "Route: <sip:p1.example.com;lr>\r\n"
	      "Route: <sip:p2.example.com;lr>\r\n"
	      "Content-Length: 0\r\n"
	      "\r\n");
	assert_int_equal(sip_edit_drop_routes(&ed, 1), 0);
	expect_output("BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
	              "Route: <sip:p2.example.com;lr>\r\n"
	              "Content-Length: 0\r\n"
	              "\r\n");
}

/* After a double Record-Route, loose routing drops two of our entries:
 * whole lines first, then leading elements of the next line. */
static void test_drop_routes_across_lines(void **state)
{
	(void)state;
	start("BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
	      "Route: <sip:p1.example.com;lr>\r\n"
	      "Route: <sip:p2.example.com;lr>, <sip:p3.example.com;lr>\r\n"
	      "Content-Length: 0\r\n"
	      "\r\n");
	assert_int_equal(sip_edit_drop_routes(&ed, 2), 0);
	expect_output("BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
	              "Route: <sip:p3.example.com;lr>\r\n"
	              "Content-Length: 0\r\n"
	              "\r\n");
}

static void test_drop_more_routes_than_present(void **state)
{
	(void)state;
	start("BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
	      "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>\r\n"
	      "Content-Length: 0\r\n"
	      "\r\n");
	assert_int_equal(sip_edit_drop_routes(&ed, 3), ENOENT);
}

/* §16.4: the last Route value (the remote target a strict router left
 * there) goes: its line when alone, else from the comma before it; with
 * the first values dropped too, on the same line. */
static void test_drop_last_route(void **state)
{
	static const struct {
		const char *in;
		unsigned first; /* dropped from the top as well */
	} cases[] = {
	        {"BYE sip:proxy.example.com;lr SIP/2.0\r\n"
	         "Route: <sip:p2.example.com;lr>\r\n"
	         "Route: <sip:bob@192.0.2.4>\r\n"
	         "Content-Length: 0\r\n"
	         "\r\n",
	         0},
	        {"BYE sip:proxy.example.com;lr SIP/2.0\r\n"
	         "Route: <sip:p1.example.com;lr>, <sip:p2.example.com;lr>,"
	         " <sip:bob@192.0.2.4>\r\n"
	         "Content-Length: 0\r\n"
	         "\r\n",
	         1},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		start(cases[i].in);
		if (cases[i].first)
			assert_int_equal(
			        sip_edit_drop_routes(&ed, cases[i].first), 0);
		assert_int_equal(sip_edit_drop_last_route(&ed), 0);
		expect_output("BYE sip:proxy.example.com;lr SIP/2.0\r\n"
		              "Route: <sip:p2.example.com;lr>\r\n"
		              "Content-Length: 0\r\n"
		              "\r\n");
		teardown(NULL);
	}
	start("BYE sip:bob@192.0.2.4 SIP/2.0\r\n"
	      "Content-Length: 0\r\n"
	      "\r\n");
	assert_int_equal(sip_edit_drop_last_route(&ed), ENOENT);
}

/* New Record-Route and Via values go above existing ones; without any,
 * a Record-Route at the end of the headers and a Via at the top (RFC 3261
 * §7.3.1: requests this proxy originates have none). */
static void test_placement(void **state)
{
	(void)state;
	start("INVITE sip:b@example.com SIP/2.0\r\n"
	      "Max-Forwards: 70\r\n"
	      "Record-Route: <sip:p2.example.com;lr>\r\n"
	      "l: 0\r\n"
	      "\r\n");
	assert_int_equal(sip_edit_add_record_route(
	                         &ed, SLICE_LIT("<sip:p1.example.com;lr>")),
	                 0);
	assert_int_equal(sip_edit_push_via(&ed, SLICE_LIT("SIP/2.0/UDP p1")),
	                 0);
	/* the line end the caller gives becomes one CRLF */
	assert_int_equal(sip_edit_add_header(&ed, SLICE_LIT("A: 1\r\n")), 0);
	assert_int_equal(sip_edit_add_header(&ed, SLICE_LIT("B: 2\n")), 0);
	/* above the first line, after the Via pushed before it */
	assert_int_equal(sip_edit_add_header_first(&ed, SLICE_LIT("T: 0")), 0);
	expect_output("INVITE sip:b@example.com SIP/2.0\r\n"
	              "Via: SIP/2.0/UDP p1\r\n"
	              "T: 0\r\n"
	              "Max-Forwards: 70\r\n"
	              "Record-Route: <sip:p1.example.com;lr>\r\n"
	              "Record-Route: <sip:p2.example.com;lr>\r\n"
	              "l: 0\r\n"
	              "A: 1\r\n"
	              "B: 2\r\n"
	              "\r\n");
}

/* Compact and full names are the same header (RFC 3261 §7.3.3). */
static void test_remove_compact(void **state)
{
	(void)state;
	start("MESSAGE sip:b@example.com SIP/2.0\r\n"
	      "s: one\r\n"
	      "X-A: 1\r\n"
	      "Subject: two\r\n"
	      "SUBJECT: three\r\n"
	      "x-a: 2\r\n"
	      "X-AB: 3\r\n"
	      "l: 0\r\n"
	      "\r\n");
	assert_int_equal(sip_edit_remove_header(&ed, SLICE_LIT("subject")), 0);
	assert_int_equal(sip_edit_remove_header(&ed, SLICE_LIT("X-a")), 0);
	/* nothing to remove is not an error */
	assert_int_equal(sip_edit_remove_header(&ed, SLICE_LIT("Route")), 0);
	expect_output("MESSAGE sip:b@example.com SIP/2.0\r\n"
	              "X-AB: 3\r\n"
	              "l: 0\r\n"
	              "\r\n");
}

static const char small[] = "OPTIONS sip:b@example.com SIP/2.0\r\n"
                            "l: 0\r\n"
                            "\r\n";

/* Edits at one offset apply in the order they were made. */
static void test_same_offset_order(void **state)
{
	(void)state;
	start(small);
	assert_int_equal(sip_edit_insert(&ed, 0, SLICE_LIT("a")), 0);
	assert_int_equal(sip_edit_replace(&ed, 0, 7, SLICE_LIT("INFO")), 0);
	assert_int_equal(sip_edit_insert(&ed, 0, SLICE_LIT("b")), 0);
	assert_int_equal(sip_edit_insert(&ed, 8, SLICE_LIT("<")), 0);
	assert_int_equal(sip_edit_insert(&ed, 7, SLICE_LIT("c")), 0);
	assert_int_equal(sip_edit_delete(&ed, 7, 0), 0);
	expect_output("aINFObc <sip:b@example.com SIP/2.0\r\n"
	              "l: 0\r\n"
	              "\r\n");
}

static void test_overlap(void **state)
{
	size_t len;

	(void)state;
	start(small);
	sip_edit_delete(&ed, 0, 8);
	sip_edit_delete(&ed, 4, 2);
	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), EINVAL);

	/* the same offset, both deleting */
	start(small);
	sip_edit_delete(&ed, 0, 8);
	sip_edit_replace(&ed, 0, 1, SLICE_LIT("x"));
	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), EINVAL);

	/* text inside deleted bytes has no place */
	start(small);
	sip_edit_delete(&ed, 0, 8);
	sip_edit_insert(&ed, 3, SLICE_LIT("x"));
	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), EINVAL);

	/* adjacent deletions are fine */
	start(small);
	sip_edit_delete(&ed, 4, 4);
	sip_edit_delete(&ed, 0, 4);
	sip_edit_insert(&ed, 8, SLICE_LIT("s"));
	expect_output("ssip:b@example.com SIP/2.0\r\n"
	              "l: 0\r\n"
	              "\r\n");
}

static void test_range_and_space(void **state)
{
	size_t n = strlen(small), len = 0;

	(void)state;
	start(small);
	sip_edit_delete(&ed, (uint32_t)n, 1);
	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), EINVAL);
	start(small);
	sip_edit_insert(&ed, (uint32_t)n + 1, SLICE_LIT("x"));
	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), EINVAL);
	start(small);
	sip_edit_delete(&ed, UINT32_MAX, UINT32_MAX);
	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), EINVAL);

	/* the end of the message is a valid place to insert */
	start(small);
	sip_edit_insert(&ed, (uint32_t)n, SLICE_LIT("xyz"));
	assert_int_equal(sip_edits_out_len(&ed), n + 3);
	assert_int_equal(sip_edits_apply(&len, out, n + 2, &ed), ENOSPC);
	assert_int_equal(sip_edits_apply(&len, out, n + 3, &ed), 0);
	assert_int_equal(len, n + 3);
	assert_memory_equal(out + n, "xyz", 3);
	assert_int_equal(sip_edits_apply(&len, out, 3, &ed), ENOSPC);
}

/* Helper errors are returned and remembered for apply. */
static void test_helper_errors(void **state)
{
	struct sip_hdr foreign = {0};
	size_t len;
	unsigned i;

	(void)state;
	start(small);
	assert_int_equal(sip_edit_pop_via(&ed), ENOENT);
	assert_int_equal(sip_edit_drop_routes(&ed, 1), ENOENT);
	assert_int_equal(sip_edit_insert(&ed, 0, SLICE_LIT("x")), 0);
	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), ENOENT);

	start(small);
	assert_int_equal(sip_edit_add_header(&ed, SLICE_LIT("\r\n")), EINVAL);
	assert_int_equal(sip_edit_add_header_first(&ed, SLICE_LIT("\r\n")),
	                 EINVAL);
	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), EINVAL);

	start(small);
	assert_int_equal(sip_edit_set_hdr_value(&ed, &foreign, SLICE_LIT("x")),
	                 EINVAL);

	start("SIP/2.0 200 OK\r\nl: 0\r\n\r\n");
	assert_int_equal(sip_edit_set_ruri(&ed, SLICE_LIT("sip:a@b")), EINVAL);

	start("BYE sip:a@b SIP/2.0\r\nRoute: <sip:a;lr>,,<sip:b>\r\nl: "
	      "0\r\n\r\n");
	assert_int_equal(sip_edit_drop_routes(&ed, 1), EBADMSG);

	start(small);
	for (i = 0; i < SIP_EDITS_CAP; i++)
		assert_int_equal(sip_edit_insert(&ed, 0, SLICE_LIT("x")), 0);
	assert_int_equal(sip_edit_insert(&ed, 0, SLICE_LIT("x")), E2BIG);
	assert_int_equal(sip_edits_apply(&len, out, sizeof(out), &ed), E2BIG);
}

/* Composed text lives in the arena, not in the caller's buffer. */
static void test_text_copied(void **state)
{
	char value[] = "SIP/2.0/UDP p1;branch=z9hG4bKa";

	(void)state;
	start(small);
	assert_int_equal(sip_edit_push_via(&ed, slice_cstr(value)), 0);
	memset(value, 'X', sizeof(value) - 1);
	expect_output("OPTIONS sip:b@example.com SIP/2.0\r\n"
	              "Via: SIP/2.0/UDP p1;branch=z9hG4bKa\r\n"
	              "l: 0\r\n"
	              "\r\n");
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_forward_request, teardown),
	        cmocka_unit_test_teardown(test_pop_via_element, teardown),
	        cmocka_unit_test_teardown(test_pop_via_line, teardown),
	        cmocka_unit_test_teardown(test_drop_routes_across_lines,
	                                  teardown),
	        cmocka_unit_test_teardown(test_drop_last_route, teardown),
	        cmocka_unit_test_teardown(test_drop_more_routes_than_present,
	                                  teardown),
	        cmocka_unit_test_teardown(test_drop_route_line, teardown),
	        cmocka_unit_test_teardown(test_placement, teardown),
	        cmocka_unit_test_teardown(test_remove_compact, teardown),
	        cmocka_unit_test_teardown(test_same_offset_order, teardown),
	        cmocka_unit_test_teardown(test_overlap, teardown),
	        cmocka_unit_test_teardown(test_range_and_space, teardown),
	        cmocka_unit_test_teardown(test_helper_errors, teardown),
	        cmocka_unit_test_teardown(test_text_copied, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
