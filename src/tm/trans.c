/*
 * Transaction tables of a shard: server transactions by their RFC 3261
 * §17.2.3 key, and every transaction by slot so that a reply finds its
 * client branch in O(1) from the branch id this proxy generated.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <unistd.h>

#include "tm/tm_int.h"

/* RFC 3261 §8.1.1.7 */
#define MAGIC_COOKIE "z9hG4bK"
#define MAGIC_LEN    7
/* Our branch ids: cookie, this tag, worker, random number, then slot,
 * generation, branch index (tm_branch_id()). */
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
	c->failure_reply_mode = 3;
	c->limits = SIP_LIMITS_DEFAULT;
	dns_config_defaults(&c->dns);
	c->dns_failover = true;
	c->sanity_checks = SIP_SANITY_DEFAULT;
	c->sanity_uri_checks = SIP_SANITY_URI_DEFAULT;
}

static void branch_prefix_init(struct tm_shard *sh, unsigned worker)
{
	uint32_t nonce;
	char *p = sh->branch_prefix;

	if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != sizeof(nonce))
		nonce = (uint32_t)time(NULL) ^ (uint32_t)getpid() << 16 ^
		        (uint32_t)(uintptr_t)sh;
	memcpy(p, MAGIC_COOKIE OUR_TAG, MAGIC_LEN + 1);
	p += MAGIC_LEN + 1;
	p += fmt_hex(p, worker, 1);
	*p++ = '-';
	p += fmt_hex(p, nonce, 8);
	*p++ = '.';
	sh->branch_prefix_len = (unsigned)(p - sh->branch_prefix);
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
	branch_prefix_init(sh, w ? worker_id(w) : 0);
	arena_init(&sh->arena, sh->arena_buf, sizeof(sh->arena_buf));
	return sh;
}

static void linger_free(struct tm_linger *l);

void tm_shard_free(struct tm_shard *sh)
{
	if (sh == NULL)
		return;
	for (uint32_t i = 0; sh->slots && i < sh->nslots; i++) {
		struct tm_trans *t = sh->slots[i];
		if (t)
			tm_trans_release(t);
	}
	/* The transactions are gone from the table, not the compact
	 * forms. */
	for (size_t i = 0; sh->buckets && i < sh->nbuckets; i++) {
		struct tm_keyed *k = sh->buckets[i], *next;
		for (; k; k = next) {
			next = k->hnext;
			if (k->linger)
				linger_free((struct tm_linger *)k);
		}
	}
	dns_free(sh->dns);
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

size_t tm_shard_in_progress(const struct tm_shard *sh)
{
	return sh->stats.active - sh->stats.waiting;
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

/*
 * What tells the request of one server transaction from another's
 * (RFC 3261 §17.2.3). With a magic-cookie branch: the branch and the
 * sent-by of the top Via. From RFC 2543 peers: the Call-ID, the whole top
 * Via, the From tag and the CSeq number.
 */
struct req_id {
	enum sip_method method; /* key_method() */
	bool cookie;
	struct slice a, b, c; /* branch, sent-by host, none;
	                       * or Call-ID, top Via, From tag */
	uint32_t n;           /* sent-by port, or CSeq number */
};

static bool req_id_of(struct req_id *id, struct sip_msg *m, bool for_cancel)
{
	const struct sip_via *via;
	const struct sip_addr *from;
	const struct sip_cseq *cseq;

	id->method = key_method(m, for_cancel);
	if (sip_msg_top_via(&via, m))
		return false;
	id->cookie = has_cookie(via->branch);
	if (id->cookie) {
		id->a = via->branch;
		id->b = via->host;
		id->c = SLICE_NULL;
		id->n = via->port;
		return true;
	}
	if (sip_msg_call_id(&id->a, m) || sip_msg_from(&from, m) ||
	    sip_msg_cseq(&cseq, m))
		return false;
	id->b = via->raw;
	id->c = from->tag;
	id->n = cseq->num;
	return true;
}

static uint64_t req_id_key(const struct req_id *id)
{
	uint64_t h = mix((uint64_t)id->method + 1, id->a);

	if (id->cookie)
		h ^= hash_bytes_nocase(id->b.p, id->b.len);
	else
		h = mix(mix(h, id->c), id->b);
	return h * 31 + id->n;
}

/* Exact comparison behind the key. */
static bool req_id_eq(const struct req_id *x, const struct req_id *y)
{
	if (x->method != y->method || x->cookie != y->cookie || x->n != y->n ||
	    !slice_eq(x->a, y->a))
		return false;
	if (x->cookie)
		return slice_eq_nocase(x->b, y->b);
	return slice_eq(x->b, y->b) && slice_eq(x->c, y->c);
}

/*
 * A non-INVITE server transaction over UDP once its wait time is over,
 * for the rest of timer J (RFC 3261 §17.2.2): what recognises a
 * retransmission of its request and the reply to send again. About 0.6 KB
 * where the transaction held 4 to 5 (its request, the request's index,
 * its branch): at 2,000 calls/s the BYEs' 32 s of timer J were most of
 * the proxy's memory.
 */
struct tm_linger {
	struct tm_keyed hk; /* first: the server-key table chains it */
	struct tm_shard *sh;
	struct tmr timer;
	struct net_dst dst; /* where the reply goes */
	struct req_id id;   /* its slices in bytes */
	const char *reply;
	size_t reply_len;
	char bytes[]; /* the slices of id, then the reply */
};

struct tm_trans *tm_trans_lookup(struct tm_shard *sh, struct sip_msg *m,
                                 bool for_cancel, struct tm_linger **linger)
{
	struct req_id id, other;
	uint64_t key;

	if (linger)
		*linger = NULL;
	if (!req_id_of(&id, m, for_cancel))
		return NULL;
	key = req_id_key(&id);
	for (struct tm_keyed *k = sh->buckets[key & (sh->nbuckets - 1)]; k;
	     k = k->hnext) {
		if (k->key != key)
			continue;
		if (k->linger) {
			struct tm_linger *l = (struct tm_linger *)k;
			if (linger && req_id_eq(&l->id, &id)) {
				*linger = l;
				return NULL;
			}
			continue;
		}
		struct tm_trans *t = (struct tm_trans *)k;
		if (req_id_of(&other, t->req, false) && req_id_eq(&other, &id))
			return t;
	}
	return NULL;
}

/* ----------------------------------------------------------- branches */

void tm_branch_id(char *dst, size_t size, const struct tm_trans *t, unsigned b)
{
	/* The shard's prefix, then "<slot hex>.<gen hex>.<branch>", by
	 * hand: once per branch, and printf costs as much as the rest. */
	const struct tm_shard *sh = t->sh;
	char buf[sizeof(sh->branch_prefix) + 16 + 1 + 16 + 1 + 20];
	size_t n = sh->branch_prefix_len;

	memcpy(buf, sh->branch_prefix, n);
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

	if (branch.len < sh->branch_prefix_len ||
	    memcmp(p, sh->branch_prefix, sh->branch_prefix_len) != 0)
		return NULL;
	p += sh->branch_prefix_len;
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
	tm_branch_free_named(b);
	tmr_cancel(wh, &b->retr);
	tmr_cancel(wh, &b->fr);
	mem_put(b->req, b->req_len);
	mem_put(b->cancel, b->cancel_len);
	mem_put(b->reply, b->reply_len);
	mem_put(b, sizeof(*b));
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
	sh->bytes -= t->req_size + t->last_reply_cap;
	mem_put(t->req, t->req_size);
	mem_put(t->last_reply, t->last_reply_cap);
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
	/* The server side outlives the receive buffer: keep a copy and its
	 * index, the bytes after the index (one allocation, one free). */
	size_t index_size = SIP_MSG_SIZE(m->nhdrs);
	t->req = mem_get(index_size + m->len);
	if (t->req == NULL) {
		obj_unref(t);
		return NULL;
	}
	char *copy = (char *)t->req + index_size;
	memcpy(copy, m->buf, m->len);
	sip_msg_copy(t->req, m, copy);
	t->req_size = index_size + m->len;
	sh->bytes += t->req_size;
	t->method = m->method_id;
	t->is_invite = m->method_id == SIP_METHOD_INVITE;
	t->src = *rx;
	t->src.buf = NULL;
	t->src.len = 0;
	tmr_init(&t->uas_retr);
	tmr_init(&t->uas_wait);
	arena_init(&t->arena, t->arena_buf, sizeof(t->arena_buf));
	struct req_id id;
	t->hk.key = req_id_of(&id, t->req, false) ? req_id_key(&id) : 0;
	return t;
}

/* Doubles the server-key table once it holds twice as many transactions
 * as buckets (a mass of calls ringing at once), so that lookups and
 * unlinks stay O(1); without memory it keeps the table it has. */
static void buckets_grow(struct tm_shard *sh)
{
	size_t n = sh->nbuckets * 2;
	struct tm_keyed **nb;

	if (sh->nhashed <= 2 * sh->nbuckets || n > MAX_BUCKETS ||
	    (nb = calloc(n, sizeof(*nb))) == NULL)
		return;
	for (size_t i = 0; i < sh->nbuckets; i++) {
		struct tm_keyed *k = sh->buckets[i], *next;
		for (; k; k = next) {
			next = k->hnext;
			k->hnext = nb[k->key & (n - 1)];
			nb[k->key & (n - 1)] = k;
		}
	}
	free(sh->buckets);
	sh->buckets = nb;
	sh->nbuckets = n;
}

static void chain(struct tm_shard *sh, struct tm_keyed *k)
{
	size_t b = k->key & (sh->nbuckets - 1);

	k->hnext = sh->buckets[b];
	sh->buckets[b] = k;
	sh->nhashed++;
	buckets_grow(sh);
}

static void unchain(struct tm_shard *sh, struct tm_keyed *k)
{
	struct tm_keyed **pp = &sh->buckets[k->key & (sh->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hnext) {
		if (*pp == k) {
			*pp = k->hnext;
			sh->nhashed--;
			return;
		}
	}
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
		chain(sh, &t->hk);
		t->hashed = true;
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

	if (t->hashed) {
		unchain(sh, &t->hk);
		t->hashed = false;
	}
	if (sh->slots[t->slot] == t)
		slot_free(sh, t);
}

void tm_trans_release(struct tm_trans *t)
{
	unlink_trans(t);
	obj_unref(t);
}

static size_t linger_size(const struct req_id *id, size_t reply_len)
{
	return sizeof(struct tm_linger) + id->a.len + id->b.len + id->c.len +
	       reply_len;
}

static void linger_free(struct tm_linger *l)
{
	struct tm_shard *sh = l->sh;
	size_t size = linger_size(&l->id, l->reply_len);

	tmr_cancel(worker_wheel(sh->w), &l->timer);
	unchain(sh, &l->hk);
	sh->bytes -= size;
	sh->stats.waiting--;
	sh->stats.active--;
	mem_put(l, size);
}

static void linger_expired(struct tmr *tm, void *arg)
{
	(void)tm;
	linger_free(arg);
}

static void copy_slice(struct slice *s, char **p)
{
	if (s->len) /* an empty one may be SLICE_NULL */
		memcpy(*p, s->p, s->len);
	s->p = *p;
	*p += s->len;
}

/*
 * What is left of timer J (RFC 3261 §17.2.2) when t's wait ends: over UDP
 * a non-INVITE server transaction answers retransmissions for 64*T1, or a
 * request whose reply was lost would be forwarded again as a new one. The
 * transaction does for the wait time (its branch absorbing the reply's
 * retransmissions, timer K), its compact form for the rest.
 */
static unsigned timer_j_rest(const struct tm_trans *t)
{
	const struct tm_config *c = t->sh->cfg;
	unsigned j = 64 * c->t1_ms;

	if (t->is_invite || !t->hashed || t->src.proto != NET_UDP ||
	    j <= c->wait_timer_ms)
		return 0;
	return j - c->wait_timer_ms;
}

/* t's compact form for ms. Without memory the transaction just ends a
 * little early: a retransmission then goes through as a new request,
 * which the next hop answers again. */
static void linger_start(struct tm_trans *t, unsigned ms)
{
	struct tm_shard *sh = t->sh;
	struct tm_linger *l;
	struct req_id id;
	size_t size;
	char *p;

	if (t->last_reply == NULL || !req_id_of(&id, t->req, false))
		return;
	size = linger_size(&id, t->last_reply_len);
	l = mem_get(size);
	if (l == NULL)
		return;
	l->hk.key = t->hk.key;
	l->hk.linger = true;
	l->sh = sh;
	tm_reply_dst(&l->dst, &t->src, t->req, &t->ed);
	l->id = id;
	p = l->bytes;
	copy_slice(&l->id.a, &p);
	copy_slice(&l->id.b, &p);
	copy_slice(&l->id.c, &p);
	memcpy(p, t->last_reply, t->last_reply_len);
	l->reply = p;
	l->reply_len = t->last_reply_len;
	chain(sh, &l->hk);
	sh->bytes += size;
	/* Still a transaction in its wait: counted as one. */
	sh->stats.active++;
	sh->stats.waiting++;
	tmr_init(&l->timer);
	tmr_start_coarse(worker_wheel(sh->w), &l->timer, ms, linger_expired, l);
}

void tm_linger_resend(struct tm_linger *l)
{
	l->sh->stats.retransmissions++;
	net_send(l->sh->w, &l->dst, l->reply, l->reply_len, NULL);
}

static void wait_expired(struct tmr *tm, void *arg)
{
	struct tm_trans *t = arg;
	unsigned rest = timer_j_rest(t);

	(void)tm;
	if (rest)
		linger_start(t, rest);
	tm_trans_release(t);
}

void tm_trans_wait(struct tm_trans *t)
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
		mem_put(b->req, b->req_len);
		mem_put(b->reply, b->reply_len);
		b->req = b->reply = NULL;
		b->req_len = b->reply_len = 0;
	}
	tmr_start_coarse(wh, &t->uas_wait, t->sh->cfg->wait_timer_ms,
	                 wait_expired, t);
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
