/*
 * dlg_bridge(from, to, op) and dlg.bridge_dlg: Kamailio's third-party
 * call (ims-dialog-behaviour.md §12.2). The proxy calls `from` as a user
 * agent would (an INVITE from bridge_controller with a hold offer, whose
 * 2xx tm ACKs), asks it once answered, with a REFER, to call `to` in a
 * call of its own, and hangs up with a BYE once the REFER is answered.
 *
 * No dialog is tracked: a struct bridge holds what the three requests
 * need. It lives on the worker owning its Call-ID (its replies come back
 * there), is posted to it from whichever thread asked, and is freed after
 * the BYE's answer or at the first failure.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "dlg/dlg_int.h"

/* Kamailio's offer: on hold, no media address. */
static const char hold_sdp[] = "v=0\r\n"
                               "o=imsdlg-bridge 0 0 IN IP4 0.0.0.0\r\n"
                               "s=imsdlg\r\n"
                               "c=IN IP4 0.0.0.0\r\n"
                               "t=0 0\r\n"
                               "m=audio 9 RTP/AVP 8 0\r\n"
                               "a=rtpmap:8 PCMA/8000\r\n"
                               "a=rtpmap:0 PCMU/8000\r\n";

/* Longest URI and body taken. */
#define BRIDGE_URI_MAX  1024
#define BRIDGE_BODY_MAX 8192

/* What the requests after the INVITE need; from and to point into text. */
struct bridge {
	struct tm_shard *tm; /* the owner's */
	const struct dlg_config *cfg;
	char callid[40], from_hdr[BRIDGE_URI_MAX + 48];
	const char *from, *to;
	char *bye; /* the BYE, built from the 2xx with the REFER */
	char text[];
};

/* The INVITE on its way to the owner, with what the bridge will keep: a
 * job dropped at shutdown takes all of it with it. */
struct bridge_job {
	struct rt_job job; /* first */
	const struct dlg_config *cfg;
	char callid[40], from_hdr[BRIDGE_URI_MAX + 48];
	size_t from_len, to_len, invite_len;
	char text[]; /* from, to, the INVITE */
};

static void bridge_free(struct bridge *b)
{
	free(b->bye);
	free(b);
}

/* A URI that goes into a header or start line as it is. */
static bool uri_ok(struct slice s, bool may_be_empty)
{
	if (s.len == 0)
		return may_be_empty;
	if (s.len > BRIDGE_URI_MAX)
		return false;
	for (size_t i = 0; i < s.len; i++)
		if ((unsigned char)s.p[i] <= ' ' || s.p[i] == '<' ||
		    s.p[i] == '>' || s.p[i] == '"' || s.p[i] == 0x7f)
			return false;
	return true;
}

static void send_bye(struct bridge *b);

static void bye_done(void *arg, unsigned code, struct sip_msg *rpl)
{
	struct bridge *b = arg;

	(void)rpl;
	LOG_INFO("dialog: bridge %s: BYE answered %u", b->callid, code);
	bridge_free(b);
}

/* Any final reply to the REFER ends the call with `from`: accepted, it is
 * calling `to` in a call of its own; refused, there is nothing left to
 * do in this one (as Kamailio does). */
static void refer_done(void *arg, unsigned code, struct sip_msg *rpl)
{
	struct bridge *b = arg;

	(void)rpl;
	LOG_INFO("dialog: bridge %s: %s answered the REFER to %s with %u",
	         b->callid, b->from, b->to, code);
	send_bye(b);
}

static void send_bye(struct bridge *b)
{
	if (tm_uac_request(b->tm, slice_cstr(b->bye), bye_done, b)) {
		LOG_WARN("dialog: bridge %s: the BYE to %s could not be sent",
		         b->callid, b->from);
		bridge_free(b);
	}
}

/* Request method with cseq in the dialog the 2xx rpl set up, with header
 * lines hdrs and no body, into buf. */
static int in_dialog(struct sip_buf *buf, struct bridge *b, struct sip_msg *rpl,
                     const char *method, uint32_t cseq, const char *hdrs)
{
	int err = sip_build_in_dialog(buf, rpl, slice_cstr(b->from),
	                              slice_cstr(b->from_hdr),
	                              slice_cstr(b->callid), method, cseq);

	if (err)
		return err;
	sip_buf_adds(buf, hdrs);
	sip_buf_adds(buf, "Content-Length: 0\r\n\r\n");
	return buf->overflow ? ENOSPC : 0;
}

/* The INVITE's final reply: answered, the REFER (CSeq 2) and, kept for
 * later, the BYE (CSeq 3); else the bridge ends here. */
static void invite_done(void *arg, unsigned code, struct sip_msg *rpl)
{
	struct bridge *b = arg;
	char refer[8192], bye[4096], hdrs[3 * BRIDGE_URI_MAX + 64];
	struct sip_buf rb, bb;

	if (code < 200 || code >= 300 || rpl == NULL) {
		LOG_NOTICE("dialog: bridge %s: %s answered %u: no bridge",
		           b->callid, b->from, code);
		bridge_free(b);
		return;
	}
	snprintf(hdrs, sizeof(hdrs),
	         "Referred-By: %s\r\nRefer-To: %s\r\nContact: <%s>\r\n",
	         b->cfg->bridge_controller, b->to, b->cfg->bridge_contact);
	sip_buf_init(&rb, refer, sizeof(refer));
	sip_buf_init(&bb, bye, sizeof(bye));
	if (in_dialog(&rb, b, rpl, "REFER", 2, hdrs) ||
	    in_dialog(&bb, b, rpl, "BYE", 3, "") ||
	    (b->bye = slice_strdup(slice_make(bb.p, bb.len))) == NULL ||
	    tm_uac_request(b->tm, slice_make(rb.p, rb.len), refer_done, b)) {
		LOG_WARN("dialog: bridge %s: the REFER to %s could not be "
		         "sent (%s)",
		         b->callid, b->from, rpl->error ? rpl->error : "");
		/* The call is up: it ends with the BYE, when there is one. */
		if (b->bye)
			send_bye(b);
		else
			bridge_free(b);
	}
}

/* On the owner's loop: the bridge, and its INVITE (CSeq 1). */
static void bridge_start(struct worker *w, struct rt_job *job)
{
	struct bridge_job *j = (struct bridge_job *)job;
	struct dlg_shard *ds = dlg_shard_at(worker_id(w));
	struct bridge *b = malloc(sizeof(*b) + j->from_len + j->to_len + 2);

	if (ds == NULL || b == NULL) {
		free(b);
		return;
	}
	memset(b, 0, sizeof(*b));
	b->tm = ds->tm;
	b->cfg = j->cfg;
	memcpy(b->callid, j->callid, sizeof(b->callid));
	memcpy(b->from_hdr, j->from_hdr, sizeof(b->from_hdr));
	memcpy(b->text, j->text, j->from_len + j->to_len + 2);
	b->from = b->text;
	b->to = b->text + j->from_len + 1;
	if (tm_uac_request(b->tm,
	                   slice_make(j->text + j->from_len + j->to_len + 2,
	                              j->invite_len),
	                   invite_done, b)) {
		LOG_WARN(
		        "dialog: bridge %s: the INVITE to %s could not be sent",
		        b->callid, b->from);
		bridge_free(b);
	}
}

/* The INVITE into j's text, after from and to; op_lr: op has ";lr". */
static bool build_invite(struct bridge_job *j, size_t cap, struct slice op,
                         bool op_lr, struct slice body)
{
	const char *from = j->text;
	struct sip_buf buf;

	sip_buf_init(&buf, j->text + j->from_len + j->to_len + 2, cap);
	sip_buf_addf(&buf, "INVITE %s SIP/2.0\r\n", from);
	/* The outbound proxy as the first hop of a route set. */
	if (op.len)
		sip_buf_addf(&buf, "Route: <%.*s%s>\r\n", SLICE_ARG(op),
		             op_lr ? "" : ";lr");
	sip_buf_addf(&buf,
	             "From: %s\r\nTo: <%s>\r\nCall-ID: %s\r\n"
	             "CSeq: 1 INVITE\r\nMax-Forwards: 70\r\n"
	             "Contact: <%s>\r\n",
	             j->from_hdr, from, j->callid, j->cfg->bridge_contact);
	if (body.len)
		sip_buf_adds(&buf, "Content-Type: application/sdp\r\n");
	sip_buf_addf(&buf, "Content-Length: %zu\r\n\r\n", body.len);
	sip_buf_add(&buf, body);
	j->invite_len = buf.len;
	return !buf.overflow;
}

int dlg_bridge(struct rt *rt, unsigned nworkers, const struct dlg_config *cfg,
               struct slice from, struct slice to, struct slice op,
               const struct slice *body)
{
	struct slice sdp = body ? *body : SLICE_LIT(hold_sdp);
	/* the INVITE: its lines around the three URIs, and the body */
	size_t cap = sdp.len + 4 * BRIDGE_URI_MAX + 512;
	struct bridge_job *j;
	struct sip_uri u, o;
	const char *why;
	uint64_t rnd[2];

	if (!uri_ok(from, false) || !uri_ok(to, false) || !uri_ok(op, true) ||
	    sip_uri_parse(&u, from, &why) ||
	    (op.len && sip_uri_parse(&o, op, &why)) ||
	    sdp.len > BRIDGE_BODY_MAX ||
	    !uri_ok(slice_cstr(cfg->bridge_controller), false) ||
	    !uri_ok(slice_cstr(cfg->bridge_contact), false)) {
		LOG_ERR("dialog: dlg_bridge(%.*s, %.*s, %.*s): two URIs (the "
		        "first a SIP URI), an optional outbound proxy URI, a "
		        "body of at most %d bytes",
		        SLICE_ARG(from), SLICE_ARG(to), SLICE_ARG(op),
		        BRIDGE_BODY_MAX);
		return -1;
	}
	j = calloc(1, sizeof(*j) + from.len + to.len + 2 + cap);
	if (j == NULL)
		return -1;
	j->job.fn = bridge_start;
	j->cfg = cfg;
	j->from_len = from.len;
	j->to_len = to.len;
	memcpy(j->text, from.p, from.len);
	memcpy(j->text + from.len + 1, to.p, to.len);
	if (getrandom(rnd, sizeof(rnd), GRND_NONBLOCK) != sizeof(rnd)) {
		rnd[0] = (uint64_t)(uintptr_t)j ^ (uint64_t)time(NULL);
		rnd[1] = rnd[0] * 0x9e3779b97f4a7c15ull;
	}
	snprintf(j->callid, sizeof(j->callid), "%016llx-bridge@imsdlg",
	         (unsigned long long)rnd[0]);
	snprintf(j->from_hdr, sizeof(j->from_hdr), "<%s>;tag=%08x",
	         cfg->bridge_controller, (unsigned)rnd[1]);
	if (!build_invite(j, cap, op, op.len && o.lr, sdp)) {
		free(j);
		return -1;
	}
	LOG_INFO("dialog: bridge %s: calling %s to refer it to %.*s", j->callid,
	         j->text, SLICE_ARG(to));
	rt_post(rt,
	        nworkers > 1
	                ? tm_owner_of_callid(slice_cstr(j->callid), nworkers)
	                : 0,
	        &j->job);
	return 1;
}
