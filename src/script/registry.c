/*
 * The registries of KSR functions and pseudo-variables. They are process
 * globals because components register into them at start-up, before any
 * Lua state exists; workers only read them afterwards.
 */
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "script/script_int.h"

#define MAX_TABLES 32
#define MAX_PVS    128
#define PV_INDEX   256 /* power of two, > 2 * MAX_PVS */

/* Global: export tables, in registration order (built-ins first). */
static struct {
	const struct script_export *t;
	size_t n;
} tables[MAX_TABLES];
static size_t ntables;

/* Global: pseudo-variables, and an open-addressing index of them by name
 * (slot = position + 1, 0 = empty), filled as they are registered so that
 * nothing is built lazily by the workers. */
static struct script_pv_def pvs[MAX_PVS];
static size_t npvs;
static uint8_t pv_index[PV_INDEX];

/* Global: the built-ins go in exactly once, whoever comes first. */
static pthread_once_t init_once = PTHREAD_ONCE_INIT;

static bool params_ok(const char *p)
{
	size_t n = 0;

	for (; *p; p++, n++) {
		if (*p == '*' && p[1] == '\0')
			break;
		if (*p != 's' && *p != 'i')
			return false;
	}
	return n <= SCRIPT_MAX_ARGS;
}

static bool same_export(const struct script_export *a,
                        const struct script_export *b)
{
	return strcmp(a->module, b->module) == 0 &&
	       strcmp(a->name, b->name) == 0;
}

static int add_exports(const struct script_export *t, size_t n)
{
	if (ntables == MAX_TABLES)
		return ENOSPC;
	for (size_t i = 0; i < n; i++) {
		if (t[i].module == NULL || t[i].name == NULL ||
		    t[i].name[0] == '\0' || t[i].fn == NULL ||
		    t[i].params == NULL || !params_ok(t[i].params))
			return EINVAL;
		for (size_t j = 0; j < i; j++)
			if (same_export(&t[i], &t[j]))
				return EEXIST;
		for (size_t k = 0; k < ntables; k++)
			for (size_t j = 0; j < tables[k].n; j++)
				if (same_export(&t[i], &tables[k].t[j]))
					return EEXIST;
	}
	tables[ntables].t = t;
	tables[ntables].n = n;
	ntables++;
	return 0;
}

static size_t pv_slot(struct slice name)
{
	return hash_bytes(name.p, name.len) & (PV_INDEX - 1);
}

static int add_pv(const char *name, bool has_arg, script_pv_get_fn *get,
                  script_pv_set_fn *set)
{
	struct slice n = slice_cstr(name);
	size_t i;

	if (n.len == 0 || get == NULL || strpbrk(name, "$()") != NULL)
		return EINVAL;
	if (script_pv_find(n))
		return EEXIST;
	if (npvs == MAX_PVS)
		return ENOSPC;
	for (i = pv_slot(n); pv_index[i]; i = (i + 1) & (PV_INDEX - 1))
		;
	pvs[npvs] = (struct script_pv_def){name, has_arg, get, set};
	npvs++;
	pv_index[i] = (uint8_t)npvs;
	return 0;
}

static void init_builtins(void)
{
	int err = add_exports(script_ksr_exports, script_ksr_nexports);

	if (err == 0)
		err = add_exports(script_pv_exports, script_pv_nexports);
	for (size_t i = 0; err == 0 && i < script_builtin_npvs; i++) {
		const struct script_pv_def *d = &script_builtin_pvs[i];
		err = add_pv(d->name, d->has_arg, d->get, d->set);
	}
	if (err)
		LOG_CRIT("script: built-in KSR tables rejected (%d)", err);
}

void script_registry_init(void)
{
	pthread_once(&init_once, init_builtins);
}

int script_register_exports(const struct script_export *table, size_t n)
{
	script_registry_init();
	return add_exports(table, n);
}

int script_register_pv(const char *name, bool has_arg, script_pv_get_fn *get,
                       script_pv_set_fn *set)
{
	script_registry_init();
	return add_pv(name, has_arg, get, set);
}

void script_foreach_export(void (*fn)(const struct script_export *e, void *arg),
                           void *arg)
{
	script_registry_init();
	for (size_t k = 0; k < ntables; k++)
		for (size_t j = 0; j < tables[k].n; j++)
			fn(&tables[k].t[j], arg);
}

void script_foreach_pv(void (*fn)(const struct script_pv_def *pv, void *arg),
                       void *arg)
{
	script_registry_init();
	for (size_t i = 0; i < npvs; i++)
		fn(&pvs[i], arg);
}

bool script_export_table(size_t i, const struct script_export **t, size_t *n)
{
	if (i >= ntables)
		return false;
	*t = tables[i].t;
	*n = tables[i].n;
	return true;
}

/* KSR.x.modf() names functions without their module, as kamailio.cfg
 * does; the first registered wins (built-ins first). */
const struct script_export *script_export_find(const char *name)
{
	for (size_t k = 0; k < ntables; k++)
		for (size_t j = 0; j < tables[k].n; j++)
			if (strcmp(tables[k].t[j].name, name) == 0)
				return &tables[k].t[j];
	return NULL;
}

const struct script_pv_def *script_pv_find(struct slice name)
{
	for (size_t i = pv_slot(name); pv_index[i];
	     i = (i + 1) & (PV_INDEX - 1)) {
		const struct script_pv_def *d = &pvs[pv_index[i] - 1];
		if (slice_eq_cstr(name, d->name))
			return d;
	}
	return NULL;
}

int script_call_error(struct script_call *c, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(c->script->errbuf, sizeof(c->script->errbuf), fmt, ap);
	va_end(ap);
	c->error = c->script->errbuf;
	return -1;
}
