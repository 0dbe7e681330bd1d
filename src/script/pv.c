/*
 * Pseudo-variables: the KSR.pv functions, the built-in variables with
 * Kamailio's names and value types, and the per-worker $var store.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "script/script_int.h"

/* A script that invents a $var name per message would grow without end. */
#define MAX_VARS 4096

/* --------------------------------------------------------------- helpers */

static struct sip_msg *pv_msg(const struct script_call *c)
{
	return c->ctx ? c->ctx->msg : NULL;
}

/* Kamailio gives $null rather than an empty string for absent parts. */
static int ret_nonempty(struct script_call *c, struct slice s)
{
	if (s.len)
		script_ret_str(c, s);
	return 0;
}

static int ret_fmt(struct script_call *c, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

static int ret_fmt(struct script_call *c, const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(c->buf, c->bufsize, fmt, ap);
	va_end(ap);
	if (n >= 0 && (size_t)n < c->bufsize)
		script_ret_str(c, slice_make(c->buf, (size_t)n));
	return 0;
}

/* A value as a string: integers are printed into buf. */
static struct slice val_str(const struct script_val *v, char *buf, size_t size)
{
	int n;

	if (v->type == SCRIPT_VAL_STR)
		return v->s;
	n = snprintf(buf, size, "%lld", v->i);
	return slice_make(buf, n > 0 ? (size_t)n : 0);
}

/* ------------------------------------------------------------ URI parts */

static int ret_uri_part(struct script_call *c, const struct sip_uri *u,
                        enum script_uri_part part)
{
	switch (part) {
	case SCRIPT_URI_USER:
		return ret_nonempty(c, u->user);
	case SCRIPT_URI_HOST:
		/* Kamailio keeps the brackets of an IPv6 reference. */
		if (u->host_type == SIP_HOST_IPV6)
			return ret_fmt(c, "[%.*s]", SLICE_ARG(u->host));
		return ret_nonempty(c, u->host);
	case SCRIPT_URI_PORT:
		if (u->scheme == SIP_URI_TEL || u->scheme == SIP_URI_OTHER)
			return 0;
		/* A string, and 5060 when absent, as Kamailio's $rp. */
		return ret_fmt(c, "%u", u->has_port ? u->port : 5060u);
	}
	return 0;
}

/* ret_uri_part() of a URI not parsed yet (the Request-URI, $du). */
static int ret_uri_text_part(struct script_call *c, struct slice uri,
                             enum script_uri_part part)
{
	struct sip_uri u;
	const char *why;

	if (uri.len == 0 || sip_uri_parse(&u, uri, &why))
		return 0;
	return ret_uri_part(c, &u, part);
}

static void add_host(struct sip_buf *b, struct slice host, bool v6)
{
	bool bracket = v6 || (memchr(host.p, ':', host.len) && host.len &&
	                      host.p[0] != '[');

	if (bracket)
		sip_buf_adds(b, "[");
	sip_buf_add(b, host);
	if (bracket)
		sip_buf_adds(b, "]");
}

int script_ruri_set_part(struct script_call *c, enum script_uri_part part,
                         struct slice v)
{
	struct slice cur = tm_ctx_ruri(c->ctx);
	struct sip_uri u;
	struct sip_buf b;
	const char *why;

	if (cur.len == 0 || sip_uri_parse(&u, cur, &why) ||
	    u.scheme == SIP_URI_OTHER)
		return EINVAL;
	sip_buf_init(&b, c->buf, c->bufsize);
	sip_buf_add(&b, u.scheme_name);
	sip_buf_adds(&b, ":");
	if (u.scheme == SIP_URI_TEL) {
		/* tel: has only the number (the "user") and parameters. */
		if (part != SCRIPT_URI_USER || v.len == 0)
			return EINVAL;
		sip_buf_add(&b, v);
	} else {
		struct slice user = part == SCRIPT_URI_USER ? v : u.user;

		if (user.len) {
			sip_buf_add(&b, user);
			if (u.password.len) {
				sip_buf_adds(&b, ":");
				sip_buf_add(&b, u.password);
			}
			sip_buf_adds(&b, "@");
		}
		if (part == SCRIPT_URI_HOST) {
			if (v.len == 0)
				return EINVAL;
			add_host(&b, v, false);
		} else {
			add_host(&b, u.host, u.host_type == SIP_HOST_IPV6);
		}
		if (part == SCRIPT_URI_PORT) {
			if (v.len) {
				sip_buf_adds(&b, ":");
				sip_buf_add(&b, v);
			}
		} else if (u.has_port) {
			sip_buf_addf(&b, ":%u", u.port);
		}
	}
	if (u.params.len) {
		sip_buf_adds(&b, ";");
		sip_buf_add(&b, u.params);
	}
	if (u.headers.len) {
		sip_buf_adds(&b, "?");
		sip_buf_add(&b, u.headers);
	}
	if (b.overflow)
		return ENOSPC;
	return tm_ctx_set_ruri(c->ctx, slice_make(b.p, b.len));
}

/* ------------------------------------------------------ request line etc */

static int get_ru(struct script_call *c)
{
	return c->ctx ? ret_nonempty(c, tm_ctx_ruri(c->ctx)) : 0;
}

static int get_rU(struct script_call *c)
{
	return c->ctx ? ret_uri_text_part(c, tm_ctx_ruri(c->ctx),
	                                  SCRIPT_URI_USER)
	              : 0;
}

static int get_rd(struct script_call *c)
{
	return c->ctx ? ret_uri_text_part(c, tm_ctx_ruri(c->ctx),
	                                  SCRIPT_URI_HOST)
	              : 0;
}

static int get_rp(struct script_call *c)
{
	return c->ctx ? ret_uri_text_part(c, tm_ctx_ruri(c->ctx),
	                                  SCRIPT_URI_PORT)
	              : 0;
}

static int set_ru(struct script_call *c, const struct script_val *v)
{
	if (c->ctx == NULL || v->type != SCRIPT_VAL_STR)
		return EINVAL;
	return tm_ctx_set_ruri(c->ctx, v->s);
}

static int set_part(struct script_call *c, const struct script_val *v,
                    enum script_uri_part part)
{
	char num[24];

	if (c->ctx == NULL)
		return EINVAL;
	if (v->type == SCRIPT_VAL_NULL)
		return script_ruri_set_part(c, part, SLICE_NULL);
	return script_ruri_set_part(c, part, val_str(v, num, sizeof(num)));
}

static int set_rU(struct script_call *c, const struct script_val *v)
{
	return set_part(c, v, SCRIPT_URI_USER);
}

static int set_rd(struct script_call *c, const struct script_val *v)
{
	return set_part(c, v, SCRIPT_URI_HOST);
}

static int set_rp(struct script_call *c, const struct script_val *v)
{
	return set_part(c, v, SCRIPT_URI_PORT);
}

static int get_ou(struct script_call *c)
{
	return c->ctx && c->ctx->req ? ret_nonempty(c, c->ctx->req->ruri) : 0;
}

static int get_du(struct script_call *c)
{
	return c->ctx ? ret_nonempty(c, tm_ctx_duri(c->ctx)) : 0;
}

static int set_du(struct script_call *c, const struct script_val *v)
{
	if (c->ctx == NULL || v->type == SCRIPT_VAL_INT)
		return EINVAL;
	return tm_ctx_set_duri(c->ctx,
	                       v->type == SCRIPT_VAL_STR ? v->s : SLICE_NULL);
}

/* $dd, $dp, $dP: host, port and transport of $du. */
static int get_dd(struct script_call *c)
{
	return c->ctx ? ret_uri_text_part(c, tm_ctx_duri(c->ctx),
	                                  SCRIPT_URI_HOST)
	              : 0;
}

static int get_dp(struct script_call *c)
{
	return c->ctx && tm_ctx_duri(c->ctx).len
	               ? ret_uri_text_part(c, tm_ctx_duri(c->ctx),
	                                   SCRIPT_URI_PORT)
	               : 0;
}

static int get_dP(struct script_call *c)
{
	struct sip_uri u;
	const char *why;

	if (c->ctx == NULL || sip_uri_parse(&u, tm_ctx_duri(c->ctx), &why) != 0)
		return 0;
	/* Kamailio gives "udp" for a URI without transport */
	return u.transport.len ? ret_nonempty(c, u.transport)
	                       : ret_nonempty(c, SLICE_LIT("udp"));
}

static int get_rm(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);
	const struct sip_cseq *cs;

	if (m == NULL)
		return 0;
	if (m->is_request)
		return ret_nonempty(c, m->method);
	return sip_msg_cseq(&cs, m) ? 0 : ret_nonempty(c, cs->method);
}

static int get_rs(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);

	if (m && !m->is_request)
		script_ret_int(c, m->status);
	return 0;
}

static int get_rr(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);

	return m && !m->is_request ? ret_nonempty(c, m->reason) : 0;
}

static int get_rv(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);

	return m ? ret_nonempty(c, m->version) : 0;
}

static int get_ci(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);
	struct slice ci;

	return m && sip_msg_call_id(&ci, m) == 0 ? ret_nonempty(c, ci) : 0;
}

/* A string, as Kamailio's $cs. */
static int get_cs(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);
	const struct sip_cseq *cs;

	return m && sip_msg_cseq(&cs, m) == 0 ? ret_fmt(c, "%u", cs->num) : 0;
}

static int get_rb(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);

	return m ? ret_nonempty(c, m->body) : 0;
}

static int get_ml(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);

	if (m)
		script_ret_int(c, (long long)m->len);
	return 0;
}

static int get_mb(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);

	return m ? ret_nonempty(c, slice_make(m->buf, m->len)) : 0;
}

static int ret_hdr(struct script_call *c, const struct sip_hdr *h)
{
	return h ? ret_nonempty(c, h->value) : 0;
}

static int get_ua(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);

	return m ? ret_hdr(c, sip_msg_hdr(m, SIP_HDR_USER_AGENT)) : 0;
}

static int get_ct(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);

	return m ? ret_hdr(c, sip_msg_hdr(m, SIP_HDR_CONTACT)) : 0;
}

static int get_hdr(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);

	return m ? ret_hdr(c, sip_msg_hdr_by_name(m, c->pv_arg)) : 0;
}

/* ------------------------------------------------------------ From / To */

enum addr_part { ADDR_URI, ADDR_USER, ADDR_HOST, ADDR_NAME, ADDR_TAG };

/* The display name as written: Kamailio's $fn, $tn, $pn keep the quotes
 * of a quoted one. */
static struct slice display_as_written(const struct sip_addr *a)
{
	struct slice d = a->display;

	if (d.p && d.p > a->raw.p && d.p[-1] == '"' &&
	    d.p + d.len < a->raw.p + a->raw.len && d.p[d.len] == '"')
		return slice_make(d.p - 1, d.len + 2);
	return d;
}

/* Part of address a; u: its URI parsed, or NULL to parse it here when
 * the part needs it. */
static int ret_addr_part(struct script_call *c, const struct sip_addr *a,
                         const struct sip_uri *u, enum addr_part part)
{
	struct sip_uri parsed;
	const char *why;

	switch (part) {
	case ADDR_URI:
		return ret_nonempty(c, a->uri);
	case ADDR_NAME:
		return ret_nonempty(c, display_as_written(a));
	case ADDR_TAG:
		return a->has_tag ? ret_nonempty(c, a->tag) : 0;
	case ADDR_USER:
	case ADDR_HOST:
		if (u == NULL) {
			if (sip_uri_parse(&parsed, a->uri, &why))
				return 0;
			u = &parsed;
		}
		return ret_uri_part(c, u,
		                    part == ADDR_USER ? SCRIPT_URI_USER
		                                      : SCRIPT_URI_HOST);
	}
	return 0;
}

static int ret_addr(struct script_call *c, bool to, enum addr_part part)
{
	struct sip_msg *m = pv_msg(c);
	const struct sip_addr *a;
	const struct sip_uri *u = NULL;

	if (m == NULL || (to ? sip_msg_to(&a, m) : sip_msg_from(&a, m)))
		return 0;
	/* the URI is parsed once per message (sip_msg_check() did it) */
	if ((part == ADDR_USER || part == ADDR_HOST) &&
	    (to ? sip_msg_to_uri(&u, m) : sip_msg_from_uri(&u, m)))
		return 0;
	return ret_addr_part(c, a, u, part);
}

#define ADDR_GETTERS(X)                                                        \
	X(fu, false, ADDR_URI)                                                 \
	X(fU, false, ADDR_USER)                                                \
	X(fd, false, ADDR_HOST)                                                \
	X(fn, false, ADDR_NAME)                                                \
	X(ft, false, ADDR_TAG)                                                 \
	X(tu, true, ADDR_URI)                                                  \
	X(tU, true, ADDR_USER)                                                 \
	X(td, true, ADDR_HOST)                                                 \
	X(tn, true, ADDR_NAME)                                                 \
	X(tt, true, ADDR_TAG)

#define ADDR_GETTER_FN(pv, to, part)                                           \
	static int get_##pv(struct script_call *c)                             \
	{                                                                      \
		return ret_addr(c, to, part);                                  \
	}
ADDR_GETTERS(ADDR_GETTER_FN)
#undef ADDR_GETTER_FN

/*
 * The first address of a header that carries identities (P-Asserted-
 * Identity, P-Preferred-Identity, Diversion, Remote-Party-ID): its URI,
 * the URI's user or host, or the display name.
 */
static int ret_identity(struct script_call *c, const char *name,
                        enum addr_part part)
{
	struct sip_msg *m = pv_msg(c);
	const struct sip_hdr *h =
	        m ? sip_msg_hdr_by_name(m, slice_cstr(name)) : NULL;
	struct sip_list_iter it;
	struct sip_addr a;
	struct slice elem;
	const char *why;

	if (h == NULL)
		return 0;
	sip_list_init(&it, h->value);
	if (sip_list_next(&elem, &it) || sip_addr_parse(&a, elem, 0, &why))
		return 0;
	return ret_addr_part(c, &a, NULL, part);
}

#define IDENTITY_GETTERS(X)                                                    \
	X(ai, "P-Asserted-Identity", ADDR_URI)                                 \
	X(pu, "P-Preferred-Identity", ADDR_URI)                                \
	X(pU, "P-Preferred-Identity", ADDR_USER)                               \
	X(pd, "P-Preferred-Identity", ADDR_HOST)                               \
	X(pn, "P-Preferred-Identity", ADDR_NAME)                               \
	X(di, "Diversion", ADDR_URI)                                           \
	X(re, "Remote-Party-ID", ADDR_URI)

#define IDENTITY_GETTER_FN(pv, hdr, part)                                      \
	static int get_##pv(struct script_call *c)                             \
	{                                                                      \
		return ret_identity(c, hdr, part);                             \
	}
IDENTITY_GETTERS(IDENTITY_GETTER_FN)
#undef IDENTITY_GETTER_FN

/* $hdrc(name): how many header lines of that name (full or compact). */
static int get_hdrc(struct script_call *c)
{
	struct sip_msg *m = pv_msg(c);
	enum sip_hdr_id id = sip_hdr_lookup(c->pv_arg);
	unsigned n = 0;

	for (unsigned i = 0; m && i < m->nhdrs; i++) {
		const struct sip_hdr *h = sip_msg_hdr_at(m, i);
		if (id != SIP_HDR_OTHER ? h->id == id
		                        : slice_eq_nocase(h->name, c->pv_arg))
			n++;
	}
	script_ret_int(c, n);
	return 0;
}

/* $Ts: the current Unix time. */
static int get_Ts(struct script_call *c)
{
	script_ret_int(c, (long long)time(NULL));
	return 0;
}

/* $T_branch_idx: in a branch route the index of its branch (0 first),
 * elsewhere 0, as in Kamailio. */
static int get_T_branch_idx(struct script_call *c)
{
	script_ret_int(c, c->ctx && c->ctx->route == TM_ROUTE_BRANCH
	                          ? c->ctx->branch
	                          : 0);
	return 0;
}

/* ------------------------------------------------------------- transport */

/* How the message arrived; for a stored request (failure routes), how its
 * transaction's request did. */
static const struct net_rx *pv_rx(const struct script_call *c)
{
	if (c->ctx == NULL)
		return NULL;
	if (c->ctx->rx)
		return c->ctx->rx;
	return c->ctx->t ? tm_trans_source(c->ctx->t) : NULL;
}

static int get_si(struct script_call *c)
{
	const struct net_rx *rx = pv_rx(c);

	if (rx == NULL)
		return 0;
	net_addr_host(c->buf, c->bufsize, &rx->src);
	script_ret_str(c, slice_cstr(c->buf));
	return 0;
}

static int get_sp(struct script_call *c)
{
	const struct net_rx *rx = pv_rx(c);

	if (rx)
		script_ret_int(c, net_addr_port(&rx->src));
	return 0;
}

static int get_Ri(struct script_call *c)
{
	const struct net_rx *rx = pv_rx(c);

	if (rx == NULL || rx->lst == NULL)
		return 0;
	net_addr_host(c->buf, c->bufsize, &rx->lst->addr);
	script_ret_str(c, slice_cstr(c->buf));
	return 0;
}

static int get_Rp(struct script_call *c)
{
	const struct net_rx *rx = pv_rx(c);

	if (rx && rx->lst)
		script_ret_int(c, rx->lst->port);
	return 0;
}

static int get_pr(struct script_call *c)
{
	const struct net_rx *rx = pv_rx(c);

	if (rx)
		script_ret_str(c, slice_cstr(net_proto_name(rx->proto)));
	return 0;
}

/* ---------------------------------------------------------------- tm */

/* The reply's code in failure and reply routes, else 0 (Kamailio). */
/* $bf: the flags of branch 0 as one integer (tm_ctx_bflags()). */
static int get_bf(struct script_call *c)
{
	uint32_t *f = c->ctx ? tm_ctx_bflags(c->ctx, 0) : NULL;

	if (f)
		script_ret_int(c, *f);
	return 0;
}

static int set_bf(struct script_call *c, const struct script_val *v)
{
	uint32_t *f = c->ctx ? tm_ctx_bflags(c->ctx, 0) : NULL;

	if (f == NULL || v->type != SCRIPT_VAL_INT || v->i < 0 ||
	    v->i > UINT32_MAX)
		return EINVAL;
	*f = (uint32_t)v->i;
	return 0;
}

static int get_T_reply_code(struct script_call *c)
{
	struct tm_ctx *ctx = c->ctx;
	unsigned code = 0;

	if (ctx == NULL)
		return 0;
	if (ctx->reply_code)
		code = ctx->reply_code;
	else if (ctx->msg && !ctx->msg->is_request)
		code = ctx->msg->status;
	script_ret_int(c, code);
	return 0;
}

static int get_avp(struct script_call *c)
{
	struct tm_val v;

	if (c->ctx == NULL || !tm_ctx_avp_get(c->ctx, c->pv_arg, &v))
		return 0;
	if (v.is_int)
		script_ret_int(c, v.i);
	else
		script_ret_str(c, v.s);
	return 0;
}

static int set_avp(struct script_call *c, const struct script_val *v)
{
	struct tm_val tv = {v->type == SCRIPT_VAL_INT, v->i, v->s};

	if (c->ctx == NULL)
		return EINVAL;
	if (v->type == SCRIPT_VAL_NULL) {
		tm_ctx_avp_unset(c->ctx, c->pv_arg);
		return 0;
	}
	return tm_ctx_avp_set(c->ctx, c->pv_arg, &tv);
}

/* ------------------------------------------------------------------ $var */

static struct script_var *var_find(struct script *s, struct slice name,
                                   bool create)
{
	uint64_t h = hash_bytes(name.p, name.len);
	struct script_var **head = &s->vars[h % SCRIPT_VAR_BUCKETS];
	struct script_var *v;

	for (v = *head; v; v = v->next)
		if (v->hash == h && v->name_len == name.len &&
		    memcmp(v->name, name.p, name.len) == 0)
			return v;
	if (!create || s->nvars == MAX_VARS)
		return NULL;
	v = calloc(1, sizeof(*v));
	if (v == NULL)
		return NULL;
	v->name = malloc(name.len + 1);
	if (v->name == NULL) {
		free(v);
		return NULL;
	}
	memcpy(v->name, name.p, name.len);
	v->name[name.len] = '\0';
	v->name_len = name.len;
	v->hash = h;
	v->v.type = SCRIPT_VAL_INT;
	v->next = *head;
	*head = v;
	s->nvars++;
	return v;
}

/* Never set (or unset): 0, as Kamailio's $var. */
static int get_var(struct script_call *c)
{
	struct script_var *v = var_find(c->script, c->pv_arg, false);

	if (v)
		c->ret = v->v;
	else
		script_ret_int(c, 0);
	return 0;
}

static int set_var(struct script_call *c, const struct script_val *val)
{
	struct script_var *v = var_find(c->script, c->pv_arg, true);

	if (v == NULL)
		return ENOMEM;
	if (val->type != SCRIPT_VAL_STR) {
		v->v.type = SCRIPT_VAL_INT;
		v->v.i = val->type == SCRIPT_VAL_INT ? val->i : 0;
		return 0;
	}
	/* The buffer is kept and reused: a steady script stops
	 * allocating after its first messages. */
	if (val->s.len + 1 > v->scap) {
		size_t cap = v->scap * 2 > val->s.len + 1 ? v->scap * 2
		                                          : val->s.len + 1;
		char *p = realloc(v->sbuf, cap);
		if (p == NULL)
			return ENOMEM;
		v->sbuf = p;
		v->scap = cap;
	}
	if (val->s.len)
		memmove(v->sbuf, val->s.p, val->s.len);
	v->sbuf[val->s.len] = '\0';
	v->v.type = SCRIPT_VAL_STR;
	v->v.s = slice_make(v->sbuf, val->s.len);
	return 0;
}

void script_vars_free(struct script *s)
{
	for (size_t i = 0; i < SCRIPT_VAR_BUCKETS; i++) {
		struct script_var *v = s->vars[i], *next;
		for (; v; v = next) {
			next = v->next;
			free(v->name);
			free(v->sbuf);
			free(v);
		}
		s->vars[i] = NULL;
	}
	s->nvars = 0;
}

/* ----------------------------------------------------------------- table */

#define ADDR_ROW(pv, to, part)      {#pv, false, get_##pv, NULL},
#define IDENTITY_ROW(pv, hdr, part) {#pv, false, get_##pv, NULL},

const struct script_pv_def script_builtin_pvs[] = {
        {"ru", false, get_ru, set_ru},
        {"rU", false, get_rU, set_rU},
        {"rd", false, get_rd, set_rd},
        {"rp", false, get_rp, set_rp},
        {"ou", false, get_ou, NULL},
        {"du", false, get_du, set_du},
        {"rm", false, get_rm, NULL},
        {"rs", false, get_rs, NULL},
        {"rr", false, get_rr, NULL},
        {"rv", false, get_rv, NULL},
        {"ci", false, get_ci, NULL},
        {"cs", false, get_cs, NULL},
        /* clang-format off */
        ADDR_GETTERS(ADDR_ROW)
        IDENTITY_GETTERS(IDENTITY_ROW)
        /* clang-format on */
        {"si", false, get_si, NULL},
        {"sp", false, get_sp, NULL},
        {"Ri", false, get_Ri, NULL},
        {"Rp", false, get_Rp, NULL},
        {"pr", false, get_pr, NULL},
        {"ua", false, get_ua, NULL},
        {"ct", false, get_ct, NULL},
        {"rb", false, get_rb, NULL},
        {"ml", false, get_ml, NULL},
        {"mb", false, get_mb, NULL},
        {"hdr", true, get_hdr, NULL},
        {"hdrc", true, get_hdrc, NULL},
        {"dd", false, get_dd, NULL},
        {"dp", false, get_dp, NULL},
        {"dP", false, get_dP, NULL},
        {"Ts", false, get_Ts, NULL},
        {"T_branch_idx", false, get_T_branch_idx, NULL},
        {"T_reply_code", false, get_T_reply_code, NULL},
        {"bf", false, get_bf, set_bf},
        {"avp", true, get_avp, set_avp},
        {"var", true, get_var, set_var},
};

const size_t script_builtin_npvs =
        sizeof(script_builtin_pvs) / sizeof(script_builtin_pvs[0]);

/* ----------------------------------------------------------- KSR.pv.* */

/* "$name" or "$name(arg)" into its definition and c->pv_arg. */
static int pv_lookup(struct script_call *c, struct slice spec,
                     const struct script_pv_def **out)
{
	const struct script_pv_def *d = NULL;
	struct slice name, arg = SLICE_NULL;
	const char *open;

	if (spec.len < 2 || spec.p[0] != '$')
		return script_call_error(c, "invalid pseudo-variable \"%.*s\"",
		                         SLICE_ARG(spec));
	name = slice_make(spec.p + 1, spec.len - 1);
	open = memchr(name.p, '(', name.len);
	if (open) {
		if (name.p[name.len - 1] != ')')
			return script_call_error(
			        c, "invalid pseudo-variable \"%.*s\"",
			        SLICE_ARG(spec));
		arg = slice_make(open + 1,
		                 (size_t)(name.p + name.len - 1 - (open + 1)));
		name.len = (size_t)(open - name.p);
	}
	d = script_pv_find(name);
	if (d == NULL)
		return script_call_error(c, "unknown pseudo-variable %.*s",
		                         SLICE_ARG(spec));
	if (d->has_arg && arg.len == 0)
		return script_call_error(c, "%.*s needs a name: $%s(name)",
		                         SLICE_ARG(spec), d->name);
	if (!d->has_arg && open)
		return script_call_error(c, "%.*s takes no name: $%s",
		                         SLICE_ARG(spec), d->name);
	c->pv_arg = arg;
	*out = d;
	return 0;
}

/* Reads the variable into c->ret; -1 after an error. */
static int pv_read(struct script_call *c, struct slice spec)
{
	const struct script_pv_def *d = NULL;

	if (pv_lookup(c, spec, &d))
		return -1;
	c->ret.type = SCRIPT_VAL_NULL;
	return d->get(c) < 0 && c->error ? -1 : 0;
}

int script_pv_write(struct script_call *c, struct slice spec,
                    const struct script_val *v)
{
	const struct script_pv_def *d = NULL;
	int err;

	if (pv_lookup(c, spec, &d))
		return -1;
	if (d->set == NULL)
		return script_call_error(c, "%.*s is read-only",
		                         SLICE_ARG(spec));
	err = d->set(c, v);
	if (err < 0)
		return -1;
	if (err) {
		/* A value the data made wrong (a bad URI): logged, and the
		 * script goes on, as in Kamailio. */
		LOG_ERR("script: cannot set %.*s: %s", SLICE_ARG(spec),
		        strerror(err));
		return -1;
	}
	return 1;
}

/* A pseudo-variable name: letters, digits and '_' ($ci, $T_reply_code). */
static const char *skip_pv_name(const char *p, const char *end)
{
	while (p < end &&
	       ((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
	        (*p >= '0' && *p <= '9') || *p == '_'))
		p++;
	return p;
}

/* The value c->ret holds after a getter, appended to b as text. */
static void add_value(struct sip_buf *b, const struct script_val *v)
{
	if (v->type == SCRIPT_VAL_STR)
		sip_buf_add(b, v->s);
	else if (v->type == SCRIPT_VAL_INT)
		sip_buf_addf(b, "%lld", v->i);
	else
		sip_buf_adds(b, "<null>");
}

size_t script_pv_format(struct script_call *c, struct slice fmt, char *out,
                        size_t size)
{
	const char *p = fmt.p, *end = fmt.p + fmt.len;
	const char *error = c->error;
	struct sip_buf b;

	sip_buf_init(&b, out, size);
	while (p < end) {
		const char *dollar = memchr(p, '$', (size_t)(end - p));
		if (dollar == NULL)
			dollar = end;
		sip_buf_add(&b, slice_make(p, (size_t)(dollar - p)));
		if (dollar == end)
			break;
		if (end - dollar > 1 && dollar[1] == '$') { /* "$$" is a '$' */
			sip_buf_adds(&b, "$");
			p = dollar + 2;
			continue;
		}
		const char *ne = skip_pv_name(dollar + 1, end), *close = NULL;
		const struct script_pv_def *d = script_pv_find(
		        slice_make(dollar + 1, (size_t)(ne - dollar - 1)));
		if (d && d->has_arg && ne < end && *ne == '(')
			close = memchr(ne, ')', (size_t)(end - ne));
		if (d == NULL ||
		    (d->has_arg && (close == NULL || close == ne + 1))) {
			/* not a variable this proxy knows: the text stays */
			sip_buf_adds(&b, "$");
			p = dollar + 1;
			continue;
		}
		c->pv_arg = close ? slice_make(ne + 1, (size_t)(close - ne - 1))
		                  : SLICE_NULL;
		c->ret.type = SCRIPT_VAL_NULL;
		d->get(c);
		add_value(&b, &c->ret);
		/* a getter's complaint (a bad $avp name) is no error of the
		 * format: the value prints as <null> */
		c->error = error;
		p = close ? close + 1 : ne;
	}
	return b.len;
}

enum { PV_NULL_NIL, PV_NULL_EMPTY, PV_NULL_WORD };

/* The value of spec, $null given as nil, "" or "<null>" (mode). */
static int pv_get_as(struct script_call *c, struct slice spec, long mode)
{
	if (pv_read(c, spec))
		return -1;
	if (c->ret.type == SCRIPT_VAL_NULL && mode == PV_NULL_EMPTY)
		script_ret_str(c, SLICE_LIT(""));
	else if (c->ret.type == SCRIPT_VAL_NULL && mode == PV_NULL_WORD)
		script_ret_str(c, SLICE_LIT("<null>"));
	return 1;
}

/* get / gete / getw: what $null becomes is the row's arg. */
static int pv_get(struct script_call *c)
{
	return pv_get_as(c, c->args[0].s, c->exp->arg);
}

/* KSR.kx, Kamailio's kemix getters: each reads one pseudo-variable;
 * get_* give nil for $null, gete_* "" and getw_* "<null>". */
#define KX_GETTERS(X)                                                          \
	X(ruri, "$ru")                                                         \
	X(ouri, "$ou")                                                         \
	X(ruser, "$rU")                                                        \
	X(rhost, "$rd")                                                        \
	X(duri, "$du")                                                         \
	X(furi, "$fu")                                                         \
	X(fuser, "$fU")                                                        \
	X(fhost, "$fd")                                                        \
	X(turi, "$tu")                                                         \
	X(tuser, "$tU")                                                        \
	X(thost, "$td")                                                        \
	X(method, "$rm")                                                       \
	X(status, "$rs")                                                       \
	X(callid, "$ci")                                                       \
	X(ua, "$ua")                                                           \
	X(srcip, "$si")                                                        \
	X(srcport, "$sp")                                                      \
	X(rcvip, "$Ri")                                                        \
	X(rcvport, "$Rp")                                                      \
	X(proto, "$pr")                                                        \
	X(body, "$rb")                                                         \
	X(msglen, "$ml")

#define KX_ID(name, spec)   KX_##name,
#define KX_SPEC(name, spec) spec,

enum { KX_GETTERS(KX_ID) KX_N };

static const char *const kx_specs[KX_N] = {KX_GETTERS(KX_SPEC)};

/* The row's arg: the getter's index times 4 plus its $null mode. */
static int kx_get(struct script_call *c)
{
	return pv_get_as(c, slice_cstr(kx_specs[c->exp->arg >> 2]),
	                 c->exp->arg & 3);
}

/* getvn(name, default): the integer value, else the default. */
static int pv_getvn(struct script_call *c)
{
	if (pv_read(c, c->args[0].s))
		return -1;
	if (c->ret.type != SCRIPT_VAL_INT)
		script_ret_int(c, c->args[1].i);
	return 1;
}

/* getvs(name, default): the value as a string, else the default. */
static int pv_getvs(struct script_call *c)
{
	if (pv_read(c, c->args[0].s))
		return -1;
	if (c->ret.type == SCRIPT_VAL_NULL)
		script_ret_str(c, c->args[1].s);
	else if (c->ret.type == SCRIPT_VAL_INT)
		ret_fmt(c, "%lld", c->ret.i);
	return 1;
}

static int pv_sets(struct script_call *c)
{
	struct script_val v = {SCRIPT_VAL_STR, 0, c->args[1].s};

	return script_pv_write(c, c->args[0].s, &v);
}

static int pv_seti(struct script_call *c)
{
	struct script_val v = {SCRIPT_VAL_INT, c->args[1].i, SLICE_NULL};

	return script_pv_write(c, c->args[0].s, &v);
}

static int pv_unset(struct script_call *c)
{
	struct script_val v = {SCRIPT_VAL_NULL, 0, SLICE_NULL};

	return script_pv_write(c, c->args[0].s, &v);
}

static int pv_is_null(struct script_call *c)
{
	if (pv_read(c, c->args[0].s))
		return -1;
	return c->ret.type == SCRIPT_VAL_NULL ? 1 : -1;
}

#define ANY SCRIPT_EXP_ANYWHERE

const struct script_export script_pv_exports[] = {
        {"pv", "get", pv_get, "s", SCRIPT_RET_VAL, ANY, PV_NULL_NIL},
        {"pv", "gete", pv_get, "s", SCRIPT_RET_VAL, ANY, PV_NULL_EMPTY},
        {"pv", "getw", pv_get, "s", SCRIPT_RET_VAL, ANY, PV_NULL_WORD},
        {"pv", "getvw", pv_get, "s", SCRIPT_RET_VAL, ANY, PV_NULL_WORD},
        {"pv", "getvn", pv_getvn, "si", SCRIPT_RET_VAL, ANY, 0},
        {"pv", "getvs", pv_getvs, "ss", SCRIPT_RET_VAL, ANY, 0},
        {"pv", "sets", pv_sets, "ss", SCRIPT_RET_NONE, ANY, 0},
        {"pv", "seti", pv_seti, "si", SCRIPT_RET_NONE, ANY, 0},
        {"pv", "unset", pv_unset, "s", SCRIPT_RET_NONE, ANY, 0},
        {"pv", "is_null", pv_is_null, "s", SCRIPT_RET_BOOL, ANY, 0},
#define KX_ROWS(name, spec)                                                    \
	{"kx",                                                                 \
	 "get_" #name,                                                         \
	 kx_get,                                                               \
	 "",                                                                   \
	 SCRIPT_RET_VAL,                                                       \
	 0,                                                                    \
	 KX_##name * 4 + PV_NULL_NIL},                                         \
	        {"kx",                                                         \
	         "gete_" #name,                                                \
	         kx_get,                                                       \
	         "",                                                           \
	         SCRIPT_RET_VAL,                                               \
	         0,                                                            \
	         KX_##name * 4 + PV_NULL_EMPTY},                               \
	        {"kx",                                                         \
	         "getw_" #name,                                                \
	         kx_get,                                                       \
	         "",                                                           \
	         SCRIPT_RET_VAL,                                               \
	         0,                                                            \
	         KX_##name * 4 + PV_NULL_WORD},
        KX_GETTERS(KX_ROWS)};

const size_t script_pv_nexports =
        sizeof(script_pv_exports) / sizeof(script_pv_exports[0]);
