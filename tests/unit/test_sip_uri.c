/*
 * sip_uri_parse(), sip_uri_unescape() and sip_param_find(): RFC 3261
 * §19.1 and §25.1, RFC 3966, RFC 5118 / RFC 5954 IPv6 references and the
 * URIs of the RFC 4475 torture tests.
 */
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

#include "sip/sip.h"

/*
 * Every URI is parsed from a heap copy of exactly its length, so that
 * AddressSanitizer catches a read past the end. The copy stays alive until
 * the next parse (the result points into it) or the end of the test.
 */
static char *buf;

static int teardown(void **state)
{
	(void)state;
	free(buf);
	buf = NULL;
	return 0;
}

static int parse(struct sip_uri *u, const char *s, const char **why)
{
	size_t n = strlen(s);

	free(buf);
	buf = malloc(n > 0 ? n : 1);
	assert_non_null(buf);
	memcpy(buf, s, n);
	return sip_uri_parse(u, slice_make(buf, n), why);
}

static void parse_ok(struct sip_uri *u, const char *s)
{
	const char *why = NULL;
	int err = parse(u, s, &why);

	if (err != 0)
		print_error("%s: %s\n", s, why);
	assert_int_equal(err, 0);
}

/* A slice equal to want; want NULL means absent (p == NULL). */
#define assert_slice(s, want)                                                  \
	do {                                                                   \
		struct slice s_ = (s);                                         \
		const char *w_ = (want);                                       \
		char b_[512];                                                  \
		if (w_ == NULL) {                                              \
			assert_null(s_.p);                                     \
			assert_int_equal(s_.len, 0);                           \
			break;                                                 \
		}                                                              \
		assert_non_null(s_.p);                                         \
		assert_true(s_.len < sizeof(b_));                              \
		if (s_.len > 0)                                                \
			memcpy(b_, s_.p, s_.len);                              \
		b_[s_.len] = '\0';                                             \
		assert_string_equal(b_, w_);                                   \
	} while (0)

/* Rejected with EBADMSG and this reason (the output may be changed: the
 * parser writes into it as it goes). */
static void expect_bad(const char *s, const char *want_why)
{
	struct sip_uri u;
	const char *why = NULL;

	int err = parse(&u, s, &why);
	if (err != EBADMSG)
		print_error("accepted: \"%s\"\n", s);
	assert_int_equal(err, EBADMSG);
	assert_non_null(why);
	if (want_why != NULL)
		assert_string_equal(why, want_why);
}

/* ------------------------------------------------------------- SIP */

/*
 * The host rules written from the grammar (RFC 3261 §25.1, labels as RFC
 * 1123 has them): -1 when h is not a host, else its type. The reference
 * the parser's bitmaps and byte walk must agree with.
 */
static int ref_host(const char *h, size_t n)
{
	size_t start = 0, labels = 0, top = 0;
	bool all_digits = true, trailing_dot = false;

	if (n == 0)
		return -1;
	for (size_t i = 0; i <= n; i++) {
		if (i < n && h[i] != '.')
			continue;
		/* the label [start, i) */
		if (i == start) {
			if (i == n && labels > 0 && h[n - 1] == '.') {
				trailing_dot = true;
				break;
			}
			return -1;
		}
		if (h[start] == '-' || h[i - 1] == '-')
			return -1;
		for (size_t k = start; k < i; k++)
			if (h[k] < '0' || h[k] > '9')
				all_digits = false;
		if (i - start > 3)
			all_digits = false;
		else if (all_digits && atoi(h + start) > 255)
			all_digits = false;
		top = start;
		labels++;
		start = i + 1;
	}
	if (all_digits && labels == 4 && !trailing_dot)
		return SIP_HOST_IPV4;
	return isalpha((unsigned char)h[top]) ? SIP_HOST_NAME : -1;
}

/*
 * Hosts of 1 to 80 bytes of letters, digits, '-' and '.' (a fixed
 * pseudo-random sequence, weighted towards names that almost pass),
 * alone after "sip:" and between "u@" and ";lr": the parser accepts
 * exactly what ref_host() does, with the same type. Short ones take the
 * 16-byte bitmaps, 17 to 63 bytes the chunked ones, longer the byte walk.
 */
static void test_hosts_against_the_grammar(void **state)
{
	static const char alphabet[] = "abcxyzAZ0123456789-..";
	char host[96], text[128];
	uint32_t seed = 12345;
	unsigned names = 0, long_names = 0, addresses = 0;

	(void)state;
	for (int round = 0; round < 40000; round++) {
		size_t n = 0;
		seed = seed * 1103515245u + 12345u;
		if (round % 8 == 0) {
			/* a dotted quad, its parts up to 3 digits and 399 */
			for (int k = 0; k < 4; k++) {
				seed = seed * 1103515245u + 12345u;
				n += (size_t)snprintf(
				        host + n, sizeof(host) - n,
				        k ? ".%u" : "%u", (seed >> 16) % 400);
			}
		} else {
			n = 1 + (seed >> 16) % 80;
			for (size_t i = 0; i < n; i++) {
				seed = seed * 1103515245u + 12345u;
				unsigned r = (seed >> 16) % 64;
				/* mostly letters, so that many pass */
				host[i] = r < 40 ? (char)('a' + r % 26)
				          : r < 50
				                  ? (char)('0' + r % 10)
				                  : alphabet[r %
				                             (sizeof(alphabet) -
				                              1)];
			}
		}
		host[n] = '\0';
		int want = ref_host(host, n);
		names += want == SIP_HOST_NAME;
		long_names += want == SIP_HOST_NAME && n > 16 && n < 64;
		addresses += want == SIP_HOST_IPV4;
		for (int form = 0; form < 2; form++) {
			struct sip_uri u;
			const char *why = NULL;
			snprintf(text, sizeof(text),
			         form ? "sip:u@%s;lr" : "sip:%s", host);
			int err = parse(&u, text, &why);
			if ((err == 0) != (want >= 0))
				print_error("%s: parser %d, grammar %d\n", text,
				            err, want);
			assert_int_equal(err == 0, want >= 0);
			if (err == 0) {
				assert_slice(u.host, host);
				assert_int_equal(u.host_type, want);
			}
		}
	}
	/* the sequence reaches both kinds, and names of every length class */
	assert_true(names - long_names > 1000);
	assert_true(long_names > 1000);
	assert_true(addresses > 500);
}

/*
 * A port that ends the URI (the usual Request-URI, From, To and Contact):
 * every length of port, with URIs shorter and longer than the 8 bytes a
 * word read would need, in exact-length buffers.
 */
static void test_port_at_the_end(void **state)
{
	static const struct {
		const char *port;
		long value; /* -1: "bad URI port" */
	} ports[] = {{"0", 0},       {"7", 7},        {"80", 80},
	             {"5060", 5060}, {"05060", 5060}, {"65535", 65535},
	             {"65536", -1},  {"99999", -1},   {"123456", -1},
	             {"000001", -1}, {"1a", -1},      {"", -1}};
	static const char *const hosts[] = {"h", "ab", "h.example",
	                                    "u@10.0.0.1"};
	char text[64];
	struct sip_uri u;

	(void)state;
	for (size_t h = 0; h < sizeof(hosts) / sizeof(hosts[0]); h++) {
		for (size_t i = 0; i < sizeof(ports) / sizeof(ports[0]); i++) {
			snprintf(text, sizeof(text), "sip:%s:%s", hosts[h],
			         ports[i].port);
			if (ports[i].value < 0) {
				expect_bad(text, "bad URI port");
				continue;
			}
			parse_ok(&u, text);
			assert_true(u.has_port);
			assert_int_equal(u.port, ports[i].value);
		}
	}
}

static void test_full(void **state)
{
	struct sip_uri u;

	(void)state;
	parse_ok(&u, "sip:alice:secret@atlanta.com;transport=tcp;lr"
	             "?subject=project%20x&priority=urgent");
	assert_int_equal(u.scheme, SIP_URI_SIP);
	assert_slice(u.scheme_name, "sip");
	assert_slice(u.user, "alice");
	assert_slice(u.password, "secret");
	assert_slice(u.host, "atlanta.com");
	assert_int_equal(u.host_type, SIP_HOST_NAME);
	assert_false(u.has_port);
	assert_int_equal(u.port, 0);
	assert_slice(u.params, "transport=tcp;lr");
	assert_slice(u.headers, "subject=project%20x&priority=urgent");
	assert_slice(u.transport, "tcp");
	assert_true(u.lr);
	assert_slice(u.maddr, NULL);
	assert_slice(u.user_param, NULL);
	assert_slice(u.method, NULL);
	assert_slice(u.ttl, NULL);
}

static void test_sips_ipv6(void **state)
{
	struct sip_uri u;

	(void)state;
	parse_ok(&u, "sips:[2001:db8::10]:5061;maddr=239.255.255.1;ttl=15");
	assert_int_equal(u.scheme, SIP_URI_SIPS);
	assert_slice(u.scheme_name, "sips");
	assert_slice(u.user, NULL);
	assert_slice(u.password, NULL);
	assert_slice(u.host, "2001:db8::10");
	assert_int_equal(u.host_type, SIP_HOST_IPV6);
	assert_true(u.has_port);
	assert_int_equal(u.port, 5061);
	assert_slice(u.params, "maddr=239.255.255.1;ttl=15");
	assert_slice(u.maddr, "239.255.255.1");
	assert_slice(u.ttl, "15");
	assert_slice(u.transport, NULL);
	assert_false(u.lr);
	assert_slice(u.headers, NULL);
}

static void test_telephone_user(void **state)
{
	struct sip_uri u;

	(void)state;
	parse_ok(&u, "sip:+1-212-555-1212:1234@gateway.com;user=phone");
	assert_int_equal(u.scheme, SIP_URI_SIP);
	assert_slice(u.user, "+1-212-555-1212");
	assert_slice(u.password, "1234");
	assert_slice(u.host, "gateway.com");
	assert_slice(u.user_param, "phone");
	assert_slice(u.params, "user=phone");

	/* '#' of a dtmf-digit (RFC 2806 telephone-subscriber) */
	parse_ok(&u, "sip:*31#2000@ims.example.net;user=dialstring");
	assert_slice(u.user, "*31#2000");
	assert_slice(u.user_param, "dialstring");
}

static void test_case(void **state)
{
	struct sip_uri u;

	(void)state;
	parse_ok(&u, "SIP:User@Example.COM");
	assert_int_equal(u.scheme, SIP_URI_SIP);
	assert_slice(u.scheme_name, "SIP");
	assert_slice(u.user, "User");
	assert_slice(u.host, "Example.COM");

	parse_ok(&u, "sIpS:h.example.com;LR;Transport=TLS;TTL=1;MADDR=a.b;"
	             "METHOD=INVITE;USER=ip");
	assert_int_equal(u.scheme, SIP_URI_SIPS);
	assert_true(u.lr);
	assert_slice(u.transport, "TLS");
	assert_slice(u.ttl, "1");
	assert_slice(u.maddr, "a.b");
	assert_slice(u.method, "INVITE");
	assert_slice(u.user_param, "ip");
}

/* RFC 4475 §3.1.1.9 semiuri and §3.1.1.2 intmeth */
static void test_unusual_user(void **state)
{
	struct sip_uri u;

	(void)state;
	parse_ok(&u, "sip:user;par=u%40example.net@example.com");
	assert_slice(u.user, "user;par=u%40example.net");
	assert_slice(u.password, NULL);
	assert_slice(u.host, "example.com");
	assert_slice(u.params, NULL);

	parse_ok(&u, "sip:1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*:"
	             "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)@example.com");
	assert_slice(u.user,
	             "1_unusual.URI~(to-be!sure)&isn't+it$/crazy?,/;;*");
	assert_slice(u.password, "&it+has=1,weird!*pas$wo~d_too.(doesn't-it)");
	assert_slice(u.host, "example.com");
	assert_slice(u.params, NULL);
	assert_slice(u.headers, NULL);

	/* empty password is allowed: password = *( ... ) */
	parse_ok(&u, "sip:a:@b.example");
	assert_slice(u.user, "a");
	assert_slice(u.password, "");
}

/* RFC 4475 §3.1.1.3 esc01, §3.1.1.4 escnull, §3.1.1.5 esc02 */
static void test_escapes(void **state)
{
	struct sip_uri u;
	char out[64];

	(void)state;
	parse_ok(&u, "sip:null-%00-null@example.com");
	assert_slice(u.user, "null-%00-null");
	assert_int_equal(sip_uri_unescape(out, sizeof(out), u.user), 11);
	assert_memory_equal(out, "null-\0-null", 11);

	parse_ok(&u, "sip:sips%3Auser%40example.com@example.net");
	assert_int_equal(u.scheme, SIP_URI_SIP);
	assert_slice(u.user, "sips%3Auser%40example.com");
	assert_slice(u.host, "example.net");
	assert_int_equal(sip_uri_unescape(out, sizeof(out), u.user), 21);
	assert_memory_equal(out, "sips:user@example.com", 21);

	/*
	 * ";%6C%72" is the escaped name "lr": valid syntax, kept raw, and
	 * not taken as the lr flag (names are compared raw, not unescaped).
	 */
	parse_ok(&u, "sip:cal%6Cer@host5.example.net;%6C%72;"
	             "n%61me=v%61lue%25%34%31");
	assert_slice(u.user, "cal%6Cer");
	assert_slice(u.host, "host5.example.net");
	assert_slice(u.params, "%6C%72;n%61me=v%61lue%25%34%31");
	assert_false(u.lr);
	assert_int_equal(sip_uri_unescape(out, sizeof(out), u.user), 6);
	assert_memory_equal(out, "caller", 6);

	/* escapes in password, params and headers; any hex case */
	parse_ok(&u, "sip:a:p%2a%2A@h;x=%5b?n%3d=%3c%3E");
	assert_slice(u.password, "p%2a%2A");
	assert_slice(u.params, "x=%5b");
	assert_slice(u.headers, "n%3d=%3c%3E");
}

static void test_hosts(void **state)
{
	struct sip_uri u;

	(void)state;
	parse_ok(&u, "sip:192.0.2.1:5060");
	assert_slice(u.host, "192.0.2.1");
	assert_int_equal(u.host_type, SIP_HOST_IPV4);
	assert_true(u.has_port);
	assert_int_equal(u.port, 5060);

	parse_ok(&u, "sip:u@255.255.255.255");
	assert_int_equal(u.host_type, SIP_HOST_IPV4);
	parse_ok(&u, "sip:9.99.199.249:5060");
	assert_int_equal(u.host_type, SIP_HOST_IPV4);
	assert_slice(u.host, "9.99.199.249");
	parse_ok(&u, "sip:001.02.250.0");
	assert_int_equal(u.host_type, SIP_HOST_IPV4);
	parse_ok(&u, "sip:u@0.0.0.0;lr");
	assert_slice(u.host, "0.0.0.0");
	assert_int_equal(u.host_type, SIP_HOST_IPV4);
	assert_true(u.lr);

	/* names: digits in inner labels, hyphens, a final dot */
	parse_ok(&u, "sip:1.2.3.example.com");
	assert_slice(u.host, "1.2.3.example.com");
	assert_int_equal(u.host_type, SIP_HOST_NAME);
	parse_ok(&u, "sip:u@host-1.a--b.example.");
	assert_slice(u.host, "host-1.a--b.example.");
	assert_int_equal(u.host_type, SIP_HOST_NAME);
	parse_ok(&u, "sip:localhost:0");
	assert_slice(u.host, "localhost");
	assert_true(u.has_port);
	assert_int_equal(u.port, 0);
	parse_ok(&u, "sip:h:65535");
	assert_int_equal(u.port, 65535);
	parse_ok(&u, "sip:h:05060");
	assert_int_equal(u.port, 5060);

	/* a digit-only top label is neither a name nor an address */
	expect_bad("sip:user@256.1.1.1", "bad URI host");
	expect_bad("sip:1.2.3", "bad URI host");
	expect_bad("sip:1.2.3.4.5", "bad URI host");
	expect_bad("sip:1.2.3.4.", "bad URI host");
	expect_bad("sip:1.2.3.0004", "bad URI host");
	expect_bad("sip:1.2.3.256", "bad URI host");
	expect_bad("sip:1.2.300.4", "bad URI host");
	expect_bad("sip:1..3.4", "bad URI host");
	expect_bad("sip:example.123", "bad URI host");
	expect_bad("sip:-a.example.com", "bad URI host");
	expect_bad("sip:a-.example.com", "bad URI host");
	expect_bad("sip:a.example-", "bad URI host");
	expect_bad("sip:a..example.com", "bad URI host");
	expect_bad("sip:.example.com", "bad URI host");
	expect_bad("sip:example.com..", "bad URI host");
	expect_bad("sip:ex_ample.com", "bad URI host");

	/* The same rules in URIs of 16 bytes or more, whose hosts SSE2
	 * checks from bitmaps (the short ones above take the byte loop). */
	static const struct {
		const char *host;
		int type; /* -1: rejected */
	} hosts[] = {
	        {"1.2.3.4", SIP_HOST_IPV4},
	        {"255.255.255.255", SIP_HOST_IPV4},
	        {"001.02.250.0", SIP_HOST_IPV4},
	        {"249.250.199.9", SIP_HOST_IPV4},
	        {"1.2.3.example.com", SIP_HOST_NAME},
	        {"a.example.", SIP_HOST_NAME},
	        {"256.1.1.1", -1},
	        {"1.2.3.260", -1},
	        {"1.2.300.4", -1},
	        {"1.2.3.999", -1},
	        {"1.2.3", -1},
	        {"1.2.3.4.5", -1},
	        {"1.2.3.4.", -1},
	        {"1.2.3.0004", -1},
	        {"1..3.4", -1},
	        {".1.2.3.4", -1},
	};
	for (size_t i = 0; i < sizeof(hosts) / sizeof(hosts[0]); i++) {
		char uri[64];
		snprintf(uri, sizeof(uri), "sip:%s;transport=udp",
		         hosts[i].host);
		if (hosts[i].type < 0) {
			expect_bad(uri, "bad URI host");
			continue;
		}
		parse_ok(&u, uri);
		assert_slice(u.host, hosts[i].host);
		assert_int_equal(u.host_type, hosts[i].type);
		assert_slice(u.transport, "udp");
	}
	expect_bad("sip:user@exa mple.com", "bad URI host");
	expect_bad("sip:a@b@c.example", "bad URI host");
	expect_bad("sip:u@", "bad URI host");
}

/* RFC 5118 and the RFC 5954 correction of the IPv6reference ABNF */
static void test_ipv6(void **state)
{
	struct sip_uri u;

	(void)state;
	parse_ok(&u, "sip:[::1]");
	assert_slice(u.host, "::1");
	assert_int_equal(u.host_type, SIP_HOST_IPV6);
	assert_false(u.has_port);

	parse_ok(&u, "sip:[2001:db8::10:5070]");
	assert_slice(u.host, "2001:db8::10:5070");
	assert_false(u.has_port);
	parse_ok(&u, "sip:user@[2001:db8::10]:5070;lr");
	assert_slice(u.host, "2001:db8::10");
	assert_int_equal(u.port, 5070);
	assert_true(u.lr);
	parse_ok(&u, "sip:[::ffff:192.0.2.10]");
	assert_slice(u.host, "::ffff:192.0.2.10");
	parse_ok(&u, "sip:[2001:db8::192.0.2.1]");
	assert_slice(u.host, "2001:db8::192.0.2.1");
	parse_ok(&u, "sip:[1:2:3:4:5:6:7:8]");
	assert_slice(u.host, "1:2:3:4:5:6:7:8");
	parse_ok(&u, "sip:[1:2:3:4:5:6:1.2.3.4]");
	parse_ok(&u, "sip:[::]");
	assert_slice(u.host, "::");
	parse_ok(&u, "sip:[1::]");
	parse_ok(&u, "sip:[FEDC:BA98::abcd]");
	parse_ok(&u, "sip:[1:2:3:4:5:6:7::]");

	expect_bad("sip:[::1", "bad URI host");
	expect_bad("sip:[]", "bad URI host");
	expect_bad("sip:[:]", "bad URI host");
	expect_bad("sip:[:1]", "bad URI host");
	expect_bad("sip:[1:]", "bad URI host");
	expect_bad("sip:[1:2:3:4:5:6:7]", "bad URI host");
	expect_bad("sip:[1:2:3:4:5:6:7:8:9]", "bad URI host");
	expect_bad("sip:[1:2:3:4:5:6:7::8]", "bad URI host");
	expect_bad("sip:[1::2::3]", "bad URI host");
	expect_bad("sip:[12345::1]", "bad URI host");
	expect_bad("sip:[::g]", "bad URI host");
	expect_bad("sip:[2001:db8:::192.0.2.1]", "bad URI host");
	expect_bad("sip:[::256.0.0.1]", "bad URI host");
	expect_bad("sip:[::1.2.3]", "bad URI host");
	expect_bad("sip:[1:2:3:4:5:6:7:1.2.3.4]", "bad URI host");
	expect_bad("sip:[::1]x", "bad URI host");
	expect_bad("sip:[::1]:", "bad URI port");
	/* RFC 5118 §4.2: an IPv6 address must be bracketed */
	expect_bad("sip:2001:db8::10", NULL);
}

static void test_params(void **state)
{
	struct sip_uri u;

	(void)state;
	/* the first occurrence wins, as with sip_param_find() */
	parse_ok(&u, "sip:h;transport=udp;transport=tcp");
	assert_slice(u.transport, "udp");

	/* a bare name: present, with an empty value after the name */
	parse_ok(&u, "sip:h;transport;lr=on");
	assert_non_null(u.transport.p);
	assert_int_equal(u.transport.len, 0);
	assert_ptr_equal(u.transport.p, u.params.p + 9);
	assert_true(u.lr);

	parse_ok(&u, "sip:h;lrx;xlr;l;maddr=[::1]");
	assert_false(u.lr);
	assert_slice(u.maddr, "[::1]");
	assert_slice(u.params, "lrx;xlr;l;maddr=[::1]");

	parse_ok(&u, "sip:h;a=/:&+$[];-_.!~*'()");
	assert_slice(u.params, "a=/:&+$[];-_.!~*'()");

	/* '@' is in no set after the host: it always ends a userinfo */
	parse_ok(&u, "sip:h;a@b");
	assert_slice(u.user, "h;a");
	assert_slice(u.host, "b");
	assert_slice(u.params, NULL);

	parse_ok(&u, "sip:h;method=REGISTER?to=x");
	assert_slice(u.method, "REGISTER");
	assert_slice(u.params, "method=REGISTER");
	assert_slice(u.headers, "to=x");

	/* RFC 4475 §3.1.2.7 lwsruri and other LWS */
	expect_bad("sip:user@example.com;   lr", "bad URI parameter");
	expect_bad("sip:user@example.com; lr", "bad URI parameter");
	expect_bad("sip:user@example.com;lr ", "bad URI parameter");
	expect_bad("sip:user@example.com;a= b", "bad URI parameter");
	expect_bad("sip:h;", "bad URI parameter");
	expect_bad("sip:h;;lr", "bad URI parameter");
	expect_bad("sip:h;lr;", "bad URI parameter");
	expect_bad("sip:h;=x", "bad URI parameter");
	expect_bad("sip:h;a=", "bad URI parameter");
	expect_bad("sip:h;a=b=c", "bad URI parameter");
	expect_bad("sip:h;a=\"b\"", "bad URI parameter");
	expect_bad("sip:h;a=b,c", "bad URI parameter");
	expect_bad("sip:h;a<b", "bad URI parameter");
	expect_bad("sip:h;a=%4", "bad escape in URI");
	expect_bad("sip:h;%zz", "bad escape in URI");
}

static void test_headers(void **state)
{
	struct sip_uri u;

	(void)state;
	/* RFC 4475 §3.1.2.10 escruri: syntactically a valid URI */
	parse_ok(&u, "sip:user@example.com?Route=%3Csip:example.com%3E");
	assert_slice(u.headers, "Route=%3Csip:example.com%3E");
	assert_slice(u.params, NULL);

	parse_ok(&u, "sip:h?a=&b=?/[]:+$&c=d");
	assert_slice(u.headers, "a=&b=?/[]:+$&c=d");

	expect_bad("sip:h?", "bad URI header");
	expect_bad("sip:h?a", "bad URI header");
	expect_bad("sip:h?=b", "bad URI header");
	expect_bad("sip:h?a=b&", "bad URI header");
	expect_bad("sip:h?a=b=c", "bad URI header");
	expect_bad("sip:h?a=b;c", "bad URI header");
	expect_bad("sip:h?a=b c", "bad URI header");
	expect_bad("sip:h?a=%G0", "bad escape in URI");
}

static void test_bad_sip(void **state)
{
	(void)state;
	expect_bad("", "empty URI");
	expect_bad("sip", "bad URI scheme");
	expect_bad("sip:", "bad URI host");
	expect_bad("sips:", "bad URI host");
	/* RFC 4475 §3.1.2.6 ltgtruri */
	expect_bad("<sip:a@b>", "bad URI scheme");
	expect_bad(" sip:a@b", "bad URI scheme");
	expect_bad("sip :a@b", "bad URI scheme");
	expect_bad("sip:a@b ", "bad URI host");
	expect_bad("sip:a@b\r\n", "bad URI host");
	expect_bad("sip:a@b>", "bad URI host");
	expect_bad("sip: a@b", "bad URI user");

	expect_bad("sip:user@example.com:65536", "bad URI port");
	expect_bad("sip:user@example.com:99999", "bad URI port");
	expect_bad("sip:h:123456", "bad URI port");
	expect_bad("sip:h:00005060", "bad URI port");
	expect_bad("sip:h:", "bad URI port");
	expect_bad("sip:h:50a", "bad URI port");
	expect_bad("sip:h:-1", "bad URI port");
	expect_bad("sip:h:1:2", "bad URI port");

	expect_bad("sip:%zz@example.com", "bad escape in URI");
	expect_bad("sip:a%4@example.com", "bad escape in URI");
	expect_bad("sip:a%@example.com", "bad escape in URI");
	expect_bad("sip:a:%xy@example.com", "bad escape in URI");
	expect_bad("sip:@example.com", "bad URI user");
	expect_bad("sip::pw@example.com", "bad URI user");
	expect_bad("sip:us er@example.com", "bad URI user");
	expect_bad("sip:a\"b@example.com", "bad URI user");
	expect_bad("sip:a[b@example.com", "bad URI user");
	expect_bad("sip:a:b:c@example.com", "bad URI password");
	expect_bad("sip:a:b;c@example.com", "bad URI password");
	expect_bad("sip:a:b?c@example.com", "bad URI password");
}

/* The parser stops at the end of the slice, whatever follows it. */
static void test_bounds(void **state)
{
	static const char text[] = "sip:alice@example.com:5060;lr?a=b";
	struct sip_uri u;
	const char *why = NULL;

	(void)state;
	assert_int_equal(sip_uri_parse(&u, slice_make(text, 21), &why), 0);
	assert_slice(u.host, "example.com");
	assert_false(u.has_port);
	assert_int_equal(sip_uri_parse(&u, slice_make(text, 25), &why), 0);
	assert_int_equal(u.port, 506);
	assert_int_equal(sip_uri_parse(&u, slice_make(text, 29), &why), 0);
	assert_slice(u.params, "lr");
	assert_true(u.lr);
	assert_slice(u.headers, NULL);
	assert_int_equal(sip_uri_parse(&u, slice_make(text, 22), &why),
	                 EBADMSG);
	assert_string_equal(why, "bad URI port");
	assert_int_equal(sip_uri_parse(&u, slice_make(text, 3), &why), EBADMSG);
	assert_string_equal(why, "bad URI scheme");
	assert_int_equal(sip_uri_parse(&u, SLICE_NULL, &why), EBADMSG);
	assert_string_equal(why, "empty URI");

	/* a '%' whose hex digits lie past the end */
	static const char esc[] = "sip:a%41@h";
	assert_int_equal(sip_uri_parse(&u, slice_make(esc, 6), &why), EBADMSG);
	/* why may be NULL */
	assert_int_equal(sip_uri_parse(&u, SLICE_LIT("sip:"), NULL), EBADMSG);
}

/* ------------------------------------------------------------- tel */

static void test_tel(void **state)
{
	struct sip_uri u;

	(void)state;
	parse_ok(&u, "tel:+358-555-1234567;postd=pp22");
	assert_int_equal(u.scheme, SIP_URI_TEL);
	assert_slice(u.scheme_name, "tel");
	assert_slice(u.user, "+358-555-1234567");
	assert_slice(u.params, "postd=pp22");
	assert_slice(u.host, NULL);
	assert_slice(u.password, NULL);
	assert_slice(u.headers, NULL);
	assert_false(u.has_port);

	parse_ok(&u, "TEL:+1-201-555-0123;phone-context=example.com");
	assert_int_equal(u.scheme, SIP_URI_TEL);
	assert_slice(u.user, "+1-201-555-0123");
	assert_slice(u.params, "phone-context=example.com");

	parse_ok(&u, "tel:+1(201)555.0123");
	assert_slice(u.user, "+1(201)555.0123");
	assert_slice(u.params, NULL);

	parse_ok(&u, "tel:7042;phone-context=+1-201-555");
	assert_slice(u.user, "7042");
	assert_slice(u.params, "phone-context=+1-201-555");

	parse_ok(&u, "tel:*31#;phone-context=ims.example.net");
	assert_slice(u.user, "*31#");

	/* RFC 3966 isdn-subaddress takes uric */
	parse_ok(&u, "tel:+1-201-555-0123;isub=1@2?3,4=5;ext=22");
	assert_slice(u.params, "isub=1@2?3,4=5;ext=22");
	/* tel: parameters are not SIP uri-parameters */
	parse_ok(&u, "tel:+12015550123;lr;transport=tcp");
	assert_false(u.lr);
	assert_slice(u.transport, NULL);

	expect_bad("tel:", "bad tel number");
	expect_bad("tel:+", "bad tel number");
	expect_bad("tel:+-().", "bad tel number");
	expect_bad("tel:+12a", "bad tel number");
	expect_bad("tel:12 34", "bad tel number");
	expect_bad("tel:+1@example.com", "bad tel number");
	expect_bad("tel:;a=b", "bad tel number");
	expect_bad("tel:+1;", "bad URI parameter");
	expect_bad("tel:+1;;a", "bad URI parameter");
	expect_bad("tel:+1;a=b c", "bad URI parameter");
	expect_bad("tel:+1;a=%q1", "bad escape in URI");
}

/* ---------------------------------------------------- other schemes */

static void test_other_scheme(void **state)
{
	struct sip_uri u;

	(void)state;
	/* RFC 4475 §3.3.2 unkscm, §3.3.3 novelsc, §3.3.4 unksm2 */
	parse_ok(&u, "nobodyknowsthisscheme:totallyopaquecontent");
	assert_int_equal(u.scheme, SIP_URI_OTHER);
	assert_slice(u.scheme_name, "nobodyknowsthisscheme");
	assert_slice(u.user, NULL);
	assert_slice(u.host, NULL);
	assert_slice(u.params, NULL);
	assert_false(u.lr);

	parse_ok(&u, "soap.beep://192.0.2.103:3002");
	assert_int_equal(u.scheme, SIP_URI_OTHER);
	assert_slice(u.scheme_name, "soap.beep");
	parse_ok(&u, "isbn:2983792873");
	assert_slice(u.scheme_name, "isbn");
	parse_ok(&u, "x-+.9:a");
	assert_slice(u.scheme_name, "x-+.9");
	/* schemes that merely start like ours */
	parse_ok(&u, "sipx:anything");
	assert_int_equal(u.scheme, SIP_URI_OTHER);
	parse_ok(&u, "si:x");
	assert_int_equal(u.scheme, SIP_URI_OTHER);
	parse_ok(&u, "tels:x");
	assert_int_equal(u.scheme, SIP_URI_OTHER);

	expect_bad("foo:", "empty URI body");
	expect_bad("foo:bar baz", "bad character in URI");
	expect_bad("foo:bar\tbaz", "bad character in URI");
	expect_bad("foo:bar\x7f", "bad character in URI");
	expect_bad("1abc:x", "bad URI scheme");
	expect_bad("+abc:x", "bad URI scheme");
	expect_bad("ab_c:x", "bad URI scheme");
	expect_bad(":x", "bad URI scheme");
	expect_bad("abc", "bad URI scheme");
}

/* ---------------------------------------------------------- unescape */

static void test_unescape(void **state)
{
	char out[32];

	(void)state;
	assert_int_equal(sip_uri_unescape(out, sizeof(out), SLICE_LIT("a%20b")),
	                 3);
	assert_memory_equal(out, "a b", 3);
	assert_int_equal(
	        sip_uri_unescape(out, sizeof(out), SLICE_LIT("%41%62%7e%7E")),
	        4);
	assert_memory_equal(out, "Ab~~", 4);
	assert_int_equal(sip_uri_unescape(out, sizeof(out), SLICE_LIT("%ff")),
	                 1);
	assert_int_equal((unsigned char)out[0], 0xff);
	assert_int_equal(sip_uri_unescape(out, sizeof(out),
	                                  SLICE_LIT("v%61lue%25%34%31")),
	                 8);
	assert_memory_equal(out, "value%41", 8);

	/* a '%' without two hex digits is copied as it is */
	assert_int_equal(sip_uri_unescape(out, sizeof(out), SLICE_LIT("%zz")),
	                 3);
	assert_memory_equal(out, "%zz", 3);
	assert_int_equal(sip_uri_unescape(out, sizeof(out), SLICE_LIT("a%4")),
	                 3);
	assert_memory_equal(out, "a%4", 3);
	assert_int_equal(sip_uri_unescape(out, sizeof(out), SLICE_LIT("%")), 1);
	assert_memory_equal(out, "%", 1);
	assert_int_equal(sip_uri_unescape(out, sizeof(out), SLICE_LIT("%%41")),
	                 2);
	assert_memory_equal(out, "%A", 2);

	/* truncation: the whole length is returned, size bytes written */
	memset(out, 'x', sizeof(out));
	assert_int_equal(sip_uri_unescape(out, 2, SLICE_LIT("%41%42%43")), 3);
	assert_memory_equal(out, "ABx", 3);
	assert_int_equal(sip_uri_unescape(NULL, 0, SLICE_LIT("abc%20")), 4);
	assert_int_equal(sip_uri_unescape(out, sizeof(out), SLICE_NULL), 0);

	/* the unescaped slice may end inside an escape of the buffer */
	static const char text[] = "ab%41";
	assert_int_equal(
	        sip_uri_unescape(out, sizeof(out), slice_make(text, 4)), 4);
	assert_memory_equal(out, "ab%4", 4);
}

/* -------------------------------------------------------- param_find */

static void test_param_find(void **state)
{
	struct slice params = SLICE_LIT("lr;transport=tcp; foo = bar ;x");
	struct slice v;

	(void)state;
	assert_true(sip_param_find(&v, params, "lr"));
	assert_int_equal(v.len, 0);
	assert_ptr_equal(v.p, params.p + 2);

	assert_true(sip_param_find(&v, params, "transport"));
	assert_slice(v, "tcp");
	assert_true(sip_param_find(&v, params, "TRANSPORT"));
	assert_slice(v, "tcp");
	assert_true(sip_param_find(&v, params, "Foo"));
	assert_slice(v, "bar");
	assert_true(sip_param_find(&v, params, "x"));
	assert_int_equal(v.len, 0);
	assert_ptr_equal(v.p, params.p + params.len);
	assert_false(sip_param_find(&v, params, "tcp"));
	assert_false(sip_param_find(&v, params, "bar"));
	assert_false(sip_param_find(&v, params, "l"));
	assert_false(sip_param_find(&v, params, ""));
	assert_false(sip_param_find(&v, SLICE_LIT(";a;;"), ""));
	assert_true(sip_param_find(NULL, params, "foo"));

	/* whole names only */
	assert_false(sip_param_find(&v, SLICE_LIT("lrx;xlr"), "lr"));
	assert_true(sip_param_find(&v, SLICE_LIT("lrx;LR=on"), "lr"));
	assert_slice(v, "on");

	/* the first occurrence wins */
	assert_true(sip_param_find(&v, SLICE_LIT("a=1;a=2"), "a"));
	assert_slice(v, "1");

	/* quoted strings keep their quotes; ';' and '\"' inside are skipped */
	struct slice q = SLICE_LIT("a=\"x;b=1\\\";c\" ;b=2; c=\"\"");
	assert_true(sip_param_find(&v, q, "a"));
	assert_slice(v, "\"x;b=1\\\";c\"");
	assert_true(sip_param_find(&v, q, "b"));
	assert_slice(v, "2");
	assert_true(sip_param_find(&v, q, "c"));
	assert_slice(v, "\"\"");
	/* an unterminated quote runs to the end */
	assert_true(sip_param_find(&v, SLICE_LIT("a=\"x;y"), "a"));
	assert_slice(v, "\"x;y");

	/* LWS, including line folding, around ';' and '=' */
	struct slice f = SLICE_LIT(";tag=1\r\n ;\texpires\t=\r\n 60 ;q");
	assert_true(sip_param_find(&v, f, "tag"));
	assert_slice(v, "1");
	assert_true(sip_param_find(&v, f, "expires"));
	assert_slice(v, "60");
	assert_true(sip_param_find(&v, f, "q"));
	assert_int_equal(v.len, 0);

	/* an empty value after '=' */
	assert_true(sip_param_find(&v, SLICE_LIT("a= ;b"), "a"));
	assert_int_equal(v.len, 0);
	assert_non_null(v.p);

	/* params of a parsed URI */
	struct sip_uri u;
	parse_ok(&u, "sip:h;maddr=192.0.2.1;Lr;x=%41");
	assert_true(sip_param_find(&v, u.params, "x"));
	assert_slice(v, "%41");
	assert_true(sip_param_find(&v, u.params, "lr"));

	assert_false(sip_param_find(&v, SLICE_NULL, "lr"));
	assert_false(sip_param_find(&v, SLICE_LIT(""), "lr"));
	assert_false(sip_param_find(&v, SLICE_LIT(";;; ;"), "lr"));

	/* the result stays inside the slice */
	static const char text[] = "a=12345";
	assert_true(sip_param_find(&v, slice_make(text, 4), "a"));
	assert_slice(v, "12");
}

/*
 * In a list without '"' a parameter that is not the one sought is skipped
 * by a search for ';'; with one, each is read to its end. Both must find
 * the same: each list below is searched alone and with a quoted parameter
 * after it, which makes the search read every parameter without changing
 * what precedes it.
 */
static void test_param_find_both_ways(void **state)
{
	static const char *const lists[] = {
	        "lr;ftag=1928301774;did=5a.b3",
	        " did = 5 ; x",
	        "didx=1;did",
	        "a=1 ;b= 2 ;c",
	        "did x;did=2",
	        "did;;did=3",
	        "  ;did=",
	        "did= ;",
	        "DID=7",
	        "di=1;d=2;dId",
	        "did==x",
	        "did\r\n =\t9 ",
	        "x;did",
	        ";;;",
	        "d",
	        "did=a b;did=c",
	        "lr=on;LR",
	};
	static const char *const names[] = {"did", "d", "lr",   "a", "b",
	                                    "c",   "x", "ftag", "di"};
	char both[128];

	(void)state;
	for (size_t i = 0; i < sizeof(lists) / sizeof(lists[0]); i++) {
		size_t n = (size_t)snprintf(both, sizeof(both), "%s;q=\"x;\"",
		                            lists[i]);
		struct slice alone = slice_cstr(lists[i]);
		struct slice quoted = slice_make(both, n);
		for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
			struct slice a = SLICE_NULL, b = SLICE_NULL;
			bool fa = sip_param_find(&a, alone, names[k]);
			bool fb = sip_param_find(&b, quoted, names[k]);
			assert_int_equal(fa, fb);
			if (fa) {
				assert_int_equal(a.p - alone.p, b.p - quoted.p);
				assert_int_equal(a.len, b.len);
			}
		}
	}
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test_teardown(test_full, teardown),
	        cmocka_unit_test_teardown(test_sips_ipv6, teardown),
	        cmocka_unit_test_teardown(test_telephone_user, teardown),
	        cmocka_unit_test_teardown(test_case, teardown),
	        cmocka_unit_test_teardown(test_unusual_user, teardown),
	        cmocka_unit_test_teardown(test_escapes, teardown),
	        cmocka_unit_test_teardown(test_hosts, teardown),
	        cmocka_unit_test_teardown(test_ipv6, teardown),
	        cmocka_unit_test_teardown(test_params, teardown),
	        cmocka_unit_test_teardown(test_port_at_the_end, teardown),
	        cmocka_unit_test_teardown(test_hosts_against_the_grammar,
	                                  teardown),
	        cmocka_unit_test(test_param_find_both_ways),
	        cmocka_unit_test_teardown(test_headers, teardown),
	        cmocka_unit_test_teardown(test_bad_sip, teardown),
	        cmocka_unit_test_teardown(test_bounds, teardown),
	        cmocka_unit_test_teardown(test_tel, teardown),
	        cmocka_unit_test_teardown(test_other_scheme, teardown),
	        cmocka_unit_test_teardown(test_unescape, teardown),
	        cmocka_unit_test_teardown(test_param_find, teardown),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
