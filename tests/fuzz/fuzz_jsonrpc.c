/*
 * libFuzzer target for the JSON-RPC layer: arbitrary bytes through
 * jrpc_process(), the function both transports (HTTP and the UNIX socket)
 * hand a request to, on a real server started once (a UNIX socket in a
 * temporary directory, no runtime). Beside the built-ins (system.*,
 * core.*, stats.*), test methods let the request itself drive the handler
 * API, so that the fuzzer reaches all of it:
 *
 *   fuzz.get SPEC P1 P2 ...   reads parameter i (named "p<i>") with the
 *                             getter SPEC's i-th letter names (m_get());
 *                             the result is what each one read
 *   fuzz.build OPS [TEXT]     builds its result with rpc_add_*() as OPS
 *                             says (build_op()): nesting, every scalar,
 *                             invalid UTF-8, misuse, faults, shard calls
 *   fuzz.dlg CALLID FROM_TAG [TO_TAG TIMEOUT FORCE]
 *                             a fixed signature, as a real method has
 *
 * The target reads the request too (jansson, the same flags) and predicts
 * the reply from docs/rpc.md and mgmt.h. Checked with abort():
 *  - every body is JSON (parsed back, duplicate keys refused), one line
 *    unless pretty, its length len;
 *  - a reply object is exactly jsonrpc "2.0", the request's id (null when
 *    the request had none or a bad one) and one of result/error; an error
 *    has an integer code of -32700..-32603, 400, 404 or 500 and a string
 *    message;
 *  - the protocol errors come where the specification puts them; a batch
 *    has one reply per request that is not a notification, in order;
 *    exactly the valid requests run their method, once, in order;
 *  - every getter returns 0, ENOENT or EINVAL as documented, writes its
 *    output only on success, and reads what the request held; the first
 *    fault's code is the reply's; the result equals the one built with
 *    jansson alongside (invalid UTF-8 as U+FFFD, NaN and infinities as
 *    null, {} when nothing was added);
 *  - the HTTP status (200, 204, 400, 404, 413, 500) and the failed flag;
 *  - jrpc_broken(), which the UNIX socket asks at each end of line, never
 *    calls broken a valid text, nor a prefix of one that ends at a
 *    newline.
 *
 * FUZZ_JSONRPC_PRINT=1 in the environment prints each reply, to read what
 * a saved input does.
 */
#include <errno.h>
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <jansson.h>

#include "mgmt/mgmt_int.h"

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Not assert(): the check must survive NDEBUG builds. */
#define CHECK(cond)                                                            \
	do {                                                                   \
		if (!(cond))                                                   \
			abort();                                               \
	} while (0)

/* Smaller than the default, so that the 413 path is reachable. */
#define MAX_REQUEST 8192
/* Nodes fuzz.build keeps open at once; deeper adds go to the last one. */
#define MAX_DEPTH 64
#define MAX_NAMES 512

/* ------------------------------------------------------------ the plan */

/* One request of the input (the input itself, or an element of a batch),
 * with what it should give. */
struct elem {
	json_t *req;    /* borrowed from the target's own parse */
	json_t *params; /* borrowed; NULL: none */
	json_t *id;     /* the id the reply carries; NULL: null */
	bool answered;  /* not a notification */
	int code;       /* protocol error expected; 0: the method runs */
	bool mine;      /* a fuzz.* method runs: what follows is known */
	bool called;
	bool failed; /* the method faulted, first with fcode */
	int fcode;
	char *fmsg;     /* message of that fault when known (malloc'ed) */
	json_t *result; /* result built; NULL: {} */
};

static struct {
	struct elem *e;
	size_t n, next;
} plan;

static struct mgmt *srv;
static char dir[64], sock_spec[96];
static int app_tag;
static json_t *all_names; /* system.listMethods, as registered */
static json_t *empty_object, *empty_array;
static const char sentinel[] = "untouched";
static long long stat_counter;
static bool verbose; /* FUZZ_JSONRPC_PRINT set: print every reply */

/* The parameter as the request gave it: by position or by name, whichever
 * it used; a JSON null counts as absent (docs/rpc.md). */
static json_t *param_of(json_t *params, unsigned index, const char *name)
{
	json_t *v = NULL;

	if (json_is_array(params))
		v = json_array_get(params, index);
	else if (json_is_object(params) && name != NULL)
		v = json_object_get(params, name);
	return json_is_null(v) ? NULL : v;
}

static int cmp_str(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static bool registered(const char *name)
{
	size_t n = json_array_size(all_names);

	for (size_t i = 0; i < n; i++)
		if (strcmp(json_string_value(json_array_get(all_names, i)),
		           name) == 0)
			return true;
	return false;
}

/* What the server must make of one request object (JSON-RPC 2.0 §4, §5). */
static void predict(struct elem *e, json_t *req)
{
	json_t *id, *ver, *meth, *params;
	const char *name;

	memset(e, 0, sizeof(*e));
	e->req = req;
	e->answered = true;
	e->code = RPC_INVALID_REQUEST;
	if (!json_is_object(req))
		return;
	id = json_object_get(req, "id");
	if (id != NULL && !json_is_string(id) && !json_is_number(id) &&
	    !json_is_null(id))
		return;
	e->id = id;
	ver = json_object_get(req, "jsonrpc");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0)
		return;
	meth = json_object_get(req, "method");
	if (!json_is_string(meth))
		return;
	params = json_object_get(req, "params");
	if (params != NULL && !json_is_array(params) && !json_is_object(params))
		return;
	e->params = params;
	e->answered = id != NULL;
	name = json_string_value(meth);
	if (strlen(name) != json_string_length(meth) || !registered(name)) {
		e->code = RPC_METHOD_NOT_FOUND;
		return;
	}
	e->code = 0;
	e->mine = strncmp(name, "fuzz.", 5) == 0;
}

static void plan_free(void)
{
	for (size_t i = 0; i < plan.n; i++) {
		json_decref(plan.e[i].result);
		free(plan.e[i].fmsg);
	}
	free(plan.e);
	memset(&plan, 0, sizeof(plan));
}

/* ------------------------------------------------------ a test method */

/* The request a fuzz.* handler serves: the next one of the plan that runs
 * one (the built-ins between them are not ours to count). */
static struct elem *begin(struct rpc_ctx *ctx)
{
	struct elem *e;
	const char *want;

	while (plan.next < plan.n && !plan.e[plan.next].mine)
		plan.next++;
	CHECK(plan.next < plan.n);
	e = &plan.e[plan.next++];
	CHECK(!e->called);
	e->called = true;
	want = json_string_value(json_object_get(e->req, "method"));
	CHECK(strcmp(rpc_method_name(ctx), want) == 0);
	CHECK(rpc_app(ctx) == &app_tag && rpc_rt(ctx) == NULL);
	CHECK(rpc_workers(ctx) == 0);
	CHECK(!rpc_failed(ctx));
	CHECK(rpc_param_count(ctx) ==
	      (json_is_array(e->params)    ? json_array_size(e->params)
	       : json_is_object(e->params) ? json_object_size(e->params)
	                                   : 0));
	return e;
}

/* The call must fail with code (the first fault wins). */
static void expect_fault(struct elem *e, int code, char *msg)
{
	if (e->failed) {
		free(msg);
		return;
	}
	e->failed = true;
	e->fcode = code;
	e->fmsg = msg;
}

static char *xstrdup(const char *s)
{
	char *d = strdup(s);

	CHECK(d != NULL);
	return d;
}

/* ------------------------------------------------------------- strings */

/* Length of the well-formed UTF-8 sequence at p (n bytes left), 0 when
 * there is none: the table of RFC 3629 §4, byte by byte. */
static size_t wf_len(const unsigned char *p, size_t n)
{
	static const struct {
		unsigned char lead_lo, lead_hi, next_lo, next_hi, len;
	} t[] = {
	        {0x00, 0x7f, 0, 0, 1},       {0xc2, 0xdf, 0x80, 0xbf, 2},
	        {0xe0, 0xe0, 0xa0, 0xbf, 3}, {0xe1, 0xec, 0x80, 0xbf, 3},
	        {0xed, 0xed, 0x80, 0x9f, 3}, {0xee, 0xef, 0x80, 0xbf, 3},
	        {0xf0, 0xf0, 0x90, 0xbf, 4}, {0xf1, 0xf3, 0x80, 0xbf, 4},
	        {0xf4, 0xf4, 0x80, 0x8f, 4},
	};

	for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
		if (p[0] < t[i].lead_lo || p[0] > t[i].lead_hi)
			continue;
		if (t[i].len > n)
			return 0;
		if (t[i].len > 1 &&
		    (p[1] < t[i].next_lo || p[1] > t[i].next_hi))
			return 0;
		for (size_t k = 2; k < t[i].len; k++)
			if (p[k] < 0x80 || p[k] > 0xbf)
				return 0;
		return t[i].len;
	}
	return 0;
}

/* The JSON string a builder must make of p[0..len): a byte that starts no
 * well-formed sequence becomes U+FFFD, the rest is kept (NUL included). */
static json_t *want_string(const char *p, size_t len)
{
	char *o = malloc(len * 3 + 1);
	size_t olen = 0;
	json_t *s;

	CHECK(o != NULL);
	for (size_t i = 0; i < len;) {
		size_t k = wf_len((const unsigned char *)p + i, len - i);

		if (k == 0) {
			memcpy(o + olen, "\xef\xbf\xbd", 3);
			olen += 3;
			i++;
		} else {
			memcpy(o + olen, p + i, k);
			olen += k;
			i += k;
		}
	}
	s = json_stringn(o, olen);
	CHECK(s != NULL);
	free(o);
	return s;
}

static bool utf8_ok(const char *s)
{
	size_t len = strlen(s);

	for (size_t i = 0, k; i < len; i += k)
		if ((k = wf_len((const unsigned char *)s + i, len - i)) == 0)
			return false;
	return true;
}

/* ------------------------------------------------------------- getters */

enum gkind { G_STR, G_INT, G_BOOL };

struct gout {
	const char *s;
	long long i;
	bool b;
};

/* "-?[0-9]+" within long long, computed without strtoll. */
static bool decimal(const char *s, long long *out)
{
	bool neg = *s == '-';
	unsigned long long v = 0, lim;

	s += neg;
	if (*s == '\0')
		return false;
	lim = neg ? (unsigned long long)LLONG_MAX + 1 : LLONG_MAX;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		if (v > (lim - (unsigned)(*s - '0')) / 10)
			return false;
		v = v * 10 + (unsigned)(*s - '0');
	}
	if (neg)
		*out = v == (unsigned long long)LLONG_MAX + 1 ? LLONG_MIN
		                                              : -(long long)v;
	else
		*out = (long long)v;
	return true;
}

/* What a getter of kind k must give for the present parameter v: 0 with
 * *w filled (buf holds a made string), or EINVAL. */
static int want_value(enum gkind k, json_t *v, char *buf, size_t size,
                      struct gout *w)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	switch (k) {
	case G_STR:
		if (json_is_string(v)) {
			w->s = json_string_value(v);
			return strlen(w->s) == json_string_length(v) ? 0
			                                             : EINVAL;
		}
		if (json_is_integer(v)) {
			snprintf(buf, size, "%lld",
			         (long long)json_integer_value(v));
			w->s = buf;
			return 0;
		}
		if (json_is_real(v)) {
			snprintf(buf, size, "%.17g", json_real_value(v));
			w->s = buf;
			return 0;
		}
		return EINVAL;
	case G_INT:
		if (json_is_integer(v)) {
			w->i = json_integer_value(v);
			return 0;
		}
		if (json_is_real(v)) {
			/* an integral double, as from a client with no
			 * integers */
			double d = json_real_value(v);

			if (d == floor(d) && fabs(d) <= 9.2e18) {
				w->i = (long long)d;
				return 0;
			}
			return EINVAL;
		}
		if (json_is_string(v) && decimal(json_string_value(v), &w->i))
			return 0;
		return EINVAL;
	case G_BOOL:
		if (json_is_boolean(v)) {
			w->b = json_is_true(v);
			return 0;
		}
		if (json_is_integer(v) && (json_integer_value(v) == 0 ||
		                           json_integer_value(v) == 1)) {
			w->b = json_integer_value(v) == 1;
			return 0;
		}
		if (json_is_string(v)) {
			for (size_t i = 0; i < 4; i++) {
				if (strcasecmp(json_string_value(v), yes[i]) ==
				    0) {
					w->b = true;
					return 0;
				}
				if (strcasecmp(json_string_value(v), no[i]) ==
				    0) {
					w->b = false;
					return 0;
				}
			}
		}
		return EINVAL;
	}
	return EINVAL;
}

/*
 * Calls the getter of kind k (optional or not) for parameter index/name,
 * checks it against the request and returns whether it read a value into
 * *out (false: absent optional, or failed with the fault expected).
 */
static bool get(struct rpc_ctx *ctx, struct elem *e, enum gkind k, bool opt,
                unsigned index, const char *name, struct gout *out)
{
	json_t *v = param_of(e->params, index, name);
	struct gout w = {0};
	char buf[32];
	int r = 0, want;

	/* written only on success: anything else must stay */
	out->s = sentinel;
	out->i = 0x5a5a5a5a5a5aLL + index;
	out->b = index & 1;
	switch (k) {
	case G_STR:
		r = opt ? rpc_param_opt_str(ctx, index, name, &out->s)
		        : rpc_param_str(ctx, index, name, &out->s);
		break;
	case G_INT:
		r = opt ? rpc_param_opt_int(ctx, index, name, &out->i)
		        : rpc_param_int(ctx, index, name, &out->i);
		break;
	case G_BOOL:
		r = opt ? rpc_param_opt_bool(ctx, index, name, &out->b)
		        : rpc_param_bool(ctx, index, name, &out->b);
		break;
	}
	CHECK(rpc_param_has(ctx, index, name) == (v != NULL));
	if (v == NULL) {
		if (opt) {
			CHECK(r == 0 && out->s == sentinel &&
			      out->i == 0x5a5a5a5a5a5aLL + index &&
			      out->b == (index & 1));
			return false;
		}
		CHECK(r == ENOENT);
		/* a name is what an object of parameters needs */
		expect_fault(e,
		             json_is_object(e->params) && name == NULL
		                     ? RPC_INVALID_PARAMS
		                     : 400,
		             NULL);
		CHECK(rpc_failed(ctx));
		return false;
	}
	want = want_value(k, v, buf, sizeof(buf), &w);
	CHECK(r == want);
	if (r != 0) {
		CHECK(out->s == sentinel &&
		      out->i == 0x5a5a5a5a5a5aLL + index &&
		      out->b == (index & 1));
		expect_fault(e, RPC_INVALID_PARAMS, NULL);
		CHECK(rpc_failed(ctx));
		return false;
	}
	switch (k) {
	case G_STR:
		CHECK(out->s != NULL && strcmp(out->s, w.s) == 0);
		break;
	case G_INT:
		CHECK(out->i == w.i);
		break;
	case G_BOOL:
		CHECK(out->b == w.b);
		break;
	}
	return true;
}

/* ------------------------------------------------------------- results */

/* The result being built, and the same built with jansson alongside. */
struct builder {
	struct rpc_ctx *ctx;
	struct elem *e;
	json_t *want; /* the expected result; NULL: none yet */
	struct {
		struct rpc_node *node;
		json_t *want; /* borrowed from want */
	} stack[MAX_DEPTH];
	unsigned depth;
	unsigned nkeys, nops;
};

/*
 * Adds (in the model) v, a new reference, where the next rpc_add_*() puts
 * it (mgmt.h, "result"): returns v (borrowed) when the add must succeed,
 * NULL when it must be a no-op (failed before) or a misuse (-32603).
 */
static json_t *model_add(struct builder *b, const char *key, json_t *v)
{
	json_t *p = b->depth ? b->stack[b->depth - 1].want : NULL;

	CHECK(v != NULL);
	if (b->e->failed) {
		json_decref(v);
		return NULL;
	}
	if (p == NULL) {
		if (b->want == NULL && key == NULL) {
			b->want = v;
			return v;
		}
		if (b->want == NULL)
			b->want = json_object();
		p = b->want;
	}
	if (json_is_object(p) && key != NULL && utf8_ok(key)) {
		CHECK(json_object_set_new(p, key, v) == 0);
		return v;
	}
	if (json_is_array(p) && key == NULL) {
		CHECK(json_array_append_new(p, v) == 0);
		return v;
	}
	json_decref(v);
	expect_fault(b->e, RPC_INTERNAL_ERROR, NULL);
	return NULL;
}

/* The key the next add takes: one when the parent wants one, unless flip
 * (a misuse). Keys are never reused: replacing a member would free a node
 * the handler may still hold. */
static const char *next_key(struct builder *b, bool flip, bool bad, char *buf,
                            size_t size)
{
	json_t *p = b->depth ? b->stack[b->depth - 1].want : b->want;
	bool keyed = json_is_object(p) != flip;

	if (!keyed)
		return NULL;
	snprintf(buf, size, "%sk%u", bad ? "\xff" : "", b->nkeys++);
	return buf;
}

static struct rpc_node *parent(const struct builder *b)
{
	return b->depth ? b->stack[b->depth - 1].node : NULL;
}

static void never(struct worker *w, void *arg)
{
	(void)w;
	(void)arg;
	abort();
}

static const char *const bad_utf8[] = {
        "\xff",         "\xc0\xaf",
        "\xed\xa0\x80", "\xf4\x90\x80\x80",
        "\xe2\x82",     "\x80",
        "\xc3\x28",     "\xf8\x88\x80\x80",
        "\xef\xbf\xbd", "\xf0\x9f\x98\x80",
        "\xe0\x80\x80", "\xc2",
};

/*
 * One operation of fuzz.build:
 *   { [       add an object, an array, and go into it
 *   } ]       go back up
 *   s x n S   add TEXT, TEXT with a (mostly) invalid UTF-8 tail, a string
 *             with NUL and a bad byte (rpc_add_strn), null (rpc_add_str)
 *   f         add a formatted string
 *   i d b z   add an integer, a double (NaN and infinities too), a
 *             boolean, null
 *   !         the next add gets a key where none belongs, or none where
 *             one does (a misuse)
 *   u         the next key is not UTF-8 (a misuse)
 *   E e P Q   fault 500, 404, -32602, 400
 *   p         rpc_printf outside a page (a misuse)
 *   # @       rpc_for_each_shard, rpc_on_shard: fail without a runtime
 * Anything else is skipped.
 */
static void build_op(struct builder *b, char op, const char *text, bool *flip,
                     bool *bad)
{
	static const long long ints[] = {
	        0, -1, 1, LLONG_MIN, LLONG_MAX, (1LL << 53) + 1, -1000000007};
	static const double dbls[] = {
	        0.5,     -0.0,        1e308,    DBL_MIN,   4.9e-324,
	        DBL_MAX, (double)NAN, INFINITY, -INFINITY, 0.1,
	        1e16,    -123456.789, 3.0,      1.0 / 3.0,
	};
	struct rpc_ctx *ctx = b->ctx;
	unsigned n = b->nops++;
	char kbuf[32], buf[512];
	const char *key = NULL;
	json_t *w;

	if (strchr("{[sxnSfidbz", op) != NULL) {
		key = next_key(b, *flip, *bad, kbuf, sizeof(kbuf));
		*flip = *bad = false;
	}
	switch (op) {
	case '{':
	case '[': {
		struct rpc_node *node;

		w = model_add(b, key, op == '{' ? json_object() : json_array());
		node = op == '{' ? rpc_add_object(ctx, parent(b), key)
		                 : rpc_add_array(ctx, parent(b), key);
		CHECK((node != NULL) == (w != NULL));
		if (node != NULL && b->depth < MAX_DEPTH) {
			b->stack[b->depth].node = node;
			b->stack[b->depth].want = w;
			b->depth++;
		}
		break;
	}
	case '}':
	case ']':
		if (b->depth > 0)
			b->depth--;
		break;
	case 's':
		model_add(b, key, want_string(text, strlen(text)));
		rpc_add_str(ctx, parent(b), key, text);
		break;
	case 'x': {
		const char *tail =
		        bad_utf8[n % (sizeof(bad_utf8) / sizeof(bad_utf8[0]))];
		int len = snprintf(buf, sizeof(buf), "%.64s%s", text, tail);

		model_add(b, key, want_string(buf, (size_t)len));
		if (n % 3 == 0)
			rpc_add_str(ctx, parent(b), key, buf);
		else if (n % 3 == 1)
			rpc_add_strn(ctx, parent(b), key, buf, (size_t)len);
		else
			rpc_add_strf(ctx, parent(b), key, "%s", buf);
		break;
	}
	case 'n':
		model_add(b, key, want_string("a\0b\xff", 4));
		rpc_add_strn(ctx, parent(b), key, "a\0b\xff", 4);
		break;
	case 'S':
		model_add(b, key, json_null());
		rpc_add_str(ctx, parent(b), key, NULL);
		break;
	case 'f': {
		int len = snprintf(buf, sizeof(buf), "%.100s|%u|%.3f|%lld",
		                   text, n, 1.5, LLONG_MIN);

		model_add(b, key, want_string(buf, (size_t)len));
		rpc_add_strf(ctx, parent(b), key, "%.100s|%u|%.3f|%lld", text,
		             n, 1.5, LLONG_MIN);
		break;
	}
	case 'i': {
		long long v = ints[n % (sizeof(ints) / sizeof(ints[0]))];

		model_add(b, key, json_integer(v));
		rpc_add_int(ctx, parent(b), key, v);
		break;
	}
	case 'd': {
		double v = dbls[n % (sizeof(dbls) / sizeof(dbls[0]))];

		/* JSON has neither NaN nor infinities */
		model_add(b, key, isfinite(v) ? json_real(v) : json_null());
		rpc_add_double(ctx, parent(b), key, v);
		break;
	}
	case 'b':
		model_add(b, key, json_boolean(n & 1));
		rpc_add_bool(ctx, parent(b), key, n & 1);
		break;
	case 'z':
		model_add(b, key, json_null());
		rpc_add_null(ctx, parent(b), key);
		break;
	case '!':
		*flip = true;
		break;
	case 'u':
		*bad = true;
		break;
	case 'E':
		snprintf(buf, sizeof(buf), "fuzz %.200s", text);
		expect_fault(b->e, 500, xstrdup(buf));
		rpc_fault(ctx, 500, "fuzz %.200s", text);
		break;
	case 'e':
		expect_fault(b->e, 404, xstrdup("Dialog not found"));
		rpc_fault(ctx, 404, "Dialog not found");
		break;
	case 'P':
		expect_fault(b->e, RPC_INVALID_PARAMS, NULL);
		rpc_fault(ctx, RPC_INVALID_PARAMS, "Invalid params: %u", n);
		break;
	case 'Q':
		expect_fault(b->e, 400, NULL);
		rpc_fault(ctx, 400, "Bad value %d", -1);
		break;
	case 'p':
		expect_fault(b->e, RPC_INTERNAL_ERROR, NULL);
		rpc_printf(ctx, "%s", text);
		break;
	case '#':
		expect_fault(b->e, 500, NULL);
		CHECK(rpc_for_each_shard(ctx, never, NULL) == ESRCH);
		break;
	case '@':
		expect_fault(b->e, 500, NULL);
		CHECK(rpc_on_shard(ctx, n, never, NULL) == ESRCH);
		break;
	default:
		break;
	}
	CHECK(rpc_failed(ctx) == b->e->failed);
}

/* fuzz.build OPS [TEXT] */
static void m_build(struct rpc_ctx *ctx)
{
	struct elem *e = begin(ctx);
	struct builder b = {.ctx = ctx, .e = e};
	struct gout ops, text;
	bool flip = false, bad = false;

	if (!get(ctx, e, G_STR, false, 0, "ops", &ops))
		return;
	if (!get(ctx, e, G_STR, true, 1, "text", &text) && e->failed)
		return;
	if (text.s == sentinel)
		text.s = "text";
	for (const char *o = ops.s; *o; o++)
		build_op(&b, *o, text.s, &flip, &bad);
	e->result = b.want;
}

/*
 * fuzz.get SPEC P1 P2 ...: SPEC's letters, each for the next parameter
 * (index i, name "p<i>"): s i b the required getters, S I B the optional
 * ones, h rpc_param_has; a '_' before a letter reads it by position only
 * (no name). The result is an array of what each read (null: absent).
 */
static void m_get(struct rpc_ctx *ctx)
{
	struct elem *e = begin(ctx);
	struct builder b = {.ctx = ctx, .e = e};
	struct rpc_node *a;
	struct gout spec, out;
	unsigned index = 1;
	bool positional = false;

	if (!get(ctx, e, G_STR, false, 0, "spec", &spec))
		return;
	a = rpc_add_array(ctx, NULL, NULL);
	CHECK(a != NULL);
	b.want = json_array();
	for (const char *s = spec.s; *s && index < 64; s++) {
		char name[16];
		const char *nm = NULL;
		enum gkind k;
		bool opt = *s >= 'A' && *s <= 'Z';

		if (*s == '_') {
			positional = true;
			continue;
		}
		if (!positional) {
			snprintf(name, sizeof(name), "p%u", index);
			nm = name;
		}
		positional = false;
		switch (*s) {
		case 'h': {
			bool has = rpc_param_has(ctx, index, nm);

			CHECK(has == (param_of(e->params, index, nm) != NULL));
			index++;
			if (!e->failed)
				CHECK(json_array_append_new(
				              b.want, json_boolean(has)) == 0);
			rpc_add_bool(ctx, a, NULL, has);
			continue;
		}
		case 's':
		case 'S':
			k = G_STR;
			break;
		case 'i':
		case 'I':
			k = G_INT;
			break;
		case 'b':
		case 'B':
			k = G_BOOL;
			break;
		default:
			continue;
		}
		if (!get(ctx, e, k, opt, index++, nm, &out)) {
			if (!e->failed)
				CHECK(json_array_append_new(b.want,
				                            json_null()) == 0);
			rpc_add_null(ctx, a, NULL);
			continue;
		}
		if (e->failed) {
			/* after a fault adds are no-ops; keep reading */
			rpc_add_int(ctx, a, NULL, 1);
			continue;
		}
		if (k == G_STR) {
			CHECK(json_array_append_new(
			              b.want,
			              want_string(out.s, strlen(out.s))) == 0);
			rpc_add_str(ctx, a, NULL, out.s);
		} else if (k == G_INT) {
			CHECK(json_array_append_new(b.want,
			                            json_integer(out.i)) == 0);
			rpc_add_int(ctx, a, NULL, out.i);
		} else {
			CHECK(json_array_append_new(b.want,
			                            json_boolean(out.b)) == 0);
			rpc_add_bool(ctx, a, NULL, out.b);
		}
		CHECK(!rpc_failed(ctx));
	}
	e->result = b.want;
}

/* fuzz.dlg CALLID FROM_TAG [TO_TAG TIMEOUT FORCE]: the shape of a real
 * method, with the refusals a handler makes itself. */
static void m_dlg(struct rpc_ctx *ctx)
{
	struct elem *e = begin(ctx);
	struct gout callid, ftag, ttag, timeout, force;
	struct rpc_node *o;
	json_t *w;

	bool ok;

	/* both read: the first fault wins */
	ok = get(ctx, e, G_STR, false, 0, "callid", &callid);
	if (!get(ctx, e, G_STR, false, 1, "from_tag", &ftag) || !ok)
		return;
	get(ctx, e, G_STR, true, 2, "to_tag", &ttag);
	if (!get(ctx, e, G_INT, true, 3, "timeout", &timeout))
		timeout.i = 0;
	if (!get(ctx, e, G_BOOL, true, 4, "force", &force))
		force.b = false;
	if (e->failed)
		return;
	if (timeout.i < 0) {
		expect_fault(e, 400, xstrdup("Bad timeout"));
		rpc_fault(ctx, 400, "Bad timeout");
		return;
	}
	if (strcmp(callid.s, "gone") == 0) {
		expect_fault(e, 404, xstrdup("Dialog not found"));
		rpc_fault(ctx, 404, "Dialog not found");
		return;
	}
	o = rpc_add_object(ctx, NULL, NULL);
	rpc_add_str(ctx, o, "callid", callid.s);
	rpc_add_str(ctx, o, "from_tag", ftag.s);
	rpc_add_str(ctx, o, "to_tag", ttag.s == sentinel ? NULL : ttag.s);
	rpc_add_int(ctx, o, "timeout", timeout.i);
	rpc_add_double(ctx, o, "minutes", (double)timeout.i / 60.0);
	rpc_add_bool(ctx, o, "force", force.b);
	w = json_object();
	CHECK(w != NULL);
	json_object_set_new(w, "callid",
	                    want_string(callid.s, strlen(callid.s)));
	json_object_set_new(w, "from_tag", want_string(ftag.s, strlen(ftag.s)));
	json_object_set_new(w, "to_tag",
	                    ttag.s == sentinel
	                            ? json_null()
	                            : want_string(ttag.s, strlen(ttag.s)));
	json_object_set_new(w, "timeout", json_integer(timeout.i));
	json_object_set_new(w, "minutes", json_real((double)timeout.i / 60.0));
	json_object_set_new(w, "force", json_boolean(force.b));
	CHECK(!rpc_failed(ctx));
	e->result = w;
}

static const struct rpc_method methods[] = {
        {"fuzz.get", m_get, "Reads its parameters as SPEC says"},
        {"fuzz.build", m_build, "Builds its result as OPS says"},
        {"fuzz.dlg", m_dlg, "CALLID FROM_TAG [TO_TAG TIMEOUT FORCE]"},
};

/* A statistics group of process values, so that stats.* answer without a
 * runtime. */
static const struct stat_def fuzz_defs[] = {
        {"requests", STAT_COUNTER, STAT_PROCESS, "Inputs run"},
        {"level", STAT_GAUGE, STAT_PROCESS, "A gauge"},
};

static void fuzz_read(struct rt *rt, int64_t *v, void *arg)
{
	(void)rt;
	(void)arg;
	v[0] = stat_counter;
	v[1] = -3;
}

static const struct stat_group fuzz_group = {
        "fuzz", fuzz_defs, 2, NULL, fuzz_read, NULL,
};

/* ------------------------------------------------------------- replies */

static bool code_allowed(long long code)
{
	switch (code) {
	case RPC_PARSE_ERROR:
	case RPC_INVALID_REQUEST:
	case RPC_METHOD_NOT_FOUND:
	case RPC_INVALID_PARAMS:
	case RPC_INTERNAL_ERROR:
	case 400:
	case 404:
	case 500:
		return true;
	default:
		return false;
	}
}

/* The HTTP status of a single reply with this error (docs/rpc.md). */
static int status_of(int code)
{
	if (code >= 100 && code <= 599)
		return code;
	if (code == RPC_METHOD_NOT_FOUND)
		return 404;
	if (code == RPC_INTERNAL_ERROR)
		return 500;
	return 400;
}

/* What the built-ins must answer, where it is known. */
static void check_builtin(const struct elem *e, json_t *res)
{
	const char *name = json_string_value(json_object_get(e->req, "method"));

	if (strcmp(name, "core.echo") == 0) {
		CHECK(json_equal(res, e->params ? e->params : empty_array));
	} else if (strcmp(name, "system.listMethods") == 0) {
		CHECK(json_equal(res, all_names));
	} else if (strcmp(name, "system.methodHelp") == 0) {
		json_t *v = param_of(e->params, 0, "method");

		CHECK(json_is_string(res));
		for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]);
		     i++)
			if (json_is_string(v) &&
			    strcmp(json_string_value(v), methods[i].name) == 0)
				CHECK(strcmp(json_string_value(res),
				             methods[i].help) == 0);
	} else if (strcmp(name, "core.version") == 0) {
		CHECK(json_is_string(res) &&
		      strncmp(json_string_value(res), "imsdlgd ", 8) == 0);
	} else if (strcmp(name, "core.uptime") == 0) {
		CHECK(json_is_string(json_object_get(res, "now")));
		CHECK(json_is_integer(json_object_get(res, "uptime")));
		CHECK(json_integer_value(json_object_get(res, "uptime")) >= 0);
	} else if (strcmp(name, "core.info") == 0) {
		json_t *rpc = json_object_get(res, "rpc");

		CHECK(json_integer_value(json_object_get(res, "pid")) ==
		      getpid());
		CHECK(json_equal(json_object_get(res, "listeners"),
		                 empty_array));
		CHECK(json_array_size(rpc) == 1 &&
		      strcmp(json_string_value(json_array_get(rpc, 0)),
		             sock_spec) == 0);
	}
}

/* One reply object against its request; returns its error code, 0 for a
 * result. */
static int check_reply(json_t *r, const struct elem *e)
{
	json_t *id, *res, *err, *code, *msg;
	const char *k;
	json_t *v;

	CHECK(json_is_object(r) && json_object_size(r) == 3);
	CHECK(json_is_string(json_object_get(r, "jsonrpc")) &&
	      strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") ==
	              0);
	id = json_object_get(r, "id");
	CHECK(id != NULL);
	CHECK(e->id ? json_equal(id, e->id) : json_is_null(id));
	res = json_object_get(r, "result");
	err = json_object_get(r, "error");
	CHECK((res != NULL) != (err != NULL));
	if (err != NULL) {
		code = json_object_get(err, "code");
		msg = json_object_get(err, "message");
		CHECK(json_is_integer(code) && json_is_string(msg));
		json_object_foreach(err, k, v)
		{
			CHECK(strcmp(k, "code") == 0 ||
			      strcmp(k, "message") == 0 ||
			      strcmp(k, "data") == 0);
		}
		CHECK(code_allowed(json_integer_value(code)));
	}

	if (e->code != 0) {
		CHECK(err != NULL && json_integer_value(code) == e->code);
	} else if (e->mine) {
		CHECK(e->called);
		if (e->failed) {
			CHECK(err != NULL &&
			      json_integer_value(code) == e->fcode);
			CHECK(e->fmsg == NULL ||
			      strcmp(json_string_value(msg), e->fmsg) == 0);
		} else {
			CHECK(res != NULL);
			CHECK(json_equal(res,
			                 e->result ? e->result : empty_object));
		}
	} else if (res != NULL) {
		check_builtin(e, res);
	}
	return err ? (int)json_integer_value(code) : 0;
}

/* The body is JSON, on one line unless pretty. */
static json_t *body_json(const struct jrpc_reply *out, bool pretty)
{
	json_error_t jerr;
	json_t *v;

	CHECK(out->body != NULL && out->len == strlen(out->body));
	if (!pretty)
		CHECK(memchr(out->body, '\n', out->len) == NULL);
	v = json_loadb(out->body, out->len,
	               JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
	if (v == NULL) {
		fprintf(stderr, "reply is not JSON (%s): %s\n", jerr.text,
		        out->body);
		abort();
	}
	return v;
}

/* A reply of one error with id null, for the whole input. */
static void check_whole_error(const struct jrpc_reply *out, bool pretty,
                              int status, int code)
{
	struct elem e = {.answered = true, .code = code};
	json_t *v = body_json(out, pretty);

	CHECK(out->status == status && out->failed);
	check_reply(v, &e);
	json_decref(v);
}

/* The reply to an input of size bytes that the target read as req (NULL:
 * too large, or not JSON). */
static void check(size_t size, json_t *req, bool pretty,
                  const struct jrpc_reply *out)
{
	json_t *v;
	size_t answered = 0, k = 0;

	if (size > MAX_REQUEST) {
		check_whole_error(out, pretty, 413, RPC_INVALID_REQUEST);
		return;
	}
	if (req == NULL) {
		check_whole_error(out, pretty, 400, RPC_PARSE_ERROR);
		return;
	}
	if (json_is_array(req) && json_array_size(req) == 0) {
		check_whole_error(out, pretty, 400, RPC_INVALID_REQUEST);
		return;
	}
	/* the plan was made before the call (the handlers follow it) */
	for (size_t i = 0; i < plan.n; i++) {
		CHECK(plan.e[i].called == plan.e[i].mine);
		answered += plan.e[i].answered;
	}
	if (answered == 0) {
		/* notifications only (the failed flag means nothing then) */
		CHECK(out->body == NULL && out->len == 0 && out->status == 204);
		return;
	}
	v = body_json(out, pretty);
	if (!json_is_array(req)) {
		int code = check_reply(v, &plan.e[0]);

		CHECK(out->status == (code ? status_of(code) : 200));
		CHECK(out->failed == (code != 0));
	} else {
		CHECK(json_is_array(v) && json_array_size(v) == answered);
		for (size_t i = 0; i < plan.n; i++)
			if (plan.e[i].answered)
				check_reply(json_array_get(v, k++), &plan.e[i]);
		CHECK(out->status == 200 && !out->failed);
	}
	json_decref(v);
}

/* The UNIX socket answers a request at an end of line when jrpc_broken()
 * says nothing can complete it: then the whole input cannot be valid
 * (a newline ends any token, so what follows cannot mend it). A few
 * lines are enough; each costs a parse. */
static void check_broken(const char *in, size_t size, json_t *req)
{
	unsigned lines = 0;

	if (size > MAX_REQUEST)
		return;
	for (size_t i = 0; i < size && lines < 4; i++) {
		if (in[i] != '\n')
			continue;
		lines++;
		if (jrpc_broken(in, i + 1))
			CHECK(req == NULL);
	}
	if (req != NULL)
		CHECK(!jrpc_broken(in, size));
}

/* --------------------------------------------------------------- setup */

static void stop(void)
{
	mgmt_stop(srv);
	rmdir(dir);
	json_decref(all_names);
	json_decref(empty_object);
	json_decref(empty_array);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	static const char *names[MAX_NAMES];
	struct mgmt_config mc;
	char err[512];
	size_t n;

	(void)argc;
	(void)argv;
	/* misuse is logged as a bug: here it is on purpose */
	log_set_level(LL_ALERT - 1);
	verbose = getenv("FUZZ_JSONRPC_PRINT") != NULL;
	CHECK(rpc_register(methods, sizeof(methods) / sizeof(methods[0])) == 0);
	CHECK(stats_register(&fuzz_group) == 0);

	snprintf(dir, sizeof(dir), "/tmp/fuzz_jsonrpc.XXXXXX");
	CHECK(mkdtemp(dir) != NULL);
	snprintf(sock_spec, sizeof(sock_spec), "unix:%s/rpc.sock", dir);
	memset(&mc, 0, sizeof(mc));
	mc.listen[0] = sock_spec;
	mc.nlisten = 1;
	mc.app = &app_tag;
	mc.max_request = MAX_REQUEST;
	if (mgmt_start(&srv, &mc, err, sizeof(err)) != 0) {
		fprintf(stderr, "mgmt_start: %s\n", err);
		abort();
	}
	atexit(stop);

	/* the methods as registered: ours and the built-ins */
	n = rpc_method_names(names, MAX_NAMES);
	CHECK(n < MAX_NAMES);
	qsort(names, n, sizeof(names[0]), cmp_str);
	all_names = json_array();
	for (size_t i = 0; i < n; i++)
		CHECK(json_array_append_new(all_names, json_string(names[i])) ==
		      0);
	CHECK(registered("fuzz.get") && registered("system.listMethods") &&
	      registered("system.methodHelp") && registered("core.echo") &&
	      registered("core.info") && registered("stats.fetch"));
	empty_object = json_object();
	empty_array = json_array();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so that ASan sees any read past the end. */
	char *in = malloc(size ? size : 1);
	bool pretty = size & 1;
	struct jrpc_reply out;
	json_error_t jerr;
	json_t *req = NULL;

	CHECK(in != NULL);
	if (size)
		memcpy(in, data, size);
	stat_counter++;

	/* The plan: what each request should do, before the call. */
	if (size <= MAX_REQUEST)
		req = json_loadb(in, size, JSON_DECODE_ANY, &jerr);
	if (json_is_array(req)) {
		plan.n = json_array_size(req);
		plan.e = calloc(plan.n ? plan.n : 1, sizeof(*plan.e));
		CHECK(plan.e != NULL);
		for (size_t i = 0; i < plan.n; i++)
			predict(&plan.e[i], json_array_get(req, i));
	} else if (req != NULL) {
		plan.n = 1;
		plan.e = calloc(1, sizeof(*plan.e));
		CHECK(plan.e != NULL);
		predict(&plan.e[0], req);
	}

	jrpc_process(srv, in, size, pretty, &out);
	if (verbose)
		fprintf(stderr, "status %d%s: %s\n", out.status,
		        out.failed ? " failed" : "",
		        out.body ? out.body : "(no body)");
	check(size, req, pretty, &out);
	check_broken(in, size, req);

	free(out.body);
	plan_free();
	json_decref(req);
	free(in);
	return 0;
}
