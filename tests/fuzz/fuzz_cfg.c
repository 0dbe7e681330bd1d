/*
 * libFuzzer target for the config loader: arbitrary text through
 * cfg_load_string() with a small Kamailio-like schema. Invariants: it
 * returns 0 or an error with a "NAME:LINE:" message, and every value of a
 * loaded config is readable.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "core/cfg.h"

static const char *pow2(const struct cfg_value *v)
{
	return (v->i & (v->i - 1)) ? "must be a power of two" : NULL;
}

static const struct cfg_param_def globals[] = {
        {"listen", CFG_STR, 1, 0, true, NULL, "addr", NULL},
        {"children", CFG_INT, 1, 256, false, NULL, "workers", NULL},
        {"debug", CFG_INT, -5, 3, false, NULL, "level", NULL},
};

static const struct cfg_param_def tm[] = {
        {"fr_timer", CFG_INT, 100, 3600000, false, NULL, "ms", NULL},
};

static const struct cfg_param_def dlg[] = {
        {"hash_size", CFG_INT, 1, 1 << 24, false, pow2, "slots", NULL},
        {"profiles_with_value", CFG_STR, 1, 0, false, NULL, "names", NULL},
};

static const char *const dlg_alias[] = {"dialog", NULL};

static const struct cfg_module_def modules[] = {
        {"tm", NULL, tm, 1},
        {"ims_dialog", dlg_alias, dlg, 2},
        {"app_lua", NULL, NULL, 0},
};

static const struct cfg_schema schema = {globals, 3, modules, 3};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* An exact-size copy, so that ASan sees any read past the end. */
	char *text = malloc(size ? size : 1);
	struct cfg *c = NULL;
	char err[512];
	size_t n;

	if (text == NULL)
		return 0;
	memcpy(text, data, size);
	err[0] = '\0';
	if (cfg_load_string(&c, "fuzz.cfg", text, size, &schema, NULL, err,
	                    sizeof(err)) == 0) {
		const struct cfg_entry *e = cfg_entries(c, &n);
		for (size_t i = 0; i < n; i++) {
			if (e[i].v.type == CFG_STR && e[i].v.s == NULL)
				abort();
			if (e[i].line == 0)
				abort();
		}
		(void)cfg_int(c, NULL, "children", 0);
		(void)cfg_str(c, "ims_dialog", "profiles_with_value", "");
		cfg_free(c);
	} else if (strncmp(err, "fuzz.cfg", 8) != 0 && err[0] != '\0' &&
	           strstr(err, ".cfg") == NULL) {
		/* Errors name the file (an included one may differ). */
		abort();
	}
	free(text);
	return 0;
}
