/*
 * JSON-RPC 2.0 (https://www.jsonrpc.org/specification): requests, batches
 * and notifications in, replies out, and the struct rpc_ctx that lets a
 * handler read parameters and build its result without seeing JSON.
 *
 * Errors follow the specification for what is wrong with the request
 * (-32700 .. -32603) and Kamailio's jsonrpcs for what a method reports:
 * rpc_fault(ctx, 404, "Dialog not found") gives
 *   {"jsonrpc":"2.0","error":{"code":404,"message":"Dialog not found"},"id":1}
 * and, over HTTP, status 404 as jsonrpcs answers through xhttp.
 */
#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>

#include "mgmt/mgmt_int.h"

struct rpc_ctx {
	struct mgmt *m;
	const char *method;
	json_t *params;  /* borrowed from the request: array, object or NULL */
	json_t *result;  /* owned; NULL until the first add */
	json_t *scratch; /* owned: rpc_scratch_array() */
	bool failed;
	int code;
	char *message; /* malloc'ed; NULL when out of memory */
	/* strings made for the handler (integers read as strings) */
	char **tmp;
	size_t ntmp;
	/* a page: its body instead of a JSON result */
	bool page;
	char *text;
	size_t tlen, tcap;
};

/* -------------------------------------------------------------- strings */

/* Length of the valid UTF-8 sequence at p (n bytes left), 0 if invalid
 * (RFC 3629: no overlongs, no surrogates, nothing above U+10FFFF). */
static size_t utf8_len(const unsigned char *p, size_t n)
{
	size_t len;
	unsigned cp;

	if (p[0] < 0x80)
		return 1;
	if (p[0] >= 0xc2 && p[0] <= 0xdf)
		len = 2, cp = p[0] & 0x1f;
	else if (p[0] >= 0xe0 && p[0] <= 0xef)
		len = 3, cp = p[0] & 0x0f;
	else if (p[0] >= 0xf0 && p[0] <= 0xf4)
		len = 4, cp = p[0] & 0x07;
	else
		return 0;
	if (len > n)
		return 0;
	for (size_t i = 1; i < len; i++) {
		if ((p[i] & 0xc0) != 0x80)
			return 0;
		cp = (cp << 6) | (p[i] & 0x3f);
	}
	if ((len == 3 && (cp < 0x800 || (cp >= 0xd800 && cp <= 0xdfff))) ||
	    (len == 4 && (cp < 0x10000 || cp > 0x10ffff)))
		return 0;
	return len;
}

/* A JSON string of p[0..len); bytes that are not UTF-8 (SIP headers may
 * carry anything) become U+FFFD rather than failing the whole reply. */
static json_t *make_string(const char *p, size_t len)
{
	json_t *s = json_stringn(p, len);
	char *clean, *o;

	if (s != NULL || len > SIZE_MAX / 3)
		return s;
	clean = malloc(len * 3 + 1);
	if (clean == NULL)
		return NULL;
	o = clean;
	for (size_t i = 0; i < len;) {
		size_t n = utf8_len((const unsigned char *)p + i, len - i);

		if (n == 0) {
			memcpy(o, "\xef\xbf\xbd", 3);
			o += 3;
			i++;
		} else {
			memcpy(o, p + i, n);
			o += n;
			i += n;
		}
	}
	s = json_stringn(clean, (size_t)(o - clean));
	free(clean);
	return s;
}

static char *vformat(const char *fmt, va_list ap)
        __attribute__((format(printf, 1, 0)));

static char *vformat(const char *fmt, va_list ap)
{
	va_list aq;
	int n;
	char *s;

	va_copy(aq, ap);
	n = vsnprintf(NULL, 0, fmt, aq);
	va_end(aq);
	if (n < 0)
		return NULL;
	s = malloc((size_t)n + 1);
	if (s != NULL)
		vsnprintf(s, (size_t)n + 1, fmt, ap);
	return s;
}

/* --------------------------------------------------------------- faults */

static void vfault(struct rpc_ctx *ctx, int code, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

static void vfault(struct rpc_ctx *ctx, int code, const char *fmt, va_list ap)
{
	if (ctx->failed)
		return;
	ctx->failed = true;
	ctx->code = code;
	ctx->message = vformat(fmt, ap);
	json_decref(ctx->result);
	ctx->result = NULL;
}

void rpc_fault(struct rpc_ctx *ctx, int code, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vfault(ctx, code, fmt, ap);
	va_end(ap);
}

bool rpc_failed(const struct rpc_ctx *ctx)
{
	return ctx->failed;
}

/* A handler broke the result rules: its bug, the client's -32603. */
static void misuse(struct rpc_ctx *ctx, const char *what)
{
	LOG_AT(LL_BUG, "rpc %s: %s", ctx->method ? ctx->method : "(page)",
	       what);
	rpc_fault(ctx, RPC_INTERNAL_ERROR, "Internal error");
}

static void oom(struct rpc_ctx *ctx)
{
	rpc_fault(ctx, RPC_INTERNAL_ERROR, "Internal error: out of memory");
}

/* ----------------------------------------------------------- parameters */

size_t rpc_param_count(const struct rpc_ctx *ctx)
{
	if (json_is_array(ctx->params))
		return json_array_size(ctx->params);
	if (json_is_object(ctx->params))
		return json_object_size(ctx->params);
	return 0;
}

/* The parameter by position or by name, whichever the request used; a
 * JSON null counts as absent. */
static json_t *param(const struct rpc_ctx *ctx, unsigned index,
                     const char *name)
{
	json_t *v = NULL;

	if (json_is_array(ctx->params))
		v = json_array_get(ctx->params, index);
	else if (json_is_object(ctx->params) && name != NULL)
		v = json_object_get(ctx->params, name);
	return json_is_null(v) ? NULL : v;
}

bool rpc_param_has(const struct rpc_ctx *ctx, unsigned index, const char *name)
{
	return param(ctx, index, name) != NULL;
}

/* "'callid'" or "#2": how a message names the parameter. */
static void param_label(char *buf, size_t size, unsigned index,
                        const char *name)
{
	if (name != NULL)
		snprintf(buf, size, "'%s'", name);
	else
		snprintf(buf, size, "#%u", index + 1);
}

static int missing(struct rpc_ctx *ctx, unsigned index, const char *name)
{
	char l[80];

	param_label(l, sizeof(l), index, name);
	if (json_is_object(ctx->params) && name == NULL)
		rpc_fault(ctx, RPC_INVALID_PARAMS,
		          "Invalid params: %s takes positional parameters",
		          ctx->method);
	else
		rpc_fault(ctx, 400, "Missing parameter %s", l);
	return ENOENT;
}

static int wrong_type(struct rpc_ctx *ctx, unsigned index, const char *name,
                      const char *want)
{
	char l[80];

	param_label(l, sizeof(l), index, name);
	rpc_fault(ctx, RPC_INVALID_PARAMS, "Invalid params: %s must be %s", l,
	          want);
	return EINVAL;
}

/* Keeps s (malloc'ed) until the call ends; NULL when out of memory. */
static const char *keep(struct rpc_ctx *ctx, char *s)
{
	char **t;

	if (s == NULL)
		return NULL;
	t = realloc(ctx->tmp, (ctx->ntmp + 1) * sizeof(*t));
	if (t == NULL) {
		free(s);
		return NULL;
	}
	ctx->tmp = t;
	t[ctx->ntmp++] = s;
	return s;
}

static int get_str(struct rpc_ctx *ctx, json_t *v, unsigned index,
                   const char *name, const char **out)
{
	char buf[32];
	const char *s;

	if (json_is_string(v)) {
		if (strlen(json_string_value(v)) != json_string_length(v))
			return wrong_type(ctx, index, name,
			                  "a string without NUL");
		*out = json_string_value(v);
		return 0;
	}
	/* a number as its text */
	if (json_is_integer(v))
		snprintf(buf, sizeof(buf), "%" JSON_INTEGER_FORMAT,
		         json_integer_value(v));
	else if (json_is_real(v))
		snprintf(buf, sizeof(buf), "%.17g", json_real_value(v));
	else
		return wrong_type(ctx, index, name, "a string");
	s = keep(ctx, strdup(buf));
	if (s == NULL) {
		oom(ctx);
		return ENOMEM;
	}
	*out = s;
	return 0;
}

/* Decimal only: a leading 0 is not octal to an operator typing a number. */
static bool parse_decimal(const char *s, long long *out)
{
	char *end;
	long long v;

	if (*s == '\0' || (*s != '-' && (*s < '0' || *s > '9')))
		return false;
	errno = 0;
	v = strtoll(s, &end, 10);
	if (errno != 0 || *end != '\0')
		return false;
	*out = v;
	return true;
}

static int get_int(struct rpc_ctx *ctx, json_t *v, unsigned index,
                   const char *name, long long *out)
{
	if (json_is_integer(v)) {
		*out = json_integer_value(v);
		return 0;
	}
	if (json_is_real(v)) {
		double d = json_real_value(v);

		/* 5.0 from a client that has only doubles */
		if (d == floor(d) && d >= -9.2e18 && d <= 9.2e18) {
			*out = (long long)d;
			return 0;
		}
	}
	if (json_is_string(v) && parse_decimal(json_string_value(v), out))
		return 0;
	return wrong_type(ctx, index, name, "an integer");
}

static int get_bool(struct rpc_ctx *ctx, json_t *v, unsigned index,
                    const char *name, bool *out)
{
	static const char *const yes[] = {"1", "true", "yes", "on"};
	static const char *const no[] = {"0", "false", "no", "off"};

	if (json_is_boolean(v)) {
		*out = json_is_true(v);
		return 0;
	}
	if (json_is_integer(v) &&
	    (json_integer_value(v) == 0 || json_integer_value(v) == 1)) {
		*out = json_integer_value(v) == 1;
		return 0;
	}
	if (json_is_string(v)) {
		const char *s = json_string_value(v);

		for (size_t i = 0; i < sizeof(yes) / sizeof(yes[0]); i++) {
			if (strcasecmp(s, yes[i]) == 0) {
				*out = true;
				return 0;
			}
			if (strcasecmp(s, no[i]) == 0) {
				*out = false;
				return 0;
			}
		}
	}
	return wrong_type(ctx, index, name, "a boolean");
}

int rpc_param_str(struct rpc_ctx *ctx, unsigned index, const char *name,
                  const char **out)
{
	json_t *v = param(ctx, index, name);

	return v ? get_str(ctx, v, index, name, out)
	         : missing(ctx, index, name);
}

int rpc_param_int(struct rpc_ctx *ctx, unsigned index, const char *name,
                  long long *out)
{
	json_t *v = param(ctx, index, name);

	return v ? get_int(ctx, v, index, name, out)
	         : missing(ctx, index, name);
}

int rpc_param_bool(struct rpc_ctx *ctx, unsigned index, const char *name,
                   bool *out)
{
	json_t *v = param(ctx, index, name);

	return v ? get_bool(ctx, v, index, name, out)
	         : missing(ctx, index, name);
}

int rpc_param_opt_str(struct rpc_ctx *ctx, unsigned index, const char *name,
                      const char **out)
{
	json_t *v = param(ctx, index, name);

	return v ? get_str(ctx, v, index, name, out) : 0;
}

int rpc_param_opt_int(struct rpc_ctx *ctx, unsigned index, const char *name,
                      long long *out)
{
	json_t *v = param(ctx, index, name);

	return v ? get_int(ctx, v, index, name, out) : 0;
}

int rpc_param_opt_bool(struct rpc_ctx *ctx, unsigned index, const char *name,
                       bool *out)
{
	json_t *v = param(ctx, index, name);

	return v ? get_bool(ctx, v, index, name, out) : 0;
}

/* --------------------------------------------------------------- result */

/* Puts v (a new reference, taken) where parent and key say (see mgmt.h).
 * Returns v, borrowed from its container, or NULL. */
static json_t *attach(struct rpc_ctx *ctx, struct rpc_node *parent,
                      const char *key, json_t *v)
{
	json_t *p = (json_t *)parent;

	if (ctx->failed || ctx->page) {
		json_decref(v);
		if (ctx->page)
			misuse(ctx, "rpc_add_* in a page (use rpc_printf)");
		return NULL;
	}
	if (v == NULL) {
		oom(ctx);
		return NULL;
	}
	if (p == NULL) {
		if (ctx->result == NULL && key == NULL) {
			ctx->result = v;
			return v;
		}
		if (ctx->result == NULL) {
			ctx->result = json_object();
			if (ctx->result == NULL) {
				json_decref(v);
				oom(ctx);
				return NULL;
			}
		}
		p = ctx->result;
	}
	if (json_is_object(p) && key != NULL) {
		/* Replacing an object or array would free a node the handler
		 * may still hold (nodes live until it returns); a scalar is
		 * replaced, as jansson does (no node was handed out). */
		json_t *old = json_object_get(p, key);
		if (old != NULL &&
		    (json_is_object(old) || json_is_array(old))) {
			json_decref(v);
			misuse(ctx, "container key added twice");
			return NULL;
		}
		if (json_object_set_new(p, key, v) != 0) {
			misuse(ctx, "invalid key");
			return NULL;
		}
		return v;
	}
	if (json_is_array(p) && key == NULL) {
		if (json_array_append_new(p, v) != 0) {
			oom(ctx);
			return NULL;
		}
		return v;
	}
	json_decref(v);
	misuse(ctx, json_is_object(p)  ? "object member without a key"
	            : json_is_array(p) ? "array element with a key"
	                               : "adding to a value that is not a "
	                                 "container");
	return NULL;
}

struct rpc_node *rpc_add_object(struct rpc_ctx *ctx, struct rpc_node *parent,
                                const char *key)
{
	return (struct rpc_node *)attach(ctx, parent, key, json_object());
}

struct rpc_node *rpc_add_array(struct rpc_ctx *ctx, struct rpc_node *parent,
                               const char *key)
{
	return (struct rpc_node *)attach(ctx, parent, key, json_array());
}

struct rpc_node *rpc_scratch_array(struct rpc_ctx *ctx)
{
	if (ctx->scratch == NULL && (ctx->scratch = json_array()) == NULL)
		oom(ctx);
	return (struct rpc_node *)ctx->scratch;
}

int rpc_write_lines(struct rpc_node *arr, FILE *f)
{
	json_t *a = (json_t *)arr;
	size_t i;
	json_t *v;

	json_array_foreach(a, i, v)
	{
		if (json_dumpf(v, f, JSON_COMPACT | JSON_ENSURE_ASCII) != 0 ||
		    fputc('\n', f) == EOF)
			return -1;
	}
	json_array_clear(a);
	return 0;
}

void rpc_add_str(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                 const char *s)
{
	attach(ctx, parent, key, s ? make_string(s, strlen(s)) : json_null());
}

void rpc_add_strn(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                  const char *p, size_t len)
{
	attach(ctx, parent, key, make_string(p ? p : "", p ? len : 0));
}

void rpc_add_strf(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                  const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = vformat(fmt, ap);
	va_end(ap);
	attach(ctx, parent, key, s ? make_string(s, strlen(s)) : NULL);
	free(s);
}

void rpc_add_int(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                 long long v)
{
	attach(ctx, parent, key, json_integer(v));
}

void rpc_add_double(struct rpc_ctx *ctx, struct rpc_node *parent,
                    const char *key, double v)
{
	/* JSON has no NaN or infinity. */
	attach(ctx, parent, key, isfinite(v) ? json_real(v) : json_null());
}

void rpc_add_bool(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key,
                  bool v)
{
	attach(ctx, parent, key, json_boolean(v));
}

void rpc_add_null(struct rpc_ctx *ctx, struct rpc_node *parent, const char *key)
{
	attach(ctx, parent, key, json_null());
}

void rpc_printf(struct rpc_ctx *ctx, const char *fmt, ...)
{
	va_list ap;
	char *s;
	size_t n;

	if (ctx->failed)
		return;
	if (!ctx->page) {
		misuse(ctx, "rpc_printf outside a page");
		return;
	}
	va_start(ap, fmt);
	s = vformat(fmt, ap);
	va_end(ap);
	if (s == NULL) {
		oom(ctx);
		return;
	}
	n = strlen(s);
	if (ctx->tlen + n + 1 > ctx->tcap) {
		size_t cap = ctx->tcap ? ctx->tcap : 4096;
		char *t;

		while (cap < ctx->tlen + n + 1)
			cap *= 2;
		t = realloc(ctx->text, cap);
		if (t == NULL) {
			free(s);
			oom(ctx);
			return;
		}
		ctx->text = t;
		ctx->tcap = cap;
	}
	memcpy(ctx->text + ctx->tlen, s, n + 1);
	ctx->tlen += n;
	free(s);
}

/* ------------------------------------------------------------- the call */

const char *rpc_method_name(const struct rpc_ctx *ctx)
{
	return ctx->method;
}

struct rt *rpc_rt(const struct rpc_ctx *ctx)
{
	return ctx->m->cfg.rt;
}

void *rpc_app(const struct rpc_ctx *ctx)
{
	return ctx->m->cfg.app;
}

unsigned rpc_workers(const struct rpc_ctx *ctx)
{
	return ctx->m->cfg.rt ? rt_workers(ctx->m->cfg.rt) : 0;
}

struct mgmt *rpc_server(const struct rpc_ctx *ctx)
{
	return ctx->m;
}

static void ctx_fini(struct rpc_ctx *ctx)
{
	json_decref(ctx->result);
	json_decref(ctx->scratch);
	free(ctx->message);
	for (size_t i = 0; i < ctx->ntmp; i++)
		free(ctx->tmp[i]);
	free(ctx->tmp);
	free(ctx->text);
}

/* core.echo: the parameters back, as they came (Kamailio's core.echo). */
static void echo(struct rpc_ctx *ctx)
{
	json_t *copy = ctx->params ? json_deep_copy(ctx->params) : json_array();

	attach(ctx, NULL, NULL, copy);
}

const struct rpc_method jrpc_echo_method = {
        "core.echo", echo, "Returns its parameters as it got them"};

/* ------------------------------------------------------------- requests */

static json_t *error_object(int code, const char *message, json_t *id)
{
	json_t *r = json_object(), *e = json_object();

	if (r == NULL || e == NULL ||
	    json_object_set_new(e, "code", json_integer(code)) ||
	    json_object_set_new(e, "message",
	                        make_string(message, strlen(message))) ||
	    json_object_set_new(r, "jsonrpc", json_string("2.0")) ||
	    json_object_set_new(r, "error", e) ||
	    json_object_set_new(r, "id", id ? json_incref(id) : json_null())) {
		json_decref(r);
		return NULL;
	}
	return r;
}

static json_t *errorf(int code, json_t *id, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

static json_t *errorf(int code, json_t *id, const char *fmt, ...)
{
	va_list ap;
	char *s;
	json_t *r;

	va_start(ap, fmt);
	s = vformat(fmt, ap);
	va_end(ap);
	r = error_object(code, s ? s : "Internal error", id);
	free(s);
	return r;
}

/*
 * The HTTP status for a reply with this error code: a method's fault code
 * when it is one (as jsonrpcs), else what the JSON-RPC over HTTP note
 * suggests for the protocol errors.
 */
static int http_status(int code)
{
	if (code >= 100 && code <= 599)
		return code;
	switch (code) {
	case RPC_PARSE_ERROR:
	case RPC_INVALID_REQUEST:
	case RPC_INVALID_PARAMS:
		return 400;
	case RPC_METHOD_NOT_FOUND:
		return 404;
	default:
		return 500;
	}
}

/*
 * One request object. Returns the reply (a new reference), or NULL for a
 * notification; *code gets the error code of the reply (0 for a result).
 * An id of the wrong type or an invalid request gets an error with id null
 * even without an id, as §5 requires.
 */
static json_t *run_one(struct mgmt *m, json_t *req, int *code)
{
	json_t *id, *ver, *meth, *params, *reply;
	const struct rpc_method *rm;
	struct rpc_ctx ctx;

	*code = RPC_INVALID_REQUEST;
	if (!json_is_object(req))
		return errorf(*code, NULL,
		              "Invalid Request: not a JSON-RPC object");
	id = json_object_get(req, "id");
	if (id != NULL && !json_is_string(id) && !json_is_number(id) &&
	    !json_is_null(id))
		return errorf(*code, NULL,
		              "Invalid Request: id must be a string, a "
		              "number or null");
	ver = json_object_get(req, "jsonrpc");
	if (!json_is_string(ver) || strcmp(json_string_value(ver), "2.0") != 0)
		return errorf(*code, id,
		              "Invalid Request: jsonrpc must be \"2.0\"");
	meth = json_object_get(req, "method");
	if (!json_is_string(meth))
		return errorf(*code, id,
		              "Invalid Request: method must be a string");
	params = json_object_get(req, "params");
	if (params != NULL && !json_is_array(params) && !json_is_object(params))
		return errorf(*code, id,
		              "Invalid Request: params must be an array or "
		              "an object");

	rm = rpc_lookup(json_string_value(meth));
	if (rm == NULL) {
		*code = RPC_METHOD_NOT_FOUND;
		if (id == NULL)
			return NULL;
		return errorf(*code, id, "Method not found: %s",
		              json_string_value(meth));
	}

	memset(&ctx, 0, sizeof(ctx));
	ctx.m = m;
	ctx.method = rm->name;
	ctx.params = params;
	rm->fn(&ctx);
	LOG_DBG("rpc %s%s", rm->name, ctx.failed ? ": fault" : "");

	reply = NULL;
	if (id == NULL) {
		*code = 0;
	} else if (ctx.failed) {
		*code = ctx.code;
		reply = error_object(
		        ctx.code, ctx.message ? ctx.message : "Internal error",
		        id);
	} else {
		*code = 0;
		reply = json_object();
		if (reply != NULL &&
		    (json_object_set_new(reply, "jsonrpc",
		                         json_string("2.0")) ||
		     json_object_set_new(reply, "result",
		                         ctx.result ? json_incref(ctx.result)
		                                    : json_object()) ||
		     json_object_set_new(reply, "id", json_incref(id)))) {
			json_decref(reply);
			reply = NULL;
		}
		if (reply == NULL)
			reply = errorf(*code = RPC_INTERNAL_ERROR, id,
			               "Internal error: out of memory");
	}
	ctx_fini(&ctx);
	return reply;
}

static void finish(struct jrpc_reply *out, json_t *reply, bool pretty)
{
	size_t flags = pretty ? JSON_INDENT(2) : JSON_COMPACT;

	out->body = json_dumps(reply, flags);
	out->len = out->body ? strlen(out->body) : 0;
	if (out->body == NULL) {
		/* A fixed text, so that the client hears something. */
		static const char nomem[] =
		        "{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32603,"
		        "\"message\":\"Internal error: out of memory\"},"
		        "\"id\":null}";
		out->body = strdup(nomem);
		out->len = out->body ? strlen(out->body) : 0;
		out->status = 500;
	}
	json_decref(reply);
}

void jrpc_error_reply(struct jrpc_reply *out, int status, int code,
                      const char *fmt, ...)
{
	va_list ap;
	char *s;

	va_start(ap, fmt);
	s = vformat(fmt, ap);
	va_end(ap);
	memset(out, 0, sizeof(*out));
	out->status = status;
	out->failed = true;
	finish(out, error_object(code, s ? s : "Internal error", NULL), false);
	free(s);
}

bool jrpc_broken(const char *in, size_t len)
{
	json_error_t jerr;
	json_t *v = json_loadb(in, len, JSON_DECODE_ANY, &jerr);

	if (v != NULL) {
		json_decref(v);
		return false;
	}
	return json_error_code(&jerr) != json_error_premature_end_of_input;
}

void jrpc_process(struct mgmt *m, const char *in, size_t len, bool pretty,
                  struct jrpc_reply *out)
{
	size_t max = m->cfg.max_request ? m->cfg.max_request : MGMT_MAX_REQUEST;
	json_error_t jerr;
	json_t *req, *reply;
	int code;

	memset(out, 0, sizeof(*out));
	if (len > max) {
		jrpc_error_reply(out, 413, RPC_INVALID_REQUEST,
		                 "Invalid Request: larger than %zu bytes", max);
		return;
	}
	req = json_loadb(in, len, JSON_DECODE_ANY, &jerr);
	if (req == NULL) {
		jrpc_error_reply(out, 400, RPC_PARSE_ERROR,
		                 "Parse error: %s (line %d, column %d)",
		                 jerr.text, jerr.line, jerr.column);
		return;
	}
	out->status = 200;
	if (!json_is_array(req)) {
		reply = run_one(m, req, &code);
		if (code != 0) {
			out->status = http_status(code);
			out->failed = true;
		}
	} else if (json_array_size(req) == 0) {
		reply = errorf(RPC_INVALID_REQUEST, NULL,
		               "Invalid Request: empty batch");
		out->status = 400;
		out->failed = true;
	} else {
		/* §6: one reply per request that is not a notification, in
		 * an array; nothing at all when every one was. */
		reply = json_array();
		for (size_t i = 0; reply && i < json_array_size(req); i++) {
			json_t *r = run_one(m, json_array_get(req, i), &code);

			if (r != NULL && json_array_append_new(reply, r)) {
				json_decref(reply);
				reply = NULL;
			}
		}
		if (reply == NULL)
			reply = errorf(RPC_INTERNAL_ERROR, NULL,
			               "Internal error: out of memory");
		else if (json_array_size(reply) == 0) {
			json_decref(reply);
			reply = NULL;
		}
	}
	json_decref(req);
	if (reply == NULL) {
		out->status = 204;
		return;
	}
	finish(out, reply, pretty);
}

void jrpc_page(struct mgmt *m, const struct mgmt_page *page,
               struct jrpc_reply *out)
{
	struct rpc_ctx ctx;

	memset(out, 0, sizeof(*out));
	memset(&ctx, 0, sizeof(ctx));
	ctx.m = m;
	ctx.page = true;
	page->fn(&ctx);
	if (ctx.failed) {
		out->status = http_status(ctx.code);
		out->failed = true;
		out->body =
		        ctx.message ? malloc(strlen(ctx.message) + 2) : NULL;
		if (out->body != NULL)
			sprintf(out->body, "%s\n", ctx.message);
	} else {
		out->status = 200;
		out->body = ctx.text ? ctx.text : strdup("");
		ctx.text = NULL;
	}
	out->len = out->body ? strlen(out->body) : 0;
	ctx_fini(&ctx);
}
