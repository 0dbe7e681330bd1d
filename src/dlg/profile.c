/*
 * Dialog profiles: the registry, the per-dialog sets and the shared
 * per-(profile, value) entries.
 *
 * Layout. A membership (struct profile_member) is one allocation, linked
 * twice: into its dialog's set (private to the dialog's thread) and into
 * the member list of the shared entry for its (profile, value), which
 * also holds the count. Entries live in a hash table split into stripes,
 * each with its own mutex and its own bucket array, so threads working on
 * different values rarely meet and no operation ever walks members to
 * count them. A with-value profile picks the stripe from the value hash
 * (all members of one value share one entry, hence one exact count); a
 * no-value profile picks it from the member's shard, so the workers do
 * not fight over the single lock a one-entry profile would otherwise
 * have. The profile total is an atomic updated under the stripe lock
 * together with the entry count.
 */
#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdalign.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dlg/profile.h"

#define STRIPE_BITS 6
#define NSTRIPES    (1u << STRIPE_BITS)
#define CACHE_LINE  64
/* Buckets of a stripe's table when its first entry arrives. */
#define MIN_BUCKETS 4

struct profile_entry {
	struct profile_entry *chain;    /* next in the bucket */
	struct profile_member *members; /* doubly linked, under the lock */
	struct profile *profile;
	uint64_t hash;
	size_t count; /* members, under the stripe lock */
	unsigned stripe;
	size_t len;
	char value[]; /* len bytes, not NUL-terminated */
};

/* One cache line per stripe so that workers locking neighbouring stripes
 * do not bounce each other's lines. */
struct stripe {
	alignas(CACHE_LINE) pthread_mutex_t mx;
	struct profile_entry **buckets; /* NULL while the stripe is empty */
	size_t nbuckets;                /* 0 or a power of two */
	size_t nentries;
};

struct profile {
	struct stripe stripes[NSTRIPES];
	alignas(CACHE_LINE) atomic_size_t total;
	atomic_size_t bytes; /* entries, members and bucket arrays */
	bool has_value;
	char *name;
	size_t name_len;
};

struct profile_registry {
	struct profile **profiles;
	size_t count;
	size_t fixed_bytes; /* the registry and its profiles themselves */
};

/* --------------------------------------------------------------- helpers */

static void bytes_add(struct profile *p, size_t n)
{
	atomic_fetch_add_explicit(&p->bytes, n, memory_order_relaxed);
}

static void bytes_sub(struct profile *p, size_t n)
{
	size_t old =
	        atomic_fetch_sub_explicit(&p->bytes, n, memory_order_relaxed);

	assert(old >= n);
	(void)old;
}

static struct profile *mut(const struct profile *p)
{
	/* The API hands out const profiles so callers cannot change their
	 * definition; the counters inside are synchronised state. */
	return (struct profile *)p;
}

/* Where (p, value, shard) lives: the stripe and the hash in it. */
static unsigned locate(const struct profile *p, struct slice value,
                       unsigned shard, uint64_t *hash)
{
	if (!p->has_value) {
		*hash = 0;
		return shard & (NSTRIPES - 1);
	}
	*hash = hash_bytes(value.p, value.len);
	return (unsigned)(*hash & (NSTRIPES - 1));
}

static size_t bucket_of(uint64_t hash, size_t nbuckets)
{
	return (size_t)(hash >> STRIPE_BITS) & (nbuckets - 1);
}

static bool value_eq(const struct profile_entry *e, struct slice value)
{
	return e->len == value.len &&
	       (value.len == 0 || memcmp(e->value, value.p, value.len) == 0);
}

/* Under the stripe lock. */
static struct profile_entry *entry_find(const struct stripe *st, uint64_t hash,
                                        struct slice value)
{
	struct profile_entry *e;

	for (e = st->buckets[bucket_of(hash, st->nbuckets)]; e; e = e->chain)
		if (e->hash == hash && value_eq(e, value))
			return e;
	return NULL;
}

/*
 * Under the stripe lock (or before the profile is shared): rehashes into
 * n > 0 buckets. On ENOMEM the old table stays, which is only slower.
 */
static int stripe_resize(struct profile *p, struct stripe *st, size_t n)
{
	struct profile_entry **nb = calloc(n, sizeof(*nb));

	if (!nb)
		return ENOMEM;
	for (size_t i = 0; i < st->nbuckets; i++) {
		struct profile_entry *e = st->buckets[i], *next;

		for (; e; e = next) {
			size_t b = bucket_of(e->hash, n);

			next = e->chain;
			e->chain = nb[b];
			nb[b] = e;
		}
	}
	free(st->buckets);
	bytes_sub(p, st->nbuckets * sizeof(*nb));
	bytes_add(p, n * sizeof(*nb));
	st->buckets = nb;
	st->nbuckets = n;
	return 0;
}

/* Under the stripe lock: the entry for value, created with count 0. */
static int entry_get(struct profile_entry **out, struct profile *p,
                     unsigned stripe, uint64_t hash, struct slice value)
{
	struct stripe *st = &p->stripes[stripe];
	struct profile_entry *e = entry_find(st, hash, value);
	size_t b;

	if (e) {
		*out = e;
		return 0;
	}
	e = malloc(sizeof(*e) + value.len);
	if (!e)
		return ENOMEM;
	e->members = NULL;
	e->profile = p;
	e->hash = hash;
	e->count = 0;
	e->stripe = stripe;
	e->len = value.len;
	if (value.len > 0)
		memcpy(e->value, value.p, value.len);
	bytes_add(p, sizeof(*e) + value.len);

	/* Load factor 1: chains stay short however many values appear. */
	if (st->nentries >= st->nbuckets)
		(void)stripe_resize(p, st, st->nbuckets * 2);
	b = bucket_of(hash, st->nbuckets);
	e->chain = st->buckets[b];
	st->buckets[b] = e;
	st->nentries++;
	*out = e;
	return 0;
}

/* Under the stripe lock: unhooks an entry whose count reached 0; the
 * caller frees it after unlocking. */
static void entry_unhook(struct profile *p, struct stripe *st,
                         struct profile_entry *e)
{
	struct profile_entry **pp =
	        &st->buckets[bucket_of(e->hash, st->nbuckets)];

	while (*pp != e)
		pp = &(*pp)->chain;
	*pp = e->chain;
	st->nentries--;
	bytes_sub(p, sizeof(*e) + e->len);

	/* Give memory back after a peak of unique values: a sparse stripe
	 * keeps a quarter of its array (amortised O(1): the next resize is
	 * at least nbuckets / 8 operations away), and never less than the
	 * MIN_BUCKETS it was made with: an empty stripe that freed its
	 * array would allocate one again for the next value, an allocation
	 * and a free per call where a value per call comes and goes. */
	if (st->nbuckets > MIN_BUCKETS && st->nentries < st->nbuckets / 8)
		(void)stripe_resize(p, st,
		                    st->nbuckets / 4 > MIN_BUCKETS
		                            ? st->nbuckets / 4
		                            : MIN_BUCKETS);
}

/* A membership of s in p: one of the set's own slots while one is free,
 * else from the heap, whose bytes p counts. */
static struct profile_member *member_alloc(struct profile_set *s,
                                           struct profile *p)
{
	for (unsigned i = 0; i < PROFILE_SET_SLOTS; i++)
		if (s->slots[i].entry == NULL) {
			s->slots[i].in_set = true;
			return &s->slots[i];
		}
	struct profile_member *m = malloc(sizeof(*m));
	if (m) {
		m->in_set = false;
		bytes_add(p, sizeof(*m));
	}
	return m;
}

/* Gives m back to its set or to the heap. */
static void member_free(struct profile *p, struct profile_member *m)
{
	if (m->in_set) {
		m->entry = NULL; /* the slot is free again */
	} else {
		free(m);
		bytes_sub(p, sizeof(*m));
	}
}

/* Leaves the shared side of m and frees it (m already out of its set). */
static void member_drop(struct profile_member *m)
{
	struct profile_entry *e = m->entry;
	struct profile *p = e->profile;
	struct stripe *st = &p->stripes[e->stripe];
	bool last;
	size_t old;

	pthread_mutex_lock(&st->mx);
	if (m->prev)
		m->prev->next = m->next;
	else
		e->members = m->next;
	if (m->next)
		m->next->prev = m->prev;
	/* Counts only move with a membership that exists, so neither can
	 * be zero here; a zero would be a bookkeeping bug, not a state. */
	assert(e->count > 0);
	e->count--;
	old = atomic_fetch_sub_explicit(&p->total, 1, memory_order_relaxed);
	assert(old > 0);
	(void)old;
	last = e->count == 0;
	if (last)
		entry_unhook(p, st, e);
	pthread_mutex_unlock(&st->mx);

	if (last)
		free(e);
	member_free(p, m);
}

/* Whether membership m is one that (p, value) designates. */
static bool member_match(const struct profile_member *m,
                         const struct profile *p, struct slice value)
{
	const struct profile_entry *e = m->entry;

	if (e->profile != p)
		return false;
	if (!p->has_value || value.len == 0)
		return true;
	return value_eq(e, value);
}

/* ------------------------------------------------------------ definition */

static void profile_destroy(struct profile *p)
{
	if (!p)
		return;
	for (unsigned i = 0; i < NSTRIPES; i++) {
		struct stripe *st = &p->stripes[i];

		for (size_t b = 0; b < st->nbuckets; b++) {
			struct profile_entry *e = st->buckets[b], *next;

			for (; e; e = next) {
				struct profile_member *m = e->members, *mn;

				for (; m; m = mn) {
					mn = m->next;
					member_free(p, m);
				}
				next = e->chain;
				free(e);
			}
		}
		free(st->buckets);
		pthread_mutex_destroy(&st->mx);
	}
	free(p->name);
	free(p);
}

static struct profile *profile_create(struct slice name, bool has_value)
{
	/* Rounded up: aligned_alloc() wants a multiple of the alignment. */
	size_t size = (sizeof(struct profile) + CACHE_LINE - 1) &
	              ~(size_t)(CACHE_LINE - 1);
	struct profile *p = aligned_alloc(CACHE_LINE, size);

	if (!p)
		return NULL;
	memset(p, 0, sizeof(*p));
	p->name = malloc(name.len + 1);
	if (!p->name) {
		free(p);
		return NULL;
	}
	slice_copy_cstr(p->name, name.len + 1, name);
	p->name_len = name.len;
	p->has_value = has_value;
	atomic_init(&p->total, 0);
	atomic_init(&p->bytes, 0);
	for (unsigned i = 0; i < NSTRIPES; i++)
		pthread_mutex_init(&p->stripes[i].mx, NULL);
	for (unsigned i = 0; i < NSTRIPES; i++) {
		if (stripe_resize(p, &p->stripes[i], MIN_BUCKETS) != 0) {
			profile_destroy(p);
			return NULL;
		}
	}
	return p;
}

static bool name_ok(struct slice name)
{
	for (size_t i = 0; i < name.len; i++) {
		char c = name.p[i];

		if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
		      (c >= '0' && c <= '9') || c == '_'))
			return false;
	}
	return name.len > 0;
}

static void set_err(char *err, size_t errsize, const char *param,
                    const char *what, struct slice name, const char *why)
{
	if (err && errsize > 0)
		snprintf(err, errsize, "%s: %s profile name '%.*s'%s", param,
		         what, SLICE_ARG(name), why);
}

/* Appends the profiles named in list (may be NULL) to r. */
static int parse_list(struct profile_registry *r, size_t *cap, const char *list,
                      bool has_value, char *err, size_t errsize)
{
	const char *param =
	        has_value ? "profiles_with_value" : "profiles_no_value";
	const char *s = list ? list : "";

	while (*s) {
		const char *semi = strchr(s, ';');
		size_t len = semi ? (size_t)(semi - s) : strlen(s);
		struct slice name = slice_trim(slice_make(s, len));
		struct profile *p;

		s += len + (semi ? 1 : 0);
		if (name.len == 0)
			continue;
		if (!name_ok(name)) {
			set_err(err, errsize, param, "bad", name,
			        " (letters, digits and '_' only)");
			return EINVAL;
		}
		if (profile_find(r, name)) {
			set_err(err, errsize, param, "duplicate", name, "");
			return EINVAL;
		}
		if (r->count == *cap) {
			size_t n = *cap ? *cap * 2 : 8;
			struct profile **np =
			        realloc(r->profiles, n * sizeof(*np));

			if (!np)
				return ENOMEM;
			r->profiles = np;
			*cap = n;
		}
		p = profile_create(name, has_value);
		if (!p)
			return ENOMEM;
		r->profiles[r->count++] = p;
		r->fixed_bytes += sizeof(*p) + name.len + 1;
	}
	return 0;
}

int profile_registry_new(struct profile_registry **out, const char *no_value,
                         const char *with_value, char *err, size_t errsize)
{
	struct profile_registry *r = calloc(1, sizeof(*r));
	size_t cap = 0;
	int rc;

	if (!r)
		return ENOMEM;
	r->fixed_bytes = sizeof(*r);
	rc = parse_list(r, &cap, no_value, false, err, errsize);
	if (rc == 0)
		rc = parse_list(r, &cap, with_value, true, err, errsize);
	if (rc != 0) {
		if (rc == ENOMEM && err && errsize > 0)
			snprintf(err, errsize, "out of memory");
		profile_registry_free(r);
		return rc;
	}
	r->fixed_bytes += cap * sizeof(*r->profiles);
	*out = r;
	return 0;
}

void profile_registry_free(struct profile_registry *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->count; i++)
		profile_destroy(r->profiles[i]);
	free(r->profiles);
	free(r);
}

const struct profile *profile_find(const struct profile_registry *r,
                                   struct slice name)
{
	/* A handful of profiles, looked up when the script is loaded. */
	for (size_t i = 0; i < r->count; i++) {
		const struct profile *p = r->profiles[i];

		if (p->name_len == name.len &&
		    memcmp(p->name, name.p, name.len) == 0)
			return p;
	}
	return NULL;
}

size_t profile_count(const struct profile_registry *r)
{
	return r->count;
}

const struct profile *profile_at(const struct profile_registry *r, size_t i)
{
	return i < r->count ? r->profiles[i] : NULL;
}

bool profile_has_value(const struct profile *p)
{
	return p->has_value;
}

const char *profile_name(const struct profile *p)
{
	return p->name;
}

/* ------------------------------------------------------- a dialog's set */

void profile_set_init(struct profile_set *s)
{
	memset(s, 0, sizeof(*s));
}

int profile_add(struct profile_set *s, const struct profile *cp,
                struct slice value, void *owner, unsigned shard)
{
	struct profile *p = mut(cp);
	struct profile_member *m;
	struct profile_entry *e;
	struct stripe *st;
	uint64_t hash;
	unsigned stripe;
	int rc;

	if (!p->has_value)
		value = SLICE_NULL;
	else if (value.len == 0)
		return EINVAL; /* §13 item 30: IMS dereferenced nothing */
	/* A set, not a multiset (§13 item 31): spirals and repeated script
	 * calls must not inflate the counts. */
	for (m = s->head; m; m = m->set_next)
		if (member_match(m, p, value))
			return 0;

	m = member_alloc(s, p);
	if (!m)
		return ENOMEM;
	m->owner = owner;
	m->shard = shard;
	m->prev = NULL;

	stripe = locate(p, value, shard, &hash);
	st = &p->stripes[stripe];
	pthread_mutex_lock(&st->mx);
	rc = entry_get(&e, p, stripe, hash, value);
	if (rc == 0) {
		m->entry = e;
		m->next = e->members;
		if (e->members)
			e->members->prev = m;
		e->members = m;
		e->count++;
		atomic_fetch_add_explicit(&p->total, 1, memory_order_relaxed);
	}
	pthread_mutex_unlock(&st->mx);
	if (rc != 0) {
		member_free(p, m);
		return rc;
	}
	m->set_next = s->head;
	s->head = m;
	s->count++;
	return 0;
}

int profile_remove(struct profile_set *s, const struct profile *p,
                   struct slice value)
{
	struct profile_member **pp = &s->head;
	bool all = p->has_value && value.len == 0;
	int rc = ENOENT;

	while (*pp) {
		struct profile_member *m = *pp;

		if (!member_match(m, p, value)) {
			pp = &m->set_next;
			continue;
		}
		*pp = m->set_next;
		s->count--;
		member_drop(m);
		rc = 0;
		/* A set holds (profile, value) once: done unless removing
		 * every value. */
		if (!all)
			break;
	}
	return rc;
}

bool profile_is_member(const struct profile_set *s, const struct profile *p,
                       struct slice value)
{
	for (const struct profile_member *m = s->head; m; m = m->set_next)
		if (member_match(m, p, value))
			return true;
	return false;
}

void profile_clear(struct profile_set *s)
{
	struct profile_member *m = s->head, *next;

	for (; m; m = next) {
		next = m->set_next;
		member_drop(m);
	}
	s->head = NULL;
	s->count = 0;
}

size_t profile_set_count(const struct profile_set *s)
{
	return s->count;
}

const struct profile_member *profile_set_next(const struct profile_set *s,
                                              const struct profile_member *m)
{
	return m ? m->set_next : s->head;
}

const struct profile *profile_member_profile(const struct profile_member *m)
{
	return m->entry->profile;
}

struct slice profile_member_value(const struct profile_member *m)
{
	/* The entry cannot go while m holds a count on it, and its value
	 * never changes, so no lock is needed. */
	return slice_make(m->entry->value, m->entry->len);
}

/* --------------------------------------------------------- shared views */

size_t profile_size(const struct profile *cp, struct slice value)
{
	struct profile *p = mut(cp);
	const struct profile_entry *e;
	struct stripe *st;
	uint64_t hash;
	size_t n;

	if (!p->has_value || value.len == 0)
		return atomic_load_explicit(&p->total, memory_order_relaxed);
	st = &p->stripes[locate(p, value, 0, &hash)];
	pthread_mutex_lock(&st->mx);
	e = entry_find(st, hash, value);
	n = e ? e->count : 0;
	pthread_mutex_unlock(&st->mx);
	return n;
}

/* Under the stripe lock. */
static void entry_report(const struct profile_entry *e,
                         void (*fn)(void *owner, unsigned shard, void *arg),
                         void *arg)
{
	for (const struct profile_member *m = e->members; m; m = m->next)
		fn(m->owner, m->shard, arg);
}

/* Calls visit(e, arg) for every entry of p, one stripe at a time under
 * its lock: a walk never holds the whole profile. */
static void each_entry(struct profile *p,
                       void (*visit)(const struct profile_entry *e, void *arg),
                       void *arg)
{
	for (unsigned i = 0; i < NSTRIPES; i++) {
		struct stripe *st = &p->stripes[i];

		pthread_mutex_lock(&st->mx);
		for (size_t b = 0; b < st->nbuckets; b++)
			for (const struct profile_entry *e = st->buckets[b]; e;
			     e = e->chain)
				visit(e, arg);
		pthread_mutex_unlock(&st->mx);
	}
}

struct member_walk {
	void (*fn)(void *owner, unsigned shard, void *arg);
	void *arg;
};

static void visit_members(const struct profile_entry *e, void *arg)
{
	struct member_walk *w = arg;

	entry_report(e, w->fn, w->arg);
}

void profile_foreach_member(const struct profile *cp, struct slice value,
                            void (*fn)(void *owner, unsigned shard, void *arg),
                            void *arg)
{
	struct profile *p = mut(cp);
	struct member_walk w = {fn, arg};

	if (p->has_value && value.len > 0) {
		uint64_t hash;
		struct stripe *st = &p->stripes[locate(p, value, 0, &hash)];
		const struct profile_entry *e;

		pthread_mutex_lock(&st->mx);
		e = entry_find(st, hash, value);
		if (e)
			entry_report(e, fn, arg);
		pthread_mutex_unlock(&st->mx);
		return;
	}
	each_entry(p, visit_members, &w);
}

struct value_walk {
	void (*fn)(struct slice value, size_t members, void *arg);
	void *arg;
};

/* A value has one entry, and an entry without members is gone. */
static void visit_value(const struct profile_entry *e, void *arg)
{
	struct value_walk *w = arg;

	if (e->count > 0)
		w->fn(slice_make(e->value, e->len), e->count, w->arg);
}

void profile_foreach_value(const struct profile *cp,
                           void (*fn)(struct slice value, size_t members,
                                      void *arg),
                           void *arg)
{
	struct profile *p = mut(cp);
	struct value_walk w = {fn, arg};

	if (p->has_value)
		each_entry(p, visit_value, &w);
}

size_t profile_bytes(const struct profile_registry *r)
{
	size_t n = r->fixed_bytes;

	for (size_t i = 0; i < r->count; i++)
		n += atomic_load_explicit(&r->profiles[i]->bytes,
		                          memory_order_relaxed);
	return n;
}
