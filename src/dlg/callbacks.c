/*
 * Dialog callbacks (ims-dialog-behaviour.md §9) and dialog variables.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dlg/dlg_int.h"

struct dlg_cb_entry {
	struct dlg_cb_entry *next;
	int types;
	dlg_cb *f;
	void *param;
	dlg_cb_free *free_param;
};

/* Global DLGCB_CREATED / DLGCB_LOADED callbacks: registered at start-up,
 * read-only while workers run. */
static struct dlg_cb_entry *global_cbs;

int register_dlgcb(struct dlg *d, int types, dlg_cb *f, void *param,
                   dlg_cb_free *free_param)
{
	struct dlg_cb_entry *e;
	int global = DLGCB_CREATED | DLGCB_LOADED;

	if (f == NULL || types == 0)
		return EINVAL;
	/* §9.1: the global types alone and without a dialog; the others
	 * need one. */
	if ((types & global) &&
	    (d != NULL || (types != DLGCB_CREATED && types != DLGCB_LOADED)))
		return EINVAL;
	if (!(types & global) && d == NULL)
		return EINVAL;
	e = calloc(1, sizeof(*e));
	if (e == NULL)
		return ENOMEM;
	e->types = types;
	e->f = f;
	e->param = param;
	e->free_param = free_param;
	/* Prepended: newest first, as Kamailio runs them. */
	if (d) {
		e->next = d->cbs;
		d->cbs = e;
	} else {
		e->next = global_cbs;
		global_cbs = e;
	}
	return 0;
}

static void free_list(struct dlg_cb_entry *e)
{
	while (e) {
		struct dlg_cb_entry *next = e->next;
		if (e->free_param)
			e->free_param(e->param);
		free(e);
		e = next;
	}
}

void dlg_global_callbacks_free(void)
{
	free_list(global_cbs);
	global_cbs = NULL;
}

void dlg_callbacks_free(struct dlg *d)
{
	free_list(d->cbs);
	d->cbs = NULL;
}

static void run_list(struct dlg_cb_entry *e, struct dlg *d, int type,
                     struct sip_msg *req, struct sip_msg *rpl, int dir)
{
	for (; e; e = e->next) {
		if (!(e->types & type))
			continue;
		struct dlg_cb_params p = {req, rpl, dir, NULL, &e->param};
		e->f(d, type, &p);
	}
}

void dlg_run_cbs(struct dlg *d, int type, struct sip_msg *req,
                 struct sip_msg *rpl, int dir)
{
	if (type == DLGCB_CREATED)
		run_list(global_cbs, d, type, req, rpl, dir);
	else
		run_list(d->cbs, d, type, req, rpl, dir);
}

/* ------------------------------------------------------------ variables */

int set_dlg_var(struct dlg *d, const char *key, const char *value)
{
	struct dlg_var **pp = &d->vars, *v;

	for (; *pp; pp = &(*pp)->next)
		if (strcmp((*pp)->key, key) == 0)
			break;
	v = *pp;
	if (value == NULL || *value == '\0') {
		/* An empty value removes the variable (§8.2). */
		if (v) {
			*pp = v->next;
			free(v->key);
			free(v->value);
			free(v);
		}
		return 0;
	}
	char *copy = strdup(value);
	if (copy == NULL)
		return ENOMEM;
	if (v == NULL) {
		v = calloc(1, sizeof(*v));
		if (v == NULL || (v->key = strdup(key)) == NULL) {
			free(v);
			free(copy);
			return ENOMEM;
		}
		*pp = v;
	}
	free(v->value);
	v->value = copy;
	return 0;
}

const char *get_dlg_var(struct dlg *d, const char *key)
{
	for (struct dlg_var *v = d->vars; v; v = v->next)
		if (strcmp(v->key, key) == 0)
			return v->value;
	return NULL;
}

void dlg_vars_free(struct dlg *d)
{
	while (d->vars) {
		struct dlg_var *v = d->vars;
		d->vars = v->next;
		free(v->key);
		free(v->value);
		free(v);
	}
}

void dlg_run_cbs_data(struct dlg *d, int type, void *data)
{
	for (struct dlg_cb_entry *e = d->cbs; e; e = e->next) {
		if (!(e->types & type))
			continue;
		struct dlg_cb_params p = {NULL, NULL, DLG_DIR_NONE, data,
		                          &e->param};
		e->f(d, type, &p);
	}
}
