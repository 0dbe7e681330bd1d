/*
 * The client side of a proxy transaction: one branch per destination
 * (parallel forking, RFC 3261 §16.6), retransmissions and timeouts per
 * branch (§17.1), replies matched by our branch ids, response aggregation
 * (§16.7) and CANCEL (§9.1, §16.10).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm/tm_int.h"

static struct twheel *wheel(struct tm_shard *sh)
{
	return worker_wheel(sh->w);
}

/* t_set_fr() values win over the configured ones. */
static unsigned fr_timer(const struct tm_trans *t)
{
	return t->ed.fr_ms ? t->ed.fr_ms : t->sh->cfg->fr_timer_ms;
}

static unsigned fr_inv_timer(const struct tm_trans *t)
{
	return t->ed.fr_inv_ms ? t->ed.fr_inv_ms : t->sh->cfg->fr_inv_timer_ms;
}

/* ------------------------------------------------------ destinations */

/* A next hop from a SIP URI (RFC 3263 §4.1: the transport from the URI,
 * UDP by default): a numeric address and port, or a name for dns (port 0
 * when the URI has none: SRV first). */
struct hop {
	enum net_proto proto;
	bool proto_given; /* by the URI's transport, or the script */
	union net_sockaddr addr;
	bool by_name;
	struct slice name;
	uint16_t port;
};

/* The URI text parsed into *scratch, or the parse m keeps of it when text
 * is m's Request-URI; NULL when it does not parse. */
static const struct sip_uri *parse_target(struct sip_uri *scratch,
                                          struct slice text, struct sip_msg *m)
{
	const struct sip_uri *u;
	const char *why;

	if (text.p == m->ruri.p && text.len == m->ruri.len)
		return sip_msg_request_uri(&u, m) ? NULL : u;
	return sip_uri_parse(scratch, text, &why) ? NULL : scratch;
}

/* Returns 0, or the SIP status that describes the failure. text is a
 * URI of request m, or another one. A name is left in hop->name (in text
 * or force_host) for resolve_name(). */
static unsigned resolve_uri(struct hop *hop, struct slice text,
                            struct sip_msg *m, const char *force_proto,
                            struct slice force_host, unsigned force_port)
{
	struct sip_uri scratch;
	const struct sip_uri *u;
	struct slice host;
	unsigned port;

	if (force_host.len) {
		host = force_host;
		port = force_port;
		hop->proto = (force_proto && strcmp(force_proto, "tcp") == 0)
		                     ? NET_TCP
		                     : NET_UDP;
		hop->proto_given = force_proto != NULL;
	} else {
		u = parse_target(&scratch, text, m);
		if (u == NULL)
			return 400;
		if (u->scheme == SIP_URI_OTHER || u->scheme == SIP_URI_TEL)
			return 416;
		if (u->scheme == SIP_URI_SIPS)
			return 503; /* TLS is not supported yet */
		host = u->maddr.len ? u->maddr : u->host;
		port = u->has_port ? u->port : 0;
		hop->proto = NET_UDP;
		hop->proto_given = force_proto || u->transport.len > 0;
		if (force_proto) {
			/* t_relay_to_proto(): the URI's host, this transport */
			if (strcmp(force_proto, "tcp") == 0)
				hop->proto = NET_TCP;
		} else if (u->transport.len) {
			if (slice_eq_cstr_nocase(u->transport, "tcp"))
				hop->proto = NET_TCP;
			else if (!slice_eq_cstr_nocase(u->transport, "udp"))
				return 503;
		}
	}
	hop->by_name = false;
	if (slice_eq_cstr_nocase(host, "localhost"))
		host = SLICE_LIT("127.0.0.1");
	if (net_addr_make(&hop->addr, host, (uint16_t)(port ? port : 5060)) ==
	    0)
		return 0;
	if (host.len == 0 || host.p[0] == '[')
		return 478; /* Kamailio's "Unresolvable destination" */
	hop->by_name = true;
	hop->name = host;
	hop->port = (uint16_t)port;
	return 0;
}

static struct dns *shard_dns(struct tm_shard *sh)
{
	char err[256];

	if (sh->dns == NULL && sh->w != NULL) {
		sh->dns = dns_new(worker_loop(sh->w), &sh->cfg->dns, err,
		                  sizeof(err));
		if (sh->dns == NULL)
			LOG_ERR("worker %u: dns: %s", worker_id(sh->w), err);
	}
	return sh->dns;
}

/* hop->proto: r's; hop->addr: the first address of r from index *next on
 * that a listener of ours can send to, and true; *next is then the index
 * after it. False when there is none (*next is then r->n). */
static bool take_address(struct tm_shard *sh, struct hop *hop,
                         const struct dns_result *r, unsigned *next)
{
	hop->proto = r->proto; /* NAPTR may have chosen it */
	for (unsigned i = *next; i < r->n; i++) {
		if (rt_listener_for(sh->rt, hop->proto,
		                    r->addr[i].sa.sa_family)) {
			hop->addr = r->addr[i];
			*next = i + 1;
			return true;
		}
	}
	*next = r->n;
	return false;
}

/* The first address of r we can use in hop->addr (else r's first one:
 * out_listener() then says 503), *next after it. */
static void first_address(struct tm_shard *sh, struct hop *hop,
                          const struct dns_result *r, unsigned *next)
{
	*next = 0;
	if (!take_address(sh, hop, r, next))
		hop->addr = r->addr[0];
}

/* hop->name's addresses from the cache into *r, the first one we can use
 * in hop->addr and *next after it (first_address()): 0. EINPROGRESS when dns
 * has to ask (done(arg, ...) is called with the answer; done NULL: the answer
 * only fills the cache); another error when the name leads nowhere. */
static int resolve_name(struct tm_shard *sh, struct hop *hop,
                        struct dns_result *r, unsigned *next, dns_done_fn *done,
                        void *arg, struct dns_wait **wait)
{
	struct dns *d = shard_dns(sh);
	int err;

	if (d == NULL)
		return EIO;
	err = dns_resolve(d, hop->name,
	                  hop->proto_given ? (int)hop->proto : DNS_PROTO_ANY,
	                  hop->port, r, done, arg, wait);
	if (err == 0)
		first_address(sh, hop, r, next);
	return err;
}

/*
 * The Route set a forwarded request leaves with (RFC 3261 §16.6 steps 6
 * and 7): the values loose_route() consumed are gone (ours from the top;
 * the last one when a strict router before us made it our Request-URI,
 * §16.4); the first value left is the next hop. When that hop is a strict
 * router (no ;lr) and no $du overrides it, it gets the request addressed
 * to its URI, and the Request-URI we had goes last into Route. target is
 * where the request goes: $du, else that next hop, else the Request-URI.
 */
struct route_set {
	unsigned left;       /* values left */
	bool strict_next;    /* the first is a strict router we send to */
	struct slice target; /* the URI the destination is resolved from */
};

static void route_set(struct route_set *rs, struct sip_msg *m,
                      const struct tm_req_edits *e, struct slice duri,
                      struct slice ruri)
{
	struct sip_elem_iter it;
	struct slice elem, first = SLICE_NULL;
	struct sip_addr a;
	struct sip_uri u;
	const char *why;
	unsigned n = 0;

	memset(rs, 0, sizeof(*rs));
	rs->target = duri.len ? duri : ruri;
	sip_elem_iter_init(&it, m, SIP_HDR_ROUTE);
	while (sip_elem_next(&elem, &it) == 0) {
		if (n++ == e->routes_popped)
			first = elem;
	}
	if (n <= e->routes_popped + e->route_last_taken ||
	    sip_addr_parse(&a, first, 0, &why))
		return;
	rs->left = n - e->routes_popped - e->route_last_taken;
	if (duri.len == 0) {
		rs->target = a.uri;
		rs->strict_next = sip_uri_parse(&u, a.uri, &why) == 0 && !u.lr;
	}
}

/* ------------------------------------------------------- building */

static const struct net_listener *out_listener(struct tm_shard *sh,
                                               const struct hop *hop)
{
	/* From this worker's own port when the listener has them, so that
	 * the replies and the call's next requests come back to it. */
	return rt_worker_listener(
	        sh->w,
	        rt_listener_for(sh->rt, hop->proto, hop->addr.sa.sa_family));
}

static struct slice rr_value(struct arena *a, const struct net_listener *l,
                             struct slice params)
{
	char port[20];
	const struct slice parts[] = {
	        SLICE_LIT("<sip:"),
	        slice_cstr(l->adv_host),
	        SLICE_LIT(":"),
	        slice_make(port, fmt_u64(port, l->adv_port)),
	        SLICE_LIT(";lr"),
	        l->proto == NET_TCP ? SLICE_LIT(";transport=tcp") : SLICE_NULL,
	        params,
	        SLICE_LIT(">"),
	};

	return arena_concat(a, parts, sizeof(parts) / sizeof(parts[0]));
}

/* "<prefix><v>" in the arena (no printf on the path of every request). */
static struct slice with_number(struct arena *a, struct slice prefix,
                                uint64_t v)
{
	char num[20];
	const struct slice parts[] = {prefix, slice_make(num, fmt_u64(num, v))};

	return arena_concat(a, parts, 2);
}

/*
 * RFC 3581 §4 / RFC 3261 §18.2.1: the top Via of a forwarded request
 * records where it really came from, so that replies find their way back.
 */
static void via_received(struct sip_edits *ed, struct sip_msg *m,
                         const struct net_rx *src, bool force_rport,
                         struct arena *a)
{
	const struct sip_via *via;
	union net_sockaddr sent_by;
	char host[64];

	if (sip_msg_top_via(&via, m))
		return;
	if (via->has_rport && via->rport.len == 0) {
		sip_edit_insert(ed, (uint32_t)(via->rport.p - m->buf),
		                with_number(a, SLICE_LIT("="),
		                            net_addr_port(&src->src)));
	} else if (force_rport && !via->has_rport) {
		/* force_rport(): as if the client had asked (RFC 3581). */
		sip_edit_insert(ed,
		                (uint32_t)(via->raw.p + via->raw.len - m->buf),
		                with_number(a, SLICE_LIT(";rport="),
		                            net_addr_port(&src->src)));
	}
	/* §18.2.1: a host that is the source's address, compared as an
	 * address (the usual Via needs no text of the source then) */
	bool from_sent_by = net_addr_make(&sent_by, via->host,
	                                  net_addr_port(&src->src)) == 0 &&
	                    net_addr_eq(&sent_by, &src->src);
	if ((via->has_rport || force_rport || !from_sent_by) &&
	    via->received.len == 0) {
		net_addr_host(host, sizeof(host), &src->src);
		const struct slice parts[] = {SLICE_LIT(";received="),
		                              slice_cstr(host)};
		sip_edit_insert(ed,
		                (uint32_t)(via->raw.p + via->raw.len - m->buf),
		                arena_concat(a, parts, 2));
	}
}

/* The Request-URI and Route changes of route_set() into ed. */
static void route_edits(struct sip_edits *ed, struct sip_msg *m,
                        const struct tm_req_edits *e,
                        const struct route_set *rs, struct slice uri,
                        struct arena *a)
{
	unsigned drop = e->routes_popped + rs->strict_next;

	if (rs->strict_next)
		sip_edit_set_ruri(ed, rs->target);
	else if (!slice_eq(uri, m->ruri))
		sip_edit_set_ruri(ed, uri);
	if (e->route_last_taken && rs->left == rs->strict_next) {
		/* nothing left between the two ends: the lines go whole */
		sip_edit_remove_header(ed, SLICE_LIT("Route"));
	} else {
		if (drop)
			sip_edit_drop_routes(ed, drop);
		if (e->route_last_taken)
			sip_edit_drop_last_route(ed);
	}
	if (rs->strict_next) {
		const struct slice line[] = {SLICE_LIT("Route: <"), uri,
		                             SLICE_LIT(">")};
		sip_edit_add_header(ed, arena_concat(a, line, 3));
	}
}

/*
 * A forwarded request: the received one with the script's changes (RFC
 * 3261 §16.6): new Request-URI, consumed Routes gone, Max-Forwards
 * decremented or inserted, where it came from recorded in its Via, our Via
 * on top with branch id, Record-Route when asked for (in: the socket it
 * arrived on, NULL for none). src is NULL for a request originated here.
 * The result is in sh->out.
 */
static int build_request(struct slice *msg, struct tm_shard *sh,
                         struct sip_msg *m, const struct tm_req_edits *e,
                         const struct route_set *rs, const struct net_rx *src,
                         struct slice uri, const struct net_listener *out,
                         const char *branch_id,
                         const struct net_listener *rr_in, struct arena *a)
{
	struct sip_edits ed;
	const struct sip_hdr *mf;
	uint32_t v;
	size_t len;
	int err;

	sip_edits_init(&ed, m, a);
	route_edits(&ed, m, e, rs, uri, a);
	mf = sip_msg_hdr(m, SIP_HDR_MAX_FORWARDS);
	if (src == NULL) {
		/* Our own request: it starts its life here. */
		if (sh->cfg->user_agent_hdr.len &&
		    !sip_msg_hdr(m, SIP_HDR_USER_AGENT))
			sip_edit_add_header(&ed, sh->cfg->user_agent_hdr);
	} else if (mf && sip_msg_max_forwards(&v, m) == 0 && v > 0) {
		sip_edit_set_hdr_value(&ed, mf,
		                       with_number(a, SLICE_NULL, v - 1));
	} else if (mf == NULL) {
		unsigned limit = e->maxfwd_limit ? e->maxfwd_limit
		                                 : sh->cfg->max_forwards;
		sip_edit_add_header(
		        &ed,
		        with_number(a, SLICE_LIT("Max-Forwards: "), limit));
	}
	if (src)
		via_received(&ed, m, src, e->force_rport, a);
	char port[20];
	const struct slice via[] = {
	        out->proto == NET_TCP ? SLICE_LIT("SIP/2.0/TCP ")
	                              : SLICE_LIT("SIP/2.0/UDP "),
	        slice_cstr(out->adv_host),
	        SLICE_LIT(":"),
	        slice_make(port, fmt_u64(port, out->adv_port)),
	        SLICE_LIT(";branch="),
	        slice_cstr(branch_id),
	        e->local_rport ? SLICE_LIT(";rport") : SLICE_NULL,
	};
	/* KSR.hdr.insert(): above everything, our Via too (as Kamailio) */
	for (unsigned i = 0; i < e->n_append; i++)
		if (e->hdr_first & (1u << i))
			sip_edit_add_header_first(&ed, e->hdr_append[i]);
	sip_edit_push_via(&ed,
	                  arena_concat(a, via, sizeof(via) / sizeof(via[0])));
	if (e->record_route) {
		/* Two entries when the request crosses sockets, so that each
		 * side sees an address it can reach (§16.6 step 4, Kamailio's
		 * double Record-Route). */
		sip_edit_add_record_route(&ed, rr_value(a, out, e->rr_params));
		if (rr_in && !rt_same_listener(rr_in, out))
			sip_edit_add_record_route(
			        &ed,
			        rr_value(a, rt_worker_listener(sh->w, rr_in),
			                 e->rr_params));
	}
	for (unsigned i = 0; i < e->n_remove; i++)
		sip_edit_remove_header(&ed, e->hdr_remove[i]);
	for (unsigned i = 0; i < e->n_append; i++)
		if (!(e->hdr_first & (1u << i)))
			sip_edit_add_header(&ed, e->hdr_append[i]);

	err = sip_edits_apply(&len, sh->out, sizeof(sh->out), &ed);
	if (err)
		return err;
	*msg = slice_make(sh->out, len);
	return 0;
}

/* ---------------------------------------------------------- timers */

static void branch_retransmit(struct tmr *tm, void *arg);
static void branch_fr(struct tmr *tm, void *arg);
static void all_done(struct tm_trans *t);
static bool fail_over(struct tm_branch *b);
static void named_stop_wait(struct tm_branch *b);
static void uac_done(struct tm_trans *t, unsigned code, struct sip_msg *rpl);

static void send_branch(struct tm_branch *b, const char *buf, size_t len)
{
	uint64_t conn = 0;

	if (net_send(b->t->sh->w, &b->dst, buf, len, &conn) == 0 && conn)
		b->dst.conn_id = conn;
}

static void branch_retransmit(struct tmr *tm, void *arg)
{
	struct tm_branch *b = arg;
	struct tm_shard *sh = b->t->sh;
	unsigned next;

	if (b->state == UAC_COMPLETED)
		return;
	if (b->canceled) {
		send_branch(b, b->cancel, b->cancel_len);
	} else {
		send_branch(b, b->req, b->req_len);
	}
	sh->stats.retransmissions++;
	/* Timer A doubles without bound (§17.1.1.2); timer E and CANCEL
	 * retransmissions stop doubling at T2 (§17.1.2.2). */
	next = b->retr_interval * 2;
	if ((!b->t->is_invite || b->canceled) && next > sh->cfg->t2_ms)
		next = sh->cfg->t2_ms;
	b->retr_interval = next;
	tmr_start(wheel(sh), tm, next, branch_retransmit, b);
}

static void start_retransmit(struct tm_branch *b, unsigned interval)
{
	struct tm_shard *sh = b->t->sh;

	if (b->dst.proto != NET_UDP)
		return;
	b->retr_interval = interval;
	tmr_start(wheel(sh), &b->retr, interval, branch_retransmit, b);
}

static void branch_complete(struct tm_branch *b, unsigned code)
{
	struct tm_shard *sh = b->t->sh;

	b->state = UAC_COMPLETED;
	b->code = code;
	named_stop_wait(b);
	tmr_cancel(wheel(sh), &b->fr);
	if (!b->canceled)
		tmr_cancel(wheel(sh), &b->retr);
}

void tm_branch_fail(struct tm_branch *b, unsigned code)
{
	b->timed_out = code == 408;
	if ((code == 408 && !b->provisional) || code == 503)
		fail_over(b);
	branch_complete(b, code);
	all_done(b->t);
}

static void send_cancel(struct tm_branch *b, struct slice reason_hdr)
{
	struct tm_shard *sh = b->t->sh;
	struct sip_msg *m = &sh->msg2;
	struct sip_buf buf;

	if (b->canceled || b->state == UAC_COMPLETED)
		return;
	if (sip_msg_parse(m, b->req, b->req_len, &sh->cfg->limits))
		return;
	sip_buf_init(&buf, sh->out, sizeof(sh->out));
	if (sip_build_cancel(&buf, m, reason_hdr))
		return;
	b->cancel = mem_get(buf.len);
	if (b->cancel == NULL)
		return;
	memcpy(b->cancel, buf.p, buf.len);
	b->cancel_len = buf.len;
	b->canceled = true;
	b->cancel_pending = false;
	send_branch(b, b->cancel, b->cancel_len);
	tmr_cancel(wheel(sh), &b->retr);
	start_retransmit(b, sh->cfg->t1_ms);
}

static void branch_fr(struct tmr *tm, void *arg)
{
	struct tm_branch *b = arg;

	(void)tm;
	/* fr_inv_timer after a provisional: CANCEL the branch (§9.1 allows
	 * it only once something came back), then count it as a 408. */
	if (b->t->is_invite && b->state == UAC_PROCEEDING)
		send_cancel(b, SLICE_NULL);
	tm_branch_fail(b, 408);
}

void tm_cancel_branches(struct tm_trans *t, struct slice reason_hdr)
{
	bool ended = false;

	for (unsigned i = 0; i < t->nbr; i++) {
		struct tm_branch *b = t->br[i];
		if (b->state == UAC_PROCEEDING) {
			send_cancel(b, reason_hdr);
		} else if (b->state == UAC_CALLING) {
			b->cancel_pending = true;
		} else if (b->state == UAC_RESOLVING) {
			/* nothing was sent: the branch ends here */
			branch_complete(b, 487);
			ended = true;
		}
	}
	if (ended) {
		obj_ref(t); /* the callers go on with t */
		all_done(t);
		obj_unref(t);
	}
}

/* ------------------------------------------------------- forwarding */

/*
 * Runs the branch route armed with t_on_branch() for branch b about to
 * start; false when the script dropped the branch. The header lines it
 * adds or removes are moved from the transaction's edits to the branch's
 * own, so that the next branch does not get them too.
 */
static bool run_branch_route(struct tm_branch *b, struct slice uri)
{
	struct tm_trans *t = b->t;
	struct tm_req_edits *e = &t->ed;
	unsigned n_append = e->n_append, n_remove = e->n_remove;
	struct tm_branch_hdrs *own;
	struct tm_ctx ctx;
	char fn[128];

	slice_copy_cstr(fn, sizeof(fn), e->hooks[TM_HOOK_BRANCH]);
	tm_ctx_init(&ctx, t->sh, TM_ROUTE_BRANCH, t->req, NULL, t);
	ctx.branch = t->nbr;
	ctx.branch_uri = uri;
	ctx.bflags = &b->bflags;
	tm_run_route(t->sh, &ctx, TM_ROUTE_BRANCH, fn);
	if (e->n_append == n_append && e->n_remove == n_remove)
		return !ctx.drop;
	own = arena_alloc(&t->arena, sizeof(*own));
	if (own) {
		own->n_append = e->n_append - n_append;
		memcpy(own->append, e->hdr_append + n_append,
		       own->n_append * sizeof(own->append[0]));
		own->first = e->hdr_first >> n_append;
		own->n_remove = e->n_remove - n_remove;
		memcpy(own->remove, e->hdr_remove + n_remove,
		       own->n_remove * sizeof(own->remove[0]));
		b->own_hdrs = own;
	}
	e->n_append = n_append;
	e->n_remove = n_remove;
	return !ctx.drop;
}

/* The edits branch b's request is built with: the transaction's, plus
 * what its branch route changed (in *tmp). */
static const struct tm_req_edits *branch_edits(const struct tm_branch *b,
                                               struct tm_req_edits *tmp)
{
	const struct tm_branch_hdrs *own = b->own_hdrs;

	if (own == NULL)
		return &b->t->ed;
	*tmp = b->t->ed;
	for (unsigned i = 0;
	     i < own->n_append && tmp->n_append < TM_MAX_HDR_EDITS; i++) {
		if (own->first & (1u << i))
			tmp->hdr_first |= 1u << tmp->n_append;
		else
			tmp->hdr_first &= ~(1u << tmp->n_append);
		tmp->hdr_append[tmp->n_append++] = own->append[i];
	}
	for (unsigned i = 0;
	     i < own->n_remove && tmp->n_remove < TM_MAX_HDR_EDITS; i++)
		tmp->hdr_remove[tmp->n_remove++] = own->remove[i];
	return tmp;
}

/*
 * What a branch to a name keeps (RFC 3263): start_branch()'s arguments,
 * copied (they may live in the scratch of the message); the wait while
 * dns looks the name up; then the addresses it gave, of which the next is
 * tried when this one does not answer or answers 503 (§4.3). A branch
 * that fails over hands it to the branch that takes its place.
 */
struct tm_named {
	struct dns_wait *wait;
	struct slice uri, duri, host;
	const char *proto; /* "tcp", "udp" or NULL */
	unsigned port;
	struct dns_result addrs;
	unsigned next; /* the first address of addrs not tried yet */
	size_t size;
	char text[];
};

/* s copied to dst (the empty slice stays SLICE_NULL). */
static struct slice keep_in(char *dst, struct slice s)
{
	if (s.len == 0)
		return SLICE_NULL;
	memcpy(dst, s.p, s.len);
	return slice_make(dst, s.len);
}

static struct tm_named *named_new(struct slice uri, struct slice duri,
                                  const char *proto, struct slice host,
                                  unsigned port)
{
	size_t size = sizeof(struct tm_named) + uri.len + duri.len + host.len;
	struct tm_named *nd = mem_get(size);

	if (nd == NULL)
		return NULL;
	nd->wait = NULL;
	nd->size = size;
	nd->proto = proto == NULL               ? NULL
	            : strcmp(proto, "tcp") == 0 ? "tcp"
	                                        : "udp";
	nd->port = port;
	nd->uri = keep_in(nd->text, uri);
	nd->duri = keep_in(nd->text + uri.len, duri);
	nd->host = keep_in(nd->text + uri.len + duri.len, host);
	nd->addrs.n = 0;
	nd->next = 0;
	return nd;
}

/* The lookup of b's name, if it still runs, is no longer awaited. */
static void named_stop_wait(struct tm_branch *b)
{
	if (b->named && b->named->wait) {
		dns_cancel(b->named->wait);
		b->named->wait = NULL;
	}
}

void tm_branch_free_named(struct tm_branch *b)
{
	named_stop_wait(b);
	if (b->named)
		mem_put(b->named, b->named->size);
	b->named = NULL;
}

/* The hop of a branch to a name again (route_set() and resolve_uri() give
 * the same as they did when it started). 0, or a status. */
static unsigned named_hop(struct tm_trans *t, const struct tm_named *nd,
                          struct route_set *rs, struct hop *hop)
{
	unsigned status;

	route_set(rs, t->req, &t->ed, nd->duri, nd->uri);
	status = resolve_uri(hop, rs->target, t->req, nd->proto, nd->host,
	                     nd->port);
	return status ? status : hop->by_name ? 0 : 500;
}

static struct tm_branch *branch_new(struct tm_trans *t)
{
	struct tm_branch *b = mem_get_zero(sizeof(*b));

	if (b == NULL)
		return NULL;
	b->t = t;
	b->index = t->nbr;
	tmr_init(&b->retr);
	tmr_init(&b->fr);
	return b;
}

/*
 * Sends branch b towards hop. A fresh branch (made for the next slot of
 * t) runs the branch route first (the script may drop it) and joins t
 * once built; one that waited for dns has done both and has fr_timer
 * running. Returns 0 (sent), -1 (dropped by the script) or the status
 * that describes why it could not be sent; b is then the caller's.
 */
static int launch_branch(struct tm_branch *b, const struct hop *hop,
                         const struct route_set *rs, struct slice uri,
                         bool fresh)
{
	struct tm_trans *t = b->t;
	struct tm_shard *sh = t->sh;
	const struct net_listener *out = out_listener(sh, hop);
	struct tm_req_edits tmp;
	struct slice msg;
	char id[64];

	if (out == NULL)
		return 503;
	if (fresh && t->ed.hooks[TM_HOOK_BRANCH].len &&
	    !run_branch_route(b, uri))
		return -1;
	b->dst.proto = hop->proto;
	b->dst.addr = hop->addr;
	b->dst.lst = out;
	b->dst.no_connect = t->ed.forward_no_connect;
	b->dst.close_after = t->ed.forward_close;
	tm_branch_id(id, sizeof(id), t, b->index);
	if (build_request(&msg, sh, t->req, branch_edits(b, &tmp), rs,
	                  t->uac_cb ? NULL : &t->src, uri, out, id, t->src.lst,
	                  &sh->arena))
		return 500;
	b->req = mem_get(msg.len);
	if (b->req == NULL)
		return 500;
	memcpy(b->req, msg.p, msg.len);
	b->req_len = msg.len;
	sh->bytes += msg.len;
	if (fresh)
		t->br[t->nbr++] = b;
	b->state = UAC_CALLING;
	b->code = 0;
	/* Requests this proxy originates are not forwarded ones. */
	if (t->uac_cb == NULL)
		sh->stats.fwd_requests++;

	send_branch(b, b->req, b->req_len);
	start_retransmit(b, sh->cfg->t1_ms);
	if (fresh)
		tmr_start(wheel(sh), &b->fr, fr_timer(t), branch_fr, b);
	return 0;
}

/* dns answered for branch b: it is sent as start_branch() would have,
 * or fails with 478 (the name leads nowhere) or the status of
 * launch_branch(). */
static void branch_resolved(void *arg, int err, const struct dns_result *r)
{
	struct tm_branch *b = arg;
	struct tm_trans *t = b->t;
	struct tm_shard *sh = t->sh;
	struct tm_named *nd = b->named;
	struct route_set rs;
	struct hop hop;
	unsigned status = 478;
	int st;

	nd->wait = NULL; /* dns frees it after this call */
	obj_ref(t);
	if (err == 0) {
		nd->addrs = *r;
		status = named_hop(t, nd, &rs, &hop);
	}
	if (status == 0) {
		first_address(sh, &hop, &nd->addrs, &nd->next);
		st = launch_branch(b, &hop, &rs, nd->uri, false);
		status = st > 0 ? (unsigned)st : 0;
	}
	if (status)
		tm_branch_fail(b, status);
	arena_reset(&sh->arena);
	obj_unref(t);
}

/* Branch b waits for dns: the branch route runs now (as Kamailio runs it
 * before it resolves), then b joins t with fr_timer running; b and its
 * wait are gone when the script drops it. */
static void wait_for_dns(struct tm_branch *b, struct slice uri)
{
	struct tm_trans *t = b->t;

	if (t->ed.hooks[TM_HOOK_BRANCH].len && !run_branch_route(b, uri)) {
		tm_branch_free_named(b);
		mem_put(b, sizeof(*b));
		return;
	}
	b->state = UAC_RESOLVING;
	t->br[t->nbr++] = b;
	tmr_start(wheel(t->sh), &b->fr, fr_timer(t), branch_fr, b);
}

/* Starts one branch towards uri (or the override); returns 0 (sent,
 * waiting for dns, or dropped by the script) or the status that
 * describes why it could not be sent. */
static unsigned start_branch(struct tm_trans *t, struct slice uri,
                             struct slice duri, uint32_t bflags,
                             const char *proto, struct slice host,
                             unsigned port)
{
	struct tm_shard *sh = t->sh;
	struct tm_branch *b;
	struct tm_named *nd;
	struct route_set rs;
	struct hop hop;
	unsigned status;
	int st;

	if (t->nbr >= TM_MAX_BRANCHES)
		return 500;
	route_set(&rs, t->req, &t->ed, duri, uri);
	status = resolve_uri(&hop, rs.target, t->req, proto, host, port);
	if (status)
		return status;
	b = branch_new(t);
	if (b == NULL)
		return 500;
	b->bflags = bflags;
	if (hop.by_name) {
		nd = b->named = named_new(uri, duri, proto, host, port);
		st = nd ? resolve_name(sh, &hop, &nd->addrs, &nd->next,
		                       branch_resolved, b, &nd->wait)
		        : ENOMEM;
		if (st == EINPROGRESS) {
			wait_for_dns(b, uri);
			return 0;
		}
		if (st) {
			tm_branch_free_named(b);
			mem_put(b, sizeof(*b));
			return st == ENOMEM ? 500 : 478;
		}
	}
	st = launch_branch(b, &hop, &rs, uri, true);
	if (st) {
		tm_branch_free_named(b);
		mem_put(b, sizeof(*b));
	}
	return st < 0 ? 0 : (unsigned)st;
}

/*
 * RFC 3263 §4.3: branch b, sent to a name, got no answer at all or a 503
 * (or its connection failed); the name's next address we can send to
 * gets a branch of its own, which takes over b's addresses. True when it
 * was sent (b's transaction then waits for it).
 */
static bool fail_over(struct tm_branch *b)
{
	struct tm_trans *t = b->t;
	struct tm_named *nd = b->named;
	struct route_set rs;
	struct hop hop;
	int st;

	if (nd == NULL || !t->sh->cfg->dns_failover || t->canceled ||
	    t->final_sent)
		return false;
	while (t->nbr < TM_MAX_BRANCHES && named_hop(t, nd, &rs, &hop) == 0 &&
	       take_address(t->sh, &hop, &nd->addrs, &nd->next)) {
		struct tm_branch *nb = branch_new(t);
		if (nb == NULL)
			return false;
		nb->named = nd;
		nb->bflags = b->bflags;
		st = launch_branch(nb, &hop, &rs, nd->uri, true);
		if (st == 0) {
			b->named = NULL;
			t->sh->stats.dns_failovers++;
			return true;
		}
		mem_put(nb, sizeof(*nb));
		if (st < 0)
			return false; /* the branch route dropped it */
	}
	return false;
}

int tm_forward(struct tm_trans *t, bool with_ruri, const char *proto,
               struct slice host, unsigned port)
{
	struct tm_req_edits *e = &t->ed;
	unsigned worst = 0, started = 0, st;
	struct slice ruri = e->ruri.len ? e->ruri : t->req->ruri;

	/* $ru first, then the appended branches (parallel forking). */
	if (with_ruri) {
		st = start_branch(t, ruri, e->duri, e->bflags, proto, host,
		                  port);
		if (st == 0)
			started++;
		else
			worst = st;
	}
	for (unsigned i = 0; i < e->nbranches; i++) {
		st = start_branch(t, e->branches[i], SLICE_NULL,
		                  e->branch_bflags[i], proto, host, port);
		if (st == 0)
			started++;
		else if (!worst)
			worst = st;
	}
	e->nbranches = 0;
	if (started)
		return 1;
	return -(int)(worst ? worst : 500);
}

/* --------------------------------------------------------- replies */

static void send_ack(struct tm_branch *b, struct sip_msg *rpl)
{
	struct tm_shard *sh = b->t->sh;
	struct sip_msg *req = &sh->msg2;
	struct sip_buf buf;

	if (sip_msg_parse(req, b->req, b->req_len, &sh->cfg->limits))
		return;
	sip_buf_init(&buf, sh->out, sizeof(sh->out));
	if (sip_build_ack(&buf, req, rpl) == 0)
		send_branch(b, buf.p, buf.len);
}

/*
 * §16.7 step 7: a 401 or 407 chosen as the final reply carries the
 * challenges (WWW-Authenticate, Proxy-Authenticate lines, as they are) of
 * every other 401 and 407 still competing, so that the caller can answer
 * them all at once.
 */
static void add_challenges(struct tm_trans *t, struct sip_edits *ed,
                           unsigned chosen)
{
	struct tm_shard *sh = t->sh;
	struct sip_msg *m = &sh->msg3;

	for (unsigned i = 0; i < t->nbr; i++) {
		const struct tm_branch *b = t->br[i];

		if (i == chosen || b->dropped || b->reply == NULL ||
		    (b->code != 401 && b->code != 407) ||
		    sip_msg_parse(m, b->reply, b->reply_len, &sh->cfg->limits))
			continue;
		for (unsigned k = 0; k < m->nhdrs; k++) {
			const struct sip_hdr *h = sip_msg_hdr_at(m, k);

			if (slice_eq_cstr_nocase(h->name, "WWW-Authenticate") ||
			    slice_eq_cstr_nocase(h->name, "Proxy-Authenticate"))
				sip_edit_add_header(
				        ed,
				        slice_make(m->buf + h->off, h->len));
		}
	}
}

/* A reply to be relayed upstream: without our Via (§16.7 step 3). */
static int relay_reply(struct tm_trans *t, struct sip_msg *rpl, unsigned b)
{
	struct tm_shard *sh = t->sh;
	unsigned status = rpl->status;
	struct sip_edits ed;
	size_t len;
	int err;

	sip_edits_init(&ed, rpl, &sh->arena);
	sip_edit_pop_via(&ed);
	/* only the aggregation chooses a 401 or 407 to relay */
	if (status == 401 || status == 407)
		add_challenges(t, &ed, b);
	/* §16.7 step 6: a 503 that is the best final reply goes up as a 500
	 * (it says the next hop is overloaded, not that we are); the rest of
	 * it, its reason phrase too, stays, as in Kamailio */
	if (status == 503) {
		status = 500;
		sip_edit_replace(&ed,
		                 (uint32_t)(rpl->version.p + rpl->version.len +
		                            1 - rpl->buf),
		                 3, SLICE_LIT("500"));
	}
	if (sh->cfg->hooks && sh->cfg->hooks->reply_out)
		sh->cfg->hooks->reply_out(t, rpl, status, (int)b);
	err = sip_edits_apply(&len, sh->out, sizeof(sh->out), &ed);
	if (err)
		return err;
	return tm_reply_upstream(t, sh->out, len, status, (int)b);
}

/*
 * How good a final reply is for the caller, lower is better (§16.7 step
 * 6, with Kamailio's order): a 6xx, else the lowest class; within the
 * 4xx, those that let the caller try again (401, 407, 415, 420, 484)
 * first; else the lowest code. A 408 made up locally comes after every
 * real reply of its class.
 */
static unsigned reply_rank(const struct tm_branch *b)
{
	unsigned code = b->code, cls = code / 100, rank;

	if (cls == 6)
		rank = 100 + code % 100;
	else if (cls >= 2 && cls <= 5)
		rank = cls * 1000 + code % 100;
	else
		rank = 10000 + code; /* unknown class: last */
	if (cls == 4 && code != 401 && code != 407 && code != 415 &&
	    code != 420 && code != 484)
		rank += 100;
	if (b->timed_out)
		rank += 500;
	return rank;
}

/* The best final reply of the branches (reply_rank()); the first of equals.
 * Dropped branches do not count. */
static struct tm_branch *best_branch(struct tm_trans *t)
{
	struct tm_branch *best = NULL;

	for (unsigned i = 0; i < t->nbr; i++) {
		struct tm_branch *b = t->br[i];
		if (!b->dropped &&
		    (best == NULL || reply_rank(b) < reply_rank(best)))
			best = b;
	}
	return best;
}

/*
 * A failure route has run on the nbr branches there were, and has not
 * replied: the replies it drops (t->drop_mode, Kamailio's
 * failure_reply_mode or t_drop_replies()) no longer compete. With 3,
 * Kamailio's default, the caller gets the new step's outcome, not a 3xx
 * the route already acted on. True when it dropped them.
 */
static bool drop_replies(struct tm_trans *t, unsigned nbr)
{
	bool new_step = t->nbr > nbr;
	unsigned first = 0;

	if (t->drop_mode == 0 || (t->drop_mode == 3 && !new_step))
		return false;
	if (t->drop_mode == 2)
		first = t->step_first;
	for (unsigned i = first; i < nbr; i++)
		t->br[i]->dropped = true;
	return true;
}

/* The final outcome of a request originated here: told once, then the
 * transaction lingers to absorb retransmitted replies. */
static void uac_done(struct tm_trans *t, unsigned code, struct sip_msg *rpl)
{
	tm_uac_cb *cb = t->uac_cb;

	if (t->final_sent)
		return;
	t->final_sent = true;
	cb(t->uac_arg, code, rpl);
	tm_trans_wait(t);
}

static void all_done(struct tm_trans *t)
{
	struct tm_shard *sh = t->sh;
	struct tm_branch *best;

	for (unsigned i = 0; i < t->nbr; i++)
		if (t->br[i]->state != UAC_COMPLETED)
			return;
	if (t->uac_cb) {
		/* the last branch: the others failed over to it */
		uac_done(t, t->nbr ? t->br[t->nbr - 1]->code : 503, NULL);
		return;
	}
	if (t->final_sent || t->in_failure)
		return;
	best = best_branch(t);
	if (best == NULL)
		return;

	if (t->ed.hooks[TM_HOOK_FAILURE].len && !t->canceled) {
		/* The failure route may fork again (serial forking) or reply;
		 * it is armed for one run, as in Kamailio, and sees the
		 * original Request-URI. */
		char fn[128];
		unsigned nbr = t->nbr;
		struct tm_ctx ctx;

		slice_copy_cstr(fn, sizeof(fn), t->ed.hooks[TM_HOOK_FAILURE]);
		t->ed.hooks[TM_HOOK_FAILURE] = SLICE_NULL;
		t->ed.ruri = t->ed.duri = SLICE_NULL;
		tm_ctx_init(&ctx, sh, TM_ROUTE_FAILURE, t->req, NULL, t);
		ctx.reply_code = best->code;
		ctx.branch = best->index;
		/* the failed branch's flags, for the new branches too */
		t->ed.bflags = best->bflags;
		ctx.bflags = &t->ed.bflags;
		t->in_failure = true;
		t->drop_mode = (unsigned char)sh->cfg->failure_reply_mode;
		tm_run_route(sh, &ctx, TM_ROUTE_FAILURE, fn);
		t->in_failure = false;
		if (t->final_sent)
			return;
		bool dropped = drop_replies(t, nbr);
		if (t->nbr > nbr)
			t->step_first = nbr;
		for (unsigned i = nbr; i < t->nbr; i++)
			if (t->br[i]->state != UAC_COMPLETED)
				return;
		if (dropped || t->nbr > nbr)
			best = best_branch(t);
		/* Kamailio's answer when nothing is left to choose from */
		if (best == NULL) {
			tm_local_reply(t, 500,
			               SLICE_LIT("Server Internal Error"),
			               t->ed.reply_hdrs);
			return;
		}
	}

	if (t->canceled && (best->reply == NULL || best->code < 300)) {
		tm_local_reply(t, 487, SLICE_LIT("Request Terminated"),
		               t->ed.reply_hdrs);
		return;
	}
	if (best->reply &&
	    sip_msg_parse(&sh->msg2, best->reply, best->reply_len,
	                  &sh->cfg->limits) == 0) {
		relay_reply(t, &sh->msg2, best->index);
		return;
	}
	unsigned code = best->code ? best->code : 500;
	tm_local_reply(t, code, tm_failure_reason(code), t->ed.reply_hdrs);
}

struct slice tm_failure_reason(unsigned code)
{
	switch (code) {
	case 408:
		return SLICE_LIT("Request Timeout");
	case 416:
		return SLICE_LIT("Unsupported URI Scheme");
	case 478:
		return SLICE_LIT("Unresolvable destination"); /* Kamailio's */
	default:
		return SLICE_LIT("Service Unavailable");
	}
}

static void run_onreply(struct tm_branch *b, struct sip_msg *rpl,
                        const struct net_rx *rx, bool *drop)
{
	struct tm_trans *t = b->t;
	struct tm_ctx ctx;

	char fn[128];

	*drop = false;
	if (t->ed.hooks[TM_HOOK_REPLY].len == 0)
		return;
	slice_copy_cstr(fn, sizeof(fn), t->ed.hooks[TM_HOOK_REPLY]);
	tm_ctx_init(&ctx, t->sh, TM_ROUTE_ONREPLY, rpl, rx, t);
	ctx.req = t->req;
	ctx.reply_code = rpl->status;
	ctx.branch = b->index;
	ctx.bflags = &b->bflags;
	tm_run_route(t->sh, &ctx, TM_ROUTE_ONREPLY, fn);
	*drop = ctx.drop;
}

static int keep_reply(struct tm_branch *b, struct sip_msg *rpl)
{
	mem_put(b->reply, b->reply_len);
	b->reply_len = 0;
	b->reply = mem_get(rpl->len);
	if (b->reply == NULL)
		return ENOMEM;
	memcpy(b->reply, rpl->buf, rpl->len);
	b->reply_len = rpl->len;
	return 0;
}

static bool second_via(struct sip_via *v, struct sip_msg *m)
{
	struct sip_elem_iter it;
	struct slice elem;
	const char *why;

	sip_elem_iter_init(&it, m, SIP_HDR_VIA);
	if (sip_elem_next(&elem, &it) || sip_elem_next(&elem, &it))
		return false;
	return sip_via_parse(v, elem, &why) == 0;
}

/* A reply without a transaction is relayed by the second Via (RFC 3261
 * §16.11; §18.2.2 with RFC 3581 for the address). */
static bool relay_stateless(struct tm_shard *sh, struct sip_msg *rpl)
{
	struct sip_via v;
	struct sip_edits ed;
	struct net_dst d;
	size_t len;

	if (!second_via(&v, rpl))
		return false;
	struct slice host = v.received.len ? v.received : v.host;
	uint32_t port = v.has_port ? v.port : 5060;
	if (v.rport.len)
		slice_to_u32(&port, v.rport, 65535);
	memset(&d, 0, sizeof(d));
	d.proto = slice_eq_cstr_nocase(v.transport, "tcp") ? NET_TCP : NET_UDP;
	if (net_addr_make(&d.addr, host, (uint16_t)port))
		return false;
	sip_edits_init(&ed, rpl, &sh->arena);
	sip_edit_pop_via(&ed);
	if (sip_edits_apply(&len, sh->out, sizeof(sh->out), &ed))
		return false;
	return net_send(sh->w, &d, sh->out, len, NULL) == 0;
}

/* Sends m once, without a transaction, by its route set to uri (or to
 * duri when given), with branch id on the Via added (src: where m came
 * from, NULL for a request of ours): 0, or -1 (counted as a dropped
 * request). */
static int send_stateless(struct tm_shard *sh, struct sip_msg *m,
                          const struct tm_req_edits *e, struct slice duri,
                          struct slice uri, const struct net_rx *src,
                          const char *id, struct arena *a)
{
	struct route_set rs;
	struct hop hop;
	struct dns_result addrs;
	unsigned next;
	const struct net_listener *out;
	struct net_dst d;
	struct slice msg;

	route_set(&rs, m, e, duri, uri);
	if (resolve_uri(&hop, rs.target, m, NULL, SLICE_NULL, 0))
		goto drop;
	/* A name not in the cache: its lookup starts, and the request is
	 * dropped as a lost datagram would be (a request forwarded without
	 * a transaction is retransmitted by its sender: an ACK for each 2xx
	 * retransmission; the next copy finds the answer cached). */
	if (hop.by_name &&
	    resolve_name(sh, &hop, &addrs, &next, NULL, NULL, NULL))
		goto drop;
	out = out_listener(sh, &hop);
	if (out == NULL ||
	    build_request(&msg, sh, m, e, &rs, src, uri, out, id, NULL, a))
		goto drop;
	memset(&d, 0, sizeof(d));
	d.proto = hop.proto;
	d.addr = hop.addr;
	d.no_connect = e->forward_no_connect;
	d.close_after = e->forward_close;
	d.lst = out;
	if (net_send(sh->w, &d, msg.p, msg.len, NULL))
		goto drop;
	sh->stats.fwd_requests++;
	return 0;
drop:
	sh->stats.drop_requests++;
	return -1;
}

/*
 * The ACK for a 2xx to an INVITE of ours (RFC 3261 §13.2.2.4), built from
 * the 2xx each time one comes: a retransmitted 2xx means the ACK was
 * lost. It is a transaction of its own, sent once and statelessly by the
 * dialog's route set; its branch is the INVITE's with an "a" after it,
 * the same for every copy.
 */
static void ack_local_2xx(struct tm_branch *b, struct sip_msg *rpl)
{
	struct tm_trans *t = b->t;
	struct tm_shard *sh = t->sh;
	struct sip_msg *req = t->req;
	const struct sip_addr *from;
	const struct sip_cseq *cseq;
	struct tm_req_edits none;
	struct slice call_id;
	struct sip_buf buf;
	char text[4096], id[72];
	size_t n;

	/* The INVITE was ours and checked: these are there. */
	if (sip_msg_from(&from, req) || sip_msg_call_id(&call_id, req) ||
	    sip_msg_cseq(&cseq, req))
		return;
	sip_buf_init(&buf, text, sizeof(text));
	int err = sip_build_in_dialog(&buf, rpl, req->ruri, from->raw, call_id,
	                              "ACK", cseq->num);
	if (err == 0) {
		sip_buf_adds(&buf, "Content-Length: 0\r\n\r\n");
		if (buf.overflow ||
		    sip_msg_parse(&sh->msg2, buf.p, buf.len, &sh->cfg->limits))
			err = ENOSPC;
	}
	if (err) {
		LOG_WARN("tm: cannot ACK a 2xx to a local INVITE: %s",
		         rpl->error ? rpl->error : strerror(err));
		return;
	}
	tm_branch_id(id, sizeof(id) - 1, t, b->index);
	n = strlen(id);
	id[n] = 'a';
	id[n + 1] = '\0';
	memset(&none, 0, sizeof(none));
	send_stateless(sh, &sh->msg2, &none, SLICE_NULL, sh->msg2.ruri, NULL,
	               id, &sh->arena);
}

void tm_reply_in(struct tm_shard *sh, struct sip_msg *rpl,
                 const struct net_rx *rx)
{
	const struct sip_via *via;
	const struct sip_cseq *cseq;
	struct tm_branch *b;
	struct tm_trans *t;
	unsigned code = rpl->status;
	bool drop;

	if (sip_msg_top_via(&via, rpl) || sip_msg_cseq(&cseq, rpl)) {
		sh->stats.drop_replies++;
		return;
	}
	b = tm_branch_lookup(sh, via->branch);
	if (b == NULL) {
		/* §16.7 step 3: no transaction (a 2xx retransmission, a reply
		 * to a request forwarded statelessly, one that came after its
		 * transaction ended): relayed as a stateless proxy does
		 * (§16.11), when the top Via is ours */
		struct sip_uri sent_by = {.host = via->host,
		                          .port = via->port,
		                          .has_port = via->has_port,
		                          .transport = via->transport};
		if (tm_is_myself(sh, &sent_by, false) &&
		    relay_stateless(sh, rpl))
			sh->stats.fwd_replies++;
		else
			sh->stats.drop_replies++;
		return;
	}
	t = b->t;
	if (b->state == UAC_RESOLVING) {
		/* an id we have not sent yet: forged */
		sh->stats.drop_replies++;
		return;
	}
	sh->stats.rpl_received++;
	b->rpl_received++;
	if (cseq->method_id == SIP_METHOD_CANCEL) {
		/* The reply to our CANCEL ends its retransmissions. */
		if (code >= 200)
			tmr_cancel(wheel(sh), &b->retr);
		return;
	}
	if (b->state == UAC_COMPLETED) {
		/* A retransmitted final, or the real one after our own 408:
		 * ACK a negative one, relay a 2xx again (§17.1.1.2, §16.7). */
		if (code >= 300 && t->is_invite) {
			send_ack(b, rpl);
			sh->stats.retransmissions++;
		} else if (code >= 200 && code < 300 && t->is_invite) {
			if (t->uac_cb)
				ack_local_2xx(b, rpl);
			else
				relay_reply(t, rpl, b->index);
		}
		return;
	}

	if (code < 200) {
		bool first = b->state == UAC_CALLING;
		b->state = UAC_PROCEEDING;
		b->provisional = true;
		if (code > b->code)
			b->code = code;
		if (first) {
			if (t->is_invite) {
				tmr_cancel(wheel(sh), &b->retr);
				tmr_start(wheel(sh), &b->fr, fr_inv_timer(t),
				          branch_fr, b);
			} else if (b->dst.proto == NET_UDP) {
				/* Timer E continues at T2 (§17.1.2.2). */
				b->retr_interval = sh->cfg->t2_ms / 2;
			}
		}
		if (b->cancel_pending) {
			send_cancel(b, SLICE_NULL);
			return;
		}
		if (code == 100)
			return;
		if (t->uac_cb)
			return;
		run_onreply(b, rpl, rx, &drop);
		if (drop)
			sh->stats.drop_replies++;
		else if (!t->final_sent)
			relay_reply(t, rpl, b->index);
		return;
	}

	if (code >= 300 && t->is_invite)
		send_ack(b, rpl);
	branch_complete(b, code);
	if (t->uac_cb) {
		if (code < 300 && t->is_invite)
			ack_local_2xx(b, rpl);
		if (code != 503 || !fail_over(b))
			uac_done(t, code, rpl);
		return;
	}
	run_onreply(b, rpl, rx, &drop);
	if (code < 300) {
		relay_reply(t, rpl, b->index);
		if (t->is_invite)
			tm_cancel_branches(
			        t,
			        SLICE_LIT("Reason: SIP;cause=200;text="
			                  "\"Call completed elsewhere\"\r\n"));
		return;
	}
	keep_reply(b, rpl);
	if (code >= 600 && t->is_invite && !t->ed.disable_6xx)
		tm_cancel_branches(t, SLICE_NULL);
	if (code == 503)
		fail_over(b);
	all_done(t);
}

/* ------------------------------------------------------- stateless */

int tm_forward_stateless(struct tm_ctx *ctx, struct slice dst)
{
	struct sip_msg *m = ctx->msg;
	struct tm_req_edits *e = ctx->edits;
	const struct sip_via *via;
	struct slice uri = e->ruri.len ? e->ruri : m->ruri;
	char id[64];

	if (sip_msg_top_via(&via, m)) {
		ctx->sh->stats.drop_requests++;
		return -1;
	}
	/* §16.11: a stateless branch is a function of the incoming one, so
	 * retransmissions get the same id. */
	memcpy(id, "z9hG4bKs", 8);
	id[8 + fmt_hex(id + 8, hash_bytes(via->branch.p, via->branch.len),
	               16)] = '\0';
	return send_stateless(ctx->sh, m, e, dst.len ? dst : e->duri, uri,
	                      ctx->rx, id, ctx->arena)
	               ? -1
	               : 1;
}

/* ------------------------------------------------------ local requests */

int tm_uac_request(struct tm_shard *sh, struct slice req, tm_uac_cb *cb,
                   void *arg)
{
	struct sip_msg *m = &sh->msg2;
	struct net_rx none;
	struct tm_trans *t;

	if (sip_msg_parse(m, req.p, req.len, &sh->cfg->limits) ||
	    !m->is_request)
		return EINVAL;
	memset(&none, 0, sizeof(none));
	t = tm_trans_new(sh, m, &none);
	if (t == NULL)
		return ENOMEM;
	t->uac_cb = cb;
	t->uac_arg = arg;
	tm_trans_link(t);
	if (tm_forward(t, true, NULL, SLICE_NULL, 0) < 0) {
		/* Nothing went out: the caller hears it now, once. */
		t->final_sent = true;
		tm_trans_release(t);
		return EHOSTUNREACH;
	}
	return 0;
}
