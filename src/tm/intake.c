/*
 * Intake: what the proxy does with a message before the script sees it
 * (RFC 3261 §16.3 request validation, reply matching) and which shard owns
 * it.
 */
#include <errno.h>
#include <string.h>

#include "tm/tm_int.h"

/* A host (a listener's, an alias's) as a URI's host: without the IPv6
 * brackets it was written with. */
static struct slice uri_host_of(struct slice h)
{
	if (h.len > 2 && h.p[0] == '[') {
		h.p++;
		h.len -= 2;
	}
	return h;
}

int tm_alias_parse(struct tm_alias *out, const char *spec, const char **why)
{
	struct net_hostport hp;
	int err = net_hostport_parse(&hp, slice_trim(slice_cstr(spec)), why);

	if (err)
		return err;
	if (hp.has_port && hp.port == 0) {
		*why = "port not 1..65535";
		return EINVAL;
	}
	hp.host = uri_host_of(hp.host);
	if (hp.host.len == 0 || hp.host.len >= sizeof(out->host)) {
		*why = hp.host.len ? "host too long" : "no host";
		return EINVAL;
	}
	memset(out, 0, sizeof(*out));
	slice_copy_cstr(out->host, sizeof(out->host), hp.host);
	out->port = hp.port;
	out->any_proto = !hp.has_proto;
	out->proto = hp.proto;
	return 0;
}

bool tm_is_myself(struct tm_shard *sh, const struct sip_uri *u,
                  bool portless_any)
{
	unsigned n;
	const struct net_listener *l = rt_listeners(sh->rt, &n);
	uint16_t port = u->has_port ? u->port : 5060;
	bool any_port = portless_any && !u->has_port;
	enum net_proto proto = NET_UDP;

	if (u->transport.len && slice_eq_cstr_nocase(u->transport, "tcp"))
		proto = NET_TCP;
	/* Ports first: they rule out most listeners (every worker port is
	 * one) before any text is looked at. */
	for (unsigned i = 0; i < n; i++, l++) {
		if (u->transport.len && l->proto != proto)
			continue;
		if (((any_port || port == l->port) &&
		     slice_eq_nocase(u->host,
		                     uri_host_of(slice_cstr(l->host)))) ||
		    ((any_port || port == l->adv_port) &&
		     slice_eq_nocase(u->host,
		                     uri_host_of(slice_cstr(l->adv_host)))))
			return true;
	}
	for (unsigned i = 0; i < sh->cfg->naliases; i++) {
		const struct tm_alias *a = &sh->cfg->aliases[i];
		if ((any_port || a->port == 0 || a->port == port) &&
		    (a->any_proto || !u->transport.len || a->proto == proto) &&
		    slice_eq_nocase(u->host, slice_cstr(a->host)))
			return true;
	}
	return false;
}

bool tm_is_myself_ip(struct tm_shard *sh, const union net_sockaddr *addr)
{
	unsigned n;
	const struct net_listener *l = rt_listeners(sh->rt, &n);

	for (unsigned i = 0; i < n; i++, l++) {
		union net_sockaddr a = *addr;

		net_addr_set_port(&a, l->port);
		if (net_addr_eq(&a, &l->addr))
			return true;
	}
	return false;
}

/* A stateless reply refusing a request the proxy cannot take: counted as
 * sl's error replies too. */
static void refuse(struct tm_shard *sh, struct sip_msg *m,
                   const struct net_rx *rx, unsigned status,
                   struct slice reason, struct slice extra_hdrs)
{
	if (tm_sl_send(sh, m, rx, NULL, status, reason, extra_hdrs) == 0)
		sh->stats.sl_err_replies++;
}

/* §16.3 step 5: a Proxy-Require naming an extension not in the sanity
 * module's proxy_require list (empty by default) gets 420 listing every
 * such extension. */
static bool proxy_require(struct tm_shard *sh, struct sip_msg *m,
                          const struct net_rx *rx)
{
	struct slice exts[16];
	char buf[512];
	unsigned n;

	if (m->method_id == SIP_METHOD_ACK ||
	    m->method_id == SIP_METHOD_CANCEL ||
	    !sip_msg_hdr(m, SIP_HDR_PROXY_REQUIRE))
		return false;
	n = sip_unsupported_exts(exts, 16, m, sh->cfg->proxy_require);
	if (n == 0)
		return false;
	/* a list too long for the buffer is left out */
	refuse(sh, m, rx, 420, SLICE_LIT("Bad Extension"),
	       tm_unsupported_line(buf, sizeof(buf), exts, n));
	return true;
}

/* §16.3 step 2: a Request-URI scheme we cannot route. */
static bool unknown_scheme(struct tm_shard *sh, struct sip_msg *m,
                           const struct net_rx *rx)
{
	const struct sip_uri *u;

	if (sip_msg_request_uri(&u, m) || u->scheme != SIP_URI_OTHER)
		return false;
	refuse(sh, m, rx, 416, SLICE_LIT("Unsupported URI Scheme"), SLICE_NULL);
	return true;
}

static void bad_request(struct tm_shard *sh, struct sip_msg *m,
                        const struct net_rx *rx, unsigned status)
{
	char reason[160];
	size_t n;

	/* The reason phrase says what was wrong: operators read it in
	 * traces. */
	n = (size_t)snprintf(reason, sizeof(reason), "%s (%s)",
	                     status == 505 ? "Version Not Supported"
	                                   : "Bad Request",
	                     m->error ? m->error : "malformed");
	LOG_DBG("tm: %u %.*s from %s", status, (int)n, reason,
	        rx->lst ? rx->lst->name : "?");
	refuse(sh, m, rx, status, slice_make(reason, n), SLICE_NULL);
}

/*
 * An ACK of a reply this proxy sent statelessly: it carries the reply's
 * To tag, which sip_gen_tag() made from the Call-ID, the From tag and the
 * branch of the request, the ACK's own (RFC 3261 §17.1.1.3). It ends here,
 * as Kamailio's sl absorbs it before the script; the ACK of a
 * transaction's reply is left to t_check_trans().
 */
static bool acks_sl_reply(struct tm_shard *sh, struct sip_msg *m)
{
	const struct sip_addr *to;
	char tag[SIP_TAG_LEN];

	if (sip_msg_to(&to, m) || to->tag.len != SIP_TAG_LEN)
		return false;
	sip_gen_tag(tag, m);
	return memcmp(tag, to->tag.p, SIP_TAG_LEN) == 0 &&
	       tm_trans_lookup(sh, m, false, NULL) == NULL;
}

/* Kamailio's core counts of a reply received: by class, some codes, and
 * by class and the method of its CSeq. */
static void count_reply(struct tm_stats *st, struct sip_msg *m)
{
	unsigned code = m->status, cls = code / 100;
	const struct sip_cseq *cseq;

	st->rcv_replies++;
	if (cls < 1 || cls > 6)
		return;
	st->rcv_rpl_class[cls]++;
	st->rcv_rpl_18x += code >= 180 && code <= 189;
	st->rcv_rpl_401 += code == 401;
	st->rcv_rpl_404 += code == 404;
	st->rcv_rpl_407 += code == 407;
	st->rcv_rpl_480 += code == 480;
	st->rcv_rpl_486 += code == 486;
	if (sip_msg_cseq(&cseq, m) == 0)
		st->rcv_rpl_method[cseq->method_id][cls]++;
}

/* The message in sh->msg, parsed and owned by this shard. */
static void process(struct tm_shard *sh, const struct net_rx *rx)
{
	struct sip_msg *m = &sh->msg;
	struct tm_ctx ctx;
	unsigned status;

	if (!m->is_request) {
		count_reply(&sh->stats, m);
		tm_ctx_init(&ctx, sh, TM_ROUTE_REPLY, m, rx, NULL);
		tm_run_route(sh, &ctx, TM_ROUTE_REPLY, NULL);
		if (ctx.drop) {
			sh->stats.drop_replies++;
			return;
		}
		/* A malformed response is discarded (RFC 4475 §3.1.2.19). */
		if (sip_msg_check(&status, m)) {
			sh->stats.err_replies++;
			return;
		}
		tm_reply_in(sh, m, rx);
		return;
	}

	sh->stats.rcv_req_method[m->method_id]++;
	if (sip_msg_check(&status, m)) {
		sh->stats.err_requests++;
		if (m->failed & SIP_DEC_RURI)
			sh->stats.bad_uris++;
		bad_request(sh, m, rx, status);
		return;
	}
	if (m->method_id == SIP_METHOD_ACK) {
		if (acks_sl_reply(sh, m)) {
			sh->stats.sl_acks++;
			return;
		}
	} else if (unknown_scheme(sh, m, rx) || proxy_require(sh, m, rx)) {
		return;
	}
	tm_ctx_init(&ctx, sh, TM_ROUTE_REQUEST, m, rx, NULL);
	tm_run_route(sh, &ctx, TM_ROUTE_REQUEST, NULL);
	/* Once a transaction exists, it answers: nothing is dropped. */
	if (ctx.drop && ctx.t == NULL)
		sh->stats.drop_requests++;
}

bool tm_receive(struct tm_shard *sh, const struct net_rx *rx, unsigned nshards,
                unsigned *owner)
{
	struct sip_msg *m = &sh->msg;
	struct slice cid;

	arena_reset(&sh->arena);
	if (sip_msg_parse(m, rx->buf, rx->len, &sh->cfg->limits)) {
		sh->stats.bad_msg_hdr++;
		LOG_DBG("tm: dropped unparsable message: %s",
		        m->error ? m->error : "?");
		return true;
	}
	/* The call's shard, from its Call-ID; a message without a usable
	 * one is handled where it is (it can only be answered or
	 * dropped). */
	if (nshards > 1 && sip_msg_call_id(&cid, m) == 0) {
		unsigned o = tm_owner_of_callid(cid, nshards);
		if (o != worker_id(sh->w)) {
			*owner = o;
			return false;
		}
	}
	process(sh, rx);
	return true;
}

void tm_conn_failed(struct tm_shard *sh, uint64_t conn_id)
{
	for (uint32_t i = 0; i < sh->nslots; i++) {
		struct tm_trans *t = sh->slots[i];
		if (t == NULL)
			continue;
		for (unsigned b = 0; b < t->nbr; b++) {
			struct tm_branch *br = t->br[b];
			if (br->dst.conn_id == conn_id &&
			    br->state != UAC_COMPLETED) {
				obj_ref(t);
				tm_branch_fail(br, 503);
				obj_unref(t);
			}
		}
	}
}

unsigned tm_owner_of_callid(struct slice callid, unsigned nshards)
{
	return nshards > 1
	               ? (unsigned)(hash_bytes(callid.p, callid.len) % nshards)
	               : 0;
}
