#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <errno.h>
#include <pthread.h>

#include <cmocka.h>

#include "dlg/profile.h"

#define S(lit) SLICE_LIT(lit)

static struct profile_registry *registry(const char *no_value,
                                         const char *with_value)
{
	struct profile_registry *r = NULL;
	char err[128] = "";
	int rc = profile_registry_new(&r, no_value, with_value, err,
	                              sizeof(err));

	if (rc != 0)
		print_error("registry: %s\n", err);
	assert_int_equal(rc, 0);
	assert_non_null(r);
	return r;
}

static const struct profile *find(const struct profile_registry *r,
                                  const char *name)
{
	const struct profile *p = profile_find(r, slice_cstr(name));

	assert_non_null(p);
	return p;
}

/* ------------------------------------------------------------ definition */

static void test_parse(void **state)
{
	struct profile_registry *r =
	        registry(" caller ; ;;callee;", "user_1 ;  Trunk2;;");

	assert_int_equal(profile_count(r), 4);
	assert_string_equal(profile_name(profile_at(r, 0)), "caller");
	assert_string_equal(profile_name(profile_at(r, 1)), "callee");
	assert_string_equal(profile_name(profile_at(r, 2)), "user_1");
	assert_string_equal(profile_name(profile_at(r, 3)), "Trunk2");
	assert_null(profile_at(r, 4));
	assert_false(profile_has_value(find(r, "caller")));
	assert_false(profile_has_value(find(r, "callee")));
	assert_true(profile_has_value(find(r, "user_1")));
	assert_true(profile_has_value(find(r, "Trunk2")));
	assert_ptr_equal(find(r, "callee"), profile_at(r, 1));
	/* Case-sensitive, as Kamailio; a prefix is not a name. */
	assert_null(profile_find(r, S("trunk2")));
	assert_null(profile_find(r, S("call")));
	assert_null(profile_find(r, S("")));
	profile_registry_free(r);

	r = registry(NULL, "");
	assert_int_equal(profile_count(r), 0);
	assert_null(profile_find(r, S("x")));
	profile_registry_free(r);
	profile_registry_free(NULL);
}

static void expect_error(const char *no_value, const char *with_value,
                         const char *needle)
{
	struct profile_registry *r = (struct profile_registry *)&r;
	char err[128] = "";

	assert_int_equal(profile_registry_new(&r, no_value, with_value, err,
	                                      sizeof(err)),
	                 EINVAL);
	/* Out-parameters are written only on success. */
	assert_ptr_equal(r, (struct profile_registry *)&r);
	if (!strstr(err, needle))
		print_error("'%s' lacks '%s'\n", err, needle);
	assert_non_null(strstr(err, needle));
}

static void test_parse_errors(void **state)
{
	expect_error("a;b-c", NULL,
	             "profiles_no_value: bad profile name 'b-c'");
	expect_error(NULL, "ok; caller id ;x",
	             "profiles_with_value: bad profile name 'caller id'");
	expect_error("a;é", NULL, "bad profile name 'é'");
	expect_error("a; b ;a", NULL,
	             "profiles_no_value: duplicate profile name 'a'");
	expect_error("a;b", "c;b",
	             "profiles_with_value: duplicate profile name 'b'");
	expect_error(NULL, "v;v", "duplicate profile name 'v'");
	/* No buffer for the message is fine. */
	{
		struct profile_registry *r = NULL;

		assert_int_equal(profile_registry_new(&r, "x$", NULL, NULL, 0),
		                 EINVAL);
		assert_null(r);
	}
}

/* --------------------------------------------------------- set semantics */

/* Stand-ins for dialogs: their addresses are the owners. */
static int dlg_a, dlg_b, dlg_c;

static void test_set_no_value(void **state)
{
	struct profile_registry *r = registry("calls;other", "user");
	const struct profile *calls = find(r, "calls");
	const struct profile *other = find(r, "other");
	struct profile_set a, b;

	profile_set_init(&a);
	profile_set_init(&b);
	assert_false(profile_is_member(&a, calls, SLICE_NULL));
	assert_int_equal(profile_size(calls, SLICE_NULL), 0);

	assert_int_equal(profile_add(&a, calls, SLICE_NULL, &dlg_a, 0), 0);
	/* Twice is once (a spiral, a repeated script call); a value on a
	 * no-value profile is ignored, so this is the same membership. */
	assert_int_equal(profile_add(&a, calls, SLICE_NULL, &dlg_a, 0), 0);
	assert_int_equal(profile_add(&a, calls, S("ignored"), &dlg_a, 0), 0);
	assert_int_equal(profile_set_count(&a), 1);
	assert_int_equal(profile_size(calls, SLICE_NULL), 1);
	assert_int_equal(profile_size(calls, S("anything")), 1);
	assert_true(profile_is_member(&a, calls, SLICE_NULL));
	assert_true(profile_is_member(&a, calls, S("x")));
	assert_false(profile_is_member(&a, other, SLICE_NULL));

	assert_int_equal(profile_add(&b, calls, SLICE_NULL, &dlg_b, 1), 0);
	assert_int_equal(profile_size(calls, SLICE_NULL), 2);
	assert_int_equal(profile_size(other, SLICE_NULL), 0);

	/* Removing a non-member changes nothing. */
	assert_int_equal(profile_remove(&a, other, SLICE_NULL), ENOENT);
	assert_int_equal(profile_remove(&a, calls, S("x")), 0);
	assert_int_equal(profile_remove(&a, calls, SLICE_NULL), ENOENT);
	assert_int_equal(profile_set_count(&a), 0);
	assert_false(profile_is_member(&a, calls, SLICE_NULL));
	assert_int_equal(profile_size(calls, SLICE_NULL), 1);

	profile_clear(&b);
	assert_int_equal(profile_size(calls, SLICE_NULL), 0);
	profile_clear(&b); /* an empty set clears to itself */
	assert_int_equal(profile_size(calls, SLICE_NULL), 0);
	profile_registry_free(r);
}

static void test_set_with_value(void **state)
{
	struct profile_registry *r = registry("calls", "user;trunk");
	const struct profile *user = find(r, "user");
	const struct profile *trunk = find(r, "trunk");
	struct profile_set a, b;

	profile_set_init(&a);
	profile_set_init(&b);
	/* §13 item 30: IMS dereferenced the missing value. */
	assert_int_equal(profile_add(&a, user, SLICE_NULL, &dlg_a, 0), EINVAL);
	assert_int_equal(profile_add(&a, user, S(""), &dlg_a, 0), EINVAL);
	assert_int_equal(profile_set_count(&a), 0);
	assert_int_equal(profile_size(user, SLICE_NULL), 0);

	assert_int_equal(profile_add(&a, user, S("alice"), &dlg_a, 0), 0);
	assert_int_equal(profile_add(&a, user, S("alice"), &dlg_a, 0), 0);
	assert_int_equal(profile_add(&a, user, S("bob"), &dlg_a, 0), 0);
	assert_int_equal(profile_add(&a, trunk, S("alice"), &dlg_a, 0), 0);
	assert_int_equal(profile_add(&b, user, S("alice"), &dlg_b, 1), 0);
	assert_int_equal(profile_add(&b, user, S("Alice"), &dlg_b, 1), 0);
	assert_int_equal(profile_set_count(&a), 3);
	assert_int_equal(profile_set_count(&b), 2);

	/* Byte-exact values; empty value = every value. */
	assert_int_equal(profile_size(user, S("alice")), 2);
	assert_int_equal(profile_size(user, S("Alice")), 1);
	assert_int_equal(profile_size(user, S("bob")), 1);
	assert_int_equal(profile_size(user, S("alic")), 0);
	assert_int_equal(profile_size(user, S("carol")), 0);
	assert_int_equal(profile_size(user, SLICE_NULL), 4);
	assert_int_equal(profile_size(trunk, SLICE_NULL), 1);
	assert_int_equal(profile_size(trunk, S("alice")), 1);

	assert_true(profile_is_member(&a, user, S("alice")));
	assert_true(profile_is_member(&a, user, S("bob")));
	assert_false(profile_is_member(&a, user, S("Alice")));
	assert_true(profile_is_member(&a, user, SLICE_NULL)); /* any value */
	assert_true(profile_is_member(&b, user, S("")));
	assert_false(profile_is_member(&b, trunk, SLICE_NULL));

	assert_int_equal(profile_remove(&a, user, S("carol")), ENOENT);
	assert_int_equal(profile_remove(&b, trunk, SLICE_NULL), ENOENT);
	assert_int_equal(profile_size(user, SLICE_NULL), 4);
	assert_int_equal(profile_remove(&a, user, S("bob")), 0);
	assert_int_equal(profile_remove(&a, user, S("bob")), ENOENT);
	assert_int_equal(profile_size(user, S("bob")), 0);
	assert_int_equal(profile_size(user, SLICE_NULL), 3);

	/* Empty value removes every value of that profile only. */
	assert_int_equal(profile_add(&a, user, S("dave"), &dlg_a, 0), 0);
	assert_int_equal(profile_remove(&a, user, SLICE_NULL), 0);
	assert_false(profile_is_member(&a, user, SLICE_NULL));
	assert_true(profile_is_member(&a, trunk, S("alice")));
	assert_int_equal(profile_set_count(&a), 1);
	assert_int_equal(profile_remove(&a, user, SLICE_NULL), ENOENT);
	assert_int_equal(profile_size(user, S("alice")), 1);
	assert_int_equal(profile_size(user, S("dave")), 0);
	assert_int_equal(profile_size(user, SLICE_NULL), 2);

	profile_clear(&a);
	profile_clear(&b);
	assert_int_equal(profile_size(user, SLICE_NULL), 0);
	assert_int_equal(profile_size(user, S("alice")), 0);
	assert_int_equal(profile_size(trunk, SLICE_NULL), 0);
	profile_registry_free(r);
}

static void test_set_listing(void **state)
{
	struct profile_registry *r = registry("calls", "user");
	const struct profile *calls = find(r, "calls");
	const struct profile *user = find(r, "user");
	const struct profile_member *m;
	struct profile_set a;
	int seen_calls = 0, seen_x = 0, seen_y = 0;

	profile_set_init(&a);
	assert_null(profile_set_next(&a, NULL));
	assert_int_equal(profile_add(&a, calls, S("v"), &dlg_a, 0), 0);
	assert_int_equal(profile_add(&a, user, S("x"), &dlg_a, 0), 0);
	assert_int_equal(profile_add(&a, user, S("yy"), &dlg_a, 0), 0);
	for (m = profile_set_next(&a, NULL); m; m = profile_set_next(&a, m)) {
		struct slice v = profile_member_value(m);

		if (profile_member_profile(m) == calls) {
			assert_int_equal(v.len, 0); /* value was ignored */
			seen_calls++;
		} else if (slice_eq(v, S("x"))) {
			assert_ptr_equal(profile_member_profile(m), user);
			seen_x++;
		} else {
			assert_true(slice_eq(v, S("yy")));
			assert_ptr_equal(profile_member_profile(m), user);
			seen_y++;
		}
	}
	assert_int_equal(seen_calls + seen_x + seen_y, 3);
	assert_int_equal(seen_calls * seen_x * seen_y, 1);
	profile_clear(&a);
	profile_registry_free(r);
}

/* ---------------------------------------------------- member listing */

#define LIST_MAX 64

struct listing {
	void *owner[LIST_MAX];
	unsigned shard[LIST_MAX];
	size_t n;
};

static void collect(void *owner, unsigned shard, void *arg)
{
	struct listing *l = arg;

	assert_true(l->n < LIST_MAX);
	l->owner[l->n] = owner;
	l->shard[l->n] = shard;
	l->n++;
}

/* Whether the listing holds owner on shard exactly once. */
static bool listed_once(const struct listing *l, void *owner, unsigned shard)
{
	size_t hits = 0;

	for (size_t i = 0; i < l->n; i++)
		if (l->owner[i] == owner && l->shard[i] == shard)
			hits++;
	return hits == 1;
}

static struct listing list(const struct profile *p, struct slice value)
{
	struct listing l = {.n = 0};

	profile_foreach_member(p, value, collect, &l);
	return l;
}

static void test_foreach_member(void **state)
{
	struct profile_registry *r = registry("calls", "user");
	const struct profile *calls = find(r, "calls");
	const struct profile *user = find(r, "user");
	struct profile_set a, b, c;
	struct listing l;

	profile_set_init(&a);
	profile_set_init(&b);
	profile_set_init(&c);
	l = list(user, S("alice"));
	assert_int_equal(l.n, 0);
	l = list(calls, SLICE_NULL);
	assert_int_equal(l.n, 0);

	/* Shards 0, 1 and 65 (the same stripe as 1 for no-value). */
	assert_int_equal(profile_add(&a, calls, SLICE_NULL, &dlg_a, 0), 0);
	assert_int_equal(profile_add(&b, calls, SLICE_NULL, &dlg_b, 1), 0);
	assert_int_equal(profile_add(&c, calls, SLICE_NULL, &dlg_c, 65), 0);
	assert_int_equal(profile_add(&a, user, S("alice"), &dlg_a, 0), 0);
	assert_int_equal(profile_add(&a, user, S("alice"), &dlg_a, 0), 0);
	assert_int_equal(profile_add(&b, user, S("alice"), &dlg_b, 1), 0);
	assert_int_equal(profile_add(&c, user, S("bob"), &dlg_c, 65), 0);

	l = list(calls, SLICE_NULL);
	assert_int_equal(l.n, 3);
	assert_true(listed_once(&l, &dlg_a, 0));
	assert_true(listed_once(&l, &dlg_b, 1));
	assert_true(listed_once(&l, &dlg_c, 65));
	l = list(calls, S("ignored"));
	assert_int_equal(l.n, 3);

	l = list(user, S("alice"));
	assert_int_equal(l.n, 2);
	assert_true(listed_once(&l, &dlg_a, 0));
	assert_true(listed_once(&l, &dlg_b, 1));
	l = list(user, S("bob"));
	assert_int_equal(l.n, 1);
	assert_true(listed_once(&l, &dlg_c, 65));
	l = list(user, S("Bob"));
	assert_int_equal(l.n, 0);
	l = list(user, SLICE_NULL);
	assert_int_equal(l.n, 3);
	assert_true(listed_once(&l, &dlg_a, 0));
	assert_true(listed_once(&l, &dlg_b, 1));
	assert_true(listed_once(&l, &dlg_c, 65));

	/* Leaving (any way) takes the dialog off the listing. */
	assert_int_equal(profile_remove(&a, user, S("alice")), 0);
	profile_clear(&c);
	l = list(user, SLICE_NULL);
	assert_int_equal(l.n, 1);
	assert_true(listed_once(&l, &dlg_b, 1));
	l = list(calls, SLICE_NULL);
	assert_int_equal(l.n, 2);
	assert_true(listed_once(&l, &dlg_a, 0));
	assert_true(listed_once(&l, &dlg_b, 1));

	profile_clear(&a);
	profile_clear(&b);
	l = list(calls, SLICE_NULL);
	assert_int_equal(l.n, 0);
	l = list(user, SLICE_NULL);
	assert_int_equal(l.n, 0);
	profile_registry_free(r);
}

struct values {
	char seen[8][16];
	size_t members[8];
	size_t n;
};

static void collect_value(struct slice value, size_t members, void *arg)
{
	struct values *v = arg;

	if (v->n < 8) {
		slice_copy_cstr(v->seen[v->n], sizeof(v->seen[0]), value);
		v->members[v->n++] = members;
	}
}

/* The members of value in v, -1 when it was not reported (or twice). */
static long value_members(const struct values *v, const char *value)
{
	long found = -1;

	for (size_t i = 0; i < v->n; i++)
		if (strcmp(v->seen[i], value) == 0)
			found = found < 0 ? (long)v->members[i] : -2;
	return found;
}

static void test_foreach_value(void **state)
{
	struct profile_registry *r = registry("calls", "user");
	const struct profile *calls = find(r, "calls");
	const struct profile *user = find(r, "user");
	struct profile_set a, b, c;
	struct values v = {0};

	(void)state;
	profile_set_init(&a);
	profile_set_init(&b);
	profile_set_init(&c);
	profile_foreach_value(user, collect_value, &v);
	assert_int_equal(v.n, 0);
	assert_int_equal(profile_add(&a, user, S("alice"), &dlg_a, 0), 0);
	assert_int_equal(profile_add(&b, user, S("alice"), &dlg_b, 1), 0);
	assert_int_equal(profile_add(&c, user, S("bob"), &dlg_c, 65), 0);
	assert_int_equal(profile_add(&a, calls, SLICE_NULL, &dlg_a, 0), 0);

	/* Each value with members once, with its size. */
	profile_foreach_value(user, collect_value, &v);
	assert_int_equal(v.n, 2);
	assert_int_equal(value_members(&v, "alice"), 2);
	assert_int_equal(value_members(&v, "bob"), 1);
	/* A no-value profile has no values to report. */
	memset(&v, 0, sizeof(v));
	profile_foreach_value(calls, collect_value, &v);
	assert_int_equal(v.n, 0);

	/* A value whose last member left is gone. */
	profile_clear(&c);
	memset(&v, 0, sizeof(v));
	profile_foreach_value(user, collect_value, &v);
	assert_int_equal(v.n, 1);
	assert_int_equal(value_members(&v, "alice"), 2);
	profile_clear(&a);
	profile_clear(&b);
	profile_registry_free(r);
}

/* ------------------------------------------------------------- memory */

#define UNIQUE 20000

static void test_bytes_back_to_baseline(void **state)
{
	struct profile_registry *r = registry("calls", "user");
	const struct profile *calls = find(r, "calls");
	const struct profile *user = find(r, "user");
	size_t base = profile_bytes(r), one, peak;
	struct profile_set *sets = calloc(UNIQUE, sizeof(*sets));
	char v[32];

	assert_non_null(sets);
	assert_true(base > 0);

	/* One membership: one member plus one entry (and a bucket array). */
	profile_set_init(&sets[0]);
	assert_int_equal(profile_add(&sets[0], user, S("x"), sets, 0), 0);
	one = profile_bytes(r);
	assert_true(one > base);
	/* The second member of a value costs a member, no entry. */
	profile_set_init(&sets[1]);
	assert_int_equal(profile_add(&sets[1], user, S("x"), sets + 1, 0), 0);
	assert_true(profile_bytes(r) - one < one - base);
	profile_clear(&sets[0]);
	profile_clear(&sets[1]);
	assert_int_equal(profile_bytes(r), base);

	/* Unique values (a per-call id as value): every entry goes when its
	 * count reaches 0, bucket arrays included. */
	for (size_t i = 0; i < UNIQUE; i++) {
		int n = snprintf(v, sizeof(v), "call-%zu", i);

		profile_set_init(&sets[i]);
		assert_int_equal(profile_add(&sets[i], user,
		                             slice_make(v, (size_t)n), &sets[i],
		                             (unsigned)i % 8),
		                 0);
		assert_int_equal(profile_add(&sets[i], calls, SLICE_NULL,
		                             &sets[i], (unsigned)i % 8),
		                 0);
	}
	peak = profile_bytes(r);
	assert_true(peak > base + UNIQUE * 2 * 32);
	assert_int_equal(profile_size(user, SLICE_NULL), UNIQUE);
	assert_int_equal(profile_size(user, S("call-4242")), 1);
	assert_int_equal(profile_size(calls, SLICE_NULL), UNIQUE);

	/* Half leave: memory shrinks with them. */
	for (size_t i = 0; i < UNIQUE; i += 2)
		profile_clear(&sets[i]);
	assert_true(profile_bytes(r) < peak);
	for (size_t i = 1; i < UNIQUE; i += 2) {
		assert_int_equal(profile_remove(&sets[i], user, SLICE_NULL), 0);
		assert_int_equal(profile_remove(&sets[i], calls, SLICE_NULL),
		                 0);
	}
	assert_int_equal(profile_size(user, SLICE_NULL), 0);
	assert_int_equal(profile_size(calls, SLICE_NULL), 0);
	assert_int_equal(profile_bytes(r), base);
	free(sets);
	profile_registry_free(r);
}

/* Freeing the registry takes the memberships still held (shutdown). */
static void test_free_with_members(void **state)
{
	struct profile_registry *r = registry("calls", "user");
	struct profile_set a;

	profile_set_init(&a);
	assert_int_equal(
	        profile_add(&a, find(r, "calls"), SLICE_NULL, &dlg_a, 3), 0);
	assert_int_equal(profile_add(&a, find(r, "user"), S("u"), &dlg_a, 3),
	                 0);
	profile_registry_free(r); /* LeakSanitizer checks the rest */
}

/* The first PROFILE_SET_SLOTS memberships live in the set (no bytes of
 * the profiles), the next from the heap; a freed slot is taken again. */
static void test_set_slots(void **state)
{
	struct profile_registry *r = registry("a;b;c", "");
	const struct profile *a = find(r, "a"), *b = find(r, "b"),
	                     *c = find(r, "c");
	struct profile_set other, s;
	size_t base, heap;

	(void)state;
	_Static_assert(PROFILE_SET_SLOTS == 2, "the test adds 2, then 1");
	/* another dialog in all three: their entries exist from here on */
	profile_set_init(&other);
	assert_int_equal(profile_add(&other, a, SLICE_NULL, &dlg_b, 0), 0);
	assert_int_equal(profile_add(&other, b, SLICE_NULL, &dlg_b, 0), 0);
	assert_int_equal(profile_add(&other, c, SLICE_NULL, &dlg_b, 0), 0);
	base = profile_bytes(r);

	profile_set_init(&s);
	assert_int_equal(profile_add(&s, a, SLICE_NULL, &dlg_a, 0), 0);
	assert_int_equal(profile_add(&s, b, SLICE_NULL, &dlg_a, 0), 0);
	assert_int_equal(profile_bytes(r), base); /* no member bytes */
	assert_int_equal(profile_add(&s, c, SLICE_NULL, &dlg_a, 0), 0);
	heap = profile_bytes(r);
	assert_true(heap > base); /* the third from the heap */
	assert_int_equal(profile_set_count(&s), 3);
	assert_int_equal(profile_size(a, SLICE_NULL), 2);
	assert_int_equal(profile_size(b, SLICE_NULL), 2);
	assert_int_equal(profile_size(c, SLICE_NULL), 2);

	/* a's slot freed and taken again: no heap member added */
	assert_int_equal(profile_remove(&s, a, SLICE_NULL), 0);
	assert_int_equal(profile_size(a, SLICE_NULL), 1);
	assert_int_equal(profile_bytes(r), heap);
	assert_int_equal(profile_add(&s, a, SLICE_NULL, &dlg_a, 0), 0);
	assert_int_equal(profile_bytes(r), heap);
	assert_int_equal(profile_size(a, SLICE_NULL), 2);

	profile_clear(&s);
	assert_int_equal(profile_set_count(&s), 0);
	assert_int_equal(profile_size(a, SLICE_NULL), 1);
	assert_int_equal(profile_size(c, SLICE_NULL), 1);
	assert_int_equal(profile_bytes(r), base);
	profile_clear(&other);
	assert_int_equal(profile_size(c, SLICE_NULL), 0);
	profile_registry_free(r);
}

/* ------------------------------------------------------------ O(1) size */

#define BIG 100000

static void test_size_big(void **state)
{
	struct profile_registry *r = registry("calls", "user");
	const struct profile *calls = find(r, "calls");
	const struct profile *user = find(r, "user");
	struct profile_set *sets = calloc(BIG, sizeof(*sets));

	assert_non_null(sets);
	profile_set_init(&sets[0]);
	assert_int_equal(profile_add(&sets[0], user, S("hot"), sets, 0), 0);
	assert_int_equal(profile_add(&sets[0], calls, SLICE_NULL, sets, 0), 0);
	assert_int_equal(profile_size(user, S("hot")), 1);
	assert_int_equal(profile_size(calls, SLICE_NULL), 1);

	/* One value with 100k members: its size is a stored count, read
	 * under one stripe lock, never a walk of the members. */
	for (size_t i = 1; i < BIG; i++) {
		profile_set_init(&sets[i]);
		assert_int_equal(profile_add(&sets[i], user, S("hot"), &sets[i],
		                             (unsigned)i % 4),
		                 0);
		assert_int_equal(profile_add(&sets[i], calls, SLICE_NULL,
		                             &sets[i], (unsigned)i % 4),
		                 0);
	}
	assert_int_equal(profile_size(user, S("hot")), BIG);
	assert_int_equal(profile_size(user, SLICE_NULL), BIG);
	assert_int_equal(profile_size(calls, SLICE_NULL), BIG);
	assert_int_equal(profile_size(user, S("cold")), 0);

	for (size_t i = 0; i < BIG; i++)
		profile_clear(&sets[i]);
	assert_int_equal(profile_size(user, S("hot")), 0);
	assert_int_equal(profile_size(calls, SLICE_NULL), 0);
	free(sets);
	profile_registry_free(r);
}

/* ------------------------------------------------------------ threads */

#define THREADS     4
#define PER_THREAD  25000 /* dialogs, one "user" membership each: 100k */
#define VALUES      50
#define READ_ROUNDS 2000

struct worker {
	pthread_t tid;
	unsigned shard;
	const struct profile *calls, *user;
	struct profile_set *sets; /* this thread's dialogs, as a shard's */
};

static struct slice value_name(unsigned k, char *buf, size_t size)
{
	int n = snprintf(buf, size, "v%u", k);

	return slice_make(buf, (size_t)n);
}

/* Each step leaves a set with a known outcome; the interleaving between
 * threads is whatever the scheduler makes of it. */
static void *worker_run(void *arg)
{
	struct worker *w = arg;
	char buf[16], buf2[16];
	int bad = 0;

	for (unsigned i = 0; i < PER_THREAD; i++) {
		struct profile_set *s = &w->sets[i];
		struct slice v = value_name((i * 7 + w->shard) % VALUES, buf,
		                            sizeof(buf));

		profile_set_init(s);
		bad += profile_add(s, w->user, v, s, w->shard) != 0;
		bad += profile_add(s, w->calls, SLICE_NULL, s, w->shard) != 0;
		if (i % 3 == 0) /* repeated: no effect */
			bad += profile_add(s, w->user, v, s, w->shard) != 0;
		if (i % 4 == 1) { /* leave and come back with another value */
			struct slice v2 = value_name((i + 1) % VALUES, buf2,
			                             sizeof(buf2));

			bad += profile_remove(s, w->user, v) != 0;
			bad += profile_remove(s, w->user, v) != ENOENT;
			bad += profile_add(s, w->user, v2, s, w->shard) != 0;
		}
		if (i % 5 == 2) /* leave the no-value profile for good */
			bad += profile_remove(s, w->calls, S("x")) != 0;
		if (i % 10 == 9) { /* a dialog ending early */
			profile_clear(s);
			bad += profile_remove(s, w->calls, SLICE_NULL) !=
			       ENOENT;
		}
		/* Earlier dialogs end now and then, interleaved with adds. */
		if (i % 6 == 5)
			profile_clear(&w->sets[i - 5]);
	}
	return (void *)(intptr_t)bad;
}

struct reader {
	pthread_t tid;
	const struct profile *calls, *user;
	atomic_bool stop;
	size_t max_seen;
};

/* Sizes read from a thread owning no dialog: never above the possible. */
static void *reader_run(void *arg)
{
	struct reader *rd = arg;
	char buf[16];

	for (unsigned n = 0; n < READ_ROUNDS || !atomic_load(&rd->stop); n++) {
		size_t a = profile_size(rd->user, SLICE_NULL);
		size_t b = profile_size(rd->calls, SLICE_NULL);
		size_t c = profile_size(
		        rd->user, value_name(n % VALUES, buf, sizeof(buf)));

		if (a > rd->max_seen)
			rd->max_seen = a;
		if (b > rd->max_seen)
			rd->max_seen = b;
		if (c > rd->max_seen)
			rd->max_seen = c;
	}
	return NULL;
}

static void test_threads(void **state)
{
	struct profile_registry *r = registry("calls", "user");
	struct worker w[THREADS];
	struct reader rd = {.calls = find(r, "calls"), .user = find(r, "user")};
	size_t base = profile_bytes(r);
	size_t expect[VALUES] = {0}, expect_user = 0, expect_calls = 0;
	char buf[16];

	atomic_init(&rd.stop, false);
	assert_int_equal(pthread_create(&rd.tid, NULL, reader_run, &rd), 0);
	for (unsigned t = 0; t < THREADS; t++) {
		w[t].shard = t;
		w[t].calls = rd.calls;
		w[t].user = rd.user;
		w[t].sets = calloc(PER_THREAD, sizeof(*w[t].sets));
		assert_non_null(w[t].sets);
		assert_int_equal(
		        pthread_create(&w[t].tid, NULL, worker_run, &w[t]), 0);
	}
	for (unsigned t = 0; t < THREADS; t++) {
		void *bad;

		assert_int_equal(pthread_join(w[t].tid, &bad), 0);
		assert_int_equal((intptr_t)bad, 0);
	}
	atomic_store(&rd.stop, true);
	assert_int_equal(pthread_join(rd.tid, NULL), 0);
	assert_true(rd.max_seen <= THREADS * PER_THREAD);

	/* The truth is in the dialogs' sets: the shared counts must match
	 * them exactly. */
	for (unsigned t = 0; t < THREADS; t++) {
		for (unsigned i = 0; i < PER_THREAD; i++) {
			const struct profile_set *s = &w[t].sets[i];
			const struct profile_member *m = NULL;

			while ((m = profile_set_next(s, m))) {
				struct slice v = profile_member_value(m);
				unsigned k;

				if (profile_member_profile(m) == rd.calls) {
					expect_calls++;
					continue;
				}
				/* Values are not NUL-terminated. */
				assert_true(v.len >= 2 && v.p[0] == 'v');
				k = 0;
				for (size_t j = 1; j < v.len; j++)
					k = k * 10 + (unsigned)(v.p[j] - '0');
				assert_true(k < VALUES);
				expect[k]++;
				expect_user++;
			}
		}
	}
	/* And the sets are what the steps say: dialogs i % 6 == 5 cleared
	 * i - 5, i % 10 == 9 cleared themselves; the rest kept one user
	 * membership and, unless i % 5 == 2, one calls membership. */
	{
		size_t alive = 0, in_calls = 0;

		for (unsigned i = 0; i < PER_THREAD; i++) {
			bool cleared = i % 10 == 9 ||
			               (i + 5 < PER_THREAD && (i + 5) % 6 == 5);

			if (cleared)
				continue;
			alive++;
			in_calls += i % 5 != 2;
		}
		assert_int_equal(expect_user, THREADS * alive);
		assert_int_equal(expect_calls, THREADS * in_calls);
	}
	assert_int_equal(profile_size(rd.user, SLICE_NULL), expect_user);
	assert_int_equal(profile_size(rd.calls, SLICE_NULL), expect_calls);
	for (unsigned k = 0; k < VALUES; k++)
		assert_int_equal(
		        profile_size(rd.user, value_name(k, buf, sizeof(buf))),
		        expect[k]);

	for (unsigned t = 0; t < THREADS; t++) {
		for (unsigned i = 0; i < PER_THREAD; i++)
			profile_clear(&w[t].sets[i]);
		free(w[t].sets);
	}
	assert_int_equal(profile_size(rd.user, SLICE_NULL), 0);
	assert_int_equal(profile_size(rd.calls, SLICE_NULL), 0);
	for (unsigned k = 0; k < VALUES; k++)
		assert_int_equal(
		        profile_size(rd.user, value_name(k, buf, sizeof(buf))),
		        0);
	assert_int_equal(profile_bytes(r), base);
	profile_registry_free(r);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
	        cmocka_unit_test(test_parse),
	        cmocka_unit_test(test_parse_errors),
	        cmocka_unit_test(test_set_no_value),
	        cmocka_unit_test(test_set_with_value),
	        cmocka_unit_test(test_set_listing),
	        cmocka_unit_test(test_foreach_member),
	        cmocka_unit_test(test_foreach_value),
	        cmocka_unit_test(test_bytes_back_to_baseline),
	        cmocka_unit_test(test_free_with_members),
	        cmocka_unit_test(test_set_slots),
	        cmocka_unit_test(test_size_big),
	        cmocka_unit_test(test_threads),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
