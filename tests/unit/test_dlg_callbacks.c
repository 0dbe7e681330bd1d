/*
 * Dialog callbacks end to end (ims-dialog-behaviour.md §9): a runtime with
 * a tm and a dlg shard per worker, a C routing script shaped like
 * examples/imsdlg.lua, and SIP calls played over UDP on the loopback by
 * the test itself as caller (UAC) and callee (UAS).
 *
 * A global DLGCB_CREATED callback registers, on every new dialog, one
 * callback for every other type; each run is recorded (type, request
 * method, reply status, direction) and the sequence of each call is
 * compared with the documented one (§9.2, §9.3, and imsdlg's deviations:
 * SPIRALED and TERMINATED_CONFIRMED are distinct bits, TERMINATED fires
 * when termination is decided, TERMINATED_CONFIRMED when the last BYE is
 * answered).
 *
 * Callbacks run in worker threads: they only record, under T.mx; the test
 * thread drives the calls, waits for records with a deadline and asserts.
 * TEST_TRACE=1 in the environment prints what the UAs receive and the
 * proxy's debug log.
 */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "dlg/dlg.h"
#include "imsdlg/dialog.h"
#include "net/net.h"
#include "rr/rr.h"
#include "tm/tm.h"

#define WAIT_MS    4000 /* one message or callback */
#define DESTROY_MS 8000 /* end_timeout plus the transactions' linger */
#define QUIET_MS   200  /* "nothing happens" window */
#define DLG_FLAG   5
#define MSG_MAX    4096
#define QUEUE_MAX  64
#define MAX_EVENTS 512
#define STR_MAX    96
#define ROUTE_MAX  512

/* The calls of one run; the Call-ID "c<n>-v<workers>@test" names it. */
enum {
	CALL_FULL = 1,  /* 180, 200, ACK, re-INVITE, BYE from the callee */
	CALL_FAILED,    /* 486 */
	CALL_EXPIRE,    /* lifetime of 1 s from the timeout AVP */
	CALL_SPIRAL,    /* through the proxy twice, BYE from the caller */
	CALL_TERMINATE, /* dlg_terminate() from a REQ_WITHIN callback */
	CALL_API,       /* terminate_dlg() by Call-ID and tags, the same way */
	NCALLS = CALL_API,
};

/* Every per-dialog type: all but the two global ones. */
#define ALL_DLG_TYPES                                                          \
	(DLGCB_FAILED | DLGCB_CONFIRMED_NA | DLGCB_CONFIRMED |                 \
	 DLGCB_REQ_WITHIN | DLGCB_TERMINATED | DLGCB_EXPIRED | DLGCB_EARLY |   \
	 DLGCB_RESPONSE_FWDED | DLGCB_RESPONSE_WITHIN | DLGCB_MI_CONTEXT |     \
	 DLGCB_RPC_CONTEXT | DLGCB_DESTROY | DLGCB_SPIRALED |                  \
	 DLGCB_TERMINATED_CONFIRMED)

/* The second registration on each dialog, for the newest-first order. */
#define SECOND_TYPES (DLGCB_CONFIRMED | DLGCB_DESTROY)

enum who {
	WHO_ALL,    /* the callback for every type (registered first) */
	WHO_SECOND, /* SECOND_TYPES (registered after: runs first) */
	NWHO,
};

struct event {
	int call;
	enum who who;
	int type;
	char method[16];    /* of the request, "" when NULL */
	char ruri[STR_MAX]; /* of the request */
	unsigned status;    /* of the reply, 0 when NULL */
	char rpl_cseq[16];  /* CSeq method of the reply */
	int dir;
};

/* What a registration is given as param (freed by its free_param). */
struct reg {
	int call;
	enum who who;
};

static int created_param, loaded_param, refused_param;

static struct {
	pthread_mutex_t mx;
	pthread_cond_t cv;
	struct event ev[MAX_EVENTS];
	unsigned nev;
	bool overflow;
	unsigned unknown_call; /* callbacks for a Call-ID not ours */
	struct dlg *dlg[NCALLS + 1];
	bool destroyed[NCALLS + 1];
	unsigned frees[NCALLS + 1][NWHO];
	unsigned free_before_destroy;
	unsigned reg_failures; /* register_dlgcb refused a good one */
	int bad_reg[NCALLS + 1][4];
	unsigned refused_runs;  /* a refused registration ran */
	unsigned refused_frees; /* or had its param freed */
	unsigned global_frees;
	unsigned loaded_runs;
	unsigned bad_param; /* *params->param is not what was given */
	unsigned var_mismatch;
	unsigned current_checked, current_mismatch;
	int term_rc[2];
	unsigned term_runs;
	int api_rc[2]; /* terminate_dlg, then lookup_terminate_dlg */
	unsigned api_runs;
} T = {
        .mx = PTHREAD_MUTEX_INITIALIZER,
        .cv = PTHREAD_COND_INITIALIZER,
};

static void reset_records(void)
{
	pthread_mutex_lock(&T.mx);
	memset(T.ev, 0, sizeof(T.ev));
	T.nev = 0;
	T.overflow = false;
	T.unknown_call = 0;
	memset(T.dlg, 0, sizeof(T.dlg));
	memset(T.destroyed, 0, sizeof(T.destroyed));
	memset(T.frees, 0, sizeof(T.frees));
	T.free_before_destroy = 0;
	T.reg_failures = 0;
	memset(T.bad_reg, 0, sizeof(T.bad_reg));
	T.refused_runs = T.refused_frees = T.global_frees = 0;
	T.loaded_runs = T.bad_param = T.var_mismatch = 0;
	T.current_checked = T.current_mismatch = 0;
	T.term_rc[0] = T.term_rc[1] = 0;
	T.term_runs = 0;
	T.api_rc[0] = T.api_rc[1] = 0;
	T.api_runs = 0;
	pthread_mutex_unlock(&T.mx);
}

static uint64_t now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) == -1 && errno == EINTR)
		;
}

static struct timespec deadline_in(unsigned ms)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += ms / 1000;
	until.tv_nsec += (long)(ms % 1000) * 1000000;
	if (until.tv_nsec >= 1000000000) {
		until.tv_sec++;
		until.tv_nsec -= 1000000000;
	}
	return until;
}

/* ----------------------------------------------------------- records */

static const char *type_name(int type)
{
	switch (type) {
	case DLGCB_LOADED:
		return "LOADED";
	case DLGCB_CREATED:
		return "CREATED";
	case DLGCB_FAILED:
		return "FAILED";
	case DLGCB_CONFIRMED_NA:
		return "CONFIRMED_NA";
	case DLGCB_CONFIRMED:
		return "CONFIRMED";
	case DLGCB_REQ_WITHIN:
		return "REQ_WITHIN";
	case DLGCB_TERMINATED:
		return "TERMINATED";
	case DLGCB_EXPIRED:
		return "EXPIRED";
	case DLGCB_EARLY:
		return "EARLY";
	case DLGCB_RESPONSE_FWDED:
		return "RESPONSE_FWDED";
	case DLGCB_RESPONSE_WITHIN:
		return "RESPONSE_WITHIN";
	case DLGCB_MI_CONTEXT:
		return "MI_CONTEXT";
	case DLGCB_RPC_CONTEXT:
		return "RPC_CONTEXT";
	case DLGCB_DESTROY:
		return "DESTROY";
	case DLGCB_SPIRALED:
		return "SPIRALED";
	case DLGCB_TERMINATED_CONFIRMED:
		return "TERMINATED_CONFIRMED";
	default:
		return "?";
	}
}

static const char *dir_name(int dir)
{
	return dir == DLG_DIR_DOWNSTREAM ? "down"
	       : dir == DLG_DIR_UPSTREAM ? "up"
	       : dir == DLG_DIR_NONE     ? "none"
	                                 : "?";
}

/* The call a message belongs to, from its Call-ID; 0 when not ours. */
static int call_of(struct sip_msg *m)
{
	struct slice cid;
	char buf[64];
	int n;

	if (m == NULL || sip_msg_call_id(&cid, m))
		return 0;
	slice_copy_cstr(buf, sizeof(buf), cid);
	if (sscanf(buf, "c%d-", &n) != 1 || n < 1 || n > NCALLS)
		return 0;
	return n;
}

static void record(int call, enum who who, int type,
                   const struct dlg_cb_params *p)
{
	struct event e;
	const struct sip_cseq *cs;

	memset(&e, 0, sizeof(e));
	e.call = call;
	e.who = who;
	e.type = type;
	e.dir = p->direction;
	if (p->req) {
		slice_copy_cstr(e.method, sizeof(e.method), p->req->method);
		slice_copy_cstr(e.ruri, sizeof(e.ruri), p->req->ruri);
	}
	if (p->rpl) {
		e.status = p->rpl->status;
		if (sip_msg_cseq(&cs, p->rpl) == 0)
			slice_copy_cstr(e.rpl_cseq, sizeof(e.rpl_cseq),
			                cs->method);
	}
	pthread_mutex_lock(&T.mx);
	if (T.nev < MAX_EVENTS)
		T.ev[T.nev++] = e;
	else
		T.overflow = true;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mx);
}

static void bump(unsigned *counter)
{
	pthread_mutex_lock(&T.mx);
	(*counter)++;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mx);
}

static unsigned count_events(int call, enum who who, int type)
{
	unsigned n = 0;

	for (unsigned i = 0; i < T.nev; i++)
		n += T.ev[i].call == call && T.ev[i].who == who &&
		     T.ev[i].type == type;
	return n;
}

/* Waits until callback type ran for call (by the WHO_ALL registration). */
static bool wait_event(int call, int type, unsigned ms)
{
	struct timespec until = deadline_in(ms);
	bool ok;

	pthread_mutex_lock(&T.mx);
	while (count_events(call, WHO_ALL, type) == 0) {
		if (pthread_cond_timedwait(&T.cv, &T.mx, &until) == ETIMEDOUT)
			break;
	}
	ok = count_events(call, WHO_ALL, type) > 0;
	pthread_mutex_unlock(&T.mx);
	return ok;
}

static unsigned events_now(int call, int type)
{
	unsigned n;

	pthread_mutex_lock(&T.mx);
	n = count_events(call, WHO_ALL, type);
	pthread_mutex_unlock(&T.mx);
	return n;
}

/* Waits until both registrations of call had their param freed. */
static bool wait_frees(int call, unsigned ms)
{
	struct timespec until = deadline_in(ms);
	bool ok;

	pthread_mutex_lock(&T.mx);
	while (T.frees[call][WHO_ALL] == 0 || T.frees[call][WHO_SECOND] == 0) {
		if (pthread_cond_timedwait(&T.cv, &T.mx, &until) == ETIMEDOUT)
			break;
	}
	ok = T.frees[call][WHO_ALL] && T.frees[call][WHO_SECOND];
	pthread_mutex_unlock(&T.mx);
	return ok;
}

/* --------------------------------------------------------- callbacks */

static void reg_free(void *param)
{
	struct reg *r = param;

	pthread_mutex_lock(&T.mx);
	/* §9.1: after the DESTROY callbacks. */
	if (!T.destroyed[r->call])
		T.free_before_destroy++;
	T.frees[r->call][r->who]++;
	pthread_cond_broadcast(&T.cv);
	pthread_mutex_unlock(&T.mx);
	free(r);
}

static void refused_cb(struct dlg *d, int type, struct dlg_cb_params *p)
{
	(void)d;
	(void)type;
	(void)p;
	bump(&T.refused_runs);
}

static void refused_free(void *param)
{
	(void)param;
	bump(&T.refused_frees);
}

static void global_free(void *param)
{
	if (param != &created_param && param != &loaded_param)
		bump(&T.bad_param);
	bump(&T.global_frees);
}

static void loaded_cb(struct dlg *d, int type, struct dlg_cb_params *p)
{
	(void)d;
	(void)type;
	(void)p;
	bump(&T.loaded_runs);
}

static void second_cb(struct dlg *d, int type, struct dlg_cb_params *p)
{
	struct reg *r = *p->param;

	(void)d;
	record(r->call, r->who, type, p);
}

static void all_cb(struct dlg *d, int type, struct dlg_cb_params *p)
{
	struct reg *r = *p->param;

	if (r == NULL || r->who != WHO_ALL) {
		bump(&T.bad_param);
		return;
	}
	record(r->call, r->who, type, p);
	if (type == DLGCB_DESTROY) {
		char want[16];
		const char *v = get_dlg_var(d, "call");

		snprintf(want, sizeof(want), "%d", r->call);
		pthread_mutex_lock(&T.mx);
		if (v == NULL || strcmp(v, want) != 0)
			T.var_mismatch++;
		T.destroyed[r->call] = true;
		pthread_mutex_unlock(&T.mx);
	}
	/* An application ending the call on an in-dialog request, as
	 * ims_qos does: the dialog pointer is the callback's. */
	if (type == DLGCB_REQ_WITHIN && r->call == CALL_TERMINATE && p->req &&
	    p->req->method_id == SIP_METHOD_INFO) {
		int first = dlg_terminate(d, "all", "test");
		/* Nothing is left to end once the BYEs are out. */
		int again = dlg_terminate(d, "all", "test");

		pthread_mutex_lock(&T.mx);
		T.term_rc[0] = first;
		T.term_rc[1] = again;
		T.term_runs++;
		pthread_mutex_unlock(&T.mx);
	}
	/* The same through the API that names the dialog (ims_qos's
	 * terminate_dlg), with extra headers; then by its ids, when nothing
	 * is left to end. */
	if (type == DLGCB_REQ_WITHIN && r->call == CALL_API && p->req &&
	    p->req->method_id == SIP_METHOD_INFO) {
		const struct sip_addr *from, *to;
		struct slice cid;
		char callid[STR_MAX], ftag[STR_MAX], ttag[STR_MAX];
		unsigned he, hi;

		assert_int_equal(sip_msg_call_id(&cid, p->req), 0);
		assert_int_equal(sip_msg_from(&from, p->req), 0);
		assert_int_equal(sip_msg_to(&to, p->req), 0);
		slice_copy_cstr(callid, sizeof(callid), cid);
		slice_copy_cstr(ftag, sizeof(ftag), from->tag);
		slice_copy_cstr(ttag, sizeof(ttag), to->tag);
		/* The callee's orientation names the same dialog. */
		int first = terminate_dlg(callid, ttag, ftag, "X-Why: api\r\n",
		                          "api");
		dlg_get_ids(d, &he, &hi);
		int again = lookup_terminate_dlg(he, hi, NULL);

		pthread_mutex_lock(&T.mx);
		T.api_rc[0] = first;
		T.api_rc[1] = again;
		T.api_runs++;
		pthread_mutex_unlock(&T.mx);
	}
}

static void created_cb(struct dlg *d, int type, struct dlg_cb_params *p)
{
	int call = call_of(p->req);
	struct reg *r;
	char v[16];
	int bad[4];

	if (*p->param != &created_param)
		bump(&T.bad_param);
	if (call == 0) {
		bump(&T.unknown_call);
		return;
	}
	record(call, WHO_ALL, type, p);
	snprintf(v, sizeof(v), "%d", call);
	set_dlg_var(d, "call", v);

	/* One for every type, then a second one for two types: the second
	 * must run first (newest first, §9.1). */
	for (int who = WHO_ALL; who < NWHO; who++) {
		r = malloc(sizeof(*r));
		if (r == NULL) {
			bump(&T.reg_failures);
			continue;
		}
		r->call = call;
		r->who = (enum who)who;
		if (register_dlgcb(
		            d, who == WHO_ALL ? ALL_DLG_TYPES : SECOND_TYPES,
		            who == WHO_ALL ? all_cb : second_cb, r, reg_free)) {
			free(r);
			bump(&T.reg_failures);
		}
	}

	/* Global types on a dialog, and no types at all: refused, and the
	 * param stays the caller's (never freed by the engine). */
	bad[0] = register_dlgcb(d, DLGCB_CREATED, refused_cb, &refused_param,
	                        refused_free);
	bad[1] = register_dlgcb(d, DLGCB_LOADED, refused_cb, &refused_param,
	                        refused_free);
	bad[2] = register_dlgcb(d, DLGCB_CREATED | DLGCB_CONFIRMED, refused_cb,
	                        &refused_param, refused_free);
	bad[3] = register_dlgcb(d, 0, refused_cb, &refused_param, refused_free);

	pthread_mutex_lock(&T.mx);
	T.dlg[call] = d;
	memcpy(T.bad_reg[call], bad, sizeof(bad));
	pthread_mutex_unlock(&T.mx);
}

/* ---------------------------------------------------------- the proxy */

static struct rr_config rr_cfg;
static struct tm_config tm_cfg;
static struct dlg_config dlg_cfg;

struct shard {
	struct tm_shard *tm;
	struct dlg_shard *dlg;
};

static bool has_totag(struct sip_msg *m)
{
	const struct sip_addr *to;

	return sip_msg_to(&to, m) == 0 && to->has_tag;
}

/* The dialog the routing context found is the one CREATED saw. */
static void check_current(struct tm_ctx *ctx)
{
	struct dlg *d = get_current_dialog(ctx);
	int call = call_of(ctx->msg);

	pthread_mutex_lock(&T.mx);
	T.current_checked++;
	if (call == 0 || d == NULL || d != T.dlg[call])
		T.current_mismatch++;
	pthread_mutex_unlock(&T.mx);
}

/* The initial INVITE: tracked, record-routed; the Request-URI user says
 * how (flag instead of dlg_manage(), short lifetime, spiral). */
static void initial_invite(struct tm_ctx *ctx)
{
	struct slice ruri = tm_ctx_ruri(ctx);
	struct sip_uri u;
	const char *why;
	char buf[160];
	int n;

	if (sip_uri_parse(&u, ruri, &why))
		return;
	if (slice_eq_cstr(u.user, "flag"))
		tm_ctx_setflag(ctx, DLG_FLAG);
	else
		dlg_manage(ctx);
	if (slice_eq_cstr(u.user, "expire")) {
		struct tm_val v = {.is_int = true, .i = 1};
		tm_ctx_avp_set(ctx, SLICE_LIT("dlg_timeout"), &v);
	}
	if (slice_eq_cstr(u.user, "spiral") && ctx->rx && ctx->rx->lst) {
		/* Once more through this proxy, then to the callee. */
		n = snprintf(buf, sizeof(buf), "sip:spiraled@%.*s:%u",
		             SLICE_ARG(u.host), (unsigned)u.port);
		tm_ctx_set_ruri(ctx, slice_make(buf, (size_t)n));
		n = snprintf(buf, sizeof(buf), "sip:%s:%u", ctx->rx->lst->host,
		             (unsigned)ctx->rx->lst->port);
		tm_ctx_set_duri(ctx, slice_make(buf, (size_t)n));
	}
	rr_record_route(ctx, &rr_cfg, SLICE_NULL);
}

/* What examples/imsdlg.lua does, in C. */
static void route(void *script, struct tm_ctx *ctx, enum tm_route_type rt,
                  const char *name)
{
	struct sip_msg *m = ctx->msg;

	(void)script;
	(void)name;
	if (rt != TM_ROUTE_REQUEST)
		return;
	if (m->method_id == SIP_METHOD_CANCEL) {
		if (tm_t_check_trans(ctx) > 0)
			tm_t_relay(ctx, NULL, SLICE_NULL, 0);
		return;
	}
	if (has_totag(m)) {
		if (rr_loose_route(ctx) > 0) {
			check_current(ctx);
			tm_t_relay(ctx, NULL, SLICE_NULL, 0);
			return;
		}
		if (m->method_id == SIP_METHOD_ACK) {
			if (tm_t_check_trans(ctx) > 0)
				tm_t_relay(ctx, NULL, SLICE_NULL, 0);
			return;
		}
		tm_sl_reply(ctx, 404, SLICE_LIT("Not here"));
		return;
	}
	if (tm_t_check_trans(ctx) == 0)
		return;
	if (m->method_id == SIP_METHOD_INVITE)
		initial_invite(ctx);
	tm_t_relay(ctx, NULL, SLICE_NULL, 0);
}

/* Every worker's dialog shard, as main.c hands them to the engine (for
 * the API that finds a dialog's owner). */
#define MAX_WORKERS 2
static struct dlg_shard *all_dlg_shards[MAX_WORKERS];

static void *shard_init(struct worker *w, void *arg)
{
	struct shard *s = calloc(1, sizeof(*s));
	struct tm_script script = {route, NULL};

	(void)arg;
	if (s == NULL)
		return NULL;
	s->tm = tm_shard_new(w, &tm_cfg, &script);
	if (s->tm)
		s->dlg = dlg_shard_new(&dlg_cfg, s->tm, worker_id(w),
		                       rt_workers(worker_rt(w)));
	if (s->dlg == NULL || worker_id(w) >= MAX_WORKERS) {
		dlg_shard_free(s->dlg);
		tm_shard_free(s->tm);
		free(s);
		return NULL;
	}
	all_dlg_shards[worker_id(w)] = s->dlg;
	return s;
}

static void shard_fini(struct worker *w, void *shard)
{
	struct shard *s = shard;

	all_dlg_shards[worker_id(w)] = NULL;
	/* Dialogs first: they hold references to transactions. */
	dlg_shard_free(s->dlg);
	tm_shard_free(s->tm);
	free(s);
}

static void on_rx(struct worker *w, const struct net_rx *rx)
{
	struct shard *s = worker_shard(w);
	struct rt *rt = worker_rt(w);
	unsigned owner;

	if (!tm_receive(s->tm, rx, rt_workers(rt), &owner))
		rt_forward_rx(rt, owner, rx);
}

static size_t shard_busy(struct worker *w)
{
	struct shard *s = worker_shard(w);

	return s ? tm_shard_active(s->tm) : 0;
}

static void on_conn_fail(struct worker *w, uint64_t conn_id)
{
	struct shard *s = worker_shard(w);

	tm_conn_failed(s->tm, conn_id);
}

static void configure(void)
{
	tm_config_defaults(&tm_cfg);
	/* Short RFC 3261 timers so that the transactions holding a dialog
	 * (timer J = 64*T1 for a BYE) end within a second or two. */
	tm_cfg.t1_ms = 20;
	tm_cfg.t2_ms = 160;
	tm_cfg.t4_ms = 100;
	tm_cfg.wait_timer_ms = 100;
	tm_cfg.hooks = &dlg_tm_hooks;
	rr_config_defaults(&rr_cfg);
	dlg_config_defaults(&dlg_cfg);
	dlg_cfg.hash_size = 64;
	dlg_cfg.dlg_flag = DLG_FLAG;
	snprintf(dlg_cfg.timeout_avp, sizeof(dlg_cfg.timeout_avp), "%s",
	         "dlg_timeout");
	dlg_cfg.default_timeout = 60;
	dlg_cfg.early_timeout = 20;
	dlg_cfg.noack_timeout = 20;
	dlg_cfg.end_timeout = 1;
}

static struct rt *start_proxy(unsigned workers)
{
	static const struct rt_app app = {
	        .shard_init = shard_init,
	        .shard_fini = shard_fini,
	        .on_rx = on_rx,
	        .shard_busy = shard_busy,
	        .on_conn_fail = on_conn_fail,
	};
	struct net_listener lst;
	const char *why = "";
	struct rt *rt = NULL;
	char err[256];

	if (net_listener_parse(&lst, "udp:127.0.0.1:0", 5060, &why))
		fail_msg("listener: %s", why);
	dlg_set_all_shards(all_dlg_shards, workers);
	struct rt_config rc = {
	        .workers = workers,
	        .listeners = &lst,
	        .nlisteners = 1,
	        .max_msg_size = 65535,
	        .tcp_idle_timeout_ms = 10000,
	        .tcp_conn_buf_max = 65536,
	        .shutdown_grace_ms = 300,
	};
	if (rt_start(&rt, &rc, &app, err, sizeof(err)))
		fail_msg("rt_start: %s", err);
	return rt;
}

/* ------------------------------------------------------ the two UAs */

struct qmsg {
	size_t len;
	union net_sockaddr src;
	char buf[MSG_MAX];
};

struct ua {
	int fd;
	uint16_t port;
	const char *user;
	union net_sockaddr proxy;
	struct qmsg q[QUEUE_MAX]; /* received, not asked for yet */
	unsigned nq;
};

static struct ua *ua_new(const char *user, const union net_sockaddr *proxy)
{
	struct ua *u = calloc(1, sizeof(*u));
	union net_sockaddr a;
	socklen_t len = sizeof(a);

	assert_non_null(u);
	u->user = user;
	u->proxy = *proxy;
	u->fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	assert_true(u->fd >= 0);
	assert_int_equal(net_addr_make(&a, SLICE_LIT("127.0.0.1"), 0), 0);
	assert_int_equal(bind(u->fd, &a.sa, sizeof(a.in)), 0);
	memset(&a, 0, sizeof(a));
	assert_int_equal(getsockname(u->fd, &a.sa, &len), 0);
	u->port = net_addr_port(&a);
	return u;
}

static void ua_free(struct ua *u)
{
	if (u) {
		close(u->fd);
		free(u);
	}
}

static void ua_sendto(struct ua *u, const union net_sockaddr *to,
                      const char *buf, size_t len)
{
	ssize_t n = sendto(u->fd, buf, len, 0, &to->sa, sizeof(to->in));

	assert_int_equal(n, (ssize_t)len);
}

static void ua_send(struct ua *u, const char *fmt, ...)
        __attribute__((format(printf, 2, 3)));

/* A request to the proxy (the first hop of every request here). */
static void ua_send(struct ua *u, const char *fmt, ...)
{
	char buf[MSG_MAX];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	assert_true(n > 0 && (size_t)n < sizeof(buf));
	ua_sendto(u, &u->proxy, buf, (size_t)n);
}

/* The value of the first header line called name (or its compact form
 * cname), trimmed; false when absent. */
static bool hdr2(const char *msg, const char *name, const char *cname,
                 char *out, size_t size)
{
	const char *p = strstr(msg, "\r\n");

	while (p && p[2] != '\r' && p[2] != '\0') {
		const char *line = p + 2, *end = strstr(line, "\r\n");
		const char *colon = memchr(
		        line, ':', end ? (size_t)(end - line) : strlen(line));
		size_t nlen;

		p = end;
		if (colon == NULL)
			continue;
		nlen = (size_t)(colon - line);
		while (nlen &&
		       (line[nlen - 1] == ' ' || line[nlen - 1] == '\t'))
			nlen--;
		if (!((strlen(name) == nlen &&
		       strncasecmp(line, name, nlen) == 0) ||
		      (cname && strlen(cname) == nlen &&
		       strncasecmp(line, cname, nlen) == 0)))
			continue;
		const char *v = colon + 1;
		while (*v == ' ' || *v == '\t')
			v++;
		size_t vlen = end ? (size_t)(end - v) : strlen(v);
		snprintf(out, size, "%.*s", (int)vlen, v);
		return true;
	}
	return false;
}

static bool hdr(const char *msg, const char *name, char *out, size_t size)
{
	return hdr2(msg, name, NULL, out, size);
}

/* Every value of name, joined with ", " in message order. */
static void hdr_all(const char *msg, const char *name, char *out, size_t size)
{
	const char *p = strstr(msg, "\r\n");
	size_t used = 0;

	out[0] = '\0';
	while (p && p[2] != '\r' && p[2] != '\0') {
		const char *line = p + 2, *end = strstr(line, "\r\n");
		size_t n = strlen(name);

		p = end;
		if (end == NULL || strncasecmp(line, name, n) != 0 ||
		    line[n] != ':')
			continue;
		const char *v = line + n + 1;
		while (*v == ' ')
			v++;
		int w = snprintf(out + used, size - used, "%s%.*s",
		                 used ? ", " : "", (int)(end - v), v);
		assert_true(w > 0 && (size_t)w < size - used);
		used += (size_t)w;
	}
}

/* "a, b, c" -> "c, b, a" (URIs in <> hold no comma here). */
static void reverse_elems(char *out, size_t size, const char *in)
{
	const char *elems[16];
	size_t lens[16];
	unsigned n = 0;
	size_t used = 0;

	for (const char *p = in; *p && n < 16;) {
		const char *c = strchr(p, ',');
		size_t len = c ? (size_t)(c - p) : strlen(p);
		elems[n] = p;
		lens[n++] = len;
		p += len;
		while (*p == ',' || *p == ' ')
			p++;
	}
	out[0] = '\0';
	while (n--) {
		int w = snprintf(out + used, size - used, "%s%.*s",
		                 used ? ", " : "", (int)lens[n], elems[n]);
		assert_true(w > 0 && (size_t)w < size - used);
		used += (size_t)w;
	}
}

static bool tag_of(const char *addr, char *out, size_t size)
{
	const char *t = strstr(addr, ";tag=");
	size_t n;

	if (t == NULL)
		return false;
	t += 5;
	n = strcspn(t, ";> \r\n");
	snprintf(out, size, "%.*s", (int)n, t);
	return true;
}

/* start: how the first line begins ("BYE ", "SIP/2.0 200 "); cseq: the
 * whole CSeq value or NULL for any. */
static bool matches(const struct qmsg *m, const char *start, const char *callid,
                    const char *cseq)
{
	char v[STR_MAX];

	if (strncmp(m->buf, start, strlen(start)) != 0)
		return false;
	if (!hdr2(m->buf, "Call-ID", "i", v, sizeof(v)) ||
	    strcmp(v, callid) != 0)
		return false;
	return cseq == NULL ||
	       (hdr(m->buf, "CSeq", v, sizeof(v)) && strcmp(v, cseq) == 0);
}

/* Keeps m for a later ua_wait(); retransmissions are kept once. */
static void enqueue(struct ua *u, const struct qmsg *m)
{
	for (unsigned i = 0; i < u->nq; i++)
		if (u->q[i].len == m->len &&
		    memcmp(u->q[i].buf, m->buf, m->len) == 0)
			return;
	if (u->nq == QUEUE_MAX) {
		memmove(&u->q[0], &u->q[1], (QUEUE_MAX - 1) * sizeof(u->q[0]));
		u->nq--;
	}
	u->q[u->nq++] = *m;
}

/* The next message matching (see matches()) into *out, waiting at most
 * WAIT_MS; others wait in the queue. */
static void ua_wait(struct ua *u, struct qmsg *out, const char *start,
                    const char *callid, const char *cseq)
{
	uint64_t until = now_ms() + WAIT_MS;
	static struct qmsg m; /* the test thread's only */

	for (unsigned i = 0; i < u->nq; i++) {
		if (matches(&u->q[i], start, callid, cseq)) {
			*out = u->q[i];
			memmove(&u->q[i], &u->q[i + 1],
			        (u->nq - i - 1) * sizeof(u->q[0]));
			u->nq--;
			return;
		}
	}
	for (;;) {
		uint64_t now = now_ms();
		struct pollfd pfd = {.fd = u->fd, .events = POLLIN};
		socklen_t alen = sizeof(m.src);
		ssize_t n;

		if (now >= until)
			fail_msg("%s: no '%s' for %s (CSeq %s) within %d ms",
			         u->user, start, callid, cseq ? cseq : "any",
			         WAIT_MS);
		if (poll(&pfd, 1, (int)(until - now)) <= 0)
			continue;
		n = recvfrom(u->fd, m.buf, sizeof(m.buf) - 1, MSG_DONTWAIT,
		             &m.src.sa, &alen);
		if (n <= 0)
			continue;
		m.len = (size_t)n;
		m.buf[n] = '\0';
		if (getenv("TEST_TRACE"))
			fprintf(stderr, "--- %s got:\n%s\n", u->user, m.buf);
		if (matches(&m, start, callid, cseq)) {
			*out = m;
			return;
		}
		enqueue(u, &m);
	}
}

static bool is_hdr(const char *line, size_t len, const char *name,
                   const char *cname)
{
	const char *colon = memchr(line, ':', len);
	size_t n;

	if (colon == NULL)
		return false;
	n = (size_t)(colon - line);
	while (n && line[n - 1] == ' ')
		n--;
	return (strlen(name) == n && strncasecmp(line, name, n) == 0) ||
	       (cname && strlen(cname) == n &&
	        strncasecmp(line, cname, n) == 0);
}

static bool has_tag(const char *line, size_t len)
{
	for (size_t i = 0; i + 5 <= len; i++)
		if (strncmp(line + i, ";tag=", 5) == 0)
			return true;
	return false;
}

/*
 * A reply to req (RFC 3261 §8.2.6): its Vias, From, To (with totag when
 * it had none), Call-ID and CSeq; for a dialog-creating reply also its
 * Record-Route (§12.1.1) and our Contact. Sent where req came from.
 */
static void ua_reply(struct ua *u, const struct qmsg *req, unsigned code,
                     const char *reason, const char *totag, bool dialog)
{
	char out[MSG_MAX];
	size_t used = 0;
	const char *p = strstr(req->buf, "\r\n");
	int w;

#define ADD(...)                                                               \
	do {                                                                   \
		w = snprintf(out + used, sizeof(out) - used, __VA_ARGS__);     \
		assert_true(w >= 0 && (size_t)w < sizeof(out) - used);         \
		used += (size_t)w;                                             \
	} while (0)

	ADD("SIP/2.0 %u %s\r\n", code, reason);
	while (p && p[2] != '\r' && p[2] != '\0') {
		const char *line = p + 2, *end = strstr(line, "\r\n");
		size_t len = (size_t)(end - line);

		p = end;
		if (is_hdr(line, len, "Via", "v") ||
		    is_hdr(line, len, "From", "f") ||
		    is_hdr(line, len, "Call-ID", "i") ||
		    is_hdr(line, len, "CSeq", NULL) ||
		    (dialog && is_hdr(line, len, "Record-Route", NULL))) {
			ADD("%.*s\r\n", (int)len, line);
		} else if (is_hdr(line, len, "To", "t")) {
			bool tagged = has_tag(line, len);
			ADD("%.*s%s%s\r\n", (int)len, line,
			    tagged || !totag ? "" : ";tag=",
			    tagged || !totag ? "" : totag);
		}
	}
	if (dialog)
		ADD("Contact: <sip:%s@127.0.0.1:%u>\r\n", u->user,
		    (unsigned)u->port);
	ADD("Content-Length: 0\r\n\r\n");
#undef ADD
	ua_sendto(u, &req->src, out, used);
}

/* ------------------------------------------------------------ a call */

struct env {
	unsigned workers;
	struct rt *rt;
	struct ua *uac, *uas;
};

struct call {
	struct env *env;
	int n;
	char callid[64];
	char bid[16]; /* for Via branches */
	char ftag[16], ttag[16];
	char ruri[128];            /* of the INVITE */
	char uac_route[ROUTE_MAX]; /* Route of the caller's requests */
	char uas_route[ROUTE_MAX]; /* Route of the callee's requests */
	unsigned branch;           /* Via branch counter */
	struct qmsg inv;           /* the INVITE as the callee got it */
	struct qmsg m;             /* scratch */
};

static void call_init(struct call *c, struct env *e, int n)
{
	memset(c, 0, sizeof(*c));
	c->env = e;
	c->n = n;
	snprintf(c->callid, sizeof(c->callid), "c%d-v%u@test", n, e->workers);
	snprintf(c->bid, sizeof(c->bid), "c%dv%u", n, e->workers);
	snprintf(c->ftag, sizeof(c->ftag), "a%d", n);
	snprintf(c->ttag, sizeof(c->ttag), "b%d", n);
}

/* The caller's INVITE for user; returns when the callee has it. */
static void invite(struct call *c, const char *user)
{
	struct ua *uac = c->env->uac, *uas = c->env->uas;

	snprintf(c->ruri, sizeof(c->ruri), "sip:%s@127.0.0.1:%u", user,
	         (unsigned)uas->port);
	ua_send(uac,
	        "INVITE %s SIP/2.0\r\n"
	        "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-%s-inv\r\n"
	        "Max-Forwards: 70\r\n"
	        "From: <sip:alice@127.0.0.1>;tag=%s\r\n"
	        "To: <sip:bob@127.0.0.1>\r\n"
	        "Call-ID: %s\r\n"
	        "CSeq: 1 INVITE\r\n"
	        "Contact: <sip:alice@127.0.0.1:%u>\r\n"
	        "Content-Length: 0\r\n\r\n",
	        c->ruri, (unsigned)uac->port, c->bid, c->ftag, c->callid,
	        (unsigned)uac->port);
	ua_wait(uas, &c->inv, "INVITE ", c->callid, "1 INVITE");
	hdr_all(c->inv.buf, "Record-Route", c->uas_route, sizeof(c->uas_route));
}

/* The callee answers the INVITE; the caller gets the reply. */
static void answer(struct call *c, unsigned code, const char *reason)
{
	char start[32];

	ua_reply(c->env->uas, &c->inv, code, reason, c->ttag, code < 300);
	snprintf(start, sizeof(start), "SIP/2.0 %u ", code);
	ua_wait(c->env->uac, &c->m, start, c->callid, "1 INVITE");
	if (code >= 200 && code < 300) {
		char rr[ROUTE_MAX];
		hdr_all(c->m.buf, "Record-Route", rr, sizeof(rr));
		reverse_elems(c->uac_route, sizeof(c->uac_route), rr);
	}
}

/* A request from the caller inside the dialog (cseq for its CSeq),
 * through the proxy by the route set; returns when the callee has it. */
static void caller_request(struct call *c, const char *method, unsigned cseq)
{
	struct ua *uac = c->env->uac;
	char want[32];

	ua_send(uac,
	        "%s sip:bob@127.0.0.1:%u SIP/2.0\r\n"
	        "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-%s-%u\r\n"
	        "Route: %s\r\n"
	        "Max-Forwards: 70\r\n"
	        "From: <sip:alice@127.0.0.1>;tag=%s\r\n"
	        "To: <sip:bob@127.0.0.1>;tag=%s\r\n"
	        "Call-ID: %s\r\n"
	        "CSeq: %u %s\r\n"
	        "Contact: <sip:alice@127.0.0.1:%u>\r\n"
	        "Content-Length: 0\r\n\r\n",
	        method, (unsigned)c->env->uas->port, (unsigned)uac->port,
	        c->bid, ++c->branch, c->uac_route, c->ftag, c->ttag, c->callid,
	        cseq, method, (unsigned)uac->port);
	snprintf(want, sizeof(want), "%u %s", cseq, method);
	char start[24];
	snprintf(start, sizeof(start), "%s ", method);
	ua_wait(c->env->uas, &c->m, start, c->callid, want);
}

/* INVITE, 200, ACK: a confirmed call. */
static void setup(struct call *c, const char *user, bool ringing)
{
	invite(c, user);
	if (ringing)
		answer(c, 180, "Ringing");
	answer(c, 200, "OK");
	caller_request(c, "ACK", 1);
}

/* A BYE we generated reached ua: its Reason and tags checked. */
static void got_bye(struct call *c, struct ua *ua, struct qmsg *bye,
                    const char *reason)
{
	char v[STR_MAX], tag[16];
	bool to_caller = ua == c->env->uac;

	ua_wait(ua, bye, "BYE ", c->callid, NULL);
	if (!hdr(bye->buf, "Reason", v, sizeof(v)))
		fail_msg("BYE to %s without Reason:\n%s", ua->user, bye->buf);
	if (strcmp(v, reason) != 0)
		fail_msg("BYE to %s: Reason '%s', expected '%s'", ua->user, v,
		         reason);
	assert_true(hdr2(bye->buf, "From", "f", v, sizeof(v)));
	assert_true(tag_of(v, tag, sizeof(tag)));
	assert_string_equal(tag, to_caller ? c->ttag : c->ftag);
	assert_true(hdr2(bye->buf, "To", "t", v, sizeof(v)));
	assert_true(tag_of(v, tag, sizeof(tag)));
	assert_string_equal(tag, to_caller ? c->ftag : c->ttag);
}

/*
 * The proxy's two BYEs answered one at a time: TERMINATED_CONFIRMED must
 * wait for the last one. (A quiet window cannot prove a negative, but a
 * confirmation on the first reply shows up in it on any sane machine.)
 */
static void answer_byes(struct call *c, struct qmsg *to_caller,
                        struct qmsg *to_callee)
{
	ua_reply(c->env->uas, to_callee, 200, "OK", NULL, false);
	sleep_ms(QUIET_MS);
	if (events_now(c->n, DLGCB_TERMINATED_CONFIRMED))
		fail_msg("call %d: TERMINATED_CONFIRMED after the first of "
		         "two BYE replies",
		         c->n);
	ua_reply(c->env->uac, to_caller, 200, "OK", NULL, false);
	if (!wait_event(c->n, DLGCB_TERMINATED_CONFIRMED, WAIT_MS))
		fail_msg("call %d: no TERMINATED_CONFIRMED once both BYEs "
		         "were answered",
		         c->n);
}

/* Call 1: ringing, answered, re-INVITE, the callee hangs up. */
static void call_full(struct env *e)
{
	static struct call c;
	char start[64];

	call_init(&c, e, CALL_FULL);
	setup(&c, "bob", true);
	caller_request(&c, "INVITE", 2);
	ua_reply(e->uas, &c.m, 200, "OK", NULL, true);
	ua_wait(e->uac, &c.m, "SIP/2.0 200 ", c.callid, "2 INVITE");
	caller_request(&c, "ACK", 2);

	/* BYE from the callee: to the caller's Contact by its Route set. */
	ua_send(e->uas,
	        "BYE sip:alice@127.0.0.1:%u SIP/2.0\r\n"
	        "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-%s-bye\r\n"
	        "Route: %s\r\n"
	        "Max-Forwards: 70\r\n"
	        "From: <sip:bob@127.0.0.1>;tag=%s\r\n"
	        "To: <sip:alice@127.0.0.1>;tag=%s\r\n"
	        "Call-ID: %s\r\n"
	        "CSeq: 1 BYE\r\n"
	        "Content-Length: 0\r\n\r\n",
	        (unsigned)e->uac->port, (unsigned)e->uas->port, c.bid,
	        c.uas_route, c.ttag, c.ftag, c.callid);
	ua_wait(e->uac, &c.m, "BYE ", c.callid, "1 BYE");
	ua_reply(e->uac, &c.m, 200, "OK", NULL, false);
	snprintf(start, sizeof(start), "SIP/2.0 200 ");
	ua_wait(e->uas, &c.m, start, c.callid, "1 BYE");
}

/* Call 2: rejected; tracked through dlg_flag instead of dlg_manage(). */
static void call_failed(struct env *e)
{
	static struct call c;

	call_init(&c, e, CALL_FAILED);
	invite(&c, "flag");
	answer(&c, 486, "Busy Here");
	/* The ACK of a negative reply is hop by hop (§17.1.1.3). */
	ua_send(e->uac,
	        "ACK %s SIP/2.0\r\n"
	        "Via: SIP/2.0/UDP 127.0.0.1:%u;branch=z9hG4bK-%s-inv\r\n"
	        "Max-Forwards: 70\r\n"
	        "From: <sip:alice@127.0.0.1>;tag=%s\r\n"
	        "To: <sip:bob@127.0.0.1>;tag=%s\r\n"
	        "Call-ID: %s\r\n"
	        "CSeq: 1 ACK\r\n"
	        "Content-Length: 0\r\n\r\n",
	        c.ruri, (unsigned)e->uac->port, c.bid, c.ftag, c.ttag,
	        c.callid);
}

/* Call 3: the lifetime (1 s from the timeout AVP) runs out. */
static void call_expire(struct env *e)
{
	static struct call c;
	static struct qmsg bye_caller, bye_callee;

	call_init(&c, e, CALL_EXPIRE);
	setup(&c, "expire", false);
	if (!wait_event(c.n, DLGCB_EXPIRED, WAIT_MS))
		fail_msg("call %d: no EXPIRED", c.n);
	if (!wait_event(c.n, DLGCB_TERMINATED, WAIT_MS))
		fail_msg("call %d: no TERMINATED after EXPIRED", c.n);
	got_bye(&c, e->uac, &bye_caller,
	        "SIP;cause=200;text=\"dialog_timeout\"");
	got_bye(&c, e->uas, &bye_callee,
	        "SIP;cause=200;text=\"dialog_timeout\"");
	answer_byes(&c, &bye_caller, &bye_callee);
}

/* Call 4: the script sends the INVITE back to the proxy once. */
static void call_spiral(struct env *e)
{
	static struct call c;
	char rr[ROUTE_MAX];

	call_init(&c, e, CALL_SPIRAL);
	invite(&c, "spiral");
	/* Both passes record-routed, one dialog (one cookie). */
	hdr_all(c.inv.buf, "Record-Route", rr, sizeof(rr));
	assert_non_null(strstr(rr, ";did="));
	assert_non_null(strchr(rr, ','));
	assert_true(strncmp(c.inv.buf, "INVITE sip:spiraled@", 20) == 0);
	answer(&c, 180, "Ringing");
	answer(&c, 200, "OK");
	caller_request(&c, "ACK", 1);
	/* The caller hangs up. */
	caller_request(&c, "BYE", 2);
	ua_reply(e->uas, &c.m, 200, "OK", NULL, false);
	ua_wait(e->uac, &c.m, "SIP/2.0 200 ", c.callid, "2 BYE");
}

/* Call 5: an application ends the call from a callback. */
static void call_terminate(struct env *e)
{
	static struct call c;
	static struct qmsg bye_caller, bye_callee, info;

	call_init(&c, e, CALL_TERMINATE);
	setup(&c, "bob", false);
	caller_request(&c, "INFO", 2); /* all_cb terminates on it */
	info = c.m;
	if (!wait_event(c.n, DLGCB_TERMINATED, WAIT_MS))
		fail_msg("call %d: no TERMINATED from dlg_terminate()", c.n);
	got_bye(&c, e->uac, &bye_caller, "SIP;cause=200;text=\"test\"");
	got_bye(&c, e->uas, &bye_callee, "SIP;cause=200;text=\"test\"");
	/* The INFO went on to the callee; its 200 comes back. */
	ua_reply(e->uas, &info, 200, "OK", NULL, false);
	ua_wait(e->uac, &c.m, "SIP/2.0 200 ", c.callid, "2 INFO");
	answer_byes(&c, &bye_caller, &bye_callee);
}

static void call_api(struct env *e)
{
	static struct call c;
	static struct qmsg bye_caller, bye_callee, info;
	char v[STR_MAX];

	call_init(&c, e, CALL_API);
	setup(&c, "bob", false);
	caller_request(&c, "INFO", 2); /* all_cb terminates on it */
	info = c.m;
	if (!wait_event(c.n, DLGCB_TERMINATED, WAIT_MS))
		fail_msg("call %d: no TERMINATED from terminate_dlg()", c.n);
	got_bye(&c, e->uac, &bye_caller, "SIP;cause=200;text=\"api\"");
	got_bye(&c, e->uas, &bye_callee, "SIP;cause=200;text=\"api\"");
	assert_true(hdr(bye_caller.buf, "X-Why", v, sizeof(v)));
	assert_string_equal(v, "api");
	assert_true(hdr(bye_callee.buf, "X-Why", v, sizeof(v)));
	assert_string_equal(v, "api");
	ua_reply(e->uas, &info, 200, "OK", NULL, false);
	ua_wait(e->uac, &c.m, "SIP/2.0 200 ", c.callid, "2 INFO");
	answer_byes(&c, &bye_caller, &bye_callee);
}

/* ------------------------------------------------- expected sequences */

#define ANY      (-1)
#define NO_REQ   NULL
#define NO_RPL   0
#define DOWN     DLG_DIR_DOWNSTREAM
#define UP       DLG_DIR_UPSTREAM
#define NONE     DLG_DIR_NONE
#define EXPECT_N 16

struct want {
	int type;
	const char *method;   /* NULL: no request */
	unsigned status;      /* 0: no reply */
	int dir;              /* ANY: not checked */
	const char *rpl_cseq; /* CSeq method of the reply, NULL: any */
};

static void dump_events(char *out, size_t size, int call)
{
	size_t used = 0;

	out[0] = '\0';
	for (unsigned i = 0; i < T.nev && used < size; i++) {
		const struct event *e = &T.ev[i];
		if (e->call != call || e->who != WHO_ALL)
			continue;
		int w = snprintf(out + used, size - used,
		                 "\n  %s req=%s rpl=%u(%s) dir=%s",
		                 type_name(e->type),
		                 e->method[0] ? e->method : "-", e->status,
		                 e->rpl_cseq, dir_name(e->dir));
		if (w < 0 || (size_t)w >= size - used)
			break;
		used += (size_t)w;
	}
}

/* Prints what differs; false when call's sequence is not w[0..n). */
static bool check_sequence(int call, const struct want *w, size_t n)
{
	const struct event *got[MAX_EVENTS];
	size_t ngot = 0;
	char dump[4096];

	for (unsigned i = 0; i < T.nev; i++)
		if (T.ev[i].call == call && T.ev[i].who == WHO_ALL)
			got[ngot++] = &T.ev[i];
	dump_events(dump, sizeof(dump), call);
	for (size_t i = 0; i < n || i < ngot; i++) {
		if (i >= ngot) {
			print_error("call %d: missing %s (event %zu); got:%s\n",
			            call, type_name(w[i].type), i + 1, dump);
			return false;
		}
		if (i >= n) {
			print_error("call %d: unexpected %s (event %zu); "
			            "got:%s\n",
			            call, type_name(got[i]->type), i + 1, dump);
			return false;
		}
		const struct event *e = got[i];
		bool ok = e->type == w[i].type &&
		          strcmp(e->method, w[i].method ? w[i].method : "") ==
		                  0 &&
		          e->status == w[i].status &&
		          (w[i].dir == ANY || e->dir == w[i].dir) &&
		          (w[i].rpl_cseq == NULL ||
		           strcmp(e->rpl_cseq, w[i].rpl_cseq) == 0);
		if (!ok) {
			print_error(
			        "call %d: event %zu is not %s req=%s rpl=%u "
			        "dir=%s; got:%s\n",
			        call, i + 1, type_name(w[i].type),
			        w[i].method ? w[i].method : "-", w[i].status,
			        w[i].dir == ANY ? "any" : dir_name(w[i].dir),
			        dump);
			return false;
		}
	}
	return true;
}

/* Newest first: for each type of SECOND_TYPES that ran, the second
 * registration ran before the first one. */
static void check_newest_first(int call)
{
	static const int types[] = {DLGCB_CONFIRMED, DLGCB_DESTROY};

	for (size_t k = 0; k < sizeof(types) / sizeof(types[0]); k++) {
		int type = types[k], second = -1, all = -1;
		for (unsigned i = 0; i < T.nev; i++) {
			const struct event *e = &T.ev[i];
			if (e->call != call || e->type != type)
				continue;
			if (e->who == WHO_SECOND && second < 0)
				second = (int)i;
			if (e->who == WHO_ALL && all < 0)
				all = (int)i;
		}
		if (all < 0)
			continue;
		if (second < 0 || second > all)
			fail_msg("call %d: %s ran the older callback first",
			         call, type_name(type));
		assert_int_equal(count_events(call, WHO_SECOND, type), 1);
	}
}

static void check_all(void)
{
	static const struct want full[] = {
	        {DLGCB_CREATED, "INVITE", NO_RPL, DOWN, NULL},
	        {DLGCB_RESPONSE_FWDED, "INVITE", 180, UP, NULL},
	        {DLGCB_EARLY, "INVITE", 180, UP, NULL},
	        {DLGCB_RESPONSE_FWDED, "INVITE", 200, UP, NULL},
	        {DLGCB_CONFIRMED_NA, "INVITE", 200, UP, NULL},
	        {DLGCB_CONFIRMED, "ACK", NO_RPL, DOWN, NULL},
	        {DLGCB_REQ_WITHIN, "INVITE", NO_RPL, DOWN, NULL},
	        {DLGCB_RESPONSE_WITHIN, "INVITE", 200, UP, NULL},
	        {DLGCB_REQ_WITHIN, "ACK", NO_RPL, DOWN, NULL},
	        /* The callee's BYE: no RESPONSE_WITHIN for its 200 (as
	         * Kamailio's dlg_onroute(); §9.3 has only
	         * TERMINATED_CONFIRMED and DESTROY after TERMINATED).
	         * TERMINATED_CONFIRMED: the reply travels opposite to the
	         * BYE (Kamailio says UPSTREAM whoever sent it). */
	        {DLGCB_TERMINATED, "BYE", NO_RPL, UP, NULL},
	        {DLGCB_TERMINATED_CONFIRMED, "BYE", 200, DOWN, "BYE"},
	        {DLGCB_DESTROY, NO_REQ, NO_RPL, NONE, NULL},
	};
	static const struct want failed[] = {
	        {DLGCB_CREATED, "INVITE", NO_RPL, DOWN, NULL},
	        {DLGCB_FAILED, "INVITE", 486, UP, NULL},
	        {DLGCB_DESTROY, NO_REQ, NO_RPL, NONE, NULL},
	};
	static const struct want expire[] = {
	        {DLGCB_CREATED, "INVITE", NO_RPL, DOWN, NULL},
	        {DLGCB_RESPONSE_FWDED, "INVITE", 200, UP, NULL},
	        {DLGCB_CONFIRMED_NA, "INVITE", 200, UP, NULL},
	        {DLGCB_CONFIRMED, "ACK", NO_RPL, DOWN, NULL},
	        {DLGCB_EXPIRED, NO_REQ, NO_RPL, NONE, NULL},
	        {DLGCB_TERMINATED, NO_REQ, NO_RPL, NONE, NULL},
	        {DLGCB_TERMINATED_CONFIRMED, NO_REQ, 200, NONE, "BYE"},
	        {DLGCB_DESTROY, NO_REQ, NO_RPL, NONE, NULL},
	};
	static const struct want spiral[] = {
	        {DLGCB_CREATED, "INVITE", NO_RPL, DOWN, NULL},
	        {DLGCB_SPIRALED, "INVITE", NO_RPL, DOWN, NULL},
	        {DLGCB_RESPONSE_FWDED, "INVITE", 180, UP, NULL},
	        {DLGCB_EARLY, "INVITE", 180, UP, NULL},
	        {DLGCB_RESPONSE_FWDED, "INVITE", 200, UP, NULL},
	        {DLGCB_CONFIRMED_NA, "INVITE", 200, UP, NULL},
	        {DLGCB_CONFIRMED, "ACK", NO_RPL, DOWN, NULL},
	        /* The caller's BYE, as in full[]. */
	        {DLGCB_TERMINATED, "BYE", NO_RPL, DOWN, NULL},
	        {DLGCB_TERMINATED_CONFIRMED, "BYE", 200, UP, "BYE"},
	        {DLGCB_DESTROY, NO_REQ, NO_RPL, NONE, NULL},
	};
	static const struct want terminate[] = {
	        {DLGCB_CREATED, "INVITE", NO_RPL, DOWN, NULL},
	        {DLGCB_RESPONSE_FWDED, "INVITE", 200, UP, NULL},
	        {DLGCB_CONFIRMED_NA, "INVITE", 200, UP, NULL},
	        {DLGCB_CONFIRMED, "ACK", NO_RPL, DOWN, NULL},
	        {DLGCB_REQ_WITHIN, "INFO", NO_RPL, DOWN, NULL},
	        /* dlg_terminate() inside REQ_WITHIN: at once. */
	        {DLGCB_TERMINATED, NO_REQ, NO_RPL, NONE, NULL},
	        /* The INFO was matched while confirmed (§9.2). */
	        {DLGCB_RESPONSE_WITHIN, "INFO", 200, UP, NULL},
	        {DLGCB_TERMINATED_CONFIRMED, NO_REQ, 200, NONE, "BYE"},
	        {DLGCB_DESTROY, NO_REQ, NO_RPL, NONE, NULL},
	};

	/* The workers are gone: T is the test thread's (and a failed
	 * assertion must not leave T.mx locked). */
	assert_false(T.overflow);
	assert_int_equal(T.unknown_call, 0);
	/* Every call's sequence is checked (and printed when it differs)
	 * before the verdict. */
	unsigned bad = 0;
	bad += !check_sequence(CALL_FULL, full, sizeof(full) / sizeof(full[0]));
	bad += !check_sequence(CALL_FAILED, failed,
	                       sizeof(failed) / sizeof(failed[0]));
	bad += !check_sequence(CALL_EXPIRE, expire,
	                       sizeof(expire) / sizeof(expire[0]));
	bad += !check_sequence(CALL_SPIRAL, spiral,
	                       sizeof(spiral) / sizeof(spiral[0]));
	bad += !check_sequence(CALL_TERMINATE, terminate,
	                       sizeof(terminate) / sizeof(terminate[0]));
	bad += !check_sequence(CALL_API, terminate,
	                       sizeof(terminate) / sizeof(terminate[0]));
	assert_int_equal(bad, 0);
	/* The spiraled pass is the second INVITE, to the rewritten URI. */
	for (unsigned i = 0; i < T.nev; i++)
		if (T.ev[i].type == DLGCB_SPIRALED)
			assert_non_null(strstr(T.ev[i].ruri, "sip:spiraled@"));
	for (int call = 1; call <= NCALLS; call++) {
		check_newest_first(call);
		/* free_param once per registration, after DESTROY. */
		assert_int_equal(T.frees[call][WHO_ALL], 1);
		assert_int_equal(T.frees[call][WHO_SECOND], 1);
		/* §9.1: the global types on a dialog, or no type. */
		for (int i = 0; i < 4; i++)
			assert_int_equal(T.bad_reg[call][i], EINVAL);
	}
	assert_int_equal(T.free_before_destroy, 0);
	assert_int_equal(T.reg_failures, 0);
	assert_int_equal(T.refused_runs, 0);
	assert_int_equal(T.refused_frees, 0);
	assert_int_equal(T.bad_param, 0);
	assert_int_equal(T.var_mismatch, 0);
	/* get_current_dialog() in every loose-routed request. */
	assert_true(T.current_checked > 0);
	assert_int_equal(T.current_mismatch, 0);
	assert_int_equal(T.term_runs, 1);
	assert_int_equal(T.term_rc[0], 1);
	assert_int_equal(T.term_rc[1], -1);
	assert_int_equal(T.api_runs, 1);
	assert_int_equal(T.api_rc[0], 1);
	assert_int_equal(T.api_rc[1], -1);
	/* No DB, no listing: LOADED, MI_CONTEXT and RPC_CONTEXT never. */
	assert_int_equal(T.loaded_runs, 0);
	for (unsigned i = 0; i < T.nev; i++) {
		assert_int_not_equal(T.ev[i].type, DLGCB_LOADED);
		assert_int_not_equal(T.ev[i].type, DLGCB_MI_CONTEXT);
		assert_int_not_equal(T.ev[i].type, DLGCB_RPC_CONTEXT);
	}
}

/* --------------------------------------------------------------- tests */

/* Registration rules that need no dialog (§9.1). */
static void test_register_rules(void **state)
{
	(void)state;
	reset_records();
	assert_int_equal(register_dlgcb(NULL, DLGCB_CONFIRMED, refused_cb,
	                                &refused_param, refused_free),
	                 EINVAL);
	assert_int_equal(register_dlgcb(NULL, ALL_DLG_TYPES, refused_cb,
	                                &refused_param, refused_free),
	                 EINVAL);
	assert_int_equal(register_dlgcb(NULL, DLGCB_CREATED | DLGCB_CONFIRMED,
	                                refused_cb, &refused_param,
	                                refused_free),
	                 EINVAL);
	/* §9.1: "must be registered alone" (Kamailio refuses the two
	 * global types together). */
	assert_int_equal(register_dlgcb(NULL, DLGCB_CREATED | DLGCB_LOADED,
	                                refused_cb, &refused_param,
	                                refused_free),
	                 EINVAL);
	assert_int_equal(register_dlgcb(NULL, DLGCB_CREATED, NULL,
	                                &refused_param, refused_free),
	                 EINVAL);
	assert_int_equal(register_dlgcb(NULL, 0, refused_cb, &refused_param,
	                                refused_free),
	                 EINVAL);
	dlg_global_callbacks_free();
	assert_int_equal(T.refused_frees, 0);
}

static void run_calls(unsigned workers)
{
	struct env e = {.workers = workers};
	unsigned n;
	uint64_t t0 = now_ms();

	reset_records();
	configure();
	/* Global ones: before the workers run. */
	assert_int_equal(register_dlgcb(NULL, DLGCB_CREATED, created_cb,
	                                &created_param, global_free),
	                 0);
	assert_int_equal(register_dlgcb(NULL, DLGCB_LOADED, loaded_cb,
	                                &loaded_param, global_free),
	                 0);
	e.rt = start_proxy(workers);
	const struct net_listener *l = rt_listeners(e.rt, &n);
	assert_int_equal(n, 1);
	e.uac = ua_new("alice", &l[0].addr);
	e.uas = ua_new("bob", &l[0].addr);

	call_full(&e);
	call_failed(&e);
	call_expire(&e);
	call_spiral(&e);
	call_terminate(&e);
	call_api(&e);

	/* The records linger end_timeout, and until the transactions that
	 * point to them are gone. */
	for (int call = 1; call <= NCALLS; call++) {
		if (!wait_event(call, DLGCB_DESTROY, DESTROY_MS))
			fail_msg("call %d: no DESTROY", call);
		if (!wait_frees(call, WAIT_MS))
			fail_msg("call %d: free_param did not run", call);
	}
	rt_stop(e.rt);
	rt_wait(e.rt);
	rt_free(e.rt);
	ua_free(e.uac);
	ua_free(e.uas);
	/* The global free_params run at shutdown, once each. */
	assert_int_equal(T.global_frees, 0);
	dlg_global_callbacks_free();
	assert_int_equal(T.global_frees, 2);
	check_all();
	print_message("[          ] %u worker(s): %llu ms\n", workers,
	              (unsigned long long)(now_ms() - t0));
}

static void test_callbacks_1_worker(void **state)
{
	(void)state;
	run_calls(1);
}

static void test_callbacks_2_workers(void **state)
{
	(void)state;
	run_calls(2);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_register_rules),
	        cmocka_unit_test(test_callbacks_1_worker),
	        cmocka_unit_test(test_callbacks_2_workers),
	};

	/* Every wait has its deadline; this bounds the whole run should a
	 * failed assertion leave workers behind. */
	alarm(60);
	log_set_level(getenv("TEST_TRACE") ? LL_DBG : LL_ERR);
	rr_register_callback(dlg_rr_callback, NULL);
	return cmocka_run_group_tests(tests, NULL, NULL);
}
