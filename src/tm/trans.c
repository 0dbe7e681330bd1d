/*
 * Transaction tables of a shard: server transactions by their RFC 3261
 * §17.2.3 key, and every transaction by slot so that a reply finds its
 * client branch in O(1) from the branch id this proxy generated.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tm/tm_int.h"

/* RFC 3261 §8.1.1.7 */
#define MAGIC_COOKIE "z9hG4bK"
#define MAGIC_LEN    7
/* Our branch ids: cookie, this tag, slot, generation, branch index. */
#define OUR_TAG         "X"

#define INITIAL_BUCKETS 4096
#define MAX_BUCKETS     (1u << 22)
#define INITIAL_SLOTS   1024

void tm_config_defaults(struct tm_config *c)
{
	memset(c, 0, sizeof(*c));
	c->t1_ms = TM_T1_DEFAULT;
	c->t2_ms = TM_T2_DEFAULT;
	c->t4_ms = TM_T4_DEFAULT;
	/* Kamailio's tm defaults. */
	c->fr_timer_ms = 30000;
	c->fr_inv_timer_ms = 120000;
	c->wait_timer_ms = 5000;
	c->max_forwards = 70;
	c->auto_inv_100 = true;
	c->limits = SIP_LIMITS_DEFAULT;
}

struct tm_shard *tm_shard_new(struct worker *w, const struct tm_config *cfg,
                              const struct tm_script *script)
{
	struct tm_shard *sh = calloc(1, sizeof(*sh));

	if (sh == NULL)
		return NULL;
	sh->w = w;
	sh->rt = w ? worker_rt(w) : NULL;
	sh->cfg = cfg;
	if (script)
		sh->script = *script;
	sh->nbuckets = INITIAL_BUCKETS;
	sh->buckets = calloc(sh->nbuckets, sizeof(*sh->buckets));
	sh->nslots = INITIAL_SLOTS;
	sh->slots = calloc(sh->nslots, sizeof(*sh->slots));
	sh->slot_gen = calloc(sh->nslots, sizeof(*sh->slot_gen));
	sh->free_next = calloc(sh->nslots, sizeof(*sh->free_next));
	if (!sh->buckets || !sh->slots || !sh->slot_gen || !sh->free_next) {
		tm_shard_free(sh);
		return NULL;
	}
	for (uint32_t i = 0; i < sh->nslots; i++)
		sh->free_next[i] = i + 1;
	sh->free_head = 0;
	arena_init(&sh->arena, sh->arena_buf, sizeof(sh->arena_buf));
	return sh;
}

void tm_shard_free(struct tm_shard *sh)
{
	if (sh == NULL)
		return;
	for (uint32_t i = 0; sh->slots && i < sh->nslots; i++) {
		struct tm_trans *t = sh->slots[i];
		if (t)
			tm_trans_release(t);
	}
	free(sh->buckets);
	free(sh->slots);
	free(sh->slot_gen);
	free(sh->free_next);
	arena_fini(&sh->arena);
	free(sh);
}

size_t tm_shard_active(const struct tm_shard *sh)
{
	return sh->stats.active;
}

const struct tm_stats *tm_shard_stats(const struct tm_shard *sh)
{
	return &sh->stats;
}

size_t tm_shard_bytes(const struct tm_shard *sh)
{
	return sh->bytes;
}

struct rt *tm_shard_rt(struct tm_shard *sh)
{
	return sh->rt;
}

/* --------------------------------------------------------------- keys */

static bool has_cookie(struct slice branch)
{
	return branch.len > MAGIC_LEN &&
	       memcmp(branch.p, MAGIC_COOKIE, MAGIC_LEN) == 0;
}

/* ACK of a non-2xx reply and CANCEL both belong to the INVITE's key
 * space (§17.2.3: ACK matches the INVITE; CANCEL is looked up against
 * it). */
static enum sip_method key_method(const struct sip_msg *m, bool for_cancel)
{
	if (m->method_id == SIP_METHOD_ACK)
		return SIP_METHOD_INVITE;
	if (for_cancel)
		return SIP_METHOD_INVITE;
	return m->method_id;
}

static uint64_t mix(uint64_t h, struct slice s)
{
	return h * 0x9e3779b97f4a7c15ull ^ hash_bytes(s.p, s.len);
}

uint64_t tm_request_key(struct sip_msg *m, bool for_cancel)
{
	const struct sip_via *via;
	uint64_t h = (uint64_t)key_method(m, for_cancel) + 1;

	if (sip_msg_top_via(&via, m))
		return 0;
	if (has_cookie(via->branch)) {
		h = mix(h, via->branch);
		h ^= hash_bytes_nocase(via->host.p, via->host.len);
		return h * 31 + via->port;
	}
	/* RFC 2543 peers: §17.2.3's fallback on the dialog identifiers and
	 * the top Via. */
	const struct sip_addr *from;
	const struct sip_cseq *cseq;
	struct slice cid;
	if (sip_msg_call_id(&cid, m) || sip_msg_from(&from, m) ||
	    sip_msg_cseq(&cseq, m))
		return 0;
	h = mix(h, cid);
	h = mix(h, from->tag);
	h = mix(h, via->raw);
	return h * 31 + cseq->num;
}

/* Exact comparison behind the hash (RFC 3261 §17.2.3). */
static bool same_request(struct tm_trans *t, struct sip_msg *m, bool for_cancel)
{
	const struct sip_via *a, *b;

	if (key_method(m, for_cancel) != key_method(t->req, false))
		return false;
	if (sip_msg_top_via(&a, t->req) || sip_msg_top_via(&b, m))
		return false;
	if (has_cookie(b->branch)) {
		return slice_eq(a->branch, b->branch) &&
		       slice_eq_nocase(a->host, b->host) && a->port == b->port;
	}
	const struct sip_cseq *ca, *cb;
	struct slice ia, ib;
	if (sip_msg_cseq(&ca, t->req) || sip_msg_cseq(&cb, m) ||
	    sip_msg_call_id(&ia, t->req) || sip_msg_call_id(&ib, m))
		return false;
	return ca->num == cb->num && slice_eq(ia, ib) &&
	       slice_eq(a->raw, b->raw);
}

struct tm_trans *tm_trans_lookup(struct tm_shard *sh, struct sip_msg *m,
                                 bool for_cancel)
{
	uint64_t key = tm_request_key(m, for_cancel);

	if (key == 0)
		return NULL;
	for (struct tm_trans *t = sh->buckets[key & (sh->nbuckets - 1)]; t;
	     t = t->hnext) {
		if (t->key == key && same_request(t, m, for_cancel))
			return t;
	}
	return NULL;
}

/* ----------------------------------------------------------- branches */

void tm_branch_id(char *dst, size_t size, const struct tm_trans *t, unsigned b)
{
	/* MAGIC_COOKIE OUR_TAG "<slot hex>.<gen hex>.<branch>", by hand:
	 * once per branch, and printf costs as much as the rest. */
	char buf[sizeof(MAGIC_COOKIE OUR_TAG) + 16 + 1 + 16 + 1 + 20];
	size_t n = sizeof(MAGIC_COOKIE OUR_TAG) - 1;

	memcpy(buf, MAGIC_COOKIE OUR_TAG, n);
	n += fmt_hex(buf + n, t->slot, 1);
	buf[n++] = '.';
	n += fmt_hex(buf + n, t->gen, 1);
	buf[n++] = '.';
	n += fmt_u64(buf + n, b);
	slice_copy_cstr(dst, size, slice_make(buf, n));
}

static bool hex_field(uint32_t *out, const char **pp, const char *end,
                      char stop)
{
	uint32_t v = 0;
	const char *p = *pp;
	int n = 0;

	while (p < end && *p != stop && n < 8) {
		int d;
		if (*p >= '0' && *p <= '9')
			d = *p - '0';
		else if (*p >= 'a' && *p <= 'f')
			d = *p - 'a' + 10;
		else
			return false;
		v = v << 4 | (uint32_t)d;
		p++;
		n++;
	}
	if (n == 0 || (stop && (p == end || *p != stop)))
		return false;
	*out = v;
	*pp = stop ? p + 1 : p;
	return true;
}

struct tm_branch *tm_branch_lookup(struct tm_shard *sh, struct slice branch)
{
	const char *p = branch.p, *end = branch.p + branch.len;
	uint32_t slot, gen, idx;

	if (branch.len < MAGIC_LEN + 1 ||
	    memcmp(p, MAGIC_COOKIE OUR_TAG, MAGIC_LEN + 1) != 0)
		return NULL;
	p += MAGIC_LEN + 1;
	if (!hex_field(&slot, &p, end, '.') || !hex_field(&gen, &p, end, '.'))
		return NULL;
	idx = 0;
	while (p < end && *p >= '0' && *p <= '9' && idx < TM_MAX_BRANCHES)
		idx = idx * 10 + (uint32_t)(*p++ - '0');
	if (p != end || idx >= TM_MAX_BRANCHES || slot >= sh->nslots)
		return NULL;
	struct tm_trans *t = sh->slots[slot];
	if (t == NULL || t->gen != gen || idx >= t->nbr)
		return NULL;
	return t->br[idx];
}

/* ------------------------------------------------------- lifecycle */

static int slot_alloc(struct tm_shard *sh, struct tm_trans *t)
{
	if (sh->free_head >= sh->nslots) {
		uint32_t n = sh->nslots * 2;
		struct tm_trans **s = realloc(sh->slots, n * sizeof(*s));
		if (s == NULL)
			return ENOMEM;
		sh->slots = s;
		uint32_t *g = realloc(sh->slot_gen, n * sizeof(*g));
		if (g == NULL)
			return ENOMEM;
		sh->slot_gen = g;
		uint32_t *f = realloc(sh->free_next, n * sizeof(*f));
		if (f == NULL)
			return ENOMEM;
		sh->free_next = f;
		for (uint32_t i = sh->nslots; i < n; i++) {
			sh->slots[i] = NULL;
			sh->slot_gen[i] = 0;
			sh->free_next[i] = i + 1;
		}
		sh->free_head = sh->nslots;
		sh->nslots = n;
	}
	t->slot = sh->free_head;
	sh->free_head = sh->free_next[t->slot];
	t->gen = ++sh->slot_gen[t->slot];
	sh->slots[t->slot] = t;
	return 0;
}

static void slot_free(struct tm_shard *sh, struct tm_trans *t)
{
	sh->slots[t->slot] = NULL;
	sh->free_next[t->slot] = sh->free_head;
	sh->free_head = t->slot;
}

static void branch_clear(struct tm_shard *sh, struct tm_branch *b)
{
	struct twheel *wh = worker_wheel(sh->w);

	sh->bytes -= b->req_len;
	tmr_cancel(wh, &b->retr);
	tmr_cancel(wh, &b->fr);
	free(b->req);
	free(b->cancel);
	free(b->reply);
	free(b);
}

static void trans_destroy(void *obj)
{
	struct tm_trans *t = obj;
	struct tm_shard *sh = t->sh;
	struct twheel *wh = worker_wheel(sh->w);

	if (sh->cfg->hooks && sh->cfg->hooks->trans_destroyed)
		sh->cfg->hooks->trans_destroyed(t);
	tmr_cancel(wh, &t->uas_retr);
	tmr_cancel(wh, &t->uas_wait);
	for (unsigned i = 0; i < t->nbr; i++) {
		struct tm_branch *b = t->br[i];

		/* Replies this branch got that never went upstream (a 100,
		 * a loser of the aggregation, an answer to our CANCEL):
		 * known for sure only now, so the count never goes back. */
		if (b->rpl_received > b->rpl_relayed)
			sh->stats.rpl_absorbed +=
			        b->rpl_received - b->rpl_relayed;
		branch_clear(sh, b);
	}
	sh->bytes -= t->req_len + t->req_size + t->last_reply_len;
	free(t->req_buf);
	free(t->req);
	free(t->last_reply);
	arena_fini(&t->arena);
	if (t->uas_state == UAS_TERMINATED)
		sh->stats.waiting--;
	sh->stats.active--;
}

struct tm_trans *tm_trans_new(struct tm_shard *sh, const struct sip_msg *m,
                              const struct net_rx *rx)
{
	struct tm_trans *t = obj_alloc(sizeof(*t), trans_destroy);

	if (t == NULL)
		return NULL;
	t->sh = sh;
	/* Counted at once: trans_destroy() uncounts even a half-made one. */
	sh->stats.active++;
	t->req_buf = malloc(m->len);
	t->req = malloc(SIP_MSG_SIZE(m->nhdrs));
	if (t->req_buf == NULL || t->req == NULL) {
		free(t->req_buf);
		free(t->req);
		t->req_buf = NULL;
		t->req = NULL;
		obj_unref(t);
		return NULL;
	}
	/* The server side outlives the receive buffer: keep a copy and its
	 * index (the parse is repeated on the copy, which is cheap). */
	memcpy(t->req_buf, m->buf, m->len);
	t->req_len = m->len;
	struct sip_limits lim = sh->cfg->limits;
	lim.max_headers = m->nhdrs;
	sip_msg_parse(t->req, t->req_buf, t->req_len, &lim);
	t->req_size = SIP_MSG_SIZE(m->nhdrs);
	sh->bytes += t->req_len + t->req_size;
	t->method = m->method_id;
	t->is_invite = m->method_id == SIP_METHOD_INVITE;
	t->src = *rx;
	t->src.buf = NULL;
	t->src.len = 0;
	tmr_init(&t->uas_retr);
	tmr_init(&t->uas_wait);
	arena_init(&t->arena, t->arena_buf, sizeof(t->arena_buf));
	t->key = tm_request_key(t->req, false);
	return t;
}

/* Doubles the server-key table once it holds twice as many transactions
 * as buckets (a mass of calls ringing at once), so that lookups and
 * unlinks stay O(1); without memory it keeps the table it has. */
static void buckets_grow(struct tm_shard *sh)
{
	size_t n = sh->nbuckets * 2;
	struct tm_trans **nb;

	if (sh->nhashed <= 2 * sh->nbuckets || n > MAX_BUCKETS ||
	    (nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (size_t i = 0; i < sh->nbuckets; i++) {
		struct tm_trans *t = sh->buckets[i], *next;
		for (; t; t = next) {
			next = t->hnext;
			t->hnext = nb[t->key & (n - 1)];
			nb[t->key & (n - 1)] = t;
		}
	}
	free(sh->buckets);
	sh->buckets = nb;
	sh->nbuckets = n;
}

void tm_trans_link(struct tm_trans *t)
{
	struct tm_shard *sh = t->sh;

	if (slot_alloc(sh, t)) {
		/* Without a slot no reply can find it: it lives unlinked
		 * until its owner drops it. */
		LOG_ERR("tm: out of memory for the transaction table");
		return;
	}
	/* Only server transactions are found by a received request; a
	 * request we originate has no Via yet, so all of them would share
	 * one key and one ever longer chain. */
	if (t->uac_cb == NULL) {
		size_t b = t->key & (sh->nbuckets - 1);
		t->hnext = sh->buckets[b];
		sh->buckets[b] = t;
		t->hashed = true;
		sh->nhashed++;
		buckets_grow(sh);
	}
	/* Kamailio's tmx: UAC_transactions are the ones this proxy
	 * originates, UAS_transactions those a received request made. */
	if (t->uac_cb)
		sh->stats.uac_trans++;
	else
		sh->stats.uas_trans++;
}

static void unlink_trans(struct tm_trans *t)
{
	struct tm_shard *sh = t->sh;
	struct tm_trans **pp = &sh->buckets[t->key & (sh->nbuckets - 1)];

	for (; t->hashed && *pp; pp = &(*pp)->hnext) {
		if (*pp == t) {
			*pp = t->hnext;
			t->hashed = false;
			sh->nhashed--;
			break;
		}
	}
	if (sh->slots[t->slot] == t)
		slot_free(sh, t);
}

void tm_trans_release(struct tm_trans *t)
{
	unlink_trans(t);
	obj_unref(t);
}

static void wait_expired(struct tmr *tm, void *arg)
{
	struct tm_trans *t = arg;

	(void)tm;
	tm_trans_release(t);
}

void tm_trans_wait(struct tm_trans *t, unsigned ms)
{
	struct twheel *wh = worker_wheel(t->sh->w);

	if (t->uas_state != UAS_TERMINATED)
		t->sh->stats.waiting++;
	t->uas_state = UAS_TERMINATED;
	tmr_cancel(wh, &t->uas_retr);
	for (unsigned i = 0; i < t->nbr; i++) {
		struct tm_branch *b = t->br[i];
		tmr_cancel(wh, &b->fr);
		if (t->is_invite)
			continue; /* CANCELs go on; finals may need an ACK */
		/* A lingering non-INVITE keeps only what matching and
		 * answering retransmissions need. */
		tmr_cancel(wh, &b->retr);
		t->sh->bytes -= b->req_len;
		free(b->req);
		free(b->reply);
		b->req = b->reply = NULL;
		b->req_len = 0;
	}
	tmr_start(wh, &t->uas_wait, ms, wait_expired, t);
	worker_timers_changed(t->sh->w);
}

/* -------------------------------------------------- for the layer above */

struct tm_trans *tm_trans_ref(struct tm_trans *t)
{
	return obj_ref(t);
}

void tm_trans_unref(struct tm_trans *t)
{
	obj_unref(t);
}

struct sip_msg *tm_trans_request(struct tm_trans *t)
{
	return t->req;
}

const struct net_rx *tm_trans_source(const struct tm_trans *t)
{
	return &t->src;
}

const struct net_listener *tm_trans_branch_socket(const struct tm_trans *t,
                                                  unsigned b)
{
	return b < t->nbr ? t->br[b]->dst.lst : NULL;
}

void *tm_trans_data(const struct tm_trans *t)
{
	return t->data;
}

void tm_trans_set_data(struct tm_trans *t, void *data)
{
	t->data = data;
}

bool tm_trans_final_sent(const struct tm_trans *t)
{
	return t->final_sent;
}

struct tm_shard *tm_trans_shard(const struct tm_trans *t)
{
	return t->sh;
}

struct worker *tm_shard_worker(struct tm_shard *sh)
{
	return sh->w;
}

void *tm_shard_data(const struct tm_shard *sh)
{
	return sh->data;
}

void tm_shard_set_data(struct tm_shard *sh, void *data)
{
	sh->data = data;
}
