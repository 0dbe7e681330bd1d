/*
 * imsdlg dialog API for C code linked into the daemon (what Kamailio's
 * ims_dialog exports to ims_qos, ims_charging, ims_usrloc_scscf through
 * load_ims_dlg, with the defects of ims-dialog-behaviour.md §13 fixed).
 *
 * Every function must be called on the shard (worker thread) that owns the
 * dialog: from a callback, or from a route run for one of its messages.
 * Dialog pointers are borrowed: valid until the DLGCB_DESTROY callback.
 */
#ifndef IMSDLG_DIALOG_H
#define IMSDLG_DIALOG_H

#include <stdbool.h>
#include <stddef.h>

struct dlg;
struct sip_msg;
struct tm_ctx;

/* Callback types: distinct bits (DLGCB_SPIRALED and
 * DLGCB_TERMINATED_CONFIRMED no longer share one, §13 #21). */
#define DLGCB_LOADED               (1 << 0)
#define DLGCB_CREATED              (1 << 1)
#define DLGCB_FAILED               (1 << 2)
#define DLGCB_CONFIRMED_NA         (1 << 3)
#define DLGCB_CONFIRMED            (1 << 4)
#define DLGCB_REQ_WITHIN           (1 << 5)
#define DLGCB_TERMINATED           (1 << 6)
#define DLGCB_EXPIRED              (1 << 7)
#define DLGCB_EARLY                (1 << 8)
#define DLGCB_RESPONSE_FWDED       (1 << 9)
#define DLGCB_RESPONSE_WITHIN      (1 << 10)
#define DLGCB_MI_CONTEXT           (1 << 11)
#define DLGCB_RPC_CONTEXT          (1 << 12)
#define DLGCB_DESTROY              (1 << 13)
#define DLGCB_SPIRALED             (1 << 14)
#define DLGCB_TERMINATED_CONFIRMED (1 << 15)

#define DLG_DIR_NONE               0
#define DLG_DIR_DOWNSTREAM         1
#define DLG_DIR_UPSTREAM           2

struct dlg_cb_params {
	struct sip_msg *req; /* the request, or NULL */
	struct sip_msg *rpl; /* the reply, or NULL (also for local ones) */
	int direction;       /* DLG_DIR_* */
	void *dlg_data;      /* type-specific (NULL so far) */
	void **param;        /* the param given at registration */
};

typedef void(dlg_cb)(struct dlg *dlg, int type, struct dlg_cb_params *params);
typedef void(dlg_cb_free)(void *param);

/*
 * Registers f for the types on dlg. DLGCB_CREATED (and DLGCB_LOADED) take
 * dlg NULL and are global: register them at start-up, before the workers
 * run. Per-dialog callbacks run newest first (Kamailio's order);
 * free_param (may be NULL) runs when the dialog is destroyed (global ones:
 * at shutdown). 0, EINVAL (bad combination) or ENOMEM.
 */
int register_dlgcb(struct dlg *dlg, int types, dlg_cb *f, void *param,
                   dlg_cb_free *free_param);
/* Runs the global free_param functions (at shutdown). */
void dlg_global_callbacks_free(void);

/*
 * Ends the call like the script's dlg_terminate(): side "caller",
 * "callee", "both" or "all"; reason (may be NULL) goes into the Reason
 * header of the BYEs, or is the phrase of the early final reply. 1, or -1
 * when nothing was left to end.
 */
int dlg_terminate(struct dlg *dlg, const char *side, const char *reason);

/*
 * The same for a dialog named by Call-ID and the tags of a live leg (in
 * either orientation) or by its ids, from any worker thread (not only the
 * owner's: the owner runs it while the caller waits). hdrs (may be NULL):
 * CRLF-terminated header lines for the BYEs. 1, or -1 when there is no
 * such dialog, nothing was left to end, or the caller is not a worker.
 */
int terminate_dlg(const char *callid, const char *ftag, const char *ttag,
                  const char *hdrs, const char *reason);
int lookup_terminate_dlg(unsigned h_entry, unsigned h_id, const char *hdrs);
/* The dialog's ids (as in the did cookie and dlg.list). */
void dlg_get_ids(const struct dlg *dlg, unsigned *h_entry, unsigned *h_id);

/* The dialog of the message being routed, or NULL. */
struct dlg *get_current_dialog(struct tm_ctx *ctx);

/* Dialog variables ($dlg_var): strings; an empty value removes. */
int set_dlg_var(struct dlg *dlg, const char *key, const char *value);
/* The value (borrowed until the next change of that variable) or NULL. */
const char *get_dlg_var(struct dlg *dlg, const char *key);

/*
 * DLGCB_RPC_CONTEXT runs on the dialog's worker for each dialog that
 * dlg.list_ctx, dlg.dlg_list_ctx or dlg.list_match_ctx lists, with
 * params->dlg_data a struct dlg_rpc_context * (valid during the call).
 * What the callback adds with these appears in the dialog's "context"
 * object of the reply, in order; a key added twice keeps the last value.
 * key and value are copied. 0, EINVAL (NULL or empty key, NULL value) or
 * ENOMEM: the chunk being copied is full; what the callbacks added for
 * this dialog is dropped and the dialog is copied again, callbacks
 * included, at the start of the next chunk (so a callback may run more
 * than once for a dialog in one listing, never into the reply twice).
 */
struct dlg_rpc_context;
int dlg_rpc_context_add_str(struct dlg_rpc_context *c, const char *key,
                            const char *value);
int dlg_rpc_context_add_int(struct dlg_rpc_context *c, const char *key,
                            long long value);

#endif
