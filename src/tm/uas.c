/*
 * The server side: replies going upstream (relayed or local), their
 * retransmission for INVITE (timer G) and the end of the server
 * transaction (timers H, I, J, then the wait timer), and stateless replies.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm/tm_int.h"

/* RFC 3581 §4: over a stream, the connection the request came on; over
 * UDP, the source address, at the source port when the client asked for
 * rport (or the script forced it), else at the sent-by port. */
void tm_reply_dst(struct net_dst *d, const struct net_rx *src,
                  struct sip_msg *req, const struct tm_req_edits *e)
{
	const struct sip_via *via;

	memset(d, 0, sizeof(*d));
	d->proto = src->proto;
	d->lst = src->lst;
	d->addr = src->src;
	d->conn_id = src->conn_id;
	d->no_connect = e && e->reply_no_connect;
	/* The source address with the Via's port (RFC 3261 §18.2.2), unless
	 * rport asks for the source port (RFC 3581). Over TCP the request's
	 * connection goes first; when it is gone, a new one goes to the port
	 * the client's Via names, not to the port it sent from. */
	if (!(e && e->force_rport) && sip_msg_top_via(&via, req) == 0 &&
	    !via->has_rport) {
		uint16_t port = via->has_port ? via->port : 5060;
		if (d->addr.sa.sa_family == AF_INET)
			d->addr.in.sin_port = htons(port);
		else
			d->addr.in6.sin6_port = htons(port);
	}
}

/* A reply, final or not, to req where src says. */
static int send_up(struct tm_shard *sh, const struct net_rx *src,
                   struct sip_msg *req, const struct tm_req_edits *e,
                   const char *buf, size_t len, bool final)
{
	struct net_dst d;

	tm_reply_dst(&d, src, req, e);
	/* set_reply_close(): not after a provisional, the final must follow */
	d.close_after = final && e && e->reply_close;
	return net_send(sh->w, &d, buf, len, NULL);
}

/*
 * The header lines of a reply of ours: the Server line (server_header),
 * then the route's own (append_to_reply), composed in buf; only the
 * route's when both do not fit.
 */
static struct slice reply_hdrs(const struct tm_shard *sh, char *buf,
                               size_t size, struct slice extra)
{
	struct slice server = sh->cfg->server_hdr;

	if (server.len == 0 || server.len + extra.len > size)
		return extra;
	memcpy(buf, server.p, server.len);
	if (extra.len)
		memcpy(buf + server.len, extra.p, extra.len);
	return slice_make(buf, server.len + extra.len);
}

struct slice tm_unsupported_line(char *buf, size_t size,
                                 const struct slice *exts, unsigned n)
{
	struct sip_buf line;

	sip_buf_init(&line, buf, size);
	sip_buf_addf(&line, "Unsupported: ");
	for (unsigned i = 0; i < n; i++)
		sip_buf_addf(&line, "%s%.*s", i ? ", " : "",
		             SLICE_ARG(exts[i]));
	sip_buf_addf(&line, "\r\n");
	return line.overflow ? SLICE_NULL : slice_make(buf, line.len);
}

/* The statistic of Kamailio's sl module a reply of this code counts in. */
static enum tm_sl_type sl_type(unsigned code)
{
#define SL_CODE_CASE(_, t)                                                     \
	case t:                                                                \
		return TM_SL_##t;
#define SL_CLASS_NONE(_, t)
	switch (code) {
		TM_SL_TYPE_LIST(SL_CODE_CASE, SL_CLASS_NONE, _)
	}
#undef SL_CODE_CASE
#undef SL_CLASS_NONE
	switch (code / 100) {
	case 1:
		return TM_SL_1xx;
	case 2:
		return TM_SL_2xx;
	case 3:
		return TM_SL_3xx;
	case 4:
		return TM_SL_4xx;
	case 5:
		return TM_SL_5xx;
	case 6:
		return TM_SL_6xx;
	default:
		return TM_SL_xxx;
	}
}

int tm_sl_send(struct tm_shard *sh, struct sip_msg *req,
               const struct net_rx *rx, const struct tm_req_edits *e,
               unsigned code, struct slice reason, struct slice extra_hdrs)
{
	char hdrs[2048];
	struct sip_buf b;
	int err;

	/* An ACK is never answered (RFC 3261 §17.2.1). */
	if (req->method_id == SIP_METHOD_ACK)
		return 0;
	sip_buf_init(&b, sh->out, sizeof(sh->out));
	err = sip_build_reply(&b, req, code, reason, SLICE_NULL,
	                      reply_hdrs(sh, hdrs, sizeof(hdrs), extra_hdrs),
	                      SLICE_NULL);
	if (err)
		return err;
	err = send_up(sh, rx, req, e, b.p, b.len, code >= 200);
	/* Kamailio's sl counts sent replies, and failures apart. */
	if (err)
		sh->stats.sl_failures++;
	else
		sh->stats.sl_replies[sl_type(code)]++;
	return err;
}

/* ---------------------------------------------------- server side */

static void uas_retransmit(struct tmr *tm, void *arg);

static void uas_timeout(struct tmr *tm, void *arg)
{
	struct tm_trans *t = arg;

	(void)tm;
	/* Timer H: the ACK never came (RFC 3261 §17.2.1). */
	tm_trans_wait(t);
}

static void uas_retransmit(struct tmr *tm, void *arg)
{
	struct tm_trans *t = arg;
	struct tm_shard *sh = t->sh;
	unsigned next;

	/* Timer G: the final reply again, T1 doubling up to T2. */
	send_up(sh, &t->src, t->req, &t->ed, t->last_reply, t->last_reply_len,
	        true);
	sh->stats.retransmissions++;
	next = t->uas_retr_interval * 2;
	t->uas_retr_interval = next < sh->cfg->t2_ms ? next : sh->cfg->t2_ms;
	tmr_start(worker_wheel(sh->w), tm, t->uas_retr_interval, uas_retransmit,
	          t);
}

/* The smallest buffer for an INVITE's stored reply: the buffer of its
 * 100 Trying then also holds the 180 and the 200 with SDP that replace
 * it. A non-INVITE request usually gets one reply: no more than it. */
#define INVITE_REPLY_BUF_MIN 1024

static int store_reply(struct tm_trans *t, const char *buf, size_t len)
{
	if (len > t->last_reply_cap) {
		size_t cap = t->is_invite && len < INVITE_REPLY_BUF_MIN
		                     ? INVITE_REPLY_BUF_MIN
		                     : len;
		char *copy = mem_get(cap);

		if (copy == NULL)
			return ENOMEM;
		mem_put(t->last_reply, t->last_reply_cap);
		t->sh->bytes += cap - t->last_reply_cap;
		t->last_reply = copy;
		t->last_reply_cap = cap;
	}
	memcpy(t->last_reply, buf, len);
	t->last_reply_len = len;
	return 0;
}

int tm_reply_upstream(struct tm_trans *t, const char *buf, size_t len,
                      unsigned code, int b)
{
	struct tm_shard *sh = t->sh;
	struct twheel *wh = worker_wheel(sh->w);
	int err;

	if (t->final_sent && !(code >= 200 && code < 300 && t->is_invite))
		return EALREADY;
	err = store_reply(t, buf, len);
	if (err)
		return err;
	t->last_code = code;
	if (b >= 0) {
		sh->stats.rpl_relayed++;
		sh->stats.fwd_replies++;
		t->br[b]->rpl_relayed++;
	} else {
		sh->stats.rpl_generated++;
	}
	/* A transaction ends once, with its first final reply: a second
	 * 2xx (another fork, a retransmission) is relayed, not counted. */
	if (code >= 200 && code < 700 && !t->final_sent)
		sh->stats.completed[code / 100]++;
	err = send_up(sh, &t->src, t->req, &t->ed, buf, len, code >= 200);
	if (code < 200)
		return err;

	t->final_sent = true;
	if (t->uas_state == UAS_TERMINATED)
		return err; /* a further 2xx from another branch */
	if (t->is_invite && code >= 300) {
		/* §17.2.1: wait for the ACK; retransmit over UDP. */
		t->uas_state = UAS_COMPLETED;
		if (t->src.proto == NET_UDP) {
			t->uas_retr_interval = sh->cfg->t1_ms;
			tmr_start(wh, &t->uas_retr, t->uas_retr_interval,
			          uas_retransmit, t);
		}
		tmr_start(wh, &t->uas_wait, 64 * sh->cfg->t1_ms, uas_timeout,
		          t);
	} else {
		/* A 2xx ends the INVITE server transaction (§17.2.1); a
		 * non-INVITE one lingers for retransmissions (timer J).
		 * Both stay matchable for the wait time. */
		tm_trans_wait(t);
	}
	return err;
}

int tm_local_reply(struct tm_trans *t, unsigned code, struct slice reason,
                   struct slice extra_hdrs)
{
	struct tm_shard *sh = t->sh;
	struct sip_buf b;
	struct slice tag = slice_make(t->to_tag, SIP_TAG_LEN);
	char hdrs[2048];
	int err;

	if (t->final_sent)
		return EALREADY;
	if (code > 100 && sh->cfg->hooks && sh->cfg->hooks->reply_out)
		sh->cfg->hooks->reply_out(t, NULL, code, -1);
	if (t->to_tag[0] == 0)
		sip_gen_tag(t->to_tag, t->req);
	sip_buf_init(&b, sh->out, sizeof(sh->out));
	err = sip_build_reply(&b, t->req, code, reason, tag,
	                      reply_hdrs(sh, hdrs, sizeof(hdrs), extra_hdrs),
	                      SLICE_NULL);
	if (err)
		return err;
	return tm_reply_upstream(t, b.p, b.len, code, -1);
}

void tm_uas_ack(struct tm_trans *t)
{
	struct tm_shard *sh = t->sh;

	if (t->uas_state != UAS_COMPLETED)
		return;
	/* §17.2.1: the ACK confirms; timer I (T4 over UDP) absorbs its
	 * retransmissions, then the wait timer. */
	t->uas_state = UAS_CONFIRMED;
	tmr_cancel(worker_wheel(sh->w), &t->uas_retr);
	tm_trans_wait(t);
}

void tm_uas_retransmission(struct tm_trans *t)
{
	struct tm_shard *sh = t->sh;

	/* §17.2.1 / §17.2.2: a retransmitted request gets the last reply
	 * again (nothing before a provisional was sent). */
	if (t->last_reply) {
		sh->stats.retransmissions++;
		send_up(sh, &t->src, t->req, &t->ed, t->last_reply,
		        t->last_reply_len, t->last_code >= 200);
	}
}

int tm_trans_reply(struct tm_trans *t, unsigned code, struct slice reason,
                   struct slice cancel_reason)
{
	char line[256];
	int err;

	if (t->final_sent)
		return EALREADY;
	err = tm_local_reply(t, code, reason, t->ed.reply_hdrs);
	if (err || !t->is_invite || code < 200)
		return err;
	/* A final reply leaves nothing to wait for downstream (RFC 3261
	 * §16.10): the pending branches are cancelled, saying why. */
	if (cancel_reason.len == 0) {
		int n = snprintf(line, sizeof(line),
		                 "Reason: SIP;cause=%u;text=\"%.*s\"\r\n", code,
		                 (int)(reason.len < 128 ? reason.len : 128),
		                 reason.p);
		cancel_reason = slice_make(line, (size_t)n);
	}
	tm_cancel_branches(t, cancel_reason);
	return 0;
}
