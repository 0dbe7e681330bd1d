/*
 * The statistics registry and /metrics (src/mgmt/stats.c, metrics.c): the
 * Prometheus text formatter (names, escaping, UTF-8), then a registry
 * group served by a real server with two workers: Kamailio's selection
 * forms and reply shapes, resets that restart counters and leave gauges,
 * and the page with its prefix.
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
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "mgmt/mgmt_int.h"

#define WAIT_MS 5000

/* ------------------------------------------------------------ formatter */

static void test_names(void **state)
{
	char n[PROM_NAME_MAX];

	(void)state;
	prom_name(n, sizeof(n), "imsdlg_", "tmx", "UAS_transactions");
	assert_string_equal(n, "imsdlg_tmx_UAS_transactions");
	prom_name(n, sizeof(n), "kamailio_", "dialog", "active_dialogs");
	assert_string_equal(n, "kamailio_dialog_active_dialogs");
	/* anything but [A-Za-z0-9_] becomes '_' */
	prom_name(n, sizeof(n), "my-app.", "a b", "x/y:z\xc3\xa9");
	assert_string_equal(n, "my_app_a_b_x_y_z__");
	/* a name may not start with a digit */
	prom_name(n, sizeof(n), "", "2g", "x");
	assert_string_equal(n, "_2g_x");
	prom_name(n, sizeof(n), NULL, NULL, "9a");
	assert_string_equal(n, "_9a");
	prom_name(n, sizeof(n), "9", "tmx", "x");
	assert_string_equal(n, "_9tmx_x");
	/* cut to the buffer */
	assert_int_equal(prom_name(n, 8, "imsdlg_", "tmx", "x"), 7);
	assert_string_equal(n, "imsdlg_");
}

static void test_family_and_samples(void **state)
{
	struct prom_buf b = {0};
	const char *labels[] = {"profile",    "p",        "value",
	                        "a\"b\\c\nd", "bad-name", ""};

	(void)state;
	prom_family(&b, "n", STAT_COUNTER, "one \\ two\nthree \"q\"");
	prom_sample(&b, "n", NULL, 0, "5");
	prom_family(&b, "g", STAT_GAUGE, NULL);
	prom_sample(&b, "g", labels, 3, "-1");
	assert_false(b.failed);
	assert_string_equal(b.p, "# HELP n one \\\\ two\\nthree \"q\"\n"
	                         "# TYPE n counter\n"
	                         "n 5\n"
	                         "# HELP g \n"
	                         "# TYPE g gauge\n"
	                         "g{profile=\"p\",value=\"a\\\"b\\\\c\\nd\","
	                         "bad_name=\"\"} -1\n");
	prom_buf_fini(&b);
}

static void test_utf8(void **state)
{
	static const struct {
		const char *in, *out;
	} cases[] = {
	        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e",
	         "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x93\x9e"}, /* valid */
	        {"x\xffy", "x\xef\xbf\xbdy"},                  /* stray */
	        {"\xc0\xaf", "\xef\xbf\xbd\xef\xbf\xbd"},      /* overlong */
	        {"\xed\xa0\x80", "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	        {"end\xe2\x82", "end\xef\xbf\xbd\xef\xbf\xbd"}, /* cut */
	        {"\xf4\x90\x80\x80",                            /* > 10FFFF */
	         "\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd\xef\xbf\xbd"},
	};

	(void)state;
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		struct prom_buf b = {0};
		const char *labels[] = {"v", cases[i].in};
		char want[128];

		prom_sample(&b, "m", labels, 1, "1");
		snprintf(want, sizeof(want), "m{v=\"%s\"} 1\n", cases[i].out);
		assert_string_equal(b.p, want);
		prom_buf_fini(&b);
	}
}

/* ------------------------------------------------------------- a group */

static atomic_llong raw_hits; /* what worker 0 has counted */
static atomic_llong raw_proc;

enum { HITS, LEVEL, PROC, NTEST };

static const struct stat_def test_defs[] = {
        {"hits", STAT_COUNTER, STAT_SHARD, "Hits \"so far\""},
        {"level", STAT_GAUGE, STAT_SHARD, "A level"},
        {"proc", STAT_COUNTER, STAT_PROCESS, "Process-wide"},
};

/* Worker 0 holds raw_hits, worker 1 one hit; each has level 5. */
static void test_shard_read(struct worker *w, int64_t *v, void *arg)
{
	(void)arg;
	v[HITS] += worker_id(w) == 0 ? atomic_load(&raw_hits) : 1;
	v[LEVEL] += 5;
}

static void test_process_read(struct rt *rt, int64_t *v, void *arg)
{
	(void)arg;
	v[PROC] = rt != NULL ? atomic_load(&raw_proc) : -1;
}

static const struct stat_group test_group = {
        "test", test_defs, NTEST, test_shard_read, test_process_read, &raw_hits,
};

static void labelled(struct metrics_out *out, void *arg)
{
	const char *labels[] = {"profile", "caller", "value", "o\"k"};

	assert_ptr_equal(arg, &raw_proc);
	metrics_family(out, "dialog_profile_size", STAT_GAUGE, "Sizes");
	metrics_sample(out, labels, 2, 7);
}

static struct {
	struct rt *rt;
	struct mgmt *srv, *kam;
	unsigned port, kam_port;
} T;

static void on_rx(struct worker *w, const struct net_rx *rx)
{
	(void)w;
	(void)rx;
}

static const struct rt_app app = {.on_rx = on_rx};

static int start(struct mgmt **m, unsigned *port, const char *prefix)
{
	struct mgmt_config mc;
	char err[256];

	memset(&mc, 0, sizeof(mc));
	mc.listen[0] = "http:127.0.0.1:0";
	mc.nlisten = 1;
	mc.rt = T.rt;
	mc.metrics_prefix = prefix;
	if (mgmt_start(m, &mc, err, sizeof(err)) != 0) {
		fprintf(stderr, "mgmt_start: %s\n", err);
		return -1;
	}
	sscanf(mgmt_endpoint(*m, 0), "http:127.0.0.1:%u", port);
	return 0;
}

static int setup(void **state)
{
	struct rt_config rc = {.workers = 2};
	char err[256];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	if (stats_register(&test_group) ||
	    metrics_register(labelled, &raw_proc))
		return -1;
	if (rt_start(&T.rt, &rc, &app, err, sizeof(err)) != 0) {
		fprintf(stderr, "rt_start: %s\n", err);
		return -1;
	}
	return start(&T.srv, &T.port, NULL) ||
	       start(&T.kam, &T.kam_port, "kamailio_");
}

static int teardown(void **state)
{
	(void)state;
	rt_stop(T.rt);
	rt_wait(T.rt);
	mgmt_stop(T.srv);
	mgmt_stop(T.kam);
	rt_free(T.rt);
	return 0;
}

/* ------------------------------------------------------------- clients */

/* HTTP/1.1 with Connection: close; the body (malloc'ed), the status. */
static char *http(unsigned port, const char *method, const char *url,
                  const char *body, int *status)
{
	struct sockaddr_in sa = {.sin_family = AF_INET,
	                         .sin_port = htons((uint16_t)port),
	                         .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	struct pollfd p = {fd, POLLIN, 0};
	char head[256], *resp = NULL, *b;
	size_t len = 0, cap = 0;

	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	snprintf(head, sizeof(head),
	         "%s %s HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
	         "Content-Length: %zu\r\n\r\n%s",
	         method, url, body ? strlen(body) : 0, body ? body : "");
	assert_int_equal(send(fd, head, strlen(head), MSG_NOSIGNAL),
	                 (ssize_t)strlen(head));
	for (;;) {
		ssize_t r;

		if (len + 4097 > cap)
			resp = realloc(resp, cap = cap ? cap * 2 : 16384);
		if (poll(&p, 1, WAIT_MS) != 1)
			fail_msg("no HTTP reply within %d ms", WAIT_MS);
		r = recv(fd, resp + len, cap - len - 1, 0);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd);
	resp[len] = '\0';
	assert_int_equal(sscanf(resp, "HTTP/1.1 %d", status), 1);
	b = strstr(resp, "\r\n\r\n");
	assert_non_null(b);
	b = strdup(b + 4);
	free(resp);
	return b;
}

/* The reply to method with params (a JSON array text). */
static json_t *call(const char *method, const char *params)
{
	char req[512], *body;
	json_t *j;
	int st;

	snprintf(req, sizeof(req),
	         "{\"jsonrpc\":\"2.0\",\"method\":\"%s\",\"params\":%s,"
	         "\"id\":1}",
	         method, params);
	body = http(T.port, "POST", "/RPC", req, &st);
	j = json_loads(body, 0, NULL);
	if (j == NULL)
		fail_msg("not JSON: %s", body);
	free(body);
	return j;
}

static json_t *result(const char *method, const char *params)
{
	json_t *r = call(method, params), *res = json_object_get(r, "result");

	if (res == NULL)
		fail_msg("%s %s: %s", method, params, json_dumps(r, 0));
	json_incref(res);
	json_decref(r);
	return res;
}

static long long fetchn(const char *key)
{
	json_t *r = result("stats.fetchn", "[\"all\"]");
	json_t *v = json_object_get(r, key);
	long long n;

	if (!json_is_integer(v))
		fail_msg("no integer %s in %s", key, json_dumps(r, 0));
	n = json_integer_value(v);
	json_decref(r);
	return n;
}

static void expect_fault(const char *method, const char *params, int code)
{
	json_t *r = call(method, params);

	assert_int_equal(json_integer_value(json_object_get(
	                         json_object_get(r, "error"), "code")),
	                 code);
	json_decref(r);
}

/* ---------------------------------------------------------- the tests */

static void test_register_errors(void **state)
{
	static const struct stat_def twice[] = {
	        {"a", STAT_COUNTER, STAT_SHARD, ""},
	        {"a", STAT_GAUGE, STAT_SHARD, ""},
	};
	static const struct stat_def bad[] = {
	        {"a-b", STAT_COUNTER, STAT_SHARD, ""},
	};
	struct stat_group g = {"other", twice, 2, test_shard_read, NULL, NULL};

	(void)state;
	assert_int_equal(stats_register(&g), EINVAL); /* name twice */
	g.stats = bad;
	g.n = 1;
	assert_int_equal(stats_register(&g), EINVAL); /* bad name */
	g.stats = test_defs;
	g.n = NTEST;
	assert_int_equal(stats_register(&g), EINVAL); /* no process reader */
	g.process_read = test_process_read;
	g.name = "test";
	assert_int_equal(stats_register(&g), EEXIST);
	g.name = "shard"; /* the server's */
	assert_int_equal(stats_register(&g), EEXIST);
	g.name = "";
	assert_int_equal(stats_register(&g), EINVAL);
	assert_int_equal(metrics_register(NULL, NULL), EINVAL);
}

static void test_shapes_and_forms(void **state)
{
	json_t *r;

	(void)state;
	atomic_store(&raw_hits, 41);
	atomic_store(&raw_proc, 9);
	r = result("stats.get_statistics", "[\"test:\"]");
	assert_int_equal(json_array_size(r), 3);
	assert_string_equal(json_string_value(json_array_get(r, 0)),
	                    "test:hits = 42");
	assert_string_equal(json_string_value(json_array_get(r, 1)),
	                    "test:level = 10");
	assert_string_equal(json_string_value(json_array_get(r, 2)),
	                    "test:proc = 9");
	json_decref(r);
	/* group:name, group.name and a bare name; asked twice, told once */
	r = result("stats.fetch",
	           "[\"test:hits\",\"test.level\",\"proc\",\"hits\"]");
	assert_int_equal(json_object_size(r), 3);
	assert_string_equal(json_string_value(json_object_get(r, "test.hits")),
	                    "42");
	assert_string_equal(json_string_value(json_object_get(r, "test.level")),
	                    "10");
	assert_string_equal(json_string_value(json_object_get(r, "test.proc")),
	                    "9");
	json_decref(r);
	/* all: every group, the server's "shard" one gauge per worker */
	r = result("stats.fetchn", "[\"all\"]");
	assert_int_equal(json_integer_value(json_object_get(r, "test.hits")),
	                 42);
	assert_true(json_is_integer(json_object_get(r, "shard.queue_depth_0")));
	assert_true(json_is_integer(json_object_get(r, "shard.queue_depth_1")));
	assert_null(json_object_get(r, "shard.queue_depth_2"));
	json_decref(r);
	expect_fault("stats.fetch", "[]", 400);
	expect_fault("stats.fetch", "[\"nope\"]", 404);
	expect_fault("stats.fetch", "[\"test.\"]", 404);
	expect_fault("stats.fetch", "[\"other:hits\"]", 404);
	expect_fault("stats.fetchn", "[1]", 404); /* "1": no such name */
	expect_fault("stats.reset_statistics", "[\"nope:\"]", 404);
}

static void test_reset(void **state)
{
	json_t *r;

	(void)state;
	atomic_store(&raw_hits, 100);
	atomic_store(&raw_proc, 50);
	r = result("stats.reset_statistics", "[\"test:\"]");
	assert_true(json_is_object(r) && json_object_size(r) == 0);
	json_decref(r);
	/* counters restart at 0, the gauge stays */
	assert_int_equal(fetchn("test.hits"), 0);
	assert_int_equal(fetchn("test.proc"), 0);
	assert_int_equal(fetchn("test.level"), 10);
	atomic_fetch_add(&raw_hits, 4);
	atomic_fetch_add(&raw_proc, 1);
	assert_int_equal(fetchn("test.hits"), 4);
	assert_int_equal(fetchn("test.proc"), 1);
	/* clear: the values, then the reset of what it named only */
	r = result("stats.clear_statistics", "[\"hits\"]");
	assert_int_equal(json_array_size(r), 1);
	assert_string_equal(json_string_value(json_array_get(r, 0)),
	                    "test:hits = 4");
	json_decref(r);
	assert_int_equal(fetchn("test.hits"), 0);
	assert_int_equal(fetchn("test.proc"), 1);
	/* naming a gauge resets nothing */
	r = result("stats.reset_statistics", "[\"level\"]");
	json_decref(r);
	assert_int_equal(fetchn("test.level"), 10);
}

static bool has_line(const char *text, const char *line)
{
	size_t n = strlen(line);

	for (const char *p = text; (p = strstr(p, line)) != NULL; p++)
		if ((p == text || p[-1] == '\n') && p[n] == '\n')
			return true;
	return false;
}

static void test_page(void **state)
{
	int st;
	char *body;

	(void)state;
	atomic_store(&raw_proc, 51); /* 1 since the last reset */
	body = http(T.port, "GET", "/metrics", NULL, &st);
	assert_int_equal(st, 200);
	assert_true(has_line(body, "# HELP imsdlg_test_hits Hits \"so far\""));
	assert_true(has_line(body, "# TYPE imsdlg_test_hits counter"));
	assert_true(has_line(body, "# TYPE imsdlg_test_level gauge"));
	assert_true(has_line(body, "imsdlg_test_level 10"));
	assert_true(has_line(body, "imsdlg_test_proc 1"));
	assert_true(has_line(body, "# TYPE imsdlg_shard_queue_depth_1 gauge"));
	assert_true(has_line(body, "# TYPE imsdlg_dialog_profile_size gauge"));
	assert_true(has_line(body, "imsdlg_dialog_profile_size{profile="
	                           "\"caller\",value=\"o\\\"k\"} 7"));
	/* Prometheus' own names for the process, without the prefix */
	assert_true(has_line(body, "# TYPE process_cpu_seconds_total counter"));
	assert_true(
	        has_line(body, "# TYPE process_resident_memory_bytes gauge"));
	assert_null(strstr(body, "imsdlg_process"));
	free(body);

	body = http(T.kam_port, "GET", "/metrics", NULL, &st);
	assert_int_equal(st, 200);
	assert_true(has_line(body, "kamailio_test_level 10"));
	assert_true(has_line(body, "kamailio_dialog_profile_size{profile="
	                           "\"caller\",value=\"o\\\"k\"} 7"));
	assert_null(strstr(body, "imsdlg_"));
	free(body);
}

int main(void)
{
	const struct CMUnitTest formatter[] = {
	        cmocka_unit_test(test_names),
	        cmocka_unit_test(test_family_and_samples),
	        cmocka_unit_test(test_utf8),
	};
	const struct CMUnitTest registry[] = {
	        cmocka_unit_test(test_register_errors),
	        cmocka_unit_test(test_shapes_and_forms),
	        cmocka_unit_test(test_reset),
	        cmocka_unit_test(test_page),
	};

	return cmocka_run_group_tests(formatter, NULL, NULL) |
	       cmocka_run_group_tests(registry, setup, teardown);
}
