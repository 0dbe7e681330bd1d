/*
 * Hierarchical timing wheel.
 *
 * A pending timer expiring at e sits at the level of the highest base-64
 * digit in which e and w->now differ, in the slot given by e's digit at that
 * level. Its place is therefore a function of (e, now) alone, so timers with
 * equal expiries always share one list, and appending keeps them in arming
 * order through every cascade. A slot at level k >= 1 is cascaded when now
 * reaches the start of its 64^k span; each timer then drops to the level
 * where it differs from the new now.
 *
 * The top level wraps: a timer further away than its span (64^5 ms, about
 * 12.4 days) goes into the top slot of its own digit there and is merely
 * put back each time the wheel passes that slot, until it is in range.
 *
 * Level-0 slot (now % 64) holds the timers armed with delay 0, which are
 * due but missed their batch; the next advance fires them first. A batch is
 * detached before it runs, so a callback arming a timer with delay 0 never
 * makes it fire in the same batch: it fires on the next advance, or one
 * millisecond later if the current advance goes on (its expiry moves with
 * it). A callback re-arming itself with delay 0 thus cannot spin.
 *
 * A bitmap per level tells which slots hold timers, so that finding the
 * next one (every loop turn asks) is a find-first-set per level, not a
 * walk over up to 320 list heads.
 */
#include <time.h>

#include "core/core.h"

#define LVL_BITS  6
#define SLOT_MASK ((unsigned)TWHEEL_SLOTS - 1)
#define TOP       (TWHEEL_LEVELS - 1)

_Static_assert(TWHEEL_SLOTS == 1u << LVL_BITS, "one base-64 digit per level");
_Static_assert((LVL_BITS * TWHEEL_LEVELS) < 63, "levels must fit uint64_t");

static unsigned digit(uint64_t t, int level)
{
	return (unsigned)(t >> (LVL_BITS * level)) & SLOT_MASK;
}

static void list_init(struct tmr *head)
{
	head->next = head;
	head->prev = head;
}

static bool list_empty(const struct tmr *head)
{
	return head->next == head;
}

static void list_append(struct tmr *head, struct tmr *t)
{
	t->prev = head->prev;
	t->next = head;
	head->prev->next = t;
	head->prev = t;
}

/* Leaves t marked as not pending. */
static void list_unlink(struct tmr *t)
{
	t->prev->next = t->next;
	t->next->prev = t->prev;
	t->next = NULL;
	t->prev = NULL;
}

/* Moves every entry of src to the uninitialised head dst, so that work on
 * them cannot see entries added to src meanwhile. */
static void list_take(struct tmr *dst, struct tmr *src)
{
	if (list_empty(src)) {
		list_init(dst);
		return;
	}
	dst->next = src->next;
	dst->prev = src->prev;
	dst->next->prev = dst;
	dst->prev->next = dst;
	list_init(src);
}

/* The slot whose list head is head, as level * TWHEEL_SLOTS + index, or -1
 * when head is not one of w's (a batch detached from its slot). Compared
 * as integers: head may be another object. */
static long slot_of(const struct twheel *w, const struct tmr *head)
{
	uintptr_t base = (uintptr_t)&w->slots[0][0], p = (uintptr_t)head;

	if (p < base || p >= base + sizeof(w->slots))
		return -1;
	return (long)((p - base) / sizeof(struct tmr));
}

static void set_occupied(struct twheel *w, int level, unsigned idx, bool on)
{
	uint64_t bit = (uint64_t)1 << idx;

	w->occupied[level] =
	        on ? w->occupied[level] | bit : w->occupied[level] & ~bit;
}

/* Detaches the list of slot (level, idx) into dst (list_take). */
static void take_slot(struct twheel *w, struct tmr *dst, int level,
                      unsigned idx)
{
	list_take(dst, &w->slots[level][idx]);
	set_occupied(w, level, idx, false);
}

static int level_of(uint64_t expires, uint64_t now)
{
	uint64_t diff = expires ^ now;
	int level;

	if (diff < TWHEEL_SLOTS)
		return 0;
	level = (63 - __builtin_clzll(diff)) / LVL_BITS;
	return level > TOP ? TOP : level;
}

static void place(struct twheel *w, struct tmr *t)
{
	int level = level_of(t->expires, w->now);
	unsigned idx = digit(t->expires, level);

	list_append(&w->slots[level][idx], t);
	set_occupied(w, level, idx, true);
}

void twheel_init(struct twheel *w, uint64_t now_ms)
{
	w->now = now_ms;
	w->count = 0;
	w->started_min = UINT64_MAX;
	for (int l = 0; l < TWHEEL_LEVELS; l++) {
		w->occupied[l] = 0;
		for (int s = 0; s < TWHEEL_SLOTS; s++)
			list_init(&w->slots[l][s]);
	}
}

void tmr_init(struct tmr *t)
{
	t->next = NULL;
	t->prev = NULL;
	t->expires = 0;
	t->fn = NULL;
	t->arg = NULL;
}

void tmr_start(struct twheel *w, struct tmr *t, uint64_t delay_ms, tmr_fn *fn,
               void *arg)
{
	tmr_cancel(w, t);
	t->expires = w->now + delay_ms;
	if (t->expires < w->now)
		t->expires = UINT64_MAX;
	t->fn = fn;
	t->arg = arg;
	place(w, t);
	w->count++;
	if (t->expires < w->started_min)
		w->started_min = t->expires;
}

void tmr_start_coarse(struct twheel *w, struct tmr *t, uint64_t delay_ms,
                      tmr_fn *fn, void *arg)
{
	uint64_t at = w->now + delay_ms;

	if (at >= w->now && at <= UINT64_MAX - TMR_COARSE_MS)
		delay_ms = (at + TMR_COARSE_MS - 1) / TMR_COARSE_MS *
		                   TMR_COARSE_MS -
		           w->now;
	tmr_start(w, t, delay_ms, fn, arg);
}

void tmr_cancel(struct twheel *w, struct tmr *t)
{
	struct tmr *next = t->next;
	long slot;

	if (!next)
		return;
	/* Alone in its list, t leaves only the head: next. */
	bool last = t->prev == next;
	list_unlink(t);
	w->count--;
	if (last && (slot = slot_of(w, next)) >= 0)
		set_occupied(w, (int)(slot / TWHEEL_SLOTS),
		             (unsigned)(slot % TWHEEL_SLOTS), false);
}

bool tmr_pending(const struct tmr *t)
{
	return t->next != NULL;
}

/* Start of the next span of `level` whose digit is idx, after now. Below
 * the top, non-empty slots always lie ahead of now's digit; at the top a
 * slot at or behind it belongs to the next revolution. */
static uint64_t slot_time(uint64_t now, int level, unsigned idx)
{
	int shift = LVL_BITS * level;
	uint64_t t = (now >> (shift + LVL_BITS)) << (shift + LVL_BITS);

	if (idx <= digit(now, level))
		t += (uint64_t)1 << (shift + LVL_BITS);
	t += (uint64_t)idx << shift;
	/* Only reachable within a revolution of 2^64 ms. */
	return t > now ? t : UINT64_MAX;
}

/* The first slot of level l after now's digit that holds timers, or -1.
 * At the top, slots up to now's digit itself come next, in the next
 * revolution. */
static int next_slot(const struct twheel *w, int l)
{
	unsigned cur = digit(w->now, l);
	uint64_t occ = w->occupied[l];
	uint64_t ahead =
	        cur == SLOT_MASK ? 0 : occ & (~(uint64_t)0 << (cur + 1));

	if (ahead)
		return __builtin_ctzll(ahead);
	if (l == TOP && occ)
		return __builtin_ctzll(occ);
	return -1;
}

/*
 * When advance has something to do next: fire a level-0 slot or cascade a
 * higher one. Everything at a level expires before anything above it, so
 * the first non-empty slot of the lowest non-empty level decides.
 */
static uint64_t next_event(const struct twheel *w)
{
	for (int l = 0; l < TWHEEL_LEVELS; l++) {
		int i = next_slot(w, l);

		if (i >= 0)
			return slot_time(w->now, l, (unsigned)i);
	}
	return UINT64_MAX;
}

/* Re-places the timers of every slot whose span starts at w->now. */
static void cascade(struct twheel *w)
{
	for (int l = 1; l < TWHEEL_LEVELS; l++) {
		struct tmr list;

		if (w->now & (((uint64_t)1 << (LVL_BITS * l)) - 1))
			break;
		take_slot(w, &list, l, digit(w->now, l));
		while (!list_empty(&list)) {
			struct tmr *t = list.next;

			list_unlink(t);
			place(w, t);
		}
	}
}

static size_t fire_due(struct twheel *w)
{
	struct tmr batch;
	size_t n = 0;

	/* Detached so that a callback arming a timer with delay 0 does not
	 * run it again in this batch, or forever. */
	take_slot(w, &batch, 0, digit(w->now, 0));
	while (!list_empty(&batch)) {
		struct tmr *t = batch.next;

		list_unlink(t);
		w->count--;
		n++;
		if (t->fn)
			t->fn(t, t->arg);
	}
	return n;
}

/* Timers that callbacks armed with delay 0 cannot stay in the due slot
 * once now moves on: that slot then stands for a later time. They become
 * due one millisecond later instead. */
static void postpone_due(struct twheel *w)
{
	struct tmr late;

	take_slot(w, &late, 0, digit(w->now, 0));
	while (!list_empty(&late)) {
		struct tmr *t = late.next;

		list_unlink(t);
		t->expires = w->now + 1;
		place(w, t);
	}
}

size_t twheel_advance(struct twheel *w, uint64_t now_ms)
{
	size_t fired;

	fired = fire_due(w);
	while (w->now < now_ms) {
		uint64_t next;

		postpone_due(w);
		next = w->count > 0 ? next_event(w) : UINT64_MAX;
		if (next > now_ms) {
			/* No slot starts in between, so every timer is
			 * already where the new now would put it. */
			w->now = now_ms;
			break;
		}
		w->now = next;
		cascade(w);
		fired += fire_due(w);
	}
	return fired;
}

static uint64_t earliest_in(const struct tmr *head)
{
	uint64_t min = UINT64_MAX;

	for (const struct tmr *t = head->next; t != head; t = t->next) {
		if (t->expires < min)
			min = t->expires;
	}
	return min;
}

/* Milliseconds until the earliest expiry when it sits below level
 * `exact_below`; from that level up, until the start of its slot, when
 * advance cascades it (never later than the expiry itself). Finding the
 * exact expiry there means walking a slot that may hold thousands of
 * timers. */
static uint64_t next_delay(const struct twheel *w, int exact_below)
{
	uint64_t min = UINT64_MAX;
	unsigned cur;

	if (w->count == 0)
		return UINT64_MAX;
	if (w->occupied[0] & ((uint64_t)1 << digit(w->now, 0)))
		return 0;
	for (int l = 0; l < TWHEEL_LEVELS; l++) {
		int i = next_slot(w, l);
		const struct tmr *head;

		if (i < 0)
			continue;
		if (l >= exact_below)
			return slot_time(w->now, l, (unsigned)i) - w->now;
		if (l == TOP)
			break;
		head = &w->slots[l][i];
		/* A level-0 slot holds a single expiry. */
		if (l == 0)
			return head->next->expires - w->now;
		return earliest_in(head) - w->now;
	}
	/* A top slot may also hold timers of later revolutions; the first
	 * slot with one of the current revolution has the answer. */
	cur = digit(w->now, TOP);
	for (unsigned i = 1; i <= TWHEEL_SLOTS; i++) {
		unsigned idx = (cur + i) & SLOT_MASK;
		const struct tmr *head = &w->slots[TOP][idx];
		uint64_t start, e;

		if (!(w->occupied[TOP] & ((uint64_t)1 << idx)))
			continue;
		start = slot_time(w->now, TOP, idx);
		e = earliest_in(head);
		if (e - start < ((uint64_t)1 << (LVL_BITS * TOP)))
			return e - w->now;
		if (e < min)
			min = e;
	}
	return min - w->now;
}

uint64_t twheel_next_delay(const struct twheel *w)
{
	return next_delay(w, TWHEEL_LEVELS);
}

uint64_t twheel_next_wakeup(const struct twheel *w)
{
	return next_delay(w, 2);
}

uint64_t clock_now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}
