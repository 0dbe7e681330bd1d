/*
 * mgmt: the RPC registry and JSON-RPC handling through a real server, on a
 * temporary UNIX socket and on HTTP at 127.0.0.1 (port 0, read back with
 * mgmt_endpoint), with a real runtime of two workers (no SIP listeners)
 * for rpc_for_each_shard. Every error case is followed by a good call, to
 * show the server keeps serving.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mgmt/mgmt.h"

#define WAIT_MS 5000
#define TOKEN   "s3cret-t0ken"

static struct {
	char dir[64];
	char sock[128];
	char token_file[128];
	struct rt *rt;
	struct mgmt *srv;   /* unix + http, no token */
	struct mgmt *tok;   /* http with a token, 100 ms shard timeout */
	unsigned http_port; /* of srv */
	unsigned tok_port;
	pthread_t mgmt_thread; /* seen by the handlers */
	atomic_int late_runs;  /* shard fns run for a call that gave up */
} T;

/* ------------------------------------------------------ test methods */

/* test.greet NAME [COUNT]: {"name": NAME, "count": COUNT or 1} */
static void m_greet(struct rpc_ctx *ctx)
{
	const char *name;
	long long count = 1;
	bool loud = false;
	struct rpc_node *o;

	if (rpc_param_str(ctx, 0, "name", &name) ||
	    rpc_param_opt_int(ctx, 1, "count", &count) ||
	    rpc_param_opt_bool(ctx, 2, "loud", &loud))
		return;
	o = rpc_add_object(ctx, NULL, NULL);
	rpc_add_str(ctx, o, "name", name);
	rpc_add_int(ctx, o, "count", count);
	rpc_add_bool(ctx, o, "loud", loud);
	rpc_add_int(ctx, o, "nparams", (long long)rpc_param_count(ctx));
}

static void m_not_found(struct rpc_ctx *ctx)
{
	rpc_add_str(ctx, NULL, "partial", "dropped by the fault");
	rpc_fault(ctx, 404, "Dialog not found");
	rpc_fault(ctx, 500, "the first fault wins");
}

/* Nested result, keyed top level, arrays of objects, odd strings. */
static void m_build(struct rpc_ctx *ctx)
{
	struct rpc_node *a, *o;

	rpc_add_int(ctx, NULL, "n", 3);
	a = rpc_add_array(ctx, NULL, "items");
	for (int i = 0; i < 3; i++) {
		o = rpc_add_object(ctx, a, NULL);
		rpc_add_int(ctx, o, "i", i);
		rpc_add_strf(ctx, o, "label", "item-%d", i);
	}
	rpc_add_strn(ctx, NULL, "bytes",
	             "a\xff"
	             "b",
	             3);
	rpc_add_double(ctx, NULL, "half", 0.5);
	rpc_add_null(ctx, NULL, "nothing");
	rpc_add_str(ctx, NULL, "null_str", NULL);
}

/* A bug in a handler: a key inside an array. */
static void m_misuse(struct rpc_ctx *ctx)
{
	struct rpc_node *a = rpc_add_array(ctx, NULL, NULL);

	rpc_add_int(ctx, a, "key", 1);
	rpc_add_int(ctx, a, NULL, 2); /* ignored after the error */
}

/* Another bug: a key twice (the first node would be freed while the
 * handler still holds it). */
static void m_twice(struct rpc_ctx *ctx)
{
	struct rpc_node *o = rpc_add_object(ctx, NULL, "x");

	rpc_add_object(ctx, NULL, "x");
	rpc_add_int(ctx, o, "y", 1); /* ignored after the error */
}

static void m_nothing(struct rpc_ctx *ctx)
{
	(void)ctx;
}

struct shard_visit {
	unsigned ids[8];
	unsigned n;
	bool on_handler_thread;
	bool counted_late;
};

static void visit(struct worker *w, void *arg)
{
	struct shard_visit *v = arg;

	if (v->counted_late)
		atomic_fetch_add(&T.late_runs, 1);
	if (pthread_equal(pthread_self(), T.mgmt_thread))
		v->on_handler_thread = true;
	if (v->n < 8)
		v->ids[v->n++] = worker_id(w);
}

/* test.shards: the worker ids in the order visited. */
static void m_shards(struct rpc_ctx *ctx)
{
	struct shard_visit v = {.counted_late = true};
	struct rpc_node *a;

	T.mgmt_thread = pthread_self();
	if (rpc_for_each_shard(ctx, visit, &v))
		return;
	v.counted_late = false;
	atomic_fetch_sub(&T.late_runs, (int)v.n);
	a = rpc_add_array(ctx, NULL, NULL);
	for (unsigned i = 0; i < v.n; i++)
		rpc_add_int(ctx, a, NULL, v.ids[i]);
	if (v.on_handler_thread)
		rpc_fault(ctx, 500, "ran on the handler's thread");
}

/* test.shard I: runs on worker I only (rpc_on_shard); its id. */
static void m_shard(struct rpc_ctx *ctx)
{
	struct shard_visit v = {0};
	long long i;

	if (rpc_param_int(ctx, 0, "worker", &i) ||
	    rpc_on_shard(ctx, (unsigned)i, visit, &v))
		return;
	if (v.n != 1)
		rpc_fault(ctx, 500, "ran %u times", v.n);
	else
		rpc_add_int(ctx, NULL, NULL, v.ids[0]);
}

static void page_hello(struct rpc_ctx *ctx)
{
	rpc_printf(ctx, "# hello\n");
	rpc_printf(ctx, "hello_total %d\n", 42);
}

static const struct rpc_method test_methods[] = {
        {"test.greet", m_greet, "greets NAME [COUNT [LOUD]]"},
        {"test.notfound", m_not_found, "always 404"},
        {"test.build", m_build, "a nested result"},
        {"test.misuse", m_misuse, "breaks the result rules"},
        {"test.twice", m_twice, "adds a key twice"},
        {"test.nothing", m_nothing, NULL},
        {"test.shards", m_shards, "visits every worker"},
        {"test.shard", m_shard, "visits one worker"},
};

static const struct mgmt_page hello_page = {"/hello", "text/plain", page_hello};

/* ---------------------------------------------------------- clients */

static int connect_unix(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	assert_true(fd >= 0);
	assert_true(strlen(path) < sizeof(sa.sun_path));
	memcpy(sa.sun_path, path, strlen(path) + 1);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) != 0)
		fail_msg("connect %s: %s", path, strerror(errno));
	return fd;
}

static void send_text(int fd, const char *s, size_t n)
{
	while (n > 0) {
		ssize_t w = send(fd, s, n, MSG_NOSIGNAL);

		assert_true(w > 0);
		s += w;
		n -= (size_t)w;
	}
}

/* One line (without its newline), or NULL at EOF; malloc'ed. */
static char *read_line(int fd)
{
	size_t cap = 1024, len = 0;
	char *b = malloc(cap);
	struct pollfd p = {fd, POLLIN, 0};

	for (;;) {
		char ch;
		ssize_t r;

		if (poll(&p, 1, WAIT_MS) != 1)
			fail_msg("no reply within %d ms", WAIT_MS);
		r = recv(fd, &ch, 1, 0);
		if (r <= 0) {
			if (len == 0) {
				free(b);
				return NULL;
			}
			break;
		}
		if (ch == '\n')
			break;
		if (len + 2 > cap)
			b = realloc(b, cap *= 2);
		b[len++] = ch;
	}
	b[len] = '\0';
	return b;
}

/* The server closed (a reset counts: it may close with our bytes unread). */
static bool at_eof(int fd)
{
	char ch;
	struct pollfd p = {fd, POLLIN, 0};

	return poll(&p, 1, WAIT_MS) == 1 && recv(fd, &ch, 1, 0) <= 0;
}

static json_t *parse(const char *text)
{
	json_error_t e;
	json_t *j;

	if (text == NULL)
		fail_msg("no reply");
	j = json_loads(text, 0, &e);
	if (j == NULL)
		fail_msg("reply is not JSON: %s: %s", e.text, text);
	return j;
}

/* One request on a fresh connection, newline-terminated. */
static json_t *unix_call(const char *req)
{
	int fd = connect_unix(T.sock);
	char *line;
	json_t *j;

	send_text(fd, req, strlen(req));
	send_text(fd, "\n", 1);
	line = read_line(fd);
	close(fd);
	j = parse(line);
	free(line);
	return j;
}

/* HTTP/1.1 request with Connection: close; the body (malloc'ed). */
static char *http(unsigned port, const char *method, const char *url,
                  const char *body, const char *auth, int *status)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	char head[512], *resp = NULL, *b;
	size_t len = 0, cap = 0;
	struct pollfd p = {fd, POLLIN, 0};

	assert_true(fd >= 0);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(head, sizeof(head),
	         "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	         "Content-Type: application/json\r\n%s%s%s"
	         "Content-Length: %zu\r\n\r\n",
	         method, url, auth ? "Authorization: " : "", auth ? auth : "",
	         auth ? "\r\n" : "", body ? strlen(body) : 0);
	send_text(fd, head, strlen(head));
	if (body != NULL)
		send_text(fd, body, strlen(body));
	for (;;) {
		ssize_t r;

		if (len + 4097 > cap)
			resp = realloc(resp, cap = cap ? cap * 2 : 8192);
		if (poll(&p, 1, WAIT_MS) != 1)
			fail_msg("no HTTP reply within %d ms", WAIT_MS);
		r = recv(fd, resp + len, cap - len - 1, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	assert_true(len > 0);
	resp[len] = '\0';
	assert_int_equal(sscanf(resp, "HTTP/1.1 %d", status), 1);
	b = strstr(resp, "\r\n\r\n");
	assert_non_null(b);
	b = strdup(b + 4);
	free(resp);
	return b;
}

static json_t *http_call(const char *req, int *status)
{
	char *body = http(T.http_port, "POST", "/RPC", req, NULL, status);
	json_t *j = parse(body);

	free(body);
	return j;
}

/* ----------------------------------------------------------- checks */

static json_t *result_of(json_t *reply)
{
	json_t *r = json_object_get(reply, "result");

	if (r == NULL) {
		char *s = json_dumps(reply, 0);

		fail_msg("expected a result: %s", s);
	}
	assert_string_equal(
	        json_string_value(json_object_get(reply, "jsonrpc")), "2.0");
	return r;
}

static void expect_error(json_t *reply, int code, const char *msg_part)
{
	json_t *e = json_object_get(reply, "error");
	const char *msg;

	if (e == NULL) {
		char *s = json_dumps(reply, 0);

		fail_msg("expected error %d: %s", code, s);
	}
	assert_null(json_object_get(reply, "result"));
	assert_int_equal(json_integer_value(json_object_get(e, "code")), code);
	msg = json_string_value(json_object_get(e, "message"));
	assert_non_null(msg);
	if (msg_part != NULL && strstr(msg, msg_part) == NULL)
		fail_msg("message '%s' lacks '%s'", msg, msg_part);
}

/* The server still answers after whatever went before. */
static void still_serving(void)
{
	json_t *r =
	        unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"core.version\","
	                  "\"id\":99}");
	int st;

	assert_non_null(json_string_value(result_of(r)));
	json_decref(r);
	r = http_call("{\"jsonrpc\":\"2.0\",\"method\":\"core.version\","
	              "\"id\":99}",
	              &st);
	assert_int_equal(st, 200);
	assert_non_null(json_string_value(result_of(r)));
	json_decref(r);
}

/* ------------------------------------------------------------ setup */

static void on_rx(struct worker *w, const struct net_rx *rx)
{
	(void)w;
	(void)rx;
}

static const struct rt_app app = {.on_rx = on_rx};

static int setup(void **state)
{
	struct rt_config rc = {.workers = 2};
	struct mgmt_config mc;
	char err[512], port[160];
	FILE *f;

	signal(SIGPIPE, SIG_IGN);
	snprintf(T.dir, sizeof(T.dir), "/tmp/test_mgmt.XXXXXX");
	if (mkdtemp(T.dir) == NULL)
		return -1;
	snprintf(T.sock, sizeof(T.sock), "%s/rpc.sock", T.dir);
	snprintf(T.token_file, sizeof(T.token_file), "%s/token", T.dir);
	f = fopen(T.token_file, "w");
	fprintf(f, "  %s  \n", TOKEN);
	fclose(f);
	chmod(T.token_file, 0600);

	if (rpc_register(test_methods,
	                 sizeof(test_methods) / sizeof(test_methods[0])) ||
	    mgmt_register_page(&hello_page))
		return -1;
	if (rt_start(&T.rt, &rc, &app, err, sizeof(err)) != 0) {
		fprintf(stderr, "rt_start: %s\n", err);
		return -1;
	}

	memset(&mc, 0, sizeof(mc));
	snprintf(port, sizeof(port), "unix:%s", T.sock);
	mc.listen[0] = port;
	mc.listen[1] = "http:127.0.0.1:0";
	mc.nlisten = 2;
	mc.rt = T.rt;
	if (mgmt_start(&T.srv, &mc, err, sizeof(err)) != 0) {
		fprintf(stderr, "mgmt_start: %s\n", err);
		return -1;
	}
	sscanf(mgmt_endpoint(T.srv, 1), "http:127.0.0.1:%u", &T.http_port);

	memset(&mc, 0, sizeof(mc));
	mc.listen[0] = "http:0";
	mc.nlisten = 1;
	mc.token_file = T.token_file;
	mc.rt = T.rt;
	mc.shard_timeout_ms = 100;
	if (mgmt_start(&T.tok, &mc, err, sizeof(err)) != 0) {
		fprintf(stderr, "mgmt_start (token): %s\n", err);
		return -1;
	}
	sscanf(mgmt_endpoint(T.tok, 0), "http:127.0.0.1:%u", &T.tok_port);
	*state = NULL;
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	/* Workers first: mgmt_stop wants no job of its own left to run. */
	rt_stop(T.rt);
	rt_wait(T.rt);
	mgmt_stop(T.srv);
	mgmt_stop(T.tok);
	rt_free(T.rt);
	unlink(T.token_file);
	rmdir(T.dir);
	return 0;
}

/* ------------------------------------------------------------- tests */

static void test_endpoints(void **state)
{
	struct stat st;

	(void)state;
	assert_int_equal(mgmt_endpoints(T.srv), 2);
	assert_true(strncmp(mgmt_endpoint(T.srv, 0), "unix:", 5) == 0);
	assert_string_equal(mgmt_endpoint(T.srv, 0) + 5, T.sock);
	assert_true(T.http_port > 0 && T.http_port < 65536);
	assert_null(mgmt_endpoint(T.srv, 2));
	assert_int_equal(stat(T.sock, &st), 0);
	assert_true(S_ISSOCK(st.st_mode));
	assert_int_equal(st.st_mode & 0777, 0660);
}

static void test_positional_and_named(void **state)
{
	json_t *r, *res;
	int st;

	(void)state;
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	              "\"params\":[\"bob\",5,true],\"id\":1}");
	res = result_of(r);
	assert_string_equal(json_string_value(json_object_get(res, "name")),
	                    "bob");
	assert_int_equal(json_integer_value(json_object_get(res, "count")), 5);
	assert_true(json_is_true(json_object_get(res, "loud")));
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
	json_decref(r);

	/* named, in any order, with loose types: "7" for 7, 12 for "12" */
	r = http_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	              "\"params\":{\"count\":\"7\",\"name\":12},\"id\":\"a\"}",
	              &st);
	assert_int_equal(st, 200);
	res = result_of(r);
	assert_string_equal(json_string_value(json_object_get(res, "name")),
	                    "12");
	assert_int_equal(json_integer_value(json_object_get(res, "count")), 7);
	assert_true(json_is_false(json_object_get(res, "loud")));
	assert_int_equal(json_integer_value(json_object_get(res, "nparams")),
	                 2);
	assert_string_equal(json_string_value(json_object_get(r, "id")), "a");
	json_decref(r);

	/* optional ones absent (or null) keep their defaults */
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	              "\"params\":[\"al\",null],\"id\":2}");
	res = result_of(r);
	assert_int_equal(json_integer_value(json_object_get(res, "count")), 1);
	json_decref(r);
}

static void test_param_errors(void **state)
{
	json_t *r;
	int st;

	(void)state;
	/* missing: Kamailio's 400 */
	r = http_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	              "\"id\":3}",
	              &st);
	expect_error(r, 400, "Missing parameter 'name'");
	assert_int_equal(st, 400);
	json_decref(r);
	/* wrong types: -32602 */
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	              "\"params\":[\"al\",\"many\"],\"id\":4}");
	expect_error(r, RPC_INVALID_PARAMS, "'count' must be an integer");
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	              "\"params\":{\"name\":{}},\"id\":5}");
	expect_error(r, RPC_INVALID_PARAMS, "'name' must be a string");
	json_decref(r);
	r = http_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	              "\"params\":[\"al\",1,\"maybe\"],\"id\":6}",
	              &st);
	expect_error(r, RPC_INVALID_PARAMS, "must be a boolean");
	assert_int_equal(st, 400);
	json_decref(r);
	still_serving();
}

/* A method's fault reaches the client exactly as Kamailio's jsonrpcs
 * shapes it, and HTTP carries its code as the status. */
static void test_fault_passes_through(void **state)
{
	const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"test.notfound\","
	                  "\"id\":1}";
	const char *want = "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":404,"
	                   "\"message\":\"Dialog not found\"},\"id\":1}";
	int fd, st;
	char *line, *body;

	(void)state;
	fd = connect_unix(T.sock);
	send_text(fd, req, strlen(req));
	send_text(fd, "\n", 1);
	line = read_line(fd);
	close(fd);
	assert_string_equal(line, want);
	free(line);
	body = http(T.http_port, "POST", "/RPC", req, NULL, &st);
	assert_int_equal(st, 404);
	assert_string_equal(body, want);
	free(body);
	still_serving();
}

static void test_protocol_errors(void **state)
{
	json_t *r;
	int st;

	(void)state;
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"no.such\",\"id\":7}");
	expect_error(r, RPC_METHOD_NOT_FOUND, "no.such");
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
	json_decref(r);
	r = http_call("{\"jsonrpc\":\"2.0\",\"method\":\"no.such\",\"id\":7}",
	              &st);
	expect_error(r, RPC_METHOD_NOT_FOUND, NULL);
	assert_int_equal(st, 404);
	json_decref(r);

	/* malformed JSON */
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":}");
	expect_error(r, RPC_PARSE_ERROR, "Parse error");
	assert_true(json_is_null(json_object_get(r, "id")));
	json_decref(r);
	r = http_call("{\"jsonrpc\": \"2.0\", \"method\"", &st);
	expect_error(r, RPC_PARSE_ERROR, NULL);
	assert_int_equal(st, 400);
	json_decref(r);
	r = unix_call("hello world");
	expect_error(r, RPC_PARSE_ERROR, NULL);
	json_decref(r);
	still_serving();

	/* not a request object */
	r = unix_call("42");
	expect_error(r, RPC_INVALID_REQUEST, "not a JSON-RPC object");
	json_decref(r);
	r = http_call("\"core.version\"", &st);
	expect_error(r, RPC_INVALID_REQUEST, NULL);
	assert_int_equal(st, 400);
	json_decref(r);
	/* missing method, bad method, bad version, bad params, bad id */
	r = unix_call("{\"jsonrpc\":\"2.0\",\"id\":8}");
	expect_error(r, RPC_INVALID_REQUEST, "method");
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 8);
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":5,\"id\":8}");
	expect_error(r, RPC_INVALID_REQUEST, "method");
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"1.0\",\"method\":\"core.version\","
	              "\"id\":8}");
	expect_error(r, RPC_INVALID_REQUEST, "jsonrpc");
	json_decref(r);
	r = unix_call("{\"method\":\"core.version\",\"id\":8}");
	expect_error(r, RPC_INVALID_REQUEST, "jsonrpc");
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"core.version\","
	              "\"params\":\"x\",\"id\":8}");
	expect_error(r, RPC_INVALID_REQUEST, "params");
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"core.version\","
	              "\"id\":[1]}");
	expect_error(r, RPC_INVALID_REQUEST, "id");
	assert_true(json_is_null(json_object_get(r, "id")));
	json_decref(r);
	/* an empty batch */
	r = http_call("[]", &st);
	expect_error(r, RPC_INVALID_REQUEST, "empty batch");
	json_decref(r);
	still_serving();
}

static void test_oversized(void **state)
{
	size_t n = MGMT_MAX_REQUEST + 100;
	char *big = malloc(n + 1);
	int fd, st;
	char *line, *body;
	json_t *r;

	(void)state;
	/* a valid request padded with blanks inside the object */
	memset(big, ' ', n);
	memcpy(big, "{\"jsonrpc\":\"2.0\",\"id\":1,", 24);
	memcpy(big + n - 24, "\"method\":\"core.version\"}", 24);
	big[n] = '\0';

	body = http(T.http_port, "POST", "/RPC", big, NULL, &st);
	assert_int_equal(st, 413);
	r = parse(body);
	expect_error(r, RPC_INVALID_REQUEST, "larger than 65536");
	json_decref(r);
	free(body);

	/* UNIX: the error, then the connection ends */
	fd = connect_unix(T.sock);
	send_text(fd, big, n);
	line = read_line(fd);
	r = parse(line);
	expect_error(r, RPC_INVALID_REQUEST, "larger than");
	json_decref(r);
	free(line);
	assert_true(at_eof(fd));
	close(fd);
	free(big);
	still_serving();
}

static void test_batch(void **state)
{
	const char *req =
	        "[{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	        "\"params\":[\"a\"],\"id\":1},"
	        "{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	        "\"params\":[\"notified\"]},"
	        "{\"jsonrpc\":\"2.0\",\"method\":\"no.such\",\"id\":2},"
	        "7,"
	        "{\"jsonrpc\":\"2.0\",\"method\":\"core.version\",\"id\":3}]";
	json_t *r;
	int st;

	(void)state;
	for (int pass = 0; pass < 2; pass++) {
		r = pass ? http_call(req, &st) : unix_call(req);
		if (pass)
			assert_int_equal(st, 200);
		assert_true(json_is_array(r));
		assert_int_equal(json_array_size(r), 4);
		assert_int_equal(json_integer_value(json_object_get(
		                         json_array_get(r, 0), "id")),
		                 1);
		result_of(json_array_get(r, 0));
		expect_error(json_array_get(r, 1), RPC_METHOD_NOT_FOUND, NULL);
		expect_error(json_array_get(r, 2), RPC_INVALID_REQUEST, NULL);
		assert_int_equal(json_integer_value(json_object_get(
		                         json_array_get(r, 3), "id")),
		                 3);
		json_decref(r);
	}
}

static void test_notifications(void **state)
{
	int fd, st;
	char *line, *body;
	json_t *r;
	const char *note = "{\"jsonrpc\":\"2.0\",\"method\":\"test.greet\","
	                   "\"params\":[\"x\"]}\n"
	                   "{\"jsonrpc\":\"2.0\",\"method\":\"no.such\"}\n"
	                   "[{\"jsonrpc\":\"2.0\",\"method\":\"core.version\"}]"
	                   "\n";
	const char *req5 = "{\"jsonrpc\":\"2.0\",\"method\":\"core.version\","
	                   "\"id\":5}\n";

	(void)state;
	/* UNIX: no line for the notifications; the next reply is the
	 * request's */
	fd = connect_unix(T.sock);
	send_text(fd, note, strlen(note));
	send_text(fd, req5, strlen(req5));
	line = read_line(fd);
	r = parse(line);
	assert_int_equal(json_integer_value(json_object_get(r, "id")), 5);
	json_decref(r);
	free(line);
	close(fd);

	/* HTTP: 204 and no body */
	body = http(T.http_port, "POST", "/RPC",
	            "{\"jsonrpc\":\"2.0\",\"method\":\"test.notfound\"}", NULL,
	            &st);
	assert_int_equal(st, 204);
	assert_string_equal(body, "");
	free(body);
	still_serving();
}

/* Several requests on one connection, a request over several lines, two
 * on one line, and one without newline before a half-close. */
static void test_unix_framing(void **state)
{
	const char *text = "{\"jsonrpc\":\"2.0\",\"method\":\"core.echo\","
	                   "\"params\":[\"a}b\\\"{\"],\"id\":1}\n"
	                   "{\n  \"jsonrpc\": \"2.0\",\n  \"method\": "
	                   "\"core.echo\",\n  \"params\": [[1, {\"x\": "
	                   "[]}]],\n  \"id\": 2\n}\n"
	                   "{\"jsonrpc\":\"2.0\",\"method\":\"core.echo\","
	                   "\"id\":3}{\"jsonrpc\":\"2.0\",\"method\":"
	                   "\"core.echo\",\"id\":4}\n"
	                   "{\"jsonrpc\":\"2.0\",\"method\":\"core.echo\","
	                   "\"params\":[5],\"id\":5}";
	int fd = connect_unix(T.sock);
	char *line;
	json_t *r;

	(void)state;
	/* byte by byte: framing must not depend on how reads split */
	for (size_t i = 0; text[i]; i++)
		send_text(fd, text + i, 1);
	shutdown(fd, SHUT_WR);
	for (int id = 1; id <= 5; id++) {
		line = read_line(fd);
		r = parse(line);
		assert_int_equal(json_integer_value(json_object_get(r, "id")),
		                 id);
		result_of(r);
		if (id == 1)
			assert_string_equal(json_string_value(json_array_get(
			                            result_of(r), 0)),
			                    "a}b\"{");
		json_decref(r);
		free(line);
	}
	assert_true(at_eof(fd));
	close(fd);
}

/* A broken line is answered at once; the next request still works. */
static void test_unix_resync(void **state)
{
	static const struct {
		const char *text;
		int errors;
	} lines[] = {
	        {"{\"jsonrpc\":\"2.0\",\"method\":]\n", 1},
	        {"{\"jsonrpc\" x\n", 1},
	        /* a raw newline in a string: both halves are wrong */
	        {"{\"jsonrpc\":\"2.0\",\"method\":\"core.ve\nrsion\"}\n", 2},
	        {"}\n", 1},
	};
	const char *good = "{\"jsonrpc\":\"2.0\",\"method\":\"core.version\","
	                   "\"id\":1}\n";
	int fd = connect_unix(T.sock);
	char *line;
	json_t *r;

	(void)state;
	for (size_t i = 0; i < sizeof(lines) / sizeof(lines[0]); i++) {
		send_text(fd, lines[i].text, strlen(lines[i].text));
		for (int k = 0; k < lines[i].errors; k++) {
			line = read_line(fd);
			r = parse(line);
			expect_error(r, RPC_PARSE_ERROR, NULL);
			json_decref(r);
			free(line);
		}
	}
	send_text(fd, good, strlen(good));
	line = read_line(fd);
	r = parse(line);
	result_of(r);
	json_decref(r);
	free(line);
	close(fd);
}

static void test_result_builder(void **state)
{
	json_t *r, *res, *items;

	(void)state;
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.build\","
	              "\"id\":1}");
	res = result_of(r);
	assert_int_equal(json_integer_value(json_object_get(res, "n")), 3);
	items = json_object_get(res, "items");
	assert_int_equal(json_array_size(items), 3);
	assert_string_equal(json_string_value(json_object_get(
	                            json_array_get(items, 2), "label")),
	                    "item-2");
	assert_string_equal(json_string_value(json_object_get(res, "bytes")),
	                    "a\xef\xbf\xbd"
	                    "b");
	assert_true(json_real_value(json_object_get(res, "half")) == 0.5);
	assert_true(json_is_null(json_object_get(res, "nothing")));
	assert_true(json_is_null(json_object_get(res, "null_str")));
	json_decref(r);

	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.misuse\","
	              "\"id\":1}");
	expect_error(r, RPC_INTERNAL_ERROR, NULL);
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.twice\","
	              "\"id\":1}");
	expect_error(r, RPC_INTERNAL_ERROR, NULL);
	json_decref(r);

	/* nothing added: {} as jsonrpcs */
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.nothing\","
	              "\"id\":1}");
	res = result_of(r);
	assert_true(json_is_object(res));
	assert_int_equal(json_object_size(res), 0);
	json_decref(r);
}

static void test_token(void **state)
{
	const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"core.version\","
	                  "\"id\":1}";
	char *body;
	int st;
	json_t *r;

	(void)state;
	body = http(T.tok_port, "POST", "/RPC", req, NULL, &st);
	assert_int_equal(st, 401);
	r = parse(body);
	expect_error(r, 401, "Unauthorized");
	json_decref(r);
	free(body);
	body = http(T.tok_port, "POST", "/RPC", req, "Bearer wrong", &st);
	assert_int_equal(st, 401);
	free(body);
	body = http(T.tok_port, "POST", "/RPC", req, "Bearer " TOKEN "x", &st);
	assert_int_equal(st, 401);
	free(body);
	body = http(T.tok_port, "POST", "/RPC", req, "Basic " TOKEN, &st);
	assert_int_equal(st, 401);
	free(body);
	body = http(T.tok_port, "POST", "/RPC", req, "Bearer " TOKEN, &st);
	assert_int_equal(st, 200);
	r = parse(body);
	assert_true(strncmp(json_string_value(result_of(r)), "imsdlgd ", 8) ==
	            0);
	json_decref(r);
	free(body);
	body = http(T.tok_port, "POST", "/RPC", req, "bearer  " TOKEN, &st);
	assert_int_equal(st, 200);
	free(body);
	/* pages too */
	body = http(T.tok_port, "GET", "/hello", NULL, NULL, &st);
	assert_int_equal(st, 401);
	free(body);
}

static void test_http_paths(void **state)
{
	char *body;
	int st;

	(void)state;
	body = http(T.http_port, "GET", "/hello", NULL, NULL, &st);
	assert_int_equal(st, 200);
	assert_string_equal(body, "# hello\nhello_total 42\n");
	free(body);
	body = http(T.http_port, "GET", "/RPC", NULL, NULL, &st);
	assert_int_equal(st, 405);
	free(body);
	body = http(T.http_port, "POST", "/elsewhere", "{}", NULL, &st);
	assert_int_equal(st, 404);
	free(body);
	body = http(T.http_port, "POST", "/",
	            "{\"jsonrpc\":\"2.0\",\"method\":\"core.version\","
	            "\"id\":1}",
	            NULL, &st);
	assert_int_equal(st, 200);
	free(body);
}

static void test_builtins(void **state)
{
	json_t *r, *res;
	const char *prev = "";
	bool seen = false;

	(void)state;
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"system.listMethods\","
	              "\"id\":1}");
	res = result_of(r);
	for (size_t i = 0; i < json_array_size(res); i++) {
		const char *n = json_string_value(json_array_get(res, i));

		assert_true(strcmp(prev, n) < 0); /* sorted */
		seen |= strcmp(n, "test.shards") == 0;
		prev = n;
	}
	assert_true(seen);
	json_decref(r);

	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"system.methodHelp\","
	              "\"params\":[\"test.greet\"],\"id\":1}");
	assert_string_equal(json_string_value(result_of(r)),
	                    "greets NAME [COUNT [LOUD]]");
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"system.methodHelp\","
	              "\"params\":[\"test.nothing\"],\"id\":1}");
	assert_string_equal(json_string_value(result_of(r)), "undocumented");
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"system.methodHelp\","
	              "\"params\":[\"x.y\"],\"id\":1}");
	expect_error(r, 400, "command not found");
	json_decref(r);

	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"core.version\","
	              "\"id\":1}");
	assert_true(strncmp(json_string_value(result_of(r)), "imsdlgd 0.",
	                    10) == 0);
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"core.uptime\","
	              "\"id\":1}");
	res = result_of(r);
	assert_true(json_is_string(json_object_get(res, "now")));
	assert_true(json_is_string(json_object_get(res, "up_since")));
	assert_true(json_integer_value(json_object_get(res, "uptime")) >= 0);
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"core.info\","
	              "\"id\":1}");
	res = result_of(r);
	assert_int_equal(json_integer_value(json_object_get(res, "workers")),
	                 2);
	assert_int_equal(json_integer_value(json_object_get(res, "pid")),
	                 getpid());
	assert_int_equal(json_array_size(json_object_get(res, "rpc")), 2);
	json_decref(r);
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"core.echo\","
	              "\"params\":{\"a\":[1,\"2\"]},\"id\":1}");
	assert_int_equal(json_integer_value(json_array_get(
	                         json_object_get(result_of(r), "a"), 0)),
	                 1);
	json_decref(r);
}

static void test_for_each_shard(void **state)
{
	json_t *r, *res;

	(void)state;
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.shards\","
	              "\"id\":1}");
	res = result_of(r);
	assert_int_equal(json_array_size(res), 2);
	assert_int_equal(json_integer_value(json_array_get(res, 0)), 0);
	assert_int_equal(json_integer_value(json_array_get(res, 1)), 1);
	json_decref(r);
	assert_int_equal(atomic_load(&T.late_runs), 0);
}

static void test_on_shard(void **state)
{
	json_t *r;

	(void)state;
	for (int i = 0; i < 2; i++) {
		char req[96];
		snprintf(req, sizeof(req),
		         "{\"jsonrpc\":\"2.0\",\"method\":\"test.shard\","
		         "\"params\":[%d],\"id\":1}",
		         i);
		r = unix_call(req);
		assert_int_equal(json_integer_value(result_of(r)), i);
		json_decref(r);
	}
	r = unix_call("{\"jsonrpc\":\"2.0\",\"method\":\"test.shard\","
	              "\"params\":[2],\"id\":1}");
	expect_error(r, 500, "no worker 2");
	json_decref(r);
}

struct block_job {
	struct rt_job job;
	unsigned ms;
};

static void block_run(struct worker *w, struct rt_job *j)
{
	struct block_job *b = (struct block_job *)j;

	(void)w;
	usleep(b->ms * 1000);
}

/* A worker busy past the timeout: 500, and the function never runs
 * there later (its argument was on the handler's stack). */
static void test_shard_timeout(void **state)
{
	const char *req = "{\"jsonrpc\":\"2.0\",\"method\":\"test.shards\","
	                  "\"id\":1}";
	struct block_job *b = calloc(1, sizeof(*b));
	char *body;
	int st;
	json_t *r;

	(void)state;
	b->job.fn = block_run;
	b->ms = 400;
	rt_post(T.rt, 1, &b->job);
	body = http(T.tok_port, "POST", "/RPC", req, "Bearer " TOKEN, &st);
	assert_int_equal(st, 500);
	r = parse(body);
	expect_error(r, 500, "worker 1 did not answer within 100 ms");
	json_decref(r);
	free(body);
	usleep(600 * 1000);
	/* worker 0 ran for the failed call: count it out */
	assert_int_equal(atomic_load(&T.late_runs), 1);
	atomic_store(&T.late_runs, 0);
	body = http(T.tok_port, "POST", "/RPC", req, "Bearer " TOKEN, &st);
	assert_int_equal(st, 200);
	free(body);
	assert_int_equal(atomic_load(&T.late_runs), 0);
}

static void test_registry(void **state)
{
	static const struct rpc_method dup[] = {
	        {"core.version", m_nothing, ""}};
	static const struct rpc_method twice[] = {{"t.a", m_nothing, ""},
	                                          {"t.a", m_nothing, ""}};
	static const struct rpc_method bad[] = {{"has space", m_nothing, ""}};
	static const struct rpc_method nofn[] = {{"t.nofn", NULL, ""}};
	static const struct mgmt_page badpage = {"metrics", NULL, m_nothing};

	(void)state;
	assert_int_equal(rpc_register(dup, 1), EEXIST);
	assert_int_equal(rpc_register(twice, 2), EEXIST);
	assert_int_equal(rpc_register(bad, 1), EINVAL);
	assert_int_equal(rpc_register(nofn, 1), EINVAL);
	assert_null(rpc_lookup("t.a"));
	assert_non_null(rpc_lookup("test.greet"));
	assert_int_equal(mgmt_register_page(&hello_page), EEXIST);
	assert_int_equal(mgmt_register_page(&badpage), EINVAL);
}

static void check_spec(const char *s, bool ok)
{
	struct cfg_value v = {CFG_STR, 0, s};
	const char *why = mgmt_listen_check(&v);

	if (ok && why != NULL)
		fail_msg("'%s' refused: %s", s, why);
	if (!ok && why == NULL)
		fail_msg("'%s' accepted", s);
}

static void test_listen_specs(void **state)
{
	(void)state;
	check_spec("http:127.0.0.1:5080", true);
	check_spec("http:5080", true);
	check_spec("http:[::1]:5080", true);
	check_spec("http:0.0.0.0:8080", true);
	check_spec("http:localhost:5080", true);
	check_spec("http:127.0.0.1", true);
	check_spec("unix:/run/x.sock", true);
	check_spec("unix:", true);
	check_spec("http:::1:5080", false);
	check_spec("http:127.0.0.1:99999", false);
	check_spec("http:example.com:80", false);
	check_spec("tcp:127.0.0.1:5080", false);
	check_spec("/run/x.sock", false);
}

static void test_socket_in_use(void **state)
{
	struct mgmt_config mc;
	struct mgmt *m = NULL;
	char spec[200], err[256], stale[100];
	int fd;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	(void)state;
	/* a live server there: refused, and its socket left alone */
	memset(&mc, 0, sizeof(mc));
	snprintf(spec, sizeof(spec), "unix:%s", T.sock);
	mc.listen[0] = spec;
	mc.nlisten = 1;
	assert_int_equal(mgmt_start(&m, &mc, err, sizeof(err)), EADDRINUSE);
	assert_non_null(strstr(err, "another server"));
	still_serving();

	/* a leftover file: replaced, and removed at stop */
	snprintf(stale, sizeof(stale), "%s/stale.sock", T.dir);
	fd = socket(AF_UNIX, SOCK_STREAM, 0);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", stale);
	assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	close(fd);
	snprintf(spec, sizeof(spec), "unix:%s", stale);
	if (mgmt_start(&m, &mc, err, sizeof(err)) != 0)
		fail_msg("%s", err);
	mgmt_stop(m);
	assert_int_equal(access(stale, F_OK), -1);
}

static void test_default_socket(void **state)
{
	char path[300];

	(void)state;
	assert_int_equal(mgmt_default_socket(path, sizeof(path), false), 0);
	assert_non_null(strstr(path, "/imsdlg_rpc.sock"));
	assert_int_equal(mgmt_default_socket(path, 10, false), ENAMETOOLONG);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_endpoints),
	        cmocka_unit_test(test_positional_and_named),
	        cmocka_unit_test(test_param_errors),
	        cmocka_unit_test(test_fault_passes_through),
	        cmocka_unit_test(test_protocol_errors),
	        cmocka_unit_test(test_oversized),
	        cmocka_unit_test(test_batch),
	        cmocka_unit_test(test_notifications),
	        cmocka_unit_test(test_unix_framing),
	        cmocka_unit_test(test_unix_resync),
	        cmocka_unit_test(test_result_builder),
	        cmocka_unit_test(test_token),
	        cmocka_unit_test(test_http_paths),
	        cmocka_unit_test(test_builtins),
	        cmocka_unit_test(test_for_each_shard),
	        cmocka_unit_test(test_on_shard),
	        cmocka_unit_test(test_shard_timeout),
	        cmocka_unit_test(test_registry),
	        cmocka_unit_test(test_listen_specs),
	        cmocka_unit_test(test_socket_in_use),
	        cmocka_unit_test(test_default_socket),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
