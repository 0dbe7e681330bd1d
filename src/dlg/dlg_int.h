/* Internals shared by the files of dlg/. */
#ifndef IMSDLG_DLG_INT_H
#define IMSDLG_DLG_INT_H

#include <time.h>

#include "dlg/dlg.h"
#include "imsdlg/dialog.h"

enum leg_state {
	LEG_EARLY,
	LEG_CONFIRMED,
	LEG_ENDED,
};

/* A dialog variable ($dlg_var): both strings owned. */
struct dlg_var {
	struct dlg_var *next;
	char *key;
	char *value;
};

/* The callee side of one branch: one per To tag relayed upstream. */
struct dlg_leg {
	struct dlg_leg *next;
	enum leg_state state;
	char *tag;
	char *contact;        /* remote target towards the callee */
	char *route_set;      /* Route values for requests towards the callee */
	uint32_t caller_cseq; /* highest CSeq from the caller on this leg */
	uint32_t callee_cseq; /* highest CSeq from the callee */
	const struct net_listener *sock;
	int branch;                  /* tm branch that created it */
	bool bye_caller, bye_callee; /* BYE generated towards each side */
};

struct dlg {
	struct dlg_shard *ds;
	struct dlg *hnext;
	uint32_t h_entry, h_id;
	enum dlg_state state;
	char *callid, *from_uri, *from_tag, *to_uri, *req_uri;
	char *caller_contact, *caller_route_set;
	uint32_t first_cseq;
	const struct net_listener *caller_sock;
	struct dlg_leg *legs;
	time_t init_ts, start_ts, end_ts;
	unsigned lifetime;
	struct tmr timer; /* lifetime, early, noack or end timeout */
	uint32_t sflags;
	bool canceled;     /* CANCEL from the caller seen */
	bool terminating;  /* BYEs generated, waiting for their replies */
	bool bye_answered; /* one of our BYEs got its final reply */
	char *term_reason;
	char *term_hdrs;      /* CRLF-terminated lines for our BYEs (RPC) */
	struct tm_trans *inv; /* the INVITE server transaction while early */
	const struct tm_trans *inv_id; /* identity only, never dereferenced */
	unsigned refs; /* holders besides the table (BYEs pending) */
	struct profile_set profiles;
	struct dlg_cb_entry *cbs;
	struct dlg_var *vars;
};

/* Profile memberships asked for before the dialog exists (§7.4). */
#define DLG_PENDING_PROFILES 8

/* Per-message dialog context (tm_ctx.dlg_ctx), in the message arena. */
struct dlg_msg_ctx {
	struct dlg *dlg;
	bool downstream;
	bool manage;                 /* dlg_manage() asked for a dialog */
	enum dlg_state status_after; /* $DLG_status */
	unsigned npending;
	struct {
		const struct profile *p;
		struct slice value;
	} pending[DLG_PENDING_PROFILES];
};

struct dlg_msg_ctx *dlg_msg_ctx(struct tm_ctx *ctx);

/* callbacks.c */
void dlg_run_cbs(struct dlg *d, int type, struct sip_msg *req,
                 struct sip_msg *rpl, int dir);
void dlg_callbacks_free(struct dlg *d);
void dlg_vars_free(struct dlg *d);

struct dlg_shard {
	const struct dlg_config *cfg;
	struct tm_shard *tm;
	unsigned shard_id, nshards;
	struct dlg **slots; /* hash_size chains by h_entry */
	uint32_t *next_id;  /* per slot */
	size_t count;
	struct dlg_stats stats;
};

/* Kamailio's core string hash (ims-dialog-behaviour.md §3.1). */
unsigned dlg_core_hash(const char *s, size_t len);
/* "<revhex h_entry>.<revhex h_id>" into dst (>= 18 bytes); returns len. */
size_t dlg_did_print(char *dst, uint32_t h_entry, uint32_t h_id);
/* Parses a did value; false when malformed. */
bool dlg_did_parse(uint32_t *h_entry, uint32_t *h_id, struct slice v);

/* The table lookups of dlg.c, for rpc.c (shard's thread only): by id, and
 * by Call-ID and the tags of a live leg in either orientation. */
struct dlg *dlg_lookup_id(struct dlg_shard *ds, uint32_t h_entry,
                          uint32_t h_id);
struct dlg *dlg_lookup_tags(struct dlg_shard *ds, struct slice callid,
                            struct slice ftag, struct slice ttag);
/* Ends d on both sides with reason; hdrs (CRLF-terminated header lines,
 * may be NULL) go into the BYEs it sends, after dlg_extra_hdrs. */
int dlg_terminate_hdrs(struct dlg *d, const char *reason, const char *hdrs);
/* Sets d's lifetime to seconds (> 0) and, once confirmed, re-arms its
 * timer from now: dlg_set_timeout() and dlg.set_timeout. 1, or -1 for an
 * ended dialog or 0 seconds. */
int dlg_set_lifetime(struct dlg *d, unsigned seconds);

/* rpc.c: the dialog shard of a worker (NULL before it has one or after
 * it stopped), for the functions the RPC methods run on workers. */
struct dlg_shard *dlg_rpc_shard(struct worker *w);
/* stats.c: registers stats.get_statistics, stats.fetch, stats.fetchn. */
int dlg_register_stats_rpc(void);

#endif
