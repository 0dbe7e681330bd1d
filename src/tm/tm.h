/*
 * tm: RFC 3261 transactions of a stateful proxy (§16, §17): server
 * transactions that absorb retransmissions, client transactions per branch
 * with timers A, B, D, E, F, K, parallel and serial forking, response
 * aggregation, CANCEL in both directions; plus the per-message routing
 * context (struct tm_ctx) that the script acts on.
 *
 * Everything here belongs to one shard (one worker thread).
 *
 * Ownership: a transaction is refcounted (core obj); the shard's tables
 * hold one reference until the transaction has terminated and its wait
 * timer ran. tm_ctx borrows everything it points to for one route run.
 */
#ifndef IMSDLG_TM_H
#define IMSDLG_TM_H

#include "core/core.h"
#include "dns/dns.h"
#include "net/net.h"
#include "sip/sip.h"

/* RFC 3261 §17.1.1.1 timer values, in milliseconds. */
#define TM_T1_DEFAULT   500
#define TM_T2_DEFAULT   4000
#define TM_T4_DEFAULT   5000

#define TM_MAX_BRANCHES 12

struct tm_shard;
struct tm_trans;
struct tm_ctx;

/*
 * Hooks for the layer above (the dialog engine); any may be NULL. They run
 * on the transaction's shard.
 */
struct tm_hooks {
	/* A server transaction was created in the request route
	 * (t_newtran(), t_relay()). False: the hook has answered it (a
	 * limit refused the call) and nothing is relayed; the route ends. */
	bool (*trans_created)(struct tm_ctx *ctx, struct tm_trans *t);
	/* A reply to t is about to go upstream: relayed from branch b (rpl
	 * the reply) or generated here (rpl NULL, b -1). Not for 100. */
	void (*reply_out)(struct tm_trans *t, struct sip_msg *rpl,
	                  unsigned code, int b);
	/* A CANCEL for t arrived from upstream. */
	void (*canceled)(struct tm_trans *t);
	/* t is being destroyed. */
	void (*trans_destroyed)(struct tm_trans *t);
};

/* The tm settings of `modparam("tm", ...)`; read-only after start. */
/* A name (or address) this proxy answers to besides its listeners:
 * Kamailio's alias, "[proto:]host[:port]"; without proto or port it
 * matches any. */
struct tm_alias {
	char host[256]; /* without brackets */
	uint16_t port;  /* 0: any */
	bool any_proto;
	enum net_proto proto;
};

/* 0, or EINVAL with *why. */
int tm_alias_parse(struct tm_alias *out, const char *spec, const char **why);

struct tm_config {
	unsigned t1_ms, t2_ms, t4_ms;
	unsigned fr_timer_ms;     /* no final reply on a branch: 408 */
	unsigned fr_inv_timer_ms; /* INVITE with a provisional: CANCEL, 408 */
	unsigned wait_timer_ms;   /* linger of a finished transaction */
	unsigned max_forwards;    /* inserted when absent (70) */
	bool auto_inv_100;        /* 100 Trying for INVITE (on) */
	/* Kamailio's failure_reply_mode: what the replies received so far
	 * become once a failure route has run (and not replied): 0 they
	 * still compete; 1 none does; 2 those of the last serial forking
	 * step do not; 3 (default) none does if the route started a new
	 * step. A route that leaves nothing to compete ends the transaction
	 * with a 500. */
	unsigned failure_reply_mode;
	bool dns_failover; /* a name's next address (RFC 3263 §4.3) */
	/* Kamailio's server_header and user_agent_header: a whole header
	 * line with its CRLF, or empty (none, or server_signature=no) */
	struct slice server_hdr;     /* on every reply of ours */
	struct slice user_agent_hdr; /* on every request of ours */
	/* sanity module: the extensions a Proxy-Require may name
	 * (comma-separated), the checks of sanity_check() without
	 * arguments, and whether it leaves the reply to sanity_reply() */
	struct slice proxy_require;
	unsigned sanity_checks, sanity_uri_checks;
	bool sanity_noreply;
	struct sip_limits limits;
	struct dns_config dns; /* for destinations that are names */
	const struct tm_alias *aliases;
	unsigned naliases;
	const struct tm_hooks *hooks;
};

void tm_config_defaults(struct tm_config *c);

/* Script hooks: the routing engine tm calls back into. */
enum tm_route_type {
	TM_ROUTE_REQUEST,
	TM_ROUTE_FAILURE,
	TM_ROUTE_BRANCH,
	TM_ROUTE_ONREPLY,
	TM_ROUTE_REPLY, /* core reply route, for every reply received */
	TM_ROUTE_EVENT, /* an event callback (dialog:start ...): nothing to
	                   relay or answer */
};

struct tm_script {
	/* Runs function name (NULL = the entry point for the route type)
	 * with ctx current. */
	void (*run)(void *script, struct tm_ctx *ctx, enum tm_route_type rt,
	            const char *name);
	void *script;
};

/*
 * The reply types of Kamailio's sl statistics: a code with a statistic of
 * its own (CODE), else its class (CLASS: the others of 1xx ... 6xx; xxx
 * outside 100-699). X is passed on to both.
 */
#define TM_SL_TYPE_LIST(CODE, CLASS, X)                                        \
	CLASS(X, 1xx)                                                          \
	CODE(X, 200)                                                           \
	CODE(X, 202)                                                           \
	CLASS(X, 2xx)                                                          \
	CODE(X, 300)                                                           \
	CODE(X, 301)                                                           \
	CODE(X, 302)                                                           \
	CLASS(X, 3xx)                                                          \
	CODE(X, 400)                                                           \
	CODE(X, 401)                                                           \
	CODE(X, 403)                                                           \
	CODE(X, 404)                                                           \
	CODE(X, 407)                                                           \
	CODE(X, 408)                                                           \
	CODE(X, 483)                                                           \
	CLASS(X, 4xx)                                                          \
	CODE(X, 500)                                                           \
	CLASS(X, 5xx)                                                          \
	CLASS(X, 6xx)                                                          \
	CLASS(X, xxx)

#define TM_SL_TYPE_ENUM(_, t) TM_SL_##t,
enum tm_sl_type {
	TM_SL_TYPE_LIST(TM_SL_TYPE_ENUM, TM_SL_TYPE_ENUM, _) TM_SL_TYPES
};
#undef TM_SL_TYPE_ENUM

/*
 * Per-shard statistics, written by the shard's worker only. Counters only
 * grow; the last two fields are levels. tm_register_stats() publishes them
 * as the groups "core", "tmx" and "sl" (src/tm/stats.c says what each
 * counts).
 */
struct tm_stats {
	/* group core: every message, after it reached its owning shard */
	uint64_t rcv_replies;
	/* requests by method, [OTHER] the unsupported; their sum is
	 * rcv_requests */
	uint64_t rcv_req_method[SIP_METHOD__COUNT];
	uint64_t rcv_rpl_class[7]; /* by status / 100 */
	uint64_t rcv_rpl_18x, rcv_rpl_401, rcv_rpl_404, rcv_rpl_407;
	uint64_t rcv_rpl_480, rcv_rpl_486;
	/* by the CSeq method and the status / 100 */
	uint64_t rcv_rpl_method[SIP_METHOD__COUNT][7];
	uint64_t bad_uris; /* requests whose Request-URI does not parse */
	uint64_t fwd_requests, fwd_replies;
	uint64_t drop_requests, drop_replies;
	uint64_t err_requests, err_replies;
	uint64_t bad_msg_hdr; /* unparsable, counted where it was read */
	/* group tmx */
	uint64_t uas_trans, uac_trans;
	uint64_t completed[7]; /* transactions by class of final reply */
	uint64_t rpl_received, rpl_relayed, rpl_absorbed, rpl_generated;
	uint64_t retransmissions;
	/* group dns (with dns's own counters) */
	uint64_t dns_failovers;
	/* group sl: stateless replies by Kamailio's reply types */
	uint64_t sl_replies[TM_SL_TYPES];
	uint64_t sl_err_replies; /* to requests refused as malformed */
	uint64_t sl_acks;        /* ACKs of stateless replies, absorbed */
	uint64_t sl_failures;
	/* levels */
	uint64_t active;  /* transactions in memory */
	uint64_t waiting; /* of those, lingering after their end */
};

struct tm_shard *tm_shard_new(struct worker *w, const struct tm_config *cfg,
                              const struct tm_script *script);
void tm_shard_free(struct tm_shard *sh);
size_t tm_shard_active(const struct tm_shard *sh);
/* Of those, the ones still at work: not in the wait that only absorbs
 * retransmissions (which, once the proxy stops reading, cannot come). */
size_t tm_shard_in_progress(const struct tm_shard *sh);
const struct tm_stats *tm_shard_stats(const struct tm_shard *sh);
/*
 * Registers the statistics groups "core", "tmx" and "sl" with mgmt's
 * registry (start-up, once). They are read on each worker from the shard
 * of(w) returns there (NULL: none yet, or gone). 0 or stats_register()'s
 * error.
 */
int tm_register_stats(struct tm_shard *(*of)(struct worker *w));
/* Bytes held by live transactions of this shard. */
size_t tm_shard_bytes(const struct tm_shard *sh);

/*
 * Entry point for a received message: parses it and, when this shard owns
 * its call (Call-ID hash over nshards), handles it: answers malformed
 * requests (400/505), matches replies to client transactions, runs the
 * script for requests. Returns false with *owner when another shard owns
 * it (the caller hands the bytes over). rx is borrowed for the call.
 */
bool tm_receive(struct tm_shard *sh, const struct net_rx *rx, unsigned nshards,
                unsigned *owner);
/* A TCP connection this worker opened failed: its branches get 503. */
void tm_conn_failed(struct tm_shard *sh, uint64_t conn_id);

/* ------------------------------------------------------- the context */

/* A script variable value: $var / $avp hold integers or strings. */
struct tm_val {
	bool is_int;
	long long i;
	struct slice s; /* owned by whoever stores it */
};

/*
 * The routing context of one message through one route. Created by tm for
 * each route run and destroyed when it returns; scripts reach everything
 * through the tm_ctx_* and tm_* functions below.
 */
struct tm_ctx {
	struct tm_shard *sh;
	enum tm_route_type route;
	struct sip_msg *msg;     /* the request, or the reply in reply
	                            routes */
	struct sip_msg *req;     /* the request (also in reply routes) */
	const struct net_rx *rx; /* how msg arrived (NULL if stored) */
	struct tm_trans *t;      /* current transaction or NULL */
	struct arena *arena;     /* scratch for this route run */
	unsigned reply_code;     /* failure/onreply: the reply's code */
	unsigned branch;         /* branch/failure route: index of the branch */
	struct slice branch_uri; /* branch route: the branch's R-URI */
	bool exit;               /* KSR.x.exit() or a handled retransmission */
	bool drop;               /* KSR.x.drop() */
	struct tm_req_edits *edits; /* pending changes to the request */
	struct slice route_params;  /* params of our Route entry that
	                               loose_route() consumed */
	void *dlg_ctx;              /* the dialog layer's per-message context */
	const char *event; /* event route: the function's one argument */
	uint32_t *bflags;  /* branch, onreply, failure routes: the flags of
	                      the branch the route is about */
	uint32_t sflags;   /* script flags (KSR.setsflag ...): this run's */
	struct sip_sanity_verdict sanity; /* the last sanity_check() failed */
	bool sanity_replied;              /* ... and its reply was sent */
};

/*
 * Runs the script function fn(event) as an event route (Kamailio's
 * event_callback): msg is the message that caused the event (borrowed;
 * NULL: a fixed faked OPTIONS request, as Kamailio gives event routes
 * without one); dlg_ctx becomes ctx->dlg_ctx. Nothing can be relayed or
 * answered from it. Safe to call while another route runs.
 */
void tm_run_event(struct tm_shard *sh, const char *fn, const char *event,
                  struct sip_msg *msg, void *dlg_ctx);

/* Request-URI as the script sees it ($ru): the new one if set. */
struct slice tm_ctx_ruri(struct tm_ctx *ctx);
/* Sets $ru (copied). EINVAL when the text is not a valid URI. */
int tm_ctx_set_ruri(struct tm_ctx *ctx, struct slice uri);
/* $du: destination URI overriding the next hop, empty when unset. */
struct slice tm_ctx_duri(struct tm_ctx *ctx);
int tm_ctx_set_duri(struct tm_ctx *ctx, struct slice uri);
/* force_rport(): replies to the request go to its source port and its
 * forwarded Via gets rport and received, as if the client had asked for
 * rport (RFC 3581); kept in the transaction. 1, or -1 for a reply. */
int tm_ctx_force_rport(struct tm_ctx *ctx);
/* Options the request route sets on its request (1; -1 in other
 * routes). */
enum tm_req_option {
	/* set_reply_no_connect() / set_forward_no_connect(): the replies to
	 * the request / the request relayed go only over a TCP connection
	 * already open, none is opened for them */
	TM_OPT_REPLY_NO_CONNECT,
	TM_OPT_FORWARD_NO_CONNECT,
	/* set_reply_close() / set_forward_close(): the TCP connection the
	 * final reply / the request relayed goes on is closed after it */
	TM_OPT_REPLY_CLOSE,
	TM_OPT_FORWARD_CLOSE,
	/* add_local_rport(): the Via this proxy puts on the request asks for
	 * rport (RFC 3581), for a next hop behind NAT */
	TM_OPT_LOCAL_RPORT,
	/* t_set_auto_inv_100(state): this INVITE's 100 Trying sent or not,
	 * whatever auto_inv_100 says (before the transaction exists) */
	TM_OPT_AUTO_INV_100,
	/* t_set_disable_6xx(state): a 6xx of a branch cancels none of the
	 * others (it still wins the final choice) */
	TM_OPT_DISABLE_6XX,
};
/* Sets (on) or clears an option of the request; the core functions only
 * set theirs. */
int tm_ctx_set_option(struct tm_ctx *ctx, enum tm_req_option opt, bool on);
/*
 * Branch flags 0..31 (KSR.setbflag ...) of branch idx: 0, the branch the
 * route is about (the Request-URI's in the request route, a new branch's
 * in its branch route, the replying branch's in an onreply route, the
 * failed one's in a failure route, which new branches there inherit);
 * 1.., the branches appended with append_branch(), which take the flags
 * of branch 0 when appended. NULL when there is no such branch.
 */
uint32_t *tm_ctx_bflags(struct tm_ctx *ctx, unsigned idx);
/* Message flags 0..31 (KSR.setflag ...); kept in the transaction. */
void tm_ctx_setflag(struct tm_ctx *ctx, unsigned flag);
void tm_ctx_resetflag(struct tm_ctx *ctx, unsigned flag);
bool tm_ctx_isflagset(struct tm_ctx *ctx, unsigned flag);
/* $avp(name): per transaction (per message before one exists). */
int tm_ctx_avp_set(struct tm_ctx *ctx, struct slice name,
                   const struct tm_val *v);
bool tm_ctx_avp_get(struct tm_ctx *ctx, struct slice name, struct tm_val *v);
void tm_ctx_avp_unset(struct tm_ctx *ctx, struct slice name);

/* Header edits of the request being routed (KSR.hdr.*): line is a whole
 * header line, CRLF optional, added after the last header, or before the
 * first (KSR.hdr.insert()) when first. */
int tm_ctx_hdr_append(struct tm_ctx *ctx, struct slice line, bool first);
/* Removes every header of that name; returns how many lines. */
int tm_ctx_hdr_remove(struct tm_ctx *ctx, struct slice name);
/* Header lines added to replies generated for this request. */
int tm_ctx_append_to_reply(struct tm_ctx *ctx, struct slice line);

/* Stateless reply to the current request (KSR.sl.*); through its
 * transaction when it has one. 1, or -1. */
int tm_sl_reply(struct tm_ctx *ctx, unsigned code, struct slice reason);
/* sl_reply_error(): a 500, counted as an error reply (sl's
 * sent_err_replies) when it went statelessly. 1, or -1. */
int tm_sl_reply_error(struct tm_ctx *ctx);

/*
 * KSR.sanity.sanity_check(checks, uri_checks): 1 when the message passes
 * the checks (sip_sanity_check()); -1 when one fails, after the reply it
 * calls for (none for a reply or an ACK, nor with noreply set: then
 * tm_sanity_reply() sends it). 0 for checks or uri_checks: the
 * configured default_checks, uri_checks.
 */
int tm_sanity_check(struct tm_ctx *ctx, unsigned checks, unsigned uri_checks);
/* KSR.sanity.sanity_reply(): the reply of the last failed check; 1 sent,
 * -1 none. */
int tm_sanity_reply(struct tm_ctx *ctx);

/*
 * KSR.maxfwd.process_maxfwd(limit): decrements Max-Forwards (1), or notes
 * that limit is to be inserted when the header is absent (2). -1 when the
 * value is 0 (the caller then replies 483), -2 when malformed.
 */
int tm_process_maxfwd(struct tm_ctx *ctx, unsigned limit);

/* KSR.corex.append_branch[_uri]: an extra branch for the next t_relay()
 * (the current $ru when uri is empty). */
int tm_append_branch(struct tm_ctx *ctx, struct slice uri);

/* ---------------------------------------------------------- tm ops */

/*
 * Script-level operations with Kamailio's return conventions: > 0 success
 * or true, < 0 failure or false, 0 "handled, stop the script" (ctx->exit is
 * set too).
 */

/* Creates the server transaction (100 Trying for INVITE); 0 and exit when
 * the request is a retransmission (handled), -1 on error. */
int tm_t_newtran(struct tm_ctx *ctx);
/* The status code t_check_status() and t_get_status_code() look at: the
 * reply's in an onreply route, the winning reply's in a failure route,
 * the last one sent upstream in the request route; -1 when none. */
int tm_t_status_code(struct tm_ctx *ctx);
/* How many branches the transaction has started (0 without one). */
int tm_t_branch_count(struct tm_ctx *ctx);
/* KSR.forward() / forward_uri(uri): the request relayed statelessly (no
 * transaction; its replies go back as stray replies do) to uri, else to
 * $du or the next hop of $ru. 1 sent, -1 not (request route only). */
int tm_t_forward(struct tm_ctx *ctx, struct slice uri);
/* 1 if the request matches an existing transaction: for CANCEL the INVITE
 * it cancels; a retransmission or the ACK of a negative reply is handled
 * here and returns 0 (exit); -1 when nothing matches. */
int tm_t_check_trans(struct tm_ctx *ctx);
/*
 * Forwards the request statefully: to $du or the next hop of $ru (after
 * loose routing, the topmost Route), plus every appended branch
 * (parallel forking). In a failure route adds the branches to the same
 * transaction (serial forking). CANCEL: answered 200 and sent down every
 * pending branch of the INVITE. ACK: forwarded statelessly.
 * proto/host/port override the destination of every branch when host.len;
 * proto alone ("udp", "tcp"; NULL none) the transport of every branch.
 * Returns 1, or -1 (nothing could be sent; the caller may reply), or a
 * negative code of the reply that tm itself sent (e.g. -478 unresolvable,
 * -503 unreachable, -483 too many hops) which ends the request.
 */
int tm_t_relay(struct tm_ctx *ctx, const char *proto, struct slice host,
               unsigned port);
int tm_t_reply(struct tm_ctx *ctx, unsigned code, struct slice reason);
/* Names of script functions armed for this transaction. */
int tm_t_on_failure(struct tm_ctx *ctx, const char *fn);
int tm_t_on_branch(struct tm_ctx *ctx, const char *fn);
int tm_t_on_reply(struct tm_ctx *ctx, const char *fn);
/* Kamailio's t_is_set(): 1 when "failure_route", "branch_route" or
 * "onreply_route" has a function armed, else -1. */
int tm_t_is_set(struct tm_ctx *ctx, struct slice route);
int tm_t_is_canceled(struct tm_ctx *ctx);
/* Per-transaction fr_inv_timer / fr_timer (0 keeps the current one). */
int tm_t_set_fr(struct tm_ctx *ctx, unsigned inv_ms, unsigned noninv_ms);
/* In a failure route: 1 if the branch failed by timeout (no reply). */
int tm_t_branch_timeout(struct tm_ctx *ctx);
/* 1 if any branch got a reply. */
int tm_t_any_replied(struct tm_ctx *ctx);
/* In a failure route: 1 if its branch got a reply (a provisional one
 * too). */
int tm_t_branch_replied(struct tm_ctx *ctx);
/* 1 if a branch ended without a final reply (local 408). */
int tm_t_any_timeout(struct tm_ctx *ctx);
/* 1 if a branch's last reply received has this code. */
int tm_t_grep_status(struct tm_ctx *ctx, unsigned code);
/* Kamailio's t_drop_replies(mode), in a failure route: once it ends, the
 * replies received so far do not compete any more: all of them ("a" or
 * no mode), those of the last serial forking step ("l"), or none ("n").
 * Always 1. */
int tm_t_drop_replies(struct tm_ctx *ctx, struct slice mode);

/* ------------------------------------------------- for the layer above */

/* Transactions are refcounted: a holder keeps it alive (not in the
 * tables) after it ended. */
struct tm_trans *tm_trans_ref(struct tm_trans *t);
void tm_trans_unref(struct tm_trans *t);
/* The request of the server side (the parsed copy held by t). */
struct sip_msg *tm_trans_request(struct tm_trans *t);
/* Where the request came from. */
const struct net_rx *tm_trans_source(const struct tm_trans *t);
/* The local socket branch b was sent from, or NULL. */
const struct net_listener *tm_trans_branch_socket(const struct tm_trans *t,
                                                  unsigned b);
/* One pointer for the layer above (the dialog), NULL initially. */
void *tm_trans_data(const struct tm_trans *t);
void tm_trans_set_data(struct tm_trans *t, void *data);
bool tm_trans_final_sent(const struct tm_trans *t);
/* The shard t belongs to. */
struct tm_shard *tm_trans_shard(const struct tm_trans *t);
struct worker *tm_shard_worker(struct tm_shard *sh);
/* The shard owning a call: its Call-ID's hash over nshards shards (what
 * tm_receive decides for every message). */
unsigned tm_owner_of_callid(struct slice callid, unsigned nshards);
/* One pointer per shard for the layer above (its own shard state). */
void *tm_shard_data(const struct tm_shard *sh);
void tm_shard_set_data(struct tm_shard *sh, void *data);

/*
 * A final reply generated here on the server side of t; pending branches
 * of an INVITE get CANCEL with cancel_reason (a whole "Reason: ..." line
 * with CRLF) or, when empty, "Reason: SIP;cause=<code>" (RFC 3326).
 * EALREADY when a final reply was sent already.
 */
int tm_trans_reply(struct tm_trans *t, unsigned code, struct slice reason,
                   struct slice cancel_reason);

/*
 * A request this proxy originates (a BYE of the dialog engine): req is a
 * complete request without Via; tm adds its Via, sends it to the topmost
 * Route (loose routing) or the Request-URI, retransmits it, and calls cb
 * exactly once with the final code and reply (NULL when made up here: 408
 * on timeout, 503 when it could not be sent). 0 or an errno (then cb is
 * never called). An INVITE's non-2xx is ACKed hop by hop as for any
 * branch; its 2xx is ACKed by tm as the user agent would (RFC 3261
 * §13.2.2.4, to the 2xx's Contact and route set), again for each
 * retransmission of it.
 */
typedef void(tm_uac_cb)(void *arg, unsigned code, struct sip_msg *rpl);
int tm_uac_request(struct tm_shard *sh, struct slice req, tm_uac_cb *cb,
                   void *arg);

/* ---------------------------------------------------- record-routing */

/*
 * Record-Route and loose routing need the request edits; rr/ implements
 * the logic and tm applies it per branch, so these live here.
 */

/* Adds this proxy to Record-Route for the branches to come, with params
 * (e.g. ";did=1.2", may be empty). Two entries when the outgoing socket
 * differs from the incoming one. */
int tm_ctx_record_route(struct tm_ctx *ctx, struct slice params);
/* Appends params to the Record-Route being added (before or after
 * record_route()). */
int tm_ctx_add_rr_param(struct tm_ctx *ctx, struct slice params);
/* Marks the first n Route elements as consumed (removed on forwarding). */
void tm_ctx_pop_routes(struct tm_ctx *ctx, unsigned n);
/* The strict-router case of RFC 3261 §16.4: the Request-URI becomes the
 * last Route value, which leaves the Route set, as do the first `ours`
 * (this proxy's second Record-Route entry). EINVAL when no value is left
 * for the Request-URI. */
int tm_ctx_strict_route(struct tm_ctx *ctx, unsigned ours);
/* True when host:port (and proto, when given in the URI) is one of this
 * proxy's listeners or their advertised addresses, or an alias. A URI
 * without a port means 5060 (RFC 3261 §19.1.2: loose_route() compares so),
 * or any port when portless_any (Kamailio's is_myself() does). */
bool tm_is_myself(struct tm_shard *sh, const struct sip_uri *u,
                  bool portless_any);
/* True when addr's IP (any port) is one a listener is bound to. */
bool tm_is_myself_ip(struct tm_shard *sh, const union net_sockaddr *addr);
/* The listeners, for rr/. */
struct rt *tm_shard_rt(struct tm_shard *sh);

#endif
