/* The daemon's own pieces: the config schema of its built-in modules. */
#ifndef IMSDLG_APP_H
#define IMSDLG_APP_H

#include "core/cfg.h"

extern const struct cfg_schema app_schema;

#endif
