/*
 * dlg RPC listings through a real management server (UNIX socket) and
 * runtime (two workers, no SIP), on hand-made dialogs in shards of
 * hash_size 1: every dialog of a shard is in one chain, so a listing of a
 * thousand of them is walked in several chunks that stop and resume
 * inside the chain.
 *
 *   - DLGCB_RPC_CONTEXT: what a callback adds appears in the "context"
 *     object of the *_ctx listings, and only there;
 *   - consistency: the table changes between two chunks (a dialog is
 *     created, one not visited yet and one already visited are freed):
 *     every dialog alive for the whole listing appears exactly once, the
 *     new one not at all (it was not there when its place was walked);
 *   - paging (offset, limit) and list_match limits across chunks.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "dlg/dlg_int.h"
#include "mgmt/mgmt.h"

#define NDLG    1000 /* in shard 0: several chunks of the walk */
#define NDLG1   3    /* in shard 1 */
#define WAIT_MS 10000

static struct {
	char dir[48];
	char sock[80];
	struct rt *rt;
	struct mgmt *srv;
	struct dlg_config cfg;
	struct dlg_shard shard[2];
	struct dlg_shard *shards[2];
	atomic_int ctx_calls;
	atomic_bool mutate; /* the next context callback changes the table */
	atomic_uint big_id; /* this dialog's callback adds a large value */
	atomic_int big_calls;
} T;

/* Larger than a chunk's first block (256 KiB). */
#define BIG_LEN (300 * 1024)
static char big[BIG_LEN + 1];

/* ------------------------------------------------------ hand-made table */

/* prefix, the number, then suffix: a string of the dialog's. */
static char *num_str(const char *prefix, unsigned v, const char *suffix)
{
	char buf[64];

	snprintf(buf, sizeof(buf), "%s%u%s", prefix, v, suffix);
	return strdup(buf);
}

/* A confirmed dialog at the head of its shard's only chain, as dlg.c
 * create() puts it (ids grow with creation). */
static struct dlg *mk(struct dlg_shard *ds, uint32_t h_id)
{
	struct dlg *d = calloc(1, sizeof(*d));

	assert_non_null(d);
	d->ds = ds;
	tmr_init(&d->timer);
	profile_set_init(&d->profiles);
	d->h_id = h_id;
	d->state = DLG_STATE_CONFIRMED;
	d->callid = num_str("call-", h_id, "@test");
	d->from_uri = num_str("sip:caller", h_id, "@test");
	d->to_uri = strdup("sip:callee@test");
	d->from_tag = num_str("tag", h_id, "");
	d->callid_len = (uint32_t)strlen(d->callid);
	d->from_tag_len = (uint32_t)strlen(d->from_tag);
	d->lifetime = 60;
	assert_int_equal(set_dlg_var(d, "n", d->from_tag), 0);
	d->hnext = ds->slots[0];
	ds->slots[0] = d;
	ds->count++;
	return d;
}

static void dlg_drop(struct dlg *d)
{
	dlg_callbacks_free(d);
	dlg_vars_free(d);
	free(d->callid);
	free(d->from_uri);
	free(d->to_uri);
	free(d->from_tag);
	d->ds->count--;
	free(d);
}

/* Unlinks and frees dialog h_id of ds (worker thread, or no worker). */
static void rm(struct dlg_shard *ds, uint32_t h_id)
{
	for (struct dlg **pp = &ds->slots[0]; *pp; pp = &(*pp)->hnext) {
		if ((*pp)->h_id == h_id) {
			struct dlg *d = *pp;
			*pp = d->hnext;
			dlg_drop(d);
			return;
		}
	}
	fail_msg("no dialog %u", h_id);
}

/* Posted by the context callback during the first chunk: runs on the
 * worker after that chunk, before the next one. */
static void mutate_run(struct worker *w, struct rt_job *j)
{
	struct dlg_shard *ds = &T.shard[0];

	(void)w;
	(void)j; /* the runtime frees it */
	mk(ds, NDLG + 1);
	rm(ds, 10);   /* not visited yet: far down the chain */
	rm(ds, NDLG); /* visited: the head of the first chunk */
	/* Its callbacks had been run; freeing it must not affect the
	 * listing, which holds copies. */
}

static void ctx_cb(struct dlg *d, int type, struct dlg_cb_params *p)
{
	struct dlg_rpc_context *c = p->dlg_data;

	assert_int_equal(type, DLGCB_RPC_CONTEXT);
	assert_non_null(c);
	assert_null(p->req);
	assert_int_equal(p->direction, DLG_DIR_NONE);
	assert_ptr_equal(*p->param, &T);
	atomic_fetch_add(&T.ctx_calls, 1);
	if (d->h_id == atomic_load(&T.big_id)) {
		atomic_fetch_add(&T.big_calls, 1);
		/* No room: the dialog is copied again in a later chunk. */
		if (dlg_rpc_context_add_str(c, "big", big) == ENOMEM)
			return;
	}
	assert_int_equal(dlg_rpc_context_add_str(c, "module", "test"), 0);
	assert_int_equal(dlg_rpc_context_add_int(c, "id", 1), 0);
	/* the same key again: the last value wins */
	assert_int_equal(dlg_rpc_context_add_int(c, "id", d->h_id), 0);
	assert_int_equal(dlg_rpc_context_add_str(c, "", "x"), EINVAL);
	assert_int_equal(dlg_rpc_context_add_str(c, "k", NULL), EINVAL);
	assert_int_equal(dlg_rpc_context_add_int(NULL, "k", 1), EINVAL);
	if (atomic_exchange(&T.mutate, false)) {
		struct rt_job *j = calloc(1, sizeof(*j));
		assert_non_null(j);
		j->fn = mutate_run;
		rt_post(T.rt, 0, j);
	}
}

/* ------------------------------------------------------------ client */

static json_t *call(const char *method, const char *params)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);
	char req[512];
	size_t cap = 1 << 20, len = 0;
	char *buf = malloc(cap);
	json_t *r;

	assert_true(fd >= 0);
	assert_non_null(buf);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", T.sock);
	assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	int n = snprintf(req, sizeof(req),
	                 "{\"jsonrpc\":\"2.0\",\"method\":\"%s\","
	                 "\"params\":%s,\"id\":1}\n",
	                 method, params ? params : "[]");
	assert_int_equal(write(fd, req, (size_t)n), n);
	for (;;) {
		struct pollfd p = {.fd = fd, .events = POLLIN};
		assert_int_equal(poll(&p, 1, WAIT_MS), 1);
		if (len + 65536 > cap) {
			cap *= 2;
			buf = realloc(buf, cap);
			assert_non_null(buf);
		}
		ssize_t got = read(fd, buf + len, cap - len - 1);
		assert_true(got > 0);
		len += (size_t)got;
		if (buf[len - 1] == '\n')
			break;
	}
	close(fd);
	buf[len] = '\0';
	r = json_loads(buf, 0, NULL);
	free(buf);
	assert_non_null(r);
	return r;
}

static json_t *result(json_t *reply)
{
	json_t *res = json_object_get(reply, "result");

	if (res == NULL) {
		char *s = json_dumps(reply, 0);
		fail_msg("no result: %s", s);
	}
	return res;
}

/* The h_ids of a listing, in order. */
static size_t h_ids(json_t *arr, unsigned *out, size_t max)
{
	size_t n = json_array_size(arr);

	assert_true(n <= max);
	for (size_t i = 0; i < n; i++)
		out[i] = (unsigned)json_integer_value(
		        json_object_get(json_array_get(arr, i), "h_id"));
	return n;
}

/* ------------------------------------------------------------- tests */

/* An odd (even) dialog of shard 0 whose Call-ID the transport gives to
 * worker 0, where dlg.dlg_list looks for it. */
static unsigned on_worker0(unsigned parity)
{
	for (unsigned i = 1 + parity; i <= NDLG; i += 2) {
		char id[32];
		int n = snprintf(id, sizeof(id), "call-%u@test", i);
		if (hash_bytes(id, (size_t)n) % 2 == 0)
			return i;
	}
	fail_msg("no Call-ID for worker 0");
	return 0;
}

static json_t *dlg_list(const char *method, unsigned h_id)
{
	char params[64];

	snprintf(params, sizeof(params), "[\"call-%u@test\"]", h_id);
	return call(method, params);
}

static void test_context_only_in_ctx_listings(void **state)
{
	unsigned odd = on_worker0(0), even = on_worker0(1);
	json_t *r, *d, *c;
	char tag[32];

	(void)state;
	r = dlg_list("dlg.dlg_list_ctx", odd);
	d = json_array_get(result(r), 0);
	c = json_object_get(d, "context");
	assert_non_null(c);
	assert_string_equal(json_string_value(json_object_get(c, "module")),
	                    "test");
	assert_int_equal(json_integer_value(json_object_get(c, "id")), odd);
	assert_int_equal(json_object_size(c), 2);
	/* dialog variables are listed as Kamailio prints them */
	snprintf(tag, sizeof(tag), "tag%u", odd);
	assert_string_equal(
	        json_string_value(json_object_get(
	                json_array_get(json_object_get(d, "variables"), 0),
	                "n")),
	        tag);
	json_decref(r);

	/* a dialog without the callback: an empty context */
	r = dlg_list("dlg.dlg_list_ctx", even);
	c = json_object_get(json_array_get(result(r), 0), "context");
	assert_non_null(c);
	assert_int_equal(json_object_size(c), 0);
	json_decref(r);

	int before = atomic_load(&T.ctx_calls);
	r = dlg_list("dlg.dlg_list", odd);
	assert_null(json_object_get(json_array_get(result(r), 0), "context"));
	json_decref(r);
	r = call("dlg.list_match", "[\"callid\",\"re\",\"^call-\",5]");
	assert_int_equal(json_array_size(result(r)), 5);
	json_decref(r);
	assert_int_equal(atomic_load(&T.ctx_calls), before);
	r = call("dlg.list_match_ctx", "[\"callid\",\"eq\",\"call-9@test\"]");
	c = json_object_get(json_array_get(result(r), 0), "context");
	assert_int_equal(json_integer_value(json_object_get(c, "id")), 9);
	json_decref(r);
}

static void test_walk_each_dialog_once(void **state)
{
	static unsigned got[NDLG + NDLG1 + 8];
	static bool seen[NDLG + 2];
	json_t *r;
	size_t n;

	(void)state;
	atomic_store(&T.mutate, true);
	r = call("dlg.list_ctx", NULL);
	n = h_ids(result(r), got, sizeof(got) / sizeof(got[0]));
	json_decref(r);
	assert_false(atomic_load(&T.mutate)); /* the change happened */

	/* shard 0 (h_ids 1..NDLG, newest first), then shard 1 */
	assert_int_equal(n, NDLG - 1 + NDLG1);
	for (size_t i = 0; i < NDLG - 1; i++) {
		assert_true(got[i] >= 1 && got[i] <= NDLG);
		assert_false(seen[got[i]]);
		seen[got[i]] = true;
		if (i)
			assert_true(got[i] < got[i - 1]);
	}
	/* the visited one freed later is listed, the unvisited one freed
	 * and the one created after its place was walked are not */
	assert_true(seen[NDLG]);
	assert_false(seen[10]);
	assert_int_equal(got[0], NDLG);
	for (size_t i = 0; i < NDLG1; i++)
		assert_int_equal(got[NDLG - 1 + i], 1000000 + NDLG1 - i);

	/* the table as it is now */
	r = call("dlg.list", NULL);
	n = h_ids(result(r), got, sizeof(got) / sizeof(got[0]));
	json_decref(r);
	assert_int_equal(n, NDLG - 1 + NDLG1);
	assert_int_equal(got[0], NDLG + 1);
	assert_int_equal(got[1], NDLG - 1);
	r = call("dlg.stats_active", NULL);
	assert_int_equal(
	        json_integer_value(json_object_get(result(r), "ongoing")),
	        NDLG - 1 + NDLG1);
	json_decref(r);
}

static void test_paging_across_chunks(void **state)
{
	static unsigned all[NDLG + NDLG1 + 8], page[NDLG];
	json_t *r;
	size_t n, k;

	(void)state;
	r = call("dlg.list", NULL);
	n = h_ids(result(r), all, sizeof(all) / sizeof(all[0]));
	json_decref(r);
	r = call("dlg.list", "[500,300]");
	k = h_ids(result(r), page, NDLG);
	json_decref(r);
	assert_int_equal(k, 300);
	assert_memory_equal(page, all + 500, 300 * sizeof(unsigned));
	/* the last page ends in shard 1 */
	r = call("dlg.list", "{\"offset\":990,\"limit\":100}");
	k = h_ids(result(r), page, NDLG);
	json_decref(r);
	assert_int_equal(k, n - 990);
	assert_memory_equal(page, all + 990, k * sizeof(unsigned));
	r = call("dlg.briefing", "[\"s\"]");
	assert_int_equal(json_array_size(result(r)), n);
	json_decref(r);
	r = call("dlg.list_match", "[\"furi\",\"sw\",\"sip:caller99\"]");
	/* caller99 and caller990..caller999 */
	assert_int_equal(json_array_size(result(r)), 11);
	json_decref(r);
}

/* A callback's value that does not fit in the chunk: the dialog is
 * copied again in the next chunk, in a larger block when it is alone, and
 * its context reaches the reply once. */
static void test_context_larger_than_a_chunk(void **state)
{
	static unsigned got[NDLG + NDLG1 + 8];
	json_t *r, *arr, *c = NULL;
	size_t n, seen = 0;

	(void)state;
	memset(big, 'x', BIG_LEN);
	atomic_store(&T.big_id, 501);
	r = call("dlg.list_ctx", NULL);
	arr = result(r);
	n = h_ids(arr, got, sizeof(got) / sizeof(got[0]));
	assert_int_equal(n, NDLG - 1 + NDLG1);
	for (size_t i = 0; i < n; i++) {
		if (got[i] != 501)
			continue;
		seen++;
		c = json_object_get(json_array_get(arr, i), "context");
	}
	assert_int_equal(seen, 1);
	assert_int_equal(strlen(json_string_value(json_object_get(c, "big"))),
	                 BIG_LEN);
	assert_int_equal(json_integer_value(json_object_get(c, "id")), 501);
	json_decref(r);
	assert_true(atomic_load(&T.big_calls) >= 2);
	atomic_store(&T.big_id, 0);
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
	char err[512], spec[160];

	(void)state;
	signal(SIGPIPE, SIG_IGN);
	dlg_config_defaults(&T.cfg);
	T.cfg.hash_size = 1;
	for (unsigned s = 0; s < 2; s++) {
		T.shard[s].cfg = &T.cfg;
		T.shard[s].shard_id = s;
		T.shard[s].nshards = 2;
		T.shard[s].slots = calloc(1, sizeof(struct dlg *));
		T.shards[s] = &T.shard[s];
		if (T.shard[s].slots == NULL)
			return -1;
	}
	for (unsigned i = 1; i <= NDLG; i++) {
		struct dlg *d = mk(&T.shard[0], i);
		/* every other dialog has a context callback */
		if (i % 2 &&
		    register_dlgcb(d, DLGCB_RPC_CONTEXT, ctx_cb, &T, NULL) != 0)
			return -1;
	}
	for (unsigned i = 1; i <= NDLG1; i++)
		mk(&T.shard[1], 1000000 + i);

	snprintf(T.dir, sizeof(T.dir), "/tmp/test_dlg_rpc.XXXXXX");
	if (mkdtemp(T.dir) == NULL)
		return -1;
	snprintf(T.sock, sizeof(T.sock), "%s/rpc.sock", T.dir);
	if (dlg_register_rpc(T.shards, 2) != 0 ||
	    rt_start(&T.rt, &rc, &app, err, sizeof(err)) != 0) {
		fprintf(stderr, "setup: %s\n", err);
		return -1;
	}
	memset(&mc, 0, sizeof(mc));
	snprintf(spec, sizeof(spec), "unix:%s", T.sock);
	mc.listen[0] = spec;
	mc.nlisten = 1;
	mc.rt = T.rt;
	if (mgmt_start(&T.srv, &mc, err, sizeof(err)) != 0) {
		fprintf(stderr, "mgmt_start: %s\n", err);
		return -1;
	}
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	rt_stop(T.rt);
	rt_wait(T.rt);
	mgmt_stop(T.srv);
	rt_free(T.rt);
	rmdir(T.dir);
	for (unsigned s = 0; s < 2; s++) {
		while (T.shard[s].slots[0])
			rm(&T.shard[s], T.shard[s].slots[0]->h_id);
		free(T.shard[s].slots);
	}
	return 0;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_context_only_in_ctx_listings),
	        cmocka_unit_test(test_walk_each_dialog_once),
	        cmocka_unit_test(test_paging_across_chunks),
	        cmocka_unit_test(test_context_larger_than_a_chunk),
	};

	return cmocka_run_group_tests(tests, setup, teardown);
}
