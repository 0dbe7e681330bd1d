/*
 * The 49 torture messages of RFC 4475, one test each, run through the
 * parser and the proxy checks. Valid messages must parse, pass
 * sip_msg_check() and yield the values the RFC section is about; invalid
 * ones must be refused with the reason the section gives (a check that
 * fails for another reason would hide a missing check, so the reason is
 * asserted too); semantic ones parse, and the test asserts the facts the
 * proxy acts on, with the action in a comment.
 *
 * Files are read from TESTDATA_DIR/rfc4475 into heap buffers of their exact
 * size, so that AddressSanitizer catches any read past the datagram.
 */
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

#ifndef TESTDATA_DIR
#error "TESTDATA_DIR must name the shared test data directory"
#endif

/* ------------------------------------------------------------ helpers */

struct tmsg {
	char *buf;
	size_t len;
	int err; /* of sip_msg_parse() */
	struct sip_msg m;
};

/* The message of the running test, released by its teardown: a failed
 * assertion jumps out of the test, past any cleanup of its own. */
static struct tmsg *cur;

static struct tmsg *load(const char *name)
{
	char path[512];
	struct tmsg *t = calloc(1, sizeof(*t));
	FILE *f;
	long n = -1;
	size_t got = 0;

	assert_non_null(t);
	assert_null(cur);
	cur = t;
	snprintf(path, sizeof(path), "%s/rfc4475/%s", TESTDATA_DIR, name);
	f = fopen(path, "rb");
	if (f == NULL)
		fail_msg("cannot open %s", path);
	if (fseek(f, 0, SEEK_END) == 0)
		n = ftell(f);
	rewind(f);
	if (n > 0) {
		t->len = (size_t)n;
		t->buf = malloc(t->len);
		if (t->buf != NULL)
			got = fread(t->buf, 1, t->len, f);
	}
	fclose(f);
	if (n <= 0 || got != t->len)
		fail_msg("cannot read %s", path);
	t->err = sip_msg_parse(&t->m, t->buf, t->len, &SIP_LIMITS_DEFAULT);
	return t;
}

static int release(void **state)
{
	if (cur != NULL) {
		free(cur->buf);
		free(cur);
		cur = NULL;
	}
	return 0;
}

/* Loads and asserts that the message parses. */
static struct tmsg *parsed(const char *name)
{
	struct tmsg *t = load(name);

	if (t->err != 0)
		fail_msg("%s: sip_msg_parse() = %d (%s)", name, t->err,
		         t->m.error ? t->m.error : "no reason");
	/* Whatever the message, its parts lie inside the datagram. */
	assert_true(t->m.len <= t->len);
	assert_true(t->m.body.p >= t->buf);
	assert_true(t->m.body.p + t->m.body.len <= t->buf + t->m.len);
	return t;
}

static void check_ok(struct tmsg *t)
{
	unsigned status = 0;
	int err = sip_msg_check(&status, &t->m);

	if (err != 0)
		fail_msg("sip_msg_check() = %d, status %u (%s)", err, status,
		         t->m.error ? t->m.error : "no reason");
}

/*
 * sip_msg_check() must refuse the message with status and a reason that
 * contains why: the RFC names one defect per message, and a refusal for
 * another one would mean the named defect goes unchecked.
 */
static void check_refused(struct tmsg *t, unsigned status, const char *why)
{
	unsigned st = 0;

	assert_int_equal(sip_msg_check(&st, &t->m), EBADMSG);
	assert_int_equal(st, status);
	assert_non_null(t->m.error);
	assert_true(t->m.error[0] != '\0');
	if (strstr(t->m.error, why) == NULL)
		fail_msg("reason \"%s\" does not mention \"%s\"", t->m.error,
		         why);
}

/* Prints s with C escapes for the octets that would garble the output. */
static void print_escaped(const char *p, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];
		if (c == '\\' || c == '"')
			print_error("\\%c", c);
		else if (c < 0x20 || c >= 0x7f)
			print_error("\\x%02x", c);
		else
			print_error("%c", c);
	}
}

static void slice_is(struct slice s, const char *want, size_t n,
                     const char *file, int line)
{
	if (s.len == n && (n == 0 || memcmp(s.p, want, n) == 0))
		return;
	print_error("\"");
	print_escaped(s.p, s.len);
	print_error("\" (%zu bytes) != \"", s.len);
	print_escaped(want, n);
	print_error("\" (%zu bytes)\n", n);
	_fail(file, line);
}

/* lit must be a string literal: its size counts embedded NULs. */
#define assert_slice(s, lit)                                                   \
	slice_is((s), "" lit, sizeof(lit) - 1, __FILE__, __LINE__)
/* The same with a NUL-terminated string. */
#define assert_slice_str(s, str)                                               \
	do {                                                                   \
		const char *str_ = (str);                                      \
		slice_is((s), str_, strlen(str_), __FILE__, __LINE__);         \
	} while (0)

static void unescaped_is(struct slice s, const char *want, size_t n,
                         const char *file, int line)
{
	char buf[512];
	size_t len = sip_uri_unescape(buf, sizeof(buf), s);

	if (len > sizeof(buf))
		fail_msg("unescaped URI part longer than %zu bytes",
		         sizeof(buf));
	slice_is(slice_make(buf, len), want, n, file, line);
}

/* The %HH-decoded form of s is lit (RFC 3261 §19.1.4 comparison). */
#define assert_unescaped(s, lit)                                               \
	unescaped_is((s), "" lit, sizeof(lit) - 1, __FILE__, __LINE__)

static struct sip_uri uri_of(struct slice s)
{
	struct sip_uri u;
	const char *why = NULL;

	if (sip_uri_parse(&u, s, &why) != 0)
		fail_msg("URI \"%.*s\": %s", SLICE_ARG(s), why);
	return u;
}

static const struct sip_hdr *hdr_named(struct tmsg *t, const char *name)
{
	const struct sip_hdr *h = sip_msg_hdr_by_name(&t->m, slice_cstr(name));

	if (h == NULL)
		fail_msg("no %s header", name);
	return h;
}

static const struct sip_via *top_via(struct tmsg *t)
{
	const struct sip_via *v = NULL;

	assert_int_equal(sip_msg_top_via(&v, &t->m), 0);
	return v;
}

static const struct sip_addr *from_of(struct tmsg *t)
{
	const struct sip_addr *a = NULL;

	assert_int_equal(sip_msg_from(&a, &t->m), 0);
	return a;
}

static const struct sip_addr *to_of(struct tmsg *t)
{
	const struct sip_addr *a = NULL;

	assert_int_equal(sip_msg_to(&a, &t->m), 0);
	return a;
}

static const struct sip_cseq *cseq_of(struct tmsg *t)
{
	const struct sip_cseq *c = NULL;

	assert_int_equal(sip_msg_cseq(&c, &t->m), 0);
	return c;
}

static struct slice call_id_of(struct tmsg *t)
{
	struct slice s = SLICE_NULL;

	assert_int_equal(sip_msg_call_id(&s, &t->m), 0);
	return s;
}

static uint32_t max_forwards_of(struct tmsg *t)
{
	uint32_t v = 0;

	assert_int_equal(sip_msg_max_forwards(&v, &t->m), 0);
	return v;
}

/* The body is exactly Content-Length bytes and ends the message. */
static void assert_body(struct tmsg *t, uint32_t content_length)
{
	assert_true(t->m.has_content_length);
	assert_int_equal(t->m.content_length, content_length);
	assert_int_equal(t->m.body.len, content_length);
	assert_ptr_equal(t->m.body.p + t->m.body.len, t->buf + t->m.len);
}

static struct slice param_of(struct slice params, const char *name)
{
	struct slice v = SLICE_NULL;

	if (!sip_param_find(&v, params, name))
		fail_msg("no parameter %s in \"%.*s\"", name,
		         SLICE_ARG(params));
	return v;
}

/* Via and Contact arrays large enough for every torture message. */
#define NVIAS 64

/* ------------------------------------------------ 3.1.1 valid messages */

/* §3.1.1.1: LWS and folding everywhere, compact and odd-case header
 * names, unknown headers, escaped quotes in display names. */
static void test_wsinv(void **state)
{
	struct tmsg *t = parsed("wsinv.dat");
	struct sip_via v[NVIAS];
	struct sip_addr c[4];
	unsigned n = 0;

	check_ok(t);
	assert_true(t->m.is_request);
	assert_int_equal(t->m.method_id, SIP_METHOD_INVITE);
	assert_slice(t->m.ruri,
	             "sip:vivekg@chair-dnrc.example.com;unknownparam");
	assert_slice(t->m.version, "SIP/2.0");
	struct sip_uri ru = uri_of(t->m.ruri);
	assert_int_equal(ru.scheme, SIP_URI_SIP);
	assert_slice(ru.user, "vivekg");
	assert_slice(ru.host, "chair-dnrc.example.com");
	assert_slice(ru.params, "unknownparam");

	const struct sip_addr *to = to_of(t);
	assert_slice(to->uri, "sip:vivekg@chair-dnrc.example.com");
	assert_false(to->bracketed);
	assert_true(to->has_tag);
	assert_slice(to->tag, "1918181833n");

	const struct sip_addr *from = from_of(t);
	/* the quotes go, the quoted-pairs stay */
	assert_slice(from->display, "J Rosenberg \\\\\\\"");
	assert_slice(from->uri, "sip:jdrosen@example.com");
	assert_true(from->bracketed);
	assert_slice(from->tag, "98asjd8");

	assert_int_equal(max_forwards_of(t), 68);
	assert_slice(call_id_of(t), "wsinv.ndaksdj@192.0.2.1");
	const struct sip_cseq *cs = cseq_of(t);
	assert_int_equal(cs->num, 9);
	assert_slice(cs->method, "INVITE");
	assert_int_equal(cs->method_id, SIP_METHOD_INVITE);

	/* "Via  :" and "v:", one of them with two folded elements */
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_VIA), 2);
	assert_int_equal(sip_msg_vias(v, NVIAS, &n, &t->m), 0);
	assert_int_equal(n, 3);
	assert_slice(v[0].proto_name, "SIP");
	assert_slice(v[0].proto_version, "2.0");
	assert_slice(v[0].transport, "UDP");
	assert_slice(v[0].host, "192.0.2.2");
	assert_int_equal(v[0].host_type, SIP_HOST_IPV4);
	assert_false(v[0].has_port);
	assert_slice(v[0].branch, "390skdjuw");
	assert_slice(v[1].transport, "TCP");
	assert_slice(v[1].host, "spindle.example.com");
	assert_int_equal(v[1].host_type, SIP_HOST_NAME);
	assert_slice(v[1].branch, "z9hG4bK9ikj8");
	assert_slice(v[2].transport, "UDP");
	assert_slice(v[2].host, "192.168.255.111");
	assert_slice(v[2].branch, "z9hG4bK30239");
	assert_slice(top_via(t)->branch, "390skdjuw");

	assert_body(t, 150);
	assert_int_equal(t->m.len, t->len);
	assert_slice(hdr_named(t, "Content-Type")->value, "application/sdp");

	/* "s :" is a Subject with an empty value */
	const struct sip_hdr *h = sip_msg_hdr(&t->m, SIP_HDR_SUBJECT);
	assert_non_null(h);
	assert_slice(h->name, "s");
	assert_int_equal(h->value.len, 0);

	/* unknown headers are kept verbatim, folds included */
	h = hdr_named(t, "NewFangledHeader");
	assert_int_equal(h->id, SIP_HDR_OTHER);
	assert_slice(h->value,
	             "newfangled value\r\n continued newfangled value");
	assert_slice(hdr_named(t, "UnknownHeaderWithUnusualValue")->value,
	             ";;,,;;,;");

	struct sip_elem_iter it;
	struct slice elem;
	struct sip_addr route;
	const char *why = NULL;
	sip_elem_iter_init(&it, &t->m, SIP_HDR_ROUTE);
	assert_int_equal(sip_elem_next(&elem, &it), 0);
	assert_int_equal(sip_addr_parse(&route, elem, 0, &why), 0);
	assert_slice(route.uri, "sip:services.example.com;lr;"
	                        "unknownwith=value;unknown-no-value");
	struct sip_uri rr = uri_of(route.uri);
	assert_slice(rr.host, "services.example.com");
	assert_true(rr.lr);
	assert_slice(param_of(rr.params, "unknownwith"), "value");
	assert_true(sip_param_find(NULL, rr.params, "unknown-no-value"));
	assert_int_equal(sip_elem_next(&elem, &it), ENOENT);

	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 1);
	assert_slice(c[0].display, "Quoted string \\\"\\\"");
	assert_slice(c[0].uri, "sip:jdrosen@example.com");
	assert_slice(c[0].q, "0.33");
	assert_slice(param_of(c[0].params, "newparam"), "newvalue");
	assert_slice(param_of(c[0].params, "secondparam"), "");

	assert_int_equal(t->m.nhdrs, 14);

	/*
	 * Header values are LWS-trimmed (sip.h), also when the value starts
	 * on a continuation line ("TO :", "Route:"): an edit or a builder
	 * that copies h->value must not copy a CRLF with it.
	 */
	h = sip_msg_hdr(&t->m, SIP_HDR_ROUTE);
	assert_non_null(h);
	assert_slice(h->value, "<sip:services.example.com;lr;"
	                       "unknownwith=value;unknown-no-value>");
	h = sip_msg_hdr(&t->m, SIP_HDR_TO);
	assert_slice(h->value, "sip:vivekg@chair-dnrc.example.com ;   tag    "
	                       "= 1918181833n");
}

/* §3.1.1.2: every character the grammar allows in a method, URI, tokens,
 * quoted strings, Call-ID and an extension header. */
static void test_intmeth(void **state)
{
	struct tmsg *t = parsed("intmeth.dat");

	check_ok(t);
	assert_slice(t->m.method,
	             "!interesting-Method0123456789_*+`.%indeed'~");
	assert_int_equal(t->m.method_id, SIP_METHOD_OTHER);
	const struct sip_cseq *cs = cseq_of(t);
	assert_int_equal(cs->num, 139122385);
	assert_slice(cs->method, "!interesting-Method0123456789_*+`.%indeed'~");
	assert_int_equal(cs->method_id, SIP_METHOD_OTHER);

	struct sip_uri ru = uri_of(t->m.ruri);
	assert_int_equal(ru.scheme, SIP_URI_SIP);
	assert_slice(ru.user,
	             "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
	assert_slice(ru.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
	assert_slice(ru.host, "example.com");

	assert_slice(top_via(t)->branch, "z9hG4bK-.!%66*_+`'~");

	/* quoted-pairs may escape any octet but CR and LF, NUL included */
	const struct sip_addr *to = to_of(t);
	assert_slice(to->display, "BEL:\\\a NUL:\\\0 DEL:\\\x7f");
	assert_slice(to->uri, "sip:1_unusual.URI~(to-be!sure)&isn't+it$/"
	                      "crazy?,/;;*@example.com");
	assert_slice(uri_of(to->uri).user,
	             "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");

	const struct sip_addr *from = from_of(t);
	assert_slice(from->display, "token1~` token2'+_ token3*%!.-");
	assert_slice(from->uri, "sip:mundane@example.com");
	assert_slice(from->tag, "_token~1'+`*%!-.");
	/* a quoted UTF-8 parameter value; sip_param_find keeps the quotes */
	assert_slice(param_of(from->params, "fromParam''~+*_!.-%"),
	             "\"\xd1\x80\xd0\xb0\xd0\xb1\xd0\xbe\xd1\x82\xd0\xb0"
	             "\xd1\x8e\xd1\x89\xd0\xb8\xd0\xb9\"");

	assert_slice(call_id_of(t), "intmeth.word%ZK-!.*_+'@word`~)(><:\\/\"]"
	                            "[?}{");
	assert_int_equal(max_forwards_of(t), 255);
	const struct sip_hdr *h = hdr_named(t, "extensionHeader-!.%*+_`'~");
	assert_int_equal(h->id, SIP_HDR_OTHER);
	assert_slice(h->value, "\xef\xbb\xbf\xe5\xa4\xa7\xe5\x81\x9c\xe9\x9b"
	                       "\xbb");
	assert_body(t, 0);
}

/* §3.1.1.3: %HH escapes in the user parts and URI parameters; unescaping
 * is done once, never recursively. */
static void test_esc01(void **state)
{
	struct tmsg *t = parsed("esc01.dat");
	struct sip_addr c[4];
	unsigned n = 0;

	check_ok(t);
	struct sip_uri ru = uri_of(t->m.ruri);
	assert_slice(ru.user, "sips%3Auser%40example.com");
	assert_unescaped(ru.user, "sips:user@example.com");
	assert_slice(ru.host, "example.net");

	struct sip_uri to = uri_of(to_of(t)->uri);
	assert_slice(to.user, "%75se%72");
	assert_unescaped(to.user, "user");
	assert_slice(to.host, "example.com");

	const struct sip_addr *from = from_of(t);
	assert_slice(from->tag, "938");
	struct sip_uri fu = uri_of(from->uri);
	assert_unescaped(fu.user, "I have spaces");
	assert_slice(fu.host, "example.net");

	/* "i:" and "C:" compact forms */
	assert_slice(call_id_of(t), "esc01.239409asdfakjkn23onasd0-3234");
	assert_slice(sip_msg_hdr(&t->m, SIP_HDR_CONTENT_TYPE)->value,
	             "application/sdp");

	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 1);
	struct sip_uri cu = uri_of(c[0].uri);
	assert_unescaped(cu.user, "caller");
	assert_slice(cu.host, "host5.example.net");
	assert_slice(cu.params, "%6C%72;n%61me=v%61lue%25%34%31");
	/* The parameters are "lr" and name=value%41: %25 decodes to a '%'
	 * that does not start another escape. */
	struct slice p1 = slice_make(cu.params.p, 6);
	struct slice p2 = slice_make(cu.params.p + 7, 6);
	struct slice v2 = slice_make(cu.params.p + 14, cu.params.len - 14);
	assert_unescaped(p1, "lr");
	assert_unescaped(p2, "name");
	assert_unescaped(v2, "value%41");

	assert_int_equal(cseq_of(t)->num, 234234);
	assert_body(t, 150);
}

/* §3.1.1.4: %00 in URIs is legal and unescapes to a NUL octet. */
static void test_escnull(void **state)
{
	struct tmsg *t = parsed("escnull.dat");
	struct sip_addr c[4];
	unsigned n = 0;

	check_ok(t);
	assert_int_equal(t->m.method_id, SIP_METHOD_REGISTER);
	struct sip_uri to = uri_of(to_of(t)->uri);
	assert_slice(to.user, "null-%00-null");
	assert_unescaped(to.user, "null-\0-null");
	struct sip_uri fu = uri_of(from_of(t)->uri);
	assert_unescaped(fu.user, "null-\0-null");
	assert_slice(from_of(t)->tag, "839923423");

	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 2);
	assert_unescaped(uri_of(c[0].uri).user, "\0");
	assert_unescaped(uri_of(c[1].uri).user, "\0\0");
	assert_slice(uri_of(c[1].uri).host, "host5.example.com");
	/* "L:0" */
	assert_body(t, 0);
}

/* §3.1.1.5: '%' where it is no escape: in a method (which is then not
 * REGISTER), a quoted display name, a branch, a header name. */
static void test_esc02(void **state)
{
	struct tmsg *t = parsed("esc02.dat");
	struct sip_addr c[4];
	unsigned n = 0;

	check_ok(t);
	assert_slice(t->m.method, "RE%47IST%45R");
	assert_int_equal(t->m.method_id, SIP_METHOD_OTHER);
	assert_slice(cseq_of(t)->method, "RE%47IST%45R");
	assert_int_equal(cseq_of(t)->method_id, SIP_METHOD_OTHER);
	assert_slice(to_of(t)->display, "%Z%45");
	assert_slice(from_of(t)->display, "%Z%45");
	assert_slice(top_via(t)->branch, "z9hG4bK209%fzsnel234");

	/* "C%6Fntact" is an unknown header, not a third Contact */
	const struct sip_hdr *h = hdr_named(t, "C%6Fntact");
	assert_int_equal(h->id, SIP_HDR_OTHER);
	assert_slice(h->value, "<sip:alias2@host2.example.com>");
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_CONTACT), 2);
	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 2);
	assert_slice(c[0].uri, "sip:alias1@host1.example.com");
	assert_slice(c[1].uri, "sip:alias3@host3.example.com");
	assert_body(t, 0);
}

/* §3.1.1.6: no LWS between a token display name and '<'. */
static void test_lwsdisp(void **state)
{
	struct tmsg *t = parsed("lwsdisp.dat");

	check_ok(t);
	assert_int_equal(t->m.method_id, SIP_METHOD_OPTIONS);
	const struct sip_addr *from = from_of(t);
	assert_slice(from->display, "caller");
	assert_slice(from->uri, "sip:caller@example.com");
	assert_true(from->bracketed);
	assert_slice(from->tag, "323");
}

/* A string of RFC 4475's long values: pre, n times unit, then post. */
static const char *rep(char *dst, size_t size, const char *pre,
                       const char *unit, int n, const char *post)
{
	size_t len = (size_t)snprintf(dst, size, "%s", pre);

	while (n-- > 0 && len < size)
		len += (size_t)snprintf(dst + len, size - len, "%s", unit);
	if (len < size)
		len += (size_t)snprintf(dst + len, size - len, "%s", post);
	assert_true(len < size);
	return dst;
}

/* §3.1.1.7: very long values, 34 Via elements spread over headers named
 * in every case and compact form. */
static void test_longreq(void **state)
{
	struct tmsg *t = parsed("longreq.dat");
	struct sip_via v[NVIAS];
	struct sip_addr c[4];
	unsigned n = 0;
	char want[512], want2[128];

	check_ok(t);
	const struct sip_addr *to = to_of(t);
	assert_slice_str(to->display,
	                 rep(want, sizeof(want), "I have a user name of ",
	                     "extreme", 10, " proportion"));
	struct sip_uri tu = uri_of(to->uri);
	assert_slice(tu.host, "example.com");
	assert_int_equal(tu.port, 6000);
	assert_slice_str(param_of(tu.params, "unknownparam1"),
	                 rep(want, sizeof(want), "very", "long", 20, "value"));
	rep(want, sizeof(want), "longparam", "name", 25, "");
	assert_slice(param_of(tu.params, want), "shortvalue");
	rep(want, sizeof(want), "very", "long", 25, "ParameterNameWithNoValue");
	assert_true(sip_param_find(NULL, tu.params, want));

	const struct sip_addr *from = from_of(t);
	assert_slice_str(from->tag,
	                 rep(want, sizeof(want), "1", "298", 50, "2424"));
	assert_slice_str(
	        uri_of(from->uri).user,
	        rep(want, sizeof(want), "", "amazinglylongcallername", 5, ""));
	rep(want, sizeof(want), "unknownheaderparam", "name", 20, "");
	assert_slice_str(param_of(from->params, want),
	                 rep(want2, sizeof(want2), "unknowheaderparam", "value",
	                     15, ""));
	rep(want, sizeof(want), "unknownValuelessparam", "nameparam", 9,
	    "name");
	assert_true(sip_param_find(NULL, from->params, want));

	assert_slice_str(call_id_of(t), rep(want, sizeof(want), "longreq.one",
	                                    "really", 20, "longcallid"));
	assert_int_equal(cseq_of(t)->num, 3882340);

	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_VIA), 34);
	assert_int_equal(sip_msg_vias(v, NVIAS, &n, &t->m), 0);
	assert_int_equal(n, 34);
	assert_slice(v[0].host, "sip33.example.com");
	assert_slice(v[32].host, "sip1.example.com");
	assert_slice(v[33].host, "host.example.com");
	assert_slice(v[33].received, "192.0.2.5");
	assert_slice_str(v[33].branch, rep(want, sizeof(want), "very", "long",
	                                   50, "branchvalue"));
	assert_int_equal(top_via(t)->branch.len, 0);

	const struct sip_hdr *h = hdr_named(
	        t, rep(want2, sizeof(want2), "Unknown-", "Long", 20, "-Name"));
	assert_int_equal(h->id, SIP_HDR_OTHER);
	/* value: "unknown-long...-value; unknown-long...-parameter-name =
	 * unknown-long...-parameter-value", each with 20 "long" */
	assert_int_equal(h->value.len, 306);
	assert_memory_equal(h->value.p + h->value.len - 16, "-parameter-value",
	                    16);

	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 1);
	assert_slice_str(
	        uri_of(c[0].uri).user,
	        rep(want, sizeof(want), "", "amazinglylongcallername", 5, ""));
	assert_slice(uri_of(c[0].uri).host, "host5.example.net");
	assert_body(t, 150);
}

/* §3.1.1.8: a second message after the first one's Content-Length: only
 * the first counts, the rest of the datagram is ignored. */
static void test_dblreq(void **state)
{
	struct tmsg *t = parsed("dblreq.dat");
	const char *end_of_hdrs;

	check_ok(t);
	assert_int_equal(t->m.method_id, SIP_METHOD_REGISTER);
	end_of_hdrs = strstr(t->buf, "\r\n\r\n");
	assert_non_null(end_of_hdrs);
	assert_int_equal(t->m.len, (size_t)(end_of_hdrs + 4 - t->buf));
	assert_true(t->m.len < t->len);
	assert_memory_equal(t->buf + t->m.len, "\r\nINVITE ", 9);
	assert_body(t, 0);
	/* nothing of the INVITE is indexed */
	assert_int_equal(t->m.nhdrs, 8);
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_VIA), 1);
	assert_slice(top_via(t)->branch, "z9hG4bKkdjuw23492");
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_CONTENT_TYPE), 0);
	assert_slice(call_id_of(t), "dblreq.0ha0isndaksdj99sdfafnl3lk233412");
	assert_int_equal(cseq_of(t)->num, 8);
	assert_int_equal(cseq_of(t)->method_id, SIP_METHOD_REGISTER);
	assert_int_equal(max_forwards_of(t), 8);
}

/* §3.1.1.9: ';' in the user part of a Request-URI belongs to the user,
 * it does not start URI parameters. */
static void test_semiuri(void **state)
{
	struct tmsg *t = parsed("semiuri.dat");
	struct sip_list_iter it;
	struct slice e;
	unsigned n = 0;

	check_ok(t);
	struct sip_uri ru = uri_of(t->m.ruri);
	assert_slice(ru.user, "user;par=u%40example.net");
	assert_unescaped(ru.user, "user;par=u@example.net");
	assert_slice(ru.host, "example.com");
	assert_int_equal(ru.params.len, 0);

	/* Accept folded over three lines: six media ranges */
	sip_list_init(&it, hdr_named(t, "Accept")->value);
	while (sip_list_next(&e, &it) == 0)
		n++;
	assert_int_equal(n, 6);
	assert_slice(e, "message/sipfrag");
}

/* §3.1.1.10: transports other than UDP and TCP, an unknown one too. */
static void test_transports(void **state)
{
	static const char *const transport[] = {"UDP", "SCTP", "TLS", "UNKNOWN",
	                                        "TCP"};
	struct tmsg *t = parsed("transports.dat");
	struct sip_via v[NVIAS];
	unsigned n = 0;
	char host[32];

	check_ok(t);
	assert_int_equal(sip_msg_vias(v, NVIAS, &n, &t->m), 0);
	assert_int_equal(n, 5);
	for (unsigned i = 0; i < n; i++) {
		snprintf(host, sizeof(host), "t%u.example.com", i + 1);
		assert_true(slice_eq_cstr(v[i].transport, transport[i]));
		assert_true(slice_eq_cstr(v[i].host, host));
		assert_slice(v[i].proto_name, "SIP");
		assert_true(v[i].branch.len > 7);
	}
	assert_slice(call_id_of(t), "transports.kijh4akdnaqjkwendsasfdj");
}

/* §3.1.1.11: a multipart body with binary octets (CR and LF among them)
 * delimited only by Content-Length. */
static void test_mpart01(void **state)
{
	struct tmsg *t = parsed("mpart01.dat");

	check_ok(t);
	assert_int_equal(t->m.method_id, SIP_METHOD_MESSAGE);
	assert_slice(sip_msg_hdr(&t->m, SIP_HDR_CONTENT_TYPE)->value,
	             "multipart/mixed;boundary=7a9cbec02ceef655");
	assert_body(t, 553);
	assert_int_equal(t->m.len, t->len);
	assert_memory_equal(t->m.body.p, "--7a9cbec02ceef655\r\n", 20);
	assert_memory_equal(t->m.body.p + t->m.body.len - 24,
	                    "\r\n--7a9cbec02ceef655--\r\n", 24);

	const struct sip_via *v = top_via(t);
	assert_slice(v->host, "127.0.0.1");
	assert_int_equal(v->port, 5070);
	assert_true(v->has_rport);
	assert_int_equal(v->rport.len, 0);
	assert_slice(v->branch, "z9hG4bK-d87543-4dade06d0bdb11ee-1--d87543-");
	assert_non_null(sip_msg_hdr(&t->m, SIP_HDR_IDENTITY));
	assert_slice(sip_msg_hdr(&t->m, SIP_HDR_DATE)->value,
	             "Sat, 15 Oct 2005 04:44:56 GMT");
}

/* §3.1.1.12: a reason phrase of UTF-8 and punctuation. */
static void test_unreason(void **state)
{
	struct tmsg *t = parsed("unreason.dat");

	check_ok(t);
	assert_false(t->m.is_request);
	assert_int_equal(t->m.status, 200);
	assert_slice(
	        t->m.reason,
	        "= 2**3 * 5**2 \xd0\xbd\xd0\xbe \xd1\x81\xd1\x82\xd0\xbe "
	        "\xd0\xb4\xd0\xb5\xd0\xb2\xd1\x8f\xd0\xbd\xd0\xbe\xd1\x81"
	        "\xd1\x82\xd0\xbe \xd0\xb4\xd0\xb5\xd0\xb2\xd1\x8f\xd1\x82"
	        "\xd1\x8c - \xd0\xbf\xd1\x80\xd0\xbe\xd1\x81\xd1\x82\xd0\xbe"
	        "\xd0\xb5");
	assert_int_equal(cseq_of(t)->method_id, SIP_METHOD_INVITE);
	assert_slice(to_of(t)->tag, "2229");
	assert_body(t, 154);
}

/* §3.1.1.13: "SIP/2.0 100 " with an empty reason phrase. */
static void test_noreason(void **state)
{
	struct tmsg *t = parsed("noreason.dat");

	check_ok(t);
	assert_false(t->m.is_request);
	assert_int_equal(t->m.status, 100);
	assert_int_equal(t->m.reason.len, 0);
	assert_slice(t->m.version, "SIP/2.0");
	assert_slice(top_via(t)->branch, "z9hG4bK2398ndaoe");
	assert_body(t, 0);
}

/* ---------------------------------------------- 3.1.2 invalid messages */

/* §3.1.2.1: empty Via and Contact parameters and list elements. */
static void test_badinv01(void **state)
{
	struct tmsg *t = parsed("badinv01.dat");

	check_refused(t, 400, "Via");
}

/* §3.1.2.2: Content-Length 9999 over a 150-byte body. */
static void test_clerr(void **state)
{
	struct tmsg *t = parsed("clerr.dat");

	check_refused(t, 400, "Content-Length larger");
}

/* §3.1.2.3: Content-Length -999. */
static void test_ncl(void **state)
{
	struct tmsg *t = parsed("ncl.dat");

	check_refused(t, 400, "Content-Length");
}

/* §3.1.2.4: CSeq number above 2^32, Max-Forwards 300, huge expiries: the
 * CSeq alone earns the 400 (the others could be taken as absent). */
static void test_scalar02(void **state)
{
	struct tmsg *t = parsed("scalar02.dat");
	struct sip_addr c[4];
	unsigned n = 0;
	uint32_t v;

	check_refused(t, 400, "CSeq");
	assert_int_equal(sip_msg_max_forwards(&v, &t->m), EBADMSG);
	assert_int_equal(sip_msg_expires(&v, &t->m), EBADMSG);
	/* the Contact expires parameter is kept raw for the registrar,
	 * which would take the default expiry for it */
	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 1);
	assert_slice(c[0].expires, "280297596632815");
}

/* §3.1.2.5: a response with an overlarge CSeq (and Retry-After, Warning
 * code): it fails the check and is discarded. */
static void test_scalarlg(void **state)
{
	struct tmsg *t = parsed("scalarlg.dat");

	assert_false(t->m.is_request);
	assert_int_equal(t->m.status, 503);
	check_refused(t, 400, "CSeq");
}

/* §3.1.2.6: a display name quote that is never closed. */
static void test_quotbal(void **state)
{
	struct tmsg *t = parsed("quotbal.dat");

	check_refused(t, 400, "quoted");
}

/* §3.1.2.7: Request-URI inside <>. */
static void test_ltgtruri(void **state)
{
	struct tmsg *t = parsed("ltgtruri.dat");

	check_refused(t, 400, "Request-URI");
}

/* §3.1.2.8: LWS inside the Request-URI splits the request line in four. */
static void test_lwsruri(void **state)
{
	struct tmsg *t = parsed("lwsruri.dat");

	assert_true(t->m.is_request);
	check_refused(t, 400, "request line");
}

/* §3.1.2.9: two SPs between request line elements. */
static void test_lwsstart(void **state)
{
	struct tmsg *t = parsed("lwsstart.dat");

	assert_true(t->m.is_request);
	check_refused(t, 400, "request line");
}

/* §3.1.2.10: SPs after the SIP version. */
static void test_trws(void **state)
{
	struct tmsg *t = parsed("trws.dat");

	assert_true(t->m.is_request);
	check_refused(t, 400, "request line");
}

/* §3.1.2.11: URI headers (an escaped Route) in a Request-URI. */
static void test_escruri(void **state)
{
	struct tmsg *t = parsed("escruri.dat");

	check_refused(t, 400, "Request-URI with headers");
}

/*
 * §3.1.2.12: the Date time zone "EST" is not the "GMT" RFC 3261 requires,
 * but a proxy does not interpret Date: it forwards the request unchanged
 * (the RFC allows exactly that), so the check passes and the value is kept
 * verbatim.
 */
static void test_baddate(void **state)
{
	struct tmsg *t = parsed("baddate.dat");

	check_ok(t);
	assert_slice(sip_msg_hdr(&t->m, SIP_HDR_DATE)->value,
	             "Fri, 01 Jan 2010 16:00:00 EST");
	assert_body(t, 150);
}

/* §3.1.2.13: a Contact addr-spec with URI headers ('?') outside <>. */
static void test_regbadct(void **state)
{
	struct tmsg *t = parsed("regbadct.dat");

	check_refused(t, 400, "malformed address");
}

/* §3.1.2.14: SPs inside <> around the To URI. */
static void test_badaspec(void **state)
{
	struct tmsg *t = parsed("badaspec.dat");

	check_refused(t, 400, "whitespace in URI");
}

/* §3.1.2.15: a ',' in an unquoted display name. */
static void test_baddn(void **state)
{
	struct tmsg *t = parsed("baddn.dat");
	const struct sip_addr *a;

	/* "Bell," is taken for an addr-spec, which has no scheme */
	check_refused(t, 400, "URI without scheme");
	/* it is the From (checked before the To, which is as bad) */
	assert_int_equal(sip_msg_from(&a, &t->m), EBADMSG);
	assert_int_equal(sip_msg_to(&a, &t->m), EBADMSG);
}

/* §3.1.2.16: SIP/7.0 earns a 505. */
static void test_badvers(void **state)
{
	struct tmsg *t = parsed("badvers.dat");

	assert_slice(t->m.version, "SIP/7.0");
	check_refused(t, 505, "version");
}

/* §3.1.2.17: OPTIONS with CSeq method INVITE. */
static void test_mismatch01(void **state)
{
	struct tmsg *t = parsed("mismatch01.dat");

	check_refused(t, 400, "CSeq method");
}

/* §3.1.2.18: unknown method NEWMETHOD with CSeq method INVITE. */
static void test_mismatch02(void **state)
{
	struct tmsg *t = parsed("mismatch02.dat");

	assert_slice(t->m.method, "NEWMETHOD");
	check_refused(t, 400, "CSeq method");
}

/* §3.1.2.19: status code 4294967301: the response cannot even be parsed,
 * so it is discarded. */
static void test_bigcode(void **state)
{
	struct tmsg *t = load("bigcode.dat");

	assert_int_equal(t->err, EBADMSG);
	assert_non_null(t->m.error);
	if (strstr(t->m.error, "status code") == NULL)
		fail_msg("reason \"%s\"", t->m.error);
}

/* -------------------------------------------------- 3.2 - 3.4 semantic */

/*
 * §3.2.1: the branch is the bare magic cookie "z9hG4bK" with no
 * identifier after it. The message must not break the parser; the proxy
 * either answers 400 or matches transactions by the RFC 2543 rules, since
 * the branch carries no unique value.
 */
static void test_badbranch(void **state)
{
	struct tmsg *t = parsed("badbranch.dat");

	check_ok(t);
	assert_slice(top_via(t)->branch, "z9hG4bK");
}

/* §3.3.1: no From, To, Call-ID nor Max-Forwards: answered with 400. */
static void test_insuf(void **state)
{
	struct tmsg *t = parsed("insuf.dat");

	check_refused(t, 400, "missing");
	assert_null(sip_msg_hdr(&t->m, SIP_HDR_FROM));
	assert_null(sip_msg_hdr(&t->m, SIP_HDR_TO));
	assert_null(sip_msg_hdr(&t->m, SIP_HDR_CALL_ID));
	/* the Via the 400 goes back along */
	assert_slice(top_via(t)->branch, "z9hG4bKkdj.insuf");
}

/* §3.3.2: an unknown Request-URI scheme: the proxy answers 416 (RFC 3261
 * §8.2.2.1) unless it can route it on other grounds. */
static void test_unkscm(void **state)
{
	struct tmsg *t = parsed("unkscm.dat");

	check_ok(t);
	struct sip_uri ru = uri_of(t->m.ruri);
	assert_int_equal(ru.scheme, SIP_URI_OTHER);
	assert_slice(ru.scheme_name, "nobodyKnowsThisScheme");
}

/* §3.3.3: soap.beep is registered but no SIP element routes it: 416. */
static void test_novelsc(void **state)
{
	struct tmsg *t = parsed("novelsc.dat");

	check_ok(t);
	struct sip_uri ru = uri_of(t->m.ruri);
	assert_int_equal(ru.scheme, SIP_URI_OTHER);
	assert_slice(ru.scheme_name, "soap.beep");
	assert_slice(t->m.ruri, "soap.beep://192.0.2.103:3002");
}

/* §3.3.4: To, From and Contact URIs of unknown schemes are legal; a proxy
 * forwards them untouched (a registrar may refuse the Contact). */
static void test_unksm2(void **state)
{
	struct tmsg *t = parsed("unksm2.dat");
	struct sip_addr c[4];
	unsigned n = 0;

	check_ok(t);
	struct sip_uri u = uri_of(to_of(t)->uri);
	assert_int_equal(u.scheme, SIP_URI_OTHER);
	assert_slice(u.scheme_name, "isbn");
	u = uri_of(from_of(t)->uri);
	assert_int_equal(u.scheme, SIP_URI_OTHER);
	assert_slice(u.scheme_name, "http");
	assert_slice(from_of(t)->tag, "3234233");
	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 1);
	u = uri_of(c[0].uri);
	assert_int_equal(u.scheme, SIP_URI_OTHER);
	assert_slice(u.scheme_name, "name");
}

/* §3.3.5: Proxy-Require lists options no proxy supports: the proxy answers
 * 420 with them in Unsupported. Require is for the UAS: not ours. */
static void test_bext01(void **state)
{
	struct tmsg *t = parsed("bext01.dat");
	struct sip_elem_iter it;
	struct slice e;

	check_ok(t);
	assert_slice(sip_msg_hdr(&t->m, SIP_HDR_PROXY_REQUIRE)->value,
	             "noProxiesSupportThis, norDoAnyProxiesSupportThis");
	sip_elem_iter_init(&it, &t->m, SIP_HDR_PROXY_REQUIRE);
	assert_int_equal(sip_elem_next(&e, &it), 0);
	assert_slice(e, "noProxiesSupportThis");
	assert_int_equal(sip_elem_next(&e, &it), 0);
	assert_slice(e, "norDoAnyProxiesSupportThis");
	assert_int_equal(sip_elem_next(&e, &it), ENOENT);
	assert_slice(sip_msg_hdr(&t->m, SIP_HDR_REQUIRE)->value,
	             "nothingSupportsThis, nothingSupportsThisEither");
	assert_slice(top_via(t)->transport, "TLS");
}

/* §3.3.6: an unknown Content-Type: the proxy forwards, the UAS answers
 * 415. */
static void test_invut(void **state)
{
	struct tmsg *t = parsed("invut.dat");

	check_ok(t);
	assert_slice(sip_msg_hdr(&t->m, SIP_HDR_CONTENT_TYPE)->value,
	             "application/unknownformat");
	assert_body(t, 40);
	assert_memory_equal(t->m.body.p, "<audio>\r\n", 9);
}

/* §3.3.7: an unknown Authorization scheme: not the proxy's credentials,
 * so it forwards the request; the registrar answers 401. */
static void test_regaut01(void **state)
{
	struct tmsg *t = parsed("regaut01.dat");

	check_ok(t);
	assert_slice(sip_msg_hdr(&t->m, SIP_HDR_AUTHORIZATION)->value,
	             "NoOneKnowsThisScheme opaque-data=here");
	/* "Content-Length:0" */
	assert_body(t, 0);
}

/* §3.3.8: two each of CSeq, Call-ID, To, From: answered with 400. */
static void test_multi01(void **state)
{
	struct tmsg *t = parsed("multi01.dat");

	check_refused(t, 400, "several");
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_CSEQ), 2);
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_CALL_ID), 2);
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_TO), 2);
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_FROM), 2);
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_MAX_FORWARDS), 2);
}

/* §3.3.9: two Content-Length values: the body cannot be delimited, 400. */
static void test_mcl01(void **state)
{
	struct tmsg *t = parsed("mcl01.dat");

	check_refused(t, 400, "Content-Length");
	assert_int_equal(sip_msg_hdr_count(&t->m, SIP_HDR_CONTENT_LENGTH), 2);
}

/*
 * §3.3.10: a 200 whose second Via sent-by is 255.255.255.255. Once the
 * proxy pops its own top Via the response would go to the broadcast
 * address: the proxy must not send it there (it discards the response).
 */
static void test_bcast(void **state)
{
	struct tmsg *t = parsed("bcast.dat");
	struct sip_via v[NVIAS];
	unsigned n = 0;

	check_ok(t);
	assert_false(t->m.is_request);
	assert_int_equal(t->m.status, 200);
	assert_int_equal(sip_msg_vias(v, NVIAS, &n, &t->m), 0);
	assert_int_equal(n, 2);
	assert_slice(v[0].host, "192.0.2.198");
	assert_slice(v[1].host, "255.255.255.255");
	assert_int_equal(v[1].host_type, SIP_HOST_IPV4);
	assert_slice(v[1].branch, "z9hG4bK1saber23");
}

/* §3.3.11: Max-Forwards 0: the proxy answers 483 (or, this being an
 * OPTIONS, may answer it itself, RFC 3261 §16.3 item 3). */
static void test_zeromf(void **state)
{
	struct tmsg *t = parsed("zeromf.dat");

	check_ok(t);
	assert_int_equal(t->m.method_id, SIP_METHOD_OPTIONS);
	assert_int_equal(max_forwards_of(t), 0);
}

/* §3.3.12: outside <>, ";unknownparam" is a Contact parameter, not a URI
 * parameter: the registrar stores the URI without it. */
static void test_cparam01(void **state)
{
	struct tmsg *t = parsed("cparam01.dat");
	struct sip_addr c[4];
	unsigned n = 0;

	check_ok(t);
	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 1);
	assert_false(c[0].bracketed);
	assert_slice(c[0].uri, "sip:+19725552222@gw1.example.net");
	assert_slice(c[0].params, "unknownparam");
	assert_int_equal(c[0].expires.len, 0);
	struct sip_uri u = uri_of(c[0].uri);
	assert_slice(u.user, "+19725552222");
	assert_int_equal(u.params.len, 0);
}

/* §3.3.13: inside <>, ";unknownparam" is a URI parameter, stored with the
 * binding. */
static void test_cparam02(void **state)
{
	struct tmsg *t = parsed("cparam02.dat");
	struct sip_addr c[4];
	unsigned n = 0;

	check_ok(t);
	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 1);
	assert_true(c[0].bracketed);
	assert_slice(c[0].uri, "sip:+19725552222@gw1.example.net;unknownparam");
	assert_int_equal(c[0].params.len, 0);
	assert_int_equal(c[0].expires.len, 0);
	struct sip_uri u = uri_of(c[0].uri);
	assert_slice(u.params, "unknownparam");
	assert_slice(u.host, "gw1.example.net");
}

/* §3.3.14: an escaped Route header in a Contact URI inside <> is legal
 * (unlike in a Request-URI): the registrar stores it. */
static void test_regescrt(void **state)
{
	struct tmsg *t = parsed("regescrt.dat");
	struct sip_addr c[4];
	unsigned n = 0;

	check_ok(t);
	assert_int_equal(sip_msg_contacts(c, 4, &n, &t->m), 0);
	assert_int_equal(n, 1);
	assert_true(c[0].bracketed);
	struct sip_uri u = uri_of(c[0].uri);
	assert_slice(u.host, "example.com");
	assert_slice(u.headers, "Route=%3Csip:sip.example.com%3E");
	assert_unescaped(u.headers, "Route=<sip:sip.example.com>");
}

/* §3.3.15: an Accept that excludes the offered SDP: the proxy forwards,
 * the UAS answers 406. */
static void test_sdp01(void **state)
{
	struct tmsg *t = parsed("sdp01.dat");

	check_ok(t);
	assert_slice(hdr_named(t, "Accept")->value, "text/nobodyKnowsThis");
	assert_slice(sip_msg_hdr(&t->m, SIP_HDR_CONTENT_TYPE)->value,
	             "application/sdp");
	assert_body(t, 150);
}

/*
 * §3.4.1: RFC 2543 syntax: no branch, no From tag, no Content-Length (the
 * body runs to the end of the datagram), no Max-Forwards. Accepted for
 * backward compatibility; transactions match by the RFC 2543 rules.
 */
static void test_inv2543(void **state)
{
	struct tmsg *t = parsed("inv2543.dat");
	uint32_t mf;

	check_ok(t);
	assert_int_equal(top_via(t)->branch.len, 0);
	assert_slice(top_via(t)->host, "iftgw.example.com");
	assert_false(from_of(t)->has_tag);
	assert_false(to_of(t)->has_tag);
	assert_int_equal(sip_msg_max_forwards(&mf, &t->m), ENOENT);
	assert_false(t->m.has_content_length);
	assert_int_equal(t->m.len, t->len);
	assert_ptr_equal(t->m.body.p + t->m.body.len, t->buf + t->len);
	assert_memory_equal(t->m.body.p, "v=0\r\n", 5);

	/* outside <>, ";user=phone" is a To parameter (RFC 3261 §20) */
	assert_slice(to_of(t)->uri, "sip:+16505552222@ss1.example.net");
	assert_slice(to_of(t)->params, "user=phone");
	struct sip_uri fu = uri_of(from_of(t)->uri);
	assert_slice(fu.user, "+13035551111");
	assert_slice(fu.user_param, "phone");

	struct sip_elem_iter it;
	struct slice e;
	struct sip_addr rr;
	const char *why = NULL;
	sip_elem_iter_init(&it, &t->m, SIP_HDR_RECORD_ROUTE);
	assert_int_equal(sip_elem_next(&e, &it), 0);
	assert_int_equal(sip_addr_parse(&rr, e, 0, &why), 0);
	assert_slice(uri_of(rr.uri).maddr, "ss1.example.com");
}

#define T(f) cmocka_unit_test_teardown(f, release)

int main(void)
{
	const struct CMUnitTest tests[] = {
	        T(test_wsinv),      T(test_intmeth),  T(test_esc01),
	        T(test_escnull),    T(test_esc02),    T(test_lwsdisp),
	        T(test_longreq),    T(test_dblreq),   T(test_semiuri),
	        T(test_transports), T(test_mpart01),  T(test_unreason),
	        T(test_noreason),   T(test_badinv01), T(test_clerr),
	        T(test_ncl),        T(test_scalar02), T(test_scalarlg),
	        T(test_quotbal),    T(test_ltgtruri), T(test_lwsruri),
	        T(test_lwsstart),   T(test_trws),     T(test_escruri),
	        T(test_baddate),    T(test_regbadct), T(test_badaspec),
	        T(test_baddn),      T(test_badvers),  T(test_mismatch01),
	        T(test_mismatch02), T(test_bigcode),  T(test_badbranch),
	        T(test_insuf),      T(test_unkscm),   T(test_novelsc),
	        T(test_unksm2),     T(test_bext01),   T(test_invut),
	        T(test_regaut01),   T(test_multi01),  T(test_mcl01),
	        T(test_bcast),      T(test_zeromf),   T(test_cparam01),
	        T(test_cparam02),   T(test_regescrt), T(test_sdp01),
	        T(test_inv2543),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
