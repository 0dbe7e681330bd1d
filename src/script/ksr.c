/*
 * The built-in KSR functions: core (KSR.*), x, sl, tm, rr, maxfwd,
 * siputils, corex, hdr and xhttp_prom, with Kamailio's KEMI names,
 * parameters and return kinds. Each is a thin call into tm/, rr/ or
 * mgmt/ (the script's metrics).
 */
#include <ctype.h>
#include <errno.h>
#include <regex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt/mgmt.h"
#include "script/script_int.h"

/* --------------------------------------------------------------- helpers */

static struct slice arg_s(const struct script_call *c, unsigned i)
{
	return c->args[i].s;
}

static long long arg_i(const struct script_call *c, unsigned i)
{
	return c->args[i].i;
}

/* A status code argument: 100..699 (RFC 3261 §7.2). */
static bool code_ok(long long code)
{
	return code >= 100 && code <= 699;
}

static int ok(int err)
{
	return err ? -1 : 1;
}

/* The method of the message, from the CSeq for a reply. */
static bool msg_method(struct sip_msg *m, struct slice *name,
                       enum sip_method *id)
{
	const struct sip_cseq *cs;

	if (m == NULL)
		return false;
	if (m->is_request) {
		*name = m->method;
		*id = m->method_id;
		return true;
	}
	if (sip_msg_cseq(&cs, m))
		return false;
	*name = cs->method;
	*id = cs->method_id;
	return true;
}

/* ------------------------------------------------------------------ core */

static int core_log(struct script_call *c)
{
	struct slice msg = arg_s(c, 0);

	LOG_AT((int)c->exp->arg, "%.*s", SLICE_ARG(msg));
	return 1;
}

/*
 * A log level by Kamailio's name: KSR.log()'s "dbg" ... "crit", or with
 * xlog xlog()'s "L_DBG" ... "L_CRIT" and its "L_ALERT", "L_BUG",
 * "L_CRIT2" (our CRIT); any other name is ERROR.
 */
static int level_named(struct slice name, bool xlog)
{
	static const struct {
		const char *name;
		int level;
		bool xlog_only;
	} levels[] = {
	        {"dbg", LL_DBG, false},       {"info", LL_INFO, false},
	        {"notice", LL_NOTICE, false}, {"warn", LL_WARN, false},
	        {"err", LL_ERR, false},       {"crit", LL_CRIT, false},
	        {"crit2", LL_CRIT, true},     {"alert", LL_CRIT, true},
	        {"bug", LL_CRIT, true},
	};

	if (xlog) {
		if (name.len < 2 ||
		    !slice_eq_cstr_nocase(slice_make(name.p, 2), "L_"))
			return LL_ERR;
		name = slice_make(name.p + 2, name.len - 2);
	}
	for (size_t i = 0; i < sizeof(levels) / sizeof(levels[0]); i++)
		if ((xlog || !levels[i].xlog_only) &&
		    slice_eq_cstr_nocase(name, levels[i].name))
			return levels[i].level;
	return LL_ERR;
}

/* KSR.log(level, msg) */
static int core_log_level(struct script_call *c)
{
	LOG_AT(level_named(arg_s(c, 0), false), "%.*s", SLICE_ARG(arg_s(c, 1)));
	return 1;
}

static int core_is_method_id(struct script_call *c)
{
	struct slice name;
	enum sip_method id;

	return msg_method(c->ctx->msg, &name, &id) &&
	                       id == (enum sip_method)c->exp->arg
	               ? 1
	               : -1;
}

/* is_method("INVITE") or is_method("INVITE|BYE"), case-insensitive as in
 * Kamailio. */
static int core_is_method(struct script_call *c)
{
	struct slice want = arg_s(c, 0), name;
	enum sip_method id;
	const char *p = want.p, *end = want.p + want.len;

	if (!msg_method(c->ctx->msg, &name, &id))
		return -1;
	while (p <= end) {
		const char *bar = memchr(p, '|', (size_t)(end - p));
		const char *e = bar ? bar : end;

		if (slice_eq_nocase(slice_make(p, (size_t)(e - p)), name))
			return 1;
		p = e + 1;
	}
	return -1;
}

/* Kamailio's letters (core kemi.c). INFO has none there either. */
static const struct {
	char letter;
	const char *method;
} method_letters[] = {
        {'I', "INVITE"}, {'A', "ACK"},     {'B', "BYE"},
        {'C', "CANCEL"}, {'M', "MESSAGE"}, {'R', "REGISTER"},
        {'E', "PRACK"},  {'P', "PUBLISH"}, {'S', "SUBSCRIBE"},
        {'N', "NOTIFY"}, {'O', "OPTIONS"}, {'F', "REFER"},
        {'G', "GET"},    {'U', "UPDATE"},  {'K', "KDMQ"},
        {'D', "DELETE"}, {'T', "POST"},    {'V', "PUT"},
};

static int core_is_method_in(struct script_call *c)
{
	struct slice letters = arg_s(c, 0), name;
	enum sip_method id;

	if (!msg_method(c->ctx->msg, &name, &id))
		return -1;
	for (size_t i = 0; i < letters.len; i++) {
		char l = letters.p[i] & ~0x20; /* upper case */
		for (size_t j = 0;
		     j < sizeof(method_letters) / sizeof(method_letters[0]);
		     j++)
			if (method_letters[j].letter == l &&
			    slice_eq_cstr(name, method_letters[j].method))
				return 1;
	}
	return -1;
}

/* Message flags 0..31, as Kamailio's flag_in_range(). */
static bool flag_ok(long long f)
{
	return f >= 0 && f < 32;
}

static int core_setflag(struct script_call *c)
{
	if (!flag_ok(arg_i(c, 0)))
		return -1;
	tm_ctx_setflag(c->ctx, (unsigned)arg_i(c, 0));
	return 1;
}

static int core_resetflag(struct script_call *c)
{
	if (!flag_ok(arg_i(c, 0)))
		return -1;
	tm_ctx_resetflag(c->ctx, (unsigned)arg_i(c, 0));
	return 1;
}

static int core_isflagset(struct script_call *c)
{
	return flag_ok(arg_i(c, 0)) &&
	                       tm_ctx_isflagset(c->ctx, (unsigned)arg_i(c, 0))
	               ? 1
	               : -1;
}

/* Flag f of *flags as the exp's arg says: 1 set, 0 reset, 2 test. */
static int flag_op(const struct script_call *c, uint32_t *flags, unsigned f)
{
	switch (c->exp->arg) {
	case 1:
		*flags |= 1u << f;
		return 1;
	case 0:
		*flags &= ~(1u << f);
		return 1;
	default:
		return *flags & (1u << f) ? 1 : -1;
	}
}

/*
 * Branch flags: setbflag(f), resetbflag(f), isbflagset(f) act on branch
 * 0 (tm_ctx_bflags()); the *biflag*(f, idx) forms on branch idx.
 */
static int core_bflag(struct script_call *c)
{
	long long f = arg_i(c, 0);
	long long idx = c->nargs > 1 ? arg_i(c, 1) : 0;
	uint32_t *flags;

	if (!flag_ok(f) || idx < 0 || idx >= TM_MAX_BRANCHES)
		return -1;
	flags = tm_ctx_bflags(c->ctx, (unsigned)idx);
	return flags ? flag_op(c, flags, (unsigned)f) : -1;
}

static int core_seturi(struct script_call *c)
{
	return ok(tm_ctx_set_ruri(c->ctx, arg_s(c, 0)));
}

static int core_setuser(struct script_call *c)
{
	return ok(script_ruri_set_part(c, SCRIPT_URI_USER, arg_s(c, 0)));
}

static int core_sethost(struct script_call *c)
{
	return ok(script_ruri_set_part(c, SCRIPT_URI_HOST, arg_s(c, 0)));
}

static int core_setdsturi(struct script_call *c)
{
	return ok(tm_ctx_set_duri(c->ctx, arg_s(c, 0)));
}

static int core_resetdsturi(struct script_call *c)
{
	return ok(tm_ctx_set_duri(c->ctx, SLICE_NULL));
}

static int core_isdsturiset(struct script_call *c)
{
	return tm_ctx_duri(c->ctx).len ? 1 : -1;
}

static int uri_is_myself(struct script_call *c, struct slice uri)
{
	struct sip_uri u;
	const char *why;

	if (c->ctx->sh == NULL || sip_uri_parse(&u, uri, &why))
		return -1;
	return tm_is_myself(c->ctx->sh, &u, true) ? 1 : -1;
}

static int core_is_myself(struct script_call *c)
{
	return uri_is_myself(c, arg_s(c, 0));
}

/* is_myself_ruri (the Request-URI as the script has set it), _furi and
 * _turi: the exp's arg is SIP_HDR_FROM, SIP_HDR_TO, or SIP_HDR_OTHER for
 * the Request-URI. */
static int core_is_myself_hdr_uri(struct script_call *c)
{
	const struct sip_addr *a;
	struct sip_msg *m = c->ctx->msg;

	if (c->exp->arg == SIP_HDR_OTHER)
		return uri_is_myself(c, tm_ctx_ruri(c->ctx));
	if (m == NULL || (c->exp->arg == SIP_HDR_FROM ? sip_msg_from(&a, m)
	                                              : sip_msg_to(&a, m)))
		return -1;
	return uri_is_myself(c, a->uri);
}

static int core_is_myself_srcip(struct script_call *c)
{
	return c->ctx->sh && c->ctx->rx &&
	                       tm_is_myself_ip(c->ctx->sh, &c->ctx->rx->src)
	               ? 1
	               : -1;
}

static int core_is_proto(struct script_call *c)
{
	return c->ctx->rx && c->ctx->rx->proto == (enum net_proto)c->exp->arg
	               ? 1
	               : -1;
}

/* set_reply_no_connect(), set_forward_no_connect(), set_reply_close(),
 * set_forward_close(), add_local_rport(): the exp's arg is the
 * tm_req_option they set. */
static int core_option(struct script_call *c)
{
	return tm_ctx_set_option(c->ctx, (enum tm_req_option)c->exp->arg, true);
}

/* t_set_auto_inv_100(state), t_set_disable_6xx(state): the exp's arg is
 * the tm_req_option, set or cleared by state. */
static int tm_option_state(struct script_call *c)
{
	return tm_ctx_set_option(c->ctx, (enum tm_req_option)c->exp->arg,
	                         arg_i(c, 0) != 0);
}

/* The source address family: the exp's arg is AF_INET or AF_INET6. */
static int core_is_af(struct script_call *c)
{
	return c->ctx->rx && c->ctx->rx->src.sa.sa_family == (int)c->exp->arg
	               ? 1
	               : -1;
}

/* is_src_port(p) (the exp's arg 0) and is_dst_port(p) (1). */
static int core_is_port(struct script_call *c)
{
	const struct net_rx *rx = c->ctx->rx;
	unsigned port;

	if (rx == NULL)
		return -1;
	port = c->exp->arg ? (rx->lst ? rx->lst->port : 0)
	                   : net_addr_port(&rx->src);
	return (long long)port == arg_i(c, 0) ? 1 : -1;
}

static int core_get_debug(struct script_call *c)
{
	(void)c;
	return log_get_level();
}

/* Script flags: this route run's own (Kamailio keeps them per process,
 * cleared for each message). */
static int core_sflag(struct script_call *c)
{
	long long f = arg_i(c, 0);

	return flag_ok(f) ? flag_op(c, &c->ctx->sflags, (unsigned)f) : -1;
}

/* is_myself_suri(): the message came from one of this proxy's own
 * addresses and ports (a request it sent to itself). */
static int core_is_myself_suri(struct script_call *c)
{
	const struct net_rx *rx = c->ctx->rx;
	char host[64], uri[96];
	struct sip_uri u;
	const char *why;

	if (rx == NULL)
		return -1;
	net_addr_host(host, sizeof(host), &rx->src);
	snprintf(uri, sizeof(uri), "sip:%s:%u;transport=%s", host,
	         net_addr_port(&rx->src), rx->proto == NET_TCP ? "tcp" : "udp");
	return sip_uri_parse(&u, slice_cstr(uri), &why) == 0 &&
	                       tm_is_myself(c->ctx->sh, &u, false)
	               ? 1
	               : -1;
}

static int core_forward(struct script_call *c)
{
	return tm_t_forward(c->ctx, c->nargs ? arg_s(c, 0) : SLICE_NULL);
}

/* Marks the message to be dropped without stopping the script. */
static int core_set_drop(struct script_call *c)
{
	c->ctx->drop = true;
	return 1;
}

/* --------------------------------------------------------------------- x */

static int x_exit(struct script_call *c)
{
	c->ctx->exit = true;
	return 0;
}

static int x_drop(struct script_call *c)
{
	c->ctx->drop = true;
	c->ctx->exit = true;
	return 0;
}

/*
 * KSR.x.modf("name", ...): any function by its name alone, the arguments
 * as strings or integers converted to its signature (kamailio.cfg's
 * untyped call). The result: its integer (a boolean as 1/-1, nothing as 1)
 * or its value.
 */
static int x_modf(struct script_call *c)
{
	const char *name = arg_s(c, 0).p;
	const struct script_export *e = script_export_find(name);
	struct script_val args[SCRIPT_MAX_ARGS];
	struct script_call sub;
	unsigned n = 0, have = c->nargs - 1;
	int ret;

	if (e == NULL)
		return script_call_error(c, "no function %s", name);
	if (e->fn == x_modf)
		return script_call_error(c, "modf cannot call itself");
	for (const char *p = e->params; *p; p++) {
		const struct script_val *a;

		if (*p == '*') {
			for (; n < have; n++)
				args[n] = c->args[n + 1];
			break;
		}
		if (n >= have)
			return script_call_error(c, "%s: missing argument #%u",
			                         name, n + 1);
		a = &c->args[n + 1];
		args[n] = *a;
		if (*p == 's') {
			args[n].type = SCRIPT_VAL_STR;
		} else if (a->type != SCRIPT_VAL_INT) {
			char *end;
			errno = 0;
			args[n].i = strtoll(a->s.p, &end, 10);
			if (a->s.len == 0 || *end || errno)
				return script_call_error(
				        c, "%s: argument #%u is not an integer",
				        name, n + 1);
			args[n].type = SCRIPT_VAL_INT;
		}
		n++;
	}
	sub = *c;
	sub.exp = e;
	sub.args = args;
	sub.nargs = n;
	ret = e->fn(&sub);
	if (sub.error) {
		/* sub.error is the buffer script_call_error() writes. */
		char msg[sizeof(c->script->errbuf)];
		snprintf(msg, sizeof(msg), "%s", sub.error);
		return script_call_error(c, "%s: %s", name, msg);
	}
	switch (e->ret) {
	case SCRIPT_RET_VAL:
		c->ret = sub.ret;
		break;
	case SCRIPT_RET_BOOL:
		script_ret_int(c, ret > 0 ? 1 : -1);
		break;
	case SCRIPT_RET_INT:
		script_ret_int(c, ret);
		break;
	default:
		script_ret_int(c, 1);
	}
	return ret;
}

/* ------------------------------------------------------------------ xlog */

/* Kamailio's xlog: the format's pseudo-variables expanded, then logged. */
static void xlog_at(struct script_call *c, int level, struct slice fmt)
{
	char line[4096];
	size_t n = script_pv_format(c, fmt, line, sizeof(line));

	LOG_AT(level, "%.*s", (int)n, line);
}

/* KSR.xlog.xinfo(fmt) ...: the exp's arg is the level. */
static int xlog_fixed(struct script_call *c)
{
	xlog_at(c, (int)c->exp->arg, arg_s(c, 0));
	return 1;
}

/* KSR.xlog.xlog(level, fmt) */
static int xlog_level(struct script_call *c)
{
	xlog_at(c, level_named(arg_s(c, 0), true), arg_s(c, 1));
	return 1;
}

/*
 * 1 when the POSIX extended regex pattern (compiled with flags added)
 * matches text, -1 when it does not or text is NULL; a pattern that does
 * not compile is a script error.
 */
static int regex_matches(struct script_call *c, struct slice pattern, int flags,
                         const char *text)
{
	char buf[512];
	regex_t re;
	int err;

	if (pattern.len >= sizeof(buf))
		return script_call_error(c, "regex longer than %zu bytes",
		                         sizeof(buf) - 1);
	slice_copy_cstr(buf, sizeof(buf), pattern);
	err = regcomp(&re, buf, REG_EXTENDED | flags);
	if (err) {
		regerror(err, &re, buf, sizeof(buf));
		return script_call_error(c, "bad regex: %s", buf);
	}
	err = text ? regexec(&re, text, 0, NULL, 0) : REG_NOMATCH;
	regfree(&re);
	return err == 0 ? 1 : -1;
}

/* -------------------------------------------------------------------- sl */

static int sl_reply(struct script_call *c, unsigned code, struct slice reason)
{
	int ret = tm_sl_reply(c->ctx, code, reason);

	if (ret > 0 && code >= 200)
		script_note_answered(c);
	return ret;
}

static int sl_send_reply(struct script_call *c)
{
	if (!code_ok(arg_i(c, 0)))
		return -1;
	return sl_reply(c, (unsigned)arg_i(c, 0), arg_s(c, 1));
}

static int sl_reply_error(struct script_call *c)
{
	int ret = tm_sl_reply_error(c->ctx);

	if (ret > 0)
		script_note_answered(c);
	return ret;
}

/* -------------------------------------------------------------------- tm */

static int relayed(struct script_call *c, int ret)
{
	/* -1 is the only result after which nothing answered the request:
	 * other negative codes are replies tm sent itself. */
	if (ret != -1)
		script_note_answered(c);
	return ret;
}

static int tm_relay(struct script_call *c)
{
	return relayed(c, tm_t_relay(c->ctx, NULL, SLICE_NULL, 0));
}

/* tm takes the lower-case transport names; NULL for one it has not. */
static const char *relay_proto(struct slice proto, const char *fn)
{
	if (slice_eq_cstr_nocase(proto, "udp"))
		return "udp";
	if (slice_eq_cstr_nocase(proto, "tcp"))
		return "tcp";
	LOG_ERR("script: %s: unsupported proto %.*s", fn, SLICE_ARG(proto));
	return NULL;
}

static int tm_relay_to_proto_addr(struct script_call *c)
{
	const char *name = relay_proto(arg_s(c, 0), "t_relay_to_proto_addr");
	long long port = arg_i(c, 2);

	if (name == NULL || port < 0 || port > 65535 || arg_s(c, 1).len == 0)
		return -1;
	return relayed(c,
	               tm_t_relay(c->ctx, name, arg_s(c, 1), (unsigned)port));
}

/* t_relay_to_proto(proto): to the Request-URI's (or $du's) host, over
 * that transport whatever the URI says. */
static int tm_relay_to_proto(struct script_call *c)
{
	const char *name = relay_proto(arg_s(c, 0), "t_relay_to_proto");

	if (name == NULL)
		return -1;
	return relayed(c, tm_t_relay(c->ctx, name, SLICE_NULL, 0));
}

static int tm_on_failure(struct script_call *c)
{
	return tm_t_on_failure(c->ctx, arg_s(c, 0).p);
}

static int tm_on_branch(struct script_call *c)
{
	return tm_t_on_branch(c->ctx, arg_s(c, 0).p);
}

static int tm_on_reply(struct script_call *c)
{
	return tm_t_on_reply(c->ctx, arg_s(c, 0).p);
}

static int tm_check_trans(struct script_call *c)
{
	return tm_t_check_trans(c->ctx);
}

static int tm_newtran(struct script_call *c)
{
	return tm_t_newtran(c->ctx);
}

static int tm_reply(struct script_call *c)
{
	int ret;

	if (!code_ok(arg_i(c, 0)))
		return -1;
	ret = tm_t_reply(c->ctx, (unsigned)arg_i(c, 0), arg_s(c, 1));
	if (ret > 0 && arg_i(c, 0) >= 200)
		script_note_answered(c);
	return ret;
}

static int tm_is_set(struct script_call *c)
{
	return tm_t_is_set(c->ctx, arg_s(c, 0));
}

static int tm_is_canceled(struct script_call *c)
{
	return tm_t_is_canceled(c->ctx);
}

static int tm_set_fr(struct script_call *c)
{
	long long inv = arg_i(c, 0), noninv = arg_i(c, 1);

	if (inv < 0 || noninv < 0 || inv > 86400000 || noninv > 86400000)
		return -1;
	return tm_t_set_fr(c->ctx, (unsigned)inv, (unsigned)noninv);
}

static int tm_branch_timeout(struct script_call *c)
{
	return tm_t_branch_timeout(c->ctx);
}

static int tm_get_status_code(struct script_call *c)
{
	return tm_t_status_code(c->ctx);
}

/* t_check_status(re): 1 when the status code (tm_t_status_code()), as
 * text, matches the POSIX extended regex. */
static int tm_check_status(struct script_call *c)
{
	int code = tm_t_status_code(c->ctx);
	char text[16];

	snprintf(text, sizeof(text), "%d", code);
	return regex_matches(c, arg_s(c, 0), REG_NOSUB, code > 0 ? text : NULL);
}

/* t_get_branch_index(): as Kamailio's (checked on 5.6), the branch a
 * branch or onreply route is about, in a failure route the index a new
 * branch would take; -1 elsewhere. */
static int tm_get_branch_index(struct script_call *c)
{
	switch (c->ctx->route) {
	case TM_ROUTE_BRANCH:
	case TM_ROUTE_ONREPLY:
		return (int)c->ctx->branch;
	case TM_ROUTE_FAILURE:
		return tm_t_branch_count(c->ctx);
	default:
		return -1;
	}
}

static int tm_any_replied(struct script_call *c)
{
	return tm_t_any_replied(c->ctx);
}

static int tm_branch_replied(struct script_call *c)
{
	return tm_t_branch_replied(c->ctx);
}

static int tm_any_timeout(struct script_call *c)
{
	return tm_t_any_timeout(c->ctx);
}

static int tm_grep_status(struct script_call *c)
{
	long long code = arg_i(c, 0);

	return code >= 100 && code <= 699
	               ? tm_t_grep_status(c->ctx, (unsigned)code)
	               : -1;
}

static int tm_drop_replies(struct script_call *c)
{
	return tm_t_drop_replies(c->ctx, c->nargs ? arg_s(c, 0) : SLICE_NULL);
}

/* KSR.tmx.t_is_*_route(): the exp's arg is a mask of route types. */
static int tmx_is_route(struct script_call *c)
{
	return (c->exp->arg >> c->ctx->route) & 1 ? 1 : -1;
}

/*
 * KSR.tmx.t_precheck_trans(): true in Kamailio while another process
 * handles a copy of the request (a retransmission that came in before
 * the first copy had its transaction). A call's messages are handled one
 * at a time on its shard, so that never happens here; a retransmission
 * meets its transaction in t_check_trans() or t_relay(), as in Kamailio.
 */
static int tmx_precheck_trans(struct script_call *c)
{
	(void)c;
	return -1;
}

/* ---------------------------------------------------------------- sanity */

/* checks and uri_checks 0: the module's default_checks and uri_checks */
static int sanity_run(struct script_call *c, unsigned checks,
                      unsigned uri_checks)
{
	int ret = tm_sanity_check(c->ctx, checks, uri_checks);

	if (c->ctx->sanity_replied)
		script_note_answered(c);
	return ret;
}

static int sanity_check(struct script_call *c)
{
	long long checks = arg_i(c, 0), uri_checks = arg_i(c, 1);

	if (checks < 1 || checks > SIP_SANITY_ALL)
		return script_call_error(c, "checks %lld out of 1..%d", checks,
		                         SIP_SANITY_ALL);
	if (uri_checks < 1 || uri_checks > SIP_SANITY_URI_ALL)
		return script_call_error(c, "uri_checks %lld out of 1..%d",
		                         uri_checks, SIP_SANITY_URI_ALL);
	return sanity_run(c, (unsigned)checks, (unsigned)uri_checks);
}

static int sanity_check_defaults(struct script_call *c)
{
	return sanity_run(c, 0, 0);
}

static int sanity_reply(struct script_call *c)
{
	int ret = tm_sanity_reply(c->ctx);

	if (ret > 0)
		script_note_answered(c);
	return ret;
}

/* -------------------------------------------------------------------- rr */

static int rr_record(struct script_call *c)
{
	return rr_record_route(c->ctx, c->script->rr, SLICE_NULL);
}

static int rr_record_params(struct script_call *c)
{
	return rr_record_route(c->ctx, c->script->rr, arg_s(c, 0));
}

static int rr_loose(struct script_call *c)
{
	return rr_loose_route(c->ctx);
}

static int rr_add_param(struct script_call *c)
{
	return rr_add_rr_param(c->ctx, arg_s(c, 0));
}

static int rr_check_param(struct script_call *c)
{
	return rr_check_route_param(c->ctx, arg_s(c, 0).p);
}

static int rr_direction(struct script_call *c)
{
	return rr_is_direction(c->ctx, arg_s(c, 0).p);
}

/* ------------------------------------------- maxfwd, siputils, corex */

static int maxfwd_process(struct script_call *c)
{
	long long limit = arg_i(c, 0);

	/* Kamailio's maxfwd accepts limits up to 256. */
	if (limit < 0 || limit > 256)
		return -2;
	return tm_process_maxfwd(c->ctx, (unsigned)limit);
}

static int siputils_has_totag(struct script_call *c)
{
	return c->ctx->msg && sip_msg_has_to_tag(c->ctx->msg) ? 1 : -1;
}

/* is_request() / is_reply(): the exp's arg is what is_request must be. */
static int siputils_is_kind(struct script_call *c)
{
	return c->ctx->msg && c->ctx->msg->is_request == (bool)c->exp->arg ? 1
	                                                                   : -1;
}

/* A request with one Via came from the UA itself; a reply with two is
 * on its way to it (Kamailio's is_first_hop()). */
static int siputils_is_first_hop(struct script_call *c)
{
	struct sip_msg *m = c->ctx->msg;
	struct sip_elem_iter it;
	struct slice elem;
	unsigned n = 0;

	if (m == NULL)
		return -1;
	sip_elem_iter_init(&it, m, SIP_HDR_VIA);
	while (n < 3 && sip_elem_next(&elem, &it) == 0)
		n++;
	return n == (m->is_request ? 1u : 2u) ? 1 : -1;
}

/* is_tel_number(): an optional '+' and a digit 1-9, then digits; else
 * Kamailio's -2. */
static int siputils_is_tel_number(struct script_call *c)
{
	struct slice s = arg_s(c, 0);
	size_t i = 0;

	if (s.len == 0)
		return -2;
	if (s.p[0] == '+') {
		if (s.len < 2 || s.p[1] < '1' || s.p[1] > '9')
			return -2;
		i = 2;
	}
	for (; i < s.len; i++)
		if (s.p[i] < '0' || s.p[i] > '9')
			return -2;
	return 1;
}

/* is_numeric(), is_alphanum(), is_alphanumex(s, extra): Kamailio's -2 for
 * an empty value; for a byte outside the class -2 (is_numeric) or -3. */
static int siputils_is_class(struct script_call *c)
{
	struct slice s = arg_s(c, 0);
	struct slice extra = c->nargs > 1 ? arg_s(c, 1) : SLICE_NULL;
	bool alnum = c->exp->arg;

	if (s.len == 0)
		return -2;
	for (size_t i = 0; i < s.len; i++) {
		unsigned char b = (unsigned char)s.p[i];
		bool ok = (b >= '0' && b <= '9') ||
		          (alnum && ((b >= 'a' && b <= 'z') ||
		                     (b >= 'A' && b <= 'Z'))) ||
		          (extra.len && memchr(extra.p, b, extra.len));
		if (!ok)
			return alnum ? -3 : -2;
	}
	return 1;
}

static int siputils_is_uri(struct script_call *c)
{
	struct sip_uri u;
	const char *why;

	return sip_uri_parse(&u, arg_s(c, 0), &why) == 0 ? 1 : -1;
}

/* uri_param(name), uri_param_value(name, value), uri_param_any(name): a
 * parameter of the Request-URI without a value / with exactly this value /
 * with or without one (exp's arg 1), as Kamailio's. The name's case does
 * not matter (RFC 3261 §19.1.4); Kamailio's compares it case-sensitively. */
static int siputils_uri_param(struct script_call *c)
{
	struct sip_uri u;
	struct slice v;
	const char *why;
	char name[64];

	if (sip_uri_parse(&u, tm_ctx_ruri(c->ctx), &why) ||
	    arg_s(c, 0).len >= sizeof(name))
		return -1;
	slice_copy_cstr(name, sizeof(name), arg_s(c, 0));
	if (!sip_param_find(&v, u.params, name))
		return -1;
	if (c->exp->arg)
		return 1;
	return slice_eq(v, c->nargs < 2 ? SLICE_NULL : arg_s(c, 1)) ? 1 : -1;
}

/* uri_param_rm(name): the Request-URI without its parameters of that name
 * (any case); 1 (also when it has none, as Kamailio's), or -1 for a
 * Request-URI that does not parse. */
static int siputils_uri_param_rm(struct script_call *c)
{
	struct slice ruri = tm_ctx_ruri(c->ctx), name = arg_s(c, 0);
	struct slice rest;
	struct sip_uri u;
	const char *why;
	char buf[1024];
	size_t n;
	bool removed = false;

	if (name.len == 0 || sip_uri_parse(&u, ruri, &why) ||
	    ruri.len > sizeof(buf))
		return -1;
	if (u.params.len == 0)
		return 1;
	/* everything before the parameters' ';', then each kept ";param" */
	n = (size_t)(u.params.p - 1 - ruri.p);
	memcpy(buf, ruri.p, n);
	rest = u.params;
	while (rest.len > 0) {
		const char *semi = memchr(rest.p, ';', rest.len);
		struct slice one = slice_make(
		        rest.p, semi ? (size_t)(semi - rest.p) : rest.len);
		const char *eq = memchr(one.p, '=', one.len);
		struct slice pname =
		        slice_make(one.p, eq ? (size_t)(eq - one.p) : one.len);

		if (slice_eq_nocase(pname, name)) {
			removed = true;
		} else {
			buf[n++] = ';';
			memcpy(buf + n, one.p, one.len);
			n += one.len;
		}
		rest.p += one.len + (semi != NULL);
		rest.len -= one.len + (semi != NULL);
	}
	/* the headers, if any, as they were */
	if (u.headers.len) {
		size_t from = (size_t)(u.headers.p - 1 - ruri.p);
		memcpy(buf + n, ruri.p + from, ruri.len - from);
		n += ruri.len - from;
	}
	if (!removed)
		return 1;
	return tm_ctx_set_ruri(c->ctx, slice_make(buf, n)) == 0 ? 1 : -1;
}

/* add_uri_param(param): ";param" at the end of the Request-URI's
 * parameters (before any headers). */
static int siputils_add_uri_param(struct script_call *c)
{
	struct slice ruri = tm_ctx_ruri(c->ctx), param = arg_s(c, 0);
	struct sip_uri u;
	const char *why;
	char buf[1024];
	size_t head;

	if (param.len == 0 || sip_uri_parse(&u, ruri, &why) ||
	    u.scheme == SIP_URI_TEL || ruri.len + param.len + 1 > sizeof(buf))
		return -1;
	/* the headers start at '?': the parameter goes before them */
	head = u.headers.len ? (size_t)(u.headers.p - 1 - ruri.p) : ruri.len;
	memcpy(buf, ruri.p, head);
	buf[head] = ';';
	memcpy(buf + head + 1, param.p, param.len);
	memcpy(buf + head + 1 + param.len, ruri.p + head, ruri.len - head);
	return tm_ctx_set_ruri(c->ctx,
	                       slice_make(buf, ruri.len + param.len + 1)) == 0
	               ? 1
	               : -1;
}

static int corex_has_ruri_user(struct script_call *c)
{
	struct sip_uri u;
	const char *why;

	return sip_uri_parse(&u, tm_ctx_ruri(c->ctx), &why) == 0 && u.user.len
	               ? 1
	               : -1;
}

static int corex_append_branch(struct script_call *c)
{
	return tm_append_branch(c->ctx, SLICE_NULL);
}

static int corex_append_branch_uri(struct script_call *c)
{
	return tm_append_branch(c->ctx, arg_s(c, 0));
}

/* ------------------------------------------------------------------- hdr */

static int hdr_append(struct script_call *c)
{
	/* the exp's arg: 1 for insert() (before the first header) */
	return ok(tm_ctx_hdr_append(c->ctx, arg_s(c, 0), c->exp->arg));
}

static int core_force_rport(struct script_call *c)
{
	return tm_ctx_force_rport(c->ctx);
}

static int hdr_remove(struct script_call *c)
{
	return tm_ctx_hdr_remove(c->ctx, arg_s(c, 0)) < 0 ? -1 : 1;
}

static int hdr_is_present(struct script_call *c)
{
	return c->ctx->msg && sip_msg_hdr_by_name(c->ctx->msg, arg_s(c, 0))
	               ? 1
	               : -1;
}

static int textops_has_body(struct script_call *c)
{
	return c->ctx->msg && c->ctx->msg->body.len > 0 ? 1 : -1;
}

/*
 * textops' search() (the exp's arg 0: the whole message) and
 * search_body() (1): 1 when the POSIX extended regex, case-insensitive,
 * matches (up to a NUL in the text, as in Kamailio). A regex that does
 * not compile is a script error.
 */
static int textops_search(struct script_call *c)
{
	struct sip_msg *m = c->ctx->msg;

	if (m == NULL)
		return -1;
	struct slice where = c->exp->arg ? m->body : slice_make(m->buf, m->len);
	/* regexec() wants a C string (REG_STARTEND would spare the copy,
	 * but the sanitizers' regexec() reads to a NUL regardless) */
	char *copy = arena_strdup(c->ctx->arena, where);
	return regex_matches(c, arg_s(c, 0), REG_ICASE | REG_NEWLINE, copy);
}

/* cmp_str(a, b), cmp_istr(a, b) (exp's arg 1: any case): Kamailio's 1
 * when equal, -1 when a sorts after b, -2 when before. */
static int textops_cmp(struct script_call *c)
{
	struct slice a = arg_s(c, 0), b = arg_s(c, 1);
	size_t n = a.len < b.len ? a.len : b.len;
	int d = 0;

	for (size_t i = 0; i < n && d == 0; i++) {
		int x = (unsigned char)a.p[i], y = (unsigned char)b.p[i];
		if (c->exp->arg) {
			x = tolower(x);
			y = tolower(y);
		}
		d = x - y;
	}
	if (d == 0)
		d = a.len < b.len ? -1 : a.len > b.len;
	return d == 0 ? 1 : d > 0 ? -1 : -2;
}

/* starts_with(s, prefix): Kamailio's 1, or as cmp_str() -1 / -2 by the
 * first byte that differs; -1 for an s shorter than prefix. */
static int textops_starts_with(struct script_call *c)
{
	struct slice s = arg_s(c, 0), prefix = arg_s(c, 1);
	int d;

	if (s.len < prefix.len)
		return -1;
	d = prefix.len ? memcmp(s.p, prefix.p, prefix.len) : 0;
	return d == 0 ? 1 : d > 0 ? -1 : -2;
}

/* in_list(subject, list, sep), in_list_prefix() (exp's arg 1): subject is
 * an item of list (items split at the first byte of sep, blanks around
 * them ignored) / starts with one, as Kamailio's. */
static int textops_in_list(struct script_call *c)
{
	struct slice subject = arg_s(c, 0), rest = arg_s(c, 1);
	struct slice sep = arg_s(c, 2);

	if (sep.len == 0)
		return -1;
	while (rest.len > 0) {
		const char *at = memchr(rest.p, sep.p[0], rest.len);
		struct slice item = slice_trim(slice_make(
		        rest.p, at ? (size_t)(at - rest.p) : rest.len));
		if (c->exp->arg
		            ? item.len > 0 && subject.len >= item.len &&
		                      memcmp(subject.p, item.p, item.len) == 0
		            : slice_eq(subject, item))
			return 1;
		if (at == NULL)
			break;
		rest = slice_make(at + 1, (size_t)(rest.p + rest.len - at - 1));
	}
	return -1;
}

static int hdr_append_to_reply(struct script_call *c)
{
	return ok(tm_ctx_append_to_reply(c->ctx, arg_s(c, 0)));
}

static int hdr_get(struct script_call *c)
{
	const struct sip_hdr *h =
	        c->ctx->msg ? sip_msg_hdr_by_name(c->ctx->msg, arg_s(c, 0))
	                    : NULL;

	if (h)
		script_ret_str(c, h->value);
	return 1;
}

/* ------------------------------------------------------------ xhttp_prom */

/* The label values of a prom call: its arguments from first on. */
static unsigned prom_labels(const struct script_call *c, unsigned first,
                            struct slice labels[PROM_LABELS_MAX])
{
	unsigned n = 0;

	for (unsigned i = first; i < c->nargs && n < PROM_LABELS_MAX; i++)
		labels[n++] = arg_s(c, i);
	return n;
}

static int prom_inc(struct script_call *c)
{
	struct slice l[PROM_LABELS_MAX];
	unsigned n = prom_labels(c, 2, l);

	return prom_counter_inc(arg_s(c, 0), arg_i(c, 1), l, n);
}

/* counter_reset_l*, gauge_reset_l*: the exp's arg is the prom_kind. */
static int prom_zero(struct script_call *c)
{
	struct slice l[PROM_LABELS_MAX];
	unsigned n = prom_labels(c, 1, l);

	return prom_reset(arg_s(c, 0), (enum prom_kind)c->exp->arg, l, n);
}

/* gauge_set_l*, histogram_observe_l*: the exp's arg is the prom_kind. */
static int prom_put(struct script_call *c)
{
	struct slice l[PROM_LABELS_MAX];
	unsigned n = prom_labels(c, 2, l);

	return prom_value((enum prom_kind)c->exp->arg, arg_s(c, 0), arg_s(c, 1),
	                  l, n);
}

/* ----------------------------------------------------------------- table */

#define ANY SCRIPT_EXP_ANYWHERE
#define R_N SCRIPT_RET_NONE
#define R_I SCRIPT_RET_INT
#define R_B SCRIPT_RET_BOOL
#define R_V SCRIPT_RET_VAL

#define IS_METHOD_ROW(m)                                                       \
	{"", "is_" #m, core_is_method_id, "", R_B, 0, SIP_METHOD_##m},

/* Kamailio's four arities of an xhttp_prom function: name_l0 ... name_l3,
 * params then 0 to 3 label values. */
#define PROM_ROWS(name, fn, params, arg)                                       \
	{"xhttp_prom", name "_l0", fn, params, R_I, ANY, arg},                 \
	        {"xhttp_prom", name "_l1", fn, params "s", R_I, ANY, arg},     \
	        {"xhttp_prom", name "_l2", fn, params "ss", R_I, ANY, arg},    \
	        {"xhttp_prom", name "_l3", fn, params "sss", R_I, ANY, arg},

const struct script_export script_ksr_exports[] = {
        {"", "dbg", core_log, "s", R_N, ANY, LL_DBG},
        {"", "info", core_log, "s", R_N, ANY, LL_INFO},
        {"", "notice", core_log, "s", R_N, ANY, LL_NOTICE},
        {"", "warn", core_log, "s", R_N, ANY, LL_WARN},
        {"", "err", core_log, "s", R_N, ANY, LL_ERR},
        {"", "crit", core_log, "s", R_N, ANY, LL_CRIT},
        {"", "log", core_log_level, "ss", R_N, ANY, 0},
        /* clang-format off */
        SIP_METHOD_LIST(IS_METHOD_ROW)
        /* clang-format on */
        {"", "is_method", core_is_method, "s", R_B, 0, 0},
        {"", "is_method_in", core_is_method_in, "s", R_B, 0, 0},
        {"", "is_UDP", core_is_proto, "", R_B, 0, NET_UDP},
        {"", "is_TCP", core_is_proto, "", R_B, 0, NET_TCP},
        /* transports imsdlgd has no listener for: never true */
        {"", "is_TLS", core_is_proto, "", R_B, 0, -1},
        {"", "is_WS", core_is_proto, "", R_B, 0, -1},
        {"", "is_WSS", core_is_proto, "", R_B, 0, -1},
        {"", "is_SCTP", core_is_proto, "", R_B, 0, -1},
        {"", "is_IPv4", core_is_af, "", R_B, 0, AF_INET},
        {"", "is_IPv6", core_is_af, "", R_B, 0, AF_INET6},
        {"", "is_src_port", core_is_port, "i", R_B, 0, 0},
        {"", "is_dst_port", core_is_port, "i", R_B, 0, 1},
        {"", "get_debug", core_get_debug, "", R_I, ANY, 0},
        {"", "setsflag", core_sflag, "i", R_B, 0, 1},
        {"", "resetsflag", core_sflag, "i", R_B, 0, 0},
        {"", "issflagset", core_sflag, "i", R_B, 0, 2},
        {"", "forward", core_forward, "", R_I, 0, 0},
        {"", "forward_uri", core_forward, "s", R_I, 0, 0},
        {"", "setflag", core_setflag, "i", R_B, 0, 0},
        {"", "resetflag", core_resetflag, "i", R_B, 0, 0},
        {"", "isflagset", core_isflagset, "i", R_B, 0, 0},
        {"", "setbflag", core_bflag, "i", R_B, 0, 1},
        {"", "resetbflag", core_bflag, "i", R_B, 0, 0},
        {"", "isbflagset", core_bflag, "i", R_B, 0, 2},
        {"", "setbiflag", core_bflag, "ii", R_B, 0, 1},
        {"", "resetbiflag", core_bflag, "ii", R_B, 0, 0},
        {"", "isbiflagset", core_bflag, "ii", R_B, 0, 2},
        {"", "seturi", core_seturi, "s", R_B, 0, 0},
        {"", "setuser", core_setuser, "s", R_B, 0, 0},
        {"", "sethost", core_sethost, "s", R_B, 0, 0},
        {"", "setdsturi", core_setdsturi, "s", R_B, 0, 0},
        {"", "resetdsturi", core_resetdsturi, "", R_B, 0, 0},
        {"", "isdsturiset", core_isdsturiset, "", R_B, 0, 0},
        {"", "is_myself", core_is_myself, "s", R_B, 0, 0},
        {"", "is_myself_ruri", core_is_myself_hdr_uri, "", R_B, 0,
         SIP_HDR_OTHER},
        {"", "is_myself_furi", core_is_myself_hdr_uri, "", R_B, 0,
         SIP_HDR_FROM},
        {"", "is_myself_turi", core_is_myself_hdr_uri, "", R_B, 0, SIP_HDR_TO},
        {"", "is_myself_srcip", core_is_myself_srcip, "", R_B, 0, 0},
        {"", "is_myself_suri", core_is_myself_suri, "", R_B, 0, 0},
        {"", "set_drop", core_set_drop, "", R_N, 0, 0},
        {"", "drop", core_set_drop, "", R_N, 0, 0},
        {"", "force_rport", core_force_rport, "", R_I, 0, 0},
        {"", "add_local_rport", core_option, "", R_B, 0, TM_OPT_LOCAL_RPORT},
        {"", "set_reply_no_connect", core_option, "", R_B, 0,
         TM_OPT_REPLY_NO_CONNECT},
        {"", "set_forward_no_connect", core_option, "", R_B, 0,
         TM_OPT_FORWARD_NO_CONNECT},
        {"", "set_reply_close", core_option, "", R_B, 0, TM_OPT_REPLY_CLOSE},
        {"", "set_forward_close", core_option, "", R_B, 0,
         TM_OPT_FORWARD_CLOSE},

        {"xlog", "xdbg", xlog_fixed, "s", R_I, ANY, LL_DBG},
        {"xlog", "xinfo", xlog_fixed, "s", R_I, ANY, LL_INFO},
        {"xlog", "xnotice", xlog_fixed, "s", R_I, ANY, LL_NOTICE},
        {"xlog", "xwarn", xlog_fixed, "s", R_I, ANY, LL_WARN},
        {"xlog", "xerr", xlog_fixed, "s", R_I, ANY, LL_ERR},
        {"xlog", "xbug", xlog_fixed, "s", R_I, ANY, LL_CRIT},
        {"xlog", "xcrit", xlog_fixed, "s", R_I, ANY, LL_CRIT},
        {"xlog", "xalert", xlog_fixed, "s", R_I, ANY, LL_CRIT},
        {"xlog", "xlog", xlog_level, "ss", R_I, ANY, 0},

        PROM_ROWS("counter_inc", prom_inc, "si",
                  0) PROM_ROWS("counter_reset", prom_zero, "s", PROM_COUNTER)
                PROM_ROWS("gauge_set", prom_put, "ss", PROM_GAUGE)
                        PROM_ROWS("gauge_reset", prom_zero, "s", PROM_GAUGE)
                                PROM_ROWS("histogram_observe", prom_put, "ss",
                                          PROM_HISTOGRAM)

                                        {"x", "exit", x_exit, "", R_N, 0, 0},
        {"x", "drop", x_drop, "", R_N, 0, 0},
        {"x", "modf", x_modf, "s*", R_V, 0, 0},

        {"sl", "sl_send_reply", sl_send_reply, "is", R_I, 0, 0},
        {"sl", "send_reply", sl_send_reply, "is", R_I, 0, 0},
        {"sl", "sl_reply_error", sl_reply_error, "", R_I, 0, 0},

        {"tm", "t_relay", tm_relay, "", R_I, 0, 0},
        {"tm", "t_relay_to_proto_addr", tm_relay_to_proto_addr, "ssi", R_I, 0,
         0},
        {"tm", "t_relay_to_proto", tm_relay_to_proto, "s", R_I, 0, 0},
        {"tm", "t_on_failure", tm_on_failure, "s", R_I, 0, 0},
        {"tm", "t_on_branch", tm_on_branch, "s", R_I, 0, 0},
        {"tm", "t_on_reply", tm_on_reply, "s", R_I, 0, 0},
        {"tm", "t_check_trans", tm_check_trans, "", R_I, 0, 0},
        {"tm", "t_newtran", tm_newtran, "", R_I, 0, 0},
        {"tm", "t_reply", tm_reply, "is", R_I, 0, 0},
        {"tm", "t_is_canceled", tm_is_canceled, "", R_I, 0, 0},
        {"tm", "t_is_set", tm_is_set, "s", R_I, 0, 0},
        {"tm", "t_set_fr", tm_set_fr, "ii", R_I, 0, 0},
        {"tm", "t_branch_timeout", tm_branch_timeout, "", R_I, 0, 0},
        {"tm", "t_any_replied", tm_any_replied, "", R_I, 0, 0},
        {"tm", "t_branch_replied", tm_branch_replied, "", R_I, 0, 0},
        {"tm", "t_set_auto_inv_100", tm_option_state, "i", R_I, 0,
         TM_OPT_AUTO_INV_100},
        {"tm", "t_set_disable_6xx", tm_option_state, "i", R_I, 0,
         TM_OPT_DISABLE_6XX},
        {"tm", "t_any_timeout", tm_any_timeout, "", R_I, 0, 0},
        {"tm", "t_grep_status", tm_grep_status, "i", R_I, 0, 0},
        {"tm", "t_drop_replies", tm_drop_replies, "s", R_I, 0, 0},
        {"tm", "t_drop_replies_all", tm_drop_replies, "", R_I, 0, 0},
        {"tm", "t_check_status", tm_check_status, "s", R_I, 0, 0},
        {"tm", "t_get_status_code", tm_get_status_code, "", R_I, 0, 0},
        {"tm", "t_get_branch_index", tm_get_branch_index, "", R_I, 0, 0},
        {"tm", "t_send_reply", tm_reply, "is", R_I, 0, 0},

        {"tmx", "t_precheck_trans", tmx_precheck_trans, "", R_I, 0, 0},
        {"tmx", "t_is_request_route", tmx_is_route, "", R_I, 0,
         1u << TM_ROUTE_REQUEST},
        {"tmx", "t_is_failure_route", tmx_is_route, "", R_I, 0,
         1u << TM_ROUTE_FAILURE},
        {"tmx", "t_is_branch_route", tmx_is_route, "", R_I, 0,
         1u << TM_ROUTE_BRANCH},
        {"tmx", "t_is_reply_route", tmx_is_route, "", R_I, 0,
         1u << TM_ROUTE_ONREPLY | 1u << TM_ROUTE_REPLY},

        {"sanity", "sanity_check", sanity_check, "ii", R_I, 0, 0},
        {"sanity", "sanity_check_defaults", sanity_check_defaults, "", R_I, 0,
         0},
        {"sanity", "sanity_reply", sanity_reply, "", R_I, 0, 0},

        {"rr", "record_route", rr_record, "", R_I, 0, 0},
        {"rr", "record_route_params", rr_record_params, "s", R_I, 0, 0},
        {"rr", "loose_route", rr_loose, "", R_I, 0, 0},
        {"rr", "add_rr_param", rr_add_param, "s", R_I, 0, 0},
        {"rr", "check_route_param", rr_check_param, "s", R_I, 0, 0},
        {"rr", "is_direction", rr_direction, "s", R_I, 0, 0},

        {"maxfwd", "process_maxfwd", maxfwd_process, "i", R_I, 0, 0},
        {"siputils", "has_totag", siputils_has_totag, "", R_I, 0, 0},
        {"siputils", "is_request", siputils_is_kind, "", R_I, 0, 1},
        {"siputils", "is_reply", siputils_is_kind, "", R_I, 0, 0},
        {"siputils", "is_first_hop", siputils_is_first_hop, "", R_I, 0, 0},
        {"siputils", "is_tel_number", siputils_is_tel_number, "s", R_I, 0, 0},
        {"siputils", "is_numeric", siputils_is_class, "s", R_I, 0, 0},
        {"siputils", "is_alphanum", siputils_is_class, "s", R_I, 0, 1},
        {"siputils", "uri_param", siputils_uri_param, "s", R_I, 0, 0},
        {"siputils", "uri_param_value", siputils_uri_param, "ss", R_I, 0, 0},
        {"siputils", "uri_param_any", siputils_uri_param, "s", R_I, 0, 1},
        {"siputils", "uri_param_rm", siputils_uri_param_rm, "s", R_I, 0, 0},
        {"siputils", "is_alphanumex", siputils_is_class, "ss", R_I, 0, 1},
        {"siputils", "is_uri", siputils_is_uri, "s", R_I, 0, 0},
        {"siputils", "add_uri_param", siputils_add_uri_param, "s", R_I, 0, 0},
        {"corex", "has_ruri_user", corex_has_ruri_user, "", R_I, 0, 0},
        {"corex", "append_branch", corex_append_branch, "", R_I, 0, 0},
        {"corex", "append_branch_uri", corex_append_branch_uri, "s", R_I, 0, 0},

        {"hdr", "append", hdr_append, "s", R_I, 0, 0},
        {"hdr", "insert", hdr_append, "s", R_I, 0, 1},
        {"hdr", "remove", hdr_remove, "s", R_I, 0, 0},
        {"hdr", "is_present", hdr_is_present, "s", R_I, 0, 0},
        {"hdr", "append_to_reply", hdr_append_to_reply, "s", R_I, 0, 0},
        {"hdr", "get", hdr_get, "s", R_V, 0, 0},
        /* textops' names for the same (Kamailio's textops KEMI) */
        {"textops", "append_hf", hdr_append, "s", R_I, 0, 0},
        {"textops", "is_present_hf", hdr_is_present, "s", R_I, 0, 0},
        {"textops", "remove_hf", hdr_remove, "s", R_I, 0, 0},
        {"textops", "has_body", textops_has_body, "", R_I, 0, 0},
        {"textops", "search", textops_search, "s", R_I, 0, 0},
        {"textops", "search_body", textops_search, "s", R_I, 0, 1},
        {"textops", "cmp_str", textops_cmp, "ss", R_I, ANY, 0},
        {"textops", "cmp_istr", textops_cmp, "ss", R_I, ANY, 1},
        {"textops", "starts_with", textops_starts_with, "ss", R_I, ANY, 0},
        {"textops", "in_list", textops_in_list, "sss", R_I, ANY, 0},
        {"textops", "in_list_prefix", textops_in_list, "sss", R_I, ANY, 1},
};

const size_t script_ksr_nexports =
        sizeof(script_ksr_exports) / sizeof(script_ksr_exports[0]);
