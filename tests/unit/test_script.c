/*
 * script/: loading, the KSR tables built from the export registry,
 * argument checks, pseudo-variables on a parsed request held in a
 * hand-built tm_ctx, exit/drop, $var persistence, errors in routes.
 *
 * Lua test functions report through what C can see in the context:
 * $avp(done) set as their last statement, flags, the R-URI.
 */
#include <errno.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "script/script.h"

static const char INVITE[] =
        "INVITE sip:bob@example.com:5080;transport=udp SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK776asdhds\r\n"
        "Max-Forwards: 70\r\n"
        "To: \"Bob\" <sip:bob@example.com>\r\n"
        "From: \"Alice\" <sip:alice@atlanta.com>;tag=1928301774\r\n"
        "Call-ID: a84b4c76e66710@pc33.atlanta.com\r\n"
        "CSeq: 314159 INVITE\r\n"
        "Contact: <sip:alice@192.0.2.1:5062>\r\n"
        "User-Agent: test-ua/1.0\r\n"
        "X-Custom: hello world\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

static const char ACK[] =
        "ACK sip:bob@example.com SIP/2.0\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK776asdhds\r\n"
        "Max-Forwards: 70\r\n"
        "To: <sip:bob@example.com>;tag=abc\r\n"
        "From: <sip:alice@atlanta.com>;tag=1928301774\r\n"
        "Call-ID: ack-call@pc33.atlanta.com\r\n"
        "CSeq: 314159 ACK\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

static const char PRACK_200[] =
        "SIP/2.0 200 OK\r\n"
        "Via: SIP/2.0/UDP 192.0.2.1:5062;branch=z9hG4bK776asdhds\r\n"
        "To: <sip:bob@example.com>;tag=abc\r\n"
        "From: <sip:alice@atlanta.com>;tag=1928301774\r\n"
        "Call-ID: prack@pc33.atlanta.com\r\n"
        "CSeq: 2 PRACK\r\n"
        "Content-Length: 0\r\n"
        "\r\n";

/* ------------------------------------------------------------- fixture */

struct fx {
	struct sip_msg msg;
	struct net_listener lst;
	struct net_rx rx;
	char abuf[16384];
	struct arena arena;
	struct tm_ctx ctx;
	struct script *s;
	unsigned replies; /* error replies sent (stub) */
	unsigned last_code;
};

static struct fx *cur_fx;

static int stub_reply(struct tm_ctx *ctx, unsigned code, struct slice reason)
{
	(void)ctx;
	(void)reason;
	cur_fx->replies++;
	cur_fx->last_code = code;
	return 1;
}

static void fx_msg(struct fx *f, const char *text)
{
	struct sip_limits lim = SIP_LIMITS_DEFAULT;

	assert_int_equal(sip_msg_parse(&f->msg, text, strlen(text), &lim), 0);
	arena_reset(&f->arena);
	memset(&f->ctx, 0, sizeof(f->ctx));
	f->ctx.route = TM_ROUTE_REQUEST;
	f->ctx.msg = &f->msg;
	f->ctx.req = f->msg.is_request ? &f->msg : NULL;
	f->ctx.rx = &f->rx;
	f->ctx.arena = &f->arena;
}

static struct fx *fx_new(const char *lua)
{
	struct fx *f = calloc(1, sizeof(*f));
	char err[512] = "";

	assert_non_null(f);
	arena_init(&f->arena, f->abuf, sizeof(f->abuf));
	f->lst.proto = NET_UDP;
	assert_int_equal(
	        net_addr_make(&f->lst.addr, SLICE_LIT("127.0.0.1"), 5060), 0);
	f->lst.port = 5060;
	f->rx.proto = NET_UDP;
	f->rx.lst = &f->lst;
	assert_int_equal(
	        net_addr_make(&f->rx.src, SLICE_LIT("192.0.2.1"), 5062), 0);
	fx_msg(f, INVITE);
	if (script_new_string(&f->s, "test.lua", lua, strlen(lua), NULL, err,
	                      sizeof(err)))
		fail_msg("load: %s", err);
	script_set_error_reply(f->s, stub_reply);
	cur_fx = f;
	return f;
}

static void fx_free(struct fx *f)
{
	script_free(f->s);
	arena_fini(&f->arena);
	free(f);
	cur_fx = NULL;
}

static bool avp_is(struct fx *f, const char *name, const char *want)
{
	struct tm_val v;

	if (!tm_ctx_avp_get(&f->ctx, slice_cstr(name), &v))
		return false;
	return want == NULL || (!v.is_int && slice_eq_cstr(v.s, want));
}

/* Runs Lua function fn; true when it reached its last line. */
static bool run(struct fx *f, const char *fn)
{
	tm_ctx_avp_unset(&f->ctx, SLICE_LIT("done"));
	script_run(f->s, &f->ctx, TM_ROUTE_FAILURE, fn);
	return avp_is(f, "done", NULL);
}

#define DONE " KSR.pv.sets('$avp(done)', '1') "

/* stderr into a file for the duration, to check what was logged. */
struct capture {
	int saved;
	FILE *f;
};

static void capture_begin(struct capture *c)
{
	c->f = tmpfile();
	assert_non_null(c->f);
	c->saved = dup(STDERR_FILENO);
	dup2(fileno(c->f), STDERR_FILENO);
}

static char *capture_end(struct capture *c)
{
	static char out[8192];
	size_t n;

	dup2(c->saved, STDERR_FILENO);
	close(c->saved);
	rewind(c->f);
	n = fread(out, 1, sizeof(out) - 1, c->f);
	out[n] = '\0';
	fclose(c->f);
	fprintf(stderr, "%s", out); /* still visible in the test log */
	return out;
}

static const char BASE[] = "function ksr_request_route() end\n";

/* -------------------------------------------------------------- loading */

static void write_file(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");

	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void test_load_errors(void **state)
{
	char path[] = "/tmp/test_script_XXXXXX";
	char err[512], want[600];
	struct script *s = NULL;
	int fd = mkstemp(path);

	(void)state;
	assert_true(fd >= 0);
	close(fd);

	/* Syntax error: FILE:LINE: message, as Lua reports it. */
	write_file(path, "-- comment\nfunction ksr_request_route()\n"
	                 "  if then\nend\n");
	assert_int_equal(script_new(&s, path, NULL, err, sizeof(err)), EINVAL);
	snprintf(want, sizeof(want), "%s:3:", path);
	assert_memory_equal(err, want, strlen(want));

	/* An error in the top level. */
	write_file(path, "local x = 1\nerror('boom')\n");
	assert_int_equal(script_new(&s, path, NULL, err, sizeof(err)), EINVAL);
	snprintf(want, sizeof(want), "%s:2: boom", path);
	assert_string_equal(err, want);

	/* No request route. */
	write_file(path, "function ksr_reply_route() end\n");
	assert_int_equal(script_new(&s, path, NULL, err, sizeof(err)), EINVAL);
	snprintf(want, sizeof(want),
	         "%s: no function ksr_request_route defined", path);
	assert_string_equal(err, want);

	/* KSR functions that need a route raise at load time. */
	write_file(path, "KSR.info('loading')\nKSR.tm.t_relay()\n");
	assert_int_equal(script_new(&s, path, NULL, err, sizeof(err)), EINVAL);
	snprintf(want, sizeof(want),
	         "%s:2: KSR.tm.t_relay: not available outside a route", path);
	assert_string_equal(err, want);

	/* A good one. */
	write_file(path, BASE);
	assert_int_equal(script_new(&s, path, NULL, err, sizeof(err)), 0);
	script_free(s);

	unlink(path);
	assert_int_equal(script_new(&s, path, NULL, err, sizeof(err)), EINVAL);
	assert_non_null(strstr(err, path));
}

/* ------------------------------------------------------------- exports */

struct gen {
	char *p;
	size_t len, size;
};

static void gen_add(struct gen *g, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static void gen_add(struct gen *g, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(g->p + g->len, g->size - g->len, fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < g->size - g->len);
	g->len += (size_t)n;
}

static void gen_check(const struct script_export *e, void *arg)
{
	gen_add(arg, "assert(type(KSR%s%s.%s) == 'function', 'KSR%s%s.%s')\n",
	        e->module[0] ? "." : "", e->module, e->name,
	        e->module[0] ? "." : "", e->module, e->name);
}

static void count_export(const struct script_export *e, void *arg)
{
	(void)e;
	(*(size_t *)arg)++;
}

static void test_every_export_is_a_function(void **state)
{
	struct gen g = {malloc(65536), 0, 65536};
	struct fx *f;
	size_t n = 0;

	(void)state;
	gen_add(&g, "%sfunction check()\n", BASE);
	script_foreach_export(gen_check, &g);
	gen_add(&g, DONE "\nend\n");
	script_foreach_export(count_export, &n);
	assert_true(n > 60);
	f = fx_new(g.p);
	assert_true(run(f, "check"));
	fx_free(f);
	free(g.p);
}

static void test_argument_errors(void **state)
{
	static const char lua[] =
	        "function ksr_request_route() end\n"
	        "local function expect(want, fn, ...)\n"
	        "  local ok, err = pcall(fn, ...)\n"
	        "  assert(not ok, 'no error for ' .. want)\n"
	        "  assert(string.find(err, want, 1, true), err)\n"
	        "end\n"
	        "function check()\n"
	        "  expect('test.lua:9: KSR.sl.sl_send_reply: bad argument #1 "
	        "(integer expected, got string)', function()\n"
	        "    KSR.sl.sl_send_reply('x', 'y')\n"
	        "  end)\n"
	        "  expect('KSR.sl.sl_send_reply: bad argument #2 (string "
	        "expected, got nil)', KSR.sl.sl_send_reply, 404, nil)\n"
	        "  expect('KSR.hdr.append: bad argument #1 (string expected, "
	        "got no value)', KSR.hdr.append)\n"
	        "  expect('KSR.tm.t_relay_to_proto_addr: bad argument #3 "
	        "(integer expected, got table)', "
	        "KSR.tm.t_relay_to_proto_addr, 'udp', 'h', {})\n"
	        "  expect('KSR.setflag: bad argument #1 (integer expected, "
	        "got number)', KSR.setflag, 1.5)\n"
	        "  expect('KSR.pv.get: unknown pseudo-variable $nope', "
	        "KSR.pv.get, '$nope')\n"
	        "  expect('KSR.pv.get: invalid pseudo-variable \"ru\"', "
	        "KSR.pv.get, 'ru')\n"
	        "  expect('KSR.pv.get: $var needs a name', KSR.pv.get, "
	        "'$var')\n"
	        "  expect('KSR.pv.sets: $ci is read-only', KSR.pv.sets, "
	        "'$ci', 'x')\n"
	        "  expect('KSR.x.modf: no function nope', KSR.x.modf, "
	        "'nope')\n"
	        /* numbers pass for strings and numeric strings for integers */
	        "  assert(KSR.isflagset('3') == false)\n"
	        "  assert(KSR.hdr.is_present(12) == -1)\n" DONE "\n"
	        "end\n";
	struct fx *f = fx_new(lua);

	(void)state;
	assert_true(run(f, "check"));
	fx_free(f);
}

/* ---------------------------------------------------- pseudo-variables */

static void test_pv_get(void **state)
{
	static const char lua[] =
	        "function ksr_request_route() end\n"
	        "local function eq(pv, want)\n"
	        "  local got = KSR.pv.get(pv)\n"
	        "  assert(got == want, pv .. ': ' .. tostring(got))\n"
	        "end\n"
	        "function check()\n"
	        "  eq('$ru', 'sip:bob@example.com:5080;transport=udp')\n"
	        "  eq('$rU', 'bob')\n"
	        "  eq('$rd', 'example.com')\n"
	        "  eq('$rp', '5080')\n"
	        "  eq('$ou', 'sip:bob@example.com:5080;transport=udp')\n"
	        "  eq('$rm', 'INVITE')\n"
	        "  eq('$rv', 'SIP/2.0')\n"
	        "  eq('$ci', 'a84b4c76e66710@pc33.atlanta.com')\n"
	        "  eq('$cs', '314159')\n"
	        "  eq('$fu', 'sip:alice@atlanta.com')\n"
	        "  eq('$fU', 'alice')\n"
	        "  eq('$fd', 'atlanta.com')\n"
	        "  eq('$fn', '\"Alice\"')\n"
	        "  eq('$ft', '1928301774')\n"
	        "  eq('$tu', 'sip:bob@example.com')\n"
	        "  eq('$tU', 'bob')\n"
	        "  eq('$td', 'example.com')\n"
	        "  eq('$tn', '\"Bob\"')\n"
	        "  eq('$tt', nil)\n"
	        "  eq('$si', '192.0.2.1')\n"
	        "  eq('$sp', 5062)\n"
	        "  eq('$Ri', '127.0.0.1')\n"
	        "  eq('$Rp', 5060)\n"
	        "  eq('$pr', 'udp')\n"
	        "  eq('$ua', 'test-ua/1.0')\n"
	        "  eq('$ct', '<sip:alice@192.0.2.1:5062>')\n"
	        "  eq('$hdr(X-Custom)', 'hello world')\n"
	        "  eq('$hdr(x-custom)', 'hello world')\n"
	        "  eq('$hdr(X-None)', nil)\n"
	        "  eq('$du', nil)\n"
	        "  eq('$rs', nil)\n"
	        "  eq('$rr', nil)\n"
	        "  eq('$rb', nil)\n"
	        "  eq('$T_reply_code', 0)\n"
	        "  eq('$avp(none)', nil)\n"
	        "  assert(math.type(KSR.pv.get('$ml')) == 'integer')\n"
	        "  assert(KSR.pv.gete('$tt') == '')\n"
	        "  assert(KSR.pv.getw('$tt') == '<null>')\n"
	        "  assert(KSR.pv.getvn('$tt', 7) == 7)\n"
	        "  assert(KSR.pv.getvn('$sp', 7) == 5062)\n"
	        "  assert(KSR.pv.getvs('$tt', 'd') == 'd')\n"
	        "  assert(KSR.pv.getvs('$sp', 'd') == '5062')\n"
	        "  assert(KSR.pv.is_null('$tt') == true)\n"
	        "  assert(KSR.pv.is_null('$ci') == false)\n"
	        "  assert(KSR.hdr.get('X-Custom') == 'hello world')\n"
	        "  assert(KSR.hdr.is_present('User-Agent') == 1)\n"
	        "  assert(KSR.hdr.is_present('X-None') == -1)\n"
	        "  assert(KSR.siputils.has_totag() == -1)\n"
	        "  assert(KSR.kx.get_ruri() == KSR.pv.get('$ru'))\n"
	        "  assert(KSR.kx.get_fuser() == 'alice')\n"
	        "  assert(KSR.kx.get_srcport() == 5062)\n"
	        "  assert(KSR.kx.get_method() == 'INVITE')\n"
	        "  assert(KSR.kx.get_duri() == nil)\n"
	        "  assert(KSR.kx.gete_duri() == '')\n"
	        "  assert(KSR.kx.getw_duri() == '<null>')\n"
	        "  assert(KSR.kx.gete_ua() == 'test-ua/1.0')\n"
	        "  assert(KSR.kx.get_msglen() == KSR.pv.get('$ml'))\n" DONE "\n"
	        "end\n";
	struct fx *f = fx_new(lua);

	(void)state;
	assert_true(run(f, "check"));
	fx_free(f);
}

static void test_pv_set(void **state)
{
	static const char lua[] =
	        "function ksr_request_route() end\n"
	        "function user()\n"
	        "  KSR.pv.sets('$rU', 'carol')\n"
	        "  assert(KSR.pv.get('$ru') == "
	        "'sip:carol@example.com:5080;transport=udp')\n" DONE "\n"
	        "end\n"
	        "function host()\n"
	        "  KSR.pv.sets('$rd', '::1')\n"
	        "  assert(KSR.pv.get('$rd') == '[::1]')\n"
	        "  KSR.pv.seti('$rp', 5090)\n" DONE "\n"
	        "end\n"
	        "function noport()\n"
	        "  KSR.pv.unset('$rp')\n"
	        "  KSR.pv.unset('$rU')\n" DONE "\n"
	        "end\n"
	        "function ruri()\n"
	        "  KSR.pv.sets('$ru', 'sip:dave@example.org')\n"
	        "  KSR.pv.sets('$ru', 'not a uri')\n"
	        "  KSR.pv.sets('$du', 'sip:10.0.0.9:5070')\n"
	        "  assert(KSR.isdsturiset())\n"
	        "  KSR.pv.sets('$avp(s)', 'str')\n"
	        "  KSR.pv.seti('$avp(i)', 42)\n"
	        "  assert(KSR.pv.get('$avp(i)') == 42)\n"
	        "  assert(KSR.setuser('erin'))\n"
	        "  assert(KSR.sethost('example.net'))\n" DONE "\n"
	        "end\n"
	        "function du_reset()\n"
	        "  KSR.pv.unset('$du')\n"
	        "  assert(KSR.pv.get('$du') == nil)\n"
	        "  assert(not KSR.isdsturiset())\n" DONE "\n"
	        "end\n";
	struct fx *f = fx_new(lua);
	struct tm_val v;

	(void)state;
	assert_true(run(f, "user"));
	assert_true(slice_eq_cstr(tm_ctx_ruri(&f->ctx),
	                          "sip:carol@example.com:5080;transport=udp"));
	assert_true(run(f, "host"));
	assert_true(slice_eq_cstr(tm_ctx_ruri(&f->ctx),
	                          "sip:carol@[::1]:5090;transport=udp"));
	assert_true(run(f, "noport"));
	assert_true(
	        slice_eq_cstr(tm_ctx_ruri(&f->ctx), "sip:[::1];transport=udp"));
	assert_true(run(f, "ruri"));
	/* The invalid URI was refused (logged), the earlier one stays. */
	assert_true(
	        slice_eq_cstr(tm_ctx_ruri(&f->ctx), "sip:erin@example.net"));
	assert_true(slice_eq_cstr(tm_ctx_duri(&f->ctx), "sip:10.0.0.9:5070"));
	assert_true(avp_is(f, "s", "str"));
	assert_true(tm_ctx_avp_get(&f->ctx, SLICE_LIT("i"), &v));
	assert_true(v.is_int);
	assert_int_equal(v.i, 42);
	assert_true(run(f, "du_reset"));
	assert_int_equal(tm_ctx_duri(&f->ctx).len, 0);
	fx_free(f);
}

static void test_var_persists(void **state)
{
	static const char lua[] =
	        "function ksr_request_route() end\n"
	        "function first()\n"
	        "  assert(KSR.pv.get('$var(n)') == 0)\n"
	        "  KSR.pv.seti('$var(n)', 5)\n"
	        "  KSR.pv.sets('$var(s)', 'abc')\n"
	        "  KSR.pv.sets('$var(s)', 'a longer value than before')\n"
	        "  KSR.pv.sets('$var(s)', 'xyz')\n" DONE "\n"
	        "end\n"
	        "function second()\n"
	        "  assert(KSR.pv.get('$var(n)') == 5)\n"
	        "  assert(KSR.pv.get('$var(s)') == 'xyz')\n"
	        "  KSR.pv.seti('$var(n)', KSR.pv.get('$var(n)') + 1)\n"
	        "  KSR.pv.unset('$var(s)')\n"
	        "  assert(KSR.pv.get('$var(s)') == 0)\n" DONE "\n"
	        "end\n"
	        "function third()\n"
	        "  assert(KSR.pv.get('$var(n)') == 6)\n" DONE "\n"
	        "end\n";
	struct fx *f = fx_new(lua);

	(void)state;
	assert_true(run(f, "first"));
	fx_msg(f, ACK); /* another message, another context */
	assert_true(run(f, "second"));
	fx_msg(f, INVITE);
	assert_true(run(f, "third"));
	fx_free(f);
}

/* ------------------------------------------------------------ methods */

static void test_methods(void **state)
{
	static const char lua[] =
	        "function ksr_request_route() end\n"
	        "function invite()\n"
	        "  assert(KSR.is_INVITE() == true)\n"
	        "  assert(KSR.is_BYE() == false)\n"
	        "  assert(KSR.is_method('INVITE'))\n"
	        "  assert(KSR.is_method('invite'))\n"
	        "  assert(KSR.is_method('BYE|INVITE'))\n"
	        "  assert(not KSR.is_method('BYE|ACK'))\n"
	        "  assert(KSR.is_method_in('I'))\n"
	        "  assert(KSR.is_method_in('bi'))\n"
	        "  assert(not KSR.is_method_in('ABCRONSMPUFEGKDTV'))\n"
	        "  assert(KSR.is_UDP() and not KSR.is_TCP())\n" DONE "\n"
	        "end\n"
	        "function prack_reply()\n"
	        "  assert(KSR.is_PRACK())\n"
	        "  assert(KSR.is_method_in('E'))\n"
	        "  assert(not KSR.is_method_in('P'))\n"
	        "  assert(KSR.pv.get('$rm') == 'PRACK')\n"
	        "  assert(KSR.pv.get('$rs') == 200)\n"
	        "  assert(KSR.pv.get('$rr') == 'OK')\n"
	        "  assert(KSR.pv.get('$T_reply_code') == 200)\n"
	        "  assert(KSR.siputils.has_totag() == 1)\n" DONE "\n"
	        "end\n"
	        "function flags()\n"
	        "  assert(KSR.setflag(3) and KSR.setflag(31))\n"
	        "  assert(KSR.setflag(32) == false)\n"
	        "  assert(KSR.isflagset(3) and not KSR.isflagset(4))\n"
	        "  assert(KSR.resetflag(31))\n"
	        "  assert(KSR.x.modf('setflag', '5') == 1)\n"
	        "  assert(KSR.x.modf('is_method_in', 'I') == 1)\n"
	        "  assert(KSR.x.modf('is_method_in', 'B') == -1)\n"
	        "  assert(KSR.x.modf('is_method', 'INVITE') == 1)\n" DONE "\n"
	        "end\n"
	        "function kinds()\n"
	        "  assert(KSR.siputils.is_request() == 1)\n"
	        "  assert(KSR.siputils.is_reply() == -1)\n"
	        "  assert(KSR.corex.has_ruri_user() == 1)\n"
	        "  assert(KSR.setuser('') and KSR.corex.has_ruri_user() == "
	        "-1)\n"
	        "  assert(KSR.tm.t_is_set('failure_route') == -1)\n"
	        "  assert(KSR.tm.t_on_failure('on_fail') == 1)\n"
	        "  assert(KSR.tm.t_is_set('failure_route') == 1)\n"
	        "  assert(KSR.tm.t_is_set('onreply_route') == -1)\n"
	        "  assert(KSR.tm.t_is_set('no_such_route') == -1)\n"
	        "  assert(KSR.textops.is_present_hf('X-Custom') == 1)\n"
	        "  assert(KSR.textops.is_present_hf('X-Absent') == -1)\n"
	        "  assert(KSR.textops.append_hf('X-Added: 1') == 1)\n" DONE "\n"
	        "end\n"
	        "function reply_kinds()\n"
	        "  assert(KSR.siputils.is_request() == -1)\n"
	        "  assert(KSR.siputils.is_reply() == 1)\n" DONE "\n"
	        "end\n";
	struct fx *f = fx_new(lua);

	(void)state;
	assert_true(run(f, "invite"));
	assert_true(run(f, "flags"));
	assert_true(tm_ctx_isflagset(&f->ctx, 3));
	assert_true(tm_ctx_isflagset(&f->ctx, 5));
	assert_false(tm_ctx_isflagset(&f->ctx, 31));
	assert_true(run(f, "kinds"));
	fx_msg(f, PRACK_200);
	f->ctx.route = TM_ROUTE_ONREPLY;
	assert_true(run(f, "prack_reply"));
	assert_true(run(f, "reply_kinds"));
	fx_free(f);
}

/* --------------------------------------------------------- exit, drop */

static void test_exit_and_drop(void **state)
{
	static const char lua[] =
	        "function ksr_request_route() end\n"
	        "function ex()\n"
	        "  KSR.setflag(1)\n"
	        "  KSR.x.exit()\n"
	        "  KSR.setflag(2)\n"
	        "end\n"
	        "function caught()\n"
	        "  pcall(KSR.x.exit)\n"
	        /* the script caught the unwinding: the next call stops it */
	        "  KSR.setflag(4)\n"
	        "end\n"
	        "function dr()\n"
	        "  KSR.x.drop()\n"
	        "  KSR.setflag(6)\n"
	        "end\n";
	struct fx *f = fx_new(lua);
	struct capture cap;
	char *log;

	(void)state;
	capture_begin(&cap);
	run(f, "ex");
	log = capture_end(&cap);
	assert_true(tm_ctx_isflagset(&f->ctx, 1));
	assert_false(tm_ctx_isflagset(&f->ctx, 2));
	assert_true(f->ctx.exit);
	assert_false(f->ctx.drop);
	assert_null(strstr(log, "ERROR"));
	assert_int_equal(f->replies, 0);

	f->ctx.exit = false;
	run(f, "caught");
	assert_false(tm_ctx_isflagset(&f->ctx, 4));

	f->ctx.exit = false;
	run(f, "dr");
	assert_true(f->ctx.exit);
	assert_true(f->ctx.drop);
	assert_false(tm_ctx_isflagset(&f->ctx, 6));
	fx_free(f);
}

/* ------------------------------------------------------- route errors */

static void test_runtime_error(void **state)
{
	static const char lua[] = "function ksr_request_route()\n"
	                          "  KSR.setflag(1)\n"
	                          "  local t = nil\n"
	                          "  return t.field\n"
	                          "end\n"
	                          "function ksr_reply_route()\n"
	                          "  KSR.setflag(9)\n"
	                          "end\n";
	struct fx *f = fx_new(lua);
	struct capture cap;
	char *log;

	(void)state;
	capture_begin(&cap);
	script_run(f->s, &f->ctx, TM_ROUTE_REQUEST, NULL);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "ERROR"));
	assert_non_null(
	        strstr(log, "test.lua:4: attempt to index a nil value"));
	assert_non_null(strstr(log, "a84b4c76e66710@pc33.atlanta.com"));
	assert_int_equal(f->replies, 1);
	assert_int_equal(f->last_code, 500);

	/* The state goes on working. */
	script_run(f->s, &f->ctx, TM_ROUTE_REPLY, NULL);
	assert_true(tm_ctx_isflagset(&f->ctx, 9));

	/* No reply to an ACK. */
	fx_msg(f, ACK);
	capture_begin(&cap);
	script_run(f->s, &f->ctx, TM_ROUTE_REQUEST, NULL);
	capture_end(&cap);
	assert_true(tm_ctx_isflagset(&f->ctx, 1));
	assert_int_equal(f->replies, 1);

	/* Nor after an error in another route. */
	fx_msg(f, INVITE);
	capture_begin(&cap);
	script_run(f->s, &f->ctx, TM_ROUTE_FAILURE, "ksr_request_route");
	capture_end(&cap);
	assert_int_equal(f->replies, 1);

	/* A route function that does not exist is logged. */
	capture_begin(&cap);
	script_run(f->s, &f->ctx, TM_ROUTE_FAILURE, "no_such_route");
	log = capture_end(&cap);
	assert_non_null(strstr(log, "no_such_route"));
	fx_free(f);
}

static void test_reply_route_optional(void **state)
{
	struct fx *f = fx_new(BASE);
	struct capture cap;
	char *log;

	(void)state;
	capture_begin(&cap);
	script_run(f->s, &f->ctx, TM_ROUTE_REPLY, NULL);
	log = capture_end(&cap);
	assert_string_equal(log, "");
	fx_free(f);
}

static void test_memory_limit(void **state)
{
	static const char lua[] =
	        "function ksr_request_route()\n"
	        "  local t = {}\n"
	        "  for i = 1, 10000000 do t[i] = string.rep('x', 100) .. i "
	        "end\n"
	        "end\n"
	        "function small()\n" DONE "\n"
	        "end\n";
	struct fx *f = fx_new(lua);
	struct capture cap;
	char *log;

	(void)state;
	script_set_mem_limit(f->s, script_mem_used(f->s) + (1u << 20));
	capture_begin(&cap);
	script_run(f->s, &f->ctx, TM_ROUTE_REQUEST, NULL);
	log = capture_end(&cap);
	assert_non_null(strstr(log, "memory limit"));
	assert_int_equal(f->replies, 1);
	assert_true(run(f, "small"));
	fx_free(f);
}

/* ------------------------------------------------- registered exports */

static int t_hello(struct script_call *c)
{
	return c->nargs == 2 ? (script_ret_str(c, c->args[0].s), 1) : -1;
}

static int t_add(struct script_call *c)
{
	return (int)(c->args[0].i + c->args[1].i);
}

static int t_fail(struct script_call *c)
{
	return script_call_error(c, "failed on purpose (%d)", 7);
}

/* Runs a route inside a KSR call, as t_relay() runs branch routes. */
static int t_nest(struct script_call *c)
{
	struct tm_ctx inner = *c->ctx;

	inner.exit = false;
	inner.route = TM_ROUTE_BRANCH;
	script_run(c->script, &inner, TM_ROUTE_BRANCH, "inner");
	return inner.exit ? 1 : -1;
}

static const struct script_export test_exports[] = {
        {"testmod", "hello", t_hello, "si", SCRIPT_RET_VAL, 0, 0},
        {"testmod", "add", t_add, "ii", SCRIPT_RET_INT, 0, 0},
        {"testmod", "fail", t_fail, "", SCRIPT_RET_NONE, 0, 0},
        {"testmod", "nest", t_nest, "", SCRIPT_RET_INT, 0, 0},
};

static int pv_echo(struct script_call *c)
{
	script_ret_str(c, c->pv_arg);
	return 0;
}

static void test_register(void **state)
{
	static const struct script_export dup[] = {
	        {"tm", "t_relay", t_add, "", SCRIPT_RET_INT, 0, 0},
	};
	static const struct script_export bad[] = {
	        {"testbad", "f", t_add, "sx", SCRIPT_RET_INT, 0, 0},
	};
	static const char lua[] =
	        "function ksr_request_route() end\n"
	        "function inner()\n"
	        "  KSR.setflag(11)\n"
	        "  KSR.x.exit()\n"
	        "end\n"
	        "function check()\n"
	        "  assert(KSR.testmod.hello('hi', 2) == 'hi')\n"
	        "  assert(KSR.testmod.add(2, '3') == 5)\n"
	        "  assert(KSR.x.modf('add', '4', 5) == 9)\n"
	        "  local ok, err = pcall(KSR.testmod.fail)\n"
	        "  assert(err:find('KSR.testmod.fail: failed on purpose (7)', "
	        "1, true), err)\n"
	        "  ok, err = pcall(KSR.x.modf, 'fail')\n"
	        "  assert(err:find('KSR.x.modf: fail: failed on purpose (7)', "
	        "1, true), err)\n"
	        "  assert(KSR.pv.get('$testecho(abc)') == 'abc')\n"
	        "  assert(KSR.testmod.nest() == 1)\n"
	        "  KSR.setflag(12)\n" DONE "\n"
	        "end\n";
	struct fx *f;

	(void)state;
	assert_int_equal(script_register_exports(test_exports, 4), 0);
	assert_int_equal(script_register_exports(test_exports, 4), EEXIST);
	assert_int_equal(script_register_exports(dup, 1), EEXIST);
	assert_int_equal(script_register_exports(bad, 1), EINVAL);
	assert_int_equal(script_register_pv("testecho", true, pv_echo, NULL),
	                 0);
	assert_int_equal(script_register_pv("testecho", true, pv_echo, NULL),
	                 EEXIST);
	assert_int_equal(script_register_pv("ru", false, pv_echo, NULL),
	                 EEXIST);
	assert_int_equal(script_register_pv("$x", false, pv_echo, NULL),
	                 EINVAL);

	f = fx_new(lua);
	assert_true(run(f, "check"));
	/* the inner route's exit stayed in the inner run */
	assert_true(tm_ctx_isflagset(&f->ctx, 12));
	assert_false(f->ctx.exit);
	fx_free(f);
}

/* ------------------------------------------------------------- the doc */

struct doc_check {
	const char *doc;
	unsigned missing;
};

static void doc_export(const struct script_export *e, void *arg)
{
	struct doc_check *d = arg;
	char name[128];

	if (strncmp(e->module, "test", 4) == 0)
		return;
	snprintf(name, sizeof(name), "KSR%s%s.%s(", e->module[0] ? "." : "",
	         e->module, e->name);
	if (strstr(d->doc, name) == NULL) {
		fprintf(stderr, "docs/lua-api.md lacks %s\n", name);
		d->missing++;
	}
}

static void doc_pv(const struct script_pv_def *pv, void *arg)
{
	struct doc_check *d = arg;
	char name[128];

	if (strncmp(pv->name, "test", 4) == 0)
		return;
	snprintf(name, sizeof(name), "`$%s%s", pv->name,
	         pv->has_arg ? "(" : "`");
	if (strstr(d->doc, name) == NULL) {
		fprintf(stderr, "docs/lua-api.md lacks %s\n", name);
		d->missing++;
	}
}

/* The route time limit (after test_register: KSR.testmod.nest runs a
 * route inside a KSR call). The watchdog of a limit of 100 ms: keeps asking
 * until it has signalled the looping run once. */
struct watchdog {
	struct script *s;
	int signalled;
};

static void *watchdog_thread(void *arg)
{
	struct watchdog *wd = arg;
	struct timespec tick = {0, 20 * 1000000};

	for (int i = 0; i < 500 && !wd->signalled; i++) {
		nanosleep(&tick, NULL);
		wd->signalled += script_stop_overrun(wd->s, 100);
	}
	return NULL;
}

static void test_route_time_limit(void **state)
{
	/* Loops of 20 s of CPU: were the limit broken, the test would fail,
	 * not hang. */
	static const char lua[] = "local function spin()\n"
	                          "  local t0 = os.clock()\n"
	                          "  while os.clock() - t0 < 20 do end\n"
	                          "end\n"
	                          "function ksr_request_route() spin() end\n"
	                          "function nested()\n"
	                          "  KSR.testmod.nest()\n"
	                          "end\n"
	                          "function inner() spin() end\n"
	                          "function small()\n" DONE "\n"
	                          "end\n";
	struct fx *f = fx_new(lua);
	struct watchdog wd = {f->s, 0};
	struct capture cap;
	pthread_t th;
	char *log;

	(void)state;
	script_stop_signal_install();
	/* nothing to stop between runs */
	assert_false(script_stop_overrun(f->s, 0));

	assert_int_equal(pthread_create(&th, NULL, watchdog_thread, &wd), 0);
	capture_begin(&cap);
	script_run(f->s, &f->ctx, TM_ROUTE_REQUEST, NULL);
	log = capture_end(&cap);
	pthread_join(th, NULL);
	assert_int_equal(wd.signalled, 1);
	assert_non_null(strstr(log, "route stopped: it ran for 100 ms"));
	assert_int_equal(f->replies, 1);
	assert_int_equal(f->last_code, 500);

	/* the next run is not stopped by anything left from the last */
	assert_true(run(f, "small"));

	/* a loop in a route run inside a KSR call: that run stops, and so
	 * does the run around it */
	wd.signalled = 0;
	assert_int_equal(pthread_create(&th, NULL, watchdog_thread, &wd), 0);
	capture_begin(&cap);
	script_run(f->s, &f->ctx, TM_ROUTE_REQUEST, "nested");
	log = capture_end(&cap);
	pthread_join(th, NULL);
	assert_int_equal(wd.signalled, 1);
	assert_non_null(strstr(log, "inner: test.lua:9: route stopped"));
	assert_non_null(strstr(log, "nested: route stopped"));
	assert_int_equal(f->replies, 2);
	assert_true(run(f, "small"));
	fx_free(f);
}

/* Every function and variable is documented: the doc follows the table. */
static void test_doc_lists_everything(void **state)
{
	FILE *fp = fopen(IMSDLG_SOURCE_DIR "/docs/lua-api.md", "r");
	struct doc_check d = {NULL, 0};
	static char doc[131072];
	size_t n;

	(void)state;
	assert_non_null(fp);
	n = fread(doc, 1, sizeof(doc) - 1, fp);
	fclose(fp);
	doc[n] = '\0';
	d.doc = doc;
	script_foreach_export(doc_export, &d);
	script_foreach_pv(doc_pv, &d);
	assert_int_equal(d.missing, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_load_errors),
	        cmocka_unit_test(test_every_export_is_a_function),
	        cmocka_unit_test(test_argument_errors),
	        cmocka_unit_test(test_pv_get),
	        cmocka_unit_test(test_pv_set),
	        cmocka_unit_test(test_var_persists),
	        cmocka_unit_test(test_methods),
	        cmocka_unit_test(test_exit_and_drop),
	        cmocka_unit_test(test_runtime_error),
	        cmocka_unit_test(test_reply_route_optional),
	        cmocka_unit_test(test_memory_limit),
	        cmocka_unit_test(test_register),
	        cmocka_unit_test(test_route_time_limit),
	        cmocka_unit_test(test_doc_lists_everything),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
