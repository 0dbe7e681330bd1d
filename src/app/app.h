/* The daemon's own pieces: the config schema of its built-in modules and
 * the wiring of what the configuration builds into the management side. */
#ifndef IMSDLG_APP_H
#define IMSDLG_APP_H

#include <stddef.h>

#include "core/cfg.h"

extern const struct cfg_schema app_schema;

struct profile;

/*
 * GET /metrics shows <prefix>dialog_profile_size{profile,value} for these
 * n profiles (the array and the profiles borrowed for the process
 * lifetime); start-up, once. 0 or metrics_register()'s error.
 */
int app_register_profile_metrics(const struct profile *const *profiles,
                                 size_t n);

#endif
