#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "core/core.h"

#define SECOND 1000ull
#define MINUTE (60 * SECOND)
#define DAY    (24 * 60 * MINUTE)
/* The span of the whole wheel: 64^5 ms, about 12.4 days. */
#define WHEEL_SPAN (1ull << 30)

/* splitmix64: deterministic, so a failure reproduces. */
static uint64_t rnd(uint64_t *state)
{
	uint64_t z = (*state += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static uint64_t rnd_below(uint64_t *state, uint64_t n)
{
	return rnd(state) % n;
}

/* Wall and CPU time: the machine running the tests may be busy. */
struct stopwatch {
	struct timespec wall, cpu;
};

static void sw_start(struct stopwatch *sw)
{
	clock_gettime(CLOCK_MONOTONIC, &sw->wall);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &sw->cpu);
}

static double ms_since(clockid_t clock, const struct timespec *since)
{
	struct timespec now;

	clock_gettime(clock, &now);
	return (double)(now.tv_sec - since->tv_sec) * 1e3 +
	       (double)(now.tv_nsec - since->tv_nsec) / 1e6;
}

static void sw_print(const struct stopwatch *sw, const char *what)
{
	print_message("%s: %.0f ms (%.0f ms CPU)\n", what,
	              ms_since(CLOCK_MONOTONIC, &sw->wall),
	              ms_since(CLOCK_PROCESS_CPUTIME_ID, &sw->cpu));
}

/* ------------------------------------------------------ one million timers */

struct item {
	struct tmr t;
	uint64_t expiry;
	uint32_t seq;
	bool cancelled;
	bool fired;
};

struct million {
	struct twheel w;
	struct item *items;
	struct item **order; /* uncancelled items, by (expiry, seq) */
	size_t n_order;
	size_t next;       /* index in order of the next expected firing */
	uint64_t prev_now; /* the previous advance's target */
	uint64_t cur_now;  /* the current advance's target */
	size_t in_call;    /* callbacks during the current advance */
};

static struct million *mctx;

static void million_fire(struct tmr *t, void *arg)
{
	struct million *m = mctx;
	struct item *it = arg;

	if (it->cancelled || it->fired)
		fail_msg("timer %u fired twice or after cancel", it->seq);
	if (t != &it->t || t->expires != it->expiry)
		fail_msg("timer %u: wrong timer or expiry", it->seq);
	if (it->expiry > m->cur_now || it->expiry <= m->prev_now)
		fail_msg("timer %u expiring at %llu fired by advance %llu -> "
		         "%llu",
		         it->seq, (unsigned long long)it->expiry,
		         (unsigned long long)m->prev_now,
		         (unsigned long long)m->cur_now);
	if (tmr_pending(t) || m->w.now != it->expiry)
		fail_msg("timer %u: pending or wrong wheel time in callback",
		         it->seq);
	/* Equal expiries in arming order, hence exactly the sorted order. */
	if (m->next >= m->n_order || m->order[m->next] != it)
		fail_msg("timer %u (expiry %llu) fired out of order", it->seq,
		         (unsigned long long)it->expiry);
	m->next++;
	m->in_call++;
	it->fired = true;
}

static int by_expiry(const void *a, const void *b)
{
	const struct item *x = *(struct item *const *)a;
	const struct item *y = *(struct item *const *)b;

	if (x->expiry != y->expiry)
		return x->expiry < y->expiry ? -1 : 1;
	return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void test_million(void **state)
{
	enum { N = 1000000 };
	const uint64_t start = 987654321; /* deliberately not aligned */
	const uint64_t max_delay = 10 * MINUTE;
	struct million *m = calloc(1, sizeof(*m));
	uint32_t *perm;
	uint64_t seed = 42;
	uint64_t now;
	size_t advances = 0;
	struct stopwatch sw;
	char what[64];

	assert_non_null(m);
	mctx = m;
	m->items = calloc(N, sizeof(*m->items));
	m->order = calloc(N, sizeof(*m->order));
	perm = calloc(N, sizeof(*perm));
	assert_true(m->items && m->order && perm);

	sw_start(&sw);
	twheel_init(&m->w, start);
	for (uint32_t i = 0; i < N; i++) {
		struct item *it = &m->items[i];
		uint64_t delay = rnd_below(&seed, max_delay + 1);

		it->seq = i;
		it->expiry = start + delay;
		tmr_init(&it->t);
		tmr_start(&m->w, &it->t, delay, million_fire, it);
	}
	assert_int_equal(m->w.count, N);

	/* Cancel a random half, in random order. */
	for (uint32_t i = 0; i < N; i++)
		perm[i] = i;
	for (uint32_t i = N - 1; i > 0; i--) {
		uint32_t j = (uint32_t)rnd_below(&seed, (uint64_t)i + 1);
		uint32_t tmp = perm[i];

		perm[i] = perm[j];
		perm[j] = tmp;
	}
	for (uint32_t i = 0; i < N / 2; i++) {
		struct item *it = &m->items[perm[i]];

		tmr_cancel(&m->w, &it->t);
		it->cancelled = true;
		assert_false(tmr_pending(&it->t));
	}
	assert_int_equal(m->w.count, N / 2);
	sw_print(&sw, "1M timers armed, half cancelled");

	for (uint32_t i = 0; i < N; i++) {
		if (!m->items[i].cancelled)
			m->order[m->n_order++] = &m->items[i];
	}
	assert_int_equal(m->n_order, N / 2);
	qsort(m->order, m->n_order, sizeof(*m->order), by_expiry);

	sw_start(&sw);
	/* Advances before the start count as "before anything". */
	m->prev_now = start - 1;
	now = start;
	while (now <= start + max_delay + 1000) {
		uint64_t r = rnd_below(&seed, 100);
		uint64_t expect;
		size_t fired;

		/* Mostly small steps, some repeated times, a few long
		 * jumps that cross several levels at once. */
		if (r < 2)
			now += 0;
		else if (r < 90)
			now += rnd_below(&seed, 20);
		else if (r < 99)
			now += rnd_below(&seed, 2000);
		else
			now += rnd_below(&seed, 2 * MINUTE);
		m->cur_now = now;
		m->in_call = 0;
		fired = twheel_advance(&m->w, now);
		advances++;
		if (fired != m->in_call || m->w.now != now)
			fail_msg("advance to %llu: returned %zu, fired %zu",
			         (unsigned long long)now, fired, m->in_call);
		/* Nothing due is left behind... */
		if (m->next < m->n_order && m->order[m->next]->expiry <= now)
			fail_msg("advance to %llu left timer %u (expiry %llu)",
			         (unsigned long long)now,
			         m->order[m->next]->seq,
			         (unsigned long long)m->order[m->next]->expiry);
		/* ...and the wheel knows when the next one is due. */
		expect = m->next < m->n_order ? m->order[m->next]->expiry - now
		                              : UINT64_MAX;
		if (twheel_next_delay(&m->w) != expect)
			fail_msg("next_delay at %llu: %llu, expected %llu",
			         (unsigned long long)now,
			         (unsigned long long)twheel_next_delay(&m->w),
			         (unsigned long long)expect);
		/* A loop waking at next_wakeup is never late and never
		 * spins. */
		uint64_t wake = twheel_next_wakeup(&m->w);
		if (wake > expect || (wake == 0 && expect != 0))
			fail_msg("next_wakeup at %llu: %llu, next expiry in "
			         "%llu",
			         (unsigned long long)now,
			         (unsigned long long)wake,
			         (unsigned long long)expect);
		m->prev_now = now;
	}
	snprintf(what, sizeof(what), "%zu advances over 10 minutes", advances);
	sw_print(&sw, what);

	assert_int_equal(m->next, N / 2);
	assert_int_equal(m->w.count, 0);
	for (uint32_t i = 0; i < N; i++) {
		const struct item *it = &m->items[i];

		assert_true(it->fired != it->cancelled);
		assert_false(tmr_pending(&it->t));
	}
	free(perm);
	free(m->order);
	free(m->items);
	free(m);
	mctx = NULL;
}

/* ------------------------------------------------- against a simple model */

enum { MODEL_N = 800 };

struct model {
	struct twheel w;
	struct tmr t[MODEL_N];
	bool pending[MODEL_N];
	uint64_t expiry[MODEL_N];
	uint64_t armed[MODEL_N]; /* arming sequence number */
	int fired[MODEL_N];      /* indices, in firing order */
	size_t n_fired;
};

static void model_fire(struct tmr *t, void *arg)
{
	struct model *md = arg;

	md->fired[md->n_fired++] = (int)(t - md->t);
}

static uint64_t model_delay(uint64_t *seed)
{
	switch (rnd_below(seed, 8)) {
	case 0:
		return rnd_below(seed, 3);
	case 1:
		return rnd_below(seed, 100);
	case 2:
		return rnd_below(seed, 10000);
	case 3:
		return rnd_below(seed, 1000000);
	case 4:
		return rnd_below(seed, 100000000);
	case 5:
		/* Around the span of the wheel and beyond. */
		return WHEEL_SPAN - 5000 + rnd_below(seed, 10000);
	case 6:
		return rnd_below(seed, 8 * WHEEL_SPAN);
	default:
		/* Shared expiries, to check the order of ties. */
		return 64 * rnd_below(seed, 4);
	}
}

static uint64_t model_step(uint64_t *seed)
{
	switch (rnd_below(seed, 6)) {
	case 0:
		return 0;
	case 1:
		return rnd_below(seed, 70);
	case 2:
		return rnd_below(seed, 5000);
	case 3:
		return rnd_below(seed, 300000);
	case 4:
		return rnd_below(seed, 30000000);
	default:
		return rnd_below(seed, 2 * WHEEL_SPAN);
	}
}

static int model_cmp(const struct model *md, int a, int b)
{
	if (md->expiry[a] != md->expiry[b])
		return md->expiry[a] < md->expiry[b] ? -1 : 1;
	return md->armed[a] < md->armed[b] ? -1 : 1;
}

static void test_model(void **state)
{
	struct model *md = calloc(1, sizeof(*md));
	int expect[MODEL_N];
	uint64_t seed = 7, seq = 0;
	uint64_t now = (1ull << 33) - 12345;

	assert_non_null(md);
	twheel_init(&md->w, now);
	for (int i = 0; i < MODEL_N; i++)
		tmr_init(&md->t[i]);

	for (int round = 0; round < 20000; round++) {
		uint64_t r = rnd_below(&seed, 10);
		size_t n_expect = 0, pending = 0;
		uint64_t min = UINT64_MAX;

		if (r < 6) {
			int i = (int)rnd_below(&seed, MODEL_N);
			uint64_t d = model_delay(&seed);

			tmr_start(&md->w, &md->t[i], d, model_fire, md);
			md->pending[i] = true;
			md->expiry[i] = now + d;
			md->armed[i] = seq++;
			continue;
		}
		if (r < 8) {
			int i = (int)rnd_below(&seed, MODEL_N);

			tmr_cancel(&md->w, &md->t[i]);
			md->pending[i] = false;
			continue;
		}

		for (int i = 0; i < MODEL_N; i++) {
			if (!md->pending[i])
				continue;
			pending++;
			if (md->expiry[i] < min)
				min = md->expiry[i];
		}
		assert_int_equal(md->w.count, pending);
		assert_int_equal(twheel_next_delay(&md->w),
		                 pending ? (min > now ? min - now : 0)
		                         : UINT64_MAX);

		now += model_step(&seed);
		for (int i = 0; i < MODEL_N; i++) {
			if (md->pending[i] && md->expiry[i] <= now) {
				/* Insertion sort: the lists are short. */
				size_t j = n_expect++;

				while (j > 0 &&
				       model_cmp(md, expect[j - 1], i) > 0) {
					expect[j] = expect[j - 1];
					j--;
				}
				expect[j] = i;
				md->pending[i] = false;
			}
		}
		md->n_fired = 0;
		assert_int_equal(twheel_advance(&md->w, now), n_expect);
		assert_int_equal(md->n_fired, n_expect);
		for (size_t k = 0; k < n_expect; k++)
			assert_int_equal(md->fired[k], expect[k]);
	}
	free(md);
}

/*
 * The same with callbacks that arm, re-arm and cancel timers: no exact
 * list to compare with, but every firing must be the earliest pending
 * timer, on time, and none may be left behind.
 */
struct chaos {
	struct twheel w;
	struct tmr t[MODEL_N];
	bool pending[MODEL_N];
	uint64_t expiry[MODEL_N];
	uint64_t armed[MODEL_N];
	uint64_t seq;
	uint64_t seed;
	uint64_t last_expiry, last_armed; /* key of the last firing */
	uint64_t target;
	size_t fired;
};

static void chaos_fire(struct tmr *t, void *arg);

static void chaos_arm(struct chaos *c, int i, uint64_t delay)
{
	tmr_start(&c->w, &c->t[i], delay, chaos_fire, c);
	c->pending[i] = true;
	c->expiry[i] = c->w.now + delay;
	c->armed[i] = c->seq++;
}

static void chaos_fire(struct tmr *t, void *arg)
{
	struct chaos *c = arg;
	int i = (int)(t - c->t);
	uint64_t r = rnd_below(&c->seed, 10);
	int j = (int)rnd_below(&c->seed, MODEL_N);

	if (!c->pending[i] || t->expires != c->expiry[i] ||
	    c->w.now != t->expires || t->expires > c->target)
		fail_msg("timer %d fired wrongly at %llu", i,
		         (unsigned long long)c->w.now);
	/* Strictly increasing (expiry, arming) over the whole run. */
	if (c->expiry[i] < c->last_expiry ||
	    (c->expiry[i] == c->last_expiry && c->armed[i] <= c->last_armed))
		fail_msg("timer %d fired out of order", i);
	for (int k = 0; k < MODEL_N; k++) {
		if (c->pending[k] && k != i &&
		    (c->expiry[k] < c->expiry[i] ||
		     (c->expiry[k] == c->expiry[i] &&
		      c->armed[k] < c->armed[i])))
			fail_msg("timer %d fired before %d", i, k);
	}
	c->last_expiry = c->expiry[i];
	c->last_armed = c->armed[i];
	c->pending[i] = false;
	c->fired++;

	if (r < 3) {
		chaos_arm(c, i, 1 + model_delay(&c->seed));
	} else if (r < 5) {
		chaos_arm(c, j, 1 + model_delay(&c->seed));
	} else if (r < 6) {
		tmr_cancel(&c->w, &c->t[j]);
		c->pending[j] = false;
	}
}

static void test_model_callbacks(void **state)
{
	struct chaos *c = calloc(1, sizeof(*c));

	assert_non_null(c);
	c->seed = 99;
	twheel_init(&c->w, 5);
	for (int i = 0; i < MODEL_N; i++)
		tmr_init(&c->t[i]);

	for (int round = 0; round < 20000; round++) {
		uint64_t r = rnd_below(&c->seed, 10);
		uint64_t min = UINT64_MAX;
		size_t pending = 0, fired;

		if (r < 6) {
			chaos_arm(c, (int)rnd_below(&c->seed, MODEL_N),
			          model_delay(&c->seed));
			continue;
		}
		if (r < 7) {
			int i = (int)rnd_below(&c->seed, MODEL_N);

			tmr_cancel(&c->w, &c->t[i]);
			c->pending[i] = false;
			continue;
		}
		c->target = c->w.now + model_step(&c->seed);
		c->fired = 0;
		fired = twheel_advance(&c->w, c->target);
		assert_int_equal(fired, c->fired);
		assert_int_equal(c->w.now, c->target);
		for (int i = 0; i < MODEL_N; i++) {
			if (!c->pending[i])
				continue;
			pending++;
			if (c->expiry[i] < min)
				min = c->expiry[i];
		}
		assert_true(min > c->target);
		assert_int_equal(c->w.count, pending);
		assert_int_equal(twheel_next_delay(&c->w),
		                 pending ? min - c->target : UINT64_MAX);
	}
	free(c);
}

/* ----------------------------------------------------------- small cases */

struct rec {
	struct twheel *w;
	struct tmr t;
	struct tmr *other;
	int fired;
	int limit;
	uint64_t period;
	uint64_t at[16]; /* wheel time at each firing */
};

static void rec_fire(struct tmr *t, void *arg)
{
	struct rec *r = arg;

	assert_false(tmr_pending(t));
	assert_true(t->expires <= r->w->now);
	if (r->fired < 16)
		r->at[r->fired] = r->w->now;
	r->fired++;
}

/* A wheel at now and n records on it, none started. */
static void wheel_with_recs(struct twheel *w, uint64_t now, struct rec *r,
                            int n)
{
	twheel_init(w, now);
	for (int i = 0; i < n; i++) {
		r[i] = (struct rec){.w = w};
		tmr_init(&r[i].t);
	}
}

static void test_delay_zero(void **state)
{
	struct twheel w;
	struct rec r = {.w = &w};

	twheel_init(&w, 100);
	tmr_init(&r.t);
	assert_false(tmr_pending(&r.t));
	assert_int_equal(twheel_next_delay(&w), UINT64_MAX);
	tmr_start(&w, &r.t, 0, rec_fire, &r);
	assert_true(tmr_pending(&r.t));
	assert_int_equal(twheel_next_delay(&w), 0);
	/* Fires on the next advance, even one to the same time. */
	assert_int_equal(twheel_advance(&w, 100), 1);
	assert_int_equal(r.fired, 1);
	assert_int_equal(r.at[0], 100);
	assert_false(tmr_pending(&r.t));
	assert_int_equal(twheel_advance(&w, 100), 0);

	tmr_start(&w, &r.t, 0, rec_fire, &r);
	assert_int_equal(twheel_advance(&w, 5000), 1);
	assert_int_equal(r.at[1], 100);
	assert_int_equal(w.now, 5000);

	/* Time does not run backwards; due timers still fire. */
	tmr_start(&w, &r.t, 0, rec_fire, &r);
	assert_int_equal(twheel_advance(&w, 10), 1);
	assert_int_equal(w.now, 5000);
	assert_int_equal(w.count, 0);
}

static void test_rearm_pending(void **state)
{
	struct twheel w;
	struct rec r = {.w = &w};

	twheel_init(&w, 0);
	tmr_init(&r.t);
	tmr_start(&w, &r.t, 100, rec_fire, &r);
	tmr_start(&w, &r.t, 50, rec_fire, &r);
	assert_int_equal(w.count, 1);
	assert_int_equal(twheel_next_delay(&w), 50);
	assert_int_equal(twheel_advance(&w, 49), 0);
	assert_int_equal(twheel_advance(&w, 50), 1);
	assert_int_equal(twheel_advance(&w, 1000), 0);
	assert_int_equal(r.fired, 1);

	/* Later, across levels, from a timer already cascaded once. */
	tmr_start(&w, &r.t, 5000, rec_fire, &r);
	assert_int_equal(twheel_advance(&w, 5000), 0);
	tmr_start(&w, &r.t, 300000, rec_fire, &r);
	assert_int_equal(w.count, 1);
	assert_int_equal(twheel_advance(&w, 6000), 0);
	assert_int_equal(twheel_advance(&w, 304999), 0);
	assert_int_equal(twheel_advance(&w, 305000), 1);
	assert_int_equal(r.at[1], 305000);
	assert_int_equal(w.count, 0);
}

static void cancel_other(struct tmr *t, void *arg)
{
	struct rec *r = arg;

	rec_fire(t, arg);
	tmr_cancel(r->w, r->other);
	/* Cancelling oneself while firing is harmless. */
	tmr_cancel(r->w, t);
}

static void test_cancel_in_callback(void **state)
{
	struct twheel w;
	struct rec a = {.w = &w}, b = {.w = &w}, c = {.w = &w};

	twheel_init(&w, 0);
	tmr_init(&a.t);
	tmr_init(&b.t);
	tmr_init(&c.t);
	/* b shares a's batch and would have cancelled c. */
	tmr_start(&w, &a.t, 10, cancel_other, &a);
	tmr_start(&w, &b.t, 10, cancel_other, &b);
	tmr_start(&w, &c.t, 5000, rec_fire, &c);
	a.other = &b.t;
	b.other = &c.t;
	assert_int_equal(twheel_advance(&w, 10000), 2);
	assert_int_equal(a.fired, 1);
	assert_int_equal(b.fired, 0);
	assert_int_equal(c.fired, 1);
	assert_int_equal(w.count, 0);

	/* A later timer, still on a higher level. */
	tmr_start(&w, &a.t, 10, cancel_other, &a);
	tmr_start(&w, &b.t, 300000, rec_fire, &b);
	assert_int_equal(twheel_advance(&w, 10000000), 1);
	assert_int_equal(a.fired, 2);
	assert_int_equal(b.fired, 0);
	assert_int_equal(w.count, 0);

	/* Cancelling a later entry of the same batch. */
	tmr_start(&w, &b.t, 10, cancel_other, &b);
	tmr_start(&w, &c.t, 10, rec_fire, &c);
	assert_int_equal(twheel_advance(&w, 10000010), 1);
	assert_int_equal(b.fired, 1);
	assert_int_equal(c.fired, 1);
	assert_int_equal(w.count, 0);
}

static void periodic(struct tmr *t, void *arg)
{
	struct rec *r = arg;

	rec_fire(t, arg);
	if (r->fired < r->limit)
		tmr_start(r->w, t, r->period, periodic, r);
}

static void test_rearm_self(void **state)
{
	struct twheel w;
	struct rec r = {.w = &w, .limit = 12, .period = 10};

	twheel_init(&w, 60);
	tmr_init(&r.t);
	tmr_start(&w, &r.t, 10, periodic, &r);
	/* One long advance fires every period it covers, on time. */
	assert_int_equal(twheel_advance(&w, 105), 4);
	for (int i = 0; i < 4; i++)
		assert_int_equal(r.at[i], 70 + 10 * (uint64_t)i);
	assert_int_equal(twheel_next_delay(&w), 5);
	assert_int_equal(twheel_advance(&w, 1000000), 8);
	for (int i = 0; i < 12; i++)
		assert_int_equal(r.at[i], 70 + 10 * (uint64_t)i);
	assert_int_equal(w.count, 0);

	/* A period of a day, over a jump of a month. */
	r.fired = 0;
	r.limit = 16;
	r.period = DAY;
	tmr_start(&w, &r.t, DAY, periodic, &r);
	assert_int_equal(twheel_advance(&w, w.now + 30 * DAY), 16);
	for (int i = 0; i < 16; i++)
		assert_int_equal(r.at[i], 1000000 + DAY * (uint64_t)(i + 1));
}

static void rearm_zero(struct tmr *t, void *arg)
{
	struct rec *r = arg;

	rec_fire(t, arg);
	tmr_start(r->w, t, 0, rearm_zero, r);
}

static void test_rearm_self_zero(void **state)
{
	struct twheel w;
	struct rec r = {.w = &w};

	/* Re-arming with delay 0 must not spin: once per advance, or once
	 * per millisecond stepped over. */
	twheel_init(&w, 62);
	tmr_init(&r.t);
	tmr_start(&w, &r.t, 0, rearm_zero, &r);
	assert_int_equal(twheel_advance(&w, 62), 1);
	assert_int_equal(twheel_advance(&w, 62), 1);
	assert_int_equal(twheel_next_delay(&w), 0);
	assert_int_equal(twheel_advance(&w, 65), 4);
	assert_int_equal(r.at[2], 62);
	assert_int_equal(r.at[3], 63);
	assert_int_equal(r.at[4], 64);
	assert_int_equal(r.at[5], 65);
	tmr_cancel(&w, &r.t);
	assert_int_equal(w.count, 0);
}

static void start_other(struct tmr *t, void *arg)
{
	struct rec *r = arg;

	rec_fire(t, arg);
	tmr_start(r->w, r->other, 5, rec_fire, r);
}

static void test_start_in_callback(void **state)
{
	struct twheel w;
	struct rec a = {.w = &w}, b = {.w = &w};

	twheel_init(&w, 0);
	tmr_init(&a.t);
	tmr_init(&b.t);
	a.other = &b.t;
	tmr_start(&w, &a.t, 61, start_other, &a);
	/* b is armed at 61 for 66, within this advance, across a slot
	 * boundary of level 0. */
	assert_int_equal(twheel_advance(&w, 100), 2);
	assert_int_equal(a.fired, 2);
	assert_int_equal(a.at[0], 61);
	assert_int_equal(a.at[1], 66);
}

static void test_cancel_idempotent(void **state)
{
	struct twheel w;
	struct rec r = {.w = &w};

	twheel_init(&w, 0);
	tmr_init(&r.t);
	tmr_cancel(&w, &r.t);
	assert_int_equal(w.count, 0);
	tmr_start(&w, &r.t, 100000, rec_fire, &r);
	tmr_cancel(&w, &r.t);
	tmr_cancel(&w, &r.t);
	assert_false(tmr_pending(&r.t));
	assert_int_equal(w.count, 0);
	assert_int_equal(twheel_next_delay(&w), UINT64_MAX);
	assert_int_equal(twheel_advance(&w, 1000000), 0);
	/* Cancelled and fired timers can be started again. */
	tmr_start(&w, &r.t, 1, rec_fire, &r);
	assert_int_equal(twheel_advance(&w, 1000001), 1);
	tmr_cancel(&w, &r.t);
	assert_int_equal(w.count, 0);
	assert_int_equal(r.fired, 1);
}

static void test_next_delay(void **state)
{
	struct twheel w;
	struct rec r[6];

	wheel_with_recs(&w, 1000, r, 6);
	assert_int_equal(twheel_next_delay(&w), UINT64_MAX);
	tmr_start(&w, &r[0].t, 5000, rec_fire, &r[0]);
	assert_int_equal(twheel_next_delay(&w), 5000);
	/* The earliest of a slot is not necessarily its first entry. */
	tmr_start(&w, &r[1].t, 4500, rec_fire, &r[1]);
	assert_int_equal(twheel_next_delay(&w), 4500);
	assert_int_equal(twheel_advance(&w, 2234), 0);
	assert_int_equal(twheel_next_delay(&w), 3266);
	tmr_start(&w, &r[2].t, 70, rec_fire, &r[2]);
	assert_int_equal(twheel_next_delay(&w), 70);
	tmr_start(&w, &r[3].t, 3, rec_fire, &r[3]);
	assert_int_equal(twheel_next_delay(&w), 3);
	tmr_start(&w, &r[4].t, 0, rec_fire, &r[4]);
	assert_int_equal(twheel_next_delay(&w), 0);
	assert_int_equal(twheel_advance(&w, 2237), 2);
	assert_int_equal(twheel_next_delay(&w), 67);
	assert_int_equal(twheel_advance(&w, 5499), 1);
	assert_int_equal(twheel_next_delay(&w), 1);
	assert_int_equal(twheel_advance(&w, 6000), 2);
	assert_int_equal(twheel_next_delay(&w), UINT64_MAX);

	/* Far away: exact even beyond the span of the wheel. */
	tmr_start(&w, &r[0].t, 30 * DAY, rec_fire, &r[0]);
	assert_int_equal(twheel_next_delay(&w), 30 * DAY);
	tmr_start(&w, &r[1].t, 1ull << 40, rec_fire, &r[1]);
	assert_int_equal(twheel_next_delay(&w), 30 * DAY);
	tmr_start(&w, &r[2].t, 13 * DAY, rec_fire, &r[2]);
	assert_int_equal(twheel_next_delay(&w), 13 * DAY);
	tmr_start(&w, &r[3].t, 2 * DAY, rec_fire, &r[3]);
	assert_int_equal(twheel_next_delay(&w), 2 * DAY);
	assert_int_equal(twheel_advance(&w, 6000 + 2 * DAY), 1);
	assert_int_equal(twheel_next_delay(&w), 11 * DAY);
	assert_int_equal(twheel_advance(&w, 6000 + 20 * DAY), 1);
	assert_int_equal(twheel_next_delay(&w), 10 * DAY);
	assert_int_equal(twheel_advance(&w, 6000 + 30 * DAY - 1), 0);
	assert_int_equal(twheel_next_delay(&w), 1);
	assert_int_equal(twheel_advance(&w, 6000 + 30 * DAY), 1);
	assert_int_equal(twheel_next_delay(&w), (1ull << 40) - 30 * DAY);
	tmr_cancel(&w, &r[1].t);
	assert_int_equal(twheel_next_delay(&w), UINT64_MAX);
}

/* An event loop's view: far timers need a wake-up at the start of their
 * slot (which cascades them), then the exact expiry. */
static void test_next_wakeup(void **state)
{
	struct twheel w;
	struct rec r[2];

	(void)state;
	wheel_with_recs(&w, 0, r, 2);
	assert_int_equal(twheel_next_wakeup(&w), UINT64_MAX);
	/* Level 1 (64 ms to 4 s): exact. */
	tmr_start(&w, &r[0].t, 3000, rec_fire, &r[0]);
	assert_int_equal(twheel_next_wakeup(&w), 3000);
	tmr_cancel(&w, &r[0].t);
	/* 10 s: level 2, slot 2 of 4,096 ms starts at 8,192. */
	tmr_start(&w, &r[0].t, 10000, rec_fire, &r[0]);
	tmr_start(&w, &r[1].t, 9000, rec_fire, &r[1]);
	assert_int_equal(twheel_next_delay(&w), 9000);
	assert_int_equal(twheel_next_wakeup(&w), 8192);
	assert_int_equal(twheel_advance(&w, 8192), 0);
	/* Cascaded: now exact. */
	assert_int_equal(twheel_next_wakeup(&w), 808);
	assert_int_equal(twheel_advance(&w, 9000), 1);
	assert_int_equal(twheel_next_wakeup(&w), 1000);
	assert_int_equal(twheel_advance(&w, 10000), 1);
	assert_int_equal(twheel_next_wakeup(&w), UINT64_MAX);
	/* Beyond the wheel's span: the start of its top slot, never later
	 * than the expiry. */
	tmr_start(&w, &r[0].t, 30 * DAY, rec_fire, &r[0]);
	uint64_t wake = twheel_next_wakeup(&w);
	assert_true(wake > 0 && wake <= 30 * DAY);
	assert_int_equal(twheel_advance(&w, 10000 + wake - 1), 0);
	assert_int_equal(twheel_advance(&w, 10000 + 30 * DAY), 1);
}

struct far {
	struct tmr t;
	uint64_t expiry;
	int order;
};

static int far_fired;
static uint64_t far_prev, far_cur;

static void far_fire(struct tmr *t, void *arg)
{
	struct far *f = arg;

	assert_int_equal(t->expires, f->expiry);
	assert_true(f->expiry <= far_cur && f->expiry > far_prev);
	assert_int_equal(f->order, far_fired);
	far_fired++;
}

static void test_long_delays(void **state)
{
	const uint64_t delays[] = {
	        WHEEL_SPAN - 1, WHEEL_SPAN, WHEEL_SPAN + 1,      13 * DAY,
	        20 * DAY,       100 * DAY,  3 * WHEEL_SPAN - 64, 1ull << 36,
	};
	enum { N = sizeof(delays) / sizeof(delays[0]) };
	const uint64_t start = 123456;
	struct far f[N + 2];
	struct twheel w;
	uint64_t now;

	far_fired = 0;
	twheel_init(&w, start);
	for (int i = 0; i < N; i++) {
		tmr_init(&f[i].t);
		f[i].expiry = start + delays[i];
		tmr_start(&w, &f[i].t, delays[i], far_fire, &f[i]);
	}
	/* Two more on the 100-day expiry, armed later, one after a
	 * cascade: ties fire in arming order. */
	tmr_init(&f[N].t);
	tmr_init(&f[N + 1].t);
	f[N].expiry = start + 100 * DAY;
	f[N + 1].expiry = start + 100 * DAY;
	for (int i = 0; i < N + 2; i++) {
		f[i].order = 0;
		for (int j = 0; j < N + 2; j++) {
			if (f[j].expiry < f[i].expiry ||
			    (f[j].expiry == f[i].expiry && j < i))
				f[i].order++;
		}
	}

	/* Nothing fires a moment early. */
	now = start + WHEEL_SPAN - 2;
	assert_int_equal(twheel_advance(&w, now), 0);
	tmr_start(&w, &f[N].t, f[N].expiry - now, far_fire, &f[N]);
	far_prev = now;
	now += 12345;
	far_cur = now;
	assert_int_equal(twheel_advance(&w, now), 3);
	far_prev = now;
	tmr_start(&w, &f[N + 1].t, f[N + 1].expiry - now, far_fire, &f[N + 1]);

	/* Hour by hour for 200 days, each timer exactly when due. */
	while (now < start + 200 * DAY) {
		now += 60 * MINUTE;
		far_cur = now;
		twheel_advance(&w, now);
		far_prev = now;
	}
	assert_int_equal(far_fired, 9);
	assert_int_equal(w.count, 1);
	assert_int_equal(twheel_next_delay(&w), start + (1ull << 36) - now);

	/* The last one, 2^36 ms (two years) away, in one jump. */
	now = start + (1ull << 36) - 1;
	far_cur = now;
	assert_int_equal(twheel_advance(&w, now), 0);
	far_prev = now;
	far_cur = ++now;
	assert_int_equal(twheel_advance(&w, now), 1);
	assert_int_equal(far_fired, 10);
	assert_int_equal(w.count, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_delay_zero),
	        cmocka_unit_test(test_rearm_pending),
	        cmocka_unit_test(test_cancel_in_callback),
	        cmocka_unit_test(test_rearm_self),
	        cmocka_unit_test(test_rearm_self_zero),
	        cmocka_unit_test(test_start_in_callback),
	        cmocka_unit_test(test_cancel_idempotent),
	        cmocka_unit_test(test_next_delay),
	        cmocka_unit_test(test_next_wakeup),
	        cmocka_unit_test(test_long_delays),
	        cmocka_unit_test(test_model),
	        cmocka_unit_test(test_model_callbacks),
	        cmocka_unit_test(test_million),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
