/* Internals shared by the files of tm/. */
#ifndef IMSDLG_TM_INT_H
#define IMSDLG_TM_INT_H

#include "tm/tm.h"

/* Server side states (RFC 3261 §17.2.1, §17.2.2). */
enum tm_uas_state {
	UAS_PROCEEDING, /* no final reply sent yet */
	UAS_COMPLETED,  /* final reply sent; INVITE non-2xx: waiting ACK */
	UAS_CONFIRMED,  /* INVITE: ACK received */
	UAS_TERMINATED, /* lingering in the wait timer */
};

/* Client side states per branch (§17.1.1, §17.1.2). */
enum tm_uac_state {
	UAC_UNUSED,
	UAC_RESOLVING,  /* its destination is a name dns is looking up */
	UAC_CALLING,    /* request sent, nothing received */
	UAC_PROCEEDING, /* provisional received */
	UAC_COMPLETED,  /* final received (or faked) */
};

/* Pending changes to a request, recorded by the script and applied to
 * every branch when the request is forwarded. */
#define TM_MAX_HDR_EDITS 16

/* Script functions armed for a transaction (t_on_failure ...). */
enum tm_hook {
	TM_HOOK_FAILURE,
	TM_HOOK_BRANCH,
	TM_HOOK_REPLY,
	TM_HOOK__COUNT,
};

struct tm_req_edits {
	struct slice ruri; /* new Request-URI, empty when unchanged */
	struct slice duri; /* $du */
	struct slice hdr_append[TM_MAX_HDR_EDITS];
	unsigned n_append;
	uint32_t hdr_first; /* bit i: hdr_append[i] goes before the others */
	struct slice hdr_remove[TM_MAX_HDR_EDITS];
	unsigned n_remove;
	struct slice reply_hdrs; /* append_to_reply lines, concatenated */
	bool record_route;
	struct slice rr_params;
	unsigned routes_popped;
	bool route_last_taken;   /* §16.4: the last Route value is the R-URI */
	bool maxfwd_done;        /* process_maxfwd ran */
	bool force_rport;        /* force_rport(): as if the Via had rport */
	bool reply_no_connect;   /* set_reply_no_connect(): replies only on an
	                            open TCP connection */
	bool forward_no_connect; /* set_forward_no_connect(): likewise for
	                            the request relayed */
	bool reply_close;        /* set_reply_close(): a TCP connection
	                            closes after the final reply */
	bool forward_close;      /* set_forward_close(): and after the
	                            request relayed */
	bool local_rport;        /* add_local_rport(): ;rport on our Via */
	/* t_set_auto_inv_100(): 0 as configured, 1 on, -1 off */
	signed char auto_inv_100;
	bool disable_6xx;      /* t_set_disable_6xx(): a 6xx cancels nothing */
	unsigned maxfwd_limit; /* inserted when the header is absent */
	struct slice branches[TM_MAX_BRANCHES];
	unsigned nbranches;
	uint32_t flags;
	uint32_t bflags; /* branch flags of the Request-URI's branch */
	uint32_t branch_bflags[TM_MAX_BRANCHES]; /* of branches[i] */
	struct tm_avp *avps;
	struct slice hooks[TM_HOOK__COUNT];
	unsigned fr_ms, fr_inv_ms; /* t_set_fr(); 0 = the configured ones */
};

/* The header lines a branch route added or removed: its branch's alone
 * (Kamailio runs a branch route on a copy of the request). */
struct tm_branch_hdrs {
	struct slice append[TM_MAX_HDR_EDITS];
	unsigned n_append;
	uint32_t first; /* bit i: append[i] goes before the other headers */
	struct slice remove[TM_MAX_HDR_EDITS];
	unsigned n_remove;
};

struct tm_avp {
	struct tm_avp *next;
	struct slice name;
	struct tm_val v;
};

struct tm_branch {
	enum tm_uac_state state;
	struct tm_trans *t;
	unsigned index;
	struct net_dst dst;
	struct tm_named *named; /* sent to a name: its addresses (owned) */
	char *req;              /* the request as sent (owned) */
	size_t req_len;
	struct slice uri; /* the branch's Request-URI (in req) */
	struct tmr retr;  /* timers A / E */
	struct tmr fr;    /* timers B / F / C (fr_timer, fr_inv_timer) */
	unsigned retr_interval;
	unsigned code;   /* final (or highest provisional) code */
	bool timed_out;  /* the final is a local 408 */
	bool dropped;    /* its reply no longer competes (failure_reply_mode) */
	uint32_t bflags; /* branch flags (KSR.setbflag ...) */
	struct tm_branch_hdrs *own_hdrs; /* in t's arena; NULL: none */
	bool provisional;                /* a provisional reply was received */
	bool cancel_pending; /* CANCEL to send when a provisional arrives */
	bool canceled;       /* CANCEL sent */
	char *cancel;        /* the CANCEL sent (owned), for retransmission */
	size_t cancel_len;
	char *reply; /* final reply received (owned), for aggregation */
	size_t reply_len;
	/* Replies received on this branch and relayed upstream: the
	 * difference is counted absorbed when the transaction goes. */
	unsigned rpl_received, rpl_relayed;
};

/* What the server-key table chains (RFC 3261 §17.2.3 keys): a
 * transaction, or the compact form a finished non-INVITE one takes for
 * the rest of timer J (struct tm_linger in trans.c). First member of
 * both. */
struct tm_keyed {
	struct tm_keyed *hnext;
	uint64_t key;
	bool linger;
};

struct tm_trans {
	struct tm_keyed hk; /* first: the server-key table chains it */
	bool hashed;        /* in that table (server transactions) */
	struct tm_shard *sh;
	uint32_t slot, gen; /* index in the shard's slot table, generation */
	enum sip_method method;
	bool is_invite;

	/* The request as received and its parse, in one block (owned):
	 * the parse, sized for its headers only, then the bytes. */
	struct sip_msg *req;
	size_t req_size;   /* of the block */
	struct net_rx src; /* buf unused; where replies go */

	enum tm_uas_state uas_state;
	char *last_reply; /* last reply sent upstream (owned) */
	size_t last_reply_len;
	size_t last_reply_cap; /* its buffer's size: the next one may fit */
	unsigned last_code;
	struct tmr uas_retr; /* timer G */
	struct tmr uas_wait; /* timers H, I, J and the wait timer */
	unsigned uas_retr_interval;
	bool final_sent;
	bool canceled;   /* CANCEL received from upstream */
	bool in_failure; /* running the failure route */
	/* What the failure route running drops of the replies received:
	 * failure_reply_mode, or what t_drop_replies() asked */
	unsigned char drop_mode;
	char to_tag[SIP_TAG_LEN];

	/* Allocated as branches start: most transactions have one. */
	struct tm_branch *br[TM_MAX_BRANCHES];
	unsigned nbr;
	unsigned step_first; /* first branch of the last serial forking step */

	struct tm_req_edits ed; /* copied from the request route */
	struct arena arena;     /* holds ed's strings */
	/* arena's first bytes: enough for the usual strings (a dialog's
	 * Record-Route cookie), which would otherwise cost a block */
	char arena_buf[128];
	void *data; /* the layer above's pointer */
	/* A request originated here (tm_uac_request): no server side. */
	tm_uac_cb *uac_cb;
	void *uac_arg;
};

struct tm_shard {
	struct worker *w;
	void *data; /* the layer above's shard state */
	struct rt *rt;
	const struct tm_config *cfg;
	struct tm_script script;
	struct tm_stats stats;
	size_t bytes;

	struct dns *dns; /* made on the first name to resolve */

	struct tm_keyed **buckets; /* server transactions by key */
	size_t nbuckets, nhashed;  /* grown to keep chains short */
	/* The start of this shard's branch ids: the cookie, our tag, the
	 * worker and a random number drawn at start-up, so that ids are
	 * unique across shards and restarts (RFC 3261 §8.1.1.7), not only
	 * within a shard's slots. */
	char branch_prefix[32];
	unsigned branch_prefix_len;
	struct tm_trans **slots; /* every transaction by slot (branch ids) */
	uint32_t *slot_gen;
	uint32_t nslots, free_head;
	uint32_t *free_next;

	struct sip_msg msg;   /* scratch parse of the message being handled */
	struct sip_msg msg2;  /* a second one (reply routes, CANCEL) */
	struct sip_msg msg3;  /* a third: the other branches' challenges */
	struct sip_msg faked; /* event routes without a message */
	bool faked_ready;
	char arena_buf[16384];
	struct arena arena;
	char out[65536]; /* outgoing message being built */
};

/* trans.c */
struct tm_trans *tm_trans_new(struct tm_shard *sh, const struct sip_msg *m,
                              const struct net_rx *rx);
void tm_trans_link(struct tm_trans *t);
void tm_trans_release(struct tm_trans *t); /* unlink + drop table ref */
struct tm_linger;
/* The server transaction of m (RFC 3261 §17.2.3), or NULL; then, when
 * linger is not NULL, *linger is the compact form of a finished
 * non-INVITE transaction of m, or NULL. */
struct tm_trans *tm_trans_lookup(struct tm_shard *sh, struct sip_msg *m,
                                 bool for_cancel, struct tm_linger **linger);
/* Sends the reply of l again, for a retransmitted request. */
void tm_linger_resend(struct tm_linger *l);
struct tm_branch *tm_branch_lookup(struct tm_shard *sh, struct slice branch);
void tm_branch_id(char *dst, size_t size, const struct tm_trans *t, unsigned b);
/* t has ended: it lingers the wait time (wt_timer) for retransmissions. */
void tm_trans_wait(struct tm_trans *t);

/* uas.c */
/* A reply sent upstream on t: relayed from branch b, or generated here
 * (b < 0). */
int tm_reply_upstream(struct tm_trans *t, const char *buf, size_t len,
                      unsigned code, int b);
int tm_local_reply(struct tm_trans *t, unsigned code, struct slice reason,
                   struct slice extra_hdrs);
/* "Unsupported: a, b" and CRLF (a 420's, RFC 3261 §20.40) in buf, or
 * empty when it does not fit. */
struct slice tm_unsupported_line(char *buf, size_t size,
                                 const struct slice *exts, unsigned n);
/* e: what the script asked of the replies (force_rport, no TCP
 * connection opened for them), NULL for nothing. */
int tm_sl_send(struct tm_shard *sh, struct sip_msg *req,
               const struct net_rx *rx, const struct tm_req_edits *e,
               unsigned code, struct slice reason, struct slice extra_hdrs);
void tm_uas_ack(struct tm_trans *t);
void tm_uas_retransmission(struct tm_trans *t);
/* Where a reply to req, received as src, goes (RFC 3261 §18.2.2); with
 * e's force_rport as if its top Via had rport, with its reply_no_connect
 * only over an open TCP connection (e may be NULL). */
void tm_reply_dst(struct net_dst *d, const struct net_rx *src,
                  struct sip_msg *req, const struct tm_req_edits *e);

/* uac.c */
/* Starts the branches of t: $ru (when with_ruri) and the appended ones. */
int tm_forward(struct tm_trans *t, bool with_ruri, const char *proto,
               struct slice host, unsigned port);
void tm_reply_in(struct tm_shard *sh, struct sip_msg *rpl,
                 const struct net_rx *rx);
void tm_cancel_branches(struct tm_trans *t, struct slice reason_hdr);
/* ctx's request relayed without a transaction, to dst when given, else
 * to $du or the next hop of $ru: 1 sent, -1 not. */
int tm_forward_stateless(struct tm_ctx *ctx, struct slice dst);
void tm_branch_fail(struct tm_branch *b, unsigned code);
/* The reason phrase of a final reply tm makes for a branch that failed
 * here (408 timeout, 478 unresolvable, 503 ...). */
struct slice tm_failure_reason(unsigned code);
/* Frees what a branch to a name keeps (and ends its wait for dns). */
void tm_branch_free_named(struct tm_branch *b);

/* ctx.c */
void tm_ctx_init(struct tm_ctx *ctx, struct tm_shard *sh, enum tm_route_type rt,
                 struct sip_msg *msg, const struct net_rx *rx,
                 struct tm_trans *t);
int tm_edits_adopt(struct tm_trans *t, const struct tm_req_edits *ed);
void tm_run_route(struct tm_shard *sh, struct tm_ctx *ctx,
                  enum tm_route_type rt, const char *fn);

#endif
