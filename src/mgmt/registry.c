/*
 * The registries of RPC methods and HTTP pages. Process globals, because
 * components register at start-up without a server at hand (the way
 * Kamailio modules export their RPC tables); after start-up they are only
 * read, by the management thread. The lock makes the rare late
 * registration (a test, a second server) safe anyway.
 */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "mgmt/mgmt_int.h"

#define MAX_METHODS 512
#define MAX_PAGES   16

/* Global: the registries, in registration order. */
static pthread_mutex_t reg_mx = PTHREAD_MUTEX_INITIALIZER;
static const struct rpc_method *methods[MAX_METHODS];
static size_t nmethods;
static const struct mgmt_page *pages[MAX_PAGES];
static size_t npages;

static const struct rpc_method *find_locked(const char *name)
{
	for (size_t i = 0; i < nmethods; i++)
		if (strcmp(methods[i]->name, name) == 0)
			return methods[i];
	return NULL;
}

/* A name a client can type: no blanks or controls, not empty. */
static bool name_ok(const char *s)
{
	if (s == NULL || *s == '\0')
		return false;
	for (; *s; s++)
		if ((unsigned char)*s <= ' ' || *s == 0x7f)
			return false;
	return true;
}

int rpc_register(const struct rpc_method *table, size_t n)
{
	int err = 0;

	for (size_t i = 0; i < n; i++) {
		if (!name_ok(table[i].name) || table[i].fn == NULL)
			return EINVAL;
		for (size_t j = 0; j < i; j++)
			if (strcmp(table[i].name, table[j].name) == 0)
				return EEXIST;
	}
	pthread_mutex_lock(&reg_mx);
	if (n > MAX_METHODS - nmethods) {
		err = ENOSPC;
		goto out;
	}
	for (size_t i = 0; i < n; i++) {
		if (find_locked(table[i].name) != NULL) {
			err = EEXIST;
			goto out;
		}
	}
	for (size_t i = 0; i < n; i++)
		methods[nmethods++] = &table[i];
out:
	pthread_mutex_unlock(&reg_mx);
	return err;
}

const struct rpc_method *rpc_lookup(const char *name)
{
	const struct rpc_method *m;

	pthread_mutex_lock(&reg_mx);
	m = find_locked(name);
	pthread_mutex_unlock(&reg_mx);
	return m;
}

static int cmp_names(const void *a, const void *b)
{
	return strcmp(*(const char *const *)a, *(const char *const *)b);
}

size_t rpc_method_names(const char **names, size_t max)
{
	size_t n;

	pthread_mutex_lock(&reg_mx);
	n = nmethods < max ? nmethods : max;
	for (size_t i = 0; i < n; i++)
		names[i] = methods[i]->name;
	pthread_mutex_unlock(&reg_mx);
	qsort(names, n, sizeof(*names), cmp_names);
	return n;
}

int mgmt_register_page(const struct mgmt_page *page)
{
	int err = 0;

	if (page == NULL || page->path == NULL || page->path[0] != '/' ||
	    page->fn == NULL)
		return EINVAL;
	pthread_mutex_lock(&reg_mx);
	for (size_t i = 0; i < npages; i++) {
		if (strcmp(pages[i]->path, page->path) == 0) {
			err = EEXIST;
			goto out;
		}
	}
	if (npages == MAX_PAGES)
		err = ENOSPC;
	else
		pages[npages++] = page;
out:
	pthread_mutex_unlock(&reg_mx);
	return err;
}

const struct mgmt_page *mgmt_page_lookup(const char *path)
{
	const struct mgmt_page *p = NULL;

	pthread_mutex_lock(&reg_mx);
	for (size_t i = 0; i < npages && p == NULL; i++)
		if (strcmp(pages[i]->path, path) == 0)
			p = pages[i];
	pthread_mutex_unlock(&reg_mx);
	return p;
}
