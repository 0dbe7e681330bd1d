/*
 * profile: dialog profiles (Kamailio's set_dlg_profile, is_in_profile,
 * get_profile_size, unset_dlg_profile), with the defects of
 * ims-dialog-behaviour.md §7 and §13 items 30-31 fixed:
 *
 *   - membership is a set per dialog: adding the same (profile, value)
 *     twice is one membership, removing a non-member is a no-op;
 *   - sizes are derived from memberships that really exist, so they can
 *     never drift or go below zero, and reading one is O(1) whatever the
 *     number of dialogs (no list walk, no global lock);
 *   - "no value" on a with-value profile means "any value";
 *   - names may hold letters, digits and '_'.
 *
 * Threads. The registry is built at start-up and read-only afterwards.
 * A struct profile_set lives inside a dialog and is touched only by the
 * dialog's thread (its shard). Profiles are the one piece of dialog state
 * shared between shards: each profile keeps, per value, an entry with the
 * member count and the list of member dialogs, spread over striped
 * mutexes by value hash, plus an atomic total. profile_size() and
 * profile_foreach_member() may be called from any thread.
 *
 * Errors are positive errno values; out-parameters are written only on
 * success.
 */
#ifndef IMSDLG_DLG_PROFILE_H
#define IMSDLG_DLG_PROFILE_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>

#include "core/core.h"

struct profile;
struct profile_registry;
struct profile_member;

/* One membership, in its dialog's set and in its entry's list. Private. */
struct profile_member {
	struct profile_member *set_next; /* the dialog's set */
	struct profile_member *prev;     /* the entry's members */
	struct profile_member *next;
	struct profile_entry *entry; /* NULL: a free slot of a set */
	void *owner;
	unsigned shard;
	bool in_set; /* one of its set's slots, not from the heap */
};

/* Memberships a set holds in itself: the usual call is in one or two
 * profiles, which then cost no malloc and free. */
#define PROFILE_SET_SLOTS 2

/* The shard of a member that is no dialog of ours (dlg_remote_profile):
 * no walk for dialogs of a shard reports it as one of them. */
#define PROFILE_SHARD_REMOTE UINT_MAX

/*
 * The memberships of one dialog. Embedded in the dialog, which must not
 * move; initialise with profile_set_init() and empty with profile_clear()
 * before the dialog is freed (a membership points at its dialog, its
 * entry at the membership). Fields are private.
 */
struct profile_set {
	struct profile_member *head;
	size_t count;
	struct profile_member slots[PROFILE_SET_SLOTS];
};

/* ------------------------------------------------------------ definition */

/*
 * Builds the registry from the two config strings (each borrowed, may be
 * NULL): ';'-separated names, blanks around a name trimmed, empty items
 * ignored. A name is [A-Za-z0-9_]+ and unique across both lists (compared
 * case-sensitively, as Kamailio does). On EINVAL (bad or duplicate name)
 * err (errsize bytes, may be NULL) says which name; ENOMEM otherwise.
 */
int profile_registry_new(struct profile_registry **out, const char *no_value,
                         const char *with_value, char *err, size_t errsize);
/*
 * Frees the registry, every profile and any membership still held (so
 * shutdown need not clear each dialog; the sets that held them must not
 * be used afterwards). r may be NULL. No other thread may use r then.
 */
void profile_registry_free(struct profile_registry *r);

/* The profile called name (case-sensitive), or NULL if undefined. The
 * pointer is valid until profile_registry_free(). */
const struct profile *profile_find(const struct profile_registry *r,
                                   struct slice name);
/* Profiles in definition order (no-value list first): index < count. */
size_t profile_count(const struct profile_registry *r);
const struct profile *profile_at(const struct profile_registry *r, size_t i);

bool profile_has_value(const struct profile *p);
/* NUL-terminated, owned by the registry. */
const char *profile_name(const struct profile *p);

/* ----------------------------------------------------- a dialog's set */

void profile_set_init(struct profile_set *s);

/*
 * Makes the dialog owning s a member of p with value (copied; ignored for
 * a no-value profile). owner (the dialog, borrowed: it must outlive the
 * membership) and shard are what profile_foreach_member() reports.
 * Returns 0 also when s already holds (p, value): that changes nothing.
 * EINVAL when p has values and value is empty; ENOMEM (s unchanged).
 */
int profile_add(struct profile_set *s, const struct profile *p,
                struct slice value, void *owner, unsigned shard);
/*
 * Leaves (p, value); for a with-value profile an empty value leaves every
 * value of p, and a no-value profile ignores value. Returns 0 when a
 * membership was removed, ENOENT (and does nothing) when there was none.
 */
int profile_remove(struct profile_set *s, const struct profile *p,
                   struct slice value);
/* Whether s holds (p, value), byte-exact; an empty value on a with-value
 * profile means "with any value"; a no-value profile ignores value. */
bool profile_is_member(const struct profile_set *s, const struct profile *p,
                       struct slice value);
/* Leaves every profile (the dialog ended, §7.3); s may be reused. */
void profile_clear(struct profile_set *s);

/* Number of memberships in s. */
size_t profile_set_count(const struct profile_set *s);
/*
 * Iterates s (owner thread only): pass NULL for the first membership,
 * then the previous one; NULL at the end. The set must not change during
 * the walk.
 */
const struct profile_member *profile_set_next(const struct profile_set *s,
                                              const struct profile_member *m);
const struct profile *profile_member_profile(const struct profile_member *m);
/* Empty for a no-value profile; valid while m is a membership. */
struct slice profile_member_value(const struct profile_member *m);

/* ------------------------------------------------------- shared views */

/*
 * Members of p (any thread, O(1)): with a value, those with exactly that
 * value (byte-exact); with an empty value, or on a no-value profile, all
 * of them. Exact for every add and remove that has returned.
 */
size_t profile_size(const struct profile *p, struct slice value);

/*
 * Calls fn(owner, shard, arg) once per member of p selected as by
 * profile_size() (any thread). fn runs with a profile lock held and other
 * threads may be using the dialog: it must only copy the identity (owner
 * pointer as an id, shard) for a later job on that shard, never touch
 * the dialog nor call a profile function. Members added or removed
 * meanwhile may or may not be reported; each membership is reported at
 * most once.
 */
void profile_foreach_member(const struct profile *p, struct slice value,
                            void (*fn)(void *owner, unsigned shard, void *arg),
                            void *arg);

/*
 * Calls fn(value, members, arg) once for each value of p that has members
 * now (any thread), in no particular order; nothing for a no-value
 * profile (profile_size() gives its members). fn runs with a profile lock
 * held: it must only copy (value is valid during the call) and call no
 * profile function. Values joined or left meanwhile may or may not be
 * reported; each value is reported at most once.
 */
void profile_foreach_value(const struct profile *p,
                           void (*fn)(struct slice value, size_t members,
                                      void *arg),
                           void *arg);

/* Bytes held by the registry and all memberships, for mem.info (any
 * thread; approximate while memberships change). */
size_t profile_bytes(const struct profile_registry *r);

#endif
